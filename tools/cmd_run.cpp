// kiln/tools/cmd_run.cpp — `kiln run DIR | MODEL.onnx [--input x.npy] [--output y.npy]
// [--bench]`: runs a compiled model through its C API (docs/CLI.md).
//
// A directory is what `kiln compile` wrote (NAME.json names the library); an ONNX file is
// compiled first, into a temporary directory. The static library is linked into a shared object
// (`cc -shared -Wl,--whole-archive libNAME.a`) and loaded with dlopen, so the model runs exactly
// as an application would run it: kiln_create, kiln_run, kiln_destroy. Inputs come from .npy
// files or, without them, uniform random numbers in [-1, 1]; --compare checks an output against
// an expected .npy (a framework's answer on the same input).
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
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
    uint64_t seed = 1;
    std::string db;
    bool no_db = false;
    std::string cc = "cc";
};

// The C API of one loaded library.
struct Library {
    void* handle = nullptr;
    const kiln_model_def* model = nullptr;
    decltype(&kiln_create) create = nullptr;
    decltype(&kiln_destroy) destroy = nullptr;
    decltype(&kiln_num_inputs) num_inputs = nullptr;
    decltype(&kiln_num_outputs) num_outputs = nullptr;
    decltype(&kiln_input_info) input_info = nullptr;
    decltype(&kiln_output_info) output_info = nullptr;
    decltype(&kiln_run) run = nullptr;
    decltype(&kiln_last_error) last_error = nullptr;
    ~Library() {
        if (handle) ::dlclose(handle);
    }
};

template <class F>
void bind(Library& lib, F& f, const char* symbol) {
    f = reinterpret_cast<F>(::dlsym(lib.handle, symbol));
    if (!f) throw Error("run", std::string("the library has no symbol ") + symbol);
}

// Finds NAME.json in `dir` and checks that it can run here.
nlohmann::json read_description(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".json") continue;
        nlohmann::json j = nlohmann::json::parse(std::ifstream(e.path()), nullptr, false);
        if (j.is_object() && j.contains("format") && j.contains("name") &&
            fs::exists(dir / ("lib" + j["name"].get<std::string>() + ".a")))
            return j;
    }
    throw Error("run", "'" + dir.string() +
                           "' holds no compiled model (NAME.json beside libNAME.a); "
                           "kiln compile writes one");
}

void load(Library& lib, const fs::path& dir, const std::string& name, const std::string& cc,
          const fs::path& scratch) {
    const fs::path so = scratch / ("lib" + name + ".so");
    const std::string cmd = fmt::format(
        "'{}' -shared -o '{}' -Wl,--whole-archive '{}' -Wl,--no-whole-archive -lpthread -ldl -lm "
        "2>&1",
        cc, so.string(), (dir / ("lib" + name + ".a")).string());
    std::string output;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; p && (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        output.append(buf, n);
    if (!p || ::pclose(p) != 0)
        throw Error("run",
                    "linking the library into a shared object failed: " + cmd + "\n" + output);
    lib.handle = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle) throw Error("run", std::string("dlopen: ") + ::dlerror());
    using ModelFn = const kiln_model_def* (*)();
    ModelFn model = nullptr;
    bind(lib, model, ("kiln_model_" + name).c_str());
    lib.model = model();
    bind(lib, lib.create, "kiln_create");
    bind(lib, lib.destroy, "kiln_destroy");
    bind(lib, lib.num_inputs, "kiln_num_inputs");
    bind(lib, lib.num_outputs, "kiln_num_outputs");
    bind(lib, lib.input_info, "kiln_input_info");
    bind(lib, lib.output_info, "kiln_output_info");
    bind(lib, lib.run, "kiln_run");
    bind(lib, lib.last_error, "kiln_last_error");
}

int64_t numel(const kiln_tensor_info& t) {
    int64_t n = 1;
    for (int i = 0; i < t.rank; ++i)
        n *= t.shape[i];
    return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s;
    for (int64_t d : shape)
        s += (s.empty() ? "" : "x") + std::to_string(d);
    return s.empty() ? "scalar" : s;
}

std::vector<int64_t> shape_of(const kiln_tensor_info& t) {
    return std::vector<int64_t>(t.shape, t.shape + t.rank);
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    size_t i = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
    return v[i];
}

void run_model(const RunOptions& o) {
    // Scratch for the shared object (and the compiled model, for an .onnx file).
    std::string scratch_template = (fs::temp_directory_path() / "kiln-run-XXXXXX").string();
    if (!::mkdtemp(scratch_template.data()))
        throw Error("run", "cannot make a temporary directory");
    const fs::path scratch = scratch_template;
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ignored;
            fs::remove_all(p, ignored);
        }
    } cleanup{scratch};

    fs::path dir = o.model;
    if (!fs::is_directory(dir)) {
        if (!fs::exists(dir)) throw Error("run", "'" + o.model + "' does not exist");
        CompileCommandOptions co;
        co.model = o.model;
        co.db = o.db;
        co.no_db = o.no_db;
        co.out = (scratch / "model").string();
        compile_onnx_model(co);
        dir = co.out;
    }
    const nlohmann::json desc = read_description(dir);
    const std::string name = desc["name"];
    const std::string target = desc["target"].value("halide", "");
    const std::string host = host_target().halide;
    if (target.substr(0, target.find('-', target.find('-') + 1)) !=
        host.substr(0, host.find('-', host.find('-') + 1)))
        throw Error("run", fmt::format("'{}' was compiled for {}; this machine is {}", dir.string(),
                                       target, host));
    Library lib;
    load(lib, dir, name, o.cc, scratch);

    kiln_options options{};
    options.threads = o.threads;
    kiln_instance* m = nullptr;
    if (lib.create(lib.model, &options, &m) != KILN_OK)
        throw Error("run", std::string("kiln_create: ") + lib.last_error(nullptr));
    std::unique_ptr<kiln_instance, decltype(lib.destroy)> instance(m, lib.destroy);

    const int ni = lib.num_inputs(m), no = lib.num_outputs(m);
    if (!o.inputs.empty() && static_cast<int>(o.inputs.size()) != ni)
        throw Error("input", fmt::format("the model has {} inputs; --input was given {} files", ni,
                                         o.inputs.size()));
    std::vector<std::vector<float>> in(ni), out(no);
    std::vector<const void*> in_ptrs(ni);
    std::vector<void*> out_ptrs(no);
    std::mt19937_64 rng(o.seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::printf("model     %s (%s)\n", name.c_str(), dir.c_str());
    for (int i = 0; i < ni; ++i) {
        kiln_tensor_info info{};
        lib.input_info(m, i, &info);
        if (!o.inputs.empty()) {
            NpyArray a = read_npy(o.inputs[i]);
            if (a.shape != shape_of(info))
                throw Error("input", fmt::format("'{}' has shape {}; input '{}' is {}", o.inputs[i],
                                                 shape_text(a.shape), info.name,
                                                 shape_text(shape_of(info))));
            in[i] = std::move(a.data);
        } else {
            in[i].resize(static_cast<size_t>(numel(info)));
            for (float& x : in[i])
                x = uniform(rng);
        }
        in_ptrs[i] = in[i].data();
        std::printf("input     %s %s  %s\n", info.name, shape_text(shape_of(info)).c_str(),
                    o.inputs.empty() ? fmt::format("random in [-1, 1], seed {}", o.seed).c_str()
                                     : o.inputs[i].c_str());
    }
    std::vector<kiln_tensor_info> out_info(no);
    for (int j = 0; j < no; ++j) {
        lib.output_info(m, j, &out_info[j]);
        out[j].resize(static_cast<size_t>(numel(out_info[j])));
        out_ptrs[j] = out[j].data();
    }
    auto run_once = [&] {
        if (lib.run(m, in_ptrs.data(), out_ptrs.data()) != KILN_OK)
            throw Error("run", std::string("kiln_run: ") + lib.last_error(m));
    };
    auto t0 = Clock::now();
    run_once();
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
        double err = 0, scale = 0;
        for (size_t k = 0; k < want.data.size(); ++k) {
            err = std::max(err, std::fabs(double(out[0][k]) - want.data[k]));
            scale = std::max(scale, std::fabs(double(want.data[k])));
        }
        const double rel = scale > 0 ? err / scale : err;
        std::printf(
            "compare   %s: relative error %.3g (max |diff| / max |expected|), tolerance "
            "%.3g: %s\n",
            o.compare.c_str(), rel, o.tolerance, rel <= o.tolerance ? "ok" : "FAILED");
        if (!(rel <= o.tolerance)) throw CLI::RuntimeError(1);
    }
    if (o.bench) {
        std::vector<double> ms;
        auto start = Clock::now();
        while (static_cast<int>(ms.size()) < o.runs ||
               std::chrono::duration<double>(Clock::now() - start).count() < o.min_time) {
            auto s = Clock::now();
            run_once();
            ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        }
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
