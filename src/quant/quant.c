/* Quantizer kernels: see quant.h for the exact formulas, rounding and STE rules.
 *
 * Buffers: weights w, w_q, mask [K][inner] (bits per row, scale per row); activations x, y,
 * dx, dy [n] (bits and clip per tensor). All float32; mask uint8.
 * Every kernel has one plain loop form; reductions (PACT gradient, MSE search) run over fixed
 * chunks summed in order, so results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

#define CHUNK 65536
#define HIST_BINS 2048

static float max_abs(const float *x, int64_t n, int is_signed) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = is_signed ? fabsf(x[i]) : x[i];
        if (v > m) m = v; /* NaN never wins */
    }
    return m;
}

/* mq_levels as floats. */
static void act_levels(int bits, int is_signed, float *qmin, float *qmax) {
    int lo, hi;
    mq_levels(bits, is_signed, &lo, &hi);
    *qmin = (float)lo;
    *qmax = (float)hi;
}

/* n of the symmetric weight grid at b >= 2 bits: codes -n..n. */
static float weight_n(int b) {
    int n;
    mq_levels(b, 1, NULL, &n);
    return (float)n;
}

float mq_act_scale(int bits, int is_signed, float alpha) {
    if (bits == MQ_FLOAT_BITS) return 0.0f;
    float qmin, qmax;
    act_levels(bits, is_signed, &qmin, &qmax);
    return alpha / qmax;
}

static inline float clampf(float q, float lo, float hi) { return q < lo ? lo : (q > hi ? hi : q); }

/* Quantization MSE of up to 65536 evenly spread values at clip a. */
static double quant_mse(const float *x, int64_t n, int bits, int is_signed, float a) {
    float qmin, qmax;
    act_levels(bits, is_signed, &qmin, &qmax);
    const float s = a / qmax;
    const int64_t step = n > CHUNK ? n / CHUNK : 1;
    double err = 0;
    for (int64_t i = 0; i < n; i += step) {
        float v = is_signed ? x[i] : (x[i] > 0 ? x[i] : 0);
        float q = clampf(nearbyintf(v / s), qmin, qmax) * s;
        err += (double)(q - v) * (q - v);
    }
    return err;
}

/* Histogram of |x| (or x >= 0) on [0, top] in HIST_BINS bins. */
static void histogram(const float *x, int64_t n, int is_signed, float top, double *h) {
    memset(h, 0, sizeof(double) * HIST_BINS);
    const float scale = HIST_BINS / top;
    for (int64_t i = 0; i < n; i++) {
        float v = is_signed ? fabsf(x[i]) : x[i];
        if (!(v >= 0)) continue;
        int b = (int)(v * scale);
        h[b >= HIST_BINS ? HIST_BINS - 1 : b] += 1;
    }
}

/* TensorRT's entropy calibration on the histogram: for each candidate threshold bin i, P is
 * the histogram clipped at i (outliers folded into bin i-1), Q is P merged into `levels` bins
 * and expanded back over P's non-zero bins; pick the i with the least KL(P || Q). */
static float kl_clip(const double *h, int levels, float top) {
    double best = INFINITY;
    int best_i = HIST_BINS;
    double *p = malloc(sizeof(double) * HIST_BINS), *q = malloc(sizeof(double) * HIST_BINS);
    if (!p || !q) {
        free(p);
        free(q);
        return top;
    }
    /* candidates from 1/16 of the range up: shorter clips are never useful and on spiky data
     * (ReLU zeros) the histogram KL can favour them */
    for (int i = MQ_MAX(levels, HIST_BINS / 16); i <= HIST_BINS; i++) {
        double outl = 0;
        for (int j = i; j < HIST_BINS; j++) outl += h[j];
        memcpy(p, h, sizeof(double) * (size_t)i);
        p[i - 1] += outl;
        /* merge h[0..i) into `levels` groups, spread each group's mass over its non-zero bins */
        for (int g = 0; g < levels; g++) {
            int a = (int)((int64_t)g * i / levels), b = (int)((int64_t)(g + 1) * i / levels);
            double mass = 0;
            int nz = 0;
            for (int j = a; j < b; j++) {
                mass += h[j];
                nz += h[j] > 0;
            }
            for (int j = a; j < b; j++) q[j] = (h[j] > 0 && nz) ? mass / nz : 0;
        }
        double sp = 0, sq = 0;
        for (int j = 0; j < i; j++) {
            sp += p[j];
            sq += q[j];
        }
        if (sp <= 0 || sq <= 0) continue;
        double kl = 0;
        for (int j = 0; j < i; j++) {
            if (p[j] <= 0) continue;
            double pj = p[j] / sp, qj = q[j] / sq;
            kl += qj > 0 ? pj * log(pj / qj) : pj * 30.0; /* empty Q bin: large penalty */
        }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    free(p);
    free(q);
    return ((float)best_i + 0.5f) * top / HIST_BINS;
}

float mq_choose_clip(const float *x, int64_t n, int bits, int is_signed, mq_clip method) {
    float top = max_abs(x, n, is_signed);
    if (!(top > 0)) return 1.0f; /* all zero: any positive clip quantizes exactly */
    if (bits == MQ_FLOAT_BITS || method == MQ_CLIP_MAX || n < 2) return top;
    if (method == MQ_CLIP_LSQ) method = MQ_CLIP_MSE; /* LSQ starts from the MSE clip */
    /* KL needs a populated histogram: on few values (a weight row) use the MSE search */
    if (method == MQ_CLIP_KL && n < 4096) method = MQ_CLIP_MSE;
    if (method == MQ_CLIP_MSE) {
        double best = INFINITY;
        float ba = top;
        for (int i = 0; i <= 80; i++) {
            float a = top * (1.0f - 0.01f * (float)i);
            double e = quant_mse(x, n, bits, is_signed, a);
            if (e < best) {
                best = e;
                ba = a;
            }
        }
        return ba;
    }
    double *h = malloc(sizeof(double) * HIST_BINS);
    if (!h) return top;
    histogram(x, n, is_signed, top, h);
    float a = top;
    if (method == MQ_CLIP_PERCENTILE) {
        double total = 0, acc = 0;
        for (int i = 0; i < HIST_BINS; i++) total += h[i];
        for (int i = 0; i < HIST_BINS; i++) {
            acc += h[i];
            if (acc >= 0.9999 * total) {
                a = (float)(i + 1) * top / HIST_BINS;
                break;
            }
        }
    } else {
        float qmin, qmax;
        act_levels(bits, is_signed, &qmin, &qmax);
        a = kl_clip(h, (int)qmax + 1, top);
    }
    free(h);
    return a > 0 && a <= top ? a : top;
}

mixq_status mq_weight_scales(const float *w, int K, int64_t inner, const int *bits, mq_gran gran,
                             mq_clip clip, float *scale) {
    return mq_weight_scales_rows(w, K, inner, bits, gran, clip, 0, scale);
}

mixq_status mq_weight_scales_rows(const float *w, int K, int64_t inner, const int *bits, mq_gran gran,
                                  mq_clip clip, int row_auto, float *scale) {
    for (int k = 0; k < K; k++) {
        if (!mq_bits_valid(bits[k]))
            return mq_err(MIXQ_ERR_ARG, "weight bits %d for row %d (valid: 1..8, 32)", bits[k], k);
        if (gran != MQ_GRAN_KERNEL && bits[k] != bits[0])
            return mq_err(MIXQ_ERR_ARG, "per-layer and per-channel scales need one bit width "
                          "(row %d has %d bits, row 0 %d); hint: granularity \"kernel\"", k,
                          bits[k], bits[0]);
    }
    if (gran == MQ_GRAN_LAYER) {
        const int b = bits[0];
        float s = 0;
        const int64_t n = (int64_t)K * inner;
        if (b == 1) {
            double a = 0;
            for (int64_t i = 0; i < n; i++) a += fabsf(w[i]);
            s = (float)(a / (double)n);
        } else if (b != MQ_FLOAT_BITS) {
            s = mq_choose_clip(w, n, b, 1, clip) / weight_n(b);
        }
        for (int k = 0; k < K; k++) scale[k] = s;
        return MIXQ_OK;
    }
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++) {
        const float *r = w + (size_t)k * inner;
        const int b = bits[k];
        if (b == MQ_FLOAT_BITS) {
            scale[k] = 0;
        } else if (b == 1) {
            double a = 0;
            for (int64_t i = 0; i < inner; i++) a += fabsf(r[i]);
            scale[k] = (float)(a / (double)inner);
        } else {
            const mq_clip c = row_auto ? (b < 5 ? MQ_CLIP_MSE : MQ_CLIP_MAX) : clip;
            scale[k] = mq_choose_clip(r, inner, b, 1, c) / weight_n(b);
        }
    }
    return MIXQ_OK;
}

/* Every quantized value is written as scale * (float)code from its integer code, so w_q and the
 * codes agree bit for bit (a rounded -0.0 becomes code 0 and +0.0). */
void mq_weight_fake_quant(const float *w, int K, int64_t inner, const int *bits,
                          const float *scale, float *wq, int8_t *codes, uint8_t *mask) {
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++) {
        const float *r = w + (size_t)k * inner;
        float *o = wq + (size_t)k * inner;
        int8_t *c = codes ? codes + (size_t)k * inner : NULL;
        uint8_t *m = mask ? mask + (size_t)k * inner : NULL;
        const int b = bits[k];
        const float s = scale[k];
        if (b == MQ_FLOAT_BITS) {
            if (o != r) memcpy(o, r, sizeof(float) * (size_t)inner);
            if (c) memset(c, 0, (size_t)inner);
            if (m) memset(m, 1, (size_t)inner);
        } else if (b == 1) {
            for (int64_t i = 0; i < inner; i++) {
                const int8_t q = r[i] >= 0 ? 1 : -1;
                o[i] = (float)q * s;
                if (c) c[i] = q;
            }
            if (m) memset(m, 1, (size_t)inner);
        } else if (!(s > 0)) { /* no grid (a scale set to 0): every code 0 */
            for (int64_t i = 0; i < inner; i++) o[i] = 0.0f * s;
            if (c) memset(c, 0, (size_t)inner);
            if (m) memset(m, 1, (size_t)inner);
        } else {
            const float n = weight_n(b), inv = 1.0f / s;
            for (int64_t i = 0; i < inner; i++) {
                const float q = nearbyintf(r[i] * inv);
                const int in = q >= -n && q <= n;
                const int8_t qi = (int8_t)(in ? q : q > n ? n : q < -n ? -n : 0.0f); /* NaN: 0 */
                o[i] = (float)qi * s;
                if (c) c[i] = qi;
                if (m) m[i] = (uint8_t)in;
            }
        }
    }
}

void mq_weight_lsq_grad(const float *w, int K, int64_t inner, const int *bits, const float *scale,
                        const float *dwq, float *dscale) {
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++) {
        const int b = bits[k];
        if (b < 2 || b == MQ_FLOAT_BITS || !(scale[k] > 0)) {
            dscale[k] = 0;
            continue;
        }
        const float n = weight_n(b), s = scale[k], inv = 1.0f / s;
        const float *r = w + (size_t)k * inner, *g = dwq + (size_t)k * inner;
        double acc = 0;
        for (int64_t i = 0; i < inner; i++) {
            const float v = r[i] * inv, q = nearbyintf(v);
            acc += (double)g[i] * (q < -n ? -n : q > n ? n : (q - v));
        }
        dscale[k] = (float)(acc / sqrt((double)inner * n));
    }
}

int mq_bias_quant(const float *b, int K, const float *s_w, float s_a, float *bq, int32_t *codes) {
    for (int k = 0; k < K; k++) {
        const float s = s_a * s_w[k];
        if (!(s > 0) || !isfinite(s) || !(fabs((double)b[k] / s) < 2147483647.0)) return 0;
    }
    for (int k = 0; k < K; k++) {
        const float s = s_a * s_w[k];
        const int32_t c = (int32_t)nearbyint((double)b[k] / s);
        bq[k] = (float)c * s;
        if (codes) codes[k] = c;
    }
    return 1;
}

void mq_act_fake_quant(const float *x, int64_t n, int bits, int is_signed, float alpha, float *y) {
    if (bits == MQ_FLOAT_BITS) {
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)n);
        return;
    }
    float qmin, qmax;
    act_levels(bits, is_signed, &qmin, &qmax);
    const float s = mq_act_scale(bits, is_signed, alpha);
    /* x / s, not x * (1 / s): ONNX QuantizeLinear divides, so an export runs the same codes */
#pragma omp parallel for schedule(static) if (n > CHUNK)
    for (int64_t i = 0; i < n; i++) y[i] = mq_act_q(x[i], s, qmin, qmax);
}

void mq_act_fake_quant_backward(const float *x, const float *dy, int64_t n, int bits,
                                int is_signed, float alpha, int lsq, float *dx, int accumulate,
                                float *dalpha) {
    if (bits == MQ_FLOAT_BITS) {
        if (dx)
            for (int64_t i = 0; i < n; i++) dx[i] = accumulate ? dx[i] + dy[i] : dy[i];
        if (dalpha) *dalpha = 0;
        return;
    }
    float qmin, qmax;
    act_levels(bits, is_signed, &qmin, &qmax);
    const float s = mq_act_scale(bits, is_signed, alpha);
    const int64_t nch = (n + CHUNK - 1) / CHUNK;
    double *part = dalpha ? calloc((size_t)(nch ? nch : 1), sizeof(double)) : NULL;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nch; c++) {
        const int64_t lo = c * CHUNK, hi = MQ_MIN(n, lo + CHUNK);
        double a = 0; /* dL/dalpha of this chunk */
        for (int64_t i = lo; i < hi; i++) {
            const float q = nearbyintf(x[i] / s), g = dy[i];
            const int inside = q >= qmin && q <= qmax;
            if (q > qmax) a += g;
            else if (q < qmin) a += (double)g * qmin / qmax;
            else if (lsq) a += (double)g * (q - x[i] / s) / qmax;
            if (dx) dx[i] = (accumulate ? dx[i] : 0.0f) + (inside ? g : 0.0f);
        }
        if (part) part[c] = a;
    }
    if (dalpha) {
        double a = 0;
        if (part)
            for (int64_t c = 0; c < nch; c++) a += part[c];
        *dalpha = (float)a;
    }
    free(part);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

mixq_status mq_kmeans_quant(const float *w, int64_t n, int bits, int iters, float *wq,
                            float *centroids) {
    if (bits < 1 || bits > 8) return mq_err(MIXQ_ERR_ARG, "k-means needs 1..8 bits, not %d", bits);
    if (n < 1) return mq_err(MIXQ_ERR_ARG, "k-means on an empty tensor");
    const int k = 1 << bits;
    float *sorted = mq_malloc((size_t)n, sizeof(float), "k-means sort buffer");
    double *sum = mq_calloc((size_t)k, sizeof(double), "k-means sums");
    int64_t *cnt = mq_calloc((size_t)k, sizeof(int64_t), "k-means counts");
    if (!sorted || !sum || !cnt) {
        free(sorted);
        free(sum);
        free(cnt);
        return MIXQ_ERR_NOMEM;
    }
    int finite = 1;
    for (int64_t i = 0; i < n; i++) finite &= isfinite(w[i]) != 0;
    memcpy(sorted, w, sizeof(float) * (size_t)n);
    if (finite) qsort(sorted, (size_t)n, sizeof(float), cmp_float);
    if (!finite) {
        free(sorted);
        free(sum);
        free(cnt);
        return mq_err(MIXQ_ERR_NUMERIC, "k-means: the weights hold NaN or Inf");
    }
    /* init: centroids at the (j + 0.5)/k quantiles (sorted, hence monotone) */
    for (int j = 0; j < k; j++) centroids[j] = sorted[(int64_t)((j + 0.5) * (double)n / k)];
    for (int it = 0; it < iters; it++) {
        memset(sum, 0, sizeof(double) * (size_t)k);
        memset(cnt, 0, sizeof(int64_t) * (size_t)k);
        int j = 0;
        for (int64_t i = 0; i < n; i++) { /* sorted data: the nearest centroid only moves right */
            while (j + 1 < k && fabsf(sorted[i] - centroids[j + 1]) <= fabsf(sorted[i] - centroids[j]))
                j++;
            sum[j] += sorted[i];
            cnt[j]++;
        }
        int moved = 0;
        for (int c = 0; c < k; c++)
            if (cnt[c]) {
                float v = (float)(sum[c] / (double)cnt[c]);
                moved |= v != centroids[c];
                centroids[c] = v;
            }
        /* keep the codebook sorted (empty clusters keep their old value) */
        qsort(centroids, (size_t)k, sizeof(float), cmp_float);
        if (!moved) break;
    }
    free(sorted);
    free(sum);
    free(cnt);
    /* assign each weight to its nearest centroid (binary search on the sorted codebook) */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int lo = 0, hi = k - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (w[i] > 0.5f * (centroids[mid] + centroids[mid + 1])) lo = mid + 1;
            else hi = mid;
        }
        wq[i] = centroids[lo];
    }
    return MIXQ_OK;
}
