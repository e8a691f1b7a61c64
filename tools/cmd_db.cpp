// kiln/tools/cmd_db.cpp — `kiln db stats|best|export|import|merge`: the tuning database by hand.
//
// Each subcommand opens the database named by --db (else $KILN_DB, else
// ~/.cache/kiln/tuning.db; tools/db_path.h) and does one thing with db/database.h. Commands
// that only read refuse a database that does not exist rather than create an empty one. Bad
// input exits 2 with one `kiln:` line; exit 1 means "no record" (best) or "some lines were
// bad, the rest imported" (import, merge). docs/CLI.md and docs/DATABASE.md describe them.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "db/database.h"
#include "targets/target.h"
#include "tools/commands.h"
#include "tools/db_path.h"
#include "tools/table.h"

namespace kiln::tools {
namespace {

struct DbOptions {
    std::string db;  // --db; empty: default_database_path()
    std::string key;
    std::string target = "host";  // best: whose records count
    std::string export_target;    // export: empty = every target
    std::string op;
    std::string output;
    std::string file;
    bool json = false;
};

std::unique_ptr<Database> open_existing(const std::string& option) {
    std::string path = database_path(option);
    if (!std::filesystem::exists(path))
        throw Error("db", "no tuning database at " + path +
                              " (pass --db PATH or set KILN_DB to use another)");
    return Database::open(path);
}

// The fingerprint best() prefers: this machine's, when the target is the one we run on.
std::string local_fingerprint(const Target& t) {
    return t.is_host ? t.fingerprint.id() : host_fingerprint().id();
}

void run_stats(const DbOptions& o) {
    auto db = open_existing(o.db);
    DatabaseStats st = db->stats();
    std::printf("database  %s\n", db->path().c_str());
    if (st.rows.empty()) {
        std::printf("no records\n");
        return;
    }
    std::vector<std::vector<std::string>> rows = {{"target", "op", "records", "ok", "workloads"}};
    for (const auto& r : st.rows)
        rows.push_back({r.target_halide, r.op, std::to_string(r.records), std::to_string(r.ok),
                        std::to_string(r.workloads)});
    print_table(rows, "");

    std::map<std::string, std::set<std::string>> keys_by_target;
    for (const Record& r : db->records({"", "", "", /*only_ok=*/true}))
        keys_by_target[r.target_halide].insert(r.workload.key());
    const std::string fp = host_fingerprint().id();
    for (const auto& [halide, keys] : keys_by_target) {
        std::printf("\nbest on %s\n", halide.c_str());
        rows = {{"workload", "median ms", "GFLOP/s", "config"}};
        for (const std::string& key : keys) {
            std::optional<Record> b = db->best(key, halide, fp);
            if (!b) continue;
            rows.push_back({key, fmt::format("{:.4g}", b->median_ms),
                            fmt::format("{:.2f}", b->gflops()), b->config.to_string()});
        }
        print_table(rows, "  ");
    }
}

void run_best(const DbOptions& o) {
    Workload w = Workload::parse_key(o.key);
    Target t = parse_target(o.target);
    auto db = open_existing(o.db);
    const std::string fp = local_fingerprint(t);
    std::optional<Record> b = db->best(w.key(), t.halide, fp);
    if (!b) {
        std::fprintf(stderr, "kiln: no ok record for %s on target %s (%s) in %s\n", w.key().c_str(),
                     t.name.c_str(), t.halide.c_str(), db->path().c_str());
        throw CLI::RuntimeError(1);
    }
    if (o.json) {
        std::printf("%s\n", b->to_json().dump().c_str());
        return;
    }
    std::printf("workload  %s\n", b->workload.key().c_str());
    std::printf("target    %s (%s)\n", t.name.c_str(), b->target_halide.c_str());
    std::printf("config    %s\n", b->config.to_string().c_str());
    std::printf("time      median %.4g ms, min %.4g ms (%d repeats), %.2f GFLOP/s\n", b->median_ms,
                b->min_ms, b->repeats, b->gflops());
    bool here = b->fingerprint.id() == fp;
    std::printf("measured  %s by kiln %s on %s (%s, fingerprint %s)\n", b->time.c_str(),
                b->kiln_version.c_str(), b->fingerprint.cpu_model.c_str(),
                here ? "this kind of machine" : "another kind of machine",
                b->fingerprint.id().c_str());
}

void run_export(const DbOptions& o) {
    RecordFilter filter;
    filter.workload_key = o.key.empty() ? "" : Workload::parse_key(o.key).key();
    if (!o.op.empty()) filter.op = find_op(o.op).name();  // an unknown op lists the known ones
    if (!o.export_target.empty()) filter.target_halide = parse_target(o.export_target).halide;
    auto db = open_existing(o.db);
    if (o.output.empty() || o.output == "-") {
        db->export_log(std::cout, filter);
        return;
    }
    std::ofstream out(o.output);
    if (!out) throw Error("output", "cannot write " + o.output);
    int64_t n = db->export_log(out, filter);
    std::printf("exported  %lld records to %s\n", static_cast<long long>(n), o.output.c_str());
}

// Bad lines go to stderr, one `kiln:` line each, and make the exit code 1; the good lines are
// already in the database by then.
void report_import(const ImportReport& r, const std::string& source, const char* unit) {
    std::printf("%-10s %lld\n", unit, static_cast<long long>(r.lines));
    std::printf("%-10s %lld\n", "added", static_cast<long long>(r.added));
    std::printf("%-10s %lld\n", "duplicates", static_cast<long long>(r.duplicates));
    std::printf("%-10s %zu\n", "bad", r.errors.size());
    std::fflush(stdout);
    for (const std::string& e : r.errors)
        std::fprintf(stderr, "kiln: %s: %s\n", source.c_str(), e.c_str());
    if (!r.errors.empty()) throw CLI::RuntimeError(1);
}

void run_import(const DbOptions& o) {
    std::ifstream file;
    if (o.file != "-") {
        if (!std::filesystem::is_regular_file(o.file))
            throw Error("FILE", "no such file: " + o.file);
        file.open(o.file);
        if (!file) throw Error("FILE", "cannot read " + o.file);
    }
    auto db = Database::open(database_path(o.db));
    ImportReport r = db->import_log(o.file == "-" ? std::cin : file);
    std::printf("%-10s %s into %s\n", "import", o.file.c_str(), db->path().c_str());
    report_import(r, o.file, "lines");
}

void run_merge(const DbOptions& o) {
    auto db = Database::open(database_path(o.db));
    ImportReport r = db->merge(o.file);
    std::printf("%-10s %s into %s\n", "merge", o.file.c_str(), db->path().c_str());
    report_import(r, o.file, "records");
}

CLI::App* add_db_option(CLI::App* cmd, DbOptions& o) {
    cmd->add_option("--db", o.db,
                    "Tuning database (default: $KILN_DB, else ~/.cache/kiln/tuning.db)");
    return cmd;
}

}  // namespace

void add_db(CLI::App& app) {
    auto o = std::make_shared<DbOptions>();
    CLI::App* db = app.add_subcommand("db", "Inspect, export, import and merge tuning databases");
    db->require_subcommand(1, 1);

    CLI::App* stats = add_db_option(
        db->add_subcommand("stats", "Records per target and op, and the best config per workload"),
        *o);
    stats->callback([o] { run_stats(*o); });

    CLI::App* best = add_db_option(
        db->add_subcommand("best", "The fastest ok record of one workload: config and time"), *o);
    best->add_option("KEY", o->key, "Workload key, e.g. dense/m128n768k768/f32")->required();
    best->add_option("--target", o->target,
                     "Target whose records count; records measured on this machine win")
        ->capture_default_str();
    best->add_flag("--json", o->json, "Print the whole record as one log line (JSON)");
    best->callback([o] { run_best(*o); });

    CLI::App* exp = add_db_option(
        db->add_subcommand("export", "Write records as a tuning log (JSON Lines)"), *o);
    exp->add_option("--target", o->export_target, "Only records for this target (default: all)");
    exp->add_option("--op", o->op, "Only records of this op (default: all)");
    exp->add_option("--key", o->key, "Only records of this workload key (default: all)");
    exp->add_option("-o,--output", o->output, "Write to FILE (default: standard output)");
    exp->callback([o] { run_export(*o); });

    CLI::App* imp = add_db_option(
        db->add_subcommand("import", "Add the records of a tuning log; bad lines are reported"),
        *o);
    imp->add_option("FILE", o->file, "Tuning log (JSON Lines), or - for standard input")
        ->required();
    imp->callback([o] { run_import(*o); });

    CLI::App* merge = add_db_option(
        db->add_subcommand("merge", "Copy every record of another tuning database into this one"),
        *o);
    merge->add_option("OTHER", o->file, "The other database file (opened read-only)")->required();
    merge->callback([o] { run_merge(*o); });

    db->footer(
        "Examples:\n"
        "  kiln db stats\n"
        "  kiln db best dense/m128n768k768/f32\n"
        "  kiln db export --op conv2d -o conv2d.jsonl\n"
        "  kiln db import conv2d.jsonl --db team.db\n"
        "  kiln db merge other-machine.db");
}

}  // namespace kiln::tools
