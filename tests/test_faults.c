/* Failure injection (issue 15): allocations that fail and writes that fail.
 *  - Allocation sweeps: mq_fault_alloc(N) makes the N-th allocation through the library's checked
 *    allocator (mq_malloc, mq_calloc, mq_realloc, mq_alloc_aligned) or by cJSON or protobuf-c for
 *    the library (its hooks and allocator count them too) fail once, for N = 1, 2, ... until the
 *    operation no longer reaches an N-th allocation. Every failure must come back as
 *    MIXQ_ERR_NOMEM with a message and no half-built object; under ASan (make test's second pass)
 *    every path must also free what it had allocated: LeakSanitizer fails the binary otherwise.
 *    Swept: model load, policy parse, ONNX import, a short random search.
 *  - Write failures: RLIMIT_FSIZE in a child process (SIGXFSZ ignored, so write() fails with
 *    EFBIG) while saving a model, exporting ONNX and running the CLI's search: a clean error,
 *    the previous file byte-identical, and no <file>.tmp left behind. */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "mixq/mixq.h"
#include "test.h"

static char *tmp_path(const char *name) {
    static char buf[8][1200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", test_tmpdir(), name);
    return p;
}

/* one sweep: op(user) returns a status and frees whatever it built; N = 1.. until op succeeds
 * without reaching its N-th allocation. Returns the number of injected failures (-1 on a defect). */
typedef mixq_status (*op_fn)(void *user);
static long sweep(const char *what, op_fn op, void *user, long stride_after) {
    long n = 1, tried = 0;
    for (;;) {
        mq_fault_alloc(n);
        mixq_clear_error();
        mixq_status st = op(user);
        long calls = mq_fault_alloc_calls();
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", mixq_last_error());
        mq_fault_alloc(0);
        if (calls < n) { /* the operation finished before the N-th allocation */
            CHECKF(st == MIXQ_OK, "%s: failed with no allocation failing (N=%ld, %ld calls): %s", what, n, calls, msg);
            printf("  %s: %ld allocation points failed in turn (of %ld), each a clean error\n", what, tried,
                   calls);
            return tried;
        }
        tried++;
        if (st == MIXQ_OK) {
            /* a fallback that survives one failed allocation is fine only if it says nothing wrong */
            CHECKF(0, "%s: allocation %ld failed and the operation still returned ok", what, n);
            return -1;
        }
        CHECKF(st == MIXQ_ERR_NOMEM && msg[0], "%s: allocation %ld: status %d (%s), message '%s'", what, n, (int)st,
               mixq_status_str(st), msg);
        if (test_cur_failed) return -1;
        n += n < stride_after ? 1 : 1 + n / stride_after;
    }
}

/* ---------------------------------------------------------------- allocation sweeps */

static mixq_status op_load(void *user) {
    mixq_model *m = (mixq_model *)1;
    mixq_status st = mixq_model_load((const char *)user, &m);
    if (st == MIXQ_OK) mixq_model_free(m);
    else if (m) {
        CHECKF(0, "model load failed but left *out = %p", (void *)m);
    }
    return st;
}

static void test_alloc_model_load(void) {
    const char *p = test_lenet5_file();
    if (!p) return;
    CHECK(sweep("model load (lenet5)", op_load, (void *)p, 1000000) > 0);
}

static mixq_status op_policy(void *user) {
    const char *text = user;
    mixq_policy *pol = (mixq_policy *)1;
    mixq_status st = mixq_policy_parse(text, strlen(text), "sweep.json", &pol);
    if (st == MIXQ_OK) mixq_policy_free(pol);
    else CHECK(pol == NULL);
    return st;
}

static void test_alloc_policy_parse(void) {
    const char *text = "{\"mixq_policy\": 1, \"comment\": \"per-kernel conv2\",\n"
                       " \"layers\": {\"conv1\": {\"w_bits\": 8, \"a_bits\": 8},\n"
                       "   \"conv2\": {\"w_bits\": [2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5], \"a_bits\": 4},\n"
                       "   \"fc3\": {\"w_bits\": 8, \"a_bits\": 8}}}";
    mixq_policy *pol = NULL;
    mixq_status st0 = mixq_policy_parse(text, strlen(text), "sweep.json", &pol);
    CHECKF(st0 == MIXQ_OK, "the policy does not parse: %s", mixq_last_error());
    mixq_policy_free(pol);
    if (st0) return;
    CHECK(sweep("policy parse", op_policy, (void *)text, 1000000) > 0);
}

static mixq_status op_onnx(void *user) {
    mixq_model *m = (mixq_model *)1;
    mixq_status st = mixq_model_import_onnx((const char *)user, &m);
    if (st == MIXQ_OK) mixq_model_free(m);
    else CHECK(m == NULL);
    return st;
}

static void test_alloc_onnx_import(void) {
    const char *p = TEST_FIXTURES "onnx/resnet_tiny.onnx";
    if (!test_need_file(p)) return;
    CHECK(sweep("ONNX import (resnet_tiny)", op_onnx, (void *)p, 1000000) > 0);
}

typedef struct srch_ctx {
    const char *model, *data;
    int k;
} srch_ctx;

static mixq_status op_search(void *user) {
    srch_ctx *s = user;
    mixq_search_config c;
    mixq_search_config_default(&c);
    c.agent = "random";
    c.hw = "bismo_edge";
    c.budget = "latency=0.9";
    c.episodes = 2;
    c.val_images = 32, c.eval_images = 32, c.calib_images = 16, c.batch = 16;
    c.final_epochs = 0;
    c.report_every = -1;
    char dir[64];
    snprintf(dir, sizeof dir, "search_%d", s->k++);
    mixq_search_result r;
    return mixq_search(s->model, s->data, &c, tmp_path(dir), 0, NULL, NULL, &r);
}

static void test_alloc_search(void) {
    const char *model = test_lenet5_file();
    if (!model) return;
    static char data[1200];
    snprintf(data, sizeof data, "%s", tmp_path("idx"));
    CHECK(test_write_noise_idx(data, 64) == 0);
    srch_ctx s = {model, data, 0};
    /* every allocation point (under ASan, make test's slower second pass: every one of the first
     * 60, then a growing stride to the end) */
#if defined(__SANITIZE_ADDRESS__)
    CHECK(sweep("short random search (lenet5, 2 episodes)", op_search, &s, 60) > 50);
#else
    CHECK(sweep("short random search (lenet5, 2 episodes)", op_search, &s, 1000000) > 100);
#endif
}

/* ---------------------------------------------------------------- write failures */

/* In a child limited to `limit` bytes per file: 0 when fn returned an error whose message is
 * non-empty, 1 when it returned ok, 2 on a crash or a signal. */
static int limited(long limit, mixq_status (*fn)(void *), void *user, char *msg, size_t msg_len) {
    int fd[2];
    if (pipe(fd)) return 2;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
        setrlimit(RLIMIT_FSIZE, &rl);
        mixq_status st = fn(user);
        const char *m = mixq_last_error();
        if (write(fd[1], m, strlen(m)) < 0) _exit(3);
        _exit(st == MIXQ_OK ? 1 : m[0] ? 0 : 4);
    }
    close(fd[1]);
    ssize_t n = read(fd[0], msg, msg_len - 1);
    msg[n > 0 ? n : 0] = 0;
    close(fd[0]);
    int ws;
    if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) return 2;
    return WEXITSTATUS(ws);
}

typedef struct save_ctx {
    mixq_model *m;
    const char *path;
} save_ctx;
static mixq_status do_save(void *u) {
    save_ctx *s = u;
    return mixq_model_save(s->m, s->path);
}
static mixq_status do_export(void *u) {
    save_ctx *s = u;
    return mixq_model_export_onnx(s->m, s->path);
}

static void check_write_failure(const char *what, mixq_status (*fn)(void *), save_ctx *s, const char *copy) {
    char tmp[1300], msg[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
    static const long limits[] = {0, 1, 100, 4096, 65536};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        int r = limited(limits[i], fn, s, msg, sizeof msg);
        CHECKF(r == 0, "%s with a %ld-byte file limit: child result %d (0: a clean error), '%s'", what, limits[i], r,
               msg);
        CHECKF(strstr(msg, s->path) != NULL, "%s: the message does not name the file: '%s'", what, msg);
        CHECKF(test_same_file(s->path, copy), "%s with a %ld-byte file limit: the previous file changed", what, limits[i]);
        CHECKF(access(tmp, F_OK) != 0, "%s: '%s' left behind", what, tmp);
    }
    printf("  %s: %s\n", what, msg);
}

static void test_write_fails_model_and_onnx(void) {
    const char *src = test_lenet5_file();
    if (!src) return;
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_load(src, &m));
    if (!m) return;
    save_ctx s = {m, tmp_path("w.mixq")};
    CHECK_OK(mixq_model_save(m, s.path));
    CHECK_OK(mixq_model_save(m, tmp_path("w_copy.mixq")));
    check_write_failure("model save", do_save, &s, tmp_path("w_copy.mixq"));
    s.path = tmp_path("w.onnx");
    CHECK_OK(mixq_model_export_onnx(m, s.path));
    CHECK_OK(mixq_model_export_onnx(m, tmp_path("w_copy.onnx")));
    check_write_failure("ONNX export", do_export, &s, tmp_path("w_copy.onnx"));
    mixq_model_free(m);
}

/* the CLI's search with a file-size limit: exits non-zero with one line naming the file, never
 * a crash; run to the end without the limit afterwards, it resumes and finishes */
static void test_write_fails_search_cli(void) {
    const char *bin = getenv("MIXQ_BIN");
    if (!bin || access(bin, X_OK)) {
        test_skip("MIXQ_BIN is not set to the mixq binary (tests/run.sh sets it)");
        return;
    }
    const char *model = test_lenet5_file();
    if (!model) return;
    static char data[1200], run[1200];
    snprintf(data, sizeof data, "%s", tmp_path("idx_cli"));
    CHECK(test_write_noise_idx(data, 64) == 0);
    snprintf(run, sizeof run, "%s", tmp_path("cli_run"));
    char cmd[4096];
    const char *args = "--agent random --hw bismo_edge --budget latency=0.9 --episodes 3 --val 32 --eval-images 32 "
                       "--calib-images 16 --batch 16 --final-epochs 0 --no-report --quiet";
    /* 2 KB per file: config.json fits, evals.jsonl soon does not */
    snprintf(cmd, sizeof cmd, "ulimit -f 4; trap '' XFSZ; '%s' search '%s' --data '%s' %s --out '%s' >/dev/null 2>'%s/cli_err.txt'",
             bin, model, data, args, run, test_tmpdir());
    int ws = system(cmd);
    CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) != 0 && WEXITSTATUS(ws) < 128, "search under a file limit: wait status %d",
           ws);
    char ep[1300];
    snprintf(ep, sizeof ep, "%s/cli_err.txt", test_tmpdir());
    char *err = test_slurp(ep);
    CHECKF(err && strstr(err, "error") && strstr(err, run), "message: '%s'", err ? err : "(none)");
    if (err) printf("  search, 2 KB file limit: %s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tmp$' >/dev/null && exit 1; exit 0", run);
    CHECKF(system(cmd) == 0, "a .tmp file was left in %s", run);
    snprintf(cmd, sizeof cmd, "'%s' search '%s' --data '%s' %s --out '%s' --resume >/dev/null 2>&1", bin, model, data, args,
             run);
    CHECKF(system(cmd) == 0, "the search did not resume and finish after the write failure");
}

int main(void) {
    TEST_RUN(test_alloc_model_load);
    TEST_RUN(test_alloc_policy_parse);
    TEST_RUN(test_alloc_onnx_import);
    TEST_RUN(test_alloc_search);
    TEST_RUN(test_write_fails_model_and_onnx);
    TEST_RUN(test_write_fails_search_cli);
    return test_summary();
}
