// kiln/tools/model_library.h — a compiled model loaded through its C API, as an application
// would run it: shared by `kiln run` and `kiln bench`.
//
// The static library that `kiln compile` wrote is linked into a shared object
// (`cc -shared -Wl,--whole-archive libNAME.a`) in a scratch directory and loaded with dlopen.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/kiln/runtime.h"

namespace kiln::tools {

// A temporary directory, removed with everything in it when this goes.
class ScratchDir {
  public:
    explicit ScratchDir(const std::string& prefix);  // under the system's temp directory
    ~ScratchDir();
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
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
    Library() = default;
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
    ~Library();
};

// NAME.json of the compiled model in `dir`; throws kiln::Error when there is none, or when it
// was compiled for another machine than this one.
nlohmann::json read_description(const std::filesystem::path& dir);

// Links `dir`/libNAME.a into a shared object in `scratch` with `cc` and binds the C API.
void load(Library& lib, const std::filesystem::path& dir, const std::string& name,
          const std::string& cc, const std::filesystem::path& scratch);

// One instance with its inputs and outputs, ready to run.
struct LoadedModel {
    std::unique_ptr<Library> lib = std::make_unique<Library>();
    kiln_instance* instance = nullptr;
    std::vector<kiln_tensor_info> in_info, out_info;
    std::vector<std::vector<float>> in, out;
    std::vector<const void*> in_ptrs;
    std::vector<void*> out_ptrs;
    LoadedModel() = default;
    LoadedModel(const LoadedModel&) = delete;
    LoadedModel& operator=(const LoadedModel&) = delete;
    ~LoadedModel();
    void run();  // throws kiln::Error with kiln_last_error's message
};

// Loads the model in `dir` and creates an instance with `threads` (0: one per core) and
// `spin_us` (kiln_options.spin_us: 0 the runtime's default, -1 never poll); the input and output
// buffers are sized, the inputs left zero. Returns the model's NAME.json.
nlohmann::json open_model(LoadedModel& m, const std::filesystem::path& dir, const std::string& cc,
                          const std::filesystem::path& scratch, int threads, int spin_us = 0);

// Fills the model's inputs: from one float32 .npy file per input (shapes checked), or, with
// `npy` empty, uniform random numbers in [-1, 1] drawn from `seed`. Throws kiln::Error("input").
void fill_inputs(LoadedModel& m, const std::vector<std::string>& npy, uint64_t seed);

// Latencies in ms of repeated runs: at least `runs` runs and `min_time` seconds.
std::vector<double> time_runs(LoadedModel& m, int runs, double min_time);

// max |got - want| / max |want| (max |got - want| when want is all zero).
double relative_error(const std::vector<float>& got, const std::vector<float>& want);

int64_t numel(const kiln_tensor_info& t);
std::vector<int64_t> shape_of(const kiln_tensor_info& t);
std::string shape_text(const std::vector<int64_t>& shape);  // "1x3x224x224"
double percentile(std::vector<double> v, double q);         // nearest rank, q in [0, 1]

}  // namespace kiln::tools
