// dense and batch_matmul: definitions, schedule spaces, and compiled kernels against the
// scalar reference (sampled configs on odd shapes with every kind of epilogue, and the defaults
// of real layers on smaller analogues).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

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

const std::vector<std::string> kEpilogues = {"", "bias", "bias+relu", "add", "relu6"};

template <class T>
T pick(const std::vector<T>& v, std::mt19937_64& rng) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

// A small shape with odd sizes, sizes below a tile and sizes that no tile divides; k values
// with divisors >= 32 exercise KC blocking.
std::string random_shape(const std::string& op, std::mt19937_64& rng) {
    const std::vector<int64_t> m = {1, 2, 3, 7, 13, 31};
    const std::vector<int64_t> n = {1, 3, 7, 13, 17, 31, 33, 50};
    const std::vector<int64_t> k = {1, 3, 7, 13, 31, 64, 96};
    std::string shape = "m=" + std::to_string(pick(m, rng)) + ",n=" + std::to_string(pick(n, rng)) +
                        ",k=" + std::to_string(pick(k, rng));
    if (op == "batch_matmul")
        shape = "b=" + std::to_string(pick<int64_t>({1, 2, 3}, rng)) + "," + shape;
    return shape;
}

// Compiles `count` sampled configs of `op`, each on its own random shape and epilogue.
void check_sampled_configs(const std::string& op, int count) {
    const Target t = host_target();
    for (int seed = 0; seed < count; ++seed) {
        std::mt19937_64 rng(seed);
        Workload w = Workload::from_shape(op, random_shape(op, rng), DType::f32,
                                          Epilogue::parse(pick(kEpilogues, rng)));
        ScheduleSpace space = find_space(op).space(w, t);
        Config c = space.sample(rng);
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + w.key() + " " + c.to_string());
        ASSERT_EQ(space.check(c), std::nullopt);
        auto kernel = compile_kernel(w, c, t);
        VerifyResult r = verify_kernel(w, *kernel, static_cast<uint64_t>(seed));
        EXPECT_TRUE(r.ok(kF32Tolerance)) << "relative error " << r.relative_error;
    }
}

// A small workload on which `c` (the default of a larger one) is still valid, with ragged
// edges: one row block and half a tile more, the last panel 3 columns short, two KC blocks.
Workload analogue(const Workload& big, const Config& c) {
    const int64_t mr = c.i("mr"), nr = c.i("nr"), kc = c.i("kc");
    const int64_t m = std::min(big.get("m"), c.i("mc") * mr + mr / 2);
    const int64_t n = std::min(big.get("n"), c.i("nc") * nr - 3);
    const int64_t k = kc < big.get("k") ? 2 * kc : kc;
    std::string shape =
        "m=" + std::to_string(m) + ",n=" + std::to_string(n) + ",k=" + std::to_string(k);
    if (big.op == "batch_matmul") shape = "b=3," + shape;
    return Workload::from_shape(big.op, shape, DType::f32, big.epilogue);
}

}  // namespace

TEST(Dense, KeyShapesAndFlops) {
    Workload w = Workload::from_shape("dense", "m=128,n=768,k=768", DType::f32,
                                      Epilogue::parse("bias+relu"));
    EXPECT_EQ(w.key(), "dense/m128n768k768/f32/bias+relu");
    EXPECT_EQ(Workload::parse_key(w.key()), w);
    auto in = w.inputs();
    ASSERT_EQ(in.size(), 3u);
    EXPECT_EQ(in[0].shape, (std::vector<int64_t>{128, 768}));
    EXPECT_EQ(in[1].shape, (std::vector<int64_t>{768, 768}));
    EXPECT_EQ(in[2].shape, (std::vector<int64_t>{768}));
    EXPECT_EQ(w.output().shape, (std::vector<int64_t>{128, 768}));
    EXPECT_DOUBLE_EQ(find_op("dense").flops(w), 2.0 * 128 * 768 * 768);
    EXPECT_NO_THROW(Workload::from_shape("dense", find_op("dense").example()));
}

TEST(BatchMatmul, KeyShapesAndFlops) {
    Workload w = Workload::from_shape("batch_matmul", "b=12,m=128,n=64,k=32", DType::f32,
                                      Epilogue::parse("bias+add"));
    EXPECT_EQ(w.key(), "batch_matmul/b12m128n64k32/f32/bias+add");
    EXPECT_EQ(Workload::parse_key(w.key()), w);
    auto in = w.inputs();
    ASSERT_EQ(in.size(), 4u);
    EXPECT_EQ(in[0].shape, (std::vector<int64_t>{12, 128, 32}));
    EXPECT_EQ(in[1].shape, (std::vector<int64_t>{12, 32, 64}));
    EXPECT_EQ(in[2].shape, (std::vector<int64_t>{64}));
    EXPECT_EQ(in[3].shape, (std::vector<int64_t>{12, 128, 64}));
    EXPECT_DOUBLE_EQ(find_op("batch_matmul").flops(w), 2.0 * 12 * 128 * 64 * 32);
    EXPECT_EQ(Workload::from_shape("batch_matmul", find_op("batch_matmul").example()).key(),
              "batch_matmul/b12m128n128k64/f32");
}

TEST(Dense, InvalidWorkloadsNameTheField) {
    EXPECT_EQ(error_field([] { Workload::from_shape("dense", "m=0,n=4,k=4"); }), "m");
    EXPECT_EQ(error_field([] { Workload::from_shape("dense", "m=2,n=4,k=-3"); }), "k");
    EXPECT_EQ(error_field([] { Workload::from_shape("dense", "m=2,k=4"); }), "n");
    EXPECT_EQ(error_field([] { Workload::from_shape("batch_matmul", "b=0,m=2,n=4,k=4"); }), "b");
    EXPECT_EQ(error_field([] { Workload::from_shape("batch_matmul", "b=1,m=2,n=-1,k=4"); }), "n");
}

TEST(Dense, ReferenceOnAHandWorkedExample) {
    // [1 2; 3 4] * [[1 0], [1 1], [0 2]]^T + bias [0.5, -10, 1], relu.
    Workload w =
        Workload::from_shape("dense", "m=2,n=3,k=2", DType::f32, Epilogue::parse("bias+relu"));
    std::vector<float> x = {1, 2, 3, 4}, wt = {1, 0, 1, 1, 0, 2}, bias = {0.5f, -10, 1};
    std::vector<float> out(6);
    w.def().reference(w, {x.data(), wt.data(), bias.data()}, out.data());
    EXPECT_EQ(out, (std::vector<float>{1.5f, 0, 5, 3.5f, 0, 9}));
}

TEST(BatchMatmul, ReferenceOnAHandWorkedExample) {
    // Batch 0: [1 2] * [[1 2], [3 4]] = [7 10]; batch 1: [1 1] * [[1 0], [0 -1]] = [1 -1].
    Workload w = Workload::from_shape("batch_matmul", "b=2,m=1,n=2,k=2");
    std::vector<float> a = {1, 2, 1, 1}, b = {1, 2, 3, 4, 1, 0, 0, -1};
    std::vector<float> out(4);
    w.def().reference(w, {a.data(), b.data()}, out.data());
    EXPECT_EQ(out, (std::vector<float>{7, 10, 1, -1}));
}

TEST(Dense, SampledConfigsMatchReference) {
    check_sampled_configs("dense", 50);
}

TEST(BatchMatmul, SampledConfigsMatchReference) {
    check_sampled_configs("batch_matmul", 50);
}

TEST(Dense, DefaultsOfLayersAreValidAndCorrectOnAnalogues) {
    const Target t = host_target();
    struct Layer {
        std::string op, shape, epilogue;
    };
    const std::vector<Layer> layers = {
        {"dense", "m=1,n=1000,k=2048", "bias"},           // r50_fc
        {"dense", "m=128,n=768,k=768", "bias+add"},       // bert_qkv
        {"dense", "m=1024,n=1024,k=1024", ""},            // gemm_1024
        {"batch_matmul", "b=12,m=128,n=128,k=64", ""},    // attention scores
        {"batch_matmul", "b=12,m=128,n=64,k=128", "add"}  // attention context
    };
    for (const auto& layer : layers) {
        Workload big = Workload::from_shape(layer.op, layer.shape, DType::f32,
                                            Epilogue::parse(layer.epilogue));
        const Config c = find_space(layer.op).space(big, t).default_config;
        SCOPED_TRACE(big.key() + " " + c.to_string());
        EXPECT_EQ(find_space(layer.op).space(big, t).check(c), std::nullopt);
        Workload small = analogue(big, c);
        SCOPED_TRACE("analogue " + small.key());
        ASSERT_EQ(find_space(layer.op).space(small, t).check(c), std::nullopt);
        auto kernel = compile_kernel(small, c, t);
        VerifyResult r = verify_kernel(small, *kernel, 7);
        EXPECT_TRUE(r.ok(kF32Tolerance)) << "relative error " << r.relative_error;
    }
}

TEST(Dense, DefaultsAreValidForAnyShape) {
    const Target t = host_target();
    std::mt19937_64 rng(11);
    std::uniform_int_distribution<int64_t> size(1, 3000);
    for (int i = 0; i < 300; ++i) {
        const std::string op = i % 2 ? "dense" : "batch_matmul";
        std::string shape = "m=" + std::to_string(size(rng)) + ",n=" + std::to_string(size(rng)) +
                            ",k=" + std::to_string(size(rng));
        if (op == "batch_matmul") shape = "b=" + std::to_string(size(rng) % 16 + 1) + "," + shape;
        Workload w = Workload::from_shape(op, shape);
        ScheduleSpace space = find_space(op).space(w, t);
        EXPECT_EQ(space.check(space.default_config), std::nullopt) << w.key();
    }
}

TEST(Dense, GemvDefaultUsesOneRowAndWidePanels) {
    const Target t = host_target();
    Workload w = Workload::from_shape("dense", "m=1,n=1000,k=2048");
    Config c = find_space("dense").space(w, t).default_config;
    EXPECT_EQ(c.i("mr"), 1);
    EXPECT_EQ(c.i("kc"), 2048);  // one row tile: blocking k would only add acc traffic
    EXPECT_GE(c.i("nr") / t.f32_lanes(), 4);
}

TEST(Dense, SpaceFollowsTheTarget) {
    for (const char* name : {"x86-64-linux-avx2", "x86-64-linux-avx512"}) {
        const Target t = parse_target(name);
        Workload w = Workload::from_shape("dense", "m=64,n=256,k=256");
        ScheduleSpace space = find_space("dense").space(w, t);
        SCOPED_TRACE(name);
        for (const auto& v : space.find("nr")->domain)
            EXPECT_EQ(std::get<int64_t>(v) % t.f32_lanes(), 0);
        EXPECT_EQ(space.check(space.default_config), std::nullopt);
        // 16 rows x 8 vectors needs 137 registers on any target.
        Config c = space.default_config;
        c.set("mr", int64_t{16});
        c.set("nr", int64_t{8} * t.f32_lanes());
        auto why = space.check(c);
        ASSERT_TRUE(why.has_value());
        EXPECT_NE(why->find("vector registers"), std::string::npos) << *why;
    }
}

TEST(Dense, ConstraintsGiveReasons) {
    const Target t = host_target();
    Workload w = Workload::from_shape("dense", "m=5,n=20,k=96");
    ScheduleSpace space = find_space("dense").space(w, t);
    Config c = space.default_config;
    c.set("mr", int64_t{6});
    ASSERT_TRUE(space.check(c).has_value());
    EXPECT_NE(space.check(c)->find("exceeds m=5"), std::string::npos) << *space.check(c);
    c = space.default_config;
    c.set("kc", int64_t{64});  // not a divisor of 96: outside the domain
    EXPECT_TRUE(space.check(c).has_value());
    c = space.default_config;
    c.set("unroll_k", int64_t{8});
    c.set("kc", int64_t{32});
    EXPECT_EQ(space.check(c), std::nullopt);
}

TEST(Dense, MutateAndCrossoverStayValid) {
    const Target t = host_target();
    for (const char* op : {"dense", "batch_matmul"}) {
        std::string shape = "m=100,n=300,k=512";
        if (std::string(op) == "batch_matmul") shape = "b=4," + shape;
        Workload w = Workload::from_shape(op, shape);
        ScheduleSpace space = find_space(op).space(w, t);
        std::mt19937_64 rng(3);
        Config a = space.default_config, b = space.sample(rng);
        int changed = 0;
        for (int i = 0; i < 300; ++i) {
            Config m = space.mutate(a, rng);
            ASSERT_EQ(space.check(m), std::nullopt) << op << " " << m.to_string();
            changed += m != a;
            Config x = space.crossover(m, b, rng);
            ASSERT_EQ(space.check(x), std::nullopt) << op << " " << x.to_string();
            a = m;
            b = x;
        }
        EXPECT_GT(changed, 250) << op;
    }
}

// The reference cache the tuner's children share: written once, read back, and never trusted
// when it does not match (here a reference scaled by 2 is read and makes a correct kernel look
// wrong, which shows it is used; a truncated one is recomputed).
TEST(Verify, ReferenceCacheIsReadBackAndRecomputedWhenItDoesNotMatch) {
    namespace fs = std::filesystem;
    const fs::path dir =
        fs::temp_directory_path() / ("kiln-test-refcache-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    Workload w = Workload::from_shape("dense", "m=3,n=20,k=7");
    const Target t = host_target();
    auto kernel = compile_kernel(w, find_space("dense").space(w, t).default_config, t);

    const std::vector<float> direct = reference_output(w, 5);
    EXPECT_EQ(reference_output(w, 5, dir.string()), direct);  // computed and written
    ASSERT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
    const fs::path file = fs::directory_iterator(dir)->path();
    EXPECT_EQ(reference_output(w, 5, dir.string()), direct);  // read back
    EXPECT_TRUE(verify_kernel(w, *kernel, 5, dir.string()).ok(kF32Tolerance));

    // Same header, every value doubled: the cache is what verification compares with.
    std::string bytes;
    {
        std::ifstream in(file, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const size_t payload = direct.size() * sizeof(float);
    std::vector<float> doubled = direct;
    for (float& v : doubled)
        v *= 2;
    std::string scaled = bytes.substr(0, bytes.size() - payload);
    scaled.append(reinterpret_cast<const char*>(doubled.data()), payload);
    std::ofstream(file, std::ios::binary | std::ios::trunc) << scaled;
    EXPECT_FALSE(verify_kernel(w, *kernel, 5, dir.string()).ok(kF32Tolerance));

    // Truncated: recomputed and replaced. Another seed: its own file.
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 4);
    EXPECT_TRUE(verify_kernel(w, *kernel, 5, dir.string()).ok(kF32Tolerance));
    EXPECT_EQ(fs::file_size(file), bytes.size());
    EXPECT_EQ(reference_output(w, 6, dir.string()), reference_output(w, 6));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
    fs::remove_all(dir);
}
