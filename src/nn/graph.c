/* Graph descriptions: a model's nodes as text, one builder call per line, for models that are
 * not in the zoo (ONNX imports). Format (version 1), node indices refer to earlier lines:
 *
 *   mixq_graph 1
 *   input C H W
 *   conv NAME IN K_OUT KSIZE STRIDE PAD GROUPS BIAS
 *   linear NAME IN OUT BIAS
 *   bn NAME IN EPS MOMENTUM
 *   relu NAME IN            relu6 NAME IN
 *   sigmoid NAME IN         hardswish NAME IN        hardsigmoid NAME IN ALPHA BETA
 *   maxpool NAME IN K STRIDE PAD        avgpool NAME IN K STRIDE PAD
 *   gap NAME IN             flatten NAME IN
 *   add NAME A B            mul NAME A B             concat NAME A B
 *
 * KSIZE / K is "3" (square) or "1x3" (rows x columns), STRIDE "2" or "2x1" (rows x columns), PAD
 * "1" (every side) or "0,1,1,2" (top, left, bottom, right): a square, symmetric window is
 * written as in the first version of the format. Names contain no whitespace. Parsing is
 * strict: a bad line is an error naming it. */
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"

/* The window of g as three tokens (kernel, strides, pads), written into k, s, p. */
static void geom_tokens(const mq_geom *g, char k[32], char s[32], char p[48]) {
    if (g->kh == g->kw) snprintf(k, 32, "%d", g->kh);
    else snprintf(k, 32, "%dx%d", g->kh, g->kw);
    if (g->sh == g->sw) snprintf(s, 32, "%d", g->sh);
    else snprintf(s, 32, "%dx%d", g->sh, g->sw);
    if (g->pt == g->pl && g->pt == g->pb && g->pt == g->pr) snprintf(p, 48, "%d", g->pt);
    else snprintf(p, 48, "%d,%d,%d,%d", g->pt, g->pl, g->pb, g->pr);
}

/* "A" or "AxB" (strictly: digits, optional sign): 1 on success. */
static int parse_pair(const char *t, int *a, int *b) {
    int k = 0;
    if (sscanf(t, "%d%n", a, &k) == 1 && !t[k]) {
        *b = *a;
        return 1;
    }
    return sscanf(t, "%dx%d%n", a, b, &k) == 2 && !t[k];
}

/* "P" or "T,L,B,R". */
static int parse_pads(const char *t, int p[4]) {
    int k = 0;
    if (sscanf(t, "%d%n", &p[0], &k) == 1 && !t[k]) {
        p[1] = p[2] = p[3] = p[0];
        return 1;
    }
    return sscanf(t, "%d,%d,%d,%d%n", &p[0], &p[1], &p[2], &p[3], &k) == 4 && !t[k];
}

/* The window from its three tokens; 0 if one is malformed. */
static int parse_geom(const char *k, const char *s, const char *p, mq_geom *g) {
    int pads[4];
    if (!parse_pair(k, &g->kh, &g->kw) || !parse_pair(s, &g->sh, &g->sw) || !parse_pads(p, pads)) return 0;
    g->pt = pads[0], g->pl = pads[1], g->pb = pads[2], g->pr = pads[3];
    return 1;
}

char *mq_graph_text(const mixq_model *m) {
    size_t cap = 64 + (size_t)m->n_nodes * (MIXQ_NAME_MAX + 160), n = 0;
    char *t = mq_malloc(cap, 1, "graph text");
    if (!t) return NULL;
    n += (size_t)snprintf(t + n, cap - n, "mixq_graph 1\n");
    for (int i = 0; i < m->n_nodes; i++) {
        const mq_node *d = &m->nodes[i];
        const char *nm = d->name;
        int a = d->n_in > 0 ? d->in[0] : -1;
        char gk[32], gs[32], gp[48];
        geom_tokens(&d->geo, gk, gs, gp);
        switch (d->op) {
        case MIXQ_OP_INPUT: n += (size_t)snprintf(t + n, cap - n, "input %d %d %d\n", d->c, d->h, d->w); break;
        case MIXQ_OP_CONV:
            n += (size_t)snprintf(t + n, cap - n, "conv %s %d %d %s %s %s %d %d\n", nm, a, d->c, gk, gs, gp,
                                  d->groups, d->bias);
            break;
        case MIXQ_OP_LINEAR: n += (size_t)snprintf(t + n, cap - n, "linear %s %d %d %d\n", nm, a, d->c, d->bias); break;
        case MIXQ_OP_BN:
            n += (size_t)snprintf(t + n, cap - n, "bn %s %d %.9g %.9g\n", nm, a, (double)d->bn_eps, (double)d->bn_momentum);
            break;
        case MIXQ_OP_RELU: n += (size_t)snprintf(t + n, cap - n, "relu %s %d\n", nm, a); break;
        case MIXQ_OP_RELU6: n += (size_t)snprintf(t + n, cap - n, "relu6 %s %d\n", nm, a); break;
        case MIXQ_OP_MAXPOOL:
        case MIXQ_OP_AVGPOOL:
            n += (size_t)snprintf(t + n, cap - n, "%s %s %d %s %s %s\n", d->op == MIXQ_OP_MAXPOOL ? "maxpool" : "avgpool",
                                  nm, a, gk, gs, gp);
            break;
        case MIXQ_OP_GAP: n += (size_t)snprintf(t + n, cap - n, "gap %s %d\n", nm, a); break;
        case MIXQ_OP_FLATTEN: n += (size_t)snprintf(t + n, cap - n, "flatten %s %d\n", nm, a); break;
        case MIXQ_OP_ADD:
        case MIXQ_OP_MUL:
        case MIXQ_OP_CONCAT:
            n += (size_t)snprintf(t + n, cap - n, "%s %s %d %d\n", mixq_op_name(d->op), nm, a, d->in[1]);
            break;
        case MIXQ_OP_SIGMOID:
        case MIXQ_OP_HSWISH: n += (size_t)snprintf(t + n, cap - n, "%s %s %d\n", mixq_op_name(d->op), nm, a); break;
        case MIXQ_OP_HSIGMOID:
            n += (size_t)snprintf(t + n, cap - n, "hardsigmoid %s %d %.9g %.9g\n", nm, a, (double)d->alpha,
                                  (double)d->beta);
            break;
        default:
            free(t);
            mq_err(MIXQ_ERR_UNSUPPORTED, "node '%s': op %d has no graph description", nm, (int)d->op);
            return NULL;
        }
    }
    return t;
}

static mixq_status graph_build(const char *text, const mixq_model_config *cfg, const char *origin, int alloc,
                               mixq_model **out) {
    *out = NULL;
    mixq_model *m = mq_model_new(cfg);
    if (!m) return MIXQ_ERR_NOMEM;
    m->custom_graph = 1;
    mixq_status st = MIXQ_OK;
    int line = 0;
    const char *p = text;
    char buf[256];
    while (*p && !st) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (len >= sizeof buf) {
            st = mq_err(MIXQ_ERR_FORMAT, "%s: graph line %d is too long", origin, line);
            break;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        p += len + (nl ? 1 : 0);
        char op[16], name[MIXQ_NAME_MAX], tk[3][48];
        int v[7], idx = -2, k = 0;
        float eps, mom;
        mq_geom g;
        if (line == 1) {
            if (strcmp(buf, "mixq_graph 1"))
                st = mq_err(MIXQ_ERR_FORMAT, "%s: not a version-1 graph description", origin);
            continue;
        }
        if (sscanf(buf, "%15s", op) != 1) continue;
        if (!strcmp(op, "input") && sscanf(buf, "input %d %d %d%n", &v[0], &v[1], &v[2], &k) == 3 && !buf[k])
            idx = mq_add_input(m, v[0], v[1], v[2]);
        else if (!strcmp(op, "conv") &&
                 sscanf(buf, "conv %63s %d %d %47s %47s %47s %d %d%n", name, &v[0], &v[1], tk[0], tk[1], tk[2], &v[5],
                        &v[6], &k) == 8 && !buf[k] && parse_geom(tk[0], tk[1], tk[2], &g))
            idx = mq_add_conv_g(m, name, v[0], v[1], &g, v[5], v[6]);
        else if (!strcmp(op, "linear") && sscanf(buf, "linear %63s %d %d %d%n", name, &v[0], &v[1], &v[2], &k) == 4 && !buf[k])
            idx = mq_add_linear(m, name, v[0], v[1], v[2]);
        else if (!strcmp(op, "bn") && sscanf(buf, "bn %63s %d %g %g%n", name, &v[0], &eps, &mom, &k) == 4 && !buf[k]) {
            idx = mq_add_bn(m, name, v[0]);
            if (idx >= 0) m->nodes[idx].bn_eps = eps, m->nodes[idx].bn_momentum = mom;
        } else if ((!strcmp(op, "relu") || !strcmp(op, "relu6") || !strcmp(op, "sigmoid") || !strcmp(op, "hardswish")) &&
                   sscanf(buf, "%*s %63s %d%n", name, &v[0], &k) == 2 && !buf[k])
            idx = mq_add_act(m, name,
                             !strcmp(op, "relu")      ? MIXQ_OP_RELU
                             : !strcmp(op, "relu6")   ? MIXQ_OP_RELU6
                             : !strcmp(op, "sigmoid") ? MIXQ_OP_SIGMOID
                                                      : MIXQ_OP_HSWISH,
                             v[0]);
        else if (!strcmp(op, "hardsigmoid") && sscanf(buf, "hardsigmoid %63s %d %g %g%n", name, &v[0], &eps, &mom, &k) == 4 &&
                 !buf[k])
            idx = mq_add_hsigmoid(m, name, v[0], eps, mom);
        else if ((!strcmp(op, "maxpool") || !strcmp(op, "avgpool")) &&
                 sscanf(buf, "%*s %63s %d %47s %47s %47s%n", name, &v[0], tk[0], tk[1], tk[2], &k) == 5 && !buf[k] &&
                 parse_geom(tk[0], tk[1], tk[2], &g))
            idx = mq_add_pool_g(m, name, !strcmp(op, "maxpool") ? MIXQ_OP_MAXPOOL : MIXQ_OP_AVGPOOL, v[0], &g);
        else if (!strcmp(op, "gap") && sscanf(buf, "gap %63s %d%n", name, &v[0], &k) == 2 && !buf[k])
            idx = mq_add_gap(m, name, v[0]);
        else if (!strcmp(op, "flatten") && sscanf(buf, "flatten %63s %d%n", name, &v[0], &k) == 2 && !buf[k])
            idx = mq_add_flatten(m, name, v[0]);
        else if ((!strcmp(op, "add") || !strcmp(op, "mul") || !strcmp(op, "concat")) &&
                 sscanf(buf, "%*s %63s %d %d%n", name, &v[0], &v[1], &k) == 3 && !buf[k])
            idx = !strcmp(op, "add")   ? mq_add_add(m, name, v[0], v[1])
                  : !strcmp(op, "mul") ? mq_add_mul(m, name, v[0], v[1])
                                       : mq_add_concat(m, name, v[0], v[1]);
        if (idx == -2) st = mq_err(MIXQ_ERR_FORMAT, "%s: graph line %d is not a node: '%s'", origin, line, buf);
        else if (idx < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", mixq_last_error());
            st = mq_err(MIXQ_ERR_FORMAT, "%s: graph line %d: %s", origin, line, msg);
        }
    }
    if (!st) st = alloc ? mq_model_finalize(m) : mq_model_layout(m);
    if (st) {
        mixq_model_free(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

mixq_status mq_graph_build(const char *text, const mixq_model_config *cfg, const char *origin,
                           mixq_model **out) {
    return graph_build(text, cfg, origin, 1, out);
}
mixq_status mq_graph_plan(const char *text, const mixq_model_config *cfg, const char *origin,
                          mixq_model **out) {
    return graph_build(text, cfg, origin, 0, out);
}
