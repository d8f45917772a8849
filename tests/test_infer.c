/* test_infer.c: compositional inference (infer.h) on concepts with a known answer, cpu backend.
 *  - a one-hot analytic concept (label k: pattern k) reads every pattern back, confident;
 *  - a label-only energy offset fools the raw argmin and the calibrated baseline undoes it;
 *  - a continuous analytic concept (a Gaussian blob at the label) is found by gradient descent
 *    on dE/dc from a grid of starts, off the grid's nodes;
 *  - ebm_concept_label_grad of a learned (tiny) model matches central differences of its energy;
 *  - two blobs in one image are both found by the greedy masked search, not one twice; auto
 *    finds 2 in a two-blob image and 1 in a one-blob image;
 *  - a flat grey image gets a flat (low-confidence) one-hot distribution. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/concept.h"
#include "vkebm/infer.h"
#include "vkebm/model.h"
#include "vkebm/net.h"

#define R 16
#define NPIX (3 * R * R)

/* ---- one-hot: pattern k lights channel k % 3 in the k-th quarter of the image --------------- */
typedef struct pattern_ctx {
  float offset[4]; /* label-only energy: an extra always-zero pixel pulled to sqrt(2 offset) */
} pattern_ctx;

static float pattern_value(int k, int ch, int i, int j) {
  int quarter = (i >= R / 2) * 2 + (j >= R / 2);
  return ch == k % 3 && quarter == k ? 0.9f : 0.1f;
}

static void pattern_build(const ebm_concept_info *info, const float *label, float *mu, float *prec,
                          void *ctx) {
  const pattern_ctx *p = ctx;
  int k = 0;
  for (int i = 1; i < info->label_dim; i++)
    if (label[i] > label[k]) k = i;
  /* image pixels 0..NPIX-1, then one bias pixel */
  for (int ch = 0; ch < 3; ch++)
    for (int i = 0; i < R; i++)
      for (int j = 0; j < R; j++) {
        mu[ch * R * R + i * R + j] = pattern_value(k, ch, i, j);
        prec[ch * R * R + i * R + j] = 1.0f;
      }
  (void)info;
  mu[NPIX] = sqrtf(2.0f * p->offset[k]);
  prec[NPIX] = 1.0f;
}

/* ---- vector: a Gaussian blob (sigma 0.25 in image units) at the label on channel 0 ------------
 * Placed at image coordinates (u, v) = label, or (ctx non-NULL) at the label's place as the
 * scene camera projects it (ebm_infer_place_pixel), as objects are (then sigma 0.1: an object's
 * extent, so the box masked around a found one covers it). Energy 0.5 sum w (x - blob)^2
 * with weight w = blob + 0.05: near the label only, so an image showing the blob has a lower
 * energy than an empty one (which multi-object auto relies on). */
static float blob_sigma = 0.25f;

static float blob(float u, float v, float x, float y) {
  float d2 = (u - x) * (u - x) + (v - y) * (v - y);
  return expf(-d2 / (2.0f * blob_sigma * blob_sigma));
}

static void blob_centre(int n, const float *label, int projected, float *cu, float *cv) {
  if (!projected) {
    *cu = label[0];
    *cv = label[1];
    return;
  }
  float px[2];
  ebm_infer_place_pixel(label[0], label[1], n, px);
  *cu = px[0] / n * 2 - 1;
  *cv = 1 - px[1] / n * 2;
}

static void blob_build(const ebm_concept_info *info, const float *label, float *mu, float *prec,
                       void *ctx) {
  int n = info->height;
  float cu, cv;
  blob_centre(n, label, ctx != NULL, &cu, &cv);
  for (int ch = 0; ch < 3; ch++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        float u = (j + 0.5f) / n * 2 - 1, v = 1 - (i + 0.5f) / n * 2, b = blob(u, v, cu, cv);
        mu[(ch * n + i) * n + j] = ch == 0 ? b : 0.0f;
        prec[(ch * n + i) * n + j] = b + 0.05f;
      }
}

static ebm_concept *make(ebm_backend *be, const char *name, int onehot, int L, int n_pixels_extra,
                         ebm_analytic_build_fn fn, void *ctx, int res) {
  ebm_concept_info info = {0};
  snprintf(info.name, sizeof info.name, "%s", name);
  info.label_kind = onehot ? EBM_LABEL_ONEHOT : EBM_LABEL_VECTOR;
  info.label_dim = L;
  info.num_label_names = onehot ? L : 0;
  for (int i = 0; i < L; i++) {
    snprintf(info.label_names[i], sizeof info.label_names[i], "p%d", i);
    info.label_min[i] = -1;
    info.label_max[i] = 1;
  }
  /* the bias pixel rides as an extra "row" of width 1: channels 1, height 1, width N + extra */
  info.channels = n_pixels_extra ? 1 : 3;
  info.height = n_pixels_extra ? 1 : res;
  info.width = n_pixels_extra ? NPIX + n_pixels_extra : res;
  char err[256];
  ebm_concept *c = ebm_concept_create_analytic(be, &info, fn, ctx, 256, err, sizeof err);
  if (!c) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return c;
}

static void test_onehot(ebm_backend *be) {
  pattern_ctx ctx = {{0, 0, 0, 0}};
  ebm_concept *c = make(be, "pattern", 1, 4, 1, pattern_build, &ctx, R);
  int n = 8, N = NPIX + 1;
  float *img = calloc((size_t)n * N, sizeof *img);
  for (int b = 0; b < n; b++) {
    int k = b % 4;
    for (int ch = 0; ch < 3; ch++)
      for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++)
          img[(size_t)b * N + ch * R * R + i * R + j] =
              pattern_value(k, ch, i, j) + 0.05f * sinf((float)(b * 131 + ch * 17 + i * 7 + j));
  }
  ebm_infer_options o;
  ebm_infer_defaults(&o);
  ebm_infer_value v[8];
  char err[256];
  TU_CHECK(!ebm_infer_concept(c, img, n, &o, v, err, sizeof err), "%s", err);
  for (int b = 0; b < n; b++) {
    TU_CHECK(v[b].onehot && v[b].index == b % 4, "image %d read as %d", b, v[b].index);
    TU_CHECK(v[b].confidence > 0.9f, "image %d: confidence %.3f", b, v[b].confidence);
  }
  /* a label-only offset makes label 3 the raw argmin everywhere ... (a new concept: an analytic
   * one keeps its tables while the labels asked for stay the same) */
  ebm_concept_destroy(c);
  ctx.offset[0] = ctx.offset[1] = ctx.offset[2] = 200.0f; /* labels 0..2 cost 200 more */
  c = make(be, "pattern", 1, 4, 1, pattern_build, &ctx, R);
  TU_CHECK(!ebm_infer_concept(c, img, n, &o, v, err, sizeof err), "%s", err);
  int raw3 = 0;
  for (int b = 0; b < n; b++) raw3 += v[b].index == 3;
  TU_CHECK(raw3 == n, "raw argmin with the offset: %d of %d read label 3", raw3, n);
  /* ... and the baseline measured on typical images (the same patterns, other noise) undoes it */
  ebm_infer_calibration cal = {0};
  TU_CHECK(!ebm_infer_baseline_measure(c, img, n, &cal.base[0], err, sizeof err), "%s", err);
  cal.count = 1;
  o.calibration = &cal;
  TU_CHECK(!ebm_infer_concept(c, img, n, &o, v, err, sizeof err), "%s", err);
  for (int b = 0; b < n; b++)
    TU_CHECK(v[b].index == b % 4, "calibrated: image %d read as %d", b, v[b].index);
  /* a flat grey image: no label stands out, so no confident answer */
  o.calibration = NULL;
  ebm_concept_destroy(c);
  memset(ctx.offset, 0, sizeof ctx.offset);
  c = make(be, "pattern", 1, 4, 1, pattern_build, &ctx, R);
  for (int i = 0; i < N; i++) img[i] = 0.5f;
  img[NPIX] = 0.0f;
  TU_CHECK(!ebm_infer_concept(c, img, 1, &o, v, err, sizeof err), "%s", err);
  TU_CHECK(v[0].confidence < 0.3f, "grey image: confidence %.3f", v[0].confidence);
  free(img);
  ebm_concept_destroy(c);
}

static void render_blobs(float *img, int res, const float (*at)[2], int k, int projected) {
  memset(img, 0, sizeof(float) * 3 * res * res);
  for (int q = 0; q < k; q++) {
    float cu, cv;
    blob_centre(res, at[q], projected, &cu, &cv);
    for (int i = 0; i < res; i++)
      for (int j = 0; j < res; j++) {
        float u = (j + 0.5f) / res * 2 - 1, v = 1 - (i + 0.5f) / res * 2;
        img[i * res + j] += blob(u, v, cu, cv);
      }
  }
}

static void test_vector(ebm_backend *be) {
  ebm_concept *c = make(be, "position", 0, 2, 0, blob_build, NULL, R);
  const float truth[3][2] = {{0.33f, -0.47f}, {-0.71f, 0.62f}, {0.05f, 0.12f}};
  float *img = malloc(sizeof(float) * 3 * NPIX);
  for (int b = 0; b < 3; b++) render_blobs(img + b * NPIX, R, &truth[b], 1, 0);
  ebm_infer_options o;
  ebm_infer_defaults(&o);
  o.grid = 3; /* starts at -2/3, 0, 2/3: none on the answers */
  o.steps = 40;
  ebm_infer_value v[3];
  char err[256];
  TU_CHECK(!ebm_infer_concept(c, img, 3, &o, v, err, sizeof err), "%s", err);
  for (int b = 0; b < 3; b++) {
    float ex = fabsf(v[b].value[0] - truth[b][0]), ey = fabsf(v[b].value[1] - truth[b][1]);
    TU_CHECK(ex < 0.03f && ey < 0.03f, "blob %d: (%.3f, %.3f), truth (%.3f, %.3f)", b,
             v[b].value[0], v[b].value[1], truth[b][0], truth[b][1]);
    TU_CHECK(v[b].confidence > 0.5f, "blob %d: confidence %.3f", b, v[b].confidence);
  }
  /* without descent the grid alone is off by up to a third */
  o.steps = 0;
  TU_CHECK(!ebm_infer_concept(c, img, 3, &o, v, err, sizeof err), "%s", err);
  float worst = 0;
  for (int b = 0; b < 3; b++) worst = fmaxf(worst, fabsf(v[b].value[0] - truth[b][0]));
  TU_CHECK(worst > 0.05f, "the grid alone already hit the answers (%.3f): the test is void", worst);
  free(img);
  ebm_concept_destroy(c);
}

/* Two blobs at places a greedy search must both find (32x32, the scene camera's places). */
static void test_objects(ebm_backend *be) {
  const int res = 32, per = 3 * res * res;
  static int projected = 1;
  blob_sigma = 0.1f;
  ebm_concept *c = make(be, "position", 0, 2, 0, blob_build, &projected, res);
  ebm_concept_set set = {0};
  char err[256];
  TU_CHECK(!ebm_concept_set_add(&set, c, 1, err, sizeof err), "%s", err);
  const float two[2][2] = {{-0.55f, 0.1f}, {0.5f, -0.3f}};
  float *img = malloc(sizeof(float) * 2 * per);
  render_blobs(img, res, two, 2, 1);
  render_blobs(img + per, res, two, 1, 1);
  ebm_infer_options o;
  ebm_infer_defaults(&o);
  o.grid = 4;
  o.steps = 30;
  ebm_infer_scene sc[2];
  TU_CHECK(!ebm_infer_scenes(&set, img, 1, res, 2, &o, sc, err, sizeof err), "%s", err);
  int found[2] = {0, 0};
  for (int k = 0; k < sc[0].nobj; k++)
    for (int q = 0; q < 2; q++)
      if (fabsf(sc[0].obj[k].x - two[q][0]) < 0.15f && fabsf(sc[0].obj[k].y - two[q][1]) < 0.15f)
        found[q]++;
  TU_CHECK(sc[0].nobj == 2 && found[0] == 1 && found[1] == 1,
           "two blobs: found (%.2f, %.2f) and (%.2f, %.2f)", sc[0].obj[0].x, sc[0].obj[0].y,
           sc[0].obj[1].x, sc[0].obj[1].y);
  TU_CHECK(sc[0].obj[0].shape == -1 && sc[0].obj[0].size < 0, "no shape/size model, yet read");
  TU_CHECK(!ebm_infer_scenes(&set, img, 2, res, 0, &o, sc, err, sizeof err), "%s", err);
  TU_CHECK(sc[0].nobj == 2, "auto on two blobs: %d objects (drops %.3f %.3f %.3f)", sc[0].nobj,
           sc[0].obj[0].drop, sc[0].obj[1].drop, sc[0].obj[2].drop);
  TU_CHECK(sc[1].nobj == 1, "auto on one blob: %d objects (drops %.3f %.3f)", sc[1].nobj,
           sc[1].obj[0].drop, sc[1].obj[1].drop);
  TU_CHECK(ebm_infer_scenes(&set, img, 1, res, 9, &o, sc, err, sizeof err) == -1 && err[0],
           "9 objects accepted");
  free(img);
  ebm_concept_set_clear(&set);
}

/* dE/dc of a learned model against central differences of its energy. */
static void test_label_grad(ebm_backend *be) {
  ebm_net_config cfg;
  char err[256], path[] = "/tmp/vkebm_test_infer_XXXXXX";
  int fd = mkstemp(path);
  TU_CHECK(fd >= 0, "mkstemp");
  close(fd);
  TU_CHECK(!ebm_net_config_preset(&cfg, "tiny", 2), "preset");
  ebm_net *net;
  if (ebm_net_create(&net, be, &cfg, 4, 5, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  size_t P = ebm_net_param_count(net);
  float *p = malloc(P * sizeof *p);
  ebm_net_get_params(net, p, NULL);
  for (int i = 0; i < ebm_net_num_params(net); i++) {
    const ebm_param *pr = ebm_net_param(net, i);
    if (pr->kind == EBM_PARAM_LABEL || pr->kind == EBM_PARAM_VEC)
      tu_fill_uniform(p + pr->offset, pr->numel, (uint32_t)(40 + i), -0.7f, 0.7f);
  }
  ebm_net_set_params(net, p, NULL);
  ebm_net_refresh(net, 0);
  free(p);
  ebm_model_info info;
  ebm_model_info_default(&info, &cfg);
  snprintf(info.concept, sizeof info.concept, "position");
  TU_CHECK(!ebm_model_save(path, net, &info, NULL, 0, err, sizeof err), "save: %s", err);
  ebm_net_destroy(net);
  ebm_concept *c = ebm_concept_load_learned(be, path, 8, err, sizeof err);
  unlink(path);
  TU_CHECK(c != NULL, "%s", err);
  if (!c) return;
  int n = 3, N = ebm_concept_image_size(c);
  float *x = malloc(sizeof(float) * n * N);
  tu_fill_uniform(x, (size_t)n * N, 77, 0, 1);
  ebm_buffer *xb = tu_upload_new(be, x, (size_t)n * N), *eb = ebm_alloc(be, (size_t)n);
  float lab[6] = {0.3f, -0.2f, -0.6f, 0.5f, 0.1f, 0.9f}, g[6], e[3];
  TU_CHECK(!ebm_concept_energy(c, ebm_ref_of(eb), ebm_ref_of(xb), lab, n, 1, err, sizeof err),
           "%s", err);
  TU_CHECK(!ebm_concept_label_grad(c, g, err, sizeof err), "%s", err);
  float fdg[6];
  const float h = 1e-2f;
  for (int i = 0; i < 6; i++) {
    float lp[6], lm[6], ep[3], em[3];
    memcpy(lp, lab, sizeof lab);
    memcpy(lm, lab, sizeof lab);
    lp[i] += h;
    lm[i] -= h;
    ebm_concept_energy(c, ebm_ref_of(eb), ebm_ref_of(xb), lp, n, 1, err, sizeof err);
    ebm_download(be, ep, ebm_ref_of(eb), 3);
    ebm_concept_energy(c, ebm_ref_of(eb), ebm_ref_of(xb), lm, n, 1, err, sizeof err);
    ebm_download(be, em, ebm_ref_of(eb), 3);
    fdg[i] = (ep[i / 2] - em[i / 2]) / (2 * h);
  }
  tu_compare("dE/dc vs central differences", g, fdg, 6, 2e-4, 2e-2);
  float gmax = 0;
  for (int i = 0; i < 6; i++) gmax = fmaxf(gmax, fabsf(g[i]));
  TU_CHECK(gmax > 1e-3f, "dE/dc is ~0 (%g): the comparison is void", gmax);
  (void)e;
  free(x);
  ebm_free(be, xb);
  ebm_free(be, eb);
  ebm_concept_destroy(c);
}

int main(void) {
  ebm_backend *be = tu_cpu_backend();
  test_onehot(be);
  test_vector(be);
  test_objects(be);
  test_label_grad(be);
  tu_backend_done(be);
  return tu_finish("test_infer");
}
