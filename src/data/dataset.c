/* Dataset loading (Fashion-MNIST / MNIST from Debian's dataset packages, MNIST-format IDX
 * directories, CIFAR-10 binary directories), validation splits, normalisation and batches. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "hw/hw.h"

#define DEFAULT_ROOT "/usr/share/datasets"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/base or dir/base.gz, whichever exists (plain first). */
static int find_idx(const char *dir, const char *base, char *out, size_t n) {
    snprintf(out, n, "%.3000s/%s", dir, base);
    if (is_file(out)) return 1;
    snprintf(out, n, "%.3000s/%s.gz", dir, base);
    return is_file(out);
}

void mixq_dataset_free(mixq_dataset *d) {
    if (!d) return;
    free(d->images);
    free(d->labels);
    free(d);
}

int mixq_dataset_count(const mixq_dataset *d) { return d ? d->n : 0; }
const char *mixq_dataset_name(const mixq_dataset *d) { return d ? d->name : ""; }

void mixq_dataset_shape(const mixq_dataset *d, int *c, int *h, int *w, int *classes) {
    if (c) *c = d->c;
    if (h) *h = d->h;
    if (w) *w = d->w;
    if (classes) *classes = d->classes;
}

mixq_status mixq_dataset_truncate(mixq_dataset *d, int n) {
    if (!d) return mq_err(MIXQ_ERR_ARG, "mixq_dataset_truncate: NULL dataset");
    if (n < 1 || n > d->n)
        return mq_err(MIXQ_ERR_ARG, "cannot keep %d images of '%s', which has %d", n, d->name, d->n);
    d->n = n;
    return MIXQ_OK;
}

mixq_status mixq_dataset_batch(const mixq_dataset *d, const mixq_preprocess *pp, int start, int n,
                               float *x, int *labels) {
    if (!d || !x) return mq_err(MIXQ_ERR_ARG, "mixq_dataset_batch: NULL argument");
    if (start < 0 || n < 1 || start > d->n - n)
        return mq_err(MIXQ_ERR_ARG, "images [%d, %d) out of range: '%s' has %d", start, start + n,
                      d->name, d->n);
    int *idx = mq_malloc((size_t)n, sizeof(int), "batch indices");
    int *lab = labels ? labels : mq_malloc((size_t)n, sizeof(int), "batch labels");
    mixq_status st = MIXQ_ERR_NOMEM;
    if (idx && lab) {
        for (int i = 0; i < n; i++) idx[i] = start + i;
        st = mq_data_batch(d, pp, idx, n, 0, 0, x, lab);
    }
    free(idx);
    if (lab != labels) free(lab);
    return st;
}

/* Raw contents of one file pair (images + labels). */
typedef struct raw {
    int n, c, h, w;
    uint8_t *images, *labels;
} raw;

static void raw_free(raw *r) {
    free(r->images);
    free(r->labels);
    memset(r, 0, sizeof *r);
}

static mixq_status load_idx_pair(const char *dir, const char *prefix, raw *r) {
    char ip[4096], lp[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if (!find_idx(dir, base, ip, sizeof ip))
        return mq_err(MIXQ_ERR_NOTFOUND, "'%s' has no %s[.gz]", dir, base);
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if (!find_idx(dir, base, lp, sizeof lp))
        return mq_err(MIXQ_ERR_NOTFOUND, "'%s' has no %s[.gz]", dir, base);
    int nl = 0;
    mixq_status st = mq_idx_read_images(ip, &r->n, &r->h, &r->w, &r->images);
    if (!st) st = mq_idx_read_labels(lp, &nl, &r->labels);
    if (!st && nl != r->n)
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' holds %d images but '%s' holds %d labels", ip, r->n, lp,
                    nl);
    for (int i = 0; !st && i < r->n; i++)
        if (r->labels[i] > 9)
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': label %u of item %d is outside 0..9", lp,
                        r->labels[i], i);
    if (st) {
        raw_free(r);
        return st;
    }
    r->c = 1;
    return MIXQ_OK;
}

static mixq_status load_cifar(const char *dir, int test, raw *r) {
    char paths[5][4096];
    const char *pp[5];
    int np = test ? 1 : 5;
    for (int i = 0; i < np; i++) {
        if (test) snprintf(paths[i], sizeof paths[i], "%.3000s/test_batch.bin", dir);
        else snprintf(paths[i], sizeof paths[i], "%.3000s/data_batch_%d.bin", dir, i + 1);
        pp[i] = paths[i];
    }
    mixq_status st = mq_cifar_read(pp, np, &r->n, &r->images, &r->labels);
    if (st) return st;
    r->c = 3;
    r->h = r->w = 32;
    return MIXQ_OK;
}

static void normalisation(const raw *tr, float *mean, float *std) {
    size_t hw = (size_t)tr->h * tr->w;
    for (int c = 0; c < tr->c; c++) {
        double s = 0, ss = 0;
        for (int i = 0; i < tr->n; i++) {
            const uint8_t *p = tr->images + ((size_t)i * tr->c + c) * hw;
            uint64_t a = 0, b = 0;
            for (size_t k = 0; k < hw; k++) {
                a += p[k];
                b += (uint64_t)p[k] * p[k];
            }
            s += (double)a;
            ss += (double)b;
        }
        double cnt = (double)tr->n * hw, mu = s / cnt / 255.0;
        double var = ss / cnt / (255.0 * 255.0) - mu * mu;
        mean[c] = (float)mu;
        std[c] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
    }
}

/* The seeded permutation of a training file of n images whose last `count` entries are the
 * validation split of that count (the one definition of which images a split holds). */
static void split_perm(int n, uint64_t seed, int *perm) {
    for (int i = 0; i < n; i++) perm[i] = i;
    mq_rng rng;
    mq_rng_seed(&rng, mq_seed_mix(seed, 0x5EED5, 0));
    mq_rng_shuffle(&rng, perm, n);
}

mixq_status mixq_dataset_holdout(const mixq_dataset *d, mixq_holdout *out) {
    if (!d || !out) return mq_err(MIXQ_ERR_ARG, "mixq_dataset_holdout: NULL argument");
    if (d->split == MIXQ_SPLIT_TEST)
        return mq_err(MIXQ_ERR_ARG, "'%s' is a test split: it holds no training images", d->name);
    *out = d->holdout;
    return MIXQ_OK;
}

mixq_status mixq_holdout_seen(const mixq_holdout *held, const mixq_holdout *val, int *seen) {
    if (!held || !val || !seen) return mq_err(MIXQ_ERR_ARG, "mixq_holdout_seen: NULL argument");
    *seen = 0;
    if (held->images != val->images)
        return mq_err(MIXQ_ERR_ARG, "the held-out split is of a training file of %d images, the "
                      "validation split of one of %d: not the same data", held->images, val->images);
    if (held->count < 0 || held->count > held->images || val->count < 0 || val->count > val->images)
        return mq_err(MIXQ_ERR_ARG, "split counts %d and %d out of range for %d images", held->count,
                      val->count, val->images);
    if (held->seed == val->seed) { /* the same permutation: the smaller split is the larger's tail */
        *seen = val->count > held->count ? val->count - held->count : 0;
        return MIXQ_OK;
    }
    const int n = held->images;
    int *perm = mq_malloc((size_t)(n ? n : 1), sizeof(int), "split permutation");
    uint8_t *in_held = mq_calloc((size_t)(n ? n : 1), 1, "split mask");
    if (!perm || !in_held) {
        free(perm);
        free(in_held);
        return MIXQ_ERR_NOMEM;
    }
    split_perm(n, held->seed, perm);
    for (int i = n - held->count; i < n; i++) in_held[perm[i]] = 1;
    split_perm(n, val->seed, perm);
    for (int i = n - val->count; i < n; i++) *seen += !in_held[perm[i]];
    free(perm);
    free(in_held);
    return MIXQ_OK;
}

char *mq_holdout_json(const mixq_holdout *h) {
    char *t = mq_malloc(96, 1, "held-out split record");
    if (t) snprintf(t, 96, "{\"seed\": \"%llu\", \"count\": %d, \"images\": %d}",
                    (unsigned long long)h->seed, h->count, h->images);
    return t;
}

mixq_status mq_holdout_parse_json(const char *text, size_t len, const char *origin, mixq_holdout *out) {
    int oom;
    cJSON *o = mq_json_parse(text, len, NULL, &oom);
    if (oom) return MIXQ_ERR_NOMEM;
    const mq_jctx c = {.origin = origin, .dir = NULL};
    const char *seed = NULL;
    long long count = 0, images = 0;
    mixq_status st = MIXQ_OK;
    if (!cJSON_IsObject(o))
        st = mq_err(MIXQ_ERR_FORMAT, "%s: the held-out split record is not a JSON object", origin);
    if (!st) st = mq_j_str(&c, o, "", "seed", &seed);
    if (!st) st = mq_j_int(&c, o, "", "images", 1, INT_MAX, &images);
    if (!st) st = mq_j_int(&c, o, "", "count", 0, images, &count);
    char *end = NULL;
    errno = 0;
    unsigned long long sv = st ? 0 : strtoull(seed, &end, 10);
    if (!st && (!*seed || *end || errno || *seed == '-'))
        st = mq_err(MIXQ_ERR_FORMAT, "%s: field 'seed' is \"%.40s\", not an unsigned 64-bit decimal",
                    origin, seed);
    if (!st) *out = (mixq_holdout){.seed = sv, .count = (int)count, .images = (int)images};
    cJSON_Delete(o);
    return st;
}

mixq_status mixq_dataset_load(const char *spec, mixq_split split, int val_count, uint64_t seed,
                              mixq_dataset **out) {
    if (!out) return mq_err(MIXQ_ERR_ARG, "mixq_dataset_load: NULL output");
    *out = NULL;
    if (!spec || !*spec) return mq_err(MIXQ_ERR_ARG, "no dataset given; hint: --data fashion-mnist");
    if (split != MIXQ_SPLIT_TRAIN && split != MIXQ_SPLIT_VAL && split != MIXQ_SPLIT_TEST)
        return mq_err(MIXQ_ERR_ARG, "unknown split %d", (int)split);
    char dir[4096];
    const char *label = spec;
    static const char *const named[] = {"fashion-mnist"}; /* Debian's dataset-<name> packages */
    if (!strcmp(spec, named[0])) {
        const char *root = getenv("MIXQ_DATA_DIR");
        snprintf(dir, sizeof dir, "%s/%s", root && *root ? root : DEFAULT_ROOT, spec);
        if (!is_dir(dir))
            return mq_err(MIXQ_ERR_NOTFOUND, "dataset '%s' is not installed (no %s); hint: "
                          "apt-get install dataset-%s (scripts/deps.sh does it)", spec, dir, spec);
    } else {
        if (!is_dir(spec) && !strcmp(spec, "mnist"))
            return mq_err(MIXQ_ERR_NOTFOUND, "'mnist' is not a packaged dataset here (Debian has no "
                          "MNIST package); hint: put MNIST's four IDX files (train-images-idx3-ubyte.gz, "
                          "train-labels-idx1-ubyte.gz, t10k-...) in a directory and pass --data DIR");
        if (!is_dir(spec))
            return mq_err(MIXQ_ERR_NOTFOUND, "'%s' is neither a known dataset (fashion-mnist) nor a "
                          "directory; %shint: --data fashion-mnist, or a directory of IDX files or "
                          "CIFAR-10 batches", spec, mq_did_you_mean(spec, named, 1));
        snprintf(dir, sizeof dir, "%s", spec);
    }
    char probe[4096];
    int cifar = 0;
    if (!find_idx(dir, "train-images-idx3-ubyte", probe, sizeof probe)) {
        snprintf(probe, sizeof probe, "%.3000s/data_batch_1.bin", dir);
        if (!is_file(probe))
            return mq_err(MIXQ_ERR_NOTFOUND, "'%s' holds neither MNIST-format files "
                          "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...) "
                          "nor CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin)", dir);
        cifar = 1;
    }
    raw tr = {0}, te = {0};
    mixq_status st = cifar ? load_cifar(dir, 0, &tr) : load_idx_pair(dir, "train", &tr);
    if (st) return st;
    if (val_count < 0 || val_count >= tr.n) {
        int n = tr.n;
        raw_free(&tr);
        return mq_err(MIXQ_ERR_ARG, "validation count %d out of range [0, %d) for '%s'", val_count,
                      n, spec);
    }
    if (split == MIXQ_SPLIT_TEST) {
        st = cifar ? load_cifar(dir, 1, &te) : load_idx_pair(dir, "t10k", &te);
        if (!st && (te.c != tr.c || te.h != tr.h || te.w != tr.w))
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': test images are %dx%dx%d but training images are "
                        "%dx%dx%d", dir, te.c, te.h, te.w, tr.c, tr.h, tr.w);
        if (st) {
            raw_free(&tr);
            raw_free(&te);
            return st;
        }
    }
    mixq_dataset *d = mq_calloc(1, sizeof *d, "dataset");
    if (!d) {
        raw_free(&tr);
        raw_free(&te);
        return MIXQ_ERR_NOMEM;
    }
    static const char *const split_names[] = {"train", "val", "test"}; /* mixq_split order */
    _Static_assert(MQ_COUNTOF(split_names) == MIXQ_SPLIT_COUNT,
                   "split_names: one name per mixq_split");
    snprintf(d->name, sizeof d->name, "%s:%s", label, split_names[split]);
    d->c = tr.c;
    d->h = tr.h;
    d->w = tr.w;
    d->classes = 10;
    d->split = (int)split;
    d->holdout = (mixq_holdout){.seed = seed, .count = val_count, .images = tr.n};
    normalisation(&tr, d->mean, d->std);
    size_t img = (size_t)tr.c * tr.h * tr.w;
    if (split == MIXQ_SPLIT_TEST) {
        d->n = te.n;
        d->images = te.images;
        d->labels = te.labels;
        te.images = te.labels = NULL;
    } else {
        /* Seeded permutation of the training file: the last val_count entries are VAL, the
         * rest (kept in file order) are TRAIN. Same seed and count: disjoint, reproducible. */
        int *perm = mq_malloc((size_t)tr.n, sizeof(int), "split permutation");
        uint8_t *is_val = mq_calloc((size_t)tr.n, 1, "split mask");
        int n = split == MIXQ_SPLIT_VAL ? val_count : tr.n - val_count;
        d->images = mq_malloc((size_t)(n ? n : 1), img, "dataset images");
        d->labels = mq_malloc((size_t)(n ? n : 1), 1, "dataset labels");
        if (!perm || !is_val || !d->images || !d->labels) {
            free(perm);
            free(is_val);
            raw_free(&tr);
            mixq_dataset_free(d);
            return MIXQ_ERR_NOMEM;
        }
        split_perm(tr.n, seed, perm);
        for (int i = tr.n - val_count; i < tr.n; i++) is_val[perm[i]] = 1;
        int k = 0;
        if (split == MIXQ_SPLIT_VAL) {
            for (int i = tr.n - val_count; i < tr.n; i++, k++) {
                memcpy(d->images + (size_t)k * img, tr.images + (size_t)perm[i] * img, img);
                d->labels[k] = tr.labels[perm[i]];
            }
        } else {
            for (int i = 0; i < tr.n; i++)
                if (!is_val[i]) {
                    memcpy(d->images + (size_t)k * img, tr.images + (size_t)i * img, img);
                    d->labels[k++] = tr.labels[i];
                }
        }
        d->n = n;
        free(perm);
        free(is_val);
    }
    raw_free(&tr);
    raw_free(&te);
    if (d->n < 1) {
        mixq_dataset_free(d);
        return mq_err(MIXQ_ERR_ARG, "split of '%s' is empty", spec);
    }
    *out = d;
    return MIXQ_OK;
}

mixq_status mq_data_batch(const mixq_dataset *d, const mixq_preprocess *pp, const int *idx, int b,
                          int augment, uint64_t seed, float *x, int *labels) {
    mixq_preprocess t;
    mixq_status st = mq_pp_resolve(pp, d, &t);
    if (st) return st;
    for (int i = 0; i < b; i++)
        if (idx[i] < 0 || idx[i] >= d->n)
            return mq_err(MIXQ_ERR_ARG, "image index %d out of range for '%s' (%d images)", idx[i],
                          d->name, d->n);
    const int C = d->c, H = d->h, W = d->w, pad = H < 32 ? 2 : 4;
    const size_t img = (size_t)C * H * W;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < b; i++) {
        const uint8_t *src = d->images + (size_t)idx[i] * img;
        float *dst = x + (size_t)i * img;
        int oy = 0, ox = 0, flip = 0;
        if (augment) {
            mq_rng rng;
            mq_rng_seed(&rng, mq_seed_mix(seed, (uint64_t)idx[i], 0));
            oy = (int)mq_rng_below(&rng, (uint32_t)(2 * pad + 1)) - pad;
            ox = (int)mq_rng_below(&rng, (uint32_t)(2 * pad + 1)) - pad;
            flip = (int)mq_rng_below(&rng, 2);
        }
        for (int c = 0; c < C; c++) {
            /* x = (pixel * scale - mean) / std in PyTorch's order of operations (ToTensor
             * divides by 255, Normalize subtracts, then divides), so inputs match its bit for bit.
             * mixq's default as such (a model that records no transform: built fresh, or saved
             * before models recorded one) keeps the one multiply-add it was always computed with,
             * so the figures measured on those models stay what they were. */
            const int legacy = !pp || pp->from_data;
            const float mu = t.mean[c], sd = t.std[c], sc = t.scale;
            const float lsc = 1.0f / (255.0f * sd), loff = mu / sd;
            const int div255 = sc == 1.0f / 255.0f;
            const uint8_t *sp = src + (size_t)(t.bgr ? C - 1 - c : c) * H * W;
            float *dp = dst + (size_t)c * H * W;
            for (int y = 0; y < H; y++) {
                int sy = y + oy;
                for (int xx = 0; xx < W; xx++) {
                    int sx = (flip ? W - 1 - xx : xx) + ox;
                    float v = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? sp[sy * W + sx] : 0;
                    if (legacy) {
                        dp[y * W + xx] = v * lsc - loff;
                    } else {
                        v = div255 ? v / 255.0f : v * sc;
                        dp[y * W + xx] = (v - mu) / sd;
                    }
                }
            }
        }
        labels[i] = d->labels[idx[i]];
    }
    return MIXQ_OK;
}
