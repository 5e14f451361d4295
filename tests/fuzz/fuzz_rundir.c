/* A search run directory's files, read on --resume: config.json (compared with the run's own),
 * evals.jsonl (the evaluation cache: torn last line dropped, a bad line an error), state.json (the
 * last episode, cache hits, search time; the DDPG checkpoint it names has its own harness,
 * fuzz_ddpg).
 *
 * Once per process: a 100-image noise IDX set, an untrained lenet5 and a 2-episode HAQ search on
 * bismo_edge make a template run directory. Each input: its first byte picks the file (0
 * config.json, 1 evals.jsonl, 2 state.json), the rest replaces that file in a
 * fresh copy of the template, and the search resumes there. Any status is fine; a crash, a
 * sanitizer report, a leak or a hang is a finding. The committed seeds are the template's own
 * files, each behind its selector byte. */
#include <sys/stat.h>

#include "fuzz.h"

static char base[600], tmpl[700], work[700], model[700], data[700];

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* MNIST-format files prefix-{images-idx3,labels-idx1}-ubyte: n noise images, labels i % 10 */
static int write_idx(const char *prefix, int n) {
    unsigned char hi[16] = {0, 0, 8, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, 28, 0, 0, 0, 28};
    unsigned char hl[8] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)n};
    size_t px = (size_t)n * 784;
    unsigned char *img = malloc(16 + px), *lab = malloc(8 + (size_t)n);
    int rc = -1;
    char path[800];
    if (img && lab) {
        memcpy(img, hi, 16);
        memcpy(lab, hl, 8);
        for (size_t i = 0; i < px; i++) img[16 + i] = (unsigned char)((i * 2654435761u) >> 24);
        for (int i = 0; i < n; i++) lab[8 + i] = (unsigned char)(i % 10);
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", data, prefix);
        rc = write_bytes(path, img, 16 + px);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", data, prefix);
        if (!rc) rc = write_bytes(path, lab, 8 + (size_t)n);
    }
    free(img);
    free(lab);
    return rc;
}

static void config(mixq_search_config *c) {
    mixq_search_config_default(c);
    c->agent = "haq";
    c->hw = "bismo_edge";
    c->budget = "latency=0.8";
    c->episodes = 2;
    c->warmup = 1;
    c->eval_images = 20;
    c->calib_images = 16;
    c->finetune_images = 32;
    c->val_images = 40;
    c->final_epochs = 0;
}

static const char *const files[] = {"config.json", "evals.jsonl", "state.json"};

/* copy the template's files into work (an empty directory afterwards but for them) */
static int copy_template(void) {
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", work, tmpl, work);
    return system(cmd) == 0 ? 0 : -1;
}

static void setup(void) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/mixq-fuzz-rundir-%ld", t && *t ? t : "/tmp", (long)getpid());
    snprintf(tmpl, sizeof tmpl, "%s/template", base);
    snprintf(work, sizeof work, "%s/run", base);
    snprintf(model, sizeof model, "%s/lenet5.mixq", base);
    snprintf(data, sizeof data, "%s/data", base);
    if (mkdir(base, 0755) || mkdir(data, 0755) || write_idx("train", 100) || write_idx("t10k", 20)) abort();
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 3};
    mixq_model *m = NULL;
    if (mixq_model_create(&mc, &m) || mixq_model_save(m, model)) abort();
    mixq_model_free(m);
    mixq_search_config c;
    config(&c);
    mixq_search_result r;
    if (mixq_search(model, data, &c, tmpl, 0, NULL, NULL, &r)) {
        fprintf(stderr, "fuzz_rundir: the template search failed: %s\n", mixq_last_error());
        abort();
    }
    /* MIXQ_FUZZ_WRITE_SEEDS=DIR: write the template's files as seeds (selector byte + file) */
    const char *seeds = getenv("MIXQ_FUZZ_WRITE_SEEDS");
    for (int i = 0; seeds && *seeds && i < 3; i++) {
        char src[900], dst[900];
        snprintf(src, sizeof src, "%s/%s", tmpl, files[i]);
        snprintf(dst, sizeof dst, "%s/seed-%s", seeds, files[i]);
        FILE *f = fopen(src, "rb");
        unsigned char *b = malloc(1 << 16);
        size_t n = f && b ? fread(b + 1, 1, (1 << 16) - 1, f) : 0;
        if (f) fclose(f);
        if (b) {
            b[0] = (unsigned char)i;
            if (n && write_bytes(dst, b, n + 1)) abort();
        }
        free(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t size) {
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1 || copy_template()) return 0;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", work, files[d[0] % 3]);
    if (write_bytes(path, d + 1, size - 1)) return 0;
    mixq_search_config c;
    config(&c);
    mixq_search_result r;
    (void)mixq_search(model, data, &c, work, 1, NULL, NULL, &r);
    return 0;
}
