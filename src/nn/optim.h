/* Optimizers and learning-rate schedules (internal).
 * State (momentum buffer / Adam moments) lives in one arena per buffer, laid out exactly like
 * the model's parameter arena. */
#ifndef MIXQ_NN_OPTIM_H
#define MIXQ_NN_OPTIM_H

#include "mixq/mixq.h"
#include "core/core.h"

typedef struct mq_optim {
    mixq_optimizer kind;
    float momentum, weight_decay, beta1, beta2, eps;
    int64_t t;        /* steps taken */
    size_t n;         /* parameter count */
    float *m, *v;     /* SGD momentum buffer in m; Adam first/second moments in m, v */
} mq_optim;

/* PyTorch semantics.
 * SGD:  g = grad + wd * p (wd only on tensors marked decay: conv/linear weights);
 *       buf = g on the first step, else buf = momentum * buf + g;  p -= lr * buf.
 * Adam: g = grad + wd * p (L2, as torch.optim.Adam);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *       p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). */
mixq_status mq_optim_init(mq_optim *o, const mixq_train_config *cfg, const mixq_model *m);
mixq_status mq_optim_step(mq_optim *o, mixq_model *m, float lr);
void mq_optim_free(mq_optim *o);

/* Adam over a double vector outside the arena (the search agents' own parameters), step t
 * (1-based, the caller counts), no weight decay:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   tf_form 0 (PyTorch):    p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   tf_form 1 (TensorFlow): p -= lr sqrt(1-b2^t) / (1-b1^t) m / (sqrt(v) + eps)   (eps on the raw v)
 * The DDPG networks keep their float copy of PyTorch's (ddpg.c), bit for bit as the fixtures'. */
void mq_adam_d(double *p, const double *g, double *m, double *v, size_t n, double lr, double b1, double b2,
               double eps, int64_t t, int tf_form);

/* Learning rate for a (0-based, fractional) epoch position under cfg's schedule. */
float mq_lr_at(const mixq_train_config *cfg, double epoch_pos);

#endif
