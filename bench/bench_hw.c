/* Layer-cost queries per second, per back-end, as a search sees them (public API only):
 *   cold    every (layer, w, a) of a network asked once on a fresh target (BitFusion runs its
 *           full tiling x loop-order search for each; 8x8 bit pairs per layer)
 *   cached  the same queries again (the memo cache; what a search's inner loop pays)
 *   threads the cold pass spread over N threads (the cache is shared and locked)
 * usage: bench_hw [ARCH [C,H,W [repeats]]]   (default resnet20 1,28,28 20)
 * Absolute rates on a shared machine are noise; the ratios between rows are what to read. */
#include <omp.h>
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

/* Every (layer, w, a) of the grid, `rounds` times. */
static int grid(mixq_hw *hw, const mixq_hw_layer *L, int n, int lo, int hi, int rounds, double *sink) {
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++)
            for (int w = lo; w <= hi; w++)
                for (int a = lo; a <= hi; a++) {
                    mixq_cost c;
                    if (mixq_hw_cost(hw, &L[i], w, a, &c)) return 1;
                    *sink += c.cycles;
                }
    return 0;
}

int main(int argc, char **argv) {
    const char *arch = argc > 1 ? argv[1] : "resnet20";
    mixq_model_config mc = {.arch = arch, .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 1};
    if (argc > 2 && sscanf(argv[2], "%d,%d,%d", &mc.in_c, &mc.in_h, &mc.in_w) != 3) {
        fprintf(stderr, "bench_hw: C,H,W expected, got '%s'\n", argv[2]);
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 20;
    if (repeats < 1) repeats = 1;
    mixq_model *m = NULL;
    if (mixq_model_create(&mc, &m)) {
        fprintf(stderr, "bench_hw: %s\n", mixq_last_error());
        return 1;
    }
    int n = mixq_model_hw_layer_count(m);
    mixq_hw_layer *L = calloc((size_t)n, sizeof *L);
    if (!L) return 1;
    for (int i = 0; i < n; i++)
        if (mixq_model_hw_layer(m, i, &L[i], NULL)) return 1;
    int threads = omp_get_max_threads();
    printf("%s (%d layers), %d (w, a) pairs per layer, %d threads available\n", arch, n, 64, threads);
    printf("%-18s %14s %14s %14s\n", "target", "cold q/s", "cached q/s", "cold q/s (MT)");
    for (const char *const *p = mixq_hw_presets(); *p; p++) {
        mixq_hw *hw = NULL;
        if (mixq_hw_load(*p, &hw)) return 1;
        int lo, hi;
        mixq_hw_bits(hw, &lo, &hi);
        if (hi > 8) hi = 8;
        int pairs = (hi - lo + 1) * (hi - lo + 1);
        double sink = 0, t0 = now();
        if (grid(hw, L, n, lo, hi, 1, &sink)) return 1;
        double cold = (double)n * pairs / (now() - t0);
        t0 = now();
        if (grid(hw, L, n, lo, hi, repeats * 50, &sink)) return 1;
        double cached = (double)repeats * 50 * n * pairs / (now() - t0);
        mixq_hw_free(hw);
        /* cold again on a fresh target, spread over threads */
        if (mixq_hw_load(*p, &hw)) return 1;
        int fails = 0;
        t0 = now();
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : fails)
        for (int q = 0; q < n * pairs; q++) {
            mixq_cost c;
            int i = q / pairs, w = lo + q % pairs / (hi - lo + 1), a = lo + q % (hi - lo + 1);
            fails += mixq_hw_cost(hw, &L[i], w, a, &c) != MIXQ_OK;
        }
        double mt = (double)n * pairs / (now() - t0);
        mixq_hw_free(hw);
        if (fails) return 1;
        printf("%-18s %14.4g %14.4g %14.4g%s\n", *p, cold, cached, mt, sink < 0 ? "!" : "");
    }
    free(L);
    mixq_model_free(m);
    return 0;
}
