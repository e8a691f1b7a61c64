// depthwise_conv2d: the op definition, its schedule space, and compiled kernels checked against
// the scalar reference on random shapes and random configs. A failure prints the seed, the
// workload key and the config, which replay it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <random>
#include <string>

#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "schedules/kernel.h"
#include "schedules/verify.h"
#include "targets/target.h"
#include "tests/test_util.h"

using namespace kiln;
using kiln::testing::error_field;

namespace {

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

Epilogue random_epilogue(std::mt19937_64& rng) {
    static const char* kChoices[] = {"",    "bias",          "relu",          "bias+relu6",
                                     "add", "bias+add+relu", "clip-0.5:0.25", "bias+add"};
    std::string text = kChoices[uniform(rng, 0, 7)];
    return text.empty() ? Epilogue{} : Epilogue::parse(text);
}

// A small valid depthwise workload: odd sizes, strides, dilations, asymmetric pads, channel
// multipliers, batches and epilogues all come up.
Workload random_workload(std::mt19937_64& rng) {
    for (;;) {
        int64_t c = uniform(rng, 1, 20), mult = uniform(rng, 0, 3) == 0 ? uniform(rng, 2, 3) : 1;
        int64_t r = uniform(rng, 1, 5), s = uniform(rng, 1, 5);
        std::string shape =
            "n=" + std::to_string(uniform(rng, 1, 2)) + ",c=" + std::to_string(c) +
            ",k=" + std::to_string(c * mult) + ",h=" + std::to_string(uniform(rng, 1, 21)) +
            ",w=" + std::to_string(uniform(rng, 1, 37)) + ",r=" + std::to_string(r) +
            ",s=" + std::to_string(s) + ",stride=" + std::to_string(uniform(rng, 1, 3)) + "x" +
            std::to_string(uniform(rng, 1, 3)) + ",dilation=" + std::to_string(uniform(rng, 1, 3)) +
            "x" + std::to_string(uniform(rng, 1, 3)) + ",pad=";
        for (int side = 0; side < 4; ++side)
            shape += std::to_string(uniform(rng, 0, 2)) + (side < 3 ? "x" : "");
        try {
            return Workload::from_shape("depthwise_conv2d", shape, DType::f32,
                                        random_epilogue(rng));
        } catch (const Error&) {
            // Kernel larger than the padded input: draw again.
        }
    }
}

void expect_correct(const Workload& w, const Config& c, uint64_t seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " " + w.key() + " " + c.to_string());
    std::unique_ptr<Kernel> kernel;
    try {
        kernel = compile_kernel(w, c, host_target());
    } catch (const std::exception& e) {
        ADD_FAILURE() << "compile failed: " << e.what();
        return;
    }
    VerifyResult r;
    try {
        r = verify_kernel(w, *kernel, seed);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "run failed: " << e.what();
        return;
    }
    EXPECT_TRUE(r.ok(kF32Tolerance))
        << "relative error " << r.relative_error << (r.finite ? "" : " (non-finite output)");
}

}  // namespace

TEST(DepthwiseConv2d, KeyAndShapes) {
    Workload w = Workload::from_shape("depthwise_conv2d", "c=32,h=112,w=112,k=32,r=3,s=3,pad=1");
    EXPECT_EQ(w.key(), "depthwise_conv2d/n1c32h112w112/k32r3s3/st1p1d1/f32");
    EXPECT_EQ(Workload::parse_key(w.key()), w);

    Workload m =
        Workload::parse_key("depthwise_conv2d/n2c3h9w8/k6r3s2/st2x1p1x0x0x1d1x2/f32/bias+relu6");
    ASSERT_EQ(m.inputs().size(), 3u);
    EXPECT_EQ(m.inputs()[1].shape, (std::vector<int64_t>{6, 1, 3, 2}));
    EXPECT_EQ(m.inputs()[2].shape, (std::vector<int64_t>{6}));
    // oh = (9 + 1 + 0 - 3) / 2 + 1 = 4; ow = (8 + 0 + 1 - 3) / 1 + 1 = 7.
    EXPECT_EQ(m.output().shape, (std::vector<int64_t>{2, 6, 4, 7}));
    EXPECT_DOUBLE_EQ(m.def().flops(m), 2.0 * 2 * 6 * 4 * 7 * 3 * 2);
    EXPECT_FALSE(find_op("depthwise_conv2d").example().empty());
    Workload::from_shape("depthwise_conv2d", find_op("depthwise_conv2d").example());
}

TEST(DepthwiseConv2d, InvalidWorkloadsNameTheField) {
    auto make = [](const std::string& shape) {
        return [shape] { Workload::from_shape("depthwise_conv2d", shape); };
    };
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=6,r=3,s=3")), "k");
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=0,r=3,s=3")), "k");
    EXPECT_EQ(error_field(make("c=0,h=5,w=5,k=4,r=3,s=3")), "c");
    EXPECT_EQ(error_field(make("c=4,h=0,w=5,k=4,r=3,s=3")), "h");
    EXPECT_EQ(error_field(make("c=4,h=5,w=0,k=4,r=3,s=3")), "w");
    EXPECT_EQ(error_field(make("n=0,c=4,h=5,w=5,k=4,r=3,s=3")), "n");
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=4,r=0,s=3")), "r");
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=4,r=3,s=3,stride=0")), "stride");
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=4,r=3,s=3,pad=-1")), "pad");
    EXPECT_EQ(error_field(make("c=4,h=2,w=5,k=4,r=3,s=3")), "r");
    EXPECT_EQ(error_field(make("c=4,h=5,w=2,k=4,r=3,s=3,pad=0x0x1x0")), "s");
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=4,r=3,s=3,dilation=3")), "r");
    EXPECT_EQ(error_field(make("c=4,h=5,w=5,k=4,r=3,s=3,groups=4")), "groups");
    std::string message;
    try {
        Workload::from_shape("depthwise_conv2d", "c=4,h=5,w=5,k=6,r=3,s=3");
    } catch (const Error& e) {
        message = e.what();
    }
    EXPECT_NE(message.find("multiple"), std::string::npos) << message;
}

TEST(DepthwiseConv2d, SpaceRejectsWithReasons) {
    Target t = host_target();
    Workload w = Workload::from_shape("depthwise_conv2d", "c=8,h=6,w=6,k=8,r=3,s=3,pad=1");
    ScheduleSpace sp = find_space(w.op).space(w, t);
    ASSERT_FALSE(sp.check(sp.default_config));
    Config wide = sp.default_config;
    wide.set("layout", std::string("nchw_x"));
    wide.values.erase("channel_block");
    wide.values.erase("x_pixels");
    wide.set("vector", int64_t{4});
    wide.set("x_vectors", int64_t{2});
    wide.set("pad_at", std::string("strip"));
    auto why = sp.check(wide);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("wider than the output"), std::string::npos) << *why;
    EXPECT_THROW(compile_kernel(w, wide, t), Error);

    // Too narrow for a vector along the width: only the channel-blocked layout remains.
    Workload narrow = Workload::from_shape("depthwise_conv2d", "c=8,h=6,w=3,k=8,r=3,s=3");
    ScheduleSpace nsp = find_space(w.op).space(narrow, t);
    EXPECT_EQ(nsp.find("layout")->domain.size(), 1u);
    EXPECT_EQ(nsp.default_config.s("layout"), "nchwc");
    // No padding: the copy's placement does not matter for nchw_x, so the knob is inactive.
    Workload unpadded = Workload::from_shape("depthwise_conv2d", "c=8,h=16,w=40,k=8,r=3,s=3");
    ScheduleSpace usp = find_space(w.op).space(unpadded, t);
    EXPECT_EQ(usp.default_config.s("layout"), "nchw_x");
    EXPECT_FALSE(usp.default_config.has("pad_at"));
}

// The defaults for the MobileNetV2 layers are decisions: pin them per target, so a change to the
// hand rules shows up here.
TEST(DepthwiseConv2d, DefaultsPinnedForMobileNetV2) {
    Target avx512 = parse_target("x86-64-linux-avx512");
    auto default_of = [](const std::string& shape, const Target& t) {
        Workload w = Workload::from_shape("depthwise_conv2d", shape);
        return find_space(w.op).space(w, t).default_config.to_string();
    };
    EXPECT_EQ(default_of("c=32,h=112,w=112,k=32,r=3,s=3,pad=1", avx512),
              R"({"grain":1,"layout":"nchw_x","pad_at":"strip","parallel":"channels","rows":16,)"
              R"("tile_h":8,"unroll_taps":1,"vector":16,"x_vectors":1})");
    EXPECT_EQ(default_of("c=96,h=112,w=112,k=96,r=3,s=3,stride=2,pad=1", avx512),
              R"({"grain":1,"layout":"nchw_x","pad_at":"strip","parallel":"channels","rows":8,)"
              R"("tile_h":8,"unroll_taps":1,"vector":16,"x_vectors":1})");
    EXPECT_EQ(default_of("c=384,h=14,w=14,k=384,r=3,s=3,pad=1", avx512),
              R"({"channel_block":16,"grain":1,"layout":"nchwc","pad_at":"strip",)"
              R"("parallel":"channels","rows":14,"tile_h":2,"unroll_taps":1,"vector":16,)"
              R"("x_pixels":2})");
    // AVX2 blocks for 8 lanes and 16 registers; every default stays valid there too.
    Target avx2 = parse_target("x86-64-linux-avx2");
    for (const char* shape : {"c=32,h=112,w=112,k=32,r=3,s=3,pad=1",
                              "c=384,h=14,w=14,k=384,r=3,s=3,pad=1", "c=3,h=5,w=2,k=6,r=2,s=2"}) {
        Workload w = Workload::from_shape("depthwise_conv2d", shape);
        ScheduleSpace sp = find_space(w.op).space(w, avx2);
        EXPECT_FALSE(sp.check(sp.default_config)) << shape;
        EXPECT_EQ(sp.default_config.i("vector"), 8) << shape;
    }
}

// Small analogues of the MobileNetV2 depthwise layers (same strides, pads, kernel; fewer
// channels and pixels), with the epilogues they are fused with.
TEST(DepthwiseConv2d, DefaultConfigIsCorrectOnLayerAnalogues) {
    Target t = host_target();
    const char* kShapes[][2] = {
        {"c=16,h=28,w=28,k=16,r=3,s=3,pad=1", "bias+relu6"},           // mv2_dw_112
        {"c=24,h=28,w=28,k=24,r=3,s=3,stride=2,pad=1", "bias+relu6"},  // mv2_dw_112_s2
        {"c=36,h=14,w=14,k=36,r=3,s=3,pad=1", "relu6"},                // mv2_dw_56
        {"c=48,h=7,w=7,k=48,r=3,s=3,pad=1", ""},                       // mv2_dw_14
        {"c=17,h=15,w=13,k=17,r=3,s=3,stride=2,pad=1", "bias+add"},
    };
    uint64_t seed = 1;
    for (const auto& shape : kShapes) {
        Epilogue e = *shape[1] ? Epilogue::parse(shape[1]) : Epilogue{};
        Workload w = Workload::from_shape("depthwise_conv2d", shape[0], DType::f32, e);
        ScheduleSpace sp = find_space(w.op).space(w, t);
        ASSERT_FALSE(sp.check(sp.default_config)) << w.key();
        expect_correct(w, sp.default_config, seed++);
    }
}

TEST(DepthwiseConv2d, SampledConfigsMatchReference) {
    Target t = host_target();
    constexpr int kCases = 72;
    int strided = 0, dilated = 0, multiplied = 0, asymmetric = 0, nchwc = 0, nchw_x = 0;
    for (uint64_t seed = 1; seed <= kCases; ++seed) {
        std::mt19937_64 rng(seed * 7919);
        Workload w = random_workload(rng);
        ScheduleSpace sp = find_space(w.op).space(w, t);
        Config c = sp.sample(rng);
        ASSERT_FALSE(sp.check(c)) << "seed " << seed << " " << w.key() << " " << c.to_string();
        expect_correct(w, c, seed);
        const auto& pad = w.values("pad");
        strided += w.get("stride", 0) > 1 || w.get("stride", 1) > 1;
        dilated += w.get("dilation", 0) > 1 || w.get("dilation", 1) > 1;
        multiplied += w.get("k") > w.get("c");
        asymmetric += pad[0] != pad[2] || pad[1] != pad[3];
        (c.s("layout") == "nchwc" ? nchwc : nchw_x)++;
    }
    // The draw must exercise what it claims to.
    EXPECT_GE(strided, 10);
    EXPECT_GE(dilated, 10);
    EXPECT_GE(multiplied, 5);
    EXPECT_GE(asymmetric, 10);
    EXPECT_GE(nchwc, 10);
    EXPECT_GE(nchw_x, 10);
}

// Strided width loads from Halide's own allocations once faulted (an aligned vmovaps at an
// unaligned address) on these; the phased copy keeps every tap load dense.
TEST(DepthwiseConv2d, StridedWidthWithTallTiles) {
    Target t = host_target();
    auto config = [&](int64_t tile_h, int64_t rows) {
        Config c;
        c.set("layout", std::string("nchw_x"));
        c.set("vector", int64_t{t.f32_lanes()});
        c.set("x_vectors", int64_t{1});
        c.set("tile_h", tile_h);
        c.set("rows", rows);
        c.set("pad_at", std::string("strip"));
        c.set("parallel", std::string("strips"));
        c.set("grain", int64_t{1});
        c.set("unroll_taps", int64_t{1});
        return c;
    };
    expect_correct(Workload::parse_key(
                       "depthwise_conv2d/n1c7h11w54/k7r4s5/st1x3p2x2x3x1d2x1/f32/clip-0.5:0.25"),
                   config(8, 10), 100);
    expect_correct(
        Workload::parse_key("depthwise_conv2d/n2c14h12w68/k14r4s5/st1x2p0x0x1x2d3/f32/add"),
        config(4, 4), 101);
}

// Channel-blocked input, output and residual (Workload::layout), in every mix, with channel
// multipliers and blocks of the vector width and of half of it: the default config and a
// sampled one of each workload against the scalar reference, which reads the same layouts.
TEST(DepthwiseConv2d, BlockedLayoutsMatchReference) {
    Target t = host_target();
    const int64_t lanes = t.f32_lanes();
    int multiplied = 0, blocked_in = 0, blocked_out = 0, blocked_res = 0;
    for (uint64_t seed = 1; seed <= 16; ++seed) {
        std::mt19937_64 rng(seed * 104729);
        const int64_t b = seed % 3 == 0 ? lanes / 2 : lanes;
        const int64_t c = b * uniform(rng, 1, 2), mult = seed % 4 == 0 ? 2 : 1;
        const int64_t r = 2 * uniform(rng, 0, 2) + 1, stride = uniform(rng, 1, 2);
        const std::string shape =
            "n=" + std::to_string(uniform(rng, 1, 2)) + ",c=" + std::to_string(c) +
            ",k=" + std::to_string(c * mult) + ",h=" + std::to_string(uniform(rng, r, 17)) +
            ",w=" + std::to_string(uniform(rng, r, 23)) + ",r=" + std::to_string(r) +
            ",s=" + std::to_string(r) + ",stride=" + std::to_string(stride) +
            ",pad=" + std::to_string(uniform(rng, 0, r / 2));
        const bool residual = seed % 2 == 0;
        Workload w = Workload::from_shape("depthwise_conv2d", shape, DType::f32,
                                          Epilogue::parse(residual ? "bias+add+relu6" : "relu"));
        w.layout.input = seed & 1 ? b : 0;
        w.layout.output = seed & 2 ? b : 0;
        w.layout.residual = residual && seed & 4 ? b : 0;
        if (w.layout.plain()) w.layout.output = b;
        w.validate();
        multiplied += mult > 1;
        blocked_in += w.layout.input != 0;
        blocked_out += w.layout.output != 0;
        blocked_res += w.layout.residual != 0;
        ScheduleSpace sp = find_space(w.op).space(w, t);
        ASSERT_FALSE(sp.check(sp.default_config)) << w.key();
        expect_correct(w, sp.default_config, seed);
        Config sampled = sp.sample(rng);
        ASSERT_FALSE(sp.check(sampled)) << w.key() << " " << sampled.to_string();
        EXPECT_EQ(sampled.s("layout"), "nchwc") << w.key();
        expect_correct(w, sampled, seed + 1000);
    }
    EXPECT_GE(multiplied, 3);
    EXPECT_GE(blocked_in, 6);
    EXPECT_GE(blocked_out, 6);
    EXPECT_GE(blocked_res, 2);
}

TEST(DepthwiseConv2d, BlockedWorkloadsComputeInTheirBlocks) {
    Target t = host_target();
    const int64_t b = t.f32_lanes();
    Workload w = Workload::from_shape(
        "depthwise_conv2d",
        "c=" + std::to_string(2 * b) + ",h=28,w=28,k=" + std::to_string(2 * b) + ",r=3,s=3,pad=1");
    w.layout.input = b;
    w.layout.output = b;
    ScheduleSpace sp = find_space(w.op).space(w, t);
    EXPECT_EQ(sp.default_config.s("layout"), "nchwc");
    EXPECT_EQ(sp.default_config.i("channel_block"), b);
    Config other = sp.default_config;
    other.set("channel_block", b / 2);
    auto why = sp.check(other);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("channel_block"), std::string::npos) << *why;
    Config x = sp.default_config;
    x.set("layout", std::string("nchw_x"));
    EXPECT_TRUE(sp.check(x).has_value());
    // The channels of a blocked tensor are whole blocks.
    Workload odd = Workload::from_shape(
        "depthwise_conv2d",
        "c=" + std::to_string(b + 1) + ",h=8,w=8,k=" + std::to_string(b + 1) + ",r=3,s=3,pad=1");
    odd.layout.output = b;
    EXPECT_EQ(error_field([&] { odd.validate(); }), "layout");
}

// A row tile shifted back inside its strip, with the input copied row tile by row tile: Halide's
// sliding window then read the row before the input (a run-time error). The space rejects the
// combination; the same tiles with the copy per strip compute correctly.
TEST(DepthwiseConv2d, ShiftedRowTilesDoNotSlideTheCopy) {
    Target t = host_target();
    Workload w = Workload::parse_key("depthwise_conv2d/n1c32h13w9/k32r1s1/st2p0d1/f32/relu");
    ScheduleSpace sp = find_space(w.op).space(w, t);
    Config c = Config::from_json(nlohmann::json::parse(
        R"({"channel_block":16,"grain":8,"layout":"nchwc","pad_at":"tile_rows",
            "parallel":"channels","rows":7,"tile_h":2,"unroll_taps":0,"vector":4,"x_pixels":1})"));
    auto why = sp.check(c);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("whole row tiles"), std::string::npos) << *why;
    c.set("pad_at", std::string("strip"));
    ASSERT_FALSE(sp.check(c)) << *sp.check(c);
    expect_correct(w, c, 7);
}
