/* The multiple-choice knapsack with GLPK (see ilp.h).
 *
 * GLPK ends the process on a fatal error (an invalid call, memory exhausted) unless an error
 * hook leaves through longjmp; the hook here does, and the environment GLPK then needs freed
 * (glp_free_env) takes the problem with it. Its terminal output goes to a hook that keeps the
 * last lines for the error message and prints nothing. Scaling: every budget row is divided by
 * its limit and the objective by its largest value, so GLPK's absolute tolerances see numbers
 * near 1 (latencies in seconds are 1e-5). A pick is checked in double against the unscaled
 * limits (as mq_env_fits checks, to 1e-12 relative); should GLPK's bound tolerance (1e-7) let a
 * row exceed its limit, the programme is solved again with the limits tightened by 1e-7, 4e-7,
 * ... (four times at most). */
#include <glpk.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "search/ilp.h"
#include "core/core.h"

#define FITS_REL 1e-12 /* mq_env_fits' tolerance */

static int allowed(const mq_mck *p, int g, int c) {
    return !p->allowed || p->allowed[(size_t)g * p->choices + c];
}

static double cost_of(const mq_mck *p, int k, int g, int c) {
    return p->cost[((size_t)k * p->groups + g) * p->choices + c];
}

double mq_mck_min_cost(const mq_mck *p, int k) {
    double total = 0;
    for (int g = 0; g < p->groups; g++) {
        double lo = INFINITY;
        for (int c = 0; c < p->choices; c++)
            if (allowed(p, g, c)) lo = fmin(lo, cost_of(p, k, g, c));
        total += lo;
    }
    return total;
}

static int limited(const mq_mck *p) {
    int n = 0;
    for (int k = 0; k < p->metrics; k++) n += isfinite(p->limit[k]) != 0;
    return n;
}

static const char *metric_name(const mq_mck *p, int k, char *buf, size_t n) {
    if (p->names && p->names[k]) return p->names[k];
    snprintf(buf, n, "metric %d", k);
    return buf;
}

/* Choice c of group g is beaten by another allowed choice: no larger value and no larger cost on
 * any limited metric, and better somewhere (or equal everywhere and listed first). */
static int beaten(const mq_mck *p, int g, int c) {
    const double *v = p->value + (size_t)g * p->choices;
    for (int d = 0; d < p->choices; d++) {
        if (d == c || !allowed(p, g, d) || v[d] > v[c]) continue;
        int le = 1, lt = v[d] < v[c];
        for (int k = 0; k < p->metrics && le; k++) {
            if (!isfinite(p->limit[k])) continue;
            const double cd = cost_of(p, k, g, d), cc = cost_of(p, k, g, c);
            le = cd <= cc;
            lt |= cd < cc;
        }
        if (le && (lt || d < c)) return 1;
    }
    return 0;
}

static mixq_status infeasible(const mq_mck *p) {
    char msg[1024], nb[32];
    size_t n = 0;
    msg[0] = 0;
    for (int k = 0; k < p->metrics; k++) {
        if (!isfinite(p->limit[k])) continue;
        const double lo = mq_mck_min_cost(p, k);
        n += (size_t)snprintf(msg + n, n < sizeof msg ? sizeof msg - n : 0, "%s%s: cheapest reachable %.6g, limit %.6g%s",
                              n ? "; " : "", metric_name(p, k, nb, sizeof nb), lo, p->limit[k],
                              lo > p->limit[k] * (1 + FITS_REL) ? " (out of reach)" : "");
        if (n >= sizeof msg) break;
    }
    return mq_err(MIXQ_ERR_ARG, "the bit-allocation programme has no solution: no choice per layer meets every "
                  "budget at once (%s); hint: a larger budget", msg);
}

/* ---- GLPK's hooks (GLPK keeps one environment per thread) */
typedef struct glpk_ctx {
    jmp_buf jb;
    char out[512]; /* the end of GLPK's output */
} glpk_ctx;

static int on_term(void *info, const char *s) {
    glpk_ctx *x = info;
    size_t have = strlen(x->out), add = strlen(s);
    if (add >= sizeof x->out) s += add - (sizeof x->out - 1), add = sizeof x->out - 1;
    if (have + add >= sizeof x->out) { /* keep the newest text */
        size_t drop = have + add - (sizeof x->out - 1);
        memmove(x->out, x->out + drop, have - drop + 1);
        have -= drop;
    }
    memcpy(x->out + have, s, add + 1);
    return 1; /* printed nothing */
}

static void on_error(void *info) {
    glpk_ctx *x = info;
    longjmp(x->jb, 1);
}

static const char *glpk_ret(int r) {
    switch (r) {
    case GLP_EBOUND: return "invalid bounds (GLP_EBOUND)";
    case GLP_EROOT: return "no optimal basis of the root LP (GLP_EROOT)";
    case GLP_ENOPFS: return "no primal feasible solution (GLP_ENOPFS)";
    case GLP_ENODFS: return "no dual feasible solution (GLP_ENODFS)";
    case GLP_EFAIL: return "solver failure (GLP_EFAIL)";
    case GLP_EMIPGAP: return "gap tolerance reached (GLP_EMIPGAP)";
    case GLP_ETMLIM: return "time limit (GLP_ETMLIM)";
    case GLP_ESTOP: return "stopped (GLP_ESTOP)";
    default: return "unknown return code";
    }
}

/* One solve with the limits scaled by `tight` (<= 1). *status: 0 solved (pick filled),
 * 1 infeasible, else an error already recorded. */
static mixq_status solve_once(const mq_mck *p, const int *col_g, const int *col_c, int ncol, double tight,
                              int *pick, mq_mck_result *res, int *infeasible_out) {
    const int G = p->groups, nrow = G + limited(p);
    const size_t nz = (size_t)ncol * (size_t)(1 + p->metrics);
    int *ia = mq_malloc(nz + 1, sizeof(int), "ILP rows");
    int *ja = mq_malloc(nz + 1, sizeof(int), "ILP columns");
    double *ar = mq_malloc(nz + 1, sizeof(double), "ILP matrix");
    double *colv = mq_malloc((size_t)ncol, sizeof(double), "ILP solution");
    if (!ia || !ja || !ar || !colv) {
        free(ia), free(ja), free(ar), free(colv);
        return MIXQ_ERR_NOMEM;
    }
    double vmax = 0;
    for (int j = 0; j < ncol; j++) vmax = fmax(vmax, fabs(p->value[(size_t)col_g[j] * p->choices + col_c[j]]));
    const double vscale = vmax > 0 ? 1.0 / vmax : 1.0;
    size_t ne = 0;
    for (int j = 0; j < ncol; j++) {
        ne++, ia[ne] = col_g[j] + 1, ja[ne] = j + 1, ar[ne] = 1.0;
        int row = G;
        for (int k = 0; k < p->metrics; k++) {
            if (!isfinite(p->limit[k])) continue;
            row++;
            const double c = cost_of(p, k, col_g[j], col_c[j]);
            const double s = p->limit[k] > 0 ? 1.0 / p->limit[k] : 1.0;
            if (c != 0) ne++, ia[ne] = row, ja[ne] = j + 1, ar[ne] = c * s;
        }
    }
    static _Thread_local glpk_ctx ctx; /* not on the stack: GLPK may call the hooks at any depth */
    ctx.out[0] = 0;
    volatile int code = 0, mip = 0;
    glp_prob *volatile P = NULL;
    mixq_status st = MIXQ_OK;
    glp_term_hook(on_term, &ctx);
    glp_error_hook(on_error, &ctx);
    if (setjmp(ctx.jb)) { /* a fatal GLPK error: the environment (and P with it) must go */
        glp_error_hook(NULL, NULL);
        glp_term_hook(NULL, NULL);
        glp_free_env();
        char *nl;
        while ((nl = strrchr(ctx.out, '\n')) && !nl[1]) *nl = 0; /* trailing newlines */
        free(ia), free(ja), free(ar), free(colv);
        return mq_err(MIXQ_ERR_NUMERIC, "GLPK failed while solving the bit-allocation programme: %s",
                      ctx.out[0] ? ctx.out : "(no message)");
    }
    P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    glp_add_rows(P, nrow);
    glp_add_cols(P, ncol);
    for (int g = 0; g < G; g++) glp_set_row_bnds(P, g + 1, GLP_FX, 1.0, 1.0);
    for (int k = 0, row = G; k < p->metrics; k++)
        if (isfinite(p->limit[k])) glp_set_row_bnds(P, ++row, GLP_UP, 0.0, (p->limit[k] > 0 ? 1.0 : p->limit[k]) * tight);
    for (int j = 0; j < ncol; j++) {
        glp_set_col_kind(P, j + 1, GLP_BV);
        glp_set_obj_coef(P, j + 1, p->value[(size_t)col_g[j] * p->choices + col_c[j]] * vscale);
    }
    if (p->test_fault == 1) glp_set_col_kind(P, ncol + 1, GLP_BV); /* out of range: fatal */
    glp_load_matrix(P, (int)ne, ia, ja, ar);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    parm.mip_gap = 0.0;
    parm.tol_obj = 1e-10; /* GLPK's 1e-7 may prune a node better by less than that */
    parm.tm_lim = (int)fmin(fmax((p->time_limit_s > 0 ? p->time_limit_s : 10.0) * 1000.0, 1.0), 1e9);
    code = glp_intopt(P, &parm);
    if (code == 0 || code == GLP_ETMLIM) mip = glp_mip_status(P);
    if (mip == GLP_OPT || mip == GLP_FEAS) {
        for (int j = 0; j < ncol; j++) colv[j] = glp_mip_col_val(P, j + 1);
    }
    glp_delete_prob(P);
    glp_error_hook(NULL, NULL);
    glp_term_hook(NULL, NULL);
    *infeasible_out = 0;
    if (code == GLP_ENOPFS || (code == 0 && mip == GLP_NOFEAS)) *infeasible_out = 1;
    else if (code == GLP_ETMLIM && mip != GLP_FEAS && mip != GLP_OPT)
        st = mq_err(MIXQ_ERR_NUMERIC, "GLPK found no feasible bit allocation within its time limit (%g s); hint: "
                    "fewer bit widths (--bits) or a larger budget", parm.tm_lim / 1000.0);
    else if (code != 0 && code != GLP_ETMLIM)
        st = mq_err(MIXQ_ERR_NUMERIC, "GLPK's glp_intopt failed on the bit-allocation programme: %s", glpk_ret(code));
    else if (mip != GLP_OPT && mip != GLP_FEAS)
        st = mq_err(MIXQ_ERR_NUMERIC, "GLPK ended with MIP status %d (not a solution)", mip);
    if (!st && !*infeasible_out) {
        for (int g = 0; g < G; g++) pick[g] = -1;
        for (int j = 0; j < ncol && !st; j++) {
            if (colv[j] < 0.5) continue;
            if (pick[col_g[j]] >= 0)
                st = mq_err(MIXQ_ERR_NUMERIC, "GLPK's solution picks two choices for layer %d", col_g[j]);
            pick[col_g[j]] = col_c[j];
        }
        for (int g = 0; g < G && !st; g++)
            if (pick[g] < 0) st = mq_err(MIXQ_ERR_NUMERIC, "GLPK's solution picks no choice for layer %d", g);
        res->optimal = mip == GLP_OPT;
    }
    free(ia), free(ja), free(ar), free(colv);
    return st;
}

mixq_status mq_mck_solve(const mq_mck *p, int *pick, mq_mck_result *res) {
    if (!p || !pick || !res || !p->value || (p->metrics > 0 && (!p->cost || !p->limit)))
        return mq_err(MIXQ_ERR_ARG, "bit-allocation programme: NULL argument");
    if (p->groups < 1 || p->choices < 1 || p->metrics < 0)
        return mq_err(MIXQ_ERR_ARG, "bit-allocation programme: %d layers x %d choices, %d metrics", p->groups,
                      p->choices, p->metrics);
    memset(res, 0, sizeof *res);
    const double t0 = mq_now();
    char nb[32];
    for (int g = 0; g < p->groups; g++) {
        int any = 0;
        for (int c = 0; c < p->choices; c++) {
            if (!allowed(p, g, c)) continue;
            any = 1;
            if (!isfinite(p->value[(size_t)g * p->choices + c]))
                return mq_err(MIXQ_ERR_NUMERIC, "bit-allocation programme: layer %d, choice %d: the objective is %g",
                              g, c, p->value[(size_t)g * p->choices + c]);
            for (int k = 0; k < p->metrics; k++)
                if (!isfinite(cost_of(p, k, g, c)))
                    return mq_err(MIXQ_ERR_NUMERIC, "bit-allocation programme: layer %d, choice %d: %s costs %g", g,
                                  c, metric_name(p, k, nb, sizeof nb), cost_of(p, k, g, c));
        }
        if (!any) return mq_err(MIXQ_ERR_ARG, "bit-allocation programme: layer %d has no allowed choice", g);
    }
    for (int k = 0; k < p->metrics; k++)
        if (isnan(p->limit[k]) || p->limit[k] == -INFINITY)
            return mq_err(MIXQ_ERR_ARG, "bit-allocation programme: the limit of %s is %g",
                          metric_name(p, k, nb, sizeof nb), p->limit[k]);
    /* the same answer as the programme would give, sooner: a limit below a metric's cheapest */
    for (int k = 0; k < p->metrics; k++)
        if (isfinite(p->limit[k]) && mq_mck_min_cost(p, k) > p->limit[k] * (1 + FITS_REL)) return infeasible(p);
    const size_t GC = (size_t)p->groups * p->choices;
    int *col_g = mq_malloc(GC, sizeof(int), "ILP columns"), *col_c = mq_malloc(GC, sizeof(int), "ILP columns");
    if (!col_g || !col_c) {
        free(col_g), free(col_c);
        return MIXQ_ERR_NOMEM;
    }
    int ncol = 0;
    for (int g = 0; g < p->groups; g++)
        for (int c = 0; c < p->choices; c++)
            if (allowed(p, g, c) && !beaten(p, g, c)) col_g[ncol] = g, col_c[ncol] = c, ncol++;
    res->variables = ncol;
    mixq_status st = MIXQ_OK;
    int tries = 0;
    for (double tight = 1.0;; tight -= 1e-7 * (double)(1 << (2 * tries)), tries++) {
        int inf = 0;
        if ((st = solve_once(p, col_g, col_c, ncol, tight, pick, res, &inf))) break;
        if (inf) {
            st = infeasible(p);
            break;
        }
        int over = -1;
        for (int k = 0; k < p->metrics && over < 0; k++) {
            if (!isfinite(p->limit[k])) continue;
            double c = 0;
            for (int g = 0; g < p->groups; g++) c += cost_of(p, k, g, pick[g]);
            if (c > p->limit[k] * (1 + FITS_REL)) over = k;
        }
        if (over < 0) break;
        if (tries == 4) {
            st = mq_err(MIXQ_ERR_NUMERIC, "GLPK's bit allocation exceeds the %s limit %.9g even with the limit "
                        "tightened by %g", metric_name(p, over, nb, sizeof nb), p->limit[over], 1 - tight);
            break;
        }
    }
    if (!st) {
        res->objective = 0;
        for (int g = 0; g < p->groups; g++) res->objective += p->value[(size_t)g * p->choices + pick[g]];
    }
    res->seconds = mq_now() - t0;
    free(col_g);
    free(col_c);
    return st;
}
