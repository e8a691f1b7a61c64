// kiln/tools/tune_util.h — what `kiln tune-op` and `kiln tune` share: durations, the child
// executable, and the SIGINT flag.
#pragma once

#include <atomic>
#include <string>

namespace kiln::tools {

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
