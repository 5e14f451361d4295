/* Datasets (internal): storage and batch assembly. Public API in mixq.h. */
#ifndef MIXQ_DATA_H
#define MIXQ_DATA_H

#include "mixq/mixq.h"
#include "core/core.h"

struct mixq_dataset {
    char name[256];          /* "fashion-mnist:train", "/path/to/dir:test", ... */
    int n, c, h, w, classes;
    uint8_t *images;         /* [n][c][h][w] raw pixels */
    uint8_t *labels;         /* [n] */
    float mean[3], std[3];   /* per-channel normalisation in [0,1] pixel units, from the
                                full training file (identical for every split) */
    int split;               /* the mixq_split it was loaded as */
    mixq_holdout holdout;    /* TRAIN and VAL: the validation split they were carved with */
};

/* Fill x [b][c][h][w] with images idx[0..b) as transform pp gives them (NULL or from_data: the
 * dataset's own statistics, see mq_pp_resolve) and labels [b]. With augment, each
 * image gets a random crop (zero padding of 2 px below 32 px images, 4 px otherwise) and a
 * random horizontal flip, drawn from an RNG seeded by mq_seed_mix(seed, idx[i], 0): results do
 * not depend on threads or on how images are grouped into batches. */
mixq_status mq_data_batch(const mixq_dataset *d, const mixq_preprocess *pp, const int *idx, int b,
                          int augment, uint64_t seed, float *x, int *labels);

/* Input preprocessing (src/data/preprocess.c). mq_pp_resolve: the transform pp means for images
 * of d (pp NULL or from_data: d's own statistics); a channel count other than d's is an error.
 * mq_pp_json: the JSON form (malloc'ed, NULL when out of memory); mq_pp_parse_json reads it,
 * origin names the file in errors. */
mixq_status mq_pp_resolve(const mixq_preprocess *pp, const mixq_dataset *d, mixq_preprocess *out);
char *mq_pp_json(const mixq_preprocess *pp);
mixq_status mq_pp_parse_json(const char *text, size_t len, const char *origin, mixq_preprocess *out);

/* The held-out split's JSON form in model files, {"seed": "S", "count": C, "images": N} (the
 * seed a string: any uint64 exactly); mq_holdout_json malloc's it (NULL when out of memory),
 * mq_holdout_parse_json reads it, origin naming the file in errors. */
char *mq_holdout_json(const mixq_holdout *h);
mixq_status mq_holdout_parse_json(const char *text, size_t len, const char *origin, mixq_holdout *out);

/* Low-level readers (used by mixq_dataset_load and the tests). On success *images / *labels
 * are malloc'ed and owned by the caller. */
mixq_status mq_idx_read_images(const char *path, int *n, int *h, int *w, uint8_t **images);
mixq_status mq_idx_read_labels(const char *path, int *n, uint8_t **labels);
/* Reads CIFAR-10 binary batch files (1 label byte + 3072 bytes CHW per record) and appends
 * their records. */
mixq_status mq_cifar_read(const char *const *paths, int npaths, int *n, uint8_t **images,
                          uint8_t **labels);

#endif
