// kiln/schedules/conv2d.cpp — conv2d's schedule space: the algorithm, then its knobs.
//
// The first knob picks the algorithm among those registered in the conv2d_*.cpp files beside
// this one that apply to the workload; each algorithm's knobs are active only under it.
#include <algorithm>
#include <map>

#include "core/error.h"
#include "schedules/conv2d_algorithms.h"
#include "schedules/halide_kernel.h"
#include "schedules/kernel.h"

namespace kiln {

namespace {
std::vector<Conv2dAlgorithm>& algorithm_registry() {
    static std::vector<Conv2dAlgorithm> algorithms;
    return algorithms;
}
}  // namespace

Conv2dAlgorithmRegistration::Conv2dAlgorithmRegistration(Conv2dAlgorithm a) {
    algorithm_registry().push_back(std::move(a));
}

const std::vector<Conv2dAlgorithm>& conv2d_algorithms() {
    return algorithm_registry();
}

namespace {

class Conv2dSpace final : public HalideSpaceDef {
  public:
    std::string op() const override { return "conv2d"; }

    ScheduleSpace space(const Workload& w, const Target& t) const override {
        ScheduleSpace sp;
        sp.op = "conv2d";
        sp.version = 2;
        std::vector<const Conv2dAlgorithm*> usable;
        for (const auto& a : conv2d_algorithms())
            if ((w.layout.plain() || a.blocked_io) && a.applies(w)) usable.push_back(&a);
        std::sort(usable.begin(), usable.end(), [](auto* a, auto* b) { return a->name < b->name; });
        if (usable.empty()) throw Error("op", "no conv2d algorithm applies to " + w.key());
        const Conv2dAlgorithm* best = usable[0];
        for (auto* a : usable)
            if (a->default_priority(w, t) > best->default_priority(w, t)) best = a;

        std::vector<std::string> names;
        for (auto* a : usable)
            names.push_back(a->name);
        sp.knobs.push_back(
            {"algorithm",
             "direct (channel-blocked), im2col (GEMM over pixels), gemm (1x1 layers as the "
             "blocked GEMM of dense, input packed into pixel panels), winograd2 / winograd4 "
             "(F(2x2,3x3) / F(4x4,3x3), 3x3 stride 1 only), direct_x (vectorized over output "
             "columns, few input channels)",
             name_domain(names), nullptr});
        sp.default_config.set("algorithm", best->name);
        for (auto* a : usable)
            a->add_knobs(sp, w, t, a == best);
        // Each other algorithm's defaults, as it would set them were it the default.
        for (auto* a : usable) {
            if (a == best) continue;
            ScheduleSpace scratch;
            scratch.default_config.set("algorithm", a->name);
            a->add_knobs(scratch, w, t, true);
            for (const auto& [name, value] : scratch.default_config.values)
                if (!sp.default_config.has(name)) sp.other_defaults.set(name, value);
        }
        return sp;
    }

    HalidePipelines pipelines(const Workload& w, const Config& c, const Target& t) const override {
        const std::string& name = c.s("algorithm");
        for (const auto& a : conv2d_algorithms())
            if (a.name == name) return a.build(w, c, t);
        throw Error("knob algorithm", "unknown conv2d algorithm '" + name + "'");
    }
};

}  // namespace

KILN_REGISTER_SPACE(Conv2dSpace);

}  // namespace kiln
