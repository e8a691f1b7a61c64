// kiln/generators/conv2d_direct.h — conv2d's direct and im2col algorithms as Halide Funcs
// (internal; includes Halide).
//
// Direct: the accumulator is channel-blocked, conv(kk, x, y, kb, n) with kk in [0, block_k),
// over a zero-padded input blocked by block_c: padded(ci, x, y, cb, n). Weights are packed once
// into (kk, ci, s, r, kb), zero beyond k, so a micro-kernel loads one vector of block_k output
// channels per tap and broadcasts one input value per output pixel. The input, the residual
// and the output are NCHW, or channel-blocked as the workload's layout says (Blocking in
// core/workload.h): a blocked output is (o, x, y, ob, n), block_k a multiple of its block.
//
// im2col: a GEMM over pixels, gemm(p, k, n) = sum_q packed(kk, q, kb) * col(p, q, n) with
// q = (ci, r, s) flattened and p = y * ow + x, so output rows are contiguous NCHW pixels; for a
// 1x1 stride-1 unpadded layer col is the input itself, seen as (h*w, c, n).
#pragma once

#include "Halide.h"
#include "generators/conv2d.h"
#include "generators/epilogue.h"

namespace kiln {

struct Conv2dFuncs {
    Halide::ImageParam input, weight, packed, bias, residual;
    Halide::Func pack;    // packed weights (the pack pipeline's output)
    Halide::Func padded;  // direct: blocked, padded input; im2col: the col matrix
    Halide::Func conv;    // accumulator (reduction in its update)
    Halide::Func output;  // epilogue applied, boundary layout
    Halide::RDom rd;
};

// block_k: output channels per packed block; block_c: input channels per block (divides c/g).
// A pipeline may compute its output in pieces, each by its own Funcs: `params_from` gives the
// parameters (and packing) to share, `suffix` tells the Funcs apart. A piece with `in_place`
// reads the input where it is, without bounds checks; its output region must keep every window
// inside the input.
Conv2dFuncs define_direct_conv2d(const Workload& w, int block_k, int block_c,
                                 const Conv2dFuncs* params_from = nullptr, bool in_place = false,
                                 const std::string& suffix = "");
// block_k: output channels per packed block. `flat_input`: the input is seen as (h*w, c, n)
// (only for 1x1, stride 1, no padding).
Conv2dFuncs define_im2col_conv2d(const Workload& w, int block_k, bool flat_input);

}  // namespace kiln
