// kiln/graph/window.h — the sliding-window geometry shared by Conv and the pooling ops.
//
// ONNX's kernel_shape, strides, dilations, pads, auto_pad and ceil_mode become one Window over
// 1 to 3 spatial dimensions. The references loop over three spatial dimensions always: a 1-D
// or 2-D window is padded at the front with dimensions of size 1, so the loops stay plain.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "graph/ir.h"

namespace kiln::graph {

struct Window {
    int rank = 2;  // spatial dimensions in the model (1 to 3)
    // Always three entries; the leading 3 - rank are 1 (size, kernel, stride, dilation) or 0.
    std::array<int64_t, 3> in{}, out{}, kernel{}, stride{}, dilation{}, pad_begin{}, pad_end{};
};

// `spatial` are the input's spatial sizes, `kernel` the window's (from kernel_shape or the
// weight). Reads strides, dilations (when `has_dilations`), pads and auto_pad from the node.
// Throws kiln::Error naming the node for an inconsistent window; Declined beyond 3-D.
Window make_window(const Node& n, const std::vector<int64_t>& spatial,
                   const std::vector<int64_t>& kernel, bool ceil_mode, bool has_dilations);

// The output's spatial sizes, in the model's rank.
std::vector<int64_t> window_output_dims(const Window& w);

}  // namespace kiln::graph
