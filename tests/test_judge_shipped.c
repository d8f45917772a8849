/* test_judge_shipped.c: the shipped judge (models/judge.safetensors) and the faithful check as
 * a measuring instrument that cannot be fooled.
 *
 * Skips (77) when the file is absent. Otherwise, on the cpu backend:
 * 1. Accuracy on 512 fresh renders of `general` (a seed other than its training seed): shape
 *    and colour >= 98%, position MAE <= 0.05, size MAE <= 0.03 — a guard that the committed file
 *    and the code reading it still agree (models/README.md has the 4000-render numbers).
 * 2. The file carries a calibration of the faithful check, and calibration is deterministic for
 *    a seed (two runs, same thresholds; another seed, other thresholds).
 * 3. Fresh renders of each concept's values (ebm_eval_reference_images: shape, colour, size,
 *    position, two objects at two places), scored against their own expressions: faithful
 *    >= 98% and strict >= 97% per family.
 * 4. A fixed set of non-scenes the test builds (blank floors with and without noise, uniform
 *    noise, colour haze, blurred blobs, ghosts of two renders, objects cut by noise; seeds the
 *    judge never trained on) is faithful in 0% of cases for every concept's expression, and
 *    satisfies nothing. One exception, measured and kept visible: for the two-object
 *    expression, a ghost or a cut object may pass in at most 1 of the NNEG of its kind (the
 *    two-object thresholds are looser; 1 of 12 cut objects passed when this was written).
 * 5. The two-object rule: scenes with one object at (-0.5, 0) pass `pos=(-0.5,0) AND
 *    pos=(0.5,0)` in 0% of cases (the re-render holds an object at each place).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/eval.h"
#include "vkebm/judge.h"
#include "vkebm/scene.h"

#define NFAMILY 100 /* renders per concept family */
#define NNEG 8      /* non-scenes per kind */

typedef struct family {
  const char *name;
  const char *const *exprs;
  int n; /* renders per expression */
} family;

static const char *const shapes[] = {"shape=cube", "shape=sphere", "shape=cylinder", "shape=cone",
                                     NULL};
static const char *const colours[] = {"color=red",    "color=green", "color=blue",
                                      "color=yellow", "color=purple", "color=cyan",
                                      "color=orange", "color=white", NULL};
static const char *const sizes[] = {"size=0.3", "size=0.4", "size=0.5", "size=0.6", "size=0.7",
                                    NULL};
static const char *const places[] = {"pos=(-0.6,-0.6)", "pos=(0.6,-0.6)", "pos=(0,0)",
                                     "pos=(-0.6,0.6)", "pos=(0.6,0.6)", NULL};
static const char *const pairs[] = {"pos=(-0.5,0) AND pos=(0.5,0)",
                                    "pos=(0,-0.6) AND pos=(0,0.6)", NULL};

/* Scores n fresh renders of expr against expr. */
static int score_refs(ebm_judge *j, const ebm_eval_scoring *sc, const char *expr, uint32_t seed,
                      int n, float *img, ebm_eval_result *res, char *err, size_t errlen) {
  expr_error perr;
  expr_node *t = expr_parse(expr, &perr);
  int R = ebm_judge_config_of(j)->resolution;
  int rc = !t || ebm_eval_reference_images(t, sc->size_tol, sc->pos_tol, seed, n, R, img) ||
           ebm_eval_score(j, t, img, n, sc, res, NULL, err, errlen);
  expr_free(t);
  return rc;
}

int main(void) {
  char path[4200];
  tu_source_path(path, sizeof path, "models/judge.safetensors");
  if (access(path, R_OK) != 0) {
    printf("test_judge_shipped: no %s, skipping\n", path);
    return 77;
  }
  ebm_backend *be = tu_cpu_backend();
  ebm_judge *j;
  char err[512];
  if (ebm_judge_load(&j, be, path, 64, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  scene_spec spec;
  scene_spec_parse("general", &spec, err, sizeof err);
  ebm_judge_eval ev;
  TU_CHECK(ebm_judge_evaluate(j, &spec, 777001u, 512, 0, &ev, err, sizeof err) == 0, "%s", err);
  printf("shipped judge on 512 renders: shape %.2f%%, colour %.2f%%, position MAE %.4f, size MAE "
         "%.4f; read as scenes: renders %.1f%%, non-scenes %.1f%%\n", 100 * ev.shape_acc,
         100 * ev.colour_acc, ev.pos_mae, ev.size_mae, 100 * ev.scene_renders,
         100 * ev.scene_negatives);
  TU_CHECK(ev.shape_acc >= 0.98 && ev.colour_acc >= 0.98, "accuracy dropped");
  TU_CHECK(ev.pos_mae <= 0.05 && ev.size_mae <= 0.03, "regression errors grew");

  /* 2. the calibration */
  ebm_eval_scoring sc;
  TU_CHECK(ebm_eval_scoring_for(j, &sc, err, sizeof err) == 0, "%s", err);
  printf("recorded thresholds: residual %.4f / %.4f, ratio %.3f / %.3f (%s)\n", sc.thr.residual[0],
         sc.thr.residual[1], sc.thr.ratio[0], sc.thr.ratio[1], sc.thr.how);
  ebm_faithful_thresholds a, b, c;
  TU_CHECK(ebm_eval_calibrate(j, 4242, 48, 0.99f, &a, NULL, NULL, err, sizeof err) == 0 &&
               ebm_eval_calibrate(j, 4242, 48, 0.99f, &b, NULL, NULL, err, sizeof err) == 0 &&
               ebm_eval_calibrate(j, 4243, 48, 0.99f, &c, NULL, NULL, err, sizeof err) == 0,
           "%s", err);
  TU_CHECK(!memcmp(a.residual, b.residual, sizeof a.residual) &&
               !memcmp(a.ratio, b.ratio, sizeof a.ratio) && !strcmp(a.how, b.how),
           "calibration is not deterministic for a seed");
  TU_CHECK(memcmp(a.residual, c.residual, sizeof a.residual) != 0,
           "another seed gave the same thresholds");

  int R = ebm_judge_config_of(j)->resolution;
  size_t per = (size_t)3 * R * R;
  float *img = malloc((size_t)NFAMILY * per * sizeof *img);

  /* 3. fresh renders are faithful and correct for their own labels */
  const family fams[] = {{"shape", shapes, 25},      {"colour", colours, 13},
                         {"size", sizes, 20},        {"position", places, 20},
                         {"two objects", pairs, 25}};
  for (size_t f = 0; f < sizeof fams / sizeof *fams; f++) {
    double faithful = 0, strict = 0;
    int n = 0;
    for (int e = 0; fams[f].exprs[e]; e++) {
      ebm_eval_result res;
      if (score_refs(j, &sc, fams[f].exprs[e], 5150u + (uint32_t)e, fams[f].n, img, &res, err,
                     sizeof err)) {
        TU_CHECK(0, "%s: %s", fams[f].exprs[e], err);
        continue;
      }
      faithful += res.faithful * res.n;
      strict += res.strict * res.n;
      n += res.n;
    }
    printf("fresh renders, %-11s (%3d): faithful %.1f%%, strict %.1f%%\n", fams[f].name, n,
           100 * faithful / n, 100 * strict / n);
    TU_CHECK(faithful / n >= 0.98, "%s: renders faithful %.1f%%", fams[f].name, 100 * faithful / n);
    TU_CHECK(strict / n >= 0.97, "%s: renders strict %.1f%%", fams[f].name, 100 * strict / n);
  }

  /* 4. non-scenes: faithful in 0% of cases, for every concept */
  int nneg = NNEG * JUDGE_NEG_KINDS;
  float *neg = malloc((size_t)nneg * per * sizeof *neg), *scratch = malloc(per * sizeof *scratch);
  ebm_judge_render_batch(&spec, 90210u, 0, NNEG + 1, R, img, NULL, 0);
  for (int k = 0; k < JUDGE_NEG_KINDS; k++)
    for (int b = 0; b < NNEG; b++) {
      float *im = neg + ((size_t)k * NNEG + b) * per;
      memcpy(im, img + (size_t)b * per, per * sizeof *im);
      ebm_judge_make_negative(im, img + (size_t)(b + 1) * per, R, k, 31337u, 7u, (uint32_t)b,
                              scratch);
    }
  const char *const probes[] = {"shape=cone", "color=white", "size=0.3", "pos=(0.5,-0.5)",
                                "shape=sphere AND NOT color=red", "pos=(-0.5,0) AND pos=(0.5,0)"};
  for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
    ebm_eval_result res;
    ebm_eval_sample *v = malloc((size_t)nneg * sizeof *v);
    ebm_eval_detail det = {.samples = v};
    if (tu_eval_score_text(j, probes[p], neg, nneg, &sc, &res, &det, err, sizeof err)) {
      TU_CHECK(0, "%s: %s", probes[p], err);
      free(v);
      continue;
    }
    int per_kind[JUDGE_NEG_KINDS] = {0};
    for (int b = 0; b < nneg; b++) per_kind[b / NNEG] += v[b].faithful;
    printf("non-scenes vs %-32s faithful %.1f%% strict %.1f%% (the judge's readings alone: "
           "%.1f%%)\n", probes[p], 100 * res.faithful, 100 * res.strict, 100 * res.read_strict);
    int two = strstr(probes[p], " AND pos=") != NULL;
    for (int k = 0; k < JUDGE_NEG_KINDS; k++) {
      int allowed = two && (k == JUDGE_NEG_BLENDED || k == JUDGE_NEG_CUT);
      TU_CHECK(per_kind[k] <= allowed, "%s: %d of %d '%s' faithful", probes[p], per_kind[k], NNEG,
               ebm_judge_negative_name(k));
    }
    TU_CHECK(res.strict == 0 && res.rows[0].satisfied == 0, "%s: non-scenes satisfy it",
             probes[p]);
    free(v);
  }
  free(neg);
  free(scratch);

  /* 5. one object cannot pass for two */
  {
    const char *expr = "pos=(-0.5,0) AND pos=(0.5,0)";
    float *packed = malloc((size_t)NFAMILY * VKEBM_SCENE_FLOATS * sizeof *packed);
    for (int b = 0; b < NFAMILY; b++) {
      scene_desc d;
      scene_sample(&spec, 32, (uint32_t)b, &d);
      d.obj[0].x = -0.5f;
      d.obj[0].y = 0.0f;
      if (d.obj[0].size > 0.5f) d.obj[0].size = 0.5f;
      scene_pack(&d, packed + (size_t)b * VKEBM_SCENE_FLOATS);
    }
    scene_render_cpu(img, packed, NFAMILY, R, NULL, 0);
    free(packed);
    ebm_eval_result one;
    TU_CHECK(tu_eval_score_text(j, expr, img, NFAMILY, &sc, &one, NULL, err, sizeof err) == 0, "%s",
             err);
    printf("one object at (-0.5,0) for `%s`: %.1f%% strict (unverified %.1f%%)\n", expr,
           100 * one.strict, 100 * one.read_strict);
    TU_CHECK(one.strict == 0, "one object passed for two");
  }
  free(img);
  ebm_judge_destroy(j);
  tu_backend_done(be);
  return tu_finish("test_judge_shipped");
}
