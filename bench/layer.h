// kiln/bench/layer.h — one layer of the peer benchmark, as layers.json describes it.
//
// The peers need the raw shape whether or not kiln has the op yet, so a Layer carries the JSON
// fields as given plus the two shapes the peers understand: a (grouped) convolution or a GEMM.
// to_workload() turns it into kiln's Workload through the op's own parameter list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/workload.h"

namespace kiln::bench {

// NCHW input [n, c, h, w], weight [k, c / groups, r, s], square stride/pad/dilation.
struct ConvDims {
    int64_t n, c, h, w, k, r, s, stride, pad, dilation, groups;
    int64_t oh() const { return (h + 2 * pad - dilation * (r - 1) - 1) / stride + 1; }
    int64_t ow() const { return (w + 2 * pad - dilation * (s - 1) - 1) / stride + 1; }
};

// Y[m, n] = X[m, k] * W[n, k]^T, all row-major.
struct GemmDims {
    int64_t m, n, k;
};

struct Layer {
    std::string id;
    std::string op;     // conv2d, depthwise_conv2d, dense
    std::string model;  // "" for synthetic shapes
    nlohmann::json fields;
    bool is_conv = false;  // conv2d and depthwise_conv2d (groups = c when absent)
    ConvDims conv{};
    GemmDims gemm{};

    double flops() const;  // 2 per multiply-add, as layers.json defines them
    // Element counts of the boundary tensors: data, weight, output.
    int64_t input_numel() const;
    int64_t weight_numel() const;
    int64_t output_numel() const;
    std::string shape_text() const;  // "c=64,h=56,..." in the CLI's form, for tables and logs

    // kiln's Workload for this layer: every parameter the op defines, taken from the fields of
    // the same name. Throws kiln::Error when the op is not registered or a field is missing.
    Workload to_workload() const;
};

// One entry of layers.json; throws kiln::Error naming `where` when a field is missing or the
// shape is invalid.
Layer parse_layer(const nlohmann::json& j, const std::string& where);

// Reads layers.json; throws kiln::Error naming the file and the offending layer.
std::vector<Layer> load_layers(const std::string& path);

}  // namespace kiln::bench
