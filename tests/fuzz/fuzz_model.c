/* Model files (.mixq). The last four bytes of a model file are the crc32 of everything before
 * them; the harness writes the right one there, so mutations get past the checksum and reach the
 * header, the graph description, the tensors and the sections (policy, qstate, holdout). Seeds:
 * a graph model (dw_tiny.onnx saved as .mixq), a quantized one, and the graph model with a
 * held-out split recorded (dw_tiny_holdout.mixq: mixq_model_set_holdout {1, 5000, 60000}, saved). */
#include <zlib.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > ((size_t)1 << 24)) return 0;
    uint8_t *c = malloc(size ? size : 1);
    if (!c) return 0;
    memcpy(c, data, size);
    if (size >= 8) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), c, (uInt)(size - 4));
        memcpy(c + size - 4, &crc, 4); /* little-endian, as the writer stores it */
    }
    const char *p = fuzz_file(".mixq", c, size);
    free(c);
    if (!p) return 0;
    mixq_model *m = NULL;
    if (mixq_model_load(p, &m) == MIXQ_OK) {
        if (!m) abort();
        int64_t params = mixq_model_param_count(m);
        if (params < 0) abort();
        mixq_model_free(m);
    }
    unlink(p);
    return 0;
}
