// kiln/schedules/depthwise_conv2d.cpp — depthwise_conv2d's schedule space and schedules.
//
// Start with DepthwiseSpace::space(): the knobs, their constraints and the default config. Then
// schedule_nchw_x() and schedule_nchwc() turn a config into a Halide schedule for the Funcs of
// generators/depthwise_conv2d_algorithm.h.
//
// nchw_x  vectors run along the output width in the boundary's own layout, so stride-1 loads are
//         contiguous and nothing is transposed; a register tile of x_vectors x tile_h output
//         vectors shares each loaded input vector between the rows and taps that use it.
// nchwc   the input is repacked per output channel into channel blocks, vectors run over
//         channels, and the weights of a block are whole vectors; the price is a transpose on
//         the way in and on the way out of the NCHW boundary.
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/op.h"  // KILN_CONCAT, which KILN_REGISTER_SPACE uses
#include "generators/conv2d.h"
#include "generators/depthwise_conv2d_algorithm.h"
#include "schedules/halide_kernel.h"
#include "schedules/kernel.h"

namespace kiln {
namespace {

using Halide::TailStrategy;
using Halide::Var;

constexpr int kSpaceVersion = 1;

// Registers left for loaded input vectors and broadcast weights beside the accumulators.
constexpr int kSpareRegisters = 4;

// Fewer (batch, channel) pairs than this split the work by strips of rows in the default.
constexpr int64_t kMinParallelChannels = 8;

// Output rows per strip in the default: the strip's input copy stays within L1.
constexpr int64_t kStripRows = 16;

// Larger kernels loop over their taps in the default, keeping the code small.
constexpr int64_t kMaxUnrolledTaps = 25;

// Vector widths in f32 lanes worth trying on `t`: the natural width and two narrower ones.
std::vector<int64_t> vector_widths(const Target& t) {
    std::set<int64_t> v;
    for (int64_t lanes : {t.f32_lanes(), t.f32_lanes() / 2, t.f32_lanes() / 4})
        if (lanes >= 4) v.insert(lanes);
    if (v.empty()) v.insert(4);
    return {v.rbegin(), v.rend()};
}

std::vector<int64_t> at_most(std::vector<int64_t> values, int64_t limit) {
    std::vector<int64_t> out;
    for (int64_t v : values)
        if (v <= limit) out.push_back(v);
    if (out.empty()) out.push_back(1);
    return out;
}

std::vector<int64_t> merged(std::vector<int64_t> a, const std::vector<int64_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    return a;
}

// Whether vectors along the output width beat vectors over channels: they need a full natural
// vector of columns, or the shifted last vector recomputes most of a row.
bool prefers_width_vectors(const ConvShape& s, int64_t lanes) {
    return s.ow >= lanes;
}

bool is_nchw_x(const Config& c) {
    return c.s("layout") == "nchw_x";
}

// The loop of the output that one compute_at level names, after the schedule's splits.
struct OutputLoops {
    Var channel;    // one (batch, channel or channel block) per iteration
    Var strip;      // one strip of `rows` output rows per iteration
    Var tile_rows;  // one register tile's rows within the strip
    bool has_channel_level = true;
};

// Parallelizes the output's outer loops (channel, then strips inside it) by the config and
// returns the loop levels at which per-channel and per-strip producers can be computed.
// `ch` and `strip` are the output's channel (k or ko) and strip (ys) loops, `n` the batch.
OutputLoops parallelize(Halide::Func out, const Config& c, Var ch, Var strip, Var tile_rows,
                        Var n) {
    OutputLoops loops;
    loops.tile_rows = tile_rows;
    const int grain = static_cast<int>(c.i("grain"));
    Var fused("fused"), strip_ch("strip_ch"), task("task"), item("item");
    if (c.s("parallel") == "channels") {
        out.fuse(ch, n, fused);
        loops.strip = strip;
    } else {
        out.fuse(strip, ch, strip_ch).fuse(strip_ch, n, fused);
        loops.has_channel_level = false;
    }
    if (grain > 1) {
        out.split(fused, task, item, grain, TailStrategy::GuardWithIf).parallel(task);
    } else {
        out.parallel(fused);
        item = fused;
    }
    if (loops.has_channel_level) {
        loops.channel = item;
    } else {
        loops.strip = item;
    }
    return loops;
}

// Computes `f` (pure, dimension 0 innermost) at the config's `pad_at` level, vectorized along
// dimension 0.
void place_copy(Halide::Func f, const Config& c, const OutputLoops& loops, Halide::Func out,
                int vector) {
    const std::string& at = c.s("pad_at");
    std::vector<Halide::Var> args = f.args();
    if (at == "root") {
        f.compute_root();
        Var outer("outer");
        const size_t d = args.size();
        f.fuse(args[d - 2], args[d - 1], outer).parallel(outer);
    } else if (at == "channel") {
        f.compute_at(out, loops.channel);
    } else if (at == "strip") {
        f.compute_at(out, loops.strip);
    } else {
        f.store_at(out, loops.strip).compute_at(out, loops.tile_rows);
    }
    f.vectorize(args[0], vector, TailStrategy::RoundUp);
}

void schedule_nchw_x(DepthwiseAlgorithm& a, const Config& c) {
    const int vector = static_cast<int>(c.i("vector"));
    const int tx = static_cast<int>(c.i("x_vectors"));
    const int th = static_cast<int>(c.i("tile_h"));
    const int rows = static_cast<int>(c.i("rows"));
    Var xo("xo"), xi("xi"), xt("xt"), xv("xv"), ys("ys"), yr("yr"), yt("yt"), yi("yi");
    Halide::Func out = a.output;
    out.split(a.y, ys, yr, rows, TailStrategy::ShiftInwards)
        .split(yr, yt, yi, th, TailStrategy::ShiftInwards)
        .split(a.x, xo, xi, vector * tx, TailStrategy::ShiftInwards)
        .split(xi, xt, xv, vector)
        .reorder(xv, xt, yi, xo, yt, ys, a.k, a.n)
        .vectorize(xv)
        .unroll(xt)
        .unroll(yi);
    OutputLoops loops = parallelize(out, c, a.k, ys, yt, a.n);

    // The accumulators of one register tile: constant extents, fully unrolled, so they live in
    // registers and each input vector loaded for a tap serves every row that needs it.
    a.acc.compute_at(out, xo).vectorize(a.x, vector).unroll(a.x).unroll(a.y);
    Halide::Stage update = a.acc.update();
    update.reorder(a.x, a.y, a.taps.x, a.taps.y).vectorize(a.x, vector).unroll(a.x).unroll(a.y);
    if (c.i("unroll_taps")) update.unroll(a.taps.x).unroll(a.taps.y);

    if (a.copy.defined()) place_copy(a.copy, c, loops, out, vector);
}

void schedule_nchwc(DepthwiseAlgorithm& a, const Config& c) {
    const int vector = static_cast<int>(c.i("vector"));
    const int cb = a.channel_block;
    const int px = static_cast<int>(c.i("x_pixels"));
    const int th = static_cast<int>(c.i("tile_h"));
    const int rows = static_cast<int>(c.i("rows"));
    Var ko("ko_out"), ki("ki"), xo("xo"), xi("xi"), ys("ys"), yr("yr"), yt("yt"), yi("yi");
    Halide::Func out = a.output;
    OutputLoops loops;
    if (a.blocked_output) {
        // Blocked like the accumulator: each channel vector is stored as it is.
        Var cv("cv"), cu("cu");
        out.split(a.y, ys, yr, rows, TailStrategy::ShiftInwards)
            .split(yr, yt, yi, th, TailStrategy::ShiftInwards)
            .split(a.x, xo, xi, px, TailStrategy::ShiftInwards)
            .split(a.ci, cu, cv, vector)
            .reorder(cv, cu, xi, yi, xo, yt, ys, a.ko, a.n)
            .vectorize(cv)
            .unroll(cu)
            .unroll(xi)
            .unroll(yi);
        loops = parallelize(out, c, a.ko, ys, yt, a.n);
    } else {
        // The channel tail is guarded, not shifted: a shifted block would need k >= channel_block.
        out.split(a.k, ko, ki, cb, TailStrategy::GuardWithIf)
            .split(a.y, ys, yr, rows, TailStrategy::ShiftInwards)
            .split(yr, yt, yi, th, TailStrategy::ShiftInwards)
            .split(a.x, xo, xi, px, TailStrategy::ShiftInwards)
            .reorder(xi, ki, yi, xo, yt, ys, ko, a.n)
            .unroll(yi);
        if (px > 1) out.vectorize(xi);
        loops = parallelize(out, c, ko, ys, yt, a.n);
    }

    a.acc.compute_at(out, xo)
        .vectorize(a.ci, vector, TailStrategy::RoundUp)
        .unroll(a.ci)
        .unroll(a.x)
        .unroll(a.y);
    Halide::Stage update = a.acc.update();
    update.reorder(a.ci, a.x, a.y, a.taps.x, a.taps.y)
        .vectorize(a.ci, vector, TailStrategy::RoundUp)
        .unroll(a.ci)
        .unroll(a.x)
        .unroll(a.y);
    if (c.i("unroll_taps")) update.unroll(a.taps.x).unroll(a.taps.y);

    place_copy(a.copy, c, loops, out, vector);
    a.pack.compute_root();
}

class DepthwiseSpace final : public HalideSpaceDef {
  public:
    std::string op() const override { return "depthwise_conv2d"; }

    ScheduleSpace space(const Workload& w, const Target& t) const override {
        const ConvShape s = ConvShape::of(w);
        // nchw_x copies the input when it pads it or splits strided columns by phase.
        const bool copied = s.padded() || s.stride_w > 1;
        const int registers = t.vector_registers();
        const std::vector<int64_t> vectors = vector_widths(t);
        const int64_t narrowest = vectors.back();

        ScheduleSpace sp;
        sp.op = op();
        sp.version = kSpaceVersion;
        // A blocked workload computes in its own blocks (nchwc with channel_block = the block).
        const int64_t block = w.layout.output ? w.layout.output : w.layout.input;
        std::vector<std::string> layouts;
        // Vectors along the width need at least one whole vector of output columns.
        if (s.ow >= narrowest && w.layout.plain()) layouts.push_back("nchw_x");
        layouts.push_back("nchwc");
        sp.knobs.push_back({"layout",
                            "nchw_x: vectors along the output width in NCHW; nchwc: channel-"
                            "blocked copy of the input, vectors over channels",
                            name_domain(layouts), nullptr});
        sp.knobs.push_back({"vector",
                            "vector width in f32 lanes (along width for nchw_x, along channels "
                            "for nchwc)",
                            int_domain(vectors), nullptr});
        std::vector<int64_t> blocks;
        for (int64_t b : {t.f32_lanes() / 2, t.f32_lanes(), 2 * t.f32_lanes()})
            if (b >= narrowest && std::find(blocks.begin(), blocks.end(), b) == blocks.end())
                blocks.push_back(b);
        if (block) blocks = {block};
        sp.knobs.push_back({"channel_block", "channels per block of the nchwc layout",
                            int_domain(blocks), [](const Config& c) { return !is_nchw_x(c); }});
        sp.knobs.push_back({"x_vectors", "output-width register tile, in vectors (nchw_x)",
                            int_domain({1, 2, 3, 4, 6, 8}), is_nchw_x});
        sp.knobs.push_back(
            {"x_pixels", "output-width register tile, in pixels (nchwc)",
             int_domain(merged(at_most({1, 2, 3, 4, 6, 8}, s.ow), tile_candidates(s.ow, 8))),
             [](const Config& c) { return !is_nchw_x(c); }});
        sp.knobs.push_back({"tile_h", "output rows in one register tile",
                            int_domain(at_most({1, 2, 3, 4, 6, 8}, s.oh)), nullptr});
        // Strips that divide the height waste nothing on a shifted last strip.
        std::vector<int64_t> rows =
            merged(at_most({1, 2, 4, 8, 16, 32, 64}, s.oh), tile_candidates(s.oh, 64));
        if (rows.back() != s.oh) rows.push_back(s.oh);
        sp.knobs.push_back({"rows",
                            "output rows per strip: the unit of parallel work and of "
                            "the per-strip input copy",
                            int_domain(rows), nullptr});
        sp.knobs.push_back(
            {"pad_at",
             "where the padded (nchw_x) or channel-blocked (nchwc) input copy is computed: "
             "once at root, per channel, per strip of output rows, or row tile by row tile "
             "into a buffer kept for the strip (tile_rows: no halo rows copied twice)",
             name_domain({"root", "channel", "strip", "tile_rows"}),
             [copied](const Config& c) { return copied || !is_nchw_x(c); }});
        sp.knobs.push_back({"parallel",
                            "parallel loop: channels (strips inside a task) or strips of "
                            "every channel",
                            name_domain({"channels", "strips"}), nullptr});
        sp.knobs.push_back({"grain", "iterations of the parallel loop per task",
                            int_domain({1, 2, 4, 8}), nullptr});
        sp.knobs.push_back({"unroll_taps", "unroll the kernel taps (1) or loop over them (0)",
                            int_domain({0, 1}), nullptr});

        const int64_t ow = s.ow;
        sp.constraints.push_back([ow](const Config& c) -> std::optional<std::string> {
            if (!is_nchw_x(c)) return std::nullopt;
            int64_t width = c.i("vector") * c.i("x_vectors");
            if (width > ow)
                return "an x tile of " + std::to_string(width) +
                       " columns is wider than the output (" + std::to_string(ow) + ")";
            return std::nullopt;
        });
        const Blocking blocking = w.layout;
        sp.constraints.push_back([blocking](const Config& c) -> std::optional<std::string> {
            if (blocking.plain()) return std::nullopt;
            if (is_nchw_x(c))
                return "layout=nchw_x computes in NCHW, not in the workload's blocks " +
                       blocking.to_string();
            if (blocking.output && c.i("channel_block") != blocking.output)
                return "channel_block " + std::to_string(c.i("channel_block")) +
                       " is not the blocked output's " + std::to_string(blocking.output);
            return std::nullopt;
        });
        sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
            if (is_nchw_x(c) || c.i("channel_block") % c.i("vector") == 0) return std::nullopt;
            return "channel_block " + std::to_string(c.i("channel_block")) +
                   " is not a multiple of the vector width " + std::to_string(c.i("vector"));
        });
        sp.constraints.push_back([registers](const Config& c) -> std::optional<std::string> {
            int64_t per_pixel = is_nchw_x(c) ? c.i("x_vectors")
                                             : c.i("x_pixels") * c.i("channel_block") /
                                                   std::max<int64_t>(c.i("vector"), 1);
            int64_t accumulators = per_pixel * c.i("tile_h");
            if (accumulators + kSpareRegisters > registers)
                return std::to_string(accumulators) + " accumulator vectors do not fit in " +
                       std::to_string(registers) + " registers with " +
                       std::to_string(kSpareRegisters) + " to spare";
            return std::nullopt;
        });
        sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
            if (c.i("rows") >= c.i("tile_h")) return std::nullopt;
            return "a strip of " + std::to_string(c.i("rows")) +
                   " rows is smaller than the register tile of " + std::to_string(c.i("tile_h")) +
                   " rows";
        });
        // Row tiles shifted back inside a strip overlap the tile before them, and Halide 14's
        // sliding window over such a copy reads the row before the input's first (stride 2,
        // unpadded: depthwise_conv2d/n1c32h13w9/k32r1s1/st2p0d1 with rows 7, tile_h 3).
        sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
            if (!c.has("pad_at") || c.s("pad_at") != "tile_rows" ||
                c.i("rows") % c.i("tile_h") == 0)
                return std::nullopt;
            return "pad_at=tile_rows needs whole row tiles in a strip: rows " +
                   std::to_string(c.i("rows")) + " is not a multiple of tile_h " +
                   std::to_string(c.i("tile_h"));
        });
        sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
            if (!c.has("pad_at") || c.s("pad_at") != "channel" || c.s("parallel") == "channels")
                return std::nullopt;
            return "pad_at=channel needs parallel=channels: strip-parallel loops have no "
                   "per-channel level";
        });

        sp.default_config = default_config(s, t, layouts, copied, vectors, block);
        if (auto why = sp.check(sp.default_config))
            throw Error("config", "default config of " + w.key() + " is invalid: " + *why);
        return sp;
    }

    HalidePipelines pipelines(const Workload& w, const Config& c, const Target& t) const override {
        const bool x_layout = is_nchw_x(c);
        DepthwiseAlgorithm a =
            depthwise_conv2d_algorithm(w, x_layout ? DepthwiseLayout::nchw : DepthwiseLayout::nchwc,
                                       x_layout ? 1 : static_cast<int>(c.i("channel_block")));
        if (x_layout)
            schedule_nchw_x(a, c);
        else
            schedule_nchwc(a, c);

        HalidePipelines p;
        p.main = Halide::Pipeline(a.output);
        p.main_args.push_back({a.input, 0});
        if (x_layout) {
            p.main_args.push_back({a.weight, 1});
        } else {
            p.main_args.push_back({a.packed_weight, -1});
            p.pack = Halide::Pipeline(a.pack);
            p.pack_args.push_back({a.weight, 1});
            p.packed_extents = a.packed_extents;
        }
        bind_epilogue_args(p, w, a.bias, a.residual);
        return p;
    }

  private:
    // Hand rules measured on the MobileNetV2 depthwise layers (Zen 4, AVX-512, 2 threads); the
    // tuner improves on them per workload.
    static Config default_config(const ConvShape& s, const Target& t,
                                 const std::vector<std::string>& layouts, bool copied,
                                 const std::vector<int64_t>& vectors, int64_t block) {
        Config c;
        const int64_t lanes = vectors.front();
        c.set("vector", lanes);
        c.set("parallel", std::string(s.n * s.k >= kMinParallelChannels ? "channels" : "strips"));
        c.set("grain", int64_t{1});
        c.set("unroll_taps", int64_t{s.r * s.s <= kMaxUnrolledTaps});
        int64_t tile_h = 1;
        if (prefers_width_vectors(s, lanes) &&
            std::find(layouts.begin(), layouts.end(), "nchw_x") != layouts.end()) {
            // One vector wide and eight rows tall: mv2_dw_112 runs at 136 GFLOP/s against 112
            // for two vectors by four rows; the taps of eight rows share each loaded vector.
            c.set("layout", std::string("nchw_x"));
            c.set("x_vectors", int64_t{1});
            for (int64_t h : {8, 4, 2, 1})
                if (h <= s.oh && h + kSpareRegisters <= t.vector_registers()) {
                    tile_h = h;
                    break;
                }
            if (copied) c.set("pad_at", std::string("strip"));
        } else {
            // Narrow layers vectorize over channels: mv2_dw_14 runs at 60 GFLOP/s in nchwc
            // against 39 with half-width vectors along its 14 columns.
            c.set("layout", std::string("nchwc"));
            c.set("channel_block", block ? block : lanes);
            for (int64_t v : vectors)  // widest first: the widest that divides the block
                if (block % v == 0) {
                    c.set("vector", v);
                    break;
                }
            c.set("x_pixels", std::min<int64_t>(2, s.ow));
            tile_h = std::min<int64_t>(2, s.oh);
            c.set("pad_at", std::string("strip"));
        }
        c.set("tile_h", tile_h);
        // The tallest strip up to kStripRows that divides the height into whole register
        // tiles: a shifted last strip recomputes rows, a short one recopies its halo rows
        // (mv2_dw_14 in 2-row strips runs at 25 GFLOP/s, in one 14-row strip at 60).
        int64_t rows = s.oh <= 2 * kStripRows ? s.oh : kStripRows;
        for (int64_t r = std::max(kStripRows, tile_h); r >= tile_h; --r)
            if (r <= s.oh && r % tile_h == 0 && s.oh % r == 0) {
                rows = r;
                break;
            }
        c.set("rows", rows);
        return c;
    }
};

KILN_REGISTER_SPACE(DepthwiseSpace);

}  // namespace
}  // namespace kiln
