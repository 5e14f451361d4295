/* How well HAWQ's sensitivity predicts damage (issue 19): the Spearman rank correlation, over a
 * model's conv/linear layers, between Omega_l(b) and the measured accuracy drop of quantizing
 * layer l alone to b bits (every other layer 8/8), calibration-only scoring.
 *   bench_hawq MODEL.mixq RUN_DIR [--bits 2,3] [--pairs all|weights|both] [--eval N] [--calib N]
 *              [--val N] [--seed S]
 * RUN_DIR is a `mixq search --agent hawq` run on MODEL: its hessian.json gives each layer's
 * T_l = Tr(H_l)/n_l, ||Q_b(W_l) - W_l||^2, ||W_l||^2 and the activation error rho_l(b). Two
 * pairings (--pairs: all, the default, or one of them), for each b:
 *   weights      Omega_w = T_l ||Q_b(W_l) - W_l||^2 (HAWQ-V2's Omega) against the drop of
 *                layer l at w = b, a = 8;
 *   both         Omega = T_l (||Q_b(W_l) - W_l||^2 + ||W_l||^2 rho_l(b)) (the agent's) against
 *                the drop of layer l at w = a = b.
 * A drop is the W8A8 policy's accuracy minus the candidate's, on the first --eval validation
 * images (the search's split: --val images carved with --seed), clips calibrated on --calib
 * training images, as a search scores. Writes a markdown report to stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "mixq/mixq.h"

#define emit printf

#define MAXL 256

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "bench_hawq: %s: %s\n", what, mixq_last_error());
    return 1;
}

/* Ranks (1-based, ties averaged). */
static void ranks(const double *v, int n, double *r) {
    for (int i = 0; i < n; i++) {
        int less = 0, same = 0;
        for (int j = 0; j < n; j++) less += v[j] < v[i], same += v[j] == v[i];
        r[i] = less + (same + 1) / 2.0;
    }
}

static double spearman(const double *a, const double *b, int n) {
    double ra[MAXL], rb[MAXL], ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    ranks(a, n, ra);
    ranks(b, n, rb);
    for (int i = 0; i < n; i++) ma += ra[i] / n, mb += rb[i] / n;
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static double arr(const cJSON *o, const char *k, int b) {
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, k), b - 1);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Accuracy (%) of the float model with layer `layer` (NULL: none) at w, a and the rest at 8/8. */
static int score(const mixq_model *fp, const char *layer, int w, int a, const mixq_dataset *train, int calib,
                 const mixq_dataset *eval, double *acc) {
    mixq_model *m = NULL;
    mixq_policy *p = NULL;
    float v = 0;
    mixq_status st = mixq_model_clone(fp, &m);
    if (!st) st = mixq_policy_create(8, 8, &p);
    if (!st && layer) st = mixq_policy_set_layer(p, layer, w, a);
    if (!st) st = mixq_model_quantize(m, p);
    if (!st) st = mixq_model_calibrate(m, train, calib);
    if (!st) st = mixq_evaluate(m, eval, 256, &v, NULL);
    *acc = 100.0 * v;
    mixq_policy_free(p);
    mixq_model_free(m);
    return st;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_hawq MODEL.mixq RUN_DIR [--bits 2,3] [--pairs all|weights|both] [--eval N] "
                        "[--calib N] [--val N] [--seed S]\n");
        return 2;
    }
    const char *path = argv[1], *dir = argv[2], *bits_arg = "2,3", *pairs = "all";
    int neval = 1000, calib = 512, val = 5000;
    unsigned long long seed = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--bits")) bits_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--pairs")) pairs = argv[i + 1];
        else if (!strcmp(argv[i], "--eval")) neval = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--calib")) calib = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--val")) val = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "bench_hawq: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const int pw = !strcmp(pairs, "all") || !strcmp(pairs, "weights"), pb = !strcmp(pairs, "all") || !strcmp(pairs, "both");
    if (!pw && !pb) {
        fprintf(stderr, "bench_hawq: --pairs all, weights or both, not %s\n", pairs);
        return 2;
    }
    int bits[8], nb = 0;
    for (const char *p = bits_arg; *p && nb < 8;) {
        bits[nb++] = atoi(p);
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
    }
    char hp[1200];
    snprintf(hp, sizeof hp, "%s/hessian.json", dir);
    FILE *f = fopen(hp, "rb");
    if (!f) {
        fprintf(stderr, "bench_hawq: cannot read %s (run `mixq search MODEL --agent hawq --out %s` first)\n", hp, dir);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        fprintf(stderr, "bench_hawq: cannot read %s\n", hp);
        return 1;
    }
    fclose(f);
    text[len] = 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *layers = j ? cJSON_GetObjectItemCaseSensitive(j, "layers") : NULL;
    const int L = cJSON_GetArraySize(layers);
    if (!cJSON_IsArray(layers) || L < 2 || L > MAXL) {
        fprintf(stderr, "bench_hawq: %s has no layers\n", hp);
        return 1;
    }
    mixq_model *fp = NULL;
    mixq_dataset *train = NULL, *eval = NULL;
    if (mixq_model_load(path, &fp)) return die(path);
    if (mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TRAIN, val, seed, &train) ||
        mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_VAL, val, seed, &eval))
        return die("fashion-mnist");
    if (neval < mixq_dataset_count(eval) && mixq_dataset_truncate(eval, neval)) return die("--eval");
    const double t0 = now();
    double base;
    if (score(fp, NULL, 8, 8, train, calib, eval, &base)) return die("W8A8");
    emit("# HAWQ: sensitivity against measured damage\n\n"
         "`%s`, traces from `%s` (%d probes, %.0f s, eps %.3g). Each row quantizes one layer alone "
         "(every other layer 8/8), calibrates the clips on %d training images and scores %d validation "
         "images; the drop is W8A8's accuracy (%.2f %%) minus the row's. `T` = Tr(H)/n; Omega_w = T "
         "||Q_b(W) - W||^2 (HAWQ-V2), Omega = T (||Q_b(W) - W||^2 + ||W||^2 rho(b)) (the agent's, with the "
         "activation proxy).\n\n",
         path, hp, (int)num(j, "probes"), num(j, "seconds"), num(j, "eps"), calib, mixq_dataset_count(eval), base);
    for (int k = 0; k < nb; k++) {
        const int b = bits[k];
        double ow[MAXL], oa[MAXL], dw[MAXL], da[MAXL];
        emit("## %d bits\n\n| layer | T | Omega_w | drop w%da8 | Omega | drop w%da%d |\n|---|---|---|---|---|---|\n", b, b,
             b, b);
        for (int l = 0; l < L; l++) {
            const cJSON *e = cJSON_GetArrayItem(layers, l);
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
            const double T = fmax(num(e, "trace_per_weight"), 0), we = arr(e, "weight_err", b);
            ow[l] = T * we;
            oa[l] = T * (we + num(e, "weight_sq") * arr(e, "act_rel_err", b));
            double acc_w = NAN, acc_a = NAN;
            if (!cJSON_IsString(nm) || (pw && score(fp, nm->valuestring, b, 8, train, calib, eval, &acc_w)) ||
                (pb && score(fp, nm->valuestring, b, b, train, calib, eval, &acc_a)))
                return die(cJSON_IsString(nm) ? nm->valuestring : "layer name");
            dw[l] = base - acc_w, da[l] = base - acc_a;
            char sw[32] = "-", sa[32] = "-"; /* "-": that pairing not scored (--pairs) */
            if (pw) snprintf(sw, sizeof sw, "%.2f", dw[l]);
            if (pb) snprintf(sa, sizeof sa, "%.2f", da[l]);
            emit("| %s | %.3g | %.3g | %s | %.3g | %s |\n", nm->valuestring, num(e, "trace_per_weight"), ow[l], sw, oa[l],
                 sa);
            fflush(stdout);
        }
        emit("\nSpearman over %d layers at %d bits:", L, b);
        if (pw) emit(" Omega_w vs the weight-only drop %.3f%s", spearman(ow, dw, L), pb ? ";" : ".");
        if (pb) emit(" Omega vs the w%da%d drop %.3f.", b, b, spearman(oa, da, L));
        emit("\n\n");
    }
    emit("(%d candidates scored in %.0f s.)\n", 1 + (pw + pb) * nb * L, now() - t0);
    cJSON_Delete(j);
    mixq_dataset_free(train);
    mixq_dataset_free(eval);
    mixq_model_free(fp);
    return 0;
}
