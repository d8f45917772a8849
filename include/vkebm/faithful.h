/* faithful.h: analysis by synthesis: is an image the scene a reading says it is?
 *
 * Owns: re-rendering the objects read from an image (shape, colour, size, position of each)
 * with the scene renderer, refining the nuisances the labels do not fix by a small search, and
 * the pixel residual between the image and its best re-render. The judge (judge.h) answers on
 * anything: it read an empty, noisy floor as a confident "white cone, size 0.26". A reading
 * is only believed when the scene it describes, rendered, looks like the image.
 *
 * The search (coordinate descent, a pure function of its inputs, ~60-120 renders per image):
 *   nuisances  cube yaw (0 .. pi/2), light azimuth and elevation offsets (the data specs'
 *              jitter range, scene.h), and a per-channel gain fitted in closed form (light
 *              intensity 0.85-1.15 and tint +-4% in the specs; the gain is clamped to 0.75-1.3
 *              and each channel to +-6% of the mean gain, so it cannot paint an object in)
 *   labels     each object's x, y (steps 0.08 .. 0.01) and size (0.06 .. 0.015) around the
 *              reading: the judge reads to ~0.035 / 0.012, the camera jitter moves objects too
 *   objective  the sum of squared differences of the 3x3-box-blurred images, gain applied
 *   camera     the specs' unjittered camera (its jitter moves and scales the object, which the
 *              x, y, size refinement absorbs)
 * The residual of the best re-render is the worst local mismatch: the largest RMS, over the 3
 * channels of every R/4 x R/4 window (stride R/16), of the blurred difference. A missing object,
 * a second blob, a haze or a smear each leave one window far off, where an image-wide RMS would
 * average a small object's error away.
 *
 * A threshold on the residual is calibrated on fresh renders put through the same procedure
 * (judge reading -> search -> residual): a quantile (0.99) of their residuals, one threshold for
 * one-object scenes and one for scenes of two or more (eval.c calibrates; the judge file
 * records it).
 */
#ifndef VKEBM_FAITHFUL_H
#define VKEBM_FAITHFUL_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/scene.h"

#define EBM_FAITHFUL_MAX_OBJECTS SCENE_MAX_OBJECTS

/* What a reading says about one object. */
typedef struct ebm_faithful_object {
  int shape, colour; /* scene.h ids */
  float x, y, size;  /* label units */
} ebm_faithful_object;

typedef struct ebm_faithful_fit {
  float residual;   /* worst window RMS of the blurred difference (see above) */
  float global_rms; /* RMS of the blurred difference over the whole image */
  float empty_residual; /* the residual against the same floor and light with no object */
  float ratio;          /* residual / empty_residual: 1 when the objects explain nothing */
  int nobj;
  ebm_faithful_object obj[EBM_FAITHFUL_MAX_OBJECTS]; /* refined x, y, size */
  float yaw[EBM_FAITHFUL_MAX_OBJECTS];
  float light_az, light_el; /* offsets from the default light, radians */
  float gain[3];
  int renders;              /* renders the search used */
} ebm_faithful_fit;

/* Searches the re-render of objs[nobj] (1 .. EBM_FAITHFUL_MAX_OBJECTS) that best explains
 * img[3, R, R] and fills fit; rerender[3, R, R] (optional) receives it, gain applied. 0, or -1
 * when nobj is out of range or memory runs out. */
int ebm_faithful_refit(const float *img, int R, const ebm_faithful_object *objs, int nobj,
                       ebm_faithful_fit *fit, float *rerender);

/* The scene the fit describes (camera and floor unjittered, light at the fitted angles). */
void ebm_faithful_scene(const ebm_faithful_fit *fit, scene_desc *d);

/* Calibrated thresholds: a sample is faithful when its residual and its ratio are both at
 * most these, [0] for one object, [1] for two or more. */
typedef struct ebm_faithful_thresholds {
  float residual[2], ratio[2];
  char how[256]; /* how they were calibrated, one line */
} ebm_faithful_thresholds;

/* The q-quantile (0..1) of v[n] (v is sorted in place); nearest rank, for calibration. */
float ebm_faithful_quantile(float *v, int n, float q);

#endif
