/* The search driver: scoring with a persistent cache, the agents (HAQ's DDPG, uniform, random,
 * greedy), run directories with kill-safe resume, the Pareto set and the final fine-tune.
 *
 * Run directory layout (all text but the agent checkpoint):
 *   config.json      the resolved configuration; --resume refuses a different one
 *   evals.jsonl      one line per scored policy (bits, accuracy, cost ratios, reward); the cache
 *   state.json       the last finished episode and the checkpoint that belongs to it
 *   agent-<e>.ckpt   the DDPG agent after episode e (written before state.json points at it)
 *   best_policy.json the best policy so far (a mixq policy file)
 *   pareto.json/.csv the candidates no other candidate beats on accuracy and that metric
 *   best.mixq        the best policy after the final fine-tune; summary.json
 * Every scored policy is appended and flushed before the agent learns from it, and the agent's
 * state only advances through state.json, so a SIGKILL anywhere loses at most the work of the
 * episode in flight, and a resumed run replays it from the cache to the same result. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "search/ddpg.h"
#include "search/env.h"

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
    c->seed = 1;
}

static double haq_reward(double acc, double acc0, double ratio, int fits, void *user) {
    (void)ratio, (void)fits, (void)user;
    return 0.1 * (acc - acc0);
}

/* accuracy-guaranteed: cheaper is better as long as the drop stays within max_drop */
static double guarantee_reward(double acc, double acc0, double ratio, int fits, void *user) {
    (void)fits;
    double drop = acc0 - acc, allowed = *(const double *)user;
    return drop <= allowed ? 1.0 - ratio : -1.0 - 0.1 * (drop - allowed);
}

/* ------------------------------------------------------------------ the search state */

typedef struct eval_rec {
    int *w, *a;          /* [L] */
    double acc, reward;
    double ratio[MQ_NMETRIC];
    int fits, episode;
} eval_rec;

typedef struct search {
    const mixq_search_config *cfg;
    char dir[1024];
    const char *model_path;
    mq_env env;
    mixq_hw *hw;
    mixq_dataset *train, *val, *eval, *ft;
    mixq_model *m;        /* float model for calibration-only scoring (weights never change) */
    double acc0;          /* FP32 accuracy on the scoring subset, % */
    eval_rec *ev;
    int n_ev, cap_ev, scored;
    FILE *evf;
    mixq_reward_fn reward;
    void *reward_user;
    double t0;
    mixq_search_progress_fn fn;
    void *user;
} search;

static void rec_free(search *s) {
    for (int i = 0; i < s->n_ev; i++) free(s->ev[i].w);
    free(s->ev);
    s->ev = NULL;
    s->n_ev = s->cap_ev = 0;
}

static int bits_equal(const search *s, const eval_rec *r, const int *w, const int *a) {
    return !memcmp(r->w, w, sizeof(int) * (size_t)s->env.L) && !memcmp(r->a, a, sizeof(int) * (size_t)s->env.L);
}

static const eval_rec *cache_find(const search *s, const int *w, const int *a) {
    for (int i = 0; i < s->n_ev; i++)
        if (bits_equal(s, &s->ev[i], w, a)) return &s->ev[i];
    return NULL;
}

static mixq_status rec_add(search *s, const int *w, const int *a, double acc, int episode, eval_rec **out) {
    if (s->n_ev == s->cap_ev) {
        int nc = s->cap_ev ? s->cap_ev * 2 : 64;
        eval_rec *ne = realloc(s->ev, sizeof *ne * (size_t)nc);
        if (!ne) return mq_err(MIXQ_ERR_NOMEM, "out of memory for the evaluation cache");
        s->ev = ne, s->cap_ev = nc;
    }
    eval_rec *r = &s->ev[s->n_ev];
    memset(r, 0, sizeof *r);
    r->w = mq_malloc(2 * (size_t)s->env.L, sizeof(int), "cached policy");
    if (!r->w) return MIXQ_ERR_NOMEM;
    r->a = r->w + s->env.L;
    memcpy(r->w, w, sizeof(int) * (size_t)s->env.L);
    memcpy(r->a, a, sizeof(int) * (size_t)s->env.L);
    r->acc = acc;
    r->episode = episode;
    for (int k = 0; k < MQ_NMETRIC; k++)
        r->ratio[k] = s->env.w8a8[k] > 0 ? mq_env_cost(&s->env, w, a, k) / s->env.w8a8[k] : 0;
    r->fits = mq_env_cost(&s->env, w, a, s->env.metric) <= s->env.target * (1 + 1e-12);
    r->reward = s->reward(acc, s->acc0, r->ratio[s->env.metric], r->fits, s->reward_user);
    s->n_ev++;
    *out = r;
    return MIXQ_OK;
}

/* ------------------------------------------------------------------ policies and scoring */

/* The mixq policy text of bits w, a (every layer named; per-channel scales, automatic clips). */
static char *policy_text(const search *s, const int *w, const int *a) {
    size_t cap = 256 + (size_t)s->env.L * (MIXQ_NAME_MAX + 48);
    char *t = mq_malloc(cap, 1, "policy text");
    if (!t) return NULL;
    size_t n = (size_t)snprintf(t, cap, "{\n  \"mixq_policy\": 1,\n  \"default\": {\"w_bits\": 8, \"a_bits\": 8},\n  \"layers\": {\n");
    for (int l = 0; l < s->env.L; l++)
        n += (size_t)snprintf(t + n, cap - n, "    \"%s\": {\"w_bits\": %d, \"a_bits\": %d}%s\n", s->env.name[l],
                              w[l], a[l], l + 1 < s->env.L ? "," : "");
    snprintf(t + n, cap - n, "  }\n}\n");
    return t;
}

static mixq_status quantize_bits(search *s, mixq_model *m, const int *w, const int *a) {
    char *t = policy_text(s, w, a);
    if (!t) return MIXQ_ERR_NOMEM;
    mixq_policy *p = NULL;
    mixq_status st = mixq_policy_parse(t, strlen(t), "search policy", &p);
    if (!st) st = mixq_model_quantize(m, p);
    mixq_policy_free(p);
    free(t);
    return st;
}

static void train_cfg(const search *s, mixq_train_config *tc, float lr, int epochs) {
    mixq_train_config_default(tc);
    tc->epochs = epochs;
    tc->lr = lr;
    tc->batch = s->cfg->batch;
    tc->seed = s->cfg->seed;
}

/* Validation accuracy (%) of bits w, a: quantize, calibrate, fine-tune the subset, evaluate. The
 * same policy always gets the same score (fixed seeds, deterministic engine). */
static mixq_status score(search *s, const int *w, const int *a, double *acc) {
    mixq_status st;
    float v = 0;
    if (s->cfg->finetune_images > 0) {
        mixq_model *m = NULL; /* a fresh float model: fine-tuning changes the weights */
        st = mixq_model_load(s->model_path, &m);
        if (!st) st = quantize_bits(s, m, w, a);
        if (!st) st = mixq_model_calibrate(m, s->train, s->cfg->calib_images);
        mixq_train_config tc;
        train_cfg(s, &tc, s->cfg->lr, 1);
        if (!st) st = mixq_train(m, s->ft, NULL, &tc, NULL, NULL);
        if (!st) st = mixq_evaluate(m, s->eval, 256, &v, NULL);
        mixq_model_free(m);
    } else {
        st = quantize_bits(s, s->m, w, a);
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

static mixq_status append_eval(search *s, const eval_rec *r) {
    FILE *f = s->evf;
    fprintf(f, "{\"episode\": %d, \"w\": ", r->episode);
    json_ints(f, r->w, s->env.L);
    fprintf(f, ", \"a\": ");
    json_ints(f, r->a, s->env.L);
    fprintf(f, ", \"acc\": %.17g, \"reward\": %.17g, \"fits\": %s", r->acc, r->reward, r->fits ? "true" : "false");
    for (int k = 0; k < MQ_NMETRIC; k++) fprintf(f, ", \"%s_ratio\": %.17g", mq_metric_names[k], r->ratio[k]);
    fprintf(f, "}\n");
    if (fflush(f) || ferror(f) || fsync(fileno(f)))
        return mq_err(MIXQ_ERR_IO, "%s/evals.jsonl: write failed (%s)", s->dir, strerror(errno));
    return MIXQ_OK;
}

/* Score through the cache; returns the record. */
static mixq_status evaluate_bits(search *s, const int *w, const int *a, int episode, const eval_rec **out,
                                 int *cached) {
    const eval_rec *hit = cache_find(s, w, a);
    if (hit) {
        *out = hit;
        if (cached) *cached = 1;
        return MIXQ_OK;
    }
    double acc;
    mixq_status st = score(s, w, a, &acc);
    if (st) return st;
    eval_rec *r;
    if ((st = rec_add(s, w, a, acc, episode, &r))) return st;
    s->scored++;
    if (cached) *cached = 0;
    *out = r;
    return append_eval(s, r);
}

/* The best record: resource mode, most accurate that fits (then cheaper, then earlier);
 * accuracy mode, cheapest within the allowed drop (then more accurate). */
static const eval_rec *best_rec(const search *s) {
    const eval_rec *b = NULL;
    int M = s->env.metric;
    for (int i = 0; i < s->n_ev; i++) {
        const eval_rec *r = &s->ev[i];
        if (s->cfg->accuracy_mode) {
            if (s->acc0 - r->acc > s->cfg->max_drop) continue;
            if (!b || r->ratio[M] < b->ratio[M] || (r->ratio[M] == b->ratio[M] && r->acc > b->acc)) b = r;
        } else {
            if (!r->fits) continue;
            if (!b || r->acc > b->acc || (r->acc == b->acc && r->ratio[M] < b->ratio[M])) b = r;
        }
    }
    return b;
}

static void progress(search *s, const char *phase, int ep, int eps, const eval_rec *r, int cached) {
    if (!s->fn) return;
    mixq_search_progress p;
    memset(&p, 0, sizeof p);
    p.phase = phase, p.episode = ep, p.episodes = eps, p.cached = cached;
    p.budget_ratio = isfinite(s->env.target) ? s->env.target / s->env.w8a8[s->env.metric] : 0;
    if (r) {
        double sw = 0, sa = 0;
        for (int l = 0; l < s->env.L; l++) sw += r->w[l], sa += r->a[l];
        p.mean_w_bits = sw / s->env.L, p.mean_a_bits = sa / s->env.L;
        p.cost_ratio = r->ratio[s->env.metric];
        p.accuracy = r->acc;
    }
    const eval_rec *b = best_rec(s);
    p.best_accuracy = b ? b->acc : -1;
    p.best_cost_ratio = b ? b->ratio[s->env.metric] : -1;
    p.elapsed_s = mq_now() - s->t0;
    p.eta_s = ep > 0 ? p.elapsed_s / ep * (eps - ep) : 0;
    s->fn(&p, s->user);
}

/* ------------------------------------------------------------------ files */

static mixq_status write_atomic(const search *s, const char *name, const char *text) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = mq_fopen(tmp, "w");
    if (!f) return MIXQ_ERR_IO;
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path))
        return mq_err(MIXQ_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    return MIXQ_OK;
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

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

/* The resolved configuration, one "key": value per line (compared line by line on resume). */
static char *config_text(const search *s, const char *data, uint64_t model_hash) {
    const mixq_search_config *c = s->cfg;
    char *t = mq_malloc(4096, 1, "config text");
    if (!t) return NULL;
    const char *hwtext = mixq_hw_text(s->hw);
    snprintf(t, 4096,
             "{\n  \"mixq_search\": 1,\n  \"model\": \"%s\",\n  \"model_fnv64\": \"%016llx\",\n"
             "  \"data\": \"%s\",\n  \"agent\": \"%s\",\n  \"hw\": \"%s\",\n  \"hw_fnv64\": \"%016llx\",\n"
             "  \"hw_batch\": %d,\n  \"budget\": \"%s\",\n  \"budget_ratio\": %.6g,\n  \"mode\": \"%s\",\n"
             "  \"max_drop\": %g,\n  \"episodes\": %d,\n  \"warmup\": %d,\n  \"bits\": [%d, %d],\n"
             "  \"pin_ends\": %s,\n  \"calib_images\": %d,\n  \"finetune_images\": %d,\n  \"eval_images\": %d,\n"
             "  \"val_images\": %d,\n  \"batch\": %d,\n  \"lr\": %g,\n  \"final_epochs\": %g,\n"
             "  \"final_lr\": %g,\n  \"seed\": %llu,\n  \"custom_reward\": %s,\n"
             "  \"rl\": [%d, %d, %d, %g, %g, %g, %g, %g, %g]\n}\n",
             s->model_path, (unsigned long long)model_hash, data, c->agent, mixq_hw_name(s->hw),
             (unsigned long long)fnv(hwtext, strlen(hwtext), 0xcbf29ce484222325ull),
             c->hw_batch ? c->hw_batch : mixq_hw_batch(s->hw), c->budget ? c->budget : "",
             isfinite(s->env.target) ? s->env.target / s->env.w8a8[s->env.metric] : 0.0,
             c->accuracy_mode ? "accuracy" : "resource", c->max_drop, c->episodes, c->warmup, c->b_min,
             c->b_max, c->pin_ends ? "true" : "false", c->calib_images, c->finetune_images, c->eval_images,
             c->val_images, c->batch, (double)c->lr, (double)c->final_epochs, (double)c->final_lr,
             (unsigned long long)c->seed, c->reward ? "true" : "false", c->rl_hidden, c->rl_batch, c->rl_replay,
             (double)c->rl_actor_lr, (double)c->rl_critic_lr, (double)c->rl_tau, (double)c->rl_gamma,
             (double)c->rl_sigma, (double)c->rl_sigma_decay);
    return t;
}

static mixq_status check_config(const search *s, const char *old, const char *now) {
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

static int json_int_array(const cJSON *v, int *out, int n, int lo, int hi) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n) return 0;
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < lo ||
            e->valuedouble > hi)
            return 0;
        out[i] = (int)e->valuedouble;
    }
    return 1;
}

/* Load evals.jsonl into the cache. A torn last line (killed while writing) is dropped and the
 * file truncated to the good part; a bad line in the middle is an error. */
static mixq_status load_evals(search *s, const char *path) {
    char *t;
    mixq_status st = read_optional(path, &t);
    if (st || !t) return st;
    int L = s->env.L, line = 0;
    int *w = mq_malloc(2 * (size_t)L, sizeof(int), "policy");
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
        cJSON *j = cJSON_Parse(p);
        const cJSON *acc = j ? cJSON_GetObjectItemCaseSensitive(j, "acc") : NULL;
        const cJSON *epi = j ? cJSON_GetObjectItemCaseSensitive(j, "episode") : NULL;
        if (!j || !cJSON_IsNumber(acc) || !cJSON_IsNumber(epi) ||
            !json_int_array(cJSON_GetObjectItemCaseSensitive(j, "w"), w, L, 1, 32) ||
            !json_int_array(cJSON_GetObjectItemCaseSensitive(j, "a"), w + L, L, 1, 32)) {
            st = mq_err(MIXQ_ERR_FORMAT, "%s: line %d is not an evaluation of this run's %d layers", path, line, L);
        } else {
            eval_rec *r;
            st = rec_add(s, w, w + L, acc->valuedouble, (int)epi->valuedouble, &r);
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

static mixq_status write_best_and_pareto(search *s) {
    const eval_rec *b = best_rec(s);
    mixq_status st = MIXQ_OK;
    if (b) {
        char *t = policy_text(s, b->w, b->a);
        if (!t) return MIXQ_ERR_NOMEM;
        st = write_atomic(s, "best_policy.json", t);
        free(t);
        if (st) return st;
    }
    /* Pareto set per metric: no other candidate at least as accurate and at most as costly
     * (strictly better in one) */
    /* each record can appear once per metric: 2 L numbers of up to 2 digits and separators */
    size_t cap = 1024 + (size_t)s->n_ev * MQ_NMETRIC * (size_t)(s->env.L * 8 + 256);
    char *js = mq_malloc(cap, 1, "pareto json"), *csv = mq_malloc(cap, 1, "pareto csv");
    if (!js || !csv) {
        free(js);
        free(csv);
        return MIXQ_ERR_NOMEM;
    }
    size_t nj = (size_t)snprintf(js, cap, "{\n  \"fp32_accuracy\": %.4f,\n  \"budget_metric\": \"%s\",\n  \"pareto\": {",
                                 s->acc0, mq_metric_names[s->env.metric]);
    size_t nc = (size_t)snprintf(csv, cap, "metric,episode,accuracy,latency_ratio,energy_ratio,size_ratio,bitops_ratio,w_bits,a_bits\n");
    for (int k = 0; k < MQ_NMETRIC; k++) {
        nj += (size_t)snprintf(js + nj, cap - nj, "%s\n    \"%s\": [", k ? "," : "", mq_metric_names[k]);
        int first = 1;
        for (int i = 0; i < s->n_ev; i++) {
            const eval_rec *r = &s->ev[i];
            int dominated = 0;
            for (int j = 0; j < s->n_ev && !dominated; j++) {
                const eval_rec *q = &s->ev[j];
                if (q->acc >= r->acc && q->ratio[k] <= r->ratio[k] && (q->acc > r->acc || q->ratio[k] < r->ratio[k]))
                    dominated = 1;
            }
            if (dominated) continue;
            nj += (size_t)snprintf(js + nj, cap - nj, "%s\n      {\"episode\": %d, \"accuracy\": %.4f, \"ratio\": %.6f, \"w\": [",
                                   first ? "" : ",", r->episode, r->acc, r->ratio[k]);
            nc += (size_t)snprintf(csv + nc, cap - nc, "%s,%d,%.4f,%.6f,%.6f,%.6f,%.6f,", mq_metric_names[k], r->episode,
                                   r->acc, r->ratio[0], r->ratio[1], r->ratio[2], r->ratio[3]);
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
            nj += (size_t)snprintf(js + nj, cap - nj, "]}");
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

/* ------------------------------------------------------------------ agents */

/* state.json: {"episode": e, "ckpt": "agent-e.ckpt"} -- the last finished episode. */
static mixq_status read_state(search *s, int *episode) {
    char path[1200];
    snprintf(path, sizeof path, "%s/state.json", s->dir);
    char *t;
    *episode = 0;
    mixq_status st = read_optional(path, &t);
    if (st || !t) return st;
    cJSON *j = cJSON_Parse(t);
    free(t);
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "episode") : NULL;
    if (!cJSON_IsNumber(e) || e->valuedouble < 0)
        st = mq_err(MIXQ_ERR_FORMAT, "%s: not a search state file", path);
    else *episode = (int)e->valuedouble;
    cJSON_Delete(j);
    return st;
}

static mixq_status save_state(search *s, int episode, mq_ddpg *agent) {
    char name[64], path[1200], text[160];
    mixq_status st = MIXQ_OK;
    if (agent) {
        snprintf(name, sizeof name, "agent-%d.ckpt", episode);
        snprintf(path, sizeof path, "%s/%s", s->dir, name);
        if ((st = mq_ddpg_save(agent, path))) return st;
    }
    snprintf(text, sizeof text, "{\"episode\": %d%s%s%s}\n", episode, agent ? ", \"ckpt\": \"" : "",
             agent ? name : "", agent ? "\"" : "");
    if ((st = write_atomic(s, "state.json", text))) return st;
    if (agent && episode > 1) { /* the previous checkpoint is no longer referenced */
        snprintf(path, sizeof path, "%s/agent-%d.ckpt", s->dir, episode - 1);
        unlink(path);
    }
    return write_best_and_pareto(s);
}

/* HAQ: DDPG over 2L steps per episode; random: the same episode loop with uniform actions. */
static mixq_status run_episodes(search *s, int use_ddpg) {
    const mixq_search_config *c = s->cfg;
    const int L = s->env.L, T = 2 * L;
    mq_ddpg *agent = NULL;
    mixq_status st = MIXQ_OK;
    if (use_ddpg) {
        mq_ddpg_config dc;
        mq_ddpg_config_default(&dc, MQ_STATE_DIM, L);
        dc.warmup = c->warmup;
        dc.seed = c->seed;
        if (c->rl_hidden > 0) dc.hidden = c->rl_hidden;
        if (c->rl_batch > 0) dc.batch = c->rl_batch;
        if (c->rl_replay > 0) dc.rmsize = c->rl_replay;
        if (c->rl_actor_lr > 0) dc.actor_lr = c->rl_actor_lr;
        if (c->rl_critic_lr > 0) dc.critic_lr = c->rl_critic_lr;
        if (c->rl_tau > 0) dc.tau = c->rl_tau;
        if (c->rl_gamma > 0) dc.gamma = c->rl_gamma;
        if (c->rl_sigma > 0) dc.sigma0 = c->rl_sigma;
        if (c->rl_sigma_decay > 0) dc.sigma_decay = c->rl_sigma_decay;
        else if (c->episodes - c->warmup < 580) {
            /* HAQ's 0.99 per episode brings sigma from 0.5 to 0.0015 over its 580 learning
             * episodes; a shorter search keeps that end point (and the schedule's shape), or its
             * last episodes would still be 2/3 noise */
            int n = c->episodes - c->warmup > 1 ? c->episodes - c->warmup : 1;
            dc.sigma_decay = (float)pow(0.99, 580.0 / n);
        }
        if ((st = mq_ddpg_create(&dc, &agent))) return st;
    }
    int done = 0;
    if (!st) st = read_state(s, &done);
    if (!st && done > 0 && agent) {
        char path[1200];
        snprintf(path, sizeof path, "%s/agent-%d.ckpt", s->dir, done);
        st = mq_ddpg_load(agent, path);
    }
    float *S = mq_malloc((size_t)(T + 1) * MQ_STATE_DIM, sizeof(float), "episode states");
    float *A = mq_malloc((size_t)T, sizeof(float), "episode actions");
    int *w = mq_malloc(4 * (size_t)L, sizeof(int), "episode bits"), *a = w ? w + L : NULL;
    int *w0 = w ? w + 2 * L : NULL, *a0 = w ? w + 3 * L : NULL;
    if (!st && (!S || !A || !w)) st = MIXQ_ERR_NOMEM;
    for (int ep = done; !st && ep < c->episodes; ep++) {
        mq_rng rng;
        mq_rng_seed(&rng, mq_seed_mix(c->seed, 0x52414e44, (uint64_t)ep)); /* random agent */
        int prev = 8;
        for (int t = 0; t < T; t++) {
            float *st_t = S + (size_t)t * MQ_STATE_DIM;
            mq_env_state(&s->env, t, prev, st_t);
            double act = agent ? mq_ddpg_act(agent, st_t, ep, 1) : (double)mq_rng_uniform(&rng);
            A[t] = (float)act;
            int b = mq_env_bits(&s->env, act);
            if (t % 2 == 0) w0[t / 2] = b;
            else a0[t / 2] = b;
            prev = b;
        }
        mq_env_state(&s->env, T - 1, prev, S + (size_t)T * MQ_STATE_DIM); /* unused terminal s' */
        memcpy(w, w0, sizeof(int) * (size_t)L);
        memcpy(a, a0, sizeof(int) * (size_t)L);
        mq_env_wall(&s->env, w, a);
        const eval_rec *r;
        int cached = 0;
        if ((st = evaluate_bits(s, w, a, ep + 1, &r, &cached))) break;
        if (agent) {
            /* every step gets the episode's reward; the agent's own (pre-wall) actions */
            for (int t = 0; t < T; t++)
                mq_ddpg_store(agent, S + (size_t)t * MQ_STATE_DIM, A[t], (float)r->reward,
                              S + (size_t)(t + 1) * MQ_STATE_DIM, t == T - 1);
            if (ep > c->warmup)
                for (int t = 0; t < T; t++) mq_ddpg_update(agent, NULL);
        }
        if ((st = save_state(s, ep + 1, agent))) break;
        progress(s, "search", ep + 1, c->episodes, r, cached);
    }
    free(S);
    free(A);
    free(w);
    mq_ddpg_free(agent);
    return st;
}

/* Uniform: every (w, a) pair of b_min..b_max (pins applied) that fits; the best is kept. */
static mixq_status run_uniform(search *s) {
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
                if (mq_env_cost(&s->env, w, a, s->env.metric) > s->env.target * (1 + 1e-12)) continue;
                /* for each weight width only the widest activation width that fits */
                if (ab < s->cfg->b_max) {
                    for (int l = 0; l < L; l++) a[l] = ab + 1;
                    mq_env_pin(&s->env, w, a);
                    int wider_fits = mq_env_cost(&s->env, w, a, s->env.metric) <= s->env.target * (1 + 1e-12);
                    for (int l = 0; l < L; l++) a[l] = ab;
                    mq_env_pin(&s->env, w, a);
                    if (wider_fits) continue;
                }
                if (pass == 0) {
                    total++;
                    continue;
                }
                const eval_rec *r;
                int cached = 0;
                if ((st = evaluate_bits(s, w, a, ++ep, &r, &cached))) break;
                if ((st = save_state(s, ep, NULL))) break;
                progress(s, "search", ep, total, r, cached);
            }
    free(w);
    if (!st && total == 0)
        st = mq_err(MIXQ_ERR_ARG, "no uniform policy in %d..%d bits fits the budget", s->cfg->b_min, s->cfg->b_max);
    return st;
}

/* Greedy: score each layer's sensitivity (that layer alone at b_min, the rest at b_max), then
 * lower bits one step at a time on the layer with the smallest accuracy loss per unit of cost
 * saved, until the budget fits; score the result. */
static mixq_status run_greedy(search *s) {
    const int L = s->env.L, M = s->env.metric;
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
        const eval_rec *r;
        int cached = 0;
        if ((st = evaluate_bits(s, w, a, ++ep, &r, &cached))) break;
        sens[k] = s->acc0 - r->acc; /* the layer's loss at b_min */
        if ((st = save_state(s, ep, NULL))) break;
        progress(s, "search", ep, total, r, cached);
    }
    if (!st) {
        for (int i = 0; i < L; i++) w[i] = a[i] = hi;
        mq_env_pin(&s->env, w, a);
        while (mq_env_cost(&s->env, w, a, M) > s->env.target * (1 + 1e-12)) {
            int bk = -1;
            double best = INFINITY;
            for (int k = 0; k < 2 * L; k++) {
                int l = k / 2, *b = k % 2 ? &a[l] : &w[l];
                if (*b <= lo || (s->env.pin_ends && (l == 0 || l == L - 1))) continue;
                double before = mq_env_cost(&s->env, w, a, M);
                (*b)--;
                double saved = before - mq_env_cost(&s->env, w, a, M);
                (*b)++;
                if (saved <= 0) continue;
                /* loss per bit step assumed linear from b_max down to b_min */
                double loss = fmax(sens[k], 0) / (hi - lo) + 1e-9;
                if (loss / saved < best) best = loss / saved, bk = k;
            }
            if (bk < 0) break;
            if (bk % 2) a[bk / 2]--;
            else w[bk / 2]--;
        }
        const eval_rec *r;
        int cached = 0;
        st = evaluate_bits(s, w, a, ++ep, &r, &cached);
        if (!st) st = save_state(s, ep, NULL);
        if (!st) progress(s, "search", ep, total, r, cached);
    }
    free(w);
    free(sens);
    return st;
}

/* ------------------------------------------------------------------ the entry point */

static mixq_status make_dir(const char *d) {
    if (mkdir(d, 0755) && errno != EEXIST) return mq_err(MIXQ_ERR_IO, "cannot create '%s': %s", d, strerror(errno));
    struct stat sb;
    if (stat(d, &sb) || !S_ISDIR(sb.st_mode)) return mq_err(MIXQ_ERR_IO, "'%s' is not a directory", d);
    return MIXQ_OK;
}

/* The best policy on the float model, calibrated, then fine-tuned (QAT) on the whole training
 * split. The fine-tune is kept only if it does not lower the validation accuracy (a network whose
 * batch norms were folded away, e.g. an ONNX export, can lose accuracy at the default rate);
 * *kept and *va0 report it. best.mixq gets the kept model. */
static mixq_status final_finetune(search *s, const char *data, mixq_search_result *res, int *kept, double *va0) {
    const eval_rec *b = best_rec(s);
    *kept = 0, *va0 = -1;
    if (!b) return MIXQ_OK;
    double t0 = mq_now();
    mixq_model *m = NULL;
    mixq_dataset *test = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/best.mixq", s->dir);
    float va = 0, te = 0, before = 0;
    mixq_status st = mixq_model_load(s->model_path, &m);
    if (!st) st = quantize_bits(s, m, b->w, b->a);
    if (!st) st = mixq_model_calibrate(m, s->train, s->cfg->calib_images);
    if (!st) st = mixq_evaluate(m, s->val, 256, &before, NULL);
    if (!st) st = mixq_model_save(m, path);
    va = before;
    float e = s->cfg->final_epochs;
    if (!st && e > 0) {
        mixq_train_config tc;
        train_cfg(s, &tc, s->cfg->final_lr, (int)ceilf(e));
        int steps = (mixq_dataset_count(s->train) + tc.batch - 1) / tc.batch;
        if ((float)tc.epochs != e) tc.max_steps = (int)(e * (float)steps + 0.5f) > 0 ? (int)(e * (float)steps + 0.5f) : 1;
        progress(s, "final", 0, 1, b, 0);
        st = mixq_train(m, s->train, NULL, &tc, NULL, NULL);
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
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_TEST, s->cfg->val_images, s->cfg->seed, &test);
    if (!st) st = mixq_evaluate(m, test, 256, &te, NULL);
    res->final_val_accuracy = 100.0 * va;
    res->final_test_accuracy = 100.0 * te;
    res->final_s = mq_now() - t0;
    *va0 = 100.0 * before;
    mixq_dataset_free(test);
    mixq_model_free(m);
    return st;
}

mixq_status mixq_search(const char *model_path, const char *data, const mixq_search_config *cfg,
                        const char *run_dir, int resume, mixq_search_progress_fn fn, void *user,
                        mixq_search_result *res) {
    if (!model_path || !data || !cfg || !run_dir || !res) return mq_err(MIXQ_ERR_ARG, "mixq_search: NULL argument");
    memset(res, 0, sizeof *res);
    res->final_val_accuracy = res->final_test_accuracy = -1;
    const char *agents[] = {"haq", "random", "uniform", "greedy"};
    int agent = -1;
    for (int i = 0; i < 4; i++)
        if (cfg->agent && !strcmp(cfg->agent, agents[i])) agent = i;
    if (agent < 0)
        return mq_err(MIXQ_ERR_ARG, "unknown agent '%s'; %shint: --agent haq, uniform, random or greedy",
                      cfg->agent ? cfg->agent : "(null)", mq_did_you_mean(cfg->agent, agents, 4));
    if (cfg->episodes < 1 || cfg->warmup < 0 || cfg->eval_images < 1 || cfg->calib_images < 1 ||
        cfg->finetune_images < 0 || cfg->batch < 2)
        return mq_err(MIXQ_ERR_ARG, "search: episodes, eval/calibration images and batch must be positive");
    search S;
    search *s = &S;
    memset(s, 0, sizeof *s);
    s->cfg = cfg, s->model_path = model_path, s->fn = fn, s->user = user;
    snprintf(s->dir, sizeof s->dir, "%s", run_dir);
    s->reward = cfg->reward ? cfg->reward : cfg->accuracy_mode ? guarantee_reward : haq_reward;
    s->reward_user = cfg->reward ? cfg->reward_user : (void *)&cfg->max_drop;
    s->t0 = mq_now();
    char *conf = NULL, *old = NULL;
    uint64_t mh = 0;
    int ft_kept = 0;
    double va_before = -1;
    mixq_status st = mixq_model_load(model_path, &s->m);
    if (!st && mixq_model_is_quantized(s->m))
        st = mq_err(MIXQ_ERR_ARG, "'%s' is already quantized; hint: search from the float model `mixq train` wrote",
                    model_path);
    if (!st) {
        size_t n = 0;
        FILE *f = mq_fopen(model_path, "rb");
        unsigned char buf[65536];
        if (!f) st = MIXQ_ERR_IO;
        mh = 0xcbf29ce484222325ull;
        while (f && (n = fread(buf, 1, sizeof buf, f)) > 0) mh = fnv(buf, n, mh);
        if (f) fclose(f);
    }
    if (!st) st = mixq_hw_load(cfg->hw, &s->hw);
    if (!st) st = mq_env_create(s->m, s->hw, cfg->hw_batch, cfg->b_min, cfg->b_max, cfg->pin_ends, &s->env);
    if (!st && agent == 0) { /* checked here, named as `--rl` names them (ddpg.c says rmsize) */
        mq_ddpg_config dc;
        mq_ddpg_config_default(&dc, MQ_STATE_DIM, s->env.L);
        int batch = cfg->rl_batch > 0 ? cfg->rl_batch : dc.batch, replay = cfg->rl_replay > 0 ? cfg->rl_replay : dc.rmsize;
        if (replay < batch)
            st = mq_err(MIXQ_ERR_ARG, "--rl replay=%d is smaller than the DDPG batch (--rl batch=%d); hint: "
                        "--rl replay=%d or more, or a smaller --rl batch", replay, batch, batch);
    }
    if (!st && (cfg->budget && *cfg->budget)) st = mq_env_set_budget(&s->env, cfg->budget);
    if (!st && !cfg->accuracy_mode && !isfinite(s->env.target))
        st = mq_err(MIXQ_ERR_ARG, "a resource-constrained search needs a budget, e.g. latency=0.5");
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, cfg->val_images, cfg->seed, &s->train);
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_VAL, cfg->val_images, cfg->seed, &s->val);
    if (!st) st = mixq_dataset_load(data, MIXQ_SPLIT_VAL, cfg->val_images, cfg->seed, &s->eval);
    if (!st && cfg->eval_images < mixq_dataset_count(s->eval)) st = mixq_dataset_truncate(s->eval, cfg->eval_images);
    if (!st && cfg->finetune_images > 0) {
        st = mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, cfg->val_images, cfg->seed, &s->ft);
        if (!st && cfg->finetune_images < mixq_dataset_count(s->ft))
            st = mixq_dataset_truncate(s->ft, cfg->finetune_images);
    }
    if (!st) st = make_dir(run_dir);
    if (!st && !(conf = config_text(s, data, mh))) st = MIXQ_ERR_NOMEM;
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    if (!st) st = read_optional(path, &old);
    if (!st) {
        if (old && !resume)
            st = mq_err(MIXQ_ERR_STATE, "%s already holds a search; hint: --resume to continue it, or a new --out",
                        run_dir);
        else if (old) st = check_config(s, old, conf);
        else st = write_atomic(s, "config.json", conf);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/evals.jsonl", run_dir);
        st = load_evals(s, path);
        if (!st && !(s->evf = fopen(path, "a")))
            st = mq_err(MIXQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    /* FP32 reference on the scoring subset */
    if (!st) {
        float v;
        progress(s, "fp32", 0, cfg->episodes, NULL, 0);
        st = mixq_evaluate(s->m, s->eval, 256, &v, NULL);
        s->acc0 = 100.0 * v;
        res->fp32_val_accuracy = s->acc0;
        for (int i = 0; i < s->n_ev; i++) /* cached records' rewards against this reference */
            s->ev[i].reward = s->reward(s->ev[i].acc, s->acc0, s->ev[i].ratio[s->env.metric], s->ev[i].fits,
                                        s->reward_user);
    }
    if (!st) {
        if (agent <= 1) st = run_episodes(s, agent == 0);
        else if (agent == 2) st = run_uniform(s);
        else st = run_greedy(s);
    }
    res->search_s = mq_now() - s->t0;
    if (!st) st = write_best_and_pareto(s);
    const eval_rec *b = st ? NULL : best_rec(s);
    if (!st && !b) {
        char c_target[32];
        if (cfg->accuracy_mode)
            st = mq_err(MIXQ_ERR_NOTFOUND, "no candidate kept the accuracy drop within %g points; hint: "
                        "a larger --max-drop or more --episodes", cfg->max_drop);
        else
            st = mq_err(MIXQ_ERR_NOTFOUND, "no candidate fit the budget (%s = %.3f x W8A8); hint: a larger "
                        "--budget or more --episodes",
                        mq_env_fmt_cost(s->env.metric, s->env.target, c_target, sizeof c_target),
                        s->env.target / s->env.w8a8[s->env.metric]);
    }
    if (!st) {
        res->layers = s->env.L;
        res->candidates = s->scored;
        res->best_val_accuracy = b->acc;
        memcpy(res->ratio, b->ratio, sizeof res->ratio);
        res->budget_ratio = isfinite(s->env.target) ? s->env.target / s->env.w8a8[s->env.metric] : 0;
        st = final_finetune(s, data, res, &ft_kept, &va_before);
    }
    if (!st) {
        char sum[1400];
        snprintf(sum, sizeof sum,
                 "{\n  \"agent\": \"%s\",\n  \"layers\": %d,\n  \"candidates_scored\": %d,\n  \"evaluations\": %d,\n"
                 "  \"fp32_val_accuracy\": %.4f,\n  \"best_val_accuracy\": %.4f,\n  \"final_val_accuracy\": %.4f,\n"
                 "  \"final_test_accuracy\": %.4f,\n  \"val_before_finetune\": %.4f,\n  \"finetune_kept\": %s,\n"
                 "  \"latency_ratio\": %.6f,\n  \"energy_ratio\": %.6f,\n"
                 "  \"size_ratio\": %.6f,\n  \"bitops_ratio\": %.6f,\n  \"budget_ratio\": %.6f,\n"
                 "  \"search_s\": %.1f,\n  \"final_s\": %.1f\n}\n",
                 cfg->agent, res->layers, res->candidates, s->n_ev, res->fp32_val_accuracy, res->best_val_accuracy,
                 res->final_val_accuracy, res->final_test_accuracy, va_before, ft_kept ? "true" : "false",
                 res->ratio[0], res->ratio[1], res->ratio[2],
                 res->ratio[3], res->budget_ratio, res->search_s, res->final_s);
        st = write_atomic(s, "summary.json", sum);
    }
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
    mixq_model_free(s->m);
    return st;
}
