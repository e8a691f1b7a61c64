// kiln/generators/gemm.h — the blocked GEMM algorithm behind dense and batch_matmul (internal).
//
// out[b][i][j] = epilogue(sum_k a[b][i][k] * B[b][k][j]). The right operand is read from
// panels: nr consecutive columns stored together for every k, zero past the last column, so
// the register tile's vector loads are contiguous and never need a guard. The reduction is cut
// into KC blocks: `inner` sums one block into an nr x mr register tile, `acc` adds the blocks
// up in memory (BLIS's C += A_block * B_block), `out` applies the epilogue. How the loops are
// tiled, ordered and parallelised is schedules/gemm.cpp's business. Included only by .cpp files.
#pragma once

#include <cstdint>
#include <vector>

#include "Halide.h"
#include "core/workload.h"

namespace kiln {

struct GemmShape {
    int64_t batch = 0;  // 0: no batch dimension
    int64_t m = 0, n = 0, k = 0;
};

struct GemmFuncs {
    Halide::Var j{"j"}, i{"i"}, b{"b"};        // out's dimensions: column, row, batch
    Halide::Var jj{"jj"}, jo{"jo"}, ko{"ko"};  // column in panel, panel, KC block
    Halide::RVar rk;                           // k within one KC block (inner's update)
    Halide::RVar rb;                           // KC blocks (acc's update), when blocked
    Halide::Func inner{"gemm_inner"};          // (jj, jo, i, ko[, b])
    Halide::Func acc{"gemm_acc"};              // (jj, jo, i[, b]); defined when blocked
    Halide::Func out{"gemm_out"};              // (j, i[, b])
    int nr = 0;
    int64_t kc = 0;
    bool blocked = false;  // k > kc: more than one KC block
    bool batched = false;
};

// kc must divide k (kc >= k: one block). `a` is (k, i[, b]); `panels` is (jj, k, jo[, b]) as
// pack_panels() lays it out. `bias` (j, or i when bias_by_row) and `residual` (j, i[, b]) are
// read only when the epilogue has them.
GemmFuncs gemm_algorithm(const GemmShape& s, int nr, int64_t kc, Halide::Func a,
                         Halide::Func panels, const Epilogue& e, Halide::Func bias,
                         Halide::Func residual, bool bias_by_row = false);

// Panels of `src` (j, k[, b]), n columns: panels(jj, k, jo[, b]) = src(jo * nr + jj, k[, b]),
// zero where jo * nr + jj >= n.
Halide::Func pack_panels(Halide::Func src, int64_t n, int nr, bool batched);

int64_t panel_count(int64_t n, int nr);

// Declares a boundary buffer's shape (Halide order, dense, min 0). Kernels are compiled per
// workload, so every index is then known up to the loop variables: the consumer of the register
// tile sees that a tile starts at a multiple of nr, and edge tests fold away.
void set_dense_shape(Halide::OutputImageParam p, const std::vector<int>& extents);

}  // namespace kiln
