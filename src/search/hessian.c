/* Hutchinson traces by finite differences of gradients (see hessian.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "quant/policy.h"
#include "search/hessian.h"

void mq_hessian_config_default(mq_hessian_config *c) {
    memset(c, 0, sizeof *c);
    c->max_probes = 100;
    c->min_probes = 10;
    c->tol = 1e-3;
    c->eps_rel = 1e-3;
    c->batch = 128;
    c->frozen = 1;
    c->seed = 1;
}

static mixq_status check_args(const mixq_model *m, const float *x, const int *labels, int n, int batch) {
    if (!m || !x || !labels) return mq_err(MIXQ_ERR_ARG, "hessian: NULL model, images or labels");
    if (mixq_model_is_quantized(m))
        return mq_err(MIXQ_ERR_ARG, "hessian: model '%s' is quantized; the Hessian is taken on the float model",
                      m->arch);
    if (n < 1 || batch < 1)
        return mq_err(MIXQ_ERR_ARG, "hessian: %d images in batches of %d; both must be positive", n, batch);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= m->cfg.classes)
            return mq_err(MIXQ_ERR_ARG, "hessian: label %d of image %d is outside [0, %d)", labels[i], i,
                          m->cfg.classes);
    return MIXQ_OK;
}

/* The gradient of the mean loss over batch [s, s + nb) at the model's current parameters,
 * with the frozen pattern pat (NULL: none). */
static mixq_status batch_grad(mixq_model *m, const float *x, const int *labels, int s, int nb, const uint8_t *pat,
                              float *logits) {
    const size_t img = (size_t)m->nodes[0].c * (size_t)m->nodes[0].h * (size_t)m->nodes[0].w;
    m->act_pattern = pat;
    mixq_status st = mixq_model_forward(m, x + (size_t)s * img, nb, 0, logits);
    if (!st) st = mixq_model_backward(m, labels + s, 0.0f, NULL);
    m->act_pattern = NULL;
    return st;
}

/* Set the parameters to theta0 + t v. */
static void set_params(mixq_model *m, const float *theta0, const float *v, double t) {
    const size_t P = m->n_params;
    for (size_t i = 0; i < P; i++) m->params[i] = (float)((double)theta0[i] + t * (double)v[i]);
    m->params_version++;
}

/* The frozen activation patterns of the n images at theta0: every batch's, recorded once, when
 * they fit in `cap` bytes, else one batch's at a time, recorded again (one more forward) before
 * each use. buf NULL: not frozen. */
typedef struct patterns {
    uint8_t *buf;
    int all;
} patterns;

static mixq_status patterns_init(mixq_model *m, const float *x, int n, int batch, int frozen, size_t cap,
                                 float *logits, patterns *p) {
    memset(p, 0, sizeof *p);
    if (!frozen) return MIXQ_OK;
    size_t total = 0;
    for (int s = 0; s < n; s += batch) total += mq_model_pattern_bytes(m, MQ_MIN(batch, n - s));
    p->all = total <= (cap ? cap : MQ_PATTERN_CAP);
    if (!p->all) total = mq_model_pattern_bytes(m, MQ_MIN(batch, n));
    if (!(p->buf = mq_malloc(total ? total : 1, 1, "activation patterns"))) return MIXQ_ERR_NOMEM;
    const size_t img = (size_t)m->nodes[0].c * (size_t)m->nodes[0].h * (size_t)m->nodes[0].w;
    size_t off = 0;
    for (int s = 0; p->all && s < n; s += batch) {
        const int nb = MQ_MIN(batch, n - s);
        mixq_status st = mixq_model_forward(m, x + (size_t)s * img, nb, 0, logits);
        if (!st) st = mq_model_pattern_save(m, p->buf + off);
        if (st) return st;
        off += mq_model_pattern_bytes(m, nb);
    }
    return MIXQ_OK;
}

/* The pattern of batch [s, s + nb), which starts `off` bytes into the recorded ones. */
static mixq_status patterns_get(mixq_model *m, const patterns *p, const float *x, int s, int nb, size_t off,
                                const float *theta0, float *logits, const uint8_t **out) {
    *out = NULL;
    if (!p->buf) return MIXQ_OK;
    if (p->all) {
        *out = p->buf + off;
        return MIXQ_OK;
    }
    const size_t img = (size_t)m->nodes[0].c * (size_t)m->nodes[0].h * (size_t)m->nodes[0].w;
    memcpy(m->params, theta0, sizeof(float) * m->n_params);
    m->params_version++;
    mixq_status st = mixq_model_forward(m, x + (size_t)s * img, nb, 0, logits);
    if (!st) st = mq_model_pattern_save(m, p->buf);
    *out = p->buf;
    return st;
}

/* hv = H v by the central difference with step eps, batch by batch (each batch's mean gradient
 * weighted by its share of the images), with the patterns pat; theta0 holds the parameters,
 * restored on return. */
static mixq_status hvp(mixq_model *m, const float *x, const int *labels, int n, int batch, const float *theta0,
                       const float *v, double eps, const patterns *pat, float *logits, double *hv) {
    const size_t P = m->n_params;
    memset(hv, 0, sizeof(double) * P);
    mixq_status st = MIXQ_OK;
    size_t off = 0;
    for (int s = 0; s < n && !st; s += batch) {
        const int nb = MQ_MIN(batch, n - s);
        const uint8_t *pb;
        const double w = (double)nb / (double)n / (2.0 * eps);
        const float *g = m->grads;
        if ((st = patterns_get(m, pat, x, s, nb, off, theta0, logits, &pb))) break;
        set_params(m, theta0, v, eps);
        if ((st = batch_grad(m, x, labels, s, nb, pb, logits))) break;
        for (size_t i = 0; i < P; i++) hv[i] += w * (double)g[i];
        set_params(m, theta0, v, -eps);
        if ((st = batch_grad(m, x, labels, s, nb, pb, logits))) break;
        for (size_t i = 0; i < P; i++) hv[i] -= w * (double)g[i];
        off += mq_model_pattern_bytes(m, nb);
    }
    memcpy(m->params, theta0, sizeof(float) * P);
    m->params_version++;
    return st;
}

static double norm2(const float *a, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)a[i];
    return sqrt(s);
}

/* The step for direction v: eps_rel ||theta|| / ||v||, or eps_rel / ||v|| when theta is 0. */
static mixq_status step_for(const mixq_model *m, const float *v, double eps_rel, double *eps) {
    const double nt = norm2(m->params, m->n_params), nv = norm2(v, m->n_params);
    if (!(eps_rel > 0) || !isfinite(eps_rel))
        return mq_err(MIXQ_ERR_ARG, "hessian: the relative step %g must be a positive number", eps_rel);
    if (!(nv > 0) || !isfinite(nt))
        return mq_err(MIXQ_ERR_NUMERIC, "hessian: ||theta|| = %g, ||v|| = %g; hint: a trained float model and a "
                      "non-zero direction", nt, nv);
    *eps = eps_rel * (nt > 0 ? nt : 1.0) / nv;
    return MIXQ_OK;
}

mixq_status mq_hessian_hvp(mixq_model *m, const float *x, const int *labels, int n, int batch,
                           const float *v, double eps_rel, int frozen, double *hv, double *eps_out) {
    mixq_status st = check_args(m, x, labels, n, batch);
    if (st) return st;
    if (!v || !hv) return mq_err(MIXQ_ERR_ARG, "hessian: NULL direction or output");
    double eps;
    if ((st = step_for(m, v, eps_rel, &eps))) return st;
    if (eps_out) *eps_out = eps;
    const size_t P = m->n_params;
    float *theta0 = mq_malloc(P, sizeof(float), "parameters");
    float *logits = mq_malloc((size_t)MQ_MIN(batch, n) * (size_t)m->cfg.classes, sizeof(float), "logits");
    patterns pat = {NULL, 0};
    st = theta0 && logits ? MIXQ_OK : MIXQ_ERR_NOMEM;
    if (!st) {
        memcpy(theta0, m->params, sizeof(float) * P);
        st = patterns_init(m, x, n, batch, frozen, 0, logits, &pat);
    }
    if (!st) st = hvp(m, x, labels, n, batch, theta0, v, eps, &pat, logits, hv);
    free(theta0);
    free(logits);
    free(pat.buf);
    return st;
}

mixq_status mq_hessian_traces(mixq_model *m, const float *x, const int *labels, int n,
                              const mq_hessian_config *c, const int *nodes, int L, double *trace,
                              double *sem, mq_hessian_progress_fn fn, void *user,
                              mq_hessian_result *res) {
    mixq_status st = check_args(m, x, labels, n, c ? c->batch : 0);
    if (st) return st;
    if (!c || !nodes || L < 1 || !trace || !res) return mq_err(MIXQ_ERR_ARG, "hessian: NULL argument or no layer");
    if (c->max_probes < 1 || c->min_probes < 0 || !(c->tol >= 0))
        return mq_err(MIXQ_ERR_ARG, "hessian: max_probes %d, min_probes %d, tol %g: expected at least one probe "
                      "and a tolerance >= 0", c->max_probes, c->min_probes, c->tol);
    for (int l = 0; l < L; l++)
        if (nodes[l] < 0 || nodes[l] >= m->n_nodes || !mq_node_quantizable(m, nodes[l]))
            return mq_err(MIXQ_ERR_ARG, "hessian: layer %d (node %d) is not a conv or linear node", l, nodes[l]);
    memset(res, 0, sizeof *res);
    const double t0 = mq_now();
    const size_t P = m->n_params;
    float *theta0 = mq_malloc(P, sizeof(float), "parameters");
    float *v = mq_malloc(P, sizeof(float), "Hutchinson probe");
    double *hv = mq_malloc(P, sizeof(double), "Hessian-vector product");
    double *sum = mq_calloc(3 * (size_t)L, sizeof(double), "trace sums");
    float *logits = mq_malloc((size_t)MQ_MIN(c->batch, n) * (size_t)m->cfg.classes, sizeof(float), "logits");
    patterns pat = {NULL, 0};
    if (!theta0 || !v || !hv || !sum || !logits) st = MIXQ_ERR_NOMEM;
    double *sq = sum ? sum + L : NULL, *prev = sum ? sum + 2 * L : NULL;
    if (!st) memcpy(theta0, m->params, sizeof(float) * P);
    if (!st) st = patterns_init(m, x, n, c->batch, c->frozen, c->pattern_cap, logits, &pat);
    int k = 0, converged = 0;
    while (!st && k < c->max_probes && !converged) {
        mq_rng rng;
        mq_rng_seed(&rng, mq_seed_mix(c->seed, 0x48657373 /* "Hess" */, (uint64_t)k));
        for (size_t i = 0; i < P; i += 64) {
            uint64_t bits = mq_rng_u64(&rng);
            for (size_t j = i; j < P && j < i + 64; j++, bits >>= 1) v[j] = bits & 1 ? 1.0f : -1.0f;
        }
        if (k == 0 && (st = step_for(m, v, c->eps_rel, &res->eps))) break; /* ||v|| is the same for every probe */
        if ((st = hvp(m, x, labels, n, c->batch, theta0, v, res->eps, &pat, logits, hv))) break;
        k++;
        converged = k >= 2 && k >= c->min_probes && k < c->max_probes;
        for (int l = 0; l < L; l++) {
            const mq_tensor *t = &m->tensors[m->nodes[nodes[l]].t_w];
            double s = 0;
            for (int64_t i = 0; i < t->numel; i++) s += (double)v[t->off + (size_t)i] * hv[t->off + (size_t)i];
            if (!isfinite(s)) {
                st = mq_err(MIXQ_ERR_NUMERIC, "hessian: probe %d gives %g on layer '%s'; hint: a trained float "
                            "model (finite loss), or a larger relative step", k, s, m->nodes[nodes[l]].name);
                break;
            }
            sum[l] += s, sq[l] += s * s;
            const double mean = sum[l] / k;
            if (k > 1 && fabs(mean - prev[l]) > c->tol * fabs(prev[l])) converged = 0;
            prev[l] = mean;
        }
        if (st) break;
        if (fn) fn(k, converged || k == c->max_probes ? k : c->max_probes, user);
    }
    if (!st) {
        for (int l = 0; l < L; l++) {
            trace[l] = sum[l] / k;
            if (sem) {
                const double var = k > 1 ? fmax(sq[l] - sum[l] * sum[l] / k, 0) / (k - 1) : 0;
                sem[l] = sqrt(var / k);
            }
        }
        res->probes = k;
        res->converged = converged;
    }
    res->seconds = mq_now() - t0;
    free(theta0);
    free(v);
    free(hv);
    free(sum);
    free(logits);
    free(pat.buf);
    return st;
}

mixq_status mq_hessian_weight_err(mixq_model *m, int node, int bits, double *err) {
    return mq_hessian_kernel_err(m, node, bits, err, NULL);
}

mixq_status mq_hessian_kernel_err(mixq_model *m, int node, int bits, double *err, double *per_kernel) {
    if (!m || !err || node < 0 || node >= m->n_nodes || !mq_node_quantizable(m, node))
        return mq_err(MIXQ_ERR_ARG, "hessian: node %d is not a conv or linear node", node);
    if (bits < 1 || bits > 8) return mq_err(MIXQ_ERR_ARG, "hessian: %d weight bits; expected 1..8", bits);
    /* the setting a search candidate gives this layer, resolved as the policy resolves it */
    mixq_policy *p = NULL;
    mq_lq lq;
    memset(&lq, 0, sizeof lq);
    mixq_status st = mixq_policy_create(8, 8, &p);
    if (!st) st = mixq_policy_set_layer(p, m->nodes[node].name, bits, 8);
    if (!st) st = mq_policy_resolve_node(p, m, node, &lq);
    mixq_policy_free(p);
    if (st) return st;
    const mq_tensor *t = &m->tensors[m->nodes[node].t_w];
    const int K = lq.K;
    const int64_t inner = t->numel / K;
    const float *w = mq_tensor_ptr(m, m->nodes[node].t_w);
    float *scale = mq_malloc((size_t)K, sizeof(float), "weight scales");
    float *wq = mq_malloc((size_t)t->numel, sizeof(float), "quantized weights");
    st = scale && wq ? MIXQ_OK : MIXQ_ERR_NOMEM;
    if (!st) st = mq_weight_scales_rows(w, K, inner, lq.kbits, lq.gran, lq.wclip, lq.wclip_rows, scale);
    if (!st) {
        mq_weight_fake_quant(w, K, inner, lq.kbits, scale, wq, NULL, NULL);
        double e = 0;
        for (int k = 0; k < K; k++) {
            double ek = 0;
            for (int64_t i = (int64_t)k * inner; i < (int64_t)(k + 1) * inner; i++)
                ek += ((double)wq[i] - w[i]) * ((double)wq[i] - w[i]);
            if (per_kernel) per_kernel[k] = ek;
            e += ek;
        }
        *err = e;
    }
    free(lq.kbits);
    free(scale);
    free(wq);
    return st;
}
