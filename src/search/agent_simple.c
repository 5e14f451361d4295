/* The non-learning baselines behind the agent interface (search_int.h): uniform (every uniform
 * (w, a) pair that fits) and greedy (per-layer sensitivities, then bits lowered where the loss
 * per unit of cost saved is smallest). Neither keeps state beyond the cache: a resumed run
 * re-walks its candidates, which come back from the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "search/search_int.h"

/* Score cands[0..n) in rounds of mq_search_parallel, episodes first_ep + 1.. in order; state
 * after each round, progress per candidate out of `total`. A round's rec pointers hold until the
 * next round adds records: look records up again by their bits afterwards. */
static mixq_status rounds(mq_search *s, mq_cand *cands, int n, int first_ep, int total) {
    const int K = mq_search_parallel(s);
    mixq_status st = MIXQ_OK;
    for (int i = 0; i < n && !st; i += K) {
        const int k = MQ_MIN(K, n - i);
        for (int j = 0; j < k; j++) cands[i + j].episode = first_ep + i + j + 1;
        if ((st = mq_search_evaluate_batch(s, cands + i, k))) break;
        if ((st = mq_search_save_state(s, first_ep + i + k))) break;
        for (int j = 0; j < k; j++) mq_search_progress(s, "search", first_ep + i + j + 1, total, cands[i + j].rec, cands[i + j].cached);
    }
    return st;
}

/* Uniform: for each weight width, the widest activation width that fits (all layers alike, pins
 * applied); the best is kept. */
static mixq_status run_uniform(mq_search *s) {
    const int L = s->env.L, nb = s->cfg->b_max - s->cfg->b_min + 1;
    int *w = mq_malloc(2 * (size_t)L * nb * nb, sizeof(int), "policies");
    mq_cand *cands = mq_calloc((size_t)nb * nb, sizeof *cands, "candidates");
    if (!w || !cands) {
        free(w), free(cands);
        return MIXQ_ERR_NOMEM;
    }
    int total = 0;
    for (int wb = s->cfg->b_max; wb >= s->cfg->b_min; wb--)
        for (int ab = s->cfg->b_max; ab >= s->cfg->b_min; ab--) {
            int *wt = w + (size_t)total * 2 * L, *at = wt + L;
            for (int l = 0; l < L; l++) wt[l] = wb, at[l] = ab;
            mq_env_pin(&s->env, wt, at);
            if (!mq_env_fits(&s->env, wt, at)) continue;
            if (ab < s->cfg->b_max) { /* only the widest activation width that fits */
                for (int l = 0; l < L; l++) at[l] = ab + 1;
                mq_env_pin(&s->env, wt, at);
                int wider_fits = mq_env_fits(&s->env, wt, at);
                for (int l = 0; l < L; l++) at[l] = ab;
                mq_env_pin(&s->env, wt, at);
                if (wider_fits) continue;
            }
            cands[total] = (mq_cand){wt, at, NULL, 0, NULL, 0};
            total++;
        }
    mixq_status st = total ? rounds(s, cands, total, 0, total)
                           : mq_err(MIXQ_ERR_ARG, "no uniform policy in %d..%d bits fits the budget", s->cfg->b_min,
                                    s->cfg->b_max);
    free(w);
    free(cands);
    return st;
}

/* Cost saved on the over-budget metrics (each relative to W8A8's) by lowering bit b of layer l. */
static double saving(const mq_env *e, int *w, int *a, int *b) {
    double before[MQ_NMETRIC], total = 0;
    int over[MQ_NMETRIC];
    for (int k = 0; k < MQ_NMETRIC; k++) {
        before[k] = mq_env_cost(e, w, a, k);
        over[k] = isfinite(e->target[k]) && before[k] > e->target[k] * (1 + 1e-12);
    }
    (*b)--;
    for (int k = 0; k < MQ_NMETRIC; k++)
        if (over[k]) total += (before[k] - mq_env_cost(e, w, a, k)) / e->w8a8[k];
    (*b)++;
    return total;
}

/* Greedy: score each layer's sensitivity (that layer alone at b_min, the rest at b_max), then
 * lower bits one step at a time on the layer with the smallest accuracy loss per unit of cost
 * saved, until every budget fits; score the result. */
static mixq_status run_greedy(mq_search *s) {
    const int L = s->env.L;
    const int lo = s->cfg->b_min, hi = s->cfg->b_max;
    int *w = mq_malloc(2 * (size_t)L, sizeof(int), "policy"), *a = w ? w + L : NULL;
    double *sens = mq_calloc(2 * (size_t)L, sizeof(double), "sensitivities");
    mixq_status st = w && sens ? MIXQ_OK : MIXQ_ERR_NOMEM;
    int ep = 2 * L, total = 2 * L + 1;
    int *pw = st ? NULL : mq_malloc(4 * (size_t)L * L, sizeof(int), "sensitivity policies");
    mq_cand *cands = st ? NULL : mq_calloc(2 * (size_t)L, sizeof *cands, "candidates");
    if (!st && (!pw || !cands)) st = MIXQ_ERR_NOMEM;
    for (int k = 0; !st && k < 2 * L; k++) { /* layer k / 2 alone at b_min: weights, then activations */
        int l = k / 2, *wk = pw + (size_t)k * 2 * L, *ak = wk + L;
        for (int i = 0; i < L; i++) wk[i] = ak[i] = hi;
        if (k % 2 == 0) wk[l] = lo;
        else ak[l] = lo;
        mq_env_pin(&s->env, wk, ak);
        cands[k] = (mq_cand){wk, ak, NULL, 0, NULL, 0};
    }
    if (!st) st = rounds(s, cands, 2 * L, 0, total);
    for (int k = 0; !st && k < 2 * L; k++) { /* the layer's loss at b_min (records by bits: a later round's
                                                  record may have moved an earlier rec pointer) */
        const mq_rec *r = mq_search_find(s, cands[k].w, cands[k].a);
        if (!r) st = mq_err(MIXQ_ERR_STATE, "greedy: candidate %d has no record after scoring", k + 1);
        else sens[k] = s->acc0 - r->acc;
    }
    free(pw);
    free(cands);
    if (!st) {
        for (int i = 0; i < L; i++) w[i] = a[i] = hi;
        mq_env_pin(&s->env, w, a);
        while (!mq_env_fits(&s->env, w, a)) {
            int bk = -1;
            double best = INFINITY;
            for (int k = 0; k < 2 * L; k++) {
                int l = k / 2, *b = k % 2 ? &a[l] : &w[l];
                if (*b <= lo || (s->env.pin_ends && (l == 0 || l == L - 1))) continue;
                double saved = saving(&s->env, w, a, b);
                if (saved <= 0) continue;
                /* loss per bit step assumed linear from b_max down to b_min */
                double loss = fmax(sens[k], 0) / (hi - lo) + 1e-9;
                if (loss / saved < best) best = loss / saved, bk = k;
            }
            if (bk < 0) break;
            if (bk % 2) a[bk / 2]--;
            else w[bk / 2]--;
        }
        const mq_rec *r;
        int cached = 0;
        st = mq_search_evaluate(s, w, a, ++ep, &r, &cached);
        if (!st) st = mq_search_save_state(s, ep);
        if (!st) mq_search_progress(s, "search", ep, total, r, cached);
    }
    free(w);
    free(sens);
    return st;
}

const mq_agent mq_agent_uniform = {"uniform", "the best uniform (w, a) that fits", 0, NULL, NULL,
                                   run_uniform, NULL, NULL, 0, NULL, NULL};
const mq_agent mq_agent_greedy = {"greedy", "per-layer sensitivities, then the cheapest losses first", 0, NULL,
                                  NULL, run_greedy, NULL, NULL, 0, NULL, NULL};
