/* AutoQ (Lou, Guo, Kim, Liu, Jiang, ICLR 2020) behind the agent interface (search_int.h):
 * hierarchical DDPG over per-kernel weight widths. No code was published; algorithms.md §2 holds
 * what is known, and what is chosen here is said here and in README "AutoQ".
 *
 * An episode, layer by layer:
 *   - the high-level controller (HLC, a DDPG agent on HAQ's layer state, env.h) takes two steps
 *     per layer as HAQ does: the first picks the layer's goal, the mean weight width of its
 *     kernels (continuous in [b_min, b_max]), the second its activation width;
 *   - the low-level controller (LLC, a second DDPG agent with its own replay buffer) then picks
 *     each kernel's width, kernel by kernel, from the layer's static features, the activation
 *     width, the goal, the kernel's index, its weight statistics (mean |w|, standard deviation,
 *     max |w| and L2 norm, each over the layer's largest), the bits per kernel still to spend to
 *     meet the goal, and the previous kernel's width.
 * During the warm-up (HAQ's random episodes) the low level does not draw each kernel's width at
 * random: that splits every layer into up to 7 widths, and on BISMO such a split layer costs more
 * than its uniform equal (those candidates cost 1.2-1.4x W8A8 on resnet20). It meets the goal
 * exactly instead, with the two widths around it in whole tiles of mq_hw_kernel_rows kernels (the
 * first kernels at the upper width), and stores those actions: the low level starts from
 * goal-following data. After it, the low level's exploration noise is drawn once per layer and
 * added to every kernel's action (clamped to [0, 1]), with the DDPG schedule's sigma: a draw per
 * kernel would split every layer again; the kernels differ by what the actor learned. The first and last layers stay at 8/8 when pinned (the HLC still steps through them, as HAQ's
 * agent does). The policy is walled to the budget by the kernel-wise wall (mq_env_wall_kernels:
 * the least quantization error per unit of cost saved first) and scored through the cache
 * (evals.jsonl "kw").
 *
 * Rewards (the extrinsic one is the run's reward, autoq_reward, unless cfg->reward is set):
 *   extrinsic  r = psi_acc ln(acc / acc_fp32) - psi_lat ln(latency ratio) - psi_e ln(energy
 *              ratio), ratios to uniform W8A8 on the target; in accuracy mode a drop beyond
 *              max_drop costs 1 + 0.1 x the excess more. Defaults: resource mode psi_acc 10
 *              (0.1 a point near the float accuracy, HAQ's scale), psi_lat = psi_e = 0 (the wall
 *              holds the budget); accuracy mode psi_acc 10, psi_lat = psi_e = 0.5.
 *   agent's    R = r - penalty x (bits the wall cut / bits it could cut), HAQ's exploration
 *              penalty (--rl penalty): every HLC step of the episode gets R.
 *   intrinsic  the LLC's, per layer: -(1 - zeta) |goal - mean kernel width| / (b_max - b_min)
 *              + zeta R, zeta rising linearly from zeta0 (0.1) after the warm-up to zeta1 (0.9)
 *              at the last episode: first follow the goals, then the task.
 * The LLC's transitions are terminal (a contextual bandit: its critic estimates a kernel
 * choice's reward directly, not a sum over a layer's 16 to 512 kernels); the HLC's chain over the
 * episode's 2 L steps as HAQ's do.
 *
 * Goal relabelling (HIRO, Nachum et al. 2018), when the HLC's transitions are stored: the goal
 * step's action becomes, of 10 candidates (the goal asked, the mean width achieved, and 8 draws
 * around that mean, sd (b_max - b_min) / 4), the one under which the LLC's current actor makes
 * the kernel actions taken most likely (least squared distance between the actions and the
 * actor's means). HIRO relabels when it samples from its buffer; here it is done once, when
 * stored (the LLC then is the one that acted). `relabel=none` stores the goal asked.
 *
 * Scale: resnet20 has 688 kernels in its searched layers, 44 HLC steps: an episode acts about
 * 730 times, each a small MLP forward; updates per episode: 2 L for the HLC (HAQ's), llc_updates
 * (64) for the LLC. The seconds spent by the agent and by scoring are in the progress line.
 *
 * Deterministic: the agents' own RNGs (saved in the checkpoint) and relabelling draws seeded by
 * the episode, so a killed run resumes to the same files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"
#include "nn/model.h"
#include "search/ddpg.h"
#include "search/hessian.h"
#include "search/search_int.h"

#define AQ_LS 17    /* the LLC's state */
#define AQ_HIRO 10  /* goal candidates of a relabelling */

static const char aq_magic[8] = {'M', 'Q', 'A', 'U', 'T', 'O', 'Q', '1'};

typedef struct aq_settings {
    double psi_acc, psi_lat, psi_e, zeta0, zeta1;
    int llc_hidden, llc_updates, relabel;
} aq_settings;

static aq_settings settings(const mq_search *s) {
    const mixq_search_config *c = s->cfg;
    aq_settings h;
    h.psi_acc = c->autoq_psi_acc >= 0 ? c->autoq_psi_acc : 10;
    h.psi_lat = c->autoq_psi_lat >= 0 ? c->autoq_psi_lat : c->accuracy_mode ? 0.5 : 0;
    h.psi_e = c->autoq_psi_e >= 0 ? c->autoq_psi_e : c->accuracy_mode ? 0.5 : 0;
    h.zeta0 = c->autoq_zeta0 >= 0 ? c->autoq_zeta0 : 0.1;
    h.zeta1 = c->autoq_zeta1 >= 0 ? c->autoq_zeta1 : 0.9;
    h.llc_hidden = c->autoq_llc_hidden > 0 ? c->autoq_llc_hidden : 128;
    h.llc_updates = c->autoq_llc_updates >= 0 ? c->autoq_llc_updates : 64;
    h.relabel = c->autoq_relabel >= 0 ? c->autoq_relabel : 1;
    return h;
}

/* kernels of the searched (unpinned) layers */
static int pinned(const mq_env *e, int l) { return e->pin_ends && (l == 0 || l == e->L - 1); }
static int searched_kernels(const mq_env *e) {
    int n = 0;
    for (int l = 0; l < e->L; l++)
        if (!pinned(e, l)) n += e->koff[l + 1] - e->koff[l];
    return n;
}

static void llc_cfg(const mq_search *s, mq_ddpg_config *dc) {
    mq_haq_ddpg_config(s, dc);
    const aq_settings h = settings(s);
    dc->state_dim = AQ_LS;
    dc->hidden = h.llc_hidden;
    const int nk = MQ_MAX(1, searched_kernels(&s->env));
    dc->rmsize = s->cfg->rl_replay > 0 ? s->cfg->rl_replay : MQ_MAX(dc->batch, 16 * nk); /* 16 episodes */
    dc->seed = mq_seed_mix(s->cfg->seed, 0x4c4c43, 0); /* "LLC" */
}

static mixq_status autoq_check(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    if (mq_hw_kernel_rows(s->hw) == 0)
        return mq_err(MIXQ_ERR_ARG, "autoq: target '%s' keeps weights bit-parallel, so per-kernel widths cost "
                      "what its widest kernel costs and gain nothing; hint: a bit-serial target (bismo_edge, loom, "
                      "a cpu table) or size/bitops, or a layer-wise agent (haq)", mixq_hw_name(s->hw));
    if (c->kernel_wise)
        return mq_err(MIXQ_ERR_ARG, "autoq: --kernel-wise is hawq's switch; autoq is kernel-wise already");
    const aq_settings h = settings(s);
    if (h.zeta0 > 1 || h.zeta1 > 1)
        return mq_err(MIXQ_ERR_ARG, "autoq: zeta0 %g and zeta1 %g must be within 0..1", h.zeta0, h.zeta1);
    mq_ddpg_config dc;
    mq_haq_ddpg_config(s, &dc);
    if (dc.rmsize < dc.batch)
        return mq_err(MIXQ_ERR_ARG, "--rl replay=%d is smaller than the DDPG batch (--rl batch=%d); hint: --rl "
                      "replay=%d or more", dc.rmsize, dc.batch, dc.batch);
    return MIXQ_OK;
}

static void autoq_config(const mq_search *s, char *buf, size_t n) {
    mq_ddpg_config dc, lc;
    mq_haq_ddpg_config(s, &dc);
    llc_cfg(s, &lc);
    const mq_haq_settings x = mq_haq_settings_of(s);
    const aq_settings h = settings(s);
    snprintf(buf, n,
             "\"psi_acc\": %g, \"psi_lat\": %g, \"psi_e\": %g, \"zeta0\": %g, \"zeta1\": %g, \"relabel\": \"%s\", "
             "\"hlc\": {\"hidden\": %d, \"batch\": %d, \"replay\": %d, \"actor_lr\": %g, \"critic_lr\": %g, "
             "\"tau\": %g, \"gamma\": %g, \"sigma\": %g, \"sigma_decay\": %.9g, \"sigma_min\": %g}, "
             "\"llc\": {\"hidden\": %d, \"replay\": %d, \"updates\": %d}, \"penalty\": %g, \"redraw\": %d",
             h.psi_acc, h.psi_lat, h.psi_e, h.zeta0, h.zeta1, h.relabel ? "hiro" : "none", dc.hidden, dc.batch,
             dc.rmsize, (double)dc.actor_lr, (double)dc.critic_lr, (double)dc.tau, (double)dc.gamma,
             (double)dc.sigma0, (double)dc.sigma_decay, (double)dc.sigma_min, lc.hidden, lc.rmsize, h.llc_updates,
             (double)x.penalty, x.redraw);
}

/* The extrinsic reward (the run's reward unless cfg->reward is set). */
static double autoq_reward(const mixq_eval_record *r, void *user) {
    const mq_search *s = user;
    const aq_settings h = settings(s);
    const double y = r->fp32_accuracy > 0 ? r->accuracy / r->fp32_accuracy : 0;
    double v = h.psi_acc * log(fmax(y, 1e-3));
    /* A target without a latency or energy model reports that ratio as 0: its term is skipped
     * rather than adding a constant (-psi ln 1e-9) to every reward. */
    if (h.psi_lat > 0 && r->ratio[0] > 0) v -= h.psi_lat * log(r->ratio[0]);
    if (h.psi_e > 0 && r->ratio[1] > 0) v -= h.psi_e * log(r->ratio[1]);
    const double drop = r->fp32_accuracy - r->accuracy;
    if (s->cfg->accuracy_mode && drop > s->cfg->max_drop) v -= 1 + 0.1 * (drop - s->cfg->max_drop);
    return v;
}

/* ------------------------------------------------------------------ the two agents */

typedef struct aq_agents {
    mq_ddpg *hlc, *llc;
} aq_agents;

static mixq_status ckpt_save(const void *state, const char *path) {
    const aq_agents *g = state;
    char *tmp;
    FILE *f;
    mixq_status st = mq_fopen_tmp(path, &f, &tmp);
    if (st) return st;
    st = mq_fwrite(aq_magic, sizeof aq_magic, f, tmp);
    if (!st) st = mq_ddpg_write(g->hlc, f, tmp);
    if (!st) st = mq_ddpg_write(g->llc, f, tmp);
    return mq_fclose_tmp(f, tmp, path, st);
}

static mixq_status ckpt_load(void *state, const char *path) {
    aq_agents *g = state;
    FILE *f = mq_fopen(path, "rb");
    if (!f) return MIXQ_ERR_IO;
    char magic[sizeof aq_magic];
    mixq_status st = mq_fread(magic, sizeof magic, f, path, "magic");
    if (!st && memcmp(magic, aq_magic, sizeof magic))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is not an AutoQ agent checkpoint (bad magic)", path);
    if (!st) st = mq_ddpg_read(g->hlc, f, path);
    if (!st) st = mq_ddpg_read(g->llc, f, path);
    if (!st && fgetc(f) != EOF) st = mq_err(MIXQ_ERR_FORMAT, "'%s': unexpected data after the AutoQ checkpoint", path);
    fclose(f);
    return st;
}

/* ------------------------------------------------------------------ states */

/* What an episode needs beyond the env: each kernel's statistics [NK][4] in 0..1. */
typedef struct aq_ctx {
    const mq_env *e;
    int bmin, bmax;
    float (*kst)[4];
} aq_ctx;

static mixq_status kernel_stats(const mq_search *s, aq_ctx *x) {
    const mq_env *e = &s->env;
    x->kst = mq_calloc((size_t)e->koff[e->L], sizeof *x->kst, "kernel statistics");
    if (!x->kst) return MIXQ_ERR_NOMEM;
    const mixq_model *m = s->fp;
    for (int l = 0; l < e->L; l++) {
        const mq_node *nd = &m->nodes[e->node[l]];
        const mq_tensor *t = &m->tensors[nd->t_w];
        const float *w = m->params + t->off;
        const int K = e->koff[l + 1] - e->koff[l];
        const int64_t per = t->numel / K;
        float hi[4] = {0, 0, 0, 0};
        float(*k)[4] = x->kst + e->koff[l];
        for (int i = 0; i < K; i++) {
            double sa = 0, sq = 0, mx = 0, mean = 0;
            for (int64_t j = 0; j < per; j++) mean += w[(int64_t)i * per + j];
            mean /= (double)per;
            double l2 = 0;
            for (int64_t j = 0; j < per; j++) {
                const double v = w[(int64_t)i * per + j];
                sa += fabs(v), sq += (v - mean) * (v - mean), mx = fmax(mx, fabs(v)), l2 += v * v;
            }
            k[i][0] = (float)(sa / (double)per), k[i][1] = (float)sqrt(sq / (double)per), k[i][2] = (float)mx;
            k[i][3] = (float)sqrt(l2);
            for (int q = 0; q < 4; q++) hi[q] = fmaxf(hi[q], k[i][q]);
        }
        for (int i = 0; i < K; i++)
            for (int q = 0; q < 4; q++) k[i][q] = hi[q] > 0 ? k[i][q] / hi[q] : 0;
    }
    return MIXQ_OK;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The LLC's state for kernel i of layer l: goal g, activation bits a, `spent` bits by kernels
 * 0..i-1, the previous kernel's width `prev` (the goal for the first). */
static void llc_state(const aq_ctx *x, int l, double g, int a, int i, long spent, double prev, float *st) {
    const mq_env *e = x->e;
    const int K = e->koff[l + 1] - e->koff[l];
    const double span = x->bmax > x->bmin ? x->bmax - x->bmin : 1;
    for (int q = 0; q < MQ_NSTATIC; q++) st[q] = e->feat[l][q];
    st[8] = (float)a / 8;
    st[9] = (float)((g - x->bmin) / span);
    st[10] = K > 1 ? (float)i / (float)(K - 1) : 0;
    for (int q = 0; q < 4; q++) st[11 + q] = x->kst[e->koff[l] + i][q];
    const double left = (g * K - (double)spent) / (double)(K - i); /* per kernel still to come */
    st[15] = clampf((float)((left - x->bmin) / span), -1, 2);
    st[16] = (float)(prev / 8);
}

/* HAQ-style action <-> goal: the goal is continuous in [b_min, b_max] */
static double goal_of(const aq_ctx *x, double act) {
    const double g = x->bmin - 0.5 + act * (x->bmax - x->bmin + 1);
    return g < x->bmin ? x->bmin : g > x->bmax ? x->bmax : g;
}
static float goal_action(const aq_ctx *x, double g) {
    return clampf((float)((g - x->bmin + 0.5) / (x->bmax - x->bmin + 1)), 0, 1);
}

/* Squared distance between the LLC's actions la[] of layer l (kernel widths kb) and its actor's
 * means under goal g: the relabelling's (negative log-) likelihood. */
static double llc_distance(mq_ddpg *llc, const aq_ctx *x, int l, double g, int a, const int *kb, const float *la) {
    const mq_env *e = x->e;
    const int o = e->koff[l], K = e->koff[l + 1] - o;
    float st[AQ_LS];
    long spent = 0;
    double prev = g, d = 0;
    for (int i = 0; i < K; i++) {
        llc_state(x, l, g, a, i, spent, prev, st);
        const double mu = mq_ddpg_act(llc, st, 0, 0);
        d += (la[o + i] - mu) * (la[o + i] - mu);
        spent += kb[o + i], prev = kb[o + i];
    }
    return d;
}

/* ------------------------------------------------------------------ the episodes */

/* One proposal's buffers. */
typedef struct aq_ep {
    float *hs, *ha;   /* HLC states [2L + 1][MQ_STATE_DIM], actions [2L] */
    double *g;        /* goals [L] */
    int *a0, *a, *kb0, *kb; /* activations asked / walled [L], kernel widths asked / walled [NK] */
    float *la;        /* LLC actions [NK] */
    int own;          /* the candidate is new, or this episode's own (scored before a kill) */
} aq_ep;

static void ep_free(aq_ep *p) {
    free(p->hs), free(p->ha), free(p->g), free(p->a0), free(p->la);
    memset(p, 0, sizeof *p);
}
static int ep_alloc(aq_ep *p, int L, int NK) {
    memset(p, 0, sizeof *p);
    p->hs = mq_malloc((size_t)(2 * L + 1) * MQ_STATE_DIM, sizeof(float), "autoq states");
    p->ha = mq_malloc((size_t)2 * L, sizeof(float), "autoq actions");
    p->g = mq_malloc((size_t)L, sizeof(double), "autoq goals");
    p->a0 = mq_malloc((size_t)(2 * L + 2 * NK), sizeof(int), "autoq policy");
    p->la = mq_malloc((size_t)NK, sizeof(float), "autoq kernel actions");
    if (!p->hs || !p->ha || !p->g || !p->a0 || !p->la) return 0;
    p->a = p->a0 + L, p->kb0 = p->a0 + 2 * L, p->kb = p->kb0 + NK;
    return 1;
}

/* Act one episode into p (the HLC's two steps per layer, then the LLC over the layer's kernels),
 * then wall it. */
static mixq_status act(mq_search *s, aq_agents *g, const aq_ctx *x, const double (*kerr)[9], int ep, int draw,
                       aq_ep *p) {
    const mq_env *e = &s->env;
    const int L = e->L;
    int prev = 8;
    float st[AQ_LS];
    mq_rng noise; /* the low level's exploration, seeded by the episode and draw (a resumed run
                     redraws the same) */
    mq_rng_seed(&noise, mq_seed_mix(s->cfg->seed, 0x4c4c434e, (uint64_t)ep * 64 + (uint64_t)draw)); /* "LLCN" */
    for (int l = 0; l < L; l++) {
        for (int t = 2 * l; t < 2 * l + 2; t++) {
            float *hs = p->hs + (size_t)t * MQ_STATE_DIM;
            mq_env_state(e, t, prev, hs);
            p->ha[t] = mq_ddpg_act(g->hlc, hs, ep, 1);
            if (t == 2 * l) p->g[l] = goal_of(x, p->ha[t]), prev = mq_env_bits(e, p->ha[t]);
            else p->a0[l] = prev = mq_env_bits(e, p->ha[t]);
        }
        const int o = e->koff[l], K = e->koff[l + 1] - o;
        if (pinned(e, l)) {
            for (int i = 0; i < K; i++) p->kb0[o + i] = 8, p->la[o + i] = mq_env_action(x->e, 8);
            p->a0[l] = 8;
            continue;
        }
        if (ep <= s->cfg->warmup) { /* warm-up: the goal exactly, two widths in whole tiles */
            const int lo = (int)floor(p->g[l]), hi = lo < x->bmax ? lo + 1 : lo;
            const int rows = MQ_MAX(1, mq_hw_kernel_rows(s->hw));
            int n_hi = (int)lround((p->g[l] - lo) * K / rows) * rows;
            n_hi = n_hi > K ? K : n_hi;
            for (int i = 0; i < K; i++) {
                p->kb0[o + i] = i < n_hi ? hi : lo;
                p->la[o + i] = mq_env_action(x->e, p->kb0[o + i]);
            }
            continue;
        }
        /* one noise draw per layer: exploration moves the layer's kernels together, and they
         * differ by what the actor learned (a draw per kernel splits every layer) */
        const float z = mq_ddpg_sigma(g->llc, ep) * mq_rng_normal(&noise);
        long spent = 0;
        double pk = p->g[l];
        for (int i = 0; i < K; i++) {
            llc_state(x, l, p->g[l], p->a0[l], i, spent, pk, st);
            p->la[o + i] = clampf(mq_ddpg_act(g->llc, st, ep, 0) + z, 0, 1);
            const int b = mq_env_bits(e, p->la[o + i]);
            p->kb0[o + i] = b, spent += b, pk = b;
        }
    }
    memcpy(p->kb, p->kb0, sizeof(int) * (size_t)e->koff[L]);
    memcpy(p->a, p->a0, sizeof(int) * (size_t)L);
    if (!e->n_budgets) {
        if (e->pin_ends)
            for (int l = 0; l < L; l += L - 1) p->a[l] = 8;
        return MIXQ_OK;
    }
    int fits;
    return mq_env_wall_kernels(e, kerr, p->kb, p->a, &fits);
}

static double layer_mean(const mq_env *e, const int *kb, int l) {
    const int o = e->koff[l], K = e->koff[l + 1] - o;
    double s = 0;
    for (int i = 0; i < K; i++) s += kb[o + i];
    return s / K;
}

/* Store episode p's transitions (scored as record r) in both agents. */
static void store(mq_search *s, aq_agents *g, const aq_ctx *x, int ep, aq_ep *p, const mq_rec *r) {
    const mixq_search_config *c = s->cfg;
    const mq_env *e = &s->env;
    const int L = e->L, T = 2 * L;
    const aq_settings h = settings(s);
    const mq_haq_settings hx = mq_haq_settings_of(s);
    const double span = x->bmax > x->bmin ? x->bmax - x->bmin : 1;
    /* the agent's reward: the record's less the wall's cut */
    double cut = 0;
    int free_layers = 0;
    for (int l = 0; l < L; l++)
        if (!pinned(e, l)) {
            free_layers++;
            cut += layer_mean(e, p->kb0, l) - layer_mean(e, p->kb, l) + (p->a0[l] - p->a[l]);
        }
    const double cuttable = 2.0 * free_layers * (x->bmax - x->bmin);
    const double R = r->reward - hx.penalty * (cuttable > 0 ? cut / cuttable : 0);
    /* zeta: zeta0 after the warm-up, zeta1 at the last episode */
    const int learn = c->episodes - c->warmup;
    double f = learn > 1 ? (double)(ep - c->warmup) / (double)(learn - 1) : 1;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    const double zeta = h.zeta0 + (h.zeta1 - h.zeta0) * f;
    /* the LLC: each kernel's choice against its layer's intrinsic reward (terminal) */
    float st[AQ_LS];
    for (int l = 0; l < L; l++) {
        if (pinned(e, l)) continue;
        const int o = e->koff[l], K = e->koff[l + 1] - o;
        const double m = layer_mean(e, p->kb0, l);
        const float rin = (float)(-(1 - zeta) * fabs(p->g[l] - m) / span + zeta * R);
        long spent = 0;
        double pk = p->g[l];
        for (int i = 0; i < K; i++) {
            llc_state(x, l, p->g[l], p->a0[l], i, spent, pk, st);
            mq_ddpg_store(g->llc, st, p->la[o + i], rin, NULL, 1);
            spent += p->kb0[o + i], pk = p->kb0[o + i];
        }
    }
    /* the HLC: goals relabelled (HIRO), activation steps as scored (HAQ's store=post) */
    mq_rng rng;
    mq_rng_seed(&rng, mq_seed_mix(c->seed, 0x4849524f, (uint64_t)ep)); /* "HIRO" */
    for (int l = 0; l < L; l++) {
        float *ga = &p->ha[2 * l];
        if (pinned(e, l) || !h.relabel) continue;
        const double m = layer_mean(e, p->kb0, l);
        double best_g = p->g[l], best_d = INFINITY;
        for (int k = 0; k < AQ_HIRO; k++) {
            double cand = k == 0 ? p->g[l] : k == 1 ? m : m + 0.25 * span * mq_rng_normal(&rng);
            cand = cand < x->bmin ? x->bmin : cand > x->bmax ? x->bmax : cand;
            const double d = llc_distance(g->llc, x, l, cand, p->a0[l], p->kb0, p->la);
            if (d < best_d) best_d = d, best_g = cand;
        }
        *ga = goal_action(x, best_g);
    }
    for (int l = 0; l < L; l++)
        if (mq_env_bits(e, p->ha[2 * l + 1]) != p->a[l]) p->ha[2 * l + 1] = mq_env_action(x->e, p->a[l]);
    int prev = 8;
    for (int t = 0; t < T; t++) {
        mq_env_state(e, t, prev, p->hs + (size_t)t * MQ_STATE_DIM);
        prev = mq_env_bits(e, p->ha[t]);
    }
    mq_env_state(e, T - 1, prev, p->hs + (size_t)T * MQ_STATE_DIM);
    for (int t = 0; t < T; t++)
        mq_ddpg_store(g->hlc, p->hs + (size_t)t * MQ_STATE_DIM, p->ha[t], (float)R,
                      p->hs + (size_t)(t + 1) * MQ_STATE_DIM, t == T - 1);
}

static mixq_status run_autoq(mq_search *s) {
    const mixq_search_config *c = s->cfg;
    const mq_env *e = &s->env;
    const int L = e->L, NK = e->koff[L], K = mq_search_parallel(s);
    const aq_settings h = settings(s);
    const mq_haq_settings hx = mq_haq_settings_of(s);
    const double t_start = mq_now();
    aq_agents g = {NULL, NULL};
    aq_ctx x = {e, c->b_min, c->b_max, NULL};
    double (*kerr)[9] = NULL;
    aq_ep *eps = mq_calloc((size_t)K, sizeof *eps, "autoq round");
    mq_cand *cand = mq_calloc((size_t)K, sizeof *cand, "autoq round");
    mixq_status st = eps && cand ? MIXQ_OK : MIXQ_ERR_NOMEM;
    for (int j = 0; j < K && !st; j++)
        if (!ep_alloc(&eps[j], L, NK)) st = MIXQ_ERR_NOMEM;
    mq_ddpg_config dc, lc;
    mq_haq_ddpg_config(s, &dc);
    llc_cfg(s, &lc);
    if (!st) st = mq_ddpg_create(&dc, &g.hlc);
    if (!st) st = mq_ddpg_create(&lc, &g.llc);
    if (!st) st = kernel_stats(s, &x);
    if (!st && e->n_budgets) { /* each kernel's quantization error at each width, for the wall */
        mixq_model *fm = NULL;
        kerr = mq_calloc((size_t)NK, sizeof *kerr, "kernel errors");
        double *ek = mq_malloc((size_t)NK, sizeof(double), "kernel errors");
        st = kerr && ek ? mixq_model_clone(s->fp, &fm) : MIXQ_ERR_NOMEM;
        for (int l = 0; l < L && !st; l++)
            for (int b = c->b_min; b <= 8 && !st; b++) {
                double tot;
                if (!(st = mq_hessian_kernel_err(fm, e->node[l], b, &tot, ek)))
                    for (int i = e->koff[l]; i < e->koff[l + 1]; i++) kerr[i][b] = ek[i - e->koff[l]];
            }
        mixq_model_free(fm);
        free(ek);
    }
    int done = 0;
    if (!st) {
        s->agent_state = &g;
        st = mq_search_read_state(s, &done);
    }
    s->agent_s = mq_now() - t_start;
    for (int ep0 = done; !st && ep0 < c->episodes; ep0 += K) {
        const double t0 = mq_now();
        const int k = MQ_MIN(K, c->episodes - ep0);
        for (int j = 0; j < k && !st; j++) {
            const int ep = ep0 + j;
            aq_ep *p = &eps[j];
            for (int draw = 0;; draw++) {
                if ((st = act(s, &g, &x, (const double(*)[9])kerr, ep, draw, p))) break;
                const mq_rec *hit = mq_search_find_kernels(s, p->kb, p->a);
                int seen = hit && hit->episode < ep + 1;
                for (int i = 0; i < j && !seen; i++)
                    seen = !memcmp(p->a, eps[i].a, sizeof(int) * (size_t)L) &&
                           !memcmp(p->kb, eps[i].kb, sizeof(int) * (size_t)NK);
                p->own = !hit || hit->episode == ep + 1;
                if (seen && draw < hx.redraw) continue;
                break;
            }
            cand[j] = (mq_cand){NULL, p->a, p->kb, ep + 1, NULL, 0};
        }
        s->agent_s += mq_now() - t0;
        if (st || (st = mq_search_evaluate_batch(s, cand, k))) break;
        const double t1 = mq_now();
        int hu = 0, lu = 0;
        for (int j = 0; j < k; j++) {
            const int ep = ep0 + j;
            cand[j].cached = !eps[j].own || cand[j].rec->episode < ep + 1;
            if (cand[j].cached) s->cache_hits++;
            store(s, &g, &x, ep, &eps[j], cand[j].rec);
            if (ep > c->warmup) hu += 2 * L, lu += h.llc_updates;
        }
        for (int u = 0; u < hu; u++) mq_ddpg_update(g.hlc, NULL);
        for (int u = 0; u < lu; u++) mq_ddpg_update(g.llc, NULL);
        s->agent_s += mq_now() - t1;
        if ((st = mq_search_save_state(s, ep0 + k))) break;
        for (int j = 0; j < k; j++)
            mq_search_progress(s, "search", ep0 + j + 1, c->episodes, cand[j].rec, cand[j].cached);
    }
    s->agent_state = NULL;
    for (int j = 0; j < K && eps; j++) ep_free(&eps[j]);
    free(eps);
    free(cand);
    free(kerr);
    free(x.kst);
    mq_ddpg_free(g.hlc);
    mq_ddpg_free(g.llc);
    return st;
}

const mq_agent mq_agent_autoq = {"autoq",
                                 "AutoQ's hierarchical DDPG: per layer a goal and activation width, per kernel a "
                                 "weight width",
                                 1, autoq_check, autoq_config, run_autoq, ckpt_save, ckpt_load, 0, NULL,
                                 autoq_reward};
