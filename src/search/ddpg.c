/* HAQ's DDPG agent (see ddpg.h).
 *
 * Notation: S = state_dim, H = hidden, B = batch, R = rmsize. Every buffer is float unless said.
 * Dense weights are stored input-major, W[in][out] (the transpose of PyTorch's [out][in]), so
 * the forward pass and the weight gradient are axpy loops over contiguous `out` and the input
 * gradient is a dot product over contiguous `out` (8 partial sums, fixed order).
 *
 * Parameter vectors (one contiguous array per network; offsets in this order):
 *   actor  [NA], NA = S*H + H + H*H + H + H + 1
 *     W1 [S][H], b1 [H], W2 [H][H], b2 [H], W3 [H][1], b3 [1]
 *   critic [NC], NC = S*H + H + H + H + H*H + H + H + 1
 *     Ws [S][H], bs [H], Wa [1][H], ba [H], W2 [H][H], b2 [H], W3 [H][1], b3 [1]
 * For each network: params, target params, gradient, Adam m, Adam v, all [NA] or [NC].
 *
 * Replay ring buffer (R transitions; rb_pos = next slot to write, rb_count = filled slots):
 *   rb_s [R][S], rb_a [R], rb_r [R], rb_s2 [R][S], rb_d [R] (done as 0/1)
 *
 * Minibatch scratch (B rows):
 *   idx [B] (int), bs [B][S], ba [B], br [B] (normalised rewards), bs2 [B][S], bd [B]
 *   ah1 [B][H], ah2 [B][H] actor hidden activations (post-ReLU), amu [B] actor output
 *   ch1 [B][H], ch2 [B][H] critic hidden activations (post-ReLU), cq [B] critic output
 *   y [B] critic targets, dq [B] dLoss/dQ, da [B] dLoss/da (the actor's upstream gradient)
 *   dh1 [B][H], dh2 [B][H] backward scratch
 * Single-state scratch for mq_ddpg_act: xh1 [H], xh2 [H].
 *
 * Checkpoint file (native endian):
 *   "MQDDPG\0\0" (8 bytes), u32 version (1), u32 endian tag 0x01020304,
 *   i32 state_dim, hidden, batch, rmsize,
 *   u64 rng[4], i64 actor_step, i64 critic_step, f64 baseline, i32 baseline_set,
 *   i32 rb_pos, i32 rb_count,
 *   actor params, target, Adam m, Adam v [NA] each; critic params, target, m, v [NC] each
 *   (gradients are scratch, not stored); then the first rb_count rows of rb_s, rb_a, rb_r,
 *   rb_s2, rb_d; nothing after. */
#include "search/ddpg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define DDPG_VERSION 1u
#define DDPG_ENDIAN 0x01020304u
#define DDPG_BASELINE_ALPHA 0.5
static const char ddpg_magic[8] = {'M', 'Q', 'D', 'D', 'P', 'G', 0, 0};

struct mq_ddpg {
    mq_ddpg_config cfg;
    int S, H, B, R;
    size_t na, nc;
    float *actor, *actor_t, *actor_g, *actor_m, *actor_v;
    float *critic, *critic_t, *critic_g, *critic_m, *critic_v;
    int64_t actor_step, critic_step;
    float *rb_s, *rb_a, *rb_r, *rb_s2, *rb_d;
    int rb_pos, rb_count;
    double baseline;
    int baseline_set;
    mq_rng rng;
    int *idx;
    float *bs, *ba, *br, *bs2, *bd;
    float *ah1, *ah2, *amu, *ch1, *ch2, *cq, *y, *dq, *da, *dh1, *dh2;
    float *xh1, *xh2;
};

/* ---------------------------------------------------------------- layout */
typedef struct {
    const float *W1, *b1, *W2, *b2, *W3, *b3;
} actor_view;
typedef struct {
    const float *Ws, *bs, *Wa, *ba, *W2, *b2, *W3, *b3;
} critic_view;
typedef struct {
    float *W1, *b1, *W2, *b2, *W3, *b3;
} actor_gview;
typedef struct {
    float *Ws, *bs, *Wa, *ba, *W2, *b2, *W3, *b3;
} critic_gview;

static size_t actor_count(size_t S, size_t H) { return S * H + H + H * H + H + H + 1; }
static size_t critic_count(size_t S, size_t H) { return S * H + H + H + H + H * H + H + H + 1; }

static actor_view actor_at(const float *p, int S, int H) {
    actor_view v;
    size_t s = (size_t)S, h = (size_t)H;
    v.W1 = p;
    v.b1 = v.W1 + s * h;
    v.W2 = v.b1 + h;
    v.b2 = v.W2 + h * h;
    v.W3 = v.b2 + h;
    v.b3 = v.W3 + h;
    return v;
}

static critic_view critic_at(const float *p, int S, int H) {
    critic_view v;
    size_t s = (size_t)S, h = (size_t)H;
    v.Ws = p;
    v.bs = v.Ws + s * h;
    v.Wa = v.bs + h;
    v.ba = v.Wa + h;
    v.W2 = v.ba + h;
    v.b2 = v.W2 + h * h;
    v.W3 = v.b2 + h;
    v.b3 = v.W3 + h;
    return v;
}

/* The same offsets, writable (gradients). */
static actor_gview actor_grad_at(float *g, int S, int H) {
    actor_view v = actor_at(g, S, H);
    actor_gview r = {g + (v.W1 - g), g + (v.b1 - g), g + (v.W2 - g),
                    g + (v.b2 - g), g + (v.W3 - g), g + (v.b3 - g)};
    return r;
}

static critic_gview critic_grad_at(float *g, int S, int H) {
    critic_view v = critic_at(g, S, H);
    critic_gview r = {g + (v.Ws - g), g + (v.bs - g), g + (v.Wa - g), g + (v.ba - g),
                     g + (v.W2 - g), g + (v.b2 - g), g + (v.W3 - g), g + (v.b3 - g)};
    return r;
}

/* ---------------------------------------------------------------- dense kernels */
/* y[n][O] = x[n][I] W[I][O] + b[O] (b may be NULL: y = xW), then ReLU if relu. */
static void dense_fwd(const float *restrict W, const float *restrict b, int I, int O, int n,
                      const float *restrict x, float *restrict y, int relu) {
    for (int r = 0; r < n; r++) {
        float *restrict yr = y + (size_t)r * O;
        const float *restrict xr = x + (size_t)r * I;
        if (b)
            memcpy(yr, b, sizeof(float) * (size_t)O);
        else
            memset(yr, 0, sizeof(float) * (size_t)O);
        for (int i = 0; i < I; i++) {
            const float xi = xr[i];
            if (xi == 0.0f) continue; /* ReLU zeros: same result, half the work */
            const float *restrict Wi = W + (size_t)i * O;
            for (int o = 0; o < O; o++) yr[o] += xi * Wi[o];
        }
        if (relu)
            for (int o = 0; o < O; o++) yr[o] = yr[o] > 0.0f ? yr[o] : 0.0f;
    }
}

/* Dot product in a fixed order: 8 partial sums (vectorisable without reassociation), combined
 * pairwise, then the tail. */
static float dot(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Backward of y = xW + b for dy[n][O]: gW[I][O] += x^T dy and gb[O] += sum dy (when gW, gb are
 * not NULL), dx[n][I] = dy W^T (when dx is not NULL). */
static void dense_bwd(const float *restrict W, int I, int O, int n, const float *restrict x,
                      const float *restrict dy, float *restrict gW, float *restrict gb,
                      float *restrict dx) {
    for (int r = 0; r < n; r++) {
        const float *restrict dyr = dy + (size_t)r * O;
        const float *restrict xr = x + (size_t)r * I;
        if (gW) {
            for (int i = 0; i < I; i++) {
                const float xi = xr[i];
                if (xi == 0.0f) continue;
                float *restrict gWi = gW + (size_t)i * O;
                for (int o = 0; o < O; o++) gWi[o] += xi * dyr[o];
            }
        }
        if (gb)
            for (int o = 0; o < O; o++) gb[o] += dyr[o];
        if (dx) {
            float *restrict dxr = dx + (size_t)r * I;
            for (int i = 0; i < I; i++) dxr[i] = dot(W + (size_t)i * O, dyr, O);
        }
    }
}

/* dh[n][H] *= (h > 0), h post-ReLU. */
static void relu_bwd(const float *restrict h, float *restrict dh, size_t n) {
    for (size_t i = 0; i < n; i++) dh[i] = h[i] > 0.0f ? dh[i] : 0.0f;
}

static float sigmoidf(float z) {
    return z >= 0.0f ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
}

/* ---------------------------------------------------------------- networks */
/* mu[n] = actor(x[n][S]); h1, h2 [n][H] keep the post-ReLU activations. */
static void actor_fwd(const float *p, int S, int H, int n, const float *x, float *h1, float *h2,
                      float *mu) {
    actor_view v = actor_at(p, S, H);
    dense_fwd(v.W1, v.b1, S, H, n, x, h1, 1);
    dense_fwd(v.W2, v.b2, H, H, n, h1, h2, 1);
    for (int r = 0; r < n; r++) mu[r] = sigmoidf(v.b3[0] + dot(h2 + (size_t)r * H, v.W3, H));
}

/* Accumulate the actor's parameter gradient into g for upstream dmu[n]. dh1, dh2 [n][H] scratch. */
static void actor_bwd(const float *p, float *g, int S, int H, int n, const float *x,
                      const float *h1, const float *h2, const float *mu, const float *dmu,
                      float *dh1, float *dh2) {
    actor_view v = actor_at(p, S, H);
    actor_gview gv = actor_grad_at(g, S, H);
    for (int r = 0; r < n; r++) {
        float dz = dmu[r] * mu[r] * (1.0f - mu[r]); /* sigmoid' */
        const float *h2r = h2 + (size_t)r * H;
        float *dh2r = dh2 + (size_t)r * H;
        for (int k = 0; k < H; k++) {
            gv.W3[k] += h2r[k] * dz;
            dh2r[k] = h2r[k] > 0.0f ? v.W3[k] * dz : 0.0f;
        }
        gv.b3[0] += dz;
    }
    dense_bwd(v.W2, H, H, n, h1, dh2, gv.W2, gv.b2, dh1);
    relu_bwd(h1, dh1, (size_t)n * H);
    dense_bwd(v.W1, S, H, n, x, dh1, gv.W1, gv.b1, NULL);
}

/* q[n] = critic(x[n][S], a[n]); h1, h2 [n][H] keep the post-ReLU activations. */
static void critic_fwd(const float *p, int S, int H, int n, const float *x, const float *a,
                       float *h1, float *h2, float *q) {
    critic_view v = critic_at(p, S, H);
    dense_fwd(v.Ws, v.bs, S, H, n, x, h1, 0);
    for (int r = 0; r < n; r++) {
        float *restrict h = h1 + (size_t)r * H;
        const float ar = a[r];
        for (int k = 0; k < H; k++) {
            float z = h[k] + (ar * v.Wa[k] + v.ba[k]); /* fc11(s) + fc12(a) */
            h[k] = z > 0.0f ? z : 0.0f;
        }
    }
    dense_fwd(v.W2, v.b2, H, H, n, h1, h2, 1);
    for (int r = 0; r < n; r++) q[r] = v.b3[0] + dot(h2 + (size_t)r * H, v.W3, H);
}

/* Backward of the critic for upstream dq[n]: parameter gradient accumulated into g (skipped if
 * g is NULL), dQ/da into da[n] (skipped if NULL). dh1, dh2 [n][H] scratch. */
static void critic_bwd(const float *p, float *g, int S, int H, int n, const float *x,
                       const float *a, const float *h1, const float *h2, const float *dq,
                       float *da, float *dh1, float *dh2) {
    critic_view v = critic_at(p, S, H);
    critic_gview gv = {0};
    if (g) gv = critic_grad_at(g, S, H);
    for (int r = 0; r < n; r++) {
        const float d = dq[r];
        const float *h2r = h2 + (size_t)r * H;
        float *dh2r = dh2 + (size_t)r * H;
        if (g) {
            for (int k = 0; k < H; k++) gv.W3[k] += h2r[k] * d;
            gv.b3[0] += d;
        }
        for (int k = 0; k < H; k++) dh2r[k] = h2r[k] > 0.0f ? v.W3[k] * d : 0.0f;
    }
    dense_bwd(v.W2, H, H, n, h1, dh2, g ? gv.W2 : NULL, g ? gv.b2 : NULL, dh1);
    relu_bwd(h1, dh1, (size_t)n * H);
    if (g) {
        dense_bwd(v.Ws, S, H, n, x, dh1, gv.Ws, gv.bs, NULL);
        dense_bwd(v.Wa, 1, H, n, a, dh1, gv.Wa, gv.ba, NULL);
    }
    if (da)
        for (int r = 0; r < n; r++) da[r] = dot(dh1 + (size_t)r * H, v.Wa, H);
}

/* ---------------------------------------------------------------- optimiser */
/* PyTorch's Adam (betas 0.9/0.999, eps 1e-8, no weight decay, no amsgrad). */
static void adam_step(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, size_t n, float lr, int64_t *step) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float c1 = (float)(1.0 - 0.9), c2 = (float)(1.0 - 0.999); /* as Python computes them */
    *step += 1;
    double bc1 = 1.0 - pow(0.9, (double)*step), bc2 = 1.0 - pow(0.999, (double)*step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + c1 * g[i];
        v[i] = b2 * v[i] + c2 * (g[i] * g[i]);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
}

static void soft_update(float *restrict t, const float *restrict p, size_t n, float tau) {
    const float keep = 1.0f - tau;
    for (size_t i = 0; i < n; i++) t[i] = t[i] * keep + p[i] * tau;
}

/* ---------------------------------------------------------------- create / free */
void mq_ddpg_config_default(mq_ddpg_config *c, int state_dim, int layers) {
    memset(c, 0, sizeof *c);
    c->state_dim = state_dim;
    c->hidden = 300;
    c->actor_lr = 1e-4f;
    c->critic_lr = 1e-3f;
    c->tau = 0.01f;
    c->gamma = 1.0f;
    c->batch = 64;
    c->rmsize = layers > 0 && layers <= (1 << 20) ? 128 * layers : 128;
    c->warmup = 20;
    c->sigma0 = 0.5f;
    c->sigma_decay = 0.99f;
    c->seed = 234;
}

void mq_ddpg_free(mq_ddpg *d) {
    if (!d) return;
    float *bufs[] = {d->actor, d->actor_t, d->actor_g, d->actor_m, d->actor_v, d->critic,
                     d->critic_t, d->critic_g, d->critic_m, d->critic_v, d->rb_s, d->rb_a,
                     d->rb_r, d->rb_s2, d->rb_d, d->bs, d->ba, d->br, d->bs2, d->bd,
                     d->ah1, d->ah2, d->amu, d->ch1, d->ch2, d->cq, d->y, d->dq, d->da,
                     d->dh1, d->dh2, d->xh1, d->xh2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(d->idx);
    free(d);
}

static mixq_status check_config(const mq_ddpg_config *c) {
    if (!c) return mq_err(MIXQ_ERR_ARG, "ddpg: NULL config");
    if (c->state_dim < 1 || c->state_dim > (1 << 16))
        return mq_err(MIXQ_ERR_ARG, "ddpg: state_dim %d out of range 1..65536", c->state_dim);
    if (c->hidden < 1 || c->hidden > (1 << 14))
        return mq_err(MIXQ_ERR_ARG, "ddpg: hidden %d out of range 1..16384", c->hidden);
    if (c->batch < 1 || c->batch > (1 << 16))
        return mq_err(MIXQ_ERR_ARG, "ddpg: batch %d out of range 1..65536", c->batch);
    if (c->rmsize < c->batch || c->rmsize > (1 << 26))
        return mq_err(MIXQ_ERR_ARG,
                      "ddpg: rmsize %d out of range; hint: the replay buffer must hold at least "
                      "one batch (%d) and at most 2^26 transitions",
                      c->rmsize, c->batch);
    if (c->warmup < 0) return mq_err(MIXQ_ERR_ARG, "ddpg: warmup %d is negative", c->warmup);
    if (!(c->actor_lr > 0.0f) || !(c->critic_lr > 0.0f) || !isfinite(c->actor_lr) ||
        !isfinite(c->critic_lr))
        return mq_err(MIXQ_ERR_ARG, "ddpg: learning rates must be positive (actor %g, critic %g)",
                      (double)c->actor_lr, (double)c->critic_lr);
    if (!(c->tau >= 0.0f && c->tau <= 1.0f))
        return mq_err(MIXQ_ERR_ARG, "ddpg: tau %g out of range [0, 1]", (double)c->tau);
    if (!isfinite(c->gamma))
        return mq_err(MIXQ_ERR_ARG, "ddpg: gamma %g is not finite", (double)c->gamma);
    if (!(c->sigma0 >= 0.0f) || !isfinite(c->sigma0) || !(c->sigma_decay > 0.0f) ||
        !isfinite(c->sigma_decay) || !(c->sigma_min >= 0.0f) || !isfinite(c->sigma_min))
        return mq_err(MIXQ_ERR_ARG, "ddpg: sigma0 %g and sigma_min %g must be >= 0 and sigma_decay %g > 0",
                      (double)c->sigma0, (double)c->sigma_min, (double)c->sigma_decay);
    return MIXQ_OK;
}

/* Allocate every buffer (zero-filled); no initialisation of weights or RNG. */
static mixq_status ddpg_alloc(const mq_ddpg_config *c, mq_ddpg **out) {
    *out = NULL;
    mixq_status st = check_config(c);
    if (st) return st;
    mq_ddpg *d = mq_calloc(1, sizeof *d, "ddpg agent");
    if (!d) return MIXQ_ERR_NOMEM;
    d->cfg = *c;
    d->S = c->state_dim;
    d->H = c->hidden;
    d->B = c->batch;
    d->R = c->rmsize;
    const size_t S = (size_t)d->S, H = (size_t)d->H, B = (size_t)d->B, R = (size_t)d->R;
    d->na = actor_count(S, H);
    d->nc = critic_count(S, H);
    int ok = 1;
#define ALLOC(field, n, what) ok = ok && (d->field = mq_calloc((n), sizeof *d->field, what)) != NULL
    ALLOC(actor, d->na, "ddpg actor");
    ALLOC(actor_t, d->na, "ddpg target actor");
    ALLOC(actor_g, d->na, "ddpg actor gradient");
    ALLOC(actor_m, d->na, "ddpg actor Adam m");
    ALLOC(actor_v, d->na, "ddpg actor Adam v");
    ALLOC(critic, d->nc, "ddpg critic");
    ALLOC(critic_t, d->nc, "ddpg target critic");
    ALLOC(critic_g, d->nc, "ddpg critic gradient");
    ALLOC(critic_m, d->nc, "ddpg critic Adam m");
    ALLOC(critic_v, d->nc, "ddpg critic Adam v");
    ALLOC(rb_s, R * S, "ddpg replay states");
    ALLOC(rb_a, R, "ddpg replay actions");
    ALLOC(rb_r, R, "ddpg replay rewards");
    ALLOC(rb_s2, R * S, "ddpg replay next states");
    ALLOC(rb_d, R, "ddpg replay done flags");
    ALLOC(idx, B, "ddpg batch indices");
    ALLOC(bs, B * S, "ddpg batch states");
    ALLOC(ba, B, "ddpg batch actions");
    ALLOC(br, B, "ddpg batch rewards");
    ALLOC(bs2, B * S, "ddpg batch next states");
    ALLOC(bd, B, "ddpg batch done flags");
    ALLOC(ah1, B * H, "ddpg actor activations");
    ALLOC(ah2, B * H, "ddpg actor activations");
    ALLOC(amu, B, "ddpg actor outputs");
    ALLOC(ch1, B * H, "ddpg critic activations");
    ALLOC(ch2, B * H, "ddpg critic activations");
    ALLOC(cq, B, "ddpg critic outputs");
    ALLOC(y, B, "ddpg critic targets");
    ALLOC(dq, B, "ddpg dQ");
    ALLOC(da, B, "ddpg dQ/da");
    ALLOC(dh1, B * H, "ddpg backward scratch");
    ALLOC(dh2, B * H, "ddpg backward scratch");
    ALLOC(xh1, H, "ddpg act scratch");
    ALLOC(xh2, H, "ddpg act scratch");
#undef ALLOC
    if (!ok) {
        mq_ddpg_free(d);
        return MIXQ_ERR_NOMEM;
    }
    *out = d;
    return MIXQ_OK;
}

/* PyTorch's nn.Linear default: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void init_uniform(mq_rng *rng, float *p, size_t n, int fan_in) {
    const float bound = (float)(1.0 / sqrt((double)fan_in));
    for (size_t i = 0; i < n; i++) p[i] = bound * (2.0f * mq_rng_uniform(rng) - 1.0f);
}

mixq_status mq_ddpg_create(const mq_ddpg_config *c, mq_ddpg **out) {
    if (!out) return mq_err(MIXQ_ERR_ARG, "ddpg: NULL output pointer");
    mq_ddpg *d;
    mixq_status st = ddpg_alloc(c, &d);
    if (st) return st;
    const int S = d->S, H = d->H;
    const size_t s = (size_t)S, h = (size_t)H;
    mq_rng_seed(&d->rng, c->seed);
    /* Layer by layer, weight then bias, as PyTorch constructs them; actor, then critic. */
    actor_gview a = actor_grad_at(d->actor, S, H);
    init_uniform(&d->rng, a.W1, s * h, S);
    init_uniform(&d->rng, a.b1, h, S);
    init_uniform(&d->rng, a.W2, h * h, H);
    init_uniform(&d->rng, a.b2, h, H);
    init_uniform(&d->rng, a.W3, h, H);
    init_uniform(&d->rng, a.b3, 1, H);
    critic_gview q = critic_grad_at(d->critic, S, H);
    init_uniform(&d->rng, q.Ws, s * h, S);
    init_uniform(&d->rng, q.bs, h, S);
    init_uniform(&d->rng, q.Wa, h, 1);
    init_uniform(&d->rng, q.ba, h, 1);
    init_uniform(&d->rng, q.W2, h * h, H);
    init_uniform(&d->rng, q.b2, h, H);
    init_uniform(&d->rng, q.W3, h, H);
    init_uniform(&d->rng, q.b3, 1, H);
    memcpy(d->actor_t, d->actor, sizeof(float) * d->na);
    memcpy(d->critic_t, d->critic, sizeof(float) * d->nc);
    *out = d;
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- acting */
static double norm_cdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

/* Inverse standard normal CDF: Acklam's rational approximation plus one Halley step. */
static double norm_icdf(double p) {
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00, 2.938163982698783e+00};
    static const double e[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    const double plow = 0.02425;
    if (!(p > 0.0)) return -HUGE_VAL;
    if (!(p < 1.0)) return HUGE_VAL;
    double x;
    if (p < plow) {
        double q = sqrt(-2.0 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1.0);
    } else if (p <= 1.0 - plow) {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    } else {
        double q = sqrt(-2.0 * log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1.0);
    }
    double err = norm_cdf(x) - p;
    double u = err * 2.50662827463100050242 * exp(0.5 * x * x);
    return x - u / (1.0 + 0.5 * x * u);
}

/* A sample of N(mu, sigma^2) truncated to [0, 1] from one uniform draw (inverse CDF). */
static float truncnorm01(mq_rng *rng, float mu, float sigma) {
    float u = mq_rng_uniform(rng); /* drawn even in the degenerate cases: one draw per call */
    if (!(sigma > 0.0f)) return mu < 0.0f ? 0.0f : mu > 1.0f ? 1.0f : mu;
    double m = mu, s = sigma;
    double pa = norm_cdf((0.0 - m) / s), pb = norm_cdf((1.0 - m) / s);
    float x;
    if (!(pb - pa > 1e-300)) {
        x = mu;
    } else {
        double p = pa + ((double)u + 0x1p-25) * (pb - pa); /* u + 2^-25 in (0, 1): midpoints */
        x = (float)(m + s * norm_icdf(p));
    }
    if (!(x >= 0.0f)) x = 0.0f; /* np.clip as HAQ; also catches NaN */
    if (x > 1.0f) x = 1.0f;
    return x;
}

float mq_ddpg_sigma(const mq_ddpg *d, int episode) {
    float sigma = (float)((double)d->cfg.sigma0 *
                          pow((double)d->cfg.sigma_decay, (double)(episode - d->cfg.warmup)));
    return sigma < d->cfg.sigma_min ? d->cfg.sigma_min : sigma;
}

float mq_ddpg_act(mq_ddpg *d, const float *s, int episode, int explore) {
    if (explore && episode <= d->cfg.warmup) return mq_rng_uniform(&d->rng);
    float mu;
    actor_fwd(d->actor, d->S, d->H, 1, s, d->xh1, d->xh2, &mu);
    if (!explore) return mu;
    return truncnorm01(&d->rng, mu, mq_ddpg_sigma(d, episode));
}

/* ---------------------------------------------------------------- replay */
void mq_ddpg_store(mq_ddpg *d, const float *s, float a, float r, const float *s_next, int done) {
    const size_t S = (size_t)d->S, i = (size_t)d->rb_pos;
    memcpy(d->rb_s + i * S, s, sizeof(float) * S);
    if (s_next)
        memcpy(d->rb_s2 + i * S, s_next, sizeof(float) * S);
    else
        memset(d->rb_s2 + i * S, 0, sizeof(float) * S);
    d->rb_a[i] = a;
    d->rb_r[i] = r;
    d->rb_d[i] = done ? 1.0f : 0.0f;
    d->rb_pos = d->rb_pos + 1 == d->R ? 0 : d->rb_pos + 1;
    if (d->rb_count < d->R) d->rb_count++;
}

/* ---------------------------------------------------------------- update */
/* Critic loss MSE(Q(s,a), y) over n rows (bs, ba, y already in place): loss returned (double),
 * gradient written into critic_g (zeroed first). */
static double critic_loss_grad(mq_ddpg *d, int n) {
    critic_fwd(d->critic, d->S, d->H, n, d->bs, d->ba, d->ch1, d->ch2, d->cq);
    double loss = 0;
    for (int r = 0; r < n; r++) {
        float e = d->cq[r] - d->y[r];
        loss += (double)e * e;
        d->dq[r] = 2.0f * e / (float)n;
    }
    memset(d->critic_g, 0, sizeof(float) * d->nc);
    critic_bwd(d->critic, d->critic_g, d->S, d->H, n, d->bs, d->ba, d->ch1, d->ch2, d->dq, NULL,
               d->dh1, d->dh2);
    return loss / n;
}

/* Actor loss -mean Q(s, mu(s)) over n rows of bs: loss returned (double), gradient written into
 * actor_g (zeroed first). The critic's parameter gradient is not touched. */
static double actor_loss_grad(mq_ddpg *d, int n) {
    actor_fwd(d->actor, d->S, d->H, n, d->bs, d->ah1, d->ah2, d->amu);
    critic_fwd(d->critic, d->S, d->H, n, d->bs, d->amu, d->ch1, d->ch2, d->cq);
    double loss = 0;
    for (int r = 0; r < n; r++) {
        loss -= d->cq[r];
        d->dq[r] = -1.0f / (float)n;
    }
    critic_bwd(d->critic, NULL, d->S, d->H, n, d->bs, d->amu, d->ch1, d->ch2, d->dq, d->da,
               d->dh1, d->dh2);
    memset(d->actor_g, 0, sizeof(float) * d->na);
    actor_bwd(d->actor, d->actor_g, d->S, d->H, n, d->bs, d->ah1, d->ah2, d->amu, d->da, d->dh1,
              d->dh2);
    return loss / n;
}

int mq_ddpg_update(mq_ddpg *d, float *critic_loss) {
    const int B = d->B, S = d->S, H = d->H;
    if (d->rb_count < B) return 0;
    /* B distinct indices, uniform over the stored transitions (rejection of repeats). */
    for (int k = 0; k < B; k++) {
        for (;;) {
            int j = (int)mq_rng_below(&d->rng, (uint32_t)d->rb_count), dup = 0;
            for (int t = 0; t < k && !dup; t++) dup = d->idx[t] == j;
            if (!dup) {
                d->idx[k] = j;
                break;
            }
        }
    }
    double mean = 0;
    for (int k = 0; k < B; k++) {
        const size_t j = (size_t)d->idx[k];
        memcpy(d->bs + (size_t)k * S, d->rb_s + j * S, sizeof(float) * (size_t)S);
        memcpy(d->bs2 + (size_t)k * S, d->rb_s2 + j * S, sizeof(float) * (size_t)S);
        d->ba[k] = d->rb_a[j];
        d->br[k] = d->rb_r[j];
        d->bd[k] = d->rb_d[j];
        mean += d->rb_r[j];
    }
    mean /= B;
    if (!d->baseline_set) {
        d->baseline = mean;
        d->baseline_set = 1;
    } else {
        d->baseline += DDPG_BASELINE_ALPHA * (mean - d->baseline);
    }
    for (int k = 0; k < B; k++) d->br[k] = (float)((double)d->br[k] - d->baseline);
    /* Targets from the target networks (activations scratch reused). */
    actor_fwd(d->actor_t, S, H, B, d->bs2, d->ah1, d->ah2, d->amu);
    critic_fwd(d->critic_t, S, H, B, d->bs2, d->amu, d->ch1, d->ch2, d->cq);
    for (int k = 0; k < B; k++)
        d->y[k] = d->br[k] + d->cfg.gamma * (1.0f - d->bd[k]) * d->cq[k];
    double closs = critic_loss_grad(d, B);
    adam_step(d->critic, d->critic_g, d->critic_m, d->critic_v, d->nc, d->cfg.critic_lr,
              &d->critic_step);
    actor_loss_grad(d, B);
    adam_step(d->actor, d->actor_g, d->actor_m, d->actor_v, d->na, d->cfg.actor_lr,
              &d->actor_step);
    soft_update(d->actor_t, d->actor, d->na, d->cfg.tau);
    soft_update(d->critic_t, d->critic, d->nc, d->cfg.tau);
    if (critic_loss) *critic_loss = (float)closs;
    return 1;
}

/* ---------------------------------------------------------------- test hooks */
/* For tests only (declared in ddpg.h). */
mixq_status mq_ddpg_debug_grads(mq_ddpg *d, int n, const float *S, const float *A, const float *Y,
                                double *critic_loss, float *critic_grad, double *actor_loss,
                                float *actor_grad) {
    if (n < 1 || n > d->B) return mq_err(MIXQ_ERR_ARG, "ddpg debug: n %d not in 1..%d", n, d->B);
    memcpy(d->bs, S, sizeof(float) * (size_t)n * d->S);
    memcpy(d->ba, A, sizeof(float) * (size_t)n);
    memcpy(d->y, Y, sizeof(float) * (size_t)n);
    double cl = critic_loss_grad(d, n);
    if (critic_loss) *critic_loss = cl;
    if (critic_grad) memcpy(critic_grad, d->critic_g, sizeof(float) * d->nc);
    double al = actor_loss_grad(d, n);
    if (actor_loss) *actor_loss = al;
    if (actor_grad) memcpy(actor_grad, d->actor_g, sizeof(float) * d->na);
    return MIXQ_OK;
}

float *mq_ddpg_debug_params(mq_ddpg *d, int which, long *count) {
    float *p[4] = {d->actor, d->critic, d->actor_t, d->critic_t};
    if (which < 0 || which > 3) return NULL;
    if (count) *count = (long)(which & 1 ? d->nc : d->na);
    return p[which];
}

/* ---------------------------------------------------------------- checkpoint */
typedef struct {
    int32_t state_dim, hidden, batch, rmsize;
} ddpg_dims;

mixq_status mq_ddpg_write(const mq_ddpg *d, FILE *f, const char *tmp) {
    mixq_status st = MIXQ_OK;
    const uint32_t ver = DDPG_VERSION, endian = DDPG_ENDIAN;
    const ddpg_dims dims = {d->S, d->H, d->B, d->R};
    const int32_t bset = d->baseline_set, pos = d->rb_pos, cnt = d->rb_count;
    const size_t n = (size_t)d->rb_count, S = (size_t)d->S;
#define W(ptr, bytes) \
    if (!st) st = mq_fwrite((ptr), (bytes), f, tmp)
    W(ddpg_magic, sizeof ddpg_magic);
    W(&ver, sizeof ver);
    W(&endian, sizeof endian);
    W(&dims, sizeof dims);
    W(d->rng.s, sizeof d->rng.s);
    W(&d->actor_step, sizeof d->actor_step);
    W(&d->critic_step, sizeof d->critic_step);
    W(&d->baseline, sizeof d->baseline);
    W(&bset, sizeof bset);
    W(&pos, sizeof pos);
    W(&cnt, sizeof cnt);
    W(d->actor, sizeof(float) * d->na);
    W(d->actor_t, sizeof(float) * d->na);
    W(d->actor_m, sizeof(float) * d->na);
    W(d->actor_v, sizeof(float) * d->na);
    W(d->critic, sizeof(float) * d->nc);
    W(d->critic_t, sizeof(float) * d->nc);
    W(d->critic_m, sizeof(float) * d->nc);
    W(d->critic_v, sizeof(float) * d->nc);
    W(d->rb_s, sizeof(float) * n * S);
    W(d->rb_a, sizeof(float) * n);
    W(d->rb_r, sizeof(float) * n);
    W(d->rb_s2, sizeof(float) * n * S);
    W(d->rb_d, sizeof(float) * n);
#undef W
    return st;
}

mixq_status mq_ddpg_save(const mq_ddpg *d, const char *path) {
    char *tmp;
    FILE *f;
    mixq_status st = mq_fopen_tmp(path, &f, &tmp);
    if (st) return st;
    return mq_fclose_tmp(f, tmp, path, mq_ddpg_write(d, f, tmp));
}

static mixq_status check_dim(const char *path, const char *name, int32_t file, int agent) {
    if (file == agent) return MIXQ_OK;
    return mq_err(MIXQ_ERR_FORMAT,
                  "'%s': DDPG checkpoint has %s %d but the agent was created with %d; hint: "
                  "resume with the same model, state and agent settings",
                  path, name, (int)file, agent);
}

static mixq_status load_into(mq_ddpg *t, FILE *f, const char *path) {
    char magic[8];
    uint32_t ver, endian;
    ddpg_dims dims;
    int32_t bset, pos, cnt;
    mixq_status st;
    if ((st = mq_fread(magic, sizeof magic, f, path, "magic"))) return st;
    if (memcmp(magic, ddpg_magic, sizeof magic) != 0)
        return mq_err(MIXQ_ERR_FORMAT, "'%s' is not a DDPG agent checkpoint (bad magic)", path);
    if ((st = mq_fread(&ver, sizeof ver, f, path, "version"))) return st;
    if ((st = mq_fread(&endian, sizeof endian, f, path, "byte-order tag"))) return st;
    if (endian != DDPG_ENDIAN)
        return mq_err(MIXQ_ERR_FORMAT, "'%s': DDPG checkpoint written with another byte order",
                      path);
    if (ver != DDPG_VERSION)
        return mq_err(MIXQ_ERR_FORMAT, "'%s': DDPG checkpoint version %u, this build reads %u",
                      path, ver, DDPG_VERSION);
    if ((st = mq_fread(&dims, sizeof dims, f, path, "dims"))) return st;
    if ((st = check_dim(path, "state_dim", dims.state_dim, t->S)) ||
        (st = check_dim(path, "hidden", dims.hidden, t->H)) ||
        (st = check_dim(path, "batch", dims.batch, t->B)) ||
        (st = check_dim(path, "rmsize", dims.rmsize, t->R)))
        return st;
    if ((st = mq_fread(t->rng.s, sizeof t->rng.s, f, path, "RNG state")) ||
        (st = mq_fread(&t->actor_step, sizeof t->actor_step, f, path, "actor Adam step")) ||
        (st = mq_fread(&t->critic_step, sizeof t->critic_step, f, path, "critic Adam step")) ||
        (st = mq_fread(&t->baseline, sizeof t->baseline, f, path, "reward baseline")) ||
        (st = mq_fread(&bset, sizeof bset, f, path, "baseline flag")) ||
        (st = mq_fread(&pos, sizeof pos, f, path, "replay position")) ||
        (st = mq_fread(&cnt, sizeof cnt, f, path, "replay count")))
        return st;
    if (t->actor_step < 0 || t->critic_step < 0 || (bset != 0 && bset != 1) || cnt < 0 ||
        cnt > t->R || pos < 0 || pos >= t->R || (cnt < t->R && pos != cnt) ||
        !isfinite(t->baseline))
        return mq_err(MIXQ_ERR_FORMAT,
                      "'%s': corrupt DDPG checkpoint (steps %lld/%lld, baseline flag %d, replay "
                      "position %d count %d of %d)",
                      path, (long long)t->actor_step, (long long)t->critic_step, (int)bset,
                      (int)pos, (int)cnt, t->R);
    t->baseline_set = bset;
    t->rb_pos = pos;
    t->rb_count = cnt;
    const size_t n = (size_t)cnt, S = (size_t)t->S;
    if ((st = mq_fread(t->actor, sizeof(float) * t->na, f, path, "actor weights")) ||
        (st = mq_fread(t->actor_t, sizeof(float) * t->na, f, path, "target actor weights")) ||
        (st = mq_fread(t->actor_m, sizeof(float) * t->na, f, path, "actor Adam m")) ||
        (st = mq_fread(t->actor_v, sizeof(float) * t->na, f, path, "actor Adam v")) ||
        (st = mq_fread(t->critic, sizeof(float) * t->nc, f, path, "critic weights")) ||
        (st = mq_fread(t->critic_t, sizeof(float) * t->nc, f, path, "target critic weights")) ||
        (st = mq_fread(t->critic_m, sizeof(float) * t->nc, f, path, "critic Adam m")) ||
        (st = mq_fread(t->critic_v, sizeof(float) * t->nc, f, path, "critic Adam v")) ||
        (st = mq_fread(t->rb_s, sizeof(float) * n * S, f, path, "replay states")) ||
        (st = mq_fread(t->rb_a, sizeof(float) * n, f, path, "replay actions")) ||
        (st = mq_fread(t->rb_r, sizeof(float) * n, f, path, "replay rewards")) ||
        (st = mq_fread(t->rb_s2, sizeof(float) * n * S, f, path, "replay next states")) ||
        (st = mq_fread(t->rb_d, sizeof(float) * n, f, path, "replay done flags")))
        return st;
    return MIXQ_OK;
}

mixq_status mq_ddpg_read(mq_ddpg *d, FILE *f, const char *path) {
    mq_ddpg *t;
    mixq_status st = ddpg_alloc(&d->cfg, &t);
    if (st) return st;
    st = load_into(t, f, path);
    if (!st) { /* commit: swap everything, free the old state */
        mq_ddpg swap = *d;
        *d = *t;
        *t = swap;
    }
    mq_ddpg_free(t);
    return st;
}

mixq_status mq_ddpg_load(mq_ddpg *d, const char *path) {
    mq_ddpg *t;
    mixq_status st = ddpg_alloc(&d->cfg, &t);
    if (st) return st;
    FILE *f = mq_fopen(path, "rb");
    if (!f) {
        mq_ddpg_free(t);
        return MIXQ_ERR_IO;
    }
    st = load_into(t, f, path);
    if (!st && fgetc(f) != EOF)
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': unexpected data after the DDPG checkpoint", path);
    fclose(f);
    if (!st) { /* commit: swap everything, free the old state */
        mq_ddpg swap = *d;
        *d = *t;
        *t = swap;
    }
    mq_ddpg_free(t);
    return st;
}
