// kiln/tools/compile.h — ONNX file to compiled library, shared by `kiln compile` and `kiln run`.
#pragma once

#include <cstdint>
#include <string>

#include "graph/aot.h"
#include "graph/ir.h"

namespace kiln::tools {

struct CompileCommandOptions {
    std::string model;
    std::string target = "host";
    std::string db;
    bool no_db = false;
    bool nchw = false;  // no channel-blocked activations between kernels
    std::string out;
    std::string name;
    int64_t batch = 1;
    std::string cc;
};

// Imports an ONNX file for a command (opsets before 11 are converted): a model with ops kiln does
// not support prints the import error and throws CLI::RuntimeError(1); a bad file throws
// kiln::Error (exit 2).
graph::Graph import_for_command(const std::string& path, int64_t batch);

// The model file's stem as a C identifier: "resnet-18.onnx" -> "resnet_18".
std::string name_from_path(const std::string& path);

// Imports, optimizes and compiles, printing the summary (stdout), progress and warnings
// (stderr). A model with unsupported ops prints the import error and throws CLI::RuntimeError(1);
// bad input throws kiln::Error.
graph::CompileReport compile_onnx_model(const CompileCommandOptions& o);

}  // namespace kiln::tools
