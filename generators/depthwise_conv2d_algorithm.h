// kiln/generators/depthwise_conv2d_algorithm.h — depthwise_conv2d's Halide algorithm (internal).
//
// generators/depthwise_conv2d.cpp defines the Funcs; schedules/depthwise_conv2d.cpp schedules
// them and binds the ImageParams. Two layouts, because the layout changes the algorithm and not
// only its schedule:
//   nchw   the accumulator is NCHW like the boundary; a schedule vectorizes over output width.
//   nchwc  the input is repacked per output channel into blocks of `channel_block` channels
//          (NCHW[x]c, innermost the channel), weights are packed once at prepare() time, and a
//          schedule vectorizes over channels. It also reads and writes channel-blocked
//          activations (Workload::layout): an input blocked by `channel_block` is copied block by
//          block as it is, and a blocked output (its block must be `channel_block`) stores the
//          accumulator's channel vectors as they are.
// Halide dimension 0 is the innermost: NCHW input, residual and output are (x, y, c, n); blocked
// ones (c % b, x, y, c / b, n).
#pragma once

#include <vector>

#include "Halide.h"
#include "core/workload.h"

namespace kiln {

enum class DepthwiseLayout { nchw, nchwc };

struct DepthwiseAlgorithm {
    DepthwiseLayout layout = DepthwiseLayout::nchw;
    int channel_block = 1;  // nchwc only
    bool has_padding = false;
    bool blocked_output = false;  // output (ci, x, y, ko, n) instead of (x, y, k, n)

    // Boundary tensors. `bias` and `residual` are defined only when the epilogue uses them.
    Halide::ImageParam input, weight, bias, residual;
    // nchwc: the packed weight (ci, rx, ry, ko), bound to the buffer `pack` fills.
    Halide::ImageParam packed_weight;

    Halide::Var x{"x"}, y{"y"}, k{"k"}, n{"n"}, c{"c"}, ci{"ci"}, ko{"ko"};
    Halide::RDom taps;  // taps.x over kernel width, taps.y over kernel height

    // Zero-padded input (x, y, c, n); the identity of `input` when there is no padding.
    Halide::Func padded;
    // nchw with a width stride sw > 1: the padded input by column phase,
    // (x, p, y, c, n) = padded(x * sw + p, y, c, n), so the taps read dense vectors.
    Halide::Func phased;
    // nchwc: the input by output channel, blocked: (ci, x, y, ko, n) = padded(x, y, channel).
    Halide::Func blocked;
    // nchwc: weight packing (ci, rx, ry, ko), realized into `packed_extents` by the pack pipeline.
    Halide::Func pack;
    std::vector<int> packed_extents;
    // The copy a schedule places (padded, phased or blocked); undefined when the accumulator
    // reads the input directly (nchw, no padding, stride 1).
    Halide::Func copy;
    // The sum over taps: nchw (x, y, k, n); nchwc (ci, x, y, ko, n). Pure step zero, one update.
    Halide::Func acc;
    // The output with the epilogue applied: NCHW (x, y, k, n), or blocked (ci, x, y, ko, n).
    Halide::Func output;
};

// Builds the Funcs for a validated depthwise_conv2d workload. `channel_block` is used for nchwc.
DepthwiseAlgorithm depthwise_conv2d_algorithm(const Workload& w, DepthwiseLayout layout,
                                              int channel_block);

}  // namespace kiln
