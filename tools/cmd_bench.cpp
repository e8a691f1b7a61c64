// kiln/tools/cmd_bench.cpp — `kiln bench MODEL.onnx`: the compiled model against PyTorch (eager,
// TorchScript frozen, frozen with optimize_for_inference) in the same run, on the same input
// and thread count, interleaved in rounds (docs/CLI.md).
//
// The model is compiled (or each --compiled names a directory kiln compile wrote, so that builds
// from different databases run side by side) and loaded through its C API, as `kiln run` does.
// PyTorch runs in a child process, tools/torch_peer.py, which turns the ONNX graph into a torch.fx
// module and answers one request per line on a pipe
// ("time VARIANT RUNS SECONDS", "output VARIANT PATH"), so each round times kiln, then every
// PyTorch variant, back to back. Each runner's figure is the median over rounds of its round's
// median; the outputs are compared before timing starts.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tools/commands.h"
#include "tools/compile.h"
#include "tools/model_library.h"
#include "tools/npy.h"
#include "tools/table.h"

namespace kiln::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
    std::string model;  // the .onnx file
    std::vector<std::string> compiled;
    std::string db;
    bool no_db = false;
    std::vector<std::string> inputs;
    uint64_t seed = 1;
    int threads = 0;
    int spin_us = 0;
    int rounds = 5;
    int runs = 10;
    double min_time = 0.5;
    std::vector<std::string> variants = {"eager", "torchscript", "optimized"};
    bool no_torch = false;
    std::string torchvision;
    std::string python = "/usr/bin/python3";
    double tolerance = 1e-3;
    std::string json;
    std::string cc = "cc";
};

// tools/torch_peer.py: $KILN_TORCH_PEER; share/kiln beside an installed kiln; else the source
// tree this kiln was built from.
fs::path torch_peer_script() {
    if (const char* env = std::getenv("KILN_TORCH_PEER"); env && *env) return env;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path installed =
            exe.parent_path().parent_path() / "share" / "kiln" / "torch_peer.py";
        if (fs::exists(installed, ec)) return installed;
    }
    return fs::path(KILN_SOURCE_DIR) / "tools" / "torch_peer.py";
}

// The PyTorch child: requests on its stdin, one answer line each on its stdout, its stderr
// (tracer warnings, tracebacks) in a file shown when it fails.
class TorchPeer {
  public:
    TorchPeer(const BenchOptions& o, const std::vector<std::string>& input_paths,
              const fs::path& scratch)
        : log_(scratch / "torch_peer.log"), python_(o.python) {
        const fs::path script = torch_peer_script();
        if (!fs::exists(script))
            throw Error("bench", "the PyTorch peer script '" + script.string() +
                                     "' is missing (set KILN_TORCH_PEER)");
        std::vector<std::string> args = {o.python, script.string(), o.model};
        args.insert(args.end(), input_paths.begin(), input_paths.end());
        args.insert(args.end(), {"--threads", std::to_string(o.threads)});
        if (!o.torchvision.empty()) args.insert(args.end(), {"--torchvision", o.torchvision});
        int to_child[2], from_child[2];
        if (::pipe(to_child) != 0 || ::pipe(from_child) != 0)
            throw Error("bench", "cannot make a pipe to the PyTorch peer");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(to_child[0], 0);
            ::dup2(from_child[1], 1);
            FILE* err = std::fopen(log_.c_str(), "w");
            if (err) ::dup2(fileno(err), 2);
            ::close(to_child[1]);
            ::close(from_child[0]);
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            std::fprintf(stdout, "error cannot run %s\n", argv[0]);
            ::_exit(127);
        }
        ::close(to_child[0]);
        ::close(from_child[1]);
        to_ = ::fdopen(to_child[1], "w");
        from_ = ::fdopen(from_child[0], "r");
        const std::string ready = answer("start");
        std::istringstream words(ready.substr(ready.find(' ') + 1));
        for (std::string v; words >> v;)
            variants_.push_back(v);
    }
    ~TorchPeer() {
        if (to_) {
            std::fputs("quit\n", to_);
            std::fclose(to_);
        }
        if (from_) std::fclose(from_);
        if (pid_ > 0) {
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    TorchPeer(const TorchPeer&) = delete;
    TorchPeer& operator=(const TorchPeer&) = delete;

    const std::vector<std::string>& variants() const { return variants_; }

    // One request and its answer line; throws when the peer failed or answered "error ...".
    std::string request(const std::string& line) {
        std::fputs((line + "\n").c_str(), to_);
        std::fflush(to_);
        return answer(line);
    }

  private:
    std::string answer(const std::string& request) {
        char* buf = nullptr;
        size_t cap = 0;
        const ssize_t n = ::getline(&buf, &cap, from_);
        std::string line = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
        std::free(buf);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
            line.pop_back();
        if (line.rfind("error ", 0) == 0)
            throw Error("bench", "PyTorch peer: " + line.substr(6) +
                                     " (run with --no-torch to time kiln alone)");
        if (line.empty()) {
            std::ifstream f(log_);
            std::string log((std::istreambuf_iterator<char>(f)), {});
            if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);
            if (log.empty())
                log = "it ended without a word; is '" + python_ +
                      "' a Python 3 with torch, numpy and onnx (--python)?";
            throw Error("bench", fmt::format("the PyTorch peer ({}) stopped at '{}': {}",
                                             torch_peer_script().string(), request, log));
        }
        return line;
    }

    fs::path log_;
    std::string python_;
    pid_t pid_ = -1;
    FILE* to_ = nullptr;
    FILE* from_ = nullptr;
    std::vector<std::string> variants_;
};

// The median latency (ms) of one round of kiln runs.
double time_kiln(LoadedModel& m, int runs, double min_time) {
    m.run();
    return percentile(time_runs(m, runs, min_time), 0.5);
}

// The median latency (ms) of one round of a PyTorch variant; the peer also sends the fastest
// run, the 90th percentile and the count, which the table does not use.
double time_torch(TorchPeer& peer, const std::string& variant, int runs, double min_time) {
    const std::string a = peer.request(fmt::format("time {} {} {}", variant, runs, min_time));
    double median = 0;
    char word[8] = {};
    if (std::sscanf(a.c_str(), "%7s %lf", word, &median) != 2 || std::string(word) != "ms")
        throw Error("bench", "PyTorch peer: unexpected answer '" + a + "'");
    return median;
}

double median_of(std::vector<double> v) {
    return percentile(std::move(v), 0.5);
}

// One compiled model among the runners.
struct KilnBuild {
    std::string id;  // "kiln", or "kiln:DIRNAME" when there are several
    fs::path dir;
    LoadedModel m;
    int tuned = 0, kernels = 0;
    double compile_s = -1;  // -1: compiled before (--compiled)
};

void bench_model(BenchOptions o) {
    if (!fs::is_regular_file(o.model))
        throw Error("bench", "'" + o.model + "' is not a file (kiln bench takes the .onnx model)");
    if (o.threads == 0) o.threads = static_cast<int>(std::thread::hardware_concurrency());
    for (const auto& v : o.variants)
        if (v != "eager" && v != "torchscript" && v != "optimized")
            throw Error("bench", "unknown PyTorch variant '" + v +
                                     "' (known: eager, torchscript, optimized)");
    ScratchDir scratch("kiln-bench");

    // The kiln builds: each --compiled directory, or the model compiled now.
    std::vector<std::unique_ptr<KilnBuild>> builds;
    if (o.compiled.empty()) {
        CompileCommandOptions co;
        co.model = o.model;
        co.db = o.db;
        co.no_db = o.no_db;
        co.out = (scratch.path() / "model").string();
        const auto t0 = Clock::now();
        compile_onnx_model(co);
        builds.push_back(std::make_unique<KilnBuild>());
        builds.back()->dir = co.out;
        builds.back()->compile_s = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    for (const auto& dir : o.compiled) {
        builds.push_back(std::make_unique<KilnBuild>());
        builds.back()->dir = dir;
    }
    for (size_t b = 0; b < builds.size(); ++b) {
        KilnBuild& k = *builds[b];
        k.id = builds.size() == 1 ? "kiln" : fmt::format("kiln:{}", k.dir.filename().string());
        for (size_t c = 0; c < b; ++c)
            if (builds[c]->id == k.id) k.id += fmt::format("#{}", b + 1);
        const fs::path so_dir = scratch.path() / fmt::format("so{}", b);
        fs::create_directories(so_dir);
        const nlohmann::json desc = open_model(k.m, k.dir, o.cc, so_dir, o.threads, o.spin_us);
        for (const auto& kernel : desc.value("kernels", nlohmann::json::array())) {
            k.tuned += kernel.value("kind", "") == "tuned";
            k.kernels +=
                kernel.value("kind", "") == "tuned" || kernel.value("kind", "") == "default";
        }
        auto shapes = [](const LoadedModel& lm) {
            std::vector<std::vector<int64_t>> v;
            for (const auto& info : lm.in_info)
                v.push_back(shape_of(info));
            return v;
        };
        if (b > 0 && shapes(k.m) != shapes(builds[0]->m))
            throw Error("bench", fmt::format("'{}' and '{}' are not the same model",
                                             builds[0]->dir.string(), k.dir.string()));
    }
    LoadedModel& m = builds[0]->m;

    fill_inputs(m, o.inputs, o.seed);
    std::vector<std::string> input_paths;
    for (size_t i = 0; i < m.in.size(); ++i) {
        for (auto& k : builds)
            k->m.in[i] = m.in[i];
        input_paths.push_back((scratch.path() / fmt::format("input{}.npy", i)).string());
        write_npy(input_paths.back(), {shape_of(m.in_info[i]), m.in[i]});
    }
    nlohmann::json report = {{"model", o.model},
                             {"threads", o.threads},
                             {"spin_us", o.spin_us},
                             {"rounds", o.rounds},
                             {"runners", nlohmann::json::object()}};
    for (auto& k : builds) {
        std::printf(
            "model      %s (%s): %d/%d kernels tuned%s, %d threads\n", k->id.c_str(),
            k->dir.c_str(), k->tuned, k->kernels,
            k->compile_s >= 0 ? fmt::format(", compiled in {:.1f} s", k->compile_s).c_str() : "",
            o.threads);
        k->m.run();
        report["runners"][k->id] = {{"dir", k->dir.string()},
                                    {"tuned_kernels", k->tuned},
                                    {"kernels", k->kernels},
                                    {"compile_s", k->compile_s}};
    }

    std::unique_ptr<TorchPeer> peer;
    std::vector<std::string> variants;
    bool mismatch = false;
    if (!o.no_torch) {
        std::fprintf(stderr, "starting PyTorch (%s) ...\n", torch_peer_script().c_str());
        peer = std::make_unique<TorchPeer>(o, input_paths, scratch.path());
        for (const auto& v : o.variants)
            if (std::find(peer->variants().begin(), peer->variants().end(), v) !=
                peer->variants().end())
                variants.push_back(v);
        // The outputs first: a fast wrong answer is no result.
        for (const auto& v : variants) {
            const std::string path = (scratch.path() / ("torch-" + v + ".npy")).string();
            peer->request(fmt::format("output {} {}", v, path));
            const NpyArray want = read_npy(path);
            for (auto& k : builds) {
                if (want.data.size() != k->m.out[0].size())
                    throw Error("bench",
                                fmt::format("PyTorch's {} output has {} values; kiln's has {}", v,
                                            want.data.size(), k->m.out[0].size()));
                const double rel = relative_error(k->m.out[0], want.data);
                std::printf(
                    "output     %s vs PyTorch %s: relative error %.3g (tolerance %.3g) %s\n",
                    k->id.c_str(), v.c_str(), rel, o.tolerance,
                    rel <= o.tolerance ? "ok" : "MISMATCH");
                report["runners"][v]["relative_error"][k->id] = rel;
                mismatch = mismatch || !(rel <= o.tolerance);
            }
        }
    }

    std::map<std::string, KilnBuild*> by_id;
    std::vector<std::string> runners;
    for (auto& k : builds) {
        by_id[k->id] = k.get();
        runners.push_back(k->id);
    }
    runners.insert(runners.end(), variants.begin(), variants.end());
    std::map<std::string, std::vector<double>> medians;
    for (int r = 0; r < o.rounds; ++r) {
        std::vector<std::string> order = runners;
        if (r % 2) std::reverse(order.begin(), order.end());  // neither goes first every round
        std::string line;
        for (const auto& who : order) {
            medians[who].push_back(by_id.count(who) ? time_kiln(by_id[who]->m, o.runs, o.min_time)
                                                    : time_torch(*peer, who, o.runs, o.min_time));
        }
        for (const auto& who : runners)
            line += fmt::format("  {} {:.3f}", who, medians[who].back());
        std::fprintf(stderr, "round %d/%d (median ms):%s\n", r + 1, o.rounds, line.c_str());
    }

    const double kiln_ms = median_of(medians[runners[0]]);
    std::vector<std::vector<std::string>> rows = {
        {"runner", "median ms", "fastest round", "slowest round", runners[0] + " / runner"}};
    for (const auto& who : runners) {
        const auto& v = medians[who];
        const double med = median_of(v);
        const std::string label =
            by_id.count(who)
                ? fmt::format("{} ({}/{} tuned)", who, by_id[who]->tuned, by_id[who]->kernels)
                : "PyTorch " + who;
        rows.push_back({label, fmt::format("{:.3f}", med),
                        fmt::format("{:.3f}", *std::min_element(v.begin(), v.end())),
                        fmt::format("{:.3f}", *std::max_element(v.begin(), v.end())),
                        who == runners[0] ? "" : fmt::format("{:.2f}", kiln_ms / med)});
        report["runners"][who]["median_ms"] = med;
        report["runners"][who]["round_medians_ms"] = v;
    }
    std::printf(
        "\nlatency, batch 1, %d threads, median of %d interleaved rounds (each round: at "
        "least %d runs and %.2g s per runner)\n",
        o.threads, o.rounds, o.runs, o.min_time);
    print_table(rows, "  ");
    if (!o.json.empty()) {
        std::ofstream f(o.json);
        f << report.dump(2) << "\n";
        if (!f) throw Error("bench", "cannot write '" + o.json + "'");
    }
    if (mismatch) {
        std::fprintf(stderr, "kiln: kiln's output differs from PyTorch's beyond --tolerance\n");
        throw CLI::RuntimeError(1);
    }
}

}  // namespace

void add_bench(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Time a model compiled by kiln against PyTorch (eager, TorchScript frozen, and frozen "
        "with optimize_for_inference) in the same run, interleaved, batch 1");
    cmd->add_option("MODEL", o->model, "The .onnx model")->required();
    cmd->add_option("--compiled", o->compiled,
                    "A directory kiln compile wrote from MODEL (default: compile it now); "
                    "repeat it to time several builds side by side");
    cmd->add_option("--db", o->db, "Tuning database to compile with (as kiln compile)");
    cmd->add_flag("--no-db", o->no_db, "Compile with default configs only");
    cmd->add_option("--input", o->inputs,
                    "A float32 .npy file per model input (default: uniform random numbers in "
                    "[-1, 1])");
    cmd->add_option("--seed", o->seed, "Seed of the random inputs")->capture_default_str();
    cmd->add_option("--threads", o->threads,
                    "Threads, the same for kiln and PyTorch (0: one per core)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--spin-us", o->spin_us,
                    "Microseconds an idle thread polls for the next parallel loop before it "
                    "sleeps, in every kiln build (kiln_options.spin_us; 0: the runtime's default, "
                    "-1: sleep at once)")
        ->capture_default_str()
        ->check(CLI::Range(-1, 1000000));
    cmd->add_option("--rounds", o->rounds, "Interleaved rounds; the table gives their median")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--runs", o->runs, "At least this many runs per runner and round")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--min-time", o->min_time, "And at least this many seconds")
        ->capture_default_str();
    cmd->add_option("--variants", o->variants,
                    "PyTorch variants: eager, torchscript (traced, frozen), optimized (frozen, "
                    "torch.jit.optimize_for_inference)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_flag("--no-torch", o->no_torch, "Time kiln alone");
    cmd->add_option("--torchvision", o->torchvision,
                    "Eager PyTorch runs torchvision's own model NAME (the weights "
                    "tests/models/export_torchvision.py exports) instead of the ONNX graph");
    cmd->add_option("--python", o->python, "Python with torch, numpy and onnx")
        ->capture_default_str();
    cmd->add_option("--tolerance", o->tolerance,
                    "Largest relative error of kiln's output against PyTorch's")
        ->capture_default_str();
    cmd->add_option("--json", o->json, "Also write the figures to this JSON file");
    cmd->add_option("--cc", o->cc, "C compiler that links the library into a shared object")
        ->capture_default_str();
    cmd->footer(
        "Examples:\n"
        "  kiln bench resnet18.onnx --db tuning.db --threads 2\n"
        "  kiln bench resnet18.onnx --compiled out/resnet18 --rounds 9 --json resnet18.json\n"
        "  kiln bench resnet18.onnx --compiled out/tuned --compiled out/untuned\n"
        "  kiln bench model.onnx --no-torch          kiln alone\n"
        "Needs Debian's python3-torch, python3-numpy and python3-onnx for the PyTorch runners.\n"
        "Exit codes: 0 done, 1 kiln's output differs from PyTorch's, 2 bad input (or no "
        "PyTorch).");
    cmd->callback([o] { bench_model(*o); });
}

}  // namespace kiln::tools
