// kiln/generators/conv2d_direct.cpp — the Funcs of conv2d's direct and im2col algorithms.
// Their schedules are in schedules/conv2d_direct.cpp.
#include "generators/conv2d_direct.h"

#include <string>

#include "core/error.h"

namespace kiln {

using namespace Halide;

namespace {

Conv2dFuncs params(const Blocking& layout = {}) {
    Conv2dFuncs f;
    f.input = ImageParam(Float(32), layout.input ? 5 : 4, "input");
    f.weight = ImageParam(Float(32), 4, "weight");
    f.bias = ImageParam(Float(32), 1, "bias");
    f.residual = ImageParam(Float(32), layout.residual ? 5 : 4, "residual");
    return f;
}

// Packed weights (kk, q..., kb): output channel kb * block_k + kk, zero past k, so that every
// block is full and the micro-kernel needs no tail.
Func pack_weights(const ConvShape& s, ImageParam weight, int block_k, bool flatten_taps) {
    Var kk("kk"), ci("ci"), sx("sx"), ry("ry"), kb("kb"), q("q");
    Func pack("pack");
    Expr k = kb * block_k + kk;
    Expr kc = min(k, int(s.k) - 1);
    if (flatten_taps) {
        // q = (ci * r + ry) * s + sx: the order of the col matrix.
        Expr taps = int(s.r * s.s);
        Expr c_i = q / taps, rem = q % taps;
        pack(kk, q, kb) =
            select(k < int(s.k), weight(rem % int(s.s), rem / int(s.s), c_i, kc), 0.0f);
    } else {
        pack(kk, ci, sx, ry, kb) = select(k < int(s.k), weight(sx, ry, ci, kc), 0.0f);
    }
    return pack;
}

}  // namespace

Conv2dFuncs define_direct_conv2d(const Workload& w, int block_k, int block_c,
                                 const Conv2dFuncs* params_from, bool in_place,
                                 const std::string& suffix) {
    ConvShape s = ConvShape::of(w);
    Conv2dFuncs f;
    if (params_from) {
        f = *params_from;
    } else {
        f = params(w.layout);
        f.pack = pack_weights(s, f.weight, block_k, false);
        f.packed = ImageParam(Float(32), 5, "packed");
    }

    Var ci("ci"), x("x"), y("y"), cb("cb"), n("n"), kk("kk"), kb("kb"), k("k");
    f.padded = Func("padded" + suffix);
    Expr c = cb * block_c + ci;
    const int bi = int(w.layout.input);
    if (s.padded() && !in_place) {
        Region bounds = {{0, int(s.w)}, {0, int(s.h)}, {0, int(s.c)}, {0, int(s.n)}};
        if (bi) bounds = {{0, bi}, {0, int(s.w)}, {0, int(s.h)}, {0, int(s.c) / bi}, {0, int(s.n)}};
        Func bounded = BoundaryConditions::constant_exterior(f.input, 0.0f, bounds);
        f.padded(ci, x, y, cb, n) =
            activation_at(bounded, bi, x - int(s.pad_l), y - int(s.pad_t), c, n);
    } else {
        f.padded(ci, x, y, cb, n) =
            activation_at(f.input, bi, x - int(s.pad_l), y - int(s.pad_t), c, n);
    }

    const int cg = int(s.c_per_group()), kg = int(s.k_per_group());
    f.rd = RDom(0, block_c, 0, int(s.s), 0, int(s.r), 0, cg / block_c, "rd" + suffix);
    // With groups, block_k divides k/g, so a block of output channels lies in one group.
    Expr group_cb = s.groups > 1 ? ((kb * block_k) / kg) * (cg / block_c) : Expr(0);
    f.conv = Func("conv" + suffix);
    f.conv(kk, x, y, kb, n) = 0.0f;
    f.conv(kk, x, y, kb, n) +=
        f.padded(f.rd.x, x * int(s.stride_w) + f.rd.y * int(s.dil_w),
                 y * int(s.stride_h) + f.rd.z * int(s.dil_h), group_cb + f.rd.w, n) *
        f.packed(kk, f.rd.w * block_c + f.rd.x, f.rd.y, f.rd.z, kb);

    f.output = Func("output" + suffix);
    const int bo = int(w.layout.output), br = int(w.layout.residual);
    if (!bo) {
        f.output(x, y, k, n) = apply_epilogue(w.epilogue, f.conv(k % block_k, x, y, k / block_k, n),
                                              f.bias(k), activation_at(f.residual, br, x, y, k, n));
    } else {
        // Blocks of bo output channels, block_k / bo of them per accumulator block.
        if (block_k % bo != 0)
            throw Error("block_k", std::to_string(block_k) +
                                       " is not a multiple of the blocked output's " +
                                       std::to_string(bo));
        const int per = block_k / bo;
        Var o("o"), ob("ob");
        Expr acc = f.conv(o + (ob % per) * bo, x, y, ob / per, n);
        Expr res = br == bo ? Expr(f.residual(o, x, y, ob, n))
                            : activation_at(f.residual, br, x, y, ob * bo + o, n);
        f.output(o, x, y, ob, n) = apply_epilogue(w.epilogue, acc, f.bias(ob * bo + o), res);
    }
    return f;
}

Conv2dFuncs define_im2col_conv2d(const Workload& w, int block_k, bool flat_input) {
    ConvShape s = ConvShape::of(w);
    Conv2dFuncs f = params();
    // The output and the residual are seen as (oh*ow, k, n): the kernel binds flat views.
    f.residual = ImageParam(Float(32), 3, "residual");
    if (flat_input) f.input = ImageParam(Float(32), 3, "input");
    f.pack = pack_weights(s, f.weight, block_k, true);
    f.packed = ImageParam(Float(32), 3, "packed");

    Var p("p"), q("q"), n("n"), k("k");
    const int ow = int(s.ow), taps = int(s.r * s.s);
    f.padded = Func("col");
    if (flat_input) {
        f.padded(p, q, n) = f.input(p, q, n);
    } else {
        Func bounded = BoundaryConditions::constant_exterior(
            f.input, 0.0f, {{0, int(s.w)}, {0, int(s.h)}, {0, int(s.c)}, {0, int(s.n)}});
        Expr c = q / taps, rem = q % taps;
        Expr ry = rem / int(s.s), sx = rem % int(s.s);
        Expr x = (p % ow) * int(s.stride_w) + sx * int(s.dil_w) - int(s.pad_l);
        Expr y = (p / ow) * int(s.stride_h) + ry * int(s.dil_h) - int(s.pad_t);
        f.padded(p, q, n) = bounded(x, y, c, n);
    }

    f.rd = RDom(0, int(s.c * taps), "rq");
    f.conv = Func("gemm");
    f.conv(p, k, n) = 0.0f;
    f.conv(p, k, n) += f.padded(p, f.rd.x, n) * f.packed(k % block_k, f.rd.x, k / block_k);

    f.output = Func("output");
    f.output(p, k, n) = apply_epilogue(w.epilogue, f.conv(p, k, n), f.bias(k), f.residual(p, k, n));
    return f;
}

}  // namespace kiln
