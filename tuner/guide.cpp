// kiln/tuner/guide.cpp — the cost model in the tuning loop (interface: guide.h).
#include "tuner/guide.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {

Guide::Guide(const Workload& w, const Target& t, Database& db, ModelOptions options,
             double other_machine_weight)
    : workload_(w),
      target_(t),
      db_(db),
      other_weight_(other_machine_weight),
      model_(std::move(options)) {}

namespace {

std::string to_text(const Features& f) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, value] : f)
        j[name] = value;
    return j.dump();
}

Features from_text(const std::string& text) {
    const nlohmann::json j = nlohmann::json::parse(text);
    Features f;
    for (const auto& [name, value] : j.items())
        f.emplace_back(name, value.get<float>());
    return f;
}

// The target a record was measured on, for featurizing it as that machine saw it.
Target target_of(const Record& r) {
    Target t = parse_target(r.target_halide);
    t.fingerprint = r.fingerprint;
    return t;
}

}  // namespace

const Features* Guide::features(const Workload& w, const Config& c) {
    const auto key = std::make_pair(w.key(), c.hash());
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    if (unlowerable_.count(key)) return nullptr;
    try {
        return &cache_.emplace(key, featurize(w, c, target_)).first->second;
    } catch (const std::exception&) {
        // A record of an older space version, or a config the current space rejects.
        unlowerable_.insert(key);
        return nullptr;
    }
}

std::vector<TrainingSample> training_samples(Database& db, const std::vector<Record>& records,
                                             const std::string& here_fingerprint,
                                             double other_machine_weight,
                                             std::vector<size_t>* kept) {
    std::vector<std::string> cached = db.features(records, kFeatureVersion);
    std::vector<std::pair<Record, std::string>> computed;
    std::vector<TrainingSample> out;
    for (size_t i = 0; i < records.size(); ++i) {
        const Record& r = records[i];
        Features f;
        if (!cached[i].empty()) {
            f = from_text(cached[i]);
        } else {
            try {
                f = featurize(r.workload, r.config, target_of(r));
            } catch (const std::exception&) {
                continue;  // a record of an older space version, or a target kiln cannot lower
            }
            computed.emplace_back(r, to_text(f));
        }
        TrainingSample s;
        s.features = std::move(f);
        s.ms = r.ok() ? r.median_ms : 0;
        // Times are only compared within one workload on one machine.
        s.group = r.workload.key() + "@" + r.fingerprint.id();
        s.weight = r.fingerprint.id() == here_fingerprint
                       ? 1.0f
                       : static_cast<float>(other_machine_weight);
        out.push_back(std::move(s));
        if (kept) kept->push_back(i);
    }
    db.store_features(computed, kFeatureVersion);
    return out;
}

void Guide::add(const std::vector<Record>& records) {
    std::vector<size_t> kept;
    std::vector<TrainingSample> s =
        training_samples(db_, records, target_.fingerprint.id(), other_weight_, &kept);
    for (size_t k = 0; k < s.size(); ++k) {
        if (records[kept[k]].workload.key() != workload_.key()) ++transfer_;
        samples_.push_back(std::move(s[k]));
    }
}

void Guide::learn_from_database(int min_samples) {
    RecordFilter filter;
    filter.op = workload_.op;
    filter.target_halide = target_.halide;
    add(db_.records(filter));
    if (static_cast<int>(samples_.size()) >= min_samples) model_.fit(samples_);
}

void Guide::learn(const std::vector<Record>& records, int min_samples) {
    add(records);
    if (static_cast<int>(samples_.size()) >= min_samples) model_.fit(samples_);
}

Scorer Guide::scorer() {
    return [this](const Workload& w, const std::vector<Config>& configs) {
        std::vector<double> scores(configs.size(), 0.0);
        if (!model_.trained()) return scores;
        std::vector<Features> rows;
        std::vector<size_t> index;
        for (size_t i = 0; i < configs.size(); ++i)
            if (const Features* f = features(w, configs[i])) {
                rows.push_back(*f);
                index.push_back(i);
            }
        std::vector<double> predicted = model_.predict(rows);
        // A candidate that cannot be featurized ranks below every one that can.
        double floor = 0;
        for (double p : predicted)
            floor = std::min(floor, p);
        std::fill(scores.begin(), scores.end(), floor - 1);
        for (size_t k = 0; k < index.size(); ++k)
            scores[index[k]] = predicted[k];
        return scores;
    };
}

void Guide::save(const std::string& path) const {
    if (!model_.trained()) return;
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    model_.save(path, workload_.op + " on " + target_.halide);
}

}  // namespace kiln
