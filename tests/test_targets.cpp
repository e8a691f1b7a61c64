// Target names, Halide target strings, host detection and the machine fingerprint.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "targets/target.h"

using namespace kiln;

TEST(Targets, NamedTargets) {
    Target avx2 = parse_target("x86-64-linux-avx2");
    EXPECT_EQ(avx2.vector_bits, 256);
    EXPECT_EQ(avx2.f32_lanes(), 8);
    EXPECT_EQ(avx2.vector_registers(), 16);
    EXPECT_TRUE(avx2.has_fma());
    Target avx512 = parse_target("x86-64-linux-avx512");
    EXPECT_EQ(avx512.vector_bits, 512);
    EXPECT_EQ(avx512.vector_registers(), 32);
    Target arm = parse_target("arm-64-linux");
    EXPECT_EQ(arm.vector_bits, 128);
    EXPECT_EQ(arm.vector_registers(), 32);
    EXPECT_FALSE(arm.is_host);  // this suite runs on x86-64
}

TEST(Targets, AnyHalideTargetString) {
    Target t = parse_target("x86-64-linux-sse41");
    EXPECT_EQ(t.vector_bits, 128);
    EXPECT_EQ(t.halide, "x86-64-linux-sse41");
    EXPECT_TRUE(t.is_host);  // every x86-64 host runs SSE4.1 code
}

TEST(Targets, UnknownTargetListsKnownOnes) {
    try {
        parse_target("riscv-tpu");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.field(), "target");
        std::string msg = e.what();
        for (const auto& name : known_target_names())
            EXPECT_NE(msg.find(name), std::string::npos) << msg;
    }
}

TEST(Targets, HostIsDetected) {
    Target h = parse_target("host");
    EXPECT_TRUE(h.is_host);
    EXPECT_GE(h.vector_bits, 128);
    EXPECT_FALSE(h.fingerprint.cpu_model.empty());
    EXPECT_GE(h.fingerprint.cores, 1);
    EXPECT_GT(h.fingerprint.l1d_bytes, 0);
    EXPECT_GT(h.fingerprint.l2_bytes, 0);
    EXPECT_EQ(h.fingerprint.isa, h.halide);
    EXPECT_EQ(h.fingerprint.id().size(), 16u);
}

TEST(Targets, FingerprintRoundTripsAndDistinguishesMachines) {
    Fingerprint f = host_fingerprint();
    Fingerprint back = Fingerprint::from_json(nlohmann::json::parse(f.to_json().dump()));
    EXPECT_EQ(back, f);
    EXPECT_EQ(back.id(), f.id());
    Fingerprint other = f;
    other.l2_bytes *= 2;
    EXPECT_NE(other.id(), f.id());
    EXPECT_THROW(Fingerprint::from_json(nlohmann::json::parse(R"({"cores": 2})")), Error);
}
