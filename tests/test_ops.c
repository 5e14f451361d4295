/* The operators for MobileNet-V2/V3 and SqueezeNet-style graphs through the whole engine: a
 * graph with a non-square conv with asymmetric pads, a depthwise conv with per-axis strides,
 * hard swish, a squeeze-and-excitation block (GAP, 1x1 convs, hard sigmoid, per-channel mul),
 * sigmoid, channel concatenation, asymmetric average and max pooling and a same-shape mul:
 *   - every parameter's gradient against central differences of the loss, with the activation
 *     pattern frozen (so the loss is smooth) and checked equal to the free forward/backward;
 *   - the graph text and the model file round trip (same text, same logits), the
 *     per-channel factor of a mul goes second, bad graph lines are clear errors;
 *   - quantization: the inputs of the layers after ReLU, sigmoid, hard sigmoid, and after
 *     mul/concat/pools of those are unsigned, after hard swish signed; QAT forward/backward;
 *   - the integer runtime runs the new pointwise ops and asymmetric pools (matching the
 *     fake-quantized model) and refuses an asymmetric conv by name;
 *   - the zoo's mobilenet_v2 and squeezenet at 28x28x1 and 32x32x3: forward, backward, an SGD
 *     step lowers the loss on the batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "mixq/mixq.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "test.h"

#define IN_H 11
#define IN_W 10
#define CLASSES 10
#define NB 3

/* Node numbers are the line numbers after the header (input is node 0). */
static const char ops_graph[] = "mixq_graph 1\n"
                                "input 1 11 10\n"                    /* 0 */
                                "conv c1 0 8 1x3 1 0,1,0,1 1 1\n"    /* 1: 8x11x10 */
                                "bn bn1 1 1e-05 0.1\n"               /* 2 */
                                "hardswish hs1 2\n"                  /* 3 */
                                "conv dw 3 8 3 2x1 1,0,2,1 8 0\n"    /* 4: 8x6x9 */
                                "relu r2 4\n"                        /* 5 */
                                "gap se_pool 5\n"                    /* 6: 8x1x1 */
                                "conv se_fc1 6 4 1 1 0 1 1\n"        /* 7 */
                                "relu se_relu 7\n"                   /* 8 */
                                "conv se_fc2 8 8 1 1 0 1 1\n"        /* 9 */
                                "hardsigmoid se_gate 9 0.166666672 0.5\n" /* 10 */
                                "mul se_mul 5 10\n"                  /* 11: 8x6x9 */
                                "conv sq 11 4 1 1 0 1 0\n"           /* 12 */
                                "sigmoid sg 12\n"                    /* 13 */
                                "conv e3 13 4 3 1 1 1 1\n"           /* 14 */
                                "relu er 14\n"                       /* 15 */
                                "concat cat 13 15\n"                 /* 16: 8x6x9 */
                                "avgpool ap 16 2 2 0,0,1,1\n"        /* 17: 8x3x5 */
                                "maxpool mp 17 2x3 1 0,1,1,1\n"      /* 18: 8x3x5 */
                                "mul sq2 18 18\n"                    /* 19 */
                                "flatten fl 19\n"                    /* 20 */
                                "linear fc 20 10 1\n";               /* 21 */

/* The same operators with square, symmetric convs (what the integer runtime runs). */
static const char rt_graph[] = "mixq_graph 1\n"
                               "input 1 11 10\n"
                               "conv c1 0 8 3 1 1 1 1\n"
                               "bn bn1 1 1e-05 0.1\n"
                               "hardswish hs1 2\n"
                               "conv dw 3 8 3 2 1 8 0\n"
                               "relu r2 4\n"
                               "gap se_pool 5\n"
                               "conv se_fc1 6 4 1 1 0 1 1\n"
                               "relu se_relu 7\n"
                               "conv se_fc2 8 8 1 1 0 1 1\n"
                               "hardsigmoid se_gate 9 0.166666672 0.5\n"
                               "mul se_mul 5 10\n"
                               "conv sq 11 4 1 1 0 1 0\n"
                               "sigmoid sg 12\n"
                               "conv e3 13 4 3 1 1 1 1\n"
                               "relu er 14\n"
                               "concat cat 13 15\n"
                               "avgpool ap 16 2 2 0,0,1,1\n"
                               "maxpool mp 17 2x3 1 0,1,1,1\n"
                               "flatten fl 18\n"
                               "linear fc 19 10 1\n";

static mixq_model *build(const char *text) {
    mixq_model_config cfg = {.arch = "ops_test", .in_c = 1, .in_h = IN_H, .in_w = IN_W, .classes = CLASSES,
                             .seed = 5};
    mixq_model *m = NULL;
    CHECK_OK(mq_graph_build(text, &cfg, "ops graph", &m));
    if (!m) return NULL;
    mq_model_init_weights(m);
    /* batch norm with statistics that are not the identity */
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == MIXQ_OP_BN) {
            const mq_node *n = &m->nodes[i];
            test_fill(mq_tensor_ptr(m, n->t_w), n->c, 31, 0.5f, 1.5f);
            test_fill(mq_tensor_ptr(m, n->t_b), n->c, 32, -0.5f, 0.5f);
            test_fill(mq_tensor_ptr(m, n->t_rm), n->c, 33, -0.2f, 0.2f);
            test_fill(mq_tensor_ptr(m, n->t_rv), n->c, 34, 0.5f, 2.0f);
        }
    /* a squeeze-and-excitation gate far from constant: its parameters' gradients stand out of
     * the float noise of the finite differences */
    float *w1 = mixq_model_tensor_data(m, "se_fc1.weight"), *w2 = mixq_model_tensor_data(m, "se_fc2.weight");
    if (w1 && w2) {
        test_fill(w1, 32, 35, -2, 2);
        test_fill(w2, 32, 36, -2, 2);
    }
    mixq_clear_error();
    return m;
}

typedef struct lossctx {
    mixq_model *m;
    const float *x;
    const int *labels;
} lossctx;

/* The mean cross-entropy of the batch (eval-mode forward, with m->act_pattern if set). */
static void loss_fwd(void *ctx, float *y) {
    lossctx *L = ctx;
    float logits[NB * CLASSES];
    y[0] = NAN;
    if (mixq_model_forward(L->m, L->x, NB, 0, logits)) return;
    mq_softmax_ce_forward(NB, CLASSES, logits, L->labels, 0.0f, NULL, &y[0], NULL);
}

static void test_graph_gradients(void) {
    mixq_model *m = build(ops_graph);
    if (!m) return;
    float x[NB * IN_H * IN_W], logits[NB * CLASSES], frozen[NB * CLASSES], loss;
    int labels[NB] = {0, 3, 4};
    test_fill(x, NB * IN_H * IN_W, 41, -2, 2);
    const mq_node *last = &m->nodes[m->n_nodes - 1];
    CHECK(last->c == CLASSES && m->nodes[4].h == 6 && m->nodes[4].w == 9 && m->nodes[16].c == 8 &&
          m->nodes[17].h == 3 && m->nodes[17].w == 5 && m->nodes[18].h == 3 && m->nodes[18].w == 5);
    CHECK_OK(mixq_model_forward(m, x, NB, 0, logits));
    /* the frozen pattern reproduces the free forward at the point it was recorded */
    uint8_t *pat = malloc(mq_model_pattern_bytes(m, NB));
    CHECK(pat != NULL);
    if (!pat) goto out;
    CHECK_OK(mq_model_pattern_save(m, pat));
    m->act_pattern = pat;
    CHECK_OK(mixq_model_forward(m, x, NB, 0, frozen));
    CHECK(!memcmp(logits, frozen, sizeof logits));
    CHECK_OK(mixq_model_backward(m, labels, 0.0f, &loss));
    float *g_frozen = malloc(sizeof(float) * m->n_params);
    if (g_frozen) memcpy(g_frozen, m->grads, sizeof(float) * m->n_params);
    m->act_pattern = NULL;
    CHECK_OK(mixq_model_forward(m, x, NB, 0, logits));
    CHECK_OK(mixq_model_backward(m, labels, 0.0f, &loss));
    CHECK(isfinite(loss) && loss > 0);
    /* the same gradient with and without the pattern */
    double gd = 0;
    for (size_t i = 0; g_frozen && i < m->n_params; i++) gd = fmax(gd, fabs(g_frozen[i] - m->grads[i]));
    CHECKF(g_frozen && gd < 1e-6, "frozen vs free gradients differ by %.3g", gd);
    free(g_frozen);
    /* every trainable tensor against central differences, the pattern frozen */
    m->act_pattern = pat;
    CHECK_OK(mixq_model_forward(m, x, NB, 0, logits));
    CHECK_OK(mixq_model_backward(m, labels, 0.0f, &loss));
    lossctx L = {m, x, labels};
    const float one = 1.0f;
    for (int t = 0; t < m->n_tensors; t++) {
        const mq_tensor *tt = &m->tensors[t];
        if (!tt->trainable) continue;
        float *p = mq_tensor_ptr(m, t), *g = mq_grad_ptr(m, t), *ga = malloc(sizeof(float) * (size_t)tt->numel);
        if (!ga) continue;
        memcpy(ga, g, sizeof(float) * (size_t)tt->numel);
        double e = gc_check(p, (long)tt->numel, ga, loss_fwd, &L, &one, 1, 1e-2f, 40);
        CHECKF(e < 1e-2, "%s: gradient vs central differences %.3g", tt->name, e);
        free(ga);
    }
    m->act_pattern = NULL;
out:
    free(pat);
    mixq_model_free(m);
}

static void expect_graph_error(const char *line, const char *needle) {
    char text[512];
    snprintf(text, sizeof text, "mixq_graph 1\ninput 2 6 6\nconv a 0 4 3 1 1 1 0\ngap g 1\n%s\n", line);
    mixq_model_config cfg = {.arch = "bad", .in_c = 2, .in_h = 6, .in_w = 6, .classes = 4, .seed = 1};
    mixq_model *m = NULL;
    mixq_status st = mq_graph_plan(text, &cfg, "bad graph", &m);
    CHECKF(st == MIXQ_ERR_FORMAT && !m, "'%s': status %d", line, st);
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "'%s': '%s' lacks '%s'", line, mixq_last_error(), needle);
    mixq_model_free(m);
}

static void test_graph_text(void) {
    mixq_model *m = build(ops_graph);
    if (!m) return;
    char *t = mq_graph_text(m);
    CHECK(t != NULL);
    if (!t) goto out;
    /* the text rebuilds the same graph (and gives the same text) */
    mixq_model_config tcfg = {.arch = "ops_test", .in_c = 1, .in_h = IN_H, .in_w = IN_W, .classes = CLASSES};
    mixq_model *r = NULL;
    CHECK_OK(mq_graph_plan(t, &tcfg, "round trip", &r));
    char *t2 = r ? mq_graph_text(r) : NULL;
    CHECKF(t2 && !strcmp(t, t2), "graph text differs:\n%s", t);
    free(t2);
    mixq_model_free(r);
    CHECK(strstr(t, "\nconv c1 0 8 1x3 1 0,1,0,1 1 1\n") && strstr(t, "\nconv dw 3 8 3 2x1 1,0,2,1 8 0\n") &&
          strstr(t, "\nhardsigmoid se_gate 9 0.166666672 0.5\n") && strstr(t, "\nmaxpool mp 17 2x3 1 0,1,1,1\n") &&
          strstr(t, "\nconcat cat 13 15\n") && strstr(t, "\nhardswish hs1 2\n") && strstr(t, "\nsigmoid sg 12\n"));
    /* a model file with the graph: the same logits */
    float x[NB * IN_H * IN_W], a[NB * CLASSES], b[NB * CLASSES];
    test_fill(x, NB * IN_H * IN_W, 43, -2, 2);
    CHECK_OK(mixq_model_forward(m, x, NB, 0, a));
    char path[1100];
    snprintf(path, sizeof path, "%s/ops.mixq", test_tmpdir());
    CHECK_OK(mixq_model_save(m, path));
    CHECK_OK(mixq_model_load(path, &r));
    if (r) {
        CHECK_OK(mixq_model_forward(r, x, NB, 0, b));
        CHECK(!memcmp(a, b, sizeof a));
        mixq_node_info ni;
        CHECK_OK(mixq_model_node(r, 4, &ni));
        CHECK(ni.kh == 3 && ni.kw == 3 && ni.stride == 2 && ni.stride_w == 1 && ni.pad == 1 && ni.pad_left == 0 &&
              ni.pad_bottom == 2 && ni.pad_right == 1 && ni.groups == 8);
        CHECK_OK(mixq_model_node(r, 11, &ni));
        CHECK(ni.op == MIXQ_OP_MUL && ni.n_inputs == 2 && ni.inputs[0] == 5 && ni.inputs[1] == 10);
    }
    mixq_model_free(r);
    free(t);
    /* a mul given its per-channel factor first takes it second */
    mixq_model_config cfg = {.arch = "swap", .in_c = 2, .in_h = 6, .in_w = 6, .classes = 2, .seed = 1};
    CHECK_OK(mq_graph_plan("mixq_graph 1\ninput 2 6 6\ngap g 0\nmul m 1 0\ngap g2 2\n", &cfg, "swap", &r));
    if (r) CHECK(r->nodes[2].in[0] == 0 && r->nodes[2].in[1] == 1 && r->nodes[2].h == 6);
    mixq_model_free(r);
    /* bad lines */
    expect_graph_error("conv b 1 4 1x 1 0 1 0", "graph line 5 is not a node");
    expect_graph_error("maxpool p 1 2 2 0,0,1", "graph line 5 is not a node");
    expect_graph_error("maxpool p 1 2x3 1 0,2,0,0", "pads 0,2,0,0 invalid");
    expect_graph_error("concat c 1 2", "heights and widths must agree");
    expect_graph_error("mul c 2 0", "one factor per channel");
    expect_graph_error("mul c 1 0", "'a' is 4x6x6 and 'input' is 2x6x6");
    expect_graph_error("hardsigmoid h 1 0 0.5", "alpha 0");
    expect_graph_error("conv b 1 4 3x2 1x0 0 1 0", "strides 1x0");
out:
    mixq_model_free(m);
}

/* An IDX data set of n random images of IN_H x IN_W in dir. */
static mixq_dataset *small_data(const char *name, int n) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    unsigned char *img = malloc((size_t)n * IN_H * IN_W), *lab = malloc((size_t)n);
    mixq_dataset *d = NULL;
    if (img && lab) {
        for (int i = 0; i < n * IN_H * IN_W; i++) img[i] = (unsigned char)((i * 2654435761u) >> 24);
        for (int i = 0; i < n; i++) lab[i] = (unsigned char)(i % CLASSES);
        CHECK(test_write_idx(dir, n, IN_H, IN_W, img, lab) == 0);
        CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_TEST, 0, 1, &d));
    }
    free(img);
    free(lab);
    return d;
}

static void test_quantized(void) {
    mixq_model *m = build(ops_graph);
    mixq_dataset *d = small_data("ops_data", 40);
    mixq_policy *p = NULL;
    const char *pol = "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4}}";
    CHECK_OK(mixq_policy_parse(pol, strlen(pol), "ops policy", &p));
    if (!m || !d || !p) goto out;
    CHECK_OK(mixq_model_quantize(m, p));
    CHECK_OK(mixq_model_calibrate(m, d, 40));
    /* which layer inputs are signed: the data, and hard swish's output */
    static const struct { const char *name; int is_signed; } want[] = {
        {"c1", 1}, {"dw", 1}, {"se_fc1", 0}, {"se_fc2", 0}, {"sq", 0}, {"e3", 0}, {"fc", 0}};
    int seen = 0;
    for (int i = 0; i < mixq_model_quant_layers(m); i++) {
        mixq_layer_quant lq;
        CHECK_OK(mixq_model_quant_layer(m, i, &lq));
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
            if (!strcmp(lq.name, want[k].name)) {
                seen++;
                CHECKF(lq.a_signed == want[k].is_signed, "%s: a_signed %d", lq.name, lq.a_signed);
            }
    }
    CHECK(seen == 7);
    /* quantization-aware training steps run and stay finite */
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.epochs = 1, tc.max_steps = 3, tc.lr = 0.01f, tc.batch = 8;
    CHECK_OK(mixq_train(m, d, NULL, &tc, NULL, NULL));
    float acc;
    CHECK_OK(mixq_evaluate(m, d, 16, &acc, NULL));
    /* the integer runtime refuses the asymmetric conv, naming it */
    mixq_runtime *rt = NULL;
    CHECK(mixq_runtime_create(m, NULL, &rt) == MIXQ_ERR_UNSUPPORTED && !rt);
    CHECKF(strstr(mixq_last_error(), "'c1'") && strstr(mixq_last_error(), "pads 0,1,0,1"), "%s",
           mixq_last_error());
    /* and runs the new pointwise ops and asymmetric pools as the fake-quantized model does */
    mixq_model_free(m);
    m = build(rt_graph);
    if (!m) goto out;
    CHECK_OK(mixq_model_quantize(m, p));
    CHECK_OK(mixq_model_calibrate(m, d, 40));
    CHECK_OK(mixq_runtime_create(m, NULL, &rt));
    if (rt) {
        mixq_runtime_eval ev;
        CHECK_OK(mixq_runtime_evaluate(rt, m, d, 16, &ev));
        printf("  runtime vs fake-quantized model: max logit difference %.3g, %d of %d disagree\n",
               ev.max_logit_diff, (int)ev.disagree, ev.images);
        CHECKF(ev.max_logit_diff < 2e-2, "logit difference %g", ev.max_logit_diff);
    }
    mixq_runtime_free(rt);
out:
    mixq_policy_free(p);
    mixq_dataset_free(d);
    mixq_model_free(m);
}

int main(void) {
    TEST_RUN(test_graph_gradients);
    TEST_RUN(test_graph_text);
    TEST_RUN(test_quantized);
    return test_summary();
}
