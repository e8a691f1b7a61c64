// Workload keys, validation, JSON round trips, configs and schedule spaces.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "schedules/space.h"
#include "tests/test_util.h"

using namespace kiln;
using kiln::testing::error_field;

namespace {}  // namespace

TEST(Workload, KeyMatchesDesign) {
    Workload w = Workload::from_shape("conv2d", "n=1,c=64,h=56,w=56,k=64,r=3,s=3,stride=1,pad=1",
                                      DType::f32, Epilogue::parse("bias+relu"));
    EXPECT_EQ(w.key(), "conv2d/n1c64h56w56/k64r3s3/st1p1d1g1/f32/bias+relu");
}

TEST(Workload, KeyRoundTripsAsymmetricAndEpilogues) {
    for (std::string key : {"conv2d/n2c6h9w7/k4r3s2/st2x1p1x0x0x1d2x1g2/f32",
                            "conv2d/n1c3h224w224/k64r7s7/st2p3d1g1/f32/bias+add+relu6",
                            "conv2d/n1c8h5w5/k8r1s1/st1p0d1g1/f32/clip-1:1.5"}) {
        Workload w = Workload::parse_key(key);
        EXPECT_EQ(w.key(), key);
    }
    Workload w = Workload::parse_key("conv2d/n2c6h9w7/k4r3s2/st2x1p1x0x0x1d2x1g2/f32");
    EXPECT_EQ(w.values("pad"), (std::vector<int64_t>{1, 0, 0, 1}));
    EXPECT_EQ(w.values("stride"), (std::vector<int64_t>{2, 1}));
    EXPECT_EQ(w.output().shape, (std::vector<int64_t>{2, 4, 3, 7}));
}

TEST(Workload, JsonRoundTrip) {
    Workload w = Workload::parse_key("conv2d/n1c16h10w12/k8r3s3/st2p1x0x1x1d1g4/f32/bias+relu");
    Workload back = Workload::from_json(nlohmann::json::parse(w.to_json().dump()));
    EXPECT_EQ(back, w);
    EXPECT_EQ(back.key(), w.key());
}

TEST(Workload, FlopsCountMultiplyAddAsTwo) {
    Workload w = Workload::from_shape("conv2d", "c=64,h=56,w=56,k=64,r=3,s=3,pad=1");
    EXPECT_DOUBLE_EQ(w.flops(), 2.0 * 64 * 56 * 56 * 64 * 9);
}

TEST(Workload, InvalidWorkloadsNameTheField) {
    EXPECT_EQ(error_field([] { Workload::from_shape("conv2d", "c=0,h=5,w=5,k=4,r=3,s=3"); }), "c");
    EXPECT_EQ(error_field([] { Workload::from_shape("conv2d", "c=4,h=-5,w=5,k=4,r=3,s=3"); }), "h");
    EXPECT_EQ(
        error_field([] { Workload::from_shape("conv2d", "c=6,h=5,w=5,k=4,r=1,s=1,groups=4"); }),
        "groups");
    EXPECT_EQ(error_field([] { Workload::from_shape("conv2d", "c=4,h=2,w=5,k=4,r=3,s=3"); }), "r");
    EXPECT_EQ(error_field([] { Workload::from_shape("conv2d", "c=4,h=5,w=5,k=4,r=3"); }), "s");
    EXPECT_EQ(
        error_field([] { Workload::from_shape("conv2d", "c=4,h=5,w=5,k=4,r=3,s=3,bogus=1"); }),
        "bogus");
    EXPECT_EQ(
        error_field([] { Workload::from_shape("conv2d", "c=4,h=5,w=5,k=4,r=3,s=3,pad=1x1"); }),
        "pad");
    EXPECT_EQ(error_field([] { Workload::from_shape("nope", ""); }), "op");
    EXPECT_EQ(error_field([] { Workload::parse_key("conv2d/n1c4h5w5/k4r3s3/st1p1d1g1/f99"); }),
              "key");
    EXPECT_EQ(error_field([] { Epilogue::parse("bias+gelu"); }), "epilogue");
}

TEST(Config, JsonAndStableHash) {
    Config c;
    c.set("tile_x", int64_t{4});
    c.set("algorithm", std::string("direct"));
    EXPECT_EQ(c.to_string(), R"({"algorithm":"direct","tile_x":4})");
    Config back = Config::from_json(nlohmann::json::parse(c.to_string()));
    EXPECT_EQ(back, c);
    EXPECT_EQ(back.hash(), c.hash());
    // FNV-1a of the canonical text: fixed forever, the database keys on it.
    EXPECT_EQ(c.hash(), 0x652e47c0152a24c0ull);
    EXPECT_EQ(error_field([&] { c.i("algorithm"); }), "knob algorithm");
    EXPECT_EQ(error_field([] { Config::from_json(nlohmann::json::parse(R"({"a":1.5})")); }),
              "knob a");
}

TEST(ScheduleSpace, SampleMutateCrossoverStayValid) {
    ScheduleSpace sp;
    sp.op = "test";
    sp.knobs.push_back({"algo", "", name_domain({"a", "b"}), nullptr});
    sp.knobs.push_back({"tile", "", int_domain({1, 2, 4, 8}), nullptr});
    sp.knobs.push_back(
        {"only_b", "", int_domain({3, 5}), [](const Config& c) { return c.s("algo") == "b"; }});
    sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
        if (c.s("algo") == "a" && c.i("tile") == 8) return "a with tile 8";
        return std::nullopt;
    });
    sp.default_config.set("algo", std::string("a"));
    sp.default_config.set("tile", int64_t{1});
    ASSERT_FALSE(sp.check(sp.default_config));
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200; ++i) {
        Config a = sp.sample(rng), b = sp.sample(rng);
        ASSERT_FALSE(sp.check(a)) << a.to_string();
        Config m = sp.mutate(a, rng);
        ASSERT_FALSE(sp.check(m)) << m.to_string();
        EXPECT_NE(m, a);
        ASSERT_FALSE(sp.check(sp.crossover(a, b, rng)));
    }
    Config bad = sp.default_config;
    bad.set("only_b", int64_t{3});
    EXPECT_TRUE(sp.check(bad));
    bad = sp.default_config;
    bad.set("tile", int64_t{8});
    EXPECT_EQ(*sp.check(bad), "a with tile 8");
}
