#include "schedules/verify.h"

#include <cmath>
#include <random>

#include "core/op.h"

namespace kiln {

std::vector<std::vector<float>> random_inputs(const Workload& w, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<std::vector<float>> out;
    for (const auto& spec : w.inputs()) {
        std::vector<float> t(static_cast<size_t>(spec.numel()));
        for (float& x : t)
            x = dist(rng);
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<const float*> pointers(const std::vector<std::vector<float>>& tensors) {
    std::vector<const float*> p;
    for (const auto& t : tensors)
        p.push_back(t.data());
    return p;
}

VerifyResult verify_kernel(const Workload& w, Kernel& kernel, uint64_t seed) {
    auto inputs = random_inputs(w, seed);
    auto ptrs = pointers(inputs);
    size_t n = static_cast<size_t>(w.output().numel());
    std::vector<float> ref(n), out(n, std::nanf(""));
    w.def().reference(w, ptrs, ref.data());
    kernel.prepare(ptrs);
    kernel.run(ptrs, out.data());
    VerifyResult r;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(out[i])) r.finite = false;
        r.max_abs_error = std::fmax(r.max_abs_error, std::fabs(double(out[i]) - ref[i]));
        r.max_abs_ref = std::fmax(r.max_abs_ref, std::fabs(double(ref[i])));
    }
    r.relative_error = r.max_abs_error / std::fmax(r.max_abs_ref, 1e-30);
    if (!r.finite) r.relative_error = INFINITY;
    return r;
}

}  // namespace kiln
