// kiln/graph/window.cpp — Window from ONNX attributes (see window.h).
#include <algorithm>

#include "graph/window.h"

#include "graph/op.h"

namespace kiln::graph {

Window make_window(const Node& n, const std::vector<int64_t>& spatial,
                   const std::vector<int64_t>& kernel, bool ceil_mode, bool has_dilations) {
    const int rank = static_cast<int>(spatial.size());
    if (rank < 1 || rank > 3)
        throw Declined(std::to_string(rank) + "-D windows; kiln covers 1-D to 3-D");
    if (static_cast<int>(kernel.size()) != rank)
        throw node_error(n, "kernel has " + std::to_string(kernel.size()) + " dimensions, the " +
                                "input " + std::to_string(rank) + " spatial ones");
    std::vector<int64_t> strides = n.attr_ints("strides", std::vector<int64_t>(rank, 1));
    std::vector<int64_t> dilations = has_dilations
                                         ? n.attr_ints("dilations", std::vector<int64_t>(rank, 1))
                                         : std::vector<int64_t>(rank, 1);
    std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * rank, 0));
    std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
    if (static_cast<int>(strides.size()) != rank || static_cast<int>(dilations.size()) != rank ||
        static_cast<int>(pads.size()) != 2 * rank)
        throw node_error(n, "strides, dilations and pads must have " + std::to_string(rank) + ", " +
                                std::to_string(rank) + " and " + std::to_string(2 * rank) +
                                " entries");
    if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" &&
        auto_pad != "VALID")
        throw node_error(n, "unknown auto_pad '" + auto_pad + "'");

    Window w;
    w.rank = rank;
    const int lead = 3 - rank;
    for (int i = 0; i < 3; ++i) {
        w.in[i] = w.out[i] = w.kernel[i] = w.stride[i] = w.dilation[i] = 1;
        w.pad_begin[i] = w.pad_end[i] = 0;
    }
    for (int d = 0; d < rank; ++d) {
        const int i = lead + d;
        w.in[i] = spatial[d];
        w.kernel[i] = kernel[d];
        w.stride[i] = strides[d];
        w.dilation[i] = dilations[d];
        if (w.kernel[i] < 1 || w.stride[i] < 1 || w.dilation[i] < 1)
            throw node_error(n, "kernel, strides and dilations must be at least 1");
        const int64_t span = (w.kernel[i] - 1) * w.dilation[i] + 1;
        if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            w.out[i] = (w.in[i] + w.stride[i] - 1) / w.stride[i];
            int64_t total = std::max<int64_t>(0, (w.out[i] - 1) * w.stride[i] + span - w.in[i]);
            int64_t small = total / 2;
            w.pad_begin[i] = auto_pad == "SAME_UPPER" ? small : total - small;
            w.pad_end[i] = total - w.pad_begin[i];
            continue;
        }
        if (auto_pad == "NOTSET") {
            w.pad_begin[i] = pads[d];
            w.pad_end[i] = pads[d + rank];
        }
        if (w.pad_begin[i] < 0 || w.pad_end[i] < 0)
            throw node_error(n, "negative pads are not valid");
        const int64_t room = w.in[i] + w.pad_begin[i] + w.pad_end[i] - span;
        if (room < 0)
            throw node_error(n, "the window (" + std::to_string(span) +
                                    ") is larger than the padded input (" +
                                    std::to_string(w.in[i] + w.pad_begin[i] + w.pad_end[i]) + ")");
        w.out[i] = (ceil_mode ? (room + w.stride[i] - 1) / w.stride[i] : room / w.stride[i]) + 1;
        // As PyTorch and ONNX Runtime: a last window that would start in the end padding is
        // dropped.
        if (ceil_mode && (w.out[i] - 1) * w.stride[i] >= w.in[i] + w.pad_begin[i]) --w.out[i];
    }
    return w;
}

std::vector<int64_t> window_output_dims(const Window& w) {
    return std::vector<int64_t>(w.out.begin() + (3 - w.rank), w.out.end());
}

}  // namespace kiln::graph
