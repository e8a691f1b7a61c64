// kiln/graph/memory_plan.h — where each run-time value of a compiled graph lives.
//
// Every value a node computes lives in one of three places: the caller's input buffer (graph
// inputs), the caller's output buffer (graph outputs), or the arena, one block per instance in
// which buffers whose lifetimes do not overlap share bytes. A node whose output is its input's
// bytes unchanged (Reshape, Flatten, ...: an alias) gives its output the input's memory, so the
// two are one buffer with the union of their lifetimes. A graph output that cannot be written
// in place (it is a graph input, a second output of the same buffer, or an alias of either) is
// copied into the caller's buffer at the end. Constants are not planned: they are weights.
// Start with plan_memory().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln::graph {

struct Storage {
    enum class Kind { none, input, output, arena };
    Kind kind = Kind::none;  // none: a constant, or a value no node computes
    int index = -1;          // input: graph input index; output: graph output index
    uint64_t offset = 0;     // arena: byte offset
    uint64_t bytes = 0;      // the value's size
};

struct OutputCopy {
    ValueId value;  // the graph output's value, whose buffer is not the caller's
    int output;     // its index among the graph outputs
};

struct MemoryPlan {
    std::vector<ValueId> root;       // per ValueId: the value whose memory it uses (itself, or
                                     // the first input of its alias chain)
    std::vector<Storage> storage;    // per ValueId, of its root
    std::vector<OutputCopy> copies;  // done after the last node
    uint64_t arena_bytes = 0;        // the arena's size
    uint64_t unshared_bytes = 0;     // what the arena's buffers would take without reuse
    int arena_buffers = 0;
};

// `is_alias(node)`: whether the node's only output is its first input's bytes unchanged.
// Sizes and offsets are multiples of `alignment`. Throws kiln::Error for a graph output that is
// a constant (nothing computes it).
MemoryPlan plan_memory(const Graph& g, const std::function<bool(const Node&)>& is_alias,
                       uint64_t alignment = 64);

// "arena 3.2 MB (12 buffers, 9.6 MB without reuse)".
std::string describe(const MemoryPlan& plan);

}  // namespace kiln::graph
