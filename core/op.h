// kiln/core/op.h — what an op is, independent of how it is compiled.
//
// Each op (conv2d, dense, ...) defines one OpDef in its generators/ file and registers it with
// KILN_REGISTER_OP. The definition names its parameters and how they print in a workload key,
// validates workloads, gives the boundary tensors, counts FLOPs and carries the scalar
// reference that every compiled kernel is checked against. No Halide here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/workload.h"

namespace kiln {

struct ParamSpec {
    std::string name;   // as on the command line: "stride"
    std::string token;  // as in the key: "st"
    int group = 0;      // key segment this parameter prints in (0 = first after the op name)
    int arity = 1;      // 1, 2 (h, w) or 4 (top, left, bottom, right)
    int64_t default_value = -1;  // < 0: required
    int64_t min_value = 1;       // smaller values are rejected, naming the parameter
    std::string help;
};

class OpDef {
  public:
    virtual ~OpDef() = default;
    virtual std::string name() const = 0;
    virtual std::string summary() const = 0;
    virtual const std::vector<ParamSpec>& params() const = 0;
    virtual std::vector<DType> dtypes() const { return {DType::f32}; }
    // A typical shape in the CLI's form ("c=64,h=56,w=56,k=64,r=3,s=3,pad=1"): what `kiln ops`
    // shows knob domains for, and what documentation and smoke tests use.
    virtual std::string example() const = 0;

    // Checks what is specific to the op (channels divisible by groups, output size > 0, ...).
    // The generic checks (each parameter present, arity, min_value, dtype) run before it.
    virtual void check(const Workload& w) const = 0;
    // Data and weight only; Workload::inputs() appends bias and residual from the epilogue.
    virtual std::vector<TensorSpec> operands(const Workload& w) const = 0;
    // True when the op's kernels can read and write channel-blocked activations (Blocking in
    // core/workload.h); check() then also checks the blocks against the channels. operands(),
    // output() and reference() still describe the plain (NCHW) tensors: Workload::inputs() and
    // output() block the shapes, and the reference takes blocked tensors.
    virtual bool blockable() const { return false; }
    virtual TensorSpec output(const Workload& w) const = 0;
    // Multiply-adds counted as 2; the epilogue is added by Workload::flops().
    virtual double flops(const Workload& w) const = 0;
    // The scalar reference, in double precision accumulation: inputs as Workload::inputs(),
    // output as Workload::output() (NCHW, or blocked as the workload's layout says). Applies
    // the epilogue.
    virtual void reference(const Workload& w, const std::vector<const float*>& inputs,
                           float* output) const = 0;
};

// The registry. find_op throws kiln::Error listing the known ops.
const OpDef& find_op(const std::string& name);
std::vector<const OpDef*> all_ops();  // sorted by name

struct OpRegistration {
    explicit OpRegistration(std::unique_ptr<OpDef> def);
};

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)
#define KILN_REGISTER_OP(Type)                                       \
    static ::kiln::OpRegistration KILN_CONCAT(kiln_op_registration_, \
                                              __LINE__)(std::make_unique<Type>())

}  // namespace kiln
