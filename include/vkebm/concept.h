/* concept.h: a concept model E(x | c), whatever computes it, and a set of them to bind
 * expressions against.
 *
 * Owns: the concept-model interface the composition algebra calls (energy of stacked chains
 * with one label per group of rows, then the gradient through that evaluation), the analytic
 * concept kind (diagonal quadratic energies with closed forms, evaluated by the backend's
 * ebm_quadratic_energy op), the shipped analytic concepts (color, position, size, shape) and
 * the concept set with its aliases (pos -> position, colour -> color). Learned models (net.h)
 * are wrapped behind the same interface.
 *
 * Knows nothing of Vulkan handles: every evaluation is a backend op.
 */
#ifndef VKEBM_CONCEPT_H
#define VKEBM_CONCEPT_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/model.h" /* ebm_label_kind */

#define EBM_CONCEPT_MAX_LABEL 64
#define EBM_CONCEPT_MAX_NAMES 32

typedef struct ebm_concept_info {
  char name[64];             /* canonical concept name: "color", "position", ... */
  ebm_label_kind label_kind;
  int label_dim;             /* L */
  int num_label_names;       /* one-hot: the names of the L classes */
  char label_names[EBM_CONCEPT_MAX_NAMES][32];
  float label_min[EBM_CONCEPT_MAX_LABEL], label_max[EBM_CONCEPT_MAX_LABEL]; /* vector labels */
  int channels, height, width; /* the images it scores: x is [channels, height, width] */
  char kind[16];             /* "analytic" or "learned" */
  char hash[20];             /* 16 hex digits: FNV-1a of the model's defining bytes */
  float train_step_lr, train_noise; /* learned: the Langevin step it was trained with (0: unknown) */
  int sample_steps;                 /* learned: the sampler steps it records (0: unknown) */
  int init_channels;                /* learned: its chains' start, a Gaussian per channel (0: uniform) */
  int init_flat;                    /* 1: one draw per image and channel (a flat colour) */
  float init_mean[EBM_MODEL_MAX_INIT], init_std[EBM_MODEL_MAX_INIT];
} ebm_concept_info;

typedef struct ebm_concept ebm_concept;

/* Fills the target mu[N] and per-element precision prec[N] of an analytic concept for one
 * label c[L]. Energy: 0.5 sum_i prec[i] (x[i] - mu[i])^2. */
typedef void (*ebm_analytic_build_fn)(const ebm_concept_info *info, const float *label,
                                      float *mu, float *prec, void *ctx);

/* An analytic concept: info describes the label space and image size; build is called on the
 * host for each distinct label; max_rows bounds rows per evaluation. */
ebm_concept *ebm_concept_create_analytic(ebm_backend *be, const ebm_concept_info *info,
                                         ebm_analytic_build_fn build, void *ctx, int max_rows,
                                         char *err, size_t errlen);
/* The shipped analytic concepts for RxR RGB images: "color" (one-hot over a palette in which
 * every colour has an empty channel: the concept darkens those channels everywhere), "position"
 * ((x, y) in [-1,1]^2: a bright disc there, dark elsewhere), "size" (a centred disc of that
 * half-extent) and "shape" (cube, sphere, cylinder: a centred square, disc or upright
 * rectangle). `scale` multiplies every precision (the energy's inverse temperature). */
ebm_concept *ebm_concept_create_builtin(ebm_backend *be, const char *name, int resolution,
                                        float scale, int max_rows, char *err, size_t errlen);
/* A learned model file (model.h) for batches of up to max_batch rows (terms x chains). The
 * concept name and label space come from the file's metadata; the hash is of the file's bytes. */
ebm_concept *ebm_concept_load_learned(ebm_backend *be, const char *path, int max_batch, char *err,
                                      size_t errlen);
void ebm_concept_destroy(ebm_concept *c);

const ebm_concept_info *ebm_concept_info_of(const ebm_concept *c);
int ebm_concept_max_rows(const ebm_concept *c);
ebm_backend *ebm_concept_backend(const ebm_concept *c);
/* N = channels * height * width */
int ebm_concept_image_size(const ebm_concept *c);

/* e[G*R] = E(x[r] | labels[r / R]) for n = G*R stacked rows x[n, N] (device); G is at most
 * max_rows (analytic) and G*R at most max_batch (learned);
 * labels: host [G, L]. Keeps what the gradient needs. 0 or -1 with err. */
int ebm_concept_energy(ebm_concept *c, ebm_ref e, ebm_ref x, const float *labels, int G, int R,
                       char *err, size_t errlen);
/* dx[n, N] = dE[r] * dE(x[r]|c)/dx[r] through the last ebm_concept_energy (overwrites dx). */
int ebm_concept_grad(ebm_concept *c, ebm_ref dx, ebm_ref dE, char *err, size_t errlen);
/* dlabels[n, L] (host) = dE(x[r] | c[r]) / dc[r] for the n rows of the last ebm_concept_energy
 * (every row weighted 1; rows of a group share its label, each row gets its own gradient), for
 * inference by gradient descent on the label (infer.h). Learned models back-propagate to the
 * label (net.h's dc); analytic concepts take central differences of the energy, step
 * EBM_CONCEPT_LABEL_FD_STEP per coordinate (their built-in regions are step functions of the
 * label, so there the gradient is mostly 0: only smooth caller-built concepts have a useful
 * one), and re-evaluate the original labels last so ebm_concept_grad still follows. 0 or -1. */
#define EBM_CONCEPT_LABEL_FD_STEP 1e-3f
int ebm_concept_label_grad(ebm_concept *c, float *dlabels, char *err, size_t errlen);

/* ---- labels --------------------------------------------------------------------------------
 * Turns an expression's value into a label vector: one-hot concepts take a class name (or its
 * index as a number); vector concepts take L numbers within [label_min, label_max]. On error
 * writes a message listing the valid values. */
int ebm_concept_label(const ebm_concept_info *info, const char *value_name, const float *values,
                      int num_values, float *label, char *err, size_t errlen);

/* ---- sets ----------------------------------------------------------------------------------- */
typedef struct ebm_concept_set {
  int count;
  ebm_concept *items[32];
  int owned[32];
} ebm_concept_set;

/* Adds c (the set destroys it when owned). -1 when full or when its name is taken. */
int ebm_concept_set_add(ebm_concept_set *s, ebm_concept *c, int owned, char *err, size_t errlen);
/* Loads the concept models that dir names into s: dir is a folder (its *.safetensors files whose
 * format is vkebm-model, in name order; other formats, such as the judge, and training
 * checkpoints *.ckpt.safetensors are skipped), a model file, or a comma-separated list of
 * either. Each model is sized for evaluations of up to max_rows rows. A folder without concept
 * models leaves s as it was and returns 0; a path that does not exist, an unreadable or corrupt
 * concept model, or two models of one concept is an error (-1, err names the files). */
int ebm_concept_set_load_dir(ebm_concept_set *s, ebm_backend *be, const char *dir, int max_rows,
                             char *err, size_t errlen);
/* The one way a command opens its concepts: the concept models `models` names
 * (ebm_concept_set_load_dir, each sized for max_rows rows per evaluation), or, when models is
 * NULL, the shipped analytic concepts (color, position, size, shape) for resolution x resolution
 * RGB images at precision unit 100 (an object's pixel has standard deviation 0.1 at beta = 1),
 * each taking up to EBM_ANALYTIC_MAX_LABELS distinct labels per evaluation. A models path that
 * does not exist or holds no concept model is an error, never a silent fall-back to the
 * analytic concepts. 0, or -1 with err. */
#define EBM_ANALYTIC_MAX_LABELS 16
int ebm_concept_set_open(ebm_concept_set *s, ebm_backend *be, const char *models, int resolution,
                         int max_rows, char *err, size_t errlen);
/* The paper sampler's defaults for a set of learned models: the smallest step any of them was
 * trained with, and that model's noise. Returns 1 and fills step/noise when some model records
 * its training sampler, else 0 (both untouched). */
int ebm_concept_set_sampler_hint(const ebm_concept_set *s, float *step, float *noise);
/* The models folder a command reads when none is named: $VKEBM_MODELS when set, else ./models
 * when it holds a safetensors file, else the source tree's models/ (the shipped models; the
 * path is fixed at build time), else "models". Written into buf (len >= 8); returns buf. */
const char *ebm_models_dir_default(char *buf, size_t len);

/* The largest sampler step count the set's learned models record (sample_steps), 0 when none
 * does. */
int ebm_concept_set_sample_steps(const ebm_concept_set *s);
/* The chain start of a set: the per-channel Gaussian the first model that records one was
 * trained from (mean/std of EBM_MODEL_MAX_INIT floats; *flat: per image rather than per value).
 * Returns its channel count, or 0 (uniform noise) when no model records one. */
int ebm_concept_set_chain_init(const ebm_concept_set *s, float *mean, float *std, int *flat);
/* Looks a concept up by name or alias (pos, colour, ...); NULL when unknown. */
ebm_concept *ebm_concept_set_find(const ebm_concept_set *s, const char *name);
/* "color, position, shape, size" into out. */
void ebm_concept_set_names(const ebm_concept_set *s, char *out, size_t len);
void ebm_concept_set_clear(ebm_concept_set *s);
/* Canonical name for an alias ("pos" -> "position", "colour" -> "color"), else name itself. */
const char *ebm_concept_canonical_name(const char *name);

/* FNV-1a 64-bit, as 16 hex digits, for provenance hashes. */
void ebm_hash_hex(const void *data, size_t n, uint64_t *state, char out[17]);

#endif
