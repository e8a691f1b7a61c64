// kiln/core/config.h — one point of a schedule space: a value for each (active) knob.
//
// A Config is the replayable list of decisions the tuning database stores and the cost model
// featurises. Values are integers (split factors, vector widths) or names (algorithm, loop
// order). JSON is an object with sorted keys; hash() is stable across runs and machines.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include <nlohmann/json_fwd.hpp>

namespace kiln {

using KnobValue = std::variant<int64_t, std::string>;

std::string to_string(const KnobValue& v);

struct Config {
    std::map<std::string, KnobValue> values;

    bool has(const std::string& knob) const { return values.count(knob) != 0; }
    // Throw kiln::Error naming the knob if absent or of the other kind.
    int64_t i(const std::string& knob) const;
    const std::string& s(const std::string& knob) const;
    void set(const std::string& knob, KnobValue v) { values[knob] = std::move(v); }

    nlohmann::json to_json() const;
    static Config from_json(const nlohmann::json& j);  // throws kiln::Error
    std::string to_string() const;                     // compact JSON
    uint64_t hash() const;                             // FNV-1a of to_string()

    bool operator==(const Config& o) const { return values == o.values; }
    bool operator!=(const Config& o) const { return !(*this == o); }
};

}  // namespace kiln
