/* classify — an image classifier around a model compiled by `kiln compile` (README.md).
 *
 *     classify [--threads N] [--save out.npy] [--labels FILE] INPUT
 *
 * INPUT is a float32 .npy of the model's input shape, or a binary PPM (P6) image, resized
 * (bilinear) to the model's height and width and normalized with ImageNet's mean and standard
 * deviation into NCHW. Prints the five best classes of each batch row (index and score, and
 * the label with --labels); --save writes the first output as a float32 .npy.
 *
 * The model comes from the build: -DKILN_MODEL_HEADER="resnet18.h"
 * -DKILN_MODEL_FN=kiln_model_resnet18 (kiln_add_model() and CMakeLists.txt do this).
 * Exit codes: 0 done, 1 the model failed, 2 bad arguments or input. Plain C99 and POSIX. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef KILN_MODEL_HEADER
#error "define KILN_MODEL_HEADER (the header kiln compile wrote, e.g. \"resnet18.h\")"
#endif
#ifndef KILN_MODEL_FN
#error "define KILN_MODEL_FN (the model's function, e.g. kiln_model_resnet18)"
#endif
#include KILN_MODEL_HEADER

enum { kExitModel = 1, kExitInput = 2, kTop = 5 };

/* torchvision's ImageNet normalization, per RGB channel. */
static const float kMean[3] = {0.485f, 0.456f, 0.406f};
static const float kStd[3] = {0.229f, 0.224f, 0.225f};

static int64_t elements(const kiln_tensor_info* t) {
    int64_t n = 1;
    for (int32_t i = 0; i < t->rank; ++i)
        n *= t->shape[i];
    return n;
}

static void print_shape(FILE* f, const int64_t* shape, int rank) {
    for (int i = 0; i < rank; ++i)
        fprintf(f, "%s%lld", i ? "x" : "", (long long)shape[i]);
}

/* The whole file into a malloc'ed buffer; NULL (and a message) on failure. */
static unsigned char* read_file(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "classify: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char* buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char* grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        fprintf(stderr, "classify: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

/* A .npy file (format 1.0 to 3.0) of little-endian float32 in C order whose shape is `want`:
 * copies its data into `out`. Returns 0, or -1 after a message. */
static int load_npy(const char* path, const unsigned char* b, size_t size,
                    const kiln_tensor_info* want, float* out) {
    if (size < 10 || b[6] < 1 || b[6] > 3) {
        fprintf(stderr, "classify: %s: not a .npy file of format 1.0 to 3.0\n", path);
        return -1;
    }
    size_t len = b[6] == 1
                     ? (size_t)b[8] | (size_t)b[9] << 8
                     : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    size_t start = b[6] == 1 ? 10 : 12;
    if (start + len > size) {
        fprintf(stderr, "classify: %s: truncated header\n", path);
        return -1;
    }
    char header[4096];
    if (len >= sizeof header) {
        fprintf(stderr, "classify: %s: header longer than %zu bytes\n", path, sizeof header);
        return -1;
    }
    memcpy(header, b + start, len);
    header[len] = '\0';
    if (!strstr(header, "'descr': '<f4'")) {
        fprintf(stderr, "classify: %s: not little-endian float32 ('<f4'): %s\n", path, header);
        return -1;
    }
    if (!strstr(header, "'fortran_order': False")) {
        fprintf(stderr, "classify: %s: Fortran order is not supported\n", path);
        return -1;
    }
    const char* s = strstr(header, "'shape': (");
    if (!s) {
        fprintf(stderr, "classify: %s: no shape in the header\n", path);
        return -1;
    }
    s += strlen("'shape': (");
    int64_t shape[KILN_MAX_RANK];
    int rank = 0;
    for (;;) {
        while (*s == ' ' || *s == ',')
            ++s;
        if (*s == ')') break;
        char* end;
        long long d = strtoll(s, &end, 10);
        if (end == s || rank == KILN_MAX_RANK) {
            fprintf(stderr, "classify: %s: bad shape in the header: %s\n", path, header);
            return -1;
        }
        shape[rank++] = d;
        s = end;
    }
    int same = rank == want->rank;
    for (int i = 0; same && i < rank; ++i)
        same = shape[i] == want->shape[i];
    if (!same) {
        fprintf(stderr, "classify: %s has shape ", path);
        print_shape(stderr, shape, rank);
        fprintf(stderr, "; the model's input '%s' is ", want->name);
        print_shape(stderr, want->shape, want->rank);
        fprintf(stderr, "\n");
        return -1;
    }
    size_t bytes = (size_t)elements(want) * sizeof(float);
    if (start + len + bytes > size) {
        fprintf(stderr, "classify: %s: %zu bytes of data, %zu expected\n", path, size - start - len,
                bytes);
        return -1;
    }
    memcpy(out, b + start + len, bytes);
    return 0;
}

/* The next number of a PPM header, skipping whitespace and # comments; -1 when there is none. */
static long ppm_number(const unsigned char* b, size_t size, size_t* pos) {
    for (;;) {
        while (*pos < size &&
               (b[*pos] == ' ' || b[*pos] == '\t' || b[*pos] == '\n' || b[*pos] == '\r'))
            ++*pos;
        if (*pos < size && b[*pos] == '#') {
            while (*pos < size && b[*pos] != '\n')
                ++*pos;
            continue;
        }
        break;
    }
    long v = -1;
    while (*pos < size && b[*pos] >= '0' && b[*pos] <= '9' && v < 100000000)
        v = (v < 0 ? 0 : v * 10) + (b[*pos] - '0'), ++*pos;
    return v;
}

/* A binary PPM (P6, 8 or 16 bits) resized to the model's 1x3xHxW input: bilinear with
 * half-pixel centers (as PyTorch's interpolate, align_corners=False), then (x - mean) / std
 * per channel. Returns 0, or -1 after a message. */
static int load_ppm(const char* path, const unsigned char* b, size_t size,
                    const kiln_tensor_info* want, float* out) {
    if (want->rank != 4 || want->shape[0] != 1 || want->shape[1] != 3) {
        fprintf(stderr, "classify: the model's input '%s' is ", want->name);
        print_shape(stderr, want->shape, want->rank);
        fprintf(stderr, ", not 1x3xHxW: give a .npy instead of an image\n");
        return -1;
    }
    size_t pos = 2;
    long w = ppm_number(b, size, &pos), h = ppm_number(b, size, &pos);
    long maxval = ppm_number(b, size, &pos);
    if (w <= 0 || h <= 0 || maxval <= 0 || maxval > 65535 || pos >= size) {
        fprintf(stderr, "classify: %s: bad P6 header\n", path);
        return -1;
    }
    ++pos; /* the single whitespace character before the pixels */
    const size_t bps = maxval < 256 ? 1 : 2;
    if ((size - pos) / 3 / bps / (size_t)w < (size_t)h) {
        fprintf(stderr, "classify: %s: %ldx%ld pixels do not fit the file\n", path, w, h);
        return -1;
    }
    const unsigned char* px = b + pos;
    const int64_t oh = want->shape[2], ow = want->shape[3];
    for (int64_t y = 0; y < oh; ++y) {
        float sy = ((float)y + 0.5f) * (float)h / (float)oh - 0.5f;
        if (sy < 0) sy = 0;
        long y0 = (long)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
        float fy = sy - (float)y0;
        for (int64_t x = 0; x < ow; ++x) {
            float sx = ((float)x + 0.5f) * (float)w / (float)ow - 0.5f;
            if (sx < 0) sx = 0;
            long x0 = (long)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
            float fx = sx - (float)x0;
            for (int c = 0; c < 3; ++c) {
                float v[4];
                const long at[4] = {y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1};
                for (int k = 0; k < 4; ++k) {
                    const unsigned char* p = px + ((size_t)at[k] * 3 + (size_t)c) * bps;
                    v[k] = bps == 1 ? (float)p[0] : (float)(p[0] << 8 | p[1]);
                }
                float top = v[0] + (v[1] - v[0]) * fx, bottom = v[2] + (v[3] - v[2]) * fx;
                float value = (top + (bottom - top) * fy) / (float)maxval;
                out[(c * oh + y) * ow + x] = (value - kMean[c]) / kStd[c];
            }
        }
    }
    return 0;
}

/* Writes `data` as a .npy of format 1.0: the header padded with spaces to a multiple of 64
 * bytes and ended by a newline, as numpy writes it. Returns 0, or -1 after a message. */
static int save_npy(const char* path, const float* data, const kiln_tensor_info* t) {
    char dict[512], shape[256] = "";
    size_t n = 0;
    for (int32_t i = 0; i < t->rank; ++i)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%lld, ", (long long)t->shape[i]);
    if (t->rank > 0) shape[n - (t->rank > 1 ? 2 : 1)] = '\0'; /* (1, 1000) but (1000,) */
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    pre[8] = (unsigned char)((len + pad + 1) & 0xff);
    pre[9] = (unsigned char)((len + pad + 1) >> 8);
    FILE* f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "classify: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fwrite(pre, 1, sizeof pre, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = 0; i < pad; ++i)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), (size_t)elements(t), f);
    if (fclose(f) != 0) {
        fprintf(stderr, "classify: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* One label per line; *count is how many. The lines live in the returned buffer. */
static char** read_labels(const char* path, int* count, char** storage) {
    size_t size;
    char* text = (char*)read_file(path, &size);
    if (!text) return NULL;
    char* grown = realloc(text, size + 1);
    if (!grown) {
        free(text);
        return NULL;
    }
    text = grown;
    text[size] = '\0';
    int lines = 1;
    for (size_t i = 0; i < size; ++i)
        lines += text[i] == '\n';
    char** labels = malloc((size_t)lines * sizeof *labels);
    if (!labels) {
        free(text);
        return NULL;
    }
    int n = 0;
    for (char* line = text; line && *line; ++n) {
        char* end = strchr(line, '\n');
        if (end) *end = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[l - 1] = '\0';
        labels[n] = line;
        line = end ? end + 1 : NULL;
    }
    *count = n;
    *storage = text;
    return labels;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int usage(void) {
    fprintf(stderr,
            "usage: classify [--threads N] [--save out.npy] [--labels FILE] INPUT\n"
            "  INPUT      a float32 .npy of the model's input shape, or a P6 .ppm image\n"
            "  --threads  threads of the model instance (0, the default: one per core)\n"
            "  --save     write the model's first output as a float32 .npy\n"
            "  --labels   class names, one per line, printed with the scores\n");
    return kExitInput;
}

int main(int argc, char** argv) {
    const char *input = NULL, *save = NULL, *labels_path = NULL;
    long threads = 0;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        if ((!strcmp(a, "--threads") || !strcmp(a, "--save") || !strcmp(a, "--labels")) &&
            i + 1 < argc) {
            const char* v = argv[++i];
            if (!strcmp(a, "--save")) {
                save = v;
            } else if (!strcmp(a, "--labels")) {
                labels_path = v;
            } else {
                char* end;
                threads = strtol(v, &end, 10);
                if (*v == '\0' || *end != '\0' || threads < 0 || threads > 1024) {
                    fprintf(stderr, "classify: --threads takes 0 to 1024, not '%s'\n", v);
                    return kExitInput;
                }
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (a[0] == '-' || input) {
            fprintf(stderr, "classify: unexpected argument '%s'\n", a);
            return usage();
        } else {
            input = a;
        }
    }
    if (!input) return usage();

    kiln_options opt;
    kiln_options_init(&opt);
    opt.threads = (int32_t)threads;
    kiln_instance* m = NULL;
    kiln_status st = kiln_create(KILN_MODEL_FN(), &opt, &m);
    if (st != KILN_OK) {
        fprintf(stderr, "classify: kiln_create: %s: %s\n", kiln_status_string(st),
                kiln_last_error(NULL));
        return kExitModel;
    }

    int rc = kExitInput;
    float *in = NULL, *out = NULL;
    unsigned char* file = NULL;
    char *label_text = NULL, **labels = NULL;
    int num_labels = 0;
    kiln_tensor_info ti, to;
    if (kiln_num_inputs(m) != 1 || kiln_num_outputs(m) < 1) {
        fprintf(stderr,
                "classify: the model has %d inputs and %d outputs; classify needs one "
                "input\n",
                (int)kiln_num_inputs(m), (int)kiln_num_outputs(m));
        goto done;
    }
    if ((st = kiln_input_info(m, 0, &ti)) != KILN_OK ||
        (st = kiln_output_info(m, 0, &to)) != KILN_OK) {
        fprintf(stderr, "classify: %s: %s\n", kiln_status_string(st), kiln_last_error(m));
        rc = kExitModel;
        goto done;
    }
    if (ti.dtype != KILN_F32 || to.dtype != KILN_F32) {
        fprintf(stderr, "classify: the model's input and output must be float32\n");
        goto done;
    }
    in = malloc((size_t)elements(&ti) * sizeof *in);
    out = malloc((size_t)elements(&to) * sizeof *out);
    if (!in || !out) {
        fprintf(stderr, "classify: out of memory\n");
        goto done;
    }
    size_t size;
    if (!(file = read_file(input, &size))) goto done;
    if (size >= 6 && !memcmp(file, "\x93NUMPY", 6)) {
        if (load_npy(input, file, size, &ti, in) != 0) goto done;
    } else if (size >= 2 && file[0] == 'P' && file[1] == '6') {
        if (load_ppm(input, file, size, &ti, in) != 0) goto done;
    } else {
        fprintf(stderr, "classify: %s is neither a .npy file nor a binary PPM (P6)\n", input);
        goto done;
    }
    if (labels_path && !(labels = read_labels(labels_path, &num_labels, &label_text))) goto done;

    const void* inputs[1] = {in};
    void* outputs[1] = {out};
    double start = now_ms();
    if ((st = kiln_run(m, inputs, outputs)) != KILN_OK) {
        fprintf(stderr, "classify: kiln_run: %s: %s\n", kiln_status_string(st), kiln_last_error(m));
        rc = kExitModel;
        goto done;
    }
    fprintf(stderr, "classify: input '%s' ", ti.name);
    print_shape(stderr, ti.shape, ti.rank);
    fprintf(stderr, ", output '%s' ", to.name);
    print_shape(stderr, to.shape, to.rank);
    fprintf(stderr, ", %.2f ms\n", now_ms() - start);

    /* One row of scores per batch item: the first dimension of a rank-2 or higher output. */
    const int64_t rows = to.rank >= 2 ? to.shape[0] : 1;
    const int64_t classes = rows > 0 ? elements(&to) / rows : 0;
    for (int64_t r = 0; r < rows; ++r) {
        const float* s = out + r * classes;
        int64_t best[kTop];
        int found = 0;
        for (int64_t c = 0; c < classes; ++c) {
            int k = found < kTop ? found++ : kTop;
            if (k == kTop && s[c] <= s[best[kTop - 1]]) continue;
            if (k == kTop) k = kTop - 1;
            for (; k > 0 && s[best[k - 1]] < s[c]; --k)
                best[k] = best[k - 1];
            best[k] = c;
        }
        for (int k = 0; k < found; ++k) {
            if (rows > 1) printf("%lld ", (long long)r);
            printf("%lld %.6f", (long long)best[k], s[best[k]]);
            if (best[k] < num_labels) printf(" %s", labels[best[k]]);
            printf("\n");
        }
    }
    rc = save && save_npy(save, out, &to) != 0 ? kExitInput : 0;

done:
    free(labels);
    free(label_text);
    free(file);
    free(in);
    free(out);
    kiln_destroy(m);
    return rc;
}
