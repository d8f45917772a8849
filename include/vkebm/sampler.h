/* sampler.h: Langevin-type samplers over a composed energy.
 *
 * Owns the three update rules and their settings. A paper or langevin step is backend ops only
 * (compose.h: the composition's coefficients stay on the device), so the queue never waits for
 * the host; MALA adds per-chain numbers on the host (energies, accept/reject, step sizes). Images
 * never leave the device during sampling.
 *   paper     (the released code; the default): x += sigma*xi; x -= eta*grad E(x); clip to [0,1].
 *             Decoupled constants eta = 100, sigma = 0.005: a noisy gradient descent that works
 *             with learned EBMs whose gradients are small; it does not sample exp(-E) exactly.
 *   langevin  (true Langevin, temperature 1): x += -(lambda/2) grad E + sqrt(lambda) xi.
 *             Samples exp(-E) as lambda -> 0.
 *   mala      Metropolis-adjusted Langevin: proposal x' = x - tau grad E + sqrt(2 tau) xi, per-chain
 *             accept with probability min(1, exp(E(x) - E(x') + log q(x|x') - log q(x'|x))), and
 *             each chain's tau adapted toward a target acceptance (0.57) during the first
 *             `adapt_steps`, then frozen, so the later steps are an exact MCMC kernel.
 * Noise: normal(seed, step, chain, element) from shared.h, so a run is a function of its seed.
 */
#ifndef VKEBM_SAMPLER_H
#define VKEBM_SAMPLER_H

#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/compose.h"

typedef enum ebm_sampler_kind {
  EBM_SAMPLER_PAPER = 0,
  EBM_SAMPLER_LANGEVIN = 1,
  EBM_SAMPLER_MALA = 2,
} ebm_sampler_kind;

typedef struct ebm_sampler_config {
  ebm_sampler_kind kind;
  int steps;
  uint32_t seed;
  float step_size;       /* paper: eta; langevin: lambda; mala: initial tau */
  float noise_std;       /* paper: sigma (unused by the others) */
  int clip;              /* clip to [0,1] after every step (paper: 1; others: 0) */
  float energy_scale;    /* beta: the sampler sees beta*E (inverse temperature), default 1 */
  int divide_by_terms;   /* step size divided by the number of terms */
  float target_accept;   /* mala */
  int adapt_steps;       /* mala: adapt tau during these first steps (-1: steps / 2) */
} ebm_sampler_config;

void ebm_sampler_defaults(ebm_sampler_config *cfg, ebm_sampler_kind kind);

/* The default step size, one table for every command:
 *                 paper    langevin   mala
 *   learned       100      1e-4       1e-4   (the paper's eta; then the models' own, below)
 *   analytic      1e-3     2e-3       1e-3   (sized to their stiffness, docs/composition.md) */
float ebm_sampler_default_step(ebm_sampler_kind kind, int analytic);
/* Settles cfg for sampling the set: a step, noise or step count the user gave stays; else
 * learned models' recorded sampler (ebm_sampler_apply_hints), else the table above. */
void ebm_sampler_resolve(ebm_sampler_config *cfg, const ebm_concept_set *set, int analytic,
                         int step_given, int noise_given, int steps_given);
const char *ebm_sampler_name(ebm_sampler_kind kind);
int ebm_sampler_parse(const char *name); /* -1 when unknown */
/* One line: "paper eta=100 sigma=0.005 clip=1 ..." (goes into PNG metadata). */
void ebm_sampler_describe(const ebm_sampler_config *cfg, char *out, size_t len);

typedef struct ebm_sampler_stats {
  long proposed, accepted;     /* mala, after adaptation */
  double accept_rate;          /* accepted / proposed (mala), else 0 */
  double mean_tau;             /* mala: mean final step size */
  double mean_energy;          /* mean composed energy of the final chains (scaled) */
} ebm_sampler_stats;

/* Called after step `step` (0-based) with the current chains; a non-zero return stops early. */
typedef int (*ebm_sampler_step_fn)(int step, ebm_ref x, void *user);

/* Runs cfg->steps steps on the chains x[B, N] (device, initialised by the caller). */
int ebm_sample(ebm_composition *comp, ebm_ref x, const ebm_sampler_config *cfg,
               ebm_sampler_step_fn on_step, void *user, ebm_sampler_stats *stats, char *err,
               size_t errlen);

/* ---- one step -------------------------------------------------------------------------------
 * The gradient of the energy being sampled at x[B, N], times `scale` (the sampler's beta), into
 * grad[B, N] (device, overwritten). 0, or -1 with err. */
typedef int (*ebm_energy_grad_fn)(void *user, ebm_ref x, ebm_ref grad, double scale, char *err,
                                  size_t errlen);

/* Chains on a backend: x[B, N] and a scratch grad[B, N] for their gradient. chain0: the first
 * row's chain index in the noise counter (0, unless these B chains are rows chain0.. of a larger
 * batch, as a data-parallel rank's are: row b then draws chain chain0 + b's noise). */
typedef struct ebm_chains {
  ebm_backend *be;
  ebm_ref x, grad;
  int B, N;
  uint32_t chain0;
} ebm_chains;

/* Step k of the paper or langevin rule, at step size `step`, noise
 * normal(seed, k, chain0 + chain, i):
 *   paper     x += noise_std xi;  x -= step * grad E(x) at the noisy x;  clip when cfg->clip
 *             (the released code's order)
 *   langevin  x += -(step/2) grad E(x) + sqrt(step) xi;                 clip when cfg->clip
 * Every sampler of the project calls this (ebm_sample, the viewer, the trainer with its own
 * noise stream, `vkebm demo`); images stay on the device. MALA's accept/reject is ebm_sample's. */
int ebm_sampler_step(const ebm_chains *ch, const ebm_sampler_config *cfg, float step,
                     uint32_t seed, uint32_t k, ebm_energy_grad_fn grad, void *user, char *err,
                     size_t errlen);
/* ebm_sampler_step of a composition's energy (ebm_composition_eval). */
int ebm_sampler_step_composition(ebm_composition *comp, ebm_ref x, ebm_ref grad,
                                 const ebm_sampler_config *cfg, float step, uint32_t k, char *err,
                                 size_t errlen);

/* Chain initialisation, uniform noise in [0,1) from the counter RNG: host x[B, N]. */
void ebm_sampler_init_uniform(float *x, int B, int N, uint32_t seed);
/* Chain initialisation from a per-channel Gaussian, clipped to [0,1]: x[b, c, p] =
 * clip(mean[c] + std[c] z), z ~ N(0,1) from the counter RNG, one z per value or, when flat, one
 * per image and channel (a flat image of a random colour); host x[B, C*HW]. The distribution
 * learned models record as their chain start (ebm_concept_set_chain_init). */
void ebm_sampler_init_gaussian(float *x, int B, int C, int HW, const float *mean,
                               const float *std, int flat, uint32_t seed);

/* What learned models record about their training sampler, applied to a sampler configuration
 * and a chain start (sample, eval and view share these):
 * ebm_sampler_apply_hints: the sampler steps the models record (ebm_concept_set_sample_steps)
 *   replace cfg's unless given, and for the paper sampler, the set's training step and noise
 *   (ebm_concept_set_sampler_hint) replace cfg's unless given; for the langevin and mala
 *   samplers (lambda form) the same dynamics: lambda = sigma^2 and beta = 2 eta / sigma^2,
 *   unless the step or beta is given;
 * ebm_sampler_init_for_set: x[B, N] from the set's recorded chain start (ebm_concept_set_chain_init),
 *   else uniform noise. */
void ebm_sampler_apply_hints(const ebm_concept_set *set, ebm_sampler_config *cfg, int step_given,
                             int noise_given, int steps_given);
void ebm_sampler_init_for_set(const ebm_concept_set *set, float *x, int B, int N, uint32_t seed);

#endif
