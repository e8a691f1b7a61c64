// kiln/schedules/gemm.h — the knobs of a BLIS-style GEMM and how a config schedules it (internal).
//
// Shared by the spaces of dense and batch_matmul (schedules/dense.cpp, batch_matmul.cpp), whose
// algorithms are both generators/gemm.h. The knobs:
//   mr, nr      register tile: mr rows x nr columns (nr a multiple of the vector lanes, and the
//               width of a packed panel)
//   kc          reduction block: inner products of kc terms stay in registers, blocks are
//               summed in memory (kc = k: no blocking)
//   mc, nc      cache block: mc register tiles of rows x nc panels of columns
//   order       which tile loop is innermost in a block: rows_inner walks the mr-row tiles
//               under one panel (the panel stays in L1), cols_inner walks the panels under one
//               row tile (the row strip stays in L1)
//   parallel    the parallel block axis: rows, cols, or batch (batch_matmul only)
//   grain       blocks (or batches) per parallel task
//   unroll_k    unroll of the reduction inside the register tile
#pragma once

#include <functional>
#include <string>

#include "Halide.h"
#include "core/config.h"
#include "generators/gemm.h"
#include "schedules/space.h"
#include "targets/target.h"

namespace kiln {

struct GemmKnobs {
    int mr = 1, nr = 1;
    int64_t kc = 1;
    int mc = 1, nc = 1;
    std::string order, parallel;
    int grain = 1, unroll_k = 1;

    // The knobs are named `prefix` + the names above.
    static GemmKnobs of(const Config& c, const std::string& prefix = "");
};

// How a space that holds more than the GEMM (conv2d's `gemm` algorithm) takes its knobs.
struct GemmKnobOptions {
    std::string prefix;                         // prepended to every knob name
    std::function<bool(const Config&)> active;  // null: always; constraints follow it too
    bool set_default = true;                    // write the defaults into default_config
};

// Adds the knobs and constraints above to `space` and, unless told not to, their defaults to
// space.default_config.
void add_gemm_knobs(ScheduleSpace& space, const GemmShape& s, const Target& t,
                    const GemmKnobOptions& options = {});

// Schedules `f` (built with the config's nr and kc). `panels`, when defined, is computed
// inside the main pipeline, once per batch.
void schedule_gemm(GemmFuncs& f, const GemmShape& s, const GemmKnobs& g, const Target& t,
                   Halide::Func panels);

}  // namespace kiln
