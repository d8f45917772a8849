/* cpu_ops.h: the plain-C twins of every backend op, on raw float arrays (private to the cpu
 * backend and the tests).
 *
 * Owns: the array-level implementation of each op of include/vkebm/backend.h. Shapes and
 * formulas are exactly backend.h's; src/backend/cpu.c resolves ebm_refs (with bounds checks)
 * and calls these. The three convolutions are im2col/col2im + sgemm from the configured BLAS
 * (VKEBM_BLAS); their naive direct-loop references live in cpu_reference.{h,c}.
 *
 * Aliasing: elementwise ops allow y == x exactly (in place); cond_scale_backward and
 * head_backward allow dx == dy or dx == x. Convolutions need distinct input and output.
 * Reductions run in a fixed order (double accumulators where cheap), so results are bitwise
 * repeatable.
 */
#ifndef VKEBM_CPU_OPS_H
#define VKEBM_CPU_OPS_H

#include <stddef.h>

/* Execution context: a growable scratch area for im2col. */
typedef struct cpu_ctx {
  float *scratch;      /* 64-byte aligned */
  size_t scratch_cap;  /* floats */
  size_t col_budget;   /* im2col floats per GEMM chunk; 0 = default (tests shrink it) */
} cpu_ctx;

/* Returns 0, or -1 when scratch could not grow (the op then does nothing). */
int cpu_ctx_reserve(cpu_ctx *ctx, size_t nfloats);
void cpu_ctx_release(cpu_ctx *ctx);
/* Sets the threads every op uses (process-global, like the BLAS's settings): a blocking pool
 * of `threads` (cpu_pool.h), the BLAS itself single-threaded. On the first call with BLIS it also
 * picks BLIS's kernels for CPUs BLIS does not know. Returns -1 if the pool could not start
 * (the ops then run on one thread). */
int cpu_set_threads(int threads);
int cpu_threads(void);
/* fn(arg, t, T) on every thread of the pool set by cpu_set_threads (cpu_pool_run). */
void cpu_parallel(void (*fn)(void *arg, int t, int T), void *arg);
/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, op = transpose when trans* != 0. */
void cpu_sgemm(int transa, int transb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
/* Checks the BLAS's sgemm (the forms the convs use) against a double loop on odd sizes.
 * Returns 0, or -1 with a one-line reason in err. */
int cpu_blas_selfcheck(char *err, size_t errlen);
/* One line naming the BLAS library, its version and the kernel set it selected. */
void cpu_blas_describe(char *out, size_t len);

/* y[n] = v */
void fill_cpu(float *y, float v, size_t n);
/* y[n] = a[n] + b[n] */
void add_cpu(float *y, const float *a, const float *b, size_t n);
/* y[n] += alpha * x[n] */
void axpy_cpu(float *y, float alpha, const float *x, size_t n);
/* y[n] = alpha * x[n] */
void scale_cpu(float *y, float alpha, const float *x, size_t n);

/* y[B,Co,H,W] = sum_{ci,kh,kw} w[Co,ci,kh,kw] * x[B,ci,h+kh-1,w+kw-1]  (zero padding 1).
 * Return 0, or -1 on scratch allocation failure. */
int conv3x3_forward_cpu(cpu_ctx *ctx, float *y, const float *x, const float *w, int B, int Ci,
                        int Co, int H, int W);
/* dx[B,Ci,H,W] = conv_transpose(dy[B,Co,H,W], w[Co,Ci,3,3])  (overwrites) */
int conv3x3_backward_input_cpu(cpu_ctx *ctx, float *dx, const float *dy, const float *w, int B,
                               int Ci, int Co, int H, int W);
/* dw[Co,Ci,3,3] += sum_{b,h,w} dy[b,co,h,w] * x[b,ci,h+kh-1,w+kw-1] */
int conv3x3_backward_weight_cpu(cpu_ctx *ctx, float *dw, const float *dy, const float *x, int B,
                                int Ci, int Co, int H, int W);

/* Direct 3x3 convolutions for small channel counts (cpu_conv_direct.c): same contracts as the
 * three above, which call them when cpu_conv_use_direct(Ci, Co, H, W). */
int conv3x3_direct_forward(cpu_ctx *ctx, float *y, const float *x, const float *w, int B, int Ci,
                           int Co, int H, int W);
int conv3x3_direct_backward_input(cpu_ctx *ctx, float *dx, const float *dy, const float *w, int B,
                                  int Ci, int Co, int H, int W);
int conv3x3_direct_backward_weight(cpu_ctx *ctx, float *dw, const float *dy, const float *x,
                                   int B, int Ci, int Co, int H, int W);
/* 1 when this direction of this layer's convolution takes the direct path (the rule, or
 * VKEBM_CONV / cpu_conv_force); 0: im2col + BLAS. dir: one of the three below. */
enum { CPU_CONV_FORWARD = 0, CPU_CONV_BACKWARD_INPUT = 1, CPU_CONV_BACKWARD_WEIGHT = 2 };
int cpu_conv_use_direct(int dir, int Ci, int Co, int H, int W);
/* "direct-avx512", "direct-avx2", "direct-portable" or "im2col+BLAS" (static storage). */
const char *cpu_conv_path_name(int dir, int Ci, int Co, int H, int W);
/* Forces a path: "direct", "blas", or "auto"/NULL for the rule. Returns -1 on another name. */
int cpu_conv_force(const char *path);
/* The direct kernels' instruction set: "avx512", "avx2" or "portable" (the widest this CPU
 * runs, unless cpu_conv_set_isa chose a narrower one: tests run every ISA the CPU has). */
const char *cpu_conv_isa_name(void);
/* name NULL or "": the widest again. Returns -1 for an ISA this CPU or build lacks. */
int cpu_conv_set_isa(const char *name);

/* y[n] = x[n] * sigmoid(x[n]) */
void swish_forward_cpu(float *y, const float *x, size_t n);
/* dx[n] = dy[n] * (s + x*s*(1-s)), s = sigmoid(x[n]) */
void swish_backward_cpu(float *dx, const float *dy, const float *x, size_t n);

/* y[B,C,H/2,W/2] = mean of the 2x2 windows of x[B,C,H,W] (H, W even) */
void avgpool2_forward_cpu(float *y, const float *x, int B, int C, int H, int W);
/* dx[B,C,H,W] = dy[B,C,H/2,W/2] / 4 over each window */
void avgpool2_backward_cpu(float *dx, const float *dy, int B, int C, int H, int W);

/* y[b,ch,p] = x[b,ch,p] + sum_l c[b,l] G[l,ch]      x,y [B,C,HW], c [B,L], G [L,C] */
void cond_bias_forward_cpu(float *y, const float *x, const float *c, const float *G, int B, int C,
                           int HW, int L);
/* dG[l,ch] += sum_b c[b,l] sum_p dy[b,ch,p];  dc[b,l] += sum_ch G[l,ch] sum_p dy[b,ch,p]
 * (dc may be NULL). Returns -1 on allocation failure. */
int cond_bias_backward_cpu(float *dG, float *dc, const float *dy, const float *c, const float *G,
                           int B, int C, int HW, int L);
/* s[b,ch] = sum_l c[b,l] G[l,ch] + CB[ch];  y[b,ch,p] = x[b,ch,p] s[b,ch] */
int cond_scale_forward_cpu(float *y, const float *x, const float *c, const float *G,
                           const float *CB, int B, int C, int HW, int L);
/* g[b,ch] = sum_p dy x;  dx = dy s (overwrites);  dG += c^T g;  dCB += sum_b g;  dc += g G^T
 * (dG, dCB, dc may be NULL) */
int cond_scale_backward_cpu(float *dx, float *dG, float *dCB, float *dc, const float *dy,
                            const float *x, const float *c, const float *G, const float *CB, int B,
                            int C, int HW, int L);

/* e[b] = sum_ch w[ch] mean_p x[b,ch,p] + bias[0]      x [B,C,HW], e [B] */
void head_forward_cpu(float *e, const float *x, const float *w, const float *bias, int B, int C,
                      int HW);
/* dx[b,ch,p] = de[b] w[ch] / HW (overwrites); dw[ch] += sum_b de[b] mean_p x[b,ch,p];
 * dbias[0] += sum_b de[b]   (dw, dbias may be NULL) */
void head_backward_cpu(float *dx, float *dw, float *dbias, const float *de, const float *x,
                       const float *w, int B, int C, int HW);

/* v = normalize(W^T u); u' = normalize(W v); sigma = u'^T W v; w_sn = w / sigma;
 * u <- u' when update_u.  W [rows, cols]. Returns -1 on allocation failure. */
int spectral_norm_forward_cpu(float *w_sn, float *u, float *v, float *sigma, const float *w,
                              int rows, int cols, int update_u);
/* dw += (dw_sn - <dw_sn, w_sn> u v^T) / sigma */
void spectral_norm_backward_cpu(float *dw, const float *dw_sn, const float *w_sn, const float *u,
                                const float *v, const float *sigma, int rows, int cols);

/* out[0] = sum_n x[n]^2 */
void sumsq_cpu(float *out, const float *x, size_t n);

#endif
