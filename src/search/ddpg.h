/* HAQ's DDPG agent (Wang et al., CVPR 2019; mit-han-lab/haq lib/rl/ddpg.py) in plain C (internal).
 *
 * One continuous action in [0,1] per step. Actor: Linear(S->H) ReLU Linear(H->H) ReLU
 * Linear(H->1) Sigmoid. Critic: ReLU(Linear_s(S->H)(s) + Linear_a(1->H)(a)) -> Linear(H->H) ReLU
 * -> Linear(H->1); Linear_s and Linear_a each have their own bias, as HAQ's fc11/fc12 do. All
 * layers PyTorch-default initialised, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases,
 * from the agent's seeded RNG; the target networks start as copies.
 *
 * Deterministic: single-threaded, fixed summation orders, one RNG (xoshiro256**) for the
 * initialisation, the exploration noise and the minibatch sampling. Same config and seed, same
 * calls -> bit-identical actions and weights. A checkpoint (mq_ddpg_save) holds everything needed
 * to continue bit-identically. */
#ifndef MIXQ_SEARCH_DDPG_H
#define MIXQ_SEARCH_DDPG_H

#include <stdint.h>
#include <stdio.h>

#include "mixq/mixq.h"

typedef struct mq_ddpg_config {
    int state_dim;     /* e.g. 10 */
    int hidden;        /* 300 */
    float actor_lr;    /* 1e-4, Adam (betas 0.9/0.999, eps 1e-8, no weight decay) */
    float critic_lr;   /* 1e-3 */
    float tau;         /* 0.01: soft update of both target nets after every gradient step */
    float gamma;       /* 1.0 */
    int batch;         /* 64 */
    int rmsize;        /* replay capacity in transitions (ring buffer), e.g. 128 * layers */
    int warmup;        /* episodes with uniform random actions: episode <= warmup (0-based) */
    float sigma0;      /* 0.5 */
    float sigma_decay; /* 0.99: sigma = max(sigma_min, sigma0 * decay^(episode - warmup)) */
    float sigma_min;   /* 0 (HAQ): the noise floor */
    uint64_t seed;
} mq_ddpg_config;

/* HAQ's values: hidden 300, lr 1e-4 / 1e-3, tau 0.01, gamma 1, batch 64, rmsize 128 * layers,
 * warmup 20, sigma 0.5 decaying by 0.99, seed 234. */
void mq_ddpg_config_default(mq_ddpg_config *c, int state_dim, int layers);

typedef struct mq_ddpg mq_ddpg;

/* MIXQ_ERR_ARG for an out-of-range config, MIXQ_ERR_NOMEM if an allocation fails. */
mixq_status mq_ddpg_create(const mq_ddpg_config *c, mq_ddpg **out);
void mq_ddpg_free(mq_ddpg *d); /* NULL harmless */

/* Action in [0,1] for state s[state_dim] at `episode` (0-based). explore != 0: uniform random
 * while episode <= warmup; afterwards mu(s) plus truncated-normal noise, i.e. a sample of
 * N(mu(s), sigma^2) truncated to [0,1] (inverse CDF, one RNG draw), sigma = max(sigma_min,
 * sigma0 * sigma_decay^(episode - warmup)). explore == 0: mu(s), no RNG use. */
float mq_ddpg_act(mq_ddpg *d, const float *s, int episode, int explore);
/* The exploration sigma at `episode` (after the warm-up): max(sigma_min, sigma0 sigma_decay^(episode
 * - warmup)). */
float mq_ddpg_sigma(const mq_ddpg *d, int episode);

/* Store a transition (copied) in the replay ring buffer; the oldest is overwritten when full.
 * s_next may be NULL (stored as zeros; only sensible with done != 0, where it is not used). */
void mq_ddpg_store(mq_ddpg *d, const float *s, float a, float r, const float *s_next, int done);

/* One gradient step on a minibatch of `batch` distinct transitions drawn uniformly from the
 * buffer. No-op returning 0 while fewer than `batch` are stored. Rewards are normalised by a
 * moving baseline b <- b + 0.5 (mean(batch r) - b) (the first batch sets b = mean), r~ = r - b;
 * critic target y = r~ + gamma (1 - done) Q'(s', mu'(s')); critic loss MSE(Q(s,a), y); then the
 * actor loss -mean Q(s, mu(s)) with the just-updated critic (as HAQ); Adam on both; then the soft
 * update t <- t (1 - tau) + p tau of both targets. Returns 1 if an update happened; *critic_loss
 * (optional) gets the critic's loss before its step. */
int mq_ddpg_update(mq_ddpg *d, float *critic_loss);

/* Checkpoint: weights, target weights, Adam moments and step counts, replay buffer contents and
 * position, reward baseline and whether it is set, RNG state. Native-endian binary, magic
 * "MQDDPG", version, the dims (state_dim, hidden, batch, rmsize) checked on load. Save writes
 * path.tmp then renames it over path. Load needs an agent created with the same dims; on any
 * failure (MIXQ_ERR_IO, MIXQ_ERR_FORMAT naming the file) the agent is left unchanged. */
mixq_status mq_ddpg_save(const mq_ddpg *d, const char *path);
mixq_status mq_ddpg_load(mq_ddpg *d, const char *path);
/* The same record on an open stream, for a file holding several agents (AutoQ's two): write
 * (MIXQ_ERR_IO naming `name`), and read one record from f's position, the agent unchanged on any
 * failure (nothing checks what follows the record). */
mixq_status mq_ddpg_write(const mq_ddpg *d, FILE *f, const char *name);
mixq_status mq_ddpg_read(mq_ddpg *d, FILE *f, const char *name);

/* ---- test hooks (tests/test_ddpg.c) */
/* On n <= batch rows S[n][state_dim], A[n], Y[n]: the critic loss MSE(Q(S,A), Y) and its gradient
 * w.r.t. the critic's parameters, and the actor loss -mean Q(S, mu(S)) and its gradient w.r.t.
 * the actor's parameters (the same code paths as mq_ddpg_update; no parameter changes, no RNG
 * use). Gradients may be NULL. */
mixq_status mq_ddpg_debug_grads(mq_ddpg *d, int n, const float *S, const float *A, const float *Y,
                                double *critic_loss, float *critic_grad, double *actor_loss,
                                float *actor_grad);
/* The parameter vector `which` (0 actor, 1 critic, 2 target actor, 3 target critic), writable,
 * and its length; NULL for another `which`. */
float *mq_ddpg_debug_params(mq_ddpg *d, int which, long *count);

#endif
