/* test_vk_net.c: the whole energy network on the vulkan backend against the cpu backend.
 *
 * Same parameters and u on both (copied from the cpu net), label maps set non-zero, then
 * energy, dE/dx, dE/dc and dE/dθ (every parameter tensor, spectral norm included) compared on
 * the tiny configuration and a small 32x32 one (R32 W8 blocks 1d,2d,2d), batch 1 and 3.
 * Tolerance: both run float32 with different summation orders (BLAS blocking on the cpu,
 * workgroup tiling on the device), so values agree to rounding amplified by depth: each tensor
 * passes when |vk - cpu| <= 1e-4 * max|cpu| + 1e-3 * |cpu| elementwise (scaled by the tensor's
 * largest element, because gradients near zero have no meaningful relative error).
 * Also: two identical vulkan runs give bitwise-equal results, and the validation layer
 * reports nothing. Skips (77) without a Vulkan device.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/net.h"

#define L 2
#define ATOL_SCALE 1e-4
#define RTOL 1e-3

typedef struct side {
  ebm_backend *be;
  ebm_net *net;
  ebm_buffer *x, *c, *e, *de, *dx, *dc;
} side;

typedef struct outputs {
  float *e, *dx, *dc, *g;
} outputs;

static void side_open(side *s, ebm_backend *be, const ebm_net_config *cfg, int B) {
  char err[256];
  s->be = be;
  if (ebm_net_create(&s->net, be, cfg, B, 3, err, sizeof err)) {
    fprintf(stderr, "net create on %s: %s\n", ebm_backend_name(be), err);
    exit(1);
  }
  size_t nx = (size_t)B * cfg->in_channels * cfg->resolution * cfg->resolution;
  s->x = ebm_alloc(be, nx);
  s->dx = ebm_alloc(be, nx);
  s->c = ebm_alloc(be, (size_t)B * L);
  s->dc = ebm_alloc(be, (size_t)B * L);
  s->e = ebm_alloc(be, (size_t)B);
  s->de = ebm_alloc(be, (size_t)B);
}

static void side_close(side *s) {
  ebm_buffer *b[] = {s->x, s->dx, s->c, s->dc, s->e, s->de};
  for (int i = 0; i < 6; i++) ebm_free(s->be, b[i]);
  ebm_net_destroy(s->net);
}

static void run(side *s, const float *x, const float *c, const float *de, int B, size_t nx,
                outputs *o) {
  size_t np = ebm_net_param_count(s->net);
  ebm_upload(s->be, ebm_ref_of(s->x), x, nx);
  ebm_upload(s->be, ebm_ref_of(s->c), c, (size_t)B * L);
  ebm_upload(s->be, ebm_ref_of(s->de), de, (size_t)B);
  ebm_net_forward(s->net, ebm_ref_of(s->e), ebm_ref_of(s->x), ebm_ref_of(s->c), B);
  ebm_net_zero_grads(s->net);
  ebm_net_backward(s->net, ebm_ref_of(s->de), ebm_ref_of(s->dx), ebm_ref_of(s->dc), 1, B);
  o->e = malloc((size_t)B * 4);
  o->dx = malloc(nx * 4);
  o->dc = malloc((size_t)B * L * 4);
  o->g = malloc(np * 4);
  TU_CHECK(ebm_download(s->be, o->e, ebm_ref_of(s->e), (size_t)B) == 0, "download e");
  TU_CHECK(ebm_download(s->be, o->dx, ebm_ref_of(s->dx), nx) == 0, "download dx");
  TU_CHECK(ebm_download(s->be, o->dc, ebm_ref_of(s->dc), (size_t)B * L) == 0, "download dc");
  TU_CHECK(ebm_download(s->be, o->g, ebm_net_grads(s->net), np) == 0, "download grads");
}

static void outputs_free(outputs *o) {
  free(o->e);
  free(o->dx);
  free(o->dc);
  free(o->g);
}

static void compare(const char *label, const float *got, const float *want, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(want[i]));
  tu_compare(label, got, want, n, ATOL_SCALE * m + 1e-12, RTOL);
}

static void check_case(ebm_backend *cpu, ebm_backend *vk, const ebm_net_config *cfg,
                       const char *name, int B) {
  fprintf(stderr, "%s, batch %d\n", name, B);
  side a, b;
  side_open(&a, cpu, cfg, B);
  side_open(&b, vk, cfg, B);
  size_t np = ebm_net_param_count(a.net), nu = ebm_net_sn_u_count(a.net);
  float *p = malloc(np * 4), *u = malloc((nu ? nu : 1) * 4);
  ebm_net_get_params(a.net, p, u);
  for (int i = 0; i < ebm_net_num_params(a.net); i++) {
    const ebm_param *q = ebm_net_param(a.net, i);
    if (q->kind == EBM_PARAM_CONV) continue;
    float *tmp = malloc(q->numel * 4);
    tu_fill_uniform(tmp, q->numel, 200 + (uint32_t)i, -0.3f, 0.3f);
    for (size_t j = 0; j < q->numel; j++) p[q->offset + j] += tmp[j];
    free(tmp);
  }
  TU_CHECK(ebm_net_set_params(a.net, p, u) == 0 && ebm_net_set_params(b.net, p, u) == 0,
           "set params");
  size_t nx = (size_t)B * cfg->in_channels * cfg->resolution * cfg->resolution;
  float *x = malloc(nx * 4), c[64 * L], de[64];
  tu_fill_uniform(x, nx, 31, 0.0f, 1.0f);
  tu_fill_uniform(c, (size_t)B * L, 32, -1.0f, 1.0f);
  for (int i = 0; i < B; i++) de[i] = 1.0f - 0.3f * (float)i;

  outputs oc, ov, ov2;
  run(&a, x, c, de, B, nx, &oc);
  run(&b, x, c, de, B, nx, &ov);
  compare("energy", ov.e, oc.e, (size_t)B);
  compare("dE/dx", ov.dx, oc.dx, nx);
  compare("dE/dc", ov.dc, oc.dc, (size_t)B * L);
  for (int i = 0; i < ebm_net_num_params(a.net); i++) {
    const ebm_param *q = ebm_net_param(a.net, i);
    char label[80];
    snprintf(label, sizeof label, "dE/d %s", q->name);
    compare(label, ov.g + q->offset, oc.g + q->offset, q->numel);
  }
  run(&b, x, c, de, B, nx, &ov2);
  TU_CHECK(!memcmp(ov.e, ov2.e, (size_t)B * 4) && !memcmp(ov.dx, ov2.dx, nx * 4) &&
               !memcmp(ov.dc, ov2.dc, (size_t)B * L * 4) && !memcmp(ov.g, ov2.g, np * 4),
           "%s batch %d: two identical vulkan runs differ", name, B);
  outputs_free(&oc);
  outputs_free(&ov);
  outputs_free(&ov2);
  free(x);
  free(p);
  free(u);
  side_close(&a);
  side_close(&b);
}

int main(void) {
  ebm_backend *vk = tu_vulkan_backend(); /* exits 77 without a device */
  ebm_backend *cpu = tu_cpu_backend();
  ebm_net_config tiny, small;
  ebm_net_config_preset(&tiny, "tiny", L);
  ebm_net_config_preset(&small, "default32", L);
  small.base_width = 8;
  ebm_net_config_parse_blocks(&small, "1d,2d,2d");
  int batches[2] = {1, 3};
  for (int i = 0; i < 2; i++) check_case(cpu, vk, &tiny, "tiny (R8 W4 1d,2,2d)", batches[i]);
  for (int i = 0; i < 2; i++) check_case(cpu, vk, &small, "small (R32 W8 1d,2d,2d)", batches[i]);
  small.head_flatten = 1;
  check_case(cpu, vk, &small, "small, flatten head", 3);
  small.coord_channels = 1;
  check_case(cpu, vk, &small, "small, flatten head and coordinate planes", 3);
  small.head_label = 1;
  check_case(cpu, vk, &small, "small, flatten head, coordinate planes and label head", 3);
  tiny.head_label = 1;
  check_case(cpu, vk, &tiny, "tiny, mean head with label gain", 3);
  tiny.in_shift = 0.4f, tiny.in_scale = 3.0f;
  check_case(cpu, vk, &tiny, "tiny, label gain and standardised input", 3);
  small.in_shift = 0.4f, small.in_scale = 3.0f;
  check_case(cpu, vk, &small, "small, every option", 3);
  ebm_backend_destroy(cpu);
  tu_backend_done(vk);
  return tu_finish("test_vk_net");
}
