// kiln/bench/bench_search.cpp — kiln_bench_search: how many trials the cost model saves.
//
// Per conv layer of layers.json: a long random search (no model) sets the layer's best; then
// the trials each search needs to reach `share` (95%) of that best's speed:
//   random    — the long random search itself, in the order it measured;
//   guided    — evolutionary search with the cost model, from an empty database;
//   transfer  — the same, from a database holding the other layers' random-search records.
// Guided searches stop as soon as they reach the target. No search is handed the space's default
// config first: they are compared as searches, not as hand rules. Every database lives in --dir and
// a rerun continues: the random search measures only what it still lacks, a layer whose guided
// searches finished (DIR/results.jsonl, same settings) is taken from there, and an unfinished
// layer's guided searches start again from scratch. Also: Kendall's tau of the model on each layer
// held out of the random-search records (tuner/model_eval.h). Writes the table into
// docs/PERFORMANCE.md between the bench_search markers. bench/README.md has the protocol.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/layer.h"
#include "bench/measure.h"
#include "core/error.h"
#include "cost_model/features.h"
#include "db/database.h"
#include "targets/target.h"
#include "tuner/guide.h"
#include "tuner/model_eval.h"
#include "tuner/tuner.h"

using namespace kiln;
using namespace kiln::bench;

namespace {

constexpr const char* kBegin = "<!-- bench_search:begin -->";
constexpr const char* kEnd = "<!-- bench_search:end -->";

struct Options {
    std::string layers = std::string(KILN_SOURCE_DIR) + "/../shared/bench/layers.json";
    std::string only;
    std::string dir;
    int random_trials = 1000;
    int guided_trials = 200;
    bool random_only = false;
    int batch = 8;
    double share = 0.95;
    double min_time = 0.05;
    double quiet_wait = 600;
    int retime_top = 8;
    int retime_rounds = 5;
    std::string doc = "docs/PERFORMANCE.md";
    bool no_doc = false;
};

struct SearchRun {
    int trials = -1;  // to reach the target; -1 = not within the budget
    int measured = 0;
    double seconds = 0;
};

struct LayerRow {
    std::string id;
    double best_ms = 0;  // the reference: the re-timed best (retimed_best())
    double min_ms = 0;   // the random search's fastest single measurement
    int random_measured = 0;
    // Records of the random search within the target, and the trials a random search needs to
    // find one on average: (N + 1) / (hits + 1), drawing without replacement from the N it
    // measured. One random order's first hit (`random.trials`) varies far more.
    int random_hits = 0;
    double random_expected = 0;
    SearchRun random, guided, transfer;
    double tau = std::numeric_limits<double>::quiet_NaN();
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Finished layers, one JSON line each in DIR/results.jsonl, so a rerun (the set takes hours)
// goes on with the layers not done yet. A line counts only for the same search settings.
nlohmann::json settings_of(const Options& o) {
    return {{"random_trials", o.random_trials},
            {"guided_trials", o.guided_trials},
            {"batch", o.batch},
            {"share", o.share},
            {"retime_top", o.retime_top}};
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SearchRun, trials, measured, seconds)

void save_result(const std::string& path, const Options& o, const LayerRow& row) {
    nlohmann::json j = {{"id", row.id},
                        {"settings", settings_of(o)},
                        {"best_ms", row.best_ms},
                        {"min_ms", row.min_ms},
                        {"random_measured", row.random_measured},
                        {"random_hits", row.random_hits},
                        {"random_expected", row.random_expected},
                        {"random", row.random},
                        {"guided", row.guided},
                        {"transfer", row.transfer},
                        {"tau", std::isnan(row.tau) ? nlohmann::json() : nlohmann::json(row.tau)}};
    std::ofstream(path, std::ios::app) << j.dump() << "\n";
}

// The last saved row of each layer under the same settings; unreadable lines are skipped
// with a warning (a line cut short by a kill).
std::map<std::string, LayerRow> load_results(const std::string& path, const Options& o) {
    std::map<std::string, LayerRow> done;
    std::ifstream in(path);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
        ++n;
        if (line.empty()) continue;
        try {
            nlohmann::json j = nlohmann::json::parse(line);
            if (j.at("settings") != settings_of(o)) continue;
            LayerRow row;
            row.id = j.at("id").get<std::string>();
            row.best_ms = j.at("best_ms").get<double>();
            row.min_ms = j.at("min_ms").get<double>();
            row.random_measured = j.at("random_measured").get<int>();
            row.random_hits = j.at("random_hits").get<int>();
            row.random_expected = j.at("random_expected").get<double>();
            row.random = j.at("random").get<SearchRun>();
            row.guided = j.at("guided").get<SearchRun>();
            row.transfer = j.at("transfer").get<SearchRun>();
            if (!j.at("tau").is_null()) row.tau = j.at("tau").get<double>();
            done[row.id] = row;
        } catch (const std::exception& e) {
            fmt::print(stderr, "kiln_bench_search: {}:{}: skipped ({})\n", path, n, e.what());
        }
    }
    return done;
}

// Records at most `target_ms`.
int hits(const std::vector<Record>& records, double target_ms) {
    int n = 0;
    for (const Record& r : records)
        n += r.ok() && r.median_ms <= target_ms;
    return n;
}

// Trials (1-based, in the order measured) until a record is at most `target_ms`; -1 if never.
int trials_to(const std::vector<Record>& records, double target_ms) {
    for (size_t i = 0; i < records.size(); ++i)
        if (records[i].ok() && records[i].median_ms <= target_ms) return static_cast<int>(i) + 1;
    return -1;
}

std::vector<Record> records_of(Database& db, const Workload& w, const Target& t) {
    RecordFilter f;
    f.workload_key = w.key();
    f.target_halide = t.halide;
    std::vector<Record> out;
    for (Record& r : db.records(f))
        if (r.fingerprint.id() == t.fingerprint.id()) out.push_back(std::move(r));
    return out;
}

// A guided search from `db_path` (fresh unless it holds transfer records): stops at the target.
SearchRun guided(const Workload& w, const Target& t, const std::string& db_path, Runner& runner,
                 const Options& o, double target_ms) {
    auto db = Database::open(db_path);
    TuneOptions to;
    to.trials = o.guided_trials;
    to.batch_size = o.batch;
    to.confirm_top = 0;
    to.model_path = "-";
    to.default_first = false;
    std::atomic<bool> stop{false};
    const auto start = std::chrono::steady_clock::now();
    tune(
        w, t, *db, runner, to,
        [&](const TuneProgress& p) {
            if (p.best_ms > 0 && p.best_ms <= target_ms) stop.store(true);
        },
        &stop);
    SearchRun r;
    r.seconds = seconds_since(start);
    std::vector<Record> mine = records_of(*db, w, t);
    r.measured = static_cast<int>(mine.size());
    r.trials = trials_to(mine, target_ms);
    return r;
}

// The speed of the best configs the random search found, timed again: its `top` fastest
// records, side by side in one process over `rounds` interleaved rounds; the best median. The
// fastest of a thousand single measurements is biased low (a calm moment of the machine, once),
// and a search that measures a hundred would rarely see that moment again. 0 when nothing could
// be re-timed.
double retimed_best(const Workload& w, const Target& t, const std::vector<Record>& records,
                    Runner& runner, int top, int rounds) {
    std::vector<const Record*> ok;
    for (const Record& r : records)
        if (r.ok()) ok.push_back(&r);
    std::sort(ok.begin(), ok.end(),
              [](const Record* a, const Record* b) { return a->median_ms < b->median_ms; });
    std::vector<Config> configs;
    for (size_t i = 0; i < ok.size() && int(i) < top; ++i)
        configs.push_back(ok[i]->config);
    if (configs.empty()) return 0;
    double best = 0;
    for (const Record& r : runner.compare(w, configs, t, rounds))
        if (r.ok() && (best == 0 || r.median_ms < best)) best = r.median_ms;
    return best;
}

// Copies the features of `records` from `from`'s cache into `to`, featurizing (once, into
// `from`) those not cached yet: every layer's transfer database holds the same thousands of
// other layers' records, and lowering them all again for each layer took minutes.
void copy_features(Database& from, Database& to, const std::vector<Record>& records,
                   const Target& t) {
    training_samples(from, records, t.fingerprint.id(), 1.0);
    const std::vector<std::string> cached = from.features(records, kFeatureVersion);
    std::vector<std::pair<Record, std::string>> pairs;
    for (size_t i = 0; i < records.size(); ++i)
        if (!cached[i].empty()) pairs.emplace_back(records[i], cached[i]);
    to.store_features(pairs, kFeatureVersion);
}

// Kendall's tau of the model on the workload's random-search configs, trained on the other
// workloads of its op (leave one out), evaluated once per op.
double tau_of(Database& db, const Workload& w, const Target& t) {
    static std::map<std::string, std::map<std::string, double>> by_op;
    if (!by_op.count(w.op)) {
        EvalOptions e;
        e.op = w.op;
        e.target_halide = t.halide;
        e.fingerprint = t.fingerprint.id();
        auto& taus = by_op[w.op];
        for (const WorkloadEval& we : evaluate_model(db, e).workloads)
            taus[we.workload_key] = we.kendall_tau;
    }
    auto it = by_op[w.op].find(w.key());
    return it == by_op[w.op].end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

std::string cell(const SearchRun& r, int budget) {
    return r.trials > 0 ? std::to_string(r.trials) : fmt::format("> {}", budget);
}

double median_trials(const std::vector<LayerRow>& rows, SearchRun LayerRow::*which, int budget) {
    std::vector<double> v;
    for (const auto& r : rows) {
        const SearchRun& s = r.*which;
        v.push_back(s.trials > 0 ? s.trials : budget + 1);
    }
    return median(v);
}

std::string markdown(const Options& o, const std::vector<LayerRow>& rows,
                     const std::string& command) {
    std::ostringstream out;
    out << fmt::format("Command: `{}`\n\n", command);
    out << fmt::format(
        "Trials to reach {:.0f}% of the speed of the best config a {}-trial random search "
        "found, per layer; guided searches stop there or after {} trials (batches of {}, {:.2f} s "
        "of timing per candidate). \"best ms\" is that speed: the random search's {} fastest "
        "configs timed again side by side, {} interleaved rounds in one process, best median; "
        "\"min ms\" is its fastest single measurement, which a calm moment of the machine "
        "lowers. \"transfer\" starts from the other layers' random-search records; tau is "
        "Kendall's tau of the model on the layer's random-search configs, trained on the other "
        "layers' (leave one layer out).\n\n",
        100 * o.share, o.random_trials, o.guided_trials, o.batch, o.min_time, o.retime_top,
        o.retime_rounds);
    out << "\"random\" is the trial of the random search's first hit in the order it measured; "
           "\"hits\" counts its configs within the target, and \"expected\" is the trials a "
           "random search needs on average, (N + 1) / (hits + 1) for N measured: one order's "
           "first hit varies far more, so the goal compares guided with the expected count.\n\n";
    out << "| layer | best ms | min ms | random | hits | expected | guided | transfer | "
           "expected/guided | guided s | transfer s | tau |\n"
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& r : rows) {
        std::string ratio =
            r.guided.trials > 0 ? fmt::format("{:.1f}", r.random_expected / r.guided.trials) : "–";
        out << fmt::format(
            "| {} | {:.3f} | {:.3f} | {} | {} | {:.0f} | {} | {} | {} | {:.0f} | {:.0f} | {} |\n",
            r.id, r.best_ms, r.min_ms, cell(r.random, r.random_measured), r.random_hits,
            r.random_expected, cell(r.guided, o.guided_trials), cell(r.transfer, o.guided_trials),
            ratio, r.guided.seconds, r.transfer.seconds,
            std::isnan(r.tau) ? "–" : fmt::format("{:.2f}", r.tau));
    }
    const double mr = median_trials(rows, &LayerRow::random, o.random_trials);
    std::vector<double> expected;
    for (const auto& r : rows)
        expected.push_back(r.random_expected);
    const double me = median(expected);
    const double mg = median_trials(rows, &LayerRow::guided, o.guided_trials);
    const double mt = median_trials(rows, &LayerRow::transfer, o.guided_trials);
    out << fmt::format(
        "\nMedians over {} layers: random {:.0f} (expected {:.0f}), guided {:.0f}, transfer {:.0f} "
        "trials. Goals: guided <= a quarter of random's expected count ({}), transfer <= 48 "
        "({}).\n",
        rows.size(), mr, me, mg, mt, mg * 4 <= me ? "holds" : "**missed**",
        mt <= 48 ? "holds" : "**missed**");
    return out.str();
}

void write_doc(const std::string& path, const std::string& section) {
    std::string page;
    if (std::ifstream in{path}) {
        std::ostringstream s;
        s << in.rdbuf();
        page = s.str();
    }
    const std::string block = std::string(kBegin) + "\n" + section + kEnd;
    size_t b = page.find(kBegin), e = page.find(kEnd);
    if (b == std::string::npos || e == std::string::npos || e < b)
        page += std::string(page.empty() || page.back() == '\n' ? "\n" : "\n\n") +
                "## Search with the cost model\n\n" + block + "\n";
    else
        page.replace(b, e + std::string(kEnd).size() - b, block);
    std::ofstream(path, std::ios::trunc) << page;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{
        "Trials each search (random, cost-model guided, guided with transfer) needs to reach 95% "
        "of the best a long random search finds, on the conv layers of layers.json."};
    app.add_option("--layers", o.layers, "the layer set (JSON)")->capture_default_str();
    app.add_option("--only", o.only, "comma-separated layer ids (default: every conv layer)");
    app.add_option("--dir", o.dir,
                   "where the databases and results.jsonl live; a rerun continues the random "
                   "searches and skips finished layers (default: build/bench/search-<machine>)");
    app.add_option("--random-trials", o.random_trials, "length of the random search per layer")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--guided-trials", o.guided_trials, "budget of each guided search")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--batch", o.batch, "candidates per batch")->capture_default_str();
    app.add_option("--share", o.share, "share of the best's speed to reach")
        ->capture_default_str()
        ->check(CLI::Range(0.5, 1.0));
    app.add_option("--min-time", o.min_time, "seconds of timing per candidate")
        ->capture_default_str();
    app.add_option("--quiet-wait", o.quiet_wait,
                   "seconds each candidate waits for other processes to leave the cores")
        ->capture_default_str();
    app.add_option("--retime-top", o.retime_top,
                   "the random search's fastest configs timed again to set the best (0: its "
                   "fastest single measurement)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--retime-rounds", o.retime_rounds, "interleaved rounds of that re-timing")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--write-doc", o.doc, "page to write the table into")->capture_default_str();
    app.add_flag("--no-doc", o.no_doc, "only print the table");
    app.add_flag("--random-only", o.random_only,
                 "only run (or continue) the long random searches and print how far each is; "
                 "the set takes hours, and a killed run loses at most one batch");
    CLI11_PARSE(app, argc, argv);

    std::string command = "./build/bench/kiln_bench_search";
    for (int i = 1; i < argc; ++i)
        command += std::string(" ") + argv[i];
    try {
        const Target t = host_target();
        if (o.dir.empty()) o.dir = std::string(KILN_BINARY_DIR) + "/search-" + t.fingerprint.id();
        std::filesystem::create_directories(o.dir);
        std::set<std::string> wanted;
        std::stringstream ss(o.only);
        for (std::string id; std::getline(ss, id, ',');)
            if (!id.empty()) wanted.insert(id);
        std::vector<Layer> layers;
        for (Layer& l : load_layers(o.layers))
            if (l.is_conv && (wanted.empty() || wanted.count(l.id))) layers.push_back(l);
        if (layers.empty()) throw Error("only", "no conv layer selected");

        RunnerOptions ro;
        ro.measure_binary = KILN_EXECUTABLE;
        ro.measure.min_time_s = o.min_time;
        ro.measure.quiet_wait_s = o.quiet_wait;
        auto runner = make_process_runner(ro);
        const std::string random_path = o.dir + "/random.db";
        const std::string results_path = o.dir + "/results.jsonl";
        const std::map<std::string, LayerRow> done =
            o.random_only ? std::map<std::string, LayerRow>{} : load_results(results_path, o);

        // 1. The long random searches, every layer first: transfer needs the others' records.
        std::vector<LayerRow> rows;
        for (const Layer& l : layers) {
            if (auto it = done.find(l.id); it != done.end()) {
                fmt::print("{}: done in an earlier run ({})\n", l.id, results_path);
                rows.push_back(it->second);
                continue;
            }
            Workload w = l.to_workload();
            auto db = Database::open(random_path);
            const int have = static_cast<int>(records_of(*db, w, t).size());
            LayerRow row;
            row.id = l.id;
            if (have < o.random_trials) {
                fmt::print("{}: random search, {} of {} trials measured\n", l.id, have,
                           o.random_trials);
                std::fflush(stdout);
                TuneOptions to;
                to.trials = o.random_trials - have;
                to.batch_size = o.batch;
                to.strategy = "random";
                to.cost_model = false;
                to.confirm_top = 0;
                to.default_first = false;
                tune(w, t, *db, *runner, to);
            }
            std::vector<Record> mine = records_of(*db, w, t);
            row.random_measured = static_cast<int>(mine.size());
            for (const Record& r : mine)
                if (r.ok() && (row.min_ms == 0 || r.median_ms < row.min_ms))
                    row.min_ms = r.median_ms;
            row.best_ms = row.min_ms;
            if (o.retime_top > 0 && !mine.empty()) {
                const double b = retimed_best(w, t, mine, *runner, o.retime_top, o.retime_rounds);
                if (b > 0) row.best_ms = b;
            }
            const double target = row.best_ms / o.share;
            row.random.measured = row.random_measured;
            row.random.trials = trials_to(mine, target);
            row.random_hits = hits(mine, target);
            row.random_expected = double(mine.size() + 1) / double(row.random_hits + 1);
            rows.push_back(row);
        }

        if (o.random_only) {
            for (const LayerRow& row : rows)
                fmt::print(
                    "{}: {} random trials, best {:.3f} ms re-timed ({:.3f} ms measured); {} within "
                    "{:.0f}% of it, first at trial {}, expected {:.0f}\n",
                    row.id, row.random_measured, row.best_ms, row.min_ms, row.random_hits,
                    100 * o.share, row.random.trials, row.random_expected);
            return 0;
        }

        // 2. Guided searches and the model's rank correlation, per layer.
        for (size_t i = 0; i < layers.size(); ++i) {
            const Layer& l = layers[i];
            LayerRow& row = rows[i];
            Workload w = l.to_workload();
            if (row.best_ms <= 0 || done.count(l.id)) continue;
            const double target = row.best_ms / o.share;
            auto random_db = Database::open(random_path);

            const std::string scratch = o.dir + "/guided-" + l.id + ".db";
            std::filesystem::remove(scratch);
            row.guided = guided(w, t, scratch, *runner, o, target);

            const std::string transfer = o.dir + "/transfer-" + l.id + ".db";
            std::filesystem::remove(transfer);
            {
                auto db = Database::open(transfer);
                RecordFilter f;
                f.op = w.op;
                f.target_halide = t.halide;
                std::vector<Record> others;
                for (Record& r : random_db->records(f))
                    if (r.workload.key() != w.key()) others.push_back(std::move(r));
                db->add(others);
                const auto start = std::chrono::steady_clock::now();
                copy_features(*random_db, *db, others, t);
                fmt::print("{}: features of {} other records ready in {:.1f} s\n", l.id,
                           others.size(), seconds_since(start));
            }
            row.transfer = guided(w, t, transfer, *runner, o, target);

            row.tau = tau_of(*random_db, w, t);
            fmt::print(
                "{}: best {:.3f} ms; trials to {:.0f}%: random {} (expected {:.0f}), guided {}, "
                "transfer {}\n",
                l.id, row.best_ms, 100 * o.share, cell(row.random, row.random_measured),
                row.random_expected, cell(row.guided, o.guided_trials),
                cell(row.transfer, o.guided_trials));
            std::fflush(stdout);
            save_result(results_path, o, row);
        }
        const std::string table = markdown(o, rows, command);
        fmt::print("\n{}", table);
        if (!o.no_doc) write_doc(o.doc, table);
    } catch (const std::exception& e) {
        fmt::print(stderr, "kiln_bench_search: {}\n", e.what());
        return 2;
    }
    return 0;
}
