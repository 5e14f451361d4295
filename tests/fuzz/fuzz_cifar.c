/* CIFAR-10 binary batches (1 label byte + 3072 pixel bytes per record). Seed: a two-record batch. */
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fuzz_file(".bin", data, size);
    if (!p) return 0;
    int n = 0;
    uint8_t *img = NULL, *lab = NULL;
    const char *paths[1] = {p};
    if (mq_cifar_read(paths, 1, &n, &img, &lab) == MIXQ_OK && (n < 1 || !img || !lab)) abort();
    free(img);
    free(lab);
    unlink(p);
    return 0;
}
