// kiln/tuner/load.h — how busy other processes keep the machine, so that a candidate is timed
// only while nothing else runs (docs/MEASUREMENT.md, "A quiet machine").
//
// Linux's /proc/stat counts the busy time of every CPU; getrusage() counts this process's own
// (all its threads). Their difference over a window is the work of everything else, in cores:
// 1.0 means another process kept one core busy the whole window. Where /proc/stat cannot be
// read the load is unknown and reads as 0, so nothing waits for it.
#pragma once

#include <chrono>
#include <string>

namespace kiln {

struct CpuSample {
    std::chrono::steady_clock::time_point when;
    double busy_s = 0;  // busy CPU seconds of the whole machine since boot
    double self_s = 0;  // CPU seconds of this process (user + system, all threads)
    bool valid = false;
};

// The first line of /proc/stat ("cpu  user nice system idle iowait irq softirq steal ..."):
// busy seconds = every field but idle and iowait, over `ticks_per_second`. Returns < 0 for a
// line that is not one.
double parse_proc_stat_busy(const std::string& first_line, double ticks_per_second);

CpuSample cpu_sample();

// Cores kept busy by other processes between two samples of this process (0 when unknown).
double other_load(const CpuSample& a, const CpuSample& b);

// Samples `window_s` windows until other processes keep at most `max_cores` busy, or
// `max_wait_s` has passed; returns the last window's load. With max_wait_s <= 0, one window.
double wait_for_quiet(double max_cores, double max_wait_s, double window_s = 0.2);

}  // namespace kiln
