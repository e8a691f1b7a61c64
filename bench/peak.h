// kiln/bench/peak.h — the machine's measured FP32 FMA peak, the denominator of "% of peak".
#pragma once

#include <string>

namespace kiln::bench {

// GFLOP/s of an FMA-only loop on `threads` threads, median over `rounds` rounds of about
// `seconds` each. Uses the widest vectors this file was compiled for (see peak_isa()).
double fma_peak_gflops(int threads, int rounds, double seconds);

// "avx512f", "avx2+fma" or "scalar": the vectors the peak loop uses.
std::string peak_isa();

}  // namespace kiln::bench
