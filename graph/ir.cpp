// kiln/graph/ir.cpp — Tensor, Node attribute access and Graph editing (see ir.h).
#include "graph/ir.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kiln::graph {

int64_t element_size(DType t) {
    if (t == DType::i4 || t == DType::u1)
        throw Error("dtype", std::string("tensors of ") + std::string(to_string(t)) +
                                 " are not stored by the graph IR");
    return bits(t) / 8;
}

int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
    Tensor t;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.bytes.assign(static_cast<size_t>(t.numel() * element_size(dtype)), 0);
    return t;
}

namespace {

template <class T>
Tensor from_values(DType dtype, std::vector<int64_t> shape, const std::vector<T>& data) {
    Tensor t = Tensor::zeros(dtype, std::move(shape));
    if (static_cast<int64_t>(data.size()) != t.numel())
        throw Error("tensor", "shape " + shape_string(t.shape) + " holds " +
                                  std::to_string(t.numel()) + " values, got " +
                                  std::to_string(data.size()));
    std::memcpy(t.bytes.data(), data.data(), t.bytes.size());
    return t;
}

}  // namespace

Tensor Tensor::from_f32(std::vector<int64_t> shape, const std::vector<float>& data) {
    return from_values(DType::f32, std::move(shape), data);
}

Tensor Tensor::from_i64(std::vector<int64_t> shape, const std::vector<int64_t>& data) {
    return from_values(DType::i64, std::move(shape), data);
}

int64_t Tensor::numel() const {
    return graph::numel(shape);
}

std::vector<int64_t> Tensor::to_i64() const {
    std::vector<int64_t> v(static_cast<size_t>(numel()));
    for (size_t i = 0; i < v.size(); ++i) {
        switch (dtype) {
            case DType::i64:
                v[i] = data<int64_t>()[i];
                break;
            case DType::i32:
                v[i] = data<int32_t>()[i];
                break;
            case DType::i8:
                v[i] = data<int8_t>()[i];
                break;
            case DType::u8:
                v[i] = data<uint8_t>()[i];
                break;
            default:
                throw Error("dtype",
                            "expected an integer tensor, got " + std::string(to_string(dtype)));
        }
    }
    return v;
}

// ---- Node ----------------------------------------------------------------------------------

std::string Node::label() const {
    std::string who = !name.empty()       ? "'" + name + "'"
                      : source_index >= 0 ? "#" + std::to_string(source_index)
                                          : std::string("unnamed");
    return who + " (" + op + ")";
}

namespace {

const char* kind_name(const Attribute& a) {
    constexpr const char* kNames[] = {"int", "float", "string", "ints", "floats", "tensor"};
    return kNames[a.index()];
}

template <class T>
const T* typed_attr(const Node& n, const std::string& key, const char* want) {
    auto it = n.attrs.find(key);
    if (it == n.attrs.end()) return nullptr;
    if (const T* p = std::get_if<T>(&it->second)) return p;
    throw Error("node " + n.label(),
                "attribute '" + key + "' must be " + want + ", got " + kind_name(it->second));
}

[[noreturn]] void missing(const Node& n, const std::string& key) {
    throw Error("node " + n.label(), "required attribute '" + key + "' is missing");
}

}  // namespace

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
    const int64_t* p = typed_attr<int64_t>(*this, key, "an int");
    return p ? *p : fallback;
}

int64_t Node::attr_int(const std::string& key) const {
    const int64_t* p = typed_attr<int64_t>(*this, key, "an int");
    if (!p) missing(*this, key);
    return *p;
}

float Node::attr_float(const std::string& key, float fallback) const {
    const float* p = typed_attr<float>(*this, key, "a float");
    return p ? *p : fallback;
}

std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
    const std::string* p = typed_attr<std::string>(*this, key, "a string");
    return p ? *p : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& key,
                                     const std::vector<int64_t>& fallback) const {
    const auto* p = typed_attr<std::vector<int64_t>>(*this, key, "a list of ints");
    return p ? *p : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& key) const {
    const auto* p = typed_attr<std::vector<int64_t>>(*this, key, "a list of ints");
    if (!p) missing(*this, key);
    return *p;
}

std::vector<float> Node::attr_floats(const std::string& key,
                                     const std::vector<float>& fallback) const {
    const auto* p = typed_attr<std::vector<float>>(*this, key, "a list of floats");
    return p ? *p : fallback;
}

const Tensor& Node::attr_tensor(const std::string& key) const {
    const Tensor* p = typed_attr<Tensor>(*this, key, "a tensor");
    if (!p) missing(*this, key);
    return *p;
}

// ---- Graph ---------------------------------------------------------------------------------

ValueId Graph::find_value(const std::string& value_name) const {
    for (size_t i = 0; i < values.size(); ++i)
        if (values[i].name == value_name) return static_cast<ValueId>(i);
    return kNoId;
}

ValueId Graph::add_value(Value v) {
    values.push_back(std::move(v));
    return static_cast<ValueId>(values.size() - 1);
}

NodeId Graph::add_node(Node n) {
    NodeId id = static_cast<NodeId>(nodes.size());
    for (ValueId out : n.outputs)
        value(out).producer = id;
    nodes.push_back(std::move(n));
    return id;
}

void Graph::remove_node(NodeId id) {
    for (ValueId out : nodes.at(id).outputs)
        value(out).producer = kNoId;
    nodes.erase(nodes.begin() + id);
    relink_producers();
}

void Graph::replace_uses(ValueId from, ValueId to) {
    for (Node& n : nodes)
        std::replace(n.inputs.begin(), n.inputs.end(), from, to);
    std::replace(outputs.begin(), outputs.end(), from, to);
}

std::vector<NodeId> Graph::consumers(ValueId id) const {
    std::vector<NodeId> out;
    for (size_t i = 0; i < nodes.size(); ++i)
        if (std::find(nodes[i].inputs.begin(), nodes[i].inputs.end(), id) != nodes[i].inputs.end())
            out.push_back(static_cast<NodeId>(i));
    return out;
}

void Graph::prune() {
    std::vector<char> used(values.size(), 0);
    auto mark = [&](ValueId v) {
        if (v != kNoId) used[v] = 1;
    };
    for (const Node& n : nodes) {
        for (ValueId v : n.inputs)
            mark(v);
        for (ValueId v : n.outputs)
            mark(v);
    }
    for (ValueId v : inputs)
        mark(v);
    for (ValueId v : outputs)
        mark(v);
    std::vector<ValueId> remap(values.size(), kNoId);
    std::vector<Value> kept;
    for (size_t i = 0; i < values.size(); ++i) {
        if (!used[i]) continue;
        remap[i] = static_cast<ValueId>(kept.size());
        kept.push_back(std::move(values[i]));
    }
    values = std::move(kept);
    auto rewrite = [&](std::vector<ValueId>& ids) {
        for (ValueId& v : ids)
            if (v != kNoId) v = remap[v];
    };
    for (Node& n : nodes) {
        rewrite(n.inputs);
        rewrite(n.outputs);
    }
    rewrite(inputs);
    rewrite(outputs);
}

void Graph::relink_producers() {
    for (Value& v : values)
        v.producer = kNoId;
    for (size_t i = 0; i < nodes.size(); ++i)
        for (ValueId out : nodes[i].outputs)
            value(out).producer = static_cast<NodeId>(i);
}

void Graph::validate() const {
    auto in_range = [&](ValueId v, const std::string& where) {
        if (v < 0 || v >= static_cast<ValueId>(values.size()))
            throw Error("graph", where + " refers to value " + std::to_string(v) + " of " +
                                     std::to_string(values.size()));
    };
    std::vector<char> available(values.size(), 0);
    for (ValueId v : inputs) {
        in_range(v, "graph input");
        available[v] = 1;
    }
    for (size_t i = 0; i < values.size(); ++i)
        if (values[i].is_constant()) available[i] = 1;
    for (size_t i = 0; i < nodes.size(); ++i) {
        const Node& n = nodes[i];
        for (ValueId v : n.inputs) {
            if (v == kNoId) continue;
            in_range(v, "node " + n.label());
            if (!available[v])
                throw Error("graph", "node " + n.label() + " reads '" + values[v].name +
                                         "' before anything produces it");
        }
        for (ValueId v : n.outputs) {
            in_range(v, "node " + n.label());
            if (values[v].producer != static_cast<NodeId>(i))
                throw Error("graph", "value '" + values[v].name + "' does not name its producer " +
                                         n.label());
            available[v] = 1;
        }
    }
    for (ValueId v : outputs) {
        in_range(v, "graph output");
        if (!available[v])
            throw Error("graph", "output '" + values[v].name + "' is never produced");
    }
}

}  // namespace kiln::graph
