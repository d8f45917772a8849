/* bench_vk_conv.c: GFLOP/s of the three conv3x3 ops on a backend (developer tool, not a test).
 * Build: cc -O2 -Iinclude tools/bench_vk_conv.c build/libvkebm.a $(pkg-config --libs vulkan \
 *        jansson cglm libpng) -lblis -fopenmp -lm -lpthread -o build/bench_vk_conv
 * Run:   build/bench_vk_conv [vulkan|cpu] [B Ci Co H W] [reps] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkebm/backend.h"

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int B = 16, Ci = 64, Co = 64, H = 32, W = 32, reps = 3;
  ebm_backend_options o = {.kind = EBM_BACKEND_VULKAN, .device_index = -1};
  if (argc > 1 && !strcmp(argv[1], "cpu")) o.kind = EBM_BACKEND_CPU;
  if (argc > 6) {
    B = atoi(argv[2]); Ci = atoi(argv[3]); Co = atoi(argv[4]); H = atoi(argv[5]); W = atoi(argv[6]);
  }
  if (argc > 7) reps = atoi(argv[7]);
  ebm_backend *be;
  char err[256];
  if (ebm_backend_create(&be, &o, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 77;
  }
  size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  ebm_buffer *x = ebm_alloc(be, nx), *y = ebm_alloc(be, ny), *w = ebm_alloc(be, nw), *dw = ebm_alloc(be, nw);
  ebm_fill(be, ebm_ref_of(x), 0.5f, nx);
  ebm_fill(be, ebm_ref_of(y), 0.25f, ny);
  ebm_fill(be, ebm_ref_of(w), 0.1f, nw);
  ebm_sync(be);
  double flop = 2.0 * B * Co * Ci * 9.0 * H * W;
  const char *names[3] = {"forward", "backward_input", "backward_weight"};
  for (int op = 0; op < 3; op++) {
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps + 1; r++) {
      double t0 = now(), c0 = cpu_now();
      if (op == 0) ebm_conv3x3_forward(be, ebm_ref_of(y), ebm_ref_of(x), ebm_ref_of(w), B, Ci, Co, H, W);
      if (op == 1) ebm_conv3x3_backward_input(be, ebm_ref_of(x), ebm_ref_of(y), ebm_ref_of(w), B, Ci, Co, H, W);
      if (op == 2) ebm_conv3x3_backward_weight(be, ebm_ref_of(dw), ebm_ref_of(y), ebm_ref_of(x), B, Ci, Co, H, W);
      ebm_sync(be);
      double t = now() - t0, c = cpu_now() - c0;
      if (r > 0 && t < best) best = t; /* the first run builds the pipeline */
      if (r > 0 && c < best_cpu) best_cpu = c;
    }
    /* CPU seconds of all threads: on a shared machine, GFLOP per core-second is steadier */
    printf("%s conv3x3_%-16s B%d %d->%d %dx%d: %8.2f ms  %7.2f GFLOP/s  %6.2f GFLOP per core-s\n",
           ebm_backend_name(be), names[op], B, Ci, Co, H, W, best * 1e3, flop / best * 1e-9,
           flop / best_cpu * 1e-9);
  }
  ebm_free(be, x); ebm_free(be, y); ebm_free(be, w); ebm_free(be, dw);
  ebm_backend_destroy(be);
  return 0;
}
