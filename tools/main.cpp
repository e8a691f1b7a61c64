// kiln/tools/main.cpp — the `kiln` command: builds the CLI, runs one subcommand, maps failures
// to exit codes.
//
// Each subcommand lives in its own tools/cmd_<name>.cpp (see commands.h). Exit codes are part
// of the interface (docs/CLI.md): 0 success, 1 a kernel computed a wrong result (for `kiln db`:
// no record, or bad log lines; for `kiln inspect`: a model kiln does not support), 2 bad input of
// any kind, always reported as a single `kiln: <message>` line on stderr so scripts and tests can
// rely on it.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "tools/commands.h"

namespace {

constexpr int kExitBadInput = 2;

// Messages from CLI11, Halide or the core may span lines; the contract is one line.
void print_error(const std::string& message) {
    std::string line;
    for (char ch : message) {
        if (ch == '\n' || ch == '\r') {
            if (!line.empty() && line.back() != ' ') line += ' ';
        } else {
            line += ch;
        }
    }
    while (!line.empty() && line.back() == ' ')
        line.pop_back();
    std::fprintf(stderr, "kiln: %s\n", line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "kiln — an auto-tuning kernel compiler for neural-network inference.\n"
        "Kernels are Halide algorithms with a declared space of schedules; kiln compiles,\n"
        "verifies and measures them on this machine.",
        "kiln"};
    app.set_version_flag("--version", "kiln " KILN_VERSION, "Print the version and exit");
    app.require_subcommand(1, 1);
    kiln::tools::add_ops(app);
    kiln::tools::add_bench_op(app);
    kiln::tools::add_tune_op(app);
    kiln::tools::add_tune(app);
    kiln::tools::add_measure_one(app);
    kiln::tools::add_db(app);
    kiln::tools::add_cost_model(app);
    kiln::tools::add_inspect(app);
    kiln::tools::add_compile(app);
    kiln::tools::add_run(app);
    kiln::tools::add_bench(app);
    // After the subcommands, which would otherwise inherit it: each has its own examples.
    app.footer(
        "Examples:\n"
        "  kiln ops                               every op, its parameters and schedule knobs\n"
        "  kiln ops conv2d --shape c=32,h=28,w=28,k=32,r=3,s=3,pad=1\n"
        "  kiln bench-op conv2d --shape n=1,c=64,h=56,w=56,k=64,r=3,s=3,stride=1,pad=1\n"
        "  kiln db stats                          what the tuning database holds\n"
        "  kiln inspect model.onnx                what kiln's importer makes of a model\n"
        "  kiln compile model.onnx -o out/m       a static library with a C API\n"
        "  kiln run out/m --bench                 run it: outputs, latency\n"
        "  kiln bench model.onnx --db tuning.db   its latency beside PyTorch's\n"
        "\n"
        "Exit codes: 0 success, 1 wrong result (db: no record, or bad log lines; inspect: a\n"
        "model kiln does not support), 2 bad input.\n"
        "See docs/CLI.md.");

    try {
        if (argc > 1 && argv[1][0] != '-') {
            std::string known;
            bool found = false;
            for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
                found = found || sub->get_name() == argv[1];
                known += (known.empty() ? "" : ", ") + sub->get_name();
            }
            if (!found)
                throw kiln::Error(
                    "", std::string("unknown command '") + argv[1] + "' (known: " + known + ")");
        }
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help and --version: printed on stdout, exit 0
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // the subcommand has already said why
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        if (what.rfind("A subcommand is required", 0) == 0 || what.empty())
            what = "a command is required (see kiln --help)";
        print_error(what);
        return kExitBadInput;
    } catch (const kiln::Error& e) {
        print_error(e.what());
        return kExitBadInput;
    } catch (const std::exception& e) {
        print_error(e.what());
        return kExitBadInput;
    }
    return 0;
}
