// kiln/graph/tasks.h — kernel-task extraction: which kiln Workloads a model needs tuned.
//
// After optimize() (graph/passes.h), every kiln.Conv and kiln.Dense node is one kernel. Each
// becomes a Workload (conv2d; depthwise_conv2d when group == C > 1; dense) with its epilogue,
// keyed by Workload::key(); nodes with the same key are one task, weighted by how many nodes
// use it and by its FLOPs. A kernel node kiln's ops cannot express (1-D or 3-D convolution, a
// dtype other than f32, a shape an op rejects), and every Conv, Gemm or MatMul fusion left
// alone, is a fallback with its reason: never dropped silently. Start with extract_tasks().
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/workload.h"
#include "graph/ir.h"

namespace kiln::graph {

struct KernelTask {
    Workload workload;
    std::string key;                 // workload.key()
    int count = 0;                   // kernel nodes with this key
    double flops = 0;                // of one of them: Workload::flops(), epilogue included
    double share = 0;                // count * flops over all tasks' count * flops (0 to 1)
    std::vector<std::string> nodes;  // their labels, in graph order
};

// A node that could be a kernel but is not a task.
struct KernelFallback {
    std::string node;    // its label: "'conv3d' (kiln.Conv)"
    std::string reason;  // "3-D convolution; kiln's conv2d and depthwise_conv2d are 2-D"
    // "'conv3d' (kiln.Conv) falls back to the reference op: 3-D convolution; ..."
    std::string text() const;
};

struct TaskList {
    std::vector<KernelTask> tasks;  // in the order of their first node
    std::vector<KernelFallback> fallbacks;
    // The other nodes, by op type: ops kiln has no tuned kernel for (pooling, softmax,
    // reshapes, unfused elementwise ops), run by their reference op for now.
    std::map<std::string, int> other_ops;
    double total_flops = 0;  // sum of count * flops over the tasks
};

// Reads the kernel nodes of a graph after fuse_epilogues(). Does not throw for nodes kiln
// cannot express (they are fallbacks); throws kiln::Error naming the node for a malformed one.
// `block` > 0 (the target's f32 vector width): each workload carries the channel-blocked layouts
// the compiler plans for it where every kernel around an activation can block it
// (blockable_activations() in graph/layout_plan.h), so the tuned kernel is the one that runs;
// 0: every workload NCHW, as `kiln compile --nchw` compiles them.
TaskList extract_tasks(const Graph& g, int64_t block = 0);

// The Workload of one kiln.Conv or kiln.Dense node, or std::nullopt with `why` set to the
// reason kiln's ops cannot express it.
std::optional<Workload> kernel_workload(const Graph& g, const Node& n, std::string& why);

}  // namespace kiln::graph
