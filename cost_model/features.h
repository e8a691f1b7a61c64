// kiln/cost_model/features.h — what the cost model knows about one (workload, config).
//
// summarize_loop_nest() lowers the config's Halide pipeline (without unrolling, which only
// copies bodies and dominates lowering time) and reads the loop nest it produced: the loops
// around the statement that does the most arithmetic (the "hot" nest), their extents and kinds,
// bytes loaded and stored, arithmetic intensity, the working set of each hot loop against the
// target's caches, parallel tasks, allocations. featurize() turns that, the workload's own shape
// and the config's knob values into named features. docs/COST_MODEL.md lists every feature.
// No Halide in this header.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/workload.h"
#include "targets/target.h"

namespace kiln {

// Bump when a feature is added, removed or changes meaning: a model trained on another version
// is not used.
constexpr int kFeatureVersion = 1;

enum class LoopKind { serial, parallel, unrolled };

struct LoopInfo {
    std::string name;    // Halide's loop name, e.g. "output.s0.x.xo"
    int64_t extent = 1;  // iterations per entry: a constant, or its upper bound
    LoopKind kind = LoopKind::serial;
    double working_set = 0;  // bytes one iteration of this loop touches (all buffers)
};

// The lowered loop nest of one kernel, per run of its main pipeline.
struct LoopNestSummary {
    // Loops around the hot statement, outermost first. Vectorized loops are not loops any more
    // after lowering: their width is in hot_lanes.
    std::vector<LoopInfo> hot_loops;
    int hot_lanes = 1;       // vector lanes of the hot store
    double hot_trips = 0;    // times the hot statement runs
    double inner_flops = 0;  // float arithmetic per execution of the hot statement (x lanes)
    double inner_load_bytes = 0;
    double inner_store_bytes = 0;
    double flops = 0;  // float arithmetic of the whole pipeline (every statement x its trips)
    double load_bytes = 0;
    double store_bytes = 0;
    int64_t parallel_tasks = 1;  // product of the parallel loops' extents on the hot path
    double allocations = 0;      // allocations made per run (an allocation in a loop counts each)
    double allocation_bytes = 0;
    int statements = 0;  // stores in the lowered nest
    double lower_seconds = 0;
};

// Lowers the pipeline of a valid config for `t` (any target; nothing runs). Throws kiln::Error
// when the config is invalid or the op's kernels are not Halide pipelines.
LoopNestSummary summarize_loop_nest(const Workload& w, const Config& c, const Target& t);

// Whether summarize_loop_nest() can read the kernels of `op` (their schedule space is made of
// Halide pipelines).
bool can_featurize(const std::string& op);

// Named features; absent names are missing values (a knob a config does not have).
using Features = std::vector<std::pair<std::string, float>>;

// The loop-nest summary, the workload's shape and the config's knobs as features: every name
// and its meaning is in docs/COST_MODEL.md.
Features featurize(const Workload& w, const Config& c, const Target& t,
                   const LoopNestSummary& nest);
Features featurize(const Workload& w, const Config& c, const Target& t);

// Cache sizes the working-set features compare with: the host's from its fingerprint, typical
// ones (32 KiB, 1 MiB, 32 MiB) for a target without one.
struct CacheSizes {
    double l1 = 32 * 1024.0, l2 = 1024 * 1024.0, l3 = 32 * 1024 * 1024.0;
    int cores = 4;
};
CacheSizes cache_sizes(const Target& t);

}  // namespace kiln
