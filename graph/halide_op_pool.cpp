// kiln/graph/halide_op_pool.cpp — Halide lowerings of the pooling ops (graph/op_pool.cpp):
// MaxPool and AveragePool over 1-D to 3-D windows (pads, strides, dilations, ceil_mode,
// count_include_pad), GlobalAveragePool and GlobalMaxPool.
//
// The window geometry is graph/window.h's, the one the references use. Each output element is
// an inline reduction over the window of a padded copy of the input (the reduction's neutral
// value outside it). AveragePool's divisor is counted in closed form per dimension instead of
// in the reduction.
#include <cmath>

#include "graph/halide_op_helpers.h"
#include "graph/window.h"

namespace kiln::graph {
namespace {

using Halide::Expr;
using Halide::Func;

// floor(a / b) and ceil(a / b) for b > 0: Halide's division of ints rounds towards -infinity.
Expr ceil_div(Expr a, int64_t b) {
    return (a + i32(b - 1)) / i32(b);
}

class PoolLowering : public HalideLowering {
  public:
    explicit PoolLowering(bool max) : max_(max) {}
    std::string type() const override { return max_ ? "MaxPool" : "AveragePool"; }
    std::vector<Func> define(const Node& n, const Graph& g,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "X");
        if (x.shape.size() < 3) throw node_error(n, "input has no spatial dimensions");
        const size_t sr = x.shape.size() - 2, lead = 3 - sr;
        const Window win =
            make_window(n, std::vector<int64_t>(x.shape.begin() + 2, x.shape.end()),
                        n.attr_ints("kernel_shape"), n.attr_int("ceil_mode", 0) != 0, max_);
        const bool include_pad = n.attr_int("count_include_pad", 0) != 0;
        const std::vector<int64_t> shape = output_types(n, g).at(0).shape;
        std::vector<Halide::Range> ranges;
        for (size_t d = sr; d-- > 0;)
            ranges.push_back({0, i32(win.kernel[lead + d])});
        Halide::RDom r(ranges);
        // Windows reach past the input into pads and, with ceil_mode, beyond them: read there
        // as the neutral value of the reduction, so that the loop reads without masks.
        HalideTensor padded = x;
        padded.f = padded_spatial(x, max_ ? -INFINITY : 0.0f);

        return {make_func(max_ ? "max_pool" : "avg_pool", shape.size(), [&](const Coords& c) {
            Coords xc = {c[0], c[1]};
            Expr count = 1;
            for (size_t d = 0; d < sr; ++d) {
                const size_t i = lead + d;
                const int64_t dim = win.in[i], stride = win.stride[i], dil = win.dilation[i];
                const int64_t pad = win.pad_begin[i], k = win.kernel[i];
                Expr base = c[2 + d] * i32(stride) - i32(pad);
                xc.push_back(base + r[static_cast<int>(sr - 1 - d)] * i32(dil));
                if (!max_) {
                    // The window positions k with lo <= base + k * dil < hi: the input's (or,
                    // with count_include_pad, the padded input's) extent, never what ceil_mode
                    // reaches past the pads.
                    const int64_t lo = include_pad ? -pad : 0;
                    const int64_t hi = include_pad ? dim + win.pad_end[i] : dim;
                    Expr first = Halide::max(0, ceil_div(i32(lo) - base, dil));
                    Expr last = Halide::min(i32(k - 1), (i32(hi - 1) - base) / i32(dil));
                    count = count * Halide::max(0, last - first + 1);
                }
            }
            if (max_) return Halide::maximum(r, at(padded, xc));
            Expr total = Halide::sum(r, at(padded, xc));
            return Halide::select(count > 0, total / Halide::cast<float>(count), 0.0f);
        })};
    }

  private:
    bool max_;
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<PoolLowering>(true));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<PoolLowering>(false));

class GlobalPoolLowering : public HalideLowering {
  public:
    explicit GlobalPoolLowering(bool max) : max_(max) {}
    std::string type() const override { return max_ ? "GlobalMaxPool" : "GlobalAveragePool"; }
    std::vector<Func> define(const Node& n, const Graph&,
                             const std::vector<HalideTensor>& in) const override {
        const HalideTensor& x = data_input(n, in, 0, "X");
        if (x.shape.size() < 3) throw node_error(n, "input has no spatial dimensions");
        std::vector<Halide::Range> ranges;
        for (size_t d = x.shape.size(); d-- > 2;)
            ranges.push_back({0, i32(x.shape[d])});
        Halide::RDom r(ranges);
        const int64_t size = numel(x.shape) / (x.shape[0] * x.shape[1]);
        return {make_func(max_ ? "global_max_pool" : "global_avg_pool", x.shape.size(),
                          [&](const Coords& c) {
                              Coords xc = {c[0], c[1]};
                              for (size_t d = 2; d < x.shape.size(); ++d)
                                  xc.push_back(r[static_cast<int>(x.shape.size() - 1 - d)]);
                              if (max_) return Halide::maximum(r, at(x, xc));
                              return Halide::sum(r, at(x, xc)) / static_cast<float>(size);
                          })};
    }

  private:
    bool max_;
};
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<GlobalPoolLowering>(true));
KILN_REGISTER_HALIDE_LOWERING(std::make_unique<GlobalPoolLowering>(false));

}  // namespace
}  // namespace kiln::graph
