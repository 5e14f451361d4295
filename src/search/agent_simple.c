/* The non-learning baselines behind the agent interface (search_int.h): uniform (every uniform
 * (w, a) pair that fits) and greedy (per-layer sensitivities, then bits lowered where the loss
 * per unit of cost saved is smallest). Neither keeps state beyond the cache: a resumed run
 * re-walks its candidates, which come back from the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "search/search_int.h"

/* Uniform: for each weight width, the widest activation width that fits (all layers alike, pins
 * applied); the best is kept. */
static mixq_status run_uniform(mq_search *s) {
    const int L = s->env.L;
    int *w = mq_malloc(2 * (size_t)L, sizeof(int), "policy"), *a = w ? w + L : NULL;
    if (!w) return MIXQ_ERR_NOMEM;
    mixq_status st = MIXQ_OK;
    int ep = 0, total = 0;
    for (int pass = 0; pass < 2 && !st; pass++)
        for (int wb = s->cfg->b_max; wb >= s->cfg->b_min && !st; wb--)
            for (int ab = s->cfg->b_max; ab >= s->cfg->b_min && !st; ab--) {
                for (int l = 0; l < L; l++) w[l] = wb, a[l] = ab;
                mq_env_pin(&s->env, w, a);
                if (!mq_env_fits(&s->env, w, a)) continue;
                if (ab < s->cfg->b_max) { /* only the widest activation width that fits */
                    for (int l = 0; l < L; l++) a[l] = ab + 1;
                    mq_env_pin(&s->env, w, a);
                    int wider_fits = mq_env_fits(&s->env, w, a);
                    for (int l = 0; l < L; l++) a[l] = ab;
                    mq_env_pin(&s->env, w, a);
                    if (wider_fits) continue;
                }
                if (pass == 0) {
                    total++;
                    continue;
                }
                const mq_rec *r;
                int cached = 0;
                if ((st = mq_search_evaluate(s, w, a, ++ep, &r, &cached))) break;
                if ((st = mq_search_save_state(s, ep))) break;
                mq_search_progress(s, "search", ep, total, r, cached);
            }
    free(w);
    if (!st && total == 0)
        st = mq_err(MIXQ_ERR_ARG, "no uniform policy in %d..%d bits fits the budget", s->cfg->b_min, s->cfg->b_max);
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
    int ep = 0, total = 2 * L + 1;
    for (int k = 0; !st && k < 2 * L; k++) {
        int l = k / 2;
        for (int i = 0; i < L; i++) w[i] = a[i] = hi;
        if (k % 2 == 0) w[l] = lo;
        else a[l] = lo;
        mq_env_pin(&s->env, w, a);
        const mq_rec *r;
        int cached = 0;
        if ((st = mq_search_evaluate(s, w, a, ++ep, &r, &cached))) break;
        sens[k] = s->acc0 - r->acc; /* the layer's loss at b_min */
        if ((st = mq_search_save_state(s, ep))) break;
        mq_search_progress(s, "search", ep, total, r, cached);
    }
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
