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

Halide::Expr activation_at(Halide::Func t, int block, Halide::Expr x, Halide::Expr y,
                           Halide::Expr c, Halide::Expr n) {
    if (!block) return t(x, y, c, n);
    return t(c % block, x, y, c / block, n);
}

}  // namespace kiln
