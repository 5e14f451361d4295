/* The CPU runtime: a quantized model compiled into integer layers with fused epilogues, run
 * node by node (public API and semantics in include/mixq/mixq.h, per-layer buffers in rt.h).
 *
 * Compilation:
 *   - every quantized conv/linear node becomes an rt_conv from its layer description
 *     (mq_qlayer, src/quant): the integer weight codes the weight quantizer produced
 *     (w_q = s_w * code exactly), the activation levels, clip and step;
 *   - a batch norm whose only input is that layer (and which is the layer's only consumer) is
 *     fused into the epilogue, as is a following ReLU/ReLU6 that is the only consumer of what it
 *     reads; fused nodes share the layer's output buffer;
 *   - a layer whose output feeds one integer layer (directly, or through a max pool that is
 *     its only reader) writes that layer's activation codes from its epilogue; such a max pool
 *     runs on the codes (quantization is monotone, so max and quantize commute exactly);
 *   - taps of a kernel that only ever read padding (3x3 convs on 1x1 maps) are dropped
 *     (rt_conv_prepare): they add a_off * w to the sum and to its correction alike;
 *   - the other nodes (other pools, residual adds, unfused BN, GAP, flatten) run the engine's
 *     float kernels (src/nn), the very code the fake-quantized model runs;
 *   - each layer's kernel: forced by the configuration, else the fastest in the measured table
 *     (mixq calibrate-cpu), else the built-in rule.
 * Buffers: each node's output lives in one of a few pooled buffers, reused once every consumer
 * has run (liveness over the topological order). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "hw/hw.h"
#include "kernels/int8.h"
#include "kernels/rt.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "quant/quant.h"
#include "quant/qmodel.h"

typedef struct rt_node {
    mixq_op op;
    int n_in, in[2];
    int c, h, w;          /* output per image */
    int ic, ih, iw;       /* first input per image */
    mq_geom geo;          /* pool window */
    float hs_alpha, hs_beta; /* hard sigmoid */
    int conv;             /* index into convs, or -1 */
    int alias;            /* output is the buffer of this node (fused, flatten), or -1 */
    int slot;             /* pooled buffer, -1 for the input */
    int codes;            /* max pool on codes: uint8 [n][ih][iw][c] in, out 1: NHWC, 2: NCHW */
    float eps;
    float *gamma, *beta, *rm, *rv; /* unfused BN (copies) */
} rt_node;

struct mixq_runtime {
    int n_nodes;
    rt_node *nodes;
    int n_convs;
    rt_conv *convs;
    int n_slots;
    float **slot_buf;     /* [n_slots] */
    size_t slot_floats;   /* per image */
    int batch_cap;
    rt_scratch *scr;
    int n_scr;
    double *tsec;         /* [n_scr][max(1, n_convs)] per-chunk layer seconds of one forward */
    int classes, in_c, in_h, in_w;
    mixq_preprocess pp; /* the model's input transform, for mixq_runtime_evaluate */
    rt_trace_fn trace;  /* rt_set_trace */
    void *trace_user;
};

void rt_set_trace(mixq_runtime *rt, rt_trace_fn fn, void *user) {
    rt->trace = fn;
    rt->trace_user = user;
}

mixq_status rt_input_codes(const rt_conv *c, const void *x, int *q) {
    if (c->a_float) return mq_err(MIXQ_ERR_ARG, "runtime layer %s: its input stays float", c->name);
    const int C = c->C, HW = c->H * c->W;
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < HW; i++) {
            const size_t at = (size_t)ch * HW + i;
            if (c->in_codes) /* NHWC for a conv, NCHW-flatten for a linear (H = W = 1) */
                q[at] = (int)((const uint8_t *)x)[c->fc ? at : (size_t)i * C + ch] - c->a_off;
            else
                q[at] = (int)mq_act_code(((const float *)x)[at], c->s_a, c->qmin, c->qmax);
        }
    return MIXQ_OK;
}

/* The node whose buffer holds node j's output (j itself unless fused or a flatten); valid once
 * alias chains are resolved in mixq_runtime_create. */
static inline int owner(const mixq_runtime *rt, int j) {
    return rt->nodes[j].alias >= 0 ? rt->nodes[j].alias : j;
}

/* One name per mixq_kernel, in enum order (AUTO, BITSERIAL, INT8, FP32). */
static const char *const kernel_names[] = {"auto", "bitserial", "int8", "fp32"};
_Static_assert(MQ_COUNTOF(kernel_names) == MIXQ_KERNEL_COUNT,
               "kernel_names: one name per mixq_kernel");

const char *mixq_kernel_name(mixq_kernel k) {
    return (unsigned)k < MIXQ_KERNEL_COUNT ? kernel_names[k] : "?";
}

mixq_status mixq_kernel_parse(const char *name, mixq_kernel *out) {
    for (int k = 0; k < MIXQ_KERNEL_COUNT; k++)
        if (name && !strcmp(name, kernel_names[k])) {
            *out = (mixq_kernel)k;
            return MIXQ_OK;
        }
    return mq_err(MIXQ_ERR_ARG, "unknown kernel '%s'; hint: auto, bitserial, int8 or fp32",
                  name ? name : "(null)");
}

int mixq_kernel_available(mixq_kernel k) {
    switch (k) {
    case MIXQ_KERNEL_AUTO:
    case MIXQ_KERNEL_BITSERIAL:
    case MIXQ_KERNEL_FP32:
        return 1;
    case MIXQ_KERNEL_INT8:
        return mq_i8_available();
    default:
        return 0;
    }
}

void mixq_runtime_config_default(mixq_runtime_config *c) {
    memset(c, 0, sizeof *c);
    c->kernel = MIXQ_KERNEL_AUTO;
}

void mixq_runtime_free(mixq_runtime *rt) {
    if (!rt) return;
    for (int i = 0; rt->nodes && i < rt->n_nodes; i++) {
        free(rt->nodes[i].gamma);
        free(rt->nodes[i].beta);
        free(rt->nodes[i].rm);
        free(rt->nodes[i].rv);
    }
    free(rt->nodes);
    for (int i = 0; rt->convs && i < rt->n_convs; i++) rt_conv_free(&rt->convs[i]);
    free(rt->convs);
    for (int i = 0; rt->slot_buf && i < rt->n_slots; i++) free(rt->slot_buf[i]);
    free(rt->slot_buf);
    for (int i = 0; rt->scr && i < rt->n_scr; i++) rt_scratch_free(&rt->scr[i]);
    free(rt->scr);
    free(rt->tsec);
    free(rt);
}

static float *copy_floats(const float *src, int n, const char *what) {
    float *d = mq_malloc((size_t)n, sizeof(float), what);
    if (d && src) memcpy(d, src, sizeof(float) * (size_t)n);
    return d;
}

static mixq_status build_codes(rt_conv *c, const mq_qlayer *ql, const float *w);

/* Build layer node i of m (a quantized conv/linear). */
static mixq_status build_conv(mixq_model *m, int node, rt_conv *c) {
    mq_qlayer ql;
    mixq_status st = mq_qlayer_get(m, node, &ql);
    if (st) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", mixq_last_error());
        return mq_err(st, "runtime: %s", msg);
    }
    const mq_node *n = &m->nodes[node];
    const mq_node *a = &m->nodes[n->in[0]];
    const mq_geom *g = &n->geo;
    if (n->op == MIXQ_OP_CONV && (g->sh != g->sw || g->pt != g->pl || g->pt != g->pb || g->pt != g->pr))
        return mq_err(MIXQ_ERR_UNSUPPORTED, "runtime: conv layer '%s' has strides %dx%d and pads %d,%d,%d,%d "
                      "(top, left, bottom, right); the integer runtime runs one stride and the same pad on every "
                      "side; hint: evaluate the fake-quantized model (mixq eval) instead", n->name, g->sh, g->sw,
                      g->pt, g->pl, g->pb, g->pr);
    snprintf(c->name, sizeof c->name, "%s", n->name);
    c->node = node;
    c->fc = n->op == MIXQ_OP_LINEAR;
    c->C = c->fc ? a->c * a->h * a->w : a->c;
    c->H = a->h;
    c->W = a->w;
    c->K = n->c;
    c->R = g->kh;
    c->S = g->kw;
    c->stride = g->sh;
    c->pad = g->pt;
    c->G = n->groups > 0 ? n->groups : 1;
    c->a_bits = ql.a_bits;
    c->a_signed = ql.a_signed;
    c->a_float = ql.a_bits == MIXQ_FLOAT_BITS;
    c->kbits = mq_malloc((size_t)c->K, sizeof(int), "runtime kernel bits");
    if (!c->kbits) return MIXQ_ERR_NOMEM;
    memcpy(c->kbits, ql.kbits, sizeof(int) * (size_t)c->K);
    if (c->a_float) c->a_bits = 8; /* placeholder for prepare; not used */
    st = rt_conv_prepare(c);
    if (st) return st;
    if (c->a_float) c->a_bits = MIXQ_FLOAT_BITS;
    if (!c->a_float) {
        if (!(ql.a_clip > 0))
            return mq_err(MIXQ_ERR_STATE, "runtime: layer '%s' has no calibrated activation clip; "
                          "hint: calibrate the model (mixq quantize calibrates)", c->name);
        c->s_a = ql.a_scale; /* codes clamp(nearbyintf(x / s_a)), as mq_act_fake_quant */
    }
    const float *b = ql.bias ? ql.bias : mq_tensor_ptr(m, n->t_b); /* as the fake-quantized model */
    if (b) memcpy(c->bias, b, sizeof(float) * (size_t)c->K);
    return build_codes(c, &ql, ql.wq ? ql.wq : mq_tensor_ptr(m, n->t_w));
}

/* The layer's integer weight codes (the description's, KCRS) as wc with scales s_a * s_w, or its
 * (fake-quantized) float weights w [K][inner] for the fp32 kernel; either cropped to the taps
 * rt_conv_prepare kept. */
static mixq_status build_codes(rt_conv *c, const mq_qlayer *ql, const float *w) {
    const size_t n = (size_t)c->K * (size_t)c->Kd;
    const int crop = c->R != c->R0 || c->S != c->S0;
    if (ql->inner != (int64_t)c->R0 * c->S0 * (c->C / c->G))
        return mq_err(MIXQ_ERR_SHAPE, "runtime: layer '%s': %lld weights per kernel, the layer "
                      "reads %d", c->name, (long long)ql->inner, c->R0 * c->S0 * (c->C / c->G));
    if (!ql->codes || c->a_float) {
        c->kernel = MIXQ_KERNEL_FP32;
        c->wf = mq_malloc(n, sizeof(float), "runtime float weights");
        if (!c->wf) return MIXQ_ERR_NOMEM;
        if (crop) rt_conv_crop_weights(c, w, c->wf, sizeof(float));
        else memcpy(c->wf, w, n * sizeof(float));
        for (int k = 0; k < c->K; k++) c->sc[k] = 1.0f;
        return MIXQ_OK;
    }
    c->wc = mq_malloc(n, 1, "runtime weight codes");
    if (!c->wc) return MIXQ_ERR_NOMEM;
    if (crop) rt_conv_crop_weights(c, ql->codes, c->wc, 1);
    else memcpy(c->wc, ql->codes, n);
    for (int k = 0; k < c->K; k++) c->sc[k] = c->s_a * ql->scale[k];
    return MIXQ_OK;
}

static mixq_status choose_kernel(rt_conv *c, const mixq_runtime_config *cfg, mixq_hw *table) {
    if (c->kernel == MIXQ_KERNEL_FP32) return MIXQ_OK;
    if (cfg->kernel == MIXQ_KERNEL_BITSERIAL || cfg->kernel == MIXQ_KERNEL_INT8) {
        c->kernel = cfg->kernel;
        return MIXQ_OK;
    }
    if (cfg->kernel == MIXQ_KERNEL_FP32)
        return mq_err(MIXQ_ERR_ARG, "runtime: the fp32 kernel cannot be forced on quantized "
                      "layers; hint: auto, bitserial or int8");
    if (!table) {
        c->kernel = rt_rule_kernel(c->w_max, c->a_bits, c->Kd);
        return MIXQ_OK;
    }
    mixq_hw_layer l = {.name = c->name, .fc = c->fc, .in_c = c->C, .in_h = c->fc ? 1 : c->H,
                       .in_w = c->fc ? 1 : c->W, .out_c = c->K, .kh = c->R0, .kw = c->S0,
                       .stride = c->stride, .pad = c->pad0, .groups = c->G};
    double t_int8, t_bs;
    mixq_status st = mq_hw_cpu_times(table, &l, c->kbits, c->a_bits, &t_int8, &t_bs);
    if (st) return st;
    c->kernel = (t_int8 < t_bs && mq_i8_available()) ? MIXQ_KERNEL_INT8 : MIXQ_KERNEL_BITSERIAL;
    return MIXQ_OK;
}

static int consumers(const mixq_model *m, int node, int *only) {
    int cnt = 0;
    for (int j = node + 1; j < m->n_nodes; j++)
        for (int t = 0; t < m->nodes[j].n_in; t++)
            if (m->nodes[j].in[t] == node) {
                cnt++;
                *only = j;
            }
    return cnt;
}

/* How many nodes read the buffer that node o owns (the last one in *reader); the logits
 * aliasing it count twice, since they must stay float. */
static int readers_of(const mixq_runtime *rt, int o, int *reader) {
    int readers = 0;
    *reader = -1;
    for (int j = o + 1; j < rt->n_nodes; j++) {
        const rt_node *r = &rt->nodes[j];
        if (r->alias == o) {
            if (j == rt->n_nodes - 1) readers += 2;
            continue;
        }
        for (int t = 0; t < r->n_in; t++)
            if (owner(rt, r->in[t]) == o) {
                readers++;
                *reader = j;
            }
    }
    return readers;
}

/* The node that reads node i's output when exactly one node does (a flatten passed
 * through), else -1. */
static int sole_reader(const mixq_model *m, int i) {
    int r = -1;
    for (;;) {
        if (consumers(m, i, &r) != 1 || r == m->n_nodes - 1) return -1;
        if (m->nodes[r].op != MIXQ_OP_FLATTEN) return r;
        i = r;
    }
}

void rt_fusion_hint(const mixq_model *m, int node, int *in_codes, int *out_codes) {
    *in_codes = *out_codes = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const mixq_op op = m->nodes[i].op;
        if (op != MIXQ_OP_CONV && op != MIXQ_OP_LINEAR) continue;
        int cur = i, nxt;
        if ((nxt = sole_reader(m, cur)) >= 0 && m->nodes[nxt].op == MIXQ_OP_BN) cur = nxt;
        if ((nxt = sole_reader(m, cur)) >= 0 &&
            (m->nodes[nxt].op == MIXQ_OP_RELU || m->nodes[nxt].op == MIXQ_OP_RELU6))
            cur = nxt;
        if ((nxt = sole_reader(m, cur)) >= 0 && m->nodes[nxt].op == MIXQ_OP_MAXPOOL)
            nxt = sole_reader(m, nxt);
        if (nxt < 0 || (m->nodes[nxt].op != MIXQ_OP_CONV && m->nodes[nxt].op != MIXQ_OP_LINEAR))
            continue;
        if (i == node) *out_codes = m->nodes[nxt].op == MIXQ_OP_LINEAR ? 2 : 1;
        if (nxt == node) *in_codes = 1;
    }
}

mixq_status mixq_runtime_create(mixq_model *m, const mixq_runtime_config *cfg_in,
                                mixq_runtime **out) {
    *out = NULL;
    if (!m) return mq_err(MIXQ_ERR_ARG, "runtime: no model");
    if (!mixq_model_is_quantized(m))
        return mq_err(MIXQ_ERR_ARG, "runtime: model '%s' is not quantized; hint: mixq quantize "
                      "m.mixq --policy p.json --out q.mixq first", m->arch);
    mixq_runtime_config cfg;
    if (cfg_in) cfg = *cfg_in;
    else mixq_runtime_config_default(&cfg);
    if ((unsigned)cfg.kernel >= MIXQ_KERNEL_COUNT)
        return mq_err(MIXQ_ERR_ARG, "runtime: kernel %d out of range", (int)cfg.kernel);
    if (cfg.kernel == MIXQ_KERNEL_INT8 && !mq_i8_available())
        return mq_err(MIXQ_ERR_UNSUPPORTED, "runtime: the int8 kernel needs VNNI (AVX-512 VNNI or "
                      "AVX-VNNI), which this CPU lacks; hint: --kernel bitserial");
    mixq_hw *table = NULL;
    mixq_status st = MIXQ_OK;
    if (cfg.kernel == MIXQ_KERNEL_AUTO && cfg.cpu_table && cfg.cpu_table[0]) {
        st = mixq_hw_load(cfg.cpu_table, &table);
        if (st) return st;
        if (strcmp(mixq_hw_backend(table), "cpu")) {
            st = mq_err(MIXQ_ERR_ARG, "runtime: '%s' is a '%s' target, not a measured CPU table; "
                        "hint: mixq calibrate-cpu writes one", cfg.cpu_table, mixq_hw_backend(table));
            mixq_hw_free(table);
            return st;
        }
    }
    mixq_runtime *rt = mq_calloc(1, sizeof *rt, "runtime");
    if (!rt) {
        mixq_hw_free(table);
        return MIXQ_ERR_NOMEM;
    }
    rt->n_nodes = m->n_nodes;
    rt->nodes = mq_calloc((size_t)m->n_nodes, sizeof *rt->nodes, "runtime nodes");
    rt->convs = mq_calloc((size_t)m->n_nodes, sizeof *rt->convs, "runtime layers");
    if (!rt->nodes || !rt->convs) {
        st = MIXQ_ERR_NOMEM;
        goto fail;
    }
    mixq_model_input_shape(m, &rt->in_c, &rt->in_h, &rt->in_w, &rt->classes);
    mixq_model_preprocess(m, &rt->pp);

    for (int i = 0; !st && i < m->n_nodes; i++) {
        const mq_node *n = &m->nodes[i];
        rt_node *r = &rt->nodes[i];
        r->op = n->op;
        r->n_in = n->n_in;
        r->in[0] = n->in[0];
        r->in[1] = n->in[1];
        r->c = n->c;
        r->h = n->h;
        r->w = n->w;
        r->geo = n->geo;
        r->hs_alpha = n->alpha;
        r->hs_beta = n->beta;
        r->conv = -1;
        r->alias = -1;
        r->slot = -1;
        if (n->n_in) {
            const mq_node *a = &m->nodes[n->in[0]];
            r->ic = a->c;
            r->ih = a->h;
            r->iw = a->w;
        }
        if (n->op == MIXQ_OP_CONV || n->op == MIXQ_OP_LINEAR) {
            rt_conv *c = &rt->convs[rt->n_convs];
            r->conv = rt->n_convs++;
            if ((st = build_conv(m, i, c))) break;
            if ((st = choose_kernel(c, &cfg, table))) break;
            if ((st = rt_conv_pack(c))) break;
        } else if (n->op == MIXQ_OP_BN) {
            r->eps = n->bn_eps;
            r->gamma = copy_floats(mq_tensor_ptr(m, n->t_w), n->c, "runtime batch norm");
            r->beta = copy_floats(mq_tensor_ptr(m, n->t_b), n->c, "runtime batch norm");
            r->rm = copy_floats(mq_tensor_ptr(m, n->t_rm), n->c, "runtime batch norm");
            r->rv = copy_floats(mq_tensor_ptr(m, n->t_rv), n->c, "runtime batch norm");
            if (!r->gamma || !r->beta || !r->rm || !r->rv) st = MIXQ_ERR_NOMEM;
        } else if (n->op == MIXQ_OP_FLATTEN) {
            r->alias = n->in[0];
        }
    }
    mixq_hw_free(table);
    table = NULL;
    if (st) goto fail;

    /* fusion: layer -> BN -> ReLU/ReLU6, each the only consumer of its input */
    for (int ci = 0; ci < rt->n_convs; ci++) {
        rt_conv *c = &rt->convs[ci];
        int cur = c->node, nxt;
        if (consumers(m, cur, &nxt) == 1 && rt->nodes[nxt].op == MIXQ_OP_BN &&
            rt->nodes[nxt].in[0] == cur) {
            rt_node *b = &rt->nodes[nxt];
            for (int k = 0; k < c->K; k++) {
                /* as mq_bn_forward in inference mode */
                const float invstd = (float)(1.0 / sqrt((double)b->rv[k] + b->eps));
                c->bn_a[k] = b->gamma[k] * invstd;
                c->bn_b[k] = b->beta[k] - b->rm[k] * c->bn_a[k];
            }
            c->has_bn = 1;
            b->alias = c->node;
            snprintf(c->fused, sizeof c->fused, "bn");
            cur = nxt;
        }
        if (consumers(m, cur, &nxt) == 1 &&
            (rt->nodes[nxt].op == MIXQ_OP_RELU || rt->nodes[nxt].op == MIXQ_OP_RELU6)) {
            c->act = rt->nodes[nxt].op == MIXQ_OP_RELU ? 1 : 2;
            rt->nodes[nxt].alias = c->node;
            size_t l = strlen(c->fused);
            snprintf(c->fused + l, sizeof c->fused - l, "%s%s", l ? "+" : "",
                     c->act == 1 ? "relu" : "relu6");
        }
    }
    /* resolve alias chains to the owning node */
    for (int i = 0; i < rt->n_nodes; i++) {
        int a = rt->nodes[i].alias;
        while (a >= 0 && rt->nodes[a].alias >= 0) a = rt->nodes[a].alias;
        rt->nodes[i].alias = a;
    }
    /* fused re-quantization: a layer whose (fused) output is read by exactly one node, an
     * integer layer, hands it codes instead of floats */
    for (int ci = 0; ci < rt->n_convs; ci++) {
        rt_conv *c = &rt->convs[ci];
        const int o = c->node;
        if (c->kernel == MIXQ_KERNEL_FP32 || o == rt->n_nodes - 1) continue;
        int reader;
        if (readers_of(rt, o, &reader) != 1) continue;
        /* a max pool between the two layers runs on the codes: quantization is monotone
         * (x -> clamp(nearbyintf(x / s)) + off never decreases), so the max of the codes is
         * the code of the max, and the consumer's codes come out exactly as from its own
         * quantizer */
        rt_node *pool = NULL;
        if (rt->nodes[reader].op == MIXQ_OP_MAXPOOL) {
            pool = &rt->nodes[reader];
            if (readers_of(rt, reader, &reader) != 1) continue;
        }
        if (rt->nodes[reader].conv < 0) continue;
        rt_conv *d = &rt->convs[rt->nodes[reader].conv];
        if (d->kernel == MIXQ_KERNEL_FP32 || d->a_float) continue;
        if (pool) {
            c->out_codes = 1;
            pool->codes = d->fc ? 2 : 1;
        } else {
            c->out_codes = d->fc ? 2 : 1;
        }
        c->nq_s = d->s_a;
        c->nq_lo = d->qmin;
        c->nq_hi = d->qmax;
        c->nq_off = d->a_off;
        rt_conv_thresholds(c);
        d->in_codes = 1;
        size_t l = strlen(c->fused);
        snprintf(c->fused + l, sizeof c->fused - l, "%srequant", l ? "+" : "");
    }
    /* liveness: last reader of every owner's buffer */
    int *last = mq_malloc((size_t)rt->n_nodes, sizeof(int), "runtime");
    int *busy = mq_calloc((size_t)rt->n_nodes + 1, sizeof(int), "runtime");
    if (!last || !busy) {
        free(last);
        free(busy);
        st = MIXQ_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < rt->n_nodes; i++) last[i] = i;
    last[rt->n_nodes - 1] = rt->n_nodes; /* the logits survive */
    for (int j = 0; j < rt->n_nodes; j++) {
        const rt_node *r = &rt->nodes[j];
        const int own_j = owner(rt, j);
        if (own_j != j && last[own_j] < last[j]) last[own_j] = last[j];
        for (int t = 0; t < r->n_in; t++) {
            const int a = owner(rt, r->in[t]);
            if (last[a] < j) last[a] = j;
        }
    }
    /* slots: a free list over the topological order (slot_busy_until[s] = last reader) */
    rt->slot_floats = 0;
    for (int i = 0; i < rt->n_nodes; i++) {
        size_t f = (size_t)rt->nodes[i].c * rt->nodes[i].h * rt->nodes[i].w;
        if (f > rt->slot_floats) rt->slot_floats = f;
    }
    int nslots = 0;
    for (int i = 1; i < rt->n_nodes; i++) {
        rt_node *r = &rt->nodes[i];
        if (r->alias >= 0) continue;
        int s = -1;
        for (int t = 0; t < nslots; t++)
            if (busy[t] < i) { /* its last reader ran before node i */
                s = t;
                break;
            }
        if (s < 0) s = nslots++;
        /* a node may not write the buffer it reads: busy[] holds last readers >= i */
        busy[s] = last[i];
        r->slot = s;
    }
    for (int i = 1; i < rt->n_nodes; i++)
        rt->nodes[i].slot = rt->nodes[owner(rt, i)].slot;
    free(last);
    free(busy);
    rt->n_slots = nslots;
    rt->slot_buf = mq_calloc((size_t)nslots, sizeof(float *), "runtime buffers");
    rt->n_scr = MQ_MAX(1, MQ_MIN(64, mq_threads()));
    rt->scr = mq_calloc((size_t)rt->n_scr, sizeof *rt->scr, "runtime scratch");
    rt->tsec = mq_calloc((size_t)rt->n_scr * (size_t)MQ_MAX(1, rt->n_convs), sizeof *rt->tsec,
                         "runtime layer times");
    if (!rt->slot_buf || !rt->scr || !rt->tsec) {
        st = MIXQ_ERR_NOMEM;
        goto fail;
    }
    *out = rt;
    return MIXQ_OK;
fail:
    mixq_hw_free(table);
    mixq_runtime_free(rt);
    return st;
}

/* o[ch] = the max over a kh x kw window of NHWC codes starting at v (rows ld bytes apart, taps C
 * bytes apart), for ch < C. o never overlaps the input (the pool writes another buffer). 2 x 2
 * windows (vgg's pools) in one pass over the channels; others row by row. */
static void window_max(const uint8_t *restrict v, size_t ld, int kh, int kw, int C,
                       uint8_t *restrict o) {
    if (kh == 2 && kw == 2) {
        const uint8_t *restrict a = v, *restrict b = v + C, *restrict c = v + ld, *restrict d = c + C;
        for (int ch = 0; ch < C; ch++) {
            const uint8_t x = a[ch] > b[ch] ? a[ch] : b[ch], y = c[ch] > d[ch] ? c[ch] : d[ch];
            o[ch] = x > y ? x : y;
        }
        return;
    }
    for (int ch = 0; ch < C; ch++) o[ch] = v[ch];
    for (int r = 0; r < kh; r++)
        for (int t = r ? 0 : 1; t < kw; t++) {
            const uint8_t *restrict u = v + (size_t)r * ld + (size_t)t * C;
            for (int ch = 0; ch < C; ch++) o[ch] = u[ch] > o[ch] ? u[ch] : o[ch];
        }
}

/* Max pool on activation codes (the fused re-quantization through a pool):
 *   x uint8 [n][H][W][C] (NHWC), window g (taps outside are skipped)
 *   y uint8 [n][P][Q][C] (NHWC, a conv consumer) or, nchw, [n][C][P][Q] (a linear consumer's
 *     NCHW-flatten order). The inner loop runs over contiguous channels. */
static void maxpool_codes(int n, int C, int H, int W, const mq_geom *g, int P, int Q,
                          const uint8_t *x, uint8_t *y, int nchw) {
    const int kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw, pt = g->pt, pl = g->pl;
    for (int i = 0; i < n; i++) {
        const uint8_t *xi = x + (size_t)i * H * W * C;
        uint8_t *yi = y + (size_t)i * P * Q * C;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                if (nchw) { /* a linear consumer: small, strided reads are fine */
                    for (int ch = 0; ch < C; ch++) {
                        uint8_t m = 0;
                        for (int r = 0; r < kh; r++)
                            for (int t = 0; t < kw; t++) {
                                const int h = p * sh - pt + r, w = q * sw - pl + t;
                                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                                const uint8_t v = xi[((size_t)h * W + w) * C + ch];
                                m = v > m ? v : m;
                            }
                        yi[(size_t)ch * P * Q + (size_t)p * Q + q] = m;
                    }
                    continue;
                }
                uint8_t *o = yi + ((size_t)p * Q + q) * C;
                const int h0 = p * sh - pt, w0 = q * sw - pl;
                if (h0 >= 0 && h0 + kh <= H && w0 >= 0 && w0 + kw <= W) {
                    /* a window inside the map: the max of its kh rows of kw * C contiguous
                     * bytes, in vectors over the channels */
                    window_max(xi + ((size_t)h0 * W + w0) * C, (size_t)W * C, kh, kw, C, o);
                    continue;
                }
                memset(o, 0, (size_t)C);
                for (int r = 0; r < kh; r++) {
                    const int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    for (int t = 0; t < kw; t++) {
                        const int w = q * sw - pl + t;
                        if (w < 0 || w >= W) continue;
                        const uint8_t *v = xi + ((size_t)h * W + w) * C;
                        for (int ch = 0; ch < C; ch++) o[ch] = v[ch] > o[ch] ? v[ch] : o[ch];
                    }
                }
            }
    }
}

static mixq_status reserve(mixq_runtime *rt, int n) {
    if (n <= rt->batch_cap) return MIXQ_OK;
    for (int s = 0; s < rt->n_slots; s++) {
        free(rt->slot_buf[s]);
        rt->slot_buf[s] = mq_alloc_aligned(sizeof(float) * rt->slot_floats * (size_t)n,
                                           "runtime activations");
        if (!rt->slot_buf[s]) {
            rt->batch_cap = 0;
            return MIXQ_ERR_NOMEM;
        }
    }
    rt->batch_cap = n;
    return MIXQ_OK;
}

/* Images [i0, i1) of a forward, node by node, on one scratch (kthreads for the bit-serial GEMM
 * inside a layer), into logits + i0 * classes. Chunks must not share memory: a pooled buffer
 * holds tensors of different per-image sizes over the forward (each at most slot_floats), so
 * this chunk's tensors live, dense ([n][c][h][w] floats or the same count of uint8 codes), from
 * image i0's place in every buffer: slot_buf + i0 * slot_floats. Each layer's time is added to
 * tsec[conv]. */
static mixq_status run_nodes(mixq_runtime *rt, const float *x, int i0, int i1, rt_scratch *scr,
                             int kthreads, double *tsec, float *logits) {
    const int n = i1 - i0;
    mixq_status st = MIXQ_OK;
    const float *xin = x + (size_t)i0 * rt->in_c * rt->in_h * rt->in_w;
    const size_t off = (size_t)i0 * rt->slot_floats;
#define BUF(j) (owner(rt, j) == 0 ? (float *)xin : rt->slot_buf[rt->nodes[owner(rt, j)].slot] + off)
    for (int i = 1; i < rt->n_nodes; i++) {
        const rt_node *r = &rt->nodes[i];
        if (r->conv >= 0) {
            if (rt->trace) rt->trace(rt->trace_user, &rt->convs[r->conv], BUF(r->in[0]), n);
            const double t0 = mq_now();
            st = rt_conv_run(&rt->convs[r->conv], BUF(r->in[0]), BUF(i), 0, n, scr, kthreads);
            tsec[r->conv] += mq_now() - t0;
            if (st) return st;
            continue;
        }
        if (r->alias >= 0) continue; /* fused into its layer, or a flatten */
        const float *a = BUF(r->in[0]);
        float *y = BUF(i);
        const int64_t numel = (int64_t)n * r->c * r->h * r->w;
        switch (r->op) {
        case MIXQ_OP_BN:
            st = mq_bn_forward(n, r->c, r->h * r->w, a, r->gamma, r->beta, r->rm, r->rv, r->eps,
                               0.1f, 0, NULL, NULL, y);
            break;
        case MIXQ_OP_RELU:
            mq_relu_forward(numel, a, y);
            break;
        case MIXQ_OP_RELU6:
            mq_relu6_forward(numel, a, y);
            break;
        case MIXQ_OP_MAXPOOL:
            if (r->codes)
                maxpool_codes(n, r->ic, r->ih, r->iw, &r->geo, r->h, r->w, (const uint8_t *)a, (uint8_t *)y,
                              r->codes == 2);
            else
                mq_maxpool_infer(n, r->ic, r->ih, r->iw, &r->geo, r->h, r->w, a, y);
            break;
        case MIXQ_OP_AVGPOOL:
            mq_avgpool_forward(n, r->ic, r->ih, r->iw, &r->geo, r->h, r->w, a, y);
            break;
        case MIXQ_OP_GAP:
            mq_gap_forward(n, r->ic, r->ih * r->iw, a, y);
            break;
        case MIXQ_OP_ADD:
            mq_add_forward(numel, a, BUF(r->in[1]), y);
            break;
        case MIXQ_OP_MUL: {
            const rt_node *b = &rt->nodes[r->in[1]];
            mq_mul_forward((int64_t)n * r->c, r->h * r->w, b->h * b->w, a, BUF(r->in[1]), y);
            break;
        }
        case MIXQ_OP_CONCAT:
            mq_concat_forward(n, r->ic, r->c - r->ic, r->h * r->w, a, BUF(r->in[1]), y);
            break;
        case MIXQ_OP_SIGMOID:
            mq_sigmoid_forward(numel, a, y);
            break;
        case MIXQ_OP_HSIGMOID:
            mq_hsigmoid_forward(numel, r->hs_alpha, r->hs_beta, a, y);
            break;
        case MIXQ_OP_HSWISH:
            mq_hswish_forward(numel, a, y);
            break;
        default:
            st = mq_err(MIXQ_ERR_UNSUPPORTED, "runtime: node %d: op %s not supported", i,
                        mixq_op_name(r->op));
        }
        if (st) return st;
    }
    memcpy(logits + (size_t)i0 * rt->classes, BUF(rt->n_nodes - 1),
           sizeof(float) * (size_t)n * (size_t)rt->classes);
#undef BUF
    return MIXQ_OK;
}

typedef struct net_chunks {
    mixq_runtime *rt;
    const float *x;
    double *tsec;
    int nc;
    float *logits;
} net_chunks;

static mixq_status net_chunk(void *ctx, int t, int i0, int i1) {
    const net_chunks *k = ctx;
    return run_nodes(k->rt, k->x, i0, i1, &k->rt->scr[t], 1, k->tsec + (size_t)t * k->nc, k->logits);
}

/* A batch of n >= 2 on T >= 2 threads runs as min(n, T) chunks of whole images, each through the
 * whole network on its own thread and scratch: one fork-join per forward, and the elementwise
 * nodes (residual adds, pools, batch norms) run in parallel too. A single image runs on one
 * thread, its bit-serial GEMMs split across T. Results do not depend on the split (every image
 * is computed by the same code). A layer's time is the longest chunk's. */
mixq_status mixq_runtime_forward(mixq_runtime *rt, const float *x, int n, float *logits) {
    if (!rt || !x || !logits || n < 1)
        return mq_err(MIXQ_ERR_ARG, "runtime forward: bad arguments (n=%d)", n);
    const int64_t in_numel = (int64_t)n * rt->in_c * rt->in_h * rt->in_w;
    for (int64_t i = 0; i < in_numel; i++)
        if (!isfinite(x[i]))
            return mq_err(MIXQ_ERR_NUMERIC, "runtime forward: input value %lld is %g",
                          (long long)i, (double)x[i]);
    mixq_status st = reserve(rt, n);
    if (st) return st;
    const int T = MQ_MIN(rt->n_scr, mq_threads());
    const int chunks = n > 1 && T > 1 ? MQ_MIN(n, T) : 1;
    const int nc = MQ_MAX(1, rt->n_convs);
    double *tsec = rt->tsec; /* chunks <= n_scr rows */
    memset(tsec, 0, sizeof *tsec * (size_t)chunks * (size_t)nc);
    if (chunks > 1) {
        net_chunks k = {rt, x, tsec, nc, logits};
        st = rt_run_chunks(n, chunks, net_chunk, &k);
    } else {
        st = run_nodes(rt, x, 0, n, &rt->scr[0], T, tsec, logits);
    }
    for (int c = 0; c < rt->n_convs; c++) {
        double m = 0;
        for (int t = 0; t < chunks; t++) m = MQ_MAX(m, tsec[(size_t)t * nc + c]);
        rt->convs[c].seconds += m;
        rt->convs[c].images += n;
    }
    return st;
}

int mixq_runtime_layer_count(const mixq_runtime *rt) { return rt ? rt->n_convs : 0; }

mixq_status mixq_runtime_layer(const mixq_runtime *rt, int i, mixq_runtime_layer_info *out) {
    if (!rt || i < 0 || i >= rt->n_convs)
        return mq_err(MIXQ_ERR_ARG, "runtime layer %d out of range", i);
    const rt_conv *c = &rt->convs[i];
    memset(out, 0, sizeof *out);
    out->name = c->name;
    out->node = c->node;
    out->kernel = c->kernel;
    out->w_bits = c->w_max;
    out->a_bits = c->a_bits;
    out->mixed = c->mixed;
    out->fused = c->fused;
    out->macs = (int64_t)c->P * c->Q * c->K * c->Kd;
    out->seconds = c->seconds;
    out->images = c->images;
    return MIXQ_OK;
}

void mixq_runtime_reset_times(mixq_runtime *rt) {
    for (int i = 0; rt && i < rt->n_convs; i++) {
        rt->convs[i].seconds = 0;
        rt->convs[i].images = 0;
    }
}

mixq_status mixq_runtime_evaluate(mixq_runtime *rt, mixq_model *ref, const mixq_dataset *d,
                                  int batch, mixq_runtime_eval *out) {
    if (!rt || !d || !out || batch < 1)
        return mq_err(MIXQ_ERR_ARG, "runtime evaluate: bad arguments (batch %d)", batch);
    memset(out, 0, sizeof *out);
    out->ref_accuracy = -1;
    int c, h, w, classes;
    mixq_dataset_shape(d, &c, &h, &w, &classes);
    if (c != rt->in_c || h != rt->in_h || w != rt->in_w)
        return mq_err(MIXQ_ERR_SHAPE, "runtime evaluate: dataset images are %dx%dx%d, the model "
                      "takes %dx%dx%d", c, h, w, rt->in_c, rt->in_h, rt->in_w);
    if (classes > rt->classes)
        return mq_err(MIXQ_ERR_SHAPE, "runtime evaluate: dataset has %d classes, the model %d",
                      classes, rt->classes);
    const int n = mixq_dataset_count(d);
    const int b = MQ_MIN(batch, n);
    const size_t per = (size_t)c * h * w;
    float *x = mq_malloc((size_t)b * per, sizeof(float), "evaluation batch");
    float *lg = mq_malloc((size_t)b * rt->classes, sizeof(float), "evaluation logits");
    float *lr = ref ? mq_malloc((size_t)b * rt->classes, sizeof(float), "evaluation logits") : NULL;
    int *lab = mq_malloc((size_t)b, sizeof(int), "evaluation labels");
    mixq_status st = MIXQ_OK;
    if (!x || !lg || !lab || (ref && !lr)) st = MIXQ_ERR_NOMEM;
    int64_t correct = 0, ref_correct = 0;
    for (int s = 0; !st && s < n; s += b) {
        const int nb = MQ_MIN(b, n - s);
        if ((st = mixq_dataset_batch(d, &rt->pp, s, nb, x, lab))) break;
        /* one untimed warm-up forward first (the scratch for this batch size is allocated and
         * touched; ORT's timings warm up the same way); the layers' own counters skip it too */
        if (s == 0) {
            double *keep = mq_malloc((size_t)rt->n_convs * 2 + 1, sizeof(double), "layer times");
            if (!keep) {
                st = MIXQ_ERR_NOMEM;
                break;
            }
            for (int i = 0; i < rt->n_convs; i++)
                keep[2 * i] = rt->convs[i].seconds, keep[2 * i + 1] = (double)rt->convs[i].images;
            st = mixq_runtime_forward(rt, x, nb, lg);
            for (int i = 0; i < rt->n_convs; i++)
                rt->convs[i].seconds = keep[2 * i], rt->convs[i].images = (int64_t)keep[2 * i + 1];
            free(keep);
            if (st) break;
        }
        const double t0 = mq_now();
        if ((st = mixq_runtime_forward(rt, x, nb, lg))) break;
        out->seconds += mq_now() - t0;
        if (ref && (st = mixq_model_forward(ref, x, nb, 0, lr))) break;
        for (int i = 0; i < nb; i++) {
            const int p = mq_argmax(lg + (size_t)i * rt->classes, rt->classes);
            correct += p == lab[i];
            if (!ref) continue;
            const int pr = mq_argmax(lr + (size_t)i * rt->classes, rt->classes);
            ref_correct += pr == lab[i];
            out->disagree += p != pr;
            if (p != pr) {
                const double la = lr[(size_t)i * rt->classes + p], lb = lr[(size_t)i * rt->classes + pr];
                out->disagree_ties += fabs(la - lb) <= 1e-5 * fmax(1.0, fabs(lb));
            }
            for (int j = 0; j < rt->classes; j++) {
                const double dd = fabs((double)lg[(size_t)i * rt->classes + j] -
                                       (double)lr[(size_t)i * rt->classes + j]);
                if (dd > out->max_logit_diff) out->max_logit_diff = dd;
            }
        }
    }
    free(x);
    free(lg);
    free(lr);
    free(lab);
    if (st) return st;
    out->images = n;
    out->accuracy = (double)correct / n;
    if (ref) out->ref_accuracy = (double)ref_correct / n;
    out->images_per_s = out->seconds > 0 ? n / out->seconds : 0;
    return MIXQ_OK;
}
