// The ONNX backend node tests (Debian's libonnx-testdata) run through kiln's importer and
// reference interpreter, or through the Halide lowerings (--halide).
//
// Each directory under the data folder holds model.onnx and test_data_set_*/ with input_*.pb
// and output_*.pb. A model that import refuses as unsupported (an op, a dtype, a variant, an
// opset outside 11..17) is skipped; otherwise every data set is evaluated and compared with
// the expected outputs. Integer inputs are bound as constants (ImportOptions::constant_inputs):
// they are the shapes, axes and indices that kiln's static-shape IR needs at import.
//
//   onnx_node_tests [--data DIR] [--filter TEXT] [--write-doc docs/GRAPH.md] [--verbose]
//                   [--optimize] [--halide]
//
// --optimize runs the graph passes (graph::optimize: BN folding, epilogue fusion, ...) after
// import, so the same expected outputs check the rewritten graphs. The node tests feed weights
// as inputs, so in this mode every named f32 input after the first is bound as a constant too
// (a Conv's W and B, a Gemm's B and C, a BatchNormalization's parameters): what the passes
// need to fold and fuse. It also counts the tests whose graph got kernel nodes.
//
// --halide evaluates the graph node by node with evaluate_halide (graph/halide_ops.h), each
// node's outputs feeding the next, instead of the reference interpreter: the check of every
// Halide lowering. A test whose graph has a node without a lowering is skipped as unsupported.
// With --optimize too, the fused kiln.Conv and kiln.Dense nodes run through their lowerings.
//
// Prints one line per failure and the three counts. Exits 1 when a test of a supported op
// fails, 77 (ctest's SKIP_RETURN_CODE) when DIR does not exist, else 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "graph/halide_ops.h"
#include "graph/onnx_import.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/reference.h"

namespace fs = std::filesystem;
using namespace kiln::graph;

namespace {

constexpr int kSkipCode = 77;
// The ONNX backend's tolerances (onnx/backend/test/runner: rtol 1e-3, atol 1e-7) loosened in
// atol to 1e-5 for outputs near zero after long double-accumulated sums.
constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-5;

enum class Outcome { passed, failed, skipped };

struct TestResult {
    std::string name;
    Outcome outcome = Outcome::passed;
    std::string why;            // for failed and skipped
    std::set<std::string> ops;  // op types the model uses
    bool kernels = false;       // --optimize: the graph got kiln.Conv or kiln.Dense nodes
    bool halide = false;        // --halide: at least one node ran through Halide (some graphs
                                // fold to constants at import and have none)
};

struct Mode {
    bool optimized = false;  // --optimize
    bool halide = false;     // --halide
};

// The op type of the first node without a Halide lowering, or "".
std::string unlowered_op(const Graph& g) {
    for (const Node& n : g.nodes)
        if (!find_halide_lowering(n.op)) return n.op;
    return "";
}

// The graph run node by node through evaluate_halide, as evaluate_reference runs it through
// the references; every graph output by name.
std::map<std::string, Tensor> evaluate_halide_graph(const Graph& g,
                                                    const std::map<std::string, Tensor>& inputs) {
    std::map<ValueId, Tensor> computed;
    for (const auto& [name, t] : inputs)
        computed[g.find_value(name)] = t;
    auto tensor_of = [&](ValueId id) -> const Tensor* {
        if (id == kNoId) return nullptr;
        if (auto it = computed.find(id); it != computed.end()) return &it->second;
        if (g.value(id).is_constant()) return g.value(id).data.get();
        throw kiln::Error("graph", "value '" + g.value(id).name + "' is not computed");
    };
    for (const Node& n : g.nodes) {
        std::vector<const Tensor*> in;
        for (ValueId id : n.inputs)
            in.push_back(tensor_of(id));
        std::vector<Tensor> out;
        evaluate_halide(n, g, in, out);
        for (size_t k = 0; k < out.size() && k < n.outputs.size(); ++k)
            computed[n.outputs[k]] = std::move(out[k]);
    }
    std::map<std::string, Tensor> result;
    for (ValueId id : g.outputs)
        result[g.value(id).name] = *tensor_of(id);
    return result;
}

std::vector<fs::path> sorted_entries(const fs::path& dir, const std::string& prefix) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
    // input_10.pb after input_9.pb
    std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
        std::string x = a.filename().string(), y = b.filename().string();
        return x.size() != y.size() ? x.size() < y.size() : x < y;
    });
    return out;
}

// "" when `got` matches `want`, else what differs.
std::string compare(const Tensor& got, const Tensor& want) {
    if (got.dtype != want.dtype)
        return "dtype " + std::string(kiln::to_string(got.dtype)) + ", expected " +
               std::string(kiln::to_string(want.dtype));
    if (got.shape != want.shape)
        return "shape " + shape_string(got.shape) + ", expected " + shape_string(want.shape);
    if (got.dtype != kiln::DType::f32) return got.bytes == want.bytes ? "" : "values differ";
    const float* a = got.data<float>();
    const float* b = want.data<float>();
    for (int64_t i = 0; i < got.numel(); ++i) {
        if (std::isnan(a[i]) && std::isnan(b[i])) continue;
        if (std::isinf(b[i]) && a[i] == b[i]) continue;
        if (!(std::fabs(a[i] - b[i]) <= kAtol + kRtol * std::fabs(b[i]))) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "element %lld is %.7g, expected %.7g",
                          static_cast<long long>(i), a[i], b[i]);
            return buf;
        }
    }
    return "";
}

TestResult run_one(const fs::path& dir, Mode mode) {
    const bool optimized = mode.optimized;
    TestResult r;
    r.name = dir.filename().string();
    const std::string model = (dir / "model.onnx").string();
    try {
        for (const std::string& op : onnx_op_types(model))
            r.ops.insert(op);
        for (const fs::path& set : sorted_entries(dir, "test_data_set_")) {
            std::map<std::string, Tensor> inputs, expected;
            std::vector<Tensor> unnamed_inputs, unnamed_outputs;  // matched by position
            ImportOptions options;
            options.upgrade_old_opsets = true;
            bool first = true;
            for (const fs::path& p : sorted_entries(set, "input_")) {
                std::string name;
                Tensor t = load_tensor_pb(p.string(), &name);
                const bool weight = optimized && !first && t.dtype == kiln::DType::f32;
                first = false;
                if (name.empty())
                    unnamed_inputs.push_back(t);
                else if (t.dtype == kiln::DType::i64 || t.dtype == kiln::DType::i32 || weight)
                    options.constant_inputs[name] = t;
                else
                    inputs[name] = t;
            }
            for (const fs::path& p : sorted_entries(set, "output_")) {
                std::string name;
                Tensor t = load_tensor_pb(p.string(), &name);
                if (name.empty())
                    unnamed_outputs.push_back(t);
                else
                    expected[name] = t;
            }
            Graph g = import_onnx(model, options);
            if (optimized) {
                optimize(g);
                for (const Node& n : g.nodes)
                    r.kernels = r.kernels || n.op == "kiln.Conv" || n.op == "kiln.Dense";
            }
            for (size_t i = 0; i < unnamed_inputs.size() && i < g.inputs.size(); ++i)
                inputs[g.value(g.inputs[i]).name] = unnamed_inputs[i];
            for (size_t i = 0; i < unnamed_outputs.size() && i < g.outputs.size(); ++i)
                expected[g.value(g.outputs[i]).name] = unnamed_outputs[i];
            if (mode.halide) {
                if (std::string op = unlowered_op(g); !op.empty()) {
                    r.outcome = Outcome::skipped;
                    r.why = "no Halide lowering for " + op;
                    return r;
                }
                r.halide = r.halide || !g.nodes.empty();
            }
            std::map<std::string, Tensor> got =
                mode.halide ? evaluate_halide_graph(g, inputs) : evaluate_reference(g, inputs);
            for (const auto& [name, want] : expected) {
                auto it = got.find(name);
                if (it == got.end()) {
                    r.outcome = Outcome::failed;
                    r.why = "no output '" + name + "'";
                    return r;
                }
                if (std::string diff = compare(it->second, want); !diff.empty()) {
                    r.outcome = Outcome::failed;
                    r.why = set.filename().string() + " output '" + name + "': " + diff;
                    return r;
                }
            }
        }
    } catch (const ImportError& e) {
        const std::string where = e.field();
        if (where.size() > 3 && where.compare(where.size() - 3, 3, ".pb") == 0) {
            // The test data could not be read as tensors: say why the model itself is refused
            // when it is (a sequence op, a bool input), else report the data.
            try {
                ImportOptions plain;
                plain.upgrade_old_opsets = true;
                import_onnx(model, plain);
            } catch (const ImportError& m) {
                if (m.kind() == ImportFailure::unsupported || m.kind() == ImportFailure::opset) {
                    r.outcome = Outcome::skipped;
                    r.why = m.what();
                    return r;
                }
            } catch (const std::exception&) {
            }
        }
        const bool unsupported =
            e.kind() == ImportFailure::unsupported || e.kind() == ImportFailure::opset;
        r.outcome = unsupported ? Outcome::skipped : Outcome::failed;
        r.why = e.what();
    } catch (const Declined& e) {
        // --halide: a lowering that cannot take this variant of its op (an integer input
        // computed at run time, an integer output) says so; the node is unsupported there.
        r.outcome = mode.halide ? Outcome::skipped : Outcome::failed;
        r.why = e.what();
    } catch (const std::exception& e) {
        r.outcome = Outcome::failed;
        r.why = e.what();
    }
    return r;
}

struct OpCounts {
    int passed = 0, failed = 0, skipped = 0, with_kernels = 0, with_halide = 0;
    std::vector<std::string> failed_names;
};

std::string doc_section(const std::vector<TestResult>& results, int passed, int failed,
                        int skipped) {
    std::map<std::string, OpCounts> per_op;
    for (const GraphOp* op : all_graph_ops())
        if (op->is_onnx()) per_op[op->type()];
    for (const TestResult& r : results)
        for (const std::string& op : r.ops) {
            auto it = per_op.find(op);
            if (it == per_op.end()) continue;  // not a kiln op
            OpCounts& c = it->second;
            if (r.outcome == Outcome::passed) ++c.passed;
            if (r.outcome == Outcome::failed) {
                ++c.failed;
                c.failed_names.push_back(r.name);
            }
            if (r.outcome == Outcome::skipped) ++c.skipped;
        }
    std::ostringstream s;
    s << "Generated by `onnx_node_tests --write-doc` from libonnx-testdata's " << results.size()
      << " node tests: **" << passed << " passed, " << failed << " failed, " << skipped
      << " skipped** as unsupported.\n\n"
      << "A test counts under every kiln op its model uses (the `_expanded` tests use several); "
      << "`skipped` means import refused the model, often for another op in it.\n\n"
      << "| op | passed | failed | skipped | failed tests |\n| --- | --- | --- | --- | --- |\n";
    for (const auto& [op, c] : per_op) {
        std::string names;
        for (const auto& n : c.failed_names)
            names += (names.empty() ? "" : ", ") + n;
        s << "| " << op << " | " << c.passed << " | " << c.failed << " | " << c.skipped << " | "
          << names << " |\n";
    }
    return s.str();
}

bool write_doc(const std::string& path, const std::string& section) {
    const std::string begin = "<!-- node-tests:begin -->", end = "<!-- node-tests:end -->";
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::string doc = text.str();
    size_t b = doc.find(begin), e = doc.find(end);
    if (b == std::string::npos || e == std::string::npos || e < b) {
        std::fprintf(stderr, "onnx_node_tests: %s has no %s ... %s section\n", path.c_str(),
                     begin.c_str(), end.c_str());
        return false;
    }
    doc = doc.substr(0, b + begin.size()) + "\n" + section + doc.substr(e);
    std::ofstream(path) << doc;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string data = "/usr/share/libonnx-testdata/data/node", doc, filter;
    bool verbose = false;
    Mode mode;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--data" && i + 1 < argc)
            data = argv[++i];
        else if (a == "--write-doc" && i + 1 < argc)
            doc = argv[++i];
        else if (a == "--filter" && i + 1 < argc)
            filter = argv[++i];
        else if (a == "--verbose")
            verbose = true;
        else if (a == "--optimize")
            mode.optimized = true;
        else if (a == "--halide")
            mode.halide = true;
        else {
            std::fprintf(stderr,
                         "usage: onnx_node_tests [--data DIR] [--filter TEXT] "
                         "[--write-doc FILE] [--verbose] [--optimize] [--halide]\n");
            return 2;
        }
    }
    if (mode.halide && !doc.empty()) {
        std::fprintf(stderr,
                     "onnx_node_tests: --write-doc documents the reference interpreter's "
                     "counts; run it without --halide\n");
        return 2;
    }
    if (!fs::is_directory(data)) {
        std::printf("onnx_node_tests: SKIPPED: %s does not exist (install libonnx-testdata)\n",
                    data.c_str());
        return kSkipCode;
    }
    std::vector<TestResult> results;
    int passed = 0, failed = 0, skipped = 0, with_kernels = 0, with_halide = 0;
    for (const fs::path& dir : sorted_entries(data, "test_")) {
        if (!filter.empty() && dir.filename().string().find(filter) == std::string::npos) continue;
        if (!fs::exists(dir / "model.onnx")) continue;
        TestResult r = run_one(dir, mode);
        if (r.outcome == Outcome::passed) ++passed;
        if (r.outcome == Outcome::passed && r.kernels) ++with_kernels;
        if (r.outcome == Outcome::passed && r.halide) ++with_halide;
        if (r.outcome == Outcome::skipped) ++skipped;
        if (r.outcome == Outcome::failed) {
            ++failed;
            std::printf("FAILED %s: %s\n", r.name.c_str(), r.why.c_str());
        }
        if (verbose && r.outcome != Outcome::failed)
            std::printf("%s %s%s%s\n", r.outcome == Outcome::passed ? "passed " : "skipped",
                        r.name.c_str(), r.why.empty() ? "" : ": ", r.why.c_str());
        results.push_back(std::move(r));
    }
    std::printf("onnx node tests: %d passed, %d failed, %d skipped as unsupported (of %zu)\n",
                passed, failed, skipped, results.size());
    if (mode.halide)
        std::printf(
            "halide: %d of the passed tests ran nodes through Halide (the others' graphs "
            "fold to constants at import)\n",
            with_halide);
    if (mode.optimized)
        std::printf("optimized: %d of the passed tests ran kiln.Conv or kiln.Dense nodes\n",
                    with_kernels);
    if (!doc.empty() && !write_doc(doc, doc_section(results, passed, failed, skipped))) return 2;
    return failed ? 1 : 0;
}
