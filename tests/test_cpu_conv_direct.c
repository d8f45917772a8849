/* test_cpu_conv_direct.c: the cpu backend's two convolution paths (direct, im2col + BLAS),
 * each forced, against the direct-loop references of cpu_reference.c, for every instruction set
 * of the direct kernels this CPU runs (portable always; AVX2 and AVX-512 where present).
 *
 * Owns: awkward sizes for all three directions (channels 1, 3, 13, 17; batch 1 and 7; 1x1 to
 * 64x64, non-square, widths that are not a multiple of any vector), the accumulate contract
 * of the weight gradient, and bitwise determinism of the direct path: two runs, and 1 vs 2
 * threads (its work split never changes a sum's order).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_ops.h"
#include "backend/cpu_reference.h"
#include "testutil.h"

static void check_shape(const char *path, int B, int Ci, int Co, int H, int W, uint32_t seed) {
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  float *x = tu_random(nx, seed), *w = tu_random(nw, seed + 1), *dy = tu_random(ny, seed + 2);
  float *dw0 = tu_random(nw, seed + 3);
  float *want_y = malloc(ny * 4), *want_dx = malloc(nx * 4), *want_dw = malloc(nw * 4);
  float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
  conv3x3_forward_ref(want_y, x, w, B, Ci, Co, H, W);
  conv3x3_backward_input_ref(want_dx, dy, w, B, Ci, Co, H, W);
  memcpy(want_dw, dw0, nw * 4);
  conv3x3_backward_weight_ref(want_dw, dy, x, B, Ci, Co, H, W);
  for (size_t i = 0; i < ny; i++) y[i] = NAN; /* outputs are overwritten */
  for (size_t i = 0; i < nx; i++) dx[i] = NAN;
  memcpy(dw, dw0, nw * 4); /* the weight gradient accumulates */
  cpu_ctx ctx = {0};
  TU_CHECK(conv3x3_forward_cpu(&ctx, y, x, w, B, Ci, Co, H, W) == 0, "fwd");
  TU_CHECK(conv3x3_backward_input_cpu(&ctx, dx, dy, w, B, Ci, Co, H, W) == 0, "bwd input");
  TU_CHECK(conv3x3_backward_weight_cpu(&ctx, dw, dy, x, B, Ci, Co, H, W) == 0, "bwd weight");
  cpu_ctx_release(&ctx);
  char label[128];
  const double tol_f = 2e-6 * sqrt((double)Ci * 9) + 1e-6, tol_i = 2e-6 * sqrt((double)Co * 9) + 1e-6;
  const double tol_w = 2e-6 * sqrt((double)B * H * W) + 1e-6;
  snprintf(label, sizeof label, "%s fwd B%d %d->%d %dx%d", path, B, Ci, Co, H, W);
  tu_compare(label, y, want_y, ny, tol_f, 1e-5);
  snprintf(label, sizeof label, "%s bwd_in B%d %d->%d %dx%d", path, B, Ci, Co, H, W);
  tu_compare(label, dx, want_dx, nx, tol_i, 1e-5);
  snprintf(label, sizeof label, "%s bwd_w (+=) B%d %d->%d %dx%d", path, B, Ci, Co, H, W);
  tu_compare(label, dw, want_dw, nw, tol_w, 1e-5);
  free(x), free(w), free(dy), free(dw0), free(want_y), free(want_dx), free(want_dw);
  free(y), free(dx), free(dw);
}

static const int shapes[][5] = {
    /* B, Ci, Co, H, W */
    {1, 1, 1, 1, 1},    {7, 3, 13, 1, 1},   {1, 17, 3, 2, 2},   {7, 13, 17, 3, 5},
    {1, 3, 17, 4, 4},   {7, 17, 13, 8, 8},  {1, 13, 1, 7, 9},   {7, 1, 3, 16, 16},
    {1, 17, 17, 15, 17}, {7, 3, 13, 32, 32}, {1, 13, 3, 64, 64}, {7, 1, 17, 64, 64},
    {2, 17, 1, 33, 31},
};

static void check_all(const char *path) {
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    check_shape(path, shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], shapes[i][4],
                500 + 7 * (uint32_t)i);
}

/* Direct path: two runs and 1 vs 2 threads give the same bits, every direction. */
static void check_determinism(void) {
  const int B = 7, Ci = 17, Co = 13, H = 24, W = 19;
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  float *x = tu_random(nx, 91), *w = tu_random(nw, 92), *dy = tu_random(ny, 93);
  float *out[3][3];
  static const int threads[3] = {2, 2, 1};
  for (int run = 0; run < 3; run++) {
    cpu_set_threads(threads[run]);
    cpu_ctx ctx = {0};
    out[run][0] = malloc(ny * 4), out[run][1] = malloc(nx * 4), out[run][2] = calloc(nw, 4);
    conv3x3_forward_cpu(&ctx, out[run][0], x, w, B, Ci, Co, H, W);
    conv3x3_backward_input_cpu(&ctx, out[run][1], dy, w, B, Ci, Co, H, W);
    conv3x3_backward_weight_cpu(&ctx, out[run][2], dy, x, B, Ci, Co, H, W);
    cpu_ctx_release(&ctx);
  }
  static const char *what[3] = {"forward", "input gradient", "weight gradient"};
  const size_t n[3] = {ny, nx, nw};
  for (int k = 0; k < 3; k++) {
    TU_CHECK(memcmp(out[0][k], out[1][k], n[k] * 4) == 0, "direct %s (%s): two runs differ",
             what[k], cpu_conv_isa_name());
    TU_CHECK(memcmp(out[0][k], out[2][k], n[k] * 4) == 0,
             "direct %s (%s): 1 and 2 threads differ", what[k], cpu_conv_isa_name());
  }
  for (int run = 0; run < 3; run++)
    for (int k = 0; k < 3; k++) free(out[run][k]);
  free(x), free(w), free(dy);
  cpu_set_threads(2);
}

int main(void) {
  cpu_set_threads(2);
  TU_CHECK(cpu_conv_force("bogus") == -1, "an unknown path name is refused");
  TU_CHECK(cpu_conv_set_isa("bogus") == -1, "an unknown ISA name is refused");

  /* the rule: small layers direct, 128-channel 4x4 and wide weight gradients BLAS */
  TU_CHECK(cpu_conv_force("auto") == 0, "auto");
  TU_CHECK(cpu_conv_use_direct(CPU_CONV_FORWARD, 16, 16, 32, 32), "small32 forward is direct");
  TU_CHECK(!cpu_conv_use_direct(CPU_CONV_FORWARD, 128, 128, 4, 4), "128ch 4x4 is BLAS");
  TU_CHECK(!cpu_conv_use_direct(CPU_CONV_BACKWARD_WEIGHT, 64, 64, 32, 32), "wide dW is BLAS");
  TU_CHECK(!strcmp(cpu_conv_path_name(CPU_CONV_FORWARD, 256, 256, 8, 8), "im2col+BLAS"),
           "path name of a BLAS layer");
  TU_CHECK(!strncmp(cpu_conv_path_name(CPU_CONV_FORWARD, 3, 16, 32, 32), "direct-", 7),
           "path name of a direct layer");

  static const char *isas[] = {"portable", "avx2", "avx512"};
  cpu_conv_force("direct");
  for (int i = 0; i < 3; i++) {
    if (cpu_conv_set_isa(isas[i]) != 0) {
      fprintf(stderr, "  %s: not on this CPU, skipped\n", isas[i]);
      continue;
    }
    char path[32];
    snprintf(path, sizeof path, "direct-%s", isas[i]);
    check_all(path);
    check_determinism();
  }
  cpu_conv_set_isa(NULL);
  cpu_conv_force("blas");
  check_all("blas");
  cpu_conv_force("auto");
  return tu_finish("test_cpu_conv_direct");
}
