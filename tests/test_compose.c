/* test_compose.c: the composition algebra and the samplers on the cpu backend, against closed
 * forms. Concepts are analytic Gaussians E(x | m) = 0.5 p |x - m|^2 whose label is the mean, so
 *   AND of two   -> Gaussian with precision pa + pb and mean (pa ma + pb mb) / (pa + pb)
 *   OR[1] of two -> the mixture with weights proportional to (2 pi / p_i)^(N/2)
 *   a AND NOT[al] b -> Gaussian with precision pa - al pb, mean (pa ma - al pb mb) / (pa - al pb)
 * Nested expressions are checked against a hand-written energy and finite differences; OR must
 * differ from each operand; MALA's acceptance is reported and its statistics match the target;
 * the same seed gives the same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/compose.h"
#include "vkebm/concept.h"
#include "vkebm/expr.h"
#include "vkebm/sampler.h"

typedef struct gauss_ctx {
  float prec;
} gauss_ctx;

static void gauss_build(const ebm_concept_info *info, const float *label, float *mu, float *prec,
                        void *ctx) {
  const gauss_ctx *g = ctx;
  int N = info->channels * info->height * info->width;
  for (int i = 0; i < N; i++) {
    mu[i] = label[i % info->label_dim];
    prec[i] = g->prec;
  }
}

static ebm_concept *make_gauss(ebm_backend *be, const char *name, int N, gauss_ctx *ctx) {
  ebm_concept_info info = {0};
  snprintf(info.name, sizeof info.name, "%s", name);
  info.label_kind = EBM_LABEL_VECTOR;
  info.label_dim = N;
  for (int i = 0; i < N; i++) {
    info.label_min[i] = -10;
    info.label_max[i] = 10;
  }
  info.channels = 1;
  info.height = 1;
  info.width = N;
  char err[256];
  ebm_concept *c = ebm_concept_create_analytic(be, &info, gauss_build, ctx, 8, err, sizeof err);
  if (!c) {
    fprintf(stderr, "make_gauss: %s\n", err);
    exit(1);
  }
  return c;
}

/* Concepts "a" and "b" of N values, precisions 4 and 9. */
static ebm_concept_set gauss_pair(ebm_backend *be, int N) {
  static gauss_ctx ga = {4.0f}, gb = {9.0f};
  ebm_concept_set set = {0};
  char err[256];
  ebm_concept_set_add(&set, make_gauss(be, "a", N, &ga), 1, err, sizeof err);
  ebm_concept_set_add(&set, make_gauss(be, "b", N, &gb), 1, err, sizeof err);
  return set;
}

static ebm_composition *compose(ebm_backend *be, const ebm_concept_set *set, const char *src,
                                int B) {
  expr_error err;
  expr_node *t = expr_parse(src, &err);
  if (!t) {
    fprintf(stderr, "parse '%s': %s\n", src, err.msg);
    exit(1);
  }
  ebm_composition *c = ebm_composition_create(be, t, set, B, &err);
  expr_free(t);
  if (!c) {
    fprintf(stderr, "compose '%s': %s\n", src, err.msg);
    exit(1);
  }
  return c;
}

static double sq(double v) { return v * v; }

/* 0.5 p |x - m|^2 in double */
static double gauss_e(const float *x, const float *m, double p, int N) {
  double s = 0;
  for (int i = 0; i < N; i++) s += sq(x[i] - m[i]);
  return 0.5 * p * s;
}

static double lse2(double a, double b) {
  double m = fmax(a, b);
  return m + log(exp(a - m) + exp(b - m));
}

/* ---- energy and gradient of a nested expression --------------------------------------------- */
static void check_nested(ebm_backend *be) {
  enum { N = 5, B = 3 };
  ebm_concept_set set = gauss_pair(be, N);
  char err[256];
  const float m1[N] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, m2[N] = {0.9f, 0.1f, 0.5f, 0.5f, 0.2f},
              m3[N] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  const char *src = "(2*a=(0.1,0.2,0.3,0.4,0.5) AND NOT[0.3] b=(0.9,0.1,0.5,0.5,0.2)) OR[0.5] "
                    "(a=(0.5,0.5,0.5,0.5,0.5) AND b=(0.1,0.2,0.3,0.4,0.5))";
  ebm_composition *c = compose(be, &set, src, B);
  TU_CHECK(ebm_composition_num_terms(c) == 4, "4 terms");
  float x[B * N];
  tu_fill_uniform(x, B * N, 11, 0.0f, 1.0f);
  ebm_buffer *xb = ebm_alloc(be, B * N), *gb_ = ebm_alloc(be, B * N);
  ebm_upload(be, ebm_ref_of(xb), x, B * N);
  double E[B];
  TU_CHECK(!ebm_composition_eval(c, ebm_ref_of(xb), E, ebm_ref_of(gb_), 1.0, err, sizeof err), "%s", err);
  float g[B * N];
  ebm_download(be, g, ebm_ref_of(gb_), B * N);
  double worst_e = 0, worst_g = 0;
  for (int b = 0; b < B; b++) {
    const float *xb_ = x + b * N;
    double l = 2 * gauss_e(xb_, m1, 4, N) - 0.3 * gauss_e(xb_, m2, 9, N);
    double r = gauss_e(xb_, m3, 4, N) + gauss_e(xb_, m1, 9, N);
    double want = -0.5 * lse2(-l / 0.5, -r / 0.5);
    worst_e = fmax(worst_e, fabs(E[b] - want) / (1 + fabs(want)));
    /* finite differences of the composed energy, element by element */
    for (int i = 0; i < N; i++) {
      double fd = tu_composition_fd(c, be, xb, x, B, N, b, i, 1e-2f);
      worst_g = fmax(worst_g, fabs(fd - g[b * N + i]) / (1 + fabs(fd)));
    }
  }
  printf("  nested: worst energy rel err %.3g, worst gradient vs finite differences %.3g\n",
         worst_e, worst_g);
  TU_CHECK(worst_e < 1e-5, "energy matches the hand-written formula");
  TU_CHECK(worst_g < 2e-3, "gradient matches finite differences");
  char text[4096];
  ebm_composition_explain(c, text, sizeof text);
  printf("%s", text);
  TU_CHECK(strstr(text, "-0.5*logsumexp(-(2*E1 + (-0.3*E2))/0.5, -(E3 + E4)/0.5)"), "explain formula");
  ebm_free(be, xb);
  ebm_free(be, gb_);
  ebm_composition_destroy(c);

  /* OR differs from each operand (the released code lost it) */
  c = compose(be, &set, "a=(0.1,0.2,0.3,0.4,0.5) OR[1] b=(0.9,0.1,0.5,0.5,0.2)", B);
  ebm_composition *ca = compose(be, &set, "a=(0.1,0.2,0.3,0.4,0.5)", B);
  ebm_composition *cb = compose(be, &set, "b=(0.9,0.1,0.5,0.5,0.2)", B);
  ebm_buffer *xb2 = ebm_alloc(be, B * N), *g0 = ebm_alloc(be, B * N), *g1 = ebm_alloc(be, B * N),
             *g2 = ebm_alloc(be, B * N);
  ebm_upload(be, ebm_ref_of(xb2), x, B * N);
  double Eo[B], Ea[B], Eb[B];
  ebm_composition_eval(c, ebm_ref_of(xb2), Eo, ebm_ref_of(g0), 1.0, err, sizeof err);
  ebm_composition_eval(ca, ebm_ref_of(xb2), Ea, ebm_ref_of(g1), 1.0, err, sizeof err);
  ebm_composition_eval(cb, ebm_ref_of(xb2), Eb, ebm_ref_of(g2), 1.0, err, sizeof err);
  float h0[B * N], h1[B * N], h2[B * N];
  ebm_download(be, h0, ebm_ref_of(g0), B * N);
  ebm_download(be, h1, ebm_ref_of(g1), B * N);
  ebm_download(be, h2, ebm_ref_of(g2), B * N);
  for (int b = 0; b < B; b++) {
    double want = -lse2(-Ea[b], -Eb[b]);
    TU_CHECK(fabs(Eo[b] - want) < 1e-5 * (1 + fabs(want)), "OR energy %g vs %g", Eo[b], want);
    TU_CHECK(fabs(Eo[b] - Ea[b]) > 1e-3 && fabs(Eo[b] - Eb[b]) > 1e-3,
             "OR differs from each operand: %g vs %g, %g", Eo[b], Ea[b], Eb[b]);
    double wa = exp(-Ea[b] - (-want)), d1 = 0, d2 = 0;
    for (int i = 0; i < N; i++) {
      double gw = wa * h1[b * N + i] + (1 - wa) * h2[b * N + i];
      TU_CHECK(fabs(h0[b * N + i] - gw) < 1e-4 * (1 + fabs(gw)), "OR gradient is the softmax mix");
      d1 += fabs(h0[b * N + i] - h1[b * N + i]);
      d2 += fabs(h0[b * N + i] - h2[b * N + i]);
    }
    TU_CHECK(d1 > 1e-3 && d2 > 1e-3, "OR gradient differs from each operand's");
  }
  /* the OR as a mixture: each chain's energy and gradient are exactly its drawn side's, and
   * the sides are drawn per chain (both occur over the chains; the same seed, the same draws) */
  ebm_composition_set_or_mixture(c, 1, 77);
  ebm_composition_eval(c, ebm_ref_of(xb2), Eo, ebm_ref_of(g0), 1.0, err, sizeof err);
  ebm_download(be, h0, ebm_ref_of(g0), B * N);
  int side_a = 0, side_b = 0;
  for (int b = 0; b < B; b++) {
    int is_a = Eo[b] == Ea[b], is_b = Eo[b] == Eb[b];
    side_a += is_a, side_b += is_b;
    TU_CHECK(is_a != is_b, "mixture chain %d: energy %g is neither side's (%g, %g)", b, Eo[b],
             Ea[b], Eb[b]);
    const float *want = is_a ? h1 : h2;
    TU_CHECK(!memcmp(h0 + b * N, want + b * N, N * sizeof(float)),
             "mixture chain %d: the gradient is not its side's", b);
  }
  double coef[2];
  ebm_composition_tree_value_chain(c, (double[]){0.5, 0.25}, coef, 0);
  TU_CHECK((coef[0] == 1 && coef[1] == 0) || (coef[0] == 0 && coef[1] == 1),
           "mixture coefficients %g %g are not one side's", coef[0], coef[1]);
  int draws_a = 0;
  for (int chain = 0; chain < 64; chain++) {
    ebm_composition_tree_value_chain(c, (double[]){0.5, 0.25}, coef, chain);
    draws_a += coef[0] == 1;
  }
  printf("OR mixture: sides a/b over %d chains %d/%d; over 64 chains a %d\n", B, side_a, side_b,
         draws_a);
  TU_CHECK(draws_a >= 16 && draws_a <= 48, "mixture sides drawn %d of 64 for a", draws_a);
  ebm_composition_set_or_mixture(c, 0, 0);
  ebm_free(be, xb2);
  ebm_free(be, g0);
  ebm_free(be, g1);
  ebm_free(be, g2);
  ebm_composition_destroy(c);
  ebm_composition_destroy(ca);
  ebm_composition_destroy(cb);

  /* terms of one model go through one batched evaluation and match separate ones */
  c = compose(be, &set, "a=(0.1,0.2,0.3,0.4,0.5) AND b=(0.5,0.5,0.5,0.5,0.5) AND "
                        "a=(0.9,0.1,0.5,0.5,0.2)", B);
  ebm_composition *c1 = compose(be, &set, "a=(0.9,0.1,0.5,0.5,0.2)", B);
  ebm_buffer *xb3 = ebm_alloc(be, B * N);
  ebm_upload(be, ebm_ref_of(xb3), x, B * N);
  ebm_composition_eval(c, ebm_ref_of(xb3), NULL, EBM_NOREF, 1.0, err, sizeof err);
  ebm_composition_eval(c1, ebm_ref_of(xb3), NULL, EBM_NOREF, 1.0, err, sizeof err);
  const float *te = ebm_composition_term_energies(c), *te1 = ebm_composition_term_energies(c1);
  for (int b = 0; b < B; b++) {
    TU_CHECK(te[2 * B + b] == te1[b], "batched term energy equals the separate one");
    TU_CHECK(fabs(te[b] - gauss_e(x + b * N, m1, 4, N)) < 1e-5, "term 1 energy");
  }
  ebm_free(be, xb3);
  ebm_composition_destroy(c);
  ebm_composition_destroy(c1);

  /* binding errors: unknown concept lists the known ones; bad value says why; position */
  expr_error e;
  expr_node *t = expr_parse("a=(0.1,0.2,0.3,0.4,0.5) AND colour=red", &e);
  TU_CHECK(!ebm_composition_create(be, t, &set, B, &e) && strstr(e.msg, "unknown concept 'colour'") &&
               strstr(e.msg, "a, b") && e.pos == 28, "unknown concept: %s at %d", e.msg, e.pos);
  expr_free(t);
  t = expr_parse("a=(0.1,0.2)", &e);
  TU_CHECK(!ebm_composition_create(be, t, &set, B, &e) && strstr(e.msg, "takes 5 numbers") && e.pos == 2,
           "wrong label size: %s at %d", e.msg, e.pos);
  expr_free(t);
  ebm_concept_set_clear(&set);
}

/* ---- where the coefficients are computed ------------------------------------------------------
 * eval with energies evaluates the tree per chain on the host in double precision; without, a
 * tree with a soft OR runs on the device (softmin ops, float) and one without uses constants
 * uploaded once. The gradients must agree: bit for bit without a soft OR, to float rounding
 * with one; a second step at another scale must not reuse the first scale's constants. */
static void check_coefficient_paths(ebm_backend *be) {
  enum { N = 5, B = 7 };
  ebm_concept_set set = gauss_pair(be, N);
  char err[256];
  const char *srcs[] = {
      "2*a=(0.1,0.2,0.3,0.4,0.5) AND NOT[0.3] (b=(0.9,0.1,0.5,0.5,0.2) AND 0.5*a=(1,1,1,1,1)) "
      "AND b=(0.5,0.5,0.5,0.5,0.5)",
      "0.5*(a=(0.1,0.2,0.3,0.4,0.5) OR[0.5] (b=(0.9,0.1,0.5,0.5,0.2) AND NOT[0.3] "
      "a=(0.5,0.5,0.5,0.5,0.5))) AND (2*b=(0.5,0.5,0.5,0.5,0.5) OR[2] 3*(a=(0.3,0.3,0.3,0.3,0.3) "
      "OR[0.1] b=(0.2,0.8,0.2,0.8,0.2)))"};
  float x[B * N], gh[B * N], gd[B * N];
  tu_fill_uniform(x, B * N, 5, -0.5f, 1.5f);
  ebm_buffer *xb = ebm_alloc(be, B * N), *g = ebm_alloc(be, B * N);
  ebm_upload(be, ebm_ref_of(xb), x, B * N);
  for (int k = 0; k < 2; k++) {
    ebm_composition *c = compose(be, &set, srcs[k], B);
    for (int s = 0; s < 2; s++) {
      double E[B], scale = s ? 0.7 : 1.0;
      TU_CHECK(!ebm_composition_eval(c, ebm_ref_of(xb), NULL, ebm_ref_of(g), scale, err, sizeof err),
               "%s", err);
      ebm_download(be, gd, ebm_ref_of(g), B * N);
      TU_CHECK(!ebm_composition_eval(c, ebm_ref_of(xb), E, ebm_ref_of(g), scale, err, sizeof err),
               "%s", err);
      ebm_download(be, gh, ebm_ref_of(g), B * N);
      char l[96];
      snprintf(l, sizeof l, "%s coefficients, scale %g: device vs host", k ? "soft OR" : "AND/NOT",
               scale);
      if (k == 0)
        TU_CHECK(!memcmp(gd, gh, sizeof gd), "%s: not the same bits", l);
      tu_compare(l, gd, gh, B * N, 1e-6, 1e-5);
    }
    ebm_composition_destroy(c);
  }
  ebm_free(be, xb);
  ebm_free(be, g);
  ebm_concept_set_clear(&set);
}

/* ---- distributions ---------------------------------------------------------------------------- */

typedef struct moments {
  double mean, var;
} moments;

static moments sample_moments(ebm_backend *be, const ebm_concept_set *set, const char *src,
                              const ebm_sampler_config *cfg, int B, ebm_sampler_stats *st,
                              float *out) {
  ebm_composition *c = compose(be, set, src, B);
  int N = ebm_composition_image_size(c);
  float *x = malloc(sizeof(float) * B * N);
  ebm_sampler_init_uniform(x, B, N, cfg->seed);
  ebm_buffer *xb = ebm_alloc(be, (size_t)B * N);
  ebm_upload(be, ebm_ref_of(xb), x, (size_t)B * N);
  char err[256];
  TU_CHECK(!ebm_sample(c, ebm_ref_of(xb), cfg, NULL, NULL, st, err, sizeof err), "%s", err);
  ebm_download(be, x, ebm_ref_of(xb), (size_t)B * N);
  double s = 0, s2 = 0;
  for (int i = 0; i < B * N; i++) s += x[i];
  double m = s / (B * N);
  for (int i = 0; i < B * N; i++) s2 += sq(x[i] - m);
  if (out) memcpy(out, x, sizeof(float) * B * N);
  free(x);
  ebm_free(be, xb);
  ebm_composition_destroy(c);
  return (moments){m, s2 / (B * N - 1)};
}

static void check_distributions(ebm_backend *be) {
  enum { B = 4000 };
  gauss_ctx ga = {100.0f}, gb = {25.0f};
  ebm_concept_set set = {0};
  char err[256];
  ebm_concept_set_add(&set, make_gauss(be, "a", 1, &ga), 1, err, sizeof err);
  ebm_concept_set_add(&set, make_gauss(be, "b", 1, &gb), 1, err, sizeof err);
  ebm_sampler_config mala;
  ebm_sampler_defaults(&mala, EBM_SAMPLER_MALA);
  mala.steps = 600;
  mala.seed = 5;
  mala.step_size = 1e-3f;
  ebm_sampler_stats st;

  /* single Gaussian, then AND: product of Gaussians */
  moments m = sample_moments(be, &set, "a=0.3", &mala, B, &st, NULL);
  printf("  a=0.3 (mala): mean %.4f (want 0.3) var %.5f (want %.5f), acceptance %.3f, tau %.3g\n",
         m.mean, m.var, 1.0 / 100, st.accept_rate, st.mean_tau);
  TU_CHECK(fabs(m.mean - 0.3) < 4 * 0.1 / sqrt(B), "single mean");
  TU_CHECK(fabs(m.var / 0.01 - 1) < 0.1, "single var");
  TU_CHECK(st.accept_rate > 0.45 && st.accept_rate < 0.7, "acceptance near 0.57: %g", st.accept_rate);

  double pa = 100, pb = 25, ma = 0.3, mb = 0.7;
  double p_and = pa + pb, m_and = (pa * ma + pb * mb) / p_and;
  m = sample_moments(be, &set, "a=0.3 AND b=0.7", &mala, B, &st, NULL);
  printf("  a=0.3 AND b=0.7 (mala): mean %.4f (want %.4f) var %.5f (want %.5f), acceptance %.3f\n",
         m.mean, m_and, m.var, 1 / p_and, st.accept_rate);
  TU_CHECK(fabs(m.mean - m_and) < 4 * sqrt(1 / p_and / B), "AND mean");
  TU_CHECK(fabs(m.var * p_and - 1) < 0.1, "AND variance");

  ebm_sampler_config lg;
  ebm_sampler_defaults(&lg, EBM_SAMPLER_LANGEVIN);
  lg.steps = 800;
  lg.seed = 6;
  lg.step_size = 1e-4f;
  m = sample_moments(be, &set, "a=0.3 AND b=0.7", &lg, B, &st, NULL);
  /* ULA on a Gaussian of precision p with step lambda: variance 1 / (p (1 - lambda p / 4)) */
  double var_ula = 1 / (p_and * (1 - 1e-4 * p_and / 4));
  printf("  a=0.3 AND b=0.7 (langevin): mean %.4f (want %.4f) var %.5f (want %.5f)\n", m.mean,
         m_and, m.var, var_ula);
  TU_CHECK(fabs(m.mean - m_and) < 4 * sqrt(var_ula / B), "Langevin AND mean");
  TU_CHECK(fabs(m.var / var_ula - 1) < 0.1, "Langevin AND variance");

  /* NOT: a AND NOT[0.5] b moves mass away from b */
  double al = 0.5, p_not = pa - al * pb, m_not = (pa * ma - al * pb * mb) / p_not;
  m = sample_moments(be, &set, "a=0.3 AND NOT[0.5] b=0.7", &mala, B, &st, NULL);
  printf("  a=0.3 AND NOT[0.5] b=0.7 (mala): mean %.4f (want %.4f, a alone 0.3) var %.5f (want %.5f)\n",
         m.mean, m_not, m.var, 1 / p_not);
  TU_CHECK(fabs(m.mean - m_not) < 4 * sqrt(1 / p_not / B), "NOT mean");
  TU_CHECK(m.mean < 0.3 - 0.02, "NOT moved mass away from b");
  TU_CHECK(fabs(m.var * p_not - 1) < 0.1, "NOT variance");

  /* OR[1]: mixture with weights proportional to sqrt(2 pi / p): a gets 1/3, b 2/3 */
  float *xs = malloc(sizeof(float) * B);
  ebm_sampler_config mo = mala;
  mo.steps = 1500;
  m = sample_moments(be, &set, "a=0.3 OR[1] b=0.7", &mo, B, &st, xs);
  double wa = sqrt(1 / pa) / (sqrt(1 / pa) + sqrt(1 / pb)), wb = 1 - wa;
  double mix_mean = wa * ma + wb * mb;
  double mix_var = wa * (1 / pa + ma * ma) + wb * (1 / pb + mb * mb) - mix_mean * mix_mean;
  int near_a = 0;
  for (int b = 0; b < B; b++) near_a += xs[b] < 0.45f;
  /* mass below 0.45 under the mixture: wa * Phi((0.45-0.3)*10) + wb * Phi((0.45-0.7)*5) */
  double want_frac = wa * 0.5 * erfc(-1.5 / sqrt(2)) + wb * 0.5 * erfc(1.25 / sqrt(2));
  printf("  a=0.3 OR[1] b=0.7 (mala): mean %.4f (want %.4f) var %.5f (want %.5f) "
         "below 0.45: %.3f (want %.3f), acceptance %.3f\n",
         m.mean, mix_mean, m.var, mix_var, (double)near_a / B, want_frac, st.accept_rate);
  TU_CHECK(fabs(m.mean - mix_mean) < 4 * sqrt(mix_var / B), "OR mixture mean");
  TU_CHECK(fabs(m.var / mix_var - 1) < 0.12, "OR mixture variance");
  TU_CHECK(fabs((double)near_a / B - want_frac) < 4 * sqrt(want_frac * (1 - want_frac) / B),
           "OR mode proportions");
  free(xs);

  /* paper sampler: noisy descent to the minimum of the product */
  ebm_sampler_config pp;
  ebm_sampler_defaults(&pp, EBM_SAMPLER_PAPER);
  pp.step_size = 0.005f;
  pp.steps = 200;
  pp.seed = 3;
  m = sample_moments(be, &set, "a=0.3 AND b=0.7", &pp, 256, &st, NULL);
  printf("  a=0.3 AND b=0.7 (paper eta=0.005 sigma=0.005): mean %.4f (minimum %.4f) var %.2g\n",
         m.mean, m_and, m.var);
  TU_CHECK(fabs(m.mean - m_and) < 2e-3 && m.var < 1e-4, "paper sampler reaches the minimum");

  /* same seed, same bits; another seed, other bits */
  float r1[64], r2[64], r3[64];
  mala.steps = 20;
  sample_moments(be, &set, "a=0.3 OR b=0.7", &mala, 64, &st, r1);
  sample_moments(be, &set, "a=0.3 OR b=0.7", &mala, 64, &st, r2);
  mala.seed = 99;
  sample_moments(be, &set, "a=0.3 OR b=0.7", &mala, 64, &st, r3);
  TU_CHECK(!memcmp(r1, r2, sizeof r1), "same seed, same bits");
  TU_CHECK(memcmp(r1, r3, sizeof r1), "other seed, other bits");
  ebm_concept_set_clear(&set);
}

int main(void) {
  ebm_backend *be = tu_cpu_backend();
  check_nested(be);
  check_coefficient_paths(be);
  check_distributions(be);
  tu_backend_done(be);
  return tu_finish("test_compose");
}
