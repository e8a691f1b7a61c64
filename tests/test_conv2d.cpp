// conv2d: random configs of every algorithm on random small shapes, against the reference.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "schedules/kernel.h"
#include "schedules/verify.h"

using namespace kiln;

namespace {

const char* kEpilogues[] = {"",      "bias",        "bias+relu", "add", "bias+add+relu",
                            "relu6", "clip-0.5:0.5"};

// Small shapes with odd sizes, stride 2, asymmetric padding, dilation and groups.
Workload random_conv(std::mt19937_64& rng) {
    auto pick = [&](std::initializer_list<int64_t> v) {
        return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
    };
    for (;;) {
        int64_t groups = pick({1, 1, 1, 2, 3});
        int64_t c = groups * pick({1, 2, 3, 5, 8, 16});
        int64_t k = groups * pick({1, 3, 4, 8, 9, 16, 20});
        int64_t r = pick({1, 3, 5}), s = pick({1, 2, 3});
        std::string shape =
            "n=" + std::to_string(pick({1, 1, 2})) + ",c=" + std::to_string(c) +
            ",h=" + std::to_string(pick({3, 5, 7, 8, 11, 16})) +
            ",w=" + std::to_string(pick({3, 4, 7, 9, 13, 17})) + ",k=" + std::to_string(k) +
            ",r=" + std::to_string(r) + ",s=" + std::to_string(s) +
            ",stride=" + std::to_string(pick({1, 2})) + "x" + std::to_string(pick({1, 2})) +
            ",pad=" + std::to_string(pick({0, 1})) + "x" + std::to_string(pick({0, 1, 2})) + "x" +
            std::to_string(pick({0, 1})) + "x" + std::to_string(pick({0, 1})) +
            ",dilation=" + std::to_string(pick({1, 1, 2})) + ",groups=" + std::to_string(groups);
        Epilogue e = Epilogue::parse(kEpilogues[std::uniform_int_distribution<int>(0, 6)(rng)]);
        try {
            return Workload::from_shape("conv2d", shape, DType::f32, e);
        } catch (const Error&) {
            continue;  // kernel larger than the padded input: draw again
        }
    }
}

void expect_correct(const Workload& w, const Config& c, uint64_t seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " workload " + w.key() + " config " +
                 c.to_string());
    try {
        auto kernel = compile_kernel(w, c, host_target());
        VerifyResult r = verify_kernel(w, *kernel, seed);
        EXPECT_TRUE(r.ok(kF32Tolerance)) << "relative error " << r.relative_error;
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
    }
}

// Draws `count` configs whose algorithm is `algorithm` (any when empty).
void sweep(const std::string& algorithm, int count, uint64_t base_seed) {
    Target t = host_target();
    int done = 0;
    for (uint64_t seed = base_seed; done < count; ++seed) {
        std::mt19937_64 rng(seed);
        Workload w = random_conv(rng);
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        Config c = sp.sample(rng);
        if (!algorithm.empty() && c.s("algorithm") != algorithm) {
            bool found = false;
            for (int i = 0; i < 200 && !found; ++i) {
                c = sp.sample(rng);
                found = c.s("algorithm") == algorithm;
            }
            if (!found) continue;  // not applicable to this shape
        }
        expect_correct(w, c, seed);
        ++done;
    }
}

}  // namespace

TEST(Conv2d, RandomDirectConfigsMatchReference) {
    sweep("direct", 50, 1000);
}
TEST(Conv2d, DirectSplitPaddingMatchesReference) {
    // pad_at=split computes the interior in place and each border strip on its own: padded
    // shapes with every side's padding, strides, dilation and groups, and random configs.
    Target t = host_target();
    int done = 0;
    for (uint64_t seed = 1500; done < 24; ++seed) {
        std::mt19937_64 rng(seed);
        auto pick = [&](std::initializer_list<int64_t> v) {
            return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
        };
        auto str = [](int64_t v) { return std::to_string(v); };
        int64_t groups = pick({1, 1, 2});
        std::string shape = "n=" + str(pick({1, 2})) + ",c=" + str(groups * pick({3, 8, 16})) +
                            ",h=" + str(pick({9, 14, 20})) + ",w=" + str(pick({10, 17, 28})) +
                            ",k=" + str(groups * pick({5, 16, 24})) + ",r=" + str(pick({1, 3, 5})) +
                            ",s=" + str(pick({3, 5})) + ",stride=" + str(pick({1, 2})) + "x" +
                            str(pick({1, 2})) + ",pad=" + str(pick({0, 1, 2})) + "x" +
                            str(pick({1, 2})) + "x" + str(pick({0, 1})) + "x" + str(pick({0, 2})) +
                            ",dilation=" + str(pick({1, 1, 2})) + ",groups=" + str(groups);
        Workload w = Workload::from_shape("conv2d", shape, DType::f32,
                                          Epilogue::parse(kEpilogues[seed % 7]));
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        Config c;
        for (int i = 0; i < 2000 && !(c.has("pad_at") && c.s("pad_at") == "split"); ++i)
            c = sp.sample(rng);
        if (!c.has("pad_at") || c.s("pad_at") != "split") continue;  // no tile fits the interior
        expect_correct(w, c, seed);
        ++done;
    }
}

TEST(Conv2d, RandomIm2colConfigsMatchReference) {
    sweep("im2col", 50, 2000);
}

TEST(Conv2d, RandomGemmConfigsMatchReference) {
    // gemm computes 1x1 layers only: draw those, with any stride, batch and epilogue.
    Target t = host_target();
    for (uint64_t seed = 3000; seed < 3030; ++seed) {
        std::mt19937_64 rng(seed);
        auto pick = [&](std::initializer_list<int64_t> v) {
            return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
        };
        auto str = [](int64_t v) { return std::to_string(v); };
        std::string shape = "n=" + str(pick({1, 1, 2})) + ",c=" + str(pick({1, 3, 8, 16, 40})) +
                            ",h=" + str(pick({1, 5, 8, 13})) + ",w=" + str(pick({2, 7, 9, 16})) +
                            ",k=" + str(pick({5, 16, 33})) +
                            ",r=1,s=1,stride=" + str(pick({1, 2, 3})) + "x" + str(pick({1, 2}));
        Workload w = Workload::from_shape("conv2d", shape, DType::f32,
                                          Epilogue::parse(kEpilogues[seed % 7]));
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        Config c;
        for (int i = 0; i < 500 && !c.has("mm_nr"); ++i)
            c = sp.sample(rng);
        if (!c.has("mm_nr")) {
            // Tiny GEMMs leave few valid tiles for rejection sampling: take gemm's defaults.
            Config gemm;
            gemm.set("algorithm", std::string("gemm"));
            c = sp.with_defaults(gemm);
        }
        expect_correct(w, c, seed);
    }
}

TEST(Conv2d, GemmPanelsInPlaceMatchReference) {
    // Stride 1 with nr dividing the pixels: the panels are the input itself, batched or not.
    Target t = host_target();
    for (const char* shape : {"c=16,h=8,w=16,k=24,r=1,s=1", "n=2,c=5,h=4,w=8,k=7,r=1,s=1"}) {
        Workload w =
            Workload::from_shape("conv2d", shape, DType::f32, Epilogue::parse("bias+add+relu"));
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        for (int64_t nr : {int64_t(t.f32_lanes()), int64_t(2 * t.f32_lanes())}) {
            if ((w.get("h") * w.get("w")) % nr != 0) continue;
            Config given;
            given.set("algorithm", std::string("gemm"));
            given.set("mm_nr", nr);
            given.set("mm_panels", std::string("in_place"));
            Config c = sp.with_defaults(given);
            ASSERT_EQ(sp.check(c), std::nullopt) << c.to_string();
            expect_correct(w, c, 11);
        }
    }
    // A panel that would run past the image is refused.
    Workload odd = Workload::from_shape("conv2d", "c=8,h=5,w=5,k=8,r=1,s=1");
    ScheduleSpace sp = find_space("conv2d").space(odd, t);
    Config given;
    given.set("algorithm", std::string("gemm"));
    given.set("mm_panels", std::string("in_place"));
    auto why = sp.check(sp.with_defaults(given));
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("mm_nr"), std::string::npos) << *why;
}

TEST(Conv2d, EveryAlgorithmHasDefaults) {
    // A config that names only its algorithm is completed from the space's defaults
    // (ScheduleSpace::with_defaults): the default config's own, then other_defaults for the
    // other algorithms' knobs.
    Target t = host_target();
    for (const char* shape : {"c=64,h=14,w=14,k=64,r=1,s=1", "c=16,h=8,w=8,k=16,r=3,s=3,pad=1",
                              "c=3,h=16,w=16,k=8,r=3,s=3,stride=2,pad=1"}) {
        Workload w = Workload::from_shape("conv2d", shape);
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        for (const KnobValue& a : sp.find("algorithm")->domain) {
            Config given;
            given.set("algorithm", a);
            Config c = sp.with_defaults(given);
            EXPECT_EQ(sp.check(c), std::nullopt) << w.key() << " " << c.to_string();
        }
    }
}

TEST(Conv2d, DefaultConfigsOfSmallLayersMatchReference) {
    // Small analogues of the benchmark layers: 1x1, 3x3, strided, 7x7 stem, grouped.
    for (const char* shape :
         {"c=16,h=14,w=14,k=32,r=1,s=1", "c=8,h=12,w=12,k=16,r=3,s=3,pad=1",
          "c=16,h=14,w=14,k=32,r=3,s=3,stride=2,pad=1", "c=3,h=32,w=32,k=16,r=7,s=7,stride=2,pad=3",
          "c=16,h=7,w=7,k=64,r=1,s=1", "c=32,h=9,w=9,k=32,r=3,s=3,pad=1,groups=4"}) {
        Workload w =
            Workload::from_shape("conv2d", shape, DType::f32, Epilogue::parse("bias+relu"));
        ScheduleSpace sp = find_space("conv2d").space(w, host_target());
        ASSERT_FALSE(sp.check(sp.default_config)) << *sp.check(sp.default_config);
        expect_correct(w, sp.default_config, 7);
    }
}

TEST(Conv2d, SpaceOfBenchmarkLayersIsValid) {
    // The default config of each full-size layer validates (compiling them is the benchmark's job).
    Target t = host_target();
    for (const char* shape :
         {"c=3,h=224,w=224,k=64,r=7,s=7,stride=2,pad=3", "c=64,h=56,w=56,k=64,r=1,s=1",
          "c=64,h=56,w=56,k=64,r=3,s=3,pad=1", "c=512,h=7,w=7,k=512,r=3,s=3,pad=1",
          "c=256,h=56,w=56,k=512,r=1,s=1,stride=2"}) {
        Workload w = Workload::from_shape("conv2d", shape);
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        EXPECT_FALSE(sp.check(sp.default_config)) << w.key();
        std::mt19937_64 rng(3);
        for (int i = 0; i < 100; ++i) {
            Config a = sp.sample(rng), b = sp.mutate(a, rng);
            EXPECT_FALSE(sp.check(a));
            EXPECT_FALSE(sp.check(b));
            EXPECT_FALSE(sp.check(sp.crossover(a, b, rng)));
        }
    }
}

TEST(Conv2d, InvalidConfigIsRejectedWithReason) {
    Workload w = Workload::from_shape("conv2d", "c=8,h=8,w=8,k=8,r=3,s=3,pad=1");
    ScheduleSpace sp = find_space("conv2d").space(w, host_target());
    Config c = sp.default_config;
    c.set("tile_x", int64_t{1000});
    try {
        compile_kernel(w, c, host_target());
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.field(), "config");
        EXPECT_NE(std::string(e.what()).find("tile_x"), std::string::npos) << e.what();
    }
}

namespace {

// One of `values`, drawn by `rng`.
int64_t pick(std::mt19937_64& rng, std::initializer_list<int64_t> values) {
    return *(values.begin() + std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng));
}

// conv2d of `shape` (a residual on even seeds) with one combination of blocked tensors per
// seed: input, output and residual blocked by b or not, never all NCHW.
Workload blocked_conv(const std::string& shape, uint64_t seed, int64_t b) {
    const bool residual = seed % 2 == 0;
    Workload w = Workload::from_shape("conv2d", shape, DType::f32,
                                      Epilogue::parse(residual ? "bias+add+relu" : "bias"));
    const int mask = int(seed % 7) + 1;
    w.layout.input = mask & 1 ? b : 0;
    w.layout.output = mask & 2 ? b : 0;
    w.layout.residual = residual && (mask & 4) ? b : 0;
    if (w.layout.plain()) w.layout.input = b;
    w.validate();
    return w;
}

}  // namespace

TEST(Conv2d, BlockedLayoutsMatchReference) {
    // Channel-blocked activations (NCHW[b]c) in and out of the direct and Winograd algorithms,
    // alone and together, with random configs; the reference reads and writes the same layouts.
    Target t = host_target();
    const int64_t b = t.f32_lanes();
    auto str = [](int64_t v) { return std::to_string(v); };
    for (uint64_t seed = 2000; seed < 2024; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t groups = pick(rng, {1, 1, 1, 2});
        std::string shape =
            "n=" + str(pick(rng, {1, 2})) + ",c=" + str(groups * b * pick(rng, {1, 2})) +
            ",h=" + str(pick(rng, {5, 9, 14})) + ",w=" + str(pick(rng, {6, 11, 16})) +
            ",k=" + str(groups * b * pick(rng, {1, 2, 3})) + ",r=" + str(pick(rng, {1, 3})) +
            ",s=" + str(pick(rng, {1, 3})) + ",stride=" + str(pick(rng, {1, 2})) +
            ",pad=" + str(pick(rng, {0, 1})) + ",groups=" + str(groups);
        Workload w = blocked_conv(shape, seed, b);
        EXPECT_EQ(Workload::parse_key(w.key()), w) << w.key();
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        expect_correct(w, sp.default_config, seed);
        for (int i = 0; i < 2; ++i) {
            Config c = sp.sample(rng);
            const std::string& a = c.s("algorithm");
            ASSERT_TRUE(a == "direct" || a == "winograd2" || a == "winograd4")
                << a << ": only direct and Winograd compute blocked layouts";
            if (w.layout.output) {
                EXPECT_EQ(c.i(a == "direct" ? "block_k" : "wino_kb") % b, 0) << c.to_string();
            }
            expect_correct(w, c, seed * 10 + i);
        }
    }
}

TEST(Conv2d, BlockedWinogradMatchesReference) {
    // Winograd reads a blocked input as dense channel vectors and stores Y's channel vectors
    // into a blocked output as they are. Every combination of blocked tensors, blocks of the
    // vector width and of half of it, images that F(4x4) and F(2x2) do not tile evenly.
    Target t = host_target();
    const int64_t lanes = t.f32_lanes();
    auto str = [](int64_t v) { return std::to_string(v); };
    for (uint64_t seed = 3000; seed < 3014; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t b = seed % 3 == 0 ? lanes / 2 : lanes;
        std::string shape = "n=" + str(pick(rng, {1, 2})) + ",c=" + str(b * pick(rng, {1, 2, 3})) +
                            ",h=" + str(pick(rng, {6, 7, 9})) + ",w=" + str(pick(rng, {5, 8, 11})) +
                            ",k=" + str(b * pick(rng, {1, 2, 3})) +
                            ",r=3,s=3,pad=" + str(pick(rng, {0, 1}));
        Workload w = blocked_conv(shape, seed, b);
        ScheduleSpace sp = find_space("conv2d").space(w, t);
        for (const char* algorithm : {"winograd2", "winograd4"}) {
            Config c = sp.sample(rng);
            for (int i = 0; i < 500 && c.s("algorithm") != algorithm; ++i)
                c = sp.sample(rng);
            ASSERT_EQ(c.s("algorithm"), algorithm) << w.key();
            expect_correct(w, c, seed);
        }
    }
}

TEST(Conv2d, BlockedLayoutsAreChecked) {
    Workload w = Workload::from_shape("conv2d", "c=12,h=8,w=8,k=16,r=3,s=3,pad=1");
    w.layout.input = 8;  // 12 channels are not whole blocks of 8
    EXPECT_THROW(w.validate(), Error);
    w.layout = {};
    w.layout.residual = 8;  // no residual to block
    EXPECT_THROW(w.validate(), Error);
    w.layout = {};
    w.layout.output = 6;  // not a power of two
    EXPECT_THROW(w.validate(), Error);
    Workload d = Workload::from_shape("dense", "m=1,n=16,k=16");
    d.layout.input = 8;
    EXPECT_THROW(d.validate(), Error);
    EXPECT_THROW(Workload::parse_key("conv2d/n1c16h8w8/k16r3s3/st1p1d1g1/f32/layout:x8"), Error);
    Workload p = Workload::parse_key("conv2d/n1c16h8w8/k16r3s3/st1p1d1g1/f32/layout:i8o8");
    EXPECT_EQ(p.layout.input, 8);
    EXPECT_EQ(p.layout.output, 8);
    EXPECT_EQ(p.layout.residual, 0);
    EXPECT_EQ(Workload::from_json(p.to_json()), p);
    EXPECT_EQ(p.output().shape, (std::vector<int64_t>{1, 2, 8, 8, 8}));
}
