/* Quantizer kernels: grid membership and idempotence, per-kernel bits (distinct levels per
 * filter), clip selection (max, MSE, KL, percentile), k-means, STE gradients against PyTorch's
 * fake-quantize fixtures (tests/fixtures/quant.mqfx), determinism across thread counts. */
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "fixture.h"
#include "quant/quant.h"
#include "test.h"

static int distinct(const float *x, int64_t n) {
    float seen[512];
    int k = 0;
    for (int64_t i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < k && !found; j++) found = seen[j] == x[i];
        if (!found) {
            if (k == 512) return 513;
            seen[k++] = x[i];
        }
    }
    return k;
}

static void test_weight_grid_and_idempotence(void) {
    enum { K = 7, IN = 53 };
    float w[K * IN], wq[K * IN], wq2[K * IN], s[K], s2[K];
    test_fill(w, K * IN, 3, -0.4f, 0.4f);
    static const mq_gran grans[] = {MQ_GRAN_LAYER, MQ_GRAN_CHANNEL, MQ_GRAN_KERNEL};
    for (int b = 1; b <= 8; b++)
        for (int g = 0; g < 3; g++)
            for (int clip = 0; clip < 3; clip++) {
                int bits[K];
                for (int k = 0; k < K; k++) bits[k] = b;
                uint8_t mask[K * IN];
                CHECK_OK(mq_weight_scales(w, K, IN, bits, grans[g], (mq_clip)clip, s));
                mq_weight_fake_quant(w, K, IN, bits, s, wq, NULL, mask);
                for (int k = 0; k < K; k++) {
                    const float n = b == 1 ? 1.0f : (float)((1 << (b - 1)) - 1);
                    int on = 1;
                    for (int i = 0; i < IN; i++) {
                        float q = wq[k * IN + i] / s[k];
                        on &= fabsf(q - nearbyintf(q)) < 1e-4f && fabsf(q) <= n + 1e-4f;
                    }
                    CHECKF(on, "b %d gran %d clip %d row %d: values off the grid", b, g, clip, k);
                    CHECKF(distinct(wq + k * IN, IN) <= (b == 1 ? 2 : 2 * (int)n + 1),
                           "b %d: %d distinct levels", b, distinct(wq + k * IN, IN));
                }
                if (clip == MQ_CLIP_MAX) { /* max clipping: nothing saturates, all pass */
                    int all = 1;
                    for (int i = 0; i < K * IN; i++) all &= mask[i];
                    CHECK(all);
                }
                /* quantizing the quantized weights with the same scales changes nothing */
                mq_weight_fake_quant(wq, K, IN, bits, s, wq2, NULL, NULL);
                CHECKF(memcmp(wq, wq2, sizeof wq) == 0, "b %d gran %d: not idempotent", b, g);
                /* and with max clipping, the scales found on w_q are the same (b >= 2) */
                if (clip == MQ_CLIP_MAX && b >= 2) {
                    CHECK_OK(mq_weight_scales(wq, K, IN, bits, grans[g], MQ_CLIP_MAX, s2));
                    for (int k = 0; k < K; k++) CHECK(fabsf(s2[k] - s[k]) <= 1e-6f * s[k]);
                }
            }
    /* float rows pass through */
    int bits[K] = {32, 32, 32, 32, 32, 32, 32};
    CHECK_OK(mq_weight_scales(w, K, IN, bits, MQ_GRAN_LAYER, MQ_CLIP_MAX, s));
    mq_weight_fake_quant(w, K, IN, bits, s, wq, NULL, NULL);
    CHECK(memcmp(w, wq, sizeof w) == 0);
}

static void test_per_kernel_bits(void) {
    enum { K = 6, IN = 300 };
    float w[K * IN], wq[K * IN], s[K];
    test_fill(w, K * IN, 11, -1.0f, 1.0f);
    int bits[K] = {1, 2, 3, 4, 6, 32};
    CHECK_OK(mq_weight_scales(w, K, IN, bits, MQ_GRAN_KERNEL, MQ_CLIP_MAX, s));
    mq_weight_fake_quant(w, K, IN, bits, s, wq, NULL, NULL);
    static const int want[K] = {2, 3, 7, 15, 63, IN};
    for (int k = 0; k < K; k++)
        CHECKF(distinct(wq + k * IN, IN) == want[k], "row %d (%d bits): %d distinct levels, want %d",
               k, bits[k], distinct(wq + k * IN, IN), want[k]);
    /* per-layer / per-channel scales refuse mixed bits with a hint */
    CHECK(mq_weight_scales(w, K, IN, bits, MQ_GRAN_CHANNEL, MQ_CLIP_MAX, s) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "kernel") != NULL);
    int bad[K] = {4, 4, 0, 4, 4, 4};
    CHECK(mq_weight_scales(w, K, IN, bad, MQ_GRAN_KERNEL, MQ_CLIP_MAX, s) == MIXQ_ERR_ARG);
    bad[2] = 9;
    CHECK(mq_weight_scales(w, K, IN, bad, MQ_GRAN_KERNEL, MQ_CLIP_MAX, s) == MIXQ_ERR_ARG);
}

static double mse_at(const float *x, int n, int bits, int sg, float a) {
    float *y = malloc(sizeof(float) * (size_t)n);
    if (!y) return INFINITY;
    mq_act_fake_quant(x, n, bits, sg, a, y);
    double e = 0;
    for (int i = 0; i < n; i++) e += (double)(y[i] - x[i]) * (y[i] - x[i]);
    free(y);
    return e;
}

static void test_clip_methods(void) {
    /* Laplacian-like data with a few outliers: clipping below max lowers the MSE at 3 bits */
    enum { N = 20000 };
    static float x[N];
    uint64_t st = 12345;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((st >> 11) + 0.5) / 9007199254740992.0;
        x[i] = (float)(u < 0.5 ? log(2 * u) : -log(2 - 2 * u));
    }
    x[17] = 40.0f;
    const float mx = mq_choose_clip(x, N, 3, 1, MQ_CLIP_MAX);
    const float mse = mq_choose_clip(x, N, 3, 1, MQ_CLIP_MSE);
    const float kl = mq_choose_clip(x, N, 3, 1, MQ_CLIP_KL);
    const float pc = mq_choose_clip(x, N, 3, 1, MQ_CLIP_PERCENTILE);
    CHECK(mx == 40.0f);
    CHECKF(mse < 0.5f * mx && kl < 0.5f * mx && pc < mx, "mse %g kl %g pct %g max %g", mse, kl, pc, mx);
    CHECKF(mse_at(x, N, 3, 1, mse) < 0.5 * mse_at(x, N, 3, 1, mx), "MSE clip does not help");
    CHECKF(mse_at(x, N, 3, 1, kl) < mse_at(x, N, 3, 1, mx), "KL clip does not help");
    /* degenerate input: all zeros gives a positive clip; float bits give max */
    float z[8] = {0};
    CHECK(mq_choose_clip(z, 8, 4, 0, MQ_CLIP_KL) > 0);
    CHECK(mq_choose_clip(x, N, 32, 1, MQ_CLIP_MSE) == mx);
    /* unsigned calibration ignores negative values */
    CHECK(mq_choose_clip(x, N, 8, 0, MQ_CLIP_MAX) == 40.0f);
}

static void test_act_grid_and_idempotence(void) {
    enum { N = 7777 };
    static float x[N], y[N], y2[N];
    for (int i = 0; i < N; i++) x[i] = -4.0f + 8.0f * (float)i / (N - 1); /* a dense ramp */
    for (int b = 1; b <= 8; b++)
        for (int sg = 0; sg < 2; sg++) {
            const float a = 3.1f;
            mq_act_fake_quant(x, N, b, sg, a, y);
            mq_act_fake_quant(y, N, b, sg, a, y2);
            CHECKF(memcmp(y, y2, sizeof y) == 0, "act b %d signed %d not idempotent", b, sg);
            int lv = distinct(y, N), want = sg ? (b == 1 ? 3 : (1 << b) - 1) : (1 << b);
            CHECKF(lv == want, "act b %d signed %d: %d levels, want %d", b, sg, lv, want);
            float lo = 1e9f, hi = -1e9f;
            for (int i = 0; i < N; i++) {
                lo = fminf(lo, y[i]);
                hi = fmaxf(hi, y[i]);
            }
            CHECKF(fabsf(hi - a) < 1e-5f && fabsf(lo - (sg ? -a : 0.0f)) < 1e-5f,
                   "b %d signed %d: range [%g, %g]", b, sg, lo, hi);
        }
    /* in place, and 32 bits is the identity */
    memcpy(y, x, sizeof x);
    mq_act_fake_quant(y, N, 32, 0, 1.0f, y);
    CHECK(memcmp(x, y, sizeof x) == 0);
    /* NaN propagates (the trainer then stops with a numeric error) */
    x[3] = NAN;
    mq_act_fake_quant(x, N, 4, 0, 1.0f, y);
    CHECK(isnan(y[3]));
}

static void test_pact_gradient(void) {
    /* values far above the clip: dalpha = sum dy there, dx = 0 there */
    float x[6] = {0.1f, 0.5f, 5.0f, 7.0f, -3.0f, 0.9f}, dy[6] = {1, 2, 3, 4, 5, 6}, dx[6], da;
    mq_act_fake_quant_backward(x, dy, 6, 4, 0, 1.0f, 0, dx, 0, &da);
    CHECK(da == 7.0f);
    CHECK(dx[0] == 1 && dx[1] == 2 && dx[2] == 0 && dx[3] == 0 && dx[4] == 0 && dx[5] == 6);
    mq_act_fake_quant_backward(x, dy, 6, 4, 1, 1.0f, 0, dx, 0, &da); /* signed: -3 clips low */
    CHECK(da == 7.0f - 5.0f);
    /* accumulate */
    for (int i = 0; i < 6; i++) dx[i] = 1;
    mq_act_fake_quant_backward(x, dy, 6, 4, 0, 1.0f, 0, dx, 1, NULL);
    CHECK(dx[0] == 2 && dx[2] == 1);
}

static void test_against_torch(void) {
    fx_file *F = fx_load("tests/fixtures/quant.mqfx");
    CHECK(F != NULL);
    if (!F) return;
    static const char *const acts[] = {"act_u3", "act_u8", "act_s4", "act_u2"};
    char key[128];
    for (int c = 0; c < 4; c++) {
        snprintf(key, sizeof key, "%s.cfg", acts[c]);
        const float *cfg = fx_get(F, key, 4);
        if (!cfg) continue;
        int n = (int)cfg[0], b = (int)cfg[1], sg = (int)cfg[2];
        float a = cfg[3];
#define G(v, k)                                             \
    snprintf(key, sizeof key, "%s.%s", acts[c], k);         \
    const float *v = fx_get(F, key, -1);
        G(x, "x")
        G(dy, "dy")
        G(wy, "y")
        G(wdx, "dx")
        G(wds, "dscale")
        if (!x || !dy || !wy || !wdx || !wds) continue;
        float *y = malloc(sizeof(float) * (size_t)n), *dx = malloc(sizeof(float) * (size_t)n), da;
        if (y && dx) {
            mq_act_fake_quant(x, n, b, sg, a, y);
            CHECKF(test_max_rel_err(y, wy, n) < 1e-6, "%s forward: %g", acts[c], test_max_rel_err(y, wy, n));
            mq_act_fake_quant_backward(x, dy, n, b, sg, a, 1, dx, 0, &da);
            int same = 1;
            for (int i = 0; i < n; i++) same &= dx[i] == wdx[i]; /* -0 == 0 */
            CHECKF(same, "%s: STE mask differs", acts[c]);
            const float qmax = sg ? (float)((1 << (b - 1)) - 1) : (float)((1 << b) - 1);
            CHECKF(fabsf(da * qmax - wds[0]) <= 1e-4f * fmaxf(1.0f, fabsf(wds[0])),
                   "%s: LSQ dscale %g, torch %g", acts[c], da * qmax, wds[0]);
        }
        free(y);
        free(dx);
    }
    static const char *const ws[] = {"w_c4", "w_c2_clipped", "w_c8"};
    for (int c = 0; c < 3; c++) {
        snprintf(key, sizeof key, "%s.cfg", ws[c]);
        const float *cfg = fx_get(F, key, 3);
        if (!cfg) continue;
        int K = (int)cfg[0], inner = (int)cfg[1], b = (int)cfg[2];
        snprintf(key, sizeof key, "%s.w", ws[c]);
        const float *w = fx_get(F, key, (long)K * inner);
        snprintf(key, sizeof key, "%s.scale", ws[c]);
        const float *sc = fx_get(F, key, K);
        snprintf(key, sizeof key, "%s.y", ws[c]);
        const float *wy = fx_get(F, key, (long)K * inner);
        snprintf(key, sizeof key, "%s.dw", ws[c]);
        const float *wdw = fx_get(F, key, (long)K * inner);
        snprintf(key, sizeof key, "%s.dy", ws[c]);
        const float *dy = fx_get(F, key, (long)K * inner);
        if (!w || !sc || !wy || !wdw || !dy || K > 16 || inner > 128) continue;
        int bits[16];
        float wq[16 * 128], s2[16];
        uint8_t mask[16 * 128];
        for (int k = 0; k < K; k++) bits[k] = b;
        mq_weight_fake_quant(w, K, inner, bits, sc, wq, NULL, mask);
        CHECKF(test_max_rel_err(wq, wy, (long)K * inner) < 1e-6, "%s forward", ws[c]);
        int ok = 1, zeros = 0;
        for (long i = 0; i < (long)K * inner; i++) {
            ok &= (mask[i] ? dy[i] : 0.0f) == wdw[i];
            zeros += !mask[i];
        }
        CHECKF(ok, "%s: STE mask differs from torch", ws[c]);
        if (!strcmp(ws[c], "w_c2_clipped")) CHECK(zeros > 0);
        /* our own max-clip scales equal the fixture's unclipped ones */
        if (strcmp(ws[c], "w_c2_clipped")) {
            CHECK_OK(mq_weight_scales(w, K, inner, bits, MQ_GRAN_CHANNEL, MQ_CLIP_MAX, s2));
            CHECK(test_max_rel_err(s2, sc, K) < 1e-6);
        }
    }
#undef G
    /* LSQ scale gradients against torch._fake_quantize_learnable_per_channel_affine */
    const float *cfg = fx_get(F, "w_lsq4.cfg", 3);
    if (cfg) {
        int K = (int)cfg[0], inner = (int)cfg[1], b = (int)cfg[2];
        const float *w = fx_get(F, "w_lsq4.w", (long)K * inner), *sc = fx_get(F, "w_lsq4.scale", K);
        const float *dy = fx_get(F, "w_lsq4.dy", (long)K * inner), *ds = fx_get(F, "w_lsq4.dscale", K);
        const float *wy = fx_get(F, "w_lsq4.y", (long)K * inner);
        if (w && sc && dy && ds && wy && K <= 16 && inner <= 128) {
            int bits[16];
            float wq[16 * 128], got[16];
            for (int k = 0; k < K; k++) bits[k] = b;
            mq_weight_fake_quant(w, K, inner, bits, sc, wq, NULL, NULL);
            CHECK(test_max_rel_err(wq, wy, (long)K * inner) < 1e-6);
            mq_weight_lsq_grad(w, K, inner, bits, sc, dy, got);
            CHECKF(test_max_rel_err(got, ds, K) < 1e-4, "LSQ dscale off by %g", test_max_rel_err(got, ds, K));
        }
    }
    fx_free(F);
}

static void test_kmeans(void) {
    enum { N = 5000 };
    static float w[N], wq[N], wq2[N];
    float cb[256], cb2[256];
    test_fill(w, N, 9, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) w[i] = w[i] * w[i] * w[i]; /* peaked around 0 */
    for (int b = 1; b <= 6; b++) {
        CHECK_OK(mq_kmeans_quant(w, N, b, 30, wq, cb));
        CHECK(distinct(wq, N) <= (1 << b));
        /* every weight maps to its nearest centroid */
        int ok = 1;
        for (int i = 0; i < N; i += 7)
            for (int j = 0; j < (1 << b); j++) ok &= fabsf(w[i] - wq[i]) <= fabsf(w[i] - cb[j]) + 1e-7f;
        CHECKF(ok, "k-means b %d: a weight is not at its nearest centroid", b);
        /* more iterations never hurt; the same input gives the same codebook */
        double e0 = 0, e1 = 0;
        CHECK_OK(mq_kmeans_quant(w, N, b, 0, wq2, cb2));
        for (int i = 0; i < N; i++) {
            e0 += (double)(wq2[i] - w[i]) * (wq2[i] - w[i]);
            e1 += (double)(wq[i] - w[i]) * (wq[i] - w[i]);
        }
        CHECKF(e1 <= e0 * (1 + 1e-6), "k-means b %d: MSE %g after Lloyd, %g at init", b, e1, e0);
        CHECK_OK(mq_kmeans_quant(w, N, b, 30, wq2, cb2));
        CHECK(memcmp(cb, cb2, sizeof(float) * (size_t)(1 << b)) == 0);
    }
    CHECK(mq_kmeans_quant(w, N, 0, 5, wq, cb) == MIXQ_ERR_ARG);
    w[5] = NAN;
    CHECK(mq_kmeans_quant(w, N, 3, 5, wq, cb) == MIXQ_ERR_NUMERIC);
}

/* mq_levels against the formulas documented in quant.h and README: signed -n..n with
 * n = 2^(b-1) - 1 (1 bit: n = 1), unsigned 0..2^b - 1; 32 bits (float) has none. */
static void test_levels(void) {
    static const int sn[9] = {0, 1, 1, 3, 7, 15, 31, 63, 127};
    static const int un[9] = {0, 1, 3, 7, 15, 31, 63, 127, 255};
    for (int b = 1; b <= 8; b++) {
        int lo = 99, hi = 99;
        mq_levels(b, 1, &lo, &hi);
        CHECKF(lo == -sn[b] && hi == sn[b], "signed %d bits: %d..%d, want %d..%d", b, lo, hi,
               -sn[b], sn[b]);
        mq_levels(b, 0, &lo, &hi);
        CHECKF(lo == 0 && hi == un[b], "unsigned %d bits: %d..%d, want 0..%d", b, lo, hi, un[b]);
        int only = 0;
        mq_levels(b, 0, NULL, &only); /* either pointer may be NULL */
        CHECK(only == un[b]);
        mq_levels(b, 1, &only, NULL);
        CHECK(only == -sn[b]);
    }
    for (int sg = 0; sg < 2; sg++) {
        int lo = 99, hi = 99;
        mq_levels(MQ_FLOAT_BITS, sg, &lo, &hi);
        CHECK(lo == 0 && hi == 0);
        mq_levels(0, sg, &lo, &hi);
        CHECK(lo == 0 && hi == 0);
    }
    /* the activation step is the clip over qmax, as the fake quantizer uses */
    for (int b = 1; b <= 8; b++)
        for (int sg = 0; sg < 2; sg++)
            CHECK(mq_act_scale(b, sg, 2.5f) == 2.5f / (float)(sg ? sn[b] : un[b]));
    CHECK(mq_act_scale(MQ_FLOAT_BITS, 0, 2.5f) == 0.0f);
}

/* The integer codes mq_weight_fake_quant writes are the fake-quantized weights: for every
 * width 1..8 and 32, every granularity, per-kernel widths, clipped and unclipped scales, a
 * zero scale, exact ties and negative values that round to -0, w_q == scale * (float)code bit
 * for bit, codes within the levels (1 bit: +-1; float rows 0), and the same w_q and mask as
 * without codes. */
static void test_codes_are_the_quantized_weights(void) {
    enum { K = 9, IN = 61 };
    static float w[K * IN], wq[K * IN], wq2[K * IN], s[K];
    static int8_t code[K * IN];
    static uint8_t mask[K * IN], mask2[K * IN];
    test_fill(w, K * IN, 5, -0.6f, 0.6f);
    w[3] = -1e-9f;  /* rounds to -0 */
    w[IN + 4] = 0.0f;
    w[2 * IN + 5] = -0.0f;
    static const mq_gran grans[] = {MQ_GRAN_LAYER, MQ_GRAN_CHANNEL, MQ_GRAN_KERNEL};
    static const int widths[] = {1, 2, 3, 4, 5, 6, 7, 8, 32};
    for (int wi = 0; wi < 10; wi++) /* 9: per-kernel widths, one row float */
        for (int g = 0; g < 3; g++)
            for (int clip = 0; clip < 2; clip++) {
                if (wi == 9 && grans[g] != MQ_GRAN_KERNEL) continue;
                int bits[K];
                for (int k = 0; k < K; k++) bits[k] = wi < 9 ? widths[wi] : widths[(k * 4) % 9];
                CHECK_OK(mq_weight_scales(w, K, IN, bits, grans[g],
                                          clip ? MQ_CLIP_MSE : MQ_CLIP_MAX, s));
                if (wi == 2 && g == 2 && clip == 0) { /* exact ties and a zero scale */
                    s[1] = 0.0f;
                    for (int i = 0; i < 6; i++) w[2 * IN + 10 + i] = s[2] * (0.5f + (float)i - 3.0f);
                }
                memset(code, 99, sizeof code);
                mq_weight_fake_quant(w, K, IN, bits, s, wq, code, mask);
                mq_weight_fake_quant(w, K, IN, bits, s, wq2, NULL, mask2);
                CHECKF(!memcmp(wq, wq2, sizeof wq) && !memcmp(mask, mask2, sizeof mask),
                       "width %d gran %d: codes change the quantized weights", wi, g);
                int exact = 1, inside = 1;
                for (int k = 0; k < K; k++) {
                    int lo, hi;
                    mq_levels(bits[k], 1, &lo, &hi);
                    for (int i = 0; i < IN; i++) {
                        const int c = code[k * IN + i];
                        const float v = wq[k * IN + i];
                        if (bits[k] == MQ_FLOAT_BITS) {
                            inside &= c == 0;
                            exact &= !memcmp(&v, &w[k * IN + i], sizeof v);
                            continue;
                        }
                        const float want = s[k] * (float)c;
                        exact &= !memcmp(&v, &want, sizeof v);
                        inside &= bits[k] == 1 ? (c == 1 || c == -1) : (c >= lo && c <= hi);
                    }
                }
                CHECKF(exact, "width %d gran %d clip %d: w_q != scale * code", wi, g, clip);
                CHECKF(inside, "width %d gran %d clip %d: a code outside the levels", wi, g, clip);
                if (wi == 2 && g == 2 && clip == 0) {
                    CHECK(code[IN] == 0 && code[IN + 1] == 0); /* zero scale: code 0 */
                    /* ties round half to even: -2.5 -2, -1.5 -2, -0.5 0, 0.5 0, 1.5 2, 2.5 2 */
                    static const int even[6] = {-2, -2, 0, 0, 2, 2};
                    for (int i = 0; i < 6; i++) CHECK(code[2 * IN + 10 + i] == even[i]);
                    test_fill(w, K * IN, 5, -0.6f, 0.6f);
                    w[3] = -1e-9f;
                    w[IN + 4] = 0.0f;
                    w[2 * IN + 5] = -0.0f;
                }
            }
    /* saturation: values beyond the clip take the end codes and block the gradient */
    float big[4] = {10.0f, -10.0f, 0.25f, -0.25f}, bq[4], one = 0.1f;
    int8_t bc[4];
    uint8_t bm[4];
    int b3 = 3;
    mq_weight_fake_quant(big, 1, 4, &b3, &one, bq, bc, bm);
    CHECK(bc[0] == 3 && bc[1] == -3 && bc[2] == 2 && bc[3] == -2);
    CHECK(bm[0] == 0 && bm[1] == 0 && bm[2] == 1 && bm[3] == 1);
    CHECK(bq[0] == one * 3.0f && bq[1] == one * -3.0f);
}

/* Activation codes: q = clamp(round(x / s), qmin, qmax) with s = mq_act_scale, and
 * x_q == s * q exactly: the identity the integer runtime relies on, signed and unsigned. */
static void test_act_codes(void) {
    enum { N = 4001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -5.0f + 10.0f * (float)i / (N - 1);
    for (int b = 1; b <= 8; b++)
        for (int sg = 0; sg < 2; sg++) {
            const float a = 2.7f, s = mq_act_scale(b, sg, a), inv = 1.0f / s;
            int lo, hi;
            mq_levels(b, sg, &lo, &hi);
            mq_act_fake_quant(x, N, b, sg, a, y);
            int ok = 1;
            for (int i = 0; i < N; i++) {
                float q = nearbyintf(x[i] * inv);
                q = q < (float)lo ? (float)lo : q > (float)hi ? (float)hi : q;
                ok &= y[i] == (float)(int)q * s;
            }
            CHECKF(ok, "act b %d signed %d: x_q != s * code", b, sg);
        }
}

static void test_thread_determinism(void) {
    enum { N = 300000 };
    float *x = malloc(sizeof(float) * N), *dy = malloc(sizeof(float) * N);
    float *dx1 = malloc(sizeof(float) * N), *dx2 = malloc(sizeof(float) * N), a1, a2;
    if (x && dy && dx1 && dx2) {
        test_fill(x, N, 1, -1.0f, 4.0f);
        test_fill(dy, N, 2, -1.0f, 1.0f);
        omp_set_num_threads(1);
        mq_act_fake_quant_backward(x, dy, N, 3, 0, 2.0f, 1, dx1, 0, &a1);
        omp_set_num_threads(2);
        mq_act_fake_quant_backward(x, dy, N, 3, 0, 2.0f, 1, dx2, 0, &a2);
        CHECK(a1 == a2 && memcmp(dx1, dx2, sizeof(float) * N) == 0);
    }
    free(x);
    free(dy);
    free(dx1);
    free(dx2);
}

int main(void) {
    TEST_RUN(test_weight_grid_and_idempotence);
    TEST_RUN(test_per_kernel_bits);
    TEST_RUN(test_clip_methods);
    TEST_RUN(test_act_grid_and_idempotence);
    TEST_RUN(test_pact_gradient);
    TEST_RUN(test_against_torch);
    TEST_RUN(test_kmeans);
    TEST_RUN(test_thread_determinism);
    TEST_RUN(test_levels);
    TEST_RUN(test_codes_are_the_quantized_weights);
    TEST_RUN(test_act_codes);
    return test_summary();
}
