/* cli_energy.c: what `vkebm demo` and `vkebm bench` share: the device tensors of one Langevin
 * image-step on a batch (cli_energy_io, see cli.h) and the monotonic clock they time it with. */
#include <time.h>

#include "cli.h"

double cli_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_energy_io_alloc(cli_energy_io *io, ebm_backend *be, const ebm_net_config *cfg,
                        int batch) {
  int R = cfg->resolution;
  io->batch = batch;
  io->nx = (size_t)batch * cfg->in_channels * R * R;
  io->nc = (size_t)batch * cfg->label_dim;
  io->x = ebm_alloc(be, io->nx);
  io->dx = ebm_alloc(be, io->nx);
  io->c = ebm_alloc(be, io->nc);
  io->e = ebm_alloc(be, (size_t)batch);
  io->de = ebm_alloc(be, (size_t)batch);
  if (!io->x || !io->dx || !io->c || !io->e || !io->de) {
    cli_energy_io_free(io, be);
    return -1;
  }
  /* dE_b/dE_b = 1: the backward to the input gives every image its own gradient */
  ebm_fill(be, ebm_ref_of(io->de), 1.0f, (size_t)batch);
  return 0;
}

void cli_energy_io_free(cli_energy_io *io, ebm_backend *be) {
  ebm_free(be, io->de);
  ebm_free(be, io->e);
  ebm_free(be, io->c);
  ebm_free(be, io->dx);
  ebm_free(be, io->x);
  io->x = io->dx = io->c = io->e = io->de = NULL;
}

void cli_energy_forward(ebm_net *net, const cli_energy_io *io) {
  ebm_net_forward(net, ebm_ref_of(io->e), ebm_ref_of(io->x), ebm_ref_of(io->c), io->batch);
}

void cli_energy_backward(ebm_net *net, const cli_energy_io *io) {
  ebm_net_backward(net, ebm_ref_of(io->de), ebm_ref_of(io->dx), EBM_NOREF, 0, io->batch);
}
