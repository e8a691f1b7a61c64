// kiln/generators/conv2d_direct_x.cpp — the Funcs of conv2d's column-vectorized direct algorithm
// (the map is in conv2d_direct_x.h; the schedule in schedules/conv2d_direct_x.cpp).
#include "generators/conv2d_direct_x.h"

#include <algorithm>

#include "core/error.h"
#include "generators/gemm.h"

namespace kiln {

using namespace Halide;

namespace {

int64_t floor_div(int64_t a, int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

}  // namespace

Conv2dFuncs define_direct_x_conv2d(const Workload& w, int tile_k, int image_vector, int columns) {
    ConvShape s = ConvShape::of(w);
    if (s.groups != 1) throw Error("groups", "direct_x computes ungrouped convolutions only");
    if (image_vector > 0 && s.ow % image_vector != 0)
        throw Error("ow", "the image view needs rows of whole vectors");
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

    // The phase-split input: for each phase, the columns that lie inside the input copied with
    // (strided) dense loads, and zeros at both ends up to `columns`. A boundary condition on the
    // columns instead turned the vectors that straddle the padding into gathers (11% of
    // mv2_stem's time went to the copy); zero-filling everything first doubled its stores.
    // Rows outside the input read a clamped row and select zero (a scalar condition).
    const int stride_w = int(s.stride_w), stride_h = int(s.stride_h);
    Var xp("xp"), phase("phase"), y("y"), n("n"), k("k");
    f.padded = Func("phased");
    f.padded(xp, phase, y, ci, n) = undef<float>();
    Expr inside_rows = likely(y >= int(s.pad_t) && y < int(s.pad_t + s.h));
    Expr input_row = clamp(y - int(s.pad_t), 0, int(s.h) - 1);
    for (int p = 0; p < stride_w; ++p) {
        // Columns xp with 0 <= xp * stride + p - pad_l < w, within [0, columns).
        int64_t lo =
            std::min<int64_t>(columns, std::max<int64_t>(0, -floor_div(p - s.pad_l, stride_w)));
        int64_t hi = std::min<int64_t>(columns - 1, floor_div(s.w - 1 + s.pad_l - p, stride_w));
        if (lo > 0) {
            RDom left(0, int(lo), "left");
            f.padded(left, p, y, ci, n) = 0.0f;
        }
        if (hi >= lo) {
            RDom rx(int(lo), int(hi - lo + 1), "rx");
            f.padded(rx, p, y, ci, n) = select(
                inside_rows, f.input(rx * stride_w + p - int(s.pad_l), input_row, ci, n), 0.0f);
        }
        int64_t right = std::max(lo, hi + 1);
        if (right < columns) {
            RDom tail(int(right), int(columns - right), "right");
            f.padded(tail, p, y, ci, n) = 0.0f;
        }
    }

    // The output's first two dimensions (a, b) and the column and row they stand for.
    Var a(image_vector ? "lane" : "x"), b(image_vector ? "v" : "y");
    Expr col = a, row = b;
    std::vector<int> out = {int(s.ow), int(s.oh), int(s.k), int(s.n)};
    if (image_vector) {
        const int per_row = int(s.ow) / image_vector;
        col = a + (b % per_row) * image_vector;
        row = b / per_row;
        out = {image_vector, int(s.oh) * per_row, int(s.k), int(s.n)};
    }

    f.rd = RDom(0, int(s.s), 0, int(s.r), 0, int(s.c), "rd");
    Expr tap = f.rd.x * int(s.dil_w);
    f.conv = Func("conv");
    f.conv(a, b, kk, kb, n) = 0.0f;
    f.conv(a, b, kk, kb, n) += f.padded(col + tap / stride_w, tap % stride_w,
                                        row * stride_h + f.rd.y * int(s.dil_h), f.rd.z, n) *
                               f.packed(kk, f.rd.x, f.rd.y, f.rd.z, kb);

    f.output = Func("output");
    f.output(a, b, k, n) = apply_epilogue(w.epilogue, f.conv(a, b, k % tile_k, k / tile_k, n),
                                          f.bias(k), f.residual(a, b, k, n));

    // Shapes are fixed per workload: constant strides fold the index arithmetic of the inner
    // loop, constant bounds give every loop a constant extent.
    set_dense_shape(f.input, {int(s.w), int(s.h), int(s.c), int(s.n)});
    set_dense_shape(f.packed,
                    {tile_k, int(s.s), int(s.r), int(s.c), int((s.k + tile_k - 1) / tile_k)});
    set_dense_shape(f.bias, {int(s.k)});
    set_dense_shape(f.residual, out);
    set_dense_shape(f.output.output_buffer(), out);
    return f;
}

}  // namespace kiln
