/* test_train.c: the contrastive-divergence trainer on the cpu backend.
 *   - Adam (adam_step_cpu and the backend op) against a double-precision closed form, with and
 *     without the per-element clip and the gradient scale;
 *   - a toy problem (the tiny network on 8x8 colour scenes) lowers the loss and separates
 *     E(x+) from E(x-);
 *   - checkpoint, destroy, resume: bit-identical to an uninterrupted run;
 *   - a truncated checkpoint is refused and the previous one still loads;
 *   - the divergence guard stops on runaway energies and leaves the parameters untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "testutil.h"
#include "vkebm/model.h"
#include "vkebm/sampler.h"
#include "vkebm/train.h"

/* Closed form of one Adam step in double (the formulas of backend.h). */
static void adam_reference(double *p, const float *g_in, double *m, double *v, size_t n,
                           const ebm_adam_params *hp) {
  const double t = (double)hp->t;
  for (size_t i = 0; i < n; i++) {
    double g = (double)g_in[i] * hp->grad_scale;
    if (hp->clip) {
      double vh_prev = hp->t > 1 ? v[i] / (1.0 - pow(hp->beta2, t - 1)) : 0.0;
      double bound = 3.0 * sqrt(vh_prev) + 0.1;
      g = g < -bound ? -bound : g > bound ? bound : g;
    }
    m[i] = hp->beta1 * m[i] + (1 - hp->beta1) * g;
    v[i] = hp->beta2 * v[i] + (1 - hp->beta2) * g * g;
    double mh = m[i] / (1 - pow(hp->beta1, t)), vh = v[i] / (1 - pow(hp->beta2, t));
    p[i] -= hp->lr * mh / (sqrt(vh) + hp->eps);
  }
}

static void test_adam(ebm_backend *be) {
  const size_t n = 1037;
  float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
  float *pb = malloc(n * 4), *mb = calloc(n, 4), *vb = calloc(n, 4), *pf = malloc(n * 4);
  double *pd = malloc(n * 8), *md = calloc(n, 8), *vd = calloc(n, 8);
  ebm_buffer *bp = ebm_alloc(be, n), *bg = ebm_alloc(be, n), *bm = ebm_alloc(be, n),
             *bv = ebm_alloc(be, n);
  for (int variant = 0; variant < 3; variant++) {
    tu_fill_uniform(p, n, 11 + variant, -1, 1);
    for (size_t i = 0; i < n; i++) pd[i] = p[i], md[i] = vd[i] = 0, m[i] = v[i] = 0;
    ebm_upload(be, ebm_ref_of(bp), p, n);
    ebm_fill(be, ebm_ref_of(bm), 0, n);
    ebm_fill(be, ebm_ref_of(bv), 0, n);
    for (int t = 1; t <= 7; t++) {
      /* gradients of growing size, so the clip both binds and does not */
      tu_fill_uniform(g, n, 100 * variant + t, -0.05f * t * t, 0.05f * t * t);
      ebm_adam_params hp = {.lr = 3e-3f, .beta1 = variant == 2 ? 0.9f : 0.0f, .beta2 = 0.99f,
                            .eps = 1e-8f, .t = t, .clip = variant != 1, .grad_scale = variant == 2 ? 0.5f : 1.0f};
      adam_step_cpu(p, g, m, v, n, &hp);
      adam_reference(pd, g, md, vd, n, &hp);
      ebm_upload(be, ebm_ref_of(bg), g, n);
      ebm_adam_step(be, ebm_ref_of(bp), ebm_ref_of(bg), ebm_ref_of(bm), ebm_ref_of(bv), n, &hp);
    }
    for (size_t i = 0; i < n; i++) pf[i] = (float)pd[i];
    char label[64];
    snprintf(label, sizeof label, "adam twin vs closed form (variant %d)", variant);
    TU_CHECK(tu_compare(label, p, pf, n, 2e-6, 1e-5), "%s", label);
    ebm_download(be, pb, ebm_ref_of(bp), n);
    ebm_download(be, mb, ebm_ref_of(bm), n);
    ebm_download(be, vb, ebm_ref_of(bv), n);
    TU_CHECK(!memcmp(pb, p, n * 4) && !memcmp(mb, m, n * 4) && !memcmp(vb, v, n * 4),
             "cpu backend op differs from adam_step_cpu (variant %d)", variant);
  }
  /* the clip really binds at t = 1: every step is at most lr * 0.1 / (0.1 + eps) */
  ebm_free(be, bp), ebm_free(be, bg), ebm_free(be, bm), ebm_free(be, bv);
  free(p), free(g), free(m), free(v), free(pb), free(mb), free(vb), free(pf), free(pd), free(md),
      free(vd);
}

static ebm_train_config tiny_config(void) {
  ebm_train_config cfg;
  char err[256];
  if (ebm_train_config_default(&cfg, "color", "general", "tiny", 8, err, sizeof err) != 0) {
    fprintf(stderr, "config: %s\n", err);
    exit(1);
  }
  cfg.batch = 8;
  cfg.langevin_steps = 10;
  cfg.step_lr = 10.0f;
  cfg.noise = 0.005f;
  cfg.buffer_size = 64;
  cfg.lr = 1e-3f;
  cfg.seed = 7;
  return cfg;
}

static ebm_trainer *make(ebm_backend *be, const ebm_train_config *cfg, const char *resume) {
  ebm_trainer *tr = NULL;
  char err[512];
  if (ebm_trainer_create(&tr, be, cfg, resume, NULL, 0, err, sizeof err) != 0) {
    fprintf(stderr, "trainer: %s\n", err);
    exit(1);
  }
  return tr;
}

static int run_steps(ebm_trainer *tr, int n, ebm_train_stats *last) {
  char err[512];
  for (int i = 0; i < n; i++) {
    int rc = ebm_trainer_step(tr, last, err, sizeof err);
    if (rc != EBM_TRAIN_OK) {
      fprintf(stderr, "step: %s\n", err);
      return -1;
    }
  }
  return 0;
}

/* The tiny network learns to give rendered scenes lower energy than its own samples. */
static void test_toy_problem(ebm_backend *be) {
  ebm_train_config cfg = tiny_config();
  ebm_trainer *tr = make(be, &cfg, NULL);
  const int steps = 120, window = 20;
  double loss_first = 0, loss_last = 0, gap_last = 0;
  ebm_train_stats s;
  for (int i = 0; i < steps; i++) {
    TU_CHECK(run_steps(tr, 1, &s) == 0, "step %d", i);
    if (i < window) loss_first += s.loss / window;
    if (i >= steps - window) loss_last += s.loss / window, gap_last += (s.e_neg - s.e_pos) / window;
  }
  printf("toy: mean loss first %d steps %.4f, last %d steps %.4f; mean E- - E+ last %.4f\n", window,
         loss_first, window, loss_last, gap_last);
  TU_CHECK(loss_last < loss_first - 0.1, "loss did not fall: %g -> %g", loss_first, loss_last);
  TU_CHECK(gap_last > 0.2, "E- - E+ = %g: positives and negatives not separated", gap_last);
  ebm_trainer_destroy(tr);
}

static int get_state(ebm_trainer *tr, float **params, float **ema, float **neg) {
  ebm_net *n = ebm_trainer_net(tr), *e = ebm_trainer_ema_net(tr);
  size_t P = ebm_net_param_count(n), U = ebm_net_sn_u_count(n) + 1;
  const ebm_train_config *c = ebm_trainer_config(tr);
  size_t N = (size_t)c->batch * 3 * c->net.resolution * c->net.resolution;
  *params = malloc((P + U) * 4);
  *ema = malloc((P + U) * 4);
  *neg = malloc(N * 4);
  return ebm_net_get_params(n, *params, *params + P) || ebm_net_get_params(e, *ema, *ema + P) ||
         ebm_trainer_negatives(tr, *neg);
}

static void test_resume(ebm_backend *be, const char *dir) {
  ebm_train_config cfg = tiny_config();
  cfg.reservoir = 1;
  cfg.buffer_size = 20; /* fills in 3 steps: reservoir replacement is exercised */
  char ckpt[512], bad[512], err[512];
  snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/truncated.safetensors", dir);

  ebm_trainer *a = make(be, &cfg, NULL);
  ebm_train_stats sa, sb;
  TU_CHECK(run_steps(a, 8, &sa) == 0, "uninterrupted run");
  ebm_trainer *b = make(be, &cfg, NULL);
  TU_CHECK(run_steps(b, 5, &sb) == 0, "first half");
  TU_CHECK(ebm_trainer_save_checkpoint(b, ckpt, err, sizeof err) == 0, "save: %s", err);
  ebm_trainer_destroy(b);
  ebm_train_config other = tiny_config();
  other.lr = 0.5f; /* ignored: the checkpoint's configuration wins */
  b = make(be, &other, ckpt);
  TU_CHECK(ebm_trainer_step_count(b) == 5, "resumed at step %lld", (long long)ebm_trainer_step_count(b));
  TU_CHECK(run_steps(b, 3, &sb) == 0, "second half");
  float *pa, *ea, *na, *pb, *eb, *nb;
  TU_CHECK(!get_state(a, &pa, &ea, &na) && !get_state(b, &pb, &eb, &nb), "read state");
  size_t P = ebm_net_param_count(ebm_trainer_net(a)) + ebm_net_sn_u_count(ebm_trainer_net(a));
  size_t N = (size_t)cfg.batch * 3 * 8 * 8;
  TU_CHECK(!memcmp(pa, pb, P * 4), "resumed parameters differ from the uninterrupted run");
  TU_CHECK(!memcmp(ea, eb, P * 4), "resumed EMA weights differ");
  TU_CHECK(!memcmp(na, nb, N * 4), "resumed negatives differ");
  TU_CHECK(sa.loss == sb.loss && sa.e_pos == sb.e_pos && sa.e_neg == sb.e_neg,
           "loss %.9g vs %.9g", sa.loss, sb.loss);
  printf("resume: 8 steps vs 5 + save + load + 3: bit-identical parameters, EMA, negatives, loss %.6f\n",
         sb.loss);
  free(pa), free(ea), free(na), free(pb), free(eb), free(nb);
  ebm_trainer_destroy(a);

  /* truncated copy: refused with a reason; the original still resumes */
  FILE *f = fopen(ckpt, "rb");
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *bytes = malloc((size_t)len);
  TU_CHECK(fread(bytes, 1, (size_t)len, f) == (size_t)len, "read back");
  fclose(f);
  f = fopen(bad, "wb");
  fwrite(bytes, 1, (size_t)len * 2 / 3, f);
  fclose(f);
  free(bytes);
  ebm_trainer *t = NULL;
  err[0] = 0;
  TU_CHECK(ebm_trainer_create(&t, be, NULL, bad, NULL, 0, err, sizeof err) != 0 && !t,
           "a truncated checkpoint was accepted");
  printf("truncated checkpoint refused: %s\n", err);
  TU_CHECK(strstr(err, "truncated.safetensors") != NULL, "the reason does not name the file: %s", err);
  /* a save that cannot complete leaves the previous checkpoint intact */
  char nodir[600];
  snprintf(nodir, sizeof nodir, "%s/missing-dir/ckpt.safetensors", dir);
  TU_CHECK(ebm_trainer_save_checkpoint(b, nodir, err, sizeof err) != 0, "save into a missing folder succeeded");
  TU_CHECK(ebm_trainer_create(&t, be, NULL, ckpt, NULL, 0, err, sizeof err) == 0, "previous checkpoint: %s", err);
  ebm_trainer_destroy(t);
  ebm_trainer_destroy(b);
}

/* A crafted train.state: every counter, enum and size is refused by name before it can divide
 * by zero (replay_count 2^32 -> r % 0), index past the buffer (1000 images in a 64-image
 * buffer) or overflow a cast (2^31). The untouched copy still resumes. */
static void test_crafted_state(ebm_backend *be, const char *dir) {
  ebm_train_config cfg = tiny_config();
  ebm_trainer *tr = make(be, &cfg, NULL);
  char ckpt[600], bad[600], err[512];
  snprintf(ckpt, sizeof ckpt, "%s/state.ckpt.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/crafted.ckpt.safetensors", dir);
  TU_CHECK(run_steps(tr, 2, NULL) == 0, "steps");
  TU_CHECK(ebm_trainer_save_checkpoint(tr, ckpt, err, sizeof err) == 0, "save: %s", err);
  ebm_trainer_destroy(tr);
  static const struct {
    int index;
    float value;
    const char *field;
  } cases[] = {
      {17, 0.0f, "replay_count"},          /* count 0 + (256 << 24) = 2^32: was SIGFPE */
      {18, 128.0f, "replay_count"},        /* 2^31: was SIGSEGV */
      {17, 1000.0f, "replay_count"},       /* 1000 images in a 64-image buffer: read past it */
      {19, 3.0f, "replay_count"},          /* seen 3 (< 64) but count 16 */
      {17, 0.5f, "replay_count"},
      {12, 3e9f, "buffer_size"},
      {12, 0.0f, "buffer_size"},
      {1, 2147483648.0f, "batch"},
      {1, -1.0f, "batch"},
      {8, 0.0f, "langevin_steps"},
      {21, 7.0f, "chain_init"},
      {21, -1.0f, "chain_init"},
      {13, 2.0f, "reservoir"},
      {6, 1.5f, "adam_clip"},
      {22, 2.0f, "init_mean"},
      /* a buffer the file does not hold: refused before the 1.9 GB is allocated */
      {12, 1e7f, "buffer_size 10000000 needs"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    float v = cases[i].value;
    if (cases[i].index == 17 && v == 0.0f) {           /* the 2^32 case: low 0, high 256 */
      if (tu_st_rewrite(ckpt, bad, "extra.train.state", 18, 256.0f, NULL, NULL)) {
        TU_CHECK(0, "crafting case %zu", i);
        continue;
      }
      char tmp[620];
      snprintf(tmp, sizeof tmp, "%s.2", bad);
      if (tu_st_rewrite(bad, tmp, "extra.train.state", 17, 0.0f, NULL, NULL) || rename(tmp, bad)) {
        TU_CHECK(0, "crafting case %zu", i);
        continue;
      }
    } else if (tu_st_rewrite(ckpt, bad, "extra.train.state", (size_t)cases[i].index, v, NULL, NULL)) {
      TU_CHECK(0, "crafting case %zu", i);
      continue;
    }
    ebm_trainer *t = NULL;
    err[0] = 0;
    int rc = ebm_trainer_create(&t, be, NULL, bad, NULL, 0, err, sizeof err);
    TU_CHECK(rc != 0 && !t, "train.state[%d] = %g was accepted", cases[i].index, v);
    TU_CHECK(strstr(err, cases[i].field) && strstr(err, "crafted.ckpt.safetensors"),
             "train.state[%d] = %g: the reason does not name '%s' and the file: %s",
             cases[i].index, v, cases[i].field, err);
    ebm_trainer_destroy(t);
  }
  printf("crafted train.state: %zu cases refused, e.g. replay_count 2^32\n",
         sizeof cases / sizeof cases[0]);
  ebm_trainer *t = NULL;
  TU_CHECK(ebm_trainer_create(&t, be, NULL, ckpt, NULL, 0, err, sizeof err) == 0,
           "the untouched checkpoint: %s", err);
  ebm_trainer_destroy(t);
}

/* The label-contrastive term: its loss gradient against finite differences; a run with it
 * resumes bit-identically (position: the InfoNCE path with drawn wrong labels); and on the
 * colour concept it teaches the tiny network which label an image has in 600 steps
 * (cross-entropy falls from ln 8, the true label wins more often than chance). */
static void test_label_term(ebm_backend *be, const char *dir) {
  enum { K = 5, B = 3 };
  float e[K * B], de[K * B];
  for (int i = 0; i < K * B; i++) e[i] = 0.03f * sinf(1.7f * (float)i + 0.3f);
  const float temp = 0.02f, weight = 0.7f;
  double acc;
  ebm_train_label_ce(e, K, B, temp, weight, de, &acc);
  double worst = 0;
  for (int i = 0; i < K * B; i++) {
    float keep = e[i], scratch[K * B];
    const float h = 1e-4f;
    e[i] = keep + h;
    double up = ebm_train_label_ce(e, K, B, temp, weight, scratch, NULL);
    e[i] = keep - h;
    double down = ebm_train_label_ce(e, K, B, temp, weight, scratch, NULL);
    e[i] = keep;
    double fd = weight * (up - down) / (2.0 * h), rel = fabs(fd - de[i]) / (fabs(fd) + 1e-3);
    if (rel > worst) worst = rel;
  }
  printf("label term: dCE/dE against central differences, worst relative error %.2e\n", worst);
  TU_CHECK(worst < 1e-2, "label-term gradient off by %.2e", worst);

  ebm_train_config cfg;
  char err[512], ckpt[512];
  TU_CHECK(ebm_train_config_default(&cfg, "position", "general", "tiny", 8, err, sizeof err) == 0,
           "%s", err);
  cfg.batch = 8, cfg.langevin_steps = 4, cfg.step_lr = 10.0f, cfg.noise = 0.005f;
  cfg.buffer_size = 32, cfg.lr = 1e-3f, cfg.seed = 9, cfg.label_weight = 1.0f;
  snprintf(ckpt, sizeof ckpt, "%s/label.safetensors", dir);
  ebm_trainer *a = make(be, &cfg, NULL), *b = make(be, &cfg, NULL);
  ebm_train_stats sa, sb;
  TU_CHECK(run_steps(a, 6, &sa) == 0 && run_steps(b, 3, &sb) == 0, "runs");
  TU_CHECK(ebm_trainer_save_checkpoint(b, ckpt, err, sizeof err) == 0, "save: %s", err);
  ebm_trainer_destroy(b);
  b = make(be, NULL, ckpt);
  TU_CHECK(ebm_trainer_config(b)->label_weight == 1.0f, "the label weight was not resumed");
  TU_CHECK(run_steps(b, 3, &sb) == 0, "resumed run");
  printf("label term, position (InfoNCE, 1 + 4 labels): CE %.4f (ln 5 = %.4f), resumed %.4f\n",
         sa.label_ce, log(5.0), sb.label_ce);
  TU_CHECK(sa.loss == sb.loss && sa.label_ce == sb.label_ce, "resume with the label term differs");
  TU_CHECK(sa.label_ce > 0.5 && sa.label_ce < 3.0, "InfoNCE %.3f is not near ln 5", sa.label_ce);
  ebm_trainer_destroy(a);
  ebm_trainer_destroy(b);

  ebm_train_config col; /* `vkebm train --config tiny --size 8` with the term on */
  TU_CHECK(ebm_train_config_default(&col, "color", "general", "tiny", 8, err, sizeof err) == 0,
           "%s", err);
  col.batch = 16, col.langevin_steps = 5, col.buffer_size = 200, col.lr = 1e-3f;
  col.label_weight = 1.0f;
  ebm_trainer *t = make(be, &col, NULL);
  double first = 0, last = 0, acc_last = 0;
  for (int i = 0; i < 600; i++) {
    ebm_train_stats st;
    if (run_steps(t, 1, &st) != 0) break;
    if (i < 100) first += st.label_ce / 100;
    if (i >= 500) last += st.label_ce / 100, acc_last += st.label_acc / 100;
  }
  printf("label term, colour: CE %.3f over the first 100 steps, %.3f over the last 100 (ln 8 = "
         "%.3f); the true label lowest in %.0f%% (chance 12.5%%)\n", first, last, log(8.0),
         100 * acc_last);
  TU_CHECK(last < first - 0.05, "the label cross-entropy did not fall (%.3f -> %.3f)", first, last);
  TU_CHECK(acc_last > 0.2, "the true label is not preferred (%.0f%%)", 100 * acc_last);
  ebm_trainer_destroy(t);
}

static void test_divergence_guard(ebm_backend *be) {
  ebm_train_config cfg = tiny_config();
  cfg.diverge_energy = 1e-12f; /* any energy "runs away" */
  ebm_trainer *tr = make(be, &cfg, NULL);
  ebm_net *net = ebm_trainer_net(tr);
  size_t P = ebm_net_param_count(net);
  float *before = malloc(P * 4), *after = malloc(P * 4);
  ebm_net_get_params(net, before, NULL);
  char err[512] = "";
  ebm_train_stats s;
  int rc = ebm_trainer_step(tr, &s, err, sizeof err);
  TU_CHECK(rc == EBM_TRAIN_DIVERGED, "guard did not fire (rc %d)", rc);
  TU_CHECK(strstr(err, "diverged") != NULL, "message: %s", err);
  ebm_net_get_params(net, after, NULL);
  TU_CHECK(!memcmp(before, after, P * 4), "parameters changed on a diverged step");
  TU_CHECK(ebm_trainer_step_count(tr) == 0, "step advanced");
  printf("divergence guard: %s\n", err);
  free(before), free(after);
  ebm_trainer_destroy(tr);
}

static void test_model_output(ebm_backend *be, const char *dir) {
  ebm_train_config cfg = tiny_config();
  ebm_trainer *tr = make(be, &cfg, NULL);
  TU_CHECK(run_steps(tr, 2, NULL) == 0, "steps");
  char path[512], err[512];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  TU_CHECK(ebm_trainer_save_model(tr, path, 1, err, sizeof err) == 0, "save model: %s", err);
  ebm_model_info info;
  ebm_net *net = NULL;
  TU_CHECK(ebm_model_load(path, be, 4, &net, &info, NULL, 0, err, sizeof err) == 0, "load: %s", err);
  TU_CHECK(!strcmp(info.concept, "color") && info.label_kind == EBM_LABEL_ONEHOT &&
               info.step == 2 && ebm_model_label_index(&info, "red") >= 0,
           "metadata: concept %s kind %d step %lld", info.concept, info.label_kind, (long long)info.step);
  /* the saved weights are the EMA ones */
  size_t P = ebm_net_param_count(net);
  float *a = malloc(P * 4), *b = malloc(P * 4);
  ebm_net_get_params(net, a, NULL);
  ebm_net_get_params(ebm_trainer_ema_net(tr), b, NULL);
  TU_CHECK(!memcmp(a, b, P * 4), "model file is not the EMA weights");
  free(a), free(b);
  ebm_net_destroy(net);
  ebm_trainer_destroy(tr);
}

/* --chain-init data: the trainer fits the data's channel Gaussian (the floor is a mid grey, so
 * the means sit well inside (0.25, 0.6) and the spreads are far below uniform noise's 0.29),
 * keeps it across a checkpoint, records it in the model, and the sampler's init reproduces it. */
static void test_chain_init(ebm_backend *be, const char *dir) {
  ebm_train_config cfg = tiny_config();
  cfg.chain_init = 1;
  cfg.replay = 0.0f; /* every chain fresh: the negatives' first step starts from the Gaussian */
  ebm_trainer *tr = make(be, &cfg, NULL);
  const ebm_train_config *c = ebm_trainer_config(tr);
  const ebm_train_config pix = *c; /* kept past the trainer */
  for (int k = 0; k < 3; k++)
    TU_CHECK(c->init_mean[k] > 0.25f && c->init_mean[k] < 0.6f && c->init_std[k] > 0.01f &&
                 c->init_std[k] < 0.2f,
             "channel %d: fitted mean %g std %g", k, c->init_mean[k], c->init_std[k]);
  TU_CHECK(run_steps(tr, 2, NULL) == 0, "steps");
  char path[512], ckpt[512], err[512];
  snprintf(path, sizeof path, "%s/ci_model.safetensors", dir);
  snprintf(ckpt, sizeof ckpt, "%s/ci_ckpt.safetensors", dir);
  TU_CHECK(ebm_trainer_save_model(tr, path, 1, err, sizeof err) == 0, "save model: %s", err);
  TU_CHECK(ebm_trainer_save_checkpoint(tr, ckpt, err, sizeof err) == 0, "save checkpoint: %s", err);
  ebm_model_info info;
  TU_CHECK(ebm_model_read_info(path, &info, err, sizeof err) == 0, "read: %s", err);
  TU_CHECK(info.init_channels == 3 && fabsf(info.init_mean[1] - c->init_mean[1]) < 1e-5f &&
               fabsf(info.init_std[2] - c->init_std[2]) < 1e-5f && info.langevin_step_lr == 10.0f &&
               info.langevin_noise == 0.005f,
           "model records the chain start (%d channels) and the training sampler", info.init_channels);
  ebm_trainer *r = make(be, &cfg, ckpt);
  const ebm_train_config *rc = ebm_trainer_config(r);
  TU_CHECK(rc->chain_init == 1 && rc->init_mean[0] == c->init_mean[0] &&
               rc->init_std[0] == c->init_std[0],
           "the checkpoint keeps the chain start");
  ebm_trainer_destroy(r);
  /* the sampler's start: mean and spread per channel as recorded */
  enum { B = 4, HW = 256 };
  float *x = malloc(sizeof(float) * B * 3 * HW);
  ebm_sampler_init_gaussian(x, B, 3, HW, info.init_mean, info.init_std, 0, 11);
  for (int k = 0; k < 3; k++) {
    double s1 = 0, s2 = 0;
    for (int b = 0; b < B; b++)
      for (int p = 0; p < HW; p++) {
        double v = x[(size_t)b * 3 * HW + (size_t)k * HW + p];
        s1 += v, s2 += v * v;
      }
    double m = s1 / (B * HW), sd = sqrt(s2 / (B * HW) - m * m);
    TU_CHECK(fabs(m - info.init_mean[k]) < 0.01 && fabs(sd - info.init_std[k]) < 0.01,
             "init channel %d: mean %g sd %g, want %g %g", k, m, sd, info.init_mean[k],
             info.init_std[k]);
  }
  free(x);
  ebm_trainer_destroy(tr);

  /* --chain-init flat: the spread of the images' mean colours (smaller than the pixels'), and
   * every fresh chain is one flat colour */
  ebm_train_config fc = tiny_config();
  fc.chain_init = 2;
  fc.replay = 0.0f;
  ebm_trainer *ft = make(be, &fc, NULL);
  const ebm_train_config *f = ebm_trainer_config(ft);
  for (int k = 0; k < 3; k++)
    TU_CHECK(fabsf(f->init_mean[k] - pix.init_mean[k]) < 0.02f && f->init_std[k] > 0.005f &&
                 f->init_std[k] < pix.init_std[k],
             "flat channel %d: mean %g std %g (pixels: %g %g)", k, f->init_mean[k], f->init_std[k],
             pix.init_mean[k], pix.init_std[k]);
  snprintf(path, sizeof path, "%s/flat_model.safetensors", dir);
  TU_CHECK(ebm_trainer_save_model(ft, path, 1, err, sizeof err) == 0, "save model: %s", err);
  TU_CHECK(ebm_model_read_info(path, &info, err, sizeof err) == 0 && info.init_flat == 1 &&
               info.init_channels == 3,
           "the model records a flat chain start");
  float *y = malloc(sizeof(float) * 2 * 3 * 64);
  ebm_sampler_init_gaussian(y, 2, 3, 64, info.init_mean, info.init_std, 1, 5);
  int flat_ok = 1;
  for (int i = 0; i < 2 * 3; i++)
    for (int p = 1; p < 64; p++) flat_ok &= y[i * 64 + p] == y[i * 64];
  TU_CHECK(flat_ok && y[0] != y[3 * 64], "flat starts: one colour per image, differing between images");
  free(y);
  ebm_trainer_destroy(ft);
}

int main(void) {
  char dir[] = "/tmp/vkebm_test_train_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  /* one thread: the tiny network is too small to gain from more, and spinning threads
   * slow everything down on a shared machine */
  ebm_backend *be = NULL;
  ebm_backend_options opt = {.kind = EBM_BACKEND_CPU, .threads = 1};
  char err[256];
  if (ebm_backend_create(&be, &opt, err, sizeof err) != 0) {
    fprintf(stderr, "cpu backend: %s\n", err);
    return 1;
  }
  clock_t t0 = clock();
  test_adam(be);
  test_divergence_guard(be);
  test_model_output(be, dir);
  test_chain_init(be, dir);
  test_resume(be, dir);
  test_crafted_state(be, dir);
  test_toy_problem(be);
  test_label_term(be, dir);
  printf("cpu time %.1f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
  tu_backend_done(be);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tu_finish("test_train");
}
