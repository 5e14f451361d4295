/* Central finite-difference gradient checks (see gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>

static double loss(gc_forward_fn f, void *ctx, const float *r, long ny, float *y) {
    f(ctx, y);
    double s = 0;
    for (long i = 0; i < ny; i++) s += (double)y[i] * r[i];
    return s;
}

static double compare(float *param, long n, const float *analytic, gc_forward_fn f, void *ctx,
                      const float *r, long ny, float eps, int max_points) {
    float *y = malloc(sizeof(float) * (size_t)ny);
    if (!y) return INFINITY;
    double scale = 0;
    for (long i = 0; i < n; i++) {
        double a = analytic ? fabs((double)analytic[i]) : 0;
        if (!(a == a)) {
            free(y);
            return INFINITY;
        }
        if (a > scale) scale = a;
    }
    long step = n > max_points ? n / max_points : 1;
    double worst = 0, fd_scale = 0;
    for (long i = 0; i < n; i += step) {
        float old = param[i];
        param[i] = old + eps;
        double lp = loss(f, ctx, r, ny, y);
        param[i] = old - eps;
        double lm = loss(f, ctx, r, ny, y);
        param[i] = old;
        double fd = (lp - lm) / (2.0 * (double)eps);
        double a = analytic ? analytic[i] : 0.0;
        double e = fabs(fd - a);
        if (e > worst || !(e == e)) worst = e;
        if (fabs(fd) > fd_scale) fd_scale = fabs(fd);
    }
    free(y);
    double denom = scale > fd_scale ? scale : fd_scale;
    if (denom < 1e-12) return INFINITY; /* everything zero: a vacuous check fails */
    return worst / denom;
}

double gc_check(float *param, long n, const float *analytic, gc_forward_fn f, void *ctx,
                const float *r, long ny, float eps, int max_points) {
    double scale = 0;
    for (long i = 0; i < n; i++)
        if (fabs((double)analytic[i]) > scale) scale = fabs((double)analytic[i]);
    if (!(scale > 0)) return INFINITY; /* an all-zero analytic gradient never passes */
    return compare(param, n, analytic, f, ctx, r, ny, eps, max_points);
}

double gc_check_zero(float *param, long n, gc_forward_fn f, void *ctx, const float *r, long ny,
                     float eps, int max_points) {
    return compare(param, n, NULL, f, ctx, r, ny, eps, max_points);
}
