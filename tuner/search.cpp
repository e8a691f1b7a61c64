// kiln/tuner/search.cpp — the search strategies "random" and "evolutionary".
//
// Start at make_search() at the bottom: each strategy registers a factory under its name.
// StrategyBase holds the rules every proposal obeys (valid, never in `exclude`, never proposed
// or observed before), the random draw that finds the last unmeasured points of a small space
// by enumerating it, and the scorer hook: draw more candidates than slots, keep the best scored.
#include "tuner/search.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>
#include <utility>

#include "core/error.h"
#include "core/registry.h"

namespace kiln {
namespace {

using Hashes = std::unordered_set<uint64_t>;

// Consecutive random draws that may all hit known configs before a slot gives up on sampling.
// Rejection sampling of a nearly exhausted space misses most of the time; the enumeration
// below then finds the remaining points exactly, so this only bounds wasted work.
constexpr int kMissesPerSlot = 64;
// Spaces with at most this many points (product of domain sizes) are enumerated once sampling
// stops finding fresh configs, so a small space is exhausted exactly rather than approximately.
constexpr double kEnumerateLimit = 1 << 16;
// Children bred for one candidate before giving the candidate up to a random draw.
constexpr int kChildTries = 32;
// Parents compete in tournaments of this size. On the smooth synthetic space of
// tests/test_search.cpp a tournament of 6 converges faster (optimum in 17 of 20 seeds after 320
// trials, against 11 of 20 with 3), but real schedule spaces are rugged, so selection pressure
// stays moderate to keep the population diverse.
constexpr int kTournamentSize = 3;
// Below this many measured configs there is too little to breed from: propose at random.
constexpr size_t kMinParents = 4;
// Scored candidates kept for later batches (best_scored()). Replayed over the 24 layers' recorded
// random searches (kiln_bench_replay, 12 seeds), a reserve that grows with every batch reached
// 95% of the best in a mean of 69 trials per layer (median 46), against 76 (60) when each batch
// ranked only its own 16 draws per slot.
constexpr size_t kReserve = 4096;

class StrategyBase : public SearchStrategy {
  public:
    StrategyBase(const ScheduleSpace& space, const Workload& w, const SearchOptions& options,
                 Scorer scorer)
        : space_(space),
          workload_(w),
          options_(options),
          scorer_(std::move(scorer)),
          rng_(options.seed) {}

    void observe(const std::vector<Config>& configs, const std::vector<double>& ms) override {
        if (configs.size() != ms.size())
            throw Error("observe", std::to_string(configs.size()) + " configs but " +
                                       std::to_string(ms.size()) + " times");
        for (size_t i = 0; i < configs.size(); ++i) {
            proposed_.insert(configs[i].hash());
            learn(configs[i], ms[i]);
        }
    }

  protected:
    // A batch under construction; `hashes` keeps it free of repeats.
    struct Batch {
        std::vector<Config> configs;
        Hashes hashes;
        void add(Config c) {
            hashes.insert(c.hash());
            configs.push_back(std::move(c));
        }
    };

    virtual void learn(const Config& c, double ms) {}

    bool fresh(uint64_t h, const Hashes& exclude, const Hashes& taken) const {
        return !exclude.count(h) && !proposed_.count(h) && !taken.count(h);
    }
    bool fresh(const Config& c, const Hashes& exclude, const Hashes& taken) const {
        return fresh(c.hash(), exclude, taken) && !space_.check(c);
    }

    // A valid config neither excluded, proposed before nor in `taken`; nullopt when none is left
    // (exactly for enumerable spaces, after kMissesPerSlot misses for larger ones).
    std::optional<Config> draw_random(const Hashes& exclude, const Hashes& taken) {
        for (int i = 0; i < kMissesPerSlot; ++i) {
            Config c = space_.sample(rng_);
            if (fresh(c, exclude, taken)) return c;
        }
        if (space_.size() > kEnumerateLimit) return std::nullopt;
        if (!points_) points_ = enumerate();
        std::vector<const Config*> left;
        for (const auto& [c, h] : *points_)
            if (fresh(h, exclude, taken)) left.push_back(&c);
        if (left.empty()) return std::nullopt;
        return *left[std::uniform_int_distribution<size_t>(0, left.size() - 1)(rng_)];
    }

    // Up to `n` random configs appended to `batch`.
    void fill_random(size_t n, const Hashes& exclude, Batch& batch) {
        while (batch.configs.size() < n) {
            auto c = draw_random(exclude, batch.hashes);
            if (!c) return;
            batch.add(std::move(*c));
        }
    }

    // The `keep` best of `candidates` by the scorer (all of them, in order, without a scorer).
    // With a scorer, the reserve (earlier candidates scored but not chosen, still unmeasured)
    // competes too, under the newest model; their features are cached, so this costs a
    // prediction each. The best-scored of those not chosen now go back to it, at most kReserve.
    std::vector<Config> best_scored(std::vector<Config> candidates, size_t keep,
                                    const Hashes& exclude) {
        if (!scorer_) {
            if (candidates.size() > keep) candidates.resize(keep);
            return candidates;
        }
        Hashes pooled;
        for (const Config& c : candidates)
            pooled.insert(c.hash());
        for (Config& c : reserve_) {
            const uint64_t h = c.hash();
            if (!fresh(h, exclude, pooled)) continue;
            pooled.insert(h);
            candidates.push_back(std::move(c));
        }
        reserve_.clear();
        if (candidates.size() <= keep) return candidates;
        std::vector<double> scores = scorer_(workload_, candidates);
        if (scores.size() != candidates.size())
            throw Error("scorer", "returned " + std::to_string(scores.size()) + " scores for " +
                                      std::to_string(candidates.size()) + " configs");
        std::vector<size_t> order(candidates.size());
        std::iota(order.begin(), order.end(), 0);
        // Stable, so equal scores keep draw order and a seed still fixes the result.
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return scores[a] > scores[b]; });
        std::vector<Config> out;
        for (size_t i = 0; i < keep; ++i)
            out.push_back(std::move(candidates[order[i]]));
        for (size_t i = keep; i < order.size() && reserve_.size() < kReserve; ++i)
            reserve_.push_back(std::move(candidates[order[i]]));
        return out;
    }

    // How many of `n` slots go to plain random exploration.
    size_t random_slots(int n) {
        std::bernoulli_distribution explore(options_.random_share);
        size_t r = 0;
        for (int i = 0; i < n; ++i)
            r += explore(rng_);
        return r;
    }

    // `n` configs drawn at random; with a scorer, all but the random share are the best scored
    // of candidates_per_slot random candidates per slot.
    std::vector<Config> propose_random(int n, const Hashes& exclude) {
        Batch batch;
        if (n <= 0) return {};
        size_t scored = scorer_ ? n - random_slots(n) : 0;
        if (scored > 0) {
            std::vector<Config> pool;
            Hashes taken;
            size_t want = scored * static_cast<size_t>(options_.candidates_per_slot);
            while (pool.size() < want) {
                auto c = draw_random(exclude, taken);
                if (!c) break;
                taken.insert(c->hash());
                pool.push_back(std::move(*c));
            }
            for (auto& c : best_scored(std::move(pool), scored, exclude))
                batch.add(std::move(c));
        }
        fill_random(static_cast<size_t>(n), exclude, batch);
        return finish(std::move(batch));
    }

    std::vector<Config> finish(Batch batch) {
        for (uint64_t h : batch.hashes)
            proposed_.insert(h);
        return std::move(batch.configs);
    }

    ScheduleSpace space_;
    Workload workload_;
    SearchOptions options_;
    Scorer scorer_;
    std::mt19937_64 rng_;

  private:
    // Every valid point with its hash, in knob declaration order (so a seed fixes the draws).
    std::vector<std::pair<Config, uint64_t>> enumerate() const {
        std::vector<std::pair<Config, uint64_t>> out;
        Config c;
        std::function<void(size_t)> visit = [&](size_t i) {
            if (i == space_.knobs.size()) {
                if (!space_.check(c)) out.emplace_back(c, c.hash());
                return;
            }
            const Knob& k = space_.knobs[i];
            if (!space_.is_active(k, c)) return visit(i + 1);
            for (const auto& v : k.domain) {
                c.values[k.name] = v;
                visit(i + 1);
            }
            c.values.erase(k.name);
        };
        visit(0);
        return out;
    }

    Hashes proposed_;              // proposed or observed: never proposed again
    std::vector<Config> reserve_;  // scored, not chosen, best-scored first (best_scored())
    std::optional<std::vector<std::pair<Config, uint64_t>>> points_;
};

// Uniform samples of the space (or, with a scorer, the best scored of many samples).
class RandomSearch final : public StrategyBase {
  public:
    using StrategyBase::StrategyBase;

    std::vector<Config> propose(int n, const Hashes& exclude) override {
        return propose_random(n, exclude);
    }
};

// A population of the fastest measured configs; children by mutation or crossover of parents
// chosen by tournament, plus a share of random configs so the search keeps exploring.
class EvolutionarySearch final : public StrategyBase {
  public:
    using StrategyBase::StrategyBase;

    std::vector<Config> propose(int n, const Hashes& exclude) override {
        size_t min_parents = std::min(kMinParents, static_cast<size_t>(options_.population));
        if (n <= 0 || population_.size() < min_parents) return propose_random(n, exclude);
        size_t children = static_cast<size_t>(n) - random_slots(n);
        size_t per_child = scorer_ ? static_cast<size_t>(options_.candidates_per_slot) : 1;
        std::vector<Config> pool;
        Hashes taken;
        while (pool.size() < children * per_child) {
            auto c = breed(exclude, taken);
            if (!c) break;
            taken.insert(c->hash());
            pool.push_back(std::move(*c));
        }
        // With a model, fresh samples compete with the children: early on the population is a
        // few lucky configs, and the model ranks the whole space better than their neighbourhood
        // (kiln_bench_search, 4 layers: guided from scratch needed a median 59 trials to 95% of
        // the best with children only, against 22 for plain random search).
        if (scorer_) {
            const size_t bred = pool.size();
            for (size_t i = 0; i < bred; ++i) {
                auto c = draw_random(exclude, taken);
                if (!c) break;
                taken.insert(c->hash());
                pool.push_back(std::move(*c));
            }
        }
        Batch batch;
        for (auto& c : best_scored(std::move(pool), children, exclude))
            batch.add(std::move(c));
        // Random slots, and any children the population's neighbourhood could not supply.
        fill_random(static_cast<size_t>(n), exclude, batch);
        return finish(std::move(batch));
    }

  private:
    struct Member {
        Config config;
        uint64_t hash;
        double ms;
    };

    void learn(const Config& c, double ms) override {
        if (!std::isfinite(ms)) return;  // a failed candidate is never a parent
        uint64_t h = c.hash();
        auto same = std::find_if(population_.begin(), population_.end(),
                                 [&](const Member& m) { return m.hash == h; });
        if (same != population_.end()) {
            same->ms = std::min(same->ms, ms);
        } else {
            population_.push_back({c, h, ms});
        }
        std::stable_sort(population_.begin(), population_.end(),
                         [](const Member& a, const Member& b) { return a.ms < b.ms; });
        if (population_.size() > static_cast<size_t>(options_.population))
            population_.resize(static_cast<size_t>(options_.population));
    }

    // The population is sorted by time, so the lowest index drawn is the fastest entrant.
    const Config& tournament() {
        std::uniform_int_distribution<size_t> any(0, population_.size() - 1);
        size_t best = any(rng_);
        for (int i = 1; i < kTournamentSize; ++i)
            best = std::min(best, any(rng_));
        return population_[best].config;
    }

    std::optional<Config> breed(const Hashes& exclude, const Hashes& taken) {
        std::bernoulli_distribution mutation(options_.mutation_rate);
        for (int i = 0; i < kChildTries; ++i) {
            Config child;
            if (mutation(rng_)) {
                child = space_.mutate(tournament(), rng_);
            } else {
                const Config& a = tournament();
                child = space_.crossover(a, tournament(), rng_);
            }
            if (fresh(child, exclude, taken)) return child;
        }
        return std::nullopt;
    }

    std::vector<Member> population_;  // fastest first, at most options_.population
};

using SearchFactory = std::function<std::unique_ptr<SearchStrategy>(
    const ScheduleSpace&, const Workload&, const SearchOptions&, Scorer)>;

struct SearchDef {
    std::string name;
    SearchFactory make;
};

Registry<SearchDef>& registry() {
    static Registry<SearchDef> strategies;
    return strategies;
}

struct SearchRegistration {
    SearchRegistration(const std::string& name, SearchFactory make) {
        registry().add(name, std::make_unique<SearchDef>(SearchDef{name, std::move(make)}));
    }
};

template <class Strategy>
SearchRegistration register_strategy(const std::string& name) {
    return SearchRegistration(name, [](const ScheduleSpace& space, const Workload& w,
                                       const SearchOptions& options, Scorer scorer) {
        return std::make_unique<Strategy>(space, w, options, std::move(scorer));
    });
}

const SearchRegistration kRandom = register_strategy<RandomSearch>("random");
const SearchRegistration kEvolutionary = register_strategy<EvolutionarySearch>("evolutionary");

void check_options(const SearchOptions& o) {
    if (o.population < 1) throw Error("population", "must be at least 1");
    if (!(o.mutation_rate >= 0 && o.mutation_rate <= 1))
        throw Error("mutation_rate", "must be in [0, 1]");
    if (!(o.random_share >= 0 && o.random_share <= 1))
        throw Error("random_share", "must be in [0, 1]");
    if (o.candidates_per_slot < 1) throw Error("candidates_per_slot", "must be at least 1");
}

}  // namespace

std::unique_ptr<SearchStrategy> make_search(const std::string& name, const ScheduleSpace& space,
                                            const Workload& w, const SearchOptions& options,
                                            Scorer scorer) {
    const SearchDef& def = registry().find(name, "strategy", "unknown search strategy");
    check_options(options);
    return def.make(space, w, options, std::move(scorer));
}

std::vector<std::string> search_names() {
    std::vector<std::string> names;
    for (const SearchDef* def : registry().all())
        names.push_back(def->name);
    return names;
}

}  // namespace kiln
