/* eval.c: sample an expression, judge every sample, score it (include/vkebm/eval.h).
 *
 * Owns the models-folder loader shared by the evaluation commands, the sampling loop (the same
 * library calls `vkebm sample` makes), the boolean reading of an expression tree against the
 * judge's readings, and the masked reading of position terms for multi-object expressions.
 */
#include "vkebm/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkebm/compose.h"
#include "vkebm/expr.h"
#include "vkebm/model.h"
#include "vkebm/scene.h"

#define MAX_POS_TERMS 8
#define PLACE_HEIGHT 0.4f /* world height of a place's projected centre: a mid-sized object */

/* ---- models ------------------------------------------------------------------------------- */

int ebm_eval_load_analytic(ebm_backend *be, int resolution, int max_rows, ebm_concept_set *set,
                           char *err, size_t errlen) {
  static const char *names[] = {"color", "position", "size", "shape"};
  (void)max_rows; /* analytic concepts are sized by distinct labels, not rows */
  for (int i = 0; i < 4; i++) {
    /* as `vkebm sample --analytic`: precision unit 100 */
    ebm_concept *c = ebm_concept_create_builtin(be, names[i], resolution, 100.0f, 16, err, errlen);
    if (!c || ebm_concept_set_add(set, c, 1, err, errlen)) {
      ebm_concept_destroy(c);
      return -1;
    }
  }
  return 0;
}

void ebm_eval_settings_default(ebm_eval_settings *s) {
  memset(s, 0, sizeof *s);
  s->n = 256;
  s->batch = 64;
  s->seed = 1;
  ebm_sampler_defaults(&s->sc, EBM_SAMPLER_PAPER);
  s->sc.adapt_steps = s->sc.steps / 2;
  s->size_tol = EBM_EVAL_DEFAULT_SIZE_TOL;
  s->pos_tol = EBM_EVAL_DEFAULT_POS_TOL;
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

int ebm_eval_readable(const ebm_judge_reading *r) { return r->scene_prob >= 0.5f; }

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

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Masked copies for the places (see eval.h): out[npos, 3, R, R]. */
static void mask_places(const scorer *s, const float *img, int R, float *out, float *scratch) {
  scene_spec spec;
  char err[256];
  scene_spec_parse("general", &spec, err, sizeof err);
  spec.camera_jitter = 0;
  scene_desc d;
  scene_sample(&spec, 0, 0, &d); /* only the (unjittered) camera is used */
  float px[MAX_POS_TERMS][2];
  for (int i = 0; i < s->npos; i++) {
    float p[3] = {s->place[i][0] * SCENE_POS_SCALE_X, PLACE_HEIGHT,
                  -s->place[i][1] * SCENE_POS_SCALE_Z}, ndc[2];
    scene_project(&d, p, ndc);
    px[i][0] = (ndc[0] + 1.0f) * 0.5f * R; /* column */
    px[i][1] = (1.0f - ndc[1]) * 0.5f * R; /* row */
  }
  size_t plane = (size_t)R * R;
  float median[3];
  for (int ch = 0; ch < 3; ch++) {
    memcpy(scratch, img + ch * plane, plane * sizeof *scratch);
    qsort(scratch, plane, sizeof *scratch, cmp_float);
    median[ch] = scratch[plane / 2];
  }
  for (int i = 0; i < s->npos; i++) {
    float *o = out + (size_t)i * 3 * plane;
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float cx = x + 0.5f, cy = y + 0.5f;
        int best = 0;
        float bd = 1e30f;
        for (int k = 0; k < s->npos; k++) {
          float dx = cx - px[k][0], dy = cy - px[k][1], dd = dx * dx + dy * dy;
          if (dd < bd) {
            bd = dd;
            best = k;
          }
        }
        for (int ch = 0; ch < 3; ch++) {
          size_t at = ch * plane + (size_t)y * R + x;
          o[at] = best == i ? img[at] : median[ch];
        }
      }
  }
}

int ebm_eval_score(ebm_judge *judge, const char *expr, const float *images, int n,
                   float size_tol, float pos_tol, ebm_eval_result *out, char *err,
                   size_t errlen) {
  expr_error perr;
  expr_node *tree = expr_parse(expr, &perr);
  if (!tree) {
    expr_error_format(expr, &perr, err, errlen);
    return -1;
  }
  memset(out, 0, sizeof *out);
  scorer s = {.size_tol = size_tol, .pos_tol = pos_tol};
  int rc = -1;
  int R = ebm_judge_config_of(judge)->resolution;
  size_t per = (size_t)3 * R * R;
  ebm_judge_reading *whole = malloc((size_t)n * sizeof *whole);
  ebm_judge_reading *masked = NULL;
  float *mimg = NULL, *scratch = malloc((size_t)R * R * sizeof *scratch);
  if (!whole || !scratch) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  if (collect(tree, &s, err, errlen)) goto done;
  expr_print(tree, out->expr, sizeof out->expr);
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
  if (ebm_judge_read(judge, images, n, whole, err, errlen)) goto done;
  out->masked_positions = s.npos > 1;
  if (s.npos > 1) {
    masked = malloc((size_t)n * s.npos * sizeof *masked);
    mimg = malloc((size_t)n * s.npos * per * sizeof *mimg);
    if (!masked || !mimg) {
      snprintf(err, errlen, "out of memory");
      goto done;
    }
    for (int b = 0; b < n; b++)
      mask_places(&s, images + b * per, R, mimg + (size_t)b * s.npos * per, scratch);
    if (ebm_judge_read(judge, mimg, n * s.npos, masked, err, errlen)) goto done;
  }
  for (int b = 0; b < n; b++) {
    s.whole = &whole[b];
    for (int i = 0; i < s.npos && s.npos > 1; i++) s.masked[i] = masked[(size_t)b * s.npos + i];
    int ok = ebm_eval_readable(&whole[b]);
    out->readable += ok;
    out->strict += ok && node_ok(&s, tree);
    for (int r = 0; r < nrows; r++) {
      out->rows[r].satisfied += ok && node_ok(&s, rows[r]);
      for (int k = 0; k < out->rows[r].nsides; k++)
        out->rows[r].side_share[k] += ok && node_ok(&s, rows[r]->children[k]);
    }
  }
  out->readable /= n;
  out->strict /= n;
  for (int r = 0; r < nrows; r++) {
    out->rows[r].satisfied /= n;
    for (int k = 0; k < out->rows[r].nsides; k++) out->rows[r].side_share[k] /= n;
  }
  rc = 0;
done:
  free(whole);
  free(masked);
  free(mimg);
  free(scratch);
  expr_free(tree);
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
  /* as `vkebm sample`: learned models' own training step and noise, the analytic concepts'
   * step sized to their stiffness */
  if (!s->analytic) ebm_sampler_apply_hints(set, sc, s->step_given, s->noise_given);
  if (s->analytic && !s->step_given)
    sc->step_size = sc->kind == EBM_SAMPLER_PAPER     ? 1e-3f
                    : sc->kind == EBM_SAMPLER_LANGEVIN ? 2e-3f
                                                       : 1e-3f;
}

int ebm_eval_expr(ebm_backend *be, const ebm_concept_set *set, ebm_judge *judge, const char *expr,
                  const ebm_eval_settings *s, ebm_eval_result *out, float *images, char *err,
                  size_t errlen) {
  double t0 = now_s();
  err[0] = 0;
  if (s->n < 1 || s->batch < 1) {
    snprintf(err, errlen, "n and batch must be positive");
    return -1;
  }
  expr_error perr;
  expr_node *tree = expr_parse(expr, &perr);
  if (!tree) {
    expr_error_format(expr, &perr, err, errlen);
    return -1;
  }
  int B = s->batch < s->n ? s->batch : s->n;
  ebm_composition *comp = ebm_composition_create(be, tree, set, B, &perr);
  float *all = NULL, *x = NULL;
  ebm_buffer *xb = NULL;
  int rc = -1;
  if (!comp) {
    expr_error_format(expr, &perr, err, errlen);
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
  all = images ? images : malloc((size_t)s->n * N * sizeof *all);
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
  }
  if (ebm_eval_score(judge, expr, all, s->n, s->size_tol, s->pos_tol, out, err, errlen))
    goto done;
  out->seconds = now_s() - t0;
  rc = 0;
done:
  if (all != images) free(all);
  free(x);
  ebm_free(be, xb);
  ebm_composition_destroy(comp);
  expr_free(tree);
  return rc;
}
