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
        float mx = z[0];
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > mx) {
                mx = z[k];
                arg = k;
            }
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
