/* Training-speed benchmark, mixq side: images/s of full training steps (forward, softmax
 * cross-entropy, backward, SGD momentum update) on random data of the model's input shape.
 *   bench_train MODEL [--threads T] [--batch B] [--steps S] [--repeats R] [--hw H] [--channels C]
 * Prints one line per repeat and "median_images_per_s X". Data loading is excluded (as in the
 * PyTorch twin, bench/torch_train.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixq/mixq.h"
#include "nn/model.h"
#include "nn/optim.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train MODEL [--threads T] [--batch B] [--steps S] "
                        "[--repeats R] [--hw H] [--channels C]\n");
        return 2;
    }
    const char *arch = argv[1];
    int threads = 2, batch = 128, steps = 10, repeats = 5, hw = 28, channels = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--batch")) batch = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--repeats")) repeats = v;
        else if (!strcmp(argv[i], "--hw")) hw = v;
        else if (!strcmp(argv[i], "--channels")) channels = v;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (mixq_set_threads(threads) || steps < 1 || repeats < 1 || repeats > 100 || batch < 2 ||
        channels < 1 || channels > 64 || hw < 1 || hw > 1024) {
        fprintf(stderr, "bad arguments: %s\n", mixq_last_error());
        return 2;
    }
    mixq_model_config cfg = {.arch = arch, .in_c = channels, .in_h = hw, .in_w = hw, .classes = 10,
                             .seed = 1};
    mixq_model *m = NULL;
    if (mixq_model_create(&cfg, &m)) {
        fprintf(stderr, "%s\n", mixq_last_error());
        return 1;
    }
    size_t img = (size_t)channels * hw * hw;
    float *x = malloc(sizeof(float) * img * (size_t)batch);
    int *y = malloc(sizeof(int) * (size_t)batch);
    if (!x || !y) return 1;
    unsigned s = 12345;
    for (size_t i = 0; i < img * (size_t)batch; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    for (int i = 0; i < batch; i++) y[i] = i % 10;
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    mq_optim opt;
    if (mq_optim_init(&opt, &tc, m)) return 1;
    double rates[100];
    for (int r = -1; r < repeats; r++) { /* r = -1: warm-up */
        double t0 = mq_now();
        int n = r < 0 ? 2 : steps;
        for (int k = 0; k < n; k++) {
            float loss;
            if (mixq_model_forward(m, x, batch, 1, NULL) || mixq_model_backward(m, y, 0, &loss) ||
                mq_optim_step(&opt, m, 0.01f)) {
                fprintf(stderr, "%s\n", mixq_last_error());
                return 1;
            }
        }
        double dt = mq_now() - t0;
        if (r >= 0) {
            rates[r] = (double)n * batch / dt;
            printf("repeat %d: %.1f images/s\n", r + 1, rates[r]);
        }
    }
    qsort(rates, (size_t)repeats, sizeof(double), cmp_double);
    printf("median_images_per_s %.1f\n", rates[repeats / 2]);
    mq_model_profile_print(m, stdout);
    mq_optim_free(&opt);
    mixq_model_free(m);
    free(x);
    free(y);
    return 0;
}
