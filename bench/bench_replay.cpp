// kiln/bench/bench_replay.cpp — kiln_bench_replay: candidate selection replayed without measuring.
//
// kiln_bench_search measures every candidate, so comparing two ways of choosing candidates costs
// hours. This replays the choice instead, over what that benchmark already measured: each
// layer's long random search (DIR/random.db) is the space, and "measuring" a config looks up its
// recorded time. A replayed search starts from nothing, measures a random first batch, then
// fits the cost model on what it has measured and fills each batch with the best-predicted of
// `candidates` random draws per slot (plus a `random-share` of plain random picks), refitting
// after every batch, until it picks a config within the target (DIR/results.jsonl's best, over
// `share`). Two selection rules are replayed with the same seeds:
//   per-batch — each batch ranks only its own draws (the search before the reserve);
//   reserve   — every config drawn so far and not measured competes again (tuner/search.cpp).
// It tells which rule ranks better with the real model and features; it does not replay the
// evolutionary children, which are not in the pool. bench/README.md has the protocol.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/layer.h"
#include "bench/measure.h"
#include "core/error.h"
#include "cost_model/model.h"
#include "db/database.h"
#include "targets/target.h"
#include "tuner/guide.h"

using namespace kiln;
using namespace kiln::bench;

namespace {

struct Options {
    std::string layers = std::string(KILN_SOURCE_DIR) + "/../shared/bench/layers.json";
    std::string dir;
    std::string results;  // default DIR/results.jsonl
    int seeds = 12;
    int budget = 200;
    int batch = 8;
    int candidates = 16;
    double random_share = 0.2;
};

// One layer's measured pool: features and recorded median time per config.
struct Pool {
    std::string id;
    std::vector<TrainingSample> configs;
    double target_ms = 0;
    int hits() const {
        int n = 0;
        for (const auto& s : configs)
            n += s.ms <= target_ms;
        return n;
    }
};

// Trials until a config within the target is picked; budget + 1 when none is.
int replay(const Pool& pool, const Options& o, bool reserve, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<size_t> left(pool.configs.size());  // not measured yet
    std::iota(left.begin(), left.end(), 0);
    std::vector<TrainingSample> measured;
    ModelOptions mo;
    mo.seed = seed;
    CostModel model(mo);
    size_t drawn = 0;  // random draws scored so far, for the reserve
    // Measures left[i]; true when it reaches the target.
    auto measure = [&](size_t i) {
        const TrainingSample& s = pool.configs[left[i]];
        left.erase(left.begin() + static_cast<std::ptrdiff_t>(i));
        measured.push_back(s);
        return s.ms <= pool.target_ms;
    };
    auto any = [&] { return std::uniform_int_distribution<size_t>(0, left.size() - 1)(rng); };
    while (static_cast<int>(measured.size()) < o.budget && !left.empty()) {
        const int n = std::min<int>(o.batch, static_cast<int>(left.size()));
        if (!model.trained()) {
            for (int i = 0; i < n; ++i)
                if (measure(any())) return static_cast<int>(measured.size());
        } else {
            std::bernoulli_distribution explore(o.random_share);
            int plain = 0;
            for (int i = 0; i < n; ++i)
                plain += explore(rng);
            const size_t slots = static_cast<size_t>(n - plain);
            // The candidates: this batch's draws, or (reserve) as many of the unmeasured configs
            // as all batches so far have drawn; drawing from the pool stands for drawing from the
            // space, whose hit rate the pool shares.
            drawn += slots * static_cast<size_t>(o.candidates);
            size_t want = reserve ? drawn * left.size() / pool.configs.size()
                                  : slots * static_cast<size_t>(o.candidates);
            std::vector<size_t> cand(left.size());
            std::iota(cand.begin(), cand.end(), 0);
            std::shuffle(cand.begin(), cand.end(), rng);
            cand.resize(std::min(want, cand.size()));
            std::vector<Features> rows;
            for (size_t c : cand)
                rows.push_back(pool.configs[left[c]].features);
            const std::vector<double> score = model.predict(rows);
            std::vector<size_t> order(cand.size());
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(),
                             [&](size_t a, size_t b) { return score[a] > score[b]; });
            // Pool indices first: measuring shifts positions in `left`.
            std::vector<size_t> picks;
            for (size_t i = 0; i < slots && i < order.size(); ++i)
                picks.push_back(left[cand[order[i]]]);
            for (size_t p : picks) {
                size_t at =
                    static_cast<size_t>(std::find(left.begin(), left.end(), p) - left.begin());
                if (measure(at)) return static_cast<int>(measured.size());
            }
            for (int i = 0; i < plain && !left.empty(); ++i)
                if (measure(any())) return static_cast<int>(measured.size());
        }
        model.fit(measured);
    }
    return o.budget + 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{
        "Replays model-guided candidate selection over kiln_bench_search's recorded random "
        "searches: trials to 95% of the best with and without the reserve of scored candidates."};
    app.add_option("--dir", o.dir, "kiln_bench_search's directory (random.db, results.jsonl)")
        ->required();
    app.add_option("--results", o.results,
                   "the targets: kiln_bench_search's results (default: DIR/results.jsonl)");
    app.add_option("--layers", o.layers, "the layer set (JSON)")->capture_default_str();
    app.add_option("--seeds", o.seeds, "replays per layer and rule")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--budget", o.budget, "trials per replay")->capture_default_str();
    app.add_option("--batch", o.batch, "configs per batch")->capture_default_str();
    app.add_option("--candidates", o.candidates, "random draws scored per slot")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--random-share", o.random_share, "share of each batch picked at random")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    CLI11_PARSE(app, argc, argv);

    try {
        if (o.results.empty()) o.results = o.dir + "/results.jsonl";
        std::map<std::string, double> target;
        {
            std::ifstream in(o.results);
            if (!in) throw Error("results", o.results + ": cannot read");
            for (std::string line; std::getline(in, line);) {
                if (line.empty()) continue;
                const auto j = nlohmann::json::parse(line);
                const double share = j.at("settings").at("share").get<double>();
                target[j.at("id").get<std::string>()] = j.at("best_ms").get<double>() / share;
            }
        }
        auto db = Database::open(o.dir + "/random.db");
        const Target t = host_target();
        std::vector<Pool> pools;
        for (const Layer& l : load_layers(o.layers)) {
            if (!l.is_conv || !target.count(l.id)) continue;
            RecordFilter f;
            f.workload_key = l.to_workload().key();
            std::vector<Record> ok;
            for (Record& r : db->records(f))
                if (r.ok() && r.fingerprint.id() == t.fingerprint.id()) ok.push_back(std::move(r));
            Pool p{l.id, training_samples(*db, ok, t.fingerprint.id(), 1.0), target[l.id]};
            if (!p.configs.empty()) pools.push_back(std::move(p));
        }
        if (pools.empty())
            throw Error("dir", o.dir + ": no layer with both random-search records and a result");

        fmt::print(
            "| layer | configs | hits | expected | per-batch | reserve |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |\n");
        std::vector<double> per_batch, reserve;
        for (const Pool& p : pools) {
            double a = 0, b = 0;
            for (int s = 0; s < o.seeds; ++s) {
                a += replay(p, o, false, 1000 + static_cast<uint64_t>(s)) / double(o.seeds);
                b += replay(p, o, true, 1000 + static_cast<uint64_t>(s)) / double(o.seeds);
            }
            per_batch.push_back(a);
            reserve.push_back(b);
            const int n = static_cast<int>(p.configs.size());
            fmt::print("| {} | {} | {} | {:.0f} | {:.1f} | {:.1f} |\n", p.id, n, p.hits(),
                       double(n + 1) / (p.hits() + 1), a, b);
            std::fflush(stdout);
        }
        auto mean = [](const std::vector<double>& v) {
            return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
        };
        fmt::print(
            "\nMean trials per layer over {} seeds ({} layers; {} for a miss): per-batch {:.1f} "
            "(median over layers {:.1f}), reserve {:.1f} (median {:.1f}).\n",
            o.seeds, pools.size(), o.budget + 1, mean(per_batch), median(per_batch), mean(reserve),
            median(reserve));
    } catch (const std::exception& e) {
        fmt::print(stderr, "kiln_bench_replay: {}\n", e.what());
        return 2;
    }
    return 0;
}
