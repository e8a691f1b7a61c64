// kiln/generators/conv2d.h — conv2d's shapes, shared by its algorithms and schedules.
//
// Parameters: n, c, h, w (input NCHW), k (output channels), r, s (kernel height, width),
// stride (h, w), pad (top, left, bottom, right), dilation (h, w), groups. Weight is
// [k, c / groups, r, s]. No Halide here.
#pragma once

#include <cstdint>
#include <vector>

#include "core/op.h"
#include "core/workload.h"

namespace kiln {

struct ConvShape {
    int64_t n, c, h, w, k, r, s;
    int64_t stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w, groups;
    int64_t oh, ow;  // output height and width

    static ConvShape of(const Workload& w);  // conv2d and depthwise_conv2d workloads
    int64_t c_per_group() const { return c / groups; }
    int64_t k_per_group() const { return k / groups; }
    bool padded() const { return pad_t || pad_l || pad_b || pad_r; }
};

// The parameters of conv2d (with groups) and depthwise_conv2d (without: groups = c), shared so
// that their keys read alike. `k_help` describes the output channels.
std::vector<ParamSpec> conv_params(bool with_groups, const std::string& k_help);
// The (dilated) kernel must fit in the padded input; the error names r or s.
void check_conv_window(const ConvShape& s);
// Throws kiln::Error on field "layout" when a blocked tensor's channels are not whole blocks.
void check_conv_blocking(const Workload& w, const ConvShape& s);

// The scalar reference for conv2d and depthwise_conv2d (double accumulation, epilogue applied).
void conv2d_reference(const Workload& w, const std::vector<const float*>& inputs, float* output);

}  // namespace kiln
