// kiln/graph/aot.h — ahead-of-time compilation of a graph into a static library.
//
// compile_model() takes a graph after optimize() (graph/passes.h) and writes, into the output
// directory, libNAME.a, NAME.h and NAME.json (docs/COMPILE.md):
//   - every kiln.Conv / kiln.Dense node extract_tasks() accepts becomes its op's kernel with the
//     best config the database has for it on the target (or the space's default, with a
//     warning naming the kernel), its weights packed into the kernel's layout now, not at run
//     time; nodes with the same workload and config share one function;
//   - activations stay channel-blocked between kernels that compute in that layout
//     (graph/layout_plan.h); the others read and write NCHW;
//   - every other node is lowered to Halide (graph/halide_ops.h), or shares its input's memory
//     when it only reshapes (an alias);
//   - the memory plan (graph/memory_plan.h) places the activations in one arena;
//   - generated C glue runs the kernels in order and defines the model for the runtime
//     (runtime/kiln/model_def.h); one Halide runtime, kiln's runtime and the weights go into the
//     same archive, so an application links libNAME.a with libc, libm, pthread and dl only.
// Targets other than the host are cross-compiled (the C parts with the target's C compiler).
// No Halide in this header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "targets/target.h"

namespace kiln {
class Database;
}

namespace kiln::graph {

struct CompileOptions {
    std::string name;     // the library's name, a C identifier: libNAME.a, kiln_model_NAME()
    std::string out_dir;  // created when missing
    Target target;
    const Database* db = nullptr;  // best configs; nullptr: every kernel takes its default
    std::string cc;                // C compiler for the target; empty: "cc" on the host, the GNU
                                   // cross compiler (aarch64-linux-gnu-gcc) for arm-64 targets
    std::string ar = "ar";
    // Keep activations channel-blocked between kernels that compute in that layout
    // (graph/layout_plan.h); false: every activation NCHW.
    bool block_activations = true;
    // Called once per compiled function: "[3/41] conv2d/... tuned, 1.2 s".
    std::function<void(const std::string&)> progress;
};

struct CompiledNode {
    std::string node;      // its label
    std::string kind;      // "tuned", "default" (a kernel without a record), "lowered", "alias"
    std::string function;  // the C function that runs it ("" for an alias)
    std::string workload;  // kernels: the workload key
    std::string config;    // kernels: the config's JSON
};

struct CompileReport {
    std::string library, header, json;  // paths written
    std::vector<CompiledNode> nodes;
    std::vector<std::string> warnings;  // one per kernel without a tuned record, ...
    int functions = 0;                  // distinct compiled functions
    // Kernel outputs, and those of them kept channel-blocked for the kernels that read them
    // (graph/layout_plan.h).
    int kernel_activations = 0;
    int blocked_activations = 0;
    uint64_t arena_bytes = 0;
    uint64_t unshared_bytes = 0;  // the arena's buffers without reuse
    uint64_t weight_bytes = 0;    // packed weights and other constants in the library
    uint64_t library_bytes = 0;
    double seconds = 0;
};

// The C compiler `kiln compile` uses for a target when none is given.
std::string default_c_compiler(const Target& t);

// Throws kiln::Error naming what stops compilation: a node without a lowering, a run-time
// tensor that is not float32, a missing C compiler, a failing tool (with its output).
CompileReport compile_model(const Graph& g, const CompileOptions& o);

}  // namespace kiln::graph
