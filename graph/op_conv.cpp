// kiln/graph/op_conv.cpp — ONNX Conv: 1-D to 3-D, groups, strides, pads, dilations,
// auto_pad, optional bias. The reference is the direct loop nest with double accumulation.
#include "graph/op.h"
#include "graph/window.h"

namespace kiln::graph {
namespace {

class ConvOp : public GraphOp {
  public:
    std::string type() const override { return "Conv"; }
    std::string limits() const override { return "f32; 1-D to 3-D"; }

    // From the input's and the weight's shapes.
    static Window window(const Node& n, const std::vector<int64_t>& x,
                         const std::vector<int64_t>& w) {
        if (x.size() < 3 || x.size() != w.size())
            throw node_error(n, "input " + shape_string(x) + " and weight " + shape_string(w) +
                                    " must have the same rank, >= 3");
        std::vector<int64_t> spatial(x.begin() + 2, x.end());
        std::vector<int64_t> kernel(w.begin() + 2, w.end());
        if (n.has_attr("kernel_shape") && n.attr_ints("kernel_shape") != kernel)
            throw node_error(n, "kernel_shape " + shape_string(n.attr_ints("kernel_shape")) +
                                    " does not match the weight " + shape_string(w));
        return make_window(n, spatial, kernel, false, true);
    }

    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "X");
        const Value& w = required_input(g, n, 1, "W");
        Window win = window(n, x.shape, w.shape);
        const int64_t group = n.attr_int("group", 1);
        const int64_t c = x.shape[1], m = w.shape[0];
        if (group < 1 || c % group != 0 || m % group != 0 || w.shape[1] * group != c)
            throw node_error(n, "group " + std::to_string(group) + " does not fit " +
                                    std::to_string(c) + " input channels and weight " +
                                    shape_string(w.shape));
        if (const Value* b = input(g, n, 2); b && b->shape != std::vector<int64_t>{m})
            throw node_error(
                n, "bias " + shape_string(b->shape) + " must be [" + std::to_string(m) + "]");
        std::vector<int64_t> out = {x.shape[0], m};
        for (int64_t d : window_output_dims(win))
            out.push_back(d);
        return {{DType::f32, out}};
    }

    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const Tensor& xt = *in[0];
        const Tensor& wt = *in[1];
        const float* bias = in.size() > 2 && in[2] ? in[2]->data<float>() : nullptr;
        const Window win = window(n, xt.shape, wt.shape);
        const int64_t batch = xt.shape[0], c = xt.shape[1], m = wt.shape[0];
        const int64_t group = n.attr_int("group", 1);
        const int64_t cg = c / group, mg = m / group;
        const auto &I = win.in, &O = win.out, &K = win.kernel, &S = win.stride, &D = win.dilation,
                   &P = win.pad_begin;
        const float* x = xt.data<float>();
        const float* w = wt.data<float>();
        float* y = out[0].data<float>();
        const int64_t in_plane = I[0] * I[1] * I[2], k_plane = K[0] * K[1] * K[2];
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t oc = 0; oc < m; ++oc) {
                const int64_t g0 = (oc / mg) * cg;  // first input channel of oc's group
                for (int64_t o0 = 0; o0 < O[0]; ++o0)
                    for (int64_t o1 = 0; o1 < O[1]; ++o1)
                        for (int64_t o2 = 0; o2 < O[2]; ++o2) {
                            double acc = bias ? bias[oc] : 0.0;
                            for (int64_t ic = 0; ic < cg; ++ic)
                                for (int64_t k0 = 0; k0 < K[0]; ++k0)
                                    for (int64_t k1 = 0; k1 < K[1]; ++k1)
                                        for (int64_t k2 = 0; k2 < K[2]; ++k2) {
                                            int64_t i0 = o0 * S[0] + k0 * D[0] - P[0];
                                            int64_t i1 = o1 * S[1] + k1 * D[1] - P[1];
                                            int64_t i2 = o2 * S[2] + k2 * D[2] - P[2];
                                            if (i0 < 0 || i0 >= I[0] || i1 < 0 || i1 >= I[1] ||
                                                i2 < 0 || i2 >= I[2])
                                                continue;
                                            double xv = x[(b * c + g0 + ic) * in_plane +
                                                          (i0 * I[1] + i1) * I[2] + i2];
                                            double wv = w[(oc * cg + ic) * k_plane +
                                                          (k0 * K[1] + k1) * K[2] + k2];
                                            acc += xv * wv;
                                        }
                            y[((b * m + oc) * O[0] + o0) * O[1] * O[2] + o1 * O[2] + o2] =
                                static_cast<float>(acc);
                        }
            }
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<ConvOp>());

}  // namespace
}  // namespace kiln::graph
