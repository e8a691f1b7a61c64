// kiln/tools/cmd_inspect.cpp — `kiln inspect MODEL.onnx [--kernels]`: what kiln's importer
// (and, with --kernels, its passes and task extraction) makes of a model.
//
// Imports the model (graph/onnx_import.h) and prints its opset, inputs and outputs, how many
// nodes of each op type remain after folding, and the constants (parameters) with their bytes.
// With --kernels it then runs graph::optimize() (graph/passes.h) and prints the pass report,
// the kernel tasks of graph::extract_tasks() (graph/tasks.h) and the nodes that fall back.
// A model kiln does not support prints the import error and exits 1; a missing, corrupt or
// invalid file is bad input (exit 2), like every other command's.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "graph/ir.h"
#include "graph/onnx_import.h"
#include "graph/passes.h"
#include "graph/tasks.h"
#include "targets/target.h"
#include "tools/commands.h"
#include "tools/compile.h"
#include "tools/table.h"

namespace kiln::tools {
namespace {

struct InspectOptions {
    std::string model;
    int64_t batch = 1;
    bool kernels = false;
};

std::string with_commas(int64_t n) {
    std::string s = std::to_string(n), out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (i && (s.size() - i) % 3 == 0) out += ',';
        out += s[i];
    }
    return out;
}

std::string bytes_text(int64_t b) {
    if (b >= (int64_t{1} << 20)) return fmt::format("{:.1f} MiB", b / 1048576.0);
    if (b >= 1024) return fmt::format("{:.1f} KiB", b / 1024.0);
    return std::to_string(b) + " B";
}

void print_values(const char* title, const graph::Graph& g,
                  const std::vector<graph::ValueId>& ids) {
    std::printf("%s\n", title);
    std::vector<std::vector<std::string>> rows;
    for (graph::ValueId id : ids) {
        const graph::Value& v = g.value(id);
        rows.push_back({v.name, std::string(to_string(v.dtype)), graph::shape_string(v.shape)});
    }
    print_table(rows, "  ");
}

// The pass report, the kernel-task table and the fallbacks, after optimize().
void print_kernels(graph::Graph& g) {
    const graph::PassReport report = graph::optimize(g);
    std::printf("passes\n");
    std::string text = report.to_string();
    for (size_t start = 0; start < text.size();) {
        size_t end = text.find('\n', start);
        std::printf("  %s\n", text.substr(start, end - start).c_str());
        start = end + 1;
    }
    // The keys `kiln tune` tunes for the host: channel-blocked where kiln compile plans it.
    const graph::TaskList list = graph::extract_tasks(g, host_target().f32_lanes());
    int kernels = 0;
    for (const auto& t : list.tasks)
        kernels += t.count;
    std::printf("kernel tasks  %zu (%d kernel nodes, %s GFLOP in all)\n", list.tasks.size(),
                kernels, fmt::format("{:.4g}", list.total_flops / 1e9).c_str());
    if (!list.tasks.empty()) {
        std::vector<std::vector<std::string>> rows = {{"key", "count", "GFLOP", "share", "nodes"}};
        for (const auto& t : list.tasks) {
            std::string nodes;
            for (const auto& n : t.nodes)
                nodes += (nodes.empty() ? "" : ", ") + n;
            rows.push_back({t.key, std::to_string(t.count), fmt::format("{:.4g}", t.flops / 1e9),
                            fmt::format("{:.1f}%", 100.0 * t.share), nodes});
        }
        print_table(rows, "  ");
    }
    std::printf("fallbacks  %zu\n", list.fallbacks.size());
    for (const auto& f : list.fallbacks)
        std::printf("  %s\n", f.text().c_str());
    if (!list.other_ops.empty()) {
        std::string others;
        for (const auto& [op, count] : list.other_ops)
            others += (others.empty() ? "" : ", ") + op + " " + std::to_string(count);
        std::printf("other nodes  %s (no tuned kernel: run by their reference op)\n",
                    others.c_str());
    }
}

void run_inspect(const InspectOptions& o) {
    graph::Graph g = import_for_command(o.model, o.batch);
    std::printf("model    %s\n", o.model.c_str());
    std::printf("opset    %d\n", g.opset);
    if (!g.name.empty()) std::printf("graph    %s\n", g.name.c_str());
    print_values("inputs", g, g.inputs);
    print_values("outputs", g, g.outputs);

    std::map<std::string, int> per_op;
    for (const graph::Node& n : g.nodes)
        ++per_op[n.op];
    std::printf("nodes    %zu (after folding constants)\n", g.nodes.size());
    std::vector<std::vector<std::string>> rows;
    for (const auto& [op, count] : per_op)
        rows.push_back({op, std::to_string(count)});
    print_table(rows, "  ");

    int64_t constants = 0, elements = 0, bytes = 0;
    for (const graph::Value& v : g.values) {
        if (!v.is_constant()) continue;
        ++constants;
        elements += v.data->numel();
        bytes += static_cast<int64_t>(v.data->bytes.size());
    }
    std::printf("parameters  %s values in %s constants, %s (%s bytes)\n",
                with_commas(elements).c_str(), with_commas(constants).c_str(),
                bytes_text(bytes).c_str(), with_commas(bytes).c_str());
    if (o.kernels) print_kernels(g);
}

}  // namespace

void add_inspect(CLI::App& app) {
    auto o = std::make_shared<InspectOptions>();
    CLI::App* cmd = app.add_subcommand(
        "inspect", "Import an ONNX model and show its inputs, outputs, ops and parameters");
    cmd->add_option("MODEL", o->model, "The ONNX model (.onnx)")->required();
    cmd->add_option("--batch", o->batch, "Size of a symbolic first input dimension")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--kernels", o->kernels,
                  "Run the graph passes (BN folding, epilogue fusion, ...) and list the kernel "
                  "tasks: one workload key per distinct kernel, its count, GFLOP and share, and "
                  "the nodes that fall back");
    cmd->footer(
        "Examples:\n"
        "  kiln inspect resnet50.onnx\n"
        "  kiln inspect mobilenet_v2.onnx --batch 8\n"
        "  kiln inspect resnet50.onnx --kernels\n"
        "Exit codes: 0 imported, 1 the model uses ops kiln does not support (all are listed),\n"
        "2 a missing, corrupt or invalid file.");
    cmd->callback([o] { run_inspect(*o); });
}

}  // namespace kiln::tools
