/* The `cpu` back-end: this machine's measured latency, read from the table `mixq calibrate-cpu`
 * writes (mixq_cpu_calibrate). Every conv/linear shape of a model was timed with the project's
 * own runtime kernels; a layer's cost is looked up by its shape, never estimated.
 *
 * File format (a mixq_hw description; every field below is required unless marked optional,
 * any other key is refused, keys starting with '_' and "comment" are notes):
 *   {
 *     "mixq_hw": 1,
 *     "name": "cpu",
 *     "backend": "cpu",
 *     "description": "measured by mixq calibrate-cpu on <cpu model string>",   (optional)
 *     "batch": 1,                       images per timed run (layers must ask for this batch)
 *     "freq_hz": 1e9,                   nominal: cycles = latency_s x freq_hz
 *     "bits": {"min": 1, "max": 8},     max <= 8
 *     "cpu": {
 *       "machine": "Intel(R) Xeon(R) ...",
 *       "threads": 1,                   threads while timing (>= 1)
 *       "tier": "avx512",               bit-serial kernel tier that was timed
 *       "int8_vnni": true,              optional (default true): false = no exact int8 kernel
 *                                       on this CPU, int8_s is then ignored (calibrate-cpu
 *                                       writes 1e9 there)
 *       "power_w": 15.0,                optional (default 15): energy estimate only
 *       "layers": [                     one entry per distinct shape, at least one
 *         {"name": "conv1",             optional: the first layer with this shape
 *          "fc": 0, "in_c": 16, "in_h": 28, "in_w": 28, "out_c": 16, "kh": 3, "kw": 3,
 *          "stride": 1, "pad": 1, "groups": 1,
 *          "int8_s": 1.2e-4,            int8 kernel, any (w, a) with w, a <= 8
 *          "fp32_s": 2.0e-4,            float kernel (informational; not used for costs)
 *          "bitserial_s": [[w1a1, ..., w1a8], ..., [w8a1, ..., w8a8]],
 *          "codes_in": 1, "codes_out": 1}  optional, informational: the integer kernels were
 *                                       timed reading the previous layer's codes / writing
 *                                       the next layer's (1 NHWC, 2 for a linear), as the
 *                                       runtime links the shape's first layer
 *       ]
 *     }
 *   }
 * Times are seconds per run of `batch` images (median of repeated runs), each including the
 * layer's input quantization (unless codes_in) / packing and its epilogue; all are positive and at most 1e9, and
 * bitserial_s[w-1][a-1] is an 8 x 8 array. fc entries (linear layers) have in_h = in_w = kh =
 * kw = stride = groups = 1 and pad = 0, in_c = input features, out_c = outputs. Two entries with
 * the same (fc, in_c, in_h, in_w, out_c, kh, kw, stride, pad, groups) are refused.
 *
 * Costs: the entry whose shape equals the layer's (missing: MIXQ_ERR_NOTFOUND, never a
 * fallback); the layer's batch must be the table's. The runtime picks the faster kernel per
 * layer, so latency_s = min(int8_s, bitserial_s[w-1][a-1]) (bitserial_s alone without
 * int8_vnni); cycles = latency_s x freq_hz (nominal); energy_j = latency_s x power_w, flagged
 * MIXQ_COST_ESTIMATE. Per-kernel weight bits run as ONE
 * bit-serial GEMM whose 16-row panels each run at their own width (or as one int8 GEMM), so
 * latency_s = min(int8_s, sum_b (n_b / out_c) x bitserial_s[b-1][a-1]), n_b kernels at b bits
 * (the cost_kernels hook; hw.c's generic path would cost each group as a layer of its own). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"

typedef struct cpu_entry {
    int fc;
    int64_t C, H, W, K, R, S, stride, pad, g;
    double int8_s, fp32_s;
    double bs[8][8]; /* [w-1][a-1] */
} cpu_entry;

typedef struct cpu_table {
    double power_w;
    int int8; /* the int8 kernel runs on this CPU (int8_vnni) */
    int n;
    cpu_entry *e;
} cpu_table;

static void cpu_free_impl(void *p) {
    cpu_table *t = p;
    if (!t) return;
    free(t->e);
    free(t);
}

static int same_shape(const cpu_entry *e, const mq_hwl *l) {
    return e->fc == l->fc && e->C == l->C && e->H == l->H && e->W == l->W && e->K == l->K &&
           e->R == l->R && e->S == l->S && e->stride == l->stride && e->pad == l->pad &&
           e->g == l->g;
}

static void shape_str(char *buf, size_t n, int fc, int64_t C, int64_t H, int64_t W, int64_t K,
                      int64_t R, int64_t S, int64_t stride, int64_t pad, int64_t g) {
    if (fc) snprintf(buf, n, "linear %lld -> %lld", (long long)C, (long long)K);
    else
        snprintf(buf, n, "conv %lldx%lldx%lld -> %lld, %lldx%lld stride %lld pad %lld groups %lld",
                 (long long)C, (long long)H, (long long)W, (long long)K, (long long)R, (long long)S,
                 (long long)stride, (long long)pad, (long long)g);
}

/* A positive time in seconds, at most 1e9 (calibrate-cpu's "never" for a missing kernel). */
static mixq_status get_time(const mq_jctx *c, const cJSON *v, const char *field, double *out) {
    if (!v) return mq_err(MIXQ_ERR_FORMAT, "%s: field '%s' is missing (expected a time in seconds)",
                          c->origin, field);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(v->valuedouble > 0) ||
        v->valuedouble > 1e9)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field '%s' must be a positive, finite time in seconds (at most 1e9)",
                      c->origin, field);
    *out = v->valuedouble;
    return MIXQ_OK;
}

static mixq_status parse_bitserial(const mq_jctx *c, const cJSON *o, const char *path,
                                   cpu_entry *e) {
    char field[160];
    snprintf(field, sizeof field, "%s.bitserial_s", path);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "bitserial_s");
    if (!rows)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field '%s' is missing (expected 8 rows, w = 1..8, of 8 times, a = 1..8)",
                      c->origin, field);
    if (!cJSON_IsArray(rows) || cJSON_GetArraySize(rows) != 8)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field '%s' must be an array of 8 rows (w = 1..8) of 8 times (a = 1..8); "
                      "it has %d %s",
                      c->origin, field, cJSON_IsArray(rows) ? cJSON_GetArraySize(rows) : 0,
                      cJSON_IsArray(rows) ? "rows" : "(not an array)");
    int w = 0;
    for (const cJSON *row = rows->child; row; row = row->next, w++) {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 8)
            return mq_err(MIXQ_ERR_FORMAT,
                          "%s: field '%s[%d]' (w%d) must be an array of 8 times (a = 1..8); it has "
                          "%d %s",
                          c->origin, field, w, w + 1, cJSON_IsArray(row) ? cJSON_GetArraySize(row) : 0,
                          cJSON_IsArray(row) ? "entries" : "(not an array)");
        int a = 0;
        for (const cJSON *v = row->child; v; v = v->next, a++) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(v->valuedouble > 0) ||
                v->valuedouble > 1e9)
                return mq_err(MIXQ_ERR_FORMAT,
                              "%s: field '%s[%d][%d]' (w%d a%d) must be a positive, finite time in "
                              "seconds (at most 1e9)",
                              c->origin, field, w, a, w + 1, a + 1);
            e->bs[w][a] = v->valuedouble;
        }
    }
    return MIXQ_OK;
}

static mixq_status parse_entry(const mq_jctx *c, const cJSON *o, int i, cpu_entry *e) {
    static const char *const keys[] = {"name",   "fc",  "in_c",   "in_h",   "in_w",
                                       "out_c",  "kh",  "kw",     "stride", "pad",
                                       "groups", "int8_s", "fp32_s", "bitserial_s",
                                       "codes_in", "codes_out", NULL};
    char path[64];
    snprintf(path, sizeof path, "cpu.layers[%d]", i);
    if (!cJSON_IsObject(o))
        return mq_err(MIXQ_ERR_FORMAT, "%s: field '%s' must be an object", c->origin, path);
    mixq_status st = mq_j_keys(c, o, path, keys);
    const char *name = NULL;
    if (!st) st = mq_j_str_opt(c, o, path, "name", &name);
    long long fc = 0, v[9];
    if (!st) st = mq_j_int(c, o, path, "fc", 0, 1, &fc);
    long long link = 0; /* informational: how the integer kernels were linked when timed */
    if (!st && cJSON_GetObjectItemCaseSensitive(o, "codes_in"))
        st = mq_j_int(c, o, path, "codes_in", 0, 1, &link);
    if (!st && cJSON_GetObjectItemCaseSensitive(o, "codes_out"))
        st = mq_j_int(c, o, path, "codes_out", 0, 2, &link);
    /* in_c, in_h, in_w, out_c, kh, kw, stride, groups >= 1; pad >= 0 */
    static const char *const dims[] = {"in_c", "in_h", "in_w", "out_c", "kh", "kw", "stride",
                                       "groups", "pad"};
    for (int k = 0; k < 9 && !st; k++)
        st = mq_j_int(c, o, path, dims[k], k == 8 ? 0 : 1, 1 << 30, &v[k]);
    if (st) return st;
    e->fc = (int)fc;
    e->C = v[0], e->H = v[1], e->W = v[2], e->K = v[3], e->R = v[4], e->S = v[5];
    e->stride = v[6], e->g = v[7], e->pad = v[8];
    if (e->fc && (e->H != 1 || e->W != 1 || e->R != 1 || e->S != 1 || e->stride != 1 ||
                  e->g != 1 || e->pad != 0))
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field '%s': a linear entry (fc 1) has in_h = in_w = kh = kw = stride = "
                      "groups = 1 and pad = 0",
                      c->origin, path);
    if (!e->fc && (e->C % e->g || e->K % e->g))
        return mq_err(MIXQ_ERR_FORMAT, "%s: field '%s': %lld groups do not divide %lld in / %lld out "
                      "channels", c->origin, path, (long long)e->g, (long long)e->C, (long long)e->K);
    if (!e->fc && (e->H + 2 * e->pad < e->R || e->W + 2 * e->pad < e->S))
        return mq_err(MIXQ_ERR_FORMAT, "%s: field '%s': a %lldx%lld kernel does not fit the padded "
                      "%lldx%lld input", c->origin, path, (long long)e->R, (long long)e->S,
                      (long long)e->H, (long long)e->W);
    char field[96];
    snprintf(field, sizeof field, "%s.int8_s", path);
    st = get_time(c, cJSON_GetObjectItemCaseSensitive(o, "int8_s"), field, &e->int8_s);
    snprintf(field, sizeof field, "%s.fp32_s", path);
    if (!st) st = get_time(c, cJSON_GetObjectItemCaseSensitive(o, "fp32_s"), field, &e->fp32_s);
    if (!st) st = parse_bitserial(c, o, path, e);
    return st;
}

static mixq_status cpu_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *root) {
    static const char *const keys[] = {"machine", "threads", "tier", "int8_vnni", "power_w",
                                       "layers",  NULL};
    const cJSON *o = NULL;
    const char *machine = NULL, *tier = NULL;
    long long threads = 0;
    mixq_status st = mq_j_obj(c, root, "", "cpu", &o);
    if (!st) st = mq_j_keys(c, o, "cpu", keys);
    if (!st) st = mq_j_str(c, o, "cpu", "machine", &machine);
    if (!st) st = mq_j_int(c, o, "cpu", "threads", 1, 1 << 16, &threads);
    if (!st) st = mq_j_str(c, o, "cpu", "tier", &tier);
    if (st) return st;
    if (hw->max_bits > 8)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field 'bits.max': the measured cpu table holds 1..8 bits, not %d",
                      c->origin, hw->max_bits);
    cpu_table *t = mq_calloc(1, sizeof *t, "cpu table");
    if (!t) return MIXQ_ERR_NOMEM;
    hw->impl = t; /* freed by mixq_hw_free on any error below */
    t->power_w = 15.0;
    t->int8 = 1;
    if ((st = mq_j_bool_opt(c, o, "cpu", "int8_vnni", &t->int8))) return st;
    if ((st = mq_j_num_opt(c, o, "cpu", "power_w", 0, 1e6, &t->power_w))) return st;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!layers)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field 'cpu.layers' is missing (expected an array of measured shapes)",
                      c->origin);
    if (!cJSON_IsArray(layers))
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'cpu.layers' must be an array", c->origin);
    int n = cJSON_GetArraySize(layers);
    if (n < 1)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field 'cpu.layers' is empty; hint: run `mixq calibrate-cpu` for the "
                      "model to measure its layers",
                      c->origin);
    if (!(t->e = mq_calloc((size_t)n, sizeof *t->e, "cpu table entries"))) return MIXQ_ERR_NOMEM;
    int i = 0;
    for (const cJSON *it = layers->child; it; it = it->next, i++) {
        cpu_entry *e = &t->e[i];
        if ((st = parse_entry(c, it, i, e))) return st;
        mq_hwl l = {.fc = e->fc, .C = e->C, .H = e->H, .W = e->W, .K = e->K, .R = e->R,
                    .S = e->S, .stride = e->stride, .pad = e->pad, .g = e->g};
        for (int j = 0; j < i; j++)
            if (same_shape(&t->e[j], &l)) {
                char sh[192];
                shape_str(sh, sizeof sh, e->fc, e->C, e->H, e->W, e->K, e->R, e->S, e->stride,
                          e->pad, e->g);
                return mq_err(MIXQ_ERR_FORMAT,
                              "%s: field 'cpu.layers[%d]' has the same shape as cpu.layers[%d] "
                              "(%s); hint: one entry per shape",
                              c->origin, i, j, sh);
            }
    }
    t->n = n;
    return MIXQ_OK;
}

static mixq_status cpu_find(const mixq_hw *hw, const mq_hwl *l, const cpu_entry **out) {
    const cpu_table *t = hw->impl;
    if (l->B != hw->batch)
        return mq_err(MIXQ_ERR_ARG,
                      "%s: layer '%s' at batch %lld, but the table was measured at batch %d; hint: "
                      "recalibrate with `mixq calibrate-cpu --batch %lld`",
                      hw->name, l->name, (long long)l->B, hw->batch, (long long)l->B);
    for (int i = 0; i < t->n; i++)
        if (same_shape(&t->e[i], l)) {
            *out = &t->e[i];
            return MIXQ_OK;
        }
    char sh[192];
    shape_str(sh, sizeof sh, l->fc, l->C, l->H, l->W, l->K, l->R, l->S, l->stride, l->pad, l->g);
    return mq_err(MIXQ_ERR_NOTFOUND,
                  "%s: no measured time for layer '%s' (%s); hint: run `mixq calibrate-cpu` for "
                  "this model (the table has %d shapes)",
                  hw->name, l->name, sh, t->n);
}

/* The faster of the int8 kernel (where this CPU has it) and the bit-serial time. */
static void fill(const mixq_hw *hw, const cpu_entry *e, double bitserial_s, mixq_cost *o) {
    const cpu_table *t = hw->impl;
    double seconds = t->int8 ? fmin(e->int8_s, bitserial_s) : bitserial_s;
    o->latency_s = seconds;
    o->cycles = o->compute_cycles = seconds * hw->freq_hz;
    o->stall_cycles = 0;
    o->e_compute_j = o->energy_j = seconds * t->power_w;
    o->flags |= MIXQ_COST_ESTIMATE;
}

static mixq_status cpu_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *o) {
    const cpu_entry *e = NULL;
    mixq_status st = cpu_find(hw, l, &e);
    if (st) return st;
    fill(hw, e, e->bs[w - 1][a - 1], o);
    return MIXQ_OK;
}

/* The bit-serial time of one GEMM with nk[b] of its K kernels (rows) at b bits. */
static double mix_time(const cpu_entry *e, const int *nk, int64_t K, int a) {
    double s = 0;
    for (int b = 1; b <= 8; b++)
        if (nk[b]) s += (double)nk[b] / (double)K * e->bs[b - 1][a - 1];
    return s;
}

static mixq_status cpu_cost_kernels(const mixq_hw *hw, const mq_hwl *l, const int *nk, int a,
                                    mixq_cost *o) {
    const cpu_entry *e = NULL;
    mixq_status st = cpu_find(hw, l, &e);
    if (st) return st;
    fill(hw, e, mix_time(e, nk, l->K, a), o);
    return MIXQ_OK;
}

mixq_status mq_hw_cpu_times(const mixq_hw *hw, const mixq_hw_layer *layer, const int *kbits,
                            int a, double *int8_s, double *bitserial_s) {
    if (!hw || !layer || !kbits || !int8_s || !bitserial_s)
        return mq_err(MIXQ_ERR_ARG, "mq_hw_cpu_times: NULL argument");
    if (hw->be != &mq_hw_cpu)
        return mq_err(MIXQ_ERR_ARG,
                      "hardware '%s' is a '%s' target, not a measured cpu table; hint: `mixq "
                      "calibrate-cpu` writes one",
                      hw->name, hw->be->name);
    mq_hwl l;
    mixq_status st = mq_hwl_from(layer, hw->batch, &l);
    if (st) return st;
    if (a < 1 || a > 8)
        return mq_err(MIXQ_ERR_UNSUPPORTED, "layer '%s': the cpu table holds 1..8-bit "
                      "activations, not %d", l.name, a);
    int nk[9] = {0};
    for (int64_t k = 0; k < l.K; k++) {
        if (kbits[k] < 1 || kbits[k] > 8)
            return mq_err(MIXQ_ERR_UNSUPPORTED, "layer '%s': kernel %lld has %d bits; the cpu "
                          "table holds 1..8", l.name, (long long)k, kbits[k]);
        nk[kbits[k]]++;
    }
    const cpu_entry *e = NULL;
    if ((st = cpu_find(hw, &l, &e))) return st;
    const cpu_table *t = hw->impl;
    double bs = mix_time(e, nk, l.K, a);
    *int8_s = t->int8 ? e->int8_s : HUGE_VAL;
    *bitserial_s = bs;
    return MIXQ_OK;
}

static int cpu_kernel_rows(const mixq_hw *hw) {
    (void)hw;
    return 16; /* the bit-serial GEMM's panel rows (src/runtime) */
}

const mq_hw_backend mq_hw_cpu = {"cpu", cpu_parse, cpu_cost, cpu_free_impl, 0, cpu_cost_kernels, cpu_kernel_rows};
