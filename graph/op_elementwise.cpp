// kiln/graph/op_elementwise.cpp — elementwise ops: activations (Relu, Clip, Sigmoid,
// HardSigmoid, HardSwish, ...), broadcasting arithmetic (Add, Sub, Mul, Div, Pow), variadic
// Sum/Max/Min/Mean, and the identities (Identity, Dropout at inference).
//
// Unary ops are one UnaryOp each, built from a function of the node (for attributes such as
// HardSigmoid's alpha) returning the scalar function; binary ops likewise from a scalar lambda
// per element type. Shapes broadcast the ONNX (numpy) way.
#include <cmath>
#include <cstring>
#include <functional>

#include "graph/op.h"

namespace kiln::graph {
namespace {

using ScalarFn = std::function<float(float)>;
using UnaryFactory = std::function<ScalarFn(const Node&)>;

class UnaryOp : public GraphOp {
  public:
    UnaryOp(std::string type, UnaryFactory make) : type_(std::move(type)), make_(std::move(make)) {}
    std::string type() const override { return type_; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "X");
        make_(n);  // validates the attributes
        return {{x.dtype, x.shape}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        ScalarFn f = make_(n);
        const float* x = in[0]->data<float>();
        float* y = out[0].data<float>();
        for (int64_t i = 0; i < out[0].numel(); ++i)
            y[i] = f(x[i]);
    }

  private:
    std::string type_;
    UnaryFactory make_;
};

UnaryFactory fixed(ScalarFn f) {
    return [f](const Node&) { return f; };
}

float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}

KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Relu",
                                                 fixed([](float x) { return x > 0 ? x : 0.0f; })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Sigmoid", fixed(sigmoid)));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Tanh",
                                                 fixed([](float x) { return std::tanh(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Exp",
                                                 fixed([](float x) { return std::exp(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Log",
                                                 fixed([](float x) { return std::log(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Sqrt",
                                                 fixed([](float x) { return std::sqrt(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Abs",
                                                 fixed([](float x) { return std::fabs(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Neg", fixed([](float x) { return -x; })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Reciprocal",
                                                 fixed([](float x) { return 1.0f / x; })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Floor",
                                                 fixed([](float x) { return std::floor(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Ceil",
                                                 fixed([](float x) { return std::ceil(x); })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("HardSigmoid", [](const Node& n) -> ScalarFn {
    float alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
    return [alpha, beta](float x) { return std::fmax(0.0f, std::fmin(1.0f, alpha * x + beta)); };
}));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("HardSwish", fixed([](float x) {
                                                     return x * std::fmax(
                                                                    0.0f,
                                                                    std::fmin(1.0f, x / 6 + 0.5f));
                                                 })));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("LeakyRelu", [](const Node& n) -> ScalarFn {
    float alpha = n.attr_float("alpha", 0.01f);
    return [alpha](float x) { return x >= 0 ? x : alpha * x; };
}));
KILN_REGISTER_GRAPH_OP(std::make_unique<UnaryOp>("Elu", [](const Node& n) -> ScalarFn {
    float alpha = n.attr_float("alpha", 1.0f);
    return [alpha](float x) { return x >= 0 ? x : alpha * (std::exp(x) - 1); };
}));

// Clip: bounds are optional inputs from opset 11 (kiln imports 11 and later only).
class ClipOp : public GraphOp {
  public:
    std::string type() const override { return "Clip"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "input");
        for (size_t i = 1; i < 3; ++i)
            if (const Value* b = input(g, n, i); b && b->numel() != 1)
                throw node_error(n, "bound '" + b->name + "' must be a scalar, has shape " +
                                        shape_string(b->shape));
        return {{x.dtype, x.shape}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        float lo = in.size() > 1 && in[1] ? scalar_f32(*in[1]) : -INFINITY;
        float hi = in.size() > 2 && in[2] ? scalar_f32(*in[2]) : INFINITY;
        const float* x = in[0]->data<float>();
        float* y = out[0].data<float>();
        for (int64_t i = 0; i < out[0].numel(); ++i)
            y[i] = std::fmin(hi, std::fmax(lo, x[i]));
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ClipOp>());

// Broadcasting binary arithmetic on f32, and on i64 for the shape arithmetic that import folds.
class BinaryOp : public GraphOp {
  public:
    using F32 = float (*)(float, float);
    using I64 = int64_t (*)(int64_t, int64_t);
    BinaryOp(std::string type, F32 f, I64 i) : type_(std::move(type)), f32_(f), i64_(i) {}
    std::string type() const override { return type_; }
    std::string limits() const override {
        return i64_ ? "f32, and i64 (shape arithmetic)" : "f32 only";
    }
    std::string decline(const Node& n, const Graph& g) const override {
        std::vector<DType> ok = {DType::f32};
        if (i64_) ok.push_back(DType::i64);
        for (size_t i = 0; i < 2; ++i)
            if (std::string r = require_dtypes(n, g, i, ok); !r.empty()) return r;
        const Value* a = input(g, n, 0);
        const Value* b = input(g, n, 1);
        if (a && b && a->dtype != b->dtype) return "inputs of different dtypes";
        return "";
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& a = required_input(g, n, 0, "A");
        const Value& b = required_input(g, n, 1, "B");
        return {{a.dtype, broadcast_shapes(n, a.shape, b.shape)}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        std::vector<int64_t> ia = broadcast_index(in[0]->shape, out[0].shape);
        std::vector<int64_t> ib = broadcast_index(in[1]->shape, out[0].shape);
        if (out[0].dtype == DType::i64) {
            const int64_t* a = in[0]->data<int64_t>();
            const int64_t* b = in[1]->data<int64_t>();
            int64_t* y = out[0].data<int64_t>();
            for (size_t i = 0; i < ia.size(); ++i)
                y[i] = i64_(a[ia[i]], b[ib[i]]);
            return;
        }
        const float* a = in[0]->data<float>();
        const float* b = in[1]->data<float>();
        float* y = out[0].data<float>();
        for (size_t i = 0; i < ia.size(); ++i)
            y[i] = f32_(a[ia[i]], b[ib[i]]);
    }

  private:
    std::string type_;
    F32 f32_;
    I64 i64_;
};

KILN_REGISTER_GRAPH_OP(std::make_unique<BinaryOp>(
    "Add", [](float a, float b) { return a + b; }, [](int64_t a, int64_t b) { return a + b; }));
KILN_REGISTER_GRAPH_OP(std::make_unique<BinaryOp>(
    "Sub", [](float a, float b) { return a - b; }, [](int64_t a, int64_t b) { return a - b; }));
KILN_REGISTER_GRAPH_OP(std::make_unique<BinaryOp>(
    "Mul", [](float a, float b) { return a * b; }, [](int64_t a, int64_t b) { return a * b; }));
KILN_REGISTER_GRAPH_OP(std::make_unique<BinaryOp>(
    "Div", [](float a, float b) { return a / b; },
    [](int64_t a, int64_t b) { return b == 0 ? int64_t{0} : a / b; }));
KILN_REGISTER_GRAPH_OP(std::make_unique<BinaryOp>(
    "Pow", [](float a, float b) { return std::pow(a, b); }, nullptr));

// Sum, Max, Min, Mean: any number of f32 inputs, all broadcast to one shape.
class VariadicOp : public GraphOp {
  public:
    using F32 = float (*)(float, float);
    VariadicOp(std::string type, F32 f, bool mean) : type_(std::move(type)), f_(f), mean_(mean) {}
    std::string type() const override { return type_; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        std::vector<int64_t> shape = required_input(g, n, 0, "data_0").shape;
        for (size_t i = 1; i < n.inputs.size(); ++i)
            shape = broadcast_shapes(n, shape, required_input(g, n, i, "data").shape);
        return {{DType::f32, shape}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        float* y = out[0].data<float>();
        for (size_t k = 0; k < in.size(); ++k) {
            std::vector<int64_t> idx = broadcast_index(in[k]->shape, out[0].shape);
            const float* x = in[k]->data<float>();
            for (size_t i = 0; i < idx.size(); ++i)
                y[i] = k == 0 ? x[idx[i]] : f_(y[i], x[idx[i]]);
        }
        if (mean_)
            for (int64_t i = 0; i < out[0].numel(); ++i)
                y[i] /= static_cast<float>(in.size());
    }

  private:
    std::string type_;
    F32 f_;
    bool mean_;
};

KILN_REGISTER_GRAPH_OP(std::make_unique<VariadicOp>(
    "Sum", [](float a, float b) { return a + b; }, false));
KILN_REGISTER_GRAPH_OP(std::make_unique<VariadicOp>(
    "Mean", [](float a, float b) { return a + b; }, true));
KILN_REGISTER_GRAPH_OP(std::make_unique<VariadicOp>(
    "Max", [](float a, float b) { return std::fmax(a, b); }, false));
KILN_REGISTER_GRAPH_OP(std::make_unique<VariadicOp>(
    "Min", [](float a, float b) { return std::fmin(a, b); }, false));

// Identity, and Dropout at inference: the output is the input. Any stored dtype.
class IdentityOp : public GraphOp {
  public:
    explicit IdentityOp(std::string type) : type_(std::move(type)) {}
    std::string type() const override { return type_; }
    std::string limits() const override {
        return type_ == "Dropout" ? "inference only: no mask output, training_mode false" : "";
    }
    std::string decline(const Node& n, const Graph& g) const override {
        if (type_ != "Dropout") return "";
        if (std::string r = require_outputs(n, 1); !r.empty()) return r + " (the mask)";
        if (const Value* t = input(g, n, 2)) {
            if (!t->is_constant()) return "training_mode is computed at run time";
            if (t->data->to_i64().at(0) != 0) return "training_mode is true";
        }
        return "";
    }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "input");
        return {{x.dtype, x.shape}};
    }
    void evaluate(const Node&, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        out[0].bytes = in[0]->bytes;
    }

  private:
    std::string type_;
};

KILN_REGISTER_GRAPH_OP(std::make_unique<IdentityOp>("Identity"));
KILN_REGISTER_GRAPH_OP(std::make_unique<IdentityOp>("Dropout"));

}  // namespace
}  // namespace kiln::graph
