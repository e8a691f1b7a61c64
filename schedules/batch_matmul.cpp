// kiln/schedules/batch_matmul.cpp — batch_matmul's schedule space: the GEMM of schedules/gemm.h
// with a batch axis that may be the parallel one.
//
// Both operands are activations, so there is no prepare()-time packing: b is copied into
// panels inside the main pipeline, once per batch. The copy costs k x n loads for m x n x k
// multiply-adds (1/128 of the work for attention's m = 128) and buys contiguous, zero-padded
// panel loads: no guards on ragged n, and no cache-set conflicts from a power-of-two row
// stride of b.
#include "core/op.h"  // KILN_CONCAT, used by KILN_REGISTER_SPACE
#include "core/workload.h"
#include "generators/batch_matmul_algorithm.h"
#include "schedules/gemm.h"
#include "schedules/halide_kernel.h"
#include "schedules/kernel.h"

namespace kiln {

namespace {

class BatchMatmulSpace final : public HalideSpaceDef {
  public:
    std::string op() const override { return "batch_matmul"; }

    ScheduleSpace space(const Workload& w, const Target& t) const override {
        ScheduleSpace s;
        s.op = "batch_matmul";
        s.version = 1;
        add_gemm_knobs(s, {w.get("b"), w.get("m"), w.get("n"), w.get("k")}, t);
        return s;
    }

    HalidePipelines pipelines(const Workload& w, const Config& c, const Target& t) const override {
        BatchMatmulFuncs f = batch_matmul_algorithm(w, static_cast<int>(c.i("nr")), c.i("kc"));
        schedule_gemm(f.gemm, f.shape, GemmKnobs::of(c), t, f.panels);

        HalidePipelines p;
        p.main = Halide::Pipeline(f.gemm.out);
        p.main_args = {{f.a, 0}, {f.b, 1}};
        bind_epilogue_args(p, w, f.bias, f.residual);

        const auto specs = w.inputs();
        for (auto& b : p.main_args)
            set_dense_shape(b.param, halide_extents(specs[b.input]));
        set_dense_shape(f.gemm.out.output_buffer(), halide_extents(w.output()));
        return p;
    }
};

}  // namespace

KILN_REGISTER_SPACE(BatchMatmulSpace);

}  // namespace kiln
