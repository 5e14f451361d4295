/* Minimal test harness shared by every tests/test_*.c binary.
 * Each binary calls TEST_RUN(fn) for its test functions and ends with `return test_summary();`,
 * which prints "N passed, N failed, N skipped" and returns non-zero on any failure. A check
 * failure prints file:line and the message and marks the current test failed (the test goes on).
 * A test that cannot check what it is for calls test_skip (data or a tool missing) or
 * test_skip_cpu (a CPU feature this machine lacks) and returns: it is counted as skipped, never
 * as passed. Under CI=true a test_skip is a failure; a test_skip_cpu never is, and each one is
 * listed by name in the summary. */
#ifndef MIXQ_TEST_H
#define MIXQ_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int test_pass_count, test_fail_count, test_cur_failed;
extern const char *test_cur_name;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, test_cur_name, \
                    #cond);                                                             \
            test_cur_failed = 1;                                                        \
        }                                                                               \
    } while (0)

#define CHECKF(cond, ...)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  FAIL %s:%d [%s]: ", __FILE__, __LINE__, test_cur_name);  \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            test_cur_failed = 1;                                                        \
        }                                                                               \
    } while (0)

/* A mixq call that must succeed. */
#define CHECK_OK(expr)                                                                  \
    do {                                                                                \
        int rc_ = (int)(expr);                                                          \
        if (rc_ != 0) {                                                                 \
            fprintf(stderr, "  FAIL %s:%d [%s]: %s returned %d: %s\n", __FILE__, __LINE__, \
                    test_cur_name, #expr, rc_, mixq_last_error());                      \
            test_cur_failed = 1;                                                        \
        }                                                                               \
    } while (0)

#define TEST_RUN(fn) test_run_one(#fn, fn)

void test_run_one(const char *name, void (*fn)(void));
int test_summary(void);

/* Mark the current test skipped, with the reason (printf format). Under CI=true it fails. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Mark the current test skipped because this CPU lacks a feature (never a failure). */
void test_skip_cpu(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 if the file exists; else test_skip naming it (a missing fixture fails CI) and 0. */
int test_need_file(const char *path);
/* The repository's fixture directory, "tests/fixtures/" (tests run from the repository root). */
#define TEST_FIXTURES "tests/fixtures/"

/* Max relative error between a and b over n elements:
 * max_i |a_i - b_i| / max(atol_scale, max_j |b_j|)  -- relative to the tensor's scale. */
double test_max_rel_err(const float *a, const float *b, long n);
/* Fill with deterministic pseudo-random values in [lo, hi). */
void test_fill(float *x, long n, unsigned seed, float lo, float hi);
/* Set an environment variable (value) or unset it (NULL); returns its old value, malloc'ed, or
 * NULL if it was unset. Restore with free(test_env_swap(name, old)); free(old). */
char *test_env_swap(const char *name, const char *value);
/* Write bytes to a file (for generated fixtures); returns 0 on success. */
int test_write_file(const char *path, const void *data, size_t n);
/* An MNIST-format IDX dataset in dir (created): the same n images (h x w, uint8) and labels as
 * both the training and the test files. Returns 0 on success. */
int test_write_idx(const char *dir, int n, int h, int w, const unsigned char *images,
                   const unsigned char *labels);
/* test_write_idx with n pseudo-random 28 x 28 images (pixel i: (i * 2654435761) >> 24) and
 * labels i % 10: data for searches that only need to run, not to learn. */
int test_write_noise_idx(const char *dir, int n);
/* A CIFAR-10 binary directory in dir (created): batch f (1..5: data_batch_f.bin, 6:
 * test_batch.bin) holds counts[f - 1] records of 3073 bytes, record r as fill(f, r, rec, user)
 * writes it (rec[0] the label, rec[1..3072] the CHW pixels; rec comes zeroed). 0 on success. */
int test_write_cifar_dir(const char *dir, const int counts[6],
                         void (*fill)(int f, int r, unsigned char *rec, void *user), void *user);
/* A fresh temporary directory for this test binary (created once). */
const char *test_tmpdir(void);
/* A whole file, malloc'ed and NUL-terminated; NULL if it cannot be read. */
char *test_slurp(const char *path);
/* 1 when files a and b hold the same bytes (0 if either is missing). */
int test_same_file(const char *a, const char *b);
/* 1 when directories a and b hold the file `name` with the same bytes (0 if either is missing). */
int test_same_run_file(const char *a, const char *b, const char *name);
/* test_slurp of the file `name` in directory dir. */
char *test_run_file(const char *dir, const char *name);
/* The lines of a file (0 when it is missing). */
int test_count_lines(const char *path);
/* Run the CLI ($MIXQ_BIN, else build/release/mixq) with args (NULL-terminated, the program name
 * left out), wait until `path` holds `lines` lines (at most 30 s), send `sig` and reap it: 1 if
 * it died of the signal or exited with 0 (it finished first) or 130 (its SIGINT message). */
int test_cli_stop_at(const char *const *args, const char *path, int lines, int sig);
/* The same search on Fashion-MNIST twice, at 1 and then 2 threads, into test_tmpdir()/<tag>1 and
 * <tag>2 (written to d1, d2, n bytes each), results in r1, r2; the thread count is restored.
 * 1 if both ran (a failure is a failed check, with the error). */
struct mixq_search_config;
struct mixq_search_result;
int test_search_thread_pair(const char *model, const struct mixq_search_config *c, const char *tag, char *d1,
                            char *d2, size_t n, struct mixq_search_result *r1, struct mixq_search_result *r2);
/* Kill and resume: search c on Fashion-MNIST whole into test_tmpdir()/<tag>a (result ra), then
 * through the CLI with cli (its flags for the same search, NULL-terminated, without the model,
 * --data, --out, --quiet and --resume) into <tag>b, killed by SIGKILL when evals.jsonl holds
 * stop1 and then (resumed) stop2 lines, and finished by mixq_search with resume (result rb).
 * Then checks that evals.jsonl, best_policy.json, pareto.csv and `ckpt` (NULL: none) are the
 * uninterrupted run's. The directories go to a, b (n bytes each). */
int test_kill_resume(const char *model, const struct mixq_search_config *c, const char *const *cli, int stop1,
                     int stop2, const char *ckpt, const char *tag, char *a, char *b, size_t n,
                     struct mixq_search_result *ra, struct mixq_search_result *rb);
/* 1 if Debian's dataset-fashion-mnist is installed; else test_skip saying so and 0. */
int test_need_fmnist(void);
/* 1 in a sanitizer build (ASan/UBSan): there the longest statistical tests run one of their
 * seeds, with the same checks per seed (the numbers are deterministic, so that seed's result is
 * the release build's); the release suite runs every seed. Memory checking needs the code paths,
 * not every seed. */
int test_sanitized(void);
/* An untrained lenet5 (28 x 28, 10 classes, seed 3), saved once per test binary in test_tmpdir();
 * NULL, with the calling test failed, if it cannot be written. */
const char *test_lenet5_file(void);

#endif
