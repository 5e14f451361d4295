/* EBS's mixed-precision layers (internal; the ebs agent drives them): every quantizable layer
 * keeps ONE float weight tensor (the meta-weights, the model's own) shared by all its candidate
 * widths, and learned strengths over them, alpha (weights) and beta (activations). As convolution
 * is bilinear, one convolution runs on the mixtures
 *     W^ = sum_i r_i Q_{b_i}(W),   x^ = sum_j s_j Q_{b_j}(x),   y = conv(W^, x^)
 * with r, s per mode:
 *   MQ_MIX_SOFT    r = softmax(alpha), s = softmax(beta);
 *   MQ_MIX_GUMBEL  the forward uses the one-hot argmax of y = softmax((alpha + g) / tau), g Gumbel
 *                  noise drawn by mq_mix_sample; the backward passes through y (straight-through);
 *   MQ_MIX_ARGMAX  one-hot argmax of alpha, beta (the policy the strengths stand for; no
 *                  strength gradients).
 * Backward, given G = dL/dW^ and dX^ = dL/dx^ from the layer's own backward:
 *     dL/dW   = sum_i r_i STE_i(G)        (STE_i: Q_{b_i}'s pass mask)
 *     dL/dr_i = <G, Q_{b_i}(W)>,  dL/ds_j = <dX^, Q_{b_j}(x)>,  through the softmax Jacobian
 *               (divided by tau for Gumbel) into dalpha, dbeta;
 *     dL/dx   = sum_j s_j STE_j(dX^),  dL/dclip_j = s_j PACT_j(dX^).
 * Weights: per output channel scales at each candidate width, max |w| clipping (recomputed
 * whenever the weights change). Activations: each candidate width keeps its own clip, set by
 * mq_mix_calibrate (MSE-optimal below 5 bits, max |x| otherwise, on float activations) or
 * directly, and trainable (dclip). Signedness as the plain quantizer decides it (inputs that
 * can be negative are quantized signed). Bias stays float. Width 32 = float (identity). */
#ifndef MIXQ_QUANT_MIXTURE_H
#define MIXQ_QUANT_MIXTURE_H

#include "core/core.h"
#include "mixq/mixq.h"

#define MQ_MIX_MAXB 8

typedef enum mq_mix_mode { MQ_MIX_SOFT = 0, MQ_MIX_GUMBEL, MQ_MIX_ARGMAX } mq_mix_mode;

/* One mixed layer, as the agent reads and writes it (the buffers behind it are private). */
typedef struct mq_mix_layer {
    int node;                        /* the conv/linear node */
    int nw, na;                      /* candidate counts (1: a fixed width) */
    int wbits[MQ_MIX_MAXB], abits[MQ_MIX_MAXB];
    float alpha[MQ_MIX_MAXB], beta[MQ_MIX_MAXB]; /* strengths (logits) */
    double dalpha[MQ_MIX_MAXB], dbeta[MQ_MIX_MAXB]; /* accumulated by each backward */
    float clip[MQ_MIX_MAXB];         /* activation clip per candidate (0: not calibrated) */
    double dclip[MQ_MIX_MAXB];       /* accumulated PACT gradients */
    float gw[MQ_MIX_MAXB], ga[MQ_MIX_MAXB]; /* the Gumbel noise of the next training forward */
    float r[MQ_MIX_MAXB], s[MQ_MIX_MAXB];   /* the mixing weights the last forward used */
    int a_signed;
} mq_mix_layer;

/* Replace m's quantization (if any) by mixtures: every quantizable node gets the nw weight and
 * na activation candidate widths (1..8 or 32), strengths 0 (uniform), clips 0. */
mixq_status mq_mix_install(mixq_model *m, int nw, const int *wbits, int na, const int *abits);
/* Mixed layers (0 if m has no mixtures) and layer l's record (NULL out of range). */
int mq_mix_count(const mixq_model *m);
mq_mix_layer *mq_mix_get(mixq_model *m, int l);
/* Fix layer l to one width pair (e.g. the first and last layers at 8 bits). */
mixq_status mq_mix_fix(mixq_model *m, int l, int w_bits, int a_bits);
/* Mode of the following forwards (tau: Gumbel temperature, > 0). */
mixq_status mq_mix_set_mode(mixq_model *m, mq_mix_mode mode, float tau);
/* Draw the Gumbel noise of every layer's strengths for the next forward (rng advanced in layer
 * order: weights, then activations). */
void mq_mix_sample(mixq_model *m, mq_rng *rng);
/* Zero the accumulated dalpha, dbeta and dclip. */
void mq_mix_zero_grad(mixq_model *m);
/* Every candidate's activation clip from float activations of x [n] (images as the model takes
 * them), MSE-optimal below 5 bits and max |x| otherwise. */
mixq_status mq_mix_calibrate(mixq_model *m, const float *x, int n);
/* softmax(v / t) of n strengths into out (in double; the mixing weights are it in float); the
 * chosen candidate is the largest strength, mq_argmax. */
void mq_mix_softmax(const float *v, int n, double t, double *out);
/* The weights at candidate i of layer l as its quantizer makes them (numel floats, current for
 * the model's weights); NULL with an error out of range. For tests. */
const float *mq_mix_weights(mixq_model *m, int l, int i);

#endif
