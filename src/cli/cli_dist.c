/* cli_dist.c: the `train` command's side of data-parallel runs (docs/distributed.md): starting
 * MPI when a launcher started this process, the rank's device and threads, agreeing across
 * ranks on setup errors and on stopping, and ending the job when one rank fails alone.
 *
 * The rules that keep a job from hanging: a failure every rank meets alike (a bad flag, a
 * checkpoint for another rank count, divergence: the energies are summed over the ranks) ends
 * every rank with the same exit code through MPI_Finalize; a failure on one rank only (its
 * device, a write on rank 0) calls MPI_Abort, which ends the whole job at once with that code,
 * since the others wait in a collective they cannot leave. A rank that dies is the launcher's
 * to see: mpirun ends the job when a rank exits abnormally (Open MPI and MPICH's Hydra do by
 * default) and exits non-zero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_dist.h"

int cli_dist_start(cli_dist *d, const char *cmd) {
  memset(d, 0, sizeof *d);
  d->size = d->local_size = 1;
  const int launched = ebm_mpi_launched_size();
  if (!launched) return 0;
  if (!ebm_mpi_built()) {
    if (launched == 1) return 0; /* mpirun -np 1: one process, as without a launcher */
    return cli_fail(cmd, "started by an MPI launcher as one of %d ranks, but this vkebm was built "
                         "without MPI (`vkebm devices` says so): rebuild with an MPI installed "
                         "(tools/setup.sh) or run one process", launched);
  }
  char err[256];
  if (ebm_mpi_init(&d->comm, &d->local_rank, &d->local_size, err, sizeof err) != 0)
    return cli_fail(cmd, "%s", err);
  d->on = 1;
  d->rank = d->comm.rank;
  d->size = d->comm.size;
  return 0;
}

int cli_dist_end(cli_dist *d, int rc) {
  if (d->on) ebm_mpi_finalize();
  d->on = 0;
  return rc;
}

const ebm_train_comm *cli_dist_comm(const cli_dist *d) {
  return d->on && d->size > 1 ? &d->comm : NULL;
}

void cli_dist_abort(const cli_dist *d, int rc) {
  if (cli_dist_comm(d)) ebm_mpi_abort(rc ? rc : EXIT_FAIL);
}

int cli_dist_agree(const cli_dist *d, const char *cmd, int ok, const char *why) {
  if (!cli_dist_comm(d)) {
    if (!ok && why) cli_fail(cmd, "%s", why);
    return ok;
  }
  double v[2] = {!ok, !ok && d->rank == 0};
  if (d->comm.sum_f64(d->comm.ctx, v, 2) != 0) {
    cli_fail(cmd, "rank %d: the ranks could not agree (MPI failed)", d->rank);
    ebm_mpi_abort(EXIT_FAIL);
  }
  /* the ranks run the same code on the same files: when rank 0 failed, its reason stands for
   * all; otherwise each failing rank says why, with its number */
  if (!ok && why) {
    if (d->rank == 0) cli_fail(cmd, "%s", why);
    else if (v[1] == 0) cli_fail(cmd, "rank %d: %s", d->rank, why);
  }
  return v[0] == 0;
}

int cli_dist_any(const cli_dist *d, int flag) {
  if (!cli_dist_comm(d)) return flag;
  double v = flag != 0;
  if (d->comm.sum_f64(d->comm.ctx, &v, 1) != 0) {
    fprintf(stderr, "vkebm: rank %d: the ranks could not agree (MPI failed)\n", d->rank);
    ebm_mpi_abort(EXIT_FAIL);
  }
  return v > 0;
}

/* The local_rank-th usable Vulkan device of this machine: hardware GPUs first (what `auto`
 * would use), else any device with a compute queue (lavapipe). More ranks than devices share
 * them round robin. -1 when there is none (the backend then says so). */
static int rank_device(const cli_dist *d, int *shared) {
  ebm_vulkan_device infos[16];
  int n = ebm_vulkan_devices(infos, 16), pick[16], np = 0;
  for (int i = 0; i < n; i++)
    if (infos[i].has_compute_queue && infos[i].hardware) pick[np++] = i;
  for (int i = 0; i < n && np == 0; i++)
    if (infos[i].has_compute_queue) pick[np++] = i;
  if (np == 0) return -1;
  *shared = d->local_size > np;
  return pick[d->local_rank % np];
}

int cli_dist_backend_open(const cli_dist *d, const char *cmd, ebm_backend **be,
                          ebm_backend_kind kind, int quiet) {
  if (!cli_dist_comm(d)) return cli_backend_open(cmd, be, kind, -1, 0, quiet);
  ebm_backend_options o = {.kind = kind, .device_index = -1};
  int shared = 0;
  if (kind != EBM_BACKEND_CPU) o.device_index = rank_device(d, &shared);
  const char *env = getenv("VKEBM_THREADS");
  if (!(env && *env)) { /* the machine's cores split between its ranks */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cores > d->local_size ? (int)(cores / d->local_size) : 1;
  }
  char err[512];
  int rc = ebm_backend_create(be, &o, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "vkebm %s: rank %d: %s%s\n", cmd, d->rank,
            rc == EBM_ERR_NO_DEVICE ? "no usable Vulkan device: " : "", err);
    return rc == EBM_ERR_NO_DEVICE ? EXIT_NO_DEVICE : EXIT_FAIL;
  }
  if (!quiet) {
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    fprintf(stderr, "vkebm %s: rank %d of %d (%d of %d on %s): backend %s on %s (%s)%s\n", cmd,
            d->rank, d->size, d->local_rank, d->local_size, host, ebm_backend_name(*be),
            ebm_backend_device_name(*be), ebm_backend_describe(*be),
            shared ? "; more ranks than devices here: ranks share them" : "");
  }
  return 0;
}
