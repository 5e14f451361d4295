/* The multiple-choice knapsack of HAWQ-V3's bit allocation (internal; algorithms.md §5.2),
 * solved as an integer linear programme with GLPK:
 *     minimise   sum_g sum_c value[g][c] x[g][c]
 *     subject to sum_c x[g][c] = 1                              for every group g
 *                sum_g sum_c cost[k][g][c] x[g][c] <= limit[k]   for every metric k with a limit
 *                x binary, x[g][c] = 0 where choice c is not allowed in group g.
 * A group is a layer, a choice a (w, a) pair. Choices another choice of the same group beats
 * (no larger value, no larger cost on any limited metric) are dropped first: the optimum is the
 * same, the programme smaller. The result is deterministic (GLPK's branch and bound is); GLPK
 * prints nothing (its terminal output is captured, and quoted in errors). */
#ifndef MIXQ_SEARCH_ILP_H
#define MIXQ_SEARCH_ILP_H

#include "mixq/mixq.h"

typedef struct mq_mck {
    int groups, choices;           /* every group has `choices` slots */
    const double *value;           /* [groups][choices], finite where allowed */
    const unsigned char *allowed;  /* [groups][choices]; NULL: every choice */
    int metrics;
    const double *cost;            /* [metrics][groups][choices], finite where allowed */
    const double *limit;           /* [metrics]; INFINITY: no constraint */
    const char *const *names;      /* [metrics] for messages (NULL: "metric k") */
    double time_limit_s;           /* GLPK's branch-and-bound limit (<= 0: 10 s) */
    int test_fault;                /* tests only: 1 makes an invalid GLPK call, to check that
                                      GLPK's fatal errors come back as errors */
} mq_mck;

typedef struct mq_mck_result {
    double objective;  /* sum of the picked values */
    int optimal;       /* 1: proven optimal; 0: the best found when the time limit struck */
    int variables;     /* binaries left after dropping beaten choices */
    double seconds;
} mq_mck_result;

/* pick[groups] receives each group's choice. A limit no allowed combination meets is
 * MIXQ_ERR_ARG, the message giving every limited metric's cheapest reachable total (each group
 * at its cheapest allowed choice for that metric); GLPK failures are MIXQ_ERR_NUMERIC with
 * GLPK's return code or message. */
mixq_status mq_mck_solve(const mq_mck *p, int *pick, mq_mck_result *res);

/* Metric k's cheapest reachable total: the sum over groups of their cheapest allowed choice. */
double mq_mck_min_cost(const mq_mck *p, int k);

#endif
