// kiln/tools/cmd_cost_model.cpp — `kiln cost-model eval`: how well the cost model ranks the
// configs of workloads it was not trained on, from a tuning database's records.
//
// Leave one workload out (tuner/model_eval.h): per workload with enough measured configs, a
// model trained on the op's other workloads ranks its configs; Kendall's tau against the
// measured order, top-k recall, and how fast the model's first pick really is. docs/CLI.md and
// docs/COST_MODEL.md describe it.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "db/database.h"
#include "targets/target.h"
#include "tools/commands.h"
#include "tools/db_path.h"
#include "tools/table.h"
#include "tuner/model_eval.h"

namespace kiln::tools {
namespace {

struct CostModelOptions {
    std::string db;
    std::string op;
    std::string target = "host";
    bool all_machines = false;
    EvalOptions eval;
};

void run_eval(CostModelOptions& o) {
    std::string path = database_path(o.db);
    if (!std::filesystem::exists(path))
        throw Error("db", "no tuning database at " + path +
                              " (pass --db PATH or set KILN_DB to use another)");
    auto db = Database::open(path);
    Target t = parse_target(o.target);
    const std::string machine = t.is_host ? t.fingerprint.id() : host_fingerprint().id();

    // Every op with records on the target, or the one asked for.
    std::vector<std::string> ops;
    if (!o.op.empty()) {
        ops.push_back(o.op);
    } else {
        for (const auto& row : db->stats().rows)
            if (row.target_halide == t.halide) ops.push_back(row.op);
    }
    if (ops.empty()) throw Error("db", path + " has no records for target " + t.halide);

    std::printf("database  %s\n", path.c_str());
    std::printf("target    %s, %s\n", t.halide.c_str(),
                o.all_machines ? "records of every machine" : ("machine " + machine).c_str());
    std::printf("model     %s, leave one workload out, top-%d recall\n",
                o.eval.model.objective.c_str(), o.eval.top_k);
    for (const std::string& op : ops) {
        EvalOptions e = o.eval;
        e.op = op;
        e.target_halide = t.halide;
        e.fingerprint = o.all_machines ? "" : machine;
        EvalReport r = evaluate_model(*db, e);
        std::printf(
            "\n%s: %d records featurized, %zu workloads held out (those with at least %d "
            "ok records)\n",
            op.c_str(), r.featurized, r.workloads.size(), e.min_records);
        if (r.workloads.empty()) continue;
        std::vector<std::vector<std::string>> rows = {{"workload", "configs", "trained on", "tau",
                                                       fmt::format("top-{}", e.top_k),
                                                       "first pick"}};
        for (const auto& w : r.workloads)
            rows.push_back({w.workload_key, std::to_string(w.records),
                            std::to_string(w.train_samples), fmt::format("{:.2f}", w.kendall_tau),
                            fmt::format("{:.2f}", w.top_k_recall),
                            fmt::format("{:.0f}%", 100 * w.best_predicted_speed)});
        print_table(rows, "  ");
        std::printf(
            "  median tau %.2f, mean top-%d recall %.2f, median first pick at %.0f%% of "
            "the best\n",
            r.median_tau, e.top_k, r.mean_top_k_recall, 100 * r.median_best_predicted_speed);
    }
}

}  // namespace

void add_cost_model(CLI::App& app) {
    auto o = std::make_shared<CostModelOptions>();
    CLI::App* cmd = app.add_subcommand("cost-model", "The tuner's cost model");
    cmd->require_subcommand(1);
    CLI::App* eval = cmd->add_subcommand(
        "eval", "Rank correlation and top-k recall of the cost model on held-out workloads");
    eval->add_option("--db", o->db,
                     "Tuning database (default: $KILN_DB, else ~/.cache/kiln/tuning.db)");
    eval->add_option("--op", o->op, "Only this op (default: every op with records)");
    eval->add_option("--target", o->target, "Whose records count")->capture_default_str();
    eval->add_flag("--all-machines", o->all_machines,
                   "Use the records of every machine of the target's ISA, not only this one's");
    eval->add_option("--min-records", o->eval.min_records,
                     "Measured configs a workload needs to be held out")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    eval->add_option("--top-k", o->eval.top_k, "k of top-k recall")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    eval->add_option("--objective", o->eval.model.objective, "rank:pairwise or reg:squarederror")
        ->capture_default_str()
        ->check(CLI::IsMember({"rank:pairwise", "reg:squarederror"}));
    eval->footer(
        "Each workload with enough measured configs is held out in turn: a model trained on the\n"
        "op's other workloads ranks its configs, and the ranking is compared with the measured\n"
        "times (Kendall's tau; top-k recall: the share of the k fastest configs among the k\n"
        "predicted fastest; first pick: the measured speed of the predicted fastest against the\n"
        "fastest). Features are cached in the database.\n\n"
        "Example:\n"
        "  kiln cost-model eval --db tuning.db --op conv2d");
    eval->callback([o] { run_eval(*o); });
}

}  // namespace kiln::tools
