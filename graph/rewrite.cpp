// kiln/graph/rewrite.cpp — the passes' shared editing helpers (see rewrite.h).
#include "graph/rewrite.h"

#include <memory>

namespace kiln::graph {

Uses::Uses(const Graph& g)
    : reads(g.values.size(), 0),
      readers(g.values.size()),
      is_output(g.values.size(), 0),
      is_input(g.values.size(), 0) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
        for (ValueId v : g.nodes[i].inputs) {
            if (v == kNoId) continue;
            ++reads[v];
            auto& r = readers[v];
            if (r.empty() || r.back() != static_cast<NodeId>(i))
                r.push_back(static_cast<NodeId>(i));
        }
    for (ValueId v : g.outputs)
        is_output[v] = 1;
    for (ValueId v : g.inputs)
        is_input[v] = 1;
}

void erase_nodes(Graph& g, const std::vector<char>& dead) {
    std::vector<Node> kept;
    kept.reserve(g.nodes.size());
    for (size_t i = 0; i < g.nodes.size(); ++i)
        if (i >= dead.size() || !dead[i]) kept.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(kept);
    for (Value& v : g.values)
        v.producer = kNoId;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        for (ValueId out : g.nodes[i].outputs)
            g.value(out).producer = static_cast<NodeId>(i);
}

std::string unique_value_name(const Graph& g, const std::string& base) {
    if (g.find_value(base) == kNoId) return base;
    for (int i = 1;; ++i) {
        std::string name = base + "." + std::to_string(i);
        if (g.find_value(name) == kNoId) return name;
    }
}

ValueId add_constant(Graph& g, const std::string& base, Tensor t) {
    Value v;
    v.name = unique_value_name(g, base);
    v.dtype = t.dtype;
    v.shape = t.shape;
    v.data = std::make_shared<const Tensor>(std::move(t));
    return g.add_value(std::move(v));
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
    std::string s;
    for (size_t i = 0; i < items.size(); ++i)
        s += (i ? separator : "") + items[i];
    return s;
}

}  // namespace kiln::graph
