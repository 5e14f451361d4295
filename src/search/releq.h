/* ReLeQ (Elthakeb et al., arXiv 1811.01704): the episode logic of the releq agent, apart from the
 * search driver so that tests can run it on an accuracy oracle (internal).
 *
 * An episode walks the searched layers (every layer but the first, and but the last when the
 * ends are pinned); at each one the PPO agent (ppo.h) reads the state
 *   [l / L, current_bits / 8, quant_state, acc_state, n_out, c_in, k, weight_std]
 * and picks a weight width from the bit set. current_bits is the layer's width in the policy
 * being built: the one chosen this episode for the layers already walked, the previous
 * episode's scored policy for the rest (8 bits before the first episode); quant_state =
 * sum_l bits_l / (8 L) over every layer of that policy; acc_state = the previous scored policy's
 * accuracy / FP32's (1 before the first); n_out, c_in, k (0 for a linear layer) min-max
 * normalised over the layers (0 for a constant column); weight_std: the standard deviation of
 * the layer's float weights. Layers not searched stay at 8 bits. After the episode's policy is
 * scored, the agent learns from its reward, given at the last step. */
#ifndef MIXQ_SEARCH_RELEQ_H
#define MIXQ_SEARCH_RELEQ_H

#include "search/ppo.h"

#define MQ_RELEQ_STATE 8
#define MQ_RELEQ_MAX_BITS 8

typedef struct mq_releq {
    int L;
    int n_steps, *layer;       /* the searched layers, in order */
    int n_bits, bits[MQ_RELEQ_MAX_BITS]; /* the bit set, ascending */
    double (*feat)[4];         /* [L]: n_out, c_in, k (normalised), weight_std */
    mq_ppo *ppo;
    int *prev;                 /* [L] the previous scored policy's weight bits */
    double prev_y;             /* its accuracy / FP32's */
    int *act;                  /* [n_steps] this episode's actions */
} mq_releq;

/* searched[L]: 1 for a layer the agent picks; raw[L][4]: n_out, c_in, k, weight_std (the first
 * three normalised here). The PPO config's in_dim, n_act and max_steps are set here. */
mixq_status mq_releq_create(int L, const int *searched, const int *bits, int n_bits, const double (*raw)[4],
                            const mq_ppo_config *pc, mq_releq **out);
void mq_releq_free(mq_releq *r);
/* One episode's actions: w[L] (unsearched layers at 8). */
void mq_releq_propose(mq_releq *r, int *w);
/* The proposal was scored as policy w[L] (after a wall, if any) with accuracy ratio y and
 * reward: the PPO update, and w, y become the next episode's starting point. Returns the loss. */
double mq_releq_learn(mq_releq *r, const int *w, double y, double reward);
/* The same after a round of k episodes taken with mq_ppo_take (rewards in t[j].reward): one
 * update over all of them; w, y: the round's last policy and accuracy ratio, which the next
 * round's states start from. */
double mq_releq_learn_all(mq_releq *r, const int *w, double y, const mq_ppo_traj *t, int k);

/* ReLeQ's shaped reward: R = -1 if y < margin, else 2 ((1 - x^a) y^(b / y) - 0.5), with x (the
 * quantization state above the lowest reachable, clamped at 0) and y = acc / acc_fp32. */
double mq_releq_reward(double x, double y, double margin, double a, double b);

/* Checkpoint extra bytes: prev[L] and prev_y. */
size_t mq_releq_extra_size(const mq_releq *r);
void mq_releq_extra_pack(const mq_releq *r, void *buf);
/* 0 if the bytes hold bits outside 1..8 or a non-finite y (the state is then unchanged). */
int mq_releq_extra_unpack(mq_releq *r, const void *buf);

#endif
