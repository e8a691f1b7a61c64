// kiln/graph/halide_op_helpers.h — what the Halide lowering files (graph/halide_op_*.cpp) share.
//
// Internal to those files and graph/halide_ops.cpp (it includes Halide through
// graph/halide_ops.h). A lowering works in ONNX coordinates: make_func() defines a Func of a
// tensor's rank from a body that receives the ONNX-ordered coordinates of the point it computes,
// and at() reads a HalideTensor at ONNX-ordered coordinates; both hide Halide's reversed
// dimension order.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/halide_ops.h"
#include "graph/op.h"

namespace kiln::graph {

using Coords = std::vector<Halide::Expr>;  // ONNX order: Coords[0] is the outermost dimension

// A Func of shape.size() dimensions whose value at ONNX coordinates c is body(c).
Halide::Func make_func(const std::string& name, size_t rank,
                       const std::function<Halide::Expr(const Coords&)>& body);
// t's value at ONNX coordinates c (c.size() == t.shape.size()).
Halide::Expr at(const HalideTensor& t, const Coords& c);
// t's value at the coordinates c of an output of rank c.size() that t broadcasts to (numpy
// rules: t's dimensions align at the right; a dimension of size 1 reads index 0).
Halide::Expr broadcast_at(const HalideTensor& t, const Coords& c);

// x ([N, C, spatial...]) with `value` outside its spatial extent, computed at root: a window
// op reads it at plain strided coordinates, where reading x through a select and a clamp per
// tap made Halide gather lane by lane. On one thread of the (busy, 2-core) host, best of 15:
// ResNet's 3x3 conv of 64 channels at 56x56 went from 28 ms to 8.3 ms, the 3x3 stride-2
// MaxPool of 64x112x112 from 0.68 ms to 0.44 ms.
Halide::Func padded_spatial(const HalideTensor& x, float value);

// Input i, which must be present and flow as f32 data; node_error otherwise.
const HalideTensor& data_input(const Node& n, const std::vector<HalideTensor>& in, size_t i,
                               const char* what);
// Input i, when present, or nullptr.
const HalideTensor* optional_data_input(const std::vector<HalideTensor>& in, size_t i);
// Input i's constant data as integers (shapes, axes, pads). Throws Declined (graph/op.h), its
// message naming the node, when the input is computed at run time: valid, but not lowerable.
std::vector<int64_t> constant_ints(const Node& n, const std::vector<HalideTensor>& in, size_t i,
                                   const char* what);
// The node's output types by its GraphOp's infer().
std::vector<ValueType> output_types(const Node& n, const Graph& g);

// Halide Expr of an int64 shape quantity (Halide indexes with int32).
Halide::Expr i32(int64_t v);

}  // namespace kiln::graph
