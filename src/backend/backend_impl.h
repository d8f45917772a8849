/* backend_impl.h: what a backend implements (private to src/backend).
 *
 * backend.c forwards every public ebm_* call of include/vkebm/backend.h to this vtable. A
 * backend fills one static const ebm_backend_vtable and a create function; buffers are the
 * backend's own struct behind the opaque ebm_buffer. Argument order and meaning are exactly the
 * public functions' (see backend.h for shapes and formulas).
 */
#ifndef VKEBM_BACKEND_IMPL_H
#define VKEBM_BACKEND_IMPL_H

#include "vkebm/backend.h"

typedef struct ebm_backend_vtable {
  const char *name;
  void (*destroy)(ebm_backend *be);
  const char *(*device_name)(const ebm_backend *be);
  const char *(*describe)(const ebm_backend *be);
  uint64_t (*validation_errors)(const ebm_backend *be);
  /* optional: NULL answers "shader" */
  const char *(*conv_path)(const ebm_backend *be, int direction, int Ci, int Co, int H, int W);

  ebm_buffer *(*alloc)(ebm_backend *be, size_t nfloats);
  void (*free)(ebm_backend *be, ebm_buffer *buf);
  size_t (*buffer_size)(const ebm_buffer *buf);
  int (*upload)(ebm_backend *be, ebm_ref dst, const float *src, size_t n);
  int (*download)(ebm_backend *be, float *dst, ebm_ref src, size_t n);
  int (*sync)(ebm_backend *be);

  void (*fill)(ebm_backend *be, ebm_ref y, float v, size_t n);
  void (*add)(ebm_backend *be, ebm_ref y, ebm_ref a, ebm_ref b, size_t n);
  void (*axpy)(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n);
  void (*scale)(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n);
  void (*conv3x3_forward)(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref w, int B, int Ci, int Co, int H, int W);
  void (*conv3x3_backward_input)(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref w, int B, int Ci, int Co, int H, int W);
  void (*conv3x3_backward_weight)(ebm_backend *be, ebm_ref dw, ebm_ref dy, ebm_ref x, int B, int Ci, int Co, int H, int W);
  void (*swish_forward)(ebm_backend *be, ebm_ref y, ebm_ref x, size_t n);
  void (*swish_backward)(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref x, size_t n);
  void (*avgpool2_forward)(ebm_backend *be, ebm_ref y, ebm_ref x, int B, int C, int H, int W);
  void (*avgpool2_backward)(ebm_backend *be, ebm_ref dx, ebm_ref dy, int B, int C, int H, int W);
  void (*cond_bias_forward)(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G, int B, int C, int HW, int L);
  void (*cond_bias_backward)(ebm_backend *be, ebm_ref dG, ebm_ref dc, ebm_ref dy, ebm_ref c, ebm_ref G, int B, int C, int HW, int L);
  void (*cond_scale_forward)(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G, ebm_ref CB, int B, int C, int HW, int L);
  void (*cond_scale_backward)(ebm_backend *be, ebm_ref dx, ebm_ref dG, ebm_ref dCB, ebm_ref dc, ebm_ref dy, ebm_ref x, ebm_ref c, ebm_ref G, ebm_ref CB, int B, int C, int HW, int L);
  void (*head_forward)(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref w, ebm_ref bias, int B, int C, int HW);
  void (*head_backward)(ebm_backend *be, ebm_ref dx, ebm_ref dw, ebm_ref dbias, ebm_ref de, ebm_ref x, ebm_ref w, int B, int C, int HW);
  void (*spectral_norm_forward)(ebm_backend *be, ebm_ref w_sn, ebm_ref u, ebm_ref v, ebm_ref sigma, ebm_ref w, int rows, int cols, int update_u);
  void (*spectral_norm_backward)(ebm_backend *be, ebm_ref dw, ebm_ref dw_sn, ebm_ref w_sn, ebm_ref u, ebm_ref v, ebm_ref sigma, int rows, int cols);
  void (*sumsq)(ebm_backend *be, ebm_ref out, ebm_ref x, size_t n);
  /* scene ops */
  void (*scene_render)(ebm_backend *be, ebm_ref images, ebm_ref scenes, int n, int size);

  /* sampler ops (src/backend/cpu_sampler.c, src/backend/vulkan_sampler.c) */
  void (*quadratic_energy)(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref mu, ebm_ref prec, int n, int N, int rows_per_group);
  void (*quadratic_energy_backward)(ebm_backend *be, ebm_ref dx, ebm_ref dE, ebm_ref x, ebm_ref mu, ebm_ref prec, int n, int N, int rows_per_group);
  void (*langevin_update)(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N, uint32_t chain0, uint32_t seed, uint32_t step, float step_size, float noise_std, float clip_lo, float clip_hi);
  void (*mala_propose)(ebm_backend *be, ebm_ref xp, ebm_ref x, ebm_ref grad, ebm_ref tau, int B, int N, uint32_t seed, uint32_t step);
  void (*mala_log_q)(ebm_backend *be, ebm_ref out, ebm_ref to, ebm_ref from, ebm_ref grad_from, ebm_ref tau, int B, int N);
  void (*chain_select)(ebm_backend *be, ebm_ref x, ebm_ref src, ebm_ref mask, int B, int N);
  /* optimizer ops (src/backend/cpu_optim.c, src/backend/vulkan_optim.c) */
  void (*adam_step)(ebm_backend *be, ebm_ref params, ebm_ref grads, ebm_ref m, ebm_ref v, size_t n, const ebm_adam_params *hp);
} ebm_backend_vtable;

/* Every backend struct starts with this header, so backend.c can reach the vtable. */
struct ebm_backend {
  const ebm_backend_vtable *vt;
  ebm_backend_kind kind;
};

/* Constructors (src/backend/cpu.c, src/backend/vulkan.c). Same contract as ebm_backend_create. */
int ebm_cpu_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err, size_t errlen);
int ebm_vulkan_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err, size_t errlen);
/* 1 when a Vulkan device that is a real GPU (not a CPU implementation such as lavapipe) exists. */
int ebm_vulkan_hardware_gpu_present(void);

/* Scene ops. cpu_scene_render (src/backend/cpu_scene.c) renders through the host with
 * ebm_download/ebm_upload, so it serves any backend whose buffers are host memory;
 * vulkan_scene_render (src/backend/vulkan_scene.c) dispatches shaders/scene_render.comp. Both
 * are only called with n > 0 and size in SCENE_MIN/MAX_RENDER_SIZE (ebm_scene_render checks). */
void cpu_scene_render(ebm_backend *be, ebm_ref images, ebm_ref scenes, int n, int size);
void vulkan_scene_render(ebm_backend *be, ebm_ref images, ebm_ref scenes, int n, int size);

/* CPU twins of the sampler ops on plain host arrays (src/backend/cpu_sampler.c), shared by the
 * cpu backend's vtable entries and by tests; argument meaning as in backend.h. */
void ebm_quadratic_energy_cpu(float *e, const float *x, const float *mu, const float *prec, int n,
                              int N, int rows_per_group);
void ebm_quadratic_energy_backward_cpu(float *dx, const float *dE, const float *x,
                                       const float *mu, const float *prec, int n, int N,
                                       int rows_per_group);
void ebm_langevin_update_cpu(float *x, const float *grad, int B, int N, uint32_t chain0, uint32_t seed,
                             uint32_t step, float step_size, float noise_std, float clip_lo,
                             float clip_hi);
void ebm_mala_propose_cpu(float *xp, const float *x, const float *grad, const float *tau, int B,
                          int N, uint32_t seed, uint32_t step);
void ebm_mala_log_q_cpu(float *out, const float *to, const float *from, const float *grad_from,
                        const float *tau, int B, int N);
void ebm_chain_select_cpu(float *x, const float *src, const float *mask, int B, int N);

/* Optimizer ops. adam_step_cpu is the plain-C twin on host arrays (tests call it directly);
 * cpu_adam_step is the cpu backend's entry (through the host, as cpu_scene_render);
 * vulkan_adam_step dispatches shaders/adam_step.comp. */
void adam_push_from_params(const ebm_adam_params *hp, size_t n, void *push /* vkebm_pc_adam_step */);
void adam_step_cpu(float *params, const float *grads, float *m, float *v, size_t n,
                   const ebm_adam_params *hp);
void cpu_adam_step(ebm_backend *be, ebm_ref params, ebm_ref grads, ebm_ref m, ebm_ref v, size_t n,
                   const ebm_adam_params *hp);
void vulkan_adam_step(ebm_backend *be, ebm_ref params, ebm_ref grads, ebm_ref m, ebm_ref v,
                      size_t n, const ebm_adam_params *hp);

/* Every ebm_buffer starts with its size, so ebm_buffer_size works for both backends. */
struct ebm_buffer {
  size_t nfloats;
};

#endif
