/* SGD with momentum and Adam over the model's parameter arena; learning-rate schedules. */
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"

mixq_status mq_optim_init(mq_optim *o, const mixq_train_config *cfg, const mixq_model *m) {
    memset(o, 0, sizeof *o);
    o->kind = cfg->optimizer;
    o->momentum = cfg->momentum;
    o->weight_decay = cfg->weight_decay;
    o->beta1 = cfg->beta1;
    o->beta2 = cfg->beta2;
    o->eps = cfg->adam_eps;
    o->n = m->n_params;
    if (o->kind != MIXQ_OPT_SGD && o->kind != MIXQ_OPT_ADAM)
        return mq_err(MIXQ_ERR_ARG, "unknown optimizer %d", (int)o->kind);
    o->m = mq_alloc_aligned(o->n * sizeof(float), "optimizer state");
    if (!o->m) return MIXQ_ERR_NOMEM;
    if (o->kind == MIXQ_OPT_ADAM) {
        o->v = mq_alloc_aligned(o->n * sizeof(float), "optimizer state");
        if (!o->v) {
            mq_optim_free(o);
            return MIXQ_ERR_NOMEM;
        }
    }
    return MIXQ_OK;
}

void mq_optim_free(mq_optim *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

mixq_status mq_optim_step(mq_optim *o, mixq_model *m, float lr) {
    if (o->n != m->n_params) return mq_err(MIXQ_ERR_STATE, "optimizer built for another model");
    o->t++;
    m->params_version++;
    const int first = o->t == 1;
    double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const mq_tensor *t = &m->tensors[ti];
        if (!t->trainable) continue;
        float *p = m->params + t->off;
        const float *g = m->grads + t->off;
        float *mb = o->m + t->off;
        const float wd = t->decay ? o->weight_decay : 0.0f;
        const int64_t n = t->numel;
        if (o->kind == MIXQ_OPT_SGD) {
            const float mom = o->momentum;
            for (int64_t i = 0; i < n; i++) {
                float gi = g[i] + wd * p[i];
                float b = (first || mom == 0.0f) ? gi : mom * mb[i] + gi;
                mb[i] = b;
                p[i] -= lr * b;
            }
        } else {
            float *vb = o->v + t->off;
            const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
            const float s1 = (float)(1.0 / bc1), s2 = (float)(1.0 / sqrt(bc2));
            for (int64_t i = 0; i < n; i++) {
                float gi = g[i] + wd * p[i];
                mb[i] = b1 * mb[i] + (1.0f - b1) * gi;
                vb[i] = b2 * vb[i] + (1.0f - b2) * gi * gi;
                p[i] -= lr * (mb[i] * s1) / (sqrtf(vb[i]) * s2 + eps);
            }
        }
    }
    return MIXQ_OK;
}

void mq_adam_d(double *p, const double *g, double *m, double *v, size_t n, double lr, double b1, double b2,
               double eps, int64_t t, int tf_form) {
    const double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
    const double tf_lr = lr * sqrt(c2) / c1;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        if (tf_form) p[i] -= tf_lr * m[i] / (sqrt(v[i]) + eps);
        else p[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + eps);
    }
}

float mq_lr_at(const mixq_train_config *cfg, double pos) {
    double lr = cfg->lr;
    if (cfg->warmup_epochs > 0 && pos < cfg->warmup_epochs)
        return (float)(lr * (pos + 1e-3) / cfg->warmup_epochs);
    switch (cfg->schedule) {
    case MIXQ_SCHED_STEP: {
        int k = cfg->step_size > 0 ? (int)(pos / cfg->step_size) : 0;
        return (float)(lr * pow(cfg->gamma, k));
    }
    case MIXQ_SCHED_COSINE: {
        double span = cfg->epochs - cfg->warmup_epochs;
        double t = span > 0 ? (pos - cfg->warmup_epochs) / span : 1.0;
        if (t > 1) t = 1;
        return (float)(0.5 * lr * (1.0 + cos(3.14159265358979323846 * t)));
    }
    case MIXQ_SCHED_CONST:
    default:
        return (float)lr;
    }
}
