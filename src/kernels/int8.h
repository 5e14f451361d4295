/* int8 GEMM for the CPU runtime (internal; names mq_i8_*).
 *
 *   C[m][n] = sum_{k<K} A[m][k] * W[n][k]          exact, int32
 *
 * Buffers (row-major):
 *   A  uint8_t [M][K]    activation codes 0..255 (any a_bits <= 8; signed activations are
 *                        offset to unsigned by the caller)
 *   W  int8_t  [N][K]    weight codes -128..127 (any w_bits <= 8, per-row widths welcome)
 *   C  int32_t [M][ldc]  ldc >= N
 * K <= MQ_I8_MAX_K keeps |C| <= K * 255 * 128 < 2^31.
 *
 * Implementation: oneDNN's dnnl_gemm_u8s8s32 (its JIT kernels: AVX-512 VNNI vpdpbusd here).
 * Without VNNI those kernels form u8 x s8 pair sums in saturating int16 (vpmaddubsw), which is
 * not exact for large codes, so the path is only offered where VNNI exists
 * (mq_i8_available); the reference twin is mq_bs_gemm_ref (same semantics). oneDNN threads
 * with OpenMP: inside a parallel region it runs on the calling thread only. */
#ifndef MIXQ_KERNELS_INT8_H
#define MIXQ_KERNELS_INT8_H

#include <stdint.h>

#include "mixq/mixq.h"

#define MQ_I8_MAX_K 65536

/* 1 if the CPU has AVX-512 VNNI or AVX-VNNI (and the OS saves the vector state). */
int mq_i8_available(void);
/* MIXQ_ERR_UNSUPPORTED without VNNI, MIXQ_ERR_ARG on bad sizes. */
mixq_status mq_i8_gemm(const uint8_t *A, const int8_t *W, int M, int N, int K, int32_t *C,
                       int ldc);

/* The same product through oneDNN's matmul primitive (brgemm with VNNI), weights reordered
 * once into the primitive's layout: C[M][N] = A[M][K] x W[N][K]^T, ldc = N. Primitives and
 * their reordered weights are cached per M (the image chunks a runtime sees: a few values),
 * at most MQ_I8_CACHE of them per weight set (a further M gets a primitive for that call). Thread-safe: concurrent calls on one weight set
 * are fine, each thread passing its own mq_i8_thread (stream + scratchpad; *t may be NULL on the
 * first call and is created then). */
#define MQ_I8_CACHE 8
typedef struct mq_i8_weights mq_i8_weights;
typedef struct mq_i8_thread mq_i8_thread;
mixq_status mq_i8_weights_create(const int8_t *W, int N, int K, mq_i8_weights **out);
void mq_i8_weights_free(mq_i8_weights *w);
mixq_status mq_i8_matmul(mq_i8_weights *w, const uint8_t *A, int M, int32_t *C, mq_i8_thread **t);
void mq_i8_thread_free(mq_i8_thread *t);

/* Direct int8 convolution (oneDNN's convolution primitive, VNNI), same caching and threading:
 *   x   uint8 [n][H][W][C]       NHWC codes; padding is 0 (so only for unsigned inputs, whose
 *                                code of 0.0 is 0)
 *   W   int8  [K][R][S][C]       OHWI weight codes
 *   acc int32 [n][P][Q][K]       NHWC, i.e. the GEMM result [n*P*Q][K] of im2col (r, s, c)
 * No im2col buffer: the primitive reads the NHWC tensor itself. */
mixq_status mq_i8_conv_weights_create(const int8_t *W, int K, int C, int H, int Wd, int R, int S,
                                      int stride, int pad, mq_i8_weights **out);
mixq_status mq_i8_conv(mq_i8_weights *w, const uint8_t *x, int n, int32_t *acc, mq_i8_thread **t);

#endif
