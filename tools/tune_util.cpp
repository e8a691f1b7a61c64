// kiln/tools/tune_util.cpp — see tune_util.h.
#include "tools/tune_util.h"

#include <unistd.h>

#include <climits>
#include <csignal>

#include <fmt/format.h>

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

}  // namespace kiln::tools
