// The Halide lowerings (graph/halide_ops.h) on inputs small enough to check by hand, each also
// against its op's scalar reference (graph/op.h); schedule_generic on awkward extents; and the
// registry. The ONNX node tests check every lowering more widely (onnx_node_tests --halide).
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "graph/fused.h"
#include "graph/halide_ops.h"
#include "graph/ir.h"
#include "graph/op.h"
#include "tests/graph_one_node.h"

using namespace kiln::graph;
using kiln::DType;

namespace {

using kiln::test_graph::Attrs;

struct Results {
    std::vector<Tensor> halide, reference;
};

// One `op` node over `inputs` (i64 tensors become constants, f32 ones graph inputs), its
// outputs typed by the op's infer(), evaluated by its lowering and by its reference.
Results run(const std::string& op, const std::vector<Tensor>& inputs, const Attrs& attrs = {},
            int opset = 13, size_t outputs = 1) {
    const Graph g = kiln::test_graph::one_node_graph(op, inputs, attrs, opset, outputs);
    Results r;
    for (ValueId v : g.outputs)
        r.reference.push_back(Tensor::zeros(g.value(v).dtype, g.value(v).shape));
    std::vector<const Tensor*> in;
    for (const Tensor& t : inputs)
        in.push_back(&t);
    find_graph_op(op)->evaluate(g.nodes[0], opset, in, r.reference);
    evaluate_halide(g.nodes[0], g, in, r.halide);
    return r;
}

Tensor f32(std::vector<int64_t> shape, std::vector<float> v) {
    return Tensor::from_f32(std::move(shape), v);
}

Tensor random_f32(std::vector<int64_t> shape, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(numel(shape)));
    for (float& x : v)
        x = dist(rng);
    return Tensor::from_f32(std::move(shape), v);
}

std::vector<float> values(const Tensor& t) {
    return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

void expect_near(const Tensor& got, const Tensor& want, float tol = 1e-5f) {
    ASSERT_EQ(got.shape, want.shape);
    for (int64_t i = 0; i < got.numel(); ++i)
        EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], tol) << "element " << i;
}

std::vector<float> iota(int n) {
    std::vector<float> v(n);
    for (int i = 0; i < n; ++i)
        v[i] = static_cast<float>(i);
    return v;
}

}  // namespace

TEST(GraphHalide, EveryOpButShapeHasALoweringAndTheViewsAlias) {
    std::set<std::string> without;
    for (const GraphOp* op : all_graph_ops())
        if (!find_halide_lowering(op->type())) without.insert(op->type());
    // Shape's output is i64, which never flows at run time; import folds it always.
    EXPECT_EQ(without, (std::set<std::string>{"Shape"}));
    std::set<std::string> alias;
    std::string last;
    for (const HalideLowering* l : all_halide_lowerings()) {
        EXPECT_NE(find_graph_op(l->type()), nullptr) << l->type();
        EXPECT_LT(last, l->type());
        last = l->type();
        if (l->is_alias()) alias.insert(l->type());
    }
    EXPECT_EQ(alias, (std::set<std::string>{"Dropout", "Flatten", "Identity", "Reshape", "Squeeze",
                                            "Unsqueeze"}));
    EXPECT_EQ(find_halide_lowering("NoSuchOp"), nullptr);
}

TEST(GraphHalide, WhatCannotBeLoweredSaysWhichNode) {
    // Gather's indices computed at run time: valid, but not lowerable (Declined).
    Graph g;
    g.opset = 13;
    ValueId data = g.add_value({"data", DType::f32, {3, 2}, kNoId, {}});
    ValueId idx = g.add_value({"idx", DType::i64, {2}, kNoId, {}});
    ValueId out = g.add_value({"out", DType::f32, {2, 2}, kNoId, {}});
    g.inputs = {data, idx};
    Node n;
    n.op = "Gather";
    n.name = "lookup";
    n.inputs = {data, idx};
    n.outputs = {out};
    g.add_node(n);
    Tensor x = f32({3, 2}, iota(6)), i = Tensor::from_i64({2}, {2, 0});
    std::vector<Tensor> result;
    try {
        evaluate_halide(g.nodes[0], g, {&x, &i}, result);
        ADD_FAILURE() << "no exception";
    } catch (const Declined& e) {
        EXPECT_NE(std::string(e.what()).find("'lookup' (Gather)"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("run time"), std::string::npos) << e.what();
    }
    // An op without a lowering.
    g.nodes[0].op = "Shape";
    EXPECT_THROW(evaluate_halide(g.nodes[0], g, {&x}, result), kiln::Error);
}

TEST(GraphHalide, MaxPoolCeilModeKeepsThePartialLastWindow) {
    // x[r][c] = 5r + c; 2x2 windows, stride 2: ceil_mode adds a third row and column of windows
    // that hold only the last input row or column.
    Tensor x = f32({1, 1, 5, 5}, iota(25));
    Attrs a = {{"kernel_shape", std::vector<int64_t>{2, 2}},
               {"strides", std::vector<int64_t>{2, 2}},
               {"ceil_mode", int64_t{1}}};
    Results r = run("MaxPool", {x}, a);
    EXPECT_EQ(r.halide[0].shape, (std::vector<int64_t>{1, 1, 3, 3}));
    EXPECT_EQ(values(r.halide[0]), (std::vector<float>{6, 8, 9, 16, 18, 19, 21, 23, 24}));
    expect_near(r.halide[0], r.reference[0]);

    // A window wholly in the pads has no maximum: -infinity, as in the reference.
    Results in_pads = run("MaxPool", {f32({1, 1, 2, 2}, {1, 2, 3, 4})},
                          {{"kernel_shape", std::vector<int64_t>{2, 2}},
                           {"strides", std::vector<int64_t>{2, 2}},
                           {"pads", std::vector<int64_t>{2, 2, 2, 2}}});
    EXPECT_EQ(values(in_pads.halide[0]), values(in_pads.reference[0]));
    EXPECT_EQ(in_pads.halide[0].data<float>()[0], -INFINITY);

    // AveragePool, 6x6, 3x3 windows, stride 2, pads 1: ceil_mode adds a fourth window per
    // dimension, starting at 5, that covers input 5, the pad at 6 and nothing at 7. Output
    // [0][3] sums x[0][5] + x[1][5] = 5 + 11 over rows {pad, 0, 1} and columns {5, pad, -}.
    Tensor x6 = f32({1, 1, 6, 6}, iota(36));
    Attrs p = {{"kernel_shape", std::vector<int64_t>{3, 3}},
               {"strides", std::vector<int64_t>{2, 2}},
               {"pads", std::vector<int64_t>{1, 1, 1, 1}},
               {"ceil_mode", int64_t{1}},
               {"count_include_pad", int64_t{1}}};
    Results with_pads = run("AveragePool", {x6}, p);
    EXPECT_EQ(with_pads.halide[0].shape, (std::vector<int64_t>{1, 1, 4, 4}));
    EXPECT_FLOAT_EQ(with_pads.halide[0].data<float>()[3], 16.0f / (3 * 2));
    expect_near(with_pads.halide[0], with_pads.reference[0]);
    p["count_include_pad"] = int64_t{0};
    Results valid = run("AveragePool", {x6}, p);
    EXPECT_FLOAT_EQ(valid.halide[0].data<float>()[3], 16.0f / (2 * 1));
    expect_near(valid.halide[0], valid.reference[0]);
}

TEST(GraphHalide, BinaryOpsBroadcastTheNumpyWay) {
    Results row = run("Add", {f32({2, 3}, {0, 1, 2, 3, 4, 5}), f32({3}, {10, 20, 30})});
    EXPECT_EQ(values(row.halide[0]), (std::vector<float>{10, 21, 32, 13, 24, 35}));
    Results outer = run("Mul", {f32({2, 1}, {1, 2}), f32({1, 3}, {3, 4, 5})});
    EXPECT_EQ(outer.halide[0].shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(values(outer.halide[0]), (std::vector<float>{3, 4, 5, 6, 8, 10}));
    Results scalar = run("Sub", {f32({2, 2}, {1, 2, 3, 4}), f32({}, {1})});
    EXPECT_EQ(values(scalar.halide[0]), (std::vector<float>{0, 1, 2, 3}));
}

TEST(GraphHalide, SoftmaxAxisFollowsTheOpset) {
    const float l3 = std::log(3.0f);
    Tensor x = f32({2, 2}, {0, 0, l3, 0});
    // Opset 13: along axis 0 alone, per column.
    Results r13 = run("Softmax", {x}, {{"axis", int64_t{0}}}, 13);
    expect_near(r13.halide[0], f32({2, 2}, {0.25f, 0.5f, 0.75f, 0.5f}));
    // Opset 11: the input flattened to [1, 4] at axis 0, one row.
    Results r11 = run("Softmax", {x}, {{"axis", int64_t{0}}}, 11);
    expect_near(r11.halide[0], f32({2, 2}, {1 / 6.0f, 1 / 6.0f, 3 / 6.0f, 1 / 6.0f}));
    Results log13 = run("LogSoftmax", {x}, {}, 13);
    expect_near(log13.halide[0], log13.reference[0]);
}

TEST(GraphHalide, FusedConvGroupedWithBiasResidualAndReluMatchesTheReference) {
    // Two groups of 2 input and 3 output channels, 3x3, stride 2, pads 1, dilation 1.
    Tensor x = random_f32({2, 4, 7, 6}, 1);
    Tensor w = random_f32({6, 2, 3, 3}, 2);
    Tensor bias = random_f32({6}, 3);
    Tensor residual = random_f32({2, 6, 4, 3}, 4);
    Attrs a = {{"kernel_shape", std::vector<int64_t>{3, 3}},
               {"strides", std::vector<int64_t>{2, 2}},
               {"pads", std::vector<int64_t>{1, 1, 1, 1}},
               {"dilations", std::vector<int64_t>{1, 1}},
               {"group", int64_t{2}}};
    Node epilogue_holder;
    kiln::Epilogue e;
    e.bias = e.residual = true;
    e.activation = kiln::Activation::relu;
    set_fused_epilogue(epilogue_holder, e);
    for (const auto& [key, value] : epilogue_holder.attrs)
        a[key] = value;
    Results r = run(kFusedConv, {x, w, bias, residual}, a);
    EXPECT_EQ(r.halide[0].shape, (std::vector<int64_t>{2, 6, 4, 3}));
    expect_near(r.halide[0], r.reference[0]);
    int zeros = 0;  // relu cut some
    for (float v : values(r.halide[0]))
        zeros += v == 0.0f;
    EXPECT_GT(zeros, 0);

    // ONNX Conv, 1-D, dilated, asymmetric pads, no bias.
    Results c1 =
        run("Conv", {random_f32({1, 3, 11}, 5), random_f32({4, 3, 3}, 6)},
            {{"dilations", std::vector<int64_t>{2}}, {"pads", std::vector<int64_t>{2, 1}}});
    expect_near(c1.halide[0], c1.reference[0]);
}

TEST(GraphHalide, ShapeOpsMoveTheRightElements) {
    Tensor x = f32({2, 3}, iota(6));
    Results t = run("Transpose", {x});
    EXPECT_EQ(values(t.halide[0]), (std::vector<float>{0, 3, 1, 4, 2, 5}));
    Results c = run("Concat", {x, f32({2, 1}, {10, 11})}, {{"axis", int64_t{1}}});
    EXPECT_EQ(values(c.halide[0]), (std::vector<float>{0, 1, 2, 10, 3, 4, 5, 11}));
    // Wide enough that the copies are vectorized: along the innermost axis (the RDom's loop)
    // and along an outer one (the innermost dimension's loop), with tails of 3 and 1.
    Results wide_last =
        run("Concat", {random_f32({2, 11}, 1), random_f32({2, 9}, 2)}, {{"axis", int64_t{-1}}});
    EXPECT_EQ(values(wide_last.halide[0]), values(wide_last.reference[0]));
    Results wide_outer =
        run("Concat", {random_f32({2, 3, 17}, 3), random_f32({2, 1, 17}, 4), f32({2, 0, 17}, {})},
            {{"axis", int64_t{1}}});
    EXPECT_EQ(values(wide_outer.halide[0]), values(wide_outer.reference[0]));
    Results s = run("Split", {x, Tensor::from_i64({2}, {1, 2})}, {{"axis", int64_t{1}}}, 13, 2);
    EXPECT_EQ(values(s.halide[0]), (std::vector<float>{0, 3}));
    EXPECT_EQ(values(s.halide[1]), (std::vector<float>{1, 2, 4, 5}));
    Results sl = run("Slice", {x, Tensor::from_i64({1}, {-1}), Tensor::from_i64({1}, {-4}),
                               Tensor::from_i64({1}, {1}), Tensor::from_i64({1}, {-2})});
    EXPECT_EQ(values(sl.halide[0]), (std::vector<float>{2, 0, 5, 3}));
    Results rs = run("Reshape", {x, Tensor::from_i64({2}, {3, -1})});
    EXPECT_EQ(rs.halide[0].shape, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(values(rs.halide[0]), iota(6));
    for (const char* mode : {"constant", "reflect", "edge"}) {
        Results p =
            run("Pad", {x, Tensor::from_i64({4}, {1, 2, 0, 2})}, {{"mode", std::string(mode)}});
        EXPECT_EQ(values(p.halide[0]), values(p.reference[0])) << mode;
    }
    Results gth = run("Gather", {x, Tensor::from_i64({2}, {-1, 0})}, {{"axis", int64_t{1}}});
    EXPECT_EQ(values(gth.halide[0]), (std::vector<float>{2, 0, 5, 3}));
}

TEST(GraphHalide, ScheduleGenericHandlesEveryExtent) {
    // Vectorized with a shifted last vector (13), too narrow to vectorize (3), large enough to
    // fuse and parallelize the outer dimensions, and a scalar. `shape` is in Halide's order.
    const kiln::Target host = kiln::host_target();
    for (std::vector<int64_t> shape : {std::vector<int64_t>{3, 13}, std::vector<int64_t>{5, 3},
                                       std::vector<int64_t>{4, 64, 67}, std::vector<int64_t>{}}) {
        Halide::Func f("f");
        std::vector<Halide::Var> v(shape.size());
        Halide::Expr e = 0;
        for (size_t d = 0; d < shape.size(); ++d)
            e = e * 100 + v[shape.size() - 1 - d];
        e = Halide::cast<float>(e);
        f(v) = e;
        schedule_generic(f, std::vector<int64_t>(shape.rbegin(), shape.rend()), host);
        std::vector<int> sizes(shape.begin(), shape.end());
        Halide::Buffer<float> out(sizes);
        f.realize(out);
        for (int i = 0; i < static_cast<int>(out.number_of_elements()); ++i) {
            // The element's coordinates, innermost first, as base-100 digits: v0 + 100 v1 + ...
            int want = 0, rest = i, scale = 1;
            for (size_t d = 0; d < shape.size(); ++d) {
                want += (rest % static_cast<int>(shape[d])) * scale;
                rest /= static_cast<int>(shape[d]);
                scale *= 100;
            }
            ASSERT_EQ(out.data()[i], static_cast<float>(want)) << "element " << i;
        }
    }
}
