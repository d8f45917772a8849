/* concept.c: concept models behind one interface (concept.h): analytic diagonal-quadratic
 * concepts evaluated by the backend's ebm_quadratic_energy op, the shipped analytic concepts,
 * label parsing with helpful errors, and concept sets with aliases. Owns each analytic
 * concept's device tables (targets and precisions, one row per label group). */
#include "vkebm/concept.h"

#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/model.h"
#include "vkebm/net.h"

struct ebm_concept {
  ebm_concept_info info;
  ebm_backend *be;
  int max_rows, N;
  /* analytic */
  ebm_analytic_build_fn build;
  void *ctx;
  ebm_buffer *mu, *prec;    /* [max_rows, N]: one row per label group */
  float *host_mu, *host_prec;
  float *cached_labels;     /* [max_rows, L]: the labels the tables hold */
  int cached_groups;
  /* the last evaluation, for the gradient */
  ebm_ref last_x;
  int last_n, last_R;
  float builtin_scale;
  int builtin_kind;
  /* learned */
  ebm_net *net;
  ebm_buffer *labels_dev;   /* [max_rows, L] expanded labels */
  float *labels_host;       /* what labels_dev holds: its first labels_rows rows */
  int labels_rows;          /* 0: nothing uploaded yet (or the last upload failed) */
  /* ebm_concept_label_grad, allocated on first use */
  ebm_buffer *dlabels_dev;  /* learned: [max_rows, L] */
  ebm_buffer *ones;         /* learned: [max_rows] of 1 (dE) */
  ebm_buffer *fd_e;         /* analytic: [last_n] energies of a shifted label */
  size_t fd_e_size;
};

void ebm_hash_hex(const void *data, size_t n, uint64_t *state, char out[17]) {
  uint64_t h = state ? *state : 0xcbf29ce484222325ull;
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  if (state) *state = h;
  if (out) snprintf(out, 17, "%016llx", (unsigned long long)h);
}

ebm_concept *ebm_concept_create_analytic(ebm_backend *be, const ebm_concept_info *info,
                                         ebm_analytic_build_fn build, void *ctx, int max_rows,
                                         char *err, size_t errlen) {
  if (info->label_dim < 1 || info->label_dim > EBM_CONCEPT_MAX_LABEL || max_rows < 1 ||
      info->channels < 1 || info->height < 1 || info->width < 1) {
    snprintf(err, errlen, "analytic concept '%s': bad sizes", info->name);
    return NULL;
  }
  ebm_concept *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->info = *info;
  snprintf(c->info.kind, sizeof c->info.kind, "analytic");
  if (!c->info.hash[0]) { /* a caller-built concept: identify it by its name and sizes */
    char def[160];
    int n = snprintf(def, sizeof def, "analytic:%s:%dx%dx%d:L=%d", info->name, info->channels,
                     info->height, info->width, info->label_dim);
    ebm_hash_hex(def, (size_t)n, NULL, c->info.hash);
  }
  c->be = be;
  c->max_rows = max_rows;
  c->N = info->channels * info->height * info->width;
  c->build = build;
  c->ctx = ctx;
  size_t tab = (size_t)max_rows * c->N;
  c->mu = ebm_alloc(be, tab);
  c->prec = ebm_alloc(be, tab);
  c->host_mu = malloc(tab * sizeof(float));
  c->host_prec = malloc(tab * sizeof(float));
  c->cached_labels = malloc((size_t)max_rows * info->label_dim * sizeof(float));
  if (!c->mu || !c->prec || !c->host_mu || !c->host_prec || !c->cached_labels) {
    snprintf(err, errlen, "analytic concept '%s': out of memory", info->name);
    ebm_concept_destroy(c);
    return NULL;
  }
  return c;
}

void ebm_concept_destroy(ebm_concept *c) {
  if (!c) return;
  ebm_net_destroy(c->net);
  ebm_free(c->be, c->labels_dev);
  free(c->labels_host);
  ebm_free(c->be, c->dlabels_dev);
  ebm_free(c->be, c->ones);
  ebm_free(c->be, c->fd_e);
  ebm_free(c->be, c->mu);
  ebm_free(c->be, c->prec);
  free(c->host_mu);
  free(c->host_prec);
  free(c->cached_labels);
  free(c);
}

const ebm_concept_info *ebm_concept_info_of(const ebm_concept *c) { return &c->info; }
int ebm_concept_max_rows(const ebm_concept *c) { return c->max_rows; }
ebm_backend *ebm_concept_backend(const ebm_concept *c) { return c->be; }
int ebm_concept_image_size(const ebm_concept *c) { return c->N; }

int ebm_concept_energy(ebm_concept *c, ebm_ref e, ebm_ref x, const float *labels, int G, int R,
                       char *err, size_t errlen) {
  int L = c->info.label_dim;
  if (c->net) {
    int n = G * R;
    if (G < 1 || R < 1 || (long)G * R > c->max_rows) {
      snprintf(err, errlen, "model '%s': %d x %d rows (at most %d)", c->info.name, G, R,
               c->max_rows);
      return -1;
    }
    /* the labels go up only when they change: an upload waits for the recorded work, so a
     * sampler step with the same labels stays on the device */
    int same = n == c->labels_rows;
    for (int r = 0; r < n; r++) {
      float *dst = c->labels_host + (size_t)r * L;
      const float *src = labels + (size_t)(r / R) * L;
      if (same && memcmp(dst, src, sizeof(float) * L)) same = 0;
      memcpy(dst, src, sizeof(float) * L);
    }
    if (!same) {
      c->labels_rows = 0;
      if (ebm_upload(c->be, ebm_ref_of(c->labels_dev), c->labels_host, (size_t)n * L)) {
        snprintf(err, errlen, "model '%s': label upload failed", c->info.name);
        return -1;
      }
      c->labels_rows = n;
    }
    ebm_net_forward(c->net, e, x, ebm_ref_of(c->labels_dev), n);
    c->last_x = x;
    c->last_n = n;
    c->last_R = R;
    return 0;
  }
  if (G < 1 || R < 1 || G > c->max_rows || (long)G * R > (long)1 << 30) {
    snprintf(err, errlen, "concept '%s': %d label groups (at most %d)", c->info.name, G,
             c->max_rows);
    return -1;
  }
  size_t lab_bytes = (size_t)G * L * sizeof(float);
  if (G != c->cached_groups || memcmp(labels, c->cached_labels, lab_bytes)) {
    for (int g = 0; g < G; g++)
      c->build(&c->info, labels + (size_t)g * L, c->host_mu + (size_t)g * c->N,
               c->host_prec + (size_t)g * c->N, c->ctx);
    if (ebm_upload(c->be, ebm_ref_of(c->mu), c->host_mu, (size_t)G * c->N) ||
        ebm_upload(c->be, ebm_ref_of(c->prec), c->host_prec, (size_t)G * c->N)) {
      snprintf(err, errlen, "concept '%s': upload failed", c->info.name);
      c->cached_groups = 0;
      return -1;
    }
    memcpy(c->cached_labels, labels, lab_bytes);
    c->cached_groups = G;
  }
  ebm_quadratic_energy(c->be, e, x, ebm_ref_of(c->mu), ebm_ref_of(c->prec), G * R, c->N, R);
  c->last_x = x;
  c->last_n = G * R;
  c->last_R = R;
  return 0;
}

int ebm_concept_grad(ebm_concept *c, ebm_ref dx, ebm_ref dE, char *err, size_t errlen) {
  if (!c->last_n) {
    snprintf(err, errlen, "concept '%s': gradient before any energy", c->info.name);
    return -1;
  }
  if (c->net) {
    ebm_net_backward(c->net, dE, dx, EBM_NOREF, 0, c->last_n);
    return 0;
  }
  ebm_quadratic_energy_backward(c->be, dx, dE, c->last_x, ebm_ref_of(c->mu), ebm_ref_of(c->prec),
                                c->last_n, c->N, c->last_R);
  return 0;
}

int ebm_concept_label_grad(ebm_concept *c, float *dlabels, char *err, size_t errlen) {
  int n = c->last_n, L = c->info.label_dim;
  if (!n) {
    snprintf(err, errlen, "concept '%s': label gradient before any energy", c->info.name);
    return -1;
  }
  if (c->net) {
    if (!c->dlabels_dev) {
      c->dlabels_dev = ebm_alloc(c->be, (size_t)c->max_rows * L);
      c->ones = ebm_alloc(c->be, (size_t)c->max_rows);
      if (!c->dlabels_dev || !c->ones) {
        snprintf(err, errlen, "model '%s': out of memory", c->info.name);
        return -1;
      }
      ebm_fill(c->be, ebm_ref_of(c->ones), 1.0f, (size_t)c->max_rows);
    }
    ebm_net_backward(c->net, ebm_ref_of(c->ones), EBM_NOREF, ebm_ref_of(c->dlabels_dev), 0, n);
    if (ebm_download(c->be, dlabels, ebm_ref_of(c->dlabels_dev), (size_t)n * L)) {
      snprintf(err, errlen, "model '%s': download failed", c->info.name);
      return -1;
    }
    return 0;
  }
  /* analytic: central differences, one label coordinate at a time */
  int G = c->cached_groups, R = c->last_R;
  ebm_ref x = c->last_x;
  if (G * R != n) {
    snprintf(err, errlen, "concept '%s': label gradient after a failed evaluation", c->info.name);
    return -1;
  }
  if (c->fd_e_size < (size_t)n) {
    ebm_free(c->be, c->fd_e);
    c->fd_e = ebm_alloc(c->be, (size_t)n);
    c->fd_e_size = c->fd_e ? (size_t)n : 0;
  }
  size_t lab = (size_t)G * L;
  float *orig = malloc(lab * sizeof *orig), *shifted = malloc(lab * sizeof *shifted);
  float *ep = malloc((size_t)n * sizeof *ep), *em = malloc((size_t)n * sizeof *em);
  int rc = -1;
  if (!c->fd_e || !orig || !shifted || !ep || !em) {
    snprintf(err, errlen, "concept '%s': out of memory", c->info.name);
    goto done;
  }
  memcpy(orig, c->cached_labels, lab * sizeof *orig);
  const float h = EBM_CONCEPT_LABEL_FD_STEP;
  for (int i = 0; i < L; i++) {
    for (int sgn = 0; sgn < 2; sgn++) {
      memcpy(shifted, orig, lab * sizeof *orig);
      for (int g = 0; g < G; g++) shifted[(size_t)g * L + i] += sgn ? -h : h;
      if (ebm_concept_energy(c, ebm_ref_of(c->fd_e), x, shifted, G, R, err, errlen) ||
          ebm_download(c->be, sgn ? em : ep, ebm_ref_of(c->fd_e), (size_t)n))
        goto done;
    }
    for (int r = 0; r < n; r++) dlabels[(size_t)r * L + i] = (ep[r] - em[r]) / (2.0f * h);
  }
  if (ebm_concept_energy(c, ebm_ref_of(c->fd_e), x, orig, G, R, err, errlen)) goto done;
  rc = 0;
done:
  free(orig);
  free(shifted);
  free(ep);
  free(em);
  return rc;
}

ebm_concept *ebm_concept_load_learned(ebm_backend *be, const char *path, int max_batch, char *err,
                                      size_t errlen) {
  ebm_concept *c = calloc(1, sizeof *c);
  ebm_model_info mi;
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->be = be;
  char why[256];
  if (ebm_model_load(path, be, max_batch, &c->net, &mi, NULL, 0, why, sizeof why)) {
    /* model.c names the file in most of its messages; say it once */
    if (strncmp(why, path, strlen(path)) == 0)
      snprintf(err, errlen, "%s", why);
    else
      snprintf(err, errlen, "%s: %s", path, why);
    free(c);
    return NULL;
  }
  ebm_net_refresh(c->net, 0);
  ebm_concept_info *info = &c->info;
  snprintf(info->name, sizeof info->name, "%s", ebm_concept_canonical_name(mi.concept));
  snprintf(info->kind, sizeof info->kind, "learned");
  info->label_kind = mi.label_kind;
  info->label_dim = mi.config.label_dim;
  info->train_step_lr = mi.langevin_step_lr;
  info->train_noise = mi.langevin_noise;
  info->sample_steps = mi.sample_steps;
  info->init_channels = mi.init_channels;
  info->init_flat = mi.init_flat;
  for (int i = 0; i < mi.init_channels; i++) {
    info->init_mean[i] = mi.init_mean[i];
    info->init_std[i] = mi.init_std[i];
  }
  info->channels = mi.config.in_channels;
  info->height = info->width = mi.config.resolution;
  if (info->label_dim > EBM_CONCEPT_MAX_LABEL) {
    snprintf(err, errlen, "%s: label of %d values (at most %d)", path, info->label_dim,
             EBM_CONCEPT_MAX_LABEL);
    ebm_concept_destroy(c);
    return NULL;
  }
  if (mi.label_kind == EBM_LABEL_ONEHOT) {
    info->num_label_names = info->label_dim < EBM_CONCEPT_MAX_NAMES ? info->label_dim : EBM_CONCEPT_MAX_NAMES;
    for (int i = 0; i < info->num_label_names; i++)
      snprintf(info->label_names[i], sizeof info->label_names[i], "%s", mi.label_names[i]);
  }
  for (int i = 0; i < info->label_dim; i++) {
    info->label_min[i] = mi.label_min[i];
    info->label_max[i] = mi.label_max[i];
  }
  /* provenance: the hash of the file's bytes */
  FILE *f = fopen(path, "rb");
  uint64_t h = 0xcbf29ce484222325ull;
  if (f) {
    unsigned char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) ebm_hash_hex(buf, k, &h, NULL);
    fclose(f);
  }
  ebm_hash_hex("", 0, &h, info->hash);
  c->max_rows = max_batch;
  c->N = info->channels * info->height * info->width;
  c->labels_dev = ebm_alloc(be, (size_t)max_batch * info->label_dim);
  c->labels_host = malloc(sizeof(float) * (size_t)max_batch * info->label_dim);
  if (!c->labels_dev || !c->labels_host) {
    snprintf(err, errlen, "%s: out of memory", path);
    ebm_concept_destroy(c);
    return NULL;
  }
  return c;
}

/* ---- the shipped analytic concepts ----------------------------------------------------------
 * Images are RGB, R x R, planar; pixel (row i, column j) sits at u = (j+0.5)/R*2-1 (right) and
 * v = 1-(i+0.5)/R*2 (up), the label space of position. Precisions are relative (1 = the
 * strongest pull an object's own pixels get) times `scale`. They are chosen so that the products
 * read as scenes: position and size/shape light a region and darken the rest weakly (so two
 * positions give two discs), while a colour darkens the channels it lacks everywhere, strongly,
 * leaving the others to the shape terms: a red disc where position asked for a bright one. */
enum { BUILTIN_COLOR = 1, BUILTIN_POSITION, BUILTIN_SIZE, BUILTIN_SHAPE };

static const struct {
  const char *name;
  float rgb[3];
} palette[] = {{"red", {1, 0, 0}},    {"green", {0, 1, 0}}, {"blue", {0, 0, 1}},
               {"yellow", {1, 1, 0}}, {"cyan", {0, 1, 1}},  {"magenta", {1, 0, 1}}};
#define PALETTE_SIZE ((int)(sizeof palette / sizeof *palette))

static const char *shape_names[] = {"cube", "sphere", "cylinder"};

#define REL_INSIDE 1.0f      /* object pixels pulled to 1 */
#define REL_OUTSIDE 0.25f    /* background pulled to 0, weakly */
#define REL_COLOR_OFF 8.0f   /* channels the colour lacks pulled to 0, strongly */

/* 1 when (u, v) lies inside the region the label describes. */
static int builtin_inside(int kind, const float *label, float u, float v) {
  switch (kind) {
  case BUILTIN_POSITION: {
    float du = u - label[0], dv = v - label[1];
    return du * du + dv * dv <= 0.3f * 0.3f;
  }
  case BUILTIN_SIZE: return u * u + v * v <= label[0] * label[0];
  case BUILTIN_SHAPE: {
    int k = 0;
    for (int i = 1; i < 3; i++)
      if (label[i] > label[k]) k = i;
    if (k == 0) return fabsf(u) <= 0.4f && fabsf(v) <= 0.4f;        /* cube: square */
    if (k == 1) return u * u + v * v <= 0.45f * 0.45f;              /* sphere: disc */
    return fabsf(u) <= 0.3f && fabsf(v) <= 0.5f;                    /* cylinder: upright */
  }
  }
  return 0;
}

static void builtin_build(const ebm_concept_info *info, const float *label, float *mu,
                          float *prec, void *ctx) {
  const ebm_concept *c = ctx;
  int H = info->height, W = info->width, P = H * W;
  float s = c->builtin_scale;
  if (c->builtin_kind == BUILTIN_COLOR) {
    int k = 0;
    for (int i = 1; i < info->label_dim; i++)
      if (label[i] > label[k]) k = i;
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < P; p++) {
        mu[ch * P + p] = 0.0f;
        prec[ch * P + p] = palette[k].rgb[ch] > 0.5f ? 0.0f : s * REL_COLOR_OFF;
      }
    return;
  }
  for (int i = 0; i < H; i++)
    for (int j = 0; j < W; j++) {
      float u = (j + 0.5f) / W * 2.0f - 1.0f, v = 1.0f - (i + 0.5f) / H * 2.0f;
      int in = builtin_inside(c->builtin_kind, label, u, v);
      for (int ch = 0; ch < 3; ch++) {
        mu[ch * P + i * W + j] = in ? 1.0f : 0.0f;
        prec[ch * P + i * W + j] = s * (in ? REL_INSIDE : REL_OUTSIDE);
      }
    }
}

ebm_concept *ebm_concept_create_builtin(ebm_backend *be, const char *name, int resolution,
                                        float scale, int max_rows, char *err, size_t errlen) {
  ebm_concept_info info = {0};
  const char *canon = ebm_concept_canonical_name(name);
  snprintf(info.name, sizeof info.name, "%s", canon);
  info.channels = 3;
  info.height = info.width = resolution;
  int kind;
  if (!strcmp(canon, "color")) {
    kind = BUILTIN_COLOR;
    info.label_kind = EBM_LABEL_ONEHOT;
    info.label_dim = info.num_label_names = PALETTE_SIZE;
    for (int i = 0; i < PALETTE_SIZE; i++)
      snprintf(info.label_names[i], sizeof info.label_names[i], "%s", palette[i].name);
  } else if (!strcmp(canon, "position")) {
    kind = BUILTIN_POSITION;
    info.label_kind = EBM_LABEL_VECTOR;
    info.label_dim = 2;
    info.label_min[0] = info.label_min[1] = -1.0f;
    info.label_max[0] = info.label_max[1] = 1.0f;
  } else if (!strcmp(canon, "size")) {
    kind = BUILTIN_SIZE;
    info.label_kind = EBM_LABEL_VECTOR;
    info.label_dim = 1;
    info.label_min[0] = 0.1f;
    info.label_max[0] = 1.0f;
  } else if (!strcmp(canon, "shape")) {
    kind = BUILTIN_SHAPE;
    info.label_kind = EBM_LABEL_ONEHOT;
    info.label_dim = info.num_label_names = 3;
    for (int i = 0; i < 3; i++)
      snprintf(info.label_names[i], sizeof info.label_names[i], "%s", shape_names[i]);
  } else {
    snprintf(err, errlen, "no analytic concept '%s' (there are color, position, size, shape)",
             name);
    return NULL;
  }
  if (resolution < 2 || resolution > 1024 || !(scale > 0.0f)) {
    snprintf(err, errlen, "analytic concept '%s': bad resolution or scale", canon);
    return NULL;
  }
  char def[96];
  int n = snprintf(def, sizeof def, "analytic:%s:R=%d:scale=%.9g", canon, resolution, scale);
  ebm_hash_hex(def, (size_t)n, NULL, info.hash);
  ebm_concept *c = ebm_concept_create_analytic(be, &info, builtin_build, NULL, max_rows, err,
                                               errlen);
  if (!c) return NULL;
  c->ctx = c;
  c->builtin_kind = kind;
  c->builtin_scale = scale;
  return c;
}

/* ---- labels ---------------------------------------------------------------------------------- */

int ebm_concept_label(const ebm_concept_info *info, const char *value_name, const float *values,
                      int num_values, float *label, char *err, size_t errlen) {
  int L = info->label_dim;
  if (info->label_kind == EBM_LABEL_ONEHOT) {
    int k = -1;
    if (value_name && value_name[0]) {
      for (int i = 0; i < info->num_label_names; i++)
        if (!strcasecmp(value_name, info->label_names[i])) k = i;
    } else if (num_values == 1 && values[0] == floorf(values[0]) && values[0] >= 0 &&
               values[0] < L) {
      k = (int)values[0];
    }
    if (k < 0) {
      int n = snprintf(err, errlen, "unknown %s ", info->name);
      if (value_name && value_name[0])
        n += snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, "'%s'", value_name);
      else
        n += snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, "value");
      n += snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, "; valid values:");
      for (int i = 0; i < info->num_label_names; i++)
        n += snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, "%s %s", i ? "," : "",
                      info->label_names[i]);
      return -1;
    }
    for (int i = 0; i < L; i++) label[i] = i == k ? 1.0f : 0.0f;
    return 0;
  }
  if ((value_name && value_name[0]) || num_values != L) {
    int n = snprintf(err, errlen, "%s takes %d number%s", info->name, L, L > 1 ? "s" : "");
    if (L > 1) {
      n += snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, " like %s=(", info->name);
      for (int i = 0; i < L; i++)
        n += snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, "%s%g", i ? "," : "",
                      0.5f * (info->label_min[i] + info->label_max[i]));
      snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, ")");
    } else {
      snprintf(err + n, errlen > (size_t)n ? errlen - n : 0, " like %s=%g", info->name,
               0.5f * (info->label_min[0] + info->label_max[0]));
    }
    return -1;
  }
  for (int i = 0; i < L; i++) {
    if (values[i] < info->label_min[i] || values[i] > info->label_max[i]) {
      snprintf(err, errlen, "%s value %g is outside the model's range [%g, %g]", info->name,
               values[i], info->label_min[i], info->label_max[i]);
      return -1;
    }
    label[i] = values[i];
  }
  return 0;
}

/* ---- sets ------------------------------------------------------------------------------------ */

const char *ebm_concept_canonical_name(const char *name) {
  static const char *aliases[][2] = {{"pos", "position"},  {"colour", "color"},
                                     {"col", "color"},     {"location", "position"},
                                     {"scale", "size"},    {"object", "shape"}};
  for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
    if (!strcasecmp(name, aliases[i][0])) return aliases[i][1];
  return name;
}

int ebm_concept_set_add(ebm_concept_set *s, ebm_concept *c, int owned, char *err, size_t errlen) {
  if (s->count == (int)(sizeof s->items / sizeof *s->items)) {
    snprintf(err, errlen, "too many concept models");
    return -1;
  }
  if (ebm_concept_set_find(s, c->info.name)) {
    snprintf(err, errlen, "two models for concept '%s'", c->info.name);
    return -1;
  }
  s->items[s->count] = c;
  s->owned[s->count++] = owned;
  return 0;
}

int ebm_concept_set_sampler_hint(const ebm_concept_set *s, float *step, float *noise) {
  int found = 0;
  for (int i = 0; i < s->count; i++) {
    const ebm_concept_info *in = &s->items[i]->info;
    if (!(in->train_step_lr > 0.0f)) continue;
    if (!found || in->train_step_lr < *step) {
      *step = in->train_step_lr;
      *noise = in->train_noise;
    }
    found = 1;
  }
  return found;
}

/* 1 when dir holds a *.safetensors file. */
static int has_safetensors(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int found = 0;
  for (struct dirent *e; !found && (e = readdir(d));) {
    size_t n = strlen(e->d_name);
    found = n > 12 && !strcmp(e->d_name + n - 12, ".safetensors");
  }
  closedir(d);
  return found;
}

const char *ebm_models_dir_default(char *buf, size_t len) {
  const char *env = getenv("VKEBM_MODELS");
  if (env && *env) snprintf(buf, len, "%s", env);
  else if (has_safetensors("models")) snprintf(buf, len, "models");
#ifdef VKEBM_SOURCE_DIR
  else if (has_safetensors(VKEBM_SOURCE_DIR "/models")) snprintf(buf, len, "%s", VKEBM_SOURCE_DIR "/models");
#endif
  else snprintf(buf, len, "models");
  return buf;
}

int ebm_concept_set_sample_steps(const ebm_concept_set *s) {
  int steps = 0;
  for (int i = 0; i < s->count; i++)
    if (s->items[i]->info.sample_steps > steps) steps = s->items[i]->info.sample_steps;
  return steps;
}

int ebm_concept_set_chain_init(const ebm_concept_set *s, float *mean, float *std, int *flat) {
  for (int i = 0; i < s->count; i++) {
    const ebm_concept_info *in = &s->items[i]->info;
    if (in->init_channels <= 0) continue;
    for (int c = 0; c < in->init_channels; c++) {
      mean[c] = in->init_mean[c];
      std[c] = in->init_std[c];
    }
    *flat = in->init_flat;
    return in->init_channels;
  }
  return 0;
}

ebm_concept *ebm_concept_set_find(const ebm_concept_set *s, const char *name) {
  const char *canon = ebm_concept_canonical_name(name);
  for (int i = 0; i < s->count; i++)
    if (!strcasecmp(s->items[i]->info.name, canon)) return s->items[i];
  return NULL;
}

void ebm_concept_set_names(const ebm_concept_set *s, char *out, size_t len) {
  size_t n = 0;
  if (len) out[0] = 0;
  for (int i = 0; i < s->count && n < len; i++)
    n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "", s->items[i]->info.name);
}

void ebm_concept_set_clear(ebm_concept_set *s) {
  for (int i = 0; i < s->count; i++)
    if (s->owned[i]) ebm_concept_destroy(s->items[i]);
  s->count = 0;
}

/* ---- loading a models folder ---------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define EBM_MAX_CONCEPTS_LOADED 32 /* ebm_concept_set's capacity */

/* Loads one concept model file into set; two models of one concept name both files. */
static int load_one(ebm_concept_set *set, ebm_backend *be, const char *path, int max_rows,
                    char **paths, char *err, size_t errlen) {
  ebm_concept *c = ebm_concept_load_learned(be, path, max_rows, err, errlen);
  if (!c) return -1;
  const char *name = ebm_concept_info_of(c)->name;
  for (int i = 0; i < set->count; i++)
    if (!strcmp(ebm_concept_info_of(set->items[i])->name, name)) {
      snprintf(err, errlen, "two models of concept '%s': %s and %s (name one with --models "
               "FILE,FILE)", name, paths[i] ? paths[i] : "(built in)", path);
      ebm_concept_destroy(c);
      return -1;
    }
  int k = set->count;
  if (ebm_concept_set_add(set, c, 1, err, errlen)) {
    ebm_concept_destroy(c);
    return -1;
  }
  paths[k] = strdup(path);
  return 0;
}

static int load_path(ebm_concept_set *set, ebm_backend *be, const char *dir, int max_rows,
                     char **paths, char *err, size_t errlen);

int ebm_concept_set_open(ebm_concept_set *s, ebm_backend *be, const char *models, int resolution,
                         int max_rows, char *err, size_t errlen) {
  if (models) {
    if (ebm_concept_set_load_dir(s, be, models, max_rows, err, errlen)) return -1;
    if (s->count == 0) {
      snprintf(err, errlen, "no concept models in %s (pass --models DIR, or --analytic for the "
               "built-in concepts)", models);
      return -1;
    }
    return 0;
  }
  static const char *names[] = {"color", "position", "size", "shape"};
  for (int i = 0; i < 4; i++) {
    ebm_concept *c = ebm_concept_create_builtin(be, names[i], resolution, 100.0f,
                                                EBM_ANALYTIC_MAX_LABELS, err, errlen);
    if (!c || ebm_concept_set_add(s, c, 1, err, errlen)) {
      ebm_concept_destroy(c);
      return -1;
    }
  }
  return 0;
}

int ebm_concept_set_load_dir(ebm_concept_set *set, ebm_backend *be, const char *dir, int max_rows,
                             char *err, size_t errlen) {
  char *paths[EBM_MAX_CONCEPTS_LOADED] = {0}; /* which file each loaded model came from */
  int rc = 0;
  char *list = strdup(dir);
  if (!list) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (char *save = NULL, *part = strtok_r(list, ",", &save); part && !rc;
       part = strtok_r(NULL, ",", &save))
    rc = load_path(set, be, part, max_rows, paths, err, errlen);
  free(list);
  for (int i = 0; i < EBM_MAX_CONCEPTS_LOADED; i++) free(paths[i]);
  return rc;
}

static int load_path(ebm_concept_set *set, ebm_backend *be, const char *dir, int max_rows,
                     char **paths, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  if (S_ISREG(st.st_mode)) {
    if (ebm_model_file_foreign(dir, NULL, 0)) {
      snprintf(err, errlen, "%s is not a concept model", dir);
      return -1;
    }
    return load_one(set, be, dir, max_rows, paths, err, errlen);
  }
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  /* every file, however many (sorted, so the order is not readdir's) */
  char **names = NULL;
  int n = 0, cap = 0, rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!has_suffix(e->d_name, ".safetensors") || has_suffix(e->d_name, ".ckpt.safetensors")) continue;
    if (n == cap) {
      char **grown = realloc(names, (size_t)(cap ? 2 * cap : 64) * sizeof *names);
      if (!grown) break;
      names = grown;
      cap = cap ? 2 * cap : 64;
    }
    if (!(names[n] = strdup(e->d_name))) break;
    n++;
  }
  closedir(d);
  if (e) { /* stopped early: out of memory */
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    snprintf(err, errlen, "%s: out of memory listing the folder", dir);
    return -1;
  }
  if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    free(names[i]);
    if (rc || ebm_model_file_foreign(path, NULL, 0)) continue;
    rc = load_one(set, be, path, max_rows, paths, err, errlen);
  }
  free(names);
  return rc;
}
