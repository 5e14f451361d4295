/* Policies and quantized models: precedence, every bad-policy case (with the offending entry
 * and line in the message), per-kernel bits honoured in the model, calibration, accounting,
 * save/load of a quantized model, batch-norm folding equivalence, determinism (seed and
 * thread count). */
#include <math.h>
#include <omp.h>

#include "data/data.h"
#include "mixq/mixq.h"
#include "quant/qmodel.h"
#include "test.h"

static mixq_model *make(const char *arch, int c, int hw, uint64_t seed) {
    mixq_model_config mc = {.arch = arch, .in_c = c, .in_h = hw, .in_w = hw, .classes = 10,
                            .width = 1, .seed = seed};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    return m;
}

static mixq_policy *parse(const char *json) {
    mixq_policy *p = NULL;
    CHECK_OK(mixq_policy_parse(json, strlen(json), "test.json", &p));
    return p;
}

/* Layer `name` of a quantized model. */
static int layer(const mixq_model *m, const char *name, mixq_layer_quant *l) {
    for (int i = 0; i < mixq_model_quant_layers(m); i++)
        if (!mixq_model_quant_layer(m, i, l) && !strcmp(l->name, name)) return 1;
    CHECKF(0, "no quantized layer '%s'", name);
    return 0;
}

static void test_precedence(void) {
    mixq_model *m = make("resnet20", 1, 16, 1);
    mixq_policy *p = parse(
        "{\n"
        "  \"mixq_policy\": 1,\n"
        "  \"default\": {\"w_bits\": 6, \"a_bits\": 6},\n"
        "  \"rules\": [\n"
        "    {\"layer\": \"layer3.0.conv1\", \"w_bits\": 2},\n"
        "    {\"match\": \"layer3.*\", \"w_bits\": 3, \"a_bits\": 4},\n"
        "    {\"op\": \"conv\", \"w_bits\": 4, \"granularity\": \"layer\"},\n"
        "    {\"match\": \"layer3.0.*\", \"w_bits\": 5}\n"
        "  ],\n"
        "  \"layers\": {\"fc\": {\"w_bits\": 8, \"a_bits\": 32, \"w_clip\": \"mse\"}}\n"
        "}\n");
    if (!m || !p) goto out;
    CHECK_OK(mixq_model_quantize(m, p));
    CHECK(mixq_model_quant_layers(m) == 22); /* 21 convs (incl. 2 projections) + fc */
    mixq_layer_quant l;
    /* exact beats globs beats op beats default, whatever the file order */
    if (layer(m, "layer3.0.conv1", &l)) CHECK(l.w_bits == 2 && l.a_bits == 4 && l.granularity == MIXQ_GRAN_LAYER);
    if (layer(m, "layer3.0.conv2", &l)) CHECK(l.w_bits == 5 && l.a_bits == 4); /* later glob wins */
    if (layer(m, "layer3.1.conv1", &l)) CHECK(l.w_bits == 3 && l.a_bits == 4);
    if (layer(m, "layer1.0.conv1", &l)) CHECK(l.w_bits == 4 && l.a_bits == 6 && l.a_signed == 0);
    if (layer(m, "conv1", &l)) CHECK(l.w_bits == 4 && l.a_signed == 1); /* the image is signed */
    if (layer(m, "fc", &l)) {
        CHECK(l.w_bits == 8 && l.a_bits == 32 && l.granularity == MIXQ_GRAN_CHANNEL);
        CHECK(!strcmp(l.w_clip_method, "mse"));
    }
    if (layer(m, "layer2.0.downsample.0", &l)) CHECK(l.w_bits == 4 && !strcmp(l.w_clip_method, "mse"));
    /* built-in defaults: W8A8, per channel, max clip at 8 bits */
    mixq_policy *q = parse("{\"mixq_policy\": 1}");
    if (q) {
        CHECK_OK(mixq_model_quantize(m, q));
        if (layer(m, "layer2.1.conv2", &l))
            CHECK(l.w_bits == 8 && l.a_bits == 8 && l.granularity == MIXQ_GRAN_CHANNEL &&
                  !strcmp(l.a_clip_method, "max"));
    }
    mixq_policy_free(q);
out:
    mixq_policy_free(p);
    mixq_model_free(m);
}

/* The policy must fail to parse (or to apply to m) with a message holding both needles. */
static void bad(mixq_model *m, const char *json, const char *n1, const char *n2) {
    mixq_policy *p = NULL;
    mixq_status st = mixq_policy_parse(json, strlen(json), "bad.json", &p);
    if (!st) {
        CHECKF(p != NULL, "parse returned OK without a policy");
        st = mixq_model_quantize(m, p);
        CHECKF(!mixq_model_is_quantized(m), "a failed quantize left the model quantized");
    } else {
        CHECKF(p == NULL, "failed parse left a policy");
    }
    CHECKF(st != MIXQ_OK, "policy accepted:\n%s", json);
    const char *e = mixq_last_error();
    CHECKF(strstr(e, n1) && strstr(e, n2), "message '%s' lacks '%s' / '%s'", e, n1, n2);
    mixq_policy_free(p);
}

static void test_bad_policies(void) {
    mixq_model *m = make("resnet20", 1, 16, 1);
    if (!m) return;
    bad(m, "{\"mixq_policy\": 1,\n \"default\": {\"w_bits\": 4,}\n}", "line 2", "malformed JSON");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4", "line 1", "malformed JSON");
    bad(m, "", "line 1", "malformed");
    bad(m, "[1, 2]", "line 1", "object");
    bad(m, "{\"default\": {}}", "line 1", "mixq_policy");
    bad(m, "{\"mixq_policy\": 2}", "line 1", "version");
    bad(m, "{\"mixq_policy\": 1,\n\n \"defaults\": {}}", "line 3", "unknown key \"defaults\"");
    bad(m, "{\"mixq_policy\": 1,\n \"default\": {\"w_bits\": 4,\n \"abits\": 4}}", "line 3",
        "unknown key \"abits\"");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 0}}", "default.w_bits", "0 bits");
    /* found by tests/fuzz (issue 15): a repeated key's per-kernel bits leaked the first array */
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"conv1\": {\"w_bits\": [4, 4], \"w_bits\": [2, 2]}}}",
        "layers.conv1.w_bits", "given twice");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"a_bits\": 9}}", "default.a_bits", "9 bits");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"a_bits\": 16}}", "a_bits", "16 bits");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4.5}}", "w_bits", "integer");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": \"8\"}}", "w_bits", "integer");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"granularity\": \"tensor\"}}", "granularity",
        "layer, channel, kernel");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_clip\": \"percentile\"}}", "w_clip", "auto, max");
    bad(m, "{\"mixq_policy\": 1,\n \"rules\": [\n {\"op\": \"conv\"},\n {\"match\": \"layer9.*\", \"w_bits\": 4}]}",
        "rules[1] (line 4)", "matches no layer");
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"layer1.0.conv3\": {\"w_bits\": 4}}}",
        "layers.layer1.0.conv3", "matches no layer");
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"layer1.0.bn1\": {\"w_bits\": 4}}}", "layer1.0.bn1",
        "batchnorm");
    bad(m, "{\"mixq_policy\": 1, \"rules\": [{\"op\": \"batchnorm\", \"w_bits\": 4}]}", "rules[0]",
        "not quantizable");
    bad(m, "{\"mixq_policy\": 1, \"rules\": [{\"op\": \"conv\", \"layer\": \"fc\"}]}", "rules[0]",
        "exactly one of");
    bad(m, "{\"mixq_policy\": 1, \"rules\": [{\"w_bits\": 4}]}", "rules[0]", "exactly one of");
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"conv1\": {\"w_bits\": [4, 4, 4]}}}", "conv1",
        "3 per-kernel w_bits but layer 'conv1' has 16 output channels");
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"conv1\": {\"w_bits\": [4, 4], \"granularity\": \"channel\"}}}",
        "conv1", "granularity");
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"conv1\": {\"w_bits\": [4, 0, 4]}}}", "w_bits[1]", "0 bits");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": [4, 4]}}", "default", "per-kernel");
    /* a policy file that does not exist / is truncated on disk */
    mixq_policy *p = NULL;
    CHECK(mixq_policy_load("/nonexistent/p.json", &p) == MIXQ_ERR_IO && !p);
    char path[1024];
    snprintf(path, sizeof path, "%s/trunc.json", test_tmpdir());
    test_write_file(path, "{\"mixq_policy\": 1, \"rules\": [", 29);
    CHECK(mixq_policy_load(path, &p) == MIXQ_ERR_FORMAT && !p);
    CHECK(strstr(mixq_last_error(), "trunc.json") != NULL);
    mixq_model_free(m);
}

static int distinct(const float *x, int64_t n) {
    float seen[300];
    int k = 0;
    for (int64_t i = 0; i < n; i++) {
        int f = 0;
        for (int j = 0; j < k && !f; j++) f = seen[j] == x[i];
        if (!f) {
            if (k == 300) return 301;
            seen[k++] = x[i];
        }
    }
    return k;
}

static void test_per_kernel_in_model(void) {
    mixq_model *m = make("resnet20", 1, 8, 3);
    if (!m) return;
    /* layer3.0.conv1: 64 filters of 32x3x3 = 288 weights; bits cycle 1..8 */
    char json[2048];
    int off = snprintf(json, sizeof json, "{\"mixq_policy\": 1, \"default\": {\"a_bits\": 32}, "
                       "\"layers\": {\"layer3.0.conv1\": {\"w_bits\": [");
    for (int k = 0; k < 64; k++) off += snprintf(json + off, sizeof json - (size_t)off, "%s%d", k ? "," : "", 1 + k % 8);
    snprintf(json + off, sizeof json - (size_t)off, "]}}}");
    mixq_policy *p = parse(json);
    if (p) {
        CHECK_OK(mixq_model_quantize(m, p));
        float x[2 * 64];
        test_fill(x, 2 * 64, 1, -1, 1);
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        int node = -1;
        for (int i = 0; i < mixq_model_node_count(m); i++) {
            mixq_node_info ni;
            mixq_model_node(m, i, &ni);
            if (!strcmp(ni.name, "layer3.0.conv1")) node = i;
        }
        const float *wq = mq_quant_weights(m, node);
        CHECK(wq != NULL);
        for (int k = 0; wq && k < 64; k++) {
            int b = 1 + k % 8, lv = distinct(wq + k * 288, 288), most = b == 1 ? 2 : (1 << b) - 1;
            /* at most 2^b - 1 levels, and more than b - 1 bits could give */
            int least = b == 1 ? 2 : b <= 5 ? (1 << (b - 1)) : 32;
            CHECKF(lv <= most && lv >= least, "filter %d (%d bits): %d levels", k, b, lv);
        }
        mixq_layer_quant l;
        if (layer(m, "layer3.0.conv1", &l)) {
            double want = 0;
            for (int k = 0; k < 64; k++) want += 288.0 * (1 + k % 8);
            CHECK(l.granularity == MIXQ_GRAN_KERNEL && l.w_bits == 8 && l.weight_bits == want);
            CHECK(l.size_bits == want + 32.0 * (64 + 64)); /* scales + folded BN shift; A float */
            CHECK(l.bitops == (double)l.macs / 64 * (want / 288.0) * 32);
        }
    }
    mixq_policy_free(p);
    mixq_model_free(m);
}

/* A tiny IDX dataset directory (24 images of 8x8) for calibration. */
static const char *tiny_dataset(void) {
    static char dir[1024];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/tiny", test_tmpdir());
    unsigned char img[64 * 64], lab[64];
    for (int i = 0; i < 64; i++) {
        lab[i] = (unsigned char)(i % 10);
        for (int k = 0; k < 64; k++) img[i * 64 + k] = (unsigned char)((i * 37 + k * 11 + (k % 8 < i % 10 ? 90 : 0)) & 255);
    }
    CHECK(test_write_idx(dir, 64, 8, 8, img, lab) == 0);
    return dir;
}

static void test_calibrate_save_load(void) {
    mixq_model *m = make("resnet20", 1, 8, 5), *m2 = NULL;
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
    mixq_policy *p = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4},"
                           " \"layers\": {\"conv1\": {\"w_bits\": 8, \"a_bits\": 8, \"a_clip\": \"kl\"}}}");
    if (!m || !d || !p) goto out;
    CHECK_OK(mixq_model_quantize(m, p));
    float x[4 * 64], y1[40], y2[40];
    test_fill(x, 4 * 64, 2, -1, 1);
    /* uncalibrated activations: a clear error, not garbage */
    CHECK(mixq_model_forward(m, x, 4, 0, y1) == MIXQ_ERR_STATE);
    CHECK(strstr(mixq_last_error(), "calibrate") != NULL);
    CHECK_OK(mixq_model_calibrate(m, d, 48));
    mixq_layer_quant l;
    for (int i = 0; i < mixq_model_quant_layers(m); i++) {
        CHECK_OK(mixq_model_quant_layer(m, i, &l));
        CHECKF(l.a_clip > 0 && isfinite(l.a_clip), "layer %s clip %g", l.name, (double)l.a_clip);
    }
    CHECK_OK(mixq_model_forward(m, x, 4, 0, y1));
    char path[1024];
    snprintf(path, sizeof path, "%s/q.mixq", test_tmpdir());
    CHECK_OK(mixq_model_save(m, path));
    CHECK_OK(mixq_model_load(path, &m2));
    if (m2) {
        CHECK(mixq_model_is_quantized(m2) && mixq_model_quant_layers(m2) == 22);
        CHECK_OK(mixq_model_forward(m2, x, 4, 0, y2));
        CHECK(memcmp(y1, y2, sizeof y1) == 0);
        CHECK(!strcmp(mixq_policy_text(mixq_model_policy(m2)), mixq_policy_text(p)));
    }
    /* calibration is deterministic */
    CHECK_OK(mixq_model_calibrate(m, d, 48));
    CHECK_OK(mixq_model_forward(m, x, 4, 0, y2));
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
out:
    mixq_policy_free(p);
    mixq_dataset_free(d);
    mixq_model_free(m);
    mixq_model_free(m2);
}

/* Re-quantizing a model (a search's fast path) is exact: the result equals quantizing a fresh
 * copy, whatever the model was quantized to before. Unchanged layers keep their quantized
 * weights; a clip is kept only for layers with no changed layer before them. */
static void test_fast_requantize(void) {
    mixq_model *m = make("resnet20", 1, 8, 5);
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
    mixq_policy *a = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4}}");
    mixq_policy *b = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4},"
                           " \"layers\": {\"layer2.0.conv1\": {\"w_bits\": 2, \"a_bits\": 8}}}");
    mixq_policy *c = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 3, \"a_bits\": 5},"
                           " \"layers\": {\"conv1\": {\"w_bits\": 8, \"a_bits\": 8}}}");
    float x[4 * 64], y1[40], y2[40];
    test_fill(x, 4 * 64, 2, -1, 1);
    if (m && d && a && b && c) {
        CHECK_OK(mixq_model_quantize(m, a));
        CHECK_OK(mixq_model_calibrate(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 4, 0, y1));
        int n1 = 3, n2 = 0, n3 = 0; /* layer1.0.conv1, layer2.0.conv1, layer3.0.conv1 */
        for (int i = 0; i < mixq_model_node_count(m); i++) {
            mixq_node_info ni;
            mixq_model_node(m, i, &ni);
            if (!strcmp(ni.name, "layer1.0.conv1")) n1 = i;
            if (!strcmp(ni.name, "layer2.0.conv1")) n2 = i;
            if (!strcmp(ni.name, "layer3.0.conv1")) n3 = i;
        }
        const float *w_keep = mq_quant_weights(m, n1), *w_old = mq_quant_weights(m, n2),
                    *w_down = mq_quant_weights(m, n3);
        mixq_layer_quant l;
        CHECK_OK(mixq_model_quantize(m, b));
        /* unchanged layers keep their quantized weights (same buffer, still valid); the clip only
         * upstream of the change */
        CHECK(mq_quant_weights(m, n1) == w_keep && w_keep != NULL);
        CHECK(mq_quant_weights(m, n3) == w_down && w_down != NULL);
        CHECK(mq_quant_weights(m, n2) == NULL && w_old != NULL);
        if (layer(m, "layer1.0.conv1", &l)) CHECK(l.a_clip > 0);
        if (layer(m, "layer2.0.conv1", &l)) CHECK(l.a_clip == 0 && l.w_bits == 2 && l.a_bits == 8);
        if (layer(m, "layer3.0.conv1", &l)) CHECK(l.a_clip == 0); /* downstream: measured again */
        CHECK(mixq_model_forward(m, x, 4, 0, y2) == MIXQ_ERR_STATE); /* layer2.0.conv1 uncalibrated */
        CHECK_OK(mixq_model_calibrate_new(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 4, 0, y2));
        /* exactly a fresh copy's result */
        mixq_model *f = make("resnet20", 1, 8, 5);
        float y3[40];
        if (f) {
            CHECK_OK(mixq_model_quantize(f, b));
            CHECK_OK(mixq_model_calibrate(f, d, 64));
            CHECK_OK(mixq_model_forward(f, x, 4, 0, y3));
            CHECK(memcmp(y2, y3, sizeof y2) == 0);
        }
        mixq_model_free(f);
        /* and after other policies in between (a search's history): still the fresh result */
        CHECK_OK(mixq_model_quantize(m, c));
        CHECK_OK(mixq_model_calibrate_new(m, d, 64));
        CHECK_OK(mixq_model_quantize(m, a));
        CHECK_OK(mixq_model_calibrate_new(m, d, 64));
        CHECK_OK(mixq_model_quantize(m, b));
        CHECK_OK(mixq_model_calibrate_new(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 4, 0, y2));
        CHECK(memcmp(y2, y3, sizeof y2) == 0);
        CHECK_OK(mixq_model_quantize(m, a));
        CHECK_OK(mixq_model_calibrate_new(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 4, 0, y2));
        CHECK(memcmp(y1, y2, sizeof y1) == 0);
    }
    mixq_policy_free(a);
    mixq_policy_free(b);
    mixq_policy_free(c);
    mixq_dataset_free(d);
    mixq_model_free(m);
}

/* Policies built as data: the same resolution as the parsed file they render to, clear errors */
static void test_policy_builder(void) {
    mixq_model *m = make("lenet5", 1, 28, 3), *m2 = make("lenet5", 1, 28, 3);
    mixq_policy *p = NULL, *q = NULL;
    CHECK_OK(mixq_policy_create(4, 4, &p));
    if (!m || !m2 || !p) goto out;
    CHECK_OK(mixq_policy_set_layer(p, "conv1", 8, 8));
    CHECK_OK(mixq_policy_set_layer(p, "fc3", 2, 3));
    CHECK_OK(mixq_policy_set_layer(p, "fc3", 8, 6)); /* replaces the earlier setting */
    int kb[16];
    for (int k = 0; k < 16; k++) kb[k] = 1 + k % 8;
    CHECK_OK(mixq_policy_set_kernels(p, "conv2", kb, 16, 5));
    CHECK(mixq_policy_set_layer(p, "fc1", 9, 8) == MIXQ_ERR_ARG);
    CHECK(mixq_policy_set_layer(p, "fc1", 8, 0) == MIXQ_ERR_ARG);
    CHECK(mixq_policy_set_layer(p, "", 8, 8) == MIXQ_ERR_ARG);
    kb[3] = 0;
    CHECK(mixq_policy_set_kernels(p, "conv2", kb, 16, 5) == MIXQ_ERR_ARG);
    kb[3] = 4;
    const char *t = mixq_policy_text(p);
    CHECK(t != NULL);
    if (!t) goto out;
    q = parse(t);
    if (!q) goto out;
    CHECK(!strcmp(mixq_policy_text(q), t));
    CHECK_OK(mixq_model_quantize(m, p));
    CHECK_OK(mixq_model_quantize(m2, q));
    CHECK(mixq_model_quant_layers(m) == 5 && mixq_model_quant_layers(m2) == 5);
    for (int i = 0; i < mixq_model_quant_layers(m); i++) {
        mixq_layer_quant a, b;
        CHECK_OK(mixq_model_quant_layer(m, i, &a));
        CHECK_OK(mixq_model_quant_layer(m2, i, &b));
        CHECK(!strcmp(a.name, b.name) && a.w_bits == b.w_bits && a.a_bits == b.a_bits &&
              a.granularity == b.granularity && a.kernels == b.kernels &&
              !memcmp(a.kernel_bits, b.kernel_bits, sizeof(int) * (size_t)a.kernels));
        if (!strcmp(a.name, "conv1")) CHECK(a.w_bits == 8 && a.a_bits == 8);
        if (!strcmp(a.name, "fc3")) CHECK(a.w_bits == 8 && a.a_bits == 6);
        if (!strcmp(a.name, "fc1")) CHECK(a.w_bits == 4 && a.a_bits == 4 && a.granularity == MIXQ_GRAN_CHANNEL);
        if (!strcmp(a.name, "conv2")) {
            CHECK(a.granularity == MIXQ_GRAN_KERNEL && a.a_bits == 5 && a.w_bits == 8);
            for (int k = 0; k < 16 && a.kernels == 16; k++) CHECK(a.kernel_bits[k] == (k == 3 ? 4 : 1 + k % 8));
        }
    }
    /* the model keeps its own copy: changing or freeing the builder's policy changes nothing */
    CHECK_OK(mixq_policy_set_layer(p, "conv1", 2, 2));
    mixq_layer_quant l;
    if (layer(m, "conv1", &l)) CHECK(l.w_bits == 8);
    /* a layer name that matches nothing is refused when applied */
    CHECK_OK(mixq_policy_set_layer(p, "fc_3", 4, 4));
    CHECK(mixq_model_quantize(m, p) == MIXQ_ERR_NOTFOUND);
    CHECK(strstr(mixq_last_error(), "fc_3") != NULL && strstr(mixq_last_error(), "fc3") != NULL);
out:
    mixq_policy_free(p);
    mixq_policy_free(q);
    mixq_model_free(m);
    mixq_model_free(m2);
}

/* A clone computes what its source does, owns its weights, and carries the quantization */
static void test_clone(void) {
    mixq_model *m = make("resnet20", 1, 8, 9), *c = NULL, *c2 = NULL;
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
    mixq_policy *p = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 3, \"a_bits\": 4}}");
    float x[4 * 64], y1[40], y2[40];
    test_fill(x, 4 * 64, 7, -1, 1);
    if (!m || !d || !p) goto out;
    CHECK_OK(mixq_model_clone(m, &c));
    if (!c) goto out;
    CHECK(!mixq_model_is_quantized(c));
    CHECK_OK(mixq_model_forward(m, x, 4, 0, y1));
    CHECK_OK(mixq_model_forward(c, x, 4, 0, y2));
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    /* training the clone leaves the source alone */
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.epochs = 1, tc.max_steps = 2, tc.batch = 16;
    CHECK_OK(mixq_train(c, d, NULL, &tc, NULL, NULL));
    CHECK_OK(mixq_model_forward(m, x, 4, 0, y2));
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    /* a quantized, calibrated model clones with its policy, scales and clips */
    CHECK_OK(mixq_model_quantize(m, p));
    CHECK_OK(mixq_model_calibrate(m, d, 64));
    CHECK_OK(mixq_model_forward(m, x, 4, 0, y1));
    CHECK_OK(mixq_model_clone(m, &c2));
    if (!c2) goto out;
    CHECK(mixq_model_is_quantized(c2));
    CHECK_OK(mixq_model_forward(c2, x, 4, 0, y2));
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    CHECK(!strcmp(mixq_policy_text(mixq_model_policy(c2)), mixq_policy_text(p)));
    CHECK(mixq_model_clone(NULL, &c) == MIXQ_ERR_ARG);
out:
    mixq_policy_free(p);
    mixq_dataset_free(d);
    mixq_model_free(m);
    mixq_model_free(c);
    mixq_model_free(c2);
}

/* The description of every quantized layer (mq_qlayer_get) is what the model runs on: codes
 * times scales equal the fake-quantized weights of the forward pass bit for bit, codes lie
 * within the levels; no codes where a row stays float or a k-means codebook is used; the
 * activation levels, clip and step match the public accounting and the quantizer; the codes
 * follow the weights when they change and survive a requantization to the same setting. */
static void check_description(mixq_model *m, const char *when) {
    for (int i = 0; i < mixq_model_quant_layers(m); i++) {
        mixq_layer_quant l;
        mq_qlayer ql;
        CHECK_OK(mixq_model_quant_layer(m, i, &l));
        CHECK_OK(mq_qlayer_get(m, l.node, &ql));
        CHECK(ql.node == l.node && ql.K == l.kernels && ql.inner * ql.K == l.weights);
        CHECK(ql.w_bits == l.w_bits && ql.a_bits == l.a_bits && ql.a_signed == l.a_signed);
        CHECK(ql.kmeans == !strcmp(l.w_clip_method, "kmeans") && (int)ql.gran == (int)l.granularity);
        CHECK(!memcmp(ql.kbits, l.kernel_bits, sizeof(int) * (size_t)ql.K));
        int float_rows = 0, all_float = 1;
        for (int k = 0; k < ql.K; k++) {
            float_rows += ql.kbits[k] == 32;
            all_float &= ql.kbits[k] == 32;
        }
        CHECKF(ql.wq == mq_quant_weights(m, l.node), "%s %s: not the weights of the forward pass",
               when, l.name);
        CHECK(all_float ? ql.wq == NULL : ql.wq != NULL);
        CHECKF((ql.codes != NULL) == (!ql.kmeans && !float_rows), "%s %s: codes %p", when, l.name,
               (const void *)ql.codes);
        CHECK((ql.centroids != NULL) == ql.kmeans);
        if (ql.codes && ql.wq) {
            int exact = 1, inside = 1;
            for (int k = 0; k < ql.K; k++) {
                int lo, hi;
                mq_levels(ql.kbits[k], 1, &lo, &hi);
                for (int64_t j = 0; j < ql.inner; j++) {
                    const int c = ql.codes[k * ql.inner + j];
                    const float want = ql.scale[k] * (float)c;
                    exact &= !memcmp(&want, &ql.wq[k * ql.inner + j], sizeof want);
                    inside &= ql.kbits[k] == 1 ? (c == 1 || c == -1) : (c >= lo && c <= hi);
                }
            }
            CHECKF(exact, "%s %s: w_q != scale * code", when, l.name);
            CHECKF(inside, "%s %s: a code outside the levels", when, l.name);
        }
        if (ql.kmeans && ql.wq && ql.centroids) {
            int in_book = 1;
            for (int64_t j = 0; j < ql.inner * ql.K; j++) {
                int hit = 0;
                for (int c = 0; c < 1 << ql.w_bits; c++) hit |= ql.wq[j] == ql.centroids[c];
                in_book &= hit;
            }
            CHECKF(in_book, "%s %s: a weight outside the codebook", when, l.name);
        }
        int lo, hi;
        mq_levels(ql.a_bits, ql.a_signed, &lo, &hi);
        CHECK(ql.a_qmin == lo && ql.a_qmax == hi && ql.a_clip == l.a_clip);
        if (ql.a_bits != 32) CHECK(ql.a_scale == ql.a_clip / (float)hi && ql.a_scale > 0);
    }
}

static void test_layer_description(void) {
    mixq_model *m = make("resnet20", 1, 8, 7);
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
    mixq_policy *p = parse(
        "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4},\n"
        " \"layers\": {\"conv1\": {\"w_bits\": 1, \"granularity\": \"layer\"},\n"
        "  \"layer1.0.conv1\": {\"w_bits\": [1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8]},\n"
        "  \"layer1.0.conv2\": {\"w_bits\": [1,2,3,4,5,6,7,8,32,2,3,4,5,6,7,8]},\n"
        "  \"layer2.0.conv1\": {\"w_bits\": 32, \"a_bits\": 8},\n"
        "  \"layer2.0.conv2\": {\"w_bits\": 3, \"w_clip\": \"mse\", \"a_bits\": 2},\n"
        "  \"layer3.0.conv1\": {\"w_bits\": 3, \"w_mode\": \"kmeans\"},\n"
        "  \"fc\": {\"w_bits\": 8, \"a_bits\": 32}}}");
    float x[2 * 64];
    test_fill(x, 2 * 64, 9, -1, 1);
    if (m && d && p) {
        CHECK_OK(mixq_model_quantize(m, p));
        CHECK_OK(mixq_model_calibrate(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        check_description(m, "quantized");
        mq_qlayer ql;
        int first = -1;
        for (int i = 0; i < mixq_model_node_count(m) && first < 0; i++) {
            mixq_node_info ni;
            mixq_model_node(m, i, &ni);
            if (!strcmp(ni.name, "conv1")) first = i;
        }
        if (first >= 0 && !mq_qlayer_get(m, first, &ql)) /* the image is signed */
            CHECK(ql.a_signed && ql.a_qmin == -7 && ql.a_qmax == 7 && ql.codes && ql.w_bits == 1);
        CHECK(mq_qlayer_get(m, 0, &ql) == MIXQ_ERR_ARG); /* the input node */
        CHECK(strstr(mixq_last_error(), "not quantized") != NULL);
        CHECK(mq_qlayer_get(m, 100000, &ql) == MIXQ_ERR_ARG);
        /* new weights: new codes, computed by the quantizer, as the forward pass sees them */
        const int8_t *before = NULL;
        if (first >= 0 && !mq_qlayer_get(m, first, &ql)) before = ql.codes;
        int folded = 0;
        CHECK_OK(mixq_model_fold_bn(m, &folded));
        CHECK(folded > 0);
        CHECK_OK(mixq_model_calibrate(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        check_description(m, "after folding");
        /* requantizing to the same setting keeps the cached codes, still exact */
        CHECK_OK(mixq_model_quantize(m, p));
        if (first >= 0 && !mq_qlayer_get(m, first, &ql)) CHECK(ql.codes == before && before);
        CHECK_OK(mixq_model_calibrate(m, d, 64));
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        check_description(m, "requantized");
    }
    mixq_policy_free(p);
    mixq_dataset_free(d);
    mixq_model_free(m);
}

static void test_qat_determinism(void) {
    float w1[64], w2[64];
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run ? 2 : 1);
        mixq_model *m = make("resnet20", 1, 8, 9);
        mixq_dataset *d = NULL;
        CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
        mixq_policy *p = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 3, \"a_bits\": 3}}");
        if (m && d && p) {
            mixq_train_config tc;
            mixq_train_config_default(&tc);
            tc.epochs = 2;
            tc.batch = 16;
            tc.lr = 0.05f;
            CHECK_OK(mixq_model_quantize(m, p));
            CHECK_OK(mixq_model_calibrate(m, d, 64));
            CHECK_OK(mixq_train(m, d, NULL, &tc, NULL, NULL));
            mixq_layer_quant l;
            CHECK_OK(mixq_model_quant_layer(m, 5, &l));
            float *w = mixq_model_tensor_data(m, "layer2.0.conv1.weight");
            if (w) memcpy(run ? w2 : w1, w, sizeof w1);
            static float clip0;
            if (!run) clip0 = l.a_clip;
            else CHECKF(clip0 == l.a_clip, "learned clip differs: %g vs %g", (double)clip0, (double)l.a_clip);
        }
        mixq_policy_free(p);
        mixq_dataset_free(d);
        mixq_model_free(m);
    }
    CHECK(memcmp(w1, w2, sizeof w1) == 0);
}

static void test_lsq_training(void) {
    mixq_model *m = make("resnet20", 1, 8, 9);
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
    mixq_policy *p = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 3, \"a_bits\": 3, "
                           "\"w_clip\": \"lsq\", \"a_clip\": \"lsq\"}}");
    if (m && d && p) {
        CHECK_OK(mixq_model_quantize(m, p));
        CHECK_OK(mixq_model_calibrate(m, d, 64));
        mixq_layer_quant l;
        CHECK_OK(mixq_model_quant_layer(m, 3, &l));
        const float before = l.a_clip;
        CHECK(!strcmp(l.w_clip_method, "lsq") && !strcmp(l.a_clip_method, "lsq"));
        int node = l.node;
        float x[2 * 64];
        test_fill(x, 2 * 64, 4, -1, 1);
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        float w0[32];
        const float *wq = mq_quant_weights(m, node);
        if (wq) memcpy(w0, wq, sizeof w0);
        mixq_train_config tc;
        mixq_train_config_default(&tc);
        tc.epochs = 2;
        tc.batch = 16;
        tc.lr = 0.05f;
        CHECK_OK(mixq_train(m, d, NULL, &tc, NULL, NULL));
        CHECK_OK(mixq_model_quant_layer(m, 3, &l));
        CHECKF(l.a_clip != before && isfinite(l.a_clip) && l.a_clip > 0, "clip %g -> %g",
               (double)before, (double)l.a_clip);
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        wq = mq_quant_weights(m, node);
        CHECK(wq != NULL && memcmp(w0, wq, sizeof w0) != 0);
    }
    mixq_policy_free(p);
    mixq_dataset_free(d);
    mixq_model_free(m);
}

static void test_kmeans_mode(void) {
    mixq_model *m = make("lenet5", 1, 28, 2);
    mixq_policy *p = parse("{\"mixq_policy\": 1, \"default\": {\"w_bits\": 3, \"a_bits\": 32, "
                           "\"w_mode\": \"kmeans\"}, \"layers\": {\"fc3\": {\"w_bits\": 32}}}");
    if (m && p) {
        CHECK_OK(mixq_model_quantize(m, p));
        float x[2 * 784];
        test_fill(x, 2 * 784, 3, -1, 1);
        CHECK_OK(mixq_model_forward(m, x, 2, 0, NULL));
        for (int i = 0; i < mixq_model_quant_layers(m); i++) {
            mixq_layer_quant l;
            CHECK_OK(mixq_model_quant_layer(m, i, &l));
            const float *wq = mq_quant_weights(m, l.node);
            if (l.w_bits == 32) {
                CHECK(wq == NULL);
                continue;
            }
            CHECK(wq != NULL && !strcmp(l.w_clip_method, "kmeans"));
            if (wq) {
                int lv = distinct(wq, l.weights > 5000 ? 5000 : l.weights);
                CHECKF(lv <= 8 && lv >= 6, "%s: %d centroids in use", l.name, lv);
            }
            CHECK(l.size_bits == 3.0 * (double)l.weights + 32.0 * (8 + l.kernels)); /* + biases */
        }
    }
    mixq_policy_free(p);
    mixq_model_free(m);
    m = make("lenet5", 1, 28, 2); /* bad() wants a float model */
    bad(m, "{\"mixq_policy\": 1, \"layers\": {\"conv1\": {\"w_mode\": \"kmeans\", "
           "\"w_bits\": [2, 2, 2, 2, 2, 2]}}}", "conv1", "per-kernel");
    bad(m, "{\"mixq_policy\": 1, \"default\": {\"w_mode\": \"lloyd\"}}", "w_mode", "linear, kmeans");
    mixq_model_free(m);
}

static void test_bn_folding(void) {
    static const char *const archs[] = {"resnet20", "lenet5", "mobilenet_v1", "vgg11"};
    for (int a = 0; a < 4; a++) {
        int hw = a == 1 ? 28 : 32;
        mixq_model *m = make(archs[a], 1, hw, 4);
        if (!m) continue;
        /* non-trivial BN statistics: a few training-mode forwards */
        float *x = malloc(sizeof(float) * 3 * hw * hw);
        float y1[30], y2[30];
        if (!x) {
            mixq_model_free(m);
            continue;
        }
        test_fill(x, 3L * hw * hw, 7, -1, 2);
        for (int t = 0; t < 3; t++) CHECK_OK(mixq_model_forward(m, x, 3, 1, NULL));
        CHECK_OK(mixq_model_forward(m, x, 3, 0, y1));
        int folded = 0;
        CHECK_OK(mixq_model_fold_bn(m, &folded));
        CHECK_OK(mixq_model_forward(m, x, 3, 0, y2));
        double e = test_max_rel_err(y2, y1, 30);
        CHECKF(folded > 0 && e < 1e-4, "%s: %d BNs folded, outputs differ by %.3g", archs[a], folded, e);
        free(x);
        mixq_model_free(m);
    }
}

/* Training checkpoints (mixq_train_config.checkpoint / resume): a run stopped after epoch 2 of 3
 * and resumed from its checkpoint (in a fresh process's state: new model objects, another thread
 * count) ends bit-identical to the run never stopped, for a float model with SGD and with Adam, a
 * quantized one with PACT clips, and one with LSQ scales and clips distilled from a teacher; a
 * checkpoint of other settings, weights, policy or a cut or foreign file is an error that leaves
 * the model as it was. */
typedef struct ck_run {
    const char *policy; /* NULL: float */
    int adam, teacher;
} ck_run;

static int ck_stop(const mixq_progress *p, void *user) { return p->epoch_done && p->epoch == *(int *)user; }
static int ck_calib = 64; /* calibration images */
static uint64_t ck_teacher_seed = 4; /* the teacher's initial weights */

/* A fresh model (quantized and calibrated by r's policy), trained 3 epochs by r; stop_epoch > 0:
 * stopped after that epoch, < 0: not trained; ck: the checkpoint (resume: resumed from it). NULL
 * on failure. */
static mixq_model *ck_train(const ck_run *r, const mixq_dataset *d, const char *ck, int resume, int stop_epoch,
                            float lr_scale, mixq_status *st) {
    mixq_model *m = make("resnet20", 1, 8, 9), *t = r->teacher ? make("resnet20", 1, 8, ck_teacher_seed) : NULL;
    mixq_policy *p = r->policy ? parse(r->policy) : NULL;
    *st = MIXQ_ERR_STATE;
    if (m && (!r->teacher || t) && (!r->policy || p)) {
        if (p) {
            CHECK_OK(mixq_model_quantize(m, p));
            CHECK_OK(mixq_model_calibrate(m, d, ck_calib));
        }
        mixq_train_config tc;
        mixq_train_config_default(&tc);
        tc.epochs = 3;
        tc.batch = 16;
        tc.lr = (r->adam ? 2e-3f : 0.05f) * lr_scale;
        tc.optimizer = r->adam ? MIXQ_OPT_ADAM : MIXQ_OPT_SGD;
        tc.teacher = t;
        tc.checkpoint = ck;
        tc.resume = resume;
        *st = stop_epoch < 0 ? MIXQ_OK : mixq_train(m, d, NULL, &tc, stop_epoch ? ck_stop : NULL, &stop_epoch);
    }
    mixq_policy_free(p);
    mixq_model_free(t);
    return m;
}

/* 1 when a and b hold the same tensors and activation clips. */
static int same_state(mixq_model *a, mixq_model *b) {
    for (int i = 0; i < mixq_model_tensor_count(a); i++) {
        mixq_tensor_info ti;
        mixq_model_tensor(a, i, &ti);
        if (memcmp(mixq_model_tensor_data(a, ti.name), mixq_model_tensor_data(b, ti.name),
                   sizeof(float) * (size_t)ti.numel))
            return 0;
    }
    for (int i = 0; i < mixq_model_quant_layers(a); i++) {
        mixq_layer_quant la, lb;
        if (mixq_model_quant_layer(a, i, &la) || mixq_model_quant_layer(b, i, &lb) || la.a_clip != lb.a_clip)
            return 0;
    }
    return 1;
}

static void test_train_checkpoint(void) {
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d));
    if (!d) return;
    const ck_run runs[] = {
        {NULL, 0, 0},
        {NULL, 1, 0},
        {"{\"mixq_policy\": 1, \"default\": {\"w_bits\": 3, \"a_bits\": 3}}", 0, 0},
        {"{\"mixq_policy\": 1, \"default\": {\"w_bits\": 2, \"a_bits\": 4, \"w_clip\": \"lsq\", "
         "\"a_clip\": \"lsq\"}, \"layers\": {\"conv1\": {\"w_bits\": 8, \"a_bits\": 8}}}", 0, 1},
    };
    const char *dir = test_tmpdir();
    char ck[1200], fa[1200], fb[1200], bad[1200];
    snprintf(ck, sizeof ck, "%s/train.ckpt", dir);
    snprintf(fa, sizeof fa, "%s/ck_a.mixq", dir);
    snprintf(fb, sizeof fb, "%s/ck_b.mixq", dir);
    snprintf(bad, sizeof bad, "%s/train_bad.ckpt", dir);
    const int threads = omp_get_max_threads();
    for (int k = 0; k < (int)(sizeof runs / sizeof runs[0]); k++) {
        remove(ck);
        mixq_status st;
        mixq_model *a = ck_train(&runs[k], d, NULL, 0, 0, 1, &st);
        CHECK_OK(st);
        mixq_model *b = ck_train(&runs[k], d, ck, 0, 2, 1, &st); /* stopped after epoch 2 */
        CHECK_OK(st);
        mixq_model_free(b);
        omp_set_num_threads(threads > 1 ? 1 : 2);
        b = ck_train(&runs[k], d, ck, 1, 0, 1, &st); /* resumed: epoch 3 */
        omp_set_num_threads(threads);
        CHECK_OK(st);
        if (a && b) {
            CHECK_OK(mixq_model_save(a, fa));
            CHECK_OK(mixq_model_save(b, fb));
            CHECKF(test_same_file(fa, fb), "run %d: the resumed model differs from the uninterrupted one", k);
        }
        mixq_model_free(b);
        if (k == 3) {
            /* another learning rate: an error naming it, the model untouched */
            b = ck_train(&runs[k], d, ck, 1, 0, 0.5f, &st);
            CHECK(st == MIXQ_ERR_ARG && strstr(mixq_last_error(), "learning rate"));
            mixq_model_free(b);
            /* another policy, another starting model */
            ck_run r = runs[k];
            r.policy = runs[2].policy;
            b = ck_train(&r, d, ck, 1, 0, 1, &st);
            CHECK(st != MIXQ_OK);
            mixq_model_free(b);
            ck_calib = 32; /* other calibrated clips */
            b = ck_train(&runs[k], d, ck, 1, 0, 1, &st);
            ck_calib = 64;
            CHECK(st == MIXQ_ERR_ARG && strstr(mixq_last_error(), "other weights or clips"));
            mixq_model_free(b);
            r = runs[k];
            r.teacher = 0;
            b = ck_train(&r, d, ck, 1, 0, 1, &st);
            CHECK(st == MIXQ_ERR_ARG && strstr(mixq_last_error(), "distillation"));
            mixq_model_free(b);
            ck_teacher_seed = 5; /* another teacher */
            b = ck_train(&runs[k], d, ck, 1, 0, 1, &st);
            ck_teacher_seed = 4;
            CHECKF(st == MIXQ_ERR_ARG && strstr(mixq_last_error(), "another teacher"), "status %d: %s", (int)st,
                   mixq_last_error());
            mixq_model_free(b);
            /* other training data of the same count: one label changed */
            mixq_dataset *d2 = NULL;
            CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TRAIN, 0, 1, &d2));
            if (d2) {
                d2->labels[d2->n - 1] = (uint8_t)((d2->labels[d2->n - 1] + 1) % d2->classes);
                b = ck_train(&runs[k], d2, ck, 1, 0, 1, &st);
                CHECKF(st == MIXQ_ERR_ARG && strstr(mixq_last_error(), "other images or labels"), "status %d: %s",
                       (int)st, mixq_last_error());
                mixq_model_free(b);
                mixq_dataset_free(d2);
            }
            /* a version-1 file (its identity without the images' and the teacher's hashes): resumed
             * on trust, to the same model */
            {
                FILE *f1 = fopen(ck, "rb");
                unsigned char *buf = NULL;
                long n1 = 0;
                if (f1 && fseek(f1, 0, SEEK_END) == 0 && (n1 = ftell(f1)) > 200 && fseek(f1, 0, SEEK_SET) == 0 &&
                    (buf = malloc((size_t)n1)) && fread(buf, 1, (size_t)n1, f1) == (size_t)n1) {
                    const size_t cut = 16 + 120; /* magic, version, byte order, the version-1 identity (120 bytes) */
                    const uint32_t v1 = 1;
                    memcpy(buf + 8, &v1, 4);
                    memmove(buf + cut, buf + cut + 16, (size_t)n1 - cut - 16);
                    CHECK(test_write_file(bad, buf, (size_t)n1 - 16) == 0);
                    b = ck_train(&runs[k], d, bad, 1, 0, 1, &st);
                    CHECKF(st == MIXQ_OK, "a version-1 checkpoint: status %d (%s)", (int)st, mixq_last_error());
                    if (b && a) {
                        CHECK_OK(mixq_model_save(b, fb));
                        CHECK(test_same_file(fa, fb));
                    }
                    mixq_model_free(b);
                    memcpy(buf + 8, &(uint32_t){3}, 4); /* a later version: an error naming it */
                    CHECK(test_write_file(bad, buf, (size_t)n1 - 16) == 0);
                    b = ck_train(&runs[k], d, bad, 1, 0, 1, &st);
                    CHECK(st == MIXQ_ERR_FORMAT && strstr(mixq_last_error(), "version 3"));
                    mixq_model_free(b);
                } else CHECK(!"reading the checkpoint back");
                free(buf);
                if (f1) fclose(f1);
            }
            /* cut, padded, foreign and missing files */
            FILE *f = fopen(ck, "rb");
            long n = 0;
            if (f) {
                fseek(f, 0, SEEK_END);
                n = ftell(f);
                fclose(f);
            }
            const long cuts[] = {4, 40, n / 2, n - 3, n + 5};
            for (int c = 0; n > 100 && c < 5; c++) {
                unsigned char *buf = calloc((size_t)n + 8, 1);
                if (!buf) break;
                f = fopen(ck, "rb");
                CHECK(f && fread(buf, 1, (size_t)n, f) == (size_t)n);
                if (f) fclose(f);
                CHECK(test_write_file(bad, buf, (size_t)cuts[c]) == 0);
                free(buf);
                b = ck_train(&runs[k], d, bad, 1, 0, 1, &st);
                CHECKF(st == MIXQ_ERR_FORMAT, "a checkpoint cut to %ld of %ld bytes: status %d (%s)", cuts[c], n,
                       (int)st, mixq_last_error());
                /* all or nothing: the model is still the one the run started from */
                mixq_model *u = ck_train(&runs[k], d, NULL, 0, -1, 1, &st);
                CHECKF(b && u && same_state(b, u), "a checkpoint cut to %ld bytes changed the model", cuts[c]);
                mixq_model_free(u);
                mixq_model_free(b);
            }
            CHECK(test_write_file(bad, "MQDDPG\0\0garbage", 15) == 0);
            b = ck_train(&runs[k], d, bad, 1, 0, 1, &st);
            CHECK(st == MIXQ_ERR_FORMAT && strstr(mixq_last_error(), "not a mixq training checkpoint"));
            mixq_model_free(b);
            remove(bad);
            b = ck_train(&runs[k], d, bad, 1, 0, 1, &st);
            CHECK(st == MIXQ_ERR_IO && strstr(mixq_last_error(), "does not exist"));
            mixq_model_free(b);
        }
        mixq_model_free(a);
    }
    mixq_dataset_free(d);
}

int main(void) {
    TEST_RUN(test_precedence);
    TEST_RUN(test_bad_policies);
    TEST_RUN(test_per_kernel_in_model);
    TEST_RUN(test_calibrate_save_load);
    TEST_RUN(test_fast_requantize);
    TEST_RUN(test_policy_builder);
    TEST_RUN(test_clone);
    TEST_RUN(test_qat_determinism);
    TEST_RUN(test_lsq_training);
    TEST_RUN(test_train_checkpoint);
    TEST_RUN(test_kmeans_mode);
    TEST_RUN(test_bn_folding);
    TEST_RUN(test_layer_description);
    return test_summary();
}
