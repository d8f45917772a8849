/* infer.h: compositional inference: reading concepts and objects out of images with the same
 * energy models that generate them (Du, Li, Mordatch 2020, section "inference";
 * docs/recipe.md §5).
 *
 * Owns: the inference of one concept's value for a batch of images (one-hot concepts: the energy
 * of every label, its argmin and softmax(-E/T); vector concepts: gradient descent on the label
 * with dE/dc from a grid of starts, the lowest end kept), multi-object inference (greedy: find
 * the lowest-energy position, mask that object out, repeat; then every object's other concepts
 * on a copy of the image showing only that object), and the image masks it uses.
 *
 * Knows nothing of the backend's handles: every energy is ebm_concept_energy/_label_grad
 * (concept.h). Images are host float CHW [n, 3, R, R] in [0, 1].
 */
#ifndef VKEBM_INFER_H
#define VKEBM_INFER_H

#include <stddef.h>

#include "vkebm/concept.h"

#define EBM_INFER_MAX_OBJECTS 5
#define EBM_INFER_BASE_NODES 9 /* vector baselines: nodes per label axis */
#define EBM_INFER_BASE_MAX (EBM_INFER_BASE_NODES * EBM_INFER_BASE_NODES)

/* A concept's label baseline: the mean and spread of E(x | c) over calibration images (renders
 * whose labels are not used), per label (one-hot) or per node of an evenly spaced grid over the
 * label range (vector concepts with L <= 2, bilinear between nodes). The shipped models' energies
 * carry a large label-only term (every image reads "purple" and "sphere" by raw argmin: a label's
 * log-partition differs from another's), so inference ranks labels by the standardised energy
 * (E(x | c) - mean(c)) / spread(c), which compares a label's energy on this image with its energy
 * on typical images. */
typedef struct ebm_infer_baseline {
  const ebm_concept *concept; /* the model it was measured for */
  int nodes;                  /* one-hot: L; vector: nodes per axis */
  float mean[EBM_INFER_BASE_MAX], spread[EBM_INFER_BASE_MAX];
} ebm_infer_baseline;

typedef struct ebm_infer_calibration {
  int count;
  ebm_infer_baseline base[32];
} ebm_infer_calibration;

typedef struct ebm_infer_options {
  /* One-hot: p = softmax(-(E - min E) / (T * s)) with s the image's spread of label energies
   * (their standard deviation): T is then scale-free (the shipped models' energies differ by
   * ~0.01-0.1, so T = 1 on raw energies is flat; docs/inference.md). 0 < T. Default 0.5. */
  float temperature;
  int grid;      /* vector concepts: starts per label axis (grid^L starts, at most 64); 5 */
  int steps;     /* gradient steps on the label from each start; 20 */
  float step;    /* first step, in label-range units (decays linearly to a tenth); 0.05 */
  /* multi-object: the half-extent of the box masked around a found object (an object of this
   * size standing there, projected with the default camera); 0.45 */
  float mask_size;
  /* --objects auto: keep adding objects while the next one's energy drop below the empty
   * floor's is at least this share of the first object's; 0.35 */
  float auto_ratio;
  /* label baselines (NULL, or a concept without one: raw energies) */
  const ebm_infer_calibration *calibration;
} ebm_infer_options;

void ebm_infer_defaults(ebm_infer_options *o);

/* What inference reads from one image for one concept. */
typedef struct ebm_infer_value {
  int label_dim;
  int onehot;                            /* 1: one-hot concept */
  int index;                             /* one-hot: argmin label */
  float value[EBM_CONCEPT_MAX_LABEL];    /* vector: the lowest end; one-hot: one-hot of index */
  float energy;                          /* E(x | value) */
  float confidence;                      /* one-hot: prob[index]; vector: see ebm_infer_concept */
  float energies[EBM_CONCEPT_MAX_LABEL]; /* one-hot: E of every label */
  float score[EBM_CONCEPT_MAX_LABEL];    /* one-hot: what is ranked: (E - mean) / spread with a
                                          * baseline, else E */
  float prob[EBM_CONCEPT_MAX_LABEL];     /* one-hot: softmax(-(score - min) / T) with a baseline,
                                          * else softmax(-(E - min) / (T * the E's spread)) */
} ebm_infer_value;

/* Measures c's baseline on images[n] (host). 0 or -1 with err. */
int ebm_infer_baseline_measure(ebm_concept *c, const float *images, int n, ebm_infer_baseline *out,
                               char *err, size_t errlen);
/* The baselines of every concept of the set that has labels of at most 2 values or one-hot, on
 * n renders of the general spec (seed, scenes 0..n-1) at the models' resolution R. */
int ebm_infer_calibrate(const ebm_concept_set *set, int R, int n, unsigned seed,
                        ebm_infer_calibration *cal, char *err, size_t errlen);

/* Infers concept c's value for images[n] (any n; batched max_rows rows at a time: label
 * candidates x images for one-hot concepts, images x starts for vector ones). Vector concepts:
 * grid^L starts evenly inside [label_min, label_max], `steps` of c <- clip(c - a_t g/|g|_range)
 * (normalised gradient, step a_t in label-range units, decaying), the end of lowest energy kept;
 * confidence = the share of softmax(-(E - min)/(T spread)) over the starts' first energies that
 * lies within a tenth of the label range of the answer (1: one sharp basin; 1/grid^L: flat).
 * 0 or -1 with err. */
int ebm_infer_concept(ebm_concept *c, const float *images, int n, const ebm_infer_options *o,
                      ebm_infer_value *out, char *err, size_t errlen);

/* One object found in an image. */
typedef struct ebm_infer_object {
  float x, y;       /* position label */
  float energy;     /* position energy on the image with the objects found before it masked */
  float drop;       /* empty-floor energy minus that: how much an object explains */
  int shape, colour;           /* index into the shape / color model's labels; -1: no model */
  float shape_p, colour_p;     /* their confidence */
  float size;                  /* -1: no model */
} ebm_infer_object;

typedef struct ebm_infer_scene {
  int nobj;
  ebm_infer_object obj[EBM_INFER_MAX_OBJECTS];
  float empty_energy; /* the best position energy on the image with every object masked */
} ebm_infer_scene;

/* Multi-object inference on images[n] with the concept set's "position" model (required) and,
 * for each object found, "shape", "color" and "size" when the set has them, each read on a copy
 * of the image that shows only that object (every pixel nearer another object's projected place
 * set to the image's median colour, as eval.h masks places). K objects (1..EBM_INFER_MAX_OBJECTS)
 * or K = 0 for auto. Greedy with masking: object k is the position inference on the image with
 * objects 1..k-1 boxed out (median colour), which keeps two answers off one object without a
 * tuned repulsion term; a single joint descent on sum_k E(x | c_k) has every c_k drawn to the
 * same strongest basin, since a model trained on one object gives each term the same landscape.
 * Auto: objects are added while drop_k >= auto_ratio * drop_1 and drop_k > 0, where drop_k is
 * the empty floor's best energy minus object k's. 0 or -1 with err. */
int ebm_infer_scenes(const ebm_concept_set *set, const float *images, int n, int R, int K,
                     const ebm_infer_options *o, ebm_infer_scene *out, char *err, size_t errlen);

/* ---- masks (shared with the judge baseline of `vkebm infer --data`) ------------------------ */
/* Pixel centre (column, row) of a ground position's place (the default camera; eval.c's rule). */
void ebm_infer_place_pixel(float x, float y, int R, float px[2]);
/* Fills the box an object of half-extent size standing at (x, y) covers (default camera), grown
 * by one pixel, with fill[3], in img[3, R, R]. */
void ebm_infer_mask_box(float *img, int R, float x, float y, float size, const float fill[3]);
/* out[3, R, R]: img with every pixel nearer another place than place i set to fill[3]. */
void ebm_infer_mask_others(const float *img, int R, const float (*places)[2], int nplaces, int i,
                           const float fill[3], float *out);
/* Per-channel median of img[3, R, R]. */
void ebm_infer_median(const float *img, int R, float fill[3]);

#endif
