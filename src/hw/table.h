/* HAQ-format latency/energy lookup tables (internal; the `table` back-end of issue 4).
 * A table holds int64 costs [layers][8][8] indexed [layer][w_bits - 1][a_bits - 1], read from
 * HAQ's .npy files (format version 1 or 2, dtype '<i8', C order, shape (L, 8, 8)). */
#ifndef MIXQ_HW_TABLE_H
#define MIXQ_HW_TABLE_H

#include <stdint.h>

#include "mixq/mixq.h"
#include "core/core.h"

typedef struct mq_cost_table {
    int layers;
    int64_t *v; /* [layers][8][8] */
} mq_cost_table;

mixq_status mq_table_load_npy(const char *path, mq_cost_table *t);
/* CSV: header "layer,w_bits,a_bits,cost", every (layer, w, a) exactly once. */
mixq_status mq_table_load_csv(const char *path, mq_cost_table *t);
void mq_table_free(mq_cost_table *t);

/* Cost of layer l at (w_bits, a_bits), both 1..8 (the caller checks the ranges). */
static inline int64_t mq_table_at(const mq_cost_table *t, int l, int w_bits, int a_bits) {
    return t->v[((size_t)l * 8 + (size_t)(w_bits - 1)) * 8 + (size_t)(a_bits - 1)];
}

#endif
