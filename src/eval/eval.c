/* eval.c: sample an expression, judge every sample, verify it, score it (include/vkebm/eval.h).
 *
 * Owns the sampling loop (the same library calls `vkebm sample` makes), the boolean reading of
 * an expression tree against the judge's readings, the masked reading of position terms for
 * multi-object expressions, the faithful check's use and calibration (the search itself is
 * faithful.c), fresh reference renders of an expression, and the Frechet distances.
 */
#include "vkebm/eval.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkebm/compose.h"
#include "vkebm/expr.h"
#include "vkebm/infer.h"
#include "vkebm/model.h"
#include "vkebm/scene.h"

#define MAX_POS_TERMS 8

/* ---- models ------------------------------------------------------------------------------- */

void ebm_eval_settings_default(ebm_eval_settings *s) {
  memset(s, 0, sizeof *s);
  s->n = 256;
  s->batch = 64;
  s->seed = 1;
  ebm_sampler_defaults(&s->sc, EBM_SAMPLER_PAPER);
  s->sc.adapt_steps = s->sc.steps / 2;
  s->scoring.size_tol = EBM_EVAL_DEFAULT_SIZE_TOL;
  s->scoring.pos_tol = EBM_EVAL_DEFAULT_POS_TOL;
  s->frechet = 1;
}

int ebm_eval_scoring_for(ebm_judge *judge, ebm_eval_scoring *sc, char *err, size_t errlen) {
  sc->size_tol = EBM_EVAL_DEFAULT_SIZE_TOL;
  sc->pos_tol = EBM_EVAL_DEFAULT_POS_TOL;
  if (ebm_judge_faithful_thresholds(judge, &sc->thr)) {
    snprintf(err, errlen, "the judge has no calibration of the faithful check (run `vkebm judge "
             "calibrate --model FILE`)");
    return -1;
  }
  return 0;
}

/* ---- scoring ------------------------------------------------------------------------------ */

typedef struct scorer {
  float size_tol, pos_tol;
  int npos;                       /* distinct places among the position terms */
  float place[MAX_POS_TERMS][2];
  const ebm_judge_reading *whole; /* reading of the whole image */
  ebm_judge_reading masked[MAX_POS_TERMS];
} scorer;

static int place_index(const scorer *s, const float *v) {
  for (int i = 0; i < s->npos; i++)
    if (s->place[i][0] == v[0] && s->place[i][1] == v[1]) return i;
  return -1;
}

/* Collects the distinct places of the position terms; checks every term can be judged. */
static int collect(const expr_node *n, scorer *s, char *err, size_t errlen) {
  if (n->kind != EXPR_TERM) {
    for (int i = 0; i < n->num_children; i++)
      if (collect(n->children[i], s, err, errlen)) return -1;
    return 0;
  }
  const char *c = ebm_concept_canonical_name(n->concept);
  if (!strcmp(c, "shape") || !strcmp(c, "color")) {
    int id = -1;
    if (n->value_name[0])
      id = !strcmp(c, "shape") ? scene_shape_from_name(n->value_name)
                               : scene_colour_from_name(n->value_name);
    else if (n->num_values == 1 && n->values[0] == floorf(n->values[0]))
      id = (int)n->values[0];
    int limit = !strcmp(c, "shape") ? JUDGE_NSHAPES : JUDGE_NCOLOURS;
    if (id < 0 || id >= limit) {
      snprintf(err, errlen, "the judge cannot read %s=%s", n->concept,
               n->value_name[0] ? n->value_name : "(number)");
      return -1;
    }
  } else if (!strcmp(c, "size")) {
    if (n->num_values != 1) {
      snprintf(err, errlen, "size takes one number, not %d", n->num_values);
      return -1;
    }
  } else if (!strcmp(c, "position")) {
    if (n->num_values != 2) {
      snprintf(err, errlen, "pos takes (x, y), not %d numbers", n->num_values);
      return -1;
    }
    if (place_index(s, n->values) < 0) {
      if (s->npos == MAX_POS_TERMS) {
        snprintf(err, errlen, "more than %d distinct positions", MAX_POS_TERMS);
        return -1;
      }
      s->place[s->npos][0] = n->values[0];
      s->place[s->npos][1] = n->values[1];
      s->npos++;
    }
  } else {
    snprintf(err, errlen, "the judge reads shape, color, size and pos; not '%s'", n->concept);
    return -1;
  }
  return 0;
}

static int term_ok(const scorer *s, const expr_node *n) {
  const char *c = ebm_concept_canonical_name(n->concept);
  const ebm_judge_reading *r = s->whole;
  if (!strcmp(c, "shape") || !strcmp(c, "color")) {
    int id = n->value_name[0] ? (!strcmp(c, "shape") ? scene_shape_from_name(n->value_name)
                                                     : scene_colour_from_name(n->value_name))
                              : (int)n->values[0];
    return (!strcmp(c, "shape") ? r->shape : r->colour) == id;
  }
  if (!strcmp(c, "size")) return fabsf(r->size - n->values[0]) <= s->size_tol;
  if (s->npos > 1) r = &s->masked[place_index(s, n->values)];
  return fabsf(r->x - n->values[0]) <= s->pos_tol && fabsf(r->y - n->values[1]) <= s->pos_tol;
}

static int node_ok(const scorer *s, const expr_node *n) {
  switch (n->kind) {
  case EXPR_TERM: return term_ok(s, n);
  case EXPR_NOT: return !node_ok(s, n->children[0]);
  case EXPR_AND:
    for (int i = 0; i < n->num_children; i++)
      if (!node_ok(s, n->children[i])) return 0;
    return 1;
  case EXPR_OR:
    for (int i = 0; i < n->num_children; i++)
      if (node_ok(s, n->children[i])) return 1;
    return 0;
  }
  return 0;
}

/* Masked copies for the places (see eval.h): out[npos, 3, R, R]; the rule infer.h shares. */
static void mask_places(const scorer *s, const float *img, int R, float *out) {
  float fill[3];
  ebm_infer_median(img, R, fill);
  for (int i = 0; i < s->npos; i++)
    ebm_infer_mask_others(img, R, (const float(*)[2])s->place, s->npos, i, fill,
                          out + (size_t)i * 3 * R * R);
}

/* Shape or colour id of a term (collect() checked it). */
static int term_id(const expr_node *n, int shape) {
  if (n->value_name[0])
    return shape ? scene_shape_from_name(n->value_name) : scene_colour_from_name(n->value_name);
  return (int)n->values[0];
}

static void reading_object(const ebm_judge_reading *r, ebm_faithful_object *o) {
  *o = (ebm_faithful_object){r->shape, r->colour, r->x, r->y, r->size};
}

/* Reads images [n] (and their masked copies per place when npos > 1): whole[n],
 * masked[n * npos]. */
static int read_images(ebm_judge *judge, const scorer *s, const float *images, int n,
                       ebm_judge_reading *whole, ebm_judge_reading **masked, char *err,
                       size_t errlen) {
  int R = ebm_judge_config_of(judge)->resolution;
  size_t per = (size_t)3 * R * R;
  *masked = NULL;
  if (ebm_judge_read(judge, images, n, whole, err, errlen)) return -1;
  if (s->npos < 2) return 0;
  ebm_judge_reading *m = malloc((size_t)n * s->npos * sizeof *m);
  float *mimg = malloc((size_t)s->npos * per * sizeof *mimg);
  int rc = -1;
  if (!m || !mimg) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  for (int b = 0; b < n; b++) {
    mask_places(s, images + b * per, R, mimg);
    if (ebm_judge_read(judge, mimg, s->npos, m + (size_t)b * s->npos, err, errlen)) goto done;
  }
  rc = 0;
done:
  free(mimg);
  if (rc) free(m);
  else *masked = m;
  return rc;
}

/* The faithful check of one image (eval.h): its scene readings, then the re-render search.
 * masked: npos readings when npos > 1. */
static void verify(const float *img, int R, const ebm_judge_reading *whole,
                   const ebm_judge_reading *masked, int npos, const ebm_faithful_thresholds *thr,
                   ebm_eval_sample *out, float *rerender) {
  ebm_faithful_object objs[EBM_FAITHFUL_MAX_OBJECTS];
  int nobj = npos > 1 ? npos : 1;
  if (nobj > EBM_FAITHFUL_MAX_OBJECTS) nobj = EBM_FAITHFUL_MAX_OBJECTS;
  out->whole = *whole;
  out->scene_prob = whole->scene_prob;
  if (npos > 1) {
    out->scene_prob = 1.0f;
    for (int k = 0; k < nobj; k++) {
      reading_object(&masked[k], &objs[k]);
      if (masked[k].scene_prob < out->scene_prob) out->scene_prob = masked[k].scene_prob;
    }
  } else {
    reading_object(whole, &objs[0]);
  }
  if (ebm_faithful_refit(img, R, objs, nobj, &out->fit, rerender)) {
    memset(&out->fit, 0, sizeof out->fit);
    out->fit.residual = out->fit.ratio = INFINITY;
  }
  int multi = nobj > 1;
  out->faithful = out->scene_prob >= 0.5f && out->fit.residual <= thr->residual[multi] &&
                  out->fit.ratio <= thr->ratio[multi];
}

/* The re-render searches of n images, spread over threads (each image's search is a pure
 * function of it, so the result does not depend on the thread count). */
typedef struct verify_job {
  const float *images;
  int R, n, npos, nthreads, next_thread;
  const ebm_judge_reading *whole, *masked;
  const ebm_faithful_thresholds *thr;
  ebm_eval_sample *out;
  float *rerenders;
  pthread_mutex_t lock;
} verify_job;

static void *verify_worker(void *arg) {
  verify_job *job = arg;
  pthread_mutex_lock(&job->lock);
  int t = job->next_thread++;
  pthread_mutex_unlock(&job->lock);
  size_t per = (size_t)3 * job->R * job->R;
  for (int b = t; b < job->n; b += job->nthreads)
    verify(job->images + b * per, job->R, &job->whole[b],
           job->masked ? job->masked + (size_t)b * job->npos : NULL, job->npos, job->thr,
           &job->out[b], job->rerenders ? job->rerenders + b * per : NULL);
  return NULL;
}

/* Worker threads for host-side loops: VKEBM_THREADS when set (0 = all cores), else every core. */
static int host_threads(void) {
  const char *e = getenv("VKEBM_THREADS");
  long t = e && *e ? strtol(e, NULL, 10) : 0;
  if (t <= 0) t = sysconf(_SC_NPROCESSORS_ONLN);
  return t < 1 ? 1 : t > 32 ? 32 : (int)t;
}

static void verify_all(verify_job *job) {
  int T = host_threads();
  if (T > job->n) T = job->n;
  job->nthreads = T;
  job->next_thread = 0;
  pthread_mutex_init(&job->lock, NULL);
  pthread_t tid[32];
  int started = 0;
  for (int t = 1; t < T; t++)
    if (pthread_create(&tid[started], NULL, verify_worker, job) == 0) started++;
  if (started < T - 1) { /* fewer threads than asked: this thread takes the rest in turn */
    job->nthreads = started + 1;
  }
  verify_worker(job);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
  pthread_mutex_destroy(&job->lock);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int ebm_eval_score(ebm_judge *judge, const expr_node *tree, const float *images, int n,
                   const ebm_eval_scoring *sc, ebm_eval_result *out, const ebm_eval_detail *detail,
                   char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->frechet = out->frechet_floor = NAN;
  scorer s = {.size_tol = sc->size_tol, .pos_tol = sc->pos_tol};
  int rc = -1;
  int R = ebm_judge_config_of(judge)->resolution;
    ebm_judge_reading *whole = malloc((size_t)n * sizeof *whole), *masked = NULL;
  double *resid = malloc((size_t)n * sizeof *resid);
  ebm_eval_sample *vs = calloc((size_t)n, sizeof *vs);
  if (!whole || !resid || !vs) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  if (collect(tree, &s, err, errlen)) goto done;
  expr_print(tree, out->expr, sizeof out->expr);
  snprintf(out->sampled, sizeof out->sampled, "%s", out->expr);
  out->n = n;
  const expr_node *const *rows;
  const expr_node *root = tree;
  int nrows;
  if (tree->kind == EXPR_AND) {
    rows = (const expr_node *const *)tree->children;
    nrows = tree->num_children;
  } else {
    rows = &root;
    nrows = 1;
  }
  if (nrows > EBM_EVAL_MAX_ROWS) {
    snprintf(err, errlen, "more than %d conjuncts", EBM_EVAL_MAX_ROWS);
    goto done;
  }
  if (s.npos > EBM_FAITHFUL_MAX_OBJECTS) {
    snprintf(err, errlen, "more than %d distinct positions", EBM_FAITHFUL_MAX_OBJECTS);
    goto done;
  }
  out->nrows = nrows;
  for (int r = 0; r < nrows; r++) {
    expr_print(rows[r], out->rows[r].text, sizeof out->rows[r].text);
    if (rows[r]->kind == EXPR_OR) {
      out->rows[r].nsides =
          rows[r]->num_children < EBM_EVAL_MAX_SIDES ? rows[r]->num_children : EBM_EVAL_MAX_SIDES;
      for (int k = 0; k < out->rows[r].nsides; k++)
        expr_print(rows[r]->children[k], out->rows[r].side_text[k],
                   sizeof out->rows[r].side_text[k]);
    }
  }
  if (read_images(judge, &s, images, n, whole, &masked, err, errlen)) goto done;
  out->masked_positions = s.npos > 1;
  out->objects = s.npos > 1 ? s.npos : 1;
  verify_job job = {.images = images, .R = R, .n = n, .npos = s.npos, .whole = whole,
                    .masked = masked, .thr = &sc->thr, .out = vs,
                    .rerenders = detail ? detail->rerenders : NULL};
  verify_all(&job);
  for (int b = 0; b < n; b++) {
    ebm_eval_sample v = vs[b];
    s.whole = &whole[b];
    for (int i = 0; i < s.npos && s.npos > 1; i++) s.masked[i] = masked[(size_t)b * s.npos + i];
    int ok = v.faithful, all = node_ok(&s, tree);
    resid[b] = v.fit.residual;
    out->faithful += ok;
    out->scene += v.scene_prob >= 0.5f;
    out->read_strict += v.scene_prob >= 0.5f && all;
    v.strict = ok && all;
    out->strict += v.strict;
    for (int r = 0; r < nrows; r++) {
      int sat = ok && node_ok(&s, rows[r]);
      out->rows[r].satisfied += sat;
      out->rows[r].read_satisfied += v.scene_prob >= 0.5f && node_ok(&s, rows[r]);
      if (sat && r < 32) v.rows |= 1u << r;
      for (int k = 0; k < out->rows[r].nsides; k++)
        out->rows[r].side_share[k] += ok && node_ok(&s, rows[r]->children[k]);
    }
    if (detail && detail->samples) detail->samples[b] = v;
  }
  out->faithful /= n;
  out->scene /= n;
  out->read_strict /= n;
  out->strict /= n;
  for (int r = 0; r < nrows; r++) {
    out->rows[r].satisfied /= n;
    out->rows[r].read_satisfied /= n;
    for (int k = 0; k < out->rows[r].nsides; k++) out->rows[r].side_share[k] /= n;
  }
  qsort(resid, (size_t)n, sizeof *resid, cmp_double);
  out->residual_median = n % 2 ? resid[n / 2] : 0.5 * (resid[n / 2 - 1] + resid[n / 2]);
  rc = 0;
done:
  free(whole);
  free(masked);
  free(resid);
  free(vs);
  return rc;
}

/* ---- reference renders -------------------------------------------------------------------- */

#define REF_STREAM 0x52454621u /* "REF!" */
#define MAX_NEG_TERMS 16

typedef struct wants {
  int shape, colour;   /* -1: free */
  float size;          /* < 0: free */
  int npos;
  float place[MAX_POS_TERMS][2];
  int nneg;
  const expr_node *neg[MAX_NEG_TERMS];
  uint32_t seed, index, draws;
} wants;

static float ref_draw(wants *w) {
  return vkebm_rng_uniform(w->seed, REF_STREAM, w->index, w->draws++);
}

static int want(const expr_node *n, int positive, wants *w) {
  switch (n->kind) {
  case EXPR_NOT: return want(n->children[0], !positive, w);
  case EXPR_AND:
  case EXPR_OR:
    if ((n->kind == EXPR_AND) == positive) { /* every child the same way */
      for (int i = 0; i < n->num_children; i++)
        if (want(n->children[i], positive, w)) return -1;
      return 0;
    } else { /* one child decides: a side of an OR, or the failing part of a NOT (a AND b) */
      int k = (int)(ref_draw(w) * n->num_children);
      return want(n->children[k < n->num_children ? k : n->num_children - 1], positive, w);
    }
  case EXPR_TERM: break;
  }
  const char *c = ebm_concept_canonical_name(n->concept);
  if (!positive) {
    if (w->nneg < MAX_NEG_TERMS) w->neg[w->nneg++] = n;
    return 0;
  }
  if (!strcmp(c, "shape")) w->shape = term_id(n, 1);
  else if (!strcmp(c, "color")) w->colour = term_id(n, 0);
  else if (!strcmp(c, "size")) w->size = n->values[0];
  else if (!strcmp(c, "position")) {
    for (int i = 0; i < w->npos; i++)
      if (w->place[i][0] == n->values[0] && w->place[i][1] == n->values[1]) return 0;
    if (w->npos == MAX_POS_TERMS) return -1;
    w->place[w->npos][0] = n->values[0];
    w->place[w->npos][1] = n->values[1];
    w->npos++;
  } else {
    return -1;
  }
  return 0;
}

/* 1 when a term holds for the scene (any of its objects), by the labels. */
static int term_holds(const expr_node *n, const scene_desc *d, float size_tol, float pos_tol) {
  const char *c = ebm_concept_canonical_name(n->concept);
  for (int k = 0; k < d->nobj; k++) {
    const scene_object *o = &d->obj[k];
    if (!strcmp(c, "shape") && o->shape == term_id(n, 1)) return 1;
    if (!strcmp(c, "color") && o->colour == term_id(n, 0)) return 1;
    if (!strcmp(c, "size") && fabsf(o->size - n->values[0]) <= size_tol) return 1;
    if (!strcmp(c, "position") && fabsf(o->x - n->values[0]) <= pos_tol &&
        fabsf(o->y - n->values[1]) <= pos_tol)
      return 1;
  }
  return 0;
}

/* Changes an object's colour, keeping the albedo jitter the spec drew. */
static void set_colour(scene_object *o, int colour) {
  float now[3], old[3];
  scene_palette_rgb(colour, now);
  scene_palette_rgb(o->colour, old);
  for (int ch = 0; ch < 3; ch++) o->rgb[ch] = fminf(fmaxf(now[ch] + o->rgb[ch] - old[ch], 0.0f), 1.0f);
  o->colour = colour;
}

int ebm_eval_reference_scene(const expr_node *tree, float size_tol, float pos_tol, uint32_t seed,
                             uint32_t index, scene_desc *d) {
  wants w = {.shape = -1, .colour = -1, .size = -1.0f, .seed = seed, .index = index};
  if (want(tree, 1, &w)) return -1;
  scene_spec spec;
  char err[128];
  scene_spec_parse("general", &spec, err, sizeof err);
  scene_sample(&spec, seed, index, d);
  int nobj = w.npos > 1 ? (w.npos < SCENE_MAX_OBJECTS ? w.npos : SCENE_MAX_OBJECTS) : 1;
  for (int k = 1; k < nobj; k++) { /* more objects: the looks of other scenes of the seed */
    scene_desc e;
    scene_sample(&spec, seed ^ 0x0b1ec7u, index * SCENE_MAX_OBJECTS + (uint32_t)k, &e);
    d->obj[k] = e.obj[0];
  }
  d->nobj = nobj;
  for (int k = 0; k < nobj; k++) {
    scene_object *o = &d->obj[k];
    if (nobj > 1 && o->size > 0.5f) o->size = 0.3f + (o->size - 0.3f) * 0.5f; /* 0.3 .. 0.5 */
    if (w.npos) {
      o->x = w.place[k][0];
      o->y = w.place[k][1];
    }
    if (w.shape >= 0) o->shape = w.shape;
    if (w.colour >= 0 && w.colour != o->colour) set_colour(o, w.colour);
    if (w.size >= 0) o->size = w.size;
  }
  /* negated terms: redraw the attribute while the scene satisfies one (a contradiction such as
   * `color=red AND NOT color=red` keeps its last draw) */
  for (int attempt = 0; attempt < 32; attempt++) {
    int bad = 0;
    for (int i = 0; i < w.nneg; i++) {
      const expr_node *n = w.neg[i];
      if (!term_holds(n, d, size_tol, pos_tol)) continue;
      bad = 1;
      const char *c = ebm_concept_canonical_name(n->concept);
      for (int k = 0; k < d->nobj; k++) {
        scene_object *o = &d->obj[k];
        if (!strcmp(c, "shape")) o->shape = (int)(ref_draw(&w) * SCENE_NSHAPES) % SCENE_NSHAPES;
        else if (!strcmp(c, "color"))
          set_colour(o, (int)(ref_draw(&w) * SCENE_NCOLOURS) % SCENE_NCOLOURS);
        else if (!strcmp(c, "size")) o->size = 0.3f + 0.4f * ref_draw(&w);
        else o->x = 2.0f * ref_draw(&w) - 1.0f, o->y = 2.0f * ref_draw(&w) - 1.0f;
      }
    }
    if (!bad) break;
  }
  return 0;
}

int ebm_eval_reference_images(const expr_node *tree, float size_tol, float pos_tol, uint32_t seed,
                              int n, int R, float *images) {
  float *packed = malloc((size_t)n * VKEBM_SCENE_FLOATS * sizeof *packed);
  if (!packed) return -1;
  for (int b = 0; b < n; b++) {
    scene_desc d;
    if (ebm_eval_reference_scene(tree, size_tol, pos_tol, seed, (uint32_t)b, &d)) {
      free(packed);
      return -1;
    }
    scene_pack(&d, packed + (size_t)b * VKEBM_SCENE_FLOATS);
  }
  scene_render_cpu(images, packed, n, R, NULL, 0);
  free(packed);
  return 0;
}

/* ---- calibration -------------------------------------------------------------------------- */

int ebm_eval_calibrate(ebm_judge *judge, uint32_t seed, int n, float q,
                       ebm_faithful_thresholds *out, ebm_eval_progress_fn progress, void *ctx,
                       char *err, size_t errlen) {
  int R = ebm_judge_config_of(judge)->resolution;
  size_t per = (size_t)3 * R * R;
  int counts[2] = {n, n / 2 > 1 ? n / 2 : 2};
  float *img = malloc((size_t)counts[0] * per * sizeof *img);
  float *res = malloc((size_t)counts[0] * sizeof *res), *rat = malloc((size_t)counts[0] * sizeof *rat);
  float *packed = malloc((size_t)counts[0] * VKEBM_SCENE_FLOATS * sizeof *packed);
  ebm_judge_reading *whole = malloc((size_t)counts[0] * sizeof *whole), *masked = NULL;
  int rc = -1;
  if (!img || !res || !rat || !packed || !whole || n < 2) {
    snprintf(err, errlen, n < 2 ? "calibration needs at least 2 renders" : "out of memory");
    goto done;
  }
  memset(out, 0, sizeof *out);
  for (int multi = 0; multi < 2; multi++) {
    int m = counts[multi];
    scene_spec spec;
    scene_spec_parse(multi ? "multi 2" : "general", &spec, err, errlen);
    uint32_t sd = seed + (uint32_t)multi * 0x9e3779b9u;
    scene_sample_packed(&spec, sd, 0, m, packed);
    scene_render_cpu(img, packed, m, R, NULL, 0);
    ebm_judge_reading *all_masked = NULL;
    if (multi) { /* the places an expression would name: the objects' true positions */
      all_masked = malloc((size_t)m * 2 * sizeof *all_masked);
      if (!all_masked) {
        snprintf(err, errlen, "out of memory");
        goto done;
      }
      for (int b = 0; b < m; b++) {
        scorer s = {0};
        scene_desc d;
        scene_sample(&spec, sd, (uint32_t)b, &d);
        s.npos = 2;
        for (int k = 0; k < 2; k++) s.place[k][0] = d.obj[k].x, s.place[k][1] = d.obj[k].y;
        if (read_images(judge, &s, img + b * per, 1, &whole[b], &masked, err, errlen)) {
          free(all_masked);
          goto done;
        }
        memcpy(all_masked + (size_t)b * 2, masked, 2 * sizeof *masked);
        free(masked);
        masked = NULL;
      }
    } else if (ebm_judge_read(judge, img, m, whole, err, errlen)) {
      goto done;
    }
    ebm_faithful_thresholds inf = {{INFINITY, INFINITY}, {INFINITY, INFINITY}, ""};
    ebm_eval_sample *vs = calloc((size_t)m, sizeof *vs);
    if (!vs) {
      free(all_masked);
      snprintf(err, errlen, "out of memory");
      goto done;
    }
    verify_job job = {.images = img, .R = R, .n = m, .npos = multi ? 2 : 0, .whole = whole,
                      .masked = all_masked, .thr = &inf, .out = vs};
    verify_all(&job);
    for (int b = 0; b < m; b++) res[b] = vs[b].fit.residual, rat[b] = vs[b].fit.ratio;
    free(vs);
    free(all_masked);
    if (progress) progress(ctx, multi ? "calibrated (two objects)" : "calibrated", m, m);
    out->residual[multi] = ebm_faithful_quantile(res, m, q);
    out->ratio[multi] = ebm_faithful_quantile(rat, m, q);
  }
  snprintf(out->how, sizeof out->how,
           "quantile %g of the residuals and of the ratios of %d fresh general and %d multi:2 "
           "renders, seed %u, each read by this judge and re-rendered as samples are",
           (double)q, counts[0], counts[1], seed);
  rc = 0;
done:
  free(img);
  free(res);
  free(rat);
  free(packed);
  free(whole);
  free(masked);
  return rc;
}

/* ---- sampling ----------------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ebm_eval_sampler(const ebm_eval_settings *s, const ebm_concept_set *set,
                      ebm_sampler_config *sc) {
  *sc = s->sc;
  /* as `vkebm sample`: given, else learned models' own training sampler, else the table */
  ebm_sampler_resolve(sc, set, s->analytic, s->step_given, s->noise_given, s->steps_given);
}

/* Frechet distances of the samples' judge features against fresh renders of the expression, and
 * between two sets of fresh renders (the floor). */
static int frechet(ebm_judge *judge, const expr_node *tree, const ebm_eval_settings *s,
                   const float *samples, int n, ebm_eval_result *out, char *err, size_t errlen) {
  int R = ebm_judge_config_of(judge)->resolution, dim = ebm_judge_feature_dim(judge);
  size_t per = (size_t)3 * R * R;
  float *ref = malloc((size_t)n * per * sizeof *ref);
  float *f = malloc((size_t)3 * n * dim * sizeof *f);
  int rc = -1;
  if (!ref || !f) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  float *fs = f, *fa = f + (size_t)n * dim, *fb = fa + (size_t)n * dim;
  if (ebm_judge_features(judge, samples, n, fs, err, errlen)) goto done;
  for (int set = 0; set < 2; set++) {
    uint32_t seed = (s->seed ^ 0x5eedf1d0u) + (uint32_t)set * 0x9e3779b9u;
    if (ebm_eval_reference_images(tree, s->scoring.size_tol, s->scoring.pos_tol, seed, n, R,
                                  ref)) {
      snprintf(err, errlen, "cannot render references for %s", out->expr);
      goto done;
    }
    if (ebm_judge_features(judge, ref, n, set ? fb : fa, err, errlen)) goto done;
  }
  out->frechet = ebm_frechet_distance(fs, n, fa, n, dim);
  out->frechet_floor = ebm_frechet_distance(fb, n, fa, n, dim);
  rc = 0;
done:
  free(ref);
  free(f);
  return rc;
}

int ebm_eval_expr(ebm_backend *be, const ebm_concept_set *set, ebm_judge *judge,
                  const expr_node *tree, const ebm_eval_settings *s, ebm_eval_result *out,
                  const ebm_eval_detail *detail, expr_error *bind_err, char *err, size_t errlen) {
  double t0 = now_s();
  err[0] = 0;
  if (s->n < 1 || s->batch < 1) {
    snprintf(err, errlen, "n and batch must be positive");
    return -1;
  }
  expr_error perr;
  expr_node *score_tree = NULL; /* --score: what the samples are scored against */
  if (s->score_expr && !(score_tree = expr_parse(s->score_expr, &perr))) {
    expr_error_format(s->score_expr, &perr, err, errlen);
    return -1;
  }
  const expr_node *scored = score_tree ? score_tree : tree;
  int B = s->batch < s->n ? s->batch : s->n;
  ebm_composition *comp = ebm_composition_create(be, tree, set, B, &perr);
  float *all = NULL, *x = NULL;
  ebm_buffer *xb = NULL;
  int rc = -1;
  if (!comp) {
    snprintf(err, errlen, "%s", perr.msg);
    if (bind_err) *bind_err = perr;
    goto done;
  }
  int C, H, W;
  ebm_composition_image_shape(comp, &C, &H, &W);
  int R = ebm_judge_config_of(judge)->resolution;
  if (C != 3 || H != R || W != R) {
    snprintf(err, errlen, "the models make %dx%dx%d images; the judge reads 3x%dx%d", C, H, W, R,
             R);
    goto done;
  }
  size_t N = (size_t)C * H * W;
  all = detail && detail->images ? detail->images : malloc((size_t)s->n * N * sizeof *all);
  x = malloc((size_t)B * N * sizeof *x);
  xb = ebm_alloc(be, (size_t)B * N);
  if (!all || !x || !xb) {
    snprintf(err, errlen, "out of memory for %d samples", s->n);
    goto done;
  }
  ebm_sampler_config sc;
  ebm_eval_sampler(s, set, &sc);
  for (int first = 0, k = 0; first < s->n; first += B, k++) {
    int m = s->n - first < B ? s->n - first : B;
    sc.seed = s->seed + (uint32_t)k;
    ebm_composition_set_or_mixture(comp, s->or_mixture, sc.seed);
    /* the composition is sized for B chains: a short last batch still runs B, keeps m */
    /* chains start as `vkebm sample`'s: the models' recorded start, else uniform noise */
    ebm_sampler_init_for_set(set, x, B, (int)N, sc.seed);
    ebm_sampler_stats st;
    if (ebm_upload(be, ebm_ref_of(xb), x, (size_t)B * N) ||
        ebm_sample(comp, ebm_ref_of(xb), &sc, NULL, NULL, &st, err, errlen) ||
        ebm_download(be, x, ebm_ref_of(xb), (size_t)B * N)) {
      if (!err[0]) snprintf(err, errlen, "sampling failed");
      goto done;
    }
    memcpy(all + (size_t)first * N, x, (size_t)m * N * sizeof *x);
    if (s->progress) s->progress(s->progress_ctx, "sampled", first + m, s->n);
  }
  if (ebm_eval_score(judge, scored, all, s->n, &s->scoring, out, detail, err, errlen)) goto done;
  expr_print(tree, out->sampled, sizeof out->sampled);
  if (s->progress) s->progress(s->progress_ctx, "verified", s->n, s->n);
  if (s->frechet && frechet(judge, scored, s, all, s->n, out, err, errlen)) goto done;
  out->seconds = now_s() - t0;
  rc = 0;
done:
  if (!detail || all != detail->images) free(all);
  free(x);
  ebm_free(be, xb);
  ebm_composition_destroy(comp);
  expr_free(score_tree);
  return rc;
}
