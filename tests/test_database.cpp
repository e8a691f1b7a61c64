// The tuning database and its logs: schema, dedup, best(), concurrent writers, refusing files it
// must not touch, JSONL export/import/merge, and the `kiln db` commands.
//
// Records are built directly (no kernels): what is under test is storage, not measurement.
// SQLite is used directly only to look at the file from outside (user_version, journal mode,
// integrity_check) and to make a file of a newer schema.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/workload.h"
#include "db/database.h"
#include "db/record.h"
#include "targets/target.h"
#include "tests/test_util.h"

using namespace kiln;
using namespace kiln::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kHalide = "x86-64-linux-avx-avx2-f16c-fma-sse41";

Fingerprint machine(const std::string& cpu) {
    Fingerprint f;
    f.cpu_model = cpu;
    f.cores = 2;
    f.l1d_bytes = 32768;
    f.l2_bytes = 1 << 20;
    f.l3_bytes = 32 << 20;
    f.isa = kHalide;
    return f;
}

Record make_record(const std::string& shape, int64_t tile, double median_ms,
                   RecordStatus status = RecordStatus::ok,
                   const Fingerprint& fp = machine("Local CPU"),
                   const std::string& halide = kHalide) {
    Record r;
    r.workload = Workload::from_shape("dense", shape);
    r.target_name = "host";
    r.target_halide = halide;
    r.fingerprint = fp;
    r.config.set("tile", tile);
    r.config.set("order", std::string(tile % 2 ? "mn" : "nm"));
    r.space_version = 3;
    r.status = status;
    if (status == RecordStatus::ok) {
        r.median_ms = median_ms;
        r.min_ms = median_ms * 0.9;
        r.repeats = 5;
    } else {
        r.error = "failed on purpose";
    }
    r.compile_seconds = 0.25;
    r.kiln_version = "0.1.0";
    r.time = "2026-01-02T03:04:05Z";
    return r;
}

class Db : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kiln-test-db-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string dir_;
};

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string pragma(const std::string& path, const std::string& name) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    std::string sql = "PRAGMA " + name;
    std::string value;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        value = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return value;
}

// The kiln::Error message Database::open(path) throws, or "<no error>".
std::string open_error(const std::string& path) {
    try {
        Database::open(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

TEST(Record, StatusNamesRoundTrip) {
    for (auto s : {RecordStatus::ok, RecordStatus::compile_error, RecordStatus::runtime_error,
                   RecordStatus::timeout, RecordStatus::wrong_result})
        EXPECT_EQ(parse_record_status(to_string(s)), s);
    EXPECT_EQ(to_string(RecordStatus::wrong_result), "wrong_result");
    EXPECT_EQ(error_field([] { parse_record_status("crashed"); }), "status");
}

TEST(Record, JsonRoundTripAndGflops) {
    Record r = make_record("m=16,n=32,k=8", 4, 0.5);
    nlohmann::json j = r.to_json();
    EXPECT_EQ(j["format"], kLogFormat);
    EXPECT_EQ(j["workload"]["key"], "dense/m16n32k8/f32");
    EXPECT_EQ(j["target"]["halide"], kHalide);
    EXPECT_EQ(j["config_hash"].get<std::string>().size(), 16u);
    Record back = Record::from_json(nlohmann::json::parse(j.dump()));
    EXPECT_EQ(back.to_json(), j);
    EXPECT_EQ(back.workload, r.workload);
    EXPECT_EQ(back.config, r.config);
    EXPECT_EQ(back.fingerprint.id(), r.fingerprint.id());
    // 2 * 16 * 32 * 8 FLOP in 0.5 ms.
    EXPECT_NEAR(r.gflops(), 2.0 * 16 * 32 * 8 / 0.5e-3 / 1e9, 1e-12);
    EXPECT_EQ(make_record("m=16,n=32,k=8", 4, 0, RecordStatus::timeout).gflops(), 0.0);
    EXPECT_EQ(utc_now().size(), 20u);
    EXPECT_NO_THROW(Record::from_json(make_record("m=1,n=1,k=1", 1, 1).to_json()));
}

TEST(Record, FromJsonNamesTheBadField) {
    const nlohmann::json good = make_record("m=16,n=32,k=8", 4, 0.5).to_json();
    auto field_after = [&](auto&& edit) {
        nlohmann::json j = good;
        edit(j);
        return error_field([&] { Record::from_json(j); });
    };
    EXPECT_EQ(field_after([](auto& j) { j["format"] = kLogFormat + 1; }), "format");
    EXPECT_EQ(field_after([](auto& j) { j["config_hash"] = "0123456789abcdef"; }), "config_hash");
    EXPECT_EQ(field_after([](auto& j) { j["config"]["tile"] = 8; }), "config_hash");
    EXPECT_EQ(field_after([](auto& j) { j["status"] = "crashed"; }), "status");
    EXPECT_EQ(field_after([](auto& j) { j.erase("median_ms"); }), "median_ms");
    EXPECT_EQ(field_after([](auto& j) { j["median_ms"] = -1.0; }), "median_ms");
    EXPECT_EQ(field_after([](auto& j) { j["median_ms"] = 0.0; }), "median_ms");
    EXPECT_EQ(field_after([](auto& j) { j["repeats"] = "five"; }), "repeats");
    EXPECT_EQ(field_after([](auto& j) { j["workload"]["op"] = "nosuchop"; }), "op");
    EXPECT_EQ(field_after([](auto& j) { j["workload"]["key"] = "dense/m1n1k1/f32"; }), "workload");
    EXPECT_EQ(field_after([](auto& j) { j["target"].erase("halide"); }), "target.halide");
    EXPECT_EQ(field_after([](auto& j) { j["fingerprint"].erase("cores"); }), "fingerprint");
    EXPECT_EQ(field_after([](auto& j) { j["time"] = "yesterday"; }), "time");
    EXPECT_EQ(field_after([](auto& j) { j = nlohmann::json::array(); }), "record");
}

TEST_F(Db, SchemaCreatedWithWal) {
    const std::string p = path("sub/dir/tuning.db");  // folders are created
    {
        auto db = Database::open(p);
        EXPECT_EQ(db->path(), p);
        EXPECT_EQ(db->add({make_record("m=16,n=32,k=8", 4, 0.5)}), 1);
    }
    EXPECT_EQ(pragma(p, "user_version"), std::to_string(kSchemaVersion));
    EXPECT_EQ(pragma(p, "journal_mode"), "wal");
    EXPECT_EQ(pragma(p, "integrity_check"), "ok");
    // Opening again neither migrates twice nor loses anything.
    auto db = Database::open(p);
    EXPECT_EQ(db->records({}).size(), 1u);
    // An empty file is an empty database, not garbage.
    { std::ofstream(path("empty.db")); }
    EXPECT_EQ(Database::open(path("empty.db"))->add({make_record("m=1,n=1,k=1", 1, 1.0)}), 1);
    EXPECT_EQ(pragma(path("empty.db"), "user_version"), std::to_string(kSchemaVersion));
}

TEST_F(Db, AddHasAndDedupe) {
    auto db = Database::open(path("t.db"));
    Record a = make_record("m=16,n=32,k=8", 4, 0.5);
    EXPECT_EQ(db->add({a, a}), 1);
    EXPECT_EQ(db->add({a}), 0);
    const std::string fp = a.fingerprint.id();
    EXPECT_TRUE(db->has(a.workload.key(), kHalide, fp, a.config.hash()));
    Record other_config = make_record("m=16,n=32,k=8", 8, 0.4);
    EXPECT_FALSE(db->has(a.workload.key(), kHalide, fp, other_config.config.hash()));
    EXPECT_FALSE(db->has(a.workload.key(), kHalide, machine("Other CPU").id(), a.config.hash()));
    EXPECT_FALSE(db->has(a.workload.key(), "arm-64-linux", fp, a.config.hash()));
    EXPECT_FALSE(db->has("dense/m1n1k1/f32", kHalide, fp, a.config.hash()));
    // The same config measured on another machine is another record.
    Record elsewhere = make_record("m=16,n=32,k=8", 4, 0.7, RecordStatus::ok, machine("Other"));
    EXPECT_EQ(db->add({other_config, elsewhere}), 2);
    EXPECT_EQ(db->records({}).size(), 3u);

    RecordFilter only_ok;
    only_ok.only_ok = true;
    db->add({make_record("m=16,n=32,k=8", 16, 0, RecordStatus::compile_error)});
    EXPECT_EQ(db->records({}).size(), 4u);
    EXPECT_EQ(db->records(only_ok).size(), 3u);
    RecordFilter by_key;
    by_key.workload_key = "dense/m16n32k8/f32";
    EXPECT_EQ(db->records(by_key).size(), 4u);
    by_key.workload_key = "dense/m1n1k1/f32";
    EXPECT_EQ(db->records(by_key).size(), 0u);
    RecordFilter by_op;
    by_op.op = "conv2d";
    EXPECT_EQ(db->records(by_op).size(), 0u);

    // What comes back is what went in.
    Record back = db->records({})[0];
    EXPECT_EQ(back.to_json(), a.to_json());
}

TEST_F(Db, BestPicksTheFastestOkRecord) {
    auto db = Database::open(path("t.db"));
    const std::string key = "dense/m16n32k8/f32";
    EXPECT_FALSE(db->best(key, kHalide).has_value());
    db->add({make_record("m=16,n=32,k=8", 1, 2.0),
             make_record("m=16,n=32,k=8", 2, 0.0, RecordStatus::timeout),
             make_record("m=16,n=32,k=8", 3, 1.0),
             make_record("m=16,n=32,k=8", 4, 0.0, RecordStatus::wrong_result),
             make_record("m=16,n=32,k=8", 5, 0.0, RecordStatus::runtime_error),
             make_record("m=16,n=32,k=8", 6, 1.5), make_record("m=32,n=32,k=8", 7, 0.1)});
    // Failures carry 0 ms; none of them may win.
    auto b = db->best(key, kHalide);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->config.i("tile"), 3);
    EXPECT_EQ(b->median_ms, 1.0);
    EXPECT_FALSE(db->best(key, "arm-64-linux").has_value());
    EXPECT_EQ(db->best("dense/m32n32k8/f32", kHalide)->config.i("tile"), 7);
}

// A newer measurement of the same config on the same machine replaces the figures, and only
// that record's: the same config measured on another machine keeps its own.
TEST_F(Db, UpdateMeasurementsReplacesOnlyTheSameRecord) {
    auto db = Database::open(path("t.db"));
    const std::string key = "dense/m16n32k8/f32";
    const Fingerprint local = machine("Local CPU"), other = machine("Other CPU");
    db->add({make_record("m=16,n=32,k=8", 1, 0.5, RecordStatus::ok, local),
             make_record("m=16,n=32,k=8", 2, 1.0, RecordStatus::ok, local),
             make_record("m=16,n=32,k=8", 1, 0.4, RecordStatus::ok, other)});
    Record again = make_record("m=16,n=32,k=8", 1, 3.0, RecordStatus::ok, local);
    again.time = "2026-02-03T04:05:06Z";
    Record never_added = make_record("m=16,n=32,k=8", 9, 0.1, RecordStatus::ok, local);
    EXPECT_EQ(db->update_measurements({again, never_added}), 1);
    EXPECT_EQ(db->records({}).size(), 3u);
    auto b = db->best(key, kHalide, local.id());
    ASSERT_TRUE(b);
    EXPECT_EQ(b->config.i("tile"), 2);
    for (const Record& r : db->records({})) {
        if (r.config.i("tile") != 1) continue;
        bool is_local = r.fingerprint.id() == local.id();
        EXPECT_EQ(r.median_ms, is_local ? 3.0 : 0.4);
        EXPECT_EQ(r.time, is_local ? "2026-02-03T04:05:06Z" : "2026-01-02T03:04:05Z");
        EXPECT_EQ(r.compile_seconds, 0.25);
    }
}

TEST_F(Db, BestPrefersTheLocalFingerprint) {
    auto db = Database::open(path("t.db"));
    const std::string key = "dense/m16n32k8/f32";
    const Fingerprint local = machine("Local CPU"), fast = machine("Fast CPU");
    db->add({make_record("m=16,n=32,k=8", 1, 0.5, RecordStatus::ok, fast),
             make_record("m=16,n=32,k=8", 2, 1.0, RecordStatus::ok, local),
             make_record("m=16,n=32,k=8", 3, 2.0, RecordStatus::ok, local)});
    EXPECT_EQ(db->best(key, kHalide, local.id())->config.i("tile"), 2);
    EXPECT_EQ(db->best(key, kHalide, fast.id())->config.i("tile"), 1);
    EXPECT_EQ(db->best(key, kHalide)->config.i("tile"), 1);
    // A machine with only failures of its own takes the fastest record from elsewhere.
    const Fingerprint broken = machine("Broken CPU");
    db->add({make_record("m=16,n=32,k=8", 4, 0, RecordStatus::timeout, broken)});
    EXPECT_EQ(db->best(key, kHalide, broken.id())->config.i("tile"), 1);
    // Records keep the fingerprint they were measured with.
    EXPECT_EQ(db->best(key, kHalide, local.id())->fingerprint.cpu_model, "Local CPU");
}

TEST_F(Db, TwoProcessesWriteConcurrently) {
    const std::string p = path("shared.db");
    constexpr int kPerProcess = 200, kBatch = 10;
    std::vector<pid_t> children;
    // A start line: the children open the file, then wait until the parent closes the pipe,
    // so their writes overlap instead of one finishing before the other has started.
    int start[2];
    ASSERT_EQ(pipe(start), 0);
    std::fflush(nullptr);
    for (int proc = 0; proc < 2; ++proc) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int code = 0;
            try {
                // Each process opens the (new) file itself, so the migration races too.
                auto db = Database::open(p);
                close(start[1]);
                char byte;
                if (read(start[0], &byte, 1) != 0) code = 5;
                for (int b = 0; b < kPerProcess / kBatch; ++b) {
                    std::vector<Record> batch;
                    for (int i = 0; i < kBatch; ++i) {
                        int64_t tile = proc * 100000 + b * kBatch + i;
                        batch.push_back(make_record("m=16,n=32,k=8", tile, 1.0 + tile * 1e-6));
                    }
                    if (db->add(batch) != kBatch) code = 3;
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child %d: %s\n", proc, e.what());
                code = 4;
            }
            _exit(code);
        }
        children.push_back(pid);
    }
    close(start[0]);
    close(start[1]);
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    auto db = Database::open(p);
    EXPECT_EQ(db->records({}).size(), 2u * kPerProcess);
    EXPECT_EQ(db->stats().rows.at(0).records, 2 * kPerProcess);
    db.reset();
    EXPECT_EQ(pragma(p, "integrity_check"), "ok");
}

TEST_F(Db, GarbageFileIsRefusedAndLeftAlone) {
    std::mt19937 rng(7);
    std::string garbage(4096, '\0');
    for (char& c : garbage)
        c = static_cast<char>(rng());
    // Random bytes; a text file; the SQLite header followed by nonsense (SQLITE_NOTADB).
    std::vector<std::pair<std::string, std::string>> files = {
        {path("random.db"), garbage},
        {path("notes.db"), "these are my notes\n"},
        {path("forged.db"), std::string("SQLite format 3\0", 16) + garbage}};
    for (const auto& [p, bytes] : files) {
        SCOPED_TRACE(p);
        { std::ofstream(p, std::ios::binary) << bytes; }
        std::string what = open_error(p);
        EXPECT_NE(what.find(p), std::string::npos) << what;
        EXPECT_NE(what.find("not a SQLite database"), std::string::npos) << what;
        EXPECT_EQ(read_bytes(p), bytes);
        EXPECT_FALSE(fs::exists(p + "-wal"));
    }
    std::string what = open_error(dir_);
    EXPECT_NE(what.find(dir_), std::string::npos) << what;
}

// A version-1 file (before the features cache) is migrated forward and keeps its records.
TEST_F(Db, VersionOneFileIsMigrated) {
    const std::string p = path("v1.db");
    {
        auto db = Database::open(p);
        db->add({make_record("m=16,n=32,k=8", 1, 0.5), make_record("m=16,n=32,k=8", 2, 0.7)});
    }
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(p.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "DROP TABLE features; PRAGMA user_version = 1", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
    auto db = Database::open(p);
    EXPECT_EQ(pragma(p, "user_version"), std::to_string(kSchemaVersion));
    EXPECT_EQ(db->records({}).size(), 2u);
    Record r = make_record("m=16,n=32,k=8", 1, 0.5);
    db->store_features({{r, R"({"a":1})"}}, 1);
    EXPECT_EQ(db->features({r}, 1), std::vector<std::string>{R"({"a":1})"});
}

// The cost model's features of a record are kept per feature version, and only for records
// that exist.
TEST_F(Db, FeaturesAreCachedPerRecordAndVersion) {
    auto db = Database::open(path("t.db"));
    Record a = make_record("m=16,n=32,k=8", 1, 0.5), b = make_record("m=16,n=32,k=8", 2, 0.7);
    Record elsewhere = make_record("m=16,n=32,k=8", 1, 0.4, RecordStatus::ok, machine("Other"));
    Record absent = make_record("m=16,n=32,k=8", 3, 0.9);
    db->add({a, b, elsewhere});
    db->store_features({{a, "A1"}, {elsewhere, "E1"}, {absent, "X"}}, 1);
    EXPECT_EQ(db->features({a, b, elsewhere, absent}, 1),
              (std::vector<std::string>{"A1", "", "E1", ""}));
    // A newer version replaces the record's entry.
    db->store_features({{a, "A2"}}, 2);
    EXPECT_EQ(db->features({a}, 2), std::vector<std::string>{"A2"});
    EXPECT_EQ(db->features({a}, 1), std::vector<std::string>{""});
}

TEST_F(Db, NewerSchemaIsRefusedAndLeftAlone) {
    const std::string p = path("future.db");
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(p.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE future (x); PRAGMA user_version = 99", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
    const std::string before = read_bytes(p);
    std::string what = open_error(p);
    EXPECT_NE(what.find(p), std::string::npos) << what;
    EXPECT_NE(what.find("schema version 99 is newer"), std::string::npos) << what;
    EXPECT_EQ(read_bytes(p), before);
    EXPECT_EQ(pragma(p, "user_version"), "99");

    // merge() refuses it the same way.
    auto db = Database::open(path("mine.db"));
    std::string merge_error;
    try {
        db->merge(p);
    } catch (const Error& e) {
        merge_error = e.what();
    }
    EXPECT_NE(merge_error.find(p), std::string::npos) << merge_error;
    EXPECT_EQ(read_bytes(p), before);
}

TEST_F(Db, ExportThenImportReproducesEveryBest) {
    auto src = Database::open(path("src.db"));
    std::vector<Record> all;
    int64_t tile = 1;
    for (const char* shape : {"m=16,n=32,k=8", "m=64,n=64,k=64", "m=1,n=768,k=768"})
        for (int i = 0; i < 6; ++i) {
            RecordStatus st = i == 2 ? RecordStatus::timeout : RecordStatus::ok;
            all.push_back(make_record(shape, tile++, 3.0 - 0.37 * ((i * 5) % 6), st));
        }
    all.push_back(make_record("m=16,n=32,k=8", 99, 0.01, RecordStatus::ok, machine("Other")));
    ASSERT_EQ(src->add(all), static_cast<int64_t>(all.size()));

    std::stringstream log;
    EXPECT_EQ(src->export_log(log, {}), static_cast<int64_t>(all.size()));
    const std::string text = log.str();
    EXPECT_EQ(lines(text).size(), all.size());

    auto dst = Database::open(path("dst.db"));
    std::istringstream in(text);
    ImportReport r = dst->import_log(in);
    EXPECT_EQ(r.lines, static_cast<int64_t>(all.size()));
    EXPECT_EQ(r.added, static_cast<int64_t>(all.size()));
    EXPECT_EQ(r.duplicates, 0);
    EXPECT_TRUE(r.errors.empty());
    for (const char* key : {"dense/m16n32k8/f32", "dense/m64n64k64/f32", "dense/m1n768k768/f32"})
        for (const std::string& fp : {std::string(), machine("Local CPU").id()}) {
            SCOPED_TRACE(std::string(key) + " " + fp);
            auto a = src->best(key, kHalide, fp), b = dst->best(key, kHalide, fp);
            ASSERT_TRUE(a && b);
            EXPECT_EQ(a->config, b->config);
            EXPECT_EQ(a->median_ms, b->median_ms);
            EXPECT_EQ(a->fingerprint.id(), b->fingerprint.id());
        }

    // Importing the same log again adds nothing.
    std::istringstream again(text);
    ImportReport r2 = dst->import_log(again);
    EXPECT_EQ(r2.added, 0);
    EXPECT_EQ(r2.duplicates, static_cast<int64_t>(all.size()));
    EXPECT_EQ(dst->records({}).size(), all.size());

    // Filters apply to export.
    RecordFilter f;
    f.workload_key = "dense/m64n64k64/f32";
    f.only_ok = true;
    std::stringstream some;
    EXPECT_EQ(src->export_log(some, f), 5);
}

TEST_F(Db, ImportReportsBadLinesAndKeepsTheRest) {
    std::vector<std::string> good;
    for (int i = 1; i <= 5; ++i)
        good.push_back(make_record("m=16,n=32,k=8", i, i * 0.5).to_json().dump());
    nlohmann::json unknown = make_record("m=16,n=32,k=8", 42, 1.0).to_json();
    unknown["workload"]["op"] = "conv9d";
    std::string log = good[0] + "\n" +                                // line 1
                      good[1].substr(0, good[1].size() / 2) + "\n" +  // 2: truncated
                      good[2] + "\n" +                                // 3
                      "\x01garbage\xff{]\n" +                         // 4
                      "\n" +                                          // 5: blank, skipped
                      unknown.dump() + "\n" +                         // 6: unknown op
                      good[3] + "\n" +                                // 7
                      good[4];                                        // 8: no final newline
    auto db = Database::open(path("t.db"));
    std::istringstream in(log);
    ImportReport r = db->import_log(in);
    EXPECT_EQ(r.lines, 7);
    EXPECT_EQ(r.added, 4);
    EXPECT_EQ(r.duplicates, 0);
    ASSERT_EQ(r.errors.size(), 3u);
    EXPECT_EQ(r.errors[0].rfind("line 2: ", 0), 0u) << r.errors[0];
    EXPECT_EQ(r.errors[1].rfind("line 4: ", 0), 0u) << r.errors[1];
    EXPECT_EQ(r.errors[2].rfind("line 6: ", 0), 0u) << r.errors[2];
    EXPECT_NE(r.errors[2].find("conv9d"), std::string::npos) << r.errors[2];
    EXPECT_EQ(db->records({}).size(), 4u);
}

TEST_F(Db, MergeCopiesEveryRecordOnce) {
    auto a = Database::open(path("a.db"));
    auto b = Database::open(path("b.db"));
    a->add({make_record("m=16,n=32,k=8", 1, 1.0), make_record("m=16,n=32,k=8", 2, 2.0)});
    b->add({make_record("m=16,n=32,k=8", 2, 2.0),
            make_record("m=16,n=32,k=8", 3, 0.5, RecordStatus::ok, machine("Other")),
            make_record("m=8,n=8,k=8", 4, 0, RecordStatus::compile_error)});
    ImportReport r = a->merge(path("b.db"));
    EXPECT_EQ(r.lines, 3);
    EXPECT_EQ(r.added, 2);
    EXPECT_EQ(r.duplicates, 1);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(a->records({}).size(), 4u);
    EXPECT_EQ(a->merge(path("b.db")).added, 0);
    EXPECT_EQ(a->best("dense/m16n32k8/f32", kHalide)->fingerprint.cpu_model, "Other");
    EXPECT_NE(error_field([&] { a->merge(path("missing.db")); }), "<no error>");
    EXPECT_FALSE(fs::exists(path("missing.db")));
}

TEST_F(Db, StatsCountPerTargetAndOp) {
    auto db = Database::open(path("t.db"));
    EXPECT_TRUE(db->stats().rows.empty());
    db->add({make_record("m=16,n=32,k=8", 1, 1.0), make_record("m=16,n=32,k=8", 2, 0.2),
             make_record("m=16,n=32,k=8", 3, 0, RecordStatus::timeout),
             make_record("m=8,n=8,k=8", 4, 0.1),
             make_record("m=8,n=8,k=8", 4, 0.1, RecordStatus::ok, machine("Local CPU"),
                         "arm-64-linux")});
    DatabaseStats st = db->stats();
    ASSERT_EQ(st.rows.size(), 2u);
    EXPECT_EQ(st.rows[0].target_halide, "arm-64-linux");
    EXPECT_EQ(st.rows[0].records, 1);
    EXPECT_EQ(st.rows[1].target_halide, kHalide);
    EXPECT_EQ(st.rows[1].op, "dense");
    EXPECT_EQ(st.rows[1].records, 4);
    EXPECT_EQ(st.rows[1].ok, 3);
    EXPECT_EQ(st.rows[1].workloads, 2);
}

// ---- `kiln db`, run as a user runs it (KILN_BINARY, as in tests/test_cli.cpp) ----

namespace {

bool contains(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

// Three configs of one workload on this machine's target, the fastest with tile 3.
std::vector<Record> host_records() {
    const std::string halide = host_target().halide;
    return {
        make_record("m=16,n=32,k=8", 1, 2.0, RecordStatus::ok, machine("Local CPU"), halide),
        make_record("m=16,n=32,k=8", 3, 1.0, RecordStatus::ok, machine("Local CPU"), halide),
        make_record("m=16,n=32,k=8", 5, 0, RecordStatus::timeout, machine("Local CPU"), halide)};
}

}  // namespace

TEST_F(Db, CliStatsAndBest) {
    const std::string p = path("a.db");
    Database::open(p)->add(host_records());

    Result stats = run_kiln({"db", "stats", "--db", p});
    ASSERT_EQ(stats.code, 0) << stats.err;
    EXPECT_EQ(stats.err, "");
    EXPECT_TRUE(contains(stats.out, "database  " + p)) << stats.out;
    EXPECT_TRUE(contains(stats.out, "target")) << stats.out;
    EXPECT_TRUE(contains(stats.out, "dense")) << stats.out;
    EXPECT_TRUE(contains(stats.out, "dense/m16n32k8/f32")) << stats.out;
    EXPECT_TRUE(contains(stats.out, R"({"order":"mn","tile":3})")) << stats.out;
    // The same database through KILN_DB.
    Result env = run_kiln({"db", "stats"}, {"KILN_DB=" + p});
    EXPECT_EQ(env.code, 0) << env.err;
    EXPECT_EQ(env.out, stats.out);

    Result best = run_kiln({"db", "best", "dense/m16n32k8/f32", "--db", p});
    ASSERT_EQ(best.code, 0) << best.err;
    EXPECT_TRUE(contains(best.out, R"(config    {"order":"mn","tile":3})")) << best.out;
    EXPECT_TRUE(contains(best.out, "median 1 ms")) << best.out;
    Result json = run_kiln({"db", "best", "dense/m16n32k8/f32", "--db", p, "--json"});
    ASSERT_EQ(json.code, 0) << json.err;
    Record r = Record::from_json(nlohmann::json::parse(json.out));
    EXPECT_EQ(r.config.i("tile"), 3);

    Result none = run_kiln({"db", "best", "dense/m1n1k1/f32", "--db", p});
    EXPECT_EQ(none.code, 1);
    ASSERT_EQ(lines(none.err).size(), 1u) << none.err;
    EXPECT_TRUE(contains(none.err, "kiln: no ok record for dense/m1n1k1/f32")) << none.err;
    Result other_target =
        run_kiln({"db", "best", "dense/m16n32k8/f32", "--db", p, "--target", "arm-64-linux"});
    EXPECT_EQ(other_target.code, 1);

    expect_bad_input({"db", "best", "dense/m16", "--db", p}, "dense/m16");
    expect_bad_input({"db", "stats", "--db", path("missing.db")}, "no tuning database at");
    EXPECT_FALSE(fs::exists(path("missing.db")));
    { std::ofstream(path("junk.db")) << "not a database at all, just text\n"; }
    expect_bad_input({"db", "stats", "--db", path("junk.db")}, path("junk.db"));
    expect_bad_input({"db"}, "");
}

TEST_F(Db, CliExportImportMerge) {
    const std::string a = path("a.db"), b = path("b.db"), c = path("c.db");
    Database::open(a)->add(host_records());

    Result exp = run_kiln({"db", "export", "--db", a, "-o", path("log.jsonl")});
    ASSERT_EQ(exp.code, 0) << exp.err;
    EXPECT_TRUE(contains(exp.out, "exported  3 records")) << exp.out;
    Result to_stdout = run_kiln({"db", "export", "--db", a, "--op", "dense"});
    ASSERT_EQ(to_stdout.code, 0) << to_stdout.err;
    EXPECT_EQ(to_stdout.out, read_bytes(path("log.jsonl")));
    EXPECT_EQ(lines(to_stdout.out).size(), 3u);
    EXPECT_EQ(run_kiln({"db", "export", "--db", a, "--op", "conv2d"}).out, "");
    EXPECT_EQ(run_kiln({"db", "export", "--db", a, "--target", "arm-64-linux"}).out, "");

    Result imp = run_kiln({"db", "import", path("log.jsonl"), "--db", b});
    ASSERT_EQ(imp.code, 0) << imp.err;
    EXPECT_TRUE(contains(imp.out, "lines      3\nadded      3\nduplicates 0\nbad        0"))
        << imp.out;
    Result again = run_kiln({"db", "import", path("log.jsonl"), "--db", b});
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "added      0\nduplicates 3")) << again.out;

    // Bad lines: reported one per stderr line, exit 1, and the good line is in.
    const std::string good = lines(to_stdout.out)[0];
    { std::ofstream(path("bad.jsonl")) << "{\"format\": 1\n" << good << "\n[1, 2]\n"; }
    Result bad = run_kiln({"db", "import", path("bad.jsonl"), "--db", c});
    EXPECT_EQ(bad.code, 1);
    EXPECT_TRUE(contains(bad.out, "added      1")) << bad.out;
    auto err = lines(bad.err);
    ASSERT_EQ(err.size(), 2u) << bad.err;
    EXPECT_EQ(err[0].rfind("kiln: " + path("bad.jsonl") + ": line 1: ", 0), 0u) << err[0];
    EXPECT_EQ(err[1].rfind("kiln: " + path("bad.jsonl") + ": line 3: ", 0), 0u) << err[1];
    expect_bad_input({"db", "import", path("nothing.jsonl"), "--db", c}, "nothing.jsonl");

    Result merge = run_kiln({"db", "merge", a, "--db", c});
    ASSERT_EQ(merge.code, 0) << merge.err;
    EXPECT_TRUE(contains(merge.out, "records    3\nadded      2\nduplicates 1")) << merge.out;
    expect_bad_input({"db", "merge", path("nothing.db"), "--db", c}, "nothing.db");
    Result not_db = run_kiln({"db", "merge", path("log.jsonl"), "--db", c});
    EXPECT_EQ(not_db.code, 2);
    EXPECT_EQ(not_db.out, "");
    EXPECT_TRUE(contains(not_db.err, path("log.jsonl") + ": not a SQLite database")) << not_db.err;
    EXPECT_EQ(Database::open(c)->records({}).size(), 3u);
}

// docs/DATABASE.md shows one log line; it must stay a line this kiln reads.
TEST(Record, DocExampleLineIsValid) {
    std::string doc = read_bytes(std::string(KILN_SOURCE_DIR) + "/docs/DATABASE.md");
    const std::string fence = "\n```json\n";
    size_t start = doc.find(fence);
    ASSERT_NE(start, std::string::npos) << "no ```json block in docs/DATABASE.md";
    start += fence.size();
    std::string line = doc.substr(start, doc.find("\n```", start) - start);
    Record r = Record::from_json(nlohmann::json::parse(line));
    EXPECT_EQ(r.workload.key(), "dense/m128n768k768/f32");
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.to_json(), nlohmann::json::parse(line));
}
