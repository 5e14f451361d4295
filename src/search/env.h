/* The quantization environment shared by every search agent (internal).
 *
 * Layers: the model's conv/linear nodes in graph order (HAQ's "quantizable layers"). An episode
 * is 2 L steps: layer l's weight bits, then its activation bits. Costs come from a hardware
 * target, precomputed once into per-layer grids [w][a] for w, a in 1..8 (HAQ's lookup-table
 * approach), so a policy's cost is a sum of L table entries.
 *
 * HAQ quirks, decided (README "Search"):
 * - observation flag: 1 on weight steps, 0 on activation steps (HAQ's code lags it by one step);
 * - "previous action" starts at 1.0 (8 bits of 8) every episode (HAQ's is stale after episode 0);
 * - the first layer's input is costed at the policy's a_bits (HAQ indexes its table at a = 7);
 * - pinned first/last layers are 8/8, both operands, and the wall never lowers them. */
#ifndef MIXQ_SEARCH_ENV_H
#define MIXQ_SEARCH_ENV_H

#include <stdint.h>

#include "mixq/mixq.h"
#include "core/core.h"

#define MQ_STATE_DIM 10
#define MQ_NSTATIC 8
enum { MQ_M_LATENCY = 0, MQ_M_ENERGY, MQ_M_SIZE, MQ_M_BITOPS, MQ_NMETRIC };
extern const char *const mq_metric_names[]; /* [MQ_NMETRIC], in MQ_M_* order */

typedef struct mq_env {
    int L;
    int *node;                    /* [L] graph node of each layer */
    char (*name)[MIXQ_NAME_MAX];  /* [L] */
    float (*feat)[MQ_NSTATIC];    /* [L][8] min-max normalised static features */
    float (*raw)[MQ_NSTATIC];     /* [L][8] the same before normalisation */
    double (*grid)[MQ_NMETRIC][9][9]; /* [L][metric][w][a], w and a in 1..8 (0 unused) */
    double w8a8[MQ_NMETRIC];      /* the uniform W8A8 policy's totals */
    mixq_hw *hw;                  /* the target (not owned), for per-kernel costs */
    mixq_hw_layer *hl;            /* [L] each layer's shape at the run's batch */
    int *koff;                    /* [L + 1] offset of layer l's kernels in a per-kernel vector */
    int b_min, b_max, pin_ends;
    int a_min;                    /* activations' floor for the wall and the cheapest policy (b_min
                                     unless an agent's activation widths start higher) */
    int metric;                   /* the primary metric: the first budget's (latency without one);
                                     accuracy mode minimises it */
    double target[MQ_NMETRIC];    /* each metric's budget in its units (Inf: none) */
    int n_budgets;                /* metrics with a budget */
} mq_env;

/* Build the environment of model m on target hw (costs at hw_batch images; 0 = hw's). */
mixq_status mq_env_create(const mixq_model *m, mixq_hw *hw, int hw_batch, int b_min, int b_max,
                          int pin_ends, mq_env *e);
void mq_env_free(mq_env *e);

/* Parse "metric=value[unit][,metric=value[unit]...]" (one per metric; a fraction of W8A8
 * without a unit) into e->target, e->metric (the first one's) and e->n_budgets. A budget the
 * cheapest reachable policy cannot meet is an error giving that policy's cost. */
mixq_status mq_env_set_budget(mq_env *e, const char *budget);
/* The budget of metric k as a fraction of W8A8 (0: none). */
double mq_env_budget_ratio(const mq_env *e, int k);
/* 1 if bits w, a meet every budget. */
int mq_env_fits(const mq_env *e, const int *w, const int *a);
/* A value of a metric with its unit, scaled for reading: "39.48 us", "1.2 mJ", "16.5 KiB",
 * "3.1e+09 ops" (the units a budget takes). Returns buf. */
const char *mq_env_fmt_cost(int metric, double v, char *buf, size_t n);

/* Observation for step t (layer t/2, weight step if t even); prev = previous action's bits. */
void mq_env_state(const mq_env *e, int t, int prev_bits, float s[MQ_STATE_DIM]);
/* HAQ's action -> bits: round(b_min - 0.5 + a (b_max - b_min + 1)), half to even, clamped. */
int mq_env_bits(const mq_env *e, double a);
/* The action at the middle of bits b's slice of [0, 1]: mq_env_bits maps it back to b. */
float mq_env_action(const mq_env *e, int b);
/* Pin the first and last layers to 8/8 when enabled. */
void mq_env_pin(const mq_env *e, int *w, int *a);
/* Total of a metric for bits w[L], a[L]. */
double mq_env_cost(const mq_env *e, const int *w, const int *a, int metric);
/* Per-kernel weight bits kb[koff[L]] (layer l's kernels at kb + koff[l]) and activation bits
 * a[L]: every metric's total into out[MQ_NMETRIC], through mixq_hw_cost_kernels for a layer whose
 * kernels differ (the grids for one whose kernels agree). */
/* 1 if layer l's kernels in per-kernel bits kb all have one width. */
int mq_env_kernels_agree(const mq_env *e, const int *kb, int l);
mixq_status mq_env_cost_kernels(const mq_env *e, const int *kb, const int *a, double out[MQ_NMETRIC]);
/* 1 if the totals c[MQ_NMETRIC] meet every budget. */
int mq_env_fits_costs(const mq_env *e, const double c[MQ_NMETRIC]);
/* Metric k of the cheapest policy the wall can reach (pinned layers 8/8, the rest b_min). */
double mq_env_min_cost(const mq_env *e, int k);
/* HAQ's sequential decrease, in place: from the last layer to the first, lower the activation
 * bits, then the weight bits, one step each, sweeping until every budget holds; a step is
 * skipped when no lower width of that operand makes an over-budget metric cheaper on that
 * layer (e.g. activation bits under a size budget), so a plateau of equal costs (the cpu
 * target's int8 fallback) is walked through. Returns 1 if the policy fits. */
int mq_env_wall(const mq_env *e, int *w, int *a);
/* AutoQ's kernel-wise wall, in place on per-kernel weight bits kb[koff[L]] and activation bits
 * a[L]: pins the first and last layers (all kernels 8, a 8) when enabled, then, while a budget
 * is over, takes the step with the least quantization error per unit of cost saved: lower by one
 * bit one kernel, a tile of mq_hw_kernel_rows kernels or every kernel of a width in a layer
 * (those whose error grows least first; kerr[i][b] = kernel i's error at b bits, b in
 * b_min..8), the saving summed over the over-budget metrics relative to each budget, costs
 * exact (mixq_hw_cost_kernels). A step that saves nothing is never taken (on BISMO a split
 * layer can cost more than its widest width: one kernel alone does not pay, a tile or the whole
 * width does). Activations are lowered only when no weight step saves (the largest saving
 * first). *fits = 1 if every budget holds at the end. MIXQ_ERR_NOMEM, or a cost error. */
mixq_status mq_env_wall_kernels(const mq_env *e, const double (*kerr)[9], int *kb, int *a, int *fits);

#endif
