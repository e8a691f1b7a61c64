// kiln/generators/depthwise_conv2d.cpp — depthwise_conv2d: definition, FLOP count, algorithm.
//
// One filter per output channel; output channel k reads input channel k / (k_total / c), so a
// channel multiplier above 1 is allowed. The scalar reference is conv2d's (generators/conv2d.h),
// which reads a workload without `groups` as groups = c. Start with DepthwiseDef::check() for
// what a valid workload is, then depthwise_conv2d_algorithm() for the Halide Funcs that
// schedules/depthwise_conv2d.cpp schedules.
#include <string>
#include <vector>

#include "core/error.h"
#include "core/op.h"
#include "generators/conv2d.h"
#include "generators/depthwise_conv2d_algorithm.h"
#include "generators/epilogue.h"

namespace kiln {
namespace {

class DepthwiseDef final : public OpDef {
  public:
    std::string name() const override { return "depthwise_conv2d"; }
    std::string summary() const override {
        return "depthwise 2-D convolution, NCHW, one filter per output channel (k a multiple "
               "of c), with stride, padding and dilation";
    }
    std::string example() const override { return "c=32,h=112,w=112,k=32,r=3,s=3,pad=1"; }
    const std::vector<ParamSpec>& params() const override {
        static const std::vector<ParamSpec> p =
            conv_params(false, "output channels, a multiple of c");
        return p;
    }
    void check(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        if (s.k % s.c != 0)
            throw Error("k", "output channels k=" + std::to_string(s.k) +
                                 " must be a multiple of the input channels c=" +
                                 std::to_string(s.c) + " (the channel multiplier is k / c)");
        check_conv_window(s);
        check_conv_blocking(w, s);
    }
    bool blockable() const override { return true; }
    std::vector<TensorSpec> operands(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        return {{"input", {s.n, s.c, s.h, s.w}, w.dtype}, {"weight", {s.k, 1, s.r, s.s}, w.dtype}};
    }
    TensorSpec output(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        return {"output", {s.n, s.k, s.oh, s.ow}, w.dtype};
    }
    double flops(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        return 2.0 * s.n * s.k * s.oh * s.ow * s.r * s.s;
    }
    void reference(const Workload& w, const std::vector<const float*>& in,
                   float* out) const override {
        conv2d_reference(w, in, out);
    }
};

KILN_REGISTER_OP(DepthwiseDef);

// Declares the buffer dense with exactly the tensor's shape. A kernel is compiled for one
// workload, so every extent is a constant: per-strip copies then live on the stack instead of
// one heap allocation per strip and channel, and index arithmetic folds.
void fix_shape(Halide::OutputImageParam p, const TensorSpec& spec) {
    int stride = 1;
    for (size_t d = 0; d < spec.shape.size(); ++d) {
        int extent = static_cast<int>(spec.shape[spec.shape.size() - 1 - d]);
        p.dim(static_cast<int>(d)).set_bounds(0, extent).set_stride(stride);
        stride *= extent;
    }
}

}  // namespace

namespace {

// The epilogue at output (x, y, k, n); bias and residual exist only when it uses them.
Halide::Expr epilogue(const Workload& w, const DepthwiseAlgorithm& a, Halide::Expr acc,
                      Halide::Expr x, Halide::Expr y, Halide::Expr k, Halide::Expr n) {
    Halide::Expr bias = w.epilogue.bias ? a.bias(k) : Halide::Expr();
    Halide::Expr residual = w.epilogue.residual
                                ? activation_at(a.residual, int(w.layout.residual), x, y, k, n)
                                : Halide::Expr();
    return apply_epilogue(w.epilogue, acc, bias, residual);
}

}  // namespace

DepthwiseAlgorithm depthwise_conv2d_algorithm(const Workload& w, DepthwiseLayout layout,
                                              int channel_block) {
    using Halide::Expr;
    using Halide::Func;
    const ConvShape s = ConvShape::of(w);
    const int multiplier = static_cast<int>(s.k / s.c);

    DepthwiseAlgorithm a;
    a.layout = layout;
    a.channel_block = layout == DepthwiseLayout::nchwc ? channel_block : 1;
    a.has_padding = s.padded();
    const int bi = int(w.layout.input), bo = int(w.layout.output);
    if (layout == DepthwiseLayout::nchw && !w.layout.plain())
        throw Error("layout", "nchw_x computes in NCHW; a blocked " + w.layout.to_string() +
                                  " workload needs layout=nchwc");
    if (bo && a.channel_block != bo)
        throw Error("channel_block", "a blocked output of " + std::to_string(bo) +
                                         " channels needs channel_block=" + std::to_string(bo) +
                                         ", not " + std::to_string(a.channel_block));
    a.blocked_output = bo != 0;
    a.input = Halide::ImageParam(Halide::Float(32), bi ? 5 : 4, "input");
    a.weight = Halide::ImageParam(Halide::Float(32), 4, "weight");
    if (w.epilogue.bias) a.bias = Halide::ImageParam(Halide::Float(32), 1, "bias");
    if (w.epilogue.residual)
        a.residual = Halide::ImageParam(Halide::Float(32), w.layout.residual ? 5 : 4, "residual");
    const std::vector<TensorSpec> specs = w.inputs();
    fix_shape(a.input, specs[0]);
    fix_shape(a.weight, specs[1]);
    size_t next = 2;
    if (w.epilogue.bias) fix_shape(a.bias, specs[next++]);
    if (w.epilogue.residual) fix_shape(a.residual, specs[next++]);
    a.taps = Halide::RDom(0, static_cast<int>(s.s), 0, static_cast<int>(s.r), "taps");
    const Halide::RVar rx = a.taps.x, ry = a.taps.y;
    const Halide::Var &x = a.x, &y = a.y, &k = a.k, &n = a.n, &c = a.c, &ci = a.ci, &ko = a.ko;

    // A padded copy keeps the select out of the inner loop: a schedule computes it per strip.
    a.padded = Func("padded");
    Func source = a.input;  // the input, zero outside its rows and columns when padded
    if (a.has_padding) {
        Halide::Region bounds = {{0, static_cast<int>(s.w)}, {0, static_cast<int>(s.h)}};
        if (bi) bounds = {{0, bi}, {0, static_cast<int>(s.w)}, {0, static_cast<int>(s.h)}};
        source = Halide::BoundaryConditions::constant_exterior(a.input, 0.0f, bounds);
    }
    const int pad_l = static_cast<int>(s.pad_l), pad_t = static_cast<int>(s.pad_t);
    a.padded(x, y, c, n) = activation_at(source, bi, x - pad_l, y - pad_t, c, n);
    // Input coordinates of output (ox, oy) at tap (rx, ry), in padded coordinates.
    auto in_x = [&](Expr ox) {
        return ox * static_cast<int>(s.stride_w) + rx * static_cast<int>(s.dil_w);
    };
    auto in_y = [&](Expr oy) {
        return oy * static_cast<int>(s.stride_h) + ry * static_cast<int>(s.dil_h);
    };
    auto in_channel = [&](Expr out_channel) {
        return multiplier == 1 ? out_channel : out_channel / multiplier;
    };

    a.acc = Func("acc");
    a.output = Func("output");
    if (layout == DepthwiseLayout::nchw) {
        const int sw = static_cast<int>(s.stride_w), dw = static_cast<int>(s.dil_w);
        a.acc(x, y, k, n) = 0.0f;
        if (sw == 1) {
            a.acc(x, y, k, n) +=
                a.padded(in_x(x), in_y(y), in_channel(k), n) * a.weight(rx, ry, 0, k);
            if (a.has_padding) a.copy = a.padded;
        } else {
            // Strided columns split by phase, so that the taps load dense vectors. Halide 14
            // mis-aligns strided vector loads from its own allocations (vmovaps faults on
            // n2c14h12w68/k14r4s5/st1x2p0x0x1x2d3); from the phased copy every load is dense.
            Halide::Var p("p");
            a.phased = Func("phased");
            a.phased(x, p, y, c, n) = a.padded(x * sw + p, y, c, n);
            a.acc(x, y, k, n) +=
                a.phased(x + (rx * dw) / sw, (rx * dw) % sw, in_y(y), in_channel(k), n) *
                a.weight(rx, ry, 0, k);
            a.copy = a.phased;
        }
        a.output(x, y, k, n) = epilogue(w, a, a.acc(x, y, k, n), x, y, k, n);
        fix_shape(a.output.output_buffer(), w.output());
        return a;
    }

    // nchwc: channels past k (the last block's tail) read the last channel; their results are
    // never stored, and clamping keeps every load inside the boundary tensors.
    const int cb = a.channel_block;
    const int blocks = static_cast<int>((s.k + cb - 1) / cb);
    const int last = static_cast<int>(s.k - 1);
    Expr channel = Halide::min(ko * cb + ci, last);
    a.blocked = Func("blocked");
    if (bi == cb && multiplier == 1 && s.k % cb == 0) {
        // The input is already in these blocks: copy them as they are.
        a.blocked(ci, x, y, ko, n) = source(ci, x - pad_l, y - pad_t, ko, n);
    } else {
        a.blocked(ci, x, y, ko, n) = a.padded(x, y, in_channel(channel), n);
    }
    a.copy = a.blocked;
    a.pack = Func("pack");
    Halide::Var px("px"), py("py");
    a.pack(ci, px, py, ko) = a.weight(px, py, 0, channel);
    a.packed_extents = {cb, static_cast<int>(s.s), static_cast<int>(s.r), blocks};
    a.packed_weight = Halide::ImageParam(Halide::Float(32), 4, "packed_weight");
    a.acc(ci, x, y, ko, n) = 0.0f;
    a.acc(ci, x, y, ko, n) +=
        a.blocked(ci, in_x(x), in_y(y), ko, n) * a.packed_weight(ci, rx, ry, ko);
    if (a.blocked_output) {
        // Stored as computed: a block of channels per vector.
        a.output(ci, x, y, ko, n) = epilogue(w, a, a.acc(ci, x, y, ko, n), x, y, ko * cb + ci, n);
    } else {
        a.output(x, y, k, n) = epilogue(w, a, a.acc(k % cb, x, y, k / cb, n), x, y, k, n);
    }
    fix_shape(a.output.output_buffer(), w.output());
    fix_shape(a.packed_weight, {"packed", {blocks, s.r, s.s, cb}, w.dtype});
    return a;
}

}  // namespace kiln
