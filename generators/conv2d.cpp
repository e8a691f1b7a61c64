// kiln/generators/conv2d.cpp — conv2d: definition, scalar reference, FLOP count.
//
// The Halide algorithms live beside this file: conv2d_direct.cpp (channel-blocked direct
// convolution and im2col+GEMM) and conv2d_winograd.cpp. Start with Conv2dDef::check() for what
// a valid workload is.
#include "generators/conv2d.h"

#include <vector>

#include "core/error.h"
#include "core/op.h"

namespace kiln {

ConvShape ConvShape::of(const Workload& w) {
    ConvShape s{};
    s.n = w.get("n");
    s.c = w.get("c");
    s.h = w.get("h");
    s.w = w.get("w");
    s.k = w.get("k");
    s.r = w.get("r");
    s.s = w.get("s");
    s.stride_h = w.get("stride", 0);
    s.stride_w = w.get("stride", 1);
    s.pad_t = w.get("pad", 0);
    s.pad_l = w.get("pad", 1);
    s.pad_b = w.get("pad", 2);
    s.pad_r = w.get("pad", 3);
    s.dil_h = w.get("dilation", 0);
    s.dil_w = w.get("dilation", 1);
    s.groups = w.params.count("groups") ? w.get("groups") : s.c;  // depthwise: one per channel
    s.oh = (s.h + s.pad_t + s.pad_b - s.dil_h * (s.r - 1) - 1) / s.stride_h + 1;
    s.ow = (s.w + s.pad_l + s.pad_r - s.dil_w * (s.s - 1) - 1) / s.stride_w + 1;
    return s;
}

std::vector<ParamSpec> conv_params(bool with_groups, const std::string& k_help) {
    std::vector<ParamSpec> p = {
        {"n", "n", 0, 1, 1, 1, "batch"},
        {"c", "c", 0, 1, -1, 1, "input channels"},
        {"h", "h", 0, 1, -1, 1, "input height"},
        {"w", "w", 0, 1, -1, 1, "input width"},
        {"k", "k", 1, 1, -1, 1, k_help},
        {"r", "r", 1, 1, -1, 1, "kernel height"},
        {"s", "s", 1, 1, -1, 1, "kernel width"},
        {"stride", "st", 2, 2, 1, 1, "stride (h, w)"},
        {"pad", "p", 2, 4, 0, 0, "padding (top, left, bottom, right)"},
        {"dilation", "d", 2, 2, 1, 1, "dilation (h, w)"},
    };
    if (with_groups) p.push_back({"groups", "g", 2, 1, 1, 1, "groups"});
    return p;
}

void check_conv_window(const ConvShape& s) {
    if (s.h + s.pad_t + s.pad_b < s.dil_h * (s.r - 1) + 1)
        throw Error("r", "kernel height (with dilation) exceeds the padded input height");
    if (s.w + s.pad_l + s.pad_r < s.dil_w * (s.s - 1) + 1)
        throw Error("s", "kernel width (with dilation) exceeds the padded input width");
}

void check_conv_blocking(const Workload& w, const ConvShape& s) {
    auto check_block = [](int64_t b, int64_t channels, const char* what) {
        if (b && channels % b != 0)
            throw Error("layout", std::string(what) + " channels (" + std::to_string(channels) +
                                      ") are not divisible by their block " + std::to_string(b));
    };
    check_block(w.layout.input, s.c, "input");
    check_block(w.layout.output, s.k, "output");
    check_block(w.layout.residual, s.k, "residual");
}

namespace {

class Conv2dDef final : public OpDef {
  public:
    std::string name() const override { return "conv2d"; }
    std::string summary() const override {
        return "2-D convolution, NCHW, with stride, padding, dilation and groups";
    }
    std::string example() const override { return "c=64,h=56,w=56,k=64,r=3,s=3,pad=1"; }
    const std::vector<ParamSpec>& params() const override {
        static const std::vector<ParamSpec> p = conv_params(true, "output channels");
        return p;
    }
    void check(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        if (s.c % s.groups != 0)
            throw Error("groups", "input channels c=" + std::to_string(s.c) +
                                      " are not divisible by groups=" + std::to_string(s.groups));
        if (s.k % s.groups != 0)
            throw Error("groups", "output channels k=" + std::to_string(s.k) +
                                      " are not divisible by groups=" + std::to_string(s.groups));
        check_conv_window(s);
        check_conv_blocking(w, s);
    }
    bool blockable() const override { return true; }
    std::vector<TensorSpec> operands(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        return {{"input", {s.n, s.c, s.h, s.w}, w.dtype},
                {"weight", {s.k, s.c_per_group(), s.r, s.s}, w.dtype}};
    }
    TensorSpec output(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        return {"output", {s.n, s.k, s.oh, s.ow}, w.dtype};
    }
    double flops(const Workload& w) const override {
        ConvShape s = ConvShape::of(w);
        return 2.0 * s.n * s.k * s.oh * s.ow * s.c_per_group() * s.r * s.s;
    }
    void reference(const Workload& w, const std::vector<const float*>& in,
                   float* out) const override {
        conv2d_reference(w, in, out);
    }
};

}  // namespace

namespace {

// Where element (b, c, y, x) of an NCHW tensor with `channels` channels of h x w lies when
// blocked by `block` (0: NCHW itself).
int64_t activation_index(int64_t b, int64_t c, int64_t y, int64_t x, int64_t channels, int64_t h,
                         int64_t w, int64_t block) {
    if (!block) return ((b * channels + c) * h + y) * w + x;
    return (((b * (channels / block) + c / block) * h + y) * w + x) * block + c % block;
}

}  // namespace

void conv2d_reference(const Workload& w, const std::vector<const float*>& in, float* out) {
    ConvShape s = ConvShape::of(w);
    const Blocking& l = w.layout;
    const float* x = in[0];
    const float* wt = in[1];
    size_t next = 2;
    const float* bias = w.epilogue.bias ? in[next++] : nullptr;
    const float* res = w.epilogue.residual ? in[next++] : nullptr;
    const int64_t cg = s.c_per_group(), kg = s.k_per_group();
    for (int64_t b = 0; b < s.n; ++b)
        for (int64_t k = 0; k < s.k; ++k) {
            const int64_t g = k / kg;
            for (int64_t oy = 0; oy < s.oh; ++oy)
                for (int64_t ox = 0; ox < s.ow; ++ox) {
                    double acc = 0.0;
                    for (int64_t ci = 0; ci < cg; ++ci)
                        for (int64_t ky = 0; ky < s.r; ++ky) {
                            int64_t iy = oy * s.stride_h - s.pad_t + ky * s.dil_h;
                            if (iy < 0 || iy >= s.h) continue;
                            for (int64_t kx = 0; kx < s.s; ++kx) {
                                int64_t ix = ox * s.stride_w - s.pad_l + kx * s.dil_w;
                                if (ix < 0 || ix >= s.w) continue;
                                acc += double(x[activation_index(b, g * cg + ci, iy, ix, s.c, s.h,
                                                                 s.w, l.input)]) *
                                       wt[((k * cg + ci) * s.r + ky) * s.s + kx];
                            }
                        }
                    const float r =
                        res ? res[activation_index(b, k, oy, ox, s.k, s.oh, s.ow, l.residual)]
                            : 0.0f;
                    out[activation_index(b, k, oy, ox, s.k, s.oh, s.ow, l.output)] =
                        w.epilogue.apply(static_cast<float>(acc), bias ? bias[k] : 0.0f, r);
                }
        }
}

KILN_REGISTER_OP(Conv2dDef);

}  // namespace kiln
