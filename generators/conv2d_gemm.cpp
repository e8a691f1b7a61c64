// kiln/generators/conv2d_gemm.cpp — the Funcs of conv2d's `gemm` algorithm (see the header).
#include "generators/conv2d_gemm.h"

#include "core/error.h"

namespace kiln {

using namespace Halide;

bool conv2d_gemm_applies(const ConvShape& s) {
    return s.r == 1 && s.s == 1 && s.groups == 1 && !s.padded();
}

GemmShape conv2d_gemm_shape(const ConvShape& s) {
    return {s.n > 1 ? s.n : 0, s.k, s.oh * s.ow, s.c};
}

bool conv2d_gemm_in_place_ok(const ConvShape& s, int nr) {
    return s.stride_h == 1 && s.stride_w == 1 && (s.oh * s.ow) % nr == 0;
}

Conv2dGemmFuncs define_gemm_conv2d(const Workload& w, int nr, int64_t kc, bool in_place) {
    ConvShape s = ConvShape::of(w);
    if (!conv2d_gemm_applies(s))
        throw Error("algorithm", "gemm computes 1x1 layers without padding or groups only");
    Conv2dGemmFuncs f;
    f.shape = conv2d_gemm_shape(s);
    const bool batched = f.shape.batch > 0;
    f.flat_input = s.stride_h == 1 && s.stride_w == 1;
    f.input = ImageParam(Float(32), f.flat_input ? 3 : 4, "input");
    f.weight = ImageParam(Float(32), 2, "weight");
    f.bias = ImageParam(Float(32), 1, "bias");
    f.residual = ImageParam(Float(32), batched ? 3 : 2, "residual");

    Var j("j"), c("c"), i("i"), b("b");
    const int ow = int(s.ow);
    Expr batch = batched ? Expr(b) : Expr(0);
    // src(j, c[, b]): output pixel j's input value in channel c.
    Func& src = f.pixels;
    src = Func("pixels");
    Expr value = f.flat_input
                     ? f.input(j, c, batch)
                     : f.input((j % ow) * int(s.stride_w), (j / ow) * int(s.stride_h), c, batch);
    Func a("weight_rows");
    if (batched) {
        src(j, c, b) = value;
        a(c, i, b) = f.weight(c, i);
    } else {
        src(j, c) = value;
        a(c, i) = f.weight(c, i);
    }
    f.in_place = in_place;
    if (in_place) {
        if (!conv2d_gemm_in_place_ok(s, nr))
            throw Error("algorithm", "in-place panels need stride 1 and nr dividing the pixels");
        Var jj("jj"), jo("jo");
        f.panels = Func("gemm_panels");
        if (batched)
            f.panels(jj, c, jo, b) = src(jo * nr + jj, c, b);
        else
            f.panels(jj, c, jo) = src(jo * nr + jj, c);
    } else {
        f.panels = pack_panels(src, f.shape.n, nr, batched);
    }
    f.gemm = gemm_algorithm(f.shape, nr, kc, a, f.panels, w.epilogue, f.bias, f.residual,
                            /*bias_by_row=*/true);
    return f;
}

}  // namespace kiln
