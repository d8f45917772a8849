/* test_scene.c: the scene generator's renders have the properties their labels claim.
 *
 * Checks (CPU renderer, fixed seeds; the object mask is the renderer's own per-pixel hit id):
 *   position: centroid of the object's pixels is monotone in label x and y, and a quadratic map
 *             from (centroid, size, shape) to label fits many random renders with a small error;
 *   colour:   the mean colour of each object's pixels is nearest (brightness-invariant: largest
 *             cosine) to its own palette entry, for every colour, with the light jitter on;
 *   size:     pixel area grows with size for every shape;
 *   shape:    silhouettes differ pairwise; a sphere's outline is round, a cube's is not;
 *   shadow:   objects darken floor pixels, an empty floor has no dark pixels;
 *   multi:    K objects give K separate blobs, each visible;
 *   in view:  every object's projected bounding box lies inside the image, for every spec;
 *   specs:    parse errors list the valid specs; split rules (continual, cross-product);
 *   labels:   dimensions, names, one-hots;
 *   determinism: same seed same bits (any thread count, random access), other seeds differ.
 * Prints the measured numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "vkebm/scene.h"

static scene_spec spec_of(const char *text) {
  scene_spec s;
  char err[512];
  if (scene_spec_parse(text, &s, err, sizeof err)) {
    fprintf(stderr, "spec '%s': %s\n", text, err);
    exit(1);
  }
  return s;
}

/* Renders one scene; returns malloc'd image, ids into *ids (malloc'd). */
static float *render_one(const scene_desc *d, int size, uint8_t **ids) {
  float packed[VKEBM_SCENE_FLOATS];
  scene_pack(d, packed);
  float *img = malloc(sizeof(float) * 3 * (size_t)size * (size_t)size);
  *ids = malloc((size_t)size * (size_t)size);
  scene_render_cpu(img, packed, 1, size, *ids, 1);
  return img;
}

typedef struct blob {
  int area;
  double cx, cy;          /* centroid, pixels (x right, y down) */
  double rgb[3];          /* mean colour */
} blob;

static blob blob_of(const float *img, const uint8_t *ids, int size, int id) {
  blob b = {0};
  size_t plane = (size_t)size * (size_t)size;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      size_t p = (size_t)y * (size_t)size + (size_t)x;
      if (ids[p] != id) continue;
      b.area++;
      b.cx += x + 0.5;
      b.cy += y + 0.5;
      for (int c = 0; c < 3; c++) b.rgb[c] += img[c * plane + p];
    }
  if (b.area) {
    b.cx /= b.area;
    b.cy /= b.area;
    for (int c = 0; c < 3; c++) b.rgb[c] /= b.area;
  }
  return b;
}

/* A fixed, jitter-free scene with one object. */
static scene_desc one_object(int shape, int colour, float size, float x, float y, float yaw) {
  scene_spec s = spec_of("general");
  s.light_jitter = s.camera_jitter = s.colour_jitter = 0;
  scene_desc d;
  scene_sample(&s, 1, 0, &d);
  d.obj[0].shape = shape;
  d.obj[0].colour = colour;
  scene_palette_rgb(colour, d.obj[0].rgb);
  d.obj[0].size = size;
  d.obj[0].x = x;
  d.obj[0].y = y;
  d.obj[0].yaw = yaw;
  return d;
}

/* ---- specs, labels --------------------------------------------------------------------- */

static void test_spec_parsing(void) {
  const char *good[] = {"general", "continual-position", "continual-shape", "continual-color",
                        "continual-colour", "cross-product 0.5", "cross-product:0.5",
                        "cross-product-test 0.25", "multi 3", "multi:5", "cross-product:0"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    scene_spec s;
    char err[512] = "";
    TU_CHECK(scene_spec_parse(good[i], &s, err, sizeof err) == 0, "'%s' rejected: %s", good[i], err);
  }
  const char *bad[] = {"", "generall", "multi", "multi 1", "multi 6", "multi x", "cross-product",
                       "cross-product 1.5", "cross-product -0.1", "cross-product 0.5x",
                       "general 3", "cross-product-test 1", "continual"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    scene_spec s;
    char err[512] = "";
    TU_CHECK(scene_spec_parse(bad[i], &s, err, sizeof err) != 0, "'%s' accepted", bad[i]);
    TU_CHECK(strstr(err, "general") || strstr(err, "ratio"), "'%s': error does not list specs: %s", bad[i], err);
  }
  scene_spec a = spec_of("cross-product 0.5"), b = spec_of("cross-product:0.5");
  TU_CHECK(!memcmp(&a, &b, sizeof a), "'cross-product 0.5' and 'cross-product:0.5' differ");
  char name[64];
  scene_spec_format(&a, name, sizeof name);
  TU_CHECK(!strcmp(name, "cross-product:0.5"), "format gave '%s'", name);
}

static void test_labels(void) {
  for (int c = 0; c < SCENE_NCONCEPTS; c++) {
    const char *names = scene_label_names(c);
    int commas = 0;
    for (const char *p = names; *p; p++) commas += *p == ',';
    TU_CHECK(commas + 1 == scene_label_dim(c), "%s: %d names for dim %d", scene_concept_name(c),
             commas + 1, scene_label_dim(c));
    TU_CHECK(scene_concept_parse(scene_concept_name(c)) == c, "concept name round trip %d", c);
  }
  TU_CHECK(scene_concept_parse("color") == SCENE_CONCEPT_COLOUR, "color alias");
  TU_CHECK(scene_concept_parse("hue") == -1, "unknown concept accepted");
  scene_spec s = spec_of("general");
  for (uint32_t i = 0; i < 50; i++) {
    scene_desc d;
    scene_sample(&s, 9, i, &d);
    float l[16];
    scene_label(&d, 0, SCENE_CONCEPT_POSITION, l);
    TU_CHECK(l[0] == d.obj[0].x && l[1] == d.obj[0].y && fabsf(l[0]) <= 1 && fabsf(l[1]) <= 1, "position label");
    scene_label(&d, 0, SCENE_CONCEPT_SIZE, l);
    TU_CHECK(l[0] == d.obj[0].size && l[0] >= 0.3f && l[0] <= 0.7f, "size label %g", l[0]);
    scene_label(&d, 0, SCENE_CONCEPT_SHAPE, l);
    float sum = 0;
    for (int k = 0; k < SCENE_NSHAPES; k++) sum += l[k];
    TU_CHECK(sum == 1.0f && l[d.obj[0].shape] == 1.0f, "shape one-hot");
    scene_label(&d, 0, SCENE_CONCEPT_COLOUR, l);
    sum = 0;
    for (int k = 0; k < SCENE_NCOLOURS; k++) sum += l[k];
    TU_CHECK(sum == 1.0f && l[d.obj[0].colour] == 1.0f, "colour one-hot");
    /* joint: the four labels concatenated, in the order of its names */
    float j[16], parts[16];
    TU_CHECK(scene_label_dim(SCENE_CONCEPT_JOINT) == 15, "joint dim %d", scene_label_dim(SCENE_CONCEPT_JOINT));
    scene_label(&d, 0, SCENE_CONCEPT_JOINT, j);
    int at = 0;
    for (int c = SCENE_CONCEPT_POSITION; c <= SCENE_CONCEPT_COLOUR; c++) {
      scene_label(&d, 0, (scene_concept)c, parts);
      TU_CHECK(!memcmp(j + at, parts, sizeof(float) * scene_label_dim(c)), "joint part %d", c);
      at += scene_label_dim(c);
    }
  }
  TU_CHECK(!strncmp(scene_label_names(SCENE_CONCEPT_JOINT), "x,y,size,cube,", 14) &&
               strstr(scene_label_names(SCENE_CONCEPT_JOINT), ",cone,red,") != NULL,
           "joint names: %s", scene_label_names(SCENE_CONCEPT_JOINT));
  /* the batch helper agrees with scene-by-scene sampling */
  scene_spec multi = spec_of("multi 3");
  float packed[5 * VKEBM_SCENE_FLOATS], labels[5 * 2], one[VKEBM_SCENE_FLOATS];
  scene_sample_batch(&multi, 4, 20, 5, 2, SCENE_CONCEPT_POSITION, packed, labels);
  for (int i = 0; i < 5; i++) {
    scene_desc d;
    scene_sample(&multi, 4, 20 + (uint32_t)i, &d);
    scene_pack(&d, one);
    TU_CHECK(!memcmp(one, packed + i * VKEBM_SCENE_FLOATS, sizeof one), "batch scene %d", i);
    TU_CHECK(labels[2 * i] == d.obj[2].x && labels[2 * i + 1] == d.obj[2].y, "batch label %d", i);
  }
  for (int k = 0; k < SCENE_NSHAPES; k++) TU_CHECK(scene_shape_from_name(scene_shape_name(k)) == k, "shape names");
  for (int k = 0; k < SCENE_NCOLOURS; k++) TU_CHECK(scene_colour_from_name(scene_colour_name(k)) == k, "colour names");
}

static void test_continual_rules(void) {
  int seen_shape[SCENE_NSHAPES] = {0}, seen_colour[SCENE_NCOLOURS] = {0};
  int purple = scene_colour_from_name("purple");
  scene_spec pos = spec_of("continual-position"), shp = spec_of("continual-shape"),
             col = spec_of("continual-color"), gen = spec_of("general");
  int pos_ok = 1, shp_ok = 1, nshape_shp[SCENE_NSHAPES] = {0};
  for (uint32_t i = 0; i < 400; i++) {
    scene_desc d;
    scene_sample(&pos, 2, i, &d);
    pos_ok &= d.nobj == 1 && d.obj[0].shape == SCENE_CUBE && d.obj[0].colour == purple;
    scene_sample(&shp, 2, i, &d);
    shp_ok &= d.obj[0].colour == purple;
    nshape_shp[d.obj[0].shape]++;
    scene_sample(&col, 2, i, &d);
    seen_shape[d.obj[0].shape]++;
    seen_colour[d.obj[0].colour]++;
    scene_sample(&gen, 2, i, &d);
    TU_CHECK(d.nobj == 1, "general has one object");
  }
  TU_CHECK(pos_ok, "continual-position: not all purple cubes");
  TU_CHECK(shp_ok, "continual-shape: not all purple");
  for (int k = 0; k < SCENE_NSHAPES; k++) {
    TU_CHECK(nshape_shp[k] > 40, "continual-shape: shape %d seen %d times", k, nshape_shp[k]);
    TU_CHECK(seen_shape[k] > 40, "continual-color: shape %d seen %d times", k, seen_shape[k]);
  }
  for (int k = 0; k < SCENE_NCOLOURS; k++)
    TU_CHECK(seen_colour[k] > 20, "continual-color: colour %d seen %d times", k, seen_colour[k]);
}

static int nearest_index(float v, float (*coord)(int), int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (fabsf(coord(i) - v) < fabsf(coord(best) - v)) best = i;
  return best;
}

static void test_cross_product(void) {
  const float ratios[] = {0.0f, 0.25f, 0.5f, 0.75f};
  const int np = SCENE_CROSS_GRID * SCENE_CROSS_GRID;
  for (size_t r = 0; r < sizeof ratios / sizeof *ratios; r++) {
    char text[64];
    snprintf(text, sizeof text, "cross-product %g", ratios[r]);
    scene_spec train = spec_of(text);
    snprintf(text, sizeof text, "cross-product-test:%g", ratios[r]);
    scene_spec test = spec_of(text);
    int nfull = 0;
    for (int p = 0; p < np; p++) {
      int full = scene_cross_position_full(ratios[r], p), shown = 0;
      nfull += full;
      for (int l = 0; l < SCENE_CROSS_SIZES; l++) {
        shown += train.cross_allowed[p][l];
        TU_CHECK(train.cross_allowed[p][l] + test.cross_allowed[p][l] == 1,
                 "pair (%d,%d) must be in exactly one split", p, l);
      }
      TU_CHECK(shown == (full ? SCENE_CROSS_SIZES : 1), "position %d shows %d sizes", p, shown);
      if (r > 0) TU_CHECK(!scene_cross_position_full(ratios[r - 1], p) || full, "splits not nested at %d", p);
    }
    TU_CHECK(nfull == (int)lroundf(ratios[r] * np), "ratio %g: %d full positions", ratios[r], nfull);
    /* sampled scenes honour the split: training never shows a held-out pair, and vice versa */
    int bad_train = 0, bad_test = 0, off_grid = 0;
    int hit_train[SCENE_CROSS_GRID * SCENE_CROSS_GRID][SCENE_CROSS_SIZES] = {{0}};
    for (uint32_t i = 0; i < 3000; i++) {
      for (int which = 0; which < 2; which++) {
        scene_desc d;
        scene_sample(which ? &test : &train, 11 + which, i, &d);
        int ix = nearest_index(d.obj[0].x, scene_cross_coord, SCENE_CROSS_GRID);
        int iy = nearest_index(d.obj[0].y, scene_cross_coord, SCENE_CROSS_GRID);
        int l = nearest_index(d.obj[0].size, scene_cross_size, SCENE_CROSS_SIZES);
        off_grid += d.obj[0].x != scene_cross_coord(ix) || d.obj[0].y != scene_cross_coord(iy) ||
                    d.obj[0].size != scene_cross_size(l) || d.obj[0].shape != SCENE_CUBE;
        int p = iy * SCENE_CROSS_GRID + ix;
        if (which) bad_test += !test.cross_allowed[p][l];
        else {
          bad_train += !train.cross_allowed[p][l];
          hit_train[p][l] = 1;
        }
      }
    }
    int covered = 0;
    for (int p = 0; p < np; p++)
      for (int l = 0; l < SCENE_CROSS_SIZES; l++) covered += hit_train[p][l];
    TU_CHECK(bad_train == 0, "ratio %g: %d training scenes show held-out pairs", ratios[r], bad_train);
    TU_CHECK(bad_test == 0, "ratio %g: %d test scenes show training pairs", ratios[r], bad_test);
    TU_CHECK(off_grid == 0, "ratio %g: %d scenes off the grid", ratios[r], off_grid);
    TU_CHECK(covered == train.cross_npairs, "ratio %g: training covers %d of %d pairs", ratios[r],
             covered, train.cross_npairs);
    printf("  cross-product %.2f: %d full positions, %d training pairs, %d held out\n", ratios[r],
           nfull, train.cross_npairs, test.cross_npairs);
  }
}

static void test_in_view(void) {
  const char *specs[] = {"general", "continual-position", "continual-shape", "continual-color",
                         "cross-product 0.5", "cross-product-test 0.5", "multi 2", "multi 5"};
  for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
    scene_spec sp = spec_of(specs[s]);
    float worst = 0;
    int nobj_ok = 1, fallbacks = 0;
    for (uint32_t i = 0; i < 600; i++) {
      scene_desc d;
      scene_sample(&sp, 5, i, &d);
      nobj_ok &= d.nobj == sp.nobj;
      /* multi: the placement's last resort puts object 0 at (-0.8, -0.8) with the smallest size */
      fallbacks += sp.kind == SCENE_SPEC_MULTI && d.obj[0].x == -0.8f && d.obj[0].y == -0.8f &&
                   d.obj[0].size == sp.size_min;
      for (int k = 0; k < d.nobj; k++) {
        float r[4];
        scene_object_ndc_bounds(&d, k, r);
        for (int q = 0; q < 4; q++) worst = fmaxf(worst, fabsf(r[q]));
      }
    }
    TU_CHECK(nobj_ok, "%s: wrong object count", specs[s]);
    TU_CHECK(fallbacks == 0, "%s: %d scenes needed the fixed fallback layout", specs[s], fallbacks);
    TU_CHECK(worst < 0.98f, "%s: an object reaches NDC %.3f (out of view)", specs[s], worst);
    printf("  in view %-24s worst |ndc| of a bounding box %.3f\n", specs[s], worst);
  }
}

/* ---- determinism --------------------------------------------------------------------- */

static void test_determinism(void) {
  scene_spec sp = spec_of("multi 3");
  const int n = 12, size = 32;
  size_t nimg = (size_t)n * 3 * size * size;
  float *packed = malloc(sizeof(float) * n * VKEBM_SCENE_FLOATS);
  float *a = malloc(sizeof(float) * nimg), *b = malloc(sizeof(float) * nimg), *c = malloc(sizeof(float) * nimg);
  scene_sample_packed(&sp, 3, 100, n, packed);
  scene_render_cpu(a, packed, n, size, NULL, 1);
  scene_render_cpu(b, packed, n, size, NULL, 2);
  TU_CHECK(!memcmp(a, b, sizeof(float) * nimg), "1 and 2 threads differ");
  /* random access: scene 105 alone is image 5 of the batch */
  float one[VKEBM_SCENE_FLOATS];
  scene_sample_packed(&sp, 3, 105, 1, one);
  TU_CHECK(!memcmp(one, packed + 5 * VKEBM_SCENE_FLOATS, sizeof one), "scene 105 differs when sampled alone");
  scene_sample_packed(&sp, 3, 100, n, packed);
  scene_render_cpu(c, packed, n, size, NULL, 2);
  TU_CHECK(!memcmp(a, c, sizeof(float) * nimg), "same seed, different bits");
  scene_sample_packed(&sp, 4, 100, n, packed);
  scene_render_cpu(c, packed, n, size, NULL, 2);
  int differ = 0;
  for (int i = 0; i < n; i++)
    differ += memcmp(a + (size_t)i * 3 * size * size, c + (size_t)i * 3 * size * size,
                     sizeof(float) * 3 * size * size) != 0;
  TU_CHECK(differ == n, "seeds 3 and 4 give %d of %d different images", differ, n);
  int in_range = 1;
  for (size_t i = 0; i < nimg; i++) in_range &= a[i] >= 0.0f && a[i] <= 1.0f;
  TU_CHECK(in_range, "pixel outside [0, 1]");
  free(packed);
  free(a);
  free(b);
  free(c);
}

/* ---- position ------------------------------------------------------------------------- */

#define NF 12 /* features of the position fit */

/* Solves the normal equations (A^T A) w = A^T t by Gauss-Jordan elimination with pivoting. */
static void least_squares(double ata[NF][NF], double atb[NF], double w[NF]) {
  double m[NF][NF + 1];
  for (int i = 0; i < NF; i++) {
    for (int j = 0; j < NF; j++) m[i][j] = ata[i][j];
    m[i][NF] = atb[i];
  }
  for (int c = 0; c < NF; c++) {
    int piv = c;
    for (int r = c + 1; r < NF; r++)
      if (fabs(m[r][c]) > fabs(m[piv][c])) piv = r;
    for (int j = 0; j <= NF; j++) {
      double t = m[c][j];
      m[c][j] = m[piv][j];
      m[piv][j] = t;
    }
    for (int r = 0; r < NF; r++) {
      if (r == c) continue;
      double f = m[r][c] / m[c][c];
      for (int j = c; j <= NF; j++) m[r][j] -= f * m[c][j];
    }
  }
  for (int i = 0; i < NF; i++) w[i] = m[i][NF] / m[i][i];
}

static void position_fit(const scene_spec *sp, int size, double *rms_out, double *worst_out) {
  double ata[2][NF][NF] = {{{0}}}, atb[2][NF] = {{0}}, w[2][NF];
  const int nfit = 300, ntest = 100;
  double se = 0, worst = 0;
  for (int i = 0; i < nfit + ntest; i++) {
    scene_desc d;
    scene_sample(sp, 21, (uint32_t)i, &d);
    uint8_t *ids;
    float *img = render_one(&d, size, &ids);
    blob b = blob_of(img, ids, size, 0);
    free(img);
    free(ids);
    double u = b.cx / size * 2 - 1, v = b.cy / size * 2 - 1;
    /* quadratic in the centroid (u, v), plus the object's size per shape: objects stand on the
     * floor, so a taller object's centroid sits higher in the image than its ground point, by
     * an amount that depends on the shape (a cone's mass is low, a cylinder's is not) */
    double sz = d.obj[0].size;
    int sh = d.obj[0].shape;
    double f[NF] = {1, u, v, u * u, u * v, v * v, sz, sz * u, sz * v,
                    sz * (sh == 1), sz * (sh == 2), sz * (sh == 3)};
    double t[2] = {d.obj[0].x, d.obj[0].y};
    if (i < nfit) {
      for (int k = 0; k < 2; k++)
        for (int a = 0; a < NF; a++) {
          atb[k][a] += f[a] * t[k];
          for (int c = 0; c < NF; c++) ata[k][a][c] += f[a] * f[c];
        }
      if (i == nfit - 1)
        for (int k = 0; k < 2; k++) least_squares(ata[k], atb[k], w[k]);
    } else {
      double e2 = 0;
      for (int k = 0; k < 2; k++) {
        double p = 0;
        for (int a = 0; a < NF; a++) p += w[k][a] * f[a];
        e2 += (p - t[k]) * (p - t[k]);
      }
      se += e2;
      worst = fmax(worst, sqrt(e2));
    }
  }
  *rms_out = sqrt(se / ntest);
  *worst_out = worst;
}

static void test_position(void) {
  const int size = 32;
  /* monotone sweeps, all shapes, no jitter */
  for (int shape = 0; shape < SCENE_NSHAPES; shape++) {
    double prev_x = -1, prev_y = 1e9;
    int mono_x = 1, mono_y = 1;
    for (int i = 0; i <= 10; i++) {
      float v = -1.0f + 0.2f * (float)i;
      uint8_t *ids;
      scene_desc d = one_object(shape, 0, 0.5f, v, 0.1f, 0.3f);
      float *img = render_one(&d, size, &ids);
      blob bx = blob_of(img, ids, size, 0);
      free(img);
      free(ids);
      d = one_object(shape, 0, 0.5f, -0.1f, v, 0.3f);
      img = render_one(&d, size, &ids);
      blob by = blob_of(img, ids, size, 0);
      free(img);
      free(ids);
      mono_x &= bx.cx > prev_x;
      mono_y &= by.cy < prev_y; /* farther away = higher in the image */
      prev_x = bx.cx;
      prev_y = by.cy;
    }
    TU_CHECK(mono_x, "%s: centroid x not increasing with label x", scene_shape_name(shape));
    TU_CHECK(mono_y, "%s: centroid row not decreasing with label y", scene_shape_name(shape));
  }
  /* quadratic map centroid -> label, fitted on 300 random general renders and measured on
   * 100 others: once with every nuisance on, once without the camera jitter (which moves the
   * whole image on purpose) */
  for (int cam = 1; cam >= 0; cam--) {
    scene_spec sp = spec_of("general");
    sp.camera_jitter = cam;
    double rms, worst;
    position_fit(&sp, size, &rms, &worst);
    printf("  position: (centroid, size, shape)->label fit, 300 renders at %dx%d, camera jitter %s: "
           "held-out RMS error %.4f, worst %.4f (label units, range [-1, 1])\n", size, size,
           cam ? "on " : "off", rms, worst);
    TU_CHECK(rms < (cam ? 0.10 : 0.05), "position fit RMS %.4f", rms);
    TU_CHECK(worst < (cam ? 0.25 : 0.15), "position fit worst %.4f", worst);
  }
}

/* ---- colour, size, shape, shadow ------------------------------------------------------- */

static int nearest_palette(const double rgb[3]) {
  int best = -1;
  double best_cos = -2;
  double n = sqrt(rgb[0] * rgb[0] + rgb[1] * rgb[1] + rgb[2] * rgb[2]);
  for (int c = 0; c < SCENE_NCOLOURS; c++) {
    float p[3];
    scene_palette_rgb(c, p);
    double pn = sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    double cs = (rgb[0] * p[0] + rgb[1] * p[1] + rgb[2] * p[2]) / (n * pn);
    if (cs > best_cos) best_cos = cs, best = c;
  }
  return best;
}

static void test_colour(void) {
  const int size = 32, per = 30;
  scene_spec sp = spec_of("general"); /* light, camera and albedo jitter all on */
  int total_ok = 0, total = 0;
  for (int colour = 0; colour < SCENE_NCOLOURS; colour++) {
    int ok = 0;
    for (int i = 0; i < per; i++) {
      scene_desc d;
      scene_sample(&sp, 31, (uint32_t)(colour * per + i), &d);
      /* keep the sampled jitter, swap in this colour: albedo = palette + the sampled offset */
      float base[3], want[3];
      scene_palette_rgb(d.obj[0].colour, base);
      scene_palette_rgb(colour, want);
      for (int c = 0; c < 3; c++)
        d.obj[0].rgb[c] = fminf(fmaxf(want[c] + (d.obj[0].rgb[c] - base[c]), 0.0f), 1.0f);
      d.obj[0].colour = colour;
      uint8_t *ids;
      float *img = render_one(&d, size, &ids);
      blob b = blob_of(img, ids, size, 0);
      free(img);
      free(ids);
      ok += b.area > 0 && nearest_palette(b.rgb) == colour;
    }
    printf("  colour %-7s nearest palette entry of the mean object colour: %d/%d\n",
           scene_colour_name(colour), ok, per);
    TU_CHECK(ok == per, "%s: %d/%d renders nearest to their palette entry", scene_colour_name(colour), ok, per);
    total_ok += ok;
    total += per;
  }
  printf("  colour accuracy %.1f%% over %d renders\n", 100.0 * total_ok / total, total);
}

static void test_size(void) {
  const int size = 64;
  for (int shape = 0; shape < SCENE_NSHAPES; shape++) {
    int prev = 0, mono = 1, areas[9];
    for (int i = 0; i <= 8; i++) {
      scene_desc d = one_object(shape, 1, 0.3f + 0.05f * (float)i, 0.2f, -0.3f, 0.4f);
      uint8_t *ids;
      float *img = render_one(&d, size, &ids);
      areas[i] = blob_of(img, ids, size, 0).area;
      free(img);
      free(ids);
      mono &= areas[i] > prev;
      prev = areas[i];
    }
    printf("  size %-8s area at 0.3 / 0.5 / 0.7: %d / %d / %d px (64x64)\n", scene_shape_name(shape),
           areas[0], areas[4], areas[8]);
    TU_CHECK(mono, "%s: area does not grow with size", scene_shape_name(shape));
  }
}

/* max/min distance from the centroid to the blob's boundary pixels */
static double outline_ratio(const uint8_t *ids, int size, blob b) {
  double rmin = 1e9, rmax = 0;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      if (ids[y * size + x] != 0) continue;
      int edge = x == 0 || y == 0 || x == size - 1 || y == size - 1 || ids[y * size + x - 1] != 0 ||
                 ids[y * size + x + 1] != 0 || ids[(y - 1) * size + x] != 0 || ids[(y + 1) * size + x] != 0;
      if (!edge) continue;
      double r = hypot(x + 0.5 - b.cx, y + 0.5 - b.cy);
      rmin = fmin(rmin, r);
      rmax = fmax(rmax, r);
    }
  return rmin / rmax;
}

static void test_shapes(void) {
  const int size = 64;
  uint8_t *masks[SCENE_NSHAPES];
  double ratio[SCENE_NSHAPES];
  for (int shape = 0; shape < SCENE_NSHAPES; shape++) {
    scene_desc d = one_object(shape, 3, 0.6f, 0.0f, 0.0f, 0.5f);
    float *img = render_one(&d, size, &masks[shape]);
    blob b = blob_of(img, masks[shape], size, 0);
    ratio[shape] = outline_ratio(masks[shape], size, b);
    free(img);
  }
  printf("  shape outline roundness (min/max radius): cube %.3f sphere %.3f cylinder %.3f cone %.3f\n",
         ratio[0], ratio[1], ratio[2], ratio[3]);
  TU_CHECK(ratio[SCENE_SPHERE] > 0.8, "sphere outline not round: %.3f", ratio[SCENE_SPHERE]);
  for (int s = 0; s < SCENE_NSHAPES; s++)
    if (s != SCENE_SPHERE)
      TU_CHECK(ratio[s] < ratio[SCENE_SPHERE] - 0.1, "%s as round as the sphere (%.3f)", scene_shape_name(s), ratio[s]);
  for (int a = 0; a < SCENE_NSHAPES; a++)
    for (int b = a + 1; b < SCENE_NSHAPES; b++) {
      int inter = 0, uni = 0;
      for (int p = 0; p < size * size; p++) {
        int ia = masks[a][p] == 0, ib = masks[b][p] == 0;
        inter += ia && ib;
        uni += ia || ib;
      }
      double iou = (double)inter / uni;
      printf("  silhouette IoU %s/%s %.3f\n", scene_shape_name(a), scene_shape_name(b), iou);
      TU_CHECK(iou < 0.85, "%s and %s silhouettes too alike (IoU %.3f)", scene_shape_name(a), scene_shape_name(b), iou);
    }
  for (int s = 0; s < SCENE_NSHAPES; s++) free(masks[s]);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* floor pixels darker than 0.7 x the median floor brightness */
static int dark_floor_pixels(const float *img, const uint8_t *ids, int size) {
  size_t plane = (size_t)size * size;
  float *lum = malloc(sizeof(float) * plane);
  int n = 0, dark = 0;
  for (size_t p = 0; p < plane; p++)
    if (ids[p] == 255) lum[n++] = img[p] + img[plane + p] + img[2 * plane + p];
  float *sorted = malloc(sizeof(float) * (size_t)n);
  memcpy(sorted, lum, sizeof(float) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof(float), cmp_float);
  float median = sorted[n / 2];
  for (int i = 0; i < n; i++) dark += lum[i] < 0.7f * median;
  free(sorted);
  free(lum);
  return dark;
}

static void test_shadow(void) {
  const int size = 64;
  scene_desc d = one_object(SCENE_CUBE, 2, 0.6f, 0.0f, 0.0f, 0.2f);
  uint8_t *ids;
  float *img = render_one(&d, size, &ids);
  int with = dark_floor_pixels(img, ids, size);
  free(img);
  free(ids);
  d.nobj = 0;
  img = render_one(&d, size, &ids);
  int without = dark_floor_pixels(img, ids, size);
  free(img);
  free(ids);
  printf("  shadow: %d dark floor pixels with a cube, %d on an empty floor\n", with, without);
  TU_CHECK(with >= 20, "no visible shadow (%d dark floor pixels)", with);
  TU_CHECK(without == 0, "empty floor has %d dark pixels", without);
}

/* ---- multi-object scenes -------------------------------------------------------------- */

static int count_components(const uint8_t *ids, int size) {
  int *label = calloc((size_t)size * size, sizeof(int)), *stack = malloc(sizeof(int) * size * size);
  int ncomp = 0;
  for (int p = 0; p < size * size; p++) {
    if (ids[p] == 255 || label[p]) continue;
    ncomp++;
    int top = 0;
    stack[top++] = p;
    label[p] = ncomp;
    while (top) {
      int q = stack[--top], x = q % size, y = q / size;
      int nb[4] = {x > 0 ? q - 1 : -1, x < size - 1 ? q + 1 : -1, y > 0 ? q - size : -1,
                   y < size - 1 ? q + size : -1};
      for (int k = 0; k < 4; k++)
        if (nb[k] >= 0 && ids[nb[k]] != 255 && !label[nb[k]]) {
          label[nb[k]] = ncomp;
          stack[top++] = nb[k];
        }
    }
  }
  free(label);
  free(stack);
  return ncomp;
}

static void test_multi(void) {
  const int size = 64;
  for (int K = 2; K <= SCENE_MAX_OBJECTS; K++) {
    char text[32];
    snprintf(text, sizeof text, "multi %d", K);
    scene_spec sp = spec_of(text);
    int right = 0, visible = 0, colour_ok = 0, objs = 0;
    const int n = 25;
    for (int i = 0; i < n; i++) {
      scene_desc d;
      scene_sample(&sp, 41, (uint32_t)i, &d);
      uint8_t *ids;
      float *img = render_one(&d, size, &ids);
      right += count_components(ids, size) == K;
      int all_visible = 1;
      for (int k = 0; k < K; k++) {
        blob b = blob_of(img, ids, size, k);
        all_visible &= b.area >= 8;
        colour_ok += b.area > 0 && nearest_palette(b.rgb) == d.obj[k].colour;
        objs++;
      }
      visible += all_visible;
      free(img);
      free(ids);
    }
    printf("  multi %d: %d/%d scenes with %d separate blobs, %d/%d with every object visible, "
           "colour right for %d/%d objects\n", K, right, n, K, visible, n, colour_ok, objs);
    TU_CHECK(right == n, "multi %d: %d/%d scenes have %d separate objects", K, right, n, K);
    TU_CHECK(visible == n, "multi %d: hidden objects", K);
    TU_CHECK(colour_ok == objs, "multi %d: colour wrong for %d objects", K, objs - colour_ok);
  }
}

static void bench(void) {
  scene_spec sp = spec_of("general");
  const int n = 64;
  float *packed = malloc(sizeof(float) * n * VKEBM_SCENE_FLOATS);
  float *img = malloc(sizeof(float) * n * 3 * 64 * 64);
  scene_sample_packed(&sp, 1, 0, n, packed);
  const int sizes[2] = {32, 64};
  for (int s = 0; s < 2; s++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    scene_render_cpu(img, packed, n, sizes[s], NULL, 1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double dt = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    printf("  cpu renderer, one thread: %.0f renders/s at %dx%d (general)\n", n / dt, sizes[s], sizes[s]);
  }
  free(packed);
  free(img);
}

int main(void) {
  test_spec_parsing();
  test_labels();
  test_continual_rules();
  test_cross_product();
  test_in_view();
  test_determinism();
  test_position();
  test_colour();
  test_size();
  test_shapes();
  test_shadow();
  test_multi();
  bench();
  return tu_finish("test_scene");
}
