/* test_vk_grad.c: finite-difference checks of the vulkan backend's backward ops against its own
 * forward ops. For an op y = f(inputs) and a fixed random r, L = <r, y>; the backward op run
 * with dy = r gives dL/d(input). For every input a random direction d is checked:
 *   (L(input + eps d) - L(input - eps d)) / (2 eps)  ~=  <dL/d(input), d>
 * (inner products in double on the host). Parameter gradients accumulate, so they start at 0.
 * Spectral norm is left out: its backward holds u, v constant (PyTorch's convention), which is
 * not the derivative of its forward pass; test_vk_ops compares it with the cpu twin instead. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAXIN 4

typedef struct grad_case {
  const char *name;
  int nin;                 /* differentiable inputs */
  size_t in_n[MAXIN];      /* their sizes */
  size_t out_n;            /* output size */
  int s[5];                /* shape arguments */
  void (*forward)(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s);
  /* writes dL/d(in[i]) into g[i] (zeroed first), given dy */
  void (*backward)(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s);
} grad_case;

static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
  return s;
}

static double loss(ebm_backend *be, const grad_case *c, ebm_buffer **inb, float **in, ebm_buffer *yb,
                   const float *r) {
  ebm_ref refs[MAXIN];
  for (int i = 0; i < c->nin; i++) {
    ebm_upload(be, ebm_ref_of(inb[i]), in[i], c->in_n[i]);
    refs[i] = ebm_ref_of(inb[i]);
  }
  c->forward(be, ebm_ref_of(yb), refs, c->s);
  float *y = malloc(c->out_n * sizeof *y);
  ebm_download(be, y, ebm_ref_of(yb), c->out_n);
  double l = dot(r, y, c->out_n);
  free(y);
  return l;
}

static void check_case(ebm_backend *be, const grad_case *c, uint32_t seed) {
  ebm_buffer *inb[MAXIN], *gb[MAXIN], *yb = ebm_alloc(be, c->out_n), *rb = ebm_alloc(be, c->out_n);
  float *in[MAXIN], *d[MAXIN], *g[MAXIN], *r = malloc(c->out_n * sizeof *r);
  tu_fill_uniform(r, c->out_n, seed, -1, 1);
  ebm_upload(be, ebm_ref_of(rb), r, c->out_n);
  ebm_ref refs[MAXIN], grefs[MAXIN];
  for (int i = 0; i < c->nin; i++) {
    in[i] = malloc(c->in_n[i] * sizeof(float));
    d[i] = malloc(c->in_n[i] * sizeof(float));
    g[i] = malloc(c->in_n[i] * sizeof(float));
    tu_fill_uniform(in[i], c->in_n[i], seed + 10u + (uint32_t)i, -1, 1);
    tu_fill_uniform(d[i], c->in_n[i], seed + 20u + (uint32_t)i, -1, 1);
    inb[i] = ebm_alloc(be, c->in_n[i]);
    gb[i] = ebm_alloc(be, c->in_n[i]);
    ebm_upload(be, ebm_ref_of(inb[i]), in[i], c->in_n[i]);
    refs[i] = ebm_ref_of(inb[i]);
    grefs[i] = ebm_ref_of(gb[i]);
  }
  c->backward(be, grefs, ebm_ref_of(rb), refs, c->s);
  for (int i = 0; i < c->nin; i++) ebm_download(be, g[i], grefs[i], c->in_n[i]);
  for (int i = 0; i < c->nin; i++) {
    const float eps = 1e-2f;
    float *save = malloc(c->in_n[i] * sizeof(float));
    memcpy(save, in[i], c->in_n[i] * sizeof(float));
    for (size_t k = 0; k < c->in_n[i]; k++) in[i][k] = save[k] + eps * d[i][k];
    double lp = loss(be, c, inb, in, yb, r);
    for (size_t k = 0; k < c->in_n[i]; k++) in[i][k] = save[k] - eps * d[i][k];
    double lm = loss(be, c, inb, in, yb, r);
    memcpy(in[i], save, c->in_n[i] * sizeof(float));
    free(save);
    float fd = (float)((lp - lm) / (2.0 * eps)), an = (float)dot(g[i], d[i], c->in_n[i]);
    char label[96];
    snprintf(label, sizeof label, "%s d/d(input %d)", c->name, i);
    /* float32 forward passes: the difference quotient carries ~1e-6 * |L| / eps of noise */
    tu_compare(label, &an, &fd, 1, 2e-5 * (1.0 + fabs(lp)), 1e-4);
  }
  for (int i = 0; i < c->nin; i++) {
    ebm_free(be, inb[i]);
    ebm_free(be, gb[i]);
    free(in[i]);
    free(d[i]);
    free(g[i]);
  }
  ebm_free(be, yb);
  ebm_free(be, rb);
  free(r);
}

/* ---- the ops as forward/backward pairs ------------------------------------------------------ */

static void zero(ebm_backend *be, const ebm_ref *g, const grad_case *c, int nin) {
  for (int i = 0; i < nin; i++) ebm_fill(be, g[i], 0.0f, c->in_n[i]);
}

/* conv: in = x [B,Ci,H,W], w [Co,Ci,3,3]; s = B, Ci, Co, H, W */
static void conv_f(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s) {
  ebm_conv3x3_forward(be, y, in[0], in[1], s[0], s[1], s[2], s[3], s[4]);
}
static grad_case conv_case;
static void conv_b(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s) {
  zero(be, g, &conv_case, 2);
  ebm_conv3x3_backward_input(be, g[0], dy, in[1], s[0], s[1], s[2], s[3], s[4]);
  ebm_conv3x3_backward_weight(be, g[1], dy, in[0], s[0], s[1], s[2], s[3], s[4]);
}

static void swish_f(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s) {
  ebm_swish_forward(be, y, in[0], (size_t)s[0]);
}
static void swish_b(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s) {
  ebm_swish_backward(be, g[0], dy, in[0], (size_t)s[0]);
}

static void pool_f(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s) {
  ebm_avgpool2_forward(be, y, in[0], s[0], s[1], s[2], s[3]);
}
static void pool_b(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s) {
  ebm_avgpool2_backward(be, g[0], dy, s[0], s[1], s[2], s[3]);
}

/* cond_bias: in = x [B,C,HW], c [B,L], G [L,C]; s = B, C, HW, L. dx = dy (the op's contract). */
static grad_case cb_case;
static void cb_f(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s) {
  ebm_cond_bias_forward(be, y, in[0], in[1], in[2], s[0], s[1], s[2], s[3]);
}
static void cb_b(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s) {
  zero(be, g, &cb_case, 3);
  ebm_scale(be, g[0], 1.0f, dy, cb_case.in_n[0]);
  ebm_cond_bias_backward(be, g[2], g[1], dy, in[1], in[2], s[0], s[1], s[2], s[3]);
}

/* cond_scale: in = x, c, G, CB */
static grad_case cs_case;
static void cs_f(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s) {
  ebm_cond_scale_forward(be, y, in[0], in[1], in[2], in[3], s[0], s[1], s[2], s[3]);
}
static void cs_b(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s) {
  zero(be, g, &cs_case, 4);
  ebm_cond_scale_backward(be, g[0], g[2], g[3], g[1], dy, in[0], in[1], in[2], in[3], s[0], s[1],
                          s[2], s[3]);
}

/* head: in = x [B,C,HW], w [C], bias [1]; y = e [B] */
static grad_case head_case;
static void head_f(ebm_backend *be, ebm_ref y, const ebm_ref *in, const int *s) {
  ebm_head_forward(be, y, in[0], in[1], in[2], s[0], s[1], s[2]);
}
static void head_b(ebm_backend *be, const ebm_ref *g, ebm_ref dy, const ebm_ref *in, const int *s) {
  zero(be, g, &head_case, 3);
  ebm_head_backward(be, g[0], g[1], g[2], dy, in[0], in[1], s[0], s[1], s[2]);
}

int main(void) {
  ebm_backend *be = tu_vulkan_backend();
  /* B, Ci, Co, H, W = 3, 5, 7, 6, 5 */
  conv_case = (grad_case){"conv3x3", 2, {3 * 5 * 30, 7 * 5 * 9}, 3 * 7 * 30, {3, 5, 7, 6, 5}, conv_f, conv_b};
  check_case(be, &conv_case, 1);
  grad_case sw = {"swish", 1, {1001}, 1001, {1001}, swish_f, swish_b};
  check_case(be, &sw, 2);
  grad_case pool = {"avgpool2", 1, {2 * 3 * 6 * 4}, 2 * 3 * 3 * 2, {2, 3, 6, 4}, pool_f, pool_b};
  check_case(be, &pool, 3);
  /* B, C, HW, L = 7, 13, 5, 3 */
  cb_case = (grad_case){"cond_bias", 3, {7 * 13 * 5, 7 * 3, 3 * 13}, 7 * 13 * 5, {7, 13, 5, 3}, cb_f, cb_b};
  check_case(be, &cb_case, 4);
  cs_case = (grad_case){"cond_scale", 4, {7 * 13 * 5, 7 * 3, 3 * 13, 13}, 7 * 13 * 5, {7, 13, 5, 3}, cs_f, cs_b};
  check_case(be, &cs_case, 5);
  /* B, C, HW = 7, 13, 9 */
  head_case = (grad_case){"head", 3, {7 * 13 * 9, 13, 1}, 7, {7, 13, 9}, head_f, head_b};
  check_case(be, &head_case, 6);
  tu_backend_done(be);
  return tu_finish("test_vk_grad");
}
