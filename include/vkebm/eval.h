/* eval.h: measuring compositions: sample an expression, judge every sample, score its terms.
 *
 * Owns: loading a models folder into a concept set (concept models only; other vkebm files
 * such as the judge are skipped), sampling an expression with the same library calls as
 * `vkebm sample` (ebm_sampler_init_uniform + ebm_sample, the sampler's defaults), reading every
 * sample with the judge (judge.h), and deciding satisfaction:
 *   shape=X, color=Y    the judge's argmax equals the value
 *   size=s              |judged size - s| <= size_tol (default 0.1: half the spacing of sizes
 *                       0.3/0.5/0.7 a user would tell apart)
 *   pos=(x,y)           max(|judged x - x|, |judged y - y|) <= pos_tol (default 0.25: an
 *                       eighth of the floor's width, the spacing of a 5x5 grid of places)
 *   NOT e               e is not satisfied;  a AND b: both;  a OR b: either (weights ignored)
 * Two or more position terms at different places ("two objects") cannot be read by one
 * single-object judge reading of the whole image. Then each position term is judged on a
 * masked copy: every pixel is assigned to the nearest projected place (the places' centres
 * projected through the default camera, objects 0.4 high), the pixels of the other places'
 * cells are replaced by the image's per-channel median (the floor), and the judge's position
 * reading of that copy must be within pos_tol of the term's place. Other terms (shape, colour,
 * size) are judged on the whole image in that case, i.e. on whichever object the judge reads.
 * Readable: a classifier trained on renders answers on anything (the judge without its scene
 * output read uniform noise as a confident "cube"), so a sample satisfies nothing, NOT terms
 * included, unless the judge's scene output reads it as a render (scene_prob >= 0.5; trained
 * against noise, blocky noise and noised renders, judge.h). The readable share is reported.
 * Rows: the root's conjuncts (the root itself when it is not an AND); an OR row also reports
 * each side's share (the fraction of samples satisfying that side). Strict accuracy: the whole
 * expression satisfied.
 */
#ifndef VKEBM_EVAL_H
#define VKEBM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/concept.h"
#include "vkebm/judge.h"
#include "vkebm/sampler.h"

#define EBM_EVAL_MAX_ROWS 16
#define EBM_EVAL_MAX_SIDES 8
#define EBM_EVAL_DEFAULT_SIZE_TOL 0.1f
#define EBM_EVAL_DEFAULT_POS_TOL 0.25f

/* The shipped analytic concepts at resolution R (as `vkebm sample --analytic`). */
int ebm_eval_load_analytic(ebm_backend *be, int resolution, int max_rows, ebm_concept_set *set,
                           char *err, size_t errlen);

typedef struct ebm_eval_settings {
  int n;                  /* samples */
  int batch;              /* chains sampled at once (memory), n split into batches */
  uint32_t seed;          /* batch k uses seed + k */
  ebm_sampler_config sc;  /* the sampler (its seed is set per batch) */
  int analytic;           /* the set is analytic: the sample CLI's analytic step size */
  int step_given, noise_given; /* sc's step/noise were chosen: learned models' hints unused */
  float size_tol, pos_tol;
} ebm_eval_settings;

/* Defaults: n 256, batch 64, seed 1, paper sampler with `vkebm sample`'s defaults, the
 * tolerances above. */
void ebm_eval_settings_default(ebm_eval_settings *s);

typedef struct ebm_eval_row {
  char text[256];          /* canonical text of the conjunct */
  double satisfied;        /* fraction of samples */
  int nsides;              /* > 0 for an OR row */
  char side_text[EBM_EVAL_MAX_SIDES][128];
  double side_share[EBM_EVAL_MAX_SIDES];
} ebm_eval_row;

typedef struct ebm_eval_result {
  char expr[1024];         /* canonical */
  int n, nrows;
  ebm_eval_row rows[EBM_EVAL_MAX_ROWS];
  double strict;           /* all rows at once */
  double readable;         /* share of samples with a readable reading (see above) */
  int masked_positions;    /* 1 when position terms were judged on masked copies */
  double seconds;
} ebm_eval_result;

/* The sampler ebm_eval_expr runs: s->sc, with learned models' recorded training step and noise
 * (ebm_concept_set_sampler_hint) or the analytic step where s does not set them. */
void ebm_eval_sampler(const ebm_eval_settings *s, const ebm_concept_set *set,
                      ebm_sampler_config *sc);

/* Samples expr with the models of set and judges it. 0, or -1 with a one-line reason
 * (expression errors carry the caret-formatted message). images (optional): the samples are
 * written there, host [n, 3, R, R], when non-NULL. */
int ebm_eval_expr(ebm_backend *be, const ebm_concept_set *set, ebm_judge *judge, const char *expr,
                  const ebm_eval_settings *s, ebm_eval_result *out, float *images, char *err,
                  size_t errlen);

/* 1 when a reading is one a rendered scene could give (see "Readable" above). */
int ebm_eval_readable(const ebm_judge_reading *r);

/* Judges given images [n, 3, R, R] against expr (no sampling): the scoring half of
 * ebm_eval_expr, for tests and for scoring images made elsewhere. */
int ebm_eval_score(ebm_judge *judge, const char *expr, const float *images, int n,
                   float size_tol, float pos_tol, ebm_eval_result *out, char *err,
                   size_t errlen);

#endif
