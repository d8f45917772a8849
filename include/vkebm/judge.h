/* judge.h: the judge: a supervised network that reads a rendered scene's object back.
 *
 * Owns: the judge network (the energy network's trunk, net.h, without label conditioning, plus
 * a multi-output head), its loss and gradient, one Adam training step, rendering labelled
 * training batches, reading images, and the judge's model file.
 *
 * Input: the RGB image [3, R, R] plus two fixed coordinate planes (x from -1 at the left to +1
 * at the right, y from +1 at the top to -1 at the bottom; "CoordConv"), so the network sees
 * [5, R, R]. The trunk ends in a global mean pool: without the coordinate planes position
 * could only be read from the zero-padding borders; with them, mean_p(feature * coord) is a
 * centroid the head can read directly.
 * Trunk: net.h's blocks with label_dim 1 and a zero label (every label-linear map then adds
 * nothing and CB2 is a plain learned channel gain), spectral norm off.
 * Head: JUDGE_OUTPUTS scalar heads on the same mean-pooled features, each one ebm_head_forward
 * (linear C -> 1 with bias) — composed from the existing op rather than a new K-output kernel:
 * the head is ~0.1% of the work (C x K multiply-adds per image against ~10^7 in the convs), so
 * K dispatches cost nothing measurable and the judge needs no new shader on either backend.
 * Outputs (rows of the [K, B] output tensor):
 *   0..3   shape logits (cube, sphere, cylinder, cone)
 *   4..11  colour logits (the 8 palette colours, scene.h order)
 *   12, 13 position x, y (label units, [-1, 1])
 *   14     size, normalised: (s - 0.5) / 0.2 (the general spec's sizes 0.3..0.7 -> -1..1)
 *   15     scene logit: is this a render at all (sigmoid > 0.5), or noise / garbage?
 * Loss per render: CE(shape) + CE(colour) + JUDGE_REG_WEIGHT * ((x-x*)^2 + (y-y*)^2 +
 * (z-z*)^2) + BCE(scene, 1), z the normalised size; per negative (an image that is not a
 * render: ebm_judge_make_negatives) only BCE(scene, 0); the batch loss is the mean. The scene
 * output exists because a classifier trained on renders alone answers confidently on anything
 * (the first judge read uniform noise as a "cube" with p ~ 1), and an evaluation must not count
 * a garbage sample as satisfying its terms. Softmaxes are taken on the host from the
 * B*K downloaded floats (in double precision), and dL/d(outputs) goes back up.
 *
 * Model file: safetensors, every trunk parameter by its net.h name except the unused energy
 * head (head.weight, head.bias), plus judge.head.weight [K, C] and judge.head.bias [K];
 * __metadata__: format = "vkebm-judge", format_version = "1", resolution, base_width, blocks,
 * in_channels = "5", outputs, size_range = "0.3,0.7", step, seed, data_spec.
 */
#ifndef VKEBM_JUDGE_H
#define VKEBM_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/faithful.h"
#include "vkebm/net.h"

#define EBM_JUDGE_FORMAT "vkebm-judge"
#define EBM_JUDGE_FORMAT_VERSION "1"

enum {
  JUDGE_NSHAPES = 4,
  JUDGE_NCOLOURS = 8,
  JUDGE_OUT_SHAPE = 0,
  JUDGE_OUT_COLOUR = 4,
  JUDGE_OUT_X = 12,
  JUDGE_OUT_Y = 13,
  JUDGE_OUT_SIZE = 14,
  JUDGE_OUT_SCENE = 15,
  JUDGE_OUTPUTS = 16,
  JUDGE_IN_CHANNELS = 5,
};
#define JUDGE_SIZE_MID 0.5f
#define JUDGE_SIZE_HALF_RANGE 0.2f
#define JUDGE_REG_WEIGHT 10.0f

typedef struct ebm_judge_config {
  int resolution;   /* 32 for the shipped EBMs */
  int base_width;
  char blocks[64];  /* net.h block spec, e.g. "1d,2d,2d" */
} ebm_judge_config;

/* "default32": R=32, W=16, blocks 1d,2d,2d,2 (the shipped judge); "tiny": R=8, W=4, 1d,2d
 * (tests). 0, or -1 for an unknown name. */
int ebm_judge_config_preset(ebm_judge_config *cfg, const char *name);
/* The trunk's net.h configuration for cfg; 0 or -1 with a reason. */
int ebm_judge_net_config(const ebm_judge_config *cfg, ebm_net_config *net, char *err,
                         size_t errlen);

/* What the judge reads from one image. */
typedef struct ebm_judge_reading {
  int shape, colour;                   /* argmax */
  float shape_prob[JUDGE_NSHAPES];     /* softmax */
  float colour_prob[JUDGE_NCOLOURS];
  float x, y, size;                    /* label units; size de-normalised */
  float scene_prob;                    /* sigmoid of the scene logit: >= 0.5 reads as a render */
} ebm_judge_reading;

/* The ground truth of one training image. */
typedef struct ebm_judge_target {
  int shape, colour;
  float x, y, size;
  int scene;        /* 1: a render with the fields above; 0: a negative (fields unused) */
} ebm_judge_target;

typedef struct ebm_judge ebm_judge;

/* A fresh judge (weights from seed) for batches of up to max_batch images. 0 or -1 with err. */
int ebm_judge_create(ebm_judge **out, ebm_backend *be, const ebm_judge_config *cfg, int max_batch,
                     uint64_t seed, char *err, size_t errlen);
/* Loads a judge file (validates the marker, version, configuration and every tensor: present,
 * exact shape, finite, nothing unexpected). 0 or -1 with a one-line reason. */
int ebm_judge_load(ebm_judge **out, ebm_backend *be, const char *path, int max_batch, char *err,
                   size_t errlen);
/* Writes the judge atomically, with its step, seed and data spec in the metadata. */
int ebm_judge_save(ebm_judge *j, const char *path, char *err, size_t errlen);
void ebm_judge_destroy(ebm_judge *j);

const ebm_judge_config *ebm_judge_config_of(const ebm_judge *j);
int64_t ebm_judge_step(const ebm_judge *j);  /* training steps done */
uint64_t ebm_judge_seed(const ebm_judge *j);
const char *ebm_judge_data_spec(const ebm_judge *j);
void ebm_judge_set_provenance(ebm_judge *j, uint64_t seed, const char *data_spec);

/* The thresholds of the faithful check (faithful.h) calibrated for this judge, as recorded in
 * its file (metadata faithful_residual, faithful_ratio: "one,multi"; faithful_calibration: how).
 * 0, or -1 when the judge has none. */
int ebm_judge_faithful_thresholds(const ebm_judge *j, ebm_faithful_thresholds *out);
void ebm_judge_set_faithful_thresholds(ebm_judge *j, const ebm_faithful_thresholds *t); /* NULL:
                                                                                   none */

/* The trunk's mean-pooled features [n, ebm_judge_feature_dim] of images[n, 3, R, R] (host, any
 * n): what the heads read, and what the evaluation's Frechet distance compares. */
int ebm_judge_feature_dim(const ebm_judge *j);
int ebm_judge_features(ebm_judge *j, const float *images, int n, float *features, char *err,
                       size_t errlen);

/* outputs[n, JUDGE_OUTPUTS] (host, image-major) for images[n, 3, R, R] (host, [0, 1]). */
int ebm_judge_forward(ebm_judge *j, const float *images, int n, float *outputs, char *err,
                      size_t errlen);
/* Decodes one image's outputs into a reading. */
void ebm_judge_decode(const float *outputs, ebm_judge_reading *r);
/* Forward and decode, any n (processed in chunks of max_batch). */
int ebm_judge_read(ebm_judge *j, const float *images, int n, ebm_judge_reading *out, char *err,
                   size_t errlen);

/* Loss terms of one batch (means over the batch). */
typedef struct ebm_judge_loss {
  double total, shape_ce, colour_ce, position_mse, size_mse; /* size_mse in normalised units */
  double scene_bce, scene_acc;  /* over every image */
  double shape_acc, colour_acc; /* over the renders (positions and sizes too) */
} ebm_judge_loss;

/* Zeroes the gradients, then forward + backward of the mean loss over n <= max_batch images:
 * parameter gradients land in the trunk's ebm_net_grads and in the head's gradient (below). */
int ebm_judge_loss_grad(ebm_judge *j, const float *images, const ebm_judge_target *t, int n,
                        ebm_judge_loss *loss, char *err, size_t errlen);
/* ebm_judge_loss_grad, then one Adam step (beta1 0.9, beta2 0.999, eps 1e-8, no clipping) with
 * learning rate lr on every parameter. */
int ebm_judge_train_step(ebm_judge *j, const float *images, const ebm_judge_target *t, int n,
                         float lr, ebm_judge_loss *loss, char *err, size_t errlen);

/* For tests: the trunk network and the head's parameters [K*C weights, then K biases] and their
 * gradients as device refs (head_count floats each). */
ebm_net *ebm_judge_net(ebm_judge *j);
ebm_ref ebm_judge_head_params(ebm_judge *j, size_t *head_count);
ebm_ref ebm_judge_head_grads(ebm_judge *j);

/* Renders scenes first .. first+n-1 of spec (scene.h, parsed) with seed into images[n, 3, R, R]
 * on the CPU, and object 0's ground truth into targets (optional). threads: 0 = one. */
struct scene_spec;
void ebm_judge_render_batch(const struct scene_spec *spec, uint32_t seed, uint32_t first, int n,
                            int resolution, float *images, ebm_judge_target *targets,
                            int threads);

/* Kinds of non-scene the scene output is trained to reject: the first three are what random
 * networks and early training make; the others are what EBM samples get wrong (an empty floor
 * read as a confident "white cone"; colour haze read as a coloured object, ...). */
enum {
  JUDGE_NEG_UNIFORM,  /* uniform noise */
  JUDGE_NEG_BLOCKY,   /* uniform values on 2x2..8x8 blocks, like half-formed samples */
  JUDGE_NEG_NOISED,   /* a render mixed with 50..100% uniform noise */
  JUDGE_NEG_EMPTY,    /* an empty floor (no object) plus Gaussian noise of 0, .02, .05, .1, .2 */
  JUDGE_NEG_HAZE,     /* an empty floor tinted 15..60% toward a palette colour by a smooth bump */
  JUDGE_NEG_BLURRED,  /* a render blurred by a Gaussian of 1.5..3 px (at 32x32): a blob */
  JUDGE_NEG_BLENDED,  /* two renders superimposed, 35..65% of the second: ghosts */
  JUDGE_NEG_CUT,      /* a render whose object (or half of it) is 60..100% uniform noise */
  JUDGE_NEG_KINDS
};
const char *ebm_judge_negative_name(int kind);

/* Turns the render img[3, R, R] into a negative of the given kind, a pure function of (seed,
 * step, b); other[3, R, R] is a second render (the blended kind), scratch holds 3*R*R floats. */
void ebm_judge_make_negative(float *img, const float *other, int R, int kind, uint32_t seed,
                             uint32_t step, uint32_t b, float *scratch);
/* Replaces images [n, 3, R, R] (and their targets) by negatives with probability fraction each,
 * of a kind drawn uniformly, a pure function of (seed, step, b). Returns how many were
 * replaced, -1 when out of memory. */
int ebm_judge_make_negatives(float *images, ebm_judge_target *targets, int n, int resolution,
                             uint32_t seed, uint32_t step, float fraction);

/* Accuracy of a judge on n fresh scenes of spec (seed, indices 0..n-1). */
typedef struct ebm_judge_eval {
  int n;
  double shape_acc, colour_acc;
  double pos_mae, pos_rmse, pos_max; /* per coordinate, label units */
  double size_mae, size_rmse;        /* label units */
  double pos_within_005, size_within_003; /* share with |x|,|y| err <= 0.05 and size <= 0.03 */
  double scene_renders;   /* share of the renders read as scenes */
  double scene_negatives; /* share of negatives (every render turned into each kind in turn)
                             read as scenes, over all kinds */
  double scene_negative_kind[JUDGE_NEG_KINDS]; /* the same, per kind */
} ebm_judge_eval;
int ebm_judge_evaluate(ebm_judge *j, const struct scene_spec *spec, uint32_t seed, int n,
                       int threads, ebm_judge_eval *out, char *err, size_t errlen);

#endif
