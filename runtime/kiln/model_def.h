/* kiln/model_def.h — the contract between the code `kiln compile` generates and the runtime.
 *
 * Private to kiln: applications see only kiln/runtime.h. The generated glue (NAME_glue.c)
 * defines one `kiln_model_def` and the function returning it; the runtime (runtime.c) creates
 * instances from it. A change to this layout bumps KILN_MODEL_ABI, and kiln_create() refuses a
 * model generated for another value. */
#ifndef KILN_MODEL_DEF_H
#define KILN_MODEL_DEF_H

#include "kiln/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_MODEL_ABI 1

typedef struct kiln_tensor_def {
    const char* name;
    int32_t dtype; /* a kiln_dtype */
    int32_t rank;
    int64_t shape[KILN_MAX_RANK];
} kiln_tensor_def;

/* Runs the model once. `ctx` is the user_context every Halide kernel of the model receives
 * (the kernels are compiled with Halide's user_context feature): the runtime's hooks for
 * halide_malloc, halide_free, halide_do_par_for and halide_error find the instance through it.
 * `arena` holds arena_bytes (aligned to 64 bytes) for the activations. Returns 0, or the
 * failing kernel's Halide error code (the error hook has the message by then). */
typedef int (*kiln_run_fn)(void* ctx, uint8_t* arena, const void* const* inputs,
                           void* const* outputs);

struct kiln_model_def {
    uint32_t abi; /* KILN_MODEL_ABI */
    const char* name;
    const char* target; /* the Halide target string the kernels were compiled for */
    int32_t num_inputs;
    int32_t num_outputs;
    const kiln_tensor_def* inputs;
    const kiln_tensor_def* outputs;
    uint64_t arena_bytes; /* activations, buffers reused by lifetime (the memory plan) */
    kiln_run_fn run;
};

#ifdef __cplusplus
}
#endif

#endif /* KILN_MODEL_DEF_H */
