// kiln/tools/cmd_tune_op.cpp — `kiln tune-op`: tune one workload on this machine into the
// tuning database.
//
// Candidates are built and measured in child processes (`kiln measure-one`, this very
// executable), so a crashing or hanging schedule becomes a record, not a dead tuner. Ctrl-C
// finishes the candidate being timed, commits the batch and exits; running the same command
// again continues and measures nothing twice. run_tune_op() reads top to bottom.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "core/op.h"
#include "cost_model/features.h"
#include "db/database.h"
#include "schedules/kernel.h"
#include "tools/commands.h"
#include "tools/db_path.h"
#include "tools/tune_util.h"
#include "tuner/tuner.h"

namespace kiln::tools {
namespace {

struct TuneOpOptions {
    std::string op;
    std::string shape;
    std::string epilogue;
    std::string layout;
    std::string target = "host";
    std::string db;
    std::string time;  // "90", "30s", "10m", "2h"
    MeasurementOptions measure;
    bool no_cost_model = false;
    TuneOptions tune;
};

// A bar redrawn in place on a terminal; one line per batch otherwise (logs, CI).
class ProgressPrinter {
  public:
    explicit ProgressPrinter(const Workload& w) : tty_(isatty(STDERR_FILENO)), key_(w.key()) {}

    void operator()(const TuneProgress& p) {
        std::string planned = p.trials_planned > 0 ? std::to_string(p.trials_planned) : "?";
        std::string best =
            p.best_ms > 0 ? fmt::format("best {:.4g} ms {:.1f} GFLOP/s", p.best_ms, p.best_gflops)
                          : "best -";
        std::string fails = p.failures ? fmt::format(", {} failed", p.failures) : "";
        if (tty_) {
            double frac = p.trials_planned > 0 ? double(p.trials_done) / p.trials_planned : 0;
            int filled = static_cast<int>(frac * 24 + 0.5);
            std::fprintf(stderr, "\r\033[K[%s%s] %d/%s trials%s  %s  ETA %s",
                         std::string(filled, '#').c_str(), std::string(24 - filled, '.').c_str(),
                         p.trials_done, planned.c_str(), fails.c_str(), best.c_str(),
                         format_seconds(p.eta_s).c_str());
        } else {
            std::fprintf(stderr, "tune %s: %d/%s trials%s, %s, %s elapsed, ETA %s%s\n",
                         key_.c_str(), p.trials_done, planned.c_str(), fails.c_str(), best.c_str(),
                         format_seconds(p.elapsed_s).c_str(), format_seconds(p.eta_s).c_str(),
                         p.improved ? " (improved)" : "");
        }
        std::fflush(stderr);
    }

    void finish() {
        if (tty_) std::fprintf(stderr, "\n");
    }

  private:
    bool tty_;
    std::string key_;
};

void run_tune_op(TuneOpOptions& o) {
    const OpDef& def = find_op(o.op);
    Workload w = Workload::from_shape(o.op, o.shape.empty() ? def.example() : o.shape, DType::f32,
                                      Epilogue::parse(o.epilogue));
    if (!o.layout.empty()) {
        w.layout = Blocking::parse(o.layout);
        w.validate();
    }
    Target t = parse_target(o.target);
    if (!t.is_host)
        throw Error("target", "'" + o.target + "' does not run on this machine (" +
                                  host_target().halide + "); tune-op measures on the host");
    find_space(w.op);  // an op without a space cannot be tuned: say so before anything else
    o.tune.time_budget_s = parse_duration(o.time);
    o.tune.cost_model = !o.no_cost_model;

    std::string db_path = o.db.empty() ? default_database_path() : o.db;
    auto db = Database::open(db_path);

    auto runner = make_command_runner(o.measure);

    std::printf("workload  %s (%.4g GFLOP)\n", w.key().c_str(), w.flops() / 1e9);
    std::printf("target    %s (%s), machine %s\n", t.name.c_str(), t.halide.c_str(),
                t.fingerprint.id().c_str());
    std::printf("database  %s\n", db_path.c_str());
    std::printf("search    %s, batches of %d, %s%s\n", o.tune.strategy.c_str(), o.tune.batch_size,
                o.tune.trials > 0 ? fmt::format("{} trials", o.tune.trials).c_str() : "",
                o.tune.time_budget_s > 0 ? fmt::format("{}{} budget", o.tune.trials > 0 ? ", " : "",
                                                       format_seconds(o.tune.time_budget_s))
                                               .c_str()
                                         : "");
    std::fflush(stdout);

    install_interrupt_flag();
    ProgressPrinter printer(w);
    TuneResult r = tune(w, t, *db, *runner, o.tune, std::ref(printer), &g_interrupted);
    printer.finish();
    restore_interrupt();

    std::printf("stopped   %s: %d measured (%d failed), %d already in the database\n",
                r.stop_reason.c_str(), r.measured, r.failures, r.known);
    if (r.model_samples > 0)
        std::printf("model     %s on %d records (%d of other workloads), saved to %s\n",
                    o.tune.model.objective.c_str(), r.model_samples, r.transfer_samples,
                    r.model_path.empty() ? "nowhere" : r.model_path.c_str());
    else if (o.tune.cost_model && !can_featurize(w.op))
        std::printf("model     none: the kernels of %s are not Halide pipelines\n", w.op.c_str());
    else if (o.tune.cost_model)
        std::printf("model     none: fewer than %d usable records of %s on this target\n",
                    o.tune.min_samples, w.op.c_str());
    if (r.confirmed > 0)
        std::printf("compared  %d of the fastest configs again, side by side in %d rounds\n",
                    r.confirmed, o.tune.confirm_rounds);
    if (r.best) {
        std::printf("best      %.4g ms median, %.4g ms min, %.1f GFLOP/s\n", r.best->median_ms,
                    r.best->min_ms, r.best->gflops());
        std::printf("config    %s\n", r.best->config.to_string().c_str());
    } else {
        std::printf("best      none: no candidate ran correctly\n");
    }
    if (r.stop_reason == "interrupted")
        std::printf("resume    run the same command again; measured configs are not repeated\n");
}

}  // namespace

void add_tune_op(CLI::App& app) {
    auto o = std::make_shared<TuneOpOptions>();
    CLI::App* cmd = app.add_subcommand(
        "tune-op", "Tune one workload on this machine; results go to the tuning database");
    cmd->add_option("OP", o->op, "The op, e.g. conv2d (see kiln ops)")->required();
    cmd->add_option("--shape", o->shape,
                    "Parameters as name=value, comma-separated (default: the op's example)");
    cmd->add_option("--epilogue", o->epilogue, "Fused epilogue, e.g. bias+relu");
    cmd->add_option("--layout", o->layout,
                    "Channel-blocked activations, as in a workload key's layout segment: i8 "
                    "(input), r8 (residual), o8 (output), e.g. i16o16 (default: NCHW)");
    cmd->add_option("--target", o->target, "Target; must run on this machine")
        ->capture_default_str();
    cmd->add_option("--db", o->db,
                    "Tuning database (default: $KILN_DB, else ~/.cache/kiln/tuning.db)");
    CLI::Option* trials = cmd->add_option("--trials", o->tune.trials, "New candidates to measure")
                              ->capture_default_str()
                              ->check(CLI::PositiveNumber);
    cmd->add_option("--time", o->time,
                    "Wall-clock budget: 90s, 10m, 2h (alone, it replaces --trials)");
    cmd->add_option("--batch", o->tune.batch_size, "Candidates built and measured per round")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--early-stop", o->tune.early_stop,
                    "Stop after this many trials without a better best (0: never)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--strategy", o->tune.strategy, "Search strategy: evolutionary or random")
        ->capture_default_str();
    cmd->add_option("--seed", o->tune.search.seed, "Seed of the search")->capture_default_str();
    cmd->add_flag("--no-cost-model", o->no_cost_model,
                  "Search without the cost model (it is trained on the database's records of "
                  "this op and target, and picks which candidates to measure)");
    cmd->add_option("--random-share", o->tune.search.random_share,
                    "Share of each batch drawn at random instead of by the model or the "
                    "population")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--candidates", o->tune.search.candidates_per_slot,
                    "Candidates the cost model scores per candidate measured")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--confirm", o->tune.confirm_top,
                    "At the end, time this many of the fastest configs (and the default) again "
                    "side by side, and keep the winner of that comparison (0: off)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    add_measurement_options(cmd, o->measure);
    cmd->footer(
        "Ctrl-C finishes the candidate being timed, commits and exits; the same command again\n"
        "continues. A crash, hang or wrong answer of a candidate is recorded, never fatal.\n\n"
        "Examples:\n"
        "  kiln tune-op conv2d --shape c=64,h=56,w=56,k=64,r=3,s=3,pad=1 --trials 64\n"
        "  kiln tune-op dense --shape m=128,n=768,k=768 --time 10m --db team.db");
    cmd->callback([o, trials] {
        if (!o->time.empty() && trials->count() == 0) o->tune.trials = 0;  // the budget decides
        run_tune_op(*o);
    });
}

}  // namespace kiln::tools
