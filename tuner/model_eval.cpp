// kiln/tuner/model_eval.cpp — leave-one-workload-out evaluation of the cost model
// (interface: model_eval.h).
#include "tuner/model_eval.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "tuner/guide.h"

namespace kiln {

namespace {

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

EvalReport evaluate_model(Database& db, const EvalOptions& o) {
    if (o.op.empty()) throw Error("op", "name the op whose model to evaluate");
    RecordFilter filter;
    filter.op = o.op;
    filter.target_halide = o.target_halide;
    std::vector<Record> records;
    for (Record& r : db.records(filter))
        if (o.fingerprint.empty() || r.fingerprint.id() == o.fingerprint)
            records.push_back(std::move(r));
    std::vector<size_t> kept;
    std::vector<TrainingSample> samples =
        training_samples(db, records, o.fingerprint, o.fingerprint.empty() ? 1.0 : 0.3, &kept);

    EvalReport report;
    report.featurized = static_cast<int>(samples.size());
    std::map<std::string, std::vector<size_t>> by_workload;  // sample indices
    std::map<std::string, int> ok;
    for (size_t i = 0; i < samples.size(); ++i) {
        const Record& r = records[kept[i]];
        by_workload[r.workload.key()].push_back(i);
        if (r.ok()) ++ok[r.workload.key()];
    }
    std::vector<double> taus, best_speeds, recalls;
    for (const auto& [key, held] : by_workload) {
        if (ok[key] < o.min_records) continue;
        std::vector<TrainingSample> train;
        for (size_t i = 0; i < samples.size(); ++i)
            if (records[kept[i]].workload.key() != key) train.push_back(samples[i]);
        CostModel model(o.model);
        model.fit(train);
        if (!model.trained()) continue;
        std::vector<Features> rows;
        std::vector<double> truth;
        for (size_t i : held) {
            if (!(samples[i].ms > 0)) continue;  // failed: no time to rank against
            rows.push_back(samples[i].features);
            truth.push_back(1.0 / samples[i].ms);
        }
        std::vector<double> predicted = model.predict(rows);
        WorkloadEval e;
        e.workload_key = key;
        e.records = static_cast<int>(rows.size());
        e.train_samples = model.trained_samples();
        e.kendall_tau = kendall_tau(predicted, truth);
        e.top_k_recall = top_k_recall(predicted, truth, static_cast<size_t>(o.top_k));
        const size_t pick =
            std::max_element(predicted.begin(), predicted.end()) - predicted.begin();
        e.best_predicted_speed = truth[pick] / *std::max_element(truth.begin(), truth.end());
        taus.push_back(e.kendall_tau);
        recalls.push_back(e.top_k_recall);
        best_speeds.push_back(e.best_predicted_speed);
        report.workloads.push_back(e);
    }
    report.median_tau = median(taus);
    double sum = 0;
    for (double r : recalls)
        sum += r;
    report.mean_top_k_recall = recalls.empty() ? 0 : sum / double(recalls.size());
    report.median_best_predicted_speed = median(best_speeds);
    return report;
}

}  // namespace kiln
