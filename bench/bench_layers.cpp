// kiln/bench/bench_layers.cpp — kiln_bench_layers: every layer of layers.json, kiln against its
// peers, in one run.
//
// Per layer: set up kiln (default config, checked once against the reference) and each peer
// (checked against the same reference), then R rounds that time each implementation in turn;
// the median over rounds is reported. bench/README.md has the protocol and the options; the
// pieces are layer.h (shapes), kiln_run.h and peer.h (implementations), measure.h (timing),
// peak.h (the % of peak denominator) and report.h (table, page, JSON).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "bench/kiln_run.h"
#include "bench/layer.h"
#include "bench/measure.h"
#include "bench/peak.h"
#include "bench/peer.h"
#include "bench/report.h"
#ifdef KILN_BENCH_ADAMS2019
#include "bench/peers_adams2019.h"
#endif
#ifdef KILN_BENCH_TUNE
#include "bench/kiln_tune.h"
#endif
#include "core/error.h"
#include "core/op.h"
#include "schedules/verify.h"
#include "targets/target.h"

using namespace kiln;
using namespace kiln::bench;

namespace {

struct Options {
    std::string layers = std::string(KILN_SOURCE_DIR) + "/../shared/bench/layers.json";
    std::string only;  // comma-separated layer ids; empty = all
    int rounds = 5;
    double min_time = 0.2;  // seconds per measurement
    int threads = 0;        // 0 = hardware_concurrency
    std::string doc = "docs/PERFORMANCE.md";
    bool no_doc = false;
    std::string json;
    std::string peers;           // comma-separated peer names; empty = all built in
    double adams_timeout = 240;  // seconds for Adams2019 to schedule and compile one layer
    double adams_memory = 0;     // GiB of address space for its worker; 0 = half the memory
    int tune_trials = 0;         // 0 = no tuning
    double quiet_wait = 600;     // seconds a tuning candidate waits for a quiet machine
    std::string tune_db;         // resolved in main()
};

uint64_t seed_of(const std::string& id) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : id)
        h = (h ^ ch) * 1099511628211ull;
    return h;
}

std::vector<float> random_tensor(int64_t numel, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> t(static_cast<size_t>(numel));
    for (float& x : t)
        x = dist(rng);
    return t;
}

// Normwise relative error, as verify_kernel() measures it.
double relative_error(const std::vector<float>& out, const std::vector<float>& ref) {
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < out.size(); ++i) {
        if (!std::isfinite(out[i])) return INFINITY;
        err = std::max(err, std::fabs(double(out[i]) - ref[i]));
        mag = std::max(mag, std::fabs(double(ref[i])));
    }
    return err / std::max(mag, 1e-30);
}

std::vector<Layer> select(std::vector<Layer> all, const std::string& only) {
    if (only.empty()) return all;
    std::set<std::string> wanted;
    std::stringstream ss(only);
    for (std::string id; std::getline(ss, id, ',');)
        if (!id.empty()) wanted.insert(id);
    std::vector<Layer> out;
    for (auto& l : all)
        if (wanted.erase(l.id)) out.push_back(std::move(l));
    if (!wanted.empty()) throw Error("only", "unknown layer id '" + *wanted.begin() + "'");
    return out;
}

// Sets the variables peers read at load time (Peer::environment()) and, when one was missing,
// starts this program again with them. The report shows the values in effect.
void apply_peer_environment(const std::vector<const Peer*>& peers, char** argv) {
    bool changed = false;
    for (const Peer* p : peers)
        for (const auto& [name, value] : p->environment())
            if (!std::getenv(name.c_str())) {
                setenv(name.c_str(), value.c_str(), 1);
                changed = true;
            }
    if (changed) execv("/proc/self/exe", argv);  // returns only on failure: go on as we are
}

// The peers named in `names` (comma-separated, any case), in column order; all when empty.
std::vector<const Peer*> select_peers(const std::vector<const Peer*>& all,
                                      const std::string& names) {
    if (names.empty()) return all;
    auto lower = [](std::string s) {
        for (char& ch : s)
            ch = char(std::tolower(static_cast<unsigned char>(ch)));
        return s;
    };
    std::set<std::string> wanted;
    std::stringstream ss(names);
    for (std::string name; std::getline(ss, name, ',');)
        if (!name.empty()) wanted.insert(lower(name));
    std::vector<const Peer*> out;
    for (const Peer* p : all)
        if (wanted.erase(lower(p->name()))) out.push_back(p);
    if (!wanted.empty()) {
        std::string known;
        for (const Peer* p : all)
            known += (known.empty() ? "" : ", ") + p->name();
        throw Error("peers", fmt::format("no peer '{}' in this build (built in: {})",
                                         *wanted.begin(), known.empty() ? "none" : known));
    }
    return out;
}

std::string command_line(int argc, char** argv) {
    std::string s;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a.find_first_of(" \t\"'") != std::string::npos) a = "'" + a + "'";
        s += (i ? " " : "") + a;
    }
    return s;
}

// The first three fields of /proc/loadavg; empty where there is none.
std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    if (!(in >> a >> b >> c)) return "";
    return a + " " + b + " " + c;
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
    return buf;
}

// Also adds one round of the peak loop to `peak_rounds` per round, so that the peak sees the
// same load from other users as the layers do.
LayerResult bench_layer(const Layer& l, const Options& o, const std::vector<const Peer*>& peers,
                        const PeakLoop& peak, std::vector<double>& peak_rounds) {
    LayerResult res;
    res.layer = &l;
    std::mt19937_64 rng(seed_of(l.id));
    const std::vector<float> input = random_tensor(l.input_numel(), rng);
    const std::vector<float> weight = random_tensor(l.weight_numel(), rng);

    // kiln first, since its reference check also tells whether kiln knows the op.
    KilnSetup kiln = prepare_kiln(l, input.data(), weight.data(), seed_of(l.id) + 1);
    res.kiln.name = "kiln";
    res.kiln.ran = kiln.run != nullptr;
    res.kiln.why = kiln.why;
    res.kiln.checked = res.kiln.ran;
    res.kiln.correct = kiln.verified || !res.kiln.ran;
    res.kiln.relative_error = kiln.relative_error;
    res.kiln.detail = kiln.config;
    res.kiln_key = kiln.key;
    res.kiln_compile_seconds = kiln.compile_seconds;

    // Tuning happens before any timing of this layer, so the candidates' child processes never
    // overlap a timed round.
    std::unique_ptr<LayerRun> tuned;
#ifdef KILN_BENCH_TUNE
    if (o.tune_trials > 0 && kiln.run) {
        TuneBenchOptions to{o.tune_trials, o.tune_db, o.threads, 0.1, o.quiet_wait};
        std::cerr << fmt::format("  tuning {} for {} trials\n", kiln.key, o.tune_trials);
        try {
            TunedKiln t = tune_layer(l, input.data(), weight.data(), seed_of(l.id) + 1, to);
            res.tune = t.summary;
            res.kiln_tuned.name = "kiln tuned";
            res.kiln_tuned.ran = t.kiln.run != nullptr;
            res.kiln_tuned.checked = res.kiln_tuned.ran;
            res.kiln_tuned.correct = t.kiln.verified || !res.kiln_tuned.ran;
            res.kiln_tuned.relative_error = t.kiln.relative_error;
            res.kiln_tuned.detail = t.kiln.config;
            res.kiln_tuned.why = t.summary.why;
            tuned = std::move(t.kiln.run);
        } catch (const std::exception& e) {
            res.tune.why = fmt::format("tuning failed: {}", e.what());
            res.kiln_tuned.why = res.tune.why;
            res.kiln_tuned.failed = true;
        }
    }
#endif

    // The op's scalar reference on the bench's own inputs, when kiln defines the op: it tells
    // whether each peer was set up for the same problem.
    std::vector<float> ref;
    try {
        Workload w = l.to_workload();
        ref.resize(static_cast<size_t>(l.output_numel()));
        w.def().reference(w, {input.data(), weight.data()}, ref.data());
    } catch (const Error&) {
        ref.clear();
    }

    std::vector<std::unique_ptr<LayerRun>> runs;
    for (const Peer* p : peers) {
        ImplResult r;
        r.name = p->name();
        std::unique_ptr<LayerRun> run;
        try {
            run = p->prepare(l, input.data(), weight.data(), &r.why);
            if (run) {
                r.detail = run->detail;
                r.setup_seconds = run->setup_seconds;
                r.schedule = run->schedule;
                if (!ref.empty()) {
                    std::vector<float> out(ref.size());
                    run->run();
                    run->read_output(out.data());
                    r.checked = true;
                    r.relative_error = relative_error(out, ref);
                    r.correct = r.relative_error <= kF32Tolerance;
                }
            }
        } catch (const std::exception& e) {
            run.reset();
            r.failed = true;
            r.why = fmt::format("{}: {}", p->name(), e.what());
        }
        r.ran = run != nullptr;
        res.peers.push_back(std::move(r));
        runs.push_back(std::move(run));
    }

    // Interleaved rounds: a burst of load from another user lands on all implementations of
    // the round rather than on one of them.
    for (int round = 0; round < o.rounds; ++round) {
        if (kiln.run) res.kiln.seconds.push_back(time_per_call(*kiln.run, o.min_time));
        if (tuned) res.kiln_tuned.seconds.push_back(time_per_call(*tuned, o.min_time));
        for (size_t p = 0; p < runs.size(); ++p) {
            if (!runs[p]) continue;
            try {
                res.peers[p].seconds.push_back(runs[p]->measure(o.min_time));
            } catch (const std::exception& e) {
                // A peer that fails mid-run (a worker process that died) drops out of the row.
                runs[p].reset();
                res.peers[p].ran = false;
                res.peers[p].failed = true;
                res.peers[p].why = fmt::format("{}: {}", peers[p]->name(), e.what());
                res.peers[p].seconds.clear();
            }
        }
        peak_rounds.push_back(peak.round());
    }
    res.kiln.median_seconds = median(res.kiln.seconds);
    res.kiln_tuned.median_seconds = median(res.kiln_tuned.seconds);
    for (auto& p : res.peers)
        p.median_seconds = median(p.seconds);
    return res;
}

std::string progress_line(const LayerResult& r) {
    std::string s = r.kiln.ran ? fmt::format("kiln {:.3f} ms{}", r.kiln.median_seconds * 1e3,
                                             r.kiln.correct ? "" : " (WRONG)")
                               : r.kiln.why;
    if (r.kiln_tuned.ran)
        s += fmt::format(", kiln tuned {:.3f} ms{} ({} trials in {:.0f} s)",
                         r.kiln_tuned.median_seconds * 1e3, r.kiln_tuned.correct ? "" : " (WRONG)",
                         r.tune.measured, r.tune.wall_seconds);
    else if (!r.tune.why.empty())
        s += ", " + r.tune.why;
    for (const auto& p : r.peers) {
        if (p.ran)
            s += fmt::format(", {} {:.3f} ms{}", p.name, p.median_seconds * 1e3,
                             p.correct ? "" : " (WRONG)");
        else if (p.failed)
            s += fmt::format(", {} FAILED ({})", p.name, p.why);
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef KILN_BENCH_ADAMS2019
    if (argc == 2 && std::string(argv[1]) == kAdams2019WorkerFlag) return adams2019_worker_main();
#endif
    Options o;
    CLI::App app{
        "Times every layer of layers.json with kiln's default schedules against oneDNN, "
        "OpenBLAS and Halide's Adams2019 autoscheduler, and writes the table into "
        "docs/PERFORMANCE.md."};
    app.add_option("--layers", o.layers, "the layer set (JSON)")->capture_default_str();
    app.add_option("--only", o.only, "comma-separated layer ids to run (default: all)");
    app.add_option("--rounds", o.rounds, "rounds; the median over rounds is reported")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--min-time", o.min_time, "seconds each measurement repeats the call for")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--threads", o.threads,
                   "threads for every implementation and the peak (default: all CPUs)");
    app.add_option("--write-doc", o.doc, "page to write the table into")->capture_default_str();
    app.add_flag("--no-doc", o.no_doc, "only print the table");
    app.add_option("--json", o.json, "write the raw numbers (every round) to this file");
    app.add_option("--peers", o.peers,
                   "comma-separated peers to run (default: all built in: oneDNN, OpenBLAS, "
                   "Adams2019)");
    app.add_option("--adams-timeout", o.adams_timeout,
                   "seconds Adams2019 may take to schedule and compile one layer; past them its "
                   "worker process is killed and the row says so")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--adams-memory", o.adams_memory,
                   "GiB of address space an Adams2019 worker may use (default: half the "
                   "machine's memory)")
        ->check(CLI::NonNegativeNumber);
#ifdef KILN_BENCH_TUNE
    app.add_option("--tune-trials", o.tune_trials,
                   "tune each layer with kiln's tuner for this many candidates first, and time "
                   "the best config as well (default: no tuning)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--quiet-wait", o.quiet_wait,
                   "seconds each tuning candidate waits for other processes to leave the cores "
                   "(docs/MEASUREMENT.md)")
        ->capture_default_str();
    app.add_option("--tune-db", o.tune_db,
                   "tuning database for --tune-trials (default: a fresh file beside this "
                   "executable)");
#endif
    CLI11_PARSE(app, argc, argv);
    std::vector<const Peer*> peers;
    try {
        peers = select_peers(kiln::bench::peers(), o.peers);
    } catch (const Error& e) {
        std::cerr << "kiln_bench_layers: " << e.what() << "\n";
        return 2;
    }
    apply_peer_environment(peers, argv);
#ifdef KILN_BENCH_ADAMS2019
    set_adams2019_options({o.adams_timeout, o.adams_memory});
#endif

    try {
        keep_heap_memory();
        if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
        // Halide's JIT runtime sizes its thread pool from this on first use, before any kernel
        // runs; the peers take the same count through their own calls below.
        setenv("HL_NUM_THREADS", std::to_string(o.threads).c_str(), 1);
        for (const Peer* p : peers)
            p->set_threads(o.threads);

        const std::vector<Layer> layers = select(load_layers(o.layers), o.only);
#ifdef KILN_BENCH_TUNE
        if (o.tune_trials > 0) {
            o.tune_db =
                open_tune_database({o.tune_trials, o.tune_db, o.threads, 0.1, o.quiet_wait});
            std::cerr << "tuning database: " << o.tune_db << "\n";
        }
#endif

        RunInfo info;
        info.command = command_line(argc, argv);
        info.date = utc_now();
        info.layers_file = std::filesystem::path(o.layers).lexically_normal().string();
        info.load_before = load_average();
        Fingerprint fp = host_fingerprint();
        info.cpu = fp.cpu_model;
        info.cores = fp.cores;
        info.threads = o.threads;
        info.rounds = o.rounds;
        info.min_time = o.min_time;
        info.tune_trials = o.tune_trials;
        info.tune_db = o.tune_db;
        info.peak_isa = peak_isa();
        for (const Peer* p : peers) {
            info.peer_names.push_back(p->name());
            std::string version = p->version();
            for (const auto& [name, value] : p->environment())
                version += fmt::format(", {}={}", name, std::getenv(name.c_str()));
            info.peer_versions.push_back(version);
            info.peer_setup_labels.push_back(p->setup_label());
        }
        std::cerr << fmt::format("peak: sizing an FMA loop ({}) on {} threads\n", info.peak_isa,
                                 o.threads);
        const PeakLoop peak(o.threads, std::max(o.min_time, 0.1));
        std::vector<double> peak_rounds;
        for (int r = 0; r < o.rounds; ++r)
            peak_rounds.push_back(peak.round());
        std::cerr << fmt::format("peak: {:.1f} GFLOP/s (median of {} rounds)\n",
                                 median(peak_rounds), peak_rounds.size());

        std::vector<LayerResult> results;
        for (size_t i = 0; i < layers.size(); ++i) {
            std::cerr << fmt::format("[{}/{}] {} ({} {})\n", i + 1, layers.size(), layers[i].id,
                                     layers[i].op, layers[i].shape_text());
            results.push_back(bench_layer(layers[i], o, peers, peak, peak_rounds));
            std::cerr << fmt::format("[{}/{}] {}: {}\n", i + 1, layers.size(), layers[i].id,
                                     progress_line(results.back()));
        }

        info.load_after = load_average();
        info.peak_gflops = median(peak_rounds);
        info.peak_rounds = int(peak_rounds.size());
        info.peak_min = *std::min_element(peak_rounds.begin(), peak_rounds.end());
        info.peak_max = *std::max_element(peak_rounds.begin(), peak_rounds.end());
        const std::string section = markdown(info, results);
        std::cout << section;
        if (!o.no_doc) {
            write_doc(o.doc, section);
            std::cerr << "wrote " << o.doc << "\n";
        }
        if (!o.json.empty()) {
            std::ofstream out(o.json);
            if (!out) throw Error("json", "cannot write " + o.json);
            out << to_json(info, results).dump(1) << "\n";
            std::cerr << "wrote " << o.json << "\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "kiln_bench_layers: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
