// kiln/bench/kiln_run.h — kiln's columns: a layer compiled with its space's default config, or
// with a given one (the best config tuning found, kiln_tune.h).
#pragma once

#include <memory>
#include <string>

#include "bench/layer.h"
#include "bench/peer.h"
#include "core/config.h"
#include "schedules/kernel.h"

namespace kiln::bench {

struct KilnSetup {
    std::unique_ptr<LayerRun> run;  // null when kiln has no kernel for the op (see `why`)
    std::string why;
    std::string key;     // the workload key
    std::string config;  // the config compiled, compact JSON
    double compile_seconds = 0.0;
    bool verified = false;  // verify_kernel() passed within kF32Tolerance
    double relative_error = 0.0;
};

// A compiled kernel as a bench implementation: prepared once with `inputs` (which it keeps
// pointing to), then run into its own output buffer.
std::unique_ptr<LayerRun> make_kernel_run(std::unique_ptr<Kernel> kernel,
                                          std::vector<const float*> inputs, int64_t output_numel);

// Builds the Workload, compiles `config` (null: the space's default) for the host, checks it
// once with verify_kernel(), then prepares it with `input` and `weight` (which it keeps pointing
// to).
KilnSetup prepare_kiln(const Layer& l, const float* input, const float* weight, uint64_t seed,
                       const Config* config = nullptr);

}  // namespace kiln::bench
