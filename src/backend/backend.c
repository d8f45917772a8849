/* backend.c: the public backend interface, forwarding to the chosen backend's vtable.
 * Owns: backend selection (auto = a hardware Vulkan GPU if present, else cpu). */
#include <stdio.h>
#include <string.h>

#include "backend_impl.h"
#include "vkebm/scene.h"

int ebm_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err,
                       size_t errlen) {
  ebm_backend_options o = {0};
  if (opt) o = *opt;
  *out = NULL;
  if (o.kind == EBM_BACKEND_AUTO)
    o.kind = ebm_vulkan_hardware_gpu_present() ? EBM_BACKEND_VULKAN : EBM_BACKEND_CPU;
  int rc = o.kind == EBM_BACKEND_VULKAN ? ebm_vulkan_backend_create(out, &o, err, errlen)
                                        : ebm_cpu_backend_create(out, &o, err, errlen);
  if (rc == 0 && o.verbose)
    fprintf(stderr, "vkebm: backend %s on %s (%s)\n", (*out)->vt->name,
            (*out)->vt->device_name(*out), (*out)->vt->describe(*out));
  return rc;
}

void ebm_backend_destroy(ebm_backend *be) {
  if (be) be->vt->destroy(be);
}

ebm_backend_kind ebm_backend_kind_of(const ebm_backend *be) { return be->kind; }
const char *ebm_backend_name(const ebm_backend *be) { return be->vt->name; }
const char *ebm_backend_device_name(const ebm_backend *be) { return be->vt->device_name(be); }
const char *ebm_backend_describe(const ebm_backend *be) { return be->vt->describe(be); }
const char *ebm_backend_conv_path(const ebm_backend *be, int direction, int Ci, int Co, int H,
                                  int W) {
  return be->vt->conv_path ? be->vt->conv_path(be, direction, Ci, Co, H, W) : "shader";
}
uint64_t ebm_backend_validation_errors(const ebm_backend *be) {
  return be->vt->validation_errors(be);
}

ebm_buffer *ebm_alloc(ebm_backend *be, size_t nfloats) { return be->vt->alloc(be, nfloats); }
void ebm_free(ebm_backend *be, ebm_buffer *buf) {
  if (buf) be->vt->free(be, buf);
}
size_t ebm_buffer_size(const ebm_buffer *buf) { return buf->nfloats; }
ebm_ref ebm_ref_of(ebm_buffer *buf) { return (ebm_ref){buf, 0}; }
int ebm_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n) {
  be->uploads++;
  return be->vt->upload(be, dst, src, n);
}
int ebm_download(ebm_backend *be, float *dst, ebm_ref src, size_t n) {
  be->downloads++;
  return be->vt->download(be, dst, src, n);
}
int ebm_sync(ebm_backend *be) {
  be->syncs++;
  return be->vt->sync(be);
}
ebm_transfer_stats ebm_backend_transfer_stats(const ebm_backend *be) {
  return (ebm_transfer_stats){be->uploads, be->downloads, be->syncs,
                              be->vt->submits ? be->vt->submits(be) : 0};
}

/* ---- ops: checked once here, then the backend's entry ---------------------------------------- */

/* 1 when t covers [off, off+n) of its buffer (an extent of 0 needs no buffer; an optional
 * tensor may be left out); else prints why and returns 0. */
static int tensor_ok(const ebm_backend *be, const char *op, const char *name, ebm_tensor t,
                     int optional) {
  if (t.n == 0 || (optional && !t.ref.buf)) return 1;
  if (!t.ref.buf) {
    fprintf(stderr, "vkebm: %s %s: %s: no buffer for %zu floats\n", be->vt->name, op, name, t.n);
    return 0;
  }
  const size_t size = t.ref.buf->nfloats;
  if (t.ref.off > size || t.n > size - t.ref.off) {
    fprintf(stderr, "vkebm: %s %s: %s: range [%zu, +%zu) outside buffer of %zu floats\n",
            be->vt->name, op, name, t.ref.off, t.n, size);
    return 0;
  }
  return 1;
}

/* Per argument of an op: build and check its tensor (statements), then pass it on. */
#define CHECK_ARG(kind, a, b) CHECK_##kind(a, b)
#define CHECK_TENSOR(name, extent, optional) \
  const ebm_tensor name##_t = {name, (extent)}; \
  ok_ &= tensor_ok(be, op_, #name, name##_t, optional)
#define CHECK_IN(name, extent) CHECK_TENSOR(name, extent, 0)
#define CHECK_OUT(name, extent) CHECK_TENSOR(name, extent, 0)
#define CHECK_INOUT(name, extent) CHECK_TENSOR(name, extent, 0)
#define CHECK_OPT_IN(name, extent) CHECK_TENSOR(name, extent, 1)
#define CHECK_OPT_OUT(name, extent) CHECK_TENSOR(name, extent, 1)
#define CHECK_VAL(type, name) (void)0
#define PASS_ARG(kind, a, b) PASS_##kind(a, b)
#define PASS_IN(name, extent) name##_t
#define PASS_OUT(name, extent) name##_t
#define PASS_INOUT(name, extent) name##_t
#define PASS_OPT_IN(name, extent) name##_t
#define PASS_OPT_OUT(name, extent) name##_t
#define PASS_VAL(type, name) name

#define EBM_OP(op, shape_ok, ...)                                                             \
  void ebm_##op(ebm_backend *be, EBM_PP_MAP(EBM_ARG_PUBLIC, EBM_PP_COMMA, __VA_ARGS__)) {    \
    static const char op_[] = #op;                                                            \
    if (!(shape_ok)) {                                                                          \
      fprintf(stderr, "vkebm: %s %s: shape arguments break %s\n", be->vt->name, op_, #shape_ok); \
      be->vt->fail(be);                                                                         \
      return;                                                                                   \
    }                                                                                           \
    int ok_ = 1;                                                                                \
    EBM_PP_MAP(CHECK_ARG, EBM_PP_SEMI, __VA_ARGS__);                                            \
    if (!ok_) {                                                                                 \
      be->vt->fail(be);                                                                         \
      return;                                                                                   \
    }                                                                                           \
    be->vt->op(be, EBM_PP_MAP(PASS_ARG, EBM_PP_COMMA, __VA_ARGS__));                          \
  }
#include "vkebm/ops.def"
#undef EBM_OP
