// kiln/graph/halide_op_elementwise.cpp — Halide lowerings of the elementwise ops
// (graph/op_elementwise.cpp): activations, Clip, broadcasting arithmetic, variadic
// Sum/Mean/Max/Min, and the identities Identity and Dropout.
//
// Each lowering writes the same scalar function as its reference, attribute defaults included;
// broadcasting reads through broadcast_at() (graph/halide_op_helpers.h).
#include <cmath>
#include <functional>

#include "graph/halide_op_helpers.h"

namespace kiln::graph {
namespace {

using Halide::Expr;
using Halide::Func;

using UnaryFn = std::function<Expr(Expr)>;
using UnaryFactory = std::function<UnaryFn(const Node&)>;

class UnaryLowering : public HalideLowering {
  public:
    UnaryLowering(std::string type, UnaryFactory make)
        : type_(std::move(type)), make_(std::move(make)) {}
    std::string type() const override { return type_; }
    std::vector<Func> define(const Node& n, const Graph&,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "X");
        UnaryFn f = make_(n);
        return {make_func(type_, x.shape.size(), [&](const Coords& c) { return f(at(x, c)); })};
    }

  private:
    std::string type_;
    UnaryFactory make_;
};

UnaryFactory fixed(UnaryFn f) {
    return [f](const Node&) { return f; };
}

Expr sigmoid(Expr x) {
    return 1.0f / (1.0f + Halide::exp(-x));
}

// Clamps to [lo, hi] the way the references do (fmin(hi, fmax(lo, x))).
Expr clamp_f(Expr x, Expr lo, Expr hi) {
    return Halide::min(hi, Halide::max(lo, x));
}

#define KILN_UNARY(type, ...) \
    KILN_REGISTER_HALIDE_LOWERING(std::make_unique<UnaryLowering>(type, __VA_ARGS__))

KILN_UNARY("Relu", fixed([](Expr x) { return Halide::select(x > 0.0f, x, 0.0f); }));
KILN_UNARY("Sigmoid", fixed(sigmoid));
KILN_UNARY("Tanh", fixed([](Expr x) { return Halide::tanh(x); }));
KILN_UNARY("Exp", fixed([](Expr x) { return Halide::exp(x); }));
KILN_UNARY("Log", fixed([](Expr x) { return Halide::log(x); }));
KILN_UNARY("Sqrt", fixed([](Expr x) { return Halide::sqrt(x); }));
KILN_UNARY("Abs", fixed([](Expr x) { return Halide::abs(x); }));
KILN_UNARY("Neg", fixed([](Expr x) { return -x; }));
KILN_UNARY("Reciprocal", fixed([](Expr x) { return 1.0f / x; }));
KILN_UNARY("Floor", fixed([](Expr x) { return Halide::floor(x); }));
KILN_UNARY("Ceil", fixed([](Expr x) { return Halide::ceil(x); }));
KILN_UNARY("HardSigmoid", [](const Node& n) -> UnaryFn {
    const float alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
    return [alpha, beta](Expr x) { return clamp_f(alpha * x + beta, 0.0f, 1.0f); };
});
KILN_UNARY("HardSwish", fixed([](Expr x) { return x * clamp_f(x / 6 + 0.5f, 0.0f, 1.0f); }));
KILN_UNARY("LeakyRelu", [](const Node& n) -> UnaryFn {
    const float alpha = n.attr_float("alpha", 0.01f);
    return [alpha](Expr x) { return Halide::select(x >= 0.0f, x, alpha * x); };
});
KILN_UNARY("Elu", [](const Node& n) -> UnaryFn {
    const float alpha = n.attr_float("alpha", 1.0f);
    return
        [alpha](Expr x) { return Halide::select(x >= 0.0f, x, alpha * (Halide::exp(x) - 1.0f)); };
});

#undef KILN_UNARY

// Clip: bounds are optional scalar inputs (opset 11+), read as data so that a bound computed at
// run time works too.
class ClipLowering : public HalideLowering {
  public:
    std::string type() const override { return "Clip"; }
    std::vector<Func> define(const Node& n, const Graph&,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "input");
        auto bound = [&](size_t i, float fallback) -> Expr {
            const HalideTensor* b = optional_data_input(in, i);
            if (!b) {
                if (i < in.size() && in[i].constant) return scalar_f32(*in[i].constant);
                return fallback;
            }
            return at(*b, Coords(b->shape.size(), 0));
        };
        Expr lo = bound(1, -INFINITY), hi = bound(2, INFINITY);
        return {make_func("Clip", x.shape.size(),
                          [&](const Coords& c) { return clamp_f(at(x, c), lo, hi); })};
    }
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<ClipLowering>());

// Broadcasting binary arithmetic, and the variadic Sum, Mean, Max and Min: every input read
// broadcast to the output's shape, folded left to right as the references do.
class FoldLowering : public HalideLowering {
  public:
    using Fn = Expr (*)(Expr, Expr);
    FoldLowering(std::string type, Fn f, bool mean = false)
        : type_(std::move(type)), f_(f), mean_(mean) {}
    std::string type() const override { return type_; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
        std::vector<const HalideTensor*> args;
        for (size_t i = 0; i < n.inputs.size(); ++i)
            args.push_back(&data_input(n, in, i, "operand"));
        return {make_func(type_, shape.size(), [&](const Coords& c) {
            Expr acc = broadcast_at(*args[0], c);
            for (size_t i = 1; i < args.size(); ++i)
                acc = f_(acc, broadcast_at(*args[i], c));
            if (mean_) acc = acc / static_cast<float>(args.size());
            return acc;
        })};
    }

  private:
    std::string type_;
    Fn f_;
    bool mean_;
};

KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Add",
                                                             [](Expr a, Expr b) { return a + b; }));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Sub",
                                                             [](Expr a, Expr b) { return a - b; }));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Mul",
                                                             [](Expr a, Expr b) { return a * b; }));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Div",
                                                             [](Expr a, Expr b) { return a / b; }));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Pow", [](Expr a, Expr b) {
    return Halide::pow(a, b);
}));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Sum",
                                                             [](Expr a, Expr b) { return a + b; }));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>(
    "Mean", [](Expr a, Expr b) { return a + b; }, true));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Max", [](Expr a, Expr b) {
    return Halide::max(a, b);
}));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<FoldLowering>("Min", [](Expr a, Expr b) {
    return Halide::min(a, b);
}));

// Identity, and Dropout at inference: the output is the input, so compilation aliases them.
class IdentityLowering : public HalideLowering {
  public:
    explicit IdentityLowering(std::string type) : type_(std::move(type)) {}
    std::string type() const override { return type_; }
    bool is_alias() const override { return true; }
    std::vector<Func> define(const Node& n, const Graph&,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "input");
        return {make_func(type_, x.shape.size(), [&](const Coords& c) { return at(x, c); })};
    }

  private:
    std::string type_;
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<IdentityLowering>("Identity"));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<IdentityLowering>("Dropout"));

}  // namespace
}  // namespace kiln::graph
