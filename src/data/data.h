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
};

/* Fill x [b][c][h][w] with normalised images idx[0..b) and labels [b]. With augment, each
 * image gets a random crop (zero padding of 2 px below 32 px images, 4 px otherwise) and a
 * random horizontal flip, drawn from an RNG seeded by mq_seed_mix(seed, idx[i], 0): results do
 * not depend on threads or on how images are grouped into batches. */
mixq_status mq_data_batch(const mixq_dataset *d, const int *idx, int b, int augment,
                          uint64_t seed, float *x, int *labels);

/* Low-level readers (used by mixq_dataset_load and the tests). On success *images / *labels
 * are malloc'ed and owned by the caller. */
mixq_status mq_idx_read_images(const char *path, int *n, int *h, int *w, uint8_t **images);
mixq_status mq_idx_read_labels(const char *path, int *n, uint8_t **labels);
/* Reads CIFAR-10 binary batch files (1 label byte + 3072 bytes CHW per record) and appends
 * their records. */
mixq_status mq_cifar_read(const char *const *paths, int npaths, int *n, uint8_t **images,
                          uint8_t **labels);

#endif
