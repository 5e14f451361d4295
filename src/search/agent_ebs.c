/* EBS (the seed's "Effective and efficient bit-width search"; README "EBS"): a differentiable
 * search. Every quantizable layer keeps its float weights (the meta-weights, shared by all its
 * candidate widths) and strengths alpha (weights) and beta (activations) over the widths of
 * --bit-set (activations: --a-bit-set where given); one convolution runs on the mixtures (src/quant/mixture.c). Per step:
 *   1. a batch of the weights' half of the training split: forward and backward on the mixtures,
 *      an SGD step of the weights (the run's lr, cosine over the search) and of each candidate's
 *      activation clip (PACT);
 *   2. a batch of the strengths' half (DARTS' first-order alternation): forward and backward,
 *      plus the cost hinge lambda sum_k max(0, E[C_k] / W8A8_k - T_k) over the budgets k, with
 *          E[C_k] = sum_l sum_i sum_j r_{l,i} s_{l,j} C_{l,k}(b_i, b_j)
 *      from the target's per-layer cost grids (any --hw: bitops, size, bitfusion, bismo, the
 *      measured cpu table), r = softmax(alpha), s = softmax(beta); then an Adam step of the
 *      strengths.
 * Why two halves: the strengths must be chosen on data the weights did not fit, or they learn
 * to favour whichever width the weights overfit (DARTS' argument); the validation images are
 * the scoring's, and the test split is never read. Gumbel (--ebs gumbel=1): each forward runs
 * the one-hot argmax of alpha + g (g Gumbel noise), the gradients go through the soft
 * softmax((alpha + g) / tau), tau geometric from tau0 to tau1.
 * At the end each layer takes its strengths' argmax widths; pinned layers (first and last with
 * pin_ends) stay 8/8; a policy over budget goes through HAQ's wall (mq_env_wall). A second
 * policy fills the budget the argmax leaves unused (fill_budget). Both are scored as every
 * agent's candidates are (short fine-tune from the float model), and the search core fine-tunes
 * the best. --sweep N runs N searches, at budgets evenly from
 * --sweep-from (default: the cheapest reachable policy's cost) to the run's budget.
 * Kill-safe: after each search the policies found so far are the checkpoint (a resumed run
 * re-proposes them from the cache and searches the rest); a search killed midway is run again
 * from its start (same seed, same result). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "quant/mixture.h"
#include "search/search_int.h"

static const int ebs_default_bits[] = {2, 3, 4, 5, 6, 8};

typedef struct eb_settings {
    int epochs, gumbel, nb, na;
    const int *bits, *abits; /* weights' and activations' candidate widths */
    double tau0, tau1, lambda, lr;
} eb_settings;

static eb_settings settings(const mq_search *s) {
    const mixq_search_config *c = s->cfg;
    eb_settings h;
    h.epochs = c->ebs_epochs > 0 ? c->ebs_epochs : 1;
    h.gumbel = c->ebs_gumbel > 0;
    h.tau0 = c->ebs_tau0 > 0 ? c->ebs_tau0 : 5;
    h.tau1 = c->ebs_tau1 > 0 ? c->ebs_tau1 : 0.5;
    h.lambda = c->ebs_lambda > 0 ? c->ebs_lambda : 2;
    h.lr = c->ebs_lr > 0 ? c->ebs_lr : 0.01;
    h.nb = c->n_bit_set > 0 ? c->n_bit_set : (int)MQ_COUNTOF(ebs_default_bits);
    h.bits = c->n_bit_set > 0 ? c->bit_set : ebs_default_bits;
    h.na = c->n_a_bit_set > 0 ? c->n_a_bit_set : h.nb;
    h.abits = c->n_a_bit_set > 0 ? c->a_bit_set : h.bits;
    return h;
}

static int sweep_count(const mq_search *s) { return s->cfg->sweep > 0 ? s->cfg->sweep : 1; }

static mixq_status ebs_check(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    const eb_settings h = settings(s);
    if (c->accuracy_mode)
        return mq_err(MIXQ_ERR_ARG, "ebs searches under a budget (its loss weighs the expected cost against it); "
                      "hint: drop --mode accuracy and give --budget, e.g. bitops=0.25");
    _Static_assert(MQ_MIX_MAXB == 8, "the shared width check allows 8 widths");
    mixq_status st = mq_search_check_widths(s, "--bit-set", "bit_set", h.bits, h.nb, 2);
    if (!st) st = mq_search_check_a_bit_set(s, 2);
    if (st) return st;
    if (c->ebs_epochs > 1000 || c->ebs_images < 0 || !(h.tau0 <= 1e3 && h.tau1 <= h.tau0) || !(h.lambda <= 1e6) || !(h.lr <= 10))
        return mq_err(MIXQ_ERR_ARG, "ebs: epochs %d (1..1000), tau0 %g >= tau1 %g (<= 1000), lambda %g (<= 1e6) or lr "
                      "%g (<= 10) out of range", c->ebs_epochs, h.tau0, h.tau1, h.lambda, h.lr);
    if (c->sweep < 0 || c->sweep > 1000 || !(c->sweep_from >= 0 && c->sweep_from <= 100))
        return mq_err(MIXQ_ERR_ARG, "ebs: --sweep %d (0..1000) or --sweep-from %g (a fraction of W8A8) out of range",
                      c->sweep, c->sweep_from);
    return MIXQ_OK;
}

static void ebs_config(const mq_search *s, char *buf, size_t n) {
    const eb_settings h = settings(s);
    /* a_bit_set only where given: the configuration of a run without it reads as before (and
     * resumes) */
    char bits[64] = "", abits[80];
    for (int i = 0; i < h.nb; i++) snprintf(bits + strlen(bits), sizeof bits - strlen(bits), "%s%d", i ? ", " : "", h.bits[i]);
    mq_search_a_bit_set_json(s, abits, sizeof abits);
    snprintf(buf, n,
             "\"bit_set\": [%s], %s\"epochs\": %d, \"mixing\": \"%s\", \"tau0\": %g, \"tau1\": %g, \"lambda\": %g, "
             "\"strength_lr\": %g, \"strength_optimizer\": \"adam\", \"split\": \"train halves\", \"sweep\": %d, "
             "\"sweep_from\": %g, \"images\": %d",
             bits, abits, h.epochs, h.gumbel ? "gumbel" : "softmax", h.tau0, h.tau1, h.lambda, h.lr, sweep_count(s),
             s->cfg->sweep_from, s->cfg->ebs_images);
}

/* ------------------------------------------------------------------ the expected cost */

double mq_ebs_expected_cost(mixq_model *m, const mq_env *e, int k, double g, double (*d_alpha)[MQ_MIX_MAXB],
                            double (*d_beta)[MQ_MIX_MAXB]) {
    double tot = 0;
    for (int l = 0; l < e->L; l++) {
        const mq_mix_layer *p = mq_mix_get(m, l);
        double r[MQ_MIX_MAXB], q[MQ_MIX_MAXB];
        mq_mix_softmax(p->alpha, p->nw, 1, r);
        mq_mix_softmax(p->beta, p->na, 1, q);
        double dr[MQ_MIX_MAXB] = {0}, dq[MQ_MIX_MAXB] = {0};
        for (int i = 0; i < p->nw; i++)
            for (int j = 0; j < p->na; j++) {
                const double c = e->grid[l][k][p->wbits[i]][p->abits[j]] / e->w8a8[k];
                tot += r[i] * q[j] * c;
                dr[i] += q[j] * c;
                dq[j] += r[i] * c;
            }
        if (!d_alpha) continue;
        double sr = 0, sq = 0;
        for (int i = 0; i < p->nw; i++) sr += r[i] * dr[i];
        for (int j = 0; j < p->na; j++) sq += q[j] * dq[j];
        for (int i = 0; i < p->nw && p->nw > 1; i++) d_alpha[l][i] += g * r[i] * (dr[i] - sr);
        for (int j = 0; j < p->na && p->na > 1; j++) d_beta[l][j] += g * q[j] * (dq[j] - sq);
    }
    return tot;
}

/* The argmax policy of the strengths into w[L], a[L]. */
static void argmax_policy(mixq_model *m, int L, int *w, int *a) {
    for (int l = 0; l < L; l++) {
        const mq_mix_layer *p = mq_mix_get(m, l);
        w[l] = p->wbits[mq_argmax(p->alpha, p->nw)], a[l] = p->abits[mq_argmax(p->beta, p->na)];
    }
}

/* The argmax policy w, a under every budget of target[] (e's targets otherwise), raised into the
 * budget it leaves unused (chosen: the hinge holds the EXPECTED cost, and a mixture's expectation
 * is pulled up by the wide candidates' costs, so the argmax lands well below the budget): while
 * a one-step raise fits (a layer's weight or activation width to its next higher candidate),
 * take the one the strengths favour most, the probability the layer's softmax puts above the
 * current width per unit of the primary metric's cost it adds. */
static void fill_budget(mixq_model *m, const mq_env *e, const double *target, int *w, int *a) {
    mq_env e2 = *e;
    memcpy(e2.target, target, sizeof e2.target);
    const int M = e->metric;
    for (;;) {
        int best_l = -1, best_op = 0, best_b = 0;
        double best = -1;
        for (int l = 0; l < e->L; l++) {
            const mq_mix_layer *p = mq_mix_get(m, l);
            for (int op = 0; op < 2; op++) {
                const int n = op ? p->na : p->nw, *bits = op ? p->abits : p->wbits, cur = op ? a[l] : w[l];
                const float *v = op ? p->beta : p->alpha;
                if (n < 2) continue;
                double pr[MQ_MIX_MAXB], above = 0;
                int next = 0;
                mq_mix_softmax(v, n, 1, pr);
                for (int i = 0; i < n; i++)
                    if (bits[i] > cur) {
                        above += pr[i];
                        if (!next || bits[i] < next) next = bits[i];
                    }
                if (!next) continue;
                const int ow = w[l], oa = a[l];
                (op ? a : w)[l] = next;
                const int fits = mq_env_fits(&e2, w, a);
                const double add = e->grid[l][M][w[l]][a[l]] - e->grid[l][M][ow][oa];
                w[l] = ow, a[l] = oa;
                if (!fits) continue;
                const double score = above / fmax(add / e->w8a8[M], 1e-9);
                if (score > best) best = score, best_l = l, best_op = op, best_b = next;
            }
        }
        if (best_l < 0) return;
        (best_op ? a : w)[best_l] = best_b;
    }
}

/* ------------------------------------------------------------------ one search */

typedef struct adam {
    double m[2 * MQ_MIX_MAXB], v[2 * MQ_MIX_MAXB];
} adam;

/* One search at the budgets target[] (each metric's, in its units; Inf: none) with seed `seed`:
 * the argmax policy into w[L], a[L]. `point` / `points` and the steps go to the progress. */
static mixq_status ebs_search(mq_search *s, const double *target, uint64_t seed, int point, int points, int *w,
                              int *a, int *fw, int *fa) {
    const eb_settings h = settings(s);
    const mq_env *e = &s->env;
    const int L = e->L;
    mixq_model *m = NULL;
    mixq_status st = mixq_model_clone(s->fp, &m);
    if (!st) st = mq_mix_install(m, h.nb, h.bits, h.na, h.abits);
    if (!st && mq_mix_count(m) != L)
        st = mq_err(MIXQ_ERR_STATE, "ebs: %d mixed layers for %d searched ones", mq_mix_count(m), L);
    for (int l = 0; !st && l < L; l++) {
        if (mq_mix_get(m, l)->node != e->node[l])
            st = mq_err(MIXQ_ERR_STATE, "ebs: mixed layer %d is node %d, the environment's %d", l, mq_mix_get(m, l)->node,
                        e->node[l]);
        else if (e->pin_ends && (l == 0 || l == L - 1))
            st = mq_mix_fix(m, l, 8, 8);
    }
    /* the two halves of the training split, by a seeded permutation */
    const int n_all = mixq_dataset_count(s->train);
    const int n = s->cfg->ebs_images > 0 ? MQ_MIN(s->cfg->ebs_images, n_all) : n_all, B = MQ_MIN(s->cfg->batch, n / 2);
    const size_t img = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    int *perm = mq_malloc((size_t)n_all, sizeof(int), "ebs permutation");
    const int nc = MQ_MIN(s->cfg->calib_images, n_all);
    int *lab = mq_malloc((size_t)MQ_MAX(MQ_MAX(B, nc), 1), sizeof(int), "ebs labels");
    float *x = mq_malloc((size_t)MQ_MAX(MQ_MAX(B, nc), 1) * img, sizeof(float), "ebs batch");
    int *ci = mq_malloc((size_t)MQ_MAX(nc, 1), sizeof(int), "ebs calibration indices");
    double(*da)[MQ_MIX_MAXB] = mq_calloc((size_t)L, sizeof *da, "strength gradients");
    double(*db)[MQ_MIX_MAXB] = mq_calloc((size_t)L, sizeof *db, "strength gradients");
    adam *opt = mq_calloc((size_t)L, sizeof *opt, "strength moments");
    mq_optim wopt;
    memset(&wopt, 0, sizeof wopt);
    if (!st && (!perm || !lab || !x || !ci || !da || !db || !opt)) st = MIXQ_ERR_NOMEM;
    if (!st && B < 2)
        st = mq_err(MIXQ_ERR_ARG, "ebs: the training split has %d images, too few for two halves of batches", n);
    /* the input transform the model was trained with (as the scoring's fine-tunes use) */
    mixq_preprocess pp = m->pp;
    if (!st && pp.from_data) st = mixq_dataset_preprocess(s->train, &pp);
    if (!st) st = mixq_model_set_preprocess(m, &pp);
    /* every candidate's activation clip, on calibration images spread over the split */
    for (int j = 0; !st && j < nc; j++) ci[j] = (int)((int64_t)j * n_all / nc); /* as mixq_model_calibrate */
    if (!st) st = mq_data_batch(s->train, &m->pp, ci, nc, 0, 0, x, lab);
    if (!st) st = mq_mix_calibrate(m, x, nc);
    mq_rng rng;
    mq_rng_seed(&rng, mq_seed_mix(seed, 0x45425321ull, 0));
    for (int i = 0; perm && i < n_all; i++) perm[i] = i;
    if (perm) mq_rng_shuffle(&rng, perm, n_all); /* the sample: its first n */
    const int half = n / 2, steps = half / B, total = steps * h.epochs;
    mixq_train_config tc;
    mq_search_train_cfg(s, &tc, s->cfg->lr, h.epochs);
    if (!st) st = mq_optim_init(&wopt, &tc, m);
    if (!st) st = mq_mix_set_mode(m, h.gumbel ? MQ_MIX_GUMBEL : MQ_MIX_SOFT, (float)h.tau0);
    double t0 = mq_now();
    for (int t = 0; !st && t < total; t++) {
        const int ep = t / steps, k = t % steps;
        const double tau = h.gumbel ? h.tau0 * pow(h.tau1 / h.tau0, total > 1 ? (double)t / (total - 1) : 1) : 1;
        if (h.gumbel) st = mq_mix_set_mode(m, MQ_MIX_GUMBEL, (float)tau);
        /* 1. the weights (and clips) on the first half */
        const uint64_t aug = mq_seed_mix(seed, (uint64_t)ep, 2);
        float loss = 0;
        if (!st) st = mq_data_batch(s->train, &m->pp, perm + (size_t)k * B, B, tc.augment, aug, x, lab);
        if (h.gumbel) mq_mix_sample(m, &rng);
        if (!st) st = mixq_model_forward(m, x, B, 1, NULL);
        if (!st) st = mixq_model_backward(m, lab, 0, &loss);
        if (!st && !isfinite(loss))
            st = mq_err(MIXQ_ERR_NUMERIC, "ebs: the loss became %g at step %d of %d; hint: a lower --lr", (double)loss,
                        t + 1, total);
        const float lr = mq_lr_at(&tc, ep + (double)k / steps);
        if (!st) st = mq_optim_step(&wopt, m, lr);
        for (int l = 0; !st && l < L; l++) { /* PACT clips, plain SGD at the weights' rate */
            mq_mix_layer *p = mq_mix_get(m, l);
            for (int j = 0; j < p->na; j++)
                if (p->clip[j] > 0) p->clip[j] = fmaxf(1e-3f, p->clip[j] - lr * (float)p->dclip[j]);
        }
        mq_mix_zero_grad(m);
        /* 2. the strengths on the second half, with the cost hinge */
        if (!st) st = mq_data_batch(s->train, &m->pp, perm + half + (size_t)k * B, B, 0, 0, x, lab);
        if (h.gumbel) mq_mix_sample(m, &rng);
        if (!st) st = mixq_model_forward(m, x, B, 1, NULL);
        if (!st) st = mixq_model_backward(m, lab, 0, &loss);
        if (st) break;
        memset(da, 0, sizeof *da * (size_t)L);
        memset(db, 0, sizeof *db * (size_t)L);
        double ec = 0;
        for (int q = 0; q < MQ_NMETRIC; q++) {
            if (!isfinite(target[q])) continue;
            const double E = mq_ebs_expected_cost(m, e, q, 0, NULL, NULL), T = target[q] / e->w8a8[q];
            if (q == e->metric) ec = E;
            if (E > T) mq_ebs_expected_cost(m, e, q, h.lambda, da, db);
        }
        for (int l = 0; l < L; l++) { /* Adam (PyTorch's form) on each layer's alpha and beta */
            mq_mix_layer *p = mq_mix_get(m, l);
            for (int isw = 1; isw >= 0; isw--) {
                const int nk = isw ? p->nw : p->na, o = isw ? 0 : p->nw;
                if (nk < 2) continue;
                float *v = isw ? p->alpha : p->beta;
                double pv[MQ_MIX_MAXB], g[MQ_MIX_MAXB];
                for (int c = 0; c < nk; c++)
                    pv[c] = v[c], g[c] = isw ? p->dalpha[c] + da[l][c] : p->dbeta[c] + db[l][c];
                mq_adam_d(pv, g, opt[l].m + o, opt[l].v + o, (size_t)nk, h.lr, 0.9, 0.999, 1e-8, t + 1, 0);
                for (int c = 0; c < nk; c++) v[c] = (float)pv[c];
            }
        }
        mq_mix_zero_grad(m);
        if (s->fn && (t + 1 == total || (t + 1) % 20 == 0 || t == 0)) { /* progress: phase "ebs" */
            mixq_search_progress pr;
            memset(&pr, 0, sizeof pr);
            pr.phase = "ebs";
            pr.episode = t + 1, pr.episodes = total;
            argmax_policy(m, L, w, a);
            double sw = 0, sa = 0;
            for (int l = 0; l < L; l++) sw += w[l], sa += a[l];
            pr.mean_w_bits = sw / L, pr.mean_a_bits = sa / L;
            pr.cost_ratio = mq_env_cost(e, w, a, e->metric) / e->w8a8[e->metric];
            pr.best_cost_ratio = ec;
            pr.accuracy = pr.best_accuracy = -1;
            pr.scored = point, pr.cache_hits = points; /* which search of the sweep */
            pr.budget_ratio = isfinite(target[e->metric]) ? target[e->metric] / e->w8a8[e->metric] : 0;
            pr.elapsed_s = mq_now() - s->t0;
            const double el = mq_now() - t0;
            pr.eta_s = el / (t + 1) * (total - t - 1);
            pr.agent_s = -1;
            s->fn(&pr, s->user);
        }
    }
    if (!st) { /* the argmax, walled into the budget if over it; and the same filled up to it */
        argmax_policy(m, L, w, a);
        mq_env_pin(e, w, a);
        mq_env e2 = *e;
        memcpy(e2.target, target, sizeof e2.target);
        if (!mq_env_fits(&e2, w, a)) mq_env_wall(&e2, w, a);
        memcpy(fw, w, sizeof(int) * (size_t)L);
        memcpy(fa, a, sizeof(int) * (size_t)L);
        fill_budget(m, e, target, fw, fa);
    }
    mq_optim_free(&wopt);
    free(perm), free(lab), free(x), free(ci), free(da), free(db), free(opt);
    mixq_model_free(m);
    return st;
}

/* ------------------------------------------------------------------ the sweep */

typedef struct eb_state {
    int L, n;      /* searches done */
    int *bits;     /* [n][4L]: the argmax policy's w, a, then the filled one's */
} eb_state;

static mixq_status ckpt_save(const void *p, const char *path) {
    const eb_state *g = p;
    FILE *f = mq_fopen(path, "wb");
    if (!f) return MIXQ_ERR_IO;
    const int32_t head[3] = {0x32534245, g->L, g->n}; /* "EBS2" */
    int ok = fwrite(head, sizeof head, 1, f) == 1;
    if (ok && g->n) ok = fwrite(g->bits, sizeof(int) * 4 * (size_t)g->L, (size_t)g->n, f) == (size_t)g->n;
    ok &= fflush(f) == 0;
    fclose(f);
    return ok ? MIXQ_OK : mq_err(MIXQ_ERR_IO, "%s: cannot write the ebs checkpoint; hint: is the disk full?", path);
}

static mixq_status ckpt_load(void *p, const char *path) {
    eb_state *g = p;
    FILE *f = mq_fopen(path, "rb");
    if (!f) return MIXQ_ERR_IO;
    int32_t head[3];
    mixq_status st = MIXQ_OK;
    if (fread(head, sizeof head, 1, f) != 1 || head[0] != 0x32534245 || head[1] != g->L || head[2] < 0 || head[2] > 1000)
        st = mq_err(MIXQ_ERR_FORMAT, "%s: not an ebs checkpoint of this model (%d layers); hint: start a new --out", path,
                    g->L);
    else if (head[2] && fread(g->bits, sizeof(int) * 4 * (size_t)g->L, (size_t)head[2], f) != (size_t)head[2])
        st = mq_err(MIXQ_ERR_FORMAT, "%s: truncated ebs checkpoint; hint: start a new --out", path);
    for (int i = 0; !st && i < head[2] * 4 * g->L; i++)
        if (g->bits[i] < 1 || g->bits[i] > 8) st = mq_err(MIXQ_ERR_FORMAT, "%s: width %d in the ebs checkpoint", path, g->bits[i]);
    if (!st) g->n = head[2];
    fclose(f);
    return st;
}

static mixq_status run_ebs(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    const mq_env *e = &s->env;
    const int L = e->L, M = e->metric, N = sweep_count(s);
    eb_state g = {L, 0, mq_malloc((size_t)N * 4 * L, sizeof(int), "ebs policies")};
    if (!g.bits) return MIXQ_ERR_NOMEM;
    s->agent_state = &g;
    int done = 0;
    mixq_status st = mq_search_read_state(s, &done);
    if (!st && done > g.n)
        st = mq_err(MIXQ_ERR_FORMAT, "ebs: state.json says %d searches done, the checkpoint holds %d; hint: a new --out",
                    done, g.n);
    /* the budgets of the primary metric: N evenly from the lowest to the run's */
    const double hi = e->target[M], reach = mq_env_min_cost(e, M);
    const double lo = N == 1 ? hi : c->sweep_from > 0 ? c->sweep_from * e->w8a8[M] : reach;
    if (!st && N > 1 && (lo < reach * (1 - 1e-12) || lo > hi * (1 + 1e-12)))
        st = mq_err(MIXQ_ERR_ARG, "ebs: --sweep-from %g is outside [%.3f, %.3f] (the cheapest reachable policy, the budget, "
                    "as fractions of W8A8)", c->sweep_from, reach / e->w8a8[M], hi / e->w8a8[M]);
    for (int i = 0; i < N && !st; i++) {
        int *w = g.bits + (size_t)i * 4 * L, *a = w + L, *fw = a + L, *fa = fw + L;
        if (i >= g.n) { /* search; the policies of earlier processes come from the checkpoint */
            double target[MQ_NMETRIC];
            memcpy(target, e->target, sizeof target);
            target[M] = mq_search_sweep_budget(lo, hi, i, N);
            if ((st = ebs_search(s, target, mq_seed_mix(c->seed, (uint64_t)i, 0x454253ull), i + 1, N, w, a, fw, fa)))
                break;
            g.n = i + 1;
        }
        /* both scored: the argmax (walled) and the budget-filled policy; the better one is the
         * search's (the core keeps the best fitting record) */
        for (int k = 0; k < 2 && !st; k++) {
            const int *pw = k ? fw : w, *pa = k ? fa : a;
            if (k && !memcmp(fw, w, sizeof(int) * 2 * (size_t)L)) break; /* nothing to fill */
            const mq_rec *r = NULL;
            int cached = 0;
            if ((st = mq_search_evaluate(s, pw, pa, i + 1, &r, &cached))) break;
            if (cached && r->episode < i + 1 && i + 1 > done) s->cache_hits++;
            mq_search_progress(s, "search", i + 1, N, r, cached);
        }
        if (!st) st = mq_search_save_state(s, i + 1);
    }
    s->agent_state = NULL;
    free(g.bits);
    return st;
}

const mq_agent mq_agent_ebs = {"ebs", "differentiable search with shared meta-weights and expected cost",
                               0, ebs_check, ebs_config, run_ebs, ckpt_save, ckpt_load, 0, NULL, NULL};
