/* test_cpu_grad.c: finite-difference checks of every backward op of the cpu backend against its
 * forward op, through the public ebm_* API.
 *
 * Owns the gradient tests: for a forward y = f(p) and a fixed random projection R, the
 * objective is L(p) = <R, f(p)> (summed in double), and each backward op fed dy = R must give
 * dL/dp. Central differences (L(p+e) - L(p-e)) / 2e, with e the step actually representable in
 * float, on every coordinate of small tensors and 40 hashed coordinates of large ones. Most ops
 * are linear in each input separately (convs, pool, cond ops, head), so a large step is exact
 * up to rounding; swish uses a small step; spectral norm's "u, v held constant" objective is
 * evaluated in double here. Parameter gradients start from non-zero values (they accumulate).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/backend.h"
#include "vkebm/shared.h"

static ebm_backend *be;

static float *rnd(size_t n, uint32_t seed) { return tu_random(n, seed); }

static ebm_buffer *up(const float *x, size_t n) { return tu_upload_new(be, x, n); }

static float *down(ebm_buffer *b, size_t n) { return tu_download_new(be, b, n); }

/* A forward op bound to its buffers: run() writes out[nout]. */
typedef struct fwd {
  void (*run)(struct fwd *f);
  ebm_buffer *out;
  size_t nout;
  ebm_buffer *in[5];
  int dims[6];
} fwd;

static double objective(fwd *f, const float *R) {
  f->run(f);
  float *y = down(f->out, f->nout);
  double s = 0;
  for (size_t i = 0; i < f->nout; i++) s += (double)R[i] * y[i];
  free(y);
  return s;
}

/* Compares grad (the backward op's result minus its starting value) with central differences
 * of <R, f> in the coordinates of param. */
static void fd_check(const char *label, fwd *f, const float *R, ebm_buffer *param, size_t n,
                     const float *grad, float step) {
  enum { MAXK = 40 };
  float *p = down(param, n);
  size_t idx[MAXK];
  size_t k = n <= MAXK ? n : MAXK;
  for (size_t j = 0; j < k; j++)
    idx[j] = n <= MAXK ? j : vkebm_hash32((uint32_t)(j * 2654435761u + n)) % n;
  float num[MAXK], ana[MAXK];
  double scale = 0;
  for (size_t j = 0; j < k; j++) {
    const size_t i = idx[j];
    const float plus = p[i] + step, minus = p[i] - step;
    ebm_upload(be, ebm_at(ebm_ref_of(param), i), &plus, 1);
    const double lp = objective(f, R);
    ebm_upload(be, ebm_at(ebm_ref_of(param), i), &minus, 1);
    const double lm = objective(f, R);
    ebm_upload(be, ebm_at(ebm_ref_of(param), i), &p[i], 1);
    num[j] = (float)((lp - lm) / ((double)plus - (double)minus));
    ana[j] = grad[i];
    if (fabs(num[j]) > scale) scale = fabs(num[j]);
  }
  tu_compare(label, ana, num, k, 1e-4 * (scale + 1e-3), 2e-3);
  free(p);
}

/* grad = after - before (parameter gradients accumulate onto before) */
static float *delta(ebm_buffer *b, const float *before, size_t n) {
  float *g = down(b, n);
  for (size_t i = 0; i < n; i++) g[i] -= before[i];
  return g;
}

/* ---- conv ------------------------------------------------------------------------------- */

static void conv_run(fwd *f) {
  ebm_conv3x3_forward(be, ebm_ref_of(f->out), ebm_ref_of(f->in[0]), ebm_ref_of(f->in[1]),
                      f->dims[0], f->dims[1], f->dims[2], f->dims[3], f->dims[4]);
}

static void grad_conv(int B, int Ci, int Co, int H, int W) {
  const size_t nx = (size_t)B * Ci * H * W, ny = (size_t)B * Co * H * W, nw = (size_t)Co * Ci * 9;
  float *x = rnd(nx, 101), *w = rnd(nw, 102), *R = rnd(ny, 103), *dw0 = rnd(nw, 104);
  fwd f = {conv_run, ebm_alloc(be, ny), ny, {up(x, nx), up(w, nw)}, {B, Ci, Co, H, W}};
  ebm_buffer *bR = up(R, ny), *bdx = ebm_alloc(be, nx), *bdw = up(dw0, nw);
  ebm_fill(be, ebm_ref_of(bdx), 123.0f, nx); /* must be overwritten */
  ebm_conv3x3_backward_input(be, ebm_ref_of(bdx), ebm_ref_of(bR), ebm_ref_of(f.in[1]), B, Ci, Co,
                             H, W);
  ebm_conv3x3_backward_weight(be, ebm_ref_of(bdw), ebm_ref_of(bR), ebm_ref_of(f.in[0]), B, Ci, Co,
                              H, W);
  float *gx = down(bdx, nx), *gw = delta(bdw, dw0, nw);
  char label[96];
  snprintf(label, sizeof label, "FD conv dx B%d Ci%d Co%d %dx%d", B, Ci, Co, H, W);
  fd_check(label, &f, R, f.in[0], nx, gx, 0.25f);
  snprintf(label, sizeof label, "FD conv dw (+=) B%d Ci%d Co%d %dx%d", B, Ci, Co, H, W);
  fd_check(label, &f, R, f.in[1], nw, gw, 0.25f);
  ebm_free(be, f.out), ebm_free(be, f.in[0]), ebm_free(be, f.in[1]), ebm_free(be, bR);
  ebm_free(be, bdx), ebm_free(be, bdw);
  free(x), free(w), free(R), free(dw0), free(gx), free(gw);
}

/* ---- swish, pool ----------------------------------------------------------------------------- */

static void swish_run(fwd *f) {
  ebm_swish_forward(be, ebm_ref_of(f->out), ebm_ref_of(f->in[0]), f->nout);
}

static void grad_swish(size_t n) {
  float *x = rnd(n, 111), *R = rnd(n, 112);
  for (size_t i = 0; i < n; i++) x[i] *= 6.0f; /* cover the saturated tails */
  fwd f = {swish_run, ebm_alloc(be, n), n, {up(x, n)}};
  ebm_buffer *bR = up(R, n), *bdx = ebm_alloc(be, n);
  ebm_swish_backward(be, ebm_ref_of(bdx), ebm_ref_of(bR), ebm_ref_of(f.in[0]), n);
  float *g = down(bdx, n);
  fd_check("FD swish dx", &f, R, f.in[0], n, g, 1e-2f);
  ebm_free(be, f.out), ebm_free(be, f.in[0]), ebm_free(be, bR), ebm_free(be, bdx);
  free(x), free(R), free(g);
}

static void pool_run(fwd *f) {
  ebm_avgpool2_forward(be, ebm_ref_of(f->out), ebm_ref_of(f->in[0]), f->dims[0], f->dims[1],
                       f->dims[2], f->dims[3]);
}

static void grad_pool(int B, int C, int H, int W) {
  const size_t nx = (size_t)B * C * H * W, ny = nx / 4;
  float *x = rnd(nx, 121), *R = rnd(ny, 122);
  fwd f = {pool_run, ebm_alloc(be, ny), ny, {up(x, nx)}, {B, C, H, W}};
  ebm_buffer *bR = up(R, ny), *bdx = ebm_alloc(be, nx);
  ebm_avgpool2_backward(be, ebm_ref_of(bdx), ebm_ref_of(bR), B, C, H, W);
  float *g = down(bdx, nx);
  fd_check("FD avgpool2 dx", &f, R, f.in[0], nx, g, 0.25f);
  ebm_free(be, f.out), ebm_free(be, f.in[0]), ebm_free(be, bR), ebm_free(be, bdx);
  free(x), free(R), free(g);
}

/* ---- label conditioning, head ------------------------------------------------------------- */

static void cbias_run(fwd *f) {
  ebm_cond_bias_forward(be, ebm_ref_of(f->out), ebm_ref_of(f->in[0]), ebm_ref_of(f->in[1]),
                        ebm_ref_of(f->in[2]), f->dims[0], f->dims[1], f->dims[2], f->dims[3]);
}

static void cscale_run(fwd *f) {
  ebm_cond_scale_forward(be, ebm_ref_of(f->out), ebm_ref_of(f->in[0]), ebm_ref_of(f->in[1]),
                         ebm_ref_of(f->in[2]), ebm_ref_of(f->in[3]), f->dims[0], f->dims[1],
                         f->dims[2], f->dims[3]);
}

static void grad_cond(int B, int C, int HW, int L) {
  const size_t n = (size_t)B * C * HW, nc = (size_t)B * L, nG = (size_t)L * C;
  float *x = rnd(n, 131), *c = rnd(nc, 132), *G = rnd(nG, 133), *CB = rnd(C, 134), *R = rnd(n, 135);
  float *dG0 = rnd(nG, 136), *dc0 = rnd(nc, 137), *dCB0 = rnd(C, 138);
  ebm_buffer *bx = up(x, n), *bc = up(c, nc), *bG = up(G, nG), *bCB = up(CB, C), *bR = up(R, n);
  ebm_buffer *out = ebm_alloc(be, n), *bdG = up(dG0, nG), *bdc = up(dc0, nc), *bdCB = up(dCB0, C);
  ebm_buffer *bdx = ebm_alloc(be, n);
  char label[96];

  fwd fb = {cbias_run, out, n, {bx, bc, bG}, {B, C, HW, L}};
  ebm_cond_bias_backward(be, ebm_ref_of(bdG), ebm_ref_of(bdc), ebm_ref_of(bR), ebm_ref_of(bc),
                         ebm_ref_of(bG), B, C, HW, L);
  float *gG = delta(bdG, dG0, nG), *gc = delta(bdc, dc0, nc);
  snprintf(label, sizeof label, "FD cond_bias dG (+=) B%d C%d HW%d L%d", B, C, HW, L);
  fd_check(label, &fb, R, bG, nG, gG, 0.25f);
  snprintf(label, sizeof label, "FD cond_bias dc (+=) B%d C%d HW%d L%d", B, C, HW, L);
  fd_check(label, &fb, R, bc, nc, gc, 0.25f);
  fd_check("FD cond_bias dx (= dy)", &fb, R, bx, n, R, 0.25f);
  free(gG), free(gc);

  ebm_upload(be, ebm_ref_of(bdG), dG0, nG);
  ebm_upload(be, ebm_ref_of(bdc), dc0, nc);
  fwd fs = {cscale_run, out, n, {bx, bc, bG, bCB}, {B, C, HW, L}};
  ebm_cond_scale_backward(be, ebm_ref_of(bdx), ebm_ref_of(bdG), ebm_ref_of(bdCB), ebm_ref_of(bdc),
                          ebm_ref_of(bR), ebm_ref_of(bx), ebm_ref_of(bc), ebm_ref_of(bG),
                          ebm_ref_of(bCB), B, C, HW, L);
  float *gx = down(bdx, n);
  gG = delta(bdG, dG0, nG), gc = delta(bdc, dc0, nc);
  float *gCB = delta(bdCB, dCB0, C);
  snprintf(label, sizeof label, "FD cond_scale dx B%d C%d HW%d L%d", B, C, HW, L);
  fd_check(label, &fs, R, bx, n, gx, 0.25f);
  fd_check("FD cond_scale dG (+=)", &fs, R, bG, nG, gG, 0.25f);
  fd_check("FD cond_scale dc (+=)", &fs, R, bc, nc, gc, 0.25f);
  fd_check("FD cond_scale dCB (+=)", &fs, R, bCB, C, gCB, 0.25f);

  ebm_free(be, bx), ebm_free(be, bc), ebm_free(be, bG), ebm_free(be, bCB), ebm_free(be, bR);
  ebm_free(be, out), ebm_free(be, bdG), ebm_free(be, bdc), ebm_free(be, bdCB), ebm_free(be, bdx);
  free(x), free(c), free(G), free(CB), free(R), free(dG0), free(dc0), free(dCB0);
  free(gx), free(gG), free(gc), free(gCB);
}

static void head_run(fwd *f) {
  ebm_head_forward(be, ebm_ref_of(f->out), ebm_ref_of(f->in[0]), ebm_ref_of(f->in[1]),
                   ebm_ref_of(f->in[2]), f->dims[0], f->dims[1], f->dims[2]);
}

static void grad_head(int B, int C, int HW) {
  const size_t n = (size_t)B * C * HW;
  float *x = rnd(n, 141), *w = rnd(C, 142), bias = 0.3f, *R = rnd(B, 143), *dw0 = rnd(C, 144);
  float db0 = 0.7f;
  fwd f = {head_run, ebm_alloc(be, B), (size_t)B, {up(x, n), up(w, C), up(&bias, 1)}, {B, C, HW}};
  ebm_buffer *bR = up(R, B), *bdx = ebm_alloc(be, n), *bdw = up(dw0, C), *bdb = up(&db0, 1);
  ebm_head_backward(be, ebm_ref_of(bdx), ebm_ref_of(bdw), ebm_ref_of(bdb), ebm_ref_of(bR),
                    ebm_ref_of(f.in[0]), ebm_ref_of(f.in[1]), B, C, HW);
  float *gx = down(bdx, n), *gw = delta(bdw, dw0, C), *gb = delta(bdb, &db0, 1);
  char label[96];
  snprintf(label, sizeof label, "FD head dx B%d C%d HW%d", B, C, HW);
  fd_check(label, &f, R, f.in[0], n, gx, 0.25f);
  fd_check("FD head dw (+=)", &f, R, f.in[1], C, gw, 0.25f);
  fd_check("FD head dbias (+=)", &f, R, f.in[2], 1, gb, 0.25f);
  ebm_free(be, f.out), ebm_free(be, f.in[0]), ebm_free(be, f.in[1]), ebm_free(be, f.in[2]);
  ebm_free(be, bR), ebm_free(be, bdx), ebm_free(be, bdw), ebm_free(be, bdb);
  free(x), free(w), free(R), free(dw0), free(gx), free(gw), free(gb);
}

/* ---- spectral norm: L(w) = <R, w / (u^T W v)> with u, v from a forward pass, held fixed ---- */

static double sn_objective(const double *w, const float *u, const float *v, const float *R,
                           int rows, int cols) {
  double sigma = 0;
  for (int r = 0; r < rows; r++)
    for (int k = 0; k < cols; k++) sigma += u[r] * w[r * cols + k] * v[k];
  double s = 0;
  for (int i = 0; i < rows * cols; i++) s += R[i] * w[i] / sigma;
  return s;
}

static void grad_spectral_norm(int rows, int cols) {
  const size_t n = (size_t)rows * cols;
  float *w = rnd(n, 151), *u = rnd(rows, 152), *R = rnd(n, 153), *dw0 = rnd(n, 154);
  ebm_buffer *bw = up(w, n), *bu = up(u, rows), *bv = ebm_alloc(be, cols);
  ebm_buffer *bs = ebm_alloc(be, 1), *bwsn = ebm_alloc(be, n), *bR = up(R, n), *bdw = up(dw0, n);
  /* training forward (u updated), then the backward with that u, v, sigma */
  for (int it = 0; it < 3; it++)
    ebm_spectral_norm_forward(be, ebm_ref_of(bwsn), ebm_ref_of(bu), ebm_ref_of(bv),
                              ebm_ref_of(bs), ebm_ref_of(bw), rows, cols, 1);
  ebm_spectral_norm_backward(be, ebm_ref_of(bdw), ebm_ref_of(bR), ebm_ref_of(bwsn), ebm_ref_of(bu),
                             ebm_ref_of(bv), ebm_ref_of(bs), rows, cols);
  float *uu = down(bu, rows), *vv = down(bv, cols), *g = delta(bdw, dw0, n);
  double *wd = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) wd[i] = w[i];
  float *num = malloc(n * 4);
  const double eps = 1e-6;
  for (size_t i = 0; i < n; i++) {
    wd[i] = w[i] + eps;
    double lp = sn_objective(wd, uu, vv, R, rows, cols);
    wd[i] = w[i] - eps;
    double lm = sn_objective(wd, uu, vv, R, rows, cols);
    wd[i] = w[i];
    num[i] = (float)((lp - lm) / (2 * eps));
  }
  double scale = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(num[i]));
  char label[80];
  snprintf(label, sizeof label, "FD spectral_norm dw (+=) %dx%d", rows, cols);
  /* float sigma/u/v vs the double objective: ~1e-6 relative */
  tu_compare(label, g, num, n, 1e-4 * scale, 1e-4);
  ebm_free(be, bw), ebm_free(be, bu), ebm_free(be, bv), ebm_free(be, bs), ebm_free(be, bwsn);
  ebm_free(be, bR), ebm_free(be, bdw);
  free(w), free(u), free(R), free(dw0), free(uu), free(vv), free(g), free(wd), free(num);
}

int main(void) {
  be = tu_cpu_backend();
  grad_conv(1, 3, 13, 1, 1);
  grad_conv(7, 13, 3, 2, 2);
  grad_conv(2, 3, 13, 5, 5);
  grad_conv(1, 13, 3, 8, 8);
  grad_conv(1, 3, 3, 32, 32);
  grad_swish(1037);
  grad_pool(7, 3, 2, 2);
  grad_pool(1, 13, 8, 8);
  grad_cond(1, 3, 1, 1);
  grad_cond(7, 13, 5, 3);
  grad_head(1, 3, 1);
  grad_head(7, 13, 25);
  grad_spectral_norm(13, 27);
  grad_spectral_norm(3, 117);
  TU_CHECK(ebm_sync(be) == 0, "no op failed");
  tu_backend_done(be);
  return tu_finish("test_cpu_grad");
}
