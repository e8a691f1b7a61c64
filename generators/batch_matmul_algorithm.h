// kiln/generators/batch_matmul_algorithm.h — batch_matmul's Halide algorithm (internal: for
// schedules/batch_matmul.cpp).
//
// Both operands are activations, so nothing is packed at prepare() time: the right operand is
// laid out in panels (gemm.h) inside the main pipeline, once per batch, where the schedule
// puts it.
#pragma once

#include "Halide.h"
#include "core/workload.h"
#include "generators/gemm.h"

namespace kiln {

struct BatchMatmulFuncs {
    // Halide order, innermost first: a (k, m, b), b (n, k, b), residual (n, m, b).
    Halide::ImageParam a{Halide::Float(32), 3, "a"};
    Halide::ImageParam b{Halide::Float(32), 3, "b"};
    Halide::ImageParam bias{Halide::Float(32), 1, "bias"};
    Halide::ImageParam residual{Halide::Float(32), 3, "residual"};
    Halide::Func panels;  // (jj, k, jo, batch): b in panels of nr columns
    GemmShape shape;
    GemmFuncs gemm;
};

BatchMatmulFuncs batch_matmul_algorithm(const Workload& w, int nr, int64_t kc);

}  // namespace kiln
