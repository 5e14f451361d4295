/* Softmax cross-entropy with label smoothing (PyTorch's CrossEntropyLoss semantics, mean
 * reduction). logits, probs, dlogits [N][K]; labels [N]. */
#include <math.h>

#include "nn/kernels.h"

mixq_status mq_softmax_ce_forward(int N, int K, const float *logits, const int *labels,
                                  float eps, float *probs, float *loss, int *correct) {
    if (N < 1 || K < 2) return mq_err(MIXQ_ERR_SHAPE, "cross-entropy: N %d, K %d classes", N, K);
    double total = 0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K;
        int y = labels[n];
        if (y < 0 || y >= K)
            return mq_err(MIXQ_ERR_ARG, "cross-entropy: label %d of image %d is outside [0, %d)", y,
                          n, K);
        const int arg = mq_argmax(z, K);
        const float mx = z[arg];
        double se = 0, sz = 0;
        for (int k = 0; k < K; k++) {
            se += exp((double)z[k] - mx);
            sz += (double)z[k] - mx;
        }
        double lse = log(se);
        /* -log p_y = lse - (z_y - mx); smoothing: eps * mean_k(-log p_k) */
        double nll = lse - ((double)z[y] - mx);
        double smooth = lse - sz / K;
        total += (1.0 - eps) * nll + eps * smooth;
        hits += arg == y;
        if (probs)
            for (int k = 0; k < K; k++) probs[(size_t)n * K + k] = (float)(exp((double)z[k] - mx) / se);
    }
    float l = (float)(total / N);
    if (!isfinite(l))
        return mq_err(MIXQ_ERR_NUMERIC, "cross-entropy: loss is not finite (NaN or Inf in the logits)");
    if (loss) *loss = l;
    if (correct) *correct = hits;
    return MIXQ_OK;
}

void mq_softmax_ce_backward(int N, int K, const float *probs, const int *labels, float eps,
                            float *dlogits) {
    const float invN = 1.0f / (float)N, off = eps / (float)K;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float target = off + (k == labels[n] ? 1.0f - eps : 0.0f);
            dlogits[(size_t)n * K + k] = (probs[(size_t)n * K + k] - target) * invN;
        }
}

mixq_status mq_distill(int N, int K, const float *logits, const float *teacher, float T, float w,
                       float *loss, float *dlogits) {
    if (N < 1 || K < 2) return mq_err(MIXQ_ERR_SHAPE, "distillation: N %d, K %d classes", N, K);
    if (!(T > 0 && isfinite(T)))
        return mq_err(MIXQ_ERR_ARG, "distillation: temperature %g must be positive", (double)T);
    double total = 0, invT = 1.0 / T;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K, *t = teacher + (size_t)n * K;
        /* log-softmax of z / T and of t / T; KL(q_t || q_s) = sum q_t (log q_t - log q_s) */
        double mz = z[0], mt = t[0], sz = 0, st = 0;
        for (int k = 1; k < K; k++) {
            if (z[k] > mz) mz = z[k];
            if (t[k] > mt) mt = t[k];
        }
        for (int k = 0; k < K; k++) {
            sz += exp(((double)z[k] - mz) * invT);
            st += exp(((double)t[k] - mt) * invT);
        }
        double lz = log(sz), lt = log(st), kl = 0;
        for (int k = 0; k < K; k++) {
            double ls = ((double)z[k] - mz) * invT - lz, lq = ((double)t[k] - mt) * invT - lt;
            double qt = exp(lq);
            kl += qt * (lq - ls);
            /* d(T^2 KL)/dz_k = T (q_s - q_t), mean over the batch */
            if (dlogits) dlogits[(size_t)n * K + k] += (float)(w * T * (exp(ls) - qt) / N);
        }
        total += kl;
    }
    double l = total * (double)T * T / N;
    if (!isfinite(l))
        return mq_err(MIXQ_ERR_NUMERIC, "distillation: loss is not finite (NaN or Inf in the "
                      "student's or the teacher's logits)");
    if (loss) *loss = (float)l;
    return MIXQ_OK;
}
