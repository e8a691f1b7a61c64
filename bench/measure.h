// kiln/bench/measure.h — the timing protocol shared by kiln and the peers.
//
// One measurement: warm up, then repeat the call until at least `min_time` seconds have passed
// and take the mean per call. bench_layers.cpp interleaves implementations within each round
// and reports the median over rounds.
#pragma once

#include <vector>

#include "bench/peer.h"

namespace kiln::bench {

// Seconds per call of r.run(). The warm-up runs the call for a quarter of `min_time` (at least
// once) so that caches, page mappings and the implementation's thread pool are hot.
double time_per_call(LayerRun& r, double min_time);

double median(std::vector<double> v);
double geomean(const std::vector<double>& v);  // 0 for an empty list

// Keeps freed memory in the process: no trimming of the heap and no mmap'ed chunks, so a kernel
// that allocates per call does not pay for page faults on each one.
void keep_heap_memory();

}  // namespace kiln::bench
