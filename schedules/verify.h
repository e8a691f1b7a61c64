// kiln/schedules/verify.h — checking a compiled kernel against the op's scalar reference.
//
// The error is normwise: max |out - ref| / max |ref| over the output, so that a large reduction
// with a few near-zero outputs does not read as wrong. Inputs are uniform in [-1, 1] from a
// seeded generator, so a failure can be replayed from its seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/workload.h"
#include "schedules/kernel.h"

namespace kiln {

// Boundary tensors of `w` filled with uniform [-1, 1] values from `seed`.
std::vector<std::vector<float>> random_inputs(const Workload& w, uint64_t seed);
std::vector<const float*> pointers(const std::vector<std::vector<float>>& tensors);

struct VerifyResult {
    double max_abs_error = 0.0;
    double max_abs_ref = 0.0;
    double relative_error = 0.0;  // max_abs_error / max(max_abs_ref, 1e-30)
    bool finite = true;           // no NaN or Inf in the kernel's output
    bool ok(double tolerance) const { return finite && relative_error <= tolerance; }
};

// The op's scalar reference output on random_inputs(w, seed). With `cache_dir`, the output is
// read from a file there when one for the same workload, seed and kiln version exists, and
// written there (atomically: a temporary file, then a rename) when it does not: a tuner checks
// every candidate of a workload against the same reference, which for a large convolution takes
// longer than compiling the candidate. A file that does not match (another key, truncated) is
// computed anew and replaced.
std::vector<float> reference_output(const Workload& w, uint64_t seed,
                                    const std::string& cache_dir = "");

// Runs prepare() and run() on random inputs and compares with the reference (cached in
// `cache_dir` as reference_output() does, when given).
VerifyResult verify_kernel(const Workload& w, Kernel& kernel, uint64_t seed,
                           const std::string& cache_dir = "");

// Default tolerance for f32 kernels (Winograd included).
constexpr double kF32Tolerance = 1e-4;

}  // namespace kiln
