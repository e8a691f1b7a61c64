// kiln/tuner/model_eval.h — how well the cost model ranks configs of workloads it never saw.
//
// Leave one workload out: for each workload of the op with enough successful records, train
// the model on every other workload's records (of the same op, target and machine) and rank
// the held-out workload's configs; compare with their measured times. `kiln cost-model eval`
// prints the result.
#pragma once

#include <string>
#include <vector>

#include "cost_model/model.h"
#include "db/database.h"

namespace kiln {

struct EvalOptions {
    std::string op;             // required
    std::string target_halide;  // required
    std::string fingerprint;    // the machine whose records count ("" = every machine)
    int min_records = 8;        // ok records a workload needs to be held out
    int top_k = 5;              // for top-k recall
    ModelOptions model;
};

struct WorkloadEval {
    std::string workload_key;
    int records = 0;        // ok records of the held-out workload
    int train_samples = 0;  // samples of the other workloads
    double kendall_tau = 0;
    double top_k_recall = 0;
    double best_predicted_speed = 0;  // measured speed of the model's first pick / the best's
};

struct EvalReport {
    std::vector<WorkloadEval> workloads;
    double median_tau = 0;
    double mean_top_k_recall = 0;
    double median_best_predicted_speed = 0;
    int featurized = 0;  // records with features (cached or computed)
};

EvalReport evaluate_model(Database& db, const EvalOptions& options);

}  // namespace kiln
