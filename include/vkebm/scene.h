/* scene.h: the built-in 3D scene generator: exactly labelled renders of objects on a floor.
 *
 * Owns: the scene description (camera, light, floor, up to 5 objects), the named specs that
 * define data splits, sampling scene `index` of a spec from (seed, index) with the counter-based
 * RNG of shared.h (random access: batch k at step t is just indices t*B .. t*B+B-1), the packed
 * float form a batch of scenes is uploaded as (VKEBM_SCENE_FLOATS each, layout in
 * scene_shade.h), the CPU renderer, and the label vectors the concept networks are trained on.
 * The Vulkan renderer is the backend op ebm_scene_render (backend.h), which takes the same
 * packed floats.
 *
 * Images are float CHW [3, size, size] in [0, 1], batch-contiguous, like the network's input.
 *
 * Label positions (x, y) in [-1, 1]^2 are ground-plane coordinates: x grows to the right of
 * the image, y grows away from the camera (up the image). World X = x * SCENE_POS_SCALE_X,
 * world Z = -y * SCENE_POS_SCALE_Z. Size is the half-extent s (a cube of size s is 2s wide).
 */
#ifndef VKEBM_SCENE_H
#define VKEBM_SCENE_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/scene_shade.h"

#define SCENE_MAX_OBJECTS 5
#define SCENE_POS_SCALE_X 1.3f  /* world units per unit of label x */
#define SCENE_POS_SCALE_Z 1.7f /* world units per unit of label y (the floor is seen foreshortened) */
#define SCENE_MIN_RENDER_SIZE 8
#define SCENE_MAX_RENDER_SIZE 256

enum { SCENE_CUBE, SCENE_SPHERE, SCENE_CYLINDER, SCENE_CONE, SCENE_NSHAPES };
enum { SCENE_NCOLOURS = 8 };

const char *scene_shape_name(int shape);   /* "cube", ... ; NULL when out of range */
const char *scene_colour_name(int colour); /* "red", ... ; NULL when out of range */
void scene_palette_rgb(int colour, float rgb[3]);
/* Name -> id; -1 when unknown. */
int scene_shape_from_name(const char *name);
int scene_colour_from_name(const char *name);

typedef struct scene_object {
  int shape;     /* SCENE_CUBE .. */
  int colour;    /* palette index */
  float rgb[3];  /* albedo: the palette entry, plus jitter when the spec asks for it */
  float size;    /* half-extent */
  float x, y;    /* label position in [-1, 1]^2 */
  float yaw;     /* rotation about the vertical axis, radians */
} scene_object;

typedef struct scene_desc {
  float eye[3], target[3];  /* camera (world), up = +y */
  float fovy;               /* radians */
  float light_dir[3];       /* unit, toward the light */
  float light_rgb[3];       /* colour times intensity */
  float ambient;            /* 0..1 */
  float floor_rgb[3];
  float sky;
  int nobj;
  scene_object obj[SCENE_MAX_OBJECTS];
} scene_desc;

/* ---- specs ---------------------------------------------------------------------------------
 *   general              one object; shape, colour, size, position, yaw all random
 *   continual-position   purple cubes at random positions (random size and yaw)
 *   continual-shape      all shapes, purple
 *   continual-color      all shapes and colours (continual-colour is accepted too)
 *   cross-product R      purple cubes on a 6x6 grid of positions x 5 sizes (0.3 .. 0.7): a
 *                        fraction R of the positions show every size, each other position
 *                        only one size (the training split)
 *   cross-product-test R the (position, size) pairs cross-product R never shows
 *   multi K              K = 2..5 objects, all random, sizes 0.3 .. 0.5, apart on the floor
 *                        and in the image
 * Written "name", "name ARG" or "name:ARG". Nuisances (each switchable, on by default): light
 * colour/intensity/direction jitter, camera jitter, small albedo jitter. */
typedef enum scene_spec_kind {
  SCENE_SPEC_GENERAL,
  SCENE_SPEC_CONTINUAL_POSITION,
  SCENE_SPEC_CONTINUAL_SHAPE,
  SCENE_SPEC_CONTINUAL_COLOUR,
  SCENE_SPEC_CROSS_PRODUCT,
  SCENE_SPEC_CROSS_PRODUCT_TEST,
  SCENE_SPEC_MULTI,
} scene_spec_kind;

#define SCENE_CROSS_GRID 6  /* positions per axis */
#define SCENE_CROSS_SIZES 5 /* size levels 0.3, 0.4, .., 0.7 */

typedef struct scene_spec {
  scene_spec_kind kind;
  float ratio;       /* cross-product */
  int nobj;          /* objects per scene */
  float size_min, size_max;
  int light_jitter;  /* light colour, intensity and direction */
  int camera_jitter; /* eye and target moved by a few percent */
  int colour_jitter; /* albedo moved by up to +-0.04 per channel */
  /* cross-product: which (position, size level) pairs the split shows, [pos][size] */
  uint8_t cross_allowed[SCENE_CROSS_GRID * SCENE_CROSS_GRID][SCENE_CROSS_SIZES];
  int cross_npairs;
} scene_spec;

/* Parses a spec string. 0, or -1 with a one-line reason that lists the valid specs. */
int scene_spec_parse(const char *text, scene_spec *spec, char *err, size_t errlen);
/* The valid spec forms, one line (for usage messages). */
const char *scene_spec_usage(void);
/* Canonical text of a parsed spec ("cross-product:0.5"). */
void scene_spec_format(const scene_spec *spec, char *buf, size_t len);

/* The unjittered camera, light and floor, no objects: what a spec with every nuisance off
 * starts from. */
void scene_default_environment(scene_desc *d);
/* Sets the light direction to the default's azimuth and elevation plus the given offsets
 * (radians; the specs' light jitter draws them within +-SCENE_LIGHT_AZ/EL_JITTER). */
#define SCENE_LIGHT_AZ_JITTER 0.45f
#define SCENE_LIGHT_EL_JITTER 0.12f
void scene_set_light_angles(scene_desc *d, float az_offset, float el_offset);

/* Scene `index` of the spec, a pure function of (spec, seed, index). */
void scene_sample(const scene_spec *spec, uint32_t seed, uint32_t index, scene_desc *out);
/* Cross-product grid helpers: position p = (row iy, column ix) at label
 * (-1 + 2 ix / (G-1), -1 + 2 iy / (G-1)), p = iy * G + ix; size level l at 0.3 + 0.1 l. */
float scene_cross_coord(int i);
float scene_cross_size(int level);
/* 1 when the cross-product split with this ratio shows every size at position p. */
int scene_cross_position_full(float ratio, int p);

/* Packs a scene into VKEBM_SCENE_FLOATS floats (builds view and projection with cglm). */
void scene_pack(const scene_desc *d, float *packed);
/* Samples and packs scenes first .. first+n-1 into packed[n * VKEBM_SCENE_FLOATS]. */
void scene_sample_packed(const scene_spec *spec, uint32_t seed, uint32_t first, int n,
                         float *packed);
/* Projects world point p through the scene's camera to NDC (x right, y up, in [-1, 1] when in
 * view). */
void scene_project(const scene_desc *d, const float p[3], float ndc[2]);
/* NDC bounding rectangle [xmin, ymin, xmax, ymax] of object k's bounding box. */
void scene_object_ndc_bounds(const scene_desc *d, int k, float rect[4]);

/* ---- rendering (CPU) ----------------------------------------------------------------------
 * images[n, 3, size, size] from packed[n, VKEBM_SCENE_FLOATS]; size in 8..256. The twin of
 * shaders/scene_render.comp (same code: scene_shade.h). ids (optional, [n, size, size]): the
 * object index hit by each pixel centre's ray, 255 for floor or sky. threads: 0 = one. */
void scene_render_cpu(float *images, const float *packed, int n, int size, uint8_t *ids,
                      int threads);

/* ---- labels for the concept networks ------------------------------------------------------ */
typedef enum scene_concept {
  SCENE_CONCEPT_POSITION, /* (x, y), raw */
  SCENE_CONCEPT_SIZE,     /* half-extent, raw */
  SCENE_CONCEPT_SHAPE,    /* one-hot over SCENE_NSHAPES */
  SCENE_CONCEPT_COLOUR,   /* one-hot over SCENE_NCOLOURS */
  SCENE_CONCEPT_JOINT,    /* all four at once, concatenated: x, y, size, shape one-hot, colour
                             one-hot (15 floats): the label of one model conditioned on the
                             whole description, the baseline that cannot compose */
  SCENE_NCONCEPTS
} scene_concept;

/* "position" | "size" | "shape" | "colour" (or "color") | "joint" -> concept; -1 when
 * unknown. */
int scene_concept_parse(const char *name);
const char *scene_concept_name(scene_concept c);
int scene_label_dim(scene_concept c);
/* Comma-separated names of the label's components: "x,y", "size", "cube,sphere,...";
 * joint: "x,y,size,cube,...,cone,red,...,white". */
const char *scene_label_names(scene_concept c);
/* Label of object k of the scene for concept c into out[scene_label_dim(c)]. */
void scene_label(const scene_desc *d, int k, scene_concept c, float *out);
/* A training batch: scenes first .. first+n-1 packed into packed[n, VKEBM_SCENE_FLOATS] (for
 * ebm_upload + ebm_scene_render) and object k's label for concept c into
 * labels[n, scene_label_dim(c)] (labels may be NULL). */
void scene_sample_batch(const scene_spec *spec, uint32_t seed, uint32_t first, int n, int k,
                        scene_concept c, float *packed, float *labels);

#endif /* VKEBM_SCENE_H */
