/* EBS's mixed-precision layers: see mixture.h. Installed as the model's quantization hooks
 * (nn/model.h), in place of a policy's (mixq_model_quantize replaces them again). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "quant/mixture.h"
#include "quant/policy.h"
#include "quant/qmodel.h"
#include "quant/quant.h"

typedef struct mlayer {
    mq_mix_layer pub;
    int K;
    int64_t inner, numel;
    float *scale;          /* [nw][K] */
    float *wq;             /* [nw][numel] Q_{b_i}(W) */
    uint8_t *mask;         /* [nw][numel] their STE masks */
    float *wmix;           /* [numel] W^ */
    float *bq;             /* [K] the bias on the accumulator grid (one-hot integer layers) */
    uint64_t wver;
    int wvalid;
    float *xq;             /* [cap] x^ of the last forward */
    size_t xq_cap;
    float rf[MQ_MIX_MAXB], sf[MQ_MIX_MAXB]; /* soft weights the backward differentiates (y) */
    /* calibration */
    float cmax;
    float *samples;
    int64_t nsamples;
} mlayer;

typedef struct mstate {
    int L;
    mlayer *layers;
    int *of_node;          /* [n_nodes] layer index or -1 */
    mq_mix_mode mode;
    float tau;
    int calibrating;
    float *dxq;            /* [dxq_cap] dL/dx^ */
    size_t dxq_cap;
    double *part;          /* [part_cap] the activation backward's block sums */
    size_t part_cap;
} mstate;

static mstate *S(const mixq_model *m) { return (mstate *)m->q; }

static void mstate_free(mstate *s) {
    if (!s) return;
    for (int l = 0; s->layers && l < s->L; l++) {
        mlayer *y = &s->layers[l];
        free(y->scale);
        free(y->wq);
        free(y->mask);
        free(y->wmix);
        free(y->bq);
        free(y->xq);
        free(y->samples);
    }
    free(s->layers);
    free(s->of_node);
    free(s->dxq);
    free(s->part);
    free(s);
}

static void hook_free(mixq_model *m) {
    mstate_free(S(m));
    m->q = NULL;
    m->qh = NULL;
}

void mq_mix_softmax(const float *v, int n, double t, double *out) {
    float mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double z = 0;
    for (int i = 0; i < n; i++) z += exp(((double)v[i] - mx) / t);
    for (int i = 0; i < n; i++) out[i] = exp(((double)v[i] - mx) / t) / z;
}

/* the same in float (the mixing weights) */
static void softmax(const float *v, int n, float t, float *out) {
    double d[MQ_MIX_MAXB];
    mq_mix_softmax(v, n, t, d);
    for (int i = 0; i < n; i++) out[i] = (float)d[i];
}

/* The forward's mixing weights f[] and the soft weights y[] the backward differentiates, from
 * strengths v (noise g) under the state's mode. */
static void mixing(const mstate *s, const float *v, const float *g, int n, float *f, float *y) {
    if (n == 1) {
        f[0] = y[0] = 1;
        return;
    }
    if (s->mode == MQ_MIX_SOFT) {
        softmax(v, n, 1, y);
        memcpy(f, y, sizeof(float) * (size_t)n);
        return;
    }
    float z[MQ_MIX_MAXB] = {0};
    for (int i = 0; i < n; i++) z[i] = v[i] + (s->mode == MQ_MIX_GUMBEL ? g[i] : 0);
    softmax(z, n, s->mode == MQ_MIX_GUMBEL ? s->tau : 1, y);
    const int b = mq_argmax(z, n);
    for (int i = 0; i < n; i++) f[i] = i == b;
}

/* dv += J^T dr, the softmax Jacobian at y (temperature t): dv_k = y_k (dr_k - sum_i y_i dr_i) / t */
static void softmax_back(const float *y, const double *dr, int n, float t, double *dv) {
    double dot = 0;
    for (int i = 0; i < n; i++) dot += y[i] * dr[i];
    for (int k = 0; k < n; k++) dv[k] += y[k] * (dr[k] - dot) / t;
}

static mixq_status ensure_wq(mixq_model *m, mlayer *y) {
    if (y->wvalid && y->wver == m->params_version) return MIXQ_OK;
    const mq_node *n = &m->nodes[y->pub.node];
    const float *w = mq_tensor_ptr(m, n->t_w);
    for (int64_t j = 0; j < y->numel; j++)
        if (!isfinite(w[j]))
            return mq_err(MIXQ_ERR_NUMERIC, "layer '%s': weight %lld is %g; hint: lower the learning rate",
                          n->name, (long long)j, (double)w[j]);
    int *kb = mq_malloc((size_t)y->K, sizeof(int), "kernel bits");
    if (!kb) return MIXQ_ERR_NOMEM;
    mixq_status st = MIXQ_OK;
    for (int i = 0; i < y->pub.nw && !st; i++) {
        for (int k = 0; k < y->K; k++) kb[k] = y->pub.wbits[i];
        float *sc = y->scale + (size_t)i * y->K;
        st = mq_weight_scales(w, y->K, y->inner, kb, MQ_GRAN_CHANNEL, MQ_CLIP_MAX, sc);
        if (!st)
            mq_weight_fake_quant(w, y->K, y->inner, kb, sc, y->wq + (size_t)i * y->numel, NULL,
                                 y->mask + (size_t)i * y->numel);
    }
    free(kb);
    if (st) return st;
    y->wver = m->params_version;
    y->wvalid = 1;
    return MIXQ_OK;
}

static mixq_status ensure_dxq(mstate *s, size_t n) {
    if (n <= s->dxq_cap) return MIXQ_OK;
    float *c = mq_alloc_aligned(sizeof(float) * n, "mixture gradient");
    if (!c) return MIXQ_ERR_NOMEM;
    free(s->dxq);
    s->dxq = c;
    s->dxq_cap = n;
    return MIXQ_OK;
}

static int act_quant(const mq_mix_layer *p) { return !(p->na == 1 && p->abits[0] == MQ_FLOAT_BITS); }

/* ---- activation mixtures in one pass over the values (every candidate per value) */
#define MIX_CHUNK 65536

typedef struct acand {
    float step, qmin, qmax; /* step 0: a float (32-bit) candidate */
    float w;                /* its mixing weight s_j */
} acand;

static void act_cands(const mq_mix_layer *p, acand *c) {
    for (int j = 0; j < p->na; j++) {
        int lo = 0, hi = 0;
        mq_levels(p->abits[j], p->a_signed, &lo, &hi);
        c[j].step = p->abits[j] == MQ_FLOAT_BITS ? 0.0f : mq_act_scale(p->abits[j], p->a_signed, p->clip[j]);
        c[j].qmin = (float)lo, c[j].qmax = (float)hi, c[j].w = p->s[j];
    }
}

/* Values per block: each candidate's loop over a block is a plain loop the compiler vectorizes. */
#define MIX_BLOCK 512

/* x^ = sum_j s_j Q_j(x), the candidates in order (the first with s_j != 0 starts the sum). */
static void act_mix_forward(const acand *c, int na, const float *x, int64_t n, float *xq) {
    const int64_t nb = (n + MIX_BLOCK - 1) / MIX_BLOCK;
#pragma omp parallel for schedule(static) if (n > MIX_CHUNK)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t lo = b * MIX_BLOCK, m = MQ_MIN(n, lo + MIX_BLOCK) - lo;
        const float *xb = x + lo;
        float *yb = xq + lo;
        int first = 1;
        for (int j = 0; j < na; j++) {
            const float w = c[j].w, st = c[j].step, q0 = c[j].qmin, q1 = c[j].qmax;
            if (w == 0) continue;
            if (st > 0) {
                if (first)
                    for (int64_t i = 0; i < m; i++) yb[i] = w * mq_act_q(xb[i], st, q0, q1);
                else
                    for (int64_t i = 0; i < m; i++) yb[i] += w * mq_act_q(xb[i], st, q0, q1);
            } else {
                if (first)
                    for (int64_t i = 0; i < m; i++) yb[i] = w * xb[i];
                else
                    for (int64_t i = 0; i < m; i++) yb[i] += w * xb[i];
            }
            first = 0;
        }
    }
}

/* The backward of act_mix_forward at dL/dx^ = g: dx (+)= sum_j s_j STE_j(g) (dx may be NULL),
 * ds[j] = <g, Q_j(x)> and dclip[j] = PACT_j(g) (before the factor s_j), for every candidate;
 * block sums in float, added in a fixed order in double (the same numbers at any thread count).
 * MIXQ_ERR_NOMEM. */
static mixq_status act_mix_backward(mstate *s, const acand *c, int na, const float *x, const float *g, int64_t n,
                                    float *dx, int acc, double *ds, double *dclip) {
    const int64_t nb = (n + MIX_BLOCK - 1) / MIX_BLOCK;
    const size_t need = (size_t)(nb ? nb : 1) * 2 * (size_t)na; /* every entry is written below */
    if (need > s->part_cap) {
        double *b = mq_malloc(need, sizeof(double), "mixture partial sums");
        if (!b) return MIXQ_ERR_NOMEM;
        free(s->part);
        s->part = b, s->part_cap = need;
    }
    double *part = s->part;
#pragma omp parallel for schedule(static) if (n > MIX_CHUNK)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t lo = b * MIX_BLOCK, m = MQ_MIN(n, lo + MIX_BLOCK) - lo;
        const float *xb = x + lo, *gb = g + lo;
        float d[MIX_BLOCK];
        double *pd = part + (size_t)b * 2 * (size_t)na, *pc = pd + na;
        memset(d, 0, sizeof(float) * (size_t)m);
        for (int j = 0; j < na; j++) {
            const float w = c[j].w, st = c[j].step, q0 = c[j].qmin, q1 = c[j].qmax;
            float sd = 0, sc = 0; /* block sums, vectorized (omp simd: lane order fixed per build) */
            if (st > 0) {
                const float lowf = q0 / q1;
#pragma omp simd reduction(+ : sd, sc)
                for (int64_t i = 0; i < m; i++) {
                    const float gi = gb[i], r = nearbyintf(xb[i] / st);
                    sd += gi * ((r < q0 ? q0 : r > q1 ? q1 : r) * st);
                    sc += r > q1 ? gi : r < q0 ? gi * lowf : 0.0f;
                    d[i] += (r >= q0 && r <= q1) ? w * gi : 0.0f;
                }
            } else {
#pragma omp simd reduction(+ : sd)
                for (int64_t i = 0; i < m; i++) {
                    sd += gb[i] * xb[i];
                    d[i] += w * gb[i];
                }
            }
            pd[j] = sd, pc[j] = sc;
        }
        if (dx && acc)
            for (int64_t i = 0; i < m; i++) dx[lo + i] += d[i];
        else if (dx)
            memcpy(dx + lo, d, sizeof(float) * (size_t)m);
    }
    for (int j = 0; j < na; j++) ds[j] = dclip[j] = 0;
    for (int64_t b = 0; b < nb; b++)
        for (int j = 0; j < na; j++) ds[j] += part[(size_t)b * 2 * na + j], dclip[j] += part[(size_t)b * 2 * na + na + j];
    return MIXQ_OK;
}

/* The index of the one candidate with weight 1 (the others 0), or -1. */
static int one_hot(const float *f, int n) {
    int at = -1;
    for (int c = 0; c < n; c++)
        if (f[c] == 1) at = c;
        else if (f[c] != 0) return -1;
    return at;
}

/* A layer whose mixture is one integer width pair adds its bias on the accumulator grid, as the
 * plain quantizer (qmodel.c's layer_bias) and the runtime do; else the float bias. */
static mixq_status mixed_bias(mixq_model *m, mlayer *y, const float **b) {
    const mq_mix_layer *p = &y->pub;
    const mq_node *n = &m->nodes[p->node];
    const int c = one_hot(p->r, p->nw), j = act_quant(p) ? one_hot(p->s, p->na) : -1;
    if (n->t_b < 0 || c < 0 || j < 0 || p->wbits[c] == MQ_FLOAT_BITS || p->abits[j] == MQ_FLOAT_BITS) return MIXQ_OK;
    if (!y->bq && !(y->bq = mq_malloc((size_t)y->K, sizeof(float), "quantized bias"))) return MIXQ_ERR_NOMEM;
    const float s_a = mq_act_scale(p->abits[j], p->a_signed, p->clip[j]);
    if (mq_bias_quant(mq_tensor_ptr(m, n->t_b), y->K, y->scale + (size_t)c * y->K, s_a, y->bq, NULL)) *b = y->bq;
    return MIXQ_OK;
}

static mixq_status hook_forward(mixq_model *m, int i, int N, const float **x, const float **w,
                                const float **b) {
    mstate *s = S(m);
    const int l = s->of_node[i];
    if (l < 0) return MIXQ_OK;
    mlayer *y = &s->layers[l];
    mq_mix_layer *p = &y->pub;
    mixq_status st = ensure_wq(m, y);
    if (st) return st;
    mixing(s, p->alpha, p->gw, p->nw, p->r, y->rf);
    memset(y->wmix, 0, sizeof(float) * (size_t)y->numel);
    for (int c = 0; c < p->nw; c++) {
        if (p->r[c] == 0) continue;
        const float *q = y->wq + (size_t)c * y->numel, rc = p->r[c];
        for (int64_t j = 0; j < y->numel; j++) y->wmix[j] += rc * q[j];
    }
    *w = y->wmix;
    if (!act_quant(p)) return MIXQ_OK;
    const int64_t n = (int64_t)N * mq_node_in_numel(m, i);
    if (s->calibrating) {
        mq_calib_collect(*x, n, p->a_signed, &y->cmax, y->samples, &y->nsamples);
        return MIXQ_OK; /* calibration runs on float activations */
    }
    for (int c = 0; c < p->na; c++)
        if (p->abits[c] != MQ_FLOAT_BITS && !(p->clip[c] > 0))
            return mq_err(MIXQ_ERR_STATE, "layer '%s': the clip of its %d-bit activation candidate is not set; "
                          "hint: mq_mix_calibrate first", m->nodes[i].name, p->abits[c]);
    mixing(s, p->beta, p->ga, p->na, p->s, y->sf);
    if ((size_t)n > y->xq_cap) {
        float *buf = mq_alloc_aligned(sizeof(float) * (size_t)n, "mixed activations");
        if (!buf) return MIXQ_ERR_NOMEM;
        free(y->xq);
        y->xq = buf;
        y->xq_cap = (size_t)n;
    }
    const int c1 = one_hot(p->s, p->na);
    if (c1 >= 0) { /* one-hot: the plain quantizer, exactly */
        mq_act_fake_quant(*x, n, p->abits[c1], p->a_signed, p->clip[c1], y->xq);
    } else {
        acand ac[MQ_MIX_MAXB];
        act_cands(p, ac);
        act_mix_forward(ac, p->na, *x, n, y->xq);
    }
    *x = y->xq;
    return mixed_bias(m, y, b);
}

static mixq_status hook_backward_pre(mixq_model *m, int i, int N, const float **x, const float **w,
                                     float **dx, int *acc) {
    mstate *s = S(m);
    const int l = s->of_node[i];
    if (l < 0) return MIXQ_OK;
    mlayer *y = &s->layers[l];
    if (!y->wvalid || y->wver != m->params_version)
        return mq_err(MIXQ_ERR_STATE, "layer '%s': weights changed between forward and backward", m->nodes[i].name);
    *w = y->wmix;
    if (!act_quant(&y->pub)) return MIXQ_OK;
    *x = y->xq;
    mixq_status st = ensure_dxq(s, (size_t)N * (size_t)mq_node_in_numel(m, i));
    if (st) return st;
    *dx = s->dxq;
    *acc = 0;
    return MIXQ_OK;
}

static double dot(const float *a, const float *b, int64_t n) {
    double v = 0;
    for (int64_t j = 0; j < n; j++) v += (double)a[j] * b[j];
    return v;
}

static mixq_status hook_backward_post(mixq_model *m, int i, int N, float *dx, int acc) {
    mstate *s = S(m);
    const int l = s->of_node[i];
    if (l < 0) return MIXQ_OK;
    mlayer *y = &s->layers[l];
    mq_mix_layer *p = &y->pub;
    const mq_node *n = &m->nodes[i];
    float *g = mq_grad_ptr(m, n->t_w); /* G = dL/dW^, before any mask */
    /* strengths: dL/dr_c = <G, Q_c(W)> */
    if (p->nw > 1 && s->mode != MQ_MIX_ARGMAX) {
        double dr[MQ_MIX_MAXB];
        for (int c = 0; c < p->nw; c++) dr[c] = dot(g, y->wq + (size_t)c * y->numel, y->numel);
        softmax_back(y->rf, dr, p->nw, s->mode == MQ_MIX_GUMBEL ? s->tau : 1, p->dalpha);
    }
    /* dL/dW = sum_c r_c mask_c G */
    for (int64_t j = 0; j < y->numel; j++) {
        float v = 0;
        for (int c = 0; c < p->nw; c++)
            if (p->r[c] != 0 && y->mask[(size_t)c * y->numel + j]) v += p->r[c];
        g[j] *= v;
    }
    if (!act_quant(p)) return MIXQ_OK;
    const float *x = m->nodes[n->in[0]].y;
    const int64_t cnt = (int64_t)N * mq_node_in_numel(m, i);
    const int strengths = p->na > 1 && s->mode != MQ_MIX_ARGMAX;
    const int c1 = one_hot(p->s, p->na);
    if (c1 >= 0 && !strengths) { /* one-hot, no strength gradient: the plain quantizer's backward */
        float dclip = 0;
        mq_act_fake_quant_backward(x, s->dxq, cnt, p->abits[c1], p->a_signed, p->clip[c1], 0, dx, acc, &dclip);
        p->dclip[c1] += dclip;
        return MIXQ_OK;
    }
    acand ac[MQ_MIX_MAXB];
    double ds[MQ_MIX_MAXB], dc[MQ_MIX_MAXB];
    act_cands(p, ac);
    mixq_status st = act_mix_backward(s, ac, p->na, x, s->dxq, cnt, dx, acc, ds, dc);
    if (st) return st;
    for (int c = 0; c < p->na; c++) p->dclip[c] += (double)p->s[c] * dc[c];
    if (strengths) softmax_back(y->sf, ds, p->na, s->mode == MQ_MIX_GUMBEL ? s->tau : 1, p->dbeta);
    return MIXQ_OK;
}

/* no step hook: the agent steps the strengths and clips itself */
static const mq_qhooks hooks = {hook_forward, hook_backward_pre, hook_backward_post, NULL, hook_free,
                                NULL, NULL};

static mixq_status check_bits(const int *b, int n, const char *what) {
    if (n < 1 || n > MQ_MIX_MAXB)
        return mq_err(MIXQ_ERR_ARG, "%s: %d candidate widths; hint: give 1 to %d", what, n, MQ_MIX_MAXB);
    for (int i = 0; i < n; i++) {
        if (!mq_bits_valid(b[i]))
            return mq_err(MIXQ_ERR_ARG, "%s: width %d is not 1..8 or 32", what, b[i]);
        for (int j = 0; j < i; j++)
            if (b[j] == b[i]) return mq_err(MIXQ_ERR_ARG, "%s: width %d given twice", what, b[i]);
    }
    return MIXQ_OK;
}

static mixq_status layer_alloc(mlayer *y) {
    free(y->scale), free(y->wq), free(y->mask);
    y->scale = mq_calloc((size_t)y->pub.nw * y->K, sizeof(float), "candidate scales");
    y->wq = mq_alloc_aligned(sizeof(float) * (size_t)y->pub.nw * (size_t)y->numel, "candidate weights");
    y->mask = mq_malloc((size_t)y->pub.nw * (size_t)y->numel, 1, "candidate STE masks");
    y->wvalid = 0;
    return y->scale && y->wq && y->mask ? MIXQ_OK : MIXQ_ERR_NOMEM;
}

mixq_status mq_mix_install(mixq_model *m, int nw, const int *wbits, int na, const int *abits) {
    if (!m || !wbits || !abits) return mq_err(MIXQ_ERR_ARG, "mq_mix_install: NULL argument");
    mixq_status st = check_bits(wbits, nw, "weight candidates");
    if (!st) st = check_bits(abits, na, "activation candidates");
    if (st) return st;
    mstate *s = mq_calloc(1, sizeof *s, "mixture state");
    uint8_t *nn = mq_malloc((size_t)m->n_nodes, 1, "quantization signs");
    if (!s || !nn || !(s->of_node = mq_malloc((size_t)m->n_nodes, sizeof(int), "mixture map"))) {
        free(nn);
        mstate_free(s);
        return MIXQ_ERR_NOMEM;
    }
    s->tau = 1;
    mq_quant_nonnegative(m, nn);
    for (int i = 0; i < m->n_nodes; i++) s->of_node[i] = mq_node_quantizable(m, i) ? s->L++ : -1;
    s->layers = mq_calloc((size_t)(s->L ? s->L : 1), sizeof *s->layers, "mixed layers");
    if (!s->layers) st = MIXQ_ERR_NOMEM;
    for (int i = 0; !st && i < m->n_nodes; i++) {
        if (s->of_node[i] < 0) continue;
        mlayer *y = &s->layers[s->of_node[i]];
        const mq_node *n = &m->nodes[i];
        y->pub.node = i;
        y->pub.nw = nw, y->pub.na = na;
        memcpy(y->pub.wbits, wbits, sizeof(int) * (size_t)nw);
        memcpy(y->pub.abits, abits, sizeof(int) * (size_t)na);
        y->pub.a_signed = !nn[n->in[0]];
        y->K = m->tensors[n->t_w].shape[0]; /* output channels (filters or features) */
        y->numel = m->tensors[n->t_w].numel;
        y->inner = y->numel / y->K;
        y->wmix = mq_alloc_aligned(sizeof(float) * (size_t)y->numel, "mixed weights");
        if (!y->wmix || (st = layer_alloc(y))) st = st ? st : MIXQ_ERR_NOMEM;
    }
    free(nn);
    if (st) {
        mstate_free(s);
        return st;
    }
    if (m->qh) m->qh->free(m);
    m->q = s;
    m->qh = &hooks;
    m->have_forward = 0;
    return MIXQ_OK;
}

int mq_mix_count(const mixq_model *m) { return m && m->qh == &hooks ? S(m)->L : 0; }

mq_mix_layer *mq_mix_get(mixq_model *m, int l) {
    if (l < 0 || l >= mq_mix_count(m)) {
        mq_err(MIXQ_ERR_ARG, "mixed layer %d of %d", l, mq_mix_count(m));
        return NULL;
    }
    return &S(m)->layers[l].pub;
}

mixq_status mq_mix_fix(mixq_model *m, int l, int w_bits, int a_bits) {
    mq_mix_layer *p = mq_mix_get(m, l);
    if (!p) return MIXQ_ERR_ARG;
    mixq_status st = check_bits(&w_bits, 1, "fixed weight width");
    if (!st) st = check_bits(&a_bits, 1, "fixed activation width");
    if (st) return st;
    float clip = 0;
    for (int c = 0; c < p->na; c++)
        if (p->abits[c] == a_bits) clip = p->clip[c];
    p->nw = p->na = 1;
    p->wbits[0] = w_bits, p->abits[0] = a_bits;
    p->alpha[0] = p->beta[0] = 0;
    p->clip[0] = clip;
    m->have_forward = 0;
    return layer_alloc(&S(m)->layers[l]);
}

mixq_status mq_mix_set_mode(mixq_model *m, mq_mix_mode mode, float tau) {
    if (!mq_mix_count(m)) return mq_err(MIXQ_ERR_STATE, "the model has no mixed layers");
    if (mode == MQ_MIX_GUMBEL && !(tau > 0)) return mq_err(MIXQ_ERR_ARG, "Gumbel temperature %g; hint: > 0", (double)tau);
    S(m)->mode = mode;
    S(m)->tau = mode == MQ_MIX_GUMBEL ? tau : 1;
    m->have_forward = 0;
    return MIXQ_OK;
}

static float gumbel(mq_rng *rng) {
    const double u = (mq_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)-log(-log(u + 1e-20) + 1e-20);
}

void mq_mix_sample(mixq_model *m, mq_rng *rng) {
    for (int l = 0; l < mq_mix_count(m); l++) {
        mq_mix_layer *p = &S(m)->layers[l].pub;
        for (int c = 0; c < p->nw; c++) p->gw[c] = gumbel(rng);
        for (int c = 0; c < p->na; c++) p->ga[c] = gumbel(rng);
    }
}

void mq_mix_zero_grad(mixq_model *m) {
    for (int l = 0; l < mq_mix_count(m); l++) {
        mq_mix_layer *p = &S(m)->layers[l].pub;
        memset(p->dalpha, 0, sizeof p->dalpha);
        memset(p->dbeta, 0, sizeof p->dbeta);
        memset(p->dclip, 0, sizeof p->dclip);
    }
}

mixq_status mq_mix_calibrate(mixq_model *m, const float *x, int n) {
    if (!mq_mix_count(m)) return mq_err(MIXQ_ERR_STATE, "the model has no mixed layers");
    if (!x || n < 1) return mq_err(MIXQ_ERR_ARG, "mixture calibration needs at least one image");
    mstate *s = S(m);
    mixq_status st = MIXQ_OK;
    for (int l = 0; l < s->L && !st; l++) {
        mlayer *y = &s->layers[l];
        y->cmax = 0, y->nsamples = 0;
        if (act_quant(&y->pub) && !y->samples && !(y->samples = mq_malloc(MQ_CALIB_SAMPLES, sizeof(float), "calibration samples")))
            st = MIXQ_ERR_NOMEM;
    }
    const int64_t per = (int64_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    const mq_mix_mode mode = s->mode;
    s->mode = MQ_MIX_SOFT;
    s->calibrating = 1;
    for (int start = 0; !st && start < n; start += 256)
        st = mixq_model_forward(m, x + (size_t)start * per, MQ_MIN(256, n - start), 0, NULL);
    s->calibrating = 0;
    s->mode = mode;
    m->have_forward = 0;
    for (int l = 0; l < s->L; l++) {
        mlayer *y = &s->layers[l];
        mq_mix_layer *p = &y->pub;
        for (int c = 0; !st && c < p->na && act_quant(p); c++) {
            if (p->abits[c] == MQ_FLOAT_BITS) continue;
            p->clip[c] = mq_calib_clip(y->cmax, y->samples, y->nsamples, p->abits[c], p->a_signed,
                                       mq_clip_auto(MQ_CLIP_AUTO, p->abits[c]));
        }
        free(y->samples);
        y->samples = NULL;
    }
    return st;
}

const float *mq_mix_weights(mixq_model *m, int l, int i) {
    mq_mix_layer *p = mq_mix_get(m, l);
    if (!p) return NULL;
    if (i < 0 || i >= p->nw) {
        mq_err(MIXQ_ERR_ARG, "candidate %d of %d", i, p->nw);
        return NULL;
    }
    mlayer *y = &S(m)->layers[l];
    return ensure_wq(m, y) ? NULL : y->wq + (size_t)i * y->numel;
}
