/* CIFAR-10 binary batches: records of 1 label byte + 3072 image bytes (3 x 32 x 32, CHW). */
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

#define CIFAR_REC 3073

mixq_status mq_cifar_read(const char *const *paths, int npaths, int *n, uint8_t **images,
                          uint8_t **labels) {
    *images = *labels = NULL;
    size_t total = 0;
    long sizes[16];
    if (npaths < 1 || npaths > 16) return mq_err(MIXQ_ERR_ARG, "cifar: %d batch files", npaths);
    for (int i = 0; i < npaths; i++) {
        FILE *f = mq_fopen(paths[i], "rb");
        if (!f) return MIXQ_ERR_IO;
        long sz = -1;
        if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
        fclose(f);
        if (sz <= 0 || sz % CIFAR_REC)
            return mq_err(MIXQ_ERR_FORMAT, "'%s' is %ld bytes, not a whole number of CIFAR-10 "
                          "records of %d bytes (truncated or not a CIFAR-10 binary batch)",
                          paths[i], sz, CIFAR_REC);
        sizes[i] = sz / CIFAR_REC;
        total += (size_t)sizes[i];
    }
    uint8_t *img = mq_malloc(total, 3072, "CIFAR-10 images");
    uint8_t *lab = mq_malloc(total, 1, "CIFAR-10 labels");
    unsigned char *rec = mq_malloc(CIFAR_REC, 1, "CIFAR-10 record");
    mixq_status st = (!img || !lab || !rec) ? MIXQ_ERR_NOMEM : MIXQ_OK;
    size_t k = 0;
    for (int i = 0; i < npaths && !st; i++) {
        FILE *f = mq_fopen(paths[i], "rb");
        if (!f) {
            st = MIXQ_ERR_IO;
            break;
        }
        for (long r = 0; r < sizes[i] && !st; r++, k++) {
            st = mq_fread(rec, CIFAR_REC, f, paths[i], "CIFAR-10 record");
            if (st) break;
            if (rec[0] > 9) {
                st = mq_err(MIXQ_ERR_FORMAT, "'%s': record %ld has label %u (CIFAR-10 labels are "
                            "0..9)", paths[i], r, rec[0]);
                break;
            }
            lab[k] = rec[0];
            memcpy(img + k * 3072, rec + 1, 3072);
        }
        fclose(f);
    }
    free(rec);
    if (st) {
        free(img);
        free(lab);
        return st;
    }
    *n = (int)total;
    *images = img;
    *labels = lab;
    return MIXQ_OK;
}
