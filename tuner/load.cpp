// kiln/tuner/load.cpp — other processes' load from /proc/stat and getrusage (tuner/load.h).
#include "tuner/load.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace kiln {

double parse_proc_stat_busy(const std::string& first_line, double ticks_per_second) {
    std::istringstream in(first_line);
    std::string label;
    if (!(in >> label) || label != "cpu" || ticks_per_second <= 0) return -1;
    std::vector<double> f;
    for (double v; in >> v;)
        f.push_back(v);
    if (f.size() < 4) return -1;
    double busy = 0;
    for (double v : f)
        busy += v;
    busy -= f[3];                    // idle
    if (f.size() > 4) busy -= f[4];  // iowait
    // guest and guest_nice are already counted inside user and nice.
    for (size_t i = 8; i < std::min<size_t>(f.size(), 10); ++i)
        busy -= f[i];
    return busy / ticks_per_second;
}

CpuSample cpu_sample() {
    CpuSample s;
    s.when = std::chrono::steady_clock::now();
    std::ifstream f("/proc/stat");
    std::string line;
    static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    if (!f || !std::getline(f, line)) return s;
    s.busy_s = parse_proc_stat_busy(line, ticks);
    rusage u{};
    if (s.busy_s < 0 || getrusage(RUSAGE_SELF, &u) != 0) return s;
    auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
    s.self_s = secs(u.ru_utime) + secs(u.ru_stime);
    s.valid = true;
    return s;
}

double other_load(const CpuSample& a, const CpuSample& b) {
    double wall = std::chrono::duration<double>(b.when - a.when).count();
    if (!a.valid || !b.valid || wall <= 0) return 0;
    return std::max(0.0, ((b.busy_s - a.busy_s) - (b.self_s - a.self_s)) / wall);
}

double wait_for_quiet(double max_cores, double max_wait_s, double window_s) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
        CpuSample a = cpu_sample();
        std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
        double load = other_load(a, cpu_sample());
        double waited =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (load <= max_cores || waited >= max_wait_s) return load;
    }
}

}  // namespace kiln
