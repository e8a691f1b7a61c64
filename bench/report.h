// kiln/bench/report.h — results of a run, and how they are printed, written and saved.
//
// markdown() is the table docs/PERFORMANCE.md carries; write_doc() replaces only the text
// between the bench_layers markers, so the rest of that page is prose people edit by hand.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/layer.h"

namespace kiln::bench {

struct ImplResult {
    std::string name;  // "kiln", "oneDNN", ...
    bool ran = false;
    std::string why;              // why it did not run
    bool failed = false;          // it should have run and failed (not: does not apply)
    std::vector<double> seconds;  // per call, one per round
    double median_seconds = 0.0;
    bool checked = false;  // output compared with the op's reference
    bool correct = true;   // within kF32Tolerance when checked
    double relative_error = 0.0;
    std::string detail;           // the config or kernel the implementation used
    std::string schedule;         // generated schedule source (--json only)
    double setup_seconds = -1.0;  // choosing the schedule (Peer::setup_label()); < 0 = none
};

// The tuning of one layer (--tune-trials).
struct TuneSummary {
    bool tuned = false;
    std::string why;  // why there is no tuned column for the layer
    int measured = 0;
    int failures = 0;
    int known = 0;  // records of this workload already in the database
    double wall_seconds = 0.0;
    double per_minute = 0.0;  // candidates measured per minute of tuning wall time
    std::string stop_reason;
    double best_ms = 0.0;  // the best record's median, as the tuner measured it
};

struct LayerResult {
    const Layer* layer = nullptr;
    ImplResult kiln;
    std::vector<ImplResult> peers;  // in peers() order
    std::string kiln_key;
    double kiln_compile_seconds = 0.0;
    ImplResult kiln_tuned;  // the best config tuning found; ran = false when not tuned
    TuneSummary tune;
};

struct RunInfo {
    std::string command;
    std::string date;  // UTC, ISO 8601
    std::string layers_file;
    std::string cpu;
    int cores = 0;
    double peak_gflops = 0.0;  // median over the peak loop's rounds
    double peak_min = 0.0, peak_max = 0.0;
    int peak_rounds = 0;
    std::string peak_isa;
    int threads = 0;
    std::string load_before, load_after;  // /proc/loadavg: other users' work on a shared host
    int rounds = 0;
    double min_time = 0.0;
    std::vector<std::string> peer_names;     // in column order
    std::vector<std::string> peer_versions;  // same order
    int tune_trials = 0;                     // --tune-trials; 0 = no tuning columns
    std::string tune_db;
    std::vector<std::string> peer_setup_labels;  // same order; "" = no setup-time column
};

// The section written between the markers: how the numbers were taken, then the table and the
// geomeans of the speed ratios over convolution and dense layers.
std::string markdown(const RunInfo& info, const std::vector<LayerResult>& results);

constexpr const char* kDocBegin = "<!-- bench_layers:begin -->";
constexpr const char* kDocEnd = "<!-- bench_layers:end -->";

// Replaces what lies between the markers in `path` (creating the page, or appending the markers
// when absent); everything outside them is kept.
void write_doc(const std::string& path, const std::string& section);

nlohmann::json to_json(const RunInfo& info, const std::vector<LayerResult>& results);

}  // namespace kiln::bench
