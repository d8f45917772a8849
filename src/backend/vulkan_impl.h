/* vulkan_impl.h: private to src/backend: how an op file reaches the Vulkan backend.
 *
 * Every Vulkan op is: one or more dispatches of a kernel named in vulkan_kernels.def, whose
 * bindings are tensors (ebm_ref + length in floats) in binding order, with a push-constant struct
 * from include/vkebm/push*.h. vkb_run records the dispatch into the backend's command buffer
 * (with a barrier before it, so dependent dispatches are ordered) and checks the binding count
 * and push size against the kernel table. Op files (vulkan_ops.c, vulkan_sampler.c, ...) call
 * only this; they never touch VkBuffer handles.
 */
#ifndef VKEBM_VULKAN_IMPL_H
#define VKEBM_VULKAN_IMPL_H

#include <stdint.h>

#include "backend_impl.h"

typedef struct vkb_arg {
  ebm_ref ref;
  size_t n; /* floats bound from ref (>= 1) */
} vkb_arg;

#define VKB_ARG(r, count) ((vkb_arg){(r), (count)})

/* The kernel table's ids (from vulkan_kernels.def: KERNEL(name, nbindings, push_type)). */
typedef enum vkb_kernel_id {
#define KERNEL(name, nbindings, push_type) VKB_K_##name,
#include "vulkan_kernels.def"
#undef KERNEL
  VKB_K_COUNT
} vkb_kernel_id;

void vkb_run(ebm_backend *be, vkb_kernel_id k, const vkb_arg *args, int nargs, const void *push,
             uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz);

/* Added: vkb_run that also binds the tensors of texel_mask (bit i = args[i]; at most 2) as
 * R32F uniform texel buffers at bindings 8, 9 in order (see vkx_kernel_set_texel); use it only
 * when vkb_texel_ok says every such tensor fits (else vkb_run, the shader's SSBO path). */
void vkb_run_texel(ebm_backend *be, vkb_kernel_id k, uint32_t texel_mask, const vkb_arg *args,
                   int nargs, const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                   uint32_t gz);
int vkb_texel_ok(ebm_backend *be, size_t nfloats);

/* Added: the most floats one binding may cover (maxStorageBufferRange less the alignment
 * remainder; env VKEBM_MAX_BINDING_FLOATS lowers it so tests can exercise the chunked paths).
 * Ops split larger tensors (elementwise ops by range, convs by batch). */
size_t vkb_max_binding_floats(ebm_backend *be);
/* Added: marks the recorded work failed (after printing why); the next sync/download returns
 * an error. */
void vkb_fail(ebm_backend *be);

/* Splits n work items into a 2D grid of groups of `local` items (x up to 65535 groups),
 * for shaders that compute i = gl_GlobalInvocationID.x + gl_NumWorkGroups.x * local * gid.y. */
void vkb_grid_1d(size_t n, uint32_t local, uint32_t *gx, uint32_t *gy);

/* Added: a backend-owned scratch tensor of at least nfloats for an op's intermediate sums
 * (valid until the next vkb_scratch call; growing it first waits for recorded work). */
ebm_ref vkb_scratch(ebm_backend *be, size_t nfloats);

/* Added: the non-op part of the vtable (vulkan.c); vulkan_ops.c assembles vkb_vtable. */
void vkb_impl_destroy(ebm_backend *be);
const char *vkb_impl_device_name(const ebm_backend *be);
const char *vkb_impl_describe(const ebm_backend *be);
uint64_t vkb_impl_validation_errors(const ebm_backend *be);
ebm_buffer *vkb_impl_alloc(ebm_backend *be, size_t nfloats);
void vkb_impl_free(ebm_backend *be, ebm_buffer *buf);
size_t vkb_impl_buffer_size(const ebm_buffer *buf);
int vkb_impl_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n);
int vkb_impl_download(ebm_backend *be, float *dst, ebm_ref src, size_t n);
int vkb_impl_sync(ebm_backend *be);
extern const ebm_backend_vtable vkb_vtable;
 
/* Sampler ops (src/backend/vulkan_sampler.c), referenced by the vtable in vulkan_ops.c;
 * arguments as in include/vkebm/backend.h. */
void vkb_quadratic_energy(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref mu, ebm_ref prec, int n,
                          int N, int rows_per_group);
void vkb_quadratic_energy_backward(ebm_backend *be, ebm_ref dx, ebm_ref dE, ebm_ref x, ebm_ref mu,
                                   ebm_ref prec, int n, int N, int rows_per_group);
void vkb_langevin_update(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N, uint32_t chain0,
                         uint32_t seed,
                         uint32_t step, float step_size, float noise_std, float clip_lo,
                         float clip_hi);
void vkb_mala_propose(ebm_backend *be, ebm_ref xp, ebm_ref x, ebm_ref grad, ebm_ref tau, int B,
                      int N, uint32_t seed, uint32_t step);
void vkb_mala_log_q(ebm_backend *be, ebm_ref out, ebm_ref to, ebm_ref from, ebm_ref grad_from,
                    ebm_ref tau, int B, int N);
void vkb_chain_select(ebm_backend *be, ebm_ref x, ebm_ref src, ebm_ref mask, int B, int N);

#endif
