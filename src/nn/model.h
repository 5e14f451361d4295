/* Model graph internals: nodes, named tensors in arenas, builder functions used by the zoo and
 * the model-file loader. Not public API.
 *
 * A model is a topologically ordered array of nodes (a DAG: node i only reads nodes < i).
 * Node 0 is the input. The last node produces the logits [N][classes].
 * Trainable tensors live in one arena (params) with a parallel gradient arena (grads) of the same
 * layout; buffers (BN running statistics) live in a second arena. Nodes hold tensor indices;
 * pointers are derived from the arena offsets, so arenas can be reallocated/saved as a whole.
 * Activations and their gradients for a batch live in a third arena sized for the largest batch
 * seen so far.
 */
#ifndef MIXQ_NN_MODEL_H
#define MIXQ_NN_MODEL_H

#include <stdio.h>

#include "mixq/mixq.h"
#include "core/core.h"
#include "nn/kernels.h"

typedef struct mq_tensor {
    char name[MIXQ_NAME_MAX];
    int ndim;
    int shape[4];
    int64_t numel;
    size_t off;     /* offset in floats into params (trainable) or buffers */
    int trainable;
    int decay;      /* weight decay applies (conv/linear weights) */
} mq_tensor;

typedef struct mq_node {
    char name[MIXQ_NAME_MAX];
    mixq_op op;
    int n_in, in[2];
    int c, h, w;                 /* output shape per image */
    mq_geom geo;                 /* conv / pool window: kernel, strides, pads */
    int groups, bias;
    float bn_eps, bn_momentum;
    float alpha, beta;           /* hard sigmoid: clamp(alpha x + beta, 0, 1) */
    int t_w, t_b, t_rm, t_rv;    /* tensor indices or -1 (BN: t_w gamma, t_b beta) */
    /* batch-sized runtime storage (into the activation arena) */
    float *y, *dy;
    float *save;                 /* op scratch: BN mean/invstd [2C]; maxpool argmax [N*C*P*Q] */
    int dy_set;                  /* backward: dy already holds a contribution */
    int alias_y, alias_dy;       /* y / dy share the buffer of input 0 (in-place op) */
} mq_node;

/* Quantization hooks, installed by src/quant when a policy is applied (the nn layer does not
 * depend on quant). Node i is a conv or linear node with quantization on. */
typedef struct mq_qhooks {
    /* Forward: point *x / *w / *b at the quantized input activations / weights / bias of node
     * i (*b stays the float bias where the bias is not quantized). */
    mixq_status (*forward)(mixq_model *m, int i, int N, const float **x, const float **w, const float **b);
    /* Backward, before the layer's backward: point *x / *w at the values the forward used and
     * *dx / *acc at where the gradient w.r.t. the quantized input must go (a scratch buffer
     * when the input is quantized). */
    mixq_status (*backward_pre)(mixq_model *m, int i, int N, const float **x, const float **w,
                                float **dx, int *acc);
    /* After the layer's backward: straight-through estimator into the real dx (acc as given by
     * the graph), mask the weight gradient, accumulate the clip gradient. */
    mixq_status (*backward_post)(mixq_model *m, int i, int N, float *dx, int acc);
    /* After each optimizer step (learned clips). */
    void (*step)(mixq_model *m, float lr, float momentum);
    void (*free)(mixq_model *m);
    /* Training checkpoints (src/nn/train.c): write the hooks' training state, what a resumed
     * run needs to go on bit-identically, to f (path names it in errors); read it back from the
     * len bytes at b, only checking them (apply 0) or taking them too (apply 1). NULL: this
     * kind of hooks' state cannot be checkpointed. */
    mixq_status (*ckpt_write)(const mixq_model *m, FILE *f, const char *path);
    mixq_status (*ckpt_read)(mixq_model *m, const unsigned char *b, size_t len, const char *path,
                             int apply);
} mq_qhooks;

struct mixq_model {
    char arch[32];
    mixq_model_config cfg;       /* cfg.arch points at arch[] */
    int n_nodes, cap_nodes;
    mq_node *nodes;
    int n_tensors, cap_tensors;
    mq_tensor *tensors;
    size_t n_params, n_buffers;
    float *params, *grads, *buffers;
    /* activations */
    int batch_cap, batch;        /* allocated capacity and current batch */
    float *act;
    size_t act_floats;
    int have_forward, forward_training, have_backward;
    float *probs;                /* softmax of the last forward [batch][classes] */
    mq_ws ws;
    /* parameters changed (optimizer step, load, external write) since this counter moved */
    uint64_t params_version;
    /* quantization (NULL for a float model) */
    const mq_qhooks *qh;
    void *q;
    int custom_graph;            /* built from a graph description (ONNX import), not the zoo */
    mixq_preprocess pp;          /* input transform (from_data "dataset" until recorded) */
    int pp_recorded;             /* pp was trained with, read from a file, or set */
    mixq_holdout holdout;        /* the images it was trained without, when has_holdout */
    int has_holdout;
    /* A frozen activation pattern (Hessian-vector products, src/search/hessian.c): when set,
     * forward and backward take every ReLU's and ReLU6's region and every max pool's argmax
     * from it, for the batch it was recorded on, instead of from the values (NULL: off). */
    const uint8_t *act_pattern;
};

/* ---- builders (return the new node's index, or -1 with the error recorded) ---- */
mixq_model *mq_model_new(const mixq_model_config *cfg);
int mq_add_input(mixq_model *m, int c, int h, int w);
int mq_add_conv(mixq_model *m, const char *name, int in, int k_out, int ksize, int stride, int pad,
                int groups, int bias); /* square kernel, one stride, the same pad on every side */
int mq_add_conv_g(mixq_model *m, const char *name, int in, int k_out, const mq_geom *g, int groups,
                  int bias);
int mq_add_linear(mixq_model *m, const char *name, int in, int out, int bias);
int mq_add_bn(mixq_model *m, const char *name, int in);
int mq_add_act(mixq_model *m, const char *name, mixq_op op, int in); /* RELU, RELU6, SIGMOID, HSWISH */
int mq_add_hsigmoid(mixq_model *m, const char *name, int in, float alpha, float beta);
int mq_add_pool(mixq_model *m, const char *name, mixq_op op, int in, int k, int stride, int pad);
int mq_add_pool_g(mixq_model *m, const char *name, mixq_op op, int in, const mq_geom *g);
int mq_add_gap(mixq_model *m, const char *name, int in);
int mq_add_add(mixq_model *m, const char *name, int a, int b);
int mq_add_concat(mixq_model *m, const char *name, int a, int b); /* channels of a, then b's */
/* a * b: equal shapes, or one of them C x 1 x 1 (a per-channel factor; it becomes input 1) */
int mq_add_mul(mixq_model *m, const char *name, int a, int b);
int mq_add_flatten(mixq_model *m, const char *name, int in);
/* Allocate the parameter/buffer arenas once all nodes are added: mq_model_layout (every tensor's
 * offset, n_params, n_buffers and the output check; allocates nothing), then mq_model_alloc. */
mixq_status mq_model_finalize(mixq_model *m);
mixq_status mq_model_layout(mixq_model *m);
mixq_status mq_model_alloc(mixq_model *m);
/* Deterministic initialisation from cfg.seed (Kaiming-normal fan-out for convs,
 * PyTorch-default uniform for linear, BN gamma 1 beta 0, running mean 0 var 1). */
void mq_model_init_weights(mixq_model *m);

/* Graph descriptions (src/nn/graph.c): the node list as text, one builder call per line, so a
 * model that is not in the zoo (an imported one) can be saved and rebuilt. */
char *mq_graph_text(const mixq_model *m);
mixq_status mq_graph_build(const char *text, const mixq_model_config *cfg, const char *origin,
                           mixq_model **out);
/* The same, laid out but without arenas (mq_model_layout): its nodes and tensors can be read, or
 * it can be freed; mq_model_alloc then makes it a model. For checking what a file declares (its
 * tensor bytes) before allocating for it. */
mixq_status mq_graph_plan(const char *text, const mixq_model_config *cfg, const char *origin,
                          mixq_model **out);

/* Build an architecture from the zoo into a fresh model (nodes + finalize, not initialised). */
mixq_status mq_zoo_build(const mixq_model_config *cfg, mixq_model **out);
/* The same, laid out without arenas (see mq_graph_plan). */
mixq_status mq_zoo_plan(const mixq_model_config *cfg, mixq_model **out);

static inline float *mq_tensor_ptr(mixq_model *m, int t) {
    if (t < 0) return NULL;
    return (m->tensors[t].trainable ? m->params : m->buffers) + m->tensors[t].off;
}
/* Values per image of node i's first input (C x H x W). */
static inline int64_t mq_node_in_numel(const mixq_model *m, int i) {
    const mq_node *a = &m->nodes[m->nodes[i].in[0]];
    return (int64_t)a->c * a->h * a->w;
}
static inline float *mq_grad_ptr(mixq_model *m, int t) {
    if (t < 0 || !m->tensors[t].trainable) return NULL;
    return m->grads + m->tensors[t].off;
}
int mq_model_find_tensor(const mixq_model *m, const char *name);
int mq_model_find_node(const mixq_model *m, const char *name);

/* Ensure activations for batch n are allocated. */
mixq_status mq_model_reserve(mixq_model *m, int n);

/* With MIXQ_PROFILE=1 in the environment, time spent per op type so far. */
void mq_model_profile_print(const mixq_model *m, FILE *f);

/* Frozen activation patterns: the bytes one takes for a batch of N images (ReLU/ReLU6: one
 * byte per element, 0 off, 1 linear, 2 clipped at 6; max pool: the int32 argmax of each
 * output; in graph order), and the pattern of the last forward written into buf. While
 * m->act_pattern points at a pattern, every forward and backward (of that batch size) runs the
 * network as the piece of itself that pattern selects: a smooth function of the parameters. */
size_t mq_model_pattern_bytes(const mixq_model *m, int N);
mixq_status mq_model_pattern_save(const mixq_model *m, uint8_t *buf);

/* Index of the most likely class of each image of the last forward (for accuracy). */
int mq_model_correct(const mixq_model *m, const int *labels, int n);
/* mixq_model_backward with knowledge distillation: teacher (NULL: none) holds the teacher's
 * logits [batch][classes] for the last forward's images; the loss is (1 - alpha) CE + alpha
 * T^2 KL(softmax(teacher / T) || softmax(logits / T)) (mq_distill), alpha in [0, 1]; *ce (may be
 * NULL) its cross-entropy part CE, before the weighting (= *loss without a teacher). */
mixq_status mq_model_backward_distill(mixq_model *m, const int *labels, float smoothing,
                                      const float *teacher, float alpha, float T, float *loss,
                                      float *ce);
/* Epoch e's draw in mixq_train (train.c) with seed: the image order perm[0..n-1] (a shuffle of
 * 0..n-1) and the augmentation seed for mq_data_batch (*aug). The one definition: a tool that
 * replays an epoch's batches (bench/train_modes) calls it. */
void mq_train_epoch_draw(uint64_t seed, int epoch, int *perm, int n, uint64_t *aug);

#endif
