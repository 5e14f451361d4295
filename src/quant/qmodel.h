/* Quantized-model state (internal): the description of each quantized layer that the runtime,
 * the ONNX exporter and the tools read, and the state saved in model files
 * (src/io/modelfile.c). */
#ifndef MIXQ_QUANT_QMODEL_H
#define MIXQ_QUANT_QMODEL_H

#include <stdint.h>

#include "mixq/mixq.h"
#include "quant/quant.h"

/* Serialise the calibrated clips and fixed scales ("qstate" section); *buf malloc'ed (NULL and
 * 0 for a float model). */
mixq_status mq_quant_state_save(const mixq_model *m, unsigned char **buf, size_t *len);
/* Restore them after mixq_model_quantize with the embedded policy. */
mixq_status mq_quant_state_load(mixq_model *m, const unsigned char *buf, size_t len, const char *path);

/* nn[i] = 1 where node i's output is never negative (after a ReLU, ReLU6, sigmoid or hard
 * sigmoid, through pooling or flatten, or combining such outputs): a conv/linear node whose input
 * is nn is quantized unsigned, else signed. nn has m->n_nodes entries. */
void mq_quant_nonnegative(const mixq_model *m, uint8_t *nn);

/* Activation-clip calibration: the running max (|x| when signed) into *cmax and, when samples
 * is not NULL, up to MQ_CALIB_SAMPLES values spread over the batches seen ([*nsamples] so far)
 * for the clip searches (mq_choose_clip). */
#define MQ_CALIB_SAMPLES 262144
void mq_calib_collect(const float *x, int64_t n, int is_signed, float *cmax, float *samples, int64_t *nsamples);
/* The clip those give under `method` at `bits`: max (cmax, or 1 when nothing positive was
 * seen) for MQ_CLIP_MAX or fewer than 2 samples, else mq_choose_clip on the samples. */
float mq_calib_clip(float cmax, const float *samples, int64_t nsamples, int bits, int is_signed, mq_clip method);

/* The fake-quantized weights node `node` used in the last forward (NULL if not quantized or
 * not computed yet). For tests; the runtime and exporters read mq_qlayer_get. */
const float *mq_quant_weights(const mixq_model *m, int node);

/* A quantized conv/linear layer as data, computed by the quantizers themselves (quant.h):
 * nobody recovers codes from floats or computes levels. Weights [K][inner] (KCRS flattened per
 * output filter, or [OUT][IN]).
 *   - linear grid, every row integer (codes != NULL): codes[k][i] lies within
 *     mq_levels(kbits[k], 1) (1-bit rows: +-1) and wq[k][i] == scale[k] * (float)codes[k][i]
 *     bit for bit, the very values fake quantization runs on;
 *   - some rows float (32 bits) or a k-means codebook (kmeans, centroids [2^w_bits] sorted):
 *     codes NULL, wq holds the quantized values (float rows as they are);
 *   - every row float: codes and wq NULL (the layer keeps the model's weights).
 * scale [K] per row (equal entries for MQ_GRAN_LAYER; 0 for float rows; unused by k-means).
 * Activations: a_bits (32: float), signed or not, codes a_qmin..a_qmax (mq_levels), clip a_clip
 * (0 before calibration) and step a_scale = mq_act_scale(a_bits, a_signed, a_clip).
 * The pointers belong to the model and stay valid until its parameters, policy or scales
 * change. */
typedef struct mq_qlayer {
    int node;
    int K;
    int64_t inner;
    mq_gran gran;
    int kmeans;
    int w_bits;              /* the widest row (kbits[k] == 32: that row stays float) */
    const int *kbits;        /* [K] */
    const float *scale;      /* [K] */
    const int8_t *codes;     /* [K][inner] or NULL */
    const float *wq;         /* [K][inner] or NULL */
    const float *centroids;  /* [1 << w_bits] (k-means) or NULL */
    int a_bits, a_signed, a_qmin, a_qmax;
    float a_clip, a_scale;
    const float *bias;       /* [K] the bias on the accumulator grid (mq_bias_quant), or NULL:
                                the layer adds its float bias */
    const int32_t *bias_codes; /* [K] its int32 codes (scale a_scale * scale[k]) */
} mq_qlayer;

/* Node `node`'s description for the current weights (quantizing them if they changed).
 * MIXQ_ERR_ARG when the node is not a quantized layer. */
mixq_status mq_qlayer_get(mixq_model *m, int node, mq_qlayer *out);
/* Fix node's weight scales (NULL: keep) and activation clip (<= 0: keep). */
mixq_status mq_quant_layer_set(mixq_model *m, int node, const float *scales, float alpha);

#endif
