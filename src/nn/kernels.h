/* FP32 layer kernels: pure functions over raw buffers with explicit shapes. Internal API.
 *
 * Dimension letters used throughout (fixed project-wide):
 *   N batch, C input channels, H/W input height/width, K output channels,
 *   R/S kernel height/width, P/Q output height/width, G groups.
 * Activations are NCHW, conv weights KCRS with C = C_in / G, linear weights [OUT][IN].
 *
 * Backward conventions:
 *   - dx (gradient w.r.t. the input) is overwritten when accumulate == 0 and added to when
 *     accumulate != 0 (a node feeding several consumers, e.g. a residual add).
 *   - parameter gradients (dw, db, dgamma, dbeta) are always overwritten.
 *   - any gradient pointer may be NULL to skip computing it.
 *   - results must not depend on the number of OpenMP threads (fixed reduction order).
 * Every fast kernel has a plain `_ref` twin (single-threaded loops, double accumulation where
 * it matters) used by the tests on awkward sizes.
 */
#ifndef MIXQ_NN_KERNELS_H
#define MIXQ_NN_KERNELS_H

#include <stdint.h>
#include "core/core.h"

/* ---------------------------------------------------------------- window geometry */
/* A conv or pooling window: kernel kh x kw, strides sh (rows) and sw (columns), zero padding
 * pt, pl, pb, pr (top, left, bottom, right; ONNX's pads order is pt, pl, pb, pr). Output rows
 * P = (H + pt + pb - kh) / sh + 1, columns Q = (W + pl + pr - kw) / sw + 1; output (p, q)
 * reads input rows p*sh - pt .. + kh - 1 and columns q*sw - pl .. + kw - 1, so the kernels
 * need pt and pl only (pb and pr set P and Q). */
typedef struct mq_geom {
    int kh, kw, sh, sw, pt, pl, pb, pr;
} mq_geom;

/* The square, symmetric geometry k x k, stride s, pad p on every side. */
static inline mq_geom mq_geom_square(int k, int s, int p) {
    mq_geom g = {k, k, s, s, p, p, p, p};
    return g;
}
/* 1 when g is k x k with one stride and the same pad on every side. */
static inline int mq_geom_is_square(const mq_geom *g) {
    return g->kh == g->kw && g->sh == g->sw && g->pt == g->pl && g->pt == g->pb && g->pt == g->pr;
}

/* ---------------------------------------------------------------- conv2d */
typedef struct mq_conv_shape {
    int N, C, H, W;          /* input */
    int K, R, S;             /* output channels, kernel rows and columns */
    int sh, sw;              /* strides (rows, columns) */
    int pt, pl, pb, pr;      /* zero padding: top, left, bottom, right */
    int groups;              /* C % groups == 0 && K % groups == 0 */
    int P, Q;                /* output size: P = (H + pt + pb - R) / sh + 1,
                                Q = (W + pl + pr - S) / sw + 1 (set by mq_conv_shape_init) */
} mq_conv_shape;

/* The shape of a conv with geometry g (R, S, strides and pads from it); P, Q not yet set. */
static inline mq_conv_shape mq_conv_shape_of(int N, int C, int H, int W, int K, const mq_geom *g,
                                             int groups) {
    mq_conv_shape s = {.N = N, .C = C, .H = H, .W = W, .K = K, .R = g->kh, .S = g->kw,
                       .sh = g->sh, .sw = g->sw, .pt = g->pt, .pl = g->pl, .pb = g->pb,
                       .pr = g->pr, .groups = groups};
    return s;
}

/* Fill P, Q and validate (positive sizes, divisibility, output >= 1). */
mixq_status mq_conv_shape_init(mq_conv_shape *s);

/* x [N][C][H][W], w [K][C/G][R][S], b [K] or NULL, y [N][K][P][Q]. */
mixq_status mq_conv2d_forward(const mq_conv_shape *s, const float *x, const float *w,
                              const float *b, float *y, mq_ws *ws);
/* dy [N][K][P][Q] -> dx [N][C][H][W], dw [K][C/G][R][S], db [K]. */
mixq_status mq_conv2d_backward(const mq_conv_shape *s, const float *x, const float *w,
                               const float *dy, float *dx, int accumulate, float *dw, float *db,
                               mq_ws *ws);
void mq_conv2d_forward_ref(const mq_conv_shape *s, const float *x, const float *w, const float *b,
                           float *y);
/* Back-end for convolutions with more than one input channel per group: 1 = oneDNN direct
 * convolution (default), 0 = im2col + sgemm (also MIXQ_CONV=gemm). For tests and benchmarks. */
void mq_conv_set_backend(int onednn);
void mq_conv2d_backward_ref(const mq_conv_shape *s, const float *x, const float *w,
                            const float *dy, float *dx, int accumulate, float *dw, float *db);

/* ---------------------------------------------------------------- linear */
/* x [N][IN], w [OUT][IN], b [OUT] or NULL, y [N][OUT]. */
mixq_status mq_linear_forward(int N, int IN, int OUT, const float *x, const float *w,
                              const float *b, float *y);
mixq_status mq_linear_backward(int N, int IN, int OUT, const float *x, const float *w,
                               const float *dy, float *dx, int accumulate, float *dw, float *db);
void mq_linear_forward_ref(int N, int IN, int OUT, const float *x, const float *w, const float *b,
                           float *y);
void mq_linear_backward_ref(int N, int IN, int OUT, const float *x, const float *w,
                            const float *dy, float *dx, int accumulate, float *dw, float *db);

/* ---------------------------------------------------------------- batch norm */
/* x, y [N][C][HW]; gamma, beta, run_mean, run_var [C].
 * Training: normalise with the batch mean and biased variance, store mean [C] and
 * invstd = 1/sqrt(var + eps) [C] in save_mean/save_invstd, and update the running
 * statistics PyTorch's way: run = (1 - momentum) run + momentum * batch, with the unbiased
 * variance (N*HW/(N*HW-1)) for run_var. Inference: use run_mean/run_var (save_* unused). */
mixq_status mq_bn_forward(int N, int C, int HW, const float *x, const float *gamma,
                          const float *beta, float *run_mean, float *run_var, float eps,
                          float momentum, int training, float *save_mean, float *save_invstd,
                          float *y);
/* Training-mode backward (batch statistics): dy -> dx, dgamma, dbeta. In inference mode
 * (training == 0) the statistics are constants: dx = dy * gamma * invstd_running, and the
 * caller passes the running mean as save_mean (save_invstd is then unused). */
mixq_status mq_bn_backward(int N, int C, int HW, const float *x, const float *gamma,
                           const float *save_mean, const float *save_invstd, const float *run_var,
                           float eps, int training, const float *dy, float *dx, int accumulate,
                           float *dgamma, float *dbeta);

/* ---------------------------------------------------------------- pointwise */
/* n elements. ReLU6 clamps to [0, 6]. Backward uses the forward output y (gradient passes
 * where 0 < y < 6 for ReLU6, y > 0 for ReLU). */
void mq_relu_forward(int64_t n, const float *x, float *y);
void mq_relu_backward(int64_t n, const float *y, const float *dy, float *dx, int accumulate);
void mq_relu6_forward(int64_t n, const float *x, float *y);
void mq_relu6_backward(int64_t n, const float *y, const float *dy, float *dx, int accumulate);
/* y = a + b; backward: da += dy / db += dy per their own accumulate flags. */
void mq_add_forward(int64_t n, const float *a, const float *b, float *y);
void mq_grad_pass(int64_t n, const float *dy, float *dx, int accumulate); /* dx (+)= dy */
/* Sigmoid y = 1 / (1 + exp(-x)); backward from y: dx = dy y (1 - y). */
void mq_sigmoid_forward(int64_t n, const float *x, float *y);
void mq_sigmoid_backward(int64_t n, const float *y, const float *dy, float *dx, int accumulate);
/* HardSigmoid y = clamp(alpha x + beta, 0, 1) (ONNX's; PyTorch's Hardsigmoid is alpha 1/6,
 * beta 1/2); backward from y: dx = alpha dy where 0 < y < 1, else 0. */
void mq_hsigmoid_forward(int64_t n, float alpha, float beta, const float *x, float *y);
void mq_hsigmoid_backward(int64_t n, float alpha, const float *y, const float *dy, float *dx,
                          int accumulate);
/* HardSwish y = x clamp(x / 6 + 1/2, 0, 1); backward from x, PyTorch's: 0 for x < -3,
 * dy (x / 3 + 1/2) for -3 <= x <= 3, dy above. */
void mq_hswish_forward(int64_t n, const float *x, float *y);
void mq_hswish_backward(int64_t n, const float *x, const float *dy, float *dx, int accumulate);
/* y = a * b with a [NC][HW] and b either [NC][HW] (bhw == HW: same shape) or [NC] (bhw == 1:
 * one factor per channel and image, squeeze-and-excitation's scale). */
void mq_mul_forward(int64_t NC, int HW, int bhw, const float *a, const float *b, float *y);
/* da (+)= dy b, then db (+)= dy a (summed over HW when bhw == 1); either may be NULL, and they
 * may be the same buffer (a * a: acc_b is then 1). */
void mq_mul_backward(int64_t NC, int HW, int bhw, const float *a, const float *b, const float *dy,
                     float *da, int acc_a, float *db, int acc_b);
/* Channel concatenation: a [N][Ca][HW], b [N][Cb][HW] -> y [N][Ca + Cb][HW]; backward splits
 * dy into da (+)= and db (+)= (either may be NULL; the same buffer when a is b). */
void mq_concat_forward(int N, int Ca, int Cb, int HW, const float *a, const float *b, float *y);
void mq_concat_backward(int N, int Ca, int Cb, int HW, const float *dy, float *da, int acc_a,
                        float *db, int acc_b);

/* ---------------------------------------------------------------- pooling */
/* Window geometry g (mq_geom: kernel, strides, top/left padding); x [N][C][H][W] ->
 * y [N][C][P][Q]. Max pool: argmax [N][C][P][Q] holds the flat index h*W + w of the chosen
 * input (first maximum wins; padding is -inf). */
void mq_maxpool_forward(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                        const float *x, float *y, int32_t *argmax);
/* Its reference twin: the plain window loop. mq_maxpool_forward takes a branch-free path for
 * 2x2, stride 2, no padding, and must give exactly these values and indices. */
void mq_maxpool_forward_ref(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                            const float *x, float *y, int32_t *argmax);
void mq_maxpool_backward(int N, int C, int H, int W, int P, int Q, const int32_t *argmax,
                         const float *dy, float *dx, int accumulate);
/* Inference max pool (no argmax): the same values as mq_maxpool_forward (a window holding a
 * NaN gives NaN, an empty window -inf), vectorizable; a fast path for 2x2, stride 2, pad 0. */
void mq_maxpool_infer(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                      const float *x, float *y);
/* Average pool, PyTorch's count_include_pad=True (divide by kh*kw always). */
void mq_avgpool_forward(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                        const float *x, float *y);
void mq_avgpool_backward(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                         const float *dy, float *dx, int accumulate);
/* Global average pool: x [N][C][HW] -> y [N][C]. */
void mq_gap_forward(int N, int C, int HW, const float *x, float *y);
void mq_gap_backward(int N, int C, int HW, const float *dy, float *dx, int accumulate);

/* ---------------------------------------------------------------- loss */
/* Softmax cross-entropy, mean over the batch, with label smoothing eps (PyTorch semantics:
 * target = (1 - eps) one_hot + eps / classes). logits [N][K], labels [N] in [0, K).
 * probs [N][K] receives the softmax (may be NULL). Returns MIXQ_ERR_ARG for a label out of
 * range and MIXQ_ERR_NUMERIC for a non-finite loss. correct (may be NULL) counts argmax hits. */
mixq_status mq_softmax_ce_forward(int N, int K, const float *logits, const int *labels,
                                  float eps, float *probs, float *loss, int *correct);
/* dlogits [N][K] = (probs - target) / N (overwritten). */
void mq_softmax_ce_backward(int N, int K, const float *probs, const int *labels, float eps,
                            float *dlogits);
/* Knowledge distillation (Hinton et al. 2015), mean over the batch: loss = T^2 KL(softmax(t / T)
 * || softmax(z / T)) for student logits z and teacher logits t [N][K] (PyTorch: kl_div(
 * log_softmax(z / T), softmax(t / T), reduction="batchmean") * T^2). dlogits (may be NULL) gets
 * w times the gradient added: += w T (softmax(z / T) - softmax(t / T)) / N. MIXQ_ERR_ARG for
 * T <= 0, MIXQ_ERR_NUMERIC for a non-finite loss. */
mixq_status mq_distill(int N, int K, const float *logits, const float *teacher, float T, float w,
                       float *loss, float *dlogits);

#endif
