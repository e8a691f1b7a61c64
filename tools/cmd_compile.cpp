// kiln/tools/cmd_compile.cpp — `kiln compile MODEL.onnx --target T [--db D] -o DIR`: an ONNX
// model to libNAME.a, NAME.h and NAME.json (graph/aot.h, docs/COMPILE.md).
//
// Imports the model, runs the graph passes, and compiles: each kernel with its best record in
// the tuning database (a warning names every kernel without one), every other node lowered to
// Halide. Progress goes to stderr, one line per compiled function; the summary to stdout.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "db/database.h"
#include "graph/aot.h"
#include "graph/onnx_import.h"
#include "graph/passes.h"
#include "tools/commands.h"
#include "tools/compile.h"
#include "tools/db_path.h"

namespace kiln::tools {

std::string name_from_path(const std::string& path) {
    std::string s = std::filesystem::path(path).stem().string();
    for (char& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "model_" + s;
    return s;
}

namespace {

std::string size_text(uint64_t b) {
    if (b >= 1000000) return fmt::format("{:.1f} MB", b / 1e6);
    if (b >= 1000) return fmt::format("{:.1f} kB", b / 1e3);
    return fmt::format("{} B", b);
}

}  // namespace

graph::Graph import_for_command(const std::string& path, int64_t batch) {
    graph::ImportOptions options;
    options.batch = batch;
    options.upgrade_old_opsets = true;
    try {
        return graph::import_onnx(path, options);
    } catch (const graph::ImportError& e) {
        if (e.kind() != graph::ImportFailure::unsupported &&
            e.kind() != graph::ImportFailure::opset)
            throw;  // bad input: exit 2
        std::fprintf(stderr, "kiln: %s\n", e.what());
        throw CLI::RuntimeError(1);
    }
}

graph::CompileReport compile_onnx_model(const CompileCommandOptions& o) {
    graph::Graph g = import_for_command(o.model, o.batch);
    graph::optimize(g);

    graph::CompileOptions co;
    co.name = o.name.empty() ? name_from_path(o.model) : o.name;
    co.out_dir = o.out.empty() ? "out/" + co.name : o.out;
    co.target = parse_target(o.target);
    co.cc = o.cc;
    co.block_activations = !o.nchw;
    std::unique_ptr<Database> db;
    std::string db_note = "none (--no-db): every kernel takes its space's default config";
    if (!o.no_db) {
        const std::string path = database_path(o.db);
        if (std::filesystem::exists(path)) {
            db = Database::open(path);
            co.db = db.get();
            db_note = path;
        } else {
            db_note = path + " (missing: every kernel takes its space's default config)";
        }
    }
    co.progress = [](const std::string& line) {
        std::fprintf(stderr, "%s\n", line.c_str());
        std::fflush(stderr);
    };
    std::printf("model     %s\n", o.model.c_str());
    std::printf("target    %s (%s)\n", co.target.name.c_str(), co.target.halide.c_str());
    std::printf("database  %s\n", db_note.c_str());
    std::fflush(stdout);

    const graph::CompileReport r = graph::compile_model(g, co);
    int tuned = 0, fallback = 0, lowered = 0, aliases = 0;
    for (const auto& n : r.nodes) {
        tuned += n.kind == "tuned";
        fallback += n.kind == "default";
        lowered += n.kind == "lowered";
        aliases += n.kind == "alias";
    }
    for (const std::string& w : r.warnings)
        std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf(
        "nodes     %zu: %d tuned kernels, %d kernels with default configs, %d lowered, "
        "%d aliases; %d functions\n",
        r.nodes.size(), tuned, fallback, lowered, aliases, r.functions);
    std::printf(
        "layout    %d of %d kernel outputs kept channel-blocked for the kernels "
        "that read them\n",
        r.blocked_activations, r.kernel_activations);
    std::printf("memory    arena %s (%s without reuse), weights %s\n",
                size_text(r.arena_bytes).c_str(), size_text(r.unshared_bytes).c_str(),
                size_text(r.weight_bytes).c_str());
    std::printf("wrote     %s (%s)\n          %s\n          %s\n", r.library.c_str(),
                size_text(r.library_bytes).c_str(), r.header.c_str(), r.json.c_str());
    std::printf("time      %.1f s\n", r.seconds);
    return r;
}

void add_compile(CLI::App& app) {
    auto o = std::make_shared<CompileCommandOptions>();
    CLI::App* cmd = app.add_subcommand(
        "compile", "Compile an ONNX model into a static library with a C API (libNAME.a)");
    cmd->add_option("MODEL", o->model, "The ONNX model (.onnx)")->required();
    cmd->add_option("--target", o->target,
                    "host, x86-64-linux-avx2, x86-64-linux-avx512, arm-64-linux or a Halide "
                    "target string; other targets than the host are cross-compiled")
        ->capture_default_str();
    cmd->add_option("--db", o->db,
                    "Tuning database with the kernels' best configs (default: $KILN_DB, else "
                    "~/.cache/kiln/tuning.db; a missing file means default configs)");
    cmd->add_flag("--no-db", o->no_db, "Use every kernel's default config");
    cmd->add_flag("--nchw", o->nchw,
                  "Keep every activation NCHW: no channel-blocked layouts between kernels "
                  "(to measure what they bring)");
    cmd->add_option("-o,--out", o->out, "Output directory (default: out/NAME)");
    cmd->add_option("--name", o->name,
                    "Library name, a C identifier (default: the model file's stem)");
    cmd->add_option("--batch", o->batch, "Size of a symbolic first input dimension")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--cc", o->cc,
                    "C compiler for the target (default: cc, or aarch64-linux-gnu-gcc for "
                    "arm-64-linux)");
    cmd->footer(
        "Writes DIR/libNAME.a, DIR/NAME.h, DIR/kiln/runtime.h and DIR/NAME.json. Link with\n"
        "  cc app.c -IDIR DIR/libNAME.a -lpthread -ldl -lm\n"
        "Examples:\n"
        "  kiln compile resnet18.onnx --db tuning.db -o out/resnet18\n"
        "  kiln compile resnet18.onnx --target arm-64-linux --no-db -o out/resnet18-arm\n"
        "Exit codes: 0 compiled, 1 the model uses ops kiln does not support, 2 bad input.");
    cmd->callback([o] { compile_onnx_model(*o); });
}

}  // namespace kiln::tools
