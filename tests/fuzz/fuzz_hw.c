/* Hardware target JSON (every back-end's fields). Relative table paths resolve in a directory
 * that does not exist. Seeds: the presets in hw/. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mixq_hw *hw = NULL;
    if (mixq_hw_parse((const char *)data, size, "fuzz", "/nonexistent-mixq-fuzz", &hw) == MIXQ_OK) {
        if (!hw || !mixq_hw_name(hw)) abort();
        mixq_hw_free(hw);
    }
    return 0;
}
