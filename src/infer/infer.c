/* infer.c: compositional inference with energy models (infer.h): one concept's value by the
 * energies of its labels or by gradient descent on the label, objects by greedy masked search.
 * Owns nothing between calls: each call allocates its device rows and frees them. */
#include "vkebm/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/scene.h"

#define MAX_STARTS 64
#define PLACE_HEIGHT 0.4f /* world height of a place's projected centre (eval.c's rule) */

void ebm_infer_defaults(ebm_infer_options *o) {
  *o = (ebm_infer_options){.temperature = 0.5f, .grid = 5, .steps = 20, .step = 0.05f,
                           .mask_size = 0.45f, .auto_ratio = 0.35f};
}

/* softmax(-(E - min) / (T * spread)) over e[k]; spread = the standard deviation of e (a floor
 * keeps identical energies finite: then every entry gets 1/k). */
static void energy_softmax(const float *e, int k, float T, float *p) {
  double mean = 0.0, var = 0.0, mn = e[0];
  for (int i = 0; i < k; i++) {
    mean += e[i];
    if (e[i] < mn) mn = e[i];
  }
  mean /= k;
  for (int i = 0; i < k; i++) var += (e[i] - mean) * (e[i] - mean);
  double spread = sqrt(var / k);
  if (!(spread > 1e-12)) spread = 1e-12;
  double sum = 0.0;
  for (int i = 0; i < k; i++) sum += exp(-(e[i] - mn) / (T * spread));
  for (int i = 0; i < k; i++) p[i] = (float)(exp(-(e[i] - mn) / (T * spread)) / sum);
}

static int check_options(const ebm_infer_options *o, char *err, size_t errlen) {
  if (!(o->temperature > 0.0f) || o->grid < 1 || o->steps < 0 || !(o->step >= 0.0f) ||
      !(o->mask_size > 0.0f) || !(o->auto_ratio >= 0.0f)) {
    snprintf(err, errlen, "inference: bad options (temperature > 0, grid >= 1, steps >= 0)");
    return -1;
  }
  return 0;
}

/* Device rows of one inference call. */
typedef struct rows {
  ebm_backend *be;
  ebm_buffer *x, *e;
  float *xh, *eh, *lab, *dlab;
} rows;

static void rows_free(rows *r) {
  ebm_free(r->be, r->x);
  ebm_free(r->be, r->e);
  free(r->xh);
  free(r->eh);
  free(r->lab);
  free(r->dlab);
}

static int rows_alloc(rows *r, ebm_concept *c, char *err, size_t errlen) {
  int M = ebm_concept_max_rows(c), N = ebm_concept_image_size(c);
  int L = ebm_concept_info_of(c)->label_dim;
  *r = (rows){.be = ebm_concept_backend(c)};
  r->x = ebm_alloc(r->be, (size_t)M * N);
  r->e = ebm_alloc(r->be, (size_t)M);
  r->xh = malloc((size_t)M * N * sizeof(float));
  r->eh = malloc((size_t)M * sizeof(float));
  r->lab = malloc((size_t)M * L * sizeof(float));
  r->dlab = malloc((size_t)M * L * sizeof(float));
  if (!r->x || !r->e || !r->xh || !r->eh || !r->lab || !r->dlab) {
    snprintf(err, errlen, "inference of '%s': out of memory", ebm_concept_info_of(c)->name);
    rows_free(r);
    return -1;
  }
  return 0;
}

static int run_energy(ebm_concept *c, rows *r, int G, int R, int nrows, char *err,
                      size_t errlen) {
  if (ebm_concept_energy(c, ebm_ref_of(r->e), ebm_ref_of(r->x), r->lab, G, R, err, errlen))
    return -1;
  if (ebm_download(r->be, r->eh, ebm_ref_of(r->e), (size_t)nrows)) {
    snprintf(err, errlen, "inference: download failed");
    return -1;
  }
  for (int i = 0; i < nrows; i++)
    if (!isfinite(r->eh[i])) {
      snprintf(err, errlen, "inference of '%s': a non-finite energy",
               ebm_concept_info_of(c)->name);
      return -1;
    }
  return 0;
}

static const ebm_infer_baseline *find_baseline(const ebm_infer_options *o, const ebm_concept *c) {
  if (!o->calibration) return NULL;
  for (int i = 0; i < o->calibration->count; i++)
    if (o->calibration->base[i].concept == c) return &o->calibration->base[i];
  return NULL;
}

/* Bilinear (L = 2) or linear (L = 1) interpolation of a node table t over the label range at
 * c; the value, and its gradient in label units into g[L]. */
static float interp(const ebm_concept_info *info, int nodes, const float *t, const float *c,
                    float *g) {
  int L = info->label_dim, i0[2] = {0, 0};
  float f[2] = {0, 0}, step[2] = {1, 1};
  for (int a = 0; a < L; a++) {
    step[a] = (info->label_max[a] - info->label_min[a]) / (nodes - 1);
    float u = (c[a] - info->label_min[a]) / step[a];
    if (u < 0) u = 0;
    if (u > nodes - 1) u = (float)(nodes - 1);
    i0[a] = (int)floorf(u);
    if (i0[a] > nodes - 2) i0[a] = nodes - 2;
    f[a] = u - i0[a];
  }
  if (L == 1) {
    g[0] = (t[i0[0] + 1] - t[i0[0]]) / step[0];
    return t[i0[0]] + f[0] * (t[i0[0] + 1] - t[i0[0]]);
  }
  /* node (ix, iy) at t[iy * nodes + ix]: axis 0 is x */
  float v00 = t[i0[1] * nodes + i0[0]], v10 = t[i0[1] * nodes + i0[0] + 1];
  float v01 = t[(i0[1] + 1) * nodes + i0[0]], v11 = t[(i0[1] + 1) * nodes + i0[0] + 1];
  g[0] = ((1 - f[1]) * (v10 - v00) + f[1] * (v11 - v01)) / step[0];
  g[1] = ((1 - f[0]) * (v01 - v00) + f[0] * (v11 - v10)) / step[1];
  return (1 - f[1]) * ((1 - f[0]) * v00 + f[0] * v10) + f[1] * ((1 - f[0]) * v01 + f[0] * v11);
}

/* z = (E - mean(c)) / spread(c) and its gradient from dE/dc (vector baselines). */
static float standardise(const ebm_concept_info *info, const ebm_infer_baseline *b, float E,
                         const float *c, const float *dE, float *dz) {
  float gm[2], gs[2];
  float m = interp(info, b->nodes, b->mean, c, gm), s = interp(info, b->nodes, b->spread, c, gs);
  if (s < 1e-9f) s = 1e-9f;
  float z = (E - m) / s;
  if (dz)
    for (int a = 0; a < info->label_dim; a++) dz[a] = (dE[a] - gm[a]) / s - z * gs[a] / s;
  return z;
}

/* One-hot: every label against every image, L x nb rows per pass (group g = label g). */
static int infer_onehot(ebm_concept *c, const float *images, int n, const ebm_infer_options *o,
                        ebm_infer_value *out, rows *r, char *err, size_t errlen) {
  const ebm_concept_info *info = ebm_concept_info_of(c);
  int L = info->label_dim, M = ebm_concept_max_rows(c), N = ebm_concept_image_size(c);
  int chunk = M / L;
  const ebm_infer_baseline *base = find_baseline(o, c);
  if (base && base->nodes != L) base = NULL;
  if (chunk < 1) {
    snprintf(err, errlen, "inference of '%s': %d labels, but rows for %d", info->name, L, M);
    return -1;
  }
  for (int g = 0; g < L; g++)
    for (int i = 0; i < L; i++) r->lab[g * L + i] = g == i ? 1.0f : 0.0f;
  for (int b0 = 0; b0 < n; b0 += chunk) {
    int nb = n - b0 < chunk ? n - b0 : chunk;
    for (int g = 0; g < L; g++)
      memcpy(r->xh + (size_t)g * nb * N, images + (size_t)b0 * N, (size_t)nb * N * sizeof(float));
    if (ebm_upload(r->be, ebm_ref_of(r->x), r->xh, (size_t)L * nb * N)) {
      snprintf(err, errlen, "inference: upload failed");
      return -1;
    }
    if (run_energy(c, r, L, nb, L * nb, err, errlen)) return -1;
    for (int b = 0; b < nb; b++) {
      ebm_infer_value *v = &out[b0 + b];
      memset(v, 0, sizeof *v);
      v->label_dim = L;
      v->onehot = 1;
      for (int g = 0; g < L; g++) {
        v->energies[g] = r->eh[(size_t)g * nb + b];
        v->score[g] = base ? (v->energies[g] - base->mean[g]) / base->spread[g] : v->energies[g];
        if (v->score[g] < v->score[v->index]) v->index = g;
      }
      if (base) {
        double sum = 0.0;
        for (int g = 0; g < L; g++) sum += exp(-(v->score[g] - v->score[v->index]) / o->temperature);
        for (int g = 0; g < L; g++)
          v->prob[g] = (float)(exp(-(v->score[g] - v->score[v->index]) / o->temperature) / sum);
      } else {
        energy_softmax(v->energies, L, o->temperature, v->prob);
      }
      v->value[v->index] = 1.0f;
      v->energy = v->energies[v->index];
      v->confidence = v->prob[v->index];
    }
  }
  return 0;
}

/* Vector: S starts per image, one row each (G = rows, R = 1), normalised gradient steps. */
static int infer_vector(ebm_concept *c, const float *images, int n, const ebm_infer_options *o,
                        ebm_infer_value *out, rows *r, char *err, size_t errlen) {
  const ebm_concept_info *info = ebm_concept_info_of(c);
  int L = info->label_dim, M = ebm_concept_max_rows(c), N = ebm_concept_image_size(c);
  int grid = o->grid, S = 1;
  for (int i = 0; i < L; i++) S *= grid;
  while (S > MAX_STARTS && grid > 1) { /* too many starts: fewer per axis */
    grid--;
    S = 1;
    for (int i = 0; i < L; i++) S *= grid;
  }
  if (S > MAX_STARTS) S = 1, grid = 1;
  int chunk = M / S;
  if (chunk < 1) {
    snprintf(err, errlen, "inference of '%s': %d starts, but rows for %d", info->name, S, M);
    return -1;
  }
  float range[EBM_CONCEPT_MAX_LABEL];
  for (int i = 0; i < L; i++) range[i] = info->label_max[i] - info->label_min[i];
  const ebm_infer_baseline *base = L <= 2 ? find_baseline(o, c) : NULL;
  float *first = malloc((size_t)M * sizeof *first), *best = malloc((size_t)M * sizeof *best);
  float *bestc = malloc((size_t)M * L * sizeof *bestc), *start = malloc((size_t)M * L * sizeof *start);
  int rc = -1;
  if (!first || !best || !bestc || !start) {
    snprintf(err, errlen, "inference: out of memory");
    goto done;
  }
  for (int b0 = 0; b0 < n; b0 += chunk) {
    int nb = n - b0 < chunk ? n - b0 : chunk, nr = nb * S;
    for (int b = 0; b < nb; b++)
      for (int s = 0; s < S; s++) {
        int row = b * S + s, q = s;
        memcpy(r->xh + (size_t)row * N, images + (size_t)(b0 + b) * N, (size_t)N * sizeof(float));
        for (int i = 0; i < L; i++, q /= grid)
          r->lab[(size_t)row * L + i] = info->label_min[i] + (q % grid + 0.5f) / grid * range[i];
      }
    memcpy(start, r->lab, (size_t)nr * L * sizeof *start);
    if (ebm_upload(r->be, ebm_ref_of(r->x), r->xh, (size_t)nr * N)) {
      snprintf(err, errlen, "inference: upload failed");
      goto done;
    }
    for (int t = 0; t <= o->steps; t++) {
      if (run_energy(c, r, nr, 1, nr, err, errlen)) goto done;
      if (base && t < o->steps && ebm_concept_label_grad(c, r->dlab, err, errlen)) goto done;
      for (int row = 0; row < nr; row++) {
        float *cl = r->lab + (size_t)row * L, *g = r->dlab + (size_t)row * L, dz[2];
        if (base) {
          r->eh[row] = standardise(info, base, r->eh[row], cl, g, t < o->steps ? dz : NULL);
          if (t < o->steps) memcpy(g, dz, sizeof(float) * L);
        }
      }
      for (int row = 0; row < nr; row++)
        if (t == 0 || r->eh[row] < best[row]) {
          if (t == 0) first[row] = r->eh[row];
          best[row] = r->eh[row];
          memcpy(bestc + (size_t)row * L, r->lab + (size_t)row * L, sizeof(float) * L);
        }
      if (t == o->steps) break;
      if (!base && ebm_concept_label_grad(c, r->dlab, err, errlen)) goto done;
      float a = o->step * (1.0f - 0.9f * (float)t / (float)(o->steps > 1 ? o->steps - 1 : 1));
      for (int row = 0; row < nr; row++) {
        float *cl = r->lab + (size_t)row * L, *g = r->dlab + (size_t)row * L;
        double norm = 0.0;
        for (int i = 0; i < L; i++) norm += (double)(g[i] * range[i]) * (g[i] * range[i]);
        norm = sqrt(norm);
        if (!(norm > 0.0) || !isfinite(norm)) continue;
        for (int i = 0; i < L; i++) {
          float v = cl[i] - a * range[i] * (float)(g[i] * range[i] / norm);
          cl[i] = fminf(fmaxf(v, info->label_min[i]), info->label_max[i]);
        }
      }
    }
    for (int b = 0; b < nb; b++) {
      ebm_infer_value *v = &out[b0 + b];
      memset(v, 0, sizeof *v);
      v->label_dim = L;
      int k = b * S;
      for (int s = 1; s < S; s++)
        if (best[b * S + s] < best[k]) k = b * S + s;
      memcpy(v->value, bestc + (size_t)k * L, sizeof(float) * L);
      v->energy = best[k];
      /* confidence: softmax mass of the starts' first energies near the answer */
      float p[MAX_STARTS];
      energy_softmax(first + (size_t)b * S, S, o->temperature, p);
      double mass = 0.0;
      for (int s = 0; s < S; s++) {
        double d = 0.0;
        for (int i = 0; i < L; i++) {
          double u = (start[(size_t)(b * S + s) * L + i] - v->value[i]) / range[i];
          d += u * u;
        }
        if (sqrt(d) <= 0.5 / grid + 0.1) mass += p[s];
      }
      v->confidence = (float)(mass > 1.0 ? 1.0 : mass);
    }
  }
  rc = 0;
done:
  free(first);
  free(best);
  free(bestc);
  free(start);
  return rc;
}

int ebm_infer_concept(ebm_concept *c, const float *images, int n, const ebm_infer_options *o,
                      ebm_infer_value *out, char *err, size_t errlen) {
  if (check_options(o, err, errlen)) return -1;
  if (n < 1) return 0;
  rows r;
  if (rows_alloc(&r, c, err, errlen)) return -1;
  int rc = ebm_concept_info_of(c)->label_kind == EBM_LABEL_ONEHOT
               ? infer_onehot(c, images, n, o, out, &r, err, errlen)
               : infer_vector(c, images, n, o, out, &r, err, errlen);
  rows_free(&r);
  return rc;
}

/* ---- baselines -------------------------------------------------------------------------------- */

int ebm_infer_baseline_measure(ebm_concept *c, const float *images, int n, ebm_infer_baseline *out,
                               char *err, size_t errlen) {
  const ebm_concept_info *info = ebm_concept_info_of(c);
  int L = info->label_dim, M = ebm_concept_max_rows(c), N = ebm_concept_image_size(c);
  int onehot = info->label_kind == EBM_LABEL_ONEHOT;
  if ((!onehot && L > 2) || L > EBM_INFER_BASE_MAX || n < 2) {
    snprintf(err, errlen, "baseline of '%s': %d label values, %d images", info->name, L, n);
    return -1;
  }
  memset(out, 0, sizeof *out);
  out->concept = c;
  int nodes = onehot ? L : EBM_INFER_BASE_NODES, S = onehot ? L : (L == 1 ? nodes : nodes * nodes);
  out->nodes = nodes;
  rows r;
  if (rows_alloc(&r, c, err, errlen)) return -1;
  double *sum = calloc((size_t)S, sizeof *sum), *sq = calloc((size_t)S, sizeof *sq);
  int rc = -1;
  if (!sum || !sq) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  /* label s: one-hot s, or node (s % nodes, s / nodes) */
  for (int s0 = 0; s0 < S; s0 += M) {
    int ns = S - s0 < M ? S - s0 : M;
    for (int s = 0; s < ns; s++) {
      float *lab = r.lab + (size_t)s * L;
      int q = s0 + s;
      for (int a = 0; a < L; a++, q /= nodes)
        lab[a] = onehot ? (float)(a == s0 + s)
                        : info->label_min[a] + (float)(q % nodes) / (nodes - 1) *
                                                   (info->label_max[a] - info->label_min[a]);
    }
    for (int b = 0; b < n; b++) {
      for (int s = 0; s < ns; s++)
        memcpy(r.xh + (size_t)s * N, images + (size_t)b * N, sizeof(float) * N);
      if (ebm_upload(r.be, ebm_ref_of(r.x), r.xh, (size_t)ns * N)) {
        snprintf(err, errlen, "inference: upload failed");
        goto done;
      }
      if (run_energy(c, &r, ns, 1, ns, err, errlen)) goto done;
      for (int s = 0; s < ns; s++) {
        sum[s0 + s] += r.eh[s];
        sq[s0 + s] += (double)r.eh[s] * r.eh[s];
      }
    }
  }
  for (int s = 0; s < S; s++) {
    double m = sum[s] / n, var = sq[s] / n - m * m;
    out->mean[s] = (float)m;
    out->spread[s] = (float)sqrt(var > 1e-18 ? var : 1e-18);
  }
  rc = 0;
done:
  free(sum);
  free(sq);
  rows_free(&r);
  return rc;
}

int ebm_infer_calibrate(const ebm_concept_set *set, int R, int n, unsigned seed,
                        ebm_infer_calibration *cal, char *err, size_t errlen) {
  memset(cal, 0, sizeof *cal);
  if (n < 2) return 0;
  scene_spec spec;
  if (scene_spec_parse("general", &spec, err, errlen)) return -1;
  float *packed = malloc((size_t)n * VKEBM_SCENE_FLOATS * sizeof *packed);
  float *img = malloc((size_t)n * 3 * R * R * sizeof *img);
  int rc = -1;
  if (!packed || !img) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  scene_sample_packed(&spec, seed, 0, n, packed);
  scene_render_cpu(img, packed, n, R, NULL, 0);
  for (int i = 0; i < set->count; i++) {
    ebm_concept *c = set->items[i];
    const ebm_concept_info *info = ebm_concept_info_of(c);
    if (info->height != R || info->channels != 3 ||
        (info->label_kind != EBM_LABEL_ONEHOT && info->label_dim > 2))
      continue;
    if (ebm_infer_baseline_measure(c, img, n, &cal->base[cal->count], err, errlen)) goto done;
    cal->count++;
  }
  rc = 0;
done:
  free(packed);
  free(img);
  return rc;
}

/* ---- masks ------------------------------------------------------------------------------------ */

static void default_camera(scene_desc *d) { scene_default_environment(d); }

void ebm_infer_place_pixel(float x, float y, int R, float px[2]) {
  scene_desc d;
  default_camera(&d);
  float p[3] = {x * SCENE_POS_SCALE_X, PLACE_HEIGHT, -y * SCENE_POS_SCALE_Z}, ndc[2];
  scene_project(&d, p, ndc);
  px[0] = (ndc[0] + 1.0f) * 0.5f * R;
  px[1] = (1.0f - ndc[1]) * 0.5f * R;
}

void ebm_infer_mask_box(float *img, int R, float x, float y, float size, const float fill[3]) {
  scene_desc d;
  default_camera(&d);
  d.nobj = 1;
  d.obj[0] = (scene_object){.shape = SCENE_CUBE, .size = size, .x = x, .y = y};
  float rect[4];
  scene_object_ndc_bounds(&d, 0, rect);
  /* NDC -> pixels (rows grow downwards), grown by a pixel */
  int c0 = (int)floorf((rect[0] + 1.0f) * 0.5f * R) - 1, c1 = (int)ceilf((rect[2] + 1.0f) * 0.5f * R);
  int r0 = (int)floorf((1.0f - rect[3]) * 0.5f * R) - 1, r1 = (int)ceilf((1.0f - rect[1]) * 0.5f * R);
  if (c0 < 0) c0 = 0;
  if (r0 < 0) r0 = 0;
  if (c1 > R) c1 = R;
  if (r1 > R) r1 = R;
  size_t plane = (size_t)R * R;
  for (int row = r0; row < r1; row++)
    for (int col = c0; col < c1; col++)
      for (int ch = 0; ch < 3; ch++) img[ch * plane + (size_t)row * R + col] = fill[ch];
}

void ebm_infer_mask_others(const float *img, int R, const float (*places)[2], int nplaces, int i,
                           const float fill[3], float *out) {
  float px[EBM_INFER_MAX_OBJECTS * 4][2];
  if (nplaces > (int)(sizeof px / sizeof *px)) nplaces = (int)(sizeof px / sizeof *px);
  for (int k = 0; k < nplaces; k++) ebm_infer_place_pixel(places[k][0], places[k][1], R, px[k]);
  size_t plane = (size_t)R * R;
  for (int y = 0; y < R; y++)
    for (int x = 0; x < R; x++) {
      float cx = x + 0.5f, cy = y + 0.5f, bd = 1e30f;
      int bestk = 0;
      for (int k = 0; k < nplaces; k++) {
        float dx = cx - px[k][0], dy = cy - px[k][1], dd = dx * dx + dy * dy;
        if (dd < bd) {
          bd = dd;
          bestk = k;
        }
      }
      for (int ch = 0; ch < 3; ch++) {
        size_t at = ch * plane + (size_t)y * R + x;
        out[at] = bestk == i ? img[at] : fill[ch];
      }
    }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void ebm_infer_median(const float *img, int R, float fill[3]) {
  size_t plane = (size_t)R * R;
  float *tmp = malloc(plane * sizeof *tmp);
  for (int ch = 0; ch < 3; ch++) {
    if (!tmp) {
      fill[ch] = img[ch * plane + plane / 2];
      continue;
    }
    memcpy(tmp, img + ch * plane, plane * sizeof *tmp);
    qsort(tmp, plane, sizeof *tmp, cmp_float);
    fill[ch] = tmp[plane / 2];
  }
  free(tmp);
}

/* ---- scenes ----------------------------------------------------------------------------------- */

int ebm_infer_scenes(const ebm_concept_set *set, const float *images, int n, int R, int K,
                     const ebm_infer_options *o, ebm_infer_scene *out, char *err, size_t errlen) {
  if (check_options(o, err, errlen)) return -1;
  ebm_concept *pos = ebm_concept_set_find(set, "position");
  if (!pos) {
    snprintf(err, errlen, "multi-object inference needs a position model");
    return -1;
  }
  if (K < 0 || K > EBM_INFER_MAX_OBJECTS) {
    snprintf(err, errlen, "objects: %d (1..%d, or 0 for auto)", K, EBM_INFER_MAX_OBJECTS);
    return -1;
  }
  const ebm_concept_info *pi = ebm_concept_info_of(pos);
  if (pi->label_dim != 2 || pi->height != R || pi->channels != 3) {
    snprintf(err, errlen, "the position model does not read %dx%d RGB images as (x, y)", R, R);
    return -1;
  }
  if (n < 1) return 0;
  int rounds = K ? K : EBM_INFER_MAX_OBJECTS;
  size_t per = (size_t)3 * R * R;
  float *work = malloc((size_t)n * per * sizeof *work);
  float (*fill)[3] = malloc((size_t)n * sizeof *fill);
  ebm_infer_value *v = malloc((size_t)n * sizeof *v);
  float *copies = NULL;
  ebm_infer_value *attr = NULL;
  int rc = -1;
  if (!work || !fill || !v) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  memcpy(work, images, (size_t)n * per * sizeof *work);
  memset(out, 0, (size_t)n * sizeof *out);
  for (int b = 0; b < n; b++) ebm_infer_median(images + b * per, R, fill[b]);
  /* greedy rounds, then one more on the image with every found object boxed out */
  for (int k = 0; k <= rounds; k++) {
    if (ebm_infer_concept(pos, work, n, o, v, err, errlen)) goto done;
    for (int b = 0; b < n; b++) {
      if (k == rounds) {
        out[b].empty_energy = v[b].energy;
        continue;
      }
      ebm_infer_object *ob = &out[b].obj[k];
      *ob = (ebm_infer_object){.x = v[b].value[0], .y = v[b].value[1], .energy = v[b].energy,
                               .shape = -1, .colour = -1, .size = -1.0f};
      ebm_infer_mask_box(work + b * per, R, ob->x, ob->y, o->mask_size, fill[b]);
    }
  }
  int total = 0;
  for (int b = 0; b < n; b++) {
    ebm_infer_scene *sc = &out[b];
    for (int k = 0; k < rounds; k++) sc->obj[k].drop = sc->empty_energy - sc->obj[k].energy;
    sc->nobj = rounds;
    if (!K) {
      sc->nobj = 1;
      for (int k = 1; k < rounds; k++) {
        float d = sc->obj[k].drop;
        if (!(d > 0.0f) || d < o->auto_ratio * sc->obj[0].drop) break;
        sc->nobj = k + 1;
      }
    }
    total += sc->nobj;
  }
  /* every object's other concepts, on a copy showing only it */
  copies = malloc((size_t)total * per * sizeof *copies);
  attr = malloc((size_t)total * sizeof *attr);
  if (!copies || !attr) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  for (int b = 0, at = 0; b < n; b++) {
    float places[EBM_INFER_MAX_OBJECTS][2];
    for (int k = 0; k < out[b].nobj; k++) {
      places[k][0] = out[b].obj[k].x;
      places[k][1] = out[b].obj[k].y;
    }
    for (int k = 0; k < out[b].nobj; k++, at++) {
      if (out[b].nobj == 1)
        memcpy(copies + at * per, images + b * per, per * sizeof *copies);
      else
        ebm_infer_mask_others(images + b * per, R, (const float(*)[2])places, out[b].nobj, k,
                              fill[b], copies + at * per);
    }
  }
  static const char *names[] = {"shape", "color", "size"};
  for (int m = 0; m < 3; m++) {
    ebm_concept *c = ebm_concept_set_find(set, names[m]);
    if (!c) continue;
    const ebm_concept_info *ci = ebm_concept_info_of(c);
    if (ci->height != R || ci->channels != 3 || (m == 2) != (ci->label_kind == EBM_LABEL_VECTOR))
      continue;
    if (ebm_infer_concept(c, copies, total, o, attr, err, errlen)) goto done;
    for (int b = 0, at = 0; b < n; b++)
      for (int k = 0; k < out[b].nobj; k++, at++) {
        ebm_infer_object *ob = &out[b].obj[k];
        if (m == 0) ob->shape = attr[at].index, ob->shape_p = attr[at].confidence;
        if (m == 1) ob->colour = attr[at].index, ob->colour_p = attr[at].confidence;
        if (m == 2) ob->size = attr[at].value[0];
      }
  }
  rc = 0;
done:
  free(work);
  free(fill);
  free(v);
  free(copies);
  free(attr);
  return rc;
}
