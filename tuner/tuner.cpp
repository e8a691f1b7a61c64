// kiln/tuner/tuner.cpp — the tuning loop of one workload (interface and contract: tuner.h).
//
// Round by round: the strategy proposes a batch of unmeasured configs (the space's default
// config goes first, so tuning never ends worse than untuned), the runner builds and measures
// them in child processes, the batch is committed in one transaction, the strategy learns.
#include "tuner/tuner.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "schedules/kernel.h"

namespace kiln {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double cost_of(const Record& r) {
    return r.ok() ? r.median_ms : std::numeric_limits<double>::infinity();
}

}  // namespace

TuneResult tune(const Workload& w, const Target& t, Database& db, Runner& runner,
                const TuneOptions& options,
                const std::function<void(const TuneProgress&)>& on_progress,
                const std::atomic<bool>* stop) {
    if (!t.is_host)
        throw Error("target",
                    "tuning measures on this machine; '" + t.name + "' is not runnable here");
    if (options.trials <= 0 && options.time_budget_s <= 0)
        throw Error("trials", "give a number of trials or a time budget");
    if (options.batch_size <= 0) throw Error("batch", "batch size must be positive");
    w.validate();
    const ScheduleSpace space = find_space(w.op).space(w, t);
    const std::string fingerprint = t.fingerprint.id();
    const Clock::time_point start = Clock::now();

    // Warm start: everything this machine measured for this workload in this space version.
    RecordFilter filter;
    filter.workload_key = w.key();
    filter.target_halide = t.halide;
    std::vector<Config> known_configs;
    std::vector<double> known_ms;
    std::unordered_set<uint64_t> measured;
    TuneResult result;
    for (const Record& r : db.records(filter)) {
        if (r.fingerprint.id() != fingerprint || r.space_version != space.version) continue;
        measured.insert(r.config.hash());
        known_configs.push_back(r.config);
        known_ms.push_back(cost_of(r));
        if (r.ok() && (!result.best || r.median_ms < result.best->median_ms)) result.best = r;
    }
    result.known = static_cast<int>(known_configs.size());

    auto strategy = make_search(options.strategy, space, w, options.search);
    if (!known_configs.empty()) strategy->observe(known_configs, known_ms);

    TuneProgress progress;
    progress.trials_planned = options.trials;
    progress.known = result.known;
    auto report = [&](bool improved) {
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
        if (stop && stop->load()) {
            result.stop_reason = "interrupted";
            break;
        }
        if (options.trials > 0 && result.measured >= options.trials) {
            result.stop_reason = "trials";
            break;
        }
        if (options.time_budget_s > 0 && seconds_since(start) >= options.time_budget_s) {
            result.stop_reason = "time";
            break;
        }
        if (options.early_stop > 0 && since_improvement >= options.early_stop) {
            result.stop_reason = "early stop";
            break;
        }
        int n = options.batch_size;
        if (options.trials > 0) n = std::min(n, options.trials - result.measured);

        std::vector<Config> batch;
        if (!measured.count(space.default_config.hash())) batch.push_back(space.default_config);
        std::unordered_set<uint64_t> exclude = measured;
        if (!batch.empty()) exclude.insert(batch[0].hash());
        if (static_cast<int>(batch.size()) < n) {
            auto more = strategy->propose(n - static_cast<int>(batch.size()), exclude);
            batch.insert(batch.end(), more.begin(), more.end());
        }
        if (batch.empty()) {
            result.stop_reason = "space exhausted";
            break;
        }

        runner.set_stop_flag(stop);
        std::vector<Record> records = runner.measure(w, batch, t);
        // Records the runner did not reach (it was stopped) come back fewer; they stay
        // unmeasured.
        db.add(records);
        std::vector<Config> configs;
        std::vector<double> ms;
        bool improved = false;
        for (const Record& r : records) {
            measured.insert(r.config.hash());
            configs.push_back(r.config);
            ms.push_back(cost_of(r));
            ++result.measured;
            ++since_improvement;
            if (!r.ok()) ++result.failures;
            if (r.ok() && (!result.best || r.median_ms < result.best->median_ms)) {
                result.best = r;
                improved = true;
                since_improvement = 0;
            }
        }
        strategy->observe(configs, ms);
        report(improved);
        if (records.size() < batch.size()) {
            result.stop_reason = "interrupted";
            break;
        }
    }
    return result;
}

}  // namespace kiln
