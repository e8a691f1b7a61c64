#include "schedules/space.h"

#include <algorithm>
#include <set>

namespace kiln {

const Knob* ScheduleSpace::find(const std::string& name) const {
    for (const auto& k : knobs)
        if (k.name == name) return &k;
    return nullptr;
}

bool ScheduleSpace::is_active(const Knob& k, const Config& c) const {
    return !k.active || k.active(c);
}

Config ScheduleSpace::with_defaults(const Config& given) const {
    Config c = other_defaults;
    for (const auto* layer : {&default_config, &given})
        for (const auto& [name, value] : layer->values)
            c.set(name, value);
    return normalize(c);
}

Config ScheduleSpace::normalize(Config c) const {
    Config out;
    for (const auto& k : knobs) {
        if (!is_active(k, out)) continue;
        auto it = c.values.find(k.name);
        if (it != c.values.end()) out.values[k.name] = it->second;
    }
    return out;
}

std::optional<std::string> ScheduleSpace::check(const Config& c) const {
    for (const auto& [name, v] : c.values) {
        const Knob* k = find(name);
        if (!k) return "unknown knob '" + name + "' for " + op;
    }
    Config seen;
    for (const auto& k : knobs) {
        bool active = is_active(k, seen);
        auto it = c.values.find(k.name);
        if (!active) {
            if (it != c.values.end())
                return "knob '" + k.name + "' is set but inactive under the other decisions";
            continue;
        }
        if (it == c.values.end()) return "knob '" + k.name + "' is missing";
        if (std::find(k.domain.begin(), k.domain.end(), it->second) == k.domain.end())
            return "knob '" + k.name + "' = " + to_string(it->second) + " is outside its domain";
        seen.values[k.name] = it->second;
    }
    for (const auto& constraint : constraints)
        if (auto why = constraint(c)) return why;
    return std::nullopt;
}

namespace {
template <class T>
const T& pick(const std::vector<T>& v, std::mt19937_64& rng) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
constexpr int kMaxTries = 2000;
}  // namespace

Config ScheduleSpace::sample(std::mt19937_64& rng) const {
    for (int attempt = 0; attempt < kMaxTries; ++attempt) {
        Config c;
        for (const auto& k : knobs)
            if (is_active(k, c)) c.values[k.name] = pick(k.domain, rng);
        if (!check(c)) return c;
    }
    return default_config;
}

Config ScheduleSpace::mutate(const Config& c, std::mt19937_64& rng) const {
    for (int attempt = 0; attempt < kMaxTries; ++attempt) {
        Config m = c;
        int changes = std::uniform_int_distribution<int>(1, 3)(rng);
        for (int i = 0; i < changes; ++i) {
            std::vector<const Knob*> active;
            for (const auto& k : knobs)
                if (is_active(k, m) && k.domain.size() > 1) active.push_back(&k);
            if (active.empty()) return c;
            const Knob* k = pick(active, rng);
            m.values[k->name] = pick(k->domain, rng);
        }
        // A changed decision can switch knobs on: fill those with random values.
        Config filled;
        for (const auto& k : knobs) {
            if (!is_active(k, filled)) continue;
            auto it = m.values.find(k.name);
            filled.values[k.name] = it != m.values.end() ? it->second : pick(k.domain, rng);
        }
        if (filled != c && !check(filled)) return filled;
    }
    return c;
}

Config ScheduleSpace::crossover(const Config& a, const Config& b, std::mt19937_64& rng) const {
    std::bernoulli_distribution coin(0.5);
    for (int attempt = 0; attempt < 64; ++attempt) {
        Config child;
        for (const auto& k : knobs) {
            if (!is_active(k, child)) continue;
            const Config& parent = coin(rng) ? a : b;
            auto it = parent.values.find(k.name);
            if (it == parent.values.end()) {
                const Config& other = (&parent == &a) ? b : a;
                it = other.values.find(k.name);
                if (it == other.values.end()) {
                    child.values[k.name] = pick(k.domain, rng);
                    continue;
                }
            }
            child.values[k.name] = it->second;
        }
        if (!check(child)) return child;
    }
    return coin(rng) ? a : b;
}

double ScheduleSpace::size() const {
    double s = 1;
    for (const auto& k : knobs)
        s *= static_cast<double>(k.domain.size());
    return s;
}

std::vector<KnobValue> int_domain(const std::vector<int64_t>& values) {
    return std::vector<KnobValue>(values.begin(), values.end());
}

std::vector<KnobValue> name_domain(const std::vector<std::string>& values) {
    return std::vector<KnobValue>(values.begin(), values.end());
}

std::vector<int64_t> tile_candidates(int64_t n, int64_t limit) {
    std::set<int64_t> out;
    for (int64_t d = 1; d <= std::min(n, limit); ++d)
        if (n % d == 0) out.insert(d);
    // Near divisors: factors that leave a small remainder tile (n a little above a multiple).
    for (int64_t d : {2, 4, 8, 16, 32, 64})
        if (d <= limit && d < n && n % d != 0 && (n % d) * 4 >= d) out.insert(d);
    if (out.empty()) out.insert(1);
    return {out.begin(), out.end()};
}

}  // namespace kiln
