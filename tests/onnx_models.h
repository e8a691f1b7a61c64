// kiln/tests/onnx_models.h — building small ONNX models in tests with onnx's protobuf classes:
// a model, its typed inputs and outputs, initializers, nodes and their attributes.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace kiln::test_onnx {

inline onnx::ModelProto new_model(int opset = 13) {
    onnx::ModelProto m;
    m.set_ir_version(8);
    m.set_producer_name("kiln tests");
    auto* op = m.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    m.mutable_graph()->set_name("test");
    return m;
}

// A dimension < 0 is symbolic ("N").
inline void add_input(onnx::ModelProto& m, const std::string& name,
                      const std::vector<int64_t>& shape,
                      int elem = onnx::TensorProto_DataType_FLOAT) {
    auto* in = m.mutable_graph()->add_input();
    in->set_name(name);
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    auto* s = t->mutable_shape();
    for (int64_t d : shape) {
        if (d < 0)
            s->add_dim()->set_dim_param("N");
        else
            s->add_dim()->set_dim_value(d);
    }
}

// The checker wants a shape on graph outputs; a dimension < 0 is left unknown.
inline void add_output(onnx::ModelProto& m, const std::string& name,
                       const std::vector<int64_t>& shape,
                       int elem = onnx::TensorProto_DataType_FLOAT) {
    auto* out = m.mutable_graph()->add_output();
    out->set_name(name);
    auto* t = out->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    auto* s = t->mutable_shape();
    for (int64_t d : shape) {
        auto* dim = s->add_dim();
        if (d >= 0) dim->set_dim_value(d);
    }
}

inline onnx::TensorProto* add_init(onnx::ModelProto& m, const std::string& name,
                                   const std::vector<int64_t>& shape,
                                   const std::vector<float>& data) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_FLOAT);
    for (int64_t d : shape)
        t->add_dims(d);
    for (float v : data)
        t->add_float_data(v);
    return t;
}

inline void add_init_i64(onnx::ModelProto& m, const std::string& name,
                         const std::vector<int64_t>& data) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_INT64);
    t->add_dims(static_cast<int64_t>(data.size()));
    for (int64_t v : data)
        t->add_int64_data(v);
}

inline onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op,
                                 const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs,
                                 const std::string& name = "") {
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs)
        n->add_input(i);
    for (const auto& o : outputs)
        n->add_output(o);
    return n;
}

inline void set_ints(onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    for (int64_t x : v)
        a->add_ints(x);
}

inline void set_int(onnx::NodeProto* n, const std::string& key, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(v);
}

// A temporary directory for model files, removed with the object.
class ModelDir {
  public:
    ModelDir() {
        char tmpl[] = "/tmp/kiln_models_XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("cannot make a temporary directory");
        path_ = tmpl;
    }
    ~ModelDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ModelDir(const ModelDir&) = delete;
    ModelDir& operator=(const ModelDir&) = delete;

    const std::string& path() const { return path_; }
    std::string write(const onnx::ModelProto& m, const std::string& file = "model.onnx") const {
        const std::string path = path_ + "/" + file;
        std::ofstream f(path, std::ios::binary);
        m.SerializeToOstream(&f);
        return path;
    }
    std::string write_bytes(const std::string& bytes, const std::string& file) const {
        const std::string path = path_ + "/" + file;
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
    }

  private:
    std::string path_;
};

}  // namespace kiln::test_onnx
