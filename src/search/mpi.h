/* Candidate scoring over MPI (internal; see mpi.c). Without MIXQ_MPI every function is the
 * one-process answer: rank 0 of 1, nothing to send. */
#ifndef MIXQ_SEARCH_MPI_H
#define MIXQ_SEARCH_MPI_H

#include "mixq/mixq.h"

/* One candidate to score: bits w[L], a[L], per-kernel kb[nk] (NULL: layer-wise). */
typedef struct mq_task {
    const int *w, *a, *kb;
    double acc;      /* out: validation accuracy, % */
} mq_task;

/* Scores one task in this process (the search's own scoring, src/search/search.c). */
typedef mixq_status (*mq_score_fn)(void *user, const int *w, const int *a, const int *kb, double *acc);

/* Rank 0: score tasks[0..n) over the live workers and this process; every result is the
 * function of the task alone, so the order of arrival does not matter. A worker silent past
 * timeout_s (0: wait for ever) is dropped and its task scored elsewhere; *lost counts them.
 * L, nk: the lengths of w/a and kb. */
mixq_status mq_mpi_score(mq_task *tasks, int n, int L, int nk, double timeout_s, mq_score_fn fn, void *user,
                         int *lost);
/* Ranks 1..N-1: score what rank 0 sends until it says stop. */
mixq_status mq_mpi_worker(int L, int nk, mq_score_fn fn, void *user);
/* Rank 0, at the end of a search: stop the workers. */
void mq_mpi_stop_workers(void);

#endif
