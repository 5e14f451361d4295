/* AutoQ (src/search/agent_autoq.c) and the kernel-wise wall (src/search/env.c):
 *   1. the kernel-wise cost the search sees (mq_env_cost_kernels) is mixq_hw_cost_kernels's, layer
 *      by layer, on every target that prices kernels;
 *   2. the wall always ends within a reachable budget, and its first step lowers the kernel with
 *      the least error per unit of cost saved (brute force on a linear cost);
 *   3. searches on Fashion-MNIST: the same run at 1 and 2 threads, every record's cost equal to
 *      the per-kernel cost of its widths, the reward against its formula, accuracy mode, a run
 *      killed twice and resumed giving the uninterrupted run's files.
 * The agents' gradients are checked at AutoQ's dimensions in tests/test_ddpg.c. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "hw/hw.h"
#include "search/env.h"
#include "test.h"

/* a lenet5-shaped model with random weights (no data needed) */
static mixq_model *small_model(void) {
    mixq_model_config mc = {"lenet5", 1, 28, 28, 10, 1.0f, 3};
    mixq_model *m = NULL;
    CHECKF(mixq_model_create(&mc, &m) == MIXQ_OK, "%s", mixq_last_error());
    return m;
}

static void random_policy(const mq_env *e, mq_rng *r, int *kb, int *a) {
    for (int l = 0; l < e->L; l++) {
        const int lo = 1 + (int)mq_rng_below(r, 8), hi = lo + (int)mq_rng_below(r, (uint32_t)(9 - lo));
        for (int i = e->koff[l]; i < e->koff[l + 1]; i++) kb[i] = lo + (int)mq_rng_below(r, (uint32_t)(hi - lo + 1));
        a[l] = 1 + (int)mq_rng_below(r, 8);
    }
}

/* ---------------------------------------------------------------- 1. costs */
static void test_kernel_costs(void) {
    mixq_model *m = small_model();
    if (!m) return;
    static const char *const targets[] = {"bismo_edge", "bismo_cloud", "loom", "bitops", "size"};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        mixq_hw *hw = NULL;
        mq_env e;
        memset(&e, 0, sizeof e);
        if (mixq_hw_load(targets[t], &hw) || mq_env_create(m, hw, 0, 1, 8, 0, &e)) {
            CHECKF(0, "%s: %s", targets[t], mixq_last_error());
            mixq_hw_free(hw);
            continue;
        }
        const int NK = e.koff[e.L];
        int *kb = malloc(sizeof(int) * (size_t)NK), a[16];
        mq_rng r;
        mq_rng_seed(&r, 11 + t);
        double worst = 0;
        for (int trial = 0; trial < 40 && kb; trial++) {
            random_policy(&e, &r, kb, a);
            if (trial == 0) /* one layer's kernels all alike: the grid's entry */
                for (int i = e.koff[1]; i < e.koff[2]; i++) kb[i] = 3;
            double got[MQ_NMETRIC], want[MQ_NMETRIC] = {0, 0, 0, 0};
            CHECK_OK(mq_env_cost_kernels(&e, kb, a, got));
            for (int l = 0; l < e.L; l++) {
                mixq_cost c;
                CHECK_OK(mixq_hw_cost_kernels(hw, &e.hl[l], kb + e.koff[l], a[l], &c));
                want[0] += c.latency_s, want[1] += c.energy_j, want[2] += c.size_bits, want[3] += c.bitops;
            }
            for (int k = 0; k < MQ_NMETRIC; k++) {
                const double d = fabs(got[k] - want[k]) / fmax(fabs(want[k]), 1e-300);
                if (d > worst) worst = d;
            }
        }
        printf("  %-11s per-kernel costs vs mixq_hw_cost_kernels: worst rel diff %.2e (40 policies)\n",
               targets[t], worst);
        CHECKF(worst < 1e-12, "%s: %g", targets[t], worst);
        free(kb);
        mq_env_free(&e);
        mixq_hw_free(hw);
    }
    mixq_model_free(m);
}

/* ---------------------------------------------------------------- 2. the wall */
static void test_wall(void) {
    mixq_model *m = small_model();
    if (!m) return;
    static const char *const cases[][2] = {{"bismo_edge", "latency=0.8"}, {"bismo_edge", "latency=0.75,energy=0.9"},
                                           {"loom", "latency=0.9"},       {"bitops", "bitops=0.4"},
                                           {"size", "size=0.3"},          {"bismo_cloud", "energy=0.95"}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        mixq_hw *hw = NULL;
        mq_env e;
        memset(&e, 0, sizeof e);
        if (mixq_hw_load(cases[t][0], &hw) || mq_env_create(m, hw, 0, 2, 8, 1, &e) ||
            mq_env_set_budget(&e, cases[t][1])) {
            CHECKF(0, "%s %s: %s", cases[t][0], cases[t][1], mixq_last_error());
            mq_env_free(&e);
            mixq_hw_free(hw);
            continue;
        }
        const int NK = e.koff[e.L];
        int *kb = malloc(sizeof(int) * (size_t)NK), a[16];
        double(*kerr)[9] = calloc((size_t)NK, sizeof *kerr);
        mq_rng r;
        mq_rng_seed(&r, 5 + t);
        for (int i = 0; i < NK && kerr; i++) {
            const double u = 0.1 + mq_rng_uniform(&r);
            for (int b = 1; b <= 8; b++) kerr[i][b] = u * pow(4, 8 - b);
        }
        int fitted = 0, trials = 60;
        for (int trial = 0; trial < trials && kb && kerr; trial++) {
            random_policy(&e, &r, kb, a);
            for (int i = 0; i < NK; i++) kb[i] = kb[i] < 2 ? 2 : kb[i];
            for (int l = 0; l < e.L; l++) a[l] = a[l] < 2 ? 2 : a[l];
            int fits = 0;
            CHECK_OK(mq_env_wall_kernels(&e, (const double(*)[9])kerr, kb, a, &fits));
            double c[MQ_NMETRIC];
            CHECK_OK(mq_env_cost_kernels(&e, kb, a, c));
            fitted += fits && mq_env_fits_costs(&e, c);
            for (int i = e.koff[0]; i < e.koff[1]; i++) CHECK(kb[i] == 8);
            for (int i = e.koff[e.L - 1]; i < e.koff[e.L]; i++) CHECK(kb[i] == 8);
            CHECK(a[0] == 8 && a[e.L - 1] == 8);
            for (int i = 0; i < NK; i++) CHECK(kb[i] >= 2 && kb[i] <= 8);
        }
        printf("  %-11s %-24s the wall fits %d of %d random policies\n", cases[t][0], cases[t][1], fitted, trials);
        CHECK(fitted == trials);
        free(kb);
        free(kerr);
        mq_env_free(&e);
        mixq_hw_free(hw);
    }
    /* the order: on BitOps (linear in each kernel's width) a budget one step below W8A8 takes
     * exactly one kernel one bit down: the one whose error grows least per BitOp saved */
    mixq_hw *hw = NULL;
    mq_env e;
    memset(&e, 0, sizeof e);
    if (!mixq_hw_load("bitops", &hw) && !mq_env_create(m, hw, 0, 2, 8, 1, &e)) {
        const int NK = e.koff[e.L];
        int *kb = malloc(sizeof(int) * (size_t)NK), a[16];
        double(*kerr)[9] = calloc((size_t)NK, sizeof *kerr);
        mq_rng r;
        mq_rng_seed(&r, 99);
        for (int i = 0; i < NK && kerr; i++)
            for (int b = 1; b <= 8; b++) kerr[i][b] = mq_rng_uniform(&r) * pow(3, 8 - b);
        for (int rep = 0; rep < 3 && kb && kerr; rep++) {
            for (int i = 0; i < NK; i++) kb[i] = 8;
            for (int l = 0; l < e.L; l++) a[l] = 8;
            /* brute force: every single-kernel step's error per BitOp saved */
            int best = -1;
            double best_r = INFINITY, best_save = 0;
            for (int l = 1; l < e.L - 1; l++) {
                const int K = e.koff[l + 1] - e.koff[l];
                const double save = e.grid[l][MQ_M_BITOPS][8][8] - e.grid[l][MQ_M_BITOPS][7][8];
                for (int i = e.koff[l]; i < e.koff[l] + K; i++) {
                    const double q = (kerr[i][7] - kerr[i][8]) / (save / K);
                    if (q < best_r) best_r = q, best = i, best_save = save / K;
                }
            }
            char budget[64];
            snprintf(budget, sizeof budget, "bitops=%.17gops", e.w8a8[MQ_M_BITOPS] - 0.5 * best_save);
            CHECK_OK(mq_env_set_budget(&e, budget));
            int fits = 0;
            CHECK_OK(mq_env_wall_kernels(&e, (const double(*)[9])kerr, kb, a, &fits));
            int moved = 0, which = -1;
            for (int i = 0; i < NK; i++)
                if (kb[i] != 8) moved++, which = i;
            CHECKF(fits && moved == 1 && which == best && kb[which] == 7, "fits %d, %d kernels moved, kernel %d "
                   "(expected %d)", fits, moved, which, best);
            for (int l = 0; l < e.L; l++) CHECK(a[l] == 8);
            /* the next rep: that kernel's error at 7 bits made the worst, another wins */
            if (best >= 0) kerr[best][7] = 1e30;
        }
        free(kb);
        free(kerr);
    } else CHECKF(0, "bitops: %s", mixq_last_error());
    mq_env_free(&e);
    mixq_hw_free(hw);
    mixq_model_free(m);
}

/* ---------------------------------------------------------------- 3. searches (Fashion-MNIST) */

static void aq_cfg(mixq_search_config *c) {
    mixq_search_config_default(c);
    c->agent = "autoq";
    c->hw = "bismo_edge";
    c->budget = "latency=0.8";
    c->episodes = 6;
    c->warmup = 2;
    c->eval_images = 200;
    c->calib_images = 32;
    c->val_images = 500;
    c->final_epochs = 0;
    c->report_every = -1;
    c->rl_batch = 16;
}

/* "key": [ints] of an evals.jsonl line into v (at most n); the count, or -1 */
static int int_array(const char *line, const char *key, int *v, int n) {
    char k[40];
    snprintf(k, sizeof k, "\"%s\": [", key);
    const char *p = strstr(line, k);
    if (!p) return -1;
    p += strlen(k);
    int c = 0;
    while (*p && *p != ']' && c < n) {
        char *end;
        v[c++] = (int)strtol(p, &end, 10);
        if (end == p) return -1;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return c;
}

/* "kw": [[ints], ...] of an evals.jsonl line into v (at most n); the count, or -1 */
static int kernel_array(const char *line, int *v, int n) {
    const char *p = strstr(line, "\"kw\": [");
    if (!p) return -1;
    p += 7;
    int c = 0, depth = 0;
    for (; *p; p++) {
        if (*p == '[') depth++;
        else if (*p == ']') {
            if (--depth < 0) break;
        } else if (*p >= '0' && *p <= '9') {
            char *end;
            if (c == n) return -1;
            v[c++] = (int)strtol(p, &end, 10);
            p = end - 1;
        }
    }
    return c;
}

/* Every record of run dir d: its costs are the per-kernel costs of its widths over W8A8's, and
 * its reward is AutoQ's formula with exponents psi (accuracy mode: with the drop penalty). */
static void check_records(const char *d, const char *hwname, double fp32, const double psi[3], int accuracy_mode,
                          double max_drop, int *kw_records) {
    mixq_model *m = NULL;
    mixq_hw *hw = NULL;
    mq_env e;
    memset(&e, 0, sizeof e);
    if (mixq_model_load(test_lenet5_file(), &m) || mixq_hw_load(hwname, &hw) || mq_env_create(m, hw, 0, 2, 8, 1, &e)) {
        CHECKF(0, "%s", mixq_last_error());
        goto out;
    }
    char *t = test_run_file(d, "evals.jsonl");
    const int NK = e.koff[e.L];
    int *kb = malloc(sizeof(int) * (size_t)NK), w[16], a[16], n = 0;
    *kw_records = 0;
    for (char *line = t; line && *line && kb; n++) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        CHECK(int_array(line, "w", w, 16) == e.L && int_array(line, "a", a, 16) == e.L);
        if (kernel_array(line, kb, NK) == NK) ++*kw_records;
        else
            for (int l = 0; l < e.L; l++)
                for (int i = e.koff[l]; i < e.koff[l + 1]; i++) kb[i] = w[l];
        double c[MQ_NMETRIC];
        CHECK_OK(mq_env_cost_kernels(&e, kb, a, c));
        const char *pl = strstr(line, "\"latency_ratio\": "), *pe = strstr(line, "\"energy_ratio\": "),
                   *pc = strstr(line, "\"acc\": "), *pr = strstr(line, "\"reward\": ");
        CHECK(pl && pe && pc && pr);
        if (!pl || !pe || !pc || !pr) break;
        const double lat = atof(pl + 17), en = atof(pe + 16), acc = atof(pc + 7);
        CHECKF(fabs(lat - c[0] / e.w8a8[0]) < 1e-5 && fabs(en - c[1] / e.w8a8[1]) < 1e-5,
               "record %d: latency %.6f energy %.6f, per-kernel cost %.6f %.6f", n, lat, en, c[0] / e.w8a8[0],
               c[1] / e.w8a8[1]);
        double want = psi[0] * log(acc / fp32) - psi[1] * log(lat) - psi[2] * log(en);
        if (accuracy_mode && fp32 - acc > max_drop) want -= 1 + 0.1 * (fp32 - acc - max_drop);
        /* the record's ratios are rounded in the file: the reward to that precision */
        CHECKF(fabs(atof(pr + 10) - want) < 1e-4 * fmax(1, fabs(want)), "record %d: reward %.8g, formula %.8g", n,
               atof(pr + 10), want);
        line = nl + 1;
    }
    free(kb);
    free(t);
out:
    mq_env_free(&e);
    mixq_hw_free(hw);
    mixq_model_free(m);
}

static void test_search_threads(void) {
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    aq_cfg(&c);
    char d1[1100], d2[1100];
    mixq_search_result r1, r2;
    if (!test_search_thread_pair(model, &c, "t", d1, d2, sizeof d1, &r1, &r2)) return;
    CHECK(r1.fits && r1.ratio[0] <= 0.8 + 1e-9 && r1.candidates + r1.cache_hits == 6);
    CHECK(test_same_run_file(d1, d2, "evals.jsonl") && test_same_run_file(d1, d2, "best_policy.json"));
    CHECK(test_same_run_file(d1, d2, "agent-6.ckpt"));
    char *conf = test_run_file(d1, "config.json");
    CHECK(conf && strstr(conf, "\"agent\": \"autoq\"") && strstr(conf, "\"relabel\": \"hiro\""));
    free(conf);
    const double psi[3] = {10, 0, 0};
    int kw = 0;
    check_records(d1, "bismo_edge", r1.fp32_val_accuracy, psi, 0, 0, &kw);
    printf("  %d records, %d of them per-kernel\n", r1.candidates, kw);
    CHECK(kw >= 1);
    char *best = test_run_file(d1, "best_policy.json");
    CHECK(best != NULL);
    free(best);
}

/* Accuracy mode without a budget: nothing walls, the reward weighs latency and energy in */
static void test_search_accuracy_mode(void) {
    if (test_sanitized()) return; /* the release pass runs it; test_search_threads covers the paths */
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    aq_cfg(&c);
    c.budget = "";
    c.accuracy_mode = 1;
    c.max_drop = 0.5;
    c.episodes = 4;
    c.autoq_psi_lat = 0.7, c.autoq_psi_e = 0.2;
    char d[1100];
    snprintf(d, sizeof d, "%s/acc", test_tmpdir());
    mixq_search_result r;
    CHECKF(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_OK, "%s", mixq_last_error());
    const double psi[3] = {10, 0.7, 0.2};
    int kw = 0;
    check_records(d, "bismo_edge", r.fp32_val_accuracy, psi, 1, 0.5, &kw);
    CHECK(kw >= 1);
}

/* killed twice by SIGKILL through the CLI and resumed: the uninterrupted run's files */
static void test_search_resume(void) {
    if (test_sanitized()) return; /* the release pass runs it (three searches, one through the CLI) */
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    aq_cfg(&c);
    c.episodes = 8;
    char a[1100], b[1100], path[1200];
    mixq_search_result ra, rb;
    const char *cli[] = {"--agent", "autoq", "--hw", "bismo_edge", "--budget", "latency=0.8", "--episodes", "8",
                         "--warmup", "2", "--rl", "batch=16", "--eval-images", "200", "--calib-images", "32", "--val",
                         "500", "--final-epochs", "0", NULL};
    if (!test_kill_resume(model, &c, cli, 3, 5, "agent-8.ckpt", "r", a, b, sizeof a, &ra, &rb)) return;
    CHECK(rb.best_val_accuracy == ra.best_val_accuracy && rb.cache_hits == ra.cache_hits);
    /* a damaged checkpoint is refused with its name */
    snprintf(path, sizeof path, "%s/agent-8.ckpt", b);
    char *ck = test_slurp(path);
    if (ck) {
        test_write_file(path, "MQAUTOQ1 truncated", 18);
        CHECK(mixq_search(model, "fashion-mnist", &c, b, 1, NULL, NULL, &rb) != MIXQ_OK);
        CHECKF(strstr(mixq_last_error(), "agent-8.ckpt") != NULL, "%s", mixq_last_error());
        free(ck);
    }
    /* a target whose weights are bit-parallel is refused */
    aq_cfg(&c);
    c.hw = "stripes";
    snprintf(path, sizeof path, "%s/stripes", test_tmpdir());
    CHECK(mixq_search(model, "fashion-mnist", &c, path, 0, NULL, NULL, &rb) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "bit-parallel") != NULL);
}

int main(void) {
    TEST_RUN(test_kernel_costs);
    TEST_RUN(test_wall);
    TEST_RUN(test_search_threads);
    TEST_RUN(test_search_accuracy_mode);
    TEST_RUN(test_search_resume);
    return test_summary();
}
