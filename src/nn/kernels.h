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

/* ---------------------------------------------------------------- conv2d */
typedef struct mq_conv_shape {
    int N, C, H, W;          /* input */
    int K, R, S;             /* output channels, kernel size */
    int stride, pad, groups; /* square stride/padding; C % groups == 0 && K % groups == 0 */
    int P, Q;                /* output size: P = (H + 2 pad - R) / stride + 1 (set by mq_conv_shape_init) */
} mq_conv_shape;

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

/* ---------------------------------------------------------------- pooling */
/* Max pool: x [N][C][H][W] -> y [N][C][P][Q]; argmax [N][C][P][Q] holds the flat index
 * h*W + w of the chosen input (first maximum wins; padding is -inf). */
void mq_maxpool_forward(int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
                        const float *x, float *y, int32_t *argmax);
void mq_maxpool_backward(int N, int C, int H, int W, int P, int Q, const int32_t *argmax,
                         const float *dy, float *dx, int accumulate);
/* Inference max pool (no argmax): the same values as mq_maxpool_forward (a window holding a
 * NaN gives NaN, an empty window -inf), vectorizable; a fast path for k = stride = 2, pad 0. */
void mq_maxpool_infer(int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
                      const float *x, float *y);
/* Average pool, PyTorch's count_include_pad=True (divide by k*k always). */
void mq_avgpool_forward(int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
                        const float *x, float *y);
void mq_avgpool_backward(int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
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

#endif
