#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static int rd_u32(FILE *f, uint32_t *v) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

void fx_free(fx_file *f) {
    if (!f) return;
    for (int i = 0; i < f->count; i++) free(f->t[i].data);
    free(f->t);
    free(f);
}

fx_file *fx_load(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fixture '%s' cannot be opened (run from the repository root; "
                        "regenerate with /usr/bin/python3 scripts/gen_fixtures.py)\n", path);
        return NULL;
    }
    fx_file *f = calloc(1, sizeof *f);
    char magic[4];
    uint32_t ver = 0, count = 0;
    const char *why = NULL;
    if (!f || fread(magic, 1, 4, fp) != 4 || memcmp(magic, "MQFX", 4)) why = "bad magic";
    else if (rd_u32(fp, &ver) || ver != 1) why = "unsupported version";
    else if (rd_u32(fp, &count) || count > 100000) why = "bad tensor count";
    else if (!(f->t = calloc(count ? count : 1, sizeof *f->t))) why = "out of memory";
    for (uint32_t i = 0; !why && i < count; i++) {
        fx_tensor *t = &f->t[i];
        uint32_t len, nd;
        if (rd_u32(fp, &len) || len == 0 || len >= sizeof t->name ||
            fread(t->name, 1, len, fp) != len) {
            why = "bad name";
            break;
        }
        t->name[len] = 0;
        if (rd_u32(fp, &nd) || nd > 4) {
            why = "bad ndim";
            break;
        }
        t->ndim = (int)nd;
        t->numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint32_t v;
            if (rd_u32(fp, &v) || v > (1u << 24)) {
                why = "bad dims";
                break;
            }
            t->dims[d] = (int)v;
            t->numel *= v;
        }
        if (why) break;
        if (t->numel > (1L << 24) || !(t->data = malloc((size_t)(t->numel ? t->numel : 1) * 4))) {
            why = "tensor too large";
            break;
        }
        if (fread(t->data, 4, (size_t)t->numel, fp) != (size_t)t->numel) {
            why = "truncated data";
            break;
        }
        for (long k = 0; k < t->numel; k++)
            if (!isfinite(t->data[k])) why = "non-finite value";
        f->count = (int)i + 1;
    }
    if (!why && fgetc(fp) != EOF) why = "trailing bytes";
    fclose(fp);
    if (why) {
        fprintf(stderr, "fixture '%s': %s\n", path, why);
        fx_free(f);
        return NULL;
    }
    return f;
}

const fx_tensor *fx_find(const fx_file *f, const char *name, long numel) {
    for (int i = 0; f && i < f->count; i++)
        if (!strcmp(f->t[i].name, name)) {
            if (numel >= 0 && f->t[i].numel != numel) {
                fprintf(stderr, "fixture tensor '%s' has %ld values, expected %ld\n", name,
                        f->t[i].numel, numel);
                return NULL;
            }
            return &f->t[i];
        }
    return NULL;
}

const float *fx_get(const fx_file *f, const char *name, long numel) {
    const fx_tensor *t = fx_find(f, name, numel);
    CHECKF(t != NULL, "fixture tensor '%s' missing or mis-sized", name);
    return t ? t->data : NULL;
}
