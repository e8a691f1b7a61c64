// kiln/graph/ir.h — kiln's graph IR: values with static shapes, nodes with typed attributes.
//
// A Graph is what import produces and what later passes (BN folding, epilogue fusion, layout
// and memory planning) rewrite. Values are addressed by ValueId, nodes by NodeId (indices into
// `values` and `nodes`); each value knows the node that produces it, and nodes are kept in
// topological order. Constants (initializers, folded Constant/Shape nodes) are values carrying
// their data. No onnx, protobuf or Halide here: start with Graph, then Node and Tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace kiln::graph {

using ValueId = int32_t;
using NodeId = int32_t;
constexpr int32_t kNoId = -1;  // an omitted optional input; a value nothing produces

// Dense row-major data of one tensor. i4 and u1 are not stored here (no op computes in them).
struct Tensor {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;  // empty: a scalar
    std::vector<uint8_t> bytes;  // numel() * element_size(dtype)

    static Tensor zeros(DType dtype, std::vector<int64_t> shape);
    static Tensor from_f32(std::vector<int64_t> shape, const std::vector<float>& data);
    static Tensor from_i64(std::vector<int64_t> shape, const std::vector<int64_t>& data);

    int64_t numel() const;
    template <class T>
    T* data() {
        return reinterpret_cast<T*>(bytes.data());
    }
    template <class T>
    const T* data() const {
        return reinterpret_cast<const T*>(bytes.data());
    }
    // Integer contents (i64, i32, i8, u8) widened; what shape-like inputs are read with.
    std::vector<int64_t> to_i64() const;
};

int64_t element_size(DType t);  // bytes; throws kiln::Error for i4 and u1
int64_t numel(const std::vector<int64_t>& shape);
std::string shape_string(const std::vector<int64_t>& shape);  // "[1,3,224,224]"

struct Value {
    std::string name;
    DType dtype = DType::f32;
    std::vector<int64_t> shape;          // static; empty for a scalar
    NodeId producer = kNoId;             // kNoId: a graph input or a constant
    std::shared_ptr<const Tensor> data;  // set for constants; shared so graphs copy cheaply

    bool is_constant() const { return data != nullptr; }
    int64_t numel() const { return graph::numel(shape); }
};

// ONNX attribute kinds kiln understands; graphs, sparse tensors and string lists are refused
// at import.
using Attribute =
    std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>, Tensor>;

struct Node {
    std::string op;               // ONNX op type: "Conv"
    std::string name;             // may be empty
    int64_t source_index = -1;    // position in the ONNX graph, for messages about unnamed nodes
    std::vector<ValueId> inputs;  // kNoId for an omitted optional input
    std::vector<ValueId> outputs;
    std::map<std::string, Attribute> attrs;

    // "'conv1' (Conv)", or "#7 (Conv)" when unnamed: how messages name a node.
    std::string label() const;
    bool has_attr(const std::string& key) const { return attrs.count(key) > 0; }
    // Typed attribute access; a present attribute of another kind throws kiln::Error naming the
    // node and the attribute. The forms without a default throw when it is missing.
    int64_t attr_int(const std::string& key, int64_t fallback) const;
    int64_t attr_int(const std::string& key) const;
    float attr_float(const std::string& key, float fallback) const;
    std::string attr_string(const std::string& key, const std::string& fallback) const;
    std::vector<int64_t> attr_ints(const std::string& key,
                                   const std::vector<int64_t>& fallback) const;
    std::vector<int64_t> attr_ints(const std::string& key) const;
    std::vector<float> attr_floats(const std::string& key,
                                   const std::vector<float>& fallback) const;
    const Tensor& attr_tensor(const std::string& key) const;
};

class Graph {
  public:
    int opset = 0;     // of the default ONNX domain
    std::string name;  // the ONNX graph's name
    std::vector<Value> values;
    std::vector<Node> nodes;      // topological order
    std::vector<ValueId> inputs;  // runtime inputs; initializers are constants, not inputs
    std::vector<ValueId> outputs;

    Value& value(ValueId id) { return values.at(id); }
    const Value& value(ValueId id) const { return values.at(id); }
    // kNoId when no value has this name.
    ValueId find_value(const std::string& name) const;
    ValueId add_value(Value v);
    // Appends a node and makes it the producer of its outputs.
    NodeId add_node(Node n);
    // Erases a node; its outputs become unproduced (rewire their uses first). NodeIds after it
    // shift down by one.
    void remove_node(NodeId id);
    // Every use of `from` (node inputs, graph outputs) becomes a use of `to`.
    void replace_uses(ValueId from, ValueId to);
    std::vector<NodeId> consumers(ValueId id) const;
    // Drops values that no node, input or output refers to; ValueIds are renumbered.
    void prune();
    // Checks the invariants (ids in range, producers consistent, topological order, each
    // non-constant node input produced or a graph input); throws kiln::Error saying which.
    void validate() const;

  private:
    void relink_producers();
};

}  // namespace kiln::graph
