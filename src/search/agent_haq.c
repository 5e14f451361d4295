/* HAQ (DDPG over 2 L steps per episode) and random search (the same episode loop with uniform
 * random actions), behind the agent interface (search_int.h).
 *
 * An episode: for each layer a weight-bits step then an activation-bits step; the state is HAQ's
 * embedding (env.h), an action a in [0, 1] maps to bits; the walled policy is scored and every
 * step of the episode gets its reward. HAQ's own algorithm stops exploring on short searches
 * (measured: bench/results/haq_exploration.md). What changes it, each a setting (--rl):
 *   sigma_min  a noise floor (default half a bit's slice of the action range): HAQ's sigma
 *              decays to far below one bit, so late episodes cannot move any step;
 *   penalty    the agent's reward loses `penalty` x (bits the wall cut / bits it could cut):
 *              otherwise asking for 8 bits everywhere costs nothing (the wall pays the
 *              budget), the actor saturates at 8 and the wall maps every request to one policy;
 *   store_post the replay buffer holds the actions of the bits actually scored, with the
 *              states they give, not the requests the wall overrode;
 *   redraw     an episode whose walled policy an earlier episode already scored draws its
 *              actions again (up to `redraw` times), so episodes score distinct candidates.
 *              A candidate scored by this same episode before a kill counts as new, so a
 *              resumed run replays exactly. Random search redraws too (same candidate budget).
 * All off gives HAQ's algorithm (with the decided quirks of env.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "search/ddpg.h"
#include "search/search_int.h"

typedef mq_haq_settings haq_settings;

mq_haq_settings mq_haq_settings_of(const mq_search *s) {
    const mixq_search_config *c = s->cfg;
    haq_settings h;
    const float slice = 1.0f / (float)(c->b_max - c->b_min + 1);
    h.sigma_min = c->rl_sigma_min >= 0 ? c->rl_sigma_min : 0.5f * slice;
    h.penalty = c->rl_penalty >= 0 ? c->rl_penalty : 1.0f;
    h.redraw = c->rl_redraw >= 0 ? c->rl_redraw : 8;
    h.store_post = c->rl_store_post >= 0 ? c->rl_store_post : 1;
    return h;
}

void mq_haq_ddpg_config(const mq_search *s, mq_ddpg_config *dc) {
    const mixq_search_config *c = s->cfg;
    mq_ddpg_config_default(dc, MQ_STATE_DIM, s->env.L);
    dc->warmup = c->warmup;
    dc->seed = c->seed;
    if (c->rl_hidden > 0) dc->hidden = c->rl_hidden;
    if (c->rl_batch > 0) dc->batch = c->rl_batch;
    if (c->rl_replay > 0) dc->rmsize = c->rl_replay;
    if (c->rl_actor_lr > 0) dc->actor_lr = c->rl_actor_lr;
    if (c->rl_critic_lr > 0) dc->critic_lr = c->rl_critic_lr;
    if (c->rl_tau > 0) dc->tau = c->rl_tau;
    if (c->rl_gamma > 0) dc->gamma = c->rl_gamma;
    if (c->rl_sigma > 0) dc->sigma0 = c->rl_sigma;
    if (c->rl_sigma_decay > 0) dc->sigma_decay = c->rl_sigma_decay;
    else if (c->episodes - c->warmup < 580) {
        /* HAQ's 0.99 per episode brings sigma from 0.5 to 0.0015 over its 580 learning
         * episodes; a shorter search keeps that end point (and the schedule's shape) */
        int n = c->episodes - c->warmup > 1 ? c->episodes - c->warmup : 1;
        dc->sigma_decay = (float)pow(0.99, 580.0 / n);
    }
    dc->sigma_min = mq_haq_settings_of(s).sigma_min;
}

static mixq_status haq_check(mq_search *s) {
    mq_ddpg_config dc;
    mq_haq_ddpg_config(s, &dc);
    if (dc.rmsize < dc.batch) /* named as --rl names them */
        return mq_err(MIXQ_ERR_ARG, "--rl replay=%d is smaller than the DDPG batch (--rl batch=%d); hint: "
                      "--rl replay=%d or more, or a smaller --rl batch", dc.rmsize, dc.batch, dc.batch);
    return MIXQ_OK;
}

static void explore_config(const mq_search *s, char *buf, size_t n) {
    haq_settings h = mq_haq_settings_of(s);
    snprintf(buf, n, "\"redraw\": %d", h.redraw);
}

static void haq_config(const mq_search *s, char *buf, size_t n) {
    mq_ddpg_config dc;
    mq_haq_ddpg_config(s, &dc);
    haq_settings h = mq_haq_settings_of(s);
    snprintf(buf, n,
             "\"hidden\": %d, \"batch\": %d, \"replay\": %d, \"actor_lr\": %g, \"critic_lr\": %g, "
             "\"tau\": %g, \"gamma\": %g, \"sigma\": %g, \"sigma_decay\": %.9g, \"sigma_min\": %g, "
             "\"penalty\": %g, \"redraw\": %d, \"store_post\": %d",
             dc.hidden, dc.batch, dc.rmsize, (double)dc.actor_lr, (double)dc.critic_lr, (double)dc.tau,
             (double)dc.gamma, (double)dc.sigma0, (double)dc.sigma_decay, (double)dc.sigma_min,
             (double)h.penalty, h.redraw, h.store_post);
}

static mixq_status ckpt_save(const void *agent, const char *path) { return mq_ddpg_save(agent, path); }
static mixq_status ckpt_load(void *agent, const char *path) { return mq_ddpg_load(agent, path); }

/* Episodes in rounds of k = mq_search_parallel proposals (1: HAQ's loop): each episode of a
 * round acts from the same agent (its own noise, drawn in episode order), the round is scored
 * at once (over the MPI ranks), then every episode's transitions are stored and the updates of
 * the whole round run. A proposal the cache or an earlier proposal of the round already holds is
 * drawn again (redraw). State is saved after each round, so a resumed run restarts the round. */
static mixq_status run_episodes(mq_search *s, int use_ddpg) {
    const mixq_search_config *c = s->cfg;
    const int L = s->env.L, T = 2 * L, K = mq_search_parallel(s);
    const haq_settings h = mq_haq_settings_of(s);
    mq_ddpg *agent = NULL;
    mixq_status st = MIXQ_OK;
    if (use_ddpg) {
        mq_ddpg_config dc;
        mq_haq_ddpg_config(s, &dc);
        if ((st = mq_ddpg_create(&dc, &agent))) return st;
        s->agent_state = agent;
    }
    int done = 0;
    st = mq_search_read_state(s, &done);
    float *S = mq_malloc((size_t)K * (T + 1) * MQ_STATE_DIM, sizeof(float), "episode states");
    float *A = mq_malloc((size_t)K * T, sizeof(float), "episode actions");
    int *w = mq_malloc((size_t)K * 4 * L, sizeof(int), "episode bits");
    mq_cand *cand = mq_calloc((size_t)K, sizeof *cand, "round");
    int *own = mq_calloc((size_t)K, sizeof(int), "round");
    if (!st && (!S || !A || !w || !cand || !own)) st = MIXQ_ERR_NOMEM;
    /* bits the wall can cut at most: every step of every unpinned layer down to b_min */
    const int pinned = s->env.pin_ends ? 2 : 0;
    const double cuttable = (double)(2 * (L - pinned) * (c->b_max - c->b_min));
    for (int ep0 = done; !st && ep0 < c->episodes; ep0 += K) {
        const int k = MQ_MIN(K, c->episodes - ep0);
        for (int j = 0; j < k; j++) {
            const int ep = ep0 + j;
            float *Sj = S + (size_t)j * (T + 1) * MQ_STATE_DIM, *Aj = A + (size_t)j * T;
            int *wj = w + (size_t)j * 4 * L, *aj = wj + L, *w0 = wj + 2 * L, *a0 = wj + 3 * L;
            mq_rng rng; /* the random agent's actions */
            mq_rng_seed(&rng, mq_seed_mix(c->seed, 0x52414e44, (uint64_t)ep));
            for (int draw = 0;; draw++) {
                int prev = 8;
                for (int t = 0; t < T; t++) {
                    float *st_t = Sj + (size_t)t * MQ_STATE_DIM;
                    mq_env_state(&s->env, t, prev, st_t);
                    double act = agent ? mq_ddpg_act(agent, st_t, ep, 1) : (double)mq_rng_uniform(&rng);
                    Aj[t] = (float)act;
                    int b = mq_env_bits(&s->env, act);
                    if (t % 2 == 0) w0[t / 2] = b;
                    else a0[t / 2] = b;
                    prev = b;
                }
                memcpy(wj, w0, sizeof(int) * (size_t)L);
                memcpy(aj, a0, sizeof(int) * (size_t)L);
                mq_env_wall(&s->env, wj, aj);
                /* scored by an earlier episode, or proposed earlier in this round: draw again (a
                 * record of this very episode is its own candidate, scored before a kill: a
                 * resumed run takes it as the uninterrupted one did) */
                const mq_rec *hit = mq_search_find(s, wj, aj);
                int seen = hit && hit->episode < ep + 1;
                for (int i = 0; i < j && !seen; i++)
                    seen = !memcmp(wj, w + (size_t)i * 4 * L, sizeof(int) * 2 * (size_t)L);
                own[j] = !hit || hit->episode == ep + 1;
                if (seen && draw < h.redraw) continue;
                break;
            }
            cand[j] = (mq_cand){wj, aj, NULL, ep + 1, NULL, 0};
        }
        if ((st = mq_search_evaluate_batch(s, cand, k))) break;
        int updates = 0;
        for (int j = 0; j < k; j++) {
            const int ep = ep0 + j;
            const mq_rec *r = cand[j].rec;
            /* a candidate scored by an earlier episode (or an earlier one of the round) */
            cand[j].cached = !own[j] || r->episode < ep + 1;
            if (cand[j].cached) s->cache_hits++;
            if (!agent) continue;
            float *Sj = S + (size_t)j * (T + 1) * MQ_STATE_DIM, *Aj = A + (size_t)j * T;
            const int *wj = w + (size_t)j * 4 * L, *aj = wj + L, *w0 = wj + 2 * L, *a0 = wj + 3 * L;
            double cut = 0;
            for (int l = 0; l < L; l++) cut += (w0[l] - wj[l]) + (a0[l] - aj[l]);
            const float reward = (float)(r->reward - h.penalty * (cuttable > 0 ? cut / cuttable : 0));
            if (h.store_post) { /* the bits actually scored, and the states they lead through */
                int prev = 8;
                for (int t = 0; t < T; t++) {
                    const int b = t % 2 == 0 ? wj[t / 2] : aj[t / 2];
                    mq_env_state(&s->env, t, prev, Sj + (size_t)t * MQ_STATE_DIM);
                    if (mq_env_bits(&s->env, Aj[t]) != b) Aj[t] = mq_env_action(&s->env, b);
                    prev = b;
                }
            }
            /* the terminal s' (done: never used) */
            mq_env_state(&s->env, T - 1, h.store_post ? aj[L - 1] : a0[L - 1], Sj + (size_t)T * MQ_STATE_DIM);
            for (int t = 0; t < T; t++)
                mq_ddpg_store(agent, Sj + (size_t)t * MQ_STATE_DIM, Aj[t], reward,
                              Sj + (size_t)(t + 1) * MQ_STATE_DIM, t == T - 1);
            if (ep > c->warmup) updates += T;
        }
        for (int u = 0; u < updates; u++) mq_ddpg_update(agent, NULL);
        if ((st = mq_search_save_state(s, ep0 + k))) break;
        for (int j = 0; j < k; j++) mq_search_progress(s, "search", ep0 + j + 1, c->episodes, cand[j].rec, cand[j].cached);
    }
    free(S);
    free(A);
    free(w);
    free(cand);
    free(own);
    mq_ddpg_free(agent);
    s->agent_state = NULL;
    return st;
}

static mixq_status run_haq(mq_search *s) { return run_episodes(s, 1); }
static mixq_status run_random(mq_search *s) { return run_episodes(s, 0); }

const mq_agent mq_agent_haq = {"haq", "HAQ's DDPG over per-layer weight and activation bits", 1, haq_check,
                               haq_config, run_haq, ckpt_save, ckpt_load, 0, NULL, NULL};
const mq_agent mq_agent_random = {"random", "uniform random per-layer bits, walled like HAQ's", 1, NULL,
                                  explore_config, run_random, NULL, NULL, 0, NULL, NULL};
