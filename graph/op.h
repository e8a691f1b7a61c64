// kiln/graph/op.h — the ONNX ops kiln supports, each with its checks, shapes and reference.
//
// Every op is one GraphOp registered next to its definition (KILN_REGISTER_GRAPH_OP in
// graph/op_*.cpp); the registry IS the set import accepts. An op says why it declines a node
// (a dtype or variant kiln does not run), checks attributes and computes output types, and
// evaluates the node in plain scalar loops: the oracle later kernels are checked against.
// Start with GraphOp, then the helpers below it that the op files share.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/ir.h"

namespace kiln::graph {

struct ValueType {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
};

// Thrown while checking a node that is valid ONNX but outside what kiln runs (a shape that
// depends on a runtime input, a training-mode flag): import lists it with the unsupported ops.
class Declined : public Error {
  public:
    explicit Declined(const std::string& reason) : Error("", reason) {}
};

class GraphOp {
  public:
    virtual ~GraphOp() = default;
    virtual std::string type() const = 0;  // the ONNX op type: "Conv"
    // What of the ONNX op kiln does not cover, for docs/GRAPH.md ("" when nothing).
    virtual std::string limits() const { return ""; }
    // Why kiln declines this node, or "" when it runs it. Input values carry their dtype and
    // (where known) shape. The default accepts float32 inputs and outputs only.
    virtual std::string decline(const Node& n, const Graph& g) const;
    // Checks the attributes and input shapes and returns the type of every output. Throws
    // kiln::Error naming the node for an invalid node, Declined for an unsupported variant.
    virtual std::vector<ValueType> infer(const Node& n, const Graph& g) const = 0;
    // The scalar reference. `out` arrives allocated with the types infer() returned; omitted
    // optional inputs are nullptr.
    virtual void evaluate(const Node& n, int opset, const std::vector<const Tensor*>& in,
                          std::vector<Tensor>& out) const = 0;
    // False for ops that read only their inputs' shapes (Shape): import folds them even when
    // their input is not a constant.
    virtual bool reads_input_data() const { return true; }
    // False for kiln's own ops that passes create (kiln.Conv, kiln.Dense in graph/fused.h):
    // import does not accept them from a model, and the node-test table leaves them out.
    virtual bool is_onnx() const { return true; }
};

// nullptr for an op type kiln does not support.
const GraphOp* find_graph_op(const std::string& type);
std::vector<const GraphOp*> all_graph_ops();  // sorted by type

struct GraphOpRegistration {
    explicit GraphOpRegistration(std::unique_ptr<GraphOp> op);
};

#define KILN_GRAPH_CONCAT_INNER(a, b) a##b
#define KILN_GRAPH_CONCAT(a, b) KILN_GRAPH_CONCAT_INNER(a, b)
// Registers a GraphOp; the argument is an expression yielding std::unique_ptr<GraphOp>.
#define KILN_REGISTER_GRAPH_OP(...)                                             \
    static ::kiln::graph::GraphOpRegistration KILN_GRAPH_CONCAT(kiln_graph_op_, \
                                                                __LINE__)(__VA_ARGS__)

// ---- Helpers shared by the op files --------------------------------------------------------

// An Error whose field names the node: "node 'conv1' (Conv): <message>".
Error node_error(const Node& n, const std::string& message);

// Input i, or nullptr when it is omitted or past the end.
const Value* input(const Graph& g, const Node& n, size_t i);
// Input i, which must be present (`what` names it in the message: "weight").
const Value& required_input(const Graph& g, const Node& n, size_t i, const char* what);
// Input i's data; throws Declined when it is not a constant (kiln needs static shapes).
const Tensor& constant_input(const Graph& g, const Node& n, size_t i, const char* what);

// "" when every present input and output listed is float32, else the reason. An empty list
// means all of them.
std::string require_f32(const Node& n, const Graph& g, std::vector<size_t> inputs = {});
std::string require_dtypes(const Node& n, const Graph& g, size_t input,
                           const std::vector<DType>& allowed);
// The node's outputs beyond the first `count` (optional ONNX outputs kiln does not produce).
std::string require_outputs(const Node& n, size_t count);

// An axis in [-rank, rank) made non-negative; throws node_error otherwise.
int64_t normalize_axis(const Node& n, int64_t axis, int64_t rank);
// The products of a shape's dimensions before and after `axis`: a tensor seen as
// [outer, shape[axis], inner], which is how the axis ops (Gather, Concat, Split) walk it.
struct AxisSplit {
    int64_t outer = 1, inner = 1;
};
AxisSplit split_at_axis(const std::vector<int64_t>& shape, int64_t axis);
// Row-major strides of a shape.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape);
// ONNX multidirectional (numpy) broadcasting of two shapes; throws node_error when they do not
// broadcast.
std::vector<int64_t> broadcast_shapes(const Node& n, const std::vector<int64_t>& a,
                                      const std::vector<int64_t>& b);
// For each element of `out`, the flat index into a tensor of shape `in` broadcast to it.
std::vector<int64_t> broadcast_index(const std::vector<int64_t>& in,
                                     const std::vector<int64_t>& out);
// Converts an i64 or f32 scalar-like tensor element to float.
float scalar_f32(const Tensor& t);

}  // namespace kiln::graph
