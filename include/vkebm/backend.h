/* backend.h: the one interface behind which the `cpu` and `vulkan` backends hide.
 *
 * Owns: buffers (backend-owned float storage), transfers, and the tensor operations the energy
 * network, the samplers and the trainer are built from. Callers never learn which backend runs:
 * the network (src/net) calls these ops in order, exactly like llm.c's layers, and the same code
 * runs on either backend.
 *
 * Conventions (every op):
 *   - Tensors are float32, addressed as (buffer, offset in floats): ebm_ref.
 *   - Activations are NCHW: [B, C, H, W], contiguous. Conv weights are OIHW: [Co, Ci, 3, 3].
 *     Labels are [B, L]. Label-linear maps are [L, C].
 *   - Ops that write activations or input gradients OVERWRITE their output.
 *     Ops that write parameter gradients ACCUMULATE (+=), as in llm.c.
 *   - An optional output is skipped when its ref has buf == NULL (EBM_NOREF).
 *   - Ops are queued in order; the vulkan backend records them into a command buffer with a
 *     barrier between dependent dispatches and submits on ebm_sync()/ebm_download(). The cpu
 *     backend runs each op at once. Results are deterministic: fixed-order reductions only.
 *   - Each op has a CPU twin: src/backend/cpu_ops.c implements it in plain C (BLAS for convs);
 *     shaders/<op>.comp implements it for Vulkan; tests/test_vk_ops.c compares them.
 */
#ifndef VKEBM_BACKEND_H
#define VKEBM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum ebm_backend_kind {
  EBM_BACKEND_AUTO = 0, /* a hardware Vulkan GPU if there is one, else cpu */
  EBM_BACKEND_CPU = 1,
  EBM_BACKEND_VULKAN = 2,
} ebm_backend_kind;

typedef struct ebm_buffer ebm_buffer; /* backend-owned; opaque */

typedef struct ebm_ref {
  ebm_buffer *buf;
  size_t off; /* in floats */
} ebm_ref;

#define EBM_NOREF ((ebm_ref){0, 0})

static inline ebm_ref ebm_at(ebm_ref r, size_t floats) {
  r.off += floats;
  return r;
}

typedef struct ebm_backend_options {
  ebm_backend_kind kind;
  int device_index;   /* vulkan: -1 = choose (env VKEBM_DEVICE overrides), else that index */
  int validation;     /* vulkan: enable the validation layer and count its messages */
  int threads;        /* cpu: worker threads, 0 = all cores */
  int verbose;        /* print the chosen backend/device on stderr */
} ebm_backend_options;

typedef struct ebm_backend ebm_backend;

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* Returns 0 on success. On failure returns a negative code and writes a one-line reason into
 * err. EBM_ERR_NO_DEVICE means no usable Vulkan device (the CLI exits 77 on it). */
enum { EBM_OK = 0, EBM_ERR = -1, EBM_ERR_NO_DEVICE = -2, EBM_ERR_OOM = -3 };
int ebm_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err, size_t errlen);
void ebm_backend_destroy(ebm_backend *be);

ebm_backend_kind ebm_backend_kind_of(const ebm_backend *be);
const char *ebm_backend_name(const ebm_backend *be);        /* "cpu" or "vulkan" */
const char *ebm_backend_device_name(const ebm_backend *be); /* e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" */
const char *ebm_backend_describe(const ebm_backend *be);    /* one line: kernel path, threads, ... */
/* Which implementation runs one direction of a 3x3 convolution of this shape (for `vkebm
 * devices`): the cpu backend answers "direct-avx512", "direct-avx2", "direct-portable" or
 * "im2col+BLAS" (its rule, src/backend/cpu_conv_direct.c); vulkan answers "shader". */
enum { EBM_CONV_FORWARD = 0, EBM_CONV_BACKWARD_INPUT = 1, EBM_CONV_BACKWARD_WEIGHT = 2 };
const char *ebm_backend_conv_path(const ebm_backend *be, int direction, int Ci, int Co, int H,
                                  int W);
/* Vulkan validation messages seen so far (0 on cpu). Tests fail when this is non-zero. */
uint64_t ebm_backend_validation_errors(const ebm_backend *be);

/* ---- buffers and transfers ---------------------------------------------------------------- */

ebm_buffer *ebm_alloc(ebm_backend *be, size_t nfloats); /* zero-filled; NULL on failure */
void ebm_free(ebm_backend *be, ebm_buffer *buf);
size_t ebm_buffer_size(const ebm_buffer *buf); /* floats */
ebm_ref ebm_ref_of(ebm_buffer *buf);

int ebm_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n);
int ebm_download(ebm_backend *be, float *dst, ebm_ref src, size_t n); /* waits for queued work */
int ebm_sync(ebm_backend *be);                                         /* waits for queued work */

/* ---- ops (shape comments: [dims]) --------------------------------------------------------- */

/* y[n] = v */
void ebm_fill(ebm_backend *be, ebm_ref y, float v, size_t n);
/* y[n] = a[n] + b[n] */
void ebm_add(ebm_backend *be, ebm_ref y, ebm_ref a, ebm_ref b, size_t n);
/* y[n] += alpha * x[n] */
void ebm_axpy(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n);
/* y[n] = alpha * x[n] */
void ebm_scale(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n);

/* 3x3 convolution, stride 1, zero padding 1, no bias.
 *   y[B,Co,H,W] = sum_{ci,kh,kw} w[Co,ci,kh,kw] * x[B,ci,h+kh-1,w+kw-1] */
void ebm_conv3x3_forward(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref w,
                         int B, int Ci, int Co, int H, int W);
/* dx[B,Ci,H,W] = conv_transpose(dy[B,Co,H,W], w[Co,Ci,3,3])   (overwrites dx) */
void ebm_conv3x3_backward_input(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref w,
                                int B, int Ci, int Co, int H, int W);
/* dw[Co,Ci,3,3] += sum_{b,h,w} dy[b,co,h,w] * x[b,ci,h+kh-1,w+kw-1] */
void ebm_conv3x3_backward_weight(ebm_backend *be, ebm_ref dw, ebm_ref dy, ebm_ref x,
                                 int B, int Ci, int Co, int H, int W);

/* swish(x) = x * sigmoid(x).  y[n] = swish(x[n]) */
void ebm_swish_forward(ebm_backend *be, ebm_ref y, ebm_ref x, size_t n);
/* dx[n] = dy[n] * (s + x*s*(1-s)),  s = sigmoid(x[n]) */
void ebm_swish_backward(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref x, size_t n);

/* 2x2 average pooling, H and W even.  y[B,C,H/2,W/2] = mean of the 2x2 window of x[B,C,H,W] */
void ebm_avgpool2_forward(ebm_backend *be, ebm_ref y, ebm_ref x, int B, int C, int H, int W);
/* dx[B,C,H,W] = dy[B,C,H/2,W/2] / 4 spread over each window (H, W: the input's size) */
void ebm_avgpool2_backward(ebm_backend *be, ebm_ref dx, ebm_ref dy, int B, int C, int H, int W);

/* Label-conditioned channel bias (the paper's input bias, linear in the label):
 *   y[b,ch,p] = x[b,ch,p] + sum_l c[b,l] * G[l,ch]      x,y: [B,C,HW]  c: [B,L]  G: [L,C]
 * Backward: dx = dy (the caller reuses dy), so only parameter/label gradients:
 *   dG[l,ch] += sum_b c[b,l] * sum_p dy[b,ch,p]
 *   dc[b,l]  += sum_ch G[l,ch] * sum_p dy[b,ch,p]              (dG and dc each optional) */
void ebm_cond_bias_forward(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G,
                           int B, int C, int HW, int L);
void ebm_cond_bias_backward(ebm_backend *be, ebm_ref dG, ebm_ref dc, ebm_ref dy, ebm_ref c,
                            ebm_ref G, int B, int C, int HW, int L);

/* Label-conditioned channel scale (the paper's output gain):
 *   s[b,ch] = sum_l c[b,l] * G[l,ch] + CB[ch];   y[b,ch,p] = x[b,ch,p] * s[b,ch]
 * Backward, with g[b,ch] = sum_p dy[b,ch,p] * x[b,ch,p]:
 *   dx[b,ch,p] = dy[b,ch,p] * s[b,ch]   (overwrites)
 *   dG[l,ch] += sum_b c[b,l] g[b,ch];  dCB[ch] += sum_b g[b,ch];  dc[b,l] += sum_ch G[l,ch] g[b,ch]
 * dG, dCB, dc optional. */
void ebm_cond_scale_forward(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G,
                            ebm_ref CB, int B, int C, int HW, int L);
void ebm_cond_scale_backward(ebm_backend *be, ebm_ref dx, ebm_ref dG, ebm_ref dCB, ebm_ref dc,
                             ebm_ref dy, ebm_ref x, ebm_ref c, ebm_ref G, ebm_ref CB,
                             int B, int C, int HW, int L);

/* Head: global mean pool then linear to a scalar.
 *   e[b] = sum_ch w[ch] * (1/HW) sum_p x[b,ch,p] + bias[0]          x: [B,C,HW]  e: [B]
 * Backward: dx[b,ch,p] = de[b] * w[ch] / HW (overwrites);
 *   dw[ch] += sum_b de[b] * mean_p x[b,ch,p];  dbias[0] += sum_b de[b]   (dw, dbias optional) */
void ebm_head_forward(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref w, ebm_ref bias,
                      int B, int C, int HW);
void ebm_head_backward(ebm_backend *be, ebm_ref dx, ebm_ref dw, ebm_ref dbias, ebm_ref de,
                       ebm_ref x, ebm_ref w, int B, int C, int HW);

/* Spectral normalisation of w viewed as a matrix [rows, cols] (conv: rows = Co, cols = Ci*9),
 * with one power iteration from the persistent vector u[rows]:
 *   v = normalize(W^T u);  u' = normalize(W v);  sigma = u'^T W v;  w_sn = w / sigma
 * Writes w_sn[rows*cols], v[cols], sigma[1]; writes u' back into u when update_u != 0
 * (training), leaves u unchanged otherwise (sampling: the weights are fixed).
 * normalize(a) = a / (||a|| + 1e-12). */
void ebm_spectral_norm_forward(ebm_backend *be, ebm_ref w_sn, ebm_ref u, ebm_ref v,
                               ebm_ref sigma, ebm_ref w, int rows, int cols, int update_u);
/* Gradient through w_sn = w / sigma with u, v held constant (as in PyTorch's spectral_norm):
 *   dw += (dw_sn - <dw_sn, w_sn> * u v^T) / sigma */
void ebm_spectral_norm_backward(ebm_backend *be, ebm_ref dw, ebm_ref dw_sn, ebm_ref w_sn,
                                ebm_ref u, ebm_ref v, ebm_ref sigma, int rows, int cols);

/* Sum of squares, for gradient norms: out[0] = sum_n x[n]^2 (fixed-order reduction). */
void ebm_sumsq(ebm_backend *be, ebm_ref out, ebm_ref x, size_t n);

/* ---- scene ops (include/vkebm/scene.h; cpu: src/backend/cpu_scene.c, vulkan:
 *      src/backend/vulkan_scene.c + shaders/scene_render.comp) ---------------------------- */

/* Renders n scenes into images[n, 3, size, size] (CHW, [0, 1]) from
 * scenes[n, VKEBM_SCENE_FLOATS] (packed by scene_pack / scene_sample_packed); size in 8..256.
 * So a training step can draw fresh labelled data straight into a device buffer. */
void ebm_scene_render(ebm_backend *be, ebm_ref images, ebm_ref scenes, int n, int size);

/* ---- sampler ops (composition and Langevin; src/backend/cpu_sampler.c is the CPU twin,
 *      src/backend/vulkan_sampler.c + shaders/langevin_*.comp the Vulkan side) -------------- */

/* Diagonal quadratic energy (the analytic concepts), n rows in G groups of R rows (n = G*R),
 * row r using group g = r / R's target and precision:
 *   e[r] = 0.5 * sum_i prec[g,i] * (x[r,i] - mu[g,i])^2      x: [n,N]  mu, prec: [G,N]  e: [n]
 * The sum over i is sequential (fixed order). */
void ebm_quadratic_energy(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref mu, ebm_ref prec,
                          int n, int N, int rows_per_group);
/* dx[r,i] = dE[r] * prec[g,i] * (x[r,i] - mu[g,i])   (overwrites dx)          dE: [n] */
void ebm_quadratic_energy_backward(ebm_backend *be, ebm_ref dx, ebm_ref dE, ebm_ref x, ebm_ref mu,
                                   ebm_ref prec, int n, int N, int rows_per_group);

/* One Langevin step on B chains of N values, noise from the counter RNG of shared.h:
 *   x[b,i] = clip(x[b,i] - step_size * grad[b,i] + noise_std * normal(seed, step, b, i), lo, hi)
 * grad optional (EBM_NOREF: noise only); clip only when clip_lo < clip_hi. */
void ebm_langevin_update(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N, uint32_t seed,
                         uint32_t step, float step_size, float noise_std, float clip_lo,
                         float clip_hi);
/* The same step for chains chain0 .. chain0 + B - 1 of a larger batch: the noise of row b is
 * normal(seed, step, chain0 + b, i), so B rows here draw what rows chain0.. of one big call
 * would (data-parallel training: each rank's chains are a slice of the global batch). */
void ebm_langevin_update_at(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N,
                            uint32_t chain0, uint32_t seed, uint32_t step, float step_size,
                            float noise_std, float clip_lo, float clip_hi);
/* MALA proposal with per-chain step tau[B]:
 *   xp[b,i] = x[b,i] - tau[b] * grad[b,i] + sqrt(2 tau[b]) * normal(seed, step, b, i) */
void ebm_mala_propose(ebm_backend *be, ebm_ref xp, ebm_ref x, ebm_ref grad, ebm_ref tau, int B,
                      int N, uint32_t seed, uint32_t step);
/* Log proposal density (up to a constant) of moving from `from` to `to`:
 *   out[b] = -sum_i (to[b,i] - from[b,i] + tau[b] * grad_from[b,i])^2 / (4 tau[b])   (fixed order) */
void ebm_mala_log_q(ebm_backend *be, ebm_ref out, ebm_ref to, ebm_ref from, ebm_ref grad_from,
                    ebm_ref tau, int B, int N);
/* Per-chain select: x[b,:] = src[b,:] where mask[b] > 0.5, else unchanged.   mask: [B] */
void ebm_chain_select(ebm_backend *be, ebm_ref x, ebm_ref src, ebm_ref mask, int B, int N);

/* ---- optimizer ops (src/backend/cpu_optim.c is the CPU twin, src/backend/vulkan_optim.c +
 *      shaders/adam_step.comp the Vulkan side) ------------------------------------------- */

/* Adam hyperparameters for one step. t is the step number after this update (1, 2, ...). */
typedef struct ebm_adam_params {
  float lr, beta1, beta2, eps;
  int64_t t;
  int clip;          /* 1: the paper's per-element clip (below) */
  float grad_scale;  /* every gradient is multiplied by this first (1, or a norm-clip factor) */
} ebm_adam_params;

/* One Adam step on n parameters, in place (params, m, v: [n]; grads: [n], read only):
 *   g  = grad_scale * grads[i]
 *   g  = clamp(g, -(3 sqrt(vh_prev) + 0.1), +(3 sqrt(vh_prev) + 0.1))   when clip;
 *        vh_prev = v[i] / (1 - beta2^(t-1)) (the bias-corrected second moment BEFORE this
 *        step; 0 at t = 1, so the first step's elements are clipped to +-0.1, as in the
 *        paper's code which bounds each element by the running second moment)
 *   m  = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
 *   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) */
void ebm_adam_step(ebm_backend *be, ebm_ref params, ebm_ref grads, ebm_ref m, ebm_ref v, size_t n,
                   const ebm_adam_params *hp);

#endif /* VKEBM_BACKEND_H */
