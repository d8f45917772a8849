/* model.h: model files: an energy network E(x | c) with its concept's label space, as
 * safetensors.
 *
 * A model file holds every parameter by its name (ebm_param.name), "sn_u.<param name>" for each
 * persistent power-iteration vector, optional caller-named extra tensors stored as
 * "extra.<name>" (optimiser state, EMA weights, ...), and __metadata__ (all strings):
 *   format = "vkebm-model", format_version = "1",
 *   resolution, in_channels, base_width, blocks ("1d,2d,2d,2"), label_dim, spectral_norm,
 *   concept ("color"), label_kind ("onehot" | "vector"),
 *   label_names ("red,green,..." for onehot; component names "x,y" for vector),
 *   label_min, label_max (comma-separated floats, vector only), step, seed, data_spec.
 * Loading validates the marker and version, the configuration, the label space, every expected
 * tensor (present, exact shape, finite) and refuses any tensor it does not expect, each with a
 * one-line reason naming the culprit. Writes are atomic (safetensors writer).
 */
#ifndef VKEBM_MODEL_H
#define VKEBM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/net.h"

#define EBM_MODEL_FORMAT "vkebm-model"
#define EBM_MODEL_FORMAT_VERSION "1"
#define EBM_LABEL_NAME_MAX 32

typedef enum ebm_label_kind {
  EBM_LABEL_ONEHOT = 0, /* c is one-hot over label_names (a discrete concept) */
  EBM_LABEL_VECTOR = 1, /* c is raw floats, component k in [label_min[k], label_max[k]] */
} ebm_label_kind;

/* Everything in a model file's metadata; readable without building a network. */
#define EBM_MODEL_MAX_INIT 4

typedef struct ebm_model_info {
  ebm_net_config config;
  char concept[64];                                 /* e.g. "color", "position" */
  ebm_label_kind label_kind;
  char label_names[EBM_MAX_LABEL][EBM_LABEL_NAME_MAX]; /* config.label_dim of them */
  float label_min[EBM_MAX_LABEL], label_max[EBM_MAX_LABEL]; /* vector only */
  int64_t step;                                     /* training iterations done */
  uint64_t seed;                                    /* the run's seed */
  char data_spec[256];                              /* how the training data was made */
  /* The Langevin sampler the model was trained with (metadata langevin_step_lr and
   * langevin_noise; 0 = not recorded): samplers use them as defaults, since a learned energy's
   * gradient scale is only meaningful at the step it was trained against. */
  float langevin_step_lr, langevin_noise;
  /* The number of sampler steps the model's samples are best at (metadata sample_steps; 0 = not
   * recorded): `sample` and `eval` default to it. */
  int sample_steps;
  /* The chains' start the model was trained with: per input channel, a Gaussian clipped to
   * [0,1] (metadata chain_init_mean/chain_init_std); init_channels 0 = uniform noise. */
  int init_channels;
  int init_flat; /* metadata chain_init = flat: one draw per image and channel (flat colour) */
  float init_mean[EBM_MODEL_MAX_INIT], init_std[EBM_MODEL_MAX_INIT];
} ebm_model_info;

/* A named extra tensor (1-D, numel floats). Save reads data; load writes data when the file
 * has it (found = 1) and fails when required and absent or of another size. */
typedef struct ebm_model_extra {
  const char *name; /* stored as "extra.<name>"; [A-Za-z0-9_.-], at most 40 characters */
  float *data;
  size_t numel;
  int required;     /* load: 1 = the file must have it */
  int found;        /* load: set to 1 when read */
} ebm_model_extra;
/* Load with data NULL queries a 1-D extra's size: numel is set from the file (found = 1), so
 * a reader can check what a file asks for before allocating it. */

/* Fills info with a sensible default label space for cfg: vector components "c0".."cN-1" in
 * [-1, 1], concept "unnamed", step 0. */
void ebm_model_info_default(ebm_model_info *info, const ebm_net_config *cfg);
/* Checks the label space against config.label_dim (names present, unique, no commas;
 * min < max for vectors). 0 or -1 with a reason. */
int ebm_model_info_validate(const ebm_model_info *info, char *err, size_t errlen);
/* Index of a label name, -1 when absent. */
int ebm_model_label_index(const ebm_model_info *info, const char *name);

/* Reads only the metadata (and checks the marker, version, config, label space). */
int ebm_model_read_info(const char *path, ebm_model_info *info, char *err, size_t errlen);

/* Reads the metadata and checks the tensors as ebm_model_load does (every one the
 * architecture implies, exact shapes, finite, nothing unexpected, the architecture within the
 * caps a model file may ask for: 2^26 weights, 2^26 activation floats per image), without
 * building a network. 0, or -1 with a reason naming the file. */
int ebm_model_check(const char *path, ebm_model_info *info, char *err, size_t errlen);

/* 1 when path is a readable safetensors file whose metadata names another vkebm format (for
 * example "vkebm-judge"), copying that format into format; 0 otherwise (a concept model, no
 * marker, or unreadable: the loader then says what is wrong). Loaders of a models folder skip
 * foreign files. */
int ebm_model_file_foreign(const char *path, char *format, size_t len);

/* Saves net (parameters, u) with info's label space, step, seed and data_spec; info->config is
 * ignored (the net's own configuration is written). extras may be NULL. 0 or -1 with err. */
int ebm_model_save(const char *path, ebm_net *net, const ebm_model_info *info,
                   const ebm_model_extra *extras, int nextras, char *err, size_t errlen);

/* Loads a model file into a new network on be for batches up to max_batch; the normalised
 * weights are computed from the saved u with update_u = 0 (see ebm_net_refresh). info (optional)
 * receives the metadata; extras (optional) are filled as described above. 0 or -1 with err. */
int ebm_model_load(const char *path, ebm_backend *be, int max_batch, ebm_net **net,
                   ebm_model_info *info, ebm_model_extra *extras, int nextras, char *err,
                   size_t errlen);

#endif
