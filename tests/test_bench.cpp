// The layer benchmark (bench/kiln_bench_layers) end to end on two tiny layers: it tunes, times
// kiln against the peers built in, checks every output, and prints the table and the goals.
// Skipped when the benchmark is not built (KILN_BUILD_BENCH=OFF).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db/database.h"
#include "test_util.h"

namespace kiln {
namespace {

#ifdef KILN_BENCH_BINARY
std::filesystem::path temp_dir() {
    auto dir =
        std::filesystem::temp_directory_path() / ("kiln-test-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    return dir;
}

testing::Result run_bench(const std::vector<std::string>& args,
                          const std::string& binary = KILN_BENCH_BINARY) {
    std::string cmd = binary;
    for (const auto& a : args)
        cmd += " '" + a + "'";
    cmd += " 2>&1";
    testing::Result r;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
        r.out.append(buf, n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TEST(Bench, TinyLayersTunedAndComparedWithThePeers) {
    auto dir = temp_dir();
    const auto layers = dir / "layers.json";
    std::ofstream(layers) << R"({"layers": [
  {"id": "tiny_3x3", "op": "conv2d", "n": 1, "c": 8, "h": 10, "w": 10, "k": 16, "r": 3, "s": 3,
   "stride": 1, "pad": 1, "dilation": 1, "groups": 1, "dtype": "f32", "model": ""},
  {"id": "tiny_dw", "op": "depthwise_conv2d", "n": 1, "c": 16, "h": 9, "w": 9, "k": 16, "r": 3,
   "s": 3, "stride": 2, "pad": 1, "dilation": 1, "groups": 16, "dtype": "f32", "model": ""},
  {"id": "tiny_gemm", "op": "dense", "m": 8, "n": 32, "k": 16, "dtype": "f32", "model": ""}]})";
    const auto json_path = dir / "out.json";
    const auto doc = dir / "PERFORMANCE.md";
    std::ofstream(doc) << "# by hand\n\nkept\n";
    auto r = run_bench({"--layers", layers.string(), "--rounds", "2", "--min-time", "0.01",
                        "--peers", "oneDNN,OpenBLAS", "--tune-trials", "2", "--quiet-wait", "0",
                        "--tune-db", (dir / "t.db").string(), "--json", json_path.string(),
                        "--write-doc", doc.string()});
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* want : {"| tiny_3x3 | conv2d |", "| tiny_dw | depthwise_conv2d |",
                             "| tiny_gemm | dense |", "### Goals", "3x3 stride-1 layers",
                             "depthwise layers", "dense >= 1.0x the better of OpenBLAS"})
        EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from:\n" << r.out;

    nlohmann::json j = nlohmann::json::parse(std::ifstream(json_path));
    ASSERT_EQ(j["layers"].size(), 3u);
    for (const auto& l : j["layers"]) {
        SCOPED_TRACE(l["id"].get<std::string>());
        EXPECT_TRUE(l["kiln"]["ran"].get<bool>());
        EXPECT_TRUE(l["kiln"]["correct"].get<bool>());
        EXPECT_TRUE(l["kiln_tuned"]["ran"].get<bool>());
        EXPECT_EQ(l["tune"]["measured"].get<int>(), 2);
        EXPECT_EQ(l["kiln"]["seconds"].size(), 2u);
        for (const auto& p : l["peers"])
            if (p["ran"].get<bool>()) EXPECT_TRUE(p["correct"].get<bool>()) << p["name"];
    }
    std::ifstream in(doc);
    std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(page.rfind("# by hand\n\nkept\n", 0), 0u) << "the hand-written text is kept";
    EXPECT_NE(page.find("<!-- bench_layers:begin -->"), std::string::npos);
    EXPECT_NE(page.find("### Goals"), std::string::npos);
    std::filesystem::remove_all(dir);
}

#ifdef KILN_BENCH_SEARCH_BINARY
// The search benchmark on two tiny layers: a random search per layer, then guided searches
// from scratch and with transfer, and the table with its medians and goals.
TEST(Bench, SearchBenchmarkRunsEveryStrategy) {
    auto dir = temp_dir();
    const auto layers = dir / "layers.json";
    std::ofstream(layers) << R"({"layers": [
  {"id": "a", "op": "conv2d", "n": 1, "c": 8, "h": 8, "w": 8, "k": 16, "r": 1, "s": 1,
   "stride": 1, "pad": 0, "dilation": 1, "groups": 1, "dtype": "f32", "model": ""},
  {"id": "b", "op": "conv2d", "n": 1, "c": 16, "h": 6, "w": 6, "k": 8, "r": 1, "s": 1,
   "stride": 1, "pad": 0, "dilation": 1, "groups": 1, "dtype": "f32", "model": ""}]})";
    const std::vector<std::string> args = {"--layers",
                                           layers.string(),
                                           "--random-trials",
                                           "8",
                                           "--guided-trials",
                                           "8",
                                           "--batch",
                                           "4",
                                           "--min-time",
                                           "0.01",
                                           "--quiet-wait",
                                           "0",
                                           "--no-doc",
                                           "--dir",
                                           (dir / "dbs").string()};
    auto r = run_bench(args, KILN_BENCH_SEARCH_BINARY);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* want : {"| a | ", "| b | ", "Medians over 2 layers", "transfer <= 48"})
        EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from:\n" << r.out;
    // The random search's records are kept: a second run measures nothing new for them.
    auto db = Database::open((dir / "dbs" / "random.db").string());
    EXPECT_EQ(db->records({}).size(), 16u);
    // Finished layers are kept too: a rerun takes both from results.jsonl and prints the same
    // table without searching again.
    auto table = [](const std::string& out) { return out.substr(out.find("| layer")); };
    auto again = run_bench(args, KILN_BENCH_SEARCH_BINARY);
    ASSERT_EQ(again.code, 0) << again.out;
    EXPECT_NE(again.out.find("a: done in an earlier run"), std::string::npos) << again.out;
    EXPECT_NE(again.out.find("b: done in an earlier run"), std::string::npos) << again.out;
    EXPECT_EQ(again.out.find("trials to 95%"), std::string::npos) << again.out;
    ASSERT_NE(r.out.find("| layer"), std::string::npos) << r.out;
    EXPECT_EQ(table(again.out), table(r.out));
#ifdef KILN_BENCH_REPLAY_BINARY
    // The replay reads the same directory: both layers, both rules, and the summary line.
    auto replay = run_bench({"--dir", (dir / "dbs").string(), "--layers", layers.string(),
                             "--seeds", "2", "--budget", "8", "--batch", "4"},
                            KILN_BENCH_REPLAY_BINARY);
    ASSERT_EQ(replay.code, 0) << replay.out;
    for (const char* want : {"| a | 8 |", "| b | 8 |", "Mean trials per layer over 2 seeds"})
        EXPECT_NE(replay.out.find(want), std::string::npos) << want << " missing from:\n"
                                                            << replay.out;
    auto missing =
        run_bench({"--dir", (dir / "dbs").string(), "--results", (dir / "none.jsonl").string()},
                  KILN_BENCH_REPLAY_BINARY);
    EXPECT_EQ(missing.code, 2) << missing.out;
    EXPECT_NE(missing.out.find("none.jsonl: cannot read"), std::string::npos) << missing.out;
#endif
    std::filesystem::remove_all(dir);
}
#endif

TEST(Bench, BadLayersFileIsNamed) {
    auto dir = temp_dir();
    const auto layers = dir / "bad.json";
    std::ofstream(layers) << R"({"layers": [{"id": "x", "op": "conv2d", "c": 3}]})";
    auto r = run_bench({"--layers", layers.string(), "--no-doc"});
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("bad.json"), std::string::npos) << r.out;
    std::filesystem::remove_all(dir);
}
#else
TEST(Bench, NotBuilt) {
    GTEST_SKIP() << "kiln_bench_layers is not built (KILN_BUILD_BENCH=OFF)";
}
#endif

}  // namespace
}  // namespace kiln
