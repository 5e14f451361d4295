/* Core utilities: error messages, checked allocation and stdio, RNG, workspace, threads. */
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <omp.h>
#include <cblas.h>
#include <cjson/cJSON.h>

/* ---------------------------------------------------------------- errors */
static _Thread_local char tl_msg[1024];
static _Thread_local mixq_status tl_status;

/* One name per mixq_status, in enum order. */
static const char *const status_names[] = {
    "ok",                      /* MIXQ_OK */
    "out of memory",           /* MIXQ_ERR_NOMEM */
    "i/o error",               /* MIXQ_ERR_IO */
    "bad or truncated file",   /* MIXQ_ERR_FORMAT */
    "shape mismatch",          /* MIXQ_ERR_SHAPE */
    "invalid argument",        /* MIXQ_ERR_ARG */
    "not found",               /* MIXQ_ERR_NOTFOUND */
    "numeric error (NaN/Inf)", /* MIXQ_ERR_NUMERIC */
    "unsupported",             /* MIXQ_ERR_UNSUPPORTED */
    "invalid state",           /* MIXQ_ERR_STATE */
};
_Static_assert(MQ_COUNTOF(status_names) == MIXQ_STATUS_COUNT,
               "status_names: one name per mixq_status");

const char *mixq_status_str(mixq_status s) {
    if ((int)s < 0 || s >= MIXQ_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

const char *mixq_last_error(void) { return tl_msg; }
void mixq_clear_error(void) { tl_msg[0] = 0, tl_status = MIXQ_OK; }
mixq_status mq_last_status(void) { return tl_status; }

mixq_status mq_err(mixq_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    tl_status = s;
    return s;
}

/* "MAJOR.MINOR.PATCH" from the header's version macros, the only place the version is written. */
#define MQ_STR_(x) #x
#define MQ_STR(x) MQ_STR_(x)
const char *mixq_version(void) {
    return MQ_STR(MIXQ_VERSION_MAJOR) "." MQ_STR(MIXQ_VERSION_MINOR) "." MQ_STR(MIXQ_VERSION_PATCH);
}

/* ---------------------------------------------------------------- allocation */
static long fault_at, fault_calls, failures; /* atomics: allocations may come from OpenMP threads */

/* 1 when this allocation is the one mq_fault_alloc asked to fail */
static int fault_now(void) {
    long at = __atomic_load_n(&fault_at, __ATOMIC_RELAXED);
    if (!at) return 0;
    return __atomic_add_fetch(&fault_calls, 1, __ATOMIC_SEQ_CST) == at;
}

/* p, with a NULL counted as an allocation failure (mq_alloc_failures) */
static void *counted(void *p) {
    if (!p) __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    return p;
}

void *mq_fault_raw_alloc(size_t bytes) { return counted(fault_now() ? NULL : malloc(bytes ? bytes : 1)); }
long mq_alloc_failures(void) { return __atomic_load_n(&failures, __ATOMIC_SEQ_CST); }

void mq_fault_alloc(long n) {
    __atomic_store_n(&fault_calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fault_at, n, __ATOMIC_SEQ_CST);
    cJSON_Hooks hooks = {mq_fault_raw_alloc, free};
    cJSON_InitHooks(n ? &hooks : NULL);
}
long mq_fault_alloc_calls(void) { return __atomic_load_n(&fault_calls, __ATOMIC_SEQ_CST); }

cJSON *mq_json_parse(const char *text, size_t len, const char **end, int *oom) {
    long f0 = mq_alloc_failures();
    const char *stop = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
    if (end) *end = stop;
    *oom = !j && mq_alloc_failures() != f0;
    if (*oom) mq_err(MIXQ_ERR_NOMEM, "out of memory parsing JSON");
    return j;
}
void *mq_malloc(size_t n, size_t size, const char *what) {
    if (size && n > SIZE_MAX / size) {
        mq_err(MIXQ_ERR_NOMEM, "allocation size overflow for %s (%zu x %zu)", what, n, size);
        return NULL;
    }
    size_t bytes = n * size;
    void *p = mq_fault_raw_alloc(bytes);
    if (!p) mq_err(MIXQ_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *mq_realloc(void *p, size_t n, size_t size, const char *what) {
    if (size && n > SIZE_MAX / size) {
        mq_err(MIXQ_ERR_NOMEM, "allocation size overflow for %s (%zu x %zu)", what, n, size);
        return NULL;
    }
    size_t bytes = n * size;
    void *q = counted(fault_now() ? NULL : realloc(p, bytes ? bytes : 1));
    if (!q) mq_err(MIXQ_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return q;
}

void *mq_calloc(size_t n, size_t size, const char *what) {
    void *p = counted(fault_now() ? NULL : calloc(n ? n : 1, size ? size : 1));
    if (!p) mq_err(MIXQ_ERR_NOMEM, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}

void *mq_alloc_aligned(size_t bytes, const char *what) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) {
        mq_err(MIXQ_ERR_NOMEM, "allocation size overflow for %s", what);
        return NULL;
    }
    void *p = counted(fault_now() ? NULL : aligned_alloc(64, rounded ? rounded : 64));
    if (!p) {
        mq_err(MIXQ_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
        return NULL;
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

/* ---------------------------------------------------------------- stdio */
FILE *mq_fopen(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f)
        mq_err(MIXQ_ERR_IO, "cannot open '%s' for %s: %s", path,
               mode[0] == 'r' ? "reading" : "writing", strerror(errno));
    return f;
}

mixq_status mq_fopen_tmp(const char *path, FILE **f, char **tmp) {
    size_t plen = strlen(path);
    *f = NULL;
    *tmp = mq_malloc(plen + 5, 1, "temporary file name");
    if (!*tmp) return MIXQ_ERR_NOMEM;
    memcpy(*tmp, path, plen);
    memcpy(*tmp + plen, ".tmp", 5);
    if ((*f = mq_fopen(*tmp, "wb"))) return MIXQ_OK;
    free(*tmp);
    *tmp = NULL;
    return MIXQ_ERR_IO;
}

mixq_status mq_fclose_tmp(FILE *f, char *tmp, const char *path, mixq_status st) {
    /* flushed and synced before the rename, so a crash leaves the old file or the new one */
    if (!st && (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0))
        st = mq_err(MIXQ_ERR_IO, "write error on '%s': %s; hint: check free disk space", tmp, strerror(errno));
    if (fclose(f) != 0 && !st) st = mq_err(MIXQ_ERR_IO, "write error on '%s' (close failed): %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = mq_err(MIXQ_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}

uint64_t mq_fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

mixq_status mq_fnv1a_file(const char *path, uint64_t *h) {
    FILE *f = mq_fopen(path, "rb");
    if (!f) return MIXQ_ERR_IO;
    unsigned char buf[65536];
    size_t n;
    *h = MQ_FNV_BASIS;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *h = mq_fnv1a(buf, n, *h);
    const int bad = ferror(f);
    fclose(f);
    return bad ? mq_err(MIXQ_ERR_IO, "cannot read '%s' to hash it", path) : MIXQ_OK;
}

mixq_status mq_write_atomic(const char *path, const void *data, size_t n) {
    FILE *f;
    char *tmp;
    mixq_status st = mq_fopen_tmp(path, &f, &tmp);
    if (st) return st;
    st = mq_fwrite(data, n, f, tmp);
    return mq_fclose_tmp(f, tmp, path, st);
}

mixq_status mq_read_file(const char *path, size_t max_bytes, const char *what, char **out,
                         size_t *len, int *missing) {
    *out = NULL;
    if (missing) *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing) *missing = errno == ENOENT;
        return mq_err(MIXQ_ERR_IO, "cannot open '%s' for reading: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    mixq_status st = MIXQ_OK;
    for (;;) {
        if (n + 1 >= cap) { /* room for the data and the NUL */
            size_t ncap = cap ? cap * 2 : 65536;
            if (cap > max_bytes) {
                st = mq_err(MIXQ_ERR_FORMAT, "%s '%s' is larger than %zu MiB", what, path, max_bytes >> 20);
                break;
            }
            char *nb = realloc(buf, ncap);
            if (!nb) {
                st = mq_err(MIXQ_ERR_NOMEM, "out of memory reading %s '%s'", what, path);
                break;
            }
            buf = nb, cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) st = mq_err(MIXQ_ERR_IO, "cannot read %s '%s': %s", what, path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!st && n > max_bytes)
        st = mq_err(MIXQ_ERR_FORMAT, "%s '%s' is larger than %zu MiB", what, path, max_bytes >> 20);
    if (st) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return MIXQ_OK;
}

mixq_status mq_fread(void *dst, size_t n, FILE *f, const char *path, const char *what) {
    size_t got = fread(dst, 1, n, f);
    if (got != n) {
        if (ferror(f))
            return mq_err(MIXQ_ERR_IO, "read error in '%s' while reading %s: %s", path, what,
                          strerror(errno));
        return mq_err(MIXQ_ERR_FORMAT,
                      "'%s' is truncated: expected %zu bytes of %s, found %zu; hint: the file "
                      "may be incomplete, re-create or re-download it",
                      path, n, what, got);
    }
    return MIXQ_OK;
}

mixq_status mq_fwrite(const void *src, size_t n, FILE *f, const char *path) {
    if (n && fwrite(src, 1, n, f) != n)
        return mq_err(MIXQ_ERR_IO, "write error on '%s': %s", path, strerror(errno));
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- RNG */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mq_rng_seed(mq_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mq_rng_u64(mq_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t mq_rng_below(mq_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t m = (uint64_t)(uint32_t)(mq_rng_u64(r) >> 32) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)(uint32_t)(mq_rng_u64(r) >> 32) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float mq_rng_uniform(mq_rng *r) { return (float)(mq_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float mq_rng_normal(mq_rng *r) {
    double u1 = ((double)(mq_rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(mq_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void mq_rng_shuffle(mq_rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)mq_rng_below(r, (uint32_t)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

uint64_t mq_seed_mix(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed ^ 0x6A09E667F3BCC909ull;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0x9E3779B97F4A7C15ull);
    h = splitmix64(&x);
    x = h ^ (b * 0xC2B2AE3D27D4EB4Full);
    return splitmix64(&x);
}

/* ---------------------------------------------------------------- workspace */
void *mq_ws_get(mq_ws *ws, int slot, size_t bytes) {
    if (slot < 0 || slot >= MQ_WS_SLOTS) {
        mq_err(MIXQ_ERR_STATE, "workspace slot %d out of range", slot);
        return NULL;
    }
    if (ws->cap[slot] >= bytes && ws->buf[slot]) return ws->buf[slot];
    free(ws->buf[slot]);
    ws->buf[slot] = NULL;
    ws->cap[slot] = 0;
    size_t want = bytes + bytes / 4 + 64;
    void *p = mq_alloc_aligned(want, "workspace");
    if (!p) return NULL;
    ws->buf[slot] = p;
    ws->cap[slot] = want;
    return p;
}

void mq_ws_free(mq_ws *ws) {
    if (!ws) return;
    for (int i = 0; i < MQ_WS_SLOTS; i++) {
        free(ws->buf[i]);
        ws->buf[i] = NULL;
        ws->cap[i] = 0;
    }
}

/* ---------------------------------------------------------------- threads */
static int g_threads = 0;

static void threads_init(void) {
    if (g_threads > 0) return;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("MIXQ_THREADS");
    if (env && atoi(env) > 0) n = atoi(env);
    if (n < 1) n = 1;
    if (n > 32) n = 32;
    g_threads = (int)n;
    /* BLAS calls are made one per thread on independent data; BLAS itself stays serial so
     * results do not depend on the thread count. Order matters: OpenBLAS's OpenMP build sets
     * the OpenMP thread count too, so ours is set after it. */
    openblas_set_num_threads(1);
    omp_set_num_threads(g_threads);
}

/* At load: every OpenMP region of the library (pointwise kernels, training loops, oneDNN's
 * chunks) runs with MIXQ_THREADS threads from the first call on, not only after something asked
 * mq_threads(); without this the OpenMP default (every core) applied until then, and two
 * single-threaded processes on two cores spun in each other's barriers. Runs after OpenBLAS's
 * own initialisation (a library's constructors run after those of the libraries it needs). */
__attribute__((constructor)) static void threads_at_load(void) { threads_init(); }

mixq_status mixq_set_threads(int n) {
    if (n < 1 || n > 32)
        return mq_err(MIXQ_ERR_ARG, "thread count %d out of range; hint: use 1..32", n);
    g_threads = n;
    openblas_set_num_threads(1); /* before omp_set_num_threads: see threads_init */
    omp_set_num_threads(n);
    return MIXQ_OK;
}

int mixq_get_threads(void) {
    threads_init();
    return g_threads;
}

int mq_threads(void) {
    threads_init();
    return g_threads;
}

int mq_argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

double mq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- "did you mean" */
/* Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1 ("serach" is 1 from "search"). Stops counting at cap + 1. */
static int edit_distance(const char *a, const char *b, int cap) {
    enum { MAXLEN = 96 };
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n >= MAXLEN || m >= MAXLEN || abs(n - m) > cap) return cap + 1;
    int d[MAXLEN][MAXLEN];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

const char *mixq_closest_name(const char *word, const char *const *names, int n) {
    if (!word || !names) return NULL;
    int len = (int)strlen(word), cap = len < 4 ? 1 : len < 10 ? 2 : 3, best = cap + 1;
    const char *pick = NULL;
    for (int i = 0; i < n; i++) {
        if (!names[i] || !strcmp(names[i], word)) continue;
        int d = edit_distance(word, names[i], cap);
        if (d < best) best = d, pick = names[i];
    }
    return pick;
}

const char *mq_did_you_mean(const char *word, const char *const *names, int n) {
    static _Thread_local char buf[MIXQ_NAME_MAX + 24];
    const char *near = mixq_closest_name(word, names, n);
    if (!near) return "";
    snprintf(buf, sizeof buf, "did you mean '%s'? ", near);
    return buf;
}
