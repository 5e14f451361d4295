/* How many mixed-precision policies per minute the fast evaluation path scores.
 *   bench_policies MODEL.mixq [--data D] [--policies N] [--calib N] [--finetune F] [--val N]
 *                  [--eval N] [--seed S] [--threads T]
 * Each policy gives every conv/linear layer random weight and activation bits in 2..8. Scoring
 * one policy = re-quantize (layers whose setting did not change keep their cached state),
 * calibrate the new layers' clips on --calib training images, optionally fine-tune F epochs
 * (QAT, from the float weights each time), and measure accuracy on --eval validation images.
 * Prints policies/minute and the mean accuracy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixq/mixq.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "bench_policies: %s: %s\n", what, mixq_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_policies MODEL.mixq [--data D] [--policies N] [--calib N] "
                        "[--finetune EPOCHS] [--val N] [--eval N] [--seed S] [--threads T]\n");
        return 2;
    }
    const char *path = argv[1], *data = "fashion-mnist";
    int npol = 10, calib = 512, val = 5000, neval = 5000, threads = 0;
    double finetune = 0;
    unsigned seed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--policies")) npol = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--calib")) calib = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--finetune")) finetune = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--val")) val = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--eval")) neval = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_policies: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (threads && mixq_set_threads(threads)) return die("threads");
    mixq_model *m = NULL;
    mixq_dataset *tr = NULL, *va = NULL;
    if (mixq_model_load(path, &m)) return die("load model");
    if (mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, val, 1, &tr) ||
        mixq_dataset_load(data, MIXQ_SPLIT_VAL, val, 1, &va))
        return die("load data");
    if (neval < mixq_dataset_count(va) && mixq_dataset_truncate(va, neval)) return die("truncate");
    /* snapshot of every tensor, to restart each fine-tune from the float model */
    int nt = mixq_model_tensor_count(m);
    float **snap = calloc((size_t)nt, sizeof *snap);
    if (!snap) return die("memory");
    for (int t = 0; t < nt; t++) {
        mixq_tensor_info ti;
        mixq_model_tensor(m, t, &ti);
        snap[t] = malloc(sizeof(float) * (size_t)ti.numel);
        if (!snap[t]) return die("memory");
        memcpy(snap[t], mixq_model_tensor_data(m, ti.name), sizeof(float) * (size_t)ti.numel);
    }
    /* the quantizable layers */
    int nn = mixq_model_node_count(m), nq = 0;
    const char **names = calloc((size_t)nn, sizeof *names);
    for (int i = 0; i < nn; i++) {
        mixq_node_info ni;
        mixq_model_node(m, i, &ni);
        if (ni.op == MIXQ_OP_CONV || ni.op == MIXQ_OP_LINEAR) names[nq++] = ni.name;
    }
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.lr = 0.01f;
    tc.epochs = 1;
    tc.max_steps = (int)(finetune * ((mixq_dataset_count(tr) + tc.batch - 1) / tc.batch) + 0.5);
    if (finetune > 0 && tc.max_steps < 1) tc.max_steps = 1;
    srand(seed);
    size_t cap = 256 + (size_t)nq * 128;
    char *json = malloc(cap);
    double t0 = now(), acc_sum = 0;
    for (int k = 0; k < npol; k++) {
        size_t off = (size_t)snprintf(json, cap, "{\"mixq_policy\": 1, \"layers\": {");
        for (int j = 0; j < nq; j++)
            off += (size_t)snprintf(json + off, cap - off, "%s\"%s\": {\"w_bits\": %d, \"a_bits\": %d}",
                                    j ? ", " : "", names[j], 2 + rand() % 7, 2 + rand() % 7);
        snprintf(json + off, cap - off, "}}");
        mixq_policy *p = NULL;
        if (mixq_policy_parse(json, strlen(json), "random", &p)) return die("policy");
        if (finetune > 0)
            for (int t = 0; t < nt; t++) {
                mixq_tensor_info ti;
                mixq_model_tensor(m, t, &ti);
                memcpy(mixq_model_tensor_data(m, ti.name), snap[t], sizeof(float) * (size_t)ti.numel);
            }
        float acc;
        if (mixq_model_quantize(m, p)) return die("quantize");
        if (finetune > 0 ? mixq_model_calibrate(m, tr, calib) : mixq_model_calibrate_new(m, tr, calib))
            return die("calibrate");
        if (finetune > 0 && mixq_train(m, tr, NULL, &tc, NULL, NULL)) return die("fine-tune");
        if (mixq_evaluate(m, va, 256, &acc, NULL)) return die("evaluate");
        acc_sum += acc;
        mixq_policy_free(p);
        fprintf(stderr, "policy %d: val accuracy %.2f%% (%.1f s so far)\n", k + 1, 100.0 * acc, now() - t0);
    }
    double dt = now() - t0;
    printf("policies %d, calib_images %d, finetune_epochs %g, eval_images %d, threads %d\n", npol,
           calib, finetune, mixq_dataset_count(va), mixq_get_threads());
    printf("seconds_per_policy %.2f\npolicies_per_minute %.1f\nmean_val_accuracy %.2f%%\n",
           dt / npol, 60.0 * npol / dt, 100.0 * acc_sum / npol);
    for (int t = 0; t < nt; t++) free(snap[t]);
    free(snap);
    free(names);
    free(json);
    mixq_dataset_free(tr);
    mixq_dataset_free(va);
    mixq_model_free(m);
    return 0;
}
