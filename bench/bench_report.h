/* Shared by the bench programs: the report goes to stdout and, when set, to out_file too;
 * clock readings and the comparator for medians. */
#ifndef MIXQ_BENCH_REPORT_H
#define MIXQ_BENCH_REPORT_H

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static FILE *out_file;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void emit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (out_file) {
        va_start(ap, fmt);
        vfprintf(out_file, fmt, ap);
        va_end(ap);
    }
}

/* Seconds on clock id (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID, CLOCK_MONOTONIC). */
static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* qsort comparator of doubles, ascending. */
static int cmp_dbl(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
