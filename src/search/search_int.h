/* The search core shared by every agent (internal): the search state, the scoring cache, run
 * directory state and the agent interface.
 *
 * An agent is one table entry (mq_agent, registered in search.c's table): its name, a run
 * function that proposes candidates and scores them through mq_search_evaluate (the cache, the
 * evals.jsonl record and the reward live there), its settings for config.json (so --resume
 * refuses a run made with others), and, if it has state beyond the cache, checkpoint save/load
 * functions that mq_search_save_state / mq_search_read_state call with s->agent_state.
 *
 * Kill-safety contract for agents: after each episode (or candidate) the agent calls
 * mq_search_save_state(s, episode). A resumed run calls mq_search_read_state first and
 * continues after the episode it returns, from the checkpoint, and re-proposes the episode that
 * was in flight: its candidates come back from the cache (their records carry the episode that
 * scored them, so an agent can tell "scored by this very episode before the kill" from "scored
 * by an earlier episode"). Same seed, same settings -> the same evals.jsonl, interrupted or not.
 */
#ifndef MIXQ_SEARCH_INT_H
#define MIXQ_SEARCH_INT_H

#include <stdint.h>
#include <stdio.h>

#include "quant/mixture.h"
#include "search/env.h"

/* One scored candidate. */
typedef struct mq_rec {
    int *w, *a;          /* [L] weight and activation bits (per-kernel: w = each layer's kernels'
                            mean width, rounded) */
    int *kb;             /* per-kernel weight bits [env.koff[L]], or NULL (layer-wise) */
    double acc;          /* validation accuracy on the scoring subset, % */
    double reward;       /* the run's reward (mixq_search_config.reward) */
    double ratio[MQ_NMETRIC];
    int fits;            /* every budget holds */
    int episode;         /* 1-based episode that scored it */
    uint64_t hash;
    int next;            /* next record in the same hash bucket, -1 */
} mq_rec;

typedef struct mq_search mq_search;

typedef struct mq_agent {
    const char *name;
    const char *about;   /* one line, for messages */
    int episodic;        /* proposes cfg->episodes candidates (others define how many) */
    /* Checks of the agent's settings, before any data is loaded (NULL: none). */
    mixq_status (*check)(mq_search *s);
    /* The agent's settings as JSON members ("key": value, ...) for config.json (NULL: none). */
    void (*config)(const mq_search *s, char *buf, size_t n);
    mixq_status (*run)(mq_search *s);
    /* State beyond the cache, saved as agent-<episode>.ckpt (NULL: none). */
    mixq_status (*ckpt_save)(const void *state, const char *path);
    mixq_status (*ckpt_load)(void *state, const char *path);
    /* A budget is optional (releq): without one, every candidate fits and the best record is the
     * highest-reward one. Otherwise resource mode needs a budget. */
    int budget_optional;
    /* Checks that need the budget, after it is set and before any data is loaded (NULL: none). */
    mixq_status (*ready)(mq_search *s);
    /* The agent's reward when cfg->reward is NULL, called with the mq_search as user (NULL: the
     * core's, HAQ's or the accuracy-guaranteed one). */
    mixq_reward_fn reward;
} mq_agent;

struct mq_search {
    const mixq_search_config *cfg;
    const mq_agent *agent;
    void *agent_state;        /* what the agent's ckpt functions take; set by its run */
    char dir[1024];
    const char *model_path;
    mq_env env;
    mixq_hw *hw;
    mixq_dataset *train, *val, *eval, *ft;
    uint64_t split_seed;      /* of train, val, eval and ft (mixq_model_split_seed) */
    mixq_model *fp;           /* the float model: never changed (fine-tuned candidates clone it) */
    mixq_model *m;            /* calibration-only scoring: re-quantized per candidate (exact) */
    double acc0;              /* FP32 accuracy on the scoring subset, % */
    mq_rec *ev;
    int n_ev, cap_ev;
    int *heads, n_heads;      /* hash buckets of ev (n_heads a power of two) */
    int cache_hits;           /* episodes whose candidate came from the cache (in state.json) */
    int ep0;                  /* episodes already done when this process started (for the ETA) */
    double t_before;          /* search seconds spent by earlier processes of this run (state.json) */
    FILE *evf;
    mixq_reward_fn reward;
    void *reward_user;
    double t0;
    double agent_s;           /* seconds this process spent in the agent, for agents that time
                                 themselves (autoq); -1: not timed */
    double score_s;           /* seconds this process spent scoring candidates */
    mixq_search_progress_fn fn;
    void *user;
    int report_failed;        /* report.html could not be written (said once) */
    int workers_lost;         /* MPI worker ranks dropped (timed out) */
};

/* A list of n widths given by flag (config key `key`; n 0: none given) checked: at least
 * min_count and at most 8, each in cfg's b_min..b_max, distinct and ascending. Errors name the
 * agent, the flag and the key. */
mixq_status mq_search_check_widths(const mq_search *s, const char *flag, const char *key, const int *w, int n,
                                   int min_count);
/* cfg->a_bit_set (ebs, hawq: the activations' own widths) by mq_search_check_widths (the lowest
 * is the environment's activation floor). */
mixq_status mq_search_check_a_bit_set(const mq_search *s, int min_count);
/* `"a_bit_set": [w, ...], ` for config.json when the set is given, else "" (so a run without it
 * keeps the configuration it had, and resumes). */
void mq_search_a_bit_set_json(const mq_search *s, char *buf, size_t n);

/* The record of bits w, a, or NULL. */
const mq_rec *mq_search_find(const mq_search *s, const int *w, const int *a);
/* Score bits w, a through the cache; *cached (optional) = 1 if the record already existed. A new
 * record is appended to evals.jsonl (fsynced) before this returns. */
mixq_status mq_search_evaluate(mq_search *s, const int *w, const int *a, int episode, const mq_rec **out,
                               int *cached);
/* The same for per-kernel weight bits kb[env.koff[L]] (layer l's kernels at kb + koff[l]) and
 * activation bits a[L]; a policy whose layers' kernels all agree is the layer-wise record. The
 * record's costs come from mixq_hw_cost_kernels, and evals.jsonl gains "kw". */
const mq_rec *mq_search_find_kernels(const mq_search *s, const int *kb, const int *a);
mixq_status mq_search_evaluate_kernels(mq_search *s, const int *kb, const int *a, int episode, const mq_rec **out,
                                       int *cached);
/* A round of proposals scored at once (over the MPI ranks when there are several): c[i].w, a
 * (and kb, or NULL) and episode in; rec and cached out. Records are added in proposal order,
 * so evals.jsonl does not depend on which rank scored what. cached: the record existed before
 * the call or an earlier proposal of the batch is the same candidate. */
typedef struct mq_cand {
    const int *w, *a, *kb;
    int episode;
    const mq_rec *rec;
    int cached;
} mq_cand;
mixq_status mq_search_evaluate_batch(mq_search *s, mq_cand *c, int n);
/* Proposals per round: cfg->parallel, or the number of MPI ranks. */
int mq_search_parallel(const mq_search *s);
/* The last finished episode from state.json (0 for a new run), with the agent's checkpoint
 * loaded into s->agent_state when the agent has one, and the cache-hit count restored. */
mixq_status mq_search_read_state(mq_search *s, int *episode);
/* After episode `episode` finished: the agent's checkpoint (if any), then state.json pointing at
 * it, then best_policy.json and the Pareto files. */
mixq_status mq_search_save_state(mq_search *s, int episode);
/* A file of the run directory, written atomically (a temporary file, fsync, rename). */
mixq_status mq_search_write_file(const mq_search *s, const char *name, const char *text);
/* *text = a run directory file's contents (malloc'ed), or NULL (and MIXQ_OK) when it does not
 * exist. */
mixq_status mq_search_read_file(const mq_search *s, const char *name, char **text);
/* The training settings candidates are fine-tuned with (mixq_train_config_default, SGD, at lr
 * for `epochs`, the run's batch and seed). */
void mq_search_train_cfg(const mq_search *s, mixq_train_config *tc, float lr, int epochs);
/* Budget i of a sweep of n from lo to hi: evenly spaced, the last exactly hi (hawq, ebs). */
double mq_search_sweep_budget(double lo, double hi, int i, int n);
/* Progress callback for a candidate (r may be NULL). */
void mq_search_progress(mq_search *s, const char *phase, int ep, int eps, const mq_rec *r, int cached);

/* HAQ's exploration settings (--rl sigma_min, penalty, redraw, store) and DDPG configuration
 * (--rl, HAQ's defaults) of a run, shared by haq and autoq (agent_haq.c). */
typedef struct mq_haq_settings {
    float sigma_min, penalty;
    int redraw, store_post;
} mq_haq_settings;
mq_haq_settings mq_haq_settings_of(const mq_search *s);
struct mq_ddpg_config;
void mq_haq_ddpg_config(const mq_search *s, struct mq_ddpg_config *dc);

/* EBS (agent_ebs.c): E[C_k] / W8A8_k of metric k for model m with mixtures (src/quant/mixture.c)
 * on env e's layers, under the soft strengths r = softmax(alpha), s = softmax(beta):
 * sum_l sum_i sum_j r_{l,i} s_{l,j} grid[l][k][b_i][b_j] / W8A8_k. With d_alpha, d_beta
 * ([L][MQ_MIX_MAXB]) not NULL, adds g times its gradient through the softmaxes. */
double mq_ebs_expected_cost(mixq_model *m, const mq_env *e, int k, double g, double (*d_alpha)[MQ_MIX_MAXB],
                            double (*d_beta)[MQ_MIX_MAXB]);

/* The agents (search.c lists them in its table). */
extern const mq_agent mq_agent_haq, mq_agent_random, mq_agent_uniform, mq_agent_greedy, mq_agent_hawq,
    mq_agent_releq, mq_agent_autoq, mq_agent_ebs;

#endif
