/* Datasets: IDX (plain and gzip) and CIFAR-10 readers on files the test generates, seeded
 * validation splits, normalisation, augmentation determinism, every bad-input case, and the
 * real Fashion-MNIST when Debian's package is installed. */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/data.h"
#include "mixq/mixq.h"
#include "test.h"

/* Image i of a generated set: pixel k = (i * 7 + k * 13) & 255, and pixel 0/1 hold i (lo, hi)
 * so each image can be identified after a split. Label = i % 10. */
static uint8_t pix(int i, int k) {
    if (k == 0) return (uint8_t)(i & 255);
    if (k == 1) return (uint8_t)(i >> 8);
    return (uint8_t)((i * 7 + k * 13) & 255);
}
static int ident(const uint8_t *img) { return img[0] | img[1] << 8; }

static void put32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Writes bytes plain, or gzip-compressed when gz. */
static int write_maybe_gz(const char *path, const void *data, size_t n, int gz) {
    if (!gz) return test_write_file(path, data, n);
    gzFile f = gzopen(path, "wb");
    if (!f) return -1;
    int ok = gzwrite(f, data, (unsigned)n) == (int)n;
    return (gzclose(f) == Z_OK && ok) ? 0 : -1;
}

/* IDX image file bytes: magic, n, h, w, then n*h*w pixels (image i from `first`). */
static unsigned char *idx_images(int n, int h, int w, int first, size_t *len) {
    *len = 16 + (size_t)n * h * w;
    unsigned char *b = malloc(*len);
    if (!b) return NULL;
    put32(b, 0x803);
    put32(b + 4, (uint32_t)n);
    put32(b + 8, (uint32_t)h);
    put32(b + 12, (uint32_t)w);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < h * w; k++) b[16 + (size_t)i * h * w + k] = pix(first + i, k);
    return b;
}

static unsigned char *idx_labels(int n, int first, size_t *len) {
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    if (!b) return NULL;
    put32(b, 0x801);
    put32(b + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) b[8 + i] = (unsigned char)((first + i) % 10);
    return b;
}

/* A fresh sub-directory of the test tmpdir. */
static const char *subdir(const char *name) {
    static char p[8][1024];
    static int k;
    char *s = p[k++ & 7];
    snprintf(s, 1024, "%s/%s", test_tmpdir(), name);
    mkdir(s, 0755);
    return s;
}

/* An MNIST-format directory with ntr training and nte test images of h x w. */
static void make_idx_dir(const char *dir, int ntr, int nte, int h, int w, int gz) {
    const char *sfx = gz ? ".gz" : "";
    char p[1200];
    size_t len;
    unsigned char *b;
    b = idx_images(ntr, h, w, 0, &len);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte%s", dir, sfx);
    CHECK(b && write_maybe_gz(p, b, len, gz) == 0);
    free(b);
    b = idx_labels(ntr, 0, &len);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", dir, sfx);
    CHECK(b && write_maybe_gz(p, b, len, gz) == 0);
    free(b);
    b = idx_images(nte, h, w, 1000, &len);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte%s", dir, sfx);
    CHECK(b && write_maybe_gz(p, b, len, gz) == 0);
    free(b);
    b = idx_labels(nte, 1000, &len);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte%s", dir, sfx);
    CHECK(b && write_maybe_gz(p, b, len, gz) == 0);
    free(b);
}

static void check_idx_dir(const char *dir) {
    mixq_dataset *tr = NULL, *va = NULL, *te = NULL;
    CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_TRAIN, 12, 7, &tr));
    CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_VAL, 12, 7, &va));
    CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_TEST, 12, 7, &te));
    if (!tr || !va || !te) goto done;
    CHECK(mixq_dataset_count(tr) == 38 && mixq_dataset_count(va) == 12 &&
          mixq_dataset_count(te) == 17);
    int c, h, w, k;
    mixq_dataset_shape(te, &c, &h, &w, &k);
    CHECK(c == 1 && h == 6 && w == 5 && k == 10);
    CHECK(strstr(mixq_dataset_name(va), ":val") != NULL);
    /* Pixels and labels are read exactly, in file order for the test split. */
    for (int i = 0; i < te->n; i++) {
        CHECK(ident(te->images + (size_t)i * 30) == 1000 + i);
        CHECK(te->images[(size_t)i * 30 + 17] == pix(1000 + i, 17));
        CHECK(te->labels[i] == (1000 + i) % 10);
    }
    /* train and val are disjoint and together the whole training file */
    int seen[50] = {0};
    for (int i = 0; i < tr->n; i++) seen[ident(tr->images + (size_t)i * 30)] += 1;
    for (int i = 0; i < va->n; i++) seen[ident(va->images + (size_t)i * 30)] += 10;
    int ok = 1;
    for (int i = 0; i < 50; i++) ok &= seen[i] == 1 || seen[i] == 10;
    CHECKF(ok, "train/val split overlaps or loses images");
    for (int i = 0; i < va->n; i++) {
        int id = ident(va->images + (size_t)i * 30);
        CHECK(va->labels[i] == id % 10);
    }
done:
    mixq_dataset_free(tr);
    mixq_dataset_free(va);
    mixq_dataset_free(te);
}

/* A split records the holdout it was carved with (a test split has none, a truncated one keeps
 * it), and mixq_holdout_seen counts exactly the validation images of one split that lie in the
 * training part of another, checked image by image over equal and different seeds and counts;
 * splits of different files do not compare. */
static void test_holdout(void) {
    const char *d = subdir("holdout");
    make_idx_dir(d, 200, 5, 4, 4, 0);
    static const uint64_t seeds[] = {3, 4};
    static const int counts[] = {0, 30, 60};
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            const uint64_t sa = seeds[a / 3], sb = seeds[b / 3];
            const int ca = counts[a % 3], cb = counts[b % 3];
            if (!cb) continue; /* no validation split */
            mixq_dataset *tr = NULL, *va = NULL;
            CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_TRAIN, ca, sa, &tr));
            CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_VAL, cb, sb, &va));
            mixq_holdout h, v;
            int seen = -1, in_train[200] = {0}, want = 0;
            if (tr && va && !mixq_dataset_holdout(tr, &h) && !mixq_dataset_holdout(va, &v)) {
                CHECK(h.seed == sa && h.count == ca && h.images == 200);
                CHECK(v.seed == sb && v.count == cb && v.images == 200);
                for (int i = 0; i < tr->n; i++) in_train[ident(tr->images + (size_t)i * 16)] = 1;
                for (int i = 0; i < va->n; i++) want += in_train[ident(va->images + (size_t)i * 16)];
                CHECK_OK(mixq_holdout_seen(&h, &v, &seen));
                CHECKF(seen == want, "held out %d by seed %llu, validation %d by seed %llu: seen %d, "
                       "counted %d", ca, (unsigned long long)sa, cb, (unsigned long long)sb, seen, want);
            } else CHECK(0);
            mixq_dataset_free(tr);
            mixq_dataset_free(va);
        }
    mixq_dataset *va = NULL, *te = NULL;
    mixq_holdout h = {.seed = 3, .count = 30, .images = 199}, v;
    int seen;
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_VAL, 30, 3, &va));
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_TEST, 0, 3, &te));
    if (va && te) {
        CHECK_OK(mixq_dataset_truncate(va, 10));
        CHECK(!mixq_dataset_holdout(va, &v) && v.count == 30 && v.images == 200);
        CHECK(mixq_holdout_seen(&h, &v, &seen) == MIXQ_ERR_ARG);
        CHECK(strstr(mixq_last_error(), "199") && strstr(mixq_last_error(), "200"));
        CHECK(mixq_dataset_holdout(te, &v) == MIXQ_ERR_ARG);
        CHECK(strstr(mixq_last_error(), "test split") != NULL);
    }
    mixq_dataset_free(va);
    mixq_dataset_free(te);
}

static void test_idx_plain_and_gz(void) {
    const char *a = subdir("idx_plain"), *b = subdir("idx_gz");
    make_idx_dir(a, 50, 17, 6, 5, 0);
    make_idx_dir(b, 50, 17, 6, 5, 1);
    check_idx_dir(a);
    check_idx_dir(b);
    /* the low-level readers agree byte for byte on both encodings */
    char p1[1200], p2[1200];
    snprintf(p1, sizeof p1, "%s/train-images-idx3-ubyte", a);
    snprintf(p2, sizeof p2, "%s/train-images-idx3-ubyte.gz", b);
    int n1, h1, w1, n2, h2, w2;
    uint8_t *i1 = NULL, *i2 = NULL;
    CHECK_OK(mq_idx_read_images(p1, &n1, &h1, &w1, &i1));
    CHECK_OK(mq_idx_read_images(p2, &n2, &h2, &w2, &i2));
    CHECK(i1 && i2 && n1 == 50 && n2 == 50 && h1 == 6 && w2 == 5 &&
          memcmp(i1, i2, 50 * 30) == 0);
    free(i1);
    free(i2);
}

static void test_split_reproducible(void) {
    const char *d = subdir("split");
    make_idx_dir(d, 200, 5, 4, 4, 1);
    mixq_dataset *a = NULL, *b = NULL, *c = NULL, *z = NULL;
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_VAL, 40, 3, &a));
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_VAL, 40, 3, &b));
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_VAL, 40, 4, &c));
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_TRAIN, 0, 3, &z));
    if (a && b && c && z) {
        CHECK(memcmp(a->images, b->images, 40 * 16) == 0);
        CHECK(memcmp(a->images, c->images, 40 * 16) != 0);
        CHECK(z->n == 200);
        /* normalisation comes from the whole training file: identical for every split */
        CHECK(a->mean[0] == z->mean[0] && a->std[0] == z->std[0] && a->mean[0] == c->mean[0]);
        double s = 0, ss = 0;
        for (int i = 0; i < 200 * 16; i++) {
            s += z->images[i] / 255.0;
            ss += (z->images[i] / 255.0) * (z->images[i] / 255.0);
        }
        double mu = s / 3200, sd = sqrt(ss / 3200 - mu * mu);
        CHECK(fabs(z->mean[0] - mu) < 1e-6 && fabs(z->std[0] - sd) < 1e-6);
        /* a batch without augmentation is (p/255 - mean) / std, labels as stored */
        int idx[3] = {5, 0, 199}, lab[3];
        float x[48];
        CHECK_OK(mq_data_batch(z, NULL, idx, 3, 0, 1, x, lab));
        double err = 0;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 16; k++) {
                double want = (z->images[idx[i] * 16 + k] / 255.0 - z->mean[0]) / z->std[0];
                err = fmax(err, fabs(x[i * 16 + k] - want));
            }
        CHECKF(err < 1e-5, "normalised pixels off by %g", err);
        CHECK(lab[0] == 5 && lab[1] == 0 && lab[2] == 9);
        int bad = 200;
        CHECK(mq_data_batch(z, NULL, &bad, 1, 0, 1, x, lab) == MIXQ_ERR_ARG);
    }
    mixq_dataset_free(a);
    mixq_dataset_free(b);
    mixq_dataset_free(c);
    mixq_dataset_free(z);
}

static void test_augmentation(void) {
    const char *d = subdir("aug");
    make_idx_dir(d, 64, 3, 12, 12, 0);
    mixq_dataset *z = NULL;
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_TRAIN, 0, 1, &z));
    if (!z) return;
    enum { P = 144 };
    int all[8] = {3, 9, 17, 2, 40, 63, 0, 11}, lab[8];
    float x8[8 * P], x1[P], y8[8 * P], plain[8 * P], s2[8 * P];
    CHECK_OK(mq_data_batch(z, NULL, all, 8, 1, 42, x8, lab));
    CHECK_OK(mq_data_batch(z, NULL, all, 8, 1, 42, y8, lab));
    CHECK(memcmp(x8, y8, sizeof x8) == 0);
    /* an image's crop/flip does not depend on the batch it is in */
    for (int i = 0; i < 8; i++) {
        CHECK_OK(mq_data_batch(z, NULL, all + i, 1, 1, 42, x1, lab));
        CHECK(memcmp(x1, x8 + i * P, sizeof x1) == 0);
    }
    /* augmentation changes images; another seed changes them differently */
    CHECK_OK(mq_data_batch(z, NULL, all, 8, 0, 42, plain, lab));
    CHECK_OK(mq_data_batch(z, NULL, all, 8, 1, 43, s2, lab));
    CHECK(memcmp(plain, x8, sizeof plain) != 0);
    CHECK(memcmp(s2, x8, sizeof s2) != 0);
    /* every augmented pixel is either zero padding or one of the original image's pixels */
    const float zero = (0.0f - z->mean[0]) / z->std[0];
    int ok = 1;
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < P; k++) {
            float v = x8[i * P + k];
            int found = fabsf(v - zero) < 1e-5f;
            for (int j = 0; j < P && !found; j++) found = fabsf(v - plain[i * P + j]) < 1e-5f;
            ok &= found;
        }
    CHECKF(ok, "an augmented pixel is neither padding nor a pixel of its image");
    /* with 64 images, both flips and several offsets must occur */
    int differs = 0;
    for (int i = 0; i < 8; i++) differs += memcmp(plain + i * P, x8 + i * P, P * sizeof(float)) != 0;
    CHECK(differs >= 5);
    mixq_dataset_free(z);
}

static void write_cifar(const char *path, int n, int first, int bad_label_at) {
    size_t len = (size_t)n * 3073;
    unsigned char *b = malloc(len);
    CHECK(b != NULL);
    if (!b) return;
    for (int r = 0; r < n; r++) {
        unsigned char *rec = b + (size_t)r * 3073;
        rec[0] = (unsigned char)(r == bad_label_at ? 11 : (first + r) % 10);
        for (int k = 0; k < 3072; k++) rec[1 + k] = pix(first + r, k);
    }
    CHECK(test_write_file(path, b, len) == 0);
    free(b);
}

/* Record r of batch f: image 100 f + r (the test batch: 2000 + r), label its number % 10. */
static void cifar_fill(int f, int r, unsigned char *rec, void *user) {
    (void)user;
    const int i = (f <= 5 ? 100 * f : 2000) + r;
    rec[0] = (unsigned char)(i % 10);
    for (int k = 0; k < 3072; k++) rec[1 + k] = pix(i, k);
}

static void make_cifar_dir(const char *dir) {
    static const int counts[6] = {4, 5, 6, 7, 8, 6};
    CHECK(test_write_cifar_dir(dir, counts, cifar_fill, NULL) == 0);
}

static void test_cifar(void) {
    const char *d = subdir("cifar");
    make_cifar_dir(d);
    mixq_dataset *tr = NULL, *te = NULL;
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_TRAIN, 0, 1, &tr));
    CHECK_OK(mixq_dataset_load(d, MIXQ_SPLIT_TEST, 0, 1, &te));
    if (tr && te) {
        int c, h, w, k;
        mixq_dataset_shape(tr, &c, &h, &w, &k);
        CHECK(c == 3 && h == 32 && w == 32 && k == 10);
        CHECK(tr->n == 4 + 5 + 6 + 7 + 8 && te->n == 6);
        /* records in batch order; bytes CHW as stored; labels read */
        CHECK(ident(tr->images) == 100 && ident(tr->images + 4 * 3072) == 200);
        CHECK(ident(tr->images + 29 * 3072) == 507 && tr->labels[29] == 7);
        CHECK(te->images[5 * 3072 + 1024 + 33] == pix(2005, 1024 + 33));
        for (int ch = 0; ch < 3; ch++) CHECK(tr->std[ch] > 0);
        float x[2 * 3072];
        int idx[2] = {0, 5}, lab[2];
        CHECK_OK(mq_data_batch(te, NULL, idx, 2, 1, 9, x, lab));
        CHECK(lab[0] == 0 && lab[1] == 5);
    }
    mixq_dataset_free(tr);
    mixq_dataset_free(te);
}

/* Input transforms: presets, custom ones and their errors, the JSON form, BGR order, and what a
 * batch holds under each (PyTorch's arithmetic: (pixel / 255 - mean) / std). */
static void test_preprocess(void) {
    mixq_preprocess pp, q;
    CHECK_OK(mixq_preprocess_preset("unit", 1, &pp));
    CHECK(!pp.from_data && pp.channels == 1 && pp.scale == 1.0f / 255 && pp.mean[0] == 0 && pp.std[0] == 1);
    CHECK_OK(mixq_preprocess_preset("imagenet", 3, &pp));
    CHECK(pp.mean[2] == 0.406f && pp.std[1] == 0.224f);
    CHECK_OK(mixq_preprocess_preset("torchvision-normalize", 3, &q));
    CHECK(!memcmp(pp.mean, q.mean, sizeof q.mean) && !memcmp(pp.std, q.std, sizeof q.std));
    CHECK_OK(mixq_preprocess_preset("dataset", 3, &pp));
    CHECK(pp.from_data);
    CHECK(mixq_preprocess_preset("imagenet", 1, &pp) == MIXQ_ERR_ARG && strstr(mixq_last_error(), "3-channel"));
    CHECK(mixq_preprocess_preset("mnist", 3, &pp) == MIXQ_ERR_ARG);
    CHECK(mixq_preprocess_preset("unti", 1, &pp) == MIXQ_ERR_ARG && strstr(mixq_last_error(), "did you mean 'unit'"));
    CHECK(mixq_preprocess_preset("unit", 0, &pp) == MIXQ_ERR_ARG);
    for (const char *const *n = mixq_preprocess_presets(); *n; n++) {
        int ch = !strcmp(*n, "mnist") || !strcmp(*n, "fashion-mnist") ? 1 : 3;
        CHECKF(mixq_preprocess_preset(*n, ch, &pp) == MIXQ_OK, "preset %s: %s", *n, mixq_last_error());
    }
    const float m3[3] = {0.1f, 0.2f, 0.3f}, s3[3] = {0.5f, 0.25f, 2.0f}, zero = 0, nan_ = NAN;
    CHECK_OK(mixq_preprocess_custom(3, 1.0f / 255, m3, 3, s3, 3, 1, &pp));
    CHECK(mixq_preprocess_custom(3, 1, m3, 2, s3, 3, 0, &q) == MIXQ_ERR_ARG);
    CHECK(mixq_preprocess_custom(1, 1, &zero, 1, &zero, 1, 0, &q) == MIXQ_ERR_ARG); /* std 0 */
    CHECK(mixq_preprocess_custom(1, 1, &nan_, 1, s3, 1, 0, &q) == MIXQ_ERR_ARG);
    CHECK(mixq_preprocess_custom(1, -1, m3, 1, s3, 1, 0, &q) == MIXQ_ERR_ARG);
    CHECK(mixq_preprocess_custom(1, 1, m3, 1, s3, 1, 1, &q) == MIXQ_ERR_ARG); /* BGR needs 3 */
    char d[200];
    mixq_preprocess_describe(&pp, d, sizeof d);
    CHECKF(!strcmp(d, "custom: x = (pixel / 255 - (0.1, 0.2, 0.3)) / (0.5, 0.25, 2), channels reversed (BGR)"), "%s", d);
    /* the JSON form round-trips exactly; bad records are errors naming the origin */
    char *j = mq_pp_json(&pp);
    CHECK(j != NULL);
    if (j) {
        CHECK_OK(mq_pp_parse_json(j, strlen(j), "t", &q));
        CHECKF(!memcmp(&pp, &q, sizeof pp), "JSON round trip differs: %s", j);
        free(j);
    }
    CHECK_OK(mixq_preprocess_preset("dataset", 1, &pp));
    j = mq_pp_json(&pp);
    CHECK(j && !mq_pp_parse_json(j, strlen(j), "t", &q) && q.from_data);
    free(j);
    static const char *const bad[] = {"[1]", "{\"scale\": 1, \"mean\": [0], \"std\": [0]}",
                                      "{\"scale\": 1, \"mean\": [0, 0], \"std\": [1]}",
                                      "{\"scale\": \"x\", \"mean\": [0], \"std\": [1]}",
                                      "{\"scale\": 1, \"mean\": [0], \"std\": [1], \"order\": \"gbr\"}",
                                      "{\"scale\": 1, \"mean\": [0,0,0,0,0], \"std\": [1,1,1,1,1]}", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECKF(mq_pp_parse_json(bad[i], strlen(bad[i]), "f.mixq", &q) == MIXQ_ERR_FORMAT, "accepted %s", bad[i]);
        CHECK(strstr(mixq_last_error(), "f.mixq") != NULL);
    }
    /* batches: unit is pixel / 255 exactly as PyTorch computes it; BGR reverses the channels */
    const char *dir = subdir("pp_cifar");
    make_cifar_dir(dir);
    mixq_dataset *te = NULL;
    CHECK_OK(mixq_dataset_load(dir, MIXQ_SPLIT_TEST, 0, 1, &te));
    if (te) {
        float x[3072], y[3072];
        CHECK_OK(mixq_preprocess_preset("unit", 3, &pp));
        CHECK_OK(mixq_dataset_batch(te, &pp, 1, 1, x, NULL));
        int same = 1;
        for (int k = 0; k < 3072; k++) same &= x[k] == (float)te->images[3072 + k] / 255.0f;
        CHECK(same);
        CHECK_OK(mixq_preprocess_custom(3, 1.0f / 255, m3, 3, s3, 3, 1, &q));
        CHECK_OK(mixq_dataset_batch(te, &q, 1, 1, y, NULL));
        same = 1;
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 1024; k++)
                same &= y[c * 1024 + k] == (x[(2 - c) * 1024 + k] - m3[c]) / s3[c];
        CHECK(same);
        CHECK_OK(mixq_preprocess_preset("fashion-mnist", 1, &pp)); /* 1 channel for 3-channel images */
        CHECK(mixq_dataset_batch(te, &pp, 0, 1, x, NULL) == MIXQ_ERR_SHAPE);
        CHECK(strstr(mixq_last_error(), "1-channel") != NULL);
        /* NULL: the dataset's own statistics, the "dataset" transform's numbers (to float
         * rounding: the default keeps its one multiply-add, recorded numbers PyTorch's order) */
        CHECK_OK(mixq_dataset_batch(te, NULL, 0, 1, x, NULL));
        CHECK_OK(mixq_dataset_preprocess(te, &pp));
        CHECK_OK(mixq_dataset_batch(te, &pp, 0, 1, y, NULL));
        float worst = 0;
        for (int k = 0; k < 3072; k++) worst = fmaxf(worst, fabsf(x[k] - y[k]));
        CHECKF(worst < 1e-5f, "default vs recorded dataset statistics: %g", worst);
    }
    mixq_dataset_free(te);
}

/* Expect mixq_dataset_load(dir, split) to fail with `code` and a message containing needle. */
static void expect_fail(const char *dir, mixq_split split, int val, mixq_status code,
                        const char *needle) {
    mixq_dataset *d = (mixq_dataset *)&d; /* must be reset to NULL on failure */
    mixq_status st = mixq_dataset_load(dir, split, val, 1, &d);
    CHECKF(st == code, "load('%s') returned %d (%s), want %d", dir, st, mixq_last_error(), code);
    CHECKF(d == NULL, "output not NULL after a failed load");
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "message '%s' lacks '%s'",
           mixq_last_error(), needle);
    if (st == MIXQ_OK) mixq_dataset_free(d);
}

static void copy_truncated(const char *src, const char *dst, long keep) {
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL);
    if (!f) return;
    unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (keep < 0) keep += (long)n;
    CHECK(test_write_file(dst, buf, (size_t)keep) == 0);
}

/* Replace dir/name with the bytes b[0..len) (freed here). */
static void replace_file(const char *dir, const char *name, unsigned char *b, size_t len) {
    char p[1200];
    CHECK(b != NULL);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (b) CHECK(test_write_file(p, b, len) == 0);
    free(b);
}

static void test_bad_idx(void) {
    char p[1200], q[1200];
    size_t len;
    unsigned char *b;
    /* truncated plain image file */
    const char *d1 = subdir("bad_trunc_plain");
    make_idx_dir(d1, 20, 5, 6, 6, 0);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", d1);
    copy_truncated(p, p, -7);
    expect_fail(d1, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "truncated");
    /* truncated gzip stream (cut in the middle of the deflate data) */
    const char *d2 = subdir("bad_trunc_gz");
    make_idx_dir(d2, 20, 5, 6, 6, 1);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d2);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    copy_truncated(p, p, (long)st.st_size / 2);
    expect_fail(d2, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "train-images-idx3-ubyte.gz");
    /* corrupt gzip: flip bytes inside the deflate stream */
    const char *d2b = subdir("bad_corrupt_gz");
    make_idx_dir(d2b, 20, 5, 6, 6, 1);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", d2b);
    {
        FILE *f = fopen(p, "r+b");
        CHECK(f != NULL);
        if (f) {
            unsigned char z[512];
            size_t n = fread(z, 1, sizeof z, f);
            for (size_t i = 12; i + 8 < n; i++) z[i] ^= 0x5a;
            rewind(f);
            CHECK(fwrite(z, 1, n, f) == n);
            fclose(f);
        }
    }
    expect_fail(d2b, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "train-labels-idx1-ubyte.gz");
    /* bad magic: a label file where the image file should be */
    const char *d3 = subdir("bad_magic");
    make_idx_dir(d3, 20, 5, 6, 6, 0);
    b = idx_labels(20, 0, &len);
    replace_file(d3, "train-images-idx3-ubyte", b, len);
    expect_fail(d3, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "not an IDX image file");
    /* test images of another size than the training images */
    const char *d4 = subdir("bad_dims");
    make_idx_dir(d4, 20, 5, 6, 6, 0);
    b = idx_images(5, 7, 6, 0, &len);
    replace_file(d4, "t10k-images-idx3-ubyte", b, len);
    expect_fail(d4, MIXQ_SPLIT_TEST, 0, MIXQ_ERR_FORMAT, "test images are 1x7x6");
    /* absurd dimensions in the header */
    const char *d4b = subdir("bad_huge");
    make_idx_dir(d4b, 20, 5, 6, 6, 0);
    b = idx_images(1, 6, 6, 0, &len);
    if (b) put32(b + 8, 100000);
    replace_file(d4b, "train-images-idx3-ubyte", b, len);
    expect_fail(d4b, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "out of range");
    /* a label outside 0..9 */
    const char *d5 = subdir("bad_label");
    make_idx_dir(d5, 20, 5, 6, 6, 0);
    b = idx_labels(20, 0, &len);
    if (b) b[8 + 13] = 12;
    replace_file(d5, "train-labels-idx1-ubyte", b, len);
    expect_fail(d5, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "label 12 of item 13");
    /* image and label counts disagree */
    const char *d6 = subdir("bad_count");
    make_idx_dir(d6, 20, 5, 6, 6, 0);
    b = idx_labels(19, 0, &len);
    replace_file(d6, "train-labels-idx1-ubyte", b, len);
    expect_fail(d6, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "holds 20 images");
    /* bytes after the announced items */
    const char *d7 = subdir("bad_trailing");
    make_idx_dir(d7, 20, 5, 6, 6, 0);
    b = idx_labels(20, 0, &len);
    unsigned char *b2 = b ? realloc(b, len + 3) : NULL;
    if (b2) memset(b2 + len, 1, 3);
    else free(b);
    replace_file(d7, "train-labels-idx1-ubyte", b2, len + 3);
    expect_fail(d7, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "data after the last item");
    /* a missing labels file, an empty directory, a missing directory, an unknown name */
    const char *d8 = subdir("bad_missing_labels");
    make_idx_dir(d8, 20, 5, 6, 6, 0);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", d8);
    CHECK(remove(p) == 0);
    expect_fail(d8, MIXQ_SPLIT_TEST, 0, MIXQ_ERR_NOTFOUND, "t10k-labels-idx1-ubyte");
    expect_fail(subdir("bad_empty"), MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_NOTFOUND, "neither");
    snprintf(q, sizeof q, "%s/does/not/exist", test_tmpdir());
    expect_fail(q, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_NOTFOUND, "neither a known dataset");
    expect_fail("", MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_ARG, "--data");
    /* validation count out of range (50 training images) */
    const char *d9 = subdir("bad_val_count");
    make_idx_dir(d9, 50, 17, 6, 5, 0);
    expect_fail(d9, MIXQ_SPLIT_VAL, 50, MIXQ_ERR_ARG, "validation count 50");
    expect_fail(d9, MIXQ_SPLIT_VAL, -1, MIXQ_ERR_ARG, "validation count");
    /* a dataset package that is not installed (MIXQ_DATA_DIR points at an empty root) */
    setenv("MIXQ_DATA_DIR", subdir("empty_root"), 1);
    expect_fail("fashion-mnist", MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_NOTFOUND,
                "apt-get install dataset-fashion-mnist");
    unsetenv("MIXQ_DATA_DIR");
    /* MNIST has no Debian package: a hint to bring its IDX files; a near miss gets a suggestion */
    expect_fail("mnist", MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_NOTFOUND, "pass --data DIR");
    expect_fail("fashion_mnist", MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_NOTFOUND, "did you mean 'fashion-mnist'?");
}

/* issue 15: an IDX header's declared size was allocated before any data was read (up to 1.6e14
 * bytes: ASan aborts). Allocation is bounded by what the file can hold: a plain file's size, a
 * gzip file's 1032:1, and a gzip buffer grows as the data arrives. */
static void test_idx_huge_header(void) {
    char p[1200];
    const char *d = subdir("huge_header");
    for (int gz = 0; gz < 2; gz++) {
        /* 10^7 images of 4096x4096 pixels, 10 bytes of data */
        unsigned char b[26] = {0};
        put32(b, 0x803);
        put32(b + 4, 10000000);
        put32(b + 8, 4096);
        put32(b + 12, 4096);
        snprintf(p, sizeof p, "%s/images%s", d, gz ? ".gz" : "");
        CHECK(write_maybe_gz(p, b, sizeof b, gz) == 0);
        int n = 0, h = 0, w = 0;
        uint8_t *img = (uint8_t *)1;
        double t0 = mq_now();
        CHECK(mq_idx_read_images(p, &n, &h, &w, &img) == MIXQ_ERR_FORMAT && img == NULL);
        CHECKF(mq_now() - t0 < 1.0, "%.2f s", mq_now() - t0);
        CHECKF(strstr(mixq_last_error(), "announces 10000000 images of 4096x4096 pixels (167772160000000 bytes)"),
               "%s", mixq_last_error());
        CHECKF(strstr(mixq_last_error(), gz ? "more than a gzip file of" : "holds 10 bytes after the header"), "%s",
               mixq_last_error());
        /* 10^7 labels, 10 bytes of them */
        unsigned char l[18] = {0};
        put32(l, 0x801);
        put32(l + 4, 10000000);
        snprintf(p, sizeof p, "%s/labels%s", d, gz ? ".gz" : "");
        CHECK(write_maybe_gz(p, l, sizeof l, gz) == 0);
        uint8_t *lab = (uint8_t *)1;
        CHECK(mq_idx_read_labels(p, &n, &lab) == MIXQ_ERR_FORMAT && lab == NULL);
        CHECKF(strstr(mixq_last_error(), "announces 10000000 labels (10000000 bytes)"), "%s", mixq_last_error());
    }
    /* gzip: an announcement within 1032:1 of the file but data that stops short is truncated */
    size_t len;
    unsigned char *b = idx_images(3000, 28, 28, 0, &len);
    CHECK(b != NULL);
    if (!b) return;
    uint32_t x = 12345; /* incompressible pixels */
    for (size_t i = 16; i < len; i++) x = x * 1664525u + 1013904223u, b[i] = (unsigned char)(x >> 24);
    snprintf(p, sizeof p, "%s/short.gz", d);
    CHECK(write_maybe_gz(p, b, 16 + 100000, 1) == 0);
    int n = 0, h = 0, w = 0;
    uint8_t *img = NULL;
    CHECK(mq_idx_read_images(p, &n, &h, &w, &img) == MIXQ_ERR_FORMAT && img == NULL);
    CHECKF(strstr(mixq_last_error(), "truncated: it ends inside the image data"), "%s", mixq_last_error());
    /* and a whole one, larger than the first buffer (1 MiB), grows to its size */
    snprintf(p, sizeof p, "%s/whole.gz", d);
    CHECK(write_maybe_gz(p, b, len, 1) == 0);
    CHECK_OK(mq_idx_read_images(p, &n, &h, &w, &img));
    CHECK(n == 3000 && h == 28 && w == 28 && img && !memcmp(img, b + 16, len - 16));
    free(img);
    free(b);
}

static void test_bad_cifar(void) {
    char p[1200];
    const char *d1 = subdir("cifar_trunc");
    make_cifar_dir(d1);
    snprintf(p, sizeof p, "%s/data_batch_3.bin", d1);
    write_cifar(p, 3, 0, -1);
    copy_truncated(p, p, 3073 * 2 + 100);
    expect_fail(d1, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "data_batch_3.bin");
    const char *d2 = subdir("cifar_label");
    make_cifar_dir(d2);
    snprintf(p, sizeof p, "%s/data_batch_2.bin", d2);
    write_cifar(p, 4, 0, 2);
    expect_fail(d2, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_FORMAT, "record 2 has label 11");
    const char *d3 = subdir("cifar_missing");
    make_cifar_dir(d3);
    snprintf(p, sizeof p, "%s/data_batch_4.bin", d3);
    CHECK(remove(p) == 0);
    expect_fail(d3, MIXQ_SPLIT_TRAIN, 0, MIXQ_ERR_IO, "data_batch_4.bin");
    const char *d4 = subdir("cifar_empty_test");
    make_cifar_dir(d4);
    snprintf(p, sizeof p, "%s/test_batch.bin", d4);
    CHECK(test_write_file(p, "", 0) == 0);
    expect_fail(d4, MIXQ_SPLIT_TEST, 0, MIXQ_ERR_FORMAT, "test_batch.bin");
}

static void test_real_fashion_mnist(void) {
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    mixq_dataset *te = NULL, *va = NULL;
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TEST, 5000, 1, &te));
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_VAL, 5000, 1, &va));
    if (te && va) {
        int c, h, w, k;
        mixq_dataset_shape(te, &c, &h, &w, &k);
        CHECK(te->n == 10000 && va->n == 5000 && c == 1 && h == 28 && w == 28 && k == 10);
        /* Fashion-MNIST training-set statistics (0.2860 mean, 0.3530 std) */
        CHECKF(fabsf(te->mean[0] - 0.2860f) < 1e-3f && fabsf(te->std[0] - 0.3530f) < 1e-3f,
               "mean %g std %g", te->mean[0], te->std[0]);
        int count[10] = {0};
        for (int i = 0; i < te->n; i++) count[te->labels[i]]++;
        for (int i = 0; i < 10; i++) CHECK(count[i] == 1000);
    }
    mixq_dataset_free(te);
    mixq_dataset_free(va);
}

int main(void) {
    TEST_RUN(test_idx_plain_and_gz);
    TEST_RUN(test_split_reproducible);
    TEST_RUN(test_holdout);
    TEST_RUN(test_augmentation);
    TEST_RUN(test_cifar);
    TEST_RUN(test_preprocess);
    TEST_RUN(test_bad_idx);
    TEST_RUN(test_idx_huge_header);
    TEST_RUN(test_bad_cifar);
    TEST_RUN(test_real_fashion_mnist);
    return test_summary();
}
