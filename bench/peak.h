// kiln/bench/peak.h — the machine's measured FP32 FMA peak, the denominator of "% of peak".
#pragma once

#include <string>

namespace kiln::bench {

// An FMA-only loop on `threads` threads, using the widest vectors this file was compiled for
// (see peak_isa()). On a shared host the peak a run sees moves with other people's load, so
// bench_layers.cpp takes one round beside each round of the layers and reports the median.
class PeakLoop {
  public:
    // Sizes a round to take about `seconds` on one idle thread.
    PeakLoop(int threads, double seconds);
    double round() const;  // GFLOP/s of one round, wall clock, all threads together

  private:
    int threads_;
    long iterations_ = 0;
};

// "avx512f", "avx2+fma" or "scalar": the vectors the peak loop uses.
std::string peak_isa();

}  // namespace kiln::bench
