// kiln/graph/layout_plan.cpp — plan_layouts(): see layout_plan.h.
#include "graph/layout_plan.h"

#include <set>

#include "core/error.h"
#include "core/op.h"
#include "graph/fused.h"
#include "schedules/kernel.h"

namespace kiln::graph {

namespace {

// True when `config` computes `w`, blocking included: the workload is valid and the space of
// its op takes the config.
bool accepts(const Workload& w, const Config& config, const Target& t) {
    try {
        w.validate();
        return !find_space(w.op).space(w, t).check(config).has_value();
    } catch (const Error&) {
        return false;
    }
}

}  // namespace

std::vector<int64_t> blockable_activations(const Graph& g,
                                           const std::vector<std::optional<Workload>>& workloads,
                                           int64_t block) {
    std::vector<int64_t> blocks(g.values.size(), 0);
    if (!block) return blocks;
    const std::set<ValueId> graph_outputs(g.outputs.begin(), g.outputs.end());
    auto blockable = [&](size_t node) {
        return node < workloads.size() && workloads[node] && workloads[node]->def().blockable();
    };
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (!blockable(i)) continue;
        const ValueId v = g.nodes[i].outputs.at(0);
        const std::vector<int64_t>& shape = g.value(v).shape;
        if (graph_outputs.count(v) || shape.size() != 4 || shape[1] % block != 0) continue;
        const std::vector<NodeId> readers = g.consumers(v);
        bool all = !readers.empty();
        for (NodeId r : readers) {
            // Read by a blockable kernel, as its data input or as its residual, and as nothing
            // else.
            all = all && blockable(size_t(r));
            const Node& n = g.nodes[r];
            for (size_t k = 0; all && k < n.inputs.size(); ++k)
                if (n.inputs[k] == v)
                    all =
                        k == kFusedData || (k == kFusedResidual && workloads[r]->epilogue.residual);
        }
        if (all) blocks[v] = block;
    }
    return blocks;
}

Workload with_layouts(const Node& n, Workload w, const std::vector<int64_t>& block) {
    w.layout.input = block.at(n.inputs.at(kFusedData));
    w.layout.residual = w.epilogue.residual ? block.at(n.inputs.at(kFusedResidual)) : 0;
    w.layout.output = block.at(n.outputs.at(0));
    return w;
}

LayoutPlan plan_layouts(const Graph& g, const std::vector<std::optional<KernelChoice>>& kernels,
                        const Target& target, bool block) {
    LayoutPlan plan;
    plan.block.assign(g.values.size(), 0);
    plan.workloads.assign(g.nodes.size(), std::nullopt);
    const int64_t b = target.f32_lanes();
    const std::set<ValueId> graph_outputs(g.outputs.begin(), g.outputs.end());

    for (size_t i = 0; i < g.nodes.size() && i < kernels.size(); ++i) {
        if (!kernels[i]) continue;
        ++plan.activations;
        const KernelChoice& producer = *kernels[i];
        const ValueId v = g.nodes[i].outputs.at(0);
        if (!block || graph_outputs.count(v) || !producer.workload.def().blockable()) continue;
        Workload writes = producer.workload;
        writes.layout.output = b;
        if (!accepts(writes, producer.config, target)) continue;
        const std::vector<NodeId> readers = g.consumers(v);
        bool all_read_blocked = !readers.empty();
        for (NodeId r : readers) {
            if (size_t(r) >= kernels.size() || !kernels[r]) {
                all_read_blocked = false;
                break;
            }
            const Node& n = g.nodes[r];
            Workload reads = kernels[r]->workload;
            if (n.inputs.at(kFusedData) == v) reads.layout.input = b;
            if (reads.epilogue.residual && n.inputs.at(kFusedResidual) == v)
                reads.layout.residual = b;
            if (reads.layout.plain() || !accepts(reads, kernels[r]->config, target)) {
                all_read_blocked = false;
                break;
            }
        }
        if (!all_read_blocked) continue;
        plan.block[v] = b;
        ++plan.blocked;
    }

    // Each kernel with the layouts of what it reads and writes. The choices above were made one
    // tensor at a time; the checks only constrain each tensor on its own, so together they hold.
    for (size_t i = 0; i < g.nodes.size() && i < kernels.size(); ++i) {
        if (!kernels[i]) continue;
        const Node& n = g.nodes[i];
        Workload w = with_layouts(n, kernels[i]->workload, plan.block);
        if (!w.layout.plain() && !accepts(w, kernels[i]->config, target))
            throw Error("layout", "kernel " + n.label() +
                                      " cannot take the layouts planned for it (" + w.key() +
                                      "); this is a bug in plan_layouts");
        plan.workloads[i] = std::move(w);
    }
    return plan;
}

}  // namespace kiln::graph
