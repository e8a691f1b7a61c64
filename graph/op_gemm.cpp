// kiln/graph/op_gemm.cpp — Gemm (transA, transB, alpha, beta, broadcast C) and MatMul (numpy
// semantics: 1-D operands promoted, batch dimensions broadcast). Double accumulation.
#include "graph/op.h"

namespace kiln::graph {
namespace {

class GemmOp : public GraphOp {
  public:
    std::string type() const override { return "Gemm"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& a = required_input(g, n, 0, "A");
        const Value& b = required_input(g, n, 1, "B");
        if (a.shape.size() != 2 || b.shape.size() != 2)
            throw node_error(n, "A " + shape_string(a.shape) + " and B " + shape_string(b.shape) +
                                    " must be 2-D");
        const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
        const int64_t m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1];
        const int64_t kb = tb ? b.shape[1] : b.shape[0], nn = tb ? b.shape[0] : b.shape[1];
        if (k != kb)
            throw node_error(n, "A " + shape_string(a.shape) + " and B " + shape_string(b.shape) +
                                    " disagree on K (transA " + std::to_string(ta) + ", transB " +
                                    std::to_string(tb) + ")");
        if (const Value* c = input(g, n, 2)) {
            std::vector<int64_t> mn = {m, nn};
            if (broadcast_shapes(n, c->shape, mn) != mn)
                throw node_error(n, "C " + shape_string(c->shape) + " does not broadcast to " +
                                        shape_string(mn));
        }
        return {{DType::f32, {m, nn}}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const Tensor &a = *in[0], &b = *in[1];
        const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
        const float alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
        const int64_t m = out[0].shape[0], nn = out[0].shape[1];
        const int64_t k = ta ? a.shape[0] : a.shape[1];
        const float* pa = a.data<float>();
        const float* pb = b.data<float>();
        const float* pc = in.size() > 2 && in[2] ? in[2]->data<float>() : nullptr;
        std::vector<int64_t> ic;
        if (pc) ic = broadcast_index(in[2]->shape, out[0].shape);
        float* y = out[0].data<float>();
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < nn; ++j) {
                double acc = 0;
                for (int64_t p = 0; p < k; ++p) {
                    double av = ta ? pa[p * m + i] : pa[i * k + p];
                    double bv = tb ? pb[j * k + p] : pb[p * nn + j];
                    acc += av * bv;
                }
                double r = alpha * acc;
                if (pc) r += static_cast<double>(beta) * pc[ic[i * nn + j]];
                y[i * nn + j] = static_cast<float>(r);
            }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<GemmOp>());

class MatMulOp : public GraphOp {
  public:
    std::string type() const override { return "MatMul"; }

    struct Dims {
        std::vector<int64_t> a, b;   // both at least 2-D after promotion
        std::vector<int64_t> batch;  // broadcast batch dims
        std::vector<int64_t> out;    // the ONNX output shape (promoted dims removed)
        int64_t m, k, n;
    };
    static Dims dims(const Node& node, std::vector<int64_t> a, std::vector<int64_t> b) {
        if (a.empty() || b.empty()) throw node_error(node, "MatMul operands must not be scalars");
        const bool a1 = a.size() == 1, b1 = b.size() == 1;
        if (a1) a.insert(a.begin(), 1);
        if (b1) b.push_back(1);
        Dims d;
        d.m = a[a.size() - 2];
        d.k = a.back();
        d.n = b.back();
        if (b[b.size() - 2] != d.k)
            throw node_error(
                node, "A " + shape_string(a) + " and B " + shape_string(b) + " disagree on K");
        d.batch = broadcast_shapes(node, std::vector<int64_t>(a.begin(), a.end() - 2),
                                   std::vector<int64_t>(b.begin(), b.end() - 2));
        d.a = a;
        d.b = b;
        d.out = d.batch;
        if (!a1) d.out.push_back(d.m);
        if (!b1) d.out.push_back(d.n);
        return d;
    }

    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        Dims d = dims(n, required_input(g, n, 0, "A").shape, required_input(g, n, 1, "B").shape);
        return {{DType::f32, d.out}};
    }
    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        Dims d = dims(n, in[0]->shape, in[1]->shape);
        // Which matrix of A and of B each batch entry reads: broadcast over the batch dims.
        std::vector<int64_t> ia =
            broadcast_index(std::vector<int64_t>(d.a.begin(), d.a.end() - 2), d.batch);
        std::vector<int64_t> ib =
            broadcast_index(std::vector<int64_t>(d.b.begin(), d.b.end() - 2), d.batch);
        const float* pa = in[0]->data<float>();
        const float* pb = in[1]->data<float>();
        float* y = out[0].data<float>();
        for (size_t bi = 0; bi < ia.size(); ++bi) {
            const float* ma = pa + ia[bi] * d.m * d.k;
            const float* mb = pb + ib[bi] * d.k * d.n;
            float* my = y + bi * d.m * d.n;
            for (int64_t i = 0; i < d.m; ++i)
                for (int64_t j = 0; j < d.n; ++j) {
                    double acc = 0;
                    for (int64_t p = 0; p < d.k; ++p)
                        acc += static_cast<double>(ma[i * d.k + p]) * mb[p * d.n + j];
                    my[i * d.n + j] = static_cast<float>(acc);
                }
        }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<MatMulOp>());

}  // namespace
}  // namespace kiln::graph
