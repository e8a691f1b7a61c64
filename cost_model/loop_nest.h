// kiln/cost_model/loop_nest.h — the loop-nest summary of any Halide pipeline (internal).
//
// summarize_loop_nest() (features.h) builds a config's pipeline and calls this; tests call it
// on small hand-written pipelines whose loops, bytes and working sets can be checked by hand.
// The pipeline's unrolled loops are made serial: do not compile it afterwards.
#pragma once

#include "Halide.h"
#include "cost_model/features.h"

namespace kiln {

LoopNestSummary summarize_pipeline(Halide::Pipeline p, const Halide::Target& target);

}  // namespace kiln
