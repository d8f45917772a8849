/* bench_cpu.c: GFLOP/s of the cpu backend's sgemm and 3x3 convolutions at the network's shapes.
 *
 * Owns nothing the program uses; it is the measuring tool behind docs/bench-notes.md and the
 * choice of BLAS. Usage: bench_cpu [threads] [B] [C]   (defaults: all cores, 16, 64)
 * Each figure is the best of several repetitions after a warm-up (min time), plus the median.
 * A conv counts 2*B*Co*Ci*9*H*W flops (multiply-adds of the direct formula, padding included).
 * "sgemm1t" lines are the BLAS on one thread (how the cpu backend calls it: its pool runs one
 * GEMM per thread); conv lines use all [threads].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/cpu_ops.h"
#include "vkebm/shared.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *rnd(size_t n, uint32_t seed) {
  float *x = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
  for (size_t i = 0; i < n; i++) x[i] = vkebm_rng_uniform(seed, 0, 0, (uint32_t)i) - 0.5f;
  return x;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *arg);

/* Runs fn until ~0.4 s or 25 reps have passed (at least 3); prints best and median GFLOP/s. */
static void measure(const char *label, double flops, bench_fn fn, void *arg) {
  fn(arg); /* warm-up: scratch allocation, BLAS thread start */
  double t[25];
  int reps = 0;
  double start = now();
  while (reps < 25 && (reps < 3 || now() - start < 0.4)) {
    double t0 = now();
    fn(arg);
    t[reps++] = now() - t0;
  }
  qsort(t, reps, sizeof t[0], cmp_double);
  printf("  %-44s %8.3f ms  best %7.2f GFLOP/s  median %7.2f\n", label, t[0] * 1e3,
         flops / t[0] * 1e-9, flops / t[reps / 2] * 1e-9);
  fflush(stdout);
}

typedef struct gemm_arg {
  int ta, tb, M, N, K;
  float *A, *B, *C;
} gemm_arg;

static void run_gemm(void *p) {
  gemm_arg *g = p;
  cpu_sgemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, g->ta ? g->M : g->K, g->B,
            g->tb ? g->K : g->N, 0.0f, g->C, g->N);
}

static void bench_gemm(const char *what, int ta, int tb, int M, int N, int K) {
  gemm_arg g = {ta, tb, M, N, K, rnd((size_t)M * K, 1), rnd((size_t)K * N, 2),
                rnd((size_t)M * N, 3)};
  char label[96];
  snprintf(label, sizeof label, "sgemm1t %s %c%c M%d N%d K%d", what, ta ? 'T' : 'N', tb ? 'T' : 'N',
           M, N, K);
  measure(label, 2.0 * M * N * K, run_gemm, &g);
  free(g.A), free(g.B), free(g.C);
}

typedef struct conv_arg {
  cpu_ctx *ctx;
  int which, B, Ci, Co, H, W;
  float *x, *w, *y, *dy, *dx, *dw;
} conv_arg;

static void run_conv(void *p) {
  conv_arg *a = p;
  if (a->which == 0)
    conv3x3_forward_cpu(a->ctx, a->y, a->x, a->w, a->B, a->Ci, a->Co, a->H, a->W);
  else if (a->which == 1)
    conv3x3_backward_input_cpu(a->ctx, a->dx, a->dy, a->w, a->B, a->Ci, a->Co, a->H, a->W);
  else
    conv3x3_backward_weight_cpu(a->ctx, a->dw, a->dy, a->x, a->B, a->Ci, a->Co, a->H, a->W);
}

static void bench_conv(cpu_ctx *ctx, int B, int Ci, int Co, int H, int W) {
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  conv_arg a = {ctx, 0, B, Ci, Co, H, W, rnd(nx, 4), rnd(nw, 5), rnd(ny, 6), rnd(ny, 7),
                rnd(nx, 8), rnd(nw, 9)};
  static const char *names[3] = {"fwd", "bwd_input", "bwd_weight"};
  const double flops = 2.0 * B * Co * Ci * 9.0 * H * W;
  for (int k = 0; k < 3; k++) {
    char label[96];
    snprintf(label, sizeof label, "conv3x3 %-10s B%d %d->%d %dx%d", names[k], B, Ci, Co, H, W);
    a.which = k;
    measure(label, flops, run_conv, &a);
  }
  free(a.x), free(a.w), free(a.y), free(a.dy), free(a.dx), free(a.dw);
}

/* The memory-bound ops at one activation tensor [B, C, 32, 32]; printed as ms (flops = elements). */
typedef struct small_arg {
  int which, B, C, HW, L;
  float *x, *y, *dy, *c, *G, *CB, *dG, *dCB, *dc, *w, *e, *out;
} small_arg;

static void run_small(void *p) {
  small_arg *a = p;
  const size_t n = (size_t)a->B * a->C * a->HW;
  switch (a->which) {
  case 0: swish_forward_cpu(a->y, a->x, n); break;
  case 1: swish_backward_cpu(a->y, a->dy, a->x, n); break;
  case 2: avgpool2_forward_cpu(a->y, a->x, a->B, a->C, 32, 32); break;
  case 3: avgpool2_backward_cpu(a->y, a->dy, a->B, a->C, 32, 32); break;
  case 4: cond_bias_forward_cpu(a->y, a->x, a->c, a->G, a->B, a->C, a->HW, a->L); break;
  case 5: cond_bias_backward_cpu(a->dG, a->dc, a->dy, a->c, a->G, a->B, a->C, a->HW, a->L); break;
  case 6: cond_scale_forward_cpu(a->y, a->x, a->c, a->G, a->CB, a->B, a->C, a->HW, a->L); break;
  case 7:
    cond_scale_backward_cpu(a->y, a->dG, a->dCB, a->dc, a->dy, a->x, a->c, a->G, a->CB, a->B,
                            a->C, a->HW, a->L);
    break;
  case 8: head_forward_cpu(a->e, a->x, a->w, a->CB, a->B, a->C, a->HW); break;
  case 9: head_backward_cpu(a->y, a->dCB, a->dc, a->e, a->x, a->w, a->B, a->C, a->HW); break;
  case 10: sumsq_cpu(a->out, a->x, n); break;
  case 11: axpy_cpu(a->y, 0.5f, a->x, n); break;
  }
}

static void bench_small(int B, int C) {
  const int HW = 1024, L = 4;
  const size_t n = (size_t)B * C * HW;
  small_arg a = {0, B, C, HW, L, rnd(n, 10), rnd(n, 11), rnd(n, 12), rnd((size_t)B * L, 13),
                 rnd((size_t)L * C, 14), rnd(C, 15), rnd((size_t)L * C, 16), rnd(C, 17),
                 rnd((size_t)B * L, 18), rnd(C, 19), rnd(B, 20), rnd(1, 21)};
  static const char *names[] = {"swish_fwd", "swish_bwd", "avgpool2_fwd", "avgpool2_bwd",
                                "cond_bias_fwd", "cond_bias_bwd", "cond_scale_fwd",
                                "cond_scale_bwd", "head_fwd", "head_bwd", "sumsq", "axpy"};
  for (int k = 0; k < 12; k++) {
    char label[96];
    snprintf(label, sizeof label, "%-14s B%d C%d 32x32 (Gelem/s)", names[k], B, C);
    a.which = k;
    measure(label, (double)n, run_small, &a);
  }
  free(a.x), free(a.y), free(a.dy), free(a.c), free(a.G), free(a.CB), free(a.dG), free(a.dCB);
  free(a.dc), free(a.w), free(a.e), free(a.out);
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 0;
  const int B = argc > 2 ? atoi(argv[2]) : 16, C = argc > 3 ? atoi(argv[3]) : 64;
  if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (B <= 0 || C <= 0) {
    fprintf(stderr, "usage: bench_cpu [threads] [B] [C]\n");
    return 2;
  }
  if (cpu_set_threads(threads) != 0) fprintf(stderr, "bench_cpu: could not start %d threads\n", threads);
  char desc[300];
  cpu_blas_describe(desc, sizeof desc);
  printf("%s, %d threads\n", desc, threads);

  bench_gemm("square", 0, 0, 1024, 1024, 1024);
  /* the GEMMs a conv at 64 channels issues, for 1 image of 32x32 and a batch of 16 at 8x8 */
  const int K = C * 9;
  bench_gemm("fwd 32x32", 0, 0, C, 1024, K);
  bench_gemm("fwd 16x(8x8)", 0, 0, C, B * 64, K);
  bench_gemm("bwd_in 32x32", 1, 0, K, 1024, C);
  bench_gemm("bwd_w 32x32", 0, 1, C, K, 1024);

  cpu_ctx ctx = {0};
  const char *budget = getenv("VKEBM_BENCH_COL_BUDGET"); /* im2col floats per GEMM chunk */
  if (budget) ctx.col_budget = (size_t)atol(budget);
  bench_conv(&ctx, B, 3, C, 32, 32);
  bench_conv(&ctx, B, C, C, 32, 32);
  bench_conv(&ctx, B, C, C, 16, 16);
  bench_conv(&ctx, B, C, C, 8, 8);
  bench_conv(&ctx, B, 2 * C, 2 * C, 8, 8);
  bench_conv(&ctx, B, 2 * C, 2 * C, 4, 4);
  cpu_ctx_release(&ctx);
  bench_small(B, C);
  return 0;
}
