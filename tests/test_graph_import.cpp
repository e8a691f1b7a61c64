// ONNX import: small models built here with onnx's protobuf classes, written to a temporary
// directory and imported. Covers a conv -> bn -> relu -> gemm model, every refusal import
// promises (missing, truncated, corrupt, opset, unsupported ops, external data, symbolic
// shapes), constant folding of shape chains, the IR's editing operations, and `kiln inspect`.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "graph/ir.h"
#include "graph/onnx_import.h"
#include "graph/reference.h"
#include "tests/onnx_models.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace kiln::graph;
using namespace kiln::test_onnx;

namespace {

// ---- Building models -----------------------------------------------------------------------

std::vector<float> iota(size_t n, float scale = 1.0f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = scale * static_cast<float>(i % 7) - 1.0f;
    return v;
}

class GraphImport : public ::testing::Test {
  protected:
    std::string write(const onnx::ModelProto& m, const std::string& file = "model.onnx") {
        return models_.write(m, file);
    }
    std::string write_bytes(const std::string& bytes, const std::string& file) {
        return models_.write_bytes(bytes, file);
    }

    // The ImportError import_onnx(path) throws; fails the test when it does not throw.
    static ImportError refusal(const std::string& path, const ImportOptions& options = {}) {
        try {
            import_onnx(path, options);
        } catch (const ImportError& e) {
            return e;
        }
        ADD_FAILURE() << path << " was imported";
        return ImportError(ImportFailure::file, path, "imported");
    }

    ModelDir models_;
    const std::string dir_ = models_.path();
};

// x[N,3,8,8] -> Conv(4, 3x3, pad 1) -> BatchNormalization -> Relu -> Flatten -> Gemm -> y[N,2]
onnx::ModelProto conv_bn_relu_gemm() {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {-1, 3, 8, 8});
    add_init(m, "w", {4, 3, 3, 3}, iota(108, 0.1f));
    add_init(m, "b", {4}, {0.1f, 0.2f, 0.3f, 0.4f});
    add_init(m, "scale", {4}, {1, 2, 1, 2});
    add_init(m, "shift", {4}, {0, 0, 1, 1});
    add_init(m, "mean", {4}, {0, 0.5f, 0, 0.5f});
    add_init(m, "var", {4}, {1, 1, 4, 4});
    add_init(m, "fc_w", {2, 256}, iota(512, 0.01f));
    add_init(m, "fc_b", {2}, {0.5f, -0.5f});
    auto* conv = add_node(m, "Conv", {"x", "w", "b"}, {"c"}, "conv1");
    set_ints(conv, "pads", {1, 1, 1, 1});
    set_ints(conv, "kernel_shape", {3, 3});
    add_node(m, "BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"bn"}, "bn1");
    add_node(m, "Relu", {"bn"}, {"r"}, "relu1");
    add_node(m, "Flatten", {"r"}, {"f"}, "flatten");
    auto* gemm = add_node(m, "Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc");
    set_int(gemm, "transB", 1);
    add_output(m, "y", {-1, 2});
    return m;
}

}  // namespace

TEST_F(GraphImport, ConvBnReluGemmShapesAndConstants) {
    const std::string path = write(conv_bn_relu_gemm());
    Graph g = import_onnx(path);
    EXPECT_EQ(g.opset, 13);
    ASSERT_EQ(g.inputs.size(), 1u);
    EXPECT_EQ(g.value(g.inputs[0]).name, "x");
    EXPECT_EQ(g.value(g.inputs[0]).shape, (std::vector<int64_t>{1, 3, 8, 8}));  // batch 1
    std::vector<std::string> ops;
    for (const Node& n : g.nodes)
        ops.push_back(n.op);
    EXPECT_EQ(ops,
              (std::vector<std::string>{"Conv", "BatchNormalization", "Relu", "Flatten", "Gemm"}));
    EXPECT_EQ(g.value(g.find_value("c")).shape, (std::vector<int64_t>{1, 4, 8, 8}));
    EXPECT_EQ(g.value(g.find_value("f")).shape, (std::vector<int64_t>{1, 256}));
    ASSERT_EQ(g.outputs.size(), 1u);
    EXPECT_EQ(g.value(g.outputs[0]).shape, (std::vector<int64_t>{1, 2}));
    // Initializers are constants with data, produced by nothing; the rest know their producer.
    const Value& w = g.value(g.find_value("w"));
    ASSERT_TRUE(w.is_constant());
    EXPECT_EQ(w.producer, kNoId);
    EXPECT_EQ(w.data->shape, (std::vector<int64_t>{4, 3, 3, 3}));
    EXPECT_FLOAT_EQ(w.data->data<float>()[1], 0.1f * 1 - 1.0f);
    EXPECT_EQ(g.value(g.find_value("bn")).producer, 1);
    EXPECT_EQ(g.nodes[0].name, "conv1");
    EXPECT_EQ(g.nodes[0].attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
    EXPECT_EQ(g.consumers(g.find_value("r")), (std::vector<NodeId>{3}));
    EXPECT_NO_THROW(g.validate());

    // The batch option fixes the symbolic first dimension.
    ImportOptions two;
    two.batch = 2;
    Graph g2 = import_onnx(path, two);
    EXPECT_EQ(g2.value(g2.outputs[0]).shape, (std::vector<int64_t>{2, 2}));

    // The reference runs it; relu then a gemm with these weights gives finite, nonzero output.
    auto out = evaluate_reference(g, {{"x", Tensor::from_f32({1, 3, 8, 8}, iota(192, 0.2f))}});
    ASSERT_EQ(out.count("y"), 1u);
    EXPECT_EQ(out["y"].shape, (std::vector<int64_t>{1, 2}));
    EXPECT_NE(out["y"].data<float>()[0], 0.0f);
}

TEST_F(GraphImport, MissingFileIsNamed) {
    const std::string path = dir_ + "/absent.onnx";
    ImportError e = refusal(path);
    EXPECT_EQ(e.kind(), ImportFailure::file);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos) << e.what();
}

TEST_F(GraphImport, TruncatedAndGarbageFilesAreNamed) {
    std::string bytes;
    conv_bn_relu_gemm().SerializeToString(&bytes);
    const std::string half = write_bytes(bytes.substr(0, bytes.size() / 2), "half.onnx");
    ImportError e = refusal(half);
    EXPECT_TRUE(e.kind() == ImportFailure::file || e.kind() == ImportFailure::invalid);
    EXPECT_EQ(std::string(e.what()).rfind(half + ": ", 0), 0u) << e.what();

    const std::string garbage = write_bytes("\x13\x37 this is not a model \xff\xfe\x01", "g.onnx");
    ImportError e2 = refusal(garbage);
    EXPECT_EQ(std::string(e2.what()).rfind(garbage + ": ", 0), 0u) << e2.what();

    const std::string empty = write_bytes("", "empty.onnx");
    EXPECT_EQ(refusal(empty).kind(), ImportFailure::file);
}

TEST_F(GraphImport, CheckerRejectionSaysWhatItSaid) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4});
    add_node(m, "Relu", {"x", "x", "x"}, {"y"});  // Relu takes one input
    add_output(m, "y", {-1, -1});
    ImportError e = refusal(write(m));
    EXPECT_EQ(e.kind(), ImportFailure::invalid);
    EXPECT_NE(std::string(e.what()).find("ONNX checker"), std::string::npos) << e.what();
}

TEST_F(GraphImport, OpsetOutsideElevenToSeventeenIsNamed) {
    onnx::ModelProto m = new_model(9);
    add_input(m, "x", {1, 4});
    add_node(m, "Relu", {"x"}, {"y"});
    add_output(m, "y", {-1, -1});
    ImportError e = refusal(write(m));
    EXPECT_EQ(e.kind(), ImportFailure::opset);
    EXPECT_NE(std::string(e.what()).find("opset 9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("11 to 17"), std::string::npos) << e.what();
}

TEST_F(GraphImport, UnsupportedOpsAreListedInOneMessage) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4});
    add_node(m, "Erf", {"x"}, {"a"}, "erf_a");
    add_node(m, "Relu", {"a"}, {"b"}, "relu");
    add_node(m, "Erf", {"b"}, {"c"});  // unnamed: node #2
    add_node(m, "Sin", {"c"}, {"y"}, "sin_y");
    add_output(m, "y", {-1, -1});
    ImportError e = refusal(write(m));
    EXPECT_EQ(e.kind(), ImportFailure::unsupported);
    const std::string what = e.what();
    EXPECT_NE(what.find("Erf (2 nodes: 'erf_a', #2)"), std::string::npos) << what;
    EXPECT_NE(what.find("Sin (1 node: 'sin_y')"), std::string::npos) << what;
    EXPECT_EQ(what.find("relu"), std::string::npos) << what;
}

TEST_F(GraphImport, DeclinedVariantsJoinTheUnsupportedList) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4}, onnx::TensorProto_DataType_DOUBLE);
    add_node(m, "Relu", {"x"}, {"y"}, "relu64");
    add_node(m, "Erf", {"y"}, {"z"}, "erf");
    add_output(m, "z", {1, 4}, onnx::TensorProto_DataType_DOUBLE);
    ImportError e = refusal(write(m));
    EXPECT_EQ(e.kind(), ImportFailure::unsupported);
    const std::string what = e.what();
    EXPECT_NE(what.find("Erf (1 node: 'erf')"), std::string::npos) << what;
    EXPECT_NE(what.find("Relu node 'relu64': input 'x' is double"), std::string::npos) << what;
}

TEST_F(GraphImport, ExternalDataIsReadRelativeToTheModel) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 3});
    onnx::TensorProto* w = add_init(m, "w", {3}, {});
    std::vector<float> data = {1.5f, -2.0f, 4.0f};
    write_bytes(std::string(8, '\0') + std::string(reinterpret_cast<const char*>(data.data()), 12),
                "weights.bin");
    w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
    auto add_kv = [&](const char* k, const std::string& v) {
        auto* e = w->add_external_data();
        e->set_key(k);
        e->set_value(v);
    };
    add_kv("location", "weights.bin");
    add_kv("offset", "8");
    add_kv("length", "12");
    add_node(m, "Mul", {"x", "w"}, {"y"});
    add_output(m, "y", {-1, -1});
    const std::string path = write(m);
    Graph g = import_onnx(path);
    const Value& wv = g.value(g.find_value("w"));
    ASSERT_TRUE(wv.is_constant());
    EXPECT_EQ(wv.data->data<float>()[2], 4.0f);
    auto out = evaluate_reference(g, {{"x", Tensor::from_f32({1, 3}, {2, 2, 2})}});
    EXPECT_EQ(out["y"].data<float>()[1], -4.0f);

    fs::remove(fs::path(dir_) / "weights.bin");
    ImportError e = refusal(path);
    EXPECT_EQ(e.kind(), ImportFailure::file);
    EXPECT_NE(std::string(e.what()).find("weights.bin"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << e.what();
}

TEST_F(GraphImport, SymbolicDimensionsBeyondTheBatchNeedAShape) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, -1});
    add_node(m, "Relu", {"x"}, {"y"});
    add_output(m, "y", {-1, -1});
    const std::string path = write(m);
    ImportError e = refusal(path);
    EXPECT_EQ(e.kind(), ImportFailure::shape);
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'N'"), std::string::npos) << e.what();
    ImportOptions o;
    o.input_shapes["x"] = {1, 5};
    Graph g = import_onnx(path, o);
    EXPECT_EQ(g.value(g.outputs[0]).shape, (std::vector<int64_t>{1, 5}));
}

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as exporters write a flatten: the shape
// chain folds into one constant, and only the Reshape remains.
TEST_F(GraphImport, ShapeChainsFoldToConstants) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {2, 3, 4});
    add_init_i64(m, "zero", {0});
    add_init_i64(m, "minus_one", {-1});
    add_node(m, "Shape", {"x"}, {"s"});
    auto* gather = add_node(m, "Gather", {"s", "zero"}, {"n"});
    set_int(gather, "axis", 0);
    auto* concat = add_node(m, "Concat", {"n", "minus_one"}, {"target"});
    set_int(concat, "axis", 0);
    add_node(m, "Reshape", {"x", "target"}, {"y"});
    add_output(m, "y", {2, 12});
    Graph g = import_onnx(write(m));
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.nodes[0].op, "Reshape");
    const Value& target = g.value(g.nodes[0].inputs[1]);
    ASSERT_TRUE(target.is_constant());
    EXPECT_EQ(target.data->to_i64(), (std::vector<int64_t>{2, -1}));
    EXPECT_EQ(g.value(g.outputs[0]).shape, (std::vector<int64_t>{2, 12}));
    EXPECT_EQ(g.find_value("zero"), kNoId);  // pruned once folded
}

TEST_F(GraphImport, RuntimeShapeInputsAreDeclinedWithAReason) {
    onnx::ModelProto m = new_model();
    add_input(m, "x", {2, 6});
    add_input(m, "shape", {2}, onnx::TensorProto_DataType_INT64);
    add_node(m, "Reshape", {"x", "shape"}, {"y"}, "reshape");
    add_output(m, "y", {-1, -1});
    const std::string path = write(m);
    ImportError e = refusal(path);
    EXPECT_EQ(e.kind(), ImportFailure::unsupported);
    EXPECT_NE(std::string(e.what()).find("'reshape'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("computed at run time"), std::string::npos) << e.what();
    ImportOptions o;  // bound to a value, it becomes a constant
    o.constant_inputs["shape"] = Tensor::from_i64({2}, {3, 4});
    Graph g = import_onnx(path, o);
    EXPECT_EQ(g.inputs.size(), 1u);
    EXPECT_EQ(g.value(g.outputs[0]).shape, (std::vector<int64_t>{3, 4}));
}

TEST(GraphIr, NodesAreRemovableAndValuesRewired) {
    Graph g;
    g.opset = 13;
    ValueId x = g.add_value({"x", kiln::DType::f32, {4}, kNoId, nullptr});
    ValueId a = g.add_value({"a", kiln::DType::f32, {4}, kNoId, nullptr});
    ValueId b = g.add_value({"b", kiln::DType::f32, {4}, kNoId, nullptr});
    g.inputs = {x};
    Node n1;
    n1.op = "Identity";
    n1.inputs = {x};
    n1.outputs = {a};
    Node n2;
    n2.op = "Relu";
    n2.name = "r";
    n2.inputs = {a};
    n2.outputs = {b};
    g.add_node(n1);
    g.add_node(n2);
    g.outputs = {b};
    EXPECT_EQ(g.value(b).producer, 1);
    EXPECT_EQ(g.nodes[1].label(), "'r' (Relu)");
    // Drop the Identity: its uses read x instead.
    g.replace_uses(a, x);
    g.remove_node(0);
    EXPECT_EQ(g.value(b).producer, 0);
    EXPECT_EQ(g.value(a).producer, kNoId);
    g.prune();
    EXPECT_EQ(g.values.size(), 2u);
    EXPECT_EQ(g.value(g.nodes[0].inputs[0]).name, "x");
    EXPECT_NO_THROW(g.validate());
    auto out = evaluate_reference(g, {{"x", Tensor::from_f32({4}, {-1, 2, -3, 4})}});
    EXPECT_EQ(out["b"].data<float>()[1], 2.0f);
    EXPECT_EQ(out["b"].data<float>()[2], 0.0f);
    // A value read before it is produced breaks validate().
    std::swap(g.nodes[0].inputs[0], g.nodes[0].outputs[0]);
    EXPECT_THROW(g.validate(), kiln::Error);
}

// `kiln inspect` as a user runs it (docs/CLI.md): the model's summary on stdout; an unsupported
// model is one `kiln:` line naming every unsupported op and exit 1; a bad file is exit 2.
TEST_F(GraphImport, InspectCommand) {
    using kiln::testing::run_kiln;
    const std::string path = write(conv_bn_relu_gemm());
    kiln::testing::Result r = run_kiln({"inspect", path, "--batch", "4"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_NE(r.out.find("opset    13"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("x  f32  [4,3,8,8]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("y  f32  [4,2]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("nodes    5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Conv                "), std::string::npos) << r.out;
    // 108 + 4 conv, 4 x 4 batch norm, 512 + 2 gemm
    EXPECT_NE(r.out.find("parameters  642 values in 8 constants"), std::string::npos) << r.out;

    onnx::ModelProto m = new_model();
    add_input(m, "x", {1, 4});
    add_node(m, "Erf", {"x"}, {"a"}, "erf_a");
    add_node(m, "Sin", {"a"}, {"y"}, "sin_y");
    add_output(m, "y", {1, 4});
    const std::string unsupported = write(m, "unsupported.onnx");
    kiln::testing::Result u = run_kiln({"inspect", unsupported});
    EXPECT_EQ(u.code, 1) << u.out << u.err;
    EXPECT_EQ(u.out, "");
    auto err = kiln::testing::lines(u.err);
    ASSERT_EQ(err.size(), 1u) << u.err;
    EXPECT_EQ(err[0].rfind("kiln: " + unsupported + ": unsupported ops: Erf", 0), 0u) << err[0];
    EXPECT_NE(err[0].find("Sin (1 node: 'sin_y')"), std::string::npos) << err[0];

    kiln::testing::expect_bad_input({"inspect", dir_ + "/absent.onnx"}, "no such file");
    const std::string garbage = write_bytes("not a model", "garbage.onnx");
    kiln::testing::expect_bad_input({"inspect", garbage}, garbage);
}
