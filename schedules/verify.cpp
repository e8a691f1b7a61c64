#include "schedules/verify.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "core/hash.h"
#include "core/op.h"

namespace kiln {

std::vector<std::vector<float>> random_inputs(const Workload& w, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<std::vector<float>> out;
    for (const auto& spec : w.inputs()) {
        std::vector<float> t(static_cast<size_t>(spec.numel()));
        for (float& x : t)
            x = dist(rng);
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<const float*> pointers(const std::vector<std::vector<float>>& tensors) {
    std::vector<const float*> p;
    for (const auto& t : tensors)
        p.push_back(t.data());
    return p;
}

namespace {

// The cache file's first line; the key line follows, then the raw floats.
constexpr const char* kReferenceMagic = "kiln-reference 1";

std::string reference_key(const Workload& w, uint64_t seed) {
    return w.key() + " seed " + std::to_string(seed) + " kiln " + KILN_VERSION;
}

std::string reference_path(const std::string& dir, const std::string& key) {
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.ref", static_cast<unsigned long long>(fnv1a(key)));
    return dir + "/" + name;
}

bool read_reference(const std::string& path, const std::string& key, std::vector<float>& out) {
    std::ifstream f(path, std::ios::binary);
    std::string magic, stored;
    if (!std::getline(f, magic) || magic != kReferenceMagic || !std::getline(f, stored) ||
        stored != key)
        return false;
    f.read(reinterpret_cast<char*>(out.data()), std::streamsize(out.size() * sizeof(float)));
    // Exactly the floats expected, nothing after them.
    return f.gcount() == std::streamsize(out.size() * sizeof(float)) &&
           f.peek() == std::char_traits<char>::eof();
}

void write_reference(const std::string& path, const std::string& key,
                     const std::vector<float>& ref) {
    const std::string tmp = path + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f << kReferenceMagic << '\n' << key << '\n';
        f.write(reinterpret_cast<const char*>(ref.data()),
                std::streamsize(ref.size() * sizeof(float)));
        if (!f) {
            std::remove(tmp.c_str());
            return;  // a cache that cannot be written is only slower
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace

std::vector<float> reference_output(const Workload& w, uint64_t seed,
                                    const std::string& cache_dir) {
    std::vector<float> ref(static_cast<size_t>(w.output().numel()));
    const std::string key = reference_key(w, seed);
    const std::string path = cache_dir.empty() ? "" : reference_path(cache_dir, key);
    if (!path.empty() && read_reference(path, key, ref)) return ref;
    auto inputs = random_inputs(w, seed);
    w.def().reference(w, pointers(inputs), ref.data());
    if (!path.empty()) write_reference(path, key, ref);
    return ref;
}

VerifyResult verify_kernel(const Workload& w, Kernel& kernel, uint64_t seed,
                           const std::string& cache_dir) {
    auto inputs = random_inputs(w, seed);
    auto ptrs = pointers(inputs);
    size_t n = static_cast<size_t>(w.output().numel());
    std::vector<float> ref = reference_output(w, seed, cache_dir), out(n, std::nanf(""));
    kernel.prepare(ptrs);
    kernel.run(ptrs, out.data());
    VerifyResult r;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(out[i])) r.finite = false;
        r.max_abs_error = std::fmax(r.max_abs_error, std::fabs(double(out[i]) - ref[i]));
        r.max_abs_ref = std::fmax(r.max_abs_ref, std::fabs(double(ref[i])));
    }
    r.relative_error = r.max_abs_error / std::fmax(r.max_abs_ref, 1e-30);
    if (!r.finite) r.relative_error = INFINITY;
    return r;
}

}  // namespace kiln
