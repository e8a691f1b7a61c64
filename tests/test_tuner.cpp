// The tuning loop: failures become records, budgets hold, a killed tuner loses only the batch in
// flight, and a rerun measures nothing twice.
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/op.h"
#include "db/database.h"
#include "schedules/kernel.h"
#include "schedules/space.h"
#include "test_util.h"
#include "tuner/model_eval.h"
#include "tuner/tuner.h"

using namespace kiln;

namespace {

std::string temp_db(const std::string& name) {
    auto dir =
        std::filesystem::temp_directory_path() / ("kiln-test-tuner-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    auto path = dir / name;
    std::filesystem::remove(path);
    return path.string();
}

RunnerOptions runner_options() {
    RunnerOptions o;
    o.measure_binary = KILN_BINARY;
    o.plugins = {KILN_TEST_PLUGIN};
    o.parallel_builds = 2;
    o.run_timeout_s = 2;
    o.measure.min_time_s = 0.01;
    return o;
}

// Loads the test ops into this process too: the tuner builds the space of test_faulty here.
void load_test_ops() {
    static bool loaded = dlopen(KILN_TEST_PLUGIN, RTLD_NOW | RTLD_GLOBAL) != nullptr;
    ASSERT_TRUE(loaded);
}

}  // namespace

TEST(Tuner, FailuresAreRecordsAndTheBudgetIsSpent) {
    load_test_ops();
    auto db = Database::open(temp_db("faulty.db"));
    auto runner = make_process_runner(runner_options());
    Workload w = Workload::from_shape("test_faulty", find_op("test_faulty").example());
    TuneOptions o;
    o.trials = 20;  // more than the space has: it runs out first
    o.batch_size = 4;
    o.strategy = "random";
    TuneResult r = tune(w, host_target(), *db, *runner, o);
    EXPECT_EQ(r.stop_reason, "space exhausted");
    std::map<std::string, std::string> status_of;
    for (const Record& rec : db->records({}))
        status_of[rec.config.s("behaviour")] = to_string(rec.status);
    EXPECT_EQ(status_of["ok"], "ok");
    EXPECT_EQ(status_of["slow"], "ok");
    EXPECT_EQ(status_of["segfault"], "runtime_error");
    EXPECT_EQ(status_of["abort"], "runtime_error");
    EXPECT_EQ(status_of["hang"], "timeout");
    EXPECT_EQ(status_of["wrong"], "wrong_result");
    EXPECT_EQ(status_of["compile_error"], "compile_error");
    EXPECT_EQ(r.measured, static_cast<int>(status_of.size()));
    ASSERT_TRUE(r.best);
    EXPECT_EQ(r.best->config.s("behaviour"), "ok");  // faster than "slow"
}

// A config measured at a lucky moment (here: a record that claims the 50 ms "slow" kernel took
// a nanosecond) wins the search, but not the final side-by-side comparison.
TEST(Tuner, FinalComparisonCorrectsALuckyMeasurement) {
    load_test_ops();
    auto db = Database::open(temp_db("confirm.db"));
    auto runner = make_process_runner(runner_options());
    Workload w = Workload::from_shape("test_faulty", find_op("test_faulty").example());
    Config ok, slow;
    ok.set("behaviour", std::string("ok"));
    slow.set("behaviour", std::string("slow"));
    std::vector<Record> first = runner->measure(w, {ok, slow}, host_target());
    ASSERT_TRUE(first[0].ok() && first[1].ok());
    first[1].median_ms = first[1].min_ms = 1e-6;
    db->add(first);

    TuneOptions o;
    o.trials = 1;
    o.strategy = "random";
    o.confirm_top = 0;
    TuneResult unconfirmed = tune(w, host_target(), *db, *runner, o);
    ASSERT_TRUE(unconfirmed.best);
    EXPECT_EQ(unconfirmed.best->config.s("behaviour"), "slow");
    EXPECT_EQ(unconfirmed.confirmed, 0);

    o.confirm_top = 2;
    o.confirm_rounds = 2;
    TuneResult confirmed = tune(w, host_target(), *db, *runner, o);
    ASSERT_TRUE(confirmed.best);
    EXPECT_EQ(confirmed.best->config.s("behaviour"), "ok");
    EXPECT_GE(confirmed.confirmed, 2);
    auto best = db->best(w.key(), host_target().halide, host_target().fingerprint.id());
    ASSERT_TRUE(best);
    EXPECT_EQ(best->config.s("behaviour"), "ok");
    for (const Record& r : db->records({}))
        if (r.config == slow) EXPECT_GE(r.median_ms, 50) << "the slow record keeps its new time";
}

namespace {

// Times the final comparison's children by script: the first child's rounds of "ok" fall in a
// burst of interference, the second child's rounds of "slow" do.
class ScriptedComparisons final : public Runner {
  public:
    explicit ScriptedComparisons(std::unique_ptr<Runner> real) : real_(std::move(real)) {}
    std::vector<Record> measure(const Workload& w, const std::vector<Config>& configs,
                                const Target& t) override {
        return real_->measure(w, configs, t);
    }
    std::vector<Record> compare(const Workload& w, const std::vector<Config>& configs,
                                const Target& t, int) override {
        orders.push_back(configs);
        std::vector<Record> out = real_->measure(w, configs, t);
        const bool first = orders.size() == 1;
        for (Record& r : out) {
            const bool ok = r.config.s("behaviour") == "ok";
            r.median_ms = r.min_ms = first ? (ok ? 90.0 : 60.0) : (ok ? 1.0 : 500.0);
        }
        return out;
    }
    std::vector<std::vector<Config>> orders;

  private:
    std::unique_ptr<Runner> real_;
};

}  // namespace

TEST(Tuner, FinalComparisonKeepsEachConfigsBestChild) {
    load_test_ops();
    Workload w = Workload::from_shape("test_faulty", find_op("test_faulty").example());
    Config ok, slow;
    ok.set("behaviour", std::string("ok"));
    slow.set("behaviour", std::string("slow"));
    for (int children : {1, 2}) {
        SCOPED_TRACE("children " + std::to_string(children));
        auto db = Database::open(temp_db("children" + std::to_string(children) + ".db"));
        auto scripted =
            std::make_unique<ScriptedComparisons>(make_process_runner(runner_options()));
        ScriptedComparisons& runner = *scripted;
        db->add(runner.measure(w, {ok, slow}, host_target()));
        TuneOptions o;
        o.trials = 1;
        o.strategy = "random";
        o.confirm_top = 2;
        o.confirm_rounds = 1;
        o.confirm_children = children;
        TuneResult r = tune(w, host_target(), *db, runner, o);
        ASSERT_TRUE(r.best);
        ASSERT_GE(runner.orders.size(), size_t(children));
        if (children == 1) {
            // One child: the burst on "ok" decides.
            EXPECT_EQ(r.best->config.s("behaviour"), "slow");
            continue;
        }
        // Two children, the second in reverse order; each config keeps its better child.
        std::vector<Config> reversed(runner.orders[0].rbegin(), runner.orders[0].rend());
        EXPECT_EQ(runner.orders[1], reversed);
        EXPECT_EQ(r.best->config.s("behaviour"), "ok");
        EXPECT_DOUBLE_EQ(r.best->median_ms, 1.0);
        for (const Record& rec : db->records({}))
            if (rec.config == slow) EXPECT_DOUBLE_EQ(rec.median_ms, 60.0);
    }
}

// With records of another workload of the same op in the database, the cost model is trained
// before the first round (transfer), refit on every batch, its features are cached in the
// database, and it is saved where the result says.
TEST(Tuner, CostModelTransfersFromOtherWorkloads) {
    auto path = temp_db("model.db");
    auto db = Database::open(path);
    auto runner = make_process_runner(runner_options());
    TuneOptions o;
    o.trials = 6;
    o.batch_size = 3;
    o.confirm_top = 0;
    o.min_samples = 4;
    TuneResult first =
        tune(Workload::from_shape("dense", "m=8,n=32,k=16"), host_target(), *db, *runner, o);
    EXPECT_EQ(first.transfer_samples, 0);
    EXPECT_EQ(first.model_samples, 6) << "trained after the second batch";

    TuneResult second =
        tune(Workload::from_shape("dense", "m=16,n=48,k=16"), host_target(), *db, *runner, o);
    EXPECT_EQ(second.transfer_samples, 6);
    EXPECT_EQ(second.model_samples, 12);
    ASSERT_FALSE(second.model_path.empty());
    EXPECT_EQ(second.model_path, default_model_path(path, "dense", host_target()));
    CostModel saved = CostModel::load(second.model_path);
    EXPECT_EQ(saved.trained_samples(), 12);
    auto records = db->records({});
    for (const std::string& f : db->features(records, kFeatureVersion))
        EXPECT_FALSE(f.empty()) << "every record's features are cached";
}

// Leave one workload out on a database with three tuned dense workloads: every workload with
// enough records is held out once, the metrics are in range, and the command prints them.
TEST(Tuner, CostModelEvaluationHoldsOutEachWorkload) {
    auto path = temp_db("eval.db");
    {
        auto db = Database::open(path);
        auto runner = make_process_runner(runner_options());
        TuneOptions o;
        o.trials = 6;
        o.batch_size = 6;
        o.confirm_top = 0;
        o.model_path = "-";
        for (const char* shape : {"m=8,n=32,k=16", "m=16,n=48,k=16", "m=4,n=64,k=32"})
            tune(Workload::from_shape("dense", shape), host_target(), *db, *runner, o);
    }
    auto db = Database::open(path);
    EvalOptions e;
    e.op = "dense";
    e.target_halide = host_target().halide;
    e.fingerprint = host_target().fingerprint.id();
    e.min_records = 4;
    e.top_k = 2;
    EvalReport r = evaluate_model(*db, e);
    EXPECT_EQ(r.featurized, 18);
    ASSERT_EQ(r.workloads.size(), 3u);
    for (const WorkloadEval& w : r.workloads) {
        SCOPED_TRACE(w.workload_key);
        EXPECT_EQ(w.train_samples, 12);
        EXPECT_GE(w.kendall_tau, -1);
        EXPECT_LE(w.kendall_tau, 1);
        EXPECT_GE(w.top_k_recall, 0);
        EXPECT_LE(w.top_k_recall, 1);
        EXPECT_GT(w.best_predicted_speed, 0);
        EXPECT_LE(w.best_predicted_speed, 1);
    }

    auto out = kiln::testing::run_kiln({"cost-model", "eval", "--db", path, "--min-records", "4"});
    EXPECT_EQ(out.code, 0) << out.err;
    EXPECT_NE(out.out.find("dense: 18 records featurized, 3 workloads held out"), std::string::npos)
        << out.out;
    EXPECT_NE(out.out.find("median tau"), std::string::npos) << out.out;
    kiln::testing::expect_bad_input({"cost-model", "eval", "--db", path + ".missing"},
                                    "no tuning database at " + path + ".missing");
}

TEST(Tuner, RerunMeasuresNothingTwiceAndKeepsTheBest) {
    auto path = temp_db("resume.db");
    auto runner = make_process_runner(runner_options());
    Workload w = Workload::from_shape("dense", "m=4,n=24,k=16");
    TuneOptions o;
    o.trials = 6;
    o.batch_size = 3;
    // The final comparison times the leaders again and may raise their figures; what is checked
    // here is that a rerun starts from every committed record.
    o.confirm_top = 0;
    TuneResult first, second;
    {
        auto db = Database::open(path);
        first = tune(w, host_target(), *db, *runner, o);
    }
    {
        auto db = Database::open(path);
        second = tune(w, host_target(), *db, *runner, o);
        EXPECT_EQ(second.known, first.measured);
        auto records = db->records({});
        std::set<uint64_t> hashes;
        for (const Record& r : records)
            hashes.insert(r.config.hash());
        EXPECT_EQ(hashes.size(), records.size());
        EXPECT_EQ(static_cast<int>(records.size()), first.measured + second.measured);
    }
    ASSERT_TRUE(first.best && second.best);
    EXPECT_LE(second.best->median_ms, first.best->median_ms);
}

namespace {

// Answers at once with a time made from the config's hash: for tests of the loop itself.
class InstantRunner : public Runner {
  public:
    std::vector<Record> measure(const Workload& w, const std::vector<Config>& configs,
                                const Target& t) override {
        const int version = find_space(w.op).space(w, t).version;
        std::vector<Record> out;
        for (const Config& c : configs) {
            Record r;
            r.workload = w;
            r.target_name = t.name;
            r.target_halide = t.halide;
            r.fingerprint = t.fingerprint;
            r.config = c;
            r.space_version = version;
            r.median_ms = r.min_ms = 1.0 + static_cast<double>(c.hash() % 1000) / 1000.0;
            r.repeats = 1;
            r.kiln_version = "test";
            r.time = utc_now();
            out.push_back(std::move(r));
        }
        return out;
    }
    std::vector<Record> compare(const Workload& w, const std::vector<Config>& configs,
                                const Target& t, int) override {
        return measure(w, configs, t);
    }
};

}  // namespace

// A rerun of a long search continues with new configs: replaying the first run's draws made
// every proposal a known config, and 64 misses in a row ended the rerun as "space exhausted".
TEST(Tuner, RerunOfALongRandomSearchKeepsMeasuring) {
    auto path = temp_db("long-resume.db");
    InstantRunner runner;
    Workload w = Workload::from_shape("dense", "m=4,n=24,k=16");
    ASSERT_GT(find_space(w.op).space(w, host_target()).size(), 1e5);
    TuneOptions o;
    o.strategy = "random";
    o.cost_model = false;
    o.confirm_top = 0;
    o.batch_size = 8;
    o.trials = 200;
    auto db = Database::open(path);
    TuneResult first = tune(w, host_target(), *db, runner, o);
    ASSERT_EQ(first.measured, 200);
    o.trials = 40;
    TuneResult second = tune(w, host_target(), *db, runner, o);
    EXPECT_EQ(second.known, 200);
    EXPECT_EQ(second.measured, 40) << second.stop_reason;
    EXPECT_EQ(second.stop_reason, "trials");
    EXPECT_EQ(db->records({}).size(), 240u);
}

TEST(Tuner, StopFlagEndsAfterTheCurrentBatch) {
    auto db = Database::open(temp_db("stop.db"));
    auto runner = make_process_runner(runner_options());
    Workload w = Workload::from_shape("dense", "m=4,n=24,k=16");
    TuneOptions o;
    o.trials = 50;
    o.batch_size = 2;
    std::atomic<bool> stop{false};
    int batches = 0;
    TuneResult r = tune(
        w, host_target(), *db, *runner, o,
        [&](const TuneProgress& p) {
            if (p.trials_done > 0 && ++batches == 1) stop.store(true);
        },
        &stop);
    EXPECT_EQ(r.stop_reason, "interrupted");
    EXPECT_LE(r.measured, 2);
    EXPECT_EQ(static_cast<int>(db->records({}).size()), r.measured);
}

TEST(Tuner, EarlyStopAndTimeBudget) {
    auto db = Database::open(temp_db("early.db"));
    auto runner = make_process_runner(runner_options());
    Workload w = Workload::from_shape("dense", "m=3,n=20,k=8");
    TuneOptions o;
    o.trials = 0;
    o.time_budget_s = 3;
    o.batch_size = 2;
    auto start = std::chrono::steady_clock::now();
    TuneResult r = tune(w, host_target(), *db, *runner, o);
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.stop_reason, "time");
    EXPECT_LT(took, 3 + 30);  // the last batch finishes after the budget, bounded by timeouts
    o.time_budget_s = 0;
    o.trials = 40;
    o.early_stop = 2;
    TuneResult e = tune(w, host_target(), *db, *runner, o);
    EXPECT_TRUE(e.stop_reason == "early stop" || e.stop_reason == "space exhausted")
        << e.stop_reason;
}

// The command itself, killed with SIGKILL in the middle of tuning: the database opens cleanly,
// holds every committed batch, and the rerun measures none of them again.
TEST(Tuner, SigkillLosesOnlyTheBatchInFlight) {
    auto path = temp_db("killed.db");
    const std::string shape = "c=8,h=10,w=10,k=16,r=3,s=3,pad=1";
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(KILN_BINARY, KILN_BINARY, "tune-op", "conv2d", "--shape", shape.c_str(), "--db",
              path.c_str(), "--trials", "40", "--batch", "2", "--min-time", "0.01", "--quiet-wait",
              "0", static_cast<char*>(nullptr));
        _exit(127);
    }
    // Wait until at least two batches are committed, then kill mid-way through the next.
    int64_t committed = 0;
    for (int i = 0; i < 600 && committed < 4; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (std::filesystem::exists(path)) committed = Database::open(path)->records({}).size();
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_GE(committed, 4) << "the tuner committed nothing in 60 s";

    auto db = Database::open(path);  // opens cleanly
    auto before = db->records({});
    EXPECT_GE(before.size(), 4u);
    EXPECT_EQ(before.size() % 2, 0u) << "a batch was committed in part";

    auto runner = make_process_runner(runner_options());
    Workload w = Workload::from_shape("conv2d", shape);
    TuneOptions o;
    o.trials = 4;
    o.batch_size = 2;
    TuneResult r = tune(w, host_target(), *db, *runner, o);
    EXPECT_EQ(r.known, static_cast<int>(before.size()));
    auto after = db->records({});
    std::set<uint64_t> hashes;
    for (const Record& rec : after)
        hashes.insert(rec.config.hash());
    EXPECT_EQ(hashes.size(), after.size());
    EXPECT_EQ(after.size(), before.size() + r.measured);
}
