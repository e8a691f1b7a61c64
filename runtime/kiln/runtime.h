/* kiln/runtime.h — the C API of a model compiled by `kiln compile` (docs/RUNTIME.md).
 *
 * A compiled model NAME is a static library libNAME.a with a header NAME.h that declares
 * `const kiln_model_def* kiln_model_NAME(void);`. An application creates one or more instances
 * of it, each with its own activation memory and thread count, and runs them:
 *
 *     kiln_instance* m = NULL;
 *     if (kiln_create(kiln_model_resnet18(), NULL, &m) != KILN_OK) {
 *         fprintf(stderr, "%s\n", kiln_last_error(NULL));
 *         return 1;
 *     }
 *     const void* in[1] = {image};   // float32, row-major, shape from kiln_input_info()
 *     void* out[1] = {scores};
 *     if (kiln_run(m, in, out) != KILN_OK) fprintf(stderr, "%s\n", kiln_last_error(m));
 *     kiln_destroy(m);
 *
 * Every memory an instance needs is allocated by kiln_create(): kiln_run() allocates nothing.
 * Separate instances may run at the same time from separate threads; one instance runs one
 * call at a time. Errors are status codes with a message, never an abort.
 *
 * Plain C99; needs only libc, libm, pthread and dl. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_status {
    KILN_OK = 0,
    KILN_INVALID_ARGUMENT = 1, /* a NULL pointer, an index out of range, bad options */
    KILN_OUT_OF_MEMORY = 2,    /* kiln_create() could not allocate the instance's memory */
    KILN_KERNEL_ERROR = 3,     /* a kernel failed while running; the message says which */
    KILN_ABI_MISMATCH = 4      /* the model was compiled for another version of this runtime */
} kiln_status;

typedef enum kiln_dtype {
    KILN_F32 = 0,
    KILN_I64 = 1,
    KILN_I32 = 2,
    KILN_I8 = 3,
    KILN_U8 = 4
} kiln_dtype;

#define KILN_MAX_RANK 8

typedef struct kiln_tensor_info {
    const char* name; /* the ONNX value's name */
    kiln_dtype dtype;
    int32_t rank;
    int64_t shape[KILN_MAX_RANK]; /* the first `rank` entries; row-major, dense */
} kiln_tensor_info;

#define KILN_DEFAULT_SPIN_US 1000

typedef struct kiln_options {
    /* Threads that run this instance's parallel loops, the calling thread included: 0 is one
     * per online core, 1 runs everything on the calling thread, at most 1024. kiln_create()
     * starts threads - 1 workers that belong to the instance alone. */
    int32_t threads;
    /* Microseconds an idle thread of the instance polls for the next parallel loop before it
     * sleeps, 1 to 1000000: polling saves two wake-ups per loop while a run goes on, and burns
     * that core while it waits. 0 is KILN_DEFAULT_SPIN_US; -1 sleeps at once, for a device
     * where power counts more than latency. */
    int32_t spin_us;
} kiln_options;

/* What `kiln compile` generates for a model (the layout is in kiln/model_def.h, private to
 * kiln and the code it generates). */
typedef struct kiln_model_def kiln_model_def;
typedef struct kiln_instance kiln_instance;

/* The defaults: threads = 0, spin_us = 0 (KILN_DEFAULT_SPIN_US); a zeroed struct is the same. */
void kiln_options_init(kiln_options* options);

/* Creates an instance of a model; `options` may be NULL (the defaults). On success *out is the
 * instance; on failure *out is NULL and kiln_last_error(NULL) says why. Allocates the
 * activation arena and the worker threads, then runs the model once on zero inputs to reserve
 * the kernels' scratch memory (docs/RUNTIME.md), so it takes about one run's time. */
kiln_status kiln_create(const kiln_model_def* model, const kiln_options* options,
                        kiln_instance** out);
/* Frees everything the instance holds; NULL is allowed. */
void kiln_destroy(kiln_instance* instance);

/* -1 when instance is NULL. */
int32_t kiln_num_inputs(const kiln_instance* instance);
int32_t kiln_num_outputs(const kiln_instance* instance);
/* Fills *info for input (output) `index`; the name stays valid as long as the program runs. */
kiln_status kiln_input_info(const kiln_instance* instance, int32_t index, kiln_tensor_info* info);
kiln_status kiln_output_info(const kiln_instance* instance, int32_t index, kiln_tensor_info* info);

/* Runs the model: inputs[i] points at input i's dense row-major data, outputs[i] at room for
 * output i. Allocates nothing (but see docs/RUNTIME.md on failing kernels). A call on an
 * instance that is already running on another thread returns KILN_INVALID_ARGUMENT at once,
 * with its message in the calling thread's kiln_last_error(NULL). */
kiln_status kiln_run(kiln_instance* instance, const void* const* inputs, void* const* outputs);

/* The message of this instance's last failed call, "" after a successful kiln_run(). With
 * NULL: the message of this thread's last failed kiln_create() (or of a call given a NULL
 * instance). Valid until the next call on the instance (the thread). */
const char* kiln_last_error(const kiln_instance* instance);

/* "ok", "invalid argument", ... */
const char* kiln_status_string(kiln_status status);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_H */
