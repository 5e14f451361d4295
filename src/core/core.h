/* Internal core utilities: error reporting, checked allocation, RNG, workspace, threads.
 * Not public API. */
#ifndef MIXQ_CORE_H
#define MIXQ_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "mixq/mixq.h"

/* Record a failure for this thread and return it. The message should say what failed, where
 * (file, tensor, layer, step...) and, when useful, a hint ("hint: ..."). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
mixq_status mq_err(mixq_status s, const char *fmt, ...);
/* The status of this thread's last mq_err (for a caller that wraps a failure reported as -1 or
 * NULL in its own message, keeping MIXQ_ERR_NOMEM an out-of-memory error). */
mixq_status mq_last_status(void);

/* Checked allocation: on failure records MIXQ_ERR_NOMEM naming `what` and returns NULL.
 * mq_calloc zero-fills. Sizes are checked for overflow. Free with free(). */
void *mq_malloc(size_t n, size_t size, const char *what);
void *mq_calloc(size_t n, size_t size, const char *what);
/* realloc with the same checks (on failure p is left as it was) */
void *mq_realloc(void *p, size_t n, size_t size, const char *what);
/* Fault injection, for tests only (tests/test_faults.c; the library never sets it): after
 * mq_fault_alloc(n), the n-th following mq_malloc / mq_calloc / mq_realloc / mq_alloc_aligned /
 * mq_fault_raw_alloc call fails once, as if out of memory; n = 0 turns it off. mq_fault_alloc_calls() counts those calls since
 * the last mq_fault_alloc. */
void mq_fault_alloc(long n);
long mq_fault_alloc_calls(void);
/* Allocations that cJSON and protobuf-c make for the library count as the checked allocator's
 * calls too: while a fault is armed, cJSON's hooks are the library's (mq_fault_alloc installs
 * them and removes them with n = 0, so a host program's hooks are left alone otherwise), and
 * the ONNX reader gives protobuf-c an allocator (mq_fault_raw_alloc). */
void *mq_fault_raw_alloc(size_t bytes); /* malloc, or NULL when it is the fault's turn */
/* Allocation failures so far (checked allocator, cJSON's hooks, protobuf-c's allocator): a parse
 * that returns NULL with this count changed ran out of memory, it did not meet bad input. */
long mq_alloc_failures(void);
/* cJSON_ParseWithLengthOpts (end: where parsing stopped, or NULL) with an allocation failure told
 * apart from bad JSON: it returns NULL with *oom = 1 and MIXQ_ERR_NOMEM recorded. */
struct cJSON *mq_json_parse(const char *text, size_t len, const char **end, int *oom);
/* 64-byte aligned, zero-filled; free with free(). */
void *mq_alloc_aligned(size_t bytes, const char *what);

/* Checked stdio: each records MIXQ_ERR_IO / MIXQ_ERR_FORMAT with the path on failure. */
FILE *mq_fopen(const char *path, const char *mode);
/* Atomic replace: mq_fopen_tmp opens "<path>.tmp" for writing into *f, *tmp receiving that
 * malloc'ed name (MIXQ_ERR_NOMEM or MIXQ_ERR_IO, recorded, with both NULL on failure);
 * mq_fclose_tmp closes it and, if st is MIXQ_OK, renames it over path, else removes it; it frees
 * tmp and returns the first error. */
mixq_status mq_fopen_tmp(const char *path, FILE **f, char **tmp);
mixq_status mq_fclose_tmp(FILE *f, char *tmp, const char *path, mixq_status st);
/* The whole of data[n] into path through mq_fopen_tmp / mq_fclose_tmp. */
mixq_status mq_write_atomic(const char *path, const void *data, size_t n);
/* Reads exactly n bytes or fails with MIXQ_ERR_FORMAT ("truncated") naming path and `what`. */
mixq_status mq_fread(void *dst, size_t n, FILE *f, const char *path, const char *what);
mixq_status mq_fwrite(const void *src, size_t n, FILE *f, const char *path);
/* A whole file into *out (malloc'ed, NUL-terminated after *len bytes; len may be NULL). Over
 * max_bytes it is MIXQ_ERR_FORMAT ("<what> '<path>' is larger than ..."). A file that cannot be
 * opened is MIXQ_ERR_IO; with missing != NULL, *missing says whether it does not exist. */
mixq_status mq_read_file(const char *path, size_t max_bytes, const char *what, char **out,
                         size_t *len, int *missing);
/* FNV-1a 64 of n bytes at p, continuing from h (MQ_FNV_BASIS to start): the one hash of model
 * weights, files and settings in run records and checkpoints. */
#define MQ_FNV_BASIS 0xcbf29ce484222325ull
uint64_t mq_fnv1a(const void *p, size_t n, uint64_t h);
/* mq_fnv1a of the whole file at path from MQ_FNV_BASIS into *h; MIXQ_ERR_IO when it cannot be
 * opened or read (a partial read is not a hash). */
mixq_status mq_fnv1a_file(const char *path, uint64_t *h);

/* Deterministic RNG: xoshiro256** seeded by splitmix64. Same seed, same stream, any platform. */
typedef struct mq_rng { uint64_t s[4]; } mq_rng;
void mq_rng_seed(mq_rng *r, uint64_t seed);
uint64_t mq_rng_u64(mq_rng *r);
uint32_t mq_rng_below(mq_rng *r, uint32_t n);   /* uniform in [0, n) */
float mq_rng_uniform(mq_rng *r);                /* uniform in [0, 1) */
float mq_rng_normal(mq_rng *r);                 /* standard normal (Box-Muller) */
void mq_rng_shuffle(mq_rng *r, int *a, int n);  /* Fisher-Yates */
/* Derive an independent seed from a base seed and up to two indices (epoch, sample...). */
uint64_t mq_seed_mix(uint64_t seed, uint64_t a, uint64_t b);

/* Growable scratch buffers, `slots` of them. Get slot i with at least `bytes` (64-byte
 * aligned, contents undefined). Call from serial code; inside a parallel region each thread
 * must use a slot reserved for it beforehand (mq_ws_reserve). */
#define MQ_WS_SLOTS 128
typedef struct mq_ws { void *buf[MQ_WS_SLOTS]; size_t cap[MQ_WS_SLOTS]; } mq_ws;
void *mq_ws_get(mq_ws *ws, int slot, size_t bytes);
void mq_ws_free(mq_ws *ws);

/* Thread count in use (mixq_set_threads). */
int mq_threads(void);

/* Monotonic wall time in seconds. */
double mq_now(void);

/* Index of the largest of v[0..n) (n >= 1), the first of equals: every prediction, accuracy
 * count and hard choice takes its class or candidate here. */
int mq_argmax(const float *v, int n);

/* Elements of an array (not a pointer). A name table indexed by an enum is declared without a
 * size, one positional entry per enumerator, and checked against the enum's COUNT with
 * _Static_assert(MQ_COUNTOF(names) == X_COUNT, ...): an enumerator added without a name then
 * fails to compile (a designated initializer would leave a NULL hole instead). */
#define MQ_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* "did you mean 'NAME'? " (with its trailing space) for the entry of names nearest to word
 * (mixq_closest_name), else "": ready for "...; %shint: ..." in a message. Per-thread buffer,
 * valid until the next call. */
const char *mq_did_you_mean(const char *word, const char *const *names, int n);

#define MQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MQ_MAX(a, b) ((a) > (b) ? (a) : (b))
/* First item of part t when n items are cut into k contiguous parts (t = 0..k; part t is
 * [mq_split(n, t, k), mq_split(n, t + 1, k))): the threads' shares, so that every item is
 * computed by the same code whatever the thread count. */
static inline int mq_split(int n, int t, int k) { return (int)((int64_t)n * t / k); }

#endif
