/* oneDNN direct-convolution back-end (internal; see conv_dnnl.c for layouts and determinism). */
#ifndef MIXQ_NN_CONV_DNNL_H
#define MIXQ_NN_CONV_DNNL_H

#include "nn/kernels.h"

mixq_status mq_conv_dnnl_init(void);
/* y = conv(x, w) + b over chunks of g images (b may be NULL). */
mixq_status mq_conv_dnnl_forward(const mq_conv_shape *s, int g, const float *x, const float *w,
                                 const float *b, float *y);
/* dx (+)= conv_bwd_data(dy, w) over chunks of g images when dx != NULL; the weight gradients
 * over chunks of gw images, each chunk's cut into ns slices of K / ns output channels (ns
 * divides K; 1 where groups > 1): for chunk c, partials + c * (wn + K) receives that chunk's dw
 * (KCRS, wn values) and then db (K values) when want_dw / want_db. */
mixq_status mq_conv_dnnl_backward(const mq_conv_shape *s, int g, int gw, int ns, const float *x,
                                  const float *w, const float *dy, float *dx, int accumulate,
                                  float *partials, int want_dw, int want_db);
/* Free every cached primitive and buffer (all threads must be idle). */
void mq_conv_dnnl_release(void);

#endif
