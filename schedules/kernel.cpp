#include "schedules/kernel.h"

#include "core/error.h"
#include "core/registry.h"

namespace kiln {
namespace {
Registry<SpaceDef>& registry() {
    static Registry<SpaceDef> spaces;
    return spaces;
}
}  // namespace

SpaceRegistration::SpaceRegistration(std::unique_ptr<SpaceDef> def) {
    std::string op = def->op();
    registry().add(op, std::move(def));
}

const SpaceDef& find_space(const std::string& op) {
    return registry().find(op, "op", "no schedule space for");
}

std::unique_ptr<Kernel> compile_kernel(const Workload& w, const Config& config, const Target& t) {
    w.validate();
    const SpaceDef& def = find_space(w.op);
    ScheduleSpace space = def.space(w, t);
    if (auto why = space.check(config))
        throw Error("config", "invalid for " + w.key() + ": " + *why);
    return def.compile(w, config, t);
}

}  // namespace kiln
