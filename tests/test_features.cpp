// The cost model's features: the loop-nest summary on hand-written pipelines whose loops,
// bytes and working sets are known, then on kiln's own kernels.
#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "Halide.h"
#include "core/error.h"
#include "cost_model/features.h"
#include "cost_model/loop_nest.h"
#include "schedules/kernel.h"

namespace kiln {
namespace {

using Halide::Func;
using Halide::ImageParam;
using Halide::Pipeline;
using Halide::TailStrategy;
using Halide::Var;

Halide::Target host() {
    return Halide::Target("x86-64-linux-avx2-fma-sse41");
}

// out(x, y) = in(x, y) * 2 + 1 on 64 x 32 floats: x split by 16 and vectorized, y split by 4
// with the inner 4 unrolled and the outer 8 parallel.
Pipeline tiled_scale(ImageParam& in, Func& out) {
    Var x("x"), y("y"), xo("xo"), xi("xi"), yo("yo"), yi("yi");
    out = Func("out");
    out(x, y) = in(x, y) * 2.0f + 1.0f;
    out.split(x, xo, xi, 16).vectorize(xi).split(y, yo, yi, 4).unroll(yi).parallel(yo);
    out.output_buffer().dim(0).set_bounds(0, 64).dim(1).set_bounds(0, 32).set_stride(64);
    in.dim(0).set_bounds(0, 64).dim(1).set_bounds(0, 32).set_stride(64);
    return Pipeline(out);
}

TEST(LoopNest, KnownTilingGivesKnownExtentsBytesAndWorkingSets) {
    ImageParam in(Halide::Float(32), 2, "in");
    Func out;
    LoopNestSummary s = summarize_pipeline(tiled_scale(in, out), host());

    ASSERT_EQ(s.hot_loops.size(), 3u);
    EXPECT_EQ(s.hot_loops[0].name, "out.s0.y.yo");
    EXPECT_EQ(s.hot_loops[0].extent, 8);
    EXPECT_EQ(s.hot_loops[0].kind, LoopKind::parallel);
    EXPECT_EQ(s.hot_loops[1].name, "out.s0.y.yi");
    EXPECT_EQ(s.hot_loops[1].extent, 4);
    EXPECT_EQ(s.hot_loops[1].kind, LoopKind::unrolled);
    EXPECT_EQ(s.hot_loops[2].name, "out.s0.x.xo");
    EXPECT_EQ(s.hot_loops[2].extent, 4);
    EXPECT_EQ(s.hot_loops[2].kind, LoopKind::serial);
    EXPECT_EQ(s.hot_lanes, 16);
    EXPECT_EQ(s.hot_trips, 8 * 4 * 4);
    // One vector multiply and one vector add per store; one vector load, one vector store.
    EXPECT_EQ(s.inner_flops, 32);
    EXPECT_EQ(s.inner_load_bytes, 64);
    EXPECT_EQ(s.inner_store_bytes, 64);
    EXPECT_EQ(s.flops, 64 * 32 * 2);
    EXPECT_EQ(s.load_bytes, 64 * 32 * 4);
    EXPECT_EQ(s.store_bytes, 64 * 32 * 4);
    EXPECT_EQ(s.parallel_tasks, 8);
    EXPECT_EQ(s.allocations, 0);
    // One iteration of x.xo touches a vector of each buffer; of y.yi, a row of 4 vectors of
    // each; of y.yo, 4 rows of each.
    EXPECT_EQ(s.hot_loops[2].working_set, 2 * 64);
    EXPECT_EQ(s.hot_loops[1].working_set, 2 * 4 * 64);
    EXPECT_EQ(s.hot_loops[0].working_set, 2 * 4 * 4 * 64);
}

// A producer computed per tile of its consumer is allocated once per tile, and the hot
// statement is the one with the most arithmetic over the run.
TEST(LoopNest, ComputeAtAllocatesPerTileAndTheHotStatementIsTheBusiest) {
    ImageParam in(Halide::Float(32), 2, "in");
    Var x("x"), y("y"), xo("xo"), xi("xi");
    Func f("f"), g("g");
    f(x, y) = in(x, y) * 3.0f;
    g(x, y) = f(x, y) * f(x + 1, y) + f(x + 2, y) * 0.5f - 1.0f;
    g.split(x, xo, xi, 16).vectorize(xi);
    f.compute_at(g, xo).vectorize(x, 8, TailStrategy::RoundUp);
    g.output_buffer().dim(0).set_bounds(0, 64).dim(1).set_bounds(0, 8).set_stride(64);
    in.dim(0).set_bounds(0, 66).dim(1).set_bounds(0, 8).set_stride(66);
    LoopNestSummary s = summarize_pipeline(Pipeline(g), host());

    ASSERT_EQ(s.hot_loops.size(), 2u);
    EXPECT_EQ(s.hot_loops[0].name, "g.s0.y");
    EXPECT_EQ(s.hot_loops[1].name, "g.s0.x.xo");
    EXPECT_EQ(s.hot_lanes, 16);
    EXPECT_EQ(s.inner_flops, 4 * 16);  // *, +, *, -
    EXPECT_EQ(s.statements, 2);
    EXPECT_EQ(s.allocations, 8 * 4);  // f's buffer, once per (y, xo)
    // f covers 18 columns of each 16-wide tile, rounded up to vectors of 8: 24 floats.
    EXPECT_EQ(s.allocation_bytes, 8 * 4 * 24 * 4);
}

Workload dense_workload() {
    return Workload::from_shape("dense", "m=32,n=64,k=48");
}

TEST(LoopNest, KilnKernelsAreSummarizedFromTheirOwnPipelines) {
    Target t = host_target();
    for (const auto& [op, shape] :
         {std::pair<std::string, std::string>{"dense", "m=128,n=256,k=64"},
          {"conv2d", "c=32,h=28,w=28,k=64,r=3,s=3,pad=1"},
          {"depthwise_conv2d", "c=32,h=56,w=56,k=32,r=3,s=3,pad=1"}}) {
        SCOPED_TRACE(op);
        Workload w = Workload::from_shape(op, shape);
        ScheduleSpace sp = find_space(op).space(w, t);
        LoopNestSummary s = summarize_loop_nest(w, sp.default_config, t);
        EXPECT_FALSE(s.hot_loops.empty());
        EXPECT_GT(s.flops, 0);
        // The kernel computes at least the workload's multiply-adds (padding only adds).
        EXPECT_GE(s.flops, 0.5 * w.flops());
        EXPECT_GT(s.load_bytes, 0);
        EXPECT_GE(s.store_bytes, double(w.output().numel()) * 4);
        EXPECT_GE(s.parallel_tasks, 2) << "the default configs run in parallel";
        EXPECT_GT(s.hot_lanes, 1) << "and are vectorized";
        for (const LoopInfo& l : s.hot_loops)
            EXPECT_GE(l.extent, 1) << l.name;
    }
}

// Winograd does fewer multiplies than the direct convolution it replaces: the lowered nest
// shows it, where the knob values alone would not.
TEST(LoopNest, WinogradDoesFewerFlopsThanDirect) {
    Target t = host_target();
    Workload w = Workload::from_shape("conv2d", "c=64,h=14,w=14,k=64,r=3,s=3,pad=1");
    ScheduleSpace sp = find_space("conv2d").space(w, t);
    std::mt19937_64 rng(5);
    std::map<std::string, double> flops;
    for (int i = 0; i < 400 && flops.size() < 3; ++i) {
        Config c = sp.sample(rng);
        const std::string a = c.s("algorithm");
        if ((a == "direct" || a == "winograd2" || a == "winograd4") && !flops.count(a))
            flops[a] = summarize_loop_nest(w, c, t).flops;
    }
    ASSERT_EQ(flops.size(), 3u);
    EXPECT_LT(flops["winograd2"], 0.8 * flops["direct"]);
    EXPECT_LT(flops["winograd4"], flops["winograd2"]);
}

TEST(Features, NamedShapeNestAndKnobFeatures) {
    Target t = host_target();
    Workload w = dense_workload();
    ScheduleSpace sp = find_space("dense").space(w, t);
    Features f = featurize(w, sp.default_config, t);
    std::map<std::string, float> byname(f.begin(), f.end());
    EXPECT_EQ(byname.size(), f.size()) << "names are unique";
    EXPECT_FLOAT_EQ(byname.at("shape.m"), std::log2(33.0f));
    EXPECT_GT(byname.at("nest.flops"), 0);
    EXPECT_TRUE(byname.count("nest.L0.extent"));
    EXPECT_TRUE(byname.count("nest.L0.ws_vs_l1"));
    for (const auto& [knob, value] : sp.default_config.values) {
        if (std::holds_alternative<int64_t>(value))
            EXPECT_TRUE(byname.count("knob." + knob)) << knob;
        else
            EXPECT_EQ(byname.at("knob." + knob + "=" + std::get<std::string>(value)), 1);
    }
    for (const auto& [name, v] : f)
        EXPECT_TRUE(std::isfinite(v)) << name;
}

// What the features are for: telling configs apart far faster than compiling them.
TEST(Features, FeaturizingIsCheaperThanCompiling) {
    Target t = host_target();
    Workload w = Workload::from_shape("conv2d", "c=32,h=14,w=14,k=32,r=3,s=3,pad=1");
    ScheduleSpace sp = find_space("conv2d").space(w, t);
    Config c = sp.default_config;
    LoopNestSummary s = summarize_loop_nest(w, c, t);
    auto kernel = compile_kernel(w, c, t);
    EXPECT_LT(s.lower_seconds, kernel->compile_seconds)
        << "lowering " << s.lower_seconds << " s, compiling " << kernel->compile_seconds << " s";
}

TEST(Features, InvalidConfigIsRefused) {
    Target t = host_target();
    Workload w = dense_workload();
    Config bad;
    bad.set("nope", int64_t{1});
    EXPECT_THROW(summarize_loop_nest(w, bad, t), kiln::Error);
}

}  // namespace
}  // namespace kiln
