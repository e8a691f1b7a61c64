// kiln/schedules/conv2d_gemm.cpp — conv2d's `gemm` algorithm: a 1x1 layer scheduled as the
// blocked GEMM of schedules/gemm.h (its Funcs: generators/conv2d_gemm.cpp).
//
// The GEMM's knobs are the dense op's, named with an `mm_` prefix (mm_mr, mm_nr, mm_kc, ...)
// and active only under this algorithm. The weight needs no packing: its rows are broadcast in
// place. The input is copied into pixel panels in every run, once per image, or at stride 1
// read where it is (`mm_panels`).
#include <algorithm>
#include <optional>
#include <string>

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
    ConvShape s = ConvShape::of(w);
    add_gemm_knobs(sp, conv2d_gemm_shape(s), t, {kPrefix, is_gemm, make_default});
    if (s.stride_h != 1 || s.stride_w != 1) return;
    // Only at stride 1 can the panels be the input itself.
    sp.knobs.push_back({"mm_panels",
                        "copy: pack the input into panels in every run; in_place: read the "
                        "input where it is (nr must divide the pixels)",
                        name_domain({"copy", "in_place"}), is_gemm});
    sp.constraints.push_back([=](const Config& c) -> std::optional<std::string> {
        if (!is_gemm(c) || c.s("mm_panels") != "in_place") return std::nullopt;
        if (conv2d_gemm_in_place_ok(s, int(c.i("mm_nr")))) return std::nullopt;
        return "in-place panels need mm_nr (" + std::to_string(c.i("mm_nr")) + ") to divide the " +
               std::to_string(s.oh * s.ow) + " pixels";
    });
    // In place when the reduction is short: the register tile then walks few input rows per
    // panel (r50_l1_1x1_64, c = 64, interleaved medians: copy 0.076 ms, in place 0.063), while
    // a long one (r50_l1_reduce, c = 256: 0.286 against 0.332) gains from contiguous panels.
    if (make_default) {
        bool in_place = s.c <= 64 && conv2d_gemm_in_place_ok(s, int(sp.default_config.i("mm_nr")));
        sp.default_config.set("mm_panels", std::string(in_place ? "in_place" : "copy"));
    }
}

HalidePipelines gemm_conv2d(const Workload& w, const Config& c, const Target& t) {
    ConvShape s = ConvShape::of(w);
    const GemmKnobs g = GemmKnobs::of(c, kPrefix);
    const bool in_place = c.has("mm_panels") && c.s("mm_panels") == "in_place";
    Conv2dGemmFuncs f = define_gemm_conv2d(w, g.nr, g.kc, in_place);
    schedule_gemm(f.gemm, f.shape, g, t, in_place ? Halide::Func() : f.panels);
    if (!f.flat_input) {
        // The strided pixels first, row by row: a row's loads are strided vectors and its
        // stores dense, where packing them into panels directly would gather every lane.
        Halide::Var j = f.pixels.args()[0], channel = f.pixels.args()[1], y("y"), x("x");
        f.pixels.compute_at(f.panels, Halide::Var::outermost())
            .split(j, y, x, int(s.ow))
            .vectorize(x, std::min(int(s.ow), t.f32_lanes()), Halide::TailStrategy::ShiftInwards)
            .parallel(channel);
    }

    HalidePipelines p;
    p.main = Halide::Pipeline(f.gemm.out);
    p.main_args = {{f.input, 0}, {f.weight, 1}};
    bind_epilogue_args(p, w, f.bias, f.residual);

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
