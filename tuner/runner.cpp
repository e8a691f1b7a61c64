// kiln/tuner/runner.cpp — the process runner: one `kiln measure-one` child per candidate.
//
// Two halves of one protocol (docs/MEASUREMENT.md):
//   - measure_one_main(): the child. Reads a JSON request, compiles, says "compiled", waits for
//     "go", verifies against the scalar reference, times, and answers one "done" line.
//   - ProcessRunner::measure(): the parent. Spawns children (posix_spawn, never a bare fork: the
//     tuner may have threads), keeps up to parallel_builds of them compiling, measures compiled
//     ones one at a time while nothing compiles, and turns every way a child can end — an answer,
//     a signal, an exit, silence past a deadline — into a Record.
// Start reading at ProcessRunner::measure().
#include "tuner/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/op.h"
#include "schedules/kernel.h"
#include "schedules/verify.h"
#include "tuner/load.h"

extern char** environ;

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------
// The request, shared by both sides.

json measure_to_json(const MeasureOptions& m) {
    return {{"min_time_s", m.min_time_s},           {"min_repeats", m.min_repeats},
            {"warmup_runs", m.warmup_runs},         {"threads", m.threads},
            {"verify_seed", m.verify_seed},         {"tolerance", m.tolerance},
            {"reference_cache", m.reference_cache}, {"quiet_wait_s", m.quiet_wait_s},
            {"max_other_load", m.max_other_load}};
}

MeasureOptions measure_from_json(const json& j) {
    MeasureOptions m;
    if (!j.is_object()) throw Error("measure", "expected a JSON object");
    m.min_time_s = j.value("min_time_s", m.min_time_s);
    m.min_repeats = j.value("min_repeats", m.min_repeats);
    m.warmup_runs = j.value("warmup_runs", m.warmup_runs);
    m.threads = j.value("threads", m.threads);
    m.verify_seed = j.value("verify_seed", m.verify_seed);
    m.tolerance = j.value("tolerance", m.tolerance);
    m.reference_cache = j.value("reference_cache", m.reference_cache);
    m.quiet_wait_s = j.value("quiet_wait_s", m.quiet_wait_s);
    m.max_other_load = j.value("max_other_load", m.max_other_load);
    return m;
}

// Workload::to_json() prints the key, which needs the op's definition; the parent may not have
// loaded the plugin that defines a test op, and the child recomputes the key anyway.
json workload_request_json(const Workload& w) {
    try {
        return w.to_json();
    } catch (const Error&) {
        json params = json::object();
        for (const auto& [name, v] : w.params)
            params[name] = v.size() == 1 ? json(v[0]) : json(v);
        return {{"op", w.op},
                {"dtype", std::string(to_string(w.dtype))},
                {"epilogue", w.epilogue.to_string()},
                {"params", params}};
    }
}

// The target as parse_target() reads it back: a known name, else the full Halide string.
std::string target_request_name(const Target& t) {
    for (const auto& name : known_target_names())
        if (name == t.name) return name;
    return t.halide;
}

// ---------------------------------------------------------------------------------------------
// The child.

void emit(std::ostream& out, const json& j) {
    out << j.dump() << '\n';
    out.flush();
}

json done(const std::string& status, const std::string& error) {
    return {{"phase", "done"}, {"status", status}, {"error", error}};
}

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The note an ok record carries when other processes were busy while it was timed.
std::string load_note(double load, const MeasureOptions& m) {
    if (load <= m.max_other_load) return "";
    return fmt::format("timed while other processes kept {:.2f} cores busy", load);
}

// Each run is timed on its own: min and median over single runs show both the best case and
// the typical one, and a run disturbed by other work only moves the median.
std::vector<double> timed_runs(Kernel& kernel, const std::vector<const float*>& inputs, float* out,
                               double min_time_s, int min_repeats) {
    std::vector<double> ms;
    auto start = Clock::now();
    while (static_cast<int>(ms.size()) < std::max(1, min_repeats) ||
           seconds_since(start) < min_time_s) {
        auto s = Clock::now();
        kernel.run(inputs, out);
        ms.push_back(seconds_since(s) * 1e3);
    }
    return ms;
}

// Verification, then timing; kiln::Error, Halide errors and anything else a kernel throws
// become runtime_error in the caller.
json verify_and_time(const Workload& w, Kernel& kernel, const MeasureOptions& m) {
    VerifyResult v = verify_kernel(w, kernel, m.verify_seed, m.reference_cache);
    if (!v.finite) return done("wrong_result", "output has NaN or Inf");
    if (!v.ok(m.tolerance))
        return done("wrong_result", fmt::format("relative error {:.2e} > {:.0e} (seed {})",
                                                v.relative_error, m.tolerance, m.verify_seed));
    // The same seed gives the same inputs verify_kernel() prepared the kernel with.
    auto inputs = random_inputs(w, m.verify_seed);
    auto ptrs = pointers(inputs);
    std::vector<float> out(static_cast<size_t>(w.output().numel()));

    for (int i = 0; i < m.warmup_runs; ++i)
        kernel.run(ptrs, out.data());
    // Timed again, after waiting for quiet, while other processes were busy during the runs:
    // the parent let this candidate go in a quiet moment, but other work may start any time.
    auto start = Clock::now();
    std::vector<double> ms;
    double load = 0;
    for (;;) {
        CpuSample a = cpu_sample();
        ms = timed_runs(kernel, ptrs, out.data(), m.min_time_s, m.min_repeats);
        load = other_load(a, cpu_sample());
        double left = m.quiet_wait_s - seconds_since(start);
        if (load <= m.max_other_load || left <= 0) break;  // past the budget, it stands, noted
        wait_for_quiet(m.max_other_load, left);
    }
    return {{"phase", "done"},
            {"status", "ok"},
            {"min_ms", *std::min_element(ms.begin(), ms.end())},
            {"median_ms", median_of(ms)},
            {"repeats", static_cast<int>(ms.size())},
            {"other_load", load}};
}

// The child's comparison mode (a request with "configs"): every config compiled and verified,
// then timed in interleaved rounds, each round giving every kernel `min_time_s` of runs, so
// that whatever else the machine does in a moment falls on all of them alike. Per config: the
// median over rounds of each round's median, the min over every run.
json compare_configs(const Workload& w, std::vector<std::unique_ptr<Kernel>>& kernels,
                     std::vector<json>& results, const MeasureOptions& m, int rounds) {
    auto inputs = random_inputs(w, m.verify_seed);
    auto ptrs = pointers(inputs);
    std::vector<float> out(static_cast<size_t>(w.output().numel()));
    std::vector<size_t> timed;
    for (size_t i = 0; i < kernels.size(); ++i) {
        if (!kernels[i]) continue;
        try {
            json d = verify_and_time(w, *kernels[i], m);
            results[i] = d;
            if (d["status"] == "ok") timed.push_back(i);
        } catch (const std::exception& e) {
            results[i] = done("runtime_error", e.what());
        }
    }
    std::vector<std::vector<double>> round_medians(kernels.size());
    std::vector<double> best(kernels.size(), 0);
    std::vector<int> repeats(kernels.size(), 0);
    for (int r = 0; r < rounds; ++r) {
        for (size_t i : timed) {
            std::vector<double> ms =
                timed_runs(*kernels[i], ptrs, out.data(), m.min_time_s, m.min_repeats);
            round_medians[i].push_back(median_of(ms));
            double lo = *std::min_element(ms.begin(), ms.end());
            best[i] = r == 0 ? lo : std::min(best[i], lo);
            repeats[i] += static_cast<int>(ms.size());
        }
    }
    for (size_t i : timed) {
        results[i]["min_ms"] = best[i];
        results[i]["median_ms"] = median_of(round_medians[i]);
        results[i]["repeats"] = repeats[i];
        results[i]["rounds"] = rounds;
    }
    return {{"phase", "done"}, {"status", "ok"}, {"results", results}};
}

// ---------------------------------------------------------------------------------------------
// The parent: spawning, pipes, deadlines.

// Writes all of `s`; false if the child has gone. SIGPIPE is blocked meanwhile (and a pending
// one consumed) so that a dead child cannot kill the tuner.
bool write_all(int fd, const std::string& s) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool ok = true;
    for (size_t off = 0; off < s.size();) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ok = false;
            if (errno == EPIPE && !sigismember(&old, SIGPIPE)) {
                timespec zero{0, 0};
                sigtimedwait(&pipe_set, nullptr, &zero);
            }
            break;
        }
        off += static_cast<size_t>(n);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ok;
}

std::string signal_name(int sig) {
    switch (sig) {
        case SIGSEGV:
            return "SIGSEGV";
        case SIGABRT:
            return "SIGABRT";
        case SIGBUS:
            return "SIGBUS";
        case SIGFPE:
            return "SIGFPE";
        case SIGILL:
            return "SIGILL";
        case SIGKILL:
            return "SIGKILL";
        case SIGTERM:
            return "SIGTERM";
        case SIGPIPE:
            return "SIGPIPE";
        case SIGTRAP:
            return "SIGTRAP";
        case SIGINT:
            return "SIGINT";
        default:
            return fmt::format("signal {}", sig);
    }
}

std::string describe_exit(int wait_status) {
    if (WIFSIGNALED(wait_status)) return "killed by " + signal_name(WTERMSIG(wait_status));
    if (WIFEXITED(wait_status)) return fmt::format("exited with code {}", WEXITSTATUS(wait_status));
    return "ended";
}

constexpr size_t kStderrTail = 300;  // characters of a child's stderr kept for the error

struct Child {
    enum class State { compiling, queued, measuring, ended };

    size_t index = 0;  // into the batch
    pid_t pid = -1;
    int in_fd = -1, out_fd = -1, err_fd = -1;
    State state = State::compiling;
    Clock::time_point started;
    Clock::time_point deadline;
    std::string out_buf, err_buf;
    bool reaped = false;
    int wait_status = 0;
};

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Reads what is available; false at end of file (or a read error).
bool drain(int fd, std::string& buf, size_t keep_tail) {
    char chunk[4096];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n > 0) {
            buf.append(chunk, static_cast<size_t>(n));
            if (keep_tail && buf.size() > 4 * keep_tail) buf.erase(0, buf.size() - keep_tail);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        return false;
    }
}

std::string stderr_tail(const std::string& err) {
    std::string s = err.size() > kStderrTail ? "..." + err.substr(err.size() - kStderrTail) : err;
    for (char& ch : s)
        if (ch == '\n' || ch == '\r') ch = ' ';
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

class ProcessRunner final : public Runner {
  public:
    explicit ProcessRunner(RunnerOptions o) : o_(std::move(o)) {
        if (!o_.measure.reference_cache.empty()) return;
        // The children share one reference per workload for this runner's lifetime.
        std::string dir = (std::filesystem::temp_directory_path() / "kiln-ref-XXXXXX").string();
        if (::mkdtemp(dir.data())) o_.measure.reference_cache = owned_cache_ = dir;
    }
    ~ProcessRunner() override {
        std::error_code ignored;
        if (!owned_cache_.empty()) std::filesystem::remove_all(owned_cache_, ignored);
    }
    ProcessRunner(const ProcessRunner&) = delete;
    ProcessRunner& operator=(const ProcessRunner&) = delete;

    std::vector<Record> measure(const Workload& w, const std::vector<Config>& configs,
                                const Target& t) override;
    std::vector<Record> compare(const Workload& w, const std::vector<Config>& configs,
                                const Target& t, int rounds) override;

  private:
    void check_can_measure(const Target& t) const;
    std::vector<Record> blank_records(const Workload& w, const std::vector<Config>& configs,
                                      const Target& t) const;
    json request_for(const Workload& w, const Target& t) const;
    std::vector<std::string> child_argv() const;
    void spawn(Child& c, const std::string& request, Record& r);
    void on_line(Child& c, const std::string& line, Record& r);
    void finish(Child& c, Record& r, RecordStatus status, const std::string& error);
    void ended_without_answer(Child& c, Record& r);
    void reap(Child& c, bool kill_first);

    RunnerOptions o_;
    std::string owned_cache_;  // the temporary reference cache this runner made, if any
};

std::vector<std::string> ProcessRunner::child_argv() const {
    std::vector<std::string> argv = {o_.measure_binary, "measure-one"};
    for (const auto& p : o_.plugins) {
        argv.push_back("--plugin");
        argv.push_back(p);
    }
    return argv;
}

void ProcessRunner::spawn(Child& c, const std::string& request, Record& r) {
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        std::string why = strerror(errno);
        for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]})
            if (fd >= 0) ::close(fd);
        c.reaped = true;
        finish(c, r, RecordStatus::compile_error, "cannot create pipes for a child: " + why);
        return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears close-on-exec on the copies; every other pipe end, this child's and its
    // siblings', closes at exec, so a sibling never holds another child's pipe open.
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    auto args = child_argv();
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    // Each child leads its own process group: a Ctrl-C at the terminal reaches the tuner,
    // which finishes the candidate being timed, and not every candidate at once.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, o_.measure_binary.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]), ::close(out[1]), ::close(err[1]);
    c.in_fd = in[1];
    c.out_fd = out[0];
    c.err_fd = err[0];
    c.started = Clock::now();
    c.deadline = c.started + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o_.compile_timeout_s));
    if (rc != 0) {
        c.reaped = true;
        finish(c, r, RecordStatus::compile_error,
               "cannot start " + o_.measure_binary + ": " + strerror(rc));
        return;
    }
    c.pid = pid;
    fcntl(c.out_fd, F_SETFL, fcntl(c.out_fd, F_GETFL) | O_NONBLOCK);
    fcntl(c.err_fd, F_SETFL, fcntl(c.err_fd, F_GETFL) | O_NONBLOCK);
    // A child that is already gone shows as end of file on its stdout.
    write_all(c.in_fd, request + "\n");
}

// Collects the child's exit status: at once after SIGKILL, or after a short grace for a child
// that answered and is exiting on its own.
void ProcessRunner::reap(Child& c, bool kill_first) {
    if (c.reaped || c.pid < 0) return;
    if (kill_first) ::kill(c.pid, SIGKILL);
    auto grace = Clock::now() + std::chrono::seconds(2);
    for (;;) {
        pid_t got = waitpid(c.pid, &c.wait_status, kill_first ? 0 : WNOHANG);
        if (got == c.pid || (got < 0 && errno != EINTR)) break;
        if (got == 0 && Clock::now() > grace) {
            ::kill(c.pid, SIGKILL);
            kill_first = true;
            continue;
        }
        if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    c.reaped = true;
}

void ProcessRunner::finish(Child& c, Record& r, RecordStatus status, const std::string& error) {
    r.status = status;
    r.error = error;
    r.time = utc_now();
    c.state = Child::State::ended;
    close_fd(c.in_fd);
    close_fd(c.out_fd);
    close_fd(c.err_fd);
}

// The child's stdout closed before it answered: a crash, an exit, or stdout closed. Before
// "compiled" that is a compile error, after it a runtime error; the record says how it ended.
void ProcessRunner::ended_without_answer(Child& c, Record& r) {
    const bool compiled = c.state != Child::State::compiling;
    reap(c, false);
    if (c.err_fd >= 0) drain(c.err_fd, c.err_buf, kStderrTail);
    std::string why = describe_exit(c.wait_status) + " before answering";
    std::string tail = stderr_tail(c.err_buf);
    if (!tail.empty()) why += ": " + tail;
    finish(c, r, compiled ? RecordStatus::runtime_error : RecordStatus::compile_error, why);
}

void ProcessRunner::on_line(Child& c, const std::string& line, Record& r) {
    json j = json::parse(line, nullptr, false);
    // Anything else a kernel or library prints on stdout is not part of the protocol.
    if (j.is_discarded() || !j.is_object() || !j.contains("phase")) return;
    if (j.contains("compile_seconds")) r.compile_seconds = j.value("compile_seconds", 0.0);
    if (j.contains("space_version")) r.space_version = j.value("space_version", 0);
    std::string phase = j.value("phase", "");
    if (phase == "compiled" && c.state == Child::State::compiling) {
        c.state = Child::State::queued;
        return;
    }
    if (phase != "done") return;
    std::string status = j.value("status", "");
    const std::pair<const char*, RecordStatus> kStatuses[] = {
        {"ok", RecordStatus::ok},
        {"compile_error", RecordStatus::compile_error},
        {"runtime_error", RecordStatus::runtime_error},
        {"timeout", RecordStatus::timeout},
        {"wrong_result", RecordStatus::wrong_result}};
    auto it = std::find_if(std::begin(kStatuses), std::end(kStatuses),
                           [&](const auto& s) { return status == s.first; });
    bool was_measuring = c.state == Child::State::measuring;
    if (it == std::end(kStatuses)) {
        reap(c, true);
        finish(c, r, was_measuring ? RecordStatus::runtime_error : RecordStatus::compile_error,
               "unknown status in the answer: " + line);
        return;
    }
    if (it->second == RecordStatus::ok) {
        r.min_ms = j.value("min_ms", 0.0);
        r.median_ms = j.value("median_ms", 0.0);
        r.repeats = j.value("repeats", 0);
    }
    reap(c, false);
    finish(c, r, it->second,
           it->second == RecordStatus::ok ? load_note(j.value("other_load", 0.0), o_.measure)
                                          : j.value("error", ""));
}

void ProcessRunner::check_can_measure(const Target& t) const {
    if (o_.measure_binary.empty() || ::access(o_.measure_binary.c_str(), X_OK) != 0)
        throw Error("measure_binary", "'" + o_.measure_binary +
                                          "' is not an executable kiln binary: " +
                                          (o_.measure_binary.empty() ? "empty" : strerror(errno)));
    for (const auto& p : o_.plugins)
        if (::access(p.c_str(), R_OK) != 0)
            throw Error("plugins", "cannot read '" + p + "': " + strerror(errno));
    if (!t.is_host)
        throw Error("target", "'" + t.name + "' does not run on this machine; kernels for it " +
                                  "can be compiled but not measured here");
}

std::vector<Record> ProcessRunner::blank_records(const Workload& w,
                                                 const std::vector<Config>& configs,
                                                 const Target& t) const {
    Record base;
    base.workload = w;
    base.target_name = t.name;
    base.target_halide = t.halide;
    base.fingerprint = host_fingerprint();
    base.kiln_version = KILN_VERSION;
    try {
        base.space_version = find_space(w.op).space(w, t).version;
    } catch (const std::exception&) {
        // The op is only known to the child (a plugin): the child reports the version.
    }
    std::vector<Record> records(configs.size(), base);
    for (size_t i = 0; i < configs.size(); ++i)
        records[i].config = configs[i];
    return records;
}

json ProcessRunner::request_for(const Workload& w, const Target& t) const {
    return {{"workload", workload_request_json(w)},
            {"target", target_request_name(t)},
            {"measure", measure_to_json(o_.measure)}};
}

std::vector<Record> ProcessRunner::measure(const Workload& w, const std::vector<Config>& configs,
                                           const Target& t) {
    check_can_measure(t);
    std::vector<Record> records = blank_records(w, configs, t);
    json request = request_for(w, t);
    const int builds = std::max(1, o_.parallel_builds);
    // Compiled children wait, each holding its JIT kernel in memory; bound how many.
    const size_t max_alive = static_cast<size_t>(2 * builds);
    // A measuring child may spend its quiet budget waiting for other processes too.
    const auto run_timeout = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(o_.run_timeout_s + std::max(0.0, o_.measure.quiet_wait_s)));
    // A candidate goes once other processes are quiet, or the quiet budget is spent waiting.
    const MeasureOptions& m = o_.measure;
    std::optional<Clock::time_point> waiting_since;
    auto quiet = [&] {
        if (m.quiet_wait_s <= 0) return true;
        if (!waiting_since) waiting_since = Clock::now();
        if (seconds_since(*waiting_since) < m.quiet_wait_s &&
            wait_for_quiet(m.max_other_load, 0) > m.max_other_load)
            return false;
        waiting_since.reset();
        return true;
    };

    size_t next = 0;
    std::deque<std::unique_ptr<Child>> alive;
    std::vector<char> answered(configs.size(), 0);  // a record that is final
    // Whatever happens, no child outlives this call and none is left a zombie.
    struct KillAll {
        ProcessRunner* runner;
        std::deque<std::unique_ptr<Child>>& alive;
        ~KillAll() {
            for (auto& c : alive) {
                runner->reap(*c, true);
                close_fd(c->in_fd), close_fd(c->out_fd), close_fd(c->err_fd);
            }
        }
    } kill_all{this, alive};
    auto count = [&](Child::State s) {
        return static_cast<int>(std::count_if(alive.begin(), alive.end(),
                                              [&](const auto& c) { return c->state == s; }));
    };
    bool stopping = false;
    while (next < configs.size() || !alive.empty()) {
        // Asked to stop: start nothing new; once no candidate is being timed, the rest are
        // dropped unmeasured (killed on the way out).
        stopping = stopping || stop_requested();
        if (stopping && count(Child::State::measuring) == 0) break;
        // Schedule: measure when nothing compiles (compiles would share the cores with the
        // timed runs), otherwise start compiles up to the limits.
        bool measuring = count(Child::State::measuring) > 0;
        if (!stopping && !measuring && count(Child::State::compiling) == 0 &&
            count(Child::State::queued) > 0 && quiet()) {
            auto it = std::find_if(alive.begin(), alive.end(),
                                   [](const auto& c) { return c->state == Child::State::queued; });
            Child& c = **it;
            c.state = Child::State::measuring;
            c.deadline = Clock::now() + run_timeout;
            write_all(c.in_fd, "go\n");
            measuring = true;
        }
        while (!stopping && !measuring && next < configs.size() &&
               count(Child::State::compiling) < builds && alive.size() < max_alive) {
            auto c = std::make_unique<Child>();
            c->index = next;
            json req = request;
            req["config"] = configs[next].to_json();
            spawn(*c, req.dump(), records[next]);
            if (c->state == Child::State::ended) answered[next] = 1;
            ++next;
            if (c->state != Child::State::ended) alive.push_back(std::move(c));
        }
        if (alive.empty()) continue;

        // Wait for output or the nearest deadline.
        std::vector<pollfd> fds;
        auto wake = Clock::now() + std::chrono::seconds(1);
        for (const auto& c : alive) {
            fds.push_back({c->out_fd, POLLIN, 0});
            fds.push_back({c->err_fd, POLLIN, 0});  // poll() skips a closed (-1) fd
            if (c->state != Child::State::queued) wake = std::min(wake, c->deadline);
        }
        auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now());
        int timeout = static_cast<int>(std::max<int64_t>(0, wait_ms.count() + 1));
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR)
            throw Error("runner", std::string("poll: ") + strerror(errno));

        for (size_t k = 0; k < alive.size(); ++k) {
            Child& c = *alive[k];
            Record& r = records[c.index];
            if (c.err_fd >= 0 && fds[2 * k + 1].revents && !drain(c.err_fd, c.err_buf, kStderrTail))
                close_fd(c.err_fd);
            if (!fds[2 * k].revents) continue;
            bool open = drain(c.out_fd, c.out_buf, 0);
            for (size_t nl; c.state != Child::State::ended &&
                            (nl = c.out_buf.find('\n')) != std::string::npos;) {
                std::string line = c.out_buf.substr(0, nl);
                c.out_buf.erase(0, nl + 1);
                on_line(c, line, r);
            }
            if (!open && c.state != Child::State::ended) ended_without_answer(c, r);
        }
        auto now = Clock::now();
        for (auto& cp : alive) {
            Child& c = *cp;
            if (c.state == Child::State::ended || c.state == Child::State::queued) continue;
            if (now < c.deadline) continue;
            bool compiling = c.state == Child::State::compiling;
            Record& r = records[c.index];
            if (compiling) r.compile_seconds = seconds_since(c.started);
            reap(c, true);
            finish(c, r, RecordStatus::timeout,
                   fmt::format("no answer within {:g} s ({})",
                               compiling ? o_.compile_timeout_s
                                         : o_.run_timeout_s + std::max(0.0, m.quiet_wait_s),
                               compiling ? "compile" : "run"));
        }
        for (auto& cp : alive) {
            if (cp->state != Child::State::ended) continue;
            reap(*cp, true);
            answered[cp->index] = 1;
        }
        alive.erase(std::remove_if(alive.begin(), alive.end(),
                                   [](const auto& c) { return c->state == Child::State::ended; }),
                    alive.end());
    }
    if (!stopping) return records;
    std::vector<Record> kept;
    for (size_t i = 0; i < records.size(); ++i)
        if (answered[i]) kept.push_back(std::move(records[i]));
    return kept;
}

std::vector<Record> ProcessRunner::compare(const Workload& w, const std::vector<Config>& configs,
                                           const Target& t, int rounds) {
    check_can_measure(t);
    std::vector<Record> records = blank_records(w, configs, t);
    if (configs.empty()) return records;
    json request = request_for(w, t);
    request["configs"] = json::array();
    for (const Config& c : configs)
        request["configs"].push_back(c.to_json());
    request["rounds"] = std::max(1, rounds);

    // One child holds every kernel. Its own record collects how it ended; a child that dies
    // takes every config with it.
    Child c;
    Record child_record;
    struct Reap {
        ProcessRunner* runner;
        Child& c;
        ~Reap() {
            runner->reap(c, true);
            close_fd(c.in_fd), close_fd(c.out_fd), close_fd(c.err_fd);
        }
    } reap_on_exit{this, c};
    const double n = static_cast<double>(configs.size());
    auto set_deadline = [&](double seconds) {
        c.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(seconds));
    };
    spawn(c, request.dump(), child_record);
    set_deadline(o_.compile_timeout_s * n);
    json answer;
    while (c.state != Child::State::ended) {
        auto wait_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - Clock::now());
        if (wait_ms.count() < 0) {
            bool compiling = c.state == Child::State::compiling;
            reap(c, true);
            finish(c, child_record, RecordStatus::timeout,
                   fmt::format("comparison child gave no answer within {:.0f} s ({})",
                               compiling
                                   ? o_.compile_timeout_s * n
                                   : (o_.run_timeout_s + 2 * o_.measure.min_time_s) * n * rounds +
                                         std::max(0.0, o_.measure.quiet_wait_s) * n,
                               compiling ? "compile" : "run"));
            break;
        }
        pollfd fds[2] = {{c.out_fd, POLLIN, 0}, {c.err_fd, POLLIN, 0}};
        int timeout = static_cast<int>(std::min<int64_t>(wait_ms.count() + 1, 1000));
        if (::poll(fds, 2, timeout) < 0 && errno != EINTR)
            throw Error("runner", std::string("poll: ") + strerror(errno));
        if (c.err_fd >= 0 && fds[1].revents && !drain(c.err_fd, c.err_buf, kStderrTail))
            close_fd(c.err_fd);
        if (!fds[0].revents) continue;
        bool open = drain(c.out_fd, c.out_buf, 0);
        for (size_t nl;
             c.state != Child::State::ended && (nl = c.out_buf.find('\n')) != std::string::npos;) {
            json j = json::parse(c.out_buf.substr(0, nl), nullptr, false);
            c.out_buf.erase(0, nl + 1);
            if (j.is_discarded() || !j.is_object()) continue;
            std::string phase = j.value("phase", "");
            if (phase == "compiled" && c.state == Child::State::compiling) {
                child_record.space_version = j.value("space_version", 0);
                c.state = Child::State::measuring;
                const MeasureOptions& m = o_.measure;
                if (m.quiet_wait_s > 0) wait_for_quiet(m.max_other_load, m.quiet_wait_s);
                set_deadline((o_.run_timeout_s + 2 * m.min_time_s) * n * rounds +
                             std::max(0.0, m.quiet_wait_s) * n);
                write_all(c.in_fd, "go\n");
            } else if (phase == "done") {
                answer = j;
                reap(c, false);
                finish(c, child_record, parse_record_status(j.value("status", "runtime_error")),
                       j.value("error", ""));
            }
        }
        if (!open && c.state != Child::State::ended) ended_without_answer(c, child_record);
    }
    const json* results = answer.is_object() && answer.contains("results") &&
                                  answer["results"].is_array() &&
                                  answer["results"].size() == configs.size()
                              ? &answer["results"]
                              : nullptr;
    for (size_t i = 0; i < records.size(); ++i) {
        Record& r = records[i];
        r.time = utc_now();
        r.space_version = child_record.space_version ? child_record.space_version : r.space_version;
        if (!results) {
            r.status = child_record.ok() ? RecordStatus::runtime_error : child_record.status;
            r.error = child_record.error.empty() ? "no result for this config" : child_record.error;
            continue;
        }
        const json& j = (*results)[i];
        r.status = parse_record_status(j.value("status", "runtime_error"));
        r.error = j.value("error", "");
        if (r.ok()) {
            r.min_ms = j.value("min_ms", 0.0);
            r.median_ms = j.value("median_ms", 0.0);
            r.repeats = j.value("repeats", 0);
            r.error = load_note(j.value("other_load", 0.0), o_.measure);
        }
    }
    return records;
}

}  // namespace

std::unique_ptr<Runner> make_process_runner(const RunnerOptions& options) {
    return std::make_unique<ProcessRunner>(options);
}

namespace {

// measure_one_main() for a request with "configs": one "compiled" line once every config is
// compiled (or failed to), then after "go" one "done" line with a result per config.
int compare_main(const json& request, const MeasureOptions& m, std::istream& in,
                 std::ostream& out) {
    auto start = Clock::now();
    Workload w;
    Target t;
    int space_version = 0;
    try {
        t = parse_target(request["target"].get<std::string>());
        w = Workload::from_json(request["workload"]);
        space_version = find_space(w.op).space(w, t).version;
        if (!request["configs"].is_array() || request["configs"].empty())
            throw Error("configs", "expected a non-empty array of configs");
    } catch (const std::exception& e) {
        emit(out, done("compile_error", e.what()));
        return 0;
    }
    const json& configs = request["configs"];
    std::vector<std::unique_ptr<Kernel>> kernels(configs.size());
    std::vector<json> results(configs.size());
    for (size_t i = 0; i < configs.size(); ++i) {
        try {
            kernels[i] = compile_kernel(w, Config::from_json(configs[i]), t);
        } catch (const std::exception& e) {
            results[i] = done("compile_error", e.what());
        }
    }
    emit(out, {{"phase", "compiled"},
               {"compile_seconds", seconds_since(start)},
               {"space_version", space_version}});
    std::string line;
    if (!std::getline(in, line) || line != "go") return 3;
    int rounds = std::max(1, request.value("rounds", 5));
    emit(out, compare_configs(w, kernels, results, m, rounds));
    return 0;
}

}  // namespace

int measure_one_main(std::istream& in, std::ostream& out) {
    std::string line;
    if (!std::getline(in, line)) {
        emit(out, done("compile_error", "no request on stdin"));
        return 2;
    }
    json request;
    MeasureOptions m;
    try {
        request = json::parse(line);
        if (!request.is_object() || !request.contains("workload") ||
            !(request.contains("config") || request.contains("configs")) ||
            !request.contains("target"))
            throw Error("request", "needs workload, config (or configs) and target");
        if (request.contains("measure")) m = measure_from_json(request["measure"]);
    } catch (const std::exception& e) {
        emit(out, done("compile_error", std::string("bad request: ") + e.what()));
        return 2;
    }
    // Halide's thread pool reads HL_NUM_THREADS when it starts, at the first parallel run.
    if (m.threads > 0) setenv("HL_NUM_THREADS", std::to_string(m.threads).c_str(), 1);

    if (request.contains("configs")) return compare_main(request, m, in, out);

    auto start = Clock::now();
    std::unique_ptr<Kernel> kernel;
    Workload w;
    int space_version = 0;
    try {
        Target t = parse_target(request["target"].get<std::string>());
        w = Workload::from_json(request["workload"]);
        Config config = Config::from_json(request["config"]);
        space_version = find_space(w.op).space(w, t).version;
        kernel = compile_kernel(w, config, t);
    } catch (const std::exception& e) {
        json d = done("compile_error", e.what());
        d["compile_seconds"] = seconds_since(start);
        d["space_version"] = space_version;
        emit(out, d);
        return 0;
    }
    emit(out, {{"phase", "compiled"},
               {"compile_seconds", seconds_since(start)},
               {"space_version", space_version}});

    if (!std::getline(in, line) || line != "go") return 3;  // the parent gave up on us

    try {
        emit(out, verify_and_time(w, *kernel, m));
    } catch (const std::exception& e) {
        emit(out, done("runtime_error", e.what()));
    }
    return 0;
}

}  // namespace kiln
