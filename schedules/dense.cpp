// kiln/schedules/dense.cpp — dense's schedule space: the BLIS-style GEMM of schedules/gemm.h.
//
// The weight is a constant, so it is packed into panels once, by the `pack` pipeline at
// prepare() time; the main pipeline only reads panels.
#include "core/op.h"  // KILN_CONCAT, used by KILN_REGISTER_SPACE
#include "core/workload.h"
#include "generators/dense_algorithm.h"
#include "schedules/gemm.h"
#include "schedules/halide_kernel.h"
#include "schedules/kernel.h"

namespace kiln {

namespace {

class DenseSpace final : public HalideSpaceDef {
  public:
    std::string op() const override { return "dense"; }

    ScheduleSpace space(const Workload& w, const Target& t) const override {
        ScheduleSpace s;
        s.op = "dense";
        s.version = 1;
        add_gemm_knobs(s, {0, w.get("m"), w.get("n"), w.get("k")}, t);
        return s;
    }

    HalidePipelines pipelines(const Workload& w, const Config& c, const Target& t) const override {
        DenseFuncs d = dense_algorithm(w, static_cast<int>(c.i("nr")), c.i("kc"));
        schedule_gemm(d.gemm, d.shape, GemmKnobs::of(c), t, Halide::Func());
        // Packing is a transpose into panels; it runs once, so only its outer loop is parallel.
        d.pack.parallel(d.pack.args()[2]);

        HalidePipelines p;
        p.main = Halide::Pipeline(d.gemm.out);
        p.main_args = {{d.input, 0}, {d.packed, -1}};
        bind_epilogue_args(p, w, d.bias, d.residual);
        p.pack = Halide::Pipeline(d.pack);
        p.pack_args = {{d.weight, 1}};
        p.packed_extents = d.packed_extents;

        const auto specs = w.inputs();
        for (auto& b : p.main_args)
            set_dense_shape(b.param,
                            b.input < 0 ? p.packed_extents : halide_extents(specs[b.input]));
        for (auto& b : p.pack_args)
            set_dense_shape(b.param, halide_extents(specs[b.input]));
        set_dense_shape(d.gemm.out.output_buffer(), halide_extents(w.output()));
        set_dense_shape(d.pack.output_buffer(), p.packed_extents);
        return p;
    }
};

}  // namespace

KILN_REGISTER_SPACE(DenseSpace);

}  // namespace kiln
