/* The ebs agent (src/search/agent_ebs.c):
 *   - the expected cost equals the brute-force sum over every policy weighted by its
 *     probability under the strengths, and its gradient equals finite differences;
 *   - searches (softmax and Gumbel) end within the budget, their records hold the target's
 *     costs; the same seed gives the same files at 1 and 2 threads;
 *   - a sweep killed twice through the CLI and resumed gives the uninterrupted run's files;
 *   - bad settings are refused before any work. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "mixq/mixq.h"
#include "search/search_int.h"
#include "test.h"

static void test_expected_cost(void) {
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 3};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    if (!m) return;
    const char *targets[] = {"bitops", "bismo_edge", "bitfusion"};
    for (int t = 0; t < 3; t++) {
        mixq_hw *hw = NULL;
        mq_env e;
        CHECK_OK(mixq_hw_load(targets[t], &hw));
        CHECK_OK(mq_env_create(m, hw, 0, 2, 8, 1, &e));
        const int wb[3] = {2, 5, 8}, ab[2] = {3, 8};
        CHECK_OK(mq_mix_install(m, 3, wb, 2, ab));
        CHECK_OK(mq_mix_fix(m, 0, 8, 8)); /* pinned, as the agent does */
        const int L = e.L;
        mq_rng r;
        mq_rng_seed(&r, 9 + (uint64_t)t);
        for (int l = 1; l < L; l++) {
            mq_mix_layer *p = mq_mix_get(m, l);
            for (int i = 0; i < p->nw; i++) p->alpha[i] = 2 * mq_rng_uniform(&r) - 1;
            for (int j = 0; j < p->na; j++) p->beta[j] = 2 * mq_rng_uniform(&r) - 1;
        }
        for (int k = 0; k < MQ_NMETRIC; k++) {
            if (!(e.w8a8[k] > 0)) continue;
            /* brute force: every (w, a) choice of every layer, its probability, its cost */
            int combos = 1;
            for (int l = 1; l < L; l++) combos *= 6;
            double want = 0;
            for (int c = 0; c < combos; c++) {
                double pr = 1, cost = e.grid[0][k][8][8];
                int x = c;
                for (int l = 1; l < L; l++, x /= 6) {
                    const mq_mix_layer *p = mq_mix_get(m, l);
                    const int i = x % 6 / 2, j = x % 2;
                    double za = 0, zb = 0;
                    for (int u = 0; u < 3; u++) za += exp(p->alpha[u]);
                    for (int u = 0; u < 2; u++) zb += exp(p->beta[u]);
                    pr *= exp(p->alpha[i]) / za * exp(p->beta[j]) / zb;
                    cost += e.grid[l][k][wb[i]][ab[j]];
                }
                want += pr * cost;
            }
            want /= e.w8a8[k];
            const double got = mq_ebs_expected_cost(m, &e, k, 0, NULL, NULL);
            CHECKF(fabs(got - want) <= 1e-6 * want, "%s %s: expected cost %.9g, brute force %.9g", targets[t],
                   mq_metric_names[k], got, want);
            /* its gradient against central differences (double arithmetic: tight) */
            double(*da)[MQ_MIX_MAXB] = calloc((size_t)L, sizeof *da), (*db)[MQ_MIX_MAXB] = calloc((size_t)L, sizeof *db);
            if (!da || !db) return;
            mq_ebs_expected_cost(m, &e, k, 1, da, db);
            double worst = 0, mag = 0;
            for (int l = 1; l < L; l++) {
                mq_mix_layer *p = mq_mix_get(m, l);
                for (int v = 0; v < 5; v++) {
                    float *x = v < 3 ? &p->alpha[v] : &p->beta[v - 3];
                    const float keep = *x, h = 1e-3f;
                    *x = keep + h;
                    const double up = mq_ebs_expected_cost(m, &e, k, 0, NULL, NULL);
                    *x = keep - h;
                    const double dn = mq_ebs_expected_cost(m, &e, k, 0, NULL, NULL);
                    *x = keep;
                    const double fd = (up - dn) / (2.0 * ((double)(keep + h) - keep)), an = v < 3 ? da[l][v] : db[l][v - 3];
                    worst = fmax(worst, fabs(fd - an));
                    mag = fmax(mag, fabs(an));
                }
            }
            CHECKF(mag > 0 && worst <= 1e-4 * mag, "%s %s: gradient off by %.3g of %.3g", targets[t], mq_metric_names[k],
                   worst, mag);
            free(da), free(db);
        }
        mq_env_free(&e);
        mixq_hw_free(hw);
    }
    mixq_model_free(m);
}

static void eb_cfg(mixq_search_config *c) {
    mixq_search_config_default(c);
    c->n_bit_set = 0; /* ebs's default widths, 2,3,4,5,6,8 (config.json checked below) */
    c->agent = "ebs";
    c->hw = "bitops";
    c->budget = "bitops=0.5";
    c->ebs_images = 1024;
    c->batch = 64;
    c->eval_images = 200;
    c->calib_images = 64;
    c->val_images = 500;
    c->final_epochs = 0;
    c->report_every = -1;
}

static void test_search_threads(void) {
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    eb_cfg(&c);
    c.sweep = 2;
    char d1[1100], d2[1100];
    mixq_search_result r1, r2;
    if (!test_search_thread_pair(model, &c, "t", d1, d2, sizeof d1, &r1, &r2)) return;
    CHECK(r1.fits && r1.ratio[MQ_M_BITOPS] <= 0.5 + 1e-9);
    CHECK(test_same_run_file(d1, d2, "evals.jsonl") && test_same_run_file(d1, d2, "best_policy.json"));
    char ev[1200];
    snprintf(ev, sizeof ev, "%s/evals.jsonl", d1);
    CHECK(test_count_lines(ev) >= 1 && test_count_lines(ev) <= 4); /* per search the argmax and the filled policy */
    char *conf = test_run_file(d1, "config.json");
    CHECK(conf && strstr(conf, "\"agent\": \"ebs\"") && strstr(conf, "\"mixing\": \"softmax\"") &&
          strstr(conf, "\"bit_set\": [2, 3, 4, 5, 6, 8]"));
    free(conf);
    printf("  softmax: BitOps %.3f x W8A8, val %.2f %% (fp32 %.2f %%)\n", r1.ratio[MQ_M_BITOPS], r1.best_val_accuracy,
           r1.fp32_val_accuracy);
    /* Gumbel, on a hardware model */
    eb_cfg(&c);
    c.ebs_gumbel = 1;
    c.hw = "bismo_edge";
    c.budget = "latency=0.75";
    snprintf(d1, sizeof d1, "%s/g1", test_tmpdir());
    CHECKF(mixq_search(model, "fashion-mnist", &c, d1, 0, NULL, NULL, &r1) == MIXQ_OK, "%s", mixq_last_error());
    CHECK(r1.fits && r1.ratio[MQ_M_LATENCY] <= 0.75 + 1e-9);
    printf("  gumbel on bismo_edge: latency %.3f x W8A8, val %.2f %%\n", r1.ratio[MQ_M_LATENCY], r1.best_val_accuracy);
}

/* a sweep of 3 searches killed twice by SIGKILL through the CLI and resumed */
static void test_search_resume(void) {
    if (test_sanitized()) return; /* the release pass runs it */
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    eb_cfg(&c);
    c.sweep = 3;
    char a[1100], b[1100], path[1200];
    mixq_search_result ra, rb;
    const char *cli[] = {"--agent", "ebs", "--hw", "bitops", "--budget", "bitops=0.5", "--sweep", "3", "--ebs",
                         "images=1024", "--batch", "64", "--eval-images", "200", "--calib-images", "64", "--val",
                         "500", "--final-epochs", "0", NULL};
    if (!test_kill_resume(model, &c, cli, 1, 2, "agent-3.ckpt", "r", a, b, sizeof a, &ra, &rb)) return;
    CHECK(rb.best_val_accuracy == ra.best_val_accuracy);
    /* a damaged checkpoint is refused with its name */
    snprintf(path, sizeof path, "%s/agent-3.ckpt", b);
    test_write_file(path, "EBS1", 4);
    CHECK(mixq_search(model, "fashion-mnist", &c, b, 1, NULL, NULL, &rb) != MIXQ_OK);
    CHECKF(strstr(mixq_last_error(), "agent-3.ckpt") != NULL, "%s", mixq_last_error());
}

/* the settings refused, and --a-bit-set */
static void test_settings(void) {
    if (!test_need_fmnist()) return;
    const char *model = test_lenet5_file();
    if (!model) return;
    mixq_search_config c;
    mixq_search_result r;
    char d[1100];
    snprintf(d, sizeof d, "%s/err", test_tmpdir());
    eb_cfg(&c);
    c.accuracy_mode = 1;
    c.budget = "";
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "ebs searches under a budget") != NULL, "%s", mixq_last_error());
    eb_cfg(&c);
    c.b_min = 3;
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "outside --bits 3..8") != NULL, "%s", mixq_last_error());
    eb_cfg(&c);
    c.sweep = 2;
    c.sweep_from = 0.9; /* above the budget */
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "--sweep-from 0.9") != NULL, "%s", mixq_last_error());
    /* --a-bit-set: 1-bit weights allowed, activations of 2 bits or more, under a budget tight
     * enough that the wall (or the cheapest policy) would take activations to 1 bit without it */
    snprintf(d, sizeof d, "%s/abits", test_tmpdir());
    eb_cfg(&c);
    c.b_min = 1;
    c.bit_set[0] = 1, c.bit_set[1] = 2, c.bit_set[2] = 4, c.bit_set[3] = 8, c.n_bit_set = 4;
    c.a_bit_set[0] = 2, c.a_bit_set[1] = 4, c.a_bit_set[2] = 8, c.n_a_bit_set = 3;
    c.budget = "bitops=0.33"; /* the cheapest policy (W1A2, ends 8/8): 0.307 */
    CHECKF(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_OK, "%s", mixq_last_error());
    CHECK(r.fits && r.ratio[MQ_M_BITOPS] <= 0.33 + 1e-9);
    char *conf = test_run_file(d, "config.json");
    CHECK(conf && strstr(conf, "\"bit_set\": [1, 2, 4, 8], \"a_bit_set\": [2, 4, 8]"));
    free(conf);
    /* every scored policy: activations of 2 bits or more (the wall steps one bit at a time, so a
     * walled width may fall between the candidates, never under the lowest) */
    char *ev = test_run_file(d, "evals.jsonl");
    int lines = 0;
    for (const char *p = ev; p && (p = strstr(p, "\"w\": [")) != NULL; lines++) {
        const char *q = strstr(p, "\"a\": [");
        CHECK(q != NULL);
        if (!q) break;
        for (const char *t = q + 6; *t && *t != ']'; t++)
            if (*t >= '0' && *t <= '9') CHECKF(*t >= '2' && *t <= '8', "activation width %c in %.80s", *t, q);
        p = q;
    }
    free(ev);
    CHECK(lines >= 1);
    printf("  a-bit-set 2,4,8: %d policies, BitOps %.3f x W8A8, val %.2f %%\n", lines, r.ratio[MQ_M_BITOPS],
           r.best_val_accuracy);
    /* a budget below the cheapest policy with 2-bit activations names that policy */
    eb_cfg(&c);
    c.b_min = 1;
    c.bit_set[0] = 1, c.bit_set[1] = 8, c.n_bit_set = 2;
    c.a_bit_set[0] = 2, c.a_bit_set[1] = 8, c.n_a_bit_set = 2;
    c.budget = "bitops=0.25";
    snprintf(d, sizeof d, "%s/abits2", test_tmpdir());
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "W1A2 elsewhere") != NULL, "%s", mixq_last_error());
    /* widths outside --bits, and the option on another agent */
    eb_cfg(&c);
    c.a_bit_set[0] = 1, c.a_bit_set[1] = 8, c.n_a_bit_set = 2;
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "--a-bit-set width 1 is outside --bits 2..8") != NULL, "%s", mixq_last_error());
    /* --bit-set and --a-bit-set by the one width check: too few, out of order, outside --bits */
    static const struct {
        int w[3], n, a;
        const char *msg;
    } bad[] = {{{4}, 1, 0, "ebs: --bit-set has 1 width; hint: 2 to 8"},
               {{4, 2}, 2, 0, "ebs: bit_set must list distinct widths in ascending order (width 2 is 2 after 4)"},
               {{2, 9}, 2, 0, "ebs: --bit-set width 9 is outside --bits 2..8"},
               {{3}, 1, 1, "ebs: --a-bit-set has 1 width; hint: 2 to 8"},
               {{3, 3}, 2, 1, "ebs: a_bit_set must list distinct widths in ascending order (width 2 is 3 after 3)"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        eb_cfg(&c);
        int *w = bad[i].a ? c.a_bit_set : c.bit_set;
        for (int k = 0; k < bad[i].n; k++) w[k] = bad[i].w[k];
        *(bad[i].a ? &c.n_a_bit_set : &c.n_bit_set) = bad[i].n;
        CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
        CHECKF(strstr(mixq_last_error(), bad[i].msg) != NULL, "case %zu: %s", i, mixq_last_error());
    }
    eb_cfg(&c);
    c.agent = "haq";
    c.a_bit_set[0] = 2, c.a_bit_set[1] = 8, c.n_a_bit_set = 2;
    CHECK(mixq_search(model, "fashion-mnist", &c, d, 0, NULL, NULL, &r) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "the ebs and hawq agents'") != NULL, "%s", mixq_last_error());
}

int main(void) {
    TEST_RUN(test_expected_cost);
    TEST_RUN(test_search_threads);
    TEST_RUN(test_search_resume);
    TEST_RUN(test_settings);
    return test_summary();
}
