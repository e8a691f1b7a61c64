#include "core/op.h"

#include "core/registry.h"

namespace kiln {
namespace {
Registry<OpDef>& registry() {
    static Registry<OpDef> ops;
    return ops;
}
}  // namespace

OpRegistration::OpRegistration(std::unique_ptr<OpDef> def) {
    std::string name = def->name();
    registry().add(name, std::move(def));
}

const OpDef& find_op(const std::string& name) {
    return registry().find(name, "op", "unknown op");
}

std::vector<const OpDef*> all_ops() {
    return registry().all();
}

}  // namespace kiln
