/* cpu_ops.c: every backend op in plain C on float arrays (see cpu_ops.h for shapes).
 *
 * Owns: the im2col/col2im + sgemm convolutions, the BLAS binding (BLIS or OpenBLAS, chosen by
 * the VKEBM_BLAS CMake option), and the simple loops of the other ops.
 *
 * Convolution as GEMM. For a chunk of nb images (N = nb*H*W output pixels, K = Ci*9):
 *   col[K, N]    col[(ci,kh,kw), (b,h,w)] = x[b,ci,h+kh-1,w+kw-1]  (0 outside)       im2col
 *   forward:     out[Co, N] = w[Co, K] * col[K, N]                  then out -> y[b,co,p]
 *   back input:  dcol[K, N] = w^T[K, Co] * dy[Co, N]                then col2im (gather) -> dx
 *   back weight: dw[Co, K] += dy[Co, N] * col^T[N, K]
 * Batching several images into one GEMM keeps N large at the deep, small-spatial layers
 * (8x8 = 64 pixels per image would be a thin, slow GEMM). A chunk is sized so each thread's
 * share of col stays within CONV_COL_BUDGET floats. dy[b] is already [Co, HW]; with nb > 1 it
 * is gathered into [Co, N] (a copy that costs 1/(2K) of the GEMM's flops).
 *
 * Threads (cpu_pool.h): the BLAS runs single-threaded; each chunk is split between our pool's
 * threads so that every thread owns a disjoint part of the output and does its own im2col:
 * forward by pixel rows, backward input by input channels (its dcol rows and dx planes),
 * backward weight by columns of dw. One fork-join per chunk (two with the dy gather), blocking
 * waits, no thread reads another's partial sums: results are bitwise repeatable.
 */
#include "cpu_ops.h"
#include "cpu_pool.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(VKEBM_BLAS_BLIS)
#include <blis.h>
#elif defined(VKEBM_BLAS_OPENBLAS)
#include <cblas.h>
#else
#error "define VKEBM_BLAS_BLIS or VKEBM_BLAS_OPENBLAS (CMake option VKEBM_BLAS)"
#endif

/* Elementwise loops are vectorised explicitly: -O2's cost model leaves them scalar
 * (CMake compiles this file with -fopenmp-simd, which honours the pragma without a runtime). */
#define CPU_PRAGMA(x) _Pragma(#x)
#define CPU_SIMD CPU_PRAGMA(omp simd)

/* im2col column budget per thread in floats (2 MiB): chunks of col that stay in the L2/L3
 * caches between im2col writing them and the GEMM reading them. Measured (docs/bench-notes.md):
 * 512K floats beat 4M by 1.2-1.8x on every conv of a 32x32 net; 2 threads still batch 16
 * images of 64ch x 8x8 into one chunk. */
#define CONV_COL_BUDGET ((size_t)512 << 10)

/* ---- context and BLAS --------------------------------------------------------------------- */

int cpu_ctx_reserve(cpu_ctx *ctx, size_t nfloats) {
  if (nfloats <= ctx->scratch_cap) return 0;
  size_t bytes = (nfloats * sizeof(float) + 63) / 64 * 64;
  float *p = aligned_alloc(64, bytes);
  if (!p) return -1;
  free(ctx->scratch);
  ctx->scratch = p;
  ctx->scratch_cap = nfloats;
  return 0;
}

void cpu_ctx_release(cpu_ctx *ctx) {
  free(ctx->scratch);
  ctx->scratch = NULL;
  ctx->scratch_cap = 0;
}

#if defined(VKEBM_BLAS_BLIS) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
/* BLIS chooses its kernels from cpuid at its first call. BLIS 0.9 recognises AMD CPUs by
 * family/model only up to family 0x19 (Zen 3 and Zen 4: zen3 kernels) and gives any later AMD
 * family (Zen 5 is 0x1A) its slow generic reference kernels; the zen3 (AVX2+FMA) kernels are
 * right there. Intel CPUs are matched by features and need no help. Runs before any BLIS call;
 * a BLIS_ARCH_TYPE the user set wins. */
static void blis_choose_arch(void) {
  if (getenv("BLIS_ARCH_TYPE")) return;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx) || ebx != signature_AMD_ebx) return;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return;
  unsigned family = (eax >> 8) & 0xf;
  if (family == 0xf) family += (eax >> 20) & 0xff;
  __builtin_cpu_init();
  if (family > 0x19 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    char id[16];
    snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_ZEN3);
    setenv("BLIS_ARCH_TYPE", id, 0);
  }
}
#elif defined(VKEBM_BLAS_BLIS)
static void blis_choose_arch(void) {}
#endif

/* The thread pool every op shares (process-global, like the BLAS's own settings). NULL: one
 * thread. Ops are issued from one host thread at a time. */
static cpu_pool *g_pool;

int cpu_set_threads(int threads) {
  if (threads < 1) threads = 1;
#if defined(VKEBM_BLAS_BLIS)
  static int arch_chosen;
  if (!arch_chosen) {
    blis_choose_arch();
    arch_chosen = 1;
  }
  bli_thread_set_num_threads(1); /* the parallelism is ours (cpu_pool) */
#else
  openblas_set_num_threads(1);
#endif
  if (cpu_pool_threads(g_pool) == threads) return 0;
  cpu_pool_destroy(g_pool);
  g_pool = NULL;
  if (threads == 1) return 0;
  g_pool = cpu_pool_create(threads);
  return g_pool ? 0 : -1;
}

int cpu_threads(void) { return cpu_pool_threads(g_pool); }

void cpu_parallel(cpu_pool_fn fn, void *arg) { cpu_pool_run(g_pool, fn, arg); }

#if defined(VKEBM_BLAS_OPENBLAS)
/* OpenBLAS cores without AVX2 kernels: on a CPU that has AVX2, seeing one of these means
 * OpenBLAS did not recognise the CPU (it reads OPENBLAS_CORETYPE once, when it loads). */
static int openblas_core_is_weak(const char *core) {
  static const char *weak[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                               "sandybridge", "barcelona", "bobcat", "bulldozer", "piledriver",
                               "steamroller", "opteron", "katmai", "coppermine", "northwood",
                               "banias", "generic", NULL};
  for (int i = 0; weak[i]; i++)
    if (strcasecmp(core, weak[i]) == 0) return 1;
  return 0;
}
#endif

void cpu_blas_describe(char *out, size_t len) {
#if defined(VKEBM_BLAS_BLIS)
  const arch_t arch = bli_arch_query_id();
  int slow = arch == BLIS_ARCH_GENERIC;
  snprintf(out, len, "BLIS %s sgemm, %s kernels%s", bli_info_get_version_str(),
           bli_arch_string(arch),
           slow ? " [slow reference kernels: set BLIS_ARCH_TYPE to the nearest known CPU]" : "");
#else
  const char *env = getenv("OPENBLAS_CORETYPE");
  const char *core = openblas_get_corename();
  int slow = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  slow = __builtin_cpu_supports("avx2") && openblas_core_is_weak(core);
#endif
  snprintf(out, len, "OpenBLAS sgemm, %s kernels%s%s [%s]%s", core,
           env ? ", OPENBLAS_CORETYPE=" : "", env ? env : "", openblas_get_config(),
           slow ? " [pre-AVX2 kernels on an AVX2 CPU: set OPENBLAS_CORETYPE=Haswell or "
                  "SkylakeX]"
                : "");
#endif
}

void cpu_sgemm(int transa, int transb, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *Bm, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
              transb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

/* The three GEMM forms the convolutions use (NN, TN, NT with beta 1), on odd sizes against a
 * double loop. Guards against a BLAS whose kernels are wrong on this CPU (old OpenBLAS builds
 * on newer CPUs are known to compute garbage). ~0.2 MFLOP, once per backend. */
int cpu_blas_selfcheck(char *err, size_t errlen) {
  enum { M = 37, N = 29, K = 41 };
  static float A[M * K], Bm[K * N], C[M * N];
  static const int forms[3][2] = {{0, 0}, {1, 0}, {0, 1}};
  for (int f = 0; f < 3; f++) {
    const int ta = forms[f][0], tb = forms[f][1];
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 37 + f) % 23) / 11.0f - 1.0f;
    for (int i = 0; i < K * N; i++) Bm[i] = (float)((i * 29 + 3 * f) % 19) / 9.0f - 1.0f;
    for (int i = 0; i < M * N; i++) C[i] = (float)(i % 7) - 3.0f;
    cpu_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, Bm, tb ? K : N, 1.0f, C, N);
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        double want = (double)((m * N + n) % 7) - 3.0;
        for (int k = 0; k < K; k++)
          want += (double)(ta ? A[k * M + m] : A[m * K + k]) * (tb ? Bm[n * K + k] : Bm[k * N + n]);
        const double got = C[m * N + n];
        if (!(fabs(got - want) <= 1e-4 * (1.0 + fabs(want)))) {
          char blas[256];
          cpu_blas_describe(blas, sizeof blas);
          snprintf(err, errlen,
                   "the BLAS computes wrong results on this CPU (%s; sgemm %c%c [%d,%d] = %g, "
                   "want %g): set BLIS_ARCH_TYPE or OPENBLAS_CORETYPE to an older CPU",
                   blas, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, got, want);
          return -1;
        }
      }
  }
  return 0;
}

/* ---- elementwise ---------------------------------------------------------------------------- */

/* Memory-bound loops run on the calling thread (a second thread buys little on memory
 * bandwidth); swish, which is compute-bound, spreads fixed chunks over the pool. Sums over long vectors use 8 double lanes (8
 * independent add chains instead of one) combined in a fixed tree, then chunk sums in order. */
#define CHUNK ((size_t)16384)
#define FOR_CHUNKS(n, i0, i1)                                                               \
  for (size_t i0 = 0, i1 = CHUNK < (n) ? CHUNK : (n); i0 < (n);                               \
       i0 = i1, i1 = i1 + CHUNK < (n) ? i1 + CHUNK : (n))

void fill_cpu(float *y, float v, size_t n) {
  FOR_CHUNKS(n, i0, i1) {
    CPU_SIMD
    for (size_t i = i0; i < i1; i++) y[i] = v;
  }
}

void add_cpu(float *y, const float *a, const float *b, size_t n) {
  FOR_CHUNKS(n, i0, i1) {
    CPU_SIMD
    for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
  }
}

void axpy_cpu(float *y, float alpha, const float *x, size_t n) {
  FOR_CHUNKS(n, i0, i1) {
    CPU_SIMD
    for (size_t i = i0; i < i1; i++) y[i] += alpha * x[i];
  }
}

void scale_cpu(float *y, float alpha, const float *x, size_t n) {
  FOR_CHUNKS(n, i0, i1) {
    CPU_SIMD
    for (size_t i = i0; i < i1; i++) y[i] = alpha * x[i];
  }
}

/* sum_i x[i] in double: 8 lanes, fixed combination order */
static double sum_f64(const float *x, size_t n) {
  double a[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) a[j] += x[i + j];
  for (int j = 0; i < n; i++, j++) a[j] += x[i];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* sum_i x[i] y[i] in double, as sum_f64 */
static double dot_f64(const float *x, const float *y, size_t n) {
  double a[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) a[j] += (double)x[i + j] * y[i + j];
  for (int j = 0; i < n; i++, j++) a[j] += (double)x[i] * y[i];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* ---- conv3x3 ------------------------------------------------------------------------------ */

/* col rows [k0, k1) (row k = (ci, kh, kw)) over the pixel rows [r0, r1) of a chunk of images
 * x[nb, Ci, H, W]; pixel row r is (b, h) = (r / H, r % H). col is [k1-k0, (r1-r0)*W]. */
static void im2col3x3(float *col, const float *x, int Ci, int H, int W, int k0, int k1, int r0,
                      int r1) {
  const size_t HW = (size_t)H * W, n = (size_t)(r1 - r0) * W;
  for (int k = k0; k < k1; k++) {
    const int ci = k / 9, kh = (k % 9) / 3, kw = k % 3;
    float *dst = col + (size_t)(k - k0) * n;
    for (int r = r0; r < r1; r++, dst += W) {
      const int b = r / H, h = r % H, hs = h + kh - 1;
      if (hs < 0 || hs >= H) {
        memset(dst, 0, (size_t)W * sizeof(float));
        continue;
      }
      const float *src = x + ((size_t)b * Ci + ci) * HW + (size_t)hs * W;
      if (kw == 1) {
        memcpy(dst, src, (size_t)W * sizeof(float));
      } else if (kw == 0) { /* dst[w] = src[w-1] */
        dst[0] = 0.0f;
        memcpy(dst + 1, src, (size_t)(W - 1) * sizeof(float));
      } else { /* dst[w] = src[w+1] */
        memcpy(dst, src + 1, (size_t)(W - 1) * sizeof(float));
        dst[W - 1] = 0.0f;
      }
    }
  }
}

/* dx planes (b, ci) for b < nb, ci in [c0, c1) = sum over the 9 taps of dcol shifted back (the
 * adjoint of im2col); dcol is [9*(c1-c0), nb*HW], rows (ci-c0, kh, kw). Gathers per output
 * plane in tap order, so the sum order is fixed. */
static void col2im3x3(float *dx, const float *dcol, int nb, int Ci, int H, int W, int c0, int c1) {
  const size_t HW = (size_t)H * W, N = (size_t)nb * HW;
  for (int b = 0; b < nb; b++)
    for (int ci = c0; ci < c1; ci++) {
      float *out = dx + ((size_t)b * Ci + ci) * HW;
      memset(out, 0, HW * sizeof(float));
      for (int k = 0; k < 9; k++) {
        const int kh = k / 3, kw = k % 3;
        const float *src = dcol + ((size_t)(ci - c0) * 9 + k) * N + (size_t)b * HW;
        /* out[h', w'] += src[h'-kh+1, w'-kw+1] where that is inside the image */
        for (int ho = 0; ho < H; ho++) {
          const int h = ho - kh + 1;
          if (h < 0 || h >= H) continue;
          const float *s = src + (size_t)h * W;
          float *o = out + (size_t)ho * W;
          /* o and s never overlap (dx vs scratch): the simd pragmas skip the alias check */
          if (kw == 1) {
            CPU_SIMD
            for (int w = 0; w < W; w++) o[w] += s[w];
          } else if (kw == 0) { /* w = w' + 1 */
            CPU_SIMD
            for (int wo = 0; wo < W - 1; wo++) o[wo] += s[wo + 1];
          } else { /* w = w' - 1 */
            CPU_SIMD
            for (int wo = 1; wo < W; wo++) o[wo] += s[wo - 1];
          }
        }
      }
    }
}

/* Images per chunk: each of the T threads' share of col stays within the budget. */
static int conv_chunk(const cpu_ctx *ctx, int T, int B, size_t col_floats_per_image) {
  const size_t budget = (ctx->col_budget ? ctx->col_budget : CONV_COL_BUDGET) * (size_t)T;
  size_t nb = col_floats_per_image ? budget / col_floats_per_image : (size_t)B;
  if (nb < 1) nb = 1;
  if (nb > (size_t)B) nb = (size_t)B;
  return (int)nb;
}

/* [lo, hi) = thread t's share of [0, n) in T near-equal contiguous parts */
static void split_range(int n, int t, int T, int *lo, int *hi) {
  *lo = (int)((long long)n * t / T);
  *hi = (int)((long long)n * (t + 1) / T);
}

/* One chunk of one conv op, shared by the threads of a pool run. */
typedef struct conv_job {
  const float *x, *w, *dy; /* chunk-relative inputs (x, dy point at image b0) */
  float *y, *dx, *dw;      /* outputs (y, dx point at image b0) */
  float *scratch;          /* per_thread floats for each thread */
  size_t per_thread;
  const float *dyg; /* dy of the chunk as [Co, N] (bwd ops): dy itself or dyg_buf */
  float *dyg_buf;
  int nb, Ci, Co, H, W;
} conv_job;

/* Forward: thread t owns the pixel rows [r0, r1) of the chunk: its own im2col columns, its own
 * GEMM out[Co, n] = w[Co, K] col[K, n], its own part of y. No thread waits for another. */
static void conv_forward_part(void *arg, int t, int T) {
  const conv_job *j = arg;
  int r0, r1;
  split_range(j->nb * j->H, t, T, &r0, &r1);
  if (r0 == r1) return;
  const int K = j->Ci * 9, n = (r1 - r0) * j->W;
  const size_t HW = (size_t)j->H * j->W;
  float *col = j->scratch + (size_t)t * j->per_thread, *out = col + (size_t)K * n;
  im2col3x3(col, j->x, j->Ci, j->H, j->W, 0, K, r0, r1);
  cpu_sgemm(0, 0, j->Co, n, K, 1.0f, j->w, K, col, n, 0.0f, out, n);
  for (int co = 0; co < j->Co; co++)
    for (int r = r0; r < r1; r++) {
      const int b = r / j->H, h = r % j->H;
      memcpy(j->y + ((size_t)b * j->Co + co) * HW + (size_t)h * j->W,
             out + (size_t)co * n + (size_t)(r - r0) * j->W, (size_t)j->W * sizeof(float));
    }
}

/* dyg[Co, nb*HW] <- dy[nb, Co, HW], thread t copying channels [c0, c1) */
static void gather_dy_part(void *arg, int t, int T) {
  const conv_job *j = arg;
  const size_t HW = (size_t)j->H * j->W, N = (size_t)j->nb * HW;
  int c0, c1;
  split_range(j->Co, t, T, &c0, &c1);
  for (int c = c0; c < c1; c++)
    for (int b = 0; b < j->nb; b++)
      memcpy(j->dyg_buf + (size_t)c * N + (size_t)b * HW,
             j->dy + ((size_t)b * j->Co + c) * HW, HW * sizeof(float));
}

/* Backward input: thread t owns input channels [c0, c1): dcol rows for them
 * (= w[:, c0*9 : c1*9]^T dy) and then their dx planes. */
static void conv_backward_input_part(void *arg, int t, int T) {
  const conv_job *j = arg;
  int c0, c1;
  split_range(j->Ci, t, T, &c0, &c1);
  if (c0 == c1) return;
  const int K = j->Ci * 9, N = j->nb * j->H * j->W, rows = (c1 - c0) * 9;
  float *dcol = j->scratch + (size_t)t * j->per_thread;
  cpu_sgemm(1, 0, rows, N, j->Co, 1.0f, j->w + (size_t)c0 * 9, K, j->dyg, N, 0.0f, dcol, N);
  col2im3x3(j->dx, dcol, j->nb, j->Ci, j->H, j->W, c0, c1);
}

/* Backward weight: thread t owns the columns [k0, k1) of dw[Co, K]: its own im2col rows and
 * dw[:, k0:k1] += dy[Co, N] col[k0:k1, N]^T. Chunks accumulate in chunk order. */
static void conv_backward_weight_part(void *arg, int t, int T) {
  const conv_job *j = arg;
  const int K = j->Ci * 9, N = j->nb * j->H * j->W;
  int k0, k1;
  split_range(K, t, T, &k0, &k1);
  if (k0 == k1) return;
  float *col = j->scratch + (size_t)t * j->per_thread;
  im2col3x3(col, j->x, j->Ci, j->H, j->W, k0, k1, 0, j->nb * j->H);
  cpu_sgemm(0, 1, j->Co, k1 - k0, N, 1.0f, j->dyg, N, col, N, 1.0f, j->dw + k0, K);
}

/* Threads for a conv op: one when the whole op is below ~2 MFLOP (waking a worker costs more). */
static int conv_threads(int B, int Ci, int Co, int H, int W) {
  const double flops = 2.0 * B * Ci * Co * 9.0 * H * W;
  return flops < 2e6 ? 1 : cpu_pool_threads(g_pool);
}

static void conv_run(int T, cpu_pool_fn fn, conv_job *j) {
  if (T == 1)
    fn(j, 0, 1);
  else
    cpu_pool_run(g_pool, fn, j);
}

int conv3x3_forward_cpu(cpu_ctx *ctx, float *y, const float *x, const float *w, int B, int Ci,
                        int Co, int H, int W) {
  if (B <= 0 || Co <= 0 || H <= 0 || W <= 0) return 0;
  const size_t HW = (size_t)H * W;
  if (Ci <= 0) {
    fill_cpu(y, 0.0f, (size_t)B * Co * HW);
    return 0;
  }
  if (cpu_conv_use_direct(CPU_CONV_FORWARD, Ci, Co, H, W))
    return conv3x3_direct_forward(ctx, y, x, w, B, Ci, Co, H, W);
  const int T = conv_threads(B, Ci, Co, H, W), K = Ci * 9;
  const int nbmax = conv_chunk(ctx, T, B, (size_t)K * HW);
  /* a thread's share: ceil(nbmax*H / T) pixel rows of col [K, n] and out [Co, n] */
  const size_t rows = ((size_t)nbmax * H + T - 1) / T;
  const size_t per_thread = (size_t)(K + Co) * rows * W;
  if (cpu_ctx_reserve(ctx, per_thread * T)) return -1;
  conv_job j = {.w = w, .scratch = ctx->scratch, .per_thread = per_thread, .Ci = Ci, .Co = Co,
                .H = H, .W = W};
  for (int b0 = 0; b0 < B; b0 += nbmax) {
    j.nb = B - b0 < nbmax ? B - b0 : nbmax;
    j.x = x + (size_t)b0 * Ci * HW;
    j.y = y + (size_t)b0 * Co * HW;
    conv_run(T, conv_forward_part, &j);
  }
  return 0;
}

int conv3x3_backward_input_cpu(cpu_ctx *ctx, float *dx, const float *dy, const float *w, int B,
                               int Ci, int Co, int H, int W) {
  if (B <= 0 || Ci <= 0 || H <= 0 || W <= 0) return 0;
  const size_t HW = (size_t)H * W;
  if (Co <= 0) {
    fill_cpu(dx, 0.0f, (size_t)B * Ci * HW);
    return 0;
  }
  if (cpu_conv_use_direct(CPU_CONV_BACKWARD_INPUT, Ci, Co, H, W))
    return conv3x3_direct_backward_input(ctx, dx, dy, w, B, Ci, Co, H, W);
  const int T = conv_threads(B, Ci, Co, H, W);
  const size_t cis = ((size_t)Ci + T - 1) / T; /* input channels per thread, at most */
  const int nbmax = conv_chunk(ctx, T, B, 9 * cis * T * HW);
  const size_t per_thread = 9 * cis * nbmax * HW, dygsz = nbmax > 1 ? (size_t)Co * nbmax * HW : 0;
  if (cpu_ctx_reserve(ctx, per_thread * T + dygsz)) return -1;
  float *dyg = ctx->scratch + per_thread * T;
  conv_job j = {.w = w, .scratch = ctx->scratch, .per_thread = per_thread, .Ci = Ci, .Co = Co,
                .H = H, .W = W};
  for (int b0 = 0; b0 < B; b0 += nbmax) {
    j.nb = B - b0 < nbmax ? B - b0 : nbmax;
    j.dy = dy + (size_t)b0 * Co * HW;
    j.dx = dx + (size_t)b0 * Ci * HW;
    j.dyg = j.dy; /* one image: dy[b] is already [Co, HW] */
    if (j.nb > 1) {
      j.dyg = j.dyg_buf = dyg;
      conv_run(T, gather_dy_part, &j);
    }
    conv_run(T, conv_backward_input_part, &j);
  }
  return 0;
}

int conv3x3_backward_weight_cpu(cpu_ctx *ctx, float *dw, const float *dy, const float *x, int B,
                                int Ci, int Co, int H, int W) {
  if (B <= 0 || Ci <= 0 || Co <= 0 || H <= 0 || W <= 0) return 0;
  if (cpu_conv_use_direct(CPU_CONV_BACKWARD_WEIGHT, Ci, Co, H, W))
    return conv3x3_direct_backward_weight(ctx, dw, dy, x, B, Ci, Co, H, W);
  const size_t HW = (size_t)H * W;
  const int T = conv_threads(B, Ci, Co, H, W), K = Ci * 9;
  const size_t ks = ((size_t)K + T - 1) / T; /* col rows per thread, at most */
  const int nbmax = conv_chunk(ctx, T, B, ks * T * HW);
  const size_t per_thread = ks * nbmax * HW, dygsz = nbmax > 1 ? (size_t)Co * nbmax * HW : 0;
  if (cpu_ctx_reserve(ctx, per_thread * T + dygsz)) return -1;
  float *dyg = ctx->scratch + per_thread * T;
  conv_job j = {.dw = dw, .scratch = ctx->scratch, .per_thread = per_thread, .Ci = Ci, .Co = Co,
                .H = H, .W = W};
  for (int b0 = 0; b0 < B; b0 += nbmax) {
    j.nb = B - b0 < nbmax ? B - b0 : nbmax;
    j.x = x + (size_t)b0 * Ci * HW;
    j.dy = dy + (size_t)b0 * Co * HW;
    j.dyg = j.dy;
    if (j.nb > 1) {
      j.dyg = j.dyg_buf = dyg;
      conv_run(T, gather_dy_part, &j);
    }
    conv_run(T, conv_backward_weight_part, &j);
  }
  return 0;
}

/* ---- swish ------------------------------------------------------------------------------- */

/* The swish kernels (cpu_swish_kernels.h) for AVX-512 (16 lanes, FMA), AVX2+FMA (8 lanes) and
 * portable 8-lane code; picked once from cpuid, so the bits are fixed on a machine. */
#if defined(__x86_64__) && defined(__GNUC__)
#define SN(name) name##_avx512
#define STARGET __attribute__((target("avx512f,fma")))
#define SLANES 16
#include "cpu_swish_kernels.h"
#undef SN
#undef STARGET
#undef SLANES
#define SN(name) name##_avx2
#define STARGET __attribute__((target("avx2,fma")))
#define SLANES 8
#include "cpu_swish_kernels.h"
#undef SN
#undef STARGET
#undef SLANES
#endif
#define SN(name) name##_portable
#define STARGET
#define SLANES 8
#include "cpu_swish_kernels.h"
#undef SN
#undef STARGET
#undef SLANES

typedef void (*swish_fwd_fn)(float *y, const float *x, size_t n);
typedef void (*swish_bwd_fn)(float *dx, const float *dy, const float *x, size_t n);
static swish_fwd_fn swish_forward_range = swish_forward_range_portable;
static swish_bwd_fn swish_backward_range = swish_backward_range_portable;

static void swish_choose(void) {
  static int chosen;
  if (chosen) return;
  chosen = 1;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    swish_forward_range = swish_forward_range_avx512;
    swish_backward_range = swish_backward_range_avx512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    swish_forward_range = swish_forward_range_avx2;
    swish_backward_range = swish_backward_range_avx2;
  }
#endif
}

typedef struct swish_job {
  float *out;
  const float *dy, *x; /* dy NULL: forward */
  size_t n;
} swish_job;

/* thread t takes chunks t, t+T, ... (an element's result does not depend on which) */
static void swish_part(void *arg, int t, int T) {
  const swish_job *j = arg;
  for (size_t i0 = (size_t)t * CHUNK; i0 < j->n; i0 += (size_t)T * CHUNK) {
    const size_t m = j->n - i0 < CHUNK ? j->n - i0 : CHUNK;
    if (j->dy)
      swish_backward_range(j->out + i0, j->dy + i0, j->x + i0, m);
    else
      swish_forward_range(j->out + i0, j->x + i0, m);
  }
}

static void swish_run(swish_job *j) {
  swish_choose();
  if (j->n < 4 * CHUNK)
    swish_part(j, 0, 1);
  else
    cpu_pool_run(g_pool, swish_part, j);
}

void swish_forward_cpu(float *y, const float *x, size_t n) {
  swish_job j = {y, NULL, x, n};
  swish_run(&j);
}

void swish_backward_cpu(float *dx, const float *dy, const float *x, size_t n) {
  swish_job j = {dx, dy, x, n};
  swish_run(&j);
}

/* ---- avgpool2 ----------------------------------------------------------------------------- */

void avgpool2_forward_cpu(float *y, const float *x, int B, int C, int H, int W) {
  const int Ho = H / 2, Wo = W / 2;
  const size_t planes = (size_t)B * C;
  for (size_t pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * Ho * Wo;
    for (int i = 0; i < Ho; i++) {
      const float *r0 = xp + (size_t)(2 * i) * W, *r1 = r0 + W;
      for (int j = 0; j < Wo; j++)
        yp[(size_t)i * Wo + j] = 0.25f * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
    }
  }
}

void avgpool2_backward_cpu(float *dx, const float *dy, int B, int C, int H, int W) {
  const int Ho = H / 2, Wo = W / 2;
  const size_t planes = (size_t)B * C;
  for (size_t pl = 0; pl < planes; pl++) {
    float *xp = dx + pl * H * W;
    const float *yp = dy + pl * Ho * Wo;
    for (int i = 0; i < Ho; i++) {
      float *r0 = xp + (size_t)(2 * i) * W, *r1 = r0 + W;
      for (int j = 0; j < Wo; j++) {
        const float g = 0.25f * yp[(size_t)i * Wo + j];
        r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = g;
      }
    }
  }
}

/* ---- label conditioning ------------------------------------------------------------------ */

/* s[b,ch] = sum_l c[b,l] G[l,ch] (+ CB[ch] when CB) in double, rounded to float. */
static void label_linear(float *s, const float *c, const float *G, const float *CB, int B, int C,
                         int L) {
  for (int b = 0; b < B; b++)
    for (int ch = 0; ch < C; ch++) {
      double acc = 0.0;
      for (int l = 0; l < L; l++) acc += (double)c[(size_t)b * L + l] * G[(size_t)l * C + ch];
      if (CB) acc += CB[ch];
      s[(size_t)b * C + ch] = (float)acc;
    }
}

void cond_bias_forward_cpu(float *y, const float *x, const float *c, const float *G, int B, int C,
                           int HW, int L) {
  const int BC = B * C;
  for (int bc = 0; bc < BC; bc++) {
    const int b = bc / C, ch = bc % C;
    double acc = 0.0;
    for (int l = 0; l < L; l++) acc += (double)c[(size_t)b * L + l] * G[(size_t)l * C + ch];
    const float bias = (float)acc;
    const size_t o = (size_t)bc * HW;
    CPU_SIMD
    for (int p = 0; p < HW; p++) y[o + p] = x[o + p] + bias;
  }
}

/* Per-(b,ch) reductions feed the parameter gradients: dG[l,ch] += sum_b c[b,l] g[b,ch],
 * dCB[ch] += sum_b g[b,ch], dc[b,l] += sum_ch G[l,ch] g[b,ch]. */
static void label_linear_backward(float *dG, float *dCB, float *dc, const double *g,
                                  const float *c, const float *G, int B, int C, int L) {
  if (dG)
    for (int l = 0; l < L; l++)
      for (int ch = 0; ch < C; ch++) {
        double acc = 0.0;
        for (int b = 0; b < B; b++) acc += (double)c[(size_t)b * L + l] * g[(size_t)b * C + ch];
        dG[(size_t)l * C + ch] += (float)acc;
      }
  if (dCB)
    for (int ch = 0; ch < C; ch++) {
      double acc = 0.0;
      for (int b = 0; b < B; b++) acc += g[(size_t)b * C + ch];
      dCB[ch] += (float)acc;
    }
  if (dc)
    for (int b = 0; b < B; b++)
      for (int l = 0; l < L; l++) {
        double acc = 0.0;
        for (int ch = 0; ch < C; ch++) acc += (double)G[(size_t)l * C + ch] * g[(size_t)b * C + ch];
        dc[(size_t)b * L + l] += (float)acc;
      }
}

int cond_bias_backward_cpu(float *dG, float *dc, const float *dy, const float *c, const float *G,
                           int B, int C, int HW, int L) {
  if (B <= 0 || C <= 0) return 0;
  const size_t BC = (size_t)B * C;
  double *g = malloc(BC * sizeof(double));
  if (!g) return -1;
  for (size_t bc = 0; bc < BC; bc++) g[bc] = sum_f64(dy + bc * HW, (size_t)HW);
  label_linear_backward(dG, NULL, dc, g, c, G, B, C, L);
  free(g);
  return 0;
}

int cond_scale_forward_cpu(float *y, const float *x, const float *c, const float *G,
                           const float *CB, int B, int C, int HW, int L) {
  if (B <= 0 || C <= 0) return 0;
  float *s = malloc((size_t)B * C * sizeof(float));
  if (!s) return -1;
  label_linear(s, c, G, CB, B, C, L);
  const size_t BC = (size_t)B * C;
  for (size_t bc = 0; bc < BC; bc++) {
    const float k = s[bc];
    CPU_SIMD
    for (int p = 0; p < HW; p++) y[bc * HW + p] = x[bc * HW + p] * k;
  }
  free(s);
  return 0;
}

int cond_scale_backward_cpu(float *dx, float *dG, float *dCB, float *dc, const float *dy,
                            const float *x, const float *c, const float *G, const float *CB, int B,
                            int C, int HW, int L) {
  if (B <= 0 || C <= 0) return 0;
  const size_t BC = (size_t)B * C;
  double *g = malloc(BC * sizeof(double));
  float *s = malloc(BC * sizeof(float));
  if (!g || !s) {
    free(g);
    free(s);
    return -1;
  }
  label_linear(s, c, G, CB, B, C, L);
  const int want_g = dG || dCB || dc; /* sampling asks for dx alone */
  /* g first: dx may alias dy or x */
  for (size_t bc = 0; bc < BC; bc++) {
    if (want_g) g[bc] = dot_f64(dy + bc * HW, x + bc * HW, (size_t)HW);
    const float k = s[bc];
    CPU_SIMD
    for (int p = 0; p < HW; p++) dx[bc * HW + p] = dy[bc * HW + p] * k;
  }
  if (want_g) label_linear_backward(dG, dCB, dc, g, c, G, B, C, L);
  free(g);
  free(s);
  return 0;
}

/* ---- head --------------------------------------------------------------------------------- */

void head_forward_cpu(float *e, const float *x, const float *w, const float *bias, int B, int C,
                      int HW) {
  for (int b = 0; b < B; b++) {
    double acc = 0.0;
    for (int ch = 0; ch < C; ch++) {
      const double m = sum_f64(x + ((size_t)b * C + ch) * HW, (size_t)HW);
      acc += (double)w[ch] * (m / HW);
    }
    e[b] = (float)(acc + bias[0]);
  }
}

void head_backward_cpu(float *dx, float *dw, float *dbias, const float *de, const float *x,
                       const float *w, int B, int C, int HW) {
  /* parameter gradients first: dx may alias x */
  if (dw)
    for (int ch = 0; ch < C; ch++) {
      double acc = 0.0;
      for (int b = 0; b < B; b++) {
        const double m = sum_f64(x + ((size_t)b * C + ch) * HW, (size_t)HW);
        acc += (double)de[b] * (m / HW);
      }
      dw[ch] += (float)acc;
    }
  if (dbias) {
    double acc = 0.0;
    for (int b = 0; b < B; b++) acc += de[b];
    dbias[0] += (float)acc;
  }
  if (dx)
    for (int b = 0; b < B; b++)
      for (int ch = 0; ch < C; ch++) {
        const float g = (float)((double)de[b] * w[ch] / HW);
        float *d = dx + ((size_t)b * C + ch) * HW;
        for (int p = 0; p < HW; p++) d[p] = g;
      }
}

/* ---- spectral norm ------------------------------------------------------------------------ */

int spectral_norm_forward_cpu(float *w_sn, float *u, float *v, float *sigma, const float *w,
                              int rows, int cols, int update_u) {
  if (rows <= 0 || cols <= 0) return 0;
  double *vd = calloc((size_t)cols, sizeof(double));
  double *ud = malloc((size_t)rows * sizeof(double));
  if (!vd || !ud) {
    free(vd);
    free(ud);
    return -1;
  }
  /* v = normalize(W^T u), accumulated row by row (fixed order) */
  for (int r = 0; r < rows; r++) {
    const double ur = u[r];
    const float *wr = w + (size_t)r * cols;
    for (int k = 0; k < cols; k++) vd[k] += ur * wr[k];
  }
  double nv = 0.0;
  for (int k = 0; k < cols; k++) nv += vd[k] * vd[k];
  nv = sqrt(nv) + 1e-12;
  for (int k = 0; k < cols; k++) vd[k] /= nv;
  /* u' = normalize(W v), sigma = u'^T W v = ||W v||^2 / (||W v|| + eps) */
  double nu = 0.0;
  for (int r = 0; r < rows; r++) {
    const float *wr = w + (size_t)r * cols;
    double acc = 0.0;
    for (int k = 0; k < cols; k++) acc += wr[k] * vd[k];
    ud[r] = acc;
    nu += acc * acc;
  }
  double sig = 0.0;
  const double unorm = sqrt(nu) + 1e-12;
  for (int r = 0; r < rows; r++) {
    const double wv = ud[r];
    ud[r] = wv / unorm;
    sig += ud[r] * wv;
  }
  const float sigf = (float)sig;
  const size_t n = (size_t)rows * cols;
  for (size_t i = 0; i < n; i++) w_sn[i] = w[i] / sigf;
  for (int k = 0; k < cols; k++) v[k] = (float)vd[k];
  if (update_u)
    for (int r = 0; r < rows; r++) u[r] = (float)ud[r];
  sigma[0] = sigf;
  free(vd);
  free(ud);
  return 0;
}

void spectral_norm_backward_cpu(float *dw, const float *dw_sn, const float *w_sn, const float *u,
                                const float *v, const float *sigma, int rows, int cols) {
  const size_t n = (size_t)rows * cols;
  double dot = 0.0;
  for (size_t i = 0; i < n; i++) dot += (double)dw_sn[i] * w_sn[i];
  const double inv = 1.0 / sigma[0];
  for (int r = 0; r < rows; r++) {
    const double du = dot * u[r];
    for (int k = 0; k < cols; k++) {
      const size_t i = (size_t)r * cols + k;
      dw[i] += (float)((dw_sn[i] - du * v[k]) * inv);
    }
  }
}

/* ---- reductions --------------------------------------------------------------------------- */

/* Chunk sums (in parallel) added in chunk order: the same bits for any thread count. */
void sumsq_cpu(float *out, const float *x, size_t n) {
  const size_t nchunks = (n + CHUNK - 1) / CHUNK;
  double local[64];
  double *part = nchunks <= 64 ? local : malloc(nchunks * sizeof(double));
  double total = 0.0;
  if (part) {
    FOR_CHUNKS(n, i0, i1) part[i0 / CHUNK] = dot_f64(x + i0, x + i0, i1 - i0);
    for (size_t k = 0; k < nchunks; k++) total += part[k];
    if (part != local) free(part);
  } else { /* no memory for the parts: the same sums, one after another */
    for (size_t i0 = 0; i0 < n; i0 += CHUNK)
      total += dot_f64(x + i0, x + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
  }
  out[0] = (float)total;
}
