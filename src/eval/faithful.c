/* faithful.c: analysis by synthesis (include/vkebm/faithful.h).
 *
 * Owns the re-render search and the residual. Everything runs on the host with the CPU twin of
 * the scene renderer (scene_render_cpu, one thread): a 32x32 render is ~0.3 ms, so the search's
 * ~60-120 renders cost ~20-40 ms per image.
 */
#include "vkebm/faithful.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HALF_PI 1.57079633f

/* ---- image helpers ------------------------------------------------------------------------ */

/* 3x3 box blur of each plane of src[3, R, R] into dst (borders: the mean of the pixels inside). */
static void blur3(const float *src, float *dst, int R) {
  for (int ch = 0; ch < 3; ch++) {
    const float *p = src + (size_t)ch * R * R;
    float *q = dst + (size_t)ch * R * R;
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float s = 0;
        int c = 0;
        for (int dy = -1; dy <= 1; dy++)
          for (int dx = -1; dx <= 1; dx++) {
            int yy = y + dy, xx = x + dx;
            if (yy < 0 || yy >= R || xx < 0 || xx >= R) continue;
            s += p[yy * R + xx];
            c++;
          }
        q[y * R + x] = s / (float)c;
      }
  }
}

/* Per-channel least-squares gain of ref toward img, clamped (see faithful.h). */
static void fit_gain(const float *img, const float *ref, int R, float gain[3]) {
  size_t plane = (size_t)R * R;
  float mean = 0;
  for (int ch = 0; ch < 3; ch++) {
    double sr = 0, rr = 0;
    for (size_t i = 0; i < plane; i++) {
      sr += (double)img[ch * plane + i] * ref[ch * plane + i];
      rr += (double)ref[ch * plane + i] * ref[ch * plane + i];
    }
    float g = rr > 0 ? (float)(sr / rr) : 1.0f;
    gain[ch] = fminf(fmaxf(g, 0.75f), 1.3f);
    mean += gain[ch] / 3.0f;
  }
  for (int ch = 0; ch < 3; ch++) gain[ch] = fminf(fmaxf(gain[ch], 0.94f * mean), 1.06f * mean);
}

static double sse(const float *a, const float *b, const float *gain, int R) {
  size_t plane = (size_t)R * R;
  double s = 0;
  for (int ch = 0; ch < 3; ch++)
    for (size_t i = 0; i < plane; i++) {
      double d = (double)a[ch * plane + i] - gain[ch] * b[ch * plane + i];
      s += d * d;
    }
  return s;
}

/* Worst window RMS of the difference of two already-blurred images. */
static float window_residual(const float *a, const float *b, const float *gain, int R,
                             float *global_rms) {
  int win = R / 4 > 2 ? R / 4 : 2, stride = R / 16 > 1 ? R / 16 : 1;
  size_t plane = (size_t)R * R;
  /* squared difference summed over channels, then a summed-area table */
  double *sat = calloc((size_t)(R + 1) * (R + 1), sizeof *sat);
  if (!sat) return INFINITY;
  double total = 0;
  for (int y = 0; y < R; y++)
    for (int x = 0; x < R; x++) {
      double d2 = 0;
      for (int ch = 0; ch < 3; ch++) {
        double d = (double)a[ch * plane + (size_t)y * R + x] -
                   (gain ? gain[ch] : 1.0f) * b[ch * plane + (size_t)y * R + x];
        d2 += d * d;
      }
      total += d2;
      sat[(size_t)(y + 1) * (R + 1) + x + 1] = d2 + sat[(size_t)y * (R + 1) + x + 1] +
                                                sat[(size_t)(y + 1) * (R + 1) + x] -
                                                sat[(size_t)y * (R + 1) + x];
    }
  double worst = 0;
  for (int y = 0; y + win <= R; y += stride)
    for (int x = 0; x + win <= R; x += stride) {
      double s = sat[(size_t)(y + win) * (R + 1) + x + win] - sat[(size_t)y * (R + 1) + x + win] -
                 sat[(size_t)(y + win) * (R + 1) + x] + sat[(size_t)y * (R + 1) + x];
      if (s > worst) worst = s;
    }
  free(sat);
  if (global_rms) *global_rms = (float)sqrt(total / (3.0 * plane));
  return (float)sqrt(worst / (3.0 * win * win));
}

/* ---- the search --------------------------------------------------------------------------- */

void ebm_faithful_scene(const ebm_faithful_fit *fit, scene_desc *d) {
  scene_default_environment(d);
  scene_set_light_angles(d, fit->light_az, fit->light_el);
  d->nobj = fit->nobj;
  for (int k = 0; k < fit->nobj; k++) {
    scene_object *o = &d->obj[k];
    const ebm_faithful_object *q = &fit->obj[k];
    o->shape = q->shape;
    o->colour = q->colour;
    scene_palette_rgb(q->colour, o->rgb);
    o->size = q->size;
    o->x = q->x;
    o->y = q->y;
    o->yaw = fit->yaw[k];
  }
}

typedef struct search {
  const float *target; /* blurred image */
  int R;
  float *render, *blurred; /* scratch [3, R, R] */
  ebm_faithful_fit cur;
  double best;
} search;

/* Renders p, returns its objective (and leaves the blurred render in s->blurred). */
static double evaluate(search *s, ebm_faithful_fit *p) {
  scene_desc d;
  ebm_faithful_scene(p, &d);
  float packed[VKEBM_SCENE_FLOATS];
  scene_pack(&d, packed);
  scene_render_cpu(s->render, packed, 1, s->R, NULL, 0);
  blur3(s->render, s->blurred, s->R);
  fit_gain(s->target, s->blurred, s->R, p->gain);
  s->cur.renders++;
  return sse(s->target, s->blurred, p->gain, s->R);
}

/* Tries a candidate; keeps it when it improves. */
static int try_candidate(search *s, const ebm_faithful_fit *cand) {
  ebm_faithful_fit c = *cand;
  double v = evaluate(s, &c);
  if (v < s->best) {
    int renders = s->cur.renders;
    s->cur = c;
    s->cur.renders = renders;
    s->best = v;
    return 1;
  }
  return 0;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Pattern search over each object's x, y and size at decreasing steps. */
static void refine_labels(search *s) {
  static const float pos_steps[] = {0.08f, 0.04f, 0.02f, 0.01f};
  static const float size_steps[] = {0.06f, 0.03f, 0.015f, 0.0075f};
  for (int level = 0; level < 4; level++) {
    for (int pass = 0; pass < 3; pass++) {
      int improved = 0;
      for (int k = 0; k < s->cur.nobj; k++)
        for (int coord = 0; coord < 3; coord++)
          for (int sign = -1; sign <= 1; sign += 2) {
            ebm_faithful_fit c = s->cur;
            ebm_faithful_object *o = &c.obj[k];
            if (coord == 0) o->x = clampf(o->x + sign * pos_steps[level], -1.1f, 1.1f);
            else if (coord == 1) o->y = clampf(o->y + sign * pos_steps[level], -1.1f, 1.1f);
            else o->size = clampf(o->size + sign * size_steps[level], 0.25f, 0.75f);
            if (try_candidate(s, &c)) {
              improved = 1;
              break; /* next coordinate from the improved point */
            }
          }
      if (!improved) break;
    }
  }
}

int ebm_faithful_refit(const float *img, int R, const ebm_faithful_object *objs, int nobj,
                       ebm_faithful_fit *fit, float *rerender) {
  if (nobj < 1 || nobj > EBM_FAITHFUL_MAX_OBJECTS) return -1;
  size_t n = (size_t)3 * R * R;
  float *buf = malloc(3 * n * sizeof *buf);
  if (!buf) return -1;
  search s = {.target = buf, .R = R, .render = buf + n, .blurred = buf + 2 * n};
  blur3(img, buf, R);
  memset(&s.cur, 0, sizeof s.cur);
  s.cur.nobj = nobj;
  for (int k = 0; k < nobj; k++) {
    s.cur.obj[k] = objs[k];
    s.cur.obj[k].x = clampf(objs[k].x, -1.1f, 1.1f);
    s.cur.obj[k].y = clampf(objs[k].y, -1.1f, 1.1f);
    s.cur.obj[k].size = clampf(objs[k].size, 0.25f, 0.75f);
    s.cur.yaw[k] = objs[k].shape == SCENE_CUBE ? HALF_PI / 2 : 0.0f;
  }
  s.best = evaluate(&s, &s.cur);
  /* cube yaws (a cube repeats every quarter turn) */
  for (int k = 0; k < nobj; k++) {
    if (objs[k].shape != SCENE_CUBE) continue;
    for (int i = 0; i < 4; i++) {
      ebm_faithful_fit c = s.cur;
      c.yaw[k] = HALF_PI * (float)i / 4.0f;
      if (c.yaw[k] != s.cur.yaw[k]) try_candidate(&s, &c);
    }
  }
  /* light azimuth: where the shadow falls */
  for (int i = -2; i <= 2; i++) {
    ebm_faithful_fit c = s.cur;
    c.light_az = SCENE_LIGHT_AZ_JITTER * (float)i / 2.0f;
    if (c.light_az != s.cur.light_az) try_candidate(&s, &c);
  }
  refine_labels(&s);
  for (int i = -1; i <= 1; i += 2) {
    ebm_faithful_fit c = s.cur;
    c.light_el = SCENE_LIGHT_EL_JITTER * (float)i;
    try_candidate(&s, &c);
  }
  for (int k = 0; k < nobj; k++) {
    if (objs[k].shape != SCENE_CUBE) continue;
    for (int sign = -1; sign <= 1; sign += 2) {
      ebm_faithful_fit c = s.cur;
      c.yaw[k] = fmodf(c.yaw[k] + sign * HALF_PI / 16.0f + HALF_PI, HALF_PI);
      try_candidate(&s, &c);
    }
  }
  refine_labels(&s);
  /* the best candidate, rendered again for its residual and the caller's copy */
  ebm_faithful_fit best = s.cur;
  evaluate(&s, &best); /* the same gain again: a pure function of the render */
  best.renders = s.cur.renders;
  best.residual = window_residual(s.target, s.blurred, best.gain, R, &best.global_rms);
  if (rerender)
    for (size_t i = 0; i < n; i++)
      rerender[i] = clampf(best.gain[i / ((size_t)R * R)] * s.render[i], 0.0f, 1.0f);
  /* the same light and gain with no object: how much of the image the objects explain */
  ebm_faithful_fit empty = best;
  empty.nobj = 0;
  evaluate(&s, &empty);
  best.empty_residual = window_residual(s.target, s.blurred, empty.gain, R, NULL);
  best.ratio = best.empty_residual > 0 ? best.residual / best.empty_residual : 1.0f;
  *fit = best;
  free(buf);
  return 0;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

float ebm_faithful_quantile(float *v, int n, float q) {
  if (n < 1) return NAN;
  qsort(v, (size_t)n, sizeof *v, cmp_float);
  int k = (int)ceilf(q * (float)n) - 1;
  if (k < 0) k = 0;
  if (k >= n) k = n - 1;
  return v[k];
}
