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

/* A tensor as the backends receive it: the ref and its extent in floats, already checked by
 * backend.c (the ref lies inside its buffer; a tensor of extent 0 or an optional one left out
 * may have buf == NULL). */
typedef struct ebm_tensor {
  ebm_ref ref;
  size_t n;
} ebm_tensor;

/* An op argument as a backend receives it: tensors are ebm_tensors. */
#define EBM_ARG_IMPL(kind, a, b) EBM_ARG_IMPL_##kind(a, b)
#define EBM_ARG_IMPL_IN(name, extent) ebm_tensor name
#define EBM_ARG_IMPL_OUT(name, extent) ebm_tensor name
#define EBM_ARG_IMPL_INOUT(name, extent) ebm_tensor name
#define EBM_ARG_IMPL_OPT_IN(name, extent) ebm_tensor name
#define EBM_ARG_IMPL_OPT_OUT(name, extent) ebm_tensor name
#define EBM_ARG_IMPL_VAL(type, name) type name

/* The shape check most ops need: every listed int is >= 0. */
static inline int ebm_nonneg_(const long long *v, int n) {
  for (int i = 0; i < n; i++)
    if (v[i] < 0) return 0;
  return 1;
}
#define EBM_NONNEG(...) \
  ebm_nonneg_((const long long[]){__VA_ARGS__}, EBM_PP_NARGS(__VA_ARGS__))

/* The op ids, in list order, and their count. */
typedef enum ebm_op_id {
#define EBM_OP(name, shape_ok, ...) EBM_OP_##name,
#include "vkebm/ops.def"
#undef EBM_OP
  EBM_OP_COUNT
} ebm_op_id;

typedef struct ebm_backend_vtable {
  const char *name;
  void (*destroy)(ebm_backend *be);
  const char *(*device_name)(const ebm_backend *be);
  const char *(*describe)(const ebm_backend *be);
  uint64_t (*validation_errors)(const ebm_backend *be);
  /* optional: NULL answers "shader" */
  const char *(*conv_path)(const ebm_backend *be, int direction, int Ci, int Co, int H, int W);
  /* optional: queue submissions so far (NULL: none, the cpu backend) */
  uint64_t (*submits)(const ebm_backend *be);

  ebm_buffer *(*alloc)(ebm_backend *be, size_t nfloats);
  void (*free)(ebm_backend *be, ebm_buffer *buf);
  int (*upload)(ebm_backend *be, ebm_ref dst, const float *src, size_t n);
  int (*download)(ebm_backend *be, float *dst, ebm_ref src, size_t n);
  int (*sync)(ebm_backend *be);
  /* A call backend.c refused (reason printed): the next sync/download returns EBM_ERR. */
  void (*fail)(ebm_backend *be);

  /* one slot per op of ops.def */
#define EBM_OP(name, shape_ok, ...) \
  void (*name)(ebm_backend * be, EBM_PP_MAP(EBM_ARG_IMPL, EBM_PP_COMMA, __VA_ARGS__));
#include "vkebm/ops.def"
#undef EBM_OP
} ebm_backend_vtable;

/* Every backend implements every op as cpu_<op> (src/backend/cpu*.c) or vk_<op>
 * (src/backend/vulkan_*.c); the vtables are built from the list, so a missing one does not
 * compile. */
#define EBM_OP(name, shape_ok, ...)                                                          \
  void cpu_##name(ebm_backend *be, EBM_PP_MAP(EBM_ARG_IMPL, EBM_PP_COMMA, __VA_ARGS__));     \
  void vk_##name(ebm_backend *be, EBM_PP_MAP(EBM_ARG_IMPL, EBM_PP_COMMA, __VA_ARGS__));
#include "vkebm/ops.def"
#undef EBM_OP
#define EBM_VTABLE_OP(name, shape_ok, ...) .name = EBM_PP_CAT(EBM_VTABLE_PREFIX, name),

/* Every backend struct starts with this header, so backend.c can reach the vtable. */
struct ebm_backend {
  const ebm_backend_vtable *vt;
  ebm_backend_kind kind;
  uint64_t uploads, downloads, syncs; /* counted by backend.c (ebm_backend_transfer_stats) */
};

/* Constructors (src/backend/cpu.c, src/backend/vulkan.c). Same contract as ebm_backend_create. */
int ebm_cpu_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err, size_t errlen);
int ebm_vulkan_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err, size_t errlen);
/* 1 when a Vulkan device that is a real GPU (not a CPU implementation such as lavapipe) exists. */
int ebm_vulkan_hardware_gpu_present(void);

/* CPU twins that other code calls on plain host arrays (argument meaning as in ops.def):
 * the sampler and composition ops (src/backend/cpu_sampler.c) and Adam (src/backend/cpu_optim.c, which also
 * packs the push constants adam_step.comp reads, so both see the same rounded constants). */
void quadratic_energy_cpu(float *e, const float *x, const float *mu, const float *prec, int n,
                          int N, int rows_per_group);
void quadratic_energy_backward_cpu(float *dx, const float *dE, const float *x, const float *mu,
                                   const float *prec, int n, int N, int rows_per_group);
void langevin_update_cpu(float *x, const float *grad, int B, int N, uint32_t seed, uint32_t step,
                         float step_size, float noise_std, float clip_lo, float clip_hi);
void langevin_update_at_cpu(float *x, const float *grad, int B, int N, uint32_t chain0,
                            uint32_t seed, uint32_t step, float step_size, float noise_std,
                            float clip_lo, float clip_hi);
void mala_propose_cpu(float *xp, const float *x, const float *grad, const float *tau, int B,
                      int N, uint32_t seed, uint32_t step);
void mala_log_q_cpu(float *out, const float *to, const float *from, const float *grad_from,
                    const float *tau, int B, int N);
void chain_select_cpu(float *x, const float *src, const float *mask, int B, int N);
void softmin_forward_cpu(float *v, const float *e, int K, int B, float T);
void softmin_backward_cpu(float *de, const float *dv, const float *e, int K, int B, float T,
                          float alpha);
void adam_push_from_params(const ebm_adam_params *hp, size_t n, void *push /* vkebm_pc_adam_step */);
/* Adam on elements [begin, end) of the arrays (so threads can share a step). */
void adam_step_cpu_range(float *params, const float *grads, float *m, float *v, size_t begin,
                         size_t end, const ebm_adam_params *hp);
void adam_step_cpu(float *params, const float *grads, float *m, float *v, size_t n,
                   const ebm_adam_params *hp);

/* Every ebm_buffer starts with its size, so ebm_buffer_size works for both backends. */
struct ebm_buffer {
  size_t nfloats;
};

#endif
