/* train.h: contrastive-divergence training of one concept's energy network (docs/recipe.md §4).
 *
 * The trainer as a library; `vkebm train` (src/cli/cmd_train.c) only parses flags, prints and
 * handles signals. One iteration (ebm_trainer_step):
 *   1. positives x+ [B,3,R,R] with labels c [B,L]: scenes of the data spec rendered on the
 *      device (ebm_scene_render), or images of a `vkebm data` folder;
 *   2. negatives x- start, per chain, from the uint8 replay buffer with probability `replay`
 *      (dequantised with uniform noise) or from uniform noise, and take `langevin_steps`
 *      steps of  x <- clip(x - step_lr dE/dx + N(0, noise^2), 0, 1)  under the sampler's
 *      energy: the EMA network (or the trained one when ema = 0) plus any frozen models;
 *      they use the positives' labels and go back into the buffer (ring or reservoir);
 *   3. L = mean E(x+) - mean E(x-) + alpha (mean E(x+)^2 + mean E(x-)^2); dL/dE per sample
 *      from the 2B energies, one backward through the trained network to every parameter;
 *      with label_weight > 0, the label-contrastive term below adds its gradient (the
 *      positives under every candidate label, two candidates per pass of 2B rows: a pass for
 *      the energies, then a forward + backward per pass for the gradient);
 *   4. optional global gradient-norm clip, Adam (ebm_adam_step: beta1 0, beta2 0.99, the
 *      paper's per-element clip), EMA ema = d ema + (1 - d) w.
 * Spectral-norm vectors advance one power iteration at the start of every iteration.
 * Randomness: the counter RNG of shared.h keyed by (seed, step), so the state at a step
 * boundary is the network, Adam moments, EMA weights, buffer and the step count, and a resumed
 * run is bit-identical to an uninterrupted one on the same backend.
 *
 * Checkpoints are model files (model.h) of the trained network with extras: adam.m, adam.v,
 * ema.params, ema.sn_u, replay.images (3 uint8 per float, exact), train.state (counters and
 * hyperparameters). The trained model (ebm_trainer_save_model) is the EMA weights by default.
 */
#ifndef VKEBM_TRAIN_H
#define VKEBM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/model.h"
#include "vkebm/net.h"

#define EBM_TRAIN_MAX_FROZEN 8
#define EBM_TRAIN_MAX_STEPS 100000000 /* iterations: --steps and a checkpoint's step */

typedef struct ebm_train_config {
  ebm_net_config net;      /* net.label_dim is the concept's label size */
  char concept[64];        /* "position" | "size" | "shape" | "color" */
  char data_spec[256];     /* scene spec rendered each iteration (scene.h), e.g. "general" */
  char data_dir[240];      /* non-empty: read positives from a `vkebm data` folder instead */
  int batch;               /* B, default 16 */
  float lr, beta1, beta2, eps; /* Adam: 3e-4, 0, 0.99, 1e-8 */
  int adam_clip;           /* 1: per-element clip +-(3 sqrt(vhat) + 0.1) */
  float grad_clip;         /* > 0: clip the global gradient norm to this */
  int langevin_steps;      /* 60 */
  float step_lr;           /* eta, 100 */
  float noise;             /* sigma, 0.001 */
  float replay;            /* probability a chain starts from the buffer, 0.95 */
  int buffer_size;         /* 10000 images */
  int reservoir;           /* 1: reservoir sampling into the buffer, 0: ring */
  float alpha;             /* energy-squared regulariser, 1 */
  float ema;               /* EMA decay for the sampling weights, 0.99; 0 = sample with the
                              trained weights */
  float diverge_energy;    /* |mean E| above this stops training (default 1e4) */
  int chain_init;          /* fresh chains: 0 uniform noise (the paper's), 1 a per-channel
                              Gaussian fitted to the data's pixels, 2 flat images whose colour is
                              a Gaussian fitted to the data's per-image mean colours (mean/std
                              below, computed when training starts from 256 positives; recorded
                              in the model) */
  float init_mean[3], init_std[3];
  int input_norm;          /* 1: a fresh network reads standardised pixels: net.in_shift and
                              net.in_scale set to the mean and 1/std of the pixels of 256
                              positives when training starts (recorded in the model) */
  /* Label-contrastive term (JEM-style; 0 = off, the paper's CD alone): in the paper's CD the
   * negatives carry the positives' labels, so nothing makes E(x|c) differ between labels. This
   * adds  label_weight * mean_b CE(softmax_k(-E(x+_b | c_k) / label_temp), true k)  over
   * candidate labels c_k: every one-hot label (shape, colour), or for vector labels the true
   * one and label_negatives labels drawn outside the evaluation tolerance (position: max |d|
   * > 0.25; size: |d| > 0.1), i.e. InfoNCE. */
  float label_weight;
  float label_temp;        /* T, default 0.01: the E^2 regulariser keeps energies ~0.01-0.1 */
  int label_negatives;     /* vector concepts, default 4 */
  int sample_steps;        /* recorded in the model: the sampler steps `sample` and `eval`
                              default to; default 5 x langevin_steps (the shipped recipe's
                              20 -> 100, the step count its samples were best at) */
  uint32_t seed;
} ebm_train_config;

/* Defaults above for a concept ("color"), spec ("general") and preset ("tiny", "default32",
 * "paper64") at resolution size (0 = the preset's). 0, or -1 with a reason. */
int ebm_train_config_default(ebm_train_config *cfg, const char *concept, const char *data_spec,
                             const char *preset, int size, char *err, size_t errlen);
/* The recipes `vkebm train --recipe` names, applied over ebm_train_config_default's (the paper's):
 *   "paper"      nothing changed: 60 Langevin steps of 100 with noise 0.001, buffer 10000,
 *                lr 3e-4, EMA 0.99, uniform chain starts
 *   "practical"  what trains in hours on a CPU (docs/training.md, the ablations): 20 steps of 10
 *                with noise 0.005, buffer 1000, lr 5e-4, sampling with the trained weights
 *                (ema 0), flat data-fitted chain starts, coordinate planes and the flatten head
 * 0, or -1 for an unknown name. */
int ebm_train_config_recipe(ebm_train_config *cfg, const char *name);

/* Checks ranges and consistency. 0, or -1 with a one-line reason naming the field. */
int ebm_train_config_validate(const ebm_train_config *cfg, char *err, size_t errlen);

/* A frozen model added into the sampler's energy (continual learning). label_from_data = 1:
 * each chain uses the positive scene's label for the model's concept (rendered data only);
 * else every chain uses label[]. */
typedef struct ebm_train_frozen {
  char path[512];
  int label_from_data;
  float label[EBM_MAX_LABEL];
} ebm_train_frozen;

/* Parses "MODEL=LABEL": LABEL is "data", a label name of a one-hot model ("red"), or
 * comma-separated floats of a vector model ("0.2,-0.5"). Reads the model's metadata. */
int ebm_train_frozen_parse(const char *arg, ebm_train_frozen *out, char *err, size_t errlen);

typedef struct ebm_trainer ebm_trainer;

/* A new run (fresh network from cfg->seed) or, when resume_path is given, the state of that
 * checkpoint (its configuration replaces *cfg's, which may be NULL then). 0 or -1 with err. */
int ebm_trainer_create(ebm_trainer **out, ebm_backend *be, const ebm_train_config *cfg,
                       const char *resume_path, const ebm_train_frozen *frozen, int nfrozen,
                       char *err, size_t errlen);
/* The same for one replica of a data-parallel run (train_comm.h; comm NULL or of size 1: one
 * process, as above). cfg->batch is this rank's batch B; the run's batch is B * comm->size, and
 * its checkpoints hold that global batch and the whole replay buffer, so a checkpoint resumes on
 * any rank count that divides its batch (else refused). Collective: every rank calls it. */
typedef struct ebm_train_comm ebm_train_comm;
int ebm_trainer_create_comm(ebm_trainer **out, ebm_backend *be, const ebm_train_config *cfg,
                            const char *resume_path, const ebm_train_frozen *frozen, int nfrozen,
                            const ebm_train_comm *comm, char *err, size_t errlen);
void ebm_trainer_destroy(ebm_trainer *tr);

const ebm_train_config *ebm_trainer_config(const ebm_trainer *tr);
int64_t ebm_trainer_step_count(const ebm_trainer *tr); /* iterations done */
ebm_net *ebm_trainer_net(ebm_trainer *tr);             /* the trained network */
ebm_net *ebm_trainer_ema_net(ebm_trainer *tr);         /* the EMA network (NULL when ema = 0) */

typedef struct ebm_train_stats {
  int64_t step;     /* iterations done after this one */
  double loss;      /* L */
  double e_pos;     /* mean E(x+) */
  double e_neg;     /* mean E(x-) */
  double grad_norm; /* global L2 norm of dL/dtheta before any clip */
  double label_ce;  /* label-contrastive cross-entropy (0 when off) */
  double label_acc; /* share of positives whose own label has the lowest energy (when on) */
} ebm_train_stats;

/* Where an iteration's time goes (`vkebm bench --train`). Seconds accumulated over the steps
 * taken while the profile is set; each phase ends with a device sync, so on vulkan profiling
 * costs a few submits per iteration (on cpu nothing). */
typedef struct ebm_train_profile {
  double data_s;     /* spectral-norm refresh and the positives (rendered or read) */
  double buffer_s;   /* chains from the replay buffer or noise, and storing them back */
  double langevin_s; /* the Langevin steps (forward + dE/dx per step, every model) */
  double param_s;    /* energies of positives and negatives, the loss, the backward pass to
                        every parameter and the gradient norm */
  double optim_s;    /* Adam (and the EMA) */
  int64_t iters;
} ebm_train_profile;
/* p non-NULL: accumulate into *p from the next step on; NULL: stop. */
void ebm_trainer_set_profile(ebm_trainer *tr, ebm_train_profile *p);

/* The label-contrastive loss of B positives under K candidate labels each (k = 0 the true
 * one): e[K, B] energies; returns mean_b CE(softmax_k(-e[k, b] / temp), 0) and writes
 * de[K, B] = weight * dCE/de (de may alias e) and the share whose true label has the lowest
 * energy (acc, optional). K <= EBM_MAX_LABEL. */
double ebm_train_label_ce(const float *e, int K, int B, float temp, float weight, float *de,
                          double *acc);

enum { EBM_TRAIN_OK = 0, EBM_TRAIN_ERROR = -1, EBM_TRAIN_DIVERGED = -2 };
/* One iteration. EBM_TRAIN_DIVERGED (NaN/Inf or |mean E| > diverge_energy): the parameters
 * are left as they were before this iteration and err says what ran away. */
int ebm_trainer_step(ebm_trainer *tr, ebm_train_stats *stats, char *err, size_t errlen);

/* The whole training state, atomically (write to a temporary, then rename): a failed or
 * interrupted save leaves the previous checkpoint in place. 0 or -1 with err. Data parallel:
 * collective (every rank sends its buffer shard), rank 0 writes; the others return 0. */
int ebm_trainer_save_checkpoint(ebm_trainer *tr, const char *path, char *err, size_t errlen);
/* The trained model as a plain model file: the EMA weights (use_ema = 1, when there are any)
 * or the trained ones, with the concept's label space. */
int ebm_trainer_save_model(ebm_trainer *tr, const char *path, int use_ema, char *err,
                           size_t errlen);
/* The concept's label space (names, kind, ranges) for cfg, as written into model files. */
int ebm_train_label_info(const ebm_train_config *cfg, ebm_model_info *info, char *err,
                         size_t errlen);

/* The negatives of the last iteration, [B,3,R,R] on the host (for previews and tests); -1
 * before the first iteration. */
int ebm_trainer_negatives(ebm_trainer *tr, float *out);

#endif /* VKEBM_TRAIN_H */
