/* test_judge.c: the judge (include/vkebm/judge.h) and the evaluation scorer (eval.h), cpu backend.
 *
 * 1. Gradients against central finite differences of the batch loss, on the tiny configuration
 *    (R=8, W=4, blocks 1d,2d), batch 3 < max_batch 4, two renders and one negative: every head weight row's first and last
 *    element and every head bias (the composed scalar heads), and sampled elements of every trunk
 *    tensor the judge trains (stem, convs, bypass, cb2: the trunk backward from the features).
 *    The loss is float32 network output reduced in double on the host, so the bound allows the
 *    network's rounding: |fd - an| <= 3e-2 max(|fd|, |an|) + 2e-3 (h = 1e-2). The trunk's own
 *    gradients are checked tightly against a double twin in test_net_grad.
 * 2. The head's backward matches the sum of K single heads (composition is exact) implicitly by
 *    1; determinism: two loss/grad passes give bitwise-equal gradients.
 * 2b. Negatives (ebm_judge_make_negatives): a pure function of (seed, step), about the asked
 *    fraction replaced, targets marked, pixels in [0, 1].
 * 3. Training: 80 Adam steps on one fixed batch of 8 rendered scenes cut the loss by half.
 * 4. Model file: save -> load gives bitwise-equal outputs and keeps step/seed/data spec; a concept
 *    model is refused as a judge ("not a judge file") and ebm_model_file_foreign tells the two
 *    apart; a judge file with a missing tensor is refused naming it.
 * 5. Scoring (ebm_eval_score): the boolean reading (AND / OR / NOT, sides' shares, strict, the
 *    readable share) is consistent with the judge's own readings of the same images, and bad
 *    terms are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/eval.h"
#include "vkebm/judge.h"
#include "vkebm/model.h"
#include "vkebm/safetensors.h"
#include "vkebm/scene.h"

#define B 3
#define MAXB 4

static double loss_at(ebm_judge *j, const float *img, const ebm_judge_target *t) {
  char err[256];
  ebm_judge_loss L;
  if (ebm_judge_loss_grad(j, img, t, B, &L, err, sizeof err)) {
    TU_CHECK(0, "%s", err);
    return NAN;
  }
  return L.total;
}

/* Checks element i of the tensor at ref (n floats) against its gradient gref. */
static void fd_check(ebm_judge *j, ebm_backend *be, ebm_ref p, ebm_ref g, size_t n, size_t i,
                     const float *img, const ebm_judge_target *t, const char *what,
                     double *worst) {
  float *host = malloc(n * sizeof *host), *grad = malloc(n * sizeof *grad);
  loss_at(j, img, t);
  ebm_download(be, grad, g, n);
  ebm_download(be, host, p, n);
  const float h = 1e-2f;
  float keep = host[i];
  host[i] = keep + h;
  ebm_upload(be, p, host, n);
  double lp = loss_at(j, img, t);
  host[i] = keep - h;
  ebm_upload(be, p, host, n);
  double lm = loss_at(j, img, t);
  host[i] = keep;
  ebm_upload(be, p, host, n);
  double fd = (lp - lm) / (2.0 * h), an = grad[i];
  double err = fabs(fd - an), bound = 3e-2 * fmax(fabs(fd), fabs(an)) + 2e-3;
  if (err / bound > *worst) *worst = err / bound;
  TU_CHECK(err <= bound, "%s[%zu]: finite difference %.6g, analytic %.6g", what, i, fd, an);
  free(host);
  free(grad);
}

static void render(int n, uint32_t seed, int R, float *img, ebm_judge_target *t) {
  scene_spec spec;
  char err[256];
  scene_spec_parse("general", &spec, err, sizeof err);
  ebm_judge_render_batch(&spec, seed, 0, n, R, img, t, 0);
}

static void test_gradients(ebm_backend *be) {
  ebm_judge_config cfg;
  ebm_judge_config_preset(&cfg, "tiny");
  ebm_judge *j;
  char err[512];
  if (ebm_judge_create(&j, be, &cfg, MAXB, 7, err, sizeof err)) {
    TU_CHECK(0, "%s", err);
    return;
  }
  int R = cfg.resolution;
  float img[B * 3 * 8 * 8];
  ebm_judge_target t[B];
  render(B, 11, R, img, t);
  /* image 1 becomes a negative: only its scene output carries a loss */
  for (int i = 0; i < 3 * R * R; i++) img[3 * R * R + i] = 0.25f + 0.5f * (float)((i * 7) % 5) / 4;
  t[1] = (ebm_judge_target){0, 0, 0, 0, 0, 0};
  double worst = 0;
  size_t hc;
  ebm_ref hp = ebm_judge_head_params(j, &hc), hg = ebm_judge_head_grads(j);
  int C;
  ebm_net_feature_shape(ebm_judge_net(j), &C, NULL);
  /* head layout (judge.c): K*C weights, then the K biases at the next EBM_ALIGN boundary */
  size_t boff = ((size_t)JUDGE_OUTPUTS * C + EBM_ALIGN - 1) / EBM_ALIGN * EBM_ALIGN;
  for (int k = 0; k < JUDGE_OUTPUTS; k++) {
    fd_check(j, be, hp, hg, hc, (size_t)k * C, img, t, "head.weight", &worst);
    fd_check(j, be, hp, hg, hc, (size_t)k * C + C - 1, img, t, "head.weight", &worst);
    fd_check(j, be, hp, hg, hc, boff + (size_t)k, img, t, "head.bias", &worst);
  }
  ebm_net *net = ebm_judge_net(j);
  size_t np = ebm_net_param_count(net);
  for (int i = 0; i < ebm_net_num_params(net); i++) {
    const ebm_param *q = ebm_net_param(net, i);
    if (!strcmp(q->name, "head.weight") || !strcmp(q->name, "head.bias")) continue;
    if (q->kind == EBM_PARAM_LABEL) continue; /* the zero label: their gradient is 0 */
    size_t picks[3] = {0, q->numel / 2, q->numel - 1};
    for (int s = 0; s < 3; s++)
      fd_check(j, be, ebm_net_params(net), ebm_net_grads(net), np, q->offset + picks[s], img, t,
               q->name, &worst);
  }
  printf("judge gradients: worst error / bound %.3f\n", worst);

  /* determinism */
  float *g1 = malloc(np * sizeof *g1), *g2 = malloc(np * sizeof *g2);
  loss_at(j, img, t);
  ebm_download(be, g1, ebm_net_grads(net), np);
  loss_at(j, img, t);
  ebm_download(be, g2, ebm_net_grads(net), np);
  TU_CHECK(!memcmp(g1, g2, np * sizeof *g1), "two identical passes gave different gradients");
  free(g1);
  free(g2);
  ebm_judge_destroy(j);
}

static void test_training(ebm_backend *be) {
  ebm_judge_config cfg;
  ebm_judge_config_preset(&cfg, "tiny");
  ebm_judge *j;
  char err[512];
  if (ebm_judge_create(&j, be, &cfg, 8, 3, err, sizeof err)) {
    TU_CHECK(0, "%s", err);
    return;
  }
  float img[8 * 3 * 8 * 8];
  ebm_judge_target t[8];
  render(8, 5, cfg.resolution, img, t);
  ebm_judge_loss first = {0}, last = {0};
  for (int s = 0; s < 80; s++) {
    ebm_judge_loss L;
    if (ebm_judge_train_step(j, img, t, 8, 1e-2f, &L, err, sizeof err)) {
      TU_CHECK(0, "step %d: %s", s, err);
      break;
    }
    if (s == 0) first = L;
    last = L;
  }
  printf("judge training: loss %.4f -> %.4f after 80 steps\n", first.total, last.total);
  TU_CHECK(last.total < 0.5 * first.total, "loss %.4f did not halve from %.4f", last.total,
           first.total);
  TU_CHECK(ebm_judge_step(j) == 80, "step count %lld", (long long)ebm_judge_step(j));

  /* save -> load: same outputs, same provenance */
  char path[] = "/tmp/vkebm_test_judgeXXXXXX";
  int fd = mkstemp(path);
  close(fd);
  ebm_judge_set_provenance(j, 3, "general");
  ebm_faithful_thresholds thr = {{0.0312f, 0.0555f}, {0.2f, 0.25f}, "test calibration"}, back;
  ebm_judge_set_faithful_thresholds(j, &thr);
  TU_CHECK(ebm_judge_save(j, path, err, sizeof err) == 0, "%s", err);
  ebm_judge *k;
  float o1[8 * JUDGE_OUTPUTS], o2[8 * JUDGE_OUTPUTS];
  if (ebm_judge_load(&k, be, path, 8, err, sizeof err)) {
    TU_CHECK(0, "load: %s", err);
  } else {
    ebm_judge_forward(j, img, 8, o1, err, sizeof err);
    ebm_judge_forward(k, img, 8, o2, err, sizeof err);
    TU_CHECK(!memcmp(o1, o2, sizeof o1), "reloaded judge gives other outputs");
    TU_CHECK(ebm_judge_faithful_thresholds(k, &back) == 0 &&
                 !memcmp(back.residual, thr.residual, sizeof thr.residual) &&
                 !memcmp(back.ratio, thr.ratio, sizeof thr.ratio) && !strcmp(back.how, thr.how),
             "the faithful thresholds did not round-trip");
    TU_CHECK(ebm_judge_step(k) == 80 && ebm_judge_seed(k) == 3 &&
                 !strcmp(ebm_judge_data_spec(k), "general"),
             "provenance lost");
    char fmt[64] = "";
    TU_CHECK(ebm_model_file_foreign(path, fmt, sizeof fmt) == 1 && !strcmp(fmt, "vkebm-judge"),
             "judge file not recognised as foreign (%s)", fmt);

    /* scoring consistency: readings of the same images decide every term */
    ebm_judge_reading r[8];
    ebm_judge_read(k, img, 8, r, err, sizeof err);
    const char *sh = scene_shape_name(r[0].shape), *co = scene_colour_name(r[0].colour);
    char expr[256];
    char sz[32];
    snprintf(sz, sizeof sz, "%.3f", r[0].size);
    float sv = strtof(sz, NULL);
    snprintf(expr, sizeof expr, "shape=%s AND NOT color=%s AND (color=%s OR size=%s)", sh, co, co,
             sz);
    ebm_eval_result res;
    /* thresholds at infinity: every sample the scene output accepts is faithful, so the boolean
     * reading is tested on its own (the faithful check has its own tests) */
    ebm_eval_scoring sc = {.size_tol = 0.1f, .pos_tol = 0.25f,
                           .thr = {{INFINITY, INFINITY}, {INFINITY, INFINITY}, "test"}};
    if (tu_eval_score_text(k, expr, img, 8, &sc, &res, NULL, err, sizeof err)) {
      TU_CHECK(0, "score: %s", err);
    } else {
      int want_shape = 0, want_notc = 0, want_or = 0, want_strict = 0, want_side0 = 0,
          want_side1 = 0;
      int want_readable = 0;
      for (int b = 0; b < 8; b++) {
        int ok = r[b].scene_prob >= 0.5f;
        want_readable += ok;
        int a = ok && r[b].shape == r[0].shape, nc = ok && r[b].colour != r[0].colour;
        int s0 = ok && r[b].colour == r[0].colour, s1 = ok && fabsf(r[b].size - sv) <= 0.1f;
        want_shape += a;
        want_notc += nc;
        want_side0 += s0;
        want_side1 += s1;
        want_or += s0 || s1;
        want_strict += a && nc && (s0 || s1);
      }
      TU_CHECK(res.nrows == 3, "rows %d", res.nrows);
      TU_CHECK(res.rows[0].satisfied == want_shape / 8.0, "shape row %.3f", res.rows[0].satisfied);
      TU_CHECK(res.rows[1].satisfied == want_notc / 8.0, "NOT row %.3f", res.rows[1].satisfied);
      TU_CHECK(res.rows[2].satisfied == want_or / 8.0 && res.rows[2].nsides == 2 &&
                   res.rows[2].side_share[0] == want_side0 / 8.0 &&
                   res.rows[2].side_share[1] == want_side1 / 8.0,
               "OR row %.3f", res.rows[2].satisfied);
      TU_CHECK(res.strict == want_strict / 8.0, "strict %.3f", res.strict);
      TU_CHECK(res.faithful == want_readable / 8.0, "faithful %.3f", res.faithful);
      if (r[0].scene_prob >= 0.5f)
        TU_CHECK(res.rows[0].satisfied >= 1.0 / 8, "the first image satisfies its own shape");
    }
    TU_CHECK(tu_eval_score_text(k, "smell=rose", img, 8, &sc, &res, NULL, err, sizeof err) != 0 &&
                 strstr(err, "smell"),
             "unknown concept accepted (%s)", err);
    TU_CHECK(tu_eval_score_text(k, "shape=pyramid", img, 8, &sc, &res, NULL, err, sizeof err) != 0,
             "unknown shape accepted");
    /* two places: judged on masked copies */
    TU_CHECK(tu_eval_score_text(k, "pos=(-0.5,0) AND pos=(0.5,0)", img, 8, &sc, &res, NULL, err,
                            sizeof err) == 0 && res.masked_positions == 1,
             "two positions not masked: %s", err);
    ebm_judge_destroy(k);
  }

  /* a file without a tensor is refused, naming it */
  st_file f;
  if (st_read(&f, path, 0, err, sizeof err) == 0) {
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.ntensors; i++)
      if (strcmp(f.tensors[i].name, "judge.head.bias"))
        st_writer_add(w, f.tensors[i].name, f.tensors[i].shape, f.tensors[i].ndim,
                      f.tensors[i].data);
    for (int i = 0; i < f.nmeta; i++) st_writer_meta(w, f.meta[i].key, f.meta[i].value);
    st_writer_save(w, path, err, sizeof err);
    st_writer_free(w);
    st_free(&f);
    TU_CHECK(ebm_judge_load(&k, be, path, 8, err, sizeof err) != 0 &&
                 strstr(err, "judge.head.bias"),
             "missing tensor not refused (%s)", err);
  }

  /* a concept model is not a judge */
  ebm_net_config nc;
  ebm_net_config_preset(&nc, "tiny", 2);
  ebm_net *net;
  if (ebm_net_create(&net, be, &nc, 1, 1, err, sizeof err) == 0) {
    ebm_model_info info;
    ebm_model_info_default(&info, &nc);
    TU_CHECK(ebm_model_save(path, net, &info, NULL, 0, err, sizeof err) == 0, "%s", err);
    TU_CHECK(ebm_model_file_foreign(path, NULL, 0) == 0, "a concept model counted as foreign");
    TU_CHECK(ebm_judge_load(&k, be, path, 8, err, sizeof err) != 0 &&
                 strstr(err, "not a judge file"),
             "concept model loaded as a judge (%s)", err);
    ebm_net_destroy(net);
  }
  unlink(path);
  ebm_judge_destroy(j);
}

static void test_negatives(void) {
  enum { N = 64, R = 8 };
  static float a[N * 3 * R * R], b[N * 3 * R * R];
  ebm_judge_target ta[N], tb[N];
  render(N, 3, R, a, ta);
  memcpy(b, a, sizeof a);
  memcpy(tb, ta, sizeof ta);
  int na = ebm_judge_make_negatives(a, ta, N, R, 9, 4, 0.25f);
  int nb = ebm_judge_make_negatives(b, tb, N, R, 9, 4, 0.25f);
  TU_CHECK(na == nb && !memcmp(a, b, sizeof a), "negatives are not a function of (seed, step)");
  TU_CHECK(na >= 6 && na <= 28, "%d of %d replaced at fraction 0.25", na, N);
  int scenes = 0, in_range = 1;
  for (int i = 0; i < N; i++) scenes += ta[i].scene;
  for (size_t i = 0; i < sizeof a / sizeof *a; i++) in_range &= a[i] >= 0.0f && a[i] <= 1.0f;
  TU_CHECK(scenes == N - na, "targets not marked: %d scenes, %d replaced", scenes, na);
  TU_CHECK(in_range, "negative pixels outside [0, 1]");
  TU_CHECK(ebm_judge_make_negatives(a, ta, N, R, 9, 5, 1.0f) == N, "fraction 1 left renders");
}

int main(void) {
  ebm_backend *be = tu_cpu_backend();
  test_negatives();
  test_gradients(be);
  test_training(be);
  tu_backend_done(be);
  return tu_finish("test_judge");
}
