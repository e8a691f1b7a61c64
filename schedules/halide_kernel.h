// kiln/schedules/halide_kernel.h — turns Halide pipelines into a kiln::Kernel (internal).
//
// An op's schedule file defines its Funcs (from generators/), schedules them, and hands the
// pipelines here: an optional `pack` pipeline that repacks constants (weights) once, and the
// `main` pipeline. Each ImageParam is bound to one of the op's inputs (Workload::inputs() order)
// or to the packed buffer. Boundary tensors are row-major, so Halide's dimension 0 is the last
// dimension of the TensorSpec (W of NCHW, columns of a matrix).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "Halide.h"
#include "core/workload.h"
#include "schedules/kernel.h"

namespace kiln {

struct HalideBinding {
    Halide::ImageParam param;
    int input = -1;  // index into Workload::inputs(); -1 = the packed buffer
};

struct HalidePipelines {
    Halide::Pipeline main;
    std::vector<HalideBinding> main_args;
    // Optional: computes the packed constants. Its output shape is `packed_extents` (Halide
    // order, dimension 0 innermost) and its parameters bind to op inputs.
    std::optional<Halide::Pipeline> pack;
    std::vector<HalideBinding> pack_args;
    std::vector<int> packed_extents;
    // Optional views: the extents (Halide order) the pipelines see for an op input or for the
    // output, in place of the tensor's own. Same elements, dense, e.g. NCHW seen as
    // (H*W, C, N) by a GEMM over pixels. Empty = the tensor's shape.
    std::vector<std::vector<int>> input_views;  // indexed like Workload::inputs()
    std::vector<int> output_view;
    // Optional: `main` has one output per crop, each a region of the op's output given as
    // (min, extent) for its first dimensions (the rest whole). Together they must cover it.
    std::vector<std::vector<std::pair<int, int>>> output_crops;
};

// Binds the epilogue's inputs, bias then residual as the epilogue has them, to the op inputs that
// follow its first two (Workload::inputs() order).
void bind_epilogue_args(HalidePipelines& p, const Workload& w, Halide::ImageParam bias,
                        Halide::ImageParam residual);

// JIT-compiles both pipelines for `t` (which must be the host) and records the compile time.
std::unique_ptr<Kernel> make_halide_kernel(const Workload& w, HalidePipelines p, const Target& t);

// A schedule space whose kernels are Halide pipelines. pipelines() defines and schedules them
// without compiling, so that other tools can read or compile them their own way (the cost
// model lowers them to read the loop nest); compile() JIT-compiles them.
class HalideSpaceDef : public SpaceDef {
  public:
    // `config` must pass space(w, t).check().
    virtual HalidePipelines pipelines(const Workload& w, const Config& config,
                                      const Target& t) const = 0;
    std::unique_ptr<Kernel> compile(const Workload& w, const Config& config,
                                    const Target& t) const override {
        return make_halide_kernel(w, pipelines(w, config, t), t);
    }
};

// Gives the main pipeline's inputs and outputs the workload's dense shapes (views and the
// packed extents included), so that lowering sees constant extents. Kernels that must run on
// any buffer (the JIT kernels) leave them open.
void constrain_shapes(HalidePipelines& p, const Workload& w);

// The pipelines of a config, validated as compile_kernel() validates it. Throws kiln::Error when
// the op's space is not made of Halide pipelines.
HalidePipelines build_pipelines(const Workload& w, const Config& config, const Target& t);

// The Halide target for a kiln target, ready for JIT when it is the host.
Halide::Target halide_target(const Target& t);

// Reversed shape of a tensor: Halide extents, innermost first.
std::vector<int> halide_extents(const TensorSpec& spec);

}  // namespace kiln
