// kiln/graph/layout_plan.h — which activations stay channel-blocked between kernels.
//
// Channel-blocked kernels (conv2d's direct and Winograd algorithms, depthwise_conv2d's nchwc)
// compute in NCHW[b]c, b the target's vector width: their register tiles hold vectors of b
// output channels, and they read vectors of input channels. Between two such kernels an NCHW
// activation costs a transposition on each side; kept blocked, the producer stores its vectors as
// they are and the consumer reads contiguous blocks. Two steps:
//   - blockable_activations(), from the graph alone: where every kernel around an activation is
//     a blockable op. `kiln tune` tunes each kernel in these layouts (graph/tasks.h).
//   - plan_layouts(), with the config each kernel will be compiled with: of those, the outputs
//     whose producer's config can write them blocked and whose readers' configs can read them
//     blocked. The rest stays NCHW: graph inputs and outputs, what other ops read, and the
//     boundaries of algorithms that compute in NCHW (im2col, gemm, direct_x, nchw_x), which
//     transform at their own edges. So the layout changes only where a kernel needs it to.
//
// No Halide here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/workload.h"
#include "graph/ir.h"
#include "targets/target.h"

namespace kiln::graph {

// Per ValueId, the block an activation takes when every kernel around it computes blocked
// (0: NCHW): it is a kernel's output, not a graph output, its channels are whole blocks, its
// producer's op is blockable and every reader is a kernel of a blockable op reading it as data
// or residual. `workloads` is
// indexed by NodeId, set for the kernel nodes (plain). This is the layout `kiln tune` tunes
// each kernel in, so that the tuned kernel is the one that runs; plan_layouts() then keeps it
// where the chosen configs can compute it. `block` 0: every activation NCHW.
std::vector<int64_t> blockable_activations(const Graph& g,
                                           const std::vector<std::optional<Workload>>& workloads,
                                           int64_t block);

// Kernel node n's workload (plain) with the layouts `block` (per ValueId) gives its data input,
// residual and output.
Workload with_layouts(const Node& n, Workload w, const std::vector<int64_t>& block);

// One kernel node's choice: its (plain) workload and the config it will be compiled with.
struct KernelChoice {
    Workload workload;
    Config config;
    bool tuned = false;  // a database record gave the config (else the space's default)
    double ms = 0;       // the record's median time (tuned only)
    // The database's best record for each layout of the workload already looked up, by key:
    // the plain one and the blockable one (config, median ms).
    std::map<std::string, std::pair<Config, double>> records;
};

struct LayoutPlan {
    std::vector<int64_t> block;  // per ValueId: 0 = NCHW, b = NCHW[b]c
    // Per NodeId: the kernel's workload with its blocking set (unset for other nodes).
    std::vector<std::optional<Workload>> workloads;
    int activations = 0;  // kernel outputs considered
    int blocked = 0;      // of them, kept blocked
};

// `kernels` is indexed by NodeId, set for the kernel nodes. The block is the target's f32
// vector width; a config "can" read or write a layout when the op is blockable and the config
// passes the space's checks for the workload with that layout.
// `block` false: every activation NCHW (for comparison).
LayoutPlan plan_layouts(const Graph& g, const std::vector<std::optional<KernelChoice>>& kernels,
                        const Target& target, bool block = true);

}  // namespace kiln::graph
