/* cli_dist.h: data-parallel runs of `vkebm train` under mpirun (src/cli/cli_dist.c). One
 * process (no launcher, or no MPI built in): every function does what a single run needs. */
#ifndef VKEBM_CLI_DIST_H
#define VKEBM_CLI_DIST_H

#include "cli.h"
#include "vkebm/train_comm.h"

typedef struct cli_dist {
  ebm_train_comm comm;
  int on;                     /* MPI initialised */
  int rank, size;             /* 0 of 1 without MPI */
  int local_rank, local_size; /* among the ranks on this machine */
} cli_dist;

/* Starts MPI when a launcher started this process (and the build has it). 0, or an exit code
 * after printing why (launched as several ranks by a vkebm without MPI). */
int cli_dist_start(cli_dist *d, const char *cmd);
/* MPI_Finalize when started; returns rc. */
int cli_dist_end(cli_dist *d, int rc);
/* The trainer's comm: NULL for one process (also under `mpirun -np 1`). */
const ebm_train_comm *cli_dist_comm(const cli_dist *d);
/* Several ranks: ends the whole job now with exit code rc (MPI_Abort), for a failure on this
 * rank alone; the caller has printed why. One process: returns. */
void cli_dist_abort(const cli_dist *d, int rc);
/* Collective: 1 when every rank is ok. A failing rank prints why (unless rank 0 failed too:
 * then rank 0's line stands for all; why NULL: already printed). */
int cli_dist_agree(const cli_dist *d, const char *cmd, int ok, const char *why);
/* Collective: whether flag is set on any rank (a stop signal reaching some ranks only). */
int cli_dist_any(const cli_dist *d, int flag);
/* cli_backend_open for this rank: the local rank picks the Vulkan device, and the cpu backend
 * gets the machine's cores divided by its ranks unless VKEBM_THREADS says otherwise; one line
 * per rank naming its host and device. */
int cli_dist_backend_open(const cli_dist *d, const char *cmd, ebm_backend **be,
                          ebm_backend_kind kind, int quiet);

#endif
