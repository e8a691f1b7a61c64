// The process runner: every way a candidate can end becomes the right record.
//
// The candidates that misbehave come from the test plugin (tests/plugins/faulty_op.cpp), loaded
// only by the `kiln measure-one` children: its op `test_faulty` segfaults, aborts, hangs, answers
// wrong or fails to compile on request. Real kernels (a small conv2d and dense) go through the
// same runner. Every case ends by checking that no child is left behind, not even as a zombie.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/workload.h"
#include "db/record.h"
#include "schedules/kernel.h"
#include "targets/target.h"
#include "test_util.h"
#include "tuner/load.h"
#include "tuner/runner.h"

namespace kiln {
namespace {

RunnerOptions faulty_options() {
    RunnerOptions o;
    o.measure_binary = KILN_BINARY;
    o.plugins = {KILN_TEST_PLUGIN};
    o.compile_timeout_s = 30;
    o.run_timeout_s = 2;
    o.measure.min_time_s = 0.05;
    o.measure.min_repeats = 3;
    o.measure.threads = 1;
    return o;
}

// The op lives only in the plugin, which this process never loads: the runner must not need it.
Workload faulty_workload() {
    Workload w;
    w.op = "test_faulty";
    w.params["n"] = {64};
    return w;
}

Config behaviour(const std::string& b) {
    Config c;
    c.set("behaviour", b);
    return c;
}

void expect_no_children_left() {
    int status = 0;
    errno = 0;
    EXPECT_EQ(waitpid(-1, &status, WNOHANG), -1) << "a child is still running or unreaped";
    EXPECT_EQ(errno, ECHILD);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(Runner, EveryFailureModeBecomesItsRecord) {
    auto runner = make_process_runner(faulty_options());
    std::vector<std::string> behaviours = {"ok",    "segfault",      "abort", "hang",
                                           "wrong", "compile_error", "slow"};
    std::vector<Config> configs;
    for (const auto& b : behaviours)
        configs.push_back(behaviour(b));
    Target host = host_target();

    auto start = std::chrono::steady_clock::now();
    std::vector<Record> r = runner->measure(faulty_workload(), configs, host);
    double elapsed = seconds_since(start);

    ASSERT_EQ(r.size(), configs.size());
    const RecordStatus expected[] = {
        RecordStatus::ok,      RecordStatus::runtime_error, RecordStatus::runtime_error,
        RecordStatus::timeout, RecordStatus::wrong_result,  RecordStatus::compile_error,
        RecordStatus::ok};
    for (size_t i = 0; i < r.size(); ++i) {
        SCOPED_TRACE(behaviours[i] + ": " + r[i].error);
        EXPECT_EQ(r[i].config, configs[i]);
        EXPECT_EQ(to_string(r[i].status), to_string(expected[i]));
        EXPECT_EQ(r[i].workload, faulty_workload());
        EXPECT_EQ(r[i].target_name, "host");
        EXPECT_EQ(r[i].target_halide, host.halide);
        EXPECT_EQ(r[i].fingerprint, host_fingerprint());
        EXPECT_EQ(r[i].space_version, 7);  // reported by the child, which has the plugin
        EXPECT_FALSE(r[i].kiln_version.empty());
        EXPECT_TRUE(std::regex_match(r[i].time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
            << r[i].time;
        if (r[i].ok()) {
            // No error; at most the note of a timing beside other tests' processes.
            EXPECT_TRUE(r[i].error.empty() ||
                        r[i].error.rfind("timed while other processes kept", 0) == 0)
                << r[i].error;
            EXPECT_GE(r[i].repeats, 3);
            EXPECT_GT(r[i].min_ms, 0);
            EXPECT_LE(r[i].min_ms, r[i].median_ms);
        } else {
            EXPECT_EQ(r[i].repeats, 0);
            EXPECT_EQ(r[i].median_ms, 0);
        }
    }
    EXPECT_NE(r[1].error.find("killed by SIGSEGV"), std::string::npos);
    EXPECT_NE(r[2].error.find("killed by SIGABRT"), std::string::npos);
    EXPECT_EQ(r[3].error, "no answer within 2 s (run)");
    EXPECT_NE(r[4].error.find("relative error"), std::string::npos);
    EXPECT_NE(r[5].error.find("compile_error requested"), std::string::npos);
    // Sleeping 50 ms per run: the timing is of the kernel, not of the protocol around it.
    EXPECT_GT(r[6].median_ms, 45);
    EXPECT_LT(r[6].median_ms, 150);
    EXPECT_GE(r[6].min_ms, 50);
    // One hang costs its run timeout, the rest a few process starts.
    EXPECT_LT(elapsed, 2 + 8.0);
    expect_no_children_left();
}

// The final comparison: one child times every config in interleaved rounds; a config that
// fails keeps its own status and the others are still timed.
TEST(Runner, CompareTimesConfigsSideBySide) {
    auto runner = make_process_runner(faulty_options());
    std::vector<Config> configs = {behaviour("slow"), behaviour("wrong"), behaviour("ok"),
                                   behaviour("compile_error")};
    std::vector<Record> r = runner->compare(faulty_workload(), configs, host_target(), 3);
    ASSERT_EQ(r.size(), configs.size());
    for (size_t i = 0; i < r.size(); ++i) {
        SCOPED_TRACE(configs[i].to_string() + ": " + r[i].error);
        EXPECT_EQ(r[i].config, configs[i]);
        EXPECT_EQ(r[i].space_version, 7);
    }
    EXPECT_EQ(to_string(r[0].status), "ok");
    EXPECT_EQ(to_string(r[1].status), "wrong_result");
    EXPECT_EQ(to_string(r[2].status), "ok");
    EXPECT_EQ(to_string(r[3].status), "compile_error");
    // 3 rounds of at least min_repeats runs each.
    EXPECT_GE(r[0].repeats, 9);
    EXPECT_GE(r[2].repeats, 9);
    EXPECT_GE(r[0].min_ms, 50);
    EXPECT_LT(r[2].median_ms, 5);
    EXPECT_LE(r[2].min_ms, r[2].median_ms);
    expect_no_children_left();
}

// A config that kills the comparison's child takes the others with it: every record says so.
TEST(Runner, CompareChildThatDiesFailsEveryConfig) {
    auto runner = make_process_runner(faulty_options());
    std::vector<Record> r = runner->compare(
        faulty_workload(), {behaviour("ok"), behaviour("segfault")}, host_target(), 2);
    ASSERT_EQ(r.size(), 2u);
    for (const Record& rec : r) {
        EXPECT_EQ(to_string(rec.status), "runtime_error");
        EXPECT_NE(rec.error.find("killed by SIGSEGV"), std::string::npos) << rec.error;
    }
    expect_no_children_left();
}

// Compiled children wait in a queue while another is measured; the run timeout starts at their
// own "go", so a long wait behind a hanging candidate is not held against them.
TEST(Runner, QueuedChildrenWaitWithoutADeadline) {
    RunnerOptions o = faulty_options();
    o.parallel_builds = 3;
    o.run_timeout_s = 1;
    auto runner = make_process_runner(o);
    auto start = std::chrono::steady_clock::now();
    auto r =
        runner->measure(faulty_workload(),
                        {behaviour("hang"), behaviour("slow"), behaviour("slow")}, host_target());
    double elapsed = seconds_since(start);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(to_string(r[0].status), "timeout");
    EXPECT_EQ(to_string(r[1].status), "ok") << r[1].error;
    EXPECT_EQ(to_string(r[2].status), "ok") << r[2].error;
    // Measured one after the other: the hang's second, then 5 runs of 50 ms each.
    EXPECT_GT(elapsed, 1.0 + 2 * 0.25);
    expect_no_children_left();
}

TEST(Runner, CompileTimeoutKillsTheChild) {
    RunnerOptions o = faulty_options();
    o.compile_timeout_s = 0.001;  // less than it takes the child to start
    auto r = make_process_runner(o)->measure(faulty_workload(), {behaviour("ok")}, host_target());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(to_string(r[0].status), "timeout");
    EXPECT_EQ(r[0].error, "no answer within 0.001 s (compile)");
    expect_no_children_left();
}

TEST(Runner, ChildThatCannotLoadItsPluginIsACompileError) {
    RunnerOptions o = faulty_options();
    o.plugins = {std::string(KILN_SOURCE_DIR) + "/README.md"};  // readable, not a library
    auto r = make_process_runner(o)->measure(faulty_workload(), {behaviour("ok")}, host_target());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(to_string(r[0].status), "compile_error");
    EXPECT_NE(r[0].error.find("exited with code 2"), std::string::npos) << r[0].error;
    EXPECT_NE(r[0].error.find("cannot load"), std::string::npos) << r[0].error;
    expect_no_children_left();
}

TEST(Runner, RealKernelsAreMeasured) {
    RunnerOptions o;
    o.measure_binary = KILN_BINARY;
    o.run_timeout_s = 30;
    o.measure.min_time_s = 0.02;
    o.measure.threads = 1;
    auto runner = make_process_runner(o);
    Target host = host_target();
    for (const auto& [op, shape] :
         {std::pair<std::string, std::string>{"conv2d", "c=4,h=8,w=8,k=8,r=3,s=3,pad=1"},
          {"dense", "m=8,n=16,k=16"}}) {
        SCOPED_TRACE(op);
        Workload w = Workload::from_shape(op, shape);
        ScheduleSpace space = find_space(op).space(w, host);
        std::vector<Config> configs = {space.default_config};
        std::mt19937_64 rng(3);
        while (configs.size() < 3) {
            Config c = space.sample(rng);
            if (std::find(configs.begin(), configs.end(), c) == configs.end()) configs.push_back(c);
        }
        auto r = runner->measure(w, configs, host);
        ASSERT_EQ(r.size(), 3u);
        for (size_t i = 0; i < r.size(); ++i) {
            SCOPED_TRACE(configs[i].to_string() + ": " + r[i].error);
            EXPECT_EQ(to_string(r[i].status), "ok");
            EXPECT_EQ(r[i].config, configs[i]);
            EXPECT_EQ(r[i].space_version, space.version);
            EXPECT_GT(r[i].compile_seconds, 0);
            EXPECT_GT(r[i].min_ms, 0);
            EXPECT_LE(r[i].min_ms, r[i].median_ms);
            EXPECT_GE(r[i].repeats, o.measure.min_repeats);
        }
    }
    expect_no_children_left();
}

// A process that keeps one core busy until it is killed.
pid_t spin_in_another_process() {
    pid_t pid = fork();
    if (pid == 0) {
        for (volatile uint64_t i = 0;; i = i + 1) {
        }
    }
    return pid;
}

void stop(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

TEST(Load, ProcStatBusyIsEverythingButIdleAndIowait) {
    // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already
    // inside user, so it is not counted twice.
    EXPECT_DOUBLE_EQ(parse_proc_stat_busy("cpu  100 5 50 800 20 3 2 0 10 0", 100), 1.6);
    EXPECT_DOUBLE_EQ(parse_proc_stat_busy("cpu 10 0 10 500", 100), 0.2);
    EXPECT_LT(parse_proc_stat_busy("cpu0 10 0 10 500", 100), 0);  // one CPU, not the total
    EXPECT_LT(parse_proc_stat_busy("cpu 10 0", 100), 0);
    EXPECT_LT(parse_proc_stat_busy("", 100), 0);
}

TEST(Load, AnotherProcessCountsThisOneDoesNot) {
    CpuSample a = cpu_sample();
    if (!a.valid) GTEST_SKIP() << "no /proc/stat here";
    // This process spinning for 0.3 s: its own CPU time, which other_load() leaves out.
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until) {
    }
    CpuSample b = cpu_sample();
    EXPECT_GE(b.self_s - a.self_s, 0.2);
    double wall = std::chrono::duration<double>(b.when - a.when).count();
    EXPECT_LE(other_load(a, b), (b.busy_s - a.busy_s) / wall - 0.5);

    pid_t spinner = spin_in_another_process();
    ASSERT_GT(spinner, 0);
    CpuSample c = cpu_sample();
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CpuSample d = cpu_sample();
    stop(spinner);
    // One core busy the whole window; other tests may share the cores with it.
    EXPECT_GE(other_load(c, d), 0.5);
    EXPECT_EQ(other_load(CpuSample{}, d), 0);  // unknown reads as 0
}

TEST(Runner, RecordTimedWhileOthersWereBusySaysSo) {
    RunnerOptions o;
    o.measure_binary = KILN_BINARY;
    o.measure.min_time_s = 0.2;
    o.measure.threads = 1;
    o.measure.quiet_wait_s = 0;  // no waiting: the load is only noted
    o.measure.max_other_load = 0.2;
    auto runner = make_process_runner(o);
    Target host = host_target();
    Workload w = Workload::from_shape("dense", "m=8,n=16,k=16");
    Config config = find_space("dense").space(w, host).default_config;
    pid_t spinner = spin_in_another_process();
    ASSERT_GT(spinner, 0);
    auto r = runner->measure(w, {config}, host);
    stop(spinner);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(to_string(r[0].status), "ok");
    EXPECT_NE(r[0].error.find("timed while other processes kept"), std::string::npos) << r[0].error;
    expect_no_children_left();
}

TEST(Runner, MissingBinaryIsAnError) {
    RunnerOptions o = faulty_options();
    o.measure_binary = "/nonexistent/kiln";
    auto runner = make_process_runner(o);
    EXPECT_EQ(testing::error_field(
                  [&] { runner->measure(faulty_workload(), {behaviour("ok")}, host_target()); }),
              "measure_binary");
    o = faulty_options();
    o.plugins = {"/nonexistent/plugin.so"};
    runner = make_process_runner(o);
    EXPECT_EQ(testing::error_field(
                  [&] { runner->measure(faulty_workload(), {behaviour("ok")}, host_target()); }),
              "plugins");
    expect_no_children_left();
}

TEST(Runner, TargetThatDoesNotRunHereIsAnError) {
    auto runner = make_process_runner(faulty_options());
    EXPECT_EQ(testing::error_field([&] {
                  runner->measure(faulty_workload(), {behaviour("ok")},
                                  parse_target("arm-64-linux"));
              }),
              "target");
}

}  // namespace
}  // namespace kiln
