// kiln/schedules/conv2d_winograd.cpp — Winograd conv2d: its knobs, defaults and schedule.
//
// add_winograd_knobs() declares the `wino_*` knobs (active under algorithm winograd2 and
// winograd4) and the defaults; winograd_conv2d() turns a config into pipelines. The loop nest:
//
//   pack (at prepare time): U = G g G^T, blocked by wino_kb output channels
//   output: [tile groups of wino_rows tile rows] x [channel groups of wino_kg blocks]
//     (wino_order says which is outer; the outer one is parallel)
//     V = B^T d B at the tile group or at root (wino_v_at), vectorized over input channels or
//       tiles (wino_v_vector)
//     M = U V at the inner group: for each of the alpha^2 positions, channel block (wino_cb),
//       then kb x pt register blocks in wino_gemm_order, accumulators in registers
//     Y = A^T M A vectorized over output channels, then the epilogue and the store: rows of
//       pixels for NCHW, Y's channel vectors as they are for a blocked output
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "generators/conv2d.h"
#include "generators/conv2d_winograd.h"
#include "schedules/conv2d_algorithms.h"

namespace kiln {

namespace {

using Halide::TailStrategy;
using Halide::Var;
using Halide::VarOrRVar;

bool is_winograd(const Config& c) {
    const std::string& a = c.s("algorithm");
    return a == "winograd2" || a == "winograd4";
}

int tile_size(const Config& c) {
    return c.s("algorithm") == "winograd4" ? 4 : 2;
}

// Accumulators, the kb / lanes weight vectors and one broadcast tile value must all fit.
int registers_needed(int64_t kb, int64_t pt, int lanes) {
    int64_t vectors = kb / lanes;
    return static_cast<int>(vectors * pt + vectors + 1);
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// The parallel loop should have enough iterations for every core to get a few.
int64_t parallel_tasks_wanted(const Target& t) {
    return 2 * std::max(2, t.fingerprint.cores > 0 ? t.fingerprint.cores : 2);
}

struct Defaults {
    int64_t kb = 0, pt = 0, cb = 0, kg = 0, rows = 0, prefetch = 0;
    std::string v_at, v_vector, order, gemm_order;
};

// Hand rules for the untuned kernel, written against the ResNet-50 3x3 stride-1 layers; the
// tuner replaces them with measured choices.
Defaults choose_defaults(const ConvShape& s, const Target& t, int m,
                         const std::vector<int64_t>& cb_domain,
                         const std::vector<int64_t>& pt_domain,
                         const std::vector<int64_t>& rows_domain) {
    const int lanes = t.f32_lanes();
    const int regs = t.vector_registers();
    const int64_t tiles_w = ceil_div(s.ow, m), tiles_h = ceil_div(s.oh, m);
    const int64_t wanted = parallel_tasks_wanted(t);
    Defaults d;
    d.gemm_order = "kp";
    // Dense channel vectors from a channels-innermost padded input instead of gathers across
    // tiles: r50_l1 F(4x4) 431 -> 592 GFLOP/s, the same on r50_l3 and r50_l4.
    d.v_vector = "channels";
    // No channel blocking: with all of C in one block M needs no extra pass per block.
    // Measured on Zen 4: r50_l4 F(2x2) 153 -> 229 GFLOP/s and r50_l3 F(4x4) 286 -> 417 going
    // from 128-channel blocks to C.
    d.cb = cb_domain.back();

    // Tile groups of at least 8 tiles fill a register block; when that leaves too few groups to
    // share among the cores, parallelize over output channels instead, with V at root.
    int64_t min_rows = 1;
    while (min_rows < tiles_h && min_rows * tiles_w < 8)
        ++min_rows;
    const bool tiles_outer = s.n * ceil_div(tiles_h, min_rows) >= wanted;
    d.order = tiles_outer ? "tiles" : "channels";
    d.v_at = tiles_outer ? "group" : "root";

    // Register block and group rows: waste as little of the rounded-up tile and channel loops as
    // possible with at least 16 accumulators (the FMA latency times its throughput, with room),
    // then the most accumulators, then two weight vectors. On Zen 4 (r50_l3 F(4x4), best of
    // 30 runs) kb x pt = 16x16: 356, 32x8: 450, 64x4: 461 GFLOP/s; r50_l4 F(2x2): 184, 213, 208.
    std::tuple<double, int64_t, int64_t> best{-1.0, 0, 0};
    const int64_t max_vectors = std::min<int64_t>(4, ceil_div(s.k, lanes));
    for (int64_t rows : rows_domain) {
        if (tiles_outer && s.n * ceil_div(tiles_h, rows) < wanted) continue;
        if (!tiles_outer && rows < tiles_h && rows != rows_domain.back()) continue;
        const int64_t group = std::min(rows, tiles_h) * tiles_w;
        for (int64_t vectors = 1; vectors <= max_vectors; ++vectors) {
            const int64_t kb = vectors * lanes;
            for (int64_t pt : pt_domain) {
                if (registers_needed(kb, pt, lanes) > regs) continue;
                double used = double(group) / double(ceil_div(group, pt) * pt) * double(s.k) /
                              double(ceil_div(s.k, kb) * kb);
                double score = used * std::min<double>(vectors * pt, 16) / 16.0;
                std::tuple<double, int64_t, int64_t> key{std::round(score * 1e6) / 1e6,
                                                         vectors * pt, -std::abs(vectors - 2)};
                if (key > best) {
                    best = key;
                    d.kb = kb;
                    d.pt = pt;
                    d.rows = rows;
                }
            }
        }
    }
    // Few tiles and a U panel too large for L1 (r50_l4: 16 tiles, C = 512): the two tile blocks
    // of a kb = 2 vectors block would each stream the 64 KiB panel, the first from L3 and the
    // second from L2, and the first stalls on L3. One vector of output channels against every
    // tile reads U exactly once, its broadcasts come from one cache line when V is stored
    // tiles-innermost, and a prefetch far ahead hides L3's latency.
    const int64_t tiles = tiles_w * tiles_h;
    const int64_t l1 = t.fingerprint.l1d_bytes > 0 ? t.fingerprint.l1d_bytes : 32 * 1024;
    const int64_t all_tiles_pt =
        *std::min_element(pt_domain.begin(), pt_domain.end(), [&](int64_t a, int64_t b) {
            return (a >= tiles ? a : 1 << 20) < (b >= tiles ? b : 1 << 20);
        });
    if (!tiles_outer && all_tiles_pt >= tiles && tiles >= 8 &&
        registers_needed(lanes, all_tiles_pt, lanes) <= regs && 2 * lanes * s.c * 4 > l1) {
        d.kb = lanes;
        d.pt = all_tiles_pt;
        d.v_vector = "tiles";
        d.prefetch = 128;
    }
    const int64_t blocks = ceil_div(s.k, d.kb);
    d.kg = 1;
    if (tiles_outer) {
        // All output channels of a group at once (up to 8 blocks): V is read from cache.
        while (d.kg < 8 && d.kg < blocks)
            d.kg *= 2;
    } else {
        while (d.kg < 32 && ceil_div(blocks, d.kg * 2) >= wanted)
            d.kg *= 2;
    }
    return d;
}

}  // namespace

bool winograd_applies(const Workload& w) {
    if (w.op != "conv2d" || w.dtype != DType::f32) return false;
    ConvShape s = ConvShape::of(w);
    return s.r == 3 && s.s == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dil_h == 1 &&
           s.dil_w == 1 && s.groups == 1;
}

void add_winograd_knobs(ScheduleSpace& space, const Workload& w, const Target& t,
                        bool make_default) {
    ConvShape s = ConvShape::of(w);
    const int lanes = t.f32_lanes();
    const int regs = t.vector_registers();

    std::vector<int64_t> kb_domain;
    for (int64_t v = 1; v <= 4; ++v)
        if (v == 1 || (v - 1) * lanes < s.k) kb_domain.push_back(v * lanes);
    std::vector<int64_t> pt_domain = {1, 2, 3, 4, 6, 7, 8, 12, 14, 16};
    std::vector<int64_t> cb_domain;
    for (int64_t v : tile_candidates(s.c, 512))
        if (v >= 16 || v == s.c) cb_domain.push_back(v);
    if (cb_domain.empty()) cb_domain.push_back(std::min<int64_t>(s.c, 512));
    std::vector<int64_t> kg_domain;
    for (int64_t v : {1, 2, 4, 8, 16, 32})
        if (v == 1 || (v / 2) * lanes < s.k) kg_domain.push_back(v);
    std::vector<int64_t> rows_domain;
    for (int64_t v : {1, 2, 3, 4, 6, 8, 16})
        if (v == 1 || v <= ceil_div(s.oh, 2)) rows_domain.push_back(v);

    auto knob = [&](std::string name, std::string help, std::vector<KnobValue> domain) {
        space.knobs.push_back({std::move(name), std::move(help), std::move(domain), is_winograd});
    };
    knob("wino_kb", "output channels per GEMM register block (a multiple of the vector width)",
         int_domain(kb_domain));
    knob("wino_pt", "tiles per GEMM register block (unrolled)", int_domain(pt_domain));
    knob("wino_cb", "input channels per GEMM cache block", int_domain(cb_domain));
    knob("wino_kg", "register blocks of output channels per channel group", int_domain(kg_domain));
    knob("wino_rows", "tile rows per tile group", int_domain(rows_domain));
    knob("wino_v_at", "where the input transform is computed: per tile group or once at root",
         name_domain({"group", "root"}));
    knob("wino_v_vector", "what the input transform is vectorized over: tiles or channels",
         name_domain({"tiles", "channels"}));
    knob("wino_order", "outer, parallel loop: tile groups or channel groups",
         name_domain({"tiles", "channels"}));
    knob("wino_gemm_order",
         "register-block loop order in the GEMM: kp (channel blocks outer) "
         "or pk (tile blocks outer)",
         name_domain({"kp", "pk"}));
    knob("wino_prefetch", "GEMM channel iterations ahead to prefetch U (0: none)",
         int_domain({0, 8, 16, 32, 64, 128, 256}));

    space.constraints.push_back([lanes, regs](const Config& c) -> std::optional<std::string> {
        if (!is_winograd(c)) return std::nullopt;
        int need = registers_needed(c.i("wino_kb"), c.i("wino_pt"), lanes);
        if (need > regs)
            return "wino_kb=" + std::to_string(c.i("wino_kb")) +
                   " x wino_pt=" + std::to_string(c.i("wino_pt")) + " needs " +
                   std::to_string(need) + " vector registers, the target has " +
                   std::to_string(regs);
        return std::nullopt;
    });
    if (const int64_t bo = w.layout.output) {
        space.constraints.push_back([bo](const Config& c) -> std::optional<std::string> {
            if (!is_winograd(c) || c.i("wino_kb") % bo == 0) return std::nullopt;
            return "wino_kb " + std::to_string(c.i("wino_kb")) +
                   " is not a multiple of the blocked output's " + std::to_string(bo);
        });
    }
    const int64_t k = s.k;
    space.constraints.push_back([k](const Config& c) -> std::optional<std::string> {
        if (!is_winograd(c)) return std::nullopt;
        bool many_groups = c.i("wino_kb") * c.i("wino_kg") < k;
        if (c.s("wino_v_at") == "group" && c.s("wino_order") == "channels" && many_groups)
            return "wino_v_at=group under wino_order=channels would redo the input transform "
                   "for every channel group";
        return std::nullopt;
    });

    if (!make_default) return;
    // The caller makes the default algorithm winograd2 or winograd4 before asking for defaults.
    const Config& chosen = space.default_config;
    const int m = chosen.has("algorithm") && chosen.s("algorithm") == "winograd2" ? 2 : 4;
    Defaults d = choose_defaults(s, t, m, cb_domain, pt_domain, rows_domain);
    if (const int64_t bo = w.layout.output; bo && d.kb % bo != 0) {
        // A block wider than the register block: whole blocks, with fewer tiles to fit.
        d.kb = ceil_div(d.kb, bo) * bo;
        while (d.pt > 1 && registers_needed(d.kb, d.pt, lanes) > regs)
            d.pt = *std::prev(std::find(pt_domain.begin(), pt_domain.end(), d.pt));
    }
    Config& c = space.default_config;
    c.set("wino_kb", d.kb);
    c.set("wino_pt", d.pt);
    c.set("wino_cb", d.cb);
    c.set("wino_kg", d.kg);
    c.set("wino_rows", d.rows);
    c.set("wino_v_at", d.v_at);
    c.set("wino_v_vector", d.v_vector);
    c.set("wino_order", d.order);
    c.set("wino_gemm_order", d.gemm_order);
    c.set("wino_prefetch", d.prefetch);
}

HalidePipelines winograd_conv2d(const Workload& w, const Config& cfg, const Target& t) {
    if (!winograd_applies(w)) throw Error("algorithm", "Winograd does not apply to " + w.key());
    if (!is_winograd(cfg)) throw Error("knob algorithm", "is not winograd2 or winograd4");
    ConvShape s = ConvShape::of(w);
    const int lanes = t.f32_lanes();
    WinogradLayout layout;
    layout.m = tile_size(cfg);
    layout.kb = static_cast<int>(cfg.i("wino_kb"));
    layout.cb = static_cast<int>(cfg.i("wino_cb"));
    if (layout.kb % lanes != 0)
        throw Error("knob wino_kb",
                    "must be a multiple of the vector width " + std::to_string(lanes));
    const int pt = static_cast<int>(cfg.i("wino_pt"));
    const int kg = static_cast<int>(cfg.i("wino_kg"));
    const int rows = static_cast<int>(cfg.i("wino_rows"));
    const bool tiles_outer = cfg.s("wino_order") == "tiles";
    const bool v_at_group = cfg.s("wino_v_at") == "group";
    const bool kp = cfg.s("wino_gemm_order") == "kp";
    const bool v_over_channels = cfg.s("wino_v_vector") == "channels";
    const int prefetch = static_cast<int>(cfg.i("wino_prefetch"));

    WinogradFuncs f = winograd_conv2d_funcs(w, layout);
    const int m = f.m;

    // Pack: one vector of output channels per store, all alpha^2 positions unrolled.
    f.pack.reorder(f.ki, f.ei, f.ej, f.c, f.ko)
        .vectorize(f.ki, lanes)
        .unroll(f.ei)
        .unroll(f.ej)
        .parallel(f.ko);

    // Output: tile groups x channel groups. NCHW: each row of a tile group stored as vectors
    // along x. Blocked: each pixel stored as the vectors of output channels Y holds.
    Var tg("tg"), yi("yi"), kgo("kgo"), kk("kk"), xo("xo"), xv("xv"), tb("tb");
    Halide::Func& out = f.output;
    const int bo = static_cast<int>(w.layout.output);
    out.split(f.y, tg, yi, rows * m, TailStrategy::GuardWithIf)
        .split(f.k, kgo, kk, layout.kb * kg / (bo ? bo : 1), TailStrategy::GuardWithIf);
    std::vector<VarOrRVar> inner;
    if (bo) {
        out.vectorize(f.o, std::min(bo, lanes));
        inner = {f.o, f.x};
    } else {
        out.split(f.x, xo, xv, lanes,
                  s.ow >= lanes ? TailStrategy::ShiftInwards : TailStrategy::GuardWithIf)
            .vectorize(xv);
        inner = {xv, xo};
    }
    if (tiles_outer) {
        inner.insert(inner.end(), {yi, kk, kgo, tg, f.n});
        out.reorder(inner).fuse(tg, f.n, tb).parallel(tb);
    } else {
        inner.insert(inner.end(), {yi, kk, tg, f.n, kgo});
        out.reorder(inner).fuse(tg, f.n, tb).parallel(kgo);
    }
    const Var& inner_group = tiles_outer ? kgo : tb;

    // Input transform, vectorized over tiles (gathering from the padded input) or over input
    // channels (the padded input stored channels-innermost, so its loads are dense vectors).
    Var pv("pv"), pvo("pvo");
    if (v_over_channels) {
        Var cv("cv"), cvo("cvo");
        f.in_pad.reorder_storage(f.c, f.x, f.y, f.n)
            .reorder(f.c, f.x, f.y, f.n)
            .vectorize(f.c, lanes, TailStrategy::RoundUp);
        f.v.reorder_storage(f.c, f.p, f.ei, f.ej, f.n)
            .split(f.c, cvo, cv, lanes, TailStrategy::RoundUp)
            .reorder(cv, f.ei, f.ej, f.p, cvo, f.n)
            .vectorize(cv)
            .unroll(f.ei)
            .unroll(f.ej);
        f.v_row.compute_at(f.v, f.p).vectorize(f.c).unroll(f.ei).unroll(f.j);
    } else {
        f.in_pad.vectorize(f.x, lanes);
        f.v.split(f.p, pvo, pv, lanes, TailStrategy::RoundUp)
            .reorder(pv, f.ei, f.ej, f.c, pvo, f.n)
            .vectorize(pv)
            .unroll(f.ei)
            .unroll(f.ej);
        f.v_row.compute_at(f.v, f.c).vectorize(f.p).unroll(f.ei).unroll(f.j);
    }
    if (v_at_group) {
        f.v.compute_at(out, tb);
        f.in_pad.compute_at(out, tb);
    } else if (v_over_channels) {
        // Parallel over the outermost loop that is not the vector.
        f.v.compute_root().parallel(f.p);
        f.in_pad.compute_root().parallel(f.y);
    } else {
        // A few chunks of channels, each padding its own input channels: one parallel loop of a
        // few tasks instead of two of C tasks each, whose locking cost r50_l4 4% of its time.
        Var vco("vco");
        const int chunk = static_cast<int>(ceil_div(f.c_padded, parallel_tasks_wanted(t)));
        f.v.compute_root()
            .split(f.c, vco, f.c, chunk, TailStrategy::GuardWithIf)
            .reorder(pv, f.ei, f.ej, f.c, pvo, vco, f.n)
            .parallel(vco);
        f.in_pad.compute_at(f.v, vco);
    }

    // GEMM: for each position and channel block, kb x pt register blocks over cb channels.
    Var kl("kl"), kv("kv"), pi("pi"), po("po");
    f.mm.compute_at(out, inner_group);
    Halide::Stage gemm = f.c_blocks == 1 ? Halide::Stage(f.mm) : f.mm.update();
    if (f.c_blocks > 1) f.mm.vectorize(f.ki, lanes);
    gemm.split(f.ki, kv, kl, lanes).split(f.p, po, pi, pt, TailStrategy::RoundUp);
    std::vector<VarOrRVar> order = {kl, kv, pi};
    if (kp) {
        order.insert(order.end(), {po, f.ko});
    } else {
        order.insert(order.end(), {f.ko, po});
    }
    if (f.c_blocks > 1) order.push_back(f.rco.x);
    order.insert(order.end(), {f.ei, f.ej, f.n});
    gemm.reorder(order).vectorize(kl).unroll(kv).unroll(pi);
    f.partial.compute_at(f.mm, kp ? po : f.ko);
    f.partial.split(f.ki, kv, kl, lanes).vectorize(kl).unroll(kv).unroll(f.p);
    f.partial.update()
        .split(f.ki, kv, kl, lanes)
        .reorder(kl, kv, f.p, f.rc.x, f.ko, f.ei, f.ej, f.n, f.co)
        .vectorize(kl)
        .unroll(kv)
        .unroll(f.p);
    if (prefetch > 0)
        f.partial.update().prefetch(f.packed, f.rc.x, f.rc.x, prefetch,
                                    Halide::PrefetchBoundStrategy::NonFaulting);

    // Output transform: a vector of output channels at a time, the m x m results unrolled.
    f.y_tile.compute_at(out, inner_group)
        .split(f.ki, kv, kl, lanes)
        .reorder(kl, f.i, f.j, kv, f.ko, f.p, f.n)
        .vectorize(kl)
        .unroll(f.i)
        .unroll(f.j);
    f.y_row.compute_at(f.y_tile, kv).vectorize(f.ki, lanes).unroll(f.i).unroll(f.ej);

    HalidePipelines p;
    p.main = Halide::Pipeline(out);
    p.pack = Halide::Pipeline(f.pack);
    p.main_args = {{f.input, 0}, {f.packed, -1}};
    bind_epilogue_args(p, w, f.bias, f.residual);
    p.pack_args.push_back({f.weight, 1});
    p.packed_extents = {layout.kb, f.c_padded, f.k_blocks, f.alpha, f.alpha};
    return p;
}

namespace {

// Defaults measured on this project's reference host (docs/PERFORMANCE.md): F(4x4,3x3) on the
// 14x14 and larger ResNet-50 layers (r50_l1_3x3 584, r50_l3_3x3 418 GFLOP/s in direct-conv
// FLOPs), F(2x2,3x3) on 7x7 images, where F(4x4)'s transformed weights (4x the raw ones) make
// the layer memory-bound (r50_l4_3x3: 237 against 121 GFLOP/s).
int winograd_priority(const Workload& w, int m) {
    ConvShape s = ConvShape::of(w);
    bool large = std::min(s.oh, s.ow) >= 14;
    if (m == 4) return large ? 20 : 8;
    return large ? 15 : 20;
}

Conv2dAlgorithmRegistration winograd2_registration({
    "winograd2",
    "winograd",
    winograd_applies,
    add_winograd_knobs,
    winograd_conv2d,
    [](const Workload& w, const Target&) { return winograd_priority(w, 2); },
    true,
});

Conv2dAlgorithmRegistration winograd4_registration({
    "winograd4",
    "winograd",
    winograd_applies,
    add_winograd_knobs,
    winograd_conv2d,
    [](const Workload& w, const Target&) { return winograd_priority(w, 4); },
    true,
});

}  // namespace

}  // namespace kiln
