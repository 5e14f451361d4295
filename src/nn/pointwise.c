/* Element-wise kernels: ReLU, ReLU6, sigmoid, hard sigmoid, hard swish, residual add,
 * multiply (same shape or per-channel), channel concatenation, gradient pass-through. The only
 * reduction (a per-channel factor's gradient) runs over one channel in a fixed order, so any
 * thread split gives identical results. */
#include <math.h>
#include <string.h>

#include "nn/kernels.h"

#define PAR_MIN 65536 /* below this, threads cost more than they save */

void mq_relu_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN propagates */
}

void mq_relu_backward(int64_t n, const float *y, const float *dy, float *dx, int accumulate) {
    if (accumulate) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float g = dy[i]; /* unconditional load: the select vectorises */
            dx[i] += y[i] > 0.0f ? g : 0.0f;
        }
    } else {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float g = dy[i];
            dx[i] = y[i] > 0.0f ? g : 0.0f;
        }
    }
}

void mq_relu6_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < 0.0f ? 0.0f : x[i]; /* NaN propagates */
        y[i] = v > 6.0f ? 6.0f : v;
    }
}

void mq_relu6_backward(int64_t n, const float *y, const float *dy, float *dx, int accumulate) {
    if (accumulate) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float g = dy[i], v = y[i];
            dx[i] += ((v > 0.0f) & (v < 6.0f)) ? g : 0.0f;
        }
    } else {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float g = dy[i], v = y[i];
            dx[i] = ((v > 0.0f) & (v < 6.0f)) ? g : 0.0f;
        }
    }
}

void mq_add_forward(int64_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void mq_grad_pass(int64_t n, const float *dy, float *dx, int accumulate) {
    if (accumulate) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
    } else {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i];
    }
}

void mq_sigmoid_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i])); /* +-inf, NaN as PyTorch */
}

void mq_sigmoid_backward(int64_t n, const float *y, const float *dy, float *dx, int accumulate) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float g = dy[i] * y[i] * (1.0f - y[i]);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

void mq_hsigmoid_forward(int64_t n, float alpha, float beta, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float v = alpha * x[i] + beta;
        y[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; /* NaN propagates */
    }
}

void mq_hsigmoid_backward(int64_t n, float alpha, const float *y, const float *dy, float *dx,
                          int accumulate) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float v = y[i], g = ((v > 0.0f) & (v < 1.0f)) ? alpha * dy[i] : 0.0f;
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

void mq_hswish_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        /* PyTorch's x * min(max(x + 3, 0), 6) / 6 */
        const float v = x[i] + 3.0f, r = v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
        y[i] = x[i] * r / 6.0f;
    }
}

void mq_hswish_backward(int64_t n, const float *x, const float *dy, float *dx, int accumulate) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        const float g = v < -3.0f ? 0.0f : v <= 3.0f ? dy[i] * (v / 3.0f + 0.5f) : dy[i];
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

void mq_mul_forward(int64_t NC, int HW, int bhw, const float *a, const float *b, float *y) {
    if (bhw == HW) {
        const int64_t n = NC * HW;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
        return;
    }
#pragma omp parallel for schedule(static) if (NC * HW > PAR_MIN)
    for (int64_t c = 0; c < NC; c++) {
        const float f = b[c], *ac = a + c * HW;
        float *yc = y + c * HW;
        for (int i = 0; i < HW; i++) yc[i] = ac[i] * f;
    }
}

void mq_mul_backward(int64_t NC, int HW, int bhw, const float *a, const float *b, const float *dy,
                     float *da, int acc_a, float *db, int acc_b) {
    if (bhw == HW) {
        const int64_t n = NC * HW;
        if (da) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
            for (int64_t i = 0; i < n; i++) da[i] = acc_a ? da[i] + dy[i] * b[i] : dy[i] * b[i];
        }
        if (db) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
            for (int64_t i = 0; i < n; i++) db[i] = acc_b ? db[i] + dy[i] * a[i] : dy[i] * a[i];
        }
        return;
    }
    if (da) {
#pragma omp parallel for schedule(static) if (NC * HW > PAR_MIN)
        for (int64_t c = 0; c < NC; c++) {
            const float f = b[c], *g = dy + c * HW;
            float *d = da + c * HW;
            for (int i = 0; i < HW; i++) d[i] = acc_a ? d[i] + g[i] * f : g[i] * f;
        }
    }
    if (db) {
#pragma omp parallel for schedule(static) if (NC * HW > PAR_MIN)
        for (int64_t c = 0; c < NC; c++) {
            const float *g = dy + c * HW, *ac = a + c * HW;
            double s = 0;
            for (int i = 0; i < HW; i++) s += (double)g[i] * ac[i];
            db[c] = acc_b ? db[c] + (float)s : (float)s;
        }
    }
}

void mq_concat_forward(int N, int Ca, int Cb, int HW, const float *a, const float *b, float *y) {
    const size_t sa = (size_t)Ca * HW, sb = (size_t)Cb * HW;
#pragma omp parallel for schedule(static) if ((int64_t)N * (Ca + Cb) * HW > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *yn = y + (size_t)n * (sa + sb);
        memcpy(yn, a + (size_t)n * sa, sizeof(float) * sa);
        memcpy(yn + sa, b + (size_t)n * sb, sizeof(float) * sb);
    }
}

/* dst[n][0..len) (+)= src[n * stride + 0..len) for n < N. */
static void strided_pass(int N, int64_t len, const float *src, int64_t stride, float *dst, int accumulate) {
#pragma omp parallel for schedule(static) if ((int64_t)N * len > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *s = src + (int64_t)n * stride;
        float *d = dst + (int64_t)n * len;
        if (accumulate)
            for (int64_t i = 0; i < len; i++) d[i] += s[i];
        else memcpy(d, s, sizeof(float) * (size_t)len);
    }
}

void mq_concat_backward(int N, int Ca, int Cb, int HW, const float *dy, float *da, int acc_a,
                        float *db, int acc_b) {
    const int64_t sa = (int64_t)Ca * HW, sb = (int64_t)Cb * HW;
    if (da) strided_pass(N, sa, dy, sa + sb, da, acc_a);
    if (db) strided_pass(N, sb, dy + sa, sa + sb, db, acc_b);
}
