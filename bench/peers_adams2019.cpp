// kiln/bench/peers_adams2019.cpp — the Adams2019 peer: the bench's side (Adams2019Peer, which
// starts a worker per layer and drives it) and the worker's side (adams2019_worker_main).
//
// The worker builds the same Funcs kiln compiles — conv2d's direct algorithm
// (define_direct_conv2d with block_k = the target's f32 lanes and block_c = the largest divisor
// of the input channels up to 16) or dense's panel GEMM (dense_algorithm with nr = the lanes and
// one reduction block) — leaves them unscheduled, sets estimates on every input and output, and
// calls Pipeline::auto_schedule("Adams2019", ...) with MachineParams(threads, L3 bytes, 40). The
// weight packing pipeline gets a plain parallel schedule and runs once, outside the timing, as
// kiln's does. The result is JIT-compiled through make_halide_kernel(), like kiln's kernels.
//
// Protocol, worker stdin: one JSON line {"layer": <the layers.json entry>}, then the input and
// the weight as raw floats. Worker stdout: one JSON line, {"ok": true, "autoschedule_s",
// "compile_s", "schedule", "detail"} or {"ok": false, "error"}; then one reply per command line:
// "run" -> "done", "time S" -> seconds per call (measure.h's protocol with min time S),
// "output" -> the output as raw floats. Anything else the worker prints (Halide, the
// autoscheduler) goes to its stderr, which the bench keeps in a temporary file and quotes when
// the worker fails.
#include "bench/peers_adams2019.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "Halide.h"
#include "bench/kiln_run.h"
#include "bench/layer.h"
#include "bench/measure.h"
#include "bench/peer.h"
#include "core/error.h"
#include "generators/conv2d.h"
#include "generators/conv2d_direct.h"
#include "generators/dense_algorithm.h"
#include "schedules/halide_kernel.h"
#include "targets/target.h"

namespace kiln::bench {

namespace {

Adams2019Options& options() {
    static Adams2019Options o;
    return o;
}

// Replies to "run", "time" and "output" come within this many seconds or the worker is taken
// for hung; the slowest layer of the set runs in well under a second per call.
constexpr double kReplySeconds = 120.0;

// ---- the worker -------------------------------------------------------------------------------

struct Scheduled {
    HalidePipelines pipelines;
    std::string detail;
};

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

Scheduled conv2d_funcs(const Workload& w, const Target& t) {
    const ConvShape s = ConvShape::of(w);
    const int lanes = t.f32_lanes();
    if (s.groups > 1 && s.k_per_group() % lanes != 0)
        throw Error("groups", fmt::format("output channels per group ({}) are not a multiple of "
                                          "the {} lanes the algorithm blocks by",
                                          s.k_per_group(), lanes));
    int block_c = 1;
    for (int v = 1; v <= 16; ++v)
        if (s.c_per_group() % v == 0) block_c = v;
    Conv2dFuncs f = define_direct_conv2d(w, lanes, block_c);
    const int n = int(s.n), c = int(s.c), k = int(s.k);
    f.input.set_estimates({{0, int(s.w)}, {0, int(s.h)}, {0, c}, {0, n}});
    const std::vector<int> packed = {lanes, int(s.c_per_group()), int(s.s), int(s.r),
                                     int(ceil_div(s.k, lanes))};
    Halide::Region packed_region;
    for (int e : packed)
        packed_region.push_back({0, e});
    f.packed.set_estimates(packed_region);
    f.output.set_estimates({{0, int(s.ow)}, {0, int(s.oh)}, {0, k}, {0, n}});
    f.pack.parallel(f.pack.args().back());

    Scheduled out;
    HalidePipelines& p = out.pipelines;
    p.main = Halide::Pipeline(f.output);
    p.main_args = {{f.input, 0}, {f.packed, -1}};
    p.pack = Halide::Pipeline(f.pack);
    p.pack_args = {{f.weight, 1}};
    p.packed_extents = packed;
    out.detail = fmt::format("direct conv2d, block_k={} block_c={}", lanes, block_c);
    return out;
}

Scheduled dense_funcs(const Workload& w, const Target& t) {
    const int nr = t.f32_lanes();
    // One reduction block: how to cut k is the autoscheduler's call.
    DenseFuncs d = dense_algorithm(w, nr, w.get("k"));
    const int m = int(w.get("m")), n = int(w.get("n")), k = int(w.get("k"));
    d.input.set_estimates({{0, k}, {0, m}});
    Halide::Region packed_region;
    for (int e : d.packed_extents)
        packed_region.push_back({0, e});
    d.packed.set_estimates(packed_region);
    d.gemm.out.set_estimates({{0, n}, {0, m}});
    d.pack.parallel(d.pack.args()[2]);

    Scheduled out;
    HalidePipelines& p = out.pipelines;
    p.main = Halide::Pipeline(d.gemm.out);
    p.main_args = {{d.input, 0}, {d.packed, -1}};
    p.pack = Halide::Pipeline(d.pack);
    p.pack_args = {{d.weight, 1}};
    p.packed_extents = d.packed_extents;
    // The same static shapes kiln's dense kernels declare (schedules/dense.cpp).
    const auto specs = w.inputs();
    set_dense_shape(d.input, halide_extents(specs[0]));
    set_dense_shape(d.packed, p.packed_extents);
    set_dense_shape(d.weight, halide_extents(specs[1]));
    set_dense_shape(d.gemm.out.output_buffer(), halide_extents(w.output()));
    set_dense_shape(d.pack.output_buffer(), p.packed_extents);
    out.detail = fmt::format("panel GEMM, nr={}", nr);
    return out;
}

bool write_all(int fd, const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
        ssize_t n = ::write(fd, p, bytes);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        bytes -= size_t(n);
    }
    return true;
}

bool write_line(int fd, const std::string& line) {
    return write_all(fd, (line + "\n").data(), line.size() + 1);
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int adams2019_worker_main() {
    keep_heap_memory();
    // Protocol replies get their own descriptor; whatever Halide prints goes to stderr.
    const int reply = dup(STDOUT_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO);

    std::string header;
    if (!std::getline(std::cin, header)) return 2;
    std::unique_ptr<LayerRun> run;
    std::vector<float> input, weight;
    int64_t output_numel = 0;
    try {
        const Layer l = parse_layer(nlohmann::json::parse(header).at("layer"), "request");
        input.resize(size_t(l.input_numel()));
        weight.resize(size_t(l.weight_numel()));
        output_numel = l.output_numel();
        std::cin.read(reinterpret_cast<char*>(input.data()), std::streamsize(input.size() * 4));
        std::cin.read(reinterpret_cast<char*>(weight.data()), std::streamsize(weight.size() * 4));
        if (!std::cin) throw Error("request", "input or weight data cut short");

        const Workload w = l.to_workload();
        if (w.inputs().size() != 2) throw Error("epilogue", "bias and residual are not supported");
        const Target t = host_target();
        Scheduled s;
        if (w.op == "conv2d")
            s = conv2d_funcs(w, t);
        else if (w.op == "dense")
            s = dense_funcs(w, t);
        else
            throw Error("op", w.op + " is not set up for Adams2019");

        const char* threads_env = std::getenv("HL_NUM_THREADS");
        const int threads = threads_env ? std::atoi(threads_env) : int(t.fingerprint.cores);
        const int64_t llc = t.fingerprint.l3_bytes > 0 ? t.fingerprint.l3_bytes : (32 << 20);
        Halide::load_plugin(KILN_ADAMS2019_PLUGIN);
        const Halide::Target ht = halide_target(t).without_feature(Halide::Target::JIT);
        const auto t0 = std::chrono::steady_clock::now();
        const Halide::AutoSchedulerResults chosen = s.pipelines.main.auto_schedule(
            "Adams2019", ht, Halide::MachineParams(threads, uint64_t(llc), 40));
        const double autoschedule_s = since(t0);

        std::unique_ptr<Kernel> kernel = make_halide_kernel(w, std::move(s.pipelines), t);
        const double compile_s = kernel->compile_seconds;
        run = make_kernel_run(std::move(kernel),
                              std::vector<const float*>{input.data(), weight.data()}, output_numel);
        nlohmann::json ok = {{"ok", true},
                             {"autoschedule_s", autoschedule_s},
                             {"compile_s", compile_s},
                             {"schedule", chosen.schedule_source},
                             {"detail", fmt::format("Adams2019 on {}, MachineParams({}, {}, 40)",
                                                    s.detail, threads, llc)}};
        if (!write_line(reply, ok.dump())) return 3;
    } catch (const std::exception& e) {
        write_line(reply, nlohmann::json{{"ok", false}, {"error", e.what()}}.dump());
        return 1;
    }

    std::vector<float> out(static_cast<size_t>(output_numel));
    for (std::string cmd; std::getline(std::cin, cmd);) {
        try {
            if (cmd == "run") {
                run->run();
                write_line(reply, "done");
            } else if (cmd.rfind("time ", 0) == 0) {
                const double seconds = run->measure(std::stod(cmd.substr(5)));
                write_line(reply, fmt::format("{:.9e}", seconds));
            } else if (cmd == "output") {
                run->read_output(out.data());
                write_all(reply, out.data(), out.size() * sizeof(float));
            } else {
                write_line(reply, "error unknown command '" + cmd + "'");
            }
        } catch (const std::exception& e) {
            write_line(reply, std::string("error ") + e.what());
        }
    }
    return 0;
}

// ---- the bench's side -------------------------------------------------------------------------

namespace {

// A worker process and the pipes to it. Every read has a deadline; a worker past it is killed.
class Worker {
  public:
    explicit Worker(uint64_t memory_bytes) {
        char log[] = "/tmp/kiln-adams2019-XXXXXX";
        const int log_fd = mkstemp(log);
        if (log_fd < 0) throw Error("worker", "cannot create a log file");
        log_ = log;
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
            throw Error("worker", std::string("pipe: ") + std::strerror(errno));
        pid_ = fork();
        if (pid_ < 0) throw Error("worker", std::string("fork: ") + std::strerror(errno));
        if (pid_ == 0) {
            // Only async-signal-safe calls until exec: the bench has threads.
            dup2(in[0], STDIN_FILENO);
            dup2(out[1], STDOUT_FILENO);
            dup2(log_fd, STDERR_FILENO);
            const rlimit limit{memory_bytes, memory_bytes};
            setrlimit(RLIMIT_AS, &limit);
            char self[] = "/proc/self/exe";
            char flag[64];
            std::snprintf(flag, sizeof flag, "%s", kAdams2019WorkerFlag);
            char* argv[] = {self, flag, nullptr};
            execv(self, argv);
            _exit(127);
        }
        ::close(log_fd);
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = out[0];
    }

    ~Worker() {
        if (to_ >= 0) ::close(to_);
        // Closing stdin ends the worker's command loop; one that does not exit is killed.
        if (pid_ > 0 && !wait_exit(5.0)) {
            kill(pid_, SIGKILL);
            wait_exit(5.0);
        }
        if (from_ >= 0) ::close(from_);
        if (!log_.empty()) ::unlink(log_.c_str());
    }

    void send(const void* data, size_t bytes) {
        if (!write_all(to_, data, bytes)) fail("the worker stopped reading");
    }
    void send_line(const std::string& line) { send((line + "\n").data(), line.size() + 1); }

    std::string read_line(double timeout_s) {
        std::string line;
        char ch = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (;;) {
            read_exact(&ch, 1, timeout_s - since(t0));
            if (ch == '\n') return line;
            line += ch;
        }
    }

    void read_exact(void* data, size_t bytes, double timeout_s) {
        char* p = static_cast<char*>(data);
        const auto t0 = std::chrono::steady_clock::now();
        while (bytes > 0) {
            const double left = timeout_s - since(t0);
            if (left <= 0) timed_out(timeout_s);
            pollfd pfd{from_, POLLIN, 0};
            const int ready = poll(&pfd, 1, int(left * 1000) + 1);
            if (ready < 0 && errno == EINTR) continue;
            if (ready == 0) timed_out(timeout_s);
            const ssize_t n = ::read(from_, p, bytes);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("the worker died");
            p += n;
            bytes -= size_t(n);
        }
    }

    // Throws with what is known: the worker's exit status and the end of its stderr.
    [[noreturn]] void fail(const std::string& what) {
        std::string status;
        if (pid_ > 0 && wait_exit(2.0)) status = exit_text_;
        std::string msg = what + (status.empty() ? "" : " (" + status + ")");
        const std::string tail = log_tail();
        if (!tail.empty()) msg += ": " + tail;
        throw Error("worker", msg);
    }

  private:
    [[noreturn]] void timed_out(double seconds) {
        kill(pid_, SIGKILL);
        wait_exit(5.0);
        throw Error("worker", fmt::format("over budget: no answer within {:.0f} s", seconds));
    }

    bool wait_exit(double timeout_s) {
        const auto t0 = std::chrono::steady_clock::now();
        for (;;) {
            int st = 0;
            const pid_t r = waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                if (WIFSIGNALED(st))
                    exit_text_ = fmt::format("killed by signal {}: {}", WTERMSIG(st),
                                             strsignal(WTERMSIG(st)));
                else
                    exit_text_ = fmt::format("exit status {}", WEXITSTATUS(st));
                pid_ = -1;
                return true;
            }
            if (r < 0 || since(t0) > timeout_s) return r < 0;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    // The last non-empty line the worker wrote to stderr.
    std::string log_tail() const {
        std::ifstream in(log_);
        std::string line, last;
        while (std::getline(in, line))
            if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
        return last.size() > 300 ? last.substr(0, 300) + "..." : last;
    }

    pid_t pid_ = -1;
    int to_ = -1, from_ = -1;
    std::string log_;
    std::string exit_text_;
};

class Adams2019Run final : public LayerRun {
  public:
    Adams2019Run(std::unique_ptr<Worker> worker, int64_t output_numel)
        : worker_(std::move(worker)), output_numel_(output_numel) {}

    void run() override {
        worker_->send_line("run");
        expect_reply("done");
    }
    double measure(double min_time) override {
        worker_->send_line(fmt::format("time {}", min_time));
        const std::string r = worker_->read_line(kReplySeconds + 10 * min_time);
        if (r.rfind("error", 0) == 0) worker_->fail(r);
        return std::stod(r);
    }
    void read_output(float* out) override {
        worker_->send_line("output");
        worker_->read_exact(out, size_t(output_numel_) * sizeof(float), kReplySeconds);
    }

  private:
    void expect_reply(const std::string& want) {
        const std::string r = worker_->read_line(kReplySeconds);
        if (r != want) worker_->fail(r);
    }

    std::unique_ptr<Worker> worker_;
    int64_t output_numel_;
};

uint64_t memory_limit_bytes() {
    if (options().memory_gib > 0) return uint64_t(options().memory_gib * double(1ull << 30));
    return uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE)) / 2;
}

class Adams2019Peer final : public Peer {
  public:
    std::string name() const override { return "Adams2019"; }
    int column() const override { return 3; }
    std::string version() const override {
        // The options Halide 14's Adams2019 reads from the environment; the worker inherits
        // the bench's, so a person can change them per run.
        std::string set;
        for (const char* name :
             {"HL_BEAM_SIZE", "HL_NUM_PASSES", "HL_RANDOM_DROPOUT", "HL_SEED", "HL_WEIGHTS_DIR",
              "HL_NO_SUBTILING", "HL_AUTOSCHEDULE_MEMORY_LIMIT", "HL_DISABLE_MEMOIZED_FEATURES",
              "HL_DISABLE_MEMOIZED_BLOCKS"})
            if (const char* v = std::getenv(name)) set += fmt::format(", {}={}", name, v);
        return fmt::format("Halide {}, {}, {}", KILN_HALIDE_VERSION, KILN_ADAMS2019_PLUGIN,
                           set.empty() ? "its own defaults (beam search, built-in weights)"
                                       : "options: " + set.substr(2));
    }
    std::string setup_label() const override { return "autoschedule s"; }
    void set_threads(int) const override {}  // the worker reads HL_NUM_THREADS, set by the bench

    std::unique_ptr<LayerRun> prepare(const Layer& l, const float* input, const float* weight,
                                      std::string* why) const override {
        if (l.op != "conv2d" && l.op != "dense") {
            *why = "Adams2019: conv2d and dense only";
            return nullptr;
        }
        // A worker that dies while we write must not take the bench with it.
        signal(SIGPIPE, SIG_IGN);
        auto worker = std::make_unique<Worker>(memory_limit_bytes());
        const auto t0 = std::chrono::steady_clock::now();
        worker->send_line(nlohmann::json{{"layer", l.fields}}.dump());
        worker->send(input, size_t(l.input_numel()) * sizeof(float));
        worker->send(weight, size_t(l.weight_numel()) * sizeof(float));
        const std::string line = worker->read_line(options().timeout_s);
        nlohmann::json reply;
        try {
            reply = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
            worker->fail("unreadable reply '" + line + "'");
        }
        if (!reply.value("ok", false)) throw Error("worker", reply.value("error", line));
        auto r = std::make_unique<Adams2019Run>(std::move(worker), l.output_numel());
        r->setup_seconds = reply.at("autoschedule_s").get<double>();
        r->schedule = reply.value("schedule", std::string());
        r->detail = fmt::format("{}; autoschedule {:.1f} s, JIT compile {:.1f} s, worker {:.1f} s",
                                reply.value("detail", std::string()), r->setup_seconds,
                                reply.at("compile_s").get<double>(), since(t0));
        return r;
    }
};

KILN_REGISTER_PEER(Adams2019Peer);

}  // namespace

void set_adams2019_options(const Adams2019Options& o) {
    options() = o;
}

}  // namespace kiln::bench
