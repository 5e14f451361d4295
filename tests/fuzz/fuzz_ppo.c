/* PPO agent checkpoints (ReLeQ's agent-E.ckpt). The agent is created once with small dims
 * (state 4, 3 actions, episodes of up to 3 steps, hidden 8, heads 8 and 4), which the seed was
 * saved with (tests/fuzz/corpus/ppo/seed.ckpt, with 8 extra bytes); after a load that succeeds it
 * runs one episode and its update on the loaded weights and Adam state. */
#include "fuzz.h"
#include "search/ppo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mq_ppo *p;
    if (!p) {
        mq_ppo_config c;
        mq_ppo_config_default(&c, 4, 3, 3);
        c.hidden = 8, c.head = 8, c.vhead = 4, c.seed = 1;
        if (mq_ppo_create(&c, &p)) abort();
    }
    const char *path = fuzz_file(".ckpt", data, size);
    if (!path) return 0;
    unsigned char extra[8];
    if (mq_ppo_load(p, path, extra, sizeof extra) == MIXQ_OK) {
        const double x[4] = {0.1, 0.2, 0.3, 0.4};
        mq_ppo_begin(p);
        for (int t = 0; t < 3; t++) mq_ppo_step(p, x, 0, NULL);
        (void)mq_ppo_finish(p, 0.5);
    }
    unlink(path);
    return 0;
}
