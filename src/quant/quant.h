/* Quantizer kernels (internal): fake quantization of weights and activations with
 * straight-through-estimator gradients, scale / clip selection, k-means.
 *
 * Rounding: round half to even (nearbyintf in the default rounding mode), as PyTorch's
 * torch.round and fake_quantize_* do.
 *
 * Weights w [K][inner] (KCRS flattened per output filter, or [OUT][IN] for linear), symmetric:
 *   b >= 2 bits: n = 2^(b-1) - 1 levels each side, q = clamp(round(w / s), -n, n), w_q = s q,
 *                s = clip / n;
 *   b == 1:      w_q = s sign(w) (sign(0) = +1), s = mean |w| (XNOR-Net's optimal binary scale);
 *   b == 32:     w_q = w (float).
 * The scale is per layer (one for all rows, bits equal), per output channel (one per row, bits
 * equal) or per kernel (one per row, and each row its own bits: AutoQ's granularity).
 * STE: dL/dw = dL/dw_q where round(w / s) lies in [-n, n] (PyTorch's fake-quantize mask),
 * 0 elsewhere; for b == 1 every weight passes.
 *
 * Activations x (any shape, n values), clip alpha > 0:
 *   unsigned (after ReLU/ReLU6): qmin = 0, qmax = 2^b - 1, s = alpha / qmax;
 *   signed:                      qmin = -(2^(b-1) - 1), qmax = 2^(b-1) - 1 (1 bit: -1, 1),
 *                                s = alpha / qmax;
 *   q = round(x / s), x_q = s clamp(q, qmin, qmax). (A division, as ONNX QuantizeLinear; PyTorch's
 *   fake_quantize multiplies by 1 / s, which differs in the last bit near a rounding boundary.)
 * STE: dL/dx = dL/dx_q where qmin <= q <= qmax, else 0 (as torch.fake_quantize_per_tensor_affine).
 * Clip gradient, PACT (default): dL/dalpha = sum of dL/dx_q over q > qmax (plus, signed, minus the
 * sum over q < qmin): the derivative of the clip with the rounding treated as identity.
 * LSQ (learned step size, Esser et al.; torch._fake_quantize_learnable_per_tensor_affine with
 * grad_factor 1): dL/ds = sum dL/dx_q * (q - x/s) in range, * qmin below, * qmax above; as
 * alpha = s qmax, dL/dalpha = (dL/ds) / qmax. PACT is LSQ without the in-range term.
 */
#ifndef MIXQ_QUANT_H
#define MIXQ_QUANT_H

#include <math.h>
#include <stdint.h>

#include "mixq/mixq.h"
#include "core/core.h"

#define MQ_FLOAT_BITS 32

/* The public mixq_granularity, value for value (mixq_model_quant_layer casts one to the other). */
typedef enum mq_gran { MQ_GRAN_LAYER = 0, MQ_GRAN_CHANNEL, MQ_GRAN_KERNEL, MQ_GRAN_COUNT } mq_gran;
_Static_assert(MQ_GRAN_LAYER == (int)MIXQ_GRAN_LAYER && MQ_GRAN_CHANNEL == (int)MIXQ_GRAN_CHANNEL &&
                   MQ_GRAN_KERNEL == (int)MIXQ_GRAN_KERNEL && MQ_GRAN_COUNT == (int)MIXQ_GRAN_COUNT,
               "mq_gran mirrors mixq_granularity");
typedef enum mq_clip {
    MQ_CLIP_MAX = 0,   /* max |value| */
    MQ_CLIP_MSE,       /* the clip minimising the quantization MSE (grid search) */
    MQ_CLIP_KL,        /* TensorRT-style KL divergence on a histogram (HAQ below 5 bits) */
    MQ_CLIP_PERCENTILE,/* 99.99th percentile of |value| (activations) */
    MQ_CLIP_LSQ,       /* learned step size: initialised by the MSE search, then trained */
    MQ_CLIP_COUNT
} mq_clip;

/* Valid bit widths: 1..8 and 32 (float). */
static inline int mq_bits_valid(int b) { return (b >= 1 && b <= 8) || b == MQ_FLOAT_BITS; }

/* The integer levels of a b-bit quantizer: the one place they are computed (everything outside
 * src/quant asks here, or reads a layer's mq_qlayer).
 *   signed:   qmin = -n, qmax = n, n = 2^(b-1) - 1; b == 1: n = 1 (1-bit weights are the codes
 *             +-1, s sign(w); a 1-bit signed activation keeps {-1, 0, 1});
 *   unsigned: qmin = 0, qmax = 2^b - 1.
 * Widths outside 1..30 (32: float) have no levels: qmin = qmax = 0. qmin or qmax may be NULL. */
static inline void mq_levels(int bits, int is_signed, int *qmin, int *qmax) {
    int lo = 0, hi = 0;
    if (bits >= 1 && bits <= 30) {
        if (is_signed) {
            hi = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
            lo = -hi;
        } else {
            hi = (1 << bits) - 1;
        }
    }
    if (qmin) *qmin = lo;
    if (qmax) *qmax = hi;
}

/* Clip value (alpha) for n values under `method` at `bits` (unsigned: values >= 0 expected;
 * signed uses |x|). Returns a positive value; MSE/KL/percentile fall back to max |x| on
 * degenerate data. */
float mq_choose_clip(const float *x, int64_t n, int bits, int is_signed, mq_clip method);

/* Scales for weights w [K][inner] with per-row bits (bits[k], 1..8 or 32) under granularity
 * gran (MQ_GRAN_LAYER/CHANNEL need equal bits in every row). scale[k] is per row (equal
 * entries for MQ_GRAN_LAYER); 0 for float rows. With row_auto (per-row scales), each row clips
 * by the policy's "auto" rule at its own width (MSE below 5 bits, max otherwise) instead of
 * `clip`: a per-kernel layer whose widths differ. mq_weight_scales: row_auto 0. */
mixq_status mq_weight_scales_rows(const float *w, int K, int64_t inner, const int *bits, mq_gran gran,
                                  mq_clip clip, int row_auto, float *scale);
mixq_status mq_weight_scales(const float *w, int K, int64_t inner, const int *bits, mq_gran gran,
                             mq_clip clip, float *scale);
/* w_q [K][inner] from w with bits[k], scale[k]; codes (optional, [K][inner]) receives the
 * integer codes q, so that w_q == scale[k] * (float)q bit for bit (q within
 * mq_levels(bits[k], 1); 1-bit rows +-1; 0 in rows of 32 bits, which stay float, and in rows
 * whose scale is not positive, whose w_q is 0); mask (optional, [K][inner]) receives 1 where
 * the STE passes the gradient, 0 elsewhere. A NaN weight gives code 0 (w_q = 0). */
void mq_weight_fake_quant(const float *w, int K, int64_t inner, const int *bits,
                          const float *scale, float *wq, int8_t *codes, uint8_t *mask);

/* LSQ gradient of the weight scales: dscale[k] (+)= g_k sum_i dwq[k][i] * d(w_q)/d(s_k) with
 * d(w_q)/ds = round(w/s) - w/s inside [-n, n] and -n / +n where clipped (Esser et al.), and
 * LSQ's gradient factor g_k = 1 / sqrt(inner * n). As
 * torch._fake_quantize_learnable_per_channel_affine with grad_factor g_k. Rows of 1 or 32 bits
 * get 0. */
void mq_weight_lsq_grad(const float *w, int K, int64_t inner, const int *bits, const float *scale,
                        const float *dwq, float *dscale);

/* The step of the activation quantizer at clip alpha: alpha / qmax (mq_levels), as
 * mq_act_fake_quant computes it; 0 for float (32-bit) activations. */
float mq_act_scale(int bits, int is_signed, float alpha);

/* The activation quantizer's code of one value at step s = mq_act_scale(...) and levels
 * qmin..qmax (mq_levels): clamp(round(x / s), qmin, qmax). */
static inline float mq_act_code(float x, float s, float qmin, float qmax) {
    const float q = nearbyintf(x / s);
    return q < qmin ? qmin : q > qmax ? qmax : q;
}
/* The quantized value, code * s: what mq_act_fake_quant computes per value (for loops that mix
 * several widths in one pass, src/quant/mixture.c). */
static inline float mq_act_q(float x, float s, float qmin, float qmax) { return mq_act_code(x, s, qmin, qmax) * s; }

/* Activation fake-quant: y = quantized x (n values); y may alias x. */
void mq_act_fake_quant(const float *x, int64_t n, int bits, int is_signed, float alpha, float *y);

/* A layer's bias b [K] on its accumulator's integer grid, as a QDQ model carries it (an int32
 * DequantizeLinear with scale s_a * s_w[k], which ONNX Runtime's QDQ fusions expect and would
 * otherwise make of a float bias): code = round(b / (s_a * s_w[k])) (half to even), value =
 * code * (s_a * s_w[k]) in float, as DequantizeLinear computes it. Returns 1 with bq (and codes,
 * if not NULL) filled when every entry fits in int32 on a positive finite scale; else 0 and
 * nothing is written (the bias stays float). */
int mq_bias_quant(const float *b, int K, const float *s_w, float s_a, float *bq, int32_t *codes);
/* Backward: dx (+)= STE(dy) (accumulate as in kernels.h; dx may be NULL); *dalpha (may be NULL)
 * receives the clip gradient, PACT or (lsq != 0) LSQ. x is the forward input. dx may alias dy
 * when accumulate == 0. Thread-count independent. */
void mq_act_fake_quant_backward(const float *x, const float *dy, int64_t n, int bits,
                                int is_signed, float alpha, int lsq, float *dx, int accumulate,
                                float *dalpha);

/* k-means with 2^bits centroids on w (n values): deterministic init at quantiles, Lloyd
 * iterations; wq receives the centroid of each weight, centroids (2^bits) the codebook. */
mixq_status mq_kmeans_quant(const float *w, int64_t n, int bits, int iters, float *wq,
                            float *centroids);

#endif
