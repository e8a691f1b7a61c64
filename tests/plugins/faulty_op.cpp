// kiln/tests/plugins/faulty_op.cpp — an op that misbehaves on request, for the runner's tests.
//
// Built as the shared library kiln_test_faulty and loaded with `kiln measure-one --plugin`, so
// the real kiln binary can be made to crash, hang, compute a wrong answer or fail to compile
// exactly when a test wants it. The op `test_faulty` doubles a vector of n floats; its one knob
// `behaviour` picks how the compiled kernel behaves. Plain C++, no Halide: the failure modes are
// about the process, not the code generator. Start with FaultySpace::compile().
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/op.h"
#include "schedules/kernel.h"
#include "schedules/space.h"

namespace kiln {
namespace {

class FaultyDef final : public OpDef {
  public:
    std::string name() const override { return "test_faulty"; }
    std::string summary() const override {
        return "test only: output = 2 * input, with a knob that makes the kernel misbehave";
    }
    std::string example() const override { return "n=64"; }
    const std::vector<ParamSpec>& params() const override {
        static const std::vector<ParamSpec> p = {{"n", "n", 0, 1, -1, 1, "elements"}};
        return p;
    }
    void check(const Workload& w) const override {
        if (!w.epilogue.empty()) throw Error("epilogue", "test_faulty takes no epilogue");
    }
    std::vector<TensorSpec> operands(const Workload& w) const override {
        return {{"input", {w.get("n")}, w.dtype}};
    }
    TensorSpec output(const Workload& w) const override {
        return {"output", {w.get("n")}, w.dtype};
    }
    double flops(const Workload& w) const override { return static_cast<double>(w.get("n")); }
    void reference(const Workload& w, const std::vector<const float*>& in,
                   float* out) const override {
        for (int64_t i = 0; i < w.get("n"); ++i)
            out[i] = 2.0f * in[0][i];
    }
};

class FaultyKernel final : public Kernel {
  public:
    FaultyKernel(std::string behaviour, int64_t n) : behaviour_(std::move(behaviour)), n_(n) {}

    void prepare(const std::vector<const float*>&) override {}

    void run(const std::vector<const float*>& in, float* out) override {
        if (behaviour_ == "segfault") {
            // Read through a volatile pointer so the compiler cannot turn the store into a trap
            // instruction (SIGILL): the test wants a real SIGSEGV.
            static int* volatile null_pointer = nullptr;
            *null_pointer = 1;
        }
        if (behaviour_ == "abort") std::abort();
        if (behaviour_ == "hang")
            for (;;)
                std::this_thread::sleep_for(std::chrono::hours(1));
        if (behaviour_ == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const float offset = behaviour_ == "wrong" ? 1.0f : 0.0f;
        for (int64_t i = 0; i < n_; ++i)
            out[i] = 2.0f * in[0][i] + offset;
    }

  private:
    std::string behaviour_;
    int64_t n_;
};

class FaultySpace final : public SpaceDef {
  public:
    std::string op() const override { return "test_faulty"; }
    ScheduleSpace space(const Workload&, const Target&) const override {
        ScheduleSpace s;
        s.op = op();
        s.version = 7;  // not 1, so tests see the space's own version reach the record
        s.knobs = {
            {"behaviour", "how the kernel misbehaves",
             name_domain({"ok", "segfault", "abort", "hang", "wrong", "compile_error", "slow"}),
             nullptr}};
        s.default_config.set("behaviour", std::string("ok"));
        return s;
    }
    std::unique_ptr<Kernel> compile(const Workload& w, const Config& c,
                                    const Target&) const override {
        if (c.s("behaviour") == "compile_error")
            throw Error("behaviour", "compile_error requested by the config");
        return std::make_unique<FaultyKernel>(c.s("behaviour"), w.get("n"));
    }
};

KILN_REGISTER_OP(FaultyDef);
KILN_REGISTER_SPACE(FaultySpace);

}  // namespace
}  // namespace kiln
