// kiln/bench/kiln_tune.h — the bench's tuning mode (--tune-trials): tune a layer with kiln's
// tuner, then set up its best config for timing beside the default and the peers.
//
// Tuning runs before the layer's timed rounds, never during them: the tuner measures each
// candidate in a child process (`kiln measure-one`, the kiln executable this bench was built
// with), and writes every record to one database for the whole run.
#pragma once

#include <string>

#include "bench/kiln_run.h"
#include "bench/layer.h"
#include "bench/report.h"

namespace kiln::bench {

struct TuneBenchOptions {
    int trials = 0;           // new candidates per layer; 0 = no tuning
    std::string db;           // tuning database; empty = a fresh file beside this executable
    int threads = 0;          // Halide threads in the measuring children
    double min_time = 0.1;    // seconds each candidate's timing repeats for
    double quiet_wait = 600;  // seconds a candidate waits for other processes to leave the cores
};

// Opens (creating) the database the whole run tunes into; returns its path.
std::string open_tune_database(const TuneBenchOptions& o);

// Tunes the layer's workload for `o.trials` new candidates, then compiles the best config in the
// database (kiln_run.h). `kiln` is empty with `summary.why` set when the layer has no kiln op
// or no candidate ran correctly.
struct TunedKiln {
    TuneSummary summary;
    KilnSetup kiln;
};
TunedKiln tune_layer(const Layer& l, const float* input, const float* weight, uint64_t seed,
                     const TuneBenchOptions& o);

}  // namespace kiln::bench
