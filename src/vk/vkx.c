/* vkx.c: the Vulkan compute layer (src/vk/vkx.h).
 *
 * Owns: the instance (Vulkan 1.2, optional validation layer, debug-utils messenger that counts
 * warnings and errors), physical-device choice, the logical device and its compute queue,
 * buffers (persistently mapped when the device has device-local host-visible memory, otherwise
 * device-local with a staging buffer), compute kernels built from the embedded SPIR-V table, one
 * descriptor-set layout and pipeline layout shared by every kernel, per-dispatch descriptor sets
 * from a pool reset after each submit, one command buffer, a fence, and teardown in reverse
 * order. Knows nothing of energy models.
 */
#include "vkx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spirv_table.h"

#define VKX_PUSH_RANGE 128u       /* the spec minimum for maxPushConstantsSize */
#define VKX_SETS_PER_POOL 1024u   /* dispatches recorded before an early submit */
#define VKX_STAGING_BYTES (16u << 20)

const char *vkx_result_name(VkResult r) {
  switch (r) {
#define R(x) case x: return #x;
    R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_EVENT_SET) R(VK_EVENT_RESET) R(VK_INCOMPLETE)
    R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY) R(VK_ERROR_INITIALIZATION_FAILED)
    R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED) R(VK_ERROR_LAYER_NOT_PRESENT)
    R(VK_ERROR_EXTENSION_NOT_PRESENT) R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER)
    R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_FRAGMENTED_POOL)
    R(VK_ERROR_UNKNOWN) R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    R(VK_ERROR_FRAGMENTATION) R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
#undef R
  default: return "VK_RESULT_UNKNOWN";
  }
}

/* Every VkResult goes through this: on failure print call, result name, file, line and jump to
 * the function's `fail` label with rc set. */
#define VKX_CHECK(call)                                                                        \
  do {                                                                                         \
    VkResult vkx_r_ = (call);                                                                  \
    if (vkx_r_ != VK_SUCCESS) {                                                                \
      fprintf(stderr, "vkx: %s failed: %s (%s:%d)\n", #call, vkx_result_name(vkx_r_), __FILE__, \
              __LINE__);                                                                       \
      goto fail;                                                                               \
    }                                                                                          \
  } while (0)

struct vkx_kernel {
  char name[64];
  uint32_t nbindings, push_size;
  uint32_t texel_mask; /* bindings also bound as texel buffers at VKX_MAX_BINDINGS + j */
  VkShaderModule module;
  VkPipeline pipeline;
};

struct vkx_context {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
  VkPhysicalDevice phys;
  VkPhysicalDeviceMemoryProperties memprops;
  VkDeviceSize offset_alignment;
  VkDeviceSize nonatomic_size;
  vkx_device_info info;
  VkDevice device;
  uint32_t queue_family;
  VkQueue queue;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout pipeline_layout;
  VkDescriptorPool pool;
  uint32_t sets_used;
  VkCommandPool cmd_pool;
  VkCommandBuffer cmd;
  VkFence fence;
  int recording;
  uint32_t dispatches_in_cmd;
  VkBufferView *views; /* texel-buffer views of the recorded dispatches, freed after submit */
  uint32_t nviews, cap_views;
  uint32_t max_texel_elements;
  vkx_buffer dummy;
  VkBufferView dummy_view; /* texel bindings a dispatch does not use */
  vkx_buffer staging; /* only when buffers are not host visible */
  int mapped_buffers; /* 1: buffers are persistently mapped (no staging) */
  uint64_t validation_messages;
  uint64_t submits;            /* vkx_submit_count */
  int verbose;
};

/* ---- validation messages -------------------------------------------------------------------- */

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                     VkDebugUtilsMessageTypeFlagsEXT type,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *d,
                                                     void *user) {
  vkx_context *ctx = user;
  /* The loader's notice that VK_LOADER_LAYERS_ENABLE turned the layer on is how the tests enable
   * validation from outside; it is not a problem with our use of the API. */
  if ((type & VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT) && d && d->pMessage &&
      !(sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) &&
      strstr(d->pMessage, "forced enabled due to env var"))
    return VK_FALSE;
  if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
             VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
    ctx->validation_messages++;
    fprintf(stderr, "vkx: validation %s: %s\n",
            (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning",
            d && d->pMessage ? d->pMessage : "(no message)");
  }
  return VK_FALSE;
}

static int has_layer(const char *name) {
  uint32_t n = 0;
  if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return 0;
  VkLayerProperties *p = calloc(n, sizeof *p);
  if (!p) return 0;
  int found = 0;
  if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (!strcmp(p[i].layerName, name)) found = 1;
  free(p);
  return found;
}

static int has_instance_extension(const char *name) {
  uint32_t n = 0;
  if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || !n) return 0;
  VkExtensionProperties *p = calloc(n, sizeof *p);
  if (!p) return 0;
  int found = 0;
  if (vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (!strcmp(p[i].extensionName, name)) found = 1;
  free(p);
  return found;
}

/* Creates an instance; with ctx non-NULL also the messenger. Returns VK_SUCCESS or the error. */
static VkResult instance_create(VkInstance *out, int validation, vkx_context *ctx) {
  uint32_t api = 0;
  if (vkEnumerateInstanceVersion(&api) != VK_SUCCESS || api < VK_API_VERSION_1_1)
    return VK_ERROR_INCOMPATIBLE_DRIVER;
  VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                           .pApplicationName = "vkebm",
                           .pEngineName = "vkx",
                           .apiVersion = VK_API_VERSION_1_2};
  const char *layers[1];
  uint32_t nlayers = 0;
  const char *validation_layer = "VK_LAYER_KHRONOS_validation";
  if (validation) {
    if (has_layer(validation_layer))
      layers[nlayers++] = validation_layer;
    else if (ctx)
      fprintf(stderr, "vkx: validation requested but %s is not installed\n", validation_layer);
  }
  const char *exts[1];
  uint32_t nexts = 0;
  int debug_utils = ctx && has_instance_extension(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  if (debug_utils) exts[nexts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
  VkDebugUtilsMessengerCreateInfoEXT mci = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = debug_callback,
      .pUserData = ctx};
  VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                              .pNext = debug_utils ? &mci : NULL,
                              .pApplicationInfo = &app,
                              .enabledLayerCount = nlayers,
                              .ppEnabledLayerNames = layers,
                              .enabledExtensionCount = nexts,
                              .ppEnabledExtensionNames = exts};
  VkResult r = vkCreateInstance(&ici, NULL, out);
  if (r != VK_SUCCESS) return r;
  if (debug_utils) {
    PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
    ctx->destroy_messenger = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
        *out, "vkDestroyDebugUtilsMessengerEXT");
    if (create && ctx->destroy_messenger) {
      VkResult mr = create(*out, &mci, NULL, &ctx->messenger);
      if (mr != VK_SUCCESS)
        fprintf(stderr, "vkx: vkCreateDebugUtilsMessengerEXT failed: %s (%s:%d)\n",
                vkx_result_name(mr), __FILE__, __LINE__);
    }
  }
  return VK_SUCCESS;
}

/* ---- devices -------------------------------------------------------------------------------- */

const char *vkx_device_type_name(VkPhysicalDeviceType t) {
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
  default: return "other";
  }
}

static int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
  default: return 0;
  }
}

static int compute_queue_family(VkPhysicalDevice pd) {
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
  VkQueueFamilyProperties q[32];
  if (n > 32) n = 32;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
  int any = -1;
  for (uint32_t i = 0; i < n; i++) {
    if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || !q[i].queueCount) continue;
    if (!(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) return (int)i; /* a dedicated compute family */
    if (any < 0) any = (int)i;
  }
  return any;
}

static void fill_info(VkPhysicalDevice pd, vkx_device_info *info) {
  memset(info, 0, sizeof *info);
  /* driver properties are core in 1.2; the subgroup struct in 1.1 */
  VkPhysicalDeviceProperties base;
  vkGetPhysicalDeviceProperties(pd, &base);
  VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                            .pNext = base.apiVersion >= VK_API_VERSION_1_2 ? &drv : NULL};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
  vkGetPhysicalDeviceProperties2(pd, &p2);
  snprintf(info->driver_name, sizeof info->driver_name, "%s", drv.driverName);
  snprintf(info->driver_info, sizeof info->driver_info, "%s", drv.driverInfo);
  info->min_storage_offset_alignment = (uint32_t)p2.properties.limits.minStorageBufferOffsetAlignment;
  const VkPhysicalDeviceProperties *p = &p2.properties;
  snprintf(info->name, sizeof info->name, "%s", p->deviceName);
  info->type = p->deviceType;
  info->api_version = p->apiVersion;
  info->vendor_id = p->vendorID;
  info->device_id = p->deviceID;
  info->subgroup_size = sub.subgroupSize;
  info->max_workgroup_invocations = p->limits.maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; i++) info->max_workgroup_size[i] = p->limits.maxComputeWorkGroupSize[i];
  info->max_shared_memory = p->limits.maxComputeSharedMemorySize;
  info->max_push_constants = p->limits.maxPushConstantsSize;
  info->max_storage_buffer_range = p->limits.maxStorageBufferRange;
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(pd, &mp);
  for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
    if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      info->device_local_bytes += mp.memoryHeaps[i].size;
  info->has_compute_queue = compute_queue_family(pd) >= 0;
}

int vkx_enumerate(vkx_device_info *infos, int max) {
  VkInstance inst;
  if (instance_create(&inst, 0, NULL) != VK_SUCCESS) return -1;
  uint32_t n = 0;
  VkPhysicalDevice pds[16];
  if (vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS) n = 0;
  if (n > 16) n = 16;
  if (n && vkEnumeratePhysicalDevices(inst, &n, pds) < 0) n = 0;
  for (uint32_t i = 0; i < n && (int)i < max; i++) fill_info(pds[i], &infos[i]);
  vkDestroyInstance(inst, NULL);
  return (int)n;
}

/* The index `auto` picks among infos: best type rank with a compute queue, first on ties. */
int vkx_choose_device(const vkx_device_info *infos, int n) {
  int best = -1;
  for (int i = 0; i < n; i++) {
    if (!infos[i].has_compute_queue || infos[i].api_version < VK_API_VERSION_1_1) continue;
    if (best < 0 || type_rank(infos[i].type) > type_rank(infos[best].type)) best = i;
  }
  return best;
}

/* ---- memory --------------------------------------------------------------------------------- */

static int find_memory_type(const vkx_context *ctx, uint32_t type_bits, VkMemoryPropertyFlags want) {
  for (uint32_t i = 0; i < ctx->memprops.memoryTypeCount; i++)
    if ((type_bits & (1u << i)) && (ctx->memprops.memoryTypes[i].propertyFlags & want) == want)
      return (int)i;
  return -1;
}

static int buffer_create_with(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize size, int mapped,
                              int quiet) {
  memset(buf, 0, sizeof *buf);
  VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                            .size = size,
                            .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                     VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                            .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
  VKX_CHECK(vkCreateBuffer(ctx->device, &bci, NULL, &buf->buffer));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, buf->buffer, &req);
  VkMemoryPropertyFlags want = mapped ? VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                            VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                            VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                                      : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  if (mapped < 0) /* staging: plain host memory is fine */
    want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  int type = find_memory_type(ctx, req.memoryTypeBits, want);
  if (type < 0) {
    if (!quiet) fprintf(stderr, "vkx: no memory type with flags 0x%x\n", (unsigned)want);
    vkDestroyBuffer(ctx->device, buf->buffer, NULL);
    buf->buffer = VK_NULL_HANDLE;
    return -1;
  }
  VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                              .allocationSize = req.size,
                              .memoryTypeIndex = (uint32_t)type};
  VkResult r = vkAllocateMemory(ctx->device, &mai, NULL, &buf->memory);
  if (r != VK_SUCCESS) {
    if (!quiet)
      fprintf(stderr, "vkx: vkAllocateMemory(%llu bytes) failed: %s (%s:%d)\n",
              (unsigned long long)req.size, vkx_result_name(r), __FILE__, __LINE__);
    vkDestroyBuffer(ctx->device, buf->buffer, NULL);
    memset(buf, 0, sizeof *buf);
    return -1;
  }
  VKX_CHECK(vkBindBufferMemory(ctx->device, buf->buffer, buf->memory, 0));
  if (mapped) VKX_CHECK(vkMapMemory(ctx->device, buf->memory, 0, VK_WHOLE_SIZE, 0, &buf->mapped));
  buf->size = size;
  return 0;
fail:
  vkx_buffer_destroy(ctx, buf);
  return -1;
}

static int begin_if_needed(vkx_context *ctx);

int vkx_buffer_create(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize size) {
  if (size == 0) size = 4;
  if (ctx->mapped_buffers) {
    if (buffer_create_with(ctx, buf, size, 1, 1) == 0) {
      memset(buf->mapped, 0, (size_t)size);
      return 0;
    }
  }
  /* device-local, zero-filled by a transfer */
  if (buffer_create_with(ctx, buf, size, 0, 0) != 0) return -1;
  if (vkx_pending(ctx) && vkx_submit_wait(ctx) != 0) goto fail;
  if (begin_if_needed(ctx) != 0) goto fail;
  vkCmdFillBuffer(ctx->cmd, buf->buffer, 0, VK_WHOLE_SIZE, 0);
  vkx_barrier(ctx);
  if (vkx_submit_wait(ctx) != 0) goto fail;
  return 0;
fail:
  vkx_buffer_destroy(ctx, buf);
  return -1;
}

void vkx_buffer_destroy(vkx_context *ctx, vkx_buffer *buf) {
  if (!ctx || !buf) return;
  if (buf->mapped) vkUnmapMemory(ctx->device, buf->memory);
  if (buf->buffer) vkDestroyBuffer(ctx->device, buf->buffer, NULL);
  if (buf->memory) vkFreeMemory(ctx->device, buf->memory, NULL);
  memset(buf, 0, sizeof *buf);
}

static int begin_if_needed(vkx_context *ctx) {
  if (ctx->recording) return 0;
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                 .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  VKX_CHECK(vkBeginCommandBuffer(ctx->cmd, &bi));
  ctx->recording = 1;
  ctx->dispatches_in_cmd = 0;
  return 0;
fail:
  return -1;
}

/* Copies between a device-local buffer and the staging buffer, chunk by chunk. */
static int staged_copy(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize offset, void *host,
                       VkDeviceSize n, int to_device) {
  char *h = host;
  while (n) {
    VkDeviceSize chunk = n < ctx->staging.size ? n : ctx->staging.size;
    if (to_device) memcpy(ctx->staging.mapped, h, (size_t)chunk);
    if (begin_if_needed(ctx) != 0) return -1;
    VkBufferCopy region = {.srcOffset = to_device ? 0 : offset,
                           .dstOffset = to_device ? offset : 0,
                           .size = chunk};
    if (to_device)
      vkCmdCopyBuffer(ctx->cmd, ctx->staging.buffer, buf->buffer, 1, &region);
    else
      vkCmdCopyBuffer(ctx->cmd, buf->buffer, ctx->staging.buffer, 1, &region);
    if (vkx_submit_wait(ctx) != 0) return -1;
    if (!to_device) memcpy(h, ctx->staging.mapped, (size_t)chunk);
    h += chunk;
    offset += chunk;
    n -= chunk;
  }
  return 0;
}

static int check_range(const vkx_buffer *buf, VkDeviceSize offset, VkDeviceSize n) {
  if (offset > buf->size || n > buf->size - offset) {
    fprintf(stderr, "vkx: transfer of %llu bytes at %llu is outside a buffer of %llu bytes\n",
            (unsigned long long)n, (unsigned long long)offset, (unsigned long long)buf->size);
    return -1;
  }
  return 0;
}

int vkx_buffer_write(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize offset, const void *src,
                     VkDeviceSize n) {
  if (check_range(buf, offset, n) != 0) return -1;
  if (vkx_pending(ctx) && vkx_submit_wait(ctx) != 0) return -1;
  if (!n) return 0;
  if (buf->mapped) {
    memcpy((char *)buf->mapped + offset, src, (size_t)n);
    return 0;
  }
  return staged_copy(ctx, buf, offset, (void *)src, n, 1);
}

int vkx_buffer_read(vkx_context *ctx, vkx_buffer *buf, VkDeviceSize offset, void *dst,
                    VkDeviceSize n) {
  if (check_range(buf, offset, n) != 0) return -1;
  if (vkx_pending(ctx) && vkx_submit_wait(ctx) != 0) return -1;
  if (!n) return 0;
  if (buf->mapped) {
    memcpy(dst, (const char *)buf->mapped + offset, (size_t)n);
    return 0;
  }
  return staged_copy(ctx, buf, offset, dst, n, 0);
}

/* ---- context -------------------------------------------------------------------------------- */

static int env_int(const char *name, int *out) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < 0 || v > 1000) return -1;
  *out = (int)v;
  return 1;
}

int vkx_create(vkx_context **out, const vkx_options *opt, char *err, size_t errlen) {
  *out = NULL;
  vkx_options o = {.device_index = -1};
  if (opt) o = *opt;
  int env_validation = 0;
  if (env_int("VKEBM_VALIDATION", &env_validation) > 0 && env_validation) o.validation = 1;
  int env_device = -1;
  int e = env_int("VKEBM_DEVICE", &env_device);
  if (e < 0) {
    snprintf(err, errlen, "VKEBM_DEVICE must be a device index (see `vkebm devices`)");
    return -1;
  }
  if (e > 0) o.device_index = env_device;

  vkx_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  ctx->verbose = o.verbose;
  int rc = -1;
  VkResult r = instance_create(&ctx->instance, o.validation, ctx);
  if (r != VK_SUCCESS) {
    snprintf(err, errlen, "no Vulkan loader or driver could create an instance (%s)",
             vkx_result_name(r));
    ctx->instance = VK_NULL_HANDLE;
    vkx_destroy(ctx);
    return -2;
  }
  uint32_t n = 0;
  VkPhysicalDevice pds[16];
  VKX_CHECK(vkEnumeratePhysicalDevices(ctx->instance, &n, NULL));
  if (n > 16) n = 16;
  if (n) {
    r = vkEnumeratePhysicalDevices(ctx->instance, &n, pds);
    if (r < 0) {
      fprintf(stderr, "vkx: vkEnumeratePhysicalDevices failed: %s (%s:%d)\n", vkx_result_name(r),
              __FILE__, __LINE__);
      goto fail;
    }
  }
  vkx_device_info infos[16];
  for (uint32_t i = 0; i < n; i++) fill_info(pds[i], &infos[i]);
  int chosen;
  if (o.device_index >= 0) {
    if (o.device_index >= (int)n) {
      snprintf(err, errlen, "Vulkan device %d requested but only %u device(s) exist", o.device_index, n);
      rc = -2;
      goto fail_quiet;
    }
    chosen = o.device_index;
    if (!infos[chosen].has_compute_queue || infos[chosen].api_version < VK_API_VERSION_1_1) {
      snprintf(err, errlen, "Vulkan device %d (%s) has no compute queue or is older than Vulkan 1.1",
               chosen, infos[chosen].name);
      rc = -2;
      goto fail_quiet;
    }
  } else {
    chosen = vkx_choose_device(infos, (int)n);
    if (chosen < 0) {
      snprintf(err, errlen, "no Vulkan device with a compute queue was found");
      rc = -2;
      goto fail_quiet;
    }
  }
  ctx->phys = pds[chosen];
  ctx->info = infos[chosen];
  vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->memprops);
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(ctx->phys, &props);
  /* one alignment for storage and texel bindings: the larger of the two (both powers of two) */
  ctx->offset_alignment = props.limits.minStorageBufferOffsetAlignment;
  if (ctx->offset_alignment < props.limits.minTexelBufferOffsetAlignment)
    ctx->offset_alignment = props.limits.minTexelBufferOffsetAlignment;
  if (ctx->offset_alignment < 4) ctx->offset_alignment = 4;
  /* developer/test override: a larger power-of-two alignment (up to the spec's 256 bytes), so
   * the binding-offset remainders of stricter GPUs can be exercised on any device */
  const char *al = getenv("VKEBM_OFFSET_ALIGNMENT");
  if (al && *al) {
    long v = strtol(al, NULL, 10);
    if (v < (long)ctx->offset_alignment || v > 256 || (v & (v - 1))) {
      snprintf(err, errlen, "VKEBM_OFFSET_ALIGNMENT must be a power of two from %llu to 256",
               (unsigned long long)ctx->offset_alignment);
      goto fail_quiet;
    }
    ctx->offset_alignment = (VkDeviceSize)v;
  }
  ctx->max_texel_elements = props.limits.maxTexelBufferElements;
  if (ctx->verbose)
    fprintf(stderr, "vkx: device %d: %s (%s, Vulkan %u.%u.%u)%s\n", chosen, ctx->info.name,
            vkx_device_type_name(ctx->info.type), VK_API_VERSION_MAJOR(ctx->info.api_version),
            VK_API_VERSION_MINOR(ctx->info.api_version), VK_API_VERSION_PATCH(ctx->info.api_version),
            o.validation ? ", validation on" : "");

  ctx->queue_family = (uint32_t)compute_queue_family(ctx->phys);
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                 .queueFamilyIndex = ctx->queue_family,
                                 .queueCount = 1,
                                 .pQueuePriorities = &prio};
  VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                            .queueCreateInfoCount = 1,
                            .pQueueCreateInfos = &qci};
  VKX_CHECK(vkCreateDevice(ctx->phys, &dci, NULL, &ctx->device));
  vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);

  /* bindings 0..7: storage buffers; 8..8+VKX_MAX_TEXEL-1: uniform texel buffers (R32_SFLOAT
   * views of storage bindings a kernel asked for: texel fetches are much faster than SSBO
   * loads on lavapipe) */
  VkDescriptorSetLayoutBinding b[VKX_MAX_BINDINGS + VKX_MAX_TEXEL];
  for (uint32_t i = 0; i < VKX_MAX_BINDINGS + VKX_MAX_TEXEL; i++)
    b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                          .descriptorType = i < VKX_MAX_BINDINGS
                                                                ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                                                : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                          .descriptorCount = 1,
                                          .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
  VkDescriptorSetLayoutCreateInfo dslci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .bindingCount = VKX_MAX_BINDINGS + VKX_MAX_TEXEL,
                                           .pBindings = b};
  VKX_CHECK(vkCreateDescriptorSetLayout(ctx->device, &dslci, NULL, &ctx->set_layout));
  VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0,
                             .size = VKX_PUSH_RANGE};
  VkPipelineLayoutCreateInfo plci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &ctx->set_layout,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pcr};
  VKX_CHECK(vkCreatePipelineLayout(ctx->device, &plci, NULL, &ctx->pipeline_layout));
  VkDescriptorPoolSize ps[2] = {{.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                 .descriptorCount = VKX_SETS_PER_POOL * VKX_MAX_BINDINGS},
                                {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                 .descriptorCount = VKX_SETS_PER_POOL * VKX_MAX_TEXEL}};
  VkDescriptorPoolCreateInfo dpci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = VKX_SETS_PER_POOL,
                                     .poolSizeCount = 2,
                                     .pPoolSizes = ps};
  VKX_CHECK(vkCreateDescriptorPool(ctx->device, &dpci, NULL, &ctx->pool));
  VkCommandPoolCreateInfo cpci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = ctx->queue_family};
  VKX_CHECK(vkCreateCommandPool(ctx->device, &cpci, NULL, &ctx->cmd_pool));
  VkCommandBufferAllocateInfo cbai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = ctx->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
  VKX_CHECK(vkAllocateCommandBuffers(ctx->device, &cbai, &ctx->cmd));
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VKX_CHECK(vkCreateFence(ctx->device, &fci, NULL, &ctx->fence));

  /* Mapped buffers when device-local host-visible coherent memory exists (lavapipe, integrated
   * GPUs, resizable BAR) and its heap is not the small 256 MiB BAR window. */
  for (uint32_t i = 0; i < ctx->memprops.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = ctx->memprops.memoryTypes[i].propertyFlags;
    VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                 VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                 VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t heap = ctx->memprops.memoryTypes[i].heapIndex;
    if ((f & want) == want && ctx->memprops.memoryHeaps[heap].size >= (1ull << 30))
      ctx->mapped_buffers = 1;
  }
  /* developer/test override: the discrete-GPU path (device-local buffers + staging copies) */
  const char *fs = getenv("VKEBM_FORCE_STAGING");
  if (fs && fs[0] == '1') ctx->mapped_buffers = 0;
  if (!ctx->mapped_buffers &&
      buffer_create_with(ctx, &ctx->staging, VKX_STAGING_BYTES, -1, 0) != 0) {
    snprintf(err, errlen, "could not allocate the staging buffer");
    goto fail_quiet;
  }
  if (vkx_buffer_create(ctx, &ctx->dummy, 256) != 0) {
    snprintf(err, errlen, "could not allocate a buffer on the Vulkan device");
    goto fail_quiet;
  }
  VkBufferViewCreateInfo dvci = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                 .buffer = ctx->dummy.buffer,
                                 .format = VK_FORMAT_R32_SFLOAT,
                                 .offset = 0,
                                 .range = ctx->dummy.size};
  VKX_CHECK(vkCreateBufferView(ctx->device, &dvci, NULL, &ctx->dummy_view));
  *out = ctx;
  return 0;
fail:
  snprintf(err, errlen, "Vulkan initialisation failed (see the message above)");
fail_quiet:
  vkx_destroy(ctx);
  return rc;
}

void vkx_destroy(vkx_context *ctx) {
  if (!ctx) return;
  if (ctx->device) {
    if (ctx->recording) vkx_submit_wait(ctx);
    vkDeviceWaitIdle(ctx->device);
    for (uint32_t i = 0; i < ctx->nviews; i++) vkDestroyBufferView(ctx->device, ctx->views[i], NULL);
    free(ctx->views);
    if (ctx->dummy_view) vkDestroyBufferView(ctx->device, ctx->dummy_view, NULL);
    vkx_buffer_destroy(ctx, &ctx->dummy);
    vkx_buffer_destroy(ctx, &ctx->staging);
    if (ctx->fence) vkDestroyFence(ctx->device, ctx->fence, NULL);
    if (ctx->cmd_pool) vkDestroyCommandPool(ctx->device, ctx->cmd_pool, NULL);
    if (ctx->pool) vkDestroyDescriptorPool(ctx->device, ctx->pool, NULL);
    if (ctx->pipeline_layout) vkDestroyPipelineLayout(ctx->device, ctx->pipeline_layout, NULL);
    if (ctx->set_layout) vkDestroyDescriptorSetLayout(ctx->device, ctx->set_layout, NULL);
    vkDestroyDevice(ctx->device, NULL);
  }
  if (ctx->instance) {
    if (ctx->messenger && ctx->destroy_messenger)
      ctx->destroy_messenger(ctx->instance, ctx->messenger, NULL);
    vkDestroyInstance(ctx->instance, NULL);
  }
  free(ctx);
}

const vkx_device_info *vkx_info(const vkx_context *ctx) { return &ctx->info; }
uint64_t vkx_validation_errors(const vkx_context *ctx) { return ctx->validation_messages; }
uint64_t vkx_submit_count(const vkx_context *ctx) { return ctx->submits; }
VkDeviceSize vkx_offset_alignment(const vkx_context *ctx) { return ctx->offset_alignment; }
int vkx_buffers_mapped(const vkx_context *ctx) { return ctx->mapped_buffers; }

/* ---- kernels -------------------------------------------------------------------------------- */

static uint32_t *read_spv_file(const char *dir, const char *name, size_t *size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.spv", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "vkx: VKEBM_SHADER_DIR is set but %s cannot be opened\n", path);
    return NULL;
  }
  uint32_t *code = NULL;
  long len = -1;
  if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
  if (len > 0 && len % 4 == 0 && fseek(f, 0, SEEK_SET) == 0) {
    code = malloc((size_t)len);
    if (code && fread(code, 1, (size_t)len, f) != (size_t)len) {
      free(code);
      code = NULL;
    }
  }
  fclose(f);
  if (!code) fprintf(stderr, "vkx: %s is not a SPIR-V file\n", path);
  *size = (size_t)len;
  return code;
}

vkx_kernel *vkx_kernel_create(vkx_context *ctx, const char *name, uint32_t nbindings,
                              uint32_t push_size) {
  if (nbindings > VKX_MAX_BINDINGS || push_size > VKX_PUSH_RANGE ||
      push_size > ctx->info.max_push_constants) {
    fprintf(stderr, "vkx: kernel %s wants %u bindings and %u push bytes (limits %u, %u)\n", name,
            nbindings, push_size, VKX_MAX_BINDINGS, VKX_PUSH_RANGE);
    return NULL;
  }
  const uint32_t *code = NULL;
  size_t size = 0;
  uint32_t *owned = NULL;
  const char *dir = getenv("VKEBM_SHADER_DIR");
  if (dir && *dir) {
    owned = read_spv_file(dir, name, &size);
    if (!owned) return NULL;
    code = owned;
  } else {
    const vkebm_spirv *s = vkebm_spirv_find(name);
    if (!s) {
      fprintf(stderr, "vkx: no embedded shader named %s\n", name);
      return NULL;
    }
    code = s->code;
    size = s->size;
  }
  vkx_kernel *k = calloc(1, sizeof *k);
  if (!k) {
    free(owned);
    return NULL;
  }
  snprintf(k->name, sizeof k->name, "%s", name);
  k->nbindings = nbindings;
  k->push_size = push_size;
  VkShaderModuleCreateInfo smci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = size,
                                   .pCode = code};
  VKX_CHECK(vkCreateShaderModule(ctx->device, &smci, NULL, &k->module));
  VkComputePipelineCreateInfo cpci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = k->module,
                .pName = "main"},
      .layout = ctx->pipeline_layout};
  VKX_CHECK(vkCreateComputePipelines(ctx->device, VK_NULL_HANDLE, 1, &cpci, NULL, &k->pipeline));
  free(owned);
  return k;
fail:
  fprintf(stderr, "vkx: kernel %s could not be built\n", name);
  free(owned);
  vkx_kernel_destroy(ctx, k);
  return NULL;
}

int vkx_kernel_set_texel(vkx_kernel *k, uint32_t mask) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < VKX_MAX_BINDINGS; i++) n += (mask >> i) & 1u;
  if (!k || n > VKX_MAX_TEXEL || (mask >> k->nbindings)) return -1;
  k->texel_mask = mask;
  return 0;
}

int vkx_texel_ok(const vkx_context *ctx, VkDeviceSize bytes) {
  return bytes / 4 <= ctx->max_texel_elements;
}

void vkx_kernel_destroy(vkx_context *ctx, vkx_kernel *k) {
  if (!k) return;
  if (k->pipeline) vkDestroyPipeline(ctx->device, k->pipeline, NULL);
  if (k->module) vkDestroyShaderModule(ctx->device, k->module, NULL);
  free(k);
}

/* ---- recording and submission --------------------------------------------------------------- */

void vkx_barrier(vkx_context *ctx) {
  if (!ctx->recording) return; /* nothing recorded: a submit boundary orders everything */
  VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
  VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(ctx->cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
}

int vkx_dispatch(vkx_context *ctx, vkx_kernel *k, const vkx_binding *bindings, uint32_t nbindings,
                 const void *push, uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz) {
  if (!k) return -1;
  if (nbindings != k->nbindings || push_size != k->push_size) {
    fprintf(stderr, "vkx: kernel %s called with %u bindings and %u push bytes, expects %u and %u\n",
            k->name, nbindings, push_size, k->nbindings, k->push_size);
    return -1;
  }
  for (uint32_t i = 0; i < nbindings; i++) {
    const vkx_binding *b = &bindings[i];
    if (!b->buf || b->offset % ctx->offset_alignment || b->range == 0 ||
        b->range > ctx->info.max_storage_buffer_range || b->offset > b->buf->size ||
        b->range > b->buf->size - b->offset) {
      fprintf(stderr, "vkx: kernel %s binding %u: bad range (offset %llu, range %llu, buffer %llu, "
              "alignment %llu, max range %llu)\n", k->name, i,
              (unsigned long long)b->offset, (unsigned long long)b->range,
              b->buf ? (unsigned long long)b->buf->size : 0ull,
              (unsigned long long)ctx->offset_alignment,
              (unsigned long long)ctx->info.max_storage_buffer_range);
      return -1;
    }
  }
  for (uint32_t i = 0; i < nbindings; i++)
    if ((k->texel_mask & (1u << i)) && bindings[i].range / 4 > ctx->max_texel_elements) {
      fprintf(stderr, "vkx: kernel %s binding %u: %llu floats exceed maxTexelBufferElements %u "
              "(check vkx_texel_ok first)\n", k->name, i,
              (unsigned long long)(bindings[i].range / 4), ctx->max_texel_elements);
      return -1;
    }
  if (gx == 0 || gy == 0 || gz == 0) return 0;
  if (ctx->sets_used == VKX_SETS_PER_POOL && vkx_submit_wait(ctx) != 0) return -1;
  if (begin_if_needed(ctx) != 0) return -1;
  VkDescriptorSet set;
  VkDescriptorSetAllocateInfo dsai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = ctx->pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &ctx->set_layout};
  VKX_CHECK(vkAllocateDescriptorSets(ctx->device, &dsai, &set));
  ctx->sets_used++;
  VkDescriptorBufferInfo bi[VKX_MAX_BINDINGS];
  VkWriteDescriptorSet w[VKX_MAX_BINDINGS + VKX_MAX_TEXEL];
  VkBufferView tv[VKX_MAX_TEXEL];
  uint32_t nw = VKX_MAX_BINDINGS, ntexel = 0;
  for (uint32_t i = 0; i < nbindings && k->texel_mask; i++) {
    if (!(k->texel_mask & (1u << i))) continue;
    if (ctx->nviews == ctx->cap_views) {
      uint32_t cap = ctx->cap_views ? 2 * ctx->cap_views : 256;
      VkBufferView *nv = realloc(ctx->views, cap * sizeof *nv);
      if (!nv) goto fail;
      ctx->views = nv;
      ctx->cap_views = cap;
    }
    VkBufferViewCreateInfo bvci = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                   .buffer = bindings[i].buf->buffer,
                                   .format = VK_FORMAT_R32_SFLOAT,
                                   .offset = bindings[i].offset,
                                   .range = bindings[i].range};
    VKX_CHECK(vkCreateBufferView(ctx->device, &bvci, NULL, &tv[ntexel]));
    ctx->views[ctx->nviews++] = tv[ntexel];
    w[nw++] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                     .dstSet = set,
                                     .dstBinding = VKX_MAX_BINDINGS + ntexel,
                                     .descriptorCount = 1,
                                     .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                     .pTexelBufferView = &tv[ntexel]};
    ntexel++;
  }
  for (uint32_t j = ntexel; j < VKX_MAX_TEXEL; j++) {
    tv[j] = ctx->dummy_view;
    w[nw++] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                     .dstSet = set,
                                     .dstBinding = VKX_MAX_BINDINGS + j,
                                     .descriptorCount = 1,
                                     .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                     .pTexelBufferView = &tv[j]};
  }
  for (uint32_t i = 0; i < VKX_MAX_BINDINGS; i++) {
    if (i < nbindings)
      bi[i] = (VkDescriptorBufferInfo){bindings[i].buf->buffer, bindings[i].offset, bindings[i].range};
    else
      bi[i] = (VkDescriptorBufferInfo){ctx->dummy.buffer, 0, ctx->dummy.size};
    w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                  .dstSet = set,
                                  .dstBinding = i,
                                  .descriptorCount = 1,
                                  .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                  .pBufferInfo = &bi[i]};
  }
  vkUpdateDescriptorSets(ctx->device, nw, w, 0, NULL);
  if (ctx->dispatches_in_cmd) vkx_barrier(ctx);
  vkCmdBindPipeline(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
  vkCmdBindDescriptorSets(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->pipeline_layout, 0, 1,
                          &set, 0, NULL);
  if (push_size) vkCmdPushConstants(ctx->cmd, ctx->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                                    push_size, push);
  vkCmdDispatch(ctx->cmd, gx, gy, gz);
  ctx->dispatches_in_cmd++;
  return 0;
fail:
  return -1;
}

int vkx_pending(const vkx_context *ctx) { return ctx->recording; }

int vkx_submit_wait(vkx_context *ctx) {
  if (!ctx->recording) return 0;
  /* make shader and transfer writes visible to the host reads that follow the fence */
  VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                        .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
  vkCmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  ctx->recording = 0;
  ctx->dispatches_in_cmd = 0;
  VKX_CHECK(vkEndCommandBuffer(ctx->cmd));
  VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                     .commandBufferCount = 1,
                     .pCommandBuffers = &ctx->cmd};
  VKX_CHECK(vkQueueSubmit(ctx->queue, 1, &si, ctx->fence));
  ctx->submits++;
  VKX_CHECK(vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX));
  VKX_CHECK(vkResetFences(ctx->device, 1, &ctx->fence));
  VKX_CHECK(vkResetCommandBuffer(ctx->cmd, 0));
  VKX_CHECK(vkResetDescriptorPool(ctx->device, ctx->pool, 0));
  ctx->sets_used = 0;
  for (uint32_t i = 0; i < ctx->nviews; i++) vkDestroyBufferView(ctx->device, ctx->views[i], NULL);
  ctx->nviews = 0;
  return 0;
fail:
  return -1;
}
