/* Implementation of the shared test harness (tests/test.h). */
#include "test.h"

#include "mixq/mixq.h"

#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_pass_count, test_fail_count, test_cur_failed;
const char *test_cur_name = "";

static int skip_count;
static int cur_skip;             /* 0 none, 1 test_skip, 2 test_skip_cpu */
static char cur_skip_reason[512];
static char cpu_skips[4096];     /* "name (reason); ..." for the summary */

static int under_ci(void) {
    const char *ci = getenv("CI");
    return ci && !strcmp(ci, "true");
}

static void skip_v(int kind, const char *fmt, va_list ap) {
    if (cur_skip) return; /* the first reason stands */
    cur_skip = kind;
    vsnprintf(cur_skip_reason, sizeof cur_skip_reason, fmt, ap);
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    skip_v(1, fmt, ap);
    va_end(ap);
}

void test_skip_cpu(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    skip_v(2, fmt, ap);
    va_end(ap);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MQ_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(MQ_TEST_ASAN)
#define MQ_TEST_ASAN 1
#endif
#ifdef MQ_TEST_ASAN
int test_sanitized(void) { return 1; }
#else
int test_sanitized(void) { return 0; }
#endif

char *test_env_swap(const char *name, const char *value) {
    char *old = getenv(name) ? strdup(getenv(name)) : NULL;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
    return old;
}

int test_need_file(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) return 1;
    test_skip("%s not found", path);
    return 0;
}

void test_run_one(const char *name, void (*fn)(void)) {
    test_cur_name = name;
    test_cur_failed = 0;
    cur_skip = 0;
    cur_skip_reason[0] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!test_cur_failed && cur_skip == 1 && under_ci()) {
        fprintf(stderr, "  FAIL [%s]: skipped under CI=true (only a missing CPU feature may skip "
                        "in CI): %s\n", name, cur_skip_reason);
        test_cur_failed = 1;
    }
    if (test_cur_failed) {
        test_fail_count++;
        fprintf(stderr, "not ok %s\n", name);
    } else if (cur_skip) {
        skip_count++;
        printf("skip%s %s: %s\n", cur_skip == 2 ? "-cpu" : "", name, cur_skip_reason);
        if (cur_skip == 2) {
            size_t len = strlen(cpu_skips);
            snprintf(cpu_skips + len, sizeof cpu_skips - len, "%s%s (%s)", len ? "; " : "", name,
                     cur_skip_reason);
        }
    } else {
        test_pass_count++;
        printf("ok %s (%.1f s)\n", name, secs);
    }
    fflush(stdout);
}

int test_summary(void) {
    if (cpu_skips[0]) printf("skipped for this CPU: %s\n", cpu_skips);
    printf("%d passed, %d failed, %d skipped\n", test_pass_count, test_fail_count, skip_count);
    return test_fail_count ? 1 : 0;
}

double test_max_rel_err(const float *a, const float *b, long n) {
    double scale = 1e-6, err = 0;
    for (long i = 0; i < n; i++) {
        double v = fabs((double)b[i]);
        if (v > scale) scale = v;
    }
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= err)) err = d; /* NaN propagates as failure */
    }
    return err / scale;
}

void test_fill(float *x, long n, unsigned seed, float lo, float hi) {
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (long i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

int test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

const char *test_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/mixq-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

int test_write_cifar_dir(const char *dir, const int counts[6],
                         void (*fill)(int f, int r, unsigned char *rec, void *user), void *user) {
    char path[1200];
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    if (system(path) != 0) return -1;
    int rc = 0;
    for (int f = 1; f <= 6 && !rc; f++) {
        const size_t len = (size_t)counts[f - 1] * 3073;
        unsigned char *b = calloc(len ? len : 1, 1);
        if (!b) return -1;
        for (int r = 0; r < counts[f - 1]; r++) fill(f, r, b + (size_t)r * 3073, user);
        if (f <= 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f);
        else snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        rc = test_write_file(path, b, len);
        free(b);
    }
    return rc;
}

int test_write_idx(const char *dir, int n, int h, int w, const unsigned char *images,
                   const unsigned char *labels) {
    char path[1200];
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    if (system(path) != 0) return -1;
    const size_t px = (size_t)n * h * w;
    unsigned char *img = malloc(16 + px), *lab = malloc(8 + (size_t)n);
    if (!img || !lab) {
        free(img);
        free(lab);
        return -1;
    }
    const unsigned char hi[16] = {0, 0, 8, 3, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                                  (unsigned char)(n >> 8), (unsigned char)n, 0, 0, 0, (unsigned char)h,
                                  0, 0, 0, (unsigned char)w};
    const unsigned char hl[8] = {0, 0, 8, 1, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                                 (unsigned char)(n >> 8), (unsigned char)n};
    memcpy(img, hi, 16);
    memcpy(img + 16, images, px);
    memcpy(lab, hl, 8);
    memcpy(lab + 8, labels, (size_t)n);
    static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    int rc = 0;
    for (int f = 0; f < 4 && !rc; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        rc = f % 2 ? test_write_file(path, lab, 8 + (size_t)n) : test_write_file(path, img, 16 + px);
    }
    free(img);
    free(lab);
    return rc;
}

int test_write_noise_idx(const char *dir, int n) {
    unsigned char *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    int rc = -1;
    if (img && lab) {
        for (unsigned i = 0; i < (unsigned)n * 784u; i++) img[i] = (unsigned char)((i * 2654435761u) >> 24);
        for (int i = 0; i < n; i++) lab[i] = (unsigned char)(i % 10);
        rc = test_write_idx(dir, n, 28, 28, img, lab);
    }
    free(img);
    free(lab);
    return rc;
}

int test_same_file(const char *pa, const char *pb) {
    FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
    int same = fa && fb;
    while (same) {
        const int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

int test_same_run_file(const char *a, const char *b, const char *name) {
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    return test_same_file(pa, pb);
}

char *test_run_file(const char *dir, const char *name) {
    char p[1300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return test_slurp(p);
}

int test_count_lines(const char *path) {
    char *t = test_slurp(path);
    int n = 0;
    for (char *p = t; p && *p; p++) n += *p == '\n';
    free(t);
    return n;
}

int test_cli_stop_at(const char *const *args, const char *path, int lines, int sig) {
    const char *bin = getenv("MIXQ_BIN");
    if (!bin || !*bin) bin = "build/release/mixq";
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)bin;
    for (; args[n - 1] && n < 63; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) { /* exec: no OpenMP state crosses the fork */
        execv(bin, argv);
        _exit(127);
    }
    for (int i = 0; i < 1500 && test_count_lines(path) < lines; i++) nanosleep(&(struct timespec){0, 20000000}, NULL);
    kill(pid, sig);
    int st;
    waitpid(pid, &st, 0);
    if (!(WIFSIGNALED(st) || (WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 130)))) {
        fprintf(stderr, "  %s stopped at %d lines of %s: status %d\n", bin, lines, path, st);
        return 0;
    }
    return 1;
}

char *test_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *t = NULL;
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (n >= 0 && !fseek(f, 0, SEEK_SET) && (t = malloc((size_t)n + 1))) {
        if (fread(t, 1, (size_t)n, f) != (size_t)n) {
            free(t);
            t = NULL;
        } else t[n] = 0;
    }
    fclose(f);
    return t;
}

int test_need_fmnist(void) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) == 0) return 1;
    test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
    return 0;
}

const char *test_lenet5_file(void) {
    static char path[1024];
    if (path[0]) return path;
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 3};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    if (!m) return NULL;
    char p[1024];
    snprintf(p, sizeof p, "%s/l5.mixq", test_tmpdir());
    mixq_status st = mixq_model_save(m, p);
    CHECK_OK(st);
    mixq_model_free(m);
    if (st) return NULL;
    memcpy(path, p, sizeof path);
    return path;
}

int test_search_thread_pair(const char *model, const mixq_search_config *c, const char *tag, char *d1, char *d2,
                            size_t n, mixq_search_result *r1, mixq_search_result *r2) {
    snprintf(d1, n, "%s/%s1", test_tmpdir(), tag);
    snprintf(d2, n, "%s/%s2", test_tmpdir(), tag);
    const int threads = mixq_get_threads();
    int ok = mixq_set_threads(1) == MIXQ_OK;
    ok = ok && mixq_search(model, "fashion-mnist", c, d1, 0, NULL, NULL, r1) == MIXQ_OK;
    ok = ok && mixq_set_threads(2) == MIXQ_OK;
    ok = ok && mixq_search(model, "fashion-mnist", c, d2, 0, NULL, NULL, r2) == MIXQ_OK;
    CHECKF(ok, "%s search at 1 and 2 threads: %s", tag, mixq_last_error());
    mixq_set_threads(threads);
    return ok;
}

int test_kill_resume(const char *model, const mixq_search_config *c, const char *const *cli, int stop1, int stop2,
                     const char *ckpt, const char *tag, char *a, char *b, size_t n, mixq_search_result *ra,
                     mixq_search_result *rb) {
    snprintf(a, n, "%s/%sa", test_tmpdir(), tag);
    snprintf(b, n, "%s/%sb", test_tmpdir(), tag);
    int ok = mixq_search(model, "fashion-mnist", c, a, 0, NULL, NULL, ra) == MIXQ_OK;
    CHECKF(ok, "%s: the uninterrupted search: %s", tag, mixq_last_error());
    char path[1200];
    snprintf(path, sizeof path, "%s/evals.jsonl", b);
    const int stops[2] = {stop1, stop2};
    for (int k = 0; ok && k < 2; k++) {
        const char *args[64] = {"search", model, "--data", "fashion-mnist", "--out", b, "--no-report", "--quiet"};
        int m = 8;
        for (int i = 0; cli[i] && m < 62; i++) args[m++] = cli[i];
        if (k) args[m++] = "--resume";
        args[m] = NULL;
        CHECKF(test_cli_stop_at(args, path, stops[k], SIGKILL), "%s: stop %d", tag, k);
    }
    ok = ok && mixq_search(model, "fashion-mnist", c, b, 1, NULL, NULL, rb) == MIXQ_OK;
    CHECKF(ok, "%s: the resumed search: %s", tag, mixq_last_error());
    CHECK(test_same_run_file(a, b, "evals.jsonl") && test_same_run_file(a, b, "best_policy.json") &&
          test_same_run_file(a, b, "pareto.csv"));
    if (ckpt) CHECKF(test_same_run_file(a, b, ckpt), "%s: %s differs", tag, ckpt);
    return ok;
}
