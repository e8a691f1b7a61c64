// kiln/graph/rewrite.h — what the passes share for editing a Graph (internal to graph/).
//
// Passes look up readers through a Uses table built once per pass instead of Graph::consumers
// (a scan of every node per call), mark the nodes they drop and erase them in one sweep, and
// add the constants they compute (folded weights, biases) under names no value has yet.
#pragma once

#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln::graph {

// Who reads each value, as it stood when the table was built.
struct Uses {
    explicit Uses(const Graph& g);
    // Node input slots reading the value (a node reading it twice counts twice).
    std::vector<int> reads;
    // The nodes reading it, each once, in graph order.
    std::vector<std::vector<NodeId>> readers;
    std::vector<char> is_output;  // listed in Graph::outputs
    std::vector<char> is_input;   // listed in Graph::inputs
};

// Removes the nodes marked in `dead` (indexed by NodeId) in one sweep, keeping the others'
// order, and makes every value name its producer again.
void erase_nodes(Graph& g, const std::vector<char>& dead);

// `base` when no value has that name, else the first free "base.1", "base.2", ...
std::string unique_value_name(const Graph& g, const std::string& base);

// Adds a constant value holding `t` under a unique name built from `base`.
ValueId add_constant(Graph& g, const std::string& base, Tensor t);

// Why a Conv, Gemm or MatMul node cannot become a kiln.Conv or kiln.Dense node, or "" when it
// can (graph/fuse.cpp). Task extraction says it for the nodes fusion left alone.
std::string kernel_refusal(const Graph& g, const Node& n);

// The comma-separated list "a, b, c".
std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

}  // namespace kiln::graph
