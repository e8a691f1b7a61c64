// kiln/tuner/runner.h — building and measuring candidate configs, each in its own process.
//
// A crash, a hang or a wrong answer of one candidate is a record, never a dead tuner: every
// candidate is compiled, verified against the op's scalar reference and timed by a child
// process (`kiln measure-one`, reading a JSON request on stdin and writing JSON lines on
// stdout). Several children compile at once (builder); measurement is serialised, one child at
// a time, so candidates never share the cores while timed. The protocol is in
// docs/MEASUREMENT.md.
#pragma once

#include <atomic>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/workload.h"
#include "db/record.h"
#include "targets/target.h"

namespace kiln {

struct MeasureOptions {
    double min_time_s = 0.1;   // timed runs repeat until at least this much time has passed
    int min_repeats = 3;       // and at least this many runs
    int warmup_runs = 1;       // untimed runs first (after prepare())
    int threads = 0;           // Halide threads in the child; 0 = the machine's cores
    uint64_t verify_seed = 1;  // inputs of the check against the reference
    double tolerance = 1e-4;   // normwise relative error allowed
    // Directory where the child keeps the reference output of (workload, verify_seed) for the
    // next candidates (reference_output(), schedules/verify.h); empty: computed every time.
    // A ProcessRunner given none makes a temporary one for its lifetime.
    std::string reference_cache;
    // A quiet machine (docs/MEASUREMENT.md): a candidate is timed only while other processes
    // keep at most `max_other_load` cores busy. The parent waits up to `quiet_wait_s` for such a
    // moment before it lets a candidate run; the child measures the load of its timed runs and
    // times again (after waiting for quiet, within the same budget) when it was above. A
    // record timed above it anyway says so in its note. 0: no waiting, the load is only noted.
    double quiet_wait_s = 0;
    double max_other_load = 0.25;
};

struct RunnerOptions {
    std::string measure_binary;        // the `kiln` executable whose `measure-one` does the work
    std::vector<std::string> plugins;  // shared libraries the child loads first (test ops)
    int parallel_builds = 2;           // children compiling at once
    double compile_timeout_s = 120;
    double run_timeout_s = 30;  // verification plus timing
    MeasureOptions measure;
};

class Runner {
  public:
    virtual ~Runner() = default;
    // One record per config, in order, each with its status; never throws for a candidate's
    // failure (only for a runner that cannot start at all).
    virtual std::vector<Record> measure(const Workload& w, const std::vector<Config>& configs,
                                        const Target& t) = 0;
    // Times already measured configs against each other: one child compiles and verifies
    // them all, then times them in `rounds` interleaved rounds (each config `min_time_s` per
    // round), so that a busy moment of the machine falls on all of them alike. One record per
    // config, in order: min over all runs, median over rounds of each round's median.
    virtual std::vector<Record> compare(const Workload& w, const std::vector<Config>& configs,
                                        const Target& t, int rounds) = 0;
    // Polled between candidates: once set, measure() finishes the candidate being timed and
    // returns the records it has (fewer than configs), starting nothing new.
    void set_stop_flag(const std::atomic<bool>* stop) { stop_ = stop; }

  protected:
    bool stop_requested() const { return stop_ && stop_->load(); }

  private:
    const std::atomic<bool>* stop_ = nullptr;
};

std::unique_ptr<Runner> make_process_runner(const RunnerOptions& options);

// The child's side: reads one request from `in`, compiles, waits for the parent's go-ahead,
// verifies and times, writes result lines to `out`. Returns the process exit code.
int measure_one_main(std::istream& in, std::ostream& out);

}  // namespace kiln
