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
 * Pass it unchanged as the first argument of every kernel (and of any halide_* call the glue
 * makes itself); it is the kiln_instance, opaque to the glue.
 * `arena` holds arena_bytes (aligned to 64 bytes, never NULL, not cleared between runs) for
 * the activations. inputs[i] and outputs[i] are never NULL; they are dense row-major with the
 * shapes of `inputs` and `outputs` below, aligned as the application allocated them (assume
 * no more than the dtype's own alignment).
 * Returns 0, or the failing kernel's Halide error code as soon as one fails (the error hook
 * has the message by then).
 * The runtime calls it once from kiln_create() on zero-filled inputs (the warm-up that sizes
 * the scratch memory), then once per kiln_run(). It must not allocate, must give every kernel
 * the same shapes on every call, and may be running for several instances at once on
 * different threads: no mutable static state. */
typedef int (*kiln_run_fn)(void* ctx, uint8_t* arena, const void* const* inputs,
                           void* const* outputs);

/* Shapes are static: every dimension >= 0, rank <= KILN_MAX_RANK; kiln_create() refuses
 * anything else with KILN_INVALID_ARGUMENT. */
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
