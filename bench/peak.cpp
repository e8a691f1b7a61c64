// kiln/bench/peak.cpp — an FMA-only loop on every thread: the FP32 peak kiln is measured against.
//
// Compiled with -march=native (bench/CMakeLists.txt), so the vector width is the host's. Twelve
// independent accumulators cover FMA latency x pipes on current x86 cores (Zen 4 and Zen 5:
// 4 cycles x 2 pipes = 8 in flight) while leaving registers free even with 16 of them (AVX2).
// On this project's 2-CPU Zen 5 host (full-width 512-bit FMA) its best rounds reach 473 GFLOP/s,
// 2 x 2 x 16 lanes x 2 flops at about 3.7 GHz.
#include "bench/peak.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace kiln::bench {
namespace {

constexpr int kAccumulators = 12;

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec splat(float x) {
    return _mm512_set1_ps(x);
}
inline Vec fma(Vec a, Vec b, Vec c) {
    return _mm512_fmadd_ps(a, b, c);
}
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec splat(float x) {
    return _mm256_set1_ps(x);
}
inline Vec fma(Vec a, Vec b, Vec c) {
    return _mm256_fmadd_ps(a, b, c);
}
#else
using Vec = float;
constexpr int kLanes = 1;
inline Vec splat(float x) {
    return x;
}
inline Vec fma(Vec a, Vec b, Vec c) {
    return a * b + c;
}
#endif

// Only keeps the result alive, so speed does not matter (and GCC 12 warns inside
// _mm512_reduce_add_ps).
inline float sum(const Vec& v) {
    float f[kLanes];
    std::memcpy(f, &v, sizeof f);
    float s = 0.0f;
    for (float x : f)
        s += x;
    return s;
}

// acc = acc * a + b converges to b / (1 - a): no overflow however long it runs.
float fma_loop(long iterations) {
    Vec acc[kAccumulators];
    for (int j = 0; j < kAccumulators; ++j)
        acc[j] = splat(float(j));
    const Vec a = splat(0.999999f), b = splat(1e-6f);
    for (long i = 0; i < iterations; ++i)
        for (int j = 0; j < kAccumulators; ++j)
            acc[j] = fma(acc[j], a, b);
    float s = 0.0f;
    for (int j = 0; j < kAccumulators; ++j)
        s += sum(acc[j]);
    return s;
}

double flops_of(long iterations) {
    return 2.0 * kLanes * kAccumulators * double(iterations);
}

// Seconds for `threads` threads to each run `iterations`, from a common start.
double run_threads(int threads, long iterations) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    std::vector<float> sink(threads);
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) {
            }
            sink[t] = fma_loop(iterations);
        });
    while (ready.load() < threads) {
    }
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : pool)
        th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile float keep = sink[0];
    (void)keep;
    return s;
}

}  // namespace

PeakLoop::PeakLoop(int threads, double seconds) : threads_(std::max(threads, 1)) {
    long iterations = 1 << 16;
    while (run_threads(1, iterations) < 0.02)
        iterations *= 2;
    iterations_ = long(double(iterations) * seconds / std::max(run_threads(1, iterations), 1e-6));
    iterations_ = std::max(iterations_, 1L);
}

double PeakLoop::round() const {
    return threads_ * flops_of(iterations_) / run_threads(threads_, iterations_) * 1e-9;
}

std::string peak_isa() {
#if defined(__AVX512F__)
    return "avx512f";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2+fma";
#else
    return "scalar";
#endif
}

}  // namespace kiln::bench
