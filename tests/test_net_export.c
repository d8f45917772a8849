/* test_net_export.c: a network with every parameter randomised (so the label conditioning and
 * the spectral norm do real work) survives a model-file round trip bit for bit, and, with
 * --export DIR PRESET [cpu|vulkan], writes DIR/model.safetensors plus DIR/io.safetensors (x, c,
 * energy, dx, dc from that backend; exit 77 when vulkan has no device) for tests/cli/torch_net_xcheck.sh, which recomputes them with the
 * independent PyTorch network in tools/bench_torch.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/model.h"
#include "vkebm/net.h"
#include "vkebm/safetensors.h"

#define B 3
#define L 3

typedef struct outputs {
  float *x, *c, *e, *dx, *dc;
  size_t nx;
} outputs;

/* energy, dE/dx and dE/dc for fixed inputs (dE = 1 per image). */
static int run_net(ebm_backend *be, ebm_net *net, outputs *o) {
  const ebm_net_config *cfg = ebm_net_config_of(net);
  size_t nx = (size_t)B * 3 * cfg->resolution * cfg->resolution;
  o->nx = nx;
  o->x = malloc(nx * sizeof(float));
  o->dx = malloc(nx * sizeof(float));
  o->c = malloc(B * L * sizeof(float));
  o->dc = malloc(B * L * sizeof(float));
  o->e = malloc(B * sizeof(float));
  tu_fill_uniform(o->x, nx, 11, 0.0f, 1.0f);
  tu_fill_uniform(o->c, B * L, 12, -1.0f, 1.0f);
  ebm_buffer *bx = ebm_alloc(be, nx), *bdx = ebm_alloc(be, nx), *bc = ebm_alloc(be, B * L),
             *bdc = ebm_alloc(be, B * L), *be_ = ebm_alloc(be, B), *bde = ebm_alloc(be, B);
  if (!bx || !bdx || !bc || !bdc || !be_ || !bde) return -1;
  float ones[B] = {1, 1, 1};
  int rc = ebm_upload(be, ebm_ref_of(bx), o->x, nx) || ebm_upload(be, ebm_ref_of(bc), o->c, B * L) ||
           ebm_upload(be, ebm_ref_of(bde), ones, B);
  ebm_net_forward(net, ebm_ref_of(be_), ebm_ref_of(bx), ebm_ref_of(bc), B);
  /* param_grads = 1 (into the net's grads, unused here): with 0 and dc requested, the cpu
   * backend's cond_bias_backward refuses the absent dG (reported to the integrator). */
  ebm_net_zero_grads(net);
  ebm_net_backward(net, ebm_ref_of(bde), ebm_ref_of(bdx), ebm_ref_of(bdc), 1, B);
  rc = rc || ebm_download(be, o->e, ebm_ref_of(be_), B) || ebm_download(be, o->dx, ebm_ref_of(bdx), nx) ||
       ebm_download(be, o->dc, ebm_ref_of(bdc), B * L);
  ebm_free(be, bx), ebm_free(be, bdx), ebm_free(be, bc), ebm_free(be, bdc), ebm_free(be, be_),
      ebm_free(be, bde);
  return rc ? -1 : 0;
}

static void free_outputs(outputs *o) {
  free(o->x), free(o->c), free(o->e), free(o->dx), free(o->dc);
}

/* Every parameter random: conv weights around Kaiming scale, label maps and CB2 away from
 * their identity init, a non-zero head bias. u keeps the net's own initialisation. */
static int randomise(ebm_net *net) {
  size_t np = ebm_net_param_count(net);
  float *p = calloc(np, sizeof(float));
  for (int i = 0; i < ebm_net_num_params(net); i++) {
    const ebm_param *q = ebm_net_param(net, i);
    float *d = p + q->offset;
    uint32_t seed = 100 + (uint32_t)i;
    if (q->kind == EBM_PARAM_CONV) {
      float bound = sqrtf(6.0f / (float)(q->shape[1] * 9));
      tu_fill_uniform(d, q->numel, seed, -bound, bound);
    } else if (q->kind == EBM_PARAM_LABEL) {
      tu_fill_uniform(d, q->numel, seed, -0.5f, 0.5f);
    } else if (strstr(q->name, "cb2")) {
      tu_fill_uniform(d, q->numel, seed, 0.5f, 1.5f);
    } else if (!strcmp(q->name, "head.weight")) {
      tu_fill_uniform(d, q->numel, seed, -1.0f, 1.0f);
    } else {
      tu_fill_uniform(d, q->numel, seed, 0.1f, 0.2f);
    }
  }
  int rc = ebm_net_set_params(net, p, NULL);
  free(p);
  if (rc) return -1;
  ebm_net_refresh(net, 0);
  return 0;
}

static int make_net(ebm_backend *be, const char *preset, ebm_net **net) {
  ebm_net_config cfg;
  char err[512];
  if (ebm_net_config_preset(&cfg, preset, L)) {
    fprintf(stderr, "unknown preset %s\n", preset);
    return -1;
  }
  if (ebm_net_create(net, be, &cfg, B, 5, err, sizeof err)) {
    fprintf(stderr, "ebm_net_create: %s\n", err);
    return -1;
  }
  return randomise(*net);
}

static int export_reference(const char *dir, const char *preset, int vulkan) {
  /* tu_vulkan_backend exits 77 (skip) when there is no Vulkan device. */
  ebm_backend *be = vulkan ? tu_vulkan_backend() : tu_cpu_backend();
  ebm_net *net;
  if (make_net(be, preset, &net)) return 1;
  outputs o;
  if (run_net(be, net, &o)) return 1;
  char path[512], err[512];
  ebm_model_info info;
  ebm_model_info_default(&info, ebm_net_config_of(net));
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (ebm_model_save(path, net, &info, NULL, 0, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const ebm_net_config *cfg = ebm_net_config_of(net);
  int64_t sx[4] = {B, 3, cfg->resolution, cfg->resolution}, sc[2] = {B, L}, se[1] = {B};
  st_writer *w = st_writer_new();
  st_writer_add(w, "x", sx, 4, o.x);
  st_writer_add(w, "c", sc, 2, o.c);
  st_writer_add(w, "energy", se, 1, o.e);
  st_writer_add(w, "dx", sx, 4, o.dx);
  st_writer_add(w, "dc", sc, 2, o.dc);
  st_writer_meta(w, "format", "vkebm-net-reference");
  st_writer_meta(w, "backend", vulkan ? "vulkan" : "cpu");
  snprintf(path, sizeof path, "%s/io.safetensors", dir);
  int rc = st_writer_save(w, path, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  st_writer_free(w);
  free_outputs(&o);
  ebm_net_destroy(net);
  tu_backend_done(be);
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "--export"))
    return export_reference(argv[2], argv[3], argc == 5 && !strcmp(argv[4], "vulkan"));
  /* Round trip: save, load into a fresh net, same energies and gradients bit for bit. */
  char dir[] = "/tmp/vkebm_test_export_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  ebm_backend *be = tu_cpu_backend();
  ebm_net *net = NULL, *net2 = NULL;
  TU_CHECK(make_net(be, "tiny", &net) == 0, "make net");
  outputs a = {0}, b = {0};
  char path[512], err[512];
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  int ran = net && run_net(be, net, &a) == 0;
  TU_CHECK(ran, "forward/backward failed");
  if (ran) {
    ebm_model_info info;
    ebm_model_info_default(&info, ebm_net_config_of(net));
    TU_CHECK(ebm_model_save(path, net, &info, NULL, 0, err, sizeof err) == 0, "save: %s", err);
    TU_CHECK(ebm_model_load(path, be, B, &net2, NULL, NULL, 0, err, sizeof err) == 0, "load: %s", err);
    int ran2 = net2 && run_net(be, net2, &b) == 0;
    TU_CHECK(ran2, "forward/backward of the loaded net failed");
    if (ran2) {
      TU_CHECK(memcmp(a.e, b.e, B * sizeof(float)) == 0, "energies differ after the round trip");
      TU_CHECK(memcmp(a.dx, b.dx, a.nx * sizeof(float)) == 0, "dx differs after the round trip");
      TU_CHECK(memcmp(a.dc, b.dc, B * L * sizeof(float)) == 0, "dc differs after the round trip");
      int finite = 1;
      for (int i = 0; i < B; i++) finite &= isfinite(a.e[i]) && a.e[i] != 0.0f;
      TU_CHECK(finite, "energies not finite and non-zero");
      printf("  energies %g %g %g identical after save/load\n", a.e[0], a.e[1], a.e[2]);
    }
    st_file f;
    TU_CHECK(st_read(&f, path, 1, err, sizeof err) == 0, "strict read: %s", err);
    if (!tu_failures) {
      TU_CHECK(st_meta_get(&f, "format") && !strcmp(st_meta_get(&f, "format"), "vkebm-model"), "format marker");
      st_free(&f);
    }
  }
  free_outputs(&a);
  free_outputs(&b);
  if (net2) ebm_net_destroy(net2);
  if (net) ebm_net_destroy(net);
  tu_backend_done(be);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tu_finish("test_net_export");
}
