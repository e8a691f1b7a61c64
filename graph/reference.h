// kiln/graph/reference.h — runs a Graph with the ops' scalar references.
//
// The oracle for everything that compiles a graph later: each node's GraphOp::evaluate in
// topological order, all in plain loops. Slow by design; fine for tests and small models.
#pragma once

#include <map>
#include <string>

#include "graph/ir.h"

namespace kiln::graph {

// `inputs` by graph input name; each must be given, with the input's dtype and shape. Returns
// every graph output by name. Throws kiln::Error naming a missing, unknown or misshaped input.
std::map<std::string, Tensor> evaluate_reference(const Graph& g,
                                                 const std::map<std::string, Tensor>& inputs);

}  // namespace kiln::graph
