/* Quantized-model state in model files (internal; used by src/io/modelfile.c). */
#ifndef MIXQ_QUANT_QMODEL_H
#define MIXQ_QUANT_QMODEL_H

#include "mixq/mixq.h"

/* Serialise the calibrated clips and fixed scales ("qstate" section); *buf malloc'ed (NULL and
 * 0 for a float model). */
mixq_status mq_quant_state_save(const mixq_model *m, unsigned char **buf, size_t *len);
/* Restore them after mixq_model_quantize with the embedded policy. */
mixq_status mq_quant_state_load(mixq_model *m, const unsigned char *buf, size_t len, const char *path);

/* The fake-quantized weights node `node` used in the last forward (NULL if not quantized or
 * not computed yet). For tests and the runtime. */
const float *mq_quant_weights(const mixq_model *m, int node);

/* ONNX export/import support. Node `node`'s weight scales [K] (for the current weights), its
 * fake-quantized weights (NULL when they stay float), its activation clip (0 before
 * calibration), whether its input is signed and whether it uses a k-means codebook. */
mixq_status mq_quant_layer_params(mixq_model *m, int node, const float **scales, const float **wq,
                                  float *alpha, int *a_signed, int *kmeans);
/* Fix node's weight scales (NULL: keep) and activation clip (<= 0: keep). */
mixq_status mq_quant_layer_set(mixq_model *m, int node, const float *scales, float alpha);

#endif
