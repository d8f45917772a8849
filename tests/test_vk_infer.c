/* test_vk_infer.c: inference with the shipped concept models gives the same answers on the
 * vulkan backend as on the cpu backend: every one-hot label energy within 1e-4 (relative 1e-3)
 * and the same argmin, vector labels (2 gradient steps from a 2x2 grid, so dE/dc on the device
 * is used) within 2e-3, on 3 fresh renders, with and without a baseline measured on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/infer.h"
#include "vkebm/scene.h"

#define NIMG 3

static int run(ebm_backend *be, const char *models, const float *img, int calibrated,
               ebm_infer_value out[4][NIMG], char names[4][64]) {
  ebm_concept_set set = {0};
  char err[512];
  if (ebm_concept_set_load_dir(&set, be, models, 64, err, sizeof err) || set.count != 4) {
    fprintf(stderr, "%s: %s (%d models)\n", models, err, set.count);
    ebm_concept_set_clear(&set);
    return -1;
  }
  ebm_infer_options o;
  ebm_infer_defaults(&o);
  o.grid = 2;
  o.steps = 2;
  ebm_infer_calibration *cal = calloc(1, sizeof *cal);
  int rc = 0;
  if (calibrated) {
    for (int m = 0; m < set.count && !rc; m++)
      rc = ebm_infer_baseline_measure(set.items[m], img, NIMG, &cal->base[cal->count++], err,
                                      sizeof err);
    o.calibration = cal;
  }
  for (int m = 0; m < set.count && !rc; m++) {
    snprintf(names[m], 64, "%s", ebm_concept_info_of(set.items[m])->name);
    rc = ebm_infer_concept(set.items[m], img, NIMG, &o, out[m], err, sizeof err);
  }
  if (rc) fprintf(stderr, "%s\n", err);
  free(cal);
  ebm_concept_set_clear(&set);
  return rc;
}

int main(void) {
  char models[4200];
  tu_source_path(models, sizeof models, "models");
  char probe[4400];
  snprintf(probe, sizeof probe, "%s/color.safetensors", models);
  if (access(probe, R_OK) != 0) {
    printf("test_vk_infer: no %s, skipping\n", probe);
    return 77;
  }
  ebm_backend *vk = tu_vulkan_backend(), *cpu = tu_cpu_backend();
  scene_spec spec;
  char err[256];
  scene_spec_parse("general", &spec, err, sizeof err);
  float packed[NIMG * VKEBM_SCENE_FLOATS], *img = malloc(sizeof(float) * NIMG * 3 * 32 * 32);
  scene_sample_packed(&spec, 424242, 0, NIMG, packed);
  scene_render_cpu(img, packed, NIMG, 32, NULL, 0);
  for (int calibrated = 0; calibrated < 2; calibrated++) {
    ebm_infer_value a[4][NIMG], b[4][NIMG];
    char names[4][64];
    TU_CHECK(!run(cpu, models, img, calibrated, a, names), "cpu");
    TU_CHECK(!run(vk, models, img, calibrated, b, names), "vulkan");
    for (int m = 0; m < 4; m++)
      for (int i = 0; i < NIMG; i++) {
        const ebm_infer_value *x = &a[m][i], *y = &b[m][i];
        if (x->onehot) {
          TU_CHECK(x->index == y->index, "%s image %d: cpu %d, vulkan %d (calibrated %d)",
                   names[m], i, x->index, y->index, calibrated);
          for (int k = 0; k < x->label_dim; k++)
            TU_CHECK(fabsf(x->energies[k] - y->energies[k]) <= 1e-4f + 1e-3f * fabsf(x->energies[k]),
                     "%s image %d label %d: %g vs %g", names[m], i, k, x->energies[k],
                     y->energies[k]);
        } else {
          for (int k = 0; k < x->label_dim; k++)
            TU_CHECK(fabsf(x->value[k] - y->value[k]) <= 2e-3f, "%s image %d: %g vs %g "
                     "(calibrated %d)", names[m], i, x->value[k], y->value[k], calibrated);
        }
      }
  }
  free(img);
  tu_backend_done(vk);
  tu_backend_done(cpu);
  return tu_finish("test_vk_infer");
}
