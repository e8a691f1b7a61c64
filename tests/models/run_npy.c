/* run_npy — runs a compiled model on a float32 .npy input and writes its first output as .npy.
 *
 *     cc -DKILN_MODEL_HEADER='"resnet18.h"' -DKILN_MODEL_FN=kiln_model_resnet18 -IDIR \
 *        run_npy.c DIR/libresnet18.a -lpthread -ldl -lm -o run_npy
 *     run_npy input.npy output.npy
 *
 * The test driver of cross-compiled models (tests/models/cross_arm64.sh): built with the
 * target's C compiler and run under its emulator. Single-input models; version 1.0 headers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include KILN_MODEL_HEADER

static int fail(const char* what, const char* detail) {
    fprintf(stderr, "run_npy: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 3) return fail("usage: run_npy input.npy output.npy", NULL);
    kiln_instance* m = NULL;
    if (kiln_create(KILN_MODEL_FN(), NULL, &m) != KILN_OK)
        return fail("kiln_create", kiln_last_error(NULL));
    kiln_tensor_info in, out;
    if (kiln_num_inputs(m) != 1 || kiln_input_info(m, 0, &in) != KILN_OK ||
        kiln_output_info(m, 0, &out) != KILN_OK)
        return fail("expected a model with one input", NULL);
    size_t n_in = 1, n_out = 1;
    for (int i = 0; i < in.rank; ++i)
        n_in *= (size_t)in.shape[i];
    for (int i = 0; i < out.rank; ++i)
        n_out *= (size_t)out.shape[i];

    FILE* f = fopen(argv[1], "rb");
    unsigned char head[10];
    if (!f || fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY\x01", 7) != 0)
        return fail("not a version 1.0 .npy file", argv[1]);
    fseek(f, 10 + (long)(head[8] | head[9] << 8), SEEK_SET);
    float* x = malloc(n_in * sizeof(float));
    float* y = malloc(n_out * sizeof(float));
    if (!x || !y || fread(x, sizeof(float), n_in, f) != n_in) return fail("short input", argv[1]);
    fclose(f);

    const void* ins[1] = {x};
    void* outs[1] = {y};
    if (kiln_run(m, ins, outs) != KILN_OK) return fail("kiln_run", kiln_last_error(m));

    char header[128], shape[96] = "";
    for (int i = 0; i < out.rank; ++i)
        sprintf(shape + strlen(shape), "%lld%s", (long long)out.shape[i],
                out.rank == 1 ? "," : (i + 1 < out.rank ? ", " : ""));
    int len = snprintf(header, sizeof header,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    while ((10 + len + 1) % 64)
        header[len++] = ' ';
    header[len++] = '\n';
    f = fopen(argv[2], "wb");
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(len & 0xff),
                             (unsigned char)(len >> 8)};
    if (!f || fwrite(pre, 1, 10, f) != 10 || fwrite(header, 1, (size_t)len, f) != (size_t)len ||
        fwrite(y, sizeof(float), n_out, f) != n_out)
        return fail("cannot write", argv[2]);
    fclose(f);
    kiln_destroy(m);
    free(x);
    free(y);
    return 0;
}
