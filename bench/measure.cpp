// kiln/bench/measure.cpp — timing loop, medians, heap settings.
#include "bench/measure.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace kiln::bench {
namespace {
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

double time_per_call(LayerRun& r, double min_time) {
    const auto w0 = Clock::now();
    do {
        r.run();
    } while (since(w0) < 0.25 * min_time);
    long calls = 0;
    const auto t0 = Clock::now();
    double elapsed = 0.0;
    do {
        r.run();
        ++calls;
        elapsed = since(t0);
    } while (elapsed < min_time);
    return elapsed / double(calls);
}

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double geomean(const std::vector<double>& v) {
    if (v.empty()) return 0.0;
    double s = 0.0;
    for (double x : v)
        s += std::log(x);
    return std::exp(s / double(v.size()));
}

void keep_heap_memory() {
    // glibc returns freed top-of-heap memory and munmaps large chunks on free; a kernel whose
    // scratch buffers are malloc'ed per call then page-faults them in again on every call.
    mallopt(M_TRIM_THRESHOLD, -1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace kiln::bench
