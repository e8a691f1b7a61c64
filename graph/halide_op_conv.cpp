// kiln/graph/halide_op_conv.cpp — Halide lowerings of the kernel ops: Conv and kiln.Conv
// (graph/op_conv.cpp, graph/op_fused.cpp), Gemm, MatMul and kiln.Dense (graph/op_gemm.cpp).
//
// These are the fallbacks for the kernel nodes no tuned kernel covers (graph/tasks.h says
// which). Each output element is one inline reduction (Halide::sum over an RDom), which Halide
// computes inside the output's innermost loop: with the generic schedule's vectorized output
// the accumulator is one vector register per group of outputs, and the weights and inputs are
// streamed through it. The fused epilogue is generators/epilogue.h's, the one the tuned kernels
// apply.
#include "generators/epilogue.h"
#include "graph/fused.h"
#include "graph/halide_op_helpers.h"
#include "graph/window.h"

namespace kiln::graph {
namespace {

using Halide::Expr;
using Halide::Func;

// Conv's output with the epilogue `e` applied: for ONNX Conv, `e` is a bias only when the node
// has one (and the bias is input 2, as it is for kiln.Conv).
Func define_conv(const Node& n, const Graph& g, const std::vector<HalideTensor>& in,
                 const Epilogue& e) {
    const HalideTensor& x = data_input(n, in, kFusedData, "X");
    const HalideTensor& w = data_input(n, in, kFusedWeight, "W");
    if (x.shape.size() < 3 || x.shape.size() != w.shape.size())
        throw node_error(n, "input " + shape_string(x.shape) + " and weight " +
                                shape_string(w.shape) + " must have the same rank, >= 3");
    const size_t sr = x.shape.size() - 2;  // spatial rank
    const Window win =
        make_window(n, std::vector<int64_t>(x.shape.begin() + 2, x.shape.end()),
                    std::vector<int64_t>(w.shape.begin() + 2, w.shape.end()), false, true);
    const int64_t group = n.attr_int("group", 1);
    const int64_t cg = x.shape[1] / group, mg = w.shape[0] / group;
    const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
    const size_t lead = 3 - sr;  // the window's unused leading dimensions

    // Zero outside the input's spatial extent, where a pad reaches past it.
    HalideTensor padded = x;
    bool pads = false;
    for (size_t d = 0; d < sr; ++d)
        pads = pads || win.pad_begin[lead + d] > 0 || win.pad_end[lead + d] > 0;
    if (pads) padded.f = padded_spatial(x, 0.0f);

    // The reduction: kernel dims innermost (the last spatial one first), input channels outer.
    std::vector<Halide::Range> ranges;
    for (size_t d = sr; d-- > 0;)
        ranges.push_back({0, i32(w.shape[2 + d])});
    ranges.push_back({0, i32(cg)});
    Halide::RDom r(ranges);
    auto k = [&](size_t d) { return r[static_cast<int>(sr - 1 - d)]; };
    const Halide::RVar ic = r[static_cast<int>(sr)];

    const HalideTensor* bias = e.bias ? &data_input(n, in, kFusedBias, "B") : nullptr;
    const HalideTensor* residual = e.residual ? &data_input(n, in, kFusedResidual, "Z") : nullptr;
    return make_func(n.op == kFusedConv ? "fused_conv" : "conv", shape.size(),
                     [&](const Coords& c) {
                         Expr oc = c[1];
                         Coords xc = {c[0], (oc / i32(mg)) * i32(cg) + ic};
                         Coords wc = {oc, ic};
                         for (size_t d = 0; d < sr; ++d) {
                             const size_t i = lead + d;
                             xc.push_back(c[2 + d] * i32(win.stride[i]) +
                                          k(d) * i32(win.dilation[i]) - i32(win.pad_begin[i]));
                             wc.push_back(k(d));
                         }
                         Expr acc = Halide::sum(r, at(w, wc) * at(padded, xc));
                         return apply_epilogue(e, acc, bias ? at(*bias, {oc}) : Expr(),
                                               residual ? at(*residual, c) : Expr());
                     });
}

class ConvLowering : public HalideLowering {
  public:
    std::string type() const override { return "Conv"; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        Epilogue e;
        e.bias = optional_data_input(in, 2) != nullptr;
        return {define_conv(n, g, in, e)};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<ConvLowering>());

class FusedConvLowering : public HalideLowering {
  public:
    std::string type() const override { return kFusedConv; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        return {define_conv(n, g, in, fused_epilogue(n))};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FusedConvLowering>());

// Gemm: alpha * A' B' + beta * C, C broadcast to [M, N].
class GemmLowering : public HalideLowering {
  public:
    std::string type() const override { return "Gemm"; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& a = data_input(n, in, 0, "A");
        const HalideTensor& b = data_input(n, in, 1, "B");
        const HalideTensor* c_in = optional_data_input(in, 2);
        const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
        const float alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
        const int64_t k = ta ? a.shape[0] : a.shape[1];
        const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
        Halide::RDom r(0, i32(k));
        return {make_func("gemm", 2, [&](const Coords& c) {
            Expr av = ta ? at(a, {r, c[0]}) : at(a, {c[0], r});
            Expr bv = tb ? at(b, {c[1], r}) : at(b, {r, c[1]});
            Expr acc = Halide::sum(r, av * bv);
            if (alpha != 1.0f) acc = alpha * acc;
            if (c_in) acc = acc + beta * broadcast_at(*c_in, c);
            return acc;
        })};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<GemmLowering>());

// MatMul with numpy semantics: a 1-D operand is promoted (and its dimension dropped from the
// output), batch dimensions broadcast.
class MatMulLowering : public HalideLowering {
  public:
    std::string type() const override { return "MatMul"; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& a = data_input(n, in, 0, "A");
        const HalideTensor& b = data_input(n, in, 1, "B");
        if (a.shape.empty() || b.shape.empty())
            throw node_error(n, "MatMul operands must not be scalars");
        const bool a1 = a.shape.size() == 1, b1 = b.shape.size() == 1;
        const int64_t k = a.shape.back();
        const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
        // The output is [batch..., (m unless a1), (n unless b1)].
        const size_t batch = shape.size() - (a1 ? 0 : 1) - (b1 ? 0 : 1);
        Halide::RDom r(0, i32(k));
        // The operand's batch coordinates: aligned at the right, size-1 dims broadcast.
        auto batch_coords = [&](const HalideTensor& t, const Coords& c) {
            const size_t own = t.shape.size() - 2;
            Coords out;
            for (size_t d = 0; d < own; ++d)
                out.push_back(t.shape[d] == 1 ? Expr(0) : c[batch - own + d]);
            return out;
        };
        return {make_func("matmul", shape.size(), [&](const Coords& c) {
            Expr i = a1 ? Expr(0) : c[batch];
            Expr j = b1 ? Expr(0) : c[shape.size() - 1];
            Coords ac = a1 ? Coords{} : batch_coords(a, c);
            if (!a1) ac.push_back(i);
            ac.push_back(r);
            Coords bc = b1 ? Coords{} : batch_coords(b, c);
            bc.push_back(r);
            if (!b1) bc.push_back(j);
            return Halide::sum(r, at(a, ac) * at(b, bc));
        })};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<MatMulLowering>());

// kiln.Dense: X [..., K] times W [N, K] transposed, then the epilogue.
class FusedDenseLowering : public HalideLowering {
  public:
    std::string type() const override { return kFusedDense; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, kFusedData, "X");
        const HalideTensor& w = data_input(n, in, kFusedWeight, "W");
        const Epilogue e = fused_epilogue(n);
        const HalideTensor* bias = e.bias ? &data_input(n, in, kFusedBias, "B") : nullptr;
        const HalideTensor* residual =
            e.residual ? &data_input(n, in, kFusedResidual, "Z") : nullptr;
        const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
        Halide::RDom r(0, i32(w.shape.at(1)));
        return {make_func("fused_dense", shape.size(), [&](const Coords& c) {
            Expr j = c.back();
            Coords xc(c.begin(), c.end() - 1);
            xc.push_back(r);
            Expr acc = Halide::sum(r, at(x, xc) * at(w, {j, r}));
            return apply_epilogue(e, acc, bias ? at(*bias, {j}) : Expr(),
                                  residual ? at(*residual, c) : Expr());
        })};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FusedDenseLowering>());

}  // namespace
}  // namespace kiln::graph
