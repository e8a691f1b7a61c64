// kiln/graph/memory_plan.cpp — lifetimes and the arena's greedy placement (memory_plan.h).
//
// Placement: buffers in decreasing size, each at the lowest offset where it overlaps no placed
// buffer whose lifetime it shares. A lifetime is [the index of the node that computes the
// buffer, the index of its last reader]; a node's input and output share that node's index, so
// no node writes over what it reads.
#include "graph/memory_plan.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"

namespace kiln::graph {
namespace {

uint64_t align_up(uint64_t n, uint64_t a) {
    return (n + a - 1) / a * a;
}

std::string megabytes(uint64_t bytes) {
    return bytes >= 1000000 ? fmt::format("{:.1f} MB", bytes / 1e6)
                            : fmt::format("{:.1f} kB", bytes / 1e3);
}

}  // namespace

MemoryPlan plan_memory(const Graph& g, const std::function<bool(const Node&)>& is_alias,
                       uint64_t alignment) {
    const size_t nv = g.values.size();
    MemoryPlan plan;
    plan.root.resize(nv);
    std::iota(plan.root.begin(), plan.root.end(), 0);
    for (const Node& n : g.nodes)
        if (is_alias(n) && !n.inputs.empty() && n.inputs[0] != kNoId && n.outputs.size() == 1 &&
            !g.value(n.inputs[0]).is_constant())
            plan.root[n.outputs[0]] = plan.root[n.inputs[0]];  // nodes are in topological order

    std::vector<Storage> at_root(nv);
    for (size_t i = 0; i < g.inputs.size(); ++i)
        at_root[g.inputs[i]] = {Storage::Kind::input, static_cast<int>(i), 0, 0};
    for (size_t j = 0; j < g.outputs.size(); ++j) {
        const ValueId o = g.outputs[j];
        if (g.value(o).is_constant())
            throw Error("compile", "output '" + g.value(o).name +
                                       "' is a constant; kiln compiles outputs that nodes compute");
        Storage& s = at_root[plan.root[o]];
        if (s.kind == Storage::Kind::none)
            s = {Storage::Kind::output, static_cast<int>(j), 0, 0};
        else
            plan.copies.push_back({o, static_cast<int>(j)});
    }

    // Lifetimes of the arena's buffers, by root.
    const int end = static_cast<int>(g.nodes.size());
    std::vector<int> first(nv, -1), last(nv, -1);
    for (int i = 0; i < end; ++i) {
        const Node& n = g.nodes[i];
        for (ValueId v : n.inputs)
            if (v != kNoId) last[plan.root[v]] = std::max(last[plan.root[v]], i);
        for (ValueId v : n.outputs) {
            ValueId r = plan.root[v];
            if (first[r] < 0) first[r] = i;
            last[r] = std::max(last[r], i);
        }
    }
    for (const OutputCopy& c : plan.copies)
        last[plan.root[c.value]] = end;

    struct Buffer {
        ValueId root;
        uint64_t bytes;
    };
    std::vector<Buffer> buffers;
    for (size_t v = 0; v < nv; ++v) {
        const Value& val = g.values[v];
        if (plan.root[v] != static_cast<ValueId>(v)) continue;
        const uint64_t bytes = static_cast<uint64_t>(val.numel() * element_size(val.dtype));
        if (val.is_constant() || at_root[v].kind != Storage::Kind::none || first[v] < 0) continue;
        at_root[v].kind = Storage::Kind::arena;
        buffers.push_back(
            {static_cast<ValueId>(v), align_up(std::max<uint64_t>(bytes, 1), alignment)});
    }
    std::stable_sort(buffers.begin(), buffers.end(),
                     [](const Buffer& a, const Buffer& b) { return a.bytes > b.bytes; });
    std::vector<Buffer> placed;
    for (const Buffer& b : buffers) {
        // The placed buffers alive at the same time, by offset; the first gap that fits.
        std::vector<std::pair<uint64_t, uint64_t>> busy;
        for (const Buffer& p : placed)
            if (first[p.root] <= last[b.root] && first[b.root] <= last[p.root])
                busy.push_back({at_root[p.root].offset, at_root[p.root].offset + p.bytes});
        std::sort(busy.begin(), busy.end());
        uint64_t offset = 0;
        for (const auto& [lo, hi] : busy) {
            if (offset + b.bytes <= lo) break;
            offset = std::max(offset, hi);
        }
        at_root[b.root].offset = offset;
        plan.arena_bytes = std::max(plan.arena_bytes, offset + b.bytes);
        plan.unshared_bytes += b.bytes;
        placed.push_back(b);
    }
    plan.arena_buffers = static_cast<int>(buffers.size());
    plan.storage.resize(nv);
    for (size_t v = 0; v < nv; ++v) {
        plan.storage[v] = at_root[plan.root[v]];
        plan.storage[v].bytes =
            static_cast<uint64_t>(g.values[v].numel() * element_size(g.values[v].dtype));
    }
    return plan;
}

std::string describe(const MemoryPlan& plan) {
    return fmt::format("arena {} ({} buffers, {} without reuse)", megabytes(plan.arena_bytes),
                       plan.arena_buffers, megabytes(plan.unshared_bytes));
}

}  // namespace kiln::graph
