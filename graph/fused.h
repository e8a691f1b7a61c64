// kiln/graph/fused.h — kiln's fused kernel nodes, kiln.Conv and kiln.Dense, as the IR holds them.
//
// fuse_epilogues() (graph/passes.h) turns a Conv, Gemm or MatMul with a constant weight, and the
// bias add, residual add and activation that follow it, into one of these nodes; extract_tasks()
// (graph/tasks.h) reads each one as a kiln Workload. Both are registered GraphOps
// (graph/op_fused.cpp), so the reference interpreter runs fused graphs: the plain op's reference,
// then Epilogue::apply per element. Import never produces them.
//
// Inputs, at fixed positions (kNoId when absent):
//   0 data      kiln.Conv: X [N, C, spatial...]; kiln.Dense: X [..., K]
//   1 weight    kiln.Conv: W [K, C / group, kernel...] (ONNX's layout, also conv2d's);
//               kiln.Dense: W [N, K] (dense's layout: row j is output feature j), a constant
//   2 bias      [K] or [N], a constant; present exactly when the epilogue has `bias`
//   3 residual  the output's shape; present exactly when the epilogue has `add`
// Attributes: `epilogue` (Epilogue::to_string(), "" for none); `clip` (floats [min, max], exact,
// when the activation is a clip; the text rounds them); `fused` (labels of the nodes taken in,
// for people); kiln.Conv also has Conv's `strides`, `dilations`, `group`, `kernel_shape` and
// explicit `pads` (auto_pad resolved).
#pragma once

#include <string>

#include "core/workload.h"
#include "graph/ir.h"

namespace kiln::graph {

constexpr const char* kFusedConv = "kiln.Conv";
constexpr const char* kFusedDense = "kiln.Dense";

constexpr size_t kFusedData = 0;
constexpr size_t kFusedWeight = 1;
constexpr size_t kFusedBias = 2;
constexpr size_t kFusedResidual = 3;

bool is_fused_kernel(const Node& n);

// The node's epilogue from its `epilogue` and `clip` attributes; throws kiln::Error naming the
// node for a text Epilogue::parse refuses.
Epilogue fused_epilogue(const Node& n);
// Sets both attributes (drops `clip` when the activation is not a clip).
void set_fused_epilogue(Node& n, const Epilogue& e);

}  // namespace kiln::graph
