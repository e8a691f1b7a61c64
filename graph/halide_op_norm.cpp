// kiln/graph/halide_op_norm.cpp — Halide lowerings of the normalisations and reductions
// (graph/op_norm.cpp): BatchNormalization at inference, Softmax and LogSoftmax (opset 13's one
// axis; the flattened rows of opsets 11-12), ReduceMean, ReduceSum and ReduceMax.
//
// A softmax row's maximum and sum are Funcs of the input's rank whose reduced coordinates are
// always 0, computed at root: once per row, not once per output element.
#include <algorithm>
#include <cmath>

#include "graph/halide_op_helpers.h"

namespace kiln::graph {
namespace {

using Halide::Expr;
using Halide::Func;

class BatchNormLowering : public HalideLowering {
  public:
    std::string type() const override { return "BatchNormalization"; }
    std::vector<Func> define(const Node& n, const Graph&,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "X");
        const HalideTensor& scale = data_input(n, in, 1, "scale");
        const HalideTensor& bias = data_input(n, in, 2, "B");
        const HalideTensor& mean = data_input(n, in, 3, "mean");
        const HalideTensor& var = data_input(n, in, 4, "var");
        const float eps = n.attr_float("epsilon", 1e-5f);
        if (x.shape.size() < 2) throw node_error(n, "input is less than 2-D");
        return {make_func("batch_norm", x.shape.size(), [&](const Coords& c) {
            Coords ch = {c[1]};
            Expr inv = 1.0f / Halide::sqrt(at(var, ch) + eps);
            return (at(x, c) - at(mean, ch)) * inv * at(scale, ch) + at(bias, ch);
        })};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<BatchNormLowering>());

// An RDom over the dimensions of `shape` marked in `reduced`, and the coordinates that read
// the input at it: the reduced ones from the RDom, the others from `keep` (ONNX order).
struct Reduction {
    Halide::RDom r;
    std::vector<int> rvar;  // per input dimension: its RDom dimension, or -1
};

Reduction reduction_over(const std::vector<int64_t>& shape, const std::vector<char>& reduced) {
    Reduction red;
    std::vector<Halide::Range> ranges;
    red.rvar.assign(shape.size(), -1);
    for (size_t d = shape.size(); d-- > 0;)  // innermost dimension first
        if (reduced[d]) {
            red.rvar[d] = static_cast<int>(ranges.size());
            ranges.push_back({0, i32(shape[d])});
        }
    if (!ranges.empty()) red.r = Halide::RDom(ranges);
    return red;
}

class SoftmaxLowering : public HalideLowering {
  public:
    explicit SoftmaxLowering(bool log) : log_(log) {}
    std::string type() const override { return log_ ? "LogSoftmax" : "Softmax"; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "input");
        const int64_t rank = static_cast<int64_t>(x.shape.size());
        if (rank == 0) throw node_error(n, "a scalar input");
        const int64_t axis = normalize_axis(n, n.attr_int("axis", g.opset >= 13 ? -1 : 1), rank);
        std::vector<char> reduced(rank, 0);
        for (int64_t d = axis; d < (g.opset >= 13 ? axis + 1 : rank); ++d)
            reduced[d] = 1;
        Reduction red = reduction_over(x.shape, reduced);
        auto row = [&](const Coords& c) {  // c with the reduced coordinates from the RDom
            Coords xc = c;
            for (int64_t d = 0; d < rank; ++d)
                if (reduced[d]) xc[d] = red.r[red.rvar[d]];
            return xc;
        };
        auto row_start = [&](const Coords& c) {
            Coords rc = c;
            for (int64_t d = 0; d < rank; ++d)
                if (reduced[d]) rc[d] = 0;
            return rc;
        };
        Func mx = make_func("softmax_max", rank,
                            [&](const Coords& c) { return Halide::maximum(red.r, at(x, row(c))); });
        HalideTensor mx_t{mx, x.shape};
        Func total = make_func("softmax_sum", rank, [&](const Coords& c) {
            return Halide::sum(red.r, Halide::exp(at(x, row(c)) - at(mx_t, c)));
        });
        HalideTensor total_t{total, x.shape};
        mx.compute_root();
        total.compute_root();
        return {make_func(log_ ? "log_softmax" : "softmax", rank, [&](const Coords& c) {
            Expr v = at(x, c) - at(mx_t, row_start(c));
            Expr s = at(total_t, row_start(c));
            return log_ ? v - Halide::log(s) : Halide::exp(v) / s;
        })};
    }

  private:
    bool log_;
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<SoftmaxLowering>(false));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<SoftmaxLowering>(true));

enum class Reduce { mean, sum, max };

class ReduceLowering : public HalideLowering {
  public:
    ReduceLowering(std::string type, Reduce kind) : type_(std::move(type)), kind_(kind) {}
    std::string type() const override { return type_; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "data");
        const size_t rank = x.shape.size();
        // Axes as the reference reads them: ReduceSum's from input 1 from opset 13.
        const bool from_input = kind_ == Reduce::sum && g.opset >= 13;
        std::vector<int64_t> axes;
        if (from_input && in.size() > 1 && (in[1].constant || in[1].f.defined()))
            axes = constant_ints(n, in, 1, "axes");
        if (!from_input) axes = n.attr_ints("axes", {});
        std::vector<char> reduced(rank, 0);
        if (axes.empty() && !(from_input && n.attr_int("noop_with_empty_axes", 0) != 0))
            reduced.assign(rank, 1);
        for (int64_t a : axes)
            reduced[normalize_axis(n, a, static_cast<int64_t>(rank))] = 1;
        const bool keep = n.attr_int("keepdims", 1) != 0;
        const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
        Reduction red = reduction_over(x.shape, reduced);
        int64_t count = 1;
        for (size_t d = 0; d < rank; ++d)
            if (reduced[d]) count *= x.shape[d];
        return {make_func(type_, shape.size(), [&](const Coords& c) {
            Coords xc;
            size_t next = 0;  // the output coordinate for the next kept (or kept-as-1) dim
            for (size_t d = 0; d < rank; ++d) {
                if (reduced[d]) {
                    xc.push_back(red.r[red.rvar[d]]);
                    if (keep) ++next;
                } else {
                    xc.push_back(c[next++]);
                }
            }
            if (!red.r.defined()) return at(x, xc);
            if (kind_ == Reduce::max) return Halide::maximum(red.r, at(x, xc));
            Expr total = Halide::sum(red.r, at(x, xc));
            return kind_ == Reduce::mean ? total / static_cast<float>(count) : total;
        })};
    }

  private:
    std::string type_;
    Reduce kind_;
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<ReduceLowering>("ReduceMean", Reduce::mean));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<ReduceLowering>("ReduceSum", Reduce::sum));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<ReduceLowering>("ReduceMax", Reduce::max));

}  // namespace
}  // namespace kiln::graph
