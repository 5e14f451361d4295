/* Mixed-precision policy JSON. A policy that parses must write text that parses again to the
 * same text. Seeds: the policies in examples/policies/. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mixq_policy *p = NULL;
    if (mixq_policy_parse((const char *)data, size, "fuzz", &p) != MIXQ_OK) return 0;
    const char *t = mixq_policy_text(p);
    if (t) {
        mixq_policy *q = NULL;
        if (mixq_policy_parse(t, strlen(t), "fuzz (written back)", &q) != MIXQ_OK) abort();
        const char *u = mixq_policy_text(q);
        if (u && strcmp(t, u) != 0) abort();
        mixq_policy_free(q);
    }
    mixq_policy_free(p);
    return 0;
}
