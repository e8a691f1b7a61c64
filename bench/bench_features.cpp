// kiln/bench/bench_features.cpp — kiln_bench_features: what the cost model's features cost
// against what compiling a candidate costs, on the layers of layers.json.
//
// Per layer: the default config and N sampled ones (one seed); each is featurized
// (summarize_loop_nest + featurize: lowering without unrolling, then the walk) and JIT-compiled
// (compile_kernel), one after the other. Prints per layer the medians and their ratio, then the
// median ratio over all layers: the cost model can afford to score that many candidates for the
// price of compiling one.
#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "bench/layer.h"
#include "bench/measure.h"
#include "core/error.h"
#include "cost_model/features.h"
#include "schedules/kernel.h"
#include "targets/target.h"

using namespace kiln;
using namespace kiln::bench;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Times featurizing candidate configs (the cost model's input) against compiling them, "
        "on the layers of layers.json."};
    std::string layers_path = std::string(KILN_SOURCE_DIR) + "/../shared/bench/layers.json";
    std::string only;
    int configs = 4;
    uint64_t seed = 1;
    app.add_option("--layers", layers_path, "the layer set (JSON)")->capture_default_str();
    app.add_option("--only", only, "comma-separated layer ids (default: all kiln can build)");
    app.add_option("--configs", configs, "sampled configs per layer, besides the default")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--seed", seed, "seed of the sampled configs")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        std::set<std::string> wanted;
        std::stringstream ss(only);
        for (std::string id; std::getline(ss, id, ',');)
            if (!id.empty()) wanted.insert(id);
        const Target t = host_target();
        std::vector<double> ratios;
        fmt::print(
            "| layer | configs | featurize ms (median) | compile ms (median) | compile / featurize "
            "|\n");
        fmt::print("| --- | ---: | ---: | ---: | ---: |\n");
        for (const Layer& l : load_layers(layers_path)) {
            if (!wanted.empty() && !wanted.count(l.id)) continue;
            Workload w;
            try {
                w = l.to_workload();
                find_space(w.op);
            } catch (const Error&) {
                continue;  // an op kiln does not build yet
            }
            const ScheduleSpace space = find_space(w.op).space(w, t);
            std::vector<Config> cs = {space.default_config};
            std::mt19937_64 rng(seed);
            for (int i = 0; i < configs * 20 && int(cs.size()) < configs + 1; ++i) {
                Config c = space.sample(rng);
                if (std::find(cs.begin(), cs.end(), c) == cs.end()) cs.push_back(c);
            }
            std::vector<double> feat, comp;
            for (const Config& c : cs) {
                auto start = std::chrono::steady_clock::now();
                Features f = featurize(w, c, t);
                feat.push_back(seconds_since(start) * 1e3);
                start = std::chrono::steady_clock::now();
                auto kernel = compile_kernel(w, c, t);
                comp.push_back(seconds_since(start) * 1e3);
            }
            const double ratio = median(comp) / median(feat);
            ratios.push_back(ratio);
            fmt::print("| {} | {} | {:.1f} | {:.1f} | {:.1f}x |\n", l.id, cs.size(), median(feat),
                       median(comp), ratio);
            std::fflush(stdout);
        }
        fmt::print("\nMedian over {} layers: compiling a candidate costs {:.1f}x featurizing it.\n",
                   ratios.size(), median(ratios));
    } catch (const std::exception& e) {
        fmt::print(stderr, "kiln_bench_features: {}\n", e.what());
        return 2;
    }
    return 0;
}
