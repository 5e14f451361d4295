/* Reader for the PyTorch reference fixtures (MQFX v1) written by scripts/gen_fixtures.py:
 * "MQFX", u32 version 1, u32 count, then count x {u32 name_len, name, u32 ndim, u32 dims[ndim],
 * f32 data}, little-endian. The whole file is checked on load (magic, version, sizes, no
 * trailing bytes, finite values). */
#ifndef MIXQ_TEST_FIXTURE_H
#define MIXQ_TEST_FIXTURE_H

#include <stdint.h>

typedef struct fx_tensor {
    char name[128];
    int ndim;
    int dims[4];
    long numel;
    float *data;
} fx_tensor;

typedef struct fx_file {
    int count;
    fx_tensor *t;
} fx_file;

/* NULL (with a message on stderr) if the file is missing or malformed. */
fx_file *fx_load(const char *path);
void fx_free(fx_file *f);
/* The tensor named `name`; NULL if absent. With numel >= 0 the size must match too (else
 * NULL, with a message). */
const fx_tensor *fx_find(const fx_file *f, const char *name, long numel);
/* Data of `name` with numel elements, marking the current test failed if absent. */
const float *fx_get(const fx_file *f, const char *name, long numel);

#endif
