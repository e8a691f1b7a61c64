// kiln/graph/onnx_import.h — ONNX model -> kiln Graph.
//
// import_onnx() parses the file with onnx's protobuf classes, loads external-data weights
// relative to the model's directory, runs onnx's checker and shape inference, fixes the
// batch dimension, refuses what kiln cannot run in one message, and builds the IR with kiln's
// own shapes (checked against onnx's), folding Constant and Shape nodes and whatever depends
// only on constants. No onnx or protobuf types appear here.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/ir.h"

namespace kiln::graph {

struct ImportOptions {
    // The size given to a symbolic first dimension of a graph input (the batch).
    int64_t batch = 1;
    // Shapes of named graph inputs, replacing the model's (for other symbolic dimensions).
    std::map<std::string, std::vector<int64_t>> input_shapes;
    // Graph inputs bound to fixed values: they become constants, so shapes that depend on them
    // (a Reshape's target, a Slice's bounds) are static. The ONNX node tests bind their integer
    // inputs this way.
    std::map<std::string, Tensor> constant_inputs;
    // Models of an opset below 11 are first converted to opset 11 with onnx's version
    // converter instead of being refused. Off by default: the node tests use it to reach the
    // many tests written at the opset their op last changed in (GlobalAveragePool at opset 1).
    bool upgrade_old_opsets = false;
};

// Why import refused a model. `unsupported` and `opset` are what kiln does not cover (the ONNX
// node tests count them as skipped); the others are bad files or bad models.
enum class ImportFailure { file, invalid, opset, unsupported, shape };

// A kiln::Error whose field is the model's path: what() reads "<path>: <message>".
class ImportError : public Error {
  public:
    ImportError(ImportFailure kind, const std::string& path, const std::string& message)
        : Error(path, message), kind_(kind) {}
    ImportFailure kind() const { return kind_; }

  private:
    ImportFailure kind_;
};

constexpr int kMinOpset = 11;
constexpr int kMaxOpset = 17;

// Throws ImportError. The graph's nodes are in topological order, every value has a static
// shape, and unused initializers are dropped.
Graph import_onnx(const std::string& path, const ImportOptions& options = {});

// The op type of every top-level node of the model, in order ("Conv", "ai.onnx.ml:Scaler"), as
// the file has them, before anything is checked or folded. Throws ImportError for a file that
// does not parse.
std::vector<std::string> onnx_op_types(const std::string& path);

// Reads one serialized onnx TensorProto (the test_data_set_*/input_*.pb files of the ONNX
// backend tests); `name`, when given, receives the tensor's name. Throws ImportError naming the
// file.
Tensor load_tensor_pb(const std::string& path, std::string* name = nullptr);

}  // namespace kiln::graph
