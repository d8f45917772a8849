/* sampler.c: the paper's sampler, true Langevin and MALA over a composition (sampler.h).
 * Owns the sampler's scratch buffers for one run and the per-chain host state (energies,
 * step sizes, accept decisions). */
#include "vkebm/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/fileio.h"
#include "vkebm/shared.h"

/* Counter-RNG streams: the init and the accept decisions use seeds derived from the run's seed,
 * so they never share bits with the step noise. */
#define INIT_STREAM 0x696e6974u   /* "init" */
#define ACCEPT_STREAM 0x6d616c61u /* "mala" */

void ebm_sampler_defaults(ebm_sampler_config *cfg, ebm_sampler_kind kind) {
  memset(cfg, 0, sizeof *cfg);
  cfg->kind = kind;
  cfg->steps = 200;
  cfg->seed = 0;
  cfg->energy_scale = 1.0f;
  cfg->target_accept = 0.57f;
  cfg->adapt_steps = -1;
  cfg->step_size = ebm_sampler_default_step(kind, 0);
  if (kind == EBM_SAMPLER_PAPER) {
    cfg->noise_std = 0.005f;
    cfg->clip = 1;
  }
}

float ebm_sampler_default_step(ebm_sampler_kind kind, int analytic) {
  static const float table[2][3] = {
      /* paper  langevin  mala */
      {100.0f, 1e-4f, 1e-4f}, /* learned */
      {1e-3f, 2e-3f, 1e-3f},  /* analytic */
  };
  int k = kind == EBM_SAMPLER_LANGEVIN ? 1 : kind == EBM_SAMPLER_MALA ? 2 : 0;
  return table[analytic ? 1 : 0][k];
}

void ebm_sampler_resolve(ebm_sampler_config *cfg, const ebm_concept_set *set, int analytic,
                         int step_given, int noise_given, int steps_given) {
  if (!step_given) cfg->step_size = ebm_sampler_default_step(cfg->kind, analytic);
  if (!analytic) ebm_sampler_apply_hints(set, cfg, step_given, noise_given, steps_given);
}

const char *ebm_sampler_name(ebm_sampler_kind kind) {
  return kind == EBM_SAMPLER_PAPER ? "paper" : kind == EBM_SAMPLER_LANGEVIN ? "langevin" : "mala";
}

int ebm_sampler_parse(const char *name) {
  if (!strcmp(name, "paper")) return EBM_SAMPLER_PAPER;
  if (!strcmp(name, "langevin")) return EBM_SAMPLER_LANGEVIN;
  if (!strcmp(name, "mala")) return EBM_SAMPLER_MALA;
  return -1;
}

/* io_float_text into buf, returned for use in one printf */
static const char *short_float(char *buf, size_t len, float v) {
  io_float_text(buf, len, v);
  return buf;
}

void ebm_sampler_describe(const ebm_sampler_config *c, char *out, size_t len) {
  char a[32], b[32], beta[32];
  short_float(beta, sizeof beta, c->energy_scale);
  switch (c->kind) {
  case EBM_SAMPLER_PAPER:
    snprintf(out, len, "paper steps=%d eta=%s sigma=%s clip=%d beta=%s divide=%d", c->steps,
             short_float(a, sizeof a, c->step_size), short_float(b, sizeof b, c->noise_std),
             c->clip, beta, c->divide_by_terms);
    break;
  case EBM_SAMPLER_LANGEVIN:
    snprintf(out, len, "langevin steps=%d lambda=%s clip=%d beta=%s divide=%d", c->steps,
             short_float(a, sizeof a, c->step_size), c->clip, beta, c->divide_by_terms);
    break;
  case EBM_SAMPLER_MALA:
    snprintf(out, len, "mala steps=%d tau=%s target=%s adapt=%d clip=%d beta=%s divide=%d",
             c->steps, short_float(a, sizeof a, c->step_size),
             short_float(b, sizeof b, c->target_accept), c->adapt_steps, c->clip, beta,
             c->divide_by_terms);
    break;
  }
}

void ebm_sampler_init_uniform(float *x, int B, int N, uint32_t seed) {
  for (int b = 0; b < B; b++)
    for (int i = 0; i < N; i++)
      x[(size_t)b * N + i] = vkebm_rng_uniform(seed ^ INIT_STREAM, 0, (u32)b, (u32)i);
}

void ebm_sampler_init_gaussian(float *x, int B, int C, int HW, const float *mean,
                               const float *std, int flat, uint32_t seed) {
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      const float zf = flat ? vkebm_rng_normal(seed ^ INIT_STREAM, 1, (u32)b, (u32)c) : 0.0f;
      for (int p = 0; p < HW; p++) {
        const u32 i = (u32)(c * HW + p);
        const float z = flat ? zf : vkebm_rng_normal(seed ^ INIT_STREAM, 0, (u32)b, i);
        const float v = mean[c] + std[c] * z;
        x[(size_t)b * C * HW + i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
      }
    }
}

void ebm_sampler_apply_hints(const ebm_concept_set *set, ebm_sampler_config *cfg, int step_given,
                             int noise_given, int steps_given) {
  int steps = ebm_concept_set_sample_steps(set);
  if (!steps_given && steps > 0) {
    if (cfg->adapt_steps == cfg->steps / 2) cfg->adapt_steps = steps / 2;
    cfg->steps = steps;
  }
  float step = 0.0f, noise = 0.0f;
  if (!ebm_concept_set_sampler_hint(set, &step, &noise)) return;
  if (cfg->kind == EBM_SAMPLER_PAPER) {
    if (!step_given) cfg->step_size = step;
    if (!noise_given) cfg->noise_std = noise;
  } else if (!step_given && cfg->energy_scale == 1.0f && noise > 0.0f) {
    /* the same dynamics in the lambda form: x - (lambda/2) grad(beta E) + N(0, lambda) is the
     * paper's x - eta grad E + N(0, sigma^2) when lambda = sigma^2 and beta = 2 eta / sigma^2.
     * At beta = 1 a learned energy (differences of ~0.01) is flat: pure noise, and MALA then
     * accepts everything. */
    cfg->step_size = noise * noise;
    cfg->energy_scale = 2.0f * step / (noise * noise);
  }
}

void ebm_sampler_init_for_set(const ebm_concept_set *set, float *x, int B, int N, uint32_t seed) {
  float mean[EBM_MODEL_MAX_INIT], std[EBM_MODEL_MAX_INIT];
  int flat = 0;
  const int C = ebm_concept_set_chain_init(set, mean, std, &flat);
  if (C > 0) ebm_sampler_init_gaussian(x, B, C, N / C, mean, std, flat, seed);
  else ebm_sampler_init_uniform(x, B, N, seed);
}

int ebm_sampler_step(const ebm_chains *ch, const ebm_sampler_config *cfg, float step,
                     uint32_t seed, uint32_t k, ebm_energy_grad_fn grad, void *user, char *err,
                     size_t errlen) {
  float lo = 0.0f, hi = cfg->clip ? 1.0f : 0.0f; /* lo == hi: no clipping */
  if (cfg->kind == EBM_SAMPLER_PAPER) {
    /* the released code's order: noise, then the gradient at the noisy point, then clip */
    ebm_langevin_update_at(ch->be, ch->x, EBM_NOREF, ch->B, ch->N, ch->chain0, seed, k, 0.0f,
                           cfg->noise_std, 0.0f, 0.0f);
    if (grad(user, ch->x, ch->grad, cfg->energy_scale, err, errlen)) return -1;
    ebm_langevin_update(ch->be, ch->x, ch->grad, ch->B, ch->N, 0, 0, step, 0.0f, lo, hi);
  } else {
    /* x - (lambda/2) grad E + sqrt(lambda) xi */
    if (grad(user, ch->x, ch->grad, cfg->energy_scale, err, errlen)) return -1;
    ebm_langevin_update_at(ch->be, ch->x, ch->grad, ch->B, ch->N, ch->chain0, seed, k,
                           0.5f * step, sqrtf(step), lo, hi);
  }
  return 0;
}

static int composition_grad(void *comp, ebm_ref x, ebm_ref grad, double scale, char *err,
                            size_t errlen) {
  return ebm_composition_eval(comp, x, NULL, grad, scale, err, errlen);
}

int ebm_sampler_step_composition(ebm_composition *comp, ebm_ref x, ebm_ref grad,
                                 const ebm_sampler_config *cfg, float step, uint32_t k, char *err,
                                 size_t errlen) {
  const ebm_chains ch = {ebm_composition_backend(comp), x, grad, ebm_composition_chains(comp),
                         ebm_composition_image_size(comp), 0};
  return ebm_sampler_step(&ch, cfg, step, cfg->seed, k, composition_grad, comp, err, errlen);
}

typedef struct run {
  ebm_backend *be;
  int B, N;
  ebm_buffer *g, *xp, *gp, *tau, *mask, *lq;
  double *E, *Ep;
  float *tau_h, *mask_h, *lq_h;
} run;

static void run_free(run *r) {
  ebm_free(r->be, r->g);
  ebm_free(r->be, r->xp);
  ebm_free(r->be, r->gp);
  ebm_free(r->be, r->tau);
  ebm_free(r->be, r->mask);
  ebm_free(r->be, r->lq);
  free(r->E);
  free(r->Ep);
  free(r->tau_h);
  free(r->mask_h);
  free(r->lq_h);
}

static int sample_mala(ebm_composition *comp, run *r, ebm_ref x, const ebm_sampler_config *cfg,
                       float step, ebm_sampler_step_fn on_step, void *user,
                       ebm_sampler_stats *stats, char *err, size_t errlen) {
  int B = r->B, N = r->N;
  double beta = cfg->energy_scale;
  int adapt = cfg->adapt_steps < 0 ? cfg->steps / 2 : cfg->adapt_steps;
  ebm_ref g = ebm_ref_of(r->g), xp = ebm_ref_of(r->xp), gp = ebm_ref_of(r->gp);
  ebm_ref tau = ebm_ref_of(r->tau), mask = ebm_ref_of(r->mask), lq = ebm_ref_of(r->lq);
  for (int b = 0; b < B; b++) r->tau_h[b] = step;
  if (ebm_composition_eval(comp, x, r->E, g, beta, err, errlen)) return -1;
  for (int k = 0; k < cfg->steps; k++) {
    if (ebm_upload(r->be, tau, r->tau_h, (size_t)B)) goto io;
    ebm_mala_propose(r->be, xp, x, g, tau, B, N, cfg->seed, (uint32_t)k);
    if (ebm_composition_eval(comp, xp, r->Ep, gp, beta, err, errlen)) return -1;
    ebm_mala_log_q(r->be, lq, xp, x, g, tau, B, N);              /* log q(x' | x) */
    ebm_mala_log_q(r->be, ebm_at(lq, B), x, xp, gp, tau, B, N);  /* log q(x | x') */
    if (ebm_download(r->be, r->lq_h, lq, 2 * (size_t)B)) goto io;
    for (int b = 0; b < B; b++) {
      double log_a = r->E[b] - r->Ep[b] + r->lq_h[B + b] - r->lq_h[b];
      double u = vkebm_rng_uniform(cfg->seed ^ ACCEPT_STREAM, (u32)k, (u32)b, 0);
      int acc = isfinite(log_a) && log(u) < log_a;
      r->mask_h[b] = acc ? 1.0f : 0.0f;
      if (acc) r->E[b] = r->Ep[b];
      if (k < adapt) {
        /* Robbins-Monro on log tau toward the target acceptance probability */
        double a = isfinite(log_a) ? (log_a > 0 ? 1.0 : exp(log_a)) : 0.0;
        double gain = 0.5 / sqrt(1.0 + k);
        double t = r->tau_h[b] * exp(gain * (a - cfg->target_accept));
        r->tau_h[b] = (float)fmin(fmax(t, 1e-12), 1e6);
      } else {
        stats->proposed++;
        stats->accepted += acc;
      }
    }
    if (ebm_upload(r->be, mask, r->mask_h, (size_t)B)) goto io;
    ebm_chain_select(r->be, x, xp, mask, B, N);
    ebm_chain_select(r->be, g, gp, mask, B, N);
    if (cfg->clip) ebm_langevin_update(r->be, x, EBM_NOREF, B, N, 0, 0, 0.0f, 0.0f, 0.0f, 1.0f);
    if (on_step && on_step(k, x, user)) break;
  }
  double s = 0;
  for (int b = 0; b < B; b++) s += r->tau_h[b];
  stats->mean_tau = s / B;
  stats->accept_rate = stats->proposed ? (double)stats->accepted / stats->proposed : 0.0;
  return 0;
io:
  snprintf(err, errlen, "sampler: transfer failed");
  return -1;
}

int ebm_sample(ebm_composition *comp, ebm_ref x, const ebm_sampler_config *cfg,
               ebm_sampler_step_fn on_step, void *user, ebm_sampler_stats *stats_out, char *err,
               size_t errlen) {
  ebm_sampler_stats stats = {0};
  if (cfg->steps < 0 || !(cfg->step_size > 0.0f) || !(cfg->energy_scale > 0.0f) ||
      !(cfg->noise_std >= 0.0f) || !(cfg->target_accept > 0.0f && cfg->target_accept < 1.0f)) {
    snprintf(err, errlen, "sampler: need steps >= 0, step size > 0, energy scale > 0, noise >= 0 "
                          "and a target acceptance in (0, 1)");
    return -1;
  }
  run r = {0};
  r.be = ebm_composition_backend(comp);
  r.B = ebm_composition_chains(comp);
  r.N = ebm_composition_image_size(comp);
  int B = r.B, N = r.N;
  size_t BN = (size_t)B * N;
  int mala = cfg->kind == EBM_SAMPLER_MALA;
  r.g = ebm_alloc(r.be, BN);
  r.E = calloc((size_t)B, sizeof *r.E);
  if (!r.g || !r.E) goto oom;
  if (mala) {
    r.xp = ebm_alloc(r.be, BN);
    r.gp = ebm_alloc(r.be, BN);
    r.tau = ebm_alloc(r.be, (size_t)B);
    r.mask = ebm_alloc(r.be, (size_t)B);
    r.lq = ebm_alloc(r.be, 2 * (size_t)B);
    r.Ep = calloc((size_t)B, sizeof *r.Ep);
    r.tau_h = calloc((size_t)B, sizeof *r.tau_h);
    r.mask_h = calloc((size_t)B, sizeof *r.mask_h);
    r.lq_h = calloc(2 * (size_t)B, sizeof *r.lq_h);
    if (!r.xp || !r.gp || !r.tau || !r.mask || !r.lq || !r.Ep || !r.tau_h || !r.mask_h || !r.lq_h)
      goto oom;
  }
  float step = cfg->step_size;
  if (cfg->divide_by_terms) step /= (float)ebm_composition_num_terms(comp);
  ebm_ref g = ebm_ref_of(r.g);
  int rc = 0;
  if (mala) {
    rc = sample_mala(comp, &r, x, cfg, step, on_step, user, &stats, err, errlen);
  } else {
    for (int k = 0; k < cfg->steps && rc == 0; k++) {
      rc = ebm_sampler_step_composition(comp, x, g, cfg, step, (uint32_t)k, err, errlen);
      if (rc == 0 && on_step && on_step(k, x, user)) break;
    }
  }
  if (rc == 0) {
    if (ebm_composition_eval(comp, x, r.E, EBM_NOREF, cfg->energy_scale, err, errlen)) {
      rc = -1;
    } else {
      double s = 0;
      for (int b = 0; b < B; b++) s += r.E[b];
      stats.mean_energy = s / B;
    }
  }
  run_free(&r);
  if (stats_out) *stats_out = stats;
  return rc;
oom:
  run_free(&r);
  snprintf(err, errlen, "sampler: out of memory for %d chains of %d values", B, N);
  return -1;
}
