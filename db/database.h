// kiln/db/database.h — the tuning database: SQLite, WAL mode, versioned schema.
//
// Tables: targets (Halide string + machine fingerprint), workloads (canonical key + JSON),
// records (one per workload, target and config hash: no config is measured twice on one kind
// of machine). best() is one indexed query. Several processes may tune into one file at once:
// every add() is one transaction, and busy waits are retried. Start with Database::open().
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/record.h"

namespace kiln {

// Version of the schema, in PRAGMA user_version; open() migrates older files forward and
// refuses newer ones.
constexpr int kSchemaVersion = 2;

struct RecordFilter {
    std::string workload_key;   // empty = any
    std::string op;             // empty = any
    std::string target_halide;  // empty = any
    bool only_ok = false;
};

struct DatabaseStats {
    struct Row {
        std::string target_halide;
        std::string op;
        int64_t records = 0;
        int64_t ok = 0;
        int64_t workloads = 0;
    };
    std::vector<Row> rows;  // per target and op
};

struct ImportReport {
    int64_t lines = 0;
    int64_t added = 0;       // new records
    int64_t duplicates = 0;  // already present (same workload, target, fingerprint, config)
    std::vector<std::string> errors;  // "line 7: <why>", one per bad line
};

class Database {
  public:
    // Opens or creates `path`. Throws kiln::Error naming the file when it is not a SQLite
    // database, or its schema is newer than this kiln; nothing is written then.
    static std::unique_ptr<Database> open(const std::string& path);
    virtual ~Database() = default;

    // Adds records in one transaction; records already present are skipped. Returns how many
    // were new.
    virtual int64_t add(const std::vector<Record>& records) = 0;
    // Replaces the status, error, times, kiln version and time of records already present
    // (same workload, target, fingerprint and config) with a newer measurement of the same
    // config on the same machine, in one transaction; others are ignored. Returns how many
    // changed.
    virtual int64_t update_measurements(const std::vector<Record>& records) = 0;
    // The cost model's features of records (JSON text, computed for each record's own target
    // and machine), cached so that a model can be trained without lowering every config
    // again. One entry per record, in order; "" where none is stored for `version`.
    virtual std::vector<std::string> features(const std::vector<Record>& records,
                                              int version) const = 0;
    // Stores features of records already present (others are ignored), in one transaction.
    virtual void store_features(const std::vector<std::pair<Record, std::string>>& features,
                                int version) = 0;
    // Whether this config was measured for this workload on this target and machine.
    virtual bool has(const std::string& workload_key, const std::string& target_halide,
                     const std::string& fingerprint_id, uint64_t config_hash) const = 0;
    virtual std::vector<Record> records(const RecordFilter& filter) const = 0;
    // The fastest ok record for the workload on the target (by median), preferring records of
    // `fingerprint_id` when given and any exist.
    virtual std::optional<Record> best(const std::string& workload_key,
                                       const std::string& target_halide,
                                       const std::string& fingerprint_id = "") const = 0;
    virtual DatabaseStats stats() const = 0;

    // Tuning logs (JSON Lines, docs/DATABASE.md).
    virtual int64_t export_log(std::ostream& out, const RecordFilter& filter) const = 0;
    virtual ImportReport import_log(std::istream& in) = 0;
    virtual ImportReport merge(const std::string& other_path) = 0;
    virtual std::string path() const = 0;
};

}  // namespace kiln
