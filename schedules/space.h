// kiln/schedules/space.h — a schedule space: named knobs with finite domains.
//
// A space is built per (workload, target) by the op's schedule file: domains come from the
// workload's sizes (divisors and near-divisors) and the target (vector width, registers). A knob
// may be active only under other decisions (Winograd's tile only when the algorithm is
// Winograd); configs carry only active knobs, so two configs that compile to the same schedule
// are equal and hash alike. Constraints reject combinations with a reason a person can read.
#pragma once

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/config.h"

namespace kiln {

struct Knob {
    std::string name;
    std::string help;
    std::vector<KnobValue> domain;  // finite, first value is not special; never empty
    // Whether the knob matters given the other decisions; null = always.
    std::function<bool(const Config&)> active;
};

// A constraint returns a reason when the config is invalid, std::nullopt when it is fine.
using Constraint = std::function<std::optional<std::string>(const Config&)>;

class ScheduleSpace {
  public:
    std::string op;
    int version = 1;  // bump when knobs or their meaning change
    std::vector<Knob> knobs;
    std::vector<Constraint> constraints;
    Config default_config;  // good without any tuning; always valid
    // Defaults of knobs that default_config leaves inactive (another algorithm's), so that a
    // partial config that picks that algorithm can be completed. May be empty.
    Config other_defaults;

    const Knob* find(const std::string& name) const;
    bool is_active(const Knob& k, const Config& c) const;
    // Drops inactive knobs; knobs are decided in declaration order, so `active` may only look
    // at knobs declared before it.
    Config normalize(Config c) const;
    // `given` laid over default_config, and other_defaults under both, normalized: a partial
    // config ('{"algorithm": "im2col"}') completed with its own algorithm's defaults. Not
    // checked.
    Config with_defaults(const Config& given) const;
    // nullopt if valid, else why not (unknown knob, value outside domain, missing knob,
    // failed constraint).
    std::optional<std::string> check(const Config& c) const;
    // Random valid config (rejection sampling; falls back to the default after many tries).
    Config sample(std::mt19937_64& rng) const;
    // Changes one to three active knobs; the result is valid and differs from `c` when the
    // space has more than one point.
    Config mutate(const Config& c, std::mt19937_64& rng) const;
    // Each knob from one parent or the other; valid (falls back to a parent).
    Config crossover(const Config& a, const Config& b, std::mt19937_64& rng) const;
    double size() const;  // product of domain sizes (an upper bound on distinct configs)
};

// Helpers for building domains.
std::vector<KnobValue> int_domain(const std::vector<int64_t>& values);
std::vector<KnobValue> name_domain(const std::vector<std::string>& values);
// Divisors of n that are <= limit, plus "near divisors" (n rounded up to small multiples), sorted.
std::vector<int64_t> tile_candidates(int64_t n, int64_t limit);

}  // namespace kiln
