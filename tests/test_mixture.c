/* EBS's mixed-precision layers (src/quant/mixture.c):
 *   - a one-hot strength reproduces the plain quantizer exactly (logits, loss and every gradient
 *     bit for bit against a model quantized by a policy at that width, same clips);
 *   - dL/dalpha and dL/dbeta against central finite differences of the loss, one mixed layer at
 *     a time (the layers after it on float activations, so the loss is smooth in the strengths);
 *   - dL/dW = sum_i r_i STE_i(G), G from the float model run on the mixed weights;
 *   - Gumbel: the forward runs the one-hot argmax of alpha + g, the strength gradient goes through
 *     the soft weights (sums to 0 over the candidates);
 *   - the same numbers at 1 and 2 threads; bad arguments are errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixq/mixq.h"
#include "core/core.h"
#include "nn/model.h"
#include "quant/mixture.h"
#include "quant/qmodel.h"
#include "test.h"

enum { N = 6, CLASSES = 10 };
static float g_x[N * 28 * 28];
static int g_lab[N];

static void make_data(void) {
    mq_rng r;
    mq_rng_seed(&r, 11);
    for (int i = 0; i < N * 28 * 28; i++) g_x[i] = (float)((double)(mq_rng_u64(&r) >> 11) / 9007199254740992.0 * 3.0 - 1.0);
    for (int i = 0; i < N; i++) g_lab[i] = (int)(mq_rng_u64(&r) % CLASSES);
}

static mixq_model *lenet5(void) {
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = CLASSES, .seed = 3};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    return m;
}

/* mean softmax cross-entropy of logits z [N][CLASSES] against g_lab, in double */
static double ce(const float *z) {
    double L = 0;
    for (int n = 0; n < N; n++) {
        double mx = z[n * CLASSES];
        for (int k = 1; k < CLASSES; k++) mx = fmax(mx, z[n * CLASSES + k]);
        double s = 0;
        for (int k = 0; k < CLASSES; k++) s += exp(z[n * CLASSES + k] - mx);
        L += mx + log(s) - z[n * CLASSES + g_lab[n]];
    }
    return L / N;
}

static double loss_of(mixq_model *m) {
    float z[N * CLASSES];
    CHECK_OK(mixq_model_forward(m, g_x, N, 0, z));
    return ce(z);
}

static const int WB[3] = {2, 4, 8}, AB[3] = {2, 4, 8};

/* A one-hot strength (weights at WB[i], activations at AB[j]) is the plain quantizer. */
static void test_one_hot(void) {
    make_data();
    for (int t = 0; t < 3; t++) {
        const int i = t, j = 2 - t;
        mixq_model *ref = lenet5(), *mx = NULL;
        if (!ref) return;
        CHECK_OK(mixq_model_clone(ref, &mx));
        char pol[256];
        snprintf(pol, sizeof pol, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": %d, \"a_bits\": %d, \"granularity\": \"channel\", "
                 "\"w_clip\": \"max\", \"a_clip\": \"max\"}}", WB[i], AB[j]);
        mixq_policy *p = NULL;
        CHECK_OK(mixq_policy_parse(pol, strlen(pol), "test", &p));
        CHECK_OK(mixq_model_quantize(ref, p));
        CHECK_OK(mq_mix_install(mx, 3, WB, 3, AB));
        CHECK_OK(mq_mix_calibrate(mx, g_x, N));
        const int L = mq_mix_count(mx);
        CHECK(L == mixq_model_quant_layers(ref) && L == 5);
        for (int l = 0; l < L; l++) {
            mq_mix_layer *y = mq_mix_get(mx, l);
            CHECK(y->clip[j] > 0);
            CHECK_OK(mq_quant_layer_set(ref, y->node, NULL, y->clip[j])); /* the same clip */
            for (int c = 0; c < 3; c++) y->alpha[c] = c == i ? 0.0f : -1e4f, y->beta[c] = c == j ? 0.0f : -1e4f;
        }
        float z0[N * CLASSES], z1[N * CLASSES];
        CHECK_OK(mixq_model_forward(ref, g_x, N, 1, z0));
        CHECK_OK(mixq_model_forward(mx, g_x, N, 1, z1));
        CHECKF(!memcmp(z0, z1, sizeof z0), "W%dA%d: logits differ (%g vs %g)", WB[i], AB[j], (double)z0[0], (double)z1[0]);
        float l0 = 0, l1 = 0;
        CHECK_OK(mixq_model_backward(ref, g_lab, 0, &l0));
        CHECK_OK(mixq_model_backward(mx, g_lab, 0, &l1));
        CHECK(l0 == l1);
        int diff = 0, ntens = mixq_model_tensor_count(ref);
        for (int k = 0; k < ntens; k++) {
            mixq_tensor_info ti;
            CHECK_OK(mixq_model_tensor(ref, k, &ti));
            if (!ti.trainable) continue;
            const float *g0 = mixq_model_tensor_grad(ref, ti.name), *g1 = mixq_model_tensor_grad(mx, ti.name);
            for (int64_t e = 0; g0 && g1 && e < ti.numel; e++) diff += g0[e] != g1[e];
        }
        CHECKF(diff == 0, "W%dA%d: %d gradient entries differ", WB[i], AB[j], diff);
        mixq_policy_free(p);
        mixq_model_free(ref);
        mixq_model_free(mx);
    }
}

/* Only layer l mixed (weights and activations over WB x AB); the others at 4-bit weights and
 * float activations. Strengths spread so no candidate dominates. */
static mixq_model *one_mixed(int l, int act_mixed) {
    mixq_model *m = lenet5();
    if (!m) return NULL;
    const int fa = 32;
    CHECK_OK(mq_mix_install(m, 3, WB, act_mixed ? 3 : 1, act_mixed ? AB : &fa));
    for (int k = 0; k < mq_mix_count(m); k++)
        if (k != l) CHECK_OK(mq_mix_fix(m, k, 4, 32));
    CHECK_OK(mq_mix_calibrate(m, g_x, N));
    mq_mix_layer *y = mq_mix_get(m, l);
    const float a[3] = {0.3f, -0.2f, 0.1f}, b[3] = {-0.1f, 0.4f, 0.0f};
    for (int c = 0; c < 3; c++) y->alpha[c] = a[c], y->beta[c] = b[c];
    return m;
}

static void test_strength_gradients(void) {
    make_data();
    for (int l = 0; l < 5; l++) {
        mixq_model *m = one_mixed(l, 1);
        if (!m) return;
        mq_mix_layer *y = mq_mix_get(m, l);
        float z[N * CLASSES], loss = 0;
        mq_mix_zero_grad(m);
        CHECK_OK(mixq_model_forward(m, g_x, N, 0, z));
        CHECK_OK(mixq_model_backward(m, g_lab, 0, &loss));
        CHECK(fabs(loss - ce(z)) < 1e-5 * fmax(1, fabs(loss)));
        double ga[3], gb[3], worst = 0, scale = 0;
        memcpy(ga, y->dalpha, sizeof ga);
        memcpy(gb, y->dbeta, sizeof gb);
        for (int c = 0; c < 3; c++) scale = fmax(scale, fmax(fabs(ga[c]), fabs(gb[c])));
        CHECKF(scale > 1e-6, "layer %d: strength gradients all ~0", l);
        for (int which = 0; which < 2; which++)
            for (int c = 0; c < 3; c++) {
                float *v = which ? &y->beta[c] : &y->alpha[c];
                const float keep = *v, eps = 3e-3f;
                *v = keep + eps;
                const double lp = loss_of(m);
                *v = keep - eps;
                const double lm = loss_of(m);
                *v = keep;
                const double fd = (lp - lm) / (2.0 * eps), an = which ? gb[c] : ga[c];
                worst = fmax(worst, fabs(fd - an) / scale);
                /* 1.5 %: float32 logits and the ReLU / max-pool kinks the step crosses (the
                 * last layer, with none after it, agrees to 0.03 %); a wrong or zero gradient
                 * is off by ~100 % */
                CHECKF(fabs(fd - an) < 1.5e-2 * scale, "layer %d %s[%d]: analytic %.6g, finite differences %.6g", l,
                       which ? "beta" : "alpha", c, an, fd);
            }
        printf("  layer %d: max |dL/dstrength| %.3g, worst finite-difference error %.2g of it\n", l, scale, worst);
        /* the softmax Jacobian: gradients sum to 0 over the candidates */
        CHECK(fabs(ga[0] + ga[1] + ga[2]) < 1e-6 * scale && fabs(gb[0] + gb[1] + gb[2]) < 1e-6 * scale);
        mixq_model_free(m);
    }
}

/* dL/dW = sum_i r_i mask_i G, G = dL/dW^ of the float model running W^ */
static void test_weight_gradient(void) {
    make_data();
    for (int l = 0; l < 5; l++) {
        mixq_model *m = one_mixed(l, 0), *f = NULL;
        if (!m) return;
        CHECK_OK(mixq_model_clone(m, &f)); /* clones the float model */
        mq_mix_layer *y = mq_mix_get(m, l);
        float loss = 0;
        CHECK_OK(mixq_model_forward(m, g_x, N, 0, NULL));
        CHECK_OK(mixq_model_backward(m, g_lab, 0, &loss));
        const mq_node *nd = &m->nodes[y->node];
        const int64_t numel = m->tensors[nd->t_w].numel;
        /* the float model: layer l's weights = W^ = sum r_i Q_i(W); the others at their 4 bits */
        char name[MIXQ_NAME_MAX + 8];
        float *what = malloc(sizeof(float) * (size_t)numel);
        if (!what) return;
        memset(what, 0, sizeof(float) * (size_t)numel);
        for (int c = 0; c < 3; c++) {
            const float *q = mq_mix_weights(m, l, c);
            for (int64_t e = 0; q && e < numel; e++) what[e] += y->r[c] * q[e];
        }
        for (int k = 0; k < mq_mix_count(m); k++) {
            const mq_node *nk = &m->nodes[mq_mix_get(m, k)->node];
            snprintf(name, sizeof name, "%s.weight", nk->name);
            float *fw = mixq_model_tensor_data(f, name);
            const float *src = k == l ? what : mq_mix_weights(m, k, 0);
            if (fw && src) memcpy(fw, src, sizeof(float) * (size_t)m->tensors[nk->t_w].numel);
        }
        float lf = 0;
        CHECK_OK(mixq_model_forward(f, g_x, N, 0, NULL));
        CHECK_OK(mixq_model_backward(f, g_lab, 0, &lf));
        CHECK(fabsf(lf - loss) <= 1e-6f * fmaxf(1, fabsf(loss)));
        snprintf(name, sizeof name, "%s.weight", nd->name);
        const float *G = mixq_model_tensor_grad(f, name), *got = mixq_model_tensor_grad(m, name);
        double err = 0, mag = 0;
        int64_t masked = 0;
        for (int64_t e = 0; G && got && e < numel; e++) {
            /* mask_i: max clipping passes every weight (|w| <= max |w| of its channel) */
            double v = 0;
            for (int c = 0; c < 3; c++) v += y->r[c];
            const double want = v * G[e];
            err = fmax(err, fabs(want - got[e]));
            mag = fmax(mag, fabs(want));
            masked += got[e] == 0 && G[e] != 0;
        }
        CHECKF(err <= 1e-5 * mag && mag > 0, "layer %d: dL/dW off by %.3g (max %.3g)", l, err, mag);
        CHECK(masked == 0);
        free(what);
        mixq_model_free(f);
        mixq_model_free(m);
    }
}

static void test_gumbel(void) {
    make_data();
    mixq_model *m = one_mixed(2, 1);
    if (!m) return;
    mq_mix_layer *y = mq_mix_get(m, 2);
    CHECK_OK(mq_mix_set_mode(m, MQ_MIX_GUMBEL, 0.7f));
    mq_rng r;
    mq_rng_seed(&r, 5);
    int seen[3] = {0};
    for (int t = 0; t < 12; t++) {
        mq_mix_sample(m, &r);
        mq_mix_zero_grad(m);
        float loss = 0;
        CHECK_OK(mixq_model_forward(m, g_x, N, 0, NULL));
        CHECK_OK(mixq_model_backward(m, g_lab, 0, &loss));
        int best = 0;
        for (int c = 1; c < 3; c++)
            if (y->alpha[c] + y->gw[c] > y->alpha[best] + y->gw[best]) best = c;
        seen[best] = 1;
        for (int c = 0; c < 3; c++) CHECK(y->r[c] == (c == best ? 1.0f : 0.0f));
        const double sa = y->dalpha[0] + y->dalpha[1] + y->dalpha[2];
        CHECK(fabs(sa) < 1e-6 * (fabs(y->dalpha[0]) + fabs(y->dalpha[1]) + 1e-12));
        CHECK(y->dalpha[0] != 0 || y->dalpha[1] != 0);
    }
    CHECK(seen[0] + seen[1] + seen[2] >= 2); /* the noise moves the choice */
    /* argmax mode: the strengths' own argmax, no strength gradient */
    CHECK_OK(mq_mix_set_mode(m, MQ_MIX_ARGMAX, 1));
    mq_mix_zero_grad(m);
    float loss = 0;
    CHECK_OK(mixq_model_forward(m, g_x, N, 0, NULL));
    CHECK_OK(mixq_model_backward(m, g_lab, 0, &loss));
    CHECK(y->r[0] == 1 && y->r[1] == 0 && y->s[1] == 1 && y->dalpha[0] == 0 && y->dbeta[1] == 0);
    mixq_model_free(m);
}

static void test_threads(void) {
    make_data();
    double d[2][6];
    for (int t = 0; t < 2; t++) {
        CHECK_OK(mixq_set_threads(t + 1));
        mixq_model *m = lenet5();
        if (!m) return;
        CHECK_OK(mq_mix_install(m, 3, WB, 3, AB));
        CHECK_OK(mq_mix_calibrate(m, g_x, N));
        float loss = 0;
        CHECK_OK(mixq_model_forward(m, g_x, N, 1, NULL));
        CHECK_OK(mixq_model_backward(m, g_lab, 0, &loss));
        mq_mix_layer *y = mq_mix_get(m, 1);
        for (int c = 0; c < 3; c++) d[t][c] = y->dalpha[c], d[t][3 + c] = y->dbeta[c];
        mixq_model_free(m);
    }
    CHECK_OK(mixq_set_threads(1));
    CHECK(!memcmp(d[0], d[1], sizeof d[0]));
}

static void test_errors(void) {
    mixq_model *m = lenet5();
    if (!m) return;
    const int bad[2] = {4, 4}, nine = 9;
    CHECK(mq_mix_install(m, 2, bad, 3, AB) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "twice") != NULL);
    CHECK(mq_mix_install(m, 1, &nine, 3, AB) == MIXQ_ERR_ARG);
    CHECK(mq_mix_install(m, 0, WB, 3, AB) == MIXQ_ERR_ARG);
    CHECK(mq_mix_count(m) == 0);
    CHECK_OK(mq_mix_install(m, 3, WB, 3, AB));
    CHECK(mq_mix_get(m, 5) == NULL);
    /* mixtures are search state, not a policy: the public API sees a float model */
    CHECK(!mixq_model_is_quantized(m) && mixq_model_quant_layers(m) == 0 && mixq_model_policy(m) == NULL);
    mixq_model *c = NULL;
    CHECK_OK(mixq_model_clone(m, &c));
    CHECK(c && !mixq_model_is_quantized(c) && mq_mix_count(c) == 0);
    mixq_model_free(c);
    CHECK(mq_mix_set_mode(m, MQ_MIX_GUMBEL, 0) == MIXQ_ERR_ARG);
    CHECK(mixq_model_forward(m, g_x, N, 0, NULL) == MIXQ_ERR_STATE); /* clips not calibrated */
    CHECK(strstr(mixq_last_error(), "mq_mix_calibrate") != NULL);
    mixq_model_free(m);
}

int main(void) {
    TEST_RUN(test_one_hot);
    TEST_RUN(test_strength_gradients);
    TEST_RUN(test_weight_gradient);
    TEST_RUN(test_gumbel);
    TEST_RUN(test_threads);
    TEST_RUN(test_errors);
    return test_summary();
}
