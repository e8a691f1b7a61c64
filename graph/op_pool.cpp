// kiln/graph/op_pool.cpp — MaxPool, AveragePool (count_include_pad, ceil_mode), and the global
// poolings. 1-D to 3-D windows through graph/window.h.
#include <algorithm>
#include <cmath>

#include "graph/op.h"
#include "graph/window.h"

namespace kiln::graph {
namespace {

class PoolOp : public GraphOp {
  public:
    explicit PoolOp(bool max) : max_(max) {}
    std::string type() const override { return max_ ? "MaxPool" : "AveragePool"; }
    std::string limits() const override {
        return max_ ? "f32; 1-D to 3-D; no Indices output" : "f32; 1-D to 3-D";
    }
    std::string decline(const Node& n, const Graph& g) const override {
        if (std::string r = require_outputs(n, 1); !r.empty()) return r + " (Indices)";
        return require_f32(n, g);
    }

    Window window(const Node& n, const std::vector<int64_t>& x) const {
        if (x.size() < 3) throw node_error(n, "input " + shape_string(x) + " has no spatial dims");
        return make_window(n, std::vector<int64_t>(x.begin() + 2, x.end()),
                           n.attr_ints("kernel_shape"), n.attr_int("ceil_mode", 0) != 0, max_);
    }

    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "X");
        if (n.attr_int("storage_order", 0) != 0)
            throw Declined("storage_order 1 (column-major Indices)");
        std::vector<int64_t> out = {x.shape[0], x.shape.size() > 1 ? x.shape[1] : 1};
        for (int64_t d : window_output_dims(window(n, x.shape)))
            out.push_back(d);
        return {{DType::f32, out}};
    }

    void evaluate(const Node& n, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const Window win = window(n, in[0]->shape);
        const bool include_pad = n.attr_int("count_include_pad", 0) != 0;
        const auto &I = win.in, &O = win.out, &K = win.kernel, &S = win.stride, &D = win.dilation,
                   &P = win.pad_begin, &E = win.pad_end;
        const int64_t planes = in[0]->shape[0] * in[0]->shape[1];
        const int64_t in_plane = I[0] * I[1] * I[2], out_plane = O[0] * O[1] * O[2];
        const float* x = in[0]->data<float>();
        float* y = out[0].data<float>();
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t o0 = 0; o0 < O[0]; ++o0)
                for (int64_t o1 = 0; o1 < O[1]; ++o1)
                    for (int64_t o2 = 0; o2 < O[2]; ++o2) {
                        double acc = max_ ? -INFINITY : 0.0;
                        int64_t count = 0;  // positions averaged over
                        for (int64_t k0 = 0; k0 < K[0]; ++k0)
                            for (int64_t k1 = 0; k1 < K[1]; ++k1)
                                for (int64_t k2 = 0; k2 < K[2]; ++k2) {
                                    int64_t i[3] = {o0 * S[0] + k0 * D[0] - P[0],
                                                    o1 * S[1] + k1 * D[1] - P[1],
                                                    o2 * S[2] + k2 * D[2] - P[2]};
                                    bool inside = true, in_padded = true;
                                    for (int d = 0; d < 3; ++d) {
                                        inside = inside && i[d] >= 0 && i[d] < I[d];
                                        // count_include_pad counts the pads, but not what
                                        // ceil_mode reaches past them.
                                        in_padded =
                                            in_padded && i[d] >= -P[d] && i[d] < I[d] + E[d];
                                    }
                                    if (inside) {
                                        float v =
                                            x[p * in_plane + (i[0] * I[1] + i[1]) * I[2] + i[2]];
                                        acc = max_ ? std::fmax(acc, v) : acc + v;
                                    }
                                    if (include_pad ? in_padded : inside) ++count;
                                }
                        float r = max_ ? static_cast<float>(acc)
                                       : static_cast<float>(count ? acc / count : 0.0);
                        y[p * out_plane + (o0 * O[1] + o1) * O[2] + o2] = r;
                    }
    }

  private:
    bool max_;
};
KILN_REGISTER_GRAPH_OP(std::make_unique<PoolOp>(true));
KILN_REGISTER_GRAPH_OP(std::make_unique<PoolOp>(false));

// GlobalAveragePool, GlobalMaxPool: every spatial dimension reduced to 1.
class GlobalPoolOp : public GraphOp {
  public:
    explicit GlobalPoolOp(bool max) : max_(max) {}
    std::string type() const override { return max_ ? "GlobalMaxPool" : "GlobalAveragePool"; }
    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, 0, "X");
        if (x.shape.size() < 3)
            throw node_error(n, "input " + shape_string(x.shape) + " has no spatial dims");
        std::vector<int64_t> out = x.shape;
        for (size_t d = 2; d < out.size(); ++d)
            out[d] = 1;
        return {{DType::f32, out}};
    }
    void evaluate(const Node&, int, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const int64_t planes = in[0]->shape[0] * in[0]->shape[1];
        const int64_t size = in[0]->numel() / std::max<int64_t>(planes, 1);
        const float* x = in[0]->data<float>();
        float* y = out[0].data<float>();
        for (int64_t p = 0; p < planes; ++p) {
            double acc = max_ ? -INFINITY : 0.0;
            for (int64_t i = 0; i < size; ++i)
                acc = max_ ? std::fmax(acc, x[p * size + i]) : acc + x[p * size + i];
            y[p] = static_cast<float>(max_ ? acc : acc / size);
        }
    }

  private:
    bool max_;
};
KILN_REGISTER_GRAPH_OP(std::make_unique<GlobalPoolOp>(true));
KILN_REGISTER_GRAPH_OP(std::make_unique<GlobalPoolOp>(false));

}  // namespace
}  // namespace kiln::graph
