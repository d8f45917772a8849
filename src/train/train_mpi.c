/* train_mpi.c: the trainer's collectives (train_comm.h) over MPI, and the launch helpers the
 * `train` command uses (init, local rank, abort). Built with MPI when CMake's VKEBM_MPI is on
 * (VKEBM_WITH_MPI); otherwise only the stubs at the end, which say so.
 *
 * Owns one communicator (a duplicate of MPI_COMM_WORLD with errors returned instead of fatal,
 * so a failed call is reported by the trainer with the rank and MPI's reason before the job is
 * aborted). Fixed order, whatever MPI would pick:
 *   sum_f64  : MPI_Allgather of every rank's vector, then each rank adds them in rank order
 *              (small vectors: the energies' sums, flags);
 *   mean_f32 : reduce-scatter then all-gather by hand: rank q owns chunk q of the vector,
 *              receives every rank's copy of it (MPI_Alltoallv), adds them in rank order in
 *              double, divides by N, and the chunks go back to everyone (MPI_Allgatherv). Each
 *              rank sends and receives ~2 (N-1)/N of the vector, as a ring allreduce does, and
 *              every element is added once, by one rank, so all ranks get the same bits;
 *   exchange : MPI_Alltoallv of items (a contiguous datatype of item_bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkebm/train_comm.h"

/* A launcher announced itself: Open MPI's mpirun, MPICH/Intel's Hydra (PMI), PMIx (srun
 * --mpi=pmix, prterun). */
int ebm_mpi_launched_size(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) {
      long n = strtol(v, NULL, 10);
      return n > 0 && n < (1L << 30) ? (int)n : 1;
    }
  }
  return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

#ifdef VKEBM_WITH_MPI
#include <mpi.h>

typedef struct mpi_ctx {
  MPI_Comm comm;
  int rank, size;
} mpi_ctx;
static mpi_ctx g_mpi;

static int check(int rc, const char *call) {
  if (rc == MPI_SUCCESS) return 0;
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fprintf(stderr, "vkebm: rank %d: %s failed: %s\n", g_mpi.rank, call, msg);
  return -1;
}

static int mpi_sum_f64(void *ctx, double *v, size_t n) {
  mpi_ctx *m = ctx;
  double *all = malloc(n * m->size * sizeof(double));
  if (!all) return -1;
  int rc = check(MPI_Allgather(v, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, m->comm),
                 "MPI_Allgather");
  if (rc == 0)
    for (size_t i = 0; i < n; i++) {
      double s = 0;
      for (int r = 0; r < m->size; r++) s += all[(size_t)r * n + i];
      v[i] = s;
    }
  free(all);
  return rc;
}

static int mpi_mean_f32(void *ctx, float *v, size_t n) {
  mpi_ctx *m = ctx;
  const int N = m->size;
  int *cnt = calloc((size_t)4 * N, sizeof(int));
  if (!cnt) return -1;
  int *len = cnt, *start = cnt + N, *rcnt = cnt + 2 * N, *rdis = cnt + 3 * N;
  for (int q = 0; q < N; q++) { /* chunk q: [q n / N, (q + 1) n / N) */
    start[q] = (int)(n * q / N);
    len[q] = (int)(n * (q + 1) / N) - start[q];
  }
  const int mine = len[m->rank];
  for (int r = 0; r < N; r++) rcnt[r] = mine, rdis[r] = r * mine;
  float *recv = malloc(sizeof(float) * ((size_t)mine * N + 1));
  float *part = malloc(sizeof(float) * ((size_t)mine + 1));
  int rc = -1;
  if (recv && part &&
      check(MPI_Alltoallv(v, len, start, MPI_FLOAT, recv, rcnt, rdis, MPI_FLOAT, m->comm),
            "MPI_Alltoallv (gradient)") == 0) {
    for (int i = 0; i < mine; i++) {
      double s = 0;
      for (int r = 0; r < N; r++) s += recv[(size_t)r * mine + i];
      part[i] = (float)(s / N);
    }
    rc = check(MPI_Allgatherv(part, mine, MPI_FLOAT, v, len, start, MPI_FLOAT, m->comm),
               "MPI_Allgatherv (gradient)");
  }
  free(recv);
  free(part);
  free(cnt);
  return rc;
}

static int mpi_exchange(void *ctx, const void *send, const int *send_counts, void *recv,
                        const int *recv_counts, size_t item_bytes) {
  mpi_ctx *m = ctx;
  const int N = m->size;
  int *dis = malloc(sizeof(int) * 2 * N);
  if (!dis || item_bytes > (size_t)1 << 30) {
    free(dis);
    return -1;
  }
  for (int q = 0, s = 0, r = 0; q < N; q++) {
    dis[q] = s, s += send_counts[q];
    dis[N + q] = r, r += recv_counts[q];
  }
  MPI_Datatype item;
  int rc = check(MPI_Type_contiguous((int)item_bytes, MPI_BYTE, &item), "MPI_Type_contiguous");
  if (rc == 0) {
    MPI_Type_commit(&item);
    rc = check(MPI_Alltoallv(send, send_counts, dis, item, recv, recv_counts, dis + N, item,
                             m->comm),
               "MPI_Alltoallv (replay buffer)");
    MPI_Type_free(&item);
  }
  free(dis);
  return rc;
}

int ebm_mpi_built(void) { return 1; }

const char *ebm_mpi_version(void) {
  static char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (!v[0] && MPI_Get_library_version(v, &len) == MPI_SUCCESS) v[strcspn(v, "\n")] = 0;
  return v[0] ? v : "MPI";
}

int ebm_mpi_init(ebm_train_comm *comm, int *local_rank, int *local_size, char *err,
                 size_t errlen) {
  /* Open MPI busy-polls while a rank waits in a collective; on a machine whose cores are
   * shared (more ranks and threads than cores, other jobs) the spinning rank takes the core its
   * partner needs: 2 ranks of the tiny network ran 2.5x slower here. Yield instead, unless the
   * user chose (mpirun --mca mpi_yield_when_idle 0 sets this variable). */
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    snprintf(err, errlen, "MPI_Init failed");
    return -1;
  }
  MPI_Comm local;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &g_mpi.comm) != MPI_SUCCESS ||
      MPI_Comm_set_errhandler(g_mpi.comm, MPI_ERRORS_RETURN) != MPI_SUCCESS ||
      MPI_Comm_rank(g_mpi.comm, &g_mpi.rank) != MPI_SUCCESS ||
      MPI_Comm_size(g_mpi.comm, &g_mpi.size) != MPI_SUCCESS ||
      MPI_Comm_split_type(g_mpi.comm, MPI_COMM_TYPE_SHARED, g_mpi.rank, MPI_INFO_NULL, &local) !=
          MPI_SUCCESS) {
    snprintf(err, errlen, "setting up the MPI communicator failed");
    return -1;
  }
  MPI_Comm_rank(local, local_rank);
  MPI_Comm_size(local, local_size);
  MPI_Comm_free(&local);
  *comm = (ebm_train_comm){.rank = g_mpi.rank, .size = g_mpi.size, .ctx = &g_mpi,
                           .sum_f64 = mpi_sum_f64, .mean_f32 = mpi_mean_f32,
                           .exchange = mpi_exchange};
  return 0;
}

void ebm_mpi_finalize(void) {
  MPI_Comm_free(&g_mpi.comm);
  MPI_Finalize();
}

void ebm_mpi_abort(int code) {
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);
}

#else /* no MPI in this build */

int ebm_mpi_built(void) { return 0; }
const char *ebm_mpi_version(void) { return "not built in (CMake VKEBM_MPI=OFF, or no MPI found)"; }
int ebm_mpi_init(ebm_train_comm *comm, int *local_rank, int *local_size, char *err,
                 size_t errlen) {
  snprintf(err, errlen, "this vkebm was built without MPI (CMake VKEBM_MPI)");
  return -1;
}
void ebm_mpi_finalize(void) {}
void ebm_mpi_abort(int code) {
  fflush(stderr);
  _exit(code);
}

#endif
