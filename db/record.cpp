// kiln/db/record.cpp — a Record as one line of a tuning log, and back.
//
// Start at Record::from_json: a log line comes from another machine and another kiln, so every
// field is checked and a bad one is a kiln::Error naming it ("median_ms", "config_hash", ...).
// The format is documented field by field in docs/DATABASE.md.
#include "db/record.h"

#include <cmath>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {
namespace {

using nlohmann::json;

constexpr const char* kStatusNames[] = {"ok", "compile_error", "runtime_error", "timeout",
                                        "wrong_result"};

// `label` is how the error names the field when it is nested ("target.halide").
const json& field(const json& j, const char* name, const char* label = nullptr) {
    auto it = j.find(name);
    if (it == j.end()) throw Error(label ? label : name, "missing");
    return *it;
}

std::string string_field(const json& j, const char* name, const char* label = nullptr) {
    const json& v = field(j, name, label);
    if (!v.is_string()) throw Error(label ? label : name, "expected a string, got " + v.dump());
    return v.get<std::string>();
}

int64_t int_field(const json& j, const char* name, int64_t min_value) {
    const json& v = field(j, name);
    if (!v.is_number_integer()) throw Error(name, "expected an integer, got " + v.dump());
    int64_t x = v.get<int64_t>();
    if (x < min_value) throw Error(name, fmt::format("must be at least {}, got {}", min_value, x));
    return x;
}

double seconds_or_ms_field(const json& j, const char* name) {
    const json& v = field(j, name);
    if (!v.is_number()) throw Error(name, "expected a number, got " + v.dump());
    double x = v.get<double>();
    if (!std::isfinite(x) || x < 0) throw Error(name, "must be finite and >= 0, got " + v.dump());
    return x;
}

// 2026-11-21T10:58:03Z: the one form utc_now() writes, so logs sort and compare as text.
bool is_utc_timestamp(const std::string& s) {
    const char* pattern = "dddd-dd-ddTdd:dd:ddZ";
    if (s.size() != std::char_traits<char>::length(pattern)) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        bool digit = s[i] >= '0' && s[i] <= '9';
        if (pattern[i] == 'd' ? !digit : s[i] != pattern[i]) return false;
    }
    return true;
}

}  // namespace

std::string to_string(RecordStatus s) {
    return kStatusNames[static_cast<int>(s)];
}

RecordStatus parse_record_status(const std::string& s) {
    for (int i = 0; i < 5; ++i)
        if (s == kStatusNames[i]) return static_cast<RecordStatus>(i);
    throw Error("status", "unknown status '" + s +
                              "' (known: ok, compile_error, runtime_error, timeout, wrong_result)");
}

double Record::gflops() const {
    if (!ok() || median_ms <= 0) return 0;
    return workload.flops() / (median_ms * 1e-3) / 1e9;
}

json Record::to_json() const {
    return {{"format", kLogFormat},
            {"workload", workload.to_json()},
            {"target", {{"name", target_name}, {"halide", target_halide}}},
            {"fingerprint", fingerprint.to_json()},
            {"config", config.to_json()},
            {"config_hash", fmt::format("{:016x}", config.hash())},
            {"space_version", space_version},
            {"status", to_string(status)},
            {"error", error},
            {"compile_seconds", compile_seconds},
            {"min_ms", min_ms},
            {"median_ms", median_ms},
            {"repeats", repeats},
            {"kiln_version", kiln_version},
            {"time", time}};
}

Record Record::from_json(const json& j) {
    if (!j.is_object()) throw Error("record", "expected a JSON object, got " + j.dump());
    int64_t format = int_field(j, "format", 1);
    if (format > kLogFormat)
        throw Error("format", fmt::format("log format {} is newer than this kiln reads ({}); "
                                          "upgrade kiln to read it",
                                          format, kLogFormat));

    Record r;
    r.workload = Workload::from_json(field(j, "workload"));
    r.workload.validate();
    const json& wj = j["workload"];
    if (wj.contains("key") && wj["key"] != r.workload.key())
        throw Error("workload", fmt::format("key {} does not match its parameters ({})",
                                            wj["key"].dump(), r.workload.key()));

    const json& target = field(j, "target");
    if (!target.is_object()) throw Error("target", "expected an object, got " + target.dump());
    r.target_name = string_field(target, "name", "target.name");
    r.target_halide = string_field(target, "halide", "target.halide");
    if (r.target_halide.empty()) throw Error("target.halide", "empty");

    r.fingerprint = Fingerprint::from_json(field(j, "fingerprint"));
    r.config = Config::from_json(field(j, "config"));
    std::string hash = string_field(j, "config_hash");
    std::string expected = fmt::format("{:016x}", r.config.hash());
    if (hash != expected)
        throw Error("config_hash",
                    fmt::format("{} does not match the config (its hash is {})", hash, expected));

    r.space_version = static_cast<int>(int_field(j, "space_version", 0));
    r.status = parse_record_status(string_field(j, "status"));
    r.error = string_field(j, "error");
    r.compile_seconds = seconds_or_ms_field(j, "compile_seconds");
    r.min_ms = seconds_or_ms_field(j, "min_ms");
    r.median_ms = seconds_or_ms_field(j, "median_ms");
    r.repeats = static_cast<int>(int_field(j, "repeats", 0));
    if (r.ok()) {
        // An ok record is a measurement: best() ranks by it, so it must be one.
        if (r.median_ms <= 0) throw Error("median_ms", "must be above 0 for an ok record");
        if (r.repeats < 1) throw Error("repeats", "must be at least 1 for an ok record");
        if (r.min_ms > r.median_ms)
            throw Error("min_ms", fmt::format("{} is above the median {}", r.min_ms, r.median_ms));
    }
    r.kiln_version = string_field(j, "kiln_version");
    r.time = string_field(j, "time");
    if (!is_utc_timestamp(r.time))
        throw Error("time",
                    "expected UTC ISO 8601 like 2026-11-21T10:58:03Z, got '" + r.time + "'");
    return r;
}

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace kiln
