// kiln/tools/model_library.cpp — see model_library.h.
#include "tools/model_library.h"

#include <dlfcn.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "targets/target.h"
#include "tools/npy.h"

namespace kiln::tools {

namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& prefix) {
    std::string path = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(path.data())) throw Error("scratch", "cannot make a temporary directory");
    path_ = path;
}

ScratchDir::~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

Library::~Library() {
    if (handle) ::dlclose(handle);
}

namespace {

template <class F>
void bind(Library& lib, F& f, const char* symbol) {
    f = reinterpret_cast<F>(::dlsym(lib.handle, symbol));
    if (!f) throw Error("run", std::string("the library has no symbol ") + symbol);
}

// "x86-64" of "x86-64-linux-avx2-...": the architecture and bits of a Halide target string.
std::string arch_of(const std::string& halide) {
    return halide.substr(0, halide.find('-', halide.find('-') + 1));
}

}  // namespace

nlohmann::json read_description(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".json") continue;
        nlohmann::json j = nlohmann::json::parse(std::ifstream(e.path()), nullptr, false);
        if (!j.is_object() || !j.contains("format") || !j.contains("name") ||
            !fs::exists(dir / ("lib" + j["name"].get<std::string>() + ".a")))
            continue;
        const std::string target = j["target"].value("halide", "");
        const std::string host = host_target().halide;
        if (arch_of(target) != arch_of(host))
            throw Error("run", fmt::format("'{}' was compiled for {}; this machine is {}",
                                           dir.string(), target, host));
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

LoadedModel::~LoadedModel() {
    if (instance) lib->destroy(instance);
}

void LoadedModel::run() {
    if (lib->run(instance, in_ptrs.data(), out_ptrs.data()) != KILN_OK)
        throw Error("run", std::string("kiln_run: ") + lib->last_error(instance));
}

nlohmann::json open_model(LoadedModel& m, const fs::path& dir, const std::string& cc,
                          const fs::path& scratch, int threads, int spin_us) {
    const nlohmann::json desc = read_description(dir);
    load(*m.lib, dir, desc["name"], cc, scratch);
    kiln_options options{};
    options.threads = threads;
    options.spin_us = spin_us;
    if (m.lib->create(m.lib->model, &options, &m.instance) != KILN_OK)
        throw Error("run", std::string("kiln_create: ") + m.lib->last_error(nullptr));
    const int ni = m.lib->num_inputs(m.instance), no = m.lib->num_outputs(m.instance);
    m.in_info.resize(ni);
    m.in.resize(ni);
    m.in_ptrs.resize(ni);
    for (int i = 0; i < ni; ++i) {
        m.lib->input_info(m.instance, i, &m.in_info[i]);
        m.in[i].resize(static_cast<size_t>(numel(m.in_info[i])));
        m.in_ptrs[i] = m.in[i].data();
    }
    m.out_info.resize(no);
    m.out.resize(no);
    m.out_ptrs.resize(no);
    for (int j = 0; j < no; ++j) {
        m.lib->output_info(m.instance, j, &m.out_info[j]);
        m.out[j].resize(static_cast<size_t>(numel(m.out_info[j])));
        m.out_ptrs[j] = m.out[j].data();
    }
    return desc;
}

void fill_inputs(LoadedModel& m, const std::vector<std::string>& npy, uint64_t seed) {
    if (!npy.empty() && npy.size() != m.in.size())
        throw Error("input", fmt::format("the model has {} inputs; --input was given {} files",
                                         m.in.size(), npy.size()));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (size_t i = 0; i < m.in.size(); ++i) {
        const std::vector<int64_t> shape = shape_of(m.in_info[i]);
        if (npy.empty()) {
            for (float& x : m.in[i])
                x = uniform(rng);
            continue;
        }
        NpyArray a = read_npy(npy[i]);
        if (a.shape != shape)
            throw Error("input",
                        fmt::format("'{}' has shape {}; input '{}' is {}", npy[i],
                                    shape_text(a.shape), m.in_info[i].name, shape_text(shape)));
        std::copy(a.data.begin(), a.data.end(), m.in[i].begin());
    }
}

std::vector<double> time_runs(LoadedModel& m, int runs, double min_time) {
    using Clock = std::chrono::steady_clock;
    std::vector<double> ms;
    const auto start = Clock::now();
    while (static_cast<int>(ms.size()) < runs ||
           std::chrono::duration<double>(Clock::now() - start).count() < min_time) {
        const auto s = Clock::now();
        m.run();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
    }
    return ms;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
    double err = 0, scale = 0;
    for (size_t k = 0; k < want.size() && k < got.size(); ++k) {
        err = std::max(err, std::fabs(double(got[k]) - want[k]));
        scale = std::max(scale, std::fabs(double(want[k])));
    }
    return scale > 0 ? err / scale : err;
}

int64_t numel(const kiln_tensor_info& t) {
    int64_t n = 1;
    for (int i = 0; i < t.rank; ++i)
        n *= t.shape[i];
    return n;
}

std::vector<int64_t> shape_of(const kiln_tensor_info& t) {
    return std::vector<int64_t>(t.shape, t.shape + t.rank);
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s;
    for (int64_t d : shape)
        s += (s.empty() ? "" : "x") + std::to_string(d);
    return s.empty() ? "scalar" : s;
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    size_t i = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
    return v[i];
}

}  // namespace kiln::tools
