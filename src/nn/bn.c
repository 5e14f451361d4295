/* Batch normalisation over channels (FP32, statistics in double).
 * x, y, dy, dx [N][C][HW]; gamma, beta, run_mean, run_var, save_mean, save_invstd, dgamma,
 * dbeta [C]. Parallel over channels: each channel's reductions run in a fixed order, so
 * results do not depend on the thread count. */
#include <math.h>

#include "nn/kernels.h"

/* Row reductions in 16 float lanes (a fixed order that vectorises), each row's total added to
 * a double accumulator by the caller: accurate, fast, and independent of the thread count. */
#define LANES 16

static double row_sum(const float *x, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    double s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum (x - mu)^2 */
static double row_sqdev(const float *x, int n, float mu) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            const float d = x[i + j] - mu;
            acc[j] += d * d;
        }
    double s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += (double)(x[i] - mu) * (x[i] - mu);
    return s;
}

/* sum dy and sum dy * (x - mu) */
static void row_dot(const float *dy, const float *x, int n, float mu, double *sdy, double *sdyx) {
    float a[LANES] = {0}, b[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            a[j] += dy[i + j];
            b[j] += dy[i + j] * (x[i + j] - mu);
        }
    double s = 0, t = 0;
    for (int j = 0; j < LANES; j++) {
        s += a[j];
        t += b[j];
    }
    for (; i < n; i++) {
        s += dy[i];
        t += (double)dy[i] * (x[i] - mu);
    }
    *sdy += s;
    *sdyx += t;
}

mixq_status mq_bn_forward(int N, int C, int HW, const float *x, const float *gamma,
                          const float *beta, float *run_mean, float *run_var, float eps,
                          float momentum, int training, float *save_mean, float *save_invstd,
                          float *y) {
    if (N < 1 || C < 1 || HW < 1)
        return mq_err(MIXQ_ERR_SHAPE, "batchnorm: sizes must be positive (N %d C %d HW %d)", N, C, HW);
    const size_t M = (size_t)N * HW;
    if (training && M < 2)
        return mq_err(MIXQ_ERR_SHAPE, "batchnorm: training needs more than one value per channel "
                      "(N %d, HW %d); hint: use a batch of at least 2", N, HW);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mean, invstd;
        if (training) {
            double s = 0, ss = 0;
            for (int n = 0; n < N; n++) s += row_sum(x + ((size_t)n * C + c) * HW, HW);
            const double mu = s / (double)M;
            /* two-pass variance around the float mean, corrected for its rounding */
            const float muf = (float)mu;
            for (int n = 0; n < N; n++) ss += row_sqdev(x + ((size_t)n * C + c) * HW, HW, muf);
            const double dm = mu - (double)muf;
            ss -= (double)M * dm * dm;
            if (ss < 0) ss = 0;
            double var = ss / (double)M;
            mean = (float)mu;
            invstd = (float)(1.0 / sqrt(var + eps));
            save_mean[c] = mean;
            save_invstd[c] = invstd;
            run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean;
            run_var[c] = (1.0f - momentum) * run_var[c] +
                         momentum * (float)(ss / (double)(M - 1));
        } else {
            mean = run_mean[c];
            invstd = (float)(1.0 / sqrt((double)run_var[c] + eps));
        }
        const float a = gamma[c] * invstd, bb = beta[c] - mean * a;
        for (int n = 0; n < N; n++) {
            const float *xc = x + ((size_t)n * C + c) * HW;
            float *yc = y + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) yc[i] = xc[i] * a + bb;
        }
    }
    return MIXQ_OK;
}

mixq_status mq_bn_backward(int N, int C, int HW, const float *x, const float *gamma,
                           const float *save_mean, const float *save_invstd, const float *run_var,
                           float eps, int training, const float *dy, float *dx, int accumulate,
                           float *dgamma, float *dbeta) {
    if (N < 1 || C < 1 || HW < 1)
        return mq_err(MIXQ_ERR_SHAPE, "batchnorm: sizes must be positive (N %d C %d HW %d)", N, C, HW);
    const double M = (double)N * HW;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        /* In training mode the statistics are the batch's; in inference mode they are the
         * running ones and constant. */
        const float mean = save_mean[c]; /* running mean in inference mode */
        const float invstd = training ? save_invstd[c] : (float)(1.0 / sqrt((double)run_var[c] + eps));
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++)
            row_dot(dy + ((size_t)n * C + c) * HW, x + ((size_t)n * C + c) * HW, HW, mean, &sdy,
                    &sdyx);
        /* dgamma = sum dy * xhat; dbeta = sum dy (xhat uses the statistics in force) */
        if (dgamma) dgamma[c] = (float)(sdyx * invstd);
        if (dbeta) dbeta[c] = (float)sdy;
        if (!dx) continue;
        const float g = gamma[c] * invstd;
        float k1 = 0.0f, k2 = 0.0f;
        if (training) {
            k1 = (float)(sdy / M);
            k2 = (float)(sdyx / M) * invstd * invstd;
        }
        for (int n = 0; n < N; n++) {
            const float *xc = x + ((size_t)n * C + c) * HW, *dyc = dy + ((size_t)n * C + c) * HW;
            float *dxc = dx + ((size_t)n * C + c) * HW;
            if (training && accumulate)
                for (int i = 0; i < HW; i++) dxc[i] += g * (dyc[i] - k1 - (xc[i] - mean) * k2);
            else if (training)
                for (int i = 0; i < HW; i++) dxc[i] = g * (dyc[i] - k1 - (xc[i] - mean) * k2);
            else if (accumulate)
                for (int i = 0; i < HW; i++) dxc[i] += g * dyc[i];
            else
                for (int i = 0; i < HW; i++) dxc[i] = g * dyc[i];
        }
    }
    return MIXQ_OK;
}
