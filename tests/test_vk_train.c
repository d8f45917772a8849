/* test_vk_train.c: the trainer on the vulkan backend against the cpu reference.
 *   - shaders/adam_step.comp vs adam_step_cpu on awkward sizes (1, 7, 1037, 70001), clip on
 *     and off, beta1 0 and 0.9, a gradient scale; worst element printed;
 *   - a few contrastive-divergence iterations of the tiny network (8x8 scenes rendered on the
 *     device, Langevin negatives, Adam, EMA) on both backends from the same seed: the losses,
 *     energies, parameters and EMA weights agree within a tolerance (the devices' exp/log/cos
 *     differ in the last ulps, so the Langevin noise and swish differ slightly);
 *   - the same run twice on vulkan gives the same bits, and so does a run checkpointed and
 *     resumed halfway. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "testutil.h"
#include "vkebm/train.h"

static void test_adam_shader(ebm_backend *vk) {
  const size_t sizes[] = {1, 7, 1037, 70001};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    const size_t n = sizes[si];
    float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
    float *pg = malloc(n * 4), *mg = malloc(n * 4), *vg = malloc(n * 4);
    /* tensors at odd offsets inside one allocation, as the network's layout can put them */
    ebm_buffer *buf = ebm_alloc(vk, 4 * n + 64);
    ebm_ref rp = ebm_at(ebm_ref_of(buf), 3), rg = ebm_at(rp, n + 5), rm = ebm_at(rg, n + 7),
            rv = ebm_at(rm, n + 1);
    for (int variant = 0; variant < 3; variant++) {
      tu_fill_uniform(p, n, 5 + variant, -1, 1);
      memset(m, 0, n * 4);
      memset(v, 0, n * 4);
      ebm_upload(vk, rp, p, n);
      ebm_fill(vk, rm, 0, n);
      ebm_fill(vk, rv, 0, n);
      for (int t = 1; t <= 5; t++) {
        tu_fill_uniform(g, n, 1000 * variant + t, -0.1f * t * t, 0.1f * t * t);
        ebm_adam_params hp = {.lr = 1e-2f, .beta1 = variant == 2 ? 0.9f : 0.0f, .beta2 = 0.99f,
                              .eps = 1e-8f, .t = t, .clip = variant != 1,
                              .grad_scale = variant == 2 ? 0.25f : 1.0f};
        adam_step_cpu(p, g, m, v, n, &hp);
        ebm_upload(vk, rg, g, n);
        ebm_adam_step(vk, rp, rg, rm, rv, n, &hp);
      }
      ebm_download(vk, pg, rp, n);
      ebm_download(vk, mg, rm, n);
      ebm_download(vk, vg, rv, n);
      char label[96];
      snprintf(label, sizeof label, "adam shader n=%zu variant %d: params", n, variant);
      TU_CHECK(tu_compare(label, pg, p, n, 1e-6, 1e-5), "%s", label);
      snprintf(label, sizeof label, "adam shader n=%zu variant %d: m", n, variant);
      TU_CHECK(tu_compare(label, mg, m, n, 1e-7, 1e-5), "%s", label);
      snprintf(label, sizeof label, "adam shader n=%zu variant %d: v", n, variant);
      TU_CHECK(tu_compare(label, vg, v, n, 1e-9, 1e-5), "%s", label);
    }
    ebm_free(vk, buf);
    free(p), free(g), free(m), free(v), free(pg), free(mg), free(vg);
  }
}

typedef struct run_result {
  ebm_train_stats s[4];
  float *params, *ema;
  size_t n;
} run_result;

/* steps iterations, optionally saved after `split` and resumed from the file. */
static int train_run_split(ebm_backend *be, int steps, int split, const char *ckpt, run_result *r) {
  ebm_train_config cfg;
  char err[512];
  if (ebm_train_config_default(&cfg, "shape", "general", "tiny", 8, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  cfg.batch = 3;
  cfg.langevin_steps = 4;
  cfg.step_lr = 5.0f;
  cfg.noise = 0.005f;
  cfg.buffer_size = 8;
  cfg.seed = 21;
  ebm_trainer *tr = NULL;
  if (ebm_trainer_create(&tr, be, &cfg, NULL, NULL, 0, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  for (int i = 0; i < steps; i++) {
    if (i == split) {
      if (ebm_trainer_save_checkpoint(tr, ckpt, err, sizeof err) != 0) {
        fprintf(stderr, "save: %s\n", err);
        ebm_trainer_destroy(tr);
        return -1;
      }
      ebm_trainer_destroy(tr);
      tr = NULL;
      if (ebm_trainer_create(&tr, be, NULL, ckpt, NULL, 0, err, sizeof err) != 0) {
        fprintf(stderr, "resume: %s\n", err);
        return -1;
      }
    }
    if (ebm_trainer_step(tr, &r->s[i], err, sizeof err) != 0) {
      fprintf(stderr, "step %d on %s: %s\n", i, ebm_backend_name(be), err);
      ebm_trainer_destroy(tr);
      return -1;
    }
  }
  r->n = ebm_net_param_count(ebm_trainer_net(tr));
  r->params = malloc(r->n * 4);
  r->ema = malloc(r->n * 4);
  int rc = ebm_net_get_params(ebm_trainer_net(tr), r->params, NULL) ||
           ebm_net_get_params(ebm_trainer_ema_net(tr), r->ema, NULL);
  ebm_trainer_destroy(tr);
  return rc;
}

static int train_run(ebm_backend *be, int steps, run_result *r) {
  return train_run_split(be, steps, -1, NULL, r);
}

int main(void) {
  ebm_backend *vk = tu_vulkan_backend();
  ebm_backend *cpu = NULL;
  ebm_backend_options opt = {.kind = EBM_BACKEND_CPU, .threads = 1};
  char err[256];
  if (ebm_backend_create(&cpu, &opt, err, sizeof err) != 0) {
    fprintf(stderr, "cpu backend: %s\n", err);
    return 1;
  }
  test_adam_shader(vk);

  const int steps = 4;
  run_result rc = {0}, rv = {0}, rv2 = {0};
  TU_CHECK(train_run(cpu, steps, &rc) == 0, "cpu run");
  TU_CHECK(train_run(vk, steps, &rv) == 0, "vulkan run");
  TU_CHECK(train_run(vk, steps, &rv2) == 0, "vulkan run again");
  if (rc.params && rv.params) {
    for (int i = 0; i < steps; i++) {
      printf("step %d: loss cpu %.7f vulkan %.7f | E+ %.7f %.7f | E- %.7f %.7f | |g| %.6f %.6f\n",
             i + 1, rc.s[i].loss, rv.s[i].loss, rc.s[i].e_pos, rv.s[i].e_pos, rc.s[i].e_neg,
             rv.s[i].e_neg, rc.s[i].grad_norm, rv.s[i].grad_norm);
      TU_CHECK(fabs(rc.s[i].loss - rv.s[i].loss) <= 2e-6 + 1e-3 * fabs(rc.s[i].loss),
               "step %d loss %g vs %g", i + 1, rc.s[i].loss, rv.s[i].loss);
      TU_CHECK(fabs(rc.s[i].e_pos - rv.s[i].e_pos) <= 2e-6 + 1e-3 * fabs(rc.s[i].e_pos), "step %d E+", i + 1);
      TU_CHECK(fabs(rc.s[i].e_neg - rv.s[i].e_neg) <= 2e-6 + 1e-3 * fabs(rc.s[i].e_neg), "step %d E-", i + 1);
      TU_CHECK(fabs(rc.s[i].grad_norm - rv.s[i].grad_norm) <= 1e-6 + 1e-3 * rc.s[i].grad_norm,
               "step %d grad norm", i + 1);
    }
    /* Adam moves each weight by about lr per step, so compare at that scale */
    TU_CHECK(tu_compare("parameters after 4 steps (vulkan vs cpu)", rv.params, rc.params, rc.n, 1e-5, 1e-4),
             "parameters");
    TU_CHECK(tu_compare("EMA weights after 4 steps (vulkan vs cpu)", rv.ema, rc.ema, rc.n, 1e-5, 1e-4),
             "EMA");
  }
  if (rv.params && rv2.params)
    TU_CHECK(!memcmp(rv.params, rv2.params, rv.n * 4) && rv.s[steps - 1].loss == rv2.s[steps - 1].loss,
             "two vulkan runs differ");
  /* checkpoint after 2 steps, resume, 2 more: the same bits as the uninterrupted vulkan run */
  char dir[] = "/tmp/vkebm_test_vk_train_XXXXXX", ckpt[128];
  run_result rr = {0};
  if (mkdtemp(dir)) {
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
    TU_CHECK(train_run_split(vk, steps, 2, ckpt, &rr) == 0, "vulkan resumed run");
    if (rr.params && rv.params)
      TU_CHECK(!memcmp(rv.params, rr.params, rv.n * 4) && !memcmp(rv.ema, rr.ema, rv.n * 4) &&
                   rv.s[steps - 1].loss == rr.s[steps - 1].loss,
               "resumed vulkan run differs from the uninterrupted one");
    remove(ckpt);
    rmdir(dir);
  }
  free(rr.params), free(rr.ema);
  free(rc.params), free(rc.ema), free(rv.params), free(rv.ema), free(rv2.params), free(rv2.ema);
  ebm_backend_destroy(cpu);
  tu_backend_done(vk);
  return tu_finish("test_vk_train");
}
