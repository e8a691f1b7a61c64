// kiln/tuner/tuner.cpp — the tuning loop of one workload (interface and contract: tuner.h).
//
// Round by round: the strategy proposes a batch of unmeasured configs (the space's default
// config goes first, so tuning never ends worse than untuned), the runner builds and measures
// them in child processes, the batch is committed in one transaction, the strategy learns.
#include "tuner/tuner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "core/hash.h"
#include "schedules/kernel.h"
#include "tuner/guide.h"

namespace kiln {

namespace {

// The seed unchanged for a fresh search; otherwise mixed (splitmix64) with the set of configs
// measured already, in an order-independent way.
uint64_t resume_seed(uint64_t seed, const std::unordered_set<uint64_t>& measured) {
    if (measured.empty()) return seed;
    uint64_t sum = 0;
    for (uint64_t h : measured)
        sum += h;
    uint64_t z = seed ^ (sum + 0x9e3779b97f4a7c15ull * measured.size());
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double cost_of(const Record& r) {
    return r.ok() ? r.median_ms : std::numeric_limits<double>::infinity();
}

// The configs the final comparison times: this machine's fastest ok records (same space
// version) and the space's default when it ran ok.
std::vector<Record> comparison_set(const std::vector<Record>& mine, const Config& default_config,
                                   int top) {
    std::vector<Record> ok;
    for (const Record& r : mine)
        if (r.ok()) ok.push_back(r);
    std::sort(ok.begin(), ok.end(),
              [](const Record& a, const Record& b) { return a.median_ms < b.median_ms; });
    std::vector<Record> set(ok.begin(), ok.begin() + std::min<size_t>(ok.size(), size_t(top)));
    auto in_set = [&](const Record& r) {
        return std::any_of(set.begin(), set.end(),
                           [&](const Record& s) { return s.config.hash() == r.config.hash(); });
    };
    for (const Record& r : ok)
        if (r.config.hash() == default_config.hash() && !in_set(r)) set.push_back(r);
    return set;
}

}  // namespace

void confirm_best(const Workload& w, const Target& t, Database& db, Runner& runner,
                  const TuneOptions& options, TuneResult& result, const std::atomic<bool>* stop);

TaskTuner::TaskTuner(const Workload& w, const Target& t, Database& db, Runner& runner,
                     const TuneOptions& options)
    : workload_(w),
      target_(t),
      db_(db),
      runner_(runner),
      options_(options),
      space_((w.validate(), find_space(w.op).space(w, t))) {
    if (!t.is_host)
        throw Error("target",
                    "tuning measures on this machine; '" + t.name + "' is not runnable here");
    if (options.batch_size <= 0) throw Error("batch", "batch size must be positive");

    // Warm start: everything this machine measured for this workload in this space version.
    std::vector<Config> known_configs;
    std::vector<double> known_ms;
    for (const Record& r : this_machines_records(db, w, t, space_)) {
        measured_.insert(r.config.hash());
        known_configs.push_back(r.config);
        known_ms.push_back(cost_of(r));
        if (r.ok() && (!result_.best || r.median_ms < result_.best->median_ms)) result_.best = r;
    }
    result_.known = static_cast<int>(known_configs.size());

    // The cost model, trained on what the database already knows of this op on this target.
    if (options.cost_model && can_featurize(w.op)) {
        guide_ = std::make_unique<Guide>(w, t, db, options.model, options.other_machine_weight);
        guide_->learn_from_database(options.min_samples);
    }
    // A rerun must not replay the draws of the run it continues: with the same seed its first
    // proposals are the configs that run measured, and a known prefix of 64 draws reads as an
    // exhausted space (a random slot gives up after 64 misses in a row): a resumed 1000-trial
    // random search stopped after one new trial. The seed is mixed with what is measured already,
    // so the same database and seed still propose the same configs.
    SearchOptions search = options.search;
    search.seed = resume_seed(options.search.seed, measured_);
    strategy_ =
        make_search(options.strategy, space_, w, search, guide_ ? guide_->scorer() : Scorer());
    if (!known_configs.empty()) strategy_->observe(known_configs, known_ms);
}

TaskTuner::~TaskTuner() = default;

std::vector<Record> TaskTuner::step(int n, const std::atomic<bool>* stop) {
    if (n <= 0) n = options_.batch_size;
    std::vector<Config> batch;
    if (options_.default_first && !measured_.count(space_.default_config.hash()))
        batch.push_back(space_.default_config);
    std::unordered_set<uint64_t> exclude = measured_;
    if (!batch.empty()) exclude.insert(batch[0].hash());
    if (static_cast<int>(batch.size()) < n) {
        auto more = strategy_->propose(n - static_cast<int>(batch.size()), exclude);
        batch.insert(batch.end(), more.begin(), more.end());
    }
    if (batch.empty()) {
        exhausted_ = true;
        return {};
    }

    runner_.set_stop_flag(stop);
    std::vector<Record> records = runner_.measure(workload_, batch, target_);
    // Records the runner did not reach (it was stopped) come back fewer; they stay unmeasured.
    interrupted_ = records.size() < batch.size();
    db_.add(records);
    std::vector<Config> configs;
    std::vector<double> ms;
    for (const Record& r : records) {
        measured_.insert(r.config.hash());
        configs.push_back(r.config);
        ms.push_back(cost_of(r));
        ++result_.measured;
        if (!r.ok()) ++result_.failures;
        if (r.ok() && (!result_.best || r.median_ms < result_.best->median_ms)) result_.best = r;
    }
    strategy_->observe(configs, ms);
    if (guide_) guide_->learn(records, options_.min_samples);
    return records;
}

const TuneResult& TaskTuner::finish(bool confirm, const std::atomic<bool>* stop) {
    if (confirm && options_.confirm_top > 1)
        confirm_best(workload_, target_, db_, runner_, options_, result_, stop);
    if (guide_ && guide_->trained()) {
        result_.model_samples = guide_->samples();
        result_.transfer_samples = guide_->transfer_samples();
        if (options_.model_path != "-") {
            result_.model_path = options_.model_path.empty()
                                     ? default_model_path(db_.path(), workload_.op, target_)
                                     : options_.model_path;
            guide_->save(result_.model_path);
        }
    }
    return result_;
}

TuneResult tune(const Workload& w, const Target& t, Database& db, Runner& runner,
                const TuneOptions& options,
                const std::function<void(const TuneProgress&)>& on_progress,
                const std::atomic<bool>* stop) {
    if (options.trials <= 0 && options.time_budget_s <= 0)
        throw Error("trials", "give a number of trials or a time budget");
    const Clock::time_point start = Clock::now();
    TaskTuner tuner(w, t, db, runner, options);
    std::string stop_reason;

    TuneProgress progress;
    progress.trials_planned = options.trials;
    progress.known = tuner.result().known;
    auto report = [&](bool improved) {
        const TuneResult& result = tuner.result();
        progress.trials_done = result.measured;
        progress.failures = result.failures;
        progress.elapsed_s = seconds_since(start);
        progress.best_ms = result.best ? result.best->median_ms : 0;
        progress.best_gflops = result.best ? result.best->gflops() : 0;
        progress.improved = improved;
        progress.eta_s = -1;
        if (result.measured > 0) {
            double per_trial = progress.elapsed_s / result.measured;
            double by_trials =
                options.trials > 0 ? per_trial * (options.trials - result.measured) : -1;
            double by_time = options.time_budget_s > 0
                                 ? std::max(0.0, options.time_budget_s - progress.elapsed_s)
                                 : -1;
            if (by_trials >= 0 && by_time >= 0)
                progress.eta_s = std::min(by_trials, by_time);
            else
                progress.eta_s = std::max(by_trials, by_time);
        }
        if (on_progress) on_progress(progress);
    };
    report(false);

    int since_improvement = 0;
    for (;;) {
        const int done = tuner.result().measured;
        if (stop && stop->load()) {
            stop_reason = "interrupted";
            break;
        }
        if (options.trials > 0 && done >= options.trials) {
            stop_reason = "trials";
            break;
        }
        if (options.time_budget_s > 0 && seconds_since(start) >= options.time_budget_s) {
            stop_reason = "time";
            break;
        }
        if (options.early_stop > 0 && since_improvement >= options.early_stop) {
            stop_reason = "early stop";
            break;
        }
        int n = options.batch_size;
        if (options.trials > 0) n = std::min(n, options.trials - done);
        double running_best = tuner.result().best ? tuner.result().best->median_ms
                                                  : std::numeric_limits<double>::infinity();
        const std::vector<Record> records = tuner.step(n, stop);
        if (tuner.exhausted()) {
            stop_reason = "space exhausted";
            break;
        }
        bool improved = false;
        for (const Record& r : records) {
            ++since_improvement;
            if (r.ok() && r.median_ms < running_best) {
                running_best = r.median_ms;
                improved = true;
                since_improvement = 0;
            }
        }
        report(improved);
        if (tuner.interrupted()) {
            stop_reason = "interrupted";
            break;
        }
    }
    TuneResult result = tuner.finish(stop_reason != "interrupted", stop);
    result.stop_reason = stop_reason;
    return result;
}

std::vector<Record> this_machines_records(Database& db, const Workload& w, const Target& t,
                                          const ScheduleSpace& space) {
    const std::string fingerprint = t.fingerprint.id();
    RecordFilter filter;
    filter.workload_key = w.key();
    filter.target_halide = t.halide;
    std::vector<Record> mine;
    for (Record& r : db.records(filter))
        if (r.fingerprint.id() == fingerprint && r.space_version == space.version)
            mine.push_back(std::move(r));
    return mine;
}

std::string target_hash(const Target& t) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(t.halide)));
    return std::string(hash).substr(0, 8);
}

std::string default_model_path(const std::string& db_path, const std::string& op, const Target& t) {
    return db_path + ".models/" + op + "-" + target_hash(t) + ".json";
}

void confirm_best(const Workload& w, const Target& t, Database& db, Runner& runner,
                  const TuneOptions& options, TuneResult& result, const std::atomic<bool>* stop) {
    const ScheduleSpace space = find_space(w.op).space(w, t);
    const std::string fingerprint = t.fingerprint.id();
    std::unordered_set<uint64_t> compared;
    // A comparison can leave its winner slower than a record it did not include (the machine
    // was quieter when that one was measured): that record joins the next comparison, with the
    // winner. A few passes settle it.
    for (int pass = 0; pass < 3; ++pass) {
        std::vector<Record> set = comparison_set(this_machines_records(db, w, t, space),
                                                 space.default_config, options.confirm_top);
        bool anything_new = std::any_of(set.begin(), set.end(), [&](const Record& r) {
            return !compared.count(r.config.hash());
        });
        if (set.size() < 2 || !anything_new || (stop && stop->load())) return;

        std::vector<Config> configs;
        for (const Record& r : set)
            configs.push_back(r.config);
        std::vector<Record> timed = runner.compare(w, configs, t, options.confirm_rounds);
        // A comparison that could not run at all (its child died) changes nothing: the
        // records keep their first measurements.
        if (std::none_of(timed.begin(), timed.end(), [](const Record& r) { return r.ok(); }))
            return;
        for (int child = 1; child < options.confirm_children && !(stop && stop->load()); ++child) {
            std::vector<Config> order = configs;
            if (child % 2) std::reverse(order.begin(), order.end());
            std::vector<Record> again = runner.compare(w, order, t, options.confirm_rounds);
            if (child % 2) std::reverse(again.begin(), again.end());
            for (size_t i = 0; i < timed.size() && i < again.size(); ++i) {
                if (!again[i].ok()) continue;
                if (!timed[i].ok()) {
                    timed[i] = again[i];
                    continue;
                }
                timed[i].median_ms = std::min(timed[i].median_ms, again[i].median_ms);
                timed[i].min_ms = std::min(timed[i].min_ms, again[i].min_ms);
                timed[i].repeats += again[i].repeats;
            }
        }
        for (size_t i = 0; i < timed.size(); ++i) {
            // The record keeps its compile time, and the space version it was measured in.
            timed[i].compile_seconds = set[i].compile_seconds;
            timed[i].space_version = set[i].space_version;
            compared.insert(timed[i].config.hash());
        }
        result.confirmed += static_cast<int>(db.update_measurements(timed));
        result.best = db.best(w.key(), t.halide, fingerprint);
    }
}

}  // namespace kiln
