// kiln/bench/peers_openblas.cpp — OpenBLAS as a peer for dense layers: one cblas_sgemm call.
#include <cblas.h>

#include <vector>

#include "bench/peer.h"

namespace kiln::bench {
namespace {

// Y = X * W^T with X [m, k] and W [n, k] row-major, as kiln's dense defines it.
class SgemmRun final : public LayerRun {
  public:
    SgemmRun(const GemmDims& g, const float* x, const float* w)
        : g_(g), x_(x), w_(w), y_(size_t(g.m * g.n)) {}
    void run() override {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(g_.m), int(g_.n), int(g_.k), 1.0f,
                    x_, int(g_.k), w_, int(g_.k), 0.0f, y_.data(), int(g_.n));
    }
    void read_output(float* out) override { std::copy(y_.begin(), y_.end(), out); }

  private:
    GemmDims g_;
    const float* x_;
    const float* w_;
    std::vector<float> y_;
};

class OpenBlasPeer final : public Peer {
  public:
    std::string name() const override { return "OpenBLAS"; }
    int column() const override { return 2; }
    std::string version() const override { return openblas_get_config(); }
    void set_threads(int n) const override { openblas_set_num_threads(n); }
    std::unique_ptr<LayerRun> prepare(const Layer& l, const float* input, const float* weight,
                                      std::string* why) const override {
        if (l.is_conv) {
            *why = "OpenBLAS: dense only";
            return nullptr;
        }
        auto r = std::make_unique<SgemmRun>(l.gemm, input, weight);
        r->detail = "cblas_sgemm";
        return r;
    }
};

KILN_REGISTER_PEER(OpenBlasPeer);

}  // namespace
}  // namespace kiln::bench
