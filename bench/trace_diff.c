/* Where the integer runtime and fake quantization part, for the test images whose predicted
 * class differs (what `mixq run` counts as "predictions differing").
 *   trace_diff QMODEL DATA [--threads T] [--images N] [--show N]
 * For each such image it runs both paths once more on that image alone and compares, at the
 * input of every quantized layer, three sets of codes:
 *   - the runtime's own (read through rt_set_trace: the codes the layer sums, or its float
 *     input quantized by its quantizer);
 *   - fake quantization's (its float input quantized by the same formula, quant.h);
 *   - an exact reference: from fake quantization's codes at the previous quantized conv, the
 *     layer summed exactly in integers, carried in double through the batch norm / ReLU /
 *     ReLU6 / max-pool chain and quantized as the consumer does.
 * A value a hair from a half step lands in the neighbouring code in one path or another; the
 * lines printed give each differing code's value in quantization steps on each side. Layers
 * with float rows, k-means weights or a chain through other ops are named and skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixq/mixq.h"
#include "kernels/rt.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "quant/qmodel.h"
#include "quant/quant.h"

static int die(const char *what) {
    fprintf(stderr, "trace_diff: %s: %s\n", what, mixq_last_error());
    return 1;
}

/* The node reading node j's output first in graph order (-1: none), through a flatten. */
static int reader(const mixq_model *m, int j) {
    for (int i = j + 1; i < m->n_nodes; i++)
        if (m->nodes[i].in[0] == j || (m->nodes[i].n_in > 1 && m->nodes[i].in[1] == j))
            return m->nodes[i].op == MIXQ_OP_FLATTEN ? reader(m, i) : i;
    return -1;
}

/* Quantizer code of v at the layer's input (round half to even, clamped), in double. */
static double code_of(double v, const mq_qlayer *q) {
    return fmin(fmax(nearbyint(v / q->a_scale), q->a_qmin), q->a_qmax);
}

/* The exact output of conv node l from its input codes xc, in double: a_scale scale[k] acc + bias. */
static void exact_conv(mixq_model *m, int l, const mq_qlayer *ql, const int *xc, double *v) {
    const mq_node *nl = &m->nodes[l], *in = &m->nodes[nl->in[0]];
    const int C = in->c, H = in->h, W = in->w, K = nl->c, P = nl->h, Q = nl->w;
    const int G = nl->groups > 0 ? nl->groups : 1, Cg = C / G, Kg = K / G;
    const mq_geom g = nl->geo;
    const float *bias = ql->bias ? ql->bias : (nl->t_b >= 0 ? mq_tensor_ptr(m, nl->t_b) : NULL);
    for (int k = 0; k < K; k++) {
        const int8_t *wk = ql->codes + (size_t)k * (size_t)ql->inner;
        const int c0 = (k / Kg) * Cg;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                long long acc = 0;
                for (int ci = 0; ci < Cg; ci++)
                    for (int r = 0; r < g.kh; r++)
                        for (int s = 0; s < g.kw; s++) {
                            const int h = p * g.sh - g.pt + r, w = q * g.sw - g.pl + s;
                            if (h < 0 || h >= H || w < 0 || w >= W) continue;
                            acc += (long long)wk[(ci * g.kh + r) * g.kw + s] * xc[((c0 + ci) * H + h) * W + w];
                        }
                v[((size_t)k * P + p) * Q + q] = (double)ql->a_scale * ql->scale[k] * (double)acc + (bias ? bias[k] : 0);
            }
    }
}

/* Carries v [c][h][w] (node j's output) through BN / ReLU / ReLU6 / max-pool nodes; returns the
 * last node of the chain, or -1 (with the op named) when another op comes first. *v may be
 * replaced (max-pool shrinks it). */
static int chain(mixq_model *m, int j, double **v) {
    for (;;) {
        const int nx = reader(m, j);
        if (nx < 0) return j;
        const mq_node *n = &m->nodes[nx], *prev = &m->nodes[j];
        const int c = prev->c, hw = prev->h * prev->w;
        double *x = *v;
        switch (n->op) {
        case MIXQ_OP_BN: {
            const float *ga = mq_tensor_ptr(m, n->t_w), *be = mq_tensor_ptr(m, n->t_b),
                        *rm = mq_tensor_ptr(m, n->t_rm), *rv = mq_tensor_ptr(m, n->t_rv);
            for (int k = 0; k < c; k++)
                for (int i = 0; i < hw; i++) {
                    double *e = &x[(size_t)k * hw + i];
                    *e = (*e - rm[k]) / sqrt((double)rv[k] + n->bn_eps) * ga[k] + be[k];
                }
            break;
        }
        case MIXQ_OP_RELU:
        case MIXQ_OP_RELU6:
            for (int i = 0; i < c * hw; i++) x[i] = fmin(fmax(x[i], 0), n->op == MIXQ_OP_RELU6 ? 6 : INFINITY);
            break;
        case MIXQ_OP_MAXPOOL: {
            const mq_geom g = n->geo;
            double *o = malloc(sizeof(double) * (size_t)c * n->h * n->w);
            if (!o) return -1;
            for (int k = 0; k < c; k++)
                for (int p = 0; p < n->h; p++)
                    for (int q = 0; q < n->w; q++) {
                        double b = -INFINITY;
                        for (int r = 0; r < g.kh; r++)
                            for (int s = 0; s < g.kw; s++) {
                                const int h = p * g.sh - g.pt + r, w = q * g.sw - g.pl + s;
                                if (h >= 0 && h < prev->h && w >= 0 && w < prev->w)
                                    b = fmax(b, x[((size_t)k * prev->h + h) * prev->w + w]);
                            }
                        o[((size_t)k * n->h + p) * n->w + q] = b;
                    }
            free(x);
            *v = o;
            break;
        }
        case MIXQ_OP_CONV:
        case MIXQ_OP_LINEAR:
            return j;
        default:
            printf("  %s: the chain meets %s (%s), not followed\n", m->nodes[j].name, n->name, mixq_op_name(n->op));
            return -1;
        }
        j = nx;
    }
}

/* The runtime's codes at each layer's input for one image (rt_set_trace): code[node], signed
 * (a_off taken off), NCHW order; NULL where the layer was not seen or takes floats. */
typedef struct rt_codes {
    int n_nodes;
    int **code;
    int fail;
} rt_codes;

static void on_layer(void *user, const rt_conv *c, const void *x, int n) {
    rt_codes *r = user;
    if (n != 1 || c->a_float || c->node < 0 || c->node >= r->n_nodes) return;
    int *q = malloc(sizeof(int) * (size_t)c->C * c->H * c->W);
    if (!q || rt_input_codes(c, x, q)) {
        free(q);
        r->fail = 1;
        return;
    }
    free(r->code[c->node]);
    r->code[c->node] = q;
}

/* One image (already forwarded by the fake-quantized model and by the runtime into rc): every
 * quantized conv's codes at its consumer, exact against fake; then the runtime's codes at every
 * quantized layer's input against fake's (with the exact value where it was computed). */
static void trace_image(mixq_model *m, const float *x, int show, const rt_codes *rc) {
    double **ex = calloc((size_t)m->n_nodes, sizeof(double *)); /* exact steps at a node's input */
    if (!ex) return;
    for (int l = 1; l < m->n_nodes; l++) {
        const mq_node *nl = &m->nodes[l];
        mq_qlayer ql, qn;
        if (nl->op != MIXQ_OP_CONV || mq_qlayer_get(m, l, &ql) || ql.a_bits > 8) continue;
        int flt = !ql.codes || ql.kmeans;
        for (int k = 0; k < ql.K && !flt; k++) flt = ql.kbits[k] > 8;
        if (flt) {
            printf("  %s: float rows or k-means weights, skipped\n", nl->name);
            continue;
        }
        const mq_node *in = &m->nodes[nl->in[0]];
        const size_t nin = (size_t)in->c * in->h * in->w, nout = (size_t)nl->c * nl->h * nl->w;
        const float *xin = nl->in[0] == 0 ? x : in->y;
        int *xc = malloc(sizeof(int) * nin);
        double *v = malloc(sizeof(double) * nout);
        if (!xc || !v) {
            free(xc), free(v);
            break;
        }
        for (size_t i = 0; i < nin; i++) /* the quantizer's own code (quant.h) */
            xc[i] = (int)mq_act_code(xin[i], ql.a_scale, (float)ql.a_qmin, (float)ql.a_qmax);
        exact_conv(m, l, &ql, xc, v);
        const int j = chain(m, l, &v), cons = j >= 0 ? reader(m, j) : -1;
        if (j >= 0 && (cons < 0 || mq_qlayer_get(m, cons, &qn) || qn.a_bits > 8))
            printf("  %s: no quantized layer reads it\n", nl->name);
        else if (j >= 0) {
            const mq_node *nj = &m->nodes[j];
            const int n = nj->c * nj->h * nj->w;
            int mis = 0;
            if ((ex[cons] = malloc(sizeof(double) * (size_t)n)))
                for (int i = 0; i < n; i++) ex[cons][i] = v[i] / qn.a_scale;
            for (int i = 0; i < n; i++) {
                const float f = nj->y[i];
                const double qe = code_of(v[i], &qn);
                const float qf = mq_act_code(f, qn.a_scale, (float)qn.a_qmin, (float)qn.a_qmax);
                if (qe == (double)qf) continue;
                if (++mis <= show)
                    printf("  %s -> %s: channel %d, position %d: exact %.9g = %.7f steps (code %g); fake %.9g "
                           "= %.7f steps (code %g)\n",
                           nl->name, m->nodes[cons].name, i / (nj->h * nj->w), i % (nj->h * nj->w), v[i],
                           v[i] / qn.a_scale, qe, (double)f, (double)f / qn.a_scale, (double)qf);
            }
            printf("  %s -> %s: %d of %d codes differ\n", nl->name, m->nodes[cons].name, mis, n);
        }
        free(xc), free(v);
    }
    /* the runtime's own codes against fake quantization's */
    for (int l = 1; l < m->n_nodes; l++) {
        const mq_node *nl = &m->nodes[l];
        mq_qlayer ql;
        if ((nl->op != MIXQ_OP_CONV && nl->op != MIXQ_OP_LINEAR) || mq_qlayer_get(m, l, &ql) || ql.a_bits > 8)
            continue;
        if (!rc->code[l]) {
            printf("  runtime at %s's input: not read (float input)\n", nl->name);
            continue;
        }
        const mq_node *in = &m->nodes[nl->in[0]];
        const int n = in->c * in->h * in->w;
        int mis = 0;
        for (int i = 0; i < n; i++) {
            const float f = in->y[i];
            const int qf = (int)mq_act_code(f, ql.a_scale, (float)ql.a_qmin, (float)ql.a_qmax);
            if (qf == rc->code[l][i]) continue;
            if (++mis > show) continue;
            printf("  runtime at %s's input: channel %d, position %d: runtime code %d; fake %.7f steps (code %d)",
                   nl->name, i / (in->h * in->w), i % (in->h * in->w), rc->code[l][i], (double)f / ql.a_scale, qf);
            if (ex[l]) printf("; exact %.7f steps (code %g)", ex[l][i], code_of(ex[l][i] * ql.a_scale, &ql));
            printf("\n");
        }
        printf("  runtime at %s's input: %d of %d codes differ from fake quantization's\n", nl->name, mis, n);
    }
    for (int l = 0; l < m->n_nodes; l++) free(ex[l]);
    free(ex);
}

int main(int argc, char **argv) {
    if (argc < 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: trace_diff QMODEL DATA [--threads T] [--images N] [--show N]\n");
        return 2;
    }
    int threads = 0, images = 0, show = 5;
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "trace_diff: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--images")) images = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--show")) show = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "trace_diff: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (threads && mixq_set_threads(threads)) return die("threads");
    mixq_model *m = NULL;
    mixq_dataset *d = NULL;
    mixq_runtime *rt = NULL;
    mixq_runtime_config rc;
    mixq_runtime_config_default(&rc);
    if (mixq_model_load(argv[1], &m)) return die(argv[1]);
    if (mixq_dataset_load(argv[2], MIXQ_SPLIT_TEST, 0, 1, &d)) return die(argv[2]);
    if (images > 0 && images < mixq_dataset_count(d) && mixq_dataset_truncate(d, images)) return die("--images");
    if (mixq_runtime_create(m, &rc, &rt)) return die("runtime");
    mixq_preprocess pp;
    mixq_model_preprocess(m, &pp); /* as mixq_runtime_evaluate reads it */
    int c, h, w, classes;
    mixq_dataset_shape(d, &c, &h, &w, &classes);
    const int n = mixq_dataset_count(d), B = 100, nc = m->cfg.classes;
    const size_t per = (size_t)c * h * w;
    float *x = malloc(sizeof(float) * B * per), *lg = malloc(sizeof(float) * B * nc), *lr = malloc(sizeof(float) * B * nc);
    int *lab = malloc(sizeof(int) * B), differ = 0;
    if (!x || !lg || !lr || !lab) return 1;
    for (int s = 0; s < n; s += B) {
        const int nb = n - s < B ? n - s : B;
        if (mixq_dataset_batch(d, &pp, s, nb, x, lab) || mixq_runtime_forward(rt, x, nb, lg) ||
            mixq_model_forward(m, x, nb, 0, lr))
            return die("forward");
        for (int i = 0; i < nb; i++) {
            const int pr = mq_argmax(lg + (size_t)i * nc, nc), pf = mq_argmax(lr + (size_t)i * nc, nc);
            if (pr == pf) continue;
            differ++;
            const float *a = lg + (size_t)i * nc, *b = lr + (size_t)i * nc;
            printf("image %d (label %d): runtime class %d, fake quantization class %d (logits of the two: runtime "
                   "%.6g, %.6g; fake %.6g, %.6g)\n", s + i, lab[i], pr, pf, (double)a[pr], (double)a[pf], (double)b[pr],
                   (double)b[pf]);
            float *xi = malloc(sizeof(float) * per), lf[1024];
            if (!xi || nc > 1024) return 1;
            memcpy(xi, x + (size_t)i * per, sizeof(float) * per);
            rt_codes rcd = {m->n_nodes, calloc((size_t)m->n_nodes, sizeof(int *)), 0};
            float lt[1024];
            if (!rcd.code) return 1;
            rt_set_trace(rt, on_layer, &rcd);
            if (mixq_runtime_forward(rt, xi, 1, lt)) return die("runtime forward");
            rt_set_trace(rt, NULL, NULL);
            if (rcd.fail) return 1;
            if (mixq_model_forward(m, xi, 1, 0, lf)) return die("forward");
            trace_image(m, xi, show, &rcd);
            printf("  alone: runtime logits %.6g, %.6g; fake %.6g, %.6g\n", (double)lt[pr], (double)lt[pf],
                   (double)lf[pr], (double)lf[pf]);
            for (int l = 0; l < m->n_nodes; l++) free(rcd.code[l]);
            free(rcd.code);
            free(xi);
        }
    }
    printf("%d of %d predictions differ\n", differ, n);
    free(x), free(lg), free(lr), free(lab);
    mixq_runtime_free(rt), mixq_model_free(m), mixq_dataset_free(d);
    return 0;
}
