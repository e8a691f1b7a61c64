// kiln/bench/peers_onednn.cpp — oneDNN as a peer: convolutions (grouped for depthwise) and dense.
//
// oneDNN picks its own layouts (format_tag::any for convolution src, weights and dst; for
// matmul the weights) and its own algorithm (convolution_auto may choose Winograd). Inputs are
// reordered into those layouts once, outside the timing; run() is execute() + wait().
#include <omp.h>

#include <fmt/format.h>
#include <dnnl.hpp>

#include "bench/peer.h"

namespace kiln::bench {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DT = memory::data_type;

class OneDnnRun final : public LayerRun {
  public:
    OneDnnRun(dnnl::engine eng, dnnl::primitive prim, memory src, memory wei, memory dst,
              memory::desc user_dst_md)
        : eng_(std::move(eng)),
          stream_(eng_),
          prim_(std::move(prim)),
          src_(std::move(src)),
          wei_(std::move(wei)),
          dst_(std::move(dst)),
          user_dst_md_(std::move(user_dst_md)) {}

    void run() override {
        prim_.execute(stream_,
                      {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_}, {DNNL_ARG_DST, dst_}});
        stream_.wait();
    }
    void read_output(float* out) override {
        memory user(user_dst_md_, eng_, out);
        dnnl::reorder(dst_, user).execute(stream_, dst_, user);
        stream_.wait();
    }

  private:
    dnnl::engine eng_;
    dnnl::stream stream_;
    dnnl::primitive prim_;
    memory src_, wei_, dst_;
    memory::desc user_dst_md_;  // NCHW or row-major, for read_output()
};

// A memory in `want`'s layout holding the user's data (reordered once).
memory to_layout(const memory::desc& want, const memory::desc& user_md, const float* data,
                 const dnnl::engine& eng) {
    memory user(user_md, eng, const_cast<float*>(data));
    memory m(want, eng);
    dnnl::stream s(eng);
    dnnl::reorder(user, m).execute(s, user, m);
    s.wait();
    return m;
}

class OneDnnPeer final : public Peer {
  public:
    std::string name() const override { return "oneDNN"; }
    int column() const override { return 1; }
    std::string version() const override {
        const dnnl_version_t* v = dnnl::version();
        return fmt::format("{}.{}.{} ({})", v->major, v->minor, v->patch,
                           v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other runtime");
    }
    // libgomp's idle workers spin before they sleep. On this 2-CPU host shared with other
    // builds (load average ~9), that left each oneDNN call waiting for a time slice: gemm_256
    // took 20-25 ms with the default policy and 0.15-0.46 ms with `passive`, r50_l1_1x1_64
    // 18-24 ms against 0.37-0.69 ms.
    std::vector<std::pair<std::string, std::string>> environment() const override {
        return {{"OMP_WAIT_POLICY", "passive"}};
    }
    void set_threads(int n) const override { omp_set_num_threads(n); }

    std::unique_ptr<LayerRun> prepare(const Layer& l, const float* input, const float* weight,
                                      std::string* why) const override {
        dnnl::engine eng(dnnl::engine::kind::cpu, 0);
        return l.is_conv ? conv(l, input, weight, eng) : matmul(l, input, weight, eng);
    }

  private:
    static std::unique_ptr<LayerRun> conv(const Layer& l, const float* input, const float* weight,
                                          const dnnl::engine& eng) {
        const ConvDims& d = l.conv;
        const bool grouped = d.groups > 1;
        memory::dims src_dims = {d.n, d.c, d.h, d.w};
        memory::dims wei_dims =
            grouped ? memory::dims{d.groups, d.k / d.groups, d.c / d.groups, d.r, d.s}
                    : memory::dims{d.k, d.c, d.r, d.s};
        memory::dims dst_dims = {d.n, d.k, d.oh(), d.ow()};
        // oneDNN counts dilation from 0 (no dilation), kiln and ONNX from 1.
        dnnl::convolution_forward::desc desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_auto,
            memory::desc(src_dims, DT::f32, Tag::any), memory::desc(wei_dims, DT::f32, Tag::any),
            memory::desc(dst_dims, DT::f32, Tag::any), {d.stride, d.stride},
            {d.dilation - 1, d.dilation - 1}, {d.pad, d.pad}, {d.pad, d.pad});
        dnnl::convolution_forward::primitive_desc pd(desc, eng);
        memory src =
            to_layout(pd.src_desc(), memory::desc(src_dims, DT::f32, Tag::nchw), input, eng);
        memory wei = to_layout(pd.weights_desc(),
                               memory::desc(wei_dims, DT::f32, grouped ? Tag::goihw : Tag::oihw),
                               weight, eng);
        auto r = std::make_unique<OneDnnRun>(eng, dnnl::convolution_forward(pd), src, wei,
                                             memory(pd.dst_desc(), eng),
                                             memory::desc(dst_dims, DT::f32, Tag::nchw));
        r->detail = pd.impl_info_str();
        return r;
    }

    static std::unique_ptr<LayerRun> matmul(const Layer& l, const float* input, const float* weight,
                                            const dnnl::engine& eng) {
        const GemmDims& g = l.gemm;
        memory::desc src_md({g.m, g.k}, DT::f32, Tag::ab);
        memory::desc dst_md({g.m, g.n}, DT::f32, Tag::ab);
        // W is [n, k] row-major: as matmul's [k, n] weights that is the transposed tag `ba`.
        memory::desc user_wei_md({g.k, g.n}, DT::f32, Tag::ba);
        dnnl::matmul::desc desc(src_md, memory::desc({g.k, g.n}, DT::f32, Tag::any), dst_md);
        dnnl::matmul::primitive_desc pd(desc, eng);
        memory src = to_layout(pd.src_desc(), src_md, input, eng);
        memory wei = to_layout(pd.weights_desc(), user_wei_md, weight, eng);
        auto r = std::make_unique<OneDnnRun>(eng, dnnl::matmul(pd), src, wei,
                                             memory(pd.dst_desc(), eng), dst_md);
        r->detail = pd.impl_info_str();
        return r;
    }
};

KILN_REGISTER_PEER(OneDnnPeer);

}  // namespace
}  // namespace kiln::bench
