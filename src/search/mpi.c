/* Candidate scoring over MPI (Open MPI; issue 21). `mpirun -np N mixq search ...` starts N
 * copies of the same search: each loads the model and data itself from the same paths (a
 * shared filesystem, or the same files on every node, is assumed), rank 0 runs the agent, the
 * cache and the run directory, and ranks 1..N-1 only score what it sends. Rank 0 scores too
 * while every worker is busy, so 2 ranks on 2 cores score two candidates at a time.
 *
 * Messages (MPI_COMM_WORLD): rank 0 -> worker TAG_TASK ints [id, has_kb, w[L], a[L], kb[nk]],
 * TAG_STOP (empty); worker -> rank 0 TAG_RESULT doubles [id, acc, status]. A score is a function
 * of the candidate and the run's settings alone (fixed seeds, a deterministic engine), so which
 * rank scores a candidate changes nothing: with the same --parallel the files are identical for
 * any number of ranks.
 *
 * Faults: MPI_ERRORS_RETURN on the communicator. Rank 0 polls (MPI_Test) and gives a worker
 * --worker-timeout seconds per candidate; past that it is dropped (never sent to again) and its
 * candidate goes to another rank. Open MPI's mpirun ends the whole job when a process dies
 * unless told not to (`--mca orte_abort_on_non_zero_status 0`); a dropped rank never reaches
 * MPI_Finalize, so after one, rank 0 skips it (mixq_mpi_finalize) and mpirun reports the lost
 * process: the run directory is complete all the same. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "search/mpi.h"

/* tasks scored in this process, in order */
static mixq_status score_here(mq_task *tasks, int n, mq_score_fn fn, void *user) {
    for (int i = 0; i < n; i++) {
        mixq_status st = fn(user, tasks[i].w, tasks[i].a, tasks[i].kb, &tasks[i].acc);
        if (st) return st;
    }
    return MIXQ_OK;
}

#ifdef MIXQ_MPI
#include <mpi.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

enum { TAG_TASK = 11, TAG_RESULT = 12, TAG_STOP = 13 };

static int g_init, g_rank, g_size, g_lost;
static long g_pid0;          /* rank 0's process */
static int g_same_host;      /* this worker runs on rank 0's host */

static long host_hash(const char *h) {
    long v = 0;
    for (const char *c = h; *c; c++) v = v * 31 + (unsigned char)*c;
    return v;
}
static unsigned char *g_dead; /* [size] */

int mixq_mpi_init(int *argc, char ***argv) {
    if (g_init) return g_size;
    /* only under a launcher: a plain run never starts MPI (no singleton daemon, no messages) */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK")) return 1;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_dead = calloc((size_t)g_size, 1);
    /* rank 0's pid and host: a worker on the same host notices when it is gone */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    long id[2] = {(long)getpid(), host_hash(host)};
    MPI_Bcast(id, 2, MPI_LONG, 0, MPI_COMM_WORLD);
    g_pid0 = id[0];
    g_same_host = g_rank > 0 && id[1] == host_hash(host);
    g_init = 1;
    return g_size;
}

void mixq_mpi_finalize(void) {
    if (!g_init) return;
    g_init = 0;
    free(g_dead);
    g_dead = NULL;
    if (!g_lost) MPI_Finalize(); /* with a lost rank it would wait for ever */
}

int mixq_mpi_rank(void) { return g_init ? g_rank : 0; }
int mixq_mpi_available(void) { return 1; }
int mixq_mpi_size(void) { return g_init ? g_size : 1; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct slot {
    int task;          /* -1: idle */
    double t0;
    double res[3];
    MPI_Request rq;
} slot;

mixq_status mq_mpi_score(mq_task *tasks, int n, int L, int nk, double timeout_s, mq_score_fn fn, void *user,
                         int *lost) {
    *lost = 0;
    const int W = mixq_mpi_size();
    if (W <= 1 || mixq_mpi_rank() != 0) return score_here(tasks, n, fn, user); /* one process */
    const size_t len = 2 + 2 * (size_t)L + (size_t)nk;
    int *buf = mq_malloc((size_t)W * len, sizeof(int), "MPI task buffers");
    slot *sl = mq_calloc((size_t)W, sizeof *sl, "MPI workers");
    int *state = mq_calloc((size_t)(n > 0 ? n : 1), sizeof(int), "MPI tasks"); /* 0 queued, 1 out, 2 done */
    if (!buf || !sl || !state) {
        free(buf), free(sl), free(state);
        return MIXQ_ERR_NOMEM;
    }
    for (int r = 0; r < W; r++) sl[r].task = -1;
    mixq_status st = MIXQ_OK;
    int done = 0, next = 0;
    while (done < n && !st) {
        /* hand a queued task to every idle live worker */
        for (int r = 1; r < W; r++) {
            if (g_dead[r] || sl[r].task >= 0) continue;
            while (next < n && state[next]) next++;
            if (next >= n) break;
            int *b = buf + (size_t)r * len;
            const mq_task *t = &tasks[next];
            b[0] = next, b[1] = t->kb != NULL;
            memcpy(b + 2, t->w, sizeof(int) * (size_t)L);
            memcpy(b + 2 + L, t->a, sizeof(int) * (size_t)L);
            if (t->kb) memcpy(b + 2 + 2 * L, t->kb, sizeof(int) * (size_t)nk);
            int cnt = (int)(2 + 2 * (size_t)L + (t->kb ? (size_t)nk : 0));
            if (MPI_Send(b, cnt, MPI_INT, r, TAG_TASK, MPI_COMM_WORLD) != MPI_SUCCESS ||
                MPI_Irecv(sl[r].res, 3, MPI_DOUBLE, r, TAG_RESULT, MPI_COMM_WORLD, &sl[r].rq) != MPI_SUCCESS) {
                g_dead[r] = 1, g_lost++, ++*lost;
                continue;
            }
            sl[r].task = next, sl[r].t0 = now_s(), state[next] = 1;
        }
        /* collect what has come back; drop a worker past its time */
        int busy = 0;
        for (int r = 1; r < W && !st; r++) {
            if (g_dead[r] || sl[r].task < 0) continue;
            int flag = 0;
            if (MPI_Test(&sl[r].rq, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) flag = -1;
            if (flag == 1) {
                const int id = sl[r].task;
                if ((int)sl[r].res[0] != id)
                    st = mq_err(MIXQ_ERR_STATE, "MPI: rank %d answered candidate %d, sent %d", r, (int)sl[r].res[0],
                                id);
                else if (sl[r].res[2] != 0)
                    st = mq_err((mixq_status)(int)sl[r].res[2], "MPI: rank %d could not score candidate %d (status "
                                "%d; its own message went to its stderr)", r, id, (int)sl[r].res[2]);
                else tasks[id].acc = sl[r].res[1], state[id] = 2, done++;
                sl[r].task = -1;
            } else if (flag < 0 || (timeout_s > 0 && now_s() - sl[r].t0 > timeout_s)) {
                MPI_Cancel(&sl[r].rq);
                g_dead[r] = 1, g_lost++, ++*lost;
                state[sl[r].task] = 0; /* back in the queue */
                if (sl[r].task < next) next = sl[r].task;
                sl[r].task = -1;
            } else {
                busy++;
            }
        }
        if (st || done == n) break;
        /* every worker busy (or none left) and work queued: score one here */
        while (next < n && state[next]) next++;
        if (next < n) {
            const int id = next;
            state[id] = 1;
            st = fn(user, tasks[id].w, tasks[id].a, tasks[id].kb, &tasks[id].acc);
            if (!st) state[id] = 2, done++;
        } else if (busy) {
            nanosleep(&(struct timespec){0, 2000000}, NULL); /* 2 ms between polls */
        }
    }
    free(buf), free(sl), free(state);
    return st;
}

mixq_status mq_mpi_worker(int L, int nk, mq_score_fn fn, void *user) {
    const size_t len = 2 + 2 * (size_t)L + (size_t)nk;
    int *b = mq_malloc(len, sizeof(int), "MPI task buffer");
    if (!b) return MIXQ_ERR_NOMEM;
    mixq_status st = MIXQ_OK;
    double last_check = now_s();
    for (;;) {
        /* wait without spinning (Open MPI's blocking receive polls a core at 100 %, which a rank
         * scoring on the same cores would feel), and leave when rank 0 is gone from this host
         * (with mpirun's default, a dead rank ends the whole job anyway) */
        int flag = 0;
        MPI_Status ms;
        while (!flag) {
            if (MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &ms) != MPI_SUCCESS) break;
            if (flag) break;
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            if (g_same_host && now_s() - last_check > 1.0) {
                last_check = now_s();
                if (kill((pid_t)g_pid0, 0) && errno == ESRCH) break;
            }
        }
        if (!flag || MPI_Recv(b, (int)len, MPI_INT, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &ms) != MPI_SUCCESS) {
            st = mq_err(MIXQ_ERR_IO, "MPI: rank %d lost rank 0", g_rank);
            break;
        }
        if (ms.MPI_TAG == TAG_STOP) break;
        double res[3] = {b[0], 0, 0};
        mixq_status s2 = fn(user, b + 2, b + 2 + L, b[1] ? b + 2 + 2 * L : NULL, &res[1]);
        res[2] = (double)s2;
        if (s2) fprintf(stderr, "mixq rank %d: candidate %d: %s\n", g_rank, b[0], mixq_last_error());
        if (MPI_Send(res, 3, MPI_DOUBLE, 0, TAG_RESULT, MPI_COMM_WORLD) != MPI_SUCCESS) {
            st = mq_err(MIXQ_ERR_IO, "MPI: rank %d cannot answer rank 0", g_rank);
            break;
        }
    }
    free(b);
    return st;
}

void mq_mpi_stop_workers(void) {
    static int stopped;
    if (!g_init || g_rank != 0 || stopped) return;
    stopped = 1;
    for (int r = 1; r < g_size; r++) {
        if (!g_dead[r]) {
            MPI_Send(NULL, 0, MPI_INT, r, TAG_STOP, MPI_COMM_WORLD);
            continue;
        }
        /* dropped: dead, or only slower than --worker-timeout and waiting for work; a send that
         * may never complete is not waited for */
        MPI_Request rq;
        if (MPI_Isend(NULL, 0, MPI_INT, r, TAG_STOP, MPI_COMM_WORLD, &rq) == MPI_SUCCESS) MPI_Request_free(&rq);
    }
}

#else /* built without MPI: one process */

int mixq_mpi_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 1;
}
void mixq_mpi_finalize(void) {}
int mixq_mpi_rank(void) { return 0; }
int mixq_mpi_available(void) { return 0; }
int mixq_mpi_size(void) { return 1; }

mixq_status mq_mpi_score(mq_task *tasks, int n, int L, int nk, double timeout_s, mq_score_fn fn, void *user,
                         int *lost) {
    (void)L, (void)nk, (void)timeout_s;
    *lost = 0;
    return score_here(tasks, n, fn, user);
}

mixq_status mq_mpi_worker(int L, int nk, mq_score_fn fn, void *user) {
    (void)L, (void)nk, (void)fn, (void)user;
    return mq_err(MIXQ_ERR_STATE, "MPI worker in a build without MPI");
}

void mq_mpi_stop_workers(void) {}

#endif
