/* The quantization environment (see env.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"
#include "search/env.h"

const char *const mq_metric_names[] = {"latency", "energy", "size", "bitops"};
_Static_assert(MQ_COUNTOF(mq_metric_names) == MQ_NMETRIC,
               "mq_metric_names: one name per MQ_M_* metric");

void mq_env_free(mq_env *e) {
    if (!e) return;
    free(e->node);
    free(e->name);
    free(e->feat);
    free(e->raw);
    free(e->grid);
    free(e->hl);
    free(e->koff);
    memset(e, 0, sizeof *e);
}

mixq_status mq_env_create(const mixq_model *m, mixq_hw *hw, int hw_batch, int b_min, int b_max,
                          int pin_ends, mq_env *e) {
    memset(e, 0, sizeof *e);
    int hw_lo, hw_hi;
    mixq_hw_bits(hw, &hw_lo, &hw_hi);
    if (b_min < 1 || b_max > 8 || b_min > b_max)
        return mq_err(MIXQ_ERR_ARG, "bit range %d..%d: expected 1 <= b_min <= b_max <= 8", b_min, b_max);
    if (b_min < hw_lo || hw_hi < 8)
        return mq_err(MIXQ_ERR_UNSUPPORTED,
                      "target %s runs %d..%d bits but the search needs %d..8; hint: --bits %d..%d",
                      mixq_hw_name(hw), hw_lo, hw_hi, b_min, hw_lo > b_min ? hw_lo : b_min, b_max);
    int L = mixq_model_hw_layer_count(m);
    if (L < 1) return mq_err(MIXQ_ERR_ARG, "the model has no conv or linear layer to quantize");
    e->L = L, e->b_min = b_min, e->b_max = b_max, e->pin_ends = pin_ends && L >= 2;
    e->a_min = b_min;
    e->metric = MQ_M_LATENCY;
    for (int k = 0; k < MQ_NMETRIC; k++) e->target[k] = INFINITY;
    e->node = mq_calloc((size_t)L, sizeof *e->node, "search layers");
    e->name = mq_calloc((size_t)L, sizeof *e->name, "search layer names");
    e->feat = mq_calloc((size_t)L, sizeof *e->feat, "search features");
    e->raw = mq_calloc((size_t)L, sizeof *e->raw, "search features");
    e->grid = mq_calloc((size_t)L, sizeof *e->grid, "cost grids");
    e->hl = mq_calloc((size_t)L, sizeof *e->hl, "search layer shapes");
    e->koff = mq_calloc((size_t)L + 1, sizeof *e->koff, "search kernel offsets");
    e->hw = hw;
    if (!e->node || !e->name || !e->feat || !e->raw || !e->grid || !e->hl || !e->koff) {
        mq_env_free(e);
        return MIXQ_ERR_NOMEM;
    }
    mixq_status st = MIXQ_OK;
    for (int l = 0; l < L && !st; l++) {
        mixq_hw_layer hl;
        if ((st = mixq_model_hw_layer(m, l, &hl, &e->node[l]))) break;
        hl.batch = hw_batch;
        e->koff[l + 1] = e->koff[l] + hl.out_c;
        snprintf(e->name[l], MIXQ_NAME_MAX, "%s", hl.name);
        e->hl[l] = hl;
        e->hl[l].name = e->name[l]; /* the model's string need not outlive the environment */
        /* HAQ's static features: depthwise, c_in, c_out, stride, kernel, weights, input area, index */
        float *r = e->raw[l];
        int dw = !hl.fc && hl.groups > 1 && hl.groups == hl.in_c;
        r[0] = (float)dw;
        r[1] = (float)hl.in_c;
        r[2] = (float)hl.out_c;
        r[3] = hl.fc ? 0.0f : (float)hl.stride;
        r[4] = hl.fc ? 1.0f : (float)hl.kh;
        r[5] = hl.fc ? (float)hl.in_c * (float)hl.out_c
                     : (float)hl.out_c * (float)(hl.in_c / (hl.groups ? hl.groups : 1)) * (float)(hl.kh * hl.kw);
        r[6] = hl.fc ? (float)hl.in_c : (float)(hl.in_h * hl.in_w);
        r[7] = (float)l;
        for (int w = 1; w <= 8 && !st; w++)
            for (int a = 1; a <= 8 && !st; a++) {
                mixq_cost c;
                if ((st = mixq_hw_cost(hw, &hl, w, a, &c))) break;
                double *g[MQ_NMETRIC] = {&e->grid[l][MQ_M_LATENCY][w][a], &e->grid[l][MQ_M_ENERGY][w][a],
                                         &e->grid[l][MQ_M_SIZE][w][a], &e->grid[l][MQ_M_BITOPS][w][a]};
                *g[0] = c.latency_s, *g[1] = c.energy_j, *g[2] = c.size_bits, *g[3] = c.bitops;
            }
    }
    if (st) {
        mq_env_free(e);
        return st;
    }
    /* per-column min-max normalisation; a constant column keeps its value (HAQ) */
    for (int k = 0; k < MQ_NSTATIC; k++) {
        float lo = e->raw[0][k], hi = e->raw[0][k];
        for (int l = 1; l < L; l++) lo = fminf(lo, e->raw[l][k]), hi = fmaxf(hi, e->raw[l][k]);
        for (int l = 0; l < L; l++) e->feat[l][k] = hi > lo ? (e->raw[l][k] - lo) / (hi - lo) : e->raw[l][k];
    }
    for (int k = 0; k < MQ_NMETRIC; k++)
        for (int l = 0; l < L; l++) e->w8a8[k] += e->grid[l][k][8][8];
    return MIXQ_OK;
}

/* One "metric=value[unit]" term of a budget, of length len. */
static mixq_status parse_term(const mq_env *e, const char *budget, const char *term, size_t len,
                              int *metric_out, double *target_out) {
    char t[128];
    if (len >= sizeof t) return mq_err(MIXQ_ERR_ARG, "budget '%s': term too long", budget);
    memcpy(t, term, len);
    t[len] = 0;
    const char *eq = strchr(t, '=');
    if (!eq)
        return mq_err(MIXQ_ERR_ARG, "budget '%s': expected METRIC=VALUE, e.g. latency=0.5 (a fraction of "
                      "W8A8) or energy=300uJ, several separated by commas", budget);
    int metric = -1;
    for (int k = 0; k < MQ_NMETRIC; k++)
        if ((size_t)(eq - t) == strlen(mq_metric_names[k]) && !strncmp(t, mq_metric_names[k], (size_t)(eq - t)))
            metric = k;
    if (metric < 0) {
        char word[32];
        snprintf(word, sizeof word, "%.*s", (int)(eq - t < 31 ? eq - t : 31), t);
        return mq_err(MIXQ_ERR_ARG, "budget '%s': unknown metric '%s'; %shint: latency, energy, size or bitops",
                      budget, word, mq_did_you_mean(word, mq_metric_names, MQ_NMETRIC));
    }
    char *end;
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || !isfinite(v) || v <= 0)
        return mq_err(MIXQ_ERR_ARG, "budget '%s': the value of %s must be a positive number", budget,
                      mq_metric_names[metric]);
    static const struct { const char *u; int metric; double scale; } units[] = {
        {"s", MQ_M_LATENCY, 1}, {"ms", MQ_M_LATENCY, 1e-3}, {"us", MQ_M_LATENCY, 1e-6},
        {"J", MQ_M_ENERGY, 1}, {"mJ", MQ_M_ENERGY, 1e-3}, {"uJ", MQ_M_ENERGY, 1e-6},
        {"bits", MQ_M_SIZE, 1}, {"B", MQ_M_SIZE, 8}, {"KiB", MQ_M_SIZE, 8192}, {"MiB", MQ_M_SIZE, 8388608},
        {"ops", MQ_M_BITOPS, 1}};
    double target;
    if (!*end) {
        if (v > 100)
            return mq_err(MIXQ_ERR_ARG, "budget '%s': a fraction of W8A8 above 100 (missing unit?)", budget);
        target = v * e->w8a8[metric];
    } else {
        int found = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (!strcmp(end, units[i].u)) found = (int)i;
        if (found < 0 || units[found].metric != metric)
            return mq_err(MIXQ_ERR_ARG, "budget '%s': unit '%s' does not fit %s; hint: latency s/ms/us, "
                          "energy J/mJ/uJ, size bits/B/KiB/MiB, bitops ops (or no unit: a fraction "
                          "of W8A8)", budget, end, mq_metric_names[metric]);
        target = v * units[found].scale;
    }
    if (!(e->w8a8[metric] > 0))
        return mq_err(MIXQ_ERR_UNSUPPORTED, "budget '%s': the target reports no %s (W8A8 costs 0)",
                      budget, mq_metric_names[metric]);
    *metric_out = metric;
    *target_out = target;
    return MIXQ_OK;
}

mixq_status mq_env_set_budget(mq_env *e, const char *budget) {
    double target[MQ_NMETRIC];
    for (int k = 0; k < MQ_NMETRIC; k++) target[k] = INFINITY;
    int first = -1, n = 0;
    for (const char *p = budget ? budget : ""; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int metric = 0;
        double t = 0;
        mixq_status st = parse_term(e, budget, p, len, &metric, &t);
        if (st) return st;
        if (isfinite(target[metric]))
            return mq_err(MIXQ_ERR_ARG, "budget '%s' gives %s twice", budget, mq_metric_names[metric]);
        target[metric] = t;
        if (first < 0) first = metric;
        n++;
        p += len + (comma ? 1 : 0);
        if (comma && !*p) return mq_err(MIXQ_ERR_ARG, "budget '%s' ends in a comma", budget);
    }
    for (int k = 0; k < MQ_NMETRIC; k++) { /* checked before e changes */
        double lo = mq_env_min_cost(e, k);
        if (lo > target[k] * (1 + 1e-12)) {
            char c_lo[32], c_target[32];
            return mq_err(MIXQ_ERR_ARG,
                          "budget '%s' cannot be met: the cheapest policy the search can reach "
                          "(%sW%dA%d elsewhere) has %s %s = %.3f x W8A8, the budget %s = %.3f x W8A8; "
                          "hint: a larger budget%s%s",
                          budget, e->pin_ends ? "first and last layers 8/8, " : "", e->b_min, e->a_min,
                          mq_metric_names[k], mq_env_fmt_cost(k, lo, c_lo, sizeof c_lo), lo / e->w8a8[k],
                          mq_env_fmt_cost(k, target[k], c_target, sizeof c_target),
                          target[k] / e->w8a8[k],
                          e->pin_ends ? ", --no-pin or a lower --bits minimum" : " or a lower --bits minimum",
                          e->a_min > e->b_min ? " (activations: --a-bit-set's lowest width)" : "");
        }
    }
    memcpy(e->target, target, sizeof target);
    e->n_budgets = n;
    e->metric = first >= 0 ? first : MQ_M_LATENCY;
    return MIXQ_OK;
}

double mq_env_budget_ratio(const mq_env *e, int k) {
    return isfinite(e->target[k]) && e->w8a8[k] > 0 ? e->target[k] / e->w8a8[k] : 0.0;
}

int mq_env_fits(const mq_env *e, const int *w, const int *a) {
    for (int k = 0; k < MQ_NMETRIC; k++)
        if (isfinite(e->target[k]) && mq_env_cost(e, w, a, k) > e->target[k] * (1 + 1e-12)) return 0;
    return 1;
}

const char *mq_env_fmt_cost(int metric, double v, char *buf, size_t n) {
    double a = fabs(v);
    if (metric == MQ_M_LATENCY)
        snprintf(buf, n, a >= 1 ? "%.4g s" : a >= 1e-3 ? "%.4g ms" : "%.4g us",
                 a >= 1 ? v : a >= 1e-3 ? v * 1e3 : v * 1e6);
    else if (metric == MQ_M_ENERGY)
        snprintf(buf, n, a >= 1 ? "%.4g J" : a >= 1e-3 ? "%.4g mJ" : "%.4g uJ",
                 a >= 1 ? v : a >= 1e-3 ? v * 1e3 : v * 1e6);
    else if (metric == MQ_M_SIZE) /* bits */
        snprintf(buf, n, a >= 8388608 ? "%.4g MiB" : a >= 8192 ? "%.4g KiB" : "%.4g B",
                 a >= 8388608 ? v / 8388608 : a >= 8192 ? v / 8192 : v / 8);
    else snprintf(buf, n, "%.4g ops", v);
    return buf;
}

void mq_env_state(const mq_env *e, int t, int prev_bits, float s[MQ_STATE_DIM]) {
    int l = t / 2;
    memcpy(s, e->feat[l], sizeof(float) * MQ_NSTATIC);
    s[8] = (float)prev_bits / (float)e->b_max;
    s[9] = t % 2 == 0 ? 1.0f : 0.0f;
}

int mq_env_bits(const mq_env *e, double a) {
    if (!(a >= 0)) a = 0;
    if (a > 1) a = 1;
    double lo = e->b_min - 0.5, hi = e->b_max + 0.5;
    int b = (int)nearbyint(lo + a * (hi - lo));
    return b < e->b_min ? e->b_min : b > e->b_max ? e->b_max : b;
}

float mq_env_action(const mq_env *e, int b) {
    return ((float)(b - e->b_min) + 0.5f) / (float)(e->b_max - e->b_min + 1);
}

void mq_env_pin(const mq_env *e, int *w, int *a) {
    if (!e->pin_ends) return;
    w[0] = a[0] = w[e->L - 1] = a[e->L - 1] = 8;
}

double mq_env_cost(const mq_env *e, const int *w, const int *a, int metric) {
    double c = 0;
    for (int l = 0; l < e->L; l++) c += e->grid[l][metric][w[l]][a[l]];
    return c;
}

int mq_env_fits_costs(const mq_env *e, const double c[MQ_NMETRIC]) {
    for (int k = 0; k < MQ_NMETRIC; k++)
        if (isfinite(e->target[k]) && c[k] > e->target[k] * (1 + 1e-12)) return 0;
    return 1;
}

int mq_env_kernels_agree(const mq_env *e, const int *kb, int l) {
    for (int i = e->koff[l] + 1; i < e->koff[l + 1]; i++)
        if (kb[i] != kb[e->koff[l]]) return 0;
    return 1;
}

static mixq_status layer_costs(const mq_env *e, int l, const int *b, int a, double out[MQ_NMETRIC]);

mixq_status mq_env_cost_kernels(const mq_env *e, const int *kb, const int *a, double out[MQ_NMETRIC]) {
    for (int k = 0; k < MQ_NMETRIC; k++) out[k] = 0;
    for (int l = 0; l < e->L; l++) {
        double c[MQ_NMETRIC];
        mixq_status st = layer_costs(e, l, kb + e->koff[l], a[l], c);
        if (st) return st;
        for (int k = 0; k < MQ_NMETRIC; k++) out[k] += c[k];
    }
    return MIXQ_OK;
}

double mq_env_min_cost(const mq_env *e, int k) {
    double c = 0;
    for (int l = 0; l < e->L; l++) {
        int pinned = e->pin_ends && (l == 0 || l == e->L - 1);
        c += pinned ? e->grid[l][k][8][8] : e->grid[l][k][e->b_min][e->a_min];
    }
    return c;
}

/* Lowering operand act (1: activations, 0: weights) of layer l by one step is worth taking when
 * some lower width of that operand (down to b_min, a_min for activations) makes an over-budget
 * metric cheaper on the layer: a cost with a plateau (the cpu target runs int8 until bit-serial
 * is faster) is walked through, not stopped at. */
static int step_saves(const mq_env *e, const int *w, const int *a, int l, int act, const int *over) {
    for (int b = (act ? a[l] : w[l]) - 1; b >= (act ? e->a_min : e->b_min); b--) {
        const int w1 = act ? w[l] : b, a1 = act ? b : a[l];
        for (int k = 0; k < MQ_NMETRIC; k++)
            if (over[k] && e->grid[l][k][w1][a1] < e->grid[l][k][w[l]][a[l]]) return 1;
    }
    return 0;
}

int mq_env_wall(const mq_env *e, int *w, int *a) {
    mq_env_pin(e, w, a);
    int over[MQ_NMETRIC];
    for (;;) {
        int any = 0;
        for (int k = 0; k < MQ_NMETRIC; k++)
            any |= over[k] = isfinite(e->target[k]) && mq_env_cost(e, w, a, k) > e->target[k] * (1 + 1e-12);
        if (!any) return 1;
        int changed = 0;
        for (int l = e->L - 1; l >= 0 && any; l--) {
            if (e->pin_ends && (l == 0 || l == e->L - 1)) continue;
            for (int act = 1; act >= 0 && any; act--) {
                int *b = act ? &a[l] : &w[l];
                if (*b <= (act ? e->a_min : e->b_min) || !step_saves(e, w, a, l, act, over)) continue;
                (*b)--, changed = 1;
                any = 0;
                for (int k = 0; k < MQ_NMETRIC; k++)
                    any |= over[k] = isfinite(e->target[k]) && mq_env_cost(e, w, a, k) > e->target[k] * (1 + 1e-12);
            }
        }
        if (!any) return 1;
        if (!changed) return 0;
    }
}

/* ------------------------------------------------------------------ the kernel-wise wall */

/* Layer l's totals for per-kernel bits b (its kernels) and activation bits a: the grid's entry
 * when its kernels agree, else mixq_hw_cost_kernels. */
static mixq_status layer_costs(const mq_env *e, int l, const int *b, int a, double out[MQ_NMETRIC]) {
    const int K = e->koff[l + 1] - e->koff[l];
    int agree = 1;
    for (int i = 1; i < K && agree; i++) agree = b[i] == b[0];
    if (agree) {
        for (int k = 0; k < MQ_NMETRIC; k++) out[k] = e->grid[l][k][b[0]][a];
        return MIXQ_OK;
    }
    mixq_cost c;
    mixq_status st = mixq_hw_cost_kernels(e->hw, &e->hl[l], b, a, &c);
    if (st) return st;
    out[MQ_M_LATENCY] = c.latency_s, out[MQ_M_ENERGY] = c.energy_j;
    out[MQ_M_SIZE] = c.size_bits, out[MQ_M_BITOPS] = c.bitops;
    return MIXQ_OK;
}

/* One candidate step of the wall: lower `n` kernels of layer l from width `from` by one bit (the
 * n with the smallest error increase), or the layer's activations (n = 0). */
typedef struct kw_move {
    int from, n;
    double derr;              /* summed error increase of the kernels moved */
    double dcost[MQ_NMETRIC]; /* layer cost before minus after (> 0: a saving) */
} kw_move;

#define KW_MOVES 24 /* per layer: up to 7 widths x (one kernel, a tile of kernels, all) + 1 */

typedef struct kw_layer {
    kw_move mv[KW_MOVES];
    int n;
} kw_layer;

typedef struct kw_key {
    double derr;
    int i;
} kw_key;
static int by_derr(const void *x, const void *y) {
    const kw_key *a = x, *b = y;
    return a->derr < b->derr ? -1 : a->derr > b->derr ? 1 : (a->i > b->i) - (a->i < b->i);
}

/* The kernels of layer l (offset o, K kernels) at width `from`, smallest error increase first,
 * into idx; returns how many. */
static int kernels_at(const double (*kerr)[9], const int *kb, int o, int K, int from, kw_key *idx) {
    int m = 0;
    for (int i = o; i < o + K; i++)
        if (kb[i] == from) idx[m].derr = kerr[i][from - 1] - kerr[i][from], idx[m++].i = i;
    qsort(idx, (size_t)m, sizeof *idx, by_derr);
    return m;
}

/* Layer l's candidate moves at its current bits; idx and tmp are scratch of the layer's size. */
static mixq_status layer_moves(const mq_env *e, const double (*kerr)[9], const int *kb, const int *a, int l,
                               int rows, kw_key *idx, int *tmp, kw_layer *out) {
    const int o = e->koff[l], K = e->koff[l + 1] - o;
    const int *b = kb + o;
    double now[MQ_NMETRIC], after[MQ_NMETRIC];
    mixq_status st = layer_costs(e, l, b, a[l], now);
    out->n = 0;
    for (int from = e->b_min + 1; from <= 8 && !st; from++) {
        const int m = kernels_at(kerr, kb, o, K, from, idx);
        if (!m) continue;
        const int sizes[3] = {1, rows, m};
        int last = 0;
        for (int z = 0; z < 3 && !st; z++) {
            const int n = MQ_MIN(sizes[z], m);
            if (n <= last) continue;
            last = n;
            memcpy(tmp, b, sizeof(int) * (size_t)K);
            kw_move *mv = &out->mv[out->n];
            mv->from = from, mv->n = n, mv->derr = 0;
            for (int j = 0; j < n; j++) tmp[idx[j].i - o] = from - 1, mv->derr += idx[j].derr;
            if ((st = layer_costs(e, l, tmp, a[l], after))) break;
            for (int k = 0; k < MQ_NMETRIC; k++) mv->dcost[k] = now[k] - after[k];
            out->n++;
        }
    }
    if (!st && a[l] > e->a_min) { /* the activations: the last resort (no error model) */
        kw_move *mv = &out->mv[out->n];
        mv->from = a[l], mv->n = 0, mv->derr = INFINITY;
        if (!(st = layer_costs(e, l, b, a[l] - 1, after))) {
            for (int k = 0; k < MQ_NMETRIC; k++) mv->dcost[k] = now[k] - after[k];
            out->n++;
        }
    }
    return st;
}

mixq_status mq_env_wall_kernels(const mq_env *e, const double (*kerr)[9], int *kb, int *a, int *fits) {
    const int L = e->L;
    *fits = 0;
    if (e->pin_ends)
        for (int l = 0; l < L; l += L - 1) {
            for (int i = e->koff[l]; i < e->koff[l + 1]; i++) kb[i] = 8;
            a[l] = 8;
        }
    int maxk = 1;
    for (int l = 0; l < L; l++) maxk = MQ_MAX(maxk, e->koff[l + 1] - e->koff[l]);
    int rows = e->hw ? mq_hw_kernel_rows(e->hw) : 1;
    if (rows < 1) rows = 1;
    kw_layer *mv = mq_calloc((size_t)L, sizeof *mv, "kernel wall");
    kw_key *idx = mq_malloc((size_t)maxk, sizeof *idx, "kernel wall");
    int *tmp = mq_malloc((size_t)maxk, sizeof(int), "kernel wall");
    mixq_status st = mv && idx && tmp ? MIXQ_OK : MIXQ_ERR_NOMEM;
    double tot[MQ_NMETRIC];
    if (!st) st = mq_env_cost_kernels(e, kb, a, tot);
    for (int l = 0; l < L && !st; l++)
        if (!(e->pin_ends && (l == 0 || l == L - 1))) st = layer_moves(e, kerr, kb, a, l, rows, idx, tmp, &mv[l]);
    while (!st) {
        int over[MQ_NMETRIC], any = 0;
        for (int k = 0; k < MQ_NMETRIC; k++)
            any |= over[k] = isfinite(e->target[k]) && tot[k] > e->target[k] * (1 + 1e-12);
        if (!any) {
            *fits = 1;
            break;
        }
        /* the move with the least error per unit of saving (the over-budget metrics' savings, each
         * relative to its budget); activation moves only when no weight move saves */
        int bl = -1, bm = -1;
        double best = INFINITY;
        for (int pass = 0; pass < 2 && bl < 0; pass++)
            for (int l = L - 1; l >= 0; l--)
                for (int j = 0; j < mv[l].n; j++) {
                    const kw_move *m = &mv[l].mv[j];
                    if ((m->n == 0) != (pass == 1)) continue;
                    double save = 0;
                    for (int k = 0; k < MQ_NMETRIC; k++)
                        if (over[k] && m->dcost[k] > 0) save += m->dcost[k] / e->target[k];
                    if (!(save > 0)) continue;
                    const double r = pass ? -save : m->derr / save; /* activations: the largest saving */
                    if (r < best) best = r, bl = l, bm = j;
                }
        if (bl < 0) break; /* nothing left that saves */
        const kw_move *m = &mv[bl].mv[bm];
        const int o = e->koff[bl], K = e->koff[bl + 1] - o;
        if (m->n == 0) a[bl]--;
        else {
            const int c = kernels_at(kerr, kb, o, K, m->from, idx);
            for (int j = 0; j < m->n && j < c; j++) kb[idx[j].i] = m->from - 1;
        }
        for (int k = 0; k < MQ_NMETRIC; k++) tot[k] -= m->dcost[k];
        st = layer_moves(e, kerr, kb, a, bl, rows, idx, tmp, &mv[bl]);
    }
    if (!st && *fits) { /* the running totals, checked against a fresh sum */
        double chk[MQ_NMETRIC];
        if (!(st = mq_env_cost_kernels(e, kb, a, chk))) *fits = mq_env_fits_costs(e, chk);
    }
    free(mv);
    free(idx);
    free(tmp);
    return st;
}
