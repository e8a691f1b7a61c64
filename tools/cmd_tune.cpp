// kiln/tools/cmd_tune.cpp — `kiln tune`: tune every kernel of a model on this machine.
//
// The model is imported and optimized as `kiln compile` does, so each task is a kernel that
// will run (graph/tasks.h). The task scheduler (tuner/scheduler.h) gives each batch of trials
// to the task where it buys the most estimated model time; each task's TaskTuner measures it
// and commits it to the database. Ctrl-C, a kill or the end of --time stop between candidates;
// the same command again continues from the database, and the tuning log continues the curve.
// run_tune() reads top to bottom.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "db/database.h"
#include "graph/passes.h"
#include "graph/tasks.h"
#include "schedules/kernel.h"
#include "tools/commands.h"
#include "tools/compile.h"
#include "tools/db_path.h"
#include "tools/table.h"
#include "tools/tune_report.h"
#include "tools/tune_util.h"
#include "tuner/scheduler.h"
#include "tuner/tuner.h"

namespace kiln::tools {
namespace {

struct TuneCommandOptions {
    std::string model;
    std::string target = "host";
    std::string db;
    std::string time;
    std::string report;
    std::string log;
    int64_t batch_dim = 1;
    int trials = 0;
    MeasurementOptions measure;
    bool no_cost_model = false;
    bool nchw = false;
    SchedulerOptions schedule;
    TuneOptions tune;
};

using Clock = std::chrono::steady_clock;

// Sets `flag` when `seconds` have passed, unless cancelled first: --time is a hard budget, and
// the runner stops between candidates once the flag is set.
class Deadline {
  public:
    Deadline(double seconds, std::atomic<bool>& flag) {
        if (seconds <= 0) return;
        thread_ = std::thread([this, seconds, &flag] {
            std::unique_lock<std::mutex> lock(mutex_);
            if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                              [this] { return cancelled_; })) {
                passed_ = true;
                flag.store(true);
            }
        });
    }
    ~Deadline() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancelled_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    bool passed() const { return passed_.load(); }

  private:
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool cancelled_ = false;
    std::atomic<bool> passed_{false};
};

// The task list's ScheduledTask for each task, from what this machine measured already.
std::vector<ScheduledTask> scheduled_tasks(const graph::TaskList& list, Database& db,
                                           const Target& t) {
    std::vector<ScheduledTask> out;
    for (const graph::KernelTask& task : list.tasks) {
        ScheduledTask s;
        s.name = task.key;
        s.count = task.count;
        const ScheduleSpace space = find_space(task.workload.op).space(task.workload, t);
        for (const Record& r : this_machines_records(db, task.workload, t, space)) {
            ++s.trials;
            if (!r.ok()) continue;
            if (s.best_ms <= 0 || r.median_ms < s.best_ms) s.best_ms = r.median_ms;
            if (r.config.hash() == space.default_config.hash()) s.start_ms = r.median_ms;
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::string ms_text(double ms) {
    return ms > 0 ? fmt::format("{:.4g}", ms) : "-";
}

class Progress {
  public:
    Progress(int planned, double budget_s)
        : tty_(isatty(STDERR_FILENO)), planned_(planned), budget_s_(budget_s) {}

    // The overall state after a batch.
    void bar(int done, double estimate_ms, double start_ms, double elapsed_s) {
        double eta = -1;
        if (done > 0 && planned_ > 0) eta = elapsed_s / done * (planned_ - done);
        if (budget_s_ > 0)
            eta = eta < 0 ? budget_s_ - elapsed_s : std::min(eta, budget_s_ - elapsed_s);
        std::string planned = planned_ > 0 ? std::to_string(planned_) : "?";
        std::string est = estimate_ms > 0 ? fmt::format("estimate {:.4g} ms (start {} ms)",
                                                        estimate_ms, ms_text(start_ms))
                                          : "estimate - (tasks still unmeasured)";
        if (tty_) {
            double frac = planned_ > 0    ? double(done) / planned_
                          : budget_s_ > 0 ? elapsed_s / budget_s_
                                          : 0;
            int filled = std::min(24, static_cast<int>(frac * 24 + 0.5));
            std::fprintf(stderr, "\r\033[K[%s%s] %d/%s trials  %s  ETA %s",
                         std::string(filled, '#').c_str(), std::string(24 - filled, '.').c_str(),
                         done, planned.c_str(), est.c_str(), format_seconds(eta).c_str());
        } else {
            std::fprintf(stderr, "tune: %d/%s trials, %s, %s elapsed, ETA %s\n", done,
                         planned.c_str(), est.c_str(), format_seconds(elapsed_s).c_str(),
                         format_seconds(eta).c_str());
        }
        std::fflush(stderr);
    }
    // A line of its own above the bar.
    void line(const std::string& text) {
        std::fprintf(stderr, "%s%s\n", tty_ ? "\r\033[K" : "", text.c_str());
    }
    void finish() {
        if (tty_) std::fprintf(stderr, "\n");
    }

  private:
    bool tty_;
    int planned_;
    double budget_s_;
};

void run_tune(TuneCommandOptions& o) {
    Target t = parse_target(o.target);
    if (!t.is_host)
        throw Error("target", "'" + o.target + "' does not run on this machine (" +
                                  host_target().halide + "); kiln tune measures on the host");
    o.tune.time_budget_s = parse_duration(o.time);
    if (o.trials <= 0 && o.tune.time_budget_s <= 0)
        throw Error("trials", "give --trials N or --time D (e.g. --time 2h)");
    o.tune.cost_model = !o.no_cost_model;
    TaskScheduler probe({}, o.schedule);  // an unknown policy fails before any work

    graph::Graph g = import_for_command(o.model, o.batch_dim);
    graph::optimize(g);
    // The kernels as kiln compile will compile them: channel-blocked where it plans to.
    const graph::TaskList list = graph::extract_tasks(g, o.nchw ? 0 : t.f32_lanes());
    if (list.tasks.empty())
        throw Error("tune", "'" + o.model + "' has no kernel that kiln tunes (conv, dense)");
    const std::string name = name_from_path(o.model);
    const std::string db_path = database_path(o.db);
    const std::string log_path =
        o.log.empty() ? db_path + ".tune/" + name + "-" + target_hash(t) + ".jsonl" : o.log;
    auto db = Database::open(db_path);

    auto runner = make_command_runner(o.measure);

    TaskScheduler scheduler(scheduled_tasks(list, *db, t), o.schedule);
    int kernels = 0;
    for (const auto& task : list.tasks)
        kernels += task.count;
    std::printf("model     %s: %zu tasks (%d kernels, %.4g GFLOP)\n", o.model.c_str(),
                list.tasks.size(), kernels, list.total_flops / 1e9);
    std::printf("target    %s (%s), machine %s\n", t.name.c_str(), t.halide.c_str(),
                t.fingerprint.id().c_str());
    std::printf("database  %s\n", db_path.c_str());
    std::printf("budget    %s%s%s, batches of %d, schedule %s\n",
                o.trials > 0 ? fmt::format("{} trials", o.trials).c_str() : "",
                o.trials > 0 && o.tune.time_budget_s > 0 ? ", " : "",
                o.tune.time_budget_s > 0 ? format_seconds(o.tune.time_budget_s).c_str() : "",
                o.tune.batch_size, o.schedule.policy.c_str());
    for (const auto& f : list.fallbacks)
        std::fprintf(stderr, "warning: %s\n", f.text().c_str());
    std::fflush(stdout);

    // The curve continues from earlier runs.
    std::vector<TuneLogPoint> log = read_tune_log(log_path);
    const double elapsed_before = log.empty() ? 0 : log.back().elapsed_s;
    const int trials_before = log.empty() ? 0 : log.back().trials;
    const double start_estimate = scheduler.complete() ? scheduler.start_estimate_ms() : 0;
    if (start_estimate > 0)
        std::printf("resume    every task has records: estimate %.4g ms (untuned %.4g ms)\n",
                    scheduler.estimate_ms(), start_estimate);

    install_interrupt_flag();
    const Clock::time_point start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    std::map<int, std::unique_ptr<TaskTuner>> tuners;
    std::vector<int> measured_now(list.tasks.size(), 0);
    Progress progress(o.trials, o.tune.time_budget_s);
    std::string stop_reason;
    int done = 0;
    {
        Deadline deadline(o.tune.time_budget_s, g_interrupted);
        for (;;) {
            if (g_interrupted.load()) {
                stop_reason = deadline.passed() ? "time" : "interrupted";
                break;
            }
            if (o.trials > 0 && done >= o.trials) {
                stop_reason = "trials";
                break;
            }
            const int k = scheduler.next();
            if (k < 0) {
                stop_reason = "every task's space is exhausted";
                break;
            }
            auto& tuner = tuners[k];
            if (!tuner)
                tuner =
                    std::make_unique<TaskTuner>(list.tasks[k].workload, t, *db, *runner, o.tune);
            int n = o.tune.batch_size;
            if (o.trials > 0) n = std::min(n, o.trials - done);
            const double before = scheduler.tasks()[k].best_ms;
            std::vector<Record> records = tuner->step(n, &g_interrupted);
            if (tuner->exhausted()) scheduler.mark_exhausted(k);
            done += static_cast<int>(records.size());
            measured_now[k] += static_cast<int>(records.size());
            const TuneResult& r = tuner->result();
            scheduler.update(k, r.known + r.measured, r.best ? r.best->median_ms : 0);
            const ScheduledTask& task = scheduler.tasks()[k];
            if (task.best_ms > 0 && (before <= 0 || task.best_ms < before))
                progress.line(fmt::format("  {} x{}: {} -> {} ms", task.name, task.count,
                                          ms_text(before), ms_text(task.best_ms)));
            if (!records.empty()) {
                TuneLogPoint p;
                p.elapsed_s = elapsed_before + elapsed();
                p.trials = trials_before + done;
                p.estimate_ms = scheduler.complete() ? scheduler.estimate_ms() : 0;
                p.task = task.name;
                p.task_best_ms = task.best_ms;
                append_tune_log(log_path, p);
                log.push_back(p);
            }
            progress.bar(done, scheduler.complete() ? scheduler.estimate_ms() : 0,
                         scheduler.complete() ? scheduler.start_estimate_ms() : 0, elapsed());
        }
        progress.finish();
        // The final comparison of each task tuned in this run, while the budget lasts; a
        // stop (Ctrl-C or the deadline) skips it.
        if (stop_reason != "interrupted" && stop_reason != "time" && o.tune.confirm_top > 1) {
            for (auto& [k, tuner] : tuners) {
                if (g_interrupted.load()) break;
                std::fprintf(stderr, "comparing the fastest configs of %s again\n",
                             list.tasks[k].key.c_str());
                const TuneResult& r = tuner->finish(true, &g_interrupted);
                scheduler.update(k, r.known + r.measured, r.best ? r.best->median_ms : 0);
            }
        } else {
            for (auto& [k, tuner] : tuners)
                tuner->finish(false);
        }
    }
    restore_interrupt();

    std::vector<std::vector<std::string>> rows = {
        {"task", "count", "trials (run / all)", "untuned ms", "best ms", "speedup", "share"}};
    const double estimate = scheduler.estimate_ms();
    for (size_t i = 0; i < scheduler.tasks().size(); ++i) {
        const ScheduledTask& s = scheduler.tasks()[i];
        rows.push_back(
            {s.name, std::to_string(s.count), fmt::format("{} / {}", measured_now[i], s.trials),
             ms_text(s.start_ms), ms_text(s.best_ms),
             s.start_ms > 0 && s.best_ms > 0 ? fmt::format("{:.2f}x", s.start_ms / s.best_ms) : "-",
             estimate > 0 && s.best_ms > 0
                 ? fmt::format("{:.1f}%", 100 * s.count * s.best_ms / estimate)
                 : "-"});
    }
    std::printf("\n");
    print_table(rows, "");
    std::printf("\nstopped   %s: %d trials in %s\n", stop_reason.c_str(), done,
                format_seconds(elapsed()).c_str());
    if (scheduler.complete())
        std::printf(
            "estimate  %.4g ms of kernel time per run, untuned %.4g ms (%.2fx); the "
            "other nodes are not in it\n",
            estimate, scheduler.start_estimate_ms(), scheduler.start_estimate_ms() / estimate);
    std::printf("log       %s (%zu batches over all runs)\n", log_path.c_str(), log.size());
    if (!o.report.empty()) {
        write_tune_report(o.report, "kiln tune " + name + " on " + t.name, log);
        std::printf("report    %s\n", o.report.c_str());
    }
    if (stop_reason == "interrupted" || stop_reason == "time")
        std::printf("resume    run the same command again; measured configs are not repeated\n");
}

}  // namespace

void add_tune(CLI::App& app) {
    auto o = std::make_shared<TuneCommandOptions>();
    o->tune.trials = 0;
    CLI::App* cmd = app.add_subcommand(
        "tune", "Tune every kernel of a model on this machine; results go to the tuning database");
    cmd->add_option("MODEL", o->model, "The ONNX model")->required();
    cmd->add_option("--target", o->target, "Target; must run on this machine")
        ->capture_default_str();
    cmd->add_option("--db", o->db,
                    "Tuning database (default: $KILN_DB, else ~/.cache/kiln/tuning.db)");
    cmd->add_option("--trials", o->trials, "New candidates to measure over all tasks")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--time", o->time,
                    "Hard wall-clock budget: 90s, 10m, 2h (with --trials, whichever ends first)");
    cmd->add_option("--batch", o->tune.batch_size, "Candidates measured per scheduling step")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--nchw", o->nchw,
                  "Tune every kernel in NCHW, as kiln compile --nchw compiles them (default: in "
                  "the channel-blocked layouts kiln compile plans between convolutions)");
    cmd->add_option("--schedule", o->schedule.policy,
                    "How trials are shared among tasks: gradient (where they buy the most "
                    "model time) or round-robin")
        ->capture_default_str();
    cmd->add_option("--report", o->report,
                    "Draw the tuning curve (estimated model time against time and trials) to "
                    "an .svg or .html file");
    cmd->add_option("--log", o->log,
                    "The tuning log the curve is drawn from (default: beside the database, "
                    "<db>.tune/<model>-<target hash>.jsonl)");
    cmd->add_option("--batch-size", o->batch_dim, "The model's batch dimension")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--no-cost-model", o->no_cost_model, "Search without the cost model");
    cmd->add_option("--confirm", o->tune.confirm_top,
                    "At the end, time this many of each tuned task's fastest configs again side "
                    "by side (0: off; skipped when --time or Ctrl-C ends the run)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    add_measurement_options(cmd, o->measure);
    cmd->footer(
        "Each distinct conv or dense kernel of the compiled graph (after BN folding and epilogue\n"
        "fusion) is a task. Every task first gets one batch, its default config first; then each\n"
        "batch goes to the task whose improvement buys the most model time. Ctrl-C finishes the\n"
        "candidate being timed, commits and exits; the same command again continues.\n\n"
        "Examples:\n"
        "  kiln tune resnet50.onnx --time 2h --db tuning.db --report curve.html\n"
        "  kiln tune squeezenet.onnx --trials 200 --schedule round-robin");
    cmd->callback([o] { run_tune(*o); });
}

}  // namespace kiln::tools
