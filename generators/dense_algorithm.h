// kiln/generators/dense_algorithm.h — dense's Halide algorithm (internal: for schedules/dense.cpp).
//
// The weight [n, k] is repacked once, at prepare() time, into panels of nr rows (gemm.h);
// the main pipeline reads the packed buffer, never the weight itself.
#pragma once

#include <vector>

#include "Halide.h"
#include "core/workload.h"
#include "generators/gemm.h"

namespace kiln {

struct DenseFuncs {
    // Halide order, innermost first: input (k, m), weight (k, n), residual (n, m).
    Halide::ImageParam input{Halide::Float(32), 2, "input"};
    Halide::ImageParam weight{Halide::Float(32), 2, "weight"};
    Halide::ImageParam bias{Halide::Float(32), 1, "bias"};
    Halide::ImageParam residual{Halide::Float(32), 2, "residual"};
    Halide::ImageParam packed{Halide::Float(32), 3, "packed_weight"};  // (jj, k, jo)
    Halide::Func pack;  // weight -> panels, the prepare() pipeline
    std::vector<int> packed_extents;
    GemmShape shape;
    GemmFuncs gemm;
};

// Panels of `nr` weight rows; reduction blocks of `kc` (kc >= k: one block).
DenseFuncs dense_algorithm(const Workload& w, int nr, int64_t kc);

}  // namespace kiln
