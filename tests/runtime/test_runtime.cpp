// The C runtime end to end, the way `kiln compile` uses it: two Halide kernels AOT-compiled
// with user_context and no_runtime, one standalone Halide runtime, hand-written glue defining a
// kiln_model_def, and runtime.c, all compiled by the C compiler into a static library that a C
// program links with -lpthread -ldl -lm alone. The C program (kTestProgram) does the checking;
// this file builds it and runs it.
#include <gtest/gtest.h>

#include <Halide.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

constexpr int kRows = 24;
constexpr int kCols = 40;

struct Result {
    int status = -1;
    std::string output;
};

Result shell(const std::string& command) {
    Result r;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return r;
    std::array<char, 4096> chunk;
    size_t n;
    while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0)
        r.output.append(chunk.data(), n);
    int raw = pclose(pipe);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return r;
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
}

// kernel_scale: mid = (a + 1) * 2, through a compute_root intermediate and a per-row
// intermediate inside the parallel loop, both on the heap so that they come from halide_malloc
// (the second one from every worker thread).
// kernel_add: out = mid + b, with a requirement on b that fails at run time.
void compile_kernels(const fs::path& dir, const Halide::Target& target) {
    using namespace Halide;
    Var x("x"), y("y");
    {
        ImageParam a(Float(32), 2, "a");
        Func tmp("tmp"), row("row"), mid("mid");
        tmp(x, y) = a(x, y) + 1.0f;
        row(x, y) = tmp(x, y) * 2.0f;
        mid(x, y) = row(x, y);
        tmp.compute_root().store_in(MemoryType::Heap).parallel(y);
        row.compute_at(mid, y).store_in(MemoryType::Heap);
        mid.parallel(y);
        mid.compile_to_file((dir / "kernel_scale").string(), {a}, "kernel_scale", target);
    }
    {
        ImageParam mid(Float(32), 2, "mid"), b(Float(32), 2, "b");
        Func out("out");
        out(x, y) = require(b(x, y) > -1000.0f, mid(x, y) + b(x, y), "b must stay above -1000, got",
                            b(x, y));
        out.parallel(y);
        out.compile_to_file((dir / "kernel_add").string(), {mid, b}, "kernel_add", target);
    }
}

// What `kiln compile` generates, by hand: dense row-major tensors become halide_buffer_t's
// whose dim[0] is the last (contiguous) axis; the intermediate lives in the arena.
const char* kGlue = R"(/* test glue, written by tests/runtime/test_runtime.cpp */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "HalideRuntime.h"
#include "kiln/model_def.h"
#include "kernel_add.h"
#include "kernel_scale.h"

#define ROWS @ROWS@
#define COLS @COLS@

static const kiln_tensor_def inputs[2] = {{"a", KILN_F32, 2, {ROWS, COLS}},
                                          {"b", KILN_F32, 2, {ROWS, COLS}}};
static const kiln_tensor_def outputs[1] = {{"out", KILN_F32, 2, {ROWS, COLS}}};

static void matrix(halide_buffer_t* buf, halide_dimension_t* dim, const void* data) {
    memset(buf, 0, sizeof(*buf));
    memset(dim, 0, 2 * sizeof(*dim));
    dim[0].extent = COLS;
    dim[0].stride = 1;
    dim[1].extent = ROWS;
    dim[1].stride = COLS;
    buf->host = (uint8_t*)data;
    buf->type.code = halide_type_float;
    buf->type.bits = 32;
    buf->type.lanes = 1;
    buf->dimensions = 2;
    buf->dim = dim;
}

static int run(void* ctx, uint8_t* arena, const void* const* in, void* const* out) {
    halide_buffer_t a, b, mid, o;
    halide_dimension_t da[2], db[2], dm[2], dout[2];
    int rc;
    matrix(&a, da, in[0]);
    matrix(&b, db, in[1]);
    matrix(&mid, dm, arena);
    matrix(&o, dout, out[0]);
    rc = kernel_scale(ctx, &a, &mid);
    if (rc != 0) return rc;
    return kernel_add(ctx, &mid, &b, &o);
}

static const kiln_model_def model = {KILN_MODEL_ABI, "test_model", "host", 2, 1, inputs,
                                     outputs, ROWS * COLS * sizeof(float), run};
const kiln_model_def* kiln_model_test_model(void) { return &model; }

/* A model whose scratch requests grow from run to run: the warm-up cannot cover them. */
static int greedy_calls;
static int greedy_run(void* ctx, uint8_t* arena, const void* const* in, void* const* out) {
    void* p = halide_malloc(ctx, (size_t)64 * ++greedy_calls);
    if (p == NULL) return halide_error_code_out_of_memory;
    halide_free(ctx, p);
    return 0;
}
static const kiln_model_def greedy = {KILN_MODEL_ABI, "greedy", "host", 0, 0, NULL, NULL, 0,
                                      greedy_run};
const kiln_model_def* kiln_model_greedy(void) { return &greedy; }

/* A model whose one output is how many threads ran the tasks of a parallel loop, called
 * through Halide's halide_do_par_for as a kernel does. One instance at a time. */
static pthread_mutex_t seen_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_t seen[64];
static int num_seen;
static int note_thread(void* ctx, int index, uint8_t* closure) {
    struct timespec pause = {0, 300000};
    int i;
    pthread_mutex_lock(&seen_mutex);
    for (i = 0; i < num_seen && !pthread_equal(seen[i], pthread_self()); ++i) {
    }
    if (i == num_seen && num_seen < 64) seen[num_seen++] = pthread_self();
    pthread_mutex_unlock(&seen_mutex);
    nanosleep(&pause, NULL);
    return 0;
}
static int threads_run(void* ctx, uint8_t* arena, const void* const* in, void* const* out) {
    int rc;
    num_seen = 0;
    rc = halide_do_par_for(ctx, note_thread, 0, 64, NULL);
    *(int32_t*)out[0] = num_seen;
    return rc;
}
static const kiln_tensor_def count_def[1] = {{"threads", KILN_I32, 1, {1}}};
static const kiln_model_def threads_model = {KILN_MODEL_ABI, "threads", "host", 0, 1, NULL,
                                             count_def, 0, threads_run};
const kiln_model_def* kiln_model_threads(void) { return &threads_model; }

/* A model of 3000 short parallel loops back to back, as a compiled model's kernels are; every
 * 100th loop has slow tasks, so that a thread outwaits short polling and sleeps. Its output
 * counts the tasks that had not run exactly once when their loop returned. */
static int hits[8];
static int count_task(void* ctx, int index, uint8_t* closure) {
    if (closure != NULL) {
        struct timespec pause = {0, 300000};
        nanosleep(&pause, NULL);
    }
    __atomic_add_fetch(&hits[index], 1, __ATOMIC_SEQ_CST);
    return 0;
}
static int loops_run(void* ctx, uint8_t* arena, const void* const* in, void* const* out) {
    int loop, i, rc = 0, wrong = 0;
    for (loop = 0; loop < 3000 && rc == 0; ++loop) {
        memset(hits, 0, sizeof(hits));
        rc = halide_do_par_for(ctx, count_task, 0, 8, loop % 100 == 99 ? (uint8_t*)hits : NULL);
        for (i = 0; i < 8; ++i)
            wrong += __atomic_load_n(&hits[i], __ATOMIC_SEQ_CST) != 1;
    }
    *(int32_t*)out[0] = wrong;
    return rc;
}
static const kiln_tensor_def wrong_def[1] = {{"wrong", KILN_I32, 1, {1}}};
static const kiln_model_def loops_model = {KILN_MODEL_ABI, "loops", "host", 0, 1, NULL,
                                           wrong_def, 0, loops_run};
const kiln_model_def* kiln_model_loops(void) { return &loops_model; }
)";

// The application side, in C; exits 0 when every check passes.
const char* kTestProgram = R"(/* test program, written by tests/runtime/test_runtime.cpp */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/model_def.h"
#include "kiln/runtime.h"

#define ROWS @ROWS@
#define COLS @COLS@
#define N (ROWS * COLS)

const kiln_model_def* kiln_model_test_model(void);
const kiln_model_def* kiln_model_greedy(void);
const kiln_model_def* kiln_model_threads(void);
const kiln_model_def* kiln_model_loops(void);

/* Every allocation made by the linked objects (kiln, the glue, Halide's runtime), through
 * -Wl,--wrap. */
static long allocations;
#define COUNT() __atomic_add_fetch(&allocations, 1, __ATOMIC_SEQ_CST)
void* __real_malloc(size_t n);
void* __real_calloc(size_t n, size_t size);
void* __real_realloc(void* p, size_t n);
int __real_posix_memalign(void** p, size_t align, size_t n);
void* __wrap_malloc(size_t n) { COUNT(); return __real_malloc(n); }
void* __wrap_calloc(size_t n, size_t size) { COUNT(); return __real_calloc(n, size); }
void* __wrap_realloc(void* p, size_t n) { COUNT(); return __real_realloc(p, n); }
int __wrap_posix_memalign(void** p, size_t align, size_t n) {
    COUNT();
    return __real_posix_memalign(p, align, n);
}
static long allocation_count(void) { return __atomic_load_n(&allocations, __ATOMIC_SEQ_CST); }

static int failures;
#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            printf("FAIL line %d: %s: ", __LINE__, #cond);          \
            printf(__VA_ARGS__);                                    \
            printf("\n");                                           \
            ++failures;                                             \
        }                                                           \
    } while (0)

static float a[N], b[N], expected[N];

static int matches(const float* out) {
    int i;
    for (i = 0; i < N; ++i) {
        if (out[i] != expected[i]) return 0;
    }
    return 1;
}

typedef struct runner {
    kiln_instance* m;
    float out[N];
    int iterations, wrong, failed;
} runner;

static void* run_many(void* arg) {
    runner* r = (runner*)arg;
    const void* in[2] = {a, b};
    void* out[1] = {r->out};
    int i;
    for (i = 0; i < r->iterations; ++i) {
        memset(r->out, 0, sizeof(r->out));
        if (kiln_run(r->m, in, out) != KILN_OK) ++r->failed;
        if (!matches(r->out)) ++r->wrong;
    }
    return NULL;
}

static kiln_instance* create(const kiln_model_def* def, int threads) {
    kiln_options options;
    kiln_instance* m = NULL;
    kiln_status s;
    kiln_options_init(&options);
    options.threads = threads;
    s = kiln_create(def, &options, &m);
    CHECK(s == KILN_OK && m != NULL, "kiln_create(threads=%d): %s", threads, kiln_last_error(NULL));
    return m;
}

int main(void) {
    const kiln_model_def* def = kiln_model_test_model();
    kiln_instance *m1, *m2, *m0, *bad = (kiln_instance*)&failures;
    kiln_tensor_info info;
    kiln_options options;
    float out[N], bad_b[N];
    const void* in[2] = {a, b};
    void* outs[1] = {out};
    long before;
    int i;
    for (i = 0; i < N; ++i) {
        a[i] = (float)(i % 17) - 8.0f;
        b[i] = (float)(i % 5) * 0.25f;
        expected[i] = (a[i] + 1.0f) * 2.0f + b[i];
    }

    /* Instances and what they describe. */
    m1 = create(def, 1);
    m2 = create(def, 2);
    m0 = create(def, 0);
    if (m1 == NULL || m2 == NULL || m0 == NULL) return 1;
    CHECK(kiln_num_inputs(m1) == 2 && kiln_num_outputs(m1) == 1, "counts %d %d",
          kiln_num_inputs(m1), kiln_num_outputs(m1));
    CHECK(kiln_input_info(m1, 1, &info) == KILN_OK, "%s", kiln_last_error(m1));
    CHECK(strcmp(info.name, "b") == 0 && info.dtype == KILN_F32 && info.rank == 2 &&
              info.shape[0] == ROWS && info.shape[1] == COLS,
          "input 1: %s rank %d", info.name, info.rank);
    CHECK(kiln_output_info(m1, 0, &info) == KILN_OK && strcmp(info.name, "out") == 0, "output 0");
    printf("ok: info (2 inputs, 1 output, %dx%d f32)\n", ROWS, COLS);

    /* Correct results, and no allocation in kiln_run. */
    before = allocation_count();
    for (i = 0; i < 5; ++i) {
        kiln_instance* m = i % 3 == 0 ? m1 : i % 3 == 1 ? m2 : m0;
        memset(out, 0, sizeof(out));
        CHECK(kiln_run(m, in, outs) == KILN_OK, "%s", kiln_last_error(m));
        CHECK(matches(out), "run %d: wrong output", i);
        CHECK(kiln_last_error(m)[0] == '\0', "error after success: %s", kiln_last_error(m));
    }
    CHECK(allocation_count() == before, "kiln_run allocated %ld times",
          allocation_count() - before);
    printf("ok: results, no allocation in 5 runs (threads 1, 2, 0)\n");

    /* Two instances with different thread counts, at the same time. */
    {
        static runner r1, r2;
        pthread_t t1, t2;
        r1.m = m1;
        r2.m = m2;
        r1.iterations = r2.iterations = 200;
        before = allocation_count();
        pthread_create(&t1, NULL, run_many, &r1);
        pthread_create(&t2, NULL, run_many, &r2);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        CHECK(allocation_count() == before, "concurrent kiln_run allocated %ld times",
              allocation_count() - before);
        CHECK(r1.failed == 0 && r2.failed == 0, "failed runs: %d %d", r1.failed, r2.failed);
        CHECK(r1.wrong == 0 && r2.wrong == 0, "wrong results: %d %d", r1.wrong, r2.wrong);
        CHECK(memcmp(r1.out, r2.out, sizeof(r1.out)) == 0, "threads 1 and 2 differ");
        printf("ok: 2 x 200 concurrent runs (threads 1 and 2) agree, no allocation\n");
    }

    /* Each instance runs parallel loops on its own number of threads. */
    {
        static const int threads[3] = {1, 2, 4};
        int32_t used[3] = {0, 0, 0};
        for (i = 0; i < 3; ++i) {
            kiln_instance* t = create(kiln_model_threads(), threads[i]);
            void* count[1] = {&used[i]};
            if (t == NULL) continue;
            CHECK(kiln_run(t, NULL, count) == KILN_OK, "%s", kiln_last_error(t));
            kiln_destroy(t);
        }
        CHECK(used[0] == 1 && used[1] == 2 && used[2] >= 2 && used[2] <= 4,
              "threads used: %d %d %d", used[0], used[1], used[2]);
        printf("ok: a 64-task loop ran on %d, %d, %d threads with threads = 1, 2, 4\n", used[0],
               used[1], used[2]);
    }

    /* Many short loops: each task runs once, whether the threads poll between loops (the
     * default), sleep at once (spin_us -1), or poll too briefly for the slow loops (50). */
    {
        static const int spins[3] = {0, -1, 50};
        static const int threads[3] = {2, 4, 2};
        for (i = 0; i < 3; ++i) {
            kiln_instance* t = NULL;
            int32_t wrong = -1;
            void* result[1] = {&wrong};
            kiln_options_init(&options);
            options.threads = threads[i];
            options.spin_us = spins[i];
            CHECK(kiln_create(kiln_model_loops(), &options, &t) == KILN_OK, "spin_us %d: %s",
                  spins[i], kiln_last_error(NULL));
            if (t == NULL) continue;
            CHECK(kiln_run(t, NULL, result) == KILN_OK && wrong == 0,
                  "spin_us %d, threads %d: %d tasks ran other than once: %s", spins[i],
                  threads[i], (int)wrong, kiln_last_error(t));
            kiln_destroy(t);
        }
        printf("ok: 3000 loops of 8 tasks ran each task once (spin_us 0 = %d, -1, 50)\n",
               KILN_DEFAULT_SPIN_US);
    }

    /* Bad arguments. */
    CHECK(kiln_run(NULL, in, outs) == KILN_INVALID_ARGUMENT && kiln_last_error(NULL)[0],
          "NULL instance");
    CHECK(kiln_run(m1, NULL, outs) == KILN_INVALID_ARGUMENT &&
              strstr(kiln_last_error(m1), "inputs"),
          "NULL inputs: %s", kiln_last_error(m1));
    {
        const void* half[2] = {a, NULL};
        CHECK(kiln_run(m1, half, outs) == KILN_INVALID_ARGUMENT &&
                  strstr(kiln_last_error(m1), "'b'"),
              "NULL inputs[1]: %s", kiln_last_error(m1));
    }
    CHECK(kiln_run(m1, in, NULL) == KILN_INVALID_ARGUMENT, "NULL outputs");
    CHECK(kiln_input_info(m1, 2, &info) == KILN_INVALID_ARGUMENT &&
              strstr(kiln_last_error(m1), "out of range"),
          "index 2: %s", kiln_last_error(m1));
    CHECK(kiln_output_info(m1, -1, &info) == KILN_INVALID_ARGUMENT, "index -1");
    CHECK(kiln_input_info(m1, 0, NULL) == KILN_INVALID_ARGUMENT, "NULL info");
    CHECK(kiln_input_info(NULL, 0, &info) == KILN_INVALID_ARGUMENT, "NULL instance info");
    CHECK(kiln_num_inputs(NULL) == -1 && kiln_num_outputs(NULL) == -1, "NULL counts");
    CHECK(kiln_create(NULL, NULL, &bad) == KILN_INVALID_ARGUMENT && bad == NULL &&
              strstr(kiln_last_error(NULL), "model"),
          "NULL model: %s", kiln_last_error(NULL));
    CHECK(kiln_create(def, NULL, NULL) == KILN_INVALID_ARGUMENT, "NULL out");
    kiln_options_init(&options);
    options.threads = -1;
    CHECK(kiln_create(def, &options, &bad) == KILN_INVALID_ARGUMENT && bad == NULL &&
              strstr(kiln_last_error(NULL), "threads"),
          "threads -1: %s", kiln_last_error(NULL));
    kiln_options_init(&options);
    options.spin_us = -2;
    CHECK(kiln_create(def, &options, &bad) == KILN_INVALID_ARGUMENT && bad == NULL &&
              strstr(kiln_last_error(NULL), "spin_us"),
          "spin_us -2: %s", kiln_last_error(NULL));
    options.spin_us = 1000001;
    CHECK(kiln_create(def, &options, &bad) == KILN_INVALID_ARGUMENT && bad == NULL,
          "spin_us 1000001: %s", kiln_last_error(NULL));
    {
        kiln_model_def other = *def;
        other.abi = KILN_MODEL_ABI + 1;
        CHECK(kiln_create(&other, NULL, &bad) == KILN_ABI_MISMATCH && bad == NULL &&
                  strstr(kiln_last_error(NULL), "ABI"),
              "ABI: %s", kiln_last_error(NULL));
    }
    CHECK(strcmp(kiln_status_string(KILN_KERNEL_ERROR), "kernel error") == 0, "status string");
    kiln_destroy(NULL);
    printf("ok: invalid arguments and ABI mismatch refused with messages\n");

    /* A failing kernel, on every instance (threads 2: the failure comes from a worker), then a
     * good run again. */
    memcpy(bad_b, b, sizeof(b));
    bad_b[5 * COLS + 7] = -5000.0f;
    bad_b[20 * COLS + 1] = -6000.0f;
    {
        const void* bad_in[2] = {a, bad_b};
        kiln_instance* all[3];
        all[0] = m1;
        all[1] = m2;
        all[2] = m0;
        for (i = 0; i < 3; ++i) {
            kiln_status s = kiln_run(all[i], bad_in, outs);
            const char* e = kiln_last_error(all[i]);
            CHECK(s == KILN_KERNEL_ERROR, "status %d", (int)s);
            CHECK(strstr(e, "Requirement Failed") && strstr(e, "b must stay above -1000"),
                  "message: %s", e);
            if (i == 0) printf("ok: failing kernel: %s\n", e);
            CHECK(kiln_run(all[i], in, outs) == KILN_OK && matches(out) &&
                      kiln_last_error(all[i])[0] == '\0',
                  "run after failure: %s", kiln_last_error(all[i]));
        }
    }

    /* Scratch memory the warm-up did not see. */
    {
        kiln_instance* g = create(kiln_model_greedy(), 1);
        if (g != NULL) {
            CHECK(kiln_run(g, NULL, NULL) == KILN_KERNEL_ERROR &&
                      strstr(kiln_last_error(g), "did not reserve"),
                  "greedy: %s", kiln_last_error(g));
            printf("ok: unreserved scratch: %s\n", kiln_last_error(g));
            kiln_destroy(g);
        }
    }

    kiln_destroy(m0);
    kiln_destroy(m2);
    kiln_destroy(m1);
    printf(failures == 0 ? "all checks passed\n" : "%d checks failed\n", failures);
    return failures == 0 ? 0 : 1;
}
)";

std::string fill(std::string text) {
    for (auto [key, value] : {std::pair<std::string, int>{"@ROWS@", kRows}, {"@COLS@", kCols}}) {
        for (size_t at; (at = text.find(key)) != std::string::npos;) {
            text.replace(at, key.size(), std::to_string(value));
        }
    }
    return text;
}

TEST(Runtime, HalideAotModelLinkedWithTheCCompilerAlone) {
    if (shell("command -v cc").status != 0) GTEST_SKIP() << "no C compiler (cc) on PATH";
    std::string tmpl = (fs::temp_directory_path() / "kiln_runtime_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    const fs::path dir = tmpl;

    const Halide::Target host = Halide::get_host_target();
    compile_kernels(
        dir,
        host.with_feature(Halide::Target::UserContext).with_feature(Halide::Target::NoRuntime));
    Halide::compile_standalone_runtime((dir / "halide_runtime.o").string(), host);
    write_file(dir / "glue.c", fill(kGlue));
    write_file(dir / "main.c", fill(kTestProgram));

    // The kernels go through the hooks this test is about.
    Result symbols = shell("nm " + (dir / "kernel_scale.o").string());
    if (symbols.status == 0) {
        EXPECT_NE(symbols.output.find("halide_malloc"), std::string::npos) << symbols.output;
        EXPECT_NE(symbols.output.find("halide_do_par_for"), std::string::npos) << symbols.output;
    }

    const std::string cc = "cd " + dir.string() + " && cc -std=c99 -O2 -Wall -Wextra -I" +
                           KILN_RUNTIME_INCLUDE_DIR + " ";
    const std::string steps[] = {
        cc + "-pedantic -c " + KILN_RUNTIME_SOURCE + " -o runtime.o",
        cc + "-I" + KILN_HALIDE_RUNTIME_INCLUDE_DIR + " -I. -c glue.c -o glue.o",
        "cd " + dir.string() +
            " && ar rcs libtest_model.a kernel_scale.o kernel_add.o halide_runtime.o glue.o "
            "runtime.o",
        cc + "-c main.c -o main.o",
        cc + "main.o libtest_model.a -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc," +
            "--wrap=posix_memalign -lpthread -ldl -lm -o test_model",
    };
    for (const std::string& step : steps) {
        Result r = shell(step);
        ASSERT_EQ(r.status, 0) << step << "\n" << r.output;
    }
    Result run = shell((dir / "test_model").string());
    std::printf("%s", run.output.c_str());
    EXPECT_EQ(run.status, 0) << run.output;
    if (run.status == 0 && !HasFailure()) fs::remove_all(dir);
}

}  // namespace
