/* ReLeQ's PPO agent: LSTM trunk, policy and value heads, hand-written BPTT, Adam (see ppo.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "nn/optim.h"
#include "search/ppo.h"

#define PPO_VERSION 1u
#define PPO_ENDIAN 0x01020304u
static const char ppo_magic[8] = {'M', 'Q', 'P', 'P', 'O', 0, 0, 0};

struct mq_ppo {
    mq_ppo_config cfg;
    int D, H, P, V, A, Tmax;
    long n;                     /* parameter count */
    double *w, *g, *m, *v;      /* parameters, gradient, Adam moments */
    int64_t step;               /* Adam steps taken */
    mq_rng rng;
    /* parameter offsets */
    long Wx, Wh, b, P1, p1, P2, p2, P3, p3, V1, v1, V2, v2, V3, v3;
    /* forward cache [Tmax][...] */
    double *xs, *gates, *cs, *hs, *tc;  /* tc: tanh(c) */
    double *pre1, *pre2, *z, *logits, *probs, *upre1, *upre2, *val;
    /* the episode: actions, behaviour log-probabilities, values */
    int T;
    int *act;
    double *old_logp, *old_v, *rew, *adv, *ret;
    double *hcur, *ccur;        /* the acting pass's LSTM state */
    double *scratch;            /* backward: dh, dc, dh_next, dc_next, dpre(4H), head buffers */
};

void mq_ppo_config_default(mq_ppo_config *c, int in_dim, int n_act, int max_steps) {
    memset(c, 0, sizeof *c);
    c->in_dim = in_dim, c->n_act = n_act, c->max_steps = max_steps;
    c->hidden = 128, c->head = 128, c->vhead = 64;
    c->temp = 0.5, c->clip = 0.3, c->vf_coef = 1, c->ent_coef = 0.01;
    c->lr = 1e-4, c->gamma = 0.9, c->lambda = 1, c->epochs = 1;
    c->seed = 1;
}

void mq_ppo_free(mq_ppo *p) {
    if (!p) return;
    free(p->w);
    free(p->xs);
    free(p->act);
    free(p->old_logp);
    free(p->scratch);
    free(p);
}

static mixq_status check_cfg(const mq_ppo_config *c) {
    const char *bad = NULL;
    if (c->in_dim < 1 || c->in_dim > 4096) bad = "in_dim";
    else if (c->n_act < 2 || c->n_act > 64) bad = "n_act (2..64 actions)";
    else if (c->hidden < 1 || c->hidden > 4096) bad = "hidden";
    else if (c->head < 1 || c->head > 4096) bad = "head";
    else if (c->vhead < 1 || c->vhead > 4096) bad = "vhead";
    else if (c->max_steps < 1 || c->max_steps > 100000) bad = "max_steps";
    else if (!(c->temp > 0 && c->temp <= 100)) bad = "temp (0 < temp <= 100)";
    else if (!(c->clip > 0 && c->clip < 1)) bad = "clip (0 < clip < 1)";
    else if (!(c->vf_coef >= 0 && c->vf_coef <= 1000)) bad = "vf_coef";
    else if (!(c->ent_coef >= 0 && c->ent_coef <= 1000)) bad = "ent_coef";
    else if (!(c->lr > 0 && c->lr <= 1)) bad = "lr (0 < lr <= 1)";
    else if (!(c->gamma > 0 && c->gamma <= 1)) bad = "gamma (0 < gamma <= 1)";
    else if (!(c->lambda >= 0 && c->lambda <= 1)) bad = "lambda (0 <= lambda <= 1)";
    else if (c->epochs < 1 || c->epochs > 1000) bad = "epochs (1..1000)";
    if (bad) return mq_err(MIXQ_ERR_ARG, "PPO agent: %s out of range", bad);
    return MIXQ_OK;
}

static void init_uniform(mq_ppo *p, long off, long count, double bound) {
    for (long i = 0; i < count; i++) p->w[off + i] = bound * (2.0 * (double)mq_rng_uniform(&p->rng) - 1.0);
}

mixq_status mq_ppo_create(const mq_ppo_config *c, mq_ppo **out) {
    *out = NULL;
    mixq_status st = check_cfg(c);
    if (st) return st;
    mq_ppo *p = mq_calloc(1, sizeof *p, "PPO agent");
    if (!p) return MIXQ_ERR_NOMEM;
    p->cfg = *c;
    const long D = c->in_dim, H = c->hidden, P = c->head, V = c->vhead, A = c->n_act, T = c->max_steps;
    p->D = (int)D, p->H = (int)H, p->P = (int)P, p->V = (int)V, p->A = (int)A, p->Tmax = (int)T;
    long n = 0;
#define OFF(field, size) (p->field = n, n += (size))
    OFF(Wx, 4 * H * D);
    OFF(Wh, 4 * H * H);
    OFF(b, 4 * H);
    OFF(P1, P * H);
    OFF(p1, P);
    OFF(P2, P * P);
    OFF(p2, P);
    OFF(P3, A * P);
    OFF(p3, A);
    OFF(V1, P * H);
    OFF(v1, P);
    OFF(V2, V * P);
    OFF(v2, V);
    OFF(V3, V);
    OFF(v3, 1);
#undef OFF
    p->n = n;
    p->w = mq_calloc(4 * (size_t)n, sizeof(double), "PPO weights");
    /* forward cache: xs D, gates 4H, cs H, hs H, tc H, pre1 P, pre2 P, z P, logits A, probs A,
     * upre1 P, upre2 V, val 1 per step */
    const size_t per = (size_t)(D + 8 * H + 4 * P + 2 * A + V + 1);
    p->xs = mq_calloc((size_t)T * per, sizeof(double), "PPO forward cache");
    p->act = mq_calloc((size_t)T, sizeof(int), "PPO episode actions");
    p->old_logp = mq_calloc(5 * (size_t)T + 2 * (size_t)H, sizeof(double), "PPO episode");
    p->scratch = mq_calloc(8 * (size_t)H + 4 * (size_t)P + 2 * (size_t)V + 2 * (size_t)A + 8, sizeof(double),
                           "PPO scratch");
    if (!p->w || !p->xs || !p->act || !p->old_logp || !p->scratch) {
        mq_ppo_free(p);
        return MIXQ_ERR_NOMEM;
    }
    p->g = p->w + n, p->m = p->w + 2 * n, p->v = p->w + 3 * n;
    double *q = p->xs;
    p->xs = q, q += (size_t)T * D;
    p->gates = q, q += (size_t)T * 4 * H;
    p->cs = q, q += (size_t)T * H;
    p->hs = q, q += (size_t)T * H;
    p->tc = q, q += (size_t)T * H;
    p->pre1 = q, q += (size_t)T * P;
    p->pre2 = q, q += (size_t)T * P;
    p->z = q, q += (size_t)T * P;
    p->logits = q, q += (size_t)T * A;
    p->probs = q, q += (size_t)T * A;
    p->upre1 = q, q += (size_t)T * P;
    p->upre2 = q, q += (size_t)T * V;
    p->val = q;
    q = p->old_logp;
    q += T;
    p->old_v = q, q += T;
    p->rew = q, q += T;
    p->adv = q, q += T;
    p->ret = q, q += T;
    p->hcur = q, q += H;
    p->ccur = q;
    mq_rng_seed(&p->rng, mq_seed_mix(c->seed, 0x50504f, 0));
    /* TensorFlow 1's defaults (ReLeQ's agent is TF 1): Glorot-uniform kernels (the LSTM's over
     * its [in + H] x 4H kernel), zero biases, the forget gate's bias +1 */
    init_uniform(p, p->Wx, 4 * H * D, sqrt(6.0 / (double)(D + H + 4 * H)));
    init_uniform(p, p->Wh, 4 * H * H, sqrt(6.0 / (double)(D + H + 4 * H)));
    for (long j = 0; j < H; j++) p->w[p->b + H + j] = 1.0;
    init_uniform(p, p->P1, P * H, sqrt(6.0 / (double)(H + P)));
    init_uniform(p, p->P2, P * P, sqrt(6.0 / (double)(P + P)));
    init_uniform(p, p->P3, A * P, sqrt(6.0 / (double)(P + A)));
    init_uniform(p, p->V1, P * H, sqrt(6.0 / (double)(H + P)));
    init_uniform(p, p->V2, V * P, sqrt(6.0 / (double)(P + V)));
    init_uniform(p, p->V3, V, sqrt(6.0 / (double)(V + 1)));
    *out = p;
    return MIXQ_OK;
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* y[r] = b[r] + sum_k W[r][k] x[k] */
static void matvec(const double *W, const double *bias, const double *x, int rows, int cols, double *y) {
    for (int r = 0; r < rows; r++) {
        const double *wr = W + (size_t)r * cols;
        double s = bias ? bias[r] : 0;
        for (int k = 0; k < cols; k++) s += wr[k] * x[k];
        y[r] = s;
    }
}

/* Forward of step t from (h_prev, c_prev) (NULL: zeros) on x, into the cache slot t. */
static void forward_step(mq_ppo *p, int t, const double *x, const double *h_prev, const double *c_prev) {
    const int D = p->D, H = p->H, P = p->P, V = p->V, A = p->A;
    const double *w = p->w;
    double *xs = p->xs + (size_t)t * D, *gt = p->gates + (size_t)t * 4 * H, *c = p->cs + (size_t)t * H,
           *h = p->hs + (size_t)t * H, *tc = p->tc + (size_t)t * H;
    memcpy(xs, x, sizeof(double) * (size_t)D);
    for (int r = 0; r < 4 * H; r++) {
        const double *wx = w + p->Wx + (size_t)r * D, *wh = w + p->Wh + (size_t)r * H;
        double s = w[p->b + r];
        for (int k = 0; k < D; k++) s += wx[k] * xs[k];
        if (h_prev)
            for (int k = 0; k < H; k++) s += wh[k] * h_prev[k];
        gt[r] = r >= 2 * H && r < 3 * H ? tanh(s) : sigm(s);
    }
    for (int j = 0; j < H; j++) {
        c[j] = gt[j] * gt[2 * H + j] + (c_prev ? gt[H + j] * c_prev[j] : 0);
        tc[j] = tanh(c[j]);
        h[j] = gt[3 * H + j] * tc[j];
    }
    double *pre1 = p->pre1 + (size_t)t * P, *pre2 = p->pre2 + (size_t)t * P, *z = p->z + (size_t)t * P,
           *lg = p->logits + (size_t)t * A, *pr = p->probs + (size_t)t * A, *u1 = p->upre1 + (size_t)t * P,
           *u2 = p->upre2 + (size_t)t * V, *a = p->scratch;
    matvec(w + p->P1, w + p->p1, h, P, H, pre1);
    for (int j = 0; j < P; j++) a[j] = pre1[j] > 0 ? pre1[j] : 0;
    matvec(w + p->P2, w + p->p2, a, P, P, pre2);
    for (int j = 0; j < P; j++) z[j] = (pre2[j] > 0 ? pre2[j] : 0) / p->cfg.temp;
    matvec(w + p->P3, w + p->p3, z, A, P, lg);
    double mx = lg[0], sum = 0;
    for (int k = 1; k < A; k++) mx = fmax(mx, lg[k]);
    for (int k = 0; k < A; k++) sum += pr[k] = exp(lg[k] - mx);
    for (int k = 0; k < A; k++) pr[k] /= sum;
    matvec(w + p->V1, w + p->v1, h, P, H, u1);
    for (int j = 0; j < P; j++) a[j] = u1[j] > 0 ? u1[j] : 0;
    matvec(w + p->V2, w + p->v2, a, V, P, u2);
    double v = w[p->v3];
    for (int j = 0; j < V; j++) v += w[p->V3 + j] * (u2[j] > 0 ? u2[j] : 0);
    p->val[t] = v;
}

/* log pi(k) of step t (from the logits: exact for tiny probabilities) */
static double logprob(const mq_ppo *p, int t, int k) {
    const double *lg = p->logits + (size_t)t * p->A;
    double mx = lg[0], sum = 0;
    for (int j = 1; j < p->A; j++) mx = fmax(mx, lg[j]);
    for (int j = 0; j < p->A; j++) sum += exp(lg[j] - mx);
    return lg[k] - mx - log(sum);
}

void mq_ppo_begin(mq_ppo *p) {
    p->T = 0;
    memset(p->hcur, 0, sizeof(double) * (size_t)p->H);
    memset(p->ccur, 0, sizeof(double) * (size_t)p->H);
}

int mq_ppo_step(mq_ppo *p, const double *x, int greedy, double *probs) {
    const int t = p->T, H = p->H, A = p->A;
    if (t >= p->Tmax) return -1;
    forward_step(p, t, x, t ? p->hcur : NULL, t ? p->ccur : NULL);
    memcpy(p->hcur, p->hs + (size_t)t * H, sizeof(double) * (size_t)H);
    memcpy(p->ccur, p->cs + (size_t)t * H, sizeof(double) * (size_t)H);
    const double *pr = p->probs + (size_t)t * A;
    int k = 0;
    if (greedy) {
        for (int j = 1; j < A; j++)
            if (pr[j] > pr[k]) k = j;
    } else { /* inverse CDF, one draw */
        double u = (double)mq_rng_uniform(&p->rng), acc = 0;
        for (k = 0; k < A - 1; k++) {
            acc += pr[k];
            if (u < acc) break;
        }
    }
    if (probs) memcpy(probs, pr, sizeof(double) * (size_t)A);
    p->act[t] = k;
    p->old_logp[t] = logprob(p, t, k);
    p->old_v[t] = p->val[t];
    p->T = t + 1;
    return k;
}

void mq_ppo_gae(int T, const double *r, const double *v, double gamma, double lambda, double *adv, double *ret) {
    double run = 0;
    for (int t = T - 1; t >= 0; t--) {
        const double vn = t + 1 < T ? v[t + 1] : 0;
        run = r[t] + gamma * vn - v[t] + gamma * lambda * run;
        adv[t] = run;
        ret[t] = run + v[t];
    }
}

/* g[rows x cols] += d[rows] (x) x[cols] */
static void outer_acc(double *g, const double *d, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        if (d[r] == 0) continue;
        double *gr = g + (size_t)r * cols;
        for (int k = 0; k < cols; k++) gr[k] += d[r] * x[k];
    }
}

/* y[cols] = W^T d (W is rows x cols) */
static void matTvec(const double *W, const double *d, int rows, int cols, double *y) {
    for (int k = 0; k < cols; k++) y[k] = 0;
    for (int r = 0; r < rows; r++) {
        if (d[r] == 0) continue;
        const double *wr = W + (size_t)r * cols;
        for (int k = 0; k < cols; k++) y[k] += d[r] * wr[k];
    }
}

double mq_ppo_loss_grad(mq_ppo *p, int T, const double *X, const int *act, const double *old_logp,
                        const double *adv, const double *ret, double *grad, double *logp) {
    const int D = p->D, H = p->H, P = p->P, V = p->V, A = p->A;
    if (T < 1 || T > p->Tmax) return NAN;
    for (int t = 0; t < T; t++)
        forward_step(p, t, X + (size_t)t * D, t ? p->hs + (size_t)(t - 1) * H : NULL,
                     t ? p->cs + (size_t)(t - 1) * H : NULL);
    const mq_ppo_config *c = &p->cfg;
    double *g = grad ? grad : p->g;
    memset(g, 0, sizeof(double) * (size_t)p->n);
    const double *w = p->w;
    /* scratch: dh, dc and dh of the next step [H each], the gates' pre-activations [4H], a head
     * layer's output gradient [max(P, V)], its input gradient [P], activations [max(P, H)] */
    double *dh = p->scratch, *dcn = dh + H, *dhn = dcn + H, *dpre = dhn + H, *da = dpre + 4 * H,
           *dpa = da + P + V, *abuf = dpa + P;
    double loss = 0;
    memset(dcn, 0, sizeof(double) * (size_t)H);
    memset(dhn, 0, sizeof(double) * (size_t)H);
    const double invT = 1.0 / T;
    for (int t = T - 1; t >= 0; t--) {
        const double *pr = p->probs + (size_t)t * A, *pre1 = p->pre1 + (size_t)t * P,
                     *pre2 = p->pre2 + (size_t)t * P, *z = p->z + (size_t)t * P, *u1 = p->upre1 + (size_t)t * P,
                     *u2 = p->upre2 + (size_t)t * V, *h = p->hs + (size_t)t * H;
        /* the loss terms */
        const double lp = logprob(p, t, act[t]);
        if (logp) logp[t] = lp;
        const double rho = exp(lp - old_logp[t]);
        const double rc = fmin(fmax(rho, 1 - c->clip), 1 + c->clip);
        const double s1 = rho * adv[t], s2 = rc * adv[t];
        double ent = 0;
        for (int k = 0; k < A; k++) ent -= pr[k] > 0 ? pr[k] * log(pr[k]) : 0;
        const double dv = p->val[t] - ret[t];
        loss += invT * (-fmin(s1, s2) + c->vf_coef * dv * dv - c->ent_coef * ent);
        /* d loss / d logits */
        double dlog[64];
        const double dlp = s1 <= s2 ? -rho * adv[t] * invT : 0; /* d loss / d log pi(a) */
        for (int k = 0; k < A; k++) {
            const double lpk = pr[k] > 0 ? log(pr[k]) : 0;
            dlog[k] = dlp * ((k == act[t]) - pr[k]) + invT * c->ent_coef * pr[k] * (lpk + ent);
        }
        /* policy head */
        for (int k = 0; k < A; k++) g[p->p3 + k] += dlog[k];
        outer_acc(g + p->P3, dlog, z, A, P);
        matTvec(w + p->P3, dlog, A, P, da); /* d loss / d z */
        for (int j = 0; j < P; j++) da[j] = pre2[j] > 0 ? da[j] / c->temp : 0;
        for (int j = 0; j < P; j++) g[p->p2 + j] += da[j];
        for (int j = 0; j < P; j++) abuf[j] = pre1[j] > 0 ? pre1[j] : 0;
        outer_acc(g + p->P2, da, abuf, P, P);
        matTvec(w + p->P2, da, P, P, dpa);
        for (int j = 0; j < P; j++) dpa[j] = pre1[j] > 0 ? dpa[j] : 0;
        for (int j = 0; j < P; j++) g[p->p1 + j] += dpa[j];
        outer_acc(g + p->P1, dpa, h, P, H);
        matTvec(w + p->P1, dpa, P, H, dh);
        /* value head */
        const double dV = invT * 2 * c->vf_coef * dv;
        g[p->v3] += dV;
        for (int j = 0; j < V; j++) {
            const double a2 = u2[j] > 0 ? u2[j] : 0;
            g[p->V3 + j] += dV * a2;
            da[j] = u2[j] > 0 ? dV * w[p->V3 + j] : 0;
        }
        for (int j = 0; j < V; j++) g[p->v2 + j] += da[j];
        for (int j = 0; j < P; j++) abuf[j] = u1[j] > 0 ? u1[j] : 0;
        outer_acc(g + p->V2, da, abuf, V, P);
        matTvec(w + p->V2, da, V, P, dpa);
        for (int j = 0; j < P; j++) dpa[j] = u1[j] > 0 ? dpa[j] : 0;
        for (int j = 0; j < P; j++) g[p->v1 + j] += dpa[j];
        outer_acc(g + p->V1, dpa, h, P, H);
        matTvec(w + p->V1, dpa, P, H, abuf);
        for (int j = 0; j < H; j++) dh[j] += abuf[j] + dhn[j];
        /* LSTM cell, BPTT */
        const double *gt = p->gates + (size_t)t * 4 * H, *tc = p->tc + (size_t)t * H;
        const double *cprev = t ? p->cs + (size_t)(t - 1) * H : NULL, *hprev = t ? p->hs + (size_t)(t - 1) * H : NULL;
        for (int j = 0; j < H; j++) {
            const double i = gt[j], f = gt[H + j], gg = gt[2 * H + j], o = gt[3 * H + j];
            const double dc = dcn[j] + dh[j] * o * (1 - tc[j] * tc[j]);
            const double cp = cprev ? cprev[j] : 0;
            dpre[j] = dc * gg * i * (1 - i);
            dpre[H + j] = dc * cp * f * (1 - f);
            dpre[2 * H + j] = dc * i * (1 - gg * gg);
            dpre[3 * H + j] = dh[j] * tc[j] * o * (1 - o);
            dcn[j] = dc * f;
        }
        for (int r = 0; r < 4 * H; r++) g[p->b + r] += dpre[r];
        outer_acc(g + p->Wx, dpre, p->xs + (size_t)t * D, 4 * H, D);
        if (hprev) {
            outer_acc(g + p->Wh, dpre, hprev, 4 * H, H);
            matTvec(w + p->Wh, dpre, 4 * H, H, dhn);
        }
    }
    return loss;
}

static void adam(mq_ppo *p) { /* TensorFlow's form (eps on the raw v), as ReLeQ's code */
    p->step++;
    mq_adam_d(p->w, p->g, p->m, p->v, (size_t)p->n, p->cfg.lr, 0.9, 0.999, 1e-5, p->step, 1);
}

double mq_ppo_finish(mq_ppo *p, double reward) {
    const int T = p->T;
    if (T < 1) return 0;
    for (int t = 0; t < T; t++) p->rew[t] = t == T - 1 ? reward : 0;
    mq_ppo_gae(T, p->rew, p->old_v, p->cfg.gamma, p->cfg.lambda, p->adv, p->ret);
    /* the states: the acting pass's cache (copied: the update recomputes into it) */
    double *X = mq_malloc((size_t)T * (size_t)p->D, sizeof(double), "PPO states");
    if (!X) return NAN;
    memcpy(X, p->xs, sizeof(double) * (size_t)T * (size_t)p->D);
    double first = 0;
    for (int e = 0; e < p->cfg.epochs; e++) {
        double l = mq_ppo_loss_grad(p, T, X, p->act, p->old_logp, p->adv, p->ret, NULL, NULL);
        if (!e) first = l;
        adam(p);
    }
    free(X);
    p->T = 0;
    return first;
}

mixq_status mq_ppo_traj_alloc(const mq_ppo *p, mq_ppo_traj *t) {
    memset(t, 0, sizeof *t);
    t->x = mq_malloc((size_t)p->Tmax * ((size_t)p->D + 2), sizeof(double), "PPO episode");
    t->act = mq_malloc((size_t)p->Tmax, sizeof(int), "PPO episode");
    if (!t->x || !t->act) {
        mq_ppo_traj_free(t);
        return MIXQ_ERR_NOMEM;
    }
    t->logp = t->x + (size_t)p->Tmax * p->D, t->v = t->logp + p->Tmax;
    return MIXQ_OK;
}

void mq_ppo_traj_free(mq_ppo_traj *t) {
    free(t->x);
    free(t->act);
    memset(t, 0, sizeof *t);
}

void mq_ppo_take(mq_ppo *p, mq_ppo_traj *t) {
    const int T = p->T;
    t->T = T;
    memcpy(t->x, p->xs, sizeof(double) * (size_t)T * (size_t)p->D);
    memcpy(t->act, p->act, sizeof(int) * (size_t)T);
    memcpy(t->logp, p->old_logp, sizeof(double) * (size_t)T);
    memcpy(t->v, p->old_v, sizeof(double) * (size_t)T);
    p->T = 0;
}

double mq_ppo_finish_all(mq_ppo *p, const mq_ppo_traj *t, int k) {
    if (k < 1) return 0;
    double *adv = mq_malloc((size_t)k * p->Tmax * 3, sizeof(double), "PPO advantages");
    double *g = mq_malloc((size_t)p->n, sizeof(double), "PPO gradient");
    if (!adv || !g) {
        free(adv), free(g);
        return NAN;
    }
    double *ret = adv + (size_t)k * p->Tmax, *rew = ret + (size_t)k * p->Tmax;
    for (int j = 0; j < k; j++) {
        const int T = t[j].T;
        double *r = rew + (size_t)j * p->Tmax;
        for (int s = 0; s < T; s++) r[s] = s == T - 1 ? t[j].reward : 0;
        mq_ppo_gae(T, r, t[j].v, p->cfg.gamma, p->cfg.lambda, adv + (size_t)j * p->Tmax, ret + (size_t)j * p->Tmax);
    }
    double first = 0;
    for (int e = 0; e < p->cfg.epochs; e++) {
        double l = 0;
        memset(p->g, 0, sizeof(double) * (size_t)p->n);
        for (int j = 0; j < k; j++) {
            if (t[j].T < 1) continue;
            l += mq_ppo_loss_grad(p, t[j].T, t[j].x, t[j].act, t[j].logp, adv + (size_t)j * p->Tmax,
                                  ret + (size_t)j * p->Tmax, g, NULL) / k;
            for (long i = 0; i < p->n; i++) p->g[i] += g[i] / k;
        }
        if (!e) first = l;
        adam(p);
    }
    free(adv), free(g);
    return first;
}

double *mq_ppo_params(mq_ppo *p, long *count) {
    *count = p->n;
    return p->w;
}

/* ---------------------------------------------------------------- checkpoint */
typedef struct {
    int32_t in_dim, n_act, hidden, head, vhead, max_steps, epochs, pad;
    double temp, clip, vf_coef, ent_coef, lr, gamma, lambda;
    uint64_t seed, n_extra;
} ppo_dims;

static void dims_of(const mq_ppo *p, size_t n_extra, ppo_dims *d) {
    memset(d, 0, sizeof *d);
    const mq_ppo_config *c = &p->cfg;
    d->in_dim = c->in_dim, d->n_act = c->n_act, d->hidden = c->hidden, d->head = c->head, d->vhead = c->vhead;
    d->max_steps = c->max_steps, d->epochs = c->epochs;
    d->temp = c->temp, d->clip = c->clip, d->vf_coef = c->vf_coef, d->ent_coef = c->ent_coef, d->lr = c->lr;
    d->gamma = c->gamma, d->lambda = c->lambda, d->seed = c->seed, d->n_extra = n_extra;
}

mixq_status mq_ppo_save(const mq_ppo *p, const char *path, const void *extra, size_t n_extra) {
    char *tmp;
    FILE *f;
    mixq_status st = mq_fopen_tmp(path, &f, &tmp);
    if (st) return st;
    const uint32_t ver = PPO_VERSION, endian = PPO_ENDIAN;
    ppo_dims d;
    dims_of(p, n_extra, &d);
#define W(ptr, bytes) \
    if (!st) st = mq_fwrite((ptr), (bytes), f, tmp)
    W(ppo_magic, sizeof ppo_magic);
    W(&ver, sizeof ver);
    W(&endian, sizeof endian);
    W(&d, sizeof d);
    W(p->rng.s, sizeof p->rng.s);
    W(&p->step, sizeof p->step);
    W(p->w, sizeof(double) * (size_t)p->n);
    W(p->m, sizeof(double) * (size_t)p->n);
    W(p->v, sizeof(double) * (size_t)p->n);
    if (n_extra) W(extra, n_extra);
#undef W
    return mq_fclose_tmp(f, tmp, path, st);
}

mixq_status mq_ppo_load(mq_ppo *p, const char *path, void *extra, size_t n_extra) {
    FILE *f = mq_fopen(path, "rb");
    if (!f) return MIXQ_ERR_IO;
    char magic[8];
    uint32_t ver, endian;
    ppo_dims d, want;
    dims_of(p, n_extra, &want);
    mq_rng rng;
    int64_t step;
    const size_t n = (size_t)p->n;
    double *buf = mq_malloc(3 * n + n_extra / sizeof(double) + 1, sizeof(double), "PPO checkpoint");
    mixq_status st = buf ? MIXQ_OK : MIXQ_ERR_NOMEM;
    if (!st) st = mq_fread(magic, sizeof magic, f, path, "magic");
    if (!st && memcmp(magic, ppo_magic, sizeof magic))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is not a PPO agent checkpoint (bad magic)", path);
    if (!st) st = mq_fread(&ver, sizeof ver, f, path, "version");
    if (!st) st = mq_fread(&endian, sizeof endian, f, path, "byte-order tag");
    if (!st && (ver != PPO_VERSION || endian != PPO_ENDIAN))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': PPO checkpoint version %u (this build reads %u) or another byte order",
                    path, ver, PPO_VERSION);
    if (!st) st = mq_fread(&d, sizeof d, f, path, "settings");
    if (!st && memcmp(&d, &want, sizeof d))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': the PPO checkpoint was made with other settings (in %d, actions %d, "
                    "hidden %d, steps %d; this agent: %d, %d, %d, %d); hint: resume with the same model and "
                    "agent settings", path, (int)d.in_dim, (int)d.n_act, (int)d.hidden, (int)d.max_steps,
                    (int)want.in_dim, (int)want.n_act, (int)want.hidden, (int)want.max_steps);
    if (!st) st = mq_fread(rng.s, sizeof rng.s, f, path, "RNG state");
    if (!st) st = mq_fread(&step, sizeof step, f, path, "Adam step");

    if (!st && step < 0) st = mq_err(MIXQ_ERR_FORMAT, "'%s': corrupt PPO checkpoint (Adam step %lld)", path,
                                     (long long)step);
    if (!st) st = mq_fread(buf, sizeof(double) * 3 * n, f, path, "weights and Adam moments");
    if (!st && n_extra) st = mq_fread(buf + 3 * n, n_extra, f, path, "agent state");
    if (!st && fgetc(f) != EOF) st = mq_err(MIXQ_ERR_FORMAT, "'%s': unexpected data after the PPO checkpoint", path);
    for (size_t i = 0; !st && i < 3 * n; i++)
        if (!isfinite(buf[i])) st = mq_err(MIXQ_ERR_FORMAT, "'%s': a weight is not finite", path);
    fclose(f);
    if (!st) {
        memcpy(p->w, buf, sizeof(double) * n);
        memcpy(p->m, buf + n, sizeof(double) * n);
        memcpy(p->v, buf + 2 * n, sizeof(double) * n);
        if (n_extra) memcpy(extra, buf + 3 * n, n_extra);
        p->rng = rng;
        p->step = step;
        p->T = 0;
    }
    free(buf);
    return st;
}
