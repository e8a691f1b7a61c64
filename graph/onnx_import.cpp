// kiln/graph/onnx_import.cpp — ONNX protobuf -> kiln Graph (see onnx_import.h).
//
// Importer::run() is the whole story, in order: read and parse, opset, external data, the
// onnx checker, static input shapes, onnx shape inference, then one pass over the nodes that
// converts each, collects every unsupported op and declined node, and (when nothing was
// refused) computes kiln's shapes and folds constants. Everything refused is reported together.
#include "graph/onnx_import.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include "graph/op.h"

namespace kiln::graph {
namespace {

namespace fs = std::filesystem;

std::optional<DType> dtype_of(int elem_type) {
    switch (elem_type) {
        case onnx::TensorProto_DataType_FLOAT:
            return DType::f32;
        case onnx::TensorProto_DataType_FLOAT16:
            return DType::f16;
        case onnx::TensorProto_DataType_INT64:
            return DType::i64;
        case onnx::TensorProto_DataType_INT32:
            return DType::i32;
        case onnx::TensorProto_DataType_INT8:
            return DType::i8;
        case onnx::TensorProto_DataType_UINT8:
            return DType::u8;
        default:
            return std::nullopt;
    }
}

std::string onnx_type_name(int elem_type) {
    if (!onnx::TensorProto_DataType_IsValid(elem_type)) return "type " + std::to_string(elem_type);
    std::string s = onnx::TensorProto_DataType_Name(elem_type);
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string read_file(const std::string& path, const std::string& model_path, ImportFailure kind) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        throw ImportError(
            kind, model_path,
            path == model_path ? "no such file" : "external data file '" + path + "' is missing");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw ImportError(kind, model_path, "cannot read '" + path + "'");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// Reads an initializer's external data (location, offset, length) into raw_data, relative to
// the model's directory.
void load_external(onnx::TensorProto& t, const fs::path& dir, const std::string& model_path) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
        if (kv.key() == "location") location = kv.value();
        if (kv.key() == "offset") offset = std::stoll(kv.value());
        if (kv.key() == "length") length = std::stoll(kv.value());
    }
    if (location.empty())
        throw ImportError(ImportFailure::invalid, model_path,
                          "initializer '" + t.name() + "' has external data without a location");
    const std::string file = (dir / location).string();
    std::string bytes = read_file(file, model_path, ImportFailure::file);
    if (length < 0) length = static_cast<int64_t>(bytes.size()) - offset;
    if (offset < 0 || offset + length > static_cast<int64_t>(bytes.size()))
        throw ImportError(ImportFailure::file, model_path,
                          "external data file '" + file + "' has " + std::to_string(bytes.size()) +
                              " bytes; initializer '" + t.name() + "' needs " +
                              std::to_string(length) + " at offset " + std::to_string(offset));
    t.set_raw_data(bytes.substr(offset, length));
    t.clear_external_data();
    t.set_data_location(onnx::TensorProto_DataLocation_DEFAULT);
}

// A TensorProto's contents; nullopt for element types kiln does not store.
std::optional<Tensor> to_tensor(const onnx::TensorProto& t, const std::string& model_path) {
    std::optional<DType> dtype = dtype_of(t.data_type());
    if (!dtype) return std::nullopt;
    std::vector<int64_t> shape(t.dims().begin(), t.dims().end());
    auto bad = [&](const std::string& what) {
        return ImportError(ImportFailure::invalid, model_path,
                           "tensor '" + t.name() + "' " + shape_string(shape) + ": " + what);
    };
    if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
        throw bad("external data was not loaded");
    // The size is checked against the data present before anything is allocated: a corrupt
    // file may claim any dimensions.
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw bad("negative dimension");
        n = d == 0 ? 0 : (n > (int64_t{1} << 40) / d ? int64_t{1} << 40 : n * d);
    }
    const int64_t es = element_size(*dtype);
    int64_t given = t.has_raw_data()       ? static_cast<int64_t>(t.raw_data().size()) / es
                    : *dtype == DType::f32 ? t.float_data_size()
                    : *dtype == DType::i64 ? t.int64_data_size()
                                           : t.int32_data_size();
    if (t.has_raw_data() && static_cast<int64_t>(t.raw_data().size()) != given * es)
        throw bad("raw_data has " + std::to_string(t.raw_data().size()) + " bytes");
    if (given != n)
        throw bad("holds " + std::to_string(given) + " values, expected " + std::to_string(n));
    Tensor out = Tensor::zeros(*dtype, shape);
    if (t.has_raw_data()) {
        std::copy(t.raw_data().begin(), t.raw_data().end(), out.bytes.begin());
        return out;
    }
    switch (*dtype) {
        case DType::f32:
            std::copy(t.float_data().begin(), t.float_data().end(), out.data<float>());
            break;
        case DType::i64:
            std::copy(t.int64_data().begin(), t.int64_data().end(), out.data<int64_t>());
            break;
        default:  // i32, i8, u8 and f16's bits travel in int32_data
            for (int64_t i = 0; i < n; ++i) {
                int32_t v = t.int32_data(static_cast<int>(i));
                if (*dtype == DType::i32) out.data<int32_t>()[i] = v;
                if (*dtype == DType::i8) out.data<int8_t>()[i] = static_cast<int8_t>(v);
                if (*dtype == DType::u8) out.data<uint8_t>()[i] = static_cast<uint8_t>(v);
                if (*dtype == DType::f16) out.data<uint16_t>()[i] = static_cast<uint16_t>(v);
            }
    }
    return out;
}

onnx::ModelProto parse_model(const std::string& path) {
    std::string bytes = read_file(path, path, ImportFailure::file);
    onnx::ModelProto model;
    if (bytes.empty() || !model.ParseFromString(bytes))
        throw ImportError(ImportFailure::file, path,
                          "not a valid ONNX model: protobuf cannot parse its " +
                              std::to_string(bytes.size()) + " bytes (truncated or corrupt?)");
    if (!model.has_graph())
        throw ImportError(ImportFailure::file, path,
                          "not a valid ONNX model: no graph (truncated or corrupt?)");
    return model;
}

// The static shape of a TypeProto, or nullopt when it has none or a symbolic dimension.
std::optional<std::vector<int64_t>> static_shape(const onnx::TypeProto& type) {
    if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return std::nullopt;
    std::vector<int64_t> shape;
    for (const auto& d : type.tensor_type().shape().dim()) {
        if (!d.has_dim_value()) return std::nullopt;
        shape.push_back(d.dim_value());
    }
    return shape;
}

class Importer {
  public:
    Importer(const std::string& path, const ImportOptions& options)
        : path_(path), options_(options) {}

    Graph run() {
        model_ = parse_model(path_);
        upgrade_if_asked();
        graph_.opset = default_opset();
        graph_.name = model_.graph().name();
        const fs::path dir = fs::path(path_).parent_path();
        for (auto& t : *model_.mutable_graph()->mutable_initializer())
            if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
                load_external(t, dir, path_);
        try {
            onnx::checker::check_model(model_);
        } catch (const std::exception& e) {
            throw ImportError(ImportFailure::invalid, path_,
                              "rejected by the ONNX checker: " + one_line(e.what()));
        }
        fix_input_shapes();
        try {
            onnx::ShapeInferenceOptions opts(false, 0, true);
            onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(), opts);
        } catch (const std::exception& e) {
            throw ImportError(ImportFailure::invalid, path_,
                              "ONNX shape inference failed: " + one_line(e.what()));
        }
        collect_types();
        add_initializers_and_inputs();
        for (int i = 0; i < model_.graph().node_size(); ++i)
            add_node(model_.graph().node(i), i);
        if (!unknown_.empty() || !declined_.empty())
            throw ImportError(ImportFailure::unsupported, path_, unsupported_message());
        add_outputs();
        graph_.prune();
        graph_.validate();
        return std::move(graph_);
    }

  private:
    static std::string one_line(std::string s) {
        for (char& c : s)
            if (c == '\n' || c == '\r') c = ' ';
        return s;
    }

    void upgrade_if_asked() {
        if (!options_.upgrade_old_opsets) return;
        for (const auto& o : model_.opset_import()) {
            if ((!o.domain().empty() && o.domain() != "ai.onnx") || o.version() >= kMinOpset)
                continue;
            const int64_t old = o.version();
            try {
                model_ = onnx::version_conversion::ConvertVersion(model_, kMinOpset);
                // The converter keeps the old IR version, under which initializers must also
                // be graph inputs; opset 11 came with IR version 6, which lifts that rule.
                if (model_.ir_version() < 6) model_.set_ir_version(6);
            } catch (const std::exception& e) {
                throw ImportError(ImportFailure::opset, path_,
                                  "opset " + std::to_string(old) + " could not be converted to " +
                                      std::to_string(kMinOpset) + ": " + one_line(e.what()));
            }
            return;
        }
    }

    int default_opset() const {
        for (const auto& o : model_.opset_import()) {
            if (!o.domain().empty() && o.domain() != "ai.onnx") continue;
            if (o.version() < kMinOpset || o.version() > kMaxOpset)
                throw ImportError(ImportFailure::opset, path_,
                                  "opset " + std::to_string(o.version()) +
                                      " is not supported (kiln imports opsets " +
                                      std::to_string(kMinOpset) + " to " +
                                      std::to_string(kMaxOpset) + ")");
            return static_cast<int>(o.version());
        }
        throw ImportError(ImportFailure::opset, path_,
                          "imports no opset of the ONNX domain (kiln imports opsets " +
                              std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")");
    }

    // Every graph input gets a static shape: options first, then the batch for a symbolic
    // first dimension; any other symbolic dimension is an error naming the input.
    void fix_input_shapes() {
        std::unordered_map<std::string, int> is_init;
        for (const auto& t : model_.graph().initializer())
            is_init[t.name()] = 1;
        for (auto& in : *model_.mutable_graph()->mutable_input()) {
            if (is_init.count(in.name())) continue;
            if (!in.type().has_tensor_type())
                throw ImportError(ImportFailure::unsupported, path_,
                                  "graph input '" + in.name() +
                                      "' is not a tensor (a sequence, map or optional)");
            auto* tensor = in.mutable_type()->mutable_tensor_type();
            std::optional<std::vector<int64_t>> given;
            if (auto c = options_.constant_inputs.find(in.name());
                c != options_.constant_inputs.end())
                given = c->second.shape;
            else if (auto s = options_.input_shapes.find(in.name());
                     s != options_.input_shapes.end())
                given = s->second;
            if (given) {
                tensor->clear_shape();
                for (int64_t d : *given)
                    tensor->mutable_shape()->add_dim()->set_dim_value(d);
                continue;
            }
            if (!tensor->has_shape())
                throw ImportError(ImportFailure::shape, path_,
                                  "graph input '" + in.name() +
                                      "' has no shape; kiln needs static shapes: give its shape");
            auto* dims = tensor->mutable_shape()->mutable_dim();
            for (int d = 0; d < dims->size(); ++d) {
                auto* dim = dims->Mutable(d);
                if (dim->has_dim_value() && dim->dim_value() >= 0) continue;
                if (d == 0) {
                    dim->set_dim_value(options_.batch);  // the batch
                    continue;
                }
                std::string what = dim->has_dim_param() ? "'" + dim->dim_param() + "'" : "unknown";
                throw ImportError(ImportFailure::shape, path_,
                                  "graph input '" + in.name() + "' has a symbolic dimension " +
                                      std::to_string(d) + " (" + what +
                                      "); kiln needs static shapes: give the input's shape");
            }
        }
    }

    void collect_types() {
        const auto& g = model_.graph();
        for (const auto& v : g.value_info())
            types_[v.name()] = &v.type();
        for (const auto& v : g.input())
            types_[v.name()] = &v.type();
        for (const auto& v : g.output())
            types_[v.name()] = &v.type();
    }

    ValueId new_value(const std::string& name, int elem_type) {
        Value v;
        v.name = name;
        if (std::optional<DType> d = dtype_of(elem_type))
            v.dtype = *d;
        else if (elem_type != 0)
            bad_dtype_[name] = onnx_type_name(elem_type);
        if (auto it = types_.find(name); it != types_.end())
            if (auto s = static_shape(*it->second)) v.shape = *s;
        ValueId id = graph_.add_value(std::move(v));
        ids_[name] = id;
        return id;
    }

    int elem_type_of(const std::string& name) const {
        auto it = types_.find(name);
        if (it == types_.end() || !it->second->has_tensor_type()) return 0;
        return it->second->tensor_type().elem_type();
    }

    void add_initializers_and_inputs() {
        for (const auto& t : model_.graph().initializer()) {
            ValueId id = new_value(t.name(), t.data_type());
            if (std::optional<Tensor> data = to_tensor(t, path_)) {
                graph_.value(id).shape = data->shape;
                graph_.value(id).data = std::make_shared<const Tensor>(std::move(*data));
            }
        }
        for (const auto& in : model_.graph().input()) {
            if (ids_.count(in.name())) continue;  // an initializer listed as an input
            ValueId id = new_value(in.name(), elem_type_of(in.name()));
            if (auto it = options_.constant_inputs.find(in.name());
                it != options_.constant_inputs.end()) {
                graph_.value(id).dtype = it->second.dtype;
                graph_.value(id).data = std::make_shared<const Tensor>(it->second);
                continue;
            }
            graph_.inputs.push_back(id);
        }
    }

    Attribute convert_attribute(const onnx::AttributeProto& a, std::vector<std::string>& why) {
        switch (a.type()) {
            case onnx::AttributeProto_AttributeType_INT:
                return a.i();
            case onnx::AttributeProto_AttributeType_FLOAT:
                return a.f();
            case onnx::AttributeProto_AttributeType_STRING:
                return a.s();
            case onnx::AttributeProto_AttributeType_INTS:
                return std::vector<int64_t>(a.ints().begin(), a.ints().end());
            case onnx::AttributeProto_AttributeType_FLOATS:
                return std::vector<float>(a.floats().begin(), a.floats().end());
            case onnx::AttributeProto_AttributeType_TENSOR: {
                onnx::TensorProto t = a.t();
                if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
                    load_external(t, fs::path(path_).parent_path(), path_);
                if (std::optional<Tensor> data = to_tensor(t, path_)) return *data;
                why.push_back("attribute '" + a.name() + "' is a tensor of " +
                              onnx_type_name(t.data_type()));
                return int64_t{0};
            }
            default:
                why.push_back("attribute '" + a.name() + "' is of a kind kiln does not read (" +
                              onnx::AttributeProto_AttributeType_Name(a.type()) + ")");
                return int64_t{0};
        }
    }

    void add_node(const onnx::NodeProto& p, int index) {
        Node n;
        n.op = p.op_type();
        n.name = p.name();
        n.source_index = index;
        const bool onnx_domain = p.domain().empty() || p.domain() == "ai.onnx";
        const GraphOp* op = onnx_domain ? find_graph_op(p.op_type()) : nullptr;
        if (op && !op->is_onnx()) op = nullptr;  // kiln's fused ops are made by passes only
        std::vector<std::string> why;
        for (const auto& a : p.attribute())
            n.attrs[a.name()] = convert_attribute(a, why);
        for (const std::string& name : p.input()) {
            if (name.empty()) {
                n.inputs.push_back(kNoId);
                continue;
            }
            auto it = ids_.find(name);
            if (it == ids_.end())
                throw ImportError(
                    ImportFailure::invalid, path_,
                    "node " + n.label() + " reads '" + name + "', which nothing defines before it");
            n.inputs.push_back(it->second);
        }
        int last = p.output_size();
        while (last > 0 && p.output(last - 1).empty())
            --last;  // omitted trailing optional outputs
        for (int k = 0; k < last; ++k) {
            std::string name = p.output(k);
            if (name.empty()) name = "<" + n.label() + " output " + std::to_string(k) + ">";
            n.outputs.push_back(new_value(name, elem_type_of(name)));
        }
        const std::string who = n.name.empty() ? "#" + std::to_string(index) : "'" + n.name + "'";
        if (!op) {
            unknown_[onnx_domain ? n.op : p.domain() + ":" + n.op].push_back(who);
            return;
        }
        for (ValueId v : n.inputs)
            if (v != kNoId && bad_dtype_.count(graph_.value(v).name))
                why.push_back("input '" + graph_.value(v).name + "' is " +
                              bad_dtype_[graph_.value(v).name]);
        for (ValueId v : n.outputs)
            if (bad_dtype_.count(graph_.value(v).name))
                why.push_back("output '" + graph_.value(v).name + "' is " +
                              bad_dtype_[graph_.value(v).name]);
        if (why.empty())
            if (std::string r = op->decline(n, graph_); !r.empty()) why.push_back(r);
        if (!why.empty()) return decline(n, who, why);
        // After a refusal kiln's shapes are not computed: the model is refused anyway, and
        // later nodes are only checked for what they are.
        if (!unknown_.empty() || !declined_.empty()) return;
        std::vector<ValueType> types;
        try {
            types = op->infer(n, graph_);
        } catch (const Declined& d) {
            return decline(n, who, {d.what()});
        } catch (const Error& e) {
            throw ImportError(ImportFailure::invalid, path_, e.what());
        }
        if (types.size() != n.outputs.size())
            throw ImportError(ImportFailure::invalid, path_,
                              "node " + n.label() + " has " + std::to_string(n.outputs.size()) +
                                  " outputs, kiln's " + n.op + " makes " +
                                  std::to_string(types.size()));
        for (size_t k = 0; k < types.size(); ++k)
            set_type(n, graph_.value(n.outputs[k]), types[k]);
        if (!fold(n, *op)) graph_.add_node(std::move(n));
    }

    // kiln's type for an output, checked against what onnx's inference found.
    void set_type(const Node& n, Value& v, const ValueType& t) {
        if (auto it = types_.find(v.name); it != types_.end()) {
            auto s = static_shape(*it->second);
            if (s && *s != t.shape)
                throw ImportError(ImportFailure::invalid, path_,
                                  "node " + n.label() + ": kiln computes shape " +
                                      shape_string(t.shape) + " for '" + v.name +
                                      "', the model or ONNX's shape inference says " +
                                      shape_string(*s));
        }
        v.dtype = t.dtype;
        v.shape = t.shape;
    }

    // Evaluates a node whose inputs are all constants (or, for Shape, whose input shapes are
    // known) and makes its outputs constants. Not when it would grow the model a lot.
    bool fold(const Node& n, const GraphOp& op) {
        std::vector<const Tensor*> in;
        std::vector<Tensor> shape_only;  // inputs of ops that read only shapes
        shape_only.reserve(n.inputs.size());
        int64_t in_size = 0;
        for (ValueId id : n.inputs) {
            if (id == kNoId) {
                in.push_back(nullptr);
                continue;
            }
            const Value& v = graph_.value(id);
            if (v.is_constant()) {
                in.push_back(v.data.get());
                in_size += v.numel();
            } else if (!op.reads_input_data()) {
                shape_only.push_back(Tensor{v.dtype, v.shape, {}});
                in.push_back(&shape_only.back());
            } else {
                return false;
            }
        }
        std::vector<Tensor> out;
        int64_t out_size = 0;
        for (ValueId id : n.outputs) {
            out.push_back(Tensor::zeros(graph_.value(id).dtype, graph_.value(id).shape));
            out_size += out.back().numel();
        }
        constexpr int64_t kSmall = 1 << 16;
        if (out_size > std::max(in_size, kSmall)) return false;
        try {
            op.evaluate(n, graph_.opset, in, out);
        } catch (const Error& e) {
            throw ImportError(ImportFailure::invalid, path_, e.what());
        }
        for (size_t k = 0; k < out.size(); ++k)
            graph_.value(n.outputs[k]).data = std::make_shared<const Tensor>(std::move(out[k]));
        return true;
    }

    void decline(const Node& n, const std::string& who, const std::vector<std::string>& why) {
        std::string reasons;
        for (const auto& r : why)
            reasons += (reasons.empty() ? "" : "; ") + r;
        declined_.push_back(n.op + " node " + who + ": " + reasons);
    }

    std::string unsupported_message() const {
        std::string msg;
        if (!unknown_.empty()) {
            msg = "unsupported ops: ";
            bool first = true;
            for (const auto& [op, nodes] : unknown_) {
                msg += std::string(first ? "" : "; ") + op + " (" + std::to_string(nodes.size()) +
                       (nodes.size() == 1 ? " node: " : " nodes: ");
                for (size_t i = 0; i < nodes.size(); ++i)
                    msg += (i ? ", " : "") + nodes[i];
                msg += ")";
                first = false;
            }
        }
        if (!declined_.empty()) {
            msg += std::string(msg.empty() ? "" : "; and ") + "unsupported uses of supported ops: ";
            for (size_t i = 0; i < declined_.size(); ++i)
                msg += (i ? "; " : "") + declined_[i];
        }
        return msg;
    }

    void add_outputs() {
        for (const auto& out : model_.graph().output()) {
            auto it = ids_.find(out.name());
            if (it == ids_.end())
                throw ImportError(ImportFailure::invalid, path_,
                                  "graph output '" + out.name() + "' is never produced");
            graph_.outputs.push_back(it->second);
        }
    }

    std::string path_;
    ImportOptions options_;
    onnx::ModelProto model_;
    Graph graph_;
    std::unordered_map<std::string, const onnx::TypeProto*> types_;  // onnx's, by value name
    std::unordered_map<std::string, ValueId> ids_;
    std::unordered_map<std::string, std::string> bad_dtype_;   // values of types kiln lacks
    std::map<std::string, std::vector<std::string>> unknown_;  // op type -> nodes
    std::vector<std::string> declined_;
};

}  // namespace

Graph import_onnx(const std::string& path, const ImportOptions& options) {
    return Importer(path, options).run();
}

std::vector<std::string> onnx_op_types(const std::string& path) {
    onnx::ModelProto model = parse_model(path);
    std::vector<std::string> ops;
    for (const auto& n : model.graph().node()) {
        const bool onnx_domain = n.domain().empty() || n.domain() == "ai.onnx";
        ops.push_back(onnx_domain ? n.op_type() : n.domain() + ":" + n.op_type());
    }
    return ops;
}

Tensor load_tensor_pb(const std::string& path, std::string* name) {
    std::string bytes = read_file(path, path, ImportFailure::file);
    onnx::TensorProto t;
    if (!t.ParseFromString(bytes))
        throw ImportError(ImportFailure::file, path, "not a serialized ONNX TensorProto");
    if (t.data_type() == onnx::TensorProto_DataType_UNDEFINED)
        throw ImportError(ImportFailure::unsupported, path,
                          "not a tensor (no element type: a sequence, map or optional?)");
    if (name) *name = t.name();
    std::optional<Tensor> data = to_tensor(t, path);
    if (!data)
        throw ImportError(ImportFailure::unsupported, path,
                          "tensor of " + onnx_type_name(t.data_type()) + " (kiln stores " +
                              "f32, f16, i64, i32, i8 and u8)");
    return *data;
}

}  // namespace kiln::graph
