// kiln/generators/conv2d_winograd.cpp — Winograd F(2x2,3x3) and F(4x4,3x3): the Funcs.
//
// Start at winograd_conv2d_funcs(): the transform matrices are the tables below, each 2-D
// transform is two 1-D passes (a `_row` Func along x, then one along y), and every pass is a
// `mux` over its output index so that a schedule unrolling that index gets straight-line code
// with the zero and +-1 coefficients folded away.
#include "generators/conv2d_winograd.h"

#include <vector>

#include "core/error.h"
#include "generators/conv2d.h"
#include "generators/epilogue.h"

namespace kiln {

namespace {

using Halide::Expr;
using Matrix = std::vector<std::vector<double>>;

struct Transforms {
    Matrix bt;  // alpha x alpha: V = B^T d B
    Matrix g;   // alpha x 3:     U = G g G^T
    Matrix at;  // m x alpha:     Y = A^T M A
};

// F(2x2,3x3), interpolation points 0, 1, -1 and infinity.
const Transforms kF2 = {
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
    {{1, 1, 1, 0}, {0, 1, -1, -1}},
};

// F(4x4,3x3) with Lavin and Gray's points 0, 1, -1, 2, -2 and infinity: small integers in B^T
// and A^T keep the normwise error at 6e-6 to 1.3e-5 for C = 128 to 512 (inputs in [-1, 1]),
// under the 1e-4 budget; points farther from zero grow it quickly.
const Transforms kF4 = {
    {{4, 0, -5, 0, 1, 0},
     {0, -4, -4, 1, 1, 0},
     {0, 4, -4, -1, 1, 0},
     {0, -2, -1, 2, 1, 0},
     {0, 2, -1, -2, 1, 0},
     {0, 4, 0, -5, 0, 1}},
    {{1.0 / 4, 0, 0},
     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
     {1.0 / 24, 1.0 / 12, 1.0 / 6},
     {1.0 / 24, -1.0 / 12, 1.0 / 6},
     {0, 0, 1}},
    {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
};

// sum_i coef[i] * xs[i], skipping zero coefficients and multiplying only when |coef| != 1.
Expr combine(const std::vector<double>& coef, const std::vector<Expr>& xs) {
    Expr sum;
    for (size_t i = 0; i < coef.size(); ++i) {
        double a = coef[i];
        if (a == 0.0) continue;
        if (!sum.defined()) {
            sum = a == 1.0 ? xs[i] : a == -1.0 ? -xs[i] : xs[i] * static_cast<float>(a);
        } else if (a == 1.0) {
            sum = sum + xs[i];
        } else if (a == -1.0) {
            sum = sum - xs[i];
        } else {
            sum = sum + xs[i] * static_cast<float>(a);
        }
    }
    return sum.defined() ? sum : Expr(0.0f);
}

// mux(index, {combine(rows[0], xs), combine(rows[1], xs), ...}).
Expr apply_rows(const Matrix& rows, const Halide::Var& index, const std::vector<Expr>& xs) {
    std::vector<Expr> out;
    for (const auto& row : rows)
        out.push_back(combine(row, xs));
    return out.size() == 1 ? out[0] : Halide::mux(index, out);
}

int round_up(int v, int to) {
    return (v + to - 1) / to * to;
}

// Shapes are fixed per workload: constant bounds and dense strides let Halide fold the index
// arithmetic and give every loop a constant extent (unrolling needs that).
void set_dense_shape(Halide::OutputImageParam param, const std::vector<int>& extents) {
    int stride = 1;
    for (size_t d = 0; d < extents.size(); ++d) {
        param.dim(static_cast<int>(d)).set_bounds(0, extents[d]).set_stride(stride);
        stride *= extents[d];
    }
}

}  // namespace

WinogradFuncs winograd_conv2d_funcs(const Workload& w, const WinogradLayout& layout) {
    using Halide::clamp;
    using Halide::select;
    ConvShape s = ConvShape::of(w);
    if (s.r != 3 || s.s != 3 || s.stride_h != 1 || s.stride_w != 1 || s.dil_h != 1 ||
        s.dil_w != 1 || s.groups != 1)
        throw Error("algorithm", "Winograd needs a 3x3, stride-1, dilation-1, ungrouped conv2d");
    if (layout.m != 2 && layout.m != 4)
        throw Error("algorithm",
                    "Winograd tile size must be 2 or 4, not " + std::to_string(layout.m));
    const Transforms& tr = layout.m == 2 ? kF2 : kF4;

    WinogradFuncs f;
    f.m = layout.m;
    f.alpha = layout.m + 2;
    f.tiles_w = static_cast<int>((s.ow + f.m - 1) / f.m);
    f.tiles_h = static_cast<int>((s.oh + f.m - 1) / f.m);
    f.k_blocks = static_cast<int>((s.k + layout.kb - 1) / layout.kb);
    f.c_padded = round_up(static_cast<int>(s.c), layout.cb);
    f.c_blocks = f.c_padded / layout.cb;
    const int m = f.m, alpha = f.alpha, kb = layout.kb, cb = layout.cb;
    const int width = static_cast<int>(s.w), height = static_cast<int>(s.h);
    const int channels = static_cast<int>(s.c), out_channels = static_cast<int>(s.k);
    const int tiles = f.tiles_w * f.tiles_h;

    const int bi = static_cast<int>(w.layout.input), bo = static_cast<int>(w.layout.output),
              br = static_cast<int>(w.layout.residual);
    if (bo && kb % bo != 0)
        throw Error("knob wino_kb", std::to_string(kb) +
                                        " is not a multiple of the blocked output's " +
                                        std::to_string(bo));
    f.input = Halide::ImageParam(Halide::Float(32), bi ? 5 : 4, "input");
    f.weight = Halide::ImageParam(Halide::Float(32), 4, "weight");
    f.packed = Halide::ImageParam(Halide::Float(32), 5, "packed");
    if (w.epilogue.bias) f.bias = Halide::ImageParam(Halide::Float(32), 1, "bias");
    if (w.epilogue.residual)
        f.residual = Halide::ImageParam(Halide::Float(32), br ? 5 : 4, "residual");

    auto& x = f.x;
    auto& y = f.y;
    auto& k = f.k;
    auto& n = f.n;
    auto& c = f.c;
    auto& p = f.p;
    auto& ki = f.ki;
    auto& ko = f.ko;
    auto& ei = f.ei;
    auto& ej = f.ej;
    auto& i = f.i;
    auto& j = f.j;
    auto& co = f.co;

    // U = G g G^T, with ei along the kernel's width (s) and ej along its height (r).
    {
        Expr kk = ko * kb + ki;
        Expr valid = kk < out_channels && c < channels;
        auto g = [&](int col, Expr row) {
            return f.weight(col, row, clamp(c, 0, channels - 1), clamp(kk, 0, out_channels - 1));
        };
        std::vector<Expr> rows;  // G applied along the width, for each kernel row
        for (int r = 0; r < 3; ++r)
            rows.push_back(apply_rows(tr.g, ei, {g(0, r), g(1, r), g(2, r)}));
        f.pack(ki, c, ko, ei, ej) = select(valid, apply_rows(tr.g, ej, rows), 0.0f);
    }

    // The padded input. Tiles reach past the image on the right and bottom when m does not
    // divide the output size; those positions read zero like the padding does, and so do the
    // channels from C up to where a schedule rounds the channel loop.
    {
        Expr inside = x >= 0 && x < width && y >= 0 && y < height && c < channels;
        Expr xc = clamp(x, 0, width - 1), yc = clamp(y, 0, height - 1);
        // Blocked, the channel splits into its block and its lane: a vector of c over one
        // block is a dense load, with only the block index clamped.
        Expr value = bi ? f.input(c % bi, xc, yc, Halide::min(c / bi, channels / bi - 1), n)
                        : f.input(xc, yc, clamp(c, 0, channels - 1), n);
        f.in_pad(x, y, c, n) = select(inside, value, 0.0f);
    }

    // V = B^T d B. Tiles past the last one (a schedule rounding the tile loop up) repeat it.
    {
        Expr tile = Halide::min(p, tiles - 1);
        Expr x0 = (tile % f.tiles_w) * m - static_cast<int>(s.pad_l);
        Expr y0 = (tile / f.tiles_w) * m - static_cast<int>(s.pad_t);
        std::vector<Expr> d;
        for (int a = 0; a < alpha; ++a)
            d.push_back(f.in_pad(x0 + a, y0 + j, c, n));
        f.v_row(p, c, ei, j, n) = apply_rows(tr.bt, ei, d);
        std::vector<Expr> cols;
        for (int b = 0; b < alpha; ++b)
            cols.push_back(f.v_row(p, c, ei, b, n));
        f.v(p, c, ei, ej, n) = apply_rows(tr.bt, ej, cols);
    }

    // M = U V: alpha^2 GEMMs (kb-blocked output channels x tiles) over the input channels.
    f.rc = Halide::RDom(0, cb, "rc");
    Expr ch = co * cb + f.rc;
    f.partial(ki, ko, p, ei, ej, n, co) = 0.0f;
    f.partial(ki, ko, p, ei, ej, n, co) += f.packed(ki, ch, ko, ei, ej) * f.v(p, ch, ei, ej, n);
    if (f.c_blocks == 1) {
        f.mm(ki, ko, p, ei, ej, n) = f.partial(ki, ko, p, ei, ej, n, 0);
    } else {
        f.rco = Halide::RDom(0, f.c_blocks, "rco");
        f.mm(ki, ko, p, ei, ej, n) = 0.0f;
        f.mm(ki, ko, p, ei, ej, n) += f.partial(ki, ko, p, ei, ej, n, f.rco);
    }

    // Y = A^T M A, then the epilogue in the order Epilogue::apply uses.
    {
        std::vector<Expr> ms;
        for (int a = 0; a < alpha; ++a)
            ms.push_back(f.mm(ki, ko, p, a, ej, n));
        f.y_row(ki, ko, i, ej, p, n) = apply_rows(tr.at, i, ms);
        std::vector<Expr> rows;
        for (int b = 0; b < alpha; ++b)
            rows.push_back(f.y_row(ki, ko, i, b, p, n));
        f.y_tile(ki, ko, i, j, p, n) = apply_rows(tr.at, j, rows);
    }
    Expr tile = x / m + f.tiles_w * (y / m);
    if (!bo) {
        Expr value = f.y_tile(k % kb, k / kb, x % m, y % m, tile, n);
        Expr bias_value = w.epilogue.bias ? f.bias(k) : Expr();
        Expr residual_value =
            w.epilogue.residual ? activation_at(f.residual, br, x, y, k, n) : Expr();
        f.output(x, y, k, n) = apply_epilogue(w.epilogue, value, bias_value, residual_value);
    } else {
        // Output channel k * bo + o: block k of the output lies in U's block k / per, at lane
        // offset (k % per) * bo, so a vector over o reads y_tile's channels densely.
        const int per = kb / bo;
        const Halide::Var& o = f.o;
        Expr channel = k * bo + o;
        Expr value = f.y_tile((k % per) * bo + o, k / per, x % m, y % m, tile, n);
        Expr bias_value = w.epilogue.bias ? f.bias(channel) : Expr();
        Expr residual_value;
        if (w.epilogue.residual)
            residual_value = br == bo ? f.residual(o, x, y, k, n)
                                      : activation_at(f.residual, br, x, y, channel, n);
        f.output(o, x, y, k, n) = apply_epilogue(w.epilogue, value, bias_value, residual_value);
    }

    const int batch = static_cast<int>(s.n), oh = static_cast<int>(s.oh),
              ow = static_cast<int>(s.ow);
    // An activation's dense extents, NCHW or blocked (Halide order, innermost first).
    auto extents = [](int block, int x_extent, int y_extent, int channel_count, int n_extent) {
        if (!block) return std::vector<int>{x_extent, y_extent, channel_count, n_extent};
        return std::vector<int>{block, x_extent, y_extent, channel_count / block, n_extent};
    };
    set_dense_shape(f.input, extents(bi, width, height, channels, batch));
    set_dense_shape(f.weight, {3, 3, channels, out_channels});
    set_dense_shape(f.packed, {kb, f.c_padded, f.k_blocks, alpha, alpha});
    if (w.epilogue.bias) set_dense_shape(f.bias, {out_channels});
    if (w.epilogue.residual) set_dense_shape(f.residual, extents(br, ow, oh, out_channels, batch));
    set_dense_shape(f.pack.output_buffer(), {kb, f.c_padded, f.k_blocks, alpha, alpha});
    set_dense_shape(f.output.output_buffer(), extents(bo, ow, oh, out_channels, batch));
    return f;
}

}  // namespace kiln
