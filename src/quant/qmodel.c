/* Quantized models: a policy resolved onto the graph, fake quantization of every conv/linear
 * layer's weights and input activations in forward and backward (hooks in nn/model.c),
 * activation-clip calibration, PACT clip learning, accounting, and the state saved in model
 * files.
 *
 * Per quantized node i (conv or linear, weights w [K][inner]):
 *   forward:  w_q = Q_w(w) (scales per the policy granularity), x_q = Q_a(x) with clip alpha;
 *             the layer runs on (x_q, w_q).
 *   backward: the layer's backward on (x_q, w_q) gives dW_q and dX_q; STE: dW = dW_q masked by
 *             the weight quantizer's pass mask, dX = dX_q where x fell inside the clip range;
 *             dalpha is PACT's (quant.h).
 * Weight scales: with max clipping they follow the weights (recomputed whenever the parameters
 * change); MSE/KL clips are searched once, at calibration, and then fixed (HAQ does the same).
 * Quantized weights, with the integer codes the quantizer writes alongside (mq_qlayer), are
 * cached and recomputed only when the parameters changed, so scoring many inputs (evaluation,
 * searches) quantizes each layer once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "nn/model.h"
#include "quant/policy.h"
#include "quant/qmodel.h"


typedef struct qnode {
    int on;
    mq_lq lq;
    int wquant, aquant;   /* weights / activations quantized (not 32 bits) */
    int a_signed;
    float alpha, dalpha, amom;
    int calibrated;
    int clip_trained;     /* alpha moved by an optimizer step since calibration */
    uint64_t scale_ver;   /* params_version the weight scales were computed (or set) at */
    int scales_trained;   /* LSQ moved the weight scales */
    float *scale;         /* [K] */
    float *dscale, *smom; /* [K] LSQ gradient and momentum of the scales (w_clip "lsq") */
    int scales_fixed;
    float *wq;            /* [K * inner] */
    int8_t *codes;        /* [K * inner] integer codes of wq (linear grid): wq = scale * code */
    float *centroids;     /* [2^w_bits] k-means codebook of wq */
    uint8_t *mask;
    uint64_t wver;
    int wvalid;
    float *xq;            /* [N * in] */
    size_t xq_cap;
    float *bq;            /* [K] the bias on the accumulator grid (mq_bias_quant), or NULL */
    int32_t *bcodes;      /* [K] its int32 codes */
    /* calibration */
    int collect;
    float cmax;
    float *samples;
    int64_t nsamples;
} qnode;

typedef struct qstate {
    mixq_policy *policy;  /* owned copy */
    qnode *nodes;         /* [n_nodes] */
    float *dxq;           /* scratch gradient w.r.t. a quantized input */
    size_t dxq_cap;
    int calibrating;
} qstate;

static const mq_qhooks hooks;
/* The policy state, or NULL: a float model, or one whose hooks are another kind (EBS's mixtures,
 * src/quant/mixture.c, which are search state and not a policy). */
static qstate *Q(const mixq_model *m) { return m->qh == &hooks ? (qstate *)m->q : NULL; }

static void qstate_free(qstate *s, int n) {
    if (!s) return;
    for (int i = 0; s->nodes && i < n; i++) {
        qnode *q = &s->nodes[i];
        free(q->lq.kbits);
        free(q->scale);
        free(q->dscale);
        free(q->smom);
        free(q->wq);
        free(q->codes);
        free(q->centroids);
        free(q->mask);
        free(q->xq);
        free(q->samples);
        free(q->bq);
        free(q->bcodes);
    }
    free(s->nodes);
    free(s->dxq);
    mixq_policy_free(s->policy);
    free(s);
}

static void hook_free(mixq_model *m) {
    qstate_free(Q(m), m->n_nodes);
    m->q = NULL;
    m->qh = NULL;
}

/* Weights fake-quantized for the current parameters. */
static mixq_status ensure_wq(mixq_model *m, int i, qnode *q) {
    if (!q->wquant || (q->wvalid && q->wver == m->params_version)) return MIXQ_OK;
    const mq_node *n = &m->nodes[i];
    const float *w = mq_tensor_ptr(m, n->t_w);
    const int K = q->lq.K;
    const int64_t inner = m->tensors[n->t_w].numel / K;
    if (q->lq.kmeans) {
        /* one codebook per layer, re-clustered whenever the weights change (deterministic
         * quantile initialisation); the STE passes every gradient */
        mixq_status st = mq_kmeans_quant(w, (int64_t)K * inner, q->lq.w_bits, 20, q->wq, q->centroids);
        if (st) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", mixq_last_error());
            return mq_err(st, "layer '%s': %s", n->name, msg);
        }
        memset(q->mask, 1, (size_t)K * (size_t)inner);
        q->wver = m->params_version;
        q->wvalid = 1;
        return MIXQ_OK;
    }
    /* before the scales: a NaN must not become a fixed MSE/KL scale */
    for (int64_t j = 0; j < (int64_t)K * inner; j++)
        if (!isfinite(w[j]))
            return mq_err(MIXQ_ERR_NUMERIC, "layer '%s': weight %lld is %g; hint: lower the "
                          "learning rate", n->name, (long long)j, (double)w[j]);
    if (!q->scales_fixed) {
        mixq_status st = mq_weight_scales_rows(w, K, inner, q->lq.kbits, q->lq.gran, q->lq.wclip, q->lq.wclip_rows,
                                               q->scale);
        if (st) return st;
        int fixed = q->lq.wclip != MQ_CLIP_MAX; /* searched clips are kept; max follows the weights */
        for (int k = 0; k < K && q->lq.wclip_rows; k++) fixed |= q->lq.kbits[k] < 5;
        if (fixed) q->scales_fixed = 1;
        q->scale_ver = m->params_version;
        q->scales_trained = 0;
    }
    mq_weight_fake_quant(w, K, inner, q->lq.kbits, q->scale, q->wq, q->codes, q->mask);
    q->wver = m->params_version;
    q->wvalid = 1;
    return MIXQ_OK;
}

/* The bias layer i computes with: with calibrated quantized inputs and integer weights (every
 * row on the linear grid), its float bias on the accumulator grid, as the QDQ export writes it
 * (int32 behind a DequantizeLinear with scale s_a * s_w, what ONNX Runtime's fusions use);
 * q->bcodes holds the codes. NULL: the layer adds its float bias (no bias, float inputs or
 * rows, k-means, uncalibrated, or a bias the grid cannot hold). Weights must be current.
 * MIXQ_ERR_NOMEM when its buffers cannot be allocated. */
static mixq_status layer_bias(mixq_model *m, int i, qnode *q, const float **out) {
    const mq_node *n = &m->nodes[i];
    *out = NULL;
    if (n->t_b < 0 || !q->aquant || !q->wquant || q->lq.kmeans || !q->calibrated || !q->codes) return MIXQ_OK;
    const int K = q->lq.K;
    for (int k = 0; k < K; k++)
        if (q->lq.kbits[k] == MQ_FLOAT_BITS) return MIXQ_OK;
    if (!q->bq) {
        q->bq = mq_malloc((size_t)K, sizeof(float), "quantized bias");
        q->bcodes = mq_malloc((size_t)K, sizeof(int32_t), "bias codes");
        if (!q->bq || !q->bcodes) {
            free(q->bq);
            free(q->bcodes);
            q->bq = NULL, q->bcodes = NULL;
            return MIXQ_ERR_NOMEM;
        }
    }
    const float s_a = mq_act_scale(q->lq.a_bits, q->a_signed, q->alpha);
    if (mq_bias_quant(mq_tensor_ptr(m, n->t_b), K, q->scale, s_a, q->bq, q->bcodes)) *out = q->bq;
    return MIXQ_OK;
}

float mq_calib_clip(float cmax, const float *samples, int64_t nsamples, int bits, int is_signed, mq_clip method) {
    if (method == MQ_CLIP_MAX || nsamples < 2) return cmax > 0 ? cmax : 1.0f;
    return mq_choose_clip(samples, nsamples, bits, is_signed, method);
}

void mq_calib_collect(const float *x, int64_t n, int is_signed, float *cmax, float *samples, int64_t *nsamples) {
    for (int64_t j = 0; j < n; j++) {
        float v = is_signed ? fabsf(x[j]) : x[j];
        if (v > *cmax) *cmax = v;
    }
    if (!samples) return;
    int64_t room = MQ_CALIB_SAMPLES - *nsamples;
    if (room <= 0) return;
    int64_t step = n / room + 1;
    for (int64_t j = 0; j < n && *nsamples < MQ_CALIB_SAMPLES; j += step) samples[(*nsamples)++] = x[j];
}

static mixq_status hook_forward(mixq_model *m, int i, int N, const float **x, const float **w,
                                const float **b) {
    qstate *s = Q(m);
    qnode *q = &s->nodes[i];
    if (!q->on) return MIXQ_OK;
    mixq_status st = ensure_wq(m, i, q);
    if (st) return st;
    if (q->wquant) *w = q->wq;
    if (!q->aquant) return MIXQ_OK;
    const int64_t n = (int64_t)N * mq_node_in_numel(m, i);
    if (s->calibrating) {
        if (q->collect) mq_calib_collect(*x, n, q->a_signed, &q->cmax, q->samples, &q->nsamples);
        return MIXQ_OK; /* calibration runs on float activations (and quantized weights) */
    }
    if (!q->calibrated)
        return mq_err(MIXQ_ERR_STATE, "layer '%s': activation clip not calibrated; hint: calibrate "
                      "it on training images with `mixq quantize MODEL --policy P.json --data DATA "
                      "--out Q.mixq`", m->nodes[i].name);
    if ((size_t)n > q->xq_cap) {
        float *buf = mq_alloc_aligned(sizeof(float) * (size_t)n, "quantized activations");
        if (!buf) return MIXQ_ERR_NOMEM;
        free(q->xq);
        q->xq = buf;
        q->xq_cap = (size_t)n;
    }
    mq_act_fake_quant(*x, n, q->lq.a_bits, q->a_signed, q->alpha, q->xq);
    *x = q->xq;
    const float *bq;
    if ((st = layer_bias(m, i, q, &bq))) return st;
    if (bq) *b = bq;
    return MIXQ_OK;
}

static mixq_status hook_backward_pre(mixq_model *m, int i, int N, const float **x, const float **w,
                                     float **dx, int *acc) {
    qstate *s = Q(m);
    qnode *q = &s->nodes[i];
    if (!q->on) return MIXQ_OK;
    if (q->wquant) {
        if (!q->wvalid || q->wver != m->params_version)
            return mq_err(MIXQ_ERR_STATE, "layer '%s': weights changed between forward and "
                          "backward", m->nodes[i].name);
        *w = q->wq;
    }
    if (!q->aquant) return MIXQ_OK;
    *x = q->xq;
    const size_t n = (size_t)N * (size_t)mq_node_in_numel(m, i);
    if (n > s->dxq_cap) {
        float *b = mq_alloc_aligned(sizeof(float) * n, "quantized-input gradient");
        if (!b) return MIXQ_ERR_NOMEM;
        free(s->dxq);
        s->dxq = b;
        s->dxq_cap = n;
    }
    *dx = s->dxq; /* always computed: the clip gradient needs it even for the first layer */
    *acc = 0;
    return MIXQ_OK;
}

static mixq_status hook_backward_post(mixq_model *m, int i, int N, float *dx, int acc) {
    qstate *s = Q(m);
    qnode *q = &s->nodes[i];
    if (!q->on) return MIXQ_OK;
    const mq_node *n = &m->nodes[i];
    if (q->wquant) {
        float *g = mq_grad_ptr(m, n->t_w);
        const int64_t cnt = m->tensors[n->t_w].numel;
        if (q->dscale) /* LSQ: gradient of the scales from dL/dw_q, before the STE mask */
            mq_weight_lsq_grad(mq_tensor_ptr(m, n->t_w), q->lq.K, cnt / q->lq.K, q->lq.kbits,
                               q->scale, g, q->dscale);
        for (int64_t j = 0; j < cnt; j++)
            if (!q->mask[j]) g[j] = 0.0f;
    }
    if (q->aquant) {
        const float *x = m->nodes[n->in[0]].y;
        const int64_t cnt = (int64_t)N * mq_node_in_numel(m, i);
        const int lsq = q->lq.aclip == MQ_CLIP_LSQ;
        mq_act_fake_quant_backward(x, s->dxq, cnt, q->lq.a_bits, q->a_signed, q->alpha, lsq, dx,
                                   acc, &q->dalpha);
        if (lsq) { /* LSQ's gradient factor 1 / sqrt(numel * qmax) */
            int qmax;
            mq_levels(q->lq.a_bits, q->a_signed, NULL, &qmax);
            q->dalpha = (float)(q->dalpha / sqrt((double)cnt * (qmax > 1 ? qmax : 1)));
        }
    }
    return MIXQ_OK;
}

static void hook_step(mixq_model *m, float lr, float momentum) {
    qstate *s = Q(m);
    for (int i = 0; i < m->n_nodes; i++) {
        qnode *q = &s->nodes[i];
        if (q->on && q->dscale && q->wvalid) {
            for (int k = 0; k < q->lq.K; k++) {
                q->smom[k] = momentum * q->smom[k] + q->dscale[k];
                const float v = q->scale[k] - lr * q->smom[k];
                q->scale[k] = v > 1e-8f ? v : 1e-8f;
                q->dscale[k] = 0;
            }
            q->scales_trained = 1;
            q->wvalid = 0;
        }
        if (!q->on || !q->aquant || !q->calibrated) continue;
        q->clip_trained = 1;
        q->amom = momentum * q->amom + q->dalpha;
        float a = q->alpha - lr * q->amom;
        q->alpha = a > 1e-4f ? a : 1e-4f;
        q->dalpha = 0;
    }
}

/* ------------------------------------------------------------ training checkpoints */
/* The hooks' block of a training checkpoint (src/nn/train.c; native endian): u64 the policy's
 * text length, the text, then per quantized node in graph order: i32 node, K, calibrated,
 * clip_trained, scales_fixed, scales_trained, has-LSQ-momentum; float alpha, amom; float
 * scale[K]; float smom[K] where there is LSQ momentum. The quantized weights, codes and masks
 * are caches, recomputed from the weights; the clip and scale gradients are zero between steps. */
static mixq_status hook_ckpt_write(const mixq_model *m, FILE *f, const char *path) {
    const qstate *s = Q(m);
    const char *pt = mixq_policy_text(s->policy);
    if (!pt) return mq_err(MIXQ_ERR_NOMEM, "out of memory writing the policy into checkpoint '%s'", path);
    const uint64_t n = strlen(pt);
    mixq_status st = mq_fwrite(&n, sizeof n, f, path);
    if (!st) st = mq_fwrite(pt, n, f, path);
    for (int i = 0; !st && i < m->n_nodes; i++) {
        const qnode *q = &s->nodes[i];
        if (!q->on) continue;
        const int32_t v[7] = {i, q->lq.K, q->calibrated, q->clip_trained, q->scales_fixed, q->scales_trained,
                              q->smom != NULL};
        const float a[2] = {q->alpha, q->amom};
        if (!st) st = mq_fwrite(v, sizeof v, f, path);
        if (!st) st = mq_fwrite(a, sizeof a, f, path);
        if (!st) st = mq_fwrite(q->scale, sizeof(float) * (size_t)q->lq.K, f, path);
        if (!st && q->smom) st = mq_fwrite(q->smom, sizeof(float) * (size_t)q->lq.K, f, path);
    }
    return st;
}

static int finite_all(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static mixq_status hook_ckpt_read(mixq_model *m, const unsigned char *b, size_t len, const char *path,
                                  int apply) {
    qstate *s = Q(m);
    const char *pt = mixq_policy_text(s->policy);
    if (!pt) return mq_err(MIXQ_ERR_NOMEM, "out of memory reading checkpoint '%s'", path);
    uint64_t n;
    size_t o = sizeof n;
    if (len < o) goto trunc;
    memcpy(&n, b, sizeof n);
    if (n > len - o) goto trunc;
    if (n != strlen(pt) || memcmp(b + o, pt, n) != 0)
        return mq_err(MIXQ_ERR_FORMAT, "checkpoint '%s' was written while fine-tuning with another "
                      "policy; hint: resume with the policy the checkpoint was started with", path);
    o += n;
    for (int i = 0; i < m->n_nodes; i++) {
        qnode *q = &s->nodes[i];
        if (!q->on) continue;
        int32_t v[7];
        float a[2];
        if (len - o < sizeof v + sizeof a) goto trunc;
        memcpy(v, b + o, sizeof v);
        memcpy(a, b + o + sizeof v, sizeof a);
        o += sizeof v + sizeof a;
        const size_t K = (size_t)q->lq.K, bytes = sizeof(float) * K * (q->smom ? 2 : 1);
        int flags_ok = 1;
        for (int k = 2; k < 7; k++) flags_ok &= v[k] == 0 || v[k] == 1;
        if (v[0] != i || v[1] != q->lq.K || !flags_ok || v[6] != (q->smom != NULL) || !isfinite(a[0]) ||
            !isfinite(a[1]) || a[0] < 0)
            return mq_err(MIXQ_ERR_FORMAT, "checkpoint '%s': the quantization state of layer '%s' is "
                          "corrupt or of another model", path, m->nodes[i].name);
        if (len - o < bytes) goto trunc;
        float *sc = mq_malloc(2 * K, sizeof(float), "checkpoint scales");
        if (!sc) return MIXQ_ERR_NOMEM;
        memcpy(sc, b + o, bytes);
        const int fin = finite_all(sc, bytes / sizeof(float));
        if (fin && apply) {
            memcpy(q->scale, sc, sizeof(float) * K);
            if (q->smom) memcpy(q->smom, sc + K, sizeof(float) * K);
        }
        free(sc);
        if (!fin)
            return mq_err(MIXQ_ERR_FORMAT, "checkpoint '%s': a weight scale of layer '%s' is not finite",
                          path, m->nodes[i].name);
        o += bytes;
        if (apply) {
            q->calibrated = v[2];
            q->clip_trained = v[3];
            q->scales_fixed = v[4];
            q->scales_trained = v[5];
            q->alpha = a[0];
            q->amom = a[1];
            q->dalpha = 0;
            if (q->dscale) memset(q->dscale, 0, sizeof(float) * K);
            q->scale_ver = m->params_version; /* the scales of the weights read with them */
            q->wvalid = 0;
        }
    }
    if (o != len)
        return mq_err(MIXQ_ERR_FORMAT, "checkpoint '%s': %zu unexpected bytes after the quantization "
                      "state", path, len - o);
    return MIXQ_OK;
trunc:
    return mq_err(MIXQ_ERR_FORMAT, "checkpoint '%s': the quantization state is truncated", path);
}

static const mq_qhooks hooks = {hook_forward, hook_backward_pre, hook_backward_post, hook_step,
                                hook_free, hook_ckpt_write, hook_ckpt_read};

/* Node i's output is never negative, given nn[j] for the nodes j < i: it comes out of a ReLU,
 * ReLU6, sigmoid or hard sigmoid, possibly through pooling or flatten, or it adds, multiplies
 * or concatenates outputs that are never negative. Inputs of such a node are quantized
 * unsigned. */
static uint8_t nonnegative(const mixq_model *m, int i, const uint8_t *nn) {
    const mq_node *n = &m->nodes[i];
    switch (n->op) {
    case MIXQ_OP_RELU:
    case MIXQ_OP_RELU6:
    case MIXQ_OP_SIGMOID:
    case MIXQ_OP_HSIGMOID:
        return 1;
    case MIXQ_OP_MAXPOOL:
    case MIXQ_OP_AVGPOOL:
    case MIXQ_OP_GAP:
    case MIXQ_OP_FLATTEN:
        return nn[n->in[0]];
    case MIXQ_OP_ADD:
    case MIXQ_OP_MUL:
    case MIXQ_OP_CONCAT:
        return nn[n->in[0]] && nn[n->in[1]];
    default:
        return 0;
    }
}

void mq_quant_nonnegative(const mixq_model *m, uint8_t *nn) {
    for (int i = 0; i < m->n_nodes; i++) nn[i] = nonnegative(m, i, nn);
}

static int lq_equal(const mq_lq *a, const mq_lq *b) {
    return a->K == b->K && a->a_bits == b->a_bits && a->gran == b->gran && a->wclip == b->wclip &&
           a->wclip_rows == b->wclip_rows &&
           a->kmeans == b->kmeans &&
           a->aclip == b->aclip && !memcmp(a->kbits, b->kbits, sizeof(int) * (size_t)a->K);
}

mixq_status mixq_model_quantize(mixq_model *m, const mixq_policy *p) {
    if (!m || !p) return mq_err(MIXQ_ERR_ARG, "mixq_model_quantize: NULL model or policy");
    mixq_status st = mq_policy_check_coverage(p, m);
    if (st) return st;
    qstate *s = mq_calloc(1, sizeof *s, "quantization state");
    if (!s) return MIXQ_ERR_NOMEM;
    s->nodes = mq_calloc((size_t)m->n_nodes, sizeof *s->nodes, "quantization nodes");
    if (!s->nodes) {
        free(s);
        return MIXQ_ERR_NOMEM;
    }
    st = mq_policy_copy(p, &s->policy);
    uint8_t *nn = st ? NULL : mq_malloc((size_t)m->n_nodes, 1, "quantization signs");
    if (!st && !nn) st = MIXQ_ERR_NOMEM;
    if (!st) mq_quant_nonnegative(m, nn);
    for (int i = 0; !st && i < m->n_nodes; i++) {
        if (!mq_node_quantizable(m, i)) continue;
        qnode *q = &s->nodes[i];
        if ((st = mq_policy_resolve_node(p, m, i, &q->lq))) break;
        q->on = 1;
        q->a_signed = !nn[m->nodes[i].in[0]];
        q->aquant = q->lq.a_bits != MQ_FLOAT_BITS;
        for (int k = 0; k < q->lq.K; k++) q->wquant |= q->lq.kbits[k] != MQ_FLOAT_BITS;
        const int64_t wn = m->tensors[m->nodes[i].t_w].numel;
        q->scale = mq_calloc((size_t)q->lq.K, sizeof(float), "weight scales");
        q->wq = q->wquant ? mq_alloc_aligned(sizeof(float) * (size_t)wn, "quantized weights") : NULL;
        q->mask = q->wquant ? mq_malloc((size_t)wn, 1, "STE mask") : NULL;
        if (q->wquant && !q->lq.kmeans && !(q->codes = mq_malloc((size_t)wn, 1, "weight codes")))
            st = MIXQ_ERR_NOMEM;
        if (q->wquant && q->lq.kmeans && q->lq.w_bits <= 8 &&
            !(q->centroids = mq_malloc((size_t)1 << q->lq.w_bits, sizeof(float), "k-means codebook")))
            st = MIXQ_ERR_NOMEM;
        if (q->lq.wclip == MQ_CLIP_LSQ && q->wquant && !q->lq.kmeans) {
            q->dscale = mq_calloc((size_t)q->lq.K, sizeof(float), "LSQ scale gradients");
            q->smom = mq_calloc((size_t)q->lq.K, sizeof(float), "LSQ scale momentum");
            if (!q->dscale || !q->smom) st = MIXQ_ERR_NOMEM;
        }
        if (!q->scale || (q->wquant && (!q->wq || !q->mask))) st = MIXQ_ERR_NOMEM;
    }
    free(nn);
    if (st) {
        qstate_free(s, m->n_nodes);
        return st;
    }
    /* Fast path for searches, exact: a layer whose resolved setting is unchanged keeps its
     * cached weight scales and quantized weights (functions of its own weights and setting
     * alone). Its calibrated clip is kept only while every quantized layer before it is
     * unchanged too: calibration runs on float activations through the quantized weights of the
     * layers upstream, so a change there changes what this layer's clip is measured on. A
     * layer's result is then what quantizing the model from scratch gives, whatever the model
     * was quantized to before (a search's score must not depend on its history). Clips that
     * fine-tuning moved (PACT) are never kept: they belong to other weights, and
     * mixq_model_clone/load give fresh models for that. */
    qstate *old = Q(m);
    int prefix_same = 1; /* every quantized layer so far unchanged */
    for (int i = 0; old && i < m->n_nodes; i++) {
        qnode *q = &s->nodes[i], *o = &old->nodes[i];
        if (!q->on && !o->on) continue;
        const int same = q->on && o->on && lq_equal(&q->lq, &o->lq);
        if (!same) {
            prefix_same = 0;
            continue;
        }
        free(q->scale);
        free(q->wq);
        free(q->codes);
        free(q->centroids);
        free(q->mask);
        int *kb = q->lq.kbits;
        *q = *o;         /* takes o's buffers */
        free(q->lq.kbits);
        q->lq.kbits = kb;
        memset(o, 0, sizeof *o); /* o->lq.kbits moved to q then freed above */
        if (!prefix_same || q->clip_trained) {
            q->calibrated = 0;
            q->alpha = 0;
            q->amom = q->dalpha = 0;
        }
        if (q->scales_trained || q->scale_ver != m->params_version) { /* other weights' scales */
            q->scales_fixed = 0;
            q->scales_trained = 0;
            q->wvalid = 0;
            if (q->smom) memset(q->smom, 0, sizeof(float) * (size_t)q->lq.K);
        }
    }
    if (m->qh) m->qh->free(m);
    m->q = s;
    m->qh = &hooks;
    m->have_forward = 0;
    return MIXQ_OK;
}

int mixq_model_is_quantized(const mixq_model *m) { return m && Q(m) != NULL; }

mixq_status mq_qlayer_get(mixq_model *m, int node, mq_qlayer *out) {
    if (!m || !out) return mq_err(MIXQ_ERR_ARG, "mq_qlayer_get: NULL argument");
    if (node < 0 || node >= m->n_nodes)
        return mq_err(MIXQ_ERR_ARG, "node %d out of range (%d nodes)", node, m->n_nodes);
    if (!Q(m) || !Q(m)->nodes[node].on)
        return mq_err(MIXQ_ERR_ARG, "layer '%s' (node %d) is not quantized; hint: quantize the "
                      "model with a policy that covers it", m->nodes[node].name, node);
    qnode *q = &Q(m)->nodes[node];
    mixq_status st = ensure_wq(m, node, q);
    if (st) return st;
    int float_rows = 0;
    for (int k = 0; k < q->lq.K; k++) float_rows += q->lq.kbits[k] == MQ_FLOAT_BITS;
    memset(out, 0, sizeof *out);
    out->node = node;
    out->K = q->lq.K;
    out->inner = m->tensors[m->nodes[node].t_w].numel / q->lq.K;
    out->gran = q->lq.gran;
    out->kmeans = q->lq.kmeans;
    out->w_bits = q->lq.w_bits;
    out->kbits = q->lq.kbits;
    out->scale = q->scale;
    out->wq = q->wquant ? q->wq : NULL;
    out->codes = q->wquant && !float_rows ? q->codes : NULL; /* NULL for k-means */
    out->centroids = q->wquant ? q->centroids : NULL;
    out->a_bits = q->lq.a_bits;
    out->a_signed = q->a_signed;
    mq_levels(q->lq.a_bits, q->a_signed, &out->a_qmin, &out->a_qmax);
    out->a_clip = q->calibrated ? q->alpha : 0.0f;
    out->a_scale = mq_act_scale(q->lq.a_bits, q->a_signed, out->a_clip);
    if ((st = layer_bias(m, node, q, &out->bias))) return st;
    out->bias_codes = out->bias ? q->bcodes : NULL;
    return MIXQ_OK;
}

mixq_status mq_quant_layer_set(mixq_model *m, int node, const float *scales, float alpha) {
    if (!Q(m) || node < 0 || node >= m->n_nodes || !Q(m)->nodes[node].on)
        return mq_err(MIXQ_ERR_ARG, "node %d is not a quantized layer", node);
    qnode *q = &Q(m)->nodes[node];
    if (scales) {
        memcpy(q->scale, scales, sizeof(float) * (size_t)q->lq.K);
        q->scales_fixed = 1;
        q->scale_ver = m->params_version;
        q->wvalid = 0;
    }
    if (alpha > 0) {
        q->alpha = alpha;
        q->calibrated = 1;
    }
    return MIXQ_OK;
}

const mixq_policy *mixq_model_policy(const mixq_model *m) {
    return m && Q(m) ? Q(m)->policy : NULL;
}

static mixq_status calibrate(mixq_model *m, const mixq_dataset *d, int images, int only_new);

mixq_status mixq_model_calibrate(mixq_model *m, const mixq_dataset *d, int images) {
    return calibrate(m, d, images, 0);
}

mixq_status mixq_model_calibrate_new(mixq_model *m, const mixq_dataset *d, int images) {
    return calibrate(m, d, images, 1);
}

static mixq_status calibrate(mixq_model *m, const mixq_dataset *d, int images, int only_new) {
    if (!m || !d) return mq_err(MIXQ_ERR_ARG, "mixq_model_calibrate: NULL model or dataset");
    if (!Q(m))
        return mq_err(MIXQ_ERR_STATE, "calibration: model '%s' has no quantization policy; hint: "
                      "`mixq quantize MODEL --policy P.json ...` quantizes and calibrates it", m->arch);
    if (images < 1) return mq_err(MIXQ_ERR_ARG, "calibration needs at least one image, not %d", images);
    int c, h, w, k;
    mixq_dataset_shape(d, &c, &h, &w, &k);
    if (c != m->cfg.in_c || h != m->cfg.in_h || w != m->cfg.in_w)
        return mq_err(MIXQ_ERR_SHAPE, "calibration data '%s' is %dx%dx%d but the model expects "
                      "%dx%dx%d", mixq_dataset_name(d), c, h, w, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    qstate *s = Q(m);
    if (images > mixq_dataset_count(d)) images = mixq_dataset_count(d);
    mixq_status st = MIXQ_OK;
    int todo = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        qnode *q = &s->nodes[i];
        q->collect = q->on && q->aquant && !(only_new && q->calibrated);
        if (!q->collect) continue;
        q->calibrated = 0; /* measured on float inputs, whatever an earlier clip was */
        todo++;
        q->cmax = 0;
        q->nsamples = 0;
        if (q->lq.aclip != MQ_CLIP_MAX && !q->samples &&
            !(q->samples = mq_malloc(MQ_CALIB_SAMPLES, sizeof(float), "calibration samples")))
            return MIXQ_ERR_NOMEM;
    }
    if (!todo) return MIXQ_OK;
    const int B = 256;
    float *x = mq_malloc((size_t)B * c * h * w, sizeof(float), "calibration batch");
    int *idx = mq_malloc((size_t)B, sizeof(int), "calibration indices");
    int *lab = mq_malloc((size_t)B, sizeof(int), "calibration labels");
    if (!x || !idx || !lab) st = MIXQ_ERR_NOMEM;
    s->calibrating = 1;
    for (int start = 0; !st && start < images; start += B) {
        int b = MQ_MIN(B, images - start);
        /* evenly spread images over the set, in a fixed order */
        for (int j = 0; j < b; j++)
            idx[j] = (int)((int64_t)(start + j) * mixq_dataset_count(d) / images);
        if (!(st = mq_data_batch(d, &m->pp, idx, b, 0, 0, x, lab))) st = mixq_model_forward(m, x, b, 0, NULL);
    }
    s->calibrating = 0;
    m->have_forward = 0;
    free(x);
    free(idx);
    free(lab);
    if (st) return st;
    for (int i = 0; i < m->n_nodes; i++) {
        qnode *q = &s->nodes[i];
        if (!q->collect) continue;
        q->collect = 0;
        q->alpha = mq_calib_clip(q->cmax, q->samples, q->nsamples, q->lq.a_bits, q->a_signed, q->lq.aclip);
        free(q->samples);
        q->samples = NULL;
        q->calibrated = 1;
        q->clip_trained = 0;
        q->amom = q->dalpha = 0;
    }
    return MIXQ_OK;
}

/* ------------------------------------------------------------ accounting */

int mixq_model_quant_layers(const mixq_model *m) {
    if (!m || !Q(m)) return 0;
    int n = 0;
    for (int i = 0; i < m->n_nodes; i++) n += Q(m)->nodes[i].on;
    return n;
}

/* One name per mq_clip, in enum order. */
static const char *const clip_names[] = {"max", "mse", "kl", "percentile", "lsq"};
_Static_assert(MQ_COUNTOF(clip_names) == MQ_CLIP_COUNT, "clip_names: one name per mq_clip");

/* A BN directly after node i folds into a per-channel bias at deployment. */
static int followed_by_bn(const mixq_model *m, int i) {
    for (int j = i + 1; j < m->n_nodes; j++)
        if (m->nodes[j].n_in && m->nodes[j].in[0] == i) return m->nodes[j].op == MIXQ_OP_BN;
    return 0;
}

mixq_status mixq_model_quant_layer(const mixq_model *m, int idx, mixq_layer_quant *out) {
    if (!m || !out) return mq_err(MIXQ_ERR_ARG, "mixq_model_quant_layer: NULL argument");
    if (!Q(m)) return mq_err(MIXQ_ERR_STATE, "the model has no quantization policy");
    int seen = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        const qnode *q = &Q(m)->nodes[i];
        if (!q->on || ++seen != idx) continue;
        const mq_node *n = &m->nodes[i];
        memset(out, 0, sizeof *out);
        out->node = i;
        out->name = n->name;
        out->op = n->op;
        out->w_bits = q->lq.w_bits;
        out->a_bits = q->lq.a_bits;
        out->granularity = (mixq_granularity)q->lq.gran;
        out->kernels = q->lq.K;
        out->kernel_bits = q->lq.kbits;
        out->a_signed = q->a_signed;
        out->a_clip = q->calibrated ? q->alpha : 0.0f;
        out->w_clip_method = q->lq.kmeans ? "kmeans" : q->lq.wclip_rows ? "auto" : clip_names[q->lq.wclip];
        out->a_clip_method = clip_names[q->lq.aclip];
        out->weights = m->tensors[n->t_w].numel;
        const int64_t inner = out->weights / q->lq.K;
        const int64_t macs_per_k = (int64_t)n->h * n->w * inner; /* per image */
        out->macs = macs_per_k * q->lq.K;
        int nscales = 0;
        for (int k = 0; k < q->lq.K; k++) {
            const int b = q->lq.kbits[k];
            out->weight_bits += (double)inner * b;
            out->bitops += (double)macs_per_k * b * q->lq.a_bits;
            nscales += b != MQ_FLOAT_BITS;
        }
        if (q->lq.gran == MQ_GRAN_LAYER && nscales) nscales = 1;
        if (q->lq.kmeans) nscales = 1 << q->lq.w_bits; /* the codebook */
        const int biases = (n->bias || followed_by_bn(m, i)) ? q->lq.K : 0;
        out->size_bits = out->weight_bits + 32.0 * (nscales + biases + (q->aquant ? 1 : 0));
        out->fp32_size_bits = 32.0 * (double)(out->weights + biases);
        return MIXQ_OK;
    }
    return mq_err(MIXQ_ERR_ARG, "quantized layer %d out of range (%d layers)", idx, seen + 1);
}

mixq_status mixq_model_quant_totals(const mixq_model *m, mixq_quant_totals *t) {
    if (!m || !t) return mq_err(MIXQ_ERR_ARG, "mixq_model_quant_totals: NULL argument");
    memset(t, 0, sizeof *t);
    int n = mixq_model_quant_layers(m);
    if (!n) return mq_err(MIXQ_ERR_STATE, "the model has no quantization policy");
    for (int i = 0; i < n; i++) {
        mixq_layer_quant l;
        memset(&l, 0, sizeof l); /* gcc -O3 cannot see that a failed call returns */
        mixq_status st = mixq_model_quant_layer(m, i, &l);
        if (st) return st;
        t->size_bits += l.size_bits;
        t->weight_bits += l.weight_bits;
        t->bitops += l.bitops;
        t->fp32_size_bits += l.fp32_size_bits;
        t->macs += l.macs;
        t->weights += l.weights;
    }
    return MIXQ_OK;
}

/* ------------------------------------------------------------ model-file state */
/* "qstate" section, little-endian: uint32 count, then per quantized node:
 *   char name[64]; float alpha; int32 calibrated; int32 scales_fixed; int32 K; float scale[K] */

mixq_status mq_quant_state_save(const mixq_model *m, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (!Q(m)) return MIXQ_OK;
    size_t need = 4;
    for (int i = 0; i < m->n_nodes; i++)
        if (Q(m)->nodes[i].on) need += MIXQ_NAME_MAX + 16 + 4 * (size_t)Q(m)->nodes[i].lq.K;
    unsigned char *b = mq_calloc(need, 1, "quantization state");
    if (!b) return MIXQ_ERR_NOMEM;
    size_t o = 4;
    uint32_t cnt = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const qnode *q = &Q(m)->nodes[i];
        if (!q->on) continue;
        cnt++;
        memcpy(b + o, m->nodes[i].name, strlen(m->nodes[i].name));
        o += MIXQ_NAME_MAX;
        int32_t v[3] = {q->calibrated, q->scales_fixed, q->lq.K};
        memcpy(b + o, &q->alpha, 4);
        memcpy(b + o + 4, v, 12);
        o += 16;
        memcpy(b + o, q->scale, 4 * (size_t)q->lq.K);
        o += 4 * (size_t)q->lq.K;
    }
    memcpy(b, &cnt, 4);
    *buf = b;
    *len = o;
    return MIXQ_OK;
}

mixq_status mq_quant_state_load(mixq_model *m, const unsigned char *b, size_t len, const char *path) {
    if (!Q(m)) return mq_err(MIXQ_ERR_FORMAT, "'%s': quantization state without a policy", path);
    uint32_t cnt;
    size_t o = 4;
    if (len < 4) goto trunc;
    memcpy(&cnt, b, 4);
    if ((int)cnt != mixq_model_quant_layers(m))
        return mq_err(MIXQ_ERR_FORMAT, "'%s': quantization state for %u layers, the policy "
                      "quantizes %d", path, cnt, mixq_model_quant_layers(m));
    for (uint32_t c = 0; c < cnt; c++) {
        if (o + MIXQ_NAME_MAX + 16 > len) goto trunc;
        char name[MIXQ_NAME_MAX + 1] = {0};
        memcpy(name, b + o, MIXQ_NAME_MAX);
        o += MIXQ_NAME_MAX;
        int i = mq_model_find_node(m, name);
        if (i < 0 || !Q(m)->nodes[i].on)
            return mq_err(MIXQ_ERR_FORMAT, "'%s': quantization state names '%s', which is not a "
                          "quantized layer", path, name);
        qnode *q = &Q(m)->nodes[i];
        int32_t v[3];
        memcpy(&q->alpha, b + o, 4);
        memcpy(v, b + o + 4, 12);
        o += 16;
        if (v[2] != q->lq.K || !isfinite(q->alpha) || q->alpha <= 0)
            return mq_err(MIXQ_ERR_FORMAT, "'%s': quantization state of '%s' is corrupt", path, name);
        if (o + 4 * (size_t)q->lq.K > len) goto trunc;
        memcpy(q->scale, b + o, 4 * (size_t)q->lq.K);
        o += 4 * (size_t)q->lq.K;
        q->calibrated = v[0] != 0;
        q->scales_fixed = v[1] != 0;
        q->scale_ver = m->params_version;
        q->wvalid = 0;
    }
    if (o != len) return mq_err(MIXQ_ERR_FORMAT, "'%s': trailing bytes in the quantization state", path);
    return MIXQ_OK;
trunc:
    return mq_err(MIXQ_ERR_FORMAT, "'%s': quantization state is truncated", path);
}

/* ------------------------------------------------------------ batch-norm folding */

mixq_status mixq_model_fold_bn(mixq_model *m, int *folded) {
    if (!m) return mq_err(MIXQ_ERR_ARG, "mixq_model_fold_bn: NULL model");
    int count = 0;
    for (int j = 0; j < m->n_nodes; j++) {
        mq_node *bn = &m->nodes[j];
        if (bn->op != MIXQ_OP_BN) continue;
        const int i = bn->in[0];
        mq_node *cv = &m->nodes[i];
        if (cv->op != MIXQ_OP_CONV && cv->op != MIXQ_OP_LINEAR) continue;
        int consumers = 0;
        for (int k = i + 1; k < m->n_nodes; k++)
            for (int s = 0; s < m->nodes[k].n_in; s++) consumers += m->nodes[k].in[s] == i;
        if (consumers != 1) continue; /* the raw conv output is used elsewhere too */
        float *g = mq_tensor_ptr(m, bn->t_w), *be = mq_tensor_ptr(m, bn->t_b);
        float *rm = mq_tensor_ptr(m, bn->t_rm), *rv = mq_tensor_ptr(m, bn->t_rv);
        float *w = mq_tensor_ptr(m, cv->t_w), *b = mq_tensor_ptr(m, cv->t_b);
        const int K = cv->c;
        const int64_t inner = m->tensors[cv->t_w].numel / K;
        for (int k = 0; k < K; k++) {
            const double sc = (double)g[k] / sqrt((double)rv[k] + bn->bn_eps);
            for (int64_t t = 0; t < inner; t++) w[(size_t)k * inner + t] = (float)(w[(size_t)k * inner + t] * sc);
            const double bias = b ? (double)b[k] : 0.0;
            be[k] = (float)((double)be[k] + (bias - (double)rm[k]) * sc);
            if (b) b[k] = 0.0f;
            /* the BN becomes y = x + beta in inference mode */
            g[k] = 1.0f;
            rm[k] = 0.0f;
            rv[k] = 1.0f - bn->bn_eps;
        }
        count++;
    }
    m->params_version++;
    m->have_forward = 0;
    if (folded) *folded = count;
    return MIXQ_OK;
}

const float *mq_quant_weights(const mixq_model *m, int node) {
    if (!m || !Q(m) || node < 0 || node >= m->n_nodes) return NULL;
    const qnode *q = &Q(m)->nodes[node];
    return q->on && q->wquant && q->wvalid ? q->wq : NULL;
}
