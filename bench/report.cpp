// kiln/bench/report.cpp — the Markdown table, the docs/PERFORMANCE.md section, the raw JSON.
#include "bench/report.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>

#include "bench/measure.h"
#include "core/error.h"

namespace kiln::bench {
namespace {

bool usable(const ImplResult& r) {
    return r.ran && r.correct;
}

// Free text (an error message) made safe for one table cell.
std::string cell_text(const std::string& text) {
    constexpr size_t kMax = 120;
    std::string out;
    for (char ch : text.substr(0, kMax)) {
        if (ch == '|')
            out += "\\|";
        else
            out += (ch == '\n' || ch == '\r') ? ' ' : ch;
    }
    return text.size() > kMax ? out + "..." : out;
}

std::string ms_cell(const ImplResult& r) {
    if (!r.ran) return r.failed ? "failed: " + cell_text(r.why) : "–";
    std::string cell = fmt::format("{:.3f}", r.median_seconds * 1e3);
    if (!r.correct) cell += fmt::format(" **wrong** (err {:.1e})", r.relative_error);
    return cell;
}

std::string gflops_cell(const ImplResult& r, double flops) {
    return r.ran ? fmt::format("{:.1f}", flops / r.median_seconds * 1e-9) : "–";
}

// Speed of kiln relative to the peer: > 1 means kiln is faster.
std::string ratio_cell(const ImplResult& kiln, const ImplResult& peer) {
    if (!usable(kiln) || !usable(peer)) return "–";
    return fmt::format("{:.2f}", peer.median_seconds / kiln.median_seconds);
}

// `which` picks kiln's column (default or tuned), `other` the implementation compared with.
std::string geomean_line(const std::vector<LayerResult>& results, const std::string& kiln_name,
                         const ImplResult LayerResult::*which, const std::string& peer,
                         const std::function<const ImplResult&(const LayerResult&)>& other,
                         bool conv) {
    std::vector<double> ratios;
    size_t layers = 0;
    for (const auto& r : results) {
        if (r.layer->is_conv != conv || !usable(other(r))) continue;
        ++layers;
        const ImplResult& k = r.*which;
        if (usable(k)) ratios.push_back(other(r).median_seconds / k.median_seconds);
    }
    const char* kind = conv ? "conv (conv2d + depthwise)" : "dense";
    if (layers == 0) return "";
    if (ratios.empty())
        return fmt::format("- {} vs {}, {} layers: no correct {} kernel for any of the {}\n",
                           kiln_name, peer, kind, kiln_name, layers);
    return fmt::format("- {} vs {}, {} layers: geomean speed ratio **{:.2f}** over {} of {}\n",
                       kiln_name, peer, kind, geomean(ratios), ratios.size(), layers);
}

// The per-layer goals of the tuner's benchmark, against oneDNN: Winograd's share of 3x3
// stride-1 layers, depthwise layers where oneDNN is weak, every other conv layer.
struct LayerGoal {
    const char* what;
    double at_least;
};

LayerGoal goal_of(const Layer& l) {
    if (l.op == "depthwise_conv2d") return {"depthwise layers >= 1.3x oneDNN", 1.3};
    if (l.op == "conv2d" && l.conv.r == 3 && l.conv.s == 3 && l.conv.stride == 1 &&
        l.conv.dilation == 1 && l.conv.groups == 1)
        return {"3x3 stride-1 layers >= 1.4x oneDNN (Winograd)", 1.4};
    return {"every other conv layer >= 0.9x oneDNN", 0.9};
}

int peer_index(const RunInfo& info, const std::string& name) {
    for (size_t p = 0; p < info.peer_names.size(); ++p)
        if (info.peer_names[p] == name) return static_cast<int>(p);
    return -1;
}

// "Goals" table: kiln's best (tuned when the run tuned) against each goal, with the layers that
// miss and by how much. Empty when oneDNN did not run.
std::string goals_section(const RunInfo& info, const std::vector<LayerResult>& results) {
    const int onednn = peer_index(info, "oneDNN");
    if (onednn < 0) return "";
    const bool tuned = info.tune_trials > 0;
    auto best = [&](const LayerResult& r) -> const ImplResult& {
        return tuned && usable(r.kiln_tuned) ? r.kiln_tuned : r.kiln;
    };
    auto ratio = [&](const LayerResult& r, const ImplResult& peer) {
        return usable(best(r)) && usable(peer) ? peer.median_seconds / best(r).median_seconds : 0.0;
    };
    std::ostringstream out;
    out << fmt::format(
        "\n### Goals\n\n{} against oneDNN (and, for dense, OpenBLAS and Adams2019) in this "
        "run.\n\n",
        tuned ? "kiln tuned (its default where tuning found nothing)" : "kiln's default configs");
    out << "| goal | reached | holds |\n| --- | --- | --- |\n";
    for (const char* what :
         {"3x3 stride-1 layers >= 1.4x oneDNN (Winograd)", "depthwise layers >= 1.3x oneDNN",
          "every other conv layer >= 0.9x oneDNN"}) {
        std::vector<std::string> figures, misses;
        for (const auto& r : results) {
            if (!r.layer->is_conv) continue;
            LayerGoal g = goal_of(*r.layer);
            if (std::string(g.what) != what) continue;
            double x = ratio(r, r.peers[onednn]);
            figures.push_back(fmt::format("{} {:.2f}x", r.layer->id, x));
            if (x < g.at_least) misses.push_back(fmt::format("{} ({:.2f}x)", r.layer->id, x));
        }
        if (figures.empty()) continue;
        std::string list;
        for (const auto& f : figures)
            list += (list.empty() ? "" : ", ") + f;
        std::string verdict = "yes";
        if (!misses.empty()) {
            verdict = "**no**: ";
            for (size_t i = 0; i < misses.size(); ++i)
                verdict += (i ? ", " : "") + misses[i];
        }
        out << fmt::format("| {} | {} | {} |\n", what, list, verdict);
    }
    auto geomean_row = [&](const std::string& what, bool conv, double at_least,
                           const std::function<double(const LayerResult&)>& of) {
        std::vector<double> v;
        for (const auto& r : results)
            if (r.layer->is_conv == conv) {
                double x = of(r);
                if (x > 0) v.push_back(x);
            }
        if (v.empty()) return;
        double g = geomean(v);
        out << fmt::format("| {} | {:.2f}x over {} layers | {} |\n", what, g, v.size(),
                           g >= at_least ? "yes" : "**no**");
    };
    geomean_row("geomean over all conv layers >= 1.1x oneDNN", true, 1.1,
                [&](const LayerResult& r) { return ratio(r, r.peers[onednn]); });
    const int openblas = peer_index(info, "OpenBLAS");
    geomean_row("dense >= 1.0x the better of OpenBLAS and oneDNN, geomean", false, 1.0,
                [&](const LayerResult& r) {
                    double a = ratio(r, r.peers[onednn]);
                    double b = openblas >= 0 ? ratio(r, r.peers[openblas]) : 0.0;
                    return a > 0 && b > 0 ? std::min(a, b) : std::max(a, b);
                });
    const int adams = peer_index(info, "Adams2019");
    if (adams >= 0)
        for (bool conv : {true, false})
            geomean_row(conv ? ">= 2x Adams2019, conv geomean" : ">= 2x Adams2019, dense geomean",
                        conv, 2.0, [&](const LayerResult& r) { return ratio(r, r.peers[adams]); });
    return out.str();
}

}  // namespace

std::string markdown(const RunInfo& info, const std::vector<LayerResult>& results) {
    std::ostringstream out;
    out << fmt::format("Command: `{}`\n\n", info.command);
    out << fmt::format("- Date: {}\n", info.date);
    out << fmt::format(
        "- Machine: {}, {} logical CPUs; measured FP32 peak {:.1f} GFLOP/s on {} threads ({} FMA "
        "loop; median of {} rounds spread over the run, range {:.1f} to {:.1f})\n",
        info.cpu, info.cores, info.peak_gflops, info.threads, info.peak_isa, info.peak_rounds,
        info.peak_min, info.peak_max);
    out << fmt::format(
        "- Threads: {} for every implementation; rounds: {} (median reported); "
        "min time per measurement: {} s\n",
        info.threads, info.rounds, info.min_time);
    if (!info.load_before.empty())
        out << fmt::format("- Load average (1, 5, 15 min) before: {}; after: {}\n",
                           info.load_before, info.load_after);
    out << fmt::format("- Layers: `{}`\n", info.layers_file);
    if (info.tune_trials > 0)
        out << fmt::format(
            "- Tuning: {} new candidates per layer with kiln's tuner (default search, each "
            "candidate built, checked and timed in its own process) into `{}`; \"kiln tuned\" is "
            "the best config in that database, timed in the same rounds as the rest\n",
            info.tune_trials, info.tune_db);
    for (size_t p = 0; p < info.peer_names.size(); ++p)
        out << fmt::format("- {}: {}\n", info.peer_names[p], info.peer_versions[p]);
    out << "\n";

    out << "| layer | op | kiln ms | kiln GFLOP/s | kiln % peak |";
    std::string rule = "| --- | --- | ---: | ---: | ---: |";
    const bool tuning = info.tune_trials > 0;
    if (tuning) {
        out << " kiln tuned ms | tuned GFLOP/s | tuned/default | trials | tune s | cand/min |";
        rule += " ---: | ---: | ---: | ---: | ---: | ---: |";
    }
    auto has_setup = [&](size_t p) {
        return p < info.peer_setup_labels.size() && !info.peer_setup_labels[p].empty();
    };
    for (size_t p = 0; p < info.peer_names.size(); ++p) {
        out << fmt::format(" {0} ms | {0} GFLOP/s | kiln/{0} |", info.peer_names[p]);
        rule += " ---: | ---: | ---: |";
        if (tuning) {
            out << fmt::format(" tuned/{} |", info.peer_names[p]);
            rule += " ---: |";
        }
        if (has_setup(p)) {
            out << fmt::format(" {} {} |", info.peer_names[p], info.peer_setup_labels[p]);
            rule += " ---: |";
        }
    }
    out << "\n" << rule << "\n";
    for (const auto& r : results) {
        const double flops = r.layer->flops();
        out << fmt::format("| {} | {} |", r.layer->id, r.layer->op);
        if (r.kiln.ran)
            out << fmt::format(" {} | {} | {:.0f}% |", ms_cell(r.kiln), gflops_cell(r.kiln, flops),
                               100.0 * flops / r.kiln.median_seconds * 1e-9 / info.peak_gflops);
        else
            out << fmt::format(" {} | – | – |", cell_text(r.kiln.why));
        if (tuning) {
            const TuneSummary& t = r.tune;
            if (r.kiln_tuned.ran)
                out << fmt::format(" {} | {} | {} | {} | {:.0f} | {:.1f} |", ms_cell(r.kiln_tuned),
                                   gflops_cell(r.kiln_tuned, flops),
                                   ratio_cell(r.kiln_tuned, r.kiln), t.measured, t.wall_seconds,
                                   t.per_minute);
            else
                out << fmt::format(
                    " {} | – | – | {} | {} | – |", t.why.empty() ? "–" : cell_text(t.why),
                    t.measured, t.wall_seconds > 0 ? fmt::format("{:.0f}", t.wall_seconds) : "–");
        }
        for (size_t p = 0; p < r.peers.size(); ++p) {
            const ImplResult& peer = r.peers[p];
            out << fmt::format(" {} | {} | {} |", ms_cell(peer), gflops_cell(peer, flops),
                               ratio_cell(r.kiln, peer));
            if (tuning) out << fmt::format(" {} |", ratio_cell(r.kiln_tuned, peer));
            if (has_setup(p))
                out << (peer.setup_seconds >= 0 ? fmt::format(" {:.1f} |", peer.setup_seconds)
                                                : std::string(" – |"));
        }
        out << "\n";
    }
    out << "\nkiln/peer is the peer's time over kiln's: above 1, kiln is faster. Geomeans count "
           "the layers where both ran and matched the reference.\n\n";
    for (size_t p = 0; p < info.peer_names.size(); ++p)
        for (bool conv : {true, false})
            out << geomean_line(
                results, "kiln", &LayerResult::kiln, info.peer_names[p],
                [p](const LayerResult& r) -> const ImplResult& { return r.peers[p]; }, conv);
    if (tuning) {
        for (bool conv : {true, false})
            out << geomean_line(
                results, "kiln tuned", &LayerResult::kiln_tuned, "kiln default",
                [](const LayerResult& r) -> const ImplResult& { return r.kiln; }, conv);
        for (size_t p = 0; p < info.peer_names.size(); ++p)
            for (bool conv : {true, false})
                out << geomean_line(
                    results, "kiln tuned", &LayerResult::kiln_tuned, info.peer_names[p],
                    [p](const LayerResult& r) -> const ImplResult& { return r.peers[p]; }, conv);
    }
    out << goals_section(info, results);
    return out.str();
}

void write_doc(const std::string& path, const std::string& section) {
    std::string page;
    {
        std::ifstream in(path);
        if (in) {
            std::ostringstream s;
            s << in.rdbuf();
            page = s.str();
        }
    }
    const std::string block = std::string(kDocBegin) + "\n" + section + kDocEnd;
    if (page.empty()) {
        page =
            "# kiln performance\n\n"
            "Every layer of the standard set (shared/bench/layers.json), timed in one run "
            "with kiln's default schedules against oneDNN, OpenBLAS (dense layers) and "
            "Halide's Adams2019 autoscheduler. "
            "The section between the markers is written by `kiln_bench_layers` "
            "(bench/README.md explains the protocol); do not edit it by hand.\n\n" +
            block + "\n";
    } else {
        size_t b = page.find(kDocBegin), e = page.find(kDocEnd);
        if (b == std::string::npos || e == std::string::npos || e < b)
            page += (page.back() == '\n' ? "\n" : "\n\n") + block + "\n";
        else
            page.replace(b, e + std::string(kDocEnd).size() - b, block);
    }
    std::ofstream out(path, std::ios::trunc);
    if (!out) throw Error("write-doc", "cannot write " + path);
    out << page;
}

nlohmann::json to_json(const RunInfo& info, const std::vector<LayerResult>& results) {
    auto impl = [](const ImplResult& r) {
        nlohmann::json j = {{"name", r.name}, {"ran", r.ran}};
        if (!r.ran) {
            j["why"] = r.why;
            j["failed"] = r.failed;
            return j;
        }
        if (r.setup_seconds >= 0) j["setup_seconds"] = r.setup_seconds;
        if (!r.schedule.empty()) j["schedule"] = r.schedule;
        j["seconds"] = r.seconds;
        j["median_seconds"] = r.median_seconds;
        j["checked"] = r.checked;
        if (r.checked) {
            j["correct"] = r.correct;
            j["relative_error"] = r.relative_error;
        }
        j["detail"] = r.detail;
        return j;
    };
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& r : results) {
        nlohmann::json l = {{"id", r.layer->id},
                            {"op", r.layer->op},
                            {"shape", r.layer->shape_text()},
                            {"flops", r.layer->flops()},
                            {"kiln", impl(r.kiln)}};
        if (r.kiln.ran) {
            l["kiln"]["key"] = r.kiln_key;
            l["kiln"]["compile_seconds"] = r.kiln_compile_seconds;
        }
        if (info.tune_trials > 0) {
            const TuneSummary& t = r.tune;
            l["kiln_tuned"] = impl(r.kiln_tuned);
            l["tune"] = {{"tuned", t.tuned},           {"why", t.why},
                         {"measured", t.measured},     {"failures", t.failures},
                         {"known", t.known},           {"wall_seconds", t.wall_seconds},
                         {"per_minute", t.per_minute}, {"stop_reason", t.stop_reason},
                         {"best_ms", t.best_ms}};
        }
        l["peers"] = nlohmann::json::array();
        for (const auto& p : r.peers)
            l["peers"].push_back(impl(p));
        layers.push_back(std::move(l));
    }
    return {{"format", 1},
            {"command", info.command},
            {"date", info.date},
            {"layers_file", info.layers_file},
            {"cpu", info.cpu},
            {"cores", info.cores},
            {"peak_gflops", info.peak_gflops},
            {"peak_rounds", info.peak_rounds},
            {"peak_min", info.peak_min},
            {"peak_max", info.peak_max},
            {"peak_isa", info.peak_isa},
            {"threads", info.threads},
            {"load_before", info.load_before},
            {"load_after", info.load_after},
            {"rounds", info.rounds},
            {"min_time", info.min_time},
            {"tune_trials", info.tune_trials},
            {"tune_db", info.tune_db},
            {"peers", info.peer_names},
            {"peer_versions", info.peer_versions},
            {"layers", layers}};
}

}  // namespace kiln::bench
