/* HAQ's DDPG agent (src/search/ddpg.c): gradients against central differences, the exploration
 * sampler (truncated normal moments), learning a 4-step bandit-like episodic task, determinism,
 * checkpoint round trip and bad checkpoints. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "search/ddpg.h"
#include "test.h"

static mq_ddpg *make(int state_dim, int hidden, int batch, int rmsize, int warmup, uint64_t seed) {
    mq_ddpg_config c;
    mq_ddpg_config_default(&c, state_dim, 4);
    c.hidden = hidden;
    c.batch = batch;
    c.rmsize = rmsize;
    c.warmup = warmup;
    c.seed = seed;
    mq_ddpg *d = NULL;
    mixq_status st = mq_ddpg_create(&c, &d);
    CHECKF(st == MIXQ_OK && d, "create: %s", mixq_last_error());
    return d;
}

static double norm2(const float *g, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

/* ---------------------------------------------------------------- 1. gradients */
/* Max |fd - analytic| over the vector, relative to max(max|analytic|, max|fd|). which: 0 actor
 * (actor loss), 1 critic (critic loss). */
static double fd_check(mq_ddpg *d, int which, int n, const float *S, const float *A,
                       const float *Y, const float *analytic, float eps) {
    long np;
    float *p = mq_ddpg_debug_params(d, which, &np);
    double worst = 0, scale = 0;
    for (long i = 0; i < np; i++) {
        /* at eps and eps / 4, the closer: a ReLU kink within eps of the point spoils one
         * difference but rarely both (a wrong gradient fails both) */
        double e = INFINITY, fd = 0;
        for (int k = 0; k < 2; k++) {
            const float h = k ? eps / 4 : eps;
            float old = p[i];
            float hi = old + h, lo = old - h;
            double lp, lm;
            p[i] = hi;
            CHECK_OK(mq_ddpg_debug_grads(d, n, S, A, Y, which ? &lp : NULL, NULL, which ? NULL : &lp,
                                         NULL));
            p[i] = lo;
            CHECK_OK(mq_ddpg_debug_grads(d, n, S, A, Y, which ? &lm : NULL, NULL, which ? NULL : &lm,
                                         NULL));
            p[i] = old;
            const double f = (lp - lm) / ((double)hi - (double)lo);
            if (fabs(f - analytic[i]) < e) e = fabs(f - analytic[i]), fd = f;
        }
        if (!(e <= worst)) worst = e;
        if (fabs(fd) > scale) scale = fabs(fd);
        if (fabs((double)analytic[i]) > scale) scale = fabs((double)analytic[i]);
    }
    return scale > 0 ? worst / scale : INFINITY;
}

/* at state size SD: 6, HAQ's and AutoQ's high-level agent's 10 (MQ_STATE_DIM), AutoQ's
 * low-level agent's 17 (agent_autoq.c AQ_LS) */
enum { SD_MAX = 17 };
static void gradients_at(const int SD) {
    enum { H = 16, N = 8 };
    printf("  state size %d:\n", SD);
    mq_ddpg *d = make(SD, H, N, 64, 0, 7);
    if (!d) return;
    float S[N * SD_MAX], A[N], Y[N];
    test_fill(S, N * SD, 1, -1.0f, 1.0f);
    test_fill(A, N, 2, 0.0f, 1.0f);
    test_fill(Y, N, 3, -1.0f, 1.0f);
    long na, nc;
    mq_ddpg_debug_params(d, 0, &na);
    mq_ddpg_debug_params(d, 1, &nc);
    CHECK(na == SD * H + H + H * H + H + H + 1);
    CHECK(nc == SD * H + 4 * H + H * H + H + 1);
    float *ga = malloc(sizeof(float) * (size_t)na), *gc = malloc(sizeof(float) * (size_t)nc);
    float *ga0 = malloc(sizeof(float) * (size_t)na), *gc0 = malloc(sizeof(float) * (size_t)nc);
    if (!ga || !gc || !ga0 || !gc0) {
        CHECK(!"malloc");
        goto out;
    }
    double cl, al;
    CHECK_OK(mq_ddpg_debug_grads(d, N, S, A, Y, &cl, gc, &al, ga));
    CHECKF(isfinite(cl) && cl > 0 && isfinite(al), "losses %g %g", cl, al);
    double nca = norm2(gc, nc), naa = norm2(ga, na);
    printf("  gradient norms: critic %.4g actor %.4g\n", nca, naa);
    CHECKF(nca > 1e-3 && naa > 1e-5, "gradient norms must be non-zero: critic %g actor %g", nca,
           naa);
    /* Every layer of both networks gets gradient (the actor's through the critic's dQ/da). */
    {
        long aoff[] = {0, SD * H, SD * H + H, SD * H + H + H * H, SD * H + 2 * H + H * H, na - 1,
                       na};
        for (int l = 0; l < 6; l++)
            CHECKF(norm2(ga + aoff[l], aoff[l + 1] - aoff[l]) > 0, "actor block %d all zero", l);
        long coff[] = {0,          SD * H,           SD * H + H,           SD * H + 2 * H,
                       SD * H + 3 * H, SD * H + 3 * H + H * H, SD * H + 4 * H + H * H, nc - 1, nc};
        for (int l = 0; l < 8; l++)
            CHECKF(norm2(gc + coff[l], coff[l + 1] - coff[l]) > 0, "critic block %d all zero", l);
    }
    /* The hooks do not change anything: a second call gives the same bits. */
    CHECK_OK(mq_ddpg_debug_grads(d, N, S, A, Y, NULL, gc0, NULL, ga0));
    CHECK(memcmp(gc, gc0, sizeof(float) * (size_t)nc) == 0);
    CHECK(memcmp(ga, ga0, sizeof(float) * (size_t)na) == 0);
    double ec = fd_check(d, 1, N, S, A, Y, gc, 1e-3f);
    double ea = fd_check(d, 0, N, S, A, Y, ga, 1e-3f);
    printf("  finite differences (eps 1e-3 and 2.5e-4, float): critic rel err %.2e, actor rel err %.2e\n", ec,
           ea);
    CHECKF(ec < 1e-2, "critic gradient rel err %g", ec);
    CHECKF(ea < 1e-2, "actor gradient rel err %g", ea);
    /* The check is not vacuous: an all-zero or sign-flipped gradient fails it. */
    memset(gc0, 0, sizeof(float) * (size_t)nc);
    CHECK(fd_check(d, 1, N, S, A, Y, gc0, 1e-3f) > 0.5);
    for (long i = 0; i < na; i++) ga0[i] = -ga[i];
    CHECK(fd_check(d, 0, N, S, A, Y, ga0, 1e-3f) > 0.5);
out:
    free(ga);
    free(gc);
    free(ga0);
    free(gc0);
    mq_ddpg_free(d);
}

static void test_gradients(void) {
    gradients_at(6);
    gradients_at(10);
    gradients_at(SD_MAX);
}

/* ---------------------------------------------------------------- exploration sampler */
static void test_act(void) {
    enum { SD = 10 };
    mq_ddpg *d = make(SD, 32, 8, 64, 5, 11);
    if (!d) return;
    float s[SD];
    test_fill(s, SD, 4, 0.0f, 1.0f);
    float mu = mq_ddpg_act(d, s, 0, 0);
    CHECK(mu > 0.0f && mu < 1.0f);
    CHECK(mq_ddpg_act(d, s, 100, 0) == mu); /* greedy: no noise, no episode dependence */
    /* Warmup (episode <= warmup): uniform on [0,1). */
    double m = 0;
    int nw = 4000;
    for (int i = 0; i < nw; i++) {
        float a = mq_ddpg_act(d, s, i % 6, 1);
        CHECK(a >= 0.0f && a < 1.0f);
        m += a;
    }
    m /= nw;
    CHECKF(fabs(m - 0.5) < 0.03, "warmup mean %.4f", m);
    /* After warmup: N(mu, sigma) truncated to [0,1]; compare the first two moments. */
    const int eps_[2] = {6, 80};
    for (int c = 0; c < 2; c++) {
        double sigma = 0.5 * pow(0.99, eps_[c] - 5);
        double al = (0 - mu) / sigma, be = (1 - mu) / sigma;
        double pa = 0.5 * erfc(-al / sqrt(2)), pb = 0.5 * erfc(-be / sqrt(2));
        double fa = exp(-0.5 * al * al) / 2.5066282746310002, fb = exp(-0.5 * be * be) / 2.5066282746310002;
        double z = pb - pa;
        double mean = mu + sigma * (fa - fb) / z;
        double var = sigma * sigma * (1 + (al * fa - be * fb) / z - ((fa - fb) / z) * ((fa - fb) / z));
        int n = 40000;
        double s1 = 0, s2 = 0;
        int bad = 0;
        for (int i = 0; i < n; i++) {
            float a = mq_ddpg_act(d, s, eps_[c], 1);
            bad += !(a >= 0.0f && a <= 1.0f);
            s1 += a;
            s2 += (double)a * a;
        }
        double em = s1 / n, ev = s2 / n - em * em;
        printf("  truncnorm mu %.3f sigma %.3f: mean %.4f (exact %.4f) var %.5f (exact %.5f)\n",
               (double)mu, sigma, em, mean, ev, var);
        CHECK(bad == 0);
        CHECKF(fabs(em - mean) < 4 * sqrt(var / n) + 1e-4, "mean %.5f vs %.5f", em, mean);
        CHECKF(fabs(ev - var) < 0.03 * var, "var %.6f vs %.6f", ev, var);
    }
    /* sigma -> 0 far after warmup: the action is mu. */
    float a = mq_ddpg_act(d, s, 100000, 1);
    CHECKF(fabsf(a - mu) < 1e-6f, "a %g mu %g", (double)a, (double)mu);
    /* Too few transitions: update is a no-op. */
    float st[SD];
    test_fill(st, SD, 5, 0, 1);
    for (int i = 0; i < 7; i++) mq_ddpg_store(d, s, 0.5f, 1.0f, st, 0);
    float loss = -1;
    CHECK(mq_ddpg_update(d, &loss) == 0 && loss == -1);
    mq_ddpg_store(d, s, 0.5f, 1.0f, st, 1);
    CHECK(mq_ddpg_update(d, &loss) == 1 && loss >= 0);
    mq_ddpg_free(d);
    /* Config checks. */
    mq_ddpg_config c;
    mq_ddpg_config_default(&c, 10, 50);
    CHECK(c.hidden == 300 && c.batch == 64 && c.rmsize == 6400 && c.warmup == 20 && c.seed == 234);
    CHECK(c.actor_lr == 1e-4f && c.critic_lr == 1e-3f && c.tau == 0.01f && c.gamma == 1.0f);
    CHECK(c.sigma0 == 0.5f && c.sigma_decay == 0.99f);
    mq_ddpg *bad = NULL;
    c.hidden = 0;
    CHECK(mq_ddpg_create(&c, &bad) == MIXQ_ERR_ARG && !bad);
    c.hidden = 8;
    c.rmsize = 10;
    CHECK(mq_ddpg_create(&c, &bad) == MIXQ_ERR_ARG && !bad);
    CHECK(strstr(mixq_last_error(), "rmsize") != NULL);
    mq_ddpg_free(NULL);
}

/* One update by hand: with a constant reward and done = 1 everywhere, the first batch sets the
 * baseline to that reward, so r~ = 0 and y = 0: the critic loss is mean Q(s,a)^2 (checked against
 * the hook's loss on the same rows); the targets are t (1 - tau) + p tau of the new weights. */
static void test_update_step(void) {
    enum { SD = 6, H = 16, N = 8 };
    mq_ddpg *d = make(SD, H, N, 16, 0, 21);
    if (!d) return;
    float S[N * SD], A[N], Y[N] = {0};
    test_fill(S, N * SD, 31, 0.0f, 1.0f);
    test_fill(A, N, 32, 0.0f, 1.0f);
    for (int i = 0; i < N; i++) mq_ddpg_store(d, S + i * SD, A[i], -0.75f, NULL, 1);
    double want;
    CHECK_OK(mq_ddpg_debug_grads(d, N, S, A, Y, &want, NULL, NULL, NULL));
    long n[4];
    float *p[4], *old[4];
    for (int w = 0; w < 4; w++) {
        p[w] = mq_ddpg_debug_params(d, w, &n[w]);
        old[w] = malloc(sizeof(float) * (size_t)n[w]);
        if (old[w]) memcpy(old[w], p[w], sizeof(float) * (size_t)n[w]);
    }
    if (!old[0] || !old[1] || !old[2] || !old[3]) {
        CHECK(!"malloc");
        goto out;
    }
    CHECK(memcmp(old[0], old[2], sizeof(float) * (size_t)n[0]) == 0); /* targets start as copies */
    CHECK(memcmp(old[1], old[3], sizeof(float) * (size_t)n[1]) == 0);
    float loss = -1;
    CHECK(mq_ddpg_update(d, &loss) == 1);
    CHECKF(fabs(loss - want) <= 1e-6 * want && want > 0, "critic loss %.9g, want %.9g",
           (double)loss, want);
    for (int w = 0; w < 2; w++) {
        long moved = 0, bad = 0;
        for (long i = 0; i < n[w]; i++) {
            moved += p[w][i] != old[w][i];
            float t = old[w + 2][i] * (1.0f - 0.01f) + p[w][i] * 0.01f;
            bad += memcmp(&t, &p[w + 2][i], sizeof t) != 0;
        }
        CHECKF(moved > n[w] / 4, "network %d: only %ld of %ld weights moved", w, moved, n[w]);
        CHECKF(bad == 0, "network %d: %ld target weights are not the soft update", w, bad);
    }
out:
    for (int w = 0; w < 4; w++) free(old[w]);
    mq_ddpg_free(d);
}

/* ---------------------------------------------------------------- 2. learning */
enum { LT = 4, LSD = 10 };
static const float targets[LT] = {0.2f, 0.8f, 0.5f, 0.35f};

static void episode_states(float st[LT + 1][LSD]) {
    memset(st, 0, sizeof(float) * (LT + 1) * LSD);
    for (int t = 0; t < LT; t++) {
        test_fill(st[t], LSD - LT, 100 + (unsigned)t, 0.0f, 1.0f);
        st[t][LSD - LT + t] = 1.0f; /* step index, one-hot */
    }
    /* st[LT]: the terminal next state, all zeros (ignored: done = 1) */
}

/* Runs one exploring episode, stores its transitions, one update per transition after warmup. */
static void run_episode(mq_ddpg *d, float st[LT + 1][LSD], int ep, int warmup) {
    float a[LT];
    double r = 0;
    for (int t = 0; t < LT; t++) {
        a[t] = mq_ddpg_act(d, st[t], ep, 1);
        r -= (double)(a[t] - targets[t]) * (a[t] - targets[t]);
    }
    for (int t = 0; t < LT; t++) {
        mq_ddpg_store(d, st[t], a[t], (float)r, st[t + 1], t == LT - 1);
        if (ep > warmup) mq_ddpg_update(d, NULL);
    }
}

static void test_learning(void) {
    const int warmup = 10, max_ep = 300, hold = 10;
    /* HAQ's settings except: hidden 64 (speed), warmup 10, and a replay buffer of 32 episodes
     * (HAQ: 128) -- fresher data makes the episode count tight: over seeds 1..100 this passes
     * in 123..249 episodes (HAQ's buffer: a median of ~245, a tail past 450). */
    mq_ddpg_config c;
    mq_ddpg_config_default(&c, LSD, LT);
    c.warmup = warmup;
    c.hidden = 64;
    c.rmsize = 32 * LT;
    mq_ddpg *d = NULL;
    CHECK_OK(mq_ddpg_create(&c, &d));
    if (!d) return;
    float st[LT + 1][LSD];
    episode_states(st);
    int solved_at = -1, streak = 0;
    float g[LT] = {0};
    double t0 = mq_now();
    for (int ep = 0; ep <= warmup + max_ep; ep++) {
        run_episode(d, st, ep, warmup);
        if (ep <= warmup) continue;
        float worst = 0;
        for (int t = 0; t < LT; t++) {
            g[t] = mq_ddpg_act(d, st[t], ep, 0);
            worst = MQ_MAX(worst, fabsf(g[t] - targets[t]));
        }
        if (worst < 0.1f) {
            if (++streak == 1) solved_at = ep;
            if (streak >= hold) break;
        } else {
            streak = 0;
            solved_at = -1;
        }
    }
    printf("  learning: greedy actions %.3f %.3f %.3f %.3f (targets 0.2 0.8 0.5 0.35) within 0.1 "
           "from episode %d (%d after warmup %d), held %d episodes; %.2f s\n",
           (double)g[0], (double)g[1], (double)g[2], (double)g[3], solved_at,
           solved_at - warmup, warmup, streak, mq_now() - t0);
    CHECKF(streak >= hold, "greedy actions not within 0.1 of the targets after %d episodes", max_ep);
    mq_ddpg_free(d);
}

/* ---------------------------------------------------------------- 3. determinism, checkpoints */
static int same_params(mq_ddpg *a, mq_ddpg *b) {
    for (int w = 0; w < 4; w++) {
        long na, nb;
        float *pa = mq_ddpg_debug_params(a, w, &na), *pb = mq_ddpg_debug_params(b, w, &nb);
        if (na != nb || memcmp(pa, pb, sizeof(float) * (size_t)na) != 0) return 0;
    }
    return 1;
}

/* `episodes` exploring episodes from episode `ep0` with one update per transition; actions
 * appended to acts (LT per episode). */
static void drive(mq_ddpg *d, float st[LT + 1][LSD], int ep0, int episodes, float *acts) {
    for (int e = 0; e < episodes; e++) {
        float a[LT];
        double r = 0;
        for (int t = 0; t < LT; t++) {
            a[t] = mq_ddpg_act(d, st[t], ep0 + e, 1);
            acts[e * LT + t] = a[t];
            r -= (double)(a[t] - targets[t]) * (a[t] - targets[t]);
        }
        for (int t = 0; t < LT; t++) {
            mq_ddpg_store(d, st[t], a[t], (float)r, st[t + 1], t == LT - 1);
            mq_ddpg_update(d, NULL);
        }
    }
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void test_determinism(void) {
    enum { K = 12 };
    float st[LT + 1][LSD];
    episode_states(st);
    /* warmup 2 < K: both uniform and truncated-normal draws; batch 16 so updates start early;
     * rmsize 24 < the K * LT transitions so the ring wraps before the save. */
    mq_ddpg *a = make(LSD, 48, 16, 24, 2, 99), *b = make(LSD, 48, 16, 24, 2, 99);
    mq_ddpg *c = make(LSD, 48, 16, 24, 2, 5); /* different seed: overwritten by the load */
    mq_ddpg *e = make(LSD + 1, 48, 16, 24, 2, 99);
    float *xa = calloc(4 * K * LT, sizeof(float)), *xb = calloc(4 * K * LT, sizeof(float));
    char path[512], trunc[512], other[512], tmp[520];
    unsigned char *buf = NULL;
    if (!a || !b || !c || !e || !xa || !xb) {
        CHECK(!"setup");
        goto out;
    }
    CHECK(same_params(a, b));
    CHECK(!same_params(a, c));
    drive(a, st, 0, K, xa);
    drive(b, st, 0, K, xb);
    CHECK(memcmp(xa, xb, sizeof(float) * K * LT) == 0);
    CHECK(same_params(a, b));
    /* The agent did learn something: weights moved away from the initial ones. */
    CHECK(!same_params(a, c));

    /* Save A, load into C (other seed), continue both: identical from here on. */
    snprintf(path, sizeof path, "%s/ddpg_a.ckpt", test_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK_OK(mq_ddpg_save(a, path));
    CHECK(file_size(tmp) == -1); /* renamed away */
    CHECK_OK(mq_ddpg_load(c, path));
    CHECK(same_params(a, c));
    drive(a, st, K, K, xa + K * LT);
    drive(c, st, K, K, xb + K * LT);
    CHECK(memcmp(xa + K * LT, xb + K * LT, sizeof(float) * K * LT) == 0);
    CHECK(same_params(a, c));
    /* B never saved/loaded: the same as A too (save does not perturb the agent). */
    drive(b, st, K, K, xb + 2 * K * LT);
    CHECK(memcmp(xa + K * LT, xb + 2 * K * LT, sizeof(float) * K * LT) == 0);
    CHECK(same_params(a, b));

    /* A different state_dim: MIXQ_ERR_FORMAT naming the file, agent unchanged. */
    snprintf(other, sizeof other, "%s/ddpg_e.ckpt", test_tmpdir());
    CHECK_OK(mq_ddpg_save(e, other));
    mixq_status s = mq_ddpg_load(a, other);
    CHECKF(s == MIXQ_ERR_FORMAT, "load other dims: %d", s);
    CHECKF(strstr(mixq_last_error(), other) && strstr(mixq_last_error(), "state_dim"), "msg: %s",
           mixq_last_error());
    CHECK(same_params(a, b));

    /* Truncated files (a few cut points): MIXQ_ERR_FORMAT, agent unchanged. */
    long n = file_size(path);
    CHECK(n > 100);
    buf = malloc((size_t)(n > 0 ? n : 1) + 1);
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        CHECK(!"read checkpoint");
        if (f) fclose(f);
        goto out;
    }
    fclose(f);
    snprintf(trunc, sizeof trunc, "%s/ddpg_trunc.ckpt", test_tmpdir());
    const long cuts[] = {0, 5, 20, 60, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(test_write_file(trunc, buf, (size_t)cuts[i]) == 0);
        s = mq_ddpg_load(b, trunc);
        CHECKF(s == MIXQ_ERR_FORMAT, "cut %ld: status %d", cuts[i], s);
        CHECKF(strstr(mixq_last_error(), trunc) != NULL, "cut %ld: %s", cuts[i], mixq_last_error());
    }
    /* Trailing bytes and a bad magic are refused too. */
    buf[n] = 0;
    CHECK(test_write_file(trunc, buf, (size_t)n + 1) == 0);
    CHECK(mq_ddpg_load(b, trunc) == MIXQ_ERR_FORMAT);
    buf[0] = 'X';
    CHECK(test_write_file(trunc, buf, (size_t)n) == 0);
    CHECK(mq_ddpg_load(b, trunc) == MIXQ_ERR_FORMAT);
    CHECK(same_params(a, b));
    /* A missing file: MIXQ_ERR_IO. */
    snprintf(trunc, sizeof trunc, "%s/no_such.ckpt", test_tmpdir());
    CHECK(mq_ddpg_load(b, trunc) == MIXQ_ERR_IO);
    /* B still continues exactly as A after all the refused loads. */
    drive(a, st, 2 * K, 2, xa);
    drive(b, st, 2 * K, 2, xb);
    CHECK(memcmp(xa, xb, sizeof(float) * 2 * LT) == 0);
    CHECK(same_params(a, b));
out:
    free(buf);
    free(xa);
    free(xb);
    mq_ddpg_free(a);
    mq_ddpg_free(b);
    mq_ddpg_free(c);
    mq_ddpg_free(e);
}

/* HAQ's sizes (hidden 300, batch 64): one update's wall time, for the record. */
static void test_haq_size(void) {
    mq_ddpg_config c;
    mq_ddpg_config_default(&c, 10, 8);
    mq_ddpg *d = NULL;
    CHECK_OK(mq_ddpg_create(&c, &d));
    if (!d) return;
    float s[10], s2[10];
    for (int i = 0; i < c.batch; i++) {
        test_fill(s, 10, (unsigned)i, 0, 1);
        test_fill(s2, 10, (unsigned)i + 1, 0, 1);
        mq_ddpg_store(d, s, mq_ddpg_act(d, s, 0, 1), -0.1f * (float)(i % 7), s2, i % 4 == 3);
    }
    int ups = 3;
    float loss = 0;
    double t0 = mq_now();
    for (int i = 0; i < ups; i++) CHECK(mq_ddpg_update(d, &loss) == 1);
    double dt = (mq_now() - t0) / ups;
    printf("  hidden 300, batch 64: %.2f ms per update, last critic loss %.4g\n", 1e3 * dt,
           (double)loss);
    CHECK(isfinite(loss));
    mq_ddpg_free(d);
}

int main(void) {
    TEST_RUN(test_gradients);
    TEST_RUN(test_act);
    TEST_RUN(test_update_step);
    TEST_RUN(test_learning);
    TEST_RUN(test_determinism);
    TEST_RUN(test_haq_size);
    return test_summary();
}
