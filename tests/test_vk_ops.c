/* test_vk_ops.c: every op of include/vkebm/backend.h on the vulkan backend against the cpu
 * backend (the CPU twins), on awkward sizes (batch 1 and 7, channels 3 and 13, H=W 1, 2, 5, 32,
 * one 64x64 case) with fixed seeds, printing the worst element of every output.
 *
 * Each case goes through tu_check_op (testutil.h): every tensor at float offset 3..66 of its own
 * buffer (below the binding alignment, so the push-constant offsets are exercised) between guard
 * floats that must stay untouched; outputs start from random values, so an op that accumulates
 * where it should overwrite (or the reverse) disagrees with the cpu backend; each vulkan case runs
 * twice from the same inputs and must give the same bits. Optional outputs are also left out
 * (EBM_NOREF) in some cases. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- ops as tu_op_fn (s = the shape arguments) ---------------------------------------------- */

static void op_fill(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_fill(be, t[0], -0.75f, (size_t)s[0]); }
static void op_add(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_add(be, t[0], t[1], t[2], (size_t)s[0]); }
static void op_add_inplace(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_add(be, t[0], t[0], t[1], (size_t)s[0]); }
static void op_axpy(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_axpy(be, t[0], -1.5f, t[1], (size_t)s[0]); }
static void op_scale(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_scale(be, t[0], 0.3f, t[1], (size_t)s[0]); }
static void op_swish_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_swish_forward(be, t[0], t[1], (size_t)s[0]); }
static void op_swish_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_swish_backward(be, t[0], t[1], t[2], (size_t)s[0]); }
static void op_pool_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_avgpool2_forward(be, t[0], t[1], s[0], s[1], s[2], s[3]); }
static void op_pool_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_avgpool2_backward(be, t[0], t[1], s[0], s[1], s[2], s[3]); }
static void op_conv_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_conv3x3_forward(be, t[0], t[1], t[2], s[0], s[1], s[2], s[3], s[4]); }
static void op_conv_bi(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_conv3x3_backward_input(be, t[0], t[1], t[2], s[0], s[1], s[2], s[3], s[4]); }
static void op_conv_bw(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_conv3x3_backward_weight(be, t[0], t[1], t[2], s[0], s[1], s[2], s[3], s[4]); }
static void op_cb_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_cond_bias_forward(be, t[0], t[1], t[2], t[3], s[0], s[1], s[2], s[3]); }
static void op_cb_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_cond_bias_backward(be, t[0], t[1], t[2], t[3], t[4], s[0], s[1], s[2], s[3]); }
static void op_cs_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_cond_scale_forward(be, t[0], t[1], t[2], t[3], t[4], s[0], s[1], s[2], s[3]); }
static void op_cs_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_cond_scale_backward(be, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], s[0], s[1], s[2], s[3]); }
static void op_head_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_head_forward(be, t[0], t[1], t[2], t[3], s[0], s[1], s[2]); }
static void op_head_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_head_backward(be, t[0], t[1], t[2], t[3], t[4], t[5], s[0], s[1], s[2]); }
static void op_sn_f(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_spectral_norm_forward(be, t[0], t[1], t[2], t[3], t[4], s[0], s[1], s[2]); }
static void op_sn_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_spectral_norm_backward(be, t[0], t[1], t[2], t[3], t[4], t[5], s[0], s[1]); }
static void op_sumsq(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_sumsq(be, t[0], t[1], (size_t)s[0]); }

#define CHECK(label, fn, shape, atol, rtol, ...) \
  TU_CHECK_OP(cpu, vk, label, fn, shape, atol, rtol, __VA_ARGS__)
#define T(name, n, out) {name, (size_t)(n), out, -1.0f, 1.0f}
#define TP(name, n, out) {name, (size_t)(n), out, 0.1f, 1.0f} /* positive (sigma) */

static void elementwise(ebm_backend *cpu, ebm_backend *vk) {
  const int sizes[] = {1, 7, 1000, 70001};
  for (int k = 0; k < 4; k++) {
    const int s[] = {sizes[k]};
    size_t n = (size_t)sizes[k];
    char l[64];
    snprintf(l, sizeof l, "fill n=%zu", n);
    CHECK(l, op_fill, s, 0, 0, T("y", n, 1));
    snprintf(l, sizeof l, "add n=%zu", n);
    CHECK(l, op_add, s, 0, 0, T("y", n, 1), T("a", n, 0), T("b", n, 0));
    snprintf(l, sizeof l, "add in place n=%zu", n);
    CHECK(l, op_add_inplace, s, 0, 0, T("y", n, 1), T("b", n, 0));
    snprintf(l, sizeof l, "axpy n=%zu", n);
    CHECK(l, op_axpy, s, 1e-7, 1e-6, T("y", n, 1), T("x", n, 0));
    snprintf(l, sizeof l, "scale n=%zu", n);
    CHECK(l, op_scale, s, 0, 1e-6, T("y", n, 1), T("x", n, 0));
    snprintf(l, sizeof l, "swish_forward n=%zu", n);
    CHECK(l, op_swish_f, s, 1e-6, 1e-5, T("y", n, 1), {"x", n, 0, -8.0f, 8.0f});
    snprintf(l, sizeof l, "swish_backward n=%zu", n);
    CHECK(l, op_swish_b, s, 1e-6, 1e-5, T("dx", n, 1), T("dy", n, 0), {"x", n, 0, -8.0f, 8.0f});
  }
  /* more than 65535 groups of 256: the 2D grid of vkb_grid_1d */
  const int big[] = {65536 * 256 + 5};
  CHECK("scale n=16M+5 (2D grid)", op_scale, big, 0, 1e-6, T("y", big[0], 1), T("x", big[0], 0));
}

static void pooling(ebm_backend *cpu, ebm_backend *vk) {
  const int shapes[][4] = {{1, 3, 2, 2}, {7, 13, 32, 32}, {1, 1, 64, 64}, {2, 3, 6, 10}};
  for (int k = 0; k < 4; k++) {
    const int *s = shapes[k];
    size_t in = (size_t)s[0] * s[1] * s[2] * s[3];
    char l[64];
    snprintf(l, sizeof l, "avgpool2_forward %dx%dx%dx%d", s[0], s[1], s[2], s[3]);
    CHECK(l, op_pool_f, s, 1e-7, 1e-6, T("y", in / 4, 1), T("x", in, 0));
    snprintf(l, sizeof l, "avgpool2_backward %dx%dx%dx%d", s[0], s[1], s[2], s[3]);
    CHECK(l, op_pool_b, s, 0, 0, T("dx", in, 1), T("dy", in / 4, 0));
  }
}

static void convs(ebm_backend *cpu, ebm_backend *vk, const char *path, int nshapes) {
  /* B, Ci, Co, H, W (the first two also fit the small bindings of the chunked pass) */
  const int shapes[][5] = {{7, 13, 13, 5, 5}, {3, 13, 13, 32, 32}, {1, 3, 13, 5, 5},
                           {7, 13, 3, 2, 2}, {1, 1, 1, 1, 1}, {7, 3, 3, 1, 1},
                           {1, 3, 17, 64, 64}, {1, 9, 5, 7, 11}};
  for (int k = 0; k < nshapes; k++) {
    const int *s = shapes[k];
    size_t x = (size_t)s[0] * s[1] * s[3] * s[4], y = (size_t)s[0] * s[2] * s[3] * s[4],
           w = (size_t)s[1] * s[2] * 9;
    char l[80];
    snprintf(l, sizeof l, "conv3x3_forward%s B%d %d->%d %dx%d", path, s[0], s[1], s[2], s[3], s[4]);
    CHECK(l, op_conv_f, s, 1e-5, 1e-4, T("y", y, 1), T("x", x, 0), T("w", w, 0));
    snprintf(l, sizeof l, "conv3x3_backward_input%s B%d %d->%d %dx%d", path, s[0], s[1], s[2], s[3], s[4]);
    CHECK(l, op_conv_bi, s, 1e-5, 1e-4, T("dx", x, 1), T("dy", y, 0), T("w", w, 0));
    snprintf(l, sizeof l, "conv3x3_backward_weight%s B%d %d->%d %dx%d", path, s[0], s[1], s[2], s[3], s[4]);
    CHECK(l, op_conv_bw, s, 2e-4, 1e-4, T("dw", w, 1), T("dy", y, 0), T("x", x, 0));
  }
}

static void conditioning(ebm_backend *cpu, ebm_backend *vk) {
  /* B, C, HW, L */
  const int shapes[][4] = {{1, 3, 1, 1}, {7, 13, 25, 10}, {2, 64, 1024, 5}, {7, 3, 4, 13}};
  for (int k = 0; k < 4; k++) {
    const int *s = shapes[k];
    size_t n = (size_t)s[0] * s[1] * s[2], bl = (size_t)s[0] * s[3], lc = (size_t)s[3] * s[1],
           bc = (size_t)s[0] * s[1], C = (size_t)s[1];
    char l[80];
    snprintf(l, sizeof l, "cond_bias_forward B%d C%d HW%d L%d", s[0], s[1], s[2], s[3]);
    CHECK(l, op_cb_f, s, 1e-6, 1e-5, T("y", n, 1), T("x", n, 0), T("c", bl, 0), T("G", lc, 0));
    snprintf(l, sizeof l, "cond_bias_backward B%d C%d HW%d L%d", s[0], s[1], s[2], s[3]);
    CHECK(l, op_cb_b, s, 1e-4, 1e-4, T("dG", lc, 1), T("dc", k == 3 ? 0 : bl, 1), T("dy", n, 0),
          T("c", bl, 0), T("G", lc, 0));
    snprintf(l, sizeof l, "cond_scale_forward B%d C%d HW%d L%d", s[0], s[1], s[2], s[3]);
    CHECK(l, op_cs_f, s, 1e-6, 1e-5, T("y", n, 1), T("x", n, 0), T("c", bl, 0), T("G", lc, 0),
          T("CB", C, 0));
    snprintf(l, sizeof l, "cond_scale_backward B%d C%d HW%d L%d", s[0], s[1], s[2], s[3]);
    CHECK(l, op_cs_b, s, 1e-4, 1e-4, T("dx", n, 1), T("dG", lc, 1), T("dCB", k == 1 ? 0 : C, 1),
          T("dc", k == 3 ? 0 : bl, 1), T("dy", n, 0), T("x", n, 0), T("c", bl, 0), T("G", lc, 0),
          T("CB", C, 0));
    (void)bc;
  }
}

static void head(ebm_backend *cpu, ebm_backend *vk) {
  const int shapes[][3] = {{1, 3, 1}, {7, 13, 25}, {16, 64, 64}};
  for (int k = 0; k < 3; k++) {
    const int *s = shapes[k];
    size_t n = (size_t)s[0] * s[1] * s[2], B = (size_t)s[0], C = (size_t)s[1];
    char l[80];
    snprintf(l, sizeof l, "head_forward B%d C%d HW%d", s[0], s[1], s[2]);
    CHECK(l, op_head_f, s, 1e-5, 1e-5, T("e", B, 1), T("x", n, 0), T("w", C, 0), T("bias", 1, 0));
    snprintf(l, sizeof l, "head_backward B%d C%d HW%d", s[0], s[1], s[2]);
    CHECK(l, op_head_b, s, 1e-5, 1e-5, T("dx", n, 1), T("dw", C, 1), T("dbias", k == 1 ? 0 : 1, 1),
          T("de", B, 0), T("x", n, 0), T("w", C, 0));
  }
}

static void spectral(ebm_backend *cpu, ebm_backend *vk) {
  const int shapes[][3] = {{1, 1, 1}, {3, 27, 0}, {13, 117, 1}, {64, 576, 1}, {300, 9, 1}};
  for (int k = 0; k < 5; k++) {
    const int *s = shapes[k];
    size_t n = (size_t)s[0] * s[1], R = (size_t)s[0], K = (size_t)s[1];
    char l[80];
    snprintf(l, sizeof l, "spectral_norm_forward %dx%d update_u=%d", s[0], s[1], s[2]);
    CHECK(l, op_sn_f, s, 1e-5, 1e-4, T("w_sn", n, 1), T("u", R, 1), T("v", K, 1), T("sigma", 1, 1),
          T("w", n, 0));
    snprintf(l, sizeof l, "spectral_norm_backward %dx%d", s[0], s[1]);
    CHECK(l, op_sn_b, s, 1e-5, 1e-4, T("dw", n, 1), T("dw_sn", n, 0), T("w_sn", n, 0), T("u", R, 0),
          T("v", K, 0), TP("sigma", 1, 0));
  }
}

static void reductions(ebm_backend *cpu, ebm_backend *vk) {
  const int sizes[] = {1, 1000, 4096, 4097, 3 * 4096 * 5 + 17};
  for (int k = 0; k < 5; k++) {
    const int s[] = {sizes[k]};
    char l[64];
    snprintf(l, sizeof l, "sumsq n=%d", sizes[k]);
    CHECK(l, op_sumsq, s, 1e-5, 1e-5, T("out", 1, 1), T("x", sizes[k], 0));
  }
}

static void chunked(ebm_backend *cpu, ebm_backend *vk) {
  const int s[] = {70001};
  size_t n = 70001;
  CHECK("fill chunked", op_fill, s, 0, 0, T("y", n, 1));
  CHECK("add chunked", op_add, s, 0, 0, T("y", n, 1), T("a", n, 0), T("b", n, 0));
  CHECK("axpy chunked", op_axpy, s, 1e-7, 1e-6, T("y", n, 1), T("x", n, 0));
  CHECK("scale chunked", op_scale, s, 0, 1e-6, T("y", n, 1), T("x", n, 0));
  CHECK("swish_forward chunked", op_swish_f, s, 1e-6, 1e-5, T("y", n, 1), {"x", n, 0, -8.0f, 8.0f});
  CHECK("swish_backward chunked", op_swish_b, s, 1e-6, 1e-5, T("dx", n, 1), T("dy", n, 0),
        {"x", n, 0, -8.0f, 8.0f});
  const int big[] = {3 * 4096 * 5 + 17};
  CHECK("sumsq chunked", op_sumsq, big, 1e-5, 1e-5, T("out", 1, 1), T("x", big[0], 0));
}

int main(void) {
  ebm_backend *vk = tu_vulkan_backend();
  ebm_backend *cpu = tu_cpu_backend();
  elementwise(cpu, vk);
  pooling(cpu, vk);
  convs(cpu, vk, "", 8);
  conditioning(cpu, vk);
  head(cpu, vk);
  spectral(cpu, vk);
  reductions(cpu, vk);
  tu_backend_done(vk);
  /* the convolutions' storage-buffer path (used where a tensor exceeds maxTexelBufferElements) */
  setenv("VKEBM_NO_TEXEL", "1", 1);
  vk = tu_vulkan_backend();
  convs(cpu, vk, " ssbo", 8);
  tu_backend_done(vk);
  /* tensors larger than one binding: elementwise ops and sumsq in ranges, convs by batch */
  setenv("VKEBM_NO_TEXEL", "0", 1);
  setenv("VKEBM_MAX_BINDING_FLOATS", "20000", 1);
  vk = tu_vulkan_backend();
  convs(cpu, vk, " chunked", 2);
  chunked(cpu, vk);
  tu_backend_done(vk);
  /* the strictest alignment the spec allows (256 bytes): remainders up to 63 floats */
  unsetenv("VKEBM_MAX_BINDING_FLOATS");
  setenv("VKEBM_OFFSET_ALIGNMENT", "256", 1);
  vk = tu_vulkan_backend();
  convs(cpu, vk, " align256", 3);
  chunked(cpu, vk);
  conditioning(cpu, vk);
  head(cpu, vk);
  spectral(cpu, vk);
  tu_backend_done(vk);
  ebm_backend_destroy(cpu);
  return tu_finish("test_vk_ops");
}
