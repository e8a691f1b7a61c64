// kiln/generators/conv2d_winograd.h — the Winograd algorithm for 3x3 stride-1 conv2d (internal).
//
// F(m x m, 3x3) with m = 2 or 4: each m x m output tile comes from an alpha x alpha input tile
// (alpha = m + 2). The weights become U = G g G^T once (the pack pipeline); each input tile
// becomes V = B^T d B; for each of the alpha^2 positions a GEMM over input channels gives
// M = U V; each output tile is Y = A^T M A, and the epilogue follows. Only the algorithm lives
// here: schedules/conv2d_winograd.cpp picks the layout and schedules the Funcs. Tiles are
// numbered p = tx + tiles_w * ty within one image; the batch is the last dimension everywhere.
#pragma once

#include "Halide.h"
#include "core/workload.h"

namespace kiln {

// The data-layout decisions the algorithm itself depends on.
struct WinogradLayout {
    int m = 4;    // output tile size: 2 or 4
    int kb = 16;  // output channels per packed block of U (the GEMM's vector dimension)
    int cb = 64;  // input channels per GEMM cache block; C is zero-padded to a multiple of it
};

struct WinogradFuncs {
    int m = 0, alpha = 0;
    int tiles_w = 0, tiles_h = 0;  // tiles per image side: ceil(ow / m), ceil(oh / m)
    int k_blocks = 0;              // ceil(K / kb)
    int c_padded = 0;              // C rounded up to a multiple of cb
    int c_blocks = 0;              // c_padded / cb

    Halide::ImageParam input, weight, bias, residual;  // bias, residual defined when used
    Halide::ImageParam packed;                         // U, as the pack pipeline lays it out

    // o: the channel within a block of a blocked output, whose k is then the block.
    Halide::Var x{"x"}, y{"y"}, k{"k"}, n{"n"}, c{"c"}, p{"p"}, o{"o"};
    Halide::Var ki{"ki"}, ko{"ko"}, ei{"ei"}, ej{"ej"}, i{"i"}, j{"j"}, co{"co"};
    Halide::RDom rc;   // over the cb channels of one block
    Halide::RDom rco;  // over the channel blocks; used only when c_blocks > 1

    // pack(ki, c, ko, ei, ej): U for output channel ko * kb + ki, zero beyond K and C.
    Halide::Func pack{"wino_pack"};
    // in_pad(x, y, c, n): the input with zero padding around it and zero channels beyond C,
    // read from NCHW or from the blocked input the workload's layout names.
    Halide::Func in_pad{"wino_in_pad"};
    Halide::Func v_row{"wino_v_row"};  // (p, c, ei, j, n): B^T applied along x
    Halide::Func v{"wino_v"};          // (p, c, ei, ej, n) = B^T d B
    // partial(ki, ko, p, ei, ej, n, co): the GEMM over the channels of block co.
    Halide::Func partial{"wino_partial"};
    // mm(ki, ko, p, ei, ej, n): the sum of partial over the channel blocks (pure when one).
    Halide::Func mm{"wino_m"};
    Halide::Func y_row{"wino_y_row"};  // (ki, ko, i, ej, p, n): A^T applied along x
    Halide::Func y_tile{"wino_y"};     // (ki, ko, i, j, p, n) = A^T M A
    // (x, y, k, n) NCHW, or (o, x, y, k, n) blocked by the workload's layout; epilogue applied.
    Halide::Func output{"wino_output"};
};

// Defines the Funcs for a 3x3 stride-1 conv2d workload; nothing is scheduled. A blocked output
// needs kb to be a multiple of its block.
WinogradFuncs winograd_conv2d_funcs(const Workload& w, const WinogradLayout& layout);

}  // namespace kiln
