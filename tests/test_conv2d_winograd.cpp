// Winograd conv2d: random configs over small odd shapes against the scalar reference, the
// defaults of both tile sizes on awkward shapes, accuracy at many input channels, and the
// space's constraints.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/op.h"
#include "core/workload.h"
#include "schedules/conv2d_algorithms.h"
#include "schedules/verify.h"

using namespace kiln;

namespace {

// The conv2d space as schedules/conv2d.cpp builds it, reduced to the Winograd algorithms.
ScheduleSpace winograd_space(const Workload& w, const Target& t, const std::string& algorithm) {
    ScheduleSpace space;
    space.op = "conv2d";
    space.knobs.push_back({"algorithm", "", name_domain({"winograd2", "winograd4"}), nullptr});
    space.default_config.set("algorithm", algorithm);
    add_winograd_knobs(space, w, t, true);
    return space;
}

// Compiles and verifies; the message names everything needed to replay a failure.
void expect_matches_reference(const Workload& w, const Config& c, const Target& t, uint64_t seed,
                              double tolerance = kF32Tolerance) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " " + w.key() + " " + c.to_string());
    auto kernel = make_halide_kernel(w, winograd_conv2d(w, c, t), t);
    VerifyResult r = verify_kernel(w, *kernel, seed);
    EXPECT_TRUE(r.ok(tolerance)) << "relative error " << r.relative_error << " (max abs error "
                                 << r.max_abs_error << ", finite " << r.finite << ")";
}

Workload random_workload(std::mt19937_64& rng) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    static const char* kEpilogues[] = {"", "bias", "relu", "bias+add+relu", "add", "clip-0.5:0.75"};
    std::string shape =
        "n=2,c=" + std::to_string(pick(1, 37)) + ",h=" + std::to_string(pick(3, 13)) +
        ",w=" + std::to_string(pick(3, 13)) + ",k=" + std::to_string(pick(1, 41)) +
        ",r=3,s=3,pad=" + std::to_string(pick(0, 1)) + "x" + std::to_string(pick(0, 1)) + "x" +
        std::to_string(pick(0, 1)) + "x" + std::to_string(pick(0, 1));
    return Workload::from_shape("conv2d", shape, DType::f32,
                                Epilogue::parse(kEpilogues[pick(0, 5)]));
}

}  // namespace

TEST(Conv2dWinograd, AppliesOnlyTo3x3Stride1) {
    EXPECT_TRUE(winograd_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=3,s=3,pad=1")));
    EXPECT_FALSE(
        winograd_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=3,s=3,stride=2,pad=1")));
    EXPECT_FALSE(winograd_applies(
        Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=3,s=3,dilation=2,pad=2")));
    EXPECT_FALSE(
        winograd_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=3,s=3,groups=2,pad=1")));
    EXPECT_FALSE(winograd_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=1,s=1")));
    EXPECT_FALSE(winograd_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=5,s=5")));
}

TEST(Conv2dWinograd, RandomConfigsMatchReference) {
    Target t = host_target();
    std::mt19937_64 rng(20240611);
    for (int trial = 0; trial < 50; ++trial) {
        Workload w = random_workload(rng);
        ScheduleSpace space = winograd_space(w, t, trial % 2 ? "winograd4" : "winograd2");
        Config c = space.sample(rng);
        ASSERT_FALSE(space.check(c)) << *space.check(c);
        expect_matches_reference(w, c, t, 1000 + trial);
    }
}

// Blocking follows the target: 8 lanes and 16 registers under AVX2 instead of 16 and 32.
TEST(Conv2dWinograd, NarrowerTargetMatchesReference) {
    Target t = parse_target("x86-64-linux-avx2");
    if (!t.is_host) GTEST_SKIP() << "this host cannot run AVX2 code";
    ASSERT_EQ(t.f32_lanes(), 8);
    std::mt19937_64 rng(99);
    for (int trial = 0; trial < 4; ++trial) {
        Workload w = random_workload(rng);
        ScheduleSpace space = winograd_space(w, t, trial % 2 ? "winograd4" : "winograd2");
        Config c = trial == 0 ? space.default_config : space.sample(rng);
        ASSERT_FALSE(space.check(c)) << *space.check(c);
        EXPECT_EQ(c.i("wino_kb") % 8, 0);
        expect_matches_reference(w, c, t, 2000 + trial);
    }
}

TEST(Conv2dWinograd, DefaultsOnAwkwardShapes) {
    Target t = host_target();
    for (std::string shape :
         {"n=2,c=3,h=3,w=3,k=5,r=3,s=3,pad=1", "n=1,c=7,h=5,w=7,k=19,r=3,s=3,pad=1x0x0x1",
          "n=2,c=17,h=9,w=11,k=33,r=3,s=3,pad=0", "n=1,c=20,h=15,w=14,k=40,r=3,s=3,pad=1"}) {
        Workload w =
            Workload::from_shape("conv2d", shape, DType::f32, Epilogue::parse("bias+add+relu"));
        for (std::string algorithm : {"winograd2", "winograd4"}) {
            ScheduleSpace space = winograd_space(w, t, algorithm);
            ASSERT_FALSE(space.check(space.default_config)) << *space.check(space.default_config);
            expect_matches_reference(w, space.default_config, t, 7);
        }
    }
}

TEST(Conv2dWinograd, AccurateAtManyInputChannels) {
    Target t = host_target();
    Workload w = Workload::from_shape("conv2d", "n=1,c=512,h=8,w=8,k=24,r=3,s=3,pad=1");
    for (std::string algorithm : {"winograd2", "winograd4"}) {
        ScheduleSpace space = winograd_space(w, t, algorithm);
        expect_matches_reference(w, space.default_config, t, 11);
    }
}

// r50_l4's case, on an odd shape: few tiles and a U panel larger than L1 take one vector of
// output channels against every tile, V stored tiles-innermost, and a prefetch of U.
TEST(Conv2dWinograd, FewTilesManyChannelsDefault) {
    Target t = host_target();
    Workload w = Workload::from_shape("conv2d", "n=1,c=530,h=7,w=6,k=37,r=3,s=3,pad=1", DType::f32,
                                      Epilogue::parse("bias+relu"));
    ScheduleSpace space = winograd_space(w, t, "winograd2");
    const Config& c = space.default_config;
    ASSERT_FALSE(space.check(c)) << *space.check(c);
    EXPECT_EQ(c.i("wino_kb"), t.f32_lanes());
    EXPECT_EQ(c.i("wino_pt"), 12);  // 4 x 3 tiles
    EXPECT_EQ(c.s("wino_v_vector"), "tiles");
    EXPECT_EQ(c.s("wino_v_at"), "root");
    EXPECT_GT(c.i("wino_prefetch"), 0);
    expect_matches_reference(w, c, t, 13);
}

TEST(Conv2dWinograd, ConstraintsExplainRejections) {
    Target t = host_target();
    Workload w = Workload::from_shape("conv2d", "c=64,h=56,w=56,k=64,r=3,s=3,pad=1");
    ScheduleSpace space = winograd_space(w, t, "winograd4");
    Config c = space.default_config;
    c.set("wino_kb", int64_t{4 * t.f32_lanes()});
    c.set("wino_pt", int64_t{14});
    auto why = space.check(c);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("vector registers"), std::string::npos) << *why;

    c = space.default_config;
    c.set("wino_order", std::string("channels"));
    c.set("wino_v_at", std::string("group"));
    c.set("wino_kg", int64_t{1});
    why = space.check(c);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("input transform"), std::string::npos) << *why;
}
