// kiln/targets/target.cpp — target names, host detection and the machine fingerprint.
//
// Host features come from Halide's cpuid-based detection, so what kiln compiles for is what
// Halide will emit; cache sizes and the CPU model come from /sys and /proc.
#include "targets/target.h"

#include "core/hash.h"

#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "Halide.h"
#include "core/error.h"

namespace kiln {
namespace {

struct NamedTarget {
    const char* name;
    const char* halide;
};

constexpr NamedTarget kNamed[] = {
    {"x86-64-linux-avx2", "x86-64-linux-avx-avx2-f16c-fma-sse41"},
    {"x86-64-linux-avx512", "x86-64-linux-avx-avx2-f16c-fma-sse41-avx512-avx512_skylake"},
    {"arm-64-linux", "arm-64-linux-arm_dot_prod-arm_fp16"},
};

std::string read_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// "48K" -> 49152; "32768K" -> 33554432; "1M" -> 1048576.
int64_t parse_size(const std::string& s) {
    if (s.empty()) return 0;
    int64_t v = 0;
    size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
        v = v * 10 + (s[i++] - '0');
    if (i < s.size() && (s[i] == 'K' || s[i] == 'k')) v *= 1024;
    if (i < s.size() && (s[i] == 'M' || s[i] == 'm')) v *= 1024 * 1024;
    return v;
}

int vector_bits_of(const Halide::Target& t) {
    if (t.arch == Halide::Target::X86) {
        if (t.has_feature(Halide::Target::AVX512)) return 512;
        if (t.has_feature(Halide::Target::AVX2) || t.has_feature(Halide::Target::AVX)) return 256;
    }
    return 128;
}

Target from_halide(const std::string& name, const Halide::Target& ht) {
    Target t;
    t.name = name;
    t.halide = ht.to_string();
    t.vector_bits = vector_bits_of(ht);
    return t;
}

// Code for `t` runs here when it is the host's architecture and OS and asks for no feature the
// host lacks (x86-64-linux-avx2 runs on an AVX-512 host).
bool runs_on_host(const Halide::Target& t) {
    Halide::Target host = Halide::get_host_target();
    if (t.arch != host.arch || t.os != host.os || t.bits != host.bits) return false;
    for (int f = 0; f < static_cast<int>(Halide::Target::FeatureEnd); ++f) {
        auto feature = static_cast<Halide::Target::Feature>(f);
        if (t.has_feature(feature) && !host.has_feature(feature)) return false;
    }
    return true;
}

}  // namespace

std::string Fingerprint::id() const {
    return fmt::format("{:016x}", fnv1a(fmt::format("{}|{}|{}|{}|{}|{}", cpu_model, cores,
                                                    l1d_bytes, l2_bytes, l3_bytes, isa)));
}

nlohmann::json Fingerprint::to_json() const {
    return {{"cpu_model", cpu_model}, {"cores", cores},       {"l1d_bytes", l1d_bytes},
            {"l2_bytes", l2_bytes},   {"l3_bytes", l3_bytes}, {"isa", isa}};
}

Fingerprint Fingerprint::from_json(const nlohmann::json& j) {
    Fingerprint f;
    try {
        f.cpu_model = j.at("cpu_model").get<std::string>();
        f.cores = j.at("cores").get<int>();
        f.l1d_bytes = j.at("l1d_bytes").get<int64_t>();
        f.l2_bytes = j.at("l2_bytes").get<int64_t>();
        f.l3_bytes = j.at("l3_bytes").get<int64_t>();
        f.isa = j.at("isa").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        throw Error("fingerprint", e.what());
    }
    return f;
}

int Target::vector_registers() const {
    Halide::Target ht(halide);
    if (ht.arch == Halide::Target::ARM && ht.bits == 64) return 32;
    return vector_bits >= 512 ? 32 : 16;
}

bool Target::has_fma() const {
    Halide::Target ht(halide);
    return ht.arch == Halide::Target::ARM || ht.has_feature(Halide::Target::FMA);
}

nlohmann::json Target::to_json() const {
    nlohmann::json j = {{"name", name}, {"halide", halide}, {"vector_bits", vector_bits}};
    if (is_host) j["fingerprint"] = fingerprint.to_json();
    return j;
}

Fingerprint host_fingerprint() {
    Fingerprint f;
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0 && f.cpu_model.empty()) {
            auto colon = line.find(':');
            if (colon != std::string::npos) f.cpu_model = line.substr(colon + 2);
        }
    }
    if (f.cpu_model.empty()) f.cpu_model = "unknown";
    f.cores = static_cast<int>(std::thread::hardware_concurrency());
    for (int i = 0; i < 8; ++i) {
        std::string dir = fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/", i);
        std::string level = read_line(dir + "level");
        if (level.empty()) break;
        std::string type = read_line(dir + "type");
        int64_t size = parse_size(read_line(dir + "size"));
        if (level == "1" && type == "Data") f.l1d_bytes = size;
        if (level == "2") f.l2_bytes = size;
        if (level == "3") f.l3_bytes = size;
    }
    f.isa = Halide::get_host_target().to_string();
    return f;
}

Target host_target() {
    Target t = from_halide("host", Halide::get_host_target());
    t.is_host = true;
    t.fingerprint = host_fingerprint();
    return t;
}

std::vector<std::string> known_target_names() {
    std::vector<std::string> names = {"host"};
    for (const auto& n : kNamed)
        names.push_back(n.name);
    return names;
}

Target parse_target(const std::string& name) {
    if (name == "host") return host_target();
    for (const auto& n : kNamed) {
        if (name != n.name) continue;
        Target t = from_halide(n.name, Halide::Target(n.halide));
        t.is_host = runs_on_host(Halide::Target(n.halide));
        if (t.is_host) t.fingerprint = host_fingerprint();
        return t;
    }
    if (Halide::Target::validate_target_string(name)) {
        Halide::Target ht(name);
        if (ht.arch == Halide::Target::ArchUnknown || ht.os == Halide::Target::OSUnknown)
            throw Error("target", "'" + name + "' names no architecture or OS");
        Target t = from_halide(name, ht);
        t.is_host = runs_on_host(ht);
        if (t.is_host) t.fingerprint = host_fingerprint();
        return t;
    }
    std::string known;
    for (const auto& n : known_target_names())
        known += (known.empty() ? "" : ", ") + n;
    throw Error("target", "unknown target '" + name + "' (known: " + known +
                              ", or a Halide target string such as x86-64-linux-avx2-fma)");
}

}  // namespace kiln
