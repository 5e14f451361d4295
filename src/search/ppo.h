/* ReLeQ's PPO agent (Elthakeb et al., arXiv 1811.01704; he-actlab/releq RPolicy_net) in plain C
 * (internal).
 *
 * A categorical policy over n_act actions on a single-layer LSTM trunk carried across the steps
 * of an episode (h and c start at zero). Gate order i, f, g, o; c = f c' + i g, h = o tanh(c).
 * Policy head: Linear(H->P) ReLU Linear(P->P) ReLU, the features divided by the temperature,
 * then Linear(P->n_act) and a softmax. Value head: Linear(H->P) ReLU Linear(P->V) ReLU
 * Linear(V->1). Both heads read the same h, and the trunk learns from both.
 *
 * PPO-clip, one update per episode over its T transitions (ReLeQ's all-layers driver): the
 * reward comes at the last step, advantages by GAE(gamma, lambda) from the values of the acting
 * pass, returns = advantages + values; `epochs` full-batch Adam steps (betas 0.9/0.999, eps 1e-5
 * as ReLeQ's TF optimiser) on
 *   loss = mean_t [ -min(rho A, clip(rho, 1 - eps, 1 + eps) A) + vf (V - R)^2 - ent H(pi) ],
 * rho = pi(a|s) / pi_old(a|s), gradients by hand (BPTT through the LSTM).
 *
 * Everything in double, single-threaded, fixed summation orders, one RNG (xoshiro256**) for the
 * initialisation and the action draws: same config and seed, same calls -> bit-identical actions
 * and weights. A checkpoint holds everything needed to continue bit-identically. */
#ifndef MIXQ_SEARCH_PPO_H
#define MIXQ_SEARCH_PPO_H

#include <stddef.h>
#include <stdint.h>

#include "mixq/mixq.h"

typedef struct mq_ppo_config {
    int in_dim;         /* state size (ReLeQ: 8) */
    int n_act;          /* actions (ReLeQ: 5, the bit set) */
    int hidden;         /* LSTM units (128) */
    int head;           /* policy head width and the value head's first layer (128) */
    int vhead;          /* the value head's second layer (64) */
    int max_steps;      /* longest episode */
    double temp;        /* softmax temperature (0.5) */
    double clip;        /* PPO clip epsilon (0.3) */
    double vf_coef;     /* value loss coefficient (1) */
    double ent_coef;    /* entropy bonus coefficient (0.01) */
    double lr;          /* Adam learning rate (1e-4) */
    double gamma;       /* discount (0.9) */
    double lambda;      /* GAE lambda (1) */
    int epochs;         /* Adam steps per episode (1) */
    uint64_t seed;
} mq_ppo_config;

/* ReLeQ's values for in_dim inputs, n_act actions and episodes of up to max_steps steps. */
void mq_ppo_config_default(mq_ppo_config *c, int in_dim, int n_act, int max_steps);

typedef struct mq_ppo mq_ppo;

/* MIXQ_ERR_ARG for an out-of-range config (named), MIXQ_ERR_NOMEM if an allocation fails.
 * Weights PyTorch-default initialised (U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the LSTM's
 * U(-1/sqrt(H), 1/sqrt(H))), the forget-gate bias +1 (TensorFlow's LSTMCell). */
mixq_status mq_ppo_create(const mq_ppo_config *c, mq_ppo **out);
void mq_ppo_free(mq_ppo *p); /* NULL harmless */

/* Start an episode: h = c = 0, no transitions. */
void mq_ppo_begin(mq_ppo *p);
/* One step on state x[in_dim]: the LSTM advances, an action is drawn from the softmax (one RNG
 * draw; greedy != 0: the most probable action, no draw). The transition is stored. Returns the
 * action, or -1 when the episode already has max_steps steps. probs (optional) gets the policy. */
int mq_ppo_step(mq_ppo *p, const double *x, int greedy, double *probs);
/* End the episode with `reward` at its last step: GAE, returns and the PPO update(s). Returns the
 * loss of the first epoch (before its step). A no-op returning 0 on an empty episode. */
double mq_ppo_finish(mq_ppo *p, double reward);
/* Batched rounds (--parallel k): an episode's acting record, taken after its steps, then k of
 * them ended together: GAE per episode, and each epoch one Adam step on the mean of their
 * gradients. mq_ppo_traj_alloc sizes one for max_steps; mq_ppo_take copies the episode just
 * acted (and clears it, as mq_ppo_finish does). With k = 1 mq_ppo_finish_all is mq_ppo_finish. */
typedef struct mq_ppo_traj {
    int T;
    double *x, *logp, *v;       /* [T][in_dim], [T], [T] */
    int *act;                   /* [T] */
    double reward;
} mq_ppo_traj;
mixq_status mq_ppo_traj_alloc(const mq_ppo *p, mq_ppo_traj *t);
void mq_ppo_traj_free(mq_ppo_traj *t);
void mq_ppo_take(mq_ppo *p, mq_ppo_traj *t);
double mq_ppo_finish_all(mq_ppo *p, const mq_ppo_traj *t, int k);

/* Checkpoint: the dims and settings, weights, Adam moments and step count, RNG state, and an
 * agent's extra bytes (n_extra of them, checked on load). Native-endian binary, magic "MQPPO",
 * version. Save writes path.tmp then renames it. On a load failure (MIXQ_ERR_IO, MIXQ_ERR_FORMAT
 * naming the file and what differs) the agent and extra are left unchanged. */
mixq_status mq_ppo_save(const mq_ppo *p, const char *path, const void *extra, size_t n_extra);
mixq_status mq_ppo_load(mq_ppo *p, const char *path, void *extra, size_t n_extra);

/* ---- test hooks (tests/test_releq.c) */
/* The loss of an update on a T-step sequence X[T][in_dim] with actions act[T], the behaviour
 * policy's log-probabilities old_logp[T], advantages adv[T] and returns ret[T], and its
 * gradient w.r.t. every parameter (grad[count], may be NULL); logp[T] (may be NULL) gets the
 * current log pi(act_t). The same code as the update, no parameter change, no RNG use. */
double mq_ppo_loss_grad(mq_ppo *p, int T, const double *X, const int *act, const double *old_logp,
                        const double *adv, const double *ret, double *grad, double *logp);
/* The parameter vector (writable) and its length. */
double *mq_ppo_params(mq_ppo *p, long *count);
/* GAE: rewards r[T], values v[T] (the value after the last step is 0: the episode ends),
 * adv[T] = sum_k (gamma lambda)^k delta_{t+k}, delta_t = r_t + gamma v_{t+1} - v_t; ret = adv + v. */
void mq_ppo_gae(int T, const double *r, const double *v, double gamma, double lambda, double *adv, double *ret);

#endif
