// kiln/cost_model/model.cpp — CostModel on XGBoost's C API (interface: model.h).
//
// fit(): the column order is the sorted union of the samples' feature names; rows are grouped
// by workload (the ranking objective compares rows only within a group, and XGBoost wants
// groups contiguous); absent features are NaN, which XGBoost treats as missing. The label is
// relative_speed().
#include "cost_model/model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include <xgboost/c_api.h>

#include "core/error.h"

namespace kiln {

namespace {

void check(int rc, const std::string& what) {
    if (rc != 0) throw Error("cost_model", what + ": " + XGBGetLastError());
}

bool failed(const TrainingSample& s) {
    return !(s.ms > 0) || !std::isfinite(s.ms);
}

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

}  // namespace

struct CostModel::Booster {
    BoosterHandle handle = nullptr;
    ~Booster() {
        if (handle) XGBoosterFree(handle);
    }
};

// Owns a DMatrix.
struct Matrix {
    DMatrixHandle handle = nullptr;
    Matrix(const std::vector<float>& data, size_t rows, size_t cols) {
        check(XGDMatrixCreateFromMat(data.data(), rows, cols, kMissing, &handle),
              "cannot build the feature matrix");
    }
    ~Matrix() {
        if (handle) XGDMatrixFree(handle);
    }
};

std::vector<float> relative_speed(const std::vector<TrainingSample>& samples) {
    std::map<std::string, double> best;
    for (const auto& s : samples) {
        if (failed(s)) continue;
        auto it = best.find(s.group);
        if (it == best.end() || s.ms < it->second) best[s.group] = s.ms;
    }
    std::vector<float> out;
    for (const auto& s : samples)
        out.push_back(failed(s) ? 0.0f : static_cast<float>(best.at(s.group) / s.ms));
    return out;
}

double kendall_tau(const std::vector<double>& a, const std::vector<double>& b) {
    const size_t n = std::min(a.size(), b.size());
    double concordant = 0, discordant = 0, ties_a = 0, ties_b = 0;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
            const double da = a[i] - a[j], db = b[i] - b[j];
            if (da == 0 && db == 0) continue;
            if (da == 0) {
                ++ties_a;
            } else if (db == 0) {
                ++ties_b;
            } else if ((da > 0) == (db > 0)) {
                ++concordant;
            } else {
                ++discordant;
            }
        }
    const double denom =
        std::sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b));
    return denom > 0 ? (concordant - discordant) / denom : 0.0;
}

double top_k_recall(const std::vector<double>& predicted, const std::vector<double>& truth,
                    size_t k) {
    const size_t n = std::min(predicted.size(), truth.size());
    k = std::min(k, n);
    if (k == 0) return 0.0;
    auto top = [&](const std::vector<double>& v) {
        std::vector<size_t> idx(n);
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return v[x] > v[y]; });
        idx.resize(k);
        std::sort(idx.begin(), idx.end());
        return idx;
    };
    std::vector<size_t> p = top(predicted), t = top(truth), both;
    std::set_intersection(p.begin(), p.end(), t.begin(), t.end(), std::back_inserter(both));
    return double(both.size()) / double(k);
}

CostModel::CostModel(ModelOptions options) : options_(std::move(options)) {}
CostModel::~CostModel() = default;
CostModel::CostModel(CostModel&&) noexcept = default;
CostModel& CostModel::operator=(CostModel&&) noexcept = default;

bool CostModel::trained() const {
    return booster_ != nullptr;
}

void CostModel::fit(const std::vector<TrainingSample>& all) {
    // Groups with no successful candidate have no order to learn.
    std::map<std::string, bool> any_ok;
    for (const auto& s : all)
        any_ok[s.group] = any_ok[s.group] || !failed(s);
    std::vector<TrainingSample> samples;
    for (const auto& s : all)
        if (any_ok[s.group]) samples.push_back(s);
    std::stable_sort(samples.begin(), samples.end(),
                     [](const auto& a, const auto& b) { return a.group < b.group; });
    if (samples.size() < 2) {
        booster_.reset();
        trained_samples_ = 0;
        return;
    }

    std::map<std::string, size_t> column;
    for (const auto& s : samples)
        for (const auto& f : s.features)
            column.emplace(f.first, 0);
    std::vector<std::string> names;
    for (auto& [name, index] : column) {
        index = names.size();
        names.push_back(name);
    }
    std::vector<float> data(samples.size() * names.size(), kMissing);
    std::vector<unsigned> groups;
    std::vector<float> weights;
    for (size_t r = 0; r < samples.size(); ++r) {
        for (const auto& [name, value] : samples[r].features)
            data[r * names.size() + column.at(name)] = value;
        if (r == 0 || samples[r].group != samples[r - 1].group) groups.push_back(0);
        ++groups.back();
        weights.push_back(samples[r].weight);
    }
    const std::vector<float> labels = relative_speed(samples);

    Matrix m(data, samples.size(), names.size());
    check(XGDMatrixSetFloatInfo(m.handle, "label", labels.data(), labels.size()),
          "cannot set the labels");
    // Ranking compares rows within a group, and its weights are per group (a group's weight
    // is its first sample's); regression labels are already relative to the group's best.
    const bool ranking = options_.objective.rfind("rank:", 0) == 0;
    if (ranking)
        check(XGDMatrixSetUIntInfo(m.handle, "group", groups.data(), groups.size()),
              "cannot set the groups");
    std::vector<float> w = weights;
    if (ranking) {
        w.clear();
        size_t row = 0;
        for (unsigned g : groups) {
            w.push_back(weights[row]);
            row += g;
        }
    }
    check(XGDMatrixSetFloatInfo(m.handle, "weight", w.data(), w.size()), "cannot set the weights");

    auto b = std::make_unique<Booster>();
    check(XGBoosterCreate(&m.handle, 1, &b->handle), "cannot create a booster");
    auto set = [&](const char* key, const std::string& value) {
        check(XGBoosterSetParam(b->handle, key, value.c_str()),
              std::string("cannot set ") + key + "=" + value);
    };
    set("objective", options_.objective);
    set("max_depth", std::to_string(options_.max_depth));
    set("eta", std::to_string(options_.eta));
    set("min_child_weight", std::to_string(options_.min_child_weight));
    set("nthread", std::to_string(options_.threads));
    set("seed", std::to_string(options_.seed));
    set("verbosity", "0");
    for (int i = 0; i < options_.rounds; ++i)
        check(XGBoosterUpdateOneIter(b->handle, i, m.handle), "training failed");
    booster_ = std::move(b);
    names_ = std::move(names);
    trained_samples_ = static_cast<int>(samples.size());
}

std::vector<double> CostModel::predict(const std::vector<Features>& rows) const {
    std::vector<double> out(rows.size(), 0.0);
    if (!booster_ || rows.empty()) return out;
    std::map<std::string, size_t> column;
    for (size_t i = 0; i < names_.size(); ++i)
        column.emplace(names_[i], i);
    std::vector<float> data(rows.size() * names_.size(), kMissing);
    for (size_t r = 0; r < rows.size(); ++r)
        for (const auto& [name, value] : rows[r]) {
            auto it = column.find(name);
            if (it != column.end()) data[r * names_.size() + it->second] = value;
        }
    Matrix m(data, rows.size(), names_.size());
    bst_ulong n = 0;
    const float* result = nullptr;
    check(XGBoosterPredict(booster_->handle, m.handle, 0, 0, 0, &n, &result), "prediction failed");
    for (size_t i = 0; i < rows.size() && i < n; ++i)
        out[i] = result[i];
    return out;
}

void CostModel::save(const std::string& path, const std::string& note) const {
    if (!booster_) throw Error("cost_model", "cannot save " + path + ": the model is not trained");
    std::string joined;
    for (const auto& n : names_)
        joined += (joined.empty() ? "" : "\n") + n;
    check(XGBoosterSetAttr(booster_->handle, "kiln_features", joined.c_str()),
          "cannot store the feature names");
    check(XGBoosterSetAttr(booster_->handle, "kiln_feature_version",
                           std::to_string(kFeatureVersion).c_str()),
          "cannot store the feature version");
    check(XGBoosterSetAttr(booster_->handle, "kiln_samples",
                           std::to_string(trained_samples_).c_str()),
          "cannot store the sample count");
    check(XGBoosterSetAttr(booster_->handle, "kiln_note", note.c_str()), "cannot store the note");
    check(XGBoosterSaveModel(booster_->handle, path.c_str()), "cannot write " + path);
}

CostModel CostModel::load(const std::string& path, ModelOptions options) {
    if (!std::ifstream(path)) throw Error("cost_model", "cannot read " + path);
    CostModel m(std::move(options));
    auto b = std::make_unique<Booster>();
    check(XGBoosterCreate(nullptr, 0, &b->handle), "cannot create a booster");
    if (XGBoosterLoadModel(b->handle, path.c_str()) != 0)
        throw Error("cost_model",
                    path + " is not a kiln cost model: " + std::string(XGBGetLastError()));
    auto attr = [&](const char* key) -> std::string {
        const char* out = nullptr;
        int found = 0;
        check(XGBoosterGetAttr(b->handle, key, &out, &found), "cannot read " + path);
        return found && out ? out : "";
    };
    const std::string version = attr("kiln_feature_version");
    if (version.empty()) throw Error("cost_model", path + " is not a kiln cost model");
    if (version != std::to_string(kFeatureVersion))
        throw Error("cost_model", path + " was trained on feature version " + version +
                                      "; this kiln computes version " +
                                      std::to_string(kFeatureVersion));
    std::istringstream names(attr("kiln_features"));
    for (std::string n; std::getline(names, n);)
        m.names_.push_back(n);
    const std::string samples = attr("kiln_samples");
    m.trained_samples_ = samples.empty() ? 0 : std::stoi(samples);
    m.note_ = attr("kiln_note");
    check(XGBoosterSetParam(b->handle, "nthread", std::to_string(m.options_.threads).c_str()),
          "cannot set nthread");
    m.booster_ = std::move(b);
    return m;
}

}  // namespace kiln
