// kiln/tests/graph_one_node.h — a graph of one node, for the tests of single ops
// (test_graph_ops.cpp through the reference interpreter, test_graph_halide.cpp through the
// Halide lowerings).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/ir.h"
#include "graph/op.h"

namespace kiln::test_graph {

using Attrs = std::map<std::string, graph::Attribute>;

// One `op` node named "test" over `inputs`: i64 tensors become constants, the others graph
// inputs "in0", "in1", ...; its outputs "out0", ... are typed by the op's infer() and are the
// graph's outputs.
inline graph::Graph one_node_graph(const std::string& op, const std::vector<graph::Tensor>& inputs,
                                   const Attrs& attrs, int opset, size_t outputs) {
    using namespace kiln::graph;
    const GraphOp* def = find_graph_op(op);
    if (!def) throw Error("op", "no graph op " + op);
    Graph g;
    g.opset = opset;
    Node n;
    n.op = op;
    n.name = "test";
    n.attrs = attrs;
    for (size_t i = 0; i < inputs.size(); ++i) {
        Value v;
        v.name = "in" + std::to_string(i);
        v.dtype = inputs[i].dtype;
        v.shape = inputs[i].shape;
        if (inputs[i].dtype == DType::i64) v.data = std::make_shared<const Tensor>(inputs[i]);
        ValueId id = g.add_value(v);
        if (inputs[i].dtype != DType::i64) g.inputs.push_back(id);
        n.inputs.push_back(id);
    }
    for (size_t k = 0; k < outputs; ++k)
        n.outputs.push_back(g.add_value({"out" + std::to_string(k), DType::f32, {}, kNoId, {}}));
    std::vector<ValueType> types = def->infer(n, g);
    for (size_t k = 0; k < outputs; ++k) {
        g.value(n.outputs[k]).dtype = types[k].dtype;
        g.value(n.outputs[k]).shape = types[k].shape;
    }
    g.outputs = n.outputs;
    g.add_node(n);
    g.validate();
    return g;
}

}  // namespace kiln::test_graph
