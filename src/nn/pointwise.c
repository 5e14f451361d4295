/* Element-wise kernels: ReLU, ReLU6, residual add, gradient pass-through. n elements each;
 * no reductions, so any thread split gives identical results. */
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
