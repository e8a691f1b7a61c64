// kiln/graph/reference.cpp — the reference interpreter (see reference.h).
#include "graph/reference.h"

#include <optional>

#include "core/error.h"
#include "graph/op.h"

namespace kiln::graph {

std::map<std::string, Tensor> evaluate_reference(const Graph& g,
                                                 const std::map<std::string, Tensor>& inputs) {
    std::vector<std::optional<Tensor>> computed(g.values.size());
    auto tensor_of = [&](ValueId id) -> const Tensor* {
        if (id == kNoId) return nullptr;
        if (computed[id]) return &*computed[id];
        if (g.value(id).is_constant()) return g.value(id).data.get();
        throw Error("graph", "value '" + g.value(id).name + "' is read before it is computed");
    };
    for (const auto& [name, t] : inputs) {
        ValueId id = g.find_value(name);
        bool is_input = false;
        for (ValueId in : g.inputs)
            is_input = is_input || in == id;
        if (!is_input) throw Error("input " + name, "the graph has no input of this name");
        const Value& v = g.value(id);
        if (t.dtype != v.dtype || t.shape != v.shape)
            throw Error("input " + name,
                        "expected " + std::string(to_string(v.dtype)) + shape_string(v.shape) +
                            ", got " + std::string(to_string(t.dtype)) + shape_string(t.shape));
        if (t.bytes.size() != static_cast<size_t>(t.numel() * element_size(t.dtype)))
            throw Error("input " + name, "holds " + std::to_string(t.bytes.size()) +
                                             " bytes, not what its shape needs");
        computed[id] = t;
    }
    for (ValueId in : g.inputs)
        if (!computed[in]) throw Error("input " + g.value(in).name, "not given");

    for (const Node& n : g.nodes) {
        const GraphOp* op = find_graph_op(n.op);
        if (!op) throw Error("node " + n.label(), "no registered op " + n.op);
        std::vector<const Tensor*> in;
        for (ValueId id : n.inputs)
            in.push_back(tensor_of(id));
        std::vector<Tensor> out;
        for (ValueId id : n.outputs)
            out.push_back(Tensor::zeros(g.value(id).dtype, g.value(id).shape));
        op->evaluate(n, g.opset, in, out);
        for (size_t k = 0; k < out.size(); ++k)
            computed[n.outputs[k]] = std::move(out[k]);
    }
    std::map<std::string, Tensor> result;
    for (ValueId id : g.outputs)
        result[g.value(id).name] = *tensor_of(id);
    return result;
}

}  // namespace kiln::graph
