/* ONNX import (protobuf through protobuf-c, then the graph and initializers). Seeds: the test
 * fixtures' small models. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fuzz_file(".onnx", data, size);
    if (!p) return 0;
    mixq_model *m = NULL;
    if (mixq_model_import_onnx(p, &m) == MIXQ_OK) {
        if (!m) abort();
        mixq_model_free(m);
    }
    unlink(p);
    return 0;
}
