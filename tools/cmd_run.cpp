// kiln/tools/cmd_run.cpp — `kiln run DIR | MODEL.onnx [--input x.npy] [--output y.npy]
// [--bench]`: runs a compiled model through its C API (docs/CLI.md).
//
// A directory is what `kiln compile` wrote (NAME.json names the library); an ONNX file is
// compiled first, into a temporary directory. The static library is linked into a shared object
// (`cc -shared -Wl,--whole-archive libNAME.a`) and loaded with dlopen, so the model runs exactly
// as an application would run it: kiln_create, kiln_run, kiln_destroy. Inputs come from .npy
// files or, without them, uniform random numbers in [-1, 1]; --compare checks an output against
// an expected .npy (a framework's answer on the same input).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "runtime/kiln/runtime.h"
#include "targets/target.h"
#include "tools/commands.h"
#include "tools/compile.h"
#include "tools/model_library.h"
#include "tools/npy.h"

namespace kiln::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct RunOptions {
    std::string model;  // a directory from kiln compile, or an .onnx file
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    std::string compare;
    double tolerance = 1e-3;
    bool bench = false;
    int runs = 20;
    double min_time = 1.0;
    int threads = 0;
    int spin_us = 0;
    uint64_t seed = 1;
    std::string db;
    bool no_db = false;
    std::string cc = "cc";
};

void run_model(const RunOptions& o) {
    // Scratch for the shared object (and the compiled model, for an .onnx file).
    ScratchDir scratch("kiln-run");
    fs::path dir = o.model;
    if (!fs::is_directory(dir)) {
        if (!fs::exists(dir)) throw Error("run", "'" + o.model + "' does not exist");
        CompileCommandOptions co;
        co.model = o.model;
        co.db = o.db;
        co.no_db = o.no_db;
        co.out = (scratch.path() / "model").string();
        compile_onnx_model(co);
        dir = co.out;
    }
    LoadedModel m;
    const std::string name = open_model(m, dir, o.cc, scratch.path(), o.threads, o.spin_us)["name"];
    const int ni = static_cast<int>(m.in.size()), no = static_cast<int>(m.out.size());
    fill_inputs(m, o.inputs, o.seed);
    std::printf("model     %s (%s)\n", name.c_str(), dir.c_str());
    for (int i = 0; i < ni; ++i)
        std::printf("input     %s %s  %s\n", m.in_info[i].name,
                    shape_text(shape_of(m.in_info[i])).c_str(),
                    o.inputs.empty() ? fmt::format("random in [-1, 1], seed {}", o.seed).c_str()
                                     : o.inputs[i].c_str());
    const std::vector<kiln_tensor_info>& out_info = m.out_info;
    const std::vector<std::vector<float>>& out = m.out;
    auto t0 = Clock::now();
    m.run();
    const double first_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

    for (int j = 0; j < no; ++j) {
        const std::vector<float>& y = out[j];
        std::vector<size_t> order(y.size());
        for (size_t k = 0; k < order.size(); ++k)
            order[k] = k;
        const size_t top = std::min<size_t>(5, order.size());
        std::partial_sort(order.begin(), order.begin() + top, order.end(),
                          [&](size_t a, size_t b) { return y[a] > y[b]; });
        std::string best;
        for (size_t k = 0; k < top; ++k)
            best += fmt::format("{}{} ({:.4g})", k ? ", " : "", order[k], y[order[k]]);
        std::printf("output    %s %s  top: %s\n", out_info[j].name,
                    shape_text(shape_of(out_info[j])).c_str(), best.c_str());
        if (j < static_cast<int>(o.outputs.size())) {
            write_npy(o.outputs[j], {shape_of(out_info[j]), y});
            std::printf("          written to %s\n", o.outputs[j].c_str());
        }
    }
    if (!o.compare.empty()) {
        NpyArray want = read_npy(o.compare);
        if (want.data.size() != out[0].size())
            throw Error("compare", fmt::format("'{}' has {} values; output '{}' has {}", o.compare,
                                               want.data.size(), out_info[0].name, out[0].size()));
        const double rel = relative_error(out[0], want.data);
        std::printf(
            "compare   %s: relative error %.3g (max |diff| / max |expected|), tolerance "
            "%.3g: %s\n",
            o.compare.c_str(), rel, o.tolerance, rel <= o.tolerance ? "ok" : "FAILED");
        if (!(rel <= o.tolerance)) throw CLI::RuntimeError(1);
    }
    if (o.bench) {
        const std::vector<double> ms = time_runs(m, o.runs, o.min_time);
        std::printf(
            "latency   min %.3f ms, median %.3f ms, p90 %.3f ms over %zu runs (%d threads; "
            "first run %.3f ms)\n",
            *std::min_element(ms.begin(), ms.end()), percentile(ms, 0.5), percentile(ms, 0.9),
            ms.size(), o.threads, first_ms);
    }
}

}  // namespace

void add_run(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    CLI::App* cmd = app.add_subcommand(
        "run",
        "Run a compiled model (a directory from kiln compile, or an ONNX file compiled "
        "on the fly)");
    cmd->add_option("MODEL", o->model, "Directory written by kiln compile, or an .onnx file")
        ->required();
    cmd->add_option("--input", o->inputs,
                    "A float32 .npy file per model input, in order (default: uniform random "
                    "numbers in [-1, 1])");
    cmd->add_option("--output", o->outputs, "A .npy file to write per model output, in order");
    cmd->add_option("--compare", o->compare,
                    "Expected values of the first output (.npy): fail (exit 1) when the relative "
                    "error max|out - expected| / max|expected| exceeds --tolerance");
    cmd->add_option("--tolerance", o->tolerance, "For --compare")->capture_default_str();
    cmd->add_flag("--bench", o->bench, "Time repeated runs: latency min, median and p90");
    cmd->add_option("--runs", o->runs, "With --bench: at least this many runs")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--min-time", o->min_time, "With --bench: and at least this many seconds")
        ->capture_default_str();
    cmd->add_option("--threads", o->threads, "Threads of the instance (0: one per core)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--spin-us", o->spin_us,
                    "Microseconds an idle thread polls for the next parallel loop before it "
                    "sleeps (kiln_options.spin_us; 0: the runtime's default, -1: sleep at once)")
        ->capture_default_str()
        ->check(CLI::Range(-1, 1000000));
    cmd->add_option("--seed", o->seed, "Seed of the random inputs")->capture_default_str();
    cmd->add_option("--db", o->db, "For an .onnx file: the tuning database (as kiln compile)");
    cmd->add_flag("--no-db", o->no_db, "For an .onnx file: default configs only");
    cmd->add_option("--cc", o->cc, "C compiler that links the library into a shared object")
        ->capture_default_str();
    cmd->footer(
        "Examples:\n"
        "  kiln run out/resnet18 --input image.npy --output scores.npy\n"
        "  kiln run out/resnet18 --bench --threads 2\n"
        "  kiln run resnet18.onnx --input x.npy --compare torch_out.npy\n"
        "Exit codes: 0 ran (and matched), 1 --compare failed, 2 bad input.");
    cmd->callback([o] { run_model(*o); });
}

}  // namespace kiln::tools
