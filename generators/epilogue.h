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

// Element (x, y, c, n) of an activation `t` (an input or the residual), NCHW when `block` is 0,
// else channel-blocked by it as Workload::layout says (Halide order: the channel within its
// block innermost, then x, y, the block index, n).
Halide::Expr activation_at(Halide::Func t, int block, Halide::Expr x, Halide::Expr y,
                           Halide::Expr c, Halide::Expr n);

}  // namespace kiln
