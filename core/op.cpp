#include "core/op.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace kiln {
namespace {
std::map<std::string, std::unique_ptr<OpDef>>& registry() {
    static std::map<std::string, std::unique_ptr<OpDef>> ops;
    return ops;
}
}  // namespace

OpRegistration::OpRegistration(std::unique_ptr<OpDef> def) {
    std::string name = def->name();
    registry()[name] = std::move(def);
}

const OpDef& find_op(const std::string& name) {
    auto it = registry().find(name);
    if (it != registry().end()) return *it->second;
    std::string known;
    for (const auto& [n, d] : registry())
        known += (known.empty() ? "" : ", ") + n;
    throw Error("op", "unknown op '" + name + "' (known: " + known + ")");
}

std::vector<const OpDef*> all_ops() {
    std::vector<const OpDef*> out;
    for (const auto& [n, d] : registry())
        out.push_back(d.get());
    return out;
}

}  // namespace kiln
