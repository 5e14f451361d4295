/* Convolution and linear kernels: fast vs reference on awkward sizes, central finite
 * differences, accumulate semantics, thread-count determinism, bad shapes. */
#include <omp.h>

#include "gradcheck.h"
#include "mixq/mixq.h"
#include "nn/kernels.h"
#include "test.h"

typedef struct conv_case {
    int N, C, H, W, K, R, stride, pad, groups, bias;
    int asym, S, sw, pl, pb, pr; /* asym: kernel R x S, strides (stride, sw), pads (pad, pl, pb, pr);
                                    else R x R, one stride, pad on every side */
} conv_case;

/* a square case: R x R, one stride, the same pad on every side */
#define SQ(...) {__VA_ARGS__, 0, 0, 0, 0, 0, 0}
static const conv_case cases[] = {
    SQ(3, 3, 9, 11, 5, 3, 1, 1, 1, 1),   SQ(5, 4, 10, 9, 6, 3, 2, 1, 2, 0),
    SQ(2, 6, 7, 7, 6, 3, 1, 1, 6, 1),    SQ(3, 6, 9, 8, 12, 3, 2, 1, 6, 0),  /* depthwise, x2 mult */
    SQ(1, 5, 7, 5, 7, 1, 1, 0, 1, 1),    SQ(3, 8, 7, 7, 16, 1, 2, 0, 1, 0),  /* 1x1, strided 1x1 */
    SQ(2, 1, 13, 13, 6, 5, 1, 2, 1, 1),  SQ(2, 5, 11, 13, 7, 5, 3, 2, 1, 1),
    SQ(70, 4, 5, 5, 3, 3, 1, 1, 1, 1),   /* many small images: several chunks */
    SQ(100, 40, 6, 6, 3, 3, 1, 1, 1, 1), /* oneDNN: dw over 2 chunks (57 + 43), dx over 3 (45 + 45 + 10) */
    SQ(3, 5, 5, 5, 128, 3, 1, 1, 1, 1),  /* oneDNN: one dw chunk in 4 slices of 32 channels */
    SQ(2, 7, 7, 6, 96, 3, 2, 1, 1, 0),   /* oneDNN: 2 slices of 48, strided, no bias */
    SQ(3, 7, 6, 6, 3, 3, 3, 0, 1, 0),    SQ(1, 3, 4, 4, 1, 4, 1, 0, 1, 1),   /* K = 1, kernel = image */
    SQ(4, 9, 8, 8, 6, 3, 1, 2, 3, 1),    /* groups 3, pad 2 */
    /* non-square kernels, per-axis strides, asymmetric pads (top, left, bottom, right) */
    {2, 3, 9, 10, 4, 1, 1, 0, 1, 1, 1, 3, 1, 1, 0, 1},  /* 1x3, pads 0,1,0,1 */
    {3, 4, 11, 8, 6, 3, 2, 0, 1, 0, 1, 1, 1, 0, 1, 0},  /* 3x1, strides 2x1, pad bottom 1 */
    {2, 6, 8, 9, 6, 3, 2, 1, 6, 1, 1, 3, 1, 0, 2, 1},   /* depthwise 3x3, strides 2x1, pads 1,0,2,1 */
    {2, 4, 7, 7, 5, 2, 2, 0, 1, 1, 1, 3, 3, 1, 1, 2},   /* 2x3, strides 2x3, pads 0,1,1,2 */
    {3, 5, 6, 9, 5, 1, 1, 0, 5, 0, 1, 5, 2, 2, 0, 2},   /* depthwise 1x5, stride 1x2, pads 0,2,0,2 */
    {2, 1, 28, 28, 2, 3, 2, 0, 1, 1, 1, 3, 2, 0, 1, 1}, /* ZeroPad2d((0,1,0,1)) + 3x3/2 folded */
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static mq_conv_shape shape_of(const conv_case *c) {
    const mq_geom g = c->asym ? (mq_geom){c->R, c->S, c->stride, c->sw, c->pad, c->pl, c->pb, c->pr}
                              : mq_geom_square(c->R, c->stride, c->pad);
    mq_conv_shape s = mq_conv_shape_of(c->N, c->C, c->H, c->W, c->K, &g, c->groups);
    mq_conv_shape_init(&s);
    return s;
}

typedef struct bufs {
    mq_conv_shape s;
    long nx, nw, ny;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *y2, *dx2, *dw2, *db2;
    int fast;
    mq_ws ws;
} bufs;

static void bufs_init(bufs *B, const conv_case *c) {
    memset(B, 0, sizeof *B);
    B->s = shape_of(c);
    B->nx = (long)c->N * c->C * c->H * c->W;
    B->nw = (long)c->K * (c->C / c->groups) * B->s.R * B->s.S;
    B->ny = (long)c->N * c->K * B->s.P * B->s.Q;
    B->x = malloc(4 * B->nx);
    B->dx = malloc(4 * B->nx);
    B->dx2 = malloc(4 * B->nx);
    B->w = malloc(4 * B->nw);
    B->dw = malloc(4 * B->nw);
    B->dw2 = malloc(4 * B->nw);
    B->b = c->bias ? malloc(4 * c->K) : NULL;
    B->db = malloc(4 * c->K);
    B->db2 = malloc(4 * c->K);
    B->y = malloc(4 * B->ny);
    B->y2 = malloc(4 * B->ny);
    B->dy = malloc(4 * B->ny);
    test_fill(B->x, B->nx, 1, -1, 1);
    test_fill(B->w, B->nw, 2, -1, 1);
    if (B->b) test_fill(B->b, c->K, 3, -1, 1);
    test_fill(B->dy, B->ny, 4, -1, 1);
}

static void bufs_free(bufs *B) {
    float *p[] = {B->x, B->dx, B->dx2, B->w, B->dw, B->dw2, B->b, B->db, B->db2, B->y, B->y2, B->dy};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    mq_ws_free(&B->ws);
}

static void conv_fwd(void *ctx, float *y) {
    bufs *B = ctx;
    if (B->fast) mq_conv2d_forward(&B->s, B->x, B->w, B->b, y, &B->ws);
    else mq_conv2d_forward_ref(&B->s, B->x, B->w, B->b, y);
}

/* Fast kernels agree with the reference twins (forward, dx with and without accumulate, dw, db). */
static void test_conv_fast_vs_ref(void) {
    for (int i = 0; i < NCASES; i++) {
        bufs B;
        bufs_init(&B, &cases[i]);
        CHECK_OK(mq_conv2d_forward(&B.s, B.x, B.w, B.b, B.y, &B.ws));
        mq_conv2d_forward_ref(&B.s, B.x, B.w, B.b, B.y2);
        double ey = test_max_rel_err(B.y, B.y2, B.ny);
        for (int acc = 0; acc < 2; acc++) {
            test_fill(B.dx, B.nx, 9, -1, 1);
            memcpy(B.dx2, B.dx, 4 * B.nx);
            CHECK_OK(mq_conv2d_backward(&B.s, B.x, B.w, B.dy, B.dx, acc, B.dw, B.db, &B.ws));
            mq_conv2d_backward_ref(&B.s, B.x, B.w, B.dy, B.dx2, acc, B.dw2, B.db2);
            double ex = test_max_rel_err(B.dx, B.dx2, B.nx), ew = test_max_rel_err(B.dw, B.dw2, B.nw),
                   eb = test_max_rel_err(B.db, B.db2, cases[i].K);
            /* float accumulation against the double reference: ~1e-6 relative */
            CHECKF(ey < 1e-5 && ex < 1e-5 && ew < 1e-5 && eb < 1e-5,
                   "case %d acc %d: y %.2g dx %.2g dw %.2g db %.2g", i, acc, ey, ex, ew, eb);
        }
        /* NULL gradients are skipped without touching anything */
        CHECK_OK(mq_conv2d_backward(&B.s, B.x, B.w, B.dy, NULL, 0, NULL, B.db, &B.ws));
        bufs_free(&B);
    }
}

/* Central differences of L = sum(y * dy) w.r.t. x, w and b, for the reference and the fast
 * kernels. Step 1e-2 on values in [-1, 1]; conv is linear in each argument so the difference is
 * exact up to float rounding of the loss: tolerance 2e-3 relative. */
static void test_conv_finite_differences(void) {
    for (int i = 0; i < NCASES; i++) {
        for (int fast = 0; fast < 2; fast++) {
            bufs B;
            bufs_init(&B, &cases[i]);
            B.fast = fast;
            if (fast) CHECK_OK(mq_conv2d_backward(&B.s, B.x, B.w, B.dy, B.dx, 0, B.dw, B.db, &B.ws));
            else mq_conv2d_backward_ref(&B.s, B.x, B.w, B.dy, B.dx, 0, B.dw, B.db);
            double ex = gc_check(B.x, B.nx, B.dx, conv_fwd, &B, B.dy, B.ny, 1e-2f, 150);
            double ew = gc_check(B.w, B.nw, B.dw, conv_fwd, &B, B.dy, B.ny, 1e-2f, 150);
            double eb = B.b ? gc_check(B.b, cases[i].K, B.db, conv_fwd, &B, B.dy, B.ny, 1e-2f, 50) : 0;
            CHECKF(ex < 2e-3 && ew < 2e-3 && eb < 2e-3, "case %d %s: dx %.2g dw %.2g db %.2g", i,
                   fast ? "fast" : "ref", ex, ew, eb);
            /* the same check rejects an all-zero gradient */
            CHECK(gc_check_zero(B.w, B.nw, conv_fwd, &B, B.dy, B.ny, 1e-2f, 50) > 0.5);
            bufs_free(&B);
        }
    }
}

static void test_conv_thread_determinism(void) {
    for (int i = 0; i < NCASES; i++) {
        bufs B[2];
        for (int t = 0; t < 2; t++) {
            bufs_init(&B[t], &cases[i]);
            mixq_set_threads(t + 1);
            CHECK_OK(mq_conv2d_forward(&B[t].s, B[t].x, B[t].w, B[t].b, B[t].y, &B[t].ws));
            CHECK_OK(mq_conv2d_backward(&B[t].s, B[t].x, B[t].w, B[t].dy, B[t].dx, 0, B[t].dw,
                                        B[t].db, &B[t].ws));
        }
        CHECKF(!memcmp(B[0].y, B[1].y, 4 * B[0].ny) && !memcmp(B[0].dx, B[1].dx, 4 * B[0].nx) &&
                   !memcmp(B[0].dw, B[1].dw, 4 * B[0].nw) && !memcmp(B[0].db, B[1].db, 4 * cases[i].K),
               "case %d differs between 1 and 2 threads", i);
        bufs_free(&B[0]);
        bufs_free(&B[1]);
    }
    mixq_set_threads(2);
}

static void test_conv_bad_shapes(void) {
    const mq_geom g = mq_geom_square(3, 1, 1);
    mq_conv_shape s = mq_conv_shape_of(1, 3, 8, 8, 4, &g, 2);
    CHECK(mq_conv_shape_init(&s) == MIXQ_ERR_SHAPE);
    CHECK(strstr(mixq_last_error(), "divisible") != NULL);
    s.groups = 1;
    s.R = s.S = 11;
    CHECK(mq_conv_shape_init(&s) == MIXQ_ERR_SHAPE);
    s.R = s.S = 3;
    s.sw = 0;
    CHECK(mq_conv_shape_init(&s) == MIXQ_ERR_SHAPE);
    s.sw = 1;
    s.pb = -1;
    CHECK(mq_conv_shape_init(&s) == MIXQ_ERR_SHAPE);
    s.pb = 1;
    s.H = 0;
    CHECK(mq_conv_shape_init(&s) == MIXQ_ERR_SHAPE);
    s.H = 8;
    CHECK_OK(mq_conv_shape_init(&s));
    CHECK(s.P == 8 && s.Q == 8);
    /* asymmetric: rows (8 + 0 + 2 - 3) / 2 + 1 = 4, columns (8 + 1 + 0 - 1) / 1 + 1 = 9 */
    s.R = 3, s.S = 1, s.sh = 2, s.pt = 0, s.pl = 1, s.pb = 2, s.pr = 0;
    CHECK_OK(mq_conv_shape_init(&s));
    CHECK(s.P == 4 && s.Q == 9);
}

/* ---------------------------------------------------------------- linear */
typedef struct lin {
    int N, IN, OUT, fast;
    float *x, *w, *b;
} lin;

static void lin_fwd(void *ctx, float *y) {
    lin *L = ctx;
    if (L->fast) mq_linear_forward(L->N, L->IN, L->OUT, L->x, L->w, L->b, y);
    else mq_linear_forward_ref(L->N, L->IN, L->OUT, L->x, L->w, L->b, y);
}

static void test_linear(void) {
    static const int sz[][3] = {{1, 1, 1}, {3, 7, 5}, {17, 33, 10}, {130, 400, 120}, {5, 64, 37}};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        int N = sz[i][0], IN = sz[i][1], OUT = sz[i][2];
        float *x = malloc(4 * (size_t)N * IN), *w = malloc(4 * (size_t)OUT * IN), *b = malloc(4 * (size_t)OUT);
        float *y = malloc(4 * (size_t)N * OUT), *y2 = malloc(4 * (size_t)N * OUT), *dy = malloc(4 * (size_t)N * OUT);
        float *dx = malloc(4 * (size_t)N * IN), *dx2 = malloc(4 * (size_t)N * IN);
        float *dw = malloc(4 * (size_t)OUT * IN), *dw2 = malloc(4 * (size_t)OUT * IN);
        float *db = malloc(4 * (size_t)OUT), *db2 = malloc(4 * (size_t)OUT);
        test_fill(x, (long)N * IN, 1, -1, 1);
        test_fill(w, (long)OUT * IN, 2, -1, 1);
        test_fill(b, OUT, 3, -1, 1);
        test_fill(dy, (long)N * OUT, 4, -1, 1);
        CHECK_OK(mq_linear_forward(N, IN, OUT, x, w, b, y));
        mq_linear_forward_ref(N, IN, OUT, x, w, b, y2);
        CHECKF(test_max_rel_err(y, y2, (long)N * OUT) < 1e-5, "linear %d: forward", (int)i);
        for (int acc = 0; acc < 2; acc++) {
            test_fill(dx, (long)N * IN, 7, -1, 1);
            memcpy(dx2, dx, 4 * (size_t)N * IN);
            CHECK_OK(mq_linear_backward(N, IN, OUT, x, w, dy, dx, acc, dw, db));
            mq_linear_backward_ref(N, IN, OUT, x, w, dy, dx2, acc, dw2, db2);
            CHECKF(test_max_rel_err(dx, dx2, (long)N * IN) < 1e-5 &&
                       test_max_rel_err(dw, dw2, (long)OUT * IN) < 1e-5 &&
                       test_max_rel_err(db, db2, OUT) < 1e-5,
                   "linear %d acc %d: backward", (int)i, acc);
        }
        if (N * IN <= 1000) {
            for (int fast = 0; fast < 2; fast++) {
                lin L = {N, IN, OUT, fast, x, w, b};
                CHECK_OK(mq_linear_backward(N, IN, OUT, x, w, dy, dx, 0, dw, db));
                double ex = gc_check(x, (long)N * IN, dx, lin_fwd, &L, dy, (long)N * OUT, 1e-2f, 100);
                double ew = gc_check(w, (long)OUT * IN, dw, lin_fwd, &L, dy, (long)N * OUT, 1e-2f, 100);
                double eb = gc_check(b, OUT, db, lin_fwd, &L, dy, (long)N * OUT, 1e-2f, 100);
                CHECKF(ex < 2e-3 && ew < 2e-3 && eb < 2e-3, "linear %d: FD dx %.2g dw %.2g db %.2g",
                       (int)i, ex, ew, eb);
                CHECK(gc_check_zero(w, (long)OUT * IN, lin_fwd, &L, dy, (long)N * OUT, 1e-2f, 50) > 0.5);
            }
        }
        /* determinism across thread counts */
        mixq_set_threads(1);
        CHECK_OK(mq_linear_forward(N, IN, OUT, x, w, b, y2));
        CHECK_OK(mq_linear_backward(N, IN, OUT, x, w, dy, dx2, 0, dw2, db2));
        mixq_set_threads(2);
        CHECK_OK(mq_linear_forward(N, IN, OUT, x, w, b, y));
        CHECK_OK(mq_linear_backward(N, IN, OUT, x, w, dy, dx, 0, dw, db));
        CHECK(!memcmp(y, y2, 4 * (size_t)N * OUT) && !memcmp(dx, dx2, 4 * (size_t)N * IN) &&
              !memcmp(dw, dw2, 4 * (size_t)OUT * IN));
        float *ptrs[] = {x, w, b, y, y2, dy, dx, dx2, dw, dw2, db, db2};
        for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++) free(ptrs[k]);
    }
    CHECK(mq_linear_forward(0, 3, 3, NULL, NULL, NULL, NULL) == MIXQ_ERR_SHAPE);
}

/* The same checks through the im2col + sgemm back-end (MIXQ_CONV=gemm). */
static void test_gemm_backend_fast_vs_ref(void) {
    mq_conv_set_backend(0);
    test_conv_fast_vs_ref();
    mq_conv_set_backend(1);
}

static void test_gemm_backend_thread_determinism(void) {
    mq_conv_set_backend(0);
    test_conv_thread_determinism();
    mq_conv_set_backend(1);
}

int main(void) {
    /* default back-end: oneDNN direct convolution */
    TEST_RUN(test_conv_fast_vs_ref);
    TEST_RUN(test_conv_finite_differences);
    TEST_RUN(test_conv_thread_determinism);
    TEST_RUN(test_conv_bad_shapes);
    TEST_RUN(test_gemm_backend_fast_vs_ref);
    TEST_RUN(test_gemm_backend_thread_determinism);
    TEST_RUN(test_linear);
    return test_summary();
}
