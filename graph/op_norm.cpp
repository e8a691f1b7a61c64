// kiln/graph/op_norm.cpp — normalisations and reductions: BatchNormalization (inference),
// Softmax and LogSoftmax (opset 13's single axis; the flattening of opsets 11-12), ReduceMean,
// ReduceSum and ReduceMax with axes as an attribute (ReduceSum: an input from opset 13).
#include <algorithm>
#include <cmath>

#include "graph/op.h"

namespace kiln::graph {
namespace {

class BatchNormOp : public GraphOp {
  public:
    std::string type() const override { return "BatchNormalization"; }
    std::string limits() const override { return "inference only (training_mode 0, one output)"; }
    std::string decline(const Node& n, const Graph& g) const override {
        if (n.attr_int("training_mode", 0) != 0) return "training_mode 1";
        if (std::string r = require_outputs(n, 1); !r.empty()) return r + " (training statistics)";
        return require_f32(n, g);
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "X");
        if (x.shape.size() < 2) throw node_error(n, "input " + shape_string(x.shape) + " < 2-D");
        const char* names[] = {"scale", "B", "mean", "var"};
        for (size_t i = 1; i < 5; ++i) {
            const Value& p = required_input(g, n, i, names[i - 1]);
            if (p.shape != std::vector<int64_t>{x.shape[1]})
                throw node_error(n, std::string(names[i - 1]) + " " + shape_string(p.shape) +
                                        " must be [" + std::to_string(x.shape[1]) + "]");
        }
        return {{DType::f32, x.shape}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const double eps = n.attr_float("epsilon", 1e-5f);
        const int64_t batch = in[0]->shape[0], c = in[0]->shape[1];
        const int64_t size = in[0]->numel() / std::max<int64_t>(batch * c, 1);
        const float* x = in[0]->data<float>();
        const float *scale = in[1]->data<float>(), *bias = in[2]->data<float>(),
                    *mean = in[3]->data<float>(), *var = in[4]->data<float>();
        float* y = out[0].data<float>();
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t ch = 0; ch < c; ++ch) {
                const double inv = 1.0 / std::sqrt(static_cast<double>(var[ch]) + eps);
                const int64_t base = (b * c + ch) * size;
                for (int64_t i = 0; i < size; ++i)
                    y[base + i] =
                        static_cast<float>((x[base + i] - mean[ch]) * inv * scale[ch] + bias[ch]);
            }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<BatchNormOp>());

// Softmax and LogSoftmax. From opset 13 the op normalises along `axis` (default -1); before,
// the input is seen as 2-D [outer, inner] split at `axis` (default 1) and each row normalised.
class SoftmaxOp : public GraphOp {
  public:
    explicit SoftmaxOp(bool log) : log_(log) {}
    std::string type() const override { return log_ ? "LogSoftmax" : "Softmax"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "input");
        normalize_axis(n, n.attr_int("axis", g.opset >= 13 ? -1 : 1),
                       std::max<int64_t>(1, x.shape.size()));
        return {{DType::f32, x.shape}};
    }
    void evaluate(const Node& n, int opset, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        const int64_t rank = std::max<int64_t>(1, shape.size());
        const int64_t axis = normalize_axis(n, n.attr_int("axis", opset >= 13 ? -1 : 1), rank);
        // Rows of `len` elements, `stride` apart, over outer x inner positions.
        int64_t outer = 1, len = 1, inner = 1;
        for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
            if (d < axis) outer *= shape[d];
            if (opset >= 13) {
                if (d == axis) len = shape[d];
                if (d > axis) inner *= shape[d];
            } else if (d >= axis) {
                len *= shape[d];
            }
        }
        const float* x = in[0]->data<float>();
        float* y = out[0].data<float>();
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                const int64_t base = o * len * inner + i;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < len; ++j)
                    mx = std::fmax(mx, x[base + j * inner]);
                for (int64_t j = 0; j < len; ++j)
                    sum += std::exp(x[base + j * inner] - mx);
                for (int64_t j = 0; j < len; ++j) {
                    double v = x[base + j * inner] - mx;
                    y[base + j * inner] =
                        static_cast<float>(log_ ? v - std::log(sum) : std::exp(v) / sum);
                }
            }
    }

  private:
    bool log_;
};
KILN_REGISTER_GRAPH_OP(std::make_unique<SoftmaxOp>(false));
KILN_REGISTER_GRAPH_OP(std::make_unique<SoftmaxOp>(true));

enum class Reduce { mean, sum, max };

class ReduceOp : public GraphOp {
  public:
    ReduceOp(std::string type, Reduce kind) : type_(std::move(type)), kind_(kind) {}
    std::string type() const override { return type_; }
    std::string limits() const override { return "f32"; }
    std::string decline(const Node& n, const Graph& g) const override {
        return require_f32(n, g, {0});
    }

    // Which dimensions are reduced. ReduceSum takes axes as an input from opset 13; the
    // others as an attribute up to opset 17.
    std::vector<char> reduced(const Node& n, const Graph* g, int opset, const Tensor* axes_in,
                              size_t rank) const {
        std::vector<int64_t> axes;
        bool from_input = kind_ == Reduce::sum && opset >= 13;
        if (from_input) {
            if (g && input(*g, n, 1)) axes = constant_input(*g, n, 1, "axes").to_i64();
            if (!g && axes_in) axes = axes_in->to_i64();
        } else {
            axes = n.attr_ints("axes", {});
        }
        std::vector<char> r(rank, 0);
        if (axes.empty() && !(from_input && n.attr_int("noop_with_empty_axes", 0) != 0))
            r.assign(rank, 1);
        for (int64_t a : axes)
            r[normalize_axis(n, a, static_cast<int64_t>(rank))] = 1;
        return r;
    }

    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "data");
        std::vector<char> r = reduced(n, &g, g.opset, nullptr, x.shape.size());
        const bool keep = n.attr_int("keepdims", 1) != 0;
        std::vector<int64_t> out;
        for (size_t d = 0; d < x.shape.size(); ++d) {
            if (!r[d])
                out.push_back(x.shape[d]);
            else if (keep)
                out.push_back(1);
        }
        return {{DType::f32, out}};
    }

    void evaluate(const Node& n, int opset, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const auto& shape = in[0]->shape;
        std::vector<char> r =
            reduced(n, nullptr, opset, in.size() > 1 ? in[1] : nullptr, shape.size());
        // The output index of each input element: its coordinates with reduced ones zeroed.
        std::vector<int64_t> kept = shape;
        for (size_t d = 0; d < shape.size(); ++d)
            if (r[d]) kept[d] = 1;
        std::vector<int64_t> kept_strides = strides_of(kept);
        std::vector<double> acc(static_cast<size_t>(out[0].numel()),
                                kind_ == Reduce::max ? -INFINITY : 0.0);
        const float* x = in[0]->data<float>();
        std::vector<int64_t> pos(shape.size(), 0);
        for (int64_t i = 0; i < in[0]->numel(); ++i) {
            int64_t o = 0;
            for (size_t d = 0; d < shape.size(); ++d)
                if (!r[d]) o += pos[d] * kept_strides[d];
            acc[o] = kind_ == Reduce::max ? std::fmax(acc[o], x[i]) : acc[o] + x[i];
            for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
                if (++pos[d] < shape[d]) break;
                pos[d] = 0;
            }
        }
        const int64_t count = in[0]->numel() / std::max<int64_t>(1, out[0].numel());
        float* y = out[0].data<float>();
        for (size_t o = 0; o < acc.size(); ++o)
            y[o] = static_cast<float>(kind_ == Reduce::mean ? acc[o] / count : acc[o]);
    }

  private:
    std::string type_;
    Reduce kind_;
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ReduceOp>("ReduceMean", Reduce::mean));
KILN_REGISTER_GRAPH_OP(std::make_unique<ReduceOp>("ReduceSum", Reduce::sum));
KILN_REGISTER_GRAPH_OP(std::make_unique<ReduceOp>("ReduceMax", Reduce::max));

}  // namespace
}  // namespace kiln::graph
