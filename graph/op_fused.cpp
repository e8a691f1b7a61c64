// kiln/graph/op_fused.cpp — kiln.Conv and kiln.Dense, the fused kernel nodes (see fused.h).
//
// Each is the plain op's reference (ONNX Conv's; Gemm's with transB=1 for dense) computed
// without bias, rounded to float as the kernel's accumulator is, then Epilogue::apply per
// element: exactly what kiln's kernels and their scalar references (generators/) compute, so
// a fused graph run by evaluate_reference is the oracle for the compiled model.
#include <cmath>
#include <cstring>

#include "graph/fused.h"
#include "graph/op.h"

namespace kiln::graph {

bool is_fused_kernel(const Node& n) {
    return n.op == kFusedConv || n.op == kFusedDense;
}

Epilogue fused_epilogue(const Node& n) {
    Epilogue e;
    try {
        e = Epilogue::parse(n.attr_string("epilogue", ""));
    } catch (const Error& err) {
        throw node_error(n, std::string("attribute 'epilogue': ") + err.what());
    }
    if (e.activation == Activation::clip && n.has_attr("clip")) {
        std::vector<float> bounds = n.attr_floats("clip", {});
        if (bounds.size() != 2)
            throw node_error(n, "attribute 'clip' must hold [min, max], has " +
                                    std::to_string(bounds.size()) + " values");
        e.clip_min = bounds[0];
        e.clip_max = bounds[1];
    }
    return e;
}

void set_fused_epilogue(Node& n, const Epilogue& e) {
    n.attrs["epilogue"] = e.to_string();
    if (e.activation == Activation::clip)
        n.attrs["clip"] = std::vector<float>{e.clip_min, e.clip_max};
    else
        n.attrs.erase("clip");
}

namespace {

// Bias and residual inputs agree with the epilogue; the residual has the output's shape.
void check_epilogue_inputs(const Node& n, const Graph& g, const Epilogue& e,
                           const std::vector<int64_t>& out_shape, int64_t channels) {
    const Value* bias = input(g, n, kFusedBias);
    const Value* residual = input(g, n, kFusedResidual);
    if (e.bias != (bias != nullptr))
        throw node_error(n,
                         std::string("epilogue '") + e.to_string() + "' " +
                             (e.bias ? "needs a bias input" : "has no bias, but a bias is given"));
    if (e.residual != (residual != nullptr))
        throw node_error(n, std::string("epilogue '") + e.to_string() + "' " +
                                (e.residual ? "needs a residual input"
                                            : "has no residual, but a residual is given"));
    if (bias && bias->shape != std::vector<int64_t>{channels})
        throw node_error(
            n, "bias " + shape_string(bias->shape) + " must be [" + std::to_string(channels) + "]");
    if (residual && residual->shape != out_shape)
        throw node_error(n, "residual " + shape_string(residual->shape) +
                                " must have the output's shape " + shape_string(out_shape));
}

// out[i] = e.apply(out[i], bias[channel of i], residual[i]); the channel of flat index i is
// (i / inner) % channels.
void apply_epilogue(const Epilogue& e, const Tensor* bias, const Tensor* residual, int64_t channels,
                    int64_t inner, Tensor& out) {
    if (e.empty()) return;
    float* y = out.data<float>();
    const float* b = bias ? bias->data<float>() : nullptr;
    const float* r = residual ? residual->data<float>() : nullptr;
    for (int64_t i = 0; i < out.numel(); ++i) {
        const int64_t ch = (i / inner) % channels;
        y[i] = e.apply(y[i], b ? b[ch] : 0.0f, r ? r[i] : 0.0f);
    }
}

const Tensor* optional_input(const std::vector<const Tensor*>& in, size_t i) {
    return i < in.size() ? in[i] : nullptr;
}

class FusedConvOp : public GraphOp {
  public:
    std::string type() const override { return kFusedConv; }
    std::string limits() const override {
        return "made by fuse_epilogues: Conv, then + bias, + residual, relu or clip";
    }
    bool is_onnx() const override { return false; }

    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        // Conv's checks cover X, W and the bias [K] at the same positions.
        std::vector<ValueType> types = conv().infer(n, g);
        const int64_t k = required_input(g, n, kFusedWeight, "W").shape.at(0);
        check_epilogue_inputs(n, g, fused_epilogue(n), types[0].shape, k);
        return types;
    }
    void evaluate(const Node& n, int opset, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        conv().evaluate(n, opset, {in.at(kFusedData), in.at(kFusedWeight)}, out);
        const auto& shape = out[0].shape;
        int64_t inner = 1;
        for (size_t d = 2; d < shape.size(); ++d)
            inner *= shape[d];
        apply_epilogue(fused_epilogue(n), optional_input(in, kFusedBias),
                       optional_input(in, kFusedResidual), shape.at(1), inner, out[0]);
    }

  private:
    static const GraphOp& conv() {
        static const GraphOp* op = find_graph_op("Conv");
        if (!op) throw Error("graph", "kiln.Conv needs the Conv op, which is not registered");
        return *op;
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<FusedConvOp>());

class FusedDenseOp : public GraphOp {
  public:
    std::string type() const override { return kFusedDense; }
    std::string limits() const override {
        return "made by fuse_epilogues: Gemm or MatMul by a constant weight, then + bias, + "
               "residual, relu or clip";
    }
    bool is_onnx() const override { return false; }

    std::vector<ValueType> infer(const Node& n, const Graph& g) const override {
        const Value& x = required_input(g, n, kFusedData, "X");
        const Value& w = required_input(g, n, kFusedWeight, "W");
        if (x.shape.size() < 2 || w.shape.size() != 2 || x.shape.back() != w.shape[1])
            throw node_error(n, "input " + shape_string(x.shape) + " and weight " +
                                    shape_string(w.shape) +
                                    " must be [..., K] (at least 2-D) and [N, K]");
        std::vector<int64_t> out = x.shape;
        out.back() = w.shape[0];
        check_epilogue_inputs(n, g, fused_epilogue(n), out, w.shape[0]);
        return {{DType::f32, out}};
    }
    void evaluate(const Node& n, int opset, const std::vector<const Tensor*>& in,
                  std::vector<Tensor>& out) const override {
        const Tensor& x = *in.at(kFusedData);
        const Tensor& w = *in.at(kFusedWeight);
        const int64_t k = w.shape[1], cols = w.shape[0], rows = x.numel() / k;
        // Gemm's reference on the input seen as [rows, K]: the leading dimensions flattened.
        Tensor x2 = x;
        x2.shape = {rows, k};
        std::vector<Tensor> y2 = {Tensor::zeros(DType::f32, {rows, cols})};
        Node gemm_node;
        gemm_node.op = "Gemm";
        gemm_node.name = n.name;
        gemm_node.source_index = n.source_index;
        gemm_node.attrs["transB"] = int64_t{1};
        gemm().evaluate(gemm_node, opset, {&x2, &w}, y2);
        std::memcpy(out[0].bytes.data(), y2[0].bytes.data(), out[0].bytes.size());
        apply_epilogue(fused_epilogue(n), optional_input(in, kFusedBias),
                       optional_input(in, kFusedResidual), cols, 1, out[0]);
    }

  private:
    static const GraphOp& gemm() {
        static const GraphOp* op = find_graph_op("Gemm");
        if (!op) throw Error("graph", "kiln.Dense needs the Gemm op, which is not registered");
        return *op;
    }
};
KILN_REGISTER_GRAPH_OP(std::make_unique<FusedDenseOp>());

}  // namespace
}  // namespace kiln::graph
