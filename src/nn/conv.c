/* Convolution kernels (FP32), forward and backward.
 *
 * Shapes (mq_conv_shape): x [N][C][H][W], w [K][C/G][R][S] (KCRS), b [K], y [N][K][P][Q],
 * dy like y, dx like x, dw like w, db like b. G = groups; Cg = C/G input channels and
 * Kg = K/G output channels per group.
 *
 * Fast path (Cg > 1): im2col + cblas_sgemm over chunks of `g` images (g from the shape and N
 * only, never from the thread count) so that GEMMs are wide: col [Cg*R*S][g*P*Q].
 * Depthwise path (Cg == 1): direct loops.
 * Determinism: forward and backward-data write disjoint outputs per image; dw/db are reduced
 * per chunk into private partials which are then summed in chunk order.
 */
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_dnnl.h"
#include "nn/kernels.h"

mixq_status mq_conv_shape_init(mq_conv_shape *s) {
    if (s->N < 1 || s->C < 1 || s->H < 1 || s->W < 1 || s->K < 1 || s->R < 1 || s->S < 1)
        return mq_err(MIXQ_ERR_SHAPE, "conv: sizes must be positive (N %d C %d H %d W %d K %d R %d S %d)",
                      s->N, s->C, s->H, s->W, s->K, s->R, s->S);
    if (s->sh < 1 || s->sw < 1 || s->pt < 0 || s->pl < 0 || s->pb < 0 || s->pr < 0 || s->groups < 1)
        return mq_err(MIXQ_ERR_SHAPE, "conv: strides %dx%d, pads %d,%d,%d,%d, groups %d invalid", s->sh,
                      s->sw, s->pt, s->pl, s->pb, s->pr, s->groups);
    if (s->C % s->groups || s->K % s->groups)
        return mq_err(MIXQ_ERR_SHAPE, "conv: %d input and %d output channels are not divisible "
                      "by %d groups", s->C, s->K, s->groups);
    if (s->R > 65536 || s->S > 65536 || MQ_MAX(MQ_MAX(s->pt, s->pb), MQ_MAX(s->pl, s->pr)) > 65536)
        return mq_err(MIXQ_ERR_SHAPE, "conv: %dx%d kernel, pads %d,%d,%d,%d: at most 65536", s->R, s->S,
                      s->pt, s->pl, s->pb, s->pr);
    int64_t ph = (int64_t)s->H + s->pt + s->pb - s->R, pw = (int64_t)s->W + s->pl + s->pr - s->S;
    if (ph < 0 || pw < 0)
        return mq_err(MIXQ_ERR_SHAPE, "conv: %dx%d kernel larger than the %dx%d input padded by %d,%d,%d,%d",
                      s->R, s->S, s->H, s->W, s->pt, s->pl, s->pb, s->pr);
    if (ph / s->sh >= INT32_MAX || pw / s->sw >= INT32_MAX)
        return mq_err(MIXQ_ERR_SHAPE, "conv: output of %lldx%lld too large", (long long)(ph / s->sh + 1),
                      (long long)(pw / s->sw + 1));
    s->P = (int)(ph / s->sh + 1);
    s->Q = (int)(pw / s->sw + 1);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- reference twins */
void mq_conv2d_forward_ref(const mq_conv_shape *s, const float *x, const float *w, const float *b,
                           float *y) {
    const int Cg = s->C / s->groups, Kg = s->K / s->groups;
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++) {
            int g = k / Kg;
            for (int p = 0; p < s->P; p++)
                for (int q = 0; q < s->Q; q++) {
                    double acc = b ? b[k] : 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int r = 0; r < s->R; r++)
                            for (int t = 0; t < s->S; t++) {
                                int h = p * s->sh - s->pt + r, ww = q * s->sw - s->pl + t;
                                if (h < 0 || h >= s->H || ww < 0 || ww >= s->W) continue;
                                acc += (double)x[(((size_t)n * s->C + g * Cg + c) * s->H + h) * s->W + ww] *
                                       w[(((size_t)k * Cg + c) * s->R + r) * s->S + t];
                            }
                    y[(((size_t)n * s->K + k) * s->P + p) * s->Q + q] = (float)acc;
                }
        }
}

void mq_conv2d_backward_ref(const mq_conv_shape *s, const float *x, const float *w,
                            const float *dy, float *dx, int accumulate, float *dw, float *db) {
    const int Cg = s->C / s->groups, Kg = s->K / s->groups;
    if (db)
        for (int k = 0; k < s->K; k++) {
            double acc = 0;
            for (int n = 0; n < s->N; n++)
                for (int i = 0; i < s->P * s->Q; i++) acc += dy[((size_t)n * s->K + k) * s->P * s->Q + i];
            db[k] = (float)acc;
        }
    if (dw)
        for (int k = 0; k < s->K; k++) {
            int g = k / Kg;
            for (int c = 0; c < Cg; c++)
                for (int r = 0; r < s->R; r++)
                    for (int t = 0; t < s->S; t++) {
                        double acc = 0;
                        for (int n = 0; n < s->N; n++)
                            for (int p = 0; p < s->P; p++)
                                for (int q = 0; q < s->Q; q++) {
                                    int h = p * s->sh - s->pt + r, ww = q * s->sw - s->pl + t;
                                    if (h < 0 || h >= s->H || ww < 0 || ww >= s->W) continue;
                                    acc += (double)dy[(((size_t)n * s->K + k) * s->P + p) * s->Q + q] *
                                           x[(((size_t)n * s->C + g * Cg + c) * s->H + h) * s->W + ww];
                                }
                        dw[(((size_t)k * Cg + c) * s->R + r) * s->S + t] = (float)acc;
                    }
        }
    if (dx) {
        size_t nx = (size_t)s->N * s->C * s->H * s->W;
        double *acc = calloc(nx, sizeof(double));
        if (!acc) return; /* reference twin: used by tests only */
        for (int n = 0; n < s->N; n++)
            for (int k = 0; k < s->K; k++) {
                int g = k / Kg;
                for (int p = 0; p < s->P; p++)
                    for (int q = 0; q < s->Q; q++) {
                        double d = dy[(((size_t)n * s->K + k) * s->P + p) * s->Q + q];
                        for (int c = 0; c < Cg; c++)
                            for (int r = 0; r < s->R; r++)
                                for (int t = 0; t < s->S; t++) {
                                    int h = p * s->sh - s->pt + r, ww = q * s->sw - s->pl + t;
                                    if (h < 0 || h >= s->H || ww < 0 || ww >= s->W) continue;
                                    acc[(((size_t)n * s->C + g * Cg + c) * s->H + h) * s->W + ww] +=
                                        d * w[(((size_t)k * Cg + c) * s->R + r) * s->S + t];
                                }
                    }
            }
        for (size_t i = 0; i < nx; i++) dx[i] = (float)((accumulate ? dx[i] : 0.0) + acc[i]);
        free(acc);
    }
}

/* ---------------------------------------------------------------- GEMM back-end */
/* Row-major C = alpha op(A) op(B) + beta C. Called one per thread on independent data, so the
 * library runs single-threaded inside our parallel regions. oneDNN's sgemm (AVX-512 JIT) was
 * 1.1-1.5x faster than OpenBLAS 0.3.21 (which falls back to Haswell kernels on this Zen 5) on
 * the ResNet-20 GEMM shapes; MIXQ_GEMM=openblas selects OpenBLAS at run time. */
static int gemm_backend = -1; /* 0 openblas, 1 onednn */

static void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (gemm_backend) {
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

static void gemm_init(void) {
    if (gemm_backend >= 0) return;
    const char *e = getenv("MIXQ_GEMM");
    gemm_backend = (e && !strcmp(e, "openblas")) ? 0 : 1;
}

/* Convolution back-end for Cg > 1: oneDNN direct convolution (default) or im2col + GEMM
 * (MIXQ_CONV=gemm). Tests switch it with mq_conv_set_backend. */
static int conv_backend = -1; /* 0 im2col + gemm, 1 onednn */

static int conv_backend_get(void) {
    if (conv_backend < 0) {
        const char *e = getenv("MIXQ_CONV");
        conv_backend = (e && !strcmp(e, "gemm")) ? 0 : 1;
    }
    return conv_backend;
}

void mq_conv_set_backend(int onednn) { conv_backend = onednn ? 1 : 0; }

/* A chunk-size knob's value from the environment (e: getenv's): a positive number, else dflt. */
static long env_target(const char *e, long dflt) { return e && atol(e) > 0 ? atol(e) : dflt; }

/* g images per chunk, within 1..min(N, 64). */
static int clamp_images(long g, int N) {
    if (g > N) g = N;
    if (g > 64) g = 64;
    return g < 1 ? 1 : (int)g;
}

/* Images per oneDNN call: about 64 Ki floats of the larger activation tensor (in L2). */
static int dnnl_chunk(const mq_conv_shape *s) {
    long per = (long)MQ_MAX(s->C, s->K) * MQ_MAX(s->H * s->W, s->P * s->Q);
    static long target = 0;
    if (!target) target = env_target(getenv("MIXQ_CONV_CHUNK"), 65536);
    return clamp_images(target / (per > 0 ? per : 1), s->N);
}

/* Images per oneDNN weight-gradient call: each chunk writes a private copy of dw (K*C*R*S
 * floats) that is then summed, so chunks must be wide: about `target` output pixels (g*P*Q),
 * at least dnnl_chunk's images, from the shape only. */
static int dnnl_wchunk(const mq_conv_shape *s) {
    static long target = 0;
    if (!target) target = env_target(getenv("MIXQ_CONV_WCHUNK"), 2048);
    const long pq = (long)s->P * s->Q, g = (target + pq - 1) / pq, g0 = dnnl_chunk(s);
    return clamp_images(g > g0 ? g : g0, s->N);
}

/* Slices of output channels per weight-gradient chunk, from the shape only: doubled while the
 * nch chunks make fewer than `target` tasks (16) and the slices stay multiples of 16 channels
 * of at least 32 (oneDNN's blocking), so that a layer with few wide chunks (the deep layers of
 * vgg11: 1 or 2 at batch 64 or 128) still gives every thread work. 1 for grouped convs. */
static int dnnl_wslices(const mq_conv_shape *s, int nch) {
    static long target = 0;
    if (!target) target = env_target(getenv("MIXQ_CONV_WTASKS"), 16);
    int ns = 1;
    while (s->groups == 1 && (long)nch * ns < target && s->K % (32 * ns) == 0 && s->K >= 64 * ns)
        ns *= 2;
    return ns;
}

/* ---------------------------------------------------------------- im2col / col2im */
/* xg: one image's Cg input channels [Cg][H][W]; col: rows (c*R + r)*S + t, columns j0 + p*Q + q
 * with leading dimension ld. Out-of-image taps are 0. */
static void im2col(const mq_conv_shape *s, int Cg, const float *xg, float *col, int ld, int j0) {
    const int H = s->H, W = s->W, P = s->P, Q = s->Q, sh = s->sh, sw = s->sw, pt = s->pt, pl = s->pl;
    for (int c = 0; c < Cg; c++)
        for (int r = 0; r < s->R; r++)
            for (int t = 0; t < s->S; t++) {
                float *dst = col + (size_t)((c * s->R + r) * s->S + t) * ld + j0;
                const float *src = xg + (size_t)c * H * W;
                /* valid q range: 0 <= q*sw - pl + t < W */
                int q0 = pl - t > 0 ? (pl - t + sw - 1) / sw : 0;
                int q1 = (W - 1 + pl - t) >= 0 ? (W - 1 + pl - t) / sw + 1 : 0;
                if (q1 > Q) q1 = Q;
                if (q0 > q1) q0 = q1;
                for (int p = 0; p < P; p++) {
                    int h = p * sh - pt + r;
                    float *d = dst + (size_t)p * Q;
                    if (h < 0 || h >= H) {
                        memset(d, 0, sizeof(float) * (size_t)Q);
                        continue;
                    }
                    const float *srow = src + (size_t)h * W - pl + t;
                    for (int q = 0; q < q0; q++) d[q] = 0.0f;
                    if (sw == 1) memcpy(d + q0, srow + q0, sizeof(float) * (size_t)(q1 - q0));
                    else
                        for (int q = q0; q < q1; q++) d[q] = srow[q * sw];
                    for (int q = q1; q < Q; q++) d[q] = 0.0f;
                }
            }
}

/* Adds col (layout as im2col) into dxg [Cg][H][W]. */
static void col2im(const mq_conv_shape *s, int Cg, const float *col, int ld, int j0, float *dxg) {
    const int H = s->H, W = s->W, P = s->P, Q = s->Q, sh = s->sh, sw = s->sw, pt = s->pt, pl = s->pl;
    for (int c = 0; c < Cg; c++)
        for (int r = 0; r < s->R; r++)
            for (int t = 0; t < s->S; t++) {
                const float *src = col + (size_t)((c * s->R + r) * s->S + t) * ld + j0;
                float *dst = dxg + (size_t)c * H * W;
                int q0 = pl - t > 0 ? (pl - t + sw - 1) / sw : 0;
                int q1 = (W - 1 + pl - t) >= 0 ? (W - 1 + pl - t) / sw + 1 : 0;
                if (q1 > Q) q1 = Q;
                for (int p = 0; p < P; p++) {
                    int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    float *drow = dst + (size_t)h * W - pl + t;
                    const float *sp = src + (size_t)p * Q;
                    if (sw == 1)
                        for (int q = q0; q < q1; q++) drow[q] += sp[q];
                    else
                        for (int q = q0; q < q1; q++) drow[q * sw] += sp[q];
                }
            }
}

/* Images per GEMM chunk: wide enough GEMMs (~1024 columns), from the shape only. */
static int chunk_images(const mq_conv_shape *s) {
    int pq = s->P * s->Q;
    return clamp_images((1024 + pq - 1) / pq, s->N);
}

static int nthreads(void) {
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t;
}

/* ---------------------------------------------------------------- depthwise (Cg == 1) */
static void dw_forward(const mq_conv_shape *s, const float *x, const float *w, const float *b,
                       float *y) {
    const int Kg = s->K / s->groups, P = s->P, Q = s->Q, H = s->H, W = s->W;
    const int R = s->R, S = s->S, sh = s->sh, sw = s->sw, pt = s->pt, pl = s->pl;
#pragma omp parallel for schedule(static)
    for (long nk = 0; nk < (long)s->N * s->K; nk++) {
        int n = (int)(nk / s->K), k = (int)(nk % s->K), c = k / Kg;
        const float *xc = x + ((size_t)n * s->C + c) * H * W;
        const float *wk = w + (size_t)k * R * S;
        float *yk = y + (size_t)nk * P * Q;
        float bias = b ? b[k] : 0.0f;
        for (int i = 0; i < P * Q; i++) yk[i] = bias;
        for (int r = 0; r < R; r++)
            for (int t = 0; t < S; t++) {
                float wv = wk[r * S + t];
                int q0 = pl - t > 0 ? (pl - t + sw - 1) / sw : 0;
                int q1 = (W - 1 + pl - t) >= 0 ? (W - 1 + pl - t) / sw + 1 : 0;
                if (q1 > Q) q1 = Q;
                for (int p = 0; p < P; p++) {
                    int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    const float *xr = xc + (size_t)h * W - pl + t;
                    float *yr = yk + (size_t)p * Q;
                    for (int q = q0; q < q1; q++) yr[q] += wv * xr[q * sw];
                }
            }
    }
}

static void dw_backward(const mq_conv_shape *s, const float *x, const float *w, const float *dy,
                        float *dx, int accumulate, float *dw, float *db) {
    const int Kg = s->K / s->groups, P = s->P, Q = s->Q, H = s->H, W = s->W;
    const int R = s->R, S = s->S, sh = s->sh, sw = s->sw, pt = s->pt, pl = s->pl;
    if (dx) {
#pragma omp parallel for schedule(static)
        for (long nc = 0; nc < (long)s->N * s->C; nc++) {
            int n = (int)(nc / s->C), c = (int)(nc % s->C);
            float *dxc = dx + (size_t)nc * H * W;
            if (!accumulate) memset(dxc, 0, sizeof(float) * (size_t)H * W);
            for (int kk = 0; kk < Kg; kk++) {
                int k = c * Kg + kk;
                const float *dyk = dy + ((size_t)n * s->K + k) * P * Q;
                const float *wk = w + (size_t)k * R * S;
                for (int r = 0; r < R; r++)
                    for (int t = 0; t < S; t++) {
                        float wv = wk[r * S + t];
                        int q0 = pl - t > 0 ? (pl - t + sw - 1) / sw : 0;
                        int q1 = (W - 1 + pl - t) >= 0 ? (W - 1 + pl - t) / sw + 1 : 0;
                        if (q1 > Q) q1 = Q;
                        for (int p = 0; p < P; p++) {
                            int h = p * sh - pt + r;
                            if (h < 0 || h >= H) continue;
                            float *xr = dxc + (size_t)h * W - pl + t;
                            const float *dr = dyk + (size_t)p * Q;
                            for (int q = q0; q < q1; q++) xr[q * sw] += wv * dr[q];
                        }
                    }
            }
        }
    }
    if (dw || db) {
#pragma omp parallel for schedule(static)
        for (int k = 0; k < s->K; k++) {
            int c = k / Kg;
            double a[64]; /* R*S <= 64 on this path (see use_depthwise) */
            const int RS = R * S;
            for (int i = 0; i < RS; i++) a[i] = 0;
            double bsum = 0;
            for (int n = 0; n < s->N; n++) {
                const float *dyk = dy + ((size_t)n * s->K + k) * P * Q;
                const float *xc = x + ((size_t)n * s->C + c) * H * W;
                if (db)
                    for (int i = 0; i < P * Q; i++) bsum += dyk[i];
                if (!dw) continue;
                for (int r = 0; r < R; r++)
                    for (int t = 0; t < S; t++) {
                        int q0 = pl - t > 0 ? (pl - t + sw - 1) / sw : 0;
                        int q1 = (W - 1 + pl - t) >= 0 ? (W - 1 + pl - t) / sw + 1 : 0;
                        if (q1 > Q) q1 = Q;
                        float sum = 0.0f;
                        for (int p = 0; p < P; p++) {
                            int h = p * sh - pt + r;
                            if (h < 0 || h >= H) continue;
                            const float *xr = xc + (size_t)h * W - pl + t;
                            const float *dr = dyk + (size_t)p * Q;
                            for (int q = q0; q < q1; q++) sum += dr[q] * xr[q * sw];
                        }
                        a[r * S + t] += sum;
                    }
            }
            if (dw)
                for (int i = 0; i < RS; i++) dw[(size_t)k * RS + i] = (float)a[i];
            if (db) db[k] = (float)bsum;
        }
    }
}

static int use_depthwise(const mq_conv_shape *s) {
    if (s->C / s->groups != 1 || s->R * s->S > 64) return 0;
    /* a single-input-channel layer (the stem) runs faster through oneDNN */
    return s->groups > 1 || conv_backend_get() == 0;
}

/* ---------------------------------------------------------------- GEMM path */
/* Per-thread workspace slots: 1 + 3 t .. 1 + 3 t + 2; slot 0 holds the dw/db partials. */
static mixq_status reserve_threads(mq_ws *ws, int nt, size_t b0, size_t b1, size_t b2) {
    if (1 + 3 * nt > MQ_WS_SLOTS)
        return mq_err(MIXQ_ERR_ARG, "conv: %d threads exceed the workspace slots", nt);
    for (int t = 0; t < nt; t++) {
        if (b0 && !mq_ws_get(ws, 1 + 3 * t, b0)) return MIXQ_ERR_NOMEM;
        if (b1 && !mq_ws_get(ws, 2 + 3 * t, b1)) return MIXQ_ERR_NOMEM;
        if (b2 && !mq_ws_get(ws, 3 + 3 * t, b2)) return MIXQ_ERR_NOMEM;
    }
    return MIXQ_OK;
}

mixq_status mq_conv2d_forward(const mq_conv_shape *s, const float *x, const float *w,
                              const float *b, float *y, mq_ws *ws) {
    if (use_depthwise(s)) {
        dw_forward(s, x, w, b, y);
        return MIXQ_OK;
    }
    if (conv_backend_get()) return mq_conv_dnnl_forward(s, dnnl_chunk(s), x, w, b, y);
    gemm_init();
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G, PQ = s->P * s->Q;
    const int Kc = Cg * s->R * s->S, g = chunk_images(s), nch = (s->N + g - 1) / g;
    const int direct = s->R == 1 && s->S == 1 && s->sh == 1 && s->sw == 1 && !(s->pt | s->pl | s->pb | s->pr) && g == 1;
    const int nt = nthreads();
    mixq_status st = reserve_threads(ws, nt, direct ? 0 : sizeof(float) * (size_t)Kc * g * PQ,
                                     g > 1 ? sizeof(float) * (size_t)Kg * g * PQ : 0, 0);
    if (st) return st;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < nch; ch++) {
        const int t = omp_get_thread_num();
        float *col = ws->buf[1 + 3 * t], *tmp = ws->buf[2 + 3 * t];
        const int n0 = ch * g, gn = MQ_MIN(g, s->N - n0), ld = gn * PQ;
        for (int gi = 0; gi < G; gi++) {
            const float *B;
            int ldb;
            if (direct) {
                B = x + ((size_t)n0 * s->C + (size_t)gi * Cg) * PQ;
                ldb = PQ;
            } else {
                for (int j = 0; j < gn; j++)
                    im2col(s, Cg, x + ((size_t)(n0 + j) * s->C + (size_t)gi * Cg) * s->H * s->W, col,
                           ld, j * PQ);
                B = col;
                ldb = ld;
            }
            const float *A = w + (size_t)gi * Kg * Kc;
            if (gn == 1) {
                float *C = y + ((size_t)n0 * s->K + (size_t)gi * Kg) * PQ;
                gemm(0, 0, Kg, PQ, Kc, 1.0f, A, Kc, B,
                            ldb, 0.0f, C, PQ);
                if (b)
                    for (int k = 0; k < Kg; k++) {
                        float bv = b[gi * Kg + k];
                        for (int i = 0; i < PQ; i++) C[(size_t)k * PQ + i] += bv;
                    }
            } else {
                gemm(0, 0, Kg, ld, Kc, 1.0f, A, Kc, B,
                            ldb, 0.0f, tmp, ld);
                for (int j = 0; j < gn; j++)
                    for (int k = 0; k < Kg; k++) {
                        float *dst = y + ((size_t)(n0 + j) * s->K + (size_t)gi * Kg + k) * PQ;
                        const float *src = tmp + (size_t)k * ld + (size_t)j * PQ;
                        float bv = b ? b[gi * Kg + k] : 0.0f;
                        for (int i = 0; i < PQ; i++) dst[i] = src[i] + bv;
                    }
            }
        }
    }
    return MIXQ_OK;
}

mixq_status mq_conv2d_backward(const mq_conv_shape *s, const float *x, const float *w,
                               const float *dy, float *dx, int accumulate, float *dw, float *db,
                               mq_ws *ws) {
    if (use_depthwise(s)) {
        dw_backward(s, x, w, dy, dx, accumulate, dw, db);
        return MIXQ_OK;
    }
    gemm_init();
    const int onednn = conv_backend_get();
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G, PQ = s->P * s->Q;
    const int HW = s->H * s->W;
    const int Kc = Cg * s->R * s->S, g = onednn ? dnnl_chunk(s) : chunk_images(s),
              gw = onednn ? dnnl_wchunk(s) : g, nch = (s->N + gw - 1) / gw;
    const int direct = s->R == 1 && s->S == 1 && s->sh == 1 && s->sw == 1 && !(s->pt | s->pl | s->pb | s->pr) && g == 1;
    const size_t wn = (size_t)s->K * Kc, part = wn + (size_t)s->K;
    const int nt = nthreads();
    float *partials = NULL;
    if (dw || db) {
        partials = mq_ws_get(ws, 0, sizeof(float) * part * (size_t)nch);
        if (!partials) return MIXQ_ERR_NOMEM;
    }
    if (onednn) {
        mixq_status e = mq_conv_dnnl_backward(s, g, gw, dnnl_wslices(s, nch), x, w, dy, dx,
                                              accumulate, partials, dw != NULL, db != NULL);
        if (e) return e;
        goto reduce;
    }
    mixq_status st = reserve_threads(ws, nt, sizeof(float) * (size_t)Kc * g * PQ,
                                     g > 1 ? sizeof(float) * (size_t)s->K * g * PQ : 0,
                                     dx ? sizeof(float) * (size_t)Kc * g * PQ : 0);
    if (st) return st;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < nch; ch++) {
        const int t = omp_get_thread_num();
        float *col = ws->buf[1 + 3 * t], *dyc = ws->buf[2 + 3 * t], *dcol = ws->buf[3 + 3 * t];
        const int n0 = ch * g, gn = MQ_MIN(g, s->N - n0), ld = gn * PQ;
        /* dY of the chunk as [K][gn*PQ] */
        const float *D;
        int ldd;
        if (gn == 1) {
            D = dy + (size_t)n0 * s->K * PQ;
            ldd = PQ;
        } else {
            for (int j = 0; j < gn; j++)
                for (int k = 0; k < s->K; k++)
                    memcpy(dyc + (size_t)k * ld + (size_t)j * PQ,
                           dy + ((size_t)(n0 + j) * s->K + k) * PQ, sizeof(float) * (size_t)PQ);
            D = dyc;
            ldd = ld;
        }
        float *pw = partials ? partials + part * (size_t)ch : NULL;
        if (db)
            for (int k = 0; k < s->K; k++) {
                const float *row = D + (size_t)k * ldd;
                float acc = 0.0f;
                for (int i = 0; i < ld; i++) acc += row[i];
                pw[wn + (size_t)k] = acc;
            }
        if (dx && !accumulate)
            for (int j = 0; j < gn; j++)
                memset(dx + (size_t)(n0 + j) * s->C * HW, 0, sizeof(float) * (size_t)s->C * HW);
        for (int gi = 0; gi < G; gi++) {
            const float *Dg = D + (size_t)gi * Kg * ldd;
            const float *B;
            int ldb;
            if (direct) {
                B = x + ((size_t)n0 * s->C + (size_t)gi * Cg) * PQ;
                ldb = PQ;
            } else {
                if (dw)
                    for (int j = 0; j < gn; j++)
                        im2col(s, Cg, x + ((size_t)(n0 + j) * s->C + (size_t)gi * Cg) * HW, col,
                               ld, j * PQ);
                B = col;
                ldb = ld;
            }
            if (dw)
                gemm(0, 1, Kg, Kc, ld, 1.0f, Dg, ldd, B,
                            ldb, 0.0f, pw + (size_t)gi * Kg * Kc, Kc);
            if (dx) {
                const float *A = w + (size_t)gi * Kg * Kc;
                if (direct) {
                    /* dx[n][group] += W^T dY directly (1x1 stride 1: col == x layout) */
                    float *C = dx + ((size_t)n0 * s->C + (size_t)gi * Cg) * PQ;
                    gemm(1, 0, Kc, PQ, Kg, 1.0f, A, Kc,
                                Dg, ldd, 1.0f, C, PQ);
                } else {
                    gemm(1, 0, Kc, ld, Kg, 1.0f, A, Kc,
                                Dg, ldd, 0.0f, dcol, ld);
                    for (int j = 0; j < gn; j++)
                        col2im(s, Cg, dcol, ld, j * PQ,
                               dx + ((size_t)(n0 + j) * s->C + (size_t)gi * Cg) * HW);
                }
            }
        }
    }
reduce:
    if (partials) {
        /* reduce the per-chunk partials in chunk order (thread-count independent) */
        const size_t total = part;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < total; i++) {
            if (i < wn && !dw) continue;
            if (i >= wn && !db) continue;
            float acc = 0.0f;
            for (int ch = 0; ch < nch; ch++) acc += partials[part * (size_t)ch + i];
            if (i < wn) dw[i] = acc;
            else db[i - wn] = acc;
        }
    }
    return MIXQ_OK;
}
