// kiln/schedules/gemm.cpp — GEMM knobs, their constraints and defaults, and the schedule.
//
// Start with schedule_gemm(): the loop nest of `out` is, outermost first,
//   [batch] parallel blocks x blocks x tiles (order knob) x mr rows x nr/lanes vectors x lanes
// and the register tile (`inner`) is computed per tile. With kc < k, `acc` holds one mc x nc
// block in memory; its update walks the KC blocks outermost and computes `inner` per tile.
#include "schedules/gemm.h"

#include <algorithm>
#include <set>
#include <vector>

namespace kiln {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;
using Halide::VarOrRVar;

namespace {

const std::vector<int64_t> kBlockTiles = {1, 2, 4, 8, 16, 32, 64};
const std::vector<int64_t> kPanelVectors = {1, 2, 3, 4, 6, 8};
const std::vector<int64_t> kRowTiles = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16};

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// Vector registers the micro-kernel needs: the accumulators, one panel row, one broadcast.
int64_t registers_needed(int64_t mr, int64_t panel_vectors) {
    return mr * panel_vectors + panel_vectors + 1;
}

// KC candidates: the divisors of k among tile_candidates(), so that every block is whole;
// tiny blocks only pay the acc traffic and are left out. k itself means no blocking.
std::vector<int64_t> kc_candidates(int64_t k) {
    std::set<int64_t> out = {k};
    const int64_t smallest = std::min<int64_t>(k, 32);
    for (int64_t d : tile_candidates(k, 1024))
        if (d >= smallest && k % d == 0) out.insert(d);
    return {out.begin(), out.end()};
}

int64_t parallel_blocks(const GemmShape& s, const GemmKnobs& g) {
    if (g.parallel == "batch") return std::max<int64_t>(s.batch, 1);
    if (g.parallel == "rows") return ceil_div(s.m, int64_t{g.mr} * g.mc);
    return ceil_div(s.n, int64_t{g.nr} * g.nc);
}

int host_threads(const Target& t) {
    return t.fingerprint.cores > 0 ? t.fingerprint.cores : 4;
}

// Work done beyond `n` when it is covered by blocks of `block` that shift inwards or pad.
int64_t waste(int64_t n, int64_t block) {
    return ceil_div(n, block) * block - n;
}

// The largest power-of-two block (in units of `unit`, at most `limit` units and `target`
// items) that wastes the least.
int pick_block(int64_t n, int64_t unit, int64_t limit, int64_t target) {
    int best = 1;
    for (int b = 1; b <= 64 && b <= limit && b * unit <= std::max(target, unit); b *= 2)
        if (waste(n, b * unit) <= waste(n, best * unit)) best = b;
    return best;
}

Config default_config(const ScheduleSpace& space, const std::string& prefix, const GemmShape& s,
                      const Target& t) {
    const int64_t lanes = t.f32_lanes(), regs = t.vector_registers();
    const int threads = host_threads(t);
    const int64_t l2 = t.fingerprint.l2_bytes > 0 ? t.fingerprint.l2_bytes : int64_t{1} << 20;
    GemmKnobs g;
    auto fits = [&](int64_t mr, int64_t v) {
        return registers_needed(mr, v) <= regs && (v == 1 || (v - 1) * lanes < s.n);
    };
    // The widest panels that fit beside mr rows, and the next narrower one.
    auto widest = [&](int64_t mr, int64_t below) -> int64_t {
        for (auto it = kPanelVectors.rbegin(); it != kPanelVectors.rend(); ++it)
            if (*it < below && fits(mr, *it)) return *it;
        return 1;
    };
    int64_t nv;
    if (s.m < 4) {
        // GEMV and its neighbours stream the weight: every panel vector is a load, and 8
        // vectors keep 8 independent FMA chains in flight.
        g.mr = static_cast<int>(s.m);
        nv = widest(g.mr, 9);
    } else {
        // 4 rows x 6 vectors (x 3 on 16-register targets): 24 accumulators fed by 4 broadcasts
        // and 6 loads. bert_qkv on one thread of this Zen host (median, shared machine): 4x96
        // and 4x64 204 GFLOP/s, 8x48 196, 2x128 152, 6x64 141 at m=128 but 177 at m=96: 4
        // divides the usual sizes, so shifted row blocks rarely redo work.
        g.mr = 4;
        nv = widest(g.mr, 9);
        const int64_t narrower = widest(g.mr, nv);
        if (waste(s.n, narrower * lanes) < waste(s.n, nv * lanes)) nv = narrower;
    }
    g.nr = static_cast<int>(nv * lanes);

    // No KC blocking while the k x nr panel fits in half of L2: each register tile then
    // streams it from L2 and nothing round-trips through acc (bert_qkv, 4x96, one thread:
    // kc=768 211 GFLOP/s, kc=256 204, kc=128 202). Past that, the largest whole block that fits.
    const bool one_row_tile = s.m <= g.mr;
    const int64_t kc_limit = std::max<int64_t>(l2 / 2 / (int64_t{g.nr} * 4), 1);
    g.kc = s.k;
    if (!one_row_tile && s.k > kc_limit) {
        for (const auto& v : space.find(prefix + "kc")->domain)
            if (std::get<int64_t>(v) <= kc_limit) g.kc = std::get<int64_t>(v);
    }
    // Blocks of about 64 rows x 256 columns that waste the fewest shifted rows and panels.
    const int64_t row_tiles = ceil_div(s.m, g.mr), panels = ceil_div(s.n, g.nr);
    g.mc = pick_block(s.m, g.mr, s.m / g.mr, 64);
    g.nc = one_row_tile ? 1 : pick_block(panels, 1, panels, std::max<int64_t>(256 / g.nr, 1));
    g.order = "rows_inner";
    const int64_t row_blocks = ceil_div(row_tiles, g.mc), col_blocks = ceil_div(panels, g.nc);
    if (s.batch >= threads)
        g.parallel = "batch";
    else if (row_blocks >= threads || row_blocks >= col_blocks)
        g.parallel = "rows";
    else
        g.parallel = "cols";
    g.grain = 1;
    g.unroll_k = 1;

    Config c;
    c.set(prefix + "mr", int64_t{g.mr});
    c.set(prefix + "nr", int64_t{g.nr});
    c.set(prefix + "kc", g.kc);
    c.set(prefix + "mc", int64_t{g.mc});
    c.set(prefix + "nc", int64_t{g.nc});
    c.set(prefix + "order", g.order);
    c.set(prefix + "parallel", g.parallel);
    c.set(prefix + "grain", int64_t{g.grain});
    c.set(prefix + "unroll_k", int64_t{g.unroll_k});
    return c;
}

}  // namespace

GemmKnobs GemmKnobs::of(const Config& c, const std::string& prefix) {
    GemmKnobs g;
    g.mr = static_cast<int>(c.i(prefix + "mr"));
    g.nr = static_cast<int>(c.i(prefix + "nr"));
    g.kc = c.i(prefix + "kc");
    g.mc = static_cast<int>(c.i(prefix + "mc"));
    g.nc = static_cast<int>(c.i(prefix + "nc"));
    g.order = c.s(prefix + "order");
    g.parallel = c.s(prefix + "parallel");
    g.grain = static_cast<int>(c.i(prefix + "grain"));
    g.unroll_k = static_cast<int>(c.i(prefix + "unroll_k"));
    return g;
}

void add_gemm_knobs(ScheduleSpace& space, const GemmShape& s, const Target& t,
                    const GemmKnobOptions& options) {
    const std::string prefix = options.prefix;
    const auto active = options.active;
    const int64_t lanes = t.f32_lanes(), regs = t.vector_registers();
    std::vector<int64_t> nr;
    for (int64_t v : kPanelVectors)
        nr.push_back(v * lanes);
    std::vector<std::string> parallel = {"rows", "cols"};
    if (s.batch > 0) parallel.push_back("batch");

    space.knobs.push_back({prefix + "mr", "register tile rows", int_domain(kRowTiles), active});
    space.knobs.push_back({prefix + "nr",
                           "register tile columns = packed panel width (vector lanes x 1..8)",
                           int_domain(nr), active});
    space.knobs.push_back({prefix + "kc", "reduction block kept in registers (k: no blocking)",
                           int_domain(kc_candidates(s.k)), active});
    space.knobs.push_back(
        {prefix + "mc", "register tiles of rows per cache block", int_domain(kBlockTiles), active});
    space.knobs.push_back(
        {prefix + "nc", "panels per cache block", int_domain(kBlockTiles), active});
    space.knobs.push_back({prefix + "order", "innermost tile loop of a block",
                           name_domain({"rows_inner", "cols_inner"}), active});
    space.knobs.push_back(
        {prefix + "parallel", "block axis run in parallel", name_domain(parallel), active});
    space.knobs.push_back(
        {prefix + "grain", "blocks per parallel task", int_domain({1, 2, 4, 8}), active});
    space.knobs.push_back({prefix + "unroll_k", "unroll of the reduction in the register tile",
                           int_domain({1, 2, 4, 8}), active});

    auto str = [](int64_t v) { return std::to_string(v); };
    space.constraints.push_back([=](const Config& c) -> std::optional<std::string> {
        if (active && !active(c)) return std::nullopt;
        GemmKnobs g = GemmKnobs::of(c, prefix);
        const int64_t nv = g.nr / lanes;
        if (registers_needed(g.mr, nv) > regs)
            return "register tile " + str(g.mr) + "x" + str(g.nr) + " needs " + str(g.mr * nv) +
                   " accumulators + " + str(nv) + " panel vectors + 1 broadcast; " +
                   "the target has " + str(regs) + " vector registers";
        if (g.mr > s.m)
            return "mr=" + str(g.mr) + " exceeds m=" + str(s.m) +
                   ": the tile would compute rows that are thrown away";
        if (nv > 1 && g.nr - lanes >= s.n)
            return "nr=" + str(g.nr) +
                   " leaves at least one vector of every panel empty for n=" + str(s.n);
        // Blocks never exceed what they split: the last block (and the last row tile) shifts
        // inwards and recomputes a few rows instead of testing every store.
        const int64_t panels = ceil_div(s.n, g.nr);
        if (int64_t{g.mc} * g.mr > s.m)
            return "mc=" + str(g.mc) + " tiles of mr=" + str(g.mr) + " rows exceed m=" + str(s.m);
        if (g.nc > panels)
            return "nc=" + str(g.nc) + " exceeds the " + str(panels) + " panels of n=" + str(s.n) +
                   " with nr=" + str(g.nr);
        if (g.unroll_k > g.kc) return "unroll_k=" + str(g.unroll_k) + " exceeds kc=" + str(g.kc);
        const int64_t blocks = parallel_blocks(s, g);
        if (g.grain > blocks)
            return "grain=" + str(g.grain) + " exceeds the " + str(blocks) +
                   " of the parallel axis (" + g.parallel + ")";
        return std::nullopt;
    });
    if (options.set_default)
        for (auto& [name, value] : default_config(space, prefix, s, t).values)
            space.default_config.set(name, value);
}

void schedule_gemm(GemmFuncs& f, const GemmShape& s, const GemmKnobs& g, const Target& t,
                   Func panels) {
    const int lanes = t.f32_lanes();
    const bool rows_inner = g.order == "rows_inner";

    // The register tile: nr/lanes vectors x mr rows, unrolled so that it lives in registers.
    Var vo("vo"), vi("vi");
    Func& inner = f.inner;
    inner.bound_extent(f.i, g.mr).bound_extent(f.jj, g.nr).bound_extent(f.jo, 1);
    inner.split(f.jj, vo, vi, lanes).vectorize(vi).unroll(vo).unroll(f.i);
    {
        Halide::Stage up = inner.update();
        up.split(f.jj, vo, vi, lanes).vectorize(vi).unroll(vo).unroll(f.i);
        if (g.unroll_k > 1) {
            Halide::RVar rko("rko"), rki("rki");
            up.split(f.rk, rko, rki, g.unroll_k, TailStrategy::GuardWithIf).unroll(rki);
            up.reorder(vi, vo, f.i, rki, rko);
        } else {
            up.reorder(vi, vo, f.i, f.rk);
        }
    }

    // out: blocks, tiles, then the tile's rows and vectors.
    Func& out = f.out;
    Var jt("jt"), jin("jin"), it("it"), ii("ii"), jb("jb"), ib("ib"), pg("pg");
    // Only the last panel's columns need a test: its stores are predicated. Row blocks and
    // column blocks shift inwards (the constraints keep each no larger than what it splits),
    // so every block holds exactly mc x nc whole tiles.
    Var irow("irow");
    out.split(f.j, jt, jin, g.nr, TailStrategy::Predicate)
        .split(jin, vo, vi, lanes)
        .split(f.i, ib, irow, g.mc * g.mr, TailStrategy::ShiftInwards)
        .split(irow, it, ii, g.mr)
        .split(jt, jb, jt, g.nc, TailStrategy::ShiftInwards)
        .vectorize(vi)
        .unroll(vo)
        .unroll(ii);
    const Var tile_inner = rows_inner ? it : jt, tile_outer = rows_inner ? jt : it;
    const Var block_par = g.parallel == "rows" ? ib : jb,
              block_ser = g.parallel == "rows" ? jb : ib;
    std::vector<VarOrRVar> order = {vi, vo, ii, tile_inner, tile_outer};
    Var batch_loop = f.b;  // the innermost loop over batches, where panels are packed
    if (g.parallel == "batch") {
        // Both block loops serial, inside the parallel batch loop.
        order.push_back(rows_inner ? jb : ib);
        order.push_back(rows_inner ? ib : jb);
        out.reorder(order);
        out.split(f.b, f.b, pg, g.grain, TailStrategy::ShiftInwards).parallel(f.b);
        batch_loop = pg;
    } else {
        order.push_back(block_ser);
        order.push_back(block_par);
        if (f.batched) order.push_back(f.b);
        out.reorder(order);
        out.split(block_par, block_par, pg, g.grain, TailStrategy::ShiftInwards)
            .parallel(block_par);
    }
    // The innermost block loop: where a block's acc lives.
    const Var block_inner = g.parallel == "batch" ? (rows_inner ? jb : ib) : block_ser;

    if (!f.blocked) {
        inner.compute_at(out, tile_inner);
    } else {
        // acc: one block in memory; KC blocks outermost so each block of the panels is reused
        // by every tile of the block before the next is touched.
        Func& acc = f.acc;
        acc.compute_at(out, block_inner)
            .bound_extent(f.i, g.mc * g.mr)
            .bound_extent(f.jo, g.nc)
            .bound_extent(f.jj, g.nr);
        acc.split(f.jj, vo, vi, lanes).vectorize(vi).unroll(vo);
        Var at("at"), ai("ai");
        Halide::Stage up = acc.update();
        up.split(f.i, at, ai, g.mr).split(f.jj, vo, vi, lanes).vectorize(vi).unroll(vo).unroll(ai);
        const Var acc_inner = rows_inner ? at : f.jo, acc_outer = rows_inner ? f.jo : at;
        up.reorder(vi, vo, ai, acc_inner, acc_outer, f.rb);
        inner.compute_at(acc, acc_inner);
    }

    if (panels.defined()) {
        // b's panels, once per batch (once without one): a copy of k x n that every row tile
        // then reads contiguously.
        const auto args = panels.args();
        if (f.batched)
            panels.compute_at(out, batch_loop);
        else
            panels.compute_root();
        panels.vectorize(args[0], lanes);
        if (g.parallel != "batch") panels.parallel(args[2]);
    }
}

}  // namespace kiln
