// kiln/generators/batch_matmul.cpp — batch_matmul: Y[b, m, n] = A[b, m, k] * B[b, k, n].
//
// ONNX MatMul with one batch dimension (attention's Q*K^T and P*V); B is not transposed. The
// definition (parameters b, m, n, k; key `batch_matmul/b12m128n128k64/f32`), the scalar
// reference and the Halide algorithm: the shared blocked GEMM of gemm.cpp with B repacked into
// panels inside the main pipeline. Start with BatchMatmulDef.
#include <vector>

#include "core/error.h"
#include "core/op.h"
#include "generators/batch_matmul_algorithm.h"

namespace kiln {

namespace {

class BatchMatmulDef final : public OpDef {
  public:
    std::string name() const override { return "batch_matmul"; }
    std::string summary() const override {
        return "batched matrix product: output[b, m, n] = a[b, m, k] * b[b, k, n]";
    }
    std::string example() const override { return "b=12,m=128,n=128,k=64"; }
    const std::vector<ParamSpec>& params() const override {
        static const std::vector<ParamSpec> p = {
            {"b", "b", 0, 1, -1, 1, "batch (e.g. batch x attention heads)"},
            {"m", "m", 0, 1, -1, 1, "rows of a and of the output"},
            {"n", "n", 0, 1, -1, 1, "columns of b and of the output"},
            {"k", "k", 0, 1, -1, 1, "columns of a, rows of b (reduction)"},
        };
        return p;
    }
    void check(const Workload& w) const override {
        // Halide indexes with 32-bit integers.
        for (const char* p : {"b", "m", "n", "k"})
            if (w.get(p) > (int64_t{1} << 30)) throw Error(p, "too large for 32-bit indexing");
    }
    std::vector<TensorSpec> operands(const Workload& w) const override {
        const int64_t b = w.get("b"), m = w.get("m"), n = w.get("n"), k = w.get("k");
        return {{"a", {b, m, k}, w.dtype}, {"b", {b, k, n}, w.dtype}};
    }
    TensorSpec output(const Workload& w) const override {
        return {"output", {w.get("b"), w.get("m"), w.get("n")}, w.dtype};
    }
    double flops(const Workload& w) const override {
        return 2.0 * w.get("b") * w.get("m") * w.get("n") * w.get("k");
    }
    void reference(const Workload& w, const std::vector<const float*>& in,
                   float* out) const override {
        const int64_t nb = w.get("b"), m = w.get("m"), n = w.get("n"), k = w.get("k");
        const float* a = in[0];
        const float* b = in[1];
        size_t next = 2;
        const float* bias = w.epilogue.bias ? in[next++] : nullptr;
        const float* res = w.epilogue.residual ? in[next++] : nullptr;
        for (int64_t p = 0; p < nb; ++p)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double acc = 0.0;
                    for (int64_t r = 0; r < k; ++r)
                        acc += double(a[(p * m + i) * k + r]) * b[(p * k + r) * n + j];
                    int64_t o = (p * m + i) * n + j;
                    out[o] = w.epilogue.apply(static_cast<float>(acc), bias ? bias[j] : 0.0f,
                                              res ? res[o] : 0.0f);
                }
    }
};

}  // namespace

BatchMatmulFuncs batch_matmul_algorithm(const Workload& w, int nr, int64_t kc) {
    BatchMatmulFuncs f;
    f.shape = {w.get("b"), w.get("m"), w.get("n"), w.get("k")};
    f.panels = pack_panels(f.b, f.shape.n, nr, true);
    f.gemm = gemm_algorithm(f.shape, nr, kc, f.a, f.panels, w.epilogue, f.bias, f.residual);
    return f;
}

KILN_REGISTER_OP(BatchMatmulDef);

}  // namespace kiln
