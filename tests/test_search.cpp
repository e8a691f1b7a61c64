// Search strategies on a synthetic space with a known optimum, and on the real conv2d space.
//
// The synthetic cost is a sum of per-knob penalties plus one interaction term, so its minimum
// (1.0 at a=32, b=16, c=4, d=64, e=3) is known and unique; nothing is compiled or measured.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "schedules/kernel.h"
#include "schedules/space.h"
#include "targets/target.h"
#include "tests/test_util.h"
#include "tuner/search.h"

using namespace kiln;
using kiln::testing::error_field;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Five knobs (8, 8, 8, 8 and 6 values), one constraint: 24576 points, 20736 of them valid.
ScheduleSpace synthetic_space() {
    ScheduleSpace sp;
    sp.op = "synthetic";
    std::vector<int64_t> pow2 = {1, 2, 4, 8, 16, 32, 64, 128};
    for (const char* name : {"a", "b", "c", "d"})
        sp.knobs.push_back({name, "", int_domain(pow2), nullptr});
    sp.knobs.push_back({"e", "", int_domain({0, 1, 2, 3, 4, 5}), nullptr});
    sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
        if (c.i("a") * c.i("b") > 1024) return "a * b > 1024";
        return std::nullopt;
    });
    for (const char* name : {"a", "b", "c", "d", "e"})
        sp.default_config.set(name, int64_t{1});
    return sp;
}

double cost(const Config& c) {
    auto lg = [&](const char* k) { return std::log2(static_cast<double>(c.i(k))); };
    double a = lg("a"), b = lg("b"), cc = lg("c"), d = lg("d");
    double e = static_cast<double>(c.i("e"));
    return 1 + (a - 5) * (a - 5) + 0.5 * (b - 4) * (b - 4) + (cc - 2) * (cc - 2) +
           0.3 * (d - 6) * (d - 6) + 0.7 * (e - 3) * (e - 3) + 0.5 * (a - cc - 3) * (a - cc - 3);
}
constexpr double kOptimum = 1.0;

// A 4 x 4 grid less its four corners: 12 valid points.
ScheduleSpace small_space() {
    ScheduleSpace sp;
    sp.op = "small";
    sp.knobs.push_back({"x", "", int_domain({1, 2, 3, 4}), nullptr});
    sp.knobs.push_back({"y", "", int_domain({1, 2, 3, 4}), nullptr});
    sp.constraints.push_back([](const Config& c) -> std::optional<std::string> {
        if (c.i("x") + c.i("y") < 3 || c.i("x") + c.i("y") > 7) return "x + y outside [3, 7]";
        if (c.i("x") == 4 && c.i("y") == 1) return "x = 4 with y = 1";
        if (c.i("x") == 1 && c.i("y") == 4) return "x = 1 with y = 4";
        return std::nullopt;
    });
    sp.default_config.set("x", int64_t{2});
    sp.default_config.set("y", int64_t{2});
    return sp;
}

Workload synthetic_workload() {
    return Workload::from_shape("dense", find_op("dense").example());
}

Scorer perfect_scorer() {
    return [](const Workload&, const std::vector<Config>& configs) {
        std::vector<double> s;
        for (const auto& c : configs)
            s.push_back(-cost(c));
        return s;
    };
}

struct RunResult {
    double best = kInf;
    int trials = 0;  // measured until the optimum was reached (or the budget ran out)
};

// Proposes and "measures" batches with cost() until the budget or, if asked, the optimum.
RunResult run(const std::string& strategy, uint64_t seed, int budget, Scorer scorer = nullptr,
              bool stop_at_optimum = false) {
    ScheduleSpace sp = synthetic_space();
    SearchOptions o;
    o.seed = seed;
    auto search = make_search(strategy, sp, synthetic_workload(), o, std::move(scorer));
    RunResult r;
    while (r.trials < budget) {
        auto batch = search->propose(std::min(8, budget - r.trials), {});
        if (batch.empty()) break;
        std::vector<double> ms;
        for (const auto& c : batch) {
            ms.push_back(cost(c));
            r.best = std::min(r.best, ms.back());
            ++r.trials;
            if (stop_at_optimum && r.best == kOptimum) return r;
        }
        search->observe(batch, ms);
    }
    return r;
}

std::vector<Config> all_points(const ScheduleSpace& sp) {
    std::vector<Config> out;
    for (int64_t x : {1, 2, 3, 4})
        for (int64_t y : {1, 2, 3, 4}) {
            Config c;
            c.set("x", x);
            c.set("y", y);
            if (!sp.check(c)) out.push_back(c);
        }
    return out;
}

}  // namespace

TEST(Search, SyntheticOptimumIsWhereTheTestSaysItIs) {
    ScheduleSpace sp = synthetic_space();
    Config best;
    std::vector<std::pair<std::string, int64_t>> values = {
        {"a", 32}, {"b", 16}, {"c", 4}, {"d", 64}, {"e", 3}};
    for (const auto& [k, v] : values)
        best.set(k, v);
    ASSERT_FALSE(sp.check(best));
    EXPECT_EQ(cost(best), kOptimum);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 2000; ++i) {
        Config c = sp.sample(rng);
        if (c != best) EXPECT_GT(cost(c), kOptimum);
    }
    EXPECT_EQ(all_points(small_space()).size(), 12u);
}

TEST(Search, ProposalsAreValidUniqueAndNeverExcluded) {
    ScheduleSpace sp = synthetic_space();
    std::mt19937_64 rng(11);
    std::unordered_set<uint64_t> exclude;
    for (int i = 0; i < 300; ++i)
        exclude.insert(sp.sample(rng).hash());
    for (const std::string& name : search_names()) {
        for (Scorer scorer : {Scorer(), perfect_scorer()}) {
            SearchOptions o;
            o.seed = 5;
            auto search = make_search(name, sp, synthetic_workload(), o, scorer);
            std::unordered_set<uint64_t> seen;
            for (int round = 0; round < 12; ++round) {
                auto batch = search->propose(8, exclude);
                ASSERT_EQ(batch.size(), 8u) << name;
                std::vector<double> ms;
                for (const auto& c : batch) {
                    EXPECT_FALSE(sp.check(c)) << name << " " << c.to_string();
                    EXPECT_FALSE(exclude.count(c.hash())) << name << " " << c.to_string();
                    EXPECT_TRUE(seen.insert(c.hash()).second) << name << " " << c.to_string();
                    ms.push_back(cost(c));
                }
                search->observe(batch, ms);
            }
        }
    }
}

TEST(Search, SmallSpaceIsExhaustedExactly) {
    ScheduleSpace sp = small_space();
    std::vector<Config> points = all_points(sp);
    std::unordered_set<uint64_t> exclude = {points[0].hash(), points[7].hash()};
    for (const std::string& name : search_names()) {
        for (Scorer scorer : {Scorer(), Scorer([](const Workload&, const std::vector<Config>& cs) {
                                  return std::vector<double>(cs.size(), 0.0);
                              })}) {
            SearchOptions o;
            o.seed = 2;
            auto search = make_search(name, sp, synthetic_workload(), o, scorer);
            std::unordered_set<uint64_t> seen = exclude;
            std::vector<size_t> sizes;
            for (int round = 0; round < 4; ++round) {
                auto batch = search->propose(4, exclude);
                sizes.push_back(batch.size());
                std::vector<double> ms;
                for (const auto& c : batch) {
                    EXPECT_FALSE(sp.check(c));
                    EXPECT_TRUE(seen.insert(c.hash()).second) << name << " " << c.to_string();
                    ms.push_back(static_cast<double>(c.i("x") + c.i("y")));
                }
                search->observe(batch, ms);
            }
            // 10 unmeasured points: 4 + 4 + the last 2, then nothing.
            EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 2, 0})) << name;
            EXPECT_EQ(seen.size(), 12u) << name;
        }
    }
}

TEST(Search, SameSeedSameSequence) {
    ScheduleSpace sp = synthetic_space();
    for (const std::string& name : search_names()) {
        auto sequence = [&](uint64_t seed) {
            SearchOptions o;
            o.seed = seed;
            auto search = make_search(name, sp, synthetic_workload(), o);
            std::vector<std::string> out;
            for (int round = 0; round < 8; ++round) {
                auto batch = search->propose(8, {});
                std::vector<double> ms;
                for (const auto& c : batch) {
                    out.push_back(c.to_string());
                    ms.push_back(cost(c));
                }
                search->observe(batch, ms);
            }
            return out;
        };
        auto first = sequence(42);
        EXPECT_EQ(first.size(), 64u);
        EXPECT_EQ(sequence(42), first) << name;
        EXPECT_NE(sequence(43), first) << name;
    }
}

TEST(Search, EvolutionaryBeatsRandomOnAverage) {
    // 320 trials in batches of 8 over seeds 1-10. Measured: evolutionary mean best 1.16 (the
    // optimum in 6 of 10 seeds), random 3.05 (optimum in none). At 120 trials: 2.89 against 3.75.
    constexpr int kSeeds = 10, kBudget = 320;
    double evo = 0, rnd = 0;
    int evo_optimum = 0, rnd_optimum = 0;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        RunResult e = run("evolutionary", seed, kBudget);
        RunResult r = run("random", seed, kBudget);
        EXPECT_EQ(e.trials, kBudget);
        evo += e.best / kSeeds;
        rnd += r.best / kSeeds;
        evo_optimum += e.best == kOptimum;
        rnd_optimum += r.best == kOptimum;
    }
    EXPECT_LT(evo + 1.0, rnd) << "evolutionary " << evo << ", random " << rnd;
    EXPECT_GE(evo_optimum, 4);
    EXPECT_EQ(rnd_optimum, 0);
}

TEST(Search, PerfectScorerReachesTheOptimumInFarFewerTrials) {
    // Mean trials to the optimum over seeds 1-5, measured: evolutionary 23 with the scorer, 295
    // without; random 1823 with, 14138 without (of 20736 valid points).
    constexpr int kSeeds = 5, kBudget = 30000;
    for (const std::string& name : search_names()) {
        double plain = 0, scored = 0;
        for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
            RunResult p = run(name, seed, kBudget, nullptr, true);
            RunResult s = run(name, seed, kBudget, perfect_scorer(), true);
            ASSERT_EQ(s.best, kOptimum) << name << " seed " << seed;
            plain += static_cast<double>(p.trials) / kSeeds;
            scored += static_cast<double>(s.trials) / kSeeds;
        }
        EXPECT_LT(scored * 3, plain)
            << name << ": " << scored << " trials with the scorer, " << plain << " without";
    }
}

TEST(Search, ScoredCandidatesNotChosenCompeteInLaterBatches) {
    for (const std::string& name : search_names()) {
        std::vector<std::vector<Config>> scored;  // what the scorer saw, per call
        Scorer record = [&](const Workload&, const std::vector<Config>& configs) {
            scored.push_back(configs);
            return std::vector<double>(configs.size(), 0.0);
        };
        SearchOptions o;
        o.seed = 5;
        o.random_share = 0;
        auto search = make_search(name, synthetic_space(), synthetic_workload(), o, record);
        auto first = search->propose(8, {});
        ASSERT_EQ(scored.size(), 1u) << name;
        std::unordered_set<uint64_t> chosen, measured_elsewhere;
        for (const auto& c : first)
            chosen.insert(c.hash());
        std::vector<uint64_t> left;  // scored, not proposed
        for (const auto& c : scored[0])
            if (!chosen.count(c.hash())) left.push_back(c.hash());
        ASSERT_GT(left.size(), 64u) << name;
        // One of them is measured by someone else meanwhile: it must not come back.
        measured_elsewhere.insert(left[0]);
        std::vector<double> ms;
        for (const auto& c : first)
            ms.push_back(cost(c));
        search->observe(first, ms);
        auto second = search->propose(8, measured_elsewhere);
        ASSERT_EQ(scored.size(), 2u) << name;
        std::unordered_set<uint64_t> again;
        for (const auto& c : scored[1])
            again.insert(c.hash());
        EXPECT_FALSE(again.count(left[0])) << name << ": an excluded config was scored";
        for (size_t i = 1; i < left.size(); ++i)
            ASSERT_TRUE(again.count(left[i])) << name << ": candidate " << i << " was dropped";
        for (const auto& c : second) {
            EXPECT_FALSE(chosen.count(c.hash())) << name;
            EXPECT_NE(c.hash(), left[0]) << name;
        }
    }
}

TEST(Search, FailedCandidatesNeverBecomeParents) {
    ScheduleSpace sp = synthetic_space();
    SearchOptions o;
    o.seed = 9;
    o.mutation_rate = 0;  // crossover only: every child's values come from its parents
    o.random_share = 0;
    auto search = make_search("evolutionary", sp, synthetic_workload(), o);
    // Failed candidates all have d = 128 and would look best; measured ones never have it.
    std::mt19937_64 rng(4);
    std::vector<Config> warm;
    std::vector<double> ms;
    while (warm.size() < 24) {
        Config c = sp.sample(rng);
        bool fail = warm.size() % 2 == 0;
        if (fail != (c.i("d") == 128)) continue;
        warm.push_back(c);
        ms.push_back(fail ? kInf : cost(c));
    }
    search->observe(warm, ms);
    std::unordered_set<uint64_t> warm_hashes;
    for (const auto& c : warm)
        warm_hashes.insert(c.hash());
    for (int round = 0; round < 5; ++round) {
        auto batch = search->propose(8, {});
        ASSERT_EQ(batch.size(), 8u);
        std::vector<double> batch_ms;
        for (const auto& c : batch) {
            EXPECT_NE(c.i("d"), 128) << c.to_string();
            EXPECT_FALSE(warm_hashes.count(c.hash())) << "observed config proposed again";
            batch_ms.push_back(cost(c));
        }
        search->observe(batch, batch_ms);
    }
}

TEST(Search, UnknownStrategyAndBadOptionsAreErrors) {
    EXPECT_EQ(search_names(), (std::vector<std::string>{"evolutionary", "random"}));
    ScheduleSpace sp = synthetic_space();
    try {
        make_search("annealing", sp, synthetic_workload(), SearchOptions{});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.field(), "strategy");
        std::string what = e.what();
        EXPECT_NE(what.find("evolutionary"), std::string::npos) << what;
        EXPECT_NE(what.find("random"), std::string::npos) << what;
    }
    SearchOptions bad;
    bad.population = 0;
    EXPECT_EQ(error_field([&] { make_search("evolutionary", sp, synthetic_workload(), bad); }),
              "population");
    bad = SearchOptions{};
    bad.random_share = 1.5;
    EXPECT_EQ(error_field([&] { make_search("random", sp, synthetic_workload(), bad); }),
              "random_share");
    auto wrong_size = [](const Workload&, const std::vector<Config>&) {
        return std::vector<double>{1.0};
    };
    auto search = make_search("random", sp, synthetic_workload(), SearchOptions{}, wrong_size);
    EXPECT_EQ(error_field([&] { search->propose(8, {}); }), "scorer");
}

TEST(Search, Conv2dSpaceProposalsAreValid) {
    Workload w = Workload::from_shape("conv2d", "c=16,h=14,w=14,k=32,r=3,s=3,pad=1");
    ScheduleSpace sp = find_space("conv2d").space(w, host_target());
    for (const std::string& name : search_names()) {
        SearchOptions o;
        o.seed = 17;
        auto search = make_search(name, sp, w, o);
        std::unordered_set<uint64_t> seen = {sp.default_config.hash()};
        for (int round = 0; round < 6; ++round) {
            auto batch = search->propose(8, {sp.default_config.hash()});
            ASSERT_EQ(batch.size(), 8u) << name;
            std::vector<double> ms;
            for (const auto& c : batch) {
                auto why = sp.check(c);
                EXPECT_FALSE(why) << name << " " << c.to_string() << ": " << *why;
                EXPECT_TRUE(seen.insert(c.hash()).second) << name << " " << c.to_string();
                // Any deterministic stand-in for a time; every fifth candidate "fails".
                ms.push_back(c.hash() % 5 == 0 ? kInf : 1.0 + static_cast<double>(c.hash() % 97));
            }
            search->observe(batch, ms);
        }
    }
}
