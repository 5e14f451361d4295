/* HAWQ: finite-difference Hessian-vector products and Hutchinson traces against exact Hessians
 * from PyTorch (tests/fixtures/hessian.mqfx, scripts/gen_hessian_fixtures.py: logistic
 * regression and a tiny conv net with batch norm and ReLUs), the weight-error term against the
 * quantizer the search runs, the GLPK programme against brute force on lenet5's choice space,
 * its errors, and (with the Fashion-MNIST package) `--agent hawq` searches: budgets, sweeps,
 * the trace cache, resume and thread-count determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "nn/model.h"
#include "quant/qmodel.h"
#include "search/env.h"
#include "search/hessian.h"
#include "search/ilp.h"
#include "test.h"

static const char lr_graph[] = "mixq_graph 1\n"
                               "input 1 3 3\n"
                               "flatten flat 0\n"
                               "linear fc 1 4 1\n";
static const char cnn_graph[] = "mixq_graph 1\n"
                                "input 1 5 5\n"
                                "conv conv1 0 2 3 1 1 1 0\n"
                                "bn bn1 1 1e-05 0.1\n"
                                "relu relu1 2\n"
                                "conv conv2 3 3 3 2 1 1 0\n"
                                "relu relu2 4\n"
                                "gap gap 5\n"
                                "flatten flat 6\n"
                                "linear fc 7 4 1\n";

/* A fixture model: the graph with the fixture's tensors, its images and labels. */
typedef struct fx_model {
    mixq_model *m;
    const float *x;
    int *labels;
    int n;
    int nodes[3], L; /* conv/linear nodes */
} fx_model;

static int fx_model_load(const fx_file *f, const char *prefix, fx_model *out) {
    memset(out, 0, sizeof *out);
    const int lr = !strcmp(prefix, "lr.");
    mixq_model_config mc = {.arch = "hessian_fixture", .in_c = 1, .in_h = lr ? 3 : 5, .in_w = lr ? 3 : 5,
                            .classes = 4, .seed = 1};
    CHECK_OK(mq_graph_build(lr ? lr_graph : cnn_graph, &mc, "test", &out->m));
    if (!out->m) return 0;
    char name[160];
    for (int t = 0; t < out->m->n_tensors; t++) {
        const mq_tensor *tt = &out->m->tensors[t];
        snprintf(name, sizeof name, "%s%s", prefix, tt->name);
        const float *d = fx_get(f, name, tt->numel);
        if (!d) return 0;
        memcpy(mq_tensor_ptr(out->m, t), d, sizeof(float) * (size_t)tt->numel);
    }
    out->m->params_version++;
    snprintf(name, sizeof name, "%sx", prefix);
    const fx_tensor *x = fx_find(f, name, -1);
    snprintf(name, sizeof name, "%slabels", prefix);
    const fx_tensor *y = fx_find(f, name, -1);
    CHECK(x && y);
    if (!x || !y) return 0;
    out->x = x->data, out->n = (int)y->numel;
    out->labels = malloc(sizeof(int) * (size_t)out->n);
    for (int i = 0; i < out->n; i++) out->labels[i] = (int)y->data[i];
    for (int i = 0; i < out->m->n_nodes; i++)
        if (out->m->nodes[i].op == MIXQ_OP_CONV || out->m->nodes[i].op == MIXQ_OP_LINEAR) out->nodes[out->L++] = i;
    return 1;
}

static void fx_model_free(fx_model *fm) {
    mixq_model_free(fm->m);
    free(fm->labels);
}

/* The fixture's direction v in the parameter arena's order. */
static float *arena_vec(const fx_file *f, const char *prefix, const char *what, mixq_model *m) {
    float *v = calloc(m->n_params, sizeof(float));
    char name[160];
    for (int t = 0; t < m->n_tensors; t++) {
        const mq_tensor *tt = &m->tensors[t];
        if (!tt->trainable) continue;
        snprintf(name, sizeof name, "%s%s.%s", prefix, what, tt->name);
        const float *d = fx_get(f, name, tt->numel);
        if (d) memcpy(v + tt->off, d, sizeof(float) * (size_t)tt->numel);
    }
    return v;
}

/* The loss and gradient agree with PyTorch's (the Hessian is of this loss), and H v by the
 * central difference matches the exact H v at the default relative step; its error against the
 * step is printed (the choice of 1e-2 in hessian.h). */
static void test_hvp_exact(void) {
    if (!test_need_file(TEST_FIXTURES "hessian.mqfx")) return;
    fx_file *f = fx_load(TEST_FIXTURES "hessian.mqfx");
    CHECK(f != NULL);
    if (!f) return;
    static const char *const prefixes[] = {"lr.", "cnn."};
    for (int k = 0; k < 2; k++) {
        fx_model fm;
        if (!fx_model_load(f, prefixes[k], &fm)) {
            fx_model_free(&fm);
            continue;
        }
        mixq_model *m = fm.m;
        const size_t P = m->n_params;
        float *logits = malloc(sizeof(float) * (size_t)fm.n * 4), loss = 0;
        CHECK_OK(mixq_model_forward(m, fm.x, fm.n, 0, logits));
        CHECK_OK(mixq_model_backward(m, fm.labels, 0, &loss));
        char name[160];
        snprintf(name, sizeof name, "%sloss", prefixes[k]);
        const float *l0 = fx_get(f, name, 1);
        CHECKF(l0 && fabsf(loss - *l0) < 1e-5f * fabsf(*l0), "%s loss %.7g, PyTorch %.7g", prefixes[k], loss,
               l0 ? *l0 : 0);
        float *g = arena_vec(f, prefixes[k], "grad", m);
        double gerr = test_max_rel_err(m->grads, g, (long)P);
        CHECKF(gerr < 1e-4, "%s gradient max rel err %.3g", prefixes[k], gerr);
        float *v = arena_vec(f, prefixes[k], "v", m), *hv = arena_vec(f, prefixes[k], "hv", m);
        float *theta = malloc(sizeof(float) * P);
        memcpy(theta, m->params, sizeof(float) * P);
        double *out = malloc(sizeof(double) * P);
        float *outf = malloc(sizeof(float) * P);
        static const double steps[] = {1e-1, 3e-2, 1e-2, 1e-3, 1e-4, 1e-5};
        mq_hessian_config hc;
        mq_hessian_config_default(&hc);
        printf("  %s max relative error of H v, frozen pattern / raw difference, by relative step:\n", prefixes[k]);
        for (int s = 0; s < 6; s++) {
            double err[2], eps = 0;
            for (int frozen = 1; frozen >= 0; frozen--) {
                CHECK_OK(mq_hessian_hvp(m, fm.x, fm.labels, fm.n, 7, v, steps[s], frozen, out, &eps));
                for (size_t i = 0; i < P; i++) outf[i] = (float)out[i];
                err[frozen] = test_max_rel_err(outf, hv, (long)P);
                /* the parameters come back bit for bit */
                CHECK(!memcmp(theta, m->params, sizeof(float) * P));
            }
            printf("    %.0e (eps %.3g): %.2e / %.2e\n", steps[s], eps, err[1], err[0]);
            if (steps[s] == hc.eps_rel)
                CHECKF(err[1] < 1e-3, "%s H v at the default step: max rel err %.3g", prefixes[k], err[1]);
            if (steps[s] >= 1e-3 && steps[s] <= 3e-2) CHECK(err[1] < 1e-2); /* no kink to cross */
        }
        free(logits), free(g), free(v), free(hv), free(theta), free(out), free(outf);
        fx_model_free(&fm);
    }
    fx_free(f);
}

/* Hutchinson's per-layer traces, v over every parameter, against the exact traces: within 5 %
 * with enough probes. hstd (the exact deviation of one sample) sets how many: the error is
 * checked within 5 % and within 4.5 standard errors, and the estimator's own standard error
 * against the exact one. */
static void test_trace_exact(void) {
    if (!test_need_file(TEST_FIXTURES "hessian.mqfx")) return;
    fx_file *f = fx_load(TEST_FIXTURES "hessian.mqfx");
    CHECK(f != NULL);
    if (!f) return;
    static const char *const prefixes[] = {"lr.", "cnn."};
    static const int probes[] = {400, 12000};
    for (int k = 0; k < 2; k++) {
        fx_model fm;
        if (!fx_model_load(f, prefixes[k], &fm)) {
            fx_model_free(&fm);
            continue;
        }
        mq_hessian_config hc;
        mq_hessian_config_default(&hc);
        hc.tol = 0;
        hc.max_probes = probes[k];
        hc.batch = 64;
        hc.seed = 7;
        double tr[3], sem[3];
        mq_hessian_result r;
        CHECK_OK(mq_hessian_traces(fm.m, fm.x, fm.labels, fm.n, &hc, fm.nodes, fm.L, tr, sem, NULL, NULL, &r));
        CHECK(r.probes == probes[k] && !r.converged);
        for (int l = 0; l < fm.L; l++) {
            char name[160];
            snprintf(name, sizeof name, "%strace.%s.weight", prefixes[k], fm.m->nodes[fm.nodes[l]].name);
            const float *t = fx_get(f, name, 1);
            snprintf(name, sizeof name, "%shstd.%s.weight", prefixes[k], fm.m->nodes[fm.nodes[l]].name);
            const float *sd = fx_get(f, name, 1);
            if (!t || !sd) continue;
            const double se = *sd / sqrt(probes[k]), rel = fabs(tr[l] - *t) / fabs(*t);
            printf("  %s%s: Hutchinson %.5g (%d probes, %.2f s), exact %.5g: %.2f %% off (%.1f standard errors; "
                   "estimated one %.3g, exact %.3g)\n", prefixes[k], fm.m->nodes[fm.nodes[l]].name, tr[l], r.probes,
                   r.seconds, *t, 100 * rel, fabs(tr[l] - *t) / se, sem[l], se);
            CHECKF(rel < 0.05, "%s%s: %.4g against %.4g", prefixes[k], fm.m->nodes[fm.nodes[l]].name, tr[l], *t);
            CHECK(fabs(tr[l] - *t) < 4.5 * se);
            CHECK(sem[l] > 0.8 * se && sem[l] < 1.25 * se);
        }
        fx_model_free(&fm);
    }
    fx_free(f);
}

/* ---------------------------------------------------------------- weight errors */

static mixq_model *lenet5(uint64_t seed) {
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = seed};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    return m;
}

/* ||Q_b(W) - W||^2 is the error of the weights a quantized model runs on, with the layer's bits
 * set as a search candidate sets them (per channel, MSE clip below 5 bits, max above) */
static void test_weight_err(void) {
    mixq_model *m = lenet5(5);
    if (!m) return;
    mq_env e;
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_load("size", &hw));
    CHECK_OK(mq_env_create(m, hw, 0, 2, 8, 1, &e));
    for (int l = 0; l < e.L; l++)
        for (int b = 1; b <= 8; b++) {
            double err = -1;
            CHECK_OK(mq_hessian_weight_err(m, e.node[l], b, &err));
            mixq_model *q = NULL;
            mixq_policy *p = NULL;
            CHECK_OK(mixq_model_clone(m, &q));
            CHECK_OK(mixq_policy_create(8, 8, &p));
            CHECK_OK(mixq_policy_set_layer(p, e.name[l], b, 8));
            CHECK_OK(mixq_model_quantize(q, p));
            mq_qlayer ql;
            CHECK_OK(mq_qlayer_get(q, e.node[l], &ql));
            const float *w = mq_tensor_ptr(m, m->nodes[e.node[l]].t_w);
            double ref = 0; /* summed per channel, as the function does */
            for (int k = 0; k < ql.K; k++) {
                double rk = 0;
                for (int64_t i = (int64_t)k * ql.inner; i < (int64_t)(k + 1) * ql.inner; i++)
                    rk += ((double)ql.wq[i] - w[i]) * ((double)ql.wq[i] - w[i]);
                ref += rk;
            }
            CHECKF(err == ref, "layer %s, %d bits: %.9g, the quantized model's %.9g", e.name[l], b, err, ref);
            if (b > 1) {
                double up;
                CHECK_OK(mq_hessian_weight_err(m, e.node[l], b - 1, &up));
                CHECK(up > err); /* fewer bits, more error */
            }
            mixq_policy_free(p);
            mixq_model_free(q);
        }
    /* per kernel: in a policy that gives every kernel its own width, each channel's error is the
     * one mq_hessian_kernel_err gives at that width (per-channel scales and clips) */
    for (int l = 0; l < e.L; l++) {
        const int K = e.koff[l + 1] - e.koff[l];
        int *kb = malloc(sizeof(int) * (size_t)K);
        double *ek = malloc(sizeof(double) * 9 * (size_t)K), tot;
        if (!kb || !ek) break;
        for (int k = 0; k < K; k++) kb[k] = 2 + (k * 5 + l) % 7;
        for (int b = 2; b <= 8; b++) CHECK_OK(mq_hessian_kernel_err(m, e.node[l], b, &tot, ek + (size_t)b * K));
        mixq_model *q = NULL;
        mixq_policy *p = NULL;
        CHECK_OK(mixq_model_clone(m, &q));
        CHECK_OK(mixq_policy_create(8, 8, &p));
        CHECK_OK(mixq_policy_set_kernels(p, e.name[l], kb, K, 8));
        CHECK_OK(mixq_model_quantize(q, p));
        mq_qlayer ql;
        CHECK_OK(mq_qlayer_get(q, e.node[l], &ql));
        const float *w = mq_tensor_ptr(m, m->nodes[e.node[l]].t_w);
        for (int k = 0; k < K; k++) {
            double rk = 0;
            for (int64_t i = (int64_t)k * ql.inner; i < (int64_t)(k + 1) * ql.inner; i++)
                rk += ((double)ql.wq[i] - w[i]) * ((double)ql.wq[i] - w[i]);
            CHECKF(rk == ek[(size_t)kb[k] * K + k], "layer %s kernel %d at %d bits: %.9g, the per-kernel model's %.9g",
                   e.name[l], k, kb[k], ek[(size_t)kb[k] * K + k], rk);
        }
        mixq_policy_free(p);
        mixq_model_free(q);
        free(kb);
        free(ek);
    }
    CHECK(mq_hessian_weight_err(m, e.node[0], 9, &(double){0}) == MIXQ_ERR_ARG);
    CHECK(mq_hessian_weight_err(m, 0, 4, &(double){0}) == MIXQ_ERR_ARG);
    mq_env_free(&e);
    mixq_hw_free(hw);
    mixq_model_free(m);
}

/* The traces are a function of the seed and the data alone: the same at 1 and 2 threads, and
 * another seed draws other probes; a quantized model is refused */
static void test_trace_determinism(void) {
    mixq_model *m = lenet5(9);
    if (!m) return;
    const int n = 24, L = 5;
    float *x = malloc(sizeof(float) * 784 * n);
    int lab[24];
    test_fill(x, 784L * n, 3, -1, 1);
    for (int i = 0; i < n; i++) lab[i] = i % 10;
    int nodes[5], k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == MIXQ_OP_CONV || m->nodes[i].op == MIXQ_OP_LINEAR) nodes[k++] = i;
    CHECK(k == L);
    mq_hessian_config hc;
    mq_hessian_config_default(&hc);
    hc.max_probes = 12, hc.min_probes = 12, hc.batch = 10;
    double t1[5], t2[5], t3[5], s1[5], s2[5];
    mq_hessian_result r1, r2, r3;
    const int threads = mixq_get_threads();
    CHECK_OK(mixq_set_threads(1));
    CHECK_OK(mq_hessian_traces(m, x, lab, n, &hc, nodes, L, t1, s1, NULL, NULL, &r1));
    CHECK_OK(mixq_set_threads(2));
    CHECK_OK(mq_hessian_traces(m, x, lab, n, &hc, nodes, L, t2, s2, NULL, NULL, &r2));
    CHECK(!memcmp(t1, t2, sizeof t1) && !memcmp(s1, s2, sizeof s1) && r1.probes == r2.probes && r1.eps == r2.eps);
    /* patterns too large to keep are recorded again before each use: the same traces */
    hc.pattern_cap = 1;
    CHECK_OK(mq_hessian_traces(m, x, lab, n, &hc, nodes, L, t3, NULL, NULL, NULL, &r3));
    CHECK(!memcmp(t1, t3, sizeof t1));
    hc.pattern_cap = 0;
    hc.seed = 2;
    CHECK_OK(mq_hessian_traces(m, x, lab, n, &hc, nodes, L, t3, NULL, NULL, NULL, &r3));
    CHECK(memcmp(t1, t3, sizeof t1) != 0);
    /* stopping: a loose tolerance stops after min_probes */
    hc.max_probes = 100, hc.min_probes = 3, hc.tol = 10;
    CHECK_OK(mq_hessian_traces(m, x, lab, n, &hc, nodes, L, t3, NULL, NULL, NULL, &r3));
    CHECK(r3.probes == 3 && r3.converged);
    /* errors: a quantized model, a bad node, a bad label */
    mixq_policy *p = NULL;
    mixq_model *q = NULL;
    CHECK_OK(mixq_model_clone(m, &q));
    CHECK_OK(mixq_policy_create(4, 4, &p));
    CHECK_OK(mixq_model_quantize(q, p));
    CHECK(mq_hessian_traces(q, x, lab, n, &hc, nodes, L, t3, NULL, NULL, NULL, &r3) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "quantized") != NULL);
    int bad = 0;
    CHECK(mq_hessian_traces(m, x, lab, n, &hc, &bad, 1, t3, NULL, NULL, NULL, &r3) == MIXQ_ERR_ARG);
    lab[3] = 10;
    CHECK(mq_hessian_traces(m, x, lab, n, &hc, nodes, L, t3, NULL, NULL, NULL, &r3) == MIXQ_ERR_ARG);
    mixq_policy_free(p);
    mixq_model_free(q);
    CHECK_OK(mixq_set_threads(threads));
    free(x);
    mixq_model_free(m);
}

/* A pattern recorded at theta and replayed at theta gives the same logits and gradients, bit for
 * bit (ReLU and max pool: lenet5; ReLU6: mobilenet_v1) */
static void test_pattern_replay(void) {
    mixq_model_config mcs[2] = {{.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 4},
                                {.arch = "mobilenet_v1", .in_c = 3, .in_h = 32, .in_w = 32, .classes = 10,
                                 .width = 0.25f, .seed = 4}};
    for (int k = 0; k < 2; k++) {
        mixq_model *m = NULL;
        CHECK_OK(mixq_model_create(&mcs[k], &m));
        if (!m) continue;
        const int n = 3, img = mcs[k].in_c * mcs[k].in_h * mcs[k].in_w;
        float *x = malloc(sizeof(float) * (size_t)(img * n)), l0[30], l1[30];
        int lab[3] = {1, 5, 9};
        test_fill(x, (long)img * n, 21, -1, 1);
        CHECK_OK(mixq_model_forward(m, x, n, 0, l0));
        CHECK_OK(mixq_model_backward(m, lab, 0, NULL));
        float *g0 = malloc(sizeof(float) * m->n_params);
        memcpy(g0, m->grads, sizeof(float) * m->n_params);
        const size_t bytes = mq_model_pattern_bytes(m, n);
        uint8_t *pat = malloc(bytes);
        CHECK(bytes > 0);
        CHECK_OK(mq_model_pattern_save(m, pat));
        m->act_pattern = pat;
        CHECK_OK(mixq_model_forward(m, x, n, 0, l1));
        CHECK_OK(mixq_model_backward(m, lab, 0, NULL));
        m->act_pattern = NULL;
        CHECKF(!memcmp(l0, l1, sizeof l0) && !memcmp(g0, m->grads, sizeof(float) * m->n_params), "%s",
               mcs[k].arch);
        free(x), free(g0), free(pat);
        mixq_model_free(m);
    }
}

/* ---------------------------------------------------------------- the integer programme */

/* lenet5's three free layers (ends pinned at 8/8) x every (w, a) in 2..8 on bismo_edge. */
typedef struct ilp_case {
    mq_env e;
    double val[5 * 81], cost[MQ_NMETRIC * 5 * 81], limit[MQ_NMETRIC];
    unsigned char ok[5 * 81];
    mq_mck p;
} ilp_case;

static int ilp_case_make(ilp_case *c, mixq_model *m, mixq_hw *hw, unsigned seed, int monotone) {
    memset(c, 0, sizeof *c);
    CHECK_OK(mq_env_create(m, hw, 0, 2, 8, 1, &c->e));
    if (c->e.L != 5) return 0;
    float r[5 * 81];
    test_fill(r, 5 * 81, seed, 0, 1);
    for (int l = 0; l < 5; l++)
        for (int w = 0; w <= 8; w++)
            for (int a = 0; a <= 8; a++) {
                const int i = l * 81 + w * 9 + a;
                const int pinned = l == 0 || l == 4;
                c->ok[i] = pinned ? w == 8 && a == 8 : w >= 2 && a >= 2;
                /* monotone: HAWQ-like, falling with more bits; else arbitrary (pruning must
                 * still keep the optimum) */
                c->val[i] = monotone ? (1.0 + r[i]) * (pow(4.0, -w) + 0.3 * pow(4.0, -a)) * (l + 1) : r[i];
                for (int k = 0; k < MQ_NMETRIC; k++) c->cost[(k * 5 + l) * 81 + w * 9 + a] = c->e.grid[l][k][w][a];
            }
    for (int k = 0; k < MQ_NMETRIC; k++) c->limit[k] = INFINITY;
    mq_mck p = {5, 81, c->val, c->ok, MQ_NMETRIC, c->cost, c->limit, mq_metric_names, 10, 0};
    c->p = p;
    return 1;
}

/* The optimum by enumeration; *second = the next best value. */
static double brute(const ilp_case *c, int *best, double *second) {
    double lo = INFINITY, lo2 = INFINITY;
    int w[5] = {8, 0, 0, 0, 8}, a[5] = {8, 0, 0, 0, 8};
    for (int c1 = 0; c1 < 49; c1++)
        for (int c2 = 0; c2 < 49; c2++)
            for (int c3 = 0; c3 < 49; c3++) {
                w[1] = 2 + c1 / 7, a[1] = 2 + c1 % 7, w[2] = 2 + c2 / 7, a[2] = 2 + c2 % 7;
                w[3] = 2 + c3 / 7, a[3] = 2 + c3 % 7;
                int fits = 1;
                for (int k = 0; k < MQ_NMETRIC && fits; k++)
                    if (isfinite(c->limit[k])) fits = mq_env_cost(&c->e, w, a, k) <= c->limit[k] * (1 + 1e-12);
                if (!fits) continue;
                double v = 0;
                for (int l = 0; l < 5; l++) v += c->val[l * 81 + w[l] * 9 + a[l]];
                if (v < lo) {
                    lo2 = lo, lo = v;
                    for (int l = 0; l < 5; l++) best[l] = w[l] * 9 + a[l];
                } else if (v < lo2) lo2 = v;
            }
    *second = lo2;
    return lo;
}

static void test_ilp_bruteforce(void) {
    mixq_model *m = lenet5(3);
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_load("bismo_edge", &hw));
    if (!m || !hw) goto out;
    static const struct { const char *budget; int monotone; } cases[] = {
        {"latency=0.67", 1}, {"latency=0.7", 1}, {"latency=0.8", 1}, {"latency=0.72", 0}, {"energy=0.75", 1},
        {"size=0.3", 1}, {"latency=0.75,size=0.35", 1}, {"latency=0.8,energy=0.78,bitops=0.4", 0}, {"latency=2", 1}};
    double worst = 0, secs = 0;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        ilp_case *c = calloc(1, sizeof *c);
        if (!ilp_case_make(c, m, hw, 11 + (unsigned)t, cases[t].monotone)) {
            free(c);
            continue;
        }
        CHECK_OK(mq_env_set_budget(&c->e, cases[t].budget));
        memcpy(c->limit, c->e.target, sizeof c->limit);
        int pick[5], best[5];
        mq_mck_result r;
        CHECK_OK(mq_mck_solve(&c->p, pick, &r));
        double second, opt = brute(c, best, &second);
        secs += r.seconds;
        CHECK(r.optimal && r.variables <= 3 * 49 + 2);
        const double rel = fabs(r.objective - opt) / opt;
        worst = fmax(worst, rel);
        CHECKF(rel < 1e-9, "%s: programme %.12g, enumeration %.12g", cases[t].budget, r.objective, opt);
        int w[5], a[5];
        for (int l = 0; l < 5; l++) w[l] = pick[l] / 9, a[l] = pick[l] % 9;
        CHECK(mq_env_fits(&c->e, w, a));
        CHECK(w[0] == 8 && a[0] == 8 && w[4] == 8 && a[4] == 8);
        if (second - opt > 1e-9 * opt) CHECK(!memcmp(pick, best, sizeof pick)); /* a unique optimum */
        /* the same programme, the same answer */
        int again[5];
        CHECK_OK(mq_mck_solve(&c->p, again, &r));
        CHECK(!memcmp(pick, again, sizeof pick));
        mq_env_free(&c->e);
        free(c);
    }
    printf("  programme = enumeration on 9 budgets (worst relative difference %.1e), %.3f s in GLPK in all\n", worst,
           secs);
out:
    mixq_hw_free(hw);
    mixq_model_free(m);
}

static void test_ilp_errors(void) {
    mixq_model *m = lenet5(3);
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_load("bismo_edge", &hw));
    ilp_case *c = calloc(1, sizeof *c);
    if (!m || !hw || !ilp_case_make(c, m, hw, 5, 1)) goto out;
    int pick[5];
    mq_mck_result r;
    /* a budget below the cheapest reachable: the error says what that is */
    const double lo = mq_mck_min_cost(&c->p, MQ_M_LATENCY);
    c->limit[MQ_M_LATENCY] = 0.9 * lo;
    CHECK(mq_mck_solve(&c->p, pick, &r) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "latency: cheapest reachable") && strstr(mixq_last_error(), "out of reach"));
    c->limit[MQ_M_LATENCY] = lo; /* exactly reachable */
    CHECK_OK(mq_mck_solve(&c->p, pick, &r));
    for (int l = 1; l < 4; l++) CHECK(pick[l] == 2 * 9 + 2 || c->e.grid[l][0][pick[l] / 9][pick[l] % 9] == c->e.grid[l][0][2][2]);
    /* GLPK's fatal error comes back as an error (no abort), and GLPK works afterwards */
    c->limit[MQ_M_LATENCY] = INFINITY;
    c->p.test_fault = 1;
    CHECK(mq_mck_solve(&c->p, pick, &r) == MIXQ_ERR_NUMERIC);
    CHECKF(strstr(mixq_last_error(), "GLPK failed") && strstr(mixq_last_error(), "glp_set_col_kind"), "%s",
           mixq_last_error());
    c->p.test_fault = 0;
    CHECK_OK(mq_mck_solve(&c->p, pick, &r));
    CHECK(pick[1] == 8 * 9 + 8); /* no budget: the least sensitivity, 8/8 */
    /* a NaN objective, a layer without a choice */
    c->val[81 + 3 * 9 + 3] = NAN;
    CHECK(mq_mck_solve(&c->p, pick, &r) == MIXQ_ERR_NUMERIC && strstr(mixq_last_error(), "layer 1"));
    c->val[81 + 3 * 9 + 3] = 1;
    memset(c->ok + 81, 0, 81);
    CHECK(mq_mck_solve(&c->p, pick, &r) == MIXQ_ERR_ARG && strstr(mixq_last_error(), "no allowed choice"));
    /* each limit reachable alone, not together; the relaxation is feasible, the integers not */
    {
        const double val[6] = {1, 2, 1, 2, 1, 2};
        const double cost[12] = {0, 1, 0, 1, 0, 1, /* metric 0: choice 0 is free */ 1, 0, 1, 0, 1, 0};
        const double lim[2] = {1.5, 1.5};
        const char *const names[2] = {"size", "bitops"};
        mq_mck p = {3, 2, val, NULL, 2, cost, lim, names, 10, 0};
        int pk[3];
        CHECK(mq_mck_solve(&p, pk, &r) == MIXQ_ERR_ARG);
        CHECKF(strstr(mixq_last_error(), "no choice per layer meets every budget at once") &&
               strstr(mixq_last_error(), "size: cheapest reachable 0"), "%s", mixq_last_error());
        const double lim2[2] = {2, 1};
        p.limit = lim2;
        CHECK_OK(mq_mck_solve(&p, pk, &r));
        CHECK(pk[0] + pk[1] + pk[2] == 2 && r.objective == 5);
    }
out:
    if (c) mq_env_free(&c->e);
    free(c);
    mixq_hw_free(hw);
    mixq_model_free(m);
}

/* ---------------------------------------------------------------- searches */

static char *slurp(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return test_slurp(path);
}

static int count_lines(const char *t) {
    int n = 0;
    for (const char *p = t; p && *p; p++) n += *p == '\n';
    return n;
}

static void short_cfg(mixq_search_config *c) {
    mixq_search_config_default(c);
    c->agent = "hawq";
    c->hw = "bismo_edge"; /* lenet5's cheapest reachable latency: 0.668 x W8A8 */
    c->budget = "latency=0.8";
    c->sweep = 3;
    c->hessian_images = 64;
    c->hessian_probes = 12;
    c->eval_images = 300;
    c->calib_images = 64;
    c->val_images = 1000;
    c->final_epochs = 0;
}

static void count_phases(const mixq_search_progress *p, void *user) {
    int *n = user;
    n[0] += !strcmp(p->phase, "hessian");
    n[1] += !strcmp(p->phase, "search");
}

/* sweep.csv's budget and latency ratio of row i (1-based), 0 if absent */
static int sweep_row(const char *t, int i, double *budget, double *lat, double *acc) {
    const char *p = t;
    for (int k = 0; k < i && p; k++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
    if (!p || !*p) return 0;
    int ep, opt, bins;
    double omega, ilp;
    char metric[16];
    return sscanf(p, "%d,%15[a-z],%lf,%lf,%d,%d,%lf,%lf,%lf", &ep, metric, budget, &omega, &opt, &bins, &ilp, acc,
                  lat) == 9;
}

/* The records of lenet5's evals.jsonl (text ev), each checked to give every layer 3- or 5-bit
 * activations (--a-bit-set 3,5), except the first and last when pinned (8 bits): their count. */
static int aset_records(const char *ev, int pinned) {
    int n = 0;
    for (const char *p = ev ? strstr(ev, "\"a\": [") : NULL; p; p = strstr(p + 1, "\"a\": [")) {
        int v[5];
        CHECK(sscanf(p, "\"a\": [%d,%d,%d,%d,%d]", &v[0], &v[1], &v[2], &v[3], &v[4]) == 5);
        for (int l = 0; l < 5; l++) {
            const int end = pinned && (l == 0 || l == 4);
            CHECKF(end ? v[l] == 8 : v[l] == 3 || v[l] == 5, "layer %d: %d-bit activations", l, v[l]);
        }
        n++;
    }
    return n;
}

/* A sweep of budgets: each candidate within its own budget, the last at the run's; the traces
 * are cached and reused on resume; the same at 1 and 2 threads */
static void test_hawq_search(void) {
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    short_cfg(&c);
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/hawq_a", test_tmpdir());
    snprintf(b, sizeof b, "%s/hawq_b", test_tmpdir());
    mixq_search_result ra, rb;
    int calls[2] = {0, 0};
    const int threads = mixq_get_threads();
    CHECK_OK(mixq_set_threads(2));
    CHECK_OK(mixq_search(model, "fashion-mnist", &c, a, 0, count_phases, calls, &ra));
    CHECK(calls[0] >= 10 && calls[0] <= 13 && calls[1] == 3); /* probes 1..12 (fewer if it converged) */
    CHECK(ra.fits && ra.ratio[0] <= 0.8 + 1e-9 && ra.layers == 5 && ra.candidates >= 1 && ra.candidates <= 3);
    CHECK(ra.episodes == ra.candidates);
    char *sw = slurp(a, "sweep.csv"), *ev = slurp(a, "evals.jsonl"), *hj = slurp(a, "hessian.json");
    CHECK(sw && ev && hj);
    CHECK(count_lines(sw) == 4 && count_lines(ev) == ra.candidates);
    double prev = 0;
    for (int i = 1; i <= 3; i++) {
        double bud = 0, lat = 1e9, acc = -1;
        CHECKF(sweep_row(sw, i, &bud, &lat, &acc), "sweep.csv row %d", i);
        CHECKF(lat <= bud + 1e-6 && bud > prev, "row %d: budget %.6f, latency %.6f", i, bud, lat);
        if (i == 1) CHECK(bud > 0.6 && bud < 0.7); /* the cheapest reachable, 0.668 */
        if (i == 3) CHECK(fabs(bud - 0.8) < 1e-6);
        prev = bud;
    }
    CHECK(hj && strstr(hj, "\"trace_per_weight\"") && strstr(hj, "\"act_rel_err\"") && strstr(hj, "\"settings\""));
    /* resume: the traces come from hessian.json, the candidates from the cache */
    calls[0] = calls[1] = 0;
    CHECK_OK(mixq_search(model, "fashion-mnist", &c, a, 1, count_phases, calls, &rb));
    CHECK(calls[0] == 0 && calls[1] == 3);
    CHECK(rb.candidates == ra.candidates && rb.best_val_accuracy == ra.best_val_accuracy);
    char *ev2 = slurp(a, "evals.jsonl");
    CHECK(ev2 && ev && !strcmp(ev, ev2));
    free(ev2);
    /* a changed setting is refused by name */
    c.sweep = 4;
    CHECK(mixq_search(model, "fashion-mnist", &c, a, 1, NULL, NULL, &rb) == MIXQ_ERR_STATE);
    CHECK(strstr(mixq_last_error(), "sweep") != NULL);
    c.sweep = 3;
    /* one thread: the same traces, candidates and scores */
    CHECK_OK(mixq_set_threads(1));
    CHECK_OK(mixq_search(model, "fashion-mnist", &c, b, 0, NULL, NULL, &rb));
    char *evb = slurp(b, "evals.jsonl"), *hjb = slurp(b, "hessian.json");
    CHECK(evb && ev && !strcmp(ev, evb));
    const char *la = hj ? strstr(hj, "\"layers\"") : NULL, *lb = hjb ? strstr(hjb, "\"layers\"") : NULL;
    CHECK(la && lb && !strcmp(la, lb));
    CHECK_OK(mixq_set_threads(threads));
    free(sw), free(ev), free(hj), free(evb), free(hjb);
    /* --a-bit-set 3,5: every searched layer's activations take one of those widths (the pinned
     * ends 8), and config.json records the set */
    char d[1100];
    snprintf(d, sizeof d, "%s/hawq_aset", test_tmpdir());
    c.a_bit_set[0] = 3, c.a_bit_set[1] = 5, c.n_a_bit_set = 2;
    CHECKF(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &rb) == MIXQ_OK, "%s", mixq_last_error());
    char *eva = slurp(d, "evals.jsonl"), *conf = slurp(d, "config.json");
    CHECK(conf && strstr(conf, "\"a_bit_set\": [3, 5], \"hessian_images\""));
    const int n = aset_records(eva, 1);
    CHECK(n == rb.candidates && n >= 1);
    free(eva), free(conf);
    /* widths out of order, or outside --bits */
    c.a_bit_set[0] = 5, c.a_bit_set[1] = 3;
    snprintf(d, sizeof d, "%s/hawq_aset_bad", test_tmpdir());
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &rb) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "hawq: a_bit_set must list distinct widths in ascending order") != NULL, "%s",
           mixq_last_error());
    c.a_bit_set[0] = 1, c.a_bit_set[1] = 3;
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &rb) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "hawq: --a-bit-set width 1 is outside --bits 2..8") != NULL, "%s",
           mixq_last_error());
}

static void test_hawq_errors(void) {
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    mixq_search_result r;
    char d[1100];
    /* a budget below the cheapest reachable */
    short_cfg(&c);
    c.budget = "latency=0.5";
    snprintf(d, sizeof d, "%s/hawq_e1", test_tmpdir());
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "cannot be met") && strstr(mixq_last_error(), "0.668 x W8A8"));
    /* a sweep starting below it, or above the budget */
    short_cfg(&c);
    c.sweep_from = 0.5;
    c.hessian_probes = 2;
    snprintf(d, sizeof d, "%s/hawq_e2", test_tmpdir());
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "cheapest reachable") && strstr(mixq_last_error(), "0.668 x W8A8") &&
           strstr(mixq_last_error(), "--sweep-from 0.669"), "%s", mixq_last_error());
    c.sweep_from = 0.9;
    snprintf(d, sizeof d, "%s/hawq_e3", test_tmpdir());
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "above the budget") != NULL);
    /* --sweep belongs to hawq */
    short_cfg(&c);
    c.agent = "random";
    CHECK(mixq_search(model, "fashion-mnist", &c, "/tmp/never", 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "--agent hawq") != NULL);
    short_cfg(&c);
    c.hessian_probes = 0;
    CHECK(mixq_search(model, "fashion-mnist", &c, "/tmp/never", 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    /* accuracy mode: a sweep up to W8A8's cost, the cheapest candidate within the drop kept */
    short_cfg(&c);
    c.accuracy_mode = 1;
    c.max_drop = 100;
    c.budget = "";
    c.sweep = 4;
    c.hessian_probes = 2;
    snprintf(d, sizeof d, "%s/hawq_acc", test_tmpdir());
    CHECKF(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_OK, "%s", mixq_last_error());
    CHECK(r.ratio[0] > 0.6 && r.ratio[0] < 0.7); /* every drop allowed: the cheapest reachable */
}

/* The n-th comma-separated field (0-based) of sweep.csv's row i (1-based) as a string. */
static int sweep_field(const char *t, int i, int n, char *out, size_t cap) {
    const char *p = t;
    for (int k = 0; k < i && p; k++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
    if (!p || !*p) return 0;
    for (int k = 0; k < n && p; k++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
    if (!p) return 0;
    size_t len = strcspn(p, ",\n");
    if (len >= cap) return 0;
    memcpy(out, p, len);
    out[len] = 0;
    return 1;
}

/* --kernel-wise on a target where kernel widths pay (bitops): every budget's objective at or
 * below the layer-wise programme's (its choices are among the kernel-wise ones), per-kernel
 * candidates whose exact cost fits, the best model carrying the record's kernel widths, an
 * identical resume, a damaged "kw" refused, and the targets and agents it is not for */
static void test_hawq_kernel_wise(void) {
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    short_cfg(&c);
    c.hw = "bitops";
    c.budget = "bitops=0.3";
    c.pin_ends = 0;
    c.sweep = 3;
    c.sweep_from = 0.2;
    c.kernel_wise = 1;
    char a[1100], path[1200];
    snprintf(a, sizeof a, "%s/hawq_kw", test_tmpdir());
    mixq_search_result ra, rb;
    CHECKF(mixq_search(model, "fashion-mnist", &c, a, 0, NULL, NULL, &ra) == MIXQ_OK, "%s", mixq_last_error());
    CHECK(ra.fits && ra.ratio[3] <= 0.3 + 1e-9);
    char *sw = slurp(a, "sweep.csv"), *ev = slurp(a, "evals.jsonl"), *bp = slurp(a, "best_policy.json");
    CHECK(sw && ev && bp && strstr(sw, ",granularity,omega_layerwise\n"));
    int kernel_rows = 0;
    for (int i = 1; sw && i <= 3; i++) {
        char om[64], oml[64], gran[16], bud[64], ratio[64];
        CHECKF(sweep_field(sw, i, 3, om, sizeof om) && sweep_field(sw, i, 13, oml, sizeof oml) &&
               sweep_field(sw, i, 12, gran, sizeof gran) && sweep_field(sw, i, 2, bud, sizeof bud) &&
               sweep_field(sw, i, 11, ratio, sizeof ratio), "sweep.csv row %d", i);
        CHECKF(atof(om) <= atof(oml) * (1 + 1e-9), "row %d: kernel-wise %s above layer-wise %s", i, om, oml);
        CHECKF(atof(ratio) <= atof(bud) + 1e-6, "row %d: bitops %s over the budget %s", i, ratio, bud);
        kernel_rows += !strcmp(gran, "kernel");
        if (!strcmp(gran, "kernel")) CHECKF(atof(om) < atof(oml), "row %d: per-kernel without a gain", i);
    }
    CHECKF(kernel_rows >= 2, "%d of 3 budgets chose per-kernel widths", kernel_rows);
    CHECK(ev && strstr(ev, "\"kw\": [[") && bp && strstr(bp, "\"kernel\""));
    /* best.mixq's kernel widths: its BitOps over W8A8's, costed per kernel, are the run's ratio */
    mixq_model *m = NULL, *fm = NULL;
    mixq_hw *hw = NULL;
    snprintf(path, sizeof path, "%s/best.mixq", a);
    CHECK_OK(mixq_model_load(path, &m));
    CHECK_OK(mixq_model_load(model, &fm));
    CHECK_OK(mixq_hw_load("bitops", &hw));
    double got = 0, w8 = 0;
    int mixed = 0;
    for (int i = 0; m && fm && hw && i < mixq_model_quant_layers(m); i++) {
        mixq_layer_quant lq;
        mixq_hw_layer hl;
        int node;
        CHECK_OK(mixq_model_quant_layer(m, i, &lq));
        CHECK_OK(mixq_model_hw_layer(fm, i, &hl, &node));
        CHECK(node == lq.node && lq.kernels == hl.out_c);
        mixq_cost ck, c8;
        CHECK_OK(mixq_hw_cost_kernels(hw, &hl, lq.kernel_bits, lq.a_bits, &ck));
        CHECK_OK(mixq_hw_cost(hw, &hl, 8, 8, &c8));
        got += ck.bitops, w8 += c8.bitops;
        for (int k = 1; k < lq.kernels; k++) mixed |= lq.kernel_bits[k] != lq.kernel_bits[0];
    }
    CHECKF(w8 > 0 && fabs(got / w8 - ra.ratio[3]) < 1e-9, "BitOps %.9f x W8A8, the run says %.9f", got / w8,
           ra.ratio[3]);
    CHECK(mixed);
    mixq_model_free(m), mixq_model_free(fm), mixq_hw_free(hw);
    /* resume: the per-kernel records come back from evals.jsonl, nothing is scored again */
    CHECK_OK(mixq_search(model, "fashion-mnist", &c, a, 1, NULL, NULL, &rb));
    char *ev2 = slurp(a, "evals.jsonl");
    CHECK(ev2 && ev && !strcmp(ev, ev2) && rb.candidates == ra.candidates);
    /* a record whose "kw" lost a layer, or whose "w" is not its kernels' mean */
    if (ev) {
        snprintf(path, sizeof path, "%s/evals.jsonl", a);
        char *bad = strdup(ev), *kw = strstr(bad, "\"kw\": [[");
        if (kw) memmove(kw + 7, strstr(kw, "],[") + 2, strlen(strstr(kw, "],[") + 2) + 1); /* drop layer 0 */
        FILE *f = fopen(path, "w");
        if (f) fputs(bad, f), fclose(f);
        CHECK(mixq_search(model, "fashion-mnist", &c, a, 1, NULL, NULL, &rb) == MIXQ_ERR_FORMAT);
        CHECKF(strstr(mixq_last_error(), "field 'kw' must be an array of 5 arrays"), "%s", mixq_last_error());
        free(bad);
        bad = strdup(ev);
        char *w = strstr(bad, "{\"episode\": 1, \"w\": [");
        kw = w ? strstr(w, "\"kw\": [[") : NULL;
        if (kw) { /* the first kernel of layer 0 to 8 bits: the mean moves or the line disagrees */
            kw[8] = kw[8] == '8' ? '2' : '8';
        }
        f = fopen(path, "w");
        if (f) fputs(bad, f), fclose(f);
        CHECK(mixq_search(model, "fashion-mnist", &c, a, 1, NULL, NULL, &rb) != MIXQ_OK);
        free(bad);
    }
    /* with --a-bit-set 3,5 the kernel-wise programme keeps every layer's activations in the set
     * (no pinned ends here) while its kernels still mix widths */
    c.a_bit_set[0] = 3, c.a_bit_set[1] = 5, c.n_a_bit_set = 2;
    snprintf(a, sizeof a, "%s/hawq_kw_aset", test_tmpdir());
    CHECKF(mixq_search(model, "fashion-mnist", &c, a, 0, NULL, NULL, &rb) == MIXQ_OK, "%s", mixq_last_error());
    char *eva = slurp(a, "evals.jsonl");
    const int n = aset_records(eva, 0);
    int kwn = 0;
    for (const char *p = eva ? strstr(eva, "\"kw\": [[") : NULL; p; p = strstr(p + 1, "\"kw\": [[")) kwn++;
    CHECKF(n == rb.candidates && n >= 1 && kwn >= 1, "%d records of %d candidates, %d per kernel", n, rb.candidates,
           kwn);
    CHECK(rb.fits && rb.ratio[3] <= 0.3 + 1e-9);
    free(eva);
    /* not for bit-parallel weights, nor for another agent */
    short_cfg(&c);
    c.kernel_wise = 1;
    c.hw = "stripes";
    CHECK(mixq_search(model, "fashion-mnist", &c, "/tmp/never", 0, NULL, NULL, &rb) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "bit-parallel") && strstr(mixq_last_error(), "stripes"), "%s", mixq_last_error());
    short_cfg(&c);
    c.kernel_wise = 1;
    c.sweep = 0;
    c.agent = "haq";
    CHECK(mixq_search(model, "fashion-mnist", &c, "/tmp/never", 0, NULL, NULL, &rb) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "--kernel-wise is the hawq agent's") != NULL);
    free(sw), free(ev), free(bp), free(ev2);
}

int main(void) {
    TEST_RUN(test_hawq_search);
    TEST_RUN(test_hawq_kernel_wise);
    TEST_RUN(test_hawq_errors);
    TEST_RUN(test_weight_err);
    TEST_RUN(test_pattern_replay);
    TEST_RUN(test_ilp_bruteforce);
    TEST_RUN(test_ilp_errors);
    TEST_RUN(test_trace_determinism);
    CHECK_OK(mixq_set_threads(1)); /* the tiny fixture nets: one thread has no barriers to wait at */
    TEST_RUN(test_hvp_exact);
    TEST_RUN(test_trace_exact);
    return test_summary();
}
