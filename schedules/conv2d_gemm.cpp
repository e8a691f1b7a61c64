// kiln/schedules/conv2d_gemm.cpp — conv2d's `gemm` algorithm: a 1x1 layer scheduled as the
// blocked GEMM of schedules/gemm.h (its Funcs: generators/conv2d_gemm.cpp).
//
// The GEMM's knobs are the dense op's, named with an `mm_` prefix (mm_mr, mm_nr, mm_kc, ...)
// and active only under this algorithm. The weight needs no packing: its rows are broadcast in
// place. The input is copied into pixel panels in every run, once per image.
#include <algorithm>

#include "generators/conv2d_gemm.h"
#include "schedules/conv2d_algorithms.h"
#include "schedules/gemm.h"

namespace kiln {

namespace {

const char* const kPrefix = "mm_";

bool is_gemm(const Config& c) {
    return c.s("algorithm") == "gemm";
}

void add_gemm_conv_knobs(ScheduleSpace& sp, const Workload& w, const Target& t, bool make_default) {
    add_gemm_knobs(sp, conv2d_gemm_shape(ConvShape::of(w)), t, {kPrefix, is_gemm, make_default});
}

HalidePipelines gemm_conv2d(const Workload& w, const Config& c, const Target& t) {
    ConvShape s = ConvShape::of(w);
    const GemmKnobs g = GemmKnobs::of(c, kPrefix);
    Conv2dGemmFuncs f = define_gemm_conv2d(w, g.nr, g.kc);
    schedule_gemm(f.gemm, f.shape, g, t, f.panels);
    if (!f.flat_input) {
        // The strided pixels first, row by row: a row's loads are strided vectors and its
        // stores dense, where packing them into panels directly would gather every lane.
        Halide::Var j = f.pixels.args()[0], c = f.pixels.args()[1], y("y"), x("x");
        f.pixels.compute_at(f.panels, Halide::Var::outermost())
            .split(j, y, x, int(s.ow))
            .vectorize(x, std::min(int(s.ow), t.f32_lanes()), Halide::TailStrategy::ShiftInwards)
            .parallel(c);
    }

    HalidePipelines p;
    p.main = Halide::Pipeline(f.gemm.out);
    p.main_args = {{f.input, 0}, {f.weight, 1}};
    int next = 2;
    if (w.epilogue.bias) p.main_args.push_back({f.bias, next++});
    if (w.epilogue.residual) p.main_args.push_back({f.residual, next++});

    const int pixels = int(s.oh * s.ow);
    p.output_view = {pixels, int(s.k)};
    if (f.shape.batch > 0) p.output_view.push_back(int(s.n));
    p.input_views.resize(w.inputs().size());
    if (f.flat_input) p.input_views[0] = {int(s.h * s.w), int(s.c), int(s.n)};
    p.input_views[1] = {int(s.c), int(s.k)};
    if (w.epilogue.residual) p.input_views.back() = p.output_view;
    // Every extent is the workload's: the tile loops' edge tests fold away.
    constrain_shapes(p, w);
    return p;
}

}  // namespace

static Conv2dAlgorithmRegistration gemm_registration({
    "gemm",
    "gemm",
    [](const Workload& w) { return conv2d_gemm_applies(ConvShape::of(w)); },
    add_gemm_conv_knobs,
    gemm_conv2d,
    // The default where it beat direct and im2col's defaults on ResNet-50's 1x1 layers
    // (interleaved, medians of 11 rounds; GFLOP/s): many channels on 28x28 images and larger
    // (r50_l1_1x1_256 336 -> 401, r50_l2_down 330 -> 356, r50_l1_reduce 322 -> 366), or an
    // expansion on 14x14 (r50_l3_expand 337 -> 366). It lost on 7x7 images, on the 14x14
    // reduction (r50_l3_reduce 411 -> 322) and on MobileNetV2's few-channel layers, where
    // the copy into panels is a larger share of the work.
    [](const Workload& w, const Target&) {
        ConvShape s = ConvShape::of(w);
        const int64_t pixels = s.oh * s.ow;
        bool wins =
            s.c >= 64 && s.k >= 64 && (pixels >= 28 * 28 || (pixels >= 14 * 14 && s.k >= 4 * s.c));
        return wins ? 13 : 1;
    },
});

}  // namespace kiln
