// kiln/schedules/conv2d_algorithms.h — the algorithms behind conv2d's `algorithm` knob (internal).
//
// schedules/conv2d.cpp owns the space: the `algorithm` knob (direct, im2col, winograd2,
// winograd4) and the knobs of each algorithm, active only when that algorithm is chosen. Each
// algorithm file contributes its knobs and turns a config into pipelines:
//   conv2d_direct.cpp    channel-blocked direct convolution, and im2col + GEMM
//   conv2d_winograd.cpp  Winograd F(2x2,3x3) and F(4x4,3x3), 3x3 stride-1 layers only
//   conv2d_direct_x.cpp  direct convolution vectorized over output columns, few input channels
//   conv2d_gemm.cpp      1x1 layers as the blocked GEMM of schedules/gemm.h
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/workload.h"
#include "generators/conv2d_direct.h"
#include "schedules/halide_kernel.h"
#include "schedules/space.h"
#include "targets/target.h"

namespace kiln {

// One value of the `algorithm` knob. Each algorithm file registers its own.
struct Conv2dAlgorithm {
    std::string name;  // the knob value: "direct", "im2col", "gemm", "winograd2", "direct_x", ...
    // Algorithms of one family share their knobs (winograd2 and winograd4): the space adds
    // the family's knobs once.
    std::string family;
    std::function<bool(const Workload&)> applies;
    // Adds the family's knobs, and their defaults when make_default (the default config's
    // `algorithm` is already set then).
    std::function<void(ScheduleSpace&, const Workload&, const Target&, bool make_default)>
        add_knobs;
    std::function<HalidePipelines(const Workload&, const Config&, const Target&)> build;
    // Which applicable algorithm the default config uses: the highest. A hand rule, nothing
    // more; tuning decides.
    std::function<int(const Workload&, const Target&)> default_priority;
    // True when it reads and writes channel-blocked activations (Workload::layout); the others
    // apply to plain workloads only.
    bool blocked_io = false;
};

struct Conv2dAlgorithmRegistration {
    explicit Conv2dAlgorithmRegistration(Conv2dAlgorithm a);
};
const std::vector<Conv2dAlgorithm>& conv2d_algorithms();

// True when the algorithm can compute `w` at all (Winograd: 3x3, stride 1, dilation 1, groups 1).
bool winograd_applies(const Workload& w);
// True when direct_x can compute `w`: groups 1 and at most 8 input channels.
bool direct_x_applies(const Workload& w);

// Each adds its knobs to `space` (active when the `algorithm` knob names it) and sets its
// knobs' values in space.default_config when `make_default` is true.
void add_direct_knobs(ScheduleSpace& space, const Workload& w, const Target& t, bool make_default);
void add_im2col_knobs(ScheduleSpace& space, const Workload& w, const Target& t, bool make_default);
void add_winograd_knobs(ScheduleSpace& space, const Workload& w, const Target& t,
                        bool make_default);
void add_direct_x_knobs(ScheduleSpace& space, const Workload& w, const Target& t,
                        bool make_default);

// The pipelines of conv2d Funcs with packed weights: the main pipeline reads the input, the
// packed weights, then bias and residual as the epilogue has them (Workload::inputs() order);
// the pack pipeline reads the weights.
HalidePipelines conv_pipelines(const Workload& w, const Conv2dFuncs& f);

HalidePipelines direct_conv2d(const Workload& w, const Config& c, const Target& t);
HalidePipelines im2col_conv2d(const Workload& w, const Config& c, const Target& t);
// `c.s("algorithm")` is "winograd2" (F(2x2,3x3)) or "winograd4" (F(4x4,3x3)).
HalidePipelines winograd_conv2d(const Workload& w, const Config& c, const Target& t);
HalidePipelines direct_x_conv2d(const Workload& w, const Config& c, const Target& t);

}  // namespace kiln
