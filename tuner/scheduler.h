// kiln/tuner/scheduler.h — which task of a model gets the next batch of trials.
//
// A model's kernels are tasks (graph/tasks.h): a workload and how many times the model runs it.
// The model's kernel time is estimated as the sum over tasks of count x best ms. Trials should
// go where they lower that sum the most. The `gradient` policy estimates, per task, the
// milliseconds of model time one more trial buys:
//
//   gain = count x (alpha x recent + (1 - alpha) x headroom / (trials + 1))
//
// - `recent`: how fast the task's best fell over its last `window` trials, in ms per trial.
// - `headroom`: a share of the task's own best time (`headroom`, 20%), in ms: what tuning
//   could still take off it. The division by its trials makes that promise fade as it is
//   spent, so every task is eventually revisited in proportion to its weight. It is not
//   measured against other tasks' GFLOP/s: tasks of one op run different algorithms (Winograd
//   3x3 reaches several times the effective GFLOP/s of a 1x1), and such a comparison starves
//   the fastest algorithm's tasks although they still improve.
//
// Every task first gets one batch (its default config is measured first), so each has a best;
// then the task with the highest gain gets the next batch. `round_robin` gives each task a batch
// in turn, for comparison. The scheduler sees only numbers (bests, trials, counts): it does not
// measure, so it can be tested and compared on synthetic tasks.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kiln {

struct ScheduledTask {
    std::string name;     // the workload key
    int count = 1;        // times the model runs it
    double best_ms = 0;   // 0 = nothing measured yet
    double start_ms = 0;  // the first best seen (the default config's time): the untuned estimate
    int trials = 0;       // measured so far, earlier runs included
    bool exhausted = false;
    // (trials, best_ms) after each update, for `recent`.
    std::vector<std::pair<int, double>> history;
};

struct SchedulerOptions {
    std::string policy = "gradient";  // or "round-robin"
    double alpha = 0.5;               // weight of the recent improvement against the headroom
    int window = 16;                  // trials over which `recent` is measured
    double headroom = 0.2;            // share of its best time a task is assumed to be able to lose
};

class TaskScheduler {
  public:
    // Throws kiln::Error for an unknown policy.
    TaskScheduler(std::vector<ScheduledTask> tasks, SchedulerOptions options = {});

    // The index of the task to give the next batch, or -1 when every task is exhausted.
    int next();
    // After a batch of `task`: its new trial count and best (0 when still none ran correctly).
    void update(int task, int trials, double best_ms);
    void mark_exhausted(int task) { tasks_[task].exhausted = true; }

    // Sum over tasks of count x best ms; tasks with no best yet count 0, so the sum is
    // complete() only once every task has one.
    double estimate_ms() const;
    bool complete() const;
    // Sum over tasks of count x start_ms: the estimate before any tuning.
    double start_estimate_ms() const;
    // Of `task`: the gain per trial `gradient` assigns it now (0 before it has a best).
    double gain(int task) const;

    const std::vector<ScheduledTask>& tasks() const { return tasks_; }
    static std::vector<std::string> policies() { return {"gradient", "round-robin"}; }

  private:
    std::vector<ScheduledTask> tasks_;
    SchedulerOptions options_;
    int round_robin_next_ = 0;
};

}  // namespace kiln
