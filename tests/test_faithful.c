/* test_faithful.c: the analysis-by-synthesis search (faithful.h), the Frechet distance and the
 * reference renders of an expression (eval.h), without any trained network.
 *
 * 1. A render (camera unjittered) re-fitted from a wrong start (position off by 0.06, size by 0.05, a cube's yaw
 *    and the light's azimuth unknown) comes back close to its true labels with a small residual
 *    and a small ratio; the search is deterministic.
 * 2. An empty floor "read" as an object: the best re-render explains nothing (ratio near 1), and
 *    an image of a different object elsewhere leaves a large residual.
 * 3. The Frechet distance: 0 for a set against itself, and the closed form for Gaussians
 *    (N(0, I) against N(m, 4I) in d dimensions: |m|^2 + d).
 * 4. Reference scenes satisfy their expressions by the labels: AND, NOT, both sides of an OR
 *    drawn, one object per place for two places.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/eval.h"
#include "vkebm/faithful.h"
#include "vkebm/scene.h"
#include "vkebm/shared.h"

#define R 32

static void render(const scene_desc *d, float *img) {
  float packed[VKEBM_SCENE_FLOATS];
  scene_pack(d, packed);
  scene_render_cpu(img, packed, 1, R, NULL, 0);
}

static void test_refit(void) {
  scene_spec spec;
  char err[256];
  scene_spec_parse("general", &spec, err, sizeof err);
  spec.camera_jitter = 0; /* the search assumes the default camera: labels come back exactly */
  float img[3 * R * R], re[3 * R * R];
  int good = 0, n = 0;
  for (uint32_t i = 0; i < 12; i++) {
    scene_desc d;
    scene_sample(&spec, 99, i, &d);
    d.obj[0].shape = (int)(i % 4);
    render(&d, img);
    const scene_object *o = &d.obj[0];
    ebm_faithful_object start = {o->shape, o->colour, o->x + 0.06f, o->y - 0.06f, o->size + 0.05f};
    ebm_faithful_fit f, g;
    TU_CHECK(ebm_faithful_refit(img, R, &start, 1, &f, re) == 0, "refit failed");
    TU_CHECK(ebm_faithful_refit(img, R, &start, 1, &g, NULL) == 0 && !memcmp(&f, &g, sizeof f),
             "the search is not deterministic");
    float dx = fabsf(f.obj[0].x - o->x), dy = fabsf(f.obj[0].y - o->y);
    float ds = fabsf(f.obj[0].size - o->size);
    printf("scene %u (%s): residual %.4f ratio %.3f, error x %.3f y %.3f size %.3f, %d renders\n",
           i, scene_shape_name(o->shape), f.residual, f.ratio, dx, dy, ds, f.renders);
    good += f.residual < 0.04f && f.ratio < 0.3f && dx < 0.07f && dy < 0.07f && ds < 0.05f;
    n++;
  }
  TU_CHECK(good >= n - 1, "only %d of %d renders re-fitted close to their labels", good, n);
}

static void test_not_explained(void) {
  scene_desc d;
  scene_default_environment(&d);
  float img[3 * R * R];
  render(&d, img); /* an empty floor */
  ebm_faithful_object white_cone = {SCENE_CONE, 7, 0.1f, -0.2f, 0.3f};
  ebm_faithful_fit f;
  TU_CHECK(ebm_faithful_refit(img, R, &white_cone, 1, &f, NULL) == 0, "refit failed");
  printf("empty floor read as a white cone: residual %.4f, ratio %.3f\n", f.residual, f.ratio);
  TU_CHECK(f.ratio > 0.9f, "an object explains an empty floor (ratio %.3f)", f.ratio);
  /* a red cube at the left, read as a blue sphere at the right */
  d.nobj = 1;
  d.obj[0] = (scene_object){SCENE_CUBE, 0, {0.9f, 0.12f, 0.1f}, 0.6f, -0.6f, 0.0f, 0.3f};
  render(&d, img);
  ebm_faithful_object wrong = {SCENE_SPHERE, 2, 0.6f, 0.0f, 0.6f};
  TU_CHECK(ebm_faithful_refit(img, R, &wrong, 1, &f, NULL) == 0, "refit failed");
  printf("red cube read as a blue sphere elsewhere: residual %.4f, ratio %.3f\n", f.residual,
         f.ratio);
  TU_CHECK(f.residual > 0.1f, "a wrong reading fits (residual %.4f)", f.residual);
}

static void test_frechet(void) {
  enum { N = 6000, D = 4 };
  float *a = malloc(sizeof(float) * N * D), *b = malloc(sizeof(float) * N * D);
  const float m[D] = {1.0f, -0.5f, 0.0f, 2.0f};
  for (int i = 0; i < N; i++)
    for (int k = 0; k < D; k++) {
      a[i * D + k] = vkebm_rng_normal(1, 2, (u32)i, (u32)k);
      b[i * D + k] = m[k] + 2.0f * vkebm_rng_normal(3, 4, (u32)i, (u32)k);
    }
  double self = ebm_frechet_distance(a, N, a, N, D);
  double fd = ebm_frechet_distance(a, N, b, N, D), want = 1.0 + 0.25 + 0.0 + 4.0 + D;
  printf("Frechet: self %.2e, N(0,I) vs N(m,4I) %.3f (closed form %.3f)\n", self, fd, want);
  TU_CHECK(self < 1e-6, "self distance %.3e", self);
  TU_CHECK(fabs(fd - want) < 0.05 * want, "Frechet %.3f, closed form %.3f", fd, want);
  TU_CHECK(isnan(ebm_frechet_distance(a, 1, b, N, D)), "one vector gave a number");
  free(a);
  free(b);
}

static void test_references(void) {
  const char *exprs[] = {"shape=cube AND NOT color=red", "color=red OR color=blue",
                         "pos=(-0.5,0) AND pos=(0.5,0)", "size=0.6 AND shape=cone"};
  for (int e = 0; e < 4; e++) {
    expr_error perr;
    expr_node *t = expr_parse(exprs[e], &perr);
    int ok = 0, red = 0, blue = 0, n = 64;
    for (int i = 0; i < n; i++) {
      scene_desc d;
      TU_CHECK(ebm_eval_reference_scene(t, 0.1f, 0.25f, 7, (uint32_t)i, &d) == 0, "reference");
      const scene_object *o = &d.obj[0];
      switch (e) {
      case 0: ok += d.nobj == 1 && o->shape == SCENE_CUBE && o->colour != 0; break;
      case 1:
        red += o->colour == 0;
        blue += o->colour == 2;
        ok += o->colour == 0 || o->colour == 2;
        break;
      case 2:
        ok += d.nobj == 2 && o->x == -0.5f && o->y == 0.0f && d.obj[1].x == 0.5f &&
              d.obj[1].size <= 0.5f;
        break;
      case 3: ok += o->size == 0.6f && o->shape == SCENE_CONE; break;
      }
    }
    printf("references of %-32s %d of %d satisfy it\n", exprs[e], ok, n);
    TU_CHECK(ok == n, "%s: %d of %d references satisfy it", exprs[e], ok, n);
    if (e == 1) TU_CHECK(red > 16 && blue > 16, "OR drew one side only (red %d, blue %d)", red, blue);
    expr_free(t);
  }
}

int main(void) {
  test_refit();
  test_not_explained();
  test_frechet();
  test_references();
  return tu_finish("test_faithful");
}
