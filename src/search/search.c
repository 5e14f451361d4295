/* The search driver: the agent table, scoring with a persistent hashed cache, run directories
 * with kill-safe resume, the Pareto set and the final fine-tune. The agents live in their own
 * files (agent_haq.c: haq and random; agent_simple.c: uniform and greedy; agent_hawq.c;
 * agent_releq.c) behind the interface of search_int.h.
 *
 * Run directory layout (all text but the agent checkpoint):
 *   config.json      the resolved configuration, the agent's settings included; --resume refuses
 *                    a different one
 *   evals.jsonl      one line per scored policy (bits, accuracy, cost ratios, reward); the cache
 *   state.json       the last finished episode, the cache hits so far and the checkpoint that
 *                    belongs to them
 *   agent-<e>.ckpt   the agent after episode e (agents with state), written before state.json
 *                    points at it
 *   best_policy.json the best policy so far (a mixq policy file)
 *   pareto.json/.csv the candidates no other candidate beats on accuracy and that metric
 *   best.mixq        the best policy after the final fine-tune; summary.json
 * Every scored policy is appended and flushed before the agent learns from it, and the agent's
 * state only advances through state.json, so a SIGKILL anywhere loses at most the work of the
 * episode in flight, and a resumed run replays it from the cache to the same result.
 *
 * A candidate's score is a function of (model, policy, seed, settings) alone: calibration-only
 * scoring re-quantizes one model (mixq_model_quantize's fast path is exact), fine-tuned scoring
 * clones the float model for each candidate. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "hw/hw.h"
#include "report/report.h"
#include "search/mpi.h"
#include "search/search_int.h"

/* The agents, in the order help texts list them. A new agent adds its entry here. */
static const mq_agent *const agents[] = {&mq_agent_haq, &mq_agent_random, &mq_agent_uniform,
                                         &mq_agent_greedy, &mq_agent_hawq, &mq_agent_releq,
                                         &mq_agent_autoq, &mq_agent_ebs};

void mixq_search_config_default(mixq_search_config *c) {
    memset(c, 0, sizeof *c);
    c->agent = "haq";
    c->hw = "bitfusion";
    c->budget = "latency=0.5";
    c->max_drop = 1.0;
    c->episodes = 60;
    c->warmup = 20;
    c->b_min = 2, c->b_max = 8;
    c->pin_ends = 1;
    c->calib_images = 512;
    c->finetune_images = 0;
    c->eval_images = 2000;
    c->val_images = 5000;
    c->batch = 128;
    c->lr = 0.01f;
    c->final_epochs = 1;
    c->final_lr = 0.01f;
    c->distill_temperature = 1.0f;
    c->seed = 1;
    c->rl_sigma_min = -1;
    c->rl_penalty = -1;
    c->rl_redraw = -1;
    c->rl_store_post = -1;
    c->report_every = 10;
    c->hessian_images = 256;
    c->hessian_probes = 100;
    static const int releq_bits[] = {2, 3, 4, 5, 8};
    memcpy(c->bit_set, releq_bits, sizeof releq_bits);
    c->n_bit_set = 5;
    c->a_bits = 8;
    c->reward_margin = 0.8, c->reward_a = 0.6, c->reward_b = 3, c->reward_hw = 0;
    c->ppo_hidden = 128, c->ppo_epochs = 1;
    c->ppo_temp = 0.5, c->ppo_clip = 0.3, c->ppo_vf = 1, c->ppo_ent = 0.01, c->ppo_lr = 1e-4;
    c->ppo_gamma = 0.9, c->ppo_lambda = 1;
    c->autoq_psi_acc = c->autoq_psi_lat = c->autoq_psi_e = -1;
    c->autoq_zeta0 = c->autoq_zeta1 = -1;
    c->autoq_llc_updates = -1, c->autoq_relabel = -1;
}

static double haq_reward(const mixq_eval_record *r, void *user) {
    (void)user;
    return 0.1 * (r->accuracy - r->fp32_accuracy);
}

/* accuracy-guaranteed: cheaper is better as long as the drop stays within max_drop */
static double guarantee_reward(const mixq_eval_record *r, void *user) {
    double drop = r->fp32_accuracy - r->accuracy, allowed = *(const double *)user;
    return drop <= allowed ? 1.0 - r->ratio[r->metric] : -1.0 - 0.1 * (drop - allowed);
}

/* No budget: NULL, "" or "none". */
static int no_budget(const mixq_search_config *c) {
    return !c->budget || !*c->budget || !strcmp(c->budget, "none");
}

/* ------------------------------------------------------------------ the cache */

/* Layer-wise records hash their w and a; per-kernel ones every kernel's bits and a, from another
 * basis. */
static uint64_t bits_hash(const mq_search *s, const int *w, const int *a, const int *kb) {
    uint64_t h = kb ? mq_fnv1a(kb, sizeof(int) * (size_t)s->env.koff[s->env.L], 0x84222325cbf29ce4ull)
                    : mq_fnv1a(w, sizeof(int) * (size_t)s->env.L, MQ_FNV_BASIS);
    return mq_fnv1a(a, sizeof(int) * (size_t)s->env.L, h);
}

/* Per-kernel bits kb: w[l] = layer l's kernels' mean width, rounded to nearest (half up), for
 * the records' "w" and the Pareto files; returns 1 if every layer's kernels agree (then w is
 * exactly the layer-wise policy). */
static int kernel_layers(const mq_env *e, const int *kb, int *w) {
    int uniform = 1;
    for (int l = 0; l < e->L; l++) {
        const int *b = kb + e->koff[l], K = e->koff[l + 1] - e->koff[l];
        long sum = 0;
        for (int i = 0; i < K; i++) sum += b[i];
        w[l] = (int)((2 * sum + K) / (2 * K));
        uniform &= mq_env_kernels_agree(e, kb, l);
    }
    return uniform;
}

static void rec_free(mq_search *s) {
    for (int i = 0; i < s->n_ev; i++) free(s->ev[i].w);
    free(s->ev);
    free(s->heads);
    s->ev = NULL, s->heads = NULL;
    s->n_ev = s->cap_ev = s->n_heads = 0;
}

static const mq_rec *find_rec(const mq_search *s, const int *w, const int *a, const int *kb) {
    if (!s->n_heads) return NULL;
    const uint64_t h = bits_hash(s, w, a, kb);
    const size_t L = (size_t)s->env.L, NK = (size_t)s->env.koff[s->env.L];
    for (int i = s->heads[h & (uint64_t)(s->n_heads - 1)]; i >= 0; i = s->ev[i].next) {
        const mq_rec *r = &s->ev[i];
        if (r->hash != h || !r->kb != !kb || memcmp(r->a, a, sizeof(int) * L)) continue;
        if (kb ? !memcmp(r->kb, kb, sizeof(int) * NK) : !memcmp(r->w, w, sizeof(int) * L)) return r;
    }
    return NULL;
}

const mq_rec *mq_search_find(const mq_search *s, const int *w, const int *a) { return find_rec(s, w, a, NULL); }

/* Buckets for the records: at least twice as many as records, rebuilt as they grow. */
static mixq_status rehash(mq_search *s, int need) {
    if (s->n_heads >= 2 * need) return MIXQ_OK;
    int n = s->n_heads ? s->n_heads : 256;
    while (n < 2 * need) n *= 2;
    int *h = mq_malloc((size_t)n, sizeof(int), "evaluation cache");
    if (!h) return MIXQ_ERR_NOMEM;
    for (int i = 0; i < n; i++) h[i] = -1;
    for (int i = 0; i < s->n_ev; i++) { /* in order: each bucket lists the newest first */
        size_t b = (size_t)(s->ev[i].hash & (uint64_t)(n - 1));
        s->ev[i].next = h[b];
        h[b] = i;
    }
    free(s->heads);
    s->heads = h, s->n_heads = n;
    return MIXQ_OK;
}

static void fill_record(const mq_search *s, const mq_rec *r, mixq_eval_record *e) {
    memset(e, 0, sizeof *e);
    e->layers = s->env.L;
    e->w_bits = r->w, e->a_bits = r->a;
    e->accuracy = r->acc, e->fp32_accuracy = s->acc0;
    for (int k = 0; k < MQ_NMETRIC; k++) {
        e->ratio[k] = r->ratio[k];
        e->budget_ratio[k] = mq_env_budget_ratio(&s->env, k);
    }
    e->metric = s->env.metric;
    e->fits = r->fits;
    e->episode = r->episode;
}

/* A new record of bits w, a (and per-kernel kb, or NULL) scored acc by episode `episode`. */
static mixq_status rec_add(mq_search *s, const int *w, const int *a, const int *kb, double acc, int episode,
                           mq_rec **out) {
    if (s->n_ev == s->cap_ev) {
        int nc = s->cap_ev ? s->cap_ev * 2 : 64;
        mq_rec *ne = mq_realloc(s->ev, (size_t)nc, sizeof *ne, "search records");
        if (!ne) return mq_err(MIXQ_ERR_NOMEM, "out of memory for the evaluation cache");
        s->ev = ne, s->cap_ev = nc;
    }
    mixq_status st = rehash(s, s->n_ev + 1);
    if (st) return st;
    mq_rec *r = &s->ev[s->n_ev];
    memset(r, 0, sizeof *r);
    const size_t NK = kb ? (size_t)s->env.koff[s->env.L] : 0;
    double cost[MQ_NMETRIC];
    if (kb) {
        if ((st = mq_env_cost_kernels(&s->env, kb, a, cost))) return st;
    } else {
        for (int k = 0; k < MQ_NMETRIC; k++) cost[k] = mq_env_cost(&s->env, w, a, k);
    }
    r->w = mq_malloc(2 * (size_t)s->env.L + NK, sizeof(int), "cached policy");
    if (!r->w) return MIXQ_ERR_NOMEM;
    r->a = r->w + s->env.L;
    r->kb = kb ? r->w + 2 * s->env.L : NULL;
    memcpy(r->w, w, sizeof(int) * (size_t)s->env.L);
    memcpy(r->a, a, sizeof(int) * (size_t)s->env.L);
    if (kb) memcpy(r->kb, kb, sizeof(int) * NK);
    r->acc = acc;
    r->episode = episode;
    for (int k = 0; k < MQ_NMETRIC; k++) r->ratio[k] = s->env.w8a8[k] > 0 ? cost[k] / s->env.w8a8[k] : 0;
    r->fits = mq_env_fits_costs(&s->env, cost);
    r->hash = bits_hash(s, w, a, kb);
    size_t b = (size_t)(r->hash & (uint64_t)(s->n_heads - 1));
    r->next = s->heads[b];
    s->heads[b] = s->n_ev;
    mixq_eval_record e;
    fill_record(s, r, &e);
    r->reward = s->reward(&e, s->reward_user);
    s->n_ev++;
    *out = r;
    return MIXQ_OK;
}

/* ------------------------------------------------------------------ policies and scoring */

/* Bits w, a as a policy, built as data: every layer named, per-channel scales, automatic clips;
 * with kb, a layer whose kernels differ gets their widths (granularity "kernel"). */
static mixq_status build_policy(const mq_search *s, const int *w, const int *a, const int *kb, mixq_policy **out) {
    mixq_status st = mixq_policy_create(8, 8, out);
    for (int l = 0; !st && l < s->env.L; l++) {
        const int *b = kb ? kb + s->env.koff[l] : NULL, K = s->env.koff[l + 1] - s->env.koff[l];
        st = !b || mq_env_kernels_agree(&s->env, kb, l) ? mixq_policy_set_layer(*out, s->env.name[l], b ? b[0] : w[l], a[l])
                                                        : mixq_policy_set_kernels(*out, s->env.name[l], b, K, a[l]);
    }
    if (st) {
        mixq_policy_free(*out);
        *out = NULL;
    }
    return st;
}

static mixq_status quantize_bits(const mq_search *s, mixq_model *m, const int *w, const int *a, const int *kb) {
    mixq_policy *p = NULL;
    mixq_status st = build_policy(s, w, a, kb, &p);
    if (!st) st = mixq_model_quantize(m, p);
    mixq_policy_free(p);
    return st;
}

double mq_search_sweep_budget(double lo, double hi, int i, int n) {
    return n == 1 || i == n - 1 ? hi : lo + (hi - lo) * i / (n - 1);
}

void mq_search_train_cfg(const mq_search *s, mixq_train_config *tc, float lr, int epochs) {
    mixq_train_config_default(tc);
    tc->epochs = epochs;
    tc->lr = lr;
    tc->batch = s->cfg->batch;
    tc->seed = s->cfg->seed;
    if (s->cfg->distill > 0) { /* the float model teaches (it runs in inference mode: unchanged) */
        tc->teacher = s->fp;
        tc->distill_weight = s->cfg->distill;
        tc->distill_temperature = s->cfg->distill_temperature;
    }
}

/* Validation accuracy (%) of bits w, a: quantize, calibrate, fine-tune the subset, evaluate. A
 * function of the bits and the run's settings alone (fixed seeds, deterministic engine, exact
 * re-quantization, a fresh clone for every fine-tune). */
static mixq_status score(mq_search *s, const int *w, const int *a, const int *kb, double *acc) {
    mixq_status st;
    float v = 0;
    if (s->cfg->finetune_images > 0) {
        mixq_model *m = NULL; /* fine-tuning changes the weights: a fresh copy of the float model */
        st = mixq_model_clone(s->fp, &m);
        if (!st) st = quantize_bits(s, m, w, a, kb);
        if (!st) st = mixq_model_calibrate(m, s->train, s->cfg->calib_images);
        mixq_train_config tc;
        mq_search_train_cfg(s, &tc, s->cfg->lr, 1);
        if (!st) st = mixq_train(m, s->ft, NULL, &tc, NULL, NULL);
        if (!st) st = mixq_evaluate(m, s->eval, 256, &v, NULL);
        mixq_model_free(m);
    } else {
        st = quantize_bits(s, s->m, w, a, kb);
        if (!st) st = mixq_model_calibrate_new(s->m, s->train, s->cfg->calib_images);
        if (!st) st = mixq_evaluate(s->m, s->eval, 256, &v, NULL);
    }
    *acc = 100.0 * (double)v;
    return st;
}

static void json_ints(FILE *f, const int *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", v[i]);
    fputc(']', f);
}

static mixq_status append_eval(mq_search *s, const mq_rec *r) {
    FILE *f = s->evf;
    fprintf(f, "{\"episode\": %d, \"w\": ", r->episode);
    json_ints(f, r->w, s->env.L);
    fprintf(f, ", \"a\": ");
    json_ints(f, r->a, s->env.L);
    if (r->kb) { /* per-kernel: every layer's kernel widths ("w" holds their rounded means) */
        fprintf(f, ", \"kw\": [");
        for (int l = 0; l < s->env.L; l++) {
            if (l) fputc(',', f);
            json_ints(f, r->kb + s->env.koff[l], s->env.koff[l + 1] - s->env.koff[l]);
        }
        fputc(']', f);
    }
    fprintf(f, ", \"acc\": %.17g, \"reward\": %.17g, \"fits\": %s", r->acc, r->reward, r->fits ? "true" : "false");
    for (int k = 0; k < MQ_NMETRIC; k++) fprintf(f, ", \"%s_ratio\": %.17g", mq_metric_names[k], r->ratio[k]);
    fprintf(f, "}\n");
    if (fflush(f) || ferror(f) || fsync(fileno(f)))
        return mq_err(MIXQ_ERR_IO, "%s/evals.jsonl: write failed (%s)", s->dir, strerror(errno));
    return MIXQ_OK;
}

static mixq_status score_cb(void *user, const int *w, const int *a, const int *kb, double *acc) {
    return score(user, w, a, kb, acc);
}

/* Score tasks over the ranks (or here); a lost worker is counted for the summary. */
static mixq_status score_tasks(mq_search *s, mq_task *t, int n) {
    int lost = 0;
    mixq_status st = mq_mpi_score(t, n, s->env.L, s->env.koff[s->env.L], s->cfg->worker_timeout, score_cb, s, &lost);
    s->workers_lost += lost;
    return st;
}

int mq_search_parallel(const mq_search *s) {
    return s->cfg->parallel > 0 ? s->cfg->parallel : mixq_mpi_size();
}

mixq_status mq_search_evaluate_batch(mq_search *s, mq_cand *c, int n) {
    if (n < 1) return MIXQ_OK;
    const int L = s->env.L;
    int *wk = mq_malloc((size_t)n * L, sizeof(int), "batch policies"); /* per-kernel: the layer means */
    int *idx = mq_malloc(3 * (size_t)n, sizeof(int), "batch records"), *dup = idx ? idx + n : NULL;
    int *task_of = idx ? idx + 2 * n : NULL;
    mq_task *t = mq_calloc((size_t)n, sizeof *t, "batch tasks");
    const int **wv = mq_malloc(2 * (size_t)n, sizeof *wv, "batch policies"), **kv = wv ? wv + n : NULL;
    mixq_status st = wk && idx && t && wv ? MIXQ_OK : MIXQ_ERR_NOMEM;
    int m = 0;
    for (int i = 0; i < n && !st; i++) {
        wv[i] = c[i].w, kv[i] = c[i].kb;
        if (c[i].kb && kernel_layers(&s->env, c[i].kb, wk + (size_t)i * L)) /* one width per layer */
            wv[i] = wk + (size_t)i * L, kv[i] = NULL;
        else if (c[i].kb)
            wv[i] = wk + (size_t)i * L;
        const mq_rec *hit = find_rec(s, wv[i], c[i].a, kv[i]);
        idx[i] = hit ? (int)(hit - s->ev) : -1, dup[i] = -1, task_of[i] = -1;
        for (int j = 0; j < i && !hit && dup[i] < 0; j++) /* the same candidate earlier in the batch */
            if (idx[j] < 0 && dup[j] < 0 && !kv[i] == !kv[j] && !memcmp(c[i].a, c[j].a, sizeof(int) * (size_t)L) &&
                (kv[i] ? !memcmp(kv[i], kv[j], sizeof(int) * (size_t)s->env.koff[L])
                       : !memcmp(wv[i], wv[j], sizeof(int) * (size_t)L)))
                dup[i] = j;
        if (!hit && dup[i] < 0) t[m].w = wv[i], t[m].a = c[i].a, t[m].kb = kv[i], task_of[i] = m++;
    }
    const double t_score = mq_now();
    if (!st) st = score_tasks(s, t, m);
    s->score_s += mq_now() - t_score;
    /* records in proposal order, whatever order the scores came in */
    for (int i = 0; i < n && !st; i++) {
        c[i].cached = idx[i] >= 0 || dup[i] >= 0;
        if (task_of[i] < 0) continue;
        mq_rec *r;
        if ((st = rec_add(s, wv[i], c[i].a, kv[i], t[task_of[i]].acc, c[i].episode, &r))) break;
        idx[i] = (int)(r - s->ev);
        st = append_eval(s, r);
    }
    for (int i = 0; i < n && !st; i++) c[i].rec = &s->ev[dup[i] >= 0 ? idx[dup[i]] : idx[i]];
    free(wk), free(idx), free(t), free(wv);
    return st;
}

/* One candidate: a batch of one. */
static mixq_status evaluate_one(mq_search *s, const int *w, const int *a, const int *kb, int episode,
                                const mq_rec **out, int *cached) {
    mq_cand c = {w, a, kb, episode, NULL, 0};
    mixq_status st = mq_search_evaluate_batch(s, &c, 1);
    if (st) return st;
    *out = c.rec;
    if (cached) *cached = c.cached;
    return MIXQ_OK;
}

mixq_status mq_search_evaluate(mq_search *s, const int *w, const int *a, int episode, const mq_rec **out,
                               int *cached) {
    return evaluate_one(s, w, a, NULL, episode, out, cached);
}

/* Per-kernel bits: a policy whose layers' kernels all agree is the layer-wise record. */
static mixq_status kernel_w(const mq_search *s, const int *kb, int **w, int *uniform) {
    *w = mq_malloc((size_t)s->env.L, sizeof(int), "per-kernel policy");
    if (!*w) return MIXQ_ERR_NOMEM;
    *uniform = kernel_layers(&s->env, kb, *w);
    return MIXQ_OK;
}

const mq_rec *mq_search_find_kernels(const mq_search *s, const int *kb, const int *a) {
    int *w, uniform;
    if (kernel_w(s, kb, &w, &uniform)) {
        mixq_clear_error();
        return NULL;
    }
    const mq_rec *r = find_rec(s, w, a, uniform ? NULL : kb);
    free(w);
    return r;
}

mixq_status mq_search_evaluate_kernels(mq_search *s, const int *kb, const int *a, int episode, const mq_rec **out,
                                       int *cached) {
    return evaluate_one(s, NULL, a, kb, episode, out, cached); /* the batch reduces kb to w */
}

/* The best record: resource mode, most accurate that fits (then cheaper, then earlier);
 * accuracy mode, cheapest on the primary metric within the allowed drop and every budget
 * given (then more accurate); resource mode without a budget (an agent whose budget is
 * optional), the highest reward (then earlier). */
static const mq_rec *best_rec(const mq_search *s) {
    const mq_rec *b = NULL;
    int M = s->env.metric;
    for (int i = 0; i < s->n_ev; i++) {
        const mq_rec *r = &s->ev[i];
        if (!r->fits) continue;
        if (!s->cfg->accuracy_mode && !s->env.n_budgets) {
            if (!b || r->reward > b->reward) b = r;
        } else if (s->cfg->accuracy_mode) {
            if (s->acc0 - r->acc > s->cfg->max_drop) continue;
            if (!b || r->ratio[M] < b->ratio[M] || (r->ratio[M] == b->ratio[M] && r->acc > b->acc)) b = r;
        } else {
            if (!b || r->acc > b->acc || (r->acc == b->acc && r->ratio[M] < b->ratio[M])) b = r;
        }
    }
    return b;
}

static mixq_search_progress progress_fill(const mq_search *s, const char *phase, int ep, int eps,
                                          const mq_rec *r, int cached) {
    mixq_search_progress p;
    memset(&p, 0, sizeof p);
    p.phase = phase, p.episode = ep, p.episodes = eps, p.cached = cached;
    p.budget_ratio = mq_env_budget_ratio(&s->env, s->env.metric);
    p.scored = s->n_ev;
    p.cache_hits = s->cache_hits;
    if (r) {
        double sw = 0, sa = 0;
        for (int l = 0; l < s->env.L; l++) sw += r->w[l], sa += r->a[l];
        p.mean_w_bits = sw / s->env.L, p.mean_a_bits = sa / s->env.L;
        p.cost_ratio = r->ratio[s->env.metric];
        p.accuracy = r->acc;
    }
    const mq_rec *b = best_rec(s);
    p.best_accuracy = b ? b->acc : -1;
    p.best_cost_ratio = b ? b->ratio[s->env.metric] : -1;
    p.elapsed_s = mq_now() - s->t0;
    p.agent_s = s->agent_s, p.score_s = s->score_s;
    p.eta_s = ep > s->ep0 ? p.elapsed_s / (ep - s->ep0) * (eps - ep) : 0; /* this process's pace */
    return p;
}

void mq_search_progress(mq_search *s, const char *phase, int ep, int eps, const mq_rec *r, int cached) {
    if (!s->fn) return;
    const mixq_search_progress p = progress_fill(s, phase, ep, eps, r, cached);
    s->fn(&p, s->user);
}

/* ------------------------------------------------------------------ files */

static mixq_status write_atomic(const mq_search *s, const char *name, const char *text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    return mq_write_atomic(path, text, strlen(text));
}

/* *text = the file's contents, or NULL (and MIXQ_OK) when it does not exist. */
static mixq_status read_optional(const char *path, char **text) {
    int missing = 0;
    mixq_status st = mq_read_file(path, (size_t)1 << 30, "run file", text, NULL, &missing);
    if (st && missing) {
        mixq_clear_error();
        return MIXQ_OK;
    }
    return st;
}

mixq_status mq_search_write_file(const mq_search *s, const char *name, const char *text) {
    return write_atomic(s, name, text);
}

mixq_status mq_search_read_file(const mq_search *s, const char *name, char **text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    *text = NULL;
    return read_optional(path, text);
}

/* The resolved configuration, one "key": value per line (compared line by line on resume). */
static char *config_text(const mq_search *s, const char *data, uint64_t model_hash) {
    const mixq_search_config *c = s->cfg;
    const size_t cap = 8192;
    char *t = mq_malloc(cap, 1, "config text");
    if (!t) return NULL;
    const char *hwtext = mixq_hw_text(s->hw);
    char budgets[160] = "", par[48] = "", kd[64] = "", split[48] = "";
    /* proposals per round change what is proposed (not how many ranks score them); one per round
     * is the key's absence, so run directories from before the key resume as they were */
    if (mq_search_parallel(s) > 1) snprintf(par, sizeof par, "  \"parallel\": %d,\n", mq_search_parallel(s));
    /* likewise distillation: no key when off */
    if (c->distill > 0)
        snprintf(kd, sizeof kd, "  \"distill\": [%g, %g],\n", (double)c->distill,
                 (double)c->distill_temperature);
    /* likewise a validation split other than the seed's (the model's own, or --split-seed) */
    if (s->split_seed != c->seed)
        snprintf(split, sizeof split, "  \"split_seed\": %llu,\n", (unsigned long long)s->split_seed);
    for (int k = 0, n = 0; k < MQ_NMETRIC; k++)
        if (isfinite(s->env.target[k]))
            n += snprintf(budgets + n, sizeof budgets - (size_t)n, "%s\"%s\": %.6g", n ? ", " : "",
                          mq_metric_names[k], mq_env_budget_ratio(&s->env, k));
    int n = snprintf(t, cap,
             "{\n  \"mixq_search\": 2,\n  \"model\": \"%s\",\n  \"model_fnv64\": \"%016llx\",\n"
             "  \"data\": \"%s\",\n  \"agent\": \"%s\",\n  \"hw\": \"%s\",\n  \"hw_fnv64\": \"%016llx\",\n"
             "  \"hw_batch\": %d,\n  \"budget\": \"%s\",\n  \"budget_ratios\": {%s},\n  \"mode\": \"%s\",\n"
             "  \"max_drop\": %g,\n  \"episodes\": %d,\n  \"warmup\": %d,\n  \"bits\": [%d, %d],\n"
             "  \"pin_ends\": %s,\n  \"calib_images\": %d,\n  \"finetune_images\": %d,\n  \"eval_images\": %d,\n"
             "  \"val_images\": %d,\n  \"batch\": %d,\n  \"lr\": %g,\n  \"final_epochs\": %g,\n"
             "  \"final_lr\": %g,\n%s  \"seed\": %llu,\n%s  \"custom_reward\": %s,\n%s  \"agent_settings\": {",
             s->model_path, (unsigned long long)model_hash, data, c->agent, mixq_hw_name(s->hw),
             (unsigned long long)mq_fnv1a(hwtext, strlen(hwtext), MQ_FNV_BASIS),
             c->hw_batch ? c->hw_batch : mixq_hw_batch(s->hw), no_budget(c) ? "" : c->budget, budgets,
             c->accuracy_mode ? "accuracy" : "resource", c->max_drop, c->episodes, c->warmup, c->b_min,
             c->b_max, c->pin_ends ? "true" : "false", c->calib_images, c->finetune_images, c->eval_images,
             c->val_images, c->batch, (double)c->lr, (double)c->final_epochs, (double)c->final_lr, kd,
             (unsigned long long)c->seed, split, c->reward ? "true" : "false", par);
    if (n > 0 && (size_t)n < cap && s->agent->config) s->agent->config(s, t + n, cap - (size_t)n);
    n = (int)strlen(t);
    if ((size_t)n + 8 < cap) snprintf(t + n, cap - (size_t)n, "}\n}\n");
    return t;
}

static mixq_status check_config(const mq_search *s, const char *old, const char *now) {
    /* the first differing line names the key */
    const char *a = old, *b = now;
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la))
            return mq_err(MIXQ_ERR_STATE,
                          "%s was made with a different configuration: it has `%.*s`, this run has "
                          "`%.*s`; hint: resume with the same flags, or use a new --out directory",
                          s->dir, (int)la, a, (int)lb, b);
        a += la + (ea ? 1 : 0), b += lb + (eb ? 1 : 0);
    }
    if (*a || *b)
        return mq_err(MIXQ_ERR_STATE, "%s was made with a different configuration; hint: a new --out directory",
                      s->dir);
    return MIXQ_OK;
}

/* A corrupt run file: the reason (mixq_last_error()) with a hint. */
static mixq_status run_file_err(void) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", mixq_last_error());
    return mq_err(MIXQ_ERR_FORMAT, "%s; hint: the run directory is damaged: a new --out directory", msg);
}

/* Integer field `key` of a run file's object o in [lo, hi] (mq_j_int_value: never a cast of an
 * out-of-range double; the error names origin, field, value and range). */
static mixq_status run_int(const char *origin, const cJSON *o, const char *key, int lo, int hi, int *out) {
    const mq_jctx c = {.origin = origin, .dir = NULL};
    long long v;
    mixq_status st = mq_j_int_value(&c, cJSON_GetObjectItemCaseSensitive(o, key), "", key, lo, hi, &v);
    if (!st) *out = (int)v;
    return st;
}

/* JSON value v (named `name` in messages) as an array of n integers in [lo, hi] into out;
 * `what` says what the entries are. */
static mixq_status ints_of(const char *origin, const cJSON *v, const char *name, int *out, int n, int lo, int hi,
                           const char *what) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return mq_err(MIXQ_ERR_FORMAT, "%s: field '%s' must be an array of %d integers (%s)", origin, name, n, what);
    const mq_jctx c = {.origin = origin, .dir = NULL};
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char k[48];
        long long x;
        snprintf(k, sizeof k, "%s[%d]", name, i);
        mixq_status st = mq_j_int_value(&c, e, "", k, lo, hi, &x);
        if (st) return st;
        out[i] = (int)x;
    }
    return MIXQ_OK;
}

/* Field `key`: an array of n integers in [lo, hi], one per layer. */
static mixq_status run_int_array(const char *origin, const cJSON *o, const char *key, int *out, int n, int lo,
                                 int hi) {
    return ints_of(origin, cJSON_GetObjectItemCaseSensitive(o, key), key, out, n, lo, hi, "one per layer");
}

/* Field "kw" of a per-kernel record (absent: *has = 0) into w + 2 L: one array per layer of its
 * kernels' widths in 1..32. They must differ somewhere (a policy whose kernels all agree is
 * written layer-wise), and their rounded means must be the record's "w" (already in w). */
static mixq_status run_kernels(const char *origin, const mq_search *s, const cJSON *o, int *w, int *has) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "kw");
    *has = 0;
    if (!v) return MIXQ_OK;
    const int L = s->env.L;
    int *kb = w + 2 * L;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != L)
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'kw' must be an array of %d arrays (one per layer)", origin, L);
    const cJSON *e = v->child;
    for (int l = 0; l < L; l++, e = e->next) {
        char name[24], what[MIXQ_NAME_MAX + 32];
        snprintf(name, sizeof name, "kw[%d]", l);
        snprintf(what, sizeof what, "layer '%s''s kernels", s->env.name[l]);
        mixq_status st = ints_of(origin, e, name, kb + s->env.koff[l], s->env.koff[l + 1] - s->env.koff[l], 1, 32,
                                 what);
        if (st) return st;
    }
    int *m = mq_malloc((size_t)L, sizeof(int), "policy");
    if (!m) return MIXQ_ERR_NOMEM;
    mixq_status st = MIXQ_OK;
    if (kernel_layers(&s->env, kb, m))
        st = mq_err(MIXQ_ERR_FORMAT, "%s: field 'kw' gives each layer's kernels one width: such a policy is "
                    "written without 'kw'", origin);
    for (int l = 0; l < L && !st; l++)
        if (m[l] != w[l])
            st = mq_err(MIXQ_ERR_FORMAT, "%s: field 'w[%d]' is %d but layer '%s''s kernels average %d bits", origin,
                        l, w[l], s->env.name[l], m[l]);
    free(m);
    if (!st) *has = 1;
    return st;
}

/* Load evals.jsonl into the cache. A torn last line (killed while writing) is dropped and the
 * file truncated to the good part; a bad line in the middle is an error. */
static mixq_status load_evals(mq_search *s, const char *path) {
    char *t;
    mixq_status st = read_optional(path, &t);
    if (st || !t) return st;
    int L = s->env.L, line = 0;
    const int NK = s->env.koff[L];
    int *w = mq_malloc(2 * (size_t)L + (size_t)NK, sizeof(int), "policy");
    if (!w) {
        free(t);
        return MIXQ_ERR_NOMEM;
    }
    char *p = t;
    size_t good = 0;
    while (*p && !st) {
        char *nl = strchr(p, '\n');
        line++;
        if (!nl) break; /* a torn last line */
        *nl = 0;
        int oom;
        cJSON *j = mq_json_parse(p, strlen(p), NULL, &oom);
        const cJSON *acc = j ? cJSON_GetObjectItemCaseSensitive(j, "acc") : NULL;
        int episode = 0, has_kw = 0;
        char origin[1300];
        snprintf(origin, sizeof origin, "%s line %d", path, line);
        if (oom) {
            st = MIXQ_ERR_NOMEM;
        } else if (!cJSON_IsObject(j)) {
            st = mq_err(MIXQ_ERR_FORMAT, "%s is not an evaluation of this run's %d layers (not a JSON object); "
                        "hint: the run directory is damaged: a new --out directory", origin, L);
        } else if (!cJSON_IsNumber(acc) || !isfinite(acc->valuedouble)) {
            st = mq_err(MIXQ_ERR_FORMAT, "%s: field 'acc' must be a finite number; hint: the run directory is "
                        "damaged: a new --out directory", origin);
        } else if (run_int(origin, j, "episode", 0, INT_MAX / 2, &episode) ||
                   run_int_array(origin, j, "w", w, L, 1, 32) || run_int_array(origin, j, "a", w + L, L, 1, 32) ||
                   run_kernels(origin, s, j, w, &has_kw)) {
            st = run_file_err();
        } else if (find_rec(s, w, w + L, has_kw ? w + 2 * L : NULL)) {
            st = mq_err(MIXQ_ERR_FORMAT, "%s: line %d repeats an earlier evaluation", path, line);
        } else {
            mq_rec *r;
            st = rec_add(s, w, w + L, has_kw ? w + 2 * L : NULL, acc->valuedouble, episode, &r);
        }
        cJSON_Delete(j);
        p = nl + 1;
        good = (size_t)(p - t);
    }
    free(w);
    free(t);
    if (!st && truncate(path, (off_t)good))
        st = mq_err(MIXQ_ERR_IO, "%s: cannot drop a torn last line (%s)", path, strerror(errno));
    return st;
}

static mixq_status write_best_and_pareto(mq_search *s) {
    const mq_rec *b = best_rec(s);
    mixq_status st = MIXQ_OK;
    if (b) {
        mixq_policy *p = NULL;
        if ((st = build_policy(s, b->w, b->a, b->kb, &p))) return st;
        const char *t = mixq_policy_text(p);
        st = t ? write_atomic(s, "best_policy.json", t) : MIXQ_ERR_NOMEM;
        mixq_policy_free(p);
        if (st) return st;
    }
    /* Pareto set per metric: no other candidate at least as accurate and at most as costly
     * (strictly better in one). Each record can appear once per metric: 2 L numbers of up to 2
     * digits and separators. */
    size_t cap = 1024 + (size_t)s->n_ev * MQ_NMETRIC * (size_t)(s->env.L * 8 + 256);
    char *js = mq_malloc(cap, 1, "pareto json"), *csv = mq_malloc(cap, 1, "pareto csv");
    if (!js || !csv) {
        free(js);
        free(csv);
        return MIXQ_ERR_NOMEM;
    }
    size_t nj = (size_t)snprintf(js, cap, "{\n  \"fp32_accuracy\": %.4f,\n  \"budget_metric\": \"%s\",\n  \"budgets\": {",
                                 s->acc0, mq_metric_names[s->env.metric]);
    for (int k = 0, n = 0; k < MQ_NMETRIC; k++)
        if (isfinite(s->env.target[k]))
            nj += (size_t)snprintf(js + nj, cap - nj, "%s\"%s\": %.6f", n++ ? ", " : "", mq_metric_names[k],
                                   mq_env_budget_ratio(&s->env, k));
    nj += (size_t)snprintf(js + nj, cap - nj, "},\n  \"pareto\": {");
    size_t nc = (size_t)snprintf(csv, cap, "metric,episode,accuracy,latency_ratio,energy_ratio,size_ratio,bitops_ratio,"
                                           "fits,w_bits,a_bits\n");
    for (int k = 0; k < MQ_NMETRIC; k++) {
        nj += (size_t)snprintf(js + nj, cap - nj, "%s\n    \"%s\": [", k ? "," : "", mq_metric_names[k]);
        int first = 1;
        for (int i = 0; i < s->n_ev; i++) {
            const mq_rec *r = &s->ev[i];
            int dominated = 0;
            for (int j = 0; j < s->n_ev && !dominated; j++) {
                const mq_rec *q = &s->ev[j];
                if (q->acc >= r->acc && q->ratio[k] <= r->ratio[k] && (q->acc > r->acc || q->ratio[k] < r->ratio[k]))
                    dominated = 1;
            }
            if (dominated) continue;
            nj += (size_t)snprintf(js + nj, cap - nj,
                                   "%s\n      {\"episode\": %d, \"accuracy\": %.4f, \"ratio\": %.6f, \"fits\": %s, \"w\": [",
                                   first ? "" : ",", r->episode, r->acc, r->ratio[k], r->fits ? "true" : "false");
            nc += (size_t)snprintf(csv + nc, cap - nc, "%s,%d,%.4f,%.6f,%.6f,%.6f,%.6f,%d,", mq_metric_names[k], r->episode,
                                   r->acc, r->ratio[0], r->ratio[1], r->ratio[2], r->ratio[3], r->fits);
            for (int l = 0; l < s->env.L; l++) {
                nj += (size_t)snprintf(js + nj, cap - nj, "%s%d", l ? "," : "", r->w[l]);
                nc += (size_t)snprintf(csv + nc, cap - nc, "%s%d", l ? " " : "", r->w[l]);
            }
            nj += (size_t)snprintf(js + nj, cap - nj, "], \"a\": [");
            nc += (size_t)snprintf(csv + nc, cap - nc, ",");
            for (int l = 0; l < s->env.L; l++) {
                nj += (size_t)snprintf(js + nj, cap - nj, "%s%d", l ? "," : "", r->a[l]);
                nc += (size_t)snprintf(csv + nc, cap - nc, "%s%d", l ? " " : "", r->a[l]);
            }
            nj += (size_t)snprintf(js + nj, cap - nj, "]%s}", r->kb ? ", \"per_kernel\": true" : "");
            nc += (size_t)snprintf(csv + nc, cap - nc, "\n");
            first = 0;
        }
        nj += (size_t)snprintf(js + nj, cap - nj, "\n    ]");
    }
    snprintf(js + nj, cap - nj, "\n  }\n}\n");
    st = write_atomic(s, "pareto.json", js);
    if (!st) st = write_atomic(s, "pareto.csv", csv);
    free(js);
    free(csv);
    return st;
}

/* state.json: {"episode": e, "cache_hits": h, "search_s": t, "ckpt": "agent-e.ckpt"}: the last
 * finished episode, the cache hits and search seconds so far, the agent's checkpoint. */
mixq_status mq_search_read_state(mq_search *s, int *episode) {
    char path[1200];
    snprintf(path, sizeof path, "%s/state.json", s->dir);
    char *t;
    *episode = 0;
    s->cache_hits = 0;
    mixq_status st = read_optional(path, &t);
    if (st || !t) return st;
    int oom;
    cJSON *j = mq_json_parse(t, strlen(t), NULL, &oom);
    free(t);
    if (oom) return MIXQ_ERR_NOMEM;
    int ep = 0, hits = 0;
    const cJSON *h = j ? cJSON_GetObjectItemCaseSensitive(j, "cache_hits") : NULL;
    const cJSON *el = j ? cJSON_GetObjectItemCaseSensitive(j, "search_s") : NULL;
    s->t_before = cJSON_IsNumber(el) && el->valuedouble >= 0 && el->valuedouble < 1e9 ? el->valuedouble : 0;
    if (!cJSON_IsObject(j))
        st = mq_err(MIXQ_ERR_FORMAT, "%s: not a search state file (not a JSON object); hint: the run directory "
                    "is damaged: a new --out directory", path);
    else if (run_int(path, j, "episode", 0, INT_MAX / 2, &ep) ||
             (h && run_int(path, j, "cache_hits", 0, INT_MAX / 2, &hits)))
        st = run_file_err();
    cJSON_Delete(j);
    if (st) return st;
    *episode = ep;
    s->ep0 = ep;
    s->cache_hits = hits;
    if (ep > 0 && s->agent->ckpt_load && s->agent_state) {
        snprintf(path, sizeof path, "%s/agent-%d.ckpt", s->dir, ep);
        st = s->agent->ckpt_load(s->agent_state, path);
    }
    return st;
}

/* report.html (src/report): every cfg->report_every episodes and at the end. A page that cannot
 * be written never stops the search: the progress callback hears of it once (phase "report",
 * with mixq_last_error() saying why). */
static void write_report(mq_search *s) {
    char out[1200];
    const char *dir = s->dir;
    snprintf(out, sizeof out, "%s/report.html", s->dir);
    if (!mq_report_write(&dir, 1, out, NULL, s->fp, s->hw)) return;
    if (!s->report_failed++) mq_search_progress(s, "report", 0, s->cfg->episodes, NULL, 0);
    mixq_clear_error();
}

mixq_status mq_search_save_state(mq_search *s, int episode) {
    char name[64], path[1200], text[200];
    mixq_status st = MIXQ_OK;
    const int ckpt = s->agent->ckpt_save && s->agent_state;
    if (ckpt) {
        snprintf(name, sizeof name, "agent-%d.ckpt", episode);
        snprintf(path, sizeof path, "%s/%s", s->dir, name);
        if ((st = s->agent->ckpt_save(s->agent_state, path))) return st;
    }
    snprintf(text, sizeof text, "{\"episode\": %d, \"cache_hits\": %d, \"search_s\": %.1f%s%s%s}\n", episode,
             s->cache_hits, s->t_before + mq_now() - s->t0, ckpt ? ", \"ckpt\": \"" : "", ckpt ? name : "",
             ckpt ? "\"" : "");
    if ((st = write_atomic(s, "state.json", text))) return st;
    if (ckpt && episode > 1) { /* the previous checkpoint is no longer referenced */
        snprintf(path, sizeof path, "%s/agent-%d.ckpt", s->dir, episode - 1);
        unlink(path);
    }
    if ((st = write_best_and_pareto(s))) return st;
    if (s->cfg->report_every > 0 && episode % s->cfg->report_every == 0) write_report(s);
    return MIXQ_OK;
}

/* ------------------------------------------------------------------ the entry point */

static mixq_status make_dir(const char *d) {
    if (mkdir(d, 0755) && errno != EEXIST) return mq_err(MIXQ_ERR_IO, "cannot create '%s': %s", d, strerror(errno));
    struct stat sb;
    if (stat(d, &sb) || !S_ISDIR(sb.st_mode)) return mq_err(MIXQ_ERR_IO, "'%s' is not a directory", d);
    return MIXQ_OK;
}

/* The final fine-tune's training progress, passed on as phase "final" at about every 10 % of
 * its steps (the first call, episode 0, says it starts). */
typedef struct final_pace {
    mq_search *s;
    const mq_rec *best;
    int total, every, next;
} final_pace;

static int final_progress(const mixq_progress *tp, void *user) {
    final_pace *f = user;
    int done = (tp->epoch - 1) * tp->steps_per_epoch + tp->step;
    if (done < f->next && done < f->total) return 0;
    while (f->next <= done) f->next += f->every;
    if (!f->s->fn) return 0;
    mixq_search_progress p = progress_fill(f->s, "final", MQ_MIN(done, f->total), f->total, f->best, 0);
    p.eta_s = tp->eta_s; /* the fine-tune's own pace */
    f->s->fn(&p, f->s->user);
    return 0;
}

/* The best policy on a clone of the float model, calibrated, then fine-tuned (QAT) on the whole
 * training split. The fine-tune is kept only if it does not lower the validation accuracy (a
 * network whose batch norms were folded away, e.g. an ONNX export, can lose accuracy at the
 * default rate); *kept and *va0 report it. best.mixq gets the kept model. */
static mixq_status final_finetune(mq_search *s, const char *data, mixq_search_result *res, int *kept, double *va0) {
    const mq_rec *b = best_rec(s);
    *kept = 0, *va0 = -1;
    if (!b) return MIXQ_OK;
    double t0 = mq_now();
    mixq_model *m = NULL;
    mixq_dataset *test = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/best.mixq", s->dir);
    float va = 0, te = 0, before = 0;
    mixq_status st = mixq_model_clone(s->fp, &m);
    if (!st) st = quantize_bits(s, m, b->w, b->a, b->kb);
    if (!st) st = mixq_model_calibrate(m, s->train, s->cfg->calib_images);
    if (!st) st = mixq_evaluate(m, s->val, 256, &before, NULL);
    if (!st) st = mixq_model_save(m, path);
    va = before;
    float e = s->cfg->final_epochs;
    if (!st && e > 0) {
        mixq_train_config tc;
        mq_search_train_cfg(s, &tc, s->cfg->final_lr, (int)ceilf(e));
        int steps = (mixq_dataset_count(s->train) + tc.batch - 1) / tc.batch;
        if ((float)tc.epochs != e) tc.max_steps = (int)(e * (float)steps + 0.5f) > 0 ? (int)(e * (float)steps + 0.5f) : 1;
        final_pace f = {s, b, tc.max_steps > 0 ? tc.max_steps : tc.epochs * steps, 0, 0};
        f.every = MQ_MAX(1, f.total / 10), f.next = f.every;
        mq_search_progress(s, "final", 0, f.total, b, 0);
        st = mixq_train(m, s->train, NULL, &tc, final_progress, &f);
        float after = 0;
        if (!st) st = mixq_evaluate(m, s->val, 256, &after, NULL);
        if (!st && after >= before) {
            *kept = 1;
            va = after;
            st = mixq_model_save(m, path);
        } else if (!st) { /* back to the calibrated model */
            mixq_model_free(m);
            m = NULL;
            st = mixq_model_load(path, &m);
        }
    }
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_TEST, 0, 1, &test);
    if (!st) st = mixq_evaluate(m, test, 256, &te, NULL);
    res->final_val_accuracy = 100.0 * va;
    res->final_test_accuracy = 100.0 * te;
    res->final_s = mq_now() - t0;
    *va0 = 100.0 * before;
    mixq_dataset_free(test);
    mixq_model_free(m);
    return st;
}

static mixq_status find_agent(const char *name, const mq_agent **out) {
    const int n = (int)(sizeof agents / sizeof agents[0]);
    const char *names[sizeof agents / sizeof agents[0]];
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        names[i] = agents[i]->name;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (i + 1 < n ? ", " : " or ") : "",
                 agents[i]->name);
        if (name && !strcmp(name, agents[i]->name)) {
            *out = agents[i];
            return MIXQ_OK;
        }
    }
    return mq_err(MIXQ_ERR_ARG, "unknown agent '%s'; %shint: --agent %s", name ? name : "(null)",
                  name ? mq_did_you_mean(name, names, n) : "", list);
}

mixq_status mq_search_check_widths(const mq_search *s, const char *flag, const char *key, const int *w, int n,
                                   int min_count) {
    const mixq_search_config *c = s->cfg;
    const char *ag = s->agent->name;
    if (n < 0 || n > 8 || (n > 0 && n < min_count))
        return mq_err(MIXQ_ERR_ARG, "%s: %s has %d width%s; hint: %d to 8 of 1..8", ag, flag, n, n == 1 ? "" : "s",
                      min_count);
    for (int i = 0; i < n; i++) {
        if (w[i] < c->b_min || w[i] > c->b_max)
            return mq_err(MIXQ_ERR_ARG, "%s: %s width %d is outside --bits %d..%d; hint: widen --bits or drop that "
                          "width", ag, flag, w[i], c->b_min, c->b_max);
        if (i > 0 && w[i] <= w[i - 1])
            return mq_err(MIXQ_ERR_ARG, "%s: %s must list distinct widths in ascending order (width %d is %d after "
                          "%d)", ag, key, i + 1, w[i], w[i - 1]);
    }
    return MIXQ_OK;
}

mixq_status mq_search_check_a_bit_set(const mq_search *s, int min_count) {
    return mq_search_check_widths(s, "--a-bit-set", "a_bit_set", s->cfg->a_bit_set, s->cfg->n_a_bit_set,
                                  min_count);
}

void mq_search_a_bit_set_json(const mq_search *s, char *buf, size_t n) {
    const mixq_search_config *c = s->cfg;
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < c->n_a_bit_set && i < 8 && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%d", i ? ", " : "\"a_bit_set\": [", c->a_bit_set[i]);
    if (c->n_a_bit_set > 0 && k < n) snprintf(buf + k, n - k, "], ");
}

static mixq_status write_summary(mq_search *s, const mixq_search_result *res, int ft_kept, double va_before) {
    char sum[2400], budgets[200] = "";
    for (int k = 0, n = 0; k < MQ_NMETRIC; k++)
        if (res->budget_ratios[k] > 0)
            n += snprintf(budgets + n, sizeof budgets - (size_t)n, "%s\"%s\": %.6f", n ? ", " : "",
                          mq_metric_names[k], res->budget_ratios[k]);
    snprintf(sum, sizeof sum,
             "{\n  \"agent\": \"%s\",\n  \"layers\": %d,\n  \"episodes\": %d,\n  \"candidates_scored\": %d,\n"
             "  \"distinct_candidates\": %d,\n  \"cache_hits\": %d,\n  \"evaluations\": %d,\n"
             "  \"fp32_val_accuracy\": %.4f,\n  \"best_val_accuracy\": %.4f,\n  \"final_val_accuracy\": %.4f,\n"
             "  \"final_test_accuracy\": %.4f,\n  \"val_before_finetune\": %.4f,\n  \"finetune_kept\": %s,\n"
             "  \"latency_ratio\": %.6f,\n  \"energy_ratio\": %.6f,\n"
             "  \"size_ratio\": %.6f,\n  \"bitops_ratio\": %.6f,\n  \"budget_metric\": \"%s\",\n"
             "  \"budget_ratio\": %.6f,\n  \"budgets\": {%s},\n  \"fits\": %s,\n"
             "  \"search_s\": %.1f,\n  \"final_s\": %.1f,\n  \"ranks\": %d,\n  \"parallel\": %d,\n"
             "  \"workers_lost\": %d,\n  \"val_images_trained_on\": %d\n}\n",
             s->cfg->agent, res->layers, res->episodes, res->candidates, res->candidates, res->cache_hits, s->n_ev,
             res->fp32_val_accuracy, res->best_val_accuracy, res->final_val_accuracy, res->final_test_accuracy,
             va_before, ft_kept ? "true" : "false", res->ratio[0], res->ratio[1], res->ratio[2], res->ratio[3],
             mq_metric_names[s->env.metric], res->budget_ratio, budgets, res->fits ? "true" : "false",
             res->search_s, res->final_s, mixq_mpi_size(), mq_search_parallel(s), s->workers_lost,
             res->val_trained_on);
    return write_atomic(s, "summary.json", sum);
}

mixq_status mixq_search(const char *model_path, const char *data, const mixq_search_config *cfg,
                        const char *run_dir, int resume, mixq_search_progress_fn fn, void *user,
                        mixq_search_result *res) {
    if (!model_path || !data || !cfg || !run_dir || !res) return mq_err(MIXQ_ERR_ARG, "mixq_search: NULL argument");
    memset(res, 0, sizeof *res);
    res->final_val_accuracy = res->final_test_accuracy = -1;
    res->val_trained_on = -1;
    const mq_agent *agent = NULL;
    mixq_status st = find_agent(cfg->agent, &agent);
    if (st) return st;
    if (cfg->episodes < 1 || cfg->warmup < 0 || cfg->eval_images < 1 || cfg->calib_images < 1 ||
        cfg->finetune_images < 0 || cfg->batch < 2)
        return mq_err(MIXQ_ERR_ARG, "search: episodes, eval/calibration images and batch must be positive");
    if ((cfg->sweep || cfg->sweep_from) && agent != &mq_agent_hawq && agent != &mq_agent_ebs)
        return mq_err(MIXQ_ERR_ARG, "--sweep and --sweep-from are the hawq and ebs agents'; hint: --agent hawq or ebs");
    if (cfg->kernel_wise && agent != &mq_agent_hawq)
        return mq_err(MIXQ_ERR_ARG, "--kernel-wise is the hawq agent's (the %s agent picks one width per layer); "
                      "hint: --agent hawq", agent->name);
    if (cfg->n_a_bit_set && agent != &mq_agent_ebs && agent != &mq_agent_hawq)
        return mq_err(MIXQ_ERR_ARG, "--a-bit-set (activation candidate widths) is the ebs and hawq agents'; hint: "
                      "--agent ebs or hawq, or --bits LO..HI for the %s agent's range", agent->name);
    if (cfg->a_bits != 8 && agent != &mq_agent_releq)
        return mq_err(MIXQ_ERR_ARG, "--a-bits (a_bits %d) is the releq agent's; the %s agent searches activation "
                      "bits itself; hint: --agent releq, or drop --a-bits", cfg->a_bits, agent->name);
    mq_search S;
    mq_search *s = &S;
    memset(s, 0, sizeof *s);
    s->cfg = cfg, s->agent = agent, s->model_path = model_path, s->fn = fn, s->user = user;
    snprintf(s->dir, sizeof s->dir, "%s", run_dir);
    s->reward = cfg->reward ? cfg->reward : agent->reward ? agent->reward : cfg->accuracy_mode ? guarantee_reward
                                                                                                : haq_reward;
    s->reward_user = cfg->reward ? cfg->reward_user : agent->reward ? (void *)s : (void *)&cfg->max_drop;
    s->t0 = mq_now();
    s->agent_s = -1;
    char *conf = NULL, *old = NULL;
    uint64_t mh = 0;
    int ft_kept = 0;
    double va_before = -1;
    st = mixq_model_load(model_path, &s->fp);
    if (!st && mixq_model_is_quantized(s->fp))
        st = mq_err(MIXQ_ERR_ARG, "'%s' is already quantized; hint: search from the float model `mixq train` wrote",
                    model_path);
    if (!st) st = mixq_model_clone(s->fp, &s->m);
    if (!st) s->split_seed = mixq_model_split_seed(s->fp, cfg->split_seed_set, cfg->split_seed, cfg->seed);
    if (!st) st = mq_fnv1a_file(model_path, &mh);
    if (!st) st = mixq_hw_load(cfg->hw, &s->hw);
    if (!st) st = mq_env_create(s->fp, s->hw, cfg->hw_batch, cfg->b_min, cfg->b_max, cfg->pin_ends, &s->env);
    if (!st && agent->check) st = agent->check(s);
    /* activations no lower than their own candidate widths allow (ebs --a-bit-set, ascending
     * within --bits: the agent's check) */
    if (!st && cfg->n_a_bit_set > 0) s->env.a_min = cfg->a_bit_set[0];
    if (!st && !no_budget(cfg)) st = mq_env_set_budget(&s->env, cfg->budget);
    if (!st && !cfg->accuracy_mode && !s->env.n_budgets && !agent->budget_optional)
        st = mq_err(MIXQ_ERR_ARG, "a resource-constrained search needs a budget, e.g. latency=0.5");
    if (!st && agent->ready) st = agent->ready(s);
    if (!st && (!(cfg->distill >= 0 && cfg->distill <= 1) ||
                !(cfg->distill_temperature >= 0.05f && cfg->distill_temperature <= 100)))
        st = mq_err(MIXQ_ERR_ARG, "--distill %g (0..1) or --distill-temperature %g (0.05..100) out "
                    "of range", (double)cfg->distill, (double)cfg->distill_temperature);
    if (!st && (cfg->parallel < 0 || cfg->parallel > 4096 || !(cfg->worker_timeout >= 0)))
        st = mq_err(MIXQ_ERR_ARG, "--parallel %d (0..4096; 0: one per MPI rank) or --worker-timeout %g (seconds, "
                    ">= 0) out of range", cfg->parallel, cfg->worker_timeout);
    /* MPI ranks 1..N-1 only score: no run directory, no progress, no reference */
    const int worker = mixq_mpi_rank() > 0;
    if (worker) s->fn = NULL;
    /* The run directory is checked before the data are loaded, so a resume with other flags or a
     * damaged state.json fails at once (the agents with a checkpoint read the state again when
     * they start); a new run's directory is made only once the data have loaded. */
    if (!st && !worker && !(conf = config_text(s, data, mh))) st = MIXQ_ERR_NOMEM;
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    if (!st && !worker) st = read_optional(path, &old);
    if (!st && old) {
        if (!resume)
            st = mq_err(MIXQ_ERR_STATE, "%s already holds a search; hint: --resume to continue it, or a new --out",
                        run_dir);
        else st = check_config(s, old, conf);
        int done = 0;
        if (!st) st = mq_search_read_state(s, &done);
    }
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, cfg->val_images, s->split_seed, &s->train);
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_VAL, cfg->val_images, s->split_seed, &s->val);
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_VAL, cfg->val_images, s->split_seed, &s->eval);
    if (!st && cfg->eval_images < mixq_dataset_count(s->eval)) st = mixq_dataset_truncate(s->eval, cfg->eval_images);
    if (!st) {
        mixq_holdout held, vh;
        int seen = 0;
        if (mixq_model_holdout(s->fp, &held) && mixq_dataset_holdout(s->val, &vh) == MIXQ_OK &&
            mixq_holdout_seen(&held, &vh, &seen) == MIXQ_OK) /* else another file: -1 */
            res->val_trained_on = seen;
    }
    if (!st && cfg->finetune_images > 0) {
        st = mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, cfg->val_images, s->split_seed, &s->ft);
        if (!st && cfg->finetune_images < mixq_dataset_count(s->ft))
            st = mixq_dataset_truncate(s->ft, cfg->finetune_images);
    }
    if (!st && worker) {
        st = mq_mpi_worker(s->env.L, s->env.koff[s->env.L], score_cb, s);
        goto out;
    }
    if (!st) st = make_dir(run_dir);
    if (!st && !old) st = write_atomic(s, "config.json", conf);
    /* FP32 reference on the scoring subset (before the cache: records' rewards use it) */
    if (!st) {
        float v;
        mq_search_progress(s, "fp32", 0, cfg->episodes, NULL, 0);
        st = mixq_evaluate(s->fp, s->eval, 256, &v, NULL);
        s->acc0 = 100.0 * v;
        res->fp32_val_accuracy = s->acc0;
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/evals.jsonl", run_dir);
        st = load_evals(s, path);
        if (!st && !(s->evf = fopen(path, "a")))
            st = mq_err(MIXQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    if (!st) st = agent->run(s);
    mq_mpi_stop_workers(); /* nothing else is scored */
    res->search_s = s->t_before + mq_now() - s->t0; /* earlier processes of a resumed run included */
    if (!st) st = write_best_and_pareto(s);
    const mq_rec *b = st ? NULL : best_rec(s);
    if (!st && !b) {
        char c_target[32];
        const int M = s->env.metric;
        if (cfg->accuracy_mode)
            st = mq_err(MIXQ_ERR_NOTFOUND, "no candidate kept the accuracy drop within %g points%s; hint: "
                        "a larger --max-drop or more --episodes", cfg->max_drop,
                        s->env.n_budgets ? " and fit the budget" : "");
        else
            st = mq_err(MIXQ_ERR_NOTFOUND, "no candidate fit the budget (%s %s = %.3f x W8A8%s); hint: a larger "
                        "--budget or more --episodes", mq_metric_names[M],
                        mq_env_fmt_cost(M, s->env.target[M], c_target, sizeof c_target),
                        mq_env_budget_ratio(&s->env, M), s->env.n_budgets > 1 ? ", and the others" : "");
    }
    if (!st) {
        res->layers = s->env.L;
        res->candidates = s->n_ev;
        res->episodes = agent->episodic ? cfg->episodes : s->n_ev;
        res->cache_hits = s->cache_hits;
        res->best_val_accuracy = b->acc;
        memcpy(res->ratio, b->ratio, sizeof res->ratio);
        for (int k = 0; k < MQ_NMETRIC; k++) res->budget_ratios[k] = mq_env_budget_ratio(&s->env, k);
        res->budget_ratio = mq_env_budget_ratio(&s->env, s->env.metric);
        res->fits = b->fits;
        st = final_finetune(s, data, res, &ft_kept, &va_before);
    }
    if (!st) st = write_summary(s, res, ft_kept, va_before);
    if (!st && cfg->report_every >= 0) write_report(s);
out:
    if (!worker) mq_mpi_stop_workers(); /* on every path: a worker waits for it */
    if (s->evf) fclose(s->evf);
    free(conf);
    free(old);
    rec_free(s);
    mq_env_free(&s->env);
    mixq_hw_free(s->hw);
    mixq_dataset_free(s->train);
    mixq_dataset_free(s->val);
    mixq_dataset_free(s->eval);
    mixq_dataset_free(s->ft);
    mixq_model_free(s->fp);
    mixq_model_free(s->m);
    return st;
}
