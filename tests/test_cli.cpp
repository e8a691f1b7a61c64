// The `kiln` command run as a user runs it: output, exit codes and one-line errors.
//
// Each case runs the built binary (KILN_BINARY) in a child process and captures stdout, stderr
// and the exit status separately, because the contract (docs/CLI.md) is about which stream
// carries what: bad input is exactly one `kiln: ...` line on stderr and exit code 2.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/op.h"
#include "core/workload.h"
#include "tests/test_util.h"

using namespace kiln::testing;

namespace {

std::string read_doc(const std::string& name) {
    std::ifstream f(std::string(KILN_SOURCE_DIR) + "/docs/" + name);
    std::stringstream text;
    text << f.rdbuf();
    return text.str();
}

// The bodies of the doc's fenced blocks opened with exactly `fence` ("```json").
std::vector<std::string> fenced_blocks(const std::string& doc, const std::string& fence) {
    std::vector<std::string> blocks;
    for (size_t pos = 0; (pos = doc.find("\n" + fence + "\n", pos)) != std::string::npos;) {
        size_t start = pos + fence.size() + 2;
        size_t end = doc.find("\n```", start);
        if (end == std::string::npos) break;
        blocks.push_back(doc.substr(start, end - start + 1));
        pos = end + 4;  // past the closing fence
    }
    return blocks;
}

constexpr const char* kTinyConv = "n=1,c=8,h=10,w=10,k=16,r=3,s=3,pad=1";

}  // namespace

TEST(Cli, HelpAndVersionExitZero) {
    Result help = run_kiln({"--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("ops"), std::string::npos);
    EXPECT_NE(help.out.find("bench-op"), std::string::npos);
    EXPECT_NE(help.out.find("Examples"), std::string::npos);
    EXPECT_EQ(help.err, "");
    Result sub_help = run_kiln({"bench-op", "--help"});
    EXPECT_EQ(sub_help.code, 0);
    EXPECT_NE(sub_help.out.find("--min-time"), std::string::npos);
    Result version = run_kiln({"--version"});
    EXPECT_EQ(version.code, 0);
    EXPECT_EQ(version.out.rfind("kiln ", 0), 0u) << version.out;
}

TEST(Cli, OpsListsEveryOpWithItsParams) {
    Result r = run_kiln({"ops"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("conv2d"), std::string::npos);
    for (const kiln::OpDef* def : kiln::all_ops()) {
        EXPECT_NE(r.out.find(def->name() + "  " + def->summary()), std::string::npos)
            << def->name();
        for (const auto& p : def->params())
            EXPECT_NE(r.out.find(p.help), std::string::npos);
    }
    Result one = run_kiln({"ops", "conv2d"});
    ASSERT_EQ(one.code, 0) << one.err;
    EXPECT_EQ(lines(one.out)[0].rfind("conv2d  ", 0), 0u);
}

TEST(Cli, OpsJsonMatchesTheRegistry) {
    Result r = run_kiln({"ops", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j["ops"].is_array());
    ASSERT_EQ(j["ops"].size(), kiln::all_ops().size());
    EXPECT_EQ(j["target"]["name"], "host");
    for (size_t i = 0; i < kiln::all_ops().size(); ++i) {
        const kiln::OpDef& def = *kiln::all_ops()[i];
        const auto& op = j["ops"][i];
        EXPECT_EQ(op["name"], def.name());
        ASSERT_EQ(op["params"].size(), def.params().size());
        for (size_t p = 0; p < def.params().size(); ++p) {
            EXPECT_EQ(op["params"][p]["name"], def.params()[p].name);
            EXPECT_EQ(op["params"][p]["token"], def.params()[p].token);
        }
        // A space, when there is one, has a default config that names only its knobs.
        if (!op["space"].is_null()) {
            std::vector<std::string> knobs;
            for (const auto& k : op["space"]["knobs"])
                knobs.push_back(k["name"]);
            for (const auto& [name, value] : op["space"]["default_config"].items())
                EXPECT_NE(std::find(knobs.begin(), knobs.end(), name), knobs.end()) << name;
        }
    }
}

// docs/WORKLOADS.md embeds `kiln ops --markdown` between two marker lines; after adding or
// changing an op, regenerate it with scripts/update-docs.sh.
TEST(Cli, WorkloadsDocMatchesOpsMarkdown) {
    const std::string doc = read_doc("WORKLOADS.md");
    ASSERT_FALSE(doc.empty()) << "docs/WORKLOADS.md not found";
    const std::string begin = "<!-- begin: kiln ops --markdown -->\n";
    const std::string end = "<!-- end: kiln ops --markdown -->";
    size_t b = doc.find(begin), e = doc.find(end);
    ASSERT_NE(b, std::string::npos);
    ASSERT_NE(e, std::string::npos);
    Result r = run_kiln({"ops", "--markdown"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), r.out)
        << "docs/WORKLOADS.md is out of date: run scripts/update-docs.sh";
}

TEST(Cli, BenchOpVerifiesAndTimes) {
    Result r = run_kiln({"bench-op", "conv2d", "--shape", kTinyConv, "--epilogue", "bias+relu",
                         "--min-time", "0.05", "--repeats", "3", "--threads", "1"});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_NE(r.out.find("conv2d/n1c8h10w10/k16r3s3/st1p1d1g1/f32/bias+relu"), std::string::npos);
    EXPECT_NE(r.out.find("config    default: "), std::string::npos);
    EXPECT_NE(r.out.find("verify    ok"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("threads   1 (--threads)"), std::string::npos);
    EXPECT_NE(r.out.find("3 rounds"), std::string::npos);
    EXPECT_NE(r.out.find(" GFLOP/s (median)"), std::string::npos);
}

TEST(Cli, BenchOpTimesABlockedLayout) {
    Result r = run_kiln({"bench-op", "conv2d", "--shape", kTinyConv, "--layout", "i8o8",
                         "--min-time", "0.02", "--repeats", "1", "--threads", "1"});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("conv2d/n1c8h10w10/k16r3s3/st1p1d1g1/f32/layout:i8o8"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\"algorithm\":\"winograd2\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("verify    ok"), std::string::npos) << r.out;
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--layout", "i16"},
                     "not divisible by their block 16");
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--layout", "i3"},
                     "powers of two");
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--layout", "x8"},
                     "expected i, r or o");
    expect_bad_input({"bench-op", "dense", "--layout", "i8"}, "dense has no blocked layout");
}

nlohmann::json conv2d_space(const std::string& shape) {
    Result r = run_kiln({"ops", "conv2d", "--shape", shape, "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["ops"][0]["space"];
}

// A config given on the command line may be partial; file and inline forms are the same.
TEST(Cli, BenchOpTakesAGivenConfig) {
    nlohmann::json space = conv2d_space(kTinyConv);
    ASSERT_FALSE(space.is_null());
    const nlohmann::json& config = space["default_config"];
    std::string path = ::testing::TempDir() + "kiln_cli_config.json";
    std::ofstream(path) << config.dump(2);
    Result from_file = run_kiln({"bench-op", "conv2d", "--shape", kTinyConv, "--config", path,
                                 "--min-time", "0.02", "--repeats", "1"});
    EXPECT_EQ(from_file.code, 0) << from_file.err;
    EXPECT_NE(from_file.out.find("config    from " + path + ": " + config.dump()),
              std::string::npos)
        << from_file.out;
    EXPECT_NE(from_file.out.find("verify    ok"), std::string::npos);

    nlohmann::json one_knob = {{config.begin().key(), config.begin().value()}};
    Result partial = run_kiln({"bench-op", "conv2d", "--shape", kTinyConv, "--config-json",
                               one_knob.dump(), "--min-time", "0.02", "--repeats", "1"});
    EXPECT_EQ(partial.code, 0) << partial.err;
    EXPECT_NE(partial.out.find("config    from --config-json: " + config.dump()), std::string::npos)
        << partial.out;
}

TEST(Cli, BenchOpRejectsConfigsOutsideTheSpace) {
    nlohmann::json space = conv2d_space(kTinyConv);
    ASSERT_FALSE(space.is_null());
    const nlohmann::json& knob = space["knobs"][0];
    nlohmann::json outside =
        knob["domain"][0].is_string() ? nlohmann::json("no_such_choice") : nlohmann::json(1 << 20);
    nlohmann::json bad = {{knob["name"].get<std::string>(), outside}};
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--config-json", bad.dump()},
                     "outside its domain");
    expect_bad_input(
        {"bench-op", "conv2d", "--shape", kTinyConv, "--config-json", "{\"no_such_knob\": 1}"},
        "unknown knob 'no_such_knob'");
    for (const auto& k : space["knobs"]) {
        if (k["active_in_default"].get<bool>()) continue;
        nlohmann::json inactive = {{k["name"].get<std::string>(), k["domain"][0]}};
        expect_bad_input(
            {"bench-op", "conv2d", "--shape", kTinyConv, "--config-json", inactive.dump()},
            "inactive");
        break;
    }
}

TEST(Cli, BadInputIsOneLineAndExitTwo) {
    std::string known;
    for (const kiln::OpDef* d : kiln::all_ops())
        known += (known.empty() ? "" : ", ") + d->name();
    expect_bad_input({"bench-op", "nosuchop", "--shape", kTinyConv}, "known: " + known);
    expect_bad_input({"ops", "nosuchop"}, "known: " + known);
    expect_bad_input({"bench-op", "conv2d", "--shape", "c=0,h=10,w=10,k=16,r=3,s=3"}, "c: ");
    expect_bad_input({"bench-op", "conv2d", "--shape", "c=8,h=10,w=10,k=16,r=3,s=3,q=1"}, "q: ");
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--target", "nosuchtarget"},
                     "known: host");
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--config-json", "{\"a\":"},
                     "not valid JSON");
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--config-json", "[1]"},
                     "expected a JSON object");
    expect_bad_input({"bench-op", "conv2d", "--shape", kTinyConv, "--epilogue", "bias+gelu"},
                     "gelu");
    expect_bad_input({"bench-op", "conv2d", "--threads", "0"}, "--threads");
    expect_bad_input({"bench-op", "conv2d", "--bogus"}, "--bogus");
    expect_bad_input({"ops", "--shape", "c=1"}, "needs an OP");
    expect_bad_input({"nosuchcommand"}, "unknown command 'nosuchcommand'");
    expect_bad_input({}, "a command is required");
}

// The examples in docs/WORKLOADS.md are what the code prints: keys round-trip, the workload JSON
// is Workload::to_json() of its key, and the config's compact JSON and hash are Config's.
TEST(Docs, WorkloadsExamplesHold) {
    const std::string doc = read_doc("WORKLOADS.md");
    auto keys = lines(fenced_blocks(doc, "```").at(1));
    ASSERT_GE(keys.size(), 3u);
    for (const auto& key : keys)
        EXPECT_EQ(kiln::Workload::parse_key(key).key(), key);

    auto json_blocks = fenced_blocks(doc, "```json");
    ASSERT_EQ(json_blocks.size(), 2u);
    nlohmann::json documented = nlohmann::json::parse(json_blocks[0]);
    kiln::Workload w = kiln::Workload::parse_key(documented["key"].get<std::string>());
    EXPECT_EQ(w.to_json(), documented);
    EXPECT_EQ(kiln::Workload::from_json(documented), w);

    std::string config_text = json_blocks[1].substr(0, json_blocks[1].find('\n'));
    kiln::Config c = kiln::Config::from_json(nlohmann::json::parse(config_text));
    EXPECT_EQ(c.to_string(), config_text);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(c.hash()));
    EXPECT_NE(doc.find(std::string("hashes to `") + hex + "`"), std::string::npos) << hex;
}

TEST(Cli, TuneOpRecordsAndBenchOpUsesTheBest) {
    std::string db = (std::filesystem::temp_directory_path() /
                      ("kiln-cli-tune-" + std::to_string(getpid()) + ".db"))
                         .string();
    std::filesystem::remove(db);
    const std::string shape = "m=3,n=20,k=8";
    Result t = run_kiln({"tune-op", "dense", "--shape", shape, "--db", db, "--trials", "3",
                         "--batch", "3", "--min-time", "0.01", "--quiet-wait", "0"});
    ASSERT_EQ(t.code, 0) << t.out << t.err;
    EXPECT_NE(t.out.find("stopped   trials: 3 measured"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("best "), std::string::npos) << t.out;
    EXPECT_NE(t.err.find("3/3 trials"), std::string::npos) << t.err;  // plain progress lines

    Result again = run_kiln({"tune-op", "dense", "--shape", shape, "--db", db, "--trials", "2",
                             "--batch", "2", "--min-time", "0.01", "--quiet-wait", "0"});
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_NE(again.out.find("3 already in the database"), std::string::npos) << again.out;

    Result b = run_kiln({"bench-op", "dense", "--shape", shape, "--db", db, "--min-time", "0.05"});
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_NE(b.out.find("config    tuned, best in " + db), std::string::npos) << b.out;
    EXPECT_NE(b.out.find("measured on this machine"), std::string::npos) << b.out;
    Result d = run_kiln({"bench-op", "dense", "--shape", shape, "--no-db", "--min-time", "0.05"});
    EXPECT_NE(d.out.find("config    default:"), std::string::npos) << d.out;

    // A blocked layout is its own workload: its own key, records and best.
    Result blocked = run_kiln({"tune-op", "conv2d", "--shape", kTinyConv, "--layout", "i8o8",
                               "--db", db, "--trials", "2", "--batch", "2", "--min-time", "0.01",
                               "--quiet-wait", "0", "--confirm", "0"});
    ASSERT_EQ(blocked.code, 0) << blocked.out << blocked.err;
    EXPECT_NE(blocked.err.find("conv2d/n1c8h10w10/k16r3s3/st1p1d1g1/f32/layout:i8o8"),
              std::string::npos)
        << blocked.err;
    Result best =
        run_kiln({"db", "best", "conv2d/n1c8h10w10/k16r3s3/st1p1d1g1/f32/layout:i8o8", "--db", db});
    EXPECT_EQ(best.code, 0) << best.out << best.err;
    expect_bad_input({"tune-op", "conv2d", "--shape", kTinyConv, "--layout", "i16", "--db", db},
                     "not divisible by their block 16");

    expect_bad_input({"tune-op", "dense", "--shape", shape, "--db", db, "--time", "ten"}, "time");
    expect_bad_input({"tune-op", "dense", "--shape", shape, "--db", db, "--target", "arm-64-linux"},
                     "target");
    std::filesystem::remove(db);
}

namespace kiln {
namespace {

// A float32 .npy file (format 1.0) with the given shape and values.
void write_test_npy(const std::string& path, const std::string& shape,
                    const std::vector<float>& v) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::ofstream f(path, std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    const char len[2] = {static_cast<char>(header.size() & 0xff),
                         static_cast<char>(header.size() >> 8)};
    f.write(len, 2);
    f << header;
    f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
}

TEST(Cli, CompileAndRunAModel) {
    const std::string model = "/usr/share/libonnx-testdata/data/node/test_relu/model.onnx";
    if (!std::filesystem::exists(model)) GTEST_SKIP() << "libonnx-testdata is not installed";
    char tmpl[] = "/tmp/kiln-cli-compile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl, out = dir + "/out";

    Result c = run_kiln({"compile", model, "-o", out, "--name", "relu"});
    ASSERT_EQ(c.code, 0) << c.out << c.err;
    EXPECT_NE(c.out.find("0 tuned kernels, 0 kernels with default configs, 1 lowered"),
              std::string::npos)
        << c.out;
    EXPECT_NE(c.err.find("[1/1] #0 (Relu): lowered"), std::string::npos) << c.err;
    for (const char* f : {"/librelu.a", "/relu.h", "/relu.json", "/kiln/runtime.h"})
        EXPECT_TRUE(std::filesystem::exists(out + f)) << f;

    Result r = run_kiln(
        {"run", out, "--output", dir + "/y.npy", "--bench", "--runs", "3", "--min-time", "0"});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("input     x 3x4x5  random in [-1, 1], seed 1"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("output    y 3x4x5  top: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("latency   min "), std::string::npos) << r.out;
    // Relu of the seeded input: the same run compared with its own output passes, a run of
    // another seed does not, and neither does an all-zero expectation.
    Result same = run_kiln({"run", out, "--compare", dir + "/y.npy"});
    EXPECT_EQ(same.code, 0) << same.out << same.err;
    EXPECT_NE(same.out.find("relative error 0 "), std::string::npos) << same.out;
    // The same on two threads that sleep between loops (--spin-us -1).
    Result sleeping =
        run_kiln({"run", out, "--compare", dir + "/y.npy", "--threads", "2", "--spin-us", "-1"});
    EXPECT_EQ(sleeping.code, 0) << sleeping.out << sleeping.err;
    EXPECT_NE(sleeping.out.find("relative error 0 "), std::string::npos) << sleeping.out;
    Result other = run_kiln({"run", out, "--compare", dir + "/y.npy", "--seed", "2"});
    EXPECT_EQ(other.code, 1) << other.out << other.err;
    EXPECT_NE(other.out.find("FAILED"), std::string::npos) << other.out;

    write_test_npy(dir + "/flat.npy", "60,", std::vector<float>(60, 0.5f));
    expect_bad_input({"run", out, "--input", dir + "/flat.npy"},
                     "has shape 60; input 'x' is 3x4x5");
    expect_bad_input({"compile", dir + "/missing.onnx"}, "missing.onnx");
    expect_bad_input({"compile", model, "--target", "bogus-target", "-o", dir + "/o2"},
                     "bogus-target");
    expect_bad_input({"compile", model, "--name", "3x", "-o", dir + "/o3"}, "not a C identifier");
    expect_bad_input({"run", dir}, "holds no compiled model");
    expect_bad_input({"run", out, "--spin-us", "-2"}, "--spin-us");
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
