/* DDPG agent checkpoints (the HAQ agent's agent-E.ckpt). The agent is created once with small
 * dims (state 4, hidden 8, batch 4, replay 16), which the seed was saved with; after a load that
 * succeeds it acts once and takes one update step on the loaded weights and replay buffer. */
#include "fuzz.h"
#include "search/ddpg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mq_ddpg *d;
    if (!d) {
        mq_ddpg_config c;
        mq_ddpg_config_default(&c, 4, 2);
        c.hidden = 8;
        c.batch = 4;
        c.rmsize = 16;
        c.warmup = 0;
        if (mq_ddpg_create(&c, &d)) abort();
    }
    const char *p = fuzz_file(".ckpt", data, size);
    if (!p) return 0;
    if (mq_ddpg_load(d, p) == MIXQ_OK) {
        const float s[4] = {0.1f, 0.2f, 0.3f, 0.4f};
        float a = mq_ddpg_act(d, s, 5, 1);
        (void)a;
        mq_ddpg_update(d, NULL);
    }
    unlink(p);
    return 0;
}
