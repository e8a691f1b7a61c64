// conv2d's direct_x algorithm (vectorized over output columns): random configs over small odd
// shapes with few input channels against the scalar reference, a narrower target, the default
// on the network stems, and the space's constraints.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "schedules/conv2d_algorithms.h"
#include "schedules/verify.h"

using namespace kiln;

namespace {

// The conv2d space as schedules/conv2d.cpp builds it, reduced to direct_x.
ScheduleSpace direct_x_space(const Workload& w, const Target& t) {
    ScheduleSpace space;
    space.op = "conv2d";
    space.knobs.push_back({"algorithm", "", name_domain({"direct_x"}), nullptr});
    space.default_config.set("algorithm", std::string("direct_x"));
    add_direct_x_knobs(space, w, t, true);
    return space;
}

// Compiles and verifies; the message names everything needed to replay a failure.
void expect_matches_reference(const Workload& w, const Config& c, const Target& t, uint64_t seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " " + w.key() + " " + c.to_string());
    auto kernel = make_halide_kernel(w, direct_x_conv2d(w, c, t), t);
    VerifyResult r = verify_kernel(w, *kernel, seed);
    EXPECT_TRUE(r.ok(kF32Tolerance)) << "relative error " << r.relative_error << " (max abs error "
                                     << r.max_abs_error << ", finite " << r.finite << ")";
}

// Few input channels, odd sizes, strides 1 to 3, asymmetric padding, dilation, batch 2.
Workload random_workload(std::mt19937_64& rng) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    static const char* kEpilogues[] = {"",    "bias",  "relu",         "bias+add+relu",
                                       "add", "relu6", "clip-0.5:0.75"};
    static const int kKernels[] = {1, 2, 3, 5, 7};
    for (;;) {
        std::string shape =
            "n=" + std::to_string(pick(1, 2)) + ",c=" + std::to_string(pick(1, 8)) +
            ",h=" + std::to_string(pick(3, 21)) + ",w=" + std::to_string(pick(3, 41)) +
            ",k=" + std::to_string(pick(1, 20)) + ",r=" + std::to_string(kKernels[pick(0, 4)]) +
            ",s=" + std::to_string(kKernels[pick(0, 4)]) + ",stride=" + std::to_string(pick(1, 3)) +
            "x" + std::to_string(pick(1, 3)) + ",pad=" + std::to_string(pick(0, 3)) + "x" +
            std::to_string(pick(0, 3)) + "x" + std::to_string(pick(0, 2)) + "x" +
            std::to_string(pick(0, 2)) + ",dilation=" + std::to_string(pick(1, 2)) + "x" +
            std::to_string(pick(1, 2));
        try {
            return Workload::from_shape("conv2d", shape, DType::f32,
                                        Epilogue::parse(kEpilogues[pick(0, 6)]));
        } catch (const Error&) {
            continue;  // kernel larger than the padded input: draw again
        }
    }
}

}  // namespace

TEST(Conv2dDirectX, AppliesOnlyToFewChannelsUngrouped) {
    EXPECT_TRUE(direct_x_applies(
        Workload::from_shape("conv2d", "c=3,h=224,w=224,k=64,r=7,s=7,stride=2,pad=3")));
    EXPECT_TRUE(direct_x_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=3,s=3")));
    EXPECT_FALSE(direct_x_applies(Workload::from_shape("conv2d", "c=9,h=9,w=9,k=8,r=3,s=3")));
    EXPECT_FALSE(
        direct_x_applies(Workload::from_shape("conv2d", "c=8,h=9,w=9,k=8,r=3,s=3,groups=2")));
}

TEST(Conv2dDirectX, RandomConfigsMatchReference) {
    Target t = host_target();
    std::mt19937_64 rng(20261121);
    for (int trial = 0; trial < 60; ++trial) {
        Workload w = random_workload(rng);
        ScheduleSpace space = direct_x_space(w, t);
        ASSERT_FALSE(space.check(space.default_config)) << *space.check(space.default_config);
        Config c = trial % 6 == 0 ? space.default_config : space.sample(rng);
        ASSERT_FALSE(space.check(c)) << *space.check(c);
        expect_matches_reference(w, c, t, 3000 + trial);
    }
}

// Tiles over the image seen as one long row of vectors, spanning rows (rows of whole vectors
// only): drawn on shapes whose output width is a multiple of 4.
TEST(Conv2dDirectX, ImageTilesMatchReference) {
    Target t = host_target();
    std::mt19937_64 rng(424242);
    int done = 0;
    for (int trial = 0; done < 12 && trial < 200; ++trial) {
        Workload w = random_workload(rng);
        ScheduleSpace space = direct_x_space(w, t);
        for (int i = 0; i < 200; ++i) {
            Config c = space.sample(rng);
            if (c.s("dx_tiles") != "image") continue;
            ASSERT_FALSE(space.check(c)) << *space.check(c);
            expect_matches_reference(w, c, t, 5000 + trial);
            ++done;
            break;
        }
    }
    EXPECT_EQ(done, 12) << "too few shapes admit image tiles";
}

// Blocking follows the target: 8 lanes and 16 registers under AVX2 instead of 16 and 32.
TEST(Conv2dDirectX, NarrowerTargetMatchesReference) {
    Target t = parse_target("x86-64-linux-avx2");
    if (!t.is_host) GTEST_SKIP() << "this host cannot run AVX2 code";
    std::mt19937_64 rng(77);
    for (int trial = 0; trial < 4; ++trial) {
        Workload w = random_workload(rng);
        ScheduleSpace space = direct_x_space(w, t);
        Config c = trial == 0 ? space.default_config : space.sample(rng);
        ASSERT_FALSE(space.check(c)) << *space.check(c);
        EXPECT_LE(c.i("dx_vector"), 8);
        expect_matches_reference(w, c, t, 4000 + trial);
    }
}

// The stems of ResNet-50 and MobileNetV2 default to direct_x, and so does a VGG-style first
// layer (3x3 stride 1, where Winograd also applies); a layer with many input channels
// never offers it. Small stems with the same structure compute correctly by default.
TEST(Conv2dDirectX, DefaultOnStems) {
    Target t = host_target();
    for (const char* shape :
         {"c=3,h=224,w=224,k=64,r=7,s=7,stride=2,pad=3",
          "c=3,h=224,w=224,k=32,r=3,s=3,stride=2,pad=1", "c=3,h=224,w=224,k=64,r=3,s=3,pad=1"}) {
        ScheduleSpace sp = find_space("conv2d").space(Workload::from_shape("conv2d", shape), t);
        EXPECT_EQ(sp.default_config.s("algorithm"), "direct_x") << shape;
    }
    ScheduleSpace wide = find_space("conv2d").space(
        Workload::from_shape("conv2d", "c=64,h=56,w=56,k=64,r=3,s=3,pad=1"), t);
    for (const KnobValue& v : wide.find("algorithm")->domain)
        EXPECT_NE(to_string(v), "direct_x");

    for (const char* shape : {"n=2,c=3,h=45,w=45,k=19,r=7,s=7,stride=2,pad=3",
                              "n=1,c=3,h=37,w=37,k=32,r=3,s=3,stride=2,pad=1"}) {
        Workload w =
            Workload::from_shape("conv2d", shape, DType::f32, Epilogue::parse("bias+add+relu"));
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        ASSERT_EQ(sp.default_config.s("algorithm"), "direct_x") << shape;
        expect_matches_reference(w, sp.default_config, t, 9);
    }
}

TEST(Conv2dDirectX, ConstraintsExplainRejections) {
    Target t = host_target();
    Workload w = Workload::from_shape("conv2d", "c=3,h=224,w=224,k=64,r=7,s=7,stride=2,pad=3");
    ScheduleSpace space = direct_x_space(w, t);
    Config c = space.default_config;
    c.set("dx_tile_k", int64_t{t.vector_registers() - 4});
    c.set("dx_tile_x", int64_t{2});
    auto why = space.check(c);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("vector registers"), std::string::npos) << *why;

    Workload narrow = Workload::from_shape("conv2d", "c=3,h=20,w=20,k=8,r=3,s=3,pad=1");
    ScheduleSpace sp = direct_x_space(narrow, t);
    c = sp.default_config;
    c.set("dx_tiles", std::string("row"));
    c.set("dx_vector", int64_t{t.f32_lanes()});
    c.set("dx_tile_x", int64_t{20 / t.f32_lanes() + 2});
    c.set("dx_tile_k", int64_t{1});
    why = sp.check(c);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("column tile"), std::string::npos) << *why;

    // 20 output columns are 5 vectors of 4 but not whole vectors of 8.
    c.set("dx_tiles", std::string("image"));
    c.set("dx_vector", int64_t{8});
    c.set("dx_tile_x", int64_t{1});
    why = sp.check(c);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("whole vectors"), std::string::npos) << *why;
    c.set("dx_vector", int64_t{4});
    EXPECT_FALSE(sp.check(c)) << *sp.check(c);
}
