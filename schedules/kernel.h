// kiln/schedules/kernel.h — a compiled kernel, and the registry of schedule spaces.
//
// compile_kernel() turns (workload, config, target) into something that runs: today a Halide
// JIT pipeline. Kernel::prepare() packs constant operands (weights) into the kernel's layout
// once; run() computes the output from the boundary tensors (NCHW, row-major matrices) as
// Workload::inputs() lists them. No Halide in this header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/op.h"
#include "core/workload.h"
#include "schedules/space.h"
#include "targets/target.h"

namespace kiln {

class Kernel {
  public:
    virtual ~Kernel() = default;
    // Packs the weight operand (and any other constant) found among `inputs`. Not timed.
    virtual void prepare(const std::vector<const float*>& inputs) = 0;
    // Computes the output. prepare() must have been called with the same weights.
    virtual void run(const std::vector<const float*>& inputs, float* output) = 0;
    double compile_seconds = 0.0;
};

// The schedule half of an op: registered by schedules/<op>.cpp with KILN_REGISTER_SPACE.
class SpaceDef {
  public:
    virtual ~SpaceDef() = default;
    virtual std::string op() const = 0;
    virtual ScheduleSpace space(const Workload& w, const Target& t) const = 0;
    // Compiles; `config` must pass space(w, t).check().
    virtual std::unique_ptr<Kernel> compile(const Workload& w, const Config& config,
                                            const Target& t) const = 0;
};

const SpaceDef& find_space(const std::string& op);  // throws kiln::Error listing known ops

struct SpaceRegistration {
    explicit SpaceRegistration(std::unique_ptr<SpaceDef> def);
};

#define KILN_REGISTER_SPACE(Type)                                          \
    static ::kiln::SpaceRegistration KILN_CONCAT(kiln_space_registration_, \
                                                 __LINE__)(std::make_unique<Type>())

// Validates the workload and config (kiln::Error with the reason if invalid), then compiles.
std::unique_ptr<Kernel> compile_kernel(const Workload& w, const Config& config, const Target& t);

}  // namespace kiln
