// kiln/tuner/search.h — search strategies over a schedule space.
//
// A strategy proposes batches of configs and learns from their measurements. A Scorer (the
// cost model, later) ranks candidates before they are measured; without one, strategies fall
// back to their own heuristics. Strategies register themselves by name.
#pragma once

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/config.h"
#include "core/workload.h"
#include "schedules/space.h"

namespace kiln {

// Predicted goodness of each config (higher is better; only the order matters).
using Scorer = std::function<std::vector<double>(const Workload&, const std::vector<Config>&)>;

struct SearchOptions {
    uint64_t seed = 1;
    int population = 32;           // evolutionary: configs kept across rounds
    double mutation_rate = 0.8;    // evolutionary: share of children made by mutation
    double random_share = 0.2;     // share of each batch drawn at random (exploration)
    int candidates_per_slot = 16;  // with a scorer: candidates scored per config proposed
};

class SearchStrategy {
  public:
    virtual ~SearchStrategy() = default;
    // Up to `n` valid configs, none in `exclude` (already measured) and no repeats. Fewer only
    // when the space has run out of unmeasured points.
    virtual std::vector<Config> propose(int n, const std::unordered_set<uint64_t>& exclude) = 0;
    // Measured results: time in ms, or +infinity for a failed candidate.
    virtual void observe(const std::vector<Config>& configs, const std::vector<double>& ms) = 0;
};

// "random" or "evolutionary"; throws kiln::Error listing the known ones.
std::unique_ptr<SearchStrategy> make_search(const std::string& name, const ScheduleSpace& space,
                                            const Workload& w, const SearchOptions& options,
                                            Scorer scorer = nullptr);
std::vector<std::string> search_names();

}  // namespace kiln
