/* cpu.c: the `cpu` backend: host memory buffers and the vtable that runs each op at once.
 *
 * Owns: buffer storage (64-byte aligned, zero-filled float arrays), transfers (memcpy), thread
 * count selection (options.threads, 0 = all cores; env VKEBM_THREADS overrides), and the
 * bounds check of every ebm_ref an op touches. The arithmetic is cpu_ops.c's.
 *
 * Errors: an op given an out-of-range or missing ref (or a shape that breaks its contract)
 * does nothing, prints one line on stderr and marks the backend failed; every later
 * ebm_sync/ebm_download then returns EBM_ERR, so the caller sees it at its next wait, the same
 * place the vulkan backend reports errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_impl.h"
#include "cpu_ops.h"

typedef struct cpu_buffer {
  struct ebm_buffer hdr; /* first, as backend_impl.h requires */
  float *data;
} cpu_buffer;

typedef struct cpu_backend {
  struct ebm_backend base; /* first */
  cpu_ctx ctx;
  int threads; /* this backend's; the pool is process-global (see threads_for) */
  int failed;
  char device[128];
  char describe[512];
} cpu_backend;

static cpu_backend *cpu_of(ebm_backend *be) { return (cpu_backend *)be; }

/* The thread pool is process-global; with several cpu backends of different thread counts in
 * one process, the threaded ops (convs, swish) set it back to this backend's count first. */
static void threads_for(cpu_backend *cb) {
  if (cpu_threads() != cb->threads && cpu_set_threads(cb->threads) != 0) cb->threads = 1;
}

static void cpu_fail(cpu_backend *cb, const char *op, const char *what) {
  fprintf(stderr, "vkebm: cpu %s: %s\n", op, what);
  cb->failed = 1;
}

/* The float pointer for r covering n floats, or NULL with the reason in why when r has no
 * buffer or [off, off+n) leaves it. */
static float *ref_resolve(ebm_ref r, size_t n, const char *name, char *why, size_t whylen) {
  static float nothing[1]; /* an empty range needs no buffer; never read or written */
  if (!r.buf && n == 0) return nothing;
  if (!r.buf) {
    snprintf(why, whylen, "%s: no buffer", name);
    return NULL;
  }
  const size_t size = r.buf->nfloats;
  if (r.off > size || n > size - r.off) {
    snprintf(why, whylen, "%s: range [%zu, +%zu) outside buffer of %zu floats", name, r.off, n,
             size);
    return NULL;
  }
  return ((cpu_buffer *)r.buf)->data + r.off;
}

/* ref_resolve for ops: a bad ref marks the backend failed. */
static float *ref_ptr(cpu_backend *cb, ebm_ref r, size_t n, const char *op, const char *name) {
  char why[160];
  float *p = ref_resolve(r, n, name, why, sizeof why);
  if (!p) cpu_fail(cb, op, why);
  return p;
}

/* ref_resolve for transfers: a bad ref fails this call only (the caller gets the error now). */
static float *xfer_ptr(ebm_ref r, size_t n, const char *op, const char *name) {
  char why[160];
  float *p = ref_resolve(r, n, name, why, sizeof why);
  if (!p) fprintf(stderr, "vkebm: cpu %s: %s\n", op, why);
  return p;
}

/* Like ref_ptr, but a ref without buffer (EBM_NOREF) is fine and gives NULL with *ok kept. */
static float *opt_ptr(cpu_backend *cb, ebm_ref r, size_t n, const char *op, const char *name,
                      int *ok) {
  if (!r.buf) return NULL;
  float *p = ref_ptr(cb, r, n, op, name);
  if (!p) *ok = 0;
  return p;
}

static int dims_ok(cpu_backend *cb, const char *op, int a, int b, int c, int d, int e) {
  if (a < 0 || b < 0 || c < 0 || d < 0 || e < 0) {
    cpu_fail(cb, op, "negative dimension");
    return 0;
  }
  return 1;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void cpu_destroy(ebm_backend *be) {
  cpu_backend *cb = cpu_of(be);
  cpu_ctx_release(&cb->ctx);
  free(cb);
}

static const char *cpu_device_name(const ebm_backend *be) {
  return ((const cpu_backend *)be)->device;
}
static const char *cpu_describe(const ebm_backend *be) {
  return ((const cpu_backend *)be)->describe;
}

static const char *cpu_conv_path(const ebm_backend *be, int direction, int Ci, int Co, int H,
                                 int W) {
  (void)be;
  return cpu_conv_path_name(direction, Ci, Co, H, W);
}
static uint64_t cpu_validation_errors(const ebm_backend *be) { return 0; }

/* ---- buffers ------------------------------------------------------------------------------ */

static ebm_buffer *cpu_alloc(ebm_backend *be, size_t nfloats) {
  if (nfloats > ((size_t)-1 - 63) / sizeof(float)) return NULL;
  cpu_buffer *b = malloc(sizeof *b);
  if (!b) return NULL;
  size_t bytes = (nfloats * sizeof(float) + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  b->data = aligned_alloc(64, bytes);
  if (!b->data) {
    free(b);
    return NULL;
  }
  memset(b->data, 0, bytes);
  b->hdr.nfloats = nfloats;
  return &b->hdr;
}

static void cpu_free(ebm_backend *be, ebm_buffer *buf) {
  cpu_buffer *b = (cpu_buffer *)buf;
  free(b->data);
  free(b);
}

static size_t cpu_buffer_size(const ebm_buffer *buf) { return buf->nfloats; }

static int cpu_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n) {
  if (n == 0) return 0;
  float *d = xfer_ptr(dst, n, "upload", "dst");
  if (!d) return EBM_ERR;
  memcpy(d, src, n * sizeof(float));
  return 0;
}

static int cpu_download(ebm_backend *be, float *dst, ebm_ref src, size_t n) {
  cpu_backend *cb = cpu_of(be);
  if (n) {
    const float *s = xfer_ptr(src, n, "download", "src");
    if (!s) return EBM_ERR;
    memcpy(dst, s, n * sizeof(float));
  }
  return cb->failed ? EBM_ERR : 0;
}

static int cpu_sync(ebm_backend *be) { return cpu_of(be)->failed ? EBM_ERR : 0; }

/* ---- ops: resolve refs, then the array twin ------------------------------------------------ */

/* RESOLVE(ref, n, name) declares float *name_p, the checked pointer for ref (NULL if bad);
 * RETURN_UNLESS(cond) leaves the op when a ref or a shape was bad (already reported). */
#define RESOLVE(ref, n, name) float *name##_p = ref_ptr(cb, ref, n, OP, #name)
#define RETURN_UNLESS(...) \
  if (!(__VA_ARGS__)) return

static void cpu_fill_op(ebm_backend *be, ebm_ref y, float v, size_t n) {
#define OP "fill"
  cpu_backend *cb = cpu_of(be);
  if (!n) return;
  RESOLVE(y, n, y);
  RETURN_UNLESS(y_p);
  fill_cpu(y_p, v, n);
#undef OP
}

static void cpu_add_op(ebm_backend *be, ebm_ref y, ebm_ref a, ebm_ref b, size_t n) {
#define OP "add"
  cpu_backend *cb = cpu_of(be);
  if (!n) return;
  RESOLVE(y, n, y);
  RESOLVE(a, n, a);
  RESOLVE(b, n, b);
  RETURN_UNLESS(y_p && a_p && b_p);
  add_cpu(y_p, a_p, b_p, n);
#undef OP
}

static void cpu_axpy_op(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n) {
#define OP "axpy"
  cpu_backend *cb = cpu_of(be);
  if (!n) return;
  RESOLVE(y, n, y);
  RESOLVE(x, n, x);
  RETURN_UNLESS(y_p && x_p);
  axpy_cpu(y_p, alpha, x_p, n);
#undef OP
}

static void cpu_scale_op(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n) {
#define OP "scale"
  cpu_backend *cb = cpu_of(be);
  if (!n) return;
  RESOLVE(y, n, y);
  RESOLVE(x, n, x);
  RETURN_UNLESS(y_p && x_p);
  scale_cpu(y_p, alpha, x_p, n);
#undef OP
}

static void cpu_conv3x3_forward_op(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref w, int B,
                                   int Ci, int Co, int H, int W) {
#define OP "conv3x3_forward"
  cpu_backend *cb = cpu_of(be);
  threads_for(cb);
  RETURN_UNLESS(dims_ok(cb, OP, B, Ci, Co, H, W));
  const size_t HW = (size_t)H * W;
  if (!B || !Co || !HW) return;
  RESOLVE(y, (size_t)B * Co * HW, y);
  RESOLVE(x, (size_t)B * Ci * HW, x);
  RESOLVE(w, (size_t)Co * Ci * 9, w);
  RETURN_UNLESS(y_p && x_p && w_p);
  if (conv3x3_forward_cpu(&cb->ctx, y_p, x_p, w_p, B, Ci, Co, H, W)) cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_conv3x3_backward_input_op(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref w,
                                          int B, int Ci, int Co, int H, int W) {
#define OP "conv3x3_backward_input"
  cpu_backend *cb = cpu_of(be);
  threads_for(cb);
  RETURN_UNLESS(dims_ok(cb, OP, B, Ci, Co, H, W));
  const size_t HW = (size_t)H * W;
  if (!B || !Ci || !HW) return;
  RESOLVE(dx, (size_t)B * Ci * HW, dx);
  RESOLVE(dy, (size_t)B * Co * HW, dy);
  RESOLVE(w, (size_t)Co * Ci * 9, w);
  RETURN_UNLESS(dx_p && dy_p && w_p);
  if (conv3x3_backward_input_cpu(&cb->ctx, dx_p, dy_p, w_p, B, Ci, Co, H, W))
    cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_conv3x3_backward_weight_op(ebm_backend *be, ebm_ref dw, ebm_ref dy, ebm_ref x,
                                           int B, int Ci, int Co, int H, int W) {
#define OP "conv3x3_backward_weight"
  cpu_backend *cb = cpu_of(be);
  threads_for(cb);
  RETURN_UNLESS(dims_ok(cb, OP, B, Ci, Co, H, W));
  const size_t HW = (size_t)H * W;
  if (!Ci || !Co || !B || !HW) return;
  RESOLVE(dw, (size_t)Co * Ci * 9, dw);
  RESOLVE(dy, (size_t)B * Co * HW, dy);
  RESOLVE(x, (size_t)B * Ci * HW, x);
  RETURN_UNLESS(dw_p && dy_p && x_p);
  if (conv3x3_backward_weight_cpu(&cb->ctx, dw_p, dy_p, x_p, B, Ci, Co, H, W))
    cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_swish_forward_op(ebm_backend *be, ebm_ref y, ebm_ref x, size_t n) {
#define OP "swish_forward"
  cpu_backend *cb = cpu_of(be);
  threads_for(cb);
  if (!n) return;
  RESOLVE(y, n, y);
  RESOLVE(x, n, x);
  RETURN_UNLESS(y_p && x_p);
  swish_forward_cpu(y_p, x_p, n);
#undef OP
}

static void cpu_swish_backward_op(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref x, size_t n) {
#define OP "swish_backward"
  cpu_backend *cb = cpu_of(be);
  threads_for(cb);
  if (!n) return;
  RESOLVE(dx, n, dx);
  RESOLVE(dy, n, dy);
  RESOLVE(x, n, x);
  RETURN_UNLESS(dx_p && dy_p && x_p);
  swish_backward_cpu(dx_p, dy_p, x_p, n);
#undef OP
}

static int pool_dims_ok(cpu_backend *cb, const char *op, int B, int C, int H, int W) {
  if (!dims_ok(cb, op, B, C, H, W, 0)) return 0;
  if (H % 2 || W % 2) {
    cpu_fail(cb, op, "H and W must be even");
    return 0;
  }
  return 1;
}

static void cpu_avgpool2_forward_op(ebm_backend *be, ebm_ref y, ebm_ref x, int B, int C, int H,
                                    int W) {
#define OP "avgpool2_forward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(pool_dims_ok(cb, OP, B, C, H, W));
  const size_t n = (size_t)B * C * H * W;
  if (!n) return;
  RESOLVE(y, n / 4, y);
  RESOLVE(x, n, x);
  RETURN_UNLESS(y_p && x_p);
  avgpool2_forward_cpu(y_p, x_p, B, C, H, W);
#undef OP
}

static void cpu_avgpool2_backward_op(ebm_backend *be, ebm_ref dx, ebm_ref dy, int B, int C, int H,
                                     int W) {
#define OP "avgpool2_backward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(pool_dims_ok(cb, OP, B, C, H, W));
  const size_t n = (size_t)B * C * H * W;
  if (!n) return;
  RESOLVE(dx, n, dx);
  RESOLVE(dy, n / 4, dy);
  RETURN_UNLESS(dx_p && dy_p);
  avgpool2_backward_cpu(dx_p, dy_p, B, C, H, W);
#undef OP
}

static void cpu_cond_bias_forward_op(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G,
                                     int B, int C, int HW, int L) {
#define OP "cond_bias_forward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, B, C, HW, L, 0));
  const size_t n = (size_t)B * C * HW;
  if (!n) return;
  RESOLVE(y, n, y);
  RESOLVE(x, n, x);
  RESOLVE(c, (size_t)B * L, c);
  RESOLVE(G, (size_t)L * C, G);
  RETURN_UNLESS(y_p && x_p && c_p && G_p);
  cond_bias_forward_cpu(y_p, x_p, c_p, G_p, B, C, HW, L);
#undef OP
}

static void cpu_cond_bias_backward_op(ebm_backend *be, ebm_ref dG, ebm_ref dc, ebm_ref dy,
                                      ebm_ref c, ebm_ref G, int B, int C, int HW, int L) {
#define OP "cond_bias_backward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, B, C, HW, L, 0));
  if (!B || !C || !L) return;
  int ok = 1;
  float *dG_p = opt_ptr(cb, dG, (size_t)L * C, OP, "dG", &ok);
  float *dc_p = opt_ptr(cb, dc, (size_t)B * L, OP, "dc", &ok);
  if (ok && !dG_p && !dc_p) return; /* nothing asked for */
  RESOLVE(dy, (size_t)B * C * HW, dy);
  RESOLVE(c, (size_t)B * L, c);
  RESOLVE(G, (size_t)L * C, G);
  RETURN_UNLESS(ok && dy_p && c_p && G_p);
  if (cond_bias_backward_cpu(dG_p, dc_p, dy_p, c_p, G_p, B, C, HW, L))
    cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_cond_scale_forward_op(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G,
                                      ebm_ref CB, int B, int C, int HW, int L) {
#define OP "cond_scale_forward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, B, C, HW, L, 0));
  const size_t n = (size_t)B * C * HW;
  if (!n) return;
  RESOLVE(y, n, y);
  RESOLVE(x, n, x);
  RESOLVE(c, (size_t)B * L, c);
  RESOLVE(G, (size_t)L * C, G);
  RESOLVE(CB, (size_t)C, CB);
  RETURN_UNLESS(y_p && x_p && c_p && G_p && CB_p);
  if (cond_scale_forward_cpu(y_p, x_p, c_p, G_p, CB_p, B, C, HW, L))
    cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_cond_scale_backward_op(ebm_backend *be, ebm_ref dx, ebm_ref dG, ebm_ref dCB,
                                       ebm_ref dc, ebm_ref dy, ebm_ref x, ebm_ref c, ebm_ref G,
                                       ebm_ref CB, int B, int C, int HW, int L) {
#define OP "cond_scale_backward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, B, C, HW, L, 0));
  if (!B || !C) return;
  const size_t n = (size_t)B * C * HW;
  int ok = 1;
  float *dx_p = n ? ref_ptr(cb, dx, n, OP, "dx") : NULL;
  float *dG_p = L ? opt_ptr(cb, dG, (size_t)L * C, OP, "dG", &ok) : NULL;
  float *dCB_p = opt_ptr(cb, dCB, (size_t)C, OP, "dCB", &ok);
  float *dc_p = L ? opt_ptr(cb, dc, (size_t)B * L, OP, "dc", &ok) : NULL;
  float *dy_p = n ? ref_ptr(cb, dy, n, OP, "dy") : NULL;
  float *x_p = n ? ref_ptr(cb, x, n, OP, "x") : NULL;
  RESOLVE(c, (size_t)B * L, c);
  RESOLVE(G, (size_t)L * C, G);
  RESOLVE(CB, (size_t)C, CB);
  RETURN_UNLESS(ok && (!n || (dx_p && dy_p && x_p)) && c_p && G_p && CB_p);
  if (cond_scale_backward_cpu(dx_p, dG_p, dCB_p, dc_p, dy_p, x_p, c_p, G_p, CB_p, B, C, HW, L))
    cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_head_forward_op(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref w, ebm_ref bias,
                                int B, int C, int HW) {
#define OP "head_forward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, B, C, HW, 0, 0));
  if (!B) return;
  if (HW == 0 && C > 0) {
    cpu_fail(cb, OP, "HW must be positive");
    return;
  }
  RESOLVE(e, (size_t)B, e);
  float *x_p = C ? ref_ptr(cb, x, (size_t)B * C * HW, OP, "x") : NULL;
  float *w_p = C ? ref_ptr(cb, w, (size_t)C, OP, "w") : NULL;
  RESOLVE(bias, 1, bias);
  RETURN_UNLESS(e_p && bias_p && (!C || (x_p && w_p)));
  head_forward_cpu(e_p, x_p, w_p, bias_p, B, C, HW);
#undef OP
}

static void cpu_head_backward_op(ebm_backend *be, ebm_ref dx, ebm_ref dw, ebm_ref dbias,
                                 ebm_ref de, ebm_ref x, ebm_ref w, int B, int C, int HW) {
#define OP "head_backward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, B, C, HW, 0, 0));
  if (!B) return;
  if (HW == 0 && C > 0) {
    cpu_fail(cb, OP, "HW must be positive");
    return;
  }
  const size_t n = (size_t)B * C * HW;
  int ok = 1;
  float *dx_p = n ? ref_ptr(cb, dx, n, OP, "dx") : NULL;
  float *dw_p = C ? opt_ptr(cb, dw, (size_t)C, OP, "dw", &ok) : NULL;
  float *dbias_p = opt_ptr(cb, dbias, 1, OP, "dbias", &ok);
  RESOLVE(de, (size_t)B, de);
  float *x_p = n ? ref_ptr(cb, x, n, OP, "x") : NULL;
  float *w_p = C ? ref_ptr(cb, w, (size_t)C, OP, "w") : NULL;
  RETURN_UNLESS(ok && de_p && (!n || (dx_p && x_p)) && (!C || w_p));
  head_backward_cpu(dx_p, dw_p, dbias_p, de_p, x_p, w_p, B, C, HW);
#undef OP
}

static void cpu_spectral_norm_forward_op(ebm_backend *be, ebm_ref w_sn, ebm_ref u, ebm_ref v,
                                         ebm_ref sigma, ebm_ref w, int rows, int cols,
                                         int update_u) {
#define OP "spectral_norm_forward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, rows, cols, 0, 0, 0));
  if (!rows || !cols) return;
  const size_t n = (size_t)rows * cols;
  RESOLVE(w_sn, n, w_sn);
  RESOLVE(u, (size_t)rows, u);
  RESOLVE(v, (size_t)cols, v);
  RESOLVE(sigma, 1, sigma);
  RESOLVE(w, n, w);
  RETURN_UNLESS(w_sn_p && u_p && v_p && sigma_p && w_p);
  if (spectral_norm_forward_cpu(w_sn_p, u_p, v_p, sigma_p, w_p, rows, cols, update_u))
    cpu_fail(cb, OP, "out of memory");
#undef OP
}

static void cpu_spectral_norm_backward_op(ebm_backend *be, ebm_ref dw, ebm_ref dw_sn,
                                          ebm_ref w_sn, ebm_ref u, ebm_ref v, ebm_ref sigma,
                                          int rows, int cols) {
#define OP "spectral_norm_backward"
  cpu_backend *cb = cpu_of(be);
  RETURN_UNLESS(dims_ok(cb, OP, rows, cols, 0, 0, 0));
  if (!rows || !cols) return;
  const size_t n = (size_t)rows * cols;
  RESOLVE(dw, n, dw);
  RESOLVE(dw_sn, n, dw_sn);
  RESOLVE(w_sn, n, w_sn);
  RESOLVE(u, (size_t)rows, u);
  RESOLVE(v, (size_t)cols, v);
  RESOLVE(sigma, 1, sigma);
  RETURN_UNLESS(dw_p && dw_sn_p && w_sn_p && u_p && v_p && sigma_p);
  spectral_norm_backward_cpu(dw_p, dw_sn_p, w_sn_p, u_p, v_p, sigma_p, rows, cols);
#undef OP
}

static void cpu_sumsq_op(ebm_backend *be, ebm_ref out, ebm_ref x, size_t n) {
#define OP "sumsq"
  cpu_backend *cb = cpu_of(be);
  RESOLVE(out, 1, out);
  float *x_p = n ? ref_ptr(cb, x, n, OP, "x") : NULL;
  RETURN_UNLESS(out_p && (x_p || !n));
  sumsq_cpu(out_p, x_p, n);
#undef OP
}

/* ---- sampler ops: resolve refs, then the twins of src/backend/cpu_sampler.c ---------------- */

static void cpu_quadratic_energy_op(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref mu,
                                    ebm_ref prec, int n, int N, int rows_per_group) {
#define OP "quadratic_energy"
  cpu_backend *cb = cpu_of(be);
  if (n <= 0 || N <= 0 || rows_per_group <= 0 || !dims_ok(cb, OP, n, N, rows_per_group, 0, 0)) return;
  size_t G = (size_t)(n + rows_per_group - 1) / rows_per_group;
  RESOLVE(e, (size_t)n, e);
  RESOLVE(x, (size_t)n * N, x);
  RESOLVE(mu, G * N, mu);
  RESOLVE(prec, G * N, prec);
  RETURN_UNLESS(e_p && x_p && mu_p && prec_p);
  ebm_quadratic_energy_cpu(e_p, x_p, mu_p, prec_p, n, N, rows_per_group);
#undef OP
}

static void cpu_quadratic_energy_backward_op(ebm_backend *be, ebm_ref dx, ebm_ref dE, ebm_ref x,
                                             ebm_ref mu, ebm_ref prec, int n, int N,
                                             int rows_per_group) {
#define OP "quadratic_energy_backward"
  cpu_backend *cb = cpu_of(be);
  if (n <= 0 || N <= 0 || rows_per_group <= 0 || !dims_ok(cb, OP, n, N, rows_per_group, 0, 0)) return;
  size_t G = (size_t)(n + rows_per_group - 1) / rows_per_group;
  RESOLVE(dx, (size_t)n * N, dx);
  RESOLVE(dE, (size_t)n, dE);
  RESOLVE(x, (size_t)n * N, x);
  RESOLVE(mu, G * N, mu);
  RESOLVE(prec, G * N, prec);
  RETURN_UNLESS(dx_p && dE_p && x_p && mu_p && prec_p);
  ebm_quadratic_energy_backward_cpu(dx_p, dE_p, x_p, mu_p, prec_p, n, N, rows_per_group);
#undef OP
}

static void cpu_langevin_update_op(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N,
                                   uint32_t chain0, uint32_t seed, uint32_t step, float step_size, float noise_std,
                                   float clip_lo, float clip_hi) {
#define OP "langevin_update"
  cpu_backend *cb = cpu_of(be);
  if (B <= 0 || N <= 0) return;
  int ok = 1;
  RESOLVE(x, (size_t)B * N, x);
  float *grad_p = opt_ptr(cb, grad, (size_t)B * N, OP, "grad", &ok);
  RETURN_UNLESS(x_p && ok);
  ebm_langevin_update_cpu(x_p, grad_p, B, N, chain0, seed, step, step_size, noise_std, clip_lo, clip_hi);
#undef OP
}

static void cpu_mala_propose_op(ebm_backend *be, ebm_ref xp, ebm_ref x, ebm_ref grad, ebm_ref tau,
                                int B, int N, uint32_t seed, uint32_t step) {
#define OP "mala_propose"
  cpu_backend *cb = cpu_of(be);
  if (B <= 0 || N <= 0) return;
  RESOLVE(xp, (size_t)B * N, xp);
  RESOLVE(x, (size_t)B * N, x);
  RESOLVE(grad, (size_t)B * N, grad);
  RESOLVE(tau, (size_t)B, tau);
  RETURN_UNLESS(xp_p && x_p && grad_p && tau_p);
  ebm_mala_propose_cpu(xp_p, x_p, grad_p, tau_p, B, N, seed, step);
#undef OP
}

static void cpu_mala_log_q_op(ebm_backend *be, ebm_ref out, ebm_ref to, ebm_ref from,
                              ebm_ref grad_from, ebm_ref tau, int B, int N) {
#define OP "mala_log_q"
  cpu_backend *cb = cpu_of(be);
  if (B <= 0 || N <= 0) return;
  RESOLVE(out, (size_t)B, out);
  RESOLVE(to, (size_t)B * N, to);
  RESOLVE(from, (size_t)B * N, from);
  RESOLVE(grad_from, (size_t)B * N, grad_from);
  RESOLVE(tau, (size_t)B, tau);
  RETURN_UNLESS(out_p && to_p && from_p && grad_from_p && tau_p);
  ebm_mala_log_q_cpu(out_p, to_p, from_p, grad_from_p, tau_p, B, N);
#undef OP
}

static void cpu_chain_select_op(ebm_backend *be, ebm_ref x, ebm_ref src, ebm_ref mask, int B,
                                int N) {
#define OP "chain_select"
  cpu_backend *cb = cpu_of(be);
  if (B <= 0 || N <= 0) return;
  RESOLVE(x, (size_t)B * N, x);
  RESOLVE(src, (size_t)B * N, src);
  RESOLVE(mask, (size_t)B, mask);
  RETURN_UNLESS(x_p && src_p && mask_p);
  ebm_chain_select_cpu(x_p, src_p, mask_p, B, N);
#undef OP
}

static const ebm_backend_vtable cpu_vtable = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .device_name = cpu_device_name,
    .describe = cpu_describe,
    .conv_path = cpu_conv_path,
    .validation_errors = cpu_validation_errors,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .buffer_size = cpu_buffer_size,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .fill = cpu_fill_op,
    .add = cpu_add_op,
    .axpy = cpu_axpy_op,
    .scale = cpu_scale_op,
    .conv3x3_forward = cpu_conv3x3_forward_op,
    .conv3x3_backward_input = cpu_conv3x3_backward_input_op,
    .conv3x3_backward_weight = cpu_conv3x3_backward_weight_op,
    .swish_forward = cpu_swish_forward_op,
    .swish_backward = cpu_swish_backward_op,
    .avgpool2_forward = cpu_avgpool2_forward_op,
    .avgpool2_backward = cpu_avgpool2_backward_op,
    .cond_bias_forward = cpu_cond_bias_forward_op,
    .cond_bias_backward = cpu_cond_bias_backward_op,
    .cond_scale_forward = cpu_cond_scale_forward_op,
    .cond_scale_backward = cpu_cond_scale_backward_op,
    .head_forward = cpu_head_forward_op,
    .head_backward = cpu_head_backward_op,
    .spectral_norm_forward = cpu_spectral_norm_forward_op,
    .spectral_norm_backward = cpu_spectral_norm_backward_op,
    .sumsq = cpu_sumsq_op,
    .scene_render = cpu_scene_render,

    /* sampler ops */
    .quadratic_energy = cpu_quadratic_energy_op,
    .quadratic_energy_backward = cpu_quadratic_energy_backward_op,
    .langevin_update = cpu_langevin_update_op,
    .mala_propose = cpu_mala_propose_op,
    .mala_log_q = cpu_mala_log_q_op,
    .chain_select = cpu_chain_select_op,
    .adam_step = cpu_adam_step,
};

/* "model name" from /proc/cpuinfo, or a generic name. */
static void cpu_model_name(char *out, size_t len) {
  snprintf(out, len, "host CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *colon = strchr(line, ':');
      if (colon) {
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, len, "%s", colon);
      }
      break;
    }
  }
  fclose(f);
}

int ebm_cpu_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err,
                           size_t errlen) {
  *out = NULL;
  int threads = opt ? opt->threads : 0;
  const char *env = getenv("VKEBM_THREADS");
  if (env && *env) {
    char *end = NULL;
    long t = strtol(env, &end, 10);
    if (*end || t < 0 || t > 1024) {
      snprintf(err, errlen, "VKEBM_THREADS=%s: expected a thread count 0..1024", env);
      return EBM_ERR;
    }
    threads = (int)t;
  }
  if (threads < 0) {
    snprintf(err, errlen, "threads=%d: expected 0 (all cores) or a positive count", threads);
    return EBM_ERR;
  }
  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)n : 1;
  }
  cpu_backend *cb = calloc(1, sizeof *cb);
  if (!cb) {
    snprintf(err, errlen, "out of memory");
    return EBM_ERR_OOM;
  }
  cb->base.vt = &cpu_vtable;
  cb->base.kind = EBM_BACKEND_CPU;
  if (cpu_set_threads(threads) != 0) threads = 1; /* could not start the workers: run on one */
  if (cpu_blas_selfcheck(err, errlen) != 0) {
    free(cb);
    return EBM_ERR;
  }
  cb->threads = threads;
  cpu_model_name(cb->device, sizeof cb->device);
  char blas[300];
  cpu_blas_describe(blas, sizeof blas);
  snprintf(cb->describe, sizeof cb->describe,
           "direct %s 3x3 convs for small channel counts, %s for the rest, one GEMM per thread, "
           "%d thread%s", cpu_conv_isa_name(), blas, threads, threads == 1 ? "" : "s");
  *out = &cb->base;
  return 0;
}
