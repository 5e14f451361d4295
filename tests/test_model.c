/* Model graph, zoo, model file and whole-model gradient tests (public API). */
#include <omp.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "mixq/mixq.h"
#include "test.h"

static mixq_model *make(const char *arch, int c, int h, int w, int classes, uint64_t seed) {
    mixq_model_config cfg = {.arch = arch, .in_c = c, .in_h = h, .in_w = w, .classes = classes,
                             .seed = seed};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&cfg, &m));
    return m;
}

static int node_index(const mixq_model *m, const char *name) {
    for (int i = 0; i < mixq_model_node_count(m); i++) {
        mixq_node_info ni;
        mixq_model_node(m, i, &ni);
        if (!strcmp(ni.name, name)) return i;
    }
    return -1;
}

static int count_op(const mixq_model *m, mixq_op op) {
    int n = 0;
    for (int i = 0; i < mixq_model_node_count(m); i++) {
        mixq_node_info ni;
        mixq_model_node(m, i, &ni);
        n += ni.op == op;
    }
    return n;
}

static void test_zoo_shapes(void) {
    static const int sizes[][3] = {{1, 28, 28}, {3, 32, 32}, {1, 16, 16}, {3, 20, 24}};
    for (const char *const *a = mixq_model_archs(); *a; a++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            mixq_model *m = make(*a, sizes[s][0], sizes[s][1], sizes[s][2], 10, 1);
            if (!m) {
                CHECKF(0, "%s failed for %dx%dx%d", *a, sizes[s][0], sizes[s][1], sizes[s][2]);
                continue;
            }
            mixq_node_info last;
            CHECK_OK(mixq_model_node(m, mixq_model_node_count(m) - 1, &last));
            CHECK(last.out_c == 10 && last.out_h == 1 && last.out_w == 1);
            /* topological order: every input is an earlier node */
            for (int i = 0; i < mixq_model_node_count(m); i++) {
                mixq_node_info ni;
                mixq_model_node(m, i, &ni);
                for (int k = 0; k < ni.n_inputs; k++) CHECK(ni.inputs[k] >= 0 && ni.inputs[k] < i);
            }
            mixq_model_free(m);
        }
    }
}

static void test_resnet20_structure(void) {
    mixq_model *m = make("resnet20", 3, 32, 32, 10, 1);
    if (!m) return;
    /* The CIFAR ResNet-20 with projection shortcuts: 0.27 M parameters, ~41 MMACs. */
    int64_t params = mixq_model_param_count(m);
    CHECKF(params > 270000 && params < 275000, "params %lld", (long long)params);
    int64_t macs = mixq_model_macs(m);
    CHECKF(macs > 40000000 && macs < 42000000, "macs %lld", (long long)macs);
    int convs = count_op(m, MIXQ_OP_CONV);
    CHECKF(convs == 21, "resnet20 has %d convs (19 + 2 projections expected)", convs);
    int add = node_index(m, "layer2.0.add");
    CHECK(add > 0);
    if (add > 0) {
        mixq_node_info ni;
        mixq_model_node(m, add, &ni);
        CHECK(ni.n_inputs == 2 && ni.out_c == 32 && ni.out_h == 16);
        mixq_node_info ds;
        mixq_model_node(m, ni.inputs[1], &ds);
        CHECK(!strcmp(ds.name, "layer2.0.downsample.1"));
    }
    CHECK(node_index(m, "layer3.2.conv2") > 0);
    CHECK(mixq_model_tensor_data(m, "layer1.1.bn2.running_var") != NULL);
    CHECK(mixq_model_tensor_grad(m, "layer1.1.bn2.running_var") == NULL);
    CHECK(mixq_model_tensor_data(m, "layer9.conv") == NULL);
    CHECK(strstr(mixq_last_error(), "layer9.conv") != NULL);
    mixq_model_free(m);
}

/* torchvision's mobilenet_v2(num_classes=1000) at 224 px: 3 504 872 parameters (BN's weight and
 * bias included, running statistics not), 17 inverted residuals, 10 identity shortcuts. */
static void test_mobilenet_v2_structure(void) {
    mixq_model *m = make("mobilenet_v2", 3, 224, 224, 1000, 1);
    if (!m) return;
    int64_t params = mixq_model_param_count(m), macs = mixq_model_macs(m);
    CHECKF(params == 3504872, "mobilenet_v2 at 224 px: %lld parameters (torchvision: 3504872)",
           (long long)params);
    CHECKF(macs > 295000000 && macs < 305000000, "macs %lld (about 300 M expected)", (long long)macs);
    int convs = count_op(m, MIXQ_OP_CONV), adds = count_op(m, MIXQ_OP_ADD);
    CHECKF(convs == 52 && adds == 10, "%d convs (52 expected), %d adds (10 expected)", convs, adds);
    mixq_node_info ni;
    int i = node_index(m, "features.18.0");
    CHECK(i > 0);
    if (i > 0) {
        mixq_model_node(m, i, &ni);
        CHECK(ni.out_c == 1280 && ni.out_h == 7 && ni.in_c == 320);
    }
    i = node_index(m, "features.1.conv.0.0"); /* t = 1: depthwise first, no expansion */
    CHECK(i > 0);
    if (i > 0) {
        mixq_model_node(m, i, &ni);
        CHECK(ni.groups == 32 && ni.out_c == 32);
    }
    CHECK(mixq_model_tensor_data(m, "features.2.conv.3.running_mean") != NULL);
    mixq_model_free(m);
    /* small-input variant: stride-1 stem, a 28 px input ends at 2x2 before the average pool */
    m = make("mobilenet_v2", 1, 28, 28, 10, 1);
    if (!m) return;
    i = node_index(m, "features.18.0");
    if (i > 0) mixq_model_node(m, i, &ni);
    CHECK(i > 0 && ni.out_h == 2 && ni.out_w == 2);
    mixq_model_free(m);
    mixq_model_config cfg = {.arch = "mobilenet_v2", .in_c = 3, .in_h = 32, .in_w = 32,
                             .classes = 10, .width = 0.5f, .seed = 3};
    CHECK_OK(mixq_model_create(&cfg, &m));
    if (!m) return;
    i = node_index(m, "features.0.0");
    if (i > 0) mixq_model_node(m, i, &ni);
    CHECK(i > 0 && ni.out_c == 16 && ni.out_h == 32); /* _make_divisible(32 * 0.5) */
    mixq_model_free(m);
}

/* SqueezeNet 1.1's Fire modules: squeeze 1x1, then 1x1 and 3x3 expands joined along channels */
static void test_squeezenet_structure(void) {
    static const int sizes[][3] = {{1, 28, 28}, {3, 32, 32}, {3, 224, 224}};
    for (int s = 0; s < 3; s++) {
        mixq_model *m = make("squeezenet", sizes[s][0], sizes[s][1], sizes[s][2], 10, 1);
        if (!m) return;
        int concats = count_op(m, MIXQ_OP_CONCAT), convs = count_op(m, MIXQ_OP_CONV);
        CHECKF(concats == 8 && convs == 26, "%d concats (8), %d convs (26)", concats, convs);
        mixq_node_info ni;
        int i = node_index(m, "features.12.cat");
        CHECK(i > 0);
        if (i > 0) {
            mixq_model_node(m, i, &ni);
            CHECK(ni.out_c == 512 && ni.n_inputs == 2);
            /* 28 -> 14 -> 7 -> 3; 32 -> 16 -> 8 -> 4; 224: 111 -> 55 -> 27 -> 13 */
            int want = sizes[s][1] == 28 ? 3 : sizes[s][1] == 32 ? 4 : 13;
            CHECKF(ni.out_h == want, "%d px input: features.12 is %dx%d, want %d", sizes[s][1],
                   ni.out_h, ni.out_w, want);
        }
        i = node_index(m, "features.3.expand3x3");
        if (i > 0) mixq_model_node(m, i, &ni);
        CHECK(i > 0 && ni.in_c == 16 && ni.out_c == 64 && ni.kh == 3);
        mixq_model_free(m);
    }
}

static void test_mobilenet_depthwise(void) {
    mixq_model_config cfg = {.arch = "mobilenet_v1", .in_c = 3, .in_h = 32, .in_w = 32,
                             .classes = 10, .width = 0.25f, .seed = 3};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&cfg, &m));
    if (!m) return;
    int i = node_index(m, "layers.0.conv_dw");
    CHECK(i > 0);
    mixq_node_info ni;
    mixq_model_node(m, i, &ni);
    CHECK(ni.groups == ni.in_c && ni.out_c == ni.in_c && ni.in_c == 8);
    mixq_model_free(m);
}

static void test_bad_config(void) {
    mixq_model *m = NULL;
    mixq_model_config cfg = {.arch = "resnet200", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    CHECK(mixq_model_create(&cfg, &m) == MIXQ_ERR_NOTFOUND && m == NULL);
    CHECK(strstr(mixq_last_error(), "resnet200") != NULL);
    cfg.arch = "resnet20";
    cfg.classes = 1;
    CHECK(mixq_model_create(&cfg, &m) == MIXQ_ERR_ARG);
    cfg.classes = 10;
    cfg.in_h = 2;
    CHECK(mixq_model_create(&cfg, &m) == MIXQ_ERR_ARG);
    cfg.in_h = 28;
    cfg.width = 0.5f;
    CHECK(mixq_model_create(&cfg, &m) == MIXQ_ERR_ARG); /* width is mobilenet-only */
    mixq_model_free(NULL);                              /* harmless */
}

/* Forward must agree between batch sizes (inference) and be deterministic across threads. */
static void test_forward_batch_and_threads(void) {
    mixq_model *m = make("resnet20", 1, 12, 12, 10, 7);
    if (!m) return;
    float x[5 * 144], l5[50], l1[10], l2[50];
    test_fill(x, 5 * 144, 1, -1, 1);
    CHECK_OK(mixq_model_forward(m, x, 5, 0, l5));
    CHECK_OK(mixq_model_forward(m, x + 3 * 144, 1, 0, l1));
    CHECK(test_max_rel_err(l1, l5 + 30, 10) < 1e-5);
    omp_set_num_threads(1);
    CHECK_OK(mixq_model_forward(m, x, 5, 0, l2));
    CHECK(memcmp(l2, l5, sizeof l2) == 0);
    omp_set_num_threads(mixq_get_threads());
    mixq_model_free(m);
}

/* ---------------------------------------------------------------- model files */
static char *path_in_tmp(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static long file_size(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static unsigned char *read_all(const char *p, long *n) {
    *n = file_size(p);
    unsigned char *b = malloc((size_t)*n);
    FILE *f = fopen(p, "rb");
    if (!f || fread(b, 1, (size_t)*n, f) != (size_t)*n) {
        free(b);
        b = NULL;
    }
    if (f) fclose(f);
    return b;
}

static void test_save_load_roundtrip(void) {
    mixq_model *m = make("resnet20", 1, 12, 12, 10, 5);
    if (!m) return;
    float *rv = mixq_model_tensor_data(m, "layer1.0.bn1.running_var");
    rv[3] = 2.5f;
    const char *p = path_in_tmp("rt.mixq");
    CHECK_OK(mixq_model_save(m, p));
    mixq_model *l = NULL;
    CHECK_OK(mixq_model_load(p, &l));
    if (l) {
        CHECK(!strcmp(mixq_model_arch(l), "resnet20"));
        CHECK(mixq_model_tensor_count(l) == mixq_model_tensor_count(m));
        for (int t = 0; t < mixq_model_tensor_count(m); t++) {
            mixq_tensor_info a, b;
            mixq_model_tensor(m, t, &a);
            mixq_model_tensor(l, t, &b);
            CHECK(!strcmp(a.name, b.name) && a.numel == b.numel);
            CHECK(!memcmp(mixq_model_tensor_data(m, a.name), mixq_model_tensor_data(l, b.name),
                          sizeof(float) * (size_t)a.numel));
        }
        float x[2 * 144], la[20], lb[20];
        test_fill(x, 288, 3, 0, 1);
        CHECK_OK(mixq_model_forward(m, x, 2, 0, la));
        CHECK_OK(mixq_model_forward(l, x, 2, 0, lb));
        CHECK(!memcmp(la, lb, sizeof la));
    }
    mixq_model_free(l);
    mixq_model_free(m);
}

/* Copy model file `path` to `out` with the byte after the first `needle` set to `to` and the
 * checksum fixed; 0 (a failed check) when the needle is not there. */
static int patch_file(const char *path, const char *needle, char to, const char *out) {
    size_t n = 0;
    char *b = test_slurp(path);
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        fclose(f);
    }
    const size_t k = strlen(needle);
    char *at = NULL;
    for (size_t i = 0; b && i + k < n && !at; i++)
        if (!memcmp(b + i, needle, k)) at = b + i + k;
    CHECKF(at != NULL, "'%s' not in %s", needle, path);
    if (at) {
        *at = to;
        uint32_t crc = (uint32_t)crc32(0L, (const unsigned char *)b, (uInt)(n - 4));
        memcpy(b + n - 4, &crc, 4);
        CHECK(test_write_file(out, b, n) == 0);
    }
    free(b);
    return at != NULL;
}

/* A model records its input transform: none when built fresh (the default, not written), then
 * what is set survives a file and a clone; a file without the section is the default, unrecorded;
 * a bad section is an error naming the file; a transform for other channels is refused. */
static void test_preprocess_recorded(void) {
    mixq_model *m = make("lenet5", 1, 28, 28, 10, 5), *l = NULL, *c = NULL;
    if (!m) return;
    mixq_preprocess pp, got;
    CHECK(mixq_model_preprocess(m, &got) == 0 && got.from_data && !strcmp(got.name, "dataset"));
    const char *p = path_in_tmp("pp0.mixq");
    CHECK_OK(mixq_model_save(m, p));
    CHECK_OK(mixq_model_load(p, &l));
    CHECK(l && mixq_model_preprocess(l, &got) == 0 && got.from_data);
    mixq_model_free(l);
    l = NULL;
    const float mu = 0.5f, sd = 0.25f;
    CHECK_OK(mixq_preprocess_custom(1, 1.0f / 255, &mu, 1, &sd, 1, 0, &pp));
    CHECK_OK(mixq_model_set_preprocess(m, &pp));
    CHECK_OK(mixq_model_save(m, p));
    CHECK_OK(mixq_model_load(p, &l));
    CHECK(l && mixq_model_preprocess(l, &got) == 1 && !memcmp(&got, &pp, sizeof pp));
    CHECK_OK(mixq_model_clone(m, &c));
    CHECK(c && mixq_model_preprocess(c, &got) == 1 && !memcmp(&got, &pp, sizeof pp));
    CHECK_OK(mixq_preprocess_preset("imagenet", 3, &pp));
    CHECK(mixq_model_set_preprocess(m, &pp) == MIXQ_ERR_SHAPE);
    /* the section's JSON corrupted (same length, checksum fixed): an error naming the file */
    const char *q = path_in_tmp("pp_bad.mixq");
    if (patch_file(p, "\"std\":[", '-', q)) { /* std -0.25 */
        mixq_model *x = NULL;
        CHECK(mixq_model_load(q, &x) == MIXQ_ERR_FORMAT && x == NULL);
        CHECKF(strstr(mixq_last_error(), "pp_bad.mixq") && strstr(mixq_last_error(), "std"), "%s", mixq_last_error());
    }
    mixq_model_free(c);
    mixq_model_free(l);
    mixq_model_free(m);
}

/* A model's held-out split: none when built fresh; what is set survives a file (a seed past 2^53
 * exactly) and a clone; a count past the images is refused; a bad section is an error naming the
 * file and the field. */
static void test_holdout_recorded(void) {
    mixq_model *m = make("lenet5", 1, 28, 28, 10, 5), *l = NULL, *c = NULL;
    if (!m) return;
    mixq_holdout h = {.seed = 0x8000000000000005ull, .count = 5000, .images = 60000}, got;
    CHECK(mixq_model_holdout(m, &got) == 0);
    CHECK(mixq_model_split_seed(m, 0, 9, 4) == 4 && mixq_model_split_seed(m, 1, 9, 4) == 9);
    const char *p = path_in_tmp("ho.mixq");
    CHECK_OK(mixq_model_save(m, p));
    CHECK_OK(mixq_model_load(p, &l));
    CHECK(l && mixq_model_holdout(l, &got) == 0);
    mixq_model_free(l);
    l = NULL;
    CHECK_OK(mixq_model_set_holdout(m, &h));
    CHECK(mixq_model_split_seed(m, 0, 9, 4) == h.seed && mixq_model_split_seed(m, 1, 9, 4) == 9);
    CHECK_OK(mixq_model_save(m, p));
    CHECK_OK(mixq_model_load(p, &l));
    CHECK(l && mixq_model_holdout(l, &got) == 1 && got.seed == h.seed && got.count == 5000 && got.images == 60000);
    CHECK_OK(mixq_model_clone(m, &c));
    CHECK(c && mixq_model_holdout(c, &got) == 1 && got.seed == h.seed && got.count == 5000);
    mixq_holdout bad = {.seed = 1, .count = 7, .images = 6};
    CHECK(mixq_model_set_holdout(m, &bad) == MIXQ_ERR_ARG);
    CHECK_OK(mixq_model_set_holdout(m, NULL));
    CHECK(mixq_model_holdout(m, &got) == 0);
    const char *q = path_in_tmp("ho_bad.mixq");
    if (patch_file(p, "\"count\": ", '9', q)) { /* 9000 of 60000: fine */
        mixq_model *x = NULL;
        CHECK_OK(mixq_model_load(q, &x));
        CHECK(x && mixq_model_holdout(x, &got) == 1 && got.count == 9000);
        mixq_model_free(x);
    }
    if (patch_file(p, "\"images\": ", '0', q)) { /* 5000 of 0 images */
        mixq_model *x = NULL;
        CHECK(mixq_model_load(q, &x) == MIXQ_ERR_FORMAT && x == NULL);
        CHECKF(strstr(mixq_last_error(), "ho_bad.mixq") && strstr(mixq_last_error(), "images"), "%s",
               mixq_last_error());
    }
    if (patch_file(p, "\"seed\": \"", 'x', q)) {
        mixq_model *x = NULL;
        CHECK(mixq_model_load(q, &x) == MIXQ_ERR_FORMAT && x == NULL);
        CHECKF(strstr(mixq_last_error(), "ho_bad.mixq") && strstr(mixq_last_error(), "seed"), "%s",
               mixq_last_error());
    }
    mixq_model_free(c);
    mixq_model_free(l);
    mixq_model_free(m);
}

static void expect_load_error(const char *p, mixq_status want, const char *needle) {
    mixq_model *l = (mixq_model *)1;
    mixq_status st = mixq_model_load(p, &l);
    CHECKF(st == want, "loading %s: status %d (%s), want %d", p, st, mixq_last_error(), want);
    CHECK(l == NULL);
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "message '%s' lacks '%s'",
           mixq_last_error(), needle);
}

static void test_bad_model_files(void) {
    mixq_model *m = make("lenet5", 1, 28, 28, 10, 5);
    if (!m) return;
    const char *good = path_in_tmp("good.mixq");
    CHECK_OK(mixq_model_save(m, good));
    long n;
    unsigned char *b = read_all(good, &n);
    CHECK(b != NULL);
    if (!b) return;
    const char *p = path_in_tmp("bad.mixq");

    expect_load_error(path_in_tmp("does-not-exist.mixq"), MIXQ_ERR_IO, "does-not-exist");
    /* truncated at several points */
    long cuts[] = {0, 5, 11, 60, 100, n / 2, n - 5, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        test_write_file(p, b, (size_t)cuts[i]);
        expect_load_error(p, MIXQ_ERR_FORMAT, "bad.mixq");
    }
    /* bad magic */
    unsigned char *c = malloc((size_t)n);
    memcpy(c, b, (size_t)n);
    c[0] = 'X';
    test_write_file(p, c, (size_t)n);
    expect_load_error(p, MIXQ_ERR_FORMAT, "magic");
    /* wrong version */
    memcpy(c, b, (size_t)n);
    c[8] = 9;
    test_write_file(p, c, (size_t)n);
    expect_load_error(p, MIXQ_ERR_FORMAT, "version");
    /* unknown architecture */
    memcpy(c, b, (size_t)n);
    memcpy(c + 12, "lenet9", 6);
    test_write_file(p, c, (size_t)n);
    expect_load_error(p, MIXQ_ERR_FORMAT, "lenet9");
    /* input shape changed: the tensors no longer match (fc1 in-features differ) */
    memcpy(c, b, (size_t)n);
    int32_t h = 40;
    memcpy(c + 12 + 32 + 4, &h, 4);
    test_write_file(p, c, (size_t)n);
    expect_load_error(p, MIXQ_ERR_FORMAT, "shape");
    /* renamed tensor */
    memcpy(c, b, (size_t)n);
    long off = 8 + 4 + 32 + 16 + 4 + 8 + 4; /* first tensor name */
    c[off] = 'k';
    test_write_file(p, c, (size_t)n);
    expect_load_error(p, MIXQ_ERR_FORMAT, "conv1.weight");
    /* NaN in a weight */
    memcpy(c, b, (size_t)n);
    float nanv = NAN;
    memcpy(c + off + 64 + 20 + 4 * 7, &nanv, 4);
    test_write_file(p, c, (size_t)n);
    expect_load_error(p, MIXQ_ERR_NUMERIC, "conv1.weight");
    /* flipped data bit: checksum */
    memcpy(c, b, (size_t)n);
    c[n / 2] ^= 0x01;
    test_write_file(p, c, (size_t)n);
    mixq_model *l = NULL;
    CHECK(mixq_model_load(p, &l) != MIXQ_OK && l == NULL);
    /* trailing garbage */
    unsigned char *d = malloc((size_t)n + 3);
    memcpy(d, b, (size_t)n);
    memcpy(d + n, "abc", 3);
    test_write_file(p, d, (size_t)n + 3);
    expect_load_error(p, MIXQ_ERR_FORMAT, "after the end");
    /* unwritable destination */
    CHECK(mixq_model_save(m, "/nonexistent-dir/x.mixq") == MIXQ_ERR_IO);
    free(d);
    free(c);
    free(b);
    mixq_model_free(m);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A 76-byte version-1 header and nothing else: arch, input c x h x w, classes, width, n_tensors. */
static void write_header_only(const char *p, const char *arch, const int32_t dims[4], float width, uint32_t nt) {
    unsigned char h[76] = {0};
    uint32_t ver = 1;
    uint64_t seed = 1;
    memcpy(h, "MIXQMODL", 8);
    memcpy(h + 8, &ver, 4);
    memcpy(h + 12, arch, strlen(arch));
    memcpy(h + 44, dims, 16);
    memcpy(h + 60, &width, 4);
    memcpy(h + 64, &seed, 8);
    memcpy(h + 72, &nt, 4);
    CHECK(test_write_file(p, h, sizeof h) == 0);
}

/* issue 15: a 76-byte header declaring mobilenet_v1 at 64x1024x1024 with 100000 classes (width 4:
 * 3.6 GB of arenas) made the loader build and zero the whole model before finding the file too
 * short. The tensors' bytes are now compared with the file first: a quick error, no large
 * allocation (measured in a child: its peak resident size grows by under 64 MB). */
static void test_huge_header(void) {
    mixq_model *small = make("mobilenet_v1", 3, 32, 32, 10, 1);
    if (!small) return;
    uint32_t nt = (uint32_t)mixq_model_tensor_count(small);
    mixq_model_free(small);
    const char *p = path_in_tmp("huge.mixq");
    static const int32_t dims[4] = {64, 1024, 1024, 100000};
    static const float widths[] = {4.0f, 1.0f};
    for (int k = 0; k < 4; k++) {
        write_header_only(p, "mobilenet_v1", dims, widths[k % 2], k < 2 ? nt : nt + 1);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            struct rusage r0, r1;
            getrusage(RUSAGE_SELF, &r0);
            mixq_model *m = NULL;
            mixq_status st = mixq_model_load(p, &m);
            getrusage(RUSAGE_SELF, &r1);
            int ok = st == MIXQ_ERR_FORMAT && m == NULL &&
                     strstr(mixq_last_error(), k < 2 ? "truncated or corrupt" : "tensors but") != NULL;
            if (!ok) fprintf(stderr, "  width %g: status %d: %s\n", (double)widths[k % 2], st, mixq_last_error());
            if (r1.ru_maxrss - r0.ru_maxrss > 64 * 1024)
                fprintf(stderr, "  peak resident size grew by %ld kB\n", r1.ru_maxrss - r0.ru_maxrss), ok = 0;
            _exit(ok ? 0 : 1);
        }
        double t0 = now_s();
        int stw = -1;
        waitpid(pid, &stw, 0);
        double dt = now_s() - t0;
        CHECKF(WIFEXITED(stw) && WEXITSTATUS(stw) == 0, "case %d: status %d", k, stw);
        CHECKF(dt < 1.0, "case %d took %.2f s", k, dt);
    }
    /* found by tests/fuzz (issue 15): a graph line pooling with pad 1623661682 (2 * pad overflowed) */
    expect_load_error("tests/fuzz/corpus/model/crash-pool-pad-overflow.mixq", MIXQ_ERR_FORMAT,
                      "pad 1623661682 invalid");
    /* the message names what the header declares and what the file holds */
    write_header_only(p, "mobilenet_v1", dims, 4.0f, nt);
    expect_load_error(p, MIXQ_ERR_FORMAT, "'mobilenet_v1' (64x1024x1024, 100000 classes, width 4)");
    expect_load_error(p, MIXQ_ERR_FORMAT, "but 0 bytes follow the header");
}

static void test_backward_misuse(void) {
    mixq_model *m = make("lenet5", 1, 28, 28, 10, 5);
    if (!m) return;
    int y[2] = {1, 2};
    CHECK(mixq_model_backward(m, y, 0, NULL) == MIXQ_ERR_STATE);
    float x[2 * 784];
    test_fill(x, 2 * 784, 9, 0, 1);
    CHECK_OK(mixq_model_forward(m, x, 2, 1, NULL));
    int bad[2] = {1, 10};
    CHECK(mixq_model_backward(m, bad, 0, NULL) == MIXQ_ERR_ARG);
    CHECK(mixq_model_backward(m, y, 1.5f, NULL) == MIXQ_ERR_ARG);
    x[5] = NAN;
    CHECK_OK(mixq_model_forward(m, x, 2, 1, NULL));
    CHECK(mixq_model_backward(m, y, 0, NULL) == MIXQ_ERR_NUMERIC);
    CHECK(mixq_model_forward(m, x, 0, 1, NULL) == MIXQ_ERR_ARG);
    mixq_model_free(m);
}

int main(void) {
    TEST_RUN(test_zoo_shapes);
    TEST_RUN(test_resnet20_structure);
    TEST_RUN(test_mobilenet_v2_structure);
    TEST_RUN(test_squeezenet_structure);
    TEST_RUN(test_mobilenet_depthwise);
    TEST_RUN(test_bad_config);
    TEST_RUN(test_forward_batch_and_threads);
    TEST_RUN(test_save_load_roundtrip);
    TEST_RUN(test_preprocess_recorded);
    TEST_RUN(test_holdout_recorded);
    TEST_RUN(test_bad_model_files);
    TEST_RUN(test_backward_misuse);
    TEST_RUN(test_huge_header);
    return test_summary();
}
