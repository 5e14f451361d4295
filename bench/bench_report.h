/* Shared by the bench programs: the report goes to stdout and, when set, to out_file too. */
#ifndef MIXQ_BENCH_REPORT_H
#define MIXQ_BENCH_REPORT_H

#include <stdarg.h>
#include <stdio.h>

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

#endif
