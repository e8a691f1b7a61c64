// kiln/generators/epilogue.h — the fused epilogue as Halide expressions (internal; includes
// Halide). Same order as Epilogue::apply, the scalar reference: + bias, + residual, activation.
#pragma once

#include "Halide.h"
#include "core/workload.h"

namespace kiln {

// `bias_value` and `residual_value` are read only when the epilogue has them (may be undefined
// Exprs otherwise).
Halide::Expr apply_epilogue(const Epilogue& e, Halide::Expr acc, const Halide::Expr& bias_value,
                            const Halide::Expr& residual_value);

}  // namespace kiln
