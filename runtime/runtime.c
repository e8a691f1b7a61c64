/* runtime.c — kiln's C runtime for compiled models (docs/RUNTIME.md).
 *
 * Map: kiln_create() (bottom) validates the model, allocates the instance, its arena and its
 * worker threads, then runs the model once on zero inputs (the warm-up) to learn and reserve
 * the scratch blocks its kernels ask halide_malloc for. kiln_run() calls the glue's run() with
 * the instance as Halide's user_context. The Halide hooks (installed once, process-wide, with
 * the runtime's setter functions) route every callback back to the instance through that
 * user_context:
 *   - scratch memory: scratch_malloc / scratch_free, a block cache filled by the warm-up;
 *   - threads: pool_do_par_for / pool_do_parallel_tasks, the instance's own worker pool;
 *   - errors: on_halide_error, the instance's message buffer.
 *
 * Plain C99 plus pthreads: it is compiled by `kiln compile` with the target's C compiler, so it
 * declares the few Halide runtime functions it calls itself instead of including
 * HalideRuntime.h (Halide 14's declarations). */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "kiln/model_def.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define KILN_THREAD_LOCAL _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define KILN_THREAD_LOCAL __thread
#else
#error "kiln runtime: no thread-local storage keyword for this compiler"
#endif

/* ---- The Halide 14 runtime functions kiln uses (HalideRuntime.h) ---------------------------- */

typedef int (*halide_task_t)(void* user_context, int task_number, uint8_t* closure);
typedef int (*halide_loop_task_t)(void* user_context, int min, int extent, uint8_t* closure,
                                  void* task_parent);
struct halide_semaphore_t;
struct halide_semaphore_acquire_t {
    struct halide_semaphore_t* semaphore;
    int count;
};
struct halide_parallel_task_t {
    halide_loop_task_t fn;
    uint8_t* closure;
    const char* name;
    struct halide_semaphore_acquire_t* semaphores;
    int num_semaphores;
    int min, extent;
    int min_threads;
    _Bool serial;
};
typedef void (*halide_error_handler_t)(void*, const char*);
typedef void* (*halide_malloc_t)(void*, size_t);
typedef void (*halide_free_t)(void*, void*);
typedef int (*halide_do_par_for_t)(void*, halide_task_t, int, int, uint8_t*);
typedef int (*halide_do_task_t)(void*, halide_task_t, int, uint8_t*);
typedef int (*halide_do_loop_task_t)(void*, halide_loop_task_t, int, int, uint8_t*, void*);
typedef int (*halide_do_parallel_tasks_t)(void*, int, struct halide_parallel_task_t*, void*);
typedef int (*halide_semaphore_init_t)(struct halide_semaphore_t*, int);
typedef int (*halide_semaphore_release_t)(struct halide_semaphore_t*, int);
typedef _Bool (*halide_semaphore_try_acquire_t)(struct halide_semaphore_t*, int);

extern halide_error_handler_t halide_set_error_handler(halide_error_handler_t handler);
extern halide_malloc_t halide_set_custom_malloc(halide_malloc_t user_malloc);
extern halide_free_t halide_set_custom_free(halide_free_t user_free);
extern void halide_set_custom_parallel_runtime(halide_do_par_for_t, halide_do_task_t,
                                               halide_do_loop_task_t, halide_do_parallel_tasks_t,
                                               halide_semaphore_init_t,
                                               halide_semaphore_try_acquire_t,
                                               halide_semaphore_release_t);
extern int halide_default_do_par_for(void*, halide_task_t, int, int, uint8_t*);
extern int halide_default_do_task(void*, halide_task_t, int, uint8_t*);
extern int halide_default_do_loop_task(void*, halide_loop_task_t, int, int, uint8_t*, void*);
extern int halide_default_do_parallel_tasks(void*, int, struct halide_parallel_task_t*, void*);
extern int halide_default_semaphore_init(struct halide_semaphore_t*, int);
extern int halide_default_semaphore_release(struct halide_semaphore_t*, int);
extern _Bool halide_default_semaphore_try_acquire(struct halide_semaphore_t*, int);

/* halide_error_code_generic_error: what a hook returns for a failure of kiln's own. */
#define KILN_HALIDE_GENERIC_ERROR (-1)

/* ---- The instance ------------------------------------------------------------------------- */

#define KILN_MAGIC 0x6b696c6eu /* "kiln": marks a user_context as a kiln instance */
#define KILN_MAX_THREADS 1024
#define KILN_ERROR_CHARS 1024
#define KILN_ALIGN 64
/* Halide may read up to 8 bytes either side of a halide_malloc block (HalideRuntime.h); a whole
 * alignment unit each side keeps those reads inside the allocation. */
#define KILN_GUARD 64

typedef struct scratch_block {
    void* raw; /* what malloc returned */
    uint8_t* data;
    size_t bytes; /* the size it was made for: requests match it exactly first */
    int in_use;
} scratch_block;

/* What the warm-up saw for one request size. Requests made inside parallel tasks are counted
 * per thread: another run may spread the same tasks over more threads at once, so the cache
 * keeps a per-thread peak for every thread of the instance. */
typedef struct scratch_size {
    size_t bytes;
    int live_outside; /* live requests made outside parallel tasks */
    int peak_outside;
    int peak_total;
    int peak_per_thread;
    int* live_per_thread; /* [threads] */
} scratch_size;

typedef struct work_pool {
    pthread_t* workers; /* threads - 1 of them; the caller is the last thread */
    int num_workers;
    int started;
    int64_t spin_ns; /* how long an idle thread polls for work before it sleeps */
    pthread_mutex_t mutex;
    pthread_cond_t wake; /* a job was posted, or stop */
    pthread_cond_t done; /* the last worker left the job */
    int sleepers;        /* workers waiting on `wake`; under the mutex */
    /* Read and written with atomics, so that a polling thread needs no lock: */
    unsigned long generation; /* bumped when a job is posted */
    int stop;
    int next;   /* the job's next task to claim */
    int busy;   /* workers still in the job */
    int status; /* the job's first failure */
    /* The current job, written before `generation` is bumped: */
    halide_task_t task;
    uint8_t* closure;
    int end;
} work_pool;

struct kiln_instance {
    uint32_t magic;
    const kiln_model_def* def;
    int threads;
    uint8_t* arena_raw;
    uint8_t* arena;

    pthread_mutex_t run_mutex; /* one kiln_run at a time */
    pthread_mutex_t mutex;     /* the scratch cache and the error message */
    int warming_up;            /* scratch requests may allocate */
    scratch_block* blocks;
    int num_blocks, cap_blocks;
    scratch_size* sizes;
    int num_sizes, cap_sizes;
    int scratch_failed; /* the warm-up could not allocate */

    work_pool pool;

    int has_error;
    char error[KILN_ERROR_CHARS];
};

/* Which instance's parallel task this thread is running, and as which of its threads. */
static KILN_THREAD_LOCAL const kiln_instance* tls_task_instance;
static KILN_THREAD_LOCAL int tls_task_thread;
/* The message of this thread's last failed kiln_create() (or call without an instance). */
static KILN_THREAD_LOCAL char tls_error[KILN_ERROR_CHARS];

static void format_into(char* dst, const char* fmt, va_list args) {
    vsnprintf(dst, KILN_ERROR_CHARS, fmt, args);
}

static kiln_status thread_fail(kiln_status status, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    format_into(tls_error, fmt, args);
    va_end(args);
    return status;
}

/* Records the instance's error unless one is already there: the first failure of a run is the
 * one worth reading (a failing parallel loop reports from several threads). */
static void instance_error(kiln_instance* m, const char* fmt, ...) {
    va_list args;
    pthread_mutex_lock(&m->mutex);
    if (!m->has_error) {
        va_start(args, fmt);
        format_into(m->error, fmt, args);
        va_end(args);
        m->has_error = 1;
    }
    pthread_mutex_unlock(&m->mutex);
}

static kiln_status instance_fail(const kiln_instance* cm, kiln_status status, const char* fmt,
                                 ...) {
    /* Instances are never const objects: the const in the query API is for callers. */
    kiln_instance* m = (kiln_instance*)cm;
    va_list args;
    pthread_mutex_lock(&m->mutex);
    va_start(args, fmt);
    format_into(m->error, fmt, args);
    va_end(args);
    m->has_error = 1;
    pthread_mutex_unlock(&m->mutex);
    return status;
}

static void clear_error(kiln_instance* m) {
    pthread_mutex_lock(&m->mutex);
    m->error[0] = '\0';
    m->has_error = 0;
    pthread_mutex_unlock(&m->mutex);
}

/* The instance behind a user_context, or NULL when the caller is not a kiln kernel (another
 * user of the same Halide runtime, with a NULL context). */
static kiln_instance* instance_of(void* user_context) {
    kiln_instance* m = (kiln_instance*)user_context;
    return m != NULL && m->magic == KILN_MAGIC ? m : NULL;
}

static void* aligned_alloc_raw(size_t bytes, void** raw) {
    uintptr_t p;
    if (bytes > (size_t)-1 - 2 * KILN_GUARD - KILN_ALIGN) return NULL;
    *raw = malloc(bytes + 2 * KILN_GUARD + KILN_ALIGN);
    if (*raw == NULL) return NULL;
    p = ((uintptr_t)*raw + KILN_GUARD + KILN_ALIGN - 1) & ~(uintptr_t)(KILN_ALIGN - 1);
    return (void*)p;
}

/* ---- Scratch memory: halide_malloc / halide_free ------------------------------------------- */

static scratch_size* find_size(kiln_instance* m, size_t bytes) {
    int i;
    for (i = 0; i < m->num_sizes; ++i) {
        if (m->sizes[i].bytes == bytes) return &m->sizes[i];
    }
    if (m->num_sizes == m->cap_sizes) {
        int cap = m->cap_sizes ? 2 * m->cap_sizes : 16;
        scratch_size* grown = (scratch_size*)realloc(m->sizes, (size_t)cap * sizeof(*grown));
        if (grown == NULL) return NULL;
        m->sizes = grown;
        m->cap_sizes = cap;
    }
    {
        scratch_size* s = &m->sizes[m->num_sizes];
        memset(s, 0, sizeof(*s));
        s->bytes = bytes;
        s->live_per_thread = (int*)calloc((size_t)m->threads, sizeof(int));
        if (s->live_per_thread == NULL) return NULL;
        ++m->num_sizes;
        return s;
    }
}

static scratch_block* new_block(kiln_instance* m, size_t bytes) {
    scratch_block* b;
    if (m->num_blocks == m->cap_blocks) {
        int cap = m->cap_blocks ? 2 * m->cap_blocks : 16;
        scratch_block* grown = (scratch_block*)realloc(m->blocks, (size_t)cap * sizeof(*grown));
        if (grown == NULL) return NULL;
        m->blocks = grown;
        m->cap_blocks = cap;
    }
    b = &m->blocks[m->num_blocks];
    b->data = (uint8_t*)aligned_alloc_raw(bytes, &b->raw);
    if (b->data == NULL) return NULL;
    b->bytes = bytes;
    b->in_use = 0;
    ++m->num_blocks;
    return b;
}

/* The free block for a request: one made for exactly this size, else the smallest larger one. */
static scratch_block* take_block(kiln_instance* m, size_t bytes) {
    scratch_block* best = NULL;
    int i;
    for (i = 0; i < m->num_blocks; ++i) {
        scratch_block* b = &m->blocks[i];
        if (b->in_use || b->bytes < bytes) continue;
        if (b->bytes == bytes) return b;
        if (best == NULL || b->bytes < best->bytes) best = b;
    }
    return best;
}

static void note_request(kiln_instance* m, size_t bytes, int delta) {
    scratch_size* s = find_size(m, bytes);
    int live_total = 0, t;
    if (s == NULL) {
        m->scratch_failed = 1;
        return;
    }
    if (tls_task_instance == m) {
        int* live = &s->live_per_thread[tls_task_thread];
        *live += delta;
        if (*live > s->peak_per_thread) s->peak_per_thread = *live;
    } else {
        s->live_outside += delta;
        if (s->live_outside > s->peak_outside) s->peak_outside = s->live_outside;
    }
    live_total = s->live_outside;
    for (t = 0; t < m->threads; ++t)
        live_total += s->live_per_thread[t];
    if (live_total > s->peak_total) s->peak_total = live_total;
}

static halide_malloc_t previous_malloc;
static halide_free_t previous_free;

static void* scratch_malloc(void* user_context, size_t bytes) {
    kiln_instance* m = instance_of(user_context);
    scratch_block* b;
    void* data = NULL;
    if (m == NULL) return previous_malloc(user_context, bytes);
    pthread_mutex_lock(&m->mutex);
    b = take_block(m, bytes);
    if (b == NULL && m->warming_up) b = new_block(m, bytes);
    if (b != NULL) {
        b->in_use = 1;
        data = b->data; /* b itself moves when another thread's request grows the array */
        if (m->warming_up) note_request(m, b->bytes, +1);
    } else if (m->warming_up) {
        m->scratch_failed = 1;
    }
    pthread_mutex_unlock(&m->mutex);
    if (data == NULL && !m->warming_up) {
        instance_error(m,
                       "%s: a kernel asked for %lu bytes of scratch memory that the warm-up run "
                       "of kiln_create() did not reserve",
                       m->def->name, (unsigned long)bytes);
    }
    return data;
}

static void scratch_free(void* user_context, void* ptr) {
    kiln_instance* m = instance_of(user_context);
    int i;
    if (m == NULL) {
        previous_free(user_context, ptr);
        return;
    }
    if (ptr == NULL) return;
    pthread_mutex_lock(&m->mutex);
    for (i = 0; i < m->num_blocks; ++i) {
        if (m->blocks[i].data == (uint8_t*)ptr) {
            m->blocks[i].in_use = 0;
            if (m->warming_up) note_request(m, m->blocks[i].bytes, -1);
            break;
        }
    }
    pthread_mutex_unlock(&m->mutex);
}

/* After the warm-up: enough blocks of every size for a run whose parallel tasks land on all the
 * instance's threads at once. Returns 0 when out of memory. */
static int reserve_scratch(kiln_instance* m) {
    int i, j;
    for (i = 0; i < m->num_sizes; ++i) {
        const scratch_size* s = &m->sizes[i];
        int want = s->peak_outside + s->peak_per_thread * m->threads, have = 0;
        if (want < s->peak_total) want = s->peak_total;
        for (j = 0; j < m->num_blocks; ++j)
            have += m->blocks[j].bytes == s->bytes;
        for (; have < want; ++have) {
            if (new_block(m, s->bytes) == NULL) return 0;
        }
    }
    for (i = 0; i < m->num_sizes; ++i)
        free(m->sizes[i].live_per_thread);
    free(m->sizes);
    m->sizes = NULL;
    m->num_sizes = m->cap_sizes = 0;
    return 1;
}

/* ---- Threads: halide_do_par_for / halide_do_parallel_tasks --------------------------------- */

/* The pool's threads poll for a while before they sleep: a model runs dozens of parallel
 * loops back to back, and waking a sleeping thread costs more than a small loop's work (tens of
 * microseconds on a virtual machine, twice per loop: the post and the join). GCC and Clang
 * atomics; a compiler without them cannot build the runtime. */
#if !defined(__GNUC__) && !defined(__clang__)
#error "kiln runtime: needs the __atomic builtins of GCC or Clang"
#endif
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* 64 bits: a 32-bit long overflows in nanoseconds. */
static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Polls until ready(p, arg) (returns 1) or spin_ns has passed (returns 0). */
static int poll_until(int (*ready)(work_pool*, unsigned long), work_pool* p, unsigned long arg,
                      int64_t spin_ns) {
    int64_t deadline = 0;
    unsigned i;
    for (i = 1;; ++i) {
        if (ready(p, arg)) return 1;
        if (spin_ns <= 0) return 0;
        CPU_RELAX();
        if ((i & 63) == 0) {
            int64_t t = now_ns();
            if (deadline == 0)
                deadline = t + spin_ns;
            else if (t >= deadline)
                return 0;
        }
    }
}

/* A job newer than `seen` was posted, or the pool stops. */
static int job_posted(work_pool* p, unsigned long seen) {
    return LOAD(p->generation) != seen || LOAD(p->stop);
}

/* Every worker has left the current job. */
static int job_left(work_pool* p, unsigned long unused) {
    (void)unused;
    return LOAD(p->busy) == 0;
}

/* Runs tasks of the current job until none is left; returns the first failure's code. */
static int run_tasks(kiln_instance* m, int thread) {
    work_pool* p = &m->pool;
    const kiln_instance* outer_instance = tls_task_instance;
    int outer_thread = tls_task_thread;
    int status = 0;
    tls_task_instance = m;
    tls_task_thread = thread;
    /* After a failure the rest of the loop is skipped, as Halide's own pool does. */
    while (LOAD(p->status) == 0) {
        int index = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED), rc;
        if (index >= p->end) break;
        rc = p->task(m, index, p->closure);
        if (rc != 0) {
            int none = 0;
            __atomic_compare_exchange_n(&p->status, &none, rc, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE);
            status = rc;
        }
    }
    tls_task_instance = outer_instance;
    tls_task_thread = outer_thread;
    return status;
}

/* Waits for a job newer than `seen` (or stop): polls, then sleeps on `wake`. */
static unsigned long await_job(work_pool* p, unsigned long seen) {
    if (poll_until(job_posted, p, seen, p->spin_ns)) return LOAD(p->generation);
    pthread_mutex_lock(&p->mutex);
    ++p->sleepers;
    /* The poster bumps `generation` before it reads `sleepers` under the mutex, so either this
     * sees the new generation or the poster sees this sleeper and wakes it. */
    while (!LOAD(p->stop) && LOAD(p->generation) == seen)
        pthread_cond_wait(&p->wake, &p->mutex);
    --p->sleepers;
    pthread_mutex_unlock(&p->mutex);
    return LOAD(p->generation);
}

static void* worker_main(void* arg) {
    kiln_instance* m = (kiln_instance*)arg;
    work_pool* p = &m->pool;
    int thread;
    /* Not the current generation: the first job may have been posted before this thread got
     * here. */
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mutex);
    thread = p->started++;
    pthread_mutex_unlock(&p->mutex);
    for (;;) {
        seen = await_job(p, seen);
        if (LOAD(p->stop)) break;
        run_tasks(m, thread);
        if (__atomic_sub_fetch(&p->busy, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mutex);
        }
    }
    return NULL;
}

static int run_inline(kiln_instance* m, halide_task_t task, int min, int size, uint8_t* closure) {
    const kiln_instance* outer_instance = tls_task_instance;
    int outer_thread = tls_task_thread;
    int i, rc = 0;
    if (outer_instance != m) {
        tls_task_instance = m;
        tls_task_thread = m->threads - 1;
    }
    for (i = min; i < min + size && rc == 0; ++i)
        rc = task(m, i, closure);
    tls_task_instance = outer_instance;
    tls_task_thread = outer_thread;
    return rc;
}

static int pool_do_par_for(void* user_context, halide_task_t task, int min, int size,
                           uint8_t* closure) {
    kiln_instance* m = instance_of(user_context);
    work_pool* p;
    if (m == NULL) return halide_default_do_par_for(user_context, task, min, size, closure);
    p = &m->pool;
    /* A parallel loop inside a task runs inline on that task's thread: the pool is already
     * busy with the outer loop, and this keeps one job at a time. */
    if (p->num_workers == 0 || size <= 1 || tls_task_instance == m) {
        return run_inline(m, task, min, size, closure);
    }
    p->task = task;
    p->closure = closure;
    p->end = min + size;
    STORE(p->next, min);
    STORE(p->status, 0);
    STORE(p->busy, p->num_workers);
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&p->mutex);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);

    run_tasks(m, m->threads - 1);

    /* The workers' last tasks: poll, then sleep on `done`, which the last worker signals under
     * the mutex after its decrement. */
    if (!poll_until(job_left, p, 0, p->spin_ns)) {
        pthread_mutex_lock(&p->mutex);
        while (LOAD(p->busy) > 0)
            pthread_cond_wait(&p->done, &p->mutex);
        pthread_mutex_unlock(&p->mutex);
    }
    return LOAD(p->status);
}

/* Halide 14 calls halide_do_parallel_tasks instead of halide_do_par_for only for async stages
 * (tasks that wait on each other's semaphores) and for loops nested in them (LowerParallelTasks
 * picks do_par_for for a single task without semaphores and without a task parent). kiln's
 * schedules use no async, so only tasks that never wait are supported; they run in order on
 * the calling thread, which is correct for both serial and parallel tasks. A task that would
 * wait on a semaphore is refused instead of deadlocking. */
static int pool_do_parallel_tasks(void* user_context, int num_tasks,
                                  struct halide_parallel_task_t* tasks, void* task_parent) {
    kiln_instance* m = instance_of(user_context);
    int i, j;
    if (m == NULL) {
        return halide_default_do_parallel_tasks(user_context, num_tasks, tasks, task_parent);
    }
    for (i = 0; i < num_tasks; ++i) {
        if (tasks[i].num_semaphores != 0 || tasks[i].min_threads > 1) {
            instance_error(m,
                           "%s: kernel task '%s' needs async execution (semaphores, %d threads), "
                           "which the kiln runtime does not support",
                           m->def->name, tasks[i].name ? tasks[i].name : "?", tasks[i].min_threads);
            return KILN_HALIDE_GENERIC_ERROR;
        }
    }
    for (i = 0; i < num_tasks; ++i) {
        const struct halide_parallel_task_t* t = &tasks[i];
        for (j = t->min; j < t->min + t->extent; ++j) {
            int rc = t->fn(user_context, j, 1, t->closure, task_parent);
            if (rc != 0) return rc;
        }
    }
    return 0;
}

static int start_pool(kiln_instance* m) {
    work_pool* p = &m->pool;
    int i;
    p->num_workers = 0;
    if (m->threads <= 1) return 1;
    p->workers = (pthread_t*)calloc((size_t)(m->threads - 1), sizeof(pthread_t));
    if (p->workers == NULL) return 0;
    for (i = 0; i < m->threads - 1; ++i) {
        if (pthread_create(&p->workers[i], NULL, worker_main, m) != 0) return 0;
        ++p->num_workers;
    }
    return 1;
}

static void stop_pool(kiln_instance* m) {
    work_pool* p = &m->pool;
    int i;
    pthread_mutex_lock(&p->mutex);
    STORE(p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (i = 0; i < p->num_workers; ++i)
        pthread_join(p->workers[i], NULL);
    free(p->workers);
    p->workers = NULL;
    p->num_workers = 0;
}

/* ---- Errors: halide_error ------------------------------------------------------------------ */

static halide_error_handler_t previous_error_handler;

static void on_halide_error(void* user_context, const char* message) {
    kiln_instance* m = instance_of(user_context);
    size_t n;
    if (m == NULL) {
        previous_error_handler(user_context, message);
        return;
    }
    /* Halide's messages end in a newline; kiln's do not. */
    n = strlen(message);
    while (n > 0 && message[n - 1] == '\n')
        --n;
    instance_error(m, "%.*s", (int)n, message);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

/* The setters change process-wide function pointers of the Halide runtime linked with the
 * model; every hook falls back to what was there for a context that is not a kiln instance. */
static void install_hooks(void) {
    previous_error_handler = halide_set_error_handler(on_halide_error);
    previous_malloc = halide_set_custom_malloc(scratch_malloc);
    previous_free = halide_set_custom_free(scratch_free);
    halide_set_custom_parallel_runtime(
        pool_do_par_for, halide_default_do_task, halide_default_do_loop_task,
        pool_do_parallel_tasks, halide_default_semaphore_init, halide_default_semaphore_try_acquire,
        halide_default_semaphore_release);
}

/* ---- The API ------------------------------------------------------------------------------- */

static size_t dtype_bytes(int32_t dtype) {
    /* Indexed by kiln_dtype: F32, I64, I32, I8, U8. */
    static const size_t bytes[] = {4, 8, 4, 1, 1};
    return dtype >= 0 && dtype < (int32_t)(sizeof(bytes) / sizeof(bytes[0])) ? bytes[dtype] : 0;
}

/* Bytes of a dense tensor, or 0 (with *why set) when the definition is not usable. */
static size_t tensor_bytes(const kiln_tensor_def* t, const char** why) {
    size_t bytes = dtype_bytes(t->dtype);
    int i;
    if (bytes == 0) {
        *why = "an unknown dtype";
        return 0;
    }
    if (t->rank < 0 || t->rank > KILN_MAX_RANK) {
        *why = "a rank outside 0..KILN_MAX_RANK";
        return 0;
    }
    for (i = 0; i < t->rank; ++i) {
        if (t->shape[i] < 0) {
            *why = "a negative (dynamic) dimension";
            return 0;
        }
        if (t->shape[i] != 0 && bytes > (size_t)-1 / (size_t)t->shape[i]) {
            *why = "a size that overflows";
            return 0;
        }
        bytes *= (size_t)t->shape[i];
    }
    return bytes;
}

static kiln_status check_tensors(const kiln_model_def* def, const kiln_tensor_def* tensors,
                                 int32_t count, const char* kind) {
    int32_t i;
    if (count < 0 || (count > 0 && tensors == NULL)) {
        return thread_fail(KILN_INVALID_ARGUMENT, "kiln_create: model '%s' has a bad %s list",
                           def->name, kind);
    }
    for (i = 0; i < count; ++i) {
        const char* why = NULL;
        tensor_bytes(&tensors[i], &why);
        if (why != NULL) {
            return thread_fail(KILN_INVALID_ARGUMENT, "kiln_create: %s %d of model '%s' has %s",
                               kind, (int)i, def->name, why);
        }
    }
    return KILN_OK;
}

void kiln_options_init(kiln_options* options) {
    if (options == NULL) return;
    options->threads = 0;
    options->spin_us = 0;
}

static void free_instance(kiln_instance* m) {
    int i;
    if (m == NULL) return;
    stop_pool(m);
    for (i = 0; i < m->num_blocks; ++i)
        free(m->blocks[i].raw);
    free(m->blocks);
    for (i = 0; i < m->num_sizes; ++i)
        free(m->sizes[i].live_per_thread);
    free(m->sizes);
    free(m->arena_raw);
    pthread_cond_destroy(&m->pool.done);
    pthread_cond_destroy(&m->pool.wake);
    pthread_mutex_destroy(&m->pool.mutex);
    pthread_mutex_destroy(&m->mutex);
    pthread_mutex_destroy(&m->run_mutex);
    m->magic = 0;
    free(m);
}

/* Runs the model once on zeros, letting scratch requests allocate, then reserves what any run
 * needs. */
static kiln_status warm_up(kiln_instance* m) {
    const kiln_model_def* def = m->def;
    int32_t n = def->num_inputs + def->num_outputs, i;
    void** buffers = (void**)calloc((size_t)(n > 0 ? n : 1), sizeof(void*));
    kiln_status status = KILN_OK;
    int rc;
    if (buffers == NULL) return thread_fail(KILN_OUT_OF_MEMORY, "kiln_create: out of memory");
    for (i = 0; i < n && status == KILN_OK; ++i) {
        const kiln_tensor_def* t =
            i < def->num_inputs ? &def->inputs[i] : &def->outputs[i - def->num_inputs];
        const char* why = NULL;
        size_t bytes = tensor_bytes(t, &why);
        buffers[i] = calloc(bytes > 0 ? bytes : 1, 1);
        if (buffers[i] == NULL) {
            status = thread_fail(KILN_OUT_OF_MEMORY,
                                 "kiln_create: out of memory for the warm-up's %lu-byte tensor",
                                 (unsigned long)bytes);
        }
    }
    if (status == KILN_OK) {
        m->warming_up = 1;
        rc = def->run(m, m->arena, (const void* const*)buffers,
                      (void* const*)(buffers + def->num_inputs));
        m->warming_up = 0;
        if (m->scratch_failed) {
            status =
                thread_fail(KILN_OUT_OF_MEMORY,
                            "kiln_create: out of memory for the scratch memory of '%s'", def->name);
        } else if (rc != 0) {
            status = thread_fail(KILN_KERNEL_ERROR,
                                 "kiln_create: the warm-up run of '%s' failed (Halide error %d): "
                                 "%s",
                                 def->name, rc, m->has_error ? m->error : "no message");
        } else if (!reserve_scratch(m)) {
            status =
                thread_fail(KILN_OUT_OF_MEMORY,
                            "kiln_create: out of memory for the scratch memory of '%s'", def->name);
        }
    }
    for (i = 0; i < n; ++i)
        free(buffers[i]);
    free(buffers);
    clear_error(m);
    return status;
}

kiln_status kiln_create(const kiln_model_def* model, const kiln_options* options,
                        kiln_instance** out) {
    kiln_options defaults;
    kiln_instance* m;
    kiln_status status;
    int threads;
    tls_error[0] = '\0';
    if (out == NULL) return thread_fail(KILN_INVALID_ARGUMENT, "kiln_create: out is NULL");
    *out = NULL;
    if (model == NULL) return thread_fail(KILN_INVALID_ARGUMENT, "kiln_create: model is NULL");
    if (model->abi != KILN_MODEL_ABI) {
        return thread_fail(KILN_ABI_MISMATCH,
                           "kiln_create: the model was generated for runtime ABI %u, this "
                           "runtime implements ABI %u; recompile the model with this kiln",
                           (unsigned)model->abi, (unsigned)KILN_MODEL_ABI);
    }
    if (model->run == NULL || model->name == NULL) {
        return thread_fail(KILN_INVALID_ARGUMENT, "kiln_create: the model has no run function");
    }
    status = check_tensors(model, model->inputs, model->num_inputs, "input");
    if (status != KILN_OK) return status;
    status = check_tensors(model, model->outputs, model->num_outputs, "output");
    if (status != KILN_OK) return status;
    if (options == NULL) {
        kiln_options_init(&defaults);
        options = &defaults;
    }
    threads = options->threads;
    if (threads < 0 || threads > KILN_MAX_THREADS) {
        return thread_fail(KILN_INVALID_ARGUMENT,
                           "kiln_create: threads = %d; it must be 0 (one per core) to %d",
                           (int)threads, KILN_MAX_THREADS);
    }
    if (options->spin_us < -1 || options->spin_us > 1000000) {
        return thread_fail(KILN_INVALID_ARGUMENT,
                           "kiln_create: spin_us = %d; it must be -1 (never poll), 0 (the "
                           "default, %d) or 1 to 1000000 microseconds",
                           (int)options->spin_us, KILN_DEFAULT_SPIN_US);
    }
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores < 1 ? 1 : cores > KILN_MAX_THREADS ? KILN_MAX_THREADS : (int)cores;
    }
    if ((uint64_t)(size_t)model->arena_bytes != model->arena_bytes) {
        return thread_fail(KILN_OUT_OF_MEMORY, "kiln_create: an arena of %llu bytes is too large",
                           (unsigned long long)model->arena_bytes);
    }

    pthread_once(&hooks_once, install_hooks);

    m = (kiln_instance*)calloc(1, sizeof(*m));
    if (m == NULL) return thread_fail(KILN_OUT_OF_MEMORY, "kiln_create: out of memory");
    m->magic = KILN_MAGIC;
    m->def = model;
    m->threads = threads;
    m->pool.spin_ns = options->spin_us == 0  ? (int64_t)KILN_DEFAULT_SPIN_US * 1000
                      : options->spin_us < 0 ? 0
                                             : (int64_t)options->spin_us * 1000;
    pthread_mutex_init(&m->run_mutex, NULL);
    pthread_mutex_init(&m->mutex, NULL);
    pthread_mutex_init(&m->pool.mutex, NULL);
    pthread_cond_init(&m->pool.wake, NULL);
    pthread_cond_init(&m->pool.done, NULL);
    m->arena = (uint8_t*)aligned_alloc_raw((size_t)model->arena_bytes, (void**)&m->arena_raw);
    if (m->arena == NULL) {
        free_instance(m);
        return thread_fail(KILN_OUT_OF_MEMORY,
                           "kiln_create: out of memory for the %llu-byte activation arena of '%s'",
                           (unsigned long long)model->arena_bytes, model->name);
    }
    if (!start_pool(m)) {
        free_instance(m);
        return thread_fail(KILN_OUT_OF_MEMORY, "kiln_create: could not start %d worker threads",
                           threads - 1);
    }
    status = warm_up(m);
    if (status != KILN_OK) {
        free_instance(m);
        return status;
    }
    *out = m;
    return KILN_OK;
}

void kiln_destroy(kiln_instance* instance) {
    free_instance(instance);
}

int32_t kiln_num_inputs(const kiln_instance* instance) {
    return instance != NULL ? instance->def->num_inputs : -1;
}

int32_t kiln_num_outputs(const kiln_instance* instance) {
    return instance != NULL ? instance->def->num_outputs : -1;
}

static kiln_status tensor_info(const kiln_instance* m, int32_t index, kiln_tensor_info* info,
                               int output) {
    const char* fn = output ? "kiln_output_info" : "kiln_input_info";
    int32_t count;
    const kiln_tensor_def* t;
    int i;
    if (m == NULL) return thread_fail(KILN_INVALID_ARGUMENT, "%s: instance is NULL", fn);
    if (info == NULL) return instance_fail(m, KILN_INVALID_ARGUMENT, "%s: info is NULL", fn);
    count = output ? m->def->num_outputs : m->def->num_inputs;
    if (index < 0 || index >= count) {
        return instance_fail(m, KILN_INVALID_ARGUMENT,
                             "%s: index %d is out of range; '%s' has %d %s", fn, (int)index,
                             m->def->name, (int)count, output ? "outputs" : "inputs");
    }
    t = output ? &m->def->outputs[index] : &m->def->inputs[index];
    memset(info, 0, sizeof(*info));
    info->name = t->name;
    info->dtype = (kiln_dtype)t->dtype;
    info->rank = t->rank;
    for (i = 0; i < t->rank; ++i)
        info->shape[i] = t->shape[i];
    return KILN_OK;
}

kiln_status kiln_input_info(const kiln_instance* instance, int32_t index, kiln_tensor_info* info) {
    return tensor_info(instance, index, info, 0);
}

kiln_status kiln_output_info(const kiln_instance* instance, int32_t index, kiln_tensor_info* info) {
    return tensor_info(instance, index, info, 1);
}

kiln_status kiln_run(kiln_instance* instance, const void* const* inputs, void* const* outputs) {
    kiln_instance* m = instance;
    const kiln_model_def* def;
    kiln_status status = KILN_OK;
    int32_t i;
    int rc;
    if (m == NULL) return thread_fail(KILN_INVALID_ARGUMENT, "kiln_run: instance is NULL");
    def = m->def;
    if (pthread_mutex_trylock(&m->run_mutex) != 0) {
        /* Not recorded in the instance: its message belongs to the run in progress. */
        return thread_fail(KILN_INVALID_ARGUMENT,
                           "kiln_run: the instance is already running on another thread");
    }
    clear_error(m);
    if ((inputs == NULL && def->num_inputs > 0) || (outputs == NULL && def->num_outputs > 0)) {
        status = instance_fail(m, KILN_INVALID_ARGUMENT, "kiln_run: %s is NULL",
                               inputs == NULL && def->num_inputs > 0 ? "inputs" : "outputs");
    }
    for (i = 0; i < def->num_inputs && status == KILN_OK; ++i) {
        if (inputs[i] == NULL) {
            status = instance_fail(m, KILN_INVALID_ARGUMENT, "kiln_run: inputs[%d] ('%s') is NULL",
                                   (int)i, def->inputs[i].name);
        }
    }
    for (i = 0; i < def->num_outputs && status == KILN_OK; ++i) {
        if (outputs[i] == NULL) {
            status = instance_fail(m, KILN_INVALID_ARGUMENT, "kiln_run: outputs[%d] ('%s') is NULL",
                                   (int)i, def->outputs[i].name);
        }
    }
    if (status == KILN_OK) {
        /* Every block is free between runs, even if a failed run left one marked in use. */
        for (i = 0; i < m->num_blocks; ++i)
            m->blocks[i].in_use = 0;
        rc = def->run(m, m->arena, inputs, outputs);
        if (rc != 0) {
            status = KILN_KERNEL_ERROR;
            pthread_mutex_lock(&m->mutex);
            if (!m->has_error) {
                snprintf(m->error, KILN_ERROR_CHARS, "%s: a kernel failed with Halide error %d",
                         def->name, rc);
                m->has_error = 1;
            }
            pthread_mutex_unlock(&m->mutex);
        }
    }
    pthread_mutex_unlock(&m->run_mutex);
    return status;
}

const char* kiln_last_error(const kiln_instance* instance) {
    return instance != NULL ? instance->error : tls_error;
}

const char* kiln_status_string(kiln_status status) {
    /* Indexed by kiln_status. */
    static const char* const names[] = {"ok", "invalid argument", "out of memory", "kernel error",
                                        "ABI mismatch"};
    int i = (int)status;
    return i >= 0 && i < (int)(sizeof(names) / sizeof(names[0])) ? names[i] : "unknown status";
}
