/* Mixed-precision policies (internal): parsed JSON and resolution against a model's graph.
 * File format and precedence: see policy.c (and README "Quantization policies"). */
#ifndef MIXQ_QUANT_POLICY_H
#define MIXQ_QUANT_POLICY_H

#include "mixq/mixq.h"
#include "quant/quant.h"

#define MQ_CLIP_AUTO (-1) /* MSE-optimal below 5 bits, max |x| otherwise */
/* Clip setting c (an mq_clip or MQ_CLIP_AUTO) resolved at `bits`. */
mq_clip mq_clip_auto(int c, int bits);

/* A partial setting: only the fields with has_* set override lower-precedence ones. */
typedef struct pol_spec {
    int has_w, w_bits;      /* w_bits for every kernel, unless kbits */
    int *kbits, nk;         /* per-kernel weight bits (owned), nk entries */
    int has_a, a_bits;
    int has_gran;
    mq_gran gran;
    int has_wclip, wclip;   /* mq_clip or MQ_CLIP_AUTO */
    int has_aclip, aclip;
    int has_kmeans, kmeans;  /* "w_mode": "kmeans" (1) or "linear" (0) */
} pol_spec;

typedef enum pol_kind { POL_OP = 0, POL_GLOB, POL_EXACT } pol_kind;

typedef struct pol_rule {
    pol_kind kind;
    char pattern[MIXQ_NAME_MAX]; /* op name, glob or exact layer name */
    pol_spec spec;
    /* "rules[2] (line 7)" or "layers.<name> (line 7)" for messages: room for the longest
     * "layers." + name (MIXQ_NAME_MAX + 16) and " (line <int>)" */
    char where[MIXQ_NAME_MAX + 16 + 24];
} pol_rule;

struct mixq_policy {
    char *text;      /* the JSON source, NUL-terminated (embedded in quantized model files) */
    size_t len;
    char origin[256];
    pol_spec def;
    int n_rules;
    pol_rule *rules; /* in precedence order: op rules, then globs, then exact (file order within) */
};

/* The resolved setting of one quantizable node. */
typedef struct mq_lq {
    int w_bits;        /* uniform weight bits (per-kernel: the maximum of kbits) */
    int *kbits;        /* [K] weight bits per output channel (owned, always filled) */
    int K;
    int a_bits;
    mq_gran gran;
    mq_clip wclip, aclip; /* AUTO already resolved (wclip at w_bits, the widest kernel) */
    int wclip_rows;       /* 1: wclip was "auto" and the kernels' widths differ: each row takes
                             auto's rule at its own width (mq_weight_scales' row_auto) */
    int kmeans;           /* weights: k-means codebook of 2^w_bits centroids per layer */
} mq_lq;

/* A deep copy of p (rules, per-kernel bits, text if it has one). */
mixq_status mq_policy_copy(const mixq_policy *p, mixq_policy **out);
/* Resolve p for node `node` of m into out (kbits allocated). */
mixq_status mq_policy_resolve_node(const mixq_policy *p, const mixq_model *m, int node, mq_lq *out);
/* Check that every rule of p matches at least one quantizable node of m. */
mixq_status mq_policy_check_coverage(const mixq_policy *p, const mixq_model *m);
/* conv/linear nodes are quantizable. */
int mq_node_quantizable(const mixq_model *m, int node);

#endif
