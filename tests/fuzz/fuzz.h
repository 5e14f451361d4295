/* Shared by the libFuzzer harnesses in tests/fuzz/ (built by `make fuzz`, see the Makefile).
 * Each harness feeds one parser the fuzzer's bytes; the parsers that read a path get them through
 * a per-process scratch file. A harness never prints: a parser that returns an error is the
 * expected outcome, and only a crash, a sanitizer report, a leak or a timeout is a finding. */
#ifndef MIXQ_FUZZ_H
#define MIXQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixq/mixq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to $TMPDIR (or /tmp)/mixq-fuzz-PID<suffix> and returns that path (static buffer),
 * or NULL if it cannot be written. */
static inline const char *fuzz_file(const char *suffix, const void *data, size_t size) {
    static char path[512];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/mixq-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    if (fclose(f) != 0 || !ok) return NULL;
    return path;
}

#endif
