/* The per-message cost of mixq's MPI scoring (issue 21): rank 0 sends a task of N ints to rank
 * 1, which answers 3 doubles (the shape of src/search/mpi.c's exchange), repeated; prints the
 * median round trip over REPS rounds for a few task sizes. Built by bench/mpi.sh with mpicc (not
 * part of the library build). Usage: mpirun -np 2 bench/mpi_pingpong [REPS] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int reps = argc > 1 ? atoi(argv[1]) : 2000;
    if (size != 2 || reps < 10) {
        if (!rank) fprintf(stderr, "usage: mpirun -np 2 %s [REPS >= 10]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    /* lenet5 layer-wise (2 + 2 x 5), resnet20 layer-wise (2 + 2 x 22), resnet20 per-kernel (+ 794) */
    const int sizes[3] = {12, 46, 840};
    const char *what[3] = {"lenet5, layer-wise", "resnet20, layer-wise", "resnet20, per-kernel"};
    int *buf = calloc(1000, sizeof(int));
    double res[3] = {0, 0, 0}, *t = malloc(sizeof(double) * (size_t)reps);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < reps; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = MPI_Wtime();
            if (!rank) {
                MPI_Send(buf, sizes[k], MPI_INT, 1, 11, MPI_COMM_WORLD);
                MPI_Recv(res, 3, MPI_DOUBLE, 1, 12, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else {
                MPI_Recv(buf, 1000, MPI_INT, 0, 11, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(res, 3, MPI_DOUBLE, 0, 12, MPI_COMM_WORLD);
            }
            t[i] = MPI_Wtime() - t0;
        }
        qsort(t, (size_t)reps, sizeof(double), cmp);
        if (!rank)
            printf("%-22s task %4zu bytes, answer 24 bytes: round trip median %.2f us (p90 %.2f us, %d rounds)\n",
                   what[k], sizes[k] * sizeof(int), 1e6 * t[reps / 2], 1e6 * t[reps * 9 / 10], reps);
    }
    free(buf);
    free(t);
    MPI_Finalize();
    return 0;
}
