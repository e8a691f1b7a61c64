// kiln/bench/kiln_run.cpp — compiling, checking and running a layer with kiln's default config.
#include "bench/kiln_run.h"

#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/op.h"
#include "schedules/kernel.h"
#include "schedules/verify.h"
#include "targets/target.h"

namespace kiln::bench {
namespace {

class KernelRun final : public LayerRun {
  public:
    KernelRun(std::unique_ptr<Kernel> kernel, std::vector<const float*> inputs,
              int64_t output_numel)
        : kernel_(std::move(kernel)), inputs_(std::move(inputs)), output_(output_numel) {
        kernel_->prepare(inputs_);
    }
    void run() override { kernel_->run(inputs_, output_.data()); }
    void read_output(float* out) override { std::copy(output_.begin(), output_.end(), out); }

  private:
    std::unique_ptr<Kernel> kernel_;
    std::vector<const float*> inputs_;
    std::vector<float> output_;
};

}  // namespace

std::unique_ptr<LayerRun> make_kernel_run(std::unique_ptr<Kernel> kernel,
                                          std::vector<const float*> inputs, int64_t output_numel) {
    return std::make_unique<KernelRun>(std::move(kernel), std::move(inputs), output_numel);
}

KilnSetup prepare_kiln(const Layer& l, const float* input, const float* weight, uint64_t seed,
                       const Config* given) {
    KilnSetup s;
    const SpaceDef* space_def = nullptr;
    try {
        find_op(l.op);
        space_def = &find_space(l.op);
    } catch (const Error&) {
        s.why = fmt::format("kiln: no kernel for {} yet", l.op);
        return s;
    }
    try {
        Workload w = l.to_workload();
        // The bench and the op must agree on the problem, or GFLOP/s compares different work.
        if (w.flops() != l.flops()) {
            s.why = fmt::format("kiln: {} counts {} FLOPs, layers.json {}", w.key(), w.flops(),
                                l.flops());
            return s;
        }
        const Target t = host_target();
        Config config = given ? *given : space_def->space(w, t).default_config;
        s.key = w.key();
        s.config = config.to_string();
        std::unique_ptr<Kernel> kernel = compile_kernel(w, config, t);
        s.compile_seconds = kernel->compile_seconds;
        VerifyResult v = verify_kernel(w, *kernel, seed);
        s.verified = v.ok(kF32Tolerance);
        s.relative_error = v.relative_error;
        // verify_kernel() prepared the kernel with its own weights; prepare it again with ours.
        s.run = make_kernel_run(std::move(kernel), {input, weight}, l.output_numel());
        s.run->detail = s.config;
    } catch (const std::exception& e) {
        s.run.reset();
        s.why = fmt::format("kiln failed: {}", e.what());
    }
    return s;
}

}  // namespace kiln::bench
