/* mixq calibrate-cpu: time every conv/linear layer shape of a model with the runtime's own
 * layer code (rt_layer.c) and write the measured table as a hardware description with back-end
 * "cpu" (format in src/hw/cpu.c).
 *
 * Each entry times one whole runtime layer as mixq_runtime_forward runs it: activation
 * quantization, im2col, packing, the GEMM and the fused epilogue (bias, batch norm, ReLU), on
 * `batch` images of random data with random weight codes of the given widths (time does not
 * depend on the values). Per entry: one warm-up run, then `reps` timed runs, each repeating the
 * layer until min_run_s has passed (per-run time = elapsed / repeats); the median is kept. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/int8.h"
#include "kernels/rt.h"
#include "quant/quant.h"

void mixq_cpu_calib_config_default(mixq_cpu_calib_config *c) {
    memset(c, 0, sizeof *c);
    c->batch = 1;
    c->reps = 7;
    c->min_run_s = 2e-3;
    c->threads = 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static mixq_status time_layer(rt_conv *c, const void *x, float *y, int batch, rt_scratch *scr,
                              int nscr, const mixq_cpu_calib_config *cfg, double *out) {
    mixq_status st = rt_conv_forward(c, x, y, batch, scr, nscr); /* warm-up */
    if (st) return st;
    double t[64];
    const int reps = MQ_MIN(cfg->reps, 64);
    for (int r = 0; r < reps; r++) {
        int it = 0;
        const double t0 = mq_now();
        double el;
        do {
            if ((st = rt_conv_forward(c, x, y, batch, scr, nscr))) return st;
            it++;
            el = mq_now() - t0;
        } while (el < cfg->min_run_s);
        t[r] = el / it;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    *out = t[reps / 2];
    return MIXQ_OK;
}

/* Weight codes of width b for every row (the quantizer's levels), deterministic. */
static void fill_codes(rt_conv *c, int b, mq_rng *rng) {
    int lim;
    mq_levels(b, 1, NULL, &lim);
    for (int k = 0; k < c->K; k++) c->kbits[k] = b;
    for (size_t i = 0; i < (size_t)c->K * c->Kd; i++) {
        int v = (int)mq_rng_below(rng, (uint32_t)(2 * lim + 1)) - lim;
        if (b == 1) v = v >= 0 ? 1 : -1;
        c->wc[i] = (int8_t)v;
    }
}

static int same_shape(const mixq_hw_layer *a, const mixq_hw_layer *b) {
    return a->fc == b->fc && a->in_c == b->in_c && a->out_c == b->out_c &&
           (a->fc || (a->in_h == b->in_h && a->in_w == b->in_w && a->kh == b->kh &&
                      a->kw == b->kw && a->stride == b->stride && a->pad == b->pad &&
                      a->groups == b->groups));
}

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *p = strchr(line, ':');
        if (!p) break;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, n, "%s", p);
        break;
    }
    fclose(f);
}

mixq_status mixq_cpu_calibrate(const mixq_model *m, const mixq_cpu_calib_config *cfg_in,
                               const char *out_path, mixq_cpu_calib_progress_fn fn, void *user) {
    mixq_cpu_calib_config cfg;
    if (cfg_in) cfg = *cfg_in;
    else mixq_cpu_calib_config_default(&cfg);
    if (!m || !out_path) return mq_err(MIXQ_ERR_ARG, "calibrate-cpu: no model or output path");
    if (cfg.batch < 1 || cfg.batch > 4096 || cfg.reps < 1 || cfg.reps > 64 || !(cfg.min_run_s >= 0) ||
        cfg.min_run_s > 10 || cfg.threads < 0 || cfg.threads > 32)
        return mq_err(MIXQ_ERR_ARG, "calibrate-cpu: batch %d (1..4096), reps %d (1..64), min run "
                      "%g s (0..10), threads %d (0..32) out of range", cfg.batch, cfg.reps,
                      cfg.min_run_s, cfg.threads);
    const int old_threads = mixq_get_threads();
    mixq_status st = MIXQ_OK;
    if (cfg.threads > 0 && (st = mixq_set_threads(cfg.threads))) return st;
    const int nl = mixq_model_hw_layer_count(m);
    mixq_hw_layer *shapes = mq_calloc((size_t)(nl ? nl : 1), sizeof *shapes, "calibration shapes");
    int *nodes = mq_calloc((size_t)(nl ? nl : 1), sizeof *nodes, "calibration shapes");
    int ns = 0;
    if (!shapes || !nodes) st = MIXQ_ERR_NOMEM;
    for (int i = 0; !st && i < nl; i++) {
        mixq_hw_layer l;
        int node;
        if ((st = mixq_model_hw_layer(m, i, &l, &node))) break;
        int dup = 0;
        for (int j = 0; j < ns && !dup; j++) dup = same_shape(&shapes[j], &l);
        if (!dup) {
            nodes[ns] = node;
            shapes[ns++] = l;
        }
    }
    mq_bs_tier tier = MQ_BS_TIER_SCALAR;
    if (!st) st = mq_bs_tier_select(&tier);
    cJSON *root = cJSON_CreateObject(), *cpu = NULL, *layers = NULL;
    char machine[256];
    cpu_model(machine, sizeof machine);
    if (!root) st = mq_err(MIXQ_ERR_NOMEM, "calibrate-cpu: out of memory building JSON");
    if (!st) {
        char desc[400];
        snprintf(desc, sizeof desc, "measured by mixq calibrate-cpu on %s (%s model, batch %d, "
                 "%d threads)", machine, mixq_model_arch(m), cfg.batch, mixq_get_threads());
        cJSON_AddNumberToObject(root, "mixq_hw", 1);
        cJSON_AddStringToObject(root, "name", "cpu");
        cJSON_AddStringToObject(root, "backend", "cpu");
        cJSON_AddStringToObject(root, "description", desc);
        cJSON_AddNumberToObject(root, "batch", cfg.batch);
        cJSON_AddNumberToObject(root, "freq_hz", 1e9);
        cJSON *bits = cJSON_AddObjectToObject(root, "bits");
        cJSON_AddNumberToObject(bits, "min", 1);
        cJSON_AddNumberToObject(bits, "max", 8);
        cpu = cJSON_AddObjectToObject(root, "cpu");
        cJSON_AddStringToObject(cpu, "machine", machine);
        cJSON_AddNumberToObject(cpu, "threads", mixq_get_threads());
        cJSON_AddStringToObject(cpu, "tier", mq_bs_tier_name(tier));
        cJSON_AddBoolToObject(cpu, "int8_vnni", mq_i8_available());
        cJSON_AddNumberToObject(cpu, "power_w", 15.0);
        layers = cJSON_AddArrayToObject(cpu, "layers");
        if (!bits || !cpu || !layers) st = mq_err(MIXQ_ERR_NOMEM, "calibrate-cpu: out of memory");
    }
    const int nscr = MQ_MAX(1, MQ_MIN(64, mixq_get_threads()));
    rt_scratch *scr = mq_calloc((size_t)nscr, sizeof *scr, "calibration scratch");
    if (!scr && !st) st = MIXQ_ERR_NOMEM;
    mq_rng rng;
    mq_rng_seed(&rng, 12345);
    const double t_start = mq_now();
    for (int si = 0; !st && si < ns; si++) {
        const mixq_hw_layer *l = &shapes[si];
        rt_conv c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "%s", l->name ? l->name : "layer");
        c.fc = l->fc;
        c.C = l->in_c;
        c.H = l->in_h;
        c.W = l->in_w;
        c.K = l->out_c;
        c.R = l->kh;
        c.S = l->kw;
        c.stride = l->stride;
        c.pad = l->pad;
        c.G = l->groups > 0 ? l->groups : 1;
        c.a_bits = 8;
        c.kbits = mq_malloc((size_t)c.K, sizeof(int), "calibration");
        if (!c.kbits) st = MIXQ_ERR_NOMEM;
        for (int k = 0; !st && k < c.K; k++) c.kbits[k] = 8;
        if (!st) st = rt_conv_prepare(&c);
        const size_t in_n = (size_t)cfg.batch * c.C * c.H * c.W;
        const size_t out_n = (size_t)cfg.batch * c.K * c.P * c.Q;
        float *x = NULL, *y = NULL;
        uint8_t *xc = NULL;
        /* the integer kernels are timed as the runtime links this layer (the shape's first
         * layer in the model): codes in from the previous layer's epilogue, codes out for the
         * next one (rt_fusion_hint); the fp32 kernel never links */
        int in_codes, out_codes;
        rt_fusion_hint(m, nodes[si], &in_codes, &out_codes);
        if (!st) {
            x = mq_malloc(in_n, sizeof(float), "calibration input");
            y = mq_malloc(out_n, sizeof(float), "calibration output");
            xc = mq_malloc(in_n, 1, "calibration input codes");
            if (!xc) st = MIXQ_ERR_NOMEM;
            c.wc = mq_malloc((size_t)c.K * c.Kd, 1, "calibration weights");
            c.wf = mq_malloc((size_t)c.K * c.Kd, sizeof(float), "calibration weights");
            if (!x || !y || !c.wc || !c.wf) st = MIXQ_ERR_NOMEM;
        }
        if (!st) {
            for (size_t i = 0; i < in_n; i++) x[i] = mq_rng_uniform(&rng);
            for (size_t i = 0; i < (size_t)c.K * c.Kd; i++) c.wf[i] = mq_rng_normal(&rng) * 0.1f;
            for (int k = 0; k < c.K; k++) {
                c.sc[k] = 1e-3f;
                c.bn_a[k] = 1.0f;
                c.bn_b[k] = 0.01f;
            }
            c.has_bn = 1;
            c.act = 1;
            c.nq_lo = 0.0f; /* the consumer's quantizer when out_codes (see LINK) */
            c.nq_off = 0;
        }
        /* LINK(a): the input as unsigned a-bit codes (XIN; x itself for a layer that quantizes its
         * own input), and the consumer's codes taken as wide as this layer's (a policy's
         * neighbouring layers mostly share widths): 1- and 2-bit outputs take the threshold
         * epilogue */
#define LINK(a)                                                                        \
    do {                                                                               \
        int qmax_;                                                                     \
        mq_levels((a), 0, NULL, &qmax_);                                               \
        c.in_codes = in_codes;                                                         \
        c.out_codes = out_codes;                                                       \
        for (size_t i = 0; in_codes && i < in_n; i++)                                  \
            xc[i] = (uint8_t)(x[i] * (float)qmax_ + 0.5f);                             \
        c.nq_hi = (float)qmax_;                                                        \
        c.nq_s = 1.0f / c.nq_hi;                                                       \
        rt_conv_thresholds(&c);                                                        \
    } while (0)
#define XIN (in_codes ? (const void *)xc : (const void *)x)
        double t_int8 = -1, t_fp32 = -1, t_bs[8][8];
        /* int8: time independent of the widths (measured at 8/8) */
        if (!st && mq_i8_available()) {
            fill_codes(&c, 8, &rng);
            c.kernel = MIXQ_KERNEL_INT8;
            c.a_bits = 8;
            LINK(8);
            if (!(st = rt_conv_prepare(&c)) && !(st = rt_conv_pack(&c)))
                st = time_layer(&c, XIN, y, cfg.batch, scr, nscr, &cfg, &t_int8);
        }
        if (!st) {
            c.in_codes = c.out_codes = 0;
            c.kernel = MIXQ_KERNEL_FP32;
            c.s_a = 1.0f / c.qmax; /* 8-bit activations (a_bits 8 at the last prepare) */
            if (!(st = rt_conv_pack(&c))) st = time_layer(&c, x, y, cfg.batch, scr, nscr, &cfg, &t_fp32);
        }
        for (int w = 1; !st && w <= 8; w++) {
            fill_codes(&c, w, &rng);
            for (int a = 1; !st && a <= 8; a++) {
                c.kernel = MIXQ_KERNEL_BITSERIAL;
                c.a_bits = a;
                if ((st = rt_conv_prepare(&c))) break; /* the activation levels qmin..qmax */
                c.s_a = 1.0f / c.qmax;
                if ((st = rt_conv_pack(&c))) break;
                LINK(a);
                st = time_layer(&c, XIN, y, cfg.batch, scr, nscr, &cfg, &t_bs[w - 1][a - 1]);
            }
        }
        if (!st) {
            cJSON *e = cJSON_CreateObject();
            cJSON *bs = cJSON_CreateArray();
            if (!e || !bs) {
                cJSON_Delete(e);
                cJSON_Delete(bs);
                st = mq_err(MIXQ_ERR_NOMEM, "calibrate-cpu: out of memory");
            } else {
                cJSON_AddStringToObject(e, "name", c.name);
                cJSON_AddNumberToObject(e, "fc", c.fc);
                cJSON_AddNumberToObject(e, "in_c", c.C);
                cJSON_AddNumberToObject(e, "in_h", c.H);
                cJSON_AddNumberToObject(e, "in_w", c.W);
                cJSON_AddNumberToObject(e, "out_c", c.K);
                cJSON_AddNumberToObject(e, "kh", c.R0);
                cJSON_AddNumberToObject(e, "kw", c.S0);
                cJSON_AddNumberToObject(e, "stride", c.stride);
                cJSON_AddNumberToObject(e, "pad", c.pad0);
                cJSON_AddNumberToObject(e, "groups", c.G);
                cJSON_AddNumberToObject(e, "codes_in", in_codes);
                cJSON_AddNumberToObject(e, "codes_out", out_codes);
                /* without VNNI there is no exact int8 kernel: never cheaper than bit-serial */
                cJSON_AddNumberToObject(e, "int8_s", t_int8 > 0 ? t_int8 : 1e9);
                cJSON_AddNumberToObject(e, "fp32_s", t_fp32);
                for (int w = 0; w < 8 && !st; w++) {
                    cJSON *row = cJSON_CreateDoubleArray(t_bs[w], 8);
                    if (row) cJSON_AddItemToArray(bs, row);
                    else st = mq_err(MIXQ_ERR_NOMEM, "calibrate-cpu: out of memory");
                }
                cJSON_AddItemToObject(e, "bitserial_s", bs);
                if (st) cJSON_Delete(e);
                else cJSON_AddItemToArray(layers, e);
            }
        }
        free(x);
        free(xc);
        free(y);
        rt_conv_free(&c);
        if (!st && fn) fn(si + 1, ns, l->name ? l->name : "", mq_now() - t_start, user);
    }
#undef LINK
#undef XIN
    for (int i = 0; scr && i < nscr; i++) rt_scratch_free(&scr[i]);
    free(scr);
    free(shapes);
    free(nodes);
    if (!st) {
        char *text = cJSON_Print(root);
        if (!text) {
            st = mq_err(MIXQ_ERR_NOMEM, "calibrate-cpu: out of memory printing JSON");
        } else {
            FILE *f = mq_fopen(out_path, "w");
            if (!f) st = MIXQ_ERR_IO;
            else {
                st = mq_fwrite(text, strlen(text), f, out_path);
                if (!st) st = mq_fwrite("\n", 1, f, out_path);
                if (fclose(f) && !st) st = mq_err(MIXQ_ERR_IO, "cannot write '%s'", out_path);
            }
            free(text);
        }
    }
    cJSON_Delete(root);
    if (cfg.threads > 0) mixq_set_threads(old_threads);
    return st;
}
