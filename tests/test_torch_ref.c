/* Reference checks against PyTorch on committed fixtures (tests/fixtures/, .mqfx files, made by
 * scripts/gen_fixtures.py in float64): every layer's forward and backward, fast kernels and
 * their reference twins, and one full resnet20 SGD training step (train-mode batch norm,
 * momentum, weight decay). Tolerance: 1e-4 relative to each tensor's largest magnitude for
 * single layers; 2e-4 for the 20-layer training step, whose train-mode batch norm on 8 images of
 * 4x4 amplifies float32 rounding (PyTorch's own float32 CPU run is 6.2e-5 away from the float64
 * reference on this fixture; mixq's worst is 9.7e-5). */
#include <math.h>
#include <stdint.h>

#include "fixture.h"
#include "mixq/mixq.h"
#include "nn/kernels.h"
#include "nn/optim.h"
#include "test.h"

#define TOL 1e-4
#define TOL_STEP 2e-4
#define LAYERS "tests/fixtures/layers.mqfx"
#define STEP "tests/fixtures/resnet20_step.mqfx"

static fx_file *L;

/* Compare got with the fixture tensor case.key (n values). */
static void cmp(const char *cs, const char *key, const float *got, long n) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", cs, key);
    const float *want = fx_get(L, name, n);
    if (!want) return;
    double e = test_max_rel_err(got, want, n);
    CHECKF(e < TOL, "%s: max relative error %.3g", name, e);
}

static float *copy_of(const float *src, long n) {
    float *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    CHECK(d != NULL);
    if (d && src) memcpy(d, src, (size_t)n * sizeof *d);
    return d;
}

static void conv_one(const char *cs) {
    char key[160];
    snprintf(key, sizeof key, "%s.cfg", cs);
    const float *c = fx_get(L, key, 10);
    if (!c) return;
    const mq_geom g = mq_geom_square((int)c[5], (int)c[6], (int)c[7]);
    mq_conv_shape s = mq_conv_shape_of((int)c[0], (int)c[1], (int)c[2], (int)c[3], (int)c[4], &g, (int)c[8]);
    int bias = (int)c[9];
    CHECK_OK(mq_conv_shape_init(&s));
    long nx = (long)s.N * s.C * s.H * s.W, nw = (long)s.K * (s.C / s.groups) * s.R * s.S,
         ny = (long)s.N * s.K * s.P * s.Q;
    snprintf(key, sizeof key, "%s.x", cs);
    const float *x = fx_get(L, key, nx);
    snprintf(key, sizeof key, "%s.w", cs);
    const float *w = fx_get(L, key, nw);
    snprintf(key, sizeof key, "%s.dy", cs);
    const float *dy = fx_get(L, key, ny);
    const float *b = NULL;
    if (bias) {
        snprintf(key, sizeof key, "%s.b", cs);
        b = fx_get(L, key, s.K);
    }
    if (!x || !w || !dy || (bias && !b)) return;
    float *y = copy_of(NULL, ny), *dx = copy_of(NULL, nx), *dw = copy_of(NULL, nw),
          *db = copy_of(NULL, s.K);
    mq_ws ws = {0};
    for (int fast = 1; fast >= 0 && y && dx && dw && db; fast--) {
        if (fast) {
            CHECK_OK(mq_conv2d_forward(&s, x, w, b, y, &ws));
            CHECK_OK(mq_conv2d_backward(&s, x, w, dy, dx, 0, dw, bias ? db : NULL, &ws));
        } else {
            mq_conv2d_forward_ref(&s, x, w, b, y);
            mq_conv2d_backward_ref(&s, x, w, dy, dx, 0, dw, bias ? db : NULL);
        }
        cmp(cs, "y", y, ny);
        cmp(cs, "dx", dx, nx);
        cmp(cs, "dw", dw, nw);
        if (bias) cmp(cs, "db", db, s.K);
    }
    mq_ws_free(&ws);
    free(y);
    free(dx);
    free(dw);
    free(db);
}

static void test_conv_vs_torch(void) {
    static const char *const cs[] = {"conv_basic", "conv_strided_grouped", "conv_depthwise",
                                     "conv_depthwise_s2_mult2", "conv_5x5_pad2", "conv_1x1_s2",
                                     "conv_many_images"};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) conv_one(cs[i]);
}

static void test_linear_vs_torch(void) {
    const float *c = fx_get(L, "linear.cfg", 3);
    if (!c) return;
    int N = (int)c[0], IN = (int)c[1], OUT = (int)c[2];
    const float *x = fx_get(L, "linear.x", (long)N * IN), *w = fx_get(L, "linear.w", (long)OUT * IN),
                *b = fx_get(L, "linear.b", OUT), *dy = fx_get(L, "linear.dy", (long)N * OUT);
    if (!x || !w || !b || !dy) return;
    float y[64], dx[128], dw[128], db[16];
    for (int fast = 1; fast >= 0; fast--) {
        if (fast) {
            CHECK_OK(mq_linear_forward(N, IN, OUT, x, w, b, y));
            CHECK_OK(mq_linear_backward(N, IN, OUT, x, w, dy, dx, 0, dw, db));
        } else {
            mq_linear_forward_ref(N, IN, OUT, x, w, b, y);
            mq_linear_backward_ref(N, IN, OUT, x, w, dy, dx, 0, dw, db);
        }
        cmp("linear", "y", y, (long)N * OUT);
        cmp("linear", "dx", dx, (long)N * IN);
        cmp("linear", "dw", dw, (long)OUT * IN);
        cmp("linear", "db", db, OUT);
    }
}

static void bn_one(const char *cs) {
    char key[160];
    snprintf(key, sizeof key, "%s.cfg", cs);
    const float *c = fx_get(L, key, 5);
    if (!c) return;
    int N = (int)c[0], C = (int)c[1], HW = (int)c[2] * (int)c[3], training = (int)c[4];
    long n = (long)N * C * HW;
#define GET(var, k, cnt)                            \
    snprintf(key, sizeof key, "%s.%s", cs, k);      \
    const float *var = fx_get(L, key, cnt);         \
    if (!var) return;
    GET(x, "x", n)
    GET(g, "gamma", C)
    GET(be, "beta", C)
    GET(rm0, "run_mean0", C)
    GET(rv0, "run_var0", C)
    GET(dy, "dy", n)
#undef GET
    float rm[16], rv[16], sm[16], si[16], dg[16], dbt[16];
    float *y = copy_of(NULL, n), *dx = copy_of(NULL, n);
    if (!y || !dx) goto out;
    memcpy(rm, rm0, (size_t)C * sizeof *rm);
    memcpy(rv, rv0, (size_t)C * sizeof *rv);
    CHECK_OK(mq_bn_forward(N, C, HW, x, g, be, rm, rv, 1e-5f, 0.1f, training, sm, si, y));
    CHECK_OK(mq_bn_backward(N, C, HW, x, g, training ? sm : rm, si, rv, 1e-5f, training, dy, dx, 0,
                            dg, dbt));
    cmp(cs, "y", y, n);
    cmp(cs, "dx", dx, n);
    cmp(cs, "dgamma", dg, C);
    cmp(cs, "dbeta", dbt, C);
    cmp(cs, "run_mean", rm, C);
    cmp(cs, "run_var", rv, C);
out:
    free(y);
    free(dx);
}

static void test_bn_vs_torch(void) {
    bn_one("bn_train");
    bn_one("bn_eval");
}

static void act_one(const char *cs) {
    char key[160];
    snprintf(key, sizeof key, "%s.cfg", cs);
    const float *c = fx_get(L, key, 2);
    if (!c) return;
    int kind = (int)c[0];
    long n = (long)c[1];
    snprintf(key, sizeof key, "%s.x", cs);
    const float *x = fx_get(L, key, n);
    snprintf(key, sizeof key, "%s.dy", cs);
    const float *dy = fx_get(L, key, n);
    float *y = copy_of(NULL, n), *dx = copy_of(NULL, n);
    if (x && dy && y && dx) {
        if (kind == 0) {
            mq_relu_forward(n, x, y);
            mq_relu_backward(n, y, dy, dx, 0);
        } else {
            mq_relu6_forward(n, x, y);
            mq_relu6_backward(n, y, dy, dx, 0);
        }
        cmp(cs, "y", y, n);
        cmp(cs, "dx", dx, n);
    }
    free(y);
    free(dx);
}

static void test_activations_vs_torch(void) {
    act_one("relu");
    act_one("relu6");
}

static void pool_one(const char *cs) {
    char key[160];
    snprintf(key, sizeof key, "%s.cfg", cs);
    const float *c = fx_get(L, key, 8);
    if (!c) return;
    int kind = (int)c[0], N = (int)c[1], C = (int)c[2], H = (int)c[3], W = (int)c[4], k = (int)c[5],
        st = (int)c[6], pad = (int)c[7];
    int P = kind == 2 ? 1 : (H + 2 * pad - k) / st + 1, Q = kind == 2 ? 1 : (W + 2 * pad - k) / st + 1;
    long nx = (long)N * C * H * W, ny = (long)N * C * P * Q;
    snprintf(key, sizeof key, "%s.x", cs);
    const float *x = fx_get(L, key, nx);
    snprintf(key, sizeof key, "%s.dy", cs);
    const float *dy = fx_get(L, key, ny);
    float *y = copy_of(NULL, ny), *dx = copy_of(NULL, nx);
    int32_t *arg = malloc((size_t)ny * sizeof *arg);
    const mq_geom g = mq_geom_square(k, st, pad);
    if (x && dy && y && dx && arg) {
        if (kind == 0) {
            mq_maxpool_forward(N, C, H, W, &g, P, Q, x, y, arg);
            mq_maxpool_backward(N, C, H, W, P, Q, arg, dy, dx, 0);
        } else if (kind == 1) {
            mq_avgpool_forward(N, C, H, W, &g, P, Q, x, y);
            mq_avgpool_backward(N, C, H, W, &g, P, Q, dy, dx, 0);
        } else {
            mq_gap_forward(N, C, H * W, x, y);
            mq_gap_backward(N, C, H * W, dy, dx, 0);
        }
        cmp(cs, "y", y, ny);
        cmp(cs, "dx", dx, nx);
    }
    free(y);
    free(dx);
    free(arg);
}

static void test_pooling_vs_torch(void) {
    pool_one("maxpool_k2s2");
    pool_one("maxpool_k3s2p1");
    pool_one("avgpool_k2s2");
    pool_one("avgpool_k3s1p1");
    pool_one("gap");
}

static void ce_one(const char *cs) {
    char key[160];
    snprintf(key, sizeof key, "%s.cfg", cs);
    const float *c = fx_get(L, key, 3);
    if (!c) return;
    int N = (int)c[0], K = (int)c[1];
    float eps = c[2];
    snprintf(key, sizeof key, "%s.logits", cs);
    const float *z = fx_get(L, key, (long)N * K);
    snprintf(key, sizeof key, "%s.labels", cs);
    const float *lf = fx_get(L, key, N);
    if (!z || !lf || N > 16 || K > 16) return;
    int lab[16];
    for (int i = 0; i < N; i++) lab[i] = (int)lf[i];
    float p[256], dz[256], loss;
    CHECK_OK(mq_softmax_ce_forward(N, K, z, lab, eps, p, &loss, NULL));
    mq_softmax_ce_backward(N, K, p, lab, eps, dz);
    cmp(cs, "loss", &loss, 1);
    cmp(cs, "dlogits", dz, (long)N * K);
}

static void test_cross_entropy_vs_torch(void) {
    ce_one("ce");
    ce_one("ce_smooth");
}

/* knowledge distillation: kl_div(log_softmax(z / T), softmax(t / T), "batchmean") * T^2 */
static void kd_one(const char *cs) {
    char key[160];
    snprintf(key, sizeof key, "%s.cfg", cs);
    const float *c = fx_get(L, key, 3);
    if (!c) return;
    int N = (int)c[0], K = (int)c[1];
    snprintf(key, sizeof key, "%s.logits", cs);
    const float *z = fx_get(L, key, (long)N * K);
    snprintf(key, sizeof key, "%s.teacher", cs);
    const float *t = fx_get(L, key, (long)N * K);
    if (!z || !t || N > 16 || K > 16) return;
    float dz[256] = {0}, loss;
    CHECK_OK(mq_distill(N, K, z, t, c[2], 1.0f, &loss, dz));
    cmp(cs, "loss", &loss, 1);
    cmp(cs, "dlogits", dz, (long)N * K);
}

static void test_distillation_vs_torch(void) {
    kd_one("kd_t1");
    kd_one("kd_t4");
}

/* ------------------------------------------------------------ full resnet20 training step */

static int name_hash(const char *s) {
    int h = 0;
    for (int i = 0; s[i]; i++) h = (h + (unsigned char)s[i] * (i + 1)) % 1000;
    return h;
}

/* Same values as formula_init() in scripts/gen_fixtures.py. */
static void formula_init(const mixq_tensor_info *ti, float *d) {
    size_t len = strlen(ti->name);
    int ends_weight = len >= 6 && !strcmp(ti->name + len - 6, "weight");
    double ph = 0.011 * name_hash(ti->name) + 0.5;
    for (int64_t i = 0; i < ti->numel; i++) {
        double s = sin(0.37 * (double)i + ph), v;
        if (strstr(ti->name, "running_mean")) v = 0.05 * s;
        else if (strstr(ti->name, "running_var")) v = 1.0 + 0.2 * s;
        else if (ti->ndim > 1) v = sqrt(3.0 / (double)(ti->numel / ti->shape[0])) * s;
        else if (ends_weight) v = 1.0 + 0.1 * s;
        else v = 0.1 * s;
        d[i] = (float)v;
    }
}

/* Compare a tensor with fixture entry key (full), or key.head + key.stats (sum, sum of squares,
 * sum of |.|). */
static void cmp_summary(const fx_file *F, const char *key, const float *got, int64_t n,
                        double tol, double *worst) {
    char k2[200];
    const fx_tensor *full = fx_find(F, key, -1);
    double e;
    if (full) {
        CHECKF(full->numel == n, "%s: fixture has %ld values, model %lld", key, full->numel,
               (long long)n);
        if (full->numel != n) return;
        e = test_max_rel_err(got, full->data, n);
    } else {
        snprintf(k2, sizeof k2, "%s.head", key);
        const float *head = fx_get(F, k2, 1024);
        snprintf(k2, sizeof k2, "%s.stats", key);
        const float *st = fx_get(F, k2, 3);
        if (!head || !st || n < 1024) return;
        e = test_max_rel_err(got, head, 1024);
        double s = 0, ss = 0, sa = 0;
        for (int64_t i = 0; i < n; i++) {
            s += got[i];
            ss += (double)got[i] * got[i];
            sa += fabs(got[i]);
        }
        e = fmax(e, fabs(s - st[0]) / st[2]);
        e = fmax(e, fabs(ss - st[1]) / st[1]);
        e = fmax(e, fabs(sa - st[2]) / st[2]);
    }
    if (e > *worst) *worst = e;
    if (getenv("MIXQ_FX_VERBOSE")) printf("    %-40s %.2g\n", key, e);
    CHECKF(e < tol, "%s: relative error %.3g", key, e);
}

static void test_resnet20_training_step(void) {
    fx_file *F = fx_load(STEP);
    CHECKF(F != NULL, "cannot load %s", STEP);
    if (!F) return;
    const float *cfg = fx_get(F, "cfg", 8);
    mixq_model *m = NULL;
    float *logits = NULL;
    if (!cfg) goto out;
    int N = (int)cfg[0];
    mixq_model_config mc = {.arch = "resnet20", .in_c = (int)cfg[1], .in_h = (int)cfg[2],
                            .in_w = (int)cfg[3], .classes = (int)cfg[4], .width = 1, .seed = 1};
    CHECK_OK(mixq_model_create(&mc, &m));
    if (!m) goto out;
    int nt = mixq_model_tensor_count(m);
    for (int i = 0; i < nt; i++) {
        mixq_tensor_info ti;
        CHECK_OK(mixq_model_tensor(m, i, &ti));
        formula_init(&ti, mixq_model_tensor_data(m, ti.name));
    }
    const float *x = fx_get(F, "x", (long)N * mc.in_c * mc.in_h * mc.in_w);
    const float *lf = fx_get(F, "labels", N);
    logits = malloc((size_t)N * mc.classes * sizeof *logits);
    if (!x || !lf || !logits || N > 64) goto out;
    int lab[64];
    for (int i = 0; i < N; i++) lab[i] = (int)lf[i];
    float loss;
    CHECK_OK(mixq_model_forward(m, x, N, 1, logits));
    CHECK_OK(mixq_model_backward(m, lab, 0, &loss));
    double worst_grad = 0, worst_new = 0, e;
    const float *wl = fx_get(F, "logits", (long)N * mc.classes), *wloss = fx_get(F, "loss", 1);
    if (wl) {
        e = test_max_rel_err(logits, wl, (long)N * mc.classes);
        CHECKF(e < TOL, "logits: relative error %.3g", e);
    }
    if (wloss) CHECKF(fabsf(loss - *wloss) < TOL * fabsf(*wloss), "loss %.7g, torch %.7g", loss, *wloss);
    char key[200];
    int checked = 0;
    for (int i = 0; i < nt; i++) {
        mixq_tensor_info ti;
        CHECK_OK(mixq_model_tensor(m, i, &ti));
        if (!ti.trainable) continue;
        snprintf(key, sizeof key, "grad.%s", ti.name);
        cmp_summary(F, key, mixq_model_tensor_grad(m, ti.name), ti.numel, TOL_STEP, &worst_grad);
        checked++;
    }
    /* Every parameter of the torch model has a gradient here, and no more. */
    int torch_params = 0;
    for (int i = 0; i < F->count; i++)
        if (!strncmp(F->t[i].name, "grad.", 5) && !strstr(F->t[i].name, ".stats")) torch_params++;
    CHECKF(torch_params == checked, "torch has %d parameters, mixq %d", torch_params, checked);
    /* One SGD step (lr, momentum, weight decay on conv/linear weights), as torch.optim.SGD. */
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.lr = cfg[5];
    tc.momentum = cfg[6];
    tc.weight_decay = cfg[7];
    tc.epochs = 1;
    tc.schedule = MIXQ_SCHED_CONST;
    mq_optim opt;
    CHECK_OK(mq_optim_init(&opt, &tc, m));
    CHECK_OK(mq_optim_step(&opt, m, tc.lr));
    mq_optim_free(&opt);
    for (int i = 0; i < nt; i++) {
        mixq_tensor_info ti;
        CHECK_OK(mixq_model_tensor(m, i, &ti));
        if (!ti.trainable) continue;
        snprintf(key, sizeof key, "new.%s", ti.name);
        cmp_summary(F, key, mixq_model_tensor_data(m, ti.name), ti.numel, TOL_STEP, &worst_new);
    }
    printf("  resnet20 step: loss %.6f (torch %.6f), %d parameter gradients, worst rel. error %.2g; "
           "after the SGD step worst %.2g\n",
           loss, wloss ? *wloss : 0.0f, checked, worst_grad, worst_new);
    /* Running statistics after the train-mode forward. */
    for (int i = 0; i < nt; i++) {
        mixq_tensor_info ti;
        CHECK_OK(mixq_model_tensor(m, i, &ti));
        if (ti.trainable) continue;
        snprintf(key, sizeof key, "new.%s", ti.name);
        cmp_summary(F, key, mixq_model_tensor_data(m, ti.name), ti.numel, TOL_STEP, &worst_new);
    }
out:
    free(logits);
    mixq_model_free(m);
    fx_free(F);
}

static void test_fixture_reader_rejects_bad_files(void) {
    /* The checks above rely on the reader refusing damaged fixtures. */
    char p[1024];
    snprintf(p, sizeof p, "%s/bad.mqfx", test_tmpdir());
    const unsigned char trunc[] = {'M', 'Q', 'F', 'X', 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 'a'};
    CHECK(test_write_file(p, trunc, sizeof trunc) == 0);
    fx_file *f = fx_load(p);
    CHECK(f == NULL);
    fx_free(f);
    CHECK(test_write_file(p, "MQFY\1\0\0\0\0\0\0\0", 12) == 0);
    f = fx_load(p);
    CHECK(f == NULL);
    fx_free(f);
}

int main(void) {
    L = fx_load(LAYERS);
    if (!L) {
        TEST_RUN(test_fixture_reader_rejects_bad_files);
        fprintf(stderr, "cannot load %s\n", LAYERS);
        test_fail_count++;
        return test_summary();
    }
    TEST_RUN(test_conv_vs_torch);
    TEST_RUN(test_linear_vs_torch);
    TEST_RUN(test_bn_vs_torch);
    TEST_RUN(test_activations_vs_torch);
    TEST_RUN(test_pooling_vs_torch);
    TEST_RUN(test_cross_entropy_vs_torch);
    TEST_RUN(test_distillation_vs_torch);
    TEST_RUN(test_resnet20_training_step);
    TEST_RUN(test_fixture_reader_rejects_bad_files);
    fx_free(L);
    return test_summary();
}
