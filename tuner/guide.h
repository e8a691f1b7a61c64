// kiln/tuner/guide.h — the cost model as the tuner uses it (internal to tuner/).
//
// A Guide holds one op's training samples and its CostModel for one tuning run: it starts from
// the database's records of the op on the target (transfer from other workloads and, weighed
// less, other machines of the same ISA), learns each measured batch, and scores candidates
// for the search. Features are computed once per (workload, config): a record's for its own
// target and machine, kept in the database (Database::features), a candidate's for this target.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/workload.h"
#include "cost_model/model.h"
#include "db/database.h"
#include "targets/target.h"
#include "tuner/search.h"

namespace kiln {

// Training samples of database records: features from the database's cache, or computed for
// each record's own target and machine and stored there; records that cannot be featurized (an
// older space version) are skipped, and `kept` (when given) receives the index of each record
// that made a sample. Groups are workload and machine; records of `here_fingerprint` weigh 1,
// others other_machine_weight.
std::vector<TrainingSample> training_samples(Database& db, const std::vector<Record>& records,
                                             const std::string& here_fingerprint,
                                             double other_machine_weight,
                                             std::vector<size_t>* kept = nullptr);

class Guide {
  public:
    Guide(const Workload& w, const Target& t, Database& db, ModelOptions options,
          double other_machine_weight);

    // Adds every record of the workload's op on the target's ISA in the database (the
    // workload's own included) and trains when at least `min_samples` are usable.
    void learn_from_database(int min_samples);
    // Adds measured records (already in the database) and retrains.
    void learn(const std::vector<Record>& records, int min_samples);

    bool trained() const { return model_.trained(); }
    int samples() const { return model_.trained_samples(); }
    int transfer_samples() const { return transfer_; }
    // Scores for the search: higher is predicted faster; zeros before the model is trained.
    Scorer scorer();
    void save(const std::string& path) const;

  private:
    const Features* features(const Workload& w, const Config& c);
    void add(const std::vector<Record>& records);

    Workload workload_;
    Target target_;
    Database& db_;
    double other_weight_;
    CostModel model_;
    std::vector<TrainingSample> samples_;
    // Candidates' features by (workload key, config hash), and those that cannot be lowered.
    std::map<std::pair<std::string, uint64_t>, Features> cache_;
    std::set<std::pair<std::string, uint64_t>> unlowerable_;
    int transfer_ = 0;
};

}  // namespace kiln
