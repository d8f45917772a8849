/* test_backend_ops.c: every op of the op list (include/vkebm/ops.def) on the vulkan backend
 * against the cpu backend, the way ggml's test-backend-ops walks its op table.
 *
 *   1. Both vtables are complete: every slot the list generates is filled (cpu_<op>, vk_<op>).
 *   2. Every op of the list has at least one case below (a missing one does not compile), and
 *      each case runs through tu_check_op: the tensors and their extents come from the list
 *      itself, outputs are compared with the cpu twin within the case's tolerance, inputs must
 *      stay unchanged, nothing may be written outside a tensor, and the vulkan result must be
 *      bitwise repeatable.
 *   3. The checks backend.c makes once for every op: a tensor outside its buffer or a shape the
 *      op does not accept is refused, and the next sync fails, on both backends.
 * Awkward sizes (1037, 13, 7, odd channel counts) with fixed seeds; tests/test_vk_ops.c and
 * tests/test_vk_sampler.c add many more shapes per op.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "testutil.h"
#include "vkebm/scene.h"

/* ---- from the list: an argument struct, the tensors with their extents, and a call ---------- */

#define FIELD(kind, a, b) FIELD_##kind(a, b)
#define FIELD_TENSOR(name) char tensor_##name
#define FIELD_IN(name, extent) FIELD_TENSOR(name)
#define FIELD_OUT(name, extent) FIELD_TENSOR(name)
#define FIELD_INOUT(name, extent) FIELD_TENSOR(name)
#define FIELD_OPT_IN(name, extent) FIELD_TENSOR(name)
#define FIELD_OPT_OUT(name, extent) FIELD_TENSOR(name)
#define FIELD_VAL(type, name) type name

#define VALUE(kind, a, b) VALUE_##kind(a, b)
#define VALUE_IN(name, extent) (void)0
#define VALUE_OUT(name, extent) (void)0
#define VALUE_INOUT(name, extent) (void)0
#define VALUE_OPT_IN(name, extent) (void)0
#define VALUE_OPT_OUT(name, extent) (void)0
#define VALUE_VAL(type, name) \
  type name = a_->name;           \
  (void)name

#define DESC(kind, a, b) DESC_##kind(a, b)
#define DESC_TENSOR(name, extent, out) ts[k_++] = tensor_desc(op, #name, (extent), out)
#define DESC_IN(name, extent) DESC_TENSOR(name, extent, 0)
#define DESC_OUT(name, extent) DESC_TENSOR(name, extent, 1)
#define DESC_INOUT(name, extent) DESC_TENSOR(name, extent, 1)
#define DESC_OPT_IN(name, extent) DESC_TENSOR(name, extent, 0)
#define DESC_OPT_OUT(name, extent) DESC_TENSOR(name, extent, 1)
#define DESC_VAL(type, name) (void)0

#define BIND(kind, a, b) BIND_##kind(a, b)
#define BIND_IN(name, extent) ebm_ref name = t[k_++]
#define BIND_OUT(name, extent) ebm_ref name = t[k_++]
#define BIND_INOUT(name, extent) ebm_ref name = t[k_++]
#define BIND_OPT_IN(name, extent) ebm_ref name = t[k_++]
#define BIND_OPT_OUT(name, extent) ebm_ref name = t[k_++]
#define BIND_VAL(type, name) type name = a_->name

#define NAME(kind, a, b) NAME_##kind(a, b)
#define NAME_IN(name, extent) name
#define NAME_OUT(name, extent) name
#define NAME_INOUT(name, extent) name
#define NAME_OPT_IN(name, extent) name
#define NAME_OPT_OUT(name, extent) name
#define NAME_VAL(type, name) name

static const float *scene_init; /* valid packed scenes for scene_render's input */

/* Value ranges that keep an op in its domain: positive where the formula divides or takes a
 * root (sigma, tau, precisions, Adam's second moment), masks in [0, 1]. */
static tu_tensor tensor_desc(const char *op, const char *name, size_t n, int out) {
  tu_tensor t = {name, n, out, -1.0f, 1.0f, NULL};
  if (!strcmp(name, "sigma") || !strcmp(name, "tau") || !strcmp(name, "prec") ||
      (!strcmp(op, "adam_step") && !strcmp(name, "v")))
    t.lo = 0.1f;
  if (!strcmp(name, "mask")) t.lo = 0.0f;
  if (!strcmp(name, "scenes")) t.init = scene_init;
  return t;
}

#define EBM_OP(op_, shape_ok, ...)                                                         \
  struct args_##op_ {                                                                      \
    EBM_PP_MAP(FIELD, EBM_PP_SEMI, __VA_ARGS__);                                           \
  };                                                                                       \
  static int tensors_##op_(const void *args, tu_tensor *ts) {                              \
    const struct args_##op_ *a_ = args;                                                    \
    const char *op = #op_;                                                                 \
    int k_ = 0;                                                                            \
    EBM_PP_MAP(VALUE, EBM_PP_SEMI, __VA_ARGS__);                                       \
    EBM_PP_MAP(DESC, EBM_PP_SEMI, __VA_ARGS__);                                            \
    return k_;                                                                             \
  }                                                                                        \
  static void call_##op_(ebm_backend *be, const ebm_ref *t, const int *args) {             \
    const struct args_##op_ *a_ = (const void *)args;                                      \
    int k_ = 0;                                                                            \
    EBM_PP_MAP(BIND, EBM_PP_SEMI, __VA_ARGS__);                                           \
    (void)k_;                                                                              \
    ebm_##op_(be, EBM_PP_MAP(NAME, EBM_PP_COMMA, __VA_ARGS__));                            \
  }
#include "vkebm/ops.def"
#undef EBM_OP

/* ---- the cases: every op of the list needs cases_<op> -------------------------------------- */

typedef struct op_case {
  const void *args;
  double atol, rtol;
} op_case;

#define CASE(op, atol, rtol, ...) {&(const struct args_##op){__VA_ARGS__}, atol, rtol}

static const ebm_adam_params adam_hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f,
                                        .eps = 1e-8f, .t = 3, .clip = 1, .grad_scale = 0.7f};

static const op_case cases_fill[] = {CASE(fill, 0, 0, .v = -0.75f, .n = 1037)};
static const op_case cases_add[] = {CASE(add, 0, 0, .n = 1037)};
static const op_case cases_axpy[] = {CASE(axpy, 1e-7, 1e-6, .alpha = -1.5f, .n = 1037)};
static const op_case cases_scale[] = {CASE(scale, 0, 1e-6, .alpha = 0.3f, .n = 13)};
#define CONV .B = 2, .Ci = 3, .Co = 13, .H = 5, .W = 7
static const op_case cases_conv3x3_forward[] = {CASE(conv3x3_forward, 1e-5, 1e-4, CONV)};
static const op_case cases_conv3x3_backward_input[] = {
    CASE(conv3x3_backward_input, 1e-5, 1e-4, CONV)};
static const op_case cases_conv3x3_backward_weight[] = {
    CASE(conv3x3_backward_weight, 2e-4, 1e-4, CONV)};
static const op_case cases_swish_forward[] = {CASE(swish_forward, 1e-6, 1e-5, .n = 1037)};
static const op_case cases_swish_backward[] = {CASE(swish_backward, 1e-6, 1e-5, .n = 1037)};
static const op_case cases_avgpool2_forward[] = {
    CASE(avgpool2_forward, 1e-7, 1e-6, .B = 2, .C = 3, .H = 6, .W = 10)};
static const op_case cases_avgpool2_backward[] = {
    CASE(avgpool2_backward, 0, 0, .B = 2, .C = 3, .H = 6, .W = 10)};
#define COND .B = 3, .C = 5, .HW = 7, .L = 4
static const op_case cases_cond_bias_forward[] = {CASE(cond_bias_forward, 1e-6, 1e-5, COND)};
static const op_case cases_cond_bias_backward[] = {CASE(cond_bias_backward, 1e-4, 1e-4, COND)};
static const op_case cases_cond_scale_forward[] = {CASE(cond_scale_forward, 1e-6, 1e-5, COND)};
static const op_case cases_cond_scale_backward[] = {CASE(cond_scale_backward, 1e-4, 1e-4, COND)};
static const op_case cases_head_forward[] = {CASE(head_forward, 1e-5, 1e-5, .B = 3, .C = 5, .HW = 7)};
static const op_case cases_head_backward[] = {
    CASE(head_backward, 1e-5, 1e-5, .B = 3, .C = 5, .HW = 7)};
static const op_case cases_spectral_norm_forward[] = {
    CASE(spectral_norm_forward, 1e-5, 1e-4, .rows = 13, .cols = 27, .update_u = 1)};
static const op_case cases_spectral_norm_backward[] = {
    CASE(spectral_norm_backward, 1e-5, 1e-4, .rows = 13, .cols = 27)};
static const op_case cases_sumsq[] = {CASE(sumsq, 1e-5, 1e-5, .n = 1037)};
/* a sub-sample grazing a silhouette may land on the other side (tests/test_vk_scene.c) */
static const op_case cases_scene_render[] = {CASE(scene_render, 0.3, 0, .n = 2, .size = 16)};
#define QUAD .n = 6, .N = 13, .rows_per_group = 3
static const op_case cases_quadratic_energy[] = {CASE(quadratic_energy, 1e-5, 1e-5, QUAD)};
static const op_case cases_quadratic_energy_backward[] = {
    CASE(quadratic_energy_backward, 1e-6, 1e-6, QUAD)};
static const op_case cases_langevin_update[] = {
    CASE(langevin_update, 1e-5, 1e-5, .B = 3, .N = 13, .seed = 7, .step = 2, .step_size = 0.1f,
         .noise_std = 0.05f, .clip_lo = 0.0f, .clip_hi = 1.0f)};
static const op_case cases_langevin_update_at[] = {
    CASE(langevin_update_at, 1e-5, 1e-5, .B = 3, .N = 13, .chain0 = 5, .seed = 7, .step = 2,
         .step_size = 0.1f, .noise_std = 0.05f, .clip_lo = 0.0f, .clip_hi = 1.0f)};
static const op_case cases_mala_propose[] = {
    CASE(mala_propose, 1e-5, 1e-5, .B = 3, .N = 13, .seed = 7, .step = 2)};
static const op_case cases_mala_log_q[] = {CASE(mala_log_q, 1e-4, 1e-5, .B = 3, .N = 13)};
static const op_case cases_chain_select[] = {CASE(chain_select, 0, 0, .B = 4, .N = 13)};
static const op_case cases_softmin_forward[] = {
    CASE(softmin_forward, 1e-5, 1e-5, .K = 3, .B = 13, .T = 0.3f),
    CASE(softmin_forward, 1e-5, 1e-5, .K = 1, .B = 70, .T = 0.01f)};
static const op_case cases_softmin_backward[] = {
    CASE(softmin_backward, 1e-5, 1e-5, .K = 3, .B = 13, .T = 0.3f, .alpha = -1.5f),
    CASE(softmin_backward, 1e-5, 1e-5, .K = 2, .B = 70, .T = 0.01f, .alpha = 1.0f)};
static const op_case cases_adam_step[] = {
    CASE(adam_step, 1e-6, 1e-5, .n = 1037, .hp = &adam_hp),
    CASE(adam_step, 1e-6, 1e-5, .n = 70001, .hp = &adam_hp)}; /* split over the threads */

typedef struct op_entry {
  const char *name;
  size_t slot; /* offset of the op's vtable slot */
  int (*tensors)(const void *args, tu_tensor *ts);
  tu_op_fn call;
  const op_case *cases;
  int ncases;
} op_entry;

static const op_entry ops[] = {
#define EBM_OP(op, shape_ok, ...)                                                          \
  {#op, offsetof(ebm_backend_vtable, op), tensors_##op, call_##op, cases_##op,             \
   (int)(sizeof cases_##op / sizeof cases_##op[0])},
#include "vkebm/ops.def"
#undef EBM_OP
};

/* ---- 1. complete vtables -------------------------------------------------------------------- */

static void check_vtable(const ebm_backend *be) {
  const char *vt = (const char *)be->vt;
  TU_CHECK(sizeof ops / sizeof ops[0] == EBM_OP_COUNT, "the table has %zu ops, the list %d",
           sizeof ops / sizeof ops[0], (int)EBM_OP_COUNT);
  for (int i = 0; i < EBM_OP_COUNT; i++) {
    void (*slot)(void);
    memcpy(&slot, vt + ops[i].slot, sizeof slot);
    TU_CHECK(slot != NULL, "%s backend lacks op %s", be->vt->name, ops[i].name);
  }
  TU_CHECK(be->vt->fail && be->vt->sync && be->vt->upload && be->vt->download,
           "%s backend lacks a lifecycle entry", be->vt->name);
}

/* ---- 3. the checks backend.c makes once for every op ---------------------------------------- */

static void check_refusals(ebm_backend *be) {
  ebm_buffer *b = ebm_alloc(be, 16);
  ebm_ref r = ebm_ref_of(b);
  TU_CHECK(ebm_sync(be) == 0, "%s: clean before", be->vt->name);
  fprintf(stderr, "  (%s: three refused calls follow)\n", be->vt->name);
  ebm_add(be, r, r, ebm_at(r, 8), 9); /* b's range ends at 17 > 16 */
  TU_CHECK(ebm_sync(be) != 0, "%s: a range past the buffer was not refused", be->vt->name);
  ebm_sync(be); /* the vulkan backend reports a failure once */
  ebm_avgpool2_forward(be, r, r, 1, 1, 3, 2); /* H odd */
  TU_CHECK(ebm_sync(be) != 0, "%s: an odd H was not refused", be->vt->name);
  ebm_sync(be);
  ebm_langevin_update(be, EBM_NOREF, EBM_NOREF, 1, 4, 0, 0, 0.0f, 0.1f, 0.0f, 0.0f);
  TU_CHECK(ebm_sync(be) != 0, "%s: a missing tensor was not refused", be->vt->name);
  ebm_free(be, b);
}

int main(void) {
  ebm_backend *cpu = tu_cpu_backend();
  check_vtable(cpu);
  check_refusals(cpu);
  ebm_backend *cpu2 = tu_cpu_backend(); /* check_refusals left the first one failed for good */
  ebm_backend_destroy(cpu);
  ebm_backend *vk = tu_vulkan_backend();
  check_vtable(vk);

  float packed[2 * VKEBM_SCENE_FLOATS];
  scene_spec sp;
  char err[256];
  TU_CHECK(scene_spec_parse("general", &sp, err, sizeof err) == 0, "%s", err);
  scene_sample_packed(&sp, 77, 0, 2, packed);
  scene_init = packed;

  for (int i = 0; i < EBM_OP_COUNT; i++) {
    const op_entry *e = &ops[i];
    TU_CHECK(e->ncases > 0, "op %s has no case", e->name);
    for (int c = 0; c < e->ncases; c++) {
      tu_tensor ts[TU_MAX_TENSORS + 4];
      int nt = e->tensors(e->cases[c].args, ts);
      char label[96];
      snprintf(label, sizeof label, "%s #%d", e->name, c);
      tu_check_op(label, cpu2, vk, e->call, ts, nt, (const int *)e->cases[c].args,
                  e->cases[c].atol, e->cases[c].rtol);
    }
  }
  check_refusals(vk);
  ebm_backend_destroy(cpu2);
  tu_backend_done(vk);
  return tu_finish("test_backend_ops");
}
