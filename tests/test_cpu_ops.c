/* test_cpu_ops.c: every op of the cpu backend against naive loops and hand-computed values.
 *
 * Owns the value tests of the cpu backend (through the public ebm_* API, so cpu.c's ref
 * handling is covered too): convolutions against the direct-loop references of
 * cpu_reference.c on awkward sizes (batch 1 and 7, channels 3 and 13, H=W 1, 2, 5, 8, 32),
 * GEMM chunking (through the array-level functions with a tiny im2col budget), the
 * overwrite/accumulate contract (outputs pre-filled with NaN or random values), the other ops
 * against loops written here, spectral norm against a double power iteration run to
 * convergence, error handling of bad refs, and bitwise determinism with threads.
 * Finite-difference checks of the backward ops live in test_cpu_grad.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_ops.h"
#include "backend/cpu_reference.h"
#include "testutil.h"
#include "vkebm/backend.h"

static ebm_backend *be;

static float *rnd(size_t n, uint32_t seed) { return tu_random(n, seed); }

static float *nans(size_t n) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = NAN;
  return x;
}

static ebm_buffer *up(const float *x, size_t n) { return tu_upload_new(be, x, n); }

static float *down(ebm_buffer *b, size_t n) { return tu_download_new(be, b, n); }

/* ---- convolutions ------------------------------------------------------------------------ */

static void test_conv(int B, int Ci, int Co, int H, int W, uint32_t seed) {
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  float *x = rnd(nx, seed), *w = rnd(nw, seed + 1), *dy = rnd(ny, seed + 2);
  float *dw0 = rnd(nw, seed + 3);
  char label[96];

  /* forward, output pre-filled with NaN: must be overwritten */
  float *want = malloc(ny * sizeof(float));
  conv3x3_forward_ref(want, x, w, B, Ci, Co, H, W);
  float *yn = nans(ny);
  ebm_buffer *bx = up(x, nx), *bw = up(w, nw), *by = up(yn, ny), *bdy = up(dy, ny);
  ebm_conv3x3_forward(be, ebm_ref_of(by), ebm_ref_of(bx), ebm_ref_of(bw), B, Ci, Co, H, W);
  float *got = down(by, ny);
  snprintf(label, sizeof label, "conv fwd B%d Ci%d Co%d %dx%d", B, Ci, Co, H, W);
  const double tol = 2e-6 * sqrt((double)Ci * 9) + 1e-6;
  tu_compare(label, got, want, ny, tol, 1e-5);
  free(want);
  free(got);

  /* backward input, overwrite */
  want = malloc(nx * sizeof(float));
  conv3x3_backward_input_ref(want, dy, w, B, Ci, Co, H, W);
  float *xn = nans(nx);
  ebm_buffer *bdx = up(xn, nx);
  ebm_conv3x3_backward_input(be, ebm_ref_of(bdx), ebm_ref_of(bdy), ebm_ref_of(bw), B, Ci, Co, H, W);
  got = down(bdx, nx);
  snprintf(label, sizeof label, "conv bwd input B%d Ci%d Co%d %dx%d", B, Ci, Co, H, W);
  tu_compare(label, got, want, nx, 2e-6 * sqrt((double)Co * 9) + 1e-6, 1e-5);
  free(want);
  free(got);

  /* backward weight, accumulates onto dw0 */
  want = malloc(nw * sizeof(float));
  memcpy(want, dw0, nw * sizeof(float));
  conv3x3_backward_weight_ref(want, dy, x, B, Ci, Co, H, W);
  ebm_buffer *bdw = up(dw0, nw);
  ebm_conv3x3_backward_weight(be, ebm_ref_of(bdw), ebm_ref_of(bdy), ebm_ref_of(bx), B, Ci, Co, H, W);
  got = down(bdw, nw);
  snprintf(label, sizeof label, "conv bwd weight (+=) B%d Ci%d Co%d %dx%d", B, Ci, Co, H, W);
  tu_compare(label, got, want, nw, 2e-6 * sqrt((double)B * H * W) + 1e-6, 1e-5);
  free(want);
  free(got);

  ebm_free(be, bx), ebm_free(be, bw), ebm_free(be, by), ebm_free(be, bdy), ebm_free(be, bdx);
  ebm_free(be, bdw);
  free(x), free(w), free(dy), free(dw0), free(yn), free(xn);
}

/* Chunked GEMMs (several images per GEMM, a short last chunk, one image per chunk) through the
 * array functions with a small im2col budget, against the references. */
static void test_conv_chunking(void) {
  const int B = 7, Ci = 5, Co = 6, H = 6, W = 4;
  const size_t per_image = (size_t)Ci * 9 * H * W;
  const size_t budgets[] = {per_image, 3 * per_image, 100 * per_image, per_image / 2};
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  float *x = rnd(nx, 71), *w = rnd(nw, 72), *dy = rnd(ny, 73);
  float *want_y = malloc(ny * 4), *want_dx = malloc(nx * 4), *want_dw = calloc(nw, 4);
  float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
  conv3x3_forward_ref(want_y, x, w, B, Ci, Co, H, W);
  conv3x3_backward_input_ref(want_dx, dy, w, B, Ci, Co, H, W);
  conv3x3_backward_weight_ref(want_dw, dy, x, B, Ci, Co, H, W);
  for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
    cpu_ctx ctx = {.col_budget = budgets[i]};
    char label[80];
    memset(dw, 0, nw * 4);
    TU_CHECK(conv3x3_forward_cpu(&ctx, y, x, w, B, Ci, Co, H, W) == 0, "fwd");
    TU_CHECK(conv3x3_backward_input_cpu(&ctx, dx, dy, w, B, Ci, Co, H, W) == 0, "bwd in");
    TU_CHECK(conv3x3_backward_weight_cpu(&ctx, dw, dy, x, B, Ci, Co, H, W) == 0, "bwd w");
    snprintf(label, sizeof label, "chunked (budget %zu imgs) fwd", budgets[i] / per_image);
    tu_compare(label, y, want_y, ny, 1e-5, 1e-5);
    snprintf(label, sizeof label, "chunked (budget %zu imgs) bwd input", budgets[i] / per_image);
    tu_compare(label, dx, want_dx, nx, 1e-5, 1e-5);
    snprintf(label, sizeof label, "chunked (budget %zu imgs) bwd weight", budgets[i] / per_image);
    tu_compare(label, dw, want_dw, nw, 1e-5, 1e-5);
    cpu_ctx_release(&ctx);
  }
  free(x), free(w), free(dy), free(want_y), free(want_dx), free(want_dw), free(y), free(dx);
  free(dw);
}

/* ---- elementwise and small ops ------------------------------------------------------------ */

static void test_elementwise(void) {
  const size_t n = 1037;
  float *a = rnd(n, 11), *b = rnd(n, 12), *want = malloc(n * 4), *got;
  ebm_buffer *ba = up(a, n), *bb = up(b, n), *by = ebm_alloc(be, n + 5);

  float *zero = down(by, n + 5), *zeros = calloc(n + 5, 4);
  TU_CHECK(memcmp(zero, zeros, (n + 5) * 4) == 0, "ebm_alloc must zero-fill");
  free(zero), free(zeros);

  ebm_fill(be, ebm_at(ebm_ref_of(by), 2), 0.75f, n);
  got = down(by, n + 5);
  for (size_t i = 0; i < n; i++) want[i] = 0.75f;
  tu_compare("fill (offset 2)", got + 2, want, n, 0, 0);
  TU_CHECK(got[0] == 0 && got[1] == 0 && got[n + 2] == 0 && got[n + 4] == 0,
           "fill wrote outside its range");
  free(got);

  ebm_add(be, ebm_ref_of(by), ebm_ref_of(ba), ebm_ref_of(bb), n);
  got = down(by, n);
  for (size_t i = 0; i < n; i++) want[i] = a[i] + b[i];
  tu_compare("add", got, want, n, 0, 0);
  free(got);

  ebm_axpy(be, ebm_ref_of(by), -0.5f, ebm_ref_of(ba), n);
  got = down(by, n);
  for (size_t i = 0; i < n; i++) want[i] = (a[i] + b[i]) + -0.5f * a[i];
  tu_compare("axpy (accumulates)", got, want, n, 0, 0);
  free(got);

  ebm_scale(be, ebm_ref_of(by), 3.0f, ebm_ref_of(bb), n);
  got = down(by, n);
  for (size_t i = 0; i < n; i++) want[i] = 3.0f * b[i];
  tu_compare("scale", got, want, n, 0, 0);
  free(got);

  /* swish with hand values and a loop; in place (y == x) */
  const float xs[5] = {0.0f, 1.0f, -1.0f, 20.0f, -20.0f};
  const float ys[5] = {0.0f, 0.7310585786f, -0.2689414214f, 19.99999996f, -4.122307e-08f};
  ebm_buffer *bs = up(xs, 5);
  ebm_swish_forward(be, ebm_ref_of(bs), ebm_ref_of(bs), 5);
  got = down(bs, 5);
  tu_compare("swish hand values (in place)", got, ys, 5, 1e-7, 1e-6);
  free(got);
  /* the whole float range the exp approximation clamps: -100..100 in steps of 0.05 */
  {
    const size_t m = 4001;
    float *xr = malloc(m * 4), *yr = malloc(m * 4), *gr = malloc(m * 4);
    for (size_t i = 0; i < m; i++) {
      xr[i] = -100.0f + 0.05f * (float)i;
      double s = 1.0 / (1.0 + exp(-(double)xr[i]));
      yr[i] = (float)(xr[i] * s);
      gr[i] = (float)(s + xr[i] * s * (1.0 - s));
    }
    ebm_buffer *bxr = up(xr, m), *bone = ebm_alloc(be, m), *bo = ebm_alloc(be, m);
    ebm_fill(be, ebm_ref_of(bone), 1.0f, m);
    ebm_swish_forward(be, ebm_ref_of(bo), ebm_ref_of(bxr), m);
    got = down(bo, m);
    tu_compare("swish forward on [-100, 100]", got, yr, m, 1e-30, 1e-6);
    free(got);
    ebm_swish_backward(be, ebm_ref_of(bo), ebm_ref_of(bone), ebm_ref_of(bxr), m);
    got = down(bo, m);
    tu_compare("swish backward on [-100, 100]", got, gr, m, 1e-7, 1e-6); /* cancels near x=-1.28 */
    free(got);
    ebm_free(be, bxr), ebm_free(be, bone), ebm_free(be, bo);
    free(xr), free(yr), free(gr);
  }
  ebm_swish_forward(be, ebm_ref_of(by), ebm_ref_of(ba), n);
  got = down(by, n);
  for (size_t i = 0; i < n; i++) want[i] = (float)(a[i] / (1.0 + exp(-(double)a[i])));
  tu_compare("swish forward", got, want, n, 1e-7, 1e-6);
  free(got);
  ebm_swish_backward(be, ebm_ref_of(by), ebm_ref_of(bb), ebm_ref_of(ba), n);
  got = down(by, n);
  for (size_t i = 0; i < n; i++) {
    double s = 1.0 / (1.0 + exp(-(double)a[i]));
    want[i] = (float)(b[i] * (s + a[i] * s * (1.0 - s)));
  }
  tu_compare("swish backward", got, want, n, 1e-7, 1e-6);
  free(got);

  /* sumsq: hand value and a loop */
  const float v3[3] = {1.0f, -2.0f, 3.0f};
  ebm_buffer *b3 = up(v3, 3);
  ebm_sumsq(be, ebm_at(ebm_ref_of(by), 1), ebm_ref_of(b3), 3);
  got = down(by, 2);
  TU_CHECK(got[1] == 14.0f, "sumsq(1,-2,3) = %g, want 14", got[1]);
  free(got);
  ebm_sumsq(be, ebm_ref_of(by), ebm_ref_of(ba), n);
  got = down(by, 1);
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += (double)a[i] * a[i];
  want[0] = (float)ss;
  tu_compare("sumsq", got, want, 1, 0, 1e-6);
  free(got);

  ebm_free(be, ba), ebm_free(be, bb), ebm_free(be, by), ebm_free(be, bs), ebm_free(be, b3);
  free(a), free(b), free(want);
}

static void test_avgpool(int B, int C, int H, int W) {
  const size_t nx = (size_t)B * C * H * W, ny = nx / 4;
  float *x = rnd(nx, 21), *dy = rnd(ny, 22), *want_y = malloc(ny * 4), *want_dx = malloc(nx * 4);
  for (int bc = 0; bc < B * C; bc++)
    for (int i = 0; i < H / 2; i++)
      for (int j = 0; j < W / 2; j++) {
        const float *p = x + (size_t)bc * H * W;
        double s = (double)p[(2 * i) * W + 2 * j] + p[(2 * i) * W + 2 * j + 1] +
                   p[(2 * i + 1) * W + 2 * j] + p[(2 * i + 1) * W + 2 * j + 1];
        want_y[((size_t)bc * (H / 2) + i) * (W / 2) + j] = (float)(s / 4);
        for (int di = 0; di < 2; di++)
          for (int dj = 0; dj < 2; dj++)
            want_dx[(size_t)bc * H * W + (2 * i + di) * W + 2 * j + dj] =
                dy[((size_t)bc * (H / 2) + i) * (W / 2) + j] / 4;
      }
  float *n1 = nans(ny), *n2 = nans(nx);
  ebm_buffer *bx = up(x, nx), *bdy = up(dy, ny), *by = up(n1, ny), *bdx = up(n2, nx);
  ebm_avgpool2_forward(be, ebm_ref_of(by), ebm_ref_of(bx), B, C, H, W);
  ebm_avgpool2_backward(be, ebm_ref_of(bdx), ebm_ref_of(bdy), B, C, H, W);
  float *gy = down(by, ny), *gdx = down(bdx, nx);
  char label[64];
  snprintf(label, sizeof label, "avgpool2 fwd B%d C%d %dx%d", B, C, H, W);
  tu_compare(label, gy, want_y, ny, 1e-7, 1e-6);
  snprintf(label, sizeof label, "avgpool2 bwd B%d C%d %dx%d", B, C, H, W);
  tu_compare(label, gdx, want_dx, nx, 0, 0);
  ebm_free(be, bx), ebm_free(be, bdy), ebm_free(be, by), ebm_free(be, bdx);
  free(x), free(dy), free(want_y), free(want_dx), free(n1), free(n2), free(gy), free(gdx);
}

/* The label path's gradients, shared by cond_bias and cond_scale (both use c·G per channel),
 * accumulated onto dG0 and dc0 as the ops do: g[B,C] is dE/d(c·G),
 *   wdG[L,C] = dG0 + c^T g,   wdc[B,L] = dc0 + g G^T   (double sums). */
static void want_label_grads(float *wdG, float *wdc, const float *dG0, const float *dc0,
                             const float *c, const float *G, const double *g, int B, int C, int L) {
  for (int l = 0; l < L; l++)
    for (int ch = 0; ch < C; ch++) {
      double s = 0;
      for (int b = 0; b < B; b++) s += c[b * L + l] * g[b * C + ch];
      wdG[l * C + ch] = dG0[l * C + ch] + (float)s;
    }
  for (int b = 0; b < B; b++)
    for (int l = 0; l < L; l++) {
      double s = 0;
      for (int ch = 0; ch < C; ch++) s += G[l * C + ch] * g[b * C + ch];
      wdc[b * L + l] = dc0[b * L + l] + (float)s;
    }
}

/* cond_bias / cond_scale / head against loops written out here. */
static void test_cond_and_head(int B, int C, int HW, int L) {
  const size_t n = (size_t)B * C * HW;
  float *x = rnd(n, 31), *dy = rnd(n, 32), *c = rnd((size_t)B * L, 33), *G = rnd((size_t)L * C, 34);
  float *CB = rnd(C, 35), *dG0 = rnd((size_t)L * C, 36), *dc0 = rnd((size_t)B * L, 37);
  float *dCB0 = rnd(C, 38);
  float *want = malloc(n * 4), *wdG = malloc((size_t)L * C * 4), *wdc = malloc((size_t)B * L * 4);
  float *wdCB = malloc(C * 4), *got;
  char label[96];
  ebm_buffer *bx = up(x, n), *bdy = up(dy, n), *bc = up(c, (size_t)B * L);
  ebm_buffer *bG = up(G, (size_t)L * C), *bCB = up(CB, C), *by = ebm_alloc(be, n);
  ebm_buffer *bdG = up(dG0, (size_t)L * C), *bdc = up(dc0, (size_t)B * L), *bdCB = up(dCB0, C);

  /* label-linear terms */
  double *lin = malloc((size_t)B * C * sizeof(double)), *sdy = malloc((size_t)B * C * 8);
  double *g = malloc((size_t)B * C * 8);
  for (int b = 0; b < B; b++)
    for (int ch = 0; ch < C; ch++) {
      double s = 0, t = 0, u = 0;
      for (int l = 0; l < L; l++) s += (double)c[b * L + l] * G[l * C + ch];
      for (int p = 0; p < HW; p++) {
        t += dy[((size_t)b * C + ch) * HW + p];
        u += (double)dy[((size_t)b * C + ch) * HW + p] * x[((size_t)b * C + ch) * HW + p];
      }
      lin[b * C + ch] = s, sdy[b * C + ch] = t, g[b * C + ch] = u;
    }

  /* cond_bias forward */
  for (int b = 0; b < B; b++)
    for (int ch = 0; ch < C; ch++)
      for (int p = 0; p < HW; p++) {
        size_t i = ((size_t)b * C + ch) * HW + p;
        want[i] = x[i] + (float)lin[b * C + ch];
      }
  ebm_cond_bias_forward(be, ebm_ref_of(by), ebm_ref_of(bx), ebm_ref_of(bc), ebm_ref_of(bG), B, C,
                        HW, L);
  got = down(by, n);
  snprintf(label, sizeof label, "cond_bias fwd B%d C%d HW%d L%d", B, C, HW, L);
  tu_compare(label, got, want, n, 1e-6, 1e-6);
  free(got);

  /* cond_bias backward: dG, dc accumulate */
  want_label_grads(wdG, wdc, dG0, dc0, c, G, sdy, B, C, L);
  ebm_cond_bias_backward(be, ebm_ref_of(bdG), ebm_ref_of(bdc), ebm_ref_of(bdy), ebm_ref_of(bc),
                         ebm_ref_of(bG), B, C, HW, L);
  got = down(bdG, (size_t)L * C);
  snprintf(label, sizeof label, "cond_bias bwd dG (+=) B%d C%d HW%d L%d", B, C, HW, L);
  tu_compare(label, got, wdG, (size_t)L * C, 1e-5, 1e-5);
  free(got);
  got = down(bdc, (size_t)B * L);
  snprintf(label, sizeof label, "cond_bias bwd dc (+=) B%d C%d HW%d L%d", B, C, HW, L);
  tu_compare(label, got, wdc, (size_t)B * L, 1e-5, 1e-5);
  free(got);
  /* dc optional: EBM_NOREF skips it, dG still accumulates again */
  ebm_cond_bias_backward(be, ebm_ref_of(bdG), EBM_NOREF, ebm_ref_of(bdy), ebm_ref_of(bc),
                         ebm_ref_of(bG), B, C, HW, L);
  got = down(bdG, (size_t)L * C);
  for (int i = 0; i < L * C; i++) wdG[i] += wdG[i] - dG0[i];
  tu_compare("cond_bias bwd dG twice, dc skipped", got, wdG, (size_t)L * C, 1e-5, 1e-5);
  free(got);

  /* cond_scale forward */
  for (int b = 0; b < B; b++)
    for (int ch = 0; ch < C; ch++)
      for (int p = 0; p < HW; p++) {
        size_t i = ((size_t)b * C + ch) * HW + p;
        want[i] = x[i] * (float)(lin[b * C + ch] + CB[ch]);
      }
  ebm_cond_scale_forward(be, ebm_ref_of(by), ebm_ref_of(bx), ebm_ref_of(bc), ebm_ref_of(bG),
                         ebm_ref_of(bCB), B, C, HW, L);
  got = down(by, n);
  snprintf(label, sizeof label, "cond_scale fwd B%d C%d HW%d L%d", B, C, HW, L);
  tu_compare(label, got, want, n, 1e-6, 1e-6);
  free(got);

  /* cond_scale backward: dx overwrites (pre-filled NaN), dG dCB dc accumulate */
  TU_CHECK(ebm_upload(be, ebm_ref_of(bdG), dG0, (size_t)L * C) == 0, "upload");
  TU_CHECK(ebm_upload(be, ebm_ref_of(bdc), dc0, (size_t)B * L) == 0, "upload");
  ebm_fill(be, ebm_ref_of(by), NAN, n);
  for (int b = 0; b < B; b++)
    for (int ch = 0; ch < C; ch++)
      for (int p = 0; p < HW; p++) {
        size_t i = ((size_t)b * C + ch) * HW + p;
        want[i] = dy[i] * (float)(lin[b * C + ch] + CB[ch]);
      }
  for (int ch = 0; ch < C; ch++) {
    double s = 0;
    for (int b = 0; b < B; b++) s += g[b * C + ch];
    wdCB[ch] = dCB0[ch] + (float)s;
  }
  want_label_grads(wdG, wdc, dG0, dc0, c, G, g, B, C, L);
  ebm_cond_scale_backward(be, ebm_ref_of(by), ebm_ref_of(bdG), ebm_ref_of(bdCB), ebm_ref_of(bdc),
                          ebm_ref_of(bdy), ebm_ref_of(bx), ebm_ref_of(bc), ebm_ref_of(bG),
                          ebm_ref_of(bCB), B, C, HW, L);
  got = down(by, n);
  snprintf(label, sizeof label, "cond_scale bwd dx B%d C%d HW%d L%d", B, C, HW, L);
  tu_compare(label, got, want, n, 1e-6, 1e-6);
  free(got);
  got = down(bdG, (size_t)L * C);
  tu_compare("cond_scale bwd dG (+=)", got, wdG, (size_t)L * C, 1e-5, 1e-5);
  free(got);
  got = down(bdCB, C);
  tu_compare("cond_scale bwd dCB (+=)", got, wdCB, C, 1e-5, 1e-5);
  free(got);
  got = down(bdc, (size_t)B * L);
  tu_compare("cond_scale bwd dc (+=)", got, wdc, (size_t)B * L, 1e-5, 1e-5);
  free(got);
  /* all optional outputs skipped, dx in place over dy */
  ebm_buffer *bdy2 = up(dy, n);
  ebm_cond_scale_backward(be, ebm_ref_of(bdy2), EBM_NOREF, EBM_NOREF, EBM_NOREF,
                          ebm_ref_of(bdy2), ebm_ref_of(bx), ebm_ref_of(bc), ebm_ref_of(bG),
                          ebm_ref_of(bCB), B, C, HW, L);
  got = down(bdy2, n);
  tu_compare("cond_scale bwd dx in place, no params", got, want, n, 1e-6, 1e-6);
  free(got);
  ebm_free(be, bdy2);

  /* head: e[b] = sum_ch w[ch] mean_p x + bias */
  float *hw = rnd(C, 41), bias = 0.375f, *de = rnd(B, 42), *e = malloc(B * 4);
  ebm_buffer *bhw = up(hw, C), *bbias = up(&bias, 1), *bde = up(de, B), *be_ = ebm_alloc(be, B);
  for (int b = 0; b < B; b++) {
    double s = 0;
    for (int ch = 0; ch < C; ch++) {
      double m = 0;
      for (int p = 0; p < HW; p++) m += x[((size_t)b * C + ch) * HW + p];
      s += hw[ch] * m / HW;
    }
    e[b] = (float)(s + bias);
  }
  ebm_head_forward(be, ebm_ref_of(be_), ebm_ref_of(bx), ebm_ref_of(bhw), ebm_ref_of(bbias), B, C,
                   HW);
  got = down(be_, B);
  snprintf(label, sizeof label, "head fwd B%d C%d HW%d", B, C, HW);
  tu_compare(label, got, e, B, 1e-6, 1e-6);
  free(got);
  float *dw0 = rnd(C, 43), db0 = -0.25f, *wdw = malloc(C * 4), wdb;
  ebm_buffer *bdw = up(dw0, C), *bdb = up(&db0, 1);
  for (int b = 0; b < B; b++)
    for (int ch = 0; ch < C; ch++)
      for (int p = 0; p < HW; p++) want[((size_t)b * C + ch) * HW + p] = (float)((double)de[b] * hw[ch] / HW);
  double sb = 0;
  for (int b = 0; b < B; b++) sb += de[b];
  wdb = db0 + (float)sb;
  for (int ch = 0; ch < C; ch++) {
    double s = 0;
    for (int b = 0; b < B; b++) {
      double m = 0;
      for (int p = 0; p < HW; p++) m += x[((size_t)b * C + ch) * HW + p];
      s += de[b] * m / HW;
    }
    wdw[ch] = dw0[ch] + (float)s;
  }
  ebm_fill(be, ebm_ref_of(by), NAN, n);
  ebm_head_backward(be, ebm_ref_of(by), ebm_ref_of(bdw), ebm_ref_of(bdb), ebm_ref_of(bde),
                    ebm_ref_of(bx), ebm_ref_of(bhw), B, C, HW);
  got = down(by, n);
  tu_compare("head bwd dx", got, want, n, 1e-7, 1e-6);
  free(got);
  got = down(bdw, C);
  tu_compare("head bwd dw (+=)", got, wdw, C, 1e-6, 1e-5);
  free(got);
  got = down(bdb, 1);
  tu_compare("head bwd dbias (+=)", got, &wdb, 1, 1e-6, 1e-5);
  free(got);

  ebm_free(be, bx), ebm_free(be, bdy), ebm_free(be, bc), ebm_free(be, bG), ebm_free(be, bCB);
  ebm_free(be, by), ebm_free(be, bdG), ebm_free(be, bdc), ebm_free(be, bdCB), ebm_free(be, bhw);
  ebm_free(be, bbias), ebm_free(be, bde), ebm_free(be, be_), ebm_free(be, bdw), ebm_free(be, bdb);
  free(x), free(dy), free(c), free(G), free(CB), free(dG0), free(dc0), free(dCB0), free(want);
  free(wdG), free(wdc), free(wdCB), free(lin), free(sdy), free(g), free(hw), free(de), free(e);
  free(dw0), free(wdw);
}

/* ---- spectral norm ------------------------------------------------------------------------ */

/* Largest singular value by power iteration on W^T W in double, to convergence. */
static double top_singular_value(const float *w, int rows, int cols) {
  double *v = malloc(cols * 8), *t = malloc(rows * 8);
  for (int k = 0; k < cols; k++) v[k] = 1.0 + 0.01 * k;
  double sigma = 0;
  for (int it = 0; it < 5000; it++) {
    for (int r = 0; r < rows; r++) {
      double s = 0;
      for (int k = 0; k < cols; k++) s += w[r * cols + k] * v[k];
      t[r] = s;
    }
    double n = 0;
    for (int k = 0; k < cols; k++) {
      double s = 0;
      for (int r = 0; r < rows; r++) s += w[r * cols + k] * t[r];
      v[k] = s;
      n += s * s;
    }
    n = sqrt(n);
    for (int k = 0; k < cols; k++) v[k] /= n;
    double prev = sigma;
    sigma = sqrt(n);
    if (it > 10 && fabs(sigma - prev) < 1e-15 * sigma) break;
  }
  free(v), free(t);
  return sigma;
}

static void test_spectral_norm(int rows, int cols) {
  const size_t n = (size_t)rows * cols;
  float *w = rnd(n, 51), *u0 = rnd(rows, 52);
  ebm_buffer *bw = up(w, n), *bu = up(u0, rows), *bv = ebm_alloc(be, cols);
  ebm_buffer *bs = ebm_alloc(be, 1), *bwsn = ebm_alloc(be, n);
  char label[80];

  /* one step, update_u = 0: u unchanged; v, sigma, w_sn by the formula in double */
  ebm_spectral_norm_forward(be, ebm_ref_of(bwsn), ebm_ref_of(bu), ebm_ref_of(bv), ebm_ref_of(bs),
                            ebm_ref_of(bw), rows, cols, 0);
  double *v = calloc(cols, 8), *u1 = malloc(rows * 8), nv = 0, nu = 0, sig = 0;
  for (int r = 0; r < rows; r++)
    for (int k = 0; k < cols; k++) v[k] += (double)w[r * cols + k] * u0[r];
  for (int k = 0; k < cols; k++) nv += v[k] * v[k];
  for (int k = 0; k < cols; k++) v[k] /= sqrt(nv) + 1e-12;
  for (int r = 0; r < rows; r++) {
    double s = 0;
    for (int k = 0; k < cols; k++) s += w[r * cols + k] * v[k];
    u1[r] = s;
    nu += s * s;
  }
  for (int r = 0; r < rows; r++) {
    double wv = u1[r];
    u1[r] = wv / (sqrt(nu) + 1e-12);
    sig += u1[r] * wv;
  }
  float *fv = malloc(cols * 4), *fu = malloc(rows * 4), fs = (float)sig, *fwsn = malloc(n * 4);
  for (int k = 0; k < cols; k++) fv[k] = (float)v[k];
  for (int r = 0; r < rows; r++) fu[r] = (float)u1[r];
  for (size_t i = 0; i < n; i++) fwsn[i] = (float)(w[i] / sig);
  float *got = down(bu, rows);
  snprintf(label, sizeof label, "sn %dx%d update_u=0 keeps u", rows, cols);
  tu_compare(label, got, u0, rows, 0, 0);
  free(got);
  got = down(bv, cols);
  tu_compare("sn v", got, fv, cols, 1e-6, 1e-5);
  free(got);
  got = down(bs, 1);
  tu_compare("sn sigma (one step)", got, &fs, 1, 1e-6, 1e-5);
  free(got);
  got = down(bwsn, n);
  tu_compare("sn w_sn", got, fwsn, n, 1e-6, 1e-5);
  free(got);

  /* update_u = 1 writes u' */
  ebm_spectral_norm_forward(be, ebm_ref_of(bwsn), ebm_ref_of(bu), ebm_ref_of(bv), ebm_ref_of(bs),
                            ebm_ref_of(bw), rows, cols, 1);
  got = down(bu, rows);
  tu_compare("sn update_u=1 writes u'", got, fu, rows, 1e-6, 1e-5);
  free(got);

  /* many training steps: sigma converges to the top singular value */
  for (int it = 0; it < 400; it++)
    ebm_spectral_norm_forward(be, ebm_ref_of(bwsn), ebm_ref_of(bu), ebm_ref_of(bv),
                              ebm_ref_of(bs), ebm_ref_of(bw), rows, cols, 1);
  float top = (float)top_singular_value(w, rows, cols);
  got = down(bs, 1);
  snprintf(label, sizeof label, "sn %dx%d sigma -> top singular value", rows, cols);
  tu_compare(label, got, &top, 1, 0, 2e-5);
  free(got);

  ebm_free(be, bw), ebm_free(be, bu), ebm_free(be, bv), ebm_free(be, bs), ebm_free(be, bwsn);
  free(w), free(u0), free(v), free(u1), free(fv), free(fu), free(fwsn);
}

static void test_spectral_norm_backward(int rows, int cols) {
  const size_t n = (size_t)rows * cols;
  float *dwsn = rnd(n, 61), *wsn = rnd(n, 62), *u = rnd(rows, 63), *v = rnd(cols, 64);
  float *dw0 = rnd(n, 65), sigma = 1.75f, *want = malloc(n * 4);
  double dot = 0;
  for (size_t i = 0; i < n; i++) dot += (double)dwsn[i] * wsn[i];
  for (int r = 0; r < rows; r++)
    for (int k = 0; k < cols; k++) {
      size_t i = (size_t)r * cols + k;
      want[i] = dw0[i] + (float)((dwsn[i] - dot * u[r] * v[k]) / sigma);
    }
  ebm_buffer *bdw = up(dw0, n), *bdwsn = up(dwsn, n), *bwsn = up(wsn, n), *bu = up(u, rows);
  ebm_buffer *bv = up(v, cols), *bs = up(&sigma, 1);
  ebm_spectral_norm_backward(be, ebm_ref_of(bdw), ebm_ref_of(bdwsn), ebm_ref_of(bwsn),
                             ebm_ref_of(bu), ebm_ref_of(bv), ebm_ref_of(bs), rows, cols);
  float *got = down(bdw, n);
  tu_compare("sn backward formula (+=)", got, want, n, 1e-6, 1e-5);
  free(got);
  ebm_free(be, bdw), ebm_free(be, bdwsn), ebm_free(be, bwsn), ebm_free(be, bu), ebm_free(be, bv);
  ebm_free(be, bs);
  free(dwsn), free(wsn), free(u), free(v), free(dw0), free(want);
}

/* ---- errors, threads, determinism ---------------------------------------------------------- */

static void test_bad_refs(void) {
  ebm_backend *b2 = tu_cpu_backend();
  ebm_buffer *a = ebm_alloc(b2, 16), *c = ebm_alloc(b2, 16);
  float host[32] = {0};
  TU_CHECK(ebm_upload(b2, ebm_ref_of(a), host, 17) != 0, "upload past the end must fail");
  TU_CHECK(ebm_upload(b2, ebm_at(ebm_ref_of(a), 20), host, 1) != 0, "upload at off 20 must fail");
  TU_CHECK(ebm_download(b2, host, ebm_at(ebm_ref_of(a), 8), 9) != 0, "download past end must fail");
  TU_CHECK(ebm_sync(b2) == 0, "transfer errors are not sticky");
  ebm_fill(b2, ebm_ref_of(c), 2.0f, 16);
  /* an op reaching past the end: nothing written, sync reports it from then on */
  ebm_add(b2, ebm_ref_of(c), ebm_ref_of(c), ebm_at(ebm_ref_of(a), 1), 16);
  TU_CHECK(ebm_sync(b2) != 0, "an op with an out-of-range ref must make sync fail");
  float out[16];
  TU_CHECK(ebm_download(b2, out, ebm_ref_of(c), 16) != 0, "download reports the failed op");
  TU_CHECK(out[15] == 2.0f, "the failed op must not have written (got %g)", out[15]);
  ebm_conv3x3_forward(b2, ebm_ref_of(c), EBM_NOREF, ebm_ref_of(a), 1, 1, 1, 4, 4);
  ebm_avgpool2_forward(b2, ebm_ref_of(c), ebm_ref_of(a), 1, 1, 3, 4); /* odd H */
  ebm_free(b2, a), ebm_free(b2, c);
  ebm_backend_destroy(b2);

  /* threads option and VKEBM_THREADS */
  ebm_backend_options o = {.kind = EBM_BACKEND_CPU, .threads = 1};
  char err[256];
  ebm_backend *b3 = NULL;
  unsetenv("VKEBM_THREADS");
  TU_CHECK(ebm_backend_create(&b3, &o, err, sizeof err) == 0, "%s", err);
  if (b3) {
    TU_CHECK(strstr(ebm_backend_describe(b3), " 1 thread") != NULL, "describe: %s",
             ebm_backend_describe(b3));
    fprintf(stderr, "  describe: %s\n", ebm_backend_describe(b3));
    fprintf(stderr, "  device:   %s\n", ebm_backend_device_name(b3));
    ebm_backend_destroy(b3);
  }
  setenv("VKEBM_THREADS", "banana", 1);
  TU_CHECK(ebm_backend_create(&b3, &o, err, sizeof err) != 0, "VKEBM_THREADS=banana accepted");
  setenv("VKEBM_THREADS", "2", 1);
  TU_CHECK(ebm_backend_create(&b3, &o, err, sizeof err) == 0, "%s", err);
  if (b3) {
    TU_CHECK(strstr(ebm_backend_describe(b3), " 2 threads") != NULL, "env override: %s",
             ebm_backend_describe(b3));
    ebm_backend_destroy(b3);
  }
  unsetenv("VKEBM_THREADS");
}

/* Two runs of the three convolutions (2 threads, several GEMM chunks) give identical bits. */
static void test_determinism(void) {
  const int B = 16, Ci = 32, Co = 32, H = 16, W = 16;
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  float *x = rnd(nx, 81), *w = rnd(nw, 82), *dy = rnd(ny, 83);
  float *out[2][3];
  for (int run = 0; run < 2; run++) {
    cpu_ctx ctx = {.col_budget = (size_t)Ci * 9 * H * W * 5};
    out[run][0] = malloc(ny * 4), out[run][1] = malloc(nx * 4), out[run][2] = calloc(nw, 4);
    conv3x3_forward_cpu(&ctx, out[run][0], x, w, B, Ci, Co, H, W);
    conv3x3_backward_input_cpu(&ctx, out[run][1], dy, w, B, Ci, Co, H, W);
    conv3x3_backward_weight_cpu(&ctx, out[run][2], dy, x, B, Ci, Co, H, W);
    cpu_ctx_release(&ctx);
  }
  TU_CHECK(memcmp(out[0][0], out[1][0], ny * 4) == 0, "conv forward not bitwise repeatable");
  TU_CHECK(memcmp(out[0][1], out[1][1], nx * 4) == 0, "conv bwd input not bitwise repeatable");
  TU_CHECK(memcmp(out[0][2], out[1][2], nw * 4) == 0, "conv bwd weight not bitwise repeatable");
  /* the same convolutions on 1 thread: BLAS partitions output blocks, not sums, so the bits
   * should not change; reported, not required (a BLAS may legitimately differ) */
  {
    cpu_ctx one = {.col_budget = (size_t)Ci * 9 * H * W * 5};
    cpu_set_threads(1);
    float *y1 = malloc(ny * 4);
    conv3x3_forward_cpu(&one, y1, x, w, B, Ci, Co, H, W);
    fprintf(stderr, "  conv forward 1 vs 2 threads: %s\n",
            memcmp(y1, out[0][0], ny * 4) ? "bits differ" : "identical bits");
    free(y1);
    cpu_ctx_release(&one);
  }
  for (int run = 0; run < 2; run++)
    for (int k = 0; k < 3; k++) free(out[run][k]);
  free(x), free(w), free(dy);

  /* chunked elementwise ops and sumsq: identical bits for 1 and 2 threads (fixed chunks) */
  const size_t n = 1000003;
  float *a = rnd(n, 84), *r[2][3];
  for (int t = 0; t < 2; t++) {
    cpu_set_threads(t + 1);
    r[t][0] = malloc(n * 4), r[t][1] = malloc(n * 4), r[t][2] = malloc(4);
    swish_forward_cpu(r[t][0], a, n);
    swish_backward_cpu(r[t][1], a, a, n);
    sumsq_cpu(r[t][2], a, n);
  }
  TU_CHECK(memcmp(r[0][0], r[1][0], n * 4) == 0, "swish forward differs between 1 and 2 threads");
  TU_CHECK(memcmp(r[0][1], r[1][1], n * 4) == 0, "swish backward differs between 1 and 2 threads");
  TU_CHECK(memcmp(r[0][2], r[1][2], 4) == 0, "sumsq differs between 1 and 2 threads");
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += (double)a[i] * a[i];
  const float want = (float)ss;
  tu_compare("sumsq n=1000003 (chunked, 2 threads)", r[1][2], &want, 1, 0, 1e-7);
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 3; k++) free(r[t][k]);
  free(a);
  cpu_set_threads(2);
}

int main(void) {
  be = tu_cpu_backend();
  fprintf(stderr, "backend: %s\n", ebm_backend_describe(be));
  char why[512] = "";
  TU_CHECK(cpu_blas_selfcheck(why, sizeof why) == 0, "%s", why);

  static const int conv_shapes[][5] = {
      /* B, Ci, Co, H, W */
      {1, 3, 13, 1, 1}, {7, 13, 3, 1, 1}, {1, 3, 3, 2, 2}, {7, 13, 13, 2, 2},
      {1, 13, 3, 5, 5}, {7, 3, 13, 5, 5}, {7, 13, 13, 8, 8}, {1, 3, 13, 32, 32},
      {2, 13, 3, 32, 32}, {3, 1, 2, 7, 3}, {2, 16, 16, 8, 5},
  };
  for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++)
    test_conv(conv_shapes[i][0], conv_shapes[i][1], conv_shapes[i][2], conv_shapes[i][3],
              conv_shapes[i][4], 1000 + 10 * (uint32_t)i);
  test_conv_chunking();
  test_elementwise();
  test_avgpool(1, 3, 2, 2);
  test_avgpool(7, 13, 8, 8);
  test_avgpool(2, 3, 32, 6);
  test_cond_and_head(1, 3, 1, 1);
  test_cond_and_head(7, 13, 25, 3);
  test_cond_and_head(2, 16, 64, 7);
  test_spectral_norm(13, 27);
  test_spectral_norm(3, 117);
  test_spectral_norm(64, 576);
  test_spectral_norm_backward(13, 27);
  test_bad_refs();
  test_determinism();

  TU_CHECK(ebm_sync(be) == 0, "no op failed on the shared backend");
  tu_backend_done(be);
  return tu_finish("test_cpu_ops");
}
