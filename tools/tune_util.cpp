// kiln/tools/tune_util.cpp — see tune_util.h.
#include "tools/tune_util.h"

#include <unistd.h>

#include <climits>
#include <csignal>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/error.h"

namespace kiln::tools {

std::atomic<bool> g_interrupted{false};

namespace {

using Handler = void (*)(int);
Handler g_previous = SIG_DFL;

extern "C" void on_interrupt(int) {
    g_interrupted.store(true);
    std::signal(SIGINT, SIG_DFL);
}

}  // namespace

void install_interrupt_flag() {
    g_interrupted.store(false);
    g_previous = std::signal(SIGINT, on_interrupt);
}

void restore_interrupt() {
    std::signal(SIGINT, g_previous);
}

double parse_duration(const std::string& text) {
    if (text.empty()) return 0;
    size_t used = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    std::string unit = text.substr(used);
    double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
    if (used == 0 || scale < 0 || value <= 0)
        throw Error("time", "expected a duration such as 90s, 10m or 2h, got '" + text + "'");
    return value * scale;
}

std::string self_executable() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw Error("runner", "cannot find this executable (/proc/self/exe)");
    return std::string(buf, static_cast<size_t>(n));
}

std::string format_seconds(double s) {
    if (s < 0) return "?";
    int total = static_cast<int>(s + 0.5);
    if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, total / 60 % 60);
    if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
    return fmt::format("{}s", total);
}

void add_measurement_options(CLI::App* cmd, MeasurementOptions& o) {
    cmd->add_option("--threads", o.threads, "Threads per measured kernel (default: all cores)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--parallel-builds", o.parallel_builds, "Candidates compiled at once")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--min-time", o.min_time, "Seconds of timed runs per candidate")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--run-timeout", o.run_timeout,
                    "Seconds a candidate may take to verify and time before it is killed")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--quiet-wait", o.quiet_wait,
                    "Seconds to wait, per candidate, for other processes to leave the cores "
                    "before timing it (a record timed while they did not says so; 0: no waiting)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
}

std::unique_ptr<Runner> make_command_runner(const MeasurementOptions& o) {
    RunnerOptions ro;
    ro.measure_binary = self_executable();
    ro.parallel_builds = o.parallel_builds;
    ro.run_timeout_s = o.run_timeout;
    ro.measure.quiet_wait_s = o.quiet_wait;
    ro.measure.min_time_s = o.min_time;
    ro.measure.threads = o.threads;
    return make_process_runner(ro);
}

}  // namespace kiln::tools
