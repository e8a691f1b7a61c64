// Ahead-of-time compilation: the memory plan, then whole models compiled into libNAME.a,
// linked into a plain C program with `cc` (no Halide, no LLVM, no C++ runtime) and run, their
// outputs checked against the reference interpreter; `kiln run` on the same libraries; and
// `kiln tune` of a whole model: budgets, resuming, a kill.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

#include "db/database.h"
#include "graph/aot.h"
#include "graph/ir.h"
#include "graph/memory_plan.h"
#include "graph/onnx_import.h"
#include "graph/passes.h"
#include "graph/reference.h"
#include "graph/tasks.h"
#include "schedules/kernel.h"
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

// Four convolutions: a is read by b twice (data and residual), b by c, c by d, and d is the
// output; a pooling reads `pooled_value` (c, or b). With direct configs everywhere and the pool
// on c, a and b stay blocked: c is read by the pooling (NCHW) and d is a graph output.
onnx::ModelProto four_convs(const std::string& pooled_value = "c") {
    onnx::ModelProto m = new_model(13);
    add_input(m, "x", {1, 16, 10, 10});
    auto conv = [&](const std::string& name, const std::string& in, int64_t k, int64_t c, int64_t r,
                    uint64_t seed) {
        add_init(m, name + "_w", {k, c, r, r}, random_floats(size_t(k * c * r * r), seed));
        add_init(m, name + "_b", {k}, random_floats(size_t(k), seed + 1));
        auto* n = add_node(m, "Conv", {in, name + "_w", name + "_b"}, {name + "_c"}, name);
        set_ints(n, "pads", {r / 2, r / 2, r / 2, r / 2});
        set_ints(n, "kernel_shape", {r, r});
    };
    conv("a", "x", 16, 16, 3, 11);
    add_node(m, "Relu", {"a_c"}, {"a"}, "a_relu");
    conv("b", "a", 16, 16, 1, 13);
    add_node(m, "Add", {"b_c", "a"}, {"b_sum"}, "b_add");
    add_node(m, "Relu", {"b_sum"}, {"b"}, "b_relu");
    conv("c", "b", 32, 16, 3, 15);
    add_node(m, "Relu", {"c_c"}, {"c"}, "c_relu");
    conv("d", "c", 8, 32, 1, 17);
    add_node(m, "GlobalAveragePool", {pooled_value}, {"pooled"}, "pool");
    add_output(m, "d_c", {1, 8, 10, 10});
    add_output(m, "pooled", {1, pooled_value == "c" ? 32 : 16, 1, 1});
    return m;
}

// Runs a compiled model named `name` on the raw float32 input in argv[1] and writes every
// output, one after another, to argv[2].
std::string run_outputs_app(const std::string& name) {
    return R"(#include <stdio.h>
#include <stdlib.h>
#include ")" +
           name + R"(.h"

int main(int argc, char** argv) {
    kiln_instance* m = NULL;
    kiln_options o;
    kiln_options_init(&o);
    if (argc != 3 || kiln_create(kiln_model_)" +
           name + R"((), &o, &m) != KILN_OK) return 1;
    kiln_tensor_info info;
    if (kiln_input_info(m, 0, &info) != KILN_OK) return 1;
    long long n = 1;
    for (int d = 0; d < info.rank; ++d) n *= info.shape[d];
    float* x = malloc(n * sizeof(float));
    FILE* f = fopen(argv[1], "rb");
    if (!f || fread(x, sizeof(float), n, f) != (size_t)n) return 1;
    fclose(f);
    void* outs[8];
    long long sizes[8];
    for (int i = 0; i < kiln_num_outputs(m); ++i) {
        if (kiln_output_info(m, i, &info) != KILN_OK) return 1;
        sizes[i] = 1;
        for (int d = 0; d < info.rank; ++d) sizes[i] *= info.shape[d];
        outs[i] = malloc(sizes[i] * sizeof(float));
    }
    const void* ins[1] = {x};
    if (kiln_run(m, ins, outs) != KILN_OK) {
        fprintf(stderr, "run: %s\n", kiln_last_error(m));
        return 1;
    }
    f = fopen(argv[2], "wb");
    for (int i = 0; i < kiln_num_outputs(m); ++i) fwrite(outs[i], sizeof(float), sizes[i], f);
    fclose(f);
    kiln_destroy(m);
    return 0;
}
)";
}

// One record per kernel task of `g` (`expected` of them) in the layouts extract_tasks(g, block)
// gives them, timed `ms`: conv2d kernels with `algorithm` and the space's defaults for the rest,
// other ops with their space's default config.
void add_configs(Database& db, const Graph& g, const Target& t, int64_t block,
                 const std::string& algorithm, double ms = 1.0, size_t expected = 4) {
    std::vector<Record> records;
    for (const KernelTask& task : extract_tasks(g, block).tasks) {
        const Workload& w = task.workload;
        Record r;
        r.workload = w;
        r.target_name = t.name;
        r.target_halide = t.halide;
        r.fingerprint = t.fingerprint;
        Config c;
        if (w.op == "conv2d") c.set("algorithm", algorithm);
        r.config = find_space(w.op).space(w, t).with_defaults(c);
        r.space_version = find_space(w.op).space(w, t).version;
        r.median_ms = r.min_ms = ms;
        r.repeats = 1;
        r.kiln_version = "test";
        r.time = utc_now();
        records.push_back(r);
    }
    EXPECT_EQ(records.size(), expected);
    db.add(records);
}

// A database at `path` that gives every kernel of `g` a direct config, as if tuning had chosen
// them.
std::unique_ptr<Database> direct_configs(const Graph& g, const Target& t, const std::string& path) {
    auto db = Database::open(path);
    add_configs(*db, g, t, 0, "direct");
    return db;
}

// The node name -> the layout segment of its kernel's key ("" for NCHW).
std::map<std::string, std::string> kernel_layouts(const CompileReport& r) {
    std::map<std::string, std::string> layouts;
    for (const CompiledNode& n : r.nodes) {
        if (n.workload.empty()) continue;
        EXPECT_EQ(n.kind, "tuned") << n.node;
        auto at = n.workload.find("/layout:");
        // The label is "'a' (kiln.Conv)": the name is enough.
        layouts[n.node.substr(0, n.node.find(' '))] =
            at == std::string::npos ? "" : n.workload.substr(at + 8);
    }
    return layouts;
}

// four_convs(pooled_value) written to DIR/NAME.onnx, imported, optimized and compiled into
// DIR/NAME with a direct config for every kernel (`block` false: with every activation NCHW).
CompileReport compile_four_convs(const ModelDir& dir, const std::string& pooled_value,
                                 const std::string& name, bool block = true) {
    Graph g = import_onnx(dir.write(four_convs(pooled_value), name + ".onnx"));
    optimize(g);
    auto db = direct_configs(g, host_target(), dir.path() + "/" + name + ".db");
    CompileOptions o;
    o.name = name;
    o.out_dir = dir.path() + "/" + name;
    o.target = host_target();
    o.db = db.get();
    o.block_activations = block;
    return compile_model(g, o);
}

TEST(Compile, ActivationsStayBlockedBetweenChannelBlockedKernels) {
    if (shell("cc --version").code != 0) GTEST_SKIP() << "no C compiler";
    ModelDir dir;
    CompileReport r = compile_four_convs(dir, "c", "blocked");
    EXPECT_EQ(r.kernel_activations, 4);
    EXPECT_EQ(r.blocked_activations, 2);  // a and b
    EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
    const std::string b = std::to_string(host_target().f32_lanes());
    std::map<std::string, std::string> layouts = kernel_layouts(r);
    EXPECT_EQ(layouts["'a'"], "o" + b);
    EXPECT_EQ(layouts["'b'"], "i" + b + "r" + b + "o" + b);
    EXPECT_EQ(layouts["'c'"], "i" + b);
    EXPECT_EQ(layouts["'d'"], "");
    auto j = nlohmann::json::parse(std::ifstream(r.json));
    EXPECT_EQ(j["layout"]["blocked_activations"], 2);
    CompileReport plain = compile_four_convs(dir, "c", "nchw", false);
    EXPECT_EQ(plain.blocked_activations, 0);
    for (const CompiledNode& n : plain.nodes)
        EXPECT_EQ(n.workload.find("/layout:"), std::string::npos) << n.workload;

    const std::string out = dir.path() + "/blocked";
    std::ofstream(dir.path() + "/app.c") << run_outputs_app("blocked");
    Shell link = shell("cc -std=c99 -O1 -I" + out + " " + dir.path() + "/app.c " + out +
                       "/libblocked.a -lpthread -ldl -lm -o " + dir.path() + "/app");
    ASSERT_EQ(link.code, 0) << link.out;
    const std::vector<float> x = random_floats(16 * 10 * 10, 19);
    write_floats(dir.path() + "/x.bin", x);
    Shell run = shell(dir.path() + "/app " + dir.path() + "/x.bin " + dir.path() + "/y.bin");
    ASSERT_EQ(run.code, 0) << run.out;
    const std::vector<float> got = read_floats(dir.path() + "/y.bin", 8 * 100 + 32);
    auto want = evaluate_reference(import_onnx(dir.path() + "/blocked.onnx"),
                                   {{"x", Tensor::from_f32({1, 16, 10, 10}, x)}});
    const Tensor& d = want.at("d_c");
    const Tensor& pooled = want.at("pooled");
    EXPECT_LT(
        relative_error({got.begin(), got.begin() + 800}, {d.data<float>(), d.data<float>() + 800}),
        1e-5);
    EXPECT_LT(relative_error({got.begin() + 800, got.end()},
                             {pooled.data<float>(), pooled.data<float>() + 32}),
              1e-5);
}

TEST(Compile, ABlockedResidualFeedsAnNchwOutput) {
    // The pooling reads b, so b is NCHW; a is still blocked, read by b as its data input and as
    // the residual it adds into NCHW rows. c goes to d blocked.
    if (shell("cc --version").code != 0) GTEST_SKIP() << "no C compiler";
    ModelDir dir;
    CompileReport r = compile_four_convs(dir, "b", "residual");
    EXPECT_EQ(r.blocked_activations, 2);
    const std::string b = std::to_string(host_target().f32_lanes());
    std::map<std::string, std::string> layouts = kernel_layouts(r);
    EXPECT_EQ(layouts["'a'"], "o" + b);
    EXPECT_EQ(layouts["'b'"], "i" + b + "r" + b);
    EXPECT_EQ(layouts["'c'"], "o" + b);
    EXPECT_EQ(layouts["'d'"], "i" + b);
}

// An inverted residual block: expand 1x1, depthwise 3x3, project 1x1. The depthwise kernel reads
// and writes channel blocks, so both activations around it stay blocked; the project conv writes
// the NCHW graph output.
TEST(Compile, ActivationsAroundADepthwiseKernelStayBlocked) {
    if (shell("cc --version").code != 0) GTEST_SKIP() << "no C compiler";
    const Target t = host_target();
    const int64_t b = t.f32_lanes(), wide = 2 * b;
    onnx::ModelProto m = new_model(13);
    add_input(m, "x", {1, b, 10, 10});
    auto conv = [&](const std::string& name, const std::string& in, int64_t k, int64_t c, int64_t r,
                    int64_t group, uint64_t seed) {
        add_init(m, name + "_w", {k, c / group, r, r},
                 random_floats(size_t(k * (c / group) * r * r), seed));
        add_init(m, name + "_b", {k}, random_floats(size_t(k), seed + 1));
        auto* n = add_node(m, "Conv", {in, name + "_w", name + "_b"}, {name + "_c"}, name);
        set_ints(n, "pads", {r / 2, r / 2, r / 2, r / 2});
        set_ints(n, "kernel_shape", {r, r});
        if (group > 1) set_int(n, "group", group);
    };
    conv("e", "x", wide, b, 1, 1, 21);
    add_node(m, "Relu", {"e_c"}, {"e"}, "e_relu");
    conv("dw", "e", wide, wide, 3, wide, 23);
    add_node(m, "Relu", {"dw_c"}, {"dw"}, "dw_relu");
    conv("p", "dw", b, wide, 1, 1, 25);
    add_node(m, "Add", {"p_c", "x"}, {"y"}, "p_add");
    add_output(m, "y", {1, b, 10, 10});
    ModelDir dir;
    Graph g = import_onnx(dir.write(m, "inverted.onnx"));
    optimize(g);
    // Direct configs for the two convolutions; the depthwise kernel's default computes in
    // channel blocks (nchwc) on a 10-column image.
    auto db = Database::open(dir.path() + "/inverted.db");
    add_configs(*db, g, t, 0, "direct", 1.0, 3);
    CompileOptions o;
    o.name = "inverted";
    o.out_dir = dir.path() + "/inverted";
    o.target = t;
    o.db = db.get();
    CompileReport r = compile_model(g, o);
    EXPECT_EQ(r.blocked_activations, 2);
    std::map<std::string, std::string> layouts = kernel_layouts(r);
    const std::string bs = std::to_string(b);
    EXPECT_EQ(layouts["'e'"], "o" + bs);
    EXPECT_EQ(layouts["'dw'"], "i" + bs + "o" + bs);
    EXPECT_EQ(layouts["'p'"], "i" + bs);

    const std::string out = dir.path() + "/inverted";
    std::ofstream(dir.path() + "/app.c") << run_outputs_app("inverted");
    Shell link = shell("cc -std=c99 -O1 -I" + out + " " + dir.path() + "/app.c " + out +
                       "/libinverted.a -lpthread -ldl -lm -o " + dir.path() + "/app");
    ASSERT_EQ(link.code, 0) << link.out;
    const size_t n = size_t(b * 100);
    const std::vector<float> x = random_floats(n, 27);
    write_floats(dir.path() + "/x.bin", x);
    Shell run = shell(dir.path() + "/app " + dir.path() + "/x.bin " + dir.path() + "/y.bin");
    ASSERT_EQ(run.code, 0) << run.out;
    const std::vector<float> got = read_floats(dir.path() + "/y.bin", n);
    auto want = evaluate_reference(import_onnx(dir.path() + "/inverted.onnx"),
                                   {{"x", Tensor::from_f32({1, b, 10, 10}, x)}});
    const Tensor& y = want.at("y");
    EXPECT_LT(relative_error(got, {y.data<float>(), y.data<float>() + n}), 1e-5);
}

TEST(Compile, AKernelTakesTheRecordOfItsPlannedLayout) {
    // NCHW records say im2col, which computes NCHW only; the records of the layouts kiln tune
    // tunes (extract_tasks with the vector width) say direct, and are faster: the planned
    // layouts hold.
    if (shell("cc --version").code != 0) GTEST_SKIP() << "no C compiler";
    ModelDir dir;
    Graph g = import_onnx(dir.write(four_convs("c"), "planned.onnx"));
    optimize(g);
    const Target t = host_target();
    const std::string b = std::to_string(t.f32_lanes());
    auto db = Database::open(dir.path() + "/planned.db");
    add_configs(*db, g, t, 0, "im2col");
    CompileOptions o;
    o.name = "planned";
    o.out_dir = dir.path() + "/nchw_records";
    o.target = t;
    o.db = db.get();
    CompileReport only_nchw = compile_model(g, o);
    EXPECT_EQ(only_nchw.blocked_activations, 0);
    for (const CompiledNode& n : only_nchw.nodes)
        if (!n.workload.empty()) EXPECT_NE(n.config.find("im2col"), std::string::npos) << n.config;

    add_configs(*db, g, t, t.f32_lanes(), "direct", 0.5);
    o.out_dir = dir.path() + "/planned";
    CompileReport r = compile_model(g, o);
    EXPECT_EQ(r.blocked_activations, 2);
    EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
    std::map<std::string, std::string> layouts = kernel_layouts(r);
    EXPECT_EQ(layouts["'a'"], "o" + b);
    EXPECT_EQ(layouts["'b'"], "i" + b + "r" + b + "o" + b);
    EXPECT_EQ(layouts["'c'"], "i" + b);
    EXPECT_EQ(layouts["'d'"], "");
    // d's blockable key is its NCHW key, whose best record is now the faster direct one.
    for (const CompiledNode& n : r.nodes) {
        if (n.workload.empty()) continue;
        EXPECT_EQ(n.kind, "tuned") << n.node;
        EXPECT_NE(n.config.find("direct"), std::string::npos) << n.node << " " << n.config;
    }

    // Blocked records slower than the NCHW ones (tuned less far, say) do not replace them.
    auto slower = Database::open(dir.path() + "/slower.db");
    add_configs(*slower, g, t, 0, "im2col");
    add_configs(*slower, g, t, t.f32_lanes(), "direct", 2.0);
    o.db = slower.get();
    o.out_dir = dir.path() + "/slower";
    CompileReport s = compile_model(g, o);
    EXPECT_EQ(s.blocked_activations, 0);
    for (const CompiledNode& n : s.nodes)
        if (!n.workload.empty()) EXPECT_NE(n.config.find("im2col"), std::string::npos) << n.config;
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

// ---- Tuning a whole model (`kiln tune`) -------------------------------------------------------

// `kiln tune MODEL` with a tiny budget: no waiting for a quiet machine, 10 ms of timing.
std::string tune_command(const std::string& model, const std::string& db, const std::string& more) {
    return std::string(KILN_BINARY) + " tune " + model + " --db " + db +
           " --batch 2 --quiet-wait 0 --min-time 0.01 " +
           (more.find("--confirm") == std::string::npos ? "--confirm 0 " : "") + more;
}

// (workload key, config hash) of every record, and whether any pair repeats.
std::pair<size_t, bool> record_count(const std::string& db_path) {
    std::set<std::pair<std::string, uint64_t>> seen;
    bool repeated = false;
    for (const Record& r : Database::open(db_path)->records({}))
        repeated |= !seen.insert({r.workload.key(), r.config.hash()}).second;
    return {seen.size(), repeated};
}

size_t line_count(const std::string& path) {
    std::ifstream in(path);
    size_t n = 0;
    for (std::string line; std::getline(in, line);)
        n += !line.empty();
    return n;
}

TEST(Tune, TunesEachKernelInItsPlannedLayout) {
    // four_convs' first kernel writes a channel-blocked output when compiled: it is tuned so;
    // with --nchw, as NCHW.
    ModelDir dir;
    const std::string model = dir.write(four_convs("c"), "four.onnx");
    const std::string b = std::to_string(host_target().f32_lanes());
    for (bool nchw : {false, true}) {
        const std::string db = dir.path() + (nchw ? "/nchw.db" : "/blocked.db");
        Shell r =
            shell(tune_command(model, db, std::string("--trials 2") + (nchw ? " --nchw" : "")));
        ASSERT_EQ(r.code, 0) << r.out;
        EXPECT_NE(r.out.find("4 tasks (4 kernels"), std::string::npos) << r.out;
        std::set<std::string> keys;
        for (const Record& rec : Database::open(db)->records({}))
            keys.insert(rec.workload.key());
        const std::string a = "conv2d/n1c16h10w10/k16r3s3/st1p1d1g1/f32/bias+relu";
        EXPECT_EQ(keys, std::set<std::string>{nchw ? a : a + "/layout:o" + b}) << r.out;
    }
}

TEST(Tune, TunesEveryKernelAndContinuesTheCurve) {
    ModelDir dir;
    const std::string model = dir.write(small_cnn()), db = dir.path() + "/t.db",
                      log = dir.path() + "/curve.jsonl", svg = dir.path() + "/curve.svg";
    Shell first = shell(tune_command(model, db, "--trials 6 --log " + log + " --report " + svg));
    ASSERT_EQ(first.code, 0) << first.out;
    EXPECT_NE(first.out.find("2 tasks (2 kernels"), std::string::npos) << first.out;
    EXPECT_NE(first.out.find("stopped   trials: 6 trials"), std::string::npos) << first.out;
    EXPECT_NE(first.out.find("estimate  "), std::string::npos) << first.out;
    EXPECT_NE(first.out.find("dense/m1n10k256/f32/bias"), std::string::npos) << first.out;
    EXPECT_EQ(record_count(db), std::make_pair(size_t(6), false));
    EXPECT_EQ(line_count(log), 3u);
    std::ifstream drawn(svg);
    std::string text((std::istreambuf_iterator<char>(drawn)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("<path d='M"), std::string::npos) << text;

    // Again: four more trials, none measured before, and the log goes on counting.
    Shell second = shell(tune_command(model, db, "--trials 4 --log " + log));
    ASSERT_EQ(second.code, 0) << second.out;
    EXPECT_NE(second.out.find("resume    every task has records"), std::string::npos) << second.out;
    EXPECT_EQ(record_count(db), std::make_pair(size_t(10), false));
    EXPECT_EQ(line_count(log), 5u);
    std::vector<std::string> lines;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    const std::string last = lines.empty() ? "{}" : lines.back();
    EXPECT_EQ(nlohmann::json::parse(last).at("trials").get<int>(), 10) << last;

    Shell bad = shell(tune_command(model, db, "--trials 2 --schedule fastest"));
    EXPECT_EQ(bad.code, 2) << bad.out;
    EXPECT_NE(bad.out.find("unknown task schedule 'fastest'"), std::string::npos) << bad.out;
    Shell no_budget = shell(tune_command(model, db, ""));
    EXPECT_EQ(no_budget.code, 2) << no_budget.out;
    EXPECT_NE(no_budget.out.find("--trials N or --time"), std::string::npos) << no_budget.out;
    Shell bad_report =
        shell(tune_command(model, db, "--trials 2 --report " + dir.path() + "/c.png"));
    EXPECT_EQ(bad_report.code, 2) << bad_report.out;
    EXPECT_NE(bad_report.out.find(".svg or an .html"), std::string::npos) << bad_report.out;
}

// --time is a hard budget: the run stops at the deadline, between candidates, without the
// final comparison.
TEST(Tune, TimeIsAHardBudget) {
    ModelDir dir;
    const std::string model = dir.write(small_cnn()), db = dir.path() + "/t.db";
    auto start = std::chrono::steady_clock::now();
    Shell r = shell(tune_command(model, db, "--time 3s --confirm 4"));
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("stopped   time: "), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("comparing the fastest"), std::string::npos) << r.out;
    // Import and the candidate in flight come on top of the 3 s; a batch takes about a second.
    EXPECT_LT(took, 3 + 20) << r.out;
    EXPECT_FALSE(record_count(db).second);
}

// Killed with SIGKILL mid-run: the database opens cleanly with whole batches, and the rerun
// measures none of them again.
TEST(Tune, SigkillLosesNothingCommittedAndRerunMeasuresNothingTwice) {
    ModelDir dir;
    const std::string model = dir.write(small_cnn()), db = dir.path() + "/t.db";
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl("/bin/sh", "sh", "-c", ("exec " + tune_command(model, db, "--trials 60")).c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
    }
    size_t committed = 0;
    for (int i = 0; i < 600 && committed < 4; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (fs::exists(db)) committed = record_count(db).first;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_GE(committed, 4u) << "kiln tune committed nothing in 60 s";

    auto [before, repeated] = record_count(db);
    EXPECT_FALSE(repeated);
    EXPECT_EQ(before % 2, 0u) << "a batch was committed in part";
    Shell again = shell(tune_command(model, db, "--trials 4"));
    ASSERT_EQ(again.code, 0) << again.out;
    EXPECT_EQ(record_count(db), std::make_pair(before + 4, false));
}

// ---- `kiln bench`: the model against PyTorch ----------------------------------------------------

// Debian's python3-torch and python3-onnx, which the PyTorch peer needs; CI machines may lack them.
bool have_torch() {
    return shell("/usr/bin/python3 -c 'import torch, onnx, numpy'").code == 0;
}

TEST(Bench, TimesKilnBesidePyTorchAfterComparingOutputs) {
    if (!have_torch()) GTEST_SKIP() << "python3-torch or python3-onnx is not installed";
    ModelDir dir;
    const std::string model = dir.write(small_cnn()), json = dir.path() + "/bench.json";
    Shell r = shell(std::string(KILN_BINARY) + " bench " + model +
                    " --no-db --rounds 2 --runs 3 --min-time 0 --threads 1 --json " + json);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("0/2 kernels tuned"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("round 2/2"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("PyTorch optimized"), std::string::npos) << r.out;
    const nlohmann::json j = nlohmann::json::parse(std::ifstream(json));
    for (const char* who : {"kiln", "eager", "torchscript", "optimized"}) {
        ASSERT_TRUE(j["runners"].contains(who)) << j.dump();
        EXPECT_EQ(j["runners"][who]["round_medians_ms"].size(), 2u) << who;
        EXPECT_GT(j["runners"][who]["median_ms"].get<double>(), 0) << who;
        if (std::string(who) != "kiln")
            EXPECT_LE(j["runners"][who]["relative_error"]["kiln"].get<double>(), 1e-4) << who;
    }
    EXPECT_EQ(j["threads"].get<int>(), 1);
}

TEST(Bench, RefusesBadInputAndTimesKilnAloneWithoutPyTorch) {
    ModelDir dir;
    const std::string model = dir.write(small_cnn());
    const std::string kiln = std::string(KILN_BINARY) + " bench ";
    Shell variant = shell(kiln + model + " --no-db --variants eager,fastest");
    EXPECT_EQ(variant.code, 2) << variant.out;
    EXPECT_NE(variant.out.find("unknown PyTorch variant 'fastest'"), std::string::npos)
        << variant.out;
    Shell missing = shell(kiln + dir.path() + "/none.onnx");
    EXPECT_EQ(missing.code, 2) << missing.out;
    EXPECT_NE(missing.out.find("none.onnx' is not a file"), std::string::npos) << missing.out;
    // A Python without torch: the peer's first line names what is missing.
    Shell no_python = shell(kiln + model + " --no-db --python /bin/false --rounds 1");
    EXPECT_EQ(no_python.code, 2) << no_python.out;
    EXPECT_NE(no_python.out.find("PyTorch peer"), std::string::npos) << no_python.out;
    Shell alone = shell(kiln + model + " --no-db --no-torch --rounds 1 --runs 2 --min-time 0");
    ASSERT_EQ(alone.code, 0) << alone.out;
    EXPECT_NE(alone.out.find("kiln (0/2 tuned)"), std::string::npos) << alone.out;
    EXPECT_EQ(alone.out.find("PyTorch"), std::string::npos) << alone.out;
}

}  // namespace
}  // namespace kiln
