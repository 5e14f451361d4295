/* Whole-network inference throughput (images/s) of mixq's engines on resnet20 (1x28x28) and
 * vgg11 (3x32x32), random-initialised weights, random N(0,1) input (speed does not depend on
 * the values; accuracy is not the point). Per model:
 *   fp32          mixq_model_forward of the float model (the training engine: oneDNN fp32
 *                 convs, mixq's own pools/adds/BN);
 *   int8 W8A8     the REFERENCE: uniform W8A8 policy (per-channel), calibrated, compiled with
 *                 mixq_runtime_create, kernel forced to int8;
 *   mixed auto    the mixed policy (--policy, else a built-in W1A1/W2A2/W4A4 mix with the first
 *                 and last layers at 8 bits), kernel AUTO with the built-in rule (bit-serial
 *                 where w x a <= 2, on the vpopcnt tier <= 3 from K = 576 and <= 4 from
 *                 K = 1152; else int8: rt_rule_kernel);
 *   mixed table   the same with AUTO and the measured table of --cpu-table (only if given);
 *   mixed bs      the same with every integer layer forced to bit-serial (context);
 *   PyTorch fp32  the external peer, read from --peer FILE (lines "torch ARCH BATCH THREADS
 *                 IMAGES_PER_S", written by bench/torch_infer.py; absent: no row).
 * Calibration: 64 images of fashion-mnist's test split for resnet20 (a tiny synthetic IDX set if
 * it is not installed), of a tiny synthetic CIFAR-format set for vgg11 (written to a temp dir).
 *
 * Timing: per (batch, threads) cell every configuration gets 2 warm-up forwards, then R timed
 * runs (R = --runs, default 5) taken round-robin across the configurations (so drift on the
 * shared machine hits all alike), each run repeating the forward until >= --min-run seconds
 * (default 0.1); images/s of the median run. 1 thread: process CPU time (all 1-thread cells run
 * before any 2-thread one, so no idle OpenMP worker spins then); 2 threads: wall time (CPU time
 * would count spinning), so those cells feel whatever else runs on the machine.
 *
 * usage: bench_network [--models resnet20,vgg11] [--policy [ARCH=]FILE]... [--cpu-table
 *                      [ARCH=]FILE]... [--peer FILE] [--batches 1,64] [--threads 1,2]
 *                      [--runs R] [--min-run S] [--quick] [--out FILE]
 * The markdown report goes to stdout and, with --out, to FILE. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mixq/mixq.h"
#include "bench_report.h"

/* ---------------------------------------------------------------- models and policies */
typedef struct arch_info {
    const char *arch;
    int c, h, w;
    const char *mixed; /* built-in mixed policy */
} arch_info;

static const arch_info archs[] = {
    {"resnet20", 1, 28, 28,
     "{\"mixq_policy\": 1, \"comment\": \"bench default: layer1 W4A4, layer2 W2A2, layer3 W1A1, "
     "first and last layers 8 bits\", \"default\": {\"w_bits\": 2, \"a_bits\": 2}, \"rules\": ["
     "{\"match\": \"layer1.*\", \"w_bits\": 4, \"a_bits\": 4}, "
     "{\"match\": \"layer3.*\", \"w_bits\": 1, \"a_bits\": 1}], \"layers\": {"
     "\"conv1\": {\"w_bits\": 8, \"a_bits\": 8}, \"fc\": {\"w_bits\": 8, \"a_bits\": 8}}}"},
    {"vgg11", 3, 32, 32,
     "{\"mixq_policy\": 1, \"comment\": \"bench default: 128/256-ch W4A4, 256/512-ch W2A2, last "
     "three convs W1A1, first and last layers 8 bits\", \"layers\": {"
     "\"features.0\": {\"w_bits\": 8, \"a_bits\": 8}, "
     "\"features.4\": {\"w_bits\": 4, \"a_bits\": 4}, "
     "\"features.8\": {\"w_bits\": 4, \"a_bits\": 4}, "
     "\"features.11\": {\"w_bits\": 2, \"a_bits\": 2}, "
     "\"features.15\": {\"w_bits\": 2, \"a_bits\": 2}, "
     "\"features.18\": {\"w_bits\": 1, \"a_bits\": 1}, "
     "\"features.22\": {\"w_bits\": 1, \"a_bits\": 1}, "
     "\"features.25\": {\"w_bits\": 1, \"a_bits\": 1}, "
     "\"classifier\": {\"w_bits\": 8, \"a_bits\": 8}}}"},
};
#define NARCH ((int)(sizeof archs / sizeof archs[0]))

static const char w8a8[] = "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 8, \"a_bits\": 8, "
                           "\"granularity\": \"channel\"}}";

/* "ARCH=VALUE" entries (or a bare VALUE for every arch) */
typedef struct kv {
    const char *arch, *value;
} kv;

static const char *lookup(const kv *v, int n, const char *arch) {
    const char *any = NULL;
    for (int i = 0; i < n; i++) {
        if (v[i].arch && !strcmp(v[i].arch, arch)) return v[i].value;
        if (!v[i].arch) any = v[i].value;
    }
    return any;
}

static int parse_kv(char *s, kv *out) {
    char *eq = strchr(s, '=');
    out->arch = NULL;
    out->value = s;
    if (eq) {
        *eq = 0;
        out->arch = s;
        out->value = eq + 1;
    }
    return 0;
}

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        const size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---------------------------------------------------------------- calibration data */
static char tmpdir[256];

static int write_file(const char *dir, const char *name, const void *data, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%.450s/%.100s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    const int bad = fwrite(data, 1, n, f) != n;
    return fclose(f) != 0 || bad;
}

static int make_tmpdir(void) {
    if (tmpdir[0]) return 0;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/bench_network.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        tmpdir[0] = 0;
        return 1;
    }
    return 0;
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* A tiny dataset in dir: IDX (c == 1, h x w) or CIFAR-10 binary batches (c == 3, 32 x 32),
 * N pseudo-random images with 10 labels. */
static int tiny_dataset(const char *dir, int c, int h, int w) {
    enum { N = 64 };
    uint32_t seed = 12345;
    if (c == 1) {
        const size_t P = (size_t)h * w;
        unsigned char *img = malloc(16 + N * P), lab[8 + N];
        if (!img) return 1;
        const unsigned char hi[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, (unsigned char)h,
                                      0, 0, 0, (unsigned char)w};
        const unsigned char hl[8] = {0, 0, 8, 1, 0, 0, 0, N};
        memcpy(img, hi, 16);
        memcpy(lab, hl, 8);
        for (int i = 0; i < N; i++) lab[8 + i] = (unsigned char)(i % 10);
        for (size_t k = 0; k < N * P; k++) img[16 + k] = (unsigned char)lcg(&seed);
        int bad = write_file(dir, "train-images-idx3-ubyte", img, 16 + N * P) ||
                  write_file(dir, "train-labels-idx1-ubyte", lab, 8 + N) ||
                  write_file(dir, "t10k-images-idx3-ubyte", img, 16 + N * P) ||
                  write_file(dir, "t10k-labels-idx1-ubyte", lab, 8 + N);
        free(img);
        return bad;
    }
    if (c != 3 || h != 32 || w != 32) return 1;
    unsigned char *rec = malloc((size_t)N * 3073);
    if (!rec) return 1;
    for (int i = 0; i < N; i++) {
        rec[(size_t)i * 3073] = (unsigned char)(i % 10);
        for (int k = 1; k < 3073; k++) rec[(size_t)i * 3073 + k] = (unsigned char)lcg(&seed);
    }
    int bad = write_file(dir, "test_batch.bin", rec, (size_t)N * 3073);
    for (int b = 1; b <= 5 && !bad; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        bad = write_file(dir, name, rec + (size_t)(b - 1) * 3073 * 8, (size_t)8 * 3073);
    }
    free(rec);
    return bad;
}

static mixq_dataset *calib_data(const arch_info *a, const char **what) {
    mixq_dataset *d = NULL;
    if (a->c == 1 && a->h == 28 && a->w == 28 &&
        mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TEST, 0, 1, &d) == MIXQ_OK) {
        *what = "fashion-mnist test images";
        return d;
    }
    if (make_tmpdir()) return NULL;
    char dir[512];
    snprintf(dir, sizeof dir, "%.256s/%.64s", tmpdir, a->arch);
    if (mkdir(dir, 0700) && access(dir, F_OK)) {
        perror(dir);
        return NULL;
    }
    if (tiny_dataset(dir, a->c, a->h, a->w)) {
        fprintf(stderr, "bench_network: cannot write a tiny dataset in %s\n", dir);
        return NULL;
    }
    if (mixq_dataset_load(dir, MIXQ_SPLIT_TEST, 0, 1, &d)) {
        fprintf(stderr, "bench_network: %s\n", mixq_last_error());
        return NULL;
    }
    *what = a->c == 1 ? "synthetic IDX images" : "synthetic CIFAR-format images";
    return d;
}

static void rm_tmpdir(void) {
    if (!tmpdir[0]) return;
    static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                        "test_batch.bin", "data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
    for (int a = 0; a < NARCH; a++) {
        char dir[512], path[600];
        snprintf(dir, sizeof dir, "%.256s/%.64s", tmpdir, archs[a].arch);
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            snprintf(path, sizeof path, "%.450s/%.100s", dir, files[f]);
            unlink(path);
        }
        rmdir(dir);
    }
    rmdir(tmpdir);
}

/* ---------------------------------------------------------------- configurations */
enum { CFG_FP32, CFG_INT8, CFG_RULE, CFG_TABLE, CFG_BS, CFG_TORCH, NCFG };
static const char *const cfg_names[NCFG] = {
    "fp32 (mixq engine)", "int8 W8A8 (runtime, int8 kernel)", "mixed, auto (built-in rule)",
    "mixed, auto (measured table)", "mixed, all bit-serial", "PyTorch fp32"};

typedef struct net {
    const arch_info *a;
    mixq_model *fp, *i8, *mix;
    mixq_runtime *rt[NCFG]; /* INT8, RULE, TABLE, BS */
    char kernels[NCFG][160]; /* per runtime: what its layers run */
} net;

static void net_free(net *n) {
    mixq_model_free(n->fp);
    mixq_model_free(n->i8);
    mixq_model_free(n->mix);
    for (int c = 0; c < NCFG; c++) mixq_runtime_free(n->rt[c]);
    memset(n, 0, sizeof *n);
}

static int fail(const char *what) {
    fprintf(stderr, "bench_network: %s: %s\n", what, mixq_last_error());
    return 1;
}

static int quantized(const arch_info *a, const char *policy_json, size_t len, const char *origin,
                     const mixq_dataset *d, mixq_model **out) {
    mixq_model_config mc = {.arch = a->arch, .in_c = a->c, .in_h = a->h, .in_w = a->w,
                            .classes = 10, .seed = 1};
    mixq_policy *p = NULL;
    if (mixq_model_create(&mc, out)) return fail(a->arch);
    if (mixq_policy_parse(policy_json, len, origin, &p)) return fail(origin);
    const int bad = mixq_model_quantize(*out, p) || mixq_model_calibrate(*out, d, 64);
    mixq_policy_free(p);
    return bad ? fail(origin) : 0;
}

/* "12 int8 (45% MACs), 7 bit-serial (55%), 1 fp32" */
static void describe(const mixq_runtime *rt, char *buf, size_t n) {
    int cnt[MIXQ_KERNEL_COUNT] = {0};
    double macs[MIXQ_KERNEL_COUNT] = {0}, total = 0;
    for (int i = 0; i < mixq_runtime_layer_count(rt); i++) {
        mixq_runtime_layer_info li;
        if (mixq_runtime_layer(rt, i, &li)) continue;
        cnt[li.kernel]++;
        macs[li.kernel] += (double)li.macs;
        total += (double)li.macs;
    }
    buf[0] = 0;
    for (int k = MIXQ_KERNEL_BITSERIAL; k < MIXQ_KERNEL_COUNT; k++) {
        if (!cnt[k]) continue;
        const size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%d %s (%.0f%% of MACs)", l ? ", " : "", cnt[k],
                 mixq_kernel_name((mixq_kernel)k), total > 0 ? 100 * macs[k] / total : 0);
    }
}

static int net_build(net *n, const arch_info *a, const char *policy_path, const char *table,
                     const char **calib_what) {
    memset(n, 0, sizeof *n);
    n->a = a;
    mixq_dataset *d = calib_data(a, calib_what);
    if (!d) return 1;
    mixq_model_config mc = {.arch = a->arch, .in_c = a->c, .in_h = a->h, .in_w = a->w,
                            .classes = 10, .seed = 1};
    if (mixq_model_create(&mc, &n->fp)) return fail(a->arch);
    if (quantized(a, w8a8, strlen(w8a8), "W8A8 policy", d, &n->i8)) goto bad;
    char *text = NULL;
    size_t len = 0;
    if (policy_path) {
        text = read_text(policy_path, &len);
        if (!text) {
            perror(policy_path);
            goto bad;
        }
    }
    const int qbad = policy_path ? quantized(a, text, len, policy_path, d, &n->mix)
                                 : quantized(a, a->mixed, strlen(a->mixed), "built-in mixed policy",
                                             d, &n->mix);
    free(text);
    if (qbad) goto bad;
    static const struct {
        int cfg;
        mixq_kernel k;
    } rts[] = {{CFG_INT8, MIXQ_KERNEL_INT8}, {CFG_RULE, MIXQ_KERNEL_AUTO},
               {CFG_TABLE, MIXQ_KERNEL_AUTO}, {CFG_BS, MIXQ_KERNEL_BITSERIAL}};
    for (size_t i = 0; i < sizeof rts / sizeof rts[0]; i++) {
        if (rts[i].cfg == CFG_TABLE && !table) continue;
        mixq_runtime_config rc;
        mixq_runtime_config_default(&rc);
        rc.kernel = rts[i].k;
        if (rts[i].cfg == CFG_TABLE) rc.cpu_table = table;
        if (mixq_runtime_create(rts[i].cfg == CFG_INT8 ? n->i8 : n->mix, &rc, &n->rt[rts[i].cfg])) {
            fail(cfg_names[rts[i].cfg]);
            goto bad;
        }
        describe(n->rt[rts[i].cfg], n->kernels[rts[i].cfg], sizeof n->kernels[0]);
    }
    mixq_dataset_free(d);
    return 0;
bad:
    mixq_dataset_free(d);
    return 1;
}

static int forward(net *n, int cfg, const float *x, int batch, float *logits) {
    if (cfg == CFG_FP32) return mixq_model_forward(n->fp, x, batch, 0, logits) != MIXQ_OK;
    return mixq_runtime_forward(n->rt[cfg], x, batch, logits) != MIXQ_OK;
}

/* ---------------------------------------------------------------- peer file */
typedef struct peer {
    char arch[32];
    int batch, threads;
    double ips;
} peer;

static int read_peers(const char *path, peer *p, int max) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    int n = 0;
    char line[256];
    while (fgets(line, sizeof line, f) && n < max) {
        char tag[32];
        if (sscanf(line, "%31s %31s %d %d %lf", tag, p[n].arch, &p[n].batch, &p[n].threads,
                   &p[n].ips) == 5 &&
            !strcmp(tag, "torch"))
            n++;
    }
    fclose(f);
    return n;
}

static double peer_ips(const peer *p, int n, const char *arch, int batch, int threads) {
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].arch, arch) && p[i].batch == batch && p[i].threads == threads)
            return p[i].ips;
    return 0;
}

/* ---------------------------------------------------------------- main */
static void usage(FILE *f) {
    fprintf(f, "usage: bench_network [--models resnet20,vgg11] [--policy [ARCH=]FILE]... "
               "[--cpu-table [ARCH=]FILE]...\n"
               "                     [--peer FILE] [--batches 1,64] [--threads 1,2] [--runs R] "
               "[--min-run S] [--quick] [--out FILE]\n");
}

static int parse_list(const char *s, int *v, int max) {
    int n = 0;
    for (const char *p = s; p && *p && n < max;) {
        v[n] = atoi(p);
        if (v[n] < 1) return -1;
        n++;
        p = strchr(p, ',');
        if (p) p++;
    }
    return n;
}

static int has_word(const char *list, const char *w) {
    const size_t n = strlen(w);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, w, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

enum { MAXKV = 8, MAXB = 4, MAXT = 4, MAXR = 15 };

int main(int argc, char **argv) {
    const char *models = "resnet20,vgg11", *out_path = NULL, *peer_path = NULL;
    kv pol[MAXKV], tab[MAXKV];
    int npol = 0, ntab = 0, quick = 0, runs = 5;
    double min_run = 0.1;
    int batches[MAXB] = {1, 64}, nb = 2, threads[MAXT] = {1, 2}, nt = 2;
    for (int i = 1; i < argc; i++) {
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *o = argv[i];
        if (!strcmp(o, "--quick")) quick = 1;
        else if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            usage(stderr);
            return 2;
        } else if (!strcmp(o, "--models")) models = v, i++;
        else if (!strcmp(o, "--out")) out_path = v, i++;
        else if (!strcmp(o, "--peer")) peer_path = v, i++;
        else if (!strcmp(o, "--policy") && npol < MAXKV) parse_kv(v, &pol[npol++]), i++;
        else if (!strcmp(o, "--cpu-table") && ntab < MAXKV) parse_kv(v, &tab[ntab++]), i++;
        else if (!strcmp(o, "--runs")) runs = atoi(v), i++;
        else if (!strcmp(o, "--min-run")) min_run = atof(v), i++;
        else if (!strcmp(o, "--batches")) {
            if ((nb = parse_list(v, batches, MAXB)) < 1) {
                usage(stderr);
                return 2;
            }
            i++;
        } else if (!strcmp(o, "--threads")) {
            if ((nt = parse_list(v, threads, MAXT)) < 1) {
                usage(stderr);
                return 2;
            }
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (quick) runs = 3, min_run = 0.02;
    if (runs < 1 || runs > MAXR || !(min_run >= 0)) {
        fprintf(stderr, "bench_network: --runs 1..%d and --min-run >= 0 expected\n", MAXR);
        return 2;
    }
    /* 1-thread cells first (see the file comment) */
    for (int i = 1; i < nt; i++)
        for (int j = i; j > 0 && threads[j - 1] > threads[j]; j--) {
            const int t = threads[j];
            threads[j] = threads[j - 1];
            threads[j - 1] = t;
        }
    int maxt = 1, maxb = 1;
    for (int i = 0; i < nt; i++) maxt = threads[i] > maxt ? threads[i] : maxt;
    for (int i = 0; i < nb; i++) maxb = batches[i] > maxb ? batches[i] : maxb;
    peer peers[256];
    int npeer = 0;
    if (peer_path && (npeer = read_peers(peer_path, peers, 256)) < 0) return 1;
    if (out_path && !(out_file = fopen(out_path, "w"))) {
        perror(out_path);
        return 1;
    }
    /* runtimes size their per-thread scratch at creation: create them at the most threads */
    if (mixq_set_threads(maxt)) return fail("threads");

    char cpu[128] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                const char *p = strchr(line, ':');
                if (p) snprintf(cpu, sizeof cpu, "%s", p + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    double load = -1;
    f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    emit("## Whole-network inference, images/s\n\n");
    emit("- CPU: %s, %ld online CPUs; load average %.2f at start\n", cpu,
         sysconf(_SC_NPROCESSORS_ONLN), load);
    emit("- random-initialised models, random N(0,1) input; bit-serial and int8 kernels: %s, %s\n",
         mixq_kernel_available(MIXQ_KERNEL_BITSERIAL) ? "available" : "unavailable",
         mixq_kernel_available(MIXQ_KERNEL_INT8) ? "available" : "unavailable (no VNNI)");
    emit("- timing: median of %d runs, each repeating the forward for >= %.2f s, round-robin over "
         "the configurations; 1 thread: process CPU time, more threads: wall time%s\n",
         runs, min_run, quick ? " (--quick)" : "");
    emit("- ratios: images/s over the int8 W8A8 runtime's in the same cell (> 1: faster)\n");
    if (maxt > 1 && load > (double)sysconf(_SC_NPROCESSORS_ONLN) - 1)
        emit("- NOTE: load average %.2f on %ld CPUs: other jobs hold the cores, so the %d-thread "
             "cells (wall time) mostly measure waiting for a time slice, for every engine alike\n",
             load, sysconf(_SC_NPROCESSORS_ONLN), maxt);
    if (peer_path) emit("- PyTorch fp32 rows: bench/torch_infer.py (same architectures, eval mode, "
                        "inference_mode; separate process, same timing rule)\n");

    int status = 0;
    static net nets[NARCH];
    static double ips[NARCH][NCFG][MAXB * MAXT];
    const char *calib[NARCH], *policy[NARCH], *table[NARCH];
    float *x[NARCH] = {0};
    int ok[NARCH] = {0};
    float *logits = malloc(sizeof(float) * 10 * (size_t)maxb);
    if (!logits) return 1;
    for (int ai = 0; ai < NARCH; ai++) {
        const arch_info *a = &archs[ai];
        if (!has_word(models, a->arch)) continue;
        policy[ai] = lookup(pol, npol, a->arch);
        table[ai] = lookup(tab, ntab, a->arch);
        calib[ai] = "?";
        fprintf(stderr, "bench_network: %s: building models and runtimes\n", a->arch);
        if (net_build(&nets[ai], a, policy[ai], table[ai], &calib[ai])) {
            net_free(&nets[ai]);
            status = 1;
            continue;
        }
        const size_t img = (size_t)a->c * a->h * a->w, len = img * (size_t)maxb;
        x[ai] = malloc(sizeof(float) * len);
        if (!x[ai]) return 1;
        uint64_t s = 0x9e3779b97f4a7c15ull; /* N(0,1) by Box-Muller on a 64-bit LCG */
        for (size_t i = 0; i < len; i += 2) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            const double u1 = ((double)(s >> 11) + 1) / 9007199254740993.0;
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            const double u2 = (double)(s >> 11) / 9007199254740992.0;
            const double r = sqrt(-2 * log(u1));
            x[ai][i] = (float)(r * cos(6.283185307179586 * u2));
            if (i + 1 < len) x[ai][i + 1] = (float)(r * sin(6.283185307179586 * u2));
        }
        ok[ai] = 1;
    }
    /* threads outermost: every 1-thread cell before any multi-thread one */
    for (int ti = 0; ti < nt; ti++) {
        if (mixq_set_threads(threads[ti])) return fail("threads");
        const clockid_t clk = threads[ti] == 1 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
        for (int ai = 0; ai < NARCH; ai++) {
            if (!ok[ai]) continue;
            net *n = &nets[ai];
            for (int bi = 0; bi < nb; bi++) {
                const int B = batches[bi], cell = ti * nb + bi;
                fprintf(stderr, "bench_network: %s batch %d, %d thread(s)\n", archs[ai].arch, B,
                        threads[ti]);
                int reps[NCFG] = {0};
                double r[NCFG][MAXR];
                for (int c = 0; c < CFG_TORCH; c++) {
                    if (c != CFG_FP32 && !n->rt[c]) continue;
                    if (forward(n, c, x[ai], B, logits) || forward(n, c, x[ai], B, logits)) {
                        fail(cfg_names[c]);
                        reps[c] = -1;
                        status = 1;
                        continue;
                    }
                    const double t0 = clock_s(clk);
                    forward(n, c, x[ai], B, logits);
                    const double one = clock_s(clk) - t0;
                    reps[c] = one >= min_run ? 1 : (int)(min_run / (one > 1e-6 ? one : 1e-6)) + 1;
                }
                for (int run = 0; run < runs; run++)
                    for (int c = 0; c < CFG_TORCH; c++) {
                        if (reps[c] <= 0) continue;
                        const double t0 = clock_s(clk);
                        for (int k = 0; k < reps[c]; k++) forward(n, c, x[ai], B, logits);
                        r[c][run] = (clock_s(clk) - t0) / reps[c];
                    }
                for (int c = 0; c < CFG_TORCH; c++) {
                    if (reps[c] <= 0) continue;
                    qsort(r[c], (size_t)runs, sizeof r[c][0], cmp_dbl);
                    ips[ai][c][cell] = B / r[c][runs / 2];
                }
                ips[ai][CFG_TORCH][cell] = peer_ips(peers, npeer, archs[ai].arch, B, threads[ti]);
            }
        }
    }
    for (int ai = 0; ai < NARCH; ai++) {
        if (!ok[ai]) continue;
        const arch_info *a = &archs[ai];
        net *n = &nets[ai];
        emit("\n### %s (%dx%dx%d), %lld MMAC per image\n\n", a->arch, a->c, a->h, a->w,
             (long long)(mixq_model_macs(n->fp) / 1000000));
        emit("Calibration: 64 %s. Mixed policy: %s.\n\n", calib[ai],
             policy[ai] ? policy[ai] : "built-in (see bench_network.c)");
        emit("| configuration |");
        for (int ti = 0; ti < nt; ti++)
            for (int bi = 0; bi < nb; bi++) emit(" b%d, %dT |", batches[bi], threads[ti]);
        emit("\n|---|");
        for (int i = 0; i < nt * nb; i++) emit("--:|");
        emit("\n");
        for (int c = 0; c < NCFG; c++) {
            if (c != CFG_FP32 && c != CFG_TORCH && !n->rt[c]) continue;
            if (c == CFG_TORCH && !npeer) continue;
            emit("| %s |", cfg_names[c]);
            for (int cell = 0; cell < nt * nb; cell++) {
                const double v = ips[ai][c][cell], ref = ips[ai][CFG_INT8][cell];
                if (v <= 0) emit(" - |");
                else if (ref > 0) emit(" %.0f (%.2fx) |", v, v / ref);
                else emit(" %.0f |", v);
            }
            emit("\n");
        }
        if (nt > 1 && threads[0] == 1) { /* issue 22: batch throughput from 1 to N threads */
            emit("\nThread scaling, images/s at N threads over 1 thread (1 thread: process CPU time; N: wall "
                 "time):\n\n| configuration |");
            for (int ti = 1; ti < nt; ti++)
                for (int bi = 0; bi < nb; bi++) emit(" b%d, 1T -> %dT |", batches[bi], threads[ti]);
            emit("\n|---|");
            for (int i = 0; i < (nt - 1) * nb; i++) emit("--:|");
            emit("\n");
            for (int c = 0; c < NCFG; c++) {
                if (c != CFG_FP32 && c != CFG_TORCH && !n->rt[c]) continue;
                if (c == CFG_TORCH && !npeer) continue;
                emit("| %s |", cfg_names[c]);
                for (int ti = 1; ti < nt; ti++)
                    for (int bi = 0; bi < nb; bi++) {
                        const double one = ips[ai][c][bi], v = ips[ai][c][ti * nb + bi];
                        if (one > 0 && v > 0) emit(" %.2fx |", v / one);
                        else emit(" - |");
                    }
                emit("\n");
            }
        }
        emit("\nKernels per runtime:\n");
        for (int c = CFG_INT8; c <= CFG_BS; c++)
            if (n->rt[c]) emit("- %s: %s\n", cfg_names[c], n->kernels[c]);
        if (table[ai]) emit("- measured table: %s (mixq calibrate-cpu, batch 1, 1 thread)\n", table[ai]);
        free(x[ai]);
        net_free(n);
    }
    free(logits);
    rm_tmpdir();
    f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    emit("\nLoad average at end %.2f.%s\n", load, status ? " SOME CONFIGURATIONS FAILED (see stderr)." : "");
    if (out_file) fclose(out_file);
    return status;
}
