// kiln/schedules/conv2d_direct.cpp — knobs and schedules of conv2d's direct and im2col
// algorithms (their Funcs: generators/conv2d_direct.cpp).
//
// Direct: a register tile of tile_x x tile_y output pixels by block_k output channels (vectors
// of the target's lanes) accumulates over the reduction (input channels and taps, in red_order)
// with one vector load of packed weights and one broadcast input per FMA; the tile is then
// stored NCHW. im2col: a register tile of gemm_tile_p pixel vectors by gemm_tile_k output
// channels, weights broadcast from the packed panel, pixels loaded as vectors; the output rows
// are contiguous NCHW pixels, so the store needs no transposition.
#include <algorithm>

#include "core/error.h"
#include "generators/conv2d_direct.h"
#include "schedules/conv2d_algorithms.h"

namespace kiln {

using namespace Halide;

namespace {

bool is_direct(const Config& c) {
    return c.s("algorithm") == "direct";
}
bool is_im2col(const Config& c) {
    return c.s("algorithm") == "im2col";
}

std::vector<int64_t> divisors(int64_t n, int64_t limit) {
    std::vector<int64_t> d;
    for (int64_t i = 1; i <= std::min(n, limit); ++i)
        if (n % i == 0) d.push_back(i);
    return d;
}

// Accumulator registers a micro-tile may use: the rest hold the weight vector(s), a broadcast
// and addresses.
int64_t accumulator_budget(const Target& t) {
    return t.vector_registers() - 4;
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// Output-channel blocks: vectors of the target's lanes (or half), two vectors; with groups the
// block must stay inside one group, so it divides k/g.
std::vector<int64_t> block_k_domain(const ConvShape& s, const Target& t) {
    const int64_t lanes = t.f32_lanes();
    std::vector<int64_t> out;
    for (int64_t b : {lanes / 2, lanes, 2 * lanes})
        if (b >= 4 && (s.groups == 1 || s.k_per_group() % b == 0)) out.push_back(b);
    if (out.empty()) {
        // A block wider than a vector is split into whole vectors.
        for (int64_t b : divisors(s.k_per_group(), 2 * lanes))
            if (b <= lanes || b % lanes == 0) out.push_back(b);
    }
    return out;
}

bool flat_gemm(const ConvShape& s) {
    return s.r == 1 && s.s == 1 && s.stride_h == 1 && s.stride_w == 1 && !s.padded();
}

// A rectangle of output columns [x0, x0 + xn) and rows [y0, y0 + yn).
struct Piece {
    int x0, xn, y0, yn;
};

// The output positions [lo, hi) along one axis whose window lies inside the input.
std::pair<int64_t, int64_t> inside(int64_t out, int64_t in, int64_t pad, int64_t stride,
                                   int64_t taps, int64_t dilation) {
    int64_t lo = ceil_div(pad, stride);
    int64_t last = in - 1 + pad - (taps - 1) * dilation;  // the last window start inside
    int64_t hi = last < 0 ? 0 : last / stride + 1;
    hi = std::min(hi, out);
    return {std::min(lo, hi), hi};
}

// The output pixels whose windows lie inside the input.
Piece interior_of(const ConvShape& s) {
    auto [x_lo, x_hi] = inside(s.ow, s.w, s.pad_l, s.stride_w, s.s, s.dil_w);
    auto [y_lo, y_hi] = inside(s.oh, s.h, s.pad_t, s.stride_h, s.r, s.dil_h);
    return {int(x_lo), int(x_hi - x_lo), int(y_lo), int(y_hi - y_lo)};
}

// pad_at=split: the interior (which the config's checks keep at least one tile large), then
// the border strips around it (top, bottom, left, right; empty ones left out).
std::vector<Piece> split_pieces(const ConvShape& s) {
    const Piece in = interior_of(s);
    const int x_hi = in.x0 + in.xn, y_hi = in.y0 + in.yn;
    std::vector<Piece> all = {
        in,
        {0, int(s.ow), 0, in.y0},
        {0, int(s.ow), y_hi, int(s.oh) - y_hi},
        {0, in.x0, in.y0, in.yn},
        {x_hi, int(s.ow) - x_hi, in.y0, in.yn},
    };
    std::vector<Piece> out;
    for (const Piece& p : all)
        if (p.xn > 0 && p.yn > 0) out.push_back(p);
    return out;
}

// ---- direct -----------------------------------------------------------------------------------

void add_direct_knobs_impl(ScheduleSpace& sp, const Workload& w, const Target& t,
                           bool make_default) {
    ConvShape s = ConvShape::of(w);
    const int64_t lanes = t.f32_lanes(), budget = accumulator_budget(t);
    auto bk = block_k_domain(s, t);
    auto bc = divisors(s.c_per_group(), 32);
    auto tx = tile_candidates(s.ow, std::min<int64_t>(s.ow, 32));
    auto ty = divisors(s.oh, 4);
    for (int64_t v : {2, 3, 4})
        if (v < s.oh && std::find(ty.begin(), ty.end(), v) == ty.end()) ty.push_back(v);
    std::sort(ty.begin(), ty.end());

    sp.knobs.push_back({"block_k", "output channels per register tile (packed weight block)",
                        int_domain(bk), is_direct});
    sp.knobs.push_back(
        {"block_c", "input channels per block of the padded input", int_domain(bc), is_direct});
    sp.knobs.push_back({"tile_x", "output columns per register tile", int_domain(tx), is_direct});
    sp.knobs.push_back({"tile_y", "output rows per register tile", int_domain(ty), is_direct});
    sp.knobs.push_back({"red_order",
                        "reduction loops, innermost first: c_rs = channels then taps, rs_c = "
                        "taps then channels",
                        name_domain({"c_rs", "rs_c"}), is_direct});
    sp.knobs.push_back({"unroll", "unroll factor of the innermost reduction loop",
                        int_domain({1, 2, 4}), is_direct});
    sp.knobs.push_back({"loop_order",
                        "tile loops, innermost first: x_y_k keeps weights hot, k_x_y keeps the "
                        "input tile hot",
                        name_domain({"x_y_k", "x_k_y", "k_x_y"}), is_direct});
    sp.knobs.push_back({"parallel",
                        "outer = the outermost tile loop; outer2 = the two outermost, "
                        "fused",
                        name_domain({"outer", "outer2"}), is_direct});
    sp.knobs.push_back(
        {"grain", "outer tile iterations per parallel task", int_domain({1, 2, 4, 8}), is_direct});
    sp.knobs.push_back({"pad_at",
                        "root: pad and block the input once; split: read the interior in place, "
                        "pad only for the border strips; inline: read the input with bounds "
                        "checks in the inner loop",
                        name_domain({"root", "split", "inline"}), is_direct});
    const int64_t out_block = w.layout.output;
    sp.constraints.push_back([=](const Config& c) -> std::optional<std::string> {
        if (!is_direct(c)) return std::nullopt;
        if (out_block && c.i("block_k") % out_block != 0)
            return "block_k " + std::to_string(c.i("block_k")) +
                   " is not a multiple of the blocked output's " + std::to_string(out_block);
        int64_t acc = c.i("tile_x") * c.i("tile_y") * ceil_div(c.i("block_k"), lanes);
        if (acc > budget)
            return "register tile needs " + std::to_string(acc) + " accumulators; the target has " +
                   std::to_string(budget) + " to spare";
        int64_t inner = c.s("red_order") == "c_rs" ? c.i("block_c") : s.s;
        if (inner % c.i("unroll") != 0)
            return "unroll " + std::to_string(c.i("unroll")) +
                   " does not divide the innermost reduction extent " + std::to_string(inner);
        if (c.s("pad_at") == "split") {
            if (!s.padded()) return std::string("pad_at=split needs padding");
            Piece interior = interior_of(s);
            if (interior.xn < c.i("tile_x") || interior.yn < c.i("tile_y"))
                return "pad_at=split: the interior (" + std::to_string(interior.xn) + "x" +
                       std::to_string(interior.yn) + ") is smaller than one tile";
        }
        return std::nullopt;
    });
    if (!make_default) return;

    // Default: two vectors of output channels unless that pads k further than one vector does,
    // so each broadcast input feeds two FMAs (r50 3x3 56x56: 65 -> 144 GFLOP/s against one
    // vector; mv2 1x1 k=24: 124 against 104, interleaved); the widest input-channel block up to
    // 16; then the register tile that fills the accumulators best, counting the work that tiles
    // overhanging the image redo.
    const int64_t kg = s.k_per_group();
    bool two_vectors =
        ceil_div(kg, 2 * lanes) * 2 * lanes <= ceil_div(kg, lanes) * lanes || kg >= 4 * lanes;
    int64_t b = bk.back();
    for (int64_t v : bk)
        if (v == lanes || (v == 2 * lanes && two_vectors)) b = v;
    if (out_block && b % out_block != 0)
        for (int64_t v : bk)
            if (v % out_block == 0 && (b % out_block != 0 || v < b)) b = v;
    int64_t best_c = 1;
    for (int64_t v : bc)
        if (v <= 16) best_c = v;
    const int64_t vecs = ceil_div(b, lanes);
    int64_t best_x = 1, best_y = 1;
    double best_score = -1;
    for (int64_t x : tx) {
        for (int64_t y : ty) {
            if (x * y * vecs > budget) continue;
            double useful = double(s.ow) / double(ceil_div(s.ow, x) * x) * double(s.oh) /
                            double(ceil_div(s.oh, y) * y);
            double score = useful * double(x * y) + 1e-3 * double(x);
            if (score > best_score) {
                best_score = score;
                best_x = x;
                best_y = y;
            }
        }
    }
    Config& d = sp.default_config;
    d.set("block_k", b);
    d.set("block_c", best_c);
    d.set("tile_x", best_x);
    d.set("tile_y", best_y);
    d.set("red_order", std::string("c_rs"));
    d.set("unroll", int64_t{1});
    d.set("loop_order", std::string("x_y_k"));
    d.set("parallel", std::string("outer2"));
    d.set("grain", int64_t{1});
    // Without padding the input is read where it is: re-blocking it first cost more than it
    // saved (r50_l3_reduce, interleaved: 337 GFLOP/s with the copy, 436 without). With padding,
    // the interior is read in place too when one tile fits it, and only the border strips are
    // padded (r50_l2_3x3_s2, interleaved: 0.611 ms with the blocked copy, 0.566 split).
    const Piece interior = interior_of(s);
    const bool split = s.padded() && interior.xn >= best_x && interior.yn >= best_y;
    d.set("pad_at", std::string(!s.padded() ? "inline" : split ? "split" : "root"));
}

// Schedules one output Func of the direct algorithm: a tx x ty register tile of pixels by
// block_k channels; `pad_at` is root or inline. A border strip copies its few
// padded rows or columns in one thread (`parallel_copy` false): a parallel loop's dispatch cost
// more than the copy (r50_l2_3x3_s2, interleaved: 0.575 against 0.561 ms).
void schedule_direct(Conv2dFuncs& f, const ConvShape& s, const Blocking& layout, const Config& c,
                     const Target& t, int tx, int ty, const std::string& pad_at,
                     bool parallel_copy = true) {
    const int lanes = t.f32_lanes();
    const int bk = int(c.i("block_k")), bc = int(c.i("block_c"));

    // NCHW output: (x, y, k, n) -> tile (xi, kk, yi) inside the outer loops, stored as rows of
    // pixels. Blocked output: (o, x, y, ob, n) -> tile (o, kk, xi, yi), stored as the vectors of
    // channels the accumulator holds.
    const bool blocked = layout.output != 0;
    const std::vector<Var> args = f.output.args();
    Var x = args[blocked ? 1 : 0], y = args[blocked ? 2 : 1], k = args[blocked ? 3 : 2],
        n = args[blocked ? 4 : 3];
    Var xo("xo"), xi("xi"), yo("yo"), yi("yi"), kb("kb"), kk("kk"), par("par");
    const int per = blocked ? bk / int(layout.output) : bk;
    f.output.split(k, kb, kk, per, TailStrategy::GuardWithIf)
        .split(x, xo, xi, tx)
        .split(y, yo, yi, ty);
    const std::string& order = c.s("loop_order");
    std::vector<VarOrRVar> outer;
    if (order == "x_y_k") outer = {xo, yo, kb};
    if (order == "x_k_y") outer = {xo, kb, yo};
    if (order == "k_x_y") outer = {kb, xo, yo};
    if (blocked) {
        f.output.reorder(args[0], kk, xi, yi, outer[0], outer[1], outer[2], n)
            .vectorize(args[0])
            .unroll(xi);
    } else {
        f.output.reorder(xi, kk, yi, outer[0], outer[1], outer[2], n);
        if (tx > 1) f.output.vectorize(xi);
    }
    f.output.unroll(kk).unroll(yi);
    const int grain = int(c.i("grain"));
    if (c.s("parallel") == "outer2") {
        f.output.fuse(outer[1].var, outer[2].var, par)
            .parallel(par, grain, TailStrategy::GuardWithIf);
    } else {
        f.output.parallel(outer[2].var, grain, TailStrategy::GuardWithIf);
    }

    // The accumulator tile lives in registers: computed per innermost outer loop iteration,
    // vector over kk, unrolled over the pixels of the tile.
    Var ck = f.conv.args()[0], cx = f.conv.args()[1], cy = f.conv.args()[2];
    Var ko("ko"), ki("ki");
    f.conv.compute_at(f.output, outer[0].var);
    auto tile = [&](Stage st) {
        if (bk > lanes) {
            st.split(ck, ko, ki, lanes).vectorize(ki).unroll(ko);
        } else {
            st.vectorize(ck);
        }
        st.unroll(cx).unroll(cy);
    };
    tile(f.conv);
    Stage upd = f.conv.update();
    tile(upd);
    RVar rc = f.rd.x, rs = f.rd.y, rr = f.rd.z, rco = f.rd.w;
    std::vector<VarOrRVar> loops;
    if (bk > lanes)
        loops = {ki, ko};
    else
        loops = {ck};
    loops.push_back(cx);
    loops.push_back(cy);
    if (c.s("red_order") == "c_rs") {
        loops.insert(loops.end(), {rc, rs, rr, rco});
    } else {
        loops.insert(loops.end(), {rs, rr, rc, rco});
    }
    upd.reorder(loops);
    if (int u = int(c.i("unroll")); u > 1) {
        RVar inner = c.s("red_order") == "c_rs" ? rc : rs;
        RVar io("io"), ii("ii");
        upd.split(inner, io, ii, u).unroll(ii);
    }

    if (pad_at == "root") {
        Var pci = f.padded.args()[0], px = f.padded.args()[1], py = f.padded.args()[2],
            pcb = f.padded.args()[3];
        // Rows and channel blocks fused: a 3-channel stem has one channel block.
        Var pyc("pyc");
        f.padded.compute_root().fuse(py, pcb, pyc);
        if (parallel_copy) f.padded.parallel(pyc);
        if (bc >= 4) {
            f.padded.vectorize(pci);
        } else {
            // Guarded: without padding the copy reads the input itself, which a rounded-up
            // vector would overrun on narrow images.
            f.padded.reorder(px, pci).vectorize(px, lanes, TailStrategy::GuardWithIf);
        }
    }
}

HalidePipelines direct_conv2d_impl(const Workload& w, const Config& c, const Target& t) {
    ConvShape s = ConvShape::of(w);
    const int bk = int(c.i("block_k")), bc = int(c.i("block_c"));
    const int tx = int(c.i("tile_x")), ty = int(c.i("tile_y"));
    const std::string& pad_at = c.s("pad_at");
    Conv2dFuncs f;
    std::vector<Halide::Func> outputs;
    std::vector<std::vector<std::pair<int, int>>> crops;
    if (pad_at != "split") {
        f = define_direct_conv2d(w, bk, bc);
        schedule_direct(f, s, w.layout, c, t, tx, ty, pad_at);
    } else {
        // The interior reads the input in place, with the config's tile; each border strip pads
        // the few rows or columns it reads, with a tile cut to its size (a column strip stacks
        // rows to fill the accumulators).
        const int vecs = int(ceil_div(bk, t.f32_lanes()));
        const int budget = int(accumulator_budget(t));
        std::vector<Piece> pieces = split_pieces(s);
        for (size_t i = 0; i < pieces.size(); ++i) {
            const Piece& q = pieces[i];
            Conv2dFuncs piece = define_direct_conv2d(w, bk, bc, i ? &f : nullptr, i == 0,
                                                     i ? "_" + std::to_string(i) : "");
            if (i == 0) {
                f = piece;
                schedule_direct(piece, s, w.layout, c, t, tx, ty, "inline");
            } else {
                int px = std::min(tx, q.xn);
                int py = std::min(q.yn, std::max(ty, budget / vecs / px));
                schedule_direct(piece, s, w.layout, c, t, px, py, "root", false);
            }
            outputs.push_back(piece.output);
            crops.push_back({{q.x0, q.xn}, {q.y0, q.yn}});
            // A blocked output's first dimension is the channel within a block: all of it.
            if (w.layout.output)
                crops.back().insert(crops.back().begin(), {0, int(w.layout.output)});
        }
    }
    // Packing runs once at prepare(): any reasonable schedule will do.
    f.pack.compute_root().parallel(f.pack.args().back());

    HalidePipelines p = conv_pipelines(w, f);
    if (!outputs.empty()) p.main = Pipeline(outputs);
    p.output_crops = std::move(crops);
    p.packed_extents = {bk, int(s.c_per_group()), int(s.s), int(s.r), int(ceil_div(s.k, bk))};
    // Every extent is the workload's: tile edge tests and boundary conditions fold away.
    constrain_shapes(p, w);
    return p;
}

// ---- im2col -----------------------------------------------------------------------------------

bool im2col_applies(const Workload& w) {
    ConvShape s = ConvShape::of(w);
    return s.groups == 1 && s.oh * s.ow >= 4;
}

std::vector<int64_t> gemm_vector_domain(const ConvShape& s, const Target& t) {
    std::vector<int64_t> v;
    for (int64_t l = 4; l <= t.f32_lanes(); l *= 2)
        if (l <= s.oh * s.ow) v.push_back(l);
    return v;
}

void add_im2col_knobs_impl(ScheduleSpace& sp, const Workload& w, const Target& t,
                           bool make_default) {
    ConvShape s = ConvShape::of(w);
    const int64_t budget = accumulator_budget(t);
    const int64_t pixels = s.oh * s.ow;
    auto vec = gemm_vector_domain(s, t);
    std::vector<int64_t> tk;
    for (int64_t v = 1; v <= std::min<int64_t>(s.k, budget); ++v)
        tk.push_back(v);
    bool flat = flat_gemm(s);
    sp.knobs.push_back({"gemm_vector", "pixels per vector", int_domain(vec), is_im2col});
    sp.knobs.push_back(
        {"gemm_tile_p", "pixel vectors per register tile", int_domain({1, 2, 3, 4}), is_im2col});
    sp.knobs.push_back({"gemm_tile_k", "output channels per register tile (packed block)",
                        int_domain(tk), is_im2col});
    sp.knobs.push_back(
        {"gemm_loop_order", "tile loops, innermost first", name_domain({"p_k", "k_p"}), is_im2col});
    sp.knobs.push_back(
        {"gemm_unroll", "unroll factor of the reduction loop", int_domain({1, 2, 4}), is_im2col});
    sp.knobs.push_back({"gemm_grain", "outer tile iterations per parallel task",
                        int_domain({1, 2, 4, 8}), is_im2col});
    sp.knobs.push_back({"gemm_col_at",
                        flat ? "inline: the input is the col matrix; root: copy it first"
                             : "root: build the col matrix once; inline: gather in the inner loop",
                        name_domain({"root", "inline"}), is_im2col});
    const int64_t reduction = s.c * s.r * s.s;
    sp.constraints.push_back([=](const Config& c) -> std::optional<std::string> {
        if (!is_im2col(c)) return std::nullopt;
        int64_t acc = c.i("gemm_tile_p") * c.i("gemm_tile_k");
        if (acc > budget)
            return "register tile needs " + std::to_string(acc) + " accumulators; the target has " +
                   std::to_string(budget) + " to spare";
        if (c.i("gemm_tile_p") * c.i("gemm_vector") > pixels)
            return "pixel tile larger than the " + std::to_string(pixels) + " output pixels";
        if (reduction % c.i("gemm_unroll") != 0)
            return "unroll does not divide the reduction extent " + std::to_string(reduction);
        return std::nullopt;
    });
    if (!make_default) return;
    // Default: what tuning found on the store-bound 1x1 layers of ResNet-50 and MobileNetV2
    // (56x56 and 112x112 images): a small tile of 8 channels by 3 pixel vectors, channel tiles
    // outermost so each streams its output rows, the reduction unrolled by 4, 4 tiles per task.
    // Interleaved against the old default (14 channels x 2 vectors, pixels outermost):
    // mv2_pw_112 43 -> 178 GFLOP/s, r50_l1_1x1_64 186 -> 342, r50_l1_reduce 253 -> 348.
    Config& d = sp.default_config;
    int64_t v = vec.back();
    int64_t p = std::max<int64_t>(1, std::min<int64_t>(3, pixels / v));
    d.set("gemm_vector", v);
    d.set("gemm_tile_p", p);
    d.set("gemm_tile_k", std::min<int64_t>({s.k, int64_t{8}, budget / p}));
    d.set("gemm_loop_order", std::string("k_p"));
    d.set("gemm_unroll", int64_t{reduction % 4 == 0 ? 4 : reduction % 2 == 0 ? 2 : 1});
    d.set("gemm_grain", int64_t{4});
    d.set("gemm_col_at", std::string(flat ? "inline" : "root"));
}

HalidePipelines im2col_conv2d_impl(const Workload& w, const Config& c, const Target& t) {
    ConvShape s = ConvShape::of(w);
    const int vec = int(c.i("gemm_vector")), tp = int(c.i("gemm_tile_p"));
    const int tk = int(c.i("gemm_tile_k"));
    const bool flat = flat_gemm(s);
    Conv2dFuncs f = define_im2col_conv2d(w, tk, flat);

    Var p = f.output.args()[0], k = f.output.args()[1], n = f.output.args()[2];
    Var po("po"), pi("pi"), ko("ko"), ki("ki"), pv("pv"), pu("pu");
    f.output.split(p, po, pi, vec * tp).split(k, ko, ki, tk, TailStrategy::GuardWithIf);
    Var inner = c.s("gemm_loop_order") == "p_k" ? po : ko;
    Var outer = c.s("gemm_loop_order") == "p_k" ? ko : po;
    f.output.reorder(pi, ki, inner, outer, n)
        .split(pi, pu, pv, vec)
        .vectorize(pv)
        .unroll(pu)
        .unroll(ki)
        .parallel(outer, int(c.i("gemm_grain")), TailStrategy::GuardWithIf);

    Var gp = f.conv.args()[0], gk = f.conv.args()[1];
    Var gpo("gpo"), gpi("gpi");
    f.conv.compute_at(f.output, inner);
    f.conv.split(gp, gpo, gpi, vec).vectorize(gpi).unroll(gpo).unroll(gk);
    Stage upd = f.conv.update();
    upd.split(gp, gpo, gpi, vec).vectorize(gpi).unroll(gpo).unroll(gk);
    upd.reorder(gpi, gpo, gk, f.rd.x);
    if (int u = int(c.i("gemm_unroll")); u > 1) {
        RVar ro("ro"), ri("ri");
        upd.split(f.rd.x, ro, ri, u).unroll(ri);
    }
    if (c.s("gemm_col_at") == "root") {
        Var cp = f.padded.args()[0], cq = f.padded.args()[1];
        f.padded.compute_root().parallel(cq).vectorize(cp, vec);
    }
    f.pack.compute_root().parallel(f.pack.args().back());

    HalidePipelines pl = conv_pipelines(w, f);
    pl.packed_extents = {tk, int(s.c * s.r * s.s), int(ceil_div(s.k, tk))};
    const std::vector<int> flat_out = {int(s.oh * s.ow), int(s.k), int(s.n)};
    pl.output_view = flat_out;
    pl.input_views.resize(w.inputs().size());
    if (flat) pl.input_views[0] = {int(s.h * s.w), int(s.c), int(s.n)};
    if (w.epilogue.residual) pl.input_views.back() = flat_out;
    constrain_shapes(pl, w);
    return pl;
}

}  // namespace

void add_direct_knobs(ScheduleSpace& sp, const Workload& w, const Target& t, bool d) {
    add_direct_knobs_impl(sp, w, t, d);
}
void add_im2col_knobs(ScheduleSpace& sp, const Workload& w, const Target& t, bool d) {
    add_im2col_knobs_impl(sp, w, t, d);
}
HalidePipelines direct_conv2d(const Workload& w, const Config& c, const Target& t) {
    return direct_conv2d_impl(w, c, t);
}
HalidePipelines im2col_conv2d(const Workload& w, const Config& c, const Target& t) {
    return im2col_conv2d_impl(w, c, t);
}

static Conv2dAlgorithmRegistration direct_registration({
    "direct",
    "direct",
    [](const Workload&) { return true; },
    add_direct_knobs,
    direct_conv2d,
    [](const Workload&, const Target&) { return 10; },
    true,
});

static Conv2dAlgorithmRegistration im2col_registration({
    "im2col",
    "im2col",
    im2col_applies,
    add_im2col_knobs,
    im2col_conv2d,
    // A 1x1 stride-1 layer is a GEMM on the NCHW input as it is, with no copy and contiguous
    // stores. On large images its stores dominate and the GEMM's small streaming tile wins
    // (r50_l1_1x1_256 210 -> 313 GFLOP/s against direct, mv2_expand_112 152 -> 352); on 14x14
    // and smaller images direct's larger register tile does (r50_l3_reduce 331 against 220,
    // r50_l4_expand 341 against 43).
    [](const Workload& w, const Target&) {
        ConvShape s = ConvShape::of(w);
        return flat_gemm(s) && s.oh * s.ow >= 56 * 56 ? 12 : 5;
    },
});

HalidePipelines conv_pipelines(const Workload& w, const Conv2dFuncs& f) {
    HalidePipelines p;
    p.main = Pipeline(f.output);
    p.main_args = {{f.input, 0}, {f.packed, -1}};
    bind_epilogue_args(p, w, f.bias, f.residual);
    p.pack = Pipeline(f.pack);
    p.pack_args = {{f.weight, 1}};
    return p;
}

}  // namespace kiln
