// kiln/graph/op_index.cpp — indexing and constant ops: Slice, Gather, Pad, Shape, Constant.
//
// Shape and Constant always fold at import (Shape needs only its input's static shape), and
// Gather, Slice and friends fold with them when their inputs are constants, which turns the
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains of exported models into constants.
#include <algorithm>
#include <cstring>

#include "graph/op.h"

namespace kiln::graph {
namespace {

class SliceOp : public GraphOp {
  public:
    std::string type() const override { return "Slice"; }
    std::string limits() const override { return "starts, ends, axes and steps must be constants"; }
    std::string decline(const Node&, const Graph&) const override { return ""; }

    // Per dimension of the input: first index, step and count.
    struct Plan {
        std::vector<int64_t> start, step, count;
    };
    static Plan plan(const Node& n, const std::vector<int64_t>& shape,
                     const std::vector<const Tensor*>& args) {
        const int64_t rank = static_cast<int64_t>(shape.size());
        std::vector<int64_t> starts = args[0]->to_i64(), ends = args[1]->to_i64();
        std::vector<int64_t> axes, steps;
        if (args[2])
            axes = args[2]->to_i64();
        else
            for (size_t i = 0; i < starts.size(); ++i)
                axes.push_back(static_cast<int64_t>(i));
        steps = args[3] ? args[3]->to_i64() : std::vector<int64_t>(starts.size(), 1);
        if (ends.size() != starts.size() || axes.size() != starts.size() ||
            steps.size() != starts.size())
            throw node_error(n, "starts, ends, axes and steps differ in length");
        Plan p;
        p.start.assign(rank, 0);
        p.step.assign(rank, 1);
        p.count = shape;
        for (size_t i = 0; i < starts.size(); ++i) {
            const int64_t d = normalize_axis(n, axes[i], rank), dim = shape[d];
            const int64_t step = steps[i];
            if (step == 0) throw node_error(n, "a step of 0");
            int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
            int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
            // Clamped as ONNX says: [0, dim] going forward, [-1, dim - 1] going backward.
            if (step > 0) {
                s = std::clamp<int64_t>(s, 0, dim);
                e = std::clamp<int64_t>(e, 0, dim);
                p.count[d] = e > s ? (e - s + step - 1) / step : 0;
            } else {
                s = std::clamp<int64_t>(s, -1, dim - 1);
                e = std::clamp<int64_t>(e, -1, dim - 1);
                p.count[d] = s > e ? (s - e - step - 1) / -step : 0;
            }
            p.start[d] = s;
            p.step[d] = step;
        }
        return p;
    }
    static std::vector<const Tensor*> args(const Node& n, const Graph& g) {
        return {&constant_input(g, n, 1, "starts"), &constant_input(g, n, 2, "ends"),
                input(g, n, 3) ? &constant_input(g, n, 3, "axes") : nullptr,
                input(g, n, 4) ? &constant_input(g, n, 4, "steps") : nullptr};
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        return {{x.dtype, plan(n, x.shape, args(n, g)).count}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        std::vector<const Tensor*> a = {in[1], in[2], in.size() > 3 ? in[3] : nullptr,
                                        in.size() > 4 ? in[4] : nullptr};
        const auto& shape = in[0]->shape;
        Plan p = plan(n, shape, a);
        std::vector<int64_t> strides = strides_of(shape);
        const int64_t es = element_size(in[0]->dtype);
        std::vector<int64_t> pos(shape.size(), 0);
        for (int64_t o = 0; o < out[0].numel(); ++o) {
            int64_t i = 0;
            for (size_t d = 0; d < shape.size(); ++d)
                i += (p.start[d] + pos[d] * p.step[d]) * strides[d];
            std::memcpy(&out[0].bytes[o * es], &in[0]->bytes[i * es], es);
            for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
                if (++pos[d] < p.count[d]) break;
                pos[d] = 0;
            }
        }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<SliceOp>());

class GatherOp : public GraphOp {
  public:
    std::string type() const override { return "Gather"; }
    std::string decline(const Node& n, const Graph& g) const override {
        return require_dtypes(n, g, 1, {DType::i64, DType::i32});
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        const Value& idx = required_input(g, n, 1, "indices");
        const int64_t axis = normalize_axis(n, n.attr_int("axis", 0), x.shape.size());
        std::vector<int64_t> out(x.shape.begin(), x.shape.begin() + axis);
        out.insert(out.end(), idx.shape.begin(), idx.shape.end());
        out.insert(out.end(), x.shape.begin() + axis + 1, x.shape.end());
        return {{x.dtype, out}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        const int64_t axis = normalize_axis(n, n.attr_int("axis", 0), shape.size());
        const auto [outer, inner] = split_at_axis(shape, axis);
        const int64_t dim = shape[axis], es = element_size(in[0]->dtype);
        std::vector<int64_t> idx = in[1]->to_i64();
        for (int64_t& i : idx) {
            if (i < -dim || i >= dim)
                throw node_error(n, "index " + std::to_string(i) + " is out of range for " +
                                        std::to_string(dim));
            if (i < 0) i += dim;
        }
        const int64_t count = static_cast<int64_t>(idx.size());
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t k = 0; k < count; ++k)
                std::memcpy(&out[0].bytes[((o * count + k) * inner) * es],
                            &in[0]->bytes[((o * dim + idx[k]) * inner) * es], inner * es);
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<GatherOp>());

// Pad (opset 11+: pads and constant_value are inputs), modes constant, reflect and edge.
class PadOp : public GraphOp {
  public:
    std::string type() const override { return "Pad"; }
    std::string limits() const override { return "pads must be a constant"; }
    std::string decline(const Node&, const Graph&) const override { return ""; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        std::vector<int64_t> pads = constant_input(g, n, 1, "pads").to_i64();
        std::string mode = n.attr_string("mode", "constant");
        if (mode != "constant" && mode != "reflect" && mode != "edge")
            throw node_error(n, "unknown mode '" + mode + "'");
        if (input(g, n, 3)) throw Declined("the axes input (opset 18)");
        const size_t rank = x.shape.size();
        if (pads.size() != 2 * rank)
            throw node_error(n, "pads has " + std::to_string(pads.size()) + " entries, not " +
                                    std::to_string(2 * rank));
        std::vector<int64_t> out = x.shape;
        for (size_t d = 0; d < rank; ++d) {
            out[d] += pads[d] + pads[d + rank];
            if (out[d] < 0) throw node_error(n, "pads remove more than the input has");
            if (mode == "reflect" && x.shape[d] < 2 && (pads[d] > 0 || pads[d + rank] > 0))
                throw node_error(n, "reflect needs at least 2 elements to pad");
        }
        return {{x.dtype, out}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        const size_t rank = shape.size();
        std::vector<int64_t> pads = in[1]->to_i64();
        const std::string mode = n.attr_string("mode", "constant");
        const int64_t es = element_size(in[0]->dtype);
        std::vector<int64_t> strides = strides_of(shape);
        std::vector<int64_t> pos(rank, 0);
        for (int64_t o = 0; o < out[0].numel(); ++o) {
            int64_t i = 0;
            bool inside = true;
            for (size_t d = 0; d < rank; ++d) {
                int64_t c = pos[d] - pads[d], dim = shape[d];
                if (c < 0 || c >= dim) {
                    if (mode == "edge") {
                        c = std::clamp<int64_t>(c, 0, dim - 1);
                    } else if (mode == "reflect") {
                        const int64_t period = 2 * (dim - 1);
                        c = ((c % period) + period) % period;
                        if (c >= dim) c = period - c;
                    } else {
                        inside = false;
                    }
                }
                i += c * strides[d];
            }
            uint8_t* dst = &out[0].bytes[o * es];
            if (inside)
                std::memcpy(dst, &in[0]->bytes[i * es], es);
            else if (in.size() > 2 && in[2])
                std::memcpy(dst, in[2]->bytes.data(), es);
            else
                std::memset(dst, 0, es);
            for (int64_t d = static_cast<int64_t>(rank) - 1; d >= 0; --d) {
                if (++pos[d] < out[0].shape[d]) break;
                pos[d] = 0;
            }
        }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<PadOp>());

class ShapeOp : public GraphOp {
  public:
    std::string type() const override { return "Shape"; }
    std::string decline(const Node&, const Graph&) const override { return ""; }
    bool reads_input_data() const override { return false; }
    // Opset 15's start and end select a range of dimensions, clamped like Slice.
    static std::pair<int64_t, int64_t> range(const Node& n, int64_t rank) {
        int64_t s = n.attr_int("start", 0), e = n.attr_int("end", rank);
        if (s < 0) s += rank;
        if (e < 0) e += rank;
        s = std::clamp<int64_t>(s, 0, rank);
        e = std::clamp<int64_t>(e, 0, rank);
        return {s, std::max(s, e)};
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        auto [s, e] = range(n, x.shape.size());
        return {{DType::i64, {e - s}}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        auto [s, e] = range(n, shape.size());
        for (int64_t i = s; i < e; ++i)
            out[0].data<int64_t>()[i - s] = shape[i];
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ShapeOp>());

// Constant: value (a tensor), or value_float(s) / value_int(s). Sparse and string values are
// declined.
class ConstantOp : public GraphOp {
  public:
    std::string type() const override { return "Constant"; }
    std::string limits() const override { return "no sparse_value, no strings"; }
    std::string decline(const Node& n, const Graph&) const override {
        for (const char* key : {"sparse_value", "value_string", "value_strings"})
            if (n.has_attr(key)) return std::string("a ") + key;
        return "";
    }
    static Tensor value(const Node& n) {
        if (n.has_attr("value")) return n.attr_tensor("value");
        if (n.has_attr("value_float"))
            return Tensor::from_f32({}, {n.attr_float("value_float", 0)});
        if (n.has_attr("value_floats")) {
            std::vector<float> v = n.attr_floats("value_floats", {});
            return Tensor::from_f32({static_cast<int64_t>(v.size())}, v);
        }
        if (n.has_attr("value_int")) return Tensor::from_i64({}, {n.attr_int("value_int")});
        if (n.has_attr("value_ints")) {
            std::vector<int64_t> v = n.attr_ints("value_ints");
            return Tensor::from_i64({static_cast<int64_t>(v.size())}, v);
        }
        throw node_error(n, "has no value attribute");
    }
    std::vector<ValueType> infer(const Node& n, const Graph&) const override {
        Tensor t = value(n);
        return {{t.dtype, t.shape}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>&,
                  std::vector<Tensor>& out) const override {
        out[0] = value(n);
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ConstantOp>());

}  // namespace
}  // namespace kiln::graph
