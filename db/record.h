// kiln/db/record.h — one measurement of one config of one workload on one machine.
//
// A Record is what the tuner writes, the database stores and a tuning log (JSON Lines) carries
// between machines. Its JSON form is self-describing and versioned (kLogFormat): see
// docs/DATABASE.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/config.h"
#include "core/workload.h"
#include "targets/target.h"

namespace kiln {

enum class RecordStatus { ok, compile_error, runtime_error, timeout, wrong_result };

std::string to_string(RecordStatus s);
RecordStatus parse_record_status(const std::string& s);  // throws kiln::Error("status", ...)

// Version of the JSON Lines log format; a reader refuses newer formats.
constexpr int kLogFormat = 1;

struct Record {
    Workload workload;
    // The target the kernel was compiled for: its name and full Halide string (the ISA: whether
    // the record can apply at all) and the fingerprint of the machine that measured it.
    std::string target_name;
    std::string target_halide;
    Fingerprint fingerprint;
    Config config;
    int space_version = 0;
    RecordStatus status = RecordStatus::ok;
    std::string error;  // why, for every status but ok; on an ok record, a note on its timing
    double compile_seconds = 0;  // builder's wall time
    double min_ms = 0;           // per run, over the repeats; 0 unless ok
    double median_ms = 0;
    int repeats = 0;  // timed runs behind min and median
    std::string kiln_version;
    std::string time;  // UTC, ISO 8601: 2026-11-21T10:58:03Z

    bool ok() const { return status == RecordStatus::ok; }
    double gflops() const;           // from median_ms; 0 unless ok
    nlohmann::json to_json() const;  // one log line, with "format": kLogFormat
    // Validates every field; throws kiln::Error naming the field (an unknown op, a bad status,
    // a newer format, a missing key).
    static Record from_json(const nlohmann::json& j);
};

// The current time as Record::time wants it.
std::string utc_now();

}  // namespace kiln
