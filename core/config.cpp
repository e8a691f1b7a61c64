#include "core/config.h"

#include "core/hash.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {

std::string to_string(const KnobValue& v) {
    if (auto p = std::get_if<int64_t>(&v)) return std::to_string(*p);
    return std::get<std::string>(v);
}

int64_t Config::i(const std::string& knob) const {
    auto it = values.find(knob);
    if (it == values.end()) throw Error("knob " + knob, "missing from config " + to_string());
    if (auto p = std::get_if<int64_t>(&it->second)) return *p;
    throw Error("knob " + knob, "expected an integer, got '" + kiln::to_string(it->second) + "'");
}

const std::string& Config::s(const std::string& knob) const {
    auto it = values.find(knob);
    if (it == values.end()) throw Error("knob " + knob, "missing from config " + to_string());
    if (auto p = std::get_if<std::string>(&it->second)) return *p;
    throw Error("knob " + knob, "expected a name, got " + kiln::to_string(it->second));
}

nlohmann::json Config::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : values) {
        if (auto p = std::get_if<int64_t>(&v))
            j[k] = *p;
        else
            j[k] = std::get<std::string>(v);
    }
    return j;
}

Config Config::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw Error("config", "expected a JSON object, got " + j.dump());
    Config c;
    for (const auto& [k, v] : j.items()) {
        if (v.is_number_integer())
            c.values[k] = v.get<int64_t>();
        else if (v.is_string())
            c.values[k] = v.get<std::string>();
        else
            throw Error("knob " + k, "expected an integer or a string, got " + v.dump());
    }
    return c;
}

std::string Config::to_string() const {
    return to_json().dump();
}

uint64_t Config::hash() const {
    return fnv1a(to_string());
}

}  // namespace kiln
