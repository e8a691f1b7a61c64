// kiln/generators/conv2d_gemm.h — conv2d's `gemm` algorithm as Halide Funcs (internal; includes
// Halide). Its schedule is in schedules/conv2d_gemm.cpp.
//
// A 1x1 layer without padding is the blocked GEMM of gemm.h:
//   out[n][k][p] = sum_c weight[k][c] * input[n][c][pixel p]
// The output channels are the GEMM's rows: `a` is the weight, read where it is (one broadcast
// per row and reduction step). The output pixels are its columns: the input is copied into
// panels of nr pixels inside the main pipeline, and that copy is where a stride is taken, so
// the register tile always loads contiguous, zero-padded vectors. At stride 1, when the panel
// width divides the pixels, the panels may instead be the input itself (no copy). The output rows
// (NCHW) are contiguous pixels, so the stores need no transposition. Bias is per row.
#pragma once

#include "Halide.h"
#include "core/workload.h"
#include "generators/conv2d.h"
#include "generators/gemm.h"

namespace kiln {

// Whether the `gemm` algorithm computes `s`: 1x1, no padding, groups 1.
bool conv2d_gemm_applies(const ConvShape& s);

// The GEMM's shape: rows k, columns oh * ow, reduction c, batch n when n > 1 (else none).
GemmShape conv2d_gemm_shape(const ConvShape& s);

struct Conv2dGemmFuncs {
    // Halide order, innermost first. The input is seen as (h * w, c[, n]) at stride 1 and as
    // (w, h, c, n) otherwise; the weight as (c, k); the residual as the output, (oh * ow, k[, n]).
    Halide::ImageParam input, weight, bias, residual;
    bool flat_input = false;
    Halide::Func pixels;    // (j, c[, n]): output pixel j's input in channel c (the stride taken)
    Halide::Func panels;    // (jj, c, jo[, n]): `pixels` in panels of nr
    bool in_place = false;  // panels is a view of the input, not a copy
    GemmShape shape;
    GemmFuncs gemm;
};

// Whether the panels can be the input itself (`in_place`): stride 1, and nr divides the
// pixels, so that no panel runs past the image.
bool conv2d_gemm_in_place_ok(const ConvShape& s, int nr);

// nr and kc as gemm_algorithm() takes them. `s` must satisfy conv2d_gemm_applies(). With
// `in_place` (conv2d_gemm_in_place_ok() must hold) the panels are read from the input where it
// is, row c of panel jo at input pixel jo * nr: no copy, but each reduction step of the
// register tile then steps a whole image row of the input instead of nr floats.
Conv2dGemmFuncs define_gemm_conv2d(const Workload& w, int nr, int64_t kc, bool in_place);

}  // namespace kiln
