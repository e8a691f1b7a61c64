// The learned cost model: it ranks configs within a workload, treats failures as the slowest,
// survives a save and load, refuses a file that is not its own, and its metrics are right.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "core/error.h"
#include "cost_model/model.h"

namespace kiln {
namespace {

std::string temp_path(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() /
               ("kiln-test-cost-model-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    return (dir / name).string();
}

// A config's time depends on its "tile" (best at 8) and a noise feature that means nothing;
// the workload's size scales every time.
TrainingSample sample(double tile, double noise, double size, const std::string& group) {
    TrainingSample s;
    s.features = {{"knob.tile", float(std::log2(tile))},
                  {"knob.noise", float(noise)},
                  {"shape.size", float(size)}};
    s.ms = size * (1.0 + std::pow(std::log2(tile) - 3.0, 2));
    s.group = group;
    return s;
}

std::vector<TrainingSample> training_set(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> noise(0, 1);
    std::vector<TrainingSample> out;
    for (double size : {1.0, 4.0, 16.0})
        for (double tile : {1, 2, 4, 8, 16, 32, 64})
            for (int rep = 0; rep < 2; ++rep)
                out.push_back(sample(tile, noise(rng), size, "w" + std::to_string(int(size))));
    return out;
}

TEST(CostModel, LearnsTheOrderWithinAWorkload) {
    for (const char* objective : {"rank:pairwise", "reg:squarederror"}) {
        SCOPED_TRACE(objective);
        ModelOptions o;
        o.objective = objective;
        CostModel m(o);
        EXPECT_FALSE(m.trained());
        m.fit(training_set(1));
        ASSERT_TRUE(m.trained());
        EXPECT_EQ(m.trained_samples(), 42);
        // A workload it has not seen, tiles in between.
        std::vector<Features> rows;
        std::vector<double> truth;
        for (double tile : {3.0, 6.0, 12.0, 24.0, 48.0, 1.5}) {
            TrainingSample s = sample(tile, 0.5, 8.0, "new");
            rows.push_back(s.features);
            truth.push_back(-s.ms);
        }
        std::vector<double> score = m.predict(rows);
        EXPECT_GT(kendall_tau(score, truth), 0.6);
        // The config it ranks first is one of the two truly fastest.
        size_t first = std::max_element(score.begin(), score.end()) - score.begin();
        std::vector<double> sorted = truth;
        std::sort(sorted.rbegin(), sorted.rend());
        EXPECT_GE(truth[first], sorted[1]) << "ranked tile index " << first << " first";
    }
}

TEST(CostModel, FailuresRankLastAndAllFailedGroupsAreSkipped) {
    std::vector<TrainingSample> s = training_set(2);
    for (auto& x : s)
        if (x.features[0].second >= 5) x.ms = std::numeric_limits<double>::infinity();
    TrainingSample only_failed = sample(8, 0.1, 2.0, "broken");
    only_failed.ms = 0;
    s.push_back(only_failed);
    CostModel m;
    m.fit(s);
    EXPECT_EQ(m.trained_samples(), 42) << "the all-failed workload is left out";
    std::vector<double> score =
        m.predict({sample(8, 0.5, 4, "x").features, sample(64, 0.5, 4, "x").features});
    EXPECT_GT(score[0], score[1]);
}

TEST(CostModel, RelativeSpeedIsPerWorkload) {
    std::vector<TrainingSample> s(4);
    s[0].group = "a", s[0].ms = 2;
    s[1].group = "a", s[1].ms = 4;
    s[2].group = "b", s[2].ms = 10;
    s[3].group = "b", s[3].ms = -1;  // failed
    std::vector<float> r = relative_speed(s);
    EXPECT_FLOAT_EQ(r[0], 1.0f);
    EXPECT_FLOAT_EQ(r[1], 0.5f);
    EXPECT_FLOAT_EQ(r[2], 1.0f);
    EXPECT_FLOAT_EQ(r[3], 0.0f);
}

TEST(CostModel, SaveAndLoadKeepPredictionsAndNames) {
    CostModel m;
    m.fit(training_set(3));
    const std::string path = temp_path("model.json");
    m.save(path, "conv2d on x86-64-linux-avx2");
    CostModel back = CostModel::load(path);
    EXPECT_EQ(back.feature_names(), m.feature_names());
    EXPECT_EQ(back.trained_samples(), m.trained_samples());
    EXPECT_EQ(back.note(), "conv2d on x86-64-linux-avx2");
    std::vector<Features> rows = {sample(4, 0.2, 2, "q").features,
                                  sample(32, 0.9, 2, "q").features,
                                  {{"unseen.feature", 3.0f}}};
    EXPECT_EQ(back.predict(rows), m.predict(rows));
}

TEST(CostModel, UntrainedPredictsZerosAndCannotBeSaved) {
    CostModel m;
    EXPECT_EQ(m.predict({{{"a", 1.0f}}, {}}), (std::vector<double>{0.0, 0.0}));
    EXPECT_THROW(m.save(temp_path("nothing.json")), Error);
}

TEST(CostModel, LoadRefusesOtherFilesByName) {
    const std::string garbage = temp_path("garbage.json");
    std::ofstream(garbage) << "this is not a model";
    try {
        CostModel::load(garbage);
        FAIL() << "loaded garbage";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(garbage), std::string::npos) << e.what();
    }
    EXPECT_THROW(CostModel::load(temp_path("missing.json")), Error);

    // A model of another feature version.
    CostModel m;
    m.fit(training_set(4));
    const std::string path = temp_path("old.json");
    m.save(path);
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = std::regex_replace(text, std::regex("\"kiln_feature_version\":\"[0-9]+\""),
                              "\"kiln_feature_version\":\"999\"");
    std::ofstream(path) << text;
    try {
        CostModel::load(path);
        FAIL() << "loaded a model of another feature version";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("feature version 999"), std::string::npos) << e.what();
    }
}

TEST(Metrics, KendallTauAndTopKRecall) {
    EXPECT_DOUBLE_EQ(kendall_tau({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
    EXPECT_DOUBLE_EQ(kendall_tau({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
    // One swapped pair of six: (5 - 1) / 6.
    EXPECT_NEAR(kendall_tau({1, 2, 3, 4}, {1, 3, 2, 4}), 4.0 / 6.0, 1e-12);
    EXPECT_DOUBLE_EQ(kendall_tau({1}, {1}), 0.0);
    EXPECT_DOUBLE_EQ(top_k_recall({5, 4, 3, 2}, {5, 4, 3, 2}, 2), 1.0);
    EXPECT_DOUBLE_EQ(top_k_recall({5, 4, 3, 2}, {2, 3, 4, 5}, 2), 0.0);
    EXPECT_DOUBLE_EQ(top_k_recall({5, 1, 4, 2}, {5, 4, 3, 2}, 2), 0.5);
}

}  // namespace
}  // namespace kiln
