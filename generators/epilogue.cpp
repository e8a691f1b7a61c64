#include "generators/epilogue.h"

namespace kiln {

Halide::Expr apply_epilogue(const Epilogue& e, Halide::Expr acc, const Halide::Expr& bias_value,
                            const Halide::Expr& residual_value) {
    if (e.bias) acc = acc + bias_value;
    if (e.residual) acc = acc + residual_value;
    if (e.activation == Activation::relu) acc = Halide::max(acc, 0.0f);
    if (e.activation == Activation::clip) acc = Halide::clamp(acc, e.clip_min, e.clip_max);
    return acc;
}

}  // namespace kiln
