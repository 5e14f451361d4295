/* HAQ .npy lookup tables: see table.h. The header is parsed strictly: magic "\x93NUMPY", version
 * 1.x (u16 header length) or 2.x (u32), a Python dict literal with 'descr': '<i8',
 * 'fortran_order': False and 'shape': (L, 8, 8); then exactly L*64 little-endian int64 values. */
#include <stdlib.h>
#include <string.h>

#include "hw/table.h"

void mq_table_free(mq_cost_table *t) {
    if (!t) return;
    free(t->v);
    t->v = NULL;
    t->layers = 0;
}

/* Value of key 'k' in the header dict: pointer just after "'k':" and spaces, or NULL. */
static const char *dict_value(const char *hdr, const char *k) {
    char pat[64];
    snprintf(pat, sizeof pat, "'%s':", k);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    return p;
}

mixq_status mq_table_load_npy(const char *path, mq_cost_table *t) {
    memset(t, 0, sizeof *t);
    FILE *f = mq_fopen(path, "rb");
    if (!f) return MIXQ_ERR_IO;
    unsigned char pre[8];
    char *hdr = NULL;
    mixq_status st = mq_fread(pre, 8, f, path, "npy magic");
    if (!st && (memcmp(pre, "\x93NUMPY", 6) || (pre[6] != 1 && pre[6] != 2)))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is not a .npy file (bad magic or version %u)", path, pre[6]);
    uint32_t hlen = 0;
    if (!st) {
        unsigned char l[4] = {0};
        st = mq_fread(l, pre[6] == 2 ? 4 : 2, f, path, "npy header length");
        hlen = (uint32_t)l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 | (uint32_t)l[3] << 24;
    }
    if (!st && (hlen < 10 || hlen > 65536))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': npy header of %u bytes (corrupt)", path, hlen);
    if (!st && !(hdr = mq_malloc(hlen + 1, 1, "npy header"))) st = MIXQ_ERR_NOMEM;
    if (!st) st = mq_fread(hdr, hlen, f, path, "npy header");
    int layers = 0;
    if (!st) {
        hdr[hlen] = 0;
        const char *d = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order"),
                   *sh = dict_value(hdr, "shape");
        int a = 0, b = 0;
        if (!d || strncmp(d, "'<i8'", 5))
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': dtype must be '<i8' (int64), header: %.80s", path, hdr);
        else if (!fo || strncmp(fo, "False", 5))
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': Fortran-ordered arrays are not supported", path);
        else if (!sh || sscanf(sh, "(%d, %d, %d)", &layers, &a, &b) != 3 || a != 8 || b != 8 ||
                 layers < 1 || layers > 100000)
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': shape must be (layers, 8, 8), header: %.80s", path, hdr);
    }
    if (!st && !(t->v = mq_malloc((size_t)layers * 64, sizeof(int64_t), "cost table"))) st = MIXQ_ERR_NOMEM;
    if (!st) {
        unsigned char *raw = (unsigned char *)t->v;
        st = mq_fread(raw, (size_t)layers * 64 * 8, f, path, "table values");
        for (size_t i = 0; !st && i < (size_t)layers * 64; i++) { /* little-endian on any host */
            const unsigned char *p = raw + 8 * i;
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = u << 8 | p[k];
            t->v[i] = (int64_t)u;
        }
        if (!st && fgetc(f) != EOF)
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': bytes after the %d x 8 x 8 values", path, layers);
        for (size_t i = 0; !st && i < (size_t)layers * 64; i++)
            if (t->v[i] < 0)
                st = mq_err(MIXQ_ERR_FORMAT, "'%s': negative cost %lld at layer %zu w %zu a %zu", path,
                            (long long)t->v[i], i / 64, i / 8 % 8 + 1, i % 8 + 1);
    }
    free(hdr);
    fclose(f);
    if (st) {
        mq_table_free(t);
        return st;
    }
    t->layers = layers;
    return MIXQ_OK;
}
