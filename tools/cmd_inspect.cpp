// kiln/tools/cmd_inspect.cpp — `kiln inspect MODEL.onnx`: what kiln's importer makes of a
// model.
//
// Imports the model (graph/onnx_import.h) and prints its opset, inputs and outputs, how many
// nodes of each op type remain after folding, and the constants (parameters) with their bytes.
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
#include "tools/commands.h"
#include "tools/table.h"

namespace kiln::tools {
namespace {

struct InspectOptions {
    std::string model;
    int64_t batch = 1;
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

void run_inspect(const InspectOptions& o) {
    graph::ImportOptions options;
    options.batch = o.batch;
    graph::Graph g;
    try {
        g = graph::import_onnx(o.model, options);
    } catch (const graph::ImportError& e) {
        if (e.kind() != graph::ImportFailure::unsupported &&
            e.kind() != graph::ImportFailure::opset)
            throw;  // bad input: exit 2
        std::fprintf(stderr, "kiln: %s\n", e.what());
        throw CLI::RuntimeError(1);
    }
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
    cmd->footer(
        "Examples:\n"
        "  kiln inspect resnet50.onnx\n"
        "  kiln inspect mobilenet_v2.onnx --batch 8\n"
        "Exit codes: 0 imported, 1 the model uses ops kiln does not support (all are listed),\n"
        "2 a missing, corrupt or invalid file.");
    cmd->callback([o] { run_inspect(*o); });
}

}  // namespace kiln::tools
