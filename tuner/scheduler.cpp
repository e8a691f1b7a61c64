// kiln/tuner/scheduler.cpp — the task scheduler (interface and the gain formula: scheduler.h).
#include "tuner/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace kiln {

TaskScheduler::TaskScheduler(std::vector<ScheduledTask> tasks, SchedulerOptions options)
    : tasks_(std::move(tasks)), options_(std::move(options)) {
    auto known = policies();
    if (std::find(known.begin(), known.end(), options_.policy) == known.end())
        throw Error("schedule", "unknown task schedule '" + options_.policy +
                                    "'; known: gradient, round-robin");
    for (ScheduledTask& t : tasks_) {
        if (t.best_ms > 0 && t.start_ms <= 0) t.start_ms = t.best_ms;
        if (t.best_ms > 0 && t.history.empty()) t.history.push_back({t.trials, t.best_ms});
    }
}

int TaskScheduler::next() {
    const int n = static_cast<int>(tasks_.size());
    if (options_.policy == "round-robin") {
        for (int i = 0; i < n; ++i) {
            int k = (round_robin_next_ + i) % n;
            if (!tasks_[k].exhausted) {
                round_robin_next_ = (k + 1) % n;
                return k;
            }
        }
        return -1;
    }
    // Warm-up: a task without a best gets a batch first, in order.
    for (int i = 0; i < n; ++i)
        if (!tasks_[i].exhausted && tasks_[i].best_ms <= 0 && tasks_[i].trials == 0) return i;
    int pick = -1;
    double best_gain = -1;
    for (int i = 0; i < n; ++i) {
        if (tasks_[i].exhausted) continue;
        double g = gain(i);
        if (g > best_gain) {
            best_gain = g;
            pick = i;
        }
    }
    return pick;
}

void TaskScheduler::update(int task, int trials, double best_ms) {
    ScheduledTask& t = tasks_.at(task);
    t.trials = trials;
    if (best_ms > 0) {
        if (t.start_ms <= 0) t.start_ms = best_ms;
        t.best_ms = t.best_ms > 0 ? std::min(t.best_ms, best_ms) : best_ms;
        t.history.push_back({trials, t.best_ms});
    }
}

double TaskScheduler::gain(int task) const {
    const ScheduledTask& t = tasks_.at(task);
    if (t.best_ms <= 0) return 0;
    // recent: the fall of the best over the last `window` trials, per trial.
    double recent = 0;
    if (t.history.size() > 1) {
        const auto& now = t.history.back();
        auto then = t.history.front();
        for (auto it = t.history.rbegin(); it != t.history.rend(); ++it)
            if (now.first - it->first >= options_.window) {
                then = *it;
                break;
            }
        if (now.first > then.first) recent = (then.second - now.second) / (now.first - then.first);
    }
    // headroom: a share of the task's own time, spent as it gets trials.
    double headroom = options_.headroom * t.best_ms;
    return t.count * (options_.alpha * recent + (1 - options_.alpha) * headroom / (t.trials + 1));
}

double TaskScheduler::estimate_ms() const {
    double sum = 0;
    for (const ScheduledTask& t : tasks_)
        sum += t.count * t.best_ms;
    return sum;
}

bool TaskScheduler::complete() const {
    return std::all_of(tasks_.begin(), tasks_.end(),
                       [](const ScheduledTask& t) { return t.best_ms > 0; });
}

double TaskScheduler::start_estimate_ms() const {
    double sum = 0;
    for (const ScheduledTask& t : tasks_)
        sum += t.count * t.start_ms;
    return sum;
}

}  // namespace kiln
