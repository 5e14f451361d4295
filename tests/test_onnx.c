/* ONNX import and export: PyTorch-exported models (tests/fixtures/onnx, made by
 * scripts/gen_onnx_fixtures.py) reproduce PyTorch's logits; the graph survives a mixq model
 * file; fine-tuning an import works; float and QDQ exports read back reproduce mixq's outputs
 * exactly (QDQ: with policy, scales and clips); the ONNX checker accepts the exports (when
 * Debian's python3-onnx is there); bad files are clear errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixq/mixq.h"
#include "fixture.h"
#include "test.h"

#define FX "tests/fixtures/onnx/"
#define FMNIST "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

static double max_rel(const float *a, const float *b, int n, double *max_abs) {
    double worst = 0, ma = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        ma = fmax(ma, d);
        worst = fmax(worst, d / fmax(1e-3, fabs((double)b[i])));
    }
    if (max_abs) *max_abs = ma;
    return worst;
}

static int have_checker(void) {
    return system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
}

static int onnx_check(const char *path) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" '%s'",
             path);
    return system(cmd) == 0;
}

/* The float exports of check_model, for one run of the ONNX checker over them all. */
#define MAX_EXPORTS 16
static char exports[MAX_EXPORTS][1100];
static int n_exports;

static void check_exports(void) {
    if (!have_checker()) {
        test_skip("python3-onnx is not installed: the ONNX checker did not run (scripts/deps.sh installs it)");
        return;
    }
    static char cmd[MAX_EXPORTS * 1104 + 256];
    size_t k = (size_t)snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import onnx,sys; "
                                "[onnx.checker.check_model(onnx.load(p), full_check=True) for p in sys.argv[1:]]\"");
    for (int i = 0; i < n_exports; i++) k += (size_t)snprintf(cmd + k, sizeof cmd - k, " '%s'", exports[i]);
    CHECKF(system(cmd) == 0, "the ONNX checker rejects one of the %d float exports", n_exports);
    n_exports = 0;
}

/* Import FX/name.onnx and check it against the fixture tensors fxname.* (PyTorch's logits); the
 * model file and float export round trips. */
static void check_model(const char *name, const char *fxname, fx_file *fx) {
    char path[256], key[128];
    snprintf(path, sizeof path, FX "%s.onnx", name);
    mixq_model *m = NULL;
    CHECKF(mixq_model_import_onnx(path, &m) == MIXQ_OK, "%s: %s", name, mixq_last_error());
    if (!m) return;
    int c, h, w, classes;
    mixq_model_input_shape(m, &c, &h, &w, &classes);
    CHECK(c == 1 && h == 28 && w == 28 && classes == 10);
    snprintf(key, sizeof key, "%s.input", fxname);
    const float *x = fx_get(fx, key, 8 * 784);
    snprintf(key, sizeof key, "%s.logits", fxname);
    const float *ref = fx_get(fx, key, 80);
    float out[80];
    if (x && ref) {
        CHECK_OK(mixq_model_forward(m, x, 8, 0, out));
        double ma, mr = max_rel(out, ref, 80, &ma);
        printf("  %s: imported, logits vs PyTorch: max abs %.2e, max rel %.2e\n", name, ma, mr);
        CHECK(ma < 1e-4);
    }
    /* the graph survives a model file */
    char mf[1100];
    snprintf(mf, sizeof mf, "%s/%s.mixq", test_tmpdir(), name);
    CHECK_OK(mixq_model_save(m, mf));
    mixq_model *m2 = NULL;
    CHECK_OK(mixq_model_load(mf, &m2));
    if (m2 && x) {
        float out2[80];
        CHECK_OK(mixq_model_forward(m2, x, 8, 0, out2));
        CHECK(!memcmp(out, out2, sizeof out));
        CHECK(!strcmp(mixq_model_arch(m2), name));
    }
    mixq_model_free(m2);
    /* float export read back: identical outputs */
    char of[1100];
    snprintf(of, sizeof of, "%s/%s_float.onnx", test_tmpdir(), name);
    CHECK_OK(mixq_model_export_onnx(m, of));
    if (n_exports < MAX_EXPORTS) snprintf(exports[n_exports++], sizeof exports[0], "%s", of);
    mixq_model *m3 = NULL;
    CHECKF(mixq_model_load(of, &m3) == MIXQ_OK, "%s", mixq_last_error());
    if (m3 && x) {
        float out3[80];
        CHECK_OK(mixq_model_forward(m3, x, 8, 0, out3));
        double ma;
        max_rel(out3, out, 80, &ma);
        CHECKF(ma == 0, "float export round trip differs by %.3g", ma);
        CHECK(mixq_model_node_count(m3) == mixq_model_node_count(m));
    }
    mixq_model_free(m3);
    mixq_model_free(m);
}

static void test_import_pytorch(void) {
    fx_file *fx = fx_load(FX "onnx_ref.mqfx");
    CHECK(fx != NULL);
    if (!fx) return;
    check_model("resnet_tiny", "resnet_tiny", fx);
    check_model("dw_tiny", "dw_tiny", fx);
    /* PyTorch's ZeroPad2d((0, 1, 0, 1)): its pads computed by a ConstantOfShape / Slice chain
     * (folded at import) or given as an initializer; folded into the conv after it */
    check_model("bad_pad", "bad_pad", fx);
    check_model("pad_folded", "bad_pad", fx);
    /* MobileNet-V2/V3 (inverted residuals, hard swish, squeeze-and-excitation with hard
     * sigmoid) at opsets 13 and 14, SqueezeNet (Fire modules: concat), asymmetric pads and
     * non-square kernels */
    fx_file *ox = fx_load(FX "onnx_ops_ref.mqfx");
    CHECK(ox != NULL);
    if (ox) {
        check_model("mbv2_tiny", "mbv2_tiny", ox);
        check_model("mbv2_tiny_op14", "mbv2_tiny", ox);
        check_model("squeeze_tiny", "squeeze_tiny", ox);
        check_model("asym_tiny", "asym_tiny", ox);
        fx_free(ox);
    }
    /* the opset-13 Hardswish (HardSigmoid(alpha 1/6) then Mul) is imported as one hard swish,
     * like the opset-14 operator: the two imports have the same graph */
    mixq_model *a = NULL, *b = NULL;
    CHECK_OK(mixq_model_import_onnx(FX "mbv2_tiny.onnx", &a));
    CHECK_OK(mixq_model_import_onnx(FX "mbv2_tiny_op14.onnx", &b));
    if (a && b) {
        int na = mixq_model_node_count(a), ops[MIXQ_OP_COUNT] = {0};
        CHECK(na == mixq_model_node_count(b));
        for (int i = 0; i < na && i < mixq_model_node_count(b); i++) {
            mixq_node_info p, q;
            CHECK_OK(mixq_model_node(a, i, &p));
            CHECK_OK(mixq_model_node(b, i, &q));
            CHECK(p.op == q.op);
            ops[p.op]++;
        }
        CHECKF(ops[MIXQ_OP_HSWISH] == 5 && ops[MIXQ_OP_HSIGMOID] == 2 && ops[MIXQ_OP_MUL] == 2,
               "hard swish %d, hard sigmoid %d, mul %d", ops[MIXQ_OP_HSWISH], ops[MIXQ_OP_HSIGMOID],
               ops[MIXQ_OP_MUL]);
    }
    mixq_model_free(a);
    mixq_model_free(b);
    /* the folded pad becomes the conv's own: pads 0,0,1,1 (top, left, bottom, right) */
    CHECK_OK(mixq_model_import_onnx(FX "bad_pad.onnx", &a));
    if (a) {
        mixq_node_info ni;
        CHECK_OK(mixq_model_node(a, 1, &ni));
        CHECK(ni.op == MIXQ_OP_CONV && ni.pad == 0 && ni.pad_left == 0 && ni.pad_bottom == 1 && ni.pad_right == 1 &&
              ni.out_h == 14 && ni.stride == 2);
    }
    mixq_model_free(a);
    /* names come from the PyTorch modules */
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_import_onnx(FX "resnet_tiny.onnx", &m));
    if (m) {
        int found = 0;
        for (int i = 0; i < mixq_model_node_count(m); i++) {
            mixq_node_info ni;
            CHECK_OK(mixq_model_node(m, i, &ni));
            int hit = !strcmp(ni.name, "layer2.0.downsample.0") || !strcmp(ni.name, "fc") ||
                      !strcmp(ni.name, "layer1.0.conv1");
            found += hit;
            if (ni.op == MIXQ_OP_CONV && !hit) printf("  conv named '%s'\n", ni.name);
        }
        CHECKF(found == 3, "found %d of the expected layer names", found);
    }
    mixq_model_free(m);
    check_exports();
    fx_free(fx);
}

/* quantize an import (W4A4 with a 2-bit and per-kernel layer), export QDQ, read back: equal */
static void expect_bad(const char *path, mixq_status want, const char *needle);
static unsigned char *slurp(const char *path, size_t *n);

static void test_qdq_roundtrip(void) {
    if (access(FMNIST, R_OK) != 0) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    mixq_model *m = NULL;
    mixq_dataset *tr = NULL;
    CHECK_OK(mixq_model_import_onnx(FX "resnet_tiny.onnx", &m));
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TRAIN, 1000, 1, &tr));
    if (!m || !tr) goto out;
    const char *pol =
        "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4},"
        " \"layers\": {\"layer1.0.conv1\": {\"w_bits\": 2, \"a_bits\": 3, \"granularity\": \"layer\"},"
        " \"layer2.0.conv1\": {\"w_bits\": [2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 4]},"
        " \"fc\": {\"w_bits\": 8, \"a_bits\": 8}}}";
    mixq_policy *p = NULL;
    CHECK_OK(mixq_policy_parse(pol, strlen(pol), "test policy", &p));
    CHECK_OK(mixq_model_quantize(m, p));
    mixq_policy_free(p);
    CHECK_OK(mixq_model_calibrate(m, tr, 256));
    mixq_holdout ho = {.seed = 18446744073709551557ULL, .count = 1234, .images = 60000}, hr;
    CHECK(!mixq_model_holdout(m, &hr)); /* another producer's file records none */
    /* a short fine-tune of the import works (the weights move, the loss is finite) */
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.epochs = 1, tc.max_steps = 3, tc.lr = 0.01f, tc.batch = 32;
    CHECK_OK(mixq_train(m, tr, NULL, &tc, NULL, NULL));
    CHECK_OK(mixq_model_set_holdout(m, &ho)); /* set after: training on its held-out images clears it */
    float x[4 * 784];
    for (int i = 0; i < 4 * 784; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    float a[40], b[40];
    CHECK_OK(mixq_model_forward(m, x, 4, 0, a));
    char q[1100];
    snprintf(q, sizeof q, "%s/resnet_tiny_qdq.onnx", test_tmpdir());
    CHECKF(mixq_model_export_onnx(m, q) == MIXQ_OK, "%s", mixq_last_error());
    mixq_model *r = NULL;
    CHECKF(mixq_model_import_onnx(q, &r) == MIXQ_OK, "%s", mixq_last_error());
    if (r) {
        CHECK(mixq_model_is_quantized(r));
        /* the held-out record travels in metadata_props (mixq.holdout), the uint64 seed exactly */
        CHECK(mixq_model_holdout(r, &hr) && hr.seed == ho.seed && hr.count == ho.count && hr.images == ho.images);
        CHECK_OK(mixq_model_forward(r, x, 4, 0, b));
        double ma;
        max_rel(a, b, 40, &ma);
        printf("  QDQ round trip: max abs difference %.3g\n", ma);
        CHECK(ma == 0);
        mixq_layer_quant lq;
        int seen = 0;
        for (int i = 0; i < mixq_model_quant_layers(r); i++) { /* per-kernel bits survive */
            CHECK_OK(mixq_model_quant_layer(r, i, &lq));
            if (strcmp(lq.name, "layer2.0.conv1")) continue;
            seen = 1;
            CHECK(lq.kernel_bits[7] == 1 && lq.kernel_bits[6] == 8 && lq.a_bits == 4);
        }
        CHECK(seen);
    }
    mixq_model_free(r);
    r = NULL;
    /* a record that cannot hold (0 training images) is an error naming the metadata */
    size_t qn = 0;
    unsigned char *qb = slurp(q, &qn);
    const char *want = "\"images\": 60000";
    unsigned char *at = NULL;
    for (size_t i = 0; qb && i + strlen(want) <= qn && !at; i++)
        if (!memcmp(qb + i, want, strlen(want))) at = qb + i;
    CHECK(at != NULL);
    if (at) {
        memcpy(at + strlen(want) - 5, "00000", 5);
        char bq[1100];
        snprintf(bq, sizeof bq, "%s/resnet_tiny_qdq_bad_holdout.onnx", test_tmpdir());
        CHECK(test_write_file(bq, qb, qn) == 0);
        expect_bad(bq, MIXQ_ERR_FORMAT, "mixq.holdout metadata");
    }
    if (have_checker()) CHECK(onnx_check(q)); /* the float exports: check_model */
    else test_skip("python3-onnx is not installed: the ONNX checker did not run (scripts/deps.sh installs it)");
out:
    mixq_dataset_free(tr);
    mixq_model_free(m);
}

/* Predicted class of every image of d as the model's transform gives them; NULL on error. */
static int *predict_all(mixq_model *m, const mixq_dataset *d) {
    const int n = mixq_dataset_count(d), B = 500;
    int c, h, w, k;
    mixq_model_input_shape(m, &c, &h, &w, &k);
    mixq_preprocess pp;
    mixq_model_preprocess(m, &pp);
    int *pred = malloc(sizeof(int) * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)B * c * h * w), *lg = malloc(sizeof(float) * (size_t)B * k);
    int ok = pred && x && lg;
    for (int s = 0; ok && s < n; s += B) {
        int b = n - s < B ? n - s : B;
        ok = mixq_dataset_batch(d, &pp, s, b, x, NULL) == MIXQ_OK && mixq_model_forward(m, x, b, 0, lg) == MIXQ_OK;
        for (int i = 0; ok && i < b; i++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (lg[i * k + j] > lg[i * k + best]) best = j;
            pred[s + i] = best;
        }
    }
    free(x);
    free(lg);
    if (!ok) free(pred);
    return ok ? pred : NULL;
}

static int count_diff(const int *a, const float *b, int n) {
    int d = 0;
    for (int i = 0; i < n; i++) d += a[i] != (int)b[i];
    return d;
}

/* A PyTorch model trained on ToTensor() inputs (pixel / 255, no Normalize): nothing in the file
 * says so. Imported as it is, mixq assumes its own default (not recorded); with the "unit" preset
 * it predicts every test image as PyTorch does; a mixq export records the transform in
 * metadata_props and reads back with it; an export with the transform embedded as Sub/Div nodes
 * reads back with the same transform folded out of the graph. */
static void test_preprocess_unit(void) {
    if (!test_need_fmnist()) return;
    fx_file *fx = fx_load(FX "preprocess_ref.mqfx");
    mixq_model *m = NULL, *r = NULL, *e = NULL;
    mixq_dataset *te = NULL;
    int *pred = NULL, *p2 = NULL;
    CHECKF(fx != NULL, "%s", FX "preprocess_ref.mqfx (scripts/gen_preprocess_fixture.py)");
    const float *x = fx ? fx_get(fx, "unit_net.input", 8 * 784) : NULL;
    const float *ref = fx ? fx_get(fx, "unit_net.logits", 80) : NULL;
    const float *tpred = fx ? fx_get(fx, "unit_net.pred", 10000) : NULL;
    const float *tacc = fx ? fx_get(fx, "unit_net.test_accuracy", 1) : NULL;
    CHECK_OK(mixq_model_import_onnx(FX "unit_net.onnx", &m));
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TEST, 0, 1, &te));
    if (!m || !te || !x || !ref || !tpred || !tacc) goto out;
    mixq_preprocess pp, got;
    CHECK(mixq_model_preprocess(m, &got) == 0 && got.from_data); /* nothing recorded: the default */
    CHECK_OK(mixq_preprocess_preset("unit", 1, &pp));
    CHECK_OK(mixq_model_set_preprocess(m, &pp));
    CHECK(mixq_model_preprocess(m, &got) == 1 && !got.from_data && got.scale == 1.0f / 255 && got.std[0] == 1);
    float out[80], xb[8 * 784];
    CHECK_OK(mixq_dataset_batch(te, &pp, 0, 8, xb, NULL)); /* the inputs PyTorch got, bit for bit */
    CHECK(!memcmp(xb, x, sizeof xb));
    CHECK_OK(mixq_model_forward(m, x, 8, 0, out));
    double ma;
    max_rel(out, ref, 80, &ma);
    CHECKF(ma < 1e-4, "logits vs PyTorch: max abs %.3g", ma);
    pred = predict_all(m, te);
    CHECK(pred != NULL);
    if (pred) {
        int diff = count_diff(pred, tpred, 10000);
        float acc;
        CHECK_OK(mixq_evaluate(m, te, 500, &acc, NULL));
        printf("  unit_net with --preprocess unit: %d of 10000 predictions differ from PyTorch's; accuracy "
               "%.2f%% (PyTorch %.2f%%)\n", diff, 100.0 * acc, 100.0 * tacc[0]);
        CHECK(diff == 0);
        CHECK(fabs((double)acc - (double)tacc[0]) < 0.5e-4);
    }
    /* export: the transform travels in metadata_props */
    char of[1100], ef[1100];
    snprintf(of, sizeof of, "%s/unit_net_pp.onnx", test_tmpdir());
    snprintf(ef, sizeof ef, "%s/unit_net_embedded.onnx", test_tmpdir());
    CHECK_OK(mixq_model_export_onnx(m, of));
    CHECK_OK(mixq_model_import_onnx(of, &r));
    if (r) {
        CHECK(mixq_model_preprocess(r, &got) == 1 && !memcmp(&got, &pp, sizeof pp));
        p2 = predict_all(r, te);
        CHECK(p2 && !memcmp(p2, pred, sizeof(int) * 10000));
        free(p2);
        p2 = NULL;
    }
    /* embedded as Sub/Div: the graph takes raw pixels; read back, the Sub/Div fold into the transform */
    CHECK_OK(mixq_model_export_onnx_ex(m, ef, 1));
    CHECK_OK(mixq_model_import_onnx(ef, &e));
    if (e) {
        CHECK(mixq_model_preprocess(e, &got) == 1);
        CHECKF(got.scale == 1 && fabsf(got.mean[0]) < 1e-6f && fabsf(got.std[0] - 255) < 1e-3f,
               "embedded transform read back as scale %g mean %g std %g", got.scale, got.mean[0], got.std[0]);
        CHECK(mixq_model_node_count(e) == mixq_model_node_count(m));
        p2 = predict_all(e, te);
        int diff = p2 && pred ? 0 : -1;
        for (int i = 0; p2 && pred && i < 10000; i++) diff += p2[i] != pred[i];
        printf("  embedded-transform export read back: %d of 10000 predictions differ (x / 255 vs (x - 0) / 255)\n", diff);
        CHECK(diff >= 0 && diff <= 2);
    }
    /* mixq's default transform cannot be embedded: it has no numbers until a dataset gives them */
    mixq_model_free(r);
    r = NULL;
    CHECK_OK(mixq_model_import_onnx(FX "unit_net.onnx", &r));
    if (r) CHECK(mixq_model_export_onnx_ex(r, ef, 1) == MIXQ_ERR_ARG);
out:
    free(pred);
    free(p2);
    mixq_model_free(m);
    mixq_model_free(r);
    mixq_model_free(e);
    mixq_dataset_free(te);
    fx_free(fx);
}

/* Every quantized export reads back with identical outputs: every zoo model and every fixture, at
 * a mixed policy (most layers W4A4, a per-kernel layer, a 2-bit layer, an 8-bit last layer). */
static void roundtrip_one(const char *what, mixq_model *m, const mixq_dataset *tr) {
    int nq = 0, first = -1, last = -1, second = -1;
    for (int i = 0; i < mixq_model_node_count(m); i++) {
        mixq_node_info ni;
        if (mixq_model_node(m, i, &ni) || (ni.op != MIXQ_OP_CONV && ni.op != MIXQ_OP_LINEAR)) continue;
        if (first < 0) first = i;
        else if (second < 0) second = i;
        last = i;
        nq++;
    }
    mixq_node_info fi, si, li;
    CHECK(nq >= 2);
    if (nq < 2 || mixq_model_node(m, first, &fi) || mixq_model_node(m, second, &si) || mixq_model_node(m, last, &li))
        return;
    char pol[4096];
    int o = snprintf(pol, sizeof pol, "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4}, \"layers\": {"
                     "\"%s\": {\"w_bits\": 2, \"a_bits\": 2, \"granularity\": \"layer\"}, \"%s\": {\"w_bits\": [", fi.name, si.name);
    for (int k = 0; k < si.out_c && o < (int)sizeof pol - 200; k++) o += snprintf(pol + o, sizeof pol - (size_t)o, "%s%d", k ? ", " : "", 1 + k % 8);
    snprintf(pol + o, sizeof pol - (size_t)o, "]}, \"%s\": {\"w_bits\": 8, \"a_bits\": 8}}}", li.name);
    mixq_policy *p = NULL;
    CHECKF(mixq_policy_parse(pol, strlen(pol), what, &p) == MIXQ_OK, "%s: %s", what, mixq_last_error());
    CHECKF(p && mixq_model_quantize(m, p) == MIXQ_OK, "%s: %s", what, mixq_last_error());
    mixq_policy_free(p);
    CHECK_OK(mixq_model_calibrate(m, tr, 16)); /* any clips will do: the point is the read back */
    int c, h, w, k;
    mixq_model_input_shape(m, &c, &h, &w, &k);
    const int n = 4;
    float *x = malloc(sizeof(float) * (size_t)n * c * h * w), *a = malloc(sizeof(float) * (size_t)n * k),
          *b = malloc(sizeof(float) * (size_t)n * k);
    char q[1100];
    snprintf(q, sizeof q, "%s/rt_%s.onnx", test_tmpdir(), what);
    mixq_model *r = NULL;
    if (!x || !a || !b) goto out;
    CHECK_OK(mixq_dataset_batch(tr, NULL, 0, n, x, NULL));
    CHECK_OK(mixq_model_forward(m, x, n, 0, a));
    CHECKF(mixq_model_export_onnx(m, q) == MIXQ_OK, "%s: %s", what, mixq_last_error());
    CHECKF(mixq_model_import_onnx(q, &r) == MIXQ_OK, "%s: %s", what, mixq_last_error());
    if (r) {
        CHECK(mixq_model_is_quantized(r));
        CHECK_OK(mixq_model_forward(r, x, n, 0, b));
        double ma;
        max_rel(a, b, n * k, &ma);
        printf("  %-14s QDQ export read back: max abs difference %.3g\n", what, ma);
        CHECKF(ma == 0, "%s: QDQ round trip differs by %.3g", what, ma);
    }
out:
    mixq_model_free(r);
    free(x);
    free(a);
    free(b);
}

static void test_roundtrip_all(void) {
    if (!test_need_fmnist()) return;
    mixq_dataset *tr = NULL;
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TRAIN, 1000, 1, &tr));
    if (!tr) return;
    for (const char *const *a = mixq_model_archs(); *a; a++) {
        mixq_model_config cfg = {.arch = *a, .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 3};
        if (!strcmp(*a, "mobilenet_v1") || !strcmp(*a, "mobilenet_v2") || !strcmp(*a, "squeezenet"))
            cfg.width = 0.5f;
        mixq_model *m = NULL;
        CHECKF(mixq_model_create(&cfg, &m) == MIXQ_OK, "%s: %s", *a, mixq_last_error());
        if (m) roundtrip_one(*a, m, tr);
        mixq_model_free(m);
    }
    static const char *const fixtures[] = {"resnet_tiny", "dw_tiny", "unit_net", "bad_pad", "pad_folded",
                                           "mbv2_tiny", "mbv2_tiny_op14", "squeeze_tiny", "asym_tiny"};
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        char path[256];
        snprintf(path, sizeof path, FX "%s.onnx", fixtures[i]);
        mixq_model *m = NULL;
        CHECKF(mixq_model_import_onnx(path, &m) == MIXQ_OK, "%s: %s", path, mixq_last_error());
        if (m) roundtrip_one(fixtures[i], m, tr);
        mixq_model_free(m);
    }
    mixq_dataset_free(tr);
}

static void expect_bad(const char *path, mixq_status want, const char *needle) {
    mixq_model *m = NULL;
    mixq_status st = mixq_model_import_onnx(path, &m);
    CHECKF(st == want && m == NULL, "%s: status %d (want %d): %s", path, st, want, mixq_last_error());
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "%s: '%s' lacks '%s'", path, mixq_last_error(), needle);
    mixq_model_free(m);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static unsigned char buf[1 << 17];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void test_bad_files(void) {
    expect_bad("/nonexistent/m.onnx", MIXQ_ERR_IO, "/nonexistent/m.onnx");
    /* found by tests/fuzz (issue 15): a node without op_type (a NULL string in protobuf-c) */
    expect_bad("tests/fuzz/corpus/onnx/crash-node-without-op-type.onnx", MIXQ_ERR_UNSUPPORTED,
               "node '(unnamed)' (): unsupported operator");
    size_t n = 0;
    unsigned char *good = slurp(FX "resnet_tiny.onnx", &n);
    CHECK(good && n > 1000);
    if (!good) return;
    char p[1100];
    /* truncated and corrupt protobufs */
    snprintf(p, sizeof p, "%s/trunc.onnx", test_tmpdir());
    CHECK(test_write_file(p, good, n / 2) == 0);
    expect_bad(p, MIXQ_ERR_FORMAT, "protobuf");
    unsigned char junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (unsigned char)(i * 97 + 13);
    snprintf(p, sizeof p, "%s/junk.onnx", test_tmpdir());
    CHECK(test_write_file(p, junk, sizeof junk) == 0);
    expect_bad(p, MIXQ_ERR_FORMAT, "protobuf");
    snprintf(p, sizeof p, "%s/empty.onnx", test_tmpdir());
    CHECK(test_write_file(p, "", 0) == 0);
    expect_bad(p, MIXQ_ERR_FORMAT, "no graph");
    /* edits through python3-onnx: a missing initializer (dangling input), a cycle, an opset too
     * new, an unsupported op, an overflowing shape */
    if (!have_checker()) {
        test_skip("python3-onnx is not installed: the edited-model cases did not run (scripts/deps.sh installs it)");
        return;
    }
    static const struct { const char *edit, *needle; mixq_status st; } cases[] = {
        {"g.initializer.remove([i for i in g.initializer if i.name=='fc.weight'][0])", "dangling", MIXQ_ERR_FORMAT},
        {"g.node[0].input[0]=g.node[3].output[0]", "dangling", MIXQ_ERR_FORMAT},
        {"m.opset_import[0].version=99", "opset 99", MIXQ_ERR_UNSUPPORTED},
        {"m.opset_import[0].version=7", "opset 7", MIXQ_ERR_UNSUPPORTED},
        {"g.node[1].op_type='Selu'", "Selu", MIXQ_ERR_UNSUPPORTED},
        {"g.initializer[2].dims[:]=[1<<40,1<<40,1,1]", "overflow", MIXQ_ERR_FORMAT},
        {"[a for a in g.node[0].attribute if a.name=='kernel_shape'][0].ints[:]=[3,5]", "kernel_shape 3x5 does not match", MIXQ_ERR_UNSUPPORTED},
        {"g.input[0].type.tensor_type.shape.dim[1].dim_value=3", "input channels", MIXQ_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/edit%zu.onnx", test_tmpdir(), i);
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import onnx; m=onnx.load('%s'); g=m.graph; %s; onnx.save(m,'%s')\"",
                 FX "resnet_tiny.onnx", cases[i].edit, p);
        CHECKF(system(cmd) == 0, "edit %zu failed", i);
        expect_bad(p, cases[i].st, cases[i].needle);
    }
    /* the new operators' limits, on the other fixtures */
    static const struct { const char *base, *edit, *needle; } ops_cases[] = {
        {"bad_pad", "[n for n in g.node if n.op_type=='Conv'][0].op_type='MaxPool'", "follows a zero Pad"},
        {"squeeze_tiny", "[a for a in [n for n in g.node if n.op_type=='Concat'][0].attribute if a.name=='axis'][0].i=2",
         "along the channels"},
        {"bad_pad", "s=[n for n in g.node if n.op_type=='Slice'][0]; s.input[4]=s.input[3]", "a step of 0"},
        {"mbv2_tiny", "[n for n in g.node if n.op_type=='Mul'][0].input[1]='fc.bias'", "a constant where an activation"},
        {"pad_folded", "from onnx import numpy_helper as nh; import numpy as np; t=[i for i in g.initializer if "
                       "i.name=='/pad/Pad_pads'][0]; t.CopyFrom(nh.from_array(np.array([0,1,0,0,0,0,1,1]), t.name))",
         "none on the batch or channels"},
        {"asym_tiny", "[a for a in [n for n in g.node if n.op_type=='MaxPool'][0].attribute if a.name=='pads'][0].ints[:]=[2,0,1,0]",
         "pads 2,0,1,0 invalid"},
    };
    const size_t n_ops = sizeof ops_cases / sizeof ops_cases[0];
    char script[4096], py[1100];
    size_t k = (size_t)snprintf(script, sizeof script, "import onnx\n");
    for (size_t i = 0; i < n_ops; i++) /* one python run makes them all */
        k += (size_t)snprintf(script + k, sizeof script - k,
                              "m=onnx.load('" FX "%s.onnx'); g=m.graph; %s; onnx.save(m,'%s/ops_edit%zu.onnx')\n",
                              ops_cases[i].base, ops_cases[i].edit, test_tmpdir(), i);
    snprintf(py, sizeof py, "%s/ops_edits.py", test_tmpdir());
    CHECK(k < sizeof script && test_write_file(py, script, k) == 0);
    char run[1200];
    snprintf(run, sizeof run, "/usr/bin/python3 '%s'", py);
    CHECKF(system(run) == 0, "the edits in %s failed", py);
    for (size_t i = 0; i < n_ops; i++) {
        snprintf(p, sizeof p, "%s/ops_edit%zu.onnx", test_tmpdir(), i);
        expect_bad(p, MIXQ_ERR_UNSUPPORTED, ops_cases[i].needle);
    }
    /* a model made for 32x32 inputs imports, but refuses Fashion-MNIST's 28x28 images */
    snprintf(p, sizeof p, "%s/r32.onnx", test_tmpdir());
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import onnx; m=onnx.load('%s'); d=m.graph.input[0].type.tensor_type.shape.dim; "
             "d[2].dim_value=32; d[3].dim_value=32; onnx.save(m,'%s')\"", FX "resnet_tiny.onnx", p);
    CHECK(system(cmd) == 0);
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_import_onnx(p, &m));
    mixq_dataset *te = NULL;
    if (m && access(FMNIST, R_OK) == 0 && mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TEST, 0, 1, &te) == MIXQ_OK) {
        float acc;
        CHECK(mixq_evaluate(m, te, 64, &acc, NULL) != MIXQ_OK);
        CHECKF(strstr(mixq_last_error(), "expects 1x32x32") != NULL, "%s", mixq_last_error());
    }
    mixq_dataset_free(te);
    mixq_model_free(m);
}

/* A protobuf length-delimited field put in front of the bytes [p, end) of a buffer filled from
 * its end: the new field holds everything after it. */
static unsigned char *pb_wrap(unsigned char *p, const unsigned char *end, unsigned field) {
    size_t len = (size_t)(end - p);
    unsigned char v[10];
    int k = 0;
    do {
        v[k++] = (unsigned char)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
        len >>= 7;
    } while (len);
    p -= k;
    memcpy(p, v, (size_t)k);
    *--p = (unsigned char)(field << 3 | 2);
    return p;
}

/* An ONNX model (ir_version 8, opset 13) whose graph holds a node whose attribute holds a graph
 * ..., `levels` times: messages nested 2 + 3 * levels deep. With as_doc, the same bytes are the
 * model's doc_string instead of its graph (a string: nothing nested). Written to path. */
static int write_nested(const char *path, int levels, int as_doc) {
    size_t cap = 16 * (size_t)levels + 64;
    unsigned char *buf = malloc(cap), *end = buf + cap, *p = end;
    if (!buf) return -1;
    for (int i = 0; i < levels; i++) {
        p = pb_wrap(p, end, 6); /* AttributeProto.g */
        p = pb_wrap(p, end, 5); /* NodeProto.attribute */
        p = pb_wrap(p, end, 1); /* GraphProto.node */
    }
    p = pb_wrap(p, end, as_doc ? 6 : 7); /* ModelProto.doc_string / ModelProto.graph */
    static const unsigned char head[] = {0x08, 0x08, 0x42, 0x02, 0x10, 0x0d}; /* ir_version, opset_import */
    p -= sizeof head;
    memcpy(p, head, sizeof head);
    int rc = test_write_file(path, p, (size_t)(end - p));
    free(buf);
    return rc;
}

/* issue 15: 3000 nested subgraphs overflowed the stack in protobuf-c's recursive unpack; the
 * nesting is now measured on the wire format before unpacking and refused beyond 100 levels */
static void test_nested_graphs(void) {
    char p[1100];
    snprintf(p, sizeof p, "%s/nested.onnx", test_tmpdir());
    static const int deep[] = {3000, 2000, 33};
    for (int i = 0; i < 3; i++) {
        CHECK(write_nested(p, deep[i], 0) == 0);
        char want[64];
        snprintf(want, sizeof want, "nests messages %d levels deep", 2 + 3 * deep[i]);
        expect_bad(p, MIXQ_ERR_FORMAT, want);
        expect_bad(p, MIXQ_ERR_FORMAT, "at most 100 levels");
    }
    /* 32 levels (98 deep) pass the limit and fail later for what they are: nodes without an op */
    CHECK(write_nested(p, 32, 0) == 0);
    mixq_model *m = NULL;
    CHECK(mixq_model_import_onnx(p, &m) != MIXQ_OK && m == NULL);
    CHECKF(strstr(mixq_last_error(), "levels deep") == NULL, "%s", mixq_last_error());
    /* only the schema's message fields count: the same bytes as a string are not nesting */
    CHECK(write_nested(p, 3000, 1) == 0);
    CHECK(mixq_model_import_onnx(p, &m) != MIXQ_OK && m == NULL);
    CHECKF(strstr(mixq_last_error(), "levels deep") == NULL, "%s", mixq_last_error());
    /* a broken byte at the bottom of a deep nesting is still refused for its depth first */
    CHECK(write_nested(p, 3000, 0) == 0);
    size_t n = 0;
    char *t = NULL;
    FILE *f = fopen(p, "rb");
    if (f) {
        t = malloc(1 << 17);
        n = t ? fread(t, 1, 1 << 17, f) : 0;
        fclose(f);
    }
    CHECK(t && n > 30000);
    if (t) {
        t[n - 1] = 0x07; /* the innermost graph's length becomes 7: past the end */
        CHECK(test_write_file(p, t, n) == 0);
        expect_bad(p, MIXQ_ERR_FORMAT, "levels deep");
        /* and a broken file that is not deep is a parse error, protobuf-c never sees it */
        CHECK(test_write_file(p, t + n - 40, 40) == 0);
        expect_bad(p, MIXQ_ERR_FORMAT, "protobuf");
    }
    free(t);
}

int main(void) {
    TEST_RUN(test_import_pytorch);
    TEST_RUN(test_qdq_roundtrip);
    TEST_RUN(test_preprocess_unit);
    TEST_RUN(test_roundtrip_all);
    TEST_RUN(test_bad_files);
    TEST_RUN(test_nested_graphs);
    return test_summary();
}
