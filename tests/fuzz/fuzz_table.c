/* HAQ lookup tables: the same bytes read as a .npy file and as a .csv file. Seeds: the test
 * fixture's .npy table and a two-layer CSV. */
#include "fuzz.h"
#include "hw/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_cost_table t;
    const char *p = fuzz_file(".npy", data, size);
    if (p) {
        if (mq_table_load_npy(p, &t) == MIXQ_OK) mq_table_free(&t);
        unlink(p);
    }
    p = fuzz_file(".csv", data, size);
    if (p) {
        if (mq_table_load_csv(p, &t) == MIXQ_OK) mq_table_free(&t);
        unlink(p);
    }
    return 0;
}
