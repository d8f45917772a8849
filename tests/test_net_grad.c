/* test_net_grad.c: the energy network on the cpu backend, checked against itself.
 *
 * 1. Gradients against central finite differences of F = sum_b w_b E_b(x | c) (w = dE,
 *    deliberately not all ones): dF/dx (a sample of pixels), dF/dc (every element) and dF/dθ for
 *    every parameter tensor (first, last and a few sampled elements of each), on the tiny
 *    configuration with batch 3 < max_batch 4 and label_dim 3, with and without spectral norm,
 *    and on R8 W4 blocks "1,2d,4,4d", which adds the block kinds tiny lacks (identity bypass
 *    without pooling, conv bypass with pooling).
 *    The differences are taken on a double-precision twin of the network written here from
 *    net.h's formulas (ref_energy), not on the float32 network: in float32, F's rounding error
 *    (~1e-7 |F|) divided by the step swamps the small gradients of the early blocks (we measured
 *    1e-1 relative errors on gradients of ~1e-6 with h = 3e-3). In double the FD error is
 *    ~1e-10, so what remains is the float32 analytic gradient's own rounding, and the bound can
 *    be tight: |fd - an| / max(|fd|, |an|, 1e-3 * max|an| over the tensor) <= 2e-3 (the floor
 *    keeps elements whose gradient is ~0 from turning rounding into a huge ratio). The float
 *    network's energies are also compared with the twin's (relative 1e-5).
 *    Spectral norm: the gradient (like PyTorch's) holds u and v constant. That is the true
 *    derivative of w / sigma(w) only when u is the converged top singular vector (then the
 *    derivative through u and v vanishes to first order), so the test first runs 300 power
 *    iterations and then keeps u fixed (the twin recomputes v, u', sigma from the fixed u, as
 *    refresh with update_u = 0 does).
 * 2. Determinism: the same forward/backward twice gives bitwise-equal energies and gradients.
 * 3. Accumulation: a second backward without zeroing doubles the parameter gradients exactly,
 *    param_grads = 0 leaves them untouched and gives the same dx.
 * 4. Model files: save -> load gives bitwise-equal energies, the metadata round-trips, and
 *    files with a missing, unexpected or misshaped tensor, a wrong format marker or a NaN are
 *    each refused with a message naming the problem.
 * 5. Configuration: presets, block-spec parsing, validation, the paper's weight count.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/model.h"
#include "vkebm/net.h"
#include "vkebm/safetensors.h"

#define B 3
#define MAXB 4
#define L 3
#define FD_BOUND 2e-3

static double worst_overall = 0;

typedef struct fixture {
  ebm_backend *be;
  ebm_net *net;
  ebm_net_config cfg;
  size_t nx, np, nu;
  ebm_buffer *x, *c, *e, *de, *dx, *dc;
  float *hx, *hc, *hp, *hu;
  float dE[B];
} fixture;

/* blocks: NULL = the tiny preset's ("1d,2,2d": identity+pool, bypass, identity+pool), else a
 * spec such as "1,2d,4,4d" that adds the other block kinds (identity without pooling, bypass
 * with pooling). */
static int g_head_flatten;   /* check_fd's networks use the flatten head */
static int g_coord_channels; /* ... and the coordinate planes */
static int g_head_label;     /* ... and the label gain on the head's inputs */
static int g_in_norm;        /* ... and standardised input pixels */

static void setup_blocks(fixture *f, ebm_backend *be, int sn, const char *blocks) {
  memset(f, 0, sizeof *f);
  f->be = be;
  TU_CHECK(ebm_net_config_preset(&f->cfg, "tiny", L) == 0, "tiny preset");
  f->cfg.spectral_norm = sn;
  f->cfg.head_flatten = g_head_flatten;
  f->cfg.coord_channels = g_coord_channels;
  f->cfg.head_label = g_head_label;
  if (g_in_norm) f->cfg.in_shift = 0.4f, f->cfg.in_scale = 3.0f;
  if (blocks) TU_CHECK(ebm_net_config_parse_blocks(&f->cfg, blocks) == 0, "blocks %s", blocks);
  char err[256];
  if (ebm_net_create(&f->net, be, &f->cfg, MAXB, 7, err, sizeof err)) {
    fprintf(stderr, "net create: %s\n", err);
    exit(1);
  }
  int R = f->cfg.resolution;
  f->nx = (size_t)B * 3 * R * R;
  f->np = ebm_net_param_count(f->net);
  f->nu = ebm_net_sn_u_count(f->net);
  f->x = ebm_alloc(be, f->nx);
  f->c = ebm_alloc(be, B * L);
  f->e = ebm_alloc(be, B);
  f->de = ebm_alloc(be, B);
  f->dx = ebm_alloc(be, f->nx);
  f->dc = ebm_alloc(be, B * L);
  f->hx = malloc(f->nx * sizeof(float));
  f->hc = malloc(B * L * sizeof(float));
  f->hp = malloc(f->np * sizeof(float));
  f->hu = malloc((f->nu ? f->nu : 1) * sizeof(float));
  tu_fill_uniform(f->hx, f->nx, 11, 0.0f, 1.0f);
  tu_fill_uniform(f->hc, B * L, 12, -1.0f, 1.0f);
  f->dE[0] = 1.0f;
  f->dE[1] = 0.7f;
  f->dE[2] = -0.5f;
  ebm_upload(be, ebm_ref_of(f->x), f->hx, f->nx);
  ebm_upload(be, ebm_ref_of(f->c), f->hc, B * L);
  ebm_upload(be, ebm_ref_of(f->de), f->dE, B);

  /* Give the label maps (zero at init) and the head bias non-zero values, so every path and
   * dE/dc are exercised; padding between tensors stays zero. */
  ebm_net_get_params(f->net, f->hp, f->hu);
  for (int i = 0; i < ebm_net_num_params(f->net); i++) {
    const ebm_param *p = ebm_net_param(f->net, i);
    if (p->kind == EBM_PARAM_CONV) continue;
    float tmp[4096];
    tu_fill_uniform(tmp, p->numel, 100 + (uint32_t)i, -0.4f, 0.4f);
    for (size_t j = 0; j < p->numel; j++) f->hp[p->offset + j] += tmp[j];
  }
  ebm_net_set_params(f->net, f->hp, NULL);
  for (int it = 0; it < 300; it++) ebm_net_refresh(f->net, 1);
  ebm_net_get_params(f->net, f->hp, f->hu);
  ebm_net_refresh(f->net, 0);
}

static void setup(fixture *f, ebm_backend *be, int sn) { setup_blocks(f, be, sn, NULL); }

static void teardown(fixture *f) {
  ebm_buffer *bufs[] = {f->x, f->c, f->e, f->de, f->dx, f->dc};
  for (int i = 0; i < 6; i++) ebm_free(f->be, bufs[i]);
  ebm_net_destroy(f->net);
  free(f->hx);
  free(f->hc);
  free(f->hp);
  free(f->hu);
}

/* ---- the double-precision twin of the network (net.h's formulas, plain loops) ---------- */

/* y[Bn,Co,H,H] = conv3x3(x[Bn,Ci,H,H], w[Co,Ci,3,3]), zero padding */
static void ref_conv(double *y, const double *x, const double *w, int Bn, int Ci, int Co, int H) {
  for (int b = 0; b < Bn; b++)
    for (int o = 0; o < Co; o++)
      for (int i = 0; i < H; i++)
        for (int j = 0; j < H; j++) {
          double acc = 0;
          for (int ci = 0; ci < Ci; ci++)
            for (int ki = 0; ki < 3; ki++)
              for (int kj = 0; kj < 3; kj++) {
                int ii = i + ki - 1, jj = j + kj - 1;
                if (ii < 0 || jj < 0 || ii >= H || jj >= H) continue;
                acc += w[((o * Ci + ci) * 3 + ki) * 3 + kj] * x[((b * Ci + ci) * H + ii) * H + jj];
              }
          y[((b * Co + o) * H + i) * H + j] = acc;
        }
}

static double ref_swish1(double v) { return v / (1 + exp(-v)); }

/* y[Bn,Ch,HW] = x + (c·GB)[b, ch]: the label bias, c[Bn,Ld], gb[Ld,Ch] */
static void ref_add_label_bias(double *y, const double *x, const double *c, const double *gb,
                               int Bn, int Ch, int Ld, int HW) {
  for (int b = 0; b < Bn; b++)
    for (int ch = 0; ch < Ch; ch++) {
      double bias = 0;
      for (int l = 0; l < Ld; l++) bias += c[b * Ld + l] * gb[l * Ch + ch];
      for (int p = 0; p < HW; p++) y[(b * Ch + ch) * HW + p] = x[(b * Ch + ch) * HW + p] + bias;
    }
}

/* w_sn = w / sigma with one power iteration from the fixed u (u not updated) */
static void ref_spectral_norm(double *w_sn, const double *w, const double *u, int rows, int cols) {
  double *v = calloc((size_t)cols, sizeof *v), *u2 = calloc((size_t)rows, sizeof *u2);
  double n = 0;
  for (int j = 0; j < cols; j++) {
    for (int i = 0; i < rows; i++) v[j] += w[i * cols + j] * u[i];
    n += v[j] * v[j];
  }
  n = sqrt(n) + 1e-12;
  for (int j = 0; j < cols; j++) v[j] /= n;
  n = 0;
  for (int i = 0; i < rows; i++) {
    for (int j = 0; j < cols; j++) u2[i] += w[i * cols + j] * v[j];
    n += u2[i] * u2[i];
  }
  n = sqrt(n) + 1e-12;
  double sigma = 0;
  for (int i = 0; i < rows; i++) {
    u2[i] /= n;
    for (int j = 0; j < cols; j++) sigma += u2[i] * w[i * cols + j] * v[j];
  }
  for (int k = 0; k < rows * cols; k++) w_sn[k] = w[k] / sigma;
  free(v);
  free(u2);
}

/* Finds a parameter by name (the twin addresses parameters by their file names). */
static const ebm_param *ref_param(ebm_net *net, const char *name) {
  for (int i = 0; i < ebm_net_num_params(net); i++)
    if (!strcmp(ebm_net_param(net, i)->name, name)) return ebm_net_param(net, i);
  fprintf(stderr, "twin: no parameter %s\n", name);
  exit(1);
}

/* The weight a conv uses: w_sn or w itself, as a fresh double array. */
static double *ref_conv_weight(ebm_net *net, const ebm_param *p, const double *P, const double *U) {
  double *w = malloc(p->numel * sizeof *w);
  if (p->sn_index >= 0)
    ref_spectral_norm(w, P + p->offset, U + p->sn_u_offset, p->shape[0], p->shape[1] * 9);
  else
    memcpy(w, P + p->offset, p->numel * sizeof *w);
  return w;
}

/* energy[Bn] of the network with parameters P (flat layout), u vectors U, input X, labels C. */
static void ref_energy(ebm_net *net, const double *P, const double *U, const double *X,
                       const double *C, int Bn, double *energy) {
  const ebm_net_config *cfg = ebm_net_config_of(net);
  int R = cfg->resolution, Wd = cfg->base_width, Ld = cfg->label_dim;
  char name[64];
  double *h = malloc((size_t)Bn * Wd * R * R * sizeof *h);
  double *w = ref_conv_weight(net, ref_param(net, "stem.weight"), P, U);
  int Ci = cfg->in_channels + 2 * cfg->coord_channels;
  double *Xc = malloc((size_t)Bn * Ci * R * R * sizeof *Xc); /* [x, X, Y] */
  for (int b = 0; b < Bn; b++)
    for (int ch = 0; ch < Ci; ch++)
      for (int y = 0; y < R; y++)
        for (int x = 0; x < R; x++)
          Xc[((size_t)(b * Ci + ch) * R + y) * R + x] =
              ch < cfg->in_channels
                  ? (cfg->in_scale > 0
                         ? (X[((size_t)(b * cfg->in_channels + ch) * R + y) * R + x] - cfg->in_shift) *
                               cfg->in_scale
                         : X[((size_t)(b * cfg->in_channels + ch) * R + y) * R + x])
              : ch == cfg->in_channels ? 2.0 * (x + 0.5) / R - 1.0
                                       : 1.0 - 2.0 * (y + 0.5) / R;
  ref_conv(h, Xc, w, Bn, Ci, Wd, R);
  free(Xc);
  free(w);
  for (size_t i = 0; i < (size_t)Bn * Wd * R * R; i++) h[i] = ref_swish1(h[i]);
  int cin = Wd, H = R;
  for (int k = 0; k < cfg->num_blocks; k++) {
    int cout = Wd * cfg->block_mult[k], HW = H * H;
    size_t nin = (size_t)Bn * cin * HW, nout = (size_t)Bn * cout * HW;
    double *t = malloc(nin * sizeof *t), *a = malloc(nout * sizeof *a), *bb = malloc(nout * sizeof *bb);
    double *t2 = malloc(nout * sizeof *t2), *r = malloc(nout * sizeof *r);
    snprintf(name, sizeof name, "blocks.%d.gb1", k);
    const double *gb1 = P + ref_param(net, name)->offset;
    snprintf(name, sizeof name, "blocks.%d.gb2", k);
    const double *gb2 = P + ref_param(net, name)->offset;
    snprintf(name, sizeof name, "blocks.%d.g2", k);
    const double *g2 = P + ref_param(net, name)->offset;
    snprintf(name, sizeof name, "blocks.%d.cb2", k);
    const double *cb2 = P + ref_param(net, name)->offset;
    /* a = swish(conv1(h + c·GB1)) */
    ref_add_label_bias(t, h, C, gb1, Bn, cin, Ld, HW);
    snprintf(name, sizeof name, "blocks.%d.conv1.weight", k);
    w = ref_conv_weight(net, ref_param(net, name), P, U);
    ref_conv(a, t, w, Bn, cin, cout, H);
    free(w);
    for (size_t i = 0; i < nout; i++) a[i] = ref_swish1(a[i]);
    /* b = conv2(a + c·GB2) * (c·G2 + CB2) */
    ref_add_label_bias(t2, a, C, gb2, Bn, cout, Ld, HW);
    snprintf(name, sizeof name, "blocks.%d.conv2.weight", k);
    w = ref_conv_weight(net, ref_param(net, name), P, U);
    ref_conv(bb, t2, w, Bn, cout, cout, H);
    free(w);
    for (int b = 0; b < Bn; b++)
      for (int ch = 0; ch < cout; ch++) {
        double sc = cb2[ch];
        for (int l = 0; l < Ld; l++) sc += C[b * Ld + l] * g2[l * cout + ch];
        for (int p = 0; p < HW; p++) bb[(b * cout + ch) * HW + p] *= sc;
      }
    /* r = b + bypass(h) */
    if (cin != cout) {
      snprintf(name, sizeof name, "blocks.%d.bypass.weight", k);
      w = ref_conv_weight(net, ref_param(net, name), P, U);
      ref_conv(r, h, w, Bn, cin, cout, H);
      free(w);
      for (size_t i = 0; i < nout; i++) r[i] += bb[i];
    } else {
      for (size_t i = 0; i < nout; i++) r[i] = bb[i] + h[i];
    }
    /* out = swish(avgpool2?(r)) */
    int Ho = cfg->block_down[k] ? H / 2 : H;
    double *out = malloc((size_t)Bn * cout * Ho * Ho * sizeof *out);
    for (int bc = 0; bc < Bn * cout; bc++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Ho; j++) {
          double v = cfg->block_down[k]
                         ? 0.25 * (r[(bc * H + 2 * i) * H + 2 * j] + r[(bc * H + 2 * i) * H + 2 * j + 1] +
                                   r[(bc * H + 2 * i + 1) * H + 2 * j] +
                                   r[(bc * H + 2 * i + 1) * H + 2 * j + 1])
                         : r[(bc * H + i) * H + j];
          out[(bc * Ho + i) * Ho + j] = ref_swish1(v);
        }
    free(t);
    free(a);
    free(bb);
    free(t2);
    free(r);
    free(h);
    h = out;
    cin = cout;
    H = Ho;
  }
  const double *hw = P + ref_param(net, "head.weight")->offset;
  const double *hb = P + ref_param(net, "head.bias")->offset;
  if (cfg->head_label) { /* h * (c·GH + CBH), one gain per head input */
    const double *gh = P + ref_param(net, "head.label_gain")->offset;
    const double *cbh = P + ref_param(net, "head.label_base")->offset;
    int F = cfg->head_flatten ? cin * H * H : cin, per = cfg->head_flatten ? 1 : H * H;
    for (int b = 0; b < Bn; b++)
      for (int f = 0; f < F; f++) {
        double sc = cbh[f];
        for (int l = 0; l < Ld; l++) sc += C[b * Ld + l] * gh[l * F + f];
        for (int p = 0; p < per; p++) h[((size_t)b * F + f) * per + p] *= sc;
      }
  }
  for (int b = 0; b < Bn; b++) {
    double e = hb[0];
    for (int ch = 0; ch < cin; ch++) {
      double m = 0;
      for (int p = 0; p < H * H; p++)
        if (cfg->head_flatten) e += hw[ch * H * H + p] * h[(b * cin + ch) * H * H + p];
        else m += h[(b * cin + ch) * H * H + p];
      if (!cfg->head_flatten) e += hw[ch] * m / (H * H);
    }
    energy[b] = e;
  }
  free(h);
}

typedef struct twin {
  ebm_net *net;
  double *P, *U, *X, *C;
  const float *dE;
} twin;

/* F = sum_b dE_b E_b on the twin */
static double twin_objective(const twin *t) {
  double e[B], F = 0;
  ref_energy(t->net, t->P, t->U, t->X, t->C, B, e);
  for (int b = 0; b < B; b++) F += (double)t->dE[b] * e[b];
  return F;
}

/* Central difference of the twin's F in the element *v. */
static double twin_fd(const twin *t, double *v, double h) {
  double keep = *v;
  *v = keep + h;
  double fp = twin_objective(t);
  *v = keep - h;
  double fm = twin_objective(t);
  *v = keep;
  return (fp - fm) / (2 * h);
}

typedef struct fd_stats {
  double worst;
  size_t worst_index;
  double worst_fd, worst_an;
  int n;
} fd_stats;

static void fd_account(fd_stats *s, size_t index, double fd, double an, double floor) {
  double scale = fmax(fmax(fabs(fd), fabs(an)), floor);
  double err = scale > 0 ? fabs(fd - an) / scale : 0;
  if (isnan(err)) err = INFINITY;
  if (err > s->worst || s->n == 0) {
    s->worst = err;
    s->worst_index = index;
    s->worst_fd = fd;
    s->worst_an = an;
  }
  s->n++;
}

static void fd_report(const char *what, const fd_stats *s) {
  int ok = s->worst <= FD_BOUND;
  fprintf(stderr, "  FD %-34s n=%-3d worst rel err %.2e at [%zu] (fd %.6g, analytic %.6g) %s\n",
          what, s->n, s->worst, s->worst_index, s->worst_fd, s->worst_an, ok ? "ok" : "FAIL");
  if (s->worst > worst_overall) worst_overall = s->worst;
  TU_CHECK(ok, "%s: finite differences disagree with backward", what);
}

static double max_abs(const float *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
  return m;
}

static double *to_double(const float *a, size_t n) {
  double *d = malloc((n ? n : 1) * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = a[i];
  return d;
}

static void check_fd(ebm_backend *be, int sn, const char *blocks) {
  fixture f;
  setup_blocks(&f, be, sn, blocks);
  char desc[128];
  ebm_net_config_describe(&f.cfg, desc, sizeof desc);
  fprintf(stderr, "finite differences (double twin), %s, batch %d\n", desc, B);
  /* analytic, float32 network */
  float e[B];
  ebm_net_forward(f.net, ebm_ref_of(f.e), ebm_ref_of(f.x), ebm_ref_of(f.c), B);
  ebm_download(be, e, ebm_ref_of(f.e), B);
  ebm_net_zero_grads(f.net);
  ebm_net_backward(f.net, ebm_ref_of(f.de), ebm_ref_of(f.dx), ebm_ref_of(f.dc), 1, B);
  float *adx = malloc(f.nx * sizeof(float)), adc[B * L];
  float *ag = malloc(f.np * sizeof(float));
  ebm_download(be, adx, ebm_ref_of(f.dx), f.nx);
  ebm_download(be, adc, ebm_ref_of(f.dc), B * L);
  ebm_download(be, ag, ebm_net_grads(f.net), f.np);

  twin t = {f.net, to_double(f.hp, f.np), to_double(f.hu, f.nu), to_double(f.hx, f.nx),
            to_double(f.hc, B * L), f.dE};
  double re[B];
  ref_energy(f.net, t.P, t.U, t.X, t.C, B, re);
  float ref_e[B];
  for (int b = 0; b < B; b++) ref_e[b] = (float)re[b];
  tu_compare("energy: float net vs double twin", e, ref_e, B, 1e-6, 1e-5);

  const double h = 1e-4; /* in double: truncation ~h^2 = 1e-8, rounding ~1e-16/h = 1e-12 */
  fd_stats s = {0};
  double floor = 1e-3 * max_abs(adx, f.nx);
  for (int k = 0; k < 24; k++) {
    size_t i = (size_t)k * 7919 % f.nx;
    fd_account(&s, i, twin_fd(&t, &t.X[i], h), adx[i], floor);
  }
  fd_report("dE/dx", &s);

  memset(&s, 0, sizeof s);
  floor = 1e-3 * max_abs(adc, B * L);
  for (size_t i = 0; i < B * L; i++) fd_account(&s, i, twin_fd(&t, &t.C[i], h), adc[i], floor);
  TU_CHECK(max_abs(adc, B * L) > 1e-4, "dE/dc is all zero");
  fd_report("dE/dc", &s);

  for (int pi = 0; pi < ebm_net_num_params(f.net); pi++) {
    const ebm_param *p = ebm_net_param(f.net, pi);
    memset(&s, 0, sizeof s);
    floor = 1e-3 * max_abs(ag + p->offset, p->numel);
    TU_CHECK(max_abs(ag + p->offset, p->numel) > 0, "%s: gradient is all zero", p->name);
    int samples = p->numel < 8 ? (int)p->numel : 8;
    for (int k = 0; k < samples; k++) {
      size_t j = k == 0 ? 0 : k == 1 ? p->numel - 1 : ((size_t)k * 104729) % p->numel;
      fd_account(&s, j, twin_fd(&t, &t.P[p->offset + j], h), ag[p->offset + j], floor);
    }
    char what[96];
    snprintf(what, sizeof what, "dE/d %s", p->name);
    fd_report(what, &s);
  }
  /* Padding between tensors never receives gradient. */
  size_t pad_nonzero = 0;
  for (size_t i = 0; i < f.np; i++) {
    int inside = 0;
    for (int pi = 0; pi < ebm_net_num_params(f.net) && !inside; pi++) {
      const ebm_param *p = ebm_net_param(f.net, pi);
      inside = i >= p->offset && i < p->offset + p->numel;
    }
    if (!inside && ag[i] != 0) pad_nonzero++;
  }
  TU_CHECK(pad_nonzero == 0, "%zu padding gradient floats are non-zero", pad_nonzero);
  free(t.P);
  free(t.U);
  free(t.X);
  free(t.C);
  free(adx);
  free(ag);
  teardown(&f);
}

/* Runs forward + backward (zeroing grads) and downloads everything. */
static void run_all(fixture *f, float *e, float *dx, float *dc, float *g) {
  ebm_net_forward(f->net, ebm_ref_of(f->e), ebm_ref_of(f->x), ebm_ref_of(f->c), B);
  ebm_net_zero_grads(f->net);
  ebm_net_backward(f->net, ebm_ref_of(f->de), ebm_ref_of(f->dx), ebm_ref_of(f->dc), 1, B);
  ebm_download(f->be, e, ebm_ref_of(f->e), B);
  ebm_download(f->be, dx, ebm_ref_of(f->dx), f->nx);
  ebm_download(f->be, dc, ebm_ref_of(f->dc), B * L);
  ebm_download(f->be, g, ebm_net_grads(f->net), f->np);
}

static void check_determinism_and_accumulation(ebm_backend *be) {
  fixture f;
  setup(&f, be, 1);
  float e1[B], e2[B], dc1[B * L], dc2[B * L];
  float *dx1 = malloc(f.nx * 4), *dx2 = malloc(f.nx * 4), *g1 = malloc(f.np * 4),
        *g2 = malloc(f.np * 4);
  run_all(&f, e1, dx1, dc1, g1);
  run_all(&f, e2, dx2, dc2, g2);
  TU_CHECK(!memcmp(e1, e2, sizeof e1), "energies differ between identical runs");
  TU_CHECK(!memcmp(dx1, dx2, f.nx * 4), "dE/dx differs between identical runs");
  TU_CHECK(!memcmp(dc1, dc2, sizeof dc1), "dE/dc differs between identical runs");
  TU_CHECK(!memcmp(g1, g2, f.np * 4), "dE/dθ differs between identical runs");

  /* A second backward without zeroing: grads = g1 + g1 exactly. */
  ebm_net_backward(f.net, ebm_ref_of(f.de), EBM_NOREF, EBM_NOREF, 1, B);
  ebm_download(be, g2, ebm_net_grads(f.net), f.np);
  size_t bad = 0;
  for (size_t i = 0; i < f.np; i++) bad += g2[i] != g1[i] + g1[i];
  TU_CHECK(bad == 0, "%zu parameter gradients did not accumulate (+=)", bad);

  /* param_grads = 0: grads untouched, dx identical. */
  memcpy(g1, g2, f.np * 4);
  ebm_net_backward(f.net, ebm_ref_of(f.de), ebm_ref_of(f.dx), EBM_NOREF, 0, B);
  ebm_download(be, g2, ebm_net_grads(f.net), f.np);
  ebm_download(be, dx2, ebm_ref_of(f.dx), f.nx);
  TU_CHECK(!memcmp(g1, g2, f.np * 4), "param_grads=0 changed the parameter gradients");
  TU_CHECK(!memcmp(dx1, dx2, f.nx * 4), "param_grads=0 gave a different dE/dx");

  /* dE/dc alone (label inference: no parameter gradients, no dx) equals dE/dc from the full
   * backward, and leaves the parameter gradients untouched. */
  ebm_net_backward(f.net, ebm_ref_of(f.de), EBM_NOREF, ebm_ref_of(f.dc), 0, B);
  TU_CHECK(ebm_sync(be) == 0, "dE/dc-only backward failed");
  ebm_download(be, dc2, ebm_ref_of(f.dc), B * L);
  ebm_download(be, g2, ebm_net_grads(f.net), f.np);
  TU_CHECK(!memcmp(dc1, dc2, sizeof dc1), "dE/dc-only backward differs from the full one");
  TU_CHECK(!memcmp(g1, g2, f.np * 4), "dE/dc-only backward changed the parameter gradients");

  /* Batch independence: image 0 alone gives the same energy as in the batch of 3. */
  float e0;
  ebm_net_forward(f.net, ebm_ref_of(f.e), ebm_ref_of(f.x), ebm_ref_of(f.c), 1);
  ebm_download(be, &e0, ebm_ref_of(f.e), 1);
  TU_CHECK(fabsf(e0 - e1[0]) <= 1e-5f * (1 + fabsf(e1[0])), "batch 1 energy %g != %g", e0, e1[0]);
  /* Misuse is refused without writing anything: a batch over max_batch, a backward whose
   * batch differs from the last forward's. */
  float sentinel[B] = {42, 42, 42}, back[B];
  ebm_upload(be, ebm_ref_of(f.e), sentinel, B);
  ebm_net_forward(f.net, ebm_ref_of(f.e), ebm_ref_of(f.x), ebm_ref_of(f.c), MAXB + 1);
  ebm_download(be, back, ebm_ref_of(f.e), B);
  TU_CHECK(!memcmp(back, sentinel, sizeof back), "forward over max_batch wrote energies");
  ebm_net_forward(f.net, ebm_ref_of(f.e), ebm_ref_of(f.x), ebm_ref_of(f.c), 1);
  ebm_download(be, g1, ebm_net_grads(f.net), f.np);
  ebm_net_backward(f.net, ebm_ref_of(f.de), EBM_NOREF, EBM_NOREF, 1, 2);
  ebm_download(be, g2, ebm_net_grads(f.net), f.np);
  TU_CHECK(!memcmp(g1, g2, f.np * 4), "backward with a mismatched batch changed the gradients");
  TU_CHECK(ebm_sync(be) == 0, "backend failed after refused misuse");
  fprintf(stderr, "determinism and accumulation: energies %.6f %.6f %.6f\n", e1[0], e1[1], e1[2]);
  free(dx1);
  free(dx2);
  free(g1);
  free(g2);
  teardown(&f);
}

/* Writes a copy of src with one change: drop (name), add (extra name), reshape (name), meta. */
typedef enum { EDIT_DROP, EDIT_ADD, EDIT_RESHAPE, EDIT_META, EDIT_NAN } edit_kind;

static void write_edited(const st_file *src, const char *path, edit_kind kind, const char *name,
                         const char *value) {
  st_writer *w = st_writer_new();
  for (int i = 0; i < src->ntensors; i++) {
    const st_tensor *t = &src->tensors[i];
    if (kind == EDIT_DROP && !strcmp(t->name, name)) continue;
    int64_t shape[ST_MAX_DIMS];
    int ndim = t->ndim;
    memcpy(shape, t->shape, sizeof shape);
    if (kind == EDIT_RESHAPE && !strcmp(t->name, name)) {
      shape[0] = 1;
      shape[1] = (int64_t)t->numel;
      ndim = 2;
    }
    float *copy = malloc(t->numel * 4);
    memcpy(copy, t->data, t->numel * 4);
    if (kind == EDIT_NAN && !strcmp(t->name, name)) copy[0] = NAN;
    st_writer_add(w, t->name, shape, ndim, copy);
    free(copy);
  }
  if (kind == EDIT_ADD) {
    int64_t shape[1] = {2};
    float data[2] = {1, 2};
    st_writer_add(w, name, shape, 1, data);
  }
  for (int i = 0; i < src->nmeta; i++) {
    const char *v = src->meta[i].value;
    if (kind == EDIT_META && !strcmp(src->meta[i].key, name)) v = value;
    st_writer_meta(w, src->meta[i].key, v);
  }
  char err[256];
  TU_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "write %s: %s", path, err);
  st_writer_free(w);
}

static void expect_refusal(ebm_backend *be, const char *path, const char *needle) {
  ebm_net *net = NULL;
  char err[512] = "";
  int rc = ebm_model_load(path, be, 2, &net, NULL, NULL, 0, err, sizeof err);
  TU_CHECK(rc != 0 && net == NULL, "a broken file was accepted (expected: %s)", needle);
  TU_CHECK(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
  fprintf(stderr, "  refused: %s\n", err);
  ebm_net_destroy(net);
}

static void check_model_files(ebm_backend *be) {
  fixture f;
  setup(&f, be, 1);
  char dir[] = "/tmp/vkebm_test_net_XXXXXX";
  if (!mkdtemp(dir)) {
    TU_CHECK(0, "mkdtemp failed");
    teardown(&f);
    return;
  }
  char path[256], bad[256];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);

  ebm_model_info info;
  ebm_model_info_default(&info, &f.cfg);
  snprintf(info.concept, sizeof info.concept, "color");
  info.label_kind = EBM_LABEL_ONEHOT;
  const char *names[L] = {"red", "green", "blue"};
  for (int k = 0; k < L; k++) snprintf(info.label_names[k], EBM_LABEL_NAME_MAX, "%s", names[k]);
  info.step = 1234;
  info.seed = 18446744073709551557ull;
  snprintf(info.data_spec, sizeof info.data_spec, "scenes:cubes seed=3");
  info.langevin_step_lr = 10.0f;
  info.langevin_noise = 0.005f;
  float adam[5] = {1, 2, 3, 4, 5};
  ebm_model_extra ex = {.name = "adam.m", .data = adam, .numel = 5};
  char err[512];
  TU_CHECK(ebm_model_save(path, f.net, &info, &ex, 1, err, sizeof err) == 0, "save: %s", err);

  ebm_model_info back;
  TU_CHECK(ebm_model_read_info(path, &back, err, sizeof err) == 0, "read_info: %s", err);
  TU_CHECK(ebm_net_config_equal(&back.config, &f.cfg), "config did not round-trip");
  TU_CHECK(!strcmp(back.concept, "color") && back.label_kind == EBM_LABEL_ONEHOT &&
               !strcmp(back.label_names[2], "blue") && back.step == 1234 &&
               back.seed == 18446744073709551557ull && !strcmp(back.data_spec, info.data_spec) &&
               back.langevin_step_lr == 10.0f && back.langevin_noise == 0.005f,
           "metadata did not round-trip");
  TU_CHECK(ebm_model_label_index(&back, "green") == 1, "label index");

  ebm_net *net2 = NULL;
  float adam_back[5] = {0};
  ebm_model_extra ex2 = {.name = "adam.m", .data = adam_back, .numel = 5, .required = 1};
  TU_CHECK(ebm_model_load(path, be, MAXB, &net2, &back, &ex2, 1, err, sizeof err) == 0, "load: %s",
           err);
  if (net2) {
    TU_CHECK(ex2.found && !memcmp(adam, adam_back, sizeof adam), "extra tensor did not round-trip");
    float e1[B], e2[B];
    ebm_net_forward(f.net, ebm_ref_of(f.e), ebm_ref_of(f.x), ebm_ref_of(f.c), B);
    ebm_download(be, e1, ebm_ref_of(f.e), B);
    ebm_net_forward(net2, ebm_ref_of(f.e), ebm_ref_of(f.x), ebm_ref_of(f.c), B);
    ebm_download(be, e2, ebm_ref_of(f.e), B);
    TU_CHECK(!memcmp(e1, e2, sizeof e1), "energies differ after save -> load (%g vs %g)", e1[0],
             e2[0]);
    float *p2 = malloc(f.np * 4), *u2 = malloc((f.nu ? f.nu : 1) * 4);
    ebm_net_get_params(net2, p2, u2);
    TU_CHECK(!memcmp(p2, f.hp, f.np * 4) && !memcmp(u2, f.hu, f.nu * 4),
             "parameters or u differ after save -> load");
    free(p2);
    free(u2);
    ebm_net_destroy(net2);
  }
  /* A reader that does not ask for the extra still loads the file. */
  net2 = NULL;
  TU_CHECK(ebm_model_load(path, be, 1, &net2, NULL, NULL, 0, err, sizeof err) == 0,
           "load without extras: %s", err);
  ebm_net_destroy(net2);

  /* A vector label space round-trips its component names and ranges. */
  char vpath[256];
  snprintf(vpath, sizeof vpath, "%s/vector.safetensors", dir);
  ebm_model_info vec;
  ebm_model_info_default(&vec, &f.cfg);
  snprintf(vec.concept, sizeof vec.concept, "position");
  const char *comp[L] = {"x", "y", "z"};
  for (int k = 0; k < L; k++) {
    snprintf(vec.label_names[k], EBM_LABEL_NAME_MAX, "%s", comp[k]);
    vec.label_min[k] = -1.5f + (float)k;
    vec.label_max[k] = 0.25f + (float)k;
  }
  TU_CHECK(ebm_model_save(vpath, f.net, &vec, NULL, 0, err, sizeof err) == 0, "save: %s", err);
  TU_CHECK(ebm_model_read_info(vpath, &back, err, sizeof err) == 0, "read_info: %s", err);
  TU_CHECK(back.label_kind == EBM_LABEL_VECTOR && !strcmp(back.concept, "position") &&
               !strcmp(back.label_names[1], "y") && back.label_min[2] == 0.5f &&
               back.label_max[0] == 0.25f,
           "vector label space did not round-trip");
  /* Invalid label spaces are refused at save time. */
  vec.label_max[1] = vec.label_min[1];
  TU_CHECK(ebm_model_save(vpath, f.net, &vec, NULL, 0, err, sizeof err) != 0 &&
               strstr(err, "'y'"), "an empty label range was saved: %s", err);
  vec.label_max[1] = 2;
  snprintf(vec.label_names[2], EBM_LABEL_NAME_MAX, "x");
  TU_CHECK(ebm_model_save(vpath, f.net, &vec, NULL, 0, err, sizeof err) != 0 &&
               strstr(err, "twice"), "duplicate label names were saved: %s", err);
  unlink(vpath);

  st_file src;
  TU_CHECK(st_read(&src, path, 0, err, sizeof err) == 0, "st_read: %s", err);
  write_edited(&src, bad, EDIT_DROP, "blocks.1.gb2", NULL);
  expect_refusal(be, bad, "missing tensor 'blocks.1.gb2'");
  write_edited(&src, bad, EDIT_DROP, "sn_u.blocks.0.conv1.weight", NULL);
  expect_refusal(be, bad, "missing tensor 'sn_u.blocks.0.conv1.weight'");
  write_edited(&src, bad, EDIT_ADD, "blocks.9.conv1.weight", NULL);
  expect_refusal(be, bad, "unexpected tensor 'blocks.9.conv1.weight'");
  write_edited(&src, bad, EDIT_RESHAPE, "blocks.0.g2", NULL);
  expect_refusal(be, bad, "tensor 'blocks.0.g2' has shape [1,12], expected [3,4]");
  write_edited(&src, bad, EDIT_META, "format", "pytorch");
  expect_refusal(be, bad, "format is 'pytorch'");
  write_edited(&src, bad, EDIT_META, "format_version", "2");
  expect_refusal(be, bad, "format version '2'");
  write_edited(&src, bad, EDIT_META, "blocks", "1d,2,2x");
  expect_refusal(be, bad, "'blocks'");
  write_edited(&src, bad, EDIT_META, "label_names", "red,green");
  expect_refusal(be, bad, "'label_names' has 2 entries");
  write_edited(&src, bad, EDIT_NAN, "head.weight", NULL);
  expect_refusal(be, bad, "head.weight");
  /* A different configuration than the tensors: base_width 8 expects other shapes. */
  write_edited(&src, bad, EDIT_META, "base_width", "8");
  expect_refusal(be, bad, "has shape");
  ex2.name = "adam.v";
  net2 = NULL;
  TU_CHECK(ebm_model_load(path, be, 1, &net2, NULL, &ex2, 1, err, sizeof err) != 0 &&
               strstr(err, "missing tensor 'extra.adam.v'"),
           "a required extra that is absent was not refused: %s", err);
  ebm_net_destroy(net2);
  st_free(&src);
  unlink(path);
  unlink(bad);
  rmdir(dir);
  teardown(&f);
}

static void check_config(void) {
  ebm_net_config cfg;
  char err[256];
  const char *presets[] = {"tiny", "small32", "default32", "paper64"};
  for (int i = 0; i < 4; i++) {
    TU_CHECK(ebm_net_config_preset(&cfg, presets[i], 2) == 0, "preset %s", presets[i]);
    TU_CHECK(ebm_net_config_validate(&cfg, err, sizeof err) == 0, "%s: %s", presets[i], err);
    char d[128];
    ebm_net_config_describe(&cfg, d, sizeof d);
    fprintf(stderr, "  %-10s %s: %zu weights, %.1f MFLOP/forward\n", presets[i], d,
            ebm_net_config_num_weights(&cfg), ebm_net_forward_flops(&cfg) / 1e6);
  }
  TU_CHECK(ebm_net_config_preset(&cfg, "nope", 2) != 0, "unknown preset accepted");
  ebm_net_config_preset(&cfg, "paper64", 20);
  size_t n = ebm_net_config_num_weights(&cfg);
  /* conv weights alone: 2,139,840; the paper says "about 2.1 M" */
  TU_CHECK(n > 2100000 && n < 2200000, "paper64 has %zu weights", n);
  double fl = ebm_net_forward_flops(&cfg);
  TU_CHECK(fl > 1.5e9 && fl < 1.6e9, "paper64 forward %.3g FLOP", fl);
  const char *bad_specs[] = {"", "0", "1d,", ",1", "1x", "1dd", "65", "1,1,1,1,1,1,1,1,1", "d"};
  for (size_t i = 0; i < sizeof bad_specs / sizeof *bad_specs; i++)
    TU_CHECK(ebm_net_config_parse_blocks(&cfg, bad_specs[i]) != 0, "spec '%s' accepted",
             bad_specs[i]);
  TU_CHECK(ebm_net_config_parse_blocks(&cfg, "1d,2d,12") == 0 && cfg.num_blocks == 3 &&
               cfg.block_mult[2] == 12 && cfg.block_down[1] == 1 && cfg.block_down[2] == 0,
           "spec parse");
  char s[64];
  ebm_net_config_blocks_string(&cfg, s, sizeof s);
  TU_CHECK(!strcmp(s, "1d,2d,12"), "blocks string %s", s);
  ebm_net_config_preset(&cfg, "default32", 2);
  cfg.resolution = 36; /* 36 -> 18 -> 9 -> not divisible */
  TU_CHECK(ebm_net_config_validate(&cfg, err, sizeof err) != 0 && strstr(err, "divisible"),
           "indivisible resolution accepted");
  cfg.resolution = 32;
  cfg.label_dim = 0;
  TU_CHECK(ebm_net_config_validate(&cfg, err, sizeof err) != 0, "label_dim 0 accepted");
}

int main(void) {
  ebm_backend *be = tu_cpu_backend();
  check_config();
  check_fd(be, 1, NULL);
  check_fd(be, 0, NULL);
  check_fd(be, 1, "1,2d,4,4d");
  g_head_flatten = 1; /* the head as a linear map of the whole last feature map */
  check_fd(be, 1, NULL);
  g_coord_channels = 1; /* and coordinate planes appended to the input (CoordConv) */
  check_fd(be, 1, NULL);
  g_head_label = 1; /* and the label gain on the head's inputs, with either head */
  check_fd(be, 1, NULL);
  g_head_flatten = 0;
  check_fd(be, 0, NULL);
  g_in_norm = 1; /* standardised pixels, without and with the coordinate planes */
  g_coord_channels = 0;
  check_fd(be, 1, NULL);
  g_coord_channels = 1;
  check_fd(be, 1, NULL);
  g_head_flatten = g_coord_channels = g_head_label = g_in_norm = 0;
  check_determinism_and_accumulation(be);
  check_model_files(be);
  fprintf(stderr, "worst finite-difference relative error: %.2e (bound %.0e)\n", worst_overall,
          FD_BOUND);
  tu_backend_done(be);
  return tu_finish("test_net_grad");
}
