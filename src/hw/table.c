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

/* CSV equivalent: a header line "layer,w_bits,a_bits,cost" and then one line per entry, every
 * (layer, w, a) with layer 0..L-1 and w, a in 1..8 exactly once, costs non-negative integers. */
mixq_status mq_table_load_csv(const char *path, mq_cost_table *t) {
    memset(t, 0, sizeof *t);
    FILE *f = mq_fopen(path, "r");
    if (!f) return MIXQ_ERR_IO;
    char line[512];
    mixq_status st = MIXQ_OK;
    int lineno = 1, cap = 0;
    uint8_t *have = NULL;
    if (!fgets(line, sizeof line, f) || strncmp(line, "layer,w_bits,a_bits,cost", 24))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': line 1 must be the header layer,w_bits,a_bits,cost", path);
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '#') continue;
        long long l, w, a, v;
        char tail[8] = "";
        int n = sscanf(line, "%lld,%lld,%lld,%lld%7s", &l, &w, &a, &v, tail);
        if (n != 4 || l < 0 || l >= 100000 || w < 1 || w > 8 || a < 1 || a > 8 || v < 0) {
            st = mq_err(MIXQ_ERR_FORMAT,
                        "'%s': line %d: expected layer (0..99999), w_bits (1..8), a_bits (1..8), "
                        "a non-negative integer cost",
                        path, lineno);
            break;
        }
        if (l >= cap) {
            int ncap = cap ? cap : 16;
            while (ncap <= l) ncap *= 2;
            int64_t *nv = realloc(t->v, (size_t)ncap * 64 * sizeof *nv);
            uint8_t *nh = nv ? realloc(have, (size_t)ncap * 64) : NULL;
            if (nv) t->v = nv;
            if (!nv || !nh) {
                st = mq_err(MIXQ_ERR_NOMEM, "out of memory reading '%s'", path);
                break;
            }
            have = nh;
            memset(have + (size_t)cap * 64, 0, (size_t)(ncap - cap) * 64);
            cap = ncap;
        }
        size_t i = ((size_t)l * 8 + (size_t)(w - 1)) * 8 + (size_t)(a - 1);
        if (have[i]) {
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': line %d: layer %lld w %lld a %lld given twice", path,
                        lineno, l, w, a);
            break;
        }
        have[i] = 1;
        t->v[i] = v;
        if (l + 1 > t->layers) t->layers = (int)l + 1;
    }
    if (!st && ferror(f)) st = mq_err(MIXQ_ERR_IO, "'%s': read error", path);
    if (!st && t->layers == 0) st = mq_err(MIXQ_ERR_FORMAT, "'%s': no entries", path);
    for (size_t i = 0; !st && i < (size_t)t->layers * 64; i++)
        if (!have[i])
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': layer %zu w %zu a %zu is missing (every layer needs all 64 "
                        "(w, a) pairs)", path, i / 64, i / 8 % 8 + 1, i % 8 + 1);
    free(have);
    fclose(f);
    if (st) mq_table_free(t);
    return st;
}

/* ------------------------------------------------------------------ the `table` back-end */
#include "hw/hw.h"

static int ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static mixq_status table_open(const char *path, mq_cost_table **out) {
    mq_cost_table *t = mq_calloc(1, sizeof *t, "cost table");
    if (!t) return MIXQ_ERR_NOMEM;
    mixq_status st;
    if (ends(path, ".npy")) st = mq_table_load_npy(path, t);
    else if (ends(path, ".csv")) st = mq_table_load_csv(path, t);
    else st = mq_err(MIXQ_ERR_FORMAT, "table '%s': expected a .npy or .csv file", path);
    if (st) {
        free(t);
        return st;
    }
    *out = t;
    return MIXQ_OK;
}

static void table_free_impl(void *p) {
    mq_table_free(p);
    free(p);
}

static mixq_status table_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *root) {
    static const char *const keys[] = {"file", NULL};
    const cJSON *o = NULL;
    const char *file = NULL;
    mixq_status st = mq_j_obj(c, root, "", "table", &o);
    if (!st) st = mq_j_keys(c, o, "table", keys);
    if (!st) st = mq_j_str(c, o, "table", "file", &file);
    if (st) return st;
    if (hw->max_bits > 8)
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'bits.max': lookup tables hold 1..8 bits", c->origin);
    char path[2048];
    if (file[0] == '/' || !c->dir) snprintf(path, sizeof path, "%s", file);
    else snprintf(path, sizeof path, "%s/%s", c->dir, file);
    mq_cost_table *t = NULL;
    if ((st = table_open(path, &t))) return st;
    hw->impl = t;
    return MIXQ_OK;
}

static mixq_status table_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *o) {
    const mq_cost_table *t = hw->impl;
    if (l->index < 0 || l->index >= t->layers)
        return mq_err(MIXQ_ERR_SHAPE,
                      "%s: layer '%s' is costed layer %d but the table has %d layers; hint: a "
                      "lookup table belongs to one network (and batch)",
                      hw->name, l->name, l->index, t->layers);
    o->cycles = o->compute_cycles = (double)mq_table_at(t, l->index, w, a);
    return MIXQ_OK;
}

const mq_hw_backend mq_hw_table = {"table", table_parse, table_cost, table_free_impl, 0, NULL, NULL};

/* A bare .npy / .csv given as the target: values are taken as cycles at 1 GHz, batch 16 (HAQ's). */
mixq_status mq_hw_table_from_file(const char *path, mixq_hw **out);
mixq_status mq_hw_table_from_file(const char *path, mixq_hw **out) {
    char json[4800];
    char esc[2100];
    size_t k = 0;
    for (const char *p = path; *p && k + 2 < sizeof esc; p++) {
        if (*p == '"' || *p == '\\') esc[k++] = '\\';
        esc[k++] = *p;
    }
    esc[k] = 0;
    snprintf(json, sizeof json,
             "{\"mixq_hw\": 1, \"name\": \"table\", \"description\": \"lookup table %s (values "
             "taken as cycles at 1 GHz)\", \"backend\": \"table\", \"batch\": 16, \"freq_hz\": 1e9, "
             "\"bits\": {\"min\": 1, \"max\": 8}, \"table\": {\"file\": \"%s\"}}",
             esc, esc);
    return mixq_hw_parse(json, strlen(json), path, NULL, out);
}
