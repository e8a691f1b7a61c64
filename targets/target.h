// kiln/targets/target.h — what kiln compiles for, and the machine a measurement was taken on.
//
// A Target is a name ("host", "x86-64-linux-avx2", ...), the Halide target string it stands
// for, and the vector width the schedules block for. The Fingerprint says which machine:
// records from the same ISA can apply anywhere, records with the same fingerprint were measured
// on this very kind of machine. No Halide in this header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace kiln {

struct Fingerprint {
    std::string cpu_model;  // /proc/cpuinfo "model name"
    int cores = 0;          // online logical CPUs
    int64_t l1d_bytes = 0;  // per core
    int64_t l2_bytes = 0;   // per core
    int64_t l3_bytes = 0;   // per socket
    std::string isa;        // Halide feature list of the host, e.g. "x86-64-linux-avx-avx2-fma"

    std::string id() const;  // short stable hash of all fields, hex
    nlohmann::json to_json() const;
    static Fingerprint from_json(const nlohmann::json& j);
    bool operator==(const Fingerprint& o) const { return id() == o.id(); }
};

struct Target {
    std::string name;    // as the user gave it ("host") or canonical ("x86-64-linux-avx2")
    std::string halide;  // full Halide target string, e.g. "x86-64-linux-avx-avx2-f16c-fma-sse41"
    int vector_bits = 128;    // natural SIMD width: 128 (SSE/NEON), 256 (AVX2), 512 (AVX-512)
    bool is_host = false;     // compiling for the machine we run on; kernels can be measured
    Fingerprint fingerprint;  // of the host when is_host; empty otherwise

    int f32_lanes() const { return vector_bits / 32; }
    int vector_registers() const;  // 16 for AVX2/SSE, 32 for AVX-512 and arm64
    bool has_fma() const;          // by the Halide feature string (fma, or any arm64)
    nlohmann::json to_json() const;
};

// "host", "x86-64-linux-avx2", "x86-64-linux-avx512", "arm-64-linux", or any valid Halide
// target string. Throws kiln::Error("target", ...) listing the known names otherwise.
Target parse_target(const std::string& name);
Target host_target();
Fingerprint host_fingerprint();
std::vector<std::string> known_target_names();

}  // namespace kiln
