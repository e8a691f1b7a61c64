// The graph passes and kernel-task extraction on small ONNX models built here: each model is
// imported, run by the reference interpreter on a random input, rewritten by a pass and run
// again. BN folding must agree within 1e-5 (relative to the output's largest magnitude), fusion
// exactly where the fused node computes what the graph did in the same float steps and within
// 1e-6 where a bias moves out of the accumulation; the node counts and op types are what the
// pass promises, and the cases that must not fuse do not, with a note naming why.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "graph/fused.h"
#include "graph/ir.h"
#include "graph/onnx_import.h"
#include "graph/passes.h"
#include "graph/reference.h"
#include "graph/tasks.h"
#include "tests/onnx_models.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace kiln::graph;
using namespace kiln::test_onnx;

namespace {

// ---- Building models -----------------------------------------------------------------------

// Uniform values in [lo, hi), the same for the same seed.
std::vector<float> uniform_values(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(gen);
    return v;
}

size_t count(const std::vector<int64_t>& shape) {
    size_t n = 1;
    for (int64_t d : shape)
        n *= static_cast<size_t>(d);
    return n;
}

// A random initializer of this shape.
void add_weight(onnx::ModelProto& m, const std::string& name, const std::vector<int64_t>& shape,
                uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    add_init(m, name, shape, uniform_values(count(shape), seed, lo, hi));
}

// Conv with a k x 3 x 3 weight `name`_w, pads 1, an optional bias `name`_b.
void add_conv(onnx::ModelProto& m, const std::string& name, const std::string& in,
              const std::string& out, int64_t c, int64_t k, bool bias, uint32_t seed) {
    add_weight(m, name + "_w", {k, c, 3, 3}, seed, -0.5f, 0.5f);
    std::vector<std::string> inputs = {in, name + "_w"};
    if (bias) {
        add_weight(m, name + "_b", {k}, seed + 1);
        inputs.push_back(name + "_b");
    }
    auto* conv = add_node(m, "Conv", inputs, {out}, name);
    set_ints(conv, "pads", {1, 1, 1, 1});
}

// BatchNormalization `name` over k channels, with a positive variance and epsilon 1e-3.
void add_bn(onnx::ModelProto& m, const std::string& name, const std::string& in,
            const std::string& out, int64_t k, uint32_t seed) {
    add_weight(m, name + "_scale", {k}, seed, 0.5f, 2.0f);
    add_weight(m, name + "_shift", {k}, seed + 1);
    add_weight(m, name + "_mean", {k}, seed + 2);
    add_weight(m, name + "_var", {k}, seed + 3, 0.25f, 4.0f);
    auto* bn = add_node(m, "BatchNormalization",
                        {in, name + "_scale", name + "_shift", name + "_mean", name + "_var"},
                        {out}, name);
    auto* eps = bn->add_attribute();
    eps->set_name("epsilon");
    eps->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    eps->set_f(1e-3f);
}

// ---- Checking graphs -----------------------------------------------------------------------

std::vector<std::string> ops(const Graph& g) {
    std::vector<std::string> v;
    for (const Node& n : g.nodes)
        v.push_back(n.op);
    return v;
}

bool any_note_has(const std::vector<std::string>& notes, const std::string& text) {
    for (const auto& n : notes)
        if (n.find(text) != std::string::npos) return true;
    return false;
}

std::string all_notes(const std::vector<std::string>& notes) {
    std::string s;
    for (const auto& n : notes)
        s += "  " + n + "\n";
    return s;
}

using Outputs = std::map<std::string, Tensor>;

// Random values for every graph input.
Outputs run(const Graph& g, uint32_t seed = 7) {
    Outputs feed;
    for (ValueId id : g.inputs) {
        const Value& v = g.value(id);
        feed[v.name] =
            Tensor::from_f32(v.shape, uniform_values(count(v.shape), seed++, -2.0f, 2.0f));
    }
    return evaluate_reference(g, feed);
}

// max |a - b| over the outputs, divided by the largest |b| (at least 1e-30).
double max_rel_diff(const Outputs& a, const Outputs& b) {
    double diff = 0, scale = 1e-30;
    EXPECT_EQ(a.size(), b.size());
    for (const auto& [name, tb] : b) {
        auto it = a.find(name);
        if (it == a.end()) {
            ADD_FAILURE() << "output '" << name << "' is missing";
            return INFINITY;
        }
        const Tensor& ta = it->second;
        EXPECT_EQ(ta.shape, tb.shape) << name;
        if (ta.numel() != tb.numel()) return INFINITY;
        for (int64_t i = 0; i < tb.numel(); ++i) {
            diff = std::max(diff, std::fabs(double(ta.data<float>()[i]) - tb.data<float>()[i]));
            scale = std::max(scale, std::fabs(double(tb.data<float>()[i])));
        }
    }
    return diff / scale;
}

class GraphPasses : public ::testing::Test {
  protected:
    Graph import(const onnx::ModelProto& m) { return import_onnx(models_.write(m)); }

    ModelDir models_;
};

// x[1,3,8,8] -> Conv(4, 3x3, pad 1, bias) -> BatchNormalization -> Relu -> y
onnx::ModelProto conv_bn_relu() {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3, 8, 8});
    add_conv(m, "conv", "x", "c", 3, 4, true, 10);
    add_bn(m, "bn", "c", "b", 4, 20);
    add_node(m, "Relu", {"b"}, {"y"}, "relu");
    add_output(m, "y", {1, 4, 8, 8});
    return m;
}

// A ResNet basic block: conv-bn-relu-conv-bn, + x, relu. `x_first` writes the Add as (x, bn2).
onnx::ModelProto basic_block(bool x_first) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4, 8, 8});
    add_conv(m, "conv1", "x", "c1", 4, 4, false, 30);
    add_bn(m, "bn1", "c1", "b1", 4, 40);
    add_node(m, "Relu", {"b1"}, {"r1"}, "relu1");
    add_conv(m, "conv2", "r1", "c2", 4, 4, false, 50);
    add_bn(m, "bn2", "c2", "b2", 4, 60);
    add_node(m, "Add",
             x_first ? std::vector<std::string>{"x", "b2"} : std::vector<std::string>{"b2", "x"},
             {"s"}, "add");
    add_node(m, "Relu", {"s"}, {"y"}, "relu2");
    add_output(m, "y", {1, 4, 8, 8});
    return m;
}

}  // namespace

TEST_F(GraphPasses, ConvBnReluFoldsThenFuses) {
    Graph g = import(conv_bn_relu());
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "BatchNormalization", "Relu"}));
    const Outputs before = run(g);

    PassResult bn = fold_batch_norm(g);
    EXPECT_EQ(bn.changed, 1) << all_notes(bn.notes);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "Relu"}));
    EXPECT_NO_THROW(g.validate());
    const Outputs folded = run(g);
    EXPECT_LE(max_rel_diff(folded, before), 1e-5);
    EXPECT_EQ(g.find_value("bn_scale"), kNoId);  // the BN's constants are pruned

    PassResult fuse = fuse_epilogues(g);
    EXPECT_EQ(fuse.changed, 1);
    EXPECT_EQ(fuse.fused, 1);
    EXPECT_EQ(fuse.absorbed, 1);
    ASSERT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv"}));
    const Node& k = g.nodes[0];
    EXPECT_EQ(k.name, "conv");
    EXPECT_EQ(k.attr_string("epilogue", "?"), "bias+relu");
    EXPECT_EQ(k.attr_string("fused", ""), "'bn' (BatchNormalization), 'relu' (Relu)");
    EXPECT_EQ(g.value(k.outputs[0]).name, "y");  // the graph output keeps its name
    // The conv's bias moves out of the double accumulation into a float add: rounding only.
    EXPECT_LE(max_rel_diff(run(g), folded), 1e-6);

    // optimize() on a fresh import does both and says so.
    Graph g2 = import(conv_bn_relu());
    PassReport report = optimize(g2);
    EXPECT_EQ(report.nodes_before, 3u);
    EXPECT_EQ(report.nodes_after, 1u);
    EXPECT_EQ(report.batch_norms_folded, 1);
    EXPECT_EQ(report.kernel_nodes, 1);
    EXPECT_EQ(report.epilogues_fused, 1);
    EXPECT_EQ(report.nodes_absorbed, 1);
    EXPECT_TRUE(report.notes.empty()) << all_notes(report.notes);
    EXPECT_NE(report.to_string().find("batch norms folded  1\n"), std::string::npos)
        << report.to_string();
    EXPECT_LE(max_rel_diff(run(g2), before), 1e-5);
}

TEST_F(GraphPasses, TwoBatchNormsInARowBothFold) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3, 8, 8});
    add_conv(m, "conv", "x", "c", 3, 4, false, 170);
    add_bn(m, "bn1", "c", "b1", 4, 180);
    add_bn(m, "bn2", "b1", "y", 4, 190);
    add_output(m, "y", {1, 4, 8, 8});
    Graph g = import(m);
    const Outputs before = run(g);
    PassResult r = fold_batch_norm(g);
    EXPECT_EQ(r.changed, 2) << all_notes(r.notes);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv"}));
    EXPECT_EQ(g.nodes[0].attr_string("fused", ""),
              "'bn1' (BatchNormalization), 'bn2' (BatchNormalization)");
    EXPECT_LE(max_rel_diff(run(g), before), 1e-5);
}

TEST_F(GraphPasses, BasicBlockGivesTwoFusedConvsTheSecondWithResidual) {
    for (bool x_first : {false, true}) {
        SCOPED_TRACE(x_first ? "Add(x, bn2)" : "Add(bn2, x)");
        Graph g = import(basic_block(x_first));
        EXPECT_EQ(g.nodes.size(), 7u);
        const Outputs before = run(g);
        PassReport report = optimize(g);
        EXPECT_EQ(report.nodes_before, 7u);
        EXPECT_EQ(report.nodes_after, 2u);
        EXPECT_EQ(report.batch_norms_folded, 2);
        EXPECT_EQ(report.kernel_nodes, 2);
        EXPECT_EQ(report.epilogues_fused, 2);
        EXPECT_EQ(report.nodes_absorbed, 3);  // relu1; add, relu2
        ASSERT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv", "kiln.Conv"}));
        EXPECT_EQ(g.nodes[0].attr_string("epilogue", "?"), "bias+relu");
        EXPECT_EQ(g.nodes[1].attr_string("epilogue", "?"), "bias+add+relu");
        ASSERT_EQ(g.nodes[1].inputs.size(), 4u);
        EXPECT_EQ(g.value(g.nodes[1].inputs[kFusedResidual]).name, "x");
        EXPECT_EQ(g.nodes[1].inputs[kFusedData], g.nodes[0].outputs[0]);
        EXPECT_LE(max_rel_diff(run(g), before), 1e-5);
    }
}

TEST_F(GraphPasses, ConvBiasAddClipBecomesBiasRelu6) {
    // The bias as [1,4,1,1] after the conv, and as [4,1,1] before it (Add(bias, conv)).
    for (bool leading_one : {true, false}) {
        SCOPED_TRACE(leading_one ? "[1,4,1,1]" : "[4,1,1]");
        onnx::ModelProto m = new_model();
        add_input(m, "x", {1, 3, 8, 8});
        add_weight(m, "w", {4, 3, 3, 3}, 70, -2.0f, 2.0f);  // outputs well beyond 0..6
        add_weight(m, "bias",
                   leading_one ? std::vector<int64_t>{1, 4, 1, 1} : std::vector<int64_t>{4, 1, 1},
                   71, -3.0f, 3.0f);
        add_init(m, "lo", {}, {0.0f});
        add_init(m, "hi", {}, {6.0f});
        auto* conv = add_node(m, "Conv", {"x", "w"}, {"c"}, "conv");
        set_ints(conv, "pads", {1, 1, 1, 1});
        add_node(m, "Add",
                 leading_one ? std::vector<std::string>{"c", "bias"}
                             : std::vector<std::string>{"bias", "c"},
                 {"a"}, "add");
        add_node(m, "Clip", {"a", "lo", "hi"}, {"y"}, "clip");
        add_output(m, "y", {1, 4, 8, 8});
        Graph g = import(m);
        const Outputs before = run(g);
        PassResult r = fuse_epilogues(g);
        EXPECT_EQ(r.absorbed, 2);
        ASSERT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv"}));
        EXPECT_EQ(g.nodes[0].attr_string("epilogue", "?"), "bias+relu6");
        EXPECT_EQ(g.value(g.nodes[0].inputs[kFusedBias]).shape, (std::vector<int64_t>{4}));
        // Conv rounded to float, + bias in float, clip: the same steps, the same bits.
        EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
        const float* y = before.at("y").data<float>();
        EXPECT_EQ(*std::max_element(y, y + 256), 6.0f);  // the clip is exercised
        EXPECT_EQ(*std::min_element(y, y + 256), 0.0f);
    }
}

TEST_F(GraphPasses, GemmWithBiasBecomesDense) {
    for (int64_t trans_b : {1, 0}) {
        SCOPED_TRACE("transB " + std::to_string(trans_b));
        onnx::ModelProto m = new_model();
        add_input(m, "x", {2, 8});
        add_weight(m, "w", trans_b ? std::vector<int64_t>{5, 8} : std::vector<int64_t>{8, 5}, 80);
        add_weight(m, "b", {5}, 81);
        auto* gemm = add_node(m, "Gemm", {"x", "w", "b"}, {"g"}, "fc");
        set_int(gemm, "transB", trans_b);
        add_node(m, "Relu", {"g"}, {"y"}, "relu");
        add_output(m, "y", {2, 5});
        Graph g = import(m);
        const Outputs before = run(g);
        const Tensor w = *g.value(g.find_value("w")).data;
        PassResult r = fuse_epilogues(g);
        EXPECT_EQ(r.changed, 1);
        EXPECT_EQ(r.absorbed, 1);
        ASSERT_EQ(ops(g), (std::vector<std::string>{"kiln.Dense"}));
        const Node& d = g.nodes[0];
        EXPECT_EQ(d.attr_string("epilogue", "?"), "bias+relu");
        const Value& dw = g.value(d.inputs[kFusedWeight]);
        ASSERT_EQ(dw.shape, (std::vector<int64_t>{5, 8}));  // dense's [N, K]
        for (int64_t j = 0; j < 5; ++j)
            for (int64_t p = 0; p < 8; ++p)
                EXPECT_EQ(dw.data->data<float>()[j * 8 + p],
                          w.data<float>()[trans_b ? j * 8 + p : p * 5 + j]);
        EXPECT_EQ(g.value(d.inputs[kFusedBias]).name, "b");  // C [N] is the bias as it is
        // Gemm adds C inside its double sum; the kernel adds it to the float result.
        EXPECT_LE(max_rel_diff(run(g), before), 1e-6);
    }
}

TEST_F(GraphPasses, MatMulAddBecomesDenseWithBias) {
    // A 2-D input, and a 3-D one whose leading dimensions the dense op flattens into m.
    for (bool three_d : {false, true}) {
        SCOPED_TRACE(three_d ? "[2,3,8]" : "[3,8]");
        const std::vector<int64_t> in =
            three_d ? std::vector<int64_t>{2, 3, 8} : std::vector<int64_t>{3, 8};
        std::vector<int64_t> out = in;
        out.back() = 5;
        onnx::ModelProto m = new_model();
        add_input(m, "x", in);
        add_weight(m, "w", {8, 5}, 90);
        add_weight(m, "b", {5}, 91);
        add_node(m, "MatMul", {"x", "w"}, {"mm"}, "matmul");
        add_node(m, "Add", {"mm", "b"}, {"y"}, "add");
        add_output(m, "y", out);
        Graph g = import(m);
        const Outputs before = run(g);
        PassReport report = optimize(g);
        EXPECT_EQ(report.nodes_after, 1u);
        ASSERT_EQ(ops(g), (std::vector<std::string>{"kiln.Dense"}));
        EXPECT_EQ(g.nodes[0].attr_string("epilogue", "?"), "bias");
        EXPECT_EQ(max_rel_diff(run(g), before), 0.0);  // the same float steps
        TaskList tasks = extract_tasks(g);
        ASSERT_EQ(tasks.tasks.size(), 1u);
        EXPECT_EQ(tasks.tasks[0].key, three_d ? "dense/m6n5k8/f32/bias" : "dense/m3n5k8/f32/bias");
    }
}

// conv1 -> relu -> r, read by conv2 and by the Add after conv2: the Add cannot join conv1's
// kernel (r has two readers) but is conv2's residual, so no note says it was not fused.
TEST_F(GraphPasses, AnAddTakenAsTheNextKernelsResidualGetsNoNote) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4, 8, 8});
    add_conv(m, "conv1", "x", "c1", 4, 4, true, 200);
    add_node(m, "Relu", {"c1"}, {"r"}, "relu");
    add_conv(m, "conv2", "r", "c2", 4, 4, false, 210);
    add_node(m, "Add", {"r", "c2"}, {"y"}, "add");
    add_output(m, "y", {1, 4, 8, 8});
    Graph g = import(m);
    const Outputs before = run(g);
    PassReport report = optimize(g);
    ASSERT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv", "kiln.Conv"}));
    EXPECT_EQ(g.nodes[0].attr_string("epilogue", "?"), "bias+relu");
    EXPECT_EQ(g.nodes[1].attr_string("epilogue", "?"), "add");
    EXPECT_TRUE(report.notes.empty()) << all_notes(report.notes);
    EXPECT_LE(max_rel_diff(run(g), before), 1e-6);
}

// ---- What must not fuse --------------------------------------------------------------------

TEST_F(GraphPasses, AnIntermediateReadTwiceIsNotFused) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3, 8, 8});
    add_conv(m, "conv", "x", "c", 3, 4, false, 100);
    add_node(m, "Relu", {"c"}, {"y1"}, "relu");
    add_node(m, "Sigmoid", {"c"}, {"y2"}, "sigmoid");
    add_output(m, "y1", {1, 4, 8, 8});
    add_output(m, "y2", {1, 4, 8, 8});
    Graph g = import(m);
    const Outputs before = run(g);
    PassReport report = optimize(g);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv", "Relu", "Sigmoid"}));
    EXPECT_EQ(g.nodes[0].attr_string("epilogue", "?"), "");
    EXPECT_EQ(report.epilogues_fused, 0);
    EXPECT_TRUE(any_note_has(report.notes,
                             "'relu' (Relu) not fused into 'conv' (Conv): 'c' is "
                             "read 2 times"))
        << all_notes(report.notes);
    EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
}

TEST_F(GraphPasses, ABatchNormWhoseInputIsAGraphOutputStays) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3, 8, 8});
    add_conv(m, "conv", "x", "c", 3, 4, true, 110);
    add_bn(m, "bn", "c", "y", 4, 120);
    add_output(m, "c", {1, 4, 8, 8});
    add_output(m, "y", {1, 4, 8, 8});
    Graph g = import(m);
    const Outputs before = run(g);
    PassResult r = fold_batch_norm(g);
    EXPECT_EQ(r.changed, 0);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "BatchNormalization"}));
    EXPECT_TRUE(any_note_has(r.notes,
                             "'bn' (BatchNormalization) stays: its input 'c' is also a "
                             "graph output"))
        << all_notes(r.notes);
    PassReport report = optimize(g);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv", "BatchNormalization"}));
    EXPECT_EQ(g.nodes[0].attr_string("epilogue", "?"), "bias");
    EXPECT_LE(max_rel_diff(run(g), before), 1e-6);
}

TEST_F(GraphPasses, AClipWithARunTimeMinIsNotFused) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3, 8, 8});
    add_input(m, "lo", {});
    add_init(m, "hi", {}, {6.0f});
    add_conv(m, "conv", "x", "c", 3, 4, false, 130);
    add_node(m, "Clip", {"c", "lo", "hi"}, {"y"}, "clip");
    add_output(m, "y", {1, 4, 8, 8});
    Graph g = import(m);
    const Outputs before = run(g);
    PassReport report = optimize(g);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv", "Clip"}));
    EXPECT_TRUE(any_note_has(report.notes,
                             "'clip' (Clip) not fused into 'conv' (Conv): its min "
                             "'lo' is computed at run time"))
        << all_notes(report.notes);
    EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
}

TEST_F(GraphPasses, AnAddOfDifferentShapesIsNotFused) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3, 8, 8});
    add_input(m, "z", {1, 1, 8, 8});
    add_conv(m, "conv", "x", "c", 3, 4, false, 140);
    add_node(m, "Add", {"c", "z"}, {"y"}, "add");
    add_output(m, "y", {1, 4, 8, 8});
    Graph g = import(m);
    const Outputs before = run(g);
    PassReport report = optimize(g);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"kiln.Conv", "Add"}));
    EXPECT_TRUE(any_note_has(report.notes,
                             "'add' (Add) not fused into 'conv' (Conv): 'z' "
                             "[1,1,8,8] is neither"))
        << all_notes(report.notes);
    EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
}

// ---- The cleanup passes --------------------------------------------------------------------

TEST_F(GraphPasses, IdentitiesAndDropoutAreRemovedAndOutputsKeepTheirNames) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {2, 3});
    add_node(m, "Identity", {"x"}, {"i"}, "id");
    add_node(m, "Relu", {"i"}, {"r"}, "relu");
    add_node(m, "Dropout", {"r"}, {"y"}, "drop");      // a graph output
    add_node(m, "Identity", {"x"}, {"copy"}, "copy");  // input to output: must stay
    add_output(m, "y", {2, 3});
    add_output(m, "copy", {2, 3});
    Graph g = import(m);
    ASSERT_EQ(ops(g), (std::vector<std::string>{"Identity", "Relu", "Dropout", "Identity"}));
    const Outputs before = run(g);
    PassResult r = remove_identities(g);
    EXPECT_EQ(r.changed, 2);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Relu", "Identity"}));
    EXPECT_EQ(g.value(g.nodes[0].outputs[0]).name, "y");  // Relu now makes y itself
    EXPECT_TRUE(any_note_has(r.notes, "'copy' (Identity) stays: it copies graph input 'x'"))
        << all_notes(r.notes);
    EXPECT_NO_THROW(g.validate());
    EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
}

// Built in the IR: import would already have folded the constant Add.
TEST(GraphPassesIr, ConstantsFoldAndDeadCodeGoes) {
    Graph g;
    g.opset = 13;
    ValueId x = g.add_value({"x", kiln::DType::f32, {3}, kNoId, nullptr});
    ValueId c1 = g.add_value({"c1",
                              kiln::DType::f32,
                              {3},
                              kNoId,
                              std::make_shared<const Tensor>(Tensor::from_f32({3}, {1, 2, 3}))});
    ValueId c2 = g.add_value({"c2",
                              kiln::DType::f32,
                              {3},
                              kNoId,
                              std::make_shared<const Tensor>(Tensor::from_f32({3}, {10, 20, 30}))});
    ValueId t = g.add_value({"t", kiln::DType::f32, {3}, kNoId, nullptr});
    ValueId y = g.add_value({"y", kiln::DType::f32, {3}, kNoId, nullptr});
    ValueId unused = g.add_value({"unused", kiln::DType::f32, {3}, kNoId, nullptr});
    g.inputs = {x};
    auto node = [](const char* op, const char* name, std::vector<ValueId> in, ValueId out) {
        Node n;
        n.op = op;
        n.name = name;
        n.inputs = std::move(in);
        n.outputs = {out};
        return n;
    };
    g.add_node(node("Add", "sum", {c1, c2}, t));
    g.add_node(node("Mul", "scale", {x, t}, y));
    g.add_node(node("Sigmoid", "dead", {x}, unused));
    g.outputs = {y};
    g.validate();
    const Outputs before = run(g);

    PassResult folded = fold_constants(g);
    EXPECT_EQ(folded.changed, 1);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Mul", "Sigmoid"}));
    const Value& tv = g.value(g.find_value("t"));
    ASSERT_TRUE(tv.is_constant());
    EXPECT_EQ(tv.data->data<float>()[2], 33.0f);
    EXPECT_EQ(g.find_value("c1"), kNoId);  // pruned

    PassResult dce = eliminate_dead_code(g);
    EXPECT_EQ(dce.changed, 1);
    EXPECT_EQ(ops(g), (std::vector<std::string>{"Mul"}));
    EXPECT_EQ(g.find_value("unused"), kNoId);
    EXPECT_NO_THROW(g.validate());
    EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
}

// ---- Kernel tasks --------------------------------------------------------------------------

TEST_F(GraphPasses, TwoIdenticalConvBlocksAreOneTaskOfCountTwo) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4, 8, 8});
    add_conv(m, "conv_a", "x", "ca", 4, 4, true, 150);
    add_node(m, "Relu", {"ca"}, {"ra"}, "relu_a");
    add_conv(m, "conv_b", "ra", "cb", 4, 4, true, 160);
    add_node(m, "Relu", {"cb"}, {"y"}, "relu_b");
    add_output(m, "y", {1, 4, 8, 8});
    Graph g = import(m);
    optimize(g);
    TaskList list = extract_tasks(g);
    ASSERT_EQ(list.tasks.size(), 1u);
    const KernelTask& t = list.tasks[0];
    // n c h w / k r s / stride pad dilation groups / dtype / epilogue, as core's key() prints.
    EXPECT_EQ(t.key, "conv2d/n1c4h8w8/k4r3s3/st1p1d1g1/f32/bias+relu");
    EXPECT_EQ(t.key, t.workload.key());
    EXPECT_EQ(t.count, 2);
    EXPECT_EQ(t.nodes, (std::vector<std::string>{"'conv_a' (kiln.Conv)", "'conv_b' (kiln.Conv)"}));
    // 2 * k * oh * ow * c * r * s multiply-adds, + one add and one max per output (bias, relu).
    EXPECT_EQ(t.flops, 2.0 * 4 * 8 * 8 * 4 * 3 * 3 + 2 * 256);
    EXPECT_EQ(t.flops, t.workload.flops());
    EXPECT_DOUBLE_EQ(t.share, 1.0);
    EXPECT_DOUBLE_EQ(list.total_flops, 2 * t.flops);
    EXPECT_TRUE(list.fallbacks.empty());
    EXPECT_TRUE(list.other_ops.empty());
}

TEST_F(GraphPasses, TasksCarryTheLayoutsCompilePlans) {
    // conv_a's output feeds only conv_b, as data and as residual: blocked on both sides.
    // conv_b's output is read by conv_c and by a pooling, conv_c's is the graph's: NCHW.
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 16, 8, 8});
    add_conv(m, "conv_a", "x", "ca", 16, 16, true, 180);
    add_node(m, "Relu", {"ca"}, {"ra"}, "relu_a");
    add_conv(m, "conv_b", "ra", "cb", 16, 16, true, 182);
    add_node(m, "Add", {"cb", "ra"}, {"sb"}, "add_b");
    add_node(m, "Relu", {"sb"}, {"rb"}, "relu_b");
    add_conv(m, "conv_c", "rb", "y", 16, 16, false, 184);
    add_node(m, "GlobalAveragePool", {"rb"}, {"pool"}, "pool");
    add_output(m, "y", {1, 16, 8, 8});
    add_output(m, "pool", {1, 16, 1, 1});
    Graph g = import(m);
    optimize(g);
    auto keys = [&](int64_t block) {
        std::vector<std::string> k;
        for (const KernelTask& t : extract_tasks(g, block).tasks) {
            EXPECT_EQ(t.key, t.workload.key());
            k.push_back(t.key);
        }
        return k;
    };
    const std::string a = "conv2d/n1c16h8w8/k16r3s3/st1p1d1g1/f32/bias+relu";
    const std::string b = "conv2d/n1c16h8w8/k16r3s3/st1p1d1g1/f32/bias+add+relu";
    const std::string c = "conv2d/n1c16h8w8/k16r3s3/st1p1d1g1/f32";
    EXPECT_EQ(keys(8), (std::vector<std::string>{a + "/layout:o8", b + "/layout:i8r8", c}));
    EXPECT_EQ(keys(16), (std::vector<std::string>{a + "/layout:o16", b + "/layout:i16r16", c}));
    // No blocking asked for, or channels that are not whole blocks: every kernel NCHW.
    EXPECT_EQ(keys(0), (std::vector<std::string>{a, b, c}));
    EXPECT_EQ(keys(32), (std::vector<std::string>{a, b, c}));
}

TEST_F(GraphPasses, DepthwiseAsymmetricPadsAndFallbacks) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4, 8, 8});
    add_input(m, "s", {1, 2, 16});
    add_input(m, "a", {3, 2});
    // Depthwise: group = C = K = 4.
    add_weight(m, "dw_w", {4, 1, 3, 3}, 170);
    auto* dw = add_node(m, "Conv", {"x", "dw_w"}, {"d"}, "dw");
    set_int(dw, "group", 4);
    set_ints(dw, "pads", {1, 1, 1, 1});
    // Stride 2 with pads only at the bottom and right, as TensorFlow's SAME exports.
    add_weight(m, "pw_w", {6, 4, 3, 3}, 171);
    auto* pw = add_node(m, "Conv", {"d", "pw_w"}, {"p"}, "strided");
    set_ints(pw, "strides", {2, 2});
    set_ints(pw, "pads", {0, 0, 1, 1});
    add_node(m, "GlobalAveragePool", {"p"}, {"y"}, "pool");
    // A 1-D convolution: fused into kiln.Conv, but no kiln op takes it.
    add_weight(m, "c1_w", {3, 2, 3}, 172);
    add_node(m, "Conv", {"s", "c1_w"}, {"y1"}, "conv1d");
    // Gemm with transA: no kernel node at all.
    add_weight(m, "g_w", {3, 5}, 173);
    auto* gemm = add_node(m, "Gemm", {"a", "g_w"}, {"y2"}, "gemm_ta");
    set_int(gemm, "transA", 1);
    add_output(m, "y", {1, 6, 1, 1});
    add_output(m, "y1", {1, 3, 14});
    add_output(m, "y2", {2, 5});
    Graph g = import(m);
    const Outputs before = run(g);
    optimize(g);
    EXPECT_EQ(max_rel_diff(run(g), before), 0.0);
    TaskList list = extract_tasks(g);
    ASSERT_EQ(list.tasks.size(), 2u);
    EXPECT_EQ(list.tasks[0].key, "depthwise_conv2d/n1c4h8w8/k4r3s3/st1p1d1/f32");
    EXPECT_EQ(list.tasks[1].key, "conv2d/n1c4h8w8/k6r3s3/st2p0x0x1x1d1g1/f32");
    EXPECT_EQ(list.tasks[1].workload.output().shape, (std::vector<int64_t>{1, 6, 4, 4}));
    ASSERT_EQ(list.fallbacks.size(), 2u);
    EXPECT_EQ(list.fallbacks[0].text(),
              "'conv1d' (kiln.Conv) falls back to the reference op: 1-D convolution; kiln's "
              "conv2d and depthwise_conv2d are 2-D");
    EXPECT_EQ(list.fallbacks[1].text(),
              "'gemm_ta' (Gemm) falls back to the reference op: transA=1; kiln's dense reads its "
              "input untransposed");
    EXPECT_EQ(list.other_ops, (std::map<std::string, int>{{"GlobalAveragePool", 1}}));
    const double total = list.tasks[0].flops + list.tasks[1].flops;
    EXPECT_DOUBLE_EQ(list.tasks[0].share, list.tasks[0].flops / total);
}

// `kiln inspect --kernels` as a user runs it (docs/CLI.md).
TEST_F(GraphPasses, InspectKernelsCommand) {
    using kiln::testing::run_kiln;
    const std::string path = models_.write(basic_block(false));
    kiln::testing::Result r = run_kiln({"inspect", path, "--kernels"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_NE(r.out.find("  nodes               7 -> 2\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  batch norms folded  2\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  epilogues fused     2 (3 nodes absorbed)\n"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("kernel tasks  2 (2 kernel nodes,"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  conv2d/n1c4h8w8/k4r3s3/st1p1d1g1/f32/bias+relu      1      "),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("conv2d/n1c4h8w8/k4r3s3/st1p1d1g1/f32/bias+add+relu  1"),
              std::string::npos)
        << r.out;
    // 18944 and 19200 FLOPs: the residual add costs one more per output.
    EXPECT_NE(r.out.find("49.7%  'conv1' (kiln.Conv)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("50.3%  'conv2' (kiln.Conv)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fallbacks  0\n"), std::string::npos) << r.out;
    // Without the flag, nothing of it.
    kiln::testing::Result plain = run_kiln({"inspect", path});
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(plain.out.find("kernel tasks"), std::string::npos) << plain.out;
}
