/* Training loop and evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/optim.h"

void mixq_train_config_default(mixq_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 10;
    cfg->batch = 128;
    cfg->optimizer = MIXQ_OPT_SGD;
    cfg->lr = 0.1f;
    cfg->momentum = 0.9f;
    cfg->weight_decay = 5e-4f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->adam_eps = 1e-8f;
    cfg->schedule = MIXQ_SCHED_COSINE;
    cfg->step_size = 30;
    cfg->gamma = 0.1f;
    cfg->warmup_epochs = 0;
    cfg->label_smoothing = 0.0f;
    cfg->augment = 1;
    cfg->max_steps = 0;
    cfg->seed = 1;
    cfg->teacher = NULL;
    cfg->distill_weight = 0.5f;
    cfg->distill_temperature = 1.0f;
}

static mixq_status check_config(const mixq_train_config *c) {
    if (c->epochs < 0 || c->epochs > 100000)
        return mq_err(MIXQ_ERR_ARG, "epochs %d out of range [0, 100000]", c->epochs);
    if (c->batch < 2 || c->batch > 65536)
        return mq_err(MIXQ_ERR_ARG, "batch %d out of range [2, 65536] (batch norm needs >= 2)",
                      c->batch);
    if (!(c->lr > 0 && c->lr < 100)) return mq_err(MIXQ_ERR_ARG, "learning rate %g out of range (0, 100)", (double)c->lr);
    if (!(c->momentum >= 0 && c->momentum < 1))
        return mq_err(MIXQ_ERR_ARG, "momentum %g out of range [0, 1)", (double)c->momentum);
    if (!(c->weight_decay >= 0 && c->weight_decay < 1))
        return mq_err(MIXQ_ERR_ARG, "weight decay %g out of range [0, 1)", (double)c->weight_decay);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return mq_err(MIXQ_ERR_ARG, "label smoothing %g out of range [0, 1)",
                      (double)c->label_smoothing);
    if (c->optimizer == MIXQ_OPT_ADAM &&
        !(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->adam_eps > 0))
        return mq_err(MIXQ_ERR_ARG, "Adam betas must be in [0, 1) and eps > 0");
    if (c->schedule == MIXQ_SCHED_STEP && (c->step_size < 1 || !(c->gamma > 0 && c->gamma <= 1)))
        return mq_err(MIXQ_ERR_ARG, "step schedule needs step size >= 1 and gamma in (0, 1]");
    if (c->warmup_epochs < 0 || (c->epochs > 0 && c->warmup_epochs >= c->epochs && c->warmup_epochs))
        return mq_err(MIXQ_ERR_ARG, "warm-up %d epochs must be shorter than training (%d)",
                      c->warmup_epochs, c->epochs);
    if (c->max_steps < 0) return mq_err(MIXQ_ERR_ARG, "max steps %d is negative", c->max_steps);
    if (c->teacher && !(c->distill_weight >= 0 && c->distill_weight <= 1))
        return mq_err(MIXQ_ERR_ARG, "distillation weight %g out of range [0, 1]",
                      (double)c->distill_weight);
    if (c->teacher && !(c->distill_temperature >= 0.05f && c->distill_temperature <= 100))
        return mq_err(MIXQ_ERR_ARG, "distillation temperature %g out of range [0.05, 100]",
                      (double)c->distill_temperature);
    return MIXQ_OK;
}

/* The teacher of a distillation: another model, the student's input shape and classes. */
static mixq_status check_teacher(const mixq_model *m, const mixq_model *t) {
    if (t == m) return mq_err(MIXQ_ERR_ARG, "the distillation teacher is the model being trained; "
                              "hint: load the teacher from its file as a second model");
    if (t->cfg.in_c != m->cfg.in_c || t->cfg.in_h != m->cfg.in_h || t->cfg.in_w != m->cfg.in_w ||
        t->cfg.classes != m->cfg.classes)
        return mq_err(MIXQ_ERR_SHAPE, "distillation teacher '%s' takes %dx%dx%d with %d classes "
                      "but the model '%s' being trained takes %dx%dx%d with %d classes",
                      t->arch, t->cfg.in_c, t->cfg.in_h, t->cfg.in_w, t->cfg.classes, m->arch,
                      m->cfg.in_c, m->cfg.in_h, m->cfg.in_w, m->cfg.classes);
    return MIXQ_OK;
}

static mixq_status check_data(const mixq_model *m, const mixq_dataset *d, const char *which) {
    int c, h, w, k;
    mixq_dataset_shape(d, &c, &h, &w, &k);
    if (c != m->cfg.in_c || h != m->cfg.in_h || w != m->cfg.in_w || k != m->cfg.classes)
        return mq_err(MIXQ_ERR_SHAPE, "%s data '%s' is %dx%dx%d with %d classes but model '%s' "
                      "expects %dx%dx%d with %d classes",
                      which, mixq_dataset_name(d), c, h, w, k, m->arch, m->cfg.in_c, m->cfg.in_h,
                      m->cfg.in_w, m->cfg.classes);
    if (mixq_dataset_count(d) < 1)
        return mq_err(MIXQ_ERR_ARG, "%s data '%s' is empty", which, mixq_dataset_name(d));
    return MIXQ_OK;
}

mixq_status mixq_evaluate(mixq_model *m, const mixq_dataset *d, int batch, float *accuracy,
                          float *loss) {
    if (!m || !d) return mq_err(MIXQ_ERR_ARG, "mixq_evaluate: NULL model or dataset");
    if (batch < 1) batch = 256;
    mixq_status st = check_data(m, d, "evaluation");
    if (st) return st;
    int n = mixq_dataset_count(d), c = m->cfg.in_c, K = m->cfg.classes;
    size_t img = (size_t)c * m->cfg.in_h * m->cfg.in_w;
    if (batch > n) batch = n;
    float *x = mq_malloc((size_t)batch * img, sizeof(float), "evaluation batch");
    int *idx = mq_malloc((size_t)batch, sizeof(int), "evaluation indices");
    int *labels = mq_malloc((size_t)batch, sizeof(int), "evaluation labels");
    float *probs = mq_malloc((size_t)batch * K, sizeof(float), "evaluation softmax");
    if (!x || !idx || !labels || !probs) {
        st = MIXQ_ERR_NOMEM;
        goto done;
    }
    double loss_sum = 0;
    int64_t correct = 0;
    for (int start = 0; start < n; start += batch) {
        int b = MQ_MIN(batch, n - start);
        for (int i = 0; i < b; i++) idx[i] = start + i;
        if ((st = mq_data_batch(d, &m->pp, idx, b, 0, 0, x, labels))) goto done;
        if ((st = mixq_model_forward(m, x, b, 0, NULL))) goto done;
        float l;
        int cor;
        const float *logits = m->nodes[m->n_nodes - 1].y;
        if ((st = mq_softmax_ce_forward(b, K, logits, labels, 0.0f, probs, &l, &cor))) goto done;
        loss_sum += (double)l * b;
        correct += cor;
    }
    if (accuracy) *accuracy = (float)((double)correct / n);
    if (loss) *loss = (float)(loss_sum / n);
done:
    free(x);
    free(idx);
    free(labels);
    free(probs);
    return st;
}

/* (mixq.h) A TRAIN split is carved with its own holdout: it keeps m's record when it takes in none
 * of m's held-out images, of the same training file. mixq_train then sets a record it does not
 * keep to count 0 (no image known to be held out any more). */
int mixq_train_keeps_holdout(const mixq_model *m, const mixq_dataset *train, int *seen) {
    int s = 0;
    if (m && train && m->has_holdout && train->split != MIXQ_SPLIT_TEST) {
        /* another file, or no memory to tell: not known to be held out */
        if (mixq_holdout_seen(&train->holdout, &m->holdout, &s) != MIXQ_OK) s = -1;
    }
    if (seen) *seen = s;
    return s == 0;
}

mixq_status mixq_train(mixq_model *m, const mixq_dataset *train, const mixq_dataset *val,
                       const mixq_train_config *cfg, mixq_progress_fn fn, void *user) {
    if (!m || !train || !cfg) return mq_err(MIXQ_ERR_ARG, "mixq_train: NULL argument");
    mixq_status st = check_config(cfg);
    if (st) return st;
    if ((st = check_data(m, train, "training"))) return st;
    if (val && (st = check_data(m, val, "validation"))) return st;
    mixq_model *teacher = cfg->teacher;
    if (teacher && (st = check_teacher(m, teacher))) return st;
    /* the model records the input transform it is trained with: mixq's default becomes the
     * training set's statistics as numbers */
    mixq_preprocess pp = m->pp;
    if (pp.from_data && (st = mixq_dataset_preprocess(train, &pp))) return st;
    if ((st = mixq_model_set_preprocess(m, &pp))) return st;
    /* a recorded holdout stays true only while the model trains outside it (a test split, if
     * trained on, is not of the training file: the record is about that file) */
    if (cfg->epochs > 0 && !mixq_train_keeps_holdout(m, train, NULL)) m->holdout.count = 0;
    /* the teacher's own transform; its batch is made apart only where it differs */
    mixq_preprocess tpp = teacher ? teacher->pp : pp;
    if (tpp.from_data && (st = mixq_dataset_preprocess(train, &tpp))) return st;
    int own_batch = teacher && memcmp(&tpp, &pp, sizeof pp) != 0;
    const int n = mixq_dataset_count(train);
    int B = MQ_MIN(cfg->batch, n);
    if (B < 2) return mq_err(MIXQ_ERR_ARG, "training set of %d image(s) is too small", n);
    /* Every batch has >= 2 images (batch norm); a final batch of one image is dropped. */
    int steps = n / B + (n % B >= 2 ? 1 : 0);
    size_t img = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    mq_optim opt;
    memset(&opt, 0, sizeof opt);
    float *x = mq_malloc((size_t)B * img, sizeof(float), "training batch");
    int *labels = mq_malloc((size_t)B, sizeof(int), "training labels");
    int *perm = mq_malloc((size_t)n, sizeof(int), "training permutation");
    float *xt = own_batch ? mq_malloc((size_t)B * img, sizeof(float), "teacher's batch") : x;
    if (!x || !labels || !perm || !xt) {
        st = MIXQ_ERR_NOMEM;
        goto done;
    }
    if ((st = mq_optim_init(&opt, cfg, m))) goto done;
    double t0 = mq_now();
    int64_t seen = 0, total_steps = (int64_t)steps * cfg->epochs, done_steps = 0;
    for (int epoch = 0; epoch < cfg->epochs; epoch++) {
        mq_rng rng;
        mq_rng_seed(&rng, mq_seed_mix(cfg->seed, (uint64_t)epoch, 1));
        for (int i = 0; i < n; i++) perm[i] = i;
        mq_rng_shuffle(&rng, perm, n);
        uint64_t aug_seed = mq_seed_mix(cfg->seed, (uint64_t)epoch, 2);
        double loss_sum = 0;
        int64_t correct = 0, count = 0;
        mixq_progress p;
        memset(&p, 0, sizeof p);
        p.epochs = cfg->epochs;
        p.epoch = epoch + 1;
        p.steps_per_epoch = steps;
        p.val_accuracy = -1;
        for (int s = 0; s < steps; s++) {
            int start = s * B, b = MQ_MIN(B, n - start);
            if ((st = mq_data_batch(train, &m->pp, perm + start, b, cfg->augment, aug_seed, x, labels)))
                goto done;
            float lr = mq_lr_at(cfg, epoch + (double)s / steps);
            float loss = 0;
            const float *tlogits = NULL;
            if (teacher) {
                /* the same images and augmentation (aug_seed) through the teacher's transform */
                if (own_batch &&
                    (st = mq_data_batch(train, &tpp, perm + start, b, cfg->augment, aug_seed, xt,
                                        labels)))
                    goto done;
                if ((st = mixq_model_forward(teacher, xt, b, 0, NULL))) goto done;
                tlogits = teacher->nodes[teacher->n_nodes - 1].y;
            }
            if ((st = mixq_model_forward(m, x, b, 1, NULL))) goto done;
            st = mq_model_backward_distill(m, labels, cfg->label_smoothing, tlogits,
                                           cfg->distill_weight, cfg->distill_temperature, &loss);
            if (st == MIXQ_ERR_NUMERIC || (!st && !isfinite(loss))) {
                st = mq_err(MIXQ_ERR_NUMERIC, "loss became non-finite at epoch %d step %d (lr %g); "
                            "hint: lower --lr or check the input data", epoch + 1, s + 1,
                            (double)lr);
                goto done;
            }
            if (st) goto done;
            if ((st = mq_optim_step(&opt, m, lr))) goto done;
            if (m->qh && m->qh->step) m->qh->step(m, lr, cfg->momentum);
            loss_sum += (double)loss * b;
            correct += mq_model_correct(m, labels, b);
            count += b;
            seen += b;
            done_steps++;
            double el = mq_now() - t0;
            p.step = s + 1;
            p.images_seen = seen;
            p.lr = lr;
            p.loss = (float)(loss_sum / count);
            p.accuracy = (float)((double)correct / count);
            p.elapsed_s = el;
            p.images_per_s = el > 0 ? seen / el : 0;
            int64_t left = total_steps - done_steps;
            if (cfg->max_steps > 0 && cfg->max_steps - done_steps < left)
                left = cfg->max_steps - done_steps;
            p.eta_s = done_steps ? el / done_steps * left : 0;
            int last = s + 1 == steps || (cfg->max_steps > 0 && done_steps >= cfg->max_steps);
            if (last && val) {
                float va = 0;
                if ((st = mixq_evaluate(m, val, 256, &va, NULL))) goto done;
                p.val_accuracy = va;
            }
            p.epoch_done = last;
            if (fn && fn(&p, user)) goto done;
            if (cfg->max_steps > 0 && done_steps >= cfg->max_steps) goto done;
        }
    }
done:
    mq_optim_free(&opt);
    if (xt != x) free(xt);
    free(x);
    free(labels);
    free(perm);
    return st;
}
