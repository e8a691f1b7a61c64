// kiln/tools/commands.h — the subcommands of the `kiln` command, one file each.
//
// main.cpp builds the CLI::App and calls each add_<name>() below; each subcommand's file owns its
// options and the callback that does the work. Callbacks report failures by throwing: kiln::Error
// for bad input (main prints one line and exits 2), CLI::RuntimeError(1) for a wrong result.
#pragma once

namespace CLI {
class App;
}

namespace kiln::tools {

void add_ops(CLI::App& app);          // tools/cmd_ops.cpp
void add_bench_op(CLI::App& app);     // tools/cmd_bench_op.cpp
void add_tune_op(CLI::App& app);      // tools/cmd_tune_op.cpp
void add_tune(CLI::App& app);         // tools/cmd_tune.cpp
void add_db(CLI::App& app);           // tools/cmd_db.cpp
void add_cost_model(CLI::App& app);   // tools/cmd_cost_model.cpp
void add_inspect(CLI::App& app);      // tools/cmd_inspect.cpp
void add_compile(CLI::App& app);      // tools/cmd_compile.cpp
void add_run(CLI::App& app);          // tools/cmd_run.cpp
void add_bench(CLI::App& app);        // tools/cmd_bench.cpp
void add_measure_one(CLI::App& app);  // tools/cmd_measure_one.cpp (internal)

}  // namespace kiln::tools
