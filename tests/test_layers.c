/* BN, activations (ReLU, ReLU6, sigmoid, hard sigmoid, hard swish), multiply, concatenation,
 * pooling (non-square, asymmetric), GAP, add and softmax cross-entropy kernels (and the one
 * argmax, first of equals): central finite differences (non-vacuous), accumulate semantics,
 * running statistics, errors, determinism. */
#include <omp.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "mixq/mixq.h"
#include "nn/kernels.h"
#include "test.h"

/* ---------------------------------------------------------------- batch norm */
typedef struct bnc {
    int N, C, HW, training;
    float *x, *g, *b, *rm, *rv, *sm, *si;
} bnc;

static void bn_fwd(void *ctx, float *y) {
    bnc *B = ctx;
    float rm[16], rv[16]; /* keep the running stats fixed across FD evaluations */
    memcpy(rm, B->rm, sizeof(float) * (size_t)B->C);
    memcpy(rv, B->rv, sizeof(float) * (size_t)B->C);
    mq_bn_forward(B->N, B->C, B->HW, B->x, B->g, B->b, rm, rv, 1e-5f, 0.1f, B->training, B->sm,
                  B->si, y);
}

static void test_bn_gradients(void) {
    static const int sz[][3] = {{2, 1, 3}, {3, 3, 5}, {5, 7, 1}, {1, 2, 9}, {4, 3, 4}};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++)
        for (int training = 0; training < 2; training++) {
            int N = sz[i][0], C = sz[i][1], HW = sz[i][2];
            long n = (long)N * C * HW;
            float x[400], y[400], dy[400], dx[400], g[16], b[16], rm[16], rv[16], sm[16], si[16],
                dg[16], db[16];
            test_fill(x, n, 100 + (unsigned)i, -2, 2); /* seed differs from dy's: dy ∝ x is degenerate */
            test_fill(dy, n, 12, -1, 1);
            test_fill(g, C, 13, 0.5f, 1.5f);
            test_fill(b, C, 14, -0.5f, 0.5f);
            test_fill(rm, C, 15, -0.3f, 0.3f);
            test_fill(rv, C, 16, 0.5f, 2.0f);
            bnc B = {N, C, HW, training, x, g, b, rm, rv, sm, si};
            bn_fwd(&B, y);
            CHECK_OK(mq_bn_backward(N, C, HW, x, g, training ? sm : rm, si, rv, 1e-5f, training, dy,
                                    dx, 0, dg, db));
            /* BN is smooth: step 1e-3 in float, loss in double; tolerance 5e-3 relative */
            double ex = gc_check(x, n, dx, bn_fwd, &B, dy, n, 1e-3f, 200);
            double eg = gc_check(g, C, dg, bn_fwd, &B, dy, n, 1e-3f, 50);
            double eb = gc_check(b, C, db, bn_fwd, &B, dy, n, 1e-3f, 50);
            CHECKF(ex < 5e-3 && eg < 5e-3 && eb < 5e-3, "bn %d %s: dx %.2g dgamma %.2g dbeta %.2g",
                   (int)i, training ? "train" : "eval", ex, eg, eb);
            CHECK(gc_check_zero(x, n, bn_fwd, &B, dy, n, 1e-3f, 50) > 0.5);
            /* accumulate adds onto what is there */
            float dx2[400];
            bn_fwd(&B, y); /* statistics of the unperturbed input */
            for (long k = 0; k < n; k++) dx2[k] = 1.0f;
            CHECK_OK(mq_bn_backward(N, C, HW, x, g, training ? sm : rm, si, rv, 1e-5f, training, dy,
                                    dx2, 1, NULL, NULL));
            double e = 0;
            for (long k = 0; k < n; k++) e = fmax(e, fabs(dx2[k] - 1.0f - dx[k]) / (1 + fabs(dx[k])));
            CHECK(e < 1e-5);
        }
}

static void test_bn_running_stats(void) {
    /* one channel, values 1,2,3,4 (N=2, HW=2): mean 2.5, biased var 1.25, unbiased 5/3 */
    float x[4] = {1, 2, 3, 4}, y[4], g = 1, b = 0, rm = 1, rv = 2, sm, si;
    CHECK_OK(mq_bn_forward(2, 1, 2, x, &g, &b, &rm, &rv, 1e-5f, 0.1f, 1, &sm, &si, y));
    CHECK(fabsf(rm - (0.9f * 1 + 0.1f * 2.5f)) < 1e-6f);
    CHECK(fabsf(rv - (0.9f * 2 + 0.1f * (5.0f / 3.0f))) < 1e-6f);
    CHECK(fabsf(sm - 2.5f) < 1e-6f && fabsf(si - 1.0f / sqrtf(1.25f + 1e-5f)) < 1e-6f);
    CHECK(fabsf(y[0] - (1 - 2.5f) * si) < 1e-6f);
    /* inference uses the running statistics and leaves them alone */
    float rm0 = rm, rv0 = rv;
    CHECK_OK(mq_bn_forward(2, 1, 2, x, &g, &b, &rm, &rv, 1e-5f, 0.1f, 0, &sm, &si, y));
    CHECK(rm == rm0 && rv == rv0);
    CHECK(fabsf(y[3] - (4 - rm) / sqrtf(rv + 1e-5f)) < 1e-5f);
    /* a single value per channel cannot be normalised in training mode */
    CHECK(mq_bn_forward(1, 1, 1, x, &g, &b, &rm, &rv, 1e-5f, 0.1f, 1, &sm, &si, y) == MIXQ_ERR_SHAPE);
}

static void test_bn_determinism(void) {
    int N = 32, C = 8, HW = 49;
    long n = (long)N * C * HW;
    float *x = malloc(4 * n), *dy = malloc(4 * n), *y[2], *dx[2], g[8], b[8], rm[8], rv[8], sm[8],
          si[8], dg[2][8], db[2][8];
    test_fill(x, n, 1, -3, 3);
    test_fill(dy, n, 2, -1, 1);
    test_fill(g, 8, 3, 0.5f, 1.5f);
    test_fill(b, 8, 4, -1, 1);
    for (int t = 0; t < 2; t++) {
        for (int c = 0; c < 8; c++) rm[c] = 0, rv[c] = 1;
        mixq_set_threads(t + 1);
        y[t] = malloc(4 * n);
        dx[t] = malloc(4 * n);
        CHECK_OK(mq_bn_forward(N, C, HW, x, g, b, rm, rv, 1e-5f, 0.1f, 1, sm, si, y[t]));
        CHECK_OK(mq_bn_backward(N, C, HW, x, g, sm, si, rv, 1e-5f, 1, dy, dx[t], 0, dg[t], db[t]));
    }
    mixq_set_threads(2);
    CHECK(!memcmp(y[0], y[1], 4 * n) && !memcmp(dx[0], dx[1], 4 * n) && !memcmp(dg[0], dg[1], 32) &&
          !memcmp(db[0], db[1], 32));
    free(x), free(dy), free(y[0]), free(y[1]), free(dx[0]), free(dx[1]);
}

/* ---------------------------------------------------------------- pointwise */
typedef struct pw {
    long n;
    int kind; /* 0 relu, 1 relu6, 2 add (w.r.t. a) */
    float *x, *b;
} pw;

static void pw_fwd(void *ctx, float *y) {
    pw *P = ctx;
    if (P->kind == 0) mq_relu_forward(P->n, P->x, y);
    else if (P->kind == 1) mq_relu6_forward(P->n, P->x, y);
    else mq_add_forward(P->n, P->x, P->b, y);
}

static void test_pointwise(void) {
    const long n = 77;
    float x[77], b[77], y[77], dy[77], dx[77];
    test_fill(x, n, 5, -8, 8);
    for (long i = 0; i < n; i++) /* keep away from the kinks at 0 and 6 */
        if (fabsf(x[i]) < 0.1f || fabsf(x[i] - 6) < 0.1f) x[i] += 0.3f;
    test_fill(b, n, 6, -1, 1);
    test_fill(dy, n, 7, -1, 1);
    for (int kind = 0; kind < 3; kind++) {
        pw P = {n, kind, x, b};
        pw_fwd(&P, y);
        if (kind == 0) mq_relu_backward(n, y, dy, dx, 0);
        else if (kind == 1) mq_relu6_backward(n, y, dy, dx, 0);
        else mq_grad_pass(n, dy, dx, 0);
        double e = gc_check(x, n, dx, pw_fwd, &P, dy, n, 1e-3f, 100);
        CHECKF(e < 1e-3, "pointwise kind %d: %.2g", kind, e);
        CHECK(gc_check_zero(x, n, pw_fwd, &P, dy, n, 1e-3f, 100) > 0.5);
    }
    /* values */
    float v[5] = {-1, 0.5f, 7, NAN, 6}, o[5];
    mq_relu6_forward(5, v, o);
    CHECK(o[0] == 0 && o[1] == 0.5f && o[2] == 6 && isnan(o[3]) && o[4] == 6);
    mq_relu_forward(5, v, o);
    CHECK(o[0] == 0 && o[2] == 7 && isnan(o[3])); /* NaN propagates, as in PyTorch */
    /* accumulate and in place */
    float acc[3] = {1, 1, 1}, yy[3] = {1, 0, 2}, g[3] = {2, 3, 4};
    mq_relu_backward(3, yy, g, acc, 1);
    CHECK(acc[0] == 3 && acc[1] == 1 && acc[2] == 5);
    mq_relu_backward(3, yy, g, g, 0);
    CHECK(g[0] == 2 && g[1] == 0 && g[2] == 4);
}

/* Sigmoid, hard sigmoid (PyTorch's alpha 1/6, beta 1/2 and ONNX's default 0.2, 0.5), hard
 * swish: central differences away from the kinks, accumulate, values at the kinks as PyTorch. */
typedef struct act2 {
    long n;
    int kind; /* 0 sigmoid, 1 hard sigmoid (alpha, beta), 2 hard swish */
    float alpha, beta, *x;
} act2;

static void act2_fwd(void *ctx, float *y) {
    act2 *A = ctx;
    if (A->kind == 0) mq_sigmoid_forward(A->n, A->x, y);
    else if (A->kind == 1) mq_hsigmoid_forward(A->n, A->alpha, A->beta, A->x, y);
    else mq_hswish_forward(A->n, A->x, y);
}

static void act2_bwd(const act2 *A, const float *y, const float *dy, float *dx, int acc) {
    if (A->kind == 0) mq_sigmoid_backward(A->n, y, dy, dx, acc);
    else if (A->kind == 1) mq_hsigmoid_backward(A->n, A->alpha, y, dy, dx, acc);
    else mq_hswish_backward(A->n, A->x, dy, dx, acc);
}

static void test_activations(void) {
    const long n = 91;
    float x[91], y[91], dy[91], dx[91], dx2[91];
    test_fill(x, n, 15, -8, 8);
    for (long i = 0; i < n; i++) /* keep away from the kinks at +-2.5 and +-3 */
        if (fabsf(fabsf(x[i]) - 3) < 0.1f || fabsf(fabsf(x[i]) - 2.5f) < 0.1f) x[i] += 0.25f;
    test_fill(dy, n, 16, -1, 1);
    static const float ab[4][2] = {{0, 0}, {1.0f / 6, 0.5f}, {0.2f, 0.5f}, {0, 0}};
    for (int v = 0; v < 4; v++) {
        act2 A = {n, v == 0 ? 0 : v == 3 ? 2 : 1, ab[v][0], ab[v][1], x};
        act2_fwd(&A, y);
        act2_bwd(&A, y, dy, dx, 0);
        double e = gc_check(x, n, dx, act2_fwd, &A, dy, n, 1e-3f, 100);
        CHECKF(e < 1e-3, "activation %d: %.2g", v, e);
        CHECK(gc_check_zero(x, n, act2_fwd, &A, dy, n, 1e-3f, 100) > 0.5);
        for (long i = 0; i < n; i++) dx2[i] = 0.5f;
        act2_bwd(&A, y, dy, dx2, 1);
        double ea = 0;
        for (long i = 0; i < n; i++) ea = fmax(ea, fabs(dx2[i] - 0.5f - dx[i]));
        CHECK(ea < 1e-6);
    }
    /* values: PyTorch's hardswish(x) = x * relu6(x + 3) / 6, hardsigmoid = relu6(x + 3) / 6 */
    float v[6] = {-4, -3, -1.5f, 0, 3, 4.5f}, o[6], one[6] = {1, 1, 1, 1, 1, 1}, d[6];
    mq_hswish_forward(6, v, o);
    CHECK(o[0] == 0 && o[1] == 0 && o[2] == -0.375f && o[3] == 0 && o[4] == 3 && o[5] == 4.5f);
    mq_hswish_backward(6, v, one, d, 0); /* PyTorch: x < -3: 0; x <= 3: x/3 + 1/2; else 1 */
    CHECK(d[0] == 0 && d[1] == -0.5f && d[2] == 0 && d[3] == 0.5f && d[4] == 1.5f && d[5] == 1);
    mq_hsigmoid_forward(6, 1.0f / 6, 0.5f, v, o);
    CHECK(o[0] == 0 && o[1] == 0 && o[3] == 0.5f && o[4] == 1 && o[5] == 1);
    mq_hsigmoid_backward(6, 1.0f / 6, o, one, d, 0); /* zero at the clamps, as PyTorch */
    CHECK(d[0] == 0 && d[1] == 0 && d[3] == 1.0f / 6 && d[4] == 0);
    mq_sigmoid_forward(6, v, o);
    CHECK(o[3] == 0.5f && fabsf(o[5] - 1 / (1 + expf(-4.5f))) < 1e-7f);
}

/* Multiply (same shape and one factor per channel) and channel concatenation: gradients with
 * respect to both inputs, accumulate, a * a, concat(a, a). */
typedef struct two {
    int kind; /* 0 mul same shape, 1 mul per channel, 2 concat */
    int N, C, Cb, HW;
    float *a, *b;
} two;

static void two_fwd(void *ctx, float *y) {
    two *T = ctx;
    if (T->kind == 2) mq_concat_forward(T->N, T->C, T->Cb, T->HW, T->a, T->b, y);
    else mq_mul_forward((int64_t)T->N * T->C, T->HW, T->kind == 0 ? T->HW : 1, T->a, T->b, y);
}

static void test_mul_concat(void) {
    const int N = 3, C = 4, Cb = 5, HW = 6;
    float a[3 * 4 * 6], b[3 * 5 * 6], dy[3 * 9 * 6], da[3 * 4 * 6], db[3 * 5 * 6], da2[3 * 4 * 6];
    for (int kind = 0; kind < 3; kind++) {
        two T = {kind, N, C, Cb, HW, a, b};
        const long na = (long)N * C * HW, nb = kind == 0 ? na : kind == 1 ? (long)N * C : (long)N * Cb * HW;
        const long ny = kind == 2 ? (long)N * (C + Cb) * HW : na;
        test_fill(a, na, 21, -2, 2);
        test_fill(b, nb, 22, -2, 2);
        test_fill(dy, ny, 23, -1, 1);
        if (kind == 2) mq_concat_backward(N, C, Cb, HW, dy, da, 0, db, 0);
        else mq_mul_backward((int64_t)N * C, HW, kind == 0 ? HW : 1, a, b, dy, da, 0, db, 0);
        double ea = gc_check(a, na, da, two_fwd, &T, dy, ny, 1e-2f, 100);
        double eb = gc_check(b, nb, db, two_fwd, &T, dy, ny, 1e-2f, 100);
        CHECKF(ea < 2e-3 && eb < 2e-3, "%s: da %.2g db %.2g", kind == 2 ? "concat" : "mul", ea, eb);
        CHECK(gc_check_zero(b, nb, two_fwd, &T, dy, ny, 1e-2f, 50) > 0.5);
        /* accumulate into da, db skipped */
        for (long i = 0; i < na; i++) da2[i] = 0.25f;
        if (kind == 2) mq_concat_backward(N, C, Cb, HW, dy, da2, 1, NULL, 0);
        else mq_mul_backward((int64_t)N * C, HW, kind == 0 ? HW : 1, a, b, dy, da2, 1, NULL, 0);
        double e = 0;
        for (long i = 0; i < na; i++) e = fmax(e, fabs(da2[i] - 0.25f - da[i]));
        CHECK(e < 1e-6);
    }
    /* a * a and concat(a, a): both gradients land in one buffer (2 a dy; dy's two halves) */
    test_fill(a, (long)N * C * HW, 24, -2, 2);
    test_fill(dy, (long)N * 2 * C * HW, 25, -1, 1);
    mq_mul_backward((int64_t)N * C, HW, HW, a, a, dy, da, 0, da, 1);
    double e = 0;
    for (long i = 0; i < (long)N * C * HW; i++) e = fmax(e, fabs(da[i] - 2 * a[i] * dy[i]));
    CHECK(e < 1e-6);
    mq_concat_backward(N, C, C, HW, dy, da, 0, da, 1);
    e = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C * HW; i++)
            e = fmax(e, fabs(da[n * C * HW + i] - dy[n * 2 * C * HW + i] - dy[n * 2 * C * HW + C * HW + i]));
    CHECK(e < 1e-6);
}

/* ---------------------------------------------------------------- pooling */
typedef struct pl {
    int N, C, H, W;
    mq_geom g;
    int P, Q, kind; /* 0 max, 1 avg, 2 gap */
    float *x;
    int32_t *arg;
} pl;

static void pl_fwd(void *ctx, float *y) {
    pl *p = ctx;
    if (p->kind == 0) mq_maxpool_forward(p->N, p->C, p->H, p->W, &p->g, p->P, p->Q, p->x, y, p->arg);
    else if (p->kind == 1) mq_avgpool_forward(p->N, p->C, p->H, p->W, &p->g, p->P, p->Q, p->x, y);
    else mq_gap_forward(p->N, p->C, p->H * p->W, p->x, y);
}

static void test_pooling(void) {
    static const int cfg[][12] = {/* N C H W, kh kw sh sw pt pl pb pr */
                                  {1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0}, {3, 3, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1},
                                  {2, 5, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1}, {5, 1, 9, 7, 2, 2, 3, 3, 0, 0, 0, 0},
                                  {1, 7, 6, 6, 3, 3, 3, 3, 1, 1, 1, 1},
                                  /* non-square windows, per-axis strides, asymmetric pads */
                                  {2, 3, 7, 8, 2, 3, 2, 1, 0, 1, 1, 0}, {1, 2, 9, 6, 3, 1, 1, 2, 1, 0, 0, 0},
                                  {2, 2, 7, 7, 3, 3, 2, 2, 0, 0, 1, 1}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
        for (int kind = 0; kind < 3; kind++) {
            const int *c = cfg[i];
            pl p = {c[0], c[1], c[2], c[3], {c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]}, 0, 0, kind, NULL, NULL};
            p.P = kind == 2 ? 1 : (p.H + p.g.pt + p.g.pb - p.g.kh) / p.g.sh + 1;
            p.Q = kind == 2 ? 1 : (p.W + p.g.pl + p.g.pr - p.g.kw) / p.g.sw + 1;
            long nx = (long)p.N * p.C * p.H * p.W, ny = (long)p.N * p.C * p.P * p.Q;
            p.x = malloc(4 * nx);
            p.arg = malloc(4 * ny);
            float *y = malloc(4 * ny), *dy = malloc(4 * ny), *dx = malloc(4 * nx), *dx2 = malloc(4 * nx);
            /* distinct values (no ties for max pooling): a shuffled ramp */
            for (long k = 0; k < nx; k++) p.x[k] = (float)((k * 7919) % nx) / (float)nx * 2.0f - 1.0f;
            test_fill(dy, ny, 3, -1, 1);
            pl_fwd(&p, y);
            if (kind == 0) mq_maxpool_backward(p.N, p.C, p.H, p.W, p.P, p.Q, p.arg, dy, dx, 0);
            else if (kind == 1) mq_avgpool_backward(p.N, p.C, p.H, p.W, &p.g, p.P, p.Q, dy, dx, 0);
            else mq_gap_backward(p.N, p.C, p.H * p.W, dy, dx, 0);
            double e = gc_check(p.x, nx, dx, pl_fwd, &p, dy, ny, 1e-3f, 200);
            CHECKF(e < 2e-3, "pool %d kind %d: %.2g", (int)i, kind, e);
            CHECK(gc_check_zero(p.x, nx, pl_fwd, &p, dy, ny, 1e-3f, 200) > 0.5);
            /* accumulate */
            for (long k = 0; k < nx; k++) dx2[k] = 0.5f;
            if (kind == 0) mq_maxpool_backward(p.N, p.C, p.H, p.W, p.P, p.Q, p.arg, dy, dx2, 1);
            else if (kind == 1) mq_avgpool_backward(p.N, p.C, p.H, p.W, &p.g, p.P, p.Q, dy, dx2, 1);
            else mq_gap_backward(p.N, p.C, p.H * p.W, dy, dx2, 1);
            double ea = 0;
            for (long k = 0; k < nx; k++) ea = fmax(ea, fabs(dx2[k] - 0.5f - dx[k]));
            CHECK(ea < 1e-6);
            free(p.x), free(p.arg), free(y), free(dy), free(dx), free(dx2);
        }
    /* avg pool counts padding (count_include_pad): a corner of ones with pad 1, k 3 -> 4/9 */
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, out[9];
    const mq_geom g3 = mq_geom_square(3, 1, 1), g2 = mq_geom_square(2, 2, 0);
    mq_avgpool_forward(1, 1, 3, 3, &g3, 3, 3, ones, out);
    CHECK(fabsf(out[0] - 4.0f / 9) < 1e-6f && fabsf(out[4] - 1.0f) < 1e-6f);
    /* asymmetric: 2x2 stride 2 with pads 0,0,1,1 on 3x3 (ZeroPad2d((0,1,0,1)) folded): the last
     * row and column windows hold one or two image values and count 4 */
    const mq_geom ga = {2, 2, 2, 2, 0, 0, 1, 1};
    mq_avgpool_forward(1, 1, 3, 3, &ga, 2, 2, ones, out);
    CHECK(out[0] == 1.0f && out[1] == 0.5f && out[2] == 0.5f && out[3] == 0.25f);
    /* max pool: padding never wins, first maximum wins */
    float neg[4] = {-5, -3, -3, -9}, mo[1];
    int32_t am[1];
    mq_maxpool_forward(1, 1, 2, 2, &g2, 1, 1, neg, mo, am);
    CHECK(mo[0] == -3 && am[0] == 1);
}

/* The runtime's max pool (no argmax) gives exactly the training pool's values: k 2 s 2 (fast
 * path, odd sizes), k 3 s 2 p 1, k 3 s 1 p 2 (windows reaching past the image), with NaN, -inf,
 * and ties between -0 and +0 in the input. */
static void test_maxpool_infer(void) {
    static const int cfg[][7] = {{2, 3, 7, 5, 2, 2, 0}, {1, 4, 6, 6, 2, 2, 0}, {2, 2, 7, 6, 3, 2, 1},
                                 {1, 3, 4, 5, 3, 1, 2}, {1, 1, 1, 1, 2, 2, 1}, {2, 2, 7, 8, -1, 0, 0}};
    for (int ci = 0; ci < 6; ci++) {
        const int N = cfg[ci][0], C = cfg[ci][1], H = cfg[ci][2], W = cfg[ci][3], k = cfg[ci][4],
                  st = cfg[ci][5], pad = cfg[ci][6];
        /* k -1: a 3x2 window, strides 2x1, pads 1,0,1,1 */
        const mq_geom g = k > 0 ? mq_geom_square(k, st, pad) : (mq_geom){3, 2, 2, 1, 1, 0, 1, 1};
        const int P = (H + g.pt + g.pb - g.kh) / g.sh + 1, Q = (W + g.pl + g.pr - g.kw) / g.sw + 1;
        const int nx = N * C * H * W, ny = N * C * P * Q;
        float *x = malloc(sizeof(float) * nx), *y1 = malloc(sizeof(float) * ny),
              *y2 = malloc(sizeof(float) * ny);
        int32_t *arg = malloc(sizeof(int32_t) * ny);
        if (!x || !y1 || !y2 || !arg) {
            CHECK(!"out of memory");
            free(x), free(y1), free(y2), free(arg);
            return;
        }
        test_fill(x, nx, 40 + ci, -2, 2);
        x[0] = NAN;
        if (nx > 9) x[9] = -INFINITY, x[8] = -0.0f, x[7] = 0.0f;
        mq_maxpool_forward(N, C, H, W, &g, P, Q, x, y1, arg);
        mq_maxpool_infer(N, C, H, W, &g, P, Q, x, y2);
        int bad = 0;
        for (int i = 0; i < ny; i++)
            bad += !(y1[i] == y2[i] || (isnan(y1[i]) && isnan(y2[i])));
        CHECKF(bad == 0, "maxpool config %d: %d of %d values differ", ci, bad, ny);
        CHECK(isnan(y2[0]));
        free(x), free(y1), free(y2), free(arg);
    }
}

/* The training max pool's 2x2 stride-2 path gives exactly its reference twin's values and
 * argmax: odd and even sizes, a single window, and inputs with NaN in every window position,
 * ties (the first wins), -0 against +0 and -inf; a padded 2x2 pool takes the reference. */
static void test_maxpool_fast_vs_ref(void) {
    static const int cfg[][5] = {{2, 3, 7, 5, 0}, {1, 4, 8, 6, 0}, {3, 2, 2, 2, 0}, {1, 2, 9, 9, 0},
                                 {2, 3, 7, 5, 1}};
    for (int ci = 0; ci < 5; ci++) {
        const int N = cfg[ci][0], C = cfg[ci][1], H = cfg[ci][2], W = cfg[ci][3];
        /* the last: pads bottom and right 1 (ZeroPad2d((0,1,0,1)) folded), windows past the edge */
        const mq_geom g = {2, 2, 2, 2, 0, 0, cfg[ci][4], cfg[ci][4]};
        const int P = (H + g.pb - 2) / 2 + 1, Q = (W + g.pr - 2) / 2 + 1;
        const int nx = N * C * H * W, ny = N * C * P * Q;
        float *x = malloc(sizeof(float) * nx), *y1 = malloc(sizeof(float) * ny),
              *y2 = malloc(sizeof(float) * ny);
        int32_t *a1 = malloc(sizeof(int32_t) * ny), *a2 = malloc(sizeof(int32_t) * ny);
        if (!x || !y1 || !y2 || !a1 || !a2) {
            CHECK(!"out of memory");
            free(x), free(y1), free(y2), free(a1), free(a2);
            return;
        }
        test_fill(x, nx, 70 + ci, -2, 2);
        /* rounded to quarters: many ties; then NaN, -inf and signed zeros at every tap */
        for (int i = 0; i < nx; i++) x[i] = roundf(x[i] * 4) / 4;
        for (int i = 0; i < nx; i += 7) x[i] = NAN;
        for (int i = 3; i < nx; i += 11) x[i] = -INFINITY;
        for (int i = 5; i < nx; i += 13) x[i] = (i / 13) % 2 ? -0.0f : 0.0f;
        mq_maxpool_forward(N, C, H, W, &g, P, Q, x, y1, a1);
        mq_maxpool_forward_ref(N, C, H, W, &g, P, Q, x, y2, a2);
        int bad = 0, nans = 0;
        for (int i = 0; i < ny; i++) {
            bad += a1[i] != a2[i] || !(memcmp(&y1[i], &y2[i], sizeof(float)) == 0 ||
                                      (isnan(y1[i]) && isnan(y2[i])));
            nans += isnan(y1[i]);
        }
        CHECKF(bad == 0, "maxpool config %d: %d of %d outputs differ from the reference", ci, bad, ny);
        CHECKF(nans > 0 && nans < ny, "maxpool config %d: %d of %d NaN outputs", ci, nans, ny);
        free(x), free(y1), free(y2), free(a1), free(a2);
    }
}

/* ---------------------------------------------------------------- cross-entropy */
typedef struct cec {
    int N, K;
    float *z, eps;
    int *lab;
} cec;

static void ce_fwd(void *ctx, float *y) {
    cec *c = ctx;
    mq_softmax_ce_forward(c->N, c->K, c->z, c->lab, c->eps, NULL, y, NULL);
}

static void test_cross_entropy(void) {
    int N = 5, K = 7, lab[5] = {0, 6, 3, 3, 1};
    float z[35], p[35], dz[35], one = 1.0f, loss;
    test_fill(z, 35, 9, -3, 3);
    for (int s = 0; s < 2; s++) {
        cec c = {N, K, z, s ? 0.1f : 0.0f, lab};
        CHECK_OK(mq_softmax_ce_forward(N, K, z, lab, c.eps, p, &loss, NULL));
        mq_softmax_ce_backward(N, K, p, lab, c.eps, dz);
        double e = gc_check(z, 35, dz, ce_fwd, &c, &one, 1, 1e-3f, 35);
        CHECKF(e < 2e-3, "cross-entropy eps %.1f: %.2g", (double)c.eps, e);
        CHECK(gc_check_zero(z, 35, ce_fwd, &c, &one, 1, 1e-3f, 35) > 0.5);
    }
    /* value: uniform logits give log K whatever the smoothing */
    float u[3] = {0, 0, 0};
    int l1[1] = {2}, correct;
    CHECK_OK(mq_softmax_ce_forward(1, 3, u, l1, 0.2f, NULL, &loss, &correct));
    CHECK(fabsf(loss - logf(3)) < 1e-6f);
    /* a tie counts for the first of the equal logits (mq_argmax, as every prediction) */
    CHECK(correct == 0);
    int l00[1] = {0};
    CHECK_OK(mq_softmax_ce_forward(1, 3, u, l00, 0, NULL, &loss, &correct));
    CHECK(correct == 1);
    const float tie[5] = {-1, 3, 2, 3, 3};
    CHECK(mq_argmax(tie, 5) == 1 && mq_argmax(tie, 1) == 0 && mq_argmax(tie + 2, 3) == 1);
    /* huge logits stay finite (log-sum-exp) */
    float big[2] = {1000, -1000};
    int l0[1] = {0};
    CHECK_OK(mq_softmax_ce_forward(1, 2, big, l0, 0, NULL, &loss, &correct));
    CHECK(loss < 1e-6f && correct == 1);
    int bad[1] = {3};
    CHECK(mq_softmax_ce_forward(1, 3, u, bad, 0, NULL, &loss, NULL) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "label 3") != NULL);
    float nanz[3] = {0, NAN, 1};
    CHECK(mq_softmax_ce_forward(1, 3, nanz, l1, 0, NULL, &loss, NULL) == MIXQ_ERR_NUMERIC);
}

/* ---------------------------------------------------------------- distillation */
typedef struct kdc {
    int N, K;
    const float *z, *t;
    float T;
} kdc;

static void kd_fwd(void *ctx, float *y) {
    kdc *c = ctx;
    mq_distill(c->N, c->K, c->z, c->t, c->T, 0, y, NULL);
}

static void test_distillation(void) {
    int N = 4, K = 6;
    float z[24], t[24], dz[24], one = 1.0f, loss;
    test_fill(z, 24, 3, -3, 3);
    test_fill(t, 24, 4, -4, 4);
    const float temps[3] = {1.0f, 0.5f, 4.0f};
    for (int s = 0; s < 3; s++) {
        kdc c = {N, K, z, t, temps[s]};
        for (int i = 0; i < 24; i++) dz[i] = 0;
        CHECK_OK(mq_distill(N, K, z, t, c.T, 1.0f, &loss, dz));
        CHECK(loss > 0);
        double e = gc_check(z, 24, dz, kd_fwd, &c, &one, 1, 1e-3f, 24);
        CHECKF(e < 2e-3, "distillation T %g: %.2g", (double)c.T, e);
        CHECK(gc_check_zero(z, 24, kd_fwd, &c, &one, 1, 1e-3f, 24) > 0.5);
        /* the weight scales what is added, not the loss */
        float dz2[24], l2;
        for (int i = 0; i < 24; i++) dz2[i] = 1.0f;
        CHECK_OK(mq_distill(N, K, z, t, c.T, 0.25f, &l2, dz2));
        CHECK(l2 == loss);
        for (int i = 0; i < 24; i++) CHECK(fabsf(dz2[i] - (1.0f + 0.25f * dz[i])) < 1e-6f);
    }
    /* the student equal to the teacher: no loss, no gradient; a shift of the logits neither */
    float zs[24];
    for (int i = 0; i < 24; i++) zs[i] = t[i] + (float)(i / K);
    for (int i = 0; i < 24; i++) dz[i] = 0;
    CHECK_OK(mq_distill(N, K, zs, t, 2.0f, 1.0f, &loss, dz));
    CHECK(fabsf(loss) < 1e-6f);
    for (int i = 0; i < 24; i++) CHECK(fabsf(dz[i]) < 1e-7f);
    /* huge logits stay finite; NaN and a bad temperature are errors */
    float big[2] = {1000, -1000}, tb[2] = {-1000, 1000};
    CHECK_OK(mq_distill(1, 2, big, tb, 1.0f, 1.0f, &loss, NULL));
    CHECK(isfinite(loss) && fabsf(loss - 2000.0f) < 1e-2f);
    float nanz[3] = {0, NAN, 1}, u[3] = {0, 0, 0};
    CHECK(mq_distill(1, 3, nanz, u, 1.0f, 1.0f, &loss, NULL) == MIXQ_ERR_NUMERIC);
    CHECK(mq_distill(1, 3, u, nanz, 1.0f, 1.0f, &loss, NULL) == MIXQ_ERR_NUMERIC);
    CHECK(mq_distill(1, 3, u, u, 0.0f, 1.0f, &loss, NULL) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "temperature") != NULL);
}

int main(void) {
    TEST_RUN(test_bn_gradients);
    TEST_RUN(test_bn_running_stats);
    TEST_RUN(test_bn_determinism);
    TEST_RUN(test_pointwise);
    TEST_RUN(test_activations);
    TEST_RUN(test_mul_concat);
    TEST_RUN(test_pooling);
    TEST_RUN(test_maxpool_infer);
    TEST_RUN(test_maxpool_fast_vs_ref);
    TEST_RUN(test_cross_entropy);
    TEST_RUN(test_distillation);
    return test_summary();
}
