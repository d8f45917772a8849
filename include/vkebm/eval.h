/* eval.h: measuring compositions: sample an expression, judge every sample, verify what the
 * judge read by re-rendering it, score its terms.
 *
 * Owns: sampling an expression with the same library calls as `vkebm sample`
 * (ebm_sampler_init_for_set + ebm_sample, the sampler's defaults), reading every sample with the
 * judge (judge.h), verifying each reading by analysis by synthesis (faithful.h), deciding
 * satisfaction, fresh reference renders of an expression, the Frechet distance between samples
 * and references, and the calibration of the faithful check.
 *
 * Faithful: the judge answers on anything (it read an empty noisy floor as a confident "white
 * cone"). A sample counts only when (1) the judge's scene output reads it as a render
 * (scene_prob >= 0.5; trained against noise, empty floors, haze, blobs, ghosts, judge.h) and
 * (2) the scene the judge read, re-rendered with its nuisances refined, explains it: residual
 * and residual-to-empty-floor ratio within the thresholds calibrated for the judge on fresh
 * renders (faithful.h; ebm_eval_calibrate). A sample that is not faithful satisfies nothing,
 * NOT terms included: garbage is not "not red".
 *
 * Terms of a faithful sample:
 *   shape=X, color=Y    the judge's argmax equals the value
 *   size=s              |judged size - s| <= size_tol (default 0.1: half the spacing of sizes
 *                       0.3/0.5/0.7 a user would tell apart)
 *   pos=(x,y)           max(|judged x - x|, |judged y - y|) <= pos_tol (default 0.25: an
 *                       eighth of the floor's width, the spacing of a 5x5 grid of places)
 *   NOT e               e is not satisfied;  a AND b: both;  a OR b: either (weights ignored)
 * Two or more position terms at different places ("two objects") cannot be read by one
 * single-object judge reading of the whole image. Then each place is read on a masked copy:
 * every pixel is assigned to the nearest projected place (the places' centres projected through
 * the default camera, objects 0.4 high), the pixels of the other places' cells are replaced by
 * the image's per-channel median (the floor). Each masked copy must read as a scene, each
 * position term is judged on its place's reading, and the re-render holds one object per place
 * (each with its own reading's shape, colour and size), so one object between two places fails.
 * Other terms (shape, colour, size) are judged on the whole image in that case.
 * Rows: the root's conjuncts (the root itself when it is not an AND); an OR row also reports
 * each side's share. Strict accuracy: faithful and the whole expression satisfied.
 */
#ifndef VKEBM_EVAL_H
#define VKEBM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/concept.h"
#include "vkebm/expr.h"
#include "vkebm/faithful.h"
#include "vkebm/judge.h"
#include "vkebm/sampler.h"

#define EBM_EVAL_MAX_ROWS 16
#define EBM_EVAL_MAX_SIDES 8
#define EBM_EVAL_DEFAULT_SIZE_TOL 0.1f
#define EBM_EVAL_DEFAULT_POS_TOL 0.25f

/* How samples are scored. */
typedef struct ebm_eval_scoring {
  float size_tol, pos_tol;
  ebm_faithful_thresholds thr; /* the judge's calibration (ebm_judge_faithful_thresholds) */
} ebm_eval_scoring;

/* Default tolerances and the judge's recorded thresholds. 0, or -1 with a reason when the judge
 * file has no calibration (`vkebm judge calibrate` adds one). */
int ebm_eval_scoring_for(ebm_judge *judge, ebm_eval_scoring *sc, char *err, size_t errlen);

/* Progress of a long evaluation: done of total samples (sampled, then verified). */
typedef void (*ebm_eval_progress_fn)(void *ctx, const char *phase, int done, int total);

typedef struct ebm_eval_settings {
  int n;                  /* samples */
  int batch;              /* chains sampled at once (memory), n split into batches */
  uint32_t seed;          /* batch k uses seed + k; reference renders use seeds derived from it */
  ebm_sampler_config sc;  /* the sampler (its seed is set per batch) */
  int analytic;           /* the set is analytic: the sample CLI's analytic step size */
  int step_given, noise_given, steps_given; /* sc's step/noise/steps were chosen: the learned
                                                models' hints for them unused */
  ebm_eval_scoring scoring;
  int frechet;            /* 1: also compute the Frechet distances (default) */
  int or_mixture;         /* 1: sample each OR as a mixture (ebm_composition_set_or_mixture) */
  const char *score_expr; /* non-NULL: score the samples (and render the Frechet references) for
                             this expression instead of the sampled one: a joint model's
                             `joint=(...)` samples against the composition its label stands for */
  ebm_eval_progress_fn progress; /* optional */
  void *progress_ctx;
} ebm_eval_settings;

/* Defaults: n 256, batch 64, seed 1, paper sampler with `vkebm sample`'s defaults, the
 * tolerances above, Frechet on. scoring.thr is left empty: fill it (ebm_eval_scoring_for). */
void ebm_eval_settings_default(ebm_eval_settings *s);

typedef struct ebm_eval_row {
  char text[256];          /* canonical text of the conjunct */
  double satisfied;        /* fraction of samples (faithful ones only count) */
  double read_satisfied;   /* what the judge's readings alone say of the row: samples its scene
                              output reads as renders that satisfy it (not verified) */
  int nsides;              /* > 0 for an OR row */
  char side_text[EBM_EVAL_MAX_SIDES][128];
  double side_share[EBM_EVAL_MAX_SIDES];
} ebm_eval_row;

typedef struct ebm_eval_result {
  char expr[1024];         /* canonical: the expression scored */
  char sampled[1024];      /* canonical: the expression sampled (= expr without score_expr) */
  int n, nrows;
  ebm_eval_row rows[EBM_EVAL_MAX_ROWS];
  double strict;           /* faithful and the whole expression satisfied */
  double faithful;         /* share of samples that pass the faithful check */
  double scene;            /* share the judge's scene output reads as renders */
  double read_strict;      /* what the judge's readings alone would score (not verified): the
                              number the evaluation reported before the faithful check */
  double residual_median;  /* over the samples */
  double frechet;          /* judge-feature Frechet distance, samples vs fresh renders of the
                              expression; NAN when not computed */
  double frechet_floor;    /* the same between two sets of fresh renders (its noise floor) */
  int masked_positions;    /* 1 when positions were judged on masked copies */
  int objects;             /* objects per re-render: 1, or the number of distinct places */
  double seconds;
} ebm_eval_result;

/* What was decided about one sample (ebm_eval_detail). */
typedef struct ebm_eval_sample {
  int faithful, strict;
  uint32_t rows;           /* bit r: row r satisfied (faithful samples only) */
  float scene_prob;        /* the smallest over the readings used */
  ebm_judge_reading whole; /* the judge's reading of the whole image */
  ebm_faithful_fit fit;    /* the best re-render: refined objects, residual, ratio */
} ebm_eval_sample;

/* Optional outputs of one evaluation; each pointer may be NULL, else holds n entries. */
typedef struct ebm_eval_detail {
  ebm_eval_sample *samples;
  float *images;    /* [n, 3, R, R] the samples */
  float *rerenders; /* [n, 3, R, R] each sample's best re-render */
} ebm_eval_detail;

/* The sampler ebm_eval_expr runs: s->sc, with learned models' recorded training step and noise
 * (ebm_concept_set_sampler_hint) or the analytic step where s does not set them. */
void ebm_eval_sampler(const ebm_eval_settings *s, const ebm_concept_set *set,
                      ebm_sampler_config *sc);

/* Samples the parsed expression tree with the models of set and judges it. 0, or -1 with a
 * one-line reason; when a term does not bind to the models, also *bind_err (optional) with its
 * position in the text the tree was parsed from (for expr_error_format), as
 * ebm_composition_create gives it. */
int ebm_eval_expr(ebm_backend *be, const ebm_concept_set *set, ebm_judge *judge,
                  const expr_node *tree, const ebm_eval_settings *s, ebm_eval_result *out,
                  const ebm_eval_detail *detail, expr_error *bind_err, char *err, size_t errlen);

/* Judges given images [n, 3, R, R] against the tree (no sampling, no Frechet distance): the scoring
 * half of ebm_eval_expr, for tests and for scoring images made elsewhere. */
int ebm_eval_score(ebm_judge *judge, const expr_node *tree, const float *images, int n,
                   const ebm_eval_scoring *sc, ebm_eval_result *out, const ebm_eval_detail *detail,
                   char *err, size_t errlen);

/* Fresh renders that satisfy expr: scene index of the general spec (light, camera, albedo
 * jitter on) with the expression's terms imposed: one side of each OR chosen by a hash of
 * (seed, index), NOT terms made false by redrawing their attribute, and one object per
 * distinct place (sizes 0.3-0.5, as the multi spec) when there are two or more. 0, or -1 when
 * a term is not a scene concept. */
int ebm_eval_reference_scene(const expr_node *tree, float size_tol, float pos_tol, uint32_t seed,
                             uint32_t index, scene_desc *d);
/* n of them rendered at R into images [n, 3, R, R]. */
int ebm_eval_reference_images(const expr_node *tree, float size_tol, float pos_tol, uint32_t seed,
                              int n, int R, float *images);

/* Calibrates the faithful check for judge: n fresh `general` renders and n/2 `multi 2` renders
 * (places = the objects' true positions) from seed, each read by the judge and re-rendered as a
 * sample would be; the thresholds are the quantile q of their residuals and of their ratios, for
 * one object and for two. Deterministic for (judge, seed, n, q). */
int ebm_eval_calibrate(ebm_judge *judge, uint32_t seed, int n, float q,
                       ebm_faithful_thresholds *out, ebm_eval_progress_fn progress, void *ctx,
                       char *err, size_t errlen);

/* Frechet distance between feature sets a[na, dim] and b[nb, dim] (means and covariances, as
 * FID). NAN when either set has fewer than 2 vectors. */
double ebm_frechet_distance(const float *a, int na, const float *b, int nb, int dim);

#endif
