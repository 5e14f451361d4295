/* Fully connected layer (FP32).
 * x [N][IN], w [OUT][IN], b [OUT], y [N][OUT]; dy like y, dx like x, dw like w, db like b.
 * GEMMs run on fixed blocks of rows (images for y and dx, outputs for dw) inside our own
 * parallel loop, so BLAS runs single-threaded on each block and results do not depend on the
 * thread count (OpenBLAS's own threading of a serial call does change them); db is a column
 * sum in a fixed order. */
#include <omp.h>
#include <cblas.h>
#include <string.h>

#include "nn/kernels.h"

#define ROWS 16 /* fixed block of rows per GEMM call */

mixq_status mq_linear_forward(int N, int IN, int OUT, const float *x, const float *w,
                              const float *b, float *y) {
    if (N < 1 || IN < 1 || OUT < 1)
        return mq_err(MIXQ_ERR_SHAPE, "linear: sizes must be positive (N %d IN %d OUT %d)", N, IN, OUT);
    const int nb = (N + ROWS - 1) / ROWS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int n0 = blk * ROWS, rows = MQ_MIN(ROWS, N - n0);
        if (b)
            for (int n = n0; n < n0 + rows; n++) memcpy(y + (size_t)n * OUT, b, sizeof(float) * (size_t)OUT);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, OUT, IN, 1.0f,
                    x + (size_t)n0 * IN, IN, w, IN, b ? 1.0f : 0.0f, y + (size_t)n0 * OUT, OUT);
    }
    return MIXQ_OK;
}

mixq_status mq_linear_backward(int N, int IN, int OUT, const float *x, const float *w,
                               const float *dy, float *dx, int accumulate, float *dw, float *db) {
    if (N < 1 || IN < 1 || OUT < 1)
        return mq_err(MIXQ_ERR_SHAPE, "linear: sizes must be positive (N %d IN %d OUT %d)", N, IN, OUT);
    const int nb = (N + ROWS - 1) / ROWS, ob = (OUT + ROWS - 1) / ROWS;
    /* one loop over image blocks (dx) then output blocks (dw) */
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < (dx ? nb : 0) + (dw ? ob : 0); blk++) {
        if (dx && blk < nb) {
            int n0 = blk * ROWS, rows = MQ_MIN(ROWS, N - n0);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, IN, OUT, 1.0f,
                        dy + (size_t)n0 * OUT, OUT, w, IN, accumulate ? 1.0f : 0.0f,
                        dx + (size_t)n0 * IN, IN);
        } else {
            int o0 = (blk - (dx ? nb : 0)) * ROWS, rows = MQ_MIN(ROWS, OUT - o0);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, IN, N, 1.0f, dy + o0, OUT,
                        x, IN, 0.0f, dw + (size_t)o0 * IN, IN);
        }
    }
    if (db) {
        for (int o = 0; o < OUT; o++) db[o] = 0.0f;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) db[o] += dy[(size_t)n * OUT + o];
    }
    return MIXQ_OK;
}

void mq_linear_forward_ref(int N, int IN, int OUT, const float *x, const float *w, const float *b,
                           float *y) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < IN; i++) acc += (double)x[(size_t)n * IN + i] * w[(size_t)o * IN + i];
            y[(size_t)n * OUT + o] = (float)acc;
        }
}

void mq_linear_backward_ref(int N, int IN, int OUT, const float *x, const float *w,
                            const float *dy, float *dx, int accumulate, float *dw, float *db) {
    if (dx)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IN; i++) {
                double acc = accumulate ? dx[(size_t)n * IN + i] : 0.0;
                for (int o = 0; o < OUT; o++) acc += (double)dy[(size_t)n * OUT + o] * w[(size_t)o * IN + i];
                dx[(size_t)n * IN + i] = (float)acc;
            }
    if (dw)
        for (int o = 0; o < OUT; o++)
            for (int i = 0; i < IN; i++) {
                double acc = 0;
                for (int n = 0; n < N; n++) acc += (double)dy[(size_t)n * OUT + o] * x[(size_t)n * IN + i];
                dw[(size_t)o * IN + i] = (float)acc;
            }
    if (db)
        for (int o = 0; o < OUT; o++) {
            double acc = 0;
            for (int n = 0; n < N; n++) acc += dy[(size_t)n * OUT + o];
            db[o] = (float)acc;
        }
}
