/* vkx.h: the Vulkan compute layer. Knows nothing of energy models: it owns an instance, one
 * device and its compute queue, buffers, compute kernels built from embedded SPIR-V, command
 * recording with barriers, submission, and validation-message counting.
 *
 * Lifecycle (vkcube style): vkx_create -> vkx_buffer_create / vkx_kernel_create -> record
 * (vkx_begin, vkx_dispatch..., vkx_barrier) -> vkx_submit_wait -> ... -> destroy in reverse.
 * Every VkResult is checked; a failure prints the call, the result's name, file and line.
 *
 * Descriptors: every kernel uses one descriptor-set layout of VKX_MAX_BINDINGS storage buffers
 * (unused bindings are bound to a dummy buffer); each dispatch allocates its set from a pool
 * that is reset after the submission completes. Buffers are bound with explicit ranges (never
 * VK_WHOLE_SIZE), each range at most maxStorageBufferRange.
 */
#ifndef VKEBM_VKX_H
#define VKEBM_VKX_H

#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#define VKX_MAX_BINDINGS 8
#define VKX_MAX_TEXEL 2 /* added: uniform texel-buffer bindings 8, 9 (see vkx_kernel_set_texel) */

typedef struct vkx_context vkx_context;

typedef struct vkx_options {
  int device_index;   /* -1: choose (discrete > integrated > virtual > cpu); env VKEBM_DEVICE overrides */
  int validation;     /* 1: enable VK_LAYER_KHRONOS_validation; also on when VKEBM_VALIDATION=1 */
  int verbose;        /* print the chosen device on stderr */
} vkx_options;

typedef struct vkx_device_info {
  char name[256];
  VkPhysicalDeviceType type;
  uint32_t api_version;
  uint32_t vendor_id, device_id;
  uint32_t subgroup_size;
  uint32_t max_workgroup_invocations;
  uint32_t max_workgroup_size[3];
  uint32_t max_shared_memory;
  uint32_t max_push_constants;
  uint64_t max_storage_buffer_range;
  uint64_t device_local_bytes;
  int has_compute_queue;
  /* added: */
  char driver_name[256];    /* VkPhysicalDeviceDriverProperties (Vulkan 1.2), "" if unknown */
  char driver_info[256];
  uint32_t min_storage_offset_alignment;
} vkx_device_info;

/* Lists physical devices (no logical device is created). Returns the count, -1 if Vulkan has no
 * loader or instance; fills up to max entries. */
int vkx_enumerate(vkx_device_info *infos, int max);
const char *vkx_device_type_name(VkPhysicalDeviceType t);

/* Returns 0, or -2 when no usable device exists, -1 on any other failure (err says why). */
int vkx_create(vkx_context **out, const vkx_options *opt, char *err, size_t errlen);
void vkx_destroy(vkx_context *ctx);
const vkx_device_info *vkx_info(const vkx_context *ctx);
uint64_t vkx_validation_errors(const vkx_context *ctx);
/* Command buffers submitted (and waited on) so far. */
uint64_t vkx_submit_count(const vkx_context *ctx);

/* Buffers: host-visible + coherent and persistently mapped when the device offers such memory
 * as device-local (lavapipe, integrated, resizable BAR); else device-local with staging copies. */
typedef struct vkx_buffer {
  VkBuffer buffer;
  VkDeviceMemory memory;
  VkDeviceSize size;
  void *mapped; /* NULL when the buffer is not host visible */
} vkx_buffer;

int vkx_buffer_create(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize size);
void vkx_buffer_destroy(vkx_context *ctx, vkx_buffer *buf);
/* Synchronous copies (wait for queued work first). */
int vkx_buffer_write(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize offset, const void *src, VkDeviceSize n);
int vkx_buffer_read(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize offset, void *dst, VkDeviceSize n);

/* Kernels: SPIR-V from the embedded table by name (or VKEBM_SHADER_DIR/NAME.spv when that
 * developer override is set), with the number of bindings and the push-constant size it expects;
 * vkx_dispatch checks both. Specialisation constant 0..2 = local size x, y, z when given. */
typedef struct vkx_kernel vkx_kernel;
vkx_kernel *vkx_kernel_create(vkx_context *ctx, const char *name, uint32_t nbindings, uint32_t push_size);
void vkx_kernel_destroy(vkx_context *ctx, vkx_kernel *k);

typedef struct vkx_binding {
  const vkx_buffer *buf;
  VkDeviceSize offset; /* bytes; multiple of minStorageBufferOffsetAlignment */
  VkDeviceSize range;  /* bytes */
} vkx_binding;

/* Recording: work is appended to the context's current command buffer (begun on demand);
 * vkx_submit_wait submits it, waits on a fence and resets the descriptor pool. */
int vkx_dispatch(vkx_context *ctx, vkx_kernel *k, const vkx_binding *bindings, uint32_t nbindings,
                 const void *push, uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz);
void vkx_barrier(vkx_context *ctx); /* compute->compute + transfer memory barrier */
int vkx_submit_wait(vkx_context *ctx);
int vkx_pending(const vkx_context *ctx); /* 1 when recorded work has not been submitted */
VkDeviceSize vkx_offset_alignment(const vkx_context *ctx);

/* Extensions to the first contract (used by the vulkan backend and `vkebm devices`). */
const char *vkx_result_name(VkResult r);
/* The index vkx_create would choose among enumerated devices when device_index is -1. */
int vkx_choose_device(const vkx_device_info *infos, int n);
/* Texel views: the storage bindings in mask (at most VKX_MAX_TEXEL) are ALSO bound, in binding
 * order, as R32_SFLOAT uniform texel buffers at bindings VKX_MAX_BINDINGS + j (GLSL
 * `layout(binding = 8) uniform samplerBuffer`), with the same offset and range. Texel fetches
 * are 3-5x faster than SSBO loads on lavapipe. vkx_texel_ok says whether a range of that many
 * bytes fits maxTexelBufferElements (spec minimum 65536): callers fall back to SSBO loads. */
int vkx_kernel_set_texel(vkx_kernel *k, uint32_t mask);
int vkx_texel_ok(const vkx_context *ctx, VkDeviceSize bytes);
/* 1 when buffers are persistently mapped (no staging copies). */
int vkx_buffers_mapped(const vkx_context *ctx);

#endif
