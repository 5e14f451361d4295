/* HAWQ (V2's sensitivities, V3's integer programme) behind the agent interface (search_int.h;
 * algorithms.md §5).
 *
 * Sensitivity of layer l at weight bits w and activation bits a:
 *     Omega_l(w, a) = T_l (||Q_w(W_l) - W_l||^2 + ||W_l||^2 rho_l(a)),   T_l = Tr(H_ll) / n_l,
 * with Tr(H_ll) Hutchinson's estimate (hessian.c) on the first --hessian-images training images,
 * Q_w the search's own weight quantizer (per channel, automatic clip), and rho_l(a) the relative
 * quantization error ||Q_a(x) - x||^2 / ||x||^2 of the layer's input activations at a bits, with
 * the clip calibration gives it (the search's calibration images and clip rule), measured on the
 * first 128 (at most --calib-images) of the images the traces use. The activation term is a
 * documented proxy, not a measured Hessian: for y = W x with an isotropic output Hessian, an
 * input error dx moves the output as a weight error dW with ||dW||^2 / ||W||^2 =
 * ||dx||^2 / ||x||^2 does, so both terms use the same average curvature T_l (HAWQ-V2's own Omega
 * is the weight term). A layer whose trace estimate is not positive (noise, or a non-convex
 * direction) gets 1e-3 of the largest layer's T_l, so it still prefers more bits; hessian.json
 * keeps the raw estimate.
 *
 * Then one multiple-choice knapsack per budget (ilp.c): one (w, a) per layer in b_min..b_max
 * (pinned layers 8/8), minimising sum Omega under every budget of the run, costs from the
 * environment's grids. Each solution is scored through the shared cache like any candidate.
 * --sweep N solves N budgets on the primary metric, evenly from --sweep-from (default: the
 * cheapest reachable cost) to the run's budget, the other budgets held; the Pareto files then
 * hold the frontier. Accuracy mode sweeps 10 budgets unless --sweep says otherwise, up to the
 * budget (W8A8's cost without one), and the driver keeps the cheapest within --max-drop.
 *
 * Run directory: hessian.json (traces, their standard errors and probes, the weight errors and
 * activation errors, and the settings that produced them: a rerun or --resume with the same
 * settings reads them instead of measuring again), sweep.csv (every solve: budget, objective,
 * solver time, the candidate's accuracy and costs). No state beyond the cache: a resumed run
 * solves again (deterministic) and its candidates come back from the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hw/hw.h"
#include "nn/model.h"
#include "quant/quant.h"
#include "search/hessian.h"
#include "search/ilp.h"
#include "search/search_int.h"

#define ACT_IMAGES 128     /* images the activation errors are measured on */
#define TRACE_FLOOR 1e-3   /* of the largest T_l, for non-positive estimates */
#define ILP_TIME_S 10.0
#define NB 9               /* bits 0..8 (0 unused) */

typedef struct hawq_sens {
    int L;
    double *trace, *sem;        /* [L] Tr(H_ll) and its standard error */
    double *n;                  /* [L] weights */
    double *wsq;                /* [L] ||W_l||^2 */
    double (*werr)[NB];         /* [L][b] ||Q_b(W) - W||^2 */
    double (*rho)[NB];          /* [L][b] activation relative error */
    double (*kerr)[NB];         /* kernel-wise: [koff[L]][b] each kernel's ||Q_b(W_k) - W_k||^2 */
    int probes, converged;
    double eps, seconds;        /* the trace pass */
    double act_seconds;         /* the activation errors' calibrations */
} hawq_sens;

static void sens_free(hawq_sens *h) {
    free(h->trace);
    free(h->werr);
    free(h->rho);
    free(h->kerr);
    memset(h, 0, sizeof *h);
}

static mixq_status sens_alloc(hawq_sens *h, int L, int s_kernel_count) {
    memset(h, 0, sizeof *h);
    h->L = L;
    h->trace = mq_calloc(4 * (size_t)L, sizeof(double), "traces");
    h->werr = mq_calloc((size_t)L, sizeof *h->werr, "weight errors");
    h->rho = mq_calloc((size_t)L, sizeof *h->rho, "activation errors");
    h->kerr = s_kernel_count ? mq_calloc((size_t)s_kernel_count, sizeof *h->kerr, "kernel weight errors") : NULL;
    if (!h->trace || !h->werr || !h->rho || (s_kernel_count && !h->kerr)) {
        sens_free(h);
        return MIXQ_ERR_NOMEM;
    }
    h->sem = h->trace + L, h->n = h->trace + 2 * L, h->wsq = h->trace + 3 * L;
    return MIXQ_OK;
}

static void hcfg(const mq_search *s, mq_hessian_config *hc) {
    mq_hessian_config_default(hc);
    hc->max_probes = s->cfg->hessian_probes;
    hc->batch = s->cfg->batch;
    hc->seed = s->cfg->seed;
}

/* The bits a layer may take: b_min..b_max, and 8 for pinned layers. */
static int bits_used(const mq_search *s, int b) { return (b >= s->cfg->b_min && b <= s->cfg->b_max) || b == 8; }

/* The activation widths a searched (not pinned) layer may take: b_min..b_max, and with
 * a_bit_set only its widths. */
static int a_allowed(const mq_search *s, int a) {
    const mixq_search_config *c = s->cfg;
    if (a < c->b_min || a > c->b_max) return 0;
    if (c->n_a_bit_set <= 0) return 1;
    for (int i = 0; i < c->n_a_bit_set; i++)
        if (c->a_bit_set[i] == a) return 1;
    return 0;
}

/* The settings that decide hessian.json's contents, as one JSON object. */
static cJSON *settings_json(const mq_search *s, int images) {
    mq_hessian_config hc;
    hcfg(s, &hc);
    const uint64_t h = mq_fnv1a(s->fp->params, s->fp->n_params * sizeof(float), MQ_FNV_BASIS);
    char hash[20];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)h);
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "params_fnv64", hash);
    cJSON_AddNumberToObject(j, "images", images);
    cJSON_AddNumberToObject(j, "batch", hc.batch);
    cJSON_AddNumberToObject(j, "max_probes", hc.max_probes);
    cJSON_AddNumberToObject(j, "min_probes", hc.min_probes);
    cJSON_AddNumberToObject(j, "tol", hc.tol);
    cJSON_AddNumberToObject(j, "eps_rel", hc.eps_rel);
    cJSON_AddNumberToObject(j, "seed", (double)hc.seed);
    cJSON_AddNumberToObject(j, "calib_images", s->cfg->calib_images);
    cJSON_AddNumberToObject(j, "act_images", ACT_IMAGES);
    cJSON_AddNumberToObject(j, "b_min", s->cfg->b_min);
    cJSON_AddNumberToObject(j, "b_max", s->cfg->b_max);
    return j;
}

/* hessian.json from an earlier run with the same settings: 1 if read into h. */
static int sens_read(mq_search *s, const cJSON *want, hawq_sens *h) {
    char *t = NULL;
    if (mq_search_read_file(s, "hessian.json", &t) || !t) {
        mixq_clear_error();
        return 0;
    }
    cJSON *j = cJSON_Parse(t);
    free(t);
    int ok = j && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(j, "settings"), want, 1);
    const cJSON *layers = ok ? cJSON_GetObjectItemCaseSensitive(j, "layers") : NULL;
    ok = ok && cJSON_IsArray(layers) && cJSON_GetArraySize(layers) == h->L;
    for (int l = 0; ok && l < h->L; l++) {
        const cJSON *e = cJSON_GetArrayItem(layers, l);
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(e, "trace");
        const cJSON *se = cJSON_GetObjectItemCaseSensitive(e, "sem");
        const cJSON *rho = cJSON_GetObjectItemCaseSensitive(e, "act_rel_err");
        ok = cJSON_IsString(nm) && !strcmp(nm->valuestring, s->env.name[l]) && cJSON_IsNumber(tr) &&
             isfinite(tr->valuedouble) && cJSON_IsNumber(se) && cJSON_IsArray(rho) && cJSON_GetArraySize(rho) == 8;
        for (int b = 1; ok && b <= 8; b++) {
            const cJSON *r = cJSON_GetArrayItem(rho, b - 1);
            ok = cJSON_IsNumber(r) && (!bits_used(s, b) || (r->valuedouble >= 0 && isfinite(r->valuedouble)));
            if (ok) h->rho[l][b] = r->valuedouble;
        }
        if (ok) h->trace[l] = tr->valuedouble, h->sem[l] = se->valuedouble;
    }
    const cJSON *pr = ok ? cJSON_GetObjectItemCaseSensitive(j, "probes") : NULL;
    const cJSON *cv = ok ? cJSON_GetObjectItemCaseSensitive(j, "converged") : NULL;
    const cJSON *ep = ok ? cJSON_GetObjectItemCaseSensitive(j, "eps") : NULL;
    const cJSON *sc = ok ? cJSON_GetObjectItemCaseSensitive(j, "seconds") : NULL;
    ok = ok && cJSON_IsNumber(pr) && cJSON_IsBool(cv) && cJSON_IsNumber(ep) && cJSON_IsNumber(sc);
    if (ok) h->probes = pr->valueint, h->converged = cJSON_IsTrue(cv), h->eps = ep->valuedouble, h->seconds = sc->valuedouble;
    cJSON_Delete(j);
    return ok;
}

static mixq_status sens_write(mq_search *s, const cJSON *settings, const hawq_sens *h) {
    cJSON *j = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    if (!j || !layers) {
        cJSON_Delete(j);
        cJSON_Delete(layers);
        return mq_err(MIXQ_ERR_NOMEM, "out of memory for hessian.json");
    }
    cJSON_AddNumberToObject(j, "mixq_hessian", 1);
    cJSON_AddItemToObject(j, "settings", cJSON_Duplicate(settings, 1));
    cJSON_AddNumberToObject(j, "probes", h->probes);
    cJSON_AddBoolToObject(j, "converged", h->converged);
    cJSON_AddNumberToObject(j, "eps", h->eps);
    cJSON_AddNumberToObject(j, "seconds", h->seconds);
    cJSON_AddNumberToObject(j, "act_seconds", h->act_seconds);
    cJSON_AddItemToObject(j, "layers", layers);
    for (int l = 0; l < h->L; l++) {
        cJSON *e = cJSON_CreateObject();
        double we[8], re[8];
        for (int b = 1; b <= 8; b++) we[b - 1] = h->werr[l][b], re[b - 1] = h->rho[l][b];
        cJSON_AddStringToObject(e, "name", s->env.name[l]);
        cJSON_AddNumberToObject(e, "weights", h->n[l]);
        cJSON_AddNumberToObject(e, "trace", h->trace[l]);
        cJSON_AddNumberToObject(e, "sem", h->sem[l]);
        cJSON_AddNumberToObject(e, "trace_per_weight", h->trace[l] / h->n[l]);
        cJSON_AddNumberToObject(e, "weight_sq", h->wsq[l]);
        cJSON_AddItemToObject(e, "weight_err", cJSON_CreateDoubleArray(we, 8));   /* bits 1..8; 0: unused */
        cJSON_AddItemToObject(e, "act_rel_err", cJSON_CreateDoubleArray(re, 8)); /* bits 1..8; 0: unused */
        cJSON_AddItemToArray(layers, e);
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return mq_err(MIXQ_ERR_NOMEM, "out of memory for hessian.json");
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return mq_err(MIXQ_ERR_NOMEM, "out of memory for hessian.json");
    }
    t2[n] = '\n', t2[n + 1] = 0;
    mixq_status st = mq_search_write_file(s, "hessian.json", t2);
    free(t2);
    return st;
}

static void on_probe(int k, int max, void *user) { mq_search_progress(user, "hessian", k, max, NULL, 0); }

/* rho[l][a]: each layer's input quantized at a bits with the clip calibration gives it (every
 * layer at a bits, weights float), against the float input, over up to ACT_IMAGES images. */
static mixq_status act_errors(mq_search *s, mixq_model *fm, const float *x, int n, hawq_sens *h) {
    const int L = s->env.L;
    float (*clip)[NB] = mq_calloc((size_t)L, sizeof *clip, "activation clips");
    int *sgn = mq_calloc((size_t)L, sizeof(int), "activation signs");
    float *logits = mq_malloc((size_t)n * (size_t)fm->cfg.classes, sizeof(float), "logits");
    float *q = NULL;
    mixq_status st = clip && sgn && logits ? MIXQ_OK : MIXQ_ERR_NOMEM;
    for (int b = 1; b <= 8 && !st; b++) {
        if (!bits_used(s, b)) continue;
        mixq_model *qm = NULL;
        mixq_policy *p = NULL;
        st = mixq_model_clone(s->fp, &qm);
        if (!st) st = mixq_policy_create(MIXQ_FLOAT_BITS, b, &p);
        if (!st) st = mixq_model_quantize(qm, p);
        if (!st) st = mixq_model_calibrate(qm, s->train, s->cfg->calib_images);
        for (int i = 0; !st && i < mixq_model_quant_layers(qm); i++) {
            mixq_layer_quant lq;
            if ((st = mixq_model_quant_layer(qm, i, &lq))) break;
            for (int l = 0; l < L; l++)
                if (s->env.node[l] == lq.node) clip[l][b] = lq.a_clip, sgn[l] = lq.a_signed;
        }
        mixq_policy_free(p);
        mixq_model_free(qm);
    }
    if (!st) st = mixq_model_forward(fm, x, n, 0, logits);
    size_t cap = 0;
    for (int l = 0; l < L && !st; l++) {
        mixq_node_info ni, in;
        if ((st = mixq_model_node(fm, s->env.node[l], &ni))) break;
        if ((st = mixq_model_node(fm, ni.inputs[0], &in))) break;
        const size_t cnt = (size_t)n * (size_t)in.out_c * (size_t)in.out_h * (size_t)in.out_w;
        const float *xin = mixq_model_node_output(fm, ni.inputs[0]);
        if (!xin) {
            st = mq_err(MIXQ_ERR_STATE, "hawq: no output of node '%s' after the forward pass", in.name);
            break;
        }
        if (cnt > cap) {
            free(q);
            if (!(q = mq_malloc(cnt, sizeof(float), "quantized activations"))) {
                st = MIXQ_ERR_NOMEM;
                break;
            }
            cap = cnt;
        }
        double sx = 0;
        for (size_t i = 0; i < cnt; i++) sx += (double)xin[i] * xin[i];
        for (int b = 1; b <= 8; b++) {
            h->rho[l][b] = 0;
            if (!bits_used(s, b) || !(sx > 0) || !(clip[l][b] > 0)) continue;
            mq_act_fake_quant(xin, (int64_t)cnt, b, sgn[l], clip[l][b], q);
            double se = 0;
            for (size_t i = 0; i < cnt; i++) se += ((double)q[i] - xin[i]) * ((double)q[i] - xin[i]);
            h->rho[l][b] = se / sx;
        }
    }
    free(clip);
    free(sgn);
    free(logits);
    free(q);
    return st;
}

/* Traces (measured, or read from hessian.json), weight errors and activation errors. */
static mixq_status sensitivities(mq_search *s, hawq_sens *h) {
    const int L = s->env.L;
    mixq_status st = sens_alloc(h, L, s->cfg->kernel_wise ? s->env.koff[L] : 0);
    if (st) return st;
    const int n = MQ_MIN(s->cfg->hessian_images, mixq_dataset_count(s->train));
    cJSON *want = settings_json(s, n);
    mixq_model *fm = NULL;
    float *x = NULL;
    int *lab = NULL;
    int c, hh, ww, classes;
    mixq_dataset_shape(s->train, &c, &hh, &ww, &classes);
    if (!want) st = mq_err(MIXQ_ERR_NOMEM, "out of memory for the Hessian settings");
    if (!st) st = mixq_model_clone(s->fp, &fm);
    if (!st) {
        x = mq_malloc((size_t)n * (size_t)(c * hh * ww), sizeof(float), "Hessian images");
        lab = mq_malloc((size_t)n, sizeof(int), "Hessian labels");
        if (!x || !lab) st = MIXQ_ERR_NOMEM;
    }
    mixq_preprocess pp;
    mixq_model_preprocess(s->fp, &pp);
    if (!st) st = mixq_dataset_batch(s->train, &pp, 0, n, x, lab);
    for (int l = 0; l < L && !st; l++) {
        const int node = s->env.node[l];
        const mq_tensor *t = &fm->tensors[fm->nodes[node].t_w];
        const float *w = mq_tensor_ptr(fm, fm->nodes[node].t_w);
        h->n[l] = (double)t->numel;
        for (int64_t i = 0; i < t->numel; i++) h->wsq[l] += (double)w[i] * w[i];
        for (int b = 1; b <= 8 && !st; b++)
            if (bits_used(s, b)) {
                if (!h->kerr) {
                    st = mq_hessian_weight_err(fm, node, b, &h->werr[l][b]);
                    continue;
                }
                const int K = s->env.koff[l + 1] - s->env.koff[l];
                double *ek = mq_malloc((size_t)K, sizeof(double), "kernel weight errors");
                st = ek ? mq_hessian_kernel_err(fm, node, b, &h->werr[l][b], ek) : MIXQ_ERR_NOMEM;
                for (int k = 0; k < K && !st; k++) h->kerr[s->env.koff[l] + k][b] = ek[k];
                free(ek);
            }
    }
    if (!st && !sens_read(s, want, h)) {
        mq_hessian_config hc;
        hcfg(s, &hc);
        mq_hessian_result r;
        st = mq_hessian_traces(fm, x, lab, n, &hc, s->env.node, L, h->trace, h->sem, on_probe, s, &r);
        if (!st) {
            h->probes = r.probes, h->converged = r.converged, h->eps = r.eps, h->seconds = r.seconds;
            const double t0 = mq_now();
            st = act_errors(s, fm, x, MQ_MIN(n, MQ_MIN(ACT_IMAGES, s->cfg->calib_images)), h);
            h->act_seconds = mq_now() - t0;
        }
        if (!st) st = sens_write(s, want, h);
    }
    cJSON_Delete(want);
    mixq_model_free(fm);
    free(x);
    free(lab);
    if (st) sens_free(h);
    return st;
}

/* ---- kernel-wise (README "HAWQ"): per layer, every (a, w) as before, plus every split of its
 * kernels into two widths w_lo < w_hi: the n kernels with the largest quantization error at the
 * lowest width get w_hi, the rest w_lo, n a multiple of the target's weight-tile rows (at most
 * KW_SPLITS splits per layer). A choice's cost is exact (mixq_hw_cost_kernels of that split: a
 * split that re-reads activations or pads a tile pays for it), so one programme per budget
 * picks activation widths and kernel widths together. */
#define KW_SPLITS 16

typedef struct kw_prog {
    int C;                      /* choices per layer (the largest layer's count) */
    int *lo, *hi, *n, *a;       /* [L][C] w_lo, w_hi, kernels at w_hi (0: all at w_lo), a */
    double *val, *cost;         /* [L][C], [MQ_NMETRIC][L][C] */
    unsigned char *ok;          /* [L][C] */
    int *order;                 /* [koff[L]] each layer's kernels by descending error at b_min */
    int *kb;                    /* [koff[L]] the expanded pick */
} kw_prog;

static void kw_free(kw_prog *g) {
    free(g->lo); /* hi, n, a live in lo's block; kb in order's */
    free(g->val);
    free(g->cost);
    free(g->ok);
    free(g->order);
    memset(g, 0, sizeof *g);
}

static const double (*sort_err)[NB];
static int sort_b;
static int by_error(const void *x, const void *y) {
    const int i = *(const int *)x, j = *(const int *)y;
    const double ei = sort_err[i][sort_b], ej = sort_err[j][sort_b];
    return ei > ej ? -1 : ei < ej ? 1 : (i > j) - (i < j);
}

static int kw_step(int K, int rows) {
    int step = rows;
    if ((K - 1) / step > KW_SPLITS) step = ((K + KW_SPLITS - 1) / KW_SPLITS + rows - 1) / rows * rows;
    return step;
}

/* Every layer's choices, their values T_l (sum of the kernels' weight errors at their widths +
 * ||W_l||^2 rho_l(a)) and exact costs. */
static mixq_status kw_build(mq_search *s, const hawq_sens *h, const double *T, kw_prog *g) {
    const mq_env *e = &s->env;
    const mixq_search_config *c = s->cfg;
    const int L = e->L, NK = e->koff[L], rows = mq_hw_kernel_rows(s->hw), nb = c->b_max - c->b_min + 1;
    memset(g, 0, sizeof *g);
    int C = 0, Kmax = 0;
    for (int l = 0; l < L; l++) {
        const int K = e->koff[l + 1] - e->koff[l], splits = K > rows ? (K - 1) / kw_step(K, rows) : 0;
        C = MQ_MAX(C, nb * nb + nb * nb * (nb - 1) / 2 * splits);
        Kmax = MQ_MAX(Kmax, K);
    }
    C = MQ_MAX(C, NB * NB); /* pinned layers use choice 8 * NB + 8 */
    g->C = C;
    const size_t LC = (size_t)L * C;
    g->lo = mq_malloc(4 * LC, sizeof(int), "kernel-wise choices");
    g->val = mq_calloc(LC, sizeof(double), "kernel-wise sensitivities");
    g->cost = mq_calloc((size_t)MQ_NMETRIC * LC, sizeof(double), "kernel-wise costs");
    g->ok = mq_calloc(LC, 1, "kernel-wise choices");
    g->order = mq_malloc(2 * (size_t)NK, sizeof(int), "kernel order");
    double *pre = mq_malloc((size_t)NB * (Kmax + 1), sizeof(double), "kernel errors");
    int *kbits = mq_malloc((size_t)Kmax, sizeof(int), "kernel widths");
    if (!g->lo || !g->val || !g->cost || !g->ok || !g->order || !pre || !kbits) {
        kw_free(g);
        free(pre);
        free(kbits);
        return MIXQ_ERR_NOMEM;
    }
    g->hi = g->lo + LC, g->n = g->lo + 2 * LC, g->a = g->lo + 3 * LC, g->kb = g->order + NK;
    for (int k = 0; k < NK; k++) g->order[k] = k;
    sort_err = (const double (*)[NB])h->kerr, sort_b = c->b_min; /* the agent runs on one thread */
    mixq_status st = MIXQ_OK;
    for (int l = 0; l < L && !st; l++) {
        const int K = e->koff[l + 1] - e->koff[l], pinned = e->pin_ends && (l == 0 || l == L - 1);
        int *ord = g->order + e->koff[l];
        qsort(ord, (size_t)K, sizeof(int), by_error);
        for (int b = 1; b <= 8; b++) { /* pre[b][i]: the first i kernels' errors at b bits */
            pre[b * (Kmax + 1)] = 0;
            for (int i = 0; i < K; i++) pre[b * (Kmax + 1) + i + 1] = pre[b * (Kmax + 1) + i] + h->kerr[ord[i]][b];
        }
        int j = 0;
#define PUT(LO, HI, N, A)                                                                                        \
    do {                                                                                                         \
        const size_t i_ = (size_t)l * C + j++;                                                                   \
        g->lo[i_] = (LO), g->hi[i_] = (HI), g->n[i_] = (N), g->a[i_] = (A), g->ok[i_] = 1;                       \
    } while (0)
        if (pinned) {
            j = 8 * NB + 8;
            PUT(8, 8, 0, 8);
        } else {
            for (int a = c->b_min; a <= c->b_max; a++) {
                if (!a_allowed(s, a)) continue;
                for (int w = c->b_min; w <= c->b_max; w++) PUT(w, w, 0, a);
            }
            const int step = kw_step(K, rows);
            for (int n = step; K > rows && n < K; n += step)
                for (int a = c->b_min; a <= c->b_max; a++) {
                    if (!a_allowed(s, a)) continue;
                    for (int lo = c->b_min; lo <= c->b_max; lo++)
                        for (int hi = lo + 1; hi <= c->b_max; hi++) PUT(lo, hi, n, a);
                }
        }
#undef PUT
        for (int i = 0; i < C && !st; i++) {
            const size_t x = (size_t)l * C + i;
            if (!g->ok[x]) continue;
            const int lo = g->lo[x], hi = g->hi[x], n = g->n[x], a = g->a[x];
            const double *plo = pre + lo * (Kmax + 1), *phi = pre + hi * (Kmax + 1);
            g->val[x] = T[l] * (phi[n] + plo[K] - plo[n] + h->wsq[l] * h->rho[l][a]);
            if (!n) {
                for (int m = 0; m < MQ_NMETRIC; m++) g->cost[((size_t)m * L + l) * C + i] = e->grid[l][m][lo][a];
                continue;
            }
            for (int k = 0; k < K; k++) kbits[ord[k] - e->koff[l]] = k < n ? hi : lo;
            mixq_cost cc;
            if ((st = mixq_hw_cost_kernels(s->hw, &e->hl[l], kbits, a, &cc))) break;
            const double v[MQ_NMETRIC] = {cc.latency_s, cc.energy_j, cc.size_bits, cc.bitops};
            for (int m = 0; m < MQ_NMETRIC; m++) g->cost[((size_t)m * L + l) * C + i] = v[m];
        }
    }
    free(pre);
    free(kbits);
    if (st) kw_free(g);
    return st;
}

/* Choice pick[l] of every layer as kernel widths (g->kb) and activation widths a[]. */
static void kw_expand(const mq_env *e, const kw_prog *g, const int *pick, int *a) {
    for (int l = 0; l < e->L; l++) {
        const size_t x = (size_t)l * g->C + pick[l];
        const int K = e->koff[l + 1] - e->koff[l];
        for (int k = 0; k < K; k++) g->kb[g->order[e->koff[l] + k]] = k < g->n[x] ? g->hi[x] : g->lo[x];
        a[l] = g->a[x];
    }
}

typedef struct hawq_sweep {
    double ratio, omega, ilp_s;
    double omega_layer;         /* kernel-wise: the layer-wise programme's objective */
    int kernel;                 /* kernel-wise: 1 some layer's kernels differ */
    int optimal, variables;
    double acc, cost[MQ_NMETRIC]; /* the candidate's score and cost ratios */
} hawq_sweep;

static mixq_status write_sweep(mq_search *s, const hawq_sweep *sw, int n) {
    const size_t cap = 256 + (size_t)n * 256;
    char *t = mq_malloc(cap, 1, "sweep.csv");
    if (!t) return MIXQ_ERR_NOMEM;
    const int kw = s->cfg->kernel_wise;
    size_t k = (size_t)snprintf(t, cap, "episode,budget_metric,budget_ratio,omega,optimal,binaries,ilp_s,acc,"
                                "latency_ratio,energy_ratio,size_ratio,bitops_ratio%s\n",
                                kw ? ",granularity,omega_layerwise" : "");
    for (int i = 0; i < n; i++) {
        k += (size_t)snprintf(t + k, cap - k, "%d,%s,%.6f,%.9g,%d,%d,%.4f,%.4f,%.6f,%.6f,%.6f,%.6f", i + 1,
                              mq_metric_names[s->env.metric], sw[i].ratio, sw[i].omega, sw[i].optimal,
                              sw[i].variables, sw[i].ilp_s, sw[i].acc, sw[i].cost[0], sw[i].cost[1], sw[i].cost[2],
                              sw[i].cost[3]);
        if (kw)
            k += (size_t)snprintf(t + k, cap - k, ",%s,%.9g", sw[i].kernel ? "kernel" : "layer", sw[i].omega_layer);
        k += (size_t)snprintf(t + k, cap - k, "\n");
    }
    mixq_status st = mq_search_write_file(s, "sweep.csv", t);
    free(t);
    return st;
}

static int sweep_count(const mq_search *s) {
    return s->cfg->sweep > 0 ? s->cfg->sweep : s->cfg->accuracy_mode ? 10 : 1;
}

static mixq_status hawq_check(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    if (c->hessian_images < 1 || c->hessian_probes < 1)
        return mq_err(MIXQ_ERR_ARG, "hawq: --hessian-images %d and --hessian-probes %d must be positive",
                      c->hessian_images, c->hessian_probes);
    if (c->kernel_wise && mq_hw_kernel_rows(s->hw) == 0)
        return mq_err(MIXQ_ERR_ARG, "--kernel-wise: target '%s' keeps weights bit-parallel, so per-kernel widths "
                      "cost what its widest kernel costs and gain nothing; hint: a bit-serial target (bismo_edge, "
                      "loom, a cpu table) or size/bitops, or drop --kernel-wise", mixq_hw_name(s->hw));
    if (c->sweep < 0 || c->sweep > 10000 || !(c->sweep_from >= 0 && c->sweep_from <= 100))
        return mq_err(MIXQ_ERR_ARG, "hawq: --sweep %d (0..10000) or --sweep-from %g (a fraction of W8A8, 0: the "
                      "cheapest reachable) out of range", c->sweep, c->sweep_from);
    return mq_search_check_a_bit_set(s, 1);
}

static void hawq_config(const mq_search *s, char *buf, size_t n) {
    mq_hessian_config hc;
    hcfg(s, &hc);
    /* a_bit_set only where given: a run without it keeps its configuration (and resumes) */
    char abits[80];
    mq_search_a_bit_set_json(s, abits, sizeof abits);
    snprintf(buf, n,
             "%s\"hessian_images\": %d, \"hessian_batch\": %d, \"max_probes\": %d, \"min_probes\": %d, "
             "\"tol\": %g, \"eps_rel\": %g, \"activations\": \"proxy\", \"act_images\": %d, \"sweep\": %d, "
             "\"sweep_from\": %g, \"ilp_time_limit_s\": %g, \"kernel_wise\": %d, \"kernel_rows\": %d",
             abits, s->cfg->hessian_images, hc.batch, hc.max_probes, hc.min_probes, hc.tol, hc.eps_rel, ACT_IMAGES,
             sweep_count(s), s->cfg->sweep_from, ILP_TIME_S, s->cfg->kernel_wise,
             s->cfg->kernel_wise ? mq_hw_kernel_rows(s->hw) : 0);
}

static mixq_status run_hawq(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    const int L = s->env.L, M = s->env.metric, C = NB * NB;
    hawq_sens h;
    memset(&h, 0, sizeof h);
    mixq_status st = sensitivities(s, &h);
    if (st) return st;
    int done = 0;
    st = mq_search_read_state(s, &done);
    const int N = sweep_count(s);
    double *val = mq_calloc((size_t)L * C, sizeof(double), "sensitivities");
    double *cost = mq_calloc((size_t)MQ_NMETRIC * L * C, sizeof(double), "ILP costs");
    unsigned char *ok = mq_calloc((size_t)L * C, 1, "ILP choices");
    int *pick = mq_malloc((size_t)L * 3, sizeof(int), "ILP solution"), *w = pick ? pick + L : NULL, *a = pick ? pick + 2 * L : NULL;
    hawq_sweep *sw = mq_calloc((size_t)N, sizeof *sw, "sweep");
    double *Tl = mq_malloc((size_t)L, sizeof(double), "curvatures");
    kw_prog kg;
    memset(&kg, 0, sizeof kg);
    if (!st && (!val || !cost || !ok || !pick || !sw || !Tl)) st = MIXQ_ERR_NOMEM;
    if (!st) {
        double tmax = 0;
        for (int l = 0; l < L; l++) tmax = fmax(tmax, h.trace[l] / h.n[l]);
        for (int l = 0; l < L; l++) {
            const double T = h.trace[l] / h.n[l] > 0 ? h.trace[l] / h.n[l] : TRACE_FLOOR * (tmax > 0 ? tmax : 1);
            Tl[l] = T;
            const int pinned = s->env.pin_ends && (l == 0 || l == L - 1);
            for (int wb = 1; wb <= 8; wb++)
                for (int ab = 1; ab <= 8; ab++) {
                    const size_t i = (size_t)l * C + (size_t)wb * NB + ab;
                    ok[i] = pinned ? wb == 8 && ab == 8 : wb >= c->b_min && wb <= c->b_max && a_allowed(s, ab);
                    val[i] = ok[i] ? T * (h.werr[l][wb] + h.wsq[l] * h.rho[l][ab]) : 0;
                    for (int k = 0; k < MQ_NMETRIC; k++)
                        cost[((size_t)k * L + l) * C + (size_t)wb * NB + ab] = s->env.grid[l][k][wb][ab];
                }
        }
    }
    if (!st && c->kernel_wise) st = kw_build(s, &h, Tl, &kg);
    double limit[MQ_NMETRIC];
    mq_mck p = {L, C, val, ok, MQ_NMETRIC, cost, limit, mq_metric_names, ILP_TIME_S, 0};
    /* the primary metric's budgets: N evenly from the lowest to the run's budget */
    double hi = isfinite(s->env.target[M]) ? s->env.target[M] : s->env.w8a8[M], lo = hi;
    if (!st) {
        const double reach = mq_mck_min_cost(&p, M);
        char b1[32], b2[32];
        lo = N == 1 ? hi : c->sweep_from > 0 ? c->sweep_from * s->env.w8a8[M] : reach;
        if (lo < reach * (1 - 1e-12))
            st = mq_err(MIXQ_ERR_ARG, "--sweep-from %g cannot be met: the cheapest reachable policy has %s %s = %.3f x "
                        "W8A8; hint: --sweep-from %.3f or more, or leave it out", c->sweep_from, mq_metric_names[M],
                        mq_env_fmt_cost(M, reach, b1, sizeof b1), reach / s->env.w8a8[M],
                        ceil(reach / s->env.w8a8[M] * 1000) / 1000);
        else if (lo > hi * (1 + 1e-12))
            st = mq_err(MIXQ_ERR_ARG, "--sweep-from %g is above the budget (%s %s = %.3f x W8A8); hint: a lower "
                        "--sweep-from", c->sweep_from, mq_metric_names[M], mq_env_fmt_cost(M, hi, b2, sizeof b2),
                        hi / s->env.w8a8[M]);
    }
    const int NK = c->kernel_wise ? s->env.koff[L] : 0;
    int *bits = st ? NULL : mq_malloc((size_t)N * (2 * L + NK), sizeof(int), "sweep policies");
    mq_cand *cands = st ? NULL : mq_calloc((size_t)N, sizeof *cands, "sweep candidates");
    if (!st && (!bits || !cands)) st = MIXQ_ERR_NOMEM;
    for (int i = 0; i < N && !st; i++) {
        memcpy(limit, s->env.target, sizeof limit);
        limit[M] = mq_search_sweep_budget(lo, hi, i, N);
        mq_mck_result r;
        if ((st = mq_mck_solve(&p, pick, &r))) {
            char msg[1400];
            snprintf(msg, sizeof msg, "%s", mixq_last_error());
            st = mq_err(st, "hawq, budget %d of %d (%s = %.4f x W8A8): %s", i + 1, N, mq_metric_names[M],
                        limit[M] / s->env.w8a8[M], msg);
            break;
        }
        for (int l = 0; l < L; l++) w[l] = pick[l] / NB, a[l] = pick[l] % NB;
        sw[i].ratio = limit[M] / s->env.w8a8[M];
        sw[i].omega = r.objective, sw[i].ilp_s = r.seconds, sw[i].optimal = r.optimal, sw[i].variables = r.variables;
        sw[i].omega_layer = r.objective;
        if (c->kernel_wise) { /* the same budgets over the kernel-wise choices */
            mq_mck pk = {L, kg.C, kg.val, kg.ok, MQ_NMETRIC, kg.cost, limit, mq_metric_names, ILP_TIME_S, 0};
            int *kp = mq_malloc((size_t)L, sizeof(int), "ILP solution");
            mq_mck_result rk;
            if (!kp) st = MIXQ_ERR_NOMEM;
            if (!st) st = mq_mck_solve(&pk, kp, &rk);
            if (!st) {
                kw_expand(&s->env, &kg, kp, a);
                sw[i].omega = rk.objective, sw[i].ilp_s += rk.seconds, sw[i].variables = rk.variables;
                sw[i].optimal = rk.optimal;
                sw[i].kernel = 0;
                for (int l = 0; l < L; l++) sw[i].kernel |= kg.n[(size_t)l * kg.C + kp[l]] > 0;
            }
            free(kp);
            if (st) {
                char msg[1400];
                snprintf(msg, sizeof msg, "%s", mixq_last_error());
                st = mq_err(st, "hawq --kernel-wise, budget %d of %d: %s", i + 1, N, msg);
                break;
            }
        }
        /* the solution, kept for the scoring rounds */
        int *bw = bits + (size_t)i * (2 * L + NK);
        memcpy(bw, w, sizeof(int) * (size_t)L);
        memcpy(bw + L, a, sizeof(int) * (size_t)L);
        if (c->kernel_wise) memcpy(bw + 2 * L, kg.kb, sizeof(int) * (size_t)NK);
        cands[i] = (mq_cand){bw, bw + L, c->kernel_wise ? bw + 2 * L : NULL, i + 1, NULL, 0};
    }
    /* every budget's solution scored, mq_search_parallel at a time (over the MPI ranks) */
    const int K = mq_search_parallel(s);
    for (int i = 0; i < N && !st; i += K) {
        const int k = MQ_MIN(K, N - i);
        int *was = mq_malloc((size_t)k, sizeof(int), "round");
        if (!was) {
            st = MIXQ_ERR_NOMEM;
            break;
        }
        for (int j = 0; j < k; j++) { /* scored by an earlier budget (or process) */
            const mq_rec *hit = cands[i + j].kb ? mq_search_find_kernels(s, cands[i + j].kb, cands[i + j].a)
                                                : mq_search_find(s, cands[i + j].w, cands[i + j].a);
            was[j] = hit && hit->episode < i + j + 1;
        }
        st = mq_search_evaluate_batch(s, cands + i, k);
        for (int j = 0; j < k && !st; j++) {
            const mq_rec *rec = cands[i + j].rec;
            const int cached = was[j] || rec->episode < i + j + 1;
            if (cached && i + j + 1 > done) s->cache_hits++;
            sw[i + j].acc = rec->acc;
            memcpy(sw[i + j].cost, rec->ratio, sizeof sw[i + j].cost);
            cands[i + j].cached = cached;
        }
        free(was);
        if (!st) st = mq_search_save_state(s, i + k);
        if (!st) st = write_sweep(s, sw, i + k);
        for (int j = 0; j < k && !st; j++)
            mq_search_progress(s, "search", i + j + 1, N, cands[i + j].rec, cands[i + j].cached);
    }
    free(bits);
    free(cands);
    sens_free(&h);
    kw_free(&kg);
    free(Tl);
    free(val);
    free(cost);
    free(ok);
    free(pick);
    free(sw);
    return st;
}

const mq_agent mq_agent_hawq = {"hawq", "Hessian-trace sensitivities and an integer programme (GLPK)", 0, hawq_check,
                                hawq_config, run_hawq, NULL, NULL, 0, NULL, NULL};
