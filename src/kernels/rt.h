/* CPU runtime internals shared by rt.c (whole-model execution) and calibrate.c (timing each
 * layer shape for the measured cost table). Not public API.
 *
 * One runtime layer ("rt_conv") is a conv or linear node with its fused epilogue:
 *   x     float [N][C][H][W]          NCHW input (linear: [N][C], H = W = 1)
 *   codes uint8 [n][H][W][C]          a-bit activation codes of an image chunk (NHWC; fc:
 *                                     [n][C*H*W] in NCHW-flatten order):
 *                                     q = clamp(nearbyintf(x / s_a), qmin, qmax) + a_off
 *                                     (qmin, qmax: mq_levels; a_off = -qmin: 2^(a-1) - 1
 *                                     (1 for a = 1) for signed inputs, 0 unsigned)
 *   col   uint8 [G][n*P*Q][Kd]        im2col rows per group, Kd = (C/G)*R*S in (r, s, c) order;
 *                                     padding holds a_off (the code of 0.0)
 *   wc    int8  [K][Kd]               weight codes (KCRS; wp: permuted to (r, s, c) to match col),
 *                                     the layer's mq_qlayer codes: within mq_levels(b, 1),
 *                                     -(2^(b-1)-1)..2^(b-1)-1 for b >= 2; b == 1: +-1;
 *                                     row k has kbits[k] bits (per-kernel widths)
 *   acc   int32 [n*P*Q][K/G]          per group: sum_k col * wc (bit-serial or int8 GEMM)
 *   y     float [N][K][P][Q]          epilogue, per output channel k:
 *                                       z = (float)(acc - corr[k]) * sc[k] + bias[k]
 *                                       z = z * bn_a[k] + bn_b[k]        (fused batch norm)
 *                                       z = relu(z) / relu6(z)           (fused activation)
 *                                     corr[k] = a_off * sum_j wc[k][j], sc[k] = s_a * s_w[k]
 * Fused re-quantization: when a layer's (fused) output feeds exactly one integer layer and
 * nothing else, the epilogue writes that layer's codes instead of floats (the same float z, the
 * same rounding), and the consumer skips its quantizer.
 * The fp32 kernel runs the same layer in float on the fake-quantized values (x_q = (q-a_off) s_a,
 * w_q from the model), sc = 1, corr = 0. */
#ifndef MIXQ_KERNELS_RT_H
#define MIXQ_KERNELS_RT_H

#include <stdint.h>

#include "mixq/mixq.h"
#include "kernels/bitserial.h"
#include "kernels/int8.h"

typedef struct rt_conv {
    char name[MIXQ_NAME_MAX];
    int node;
    int fc;
    int C, H, W, K, P, Q, R, S, stride, pad, G;
    int Kd, Kg;                 /* (C/G)*R*S and K/G */
    int R0, S0, pad0, crop_t0;  /* the model's kernel and pad; R x S is its window from row and
                                   column crop_t0 when taps that only read padding are dropped
                                   (rt_conv_prepare) */
    mixq_kernel kernel;
    int a_bits, a_signed, pack_bits, a_float; /* a_float: input stays float (32 bits) */
    int w_max, mixed;
    int *kbits;                 /* [K] */
    float s_a, qmin, qmax;
    int a_off;
    float *sc, *bias;           /* [K] */
    int has_bn;
    float *bn_a, *bn_b;         /* [K] */
    int act;                    /* 0 none, 1 ReLU, 2 ReLU6 */
    int32_t *corr;              /* [K] */
    int8_t *wc;                 /* [K][Kd] KCRS order (integer kernels) */
    int8_t *wp;                 /* [K][Kd] the same in im2col order: (r, s, c) per group */
    float *wf;                  /* [K][Kd] (fp32 kernel) */
    mq_bs_weights *bw;          /* [G] (bitserial) */
    mq_i8_weights *iw;          /* int8 primitive weights (G == 1): a direct convolution on the
                                   NHWC codes when iw_conv (unsigned inputs), else a matmul */
    int iw_conv;
    int32_t *wdw;               /* int8 depthwise (K == C == G): weights [R*S][K] */
    mq_bs_tier tier;
    /* fused re-quantization: the input is already the codes of this layer (uint8, NHWC for a
     * conv, NCHW-flatten for fc) / the output is the next layer's codes (1: NHWC for a conv
     * consumer, 2: [K][PQ] for a linear one) computed with its quantizer nq_* */
    int in_codes, out_codes;
    float nq_s, nq_lo, nq_hi;      /* the consumer's s_a and levels */
    /* the per-channel epilogue parameters repeated to flat_e entries, a multiple of lcm(K, 64)
     * and >= 1024 (sc, bias, bn_a, bn_b as floats, then corr as int32), so a layer with G == 1
     * re-quantizes its accumulators as one flat array whose channel period fits whole vectors
     * (small K: conv1's 6 channels) in long passes */
    float *flat;
    int flat_e;
    int im2col_plain;           /* tests: im2col_u8 even where the short-row path applies */
    int pack_seg;               /* bit-serial conv with C a multiple of 16 (not 64) whose kernel
                                   rows fit whole words: weights and activations in
                                   mq_bs_pack_conv_seg's segment layout (no im2col copy) */
    int seg_plain;              /* tests: im2col + the plain layout where pack_seg would apply */
    int pack_dir;               /* bit-serial 3x3 conv with C = 16 or 32 on the vpopcnt tier:
                                   mq_bs_conv_dir on 32-bit words (no K padding, no row packing) */
    int dir_off;                /* tests and bench_layers: the GEMM layouts where pack_dir would apply */
    int nq_off;
    /* re-quantization to codes of at most RT_THR_MAX + 1 levels by integer thresholds
     * (rt_conv_thresholds): thr int32 [thr_n][K], then mask [K] and base [K]; NULL: float */
    int thr_n;
    int32_t *thr;
    char fused[24];
    double seconds;
    int64_t images;
} rt_conv;

/* Per-thread scratch, grown on demand. */
typedef struct rt_scratch {
    uint8_t *codes;
    size_t codes_cap;
    uint8_t *col;
    size_t col_cap;
    float *fcol;
    size_t fcol_cap;
    int32_t *acc;
    size_t acc_cap;
    float *facc;
    size_t facc_cap;
    mq_i8_thread *i8t;          /* oneDNN stream and scratchpad of this thread */
    uint8_t *qt;                /* quantizer block [C][64] */
    size_t qt_cap;
    mq_bs_acts acts;
    mq_bs_acts pix;             /* per-pixel bit planes (mq_bs_pack_conv) */
    mq_bs_seg_scratch seg;      /* packed input rows (mq_bs_pack_conv_seg) */
    uint8_t *plane;             /* im2col_short: the padded image */
    size_t plane_cap;
} rt_scratch;

void rt_scratch_free(rt_scratch *s);
void rt_conv_free(rt_conv *c);

/* Fill c's derived fields (Kd, Kg, P, Q, act quantizer) and allocate its per-channel arrays
 * from the shape fields and a_bits / a_signed already set; kbits must be allocated [K]. */
mixq_status rt_conv_prepare(rt_conv *c);
/* The weights of the kept R x S window (rt_conv_prepare may drop taps that only read padding),
 * elements of elem bytes (float weights or int8 codes):
 *   w    [K][C/G][R0][S0]   the model's kernel (KCRS)
 *   out  [K][C/G][R][S]     rows and columns crop_t0 .. crop_t0 + R - 1 of it */
void rt_conv_crop_weights(const rt_conv *c, const void *w, void *out, size_t elem);
/* Pack the weights for c->kernel from c->wc (integer) or keep c->wf (fp32); computes corr.
 * Whatever an earlier call packed is released first, so a layer may be re-packed for another
 * kernel or other widths. */
mixq_status rt_conv_pack(rt_conv *c);
/* Run images [i0, i1) of x into y (whole-batch NCHW tensors) on one scratch; the GEMM uses
 * kthreads threads (1 inside a parallel region). */
mixq_status rt_conv_run(rt_conv *c, const void *x, void *y, int i0, int i1, rt_scratch *s,
                        int kthreads);
/* fn(ctx, t, i0, i1) for chunks t = 0..chunks-1 (1..64) of images [0, n), each on its own
 * OpenMP thread: chunk t gets [n t / chunks, n (t + 1) / chunks). Returns the first failing
 * chunk's status with its worker's message. */
typedef mixq_status (*rt_chunk_fn)(void *ctx, int t, int i0, int i1);
mixq_status rt_run_chunks(int n, int chunks, rt_chunk_fn fn, void *ctx);
/* Run a whole batch: image chunks in parallel when n > 1, else one image on every thread. */
mixq_status rt_conv_forward(rt_conv *c, const void *x, void *y, int n, rt_scratch *scr,
                            int nscr);

/* Diagnostics (bench/trace_diff): fn(user, c, x, n) runs before each layer c of a forward, on
 * the thread that runs it, with the layer's input for the n images of its chunk: codes when
 * c->in_codes (uint8 with c->a_off added: [n][H][W][C] for a conv, [n][C*H*W] for a linear),
 * else floats [n][C][H][W]. NULL turns it off. */
typedef void (*rt_trace_fn)(void *user, const rt_conv *c, const void *x, int n);
void rt_set_trace(mixq_runtime *rt, rt_trace_fn fn, void *user);
/* The codes layer c sums for one image of such an input x, signed (a_off taken off) into q
 * [C][H][W] (NCHW): read from x when c->in_codes, else its floats quantized by the layer's
 * quantizer (mq_act_code). A layer with float input (a_float) has none: MIXQ_ERR_ARG. */
mixq_status rt_input_codes(const rt_conv *c, const void *x, int *q);

/* How the runtime links conv/linear node `node` of m to its neighbours when every layer is
 * integer (rt_conv in_codes / out_codes): its input arrives as codes (1) and its output
 * leaves as the next layer's codes (1 NHWC, 2 for a linear consumer), through a batch norm,
 * a ReLU and a max pool that are sole consumers. calibrate-cpu times each shape so. */
void rt_fusion_hint(const mixq_model *m, int node, int *in_codes, int *out_codes);

/* The fused re-quantization (out_codes == 1) maps each channel's int32 accumulator through
 * monotone float operations (scale, bias, batch norm, ReLU/ReLU6, the consumer's quantizer:
 * each never decreases, or with a negative scale never increases), so the code is a step
 * function of the accumulator. For outputs of at most RT_THR_MAX + 1 codes (1- and 2-bit
 * consumers) this finds its steps exactly, by bisection on that very function, and the
 * epilogue then compares integers instead of running the float chain. Call after the
 * parameters and nq_* are final; it leaves thr NULL (float path) when the output has more
 * codes, a parameter is not finite or memory is short. */
#define RT_THR_MAX 3

/* A layer runs its images in sub-batches of at most this many bytes of int32 accumulators (at
 * least one image), so that what the GEMM writes is still in the core's L2 when the epilogue
 * reads it. 64 images of vgg11's first layer (32x32x64) would be 16 MB, written to memory and
 * read back: in 256 KB sub-batches that layer went from 40 to 34 us per image at batch 64, its
 * GEMM from 12 to 7 (AMD Zen 5; 128 KB measured the same, 1 MB and more as slow as none). */
#define RT_SUB_BYTES (256 * 1024)
void rt_conv_thresholds(rt_conv *c);
/* The epilogue of one image for channels k0..k0+kn-1 from acc int32 [PQ][ld] (the layer's
 * columns k0..): y float [K][PQ], or codes (out_codes 1: uint8 [PQ][K], 2: [K][PQ]). */
void rt_conv_epilogue(const rt_conv *c, const int32_t *acc, int k0, int kn, int ld, int64_t PQ,
                      void *y);

/* The built-in kernel rule when no table is given: bit-serial where w_max x a_bits <= 2, or
 * on the vpopcnt tier (mq_bs_tier_select) <= 3 from Kd = 576 and <= 4 from Kd = 1152; int8
 * elsewhere (bit-serial everywhere when this CPU has no VNNI). Kd = the GEMM depth. */
mixq_kernel rt_rule_kernel(int w_max, int a_bits, int Kd);

#endif
