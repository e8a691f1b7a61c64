// Ahead-of-time compilation: the memory plan, then whole models compiled into libNAME.a,
// linked into a plain C program with `cc` (no Halide, no LLVM, no C++ runtime) and run, their
// outputs checked against the reference interpreter; and `kiln run` on the same libraries.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

#include "graph/aot.h"
#include "graph/ir.h"
#include "graph/memory_plan.h"
#include "graph/onnx_import.h"
#include "graph/passes.h"
#include "graph/reference.h"
#include "targets/target.h"
#include "tests/onnx_models.h"

namespace kiln {
namespace {

using namespace kiln::graph;
using namespace kiln::test_onnx;
namespace fs = std::filesystem;

// ---- The memory plan ------------------------------------------------------------------------

// x -> Relu -> Relu -> ... -> y: `n` nodes over [1, 1000] tensors.
Graph relu_chain(int n) {
    Graph g;
    ValueId prev = g.add_value({"x", DType::f32, {1, 1000}, kNoId, nullptr});
    g.inputs.push_back(prev);
    for (int i = 0; i < n; ++i) {
        ValueId next =
            g.add_value({"v" + std::to_string(i), DType::f32, {1, 1000}, kNoId, nullptr});
        Node node;
        node.op = "Relu";
        node.inputs = {prev};
        node.outputs = {next};
        g.add_node(node);
        prev = next;
    }
    g.outputs.push_back(prev);
    return g;
}

TEST(MemoryPlan, BuffersWhoseLifetimesDoNotOverlapShareBytes) {
    Graph g = relu_chain(5);  // v0..v3 in the arena, v4 is the output
    MemoryPlan p = plan_memory(g, [](const Node&) { return false; });
    const uint64_t one = 4032;  // 4000 bytes, aligned to 64
    EXPECT_EQ(p.arena_buffers, 4);
    EXPECT_EQ(p.unshared_bytes, 4 * one);
    EXPECT_EQ(p.arena_bytes, 2 * one);  // a node's input and output never share
    for (int i = 0; i + 1 < 4; ++i)
        EXPECT_NE(p.storage[g.find_value("v" + std::to_string(i))].offset,
                  p.storage[g.find_value("v" + std::to_string(i + 1))].offset);
    EXPECT_EQ(p.storage[g.find_value("v0")].offset, p.storage[g.find_value("v2")].offset);
    EXPECT_EQ(p.storage[g.find_value("x")].kind, Storage::Kind::input);
    EXPECT_EQ(p.storage[g.find_value("v4")].kind, Storage::Kind::output);
    EXPECT_TRUE(p.copies.empty());
    EXPECT_EQ(describe(p), "arena 8.1 kB (4 buffers, 16.1 kB without reuse)");
}

TEST(MemoryPlan, AnAliasSharesItsInputAndASecondOutputIsCopied) {
    Graph g = relu_chain(2);  // x -> v0 -> v1 (output 0)
    // v1 also leaves as output 1 through an alias node: one buffer, copied once at the end.
    ValueId r = g.add_value({"r", DType::f32, {1000}, kNoId, nullptr});
    Node reshape;
    reshape.op = "Flatten";
    reshape.inputs = {g.find_value("v1")};
    reshape.outputs = {r};
    g.add_node(reshape);
    g.outputs.push_back(r);
    MemoryPlan p = plan_memory(g, [](const Node& n) { return n.op == "Flatten"; });
    EXPECT_EQ(p.root[r], g.find_value("v1"));
    EXPECT_EQ(p.storage[r].kind, Storage::Kind::output);
    EXPECT_EQ(p.storage[r].index, 0);
    ASSERT_EQ(p.copies.size(), 1u);
    EXPECT_EQ(p.copies[0].value, r);
    EXPECT_EQ(p.copies[0].output, 1);
    EXPECT_EQ(p.arena_buffers, 1);  // v0 only
}

TEST(MemoryPlan, AConstantOutputIsRefused) {
    Graph g;
    auto data = std::make_shared<Tensor>(Tensor::from_f32({1}, {1.0f}));
    g.outputs.push_back(g.add_value({"c", DType::f32, {1}, kNoId, data}));
    EXPECT_THROW(plan_memory(g, [](const Node&) { return false; }), Error);
}

// ---- Whole models -----------------------------------------------------------------------------

std::vector<float> random_floats(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v)
        x = u(rng);
    return v;
}

// conv 3x3 (bias) + relu -> flatten -> gemm (bias): two kernels and an alias.
onnx::ModelProto small_cnn() {
    onnx::ModelProto m = new_model(13);
    add_input(m, "image", {1, 3, 8, 8});
    add_init(m, "w", {4, 3, 3, 3}, random_floats(4 * 3 * 3 * 3, 1));
    add_init(m, "b", {4}, random_floats(4, 2));
    add_init(m, "fw", {10, 256}, random_floats(10 * 256, 3));
    add_init(m, "fb", {10}, random_floats(10, 4));
    auto* conv = add_node(m, "Conv", {"image", "w", "b"}, {"c"}, "conv");
    set_ints(conv, "pads", {1, 1, 1, 1});
    set_ints(conv, "kernel_shape", {3, 3});
    add_node(m, "Relu", {"c"}, {"r"}, "relu");
    add_node(m, "Flatten", {"r"}, {"f"}, "flatten");
    auto* gemm = add_node(m, "Gemm", {"f", "fw", "fb"}, {"scores"}, "fc");
    set_int(gemm, "transB", 1);
    add_output(m, "scores", {1, 10});
    return m;
}

struct Shell {
    int code = -1;
    std::string out;
};

Shell shell(const std::string& command) {
    Shell r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    char buf[4096];
    for (size_t n; p && (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        r.out.append(buf, n);
    int status = p ? ::pclose(p) : -1;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

void write_floats(const std::string& path, const std::vector<float>& v) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
}

std::vector<float> read_floats(const std::string& path, size_t n) {
    std::vector<float> v(n);
    std::ifstream(path, std::ios::binary)
        .read(reinterpret_cast<char*>(v.data()), std::streamsize(n * 4));
    return v;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
    double err = 0, scale = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        err = std::max(err, std::fabs(double(got.at(i)) - want[i]));
        scale = std::max(scale, std::fabs(double(want[i])));
    }
    return err / scale;
}

// An application: reads the input (raw float32) from argv[1], writes the output to argv[2],
// and checks what the API says about the model on the way.
constexpr const char* kApp = R"(#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "small.h"

int main(int argc, char** argv) {
    kiln_instance* m = NULL;
    kiln_options o;
    kiln_options_init(&o);
    o.threads = 2;
    if (kiln_create(kiln_model_small(), &o, &m) != KILN_OK) {
        fprintf(stderr, "create: %s\n", kiln_last_error(NULL));
        return 1;
    }
    kiln_tensor_info in, out;
    if (kiln_num_inputs(m) != 1 || kiln_num_outputs(m) != 1 ||
        kiln_input_info(m, 0, &in) != KILN_OK || kiln_output_info(m, 0, &out) != KILN_OK) {
        fprintf(stderr, "info\n");
        return 1;
    }
    printf("%s %d %lld %lld %lld %lld -> %s %d %lld %lld\n", in.name, in.rank,
           (long long)in.shape[0], (long long)in.shape[1], (long long)in.shape[2],
           (long long)in.shape[3], out.name, out.rank, (long long)out.shape[0],
           (long long)out.shape[1]);
    static float x[1 * 3 * 8 * 8], y[10];
    FILE* f = fopen(argv[1], "rb");
    if (!f || fread(x, sizeof x, 1, f) != 1) return 1;
    fclose(f);
    const void* ins[1] = {x};
    void* outs[1] = {y};
    if (kiln_run(m, ins, outs) != KILN_OK) {
        fprintf(stderr, "run: %s\n", kiln_last_error(m));
        return 1;
    }
    if (kiln_input_info(m, 5, &in) != KILN_INVALID_ARGUMENT || !*kiln_last_error(m)) return 1;
    f = fopen(argv[2], "wb");
    fwrite(y, sizeof y, 1, f);
    fclose(f);
    kiln_destroy(m);
    return 0;
}
)";

TEST(Compile, ASmallCnnLinksIntoAPlainCProgramAndMatchesTheReference) {
    if (shell("cc --version").code != 0) GTEST_SKIP() << "no C compiler";
    ModelDir dir;
    const std::string model = dir.write(small_cnn());
    Graph g = import_onnx(model);
    optimize(g);
    CompileOptions o;
    o.name = "small";
    o.out_dir = dir.path() + "/out";
    o.target = host_target();
    std::vector<std::string> progress;
    o.progress = [&](const std::string& line) { progress.push_back(line); };
    CompileReport r = compile_model(g, o);

    EXPECT_TRUE(fs::exists(o.out_dir + "/libsmall.a"));
    EXPECT_TRUE(fs::exists(o.out_dir + "/small.h"));
    EXPECT_TRUE(fs::exists(o.out_dir + "/kiln/runtime.h"));
    EXPECT_EQ(r.functions, 2);  // conv2d and dense; the flatten is an alias
    EXPECT_EQ(progress.size(), 2u);
    ASSERT_EQ(r.warnings.size(), 2u);  // no database: both kernels untuned, both named
    EXPECT_NE(r.warnings[0].find("'conv'"), std::string::npos) << r.warnings[0];
    EXPECT_NE(r.warnings[0].find("no tuned record"), std::string::npos) << r.warnings[0];
    EXPECT_GT(r.weight_bytes, (4 * 27 + 10 * 256) * 4u);
    auto j = nlohmann::json::parse(std::ifstream(r.json));
    EXPECT_EQ(j["name"], "small");
    EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json({1, 3, 8, 8}));
    EXPECT_EQ(j["outputs"][0]["name"], "scores");
    ASSERT_EQ(j["kernels"].size(), 3u);
    EXPECT_EQ(j["kernels"][0]["kind"], "default");
    EXPECT_EQ(j["kernels"][1]["kind"], "alias");
    EXPECT_EQ(j["arena_bytes"], r.arena_bytes);

    // The application is C, linked by the C compiler with libc, libm, pthread and dl only.
    std::ofstream(dir.path() + "/app.c") << kApp;
    Shell link = shell("cc -std=c99 -O1 -I" + o.out_dir + " " + dir.path() + "/app.c " + o.out_dir +
                       "/libsmall.a -lpthread -ldl -lm -o " + dir.path() + "/app");
    ASSERT_EQ(link.code, 0) << link.out;
    const std::vector<float> x = random_floats(3 * 8 * 8, 7);
    write_floats(dir.path() + "/x.bin", x);
    Shell run = shell(dir.path() + "/app " + dir.path() + "/x.bin " + dir.path() + "/y.bin");
    ASSERT_EQ(run.code, 0) << run.out;
    EXPECT_EQ(run.out, "image 4 1 3 8 8 -> scores 2 1 10\n");

    auto want =
        evaluate_reference(import_onnx(model), {{"image", Tensor::from_f32({1, 3, 8, 8}, x)}});
    const Tensor& scores = want.at("scores");
    std::vector<float> expected(scores.data<float>(), scores.data<float>() + scores.numel());
    EXPECT_LT(relative_error(read_floats(dir.path() + "/y.bin", 10), expected), 1e-5);
}

TEST(Compile, ABadNameAndAMissingCompilerAreErrors) {
    Graph g = import_onnx(ModelDir().write(small_cnn()));
    CompileOptions o;
    o.name = "3d-model";
    o.out_dir = "/tmp/kiln-never-written";
    o.target = host_target();
    EXPECT_THROW(compile_model(g, o), Error);
    o.name = "m";
    o.cc = "/nonexistent/cc";
    try {
        compile_model(g, o);
        FAIL() << "compiled without a C compiler";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/cc"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(o.out_dir));
}

}  // namespace
}  // namespace kiln
