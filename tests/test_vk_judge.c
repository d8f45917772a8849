/* test_vk_judge.c: the judge on the vulkan backend against the cpu backend.
 *
 * The judge adds no shader (its K outputs are K dispatches of the head op, at unaligned offsets
 * into one output tensor, plus the trunk's ops), so this checks the composition on the device:
 * same seed -> same weights on both backends; outputs [7, K], the trunk's parameter gradients and
 * the head's gradients of the batch loss agree (batch 7, tiny configuration, fixed renders);
 * the worst element is printed. Then one Adam step on each keeps them together.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/judge.h"
#include "vkebm/scene.h"

#define NB 7

int main(void) {
  ebm_backend *cpu = tu_cpu_backend();
  ebm_backend *vk = tu_vulkan_backend();
  ebm_judge_config cfg;
  ebm_judge_config_preset(&cfg, "tiny");
  ebm_judge *jc, *jv;
  char err[512];
  if (ebm_judge_create(&jc, cpu, &cfg, NB, 21, err, sizeof err) ||
      ebm_judge_create(&jv, vk, &cfg, NB, 21, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int R = cfg.resolution;
  float img[NB * 3 * 8 * 8];
  ebm_judge_target t[NB];
  scene_spec spec;
  scene_spec_parse("general", &spec, err, sizeof err);
  ebm_judge_render_batch(&spec, 9, 0, NB, R, img, t, 0);

  float oc[NB * JUDGE_OUTPUTS], ov[NB * JUDGE_OUTPUTS];
  TU_CHECK(ebm_judge_forward(jc, img, NB, oc, err, sizeof err) == 0, "%s", err);
  TU_CHECK(ebm_judge_forward(jv, img, NB, ov, err, sizeof err) == 0, "%s", err);
  TU_CHECK(tu_compare("judge outputs", ov, oc, NB * JUDGE_OUTPUTS, 1e-5, 1e-4), "outputs differ");

  ebm_judge_loss lc, lv;
  TU_CHECK(ebm_judge_loss_grad(jc, img, t, NB, &lc, err, sizeof err) == 0, "%s", err);
  TU_CHECK(ebm_judge_loss_grad(jv, img, t, NB, &lv, err, sizeof err) == 0, "%s", err);
  TU_CHECK(fabs(lc.total - lv.total) <= 1e-4 * fabs(lc.total), "loss %.7g vs %.7g", lv.total,
           lc.total);
  size_t np = ebm_net_param_count(ebm_judge_net(jc)), hc;
  ebm_judge_head_params(jc, &hc);
  float *gc = malloc(np * sizeof *gc), *gv = malloc(np * sizeof *gv);
  float *hgc = malloc(hc * sizeof *hgc), *hgv = malloc(hc * sizeof *hgv);
  ebm_download(cpu, gc, ebm_net_grads(ebm_judge_net(jc)), np);
  ebm_download(vk, gv, ebm_net_grads(ebm_judge_net(jv)), np);
  ebm_download(cpu, hgc, ebm_judge_head_grads(jc), hc);
  ebm_download(vk, hgv, ebm_judge_head_grads(jv), hc);
  TU_CHECK(tu_compare("trunk gradients", gv, gc, np, 1e-5, 1e-3), "trunk gradients differ");
  TU_CHECK(tu_compare("head gradients", hgv, hgc, hc, 1e-5, 1e-3), "head gradients differ");

  TU_CHECK(ebm_judge_train_step(jc, img, t, NB, 1e-3f, NULL, err, sizeof err) == 0, "%s", err);
  TU_CHECK(ebm_judge_train_step(jv, img, t, NB, 1e-3f, NULL, err, sizeof err) == 0, "%s", err);
  TU_CHECK(ebm_judge_forward(jc, img, NB, oc, err, sizeof err) == 0, "%s", err);
  TU_CHECK(ebm_judge_forward(jv, img, NB, ov, err, sizeof err) == 0, "%s", err);
  TU_CHECK(tu_compare("outputs after one Adam step", ov, oc, NB * JUDGE_OUTPUTS, 1e-4, 1e-3),
           "outputs differ after a step");
  free(gc);
  free(gv);
  free(hgc);
  free(hgv);
  ebm_judge_destroy(jc);
  ebm_judge_destroy(jv);
  tu_backend_done(vk);
  tu_backend_done(cpu);
  return tu_finish("test_vk_judge");
}
