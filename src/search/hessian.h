/* Hessian information of a float model's loss, for HAWQ (internal; algorithms.md §5).
 *
 * The loss is the mean softmax cross-entropy of n images (batch norm in inference mode: running
 * statistics, so the result does not depend on how the images are batched). Hessian-vector
 * products come from central finite differences of gradients through the model's own forward
 * and backward passes, with no double back-propagation:
 *     H v ~ (g(theta + eps v) - g(theta - eps v)) / (2 eps),   eps = eps_rel ||theta|| / ||v||,
 * over every trainable parameter at once, differences and sums in double, with the activation
 * pattern frozen at theta (model.h: every ReLU keeps its region and every max pool its argmax
 * at theta +- eps v), so that the difference sees the same smooth piece of the network that
 * double back-propagation differentiates: without it every ReLU a step pushes across zero adds
 * a spike of size 1/eps to H v, and a trained network with batch norm has many inputs near
 * zero (the fixture test shows both; frozen = 0 gives the raw difference). A layer's trace comes
 * from Hutchinson's estimator: Tr(H_ll) = E[v_l^T (H v)_l] for v Rademacher (+-1) over all
 * parameters (the cross terms have zero mean), so one probe gives every layer's sample. */
#ifndef MIXQ_SEARCH_HESSIAN_H
#define MIXQ_SEARCH_HESSIAN_H

#include <stdint.h>

#include "mixq/mixq.h"

#define MQ_PATTERN_CAP ((size_t)1 << 29)

typedef struct mq_hessian_config {
    int max_probes;   /* at most this many probes (default 100, HAWQ's) */
    int min_probes;   /* at least this many (default 10: with many layers a chance run of
                         small changes is rare, with one it is not) */
    double tol;       /* stop when every layer's running mean moved by at most tol x its
                         previous value (default 1e-3, HAWQ's); 0: run max_probes */
    double eps_rel;   /* finite-difference step relative to ||theta|| / ||v|| (default 1e-3).
                         With the pattern frozen, float32 rounding is the error below it: on the
                         PyTorch fixture H v is off by at most 1.3e-4 of its largest entry at
                         1e-3, 2.7e-4 at 1e-2, 9.6e-4 at 1e-4, 1.1e-2 at 1e-5; on the trained
                         resnet20 the traces at 3e-2, 1e-2 and 1e-3 agree within 0.5 % probe
                         for probe. The raw difference is
                         right only where no step crosses a kink: at 3e-2 it is 114 % off on the
                         fixture (built 3 % of a deviation away from every kink), and on
                         resnet20 its spread at 1e-3 is several times the frozen one
                         (tests/test_hawq.c prints the fixture's table) */
    int batch;        /* images per forward (default 128) */
    int frozen;       /* 1 (default): the activation pattern (ReLU regions, max-pool argmaxes)
                         recorded at theta holds at theta +- eps v, so H v is the Hessian of the
                         piece of the network around theta, as double back-propagation
                         (PyTorch, PyHessian) gives it; 0: the raw difference, which adds a
                         spike of size 1/eps for every kink a step crosses */
    size_t pattern_cap; /* the patterns of all images are kept when they fit in this many bytes
                         (0: MQ_PATTERN_CAP; 256 images of resnet20 on 28 x 28 take 37 MB), else
                         one batch's is recorded again, with one more forward, before each use */
    uint64_t seed;    /* probe k draws from mq_seed_mix(seed, "Hess", k) */
} mq_hessian_config;
void mq_hessian_config_default(mq_hessian_config *c);

/* The product H v for v (one float per trainable parameter, in the parameter arena's order:
 * tensor t at m->tensors[t].off) into hv (the same layout, double), with eps = eps_rel
 * ||theta|| / ||v|| (*eps_out, optional, gets it), the pattern frozen or not (see frozen).
 * x: [n][c][h][w] images, labels [n]. m must be a float model; its parameters are restored bit
 * for bit. */
mixq_status mq_hessian_hvp(mixq_model *m, const float *x, const int *labels, int n, int batch,
                           const float *v, double eps_rel, int frozen, double *hv, double *eps_out);

/* Progress: probe k (1-based) of at most max done; the last call of a run has k == max ==
 * the probes used. */
typedef void (*mq_hessian_progress_fn)(int k, int max, void *user);

typedef struct mq_hessian_result {
    int probes;       /* probes used */
    int converged;    /* stopped by the tolerance before max_probes */
    double eps;       /* the finite-difference step used */
    double seconds;
} mq_hessian_result;

/* Tr(H_ll) of the weight tensor of each of the L conv/linear nodes[] (the Hessian's diagonal
 * blocks, not divided by the tensor's size) into trace[L], and the standard error of each
 * estimate (sample deviation / sqrt(probes); 0 after one probe) into sem[L] (may be NULL). */
mixq_status mq_hessian_traces(mixq_model *m, const float *x, const int *labels, int n,
                              const mq_hessian_config *c, const int *nodes, int L, double *trace,
                              double *sem, mq_hessian_progress_fn fn, void *user,
                              mq_hessian_result *res);

/* ||Q_b(W) - W||^2 of node `node`'s weights at b bits (1..8) with the search's weight quantizer:
 * per output channel, clip "auto" (MSE below 5 bits, max otherwise), as a policy built with
 * mixq_policy_set_layer quantizes them. */
mixq_status mq_hessian_weight_err(mixq_model *m, int node, int bits, double *err);
/* The same, with each output channel's (kernel's) share in per_kernel[out_c] (NULL: none). A
 * channel's error depends on its own bits alone (per-channel scales and clips), so these are
 * also its errors in a per-kernel policy. */
mixq_status mq_hessian_kernel_err(mixq_model *m, int node, int bits, double *err, double *per_kernel);

#endif
