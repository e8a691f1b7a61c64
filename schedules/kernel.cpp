#include "schedules/kernel.h"

#include <map>

#include "core/error.h"

namespace kiln {
namespace {
std::map<std::string, std::unique_ptr<SpaceDef>>& registry() {
    static std::map<std::string, std::unique_ptr<SpaceDef>> spaces;
    return spaces;
}
}  // namespace

SpaceRegistration::SpaceRegistration(std::unique_ptr<SpaceDef> def) {
    std::string op = def->op();
    registry()[op] = std::move(def);
}

const SpaceDef& find_space(const std::string& op) {
    auto it = registry().find(op);
    if (it != registry().end()) return *it->second;
    std::string known;
    for (const auto& [n, d] : registry())
        known += (known.empty() ? "" : ", ") + n;
    throw Error("op", "no schedule space for '" + op + "' (known: " + known + ")");
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
