/* ReLeQ behind the agent interface (search_int.h): PPO with an LSTM trunk over discrete weight
 * widths (ppo.h), the episode logic of releq.h, ReLeQ's shaped reward, weights-only policies.
 *
 * What is quantized: weights only, as ReLeQ; activations of the searched layers at
 * cfg->a_bits (default 8: the runtime needs integer activations). The first layer stays at
 * 8/8, as ReLeQ leaves it out, and so does the last when cfg->pin_ends. A budget is optional:
 * with one, a proposal over budget is walled (weights only, from the last layer to the first,
 * one step down the bit set at a time, sweeping until every budget holds) and the best record
 * is the most accurate that fits; without one the reward alone drives the bits and the best
 * record is the highest-reward one. The agent learns from the actions it drew (PPO is on-policy)
 * and the reward of the policy scored.
 *
 * The reward (unless cfg->reward is set): ReLeQ's shaped reward with x = quant_state -
 * b_min / b_max of the bit set, y = acc / acc_fp32; with reward_hw = h > 0, x = (1 - h) x +
 * h (ratio - ratio_min) on the primary metric (latency without a budget), ratio_min the cheapest
 * policy this agent can propose: the reward then sees the target's cost, not only the bits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "search/releq.h"
#include "search/search_int.h"

/* ------------------------------------------------------------------ the episode logic */

void mq_releq_free(mq_releq *r) {
    if (!r) return;
    mq_ppo_free(r->ppo);
    free(r->layer);
    free(r->feat);
    free(r->prev);
    free(r->act);
    free(r);
}

mixq_status mq_releq_create(int L, const int *searched, const int *bits, int n_bits, const double (*raw)[4],
                            const mq_ppo_config *pc, mq_releq **out) {
    *out = NULL;
    if (L < 1 || n_bits < 2 || n_bits > MQ_RELEQ_MAX_BITS)
        return mq_err(MIXQ_ERR_ARG, "releq: %d layers and %d widths in the bit set (2..%d widths)", L, n_bits,
                      MQ_RELEQ_MAX_BITS);
    for (int i = 0; i < n_bits; i++)
        if (bits[i] < 1 || bits[i] > 8 || (i && bits[i] <= bits[i - 1]))
            return mq_err(MIXQ_ERR_ARG, "releq: the bit set must be ascending widths within 1..8");
    mq_releq *r = mq_calloc(1, sizeof *r, "releq agent");
    if (!r) return MIXQ_ERR_NOMEM;
    r->L = L, r->n_bits = n_bits;
    memcpy(r->bits, bits, sizeof(int) * (size_t)n_bits);
    r->layer = mq_malloc((size_t)L, sizeof(int), "releq layers");
    r->feat = mq_calloc((size_t)L, sizeof *r->feat, "releq features");
    r->prev = mq_malloc((size_t)L, sizeof(int), "releq policy");
    r->act = mq_malloc((size_t)L, sizeof(int), "releq actions");
    if (!r->layer || !r->feat || !r->prev || !r->act) {
        mq_releq_free(r);
        return MIXQ_ERR_NOMEM;
    }
    for (int l = 0; l < L; l++) {
        if (searched[l]) r->layer[r->n_steps++] = l;
        r->prev[l] = 8;
    }
    r->prev_y = 1;
    if (!r->n_steps) {
        mq_releq_free(r);
        return mq_err(MIXQ_ERR_ARG, "releq: no layer to search (the first layer stays at 8 bits%s); hint: a model "
                      "with more layers, or --no-pin", L > 1 ? ", the last is pinned" : "");
    }
    for (int k = 0; k < 4; k++) {
        double lo = raw[0][k], hi = raw[0][k];
        for (int l = 1; l < L; l++) lo = fmin(lo, raw[l][k]), hi = fmax(hi, raw[l][k]);
        for (int l = 0; l < L; l++)
            r->feat[l][k] = k == 3 ? raw[l][k] : hi > lo ? (raw[l][k] - lo) / (hi - lo) : 0;
    }
    mq_ppo_config c = *pc;
    c.in_dim = MQ_RELEQ_STATE, c.n_act = n_bits, c.max_steps = r->n_steps;
    mixq_status st = mq_ppo_create(&c, &r->ppo);
    if (st) {
        mq_releq_free(r);
        return st;
    }
    *out = r;
    return MIXQ_OK;
}

void mq_releq_propose(mq_releq *r, int *w) {
    const int L = r->L;
    for (int l = 0; l < L; l++) w[l] = 8;
    for (int j = 0; j < r->n_steps; j++) w[r->layer[j]] = r->prev[r->layer[j]];
    mq_ppo_begin(r->ppo);
    for (int j = 0; j < r->n_steps; j++) {
        const int l = r->layer[j];
        double sum = 0, x[MQ_RELEQ_STATE];
        for (int i = 0; i < L; i++) sum += w[i];
        x[0] = (double)l / L;
        x[1] = w[l] / 8.0;
        x[2] = sum / (8.0 * L);
        x[3] = r->prev_y;
        x[4] = r->feat[l][0], x[5] = r->feat[l][1], x[6] = r->feat[l][2], x[7] = r->feat[l][3];
        const int k = mq_ppo_step(r->ppo, x, 0, NULL);
        r->act[j] = k;
        w[l] = r->bits[k < 0 ? 0 : k];
    }
}

double mq_releq_learn(mq_releq *r, const int *w, double y, double reward) {
    const double loss = mq_ppo_finish(r->ppo, reward);
    memcpy(r->prev, w, sizeof(int) * (size_t)r->L);
    r->prev_y = y;
    return loss;
}

double mq_releq_learn_all(mq_releq *r, const int *w, double y, const mq_ppo_traj *t, int k) {
    const double loss = mq_ppo_finish_all(r->ppo, t, k);
    memcpy(r->prev, w, sizeof(int) * (size_t)r->L);
    r->prev_y = y;
    return loss;
}

double mq_releq_reward(double x, double y, double margin, double a, double b) {
    if (!(y >= margin) || !(y > 0)) return -1;
    if (!(x > 0)) x = 0;
    return 2 * ((1 - pow(x, a)) * pow(y, b / y) - 0.5);
}

size_t mq_releq_extra_size(const mq_releq *r) { return sizeof(double) + sizeof(int32_t) * (size_t)r->L; }

void mq_releq_extra_pack(const mq_releq *r, void *buf) {
    unsigned char *b = buf;
    memcpy(b, &r->prev_y, sizeof(double));
    for (int l = 0; l < r->L; l++) {
        int32_t v = r->prev[l];
        memcpy(b + sizeof(double) + sizeof v * (size_t)l, &v, sizeof v);
    }
}

int mq_releq_extra_unpack(mq_releq *r, const void *buf) {
    const unsigned char *b = buf;
    double y;
    memcpy(&y, b, sizeof y);
    if (!isfinite(y)) return 0;
    for (int l = 0; l < r->L; l++) {
        int32_t v;
        memcpy(&v, b + sizeof(double) + sizeof v * (size_t)l, sizeof v);
        if (v < 1 || v > 8) return 0;
    }
    for (int l = 0; l < r->L; l++) {
        int32_t v;
        memcpy(&v, b + sizeof(double) + sizeof v * (size_t)l, sizeof v);
        r->prev[l] = v;
    }
    r->prev_y = y;
    return 1;
}

/* ------------------------------------------------------------------ the agent */

static void ppo_cfg(const mq_search *s, mq_ppo_config *pc) {
    const mixq_search_config *c = s->cfg;
    mq_ppo_config_default(pc, MQ_RELEQ_STATE, c->n_bit_set, s->env.L);
    pc->hidden = c->ppo_hidden;
    pc->temp = c->ppo_temp, pc->clip = c->ppo_clip, pc->vf_coef = c->ppo_vf, pc->ent_coef = c->ppo_ent;
    pc->lr = c->ppo_lr, pc->gamma = c->ppo_gamma, pc->lambda = c->ppo_lambda, pc->epochs = c->ppo_epochs;
    pc->seed = c->seed;
}

/* 1 for each layer the agent picks: all but the first, and but the last when pinned */
static void searched_layers(const mq_search *s, int *searched) {
    const int L = s->env.L;
    for (int l = 0; l < L; l++) searched[l] = l > 0 && !(s->cfg->pin_ends && L >= 2 && l == L - 1);
}

/* The activation bits of every layer: a_bits where searched, 8 on the pinned layers. */
static void act_bits(const mq_search *s, const int *searched, int *a) {
    for (int l = 0; l < s->env.L; l++) a[l] = searched[l] ? s->cfg->a_bits : 8;
}

static mixq_status releq_check(mq_search *s) {

    const mixq_search_config *c = s->cfg;
    int lo, hi;
    mixq_hw_bits(s->hw, &lo, &hi);
    if (c->n_bit_set < 2 || c->n_bit_set > MQ_RELEQ_MAX_BITS)
        return mq_err(MIXQ_ERR_ARG, "releq: the bit set has %d width%s; hint: --bit-set 2,3,4,5,8 (2 to %d "
                      "widths within 1..8)", c->n_bit_set, c->n_bit_set == 1 ? "" : "s", MQ_RELEQ_MAX_BITS);
    for (int i = 0; i < c->n_bit_set; i++) {
        const int b = c->bit_set[i];
        if (b < 1 || b > 8 || (i && b <= c->bit_set[i - 1]))
            return mq_err(MIXQ_ERR_ARG, "releq: bit set entry %d (%d) is not an ascending width within 1..8; hint: "
                          "--bit-set 2,3,4,5,8", i + 1, b);
        if (b < lo || b > hi)
            return mq_err(MIXQ_ERR_UNSUPPORTED, "releq: target %s runs %d..%d bits, not the bit set's %d; hint: "
                          "--bit-set with widths in %d..%d, or another --hw", mixq_hw_name(s->hw), lo, hi, b, lo, hi);
    }
    if (c->a_bits < 1 || c->a_bits > 8 || c->a_bits < lo || c->a_bits > hi)
        return mq_err(MIXQ_ERR_ARG, "releq: --a-bits %d is outside 1..8 or the target's %d..%d", c->a_bits, lo, hi);
    if (!(c->reward_margin >= 0 && c->reward_margin <= 10) || !(c->reward_a > 0 && c->reward_a <= 100) ||
        !(c->reward_b >= 0 && c->reward_b <= 100) || !(c->reward_hw >= 0 && c->reward_hw <= 1))
        return mq_err(MIXQ_ERR_ARG, "releq: reward margin=%g, a=%g, b=%g, hw=%g out of range; hint: --reward "
                      "margin=0.8,a=0.6,b=3 (margin 0..10, a in (0, 100], b 0..100, hw 0..1)", c->reward_margin,
                      c->reward_a, c->reward_b, c->reward_hw);
    mq_ppo_config pc;
    ppo_cfg(s, &pc);
    mq_ppo *p = NULL;
    mixq_status st = mq_ppo_create(&pc, &p); /* range checks, named */
    mq_ppo_free(p);
    if (st) return st;
    int *searched = mq_malloc((size_t)s->env.L, sizeof(int), "releq layers");
    if (!searched) return MIXQ_ERR_NOMEM;
    searched_layers(s, searched);
    int n = 0;
    for (int l = 0; l < s->env.L; l++) n += searched[l];
    free(searched);
    if (!n)
        return mq_err(MIXQ_ERR_ARG, "releq: the model has %d layer%s and none to search (the first stays at 8 "
                      "bits%s); hint: %s", s->env.L, s->env.L == 1 ? "" : "s", s->cfg->pin_ends ? ", the last is pinned" : "",
                      s->cfg->pin_ends && s->env.L == 2 ? "--no-pin" : "a model with more layers");
    return MIXQ_OK;
}

/* The cheapest policy the agent can propose (searched layers at the bit set's lowest width). */
static mixq_status cheapest(const mq_search *s, int **w_out) {
    const int L = s->env.L;
    int *w = mq_malloc(3 * (size_t)L, sizeof(int), "releq policy");
    if (!w) return MIXQ_ERR_NOMEM;
    int *a = w + L, *sr = w + 2 * L;
    searched_layers(s, sr);
    act_bits(s, sr, a);
    for (int l = 0; l < L; l++) w[l] = sr[l] ? s->cfg->bit_set[0] : 8;
    *w_out = w;
    return MIXQ_OK;
}

static mixq_status releq_ready(mq_search *s) {
    if (!s->env.n_budgets) return MIXQ_OK;
    int *w;
    mixq_status st = cheapest(s, &w);
    if (st) return st;
    const int L = s->env.L;
    if (!mq_env_fits(&s->env, w, w + L)) {
        int k = 0;
        for (int m = 0; m < MQ_NMETRIC; m++)
            if (isfinite(s->env.target[m]) && mq_env_cost(&s->env, w, w + L, m) > s->env.target[m] * (1 + 1e-12)) k = m;
        st = mq_err(MIXQ_ERR_ARG, "budget '%s' cannot be met by the releq agent: its cheapest policy (weights at %d "
                    "bits, activations at %d, the first%s at 8/8) costs %.3f x W8A8 in %s; hint: a larger --budget, "
                    "a lower --bit-set or --a-bits, or no --budget", s->cfg->budget, s->cfg->bit_set[0],
                    s->cfg->a_bits, s->cfg->pin_ends ? " and last layers" : " layer",
                    mq_env_cost(&s->env, w, w + L, k) / s->env.w8a8[k], mq_metric_names[k]);
    }
    free(w);
    return st;
}

static double releq_reward(const mixq_eval_record *r, void *user) {
    const mq_search *s = user;
    const mixq_search_config *c = s->cfg;
    double sum = 0;
    for (int l = 0; l < r->layers; l++) sum += r->w_bits[l];
    double x = sum / (8.0 * r->layers) - (double)c->bit_set[0] / c->bit_set[c->n_bit_set - 1];
    if (c->reward_hw > 0) {
        int *w;
        double lo = 0;
        if (!cheapest(s, &w)) {
            const int k = r->metric;
            lo = s->env.w8a8[k] > 0 ? mq_env_cost(&s->env, w, w + r->layers, k) / s->env.w8a8[k] : 0;
            free(w);
        }
        x = (1 - c->reward_hw) * x + c->reward_hw * (r->ratio[r->metric] - lo);
    }
    const double y = r->fp32_accuracy > 0 ? r->accuracy / r->fp32_accuracy : 0;
    return mq_releq_reward(x, y, c->reward_margin, c->reward_a, c->reward_b);
}

static void releq_config(const mq_search *s, char *buf, size_t n) {
    const mixq_search_config *c = s->cfg;
    mq_ppo_config pc;
    ppo_cfg(s, &pc);
    char set[64] = "";
    for (int i = 0, k = 0; i < c->n_bit_set && i < MQ_RELEQ_MAX_BITS; i++)
        k += snprintf(set + k, sizeof set - (size_t)k, "%s%d", i ? ", " : "", c->bit_set[i]);
    snprintf(buf, n,
             "\"bit_set\": [%s], \"a_bits\": %d, \"reward\": {\"margin\": %g, \"a\": %g, \"b\": %g, \"hw\": %g}, "
             "\"hidden\": %d, \"temp\": %g, \"clip\": %g, \"vf\": %g, \"ent\": %g, \"lr\": %g, \"gamma\": %g, "
             "\"lambda\": %g, \"epochs\": %d",
             set, c->a_bits, c->reward_margin, c->reward_a, c->reward_b, c->reward_hw, pc.hidden, pc.temp, pc.clip,
             pc.vf_coef, pc.ent_coef, pc.lr, pc.gamma, pc.lambda, pc.epochs);
}

static mixq_status ckpt_save(const void *state, const char *path) {
    const mq_releq *r = state;
    const size_t n = mq_releq_extra_size(r);
    void *buf = mq_malloc(n, 1, "releq checkpoint");
    if (!buf) return MIXQ_ERR_NOMEM;
    mq_releq_extra_pack(r, buf);
    mixq_status st = mq_ppo_save(r->ppo, path, buf, n);
    free(buf);
    return st;
}

static mixq_status ckpt_load(void *state, const char *path) {
    mq_releq *r = state;
    const size_t n = mq_releq_extra_size(r);
    void *buf = mq_malloc(n, 1, "releq checkpoint");
    if (!buf) return MIXQ_ERR_NOMEM;
    mixq_status st = mq_ppo_load(r->ppo, path, buf, n);
    if (!st && !mq_releq_extra_unpack(r, buf))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': corrupt releq state (bits outside 1..8 or a non-finite accuracy)", path);
    free(buf);
    return st;
}

/* Weights-only wall: from the last searched layer to the first, one step down the bit set each,
 * sweeping until every budget holds. Returns 1 if the policy fits. */
static int wall(const mq_search *s, const int *searched, int *w, const int *a) {
    const mixq_search_config *c = s->cfg;
    while (!mq_env_fits(&s->env, w, a)) {
        int moved = 0;
        for (int l = s->env.L - 1; l >= 0; l--) {
            if (!searched[l]) continue;
            int k = c->n_bit_set - 1;
            while (k > 0 && c->bit_set[k] >= w[l]) k--;
            if (c->bit_set[k] >= w[l]) continue;
            w[l] = c->bit_set[k];
            moved = 1;
            if (mq_env_fits(&s->env, w, a)) return 1;
        }
        if (!moved) return 0;
    }
    return 1;
}

static double weight_std(const mixq_model *m, int node) {
    const mq_node *nd = &m->nodes[node];
    if (nd->t_w < 0) return 0;
    const mq_tensor *t = &m->tensors[nd->t_w];
    const float *x = m->params + t->off;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < t->numel; i++) mean += x[i];
    mean /= (double)(t->numel > 0 ? t->numel : 1);
    for (int64_t i = 0; i < t->numel; i++) var += (x[i] - mean) * (x[i] - mean);
    return t->numel > 0 ? sqrt(var / (double)t->numel) : 0;
}

static mixq_status run_releq(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    const int L = s->env.L;
    mq_releq *rq = NULL;
    int *buf = mq_malloc(3 * (size_t)L, sizeof(int), "releq policy");
    double (*raw)[4] = mq_calloc((size_t)L, sizeof *raw, "releq features");
    mixq_status st = buf && raw ? MIXQ_OK : MIXQ_ERR_NOMEM;
    int *w = buf, *a = buf ? buf + L : NULL, *searched = buf ? buf + 2 * L : NULL;
    if (!st) {
        searched_layers(s, searched);
        act_bits(s, searched, a);
        for (int l = 0; l < L; l++) {
            const float *f = s->env.raw[l]; /* HAQ's raw features: c_in [1], c_out [2], stride [3], kernel [4] */
            raw[l][0] = f[2];
            raw[l][1] = f[1];
            raw[l][2] = f[3] == 0 ? 0 : f[4]; /* a linear layer (stride 0): k = 0, as ReLeQ */
            raw[l][3] = weight_std(s->fp, s->env.node[l]);
        }
        mq_ppo_config pc;
        ppo_cfg(s, &pc);
        st = mq_releq_create(L, searched, c->bit_set, c->n_bit_set, (const double(*)[4])raw, &pc, &rq);
    }
    free(raw);
    int done = 0;
    if (!st) {
        s->agent_state = rq;
        st = mq_search_read_state(s, &done);
    }
    /* rounds of K episodes (--parallel): each acts from the same agent and previous policy, the
     * round is scored at once, then one PPO update over its episodes (K = 1: ReLeQ's loop) */
    const int K = mq_search_parallel(s);
    int *wk = K > 1 ? mq_malloc((size_t)K * L, sizeof(int), "releq round") : NULL;
    mq_ppo_traj *tr = K > 1 ? mq_calloc((size_t)K, sizeof *tr, "releq round") : NULL;
    mq_cand *cand = mq_calloc((size_t)K, sizeof *cand, "releq round");
    int *was = mq_calloc((size_t)K, sizeof(int), "releq round");
    if (!st && (!cand || !was || (K > 1 && (!wk || !tr)))) st = MIXQ_ERR_NOMEM;
    for (int j = 0; j < K && K > 1 && !st; j++) st = mq_ppo_traj_alloc(rq->ppo, &tr[j]);
    for (int ep0 = done; !st && ep0 < c->episodes; ep0 += K) {
        const int k = MQ_MIN(K, c->episodes - ep0);
        for (int j = 0; j < k; j++) {
            int *wj = K > 1 ? wk + (size_t)j * L : w;
            mq_releq_propose(rq, wj);
            if (K > 1) mq_ppo_take(rq->ppo, &tr[j]);
            if (s->env.n_budgets) wall(s, searched, wj, a);
            const mq_rec *hit = mq_search_find(s, wj, a);
            was[j] = hit && hit->episode < ep0 + j + 1;
            cand[j] = (mq_cand){wj, a, NULL, ep0 + j + 1, NULL, 0};
        }
        if ((st = mq_search_evaluate_batch(s, cand, k))) break;
        double loss = 0, y = 0;
        for (int j = 0; j < k; j++) {
            const mq_rec *r = cand[j].rec;
            cand[j].cached = was[j] || r->episode < ep0 + j + 1;
            if (cand[j].cached) s->cache_hits++;
            y = s->acc0 > 0 ? r->acc / s->acc0 : 0;
            if (K > 1) tr[j].reward = r->reward;
        }
        const mq_rec *last = cand[k - 1].rec;
        if (K > 1) loss = mq_releq_learn_all(rq, cand[k - 1].w, y, tr, k);
        else loss = mq_releq_learn(rq, w, y, last->reward);
        if (!isfinite(loss)) {
            st = mq_err(MIXQ_ERR_NUMERIC, "releq: the PPO loss is not finite at episode %d (reward %g); hint: a "
                        "smaller --ppo lr", ep0 + k, last->reward);
            break;
        }
        if ((st = mq_search_save_state(s, ep0 + k))) break;
        for (int j = 0; j < k; j++)
            mq_search_progress(s, "search", ep0 + j + 1, c->episodes, cand[j].rec, cand[j].cached);
    }
    for (int j = 0; j < K && tr; j++) mq_ppo_traj_free(&tr[j]);
    free(tr);
    free(wk);
    free(cand);
    free(was);
    s->agent_state = NULL;
    mq_releq_free(rq);
    free(buf);
    return st;
}

const mq_agent mq_agent_releq = {"releq", "ReLeQ's PPO (LSTM trunk) over a set of weight widths, shaped reward", 1,
                                 releq_check, releq_config, run_releq, ckpt_save, ckpt_load, 1, releq_ready,
                                 releq_reward};
