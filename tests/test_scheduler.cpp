// The task scheduler on synthetic tasks: each task's best falls along a known curve as it gets
// trials, so the policies can be compared without measuring anything.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tuner/scheduler.h"

using namespace kiln;

namespace {

// A task whose best after t trials is floor + (start - floor) * exp(-t / tau).
struct Curve {
    double start_ms, floor_ms, tau;
    int count;
    double at(int trials) const {
        return floor_ms + (start_ms - floor_ms) * std::exp(-trials / tau);
    }
};

// A model shaped like a CNN: four heavy layers that tune slowly, repeated, and many light ones
// that reach their floor in a few batches. Every floor is the same throughput (FLOPs per ms).
std::vector<Curve> model_curves() {
    std::vector<Curve> c;
    for (int i = 0; i < 4; ++i)
        c.push_back({2.0 + 0.5 * i, 1.0 + 0.25 * i, 60.0, 3});
    for (int i = 0; i < 16; ++i)
        c.push_back({0.10 + 0.01 * i, 0.07 + 0.007 * i, 10.0, 1});
    return c;
}

TaskScheduler make_scheduler(const std::vector<Curve>& curves, const std::string& policy) {
    std::vector<ScheduledTask> tasks;
    for (size_t i = 0; i < curves.size(); ++i) {
        ScheduledTask t;
        t.name = "task" + std::to_string(i);
        t.count = curves[i].count;
        tasks.push_back(t);
    }
    SchedulerOptions o;
    o.policy = policy;
    return TaskScheduler(tasks, o);
}

// Runs `total` trials in batches of `batch`; returns the estimate after each batch, from the
// batch on which every task has a best.
std::vector<std::pair<int, double>> simulate(const std::vector<Curve>& curves,
                                             const std::string& policy, int total, int batch) {
    TaskScheduler s = make_scheduler(curves, policy);
    std::vector<int> trials(curves.size(), 0);
    std::vector<std::pair<int, double>> trace;
    for (int done = 0; done < total; done += batch) {
        int k = s.next();
        EXPECT_GE(k, 0);
        if (k < 0) break;
        trials[k] += batch;
        s.update(k, trials[k], curves[k].at(trials[k]));
        if (s.complete()) trace.push_back({done + batch, s.estimate_ms()});
    }
    return trace;
}

}  // namespace

TEST(Scheduler, EveryTaskGetsABatchFirst) {
    auto curves = model_curves();
    TaskScheduler s = make_scheduler(curves, "gradient");
    for (size_t i = 0; i < curves.size(); ++i) {
        int k = s.next();
        ASSERT_EQ(k, static_cast<int>(i));
        s.update(k, 8, curves[k].at(8));
    }
    EXPECT_GT(s.start_estimate_ms(), 0);
    EXPECT_LE(s.estimate_ms(), s.start_estimate_ms());
}

// The measure: the trials the gradient policy needs to reach round-robin's final
// estimate, against round-robin's own, at most 60%.
TEST(Scheduler, GradientReachesRoundRobinsResultInFewerTrials) {
    auto curves = model_curves();
    const int total = 640, batch = 8;
    auto rr = simulate(curves, "round-robin", total, batch);
    auto gr = simulate(curves, "gradient", total, batch);
    const double target = rr.back().second;
    int needed = -1;
    for (auto [trials, estimate] : gr)
        if (estimate <= target) {
            needed = trials;
            break;
        }
    ASSERT_GT(needed, 0) << "gradient never reached round-robin's " << target << " ms; ended at "
                         << gr.back().second;
    std::printf(
        "round-robin: %.3f ms after %d trials; gradient reached it after %d, ended at "
        "%.3f ms\n",
        target, total, needed, gr.back().second);
    EXPECT_LE(needed, 0.6 * total) << "gradient needed " << needed << " trials";
    EXPECT_LT(gr.back().second, target);
}

// Trials follow weight: of two tasks that improve alike, the one the model runs three times gets
// more. (The scheduler sees no GFLOP/s: ranking tasks by it starved ResNet-50's Winograd
// layers, whose effective GFLOP/s is the model's highest, while they still improved.)
TEST(Scheduler, TheHeavierOfTwoLikeTasksGetsMore) {
    auto curves = model_curves();
    curves[1] = curves[0];
    curves[1].count = 1;
    TaskScheduler s = make_scheduler(curves, "gradient");
    std::vector<int> trials(curves.size(), 0);
    for (int done = 0; done < 640; done += 8) {
        int k = s.next();
        ASSERT_GE(k, 0);
        trials[k] += 8;
        s.update(k, trials[k], curves[k].at(trials[k]));
    }
    EXPECT_GT(trials[0], trials[1]);
    EXPECT_GT(trials[0], 640 / static_cast<int>(curves.size()));  // above round-robin's share
}

TEST(Scheduler, ExhaustedTasksAreSkipped) {
    auto curves = model_curves();
    for (const std::string policy : {"gradient", "round-robin"}) {
        TaskScheduler s = make_scheduler(curves, policy);
        for (size_t i = 0; i < curves.size(); ++i)
            if (i != 5) s.mark_exhausted(static_cast<int>(i));
        for (int round = 0; round < 4; ++round) {
            int k = s.next();
            EXPECT_EQ(k, 5) << policy;
            s.update(k, (round + 1) * 8, curves[5].at((round + 1) * 8));
        }
        s.mark_exhausted(5);
        EXPECT_EQ(s.next(), -1) << policy;
    }
}

// A resumed run starts from the database's bests: no warm-up batch for tasks that have one,
// and the heaviest task with the most headroom goes first.
TEST(Scheduler, ResumedTasksNeedNoWarmUp) {
    std::vector<ScheduledTask> tasks(2);
    tasks[0] = {"light", 1, 0.11, 0.12, 64, false, {}};
    tasks[1] = {"heavy", 4, 2.5, 3.0, 64, false, {}};
    TaskScheduler s(tasks);
    EXPECT_EQ(s.next(), 1);
    EXPECT_GT(s.gain(1), s.gain(0));
    EXPECT_DOUBLE_EQ(s.start_estimate_ms(), 0.12 + 4 * 3.0);
    EXPECT_DOUBLE_EQ(s.estimate_ms(), 0.11 + 4 * 2.5);
}

TEST(Scheduler, UnknownPolicyIsAnError) {
    EXPECT_THROW(TaskScheduler({}, SchedulerOptions{"fastest-first"}), Error);
}
