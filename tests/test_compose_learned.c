/* test_compose_learned.c: learned concept models (tiny networks saved as model files and loaded
 * back) behind the concept interface: terms sharing a model are evaluated in one batched pass
 * and match separate evaluations; the composed energy of a nested expression matches the formula
 * over single-term energies; its gradient matches finite differences; MALA runs on it; sampler
 * steps on it transfer nothing between host and device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/compose.h"
#include "vkebm/concept.h"
#include "vkebm/model.h"
#include "vkebm/net.h"
#include "vkebm/sampler.h"

static void save_model(ebm_backend *be, const char *path, const char *concept, int onehot,
                       uint64_t seed) {
  ebm_net_config cfg;
  char err[256];
  TU_CHECK(!ebm_net_config_preset(&cfg, "tiny", onehot ? 3 : 2), "preset");
  ebm_net *net;
  if (ebm_net_create(&net, be, &cfg, 4, seed, err, sizeof err)) {
    fprintf(stderr, "net: %s\n", err);
    exit(1);
  }
  /* give the label maps non-zero values so labels matter */
  size_t P = ebm_net_param_count(net);
  float *p = malloc(P * sizeof(float));
  ebm_net_get_params(net, p, NULL);
  for (int i = 0; i < ebm_net_num_params(net); i++) {
    const ebm_param *pr = ebm_net_param(net, i);
    if (pr->kind == EBM_PARAM_LABEL) tu_fill_uniform(p + pr->offset, pr->numel, (uint32_t)(seed + i), -0.5f, 0.5f);
  }
  ebm_net_set_params(net, p, NULL);
  ebm_net_refresh(net, 0);
  free(p);
  ebm_model_info info;
  ebm_model_info_default(&info, &cfg);
  snprintf(info.concept, sizeof info.concept, "%s", concept);
  /* the training sampler each model records: colour 10 / 0.005, position 20 / 0.01 */
  info.langevin_step_lr = onehot ? 10.0f : 20.0f;
  info.sample_steps = onehot ? 100 : 0; /* the position model records none */
  info.langevin_noise = onehot ? 0.005f : 0.01f;
  if (onehot) {
    info.label_kind = EBM_LABEL_ONEHOT;
    const char *names[] = {"red", "green", "blue"};
    for (int k = 0; k < 3; k++) snprintf(info.label_names[k], EBM_LABEL_NAME_MAX, "%s", names[k]);
  }
  TU_CHECK(!ebm_model_save(path, net, &info, NULL, 0, err, sizeof err), "save: %s", err);
  ebm_net_destroy(net);
}

static ebm_composition *compose(ebm_backend *be, const ebm_concept_set *set, const char *src, int B) {
  expr_error e;
  expr_node *t = expr_parse(src, &e);
  ebm_composition *c = t ? ebm_composition_create(be, t, set, B, &e) : NULL;
  if (!c) {
    fprintf(stderr, "'%s': %s\n", src, e.msg);
    exit(1);
  }
  expr_free(t);
  return c;
}

int main(void) {
  ebm_backend *be = tu_cpu_backend();
  char dir[] = "/tmp/vkebm_learnedXXXXXX";
  if (!mkdtemp(dir)) return 1;
  char pc[256], pp[256], err[256];
  snprintf(pc, sizeof pc, "%s/color.safetensors", dir);
  snprintf(pp, sizeof pp, "%s/position.safetensors", dir);
  save_model(be, pc, "color", 1, 5);
  save_model(be, pp, "position", 0, 6);
  enum { B = 3, N = 3 * 8 * 8 };
  ebm_concept_set set = {0};
  float hs = -1.0f, hn = -1.0f;
  TU_CHECK(ebm_concept_set_sampler_hint(&set, &hs, &hn) == 0 && hs == -1.0f && hn == -1.0f,
           "an empty set gives no sampler hint and leaves the values");
  ebm_concept *cc = ebm_concept_load_learned(be, pc, 2 * B, err, sizeof err);
  TU_CHECK(cc, "load: %s", err);
  ebm_concept *cp = ebm_concept_load_learned(be, pp, 2 * B, err, sizeof err);
  TU_CHECK(cp, "load: %s", err);
  if (!cc || !cp) return tu_finish("test_compose_learned");
  ebm_concept_set_add(&set, cc, 1, err, sizeof err);
  ebm_concept_set_add(&set, cp, 1, err, sizeof err);
  TU_CHECK(!strcmp(ebm_concept_info_of(cp)->name, "position") &&
               !strcmp(ebm_concept_info_of(cc)->kind, "learned") &&
               strlen(ebm_concept_info_of(cc)->hash) == 16, "learned info");
  TU_CHECK(ebm_concept_set_sampler_hint(&set, &hs, &hn) == 1 && hs == 10.0f && hn == 0.005f,
           "sampler hint: the smallest training step and its noise (got %g, %g)", hs, hn);
  TU_CHECK(ebm_concept_set_sample_steps(&set) == 100, "sample steps %d, recorded 100",
           ebm_concept_set_sample_steps(&set));
  {
    ebm_sampler_config sc;
    ebm_sampler_defaults(&sc, EBM_SAMPLER_PAPER);
    ebm_sampler_apply_hints(&set, &sc, 0, 0, 0);
    TU_CHECK(sc.steps == 100 && sc.step_size == 10.0f, "hints: steps %d step %g", sc.steps,
             sc.step_size);
    ebm_sampler_defaults(&sc, EBM_SAMPLER_PAPER);
    sc.steps = 7;
    ebm_sampler_apply_hints(&set, &sc, 0, 0, 1);
    TU_CHECK(sc.steps == 7, "given steps overridden by the hint (%d)", sc.steps);
    /* the lambda-form samplers get the same dynamics: lambda = sigma^2, beta = 2 eta / sigma^2 */
    ebm_sampler_defaults(&sc, EBM_SAMPLER_LANGEVIN);
    ebm_sampler_apply_hints(&set, &sc, 0, 0, 0);
    TU_CHECK(fabsf(sc.step_size - 0.005f * 0.005f) < 1e-9f &&
                 fabsf(sc.energy_scale - 2.0f * 10.0f / (0.005f * 0.005f)) < 1.0f,
             "langevin hint: lambda %g beta %g", sc.step_size, sc.energy_scale);
    ebm_sampler_defaults(&sc, EBM_SAMPLER_MALA);
    sc.energy_scale = 3.0f; /* given: kept, and the step with it */
    float tau = sc.step_size;
    ebm_sampler_apply_hints(&set, &sc, 0, 0, 0);
    TU_CHECK(sc.energy_scale == 3.0f && sc.step_size == tau, "a given beta was overridden");
  }

  const char *src = "(color=red AND NOT[0.5] color=blue) OR[0.7] 2*pos=(0.2,-0.3)";
  ebm_composition *c = compose(be, &set, src, B);
  ebm_composition *c_red = compose(be, &set, "color=red", B);
  ebm_composition *c_blue = compose(be, &set, "color=blue", B);
  ebm_composition *c_pos = compose(be, &set, "position=(0.2,-0.3)", B);
  float x[B * N];
  tu_fill_uniform(x, B * N, 3, 0.0f, 1.0f);
  ebm_buffer *xb = ebm_alloc(be, B * N), *gb = ebm_alloc(be, B * N);
  ebm_upload(be, ebm_ref_of(xb), x, B * N);
  double E[B], Er[B], Ebl[B], Ep[B];
  TU_CHECK(!ebm_composition_eval(c, ebm_ref_of(xb), E, ebm_ref_of(gb), 1.0, err, sizeof err), "%s", err);
  float g[B * N];
  ebm_download(be, g, ebm_ref_of(gb), B * N);
  ebm_composition_eval(c_red, ebm_ref_of(xb), Er, EBM_NOREF, 1.0, err, sizeof err);
  ebm_composition_eval(c_blue, ebm_ref_of(xb), Ebl, EBM_NOREF, 1.0, err, sizeof err);
  ebm_composition_eval(c_pos, ebm_ref_of(xb), Ep, EBM_NOREF, 1.0, err, sizeof err);
  const float *te = ebm_composition_term_energies(c);
  double worst = 0;
  for (int b = 0; b < B; b++) {
    TU_CHECK(te[0 * B + b] == (float)Er[b] && te[1 * B + b] == (float)Ebl[b],
             "batched color terms equal separate passes (%g %g vs %g %g)", te[b], te[B + b], Er[b], Ebl[b]);
    TU_CHECK(fabs(Er[b] - Ebl[b]) > 1e-6, "labels change the energy");
    double l = Er[b] - 0.5 * Ebl[b], r = 2 * Ep[b], T = 0.7;
    double m = fmax(-l / T, -r / T);
    double want = -T * (m + log(exp(-l / T - m) + exp(-r / T - m)));
    worst = fmax(worst, fabs(E[b] - want) / (1 + fabs(want)));
  }
  printf("  nested learned expression: worst energy rel err vs formula %.3g\n", worst);
  TU_CHECK(worst < 1e-5, "composed energy matches the formula");
  /* finite differences on a spread of elements */
  double worst_g = 0;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < N; i += 37) {
      double fd = tu_composition_fd(c, be, xb, x, B, N, b, i, 1e-2f);
      double scale = 0;
      for (int k = 0; k < N; k++) scale = fmax(scale, fabs(g[b * N + k]));
      worst_g = fmax(worst_g, fabs(fd - g[b * N + i]) / (scale + 1e-6));
    }
  printf("  gradient vs finite differences: worst error / max |grad| %.3g\n", worst_g);
  TU_CHECK(worst_g < 2e-2, "gradient matches finite differences");

  /* a short MALA run on learned models: runs, reports acceptance, finite */
  ebm_sampler_config cfg;
  ebm_sampler_defaults(&cfg, EBM_SAMPLER_MALA);
  cfg.steps = 10;
  cfg.seed = 9;
  cfg.step_size = 1e-3f;
  ebm_sampler_stats st;
  ebm_sampler_init_uniform(x, B, N, 9);
  ebm_upload(be, ebm_ref_of(xb), x, B * N);
  TU_CHECK(!ebm_sample(c, ebm_ref_of(xb), &cfg, NULL, NULL, &st, err, sizeof err), "%s", err);
  printf("  mala on learned models: acceptance %.2f, mean energy %.4g\n", st.accept_rate, st.mean_energy);
  TU_CHECK(isfinite(st.mean_energy), "finite energies");

  /* paper steps on learned models transfer nothing: the labels go up once, the soft OR's
   * coefficients are computed by backend ops (test_vk_sampler counts the same on vulkan) */
  ebm_sampler_defaults(&cfg, EBM_SAMPLER_PAPER);
  cfg.step_size = 1.0f;
  int rc = ebm_sampler_step_composition(c, ebm_ref_of(xb), ebm_ref_of(gb), &cfg, 1.0f, 0, err,
                                        sizeof err);
  ebm_transfer_stats t0 = ebm_backend_transfer_stats(be);
  for (uint32_t k = 1; k <= 5 && rc == 0; k++)
    rc = ebm_sampler_step_composition(c, ebm_ref_of(xb), ebm_ref_of(gb), &cfg, 1.0f, k, err,
                                      sizeof err);
  ebm_transfer_stats t1 = ebm_backend_transfer_stats(be);
  TU_CHECK(rc == 0 && ebm_sync(be) == 0, "paper steps: %s", err);
  TU_CHECK(t1.uploads == t0.uploads && t1.downloads == t0.downloads,
           "5 paper steps on learned models: %llu uploads, %llu downloads",
           (unsigned long long)(t1.uploads - t0.uploads),
           (unsigned long long)(t1.downloads - t0.downloads));

  ebm_free(be, xb);
  ebm_free(be, gb);
  ebm_composition_destroy(c);
  ebm_composition_destroy(c_red);
  ebm_composition_destroy(c_blue);
  ebm_composition_destroy(c_pos);
  ebm_concept_set_clear(&set);
  unlink(pc);
  unlink(pp);
  rmdir(dir);
  tu_backend_done(be);
  return tu_finish("test_compose_learned");
}
