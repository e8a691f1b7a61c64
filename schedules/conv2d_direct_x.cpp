// kiln/schedules/conv2d_direct_x.cpp — knobs and schedule of conv2d's direct_x algorithm: direct
// convolution vectorized over output columns, for layers with few input channels (network
// stems). Its Funcs: generators/conv2d_direct_x.cpp.
//
// The loop nest, outermost first:
//   parallel over tasks of about dx_rows output rows (and the batch)
//     [dx_phase_at = band: pad and split the task's input rows by stride phase; slide: the
//      rows each output row or tile adds, interleaved with the tiles]
//     dx_tiles = row: output rows, then channel and column tiles in dx_loop_order
//     dx_tiles = image: channel tiles and tiles of vectors of the image seen as one long row
//       register tile: dx_tile_k channels x dx_tile_x vectors of dx_vector columns, summed over
//       (ci, ry, sx) with sx innermost (unrolled when dx_unroll = taps): per step, dx_tile_x
//       input vector loads and dx_tile_k weight broadcasts
//       epilogue, then full-vector NCHW stores
// Start with add_direct_x_knobs_impl() for the knobs and the default, then
// direct_x_conv2d_impl() for the schedule.
#include <algorithm>
#include <numeric>
#include <string>

#include "core/error.h"
#include "generators/conv2d_direct_x.h"
#include "schedules/conv2d_algorithms.h"

namespace kiln {

using namespace Halide;

namespace {

bool is_direct_x(const Config& c) {
    return c.s("algorithm") == "direct_x";
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// Vector registers a register tile of tile_k x tile_x needs: its accumulators, the tile_x input
// vectors of one tap (each feeds tile_k FMAs), two broadcast weights in flight and one spare
// (LLVM keeps the tile's row addresses in vectors). With 28 accumulators and 7 input vectors on
// AVX-512 the tile spilled every tap (r50_stem 2.2 ms against 1.5 ms for 3 x 7, interleaved);
// 4 x 6 spilled one accumulator (single thread, best of 11: 1.27 ms against 1.00 for 4 x 5).
int64_t registers_needed(int64_t tile_k, int64_t tile_x) {
    return tile_k * tile_x + tile_x + 3;
}

// Accumulators that keep both FMA pipes busy through the FMA latency, with slack.
constexpr int64_t kEnoughAccumulators = 16;

// Few input channels: the channel-blocked kernels waste most of a vector or of the reduction.
constexpr int64_t kMaxChannels = 8;

bool direct_x_applies_impl(const Workload& w) {
    ConvShape s = ConvShape::of(w);
    return s.groups == 1 && s.c <= kMaxChannels;
}

std::vector<int64_t> vector_domain(const Target& t) {
    std::vector<int64_t> v;
    for (int64_t l = 4; l <= t.f32_lanes(); l *= 2)
        v.push_back(l);
    return v;
}

void add_direct_x_knobs_impl(ScheduleSpace& sp, const Workload& w, const Target& t,
                             bool make_default) {
    ConvShape s = ConvShape::of(w);
    const int64_t registers = t.vector_registers();
    auto vec = vector_domain(t);
    std::vector<int64_t> tk, tx;
    for (int64_t v = 1; v <= std::min<int64_t>(s.k, registers - 4); ++v)
        tk.push_back(v);
    for (int64_t v = 1; v <= 8; ++v)
        tx.push_back(v);
    std::vector<int64_t> rows = {1, 2, 4, 8, 16};
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](int64_t r) { return r > s.oh; }),
               rows.end());

    sp.knobs.push_back({"dx_vector", "output columns per vector", int_domain(vec), is_direct_x});
    sp.knobs.push_back({"dx_tiles",
                        "row: register tiles within an output row; image: over the image seen "
                        "as one long row (rows of whole vectors only)",
                        name_domain({"row", "image"}), is_direct_x});
    sp.knobs.push_back(
        {"dx_tile_x", "column vectors per register tile", int_domain(tx), is_direct_x});
    sp.knobs.push_back({"dx_tile_k", "output channels per register tile (packed weight block)",
                        int_domain(tk), is_direct_x});
    sp.knobs.push_back({"dx_loop_order",
                        "tile loops, innermost first: k_x keeps the input vectors hot, x_k the "
                        "weights",
                        name_domain({"k_x", "x_k"}), is_direct_x});
    sp.knobs.push_back(
        {"dx_rows", "output rows per parallel task (a band)", int_domain(rows), is_direct_x});
    sp.knobs.push_back({"dx_phase_at",
                        "root: pad and split the input by stride phase once; band: per task "
                        "(band of rows), in cache; slide: per row or tile of a task, new rows "
                        "only",
                        name_domain({"root", "band", "slide"}), is_direct_x});
    sp.knobs.push_back({"dx_unroll",
                        "taps: unroll the kernel row (constant offsets); none: loop over it",
                        name_domain({"taps", "none"}), is_direct_x});
    const int64_t ow = s.ow, oh = s.oh;
    sp.constraints.push_back([=](const Config& c) -> std::optional<std::string> {
        if (!is_direct_x(c)) return std::nullopt;
        const int64_t v = c.i("dx_vector"), x = c.i("dx_tile_x");
        int64_t need = registers_needed(c.i("dx_tile_k"), x);
        if (need > registers)
            return "register tile needs " + std::to_string(need) +
                   " vector registers (accumulators, input vectors, broadcasts); the target has " +
                   std::to_string(registers);
        if (c.s("dx_tiles") == "row") {
            if ((x - 1) * v >= ow)
                return "column tile wider than the " + std::to_string(ow) +
                       " output columns by a whole vector";
        } else {
            if (ow % v != 0)
                return "image tiles need rows of whole vectors; " + std::to_string(ow) +
                       " columns are not a multiple of " + std::to_string(v);
            if (x > oh * ow / v)
                return "column tile larger than the image's " + std::to_string(oh * ow / v) +
                       " vectors";
        }
        return std::nullopt;
    });
    if (!make_default) return;

    // Default: full vectors, then the tiling and register tile that score best on what they
    // waste on columns and channels past the layer's edge, whether the accumulators hide the FMA
    // latency, and the share of FMAs among the instructions of a tap (tile_x loads and tile_k
    // broadcasts besides). Image tiles let a tile of 4 channels x 5 vectors cover the stems'
    // 112-column rows with no waste, where row tiles had to take 3 x 7 (k = 64 and 32 padded to
    // a multiple of 3).
    const int64_t v = vec.back();
    int64_t best_k = 1, best_x = 1;
    bool best_image = false;
    double best_score = -1;
    for (bool image : {false, true}) {
        if (image && ow % v != 0) continue;
        const int64_t columns = image ? oh * ow : ow;
        for (int64_t x : tx) {
            for (int64_t k : tk) {
                if (registers_needed(k, x) > registers) continue;
                if (image ? x > columns / v : (x - 1) * v >= ow) continue;
                double useful = double(columns) / double(ceil_div(columns, x * v) * x * v) *
                                double(s.k) / double(ceil_div(s.k, k) * k);
                double fma_share = double(x * k) / double(x * k + x + k);
                double score =
                    useful * double(std::min(x * k, kEnoughAccumulators)) * fma_share + 1e-6 * x;
                if (score > best_score + 1e-9) {
                    best_score = score;
                    best_k = k;
                    best_x = x;
                    best_image = image;
                }
            }
        }
    }
    Config& d = sp.default_config;
    d.set("dx_vector", v);
    d.set("dx_tiles", std::string(best_image ? "image" : "row"));
    d.set("dx_tile_x", best_x);
    d.set("dx_tile_k", best_k);
    d.set("dx_loop_order", std::string("k_x"));
    d.set("dx_rows", rows.back() >= 4 ? int64_t{4} : rows.back());
    d.set("dx_phase_at", std::string("band"));
    d.set("dx_unroll", std::string(s.s <= 11 ? "taps" : "none"));
}

HalidePipelines direct_x_conv2d_impl(const Workload& w, const Config& c, const Target&) {
    ConvShape s = ConvShape::of(w);
    const int vec = int(c.i("dx_vector")), tx = int(c.i("dx_tile_x"));
    const int tk = int(c.i("dx_tile_k")), rows = int(c.i("dx_rows"));
    const bool image = c.s("dx_tiles") == "image";
    // Columns of each phase that accumulator tiles read: whole tiles (a single one narrower
    // than the image is computed whole), plus the kernel's reach.
    const int64_t reach = (s.s - 1) * s.dil_w / s.stride_w;
    const int64_t columns = (image ? s.ow : std::max<int64_t>(s.ow, tx * vec)) + reach;
    Conv2dFuncs f = define_direct_x_conv2d(w, tk, image ? vec : 0, int(columns));

    // Output (a, b, k, n), (x, y, k, n) or (lane, v, k, n): parallel bands of about dx_rows
    // rows, then tiles of tk channels by tx vectors. Tiles that overhang the image shift inwards
    // (recomputing a few columns) where it is large enough, so every tile is full; otherwise
    // they are guarded.
    Var a = f.output.args()[0], b = f.output.args()[1], k = f.output.args()[2],
        n = f.output.args()[3];
    Var ao("ao"), ai("ai"), au("au"), av("av"), bo("bo"), bi("bi"), ko("ko"), ki("ki"),
        band("band");
    f.output.split(k, ko, ki, tk, TailStrategy::GuardWithIf);
    Var tiles, inner, outer;
    if (image) {
        // b counts vectors. A task takes whole rows, as near dx_rows as whole tiles allow, so
        // that tasks do not share input rows beyond the kernel's overlap.
        const int64_t per_row = s.ow / vec, vectors = s.oh * per_row;
        const int64_t unit = per_row / std::gcd(per_row, int64_t{tx});  // tiles of whole rows
        const int64_t unit_rows = unit * tx / per_row;
        const int per_task = int(unit * std::max<int64_t>(1, (rows + unit_rows / 2) / unit_rows));
        TailStrategy tail = vectors >= tx ? TailStrategy::ShiftInwards : TailStrategy::GuardWithIf;
        f.output.split(b, bo, au, tx, tail)
            .split(bo, band, tiles, per_task, TailStrategy::GuardWithIf);
        inner = c.s("dx_loop_order") == "k_x" ? ko : tiles;
        outer = c.s("dx_loop_order") == "k_x" ? tiles : ko;
        f.output.reorder(a, au, ki, inner, outer, band, n).vectorize(a);
    } else {
        const int width = tx * vec;
        TailStrategy x_tail =
            s.ow >= width ? TailStrategy::ShiftInwards : TailStrategy::GuardWithIf;
        TailStrategy y_tail = s.oh >= rows ? TailStrategy::ShiftInwards : TailStrategy::GuardWithIf;
        f.output.split(a, ao, ai, width, x_tail).split(b, band, bi, rows, y_tail);
        inner = c.s("dx_loop_order") == "k_x" ? ko : ao;
        outer = c.s("dx_loop_order") == "k_x" ? ao : ko;
        f.output.reorder(ai, ki, inner, outer, bi, band, n).split(ai, au, av, vec).vectorize(av);
    }
    Var task("task");
    f.output.fuse(band, n, task).parallel(task).unroll(au).unroll(ki);

    // The accumulator tile lives in registers. A channel tile is one packed block; bounds
    // inference cannot prove that k / tk is constant over it, so it is said explicitly.
    Var ca = f.conv.args()[0], cb = f.conv.args()[1], ck = f.conv.args()[2], ckb = f.conv.args()[3];
    Var cau("cau"), cav("cav");
    f.conv.compute_at(f.output, inner).bound_extent(ckb, 1).bound_extent(ck, tk);
    Stage upd = f.conv.update();
    if (image) {
        f.conv.bound_extent(cb, tx);
        for (Stage st : {Stage(f.conv), upd})
            st.vectorize(ca).unroll(cb).unroll(ck);
        upd.reorder(ca, cb, ck, f.rd.x, f.rd.y, f.rd.z);
    } else {
        f.conv.bound_extent(ca, tx * vec);
        for (Stage st : {Stage(f.conv), upd})
            st.split(ca, cau, cav, vec).vectorize(cav).unroll(cau).unroll(ck);
        upd.reorder(cav, cau, ck, f.rd.x, f.rd.y, f.rd.z);
    }
    if (c.s("dx_unroll") == "taps") upd.unroll(f.rd.x);

    // The phase-split input: rows padded to whole vectors so that the loads of taps at an even
    // column offset are aligned; zero fill and copies vectorized along its columns.
    Var pxp = f.padded.args()[0], py = f.padded.args()[2], pc = f.padded.args()[3];
    const bool root = c.s("dx_phase_at") == "root";
    Var pyc("pyc");
    if (root) {
        f.padded.compute_root().fuse(py, pc, pyc).parallel(pyc);
    } else if (c.s("dx_phase_at") == "slide" && (!image || c.s("dx_loop_order") == "k_x")) {
        f.padded.store_at(f.output, task).compute_at(f.output, image ? tiles : bi);
    } else {
        f.padded.compute_at(f.output, task);
    }
    f.padded.align_storage(pxp, vec).vectorize(pxp, vec);
    for (int i = 0; i < f.padded.num_update_definitions(); ++i) {
        RVar rx = f.padded.rvars(i)[0], rxo("rxo"), rxi("rxi");
        Stage copy = f.padded.update(i);
        copy.split(rx, rxo, rxi, vec, TailStrategy::GuardWithIf).vectorize(rxi);
        if (root) copy.fuse(py, pc, pyc).parallel(pyc);
    }

    // Packing runs once at prepare(): any reasonable schedule will do.
    f.pack.compute_root().parallel(f.pack.args().back());

    HalidePipelines p = conv_pipelines(w, f);
    p.packed_extents = {tk, int(s.s), int(s.r), int(s.c), int(ceil_div(s.k, tk))};
    if (image) {
        const std::vector<int> view = {vec, int(s.oh * (s.ow / vec)), int(s.k), int(s.n)};
        p.output_view = view;
        p.input_views.resize(w.inputs().size());
        if (w.epilogue.residual) p.input_views.back() = view;
    }
    return p;
}

// The default where the channels are too few for channel blocking (at most 4) and a row fills a
// vector, above Winograd too. Interleaved, two threads, on a loaded host: r50_stem 2.05 ->
// 1.57 ms against direct; a VGG-style first layer (c=3, 224x224, 3x3 stride 1) 2.95 -> 1.23 ms
// against direct and 5.1 ms with winograd4; c=1 5x5 on 64x64 0.058 -> 0.023 ms. With 5 to 8
// channels direct and Winograd were as fast or faster on some layers: tuning decides there.
int direct_x_priority(const Workload& w, const Target& t) {
    ConvShape s = ConvShape::of(w);
    return s.c <= 4 && s.ow >= t.f32_lanes() ? 25 : 1;
}

}  // namespace

bool direct_x_applies(const Workload& w) {
    return direct_x_applies_impl(w);
}
void add_direct_x_knobs(ScheduleSpace& sp, const Workload& w, const Target& t, bool d) {
    add_direct_x_knobs_impl(sp, w, t, d);
}
HalidePipelines direct_x_conv2d(const Workload& w, const Config& c, const Target& t) {
    return direct_x_conv2d_impl(w, c, t);
}

static Conv2dAlgorithmRegistration direct_x_registration({
    "direct_x",
    "direct_x",
    direct_x_applies,
    add_direct_x_knobs,
    direct_x_conv2d,
    direct_x_priority,
});

}  // namespace kiln
