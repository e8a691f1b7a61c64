// kiln/graph/halide_ops.h — graph nodes as Halide, for the nodes no tuned kernel covers.
//
// Ahead-of-time compilation (graph/aot.h) turns every kiln.Conv and kiln.Dense node that
// extract_tasks() accepts into its op's tuned kernel. Every other node -- pooling, softmax,
// concatenation, unfused elementwise ops, and the kernel nodes kiln's kernel ops cannot express
// -- is one Halide pipeline defined here: a HalideLowering per ONNX op type (and for kiln.Conv
// / kiln.Dense as the fallback), registered next to its definition, given a simple generic
// schedule (schedule_generic()). Each lowering is checked against the op's scalar reference
// (graph/op.h) through evaluate_halide(), over the ONNX node tests.
//
// Conventions: a tensor of ONNX shape [d0, ..., dn-1] is a Halide Func of n dimensions in
// reverse order: Halide dimension 0 is dn-1, the innermost (row-major) one. A scalar is a Func
// of zero dimensions. Only float32 tensors flow between nodes at run time; integer constants
// (shapes, axes, pads) are read by the lowering from HalideTensor::constant.
//
// This header includes Halide.h: only the AOT compiler's sources include it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "Halide.h"
#include "graph/ir.h"
#include "targets/target.h"

namespace kiln::graph {

struct HalideTensor {
    Halide::Func f;              // undefined for an omitted optional input
    std::vector<int64_t> shape;  // ONNX order
    DType dtype = DType::f32;
    const Tensor* constant = nullptr;  // the data, when the input is a constant
};

class HalideLowering {
  public:
    virtual ~HalideLowering() = default;
    virtual std::string type() const = 0;  // the op type: "MaxPool", "kiln.Conv"
    // Defines the node's outputs (one Func per output, ONNX output order, float32) from its
    // inputs. Funcs inside the op (a reduction's partial results, a padded input) may be
    // scheduled here relative to each other; the caller schedules the outputs themselves
    // (schedule_generic: their pure definitions; an output with update definitions, Concat's
    // copies, has those scheduled here). Throws kiln::Error naming the node (node_error) for a
    // node it cannot lower, Declined (also naming it) for a valid node it does not take: an
    // integer input computed at run time, an output that is not f32.
    virtual std::vector<Halide::Func> define(const Node& n, const Graph& g,
                                             const std::vector<HalideTensor>& in) const = 0;
    // True for ops whose output is their first input's bytes unchanged (Reshape, Flatten,
    // Squeeze, Unsqueeze, Identity, Dropout): compilation gives the output the input's memory
    // instead of copying, and define() is only used by evaluate_halide().
    virtual bool is_alias() const { return false; }
};

// nullptr when no lowering is registered for the op type.
const HalideLowering* find_halide_lowering(const std::string& type);
std::vector<const HalideLowering*> all_halide_lowerings();  // sorted by type

struct HalideLoweringRegistration {
    explicit HalideLoweringRegistration(std::unique_ptr<HalideLowering> lowering);
};

#define KILN_HALIDE_CONCAT_INNER(a, b) a##b
#define KILN_HALIDE_CONCAT(a, b) KILN_HALIDE_CONCAT_INNER(a, b)
// Registers a HalideLowering; the argument is an expression yielding
// std::unique_ptr<HalideLowering>.
#define KILN_REGISTER_HALIDE_LOWERING(...)                                                     \
    static ::kiln::graph::HalideLoweringRegistration KILN_HALIDE_CONCAT(kiln_halide_lowering_, \
                                                                        __LINE__)(__VA_ARGS__)

// The default schedule of a lowered node's output of ONNX shape `shape`: computed at root,
// the outermost dimensions fused and parallel when there is enough work, the innermost
// vectorized at the target's natural width when it is wide enough.
void schedule_generic(Halide::Func out, const std::vector<int64_t>& shape, const Target& t);

// Runs one node through its lowering with Halide's JIT on the host: inputs as the reference
// interpreter gets them (nullptr for omitted optional inputs), outputs allocated with the
// node's output types. The check of every lowering against graph/op.h's references.
void evaluate_halide(const Node& n, const Graph& g, const std::vector<const Tensor*>& in,
                     std::vector<Tensor>& out);

}  // namespace kiln::graph
