// kiln/tuner/tuner.h — tuning one workload: propose, build, measure, record, repeat.
//
// Warm start from the database: configs already measured for this workload on this machine (same
// space version) are never measured again, and their results seed the search. Each measured
// batch is written in one transaction, so stopping anywhere (Ctrl-C, a kill) loses at most the
// batch in flight, and running again continues. The last step times the leading configs again
// side by side (TuneOptions::confirm_top), so the best is not an accident of timing.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "core/workload.h"
#include "cost_model/model.h"
#include "db/database.h"
#include "schedules/space.h"
#include "tuner/runner.h"
#include "tuner/search.h"

namespace kiln {

struct TuneOptions {
    int trials = 64;           // new candidates to measure; 0 = until the time budget
    double time_budget_s = 0;  // wall-clock budget; 0 = none
    int batch_size = 8;        // candidates built and measured per round
    int early_stop = 0;        // stop after this many trials without a better best; 0 = off
    // At the end, the fastest `confirm_top` configs of this machine (and the default config)
    // are timed again against each other, `confirm_rounds` interleaved rounds in each of
    // `confirm_children` processes, and their records take the new figures: the best is then chosen
    // from one comparison, not from measurements taken at different moments of a busy machine. 0 or
    // 1 = off.
    int confirm_top = 4;
    int confirm_rounds = 5;
    // The comparison runs in this many children one after the other, the configs in reverse
    // order in every second one; each config keeps its lowest median (and lowest minimum).
    // Interference only ever slows a run, so a burst that hits one child's rounds of a config
    // does not decide the winner.
    int confirm_children = 2;
    // The cost model (docs/COST_MODEL.md): trained before the first round on the records of
    // this op on this target in the database (every workload; records of another machine with
    // the same ISA weigh other_machine_weight), refit after every batch; the search then keeps
    // the best-predicted of many candidates (SearchOptions::candidates_per_slot) and a random
    // share. Used when the op's kernels can be featurized and at least min_samples records exist.
    bool cost_model = true;
    ModelOptions model;
    double other_machine_weight = 0.3;
    int min_samples = 8;
    // Where the model is saved when tuning ends: "" = beside the database file
    // (<db>.models/<op>-<target hash>.json), "-" = not saved.
    std::string model_path;
    // Measure the space's default config in the first batch (so tuning never ends worse than
    // untuned). Off only to compare search strategies on equal terms (kiln_bench_search).
    bool default_first = true;
    std::string strategy = "evolutionary";
    SearchOptions search;
};

struct TuneProgress {
    int trials_done = 0;     // measured in this run
    int trials_planned = 0;  // TuneOptions::trials (0 when only a time budget applies)
    int failures = 0;        // non-ok records in this run
    int known = 0;           // records found in the database at the start
    double best_ms = 0;      // best so far including known records; 0 = none yet
    double best_gflops = 0;
    double elapsed_s = 0;
    double eta_s = -1;      // < 0 when unknown
    bool improved = false;  // the last batch improved the best
};

struct TuneResult {
    int measured = 0;
    int failures = 0;
    int known = 0;
    std::optional<Record> best;
    int confirmed = 0;  // records timed again in the final comparison
    // The cost model: samples it was last trained on, how many came from other workloads
    // (transfer), and where it was saved ("" when no model was used or saved).
    int model_samples = 0;
    int transfer_samples = 0;
    std::string model_path;
    std::string stop_reason;  // "trials", "time", "early stop", "interrupted", "space exhausted"
};

class Guide;

// The tuning of one workload, one batch at a time: what tune() runs in a loop, and what the
// task scheduler of a whole model (tuner/scheduler.h) steps task by task. The constructor warm
// starts from the database and trains the cost model; each step() proposes, measures and
// commits one batch; finish() runs the final comparison and saves the model. TuneOptions'
// budgets (trials, time, early stop) are the caller's to apply.
class TaskTuner {
  public:
    TaskTuner(const Workload& w, const Target& t, Database& db, Runner& runner,
              const TuneOptions& options);
    ~TaskTuner();
    TaskTuner(const TaskTuner&) = delete;
    TaskTuner& operator=(const TaskTuner&) = delete;

    // Measures up to `n` new configs (the space's default first, unless measured already) and
    // commits them in one transaction. Returns the records measured: fewer than `n` when
    // `stop` was set (the rest stay unmeasured) or the space ran out (exhausted() is then true).
    std::vector<Record> step(int n, const std::atomic<bool>* stop = nullptr);
    bool exhausted() const { return exhausted_; }
    // The last step() was stopped before it measured its whole batch.
    bool interrupted() const { return interrupted_; }
    // Measured, failures and known so far, and the best record (this machine's, this space
    // version's, known records included).
    const TuneResult& result() const { return result_; }
    const Workload& workload() const { return workload_; }
    // The final comparison (when `confirm` and TuneOptions::confirm_top > 1) and saving the
    // cost model; fills the result's confirmed, model and best fields.
    const TuneResult& finish(bool confirm, const std::atomic<bool>* stop = nullptr);

  private:
    Workload workload_;
    Target target_;
    Database& db_;
    Runner& runner_;
    TuneOptions options_;
    ScheduleSpace space_;
    std::unordered_set<uint64_t> measured_;
    std::unique_ptr<Guide> guide_;
    std::unique_ptr<SearchStrategy> strategy_;
    TuneResult result_;
    bool exhausted_ = false;
    bool interrupted_ = false;
};

// `stop` (may be null) is polled between candidates: set it from a signal handler to finish the
// running batch, commit it and return.
TuneResult tune(const Workload& w, const Target& t, Database& db, Runner& runner,
                const TuneOptions& options,
                const std::function<void(const TuneProgress&)>& on_progress = nullptr,
                const std::atomic<bool>* stop = nullptr);

// The records a tuning run of `w` on `t` builds on: this machine's (same fingerprint), measured
// in `space`'s version. The warm start, the final comparison and `kiln tune`'s scheduler read
// these.
std::vector<Record> this_machines_records(Database& db, const Workload& w, const Target& t,
                                          const ScheduleSpace& space);

// The first 8 hex digits of a hash of the target's Halide string: files kept per target
// beside a database (models, tuning logs) carry it in their names.
std::string target_hash(const Target& t);

// Where tune() saves the cost model of `op` on `t` for the database at `db_path`.
std::string default_model_path(const std::string& db_path, const std::string& op, const Target& t);

}  // namespace kiln
