// kiln/generators/conv2d_direct_x.cpp — the Funcs of conv2d's column-vectorized direct algorithm
// (the map is in conv2d_direct_x.h; the schedule in schedules/conv2d_direct_x.cpp).
#include "generators/conv2d_direct_x.h"

#include "core/error.h"
#include "generators/gemm.h"

namespace kiln {

using namespace Halide;

Conv2dFuncs define_direct_x_conv2d(const Workload& w, int tile_k) {
    ConvShape s = ConvShape::of(w);
    if (s.groups != 1) throw Error("groups", "direct_x computes ungrouped convolutions only");
    Conv2dFuncs f;
    f.input = ImageParam(Float(32), 4, "input");
    f.weight = ImageParam(Float(32), 4, "weight");
    f.bias = ImageParam(Float(32), 1, "bias");
    f.residual = ImageParam(Float(32), 4, "residual");
    f.packed = ImageParam(Float(32), 5, "packed");

    // Packed weights, zero past k so that every block is full.
    Var kk("kk"), sx("sx"), ry("ry"), ci("ci"), kb("kb");
    f.pack = Func("pack");
    Expr kw = kb * tile_k + kk;
    f.pack(kk, sx, ry, ci, kb) =
        select(kw < int(s.k), f.weight(sx, ry, ci, min(kw, int(s.k) - 1)), 0.0f);

    // Always through the boundary condition, even without padding: tiles rounded up to whole
    // vectors may read past the input. Its conditions are marked likely, so the steady state of
    // the copy has no selects.
    const int stride_w = int(s.stride_w), stride_h = int(s.stride_h);
    Var xp("xp"), phase("phase"), y("y"), n("n"), x("x"), k("k");
    Func bounded = BoundaryConditions::constant_exterior(
        f.input, 0.0f, {{0, int(s.w)}, {0, int(s.h)}, {0, int(s.c)}, {0, int(s.n)}});
    f.padded = Func("phased");
    f.padded(xp, phase, y, ci, n) =
        bounded(xp * stride_w + phase - int(s.pad_l), y - int(s.pad_t), ci, n);

    f.rd = RDom(0, int(s.s), 0, int(s.r), 0, int(s.c), "rd");
    Expr col = f.rd.x * int(s.dil_w);
    f.conv = Func("conv");
    f.conv(x, y, kk, kb, n) = 0.0f;
    f.conv(x, y, kk, kb, n) += f.padded(x + col / stride_w, col % stride_w,
                                        y * stride_h + f.rd.y * int(s.dil_h), f.rd.z, n) *
                               f.packed(kk, f.rd.x, f.rd.y, f.rd.z, kb);

    f.output = Func("output");
    f.output(x, y, k, n) = apply_epilogue(w.epilogue, f.conv(x, y, k % tile_k, k / tile_k, n),
                                          f.bias(k), f.residual(x, y, k, n));

    // Shapes are fixed per workload: constant strides fold the index arithmetic of the inner
    // loop, constant bounds give every loop a constant extent.
    const std::vector<int> out = {int(s.ow), int(s.oh), int(s.k), int(s.n)};
    set_dense_shape(f.input, {int(s.w), int(s.h), int(s.c), int(s.n)});
    set_dense_shape(f.packed,
                    {tile_k, int(s.s), int(s.r), int(s.c), int((s.k + tile_k - 1) / tile_k)});
    set_dense_shape(f.bias, {int(s.k)});
    set_dense_shape(f.residual, out);
    set_dense_shape(f.output.output_buffer(), out);
    return f;
}

}  // namespace kiln
