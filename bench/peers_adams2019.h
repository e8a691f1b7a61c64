// kiln/bench/peers_adams2019.h — Halide's Adams2019 autoscheduler as a peer: kiln's own
// algorithm (the Funcs of generators/), scheduled by Halide instead of by kiln's schedule space.
//
// The autoscheduler can take minutes, crash or never return, so each layer is scheduled,
// compiled, checked and timed by a worker process: this program started again with
// kAdams2019WorkerFlag, fed the layer and its data on stdin. The bench talks to it over pipes
// (peers_adams2019.cpp has the protocol); a worker that dies or overruns the budget is reported
// in that layer's row and the run goes on. Only compiled when CMake finds Halide::Adams2019.
#pragma once

namespace kiln::bench {

struct Adams2019Options {
    // Seconds a worker may take to autoschedule and JIT-compile one layer; past it the worker is
    // killed and the row says so.
    double timeout_s = 240.0;
    // Address space a worker may use, in GiB (0: half the machine's memory). The autoscheduler's
    // search grows with the pipeline: on r50_l1_3x3_64 it passed 10 GiB within four minutes,
    // enough to push other work on a shared host out of memory; past the limit its allocations
    // fail and the row says so.
    double memory_gib = 0.0;
};

void set_adams2019_options(const Adams2019Options& options);

// argv[1] of a worker process.
constexpr const char* kAdams2019WorkerFlag = "--adams2019-worker";

// The worker's side: reads one layer from stdin, answers commands on stdout until stdin closes.
// Returns the process exit code.
int adams2019_worker_main();

}  // namespace kiln::bench
