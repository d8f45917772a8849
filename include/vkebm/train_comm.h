/* train_comm.h: how the replicas of one data-parallel training run talk (docs/distributed.md).
 *
 * `mpirun -np N vkebm train` runs N replicas (ranks) of one run. Each rank trains B chains of
 * the global batch of N B (chains g = rank B .. rank B + B - 1), renders its own slice of the
 * positives, keeps its shard of the replay buffer (slot s on rank s % N), and every iteration
 * the ranks average their gradients, so all of them take the same Adam step and hold the same
 * weights. Under the same seed, N ranks of batch B draw exactly the scenes, chain starts, buffer
 * picks and Langevin noise that one process of batch N B would; they differ from it only in
 * the order the gradient's terms are added (tests/cli/mpi.sh measures by how much).
 *
 * The trainer (src/train/train.c) knows nothing of MPI: it calls the three collectives below
 * through function pointers. src/train/train_mpi.c implements them with MPI when the build has
 * it (CMake VKEBM_MPI); tests/test_train_dist.c implements them with threads. Every call is
 * collective: every rank makes the same calls in the same order with matching sizes. Each
 * returns 0, or -1 when the run cannot go on (the caller stops with an error).
 *
 * Reductions add in a fixed order (rank 0, 1, ..., in double), whatever algorithm the MPI
 * library would pick for an MPI_Allreduce, so every rank gets the same bits (the replicas never
 * drift apart) and a run is reproducible for a given N.
 */
#ifndef VKEBM_TRAIN_COMM_H
#define VKEBM_TRAIN_COMM_H

#include <stddef.h>

typedef struct ebm_train_comm {
  int rank, size; /* this replica and the number of replicas; rank 0 writes the files */
  void *ctx;
  /* v[0..n) <- the sum over ranks of every rank's v, added in rank order in double. */
  int (*sum_f64)(void *ctx, double *v, size_t n);
  /* v[0..n) <- the mean over ranks: the rank-order sum in double divided by size, rounded once
   * to float. */
  int (*mean_f32)(void *ctx, float *v, size_t n);
  /* All-to-all of items of item_bytes bytes: send holds send_counts[0] items for rank 0, then
   * send_counts[1] for rank 1, ...; recv gets recv_counts[0] items from rank 0, then rank 1's,
   * ... (each side knows both counts: they follow from a plan every rank computes alike). */
  int (*exchange)(void *ctx, const void *send, const int *send_counts, void *recv,
                  const int *recv_counts, size_t item_bytes);
} ebm_train_comm;

/* Whether every rank holds the same bytes (a 64-bit hash compared with rank 0's): *same = 1 on
 * every rank when all agree, else 0 on every rank. comm NULL: 1. 0 or -1 (comm failed). */
int ebm_train_comm_same(const ebm_train_comm *comm, const void *data, size_t bytes, int *same);

/* ---- MPI (src/train/train_mpi.c) ----------------------------------------------------------- */

/* 1 when this build has MPI support (CMake VKEBM_MPI), else 0. */
int ebm_mpi_built(void);
/* The MPI library's one-line version ("Open MPI v4.1.4, ..."), or "no MPI support built in". */
const char *ebm_mpi_version(void);
/* The rank count a launcher (mpirun, mpiexec, srun) announced in the environment (Open MPI's
 * OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE, SLURM's with a PMI), or 0 when none did: a plain
 * `vkebm train` then never touches MPI. */
int ebm_mpi_launched_size(void);

/* MPI_Init (funnelled threads) and a communicator of its own with errors returned, not fatal.
 * Fills *comm (its ctx belongs to this file) and the rank's index and count among the ranks on
 * its machine (for picking a device). 0, or -1 with a reason. */
int ebm_mpi_init(ebm_train_comm *comm, int *local_rank, int *local_size, char *err,
                 size_t errlen);
/* MPI_Finalize, after a run every rank finished alike. */
void ebm_mpi_finalize(void);
/* Ends every rank of the job now (MPI_Abort) with exit code `code`: for a failure on one rank
 * that the others, waiting in a collective, cannot know of. Does not return. */
void ebm_mpi_abort(int code) __attribute__((noreturn));

#endif /* VKEBM_TRAIN_COMM_H */
