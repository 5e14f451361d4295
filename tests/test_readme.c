/* The README's commands, run, so the README cannot drift from the tool.
 *
 * Every line of a ```sh block in README.md that starts with `build/release/mixq` (a line ending in
 * `\` continues on the next; a trailing `# comment` is dropped) is one test, named by its README
 * line. They run in README order, in one scratch directory, with $MIXQ_BIN (default
 * build/release/mixq) as the binary, and each must exit 0. Other lines of those blocks are not
 * run: `make demo` / `make test` are how this suite itself is run, `sh bench/...` and
 * `build/release/bench/...` are the long benchmarks, by design.
 *
 * Cheapened, in a fixed and documented way, so that the whole README runs in about 16 s on two
 * idle cores (50 s on two cores shared with other work):
 *   data    MIXQ_DATA_DIR points at a scratch `fashion-mnist` holding the first 1000 training
 *           and 100 test images of Debian's dataset-fashion-mnist (same files, same format);
 *   train   --epochs N -> --epochs 1 --max-steps 2; --val 100 added;
 *   quantize --finetune-epochs E -> 0.02; --val 100 --calib-images 32 --batch 32 added;
 *   search  --episodes N -> 2, --sweep N -> 3; --val 100 --eval-images 32 --calib-images 32
 *           --final-epochs 0 --batch 32 --hessian-images 32 --hessian-probes 3 added (the best
 *           policy calibrated, not fine-tuned; hawq's traces from 3 probes);
 *   run     --images 64 added;
 *   calibrate-cpu --reps 3 --threads 1 added: a median of 3 single-threaded runs, so that a
 *           busy machine's preemption (one stalled thread holds up a parallel region) does not
 *           leave outliers in the table the README's `--hw cpu` search reads;
 *   `...`   stands for the previous command's arguments but its --out (the README's "the same
 *           flags").
 * One outcome besides exit 0 is accepted, the one the README states: a search with a budget on
 * `--hw cpu` may be refused as "cannot be met" (exit 1, the cheapest reachable policy's cost
 * given), because the measured table decides whether bit-serial beats int8 anywhere: on a CPU
 * where int8 wins every layer, and always under ASan (instrumented bit-serial kernels against
 * uninstrumented oneDNN), 1-bit layers cost what 8-bit ones do.
 * Files the README assumes a user has, supplied in the scratch directory (the README is not
 * edited; nothing is skipped):
 *   model.onnx               a user's own export  -> tests/fixtures/onnx/resnet_tiny.onnx
 *   my_accelerator.json      a user's edited copy of a preset -> a copy of hw/bismo_edge.json
 *   runs/accuracy/resnet20.mixq  written by bench/accuracy.sh -> trained first (cheapened as
 *                            above, the command the "train it first" hint gives)
 *   examples/, tests/        linked to the repository's (policies, the fixtures it names). */
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

#define MAX_CMDS 64
#define MAX_TOK 96

typedef struct readme_cmd {
    int line;          /* README line where the command starts */
    char text[1024];   /* as written, continuation lines joined, comment dropped */
} readme_cmd;

static readme_cmd cmds[MAX_CMDS];
static int n_cmds, cur;
static char bin_path[2100], repo[1024], scratch[1100];
static char prev_args[1024]; /* the previous command's arguments, for `...` */

/* README.md's `build/release/mixq` lines inside ```sh blocks. */
static int read_readme(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1200];
    int ln = 0, in_sh = 0, joining = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\n")] = 0;
        const char *t = line;
        while (*t == ' ') t++;
        if (!strncmp(t, "```", 3)) {
            in_sh = !in_sh && !strcmp(t, "```sh");
            continue;
        }
        if (!in_sh) continue;
        readme_cmd *c = joining ? &cmds[n_cmds - 1] : NULL;
        if (!c) {
            if (strncmp(t, "build/release/mixq ", 19) || n_cmds == MAX_CMDS) continue;
            c = &cmds[n_cmds++];
            c->line = ln;
            c->text[0] = 0;
        }
        char buf[1200];
        snprintf(buf, sizeof buf, "%s", t);
        char *hash = strstr(buf, " #");
        if (hash) *hash = 0;
        size_t n = strlen(buf);
        while (n && buf[n - 1] == ' ') buf[--n] = 0;
        joining = n && buf[n - 1] == '\\';
        if (joining) buf[--n] = 0;
        size_t k = strlen(c->text);
        snprintf(c->text + k, sizeof c->text - k, "%s%s", k ? " " : "", buf);
    }
    fclose(f);
    return 0;
}

static int has(char **tok, int n, const char *flag) {
    for (int i = 0; i < n; i++)
        if (!strcmp(tok[i], flag)) return 1;
    return 0;
}

static void add(char **tok, int *n, const char *flag, const char *value) {
    if (has(tok, *n, flag) || *n + 2 > MAX_TOK) return;
    tok[(*n)++] = (char *)flag;
    if (value) tok[(*n)++] = (char *)value;
}

/* The README command, cheapened (see the top of this file), as a shell command line. */
static void cheapen(const char *text, char *out, size_t cap) {
    static char buf[2048];
    char *tok[MAX_TOK];
    int n = 0;
    /* `...`: the previous command's arguments */
    const char *dots = strstr(text, " ... ");
    if (dots)
        snprintf(buf, sizeof buf, "%.*s %s %s", (int)(dots - text), text, prev_args, dots + 5);
    else snprintf(buf, sizeof buf, "%s", text);
    for (char *t = strtok(buf, " "); t && n < MAX_TOK; t = strtok(NULL, " ")) tok[n++] = t;
    if (!dots) { /* remember these arguments (all but the binary, the command and --out) */
        size_t k = 0;
        prev_args[0] = 0;
        for (int i = 2; i < n; i++) {
            if (!strcmp(tok[i], "--out")) {
                i++;
                continue;
            }
            k += (size_t)snprintf(prev_args + k, sizeof prev_args - k, "%s%s", k ? " " : "", tok[i]);
        }
    }
    const char *cmd = n > 1 ? tok[1] : "";
    for (int i = 2; i + 1 < n; i++) {
        if (!strcmp(tok[i], "--epochs")) tok[i + 1] = "1";
        if (!strcmp(tok[i], "--episodes")) tok[i + 1] = "2";
        if (!strcmp(cmd, "search") && !strcmp(tok[i], "--sweep")) tok[i + 1] = "3";
        if (!strcmp(tok[i], "--finetune-epochs")) tok[i + 1] = "0.02";
    }
    if (!strcmp(cmd, "train")) {
        if (has(tok, n, "--epochs")) add(tok, &n, "--max-steps", "2");
        add(tok, &n, "--val", "100");
    } else if (!strcmp(cmd, "quantize")) {
        add(tok, &n, "--val", "100");
        add(tok, &n, "--calib-images", "32");
        add(tok, &n, "--batch", "32");
    } else if (!strcmp(cmd, "search")) {
        add(tok, &n, "--episodes", "2");
        add(tok, &n, "--val", "100");
        add(tok, &n, "--eval-images", "32");
        add(tok, &n, "--calib-images", "32");
        add(tok, &n, "--final-epochs", "0");
        add(tok, &n, "--batch", "32");
        add(tok, &n, "--hessian-images", "32");
        add(tok, &n, "--hessian-probes", "3");
    } else if (!strcmp(cmd, "run")) {
        add(tok, &n, "--images", "64");
    } else if (!strcmp(cmd, "calibrate-cpu")) {
        add(tok, &n, "--reps", "3");
        add(tok, &n, "--threads", "1");
    }
    size_t k = (size_t)snprintf(out, cap, "%s", bin_path);
    for (int i = 1; i < n && k < cap; i++)
        if (tok[i][0]) k += (size_t)snprintf(out + k, cap - k, " %s", tok[i]);
    snprintf(out + (k < cap ? k : cap - 1), cap - (k < cap ? k : cap - 1), " 2>&1");
}

/* Run a shell command; returns its exit status, the tail of its output in out. */
static int shell(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = 0, r;
    char chunk[4096];
    out[0] = 0;
    while ((r = fread(chunk, 1, sizeof chunk, p)) > 0) { /* keep the last cap - 1 bytes */
        if (r >= cap - 1) {
            memcpy(out, chunk + r - (cap - 1), cap - 1);
            got = cap - 1;
        } else {
            if (got + r > cap - 1) {
                size_t drop = got + r - (cap - 1);
                memmove(out, out + drop, got - drop);
                got -= drop;
            }
            memcpy(out + got, chunk, r);
            got += r;
        }
    }
    out[got] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_readme_command(void) {
    char cmd[4096], out[3000];
    cheapen(cmds[cur].text, cmd, sizeof cmd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = shell(cmd, out, sizeof out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  %.1f s: README.md line %d\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), cmds[cur].line);
    /* the one outcome other than success the README itself describes (see the top) */
    int refused = rc == 1 && strstr(cmds[cur].text, "--hw cpu") && strstr(cmds[cur].text, "--budget") &&
                  strstr(out, "cannot be met: the cheapest policy the search can reach");
    if (refused) printf("  the measured table has no room under this budget here; the search said so:\n%s", out);
    CHECKF(rc == 0 || refused, "README.md line %d: `%s`\n  ran as `%s`\n  exited %d; output (tail):\n%s",
           cmds[cur].line, cmds[cur].text, cmd, rc, out);
}

/* The first n records of one of Debian's gzipped IDX files, uncompressed, count patched. */
static int copy_idx(const char *src, const char *dst, int hdr, int rec, int n) {
    gzFile g = gzopen(src, "rb");
    if (!g) return -1;
    size_t bytes = (size_t)hdr + (size_t)rec * n;
    unsigned char *b = malloc(bytes);
    int ok = b && gzread(g, b, (unsigned)bytes) == (int)bytes;
    gzclose(g);
    if (ok) {
        b[4] = (unsigned char)(n >> 24), b[5] = (unsigned char)(n >> 16);
        b[6] = (unsigned char)(n >> 8), b[7] = (unsigned char)n;
        ok = test_write_file(dst, b, bytes) == 0;
    }
    free(b);
    return ok ? 0 : -1;
}

/* The scratch directory: the small dataset, the repository's folders, the user's files. */
static int setup(void) {
    const char *src = "/usr/share/datasets/fashion-mnist";
    char a[1200], b[8192], out[3000];
    snprintf(scratch, sizeof scratch, "%.1000s/readme", test_tmpdir());
    snprintf(a, sizeof a, "%s/data/fashion-mnist", scratch);
    snprintf(b, sizeof b, "mkdir -p '%s' '%s/runs/accuracy'", a, scratch);
    if (system(b) != 0) return -1;
    static const struct { const char *name; int hdr, rec, n; } files[] = {
        {"train-images-idx3-ubyte", 16, 784, 1000}, {"train-labels-idx1-ubyte", 8, 1, 1000},
        {"t10k-images-idx3-ubyte", 16, 784, 100},   {"t10k-labels-idx1-ubyte", 8, 1, 100}};
    for (int i = 0; i < 4; i++) {
        char s[200], d[1300];
        snprintf(s, sizeof s, "%s/%s.gz", src, files[i].name);
        snprintf(d, sizeof d, "%s/%s", a, files[i].name);
        if (copy_idx(s, d, files[i].hdr, files[i].rec, files[i].n)) {
            fprintf(stderr, "  cannot read %s (dataset-fashion-mnist; scripts/deps.sh installs it)\n", s);
            return -1;
        }
    }
    snprintf(a, sizeof a, "%s/data", scratch);
    setenv("MIXQ_DATA_DIR", a, 1);
    unsetenv("MIXQ_CPU_TABLE");
    snprintf(b, sizeof b,
             "cd '%s' && ln -s '%s/examples' examples && ln -s '%s/tests' tests && "
             "cp '%s/tests/fixtures/onnx/resnet_tiny.onnx' model.onnx && cp '%s/hw/bismo_edge.json' my_accelerator.json",
             scratch, repo, repo, repo, repo);
    if (system(b) != 0) return -1;
    if (chdir(scratch) != 0) return -1;
    /* runs/accuracy/resnet20.mixq, as the hint for a missing model file says */
    cheapen("build/release/mixq train --model resnet20 --data fashion-mnist --epochs 1 --out "
            "runs/accuracy/resnet20.mixq", b, sizeof b);
    if (shell(b, out, sizeof out) != 0) {
        fprintf(stderr, "  `%s` failed:\n%s\n", b, out);
        return -1;
    }
    prev_args[0] = 0;
    return 0;
}

static void test_readme_found(void) {
    CHECKF(n_cmds >= 15, "README.md: only %d `build/release/mixq` lines in ```sh blocks", n_cmds);
}

int main(void) {
    const char *b = getenv("MIXQ_BIN");
    b = b && *b ? b : "build/release/mixq";
    if (!getcwd(repo, sizeof repo) || read_readme("README.md") || access(b, X_OK)) {
        fprintf(stderr, "test_readme: run from the repository root, after the build (MIXQ_BIN=%s)\n", b);
        return 1;
    }
    if (b[0] == '/') snprintf(bin_path, sizeof bin_path, "%.2000s", b);
    else snprintf(bin_path, sizeof bin_path, "%s/%.1000s", repo, b);
    TEST_RUN(test_readme_found);
    if (setup()) {
        fprintf(stderr, "test_readme: cannot prepare %s\n", scratch);
        return 1;
    }
    for (cur = 0; cur < n_cmds; cur++) {
        static char name[MAX_CMDS][1100];
        snprintf(name[cur], sizeof name[cur], "README.md:%d %s", cmds[cur].line, cmds[cur].text);
        test_run_one(name[cur], test_readme_command);
    }
    if (!test_fail_count) { /* kept for a look when a command failed */
        char rm[1200];
        snprintf(rm, sizeof rm, "rm -rf '%s'", scratch);
        if (chdir(repo) != 0 || system(rm) != 0) fprintf(stderr, "test_readme: could not remove %s\n", scratch);
    }
    return test_summary();
}
