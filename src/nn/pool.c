/* Pooling kernels (FP32).
 * x, dx [N][C][H][W]; y, dy, argmax [N][C][P][Q]. Parallel over (n, c) planes, which are
 * independent, so results do not depend on the thread count. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/kernels.h"

void mq_maxpool_forward_ref(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                            const float *x, float *y, int32_t *argmax) {
    const int kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw, pt = g->pt, pl = g->pl;
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * P * Q;
        int32_t *ap = argmax + (size_t)nc * P * Q;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                float best = -INFINITY;
                int32_t bi = -1;
                for (int r = 0; r < kh; r++) {
                    int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    for (int t = 0; t < kw; t++) {
                        int w = q * sw - pl + t;
                        if (w < 0 || w >= W) continue;
                        float v = xp[h * W + w];
                        if (v > best || bi < 0 || (isnan(v) && !isnan(best))) {
                            best = v;
                            bi = h * W + w;
                        }
                    }
                }
                yp[p * Q + q] = best;
                ap[p * Q + q] = bi;
            }
    }
}

/* One plane of the 2x2 stride-2 unpadded pool with argmax, without branches: each window's
 * four values in the reference's order (row by row), a later one taken when greater or when it
 * is a NaN and the best so far is not (so the first NaN or the first maximum wins, as there).
 * The choice is a bit mask (compilers turn a plain ?: back into branches, which mispredict
 * on activations about half the time). */
static inline void take(float v, int32_t iv, float *best, int32_t *bi) {
    const uint32_t m = 0u - (uint32_t)((v > *best) | ((v != v) & (*best == *best)));
    uint32_t vb, bb;
    memcpy(&vb, &v, 4);
    memcpy(&bb, best, 4);
    bb = (vb & m) | (bb & ~m);
    memcpy(best, &bb, 4);
    *bi = (int32_t)(((uint32_t)iv & m) | ((uint32_t)*bi & ~m));
}

static void maxpool_2x2_plane(int W, int P, int Q, const float *xp, float *yp, int32_t *ap) {
    for (int p = 0; p < P; p++) {
        const float *r0 = xp + (size_t)2 * p * W, *r1 = r0 + W;
        const int32_t i0 = 2 * p * W;
        for (int q = 0; q < Q; q++) {
            float best = r0[2 * q];
            int32_t bi = i0 + 2 * q;
            take(r0[2 * q + 1], i0 + 2 * q + 1, &best, &bi);
            take(r1[2 * q], i0 + W + 2 * q, &best, &bi);
            take(r1[2 * q + 1], i0 + W + 2 * q + 1, &best, &bi);
            yp[(size_t)p * Q + q] = best;
            ap[(size_t)p * Q + q] = bi;
        }
    }
}

void mq_maxpool_forward(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                        const float *x, float *y, int32_t *argmax) {
    /* the fast path: 2x2, stride 2, no top/left pad, every window inside the image (vgg's,
     * lenet's pools); anything else, the reference loop (window taps in the same order) */
    if (!(g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 && g->pl == 0 &&
          2 * P <= H && 2 * Q <= W)) {
        mq_maxpool_forward_ref(N, C, H, W, g, P, Q, x, y, argmax);
        return;
    }
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++)
        maxpool_2x2_plane(W, P, Q, x + (size_t)nc * H * W, y + (size_t)nc * P * Q,
                          argmax + (size_t)nc * P * Q);
}

void mq_maxpool_backward(int N, int C, int H, int W, int P, int Q, const int32_t *argmax,
                         const float *dy, float *dx, int accumulate) {
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W;
        const float *dyp = dy + (size_t)nc * P * Q;
        const int32_t *ap = argmax + (size_t)nc * P * Q;
        if (!accumulate) memset(dp, 0, sizeof(float) * (size_t)H * W);
        for (int i = 0; i < P * Q; i++)
            if (ap[i] >= 0) dp[ap[i]] += dyp[i];
    }
}

void mq_maxpool_infer(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                      const float *x, float *y) {
    const int kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw, pt = g->pt, pl = g->pl;
    const int fast = kh == 2 && kw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0;
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * P * Q;
        if (fast) {
            for (int p = 0; p < P; p++) {
                const float *r0 = xp + (size_t)2 * p * W, *r1 = r0 + W;
                float *yo = yp + (size_t)p * Q;
                for (int q = 0; q < Q; q++) {
                    const float a = r0[2 * q], b = r0[2 * q + 1], c = r1[2 * q], d = r1[2 * q + 1];
                    const float ab = a > b ? a : b, cd = c > d ? c : d;
                    const int nan = (a != a) | (b != b) | (c != c) | (d != d);
                    yo[q] = nan ? NAN : ab > cd ? ab : cd;
                }
            }
            continue;
        }
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                float best = -INFINITY;
                int nan = 0;
                for (int r = 0; r < kh; r++) {
                    const int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    for (int t = 0; t < kw; t++) {
                        const int w = q * sw - pl + t;
                        if (w < 0 || w >= W) continue;
                        const float v = xp[h * W + w];
                        nan |= v != v;
                        best = v > best ? v : best;
                    }
                }
                yp[p * Q + q] = nan ? NAN : best;
            }
    }
}

void mq_avgpool_forward(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                        const float *x, float *y) {
    const int kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw, pt = g->pt, pl = g->pl;
    const float inv = 1.0f / (float)(kh * kw);
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * P * Q;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                float s = 0.0f;
                for (int r = 0; r < kh; r++) {
                    int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    for (int t = 0; t < kw; t++) {
                        int w = q * sw - pl + t;
                        if (w >= 0 && w < W) s += xp[h * W + w];
                    }
                }
                yp[p * Q + q] = s * inv;
            }
    }
}

void mq_avgpool_backward(int N, int C, int H, int W, const mq_geom *g, int P, int Q,
                         const float *dy, float *dx, int accumulate) {
    const int kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw, pt = g->pt, pl = g->pl;
    const float inv = 1.0f / (float)(kh * kw);
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W;
        const float *dyp = dy + (size_t)nc * P * Q;
        if (!accumulate) memset(dp, 0, sizeof(float) * (size_t)H * W);
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                float gv = dyp[p * Q + q] * inv;
                for (int r = 0; r < kh; r++) {
                    int h = p * sh - pt + r;
                    if (h < 0 || h >= H) continue;
                    for (int t = 0; t < kw; t++) {
                        int w = q * sw - pl + t;
                        if (w >= 0 && w < W) dp[h * W + w] += gv;
                    }
                }
            }
    }
}

void mq_gap_forward(int N, int C, int HW, const float *x, float *y) {
#pragma omp parallel for schedule(static) if ((long)N * C * HW > 65536)
    for (long nc = 0; nc < (long)N * C; nc++) {
        const float *xp = x + (size_t)nc * HW;
        double s = 0;
        for (int i = 0; i < HW; i++) s += xp[i];
        y[nc] = (float)(s / HW);
    }
}

void mq_gap_backward(int N, int C, int HW, const float *dy, float *dx, int accumulate) {
    const float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static) if ((long)N * C * HW > 65536)
    for (long nc = 0; nc < (long)N * C; nc++) {
        float *dp = dx + (size_t)nc * HW;
        float g = dy[nc] * inv;
        if (accumulate)
            for (int i = 0; i < HW; i++) dp[i] += g;
        else
            for (int i = 0; i < HW; i++) dp[i] = g;
    }
}
