// kiln/core/workload.h — one kernel instance: op, shape parameters, dtype, fused epilogue.
//
// A Workload is plain data. Its meaning (which parameters exist, how they print in the key,
// what is valid, how many FLOPs it costs) comes from the op's OpDef in core/op.h, looked up by
// name in the op registry. key() is canonical and is what the tuning database keys on:
//
//   conv2d/n1c64h56w56/k64r3s3/st1p1d1g1/f32/bias+relu
//   dense/m128n768k768/f32
//
// Parameters with two values print as `2x1` (height, width) and pads with four values as
// `1x1x0x0` (top, left, bottom, right, the order of ONNX `pads`) unless all are equal. A kernel
// whose activations are channel-blocked (Blocking) has one more segment, last:
//
//   conv2d/n1c64h56w56/k64r3s3/st1p1d1g1/f32/bias+relu/layout:i8o8
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "core/tensor.h"

namespace kiln {

class OpDef;

enum class Activation { none, relu, clip };

// What is applied to the kernel's accumulator before it is stored, in this order:
// + bias[k], + residual[same shape as output], then the activation.
struct Epilogue {
    bool bias = false;
    bool residual = false;
    Activation activation = Activation::none;
    float clip_min = 0.0f;  // only for Activation::clip; relu6 is clip(0, 6)
    float clip_max = 0.0f;

    bool empty() const { return !bias && !residual && activation == Activation::none; }
    // "bias+add+relu", "relu6", "clip-1:1"; empty string for no epilogue.
    std::string to_string() const;
    static Epilogue parse(const std::string& text);  // inverse of to_string(); throws kiln::Error
    float apply(float acc, float bias_value, float residual_value) const;  // scalar reference
    bool operator==(const Epilogue& o) const;
};

// How a kernel's activation tensors lie in memory. 0 is NCHW, the default. b > 0 is NCHW[b]c:
// the tensor [N, C/b, H, W, b], channels in blocks of b innermost, the layout channel-blocked
// kernels compute in (b = the target's vector width), so that one kernel's output feeds the
// next without a transposition. C must be divisible by b, and only ops whose OpDef says
// blockable() take a blocking.
struct Blocking {
    int64_t input = 0;     // the data input
    int64_t residual = 0;  // the residual the epilogue adds
    int64_t output = 0;

    bool plain() const { return !input && !residual && !output; }
    // "i8o8": a letter (i, r, o) and its block for each blocked tensor; "" when plain.
    std::string to_string() const;
    static Blocking parse(const std::string& text);  // inverse of to_string(); throws kiln::Error
    bool operator==(const Blocking& o) const {
        return input == o.input && residual == o.residual && output == o.output;
    }
};

// An NCHW shape [N, C, H, W] as NCHW[b]c: [N, C/b, H, W, b]; b = 0 returns it as it is.
std::vector<int64_t> blocked_shape(const std::vector<int64_t>& nchw, int64_t b);

struct Workload {
    std::string op;
    // Parameter name -> values (one value, or one per spatial dim, or four for pads).
    std::map<std::string, std::vector<int64_t>> params;
    DType dtype = DType::f32;
    Epilogue epilogue;
    Blocking layout;  // plain (NCHW) unless a graph compiler keeps activations blocked

    // Accessors for parameters the op defines; throw kiln::Error if absent.
    int64_t get(const std::string& name, size_t index = 0) const;
    const std::vector<int64_t>& values(const std::string& name) const;

    const OpDef& def() const;  // registry lookup; throws for an unknown op
    std::string key() const;
    static Workload parse_key(const std::string& key);  // inverse of key(); throws kiln::Error
    // From the CLI's form: op name plus "n=1,c=64,h=56,w=56,k=64,r=3,s=3,stride=1,pad=1".
    // Missing parameters take the op's defaults; `pad=1x1x0x0` sets each side.
    static Workload from_shape(const std::string& op, const std::string& shape,
                               DType dtype = DType::f32, Epilogue epilogue = {});

    void validate() const;  // throws kiln::Error naming the offending field
    double flops() const;   // 2 per multiply-add, plus the epilogue's work
    // In order: data, weight, [bias], [residual]; data and residual blocked as `layout` says.
    std::vector<TensorSpec> inputs() const;
    TensorSpec output() const;  // blocked as `layout` says

    nlohmann::json to_json() const;
    static Workload from_json(const nlohmann::json& j);  // validates field types

    bool operator==(const Workload& o) const {
        return op == o.op && params == o.params && dtype == o.dtype && epilogue == o.epilogue &&
               layout == o.layout;
    }
};

}  // namespace kiln
