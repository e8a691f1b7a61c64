// The graph ops' scalar references on inputs small enough to check by hand, run through
// evaluate_reference on one-node graphs built directly in the IR; and the registry's declines.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "graph/ir.h"
#include "graph/op.h"
#include "graph/reference.h"
#include "tests/graph_one_node.h"

using namespace kiln::graph;
using kiln::DType;

namespace {

using kiln::test_graph::Attrs;

// One `op` node over `inputs` (f32 inputs are graph inputs, i64 ones constants), its outputs
// typed by the op's infer(), run by the reference interpreter.
std::vector<Tensor> run(const std::string& op, const std::vector<Tensor>& inputs,
                        const Attrs& attrs = {}, int opset = 13, size_t outputs = 1) {
    const Graph g = kiln::test_graph::one_node_graph(op, inputs, attrs, opset, outputs);
    std::map<std::string, Tensor> feed;
    for (size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].dtype != DType::i64) feed["in" + std::to_string(i)] = inputs[i];
    std::map<std::string, Tensor> out = evaluate_reference(g, feed);
    std::vector<Tensor> result;
    for (size_t k = 0; k < outputs; ++k)
        result.push_back(out.at("out" + std::to_string(k)));
    return result;
}

Tensor f32(std::vector<int64_t> shape, std::vector<float> v) {
    return Tensor::from_f32(std::move(shape), v);
}

std::vector<float> values(const Tensor& t) {
    return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

const std::vector<float> k3x3 = {1, 2, 3, 4, 5, 6, 7, 8, 9};

}  // namespace

TEST(GraphOps, ConvPlainPaddedStridedAndGrouped) {
    Tensor x = f32({1, 1, 3, 3}, k3x3);
    Tensor ones = f32({1, 1, 2, 2}, {1, 1, 1, 1});
    Tensor y = run("Conv", {x, ones})[0];
    EXPECT_EQ(y.shape, (std::vector<int64_t>{1, 1, 2, 2}));
    EXPECT_EQ(values(y), (std::vector<float>{12, 16, 24, 28}));
    // pad 1, stride 2: the four corners' windows, plus a bias of 10.
    Tensor p = run(
        "Conv", {x, ones, f32({1}, {10})},
        {{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"strides", std::vector<int64_t>{2, 2}}})[0];
    EXPECT_EQ(values(p), (std::vector<float>{11, 15, 21, 38}));
    // SAME_UPPER keeps 3x3; the centre sees everything a 2x2 window can.
    Tensor s = run("Conv", {x, ones}, {{"auto_pad", std::string("SAME_UPPER")}})[0];
    EXPECT_EQ(s.shape, (std::vector<int64_t>{1, 1, 3, 3}));
    EXPECT_EQ(values(s)[0], 12.0f);
    EXPECT_EQ(values(s)[8], 9.0f);
    // Depthwise: two channels, group 2, each with its own 1x1 weight.
    Tensor x2 = f32({1, 2, 1, 2}, {1, 2, 3, 4});
    Tensor dw = run("Conv", {x2, f32({2, 1, 1, 1}, {10, -1})}, {{"group", int64_t{2}}})[0];
    EXPECT_EQ(values(dw), (std::vector<float>{10, 20, -3, -4}));
    // Dilation 2 on a 3x3 input with a 2x2 kernel reads the four corners.
    Tensor d = run("Conv", {x, ones}, {{"dilations", std::vector<int64_t>{2, 2}}})[0];
    EXPECT_EQ(values(d), (std::vector<float>{1 + 3 + 7 + 9}));
}

TEST(GraphOps, GemmTransposesScalesAndBroadcastsC) {
    Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor bt = f32({2, 3}, {1, 0, 1, 0, 1, 0});  // B transposed: [[1,0],[0,1],[1,0]]
    Tensor c = f32({2}, {100, 200});
    Tensor y =
        run("Gemm", {a, bt, c}, {{"transB", int64_t{1}}, {"alpha", 2.0f}, {"beta", 0.5f}})[0];
    // A*B = [[4, 2], [10, 5]]
    EXPECT_EQ(values(y), (std::vector<float>{58, 104, 70, 110}));
    Tensor at = f32({3, 2}, {1, 4, 2, 5, 3, 6});
    Tensor b = f32({3, 2}, {1, 0, 0, 1, 1, 0});
    EXPECT_EQ(values(run("Gemm", {at, b}, {{"transA", int64_t{1}}})[0]),
              (std::vector<float>{4, 2, 10, 5}));
}

TEST(GraphOps, MatMulBroadcastsBatches) {
    Tensor a = f32({2, 1, 2}, {1, 2, 3, 4});
    Tensor b = f32({2, 1}, {10, 1});
    Tensor y = run("MatMul", {a, b})[0];
    EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 1, 1}));
    EXPECT_EQ(values(y), (std::vector<float>{12, 34}));
}

TEST(GraphOps, AddAndMulBroadcast) {
    Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
    EXPECT_EQ(values(run("Add", {a, f32({3}, {10, 20, 30})})[0]),
              (std::vector<float>{11, 22, 33, 14, 25, 36}));
    Tensor col = f32({2, 1}, {1, 2});
    Tensor row = f32({1, 3}, {1, 10, 100});
    Tensor m = run("Mul", {col, row})[0];
    EXPECT_EQ(m.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(values(m), (std::vector<float>{1, 10, 100, 2, 20, 200}));
    EXPECT_THROW(run("Add", {a, f32({2}, {1, 2})}), kiln::Error);  // [2,3] + [2]
}

TEST(GraphOps, PoolsWithPaddingAndCeilMode) {
    Tensor x = f32({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
    const Attrs k2s2 = {{"kernel_shape", std::vector<int64_t>{2, 2}},
                        {"strides", std::vector<int64_t>{2, 2}}};
    EXPECT_EQ(values(run("MaxPool", {x}, k2s2)[0]), (std::vector<float>{6, 8, 14, 16}));
    EXPECT_EQ(values(run("AveragePool", {x}, k2s2)[0]),
              (std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f}));
    // 3x3 input, 2x2 window, pad 1 at the start: the corner averages 1 value (or 4 with pads).
    Tensor x3 = f32({1, 1, 3, 3}, k3x3);
    Attrs padded = {{"kernel_shape", std::vector<int64_t>{2, 2}},
                    {"strides", std::vector<int64_t>{2, 2}},
                    {"pads", std::vector<int64_t>{1, 1, 0, 0}}};
    EXPECT_EQ(values(run("AveragePool", {x3}, padded)[0]), (std::vector<float>{1, 2.5f, 5.5f, 7}));
    padded["count_include_pad"] = int64_t{1};
    EXPECT_EQ(values(run("AveragePool", {x3}, padded)[0]),
              (std::vector<float>{0.25f, 1.25f, 2.75f, 7}));
    // ceil_mode: 3 wide, window 2, stride 2 -> 2 outputs, the last one a single column.
    Attrs ceil = {{"kernel_shape", std::vector<int64_t>{2, 2}},
                  {"strides", std::vector<int64_t>{2, 2}},
                  {"ceil_mode", int64_t{1}}};
    EXPECT_EQ(values(run("MaxPool", {x3}, ceil)[0]), (std::vector<float>{5, 6, 8, 9}));
    EXPECT_EQ(values(run("AveragePool", {x3}, ceil)[0]), (std::vector<float>{3, 4.5f, 7.5f, 9}));
    EXPECT_EQ(values(run("GlobalAveragePool", {x})[0]), (std::vector<float>{8.5f}));
}

TEST(GraphOps, SoftmaxAxisSemanticsFollowTheOpset) {
    Tensor x = f32({2, 2}, {0, std::log(3.0f), 0, 0});
    // Opset 13: along the last axis, each row on its own.
    std::vector<float> y13 = values(run("Softmax", {x}, {}, 13)[0]);
    EXPECT_NEAR(y13[0], 0.25f, 1e-6);
    EXPECT_NEAR(y13[1], 0.75f, 1e-6);
    EXPECT_NEAR(y13[2], 0.5f, 1e-6);
    // Opset 11, axis 0: the whole tensor is one row of 4 (exp values 1, 3, 1, 1).
    std::vector<float> y11 = values(run("Softmax", {x}, {{"axis", int64_t{0}}}, 11)[0]);
    EXPECT_NEAR(y11[1], 0.5f, 1e-6);
    EXPECT_NEAR(y11[3], 1.0f / 6, 1e-6);
    // Opset 13, axis 0: columns.
    std::vector<float> c13 = values(run("Softmax", {x}, {{"axis", int64_t{0}}}, 13)[0]);
    EXPECT_NEAR(c13[0], 0.5f, 1e-6);
    EXPECT_NEAR(c13[1], 0.75f, 1e-6);
}

TEST(GraphOps, ConcatReshapeTransposeSplitSlice) {
    Tensor a = f32({1, 2}, {1, 2});
    Tensor b = f32({1, 3}, {3, 4, 5});
    Tensor c = run("Concat", {a, b}, {{"axis", int64_t{1}}})[0];
    EXPECT_EQ(c.shape, (std::vector<int64_t>{1, 5}));
    EXPECT_EQ(values(c), (std::vector<float>{1, 2, 3, 4, 5}));
    Tensor x = f32({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    // 0 copies the dimension, -1 takes what is left.
    Tensor r = run("Reshape", {x, Tensor::from_i64({2}, {0, -1})})[0];
    EXPECT_EQ(r.shape, (std::vector<int64_t>{2, 6}));
    EXPECT_EQ(values(r), values(x));
    Tensor t = run("Transpose", {f32({2, 3}, {1, 2, 3, 4, 5, 6})})[0];
    EXPECT_EQ(t.shape, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(values(t), (std::vector<float>{1, 4, 2, 5, 3, 6}));
    std::vector<Tensor> parts =
        run("Split", {f32({4}, {1, 2, 3, 4}), Tensor::from_i64({2}, {1, 3})}, {}, 13, 2);
    EXPECT_EQ(values(parts[1]), (std::vector<float>{2, 3, 4}));
    Tensor s = run("Slice", {f32({5}, {0, 1, 2, 3, 4}), Tensor::from_i64({1}, {-1}),
                             Tensor::from_i64({1}, {-100}), Tensor::from_i64({1}, {0}),
                             Tensor::from_i64({1}, {-2})})[0];
    EXPECT_EQ(values(s), (std::vector<float>{4, 2, 0}));
}

TEST(GraphOps, BatchNormClipAndActivations) {
    Tensor x = f32({1, 2, 1, 1}, {4, 4});
    Tensor y = run("BatchNormalization",
                   {x, f32({2}, {1, 2}), f32({2}, {0, 1}), f32({2}, {2, 0}), f32({2}, {4, 16})},
                   {{"epsilon", 0.0f}})[0];
    EXPECT_EQ(values(y), (std::vector<float>{1, 3}));  // (4-2)/2*1+0, (4-0)/4*2+1
    Tensor v = f32({4}, {-8, -1, 3, 9});
    EXPECT_EQ(values(run("Clip", {v, f32({}, {0}), f32({}, {6})})[0]),
              (std::vector<float>{0, 0, 3, 6}));
    std::vector<float> hs = values(run("HardSwish", {v})[0]);  // x * clamp(x/6 + 1/2, 0, 1)
    EXPECT_EQ(hs[0], 0.0f);
    EXPECT_NEAR(hs[1], -1.0f / 3, 1e-6);
    EXPECT_EQ(hs[3], 9.0f);
    EXPECT_EQ(values(run("HardSigmoid", {v})[0]), (std::vector<float>{0, 0.3f, 1, 1}));
    EXPECT_EQ(values(run("Relu", {v})[0]), (std::vector<float>{0, 0, 3, 9}));
}

TEST(GraphOps, RegistryDeclinesWhatItDoesNotRun) {
    const GraphOp* relu = find_graph_op("Relu");
    ASSERT_NE(relu, nullptr);
    EXPECT_EQ(find_graph_op("NonMaxSuppression"), nullptr);
    Graph g;
    g.opset = 13;
    ValueId x = g.add_value({"x", DType::u8, {4}, kNoId, {}});
    ValueId y = g.add_value({"y", DType::u8, {4}, kNoId, {}});
    Node n;
    n.op = "Relu";
    n.inputs = {x};
    n.outputs = {y};
    EXPECT_NE(relu->decline(n, g).find("u8"), std::string::npos) << relu->decline(n, g);
    // Every registered op names its type once, sorted.
    std::vector<const GraphOp*> all = all_graph_ops();
    ASSERT_GT(all.size(), 30u);
    for (size_t i = 1; i < all.size(); ++i)
        EXPECT_LT(all[i - 1]->type(), all[i]->type());
}
