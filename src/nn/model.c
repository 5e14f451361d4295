/* Model graph: builders, arenas, forward and backward over the topologically ordered nodes. */
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/kernels.h"

/* One name per mixq_op, in enum order. */
static const char *const op_names[] = {
    "input",     /* MIXQ_OP_INPUT */
    "conv",      /* MIXQ_OP_CONV */
    "linear",    /* MIXQ_OP_LINEAR */
    "batchnorm", /* MIXQ_OP_BN */
    "relu",      /* MIXQ_OP_RELU */
    "relu6",     /* MIXQ_OP_RELU6 */
    "maxpool",   /* MIXQ_OP_MAXPOOL */
    "avgpool",   /* MIXQ_OP_AVGPOOL */
    "gap",       /* MIXQ_OP_GAP */
    "add",       /* MIXQ_OP_ADD */
    "flatten",   /* MIXQ_OP_FLATTEN */
    "concat",    /* MIXQ_OP_CONCAT */
    "mul",       /* MIXQ_OP_MUL */
    "sigmoid",   /* MIXQ_OP_SIGMOID */
    "hardsigmoid", /* MIXQ_OP_HSIGMOID */
    "hardswish", /* MIXQ_OP_HSWISH */
};
_Static_assert(MQ_COUNTOF(op_names) == MIXQ_OP_COUNT, "op_names: one name per mixq_op");

const char *mixq_op_name(mixq_op op) {
    if ((int)op < 0 || op >= MIXQ_OP_COUNT) return "unknown";
    return op_names[op];
}

/* ---------------------------------------------------------------- construction */
mixq_model *mq_model_new(const mixq_model_config *cfg) {
    mixq_model *m = mq_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    m->cfg = *cfg;
    snprintf(m->arch, sizeof m->arch, "%s", cfg->arch ? cfg->arch : "custom");
    m->cfg.arch = m->arch;
    if (m->cfg.width <= 0) m->cfg.width = 1.0f;
    snprintf(m->pp.name, sizeof m->pp.name, "dataset");
    m->pp.from_data = 1;
    return m;
}

int mixq_model_preprocess(const mixq_model *m, mixq_preprocess *out) {
    if (!m || !out) return 0;
    *out = m->pp;
    return m->pp_recorded;
}

mixq_status mixq_model_set_preprocess(mixq_model *m, const mixq_preprocess *pp) {
    if (!m || !pp) return mq_err(MIXQ_ERR_ARG, "mixq_model_set_preprocess: NULL argument");
    if (!pp->from_data && pp->channels != m->cfg.in_c)
        return mq_err(MIXQ_ERR_SHAPE, "input transform '%s' is for %d-channel images, but the model "
                      "takes %d channels", pp->name, pp->channels, m->cfg.in_c);
    m->pp = *pp;
    m->pp_recorded = 1;
    return MIXQ_OK;
}

int mixq_model_holdout(const mixq_model *m, mixq_holdout *out) {
    if (!m || !out) return 0;
    *out = m->holdout;
    return m->has_holdout;
}

mixq_status mixq_model_set_holdout(mixq_model *m, const mixq_holdout *h) {
    if (!m) return mq_err(MIXQ_ERR_ARG, "mixq_model_set_holdout: NULL model");
    if (h && (h->images < 1 || h->count < 0 || h->count > h->images))
        return mq_err(MIXQ_ERR_ARG, "held-out split of %d of %d training images is out of range",
                      h->count, h->images);
    m->has_holdout = h != NULL;
    m->holdout = h ? *h : (mixq_holdout){0};
    return MIXQ_OK;
}

uint64_t mixq_model_split_seed(const mixq_model *m, int given, uint64_t split_seed, uint64_t seed) {
    if (given) return split_seed;
    return m && m->has_holdout ? m->holdout.seed : seed;
}

void mixq_model_free(mixq_model *m) {
    if (!m) return;
    if (m->qh && m->qh->free) m->qh->free(m);
    free(m->nodes);
    free(m->tensors);
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->act);
    free(m->probs);
    mq_ws_free(&m->ws);
    free(m);
}

static int new_node(mixq_model *m, const char *name, mixq_op op) {
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 32;
        mq_node *nn = mq_realloc(m->nodes, (size_t)cap, sizeof *nn, "model nodes");
        if (!nn) {
            mq_err(MIXQ_ERR_NOMEM, "out of memory adding node '%s'", name);
            return -1;
        }
        m->nodes = nn;
        m->cap_nodes = cap;
    }
    if (strlen(name) >= MIXQ_NAME_MAX) {
        mq_err(MIXQ_ERR_ARG, "node name '%s' longer than %d characters", name, MIXQ_NAME_MAX - 1);
        return -1;
    }
    if (mq_model_find_node(m, name) >= 0) {
        mq_err(MIXQ_ERR_ARG, "duplicate node name '%s'", name);
        return -1;
    }
    mq_node *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->op = op;
    n->t_w = n->t_b = n->t_rm = n->t_rv = -1;
    return m->n_nodes++;
}

static int check_input(mixq_model *m, int in, const char *name) {
    if (in < 0 || in >= m->n_nodes) {
        mq_err(MIXQ_ERR_ARG, "node '%s': input index %d does not name an earlier node", name, in);
        return 0;
    }
    return 1;
}

/* A node's output, c x h x w, must stay within MQ_NODE_MAX values: every size product in int
 * (c * h * w, a linear layer's fan-in) is then defined, whatever a model file or ONNX file says. */
#define MQ_NODE_MAX (INT64_C(1) << 30)
static int size_ok(const char *name, int64_t c, int64_t h, int64_t w) {
    if (c * h * w <= MQ_NODE_MAX) return 1;
    mq_err(MIXQ_ERR_SHAPE, "node '%s': output %lldx%lldx%lld is larger than %lld values", name, (long long)c,
           (long long)h, (long long)w, (long long)MQ_NODE_MAX);
    return 0;
}

static int new_tensor(mixq_model *m, const char *node, const char *suffix, int ndim,
                      const int *shape, int trainable, int decay) {
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || numel > (INT64_C(1) << 40) / shape[i]) {
            mq_err(MIXQ_ERR_SHAPE, "tensor '%s.%s': a dimension is below 1 or it holds more than 2^40 values",
                   node, suffix);
            return -1;
        }
        numel *= shape[i];
    }
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        mq_tensor *nt = mq_realloc(m->tensors, (size_t)cap, sizeof *nt, "model tensors");
        if (!nt) {
            mq_err(MIXQ_ERR_NOMEM, "out of memory adding tensor '%s.%s'", node, suffix);
            return -1;
        }
        m->tensors = nt;
        m->cap_tensors = cap;
    }
    mq_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    int len = snprintf(t->name, sizeof t->name, "%s.%s", node, suffix);
    if (len >= MIXQ_NAME_MAX) {
        mq_err(MIXQ_ERR_ARG, "tensor name '%s.%s' too long", node, suffix);
        return -1;
    }
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->trainable = trainable;
    t->decay = decay;
    return m->n_tensors++;
}

int mq_add_input(mixq_model *m, int c, int h, int w) {
    if (c < 1 || h < 1 || w < 1) {
        mq_err(MIXQ_ERR_ARG, "input shape %dx%dx%d must be positive", c, h, w);
        return -1;
    }
    if (!size_ok("input", c, h, w)) return -1;
    int i = new_node(m, "input", MIXQ_OP_INPUT);
    if (i < 0) return -1;
    m->nodes[i].c = c;
    m->nodes[i].h = h;
    m->nodes[i].w = w;
    return i;
}

int mq_add_conv(mixq_model *m, const char *name, int in, int k_out, int ksize, int stride, int pad,
                int groups, int bias) {
    const mq_geom g = mq_geom_square(ksize, stride, pad);
    return mq_add_conv_g(m, name, in, k_out, &g, groups, bias);
}

int mq_add_conv_g(mixq_model *m, const char *name, int in, int k_out, const mq_geom *g, int groups,
                  int bias) {
    if (!check_input(m, in, name)) return -1;
    const mq_node *src = &m->nodes[in];
    mq_conv_shape s = mq_conv_shape_of(1, src->c, src->h, src->w, k_out, g, groups);
    mixq_status st = mq_conv_shape_init(&s);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", mixq_last_error());
        mq_err(st, "conv '%s' on input %dx%dx%d: %s", name, src->c, src->h, src->w, msg);
        return -1;
    }
    if (!size_ok(name, k_out, s.P, s.Q)) return -1;
    int i = new_node(m, name, MIXQ_OP_CONV);
    if (i < 0) return -1;
    mq_node *n = &m->nodes[i];
    n->n_in = 1;
    n->in[0] = in;
    n->c = k_out;
    n->h = s.P;
    n->w = s.Q;
    n->geo = *g;
    n->groups = groups;
    n->bias = bias;
    int wshape[4] = {k_out, s.C / groups, g->kh, g->kw}; /* src may have moved (realloc) */
    n->t_w = new_tensor(m, name, "weight", 4, wshape, 1, 1);
    if (n->t_w < 0) return -1;
    if (bias) {
        n->t_b = new_tensor(m, name, "bias", 1, &k_out, 1, 0);
        if (n->t_b < 0) return -1;
    }
    return i;
}

int mq_add_linear(mixq_model *m, const char *name, int in, int out, int bias) {
    if (!check_input(m, in, name)) return -1;
    const mq_node *src = &m->nodes[in];
    int fan_in = src->c * src->h * src->w;
    if (out < 1) {
        mq_err(MIXQ_ERR_ARG, "linear '%s': %d outputs", name, out);
        return -1;
    }
    int i = new_node(m, name, MIXQ_OP_LINEAR);
    if (i < 0) return -1;
    mq_node *n = &m->nodes[i];
    n->n_in = 1;
    n->in[0] = in;
    n->c = out;
    n->h = n->w = 1;
    n->bias = bias;
    int wshape[2] = {out, fan_in};
    n->t_w = new_tensor(m, name, "weight", 2, wshape, 1, 1);
    if (n->t_w < 0) return -1;
    if (bias) {
        n->t_b = new_tensor(m, name, "bias", 1, &out, 1, 0);
        if (n->t_b < 0) return -1;
    }
    return i;
}

int mq_add_bn(mixq_model *m, const char *name, int in) {
    if (!check_input(m, in, name)) return -1;
    int i = new_node(m, name, MIXQ_OP_BN);
    if (i < 0) return -1;
    mq_node *n = &m->nodes[i];
    const mq_node *src = &m->nodes[in];
    n->n_in = 1;
    n->in[0] = in;
    n->c = src->c;
    n->h = src->h;
    n->w = src->w;
    n->bn_eps = 1e-5f;
    n->bn_momentum = 0.1f;
    int c = src->c;
    if ((n->t_w = new_tensor(m, name, "weight", 1, &c, 1, 0)) < 0) return -1;
    if ((n->t_b = new_tensor(m, name, "bias", 1, &c, 1, 0)) < 0) return -1;
    if ((n->t_rm = new_tensor(m, name, "running_mean", 1, &c, 0, 0)) < 0) return -1;
    if ((n->t_rv = new_tensor(m, name, "running_var", 1, &c, 0, 0)) < 0) return -1;
    return i;
}

static int add_same_shape(mixq_model *m, const char *name, mixq_op op, int in) {
    if (!check_input(m, in, name)) return -1;
    int i = new_node(m, name, op);
    if (i < 0) return -1;
    mq_node *n = &m->nodes[i];
    const mq_node *src = &m->nodes[in];
    n->n_in = 1;
    n->in[0] = in;
    n->c = src->c;
    n->h = src->h;
    n->w = src->w;
    return i;
}

int mq_add_act(mixq_model *m, const char *name, mixq_op op, int in) {
    if (op != MIXQ_OP_RELU && op != MIXQ_OP_RELU6 && op != MIXQ_OP_SIGMOID && op != MIXQ_OP_HSWISH) {
        mq_err(MIXQ_ERR_ARG, "node '%s': %s is not an activation without parameters", name, mixq_op_name(op));
        return -1;
    }
    return add_same_shape(m, name, op, in);
}

int mq_add_hsigmoid(mixq_model *m, const char *name, int in, float alpha, float beta) {
    if (!(isfinite(alpha) && isfinite(beta) && alpha != 0.0f)) {
        mq_err(MIXQ_ERR_ARG, "hard sigmoid '%s': alpha %g, beta %g (finite, alpha not 0)", name, (double)alpha,
               (double)beta);
        return -1;
    }
    int i = add_same_shape(m, name, MIXQ_OP_HSIGMOID, in);
    if (i < 0) return -1;
    m->nodes[i].alpha = alpha;
    m->nodes[i].beta = beta;
    return i;
}

int mq_add_pool(mixq_model *m, const char *name, mixq_op op, int in, int k, int stride, int pad) {
    const mq_geom g = mq_geom_square(k, stride, pad);
    return mq_add_pool_g(m, name, op, in, &g);
}

int mq_add_pool_g(mixq_model *m, const char *name, mixq_op op, int in, const mq_geom *g) {
    if (!check_input(m, in, name)) return -1;
    if (op != MIXQ_OP_MAXPOOL && op != MIXQ_OP_AVGPOOL) {
        mq_err(MIXQ_ERR_ARG, "node '%s': %s is not a pooling op", name, mixq_op_name(op));
        return -1;
    }
    const mq_node *src = &m->nodes[in];
    if (mq_geom_is_square(g)) {
        const int k = g->kh, stride = g->sh, pad = g->pt;
        if (k < 1 || stride < 1 || pad < 0 || pad > k / 2 || k > 65536) {
            mq_err(MIXQ_ERR_ARG, "pool '%s': kernel %d stride %d pad %d invalid (k <= 65536, pad <= k/2)",
                   name, k, stride, pad);
            return -1;
        }
    } else if (g->kh < 1 || g->kw < 1 || g->kh > 65536 || g->kw > 65536 || g->sh < 1 || g->sw < 1 ||
               g->pt < 0 || g->pb < 0 || g->pl < 0 || g->pr < 0 || g->pt > g->kh / 2 ||
               g->pb > g->kh / 2 || g->pl > g->kw / 2 || g->pr > g->kw / 2) {
        mq_err(MIXQ_ERR_ARG, "pool '%s': kernel %dx%d strides %dx%d pads %d,%d,%d,%d invalid (kernel <= 65536, "
               "each pad <= half the kernel along its axis)", name, g->kh, g->kw, g->sh, g->sw, g->pt,
               g->pl, g->pb, g->pr);
        return -1;
    }
    int64_t hp = (int64_t)src->h + g->pt + g->pb, wp = (int64_t)src->w + g->pl + g->pr;
    if (hp < g->kh || wp < g->kw) {
        mq_err(MIXQ_ERR_SHAPE, "pool '%s': kernel %dx%d larger than its %dx%d input", name, g->kh, g->kw,
               src->h, src->w);
        return -1;
    }
    if (!size_ok(name, src->c, (hp - g->kh) / g->sh + 1, (wp - g->kw) / g->sw + 1)) return -1;
    int P = (int)((hp - g->kh) / g->sh + 1), Q = (int)((wp - g->kw) / g->sw + 1);
    int i = add_same_shape(m, name, op, in);
    if (i < 0) return -1;
    mq_node *n = &m->nodes[i];
    n->h = P;
    n->w = Q;
    n->geo = *g;
    return i;
}

int mq_add_gap(mixq_model *m, const char *name, int in) {
    int i = add_same_shape(m, name, MIXQ_OP_GAP, in);
    if (i < 0) return -1;
    m->nodes[i].h = m->nodes[i].w = 1;
    return i;
}

int mq_add_flatten(mixq_model *m, const char *name, int in) {
    int i = add_same_shape(m, name, MIXQ_OP_FLATTEN, in);
    if (i < 0) return -1;
    mq_node *n = &m->nodes[i];
    n->c = n->c * n->h * n->w;
    n->h = n->w = 1;
    return i;
}

int mq_add_add(mixq_model *m, const char *name, int a, int b) {
    if (!check_input(m, a, name) || !check_input(m, b, name)) return -1;
    const mq_node *na = &m->nodes[a], *nb = &m->nodes[b];
    if (na->c != nb->c || na->h != nb->h || na->w != nb->w) {
        mq_err(MIXQ_ERR_SHAPE, "add '%s': '%s' is %dx%dx%d but '%s' is %dx%dx%d", name, na->name,
               na->c, na->h, na->w, nb->name, nb->c, nb->h, nb->w);
        return -1;
    }
    int i = add_same_shape(m, name, MIXQ_OP_ADD, a);
    if (i < 0) return -1;
    m->nodes[i].n_in = 2;
    m->nodes[i].in[1] = b;
    return i;
}

int mq_add_concat(mixq_model *m, const char *name, int a, int b) {
    if (!check_input(m, a, name) || !check_input(m, b, name)) return -1;
    const mq_node *na = &m->nodes[a], *nb = &m->nodes[b];
    if (na->h != nb->h || na->w != nb->w) {
        mq_err(MIXQ_ERR_SHAPE, "concat '%s': '%s' is %dx%dx%d but '%s' is %dx%dx%d (heights and widths must "
               "agree)", name, na->name, na->c, na->h, na->w, nb->name, nb->c, nb->h, nb->w);
        return -1;
    }
    if (!size_ok(name, (int64_t)na->c + nb->c, na->h, na->w)) return -1;
    const int c = na->c + nb->c;
    int i = add_same_shape(m, name, MIXQ_OP_CONCAT, a);
    if (i < 0) return -1;
    m->nodes[i].n_in = 2;
    m->nodes[i].in[1] = b;
    m->nodes[i].c = c;
    return i;
}

int mq_add_mul(mixq_model *m, const char *name, int a, int b) {
    if (!check_input(m, a, name) || !check_input(m, b, name)) return -1;
    const mq_node *na = &m->nodes[a], *nb = &m->nodes[b];
    const int same = na->c == nb->c && na->h == nb->h && na->w == nb->w;
    if (!same && na->c == nb->c && na->h == 1 && na->w == 1) { /* the factor first: swap */
        int t = a;
        a = b, b = t;
        na = &m->nodes[a], nb = &m->nodes[b];
    }
    if (!same && !(na->c == nb->c && nb->h == 1 && nb->w == 1)) {
        mq_err(MIXQ_ERR_SHAPE, "mul '%s': '%s' is %dx%dx%d and '%s' is %dx%dx%d; mixq multiplies equal shapes "
               "or a map by one factor per channel (C x 1 x 1)", name, na->name, na->c, na->h, na->w,
               nb->name, nb->c, nb->h, nb->w);
        return -1;
    }
    int i = add_same_shape(m, name, MIXQ_OP_MUL, a);
    if (i < 0) return -1;
    m->nodes[i].n_in = 2;
    m->nodes[i].in[1] = b;
    return i;
}

mixq_status mq_model_layout(mixq_model *m) {
    if (m->n_nodes < 2 || m->nodes[0].op != MIXQ_OP_INPUT)
        return mq_err(MIXQ_ERR_STATE, "model '%s' has no layers", m->arch);
    size_t np = 0, nb = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        mq_tensor *t = &m->tensors[i];
        if (t->trainable) {
            t->off = np;
            np += (size_t)((t->numel + 15) & ~(int64_t)15); /* 64-byte aligned views */
        } else {
            t->off = nb;
            nb += (size_t)((t->numel + 15) & ~(int64_t)15);
        }
    }
    m->n_params = np;
    m->n_buffers = nb;
    const mq_node *last = &m->nodes[m->n_nodes - 1];
    if (last->c * last->h * last->w != m->cfg.classes)
        return mq_err(MIXQ_ERR_SHAPE, "model '%s' ends in '%s' with %d outputs, expected %d classes",
                      m->arch, last->name, last->c * last->h * last->w, m->cfg.classes);
    return MIXQ_OK;
}

mixq_status mq_model_alloc(mixq_model *m) {
    m->params = mq_alloc_aligned(m->n_params * sizeof(float), "parameter arena");
    m->grads = mq_alloc_aligned(m->n_params * sizeof(float), "gradient arena");
    m->buffers = mq_alloc_aligned((m->n_buffers ? m->n_buffers : 1) * sizeof(float), "buffer arena");
    if (!m->params || !m->grads || !m->buffers) return MIXQ_ERR_NOMEM;
    return MIXQ_OK;
}

mixq_status mq_model_finalize(mixq_model *m) {
    mixq_status st = mq_model_layout(m);
    return st ? st : mq_model_alloc(m);
}

void mq_model_init_weights(mixq_model *m) {
    mq_rng rng;
    mq_rng_seed(&rng, mq_seed_mix(m->cfg.seed, 0x1417, 0));
    for (int i = 0; i < m->n_nodes; i++) {
        mq_node *n = &m->nodes[i];
        if (n->op == MIXQ_OP_CONV) {
            /* Kaiming normal, fan_out, ReLU gain (as torchvision's ResNet). */
            const mq_tensor *t = &m->tensors[n->t_w];
            double fan_out = (double)t->shape[0] * t->shape[2] * t->shape[3];
            if (n->groups > 1) fan_out /= n->groups;
            float std = (float)sqrt(2.0 / fan_out);
            float *w = mq_tensor_ptr(m, n->t_w);
            for (int64_t k = 0; k < t->numel; k++) w[k] = std * mq_rng_normal(&rng);
            if (n->t_b >= 0) memset(mq_tensor_ptr(m, n->t_b), 0, sizeof(float) * (size_t)n->c);
        } else if (n->op == MIXQ_OP_LINEAR) {
            const mq_tensor *t = &m->tensors[n->t_w];
            float bound = 1.0f / sqrtf((float)t->shape[1]);
            float *w = mq_tensor_ptr(m, n->t_w);
            for (int64_t k = 0; k < t->numel; k++)
                w[k] = bound * (2.0f * mq_rng_uniform(&rng) - 1.0f);
            if (n->t_b >= 0) {
                float *b = mq_tensor_ptr(m, n->t_b);
                for (int k = 0; k < n->c; k++) b[k] = bound * (2.0f * mq_rng_uniform(&rng) - 1.0f);
            }
        } else if (n->op == MIXQ_OP_BN) {
            float *g = mq_tensor_ptr(m, n->t_w), *b = mq_tensor_ptr(m, n->t_b);
            float *rm = mq_tensor_ptr(m, n->t_rm), *rv = mq_tensor_ptr(m, n->t_rv);
            for (int k = 0; k < n->c; k++) {
                g[k] = 1.0f;
                b[k] = 0.0f;
                rm[k] = 0.0f;
                rv[k] = 1.0f;
            }
        }
    }
}

mixq_status mixq_model_create(const mixq_model_config *cfg, mixq_model **out) {
    *out = NULL;
    mixq_model *m = NULL;
    mixq_status st = mq_zoo_build(cfg, &m);
    if (st) return st;
    mq_model_init_weights(m);
    *out = m;
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- lookup and info */
int mq_model_find_tensor(const mixq_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

int mq_model_find_node(const mixq_model *m, const char *name) {
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return i;
    return -1;
}

int mixq_model_node_count(const mixq_model *m) { return m->n_nodes; }
const char *mixq_model_arch(const mixq_model *m) { return m->arch; }

void mixq_model_input_shape(const mixq_model *m, int *c, int *h, int *w, int *classes) {
    if (c) *c = m->cfg.in_c;
    if (h) *h = m->cfg.in_h;
    if (w) *w = m->cfg.in_w;
    if (classes) *classes = m->cfg.classes;
}

static int64_t node_macs(const mixq_model *m, const mq_node *n) {
    const mq_node *src = &m->nodes[n->in[0]];
    if (n->op == MIXQ_OP_CONV)
        return (int64_t)n->c * n->h * n->w * (src->c / n->groups) * n->geo.kh * n->geo.kw;
    if (n->op == MIXQ_OP_LINEAR) return (int64_t)n->c * src->c * src->h * src->w;
    return 0;
}

mixq_status mixq_model_node(const mixq_model *m, int i, mixq_node_info *info) {
    if (i < 0 || i >= m->n_nodes)
        return mq_err(MIXQ_ERR_ARG, "node index %d out of range [0, %d)", i, m->n_nodes);
    const mq_node *n = &m->nodes[i];
    memset(info, 0, sizeof *info);
    info->name = n->name;
    info->op = n->op;
    info->n_inputs = n->n_in;
    info->inputs[0] = n->n_in > 0 ? n->in[0] : -1;
    info->inputs[1] = n->n_in > 1 ? n->in[1] : -1;
    const mq_node *src = n->n_in ? &m->nodes[n->in[0]] : n;
    info->in_c = src->c;
    info->in_h = src->h;
    info->in_w = src->w;
    info->out_c = n->c;
    info->out_h = n->h;
    info->out_w = n->w;
    info->kh = n->geo.kh;
    info->kw = n->geo.kw;
    info->stride = n->geo.sh;
    info->pad = n->geo.pt;
    info->stride_w = n->geo.sw;
    info->pad_left = n->geo.pl;
    info->pad_bottom = n->geo.pb;
    info->pad_right = n->geo.pr;
    info->groups = n->groups;
    int ts[2] = {n->t_w, n->t_b};
    for (int k = 0; k < 2; k++)
        if (ts[k] >= 0) info->params += m->tensors[ts[k]].numel;
    info->macs = n->n_in ? node_macs(m, n) : 0;
    return MIXQ_OK;
}

int64_t mixq_model_param_count(const mixq_model *m) {
    int64_t s = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable) s += m->tensors[i].numel;
    return s;
}

int64_t mixq_model_macs(const mixq_model *m) {
    int64_t s = 0;
    for (int i = 1; i < m->n_nodes; i++) s += node_macs(m, &m->nodes[i]);
    return s;
}

int mixq_model_tensor_count(const mixq_model *m) { return m->n_tensors; }

mixq_status mixq_model_tensor(const mixq_model *m, int i, mixq_tensor_info *info) {
    if (i < 0 || i >= m->n_tensors)
        return mq_err(MIXQ_ERR_ARG, "tensor index %d out of range [0, %d)", i, m->n_tensors);
    const mq_tensor *t = &m->tensors[i];
    info->name = t->name;
    info->ndim = t->ndim;
    for (int k = 0; k < 4; k++) info->shape[k] = k < t->ndim ? t->shape[k] : 1;
    info->numel = t->numel;
    info->trainable = t->trainable;
    return MIXQ_OK;
}

float *mixq_model_tensor_data(mixq_model *m, const char *name) {
    int t = mq_model_find_tensor(m, name);
    if (t < 0) {
        mq_err(MIXQ_ERR_NOTFOUND, "model '%s' has no tensor '%s'", m->arch, name);
        return NULL;
    }
    m->params_version++; /* the caller may write through the pointer */
    return mq_tensor_ptr(m, t);
}

float *mixq_model_tensor_grad(mixq_model *m, const char *name) {
    int t = mq_model_find_tensor(m, name);
    if (t < 0) {
        mq_err(MIXQ_ERR_NOTFOUND, "model '%s' has no tensor '%s'", m->arch, name);
        return NULL;
    }
    if (!m->tensors[t].trainable) {
        mq_err(MIXQ_ERR_ARG, "tensor '%s' is a buffer and has no gradient", name);
        return NULL;
    }
    return mq_grad_ptr(m, t);
}

const float *mixq_model_node_output(const mixq_model *m, int node) {
    if (!m->have_forward || node < 0 || node >= m->n_nodes) return NULL;
    return m->nodes[node].y;
}

/* ---------------------------------------------------------------- activations */
static size_t node_save_floats(const mixq_model *m, const mq_node *n, int batch) {
    (void)m;
    if (n->op == MIXQ_OP_BN) return 2 * (size_t)n->c;
    if (n->op == MIXQ_OP_MAXPOOL) return (size_t)batch * n->c * n->h * n->w; /* int32 argmax */
    return 0;
}

static size_t round16(size_t x) { return (x + 15) & ~(size_t)15; }

/* Memory plan: in-place ops share their input's buffers where that is safe.
 *  - ReLU/ReLU6 overwrite their input's output (y) and compute their input gradient in place
 *    (dy) when the input has no other consumer and does not itself need its output in backward
 *    (i.e. is not an activation). Conv, BN, linear, add and pooling backward passes need their
 *    inputs or saved state, never their own outputs, so this is safe.
 *  - Flatten is a view: y aliases its input; dy too when the input has no other consumer.
 *  - Add passes its gradient to input 0 unchanged: dy aliases input 0's dy when input 0 has no
 *    other consumer.
 * A node whose output was consumed in place no longer holds its own output after the forward
 * pass (mixq_model_node_output then returns the in-place consumer's result). */
/* Ops whose backward reads their own output (an in-place consumer would overwrite it). */
static int backward_reads_output(mixq_op op) {
    return op == MIXQ_OP_RELU || op == MIXQ_OP_RELU6 || op == MIXQ_OP_SIGMOID || op == MIXQ_OP_HSIGMOID;
}

/* MIXQ_ERR_NOMEM (nothing changed) when its scratch cannot be had */
static mixq_status plan_aliases(mixq_model *m) {
    int *cons = mq_calloc((size_t)m->n_nodes, sizeof(int), "node consumers");
    if (!cons) return MIXQ_ERR_NOMEM; /* before any flag changes: the current arena stays valid */
    for (int i = 0; i < m->n_nodes; i++) {
        m->nodes[i].alias_y = m->nodes[i].alias_dy = 0;
        for (int k = 0; k < m->nodes[i].n_in; k++) cons[m->nodes[i].in[k]]++;
    }
    for (int i = 1; i < m->n_nodes; i++) {
        mq_node *n = &m->nodes[i];
        const mq_node *a = &m->nodes[n->in[0]];
        int single = cons[n->in[0]] == 1 && a->op != MIXQ_OP_INPUT;
        switch (n->op) {
        case MIXQ_OP_RELU:
        case MIXQ_OP_RELU6:
            if (single && !backward_reads_output(a->op)) n->alias_y = n->alias_dy = 1;
            break;
        case MIXQ_OP_FLATTEN:
            n->alias_y = 1;
            n->alias_dy = single;
            break;
        case MIXQ_OP_ADD:
            n->alias_dy = single && n->in[0] != n->in[1];
            break;
        default:
            break;
        }
    }
    free(cons);
    return MIXQ_OK;
}

mixq_status mq_model_reserve(mixq_model *m, int n) {
    if (n < 1) return mq_err(MIXQ_ERR_ARG, "batch size %d must be positive", n);
    if (n <= m->batch_cap) {
        m->batch = n;
        return MIXQ_OK;
    }
    if (plan_aliases(m)) return MIXQ_ERR_NOMEM;
    size_t total = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const mq_node *nd = &m->nodes[i];
        size_t sz = round16((size_t)n * nd->c * nd->h * nd->w);
        total += (nd->alias_y ? 0 : sz) + (nd->alias_dy || i == 0 ? 0 : sz) +
                 round16(node_save_floats(m, nd, n));
    }
    float *act = mq_alloc_aligned(total * sizeof(float), "activation arena");
    float *probs = mq_malloc((size_t)n * (size_t)m->cfg.classes, sizeof(float), "softmax");
    if (!act || !probs) {
        free(act);
        free(probs);
        return mq_err(MIXQ_ERR_NOMEM,
                      "out of memory for activations of batch %d (%.1f MB); hint: use a "
                      "smaller --batch",
                      n, (double)total * 4 / 1e6);
    }
    free(m->act);
    free(m->probs);
    m->act = act;
    m->probs = probs;
    m->act_floats = total;
    m->batch_cap = n;
    m->batch = n;
    m->have_forward = m->have_backward = 0;
    float *p = m->act;
    for (int i = 0; i < m->n_nodes; i++) {
        mq_node *nd = &m->nodes[i];
        size_t sz = round16((size_t)n * nd->c * nd->h * nd->w);
        if (nd->alias_y) nd->y = m->nodes[nd->in[0]].y;
        else {
            nd->y = p;
            p += sz;
        }
        if (i == 0) nd->dy = NULL; /* no gradient w.r.t. the data */
        else if (nd->alias_dy) nd->dy = m->nodes[nd->in[0]].dy;
        else {
            nd->dy = p;
            p += sz;
        }
        size_t sv = round16(node_save_floats(m, nd, n));
        nd->save = sv ? p : NULL;
        p += sv;
    }
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- forward / backward */
/* ---------------------------------------------------------------- frozen activation patterns */
static int pattern_op(mixq_op op) {
    return op == MIXQ_OP_RELU || op == MIXQ_OP_RELU6 || op == MIXQ_OP_MAXPOOL || op == MIXQ_OP_HSIGMOID ||
           op == MIXQ_OP_HSWISH;
}

static size_t pattern_node_bytes(const mq_node *n, int N) {
    const size_t e = (size_t)N * (size_t)n->c * (size_t)n->h * (size_t)n->w;
    return !pattern_op(n->op) ? 0 : n->op == MIXQ_OP_MAXPOOL ? e * sizeof(int32_t) : e;
}

size_t mq_model_pattern_bytes(const mixq_model *m, int N) {
    size_t b = 0;
    for (int i = 0; i < m->n_nodes; i++) b += pattern_node_bytes(&m->nodes[i], N);
    return b;
}

/* Node n's part of the pattern. */
static const uint8_t *pattern_at(const mixq_model *m, const mq_node *n, int N) {
    const uint8_t *p = m->act_pattern;
    for (const mq_node *k = m->nodes; k < n; k++) p += pattern_node_bytes(k, N);
    return p;
}

mixq_status mq_model_pattern_save(const mixq_model *m, uint8_t *buf) {
    if (!m->have_forward) return mq_err(MIXQ_ERR_STATE, "activation pattern: no forward pass to record");
    const int N = m->batch;
    for (int i = 0; i < m->n_nodes; i++) {
        const mq_node *n = &m->nodes[i];
        const size_t e = (size_t)N * (size_t)n->c * (size_t)n->h * (size_t)n->w;
        if (n->op == MIXQ_OP_RELU) /* y > 0 <=> x > 0 (the output survives in-place aliasing) */
            for (size_t j = 0; j < e; j++) buf[j] = n->y[j] > 0.0f;
        else if (n->op == MIXQ_OP_RELU6)
            for (size_t j = 0; j < e; j++) buf[j] = n->y[j] >= 6.0f ? 2 : n->y[j] > 0.0f;
        else if (n->op == MIXQ_OP_MAXPOOL)
            memcpy(buf, n->save, e * sizeof(int32_t));
        else if (n->op == MIXQ_OP_HSIGMOID) /* 0 at 0, 1 linear, 2 at 1 */
            for (size_t j = 0; j < e; j++) buf[j] = n->y[j] >= 1.0f ? 2 : n->y[j] > 0.0f;
        else if (n->op == MIXQ_OP_HSWISH) { /* from the input: 0 below -3, 1 quadratic, 2 above 3 */
            const float *x = m->nodes[n->in[0]].y;
            for (size_t j = 0; j < e; j++) buf[j] = x[j] > 3.0f ? 2 : x[j] >= -3.0f;
        }
        buf += pattern_node_bytes(n, N);
    }
    return MIXQ_OK;
}

/* ReLU / ReLU6 / hard sigmoid / hard swish / max pool with the frozen pattern. */
static void pattern_forward(const mixq_model *m, mq_node *n, int N, const float *x) {
    const uint8_t *p = pattern_at(m, n, N);
    const int64_t e = (int64_t)N * n->c * n->h * n->w;
    if (n->op == MIXQ_OP_RELU)
        for (int64_t i = 0; i < e; i++) n->y[i] = p[i] ? x[i] : 0.0f;
    else if (n->op == MIXQ_OP_RELU6)
        for (int64_t i = 0; i < e; i++) n->y[i] = p[i] == 1 ? x[i] : p[i] ? 6.0f : 0.0f;
    else if (n->op == MIXQ_OP_HSIGMOID)
        for (int64_t i = 0; i < e; i++) n->y[i] = p[i] == 1 ? n->alpha * x[i] + n->beta : p[i] ? 1.0f : 0.0f;
    else if (n->op == MIXQ_OP_HSWISH)
        for (int64_t i = 0; i < e; i++) n->y[i] = p[i] == 1 ? x[i] * (x[i] + 3.0f) / 6.0f : p[i] ? x[i] : 0.0f;
    else { /* max pool: the recorded argmax (the backward reads it from save) */
        const mq_node *a = &m->nodes[n->in[0]];
        const int64_t PQ = (int64_t)n->h * n->w, HW = (int64_t)a->h * a->w;
        int32_t *am = (int32_t *)n->save;
        memcpy(am, p, (size_t)e * sizeof(int32_t));
        for (int64_t i = 0; i < e; i++) n->y[i] = am[i] >= 0 ? x[i / PQ * HW + am[i]] : -INFINITY;
    }
}

/* The backward of a pointwise pattern op (x: its input, read by hard swish). */
static void pattern_backward(const mixq_model *m, const mq_node *n, int N, const float *x, const float *dy,
                             float *dx, int acc) {
    const uint8_t *p = pattern_at(m, n, N);
    const int64_t e = (int64_t)N * n->c * n->h * n->w;
    for (int64_t i = 0; i < e; i++) {
        float g = p[i] == 1 ? dy[i] : 0.0f;
        if (n->op == MIXQ_OP_HSIGMOID) g *= n->alpha;
        else if (n->op == MIXQ_OP_HSWISH) g = p[i] == 1 ? dy[i] * (x[i] / 3.0f + 0.5f) : p[i] ? dy[i] : 0.0f;
        dx[i] = acc ? dx[i] + g : g;
    }
}

static mixq_status node_forward(mixq_model *m, mq_node *n, int N, int training) {
    const mq_node *a = n->n_in ? &m->nodes[n->in[0]] : NULL;
    int64_t numel = (int64_t)N * n->c * n->h * n->w;
    const float *x = a ? a->y : NULL, *w = mq_tensor_ptr(m, n->t_w), *bias = mq_tensor_ptr(m, n->t_b);
    if (m->qh && (n->op == MIXQ_OP_CONV || n->op == MIXQ_OP_LINEAR)) {
        mixq_status st = m->qh->forward(m, (int)(n - m->nodes), N, &x, &w, &bias);
        if (st) return st;
    }
    if (m->act_pattern && pattern_op(n->op)) {
        pattern_forward(m, n, N, x);
        return MIXQ_OK;
    }
    switch (n->op) {
    case MIXQ_OP_INPUT:
        return MIXQ_OK;
    case MIXQ_OP_CONV: {
        mq_conv_shape s = mq_conv_shape_of(N, a->c, a->h, a->w, n->c, &n->geo, n->groups);
        mixq_status st = mq_conv_shape_init(&s);
        if (st) return st;
        return mq_conv2d_forward(&s, x, w, bias, n->y, &m->ws);
    }
    case MIXQ_OP_LINEAR:
        return mq_linear_forward(N, a->c * a->h * a->w, n->c, x, w, bias, n->y);
    case MIXQ_OP_BN:
        return mq_bn_forward(N, n->c, n->h * n->w, a->y, mq_tensor_ptr(m, n->t_w),
                             mq_tensor_ptr(m, n->t_b), mq_tensor_ptr(m, n->t_rm),
                             mq_tensor_ptr(m, n->t_rv), n->bn_eps, n->bn_momentum, training,
                             n->save, n->save + n->c, n->y);
    case MIXQ_OP_RELU:
        mq_relu_forward(numel, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_RELU6:
        mq_relu6_forward(numel, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_MAXPOOL:
        mq_maxpool_forward(N, a->c, a->h, a->w, &n->geo, n->h, n->w, a->y, n->y, (int32_t *)n->save);
        return MIXQ_OK;
    case MIXQ_OP_AVGPOOL:
        mq_avgpool_forward(N, a->c, a->h, a->w, &n->geo, n->h, n->w, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_GAP:
        mq_gap_forward(N, a->c, a->h * a->w, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_ADD:
        mq_add_forward(numel, a->y, m->nodes[n->in[1]].y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_FLATTEN:
        if (!n->alias_y) memcpy(n->y, a->y, sizeof(float) * (size_t)numel);
        return MIXQ_OK;
    case MIXQ_OP_CONCAT:
        mq_concat_forward(N, a->c, m->nodes[n->in[1]].c, n->h * n->w, a->y, m->nodes[n->in[1]].y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_MUL: {
        const mq_node *b = &m->nodes[n->in[1]];
        mq_mul_forward((int64_t)N * n->c, n->h * n->w, b->h * b->w, a->y, b->y, n->y);
        return MIXQ_OK;
    }
    case MIXQ_OP_SIGMOID:
        mq_sigmoid_forward(numel, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_HSIGMOID:
        mq_hsigmoid_forward(numel, n->alpha, n->beta, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_HSWISH:
        mq_hswish_forward(numel, a->y, n->y);
        return MIXQ_OK;
    case MIXQ_OP_COUNT:
        break;
    }
    return mq_err(MIXQ_ERR_STATE, "node '%s' has unknown op %d", n->name, (int)n->op);
}

/* Optional per-node profile (MIXQ_PROFILE=1): accumulated forward/backward seconds per node,
 * printed by mq_model_profile_print. */
static double *prof_f, *prof_b;
static int prof_n = -1;
static int profiling(const mixq_model *m) {
    if (prof_n == -1) {
        const char *e = getenv("MIXQ_PROFILE");
        prof_n = (e && *e == '1') ? 0 : -2;
    }
    if (prof_n == -2) return 0;
    if (prof_n < m->n_nodes) {
        double *f = realloc(prof_f, sizeof(double) * (size_t)m->n_nodes);
        if (f) prof_f = f;
        double *b = realloc(prof_b, sizeof(double) * (size_t)m->n_nodes);
        if (b) prof_b = b;
        if (!f || !b) return 0;
        for (int i = prof_n; i < m->n_nodes; i++) prof_f[i] = prof_b[i] = 0;
        prof_n = m->n_nodes;
    }
    return 1;
}

void mq_model_profile_print(const mixq_model *m, FILE *f) {
    if (prof_n < m->n_nodes || !prof_f) return;
    double tf = 0, tb = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        tf += prof_f[i];
        tb += prof_b[i];
    }
    double per_op[MIXQ_OP_COUNT][2] = {{0}};
    for (int i = 0; i < m->n_nodes; i++) {
        per_op[m->nodes[i].op][0] += prof_f[i];
        per_op[m->nodes[i].op][1] += prof_b[i];
    }
    fprintf(f, "profile: forward %.3f s, backward %.3f s\n", tf, tb);
    for (int o = 0; o < MIXQ_OP_COUNT; o++)
        if (per_op[o][0] + per_op[o][1] > 0)
            fprintf(f, "  %-10s fwd %7.3f s  bwd %7.3f s  (%4.1f%%)\n", mixq_op_name((mixq_op)o),
                    per_op[o][0], per_op[o][1], 100 * (per_op[o][0] + per_op[o][1]) / (tf + tb));
}

mixq_status mixq_model_forward(mixq_model *m, const float *x, int n, int training, float *logits) {
    if (!m || !x) return mq_err(MIXQ_ERR_ARG, "mixq_model_forward: NULL model or input");
    mixq_status st = mq_model_reserve(m, n);
    if (st) return st;
    mq_node *in = &m->nodes[0];
    memcpy(in->y, x, sizeof(float) * (size_t)n * in->c * in->h * in->w);
    const int prof = profiling(m);
    for (int i = 1; i < m->n_nodes; i++) {
        double t0 = prof ? mq_now() : 0;
        st = node_forward(m, &m->nodes[i], n, training);
        if (prof) prof_f[i] += mq_now() - t0;
        if (st) {
            m->have_forward = 0;
            return st;
        }
    }
    const mq_node *last = &m->nodes[m->n_nodes - 1];
    if (logits) memcpy(logits, last->y, sizeof(float) * (size_t)n * m->cfg.classes);
    m->have_forward = 1;
    m->forward_training = training;
    m->have_backward = 0;
    return MIXQ_OK;
}

/* Gradient destination for input slot k of node n: returns dx and whether to accumulate. */
static float *grad_dst(mixq_model *m, const mq_node *n, int k, int *acc) {
    mq_node *src = &m->nodes[n->in[k]];
    if (src->op == MIXQ_OP_INPUT) return NULL; /* no gradient w.r.t. the data */
    *acc = src->dy_set;
    src->dy_set = 1;
    return src->dy;
}

static mixq_status node_backward(mixq_model *m, mq_node *n, int N) {
    const mq_node *a = n->n_in ? &m->nodes[n->in[0]] : NULL;
    int64_t numel = (int64_t)N * n->c * n->h * n->w;
    int acc = 0;
    float *dx;
    switch (n->op) {
    case MIXQ_OP_INPUT:
        return MIXQ_OK;
    case MIXQ_OP_CONV:
    case MIXQ_OP_LINEAR: {
        dx = grad_dst(m, n, 0, &acc);
        const float *x = a->y, *w = mq_tensor_ptr(m, n->t_w);
        float *ldx = dx;
        int lacc = acc;
        const int qi = (int)(n - m->nodes);
        mixq_status st;
        if (m->qh && (st = m->qh->backward_pre(m, qi, N, &x, &w, &ldx, &lacc))) return st;
        if (n->op == MIXQ_OP_CONV) {
            mq_conv_shape s = mq_conv_shape_of(N, a->c, a->h, a->w, n->c, &n->geo, n->groups);
            if ((st = mq_conv_shape_init(&s))) return st;
            st = mq_conv2d_backward(&s, x, w, n->dy, ldx, lacc, mq_grad_ptr(m, n->t_w),
                                    mq_grad_ptr(m, n->t_b), &m->ws);
        } else {
            st = mq_linear_backward(N, a->c * a->h * a->w, n->c, x, w, n->dy, ldx, lacc,
                                    mq_grad_ptr(m, n->t_w), mq_grad_ptr(m, n->t_b));
        }
        if (!st && m->qh) st = m->qh->backward_post(m, qi, N, dx, acc);
        return st;
    }
    case MIXQ_OP_BN:
        dx = grad_dst(m, n, 0, &acc);
        return mq_bn_backward(N, n->c, n->h * n->w, a->y, mq_tensor_ptr(m, n->t_w),
                              m->forward_training ? n->save : mq_tensor_ptr(m, n->t_rm),
                              n->save + n->c, mq_tensor_ptr(m, n->t_rv), n->bn_eps,
                              m->forward_training, n->dy, dx, acc, mq_grad_ptr(m, n->t_w),
                              mq_grad_ptr(m, n->t_b));
    case MIXQ_OP_RELU:
        /* in place (dx == dy) when aliased: the input has no other consumer, acc == 0 */
        if ((dx = grad_dst(m, n, 0, &acc))) {
            if (m->act_pattern) pattern_backward(m, n, N, NULL, n->dy, dx, acc);
            else mq_relu_backward(numel, n->y, n->dy, dx, acc);
        }
        return MIXQ_OK;
    case MIXQ_OP_RELU6:
        if ((dx = grad_dst(m, n, 0, &acc))) {
            if (m->act_pattern) pattern_backward(m, n, N, NULL, n->dy, dx, acc);
            else mq_relu6_backward(numel, n->y, n->dy, dx, acc);
        }
        return MIXQ_OK;
    case MIXQ_OP_MAXPOOL:
        if ((dx = grad_dst(m, n, 0, &acc)))
            mq_maxpool_backward(N, a->c, a->h, a->w, n->h, n->w, (const int32_t *)n->save, n->dy,
                                dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_AVGPOOL:
        if ((dx = grad_dst(m, n, 0, &acc)))
            mq_avgpool_backward(N, a->c, a->h, a->w, &n->geo, n->h, n->w, n->dy, dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_GAP:
        if ((dx = grad_dst(m, n, 0, &acc))) mq_gap_backward(N, a->c, a->h * a->w, n->dy, dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_ADD:
        for (int k = 0; k < 2; k++)
            if ((dx = grad_dst(m, n, k, &acc)) && dx != n->dy) mq_grad_pass(numel, n->dy, dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_FLATTEN:
        if ((dx = grad_dst(m, n, 0, &acc)) && dx != n->dy) mq_grad_pass(numel, n->dy, dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_CONCAT:
    case MIXQ_OP_MUL: {
        const mq_node *b = &m->nodes[n->in[1]];
        int acc_b = 0;
        float *da = grad_dst(m, n, 0, &acc), *db = grad_dst(m, n, 1, &acc_b); /* in this order: a * a */
        if (n->op == MIXQ_OP_CONCAT) mq_concat_backward(N, a->c, b->c, n->h * n->w, n->dy, da, acc, db, acc_b);
        else mq_mul_backward((int64_t)N * n->c, n->h * n->w, b->h * b->w, a->y, b->y, n->dy, da, acc, db, acc_b);
        return MIXQ_OK;
    }
    case MIXQ_OP_SIGMOID:
        if ((dx = grad_dst(m, n, 0, &acc))) mq_sigmoid_backward(numel, n->y, n->dy, dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_HSIGMOID:
    case MIXQ_OP_HSWISH:
        if (!(dx = grad_dst(m, n, 0, &acc))) return MIXQ_OK;
        if (m->act_pattern) pattern_backward(m, n, N, a->y, n->dy, dx, acc);
        else if (n->op == MIXQ_OP_HSIGMOID) mq_hsigmoid_backward(numel, n->alpha, n->y, n->dy, dx, acc);
        else mq_hswish_backward(numel, a->y, n->dy, dx, acc);
        return MIXQ_OK;
    case MIXQ_OP_COUNT:
        break;
    }
    return mq_err(MIXQ_ERR_STATE, "node '%s' has unknown op %d", n->name, (int)n->op);
}

mixq_status mixq_model_backward(mixq_model *m, const int *labels, float smoothing, float *loss) {
    return mq_model_backward_distill(m, labels, smoothing, NULL, 0.0f, 1.0f, loss, NULL);
}

mixq_status mq_model_backward_distill(mixq_model *m, const int *labels, float smoothing,
                                      const float *teacher, float alpha, float T, float *loss,
                                      float *ce) {
    if (!m || !labels) return mq_err(MIXQ_ERR_ARG, "mixq_model_backward: NULL model or labels");
    if (!m->have_forward)
        return mq_err(MIXQ_ERR_STATE, "mixq_model_backward called without a forward pass");
    if (!(smoothing >= 0.0f && smoothing < 1.0f))
        return mq_err(MIXQ_ERR_ARG, "label smoothing %g out of range [0, 1)", (double)smoothing);
    if (teacher && !(alpha >= 0.0f && alpha <= 1.0f))
        return mq_err(MIXQ_ERR_ARG, "distillation weight %g out of range [0, 1]", (double)alpha);
    int N = m->batch, K = m->cfg.classes;
    mq_node *last = &m->nodes[m->n_nodes - 1];
    float l = 0;
    mixq_status st = mq_softmax_ce_forward(N, K, last->y, labels, smoothing, m->probs, &l, NULL);
    if (st) return st;
    if (ce) *ce = l;
    mq_softmax_ce_backward(N, K, m->probs, labels, smoothing, last->dy);
    if (teacher) {
        /* (1 - alpha) CE + alpha T^2 KL, and the same mix of their gradients */
        float lkd = 0;
        for (size_t i = 0; i < (size_t)N * K; i++) last->dy[i] *= 1.0f - alpha;
        if ((st = mq_distill(N, K, last->y, teacher, T, alpha, &lkd, last->dy))) return st;
        l = (1.0f - alpha) * l + alpha * lkd;
    }
    if (loss) *loss = l;
    for (int i = 0; i < m->n_nodes; i++) m->nodes[i].dy_set = 0;
    last->dy_set = 1;
    const int prof = profiling(m);
    for (int i = m->n_nodes - 1; i >= 1; i--) {
        mq_node *n = &m->nodes[i];
        if (!n->dy_set) {
            /* No gradient reaches this node: its parameters get zero gradient. */
            int ts[2] = {n->t_w, n->t_b};
            for (int k = 0; k < 2; k++)
                if (ts[k] >= 0)
                    memset(mq_grad_ptr(m, ts[k]), 0, sizeof(float) * (size_t)m->tensors[ts[k]].numel);
            continue;
        }
        double t0 = prof ? mq_now() : 0;
        st = node_backward(m, n, N);
        if (prof) prof_b[i] += mq_now() - t0;
        if (st) return st;
    }
    m->have_backward = 1;
    return MIXQ_OK;
}

int mq_model_correct(const mixq_model *m, const int *labels, int n) {
    const mq_node *last = &m->nodes[m->n_nodes - 1];
    int K = m->cfg.classes, correct = 0;
    for (int i = 0; i < n; i++) correct += mq_argmax(last->y + (size_t)i * K, K) == labels[i];
    return correct;
}
