// kiln/cost_model/model.h — the learned cost model: XGBoost over named features.
//
// A CostModel ranks configs of one op on one target. It learns from measured samples
// (features, time, and the workload they belong to: configs are only ever compared with
// configs of the same workload), predicts a score per candidate (higher is faster; only the
// order within a workload means anything), and is saved with the feature names and
// kFeatureVersion it was trained on, so a model of other features is never used. No XGBoost in
// this header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cost_model/features.h"

namespace kiln {

struct TrainingSample {
    Features features;
    double ms = 0;      // measured median time; <= 0 or infinite for a failed candidate
    std::string group;  // the workload key
    float weight = 1;   // how much the sample counts (records of another machine: less)
};

struct ModelOptions {
    // "rank:pairwise" (learns the order of configs within each workload) or
    // "reg:squarederror" (regresses each config's speed relative to its workload's best).
    std::string objective = "rank:pairwise";
    int rounds = 60;  // boosting rounds per fit
    int max_depth = 6;
    double eta = 0.2;
    double min_child_weight = 1;
    int threads = 1;  // XGBoost's threads: the tuner's children use the cores
    uint64_t seed = 1;
};

class CostModel {
  public:
    explicit CostModel(ModelOptions options = {});
    ~CostModel();
    CostModel(CostModel&&) noexcept;
    CostModel& operator=(CostModel&&) noexcept;

    // Trains a new model on `samples` (replacing the old one). Samples of a workload whose
    // candidates all failed teach nothing and are skipped. Throws kiln::Error when XGBoost fails.
    void fit(const std::vector<TrainingSample>& samples);
    bool trained() const;
    int trained_samples() const { return trained_samples_; }
    const std::vector<std::string>& feature_names() const { return names_; }

    // A score per row, higher for faster configs; all zero when not trained. Features the
    // model never saw are ignored.
    std::vector<double> predict(const std::vector<Features>& rows) const;

    // XGBoost's JSON model with the feature names, the feature version and `note` (e.g. the op
    // and target) as attributes. load() throws kiln::Error naming the file when it is not such
    // a model or was trained on another feature version.
    void save(const std::string& path, const std::string& note = "") const;
    static CostModel load(const std::string& path, ModelOptions options = {});
    std::string note() const { return note_; }

  private:
    struct Booster;
    ModelOptions options_;
    std::unique_ptr<Booster> booster_;
    std::vector<std::string> names_;  // column order
    int trained_samples_ = 0;
    std::string note_;
};

// Kendall's tau-b between two scorings of the same items (1: same order, -1: reversed, 0: none;
// ties count as neither). 0 for fewer than two items.
double kendall_tau(const std::vector<double>& a, const std::vector<double>& b);

// Of the `k` items best by `truth`, the share that are among the `k` best by `predicted`
// (higher is better in both).
double top_k_recall(const std::vector<double>& predicted, const std::vector<double>& truth,
                    size_t k);

// Relative speed of each sample within its group: best time / its time (1 for the fastest,
// towards 0 for slow ones), 0 for a failed one. The training label.
std::vector<float> relative_speed(const std::vector<TrainingSample>& samples);

}  // namespace kiln
