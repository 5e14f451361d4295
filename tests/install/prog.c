/* Built against an installed mixq through pkg-config (tests/install/check.sh): loads the model
 * file given, prints its architecture and parameter count, and runs one forward pass. */
#include <mixq/mixq.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: prog MODEL.mixq\n");
        return 2;
    }
    mixq_model *m = NULL;
    if (mixq_model_load(argv[1], &m) != MIXQ_OK) {
        fprintf(stderr, "prog: %s\n", mixq_last_error());
        return 1;
    }
    int c, h, w, classes;
    mixq_model_input_shape(m, &c, &h, &w, &classes);
    float *x = calloc((size_t)c * h * w, sizeof *x), *logits = calloc((size_t)classes, sizeof *logits);
    int rc = 1;
    if (x && logits && mixq_model_forward(m, x, 1, 0, logits) == MIXQ_OK) {
        printf("mixq %s: loaded %s (%s, %lld parameters, input %dx%dx%d), logit[0] of a zero "
               "image %.4f\n", mixq_version(), argv[1], mixq_model_arch(m),
               (long long)mixq_model_param_count(m), c, h, w, logits[0]);
        rc = 0;
    } else {
        fprintf(stderr, "prog: forward failed: %s\n", mixq_last_error());
    }
    free(x);
    free(logits);
    mixq_model_free(m);
    return rc;
}
