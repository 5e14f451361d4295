/* Candidate scoring over MPI (issue 21), through the CLI under Open MPI's mpirun on localhost:
 * the same --parallel gives the same files for 1, 2 and 3 ranks (random and haq); a worker rank
 * killed mid-run leaves a complete run (its candidates scored by the others); rank 0 killed, the
 * run resumes with --resume to the uninterrupted files. Needs a build with MPI (make MPI=1, the
 * default where Open MPI is installed: scripts/deps.sh installs it) and mpirun. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mixq/mixq.h"
#include "test.h"

static const char *bin(void) {
    const char *b = getenv("MIXQ_BIN");
    return b && *b ? b : "build/release/mixq";
}

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *model;
static char args[2048];

/* mixq search ... --out DIR, under mpirun -np N when N > 0 (output to DIR.log) */
/* keep_going: mpirun outlives a rank that dies (--mca orte_abort_on_non_zero_status 0) */
static int search_(int np, const char *agent_args, const char *dir, const char *extra, int keep_going) {
    char cmd[8192];
    /* Open MPI's own allocations at exit read as leaks to LeakSanitizer (the ASan pass): the
     * other sanitizer checks stay on */
    snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 %s%s%s%s%s %s search %s %s %s --out %s %s > %s.log 2>&1",
             np ? "mpirun --allow-run-as-root --oversubscribe " : "",
             np && keep_going ? "--mca orte_abort_on_non_zero_status 0 " : "", np ? "-np " : "", np ? (np == 2 ? "2" : "3") : "",
             np ? " --quiet" : "", bin(), model, args, agent_args, dir, extra ? extra : "", dir);
    return sh(cmd);
}
static int search(int np, const char *agent_args, const char *dir, const char *extra) {
    return search_(np, agent_args, dir, extra, 0);
}

static int lines(const char *dir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *t = test_slurp(p);
    int n = 0;
    for (const char *c = t; c && *c; c++) n += *c == '\n';
    free(t);
    return n;
}

static int ready(void) {
    if (!mixq_mpi_available()) {
        test_skip("this build has no MPI (make MPI=1; scripts/deps.sh installs Open MPI)");
        return 0;
    }
    if (sh("command -v mpirun > /dev/null 2>&1")) {
        test_skip("mpirun not found (Debian openmpi-bin; scripts/deps.sh installs it)");
        return 0;
    }
    if (!test_need_fmnist()) return 0;
    if (!(model = test_lenet5_file())) return 0;
    snprintf(args, sizeof args, "--data fashion-mnist --hw bismo_edge --budget latency=0.8 --finetune-images 256 "
             "--eval-images 300 --calib-images 64 --val 1000 --final-epochs 0 --threads 1 --report-every 0");
    return 1;
}

/* the same --parallel: identical files with 1, 2 and 3 ranks (random, haq and releq, whose
 * checkpoints hold the agents' weights after their batched updates) */
static void test_mpi_identical(void) {
    if (!ready()) return;
    const char *agents[3] = {"--agent random --episodes 12 --parallel 4", "--agent haq --episodes 6 --warmup 2 --parallel 2",
                             "--agent releq --episodes 6 --parallel 3"};
    /* under the sanitizers (make test's ASan pass, 2-3x slower): random on 1 and 2 ranks, which
     * runs every line of the MPI exchange; the release pass runs them all */
    const int n_agents = test_sanitized() ? 1 : 3, three = !test_sanitized();
    for (int g = 0; g < n_agents; g++) {
        char d1[1100], d2[1100], d3[1100];
        snprintf(d1, sizeof d1, "%s/mpi%d_1", test_tmpdir(), g);
        snprintf(d2, sizeof d2, "%s/mpi%d_2", test_tmpdir(), g);
        snprintf(d3, sizeof d3, "%s/mpi%d_3", test_tmpdir(), g);
        CHECKF(search(0, agents[g], d1, NULL) == 0, "one process: see %s.log", d1);
        CHECKF(search(2, agents[g], d2, NULL) == 0, "2 ranks: see %s.log", d2);
        if (three) CHECKF(search(3, agents[g], d3, NULL) == 0, "3 ranks: see %s.log", d3);
        const char *files[] = {"evals.jsonl", "best_policy.json", "pareto.csv"}; /* state.json: seconds */
        for (int f = 0; f < 3; f++)
            CHECKF(test_same_run_file(d1, d2, files[f]) && (!three || test_same_run_file(d1, d3, files[f])),
                   "%s: %s differs across ranks", agents[g], files[f]);
        CHECK(lines(d1, "evals.jsonl") >= 3);
        if (g >= 1) CHECK(test_same_run_file(d1, d2, "agent-6.ckpt") && test_same_run_file(d1, d3, "agent-6.ckpt"));
    }
}

/* kill -9 the process of rank `rank` of a mixq run writing to dir once evals.jsonl has `after`
 * lines (in the background); returns at once */
static void kill_rank_later(const char *dir, int rank, int after) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "( for i in $(seq 600); do n=$(cat %s/evals.jsonl 2>/dev/null | wc -l); [ \"$n\" -ge %d ] && break; "
             "sleep 0.1; done; for p in $(pgrep -f 'search %s'); do "
             "if tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=%d'; then "
             "kill -9 $p; fi; done ) > /dev/null 2>&1 &",
             dir, after, model, rank);
    sh(cmd);
}

/* a worker killed mid-run: its candidate goes to another rank, the files are complete */
static void test_mpi_worker_killed(void) {
    if (!ready()) return;
    const char *ag = "--agent random --episodes 16 --parallel 4 --worker-timeout 6";
    char d1[1100], d3[1100];
    snprintf(d1, sizeof d1, "%s/mpik_1", test_tmpdir());
    snprintf(d3, sizeof d3, "%s/mpik_3", test_tmpdir());
    CHECKF(search(0, ag, d1, NULL) == 0, "one process: see %s.log", d1);
    kill_rank_later(d3, 1, 4);
    search_(3, ag, d3, NULL, 1); /* mpirun reports the lost rank and exits non-zero */
    CHECKF(test_same_run_file(d1, d3, "evals.jsonl") && test_same_run_file(d1, d3, "best_policy.json"),
           "a worker killed: %s differs from the one-process run (see %s.log)", d3, d3);
    char p[1200];
    snprintf(p, sizeof p, "%s/summary.json", d3);
    char *sum = test_slurp(p);
    CHECKF(sum && strstr(sum, "\"workers_lost\": ") && !strstr(sum, "\"workers_lost\": 0"), "summary.json: %s",
           sum ? sum : "(missing)"); /* 1, or 2 if a loaded machine made the other worker late */
    free(sum);
}

/* rank 0 killed: --resume (under mpirun again) ends with the uninterrupted run's files */
static void test_mpi_resume(void) {
    /* under the sanitizers (47 s, the longest test of make test's ASan pass) the release pass
     * runs it; the resume path runs under them in test_search_cache_resume and fuzz_rundir */
    if (test_sanitized()) return;
    if (!ready()) return;
    const char *ag = "--agent haq --episodes 12 --warmup 3 --parallel 2";
    char d1[1100], d2[1100];
    snprintf(d1, sizeof d1, "%s/mpir_1", test_tmpdir());
    snprintf(d2, sizeof d2, "%s/mpir_2", test_tmpdir());
    CHECKF(search(0, ag, d1, NULL) == 0, "one process: see %s.log", d1);
    kill_rank_later(d2, 0, 5);
    CHECK(search(2, ag, d2, NULL) != 0); /* rank 0 killed: mpirun ends the job */
    CHECKF(lines(d2, "evals.jsonl") < lines(d1, "evals.jsonl"), "the kill came too late to test anything");
    CHECKF(search(2, ag, d2, "--resume") == 0, "resume: see %s.log", d2);
    CHECKF(test_same_run_file(d1, d2, "evals.jsonl") && test_same_run_file(d1, d2, "best_policy.json") &&
           test_same_run_file(d1, d2, "agent-12.ckpt"), "resumed under mpirun: the files differ from the uninterrupted run");
}

int main(void) {
    TEST_RUN(test_mpi_identical);
    TEST_RUN(test_mpi_worker_killed);
    TEST_RUN(test_mpi_resume);
    return test_summary();
}
