// kiln/graph/op_shape.cpp — ops that move data without arithmetic: Reshape, Flatten, Squeeze,
// Unsqueeze, Transpose, Concat, Split, Slice, Gather, Pad, and the shape producers Shape and
// Constant that import folds.
//
// They work on elements of any stored dtype (f32 data, i64 shapes) by copying bytes. Inputs
// that decide an output shape (Reshape's shape, Slice's bounds, ...) must be constants: kiln's
// IR has static shapes, so such a node with a run-time shape input is declined.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "graph/op.h"

namespace kiln::graph {
namespace {

// Base for ops that accept every stored dtype.
class MoveOp : public GraphOp {
  public:
    std::string decline(const Node&, const Graph&) const override { return ""; }
};

// Reshape, Flatten, Squeeze, Unsqueeze: the bytes stay, the shape changes.
class ViewOp : public MoveOp {
  public:
    void evaluate(const Node&, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        out[0].bytes = in[0]->bytes;
    }
};

class ReshapeOp : public ViewOp {
  public:
    std::string type() const override { return "Reshape"; }
    std::string limits() const override { return "the shape input must be a constant"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        std::vector<int64_t> shape = constant_input(g, n, 1, "shape").to_i64();
        const bool allowzero = n.attr_int("allowzero", 0) != 0;
        int64_t known = 1, infer_at = -1;
        for (size_t i = 0; i < shape.size(); ++i) {
            if (shape[i] == 0 && !allowzero) {
                if (i >= x.shape.size())
                    throw node_error(n, "shape " + shape_string(shape) + " copies dimension " +
                                            std::to_string(i) + " the input lacks");
                shape[i] = x.shape[i];
            }
            if (shape[i] == -1) {
                if (infer_at >= 0) throw node_error(n, "shape has more than one -1");
                infer_at = static_cast<int64_t>(i);
                continue;
            }
            if (shape[i] < 0) throw node_error(n, "shape " + shape_string(shape) + " is invalid");
            known *= shape[i];
        }
        if (infer_at >= 0) shape[infer_at] = known ? x.numel() / known : 0;
        if (numel(shape) != x.numel())
            throw node_error(
                n, "cannot reshape " + shape_string(x.shape) + " to " + shape_string(shape));
        return {{x.dtype, shape}};
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ReshapeOp>());

class FlattenOp : public ViewOp {
  public:
    std::string type() const override { return "Flatten"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "input");
        const int64_t rank = static_cast<int64_t>(x.shape.size());
        int64_t axis = n.attr_int("axis", 1);
        if (axis < -rank || axis > rank)
            throw node_error(n, "axis " + std::to_string(axis) + " is out of range for rank " +
                                    std::to_string(rank));
        if (axis < 0) axis += rank;
        int64_t outer = 1;
        for (int64_t d = 0; d < axis; ++d)
            outer *= x.shape[d];
        return {{x.dtype, {outer, outer ? x.numel() / outer : 0}}};
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<FlattenOp>());

// Squeeze and Unsqueeze: axes are an attribute before opset 13, an input from 13.
std::vector<int64_t> axes_of(const Node& n, const Graph& g, bool* given) {
    *given = true;
    if (g.opset >= 13) {
        if (input(g, n, 1)) return constant_input(g, n, 1, "axes").to_i64();
    } else if (n.has_attr("axes")) {
        return n.attr_ints("axes");
    }
    *given = false;
    return {};
}

class SqueezeOp : public ViewOp {
  public:
    std::string type() const override { return "Squeeze"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        bool given = false;
        std::vector<int64_t> axes = axes_of(n, g, &given);
        const int64_t rank = static_cast<int64_t>(x.shape.size());
        std::vector<char> drop(x.shape.size(), 0);
        for (int64_t a : axes) {
            int64_t d = normalize_axis(n, a, rank);
            if (x.shape[d] != 1)
                throw node_error(n, "cannot squeeze dimension " + std::to_string(d) + " of " +
                                        shape_string(x.shape));
            drop[d] = 1;
        }
        std::vector<int64_t> out;
        for (int64_t d = 0; d < rank; ++d)
            if (!(given ? drop[d] : x.shape[d] == 1)) out.push_back(x.shape[d]);
        return {{x.dtype, out}};
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<SqueezeOp>());

class UnsqueezeOp : public ViewOp {
  public:
    std::string type() const override { return "Unsqueeze"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        bool given = false;
        std::vector<int64_t> axes = axes_of(n, g, &given);
        if (!given) throw node_error(n, "axes are required");
        const int64_t rank = static_cast<int64_t>(x.shape.size() + axes.size());
        std::vector<char> add(rank, 0);
        for (int64_t a : axes) {
            int64_t d = normalize_axis(n, a, rank);
            if (add[d]) throw node_error(n, "axis " + std::to_string(a) + " is repeated");
            add[d] = 1;
        }
        std::vector<int64_t> out;
        size_t next = 0;
        for (int64_t d = 0; d < rank; ++d)
            out.push_back(add[d] ? 1 : x.shape[next++]);
        return {{x.dtype, out}};
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<UnsqueezeOp>());

class TransposeOp : public MoveOp {
  public:
    std::string type() const override { return "Transpose"; }
    static std::vector<int64_t> perm(const Node& n, size_t rank) {
        std::vector<int64_t> p(rank);
        std::iota(p.rbegin(), p.rend(), 0);  // default: reverse the dimensions
        p = n.attr_ints("perm", p);
        std::vector<int64_t> sorted = p;
        std::sort(sorted.begin(), sorted.end());
        std::vector<int64_t> ids(rank);
        std::iota(ids.begin(), ids.end(), 0);
        if (sorted != ids)
            throw node_error(n, "perm " + shape_string(p) + " is not a permutation of rank " +
                                    std::to_string(rank));
        return p;
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        std::vector<int64_t> p = perm(n, x.shape.size()), out;
        for (int64_t d : p)
            out.push_back(x.shape[d]);
        return {{x.dtype, out}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        std::vector<int64_t> p = perm(n, shape.size());
        std::vector<int64_t> in_strides = strides_of(shape);
        const int64_t es = element_size(in[0]->dtype);
        const size_t rank = shape.size();
        std::vector<int64_t> pos(rank, 0);  // output coordinates
        for (int64_t o = 0; o < out[0].numel(); ++o) {
            int64_t i = 0;
            for (size_t d = 0; d < rank; ++d)
                i += pos[d] * in_strides[p[d]];
            std::memcpy(&out[0].bytes[o * es], &in[0]->bytes[i * es], es);
            for (int64_t d = static_cast<int64_t>(rank) - 1; d >= 0; --d) {
                if (++pos[d] < out[0].shape[d]) break;
                pos[d] = 0;
            }
        }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<TransposeOp>());

// Copies `rows` blocks: block r of `len` elements from `src` (at r * src_row + src_off) to
// `dst` (at r * dst_row + dst_off). Concat, Split and Slice's last step are this copy.
void copy_rows(const Tensor& src, Tensor& dst, int64_t rows, int64_t len, int64_t src_row,
               int64_t src_off, int64_t dst_row, int64_t dst_off) {
    const int64_t es = element_size(src.dtype);
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(&dst.bytes[(r * dst_row + dst_off) * es],
                    &src.bytes[(r * src_row + src_off) * es], len * es);
}

class ConcatOp : public MoveOp {
  public:
    std::string type() const override { return "Concat"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& first = required_input(g, n, 0, "inputs");
        const int64_t rank = static_cast<int64_t>(first.shape.size());
        const int64_t axis = normalize_axis(n, n.attr_int("axis"), rank);
        std::vector<int64_t> out = first.shape;
        out[axis] = 0;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
            const Value& v = required_input(g, n, i, "inputs");
            bool fits = static_cast<int64_t>(v.shape.size()) == rank && v.dtype == first.dtype;
            for (int64_t d = 0; fits && d < rank; ++d)
                fits = d == axis || v.shape[d] == first.shape[d];
            if (!fits)
                throw node_error(n, "input '" + v.name + "' " + shape_string(v.shape) +
                                        " does not concatenate with " + shape_string(first.shape) +
                                        " on axis " + std::to_string(axis));
            out[axis] += v.shape[axis];
        }
        return {{first.dtype, out}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = out[0].shape;
        const int64_t axis = normalize_axis(n, n.attr_int("axis"), shape.size());
        const auto [outer, inner] = split_at_axis(shape, axis);
        int64_t offset = 0;
        for (const Tensor* t : in) {
            const int64_t len = t->shape[axis] * inner;
            copy_rows(*t, out[0], outer, len, len, 0, shape[axis] * inner, offset);
            offset += len;
        }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ConcatOp>());

class SplitOp : public MoveOp {
  public:
    std::string type() const override { return "Split"; }
    // The sizes of the parts: `split` (attribute before opset 13, input from 13) or equal.
    static std::vector<int64_t> parts(const Node& n, const Graph* g, const Tensor* split_in,
                                      int opset, int64_t dim) {
        std::vector<int64_t> split;
        if (opset < 13)
            split = n.attr_ints("split", {});
        else if (g && input(*g, n, 1))
            split = constant_input(*g, n, 1, "split").to_i64();
        else if (split_in)
            split = split_in->to_i64();
        const int64_t count = static_cast<int64_t>(n.outputs.size());
        if (split.empty()) {
            if (dim % count != 0)
                throw node_error(n, "dimension " + std::to_string(dim) + " does not split into " +
                                        std::to_string(count) + " equal parts");
            return std::vector<int64_t>(count, dim / count);
        }
        if (static_cast<int64_t>(split.size()) != count ||
            std::accumulate(split.begin(), split.end(), int64_t{0}) != dim)
            throw node_error(n, "split " + shape_string(split) + " does not divide " +
                                    std::to_string(dim) + " into " + std::to_string(count));
        return split;
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "input");
        const int64_t axis = normalize_axis(n, n.attr_int("axis", 0), x.shape.size());
        std::vector<ValueType> out;
        for (int64_t size : parts(n, &g, nullptr, g.opset, x.shape[axis])) {
            out.push_back({x.dtype, x.shape});
            out.back().shape[axis] = size;
        }
        return out;
    }
    void evaluate(const Node& n, int opset, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        const int64_t axis = normalize_axis(n, n.attr_int("axis", 0), shape.size());
        const auto [outer, inner] = split_at_axis(shape, axis);
        std::vector<int64_t> sizes =
            parts(n, nullptr, in.size() > 1 ? in[1] : nullptr, opset, shape[axis]);
        int64_t offset = 0;
        for (size_t k = 0; k < out.size(); ++k) {
            const int64_t len = sizes[k] * inner;
            copy_rows(*in[0], out[k], outer, len, shape[axis] * inner, offset, len, 0);
            offset += len;
        }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<SplitOp>());

}  // namespace
}  // namespace kiln::graph
