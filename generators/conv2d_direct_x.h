// kiln/generators/conv2d_direct_x.h — conv2d's column-vectorized direct algorithm as Halide Funcs
// (internal; includes Halide). Its schedule is in schedules/conv2d_direct_x.cpp.
//
// For layers with few input channels (network stems): the accumulator is vectorized over output
// columns, so the NCHW store needs no transposition, and a reduction step broadcasts
// consecutive scalar weights from packed(kk, sx, ry, ci, kb). The input is zero-padded and split
// by column stride phase once, phased(xp, phase, y, ci, n) = padded input column
// xp * stride + phase, so that tap sx of output column x reads phase (sx * dil) % stride at
// column x + (sx * dil) / stride: a dense vector for any stride.
//
// The output's first two dimensions are either the image's (x, y), or, when a row is a whole
// number of vectors, (lane, v): vector v of the image seen as one long row of oh * ow / vector
// vectors (output and residual are bound as that view). Tiles of vectors may then span rows, so
// their width need not divide the row.
#pragma once

#include "generators/conv2d_direct.h"

namespace kiln {

// tile_k: output channels per packed block. image_vector: 0 for (x, y), else the lanes of the
// (lane, v) view (must divide ow). columns: how many columns of each phase the schedule's
// accumulator tiles read (from 0); the phase-split input defines exactly those. Groups must be 1.
// The Funcs reuse Conv2dFuncs: `padded` is the phase-split input, `rd` is (sx, ry, ci).
Conv2dFuncs define_direct_x_conv2d(const Workload& w, int tile_k, int image_vector, int columns);

}  // namespace kiln
