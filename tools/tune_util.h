// kiln/tools/tune_util.h — what `kiln tune-op` and `kiln tune` share: measurement options and
// the runner, durations, and the SIGINT flag.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "tuner/runner.h"

namespace CLI {
class App;
}

namespace kiln::tools {

// How candidates are built and timed: the options `tune-op` and `tune` share.
struct MeasurementOptions {
    int threads = 0;  // 0 = all cores
    int parallel_builds = 2;
    double min_time = 0.1;
    double run_timeout = 30;
    double quiet_wait = 30;
};
// --threads, --parallel-builds, --min-time, --run-timeout, --quiet-wait.
void add_measurement_options(CLI::App* cmd, MeasurementOptions& o);
// The process runner: children are this executable's `measure-one`.
std::unique_ptr<Runner> make_command_runner(const MeasurementOptions& o);

// "90" and "90s" are seconds; "10m" minutes; "2h" hours; "" is 0. Throws kiln::Error("time", ...)
// for anything else.
double parse_duration(const std::string& text);
// "42s", "3m07s", "1h05m"; "?" for a negative (unknown) time.
std::string format_seconds(double seconds);
// This executable's path (/proc/self/exe): the runner's children are `kiln measure-one`.
std::string self_executable();

// Set by the first Ctrl-C once install_interrupt_flag() has run; a second Ctrl-C ends the
// process at once. restore_interrupt() puts the previous handler back.
extern std::atomic<bool> g_interrupted;
void install_interrupt_flag();
void restore_interrupt();

}  // namespace kiln::tools
