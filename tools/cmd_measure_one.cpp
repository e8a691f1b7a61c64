// kiln/tools/cmd_measure_one.cpp — `kiln measure-one`: the child side of the tuner's runner.
//
// Internal: the runner (tuner/runner.cpp) starts one of these per candidate and speaks JSON
// lines with it over stdin and stdout (docs/MEASUREMENT.md). This file only parses the flags and
// loads plugins (shared libraries that register extra ops, such as the tests' misbehaving op);
// measure_one_main() does the work.
#include <dlfcn.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "tools/commands.h"
#include "tuner/runner.h"

namespace kiln::tools {

void add_measure_one(CLI::App& app) {
    auto plugins = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand(
        "measure-one",
        "Internal, used by the tuner: compile, verify and time one candidate (JSON on stdin and "
        "stdout, see docs/MEASUREMENT.md)");
    cmd->group("");  // not listed in `kiln --help`: people run tune-op, not this
    cmd->add_option("--plugin", *plugins,
                    "Shared library to load first (registers extra ops); may repeat");
    cmd->callback([plugins] {
        for (const auto& path : *plugins) {
            // GLOBAL: the plugin's ops register into the registries of the already loaded
            // kiln libraries, and later plugins may use its symbols.
            if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
                const char* why = dlerror();
                throw Error("plugin", "cannot load '" + path + "': " + (why ? why : "unknown"));
            }
        }
        int rc = measure_one_main(std::cin, std::cout);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace kiln::tools
