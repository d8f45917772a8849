/* scene.c: scene specs, sampling, packing and labels (see include/vkebm/scene.h).
 *
 * Owns: the palette and shape names, the spec grammar, the one place that turns (spec, seed,
 * index) into a scene description, the camera/light defaults, and the packed float layout's
 * writer (scene_shade.h defines the layout; cglm builds the view and projection here so the
 * shader needs no matrix code).
 *
 * Randomness: draw k of scene i is vkebm_rng_uniform(seed, SCENE_RNG_STEP, i, k), k counting
 * up from 0 in a fixed order (camera, light, then objects), so scenes are random-access and the
 * CPU and any device agree on the description exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cglm/cglm.h>

#include "vkebm/scene.h"
#include "vkebm/shared.h"

#define SCENE_RNG_STEP 0x5ce4e001u

/* ---- palette and shapes ------------------------------------------------------------------ */

static const char *const shape_names[SCENE_NSHAPES] = {"cube", "sphere", "cylinder", "cone"};

/* Well-separated hues (and white), all far from the neutral grey floor in chromaticity or
 * brightness. */
static const struct {
  const char *name;
  float rgb[3];
} palette[SCENE_NCOLOURS] = {
    {"red", {0.90f, 0.12f, 0.10f}},    {"green", {0.15f, 0.72f, 0.18f}},
    {"blue", {0.15f, 0.30f, 0.95f}},   {"yellow", {0.95f, 0.85f, 0.10f}},
    {"purple", {0.58f, 0.20f, 0.82f}}, {"cyan", {0.10f, 0.80f, 0.85f}},
    {"orange", {1.00f, 0.50f, 0.05f}}, {"white", {0.95f, 0.95f, 0.95f}},
};
#define COLOUR_PURPLE 4

const char *scene_shape_name(int shape) {
  return shape >= 0 && shape < SCENE_NSHAPES ? shape_names[shape] : NULL;
}
const char *scene_colour_name(int colour) {
  return colour >= 0 && colour < SCENE_NCOLOURS ? palette[colour].name : NULL;
}
void scene_palette_rgb(int colour, float rgb[3]) {
  memcpy(rgb, palette[colour].rgb, sizeof palette[colour].rgb);
}
int scene_shape_from_name(const char *name) {
  for (int i = 0; i < SCENE_NSHAPES; i++)
    if (!strcmp(name, shape_names[i])) return i;
  return -1;
}
int scene_colour_from_name(const char *name) {
  for (int i = 0; i < SCENE_NCOLOURS; i++)
    if (!strcmp(name, palette[i].name)) return i;
  return -1;
}

/* ---- camera and light defaults -----------------------------------------------------------
 * The camera looks down at about 54 degrees from in front of the floor; the light comes from
 * the upper left and front, so shadows fall back and to the right where the camera sees them.
 * The field of view keeps every object of size <= 0.7 at any position in [-1, 1]^2 inside the
 * image with camera jitter on (tests/test_scene.c checks the projected bounding boxes). */
static const float eye0[3] = {0.0f, 8.13f, 5.82f};
static const float target0[3] = {0.0f, 0.35f, 0.1f};
static const float fovy0 = 0.62f; /* radians, about 35.5 degrees */
static const float light0_azimuth = -0.88f, light0_elevation = 0.85f;
static const float floor_grey = 0.50f, sky_grey = 0.70f, ambient0 = 0.35f;

/* ---- specs ------------------------------------------------------------------------------- */

static const char *const spec_usage =
    "general | continual-position | continual-shape | continual-color | cross-product R | "
    "cross-product-test R | multi K   (R in [0, 1], K in 2..5; \"name:ARG\" works too)";

const char *scene_spec_usage(void) { return spec_usage; }

float scene_cross_coord(int i) { return -1.0f + 2.0f * (float)i / (float)(SCENE_CROSS_GRID - 1); }
float scene_cross_size(int level) { return 0.3f + 0.1f * (float)level; }

/* Positions ranked by a fixed hash: the first round(R * G^2) show every size, so a larger ratio's
 * full positions include a smaller one's. A position that is not full shows one size level,
 * also from a fixed hash. Neither depends on the sampling seed: the split is the spec's. */
static uint32_t cross_rank_key(int p) { return vkebm_hash32((uint32_t)p * 0x9e3779b9u + 0xc0ffeeu); }
static int cross_single_level(int p) { return (int)(vkebm_hash32((uint32_t)p ^ 0x51ed0u) % SCENE_CROSS_SIZES); }

int scene_cross_position_full(float ratio, int p) {
  const int np = SCENE_CROSS_GRID * SCENE_CROSS_GRID;
  int nfull = (int)lroundf(ratio * (float)np);
  int rank = 0; /* positions ranked before p */
  uint32_t kp = cross_rank_key(p);
  for (int q = 0; q < np; q++) {
    uint32_t kq = cross_rank_key(q);
    if (kq < kp || (kq == kp && q < p)) rank++;
  }
  return rank < nfull;
}

static void cross_fill(scene_spec *s, int test) {
  const int np = SCENE_CROSS_GRID * SCENE_CROSS_GRID;
  s->cross_npairs = 0;
  for (int p = 0; p < np; p++) {
    int full = scene_cross_position_full(s->ratio, p);
    int single = cross_single_level(p);
    for (int l = 0; l < SCENE_CROSS_SIZES; l++) {
      int shown = full || l == single;
      s->cross_allowed[p][l] = (uint8_t)(test ? !shown : shown);
      s->cross_npairs += s->cross_allowed[p][l];
    }
  }
}

int scene_spec_parse(const char *text, scene_spec *spec, char *err, size_t errlen) {
  memset(spec, 0, sizeof *spec);
  spec->nobj = 1;
  spec->size_min = 0.3f;
  spec->size_max = 0.7f;
  spec->light_jitter = spec->camera_jitter = spec->colour_jitter = 1;
  char name[64] = {0}, arg[64] = {0};
  const char *sep = text + strcspn(text, " :");
  size_t nlen = (size_t)(sep - text);
  if (nlen == 0 || nlen >= sizeof name) goto bad_name;
  memcpy(name, text, nlen);
  if (*sep) {
    const char *a = sep + 1;
    while (*a == ' ') a++;
    if (strlen(a) >= sizeof arg || !*a) goto bad_arg;
    strcpy(arg, a);
  }
  int wants_arg = 0;
  if (!strcmp(name, "general")) spec->kind = SCENE_SPEC_GENERAL;
  else if (!strcmp(name, "continual-position")) spec->kind = SCENE_SPEC_CONTINUAL_POSITION;
  else if (!strcmp(name, "continual-shape")) spec->kind = SCENE_SPEC_CONTINUAL_SHAPE;
  else if (!strcmp(name, "continual-color") || !strcmp(name, "continual-colour"))
    spec->kind = SCENE_SPEC_CONTINUAL_COLOUR;
  else if (!strcmp(name, "cross-product")) spec->kind = SCENE_SPEC_CROSS_PRODUCT, wants_arg = 1;
  else if (!strcmp(name, "cross-product-test"))
    spec->kind = SCENE_SPEC_CROSS_PRODUCT_TEST, wants_arg = 1;
  else if (!strcmp(name, "multi")) spec->kind = SCENE_SPEC_MULTI, wants_arg = 1;
  else goto bad_name;
  if (!wants_arg && arg[0]) {
    snprintf(err, errlen, "spec '%s' takes no argument; valid specs: %s", name, spec_usage);
    return -1;
  }
  if (wants_arg && !arg[0]) goto bad_arg;
  char *end = NULL;
  if (spec->kind == SCENE_SPEC_MULTI) {
    long k = strtol(arg, &end, 10);
    if (*end || end == arg || k < 2 || k > SCENE_MAX_OBJECTS) goto bad_arg;
    spec->nobj = (int)k;
    spec->size_max = 0.5f;
  } else if (wants_arg) {
    double r = strtod(arg, &end);
    if (*end || end == arg || !(r >= 0.0 && r <= 1.0)) goto bad_arg;
    spec->ratio = (float)r;
    cross_fill(spec, spec->kind == SCENE_SPEC_CROSS_PRODUCT_TEST);
    if (spec->cross_npairs == 0) {
      snprintf(err, errlen, "spec '%s' has no (position, size) pairs: with ratio %g every pair "
               "is shown in training; use a ratio below 1", text, r);
      return -1;
    }
  }
  return 0;
bad_name:
  snprintf(err, errlen, "unknown scene spec '%s'; valid specs: %s", text, spec_usage);
  return -1;
bad_arg:
  snprintf(err, errlen, "bad argument in scene spec '%s'; valid specs: %s", text, spec_usage);
  return -1;
}

void scene_spec_format(const scene_spec *spec, char *buf, size_t len) {
  switch (spec->kind) {
  case SCENE_SPEC_GENERAL: snprintf(buf, len, "general"); break;
  case SCENE_SPEC_CONTINUAL_POSITION: snprintf(buf, len, "continual-position"); break;
  case SCENE_SPEC_CONTINUAL_SHAPE: snprintf(buf, len, "continual-shape"); break;
  case SCENE_SPEC_CONTINUAL_COLOUR: snprintf(buf, len, "continual-color"); break;
  case SCENE_SPEC_CROSS_PRODUCT: snprintf(buf, len, "cross-product:%g", spec->ratio); break;
  case SCENE_SPEC_CROSS_PRODUCT_TEST: snprintf(buf, len, "cross-product-test:%g", spec->ratio); break;
  case SCENE_SPEC_MULTI: snprintf(buf, len, "multi:%d", spec->nobj); break;
  }
}

/* ---- camera math (cglm) ------------------------------------------------------------------ */

static void scene_view_proj(const scene_desc *d, mat4 vp) {
  mat4 view, proj;
  vec3 eye = {d->eye[0], d->eye[1], d->eye[2]};
  vec3 target = {d->target[0], d->target[1], d->target[2]};
  vec3 up = {0.0f, 1.0f, 0.0f};
  glm_lookat(eye, target, up, view);
  glm_perspective(d->fovy, 1.0f, 0.1f, 100.0f, proj);
  glm_mat4_mul(proj, view, vp);
}

void scene_project(const scene_desc *d, const float p[3], float ndc[2]) {
  mat4 vp;
  scene_view_proj(d, vp);
  vec4 v = {p[0], p[1], p[2], 1.0f}, r;
  glm_mat4_mulv(vp, v, r);
  ndc[0] = r[0] / r[3];
  ndc[1] = r[1] / r[3];
}

static float footprint_radius(const scene_object *o) {
  return o->shape == SCENE_CUBE ? o->size * 1.41421356f : o->size;
}

/* Projects the object's bounding prism: for a cube its 8 corners (with yaw), for round shapes
 * a 16-gon circumscribing the footprint circle, at heights 0 and 2s. Every shape lies inside,
 * so the rectangle contains its silhouette. */
void scene_object_ndc_bounds(const scene_desc *d, int k, float rect[4]) {
  const scene_object *o = &d->obj[k];
  float X = o->x * SCENE_POS_SCALE_X, Z = -o->y * SCENE_POS_SCALE_Z;
  int cube = o->shape == SCENE_CUBE;
  int npoly = cube ? 4 : 16;
  float radius = cube ? o->size * 1.41421356f : o->size / cosf(3.14159265f / 16.0f);
  float phase = cube ? o->yaw + 0.78539816f : 0.0f;
  rect[0] = rect[1] = 1e30f;
  rect[2] = rect[3] = -1e30f;
  for (int i = 0; i < npoly; i++) {
    /* local (cos a, sin a) r rotated by yaw into world: wx = c lx + s lz, wz = -s lx + c lz;
     * for the cube the corner angle already includes the yaw */
    float a = phase + 6.28318531f * (float)i / (float)npoly;
    float wx = radius * cosf(a), wz = -radius * sinf(a);
    for (int h = 0; h < 2; h++) {
      float p[3] = {X + wx, h ? 2.0f * o->size : 0.0f, Z + wz};
      float q[2];
      scene_project(d, p, q);
      rect[0] = fminf(rect[0], q[0]);
      rect[1] = fminf(rect[1], q[1]);
      rect[2] = fmaxf(rect[2], q[0]);
      rect[3] = fmaxf(rect[3], q[1]);
    }
  }
}

void scene_pack(const scene_desc *d, float *packed) {
  memset(packed, 0, VKEBM_SCENE_FLOATS * sizeof *packed);
  mat4 vp, inv;
  scene_view_proj(d, vp);
  glm_mat4_inv(vp, inv);
  for (int c = 0; c < 4; c++)
    for (int r = 0; r < 4; r++) packed[SCN_INV_VP + c * 4 + r] = inv[c][r];
  memcpy(packed + SCN_EYE, d->eye, 3 * sizeof(float));
  packed[SCN_NOBJ] = (float)d->nobj;
  memcpy(packed + SCN_LIGHT_DIR, d->light_dir, 3 * sizeof(float));
  packed[SCN_AMBIENT] = d->ambient;
  memcpy(packed + SCN_LIGHT_RGB, d->light_rgb, 3 * sizeof(float));
  memcpy(packed + SCN_FLOOR_RGB, d->floor_rgb, 3 * sizeof(float));
  packed[SCN_SKY_RGB] = d->sky;
  for (int k = 0; k < d->nobj; k++) {
    const scene_object *o = &d->obj[k];
    float *q = packed + SCN_OBJ0 + k * SCN_OBJ_STRIDE;
    q[SCN_O_SHAPE] = (float)o->shape;
    q[SCN_O_SIZE] = o->size;
    q[SCN_O_X] = o->x * SCENE_POS_SCALE_X;
    q[SCN_O_Z] = -o->y * SCENE_POS_SCALE_Z;
    q[SCN_O_COS] = cosf(o->yaw);
    q[SCN_O_SIN] = sinf(o->yaw);
    memcpy(q + SCN_O_RGB, o->rgb, 3 * sizeof(float));
    q[SCN_O_COLOUR] = (float)o->colour;
    q[SCN_O_LABEL_X] = o->x;
    q[SCN_O_LABEL_Y] = o->y;
  }
}

/* ---- sampling ---------------------------------------------------------------------------- */

typedef struct draws {
  uint32_t seed, index, k;
} draws;

static float draw(draws *r) { return vkebm_rng_uniform(r->seed, SCENE_RNG_STEP, r->index, r->k++); }
static float draw_range(draws *r, float lo, float hi) { return lo + (hi - lo) * draw(r); }
static int draw_int(draws *r, int n) {
  int v = (int)(draw(r) * (float)n);
  return v < n ? v : n - 1;
}

void scene_set_light_angles(scene_desc *d, float az_offset, float el_offset) {
  /* azimuth measured from +Z (toward the camera), positive toward +X */
  float az = light0_azimuth + az_offset, el = light0_elevation + el_offset;
  d->light_dir[0] = cosf(el) * sinf(az);
  d->light_dir[1] = sinf(el);
  d->light_dir[2] = cosf(el) * cosf(az);
}

void scene_default_environment(scene_desc *d) {
  memset(d, 0, sizeof *d);
  memcpy(d->eye, eye0, sizeof eye0);
  memcpy(d->target, target0, sizeof target0);
  d->fovy = fovy0;
  scene_set_light_angles(d, 0.0f, 0.0f);
  for (int c = 0; c < 3; c++) d->light_rgb[c] = 1.0f, d->floor_rgb[c] = floor_grey;
  d->ambient = ambient0;
  d->sky = sky_grey;
}

static void sample_environment(const scene_spec *spec, draws *r, scene_desc *d) {
  scene_default_environment(d);
  /* camera: height and distance vary a little (the paper varied the camera height) */
  float j[5];
  for (int i = 0; i < 5; i++) j[i] = draw(r) * 2.0f - 1.0f;
  if (spec->camera_jitter) {
    d->eye[0] += 0.25f * j[0];
    d->eye[1] += 0.35f * j[1];
    d->eye[2] += 0.25f * j[2];
    d->target[0] += 0.08f * j[3];
    d->target[2] += 0.08f * j[4];
  }
  float az = 0.0f, el = 0.0f, inten = 1.0f, tint[3] = {1, 1, 1};
  float l[6];
  for (int i = 0; i < 6; i++) l[i] = draw(r) * 2.0f - 1.0f;
  if (spec->light_jitter) {
    az += SCENE_LIGHT_AZ_JITTER * l[0];
    el += SCENE_LIGHT_EL_JITTER * l[1];
    inten += 0.15f * l[2];
    for (int c = 0; c < 3; c++) tint[c] += 0.04f * l[3 + c];
  }
  scene_set_light_angles(d, az, el);
  for (int c = 0; c < 3; c++) d->light_rgb[c] = inten * tint[c];
}

/* Draws everything about one object except where it stands. */
static void sample_object_look(const scene_spec *spec, draws *r, scene_object *o) {
  int shape = draw_int(r, SCENE_NSHAPES);
  int colour = draw_int(r, SCENE_NCOLOURS);
  switch (spec->kind) {
  case SCENE_SPEC_CONTINUAL_POSITION:
  case SCENE_SPEC_CROSS_PRODUCT:
  case SCENE_SPEC_CROSS_PRODUCT_TEST: shape = SCENE_CUBE; colour = COLOUR_PURPLE; break;
  case SCENE_SPEC_CONTINUAL_SHAPE: colour = COLOUR_PURPLE; break;
  default: break;
  }
  o->shape = shape;
  o->colour = colour;
  o->yaw = draw_range(r, 0.0f, 1.57079633f); /* a cube repeats every quarter turn */
  for (int c = 0; c < 3; c++) {
    float jit = draw(r) * 2.0f - 1.0f;
    float v = palette[colour].rgb[c] + (spec->colour_jitter ? 0.04f * jit : 0.0f);
    o->rgb[c] = fminf(fmaxf(v, 0.0f), 1.0f);
  }
}

static int rects_apart(const float a[4], const float b[4], float margin) {
  return a[2] + margin < b[0] || b[2] + margin < a[0] || a[3] + margin < b[1] ||
         b[3] + margin < a[1];
}

static int object_fits(const scene_desc *d, int k) {
  float rect[4];
  scene_object_ndc_bounds(d, k, rect);
  if (rect[0] < -0.97f || rect[1] < -0.97f || rect[2] > 0.97f || rect[3] > 0.97f) return 0;
  for (int j = 0; j < k; j++) {
    const scene_object *a = &d->obj[j], *b = &d->obj[k];
    float dx = (a->x - b->x) * SCENE_POS_SCALE_X, dy = (a->y - b->y) * SCENE_POS_SCALE_Z;
    float need = footprint_radius(a) + footprint_radius(b) + 0.15f;
    if (dx * dx + dy * dy < need * need) return 0;
    float other[4];
    scene_object_ndc_bounds(d, j, other);
    if (!rects_apart(rect, other, 0.03f)) return 0;
  }
  return 1;
}

/* Multi-object placement: each object gets up to 64 tries at a random size and position that
 * keep it apart from the ones placed before it, on the floor and in the image; when one runs
 * out, the whole layout restarts with fresh draws. After 64 restarts (never seen in tests) a
 * fixed layout of well-separated positions at the smallest size is used, so sampling always
 * ends and stays a pure function of (seed, index). */
static void place_multi(const scene_spec *spec, draws *r, scene_desc *d) {
  static const float fallback[SCENE_MAX_OBJECTS][2] = {
      {-0.8f, -0.8f}, {0.8f, -0.8f}, {0.0f, 0.05f}, {-0.8f, 0.9f}, {0.8f, 0.9f}};
  for (int restart = 0; restart < 64; restart++) {
    int k;
    for (k = 0; k < d->nobj; k++) {
      int ok = 0;
      for (int attempt = 0; attempt < 64 && !ok; attempt++) {
        scene_object *o = &d->obj[k];
        o->size = draw_range(r, spec->size_min, spec->size_max);
        o->x = draw_range(r, -1.0f, 1.0f);
        o->y = draw_range(r, -1.0f, 1.0f);
        ok = object_fits(d, k);
      }
      if (!ok) break;
    }
    if (k == d->nobj) return;
  }
  for (int k = 0; k < d->nobj; k++) {
    d->obj[k].size = spec->size_min;
    d->obj[k].x = fallback[k][0];
    d->obj[k].y = fallback[k][1];
  }
}

void scene_sample(const scene_spec *spec, uint32_t seed, uint32_t index, scene_desc *d) {
  memset(d, 0, sizeof *d);
  draws r = {seed, index, 0};
  sample_environment(spec, &r, d);
  d->nobj = spec->nobj;
  for (int k = 0; k < d->nobj; k++) sample_object_look(spec, &r, &d->obj[k]);
  scene_object *o = &d->obj[0];
  switch (spec->kind) {
  case SCENE_SPEC_MULTI: place_multi(spec, &r, d); break;
  case SCENE_SPEC_CROSS_PRODUCT:
  case SCENE_SPEC_CROSS_PRODUCT_TEST: {
    /* uniform over the split's allowed (position, size) pairs */
    int pick = draw_int(&r, spec->cross_npairs), seen = 0;
    for (int p = 0; p < SCENE_CROSS_GRID * SCENE_CROSS_GRID; p++)
      for (int l = 0; l < SCENE_CROSS_SIZES; l++)
        if (spec->cross_allowed[p][l] && seen++ == pick) {
          o->x = scene_cross_coord(p % SCENE_CROSS_GRID);
          o->y = scene_cross_coord(p / SCENE_CROSS_GRID);
          o->size = scene_cross_size(l);
        }
    break;
  }
  default:
    o->size = draw_range(&r, spec->size_min, spec->size_max);
    o->x = draw_range(&r, -1.0f, 1.0f);
    o->y = draw_range(&r, -1.0f, 1.0f);
    break;
  }
}

void scene_sample_packed(const scene_spec *spec, uint32_t seed, uint32_t first, int n,
                         float *packed) {
  for (int i = 0; i < n; i++) {
    scene_desc d;
    scene_sample(spec, seed, first + (uint32_t)i, &d);
    scene_pack(&d, packed + (size_t)i * VKEBM_SCENE_FLOATS);
  }
}

/* ---- labels ------------------------------------------------------------------------------ */

static const char *const concept_names[SCENE_NCONCEPTS] = {"position", "size", "shape", "colour",
                                                            "joint"};

int scene_concept_parse(const char *name) {
  for (int c = 0; c < SCENE_NCONCEPTS; c++)
    if (!strcmp(name, concept_names[c])) return c;
  if (!strcmp(name, "color")) return SCENE_CONCEPT_COLOUR;
  return -1;
}

const char *scene_concept_name(scene_concept c) {
  return c >= 0 && c < SCENE_NCONCEPTS ? concept_names[c] : NULL;
}

int scene_label_dim(scene_concept c) {
  switch (c) {
  case SCENE_CONCEPT_POSITION: return 2;
  case SCENE_CONCEPT_SIZE: return 1;
  case SCENE_CONCEPT_SHAPE: return SCENE_NSHAPES;
  case SCENE_CONCEPT_COLOUR: return SCENE_NCOLOURS;
  case SCENE_CONCEPT_JOINT: return 3 + SCENE_NSHAPES + SCENE_NCOLOURS;
  default: return 0;
  }
}

const char *scene_label_names(scene_concept c) {
  switch (c) {
  case SCENE_CONCEPT_POSITION: return "x,y";
  case SCENE_CONCEPT_SIZE: return "size";
  case SCENE_CONCEPT_SHAPE: return "cube,sphere,cylinder,cone";
  case SCENE_CONCEPT_COLOUR: return "red,green,blue,yellow,purple,cyan,orange,white";
  case SCENE_CONCEPT_JOINT:
    return "x,y,size,cube,sphere,cylinder,cone,red,green,blue,yellow,purple,cyan,orange,white";
  default: return "";
  }
}

void scene_label(const scene_desc *d, int k, scene_concept c, float *out) {
  const scene_object *o = &d->obj[k];
  int n = scene_label_dim(c);
  switch (c) {
  case SCENE_CONCEPT_POSITION: out[0] = o->x; out[1] = o->y; break;
  case SCENE_CONCEPT_SIZE: out[0] = o->size; break;
  case SCENE_CONCEPT_SHAPE:
  case SCENE_CONCEPT_COLOUR:
    for (int i = 0; i < n; i++) out[i] = 0.0f;
    out[c == SCENE_CONCEPT_SHAPE ? o->shape : o->colour] = 1.0f;
    break;
  case SCENE_CONCEPT_JOINT: /* the four labels above, in that order */
    scene_label(d, k, SCENE_CONCEPT_POSITION, out);
    scene_label(d, k, SCENE_CONCEPT_SIZE, out + 2);
    scene_label(d, k, SCENE_CONCEPT_SHAPE, out + 3);
    scene_label(d, k, SCENE_CONCEPT_COLOUR, out + 3 + SCENE_NSHAPES);
    break;
  default: break;
  }
}

void scene_sample_batch(const scene_spec *spec, uint32_t seed, uint32_t first, int n, int k,
                        scene_concept c, float *packed, float *labels) {
  int dim = scene_label_dim(c);
  for (int i = 0; i < n; i++) {
    scene_desc d;
    scene_sample(spec, seed, first + (uint32_t)i, &d);
    scene_pack(&d, packed + (size_t)i * VKEBM_SCENE_FLOATS);
    if (labels) scene_label(&d, k < d.nobj ? k : 0, c, labels + (size_t)i * (size_t)dim);
  }
}
