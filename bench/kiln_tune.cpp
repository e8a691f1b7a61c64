// kiln/bench/kiln_tune.cpp — tuning a layer with kiln's tuner for the bench (see kiln_tune.h).
#include "bench/kiln_tune.h"

#include <unistd.h>

#include <chrono>
#include <climits>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"
#include "core/op.h"
#include "db/database.h"
#include "schedules/kernel.h"
#include "targets/target.h"
#include "tuner/runner.h"
#include "tuner/tuner.h"

namespace kiln::bench {

std::string open_tune_database(const TuneBenchOptions& o) {
    std::string path = o.db;
    if (path.empty()) {
        char self[PATH_MAX];
        const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        const std::filesystem::path dir =
            n > 0 ? std::filesystem::path(std::string(self, size_t(n))).parent_path()
                  : std::filesystem::current_path();
        char stamp[32];
        const std::time_t t = std::time(nullptr);
        std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&t));
        path = (dir / fmt::format("kiln_bench_tune-{}-{}.db", stamp, getpid())).string();
    }
    Database::open(path);  // creates it, or fails now rather than after the first layer
    return path;
}

TunedKiln tune_layer(const Layer& l, const float* input, const float* weight, uint64_t seed,
                     const TuneBenchOptions& o) {
    TunedKiln out;
    TuneSummary& s = out.summary;
    Workload w;
    try {
        find_space(l.op);
        w = l.to_workload();
    } catch (const Error&) {
        s.why = fmt::format("kiln: no kernel for {} yet", l.op);
        return out;
    }
    const Target t = host_target();
    auto db = Database::open(o.db);

    RunnerOptions ro;
    ro.measure_binary = KILN_EXECUTABLE;
    ro.measure.min_time_s = o.min_time;
    ro.measure.quiet_wait_s = o.quiet_wait;
    ro.measure.threads = o.threads;
    auto runner = make_process_runner(ro);
    TuneOptions to;
    to.trials = o.trials;
    to.batch_size = std::min(to.batch_size, o.trials);

    const auto t0 = std::chrono::steady_clock::now();
    const TuneResult r = tune(w, t, *db, *runner, to);
    s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.measured = r.measured;
    s.failures = r.failures;
    s.known = r.known;
    s.stop_reason = r.stop_reason;
    s.per_minute = s.wall_seconds > 0 ? 60.0 * r.measured / s.wall_seconds : 0.0;

    // The database's best, which may come from an earlier run into the same file.
    const std::optional<Record> best = db->best(w.key(), t.halide, t.fingerprint.id());
    if (!best) {
        s.why = fmt::format("kiln tuned: none of {} candidates ran correctly", r.measured);
        return out;
    }
    s.best_ms = best->median_ms;
    out.kiln = prepare_kiln(l, input, weight, seed, &best->config);
    s.tuned = out.kiln.run != nullptr;
    if (!s.tuned) s.why = out.kiln.why;
    return out;
}

}  // namespace kiln::bench
