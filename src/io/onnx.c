/* ONNX import into a mixq model (protobuf-c over Debian's onnx.proto, generated at build time).
 *
 * Supported (default domain, opsets 9..17): Conv (groups, any kernel_shape, strides and pads,
 * dilations 1), Gemm (transA 0, alpha = beta = 1), MatMul + Add (bias) as a linear layer,
 * BatchNormalization (inference form), Relu, Clip(0, 6) as ReLU6 (bounds as attributes before
 * opset 11, as inputs from 11), Sigmoid, HardSigmoid (alpha, beta), HardSwish (opset 14; at
 * opset 13 PyTorch writes Mul(x, HardSigmoid(x, 1/6, 1/2)), imported as one hard swish),
 * MaxPool / AveragePool (any window, each pad at most half the kernel, ceil_mode 0),
 * GlobalAveragePool, Add of two activations, Mul of two (equal shapes or a C x 1 x 1 factor),
 * Concat along the channels (two inputs or more), Flatten (axis 1), Reshape to (N, -1),
 * Identity, Dropout (inference: identity), Constant (becomes an initializer), and Pad (constant
 * 0, height and width, any side) folded into the Conv or AveragePool that consumes it. Shape
 * arithmetic on constants (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast, Unsqueeze,
 * Squeeze, Gather, Add, Sub, Mul: PyTorch's Pad chain) is folded. Anything else is an error
 * naming the node, its op and what is missing; nothing is skipped silently.
 *
 * Names: a layer takes its PyTorch parameter name when the weight initializer has one
 * ("layer1.0.conv1.weight" -> "layer1.0.conv1"), else the node's name ("/layer1/Conv" ->
 * "layer1.Conv"), so policies can name layers as the user knows them. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#include "data/data.h"
#include "nn/model.h"
#include "quant/qmodel.h"

#define ONNX_OPSET_MIN 9
#define ONNX_OPSET_MAX 17

enum { ONNX_FLOAT = 1, ONNX_INT32 = 6, ONNX_INT64 = 7 };

typedef struct arena {
    void **p;
    size_t n, cap;
} arena;
static void *A(arena *a, size_t bytes);
static void arena_free(arena *a);

/* A named value of the graph: an activation (a mixq node) or a constant tensor. */
typedef struct oval {
    const char *name;
    int node;             /* mixq node index, -1 for a constant */
    int pad[4];           /* a pending zero Pad (top, left, bottom, right) to fold into the consumer */
    const Onnx__TensorProto *t; /* constant */
    float alpha;          /* QDQ: the activation clip this value went through (0: none) */
    const float *dq;      /* QDQ: a dequantized constant's scales */
    int ndq;
} oval;

typedef struct octx {
    const char *path;
    Onnx__ModelProto *mp;
    Onnx__GraphProto *g;
    oval *v;
    int nv, cap;
    mixq_model *m;
    int64_t opset;
    /* constants made by Constant nodes live in their attribute, owned by mp */
    int *absorbed;  /* [n_node] nodes folded into an earlier one (MatMul's bias Add) */
    arena own;      /* dequantized constants made by the importer */
    float *alpha;   /* [max nodes] QDQ activation clip of each layer's input */
    const float **wscale; /* [max nodes] QDQ weight scales of each layer */
    int *nwscale;
    int maxn;
    /* a transform on the graph input folded out of the graph (leading Gather/Sub/Div, as
     * `mixq export --embed-preprocess` writes): the layers see (input - pre_a) / pre_b */
    int pre_folded, pre_bgr;
    float pre_a[MIXQ_PP_MAX_CH], pre_b[MIXQ_PP_MAX_CH];
} octx;

static const char *nname(const Onnx__NodeProto *n) { return n->name && *n->name ? n->name : "(unnamed)"; }

static mixq_status nerr(const octx *c, const Onnx__NodeProto *n, const char *what) {
    return mq_err(MIXQ_ERR_UNSUPPORTED, "%s: node '%s' (%s): %s", c->path, nname(n), n->op_type, what);
}

/* a graph builder failed (its message recorded): out of memory stays MIXQ_ERR_NOMEM */
static mixq_status builder_err(const octx *c, const Onnx__NodeProto *n) {
    mixq_status why = mq_last_status() == MIXQ_ERR_NOMEM ? MIXQ_ERR_NOMEM : MIXQ_ERR_UNSUPPORTED;
    char msg[400];
    snprintf(msg, sizeof msg, "%s", mixq_last_error());
    return mq_err(why, "%s: node '%s' (%s): %s", c->path, nname(n), n->op_type, msg);
}

/* protobuf-c's allocations go through the library's fault injection (tests/test_faults.c) */
static void *pb_alloc(void *ud, size_t n) {
    (void)ud;
    return mq_fault_raw_alloc(n);
}
static void pb_free(void *ud, void *p) {
    (void)ud;
    free(p);
}
static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

static oval *find(octx *c, const char *name) {
    for (int i = c->nv - 1; i >= 0; i--)
        if (!strcmp(c->v[i].name, name)) return &c->v[i];
    return NULL;
}

/* A new named value; pad: its pending zero Pad (NULL: none). */
static mixq_status put(octx *c, const char *name, int node, const Onnx__TensorProto *t, const int *pad) {
    int p4[4] = {0, 0, 0, 0};
    if (pad) memcpy(p4, pad, sizeof p4); /* pad may point into c->v, which the realloc moves */
    if (c->nv == c->cap) {
        int nc = c->cap ? 2 * c->cap : 64;
        oval *nv = mq_realloc(c->v, (size_t)nc, sizeof *nv, "ONNX values");
        if (!nv) return mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", c->path);
        c->v = nv, c->cap = nc;
    }
    c->v[c->nv++] = (oval){name, node, {p4[0], p4[1], p4[2], p4[3]}, t, 0.0f, NULL, 0};
    return MIXQ_OK;
}

static int has_pad(const oval *v) { return v->pad[0] | v->pad[1] | v->pad[2] | v->pad[3]; }

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float dflt) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

static int64_t numel_of(const Onnx__TensorProto *t) {
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (t->dims[i] && n > (INT64_C(1) << 40) / t->dims[i])) return -1;
        n *= t->dims[i];
    }
    return n;
}

/* Float contents of a constant (float_data or little-endian raw_data), checked. */
static mixq_status tensor_floats(const octx *c, const Onnx__TensorProto *t, const float **out, int64_t *n) {
    int64_t ne = numel_of(t);
    const char *nm = t->name ? t->name : "(unnamed)";
    if (ne < 0) return mq_err(MIXQ_ERR_FORMAT, "%s: tensor '%s': dimensions overflow", c->path, nm);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return mq_err(MIXQ_ERR_UNSUPPORTED, "%s: tensor '%s' is stored in an external file; hint: save "
                      "the model with its weights inside", c->path, nm);
    if (t->data_type != ONNX_FLOAT)
        return mq_err(MIXQ_ERR_UNSUPPORTED, "%s: tensor '%s' has data type %d; weights must be float32",
                      c->path, nm, t->data_type);
    if (t->has_raw_data && t->raw_data.len) {
        if ((int64_t)t->raw_data.len != ne * 4)
            return mq_err(MIXQ_ERR_FORMAT, "%s: tensor '%s' has %zu bytes for %lld floats", c->path, nm,
                          t->raw_data.len, (long long)ne);
        *out = (const float *)(const void *)t->raw_data.data; /* x86-64 and ARM64: little-endian */
    } else {
        if ((int64_t)t->n_float_data != ne)
            return mq_err(MIXQ_ERR_FORMAT, "%s: tensor '%s' has %zu values for %lld elements", c->path, nm,
                          t->n_float_data, (long long)ne);
        *out = t->float_data;
    }
    for (int64_t i = 0; i < ne; i++)
        if (!isfinite((*out)[i]))
            return mq_err(MIXQ_ERR_NUMERIC, "%s: tensor '%s' element %lld is %g", c->path, nm, (long long)i,
                          (double)(*out)[i]);
    *n = ne;
    return MIXQ_OK;
}

/* Integer contents (int64 or int32), for shapes, pads and Clip bounds given as ints. */
static int tensor_ints(const Onnx__TensorProto *t, int64_t *out, int max) {
    int64_t ne = numel_of(t);
    if (ne < 0 || ne > max) return -1;
    if (t->data_type == ONNX_INT64) {
        if (t->has_raw_data && t->raw_data.len) {
            if ((int64_t)t->raw_data.len != ne * 8) return -1;
            if (ne) memcpy(out, t->raw_data.data, (size_t)ne * 8);
        } else {
            if ((int64_t)t->n_int64_data != ne) return -1;
            if (ne) memcpy(out, t->int64_data, (size_t)ne * 8);
        }
        return (int)ne;
    }
    if (t->data_type == ONNX_INT32) {
        if (t->has_raw_data && t->raw_data.len) {
            if ((int64_t)t->raw_data.len != ne * 4) return -1;
            for (int64_t i = 0; i < ne; i++) {
                int32_t x;
                memcpy(&x, t->raw_data.data + 4 * i, 4);
                out[i] = x;
            }
        } else {
            if ((int64_t)t->n_int32_data != ne) return -1;
            for (int64_t i = 0; i < ne; i++) out[i] = t->int32_data[i];
        }
        return (int)ne;
    }
    return -1;
}

/* One float scalar constant (Clip bounds). */
static int scalar_f(const octx *c, const Onnx__TensorProto *t, float *v) {
    const float *d;
    int64_t n;
    mixq_status st = tensor_floats(c, t, &d, &n);
    if (st || n != 1) {
        mixq_clear_error();
        return 0;
    }
    *v = d[0];
    return 1;
}

/* The layer name for a node, so policies can use the names the user knows:
 * - a weight initializer with a PyTorch parameter name: that name ("fc.weight" -> "fc");
 * - else the PyTorch module path in the node name, "/layer1/layer1.0/conv1/Conv" ->
 *   "layer1.0.conv1" for layers with parameters, "/layer1/layer1.0/Relu_1" -> "layer1.0.Relu_1"
 *   for the others;
 * made whitespace-free, at most 63 characters and unique. */
static void layer_name(octx *c, const Onnx__NodeProto *n, const char *weight, int params,
                       char out[MIXQ_NAME_MAX]) {
    char base[MIXQ_NAME_MAX] = "";
    size_t wl = weight ? strlen(weight) : 0;
    if (wl > 7 && !strcmp(weight + wl - 7, ".weight") && strncmp(weight, "onnx::", 6)) {
        snprintf(base, sizeof base, "%.*s", (int)(wl - 7), weight);
    } else {
        char path[512], module[MIXQ_NAME_MAX] = "";
        snprintf(path, sizeof path, "%s", n->name && *n->name ? n->name : n->op_type);
        char *comp[64];
        int nc = 0;
        for (char *tok = strtok(path, "/"); tok && nc < 64; tok = strtok(NULL, "/")) comp[nc++] = tok;
        /* fold the path: a component that extends the previous one ("layer1" then "layer1.0",
         * "downsample" then "downsample.0") replaces it; "layer1/layer1.0/conv1" -> "layer1.0.conv1" */
        const char *part[64];
        int np = 0;
        for (int i = 0; i + 1 < nc; i++) {
            size_t pl = np ? strlen(part[np - 1]) : 0;
            if (np && !strncmp(comp[i], part[np - 1], pl) && comp[i][pl] == '.') part[np - 1] = comp[i];
            else part[np++] = comp[i];
        }
        for (int i = 0; i < np; i++) {
            size_t ml = strlen(module);
            snprintf(module + ml, sizeof module - ml, "%s%s", i ? "." : "", part[i]);
        }
        const char *last = nc ? comp[nc - 1] : n->op_type;
        if (!*module) snprintf(base, sizeof base, "%s", last);
        else if (params) snprintf(base, sizeof base, "%s", module);
        else snprintf(base, sizeof base, "%.*s.%s", (int)(sizeof base / 2), module, last);
    }
    for (char *p = base; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') *p = '_';
    if (!*base) snprintf(base, sizeof base, "node");
    snprintf(out, MIXQ_NAME_MAX, "%s", base);
    for (int k = 2; mq_model_find_node(c->m, out) >= 0; k++) {
        char suf[16];
        snprintf(suf, sizeof suf, "_%d", k);
        snprintf(out, MIXQ_NAME_MAX, "%.*s%s", (int)(MIXQ_NAME_MAX - 1 - strlen(suf)), base, suf);
    }
}

/* The index of the one node that reads value (-1: none or several reads). */
static int sole_consumer(const octx *c, const char *value) {
    int who = -1;
    for (size_t j = 0; j < c->g->n_node; j++) {
        const Onnx__NodeProto *n = c->g->node[j];
        for (size_t i = 0; i < n->n_input; i++)
            if (n->input[i] && !strcmp(n->input[i], value)) {
                if (who >= 0) return -1;
                who = (int)j;
            }
    }
    for (size_t i = 0; i < c->g->n_output; i++)
        if (!strcmp(c->g->output[i]->name, value)) return -1;
    return who;
}

static int consumers_all(const octx *c, const char *value, const char *op) {
    int any = 0;
    for (size_t j = 0; j < c->g->n_node; j++) {
        const Onnx__NodeProto *n = c->g->node[j];
        for (size_t i = 0; i < n->n_input; i++)
            if (n->input[i] && !strcmp(n->input[i], value)) {
                if (strcmp(n->op_type, op)) return 0;
                any = 1;
            }
    }
    return any;
}

/* Integer tensor values as floats (DequantizeLinear inputs: int8, uint8, int32). */
static int int_values(const Onnx__TensorProto *t, float *out, int64_t n) {
    if (!t->has_raw_data || (int64_t)t->raw_data.len < n) {
        if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 || t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
            t->data_type == ONNX_INT32) {
            if ((int64_t)t->n_int32_data != n) return 0;
            for (int64_t i = 0; i < n; i++) out[i] = (float)t->int32_data[i];
            return 1;
        }
        return 0;
    }
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 && (int64_t)t->raw_data.len == n) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)(int8_t)t->raw_data.data[i];
        return 1;
    }
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 && (int64_t)t->raw_data.len == n) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)t->raw_data.data[i];
        return 1;
    }
    if (t->data_type == ONNX_INT32 && (int64_t)t->raw_data.len == 4 * n) { /* little-endian */
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = t->raw_data.data + 4 * i;
            out[i] = (float)(int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        }
        return 1;
    }
    return 0;
}

/* Input i of node n as an activation (node index) or constant. */
static mixq_status input_of(octx *c, const Onnx__NodeProto *n, size_t i, oval **out) {
    if (i >= n->n_input || !n->input[i] || !*n->input[i])
        return mq_err(MIXQ_ERR_FORMAT, "%s: node '%s' (%s): input %zu is missing", c->path, nname(n), n->op_type, i);
    oval *v = find(c, n->input[i]);
    if (!v)
        return mq_err(MIXQ_ERR_FORMAT, "%s: node '%s' (%s): input '%s' is produced by no earlier node, "
                      "initializer or graph input (dangling input or a cycle)", c->path, nname(n), n->op_type,
                      n->input[i]);
    *out = v;
    return MIXQ_OK;
}

static mixq_status want_act(octx *c, const Onnx__NodeProto *n, size_t i, oval **out) {
    *out = NULL;
    mixq_status st = input_of(c, n, i, out);
    if (st) return st;
    if ((*out)->node < 0) return nerr(c, n, "a constant where an activation was expected");
    if (has_pad(*out) && strcmp(n->op_type, "Conv") && strcmp(n->op_type, "AveragePool") && strcmp(n->op_type, "Pad"))
        return nerr(c, n, "follows a zero Pad that only a Conv or an AveragePool can absorb");
    return MIXQ_OK;
}

/* The window of a Conv (wkh x wkw: its weights' kernel) or pool (wkh < 0): kernel_shape, strides,
 * pads (ONNX order: top, left, bottom, right) plus the pending zero Pad of its input x;
 * dilations 1 and auto_pad NOTSET. */
static mixq_status window_of(octx *c, const Onnx__NodeProto *n, const oval *x, int64_t wkh, int64_t wkw,
                             mq_geom *g) {
    int64_t k[2] = {wkh, wkw}, s[2] = {1, 1}, p[4] = {0, 0, 0, 0};
    static const char *const names[3] = {"kernel_shape", "strides", "pads"};
    int64_t *dst[3] = {k, s, p};
    for (int i = 0; i < 3; i++) {
        const Onnx__AttributeProto *a = attr(n, names[i]);
        if (!a) continue;
        if (a->n_ints != (i == 2 ? 4u : 2u)) {
            char what[120];
            snprintf(what, sizeof what, "%s must have %d entries (a 2-D window)", names[i], i == 2 ? 4 : 2);
            return nerr(c, n, what);
        }
        memcpy(dst[i], a->ints, sizeof(int64_t) * a->n_ints);
    }
    if (k[0] < 0) return nerr(c, n, "kernel_shape is missing");
    if (wkh >= 0 && (k[0] != wkh || k[1] != wkw)) {
        char what[160];
        snprintf(what, sizeof what, "kernel_shape %lldx%lld does not match the %lldx%lld weights", (long long)k[0],
                 (long long)k[1], (long long)wkh, (long long)wkw);
        return nerr(c, n, what);
    }
    const Onnx__AttributeProto *d = attr(n, "dilations");
    for (size_t i = 0; d && i < d->n_ints; i++)
        if (d->ints[i] != 1) return nerr(c, n, "dilations other than 1 are not supported");
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    if (ap && ap->has_s && !(ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6)))
        return nerr(c, n, "auto_pad is not supported; export with explicit pads");
    for (int i = 0; i < 2; i++)
        if (k[i] < 1 || k[i] > 65536 || s[i] < 1 || s[i] > 65536)
            return nerr(c, n, "kernel_shape and strides must be in 1..65536");
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > 65536) return nerr(c, n, "pads must be in 0..65536");
    *g = (mq_geom){(int)k[0], (int)k[1], (int)s[0], (int)s[1], (int)p[0] + x->pad[0], (int)p[1] + x->pad[1],
                   (int)p[2] + x->pad[2], (int)p[3] + x->pad[3]};
    return MIXQ_OK;
}

static mixq_status want_const(octx *c, const Onnx__NodeProto *n, size_t i, const Onnx__TensorProto **out) {
    oval *v = NULL;
    mixq_status st = input_of(c, n, i, &v);
    if (st) return st;
    if (v->node >= 0) {
        char what[200];
        snprintf(what, sizeof what, "input '%s' must be an initializer (weights computed at run time are "
                 "not supported)", n->input[i]);
        return nerr(c, n, what);
    }
    *out = v->t;
    return MIXQ_OK;
}

/* Copy a constant into a model tensor, checking the shape. */
static mixq_status fill(octx *c, const Onnx__NodeProto *n, const Onnx__TensorProto *t, int tensor,
                        int transpose_2d) {
    const float *d;
    int64_t ne;
    mixq_status st = tensor_floats(c, t, &d, &ne);
    if (st) return st;
    mq_tensor *mt = &c->m->tensors[tensor];
    if (ne != mt->numel) {
        char what[256];
        snprintf(what, sizeof what, "initializer '%s' has %lld values, the layer needs %lld", t->name,
                 (long long)ne, (long long)mt->numel);
        return nerr(c, n, what);
    }
    float *dst = mq_tensor_ptr(c->m, tensor);
    if (transpose_2d) { /* MatMul / Gemm transB=0 weights are [in][out]; mixq wants [out][in] */
        int64_t out = mt->shape[0], in = mt->shape[1];
        for (int64_t o = 0; o < out; o++)
            for (int64_t i = 0; i < in; i++) dst[o * in + i] = d[i * out + o];
    } else {
        memcpy(dst, d, sizeof(float) * (size_t)ne);
    }
    return MIXQ_OK;
}

static int consumer_count(const octx *c, const char *value) {
    int k = 0;
    for (size_t j = 0; j < c->g->n_node; j++)
        for (size_t i = 0; i < c->g->node[j]->n_input; i++)
            k += c->g->node[j]->input[i] && !strcmp(c->g->node[j]->input[i], value);
    return k;
}

/* Sub / Div by a per-channel constant, or a Gather reversing the channels, applied to the graph
 * input (x, node 0) and to nothing else: folded into the model's input transform (c->pre_*), the
 * output stays the input. */
static mixq_status fold_input_transform(octx *c, const Onnx__NodeProto *n, oval *x) {
    const int C = c->m->nodes[0].c;
    const char *op = n->op_type;
    if (C > MIXQ_PP_MAX_CH) return nerr(c, n, "an input transform on more than 4 channels is not supported");
    if (consumer_count(c, x->name) != 1)
        return nerr(c, n, "the graph input is used both raw and transformed; only a transform of the input "
                    "as a whole can be folded into the model's preprocessing");
    if (!c->pre_folded)
        for (int k = 0; k < C; k++) c->pre_a[k] = 0, c->pre_b[k] = 1;
    const Onnx__TensorProto *t;
    mixq_status st = want_const(c, n, 1, &t);
    if (st) return st;
    if (!strcmp(op, "Gather")) {
        int64_t idx[MIXQ_PP_MAX_CH];
        int ni = tensor_ints(t, idx, MIXQ_PP_MAX_CH);
        int rev = C == 3 && ni == 3 && attr_i(n, "axis", 0) == 1 && !c->pre_folded && !c->pre_bgr;
        for (int k = 0; rev && k < 3; k++) rev = idx[k] == 2 - k;
        if (!rev) return nerr(c, n, "only a Gather reversing 3 channels (RGB <-> BGR), first on the input, is supported");
        c->pre_bgr = 1;
    } else {
        const float *v;
        int64_t nvals;
        if ((st = tensor_floats(c, t, &v, &nvals))) return st;
        int64_t ne = numel_of(t);
        /* a scalar, or per channel under ONNX broadcasting: [C,1,1] or [1,C,1,1] */
        int ok = ne == 1 || (ne == C && t->n_dims >= 3 && t->n_dims <= 4);
        for (size_t d = 0; ok && ne > 1 && d < t->n_dims; d++)
            ok = t->dims[d] == (d == t->n_dims - 3 ? C : 1);
        for (int64_t k = 0; ok && k < ne; k++) ok = isfinite(v[k]) && (op[0] == 'S' || v[k] != 0);
        if (!ok) return nerr(c, n, "only a finite scalar or per-channel constant ([C,1,1] or [1,C,1,1]; nonzero "
                             "to divide by) can be folded into the input transform");
        for (int k = 0; k < C; k++) {
            float kv = v[ne == 1 ? 0 : k];
            if (op[0] == 'S') c->pre_a[k] += kv * c->pre_b[k]; /* (g - a)/b - k = (g - a - k b)/b */
            else c->pre_b[k] *= kv;                            /* ((g - a)/b)/k */
        }
    }
    c->pre_folded = 1;
    return put(c, n->output[0], 0, NULL, 0);
}

/* The value of metadata_props entry `key` (the last one when repeated), NULL when absent. */
static const char *meta_value(const octx *c, const char *key) {
    const char *v = NULL;
    for (size_t i = 0; i < c->mp->n_metadata_props; i++)
        if (c->mp->metadata_props[i]->key && !strcmp(c->mp->metadata_props[i]->key, key) &&
            c->mp->metadata_props[i]->value)
            v = c->mp->metadata_props[i]->value;
    return v;
}

/* The training images a mixq export's model was trained without: metadata_props "mixq.holdout"
 * (absent: none recorded, as for any other producer's file). */
static mixq_status import_holdout(octx *c) {
    const char *meta = meta_value(c, "mixq.holdout");
    if (!meta) return MIXQ_OK;
    char origin[4200];
    snprintf(origin, sizeof origin, "%s (mixq.holdout metadata)", c->path);
    mixq_holdout h;
    mixq_status st = mq_holdout_parse_json(meta, strlen(meta), origin, &h);
    return st ? st : mixq_model_set_holdout(c->m, &h);
}

/* The imported model's input transform: metadata_props "mixq.preprocess" (a mixq export) says how
 * raw pixels become the graph input; a transform folded out of the graph (fold_input_transform)
 * applies after it. With neither, the model keeps mixq's default, not recorded (the CLI says so);
 * with a folded transform and no metadata, the graph input is taken to be pixels / 255
 * (torchvision's ToTensor()), also not recorded. */
static mixq_status import_preprocess(octx *c) {
    const char *meta = meta_value(c, "mixq.preprocess");
    mixq_preprocess pp;
    mixq_status st = MIXQ_OK;
    const int C = c->m->cfg.in_c;
    if (meta) {
        char origin[4200];
        snprintf(origin, sizeof origin, "%s (mixq.preprocess metadata)", c->path);
        if ((st = mq_pp_parse_json(meta, strlen(meta), origin, &pp))) return st;
        if (!pp.from_data && pp.channels != C)
            return mq_err(MIXQ_ERR_FORMAT, "%s: its mixq.preprocess metadata is for %d channels, the graph "
                          "input has %d", c->path, pp.channels, C);
    } else if (c->pre_folded) {
        if ((st = mixq_preprocess_preset("unit", C, &pp))) return st;
    } else {
        return MIXQ_OK;
    }
    if (c->pre_folded) {
        if (pp.from_data)
            return mq_err(MIXQ_ERR_FORMAT, "%s: the graph transforms its input, but the mixq.preprocess "
                          "metadata names the dataset's statistics, which are no fixed numbers", c->path);
        /* g = (p s - m) / sd, x = (g - a) / b  =>  x = (p s - (m + a sd)) / (sd b); a Gather
         * reversing g's channels first makes channel k read g's channel C - 1 - k */
        if (c->pre_bgr) {
            mixq_preprocess r = pp;
            for (int k = 0; k < C; k++) pp.mean[k] = r.mean[C - 1 - k], pp.std[k] = r.std[C - 1 - k];
            pp.bgr = !pp.bgr;
        }
        for (int k = 0; k < C; k++) {
            pp.mean[k] += c->pre_a[k] * pp.std[k];
            pp.std[k] *= c->pre_b[k];
            if (!isfinite(pp.mean[k]) || !(pp.std[k] > 0) || !isfinite(pp.std[k]))
                return mq_err(MIXQ_ERR_FORMAT, "%s: the input transform folded from the graph gives channel %d "
                              "mean %g and std %g; the std must be positive", c->path, k, (double)pp.mean[k],
                              (double)pp.std[k]);
        }
        if (strcmp(pp.name, "raw")) snprintf(pp.name, sizeof pp.name, "custom");
        else snprintf(pp.name, sizeof pp.name, "embedded");
    }
    c->m->pp = pp;
    c->m->pp_recorded = meta != NULL;
    return MIXQ_OK;
}

/* Pending weight copies: the model's tensors exist only after finalize. */
typedef struct wcopy {
    const Onnx__NodeProto *n;
    const Onnx__TensorProto *t;
    int node, which, transpose; /* which: 0 weight, 1 bias, 2 running mean, 3 running var */
} wcopy;

static int tensor_of(const mixq_model *m, int node, int which) {
    const mq_node *d = &m->nodes[node];
    return which == 0 ? d->t_w : which == 1 ? d->t_b : which == 2 ? d->t_rm : d->t_rv;
}

/* ---------------------------------------------------------------- constant folding
 * Shape arithmetic on constants, folded at import: PyTorch computes a Pad's pads with
 * Constant / ConstantOfShape / Concat / Reshape / Slice / Transpose / Cast nodes that its own
 * constant folding leaves in the graph (tests/fixtures/onnx/bad_pad.onnx). A node of the ops
 * below whose inputs are all constants becomes a constant (int64 or float, at most CF_MAX
 * values, rank <= CF_RANK); anything else about it is an error naming the node. */
#define CF_MAX 4096
#define CF_RANK 8

typedef struct cval {
    int fl;                 /* float values in f, else int64 values in i */
    int nd;
    int64_t d[CF_RANK];
    int64_t n;
    int64_t *i;
    float *f;
} cval;

static int cf_op(const char *op) {
    static const char *const ops[] = {"ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast",
                                      "Unsqueeze", "Squeeze", "Gather", "Add", "Sub", "Mul"};
    for (size_t k = 0; k < MQ_COUNTOF(ops); k++)
        if (!strcmp(op, ops[k])) return 1;
    return 0;
}

/* Every input of n that is given is a constant. */
static int all_const(octx *c, const Onnx__NodeProto *n) {
    for (size_t i = 0; i < n->n_input; i++) {
        if (!n->input[i] || !*n->input[i]) continue;
        const oval *v = find(c, n->input[i]);
        if (!v || v->node >= 0 || !v->t) return 0;
    }
    return n->n_input > 0;
}

/* A fresh value of nd dimensions d (its storage from the import arena). */
static mixq_status cv_new(octx *c, const Onnx__NodeProto *n, cval *o, int fl, int nd, const int64_t *d) {
    memset(o, 0, sizeof *o);
    o->fl = fl, o->nd = nd, o->n = 1;
    if (nd > CF_RANK) return nerr(c, n, "folding a constant of rank above 8 is not supported");
    for (int k = 0; k < nd; k++) {
        if (d[k] < 0 || (d[k] && o->n > CF_MAX / d[k])) return nerr(c, n, "a folded constant would hold more than 4096 values");
        o->d[k] = d[k];
        o->n *= d[k];
    }
    void *p = A(&c->own, (size_t)(o->n ? o->n : 1) * (fl ? sizeof(float) : sizeof(int64_t)));
    if (!p) return mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", c->path);
    if (fl) o->f = p;
    else o->i = p;
    return MIXQ_OK;
}

static mixq_status cv_read(octx *c, const Onnx__NodeProto *n, const Onnx__TensorProto *t, cval *o) {
    int64_t ne = numel_of(t);
    if (ne < 0 || ne > CF_MAX || t->n_dims > CF_RANK) return nerr(c, n, "a constant input holds more than 4096 values");
    mixq_status st = cv_new(c, n, o, t->data_type == ONNX_FLOAT, (int)t->n_dims, t->dims);
    if (st) return st;
    if (o->fl) {
        const float *f;
        int64_t nf;
        if ((st = tensor_floats(c, t, &f, &nf))) return st;
        if (nf) memcpy(o->f, f, sizeof(float) * (size_t)nf);
        return MIXQ_OK;
    }
    if (tensor_ints(t, o->i, CF_MAX) != (int)ne) {
        char what[120];
        snprintf(what, sizeof what, "constant '%s' of data type %d cannot be folded (float, int32 and int64 can)",
                 t->name ? t->name : "", t->data_type);
        return nerr(c, n, what);
    }
    return MIXQ_OK;
}

/* Value k as a double / as an int64 whatever the type. */
static double cv_get(const cval *v, int64_t k) { return v->fl ? (double)v->f[k] : (double)v->i[k]; }
static void cv_set(cval *o, int64_t k, double x) {
    if (o->fl) o->f[k] = (float)x;
    else o->i[k] = (int64_t)x;
}
static void cv_copy(cval *o, int64_t k, const cval *v, int64_t j) {
    if (o->fl) o->f[k] = v->fl ? v->f[j] : (float)v->i[j];
    else o->i[k] = v->fl ? (int64_t)v->f[j] : v->i[j];
}

/* Row-major strides of v. */
static void cv_strides(const cval *v, int64_t *st) {
    int64_t s = 1;
    for (int k = v->nd - 1; k >= 0; k--) st[k] = s, s *= v->d[k];
}

/* A 1-D int list (axes, perm, starts...) from input i of n or, when absent, attribute a. */
static int cv_list(const Onnx__NodeProto *n, const cval *in, int nin, int i, const char *a, int64_t *out, int max) {
    if (i < nin && in[i].nd >= 0 && in[i].n > 0 && !in[i].fl) {
        if (in[i].n > max) return -1;
        memcpy(out, in[i].i, sizeof(int64_t) * (size_t)in[i].n);
        return (int)in[i].n;
    }
    const Onnx__AttributeProto *at = attr(n, a);
    if (!at || at->n_ints > (size_t)max) return at ? -1 : 0;
    memcpy(out, at->ints, sizeof(int64_t) * at->n_ints);
    return (int)at->n_ints;
}

static mixq_status fold(octx *c, const Onnx__NodeProto *n) {
    const char *op = n->op_type;
    cval in[8], o;
    int nin = (int)n->n_input;
    if (nin > 8) return nerr(c, n, "folding more than 8 inputs is not supported");
    mixq_status st;
    for (int k = 0; k < nin; k++) {
        in[k].nd = -1; /* absent */
        if (!n->input[k] || !*n->input[k]) continue;
        oval *v;
        if ((st = input_of(c, n, (size_t)k, &v)) || (st = cv_read(c, n, v->t, &in[k]))) return st;
    }
    int64_t st_in[CF_RANK], st_out[CF_RANK];
    if (!strcmp(op, "ConstantOfShape")) {
        if (in[0].fl || in[0].nd != 1 || in[0].n > CF_RANK) return nerr(c, n, "the shape must be a 1-D int64 tensor");
        const Onnx__AttributeProto *a = attr(n, "value");
        cval v = {.fl = 1};
        float zero = 0;
        v.f = &zero, v.n = 1;
        if (a && a->t && (st = cv_read(c, n, a->t, &v))) return st;
        if (v.n != 1) return nerr(c, n, "value must hold one element");
        if ((st = cv_new(c, n, &o, v.fl, (int)in[0].n, in[0].i))) return st;
        for (int64_t k = 0; k < o.n; k++) cv_copy(&o, k, &v, 0);
    } else if (!strcmp(op, "Concat")) {
        int64_t ax = attr_i(n, "axis", 0), d[CF_RANK];
        if (nin < 1 || in[0].nd < 1) return nerr(c, n, "nothing to concatenate");
        const int r = in[0].nd;
        if (ax < 0) ax += r;
        if (ax < 0 || ax >= r) return nerr(c, n, "axis out of range");
        memcpy(d, in[0].d, sizeof d);
        d[ax] = 0;
        for (int k = 0; k < nin; k++) {
            if (in[k].nd != r || in[k].fl != in[0].fl) return nerr(c, n, "inputs of different ranks or types");
            for (int j = 0; j < r; j++)
                if (j != ax && in[k].d[j] != in[0].d[j]) return nerr(c, n, "inputs of different shapes");
            d[ax] += in[k].d[ax];
        }
        if ((st = cv_new(c, n, &o, in[0].fl, r, d))) return st;
        int64_t outer = 1, q = 0;
        for (int j = 0; j < ax; j++) outer *= d[j];
        for (int64_t t = 0; t < outer; t++)
            for (int k = 0; k < nin; k++) {
                int64_t inner = in[k].n / (outer ? outer : 1);
                for (int64_t j = 0; j < inner; j++) cv_copy(&o, q++, &in[k], t * inner + j);
            }
    } else if (!strcmp(op, "Reshape")) {
        if (nin < 2 || in[1].fl || in[1].nd != 1 || in[1].n > CF_RANK) return nerr(c, n, "the shape must be a 1-D int64 tensor");
        int64_t d[CF_RANK], known = 1;
        int neg = -1;
        for (int k = 0; k < (int)in[1].n; k++) {
            d[k] = in[1].i[k];
            if (d[k] == 0 && !attr_i(n, "allowzero", 0)) {
                if (k >= in[0].nd) return nerr(c, n, "a 0 in the shape names no input dimension");
                d[k] = in[0].d[k];
            }
            if (d[k] == -1) {
                if (neg >= 0) return nerr(c, n, "more than one -1 in the shape");
                neg = k;
            } else if (d[k] < 0) return nerr(c, n, "a negative dimension in the shape");
            else known *= d[k];
        }
        if (neg >= 0) d[neg] = known ? in[0].n / known : 0;
        if ((st = cv_new(c, n, &o, in[0].fl, (int)in[1].n, d))) return st;
        if (o.n != in[0].n) return nerr(c, n, "the shape does not hold the input's values");
        for (int64_t k = 0; k < o.n; k++) cv_copy(&o, k, &in[0], k);
    } else if (!strcmp(op, "Slice")) {
        const cval *x = &in[0];
        int64_t starts[CF_RANK], ends[CF_RANK], axes[CF_RANK], steps[CF_RANK], first[CF_RANK], step[CF_RANK], d[CF_RANK];
        const int ns = cv_list(n, in, nin, c->opset >= 10 ? 1 : 99, "starts", starts, CF_RANK);
        const int ne = cv_list(n, in, nin, c->opset >= 10 ? 2 : 99, "ends", ends, CF_RANK);
        int na = cv_list(n, in, nin, c->opset >= 10 ? 3 : 99, "axes", axes, CF_RANK);
        int nt = c->opset >= 10 ? cv_list(n, in, nin, 4, "", steps, CF_RANK) : 0;
        if (ns < 1 || ne != ns || (na && na != ns) || (nt && nt != ns) || na < 0 || nt < 0)
            return nerr(c, n, "starts, ends, axes and steps must be 1-D lists of one length");
        for (int k = 0; k < x->nd; k++) first[k] = 0, step[k] = 1, d[k] = x->d[k];
        for (int k = 0; k < ns; k++) {
            int64_t ax = na ? axes[k] : k, sp = nt ? steps[k] : 1;
            if (ax < 0) ax += x->nd;
            if (ax < 0 || ax >= x->nd || sp == 0) return nerr(c, n, "an axis out of range or a step of 0");
            const int64_t dim = x->d[ax];
            int64_t b = starts[k], e = ends[k];
            if (b < 0) b += dim;
            if (e < 0 && e > INT64_MIN / 2) e += dim;
            if (sp > 0) {
                b = b < 0 ? 0 : b > dim ? dim : b;
                e = e < 0 ? 0 : e > dim ? dim : e;
                d[ax] = e > b ? (e - b + sp - 1) / sp : 0;
            } else {
                b = b < 0 ? 0 : b > dim - 1 ? dim - 1 : b;
                e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
                d[ax] = b > e ? (b - e + (-sp) - 1) / (-sp) : 0;
            }
            first[ax] = b, step[ax] = sp;
        }
        if ((st = cv_new(c, n, &o, x->fl, x->nd, d))) return st;
        cv_strides(x, st_in);
        cv_strides(&o, st_out);
        for (int64_t k = 0; k < o.n; k++) {
            int64_t src = 0;
            for (int j = 0; j < o.nd; j++) src += (first[j] + (k / st_out[j]) % o.d[j] * step[j]) * st_in[j];
            cv_copy(&o, k, x, src);
        }
    } else if (!strcmp(op, "Transpose")) {
        const cval *x = &in[0];
        int64_t perm[CF_RANK], d[CF_RANK];
        int np = cv_list(n, in, 0, 99, "perm", perm, CF_RANK);
        if (np == 0)
            for (int k = 0; k < x->nd; k++) perm[k] = x->nd - 1 - k;
        else if (np != x->nd) return nerr(c, n, "perm does not match the input's rank");
        int seen = 0;
        for (int k = 0; k < x->nd; k++) {
            if (perm[k] < 0 || perm[k] >= x->nd || (seen >> perm[k]) & 1) return nerr(c, n, "perm is not a permutation");
            seen |= 1 << perm[k];
            d[k] = x->d[perm[k]];
        }
        if ((st = cv_new(c, n, &o, x->fl, x->nd, d))) return st;
        cv_strides(x, st_in);
        cv_strides(&o, st_out);
        for (int64_t k = 0; k < o.n; k++) {
            int64_t src = 0;
            for (int j = 0; j < o.nd; j++) src += (k / st_out[j]) % o.d[j] * st_in[perm[j]];
            cv_copy(&o, k, x, src);
        }
    } else if (!strcmp(op, "Cast")) {
        const int64_t to = attr_i(n, "to", 0);
        if (to != ONNX_FLOAT && to != ONNX_INT32 && to != ONNX_INT64)
            return nerr(c, n, "only casts to float, int32 and int64 can be folded");
        if ((st = cv_new(c, n, &o, to == ONNX_FLOAT, in[0].nd, in[0].d))) return st;
        for (int64_t k = 0; k < o.n; k++) cv_copy(&o, k, &in[0], k);
    } else if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        const int unsq = !strcmp(op, "Unsqueeze");
        int64_t axes[CF_RANK], d[CF_RANK];
        int na = cv_list(n, in, c->opset >= 13 ? nin : 0, 1, "axes", axes, CF_RANK);
        const int r = in[0].nd, ro = unsq ? r + na : r;
        if (na < 0 || ro > CF_RANK || (unsq && na < 1)) return nerr(c, n, "bad axes");
        uint32_t mark = 0;
        for (int k = 0; k < na; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + ro : axes[k];
            if (a < 0 || a >= ro || (!unsq && in[0].d[a] != 1)) return nerr(c, n, "an axis out of range or not of size 1");
            mark |= 1u << a;
        }
        int nd = 0;
        for (int k = 0, j = 0; k < ro; k++) {
            if (unsq) d[nd++] = (mark >> k) & 1 ? 1 : in[0].d[j++];
            else if (na ? !((mark >> k) & 1) : in[0].d[k] != 1) d[nd++] = in[0].d[k];
        }
        if ((st = cv_new(c, n, &o, in[0].fl, nd, d))) return st;
        for (int64_t k = 0; k < o.n; k++) cv_copy(&o, k, &in[0], k);
    } else if (!strcmp(op, "Gather")) {
        const cval *x = &in[0], *ix = &in[1];
        int64_t ax = attr_i(n, "axis", 0), d[CF_RANK];
        if (nin < 2 || ix->fl) return nerr(c, n, "indices must be integers");
        if (ax < 0) ax += x->nd;
        if (ax < 0 || ax >= x->nd || x->nd - 1 + ix->nd > CF_RANK) return nerr(c, n, "axis out of range");
        int nd = 0;
        for (int k = 0; k < ax; k++) d[nd++] = x->d[k];
        for (int k = 0; k < ix->nd; k++) d[nd++] = ix->d[k];
        for (int k = (int)ax + 1; k < x->nd; k++) d[nd++] = x->d[k];
        if ((st = cv_new(c, n, &o, x->fl, nd, d))) return st;
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < ax; k++) outer *= x->d[k];
        for (int k = (int)ax + 1; k < x->nd; k++) inner *= x->d[k];
        int64_t q = 0;
        for (int64_t t = 0; t < outer; t++)
            for (int64_t j = 0; j < ix->n; j++) {
                int64_t g = ix->i[j] < 0 ? ix->i[j] + x->d[ax] : ix->i[j];
                if (g < 0 || g >= x->d[ax]) return nerr(c, n, "an index out of range");
                for (int64_t e = 0; e < inner; e++) cv_copy(&o, q++, x, (t * x->d[ax] + g) * inner + e);
            }
    } else { /* Add, Sub, Mul: equal shapes or one side a single value */
        const cval *a = &in[0], *b = &in[1];
        if (nin != 2 || a->fl != b->fl) return nerr(c, n, "two inputs of one type are needed");
        const cval *big = a->n >= b->n ? a : b;
        if (a->n != b->n && a->n != 1 && b->n != 1) return nerr(c, n, "only equal shapes or a single value broadcast");
        if ((st = cv_new(c, n, &o, a->fl, big->nd, big->d))) return st;
        for (int64_t k = 0; k < o.n; k++) {
            const double x = cv_get(a, a->n == 1 ? 0 : k), y = cv_get(b, b->n == 1 ? 0 : k);
            cv_set(&o, k, op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : x * y);
        }
    }
    /* the result as a tensor constant */
    Onnx__TensorProto *t = A(&c->own, sizeof *t);
    int64_t *dims = A(&c->own, sizeof(int64_t) * CF_RANK);
    if (!t || !dims) return mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", c->path);
    onnx__tensor_proto__init(t);
    t->name = n->output[0];
    t->has_data_type = 1, t->data_type = o.fl ? ONNX_FLOAT : ONNX_INT64;
    memcpy(dims, o.d, sizeof(int64_t) * (size_t)o.nd);
    t->n_dims = (size_t)o.nd, t->dims = dims;
    if (o.fl) t->n_float_data = (size_t)o.n, t->float_data = o.f;
    else t->n_int64_data = (size_t)o.n, t->int64_data = o.i;
    return put(c, n->output[0], -1, t, NULL);
}

static mixq_status import_graph(octx *c, wcopy **cp, int *ncp) {
    Onnx__GraphProto *g = c->g;
    mixq_status st = MIXQ_OK;
    int cap = 0;
    *cp = NULL, *ncp = 0;
#define COPY(N, T, NODE, WHICH, TR)                                                   \
    do {                                                                             \
        if (*ncp == cap) {                                                           \
            cap = cap ? 2 * cap : 64;                                                \
            wcopy *nc_ = mq_realloc(*cp, (size_t)cap, sizeof *nc_, "ONNX weights");  \
            if (!nc_) return mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", c->path); \
            *cp = nc_;                                                               \
        }                                                                            \
        (*cp)[(*ncp)++] = (wcopy){N, T, NODE, WHICH, TR};                            \
    } while (0)
    for (size_t ni = 0; ni < g->n_node && !st; ni++) {
        const Onnx__NodeProto *n = g->node[ni];
        const char *op = n->op_type ? n->op_type : "";
        if (c->absorbed[ni]) continue;
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
            return nerr(c, n, "operator from a custom domain");
        if (n->n_output < 1 || !n->output[0] || !*n->output[0]) return nerr(c, n, "no output");
        char name[MIXQ_NAME_MAX];
        oval *x = NULL;
        int idx = -1;
        if (!strcmp(op, "Constant")) {
            const Onnx__AttributeProto *a = attr(n, "value");
            if (!a || !a->t) return nerr(c, n, "only the 'value' form (a tensor) is supported");
            st = put(c, n->output[0], -1, a->t, NULL);
            continue;
        }
        if (cf_op(op) && all_const(c, n)) {
            if ((st = fold(c, n))) return st;
            continue;
        }
        if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) {
            if ((st = input_of(c, n, 0, &x))) return st;
            if (!strcmp(op, "Dropout") && n->n_output > 1 && n->output[1] && *n->output[1])
                return nerr(c, n, "its mask output is used (training-mode dropout)");
            st = put(c, n->output[0], x->node, x->t, x->pad);
            continue;
        }
        if ((!strcmp(op, "Sub") || !strcmp(op, "Div") || !strcmp(op, "Gather")) && n->n_input == 2 &&
            (st = input_of(c, n, 0, &x)) == MIXQ_OK && x->node == 0 && c->m->nodes[0].op == MIXQ_OP_INPUT) {
            if ((st = fold_input_transform(c, n, x))) return st;
            continue;
        }
        if (st) return st;
        if (!strcmp(op, "DequantizeLinear") || !strcmp(op, "QuantizeLinear")) {
            oval *sv;
            if ((st = input_of(c, n, 0, &x)) || (st = input_of(c, n, 1, &sv))) return st;
            if (sv->node >= 0) return nerr(c, n, "the scale must be an initializer");
            const float *sc;
            int64_t ns;
            if ((st = tensor_floats(c, sv->t, &sc, &ns))) return st;
            if (ns < 1) return nerr(c, n, "empty scale");
            for (int64_t i = 0; i < ns; i++)
                if (!(sc[i] > 0)) return nerr(c, n, "scales must be positive");
            if (n->n_input > 2 && *n->input[2]) {
                oval *zv;
                if ((st = input_of(c, n, 2, &zv))) return st;
                float *z = zv->node < 0 && numel_of(zv->t) == ns ? A(&c->own, sizeof(float) * (size_t)ns) : NULL;
                int ok = z && int_values(zv->t, z, ns);
                for (int64_t i = 0; ok && i < ns; i++) ok = z[i] == 0;
                if (!ok) return nerr(c, n, "only zero points of 0 (symmetric quantization) are supported");
            }
            if (x->node >= 0) { /* an activation: the value stays the layer's input, with its clip */
                if (ns != 1) return nerr(c, n, "activations need one scale");
                float alpha = x->alpha; /* x points into c->v, which put may move */
                if ((st = put(c, n->output[0], x->node, NULL, x->pad))) return st;
                c->v[c->nv - 1].alpha = alpha;
                continue;
            }
            if (!strcmp(op, "QuantizeLinear")) return nerr(c, n, "quantizing a constant is not supported");
            /* a quantized constant (weights): dequantize it now */
            int64_t ne = numel_of(x->t);
            int64_t axis = attr_i(n, "axis", 1);
            if (ne < 1) return nerr(c, n, "bad tensor shape");
            if (ns != 1 && (axis != 0 || x->t->n_dims < 1 || x->t->dims[0] != ns))
                return nerr(c, n, "per-channel scales must run along axis 0 (output channels)");
            float *vals = A(&c->own, sizeof(float) * (size_t)ne);
            float *scopy = A(&c->own, sizeof(float) * (size_t)ns);
            Onnx__TensorProto *t = A(&c->own, sizeof *t);
            if (!vals || !scopy || !t) return mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", c->path);
            if (!int_values(x->t, vals, ne)) return nerr(c, n, "quantized weights must be int8 or uint8 (a bias: int32)");
            int64_t inner = ne / ns;
            for (int64_t i = 0; i < ne; i++) vals[i] *= sc[ns == 1 ? 0 : i / inner];
            memcpy(scopy, sc, sizeof(float) * (size_t)ns);
            onnx__tensor_proto__init(t);
            t->name = n->output[0];
            t->has_data_type = 1, t->data_type = ONNX_FLOAT;
            t->n_dims = x->t->n_dims, t->dims = x->t->dims;
            t->n_float_data = (size_t)ne, t->float_data = vals;
            if ((st = put(c, n->output[0], -1, t, NULL))) return st;
            c->v[c->nv - 1].dq = scopy, c->v[c->nv - 1].ndq = (int)ns;
            continue;
        }
        if (!strcmp(op, "Clip") && consumers_all(c, n->output[0], "QuantizeLinear")) {
            /* the clip of a QDQ activation quantizer: remember its upper bound */
            const Onnx__TensorProto *t;
            float hi = 0;
            if ((st = want_act(c, n, 0, &x))) return st;
            if (n->n_input < 3 || (st = want_const(c, n, 2, &t)) || !scalar_f(c, t, &hi) || !(hi > 0))
                return st ? st : nerr(c, n, "a quantization clip needs a positive max");
            if ((st = put(c, n->output[0], x->node, NULL, x->pad))) return st;
            c->v[c->nv - 1].alpha = hi;
            continue;
        }
        if (!strcmp(op, "Pad")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            const char *mode = NULL;
            const Onnx__AttributeProto *ma = attr(n, "mode");
            if (ma && ma->has_s) mode = (const char *)ma->s.data;
            if (ma && ma->has_s && (ma->s.len != 8 || memcmp(mode, "constant", 8)))
                return nerr(c, n, "only constant (zero) padding can be folded");
            int64_t pads[8];
            int np = -1;
            if (c->opset >= 11) {
                const Onnx__TensorProto *pt;
                if ((st = want_const(c, n, 1, &pt))) return st;
                np = tensor_ints(pt, pads, 8);
                if (n->n_input > 2 && n->input[2] && *n->input[2]) {
                    const Onnx__TensorProto *vt;
                    float pv;
                    if ((st = want_const(c, n, 2, &vt))) return st;
                    if (!scalar_f(c, vt, &pv) || pv != 0) return nerr(c, n, "padding value must be 0");
                }
            } else {
                const Onnx__AttributeProto *pa = attr(n, "pads");
                if (pa && pa->n_ints <= 8) {
                    np = (int)pa->n_ints;
                    if (np) memcpy(pads, pa->ints, sizeof(int64_t) * (size_t)np);
                }
                if (attr_f(n, "value", 0) != 0) return nerr(c, n, "padding value must be 0");
            }
            if (np != 8 || pads[0] || pads[1] || pads[4] || pads[5])
                return nerr(c, n, "only zero padding of height and width (4-D pads, none on the batch or "
                            "channels) can be folded");
            int sum[4];
            for (int k = 0; k < 4; k++) { /* ONNX: h_begin, w_begin, h_end, w_end = top, left, bottom, right */
                const int64_t v = pads[k < 2 ? 2 + k : 4 + k];
                if (v < 0 || v > 65536) return nerr(c, n, "pads must be in 0..65536 (cropping is not supported)");
                sum[k] = x->pad[k] + (int)v;
            }
            st = put(c, n->output[0], x->node, NULL, sum);
            continue;
        }
        if (!strcmp(op, "Conv")) {
            const Onnx__TensorProto *w, *b = NULL;
            if ((st = want_act(c, n, 0, &x)) || (st = want_const(c, n, 1, &w))) return st;
            if (n->n_input > 2 && n->input[2] && *n->input[2] && (st = want_const(c, n, 2, &b))) return st;
            if (w->n_dims != 4) return nerr(c, n, "weights must be 4-D (2-D convolution)");
            const int64_t grp = attr_i(n, "group", 1);
            mq_geom geo;
            if ((st = window_of(c, n, x, w->dims[2], w->dims[3], &geo))) return st;
            const mq_node *src = &c->m->nodes[x->node];
            if (grp < 1 || src->c % grp || w->dims[1] * grp != src->c) {
                char what[200];
                snprintf(what, sizeof what, "weights [%lld, %lld, ...] with group %lld do not fit its %d input channels",
                         (long long)w->dims[0], (long long)w->dims[1], (long long)grp, src->c);
                return nerr(c, n, what);
            }
            if (b && (b->n_dims != 1 || b->dims[0] != w->dims[0])) return nerr(c, n, "bias shape does not match");
            layer_name(c, n, w->name, 1, name);
            idx = mq_add_conv_g(c->m, name, x->node, (int)w->dims[0], &geo, (int)grp, b != NULL);
            if (idx < 0) return builder_err(c, n);
            COPY(n, w, idx, 0, 0);
            if (b) COPY(n, b, idx, 1, 0);
            if (idx < c->maxn) {
                oval *wv = find(c, n->input[1]);
                c->alpha[idx] = x->alpha;
                if (wv) c->wscale[idx] = wv->dq, c->nwscale[idx] = wv->ndq;
            }
        } else if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) {
            const Onnx__TensorProto *w, *b = NULL;
            if ((st = want_act(c, n, 0, &x)) || (st = want_const(c, n, 1, &w))) return st;
            int gemm = !strcmp(op, "Gemm");
            int tb = gemm ? (int)attr_i(n, "transB", 0) : 0;
            if (gemm && (attr_i(n, "transA", 0) || attr_f(n, "alpha", 1) != 1 || attr_f(n, "beta", 1) != 1))
                return nerr(c, n, "only transA = 0, alpha = beta = 1 are supported");
            if (w->n_dims != 2) return nerr(c, n, "weights must be 2-D");
            const mq_node *src = &c->m->nodes[x->node];
            if (src->h != 1 || src->w != 1) return nerr(c, n, "its input must be flattened to 2-D first");
            int64_t in = tb ? w->dims[1] : w->dims[0], out = tb ? w->dims[0] : w->dims[1];
            if (in != src->c) {
                char what[160];
                snprintf(what, sizeof what, "weights expect %lld inputs, the layer gets %d", (long long)in, src->c);
                return nerr(c, n, what);
            }
            if (gemm && n->n_input > 2 && n->input[2] && *n->input[2]) {
                if ((st = want_const(c, n, 2, &b))) return st;
            } else if (!gemm) {
                /* MatMul followed by Add(bias) as the only consumer: one linear layer */
                for (size_t j = ni + 1; j < g->n_node && !b; j++) {
                    const Onnx__NodeProto *a = g->node[j];
                    if (strcmp(a->op_type, "Add") || a->n_input != 2) continue;
                    int which = !strcmp(a->input[0], n->output[0]) ? 1 : !strcmp(a->input[1], n->output[0]) ? 0 : -1;
                    if (which < 0) continue;
                    oval *bv = find(c, a->input[which]);
                    if (bv && bv->node < 0 && bv->t && numel_of(bv->t) == out) {
                        b = bv->t;
                        c->absorbed[j] = 1;
                        if ((st = put(c, a->output[0], -2, NULL, NULL))) return st; /* patched below */
                    }
                }
            }
            if (b && numel_of(b) != out) return nerr(c, n, "bias shape does not match");
            layer_name(c, n, w->name, 1, name);
            idx = mq_add_linear(c->m, name, x->node, (int)out, b != NULL);
            if (idx < 0) return builder_err(c, n);
            for (int i = 0; i < c->nv; i++)
                if (c->v[i].node == -2) c->v[i].node = idx; /* the absorbed Add's output */
            COPY(n, w, idx, 0, !tb);
            if (b) COPY(n, b, idx, 1, 0);
            if (idx < c->maxn) {
                oval *wv = find(c, n->input[1]);
                c->alpha[idx] = x->alpha;
                if (wv) c->wscale[idx] = wv->dq, c->nwscale[idx] = wv->ndq;
            }
        } else if (!strcmp(op, "BatchNormalization")) {
            const Onnx__TensorProto *t[4];
            if ((st = want_act(c, n, 0, &x))) return st;
            for (int i = 0; i < 4; i++)
                if ((st = want_const(c, n, (size_t)i + 1, &t[i]))) return st;
            if (n->n_output > 1) return nerr(c, n, "training-mode batch norm (extra outputs) is not supported");
            layer_name(c, n, t[0]->name, 1, name);
            idx = mq_add_bn(c->m, name, x->node);
            if (idx < 0) return builder_err(c, n);
            c->m->nodes[idx].bn_eps = attr_f(n, "epsilon", 1e-5f);
            c->m->nodes[idx].bn_momentum = 1.0f - attr_f(n, "momentum", 0.9f); /* ONNX keeps the old value's share */
            for (int i = 0; i < 4; i++) COPY(n, t[i], idx, i, 0);
        } else if (!strcmp(op, "Relu")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_act(c->m, name, MIXQ_OP_RELU, x->node);
        } else if (!strcmp(op, "Clip")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            float lo = -INFINITY, hi = INFINITY;
            if (c->opset >= 11) {
                const Onnx__TensorProto *t;
                if (n->n_input > 1 && *n->input[1]) {
                    if ((st = want_const(c, n, 1, &t))) return st;
                    if (!scalar_f(c, t, &lo)) return nerr(c, n, "min must be a float scalar");
                }
                if (n->n_input > 2 && *n->input[2]) {
                    if ((st = want_const(c, n, 2, &t))) return st;
                    if (!scalar_f(c, t, &hi)) return nerr(c, n, "max must be a float scalar");
                }
            } else {
                lo = attr_f(n, "min", -INFINITY), hi = attr_f(n, "max", INFINITY);
            }
            mixq_op aop;
            if (lo == 0 && hi == 6) aop = MIXQ_OP_RELU6;
            else if (lo == 0 && isinf(hi) && hi > 0) aop = MIXQ_OP_RELU;
            else return nerr(c, n, "only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported");
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_act(c->m, name, aop, x->node);
        } else if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            if (attr_i(n, "ceil_mode", 0)) return nerr(c, n, "ceil_mode = 1 is not supported");
            if (n->n_output > 1) return nerr(c, n, "the indices output is not supported");
            int avg = !strcmp(op, "AveragePool");
            const Onnx__AttributeProto *pa = attr(n, "pads");
            int own_pads = 0;
            for (size_t i = 0; pa && i < pa->n_ints; i++) own_pads |= pa->ints[i] != 0;
            /* a folded zero Pad counts in the average: only the pool's own pads may be left out */
            if (avg && own_pads && !attr_i(n, "count_include_pad", 0))
                return nerr(c, n, "padded average pooling must count the padding (count_include_pad = 1)");
            mq_geom geo;
            if ((st = window_of(c, n, x, -1, -1, &geo))) return st;
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_pool_g(c->m, name, avg ? MIXQ_OP_AVGPOOL : MIXQ_OP_MAXPOOL, x->node, &geo);
        } else if (!strcmp(op, "Sigmoid") || !strcmp(op, "HardSwish")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_act(c->m, name, op[0] == 'S' ? MIXQ_OP_SIGMOID : MIXQ_OP_HSWISH, x->node);
        } else if (!strcmp(op, "HardSigmoid")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            const float alpha = attr_f(n, "alpha", 0.2f), beta = attr_f(n, "beta", 0.5f);
            /* PyTorch's Hardswish at opset 13: Mul(x, HardSigmoid(x, 1/6, 1/2)) is one hard swish */
            const int j = sole_consumer(c, n->output[0]);
            const Onnx__NodeProto *mul = j >= 0 ? g->node[j] : NULL;
            if (mul && alpha == 1.0f / 6 && beta == 0.5f && !strcmp(mul->op_type, "Mul") && mul->n_input == 2 &&
                mul->n_output >= 1 && !c->absorbed[j] &&
                !strcmp(mul->input[!strcmp(mul->input[0], n->output[0]) ? 1 : 0], n->input[0])) {
                layer_name(c, mul, NULL, 0, name);
                idx = mq_add_act(c->m, name, MIXQ_OP_HSWISH, x->node);
                if (idx >= 0) {
                    c->absorbed[j] = 1;
                    if ((st = put(c, mul->output[0], idx, NULL, NULL))) return st;
                    continue;
                }
            } else {
                layer_name(c, n, NULL, 0, name);
                idx = mq_add_hsigmoid(c->m, name, x->node, alpha, beta);
            }
        } else if (!strcmp(op, "Mul")) {
            oval *y;
            if ((st = want_act(c, n, 0, &x)) || (st = want_act(c, n, 1, &y))) return st;
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_mul(c->m, name, x->node, y->node);
        } else if (!strcmp(op, "Concat")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            const int64_t ax = attr_i(n, "axis", 1);
            if (ax != 1 && ax != -3) return nerr(c, n, "only concatenation along the channels (axis 1) is supported");
            if (n->n_input < 2) return nerr(c, n, "concatenation needs two inputs or more");
            idx = x->node;
            for (size_t i = 1; i < n->n_input && idx >= 0; i++) { /* a chain of two-input concats */
                oval *y;
                if ((st = want_act(c, n, i, &y))) return st;
                layer_name(c, n, NULL, 0, name);
                idx = mq_add_concat(c->m, name, idx, y->node);
            }
        } else if (!strcmp(op, "GlobalAveragePool")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_gap(c->m, name, x->node);
        } else if (!strcmp(op, "Add")) {
            oval *y;
            if ((st = input_of(c, n, 0, &x)) || (st = input_of(c, n, 1, &y))) return st;
            if (x->node < 0 || y->node < 0) return nerr(c, n, "adding a constant is only supported as a MatMul bias");
            if (has_pad(x) || has_pad(y)) return nerr(c, n, "follows a zero Pad that only a Conv or an AveragePool can absorb");
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_add(c->m, name, x->node, y->node);
        } else if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape")) {
            if ((st = want_act(c, n, 0, &x))) return st;
            if (!strcmp(op, "Flatten") && attr_i(n, "axis", 1) != 1) return nerr(c, n, "only axis = 1 is supported");
            if (!strcmp(op, "Reshape")) {
                const Onnx__TensorProto *t;
                int64_t sh[8];
                if ((st = want_const(c, n, 1, &t))) return st;
                int ns = tensor_ints(t, sh, 8);
                const mq_node *src = &c->m->nodes[x->node];
                int64_t flat = (int64_t)src->c * src->h * src->w;
                if (ns != 2 || !((sh[1] == -1 || sh[1] == flat) && (sh[0] == 0 || sh[0] == -1 || sh[0] >= 1)))
                    return nerr(c, n, "only a reshape to (batch, features) is supported");
            }
            /* Flattening keeps the values, so a QDQ clip the input went through stays with them
             * (the export writes DequantizeLinear -> Flatten -> Gemm when a linear layer reads
             * another linear layer). A value of C x 1 x 1 per image is already what a flatten
             * gives, and needs no node. */
            const float alpha = x->alpha;
            if (c->m->nodes[x->node].h == 1 && c->m->nodes[x->node].w == 1) {
                if ((st = put(c, n->output[0], x->node, NULL, 0))) return st;
                c->v[c->nv - 1].alpha = alpha;
                continue;
            }
            layer_name(c, n, NULL, 0, name);
            idx = mq_add_flatten(c->m, name, x->node);
            if (idx >= 0) {
                if ((st = put(c, n->output[0], idx, NULL, 0))) return st;
                c->v[c->nv - 1].alpha = alpha;
                continue;
            }
        } else {
            return nerr(c, n, "unsupported operator; hint: mixq imports Conv, Gemm, MatMul(+Add), "
                        "BatchNormalization, Relu, Clip, Sigmoid, HardSigmoid, HardSwish, MaxPool, AveragePool, "
                        "GlobalAveragePool, Add, Mul, Concat, Flatten, Reshape, Pad, Identity, Dropout, Constant "
                        "(and folds ConstantOfShape, Slice, Transpose, Cast, Gather, Unsqueeze, Squeeze on constants)");
        }
        if (idx < 0) return builder_err(c, n);
        st = put(c, n->output[0], idx, NULL, NULL);
    }
#undef COPY
    return st;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* protobuf-c unpacks nested messages by recursion, with no depth limit: a file nesting graph ->
 * node -> attribute -> graph a few thousand times overflows the stack inside
 * onnx__model_proto__unpack. So the wire format is walked first, iteratively, following only the
 * schema's message-typed fields (strings and tensor bytes are skipped, never parsed as messages),
 * and a model nesting messages deeper than ONNX_MAX_DEPTH is refused before unpacking. ModelProto
 * is level 1; a real model's subgraphs (If, Loop) and nested types stay far below the limit, which
 * is protobuf's own default recursion limit. */
#define ONNX_MAX_DEPTH 100

static int pb_varint(const uint8_t *b, size_t end, size_t *i, uint64_t *v) {
    uint64_t r = 0;
    for (int sh = 0; sh < 64 && *i < end; sh += 7) {
        uint8_t c = b[(*i)++];
        r |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

typedef struct pb_frame {
    size_t end;
    const ProtobufCMessageDescriptor *d;
} pb_frame;

/* The deepest nesting of messages in b[0..n) read as `top` (1: a message without sub-messages),
 * as far as the scan got: *broken says whether it stopped at a malformed byte. -1: out of memory. */
static long pb_depth(const uint8_t *b, size_t n, const ProtobufCMessageDescriptor *top, int *broken) {
    size_t cap = 64, sp = 0, i = 0;
    long deepest = 1;
    *broken = 1;
    pb_frame *st = mq_malloc(cap, sizeof *st, "ONNX nesting scan");
    if (!st) return -1;
    st[0] = (pb_frame){n, top};
    for (;;) {
        while (i == st[sp].end && sp > 0) sp--;
        if (sp == 0 && i == st[0].end) break;
        size_t end = st[sp].end;
        uint64_t tag, v;
        if (!pb_varint(b, end, &i, &tag) || (tag >> 3) == 0) goto broken;
        switch (tag & 7) {
        case 0:
            if (!pb_varint(b, end, &i, &v)) goto broken;
            break;
        case 1:
            if (end - i < 8) goto broken;
            i += 8;
            break;
        case 5:
            if (end - i < 4) goto broken;
            i += 4;
            break;
        case 2: {
            if (!pb_varint(b, end, &i, &v) || v > end - i) goto broken;
            const ProtobufCFieldDescriptor *f =
                st[sp].d && (tag >> 3) <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(st[sp].d, (unsigned)(tag >> 3))
                    : NULL;
            if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE) {
                i += (size_t)v;
                break;
            }
            if (++sp == cap) {
                pb_frame *g = mq_realloc(st, 2 * cap, sizeof *st, "protobuf scan");
                if (!g) {
                    free(st);
                    mq_err(MIXQ_ERR_NOMEM, "out of memory scanning the ONNX nesting");
                    return -1;
                }
                st = g;
                cap *= 2;
            }
            st[sp] = (pb_frame){i + (size_t)v, f->descriptor};
            if ((long)sp + 1 > deepest) deepest = (long)sp + 1;
            break;
        }
        default:
            goto broken;
        }
    }
    *broken = 0;
broken:
    free(st);
    return deepest;
}

/* ONNX is proto2: an optional string that is absent unpacks as NULL. The importer compares and
 * prints names and op types, so the ones it reads are made "" when absent (heap strings: protobuf-c
 * frees them with the rest, through pb_allocator's free). 0 if out of memory. */
static int empty_if_null(char **s) {
    if (!*s) *s = mq_calloc(1, 1, "ONNX name");
    return *s != NULL;
}

static int fill_strings(Onnx__GraphProto *g) {
    int ok = 1;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        ok = ok && empty_if_null(&n->op_type) && empty_if_null(&n->name);
        for (size_t j = 0; j < n->n_attribute; j++) ok = ok && empty_if_null(&n->attribute[j]->name);
    }
    for (size_t i = 0; i < g->n_initializer; i++) ok = ok && empty_if_null(&g->initializer[i]->name);
    for (size_t i = 0; i < g->n_input; i++) ok = ok && empty_if_null(&g->input[i]->name);
    for (size_t i = 0; i < g->n_output; i++) ok = ok && empty_if_null(&g->output[i]->name);
    return ok;
}

mixq_status mixq_model_import_onnx(const char *path, mixq_model **out) {
    if (!path || !out) return mq_err(MIXQ_ERR_ARG, "mixq_model_import_onnx: NULL argument");
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    mixq_status rst = mq_read_file(path, (size_t)1 << 31, "ONNX model", &buf, &n, NULL);
    if (rst) return rst;
    octx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    int broken;
    long depth = pb_depth((const uint8_t *)buf, n, &onnx__model_proto__descriptor, &broken);
    if (depth < 0) {
        free(buf);
        return MIXQ_ERR_NOMEM;
    }
    if (depth > ONNX_MAX_DEPTH) {
        free(buf);
        return mq_err(MIXQ_ERR_FORMAT, "'%s': the ONNX protobuf nests messages %ld levels deep (subgraphs "
                      "within subgraphs: graph -> node -> attribute -> graph ...); mixq reads at most %d "
                      "levels; hint: the file is corrupt or hostile, re-export the model", path, depth,
                      ONNX_MAX_DEPTH);
    }
    /* a wire format the scan could not walk is not handed to protobuf-c either */
    long f0 = mq_alloc_failures();
    c.mp = broken ? NULL : onnx__model_proto__unpack(&pb_allocator, n, (const uint8_t *)buf);
    free(buf);
    if (!c.mp && mq_alloc_failures() != f0)
        return mq_err(MIXQ_ERR_NOMEM, "out of memory reading '%s'", path);
    if (!c.mp)
        return mq_err(MIXQ_ERR_FORMAT, "'%s' is not a valid ONNX model (the protobuf does not parse: "
                      "truncated or corrupt)", path);
    mixq_status st = MIXQ_OK;
    c.g = c.mp->graph;
    if (c.g && !fill_strings(c.g)) st = mq_err(MIXQ_ERR_NOMEM, "out of memory reading '%s'", path);
    c.opset = -1;
    for (size_t i = 0; i < c.mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = c.mp->opset_import[i];
        if (!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) c.opset = o->version;
    }
    if (!st && (!c.g || c.g->n_node == 0)) st = mq_err(MIXQ_ERR_FORMAT, "'%s': the ONNX model has no graph", path);
    else if (!st && (c.opset < ONNX_OPSET_MIN || c.opset > ONNX_OPSET_MAX))
        st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': opset %lld; mixq imports opsets %d..%d; hint: re-export "
                    "with opset_version=13", path, (long long)c.opset, ONNX_OPSET_MIN, ONNX_OPSET_MAX);
    /* the data input: the one graph input that is not an initializer, (N, C, H, W) */
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; !st && i < c.g->n_input; i++) {
        int init = 0;
        for (size_t j = 0; j < c.g->n_initializer; j++)
            if (c.g->initializer[j]->name && !strcmp(c.g->initializer[j]->name, c.g->input[i]->name)) init = 1;
        if (init) continue;
        if (in) st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': the graph has more than one data input ('%s', '%s')", path,
                            in->name, c.g->input[i]->name);
        in = c.g->input[i];
    }
    int64_t dims[4] = {0};
    if (!st && !in) st = mq_err(MIXQ_ERR_FORMAT, "'%s': the graph has no data input", path);
    if (!st) {
        const Onnx__TypeProto *tp = in->type;
        const Onnx__TypeProto__Tensor *tt = tp ? tp->tensor_type : NULL;
        const Onnx__TensorShapeProto *sh = tt ? tt->shape : NULL;
        if (!tt || tt->elem_type != ONNX_FLOAT || !sh || sh->n_dim != 4)
            st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': input '%s' must be a float32 4-D tensor (N, C, H, W)", path,
                        in->name);
        for (int i = 1; !st && i < 4; i++) {
            const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
            if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || d->dim_value < 1 ||
                d->dim_value > 65536)
                st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': input '%s' dimension %d must be a fixed size", path,
                            in->name, i);
            else dims[i] = d->dim_value;
        }
    }
    wcopy *cp = NULL;
    int ncp = 0;
    if (!st) {
        char arch[32];
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        snprintf(arch, sizeof arch, "%.*s", (int)(ends_with(base, ".onnx") ? strlen(base) - 5 : strlen(base)), base);
        mixq_model_config cfg = {.arch = arch, .in_c = (int)dims[1], .in_h = (int)dims[2], .in_w = (int)dims[3],
                                 .classes = 0, .width = 1, .seed = 1};
        c.m = mq_model_new(&cfg);
        c.absorbed = mq_calloc(c.g->n_node, sizeof(int), "import flags");
        c.maxn = (int)c.g->n_node + 2;
        c.alpha = mq_calloc((size_t)c.maxn, sizeof(float), "import clips");
        c.wscale = mq_calloc((size_t)c.maxn, sizeof(*c.wscale), "import scales");
        c.nwscale = mq_calloc((size_t)c.maxn, sizeof(int), "import scales");
        if (!c.m || !c.absorbed || !c.alpha || !c.wscale || !c.nwscale) st = MIXQ_ERR_NOMEM;
    }
    if (!st) {
        /* Every named value (the input, each initializer, each node output) is put once, so this
         * capacity is never outgrown and an oval pointer held across a put stays valid; put still
         * grows the table (and reads what it copies first) should a graph need more. */
        size_t want = 16 + c.g->n_initializer;
        for (size_t j = 0; j < c.g->n_node; j++) want += c.g->node[j]->n_output;
        if (want > (size_t)INT_MAX / 2) st = mq_err(MIXQ_ERR_FORMAT, "'%s': too many values", path);
        else if (!(c.v = mq_malloc(want, sizeof *c.v, "ONNX values"))) st = mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", path);
        else c.cap = (int)want;
    }
    if (!st) {
        c.m->custom_graph = 1;
        int ii = mq_add_input(c.m, (int)dims[1], (int)dims[2], (int)dims[3]);
        if (ii < 0) st = mq_last_status() == MIXQ_ERR_NOMEM ? MIXQ_ERR_NOMEM : MIXQ_ERR_ARG;
        else st = put(&c, in->name, ii, NULL, NULL);
        for (size_t j = 0; !st && j < c.g->n_initializer; j++) {
            const Onnx__TensorProto *t = c.g->initializer[j];
            if (!t->name || !*t->name) st = mq_err(MIXQ_ERR_FORMAT, "'%s': initializer %zu has no name", path, j);
            else if (numel_of(t) < 0)
                st = mq_err(MIXQ_ERR_FORMAT, "'%s': initializer '%s': its dimensions overflow", path, t->name);
            else st = put(&c, t->name, -1, t, NULL);
        }
    }
    if (!st) st = import_graph(&c, &cp, &ncp);
    /* the output: one graph output, the last node's (N, classes) logits */
    if (!st) {
        oval *o = c.g->n_output == 1 ? find(&c, c.g->output[0]->name) : NULL;
        if (c.g->n_output != 1) st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': the graph must have one output (the logits)", path);
        else if (!o || o->node < 0) st = mq_err(MIXQ_ERR_FORMAT, "'%s': output '%s' is produced by no node", path, c.g->output[0]->name);
        else if (o->node != c.m->n_nodes - 1)
            st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': output '%s' must come from the last layer", path, c.g->output[0]->name);
        else {
            const mq_node *last = &c.m->nodes[o->node];
            if (last->h != 1 || last->w != 1)
                st = mq_err(MIXQ_ERR_UNSUPPORTED, "'%s': output '%s' is %dx%dx%d per image, not a vector of class "
                            "scores", path, c.g->output[0]->name, last->c, last->h, last->w);
            c.m->cfg.classes = last->c;
        }
    }
    if (!st) st = mq_model_finalize(c.m);
    for (int i = 0; !st && i < ncp; i++)
        st = fill(&c, cp[i].n, cp[i].t, tensor_of(c.m, cp[i].node, cp[i].which), cp[i].transpose);
    if (!st) st = import_preprocess(&c);
    if (!st) st = import_holdout(&c);
    /* a mixq QDQ export: its policy from the metadata, scales and clips from the QDQ nodes */
    const char *policy = st ? NULL : meta_value(&c, "mixq.policy");
    if (!st && policy && *policy) {
        mixq_policy *p = NULL;
        char origin[4200];
        snprintf(origin, sizeof origin, "%s (mixq.policy metadata)", path);
        st = mixq_policy_parse(policy, strlen(policy), origin, &p);
        if (!st) st = mixq_model_quantize(c.m, p);
        mixq_policy_free(p);
        for (int i = 0; !st && i < c.m->n_nodes && i < c.maxn; i++) {
            const mq_node *d = &c.m->nodes[i];
            if (d->op != MIXQ_OP_CONV && d->op != MIXQ_OP_LINEAR) continue;
            float *sc = NULL;
            if (c.wscale[i]) {
                sc = mq_malloc((size_t)d->c, sizeof(float), "ONNX scales");
                if (!sc) {
                    st = mq_err(MIXQ_ERR_NOMEM, "out of memory importing '%s'", path);
                    break;
                }
                for (int k = 0; k < d->c; k++) sc[k] = c.wscale[i][c.nwscale[i] == 1 ? 0 : k];
            }
            st = mq_quant_layer_set(c.m, i, sc, c.alpha[i]);
            free(sc);
        }
    }
    free(cp);
    free(c.v);
    free(c.absorbed);
    free(c.alpha);
    free(c.wscale);
    free(c.nwscale);
    arena_free(&c.own);
    onnx__model_proto__free_unpacked(c.mp, &pb_allocator);
    if (st) {
        mixq_model_free(c.m);
        return st;
    }
    *out = c.m;
    return MIXQ_OK;
}

/* ================================================================== export
 *
 * Float model: Conv / Gemm (transB) / BatchNormalization / Relu / Clip(0, 6) / Sigmoid /
 * HardSigmoid / MaxPool / AveragePool (count_include_pad, as mixq pools) / GlobalAveragePool /
 * Add / Mul / Concat (axis 1) / Flatten, opset 13; a hard swish as Mul(x, HardSigmoid(x, 1/6,
 * 1/2)), PyTorch's opset-13 form (HardSwish needs opset 14).
 * Quantized model (QDQ): around every quantized conv/linear layer
 *   - weights: an int8 initializer "<layer>.weight_q" with the b-bit integers (|q| <= 2^(b-1)-1),
 *     DequantizeLinear with the per-channel scales (axis 0; one scale for per-layer policies)
 *     giving "<layer>.weight";
 *   - input activations: Clip(0, alpha) -> QuantizeLinear(uint8, scale alpha/(2^b-1)) ->
 *     DequantizeLinear (unsigned), or Clip(-alpha, alpha) and int8 with 2^(b-1)-1 levels
 *     (signed): the Clip keeps an 8-bit container within the b-bit range.
 * The weight codes and scales are the layer's description (mq_qlayer), never recovered from
 * floats. k-means layers (a codebook, not a linear grid) and layers with float (32-bit) kernels
 * are written as their fake-quantized float weights. metadata_props carry mixq.version, mixq.policy (the policy text), mixq.bits (per layer
 * w/a bits and per-kernel bits), mixq.provenance, mixq.preprocess (the input transform) and, when
 * the model records it, mixq.holdout (the training images it was trained without). */

static void *A(arena *a, size_t bytes) {
    if (a->n == a->cap) {
        size_t nc = a->cap ? 2 * a->cap : 256;
        void **np = mq_realloc(a->p, nc, sizeof *np, "ONNX arena");
        if (!np) return NULL;
        a->p = np, a->cap = nc;
    }
    void *x = mq_calloc(1, bytes ? bytes : 1, "ONNX arena");
    if (x) a->p[a->n++] = x;
    return x;
}

static char *S(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *S(arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = A(a, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void arena_free(arena *a) {
    for (size_t i = 0; i < a->n; i++) free(a->p[i]);
    free(a->p);
}

typedef struct ectx {
    arena a;
    int fail;
    Onnx__NodeProto **nodes;
    size_t nn, capn;
    Onnx__TensorProto **inits;
    size_t ni, capi;
} ectx;

static void *EA(ectx *e, size_t bytes) {
    void *p = A(&e->a, bytes);
    if (!p) e->fail = 1;
    return p;
}

static Onnx__NodeProto *enode(ectx *e, const char *op, const char *name, int nin, const char *const *in,
                              const char *out) {
    if (e->nn == e->capn) {
        size_t nc = e->capn ? 2 * e->capn : 64;
        Onnx__NodeProto **np = realloc(e->nodes, sizeof *np * nc);
        if (!np) {
            e->fail = 1;
            return NULL;
        }
        e->nodes = np, e->capn = nc;
    }
    Onnx__NodeProto *n = EA(e, sizeof *n);
    char **ins = EA(e, sizeof(char *) * (size_t)(nin ? nin : 1));
    char **outs = EA(e, sizeof(char *));
    if (!n || !ins || !outs) return NULL;
    onnx__node_proto__init(n);
    n->op_type = S(&e->a, "%s", op);
    n->name = S(&e->a, "%s", name);
    for (int i = 0; i < nin; i++) ins[i] = S(&e->a, "%s", in[i]);
    outs[0] = S(&e->a, "%s", out);
    n->n_input = (size_t)nin, n->input = ins;
    n->n_output = 1, n->output = outs;
    e->nodes[e->nn++] = n;
    return n;
}

/* A new attribute of node n (NULL on failure). */
static Onnx__AttributeProto *eattr(ectx *e, Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type) {
    if (!n) return NULL;
    Onnx__AttributeProto *a = EA(e, sizeof *a);
    Onnx__AttributeProto **list = EA(e, sizeof(*list) * (n->n_attribute + 1));
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = S(&e->a, "%s", name);
    a->has_type = 1, a->type = type;
    if (n->n_attribute) memcpy(list, n->attribute, sizeof(*list) * n->n_attribute);
    list[n->n_attribute++] = a;
    n->attribute = list;
    return a;
}

static void eattr_ints(ectx *e, Onnx__NodeProto *n, const char *name, int cnt, int64_t v) {
    Onnx__AttributeProto *a = eattr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *iv = EA(e, sizeof(int64_t) * (size_t)cnt);
    if (!a || !iv) return;
    for (int i = 0; i < cnt; i++) iv[i] = v;
    a->n_ints = (size_t)cnt, a->ints = iv;
}

static void eattr_intv(ectx *e, Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v) {
    Onnx__AttributeProto *a = eattr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *iv = EA(e, sizeof(int64_t) * (size_t)cnt);
    if (!a || !iv) return;
    memcpy(iv, v, sizeof(int64_t) * (size_t)cnt);
    a->n_ints = (size_t)cnt, a->ints = iv;
}

/* A conv's or pool's window: kernel_shape, strides and pads (top, left, bottom, right). */
static void eattr_window(ectx *e, Onnx__NodeProto *n, const mq_geom *g) {
    const int64_t k[2] = {g->kh, g->kw}, st[2] = {g->sh, g->sw}, p[4] = {g->pt, g->pl, g->pb, g->pr};
    eattr_intv(e, n, "kernel_shape", 2, k);
    eattr_intv(e, n, "strides", 2, st);
    eattr_intv(e, n, "pads", 4, p);
}

static void eattr_i(ectx *e, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = eattr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

static void eattr_f(ectx *e, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = eattr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

/* An initializer; data (bytes) copied; dims[nd]. */
static void einit(ectx *e, const char *name, int dtype, int nd, const int64_t *dims, const void *data, size_t bytes) {
    if (e->ni == e->capi) {
        size_t nc = e->capi ? 2 * e->capi : 64;
        Onnx__TensorProto **np = realloc(e->inits, sizeof *np * nc);
        if (!np) {
            e->fail = 1;
            return;
        }
        e->inits = np, e->capi = nc;
    }
    Onnx__TensorProto *t = EA(e, sizeof *t);
    int64_t *dd = EA(e, sizeof(int64_t) * (size_t)(nd ? nd : 1));
    uint8_t *raw = EA(e, bytes);
    if (!t || !dd || !raw) return;
    onnx__tensor_proto__init(t);
    t->name = S(&e->a, "%s", name);
    t->has_data_type = 1, t->data_type = dtype;
    memcpy(dd, dims, sizeof(int64_t) * (size_t)nd);
    t->n_dims = (size_t)nd, t->dims = dd;
    memcpy(raw, data, bytes);
    t->has_raw_data = 1, t->raw_data.len = bytes, t->raw_data.data = raw;
    e->inits[e->ni++] = t;
}

static void einit_f(ectx *e, const char *name, int nd, const int64_t *dims, const float *v, int64_t n) {
    einit(e, name, ONNX_FLOAT, nd, dims, v, sizeof(float) * (size_t)n);
}

static Onnx__ValueInfoProto *evalue(ectx *e, const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = EA(e, sizeof *v);
    Onnx__TypeProto *tp = EA(e, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = EA(e, sizeof *tt);
    Onnx__TensorShapeProto *sh = EA(e, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = EA(e, sizeof(*dd) * (size_t)rank);
    if (!v || !tp || !tt || !sh || !dd) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < rank; i++) {
        dd[i] = EA(e, sizeof **dd);
        if (!dd[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(dd[i]);
        if (i == 0) {
            dd[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dd[i]->dim_param = S(&e->a, "batch");
        } else {
            dd[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dd[i]->dim_value = dims[i];
        }
    }
    sh->n_dim = (size_t)rank, sh->dim = dd;
    tt->has_elem_type = 1, tt->elem_type = ONNX_FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = S(&e->a, "%s", name);
    v->type = tp;
    return v;
}

/* The activation fake-quantization of a layer's input (its description ql), as Clip ->
 * QuantizeLinear -> DequantizeLinear; returns the dequantized value's name. */
static const char *eact_qdq(ectx *e, const char *layer, const char *x, const mq_qlayer *ql) {
    const int is_signed = ql->a_signed;
    const float alpha = ql->a_clip;
    float lo = is_signed ? -alpha : 0.0f, hi = alpha;
    float s = ql->a_scale;
    int64_t none = 0;
    einit_f(e, S(&e->a, "%s.in_lo", layer), 0, &none, &lo, 1);
    einit_f(e, S(&e->a, "%s.in_hi", layer), 0, &none, &hi, 1);
    einit_f(e, S(&e->a, "%s.in_scale", layer), 0, &none, &s, 1);
    uint8_t zp = 0;
    einit(e, S(&e->a, "%s.in_zero_point", layer), is_signed ? ONNX__TENSOR_PROTO__DATA_TYPE__INT8 : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8,
          0, &none, &zp, 1);
    const char *c_in[3] = {x, S(&e->a, "%s.in_lo", layer), S(&e->a, "%s.in_hi", layer)};
    const char *clip = S(&e->a, "%s.in_clip", layer), *q = S(&e->a, "%s.in_q", layer), *dq = S(&e->a, "%s.in_dq", layer);
    enode(e, "Clip", clip, 3, c_in, clip);
    const char *q_in[3] = {clip, S(&e->a, "%s.in_scale", layer), S(&e->a, "%s.in_zero_point", layer)};
    enode(e, "QuantizeLinear", q, 3, q_in, q);
    const char *d_in[3] = {q, q_in[1], q_in[2]};
    enode(e, "DequantizeLinear", dq, 3, d_in, dq);
    return dq;
}

/* The model's input transform as leading nodes on the graph input "input" (raw pixels as
 * floats): Gather (channels reversed, BGR), Sub(mean / scale), Div(std / scale). Returns the name
 * of the transformed value. */
static const char *embed_preprocess_nodes(ectx *e, const mixq_preprocess *pp) {
    const int C = pp->channels;
    int64_t cd[4] = {1, C, 1, 1};
    float mu[MIXQ_PP_MAX_CH], sd[MIXQ_PP_MAX_CH];
    for (int c = 0; c < C; c++) mu[c] = pp->mean[c] / pp->scale, sd[c] = pp->std[c] / pp->scale;
    const char *x = "input";
    if (pp->bgr) {
        int64_t order[MIXQ_PP_MAX_CH], od[1] = {C};
        for (int c = 0; c < C; c++) order[c] = C - 1 - c;
        einit(e, "preprocess.order", ONNX_INT64, 1, od, order, sizeof(int64_t) * (size_t)C);
        const char *in[2] = {x, "preprocess.order"};
        eattr_i(e, enode(e, "Gather", "preprocess.bgr", 2, in, "preprocess.bgr"), "axis", 1);
        x = "preprocess.bgr";
    }
    einit(e, "preprocess.mean", ONNX_FLOAT, 4, cd, mu, sizeof(float) * (size_t)C);
    einit(e, "preprocess.std", ONNX_FLOAT, 4, cd, sd, sizeof(float) * (size_t)C);
    const char *sub[2] = {x, "preprocess.mean"}, *div[2] = {"preprocess.sub", "preprocess.std"};
    enode(e, "Sub", "preprocess.sub", 2, sub, "preprocess.sub");
    enode(e, "Div", "preprocess.div", 2, div, "preprocess.div");
    return "preprocess.div";
}

mixq_status mixq_model_export_onnx(mixq_model *m, const char *path) {
    return mixq_model_export_onnx_ex(m, path, 0);
}

mixq_status mixq_model_export_onnx_ex(mixq_model *m, const char *path, int embed_preprocess) {
    if (!m || !path) return mq_err(MIXQ_ERR_ARG, "mixq_model_export_onnx: NULL argument");
    if (embed_preprocess && m->pp.from_data)
        return mq_err(MIXQ_ERR_ARG, "cannot embed the input transform of '%s' in '%s': it is mixq's "
                      "default, the statistics of whichever dataset the model runs on; hint: give "
                      "the dataset (`mixq export --data DATA`) or the transform (--preprocess, "
                      "--mean/--std/--scale)", m->arch, path);
    ectx E;
    memset(&E, 0, sizeof E);
    ectx *e = &E;
    mixq_status st = MIXQ_OK;
    int quant = mixq_model_is_quantized(m);
    const char **vname = calloc((size_t)m->n_nodes, sizeof *vname);
    char *bits_json = NULL;
    size_t bj_cap = 256 + (size_t)m->n_nodes * (MIXQ_NAME_MAX + 64), bj = 0;
    if (!vname || !(bits_json = malloc(bj_cap))) {
        free(vname);
        free(bits_json);
        return mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path);
    }
    bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, "{");
    for (int i = 0; i < m->n_nodes && !st && !e->fail; i++) {
        mq_node *d = &m->nodes[i];
        const char *x = d->n_in ? vname[d->in[0]] : NULL;
        /* the logits are [N, classes]: a last node with a C x 1 x 1 map (a global pool, say,
         * whose flatten the import folded away) is flattened into them */
        const int last = i == m->n_nodes - 1, flat_last = last && d->op != MIXQ_OP_LINEAR && d->op != MIXQ_OP_FLATTEN;
        const char *out = last && !flat_last ? "logits" : d->name;
        Onnx__NodeProto *n = NULL;
        switch (d->op) {
        case MIXQ_OP_INPUT: vname[i] = embed_preprocess ? embed_preprocess_nodes(e, &m->pp) : "input"; continue;
        case MIXQ_OP_CONV:
        case MIXQ_OP_LINEAR: {
            const mq_tensor *wt = &m->tensors[d->t_w];
            const float *w = mq_tensor_ptr(m, d->t_w);
            int64_t wd[4] = {wt->shape[0], wt->shape[1], wt->ndim > 2 ? wt->shape[2] : 1, wt->ndim > 3 ? wt->shape[3] : 1};
            const char *wname = S(&e->a, "%s.weight", d->name);
            mq_qlayer ql;
            memset(&ql, 0, sizeof ql);
            if (quant) {
                if ((st = mq_qlayer_get(m, i, &ql))) break;
                if (ql.a_bits != MQ_FLOAT_BITS && !(ql.a_clip > 0)) {
                    st = mq_err(MIXQ_ERR_STATE, "layer '%s' is not calibrated; hint: export a model written by "
                                "`mixq quantize` or `mixq search`", d->name);
                    break;
                }
                bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, "%s\"%s\": {\"w_bits\": %d, \"a_bits\": %d",
                                       bj > 1 ? ", " : "", d->name, ql.w_bits, ql.a_bits);
                int mixed = 0;
                for (int k = 1; k < ql.K; k++) mixed |= ql.kbits[k] != ql.kbits[0];
                if (mixed) {
                    size_t need = bj + (size_t)ql.K * 4 + 64;
                    if (need > bj_cap) {
                        char *nb = realloc(bits_json, need * 2);
                        if (!nb) { st = mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path); break; }
                        bits_json = nb, bj_cap = need * 2;
                    }
                    bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, ", \"kernel_bits\": [");
                    for (int k = 0; k < ql.K; k++)
                        bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, "%s%d", k ? "," : "", ql.kbits[k]);
                    bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, "]");
                }
                bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, "}");
                if (bj + 256 > bj_cap) {
                    char *nb = realloc(bits_json, bj_cap * 2);
                    if (!nb) { st = mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path); break; }
                    bits_json = nb, bj_cap *= 2;
                }
            }
            if (quant && ql.codes) {
                /* the b-bit codes of the layer's description in an int8 container, dequantized
                 * per channel (w_q = scale * code exactly) */
                const int64_t numel = wt->numel, K = ql.K;
                const int8_t *qv = ql.codes;
                const float *sc = ql.scale; /* equal entries per layer */
                const int per_layer = ql.gran == MQ_GRAN_LAYER;
                const char *qn = S(&e->a, "%s.weight_q", d->name), *sn = S(&e->a, "%s.weight_scale", d->name),
                           *zn = S(&e->a, "%s.weight_zero_point", d->name);
                einit(e, qn, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, wt->ndim, wd, qv, (size_t)numel);
                int64_t kd = K;
                int8_t *zeros = calloc((size_t)K, 1);
                if (!zeros) {
                    st = mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path);
                    break;
                }
                if (per_layer) {
                    einit_f(e, sn, 0, &kd, sc, 1);
                    einit(e, zn, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 0, &kd, zeros, 1);
                } else {
                    einit_f(e, sn, 1, &kd, sc, K);
                    einit(e, zn, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, &kd, zeros, (size_t)K);
                }
                free(zeros);
                const char *din[3] = {qn, sn, zn};
                Onnx__NodeProto *dq = enode(e, "DequantizeLinear", wname, 3, din, wname);
                if (!per_layer) eattr_i(e, dq, "axis", 0);
            } else {
                einit_f(e, wname, wt->ndim, wd, quant && ql.wq ? ql.wq : w, wt->numel);
            }
            const char *xin = x;
            if (quant && ql.a_bits != MQ_FLOAT_BITS) xin = eact_qdq(e, d->name, x, &ql);
            if (d->op == MIXQ_OP_LINEAR) {
                const mq_node *src = &m->nodes[d->in[0]];
                if (src->op != MIXQ_OP_FLATTEN && src->op != MIXQ_OP_LINEAR) { /* mixq flattens implicitly */
                    const char *fin[1] = {xin};
                    const char *fl = S(&e->a, "%s.flatten", d->name);
                    eattr_i(e, enode(e, "Flatten", fl, 1, fin, fl), "axis", 1);
                    xin = fl;
                }
            }
            const char *in3[3] = {xin, wname, NULL};
            int nin = 2;
            if (d->bias) {
                const mq_tensor *bt = &m->tensors[d->t_b];
                int64_t bd = bt->numel;
                in3[2] = S(&e->a, "%s.bias", d->name);
                nin = 3;
                if (quant && ql.bias_codes) {
                    /* int32 codes on the accumulator grid, scale a_scale * s_w: the form ONNX
                     * Runtime's QDQ fusions take as it is (a float bias they would round
                     * themselves); the same values the fake-quantized model adds */
                    const int K = ql.K, per_layer = ql.gran == MQ_GRAN_LAYER;
                    float *bs = malloc(sizeof(float) * (size_t)K);
                    int32_t *bz = calloc((size_t)K, sizeof(int32_t));
                    if (!bs || !bz) {
                        free(bs);
                        free(bz);
                        st = mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path);
                        break;
                    }
                    for (int k = 0; k < K; k++) bs[k] = ql.a_scale * ql.scale[k];
                    const char *bq = S(&e->a, "%s.bias_q", d->name), *bsn = S(&e->a, "%s.bias_scale", d->name),
                               *bzn = S(&e->a, "%s.bias_zero_point", d->name);
                    int64_t kd = K;
                    einit(e, bq, ONNX_INT32, 1, &bd, ql.bias_codes, sizeof(int32_t) * (size_t)K);
                    einit_f(e, bsn, per_layer ? 0 : 1, &kd, bs, per_layer ? 1 : K);
                    einit(e, bzn, ONNX_INT32, per_layer ? 0 : 1, &kd, bz, sizeof(int32_t) * (size_t)(per_layer ? 1 : K));
                    free(bs);
                    free(bz);
                    const char *bin[3] = {bq, bsn, bzn};
                    Onnx__NodeProto *bdq = enode(e, "DequantizeLinear", in3[2], 3, bin, in3[2]);
                    if (!per_layer) eattr_i(e, bdq, "axis", 0);
                } else {
                    einit_f(e, in3[2], 1, &bd, mq_tensor_ptr(m, d->t_b), bt->numel);
                }
            }
            if (d->op == MIXQ_OP_CONV) {
                n = enode(e, "Conv", d->name, nin, in3, out);
                eattr_window(e, n, &d->geo);
                eattr_ints(e, n, "dilations", 2, 1);
                eattr_i(e, n, "group", d->groups);
            } else {
                n = enode(e, "Gemm", d->name, nin, in3, out);
                eattr_i(e, n, "transB", 1);
            }
            break;
        }
        case MIXQ_OP_BN: {
            const char *in5[5] = {x, S(&e->a, "%s.weight", d->name), S(&e->a, "%s.bias", d->name),
                                  S(&e->a, "%s.running_mean", d->name), S(&e->a, "%s.running_var", d->name)};
            int ts[4] = {d->t_w, d->t_b, d->t_rm, d->t_rv};
            for (int k = 0; k < 4; k++) {
                int64_t c = m->tensors[ts[k]].numel;
                einit_f(e, in5[k + 1], 1, &c, mq_tensor_ptr(m, ts[k]), c);
            }
            n = enode(e, "BatchNormalization", d->name, 5, in5, out);
            eattr_f(e, n, "epsilon", d->bn_eps);
            eattr_f(e, n, "momentum", 1.0f - d->bn_momentum);
            break;
        }
        case MIXQ_OP_RELU: {
            const char *in1[1] = {x};
            n = enode(e, "Relu", d->name, 1, in1, out);
            break;
        }
        case MIXQ_OP_RELU6: {
            int64_t none = 0;
            float lo = 0, hi = 6;
            const char *in3[3] = {x, S(&e->a, "%s.min", d->name), S(&e->a, "%s.max", d->name)};
            einit_f(e, in3[1], 0, &none, &lo, 1);
            einit_f(e, in3[2], 0, &none, &hi, 1);
            n = enode(e, "Clip", d->name, 3, in3, out);
            break;
        }
        case MIXQ_OP_MAXPOOL:
        case MIXQ_OP_AVGPOOL: {
            const char *in1[1] = {x};
            n = enode(e, d->op == MIXQ_OP_MAXPOOL ? "MaxPool" : "AveragePool", d->name, 1, in1, out);
            eattr_window(e, n, &d->geo);
            if (d->op == MIXQ_OP_AVGPOOL) eattr_i(e, n, "count_include_pad", 1);
            break;
        }
        case MIXQ_OP_GAP: {
            const char *in1[1] = {x};
            n = enode(e, "GlobalAveragePool", d->name, 1, in1, out);
            break;
        }
        case MIXQ_OP_FLATTEN: {
            const char *in1[1] = {x};
            n = enode(e, "Flatten", d->name, 1, in1, out);
            eattr_i(e, n, "axis", 1);
            break;
        }
        case MIXQ_OP_ADD:
        case MIXQ_OP_MUL:
        case MIXQ_OP_CONCAT: {
            const char *in2[2] = {x, vname[d->in[1]]};
            n = enode(e, d->op == MIXQ_OP_ADD ? "Add" : d->op == MIXQ_OP_MUL ? "Mul" : "Concat", d->name, 2, in2, out);
            if (d->op == MIXQ_OP_CONCAT) eattr_i(e, n, "axis", 1);
            break;
        }
        case MIXQ_OP_SIGMOID: {
            const char *in1[1] = {x};
            n = enode(e, "Sigmoid", d->name, 1, in1, out);
            break;
        }
        case MIXQ_OP_HSIGMOID:
        case MIXQ_OP_HSWISH: {
            /* hard swish as PyTorch writes it at opset 13: Mul(x, HardSigmoid(x, 1/6, 1/2)) */
            const int sw = d->op == MIXQ_OP_HSWISH;
            const char *in1[1] = {x}, *hs = sw ? S(&e->a, "%s.hardsigmoid", d->name) : out;
            n = enode(e, "HardSigmoid", sw ? hs : d->name, 1, in1, hs);
            eattr_f(e, n, "alpha", sw ? 1.0f / 6 : d->alpha);
            eattr_f(e, n, "beta", sw ? 0.5f : d->beta);
            const char *in2[2] = {x, hs};
            if (sw) n = enode(e, "Mul", d->name, 2, in2, out);
            break;
        }
        default:
            st = mq_err(MIXQ_ERR_UNSUPPORTED, "node '%s': op %s has no ONNX export", d->name, mixq_op_name(d->op));
        }
        vname[i] = out;
        if (flat_last && !st) {
            const char *fin[1] = {out};
            eattr_i(e, enode(e, "Flatten", "logits.flatten", 1, fin, "logits"), "axis", 1);
        }
        (void)n;
    }
    bj += (size_t)snprintf(bits_json + bj, bj_cap - bj, "}");
    /* the model */
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto gp = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto ops = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsp = &ops;
    Onnx__StringStringEntryProto meta[6], *metap[6];
    const mq_node *in0 = &m->nodes[0], *last = &m->nodes[m->n_nodes - 1];
    int64_t idims[4] = {0, in0->c, in0->h, in0->w}, odims[2] = {0, last->c};
    Onnx__ValueInfoProto *vin = NULL, *vout = NULL;
    if (!st && !e->fail) {
        vin = evalue(e, "input", 4, idims);
        vout = evalue(e, "logits", 2, odims);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!st && quant && !mixq_policy_text(mixq_model_policy(m)))
        st = mq_err(MIXQ_ERR_NOMEM, "out of memory writing the policy of '%s'", path);
    if (!st && !e->fail && vin && vout) {
        ops.domain = "";
        ops.has_version = 1, ops.version = 13;
        gp.name = m->arch;
        gp.n_node = e->nn, gp.node = e->nodes;
        gp.n_initializer = e->ni, gp.initializer = e->inits;
        gp.n_input = 1, gp.input = &vin;
        gp.n_output = 1, gp.output = &vout;
        mp.has_ir_version = 1, mp.ir_version = 7;
        mp.producer_name = "mixq";
        mp.producer_version = (char *)mixq_version();
        mp.graph = &gp;
        mp.n_opset_import = 1, mp.opset_import = &opsp;
        const char *keys[6] = {"mixq.version", "mixq.policy", "mixq.bits", "mixq.provenance", "mixq.preprocess",
                               "mixq.holdout"};
        char *vals[6];
        vals[0] = (char *)mixq_version();
        vals[1] = quant ? (char *)mixq_policy_text(mixq_model_policy(m)) : "";
        vals[2] = quant ? bits_json : "{}";
        vals[3] = S(&e->a, "mixq %s export of '%s' (%s, %d-class, input %dx%dx%d)%s", mixq_version(), m->arch,
                    quant ? "quantized: QDQ" : "float", m->cfg.classes, in0->c, in0->h, in0->w,
                    quant ? "; bits from mixq.policy" : "");
        /* how raw pixels become the graph input: the model's transform, or with the transform
         * embedded, the pixels as they are */
        mixq_preprocess raw;
        if (embed_preprocess && mixq_preprocess_preset("raw", in0->c, &raw)) e->fail = 1;
        char *ppj = e->fail ? NULL : mq_pp_json(embed_preprocess ? &raw : &m->pp);
        vals[4] = ppj ? S(&e->a, "%s", ppj) : NULL;
        free(ppj);
        if (!vals[4]) e->fail = 1;
        /* the training images the model was trained without, when it records them */
        char *hoj = m->has_holdout ? mq_holdout_json(&m->holdout) : NULL;
        vals[5] = hoj ? S(&e->a, "%s", hoj) : NULL;
        free(hoj);
        if (m->has_holdout && !vals[5]) e->fail = 1;
        int nm = 0;
        for (int k = 0; k < 6; k++) {
            if ((!quant && (k == 1 || k == 2)) || !vals[k]) continue;
            int j = nm++;
            onnx__string_string_entry_proto__init(&meta[j]);
            meta[j].key = (char *)keys[k];
            meta[j].value = vals[k];
            metap[j] = &meta[j];
        }
        mp.n_metadata_props = (size_t)nm, mp.metadata_props = metap;
        len = onnx__model_proto__get_packed_size(&mp);
        buf = malloc(len ? len : 1);
        if (!buf) st = mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path);
        else onnx__model_proto__pack(&mp, buf);
    }
    if (!st && e->fail) st = mq_err(MIXQ_ERR_NOMEM, "out of memory exporting '%s'", path);
    if (!st) st = mq_write_atomic(path, buf, len);
    free(buf);
    free(vname);
    free(bits_json);
    free(e->nodes);
    free(e->inits);
    arena_free(&e->a);
    return st;
}
