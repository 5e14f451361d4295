/* Central finite-difference gradient checks shared by the kernel tests.
 * The scalar loss is L = sum_i y_i r_i for a fixed random r, so dL/dy = r is the upstream
 * gradient fed to the backward kernel under test. */
#ifndef MIXQ_TEST_GRADCHECK_H
#define MIXQ_TEST_GRADCHECK_H

/* Recompute y from the current inputs (ctx holds everything). */
typedef void (*gc_forward_fn)(void *ctx, float *y);

/* Compare analytic[0..n) (dL/dparam) with central differences over param[0..n) (perturbed in
 * place and restored). Checks at most `max_points` evenly spread elements. Returns the max error
 * relative to max|analytic| (a NaN or zero analytic gradient counts as failure: returns +inf). */
double gc_check(float *param, long n, const float *analytic, gc_forward_fn f, void *ctx,
                const float *r, long ny, float eps, int max_points);

/* The same comparison against an all-zero "gradient": must report a large error, proving that
 * gc_check cannot pass vacuously for this case. */
double gc_check_zero(float *param, long n, gc_forward_fn f, void *ctx, const float *r, long ny,
                     float eps, int max_points);

#endif
