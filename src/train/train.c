/* train.c: the contrastive-divergence trainer (include/vkebm/train.h): configuration, state,
 * one iteration, checkpoints.
 *
 * Owns the device tensors of a run (positives and negatives side by side in one [2B,3,R,R]
 * tensor so a single forward/backward of the trained network covers both; labels [2B,L];
 * Adam moments; the EMA network), the host replay buffer (uint8) and the dataset of a
 * `vkebm data` folder. Every random draw is vkebm_rng_* keyed by (seed ^ stream, step, chain,
 * index), which is what makes a resumed run bit-identical.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkebm/celeba.h"
#include "vkebm/image.h"
#include "vkebm/fileio.h"
#include "vkebm/sampler.h"
#include "vkebm/scene.h"
#include "vkebm/scene_shade.h"
#include "vkebm/shared.h"
#include "vkebm/train.h"
#include "vkebm/train_comm.h"
#include "train_shard.h"

/* RNG streams (xor-ed into the seed). */
#define STREAM_REPLAY_PICK 0x52504b31u
#define STREAM_INIT 0x494e4954u
#define STREAM_LANGEVIN 0x4c414e47u
#define STREAM_INSERT 0x494e5352u
#define STREAM_DATA 0x44415441u
#define STREAM_LABEL 0x4c41424cu

#define TRAIN_STATE_VERSION 1
#define TRAIN_STATE_FLOATS 32

typedef struct frozen_model {
  ebm_net *net;
  ebm_model_info info;
  int concept;           /* scene_concept of the model, -1 when unknown */
  int label_from_data;
  float label[EBM_MAX_LABEL];
  ebm_buffer *labels;    /* [B, L_f] */
} frozen_model;

struct ebm_trainer {
  ebm_backend *be;
  ebm_train_config cfg;
  scene_spec spec;
  int concept;           /* scene_concept; -1 for a CelebA attribute */
  ebm_model_info label_info;
  ebm_net *net;          /* trained, max batch 2B */
  ebm_net *ema;          /* sampling weights, max batch B; NULL when cfg.ema == 0 */
  frozen_model frozen[EBM_TRAIN_MAX_FROZEN];
  int nfrozen;
  size_t nparams, nsn_u, npix; /* npix = 3 R R */
  int64_t step;

  ebm_buffer *x;         /* [2B, 3, R, R]: positives then negatives */
  ebm_buffer *c;         /* [2B, L] */
  ebm_buffer *energy;    /* [2B] */
  ebm_buffer *dE;        /* [2B] */
  ebm_buffer *ones;      /* [B] */
  ebm_buffer *e_tmp;     /* [B] */
  ebm_buffer *dx;        /* [B, 3, R, R] */
  ebm_buffer *dx_tmp;    /* [B, 3, R, R] */
  ebm_buffer *scenes;    /* [B, VKEBM_SCENE_FLOATS] */
  ebm_buffer *adam_m, *adam_v; /* [nparams] */
  ebm_buffer *norm;      /* [1] */

  /* host */
  ebm_train_profile *profile; /* NULL unless `bench --train` asks */
  uint8_t *replay;       /* [buffer_size, npix] */
  int64_t replay_count;  /* images stored (<= buffer_size) */
  int64_t replay_seen;   /* images ever offered (reservoir) */
  float *h_x;            /* [B, npix] */
  float *h_c;            /* [B, L] */
  float *h_cand;         /* [K, B, L] label-contrastive candidates (k = 0: the true label) */
  float *h_cand_e;       /* [K, B] their energies, then dL/dE */
  float *h_frozen_c;     /* [B, EBM_MAX_LABEL] */
  float *h_scenes;       /* [B, VKEBM_SCENE_FLOATS] */
  scene_desc *h_desc;    /* [B] */
  /* dataset in memory (data_dir, or CelebA: --data celeba:DIR); NULL when rendered */
  uint8_t *data_images;  /* [n, npix] CHW uint8 */
  float *data_labels;    /* [n, L] */
  scene_desc *data_desc; /* [n] (object 0 filled: for frozen labels) */
  int64_t data_n;

  /* data parallel (train_comm.h): comm NULL = one process (rank 0 of 1). This rank's chains are
   * g = chain0 + b of a global batch of B * nranks; replay holds its shard of the buffer (slot s
   * at s / nranks when s % nranks == rank). */
  const ebm_train_comm *comm;
  int rank, nranks;
  int64_t chain0;
  int64_t *plan;         /* [B * nranks] per global chain: the buffer slot it reads or writes */
  uint8_t *xfer;         /* [B + 2 B nranks, npix]: this rank's images, send and receive scratch */
  float *h_grad;         /* [nparams] the gradient on the host, averaged over the ranks */
};


/* ---- configuration ------------------------------------------------------------------------ */

static const char *canonical_concept(int c) {
  return c == SCENE_CONCEPT_COLOUR ? "color" : scene_concept_name((scene_concept)c);
}

int ebm_train_config_default(ebm_train_config *cfg, const char *concept, const char *data_spec,
                             const char *preset, int size, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  /* CelebA (--data celeba:DIR): the concept is an attribute of the data set, label (no, yes) */
  const int celeba = celeba_spec_dir(data_spec) != NULL;
  int c = celeba ? -1 : scene_concept_parse(concept);
  if (celeba && !celeba_name_ok(concept))
    return io_fail(err, errlen, "'%.40s' cannot be a CelebA attribute (letters, digits and _)", concept);
  if (!celeba && c < 0)
    return io_fail(err, errlen, "unknown concept '%.40s' (position, size, shape, color, joint; or "
                             "an attribute with --data celeba:DIR)", concept);
  snprintf(cfg->concept, sizeof cfg->concept, "%s", celeba ? concept : canonical_concept(c));
  snprintf(cfg->data_spec, sizeof cfg->data_spec, "%s", data_spec ? data_spec : "general");
  if (strlen(data_spec ? data_spec : "") >= sizeof cfg->data_spec)
    return io_fail(err, errlen, "--data: longer than %zu characters", sizeof cfg->data_spec - 1);
  if (ebm_net_config_preset(&cfg->net, preset,
                            celeba ? CELEBA_LABEL_DIM : scene_label_dim((scene_concept)c)) != 0)
    return io_fail(err, errlen, "unknown network preset '%.40s' (tiny, small32, default32, paper64)", preset);
  if (size > 0) cfg->net.resolution = size;
  cfg->batch = 16;
  cfg->lr = 3e-4f;
  cfg->beta1 = 0.0f;
  cfg->beta2 = 0.99f;
  cfg->eps = 1e-8f;
  cfg->adam_clip = 1;
  cfg->grad_clip = 0.0f;
  cfg->langevin_steps = 60;
  cfg->step_lr = 100.0f;
  cfg->noise = 0.001f;
  cfg->replay = 0.95f;
  cfg->buffer_size = 10000;
  cfg->reservoir = 0;
  cfg->alpha = 1.0f;
  cfg->ema = 0.99f;
  cfg->diverge_energy = 1e4f;
  cfg->label_weight = 0.0f;
  cfg->label_temp = 0.01f;
  cfg->label_negatives = 4;
  cfg->sample_steps = 0; /* 0: 5 x langevin_steps, decided when the model is saved */
  cfg->seed = 1;
  return 0;
}

int ebm_train_config_recipe(ebm_train_config *cfg, const char *name) {
  if (!strcmp(name, "paper")) return 0;
  if (strcmp(name, "practical")) return -1;
  cfg->langevin_steps = 20;
  cfg->step_lr = 10.0f;
  cfg->noise = 0.005f;
  cfg->buffer_size = 1000;
  cfg->lr = 5e-4f;
  cfg->ema = 0.0f;
  cfg->chain_init = 2; /* flat */
  cfg->net.coord_channels = 1;
  cfg->net.head_flatten = 1;
  cfg->input_norm = 1;
  return 0;
}

int ebm_train_config_validate(const ebm_train_config *cfg, char *err, size_t errlen) {
  char why[256];
  if (ebm_net_config_validate(&cfg->net, why, sizeof why) != 0)
    return io_fail(err, errlen, "network: %s", why);
  const int celeba = celeba_spec_dir(cfg->data_spec) != NULL;
  int c = celeba ? -1 : scene_concept_parse(cfg->concept);
  if (!celeba && c < 0) return io_fail(err, errlen, "unknown concept '%.40s'", cfg->concept);
  const int want_dim = celeba ? CELEBA_LABEL_DIM : scene_label_dim((scene_concept)c);
  if (cfg->net.label_dim != want_dim)
    return io_fail(err, errlen, "label_dim %d does not match concept %s (%d)", cfg->net.label_dim,
                cfg->concept, want_dim);
  if (celeba && (!celeba_name_ok(cfg->concept) || !celeba_spec_dir(cfg->data_spec)[0] || cfg->data_dir[0]))
    return io_fail(err, errlen, "celeba: needs a folder (--data celeba:DIR), an attribute as the "
                             "concept, and no --data-dir");
  if (cfg->net.in_channels != 3) return io_fail(err, errlen, "in_channels must be 3");
  if (cfg->net.resolution < 8 || cfg->net.resolution > 256)
    return io_fail(err, errlen, "size %d outside 8..256", cfg->net.resolution);
  if (cfg->batch < 1 || cfg->batch > 4096) return io_fail(err, errlen, "batch %d outside 1..4096", cfg->batch);
  if (!(cfg->lr > 0 && cfg->lr < 1)) return io_fail(err, errlen, "lr %g outside (0, 1)", cfg->lr);
  if (!(cfg->beta1 >= 0 && cfg->beta1 < 1)) return io_fail(err, errlen, "beta1 %g outside [0, 1)", cfg->beta1);
  if (!(cfg->beta2 >= 0 && cfg->beta2 < 1)) return io_fail(err, errlen, "beta2 %g outside [0, 1)", cfg->beta2);
  if (!(cfg->eps > 0)) return io_fail(err, errlen, "eps must be positive");
  if (!(cfg->grad_clip >= 0 && isfinite(cfg->grad_clip)))
    return io_fail(err, errlen, "grad clip %g must be >= 0 (0 = off)", cfg->grad_clip);
  if (cfg->langevin_steps < 1 || cfg->langevin_steps > 100000)
    return io_fail(err, errlen, "langevin steps %d outside 1..100000", cfg->langevin_steps);
  if (!(cfg->step_lr >= 0 && isfinite(cfg->step_lr))) return io_fail(err, errlen, "step lr must be >= 0");
  if (!(cfg->noise >= 0 && isfinite(cfg->noise))) return io_fail(err, errlen, "noise must be >= 0");
  if (!(cfg->replay >= 0 && cfg->replay <= 1)) return io_fail(err, errlen, "replay %g outside [0, 1]", cfg->replay);
  if (cfg->buffer_size < 1 || cfg->buffer_size > 10000000)
    return io_fail(err, errlen, "buffer %d outside 1..10000000", cfg->buffer_size);
  if (!(cfg->alpha >= 0 && isfinite(cfg->alpha))) return io_fail(err, errlen, "alpha must be >= 0");
  if (!(cfg->ema >= 0 && cfg->ema < 1)) return io_fail(err, errlen, "ema %g outside [0, 1)", cfg->ema);
  if (!(cfg->diverge_energy > 0)) return io_fail(err, errlen, "divergence threshold must be positive");
  if (!(cfg->label_weight >= 0 && isfinite(cfg->label_weight)))
    return io_fail(err, errlen, "label weight %g must be >= 0", cfg->label_weight);
  if (!(cfg->label_temp > 0 && isfinite(cfg->label_temp)))
    return io_fail(err, errlen, "label temperature %g must be positive", cfg->label_temp);
  if (cfg->sample_steps < 0 || cfg->sample_steps > 1000000)
    return io_fail(err, errlen, "sample steps %d outside 0..1000000", cfg->sample_steps);
  if (cfg->label_negatives < 1 || cfg->label_negatives > 63)
    return io_fail(err, errlen, "label negatives %d outside 1..63", cfg->label_negatives);
  if (c == SCENE_CONCEPT_JOINT && cfg->label_weight > 0)
    return io_fail(err, errlen, "the label-contrastive term has no candidate labels for the joint "
                             "concept (use --label-weight 0)");
  if (!cfg->data_dir[0] && !celeba) {
    scene_spec spec;
    if (scene_spec_parse(cfg->data_spec, &spec, why, sizeof why) != 0)
      return io_fail(err, errlen, "data: %s (or celeba:DIR)", why);
  }
  return 0;
}

int ebm_train_label_info(const ebm_train_config *cfg, ebm_model_info *info, char *err,
                         size_t errlen) {
  ebm_model_info_default(info, &cfg->net);
  const int celeba = celeba_spec_dir(cfg->data_spec) != NULL;
  int c = celeba ? -1 : scene_concept_parse(cfg->concept);
  if (!celeba && c < 0) return io_fail(err, errlen, "unknown concept '%.40s'", cfg->concept);
  snprintf(info->concept, sizeof info->concept, "%s", cfg->concept);
  info->label_kind = (celeba || c == SCENE_CONCEPT_SHAPE || c == SCENE_CONCEPT_COLOUR)
                         ? EBM_LABEL_ONEHOT : EBM_LABEL_VECTOR;
  const char *names = celeba ? CELEBA_LABEL_NAMES : scene_label_names((scene_concept)c);
  int k = 0;
  for (const char *p = names; *p && k < EBM_MAX_LABEL; k++) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len >= EBM_LABEL_NAME_MAX) len = EBM_LABEL_NAME_MAX - 1;
    memcpy(info->label_names[k], p, len);
    info->label_names[k][len] = 0;
    p = e ? e + 1 : p + strlen(p);
  }
  if (k != cfg->net.label_dim)
    return io_fail(err, errlen, "concept %s has %d label names for label_dim %d", cfg->concept, k,
                cfg->net.label_dim);
  if (c == SCENE_CONCEPT_POSITION || c == SCENE_CONCEPT_JOINT) {
    for (int i = 0; i < 2; i++) info->label_min[i] = -1.0f, info->label_max[i] = 1.0f;
  }
  if (c == SCENE_CONCEPT_SIZE || c == SCENE_CONCEPT_JOINT) {
    scene_spec spec;
    char why[256];
    float lo = 0.3f, hi = 0.7f;
    if (!cfg->data_dir[0] && scene_spec_parse(cfg->data_spec, &spec, why, sizeof why) == 0 &&
        spec.size_min < spec.size_max)
      lo = spec.size_min, hi = spec.size_max;
    const int at = c == SCENE_CONCEPT_JOINT ? 2 : 0;
    info->label_min[at] = lo;
    info->label_max[at] = hi;
  }
  if (c == SCENE_CONCEPT_JOINT) /* the shape and colour one-hots, as numbers */
    for (int i = 3; i < cfg->net.label_dim; i++) info->label_min[i] = 0.0f, info->label_max[i] = 1.0f;
  if (cfg->data_dir[0])
    snprintf(info->data_spec, sizeof info->data_spec, "dir:%.240s", cfg->data_dir);
  else
    snprintf(info->data_spec, sizeof info->data_spec, "%.250s", cfg->data_spec);
  info->seed = cfg->seed;
  return ebm_model_info_validate(info, err, errlen);
}

/* The hyperparameters and counters in a checkpoint's train.state extra (floats; integers
 * below 2^24 are exact). The seed and step live in the model metadata. */
static void state_pack(const ebm_trainer *tr, float *s) {
  const ebm_train_config *c = &tr->cfg;
  memset(s, 0, TRAIN_STATE_FLOATS * sizeof(float));
  s[0] = TRAIN_STATE_VERSION;
  s[1] = (float)c->batch * tr->nranks; /* the global batch: any rank count dividing it resumes */
  s[2] = c->lr;
  s[3] = c->beta1;
  s[4] = c->beta2;
  s[5] = c->eps;
  s[6] = (float)c->adam_clip;
  s[7] = c->grad_clip;
  s[8] = (float)c->langevin_steps;
  s[9] = c->step_lr;
  s[10] = c->noise;
  s[11] = c->replay;
  s[12] = (float)c->buffer_size;
  s[13] = (float)c->reservoir;
  s[14] = c->alpha;
  s[15] = c->ema;
  s[16] = c->diverge_energy;
  /* counters as two 24-bit halves each */
  s[17] = (float)(tr->replay_count & 0xffffff);
  s[18] = (float)(tr->replay_count >> 24);
  s[19] = (float)(tr->replay_seen & 0xffffff);
  s[20] = (float)(tr->replay_seen >> 24);
  s[21] = (float)c->chain_init;
  for (int k = 0; k < 3; k++) s[22 + k] = c->init_mean[k], s[25 + k] = c->init_std[k];
  s[28] = c->label_weight;
  s[29] = c->label_temp;
  s[30] = (float)c->label_negatives;
  s[31] = (float)c->sample_steps;
}

/* One integer field of train.state: a whole number in lo..hi, checked before the cast (a float
 * outside int's range makes the cast undefined). */
static int state_int(const float *s, int i, const char *name, double lo, double hi, int64_t *out,
                     char *err, size_t errlen) {
  double v = s[i];
  if (!(v >= lo && v <= hi) || v != floor(v))
    return io_fail(err, errlen, "train.state: %s = %.9g is not an integer in %.0f..%.0f", name, v,
                lo, hi);
  *out = (int64_t)v;
  return 0;
}

/* Every field is checked here, each refusal naming it: a crafted file must not reach the
 * trainer with a counter that divides by zero or indexes past the replay buffer. Floats are
 * checked by ebm_train_config_validate afterwards. */
static int state_unpack(ebm_train_config *c, int64_t *count, int64_t *seen, const float *s,
                        char *err, size_t errlen) {
  for (int i = 0; i < TRAIN_STATE_FLOATS; i++)
    if (!isfinite(s[i])) return io_fail(err, errlen, "train.state[%d] is not finite", i);
  if (s[0] != TRAIN_STATE_VERSION)
    return io_fail(err, errlen, "train.state version %g, expected %d", s[0], TRAIN_STATE_VERSION);
  int64_t batch = 0, adam_clip = 0, lsteps = 0, buffer = 0, reservoir = 0, chain_init = 0;
  int64_t count_lo = 0, count_hi = 0, seen_lo = 0, seen_hi = 0;
  const double half = 16777215.0; /* each counter is two 24-bit halves */
  if (state_int(s, 1, "batch", 1, 4096, &batch, err, errlen) ||
      state_int(s, 6, "adam_clip", 0, 1, &adam_clip, err, errlen) ||
      state_int(s, 8, "langevin_steps", 1, 100000, &lsteps, err, errlen) ||
      state_int(s, 12, "buffer_size", 1, 10000000, &buffer, err, errlen) ||
      state_int(s, 13, "reservoir", 0, 1, &reservoir, err, errlen) ||
      state_int(s, 17, "replay_count (low half)", 0, half, &count_lo, err, errlen) ||
      state_int(s, 18, "replay_count (high half)", 0, half, &count_hi, err, errlen) ||
      state_int(s, 19, "replay_seen (low half)", 0, half, &seen_lo, err, errlen) ||
      state_int(s, 20, "replay_seen (high half)", 0, half, &seen_hi, err, errlen) ||
      state_int(s, 21, "chain_init", 0, 2, &chain_init, err, errlen))
    return -1;
  *count = count_lo + (count_hi << 24);
  *seen = seen_lo + (seen_hi << 24);
  /* ring and reservoir both fill the buffer first: count = min(seen, buffer) */
  if (*count > buffer)
    return io_fail(err, errlen, "train.state: replay_count %lld exceeds the buffer size %lld",
                (long long)*count, (long long)buffer);
  if (*count != (*seen < buffer ? *seen : buffer))
    return io_fail(err, errlen, "train.state: replay_count %lld does not match replay_seen %lld "
                             "with a buffer of %lld", (long long)*count, (long long)*seen,
                (long long)buffer);
  for (int k = 0; k < 3; k++)
    if (!(s[22 + k] >= 0 && s[22 + k] <= 1 && s[25 + k] >= 0 && s[25 + k] <= 1))
      return io_fail(err, errlen, "train.state: init_mean/init_std[%d] outside [0, 1]", k);
  c->batch = (int)batch;
  c->lr = s[2];
  c->beta1 = s[3];
  c->beta2 = s[4];
  c->eps = s[5];
  c->adam_clip = (int)adam_clip;
  c->grad_clip = s[7];
  c->langevin_steps = (int)lsteps;
  c->step_lr = s[9];
  c->noise = s[10];
  c->replay = s[11];
  c->buffer_size = (int)buffer;
  c->reservoir = (int)reservoir;
  c->alpha = s[14];
  c->ema = s[15];
  c->diverge_energy = s[16];
  c->chain_init = (int)chain_init;
  for (int k = 0; k < 3; k++) c->init_mean[k] = s[22 + k], c->init_std[k] = s[25 + k];
  /* checkpoints written before the label-contrastive term hold zeros there: off. A nonzero
   * label_negatives must be a count (cast after the check); the floats are checked by
   * ebm_train_config_validate. */
  int64_t negatives = 4;
  if (s[30] != 0 && state_int(s, 30, "label_negatives", 1, 63, &negatives, err, errlen)) return -1;
  c->label_weight = s[28];
  c->label_temp = s[29] > 0 ? s[29] : 0.01f;
  c->label_negatives = (int)negatives;
  int64_t sample_steps = 0;
  if (state_int(s, 31, "sample_steps", 0, 1000000, &sample_steps, err, errlen)) return -1;
  c->sample_steps = (int)sample_steps;
  return 0;
}

/* ---- frozen models ------------------------------------------------------------------------ */

int ebm_train_frozen_parse(const char *arg, ebm_train_frozen *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *eq = strrchr(arg, '=');
  if (!eq || eq == arg || !eq[1])
    return io_fail(err, errlen, "--frozen '%.80s': expected MODEL=LABEL", arg);
  size_t plen = (size_t)(eq - arg);
  if (plen >= sizeof out->path) return io_fail(err, errlen, "--frozen: path too long");
  memcpy(out->path, arg, plen);
  out->path[plen] = 0;
  const char *path = out->path;
  ebm_model_info info;
  char why[512];
  if (ebm_model_read_info(path, &info, why, sizeof why) != 0)
    return io_fail(err, errlen, "--frozen %s: %s", path, why);
  const char *label = eq + 1;
  if (!strcmp(label, "data")) {
    if (scene_concept_parse(info.concept) < 0)
      return io_fail(err, errlen, "--frozen %s: concept '%s' is not a scene concept, so its label cannot come from the data",
                  path, info.concept);
    out->label_from_data = 1;
    return 0;
  }
  const int L = info.config.label_dim;
  if (info.label_kind == EBM_LABEL_ONEHOT) {
    int k = ebm_model_label_index(&info, label);
    if (k < 0) return io_fail(err, errlen, "--frozen %s: no label '%.40s' in this %s model", path, label, info.concept);
    out->label[k] = 1.0f;
    return 0;
  }
  const char *p = label;
  for (int i = 0; i < L; i++) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v) || (i < L - 1 ? *end != ',' : *end != 0))
      return io_fail(err, errlen, "--frozen %s: label '%.40s' must be %d comma-separated numbers", path, label, L);
    out->label[i] = (float)v;
    p = end + 1;
  }
  return 0;
}

/* ---- data --------------------------------------------------------------------------------- */

static int read_dataset(ebm_trainer *tr, char *err, size_t errlen) {
  char path[1100], why[512];
  snprintf(path, sizeof path, "%s/labels.csv", tr->cfg.data_dir);
  void *text = NULL;
  size_t n = 0;
  if (io_read_file(path, (size_t)1 << 30, &text, &n, why, sizeof why) != 0)
    return io_fail(err, errlen, "--data-dir: %s", why);
  char *s = realloc(text, n + 1);
  if (!s) {
    free(text);
    return io_fail(err, errlen, "out of memory");
  }
  s[n] = 0;
  int64_t rows = 0;
  for (char *p = s; *p; p++) rows += *p == '\n';
  const int R = tr->cfg.net.resolution, L = tr->cfg.net.label_dim;
  tr->data_images = malloc((size_t)(rows ? rows : 1) * tr->npix);
  tr->data_labels = malloc((size_t)(rows ? rows : 1) * L * sizeof(float));
  tr->data_desc = calloc((size_t)(rows ? rows : 1), sizeof(scene_desc));
  int rc = 0;
  if (!tr->data_images || !tr->data_labels || !tr->data_desc) {
    rc = io_fail(err, errlen, "out of memory for the dataset");
    goto done;
  }
  int line_no = 0;
  char csv_seed[16] = ""; /* from the '#' line `vkebm data` writes: "...; seed=S; ..." */
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    line_no++;
    if (line[0] == '#') {
      const char *sd = strstr(line, "; seed=");
      if (sd) sscanf(sd + 7, "%15[0-9]", csv_seed);
      continue;
    }
    if (!strncmp(line, "index", 5)) continue;
    unsigned index;
    int nobj, used;
    float x, y, size;
    char shape[32], colour[32];
    if (sscanf(line, "%u,%d,%f,%f,%f,%31[^,],%31[^,\r\n]%n", &index, &nobj, &x, &y, &size, shape,
               colour, &used) != 7 || nobj < 1) {
      rc = io_fail(err, errlen, "%s line %d: expected index,nobj,x,y,size,shape,colour", path, line_no);
      goto done;
    }
    scene_desc *d = &tr->data_desc[tr->data_n];
    d->nobj = 1;
    d->obj[0].x = x;
    d->obj[0].y = y;
    d->obj[0].size = size;
    d->obj[0].shape = scene_shape_from_name(shape);
    d->obj[0].colour = scene_colour_from_name(colour);
    if (d->obj[0].shape < 0 || d->obj[0].colour < 0) {
      rc = io_fail(err, errlen, "%s line %d: unknown shape '%s' or colour '%s'", path, line_no, shape, colour);
      goto done;
    }
    scene_label(d, 0, (scene_concept)tr->concept, tr->data_labels + (size_t)tr->data_n * L);
    char png[1200];
    snprintf(png, sizeof png, "%s/%06u.png", tr->cfg.data_dir, index);
    uint8_t *rgb = NULL;
    int W = 0, H = 0, ntext = 0;
    img_text *text = NULL;
    if (img_read_png_rgb8(png, &rgb, &W, &H, &text, &ntext, why, sizeof why) != 0) {
      rc = io_fail(err, errlen, "--data-dir: %s", why);
      goto done;
    }
    /* Images from `vkebm data` carry their own index, seed and labels: they must be the row's,
     * or the folder mixes two runs (an interrupted one over an older dataset). */
    const char *row_labels = line, *mismatch = NULL;
    for (int k = 0; k < 2 && row_labels; k++) row_labels = strchr(row_labels, ',') ? strchr(row_labels, ',') + 1 : NULL;
    char index_s[16];
    snprintf(index_s, sizeof index_s, "%u", index);
    for (int t = 0; t < ntext && !mismatch; t++) {
      const char *k = text[t].key, *v = text[t].value;
      if (!strcmp(k, "vkebm.index") && strcmp(v, index_s)) mismatch = "index";
      else if (!strcmp(k, "vkebm.seed") && csv_seed[0] && strcmp(v, csv_seed)) mismatch = "seed";
      else if (!strcmp(k, "vkebm.labels") && row_labels &&
               (strlen(v) != strcspn(row_labels, "\r") || strncmp(v, row_labels, strlen(v))))
        mismatch = "labels";
    }
    img_text_free(text, ntext);
    if (mismatch) {
      free(rgb);
      rc = io_fail(err, errlen, "--data-dir: %s: its %s differs from labels.csv line %d: the folder "
                             "mixes two `vkebm data` runs (regenerate it)", png, mismatch, line_no);
      goto done;
    }
    if (W != R || H != R) {
      free(rgb);
      rc = io_fail(err, errlen, "%s is %dx%d, the network takes %dx%d (--size)", png, W, H, R, R);
      goto done;
    }
    uint8_t *dst = tr->data_images + (size_t)tr->data_n * tr->npix;
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < R * R; p++) dst[(size_t)ch * R * R + p] = rgb[(size_t)p * 3 + ch];
    free(rgb);
    tr->data_n++;
  }
  if (tr->data_n == 0) rc = io_fail(err, errlen, "--data-dir %s: no images in labels.csv", tr->cfg.data_dir);
done:
  free(s);
  return rc;
}

/* CelebA (--data celeba:DIR): every listed image, cropped and resized to R x R, with the
 * concept's attribute as the one-hot label (no, yes); scene descriptions stay zero (frozen models
 * take given labels there). */
static int read_celeba(ebm_trainer *tr, const char *dir, char *err, size_t errlen) {
  celeba_data d;
  if (celeba_load(dir, tr->cfg.concept, tr->cfg.net.resolution, &d, err, errlen) != 0) return -1;
  tr->data_images = d.images; /* [n, 3, R, R], as read_dataset's */
  tr->data_n = d.n;
  tr->data_labels = malloc((size_t)d.n * CELEBA_LABEL_DIM * sizeof(float));
  tr->data_desc = calloc((size_t)d.n, sizeof(scene_desc));
  if (!tr->data_labels || !tr->data_desc) {
    free(d.yes);
    return io_fail(err, errlen, "out of memory for the labels of %d images", d.n);
  }
  for (int i = 0; i < d.n; i++) {
    tr->data_labels[(size_t)i * 2] = d.yes[i] ? 0.0f : 1.0f;
    tr->data_labels[(size_t)i * 2 + 1] = d.yes[i] ? 1.0f : 0.0f;
  }
  free(d.yes);
  return 0;
}

/* Positives of iteration `step` into x[0:B], labels into c[0:B] and the frozen label buffers. */
static int load_positives(ebm_trainer *tr) {
  const int B = tr->cfg.batch, L = tr->cfg.net.label_dim, R = tr->cfg.net.resolution;
  const uint32_t seed = tr->cfg.seed, step = (uint32_t)tr->step;
  const uint32_t G = (uint32_t)(B * tr->nranks), b0 = (uint32_t)tr->chain0; /* global batch */
  if (!tr->data_images) {
    for (int b = 0; b < B; b++) {
      scene_sample(&tr->spec, seed, step * G + b0 + (uint32_t)b, &tr->h_desc[b]);
      scene_pack(&tr->h_desc[b], tr->h_scenes + (size_t)b * VKEBM_SCENE_FLOATS);
      scene_label(&tr->h_desc[b], 0, (scene_concept)tr->concept, tr->h_c + (size_t)b * L);
    }
    if (ebm_upload(tr->be, ebm_ref_of(tr->scenes), tr->h_scenes, (size_t)B * VKEBM_SCENE_FLOATS))
      return -1;
    ebm_scene_render(tr->be, ebm_ref_of(tr->x), ebm_ref_of(tr->scenes), B, R);
  } else {
    for (int b = 0; b < B; b++) {
      uint32_t r = vkebm_rng_u32(seed ^ STREAM_DATA, step, b0 + (uint32_t)b, 0);
      int64_t i = (int64_t)(r % (uint32_t)tr->data_n);
      const uint8_t *src = tr->data_images + (size_t)i * tr->npix;
      for (size_t p = 0; p < tr->npix; p++) tr->h_x[(size_t)b * tr->npix + p] = src[p] * (1.0f / 255.0f);
      memcpy(tr->h_c + (size_t)b * L, tr->data_labels + (size_t)i * L, L * sizeof(float));
      tr->h_desc[b] = tr->data_desc[i];
    }
    if (ebm_upload(tr->be, ebm_ref_of(tr->x), tr->h_x, (size_t)B * tr->npix)) return -1;
  }
  /* negatives take the positives' labels */
  if (ebm_upload(tr->be, ebm_ref_of(tr->c), tr->h_c, (size_t)B * L) ||
      ebm_upload(tr->be, ebm_at(ebm_ref_of(tr->c), (size_t)B * L), tr->h_c, (size_t)B * L))
    return -1;
  for (int f = 0; f < tr->nfrozen; f++) {
    frozen_model *fm = &tr->frozen[f];
    const int Lf = fm->info.config.label_dim;
    for (int b = 0; b < B; b++) {
      float *dst = tr->h_frozen_c + (size_t)b * Lf;
      if (fm->label_from_data) scene_label(&tr->h_desc[b], 0, (scene_concept)fm->concept, dst);
      else memcpy(dst, fm->label, Lf * sizeof(float));
    }
    if (ebm_upload(tr->be, ebm_ref_of(fm->labels), tr->h_frozen_c, (size_t)B * Lf)) return -1;
  }
  return 0;
}

/* Per-channel mean and standard deviation of the first 256 positives of the data stream
 * (scenes 0..255 of the spec, or the first images of the folder), for chain_init = 1. */
static int fit_chain_init(ebm_trainer *tr, char *err, size_t errlen) {
  const int R = tr->cfg.net.resolution, HW = R * R;
  int n = 256;
  if (tr->data_images && tr->data_n < n) n = (int)tr->data_n;
  float *img = malloc(sizeof(float) * (size_t)3 * HW), *packed = malloc(sizeof(float) * VKEBM_SCENE_FLOATS);
  if (!img || !packed) {
    free(img), free(packed);
    return io_fail(err, errlen, "out of memory fitting the chain start");
  }
  double s1[3] = {0}, s2[3] = {0};
  for (int i = 0; i < n; i++) {
    if (tr->data_images) {
      const uint8_t *src = tr->data_images + (size_t)i * tr->npix;
      for (size_t p = 0; p < tr->npix; p++) img[p] = src[p] * (1.0f / 255.0f);
    } else {
      scene_desc d;
      scene_sample(&tr->spec, tr->cfg.seed, (uint32_t)i, &d);
      scene_pack(&d, packed);
      scene_render_cpu(img, packed, 1, R, NULL, 0);
    }
    for (int c = 0; c < 3; c++) {
      double im = 0; /* flat (chain_init 2): statistics of the images' mean colours */
      for (int p = 0; p < HW; p++) {
        const double v = img[(size_t)c * HW + p];
        if (tr->cfg.chain_init == 2) im += v;
        else s1[c] += v, s2[c] += v * v;
      }
      if (tr->cfg.chain_init == 2) im /= HW, s1[c] += im, s2[c] += im * im;
    }
  }
  const double m = tr->cfg.chain_init == 2 ? (double)n : (double)n * HW;
  for (int c = 0; c < 3; c++) {
    const double mean = s1[c] / m, var = s2[c] / m - mean * mean;
    tr->cfg.init_mean[c] = (float)mean;
    tr->cfg.init_std[c] = (float)sqrt(var > 0 ? var : 0);
  }
  free(img), free(packed);
  return 0;
}

/* in_shift / in_scale of a fresh network: the mean and 1/std of every pixel value of the first
 * 256 positives (scenes 0..255 of the spec, or the folder's first images). */
static int fit_input_norm(ebm_trainer *tr, char *err, size_t errlen) {
  const int R = tr->cfg.net.resolution;
  const size_t npix = (size_t)3 * R * R;
  int n = 256;
  if (tr->data_images && tr->data_n < n) n = (int)tr->data_n;
  float *img = malloc(sizeof(float) * npix), *packed = malloc(sizeof(float) * VKEBM_SCENE_FLOATS);
  if (!img || !packed) {
    free(img), free(packed);
    return io_fail(err, errlen, "out of memory fitting the input normalisation");
  }
  double s1 = 0, s2 = 0;
  for (int i = 0; i < n; i++) {
    if (tr->data_images) {
      const uint8_t *src = tr->data_images + (size_t)i * npix;
      for (size_t p = 0; p < npix; p++) img[p] = src[p] * (1.0f / 255.0f);
    } else {
      scene_desc d;
      scene_sample(&tr->spec, tr->cfg.seed, (uint32_t)i, &d);
      scene_pack(&d, packed);
      scene_render_cpu(img, packed, 1, R, NULL, 0);
    }
    for (size_t p = 0; p < npix; p++) s1 += img[p], s2 += (double)img[p] * img[p];
  }
  free(img), free(packed);
  const double m = s1 / ((double)n * npix), var = s2 / ((double)n * npix) - m * m;
  const double sd = sqrt(var > 0 ? var : 0);
  if (!(sd > 1e-3))
    return io_fail(err, errlen, "--input-norm: the data's pixels do not vary (std %g)", sd);
  tr->cfg.net.in_shift = (float)m;
  tr->cfg.net.in_scale = (float)(1.0 / sd);
  return 0;
}

/* Chain starts: from the buffer (dequantised with uniform noise), or fresh: uniform noise or
 * the data's channel Gaussian (chain_init). Chain g of the global batch: every rank plans the
 * picks of all of them, fetches its own chains' images from the ranks keeping those slots
 * (train_shard.c; one process: a copy), then starts its chains g = chain0 + b. */
static int init_negatives(ebm_trainer *tr) {
  const int B = tr->cfg.batch, G = B * tr->nranks;
  const uint32_t seed = tr->cfg.seed, step = (uint32_t)tr->step;
  for (int g = 0; g < G; g++) {
    const float pick = vkebm_rng_uniform(seed ^ STREAM_REPLAY_PICK, step, (uint32_t)g, 0);
    tr->plan[g] = -1;
    if (tr->replay_count > 0 && pick < tr->cfg.replay) {
      uint32_t r = vkebm_rng_u32(seed ^ STREAM_REPLAY_PICK, step, (uint32_t)g, 1);
      tr->plan[g] = (int64_t)(r % (uint32_t)tr->replay_count);
    }
  }
  uint8_t *picked = tr->xfer, *scratch = tr->xfer + (size_t)B * tr->npix;
  if (shard_fetch(tr->comm, tr->replay, tr->npix, tr->plan, B, picked, scratch,
                  scratch + (size_t)G * tr->npix) != 0)
    return -1;
  for (int b = 0; b < B; b++) {
    float *dst = tr->h_x + (size_t)b * tr->npix;
    const uint32_t g = (uint32_t)(tr->chain0 + b);
    const uint8_t *src = tr->plan[g] >= 0 ? picked + (size_t)b * tr->npix : NULL;
    if (!src && tr->cfg.chain_init) { /* a fresh chain from the data's channel Gaussian */
      const size_t hw = tr->npix / 3;
      const int flat = tr->cfg.chain_init == 2;
      for (size_t p = 0; p < tr->npix; p++) {
        const int ch = (int)(p / hw);
        /* flat: one draw per image and channel (index npix + ch, past the per-value ones) */
        const uint32_t idx = flat ? (uint32_t)(tr->npix + ch) : (uint32_t)p;
        float v = tr->cfg.init_mean[ch] +
                  tr->cfg.init_std[ch] * vkebm_rng_normal(seed ^ STREAM_INIT, step, g, idx);
        dst[p] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
      }
      continue;
    }
    for (size_t p = 0; p < tr->npix; p++) {
      const float u = vkebm_rng_uniform(seed ^ STREAM_INIT, step, g, (uint32_t)p);
      dst[p] = src ? ((float)src[p] + u) * (1.0f / 256.0f) : u;
    }
  }
  return ebm_upload(tr->be, ebm_at(ebm_ref_of(tr->x), (size_t)B * tr->npix), tr->h_x,
                    (size_t)B * tr->npix);
}

/* Final samples into the buffer (ring, or reservoir over every sample offered): every rank
 * plans the slots of all chains of the global batch (the counters are global), then sends its
 * own chains' images to the ranks keeping those slots (train_shard.c; one process: a copy). */
static int store_negatives(ebm_trainer *tr) {
  const int B = tr->cfg.batch, G = B * tr->nranks;
  const int64_t cap = tr->cfg.buffer_size;
  for (int b = 0; b < G; b++) { /* b: the chain of the global batch */
    int64_t slot;
    if (!tr->cfg.reservoir) {
      slot = tr->replay_seen % cap;
    } else if (tr->replay_seen < cap) {
      slot = tr->replay_seen;
    } else {
      uint32_t hi = vkebm_rng_u32(tr->cfg.seed ^ STREAM_INSERT, (uint32_t)tr->step, (uint32_t)b, 0);
      uint32_t lo = vkebm_rng_u32(tr->cfg.seed ^ STREAM_INSERT, (uint32_t)tr->step, (uint32_t)b, 1);
      uint64_t r = ((uint64_t)hi << 32 | lo) % (uint64_t)(tr->replay_seen + 1);
      slot = r < (uint64_t)cap ? (int64_t)r : -1;
    }
    tr->replay_seen++;
    if (tr->replay_count < cap) tr->replay_count++;
    tr->plan[b] = slot;
  }
  uint8_t *mine = tr->xfer, *scratch = tr->xfer + (size_t)B * tr->npix;
  for (int b = 0; b < B; b++) {
    const float *src = tr->h_x + (size_t)b * tr->npix;
    uint8_t *dst = mine + (size_t)b * tr->npix;
    for (size_t p = 0; p < tr->npix; p++) {
      float q = floorf(src[p] * 256.0f);
      dst[p] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
  }
  return shard_store(tr->comm, tr->replay, tr->npix, tr->plan, B, mine, scratch,
                     scratch + (size_t)G * tr->npix);
}

/* ---- the label-contrastive term ------------------------------------------------------------ */

static int one_hot_concept(const ebm_trainer *tr) {
  return tr->label_info.label_kind == EBM_LABEL_ONEHOT;
}

/* Candidate labels per positive: every one-hot label, or the true one plus the negatives. */
static int label_candidates(const ebm_trainer *tr) {
  return one_hot_concept(tr) ? tr->cfg.net.label_dim : 1 + tr->cfg.label_negatives;
}

/* h_cand[k, b] for every positive b: k = 0 is its own label; the others are the remaining
 * one-hot labels in order, or labels drawn uniformly outside the evaluation's tolerance of the
 * true one (a function of seed, step, b, k). */
static void fill_candidates(ebm_trainer *tr) {
  const int B = tr->cfg.batch, L = tr->cfg.net.label_dim, K = label_candidates(tr);
  const uint32_t seed = tr->cfg.seed ^ STREAM_LABEL, step = (uint32_t)tr->step;
  for (int b = 0; b < B; b++) {
    const float *truth = tr->h_c + (size_t)b * L;
    memcpy(tr->h_cand + (size_t)b * L, truth, L * sizeof(float));
    if (one_hot_concept(tr)) {
      int y = 0;
      for (int i = 1; i < L; i++)
        if (truth[i] > truth[y]) y = i;
      for (int k = 1; k < K; k++) {
        float *c = tr->h_cand + ((size_t)k * B + b) * L;
        memset(c, 0, L * sizeof(float));
        c[(y + k) % L] = 1.0f;
      }
      continue;
    }
    for (int k = 1; k < K; k++) {
      float *c = tr->h_cand + ((size_t)k * B + b) * L;
      for (uint32_t tries = 0;; tries++) {
        int far = 0;
        for (int i = 0; i < L; i++) {
          float u = vkebm_rng_uniform(seed, step, (uint32_t)((tr->chain0 + b) * 64 + k), tries * 8u + (uint32_t)i);
          c[i] = tr->concept == SCENE_CONCEPT_SIZE ? 0.3f + 0.4f * u : 2.0f * u - 1.0f;
          float tol = tr->concept == SCENE_CONCEPT_SIZE ? 0.1f : 0.25f;
          far |= fabsf(c[i] - truth[i]) > tol;
        }
        if (far || tries >= 64) break;
      }
    }
  }
}

/* Adds label_weight * mean_b CE(softmax_k(-E(x+_b | c_k) / T), 0) to the gradient (the CD
 * backward has run: this accumulates). The trained network takes 2B rows: each pass holds the
 * B positives twice (the negatives' half of x is free once they are stored) under two
 * candidates. Pass 1 computes every candidate's energy; the gradient needs each pass's
 * activations, so pass 2 runs forward + backward again per pair. */
double ebm_train_label_ce(const float *e, int K, int B, float temp, float weight, float *de,
                          double *acc) {
  double ce = 0, hits = 0;
  for (int b = 0; b < B; b++) {
    double m = -1e300, z[EBM_MAX_LABEL] = {0}, sum = 0;
    for (int k = 0; k < K; k++) {
      z[k] = -(double)e[(size_t)k * B + b] / temp;
      if (z[k] > m) m = z[k];
    }
    int best = 0;
    for (int k = 0; k < K; k++) {
      sum += exp(z[k] - m);
      if (z[k] > z[best]) best = k;
    }
    ce += (m + log(sum) - z[0]) / B;
    hits += best == 0;
    /* z_k = -E_k / T, CE = logsumexp(z) - z_0, dCE/dE_k = -(p_k - [k = 0]) / T */
    for (int k = 0; k < K; k++) {
      double p = exp(z[k] - m) / sum;
      de[(size_t)k * B + b] = (float)(-weight * (p - (k == 0)) / temp / B);
    }
  }
  if (acc) *acc = hits / B;
  return ce;
}

static int label_contrastive(ebm_trainer *tr, double *ce_out, double *acc_out) {
  ebm_backend *be = tr->be;
  const ebm_train_config *c = &tr->cfg;
  const int B = c->batch, L = c->net.label_dim, K = label_candidates(tr);
  const size_t nimg = (size_t)B * tr->npix;
  ebm_ref x = ebm_ref_of(tr->x), cref = ebm_ref_of(tr->c);
  fill_candidates(tr);
  ebm_scale(be, ebm_at(x, nimg), 1.0f, x, nimg); /* x = [x+; x+] */
  float e[2 * 4096];
  double acc = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int k0 = 0; k0 < K; k0 += 2) {
      int k1 = k0 + 1 < K ? k0 + 1 : k0; /* an odd K repeats the last candidate, unused */
      if (ebm_upload(be, cref, tr->h_cand + (size_t)k0 * B * L, (size_t)B * L) ||
          ebm_upload(be, ebm_at(cref, (size_t)B * L), tr->h_cand + (size_t)k1 * B * L,
                     (size_t)B * L))
        return -1;
      ebm_net_forward(tr->net, ebm_ref_of(tr->energy), x, cref, 2 * B);
      if (pass == 0) {
        if (ebm_download(be, e, ebm_ref_of(tr->energy), 2 * (size_t)B)) return -1;
        memcpy(tr->h_cand_e + (size_t)k0 * B, e, B * sizeof(float));
        if (k1 != k0) memcpy(tr->h_cand_e + (size_t)k1 * B, e + B, B * sizeof(float));
        continue;
      }
      for (int b = 0; b < B; b++) {
        e[b] = tr->h_cand_e[(size_t)k0 * B + b];
        e[B + b] = k1 != k0 ? tr->h_cand_e[(size_t)k1 * B + b] : 0.0f;
      }
      if (ebm_upload(be, ebm_ref_of(tr->dE), e, 2 * (size_t)B)) return -1;
      ebm_net_backward(tr->net, ebm_ref_of(tr->dE), EBM_NOREF, EBM_NOREF, 1, 2 * B);
    }
    if (pass == 1) break;
    double ce = ebm_train_label_ce(tr->h_cand_e, K, B, c->label_temp, c->label_weight,
                                   tr->h_cand_e, &acc);
    *ce_out = ce;
    *acc_out = acc;
  }
  return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

void ebm_trainer_destroy(ebm_trainer *tr) {
  if (!tr) return;
  ebm_buffer *bufs[] = {tr->x, tr->c, tr->energy, tr->dE, tr->ones, tr->e_tmp, tr->dx,
                        tr->dx_tmp, tr->scenes, tr->adam_m, tr->adam_v, tr->norm};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (bufs[i]) ebm_free(tr->be, bufs[i]);
  for (int f = 0; f < tr->nfrozen; f++) {
    if (tr->frozen[f].labels) ebm_free(tr->be, tr->frozen[f].labels);
    ebm_net_destroy(tr->frozen[f].net);
  }
  ebm_net_destroy(tr->net);
  ebm_net_destroy(tr->ema);
  free(tr->replay);
  free(tr->h_x);
  free(tr->h_c);
  free(tr->h_cand);
  free(tr->h_cand_e);
  free(tr->h_frozen_c);
  free(tr->h_scenes);
  free(tr->h_desc);
  free(tr->data_images);
  free(tr->data_labels);
  free(tr->data_desc);
  free(tr->plan);
  free(tr->xfer);
  free(tr->h_grad);
  free(tr);
}

/* Packs uint8 bytes three to a float (b0 + 256 b1 + 65536 b2 < 2^24: exact and finite). */
static size_t packed_len(size_t bytes) { return (bytes + 2) / 3; }
static void pack_bytes(float *dst, const uint8_t *src, size_t bytes) {
  for (size_t i = 0; i < packed_len(bytes); i++) {
    uint32_t v = 0;
    for (int k = 0; k < 3; k++)
      if (i * 3 + k < bytes) v |= (uint32_t)src[i * 3 + k] << (8 * k);
    dst[i] = (float)v;
  }
}
static int unpack_bytes(uint8_t *dst, const float *src, size_t bytes) {
  for (size_t i = 0; i < packed_len(bytes); i++) {
    float f = src[i];
    if (!(f >= 0 && f < 16777216.0f) || f != floorf(f)) return -1;
    uint32_t v = (uint32_t)f;
    for (int k = 0; k < 3; k++)
      if (i * 3 + k < bytes) dst[i * 3 + k] = (uint8_t)(v >> (8 * k));
  }
  return 0;
}

static int load_checkpoint(ebm_trainer *tr, const char *path, char *err, size_t errlen) {
  char why[512];
  /* The configuration and counters first: they size everything else. */
  float state[TRAIN_STATE_FLOATS];
  ebm_model_extra ex0[] = {{"train.state", state, TRAIN_STATE_FLOATS, 1, 0},
                           {"replay.images", NULL, 0, 1, 0}}; /* its size, queried */
  ebm_net *probe = NULL;
  ebm_model_info info;
  if (ebm_model_load(path, tr->be, 1, &probe, &info, ex0, 2, why, sizeof why) != 0)
    return io_fail(err, errlen, "cannot resume from %s: %s", path, why);
  ebm_net_destroy(probe);
  if (state_unpack(&tr->cfg, &tr->replay_count, &tr->replay_seen, state, why, sizeof why) != 0)
    return io_fail(err, errlen, "cannot resume from %s: %s", path, why);
  if (tr->cfg.batch % tr->nranks != 0) /* the checkpoint holds the global batch */
    return io_fail(err, errlen, "cannot resume from %s on %d ranks: its batch of %d does not split "
                             "evenly (use a rank count that divides %d)",
                path, tr->nranks, tr->cfg.batch, tr->cfg.batch);
  tr->cfg.batch /= tr->nranks;
  tr->cfg.net = info.config;
  snprintf(tr->cfg.concept, sizeof tr->cfg.concept, "%s", info.concept);
  if (!strncmp(info.data_spec, "dir:", 4)) {
    snprintf(tr->cfg.data_dir, sizeof tr->cfg.data_dir, "%.239s", info.data_spec + 4);
  } else {
    tr->cfg.data_dir[0] = 0;
    snprintf(tr->cfg.data_spec, sizeof tr->cfg.data_spec, "%s", info.data_spec);
  }
  if (info.seed > 0xffffffffu)
    return io_fail(err, errlen, "cannot resume from %s: seed %llu is more than 32 bits", path,
                (unsigned long long)info.seed);
  if (info.step > EBM_TRAIN_MAX_STEPS)
    return io_fail(err, errlen, "cannot resume from %s: step %lld is more than %d", path,
                (long long)info.step, EBM_TRAIN_MAX_STEPS);
  tr->cfg.seed = (uint32_t)info.seed;
  tr->step = info.step;
  if (ebm_train_config_validate(&tr->cfg, why, sizeof why) != 0)
    return io_fail(err, errlen, "cannot resume from %s: %s", path, why);
  /* The replay buffer is sized by buffer_size: the file must hold exactly that many images
   * before it is allocated (10^7 images of 256x256 would be 2 TB). */
  size_t rbytes = (size_t)tr->cfg.buffer_size * 3 * (size_t)tr->cfg.net.resolution * tr->cfg.net.resolution;
  if (ex0[1].numel != packed_len(rbytes))
    return io_fail(err, errlen, "cannot resume from %s: replay.images holds %zu values, buffer_size %d "
                             "needs %zu", path, ex0[1].numel, tr->cfg.buffer_size, packed_len(rbytes));
  return 0;
}

int ebm_trainer_create(ebm_trainer **out, ebm_backend *be, const ebm_train_config *cfg,
                       const char *resume_path, const ebm_train_frozen *frozen, int nfrozen,
                       char *err, size_t errlen) {
  return ebm_trainer_create_comm(out, be, cfg, resume_path, frozen, nfrozen, NULL, err, errlen);
}

int ebm_trainer_create_comm(ebm_trainer **out, ebm_backend *be, const ebm_train_config *cfg,
                            const char *resume_path, const ebm_train_frozen *frozen, int nfrozen,
                            const ebm_train_comm *comm, char *err, size_t errlen) {
  *out = NULL;
  char why[512];
  if (nfrozen < 0 || nfrozen > EBM_TRAIN_MAX_FROZEN)
    return io_fail(err, errlen, "at most %d frozen models", EBM_TRAIN_MAX_FROZEN);
  if (comm && (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size))
    return io_fail(err, errlen, "rank %d of %d", comm->rank, comm->size);
  ebm_trainer *tr = calloc(1, sizeof *tr);
  if (!tr) return io_fail(err, errlen, "out of memory");
  tr->be = be;
  tr->comm = comm && comm->size > 1 ? comm : NULL;
  tr->rank = tr->comm ? comm->rank : 0;
  tr->nranks = tr->comm ? comm->size : 1;
  if (resume_path) {
    if (load_checkpoint(tr, resume_path, err, errlen) != 0) goto fail_out;
  } else {
    if (!cfg) {
      io_fail(err, errlen, "no configuration");
      goto fail_out;
    }
    tr->cfg = *cfg;
    if (ebm_train_config_validate(&tr->cfg, err, errlen) != 0) goto fail_out;
  }
  const ebm_train_config *c = &tr->cfg;
  const char *celeba_dir = celeba_spec_dir(c->data_spec);
  tr->concept = celeba_dir ? -1 : scene_concept_parse(c->concept);
  if (!c->data_dir[0] && !celeba_dir && scene_spec_parse(c->data_spec, &tr->spec, why, sizeof why) != 0) {
    io_fail(err, errlen, "data: %s", why);
    goto fail_out;
  }
  if (ebm_train_label_info(c, &tr->label_info, err, errlen) != 0) goto fail_out;
  const int B = c->batch, L = c->net.label_dim, R = c->net.resolution;
  tr->npix = (size_t)3 * R * R;
  tr->chain0 = (int64_t)tr->rank * B;
  if ((int64_t)B * tr->nranks > 4096) {
    io_fail(err, errlen, "batch %d on %d ranks is a global batch of %lld; at most 4096", B,
         tr->nranks, (long long)B * tr->nranks);
    goto fail_out;
  }

  if (c->data_dir[0] && read_dataset(tr, err, errlen) != 0) goto fail_out;
  if (celeba_dir && read_celeba(tr, celeba_dir, err, errlen) != 0) goto fail_out;
  if (!resume_path && c->input_norm && fit_input_norm(tr, err, errlen) != 0) goto fail_out;
  if (ebm_net_create(&tr->net, be, &c->net, 2 * B, c->seed, why, sizeof why) != 0 ||
      (c->ema > 0 && ebm_net_create(&tr->ema, be, &c->net, B, c->seed, why, sizeof why) != 0)) {
    io_fail(err, errlen, "network: %s", why);
    goto fail_out;
  }
  tr->nparams = ebm_net_param_count(tr->net);
  tr->nsn_u = ebm_net_sn_u_count(tr->net);
  tr->x = ebm_alloc(be, 2 * (size_t)B * tr->npix);
  tr->c = ebm_alloc(be, 2 * (size_t)B * L);
  tr->energy = ebm_alloc(be, 2 * (size_t)B);
  tr->dE = ebm_alloc(be, 2 * (size_t)B);
  tr->ones = ebm_alloc(be, (size_t)B);
  tr->e_tmp = ebm_alloc(be, (size_t)B);
  tr->dx = ebm_alloc(be, (size_t)B * tr->npix);
  tr->dx_tmp = ebm_alloc(be, (size_t)B * tr->npix);
  tr->scenes = ebm_alloc(be, (size_t)B * VKEBM_SCENE_FLOATS);
  tr->adam_m = ebm_alloc(be, tr->nparams);
  tr->adam_v = ebm_alloc(be, tr->nparams);
  tr->norm = ebm_alloc(be, 1);
  const size_t nslots = shard_slots(c->buffer_size, tr->rank, tr->nranks);
  tr->replay = calloc(nslots ? nslots : 1, tr->npix);
  tr->plan = malloc((size_t)B * tr->nranks * sizeof(int64_t));
  tr->xfer = malloc((size_t)B * (1 + 2 * tr->nranks) * tr->npix);
  tr->h_grad = tr->comm ? malloc(tr->nparams * sizeof(float)) : NULL;
  tr->h_x = calloc((size_t)B * tr->npix, sizeof(float));
  tr->h_c = malloc((size_t)B * L * sizeof(float));
  const int K = label_candidates(tr);
  tr->h_cand = malloc((size_t)K * B * L * sizeof(float));
  tr->h_cand_e = malloc((size_t)K * B * sizeof(float));
  tr->h_frozen_c = malloc((size_t)B * EBM_MAX_LABEL * sizeof(float));
  tr->h_scenes = malloc((size_t)B * VKEBM_SCENE_FLOATS * sizeof(float));
  tr->h_desc = calloc((size_t)B, sizeof(scene_desc));
  if (!tr->x || !tr->c || !tr->energy || !tr->dE || !tr->ones || !tr->e_tmp || !tr->dx ||
      !tr->dx_tmp || !tr->scenes || !tr->adam_m || !tr->adam_v || !tr->norm || !tr->replay ||
      !tr->h_x || !tr->h_c || !tr->h_cand || !tr->h_cand_e || !tr->h_frozen_c || !tr->h_scenes || !tr->h_desc ||
      !tr->plan || !tr->xfer || (tr->comm && !tr->h_grad)) {
    io_fail(err, errlen, "out of memory (buffer of %d images at %dx%d, batch %d)", c->buffer_size,
         R, R, B);
    goto fail_out;
  }
  ebm_fill(be, ebm_ref_of(tr->ones), 1.0f, (size_t)B);

  for (int f = 0; f < nfrozen; f++) {
    frozen_model *fm = &tr->frozen[f];
    if (ebm_model_load(frozen[f].path, be, B, &fm->net, &fm->info, NULL, 0, why, sizeof why) != 0) {
      io_fail(err, errlen, "--frozen %s: %s", frozen[f].path, why);
      goto fail_out;
    }
    tr->nfrozen = f + 1;
    if (fm->info.config.resolution != R) {
      io_fail(err, errlen, "--frozen %s: resolution %d, the trained model's is %d", frozen[f].path,
           fm->info.config.resolution, R);
      goto fail_out;
    }
    fm->concept = scene_concept_parse(fm->info.concept);
    fm->label_from_data = frozen[f].label_from_data;
    if (celeba_dir && fm->label_from_data) {
      io_fail(err, errlen, "--frozen %s=data: CelebA rows carry no scene labels; give the frozen "
                        "model's label (e.g. =yes)", frozen[f].path);
      goto fail_out;
    }
    memcpy(fm->label, frozen[f].label, sizeof fm->label);
    fm->labels = ebm_alloc(be, (size_t)B * fm->info.config.label_dim);
    if (!fm->labels) {
      io_fail(err, errlen, "out of memory");
      goto fail_out;
    }
  }

  if (!resume_path && tr->cfg.chain_init && fit_chain_init(tr, err, errlen) != 0) goto fail_out;

  if (resume_path) {
    size_t rbytes = (size_t)c->buffer_size * tr->npix;
    float *m = malloc(tr->nparams * sizeof(float)), *v = malloc(tr->nparams * sizeof(float));
    float *ep = malloc(tr->nparams * sizeof(float)), *eu = malloc((tr->nsn_u + 1) * sizeof(float));
    float *rp = malloc(packed_len(rbytes) * sizeof(float));
    ebm_net *loaded = NULL;
    int ok = m && v && ep && eu && rp;
    if (!ok) io_fail(err, errlen, "out of memory reading %s", resume_path);
    ebm_model_extra ex[] = {{"adam.m", m, tr->nparams, 1, 0},
                            {"adam.v", v, tr->nparams, 1, 0},
                            {"replay.images", rp, packed_len(rbytes), 1, 0},
                            {"ema.params", ep, tr->nparams, c->ema > 0, 0},
                            {"ema.sn_u", eu, tr->nsn_u, c->ema > 0 && tr->nsn_u > 0, 0}};
    int nex = tr->nsn_u > 0 ? 5 : 4;
    if (ok && ebm_model_load(resume_path, be, 1, &loaded, NULL, ex, nex, why, sizeof why) != 0) {
      ok = 0;
      io_fail(err, errlen, "cannot resume from %s: %s", resume_path, why);
    }
    float *p = ok ? malloc(tr->nparams * sizeof(float)) : NULL;
    float *u = ok ? malloc((tr->nsn_u + 1) * sizeof(float)) : NULL;
    if (ok && (!p || !u || ebm_net_get_params(loaded, p, u) != 0 ||
               ebm_net_set_params(tr->net, p, u) != 0)) {
      ok = 0;
      io_fail(err, errlen, "cannot resume from %s: copying the parameters failed", resume_path);
    }
    /* the whole buffer, of which this rank keeps its slots (any rank count: re-sharded) */
    uint8_t *full = ok && tr->comm ? malloc(rbytes) : tr->replay;
    if (ok && !full) {
      ok = 0;
      io_fail(err, errlen, "out of memory reading %s", resume_path);
    }
    if (ok && unpack_bytes(full, rp, rbytes) != 0) {
      ok = 0;
      io_fail(err, errlen, "cannot resume from %s: replay.images is damaged", resume_path);
    }
    if (ok && full != tr->replay)
      shard_take(tr->replay, full, tr->npix, c->buffer_size, tr->rank, tr->nranks);
    if (full != tr->replay) free(full);
    if (ok && (ebm_upload(be, ebm_ref_of(tr->adam_m), m, tr->nparams) ||
               ebm_upload(be, ebm_ref_of(tr->adam_v), v, tr->nparams) ||
               (tr->ema && ebm_net_set_params(tr->ema, ep, tr->nsn_u ? eu : NULL) != 0))) {
      ok = 0;
      io_fail(err, errlen, "cannot resume from %s: upload failed", resume_path);
    }
    ebm_net_destroy(loaded);
    free(m), free(v), free(ep), free(eu), free(rp), free(p), free(u);
    if (!ok) goto fail_out;
  } else if (tr->ema) {
    /* the EMA starts equal to the trained weights */
    float *p = malloc(tr->nparams * sizeof(float)), *u = malloc((tr->nsn_u + 1) * sizeof(float));
    int bad = !p || !u || ebm_net_get_params(tr->net, p, u) != 0 ||
              ebm_net_set_params(tr->ema, p, u) != 0;
    free(p), free(u);
    if (bad) {
      io_fail(err, errlen, "initialising the EMA weights failed");
      goto fail_out;
    }
  }
  if (ebm_sync(be) != 0) {
    io_fail(err, errlen, "the %s backend failed while setting up training", ebm_backend_name(be));
    goto fail_out;
  }
  *out = tr;
  return 0;
fail_out:
  ebm_trainer_destroy(tr);
  return -1;
}

const ebm_train_config *ebm_trainer_config(const ebm_trainer *tr) { return &tr->cfg; }
int64_t ebm_trainer_step_count(const ebm_trainer *tr) { return tr->step; }
ebm_net *ebm_trainer_net(ebm_trainer *tr) { return tr->net; }
ebm_net *ebm_trainer_ema_net(ebm_trainer *tr) { return tr->ema; }

int ebm_trainer_negatives(ebm_trainer *tr, float *out) {
  /* the host copy the step took for the replay buffer: the device half of x that held them is
   * reused by the label-contrastive term */
  if (tr->step == 0) return -1;
  memcpy(out, tr->h_x, (size_t)tr->cfg.batch * tr->npix * sizeof *out);
  return 0;
}

/* ---- one iteration ------------------------------------------------------------------------ */

static int diverged(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int diverged(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return EBM_TRAIN_DIVERGED;
}

void ebm_trainer_set_profile(ebm_trainer *tr, ebm_train_profile *p) { tr->profile = p; }

/* Data parallel: the gradient (each rank's is that of its own slice's mean loss) becomes the
 * mean over the ranks, i.e. the gradient of the global batch's loss, with the same bits on every
 * rank (train_comm.h); the label term's statistics likewise. */
static int mean_over_ranks(ebm_trainer *tr, double *label_ce, double *label_acc) {
  const ebm_train_comm *comm = tr->comm;
  ebm_ref grads = ebm_net_grads(tr->net);
  if (ebm_download(tr->be, tr->h_grad, grads, tr->nparams) != 0 ||
      comm->mean_f32(comm->ctx, tr->h_grad, tr->nparams) != 0 ||
      ebm_upload(tr->be, grads, tr->h_grad, tr->nparams) != 0)
    return -1;
  if (tr->cfg.label_weight > 0) {
    double v[2] = {*label_ce, *label_acc};
    if (comm->sum_f64(comm->ctx, v, 2) != 0) return -1;
    *label_ce = v[0] / comm->size;
    *label_acc = v[1] / comm->size;
  }
  return 0;
}

/* Profiling: at a phase's end, sync and add the time since the last mark to *slot. */
static void profile_mark(ebm_trainer *tr, double *t, double *slot) {
  if (!tr->profile) return;
  ebm_sync(tr->be);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double now = ts.tv_sec + 1e-9 * ts.tv_nsec;
  if (slot) *slot += now - *t;
  *t = now;
}

/* dE/dx of the sampler's energy (the EMA network when there is one, plus the frozen models')
 * energies of their own labels) at the negatives x: ebm_sampler_step's gradient. */
static int langevin_grad(void *user, ebm_ref x, ebm_ref grad, double scale, char *err,
                         size_t errlen) {
  ebm_trainer *tr = user;
  const int B = tr->cfg.batch;
  ebm_net *sampler = tr->ema ? tr->ema : tr->net;
  ebm_ref c_neg = ebm_at(ebm_ref_of(tr->c), (size_t)B * tr->cfg.net.label_dim);
  (void)scale, (void)err, (void)errlen; /* energy scale 1; failures show at the next download */
  ebm_net_forward(sampler, ebm_ref_of(tr->e_tmp), x, c_neg, B);
  ebm_net_backward(sampler, ebm_ref_of(tr->ones), grad, EBM_NOREF, 0, B);
  for (int f = 0; f < tr->nfrozen; f++) {
    frozen_model *fm = &tr->frozen[f];
    ebm_net_forward(fm->net, ebm_ref_of(tr->e_tmp), x, ebm_ref_of(fm->labels), B);
    ebm_net_backward(fm->net, ebm_ref_of(tr->ones), ebm_ref_of(tr->dx_tmp), EBM_NOREF, 0, B);
    ebm_axpy(tr->be, grad, 1.0f, ebm_ref_of(tr->dx_tmp), (size_t)B * tr->npix);
  }
  return 0;
}

int ebm_trainer_step(ebm_trainer *tr, ebm_train_stats *stats, char *err, size_t errlen) {
  ebm_backend *be = tr->be;
  const ebm_train_config *c = &tr->cfg;
  const int B = c->batch;
  const size_t nneg = (size_t)B * tr->npix;
  ebm_ref x_pos = ebm_ref_of(tr->x), x_neg = ebm_at(x_pos, nneg);

  ebm_train_profile *prof = tr->profile;
  double t = 0;
  profile_mark(tr, &t, NULL);
  /* spectral norm: one power iteration per weight per iteration, from the stored u */
  ebm_net_refresh(tr->net, 1);
  if (tr->ema) ebm_net_refresh(tr->ema, 1);

  if (load_positives(tr) != 0) return io_fail(err, errlen, "uploading the batch failed");
  profile_mark(tr, &t, prof ? &prof->data_s : NULL);
  if (init_negatives(tr) != 0) return io_fail(err, errlen, "starting the chains failed");
  profile_mark(tr, &t, prof ? &prof->buffer_s : NULL);

  /* Langevin: the paper sampler's step (ebm_sampler_step: noise, then the gradient of the
   * sampler's energy at the noisy point, then clip to [0, 1]) on the trainer's noise stream;
   * this rank's chains are chain0.. of the global batch, so they draw that batch's noise */
  const ebm_sampler_config lcfg = {.kind = EBM_SAMPLER_PAPER, .noise_std = c->noise, .clip = 1,
                                   .energy_scale = 1.0f};
  const ebm_chains chains = {be, x_neg, ebm_ref_of(tr->dx), B, (int)tr->npix,
                             (uint32_t)tr->chain0};
  for (int k = 0; k < c->langevin_steps; k++) {
    const uint32_t lstep = (uint32_t)(tr->step * c->langevin_steps + k);
    if (ebm_sampler_step(&chains, &lcfg, c->step_lr, c->seed ^ STREAM_LANGEVIN, lstep,
                         langevin_grad, tr, err, errlen))
      return -1;
  }

  profile_mark(tr, &t, prof ? &prof->langevin_s : NULL);
  /* energies of positives and negatives in one pass of the trained network */
  ebm_net_forward(tr->net, ebm_ref_of(tr->energy), x_pos, ebm_ref_of(tr->c), 2 * B);
  float e[2 * 4096];
  if (ebm_download(be, e, ebm_ref_of(tr->energy), 2 * (size_t)B) != 0 ||
      ebm_download(be, tr->h_x, x_neg, nneg) != 0)
    return io_fail(err, errlen, "the %s backend failed during sampling", ebm_backend_name(be));
  double sp = 0, sn = 0, sp2 = 0, sn2 = 0;
  for (int b = 0; b < B; b++) {
    sp += e[b], sp2 += (double)e[b] * e[b];
    sn += e[B + b], sn2 += (double)e[B + b] * e[B + b];
  }
  /* the means over the global batch: every rank gets the same sums, so all agree on divergence */
  double sums[4] = {sp, sn, sp2, sn2};
  if (tr->comm && tr->comm->sum_f64(tr->comm->ctx, sums, 4) != 0)
    return io_fail(err, errlen, "summing the energies over %d ranks failed", tr->nranks);
  const int G = B * tr->nranks;
  const double ep = sums[0] / G, en = sums[1] / G;
  double loss = ep - en + c->alpha * (sums[2] / G + sums[3] / G);
  if (!isfinite(loss) || !isfinite(ep) || !isfinite(en))
    return diverged(err, errlen, "diverged at step %lld: energies are not finite (E+ %g, E- %g)",
                    (long long)tr->step + 1, ep, en);
  if (fabs(ep) > c->diverge_energy || fabs(en) > c->diverge_energy)
    return diverged(err, errlen, "diverged at step %lld: |mean E| beyond %g (E+ %g, E- %g)",
                    (long long)tr->step + 1, c->diverge_energy, ep, en);
  profile_mark(tr, &t, prof ? &prof->param_s : NULL);
  if (store_negatives(tr) != 0)
    return io_fail(err, errlen, "storing the chains in the replay buffer failed");
  profile_mark(tr, &t, prof ? &prof->buffer_s : NULL);

  /* dL/dE per sample */
  float de[2 * 4096];
  for (int b = 0; b < B; b++) {
    de[b] = (float)((1.0 + 2.0 * c->alpha * e[b]) / B);
    de[B + b] = (float)((-1.0 + 2.0 * c->alpha * e[B + b]) / B);
  }
  if (ebm_upload(be, ebm_ref_of(tr->dE), de, 2 * (size_t)B) != 0)
    return io_fail(err, errlen, "upload failed");
  ebm_net_zero_grads(tr->net);
  ebm_net_backward(tr->net, ebm_ref_of(tr->dE), EBM_NOREF, EBM_NOREF, 1, 2 * B);
  double label_ce = 0, label_acc = 0;
  if (c->label_weight > 0 && label_contrastive(tr, &label_ce, &label_acc) != 0)
    return io_fail(err, errlen, "the %s backend failed in the label term", ebm_backend_name(be));
  if (tr->comm && mean_over_ranks(tr, &label_ce, &label_acc) != 0)
    return io_fail(err, errlen, "averaging the gradient over %d ranks failed", tr->nranks);
  if (!isfinite(label_ce))
    return diverged(err, errlen, "diverged at step %lld: the label term is not finite",
                    (long long)tr->step + 1);
  ebm_sumsq(be, ebm_ref_of(tr->norm), ebm_net_grads(tr->net), tr->nparams);
  float sumsq = 0;
  if (ebm_download(be, &sumsq, ebm_ref_of(tr->norm), 1) != 0)
    return io_fail(err, errlen, "the %s backend failed during the backward pass", ebm_backend_name(be));
  const double gnorm = sqrt((double)sumsq);
  if (!isfinite(gnorm))
    return diverged(err, errlen, "diverged at step %lld: the gradient is not finite",
                    (long long)tr->step + 1);
  profile_mark(tr, &t, prof ? &prof->param_s : NULL);
  ebm_adam_params hp = {.lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
                        .t = tr->step + 1, .clip = c->adam_clip, .grad_scale = 1.0f};
  if (c->grad_clip > 0 && gnorm > c->grad_clip) hp.grad_scale = (float)(c->grad_clip / gnorm);
  ebm_adam_step(be, ebm_net_params(tr->net), ebm_net_grads(tr->net), ebm_ref_of(tr->adam_m),
                ebm_ref_of(tr->adam_v), tr->nparams, &hp);
  if (tr->ema) {
    ebm_ref ema = ebm_net_params(tr->ema);
    ebm_scale(be, ema, c->ema, ema, tr->nparams);
    ebm_axpy(be, ema, 1.0f - c->ema, ebm_net_params(tr->net), tr->nparams);
  }
  if (ebm_sync(be) != 0) return io_fail(err, errlen, "the %s backend failed during the update", ebm_backend_name(be));
  profile_mark(tr, &t, prof ? &prof->optim_s : NULL);
  if (prof) prof->iters++;
  tr->step++;
  if (stats) {
    stats->step = tr->step;
    stats->loss = loss + c->label_weight * label_ce;
    stats->e_pos = ep;
    stats->e_neg = en;
    stats->grad_norm = gnorm;
    stats->label_ce = label_ce;
    stats->label_acc = label_acc;
  }
  return EBM_TRAIN_OK;
}

/* ---- files -------------------------------------------------------------------------------- */

/* The metadata every saved file carries: the label space, step, seed, the training sampler and
 * the chains' start. */
static ebm_model_info saved_info(const ebm_trainer *tr) {
  ebm_model_info info = tr->label_info;
  info.step = tr->step;
  info.seed = tr->cfg.seed;
  info.langevin_step_lr = tr->cfg.step_lr;
  info.sample_steps =
      tr->cfg.sample_steps > 0 ? tr->cfg.sample_steps : 5 * tr->cfg.langevin_steps;
  info.langevin_noise = tr->cfg.noise;
  if (tr->cfg.chain_init) {
    info.init_channels = 3;
    info.init_flat = tr->cfg.chain_init == 2;
    for (int k = 0; k < 3; k++) info.init_mean[k] = tr->cfg.init_mean[k], info.init_std[k] = tr->cfg.init_std[k];
  }
  return info;
}

static int save_checkpoint_file(ebm_trainer *tr, const char *path, const uint8_t *replay,
                                char *err, size_t errlen);

int ebm_trainer_save_checkpoint(ebm_trainer *tr, const char *path, char *err, size_t errlen) {
  const size_t rbytes = (size_t)tr->cfg.buffer_size * tr->npix;
  if (tr->comm) { /* every rank sends its shard; rank 0 writes the file */
    uint8_t *full = tr->rank == 0 ? malloc(rbytes) : NULL;
    int rc = (tr->rank != 0 || full) &&
                     shard_gather(tr->comm, tr->replay, tr->npix, tr->cfg.buffer_size, full) == 0
                 ? 0
                 : io_fail(err, errlen, "gathering the replay buffer from %d ranks failed", tr->nranks);
    if (rc == 0 && tr->rank == 0) rc = save_checkpoint_file(tr, path, full, err, errlen);
    free(full);
    return rc;
  }
  return save_checkpoint_file(tr, path, tr->replay, err, errlen);
}

/* The checkpoint file, with the whole replay buffer `replay` [buffer_size, npix]. */
static int save_checkpoint_file(ebm_trainer *tr, const char *path, const uint8_t *replay,
                                char *err, size_t errlen) {
  const size_t rbytes = (size_t)tr->cfg.buffer_size * tr->npix;
  float *m = malloc(tr->nparams * sizeof(float)), *v = malloc(tr->nparams * sizeof(float));
  float *ep = malloc(tr->nparams * sizeof(float)), *eu = malloc((tr->nsn_u + 1) * sizeof(float));
  float *rp = malloc(packed_len(rbytes) * sizeof(float));
  float state[TRAIN_STATE_FLOATS];
  int rc = -1;
  if (!m || !v || !ep || !eu || !rp) {
    io_fail(err, errlen, "out of memory writing a checkpoint");
    goto done;
  }
  if (ebm_download(tr->be, m, ebm_ref_of(tr->adam_m), tr->nparams) ||
      ebm_download(tr->be, v, ebm_ref_of(tr->adam_v), tr->nparams) ||
      (tr->ema && ebm_net_get_params(tr->ema, ep, eu) != 0)) {
    io_fail(err, errlen, "reading the training state from the %s backend failed", ebm_backend_name(tr->be));
    goto done;
  }
  pack_bytes(rp, replay, rbytes);
  state_pack(tr, state);
  ebm_model_info info = saved_info(tr);
  ebm_model_extra ex[6] = {{"train.state", state, TRAIN_STATE_FLOATS, 1, 0},
                           {"adam.m", m, tr->nparams, 1, 0},
                           {"adam.v", v, tr->nparams, 1, 0},
                           {"replay.images", rp, packed_len(rbytes), 1, 0}};
  int nex = 4;
  if (tr->ema) {
    ex[nex++] = (ebm_model_extra){"ema.params", ep, tr->nparams, 1, 0};
    if (tr->nsn_u) ex[nex++] = (ebm_model_extra){"ema.sn_u", eu, tr->nsn_u, 1, 0};
  }
  rc = ebm_model_save(path, tr->net, &info, ex, nex, err, errlen);
done:
  free(m), free(v), free(ep), free(eu), free(rp);
  return rc;
}

int ebm_trainer_save_model(ebm_trainer *tr, const char *path, int use_ema, char *err,
                           size_t errlen) {
  ebm_model_info info = saved_info(tr);
  ebm_net *net = use_ema && tr->ema ? tr->ema : tr->net;
  return ebm_model_save(path, net, &info, NULL, 0, err, errlen);
}
