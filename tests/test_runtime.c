/* CPU runtime: the int8 kernel against the reference, whole models against the fake-quantized
 * model (every kernel, uniform, mixed and per-kernel policies, signed inputs, grouped convs),
 * thread-count invariance, errors, and calibrate-cpu's table feeding the cpu back-end and the
 * runtime's kernel choice. */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "kernels/bitserial.h"
#include "kernels/int8.h"
#include "kernels/rt.h"
#include "nn/model.h"
#include "mixq/mixq.h"
#include "quant/quant.h"
#include "test.h"

/* A tiny IDX dataset (32 images of 28x28) for calibration and comparison. */
static const char *tiny_dataset(void) {
    static char dir[1024];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/tiny28", test_tmpdir());
    enum { N = 32, P = 28 * 28 };
    static unsigned char img[N * P], lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (unsigned char)(i % 10);
        for (int k = 0; k < P; k++) {
            const int r = k / 28, c = k % 28;
            const int v = ((r - 14) * (r - 14) + (c - 14) * (c - 14) < 20 * (i % 7 + 2) ? 160 : 0) +
                          ((i * 131 + k * 29) % 97);
            img[i * P + k] = (unsigned char)(v > 255 ? 255 : v);
        }
    }
    CHECK(test_write_idx(dir, N, 28, 28, img, lab) == 0);
    return dir;
}

static void test_int8_vs_reference(void) {
    if (!mq_i8_available()) {
        uint8_t a = 1;
        int8_t w = 1;
        int32_t c;
        CHECK(mq_i8_gemm(&a, &w, 1, 1, 1, &c, 1) == MIXQ_ERR_UNSUPPORTED);
        test_skip_cpu("no AVX-512 VNNI or AVX-VNNI: the int8 kernel is unavailable (its refusal checked)");
        return;
    }
    const int Ms[] = {1, 7, 33}, Ns[] = {1, 15, 17}, Ks[] = {1, 63, 64, 65, 300, 1153};
    unsigned seed = 1;
    mq_i8_thread *th = NULL;
    for (size_t mi = 0; mi < 3; mi++)
        for (size_t ni = 0; ni < 3; ni++)
            for (size_t ki = 0; ki < 6; ki++) {
                const int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                uint8_t *A = malloc((size_t)M * K);
                int8_t *W = malloc((size_t)N * K);
                int *bits = malloc(sizeof(int) * (size_t)N);
                int32_t *C = malloc(sizeof(int32_t) * (size_t)M * N);
                int32_t *R = malloc(sizeof(int32_t) * (size_t)M * N);
                if (!A || !W || !bits || !C || !R) {
                    CHECK(0);
                    free(A), free(W), free(bits), free(C), free(R);
                    return;
                }
                for (int i = 0; i < M * K; i++) {
                    seed = seed * 1103515245u + 12345u;
                    /* extremes half the time: saturation would show */
                    A[i] = (seed >> 16) & 1 ? 255 : (uint8_t)(seed >> 8);
                }
                for (int i = 0; i < N * K; i++) {
                    seed = seed * 1103515245u + 12345u;
                    W[i] = (seed >> 16) & 1 ? ((seed >> 17) & 1 ? 127 : -128) : (int8_t)(seed >> 8);
                }
                for (int n = 0; n < N; n++) bits[n] = 8;
                CHECK_OK(mq_i8_gemm(A, W, M, N, K, C, N));
                CHECK_OK(mq_bs_gemm_ref(A, 8, W, bits, M, N, K, R));
                CHECKF(!memcmp(C, R, sizeof(int32_t) * (size_t)M * N), "int8 M=%d N=%d K=%d differs", M,
                       N, K);
                /* the matmul primitive, twice (the second call hits the cache) */
                mq_i8_weights *iw = NULL;
                CHECK_OK(mq_i8_weights_create(W, N, K, &iw));
                for (int rep = 0; iw && rep < 2; rep++) {
                    memset(C, 0x55, sizeof(int32_t) * (size_t)M * N);
                    CHECK_OK(mq_i8_matmul(iw, A, M, C, &th));
                    CHECKF(!memcmp(C, R, sizeof(int32_t) * (size_t)M * N),
                           "int8 matmul M=%d N=%d K=%d differs", M, N, K);
                }
                mq_i8_weights_free(iw);
                free(A), free(W), free(bits), free(C), free(R);
            }
    int32_t c;
    uint8_t a = 0;
    int8_t w = 0;
    CHECK(mq_i8_gemm(&a, &w, 1, 2, 1, &c, 1) == MIXQ_ERR_ARG); /* ldc < N */
    /* more row counts than the cache holds: every one still right */
    mq_i8_weights *iw = NULL;
    int8_t w3[3 * 5];
    uint8_t a3[20 * 5];
    for (int i = 0; i < 15; i++) w3[i] = (int8_t)(i * 17 - 120);
    for (int i = 0; i < 100; i++) a3[i] = (uint8_t)(i * 37);
    CHECK_OK(mq_i8_weights_create(w3, 3, 5, &iw));
    for (int M = 1; iw && M <= MQ_I8_CACHE + 4; M++) {
        int32_t c3[20 * 3], r3[20 * 3];
        int bits3[3] = {8, 8, 8};
        CHECK_OK(mq_i8_matmul(iw, a3, M, c3, &th));
        CHECK_OK(mq_bs_gemm_ref(a3, 8, w3, bits3, M, 3, 5, r3));
        CHECKF(!memcmp(c3, r3, sizeof(int32_t) * (size_t)M * 3), "int8 matmul M=%d differs", M);
    }
    mq_i8_weights_free(iw);
    mq_i8_weights_free(NULL);
    mq_i8_thread_free(th);
}

/* The direct int8 convolution equals im2col (NHWC, (r, s, c) order, zero padding) x weights. */
static void test_int8_conv_vs_reference(void) {
    if (!mq_i8_available()) {
        test_skip_cpu("no AVX-512 VNNI or AVX-VNNI: the int8 kernel is unavailable");
        return;
    }
    static const struct { int n, C, H, W, K, R, S, st, pd; } sh[] = {
        {1, 1, 7, 5, 3, 3, 3, 1, 1}, {2, 16, 9, 9, 17, 3, 3, 2, 1}, {3, 5, 6, 4, 8, 1, 1, 2, 0},
        {1, 33, 5, 5, 64, 5, 5, 1, 2}, {2, 3, 8, 8, 4, 3, 2, 1, 0}};
    mq_i8_thread *th = NULL;
    unsigned seed = 5;
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
        const int n = sh[i].n, C = sh[i].C, H = sh[i].H, W = sh[i].W, K = sh[i].K, R = sh[i].R,
                  S = sh[i].S, st = sh[i].st, pd = sh[i].pd;
        const int P = (H + 2 * pd - R) / st + 1, Q = (W + 2 * pd - S) / st + 1, Kd = R * S * C;
        const int M = n * P * Q;
        uint8_t *x = malloc((size_t)n * H * W * C), *col = malloc((size_t)M * Kd);
        int8_t *w = malloc((size_t)K * Kd);
        int *bits = malloc(sizeof(int) * (size_t)K);
        int32_t *got = malloc(sizeof(int32_t) * (size_t)M * K), *ref = malloc(sizeof(int32_t) * (size_t)M * K);
        if (!x || !col || !w || !bits || !got || !ref) {
            CHECK(0);
            free(x), free(col), free(w), free(bits), free(got), free(ref);
            continue;
        }
        for (int j = 0; j < n * H * W * C; j++) {
            seed = seed * 1103515245u + 12345u;
            x[j] = (seed >> 16) & 1 ? 255 : (uint8_t)(seed >> 8);
        }
        for (int j = 0; j < K * Kd; j++) {
            seed = seed * 1103515245u + 12345u;
            w[j] = (int8_t)(seed >> 8);
        }
        for (int k = 0; k < K; k++) bits[k] = 8;
        for (int m = 0; m < M; m++) {
            const int img = m / (P * Q), p = m % (P * Q) / Q, q = m % Q;
            for (int r = 0; r < R; r++)
                for (int t = 0; t < S; t++)
                    for (int c = 0; c < C; c++) {
                        const int h = p * st - pd + r, ww = q * st - pd + t;
                        col[(size_t)m * Kd + ((size_t)r * S + t) * C + c] =
                            (h < 0 || h >= H || ww < 0 || ww >= W) ? 0 : x[(((size_t)img * H + h) * W + ww) * C + c];
                    }
        }
        CHECK_OK(mq_bs_gemm_ref(col, 8, w, bits, M, K, Kd, ref));
        mq_i8_weights *iw = NULL;
        CHECK_OK(mq_i8_conv_weights_create(w, K, C, H, W, R, S, st, pd, &iw));
        if (iw) {
            CHECK_OK(mq_i8_conv(iw, x, n, got, &th));
            CHECKF(!memcmp(got, ref, sizeof(int32_t) * (size_t)M * K), "int8 conv shape %zu differs", i);
            CHECK(mq_i8_matmul(iw, x, 1, got, &th) == MIXQ_ERR_ARG); /* not matmul weights */
        }
        mq_i8_weights_free(iw);
        free(x), free(col), free(w), free(bits), free(got), free(ref);
    }
    mq_i8_weights *bad = NULL;
    int8_t w1 = 1;
    CHECK(mq_i8_conv_weights_create(&w1, 1, 1, 2, 2, 3, 3, 1, 0, &bad) == MIXQ_ERR_ARG && !bad);
    mq_i8_thread_free(th);
}

static mixq_model *make_model(const char *arch) {
    mixq_model_config c = {.arch = arch, .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10,
                           .width = 1.0f, .seed = 3};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&c, &m));
    return m;
}

static int quantize(mixq_model *m, const mixq_dataset *d, const char *json) {
    mixq_policy *p = NULL;
    int rc = mixq_policy_parse(json, strlen(json), "test policy", &p);
    CHECKF(rc == 0, "policy: %s", mixq_last_error());
    if (!rc) rc = mixq_model_quantize(m, p);
    CHECKF(rc == 0, "quantize: %s", mixq_last_error());
    if (!rc) rc = mixq_model_calibrate(m, d, 32);
    CHECKF(rc == 0, "calibrate: %s", mixq_last_error());
    mixq_policy_free(p);
    return rc;
}

/* Runtime logits vs the fake-quantized model's on the tiny set: the same class for every image
 * and logits equal to float rounding (a value landing exactly on a rounding boundary of a later
 * quantizer could flip one code; the threshold allows one such flip, not a wrong kernel). */
static void compare(mixq_model *m, const mixq_dataset *d, mixq_kernel k, const char *what) {
    mixq_runtime_config rc;
    mixq_runtime_config_default(&rc);
    rc.kernel = k;
    mixq_runtime *rt = NULL;
    CHECK_OK(mixq_runtime_create(m, &rc, &rt));
    if (!rt) return;
    mixq_runtime_eval ev;
    CHECK_OK(mixq_runtime_evaluate(rt, m, d, 13, &ev)); /* 13: a ragged last batch */
    /* the same class for every image, but where the reference's logits tie exactly (an integer
     * grid: 1-bit layers with quantized biases), which float rounding may break either way */
    CHECKF(ev.disagree == ev.disagree_ties && ev.disagree_ties <= 1,
           "%s/%s: %d predictions differ, %d of them ties (acc %.3f vs %.3f)", what, mixq_kernel_name(k),
           ev.disagree, ev.disagree_ties, ev.accuracy, ev.ref_accuracy);
    CHECKF(ev.max_logit_diff < 2e-2, "%s/%s: logit difference %g", what, mixq_kernel_name(k),
           ev.max_logit_diff);
    CHECK(ev.images == mixq_dataset_count(d));
    int requant = 0;
    for (int i = 0; i < mixq_runtime_layer_count(rt); i++) {
        mixq_runtime_layer_info li;
        CHECK_OK(mixq_runtime_layer(rt, i, &li));
        requant += strstr(li.fused, "requant") != NULL;
        if (k != MIXQ_KERNEL_AUTO && li.kernel != MIXQ_KERNEL_FP32)
            CHECKF(li.kernel == k, "%s: layer %s runs %s", what, li.name, mixq_kernel_name(li.kernel));
        CHECK(li.images == ev.images);
    }
    /* resnet20: every block's conv1 -> bn -> relu -> conv2 hands codes over (fused
     * re-quantization) unless a float layer is involved */
    if (!strncmp(what, "resnet20", 8)) CHECKF(requant == 9, "%s: %d layers re-quantize", what, requant);
    /* lenet5 with integer layers only: conv1 -> pool1 -> conv2 and conv2 -> pool2 -> fc1 hand
     * codes through the max pools, fc1 -> fc2 -> fc3 directly; vgg11: every conv */
    if (!strncmp(what, "lenet5 case 0", 13) || !strncmp(what, "lenet5 case 1", 13))
        CHECKF(requant == 4, "%s: %d layers re-quantize", what, requant);
    if (!strncmp(what, "vgg11", 5)) CHECKF(requant == 8, "%s: %d layers re-quantize", what, requant);
    mixq_runtime_free(rt);
}

static void test_models_match_fake_quant(void) {
    static const struct {
        const char *arch, *policy;
    } cases[] = {
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":8,\"a_bits\":8}}"},
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":4,\"a_bits\":4}}"},
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":2,\"a_bits\":2}}"},
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":1,\"a_bits\":1,\"granularity\":\"layer\"}}"},
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":3,\"a_bits\":5},\"layers\":{"
                   "\"conv1\":{\"w_bits\":[1,2,3,4,8,5],\"a_bits\":6},"
                   "\"conv2\":{\"w_bits\":[1,1,2,2,3,3,4,4,5,5,6,6,7,7,8,8],\"a_bits\":3},"
                   "\"fc3\":{\"w_bits\":32,\"a_bits\":8}}}"},
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":6,\"a_bits\":7,\"w_mode\":\"kmeans\"}}"},
        {"resnet20", "{\"mixq_policy\":1,\"default\":{\"w_bits\":3,\"a_bits\":4},\"layers\":{"
                     "\"conv1\":{\"w_bits\":8,\"a_bits\":8},\"fc\":{\"w_bits\":8,\"a_bits\":32}}}"},
        {"mobilenet_v1", "{\"mixq_policy\":1,\"default\":{\"w_bits\":5,\"a_bits\":4}}"},
        /* 28x28 input: its last convs see 1x1 maps, whose padding-only taps are dropped (the
         * exact check of that is test_crop_taps; these logits are too small to catch it) */
        {"vgg11", "{\"mixq_policy\":1,\"default\":{\"w_bits\":4,\"a_bits\":6},\"layers\":{"
                  "\"features.0\":{\"w_bits\":8,\"a_bits\":8},"
                  "\"classifier\":{\"w_bits\":[1,2,3,4,5,6,7,8,2,1],\"a_bits\":3}}}"},
    };
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TEST, 0, 1, &d));
    if (!d) return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mixq_model *m = make_model(cases[i].arch);
        if (!m) continue;
        char what[64];
        snprintf(what, sizeof what, "%s case %zu", cases[i].arch, i);
        if (!quantize(m, d, cases[i].policy)) {
            compare(m, d, MIXQ_KERNEL_BITSERIAL, what);
            if (mixq_kernel_available(MIXQ_KERNEL_INT8)) compare(m, d, MIXQ_KERNEL_INT8, what);
            compare(m, d, MIXQ_KERNEL_AUTO, what);
        }
        mixq_model_free(m);
    }
    mixq_dataset_free(d);
}

/* rt_set_trace hands each layer's input to its function once per layer, and rt_input_codes
 * reads the codes the layer sums (through fused re-quantization and code max pools): they equal
 * fake quantization's codes of the same image, but where fake's value lies within 1e-3 of a
 * rounding boundary (float sums in a different order may round it the other way). */
typedef struct trace_seen {
    mixq_model *m;
    int calls, checked, ties, bad;
} trace_seen;

static void trace_check(void *user, const rt_conv *c, const void *x, int n) {
    trace_seen *t = user;
    t->calls++;
    if (n != 1) t->bad++;
    const mq_node *in = &t->m->nodes[t->m->nodes[c->node].in[0]];
    const int numel = c->C * c->H * c->W;
    int *q = malloc(sizeof(int) * (size_t)numel);
    if (!q || numel != in->c * in->h * in->w || rt_input_codes(c, x, q)) {
        t->bad++;
        free(q);
        return;
    }
    for (int i = 0; i < numel; i++) {
        const float steps = in->y[i] / c->s_a, f = mq_act_code(in->y[i], c->s_a, c->qmin, c->qmax);
        t->checked++;
        if ((float)q[i] == f) continue;
        if (fabsf(steps - floorf(steps) - 0.5f) < 1e-3f) t->ties++;
        else t->bad++;
    }
    free(q);
}

static void test_trace_codes(void) {
    static const struct {
        const char *arch, *policy;
    } cases[] = {
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":4,\"a_bits\":4}}"},
        {"lenet5", "{\"mixq_policy\":1,\"default\":{\"w_bits\":1,\"a_bits\":2},\"layers\":{"
                   "\"conv1\":{\"w_bits\":8,\"a_bits\":8}}}"},
        {"vgg11", "{\"mixq_policy\":1,\"default\":{\"w_bits\":2,\"a_bits\":3}}"},
    };
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TEST, 0, 1, &d));
    float x[784], y[10], yf[10];
    if (d) CHECK_OK(mixq_dataset_batch(d, NULL, 3, 1, x, NULL));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && d; i++) {
        mixq_model *m = make_model(cases[i].arch);
        if (!m || quantize(m, d, cases[i].policy)) {
            mixq_model_free(m);
            continue;
        }
        mixq_runtime *rt = NULL;
        CHECK_OK(mixq_runtime_create(m, NULL, &rt));
        if (rt) {
            trace_seen t = {m, 0, 0, 0, 0};
            rt_set_trace(rt, trace_check, &t);
            CHECK_OK(mixq_model_forward(m, x, 1, 0, yf)); /* node outputs: this image's */
            CHECK_OK(mixq_runtime_forward(rt, x, 1, y));
            CHECKF(t.calls == mixq_runtime_layer_count(rt) && !t.bad && t.checked > 1000 && t.ties <= 2,
                   "%s case %zu: %d calls of %d layers, %d codes checked, %d off a boundary, %d at one", cases[i].arch,
                   i, t.calls, mixq_runtime_layer_count(rt), t.checked, t.bad, t.ties);
            rt_set_trace(rt, NULL, NULL);
            t.calls = 0;
            CHECK_OK(mixq_runtime_forward(rt, x, 1, y));
            CHECK(t.calls == 0);
        }
        mixq_runtime_free(rt);
        mixq_model_free(m);
    }
    mixq_dataset_free(d);
}

/* Image r of every CIFAR batch: an ellipse per channel at a shifted centre on a noisy ground,
 * label r % 10 (test_write_cifar_dir's fill). */
static void rgb_fill(int f, int r, unsigned char *rec, void *user) {
    (void)f, (void)user;
    rec[0] = (unsigned char)(r % 10);
    for (int k = 0; k < 3 * 1024; k++) {
        const int ch = k / 1024, y = k % 1024 / 32, x = k % 32;
        const int v = ((y - 16) * (y - 16) + (x - 12 + ch * 3) * (x - 12 + ch * 3) < 30 * (r % 5 + 2)
                           ? 90 + 60 * ch : 20) + (r * 37 + k * 13) % 101;
        rec[1 + k] = (unsigned char)(v > 255 ? 255 : v);
    }
}

/* RGB inputs (a CIFAR-format directory of 3x32x32 images): the first layer's quantizer turns
 * three NCHW planes into NHWC codes (its C = 3 transpose), then the short-row im2col (5x5x3 = 15-
 * byte rows) or the packing; every kernel against fake quantization. */
static void test_rgb_input(void) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/rgb32", test_tmpdir());
    static const int counts[6] = {24, 24, 24, 24, 24, 24};
    CHECK(test_write_cifar_dir(dir, counts, rgb_fill, NULL) == 0);
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_TEST, 0, 1, &d));
    if (!d) return;
    static const char *policies[] = {
        "{\"mixq_policy\":1,\"default\":{\"w_bits\":8,\"a_bits\":8}}",
        "{\"mixq_policy\":1,\"default\":{\"w_bits\":2,\"a_bits\":3},\"layers\":{"
        "\"conv1\":{\"w_bits\":4,\"a_bits\":5}}}",
    };
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        mixq_model_config mc = {.arch = "lenet5", .in_c = 3, .in_h = 32, .in_w = 32, .classes = 10,
                                .width = 1.0f, .seed = 3};
        mixq_model *m = NULL;
        CHECK_OK(mixq_model_create(&mc, &m));
        if (!m) break;
        char what[64];
        snprintf(what, sizeof what, "lenet5 3x32x32 policy %zu", i);
        if (!quantize(m, d, policies[i])) {
            compare(m, d, MIXQ_KERNEL_BITSERIAL, what);
            if (mixq_kernel_available(MIXQ_KERNEL_INT8)) compare(m, d, MIXQ_KERNEL_INT8, what);
        }
        mixq_model_free(m);
    }
    mixq_dataset_free(d);
}

/* squeezenet at 64x64 (not "small"): its first max pool is 3x3 stride 2 between conv1 and
 * fire2's squeeze conv, so it runs on codes through the pools' general (not 2x2) window path. */
static void test_pool3_codes(void) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny64", test_tmpdir());
    enum { N = 6, S = 64, P = S * S };
    static unsigned char img[N * P], lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (unsigned char)(i % 10);
        for (int k = 0; k < P; k++)
            img[i * P + k] = (unsigned char)((k / S * 7 + k % S * (i + 3) + i * 41) % 251);
    }
    CHECK(test_write_idx(dir, N, S, S, img, lab) == 0);
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_TEST, 0, 1, &d));
    if (!d) return;
    mixq_model_config mc = {.arch = "squeezenet", .in_c = 1, .in_h = S, .in_w = S, .classes = 10,
                            .width = 0.5f, .seed = 3};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    if (m && !quantize(m, d, "{\"mixq_policy\":1,\"default\":{\"w_bits\":4,\"a_bits\":5}}"))
        compare(m, d, MIXQ_KERNEL_BITSERIAL, "squeezenet 64x64");
    mixq_model_free(m);
    mixq_dataset_free(d);
}

/* The same logits on 1, 2 and 3 threads (a batch of 9: one chunk, 4 + 5, 3 x 3 images, each
 * through the whole network on its own thread) and for one image alone (intra-layer threads),
 * on models with residual adds (resnet20) and concats, max pools and GAP (squeezenet; vgg11's
 * pools on codes run chunked in test_models_match_fake_quant on a multi-core machine). The
 * runtime is created with 3 threads so that it has 3 scratches. */
static void test_threads_invariant(void) {
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TEST, 0, 1, &d));
    const int old = mixq_get_threads();
    float *x = malloc(sizeof(float) * 9 * 784), *y1 = malloc(sizeof(float) * 90),
          *y2 = malloc(sizeof(float) * 90), *y3 = malloc(sizeof(float) * 10);
    if (d && x) CHECK_OK(mixq_dataset_batch(d, NULL, 0, 9, x, NULL));
    static const char *const archs[] = {"resnet20", "squeezenet"};
    for (int ai = 0; ai < 2 && d && x && y1 && y2 && y3; ai++) {
        mixq_model *m = make_model(archs[ai]);
        if (!m || quantize(m, d, "{\"mixq_policy\":1,\"default\":{\"w_bits\":2,\"a_bits\":3}}")) {
            mixq_model_free(m);
            continue;
        }
        for (int k = MIXQ_KERNEL_BITSERIAL; k <= MIXQ_KERNEL_INT8; k++) {
            if (!mixq_kernel_available((mixq_kernel)k)) continue;
            mixq_runtime_config rc;
            mixq_runtime_config_default(&rc);
            rc.kernel = (mixq_kernel)k;
            CHECK_OK(mixq_set_threads(3));
            mixq_runtime *rt = NULL;
            CHECK_OK(mixq_runtime_create(m, &rc, &rt));
            if (!rt) continue;
            CHECK_OK(mixq_set_threads(1));
            CHECK_OK(mixq_runtime_forward(rt, x, 9, y1));
            for (int t = 2; t <= 3; t++) {
                CHECK_OK(mixq_set_threads(t));
                memset(y2, 0, sizeof(float) * 90);
                CHECK_OK(mixq_runtime_forward(rt, x, 9, y2));
                CHECKF(!memcmp(y1, y2, sizeof(float) * 90), "%s %s: 1 vs %d threads differ",
                       archs[ai], mixq_kernel_name((mixq_kernel)k), t);
            }
            /* one image alone (intra-layer threads) equals the same image inside a batch */
            CHECK_OK(mixq_runtime_forward(rt, x + 4 * 784, 1, y3));
            CHECKF(!memcmp(y3, y1 + 40, sizeof(float) * 10), "%s %s: batch 1 differs from batch 9",
                   archs[ai], mixq_kernel_name((mixq_kernel)k));
            mixq_runtime_free(rt);
        }
        mixq_model_free(m);
    }
    CHECK_OK(mixq_set_threads(old));
    free(x), free(y1), free(y2), free(y3);
    mixq_dataset_free(d);
}

static void test_errors(void) {
    mixq_runtime *rt = NULL;
    mixq_model *m = make_model("lenet5");
    if (!m) return;
    CHECK(mixq_runtime_create(m, NULL, &rt) == MIXQ_ERR_ARG && !rt); /* float model */
    CHECK(strstr(mixq_last_error(), "not quantized") != NULL);
    mixq_policy *p = NULL;
    const char *js = "{\"mixq_policy\":1,\"default\":{\"w_bits\":4,\"a_bits\":4}}";
    CHECK_OK(mixq_policy_parse(js, strlen(js), "p", &p));
    CHECK_OK(mixq_model_quantize(m, p));
    mixq_policy_free(p);
    CHECK(mixq_runtime_create(m, NULL, &rt) == MIXQ_ERR_STATE && !rt); /* not calibrated */
    CHECK(strstr(mixq_last_error(), "calibrat") != NULL);
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TEST, 0, 1, &d));
    if (d) CHECK_OK(mixq_model_calibrate(m, d, 16));
    mixq_kernel k;
    CHECK(mixq_kernel_parse("int4", &k) == MIXQ_ERR_ARG);
    mixq_runtime_config rc;
    mixq_runtime_config_default(&rc);
    rc.kernel = MIXQ_KERNEL_FP32;
    CHECK(mixq_runtime_create(m, &rc, &rt) == MIXQ_ERR_ARG && !rt);
    rc.kernel = MIXQ_KERNEL_AUTO;
    rc.cpu_table = "bitfusion"; /* a target, but not a measured CPU table */
    CHECK(mixq_runtime_create(m, &rc, &rt) == MIXQ_ERR_ARG && !rt);
    CHECK(strstr(mixq_last_error(), "calibrate-cpu") != NULL);
    rc.cpu_table = "/nonexistent/table.json";
    CHECK(mixq_runtime_create(m, &rc, &rt) != MIXQ_OK && !rt);
    rc.cpu_table = NULL;
    CHECK_OK(mixq_runtime_create(m, &rc, &rt));
    if (rt) {
        float x[784], y[10];
        test_fill(x, 784, 5, -1, 1);
        x[100] = NAN;
        CHECK(mixq_runtime_forward(rt, x, 1, y) == MIXQ_ERR_NUMERIC);
        CHECK(mixq_runtime_forward(rt, x, 0, y) == MIXQ_ERR_ARG);
    }
    mixq_runtime_free(rt);
    mixq_runtime_free(NULL);
    mixq_model_free(m);
    mixq_dataset_free(d);
}

static void test_calibrate_cpu_table(void) {
    mixq_model *m = make_model("lenet5");
    mixq_dataset *d = NULL;
    CHECK_OK(mixq_dataset_load(tiny_dataset(), MIXQ_SPLIT_TEST, 0, 1, &d));
    if (!m || !d) goto out;
    char path[1024];
    snprintf(path, sizeof path, "%s/cpu.json", test_tmpdir());
    mixq_cpu_calib_config cc;
    mixq_cpu_calib_config_default(&cc);
    cc.reps = 1;
    cc.min_run_s = 0;
    CHECK_OK(mixq_cpu_calibrate(m, &cc, path, NULL, NULL));
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_load(path, &hw));
    if (!hw) goto out;
    CHECK(!strcmp(mixq_hw_backend(hw), "cpu"));
    /* every layer of the model is costed; lower bits never cost more than W8A8 */
    for (int i = 0; i < mixq_model_hw_layer_count(m); i++) {
        mixq_hw_layer l;
        CHECK_OK(mixq_model_hw_layer(m, i, &l, NULL));
        mixq_cost c8, c1;
        CHECK_OK(mixq_hw_cost(hw, &l, 8, 8, &c8));
        CHECK_OK(mixq_hw_cost(hw, &l, 1, 1, &c1));
        CHECKF(c8.latency_s > 0 && c1.latency_s > 0, "layer %d latency %g %g", i, c8.latency_s,
               c1.latency_s);
    }
    mixq_hw_free(hw);
    /* the runtime reads the table to choose kernels, and still matches the fake quantization */
    if (!quantize(m, d, "{\"mixq_policy\":1,\"default\":{\"w_bits\":2,\"a_bits\":2},"
                        "\"layers\":{\"fc1\":{\"w_bits\":1,\"a_bits\":1}}}")) {
        mixq_runtime_config rc;
        mixq_runtime_config_default(&rc);
        rc.cpu_table = path;
        mixq_runtime *rt = NULL;
        CHECK_OK(mixq_runtime_create(m, &rc, &rt));
        mixq_runtime_eval ev;
        if (rt) {
            CHECK_OK(mixq_runtime_evaluate(rt, m, d, 8, &ev));
            CHECK(ev.disagree == 0);
        }
        mixq_runtime_free(rt);
    }
    /* a model whose shapes are not in the table is refused by name */
    mixq_model *r = make_model("resnet20");
    if (r) {
        hw = NULL;
        CHECK_OK(mixq_hw_load(path, &hw));
        mixq_hw_layer l;
        mixq_cost c;
        CHECK_OK(mixq_model_hw_layer(r, 0, &l, NULL));
        if (hw) CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_NOTFOUND);
        mixq_hw_free(hw);
        mixq_model_free(r);
    }
out:
    mixq_model_free(m);
    mixq_dataset_free(d);
}

/* Taps that only ever read padding are dropped (rt_conv_prepare, rt_conv_crop_weights): the
 * layer's integers must equal a direct convolution over the whole kernel, padding taps
 * reading the code of 0.0 (a_off), for unsigned and signed inputs, on every integer kernel. */
static void test_crop_taps(void) {
    static const struct {
        int H, W, R, pad, stride, R_kept, t0;
    } g[] = {
        {1, 1, 3, 1, 1, 1, 1}, /* 1x1 map: the centre only */
        {2, 2, 5, 2, 1, 3, 1}, /* 2x2 map, 5x5 pad 2: rows/columns 1..3 */
        {1, 1, 5, 2, 1, 1, 2},
        {2, 2, 3, 1, 1, 3, 0}, /* every tap lives: nothing dropped */
        {1, 2, 3, 1, 1, 3, 0}, /* live rows 1..1 but columns 0..2 differ: not cropped */
    };
    const int C = 64, K = 20; /* C = 64: the bit-serial path packs without im2col */
    for (size_t gi = 0; gi < sizeof g / sizeof g[0]; gi++)
        for (int sgn = 0; sgn < 2; sgn++)
            for (int kern = 0; kern < 2; kern++) {
                if (kern == 1 && !mq_i8_available()) continue;
                rt_conv c;
                memset(&c, 0, sizeof c);
                snprintf(c.name, sizeof c.name, "crop%zu", gi);
                c.C = C, c.H = g[gi].H, c.W = g[gi].W, c.K = K, c.R = c.S = g[gi].R;
                c.stride = g[gi].stride, c.pad = g[gi].pad, c.G = 1;
                c.a_bits = 4, c.a_signed = sgn;
                c.kbits = malloc(sizeof(int) * K);
                for (int k = 0; k < K; k++) c.kbits[k] = 1 + k % 8;
                CHECK_OK(rt_conv_prepare(&c));
                CHECKF(c.R == g[gi].R_kept && c.S == g[gi].R_kept && c.crop_t0 == g[gi].t0,
                       "geometry %zu: kept %dx%d from %d (want %d from %d)", gi, c.R, c.S,
                       c.crop_t0, g[gi].R_kept, g[gi].t0);
                const int R0 = g[gi].R, P = c.P, Q = c.Q, HW = c.H * c.W;
                const size_t full = (size_t)K * C * R0 * R0;
                float *wf = malloc(sizeof(float) * full), *wk = malloc(sizeof(float) * full);
                float *x = malloc(sizeof(float) * C * HW), *y = malloc(sizeof(float) * K * P * Q);
                int8_t *codes = malloc(full);
                c.wc = malloc(full);
                for (size_t i = 0; i < full; i++) { /* integer codes of each kernel's width */
                    const int b = c.kbits[i / ((size_t)C * R0 * R0)];
                    int lim;
                    mq_levels(b, 1, NULL, &lim);
                    int v = (int)(i * 2654435761u % (unsigned)(2 * lim + 1)) - lim;
                    if (b == 1) v = v >= 0 ? 1 : -1;
                    wf[i] = (float)v;
                    codes[i] = (int8_t)v;
                }
                /* the codes are cropped as the runtime crops them; floats crop alike */
                rt_conv_crop_weights(&c, codes, c.wc, 1);
                rt_conv_crop_weights(&c, wf, wk, sizeof(float));
                int same = 1;
                for (size_t i = 0; i < (size_t)K * c.Kd; i++) same &= (float)c.wc[i] == wk[i];
                CHECKF(same, "geometry %zu: cropped codes and floats differ", gi);
                free(codes);
                /* inputs that quantize to every code: x = code * s_a */
                c.s_a = 1.0f;
                for (int i = 0; i < C * HW; i++) x[i] = (float)((int)((unsigned)i * 40503u % 31u) % ((int)c.qmax - (int)c.qmin + 1) + (int)c.qmin);
                for (int k = 0; k < K; k++) c.sc[k] = 1.0f, c.bias[k] = 0.0f;
                c.kernel = kern ? MIXQ_KERNEL_INT8 : MIXQ_KERNEL_BITSERIAL;
                CHECK_OK(rt_conv_pack(&c));
                rt_scratch scr;
                memset(&scr, 0, sizeof scr);
                CHECK_OK(rt_conv_run(&c, x, y, 0, 1, &scr, 1));
                int bad = 0;
                for (int k = 0; k < K && !bad; k++)
                    for (int p = 0; p < P; p++)
                        for (int q = 0; q < Q; q++) {
                            long ref = 0; /* padding reads 0.0, whose code is a_off: (a_off - a_off) w */
                            for (int ch = 0; ch < C; ch++)
                                for (int r = 0; r < R0; r++)
                                    for (int t = 0; t < R0; t++) {
                                        const int h = p * g[gi].stride - g[gi].pad + r;
                                        const int w = q * g[gi].stride - g[gi].pad + t;
                                        if (h < 0 || h >= c.H || w < 0 || w >= c.W) continue;
                                        ref += (long)x[(size_t)ch * HW + h * c.W + w] *
                                               (long)wf[(((size_t)k * C + ch) * R0 + r) * R0 + t];
                                    }
                            if (y[((size_t)k * P + p) * Q + q] != (float)ref) bad = 1;
                        }
                CHECKF(!bad, "geometry %zu, %s inputs, %s: differs from the whole-kernel convolution",
                       gi, sgn ? "signed" : "unsigned", kern ? "int8" : "bitserial");
                rt_scratch_free(&scr);
                rt_conv_free(&c);
                free(wf), free(wk), free(x), free(y);
            }
}

/* Weight codes for a prepared layer's kbits (c->wc, [K][Kd]): a spread of every width's levels,
 * +-1 at 1 bit. */
static void layer_weight_codes(rt_conv *c) {
    const size_t nw = (size_t)c->K * c->Kd;
    c->wc = malloc(nw);
    for (size_t i = 0; i < nw; i++) {
        const int b = c->kbits[i / (size_t)c->Kd];
        int lim;
        mq_levels(b, 1, NULL, &lim);
        int v = (int)(i * 2654435761u % (unsigned)(2 * lim + 1)) - lim;
        c->wc[i] = (int8_t)(b == 1 ? (v >= 0 ? 1 : -1) : v);
    }
}

/* count inputs on the layer's activation grid (s_a = 1): every code from qmin to qmax */
static float *layer_inputs(const rt_conv *c, int count) {
    float *x = malloc(sizeof(float) * (size_t)count);
    for (int i = 0; i < count; i++)
        x[i] = (float)((int)((unsigned)i * 40503u % 31u) % ((int)c->qmax - (int)c->qmin + 1) + (int)c->qmin);
    return x;
}

/* One conv layer of the given geometry, K outputs, a_bits-bit inputs (signed or not), widths
 * 1..max_wbits over the kernels, unit scales, run on 3 images of layer_inputs:
 * the outputs (*ny of them, malloc'd; NULL on failure), and the layer's pack_seg. */
/* A conv geometry of the shape tables below. */
typedef struct geo7 {
    int C, H, W, R, S, stride, pad;
} geo7;

typedef struct geo_layer {
    int C, H, W, K, R, S, stride, pad, a_bits, a_signed;
    mixq_kernel kernel;
    int im2col_plain, seg_plain, dir_off;
    int max_wbits; /* the widths cycle 1..max_wbits over the kernels (0: 8) */
} geo_layer;

static float *run_geo_layer(const geo_layer *gl, const char *name, size_t *ny, int *pack_seg,
                            int *pack_dir) {
    rt_conv c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", name);
    c.C = gl->C, c.H = gl->H, c.W = gl->W, c.K = gl->K, c.R = gl->R, c.S = gl->S;
    c.stride = gl->stride, c.pad = gl->pad, c.G = 1;
    c.a_bits = gl->a_bits, c.a_signed = gl->a_signed;
    c.kbits = malloc(sizeof(int) * (size_t)gl->K);
    for (int k = 0; k < gl->K; k++) c.kbits[k] = 1 + k % (gl->max_wbits ? gl->max_wbits : 8);
    CHECK_OK(rt_conv_prepare(&c));
    layer_weight_codes(&c);
    c.s_a = 1.0f;
    for (int k = 0; k < gl->K; k++) c.sc[k] = 1.0f, c.bias[k] = 0.0f;
    c.kernel = gl->kernel;
    c.im2col_plain = gl->im2col_plain, c.seg_plain = gl->seg_plain, c.dir_off = gl->dir_off;
    const int n = 3, in = c.C * c.H * c.W;
    *ny = (size_t)n * gl->K * c.P * c.Q;
    float *x = layer_inputs(&c, n * in);
    float *y = malloc(sizeof(float) * *ny);
    CHECK_OK(rt_conv_pack(&c));
    if (pack_seg) *pack_seg = c.pack_seg;
    if (pack_dir) *pack_dir = c.pack_dir;
    rt_scratch scr;
    memset(&scr, 0, sizeof scr);
    if (rt_conv_run(&c, x, y, 0, n, &scr, 1) != MIXQ_OK) {
        CHECKF(0, "%s: %s", name, mixq_last_error());
        free(y);
        y = NULL;
    }
    rt_scratch_free(&scr);
    rt_conv_free(&c);
    free(x);
    return y;
}

/* im2col_short_rows (kernel rows of at most 16 bytes, one group: a first layer on grey or
 * colour images) against its twin im2col_u8: the same layer outputs, bit for bit, on awkward
 * shapes, strides and pads, signed and unsigned inputs, both integer kernels. */
static void test_im2col_short(void) {
    static const geo7 g[] = {
        {1, 28, 28, 5, 5, 1, 2}, {1, 13, 11, 3, 3, 1, 1}, {1, 9, 7, 7, 7, 1, 3}, {1, 10, 9, 5, 5, 2, 0},
        {2, 7, 9, 3, 3, 2, 1},   {3, 8, 5, 2, 2, 1, 0},   {1, 5, 6, 8, 8, 1, 4}, {1, 1, 1, 1, 1, 1, 0},
        {4, 6, 6, 2, 2, 2, 1},   {1, 12, 3, 4, 4, 1, 2},
        /* 9..16-byte rows (the 16-byte copy): RGB 3x3 (vgg11's first layer), 5x5 strided, 8x8 */
        {3, 7, 9, 3, 3, 1, 1},   {3, 8, 6, 5, 5, 2, 2},   {2, 5, 7, 8, 8, 1, 3}, {4, 6, 5, 3, 3, 1, 1},
        {3, 1, 4, 1, 3, 1, 0},
    };
    const int K = 7;
    for (size_t gi = 0; gi < sizeof g / sizeof g[0]; gi++)
        for (int sgn = 0; sgn < 2; sgn++)
            for (int kern = 0; kern < 2; kern++) {
                if (kern == 1 && !mq_i8_available()) continue;
                float *y[2] = {NULL, NULL};
                size_t ny = 0;
                for (int plain = 0; plain < 2; plain++) {
                    const geo_layer gl = {g[gi].C, g[gi].H, g[gi].W, K, g[gi].R, g[gi].S, g[gi].stride,
                                          g[gi].pad, 4, sgn,
                                          kern ? MIXQ_KERNEL_INT8 : MIXQ_KERNEL_BITSERIAL, plain, 0, 0, 0};
                    char name[32];
                    snprintf(name, sizeof name, "short%zu", gi);
                    y[plain] = run_geo_layer(&gl, name, &ny, NULL, NULL);
                }
                CHECKF(y[0] && y[1] && !memcmp(y[0], y[1], sizeof(float) * ny),
                       "shape %zu, %s inputs, %s: short-row im2col differs from im2col_u8", gi,
                       sgn ? "signed" : "unsigned", kern ? "int8" : "bitserial");
                free(y[0]);
                free(y[1]);
            }
}

/* Each shape of g, signed and unsigned inputs: the layer with its default packing against
 * im2col + the plain layout (seg_plain and, for dir, dir_off), bit for bit, and the default's
 * flag (pack_dir for dir, else pack_seg with the direct convolution off) as expected. */
static void layers_vs_plain(const geo7 *g, size_t ng, int dir, const char *what) {
    mq_bs_tier tier = MQ_BS_TIER_SCALAR;
    CHECK_OK(mq_bs_tier_select(&tier));
    const int K = 19;
    for (size_t gi = 0; gi < ng; gi++)
        for (int v = 0; v < (dir ? 4 : 2); v++) { /* signed inputs; dir: widths up to 4 or 8 */
            const int sgn = v % 2, mw = dir && v < 2 ? 4 : 8;
            float *y[2] = {NULL, NULL};
            size_t ny = 0;
            for (int plain = 0; plain < 2; plain++) {
                const geo_layer gl = {g[gi].C, g[gi].H, g[gi].W, K, g[gi].R, g[gi].S, g[gi].stride,
                                      g[gi].pad, dir ? (sgn ? 5 : 2) : 3, sgn, MIXQ_KERNEL_BITSERIAL,
                                      0, plain, dir ? plain : 1, mw};
                char name[32];
                snprintf(name, sizeof name, "%s%zu", dir ? "dir" : "seg", gi);
                int seg = -1, pdir = -1;
                y[plain] = run_geo_layer(&gl, name, &ny, &seg, &pdir);
                const int want = !plain && (dir ? tier == MQ_BS_TIER_VPOPCNT &&
                                                      mq_bs_conv_dir_pays(gl.C, gl.R, gl.S, gl.stride, gl.W, mw)
                                                : mq_bs_conv_seg_pays(gl.C, gl.R, gl.S, gl.W));
                CHECKF((dir ? pdir : seg) == want, "shape %zu: %s flag %d, expected %d", gi, what,
                       dir ? pdir : seg, want);
            }
            CHECKF(y[0] && y[1] && !memcmp(y[0], y[1], sizeof(float) * ny),
                   "shape %zu, %s inputs: the %s differs from im2col", gi, sgn ? "signed" : "unsigned", what);
            free(y[0]);
            free(y[1]);
        }
}

/* Bit-serial convs with C of 16, 32 or 48 in the segment layout (mq_bs_pack_conv_seg, the
 * default where mq_bs_conv_seg_pays and the direct convolution is off: not for the 1x1 shape and
 * the 4100-pixel rows here) against im2col + the plain layout: strides, pads, short rows. */
static void test_seg_layers(void) {
    static const geo7 g[] = {
        {16, 9, 7, 3, 3, 1, 1}, {16, 8, 8, 3, 3, 2, 1}, {32, 6, 5, 1, 1, 2, 0}, {48, 5, 4, 1, 3, 1, 1},
        {16, 10, 13, 3, 4, 1, 2}, {16, 3, 3, 3, 3, 1, 1}, {32, 4, 7, 1, 2, 1, 0}, {16, 28, 28, 3, 3, 1, 1},
        {16, 14, 14, 3, 3, 2, 1},
        {16, 2, 4100, 3, 3, 1, 1}, /* rows of 65 600 codes: past mq_bs_pack_conv_seg's limit, im2col */
    };
    layers_vs_plain(g, sizeof g / sizeof g[0], 0, "segment layout");
}

/* The direct convolution (pack_dir: 3x3, C = 16 or 32, strides 1 and 2, weights of up to 4
 * bits, the vpopcnt tier) against im2col + the plain layout, 2 and 5 activation bits, widths
 * 1..4 over 19 output channels (mixed-width panels); widths 1..8, other tiers and the 3x2 shape
 * must not take it. */
static void test_dir_layers(void) {
    static const geo7 g[] = {
        {16, 9, 7, 3, 3, 1, 1}, {16, 8, 8, 3, 3, 2, 1}, {32, 6, 5, 3, 3, 1, 1}, {32, 9, 9, 3, 3, 2, 1},
        {16, 28, 28, 3, 3, 1, 1}, {32, 14, 14, 3, 3, 2, 1}, {16, 3, 3, 3, 3, 1, 0}, {32, 5, 37, 3, 3, 1, 2},
        {32, 4, 4, 3, 2, 1, 1}, /* 3x2: not taken */
    };
    layers_vs_plain(g, sizeof g / sizeof g[0], 1, "direct convolution");
}

/* A layer's images in sub-batches (RT_SUB_BYTES of accumulators each) give, bit for bit, what
 * one image at a time gives: shapes of 128 KB and 64 KB of accumulators per image, so 5 and 9
 * images run in 3 sub-batches (of unequal sizes for 5); im2col and direct-packing bit-serial,
 * int8 matmul (signed inputs) and int8 convolution (unsigned). */
static void test_sub_batches(void) {
    static const struct {
        int C, H, W, K, n;
    } g[] = {{16, 32, 32, 32, 5}, {64, 16, 16, 64, 9}};
    for (size_t gi = 0; gi < sizeof g / sizeof g[0]; gi++)
        for (int sgn = 0; sgn < 2; sgn++)
            for (int kern = 0; kern < 2; kern++) {
                if (kern == 1 && !mq_i8_available()) continue;
                rt_conv c;
                memset(&c, 0, sizeof c);
                snprintf(c.name, sizeof c.name, "sub%zu", gi);
                c.C = g[gi].C, c.H = g[gi].H, c.W = g[gi].W, c.K = g[gi].K, c.R = 3, c.S = 3;
                c.stride = 1, c.pad = 1, c.G = 1;
                c.a_bits = 2, c.a_signed = sgn;
                c.kbits = malloc(sizeof(int) * (size_t)c.K);
                for (int k = 0; k < c.K; k++) c.kbits[k] = 1 + k % 3;
                CHECK_OK(rt_conv_prepare(&c));
                const int64_t acc_img = (int64_t)c.P * c.Q * c.K * 4;
                CHECKF(acc_img < RT_SUB_BYTES && g[gi].n * acc_img > 2 * RT_SUB_BYTES,
                       "shape %zu: %lld bytes of accumulators per image do not make 3 sub-batches",
                       gi, (long long)acc_img);
                layer_weight_codes(&c);
                c.s_a = 1.0f;
                for (int k = 0; k < c.K; k++) c.sc[k] = 1.0f + 0.01f * (float)k, c.bias[k] = 0.5f;
                c.kernel = kern ? MIXQ_KERNEL_INT8 : MIXQ_KERNEL_BITSERIAL;
                const int n = g[gi].n, in = c.C * c.H * c.W;
                const size_t ny = (size_t)n * c.K * c.P * c.Q;
                float *x = layer_inputs(&c, n * in);
                float *y[2] = {malloc(sizeof(float) * ny), malloc(sizeof(float) * ny)};
                CHECK_OK(rt_conv_pack(&c));
                rt_scratch scr;
                memset(&scr, 0, sizeof scr);
                CHECK_OK(rt_conv_run(&c, x, y[0], 0, n, &scr, 1));
                for (int i = 0; i < n; i++) CHECK_OK(rt_conv_run(&c, x, y[1], i, i + 1, &scr, 1));
                CHECKF(!memcmp(y[0], y[1], sizeof(float) * ny),
                       "shape %zu, %s inputs, %s: %d images in sub-batches differ from one at a time",
                       gi, sgn ? "signed" : "unsigned", kern ? "int8" : "bitserial", n);
                rt_scratch_free(&scr);
                rt_conv_free(&c);
                free(x), free(y[0]), free(y[1]);
            }
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Re-quantization by thresholds (rt_conv_thresholds) against the float epilogue, code for
 * code: random scales of both signs (decreasing maps), biases, batch norm or none, ReLU /
 * ReLU6 / none, 1- and 2-bit unsigned and 2-bit signed consumers, on accumulators around every
 * threshold, at the ends of the range and at random. */
static void test_requant_thresholds(void) {
    enum { K = 24, N = 4096 };
    static const struct {
        float lo, hi;
        int off;
    } q[] = {{0, 1, 0}, {0, 3, 0}, {-1, 1, 1}, {0, 2, 0}};
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)N * K);
    uint8_t *y1 = malloc((size_t)N * K), *y2 = malloc((size_t)N * K);
    uint32_t rs = 12345u;
#define RND() lcg(&rs)
    int used = 0;
    for (int trial = 0; trial < 24; trial++) {
        rt_conv c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "thr");
        c.fc = 1, c.C = 10, c.K = K, c.a_bits = 8;
        c.kbits = malloc(sizeof(int) * K);
        for (int k = 0; k < K; k++) c.kbits[k] = 8;
        CHECK_OK(rt_conv_prepare(&c));
        c.has_bn = trial % 2, c.act = trial % 3;
        for (int k = 0; k < K; k++) {
            const float sg = (RND() % 4 == 0) ? -1.0f : 1.0f;
            c.sc[k] = sg * (float)(RND() % 1000 + 1) * 1e-5f;
            c.bias[k] = ((float)(RND() % 2001) - 1000.0f) * 1e-3f;
            c.bn_a[k] = ((RND() % 5 == 0) ? -1.0f : 1.0f) * (float)(RND() % 100 + 1) * 0.02f;
            c.bn_b[k] = ((float)(RND() % 201) - 100.0f) * 1e-2f;
            c.corr[k] = (int32_t)(RND() % 20001) - 10000;
        }
        if (trial == 5) c.sc[3] = 0.0f; /* a constant map */
        const int qi = trial % 4;
        c.out_codes = 1;
        c.nq_lo = q[qi].lo, c.nq_hi = q[qi].hi, c.nq_off = q[qi].off;
        c.nq_s = 1.0f / ((float)(RND() % 50 + 1) * 0.1f);
        rt_conv_thresholds(&c);
        CHECK(c.thr != NULL && c.thr_n == (int)(q[qi].hi - q[qi].lo));
        if (!c.thr) {
            rt_conv_free(&c);
            continue;
        }
        used++;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < K; k++) {
                int64_t a;
                const int j = (int)(RND() % (unsigned)c.thr_n);
                int32_t t = c.thr[(size_t)j * K + k];
                const int32_t m = c.thr[(size_t)c.thr_n * K + k];
                t ^= m; /* back to an accumulator (decreasing maps store ~acc) */
                switch (i % 4) {
                case 0: a = (int64_t)t + (int64_t)(RND() % 5) - 2; break;
                case 1: a = (int64_t)(int32_t)(RND() << 8); break;
                case 2: a = (int64_t)c.corr[k] + (int64_t)(RND() % 200001) - 100000; break;
                default: a = (i & 4) ? 2139095040 : -2139095040; break; /* 65536 * 255 * 128 */
                }
                if (a > 2139095040) a = 2139095040;
                if (a < -2139095040) a = -2139095040;
                acc[(size_t)i * K + k] = (int32_t)a;
            }
        rt_conv_epilogue(&c, acc, 0, K, K, N, y1);
        int32_t *thr = c.thr;
        c.thr = NULL; /* the float epilogue */
        rt_conv_epilogue(&c, acc, 0, K, K, N, y2);
        c.thr = thr;
        size_t bad = 0;
        while (bad < (size_t)N * K && y1[bad] == y2[bad]) bad++;
        CHECKF(bad == (size_t)N * K, "trial %d: acc %d (channel %d) gives code %d by thresholds, "
               "%d by the float epilogue", trial, bad < (size_t)N * K ? acc[bad] : 0,
               (int)(bad % K), bad < (size_t)N * K ? y1[bad] : 0, bad < (size_t)N * K ? y2[bad] : 0);
        rt_conv_free(&c);
    }
#undef RND
    CHECK(used == 24);
    free(acc), free(y1), free(y2);
}

/* The built-in kernel rule (no table): w x a <= 2 on the emulated-popcount tiers; on the
 * vpopcnt tier <= 3 from K = 576 and <= 4 from K = 1152; always bit-serial without VNNI. The
 * tier is the one MIXQ_BITSERIAL_TIER selects, so both rules are checked where both tiers run. */
static void test_rule_kernel(void) {
    const mixq_kernel BS = MIXQ_KERNEL_BITSERIAL, I8 = MIXQ_KERNEL_INT8;
    const char *saved = getenv("MIXQ_BITSERIAL_TIER");
    char keep[64] = "";
    if (saved) snprintf(keep, sizeof keep, "%s", saved);
    if (!mq_i8_available()) {
        CHECK(rt_rule_kernel(8, 8, 4608) == BS);
        test_skip_cpu("no VNNI: the int8 side of the rule is not reachable on this CPU");
        return;
    }
    setenv("MIXQ_BITSERIAL_TIER", "scalar", 1);
    CHECK(rt_rule_kernel(1, 2, 144) == BS);
    CHECK(rt_rule_kernel(2, 1, 4608) == BS);
    CHECK(rt_rule_kernel(3, 1, 4608) == I8);
    CHECK(rt_rule_kernel(2, 2, 4608) == I8);
    if (mq_bs_tier_available(MQ_BS_TIER_VPOPCNT)) {
        setenv("MIXQ_BITSERIAL_TIER", "vpopcnt", 1);
        CHECK(rt_rule_kernel(1, 1, 27) == BS);
        CHECK(rt_rule_kernel(1, 2, 575) == BS);
        CHECK(rt_rule_kernel(3, 1, 575) == I8);
        CHECK(rt_rule_kernel(1, 3, 576) == BS);
        CHECK(rt_rule_kernel(2, 2, 576) == I8);
        CHECK(rt_rule_kernel(2, 2, 1152) == BS);
        CHECK(rt_rule_kernel(1, 4, 4608) == BS);
        CHECK(rt_rule_kernel(5, 1, 4608) == I8);
        CHECK(rt_rule_kernel(8, 8, 4608) == I8);
    } else {
        printf("  (no VPOPCNTDQ: the vpopcnt tier's rule is not checked on this CPU)\n");
    }
    if (keep[0]) setenv("MIXQ_BITSERIAL_TIER", keep, 1);
    else unsetenv("MIXQ_BITSERIAL_TIER");
}

int main(void) {
    TEST_RUN(test_int8_vs_reference);
    TEST_RUN(test_int8_conv_vs_reference);
    TEST_RUN(test_crop_taps);
    TEST_RUN(test_requant_thresholds);
    TEST_RUN(test_models_match_fake_quant);
    TEST_RUN(test_trace_codes);
    TEST_RUN(test_threads_invariant);
    TEST_RUN(test_rgb_input);
    TEST_RUN(test_pool3_codes);
    TEST_RUN(test_im2col_short);
    TEST_RUN(test_seg_layers);
    TEST_RUN(test_dir_layers);
    TEST_RUN(test_sub_batches);
    TEST_RUN(test_errors);
    TEST_RUN(test_calibrate_cpu_table);
    TEST_RUN(test_rule_kernel);
    return test_summary();
}
