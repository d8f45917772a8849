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
 *   - The ops are listed once, in include/vkebm/ops.def, with their shapes and formulas.
 *   - Each op has a CPU twin: src/backend/cpu_ops.c implements it in plain C (BLAS for convs);
 *     shaders/<op>.comp implements it for Vulkan; tests/test_backend_ops.c runs every op of the
 *     list on both, tests/test_vk_ops.c adds awkward sizes.
 *   - A tensor that does not fit its buffer, or shape arguments an op does not accept, make
 *     the call do nothing but print one line; the next ebm_sync/ebm_download returns EBM_ERR.
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
/* The Vulkan devices `vkebm devices` lists, without Vulkan types: their compute limits and which
 * one the vulkan backend uses by default (`chosen`: discrete > integrated > virtual > cpu, or
 * the index in env VKEBM_DEVICE). `hardware`: a real GPU (not a CPU implementation such as
 * lavapipe): what --backend auto takes. */
typedef struct ebm_vulkan_device {
  char name[256];
  const char *type; /* "discrete", "integrated", "virtual", "cpu" or "other" */
  int hardware, chosen, has_compute_queue;
  unsigned api_major, api_minor, api_patch;
  char driver_name[256], driver_info[256]; /* "" when unknown */
  uint32_t subgroup_size, max_workgroup_invocations, max_workgroup_size[3];
  uint32_t max_shared_memory, max_push_constants, min_storage_offset_alignment;
  uint64_t max_storage_buffer_range, device_local_bytes;
} ebm_vulkan_device;
/* Fills up to max devices; returns how many there are (at most max), or -1 when Vulkan has no
 * loader or driver that can create an instance. */
int ebm_vulkan_devices(ebm_vulkan_device *out, int max);

/* What has crossed between host and device since the backend was created: calls of
 * ebm_upload, ebm_download and ebm_sync, and (vulkan; 0 on cpu) the command buffers submitted
 * and waited on for any reason (those calls, a full descriptor pool, a buffer freed while work
 * was recorded). Each submit is a host round trip that stalls the queue; tests use the counts
 * to check that a loop stays on the device. */
typedef struct ebm_transfer_stats {
  uint64_t uploads, downloads, syncs, submits;
} ebm_transfer_stats;
ebm_transfer_stats ebm_backend_transfer_stats(const ebm_backend *be);

/* ---- buffers and transfers ---------------------------------------------------------------- */

ebm_buffer *ebm_alloc(ebm_backend *be, size_t nfloats); /* zero-filled; NULL on failure */
void ebm_free(ebm_backend *be, ebm_buffer *buf);
size_t ebm_buffer_size(const ebm_buffer *buf); /* floats */
ebm_ref ebm_ref_of(ebm_buffer *buf);

int ebm_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n);
int ebm_download(ebm_backend *be, float *dst, ebm_ref src, size_t n); /* waits for queued work */
int ebm_sync(ebm_backend *be);                                         /* waits for queued work */

/* ---- ops ---------------------------------------------------------------------------------
 * Declared from the op list include/vkebm/ops.def (shapes and formulas are there): each line
 * EBM_OP(name, ...) declares  void ebm_<name>(ebm_backend *be, args...)  with an ebm_ref for
 * each tensor and the plain values in between, e.g.
 *   void ebm_add(ebm_backend *be, ebm_ref y, ebm_ref a, ebm_ref b, size_t n);   y = a + b */

/* Adam hyperparameters for one step. t is the step number after this update (1, 2, ...). */
typedef struct ebm_adam_params {
  float lr, beta1, beta2, eps;
  int64_t t;
  int clip;          /* 1: the paper's per-element clip (below) */
  float grad_scale;  /* every gradient is multiplied by this first (1, or a norm-clip factor) */
} ebm_adam_params;

/* The preprocessor helpers the op list is read with: EBM_PP_MAP(F, SEP, a, b, ...) is
 * F a SEP() F b ... for up to 16 parenthesised arguments. */
#define EBM_PP_CAT(a, b) EBM_PP_CAT_(a, b)
#define EBM_PP_CAT_(a, b) a##b
#define EBM_PP_COMMA() ,
#define EBM_PP_SEMI() ;
#define EBM_PP_NARGS(...) \
  EBM_PP_NARGS_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define EBM_PP_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, \
                      ...)                                                                     \
  N
#define EBM_PP_MAP(F, S, ...) EBM_PP_CAT(EBM_PP_MAP_, EBM_PP_NARGS(__VA_ARGS__))(F, S, __VA_ARGS__)
#define EBM_PP_MAP_1(F, S, a) F a
#define EBM_PP_MAP_2(F, S, a, ...) F a S() EBM_PP_MAP_1(F, S, __VA_ARGS__)
#define EBM_PP_MAP_3(F, S, a, ...) F a S() EBM_PP_MAP_2(F, S, __VA_ARGS__)
#define EBM_PP_MAP_4(F, S, a, ...) F a S() EBM_PP_MAP_3(F, S, __VA_ARGS__)
#define EBM_PP_MAP_5(F, S, a, ...) F a S() EBM_PP_MAP_4(F, S, __VA_ARGS__)
#define EBM_PP_MAP_6(F, S, a, ...) F a S() EBM_PP_MAP_5(F, S, __VA_ARGS__)
#define EBM_PP_MAP_7(F, S, a, ...) F a S() EBM_PP_MAP_6(F, S, __VA_ARGS__)
#define EBM_PP_MAP_8(F, S, a, ...) F a S() EBM_PP_MAP_7(F, S, __VA_ARGS__)
#define EBM_PP_MAP_9(F, S, a, ...) F a S() EBM_PP_MAP_8(F, S, __VA_ARGS__)
#define EBM_PP_MAP_10(F, S, a, ...) F a S() EBM_PP_MAP_9(F, S, __VA_ARGS__)
#define EBM_PP_MAP_11(F, S, a, ...) F a S() EBM_PP_MAP_10(F, S, __VA_ARGS__)
#define EBM_PP_MAP_12(F, S, a, ...) F a S() EBM_PP_MAP_11(F, S, __VA_ARGS__)
#define EBM_PP_MAP_13(F, S, a, ...) F a S() EBM_PP_MAP_12(F, S, __VA_ARGS__)
#define EBM_PP_MAP_14(F, S, a, ...) F a S() EBM_PP_MAP_13(F, S, __VA_ARGS__)
#define EBM_PP_MAP_15(F, S, a, ...) F a S() EBM_PP_MAP_14(F, S, __VA_ARGS__)
#define EBM_PP_MAP_16(F, S, a, ...) F a S() EBM_PP_MAP_15(F, S, __VA_ARGS__)

/* An op argument as the public signature has it: tensors are ebm_refs. */
#define EBM_ARG_PUBLIC(kind, a, b) EBM_ARG_PUBLIC_##kind(a, b)
#define EBM_ARG_PUBLIC_IN(name, extent) ebm_ref name
#define EBM_ARG_PUBLIC_OUT(name, extent) ebm_ref name
#define EBM_ARG_PUBLIC_INOUT(name, extent) ebm_ref name
#define EBM_ARG_PUBLIC_OPT_IN(name, extent) ebm_ref name
#define EBM_ARG_PUBLIC_OPT_OUT(name, extent) ebm_ref name
#define EBM_ARG_PUBLIC_VAL(type, name) type name

#define EBM_OP(name, shape_ok, ...) \
  void ebm_##name(ebm_backend *be, EBM_PP_MAP(EBM_ARG_PUBLIC, EBM_PP_COMMA, __VA_ARGS__));
#include "vkebm/ops.def"
#undef EBM_OP

#endif /* VKEBM_BACKEND_H */
