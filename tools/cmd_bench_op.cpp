// kiln/tools/cmd_bench_op.cpp — `kiln bench-op`: compile one op with one config, check it
// against the scalar reference, and time it on this machine.
//
// The steps run in the order a tuner's runner will: workload, config (default or given, then
// validated), compile, verify, prepare, timed runs. run_bench_op() reads top to bottom. A
// config on the command line may name only some knobs; the rest come from the space's default,
// so one decision can be tried at a time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "db/database.h"
#include "schedules/kernel.h"
#include "schedules/verify.h"
#include "targets/target.h"
#include "tools/commands.h"
#include "tools/db_path.h"

namespace kiln::tools {
namespace {

struct BenchOptions {
    std::string op;
    std::string shape;  // empty: the op's example
    std::string epilogue;
    std::string layout;
    std::string config_file;
    std::string config_json;
    std::string target = "host";
    double min_time = 0.5;  // seconds of timed runs, over all rounds
    int repeats = 5;        // timed rounds; min and median are over rounds
    uint64_t seed = 1;
    int threads = 0;  // 0: Halide's default (HL_NUM_THREADS, else one per core)
    std::string db;   // empty: the default database, when it exists
    bool no_db = false;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string human_flops(double f) {
    if (f >= 1e9) return fmt::format("{:.3f} GFLOP", f / 1e9);
    if (f >= 1e6) return fmt::format("{:.3f} MFLOP", f / 1e6);
    if (f >= 1e3) return fmt::format("{:.3f} kFLOP", f / 1e3);
    return fmt::format("{:.0f} FLOP", f);
}

nlohmann::json parse_json(const std::string& text, const std::string& source) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        // nlohmann's message starts with "[json.exception.parse_error.101] "; keep what follows.
        std::string what = e.what();
        auto bracket = what.find("] ");
        throw Error("config", source + " is not valid JSON: " +
                                  (bracket == std::string::npos ? what : what.substr(bracket + 2)));
    }
}

// The knobs the user gave, laid over the default config (and, for knobs it leaves inactive, the
// space's other defaults: '{"algorithm": "im2col"}' takes im2col's own defaults). A knob that the
// other decisions switch off is an error rather than silently dropped: the user asked for something
// that would not happen.
Config resolve_config(const ScheduleSpace& space, const Config& given) {
    for (const auto& [name, value] : given.values) {
        if (!space.find(name)) {
            std::string list;
            for (const auto& k : space.knobs)
                list += (list.empty() ? "" : ", ") + k.name;
            throw Error("config",
                        "unknown knob '" + name + "' for " + space.op + " (knobs: " + list + ")");
        }
    }
    Config config = space.with_defaults(given);
    for (const auto& [name, value] : given.values)
        if (!config.has(name))
            throw Error("config", "knob '" + name + "' is inactive under the other decisions of " +
                                      config.to_string());
    if (auto why = space.check(config)) throw Error("config", *why);
    return config;
}

std::string thread_note(const BenchOptions& o) {
    if (o.threads > 0) return fmt::format("{} (--threads)", o.threads);
    if (const char* env = std::getenv("HL_NUM_THREADS"))
        return fmt::format("{} (HL_NUM_THREADS)", env);
    return fmt::format("{} (one per core, Halide's default)", std::thread::hardware_concurrency());
}

// find_space() with a message that says what to do: an op can be defined before any schedule
// space compiles it.
const SpaceDef& space_of(const std::string& op) {
    try {
        return find_space(op);
    } catch (const Error&) {
        std::string with_space;
        for (const OpDef* d : all_ops()) {
            try {
                find_space(d->name());
                with_space += (with_space.empty() ? "" : ", ") + d->name();
            } catch (const Error&) {
            }
        }
        throw Error("op", "no schedule space yet for '" + op + "', so nothing compiles it (ops " +
                              "with one: " + (with_space.empty() ? "none" : with_space) + ")");
    }
}

// CLI11's own range checks print the whole double range; this names the bound.
CLI::Validator positive() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            try {
                if (std::stod(text) > 0) return "";
            } catch (const std::exception&) {
            }
            return "must be a number above 0, got '" + text + "'";
        },
        "POSITIVE");
}

// The best config of `w` in the tuning database, with where it came from; nothing when there
// is no database, no record, or the record belongs to another version of the space.
std::optional<std::pair<Config, std::string>> tuned_config(const BenchOptions& o, const Workload& w,
                                                           const Target& t,
                                                           const ScheduleSpace& space) {
    std::string path = o.db.empty() ? default_database_path() : o.db;
    if (o.db.empty() && !std::ifstream(path)) return std::nullopt;  // never create one here
    auto db = Database::open(path);
    auto best = db->best(w.key(), t.halide, t.fingerprint.id());
    if (!best) return std::nullopt;
    if (best->space_version != space.version || space.check(best->config)) {
        std::printf(
            "note      the best record in %s is for another version of the %s space; "
            "using the default\n",
            path.c_str(), w.op.c_str());
        return std::nullopt;
    }
    std::string where = best->fingerprint.id() == t.fingerprint.id()
                            ? "measured on this machine"
                            : "measured on another machine: " + best->fingerprint.cpu_model + ", " +
                                  std::to_string(best->fingerprint.cores) + " cores (fingerprint " +
                                  best->fingerprint.id() + ")";
    return std::make_pair(best->config, fmt::format("tuned, best in {} ({:.4g} ms there, {})", path,
                                                    best->median_ms, where));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run_bench_op(const BenchOptions& o) {
    // Halide's JIT runtime reads HL_NUM_THREADS when its thread pool starts, on the first
    // parallel run: set it before anything is compiled or run.
    if (o.threads > 0) setenv("HL_NUM_THREADS", std::to_string(o.threads).c_str(), 1);

    const OpDef& def = find_op(o.op);
    std::string origin = "default";
    std::optional<Config> given;
    if (!o.config_file.empty()) {
        std::ifstream f(o.config_file);
        if (!f) throw Error("config", "cannot read '" + o.config_file + "'");
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        given = Config::from_json(parse_json(text, o.config_file));
        origin = "from " + o.config_file;
    } else if (!o.config_json.empty()) {
        given = Config::from_json(parse_json(o.config_json, "--config-json"));
        origin = "from --config-json";
    }
    Workload w = Workload::from_shape(o.op, o.shape.empty() ? def.example() : o.shape, DType::f32,
                                      Epilogue::parse(o.epilogue));
    if (!o.layout.empty()) {
        w.layout = Blocking::parse(o.layout);
        w.validate();
    }
    Target t = parse_target(o.target);
    if (!t.is_host)
        throw Error("target", "'" + o.target + "' does not run on this machine (" +
                                  host_target().halide + "); bench-op measures on the host");
    const SpaceDef& space_def = space_of(o.op);
    std::printf("workload  %s\n", w.key().c_str());
    std::printf("flops     %s (%.0f)\n", human_flops(w.flops()).c_str(), w.flops());
    std::printf("target    %s (%s), %d f32 lanes, %d vector registers\n", t.name.c_str(),
                t.halide.c_str(), t.f32_lanes(), t.vector_registers());
    std::printf("threads   %s\n", thread_note(o).c_str());

    ScheduleSpace space = space_def.space(w, t);
    if (!given && !o.no_db) {
        if (auto tuned = tuned_config(o, w, t, space)) {
            given = tuned->first;
            origin = tuned->second;
        }
    }
    Config config = given ? resolve_config(space, *given) : space.default_config;
    if (!given) {
        if (auto why = space.check(config))
            throw Error("config", "the default config of " + w.op + " is invalid: " + *why);
    }
    std::printf("config    %s: %s (hash %016llx)\n", origin.c_str(), config.to_string().c_str(),
                static_cast<unsigned long long>(config.hash()));

    auto start = Clock::now();
    std::unique_ptr<Kernel> kernel = compile_kernel(w, config, t);
    std::printf("compile   %.2f s\n", seconds_since(start));

    VerifyResult v = verify_kernel(w, *kernel, o.seed);
    bool ok = v.ok(kF32Tolerance);
    std::printf("verify    %s (relative error %.2e, tolerance %.0e, seed %llu)\n",
                ok ? "ok" : "WRONG", v.relative_error, kF32Tolerance,
                static_cast<unsigned long long>(o.seed));
    std::fflush(stdout);
    if (!ok) {
        std::fprintf(stderr, "kiln: wrong result: relative error %.2e exceeds %.0e%s\n",
                     v.relative_error, kF32Tolerance, v.finite ? "" : " (NaN or Inf in output)");
        throw CLI::RuntimeError(1);
    }

    auto inputs = random_inputs(w, o.seed);
    auto ptrs = pointers(inputs);
    std::vector<float> out(static_cast<size_t>(w.output().numel()));
    kernel->prepare(ptrs);

    // Warm-up: caches, page faults and the thread pool.
    auto warm = Clock::now();
    for (int i = 0; i < 3 || seconds_since(warm) < 0.1 * o.min_time; ++i)
        kernel->run(ptrs, out.data());
    // Each round runs until it has lasted its share of --min-time, rather than a count sized
    // from the warm-up: on a shared machine one slow warm-up run made rounds far too short.
    const double round_time = o.min_time / o.repeats;
    std::vector<double> per_run;
    int64_t total_runs = 0;
    for (int r = 0; r < o.repeats; ++r) {
        auto s = Clock::now();
        int64_t runs = 0;
        double elapsed = 0.0;
        do {
            kernel->run(ptrs, out.data());
            ++runs;
            elapsed = seconds_since(s);
        } while (elapsed < round_time);
        per_run.push_back(elapsed / runs);
        total_runs += runs;
    }
    double best = *std::min_element(per_run.begin(), per_run.end());
    double mid = median(per_run);
    std::printf("time      min %.4g ms, median %.4g ms (%d rounds, %lld runs)\n", best * 1e3,
                mid * 1e3, o.repeats, static_cast<long long>(total_runs));
    std::printf("speed     %.2f GFLOP/s (median), %.2f GFLOP/s (min time)\n", w.flops() / mid / 1e9,
                w.flops() / best / 1e9);
}

}  // namespace

void add_bench_op(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "bench-op", "Compile one op with one schedule config, verify it, and time it");
    cmd->add_option("OP", o->op, "The op, e.g. conv2d (see kiln ops)")->required();
    cmd->add_option("--shape", o->shape,
                    "Parameters as name=value, comma-separated; missing ones take their "
                    "defaults (default: the op's example)");
    cmd->add_option(
        "--epilogue", o->epilogue,
        "Fused epilogue: bias, add, relu, relu6, clipLO:HI joined by +, e.g. bias+relu");
    cmd->add_option("--layout", o->layout,
                    "Channel-blocked activations, as in a workload key's layout segment: i8 "
                    "(input), r8 (residual), o8 (output), e.g. i8o8 for NCHW8c in and out "
                    "(default: NCHW)");
    CLI::Option* file = cmd->add_option("--config", o->config_file,
                                        "Config JSON file: some or all knobs; the rest default");
    cmd->add_option("--config-json", o->config_json,
                    "Config as inline JSON, e.g. '{\"knob\": 8}'; the rest default")
        ->excludes(file);
    cmd->add_option("--target", o->target, "Target; must run on this machine")
        ->capture_default_str();
    cmd->add_option("--min-time", o->min_time, "Seconds of timed runs, over all rounds")
        ->capture_default_str()
        ->check(positive());
    cmd->add_option("--repeats", o->repeats, "Timed rounds; min and median are over rounds")
        ->capture_default_str()
        ->check(positive());
    cmd->add_option("--seed", o->seed, "Seed of the random inputs")->capture_default_str();
    cmd->add_option("--threads", o->threads,
                    "Threads of Halide's runtime (sets HL_NUM_THREADS; default: one per core)")
        ->check(positive());
    CLI::Option* db = cmd->add_option(
        "--db", o->db,
        "Tuning database whose best config to use when no config is given (default: $KILN_DB, "
        "else ~/.cache/kiln/tuning.db, if it exists)");
    cmd->add_flag("--no-db", o->no_db, "Use the space's default config, not the database's best")
        ->excludes(db);
    cmd->footer(
        "Prints the workload key, FLOPs, config, compile time, the error against the scalar\n"
        "reference, min and median time per run and GFLOP/s.\n"
        "Exit codes: 0 success, 1 wrong result, 2 bad input.\n\n"
        "Examples:\n"
        "  kiln bench-op conv2d --shape n=1,c=64,h=56,w=56,k=64,r=3,s=3,stride=1,pad=1\n"
        "  kiln bench-op conv2d --shape c=64,h=56,w=56,k=64,r=3,s=3,pad=1 --epilogue bias+relu \\\n"
        "      --threads 1 --min-time 2 --repeats 9");
    cmd->callback([o] { run_bench_op(*o); });
}

}  // namespace kiln::tools
