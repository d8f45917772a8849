/* vulkan.c: the `vulkan` backend: an ebm_backend on top of vkx (src/vk).
 *
 * Owns: the vkx context, buffers (an ebm_buffer wrapping a vkx_buffer), the kernel table of
 * vulkan_kernels.def with pipelines created on first use and cached, a scratch buffer for ops
 * that need intermediate sums, and vkb_run: binding tensors at arbitrary float offsets (each is
 * bound from the aligned offset below it; the remainder goes to the shader in push constants,
 * see shaders/push.h), recording the dispatch and remembering any failure so that the
 * next ebm_sync/ebm_download reports it. The ops themselves are in vulkan_ops.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push.h"
#include "vk/vkx.h"
#include "vulkan_impl.h"

typedef struct vk_buffer {
  ebm_buffer hdr; /* first: ebm_buffer_size reads it */
  vkx_buffer vb;
} vk_buffer;

typedef struct vk_kernel_spec {
  const char *name;
  uint32_t nbindings, push_size;
} vk_kernel_spec;

static const vk_kernel_spec kernel_specs[VKB_K_COUNT] = {
#define KERNEL(name, nbindings, push_type) {#name, nbindings, sizeof(push_type)},
#include "vulkan_kernels.def"
#undef KERNEL
};

/* Every push struct must start with the binding-offset words vkb_run fills in. */
#define KERNEL(name, nbindings, push_type)                                                     \
  _Static_assert(offsetof(push_type, boff) == 0 && sizeof(((push_type *)0)->boff) == 8,       \
                 "push struct of " #name " must start with VKEBM_PUSH_BINDING_OFFSETS");       \
  _Static_assert((nbindings) <= VKX_MAX_BINDINGS, "too many bindings: " #name);
#include "vulkan_kernels.def"
#undef KERNEL

typedef struct vk_backend {
  ebm_backend hdr; /* first: backend.c reads the vtable */
  vkx_context *ctx;
  vkx_kernel *kernels[VKB_K_COUNT];
  int kernel_failed[VKB_K_COUNT];
  vkx_buffer dummy;     /* bound for optional (EBM_NOREF) tensors */
  vk_buffer *scratch;   /* vkb_scratch */
  int error;            /* a recording failed; reported by the next sync/download */
  int no_texel;         /* env VKEBM_NO_TEXEL=1: shaders read through storage buffers only */
  size_t max_binding_floats;
  char describe[768];
} vk_backend;

static vk_backend *vkb(ebm_backend *be) { return (vk_backend *)be; }

/* ---- buffers -------------------------------------------------------------------------------- */

static ebm_buffer *vk_alloc(ebm_backend *be, size_t nfloats) {
  vk_backend *b = vkb(be);
  if (nfloats > (SIZE_MAX / 8)) return NULL;
  vk_buffer *buf = calloc(1, sizeof *buf);
  if (!buf) return NULL;
  buf->hdr.nfloats = nfloats;
  if (vkx_buffer_create(b->ctx, &buf->vb, (VkDeviceSize)(nfloats ? nfloats : 1) * 4) != 0) {
    fprintf(stderr, "vulkan: could not allocate %zu floats\n", nfloats);
    free(buf);
    return NULL;
  }
  return &buf->hdr;
}

static void vk_free(ebm_backend *be, ebm_buffer *buf) {
  vk_backend *b = vkb(be);
  if (!buf) return;
  /* recorded work may still use it */
  if (vkx_pending(b->ctx) && vkx_submit_wait(b->ctx) != 0) b->error = 1;
  vkx_buffer_destroy(b->ctx, &((vk_buffer *)buf)->vb);
  free(buf);
}

static int ref_ok(const char *what, ebm_ref r, size_t n) {
  if (!r.buf || r.off > r.buf->nfloats || n > r.buf->nfloats - r.off) {
    fprintf(stderr, "vulkan: %s of %zu floats at offset %zu is outside a buffer of %zu floats\n",
            what, n, r.off, r.buf ? r.buf->nfloats : 0);
    return 0;
  }
  return 1;
}

static int take_error(vk_backend *b) {
  int e = b->error;
  b->error = 0;
  return e ? EBM_ERR : EBM_OK;
}

static int vk_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n) {
  vk_backend *b = vkb(be);
  if (!ref_ok("upload", dst, n)) return EBM_ERR;
  if (vkx_buffer_write(b->ctx, &((vk_buffer *)dst.buf)->vb, (VkDeviceSize)dst.off * 4, src,
                       (VkDeviceSize)n * 4) != 0)
    b->error = 1;
  return take_error(b);
}

static int vk_download(ebm_backend *be, float *dst, ebm_ref src, size_t n) {
  vk_backend *b = vkb(be);
  if (!ref_ok("download", src, n)) return EBM_ERR;
  if (vkx_buffer_read(b->ctx, &((vk_buffer *)src.buf)->vb, (VkDeviceSize)src.off * 4, dst,
                      (VkDeviceSize)n * 4) != 0)
    b->error = 1;
  return take_error(b);
}

static int vk_sync(ebm_backend *be) {
  vk_backend *b = vkb(be);
  if (vkx_submit_wait(b->ctx) != 0) b->error = 1;
  return take_error(b);
}

/* ---- dispatch (vulkan_impl.h) --------------------------------------------------------------- */

void vkb_grid_1d(size_t n, uint32_t local, uint32_t *gx, uint32_t *gy) {
  size_t groups = (n + local - 1) / local;
  if (groups <= 65535) {
    *gx = (uint32_t)groups;
    *gy = groups ? 1 : 0;
  } else {
    *gx = 65535;
    *gy = (uint32_t)((groups + 65534) / 65535);
  }
}

ebm_ref vkb_scratch(ebm_backend *be, size_t nfloats) {
  vk_backend *b = vkb(be);
  if (!b->scratch || b->scratch->hdr.nfloats < nfloats) {
    size_t want = nfloats < (1u << 16) ? (1u << 16) : nfloats + nfloats / 2;
    if (b->scratch) {
      vk_free(be, &b->scratch->hdr); /* waits for work that uses it */
      b->scratch = NULL;
    }
    b->scratch = (vk_buffer *)vk_alloc(be, want);
    if (!b->scratch) {
      b->error = 1;
      return EBM_NOREF;
    }
  }
  return (ebm_ref){&b->scratch->hdr, 0};
}

void vkb_fail(ebm_backend *be) { vkb(be)->error = 1; }

size_t vkb_max_binding_floats(ebm_backend *be) { return vkb(be)->max_binding_floats; }

int vkb_texel_ok(ebm_backend *be, size_t nfloats) {
  /* + the alignment remainder the binding starts with */
  return !vkb(be)->no_texel && vkx_texel_ok(vkb(be)->ctx, (VkDeviceSize)(nfloats + 64) * 4);
}

void vkb_run(ebm_backend *be, vkb_kernel_id k, const vkb_arg *args, int nargs, const void *push,
             uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz) {
  vkb_run_texel(be, k, 0, args, nargs, push, push_size, gx, gy, gz);
}

void vkb_run_texel(ebm_backend *be, vkb_kernel_id k, uint32_t texel_mask, const vkb_arg *args,
                   int nargs, const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                   uint32_t gz) {
  vk_backend *b = vkb(be);
  if ((unsigned)k >= VKB_K_COUNT) {
    fprintf(stderr, "vulkan: unknown kernel id %d\n", (int)k);
    b->error = 1;
    return;
  }
  const vk_kernel_spec *spec = &kernel_specs[k];
  if ((uint32_t)nargs != spec->nbindings || push_size != spec->push_size) {
    fprintf(stderr, "vulkan: %s called with %d tensors and %u push bytes, expects %u and %u\n",
            spec->name, nargs, push_size, spec->nbindings, spec->push_size);
    b->error = 1;
    return;
  }
  if (!b->kernels[k]) {
    if (b->kernel_failed[k]) {
      b->error = 1;
      return;
    }
    b->kernels[k] = vkx_kernel_create(b->ctx, spec->name, spec->nbindings, spec->push_size);
    if (!b->kernels[k]) {
      b->kernel_failed[k] = 1;
      b->error = 1;
      return;
    }
  }
  uint8_t pushbuf[128];
  memcpy(pushbuf, push, push_size);
  uint32_t boff[2] = {0, 0};
  vkx_binding bind[VKX_MAX_BINDINGS];
  VkDeviceSize align = vkx_offset_alignment(b->ctx);
  for (int i = 0; i < nargs; i++) {
    const vkb_arg *a = &args[i];
    if (!a->ref.buf) { /* optional tensor left out: the shader does not touch it */
      bind[i] = (vkx_binding){&b->dummy, 0, b->dummy.size};
      continue;
    }
    size_t n = a->n ? a->n : 1;
    if (!ref_ok(spec->name, a->ref, n)) {
      b->error = 1;
      return;
    }
    VkDeviceSize byte = (VkDeviceSize)a->ref.off * 4;
    VkDeviceSize base = byte - byte % align;
    uint32_t rem = (uint32_t)((byte - base) / 4);
    bind[i] = (vkx_binding){&((vk_buffer *)a->ref.buf)->vb, base, (byte - base) + (VkDeviceSize)n * 4};
    boff[i / 4] |= rem << (8 * (i % 4));
  }
  memcpy(pushbuf, boff, sizeof boff);
  if (vkx_kernel_set_texel(b->kernels[k], texel_mask) != 0) {
    fprintf(stderr, "vulkan: %s: bad texel mask 0x%x\n", spec->name, texel_mask);
    b->error = 1;
    return;
  }
  if (vkx_dispatch(b->ctx, b->kernels[k], bind, (uint32_t)nargs, pushbuf, push_size, gx, gy, gz) != 0)
    b->error = 1;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static const char *vk_device_name(const ebm_backend *be) {
  return vkx_info(((const vk_backend *)be)->ctx)->name;
}
static const char *vk_describe(const ebm_backend *be) { return ((const vk_backend *)be)->describe; }
static uint64_t vk_validation_errors(const ebm_backend *be) {
  return vkx_validation_errors(((const vk_backend *)be)->ctx);
}
static uint64_t vk_submits(const ebm_backend *be) {
  return vkx_submit_count(((const vk_backend *)be)->ctx);
}

static void vk_destroy(ebm_backend *be) {
  vk_backend *b = vkb(be);
  if (b->ctx) {
    vkx_submit_wait(b->ctx);
    if (b->scratch) vk_free(be, &b->scratch->hdr);
    for (int i = 0; i < VKB_K_COUNT; i++) vkx_kernel_destroy(b->ctx, b->kernels[i]);
    vkx_buffer_destroy(b->ctx, &b->dummy);
    vkx_destroy(b->ctx);
  }
  free(b);
}


static const ebm_backend_vtable vkb_vtable;

int ebm_vulkan_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err,
                              size_t errlen) {
  *out = NULL;
  vk_backend *b = calloc(1, sizeof *b);
  if (!b) {
    snprintf(err, errlen, "out of memory");
    return EBM_ERR_OOM;
  }
  b->hdr.vt = &vkb_vtable;
  b->hdr.kind = EBM_BACKEND_VULKAN;
  vkx_options o = {.device_index = opt ? opt->device_index : -1,
                   .validation = opt ? opt->validation : 0,
                   .verbose = opt ? opt->verbose : 0};
  int rc = vkx_create(&b->ctx, &o, err, errlen);
  if (rc != 0) {
    free(b);
    return rc == -2 ? EBM_ERR_NO_DEVICE : EBM_ERR;
  }
  if (vkx_buffer_create(b->ctx, &b->dummy, 256) != 0) {
    snprintf(err, errlen, "could not allocate a buffer on the Vulkan device");
    vkx_destroy(b->ctx);
    free(b);
    return EBM_ERR;
  }
  b->max_binding_floats = (size_t)(vkx_info(b->ctx)->max_storage_buffer_range / 4) - 64;
  const char *mb = getenv("VKEBM_MAX_BINDING_FLOATS");
  if (mb && *mb) {
    char *end;
    unsigned long long v = strtoull(mb, &end, 10);
    if (*end || v < 4096) {
      snprintf(err, errlen, "VKEBM_MAX_BINDING_FLOATS must be a number >= 4096");
      vk_destroy(&b->hdr);
      return EBM_ERR;
    }
    if (v < b->max_binding_floats) b->max_binding_floats = (size_t)v;
  }
  const char *nt = getenv("VKEBM_NO_TEXEL");
  b->no_texel = nt && nt[0] == '1';
  const vkx_device_info *in = vkx_info(b->ctx);
  snprintf(b->describe, sizeof b->describe,
           "%s device, driver %s%s%s, Vulkan %u.%u, subgroup %u, workgroup <= %u, shared %u KiB, "
           "push %u B, storage range %llu MiB, offset alignment %llu B, %s buffers%s",
           vkx_device_type_name(in->type), in->driver_name[0] ? in->driver_name : "?",
           in->driver_info[0] ? " " : "", in->driver_info, VK_API_VERSION_MAJOR(in->api_version),
           VK_API_VERSION_MINOR(in->api_version), in->subgroup_size,
           in->max_workgroup_invocations, in->max_shared_memory / 1024, in->max_push_constants,
           (unsigned long long)(in->max_storage_buffer_range >> 20),
           (unsigned long long)vkx_offset_alignment(b->ctx),
           vkx_buffers_mapped(b->ctx) ? "mapped" : "staged",
           b->no_texel ? ", texel loads off (VKEBM_NO_TEXEL)" : "");
  *out = &b->hdr;
  return EBM_OK;
}

static int hardware_type(VkPhysicalDeviceType t) {
  return t != VK_PHYSICAL_DEVICE_TYPE_CPU && t != VK_PHYSICAL_DEVICE_TYPE_OTHER;
}

int ebm_vulkan_devices(ebm_vulkan_device *out, int max) {
  vkx_device_info infos[16];
  int n = vkx_enumerate(infos, 16);
  if (n < 0) return -1;
  if (n > 16) n = 16;
  if (n > max) n = max;
  int chosen = n > 0 ? vkx_choose_device(infos, n) : -1;
  const char *env = getenv("VKEBM_DEVICE"); /* as vkx_create reads it */
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (!*end && v >= 0 && v < n) chosen = (int)v;
  }
  for (int i = 0; i < n; i++) {
    const vkx_device_info *d = &infos[i];
    ebm_vulkan_device *o = &out[i];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%.255s", d->name);
    o->type = vkx_device_type_name(d->type);
    o->hardware = hardware_type(d->type);
    o->chosen = i == chosen;
    o->has_compute_queue = d->has_compute_queue;
    o->api_major = VK_API_VERSION_MAJOR(d->api_version);
    o->api_minor = VK_API_VERSION_MINOR(d->api_version);
    o->api_patch = VK_API_VERSION_PATCH(d->api_version);
    snprintf(o->driver_name, sizeof o->driver_name, "%.255s", d->driver_name);
    snprintf(o->driver_info, sizeof o->driver_info, "%.255s", d->driver_info);
    o->subgroup_size = d->subgroup_size;
    o->max_workgroup_invocations = d->max_workgroup_invocations;
    memcpy(o->max_workgroup_size, d->max_workgroup_size, sizeof o->max_workgroup_size);
    o->max_shared_memory = d->max_shared_memory;
    o->max_push_constants = d->max_push_constants;
    o->min_storage_offset_alignment = d->min_storage_offset_alignment;
    o->max_storage_buffer_range = d->max_storage_buffer_range;
    o->device_local_bytes = d->device_local_bytes;
  }
  return n;
}

int ebm_vulkan_hardware_gpu_present(void) {
  vkx_device_info infos[16];
  int n = vkx_enumerate(infos, 16);
  for (int i = 0; i < n && i < 16; i++)
    if (infos[i].has_compute_queue && hardware_type(infos[i].type)) return 1;
  return 0;
}

#define EBM_VTABLE_PREFIX vk_
static const ebm_backend_vtable vkb_vtable = {
    .name = "vulkan",
    .destroy = vk_destroy,
    .device_name = vk_device_name,
    .describe = vk_describe,
    .validation_errors = vk_validation_errors,
    .submits = vk_submits,
    .alloc = vk_alloc,
    .free = vk_free,
    .upload = vk_upload,
    .download = vk_download,
    .sync = vk_sync,
    .fail = vkb_fail,
#define EBM_OP EBM_VTABLE_OP
#include "vkebm/ops.def"
#undef EBM_OP
};
#undef EBM_VTABLE_PREFIX
