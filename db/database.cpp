// kiln/db/database.cpp — the tuning database on SQLite's C API.
//
// Start at open_connection(): it refuses a file that is not SQLite or whose schema is newer
// before anything is written, then turns on WAL and runs the forward migrations (kMigrations,
// keyed by PRAGMA user_version). SqliteDatabase below implements db/database.h; every write is
// one BEGIN IMMEDIATE transaction, so several processes can tune into one file: a writer waits
// for the lock (busy_timeout) instead of failing, and readers never block under WAL.
// docs/DATABASE.md describes the schema, the log format and the dedup rules.
#include "db/database.h"

#include <sqlite3.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <map>
#include <mutex>
#include <ostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A writer waits this long for another process's transaction before giving up. A batch of
// records commits in milliseconds, so 10 s only runs out when something holds the file for
// real (an interactive sqlite3 shell in a transaction, say).
constexpr int kBusyTimeoutMs = 10000;
// Records per transaction when importing or merging: large enough that a 100k-line log imports
// in seconds, small enough that a concurrent tuner is never kept waiting long.
constexpr size_t kImportBatch = 1000;

// Forward migrations: step i takes a file from version to_version - 1 to to_version. A released
// step never changes; a schema change is a new step and a kSchemaVersion bump.
struct Migration {
    int to_version;
    const char* sql;
};

const Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE targets (
    id INTEGER PRIMARY KEY,
    halide TEXT NOT NULL,
    fingerprint_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    UNIQUE (halide, fingerprint_id)
);
CREATE TABLE workloads (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    op TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    workload_id INTEGER NOT NULL REFERENCES workloads (id),
    target_id INTEGER NOT NULL REFERENCES targets (id),
    target_name TEXT NOT NULL,
    config_hash INTEGER NOT NULL,
    config TEXT NOT NULL,
    space_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL,
    compile_seconds REAL NOT NULL,
    min_ms REAL NOT NULL,
    median_ms REAL NOT NULL,
    repeats INTEGER NOT NULL,
    kiln_version TEXT NOT NULL,
    time TEXT NOT NULL,
    UNIQUE (workload_id, target_id, config_hash)
);
CREATE INDEX records_best ON records (workload_id, target_id, status, median_ms);
CREATE INDEX workloads_op ON workloads (op);
)sql"},
    {2, R"sql(
CREATE TABLE features (
    record_id INTEGER PRIMARY KEY REFERENCES records (id),
    version INTEGER NOT NULL,
    json TEXT NOT NULL
);
)sql"},
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw Error("database", path + ": " + what);
}

[[noreturn]] void fail_sqlite(sqlite3* db, const std::string& path, const std::string& what) {
    fail(path, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

class Stmt {
  public:
    Stmt(sqlite3* db, const std::string& path, const std::string& sql) : db_(db), path_(path) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
            fail_sqlite(db, path, "cannot prepare a query");
    }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& text(int i, const std::string& v) {
        check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    Stmt& i64(int i, int64_t v) {
        check(sqlite3_bind_int64(s_, i, v));
        return *this;
    }
    Stmt& f64(int i, double v) {
        check(sqlite3_bind_double(s_, i, v));
        return *this;
    }
    // True while there is a row; throws on any error.
    bool step() {
        int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail_sqlite(db_, path_, "query failed");
    }
    void reset() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    int64_t col_i64(int c) const { return sqlite3_column_int64(s_, c); }
    double col_f64(int c) const { return sqlite3_column_double(s_, c); }
    std::string col_text(int c) const {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
        return p ? std::string(p, sqlite3_column_bytes(s_, c)) : std::string();
    }

  private:
    void check(int rc) {
        if (rc != SQLITE_OK) fail_sqlite(db_, path_, "cannot bind a value");
    }
    sqlite3* db_;
    std::string path_;
    sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const std::string& path, const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string m = msg ? msg : sqlite3_errmsg(db);
        sqlite3_free(msg);
        fail(path, fmt::format("{} failed: {}", sql, m));
    }
}

// BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way with
// SQLITE_BUSY when another process writes; rolls back unless committed.
class Transaction {
  public:
    Transaction(sqlite3* db, const std::string& path) : db_(db), path_(path) {
        exec(db, path, "BEGIN IMMEDIATE");
    }
    ~Transaction() {
        if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
        exec(db_, path_, "COMMIT");
        done_ = true;
    }

  private:
    sqlite3* db_;
    const std::string& path_;
    bool done_ = false;
};

// Checks the 16-byte header before SQLite touches the file: SQLite itself would happily open
// any file and only fail (SQLITE_NOTADB) at the first query.
void check_header(const std::string& path, bool must_exist) {
    std::error_code ec;
    fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) {
        if (must_exist) fail(path, "no such file");
        return;
    }
    if (!fs::is_regular_file(st)) fail(path, "not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot read it");
    char header[16] = {};
    in.read(header, sizeof header);
    std::streamsize n = in.gcount();
    if (n == 0) return;                                       // an empty file is an empty database
    static const char kSqliteHeader[16] = "SQLite format 3";  // with its terminating NUL
    if (n < 16 || std::memcmp(header, kSqliteHeader, 16) != 0)
        fail(path, "not a SQLite database (its first 16 bytes are not \"SQLite format 3\\0\")");
}

int user_version(sqlite3* db, const std::string& path) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (rc == SQLITE_NOTADB) fail(path, "not a SQLite database");
    if (rc != SQLITE_ROW) fail_sqlite(db, path, "cannot read the schema version");
    return version;
}

struct Connection {
    sqlite3* db = nullptr;
    int version = 0;  // schema version after open (read-only files are not migrated)
};

Connection open_connection(const std::string& path, bool read_only) {
    const bool in_memory = path == ":memory:";
    if (!in_memory) {
        check_header(path, read_only);
        fs::path parent = fs::path(path).parent_path();
        std::error_code ec;
        if (!read_only && !parent.empty() && !fs::exists(parent)) {
            fs::create_directories(parent, ec);
            if (ec) fail(path, "cannot create its folder: " + ec.message());
        }
    }
    Connection c;
    int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path.c_str(), &c.db, flags, nullptr) != SQLITE_OK) {
        std::string why = c.db ? sqlite3_errmsg(c.db) : "out of memory";
        sqlite3_close(c.db);
        fail(path, "cannot open it: " + why);
    }
    try {
        sqlite3_busy_timeout(c.db, kBusyTimeoutMs);
        // Nothing is written before these checks pass: the file stays as it was.
        c.version = user_version(c.db, path);
        if (c.version > kSchemaVersion)
            fail(path, fmt::format("schema version {} is newer than this kiln's ({}); use a newer "
                                   "kiln to open it",
                                   c.version, kSchemaVersion));
        if (c.version < 0) fail(path, fmt::format("invalid schema version {}", c.version));
        if (read_only) return c;

        // Changing the journal mode needs a moment alone with the file; a second process
        // opening the same new file at once can see SQLITE_BUSY here despite the timeout.
        std::string mode;
        for (auto start = std::chrono::steady_clock::now();;) {
            sqlite3_stmt* s = nullptr;
            int rc = sqlite3_prepare_v2(c.db, "PRAGMA journal_mode=WAL", -1, &s, nullptr);
            if (rc == SQLITE_OK) rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) mode = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
            sqlite3_finalize(s);
            if (rc == SQLITE_ROW) break;
            if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
                fail_sqlite(c.db, path, "cannot turn on WAL mode");
            if (std::chrono::steady_clock::now() - start >
                std::chrono::milliseconds(kBusyTimeoutMs))
                fail(path, "cannot turn on WAL mode: the file stays locked by another process");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (mode != "wal" && !in_memory)
            fail(path, "cannot turn on WAL mode (journal mode is '" + mode + "')");

        if (c.version < kSchemaVersion) {
            Transaction tx(c.db, path);
            // Another process may have migrated while this one waited for the lock.
            c.version = user_version(c.db, path);
            for (const Migration& m : kMigrations) {
                if (m.to_version <= c.version) continue;
                exec(c.db, path, m.sql);
                exec(c.db, path, fmt::format("PRAGMA user_version = {}", m.to_version).c_str());
                c.version = m.to_version;
            }
            tx.commit();
        }
    } catch (...) {
        sqlite3_close(c.db);
        throw;
    }
    return c;
}

constexpr const char* kRecordColumns =
    "SELECT r.id, w.json, r.target_name, t.halide, t.fingerprint, r.config, r.space_version, "
    "r.status, r.error, r.compile_seconds, r.min_ms, r.median_ms, r.repeats, r.kiln_version, "
    "r.time FROM records r JOIN workloads w ON w.id = r.workload_id "
    "JOIN targets t ON t.id = r.target_id";

Record record_from_row(const Stmt& s) {
    Record r;
    r.workload = Workload::from_json(json::parse(s.col_text(1)));
    r.target_name = s.col_text(2);
    r.target_halide = s.col_text(3);
    r.fingerprint = Fingerprint::from_json(json::parse(s.col_text(4)));
    r.config = Config::from_json(json::parse(s.col_text(5)));
    r.space_version = static_cast<int>(s.col_i64(6));
    r.status = parse_record_status(s.col_text(7));
    r.error = s.col_text(8);
    r.compile_seconds = s.col_f64(9);
    r.min_ms = s.col_f64(10);
    r.median_ms = s.col_f64(11);
    r.repeats = static_cast<int>(s.col_i64(12));
    r.kiln_version = s.col_text(13);
    r.time = s.col_text(14);
    return r;
}

class SqliteDatabase final : public Database {
  public:
    SqliteDatabase(const std::string& path, bool read_only) : path_(path) {
        Connection c = open_connection(path, read_only);
        if (read_only && c.version != 0 && c.version < kSchemaVersion) {
            sqlite3_close(c.db);
            fail(path, fmt::format("schema version {} is older than this kiln's ({}); open it "
                                   "once with `kiln db stats --db {}` to migrate it",
                                   c.version, kSchemaVersion, path));
        }
        db_ = c.db;
        // A read-only file that was never given a schema has no tables: nothing to read.
        empty_ = c.version == 0;
    }
    ~SqliteDatabase() override { sqlite3_close(db_); }

    int64_t add(const std::vector<Record>& records) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (records.empty()) return 0;
        Transaction tx(db_, path_);
        Stmt add_target(db_, path_,
                        "INSERT OR IGNORE INTO targets (halide, fingerprint_id, fingerprint) "
                        "VALUES (?, ?, ?)");
        Stmt find_target(db_, path_,
                         "SELECT id FROM targets WHERE halide = ? AND fingerprint_id = ?");
        Stmt add_workload(db_, path_,
                          "INSERT OR IGNORE INTO workloads (key, op, json) VALUES (?, ?, ?)");
        Stmt find_workload(db_, path_, "SELECT id FROM workloads WHERE key = ?");
        Stmt add_record(db_, path_,
                        "INSERT OR IGNORE INTO records (workload_id, target_id, target_name, "
                        "config_hash, config, space_version, status, error, compile_seconds, "
                        "min_ms, median_ms, repeats, kiln_version, time) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        std::map<std::pair<std::string, std::string>, int64_t> target_ids;
        std::map<std::string, int64_t> workload_ids;
        int64_t added = 0;
        for (const Record& r : records) {
            const std::string fp = r.fingerprint.id();
            auto tkey = std::make_pair(r.target_halide, fp);
            auto t = target_ids.find(tkey);
            if (t == target_ids.end()) {
                add_target.text(1, r.target_halide)
                    .text(2, fp)
                    .text(3, r.fingerprint.to_json().dump());
                add_target.step();
                add_target.reset();
                find_target.text(1, r.target_halide).text(2, fp);
                find_target.step();
                t = target_ids.emplace(tkey, find_target.col_i64(0)).first;
                find_target.reset();
            }
            const std::string key = r.workload.key();
            auto w = workload_ids.find(key);
            if (w == workload_ids.end()) {
                add_workload.text(1, key)
                    .text(2, r.workload.op)
                    .text(3, r.workload.to_json().dump());
                add_workload.step();
                add_workload.reset();
                find_workload.text(1, key);
                find_workload.step();
                w = workload_ids.emplace(key, find_workload.col_i64(0)).first;
                find_workload.reset();
            }
            add_record.i64(1, w->second)
                .i64(2, t->second)
                .text(3, r.target_name)
                .i64(4, static_cast<int64_t>(r.config.hash()))
                .text(5, r.config.to_string())
                .i64(6, r.space_version)
                .text(7, to_string(r.status))
                .text(8, r.error)
                .f64(9, r.compile_seconds)
                .f64(10, r.min_ms)
                .f64(11, r.median_ms)
                .i64(12, r.repeats)
                .text(13, r.kiln_version)
                .text(14, r.time);
            add_record.step();
            added += sqlite3_changes(db_);
            add_record.reset();
        }
        tx.commit();
        return added;
    }

    int64_t update_measurements(const std::vector<Record>& records) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (records.empty() || empty_) return 0;
        Transaction tx(db_, path_);
        Stmt update(db_, path_,
                    "UPDATE records SET status = ?, error = ?, min_ms = ?, median_ms = ?, "
                    "repeats = ?, kiln_version = ?, time = ? "
                    "WHERE workload_id = (SELECT id FROM workloads WHERE key = ?) "
                    "AND target_id = (SELECT id FROM targets WHERE halide = ? AND "
                    "fingerprint_id = ?) AND config_hash = ?");
        int64_t updated = 0;
        for (const Record& r : records) {
            update.text(1, to_string(r.status))
                .text(2, r.error)
                .f64(3, r.min_ms)
                .f64(4, r.median_ms)
                .i64(5, r.repeats)
                .text(6, r.kiln_version)
                .text(7, r.time)
                .text(8, r.workload.key())
                .text(9, r.target_halide)
                .text(10, r.fingerprint.id())
                .i64(11, static_cast<int64_t>(r.config.hash()));
            update.step();
            updated += sqlite3_changes(db_);
            update.reset();
        }
        tx.commit();
        return updated;
    }

    std::vector<std::string> features(const std::vector<Record>& records,
                                      int version) const override {
        std::lock_guard<std::mutex> lock(mu_);
        std::vector<std::string> out(records.size());
        if (empty_) return out;
        Stmt q(db_, path_,
               "SELECT f.json FROM features f JOIN records r ON r.id = f.record_id "
               "JOIN workloads w ON w.id = r.workload_id JOIN targets t ON t.id = r.target_id "
               "WHERE w.key = ? AND t.halide = ? AND t.fingerprint_id = ? AND r.config_hash = ? "
               "AND f.version = ?");
        for (size_t i = 0; i < records.size(); ++i) {
            const Record& r = records[i];
            q.text(1, r.workload.key())
                .text(2, r.target_halide)
                .text(3, r.fingerprint.id())
                .i64(4, static_cast<int64_t>(r.config.hash()))
                .i64(5, version);
            if (q.step()) out[i] = q.col_text(0);
            q.reset();
        }
        return out;
    }

    void store_features(const std::vector<std::pair<Record, std::string>>& features,
                        int version) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (features.empty() || empty_) return;
        Transaction tx(db_, path_);
        Stmt put(db_, path_,
                 "INSERT OR REPLACE INTO features (record_id, version, json) "
                 "SELECT r.id, ?, ? FROM records r JOIN workloads w ON w.id = r.workload_id "
                 "JOIN targets t ON t.id = r.target_id WHERE w.key = ? AND t.halide = ? AND "
                 "t.fingerprint_id = ? AND r.config_hash = ?");
        for (const auto& [r, text] : features) {
            put.i64(1, version)
                .text(2, text)
                .text(3, r.workload.key())
                .text(4, r.target_halide)
                .text(5, r.fingerprint.id())
                .i64(6, static_cast<int64_t>(r.config.hash()));
            put.step();
            put.reset();
        }
        tx.commit();
    }

    bool has(const std::string& workload_key, const std::string& target_halide,
             const std::string& fingerprint_id, uint64_t config_hash) const override {
        std::lock_guard<std::mutex> lock(mu_);
        if (empty_) return false;
        Stmt s(db_, path_,
               "SELECT 1 FROM records r JOIN workloads w ON w.id = r.workload_id "
               "JOIN targets t ON t.id = r.target_id WHERE w.key = ? AND t.halide = ? AND "
               "t.fingerprint_id = ? AND r.config_hash = ? LIMIT 1");
        s.text(1, workload_key).text(2, target_halide).text(3, fingerprint_id);
        s.i64(4, static_cast<int64_t>(config_hash));
        return s.step();
    }

    std::vector<Record> records(const RecordFilter& filter) const override {
        std::vector<Record> out;
        for_each(
            filter, [&](Record r) { out.push_back(std::move(r)); }, nullptr);
        return out;
    }

    std::optional<Record> best(const std::string& workload_key, const std::string& target_halide,
                               const std::string& fingerprint_id) const override {
        std::lock_guard<std::mutex> lock(mu_);
        if (empty_) return std::nullopt;
        // Records of this very machine first (when it has any), then the fastest.
        Stmt s(db_, path_,
               std::string(kRecordColumns) +
                   " WHERE w.key = ? AND t.halide = ? AND r.status = 'ok' "
                   "ORDER BY (t.fingerprint_id = ?) DESC, r.median_ms ASC, r.id ASC LIMIT 1");
        s.text(1, workload_key).text(2, target_halide).text(3, fingerprint_id);
        if (!s.step()) return std::nullopt;
        return read_row(s);
    }

    DatabaseStats stats() const override {
        std::lock_guard<std::mutex> lock(mu_);
        DatabaseStats st;
        if (empty_) return st;
        Stmt s(db_, path_,
               "SELECT t.halide, w.op, COUNT(*), SUM(r.status = 'ok'), "
               "COUNT(DISTINCT r.workload_id) FROM records r "
               "JOIN workloads w ON w.id = r.workload_id JOIN targets t ON t.id = r.target_id "
               "GROUP BY t.halide, w.op ORDER BY t.halide, w.op");
        while (s.step())
            st.rows.push_back(
                {s.col_text(0), s.col_text(1), s.col_i64(2), s.col_i64(3), s.col_i64(4)});
        return st;
    }

    int64_t export_log(std::ostream& out, const RecordFilter& filter) const override {
        int64_t n = 0;
        for_each(
            filter,
            [&](const Record& r) {
                out << r.to_json().dump() << '\n';
                ++n;
            },
            nullptr);
        out.flush();
        if (!out) fail(path_, "cannot write the log");
        return n;
    }

    ImportReport import_log(std::istream& in) override {
        ImportReport report;
        std::vector<Record> batch;
        int64_t good = 0;
        int64_t line_no = 0;
        for (std::string line; std::getline(in, line);) {
            ++line_no;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            ++report.lines;
            try {
                json j;
                try {
                    j = json::parse(line);
                } catch (const json::parse_error& e) {
                    throw Error("", std::string("not valid JSON: ") + e.what());
                }
                batch.push_back(Record::from_json(j));
                ++good;
            } catch (const std::exception& e) {
                report.errors.push_back(fmt::format("line {}: {}", line_no, e.what()));
                continue;
            }
            if (batch.size() >= kImportBatch) {
                report.added += add(batch);
                batch.clear();
            }
        }
        report.added += add(batch);
        report.duplicates = good - report.added;
        return report;
    }

    ImportReport merge(const std::string& other_path) override {
        SqliteDatabase other(other_path, /*read_only=*/true);
        ImportReport report;
        std::vector<Record> batch;
        int64_t good = 0;
        other.for_each(
            {},
            [&](Record r) {
                ++report.lines;
                ++good;
                batch.push_back(std::move(r));
                if (batch.size() >= kImportBatch) {
                    report.added += add(batch);
                    batch.clear();
                }
            },
            [&](int64_t id, const std::string& why) {
                ++report.lines;
                report.errors.push_back(fmt::format("record {}: {}", id, why));
            });
        report.added += add(batch);
        report.duplicates = good - report.added;
        return report;
    }

    std::string path() const override { return path_; }

  private:
    Record read_row(const Stmt& s) const {
        try {
            return record_from_row(s);
        } catch (const std::exception& e) {
            fail(path_, fmt::format("record {} cannot be read: {}", s.col_i64(0), e.what()));
        }
    }

    // Streams the matching records in insertion order. A record this kiln cannot read (an op it
    // does not know) goes to `on_error` when given, else throws naming the record.
    void for_each(const RecordFilter& filter, const std::function<void(Record)>& on_record,
                  const std::function<void(int64_t, const std::string&)>& on_error) const {
        std::lock_guard<std::mutex> lock(mu_);
        if (empty_) return;
        std::string sql = kRecordColumns;
        std::vector<std::string> where;
        std::vector<std::string> args;
        if (!filter.workload_key.empty()) {
            where.push_back("w.key = ?");
            args.push_back(filter.workload_key);
        }
        if (!filter.op.empty()) {
            where.push_back("w.op = ?");
            args.push_back(filter.op);
        }
        if (!filter.target_halide.empty()) {
            where.push_back("t.halide = ?");
            args.push_back(filter.target_halide);
        }
        if (filter.only_ok) where.push_back("r.status = 'ok'");
        for (size_t i = 0; i < where.size(); ++i)
            sql += (i ? " AND " : " WHERE ") + where[i];
        sql += " ORDER BY r.id";
        Stmt s(db_, path_, sql);
        for (size_t i = 0; i < args.size(); ++i)
            s.text(static_cast<int>(i + 1), args[i]);
        while (s.step()) {
            if (!on_error) {
                on_record(read_row(s));
                continue;
            }
            Record r;
            try {
                r = record_from_row(s);
            } catch (const std::exception& e) {
                on_error(s.col_i64(0), e.what());
                continue;
            }
            on_record(std::move(r));
        }
    }

    std::string path_;
    sqlite3* db_ = nullptr;
    bool empty_ = false;
    mutable std::mutex mu_;
};

}  // namespace

std::unique_ptr<Database> Database::open(const std::string& path) {
    return std::make_unique<SqliteDatabase>(path, /*read_only=*/false);
}

}  // namespace kiln
