// kiln/graph/tasks.cpp — kernel nodes to Workloads, deduplicated by key (see tasks.h).
//
// The parameter names are the ops' own (generators/conv2d.cpp, depthwise_conv2d.cpp,
// dense.cpp): conv n, c, h, w, k, r, s, stride (h, w), pad (top, left, bottom, right, the
// order of ONNX's 2-D pads), dilation (h, w), groups (conv2d only); dense m, n, k with the
// input's leading dimensions flattened into m. Workload::validate() has the last word: what an
// op rejects is a fallback carrying its message.
#include "graph/tasks.h"

#include "core/error.h"
#include "graph/fused.h"
#include "graph/layout_plan.h"
#include "graph/op.h"
#include "graph/rewrite.h"
#include "graph/window.h"

namespace kiln::graph {
namespace {

// "" when every value is f32, else why.
std::string f32_only(const std::vector<const Value*>& values, const char* kernel) {
    for (const Value* v : values)
        if (v->dtype != DType::f32)
            return "'" + v->name + "' is " + std::string(to_string(v->dtype)) + "; kiln's " +
                   kernel + " runs f32 only";
    return "";
}

std::optional<Workload> conv_workload(const Graph& g, const Node& n, std::string& why) {
    const Value& x = required_input(g, n, kFusedData, "X");
    const Value& w = required_input(g, n, kFusedWeight, "W");
    const Value& y = g.value(n.outputs.at(0));
    if (x.shape.size() != 4) {
        why = std::to_string(static_cast<int64_t>(x.shape.size()) - 2) +
              "-D convolution; kiln's conv2d and depthwise_conv2d are 2-D";
        return std::nullopt;
    }
    if (why = f32_only({&x, &w, &y}, "conv2d"); !why.empty()) return std::nullopt;
    if (!w.is_constant()) {
        why = "its weight is computed at run time; kiln's convolutions take a constant weight";
        return std::nullopt;
    }
    const Window win =
        make_window(n, {x.shape[2], x.shape[3]}, {w.shape[2], w.shape[3]}, false, true);
    const int64_t group = n.attr_int("group", 1);
    Workload wl;
    wl.op = group == x.shape[1] && group > 1 ? "depthwise_conv2d" : "conv2d";
    wl.dtype = DType::f32;
    wl.epilogue = fused_epilogue(n);
    wl.params = {
        {"n", {x.shape[0]}},
        {"c", {x.shape[1]}},
        {"h", {x.shape[2]}},
        {"w", {x.shape[3]}},
        {"k", {w.shape[0]}},
        {"r", {w.shape[2]}},
        {"s", {w.shape[3]}},
        {"stride", {win.stride[1], win.stride[2]}},
        {"pad", {win.pad_begin[1], win.pad_begin[2], win.pad_end[1], win.pad_end[2]}},
        {"dilation", {win.dilation[1], win.dilation[2]}},
    };
    if (wl.op == "conv2d") wl.params["groups"] = {group};
    try {
        wl.validate();
    } catch (const Error& e) {
        why = wl.op + " rejects it: " + e.what();
        return std::nullopt;
    }
    if (wl.output().shape != y.shape) {
        why = wl.op + " computes " + shape_string(wl.output().shape) + ", the node " +
              shape_string(y.shape);
        return std::nullopt;
    }
    return wl;
}

std::optional<Workload> dense_workload(const Graph& g, const Node& n, std::string& why) {
    const Value& x = required_input(g, n, kFusedData, "X");
    const Value& w = required_input(g, n, kFusedWeight, "W");
    const Value& y = g.value(n.outputs.at(0));
    if (why = f32_only({&x, &w, &y}, "dense"); !why.empty()) return std::nullopt;
    if (!w.is_constant() || w.shape.size() != 2 || x.shape.empty()) {
        why = "its weight is not a constant [N, K]";
        return std::nullopt;
    }
    const int64_t k = w.shape[1];
    Workload wl;
    wl.op = "dense";
    wl.dtype = DType::f32;
    wl.epilogue = fused_epilogue(n);
    wl.params = {{"m", {x.numel() / k}}, {"n", {w.shape[0]}}, {"k", {k}}};
    try {
        wl.validate();
    } catch (const Error& e) {
        why = std::string("dense rejects it: ") + e.what();
        return std::nullopt;
    }
    return wl;
}

}  // namespace

std::string KernelFallback::text() const {
    return node + " falls back to the reference op: " + reason;
}

std::optional<Workload> kernel_workload(const Graph& g, const Node& n, std::string& why) {
    if (n.op == kFusedConv) return conv_workload(g, n, why);
    if (n.op == kFusedDense) return dense_workload(g, n, why);
    why = "not a kiln.Conv or kiln.Dense node";
    return std::nullopt;
}

TaskList extract_tasks(const Graph& g, int64_t block) {
    TaskList list;
    std::vector<std::optional<Workload>> workloads(g.nodes.size());
    std::vector<std::string> refused(g.nodes.size());
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (is_fused_kernel(g.nodes[i])) workloads[i] = kernel_workload(g, g.nodes[i], refused[i]);
    const std::vector<int64_t> blocks = blockable_activations(g, workloads, block);

    std::map<std::string, size_t> by_key;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        if (is_fused_kernel(n)) {
            if (!workloads[i]) {
                list.fallbacks.push_back({n.label(), refused[i]});
                continue;
            }
            const Workload wl = with_layouts(n, *workloads[i], blocks);
            const std::string key = wl.key();
            auto [it, added] = by_key.emplace(key, list.tasks.size());
            if (added) {
                KernelTask t;
                t.workload = wl;
                t.key = key;
                t.flops = wl.flops();
                list.tasks.push_back(std::move(t));
            }
            KernelTask& t = list.tasks[it->second];
            ++t.count;
            t.nodes.push_back(n.label());
        } else if (n.op == "Conv" || n.op == "Gemm" || n.op == "MatMul") {
            std::string why = kernel_refusal(g, n);
            if (why.empty()) why = "not fused into a kernel node (fuse_epilogues did not run)";
            list.fallbacks.push_back({n.label(), why});
        } else {
            ++list.other_ops[n.op];
        }
    }
    for (const KernelTask& t : list.tasks)
        list.total_flops += t.count * t.flops;
    for (KernelTask& t : list.tasks)
        t.share = list.total_flops > 0 ? t.count * t.flops / list.total_flops : 0.0;
    return list;
}

}  // namespace kiln::graph
