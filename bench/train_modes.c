/* The fine-tune's reported loss, taken apart: for MODEL (a fine-tuned .mixq, quantized or not)
 * the first S batches of one epoch exactly as `mixq quantize --finetune-epochs` / `mixq train`
 * draw them (the epoch's shuffle and augmentation from --seed, the model's own transform), each
 * through the model twice:
 *   - eval mode: batch norm with its running statistics (what `mixq eval` and deployment use);
 *   - train mode: batch norm with the batch's statistics (what the training loss is measured on).
 * Per mode: the cross-entropy, with --teacher the KL part and the mix the log reports
 * ((1 - w) CE + w T^2 KL, w 0.5 and T 1 as `mixq quantize` defaults), and the accuracy.
 * Then per batch-norm layer, averaged over the batches: how far the batch's statistics are from
 * the running ones, |mean_B - mean_run| / sqrt(var_run) and var_B / var_run.
 *   train_modes MODEL DATA [--teacher T] [--seed N] [--epoch E] [--batches S] [--batch B]
 *               [--val N] [--threads T] [--step-test E2]
 * The model file is not written; train mode moves the loaded copy's running statistics, so the
 * eval-mode pass runs first over all batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/data.h"
#include "mixq/mixq.h"
#include "nn/kernels.h"
#include "nn/model.h"

typedef struct {
    double ce, kl, mix;
    long correct, n;
} tally;

static int run(mixq_model *m, mixq_model *t, const mixq_dataset *tr, const int *perm, int S, int B,
               uint64_t aug_seed, int training, tally *o, double *bn_dm, double *bn_vr) {
    const size_t img = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    const int K = m->cfg.classes;
    float *x = malloc(sizeof(float) * img * (size_t)B);
    int *lab = malloc(sizeof(int) * (size_t)B);
    float *z = malloc(sizeof(float) * (size_t)B * K), *tz = malloc(sizeof(float) * (size_t)B * K);
    if (!x || !lab || !z || !tz) return 1;
    memset(o, 0, sizeof *o);
    for (int s = 0; s < S; s++) {
        if (mq_data_batch(tr, &m->pp, perm + (size_t)s * B, B, 1, aug_seed, x, lab)) return 1;
        if (t && mixq_model_forward(t, x, B, 0, tz)) return 1;
        if (mixq_model_forward(m, x, B, training, z)) return 1;
        float ce = 0, kl = 0;
        int hits = 0;
        if (mq_softmax_ce_forward(B, K, z, lab, 0.0f, NULL, &ce, &hits)) return 1;
        if (t && mq_distill(B, K, z, tz, 1.0f, 0.5f, &kl, NULL)) return 1;
        o->ce += ce * B;
        o->kl += kl * B;
        o->mix += (t ? 0.5 * ce + 0.5 * kl : ce) * B;
        o->correct += hits;
        o->n += B;
        if (!training || !bn_dm) continue;
        /* batch statistics (saved by the forward: mean, 1/sqrt(var_B + eps)) against the
         * running ones as they stood before this batch moved them */
        for (int i = 0, j = 0; i < m->n_nodes; i++) {
            const mq_node *n = &m->nodes[i];
            if (n->op != MIXQ_OP_BN) continue;
            const float *rm = mq_tensor_ptr(m, n->t_rm), *rv = mq_tensor_ptr(m, n->t_rv);
            double dm = 0, vr = 0;
            for (int c = 0; c < n->c; c++) {
                const double mu = n->save[c], is = n->save[n->c + c];
                const double vb = 1.0 / (is * is) - n->bn_eps;
                /* undo this batch's update of the running statistics */
                const double mo = n->bn_momentum;
                const double rm0 = (rm[c] - mo * mu) / (1 - mo);
                const double rv0 = (rv[c] - mo * vb * B * n->h * n->w / (B * n->h * n->w - 1.0)) / (1 - mo);
                dm += fabs(mu - rm0) / sqrt(rv0 + n->bn_eps);
                vr += (vb + n->bn_eps) / (rv0 + n->bn_eps);
            }
            bn_dm[j] += dm / n->c / S;
            bn_vr[j] += vr / n->c / S;
            j++;
        }
    }
    free(x), free(lab), free(z), free(tz);
    return 0;
}

/* The summed gradient of the fine-tune's loss over the first S batches of the draw (perm, aug)
 * in train mode into g[n_params] (divided by S); the mean loss in *loss. */
static int grad_pass(mixq_model *m, mixq_model *t, const mixq_dataset *tr, const int *perm, int S, int B,
                     uint64_t aug, double *g, double *loss) {
    const size_t img = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    float *x = malloc(sizeof(float) * img * (size_t)B);
    int *lab = malloc(sizeof(int) * (size_t)B);
    int bad = !x || !lab;
    memset(g, 0, sizeof(double) * m->n_params);
    *loss = 0;
    for (int s = 0; s < S && !bad; s++) {
        const float *tl = NULL;
        float l = 0, ce = 0;
        bad = mq_data_batch(tr, &m->pp, perm + (size_t)s * B, B, 1, aug, x, lab) ||
              (t && mixq_model_forward(t, x, B, 0, NULL));
        if (!bad && t) tl = t->nodes[t->n_nodes - 1].y;
        bad = bad || mixq_model_forward(m, x, B, 1, NULL) ||
              mq_model_backward_distill(m, lab, 0.0f, tl, t ? 0.5f : 0.0f, 1.0f, &l, &ce);
        if (bad) break;
        for (size_t i = 0; i < m->n_params; i++) g[i] += m->grads[i] / S;
        *loss += (double)l / S;
    }
    free(x), free(lab);
    return bad;
}

static void show(const char *what, const tally *o, int teacher) {
    printf("%-6s loss %.4f  ce %.4f", what, o->mix / o->n, o->ce / o->n);
    if (teacher) printf("  kl %.4f", o->kl / o->n);
    printf("  acc %.2f%%  (%ld images)\n", 100.0 * o->correct / o->n, o->n);
}

/* --step-test E2: is the gradient the fine-tune follows a descent direction for the loss on new
 * views? gA: the gradient over the S batches of the chosen epoch's draw; gB and L_B(0) over the
 * S batches of epoch E2's draw (other crops, other order). For plain steps w - eta gA the loss on
 * E2's batches, measured, against the first-order prediction L_B(0) - eta gA.gB. A smooth loss
 * follows the prediction for small eta; a surrogate gradient (the straight-through estimator)
 * need not. Train mode throughout; the model is restored after each step. */
static int step_test(mixq_model *m, mixq_model *t, const mixq_dataset *tr, const int *permA, int S, int B,
                     uint64_t augA, uint64_t seed, int e2) {
    const size_t np = m->n_params, n = (size_t)mixq_dataset_count(tr);
    double *gA = malloc(sizeof(double) * np), *gB = malloc(sizeof(double) * np);
    float *w0 = malloc(sizeof(float) * np);
    int *permB = malloc(sizeof(int) * n), bad = !gA || !gB || !w0 || !permB;
    uint64_t augB = 0;
    double lA = 0, lB0 = 0, dot = 0, na = 0, nb = 0;
    if (!bad) mq_train_epoch_draw(seed, e2, permB, (int)n, &augB);
    bad = bad || grad_pass(m, t, tr, permA, S, B, augA, gA, &lA) || grad_pass(m, t, tr, permB, S, B, augB, gB, &lB0);
    if (!bad) {
        for (size_t i = 0; i < np; i++) dot += gA[i] * gB[i], na += gA[i] * gA[i], nb += gB[i] * gB[i];
        printf("step test: gradient over epoch-draw A (loss %.4f) and epoch %d's draw B (loss %.4f): |gA| %.4g "
               "|gB| %.4g cos %.3f\n", lA, e2 + 1, lB0, sqrt(na), sqrt(nb), dot / sqrt(na * nb));
        memcpy(w0, m->params, sizeof(float) * np);
    }
    const double etas[] = {0.01, 0.03, 0.1, 0.3};
    for (size_t k = 0; k < sizeof etas / sizeof etas[0] && !bad; k++) {
        for (size_t i = 0; i < np; i++) m->params[i] = (float)(w0[i] - etas[k] * gA[i]);
        m->params_version++;
        double lB = 0;
        bad = grad_pass(m, t, tr, permB, S, B, augB, gB, &lB);
        if (!bad)
            printf("  eta %-5g L_B %.5f  change %+.5f  first-order prediction %+.5f\n", etas[k], lB, lB - lB0,
                   -etas[k] * dot);
        memcpy(m->params, w0, sizeof(float) * np); /* restored whether or not the pass failed */
        m->params_version++;
    }
    free(gA), free(gB), free(w0), free(permB);
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: train_modes MODEL DATA [--teacher T] [--seed N] [--epoch E] "
                        "[--batches S] [--batch B] [--val N] [--threads T] [--step-test E2]\n");
        return 2;
    }
    const char *mp = argv[1], *data = argv[2], *tp = NULL;
    unsigned long long seed = 1;
    int epoch = 0, S = 40, B = 128, val = 5000, threads = 0, step_epoch = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--teacher")) tp = v;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--epoch")) epoch = atoi(v) - 1;
        else if (!strcmp(a, "--batches")) S = atoi(v);
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--val")) val = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--step-test")) step_epoch = atoi(v);
        else {
            fprintf(stderr, "train_modes: unknown option %s\n", a);
            return 2;
        }
    }
    if (threads > 0 && mixq_set_threads(threads)) goto fail;
    mixq_model *m = NULL, *t = NULL;
    mixq_dataset *tr = NULL;
    if (mixq_model_load(mp, &m) || (tp && mixq_model_load(tp, &t))) goto fail;
    if (mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, val, mixq_model_split_seed(m, 0, 0, seed), &tr)) goto fail;
    const int n = mixq_dataset_count(tr);
    if (S < 1 || B < 2 || (long)S * B > n || epoch < 0) {
        fprintf(stderr, "train_modes: %d batches of %d from %d images, epoch %d\n", S, B, n, epoch + 1);
        return 2;
    }
    int *perm = malloc(sizeof(int) * (size_t)n);
    if (!perm) return 1;
    uint64_t aug;
    mq_train_epoch_draw(seed, epoch, perm, n, &aug);
    int nbn = 0;
    for (int i = 0; i < m->n_nodes; i++) nbn += m->nodes[i].op == MIXQ_OP_BN;
    double *dm = calloc((size_t)nbn + 1, sizeof(double)), *vr = calloc((size_t)nbn + 1, sizeof(double));
    tally ev, trn;
    printf("%s: epoch %d's first %d batches of %d (seed %llu)%s%s\n", mp, epoch + 1, S, B, seed,
           tp ? ", teacher " : "", tp ? tp : "");
    if (run(m, t, tr, perm, S, B, aug, 0, &ev, NULL, NULL) ||
        run(m, t, tr, perm, S, B, aug, 1, &trn, dm, vr))
        goto fail;
    show("eval", &ev, t != NULL);
    show("train", &trn, t != NULL);
    printf("batch norm: batch statistics against the running ones (mean over channels and batches)\n");
    for (int i = 0, j = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].op != MIXQ_OP_BN) continue;
        printf("  %-16s |dmean|/sd_run %.3f  var_B/var_run %.3f\n", m->nodes[i].name, dm[j], vr[j]);
        j++;
    }
    if (step_epoch > 0 && step_test(m, t, tr, perm, S, B, aug, seed, step_epoch - 1)) goto fail;
    return 0;
fail:
    fprintf(stderr, "train_modes: %s\n", mixq_last_error());
    return 1;
}
