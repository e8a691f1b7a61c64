// kiln/generators/dense.cpp — dense (fully connected): Y[m, n] = X[m, k] * W[n, k]^T.
//
// The definition (parameters m, n, k; key `dense/m128n768k768/f32`), the scalar reference and
// the Halide algorithm, which is the shared blocked GEMM of gemm.cpp reading the weight from
// panels packed once at prepare() time. Start with DenseDef.
#include <vector>

#include "core/error.h"
#include "core/op.h"
#include "generators/dense_algorithm.h"

namespace kiln {

namespace {

class DenseDef final : public OpDef {
  public:
    std::string name() const override { return "dense"; }
    std::string summary() const override {
        return "fully connected layer: output[m, n] = input[m, k] * weight[n, k]^T";
    }
    std::string example() const override { return "m=128,n=768,k=768"; }
    const std::vector<ParamSpec>& params() const override {
        static const std::vector<ParamSpec> p = {
            {"m", "m", 0, 1, -1, 1, "rows of the input (batch x tokens)"},
            {"n", "n", 0, 1, -1, 1, "output features (rows of the weight)"},
            {"k", "k", 0, 1, -1, 1, "input features (reduction)"},
        };
        return p;
    }
    void check(const Workload& w) const override {
        // Halide indexes with 32-bit integers.
        for (const char* p : {"m", "n", "k"})
            if (w.get(p) > (int64_t{1} << 30)) throw Error(p, "too large for 32-bit indexing");
    }
    std::vector<TensorSpec> operands(const Workload& w) const override {
        return {{"input", {w.get("m"), w.get("k")}, w.dtype},
                {"weight", {w.get("n"), w.get("k")}, w.dtype}};
    }
    TensorSpec output(const Workload& w) const override {
        return {"output", {w.get("m"), w.get("n")}, w.dtype};
    }
    double flops(const Workload& w) const override {
        return 2.0 * w.get("m") * w.get("n") * w.get("k");
    }
    void reference(const Workload& w, const std::vector<const float*>& in,
                   float* out) const override {
        const int64_t m = w.get("m"), n = w.get("n"), k = w.get("k");
        const float* x = in[0];
        const float* wt = in[1];
        size_t next = 2;
        const float* bias = w.epilogue.bias ? in[next++] : nullptr;
        const float* res = w.epilogue.residual ? in[next++] : nullptr;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double acc = 0.0;
                for (int64_t r = 0; r < k; ++r)
                    acc += double(x[i * k + r]) * wt[j * k + r];
                int64_t o = i * n + j;
                out[o] = w.epilogue.apply(static_cast<float>(acc), bias ? bias[j] : 0.0f,
                                          res ? res[o] : 0.0f);
            }
    }
};

}  // namespace

DenseFuncs dense_algorithm(const Workload& w, int nr, int64_t kc) {
    DenseFuncs d;
    d.shape = {0, w.get("m"), w.get("n"), w.get("k")};
    Halide::Var j("j"), k("k");
    Halide::Func weight_rows("weight_rows");  // (j, k): row j of the weight is column j of Y
    weight_rows(j, k) = d.weight(k, j);
    d.pack = pack_panels(weight_rows, d.shape.n, nr, false);
    d.packed_extents = {nr, static_cast<int>(d.shape.k),
                        static_cast<int>(panel_count(d.shape.n, nr))};
    d.gemm = gemm_algorithm(d.shape, nr, kc, d.input, d.packed, w.epilogue, d.bias, d.residual);
    return d;
}

KILN_REGISTER_OP(DenseDef);

}  // namespace kiln
