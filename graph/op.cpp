// kiln/graph/op.cpp — the graph op registry and the helpers the op files share (see op.h).
#include <algorithm>

#include "graph/op.h"

#include <map>

namespace kiln::graph {
namespace {

std::map<std::string, std::unique_ptr<GraphOp>>& registry() {
    static std::map<std::string, std::unique_ptr<GraphOp>> ops;
    return ops;
}

}  // namespace

GraphOpRegistration::GraphOpRegistration(std::unique_ptr<GraphOp> op) {
    std::string type = op->type();
    registry()[type] = std::move(op);
}

const GraphOp* find_graph_op(const std::string& type) {
    auto it = registry().find(type);
    return it == registry().end() ? nullptr : it->second.get();
}

std::vector<const GraphOp*> all_graph_ops() {
    std::vector<const GraphOp*> out;
    for (const auto& [type, op] : registry())
        out.push_back(op.get());
    return out;
}

std::string GraphOp::decline(const Node& n, const Graph& g) const {
    return require_f32(n, g);
}

Error node_error(const Node& n, const std::string& message) {
    return Error("node " + n.label(), message);
}

const Value* input(const Graph& g, const Node& n, size_t i) {
    if (i >= n.inputs.size() || n.inputs[i] == kNoId) return nullptr;
    return &g.value(n.inputs[i]);
}

const Value& required_input(const Graph& g, const Node& n, size_t i, const char* what) {
    const Value* v = input(g, n, i);
    if (!v) throw node_error(n, "input " + std::to_string(i) + " (" + what + ") is missing");
    return *v;
}

const Tensor& constant_input(const Graph& g, const Node& n, size_t i, const char* what) {
    const Value& v = required_input(g, n, i, what);
    if (!v.is_constant())
        throw Declined(n.op + " input " + std::to_string(i) + " (" + what + ", '" + v.name +
                       "') is computed at run time; kiln needs it constant for static shapes");
    return *v.data;
}

std::string require_f32(const Node& n, const Graph& g, std::vector<size_t> inputs) {
    if (inputs.empty())
        for (size_t i = 0; i < n.inputs.size(); ++i)
            inputs.push_back(i);
    for (size_t i : inputs) {
        const Value* v = input(g, n, i);
        if (v && v->dtype != DType::f32)
            return "input '" + v->name + "' is " + std::string(to_string(v->dtype)) +
                   "; kiln runs " + n.op + " in f32 only";
    }
    for (ValueId out : n.outputs) {
        const Value& v = g.value(out);
        if (v.dtype != DType::f32)
            return "output '" + v.name + "' is " + std::string(to_string(v.dtype)) +
                   "; kiln runs " + n.op + " in f32 only";
    }
    return "";
}

std::string require_dtypes(const Node& n, const Graph& g, size_t i,
                           const std::vector<DType>& allowed) {
    const Value* v = input(g, n, i);
    if (!v) return "";
    std::string names;
    for (DType d : allowed) {
        if (v->dtype == d) return "";
        names += (names.empty() ? "" : " or ") + std::string(to_string(d));
    }
    return "input '" + v->name + "' is " + std::string(to_string(v->dtype)) + "; kiln runs " +
           n.op + " on " + names + " only";
}

std::string require_outputs(const Node& n, size_t count) {
    if (n.outputs.size() <= count) return "";
    return "optional output " + std::to_string(count) + " is not produced by kiln's " + n.op;
}

int64_t normalize_axis(const Node& n, int64_t axis, int64_t rank) {
    if (axis < -rank || axis >= rank)
        throw node_error(n, "axis " + std::to_string(axis) + " is out of range for rank " +
                                std::to_string(rank));
    return axis < 0 ? axis + rank : axis;
}

AxisSplit split_at_axis(const std::vector<int64_t>& shape, int64_t axis) {
    AxisSplit s;
    for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
        if (d < axis) s.outer *= shape[d];
        if (d > axis) s.inner *= shape[d];
    }
    return s;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
        s[i] = s[i + 1] * shape[i + 1];
    return s;
}

std::vector<int64_t> broadcast_shapes(const Node& n, const std::vector<int64_t>& a,
                                      const std::vector<int64_t>& b) {
    size_t rank = std::max(a.size(), b.size());
    std::vector<int64_t> out(rank);
    for (size_t i = 0; i < rank; ++i) {
        int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
        int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
        if (da != db && da != 1 && db != 1)
            throw node_error(
                n, "shapes " + shape_string(a) + " and " + shape_string(b) + " do not broadcast");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

std::vector<int64_t> broadcast_index(const std::vector<int64_t>& in,
                                     const std::vector<int64_t>& out) {
    size_t rank = out.size();
    size_t lead = rank - in.size();
    // The input's stride along each output dimension; 0 where it is broadcast.
    std::vector<int64_t> in_strides = strides_of(in);
    std::vector<int64_t> stride(rank, 0);
    for (size_t i = lead; i < rank; ++i)
        stride[i] = in[i - lead] == 1 ? 0 : in_strides[i - lead];
    std::vector<int64_t> index(static_cast<size_t>(numel(out)));
    std::vector<int64_t> pos(rank, 0);
    int64_t offset = 0;
    for (size_t flat = 0; flat < index.size(); ++flat) {
        index[flat] = offset;
        for (int64_t d = static_cast<int64_t>(rank) - 1; d >= 0; --d) {
            offset += stride[d];
            if (++pos[d] < out[d]) break;
            offset -= stride[d] * pos[d];
            pos[d] = 0;
        }
    }
    return index;
}

float scalar_f32(const Tensor& t) {
    if (t.numel() < 1) throw Error("tensor", "expected a scalar, got an empty tensor");
    if (t.dtype == DType::f32) return t.data<float>()[0];
    return static_cast<float>(t.to_i64()[0]);
}

}  // namespace kiln::graph
