/* Training loop and evaluation. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
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
    if (c->resume && !c->checkpoint)
        return mq_err(MIXQ_ERR_ARG, "resume asked without a checkpoint file to resume from");
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- checkpoints */
/* A training checkpoint (mixq_train_config.checkpoint), native endian:
 *   "MQTRAIN\0" (8 bytes), u32 version (1), u32 endian tag 0x01020304, ckpt_id (the run: sizes,
 *   settings, a hash of the starting weights), i32 epochs done, i64 steps done, i64 optimizer
 *   steps; params [n_params], buffers [n_buffers] (batch-norm statistics), the optimizer's m
 *   [n_params] (SGD momentum; Adam first moments) and, for Adam, v [n_params]; u32 the hooks'
 *   kind (0 float, 1 a policy's); u64 the length of the hooks' block and the block
 *   (mq_qhooks.ckpt_write); nothing after.
 * Everything else a step reads is a function of these and of (seed, epoch): each epoch's
 * shuffle and augmentation are seeded by its number, so a resumed run repeats the rest of an
 * uninterrupted one bit for bit. */
#define CKPT_VERSION 2u
#define CKPT_ENDIAN 0x01020304u
static const char ckpt_magic[8] = "MQTRAIN";

typedef struct ckpt_id {
    uint64_t n_params, n_buffers, start_hash, seed;
    int32_t n_tensors, n_images, batch, epochs, optimizer, schedule, step_size, warmup, augment,
        teacher, quant;
    float lr, momentum, wd, beta1, beta2, eps, gamma, smoothing, dweight, dtemp;
    /* version 2: the training images and labels in their order, and the teacher (0: none) */
    uint64_t data_hash, teacher_hash;
} ckpt_id;
/* a version-1 file's identity: the fields before data_hash */
#define CKPT_ID_V1 offsetof(ckpt_id, data_hash)

void mq_train_epoch_draw(uint64_t seed, int epoch, int *perm, int n, uint64_t *aug) {
    mq_rng rng;
    mq_rng_seed(&rng, mq_seed_mix(seed, (uint64_t)epoch, 1));
    for (int i = 0; i < n; i++) perm[i] = i;
    mq_rng_shuffle(&rng, perm, n);
    *aug = mq_seed_mix(seed, (uint64_t)epoch, 2);
}

/* h extended by m's state: weights, statistics, and its quantization (policy, clips, scales);
 * who: what m is, for the error. */
static mixq_status state_hash(const mixq_model *m, const char *who, uint64_t *h) {
    *h = mq_fnv1a(m->params, sizeof(float) * m->n_params, *h);
    *h = mq_fnv1a(m->buffers, sizeof(float) * m->n_buffers, *h);
    if (!m->qh) return MIXQ_OK;
    if (!m->qh->ckpt_write)
        return mq_err(MIXQ_ERR_ARG, "%s's quantization (an EBS search's mixtures) cannot be recorded in a "
                      "checkpoint; hint: train without a checkpoint", who);
    char *q = NULL;
    size_t qn = 0;
    FILE *ms = open_memstream(&q, &qn);
    if (!ms) return mq_err(MIXQ_ERR_NOMEM, "out of memory hashing the quantization state");
    mixq_status st = m->qh->ckpt_write(m, ms, "the quantization state");
    if (fclose(ms) != 0 && !st) st = mq_err(MIXQ_ERR_NOMEM, "out of memory hashing the quantization state");
    if (!st) *h = mq_fnv1a(q, qn, *h);
    free(q);
    return st;
}

static mixq_status ckpt_identity(const mixq_model *m, const mixq_dataset *train, const mixq_train_config *c,
                                 ckpt_id *id) {
    memset(id, 0, sizeof *id); /* padding too: the struct is written and compared whole */
    id->n_params = m->n_params;
    id->n_buffers = m->n_buffers;
    uint64_t h = MQ_FNV_BASIS; /* the weights and quantization the run starts from */
    mixq_status st = state_hash(m, "the model", &h);
    if (st) return st;
    id->start_hash = h;
    const size_t img = (size_t)train->c * train->h * train->w;
    h = mq_fnv1a(train->images, img * (size_t)train->n, MQ_FNV_BASIS);
    id->data_hash = mq_fnv1a(train->labels, (size_t)train->n, h);
    if (c->teacher) { /* its weights and quantization, and the input transform it is given */
        const mixq_preprocess *pp = &c->teacher->pp;
        h = MQ_FNV_BASIS;
        if ((st = state_hash(c->teacher, "the teacher", &h))) return st;
        const int nch = pp->channels < 0 ? 0 : MQ_MIN(pp->channels, MIXQ_PP_MAX_CH);
        h = mq_fnv1a(pp->mean, sizeof(float) * (size_t)nch, h);
        h = mq_fnv1a(pp->std, sizeof(float) * (size_t)nch, h);
        h = mq_fnv1a(&pp->scale, sizeof pp->scale, h);
        const int32_t flags[3] = {pp->from_data, pp->bgr, pp->channels};
        id->teacher_hash = mq_fnv1a(flags, sizeof flags, h) | 1; /* never 0, "no teacher" */
    }
    id->seed = c->seed;
    id->n_tensors = m->n_tensors;
    id->n_images = mixq_dataset_count(train);
    id->batch = c->batch;
    id->epochs = c->epochs;
    id->optimizer = (int32_t)c->optimizer;
    id->schedule = (int32_t)c->schedule;
    id->step_size = c->step_size;
    id->warmup = c->warmup_epochs;
    id->augment = c->augment != 0;
    id->teacher = c->teacher != NULL;
    id->quant = m->qh != NULL;
    id->lr = c->lr;
    id->momentum = c->momentum;
    id->wd = c->weight_decay;
    id->beta1 = c->beta1;
    id->beta2 = c->beta2;
    id->eps = c->adam_eps;
    id->gamma = c->gamma;
    id->smoothing = c->label_smoothing;
    id->dweight = c->teacher ? c->distill_weight : 0;
    id->dtemp = c->teacher ? c->distill_temperature : 0;
    return MIXQ_OK;
}

/* The first way file (f) and run (r) differ, as an error. */
static mixq_status ckpt_differs(const char *path, const char *what, double f, double r) {
    char a[40], b[40];
    snprintf(a, sizeof a, "%g", f);
    snprintf(b, sizeof b, "%g", r);
    if (!strcmp(a, b)) { /* close floats: as many digits as tell them apart */
        snprintf(a, sizeof a, "%.9g", f);
        snprintf(b, sizeof b, "%.9g", r);
    }
    return mq_err(MIXQ_ERR_ARG, "checkpoint '%s' is of another run: its %s is %s, this run's %s; hint: resume "
                  "with the settings it was started with, or start anew without resuming", path, what, a, b);
}

static mixq_status ckpt_mismatch(const char *path, const ckpt_id *f, const ckpt_id *r) {
#define MM(field, what) \
    if (f->field != r->field) return ckpt_differs(path, what, (double)f->field, (double)r->field)
    MM(n_params, "parameter count");
    MM(n_buffers, "buffer count");
    MM(n_tensors, "tensor count");
    MM(quant, "quantized flag (1: a quantized model)");
    MM(n_images, "training image count");
    MM(batch, "batch size");
    MM(epochs, "epoch count");
    MM(optimizer, "optimizer (0 SGD, 1 Adam)");
    MM(schedule, "schedule (0 cosine, 1 step, 2 constant)");
    MM(step_size, "step size");
    MM(warmup, "warm-up epoch count");
    MM(augment, "augmentation flag");
    MM(teacher, "distillation flag (1: a teacher)");
    MM(lr, "learning rate");
    MM(momentum, "momentum");
    MM(wd, "weight decay");
    MM(beta1, "Adam beta1");
    MM(beta2, "Adam beta2");
    MM(eps, "Adam eps");
    MM(gamma, "step gamma");
    MM(smoothing, "label smoothing");
    MM(dweight, "distillation weight");
    MM(dtemp, "distillation temperature");
#undef MM
    if (f->seed != r->seed)
        return mq_err(MIXQ_ERR_ARG, "checkpoint '%s' is of another run: its seed is %llu, this run's %llu; hint: "
                      "resume with the settings it was started with, or start anew without resuming", path,
                      (unsigned long long)f->seed, (unsigned long long)r->seed);
    const struct { uint64_t f, r; const char *what, *hint; } hashes[] = {
        {f->start_hash, r->start_hash, "was started from other weights or clips",
         "resume from the model, policy and calibration (--calib-images) the checkpointed run started from"},
        {f->data_hash, r->data_hash, "was trained on other images or labels",
         "resume with the dataset and split (--val, --split-seed) the checkpointed run trained on"},
        {f->teacher_hash, r->teacher_hash, "was distilled from another teacher (its weights, quantization or "
         "input transform)", "resume with the --teacher (and transform) the checkpointed run started with"},
    };
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
        if (hashes[i].f != hashes[i].r)
            return mq_err(MIXQ_ERR_ARG, "checkpoint '%s' %s than this run's (hash %016llx, this run %016llx); "
                          "hint: %s", path, hashes[i].what, (unsigned long long)hashes[i].f,
                          (unsigned long long)hashes[i].r, hashes[i].hint);
    return memcmp(f, r, sizeof *f) ? mq_err(MIXQ_ERR_ARG, "checkpoint '%s' is of another run", path) : MIXQ_OK;
}

static mixq_status ckpt_write(const char *path, const mixq_model *m, const mq_optim *o, const ckpt_id *id,
                              int32_t epochs_done, int64_t steps_done) {
    FILE *f;
    char *tmp;
    mixq_status st = mq_fopen_tmp(path, &f, &tmp);
    if (st) return st;
    const uint32_t ver = CKPT_VERSION, endian = CKPT_ENDIAN, kind = m->qh != NULL;
#define W(ptr, bytes) \
    if (!st) st = mq_fwrite((ptr), (bytes), f, tmp)
    W(ckpt_magic, sizeof ckpt_magic);
    W(&ver, sizeof ver);
    W(&endian, sizeof endian);
    W(id, sizeof *id);
    W(&epochs_done, sizeof epochs_done);
    W(&steps_done, sizeof steps_done);
    W(&o->t, sizeof o->t);
    W(m->params, sizeof(float) * m->n_params);
    W(m->buffers, sizeof(float) * m->n_buffers);
    W(o->m, sizeof(float) * m->n_params);
    if (o->v) W(o->v, sizeof(float) * m->n_params);
    W(&kind, sizeof kind);
    /* the hooks' block, its length patched in after it is written */
    const long at = ftell(f);
    uint64_t blen = 0;
    W(&blen, sizeof blen);
    if (!st && kind) st = m->qh->ckpt_write(m, f, tmp);
    if (!st) {
        const long end = ftell(f);
        blen = (uint64_t)(end - at) - sizeof blen;
        if (at < 0 || end < 0 || fseek(f, at, SEEK_SET) != 0 || fwrite(&blen, sizeof blen, 1, f) != 1 ||
            fseek(f, end, SEEK_SET) != 0)
            st = mq_err(MIXQ_ERR_IO, "cannot write checkpoint '%s': seek failed", tmp);
    }
#undef W
    return mq_fclose_tmp(f, tmp, path, st);
}

/* The header of a checkpoint's len bytes at b: its run (fid), epochs done, steps done, optimizer
 * steps; the offset after it in *off. A version-1 file (before its identity held the images and
 * the teacher) leaves fid's data_hash and teacher_hash as they are: the caller's, on trust. */
#define CKPT_HEAD (sizeof ckpt_magic + 8 + sizeof(ckpt_id) + 20)
static mixq_status ckpt_head(const unsigned char *b, size_t len, const char *path, ckpt_id *fid, int32_t *ed,
                             int64_t *sd, int64_t *ot, size_t *off) {
    uint32_t ver = 0, endian = 0;
    if (len < sizeof ckpt_magic || memcmp(b, ckpt_magic, sizeof ckpt_magic) != 0)
        return mq_err(MIXQ_ERR_FORMAT, "'%s' is not a mixq training checkpoint (bad magic)", path);
    if (len >= 16) {
        memcpy(&ver, b + 8, 4);
        memcpy(&endian, b + 12, 4);
    }
    const size_t idn = ver == 1 ? CKPT_ID_V1 : sizeof *fid;
    if (len < sizeof ckpt_magic + 8 + idn + 20)
        return mq_err(MIXQ_ERR_FORMAT, "'%s': training checkpoint is truncated (%zu bytes)", path, len);
    if (endian != CKPT_ENDIAN || ver < 1 || ver > CKPT_VERSION)
        return mq_err(MIXQ_ERR_FORMAT, "'%s': training checkpoint version %u%s, this build reads versions 1 to %u",
                      path, ver, endian != CKPT_ENDIAN ? " of another byte order" : "", CKPT_VERSION);
    size_t o = 16;
    memcpy(fid, b + o, idn);
    o += idn;
    memcpy(ed, b + o, 4);
    memcpy(sd, b + o + 4, 8);
    memcpy(ot, b + o + 12, 8);
    *off = o + 20;
    if (*ed < 1 || *ed > fid->epochs || *sd < 0 || *ot < 0 || *ot > *sd)
        return mq_err(MIXQ_ERR_FORMAT, "'%s': corrupt training checkpoint (%d epochs of %d done, %lld steps, "
                      "%lld optimizer steps)", path, (int)*ed, (int)fid->epochs, (long long)*sd, (long long)*ot);
    return MIXQ_OK;
}

static mixq_status ckpt_missing(const char *path) {
    return mq_err(MIXQ_ERR_IO, "checkpoint '%s' does not exist; hint: a run writes it after its first epoch: "
                  "start without resuming", path);
}

mixq_status mixq_train_checkpoint_info(const char *path, int *epochs_done, int *epochs) {
    if (!path || !epochs_done || !epochs) return mq_err(MIXQ_ERR_ARG, "mixq_train_checkpoint_info: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? ckpt_missing(path)
                               : mq_err(MIXQ_ERR_IO, "cannot open '%s' for reading: %s", path, strerror(errno));
    unsigned char b[CKPT_HEAD];
    const size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    ckpt_id fid;
    memset(&fid, 0, sizeof fid);
    int32_t ed = 0;
    int64_t sd = 0, ot = 0;
    size_t off = 0;
    mixq_status st = ckpt_head(b, n, path, &fid, &ed, &sd, &ot, &off);
    if (st) return st;
    *epochs_done = ed;
    *epochs = fid.epochs;
    return MIXQ_OK;
}

/* Reads the checkpoint at path into m and o when it is of this run (id), all or nothing. */
static mixq_status ckpt_read(const char *path, mixq_model *m, mq_optim *o, const ckpt_id *id,
                             int32_t *epochs_done, int64_t *steps_done) {
    char *buf = NULL;
    size_t len = 0;
    int missing = 0;
    const size_t np = sizeof(float) * m->n_params, nb = sizeof(float) * m->n_buffers;
    const size_t state = np * (o->v ? 3 : 2) + nb;
    mixq_status st = mq_read_file(path, state + ((size_t)1 << 30), "checkpoint", &buf, &len, &missing);
    if (st) {
        return missing ? ckpt_missing(path) : st;
    }
    const unsigned char *b = (const unsigned char *)buf;
    uint32_t kind;
    ckpt_id fid = *id; /* a version-1 file's identity lacks the last fields: this run's, on trust */
    int32_t ed = 0;
    int64_t sd = 0, ot = 0;
    uint64_t blen;
    size_t off = 0;
    if ((st = ckpt_head(b, len, path, &fid, &ed, &sd, &ot, &off))) {
        if (len >= CKPT_HEAD || memcmp(b, ckpt_magic, len < sizeof ckpt_magic ? len : sizeof ckpt_magic)) goto done;
        goto trunc;
    }
    if ((st = ckpt_mismatch(path, &fid, id))) goto done;
    if (len - off < state + 4 + 8) goto trunc;
    memcpy(&kind, b + off + state, 4);
    memcpy(&blen, b + off + state + 4, 8);
    const size_t hooks_at = off + state + 12;
    if (kind != (uint32_t)(m->qh != NULL)) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': corrupt training checkpoint (hooks kind %u)", path, kind);
        goto done;
    }
    if (blen > len - hooks_at) goto trunc;
    if (blen != len - hooks_at) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': %zu unexpected bytes after the training checkpoint", path,
                    (size_t)(len - hooks_at - blen));
        goto done;
    }
    if (kind && !m->qh->ckpt_read) {
        st = mq_err(MIXQ_ERR_ARG, "this model's quantization cannot be checkpointed");
        goto done;
    }
    /* check everything before changing anything */
    if (kind && (st = m->qh->ckpt_read(m, b + hooks_at, (size_t)blen, path, 0))) goto done;
    for (size_t i = 0; i < state / sizeof(float); i++) { /* weights, statistics and moments */
        float x;
        memcpy(&x, b + off + 4 * i, 4);
        if (!isfinite(x)) {
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': value %zu of the training checkpoint's state is %g", path, i,
                        (double)x);
            goto done;
        }
    }
    memcpy(m->params, b + off, np);
    memcpy(m->buffers, b + off + np, nb);
    memcpy(o->m, b + off + np + nb, np);
    if (o->v) memcpy(o->v, b + off + 2 * np + nb, np);
    o->t = ot;
    m->params_version++;
    m->have_forward = 0;
    if (kind && (st = m->qh->ckpt_read(m, b + hooks_at, (size_t)blen, path, 1))) goto done;
    *epochs_done = ed;
    *steps_done = sd;
    goto done;
trunc:
    st = mq_err(MIXQ_ERR_FORMAT, "'%s': training checkpoint is truncated (%zu bytes); hint: checkpoints are "
                "written whole (a temporary file renamed), so this one was cut or copied in part since: resume "
                "from a whole copy, or start anew without resuming", path, len);
done:
    free(buf);
    return st;
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

/* MIXQ_TRAIN_TRACE=1: at every epoch's end, on stderr, per trainable tensor its
 * norm, how far the epoch moved it (|dw| / |w|) and the cosine between this epoch's move and
 * the last one's (near -1: back and forth). A diagnostic: it reads the weights, changes nothing.
 * snap holds the weights at the epoch's start, prev the last epoch's move (2 n_params floats). */
static void trace_epoch(const mixq_model *m, int epoch, float *snap, float *prev) {
    fprintf(stderr, "trace epoch %d: tensor |w| |dw|/|w| cos(dw, last dw)\n", epoch);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const mq_tensor *t = &m->tensors[ti];
        if (!t->trainable) continue;
        const float *w = m->params + t->off;
        double ww = 0, dd = 0, pp = 0, dp = 0;
        for (int64_t i = 0; i < t->numel; i++) {
            const double d = (double)w[i] - snap[t->off + i], q = prev[t->off + i];
            ww += (double)w[i] * w[i];
            dd += d * d;
            pp += q * q;
            dp += d * q;
            prev[t->off + i] = (float)d;
            snap[t->off + i] = w[i];
        }
        fprintf(stderr, "  %-24s %10.4g %10.3g %7.3f\n", t->name, sqrt(ww), ww > 0 ? sqrt(dd / ww) : 0.0,
                dd > 0 && pp > 0 ? dp / sqrt(dd * pp) : 0.0);
    }
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
    float *snap = NULL, *prev = NULL; /* MIXQ_TRAIN_TRACE */
    float *x = mq_malloc((size_t)B * img, sizeof(float), "training batch");
    int *labels = mq_malloc((size_t)B, sizeof(int), "training labels");
    int *perm = mq_malloc((size_t)n, sizeof(int), "training permutation");
    float *xt = own_batch ? mq_malloc((size_t)B * img, sizeof(float), "teacher's batch") : x;
    if (!x || !labels || !perm || !xt) {
        st = MIXQ_ERR_NOMEM;
        goto done;
    }
    if ((st = mq_optim_init(&opt, cfg, m))) goto done;
    ckpt_id id;
    memset(&id, 0, sizeof id);
    int32_t first_epoch = 0;
    int64_t done_steps = 0;
    if (cfg->checkpoint) {
        if (m->qh && !m->qh->ckpt_write) {
            st = mq_err(MIXQ_ERR_ARG, "checkpoint '%s': this model's quantization (an EBS search's "
                        "mixtures) cannot be checkpointed; hint: train without a checkpoint", cfg->checkpoint);
            goto done;
        }
        if ((st = ckpt_identity(m, train, cfg, &id))) goto done;
        if (cfg->resume && (st = ckpt_read(cfg->checkpoint, m, &opt, &id, &first_epoch, &done_steps))) goto done;
    }
    const char *te = getenv("MIXQ_TRAIN_TRACE");
    if (te && *te && strcmp(te, "0")) {
        snap = mq_malloc(m->n_params, sizeof(float), "trace snapshot");
        prev = mq_calloc(m->n_params, sizeof(float), "trace snapshot");
        if (!snap || !prev) {
            st = MIXQ_ERR_NOMEM;
            goto done;
        }
        memcpy(snap, m->params, sizeof(float) * m->n_params);
    }
    double t0 = mq_now();
    /* seen and run_steps: this call's (the rate and ETA), done_steps: since the run began */
    int64_t seen = 0, total_steps = (int64_t)steps * cfg->epochs, run_steps = 0;
    if (cfg->max_steps > 0 && done_steps >= cfg->max_steps) goto done; /* a finished run's checkpoint */
    for (int epoch = first_epoch; epoch < cfg->epochs; epoch++) {
        uint64_t aug_seed;
        mq_train_epoch_draw(cfg->seed, epoch, perm, n, &aug_seed);
        double loss_sum = 0, ce_sum = 0;
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
            float loss = 0, ce = 0;
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
                                           cfg->distill_weight, cfg->distill_temperature, &loss, &ce);
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
            ce_sum += (double)ce * b;
            correct += mq_model_correct(m, labels, b);
            count += b;
            seen += b;
            done_steps++;
            run_steps++;
            double el = mq_now() - t0;
            p.step = s + 1;
            p.images_seen = seen;
            p.lr = lr;
            p.loss = (float)(loss_sum / count);
            p.ce = (float)(ce_sum / count);
            p.accuracy = (float)((double)correct / count);
            p.elapsed_s = el;
            p.images_per_s = el > 0 ? seen / el : 0;
            int64_t left = total_steps - done_steps;
            if (cfg->max_steps > 0 && cfg->max_steps - done_steps < left)
                left = cfg->max_steps - done_steps;
            p.eta_s = el / (double)run_steps * (double)left;
            int last = s + 1 == steps || (cfg->max_steps > 0 && done_steps >= cfg->max_steps);
            if (last && val) {
                float va = 0;
                if ((st = mixq_evaluate(m, val, 256, &va, NULL))) goto done;
                p.val_accuracy = va;
            }
            /* at an epoch's end, before the callback (which may stop the run there) */
            if (s + 1 == steps && cfg->checkpoint &&
                (st = ckpt_write(cfg->checkpoint, m, &opt, &id, epoch + 1, done_steps)))
                goto done;
            p.epoch_done = last;
            if (snap && s + 1 == steps) trace_epoch(m, epoch + 1, snap, prev);
            if (fn && fn(&p, user)) goto done;
            if (cfg->max_steps > 0 && done_steps >= cfg->max_steps) goto done;
        }
    }
done:
    free(snap);
    free(prev);
    mq_optim_free(&opt);
    if (xt != x) free(xt);
    free(x);
    free(labels);
    free(perm);
    return st;
}
