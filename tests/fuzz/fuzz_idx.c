/* IDX files (MNIST format), plain or gzip (the reader's gzopen takes both): read as images and
 * as labels. Seeds: small image and label files, plain and gzip. */
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fuzz_file(".idx", data, size);
    if (!p) return 0;
    int n, h, w;
    uint8_t *b = NULL;
    if (mq_idx_read_images(p, &n, &h, &w, &b) == MIXQ_OK && (n < 1 || h < 1 || w < 1 || !b)) abort();
    free(b);
    b = NULL;
    if (mq_idx_read_labels(p, &n, &b) == MIXQ_OK && (n < 1 || !b)) abort();
    free(b);
    unlink(p);
    return 0;
}
