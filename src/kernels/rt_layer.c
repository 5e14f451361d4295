/* One runtime layer: activation quantization, im2col of the codes, the integer (or fp32) GEMM,
 * and the fused epilogue. Buffer shapes and bit widths: see rt.h. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/int8.h"
#include "kernels/rt.h"
#include "quant/quant.h"

#define RT_QB 64 /* pixels per block of the NCHW -> NHWC quantizer */

void rt_scratch_free(rt_scratch *s) {
    if (!s) return;
    free(s->codes);
    free(s->col);
    free(s->fcol);
    free(s->acc);
    free(s->facc);
    free(s->qt);
    free(s->plane);
    mq_i8_thread_free(s->i8t);
    mq_bs_acts_free(&s->acts);
    mq_bs_acts_free(&s->pix);
    mq_bs_seg_scratch_free(&s->seg);
    memset(s, 0, sizeof *s);
}

/* Drop what a previous rt_conv_pack built (any kernel), so a layer can be packed again. */
static void release_packed(rt_conv *c) {
    if (c->bw)
        for (int g = 0; g < c->G; g++) mq_bs_weights_free(&c->bw[g]);
    free(c->bw);
    c->bw = NULL;
    mq_i8_weights_free(c->iw);
    c->iw = NULL;
    c->iw_conv = 0;
    free(c->wdw);
    c->wdw = NULL;
}

void rt_conv_free(rt_conv *c) {
    if (!c) return;
    release_packed(c);
    free(c->kbits);
    free(c->sc);
    free(c->bias);
    free(c->bn_a);
    free(c->bn_b);
    free(c->corr);
    free(c->wc);
    free(c->wp);
    free(c->wf);
    free(c->thr);
    free(c->flat);
    memset(c, 0, sizeof *c);
}

mixq_kernel rt_rule_kernel(int w_max, int a_bits, int Kd) {
    if (!mq_i8_available()) return MIXQ_KERNEL_BITSERIAL;
    /* the widest w x a at which bit-serial beats VNNI int8: 2 where popcount is emulated
     * (Cascade Lake, AVX-512BW: W1A1 ~1.75x, W2A2 ~0.5x of int8 at K >= 1152); with VPOPCNTDQ
     * it depends on K (bench/results/runtime_layers.md, Zen 5, packing included, batch 1:
     * W1A2 1.7x and W2A2 1.0x at K = 576, W2A2 1.3x and W3A3 0.6x at K >= 1152), so 3 from
     * K = 576 and 4 from K = 1152 */
    mq_bs_tier t = MQ_BS_TIER_SCALAR;
    int limit = 2;
    if (mq_bs_tier_select(&t) == MIXQ_OK && t == MQ_BS_TIER_VPOPCNT)
        limit = Kd >= 1152 ? 4 : Kd >= 576 ? 3 : 2;
    return w_max * a_bits <= limit ? MIXQ_KERNEL_BITSERIAL : MIXQ_KERNEL_INT8;
}

/* Kernel taps no output pixel ever places inside the image (a 3x3 pad-1 conv on a 1x1 map:
 * all but the centre) only ever read padding. The padding code a_off contributes
 * a_off * w to acc and the same a_off * w to corr, so such taps cancel exactly; dropping them
 * (R, S, pad shrink, P and Q stay) gives the same integers with less work. Done when the live
 * taps form the same square range [t0, t1] in both dimensions (one pad for both); the weights
 * are then read at rows/columns crop_t0 .. crop_t0 + R - 1 of the model's R0 x S0 kernel. */
static void crop_taps(rt_conv *c) {
    int lo[2] = {-1, -1}, hi[2] = {-1, -1};
    const int ext[2] = {c->H, c->W}, n[2] = {c->P, c->Q}, taps[2] = {c->R, c->S};
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < taps[d]; t++) {
            int live = 0;
            for (int p = 0; p < n[d] && !live; p++) {
                const int h = p * c->stride - c->pad + t;
                live = h >= 0 && h < ext[d];
            }
            if (!live) continue;
            if (lo[d] < 0) lo[d] = t;
            hi[d] = t;
        }
    if (lo[0] < 0 || lo[0] != lo[1] || hi[0] != hi[1] || (lo[0] == 0 && hi[0] == c->R - 1 &&
                                                          hi[1] == c->S - 1))
        return;
    const int R = hi[0] - lo[0] + 1, pad = c->pad - lo[0];
    if ((c->H + 2 * pad - R) / c->stride + 1 != c->P || (c->W + 2 * pad - R) / c->stride + 1 != c->Q)
        return;
    c->crop_t0 = lo[0];
    c->R = c->S = R;
    c->pad = pad;
}

void rt_conv_crop_weights(const rt_conv *c, const void *w, void *out, size_t elem) {
    const int Cg = c->C / c->G, t0 = c->crop_t0;
    const unsigned char *src = w;
    unsigned char *dst = out;
    for (int kc = 0; kc < c->K * Cg; kc++)
        for (int r = 0; r < c->R; r++, dst += (size_t)c->S * elem)
            memcpy(dst, src + (((size_t)kc * c->R0 + (size_t)(r + t0)) * c->S0 + (size_t)t0) * elem,
                   (size_t)c->S * elem);
}

mixq_status rt_conv_prepare(rt_conv *c) {
    if (c->fc) {
        c->H = c->W = c->R = c->S = c->stride = 1;
        c->pad = 0;
        c->G = 1;
    }
    if (c->G < 1 || c->C % c->G || c->K % c->G || c->stride < 1)
        return mq_err(MIXQ_ERR_SHAPE, "runtime: layer '%s': bad shape (C=%d K=%d groups=%d)",
                      c->name, c->C, c->K, c->G);
    c->P = (c->H + 2 * c->pad - c->R) / c->stride + 1;
    c->Q = (c->W + 2 * c->pad - c->S) / c->stride + 1;
    if (!c->R0) { /* the model's kernel, before crop_taps */
        c->R0 = c->R;
        c->S0 = c->S;
        c->pad0 = c->pad;
        if (c->P >= 1 && c->Q >= 1 && !c->fc) crop_taps(c);
    }
    c->Kd = c->C / c->G * c->R * c->S;
    c->Kg = c->K / c->G;
    if (c->P < 1 || c->Q < 1 || c->Kd > MQ_BS_MAX_K)
        return mq_err(MIXQ_ERR_SHAPE, "runtime: layer '%s': output %dx%d, K=%d out of range",
                      c->name, c->P, c->Q, c->Kd);
    if (!c->a_float) {
        if (c->a_bits < 1 || c->a_bits > 8)
            return mq_err(MIXQ_ERR_ARG, "runtime: layer '%s': activation bits %d", c->name, c->a_bits);
        int qmin, qmax; /* the fake quantizer's levels (1-bit signed keeps {-1, 0, 1}) */
        mq_levels(c->a_bits, c->a_signed, &qmin, &qmax);
        c->qmin = (float)qmin;
        c->qmax = (float)qmax;
        c->a_off = -qmin; /* codes 0 .. qmax - qmin */
        c->pack_bits = c->a_signed && c->a_bits < 2 ? 2 : c->a_bits;
    }
    c->w_max = 0;
    c->mixed = 0;
    for (int k = 0; k < c->K; k++) {
        if (c->kbits[k] > c->w_max) c->w_max = c->kbits[k];
        if (c->kbits[k] != c->kbits[0]) c->mixed = 1;
    }
    const size_t K = (size_t)c->K;
    if (!c->sc) c->sc = mq_calloc(K, sizeof(float), "runtime scales");
    if (!c->bias) c->bias = mq_calloc(K, sizeof(float), "runtime bias");
    if (!c->bn_a) c->bn_a = mq_calloc(K, sizeof(float), "runtime batch norm");
    if (!c->bn_b) c->bn_b = mq_calloc(K, sizeof(float), "runtime batch norm");
    if (!c->corr) c->corr = mq_calloc(K, sizeof(int32_t), "runtime corrections");
    if (!c->sc || !c->bias || !c->bn_a || !c->bn_b || !c->corr) return MIXQ_ERR_NOMEM;
    return MIXQ_OK;
}

mixq_status rt_conv_pack(rt_conv *c) {
    release_packed(c);
    if (c->kernel == MIXQ_KERNEL_FP32) {
        if (!c->wf) return mq_err(MIXQ_ERR_STATE, "runtime: layer '%s': no float weights", c->name);
        memset(c->corr, 0, sizeof(int32_t) * (size_t)c->K);
        return MIXQ_OK;
    }
    if (!c->wc) return mq_err(MIXQ_ERR_STATE, "runtime: layer '%s': no weight codes", c->name);
    for (int k = 0; k < c->K; k++) {
        int64_t rs = 0;
        for (int j = 0; j < c->Kd; j++) rs += c->wc[(size_t)k * c->Kd + j];
        c->corr[k] = (int32_t)(c->a_off * rs);
    }
    /* weights in the im2col K order: (r, s, c) per group for convs, as they are for fc */
    free(c->wp);
    c->wp = mq_malloc((size_t)c->K * c->Kd, 1, "runtime permuted weights");
    if (!c->wp) return MIXQ_ERR_NOMEM;
    const int Cg = c->C / c->G, RS = c->R * c->S;
    for (int k = 0; k < c->K; k++)
        for (int ci = 0; ci < Cg; ci++)
            for (int rs = 0; rs < RS; rs++)
                c->wp[(size_t)k * c->Kd + (size_t)rs * Cg + ci] = c->wc[(size_t)k * c->Kd + (size_t)ci * RS + rs];
    if (c->kernel == MIXQ_KERNEL_INT8) {
        if (!mq_i8_available())
            return mq_err(MIXQ_ERR_UNSUPPORTED, "runtime: layer '%s': the int8 kernel needs VNNI, "
                          "which this CPU lacks; hint: --kernel bitserial", c->name);
        /* one GEMM per layer: oneDNN's matmul primitive on pre-reordered weights; grouped
         * convs (many tiny GEMMs) use the plain GEMM call */
        if (c->G > 1 && c->G == c->C && c->G == c->K) { /* depthwise: direct loops below */
            c->wdw = mq_malloc((size_t)c->K * c->Kd, sizeof(int32_t), "runtime depthwise weights");
            if (!c->wdw) return MIXQ_ERR_NOMEM;
            for (int k = 0; k < c->K; k++)
                for (int rs = 0; rs < c->Kd; rs++) c->wdw[(size_t)rs * c->K + k] = c->wp[(size_t)k * c->Kd + rs];
            return MIXQ_OK;
        }
        if (c->G != 1) return MIXQ_OK;
        if (!c->fc && c->a_off == 0) { /* unsigned codes: oneDNN's zero padding is exact */
            c->iw_conv = 1;
            return mq_i8_conv_weights_create(c->wp, c->K, c->C, c->H, c->W, c->R, c->S, c->stride,
                                             c->pad, &c->iw);
        }
        return mq_i8_weights_create(c->wp, c->K, c->Kd, &c->iw);
    }
    mixq_status st = mq_bs_tier_select(&c->tier);
    if (st) return st;
    c->bw = mq_calloc((size_t)c->G, sizeof *c->bw, "runtime packed weights");
    if (!c->bw) return MIXQ_ERR_NOMEM;
    /* C not a multiple of 64 whose kernel rows fit as few words as the plain layout (3x3 with
     * C = 16: 3 words of 48 bits): the segment layout, packed from the codes (bitserial.h) */
    /* 3x3 with C = 16 or 32 and weights of up to 4 bits on the vpopcnt tier: the direct
     * convolution on 32-bit words (no K padding to 64-bit words, no row packing; bitserial.h) */
    c->pack_dir = !c->fc && c->G == 1 && !c->dir_off && c->tier == MQ_BS_TIER_VPOPCNT &&
                  mq_bs_conv_dir_pays(c->C, c->R, c->S, c->stride, c->W, c->w_max);
    c->pack_seg = !c->fc && c->G == 1 && !c->pack_dir && !c->seg_plain &&
                  mq_bs_conv_seg_pays(c->C, c->R, c->S, c->W);
    for (int g = 0; g < c->G; g++) {
        st = c->pack_dir ? mq_bs_pack_weights_dir(c->wp, c->kbits, c->Kg, c->C, c->R, c->S, &c->bw[g])
           : c->pack_seg ? mq_bs_pack_weights_seg(c->wp, c->kbits, c->Kg, c->Kd, c->S * c->C, &c->bw[g])
                         : mq_bs_pack_weights(c->wp + (size_t)g * c->Kg * c->Kd, c->kbits + (size_t)g * c->Kg,
                                              c->Kg, c->Kd, &c->bw[g]);
        if (st) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", mixq_last_error());
            return mq_err(st, "runtime: layer '%s': %s", c->name, msg);
        }
    }
    return MIXQ_OK;
}

static void *grow(void **p, size_t *cap, size_t bytes) {
    if (*cap >= bytes) return *p;
    free(*p);
    *p = mq_alloc_aligned(bytes ? bytes : 64, "runtime scratch");
    *cap = *p ? bytes : 0;
    return *p;
}

/* o[j][ch] = t[ch][j] for nb pixels of a [C][RT_QB] block (the quantizer's NCHW -> NHWC step) */
static inline __attribute__((always_inline)) void transpose_block(const uint8_t *restrict t,
                                                                  uint8_t *restrict o, int nb,
                                                                  const int C) {
    for (int j = 0; j < nb; j++)
        for (int ch = 0; ch < C; ch++) o[(size_t)j * C + ch] = t[(size_t)ch * RT_QB + j];
}

/* Activation codes of n images, the same arithmetic as mq_act_fake_quant:
 *   fc:   codes [n][C*H*W] in the input's (NCHW-flattened) order;
 *   conv: codes [n][H][W][C] (NHWC), so an im2col row segment (one kernel row r, all S taps,
 *         all channels) is one contiguous copy. */
static void quantize(const rt_conv *c, const float *x, int n, uint8_t *codes, uint8_t *tmp) {
    const float s = c->s_a, lo = c->qmin, hi = c->qmax;
    const int off = c->a_off, C = c->C;
    const int64_t HW = (int64_t)c->H * c->W, CHW = (int64_t)C * HW;
    for (int i = 0; i < n; i++) {
        const float *xi = x + i * CHW;
        uint8_t *ci = codes + i * CHW;
        if (c->fc || C == 1) { /* already in the output order */
            for (int64_t j = 0; j < CHW; j++) {
                float q = nearbyintf(xi[j] / s);
                q = q < lo ? lo : q > hi ? hi : q;
                ci[j] = (uint8_t)((q == q ? (int)q : 0) + off); /* NaN: never UB */
            }
            continue;
        }
        /* NCHW -> NHWC in blocks of RT_QB pixels: quantize each channel's contiguous run (this
         * loop vectorizes), then transpose the small block */
        for (int64_t j0 = 0; j0 < HW; j0 += RT_QB) {
            const int nb = (int)(HW - j0 < RT_QB ? HW - j0 : RT_QB);
            for (int ch = 0; ch < C; ch++) {
                const float *xp = xi + ch * HW + j0;
                uint8_t *t = tmp + (size_t)ch * RT_QB;
                for (int j = 0; j < nb; j++) {
                    float q = nearbyintf(xp[j] / s);
                    q = q < lo ? lo : q > hi ? hi : q;
                    t[j] = (uint8_t)((q == q ? (int)q : 0) + off);
                }
            }
            if (C == 3) /* RGB: a constant C lets the compiler interleave in vectors */
                transpose_block(tmp, ci + j0 * C, nb, 3);
            else
                transpose_block(tmp, ci + j0 * C, nb, C);
        }
    }
}

/* memcpy for the short runs of im2col (a libc call costs more than copying 3..48 bytes): two
 * fixed-size copies that overlap in the middle (1-4, 4-8, 8-16, 16-32, 32-64 bytes), the way
 * libc's small-size paths do it, so neither reads nor writes past the n bytes. */
static inline void copy_small(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
#define MQ_COPY2(B)                                                                                \
    do {                                                                                           \
        uint8_t t0[B], t1[B];                                                                      \
        memcpy(t0, s, B);                                                                          \
        memcpy(t1, s + n - B, B);                                                                  \
        memcpy(d, t0, B);                                                                          \
        memcpy(d + n - B, t1, B);                                                                  \
    } while (0)
    if (n >= 64) memcpy(d, s, n);
    else if (n >= 32) MQ_COPY2(32);
    else if (n >= 16) MQ_COPY2(16);
    else if (n >= 8) MQ_COPY2(8);
    else if (n >= 4) MQ_COPY2(4);
    else
        for (size_t i = 0; i < n; i++) d[i] = s[i];
#undef MQ_COPY2
}

/* Rows of one image for group g: col [P*Q][Kd] from codes [H][W][C], K order (r, s, c) within
 * the group's Cg channels (the weights are permuted to match at pack time). */
static void im2col_u8(const rt_conv *c, const uint8_t *codes, int g, uint8_t *col) {
    const int C = c->C, Cg = C / c->G, R = c->R, S = c->S, H = c->H, W = c->W;
    const uint8_t padv = (uint8_t)c->a_off;
    const int whole = c->G == 1; /* (w0..w0+S-1, all channels) is one contiguous run */
    for (int p = 0; p < c->P; p++)
        for (int q = 0; q < c->Q; q++) {
            uint8_t *row = col + ((size_t)p * c->Q + q) * c->Kd;
            const int h0 = p * c->stride - c->pad, w0 = q * c->stride - c->pad;
            for (int r = 0; r < R; r++) {
                const int h = h0 + r;
                uint8_t *o = row + (size_t)r * S * Cg;
                if (h < 0 || h >= H) {
                    memset(o, padv, (size_t)S * Cg);
                    continue;
                }
                const uint8_t *ln = codes + (size_t)h * W * C + (size_t)g * Cg;
                if (whole && w0 >= 0 && w0 + S <= W) {
                    copy_small(o, ln + (size_t)w0 * C, (size_t)S * C);
                    continue;
                }
                for (int t = 0; t < S; t++) {
                    const int w = w0 + t;
                    if (w < 0 || w >= W) memset(o + t * Cg, padv, (size_t)Cg);
                    else if (Cg == 1) o[t] = ln[(size_t)w * C];
                    else copy_small(o + t * Cg, ln + (size_t)w * C, (size_t)Cg);
                }
            }
        }
}

/* im2col_u8 for one group whose kernel rows are short (S * C <= 16 bytes: a first layer on grey
 * or colour images, lenet5's 5x5 conv1, vgg11's 3x3 conv on RGB): the image is laid into a plane
 * padded with a_off, in which every kernel row of every output is S * C contiguous bytes, copied
 * as one 8- or 16-byte word (the bytes past it are overwritten by the next row, or land in the
 * IM2COL_SLACK bytes after col; the plane has as many after it to read).
 * The same rows as im2col_u8 (its twin: tests compare the two). plane: im2col_short_plane bytes. */
#define IM2COL_SLACK 16
static int im2col_short(const rt_conv *c) { return c->G == 1 && !c->fc && c->S * c->C <= 16; }
static size_t im2col_short_plane(const rt_conv *c) {
    return (size_t)((c->P - 1) * c->stride + c->R) * (size_t)((c->Q - 1) * c->stride + c->S) * c->C + IM2COL_SLACK;
}
static inline __attribute__((always_inline)) void short_rows(const rt_conv *c, const uint8_t *plane,
                                                             uint8_t *col, size_t rowb, const int B) {
    const int R = c->R, L = c->S * c->C, Kd = c->Kd, st = c->stride;
    for (int p = 0; p < c->P; p++)
        for (int q = 0; q < c->Q; q++) {
            uint8_t *row = col + ((size_t)p * c->Q + q) * Kd;
            const uint8_t *src = plane + (size_t)p * st * rowb + (size_t)q * st * c->C;
            for (int r = 0; r < R; r++) memcpy(row + r * L, src + r * rowb, (size_t)B);
        }
}
static void im2col_short_rows(const rt_conv *c, const uint8_t *codes, uint8_t *plane, uint8_t *col) {
    const int C = c->C, R = c->R, S = c->S, H = c->H, W = c->W, st = c->stride, pad = c->pad;
    const int Hp = (c->P - 1) * st + R, Wp = (c->Q - 1) * st + S;
    const size_t rowb = (size_t)Wp * C;
    memset(plane, c->a_off, im2col_short_plane(c));
    for (int y = 0; y < Hp; y++) {
        const int h = y - pad;
        if (h < 0 || h >= H) continue;
        const int x0 = pad > 0 ? pad : 0, w0 = x0 - pad, w1 = W < Wp - pad ? W : Wp - pad;
        if (w1 > w0) memcpy(plane + (size_t)y * rowb + (size_t)x0 * C, codes + ((size_t)h * W + w0) * C, (size_t)(w1 - w0) * C);
    }
    if (S * C <= 8) short_rows(c, plane, col, rowb, 8);
    else short_rows(c, plane, col, rowb, 16);
}

static void im2col_f(const rt_conv *c, const float *xq, int g, float *col) {
    const int Cg = c->C / c->G, R = c->R, S = c->S, H = c->H, W = c->W;
    for (int p = 0; p < c->P; p++)
        for (int q = 0; q < c->Q; q++) {
            float *row = col + ((size_t)p * c->Q + q) * c->Kd;
            const int h0 = p * c->stride - c->pad, w0 = q * c->stride - c->pad;
            for (int ci = 0; ci < Cg; ci++)
                for (int r = 0; r < R; r++)
                    for (int s = 0; s < S; s++) {
                        const int h = h0 + r, w = w0 + s;
                        row[(ci * R + r) * S + s] =
                            (h < 0 || h >= H || w < 0 || w >= W)
                                ? 0.0f
                                : xq[(size_t)(g * Cg + ci) * H * W + (size_t)h * W + w];
                    }
        }
}

static inline float epi(const rt_conv *c, int k, float z) {
    z = z * c->sc[k] + c->bias[k];
    if (c->has_bn) z = z * c->bn_a[k] + c->bn_b[k];
    if (c->act == 1) z = z > 0 ? z : 0.0f;
    else if (c->act == 2) z = z > 0 ? (z < 6.0f ? z : 6.0f) : 0.0f;
    return z;
}

/* One image's epilogue for channels k0..k0+Kg-1 from acc [PQ][Kg], blocked over pixels so the
 * strided reads stay in L1; the same float operations, in the same order, as epi().
 *   float output:  y [K][PQ] (NCHW);
 *   fused re-quantization (c->out_codes): the consumer layer's codes, exactly what its own
 *   quantizer would compute from that float (clamp(nearbyintf(z / s)) + off), stored as
 *   [PQ][K] (NHWC) for a conv consumer or [K][PQ] for a linear one. */
/* The epilogue's float for one accumulator: scale, bias, batch norm (bn), clamp to [lo, hi]
 * (ReLU / ReLU6 / none). bn = 0 multiplies by 1 and adds 0, as bn = 1 with bna = 1, bnb = 0. */
static inline __attribute__((always_inline)) float epi_z(int32_t a, int32_t corr, float sc,
                                                         float bias, float bna, float bnb,
                                                         const int bn, float lo, float hi) {
    float z = (float)(a - corr) * sc + bias;
    z = bn ? z * bna + bnb : z * 1.0f + 0.0f;
    z = z < lo ? lo : z;
    return z > hi ? hi : z;
}

/* The code one accumulator re-quantizes to (out_codes): epi_z, then the consumer's quantizer.
 * Every code-writing epilogue and the threshold search use it, so all compute the very same
 * function. */
static inline __attribute__((always_inline)) int requant_code(
    int32_t a, int32_t corr, float sc, float bias, float bna, float bnb, const int bn, float lo,
    float hi, float qs, float qlo, float qhi, int qoff) {
    const float z = epi_z(a, corr, sc, bias, bna, bnb, bn, lo, hi);
    float q = nearbyintf(z / qs);
    q = q < qlo ? qlo : q; /* two steps, each a vmaxps / vminps (the same result: qlo <= qhi) */
    q = q > qhi ? qhi : q;
    return (q == q ? (int)q : 0) + qoff;
}

static int requant_k(const rt_conv *c, int k, int32_t a) {
    return requant_code(a, c->corr[k], c->sc[k], c->bias[k], c->bn_a[k], c->bn_b[k], c->has_bn,
                        c->act ? 0.0f : -INFINITY, c->act == 2 ? 6.0f : INFINITY, c->nq_s,
                        c->nq_lo, c->nq_hi, c->nq_off);
}


/* c->flat for a layer that re-quantizes (out_codes) with one group; left NULL (the per-channel
 * loops run instead) when out of memory or not applicable. */
static void flat_params(rt_conv *c) {
    free(c->flat);
    c->flat = NULL;
    c->flat_e = 0;
    if (!c->out_codes || c->G != 1 || c->K < 1) return;
    int e = c->K; /* whole 64-byte vectors of codes: the loop then has no scalar remainder */
    while (e % 64 && e <= 8192) e += c->K;
    if (e % 64) return;
    /* and at least 1024 entries (20 KB of parameters, in L1): the inner loop then runs 16+
     * vectors per pass (64-channel vgg11 conv1's epilogue: 25 -> 23 us per image at batch 64) */
    for (const int l = e; e < 1024;) e += l;
    float *f = mq_malloc((size_t)e * 5, sizeof(float), "runtime epilogue parameters");
    if (!f) {
        mixq_clear_error();
        return;
    }
    int32_t *corr = (int32_t *)(f + (size_t)4 * e);
    for (int j = 0; j < e; j++) {
        const int k = j % c->K;
        f[j] = c->sc[k];
        f[e + j] = c->bias[k];
        f[2 * e + j] = c->has_bn ? c->bn_a[k] : 1.0f;
        f[3 * e + j] = c->has_bn ? c->bn_b[k] : 0.0f;
        corr[j] = c->corr[k];
    }
    c->flat = f;
    c->flat_e = e;
}

void rt_conv_thresholds(rt_conv *c) {
    free(c->thr);
    c->thr = NULL;
    c->thr_n = 0;
    flat_params(c);
    if (c->out_codes != 1) return;
    const int levels = (int)(c->nq_hi - c->nq_lo) + 1;
    if (levels < 2 || levels > RT_THR_MAX + 1) return;
    for (int k = 0; k < c->K; k++) { /* finite, moderate parameters: the map is monotone */
        const float v[4] = {c->sc[k], c->bias[k], c->has_bn ? c->bn_a[k] : 1.0f,
                            c->has_bn ? c->bn_b[k] : 0.0f};
        for (int i = 0; i < 4; i++)
            if (!(fabsf(v[i]) < 1e20f)) return;
    }
    const int L = levels - 1;
    int32_t *t = mq_malloc((size_t)(L + 2) * c->K, sizeof(int32_t), "runtime thresholds");
    if (!t) return; /* the float epilogue computes the same codes */
    int32_t *mask = t + (size_t)L * c->K, *base = mask + c->K;
    for (int k = 0; k < c->K; k++) {
        /* the accumulators that can occur: |acc| and |acc - corr| are below 65536 * 255 * 128
         * < 2^31 - 1 (bitserial.h), so searching [amin, amax] keeps acc - corr in int32 */
        const int64_t amin = MQ_MAX(-(int64_t)INT32_MAX, (int64_t)c->corr[k] - INT32_MAX);
        const int64_t amax = MQ_MIN((int64_t)INT32_MAX - 1, (int64_t)c->corr[k] + INT32_MAX - 1);
        const int f0 = requant_k(c, k, (int32_t)amin), f1 = requant_k(c, k, (int32_t)amax);
        const int dec = f0 > f1; /* decreasing (a negative scale): search on ~acc */
        mask[k] = dec ? -1 : 0;
        base[k] = dec ? f1 : f0; /* the lowest code */
        for (int j = 1; j <= L; j++) {
            const int want = base[k] + j;
            /* increasing: the least acc with f >= want; decreasing: the largest, as ~acc */
            int64_t lo = amin, hi = amax;
            int32_t thr;
            if (!dec) {
                if (f1 < want) {
                    thr = INT32_MAX; /* never reached: acc < INT32_MAX */
                } else {
                    while (lo < hi) {
                        const int64_t mid = lo + (hi - lo) / 2;
                        if (requant_k(c, k, (int32_t)mid) >= want) hi = mid;
                        else lo = mid + 1;
                    }
                    thr = (int32_t)lo;
                }
            } else {
                if (f0 < want) {
                    thr = INT32_MAX; /* ~acc >= INT32_MAX never holds */
                } else {
                    while (lo < hi) {
                        const int64_t mid = lo + (hi - lo + 1) / 2;
                        if (requant_k(c, k, (int32_t)mid) >= want) lo = mid;
                        else hi = mid - 1;
                    }
                    thr = ~(int32_t)lo;
                }
            }
            t[(size_t)(j - 1) * c->K + k] = thr;
        }
    }
    c->thr = t;
    c->thr_n = L;
}

/* Re-quantization by thresholds (rt_conv_thresholds): code = base + #{j : (acc ^ mask) >= t_j},
 * the same codes as the float path with 1..RT_THR_MAX compares per output. */
static inline __attribute__((always_inline)) void epilogue_thr(const rt_conv *c,
                                                               const int32_t *restrict acc, int k0,
                                                               int Kg, int ld, int64_t PQ,
                                                               uint8_t *restrict y, const int L) {
    const int K = c->K;
    const int32_t *restrict mask = c->thr + (size_t)L * K + k0, *restrict base = mask + K;
    const int32_t *restrict t0 = c->thr + k0, *restrict t1 = t0 + (L > 1 ? K : 0),
                            *restrict t2 = t0 + (L > 2 ? 2 * K : 0);
    for (int64_t pq = 0; pq < PQ; pq++) {
        const int32_t *restrict ar = acc + pq * ld;
        uint8_t *restrict yo = y + (size_t)pq * K + k0;
        for (int kk = 0; kk < Kg; kk++) {
            const int32_t a = ar[kk] ^ mask[kk];
            int32_t code = base[kk] + (a >= t0[kk]);
            if (L > 1) code += a >= t1[kk];
            if (L > 2) code += a >= t2[kk];
            yo[kk] = (uint8_t)code;
        }
    }
}

/* The NHWC-codes case of rt_conv_epilogue (out_codes == 1): acc rows, the per-channel parameters
 * and the output row are all contiguous over channels, so the inner loop vectorizes; bn is a
 * compile-time constant at both call sites. Same operations per element as below. */
static inline __attribute__((always_inline)) void epilogue_nhwc(const rt_conv *c,
                                                                const int32_t *restrict acc,
                                                                int k0, int Kg, int ld, int64_t PQ,
                                                                uint8_t *restrict y, const int bn) {
    const float lo = c->act ? 0.0f : -INFINITY, hi = c->act == 2 ? 6.0f : INFINITY;
    const float qs = c->nq_s, qlo = c->nq_lo, qhi = c->nq_hi;
    const int qoff = c->nq_off, K = c->K;
    const float *restrict sc = c->sc + k0, *restrict bias = c->bias + k0;
    const float *restrict bna = c->bn_a + k0, *restrict bnb = c->bn_b + k0;
    const int32_t *restrict corr = c->corr + k0;
    for (int64_t pq = 0; pq < PQ; pq++) {
        const int32_t *restrict ar = acc + pq * ld;
        uint8_t *restrict yo = y + (size_t)pq * K + k0;
        for (int kk = 0; kk < Kg; kk++)
            yo[kk] = (uint8_t)requant_code(ar[kk], corr[kk], sc[kk], bias[kk], bna[kk], bnb[kk],
                                           bn, lo, hi, qs, qlo, qhi, qoff);
    }
}

#if defined(__GNUC__) && !defined(__clang__)
/* full-width vectors for the epilogue (GCC's tuning otherwise keeps AVX-512 machines at 256) */
__attribute__((target("prefer-vector-width=512")))
#endif
void rt_conv_epilogue(const rt_conv *c, const int32_t *acc, int k0, int kn, int ld, int64_t PQ,
                         void *y) {
    const int Kg = kn;
    if (c->out_codes == 1 && c->thr) { /* 1- and 2-bit codes: integer thresholds */
        if (c->thr_n == 1) epilogue_thr(c, acc, k0, Kg, ld, PQ, (uint8_t *)y, 1);
        else if (c->thr_n == 2) epilogue_thr(c, acc, k0, Kg, ld, PQ, (uint8_t *)y, 2);
        else epilogue_thr(c, acc, k0, Kg, ld, PQ, (uint8_t *)y, 3);
        return;
    }
    if (c->out_codes == 1) {
        if (c->has_bn) epilogue_nhwc(c, acc, k0, Kg, ld, PQ, (uint8_t *)y, 1);
        else epilogue_nhwc(c, acc, k0, Kg, ld, PQ, (uint8_t *)y, 0);
        return;
    }
    const float lo = c->act ? 0.0f : -INFINITY, hi = c->act == 2 ? 6.0f : INFINITY;
    const float qs = c->nq_s, qlo = c->nq_lo, qhi = c->nq_hi;
    const int qoff = c->nq_off;
    enum { BLK = 64 };
    for (int64_t p0 = 0; p0 < PQ; p0 += BLK) {
        const int64_t p1 = p0 + BLK < PQ ? p0 + BLK : PQ;
        for (int kk = 0; kk < Kg; kk++) {
            const int k = k0 + kk;
            const float sc = c->sc[k], b = c->bias[k];
            const float ba = c->has_bn ? c->bn_a[k] : 1.0f, bb = c->has_bn ? c->bn_b[k] : 0.0f;
            const int32_t corr = c->corr[k];
            const int32_t *ac = acc + kk;
            if (!c->out_codes) {
                float *yo = (float *)y + (size_t)k * PQ;
                for (int64_t pq = p0; pq < p1; pq++)
                    yo[pq] = epi_z(ac[pq * ld], corr, sc, b, ba, bb, 1, lo, hi);
                continue;
            }
            uint8_t *yo = (uint8_t *)y + (size_t)k * PQ; /* out_codes == 2: [K][PQ] */
            for (int64_t pq = p0; pq < p1; pq++)
                yo[pq] = (uint8_t)requant_code(ac[pq * ld], corr, sc, b, ba, bb, 1, lo, hi, qs,
                                               qlo, qhi, qoff);
        }
    }
}

/* Re-quantization of `total` accumulators acc [..][K] to codes y [..][K] (the same layout), total
 * a multiple of K, with the repeated parameters c->flat: the same requant_code per element as
 * epilogue_nhwc, in vectors whatever K is. bn = 1 with bn_a 1, bn_b 0 where the layer has no
 * batch norm: the very operations epi_z does without it (z * 1 + 0). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((target("prefer-vector-width=512")))
#endif
static void epilogue_flat(const rt_conv *c, const int32_t *restrict acc, int64_t total,
                          uint8_t *restrict y) {
    const float lo = c->act ? 0.0f : -INFINITY, hi = c->act == 2 ? 6.0f : INFINITY;
    const float qs = c->nq_s, qlo = c->nq_lo, qhi = c->nq_hi;
    const int qoff = c->nq_off, e = c->flat_e;
    const float *restrict sc = c->flat, *restrict bias = sc + e, *restrict bna = sc + 2 * e,
                          *restrict bnb = sc + 3 * e;
    const int32_t *restrict corr = (const int32_t *)(sc + 4 * (size_t)e);
    for (int64_t i0 = 0; i0 < total; i0 += e) {
        const int m = total - i0 < e ? (int)(total - i0) : e;
        const int32_t *restrict a = acc + i0;
        uint8_t *restrict yo = y + i0;
        for (int j = 0; j < m; j++)
            yo[j] = (uint8_t)requant_code(a[j], corr[j], sc[j], bias[j], bna[j], bnb[j], 1, lo, hi, qs,
                                          qlo, qhi, qoff);
    }
}

/* rt_conv_epilogue of n images whose accumulators for group g lie at acc [n][PQ][Kg]; output into
 * the codes (cout) or floats (yout) of each image. */
static void epilogue_images(const rt_conv *c, const int32_t *acc, int n, int g, int64_t PQ,
                            uint8_t *cout, float *yout) {
    const int64_t out_img = (int64_t)c->K * PQ;
    /* codes in the accumulators' own layout ([n][PQ][K] NHWC, or [n][K] for a linear consumer
     * of a 1x1 map): one flat pass, unless integer thresholds do it */
    if (c->flat && cout && !(c->out_codes == 1 && c->thr) && (c->out_codes == 1 || PQ == 1)) {
        epilogue_flat(c, acc, (int64_t)n * PQ * c->K, cout);
        return;
    }
    for (int i = 0; i < n; i++)
        rt_conv_epilogue(c, acc + (size_t)i * PQ * c->Kg, g * c->Kg, c->Kg, c->Kg, PQ,
                     cout ? (void *)(cout + (size_t)i * out_img) : (void *)(yout + (size_t)i * out_img));
}

/* Depthwise int8 convolution (K == C == G) of one image, exact in int32:
 *   codes uint8 [H][W][C] (NHWC), wdw int32 [R*S][C], acc int32 [P*Q][C];
 *   taps outside the image read the padding code a_off (as im2col would), so the epilogue's
 *   offset correction applies unchanged. The inner loop runs over contiguous channels. */
static void depthwise_i32(const rt_conv *c, const uint8_t *codes, int32_t *acc) {
    const int C = c->C, H = c->H, W = c->W, R = c->R, S = c->S;
    const int32_t padv = c->a_off;
    for (int p = 0; p < c->P; p++)
        for (int q = 0; q < c->Q; q++) {
            int32_t *a = acc + ((size_t)p * c->Q + q) * C;
            for (int k = 0; k < C; k++) a[k] = 0;
            for (int r = 0; r < R; r++) {
                const int h = p * c->stride - c->pad + r;
                for (int t = 0; t < S; t++) {
                    const int w = q * c->stride - c->pad + t;
                    const int32_t *wk = c->wdw + ((size_t)r * S + t) * C;
                    if (h < 0 || h >= H || w < 0 || w >= W) {
                        for (int k = 0; k < C; k++) a[k] += padv * wk[k];
                        continue;
                    }
                    const uint8_t *x = codes + ((size_t)h * W + w) * C;
                    for (int k = 0; k < C; k++) a[k] += (int32_t)x[k] * wk[k];
                }
            }
        }
}

/* The integer layer on n images' input codes [n][in_img] (NHWC for convs): im2col or the packing,
 * the GEMM and the epilogue into cout (codes) or yout (floats). */
static mixq_status run_codes(rt_conv *c, const uint8_t *codes, int n, uint8_t *cout, float *yout,
                             rt_scratch *s, int kthreads) {
    const int64_t in_img = (int64_t)c->C * c->H * c->W, PQ = (int64_t)c->P * c->Q;
    const int64_t out_img = (int64_t)c->K * PQ;
    const size_t M = (size_t)n * (size_t)PQ;
    mixq_status st = MIXQ_OK;
    const int dw = c->kernel == MIXQ_KERNEL_INT8 && c->wdw;
    /* depthwise: one image's [PQ][K] at a time (Kg is 1 there) */
    int32_t *acc = grow((void **)&s->acc, &s->acc_cap,
                        sizeof(int32_t) * (dw ? (size_t)PQ * c->K : M * (size_t)c->Kg));
    if (!acc) return MIXQ_ERR_NOMEM;
    if (dw) { /* depthwise: direct loops on NHWC codes */
        for (int i = 0; i < n; i++) {
            depthwise_i32(c, codes + (size_t)i * in_img, acc);
            rt_conv_epilogue(c, acc, 0, c->K, c->K, PQ,
                         cout ? (void *)(cout + (size_t)i * out_img) : (void *)(yout + (size_t)i * out_img));
        }
        return MIXQ_OK;
    }
    if (c->kernel == MIXQ_KERNEL_INT8 && c->iw_conv) { /* direct convolution on the NHWC codes */
        if ((st = mq_i8_conv(c->iw, codes, n, acc, &s->i8t))) return st;
        epilogue_images(c, acc, n, 0, PQ, cout, yout);
        return MIXQ_OK;
    }
    /* bit-serial convs packed straight from the codes (no im2col copy): with whole 64-channel
     * words per tap each input pixel is packed once and the rows are assembled from its words;
     * pack_seg layers (16 channels, 3x3) take the segment layout from the packed input rows */
    const int pack_direct = c->kernel == MIXQ_KERNEL_BITSERIAL && !c->fc && c->G == 1 &&
                            (c->C % 64 == 0 || c->pack_seg || c->pack_dir);
    if (pack_direct && c->pack_dir) { /* straight to the accumulators */
        if ((st = mq_bs_conv_dir(codes, n, c->H, c->W, c->C, c->R, c->S, c->stride, c->pad,
                                 (uint8_t)c->a_off, c->pack_bits, &c->bw[0], c->tier, kthreads,
                                 &s->seg, acc, c->Kg)))
            return st;
        epilogue_images(c, acc, n, 0, PQ, cout, yout);
        return MIXQ_OK;
    }
    const uint8_t *col = c->fc || pack_direct ? codes
                                              : grow((void **)&s->col, &s->col_cap, M * (size_t)c->Kd + IM2COL_SLACK);
    if (!col) return MIXQ_ERR_NOMEM;
    uint8_t *plane = NULL;
    if (!c->fc && !pack_direct && im2col_short(c) && !c->im2col_plain &&
        !(plane = grow((void **)&s->plane, &s->plane_cap, im2col_short_plane(c))))
        return MIXQ_ERR_NOMEM;
    for (int g = 0; g < c->G; g++) {
        if (!c->fc && !pack_direct)
            for (int i = 0; i < n; i++) {
                uint8_t *ci = (uint8_t *)col + (size_t)i * PQ * c->Kd;
                if (plane) im2col_short_rows(c, codes + (size_t)i * in_img, plane, ci);
                else im2col_u8(c, codes + (size_t)i * in_img, g, ci);
            }
        if (c->kernel == MIXQ_KERNEL_INT8) {
            st = c->iw ? mq_i8_matmul(c->iw, col, (int)M, acc, &s->i8t)
                       : mq_i8_gemm(col, c->wp + (size_t)g * c->Kg * c->Kd, (int)M, c->Kg, c->Kd, acc, c->Kg);
        } else {
            st = c->pack_seg ? mq_bs_pack_conv_seg(codes, n, c->H, c->W, c->C, c->R, c->S, c->stride,
                                                   c->pad, (uint8_t)c->a_off, c->pack_bits, c->tier,
                                                   &s->seg, &s->acts)
                 : pack_direct ? mq_bs_pack_conv(codes, n, c->H, c->W, c->C, c->R, c->S, c->stride, c->pad,
                                                 (uint8_t)c->a_off, c->pack_bits, c->tier, &s->pix, &s->acts)
                               : mq_bs_pack_acts_ex(col, c->pack_bits, (int)M, c->Kd, c->tier, &s->acts);
            if (!st) st = mq_bs_gemm_ex(&s->acts, &c->bw[g], acc, c->Kg, c->tier, kthreads);
        }
        if (st) return st;
        epilogue_images(c, acc, n, g, PQ, cout, yout);
    }
    return MIXQ_OK;
}

mixq_status rt_conv_run(rt_conv *c, const void *xv, void *yv, int i0, int i1, rt_scratch *s,
                        int kthreads) {
    const int n = i1 - i0;
    if (n <= 0) return MIXQ_OK;
    const int64_t in_img = (int64_t)c->C * c->H * c->W, PQ = (int64_t)c->P * c->Q;
    const int64_t out_img = (int64_t)c->K * PQ;
    const size_t M = (size_t)n * (size_t)PQ;
    /* float tensors, or uint8 codes when fused re-quantization links two layers */
    const float *xin = c->in_codes ? NULL : (const float *)xv + (size_t)i0 * in_img;
    const uint8_t *cin = c->in_codes ? (const uint8_t *)xv + (size_t)i0 * in_img : NULL;
    float *yout = c->out_codes ? NULL : (float *)yv + (size_t)i0 * out_img;
    uint8_t *cout = c->out_codes ? (uint8_t *)yv + (size_t)i0 * out_img : NULL;
    mixq_status st = MIXQ_OK;

    if (c->kernel == MIXQ_KERNEL_FP32) {
        if (c->in_codes || c->out_codes)
            return mq_err(MIXQ_ERR_STATE, "runtime: layer '%s': fp32 layers do not fuse codes", c->name);
        /* x_q in float (or x itself), then col and sgemm per group */
        float *xq = grow((void **)&s->fcol, &s->fcol_cap,
                         sizeof(float) * ((size_t)n * in_img + (c->fc ? 0 : M * (size_t)c->Kd)));
        float *facc = grow((void **)&s->facc, &s->facc_cap, sizeof(float) * M * (size_t)c->Kg);
        if (!xq || !facc) return MIXQ_ERR_NOMEM;
        for (int64_t i = 0; i < n * in_img; i++) {
            if (c->a_float) {
                xq[i] = xin[i];
            } else {
                float q = nearbyintf(xin[i] / c->s_a);
                q = q < c->qmin ? c->qmin : q > c->qmax ? c->qmax : q;
                xq[i] = q * c->s_a;
            }
        }
        float *col = xq + (size_t)n * in_img;
        for (int g = 0; g < c->G; g++) {
            const float *a = xq;
            if (!c->fc) {
                for (int i = 0; i < n; i++) im2col_f(c, xq + (size_t)i * in_img, g, col + (size_t)i * PQ * c->Kd);
                a = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, c->Kg, c->Kd, 1.0f, a,
                        c->Kd, c->wf + (size_t)g * c->Kg * c->Kd, c->Kd, 0.0f, facc, c->Kg);
            for (int i = 0; i < n; i++)
                for (int kk = 0; kk < c->Kg; kk++) {
                    const int k = g * c->Kg + kk;
                    float *yo = yout + (size_t)i * out_img + (size_t)k * PQ;
                    const float *fa = facc + (size_t)i * PQ * c->Kg + kk;
                    for (int64_t pq = 0; pq < PQ; pq++) yo[pq] = epi(c, k, fa[pq * c->Kg]);
                }
        }
        return MIXQ_OK;
    }

    const uint8_t *codes = cin;
    if (!codes) {
        uint8_t *cb = grow((void **)&s->codes, &s->codes_cap, (size_t)n * (size_t)in_img);
        uint8_t *qtmp = grow((void **)&s->qt, &s->qt_cap, (size_t)c->C * RT_QB);
        if (!cb || !qtmp) return MIXQ_ERR_NOMEM;
        quantize(c, xin, n, cb, qtmp);
        codes = cb;
    }
    /* sub-batches of at most RT_SUB_BYTES of accumulators (rt.h), of near-equal sizes: a layer
     * sees at most two GEMM heights per chunk size */
    const int64_t acc_img = PQ * (int64_t)c->Kg * (int64_t)sizeof(int32_t);
    const int per = (int)MQ_MAX(1, MQ_MIN((int64_t)n, RT_SUB_BYTES / MQ_MAX(acc_img, 1)));
    const int subs = (n + per - 1) / per;
    for (int b = 0; b < subs && !st; b++) {
        const int j0 = (int)((int64_t)n * b / subs), j1 = (int)((int64_t)n * (b + 1) / subs);
        st = run_codes(c, codes + (size_t)j0 * in_img, j1 - j0,
                       cout ? cout + (size_t)j0 * out_img : NULL,
                       yout ? yout + (size_t)j0 * out_img : NULL, s, kthreads);
    }
    return st;
}

mixq_status rt_run_chunks(int n, int chunks, rt_chunk_fn fn, void *ctx) {
    mixq_status err[64] = {0}, st = MIXQ_OK;
    static _Thread_local char msg[256]; /* a worker's message, carried to this thread */
    char first[256] = "";
    chunks = MQ_MAX(1, MQ_MIN(64, chunks));
#pragma omp parallel for schedule(static) num_threads(chunks)
    for (int t = 0; t < chunks; t++) {
        const int i0 = mq_split(n, t, chunks), i1 = mq_split(n, t + 1, chunks);
        err[t] = fn(ctx, t, i0, i1);
        if (err[t]) {
            snprintf(msg, sizeof msg, "%s", mixq_last_error());
#pragma omp critical(mq_rt_err)
            if (!first[0]) snprintf(first, sizeof first, "%s", msg);
        }
    }
    for (int t = 0; t < chunks && !st; t++) st = err[t];
    if (st) st = mq_err(st, "%s", first[0] ? first : "runtime: a worker thread failed");
    return st;
}

typedef struct conv_chunks {
    rt_conv *c;
    const void *x;
    void *y;
    rt_scratch *scr;
} conv_chunks;

static mixq_status conv_chunk(void *ctx, int t, int i0, int i1) {
    const conv_chunks *k = ctx;
    return rt_conv_run(k->c, k->x, k->y, i0, i1, &k->scr[t], 1);
}

mixq_status rt_conv_forward(rt_conv *c, const void *x, void *y, int n, rt_scratch *scr,
                            int nscr) {
    const double t0 = mq_now();
    mixq_status st;
    const int T = MQ_MIN(nscr, mq_threads());
    if (n > 1 && T > 1) {
        conv_chunks k = {c, x, y, scr};
        st = rt_run_chunks(n, MQ_MIN(n, T), conv_chunk, &k);
    } else {
        st = rt_conv_run(c, x, y, 0, n, &scr[0], T);
    }
    c->seconds += mq_now() - t0;
    c->images += n;
    return st;
}
