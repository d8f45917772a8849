/* cpu.c: the `cpu` backend: host memory buffers and the vtable that runs each op at once.
 *
 * Owns: buffer storage (64-byte aligned, zero-filled float arrays), transfers (memcpy), thread
 * count selection (options.threads, 0 = all cores; env VKEBM_THREADS overrides; every op, the
 * scene renderer and Adam included, runs on that many threads), and cpu_<op> for every op of
 * include/vkebm/ops.def. The arithmetic is the array twins' (cpu_ops.c, cpu_sampler.c,
 * cpu_optim.c, src/scene/render.c).
 *
 * Errors: backend.c checks every tensor and shape before an op gets here; a refused call (or an
 * op that runs out of memory) marks the backend failed, and every later ebm_sync/ebm_download
 * returns EBM_ERR, so the caller sees it at its next wait, the same place the vulkan backend
 * reports errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_impl.h"
#include "cpu_ops.h"
#include "vkebm/scene.h"

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

/* A call backend.c refused (it printed why): every later sync/download fails. */
static void cpu_fail(ebm_backend *be) { cpu_of(be)->failed = 1; }

static void cpu_fail_op(cpu_backend *cb, const char *op, const char *what) {
  fprintf(stderr, "vkebm: cpu %s: %s\n", op, what);
  cb->failed = 1;
}

/* The checked range of a transfer (transfers are not ops: a bad one fails this call only). */
static float *xfer_ptr(ebm_ref r, size_t n, const char *op, const char *name) {
  if (!r.buf || r.off > r.buf->nfloats || n > r.buf->nfloats - r.off) {
    fprintf(stderr, "vkebm: cpu %s: %s: range [%zu, +%zu) outside buffer of %zu floats\n", op,
            name, r.off, n, r.buf ? r.buf->nfloats : 0);
    return NULL;
  }
  return ((cpu_buffer *)r.buf)->data + r.off;
}

/* The host pointer of a tensor backend.c has checked; NULL for one left out (EBM_NOREF). */
static float *P(ebm_tensor t) {
  return t.ref.buf ? ((cpu_buffer *)t.ref.buf)->data + t.ref.off : NULL;
}

/* Every op starts here: this backend, with the process-global pool at its thread count. */
static cpu_backend *op_begin(ebm_backend *be) {
  cpu_backend *cb = cpu_of(be);
  threads_for(cb);
  return cb;
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

/* ---- ops: the array twins of cpu_ops.c on checked tensors (backend.c checked every extent
 *      and shape argument against include/vkebm/ops.def before calling these) ------------- */

void cpu_fill(ebm_backend *be, ebm_tensor y, float v, size_t n) {
  op_begin(be);
  fill_cpu(P(y), v, n);
}
void cpu_add(ebm_backend *be, ebm_tensor y, ebm_tensor a, ebm_tensor b, size_t n) {
  op_begin(be);
  add_cpu(P(y), P(a), P(b), n);
}
void cpu_axpy(ebm_backend *be, ebm_tensor y, float alpha, ebm_tensor x, size_t n) {
  op_begin(be);
  axpy_cpu(P(y), alpha, P(x), n);
}
void cpu_scale(ebm_backend *be, ebm_tensor y, float alpha, ebm_tensor x, size_t n) {
  op_begin(be);
  scale_cpu(P(y), alpha, P(x), n);
}

void cpu_conv3x3_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, ebm_tensor w, int B, int Ci,
                         int Co, int H, int W) {
  cpu_backend *cb = op_begin(be);
  if (!y.n) return;
  if (conv3x3_forward_cpu(&cb->ctx, P(y), P(x), P(w), B, Ci, Co, H, W))
    cpu_fail_op(cb, "conv3x3_forward", "out of memory");
}
void cpu_conv3x3_backward_input(ebm_backend *be, ebm_tensor dx, ebm_tensor dy, ebm_tensor w, int B,
                                int Ci, int Co, int H, int W) {
  cpu_backend *cb = op_begin(be);
  if (!dx.n) return;
  if (conv3x3_backward_input_cpu(&cb->ctx, P(dx), P(dy), P(w), B, Ci, Co, H, W))
    cpu_fail_op(cb, "conv3x3_backward_input", "out of memory");
}
void cpu_conv3x3_backward_weight(ebm_backend *be, ebm_tensor dw, ebm_tensor dy, ebm_tensor x, int B,
                                 int Ci, int Co, int H, int W) {
  cpu_backend *cb = op_begin(be);
  if (!dw.n || !dy.n) return;
  if (conv3x3_backward_weight_cpu(&cb->ctx, P(dw), P(dy), P(x), B, Ci, Co, H, W))
    cpu_fail_op(cb, "conv3x3_backward_weight", "out of memory");
}

void cpu_swish_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, size_t n) {
  op_begin(be);
  swish_forward_cpu(P(y), P(x), n);
}
void cpu_swish_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dy, ebm_tensor x, size_t n) {
  op_begin(be);
  swish_backward_cpu(P(dx), P(dy), P(x), n);
}

void cpu_avgpool2_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, int B, int C, int H, int W) {
  op_begin(be);
  if (x.n) avgpool2_forward_cpu(P(y), P(x), B, C, H, W);
}
void cpu_avgpool2_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dy, int B, int C, int H,
                           int W) {
  op_begin(be);
  if (dx.n) avgpool2_backward_cpu(P(dx), P(dy), B, C, H, W);
}

void cpu_cond_bias_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, ebm_tensor c, ebm_tensor G,
                           int B, int C, int HW, int L) {
  op_begin(be);
  if (y.n) cond_bias_forward_cpu(P(y), P(x), P(c), P(G), B, C, HW, L);
}
void cpu_cond_bias_backward(ebm_backend *be, ebm_tensor dG, ebm_tensor dc, ebm_tensor dy,
                            ebm_tensor c, ebm_tensor G, int B, int C, int HW, int L) {
  cpu_backend *cb = op_begin(be);
  if (!B || !C || !L || (!dG.ref.buf && !dc.ref.buf)) return; /* nothing asked for */
  if (cond_bias_backward_cpu(P(dG), P(dc), P(dy), P(c), P(G), B, C, HW, L))
    cpu_fail_op(cb, "cond_bias_backward", "out of memory");
}
void cpu_cond_scale_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, ebm_tensor c, ebm_tensor G,
                            ebm_tensor CB, int B, int C, int HW, int L) {
  cpu_backend *cb = op_begin(be);
  if (y.n && cond_scale_forward_cpu(P(y), P(x), P(c), P(G), P(CB), B, C, HW, L))
    cpu_fail_op(cb, "cond_scale_forward", "out of memory");
}
void cpu_cond_scale_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dG, ebm_tensor dCB,
                             ebm_tensor dc, ebm_tensor dy, ebm_tensor x, ebm_tensor c, ebm_tensor G,
                             ebm_tensor CB, int B, int C, int HW, int L) {
  cpu_backend *cb = op_begin(be);
  if (!B || !C) return;
  /* the twin leaves a gradient alone when its pointer is NULL: none without labels */
  float *dG_p = L ? P(dG) : NULL, *dc_p = L ? P(dc) : NULL;
  if (cond_scale_backward_cpu(P(dx), dG_p, P(dCB), dc_p, P(dy), P(x), P(c), P(G), P(CB), B, C, HW,
                              L))
    cpu_fail_op(cb, "cond_scale_backward", "out of memory");
}

void cpu_head_forward(ebm_backend *be, ebm_tensor e, ebm_tensor x, ebm_tensor w, ebm_tensor bias,
                      int B, int C, int HW) {
  op_begin(be);
  if (B) head_forward_cpu(P(e), P(x), P(w), P(bias), B, C, HW);
}
void cpu_head_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dw, ebm_tensor dbias,
                       ebm_tensor de, ebm_tensor x, ebm_tensor w, int B, int C, int HW) {
  op_begin(be);
  if (B) head_backward_cpu(P(dx), C ? P(dw) : NULL, P(dbias), P(de), P(x), P(w), B, C, HW);
}

void cpu_spectral_norm_forward(ebm_backend *be, ebm_tensor w_sn, ebm_tensor u, ebm_tensor v,
                               ebm_tensor sigma, ebm_tensor w, int rows, int cols, int update_u) {
  cpu_backend *cb = op_begin(be);
  if (w.n && spectral_norm_forward_cpu(P(w_sn), P(u), P(v), P(sigma), P(w), rows, cols, update_u))
    cpu_fail_op(cb, "spectral_norm_forward", "out of memory");
}
void cpu_spectral_norm_backward(ebm_backend *be, ebm_tensor dw, ebm_tensor dw_sn, ebm_tensor w_sn,
                                ebm_tensor u, ebm_tensor v, ebm_tensor sigma, int rows, int cols) {
  op_begin(be);
  if (dw.n) spectral_norm_backward_cpu(P(dw), P(dw_sn), P(w_sn), P(u), P(v), P(sigma), rows, cols);
}

void cpu_sumsq(ebm_backend *be, ebm_tensor out, ebm_tensor x, size_t n) {
  op_begin(be);
  sumsq_cpu(P(out), P(x), n);
}

void cpu_scene_render(ebm_backend *be, ebm_tensor images, ebm_tensor scenes, int n, int size) {
  cpu_backend *cb = op_begin(be);
  if (n) scene_render_cpu(P(images), P(scenes), n, size, NULL, cb->threads);
}

/* sampler ops: the twins of cpu_sampler.c */
void cpu_quadratic_energy(ebm_backend *be, ebm_tensor e, ebm_tensor x, ebm_tensor mu,
                          ebm_tensor prec, int n, int N, int rows_per_group) {
  op_begin(be);
  if (n && N) quadratic_energy_cpu(P(e), P(x), P(mu), P(prec), n, N, rows_per_group);
}
void cpu_quadratic_energy_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dE, ebm_tensor x,
                                   ebm_tensor mu, ebm_tensor prec, int n, int N,
                                   int rows_per_group) {
  op_begin(be);
  if (n && N)
    quadratic_energy_backward_cpu(P(dx), P(dE), P(x), P(mu), P(prec), n, N, rows_per_group);
}
void cpu_langevin_update(ebm_backend *be, ebm_tensor x, ebm_tensor grad, int B, int N,
                         uint32_t seed, uint32_t step, float step_size, float noise_std,
                         float clip_lo, float clip_hi) {
  op_begin(be);
  if (x.n)
    langevin_update_cpu(P(x), P(grad), B, N, seed, step, step_size, noise_std, clip_lo, clip_hi);
}
void cpu_langevin_update_at(ebm_backend *be, ebm_tensor x, ebm_tensor grad, int B, int N,
                            uint32_t chain0, uint32_t seed, uint32_t step, float step_size,
                            float noise_std, float clip_lo, float clip_hi) {
  op_begin(be);
  if (x.n)
    langevin_update_at_cpu(P(x), P(grad), B, N, chain0, seed, step, step_size, noise_std, clip_lo,
                           clip_hi);
}
void cpu_mala_propose(ebm_backend *be, ebm_tensor xp, ebm_tensor x, ebm_tensor grad, ebm_tensor tau,
                      int B, int N, uint32_t seed, uint32_t step) {
  op_begin(be);
  if (xp.n) mala_propose_cpu(P(xp), P(x), P(grad), P(tau), B, N, seed, step);
}
void cpu_mala_log_q(ebm_backend *be, ebm_tensor out, ebm_tensor to, ebm_tensor from,
                    ebm_tensor grad_from, ebm_tensor tau, int B, int N) {
  op_begin(be);
  if (to.n) mala_log_q_cpu(P(out), P(to), P(from), P(grad_from), P(tau), B, N);
}
void cpu_chain_select(ebm_backend *be, ebm_tensor x, ebm_tensor src, ebm_tensor mask, int B, int N) {
  op_begin(be);
  if (x.n) chain_select_cpu(P(x), P(src), P(mask), B, N);
}

/* composition ops: the twins of cpu_sampler.c */
void cpu_softmin_forward(ebm_backend *be, ebm_tensor v, ebm_tensor e, int K, int B, float T) {
  op_begin(be);
  if (B) softmin_forward_cpu(P(v), P(e), K, B, T);
}
void cpu_softmin_backward(ebm_backend *be, ebm_tensor de, ebm_tensor dv, ebm_tensor e, int K,
                          int B, float T, float alpha) {
  op_begin(be);
  if (B) softmin_backward_cpu(P(de), P(dv), P(e), K, B, T, alpha);
}

/* optimizer ops: Adam elementwise, split over the pool's threads (each element on its own, so
 * the split changes no bits) */
typedef struct adam_job {
  float *p, *m, *v;
  const float *g;
  size_t n;
  const ebm_adam_params *hp;
} adam_job;

static void adam_part(void *arg, int t, int T) {
  const adam_job *j = arg;
  size_t per = (j->n + (size_t)T - 1) / (size_t)T, begin = per * (size_t)t;
  size_t end = begin + per < j->n ? begin + per : j->n;
  if (begin < end) adam_step_cpu_range(j->p, j->g, j->m, j->v, begin, end, j->hp);
}

void cpu_adam_step(ebm_backend *be, ebm_tensor params, ebm_tensor grads, ebm_tensor m,
                   ebm_tensor v, size_t n, const ebm_adam_params *hp) {
  op_begin(be);
  if (!n) return;
  adam_job j = {P(params), P(m), P(v), P(grads), n, hp};
  if (n < 16384) adam_part(&j, 0, 1); /* not worth waking the pool */
  else cpu_parallel(adam_part, &j);
}

#define EBM_VTABLE_PREFIX cpu_
static const ebm_backend_vtable cpu_vtable = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .device_name = cpu_device_name,
    .describe = cpu_describe,
    .conv_path = cpu_conv_path,
    .validation_errors = cpu_validation_errors,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .fail = cpu_fail,
#define EBM_OP EBM_VTABLE_OP
#include "vkebm/ops.def"
#undef EBM_OP
};
#undef EBM_VTABLE_PREFIX

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
