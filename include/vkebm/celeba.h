/* celeba.h: the CelebA face data set (Liu et al. 2015) as training data, from the files a user
 * brings: DIR/list_attr_celeba.txt and DIR/img_align_celeba/.
 *
 * Owns: reading the attribute list in its published format, strictly (line 1 the number of
 * images; line 2 the attribute names separated by white space; then one row per image, its file
 * name and one value per attribute, 1 or -1, separated by white space; every error names the
 * line), decoding the images (JPEG through libjpeg, or PNG: the format is read from the file's
 * first bytes, not its name), the centre crop and the resize to R x R, and the whole data set as
 * uint8 CHW images with one attribute's yes/no per image.
 *
 * Crop and resize: the largest centred square (178 x 178 of the aligned 178 x 218 images, rows
 * 20..197), averaged down to R x R by area (each output pixel the coverage-weighted mean of the
 * source pixels under it). JPEGs are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling)
 * when the scaled square still has at least R pixels a side, which is ~4-16x faster. The paper's
 * code resized the whole 178 x 218 frame to a square instead, squashing faces by 18 %.
 *
 * Labels: an attribute is a concept with a one-hot label over (no, yes), the paper code's
 * np.eye(2)[attr > 0]: both values are conditionals the model learns, so `Smiling=no` is a
 * concept as well as `Smiling=yes`, and `NOT Smiling=yes` stays the paper's negation.
 */
#ifndef VKEBM_CELEBA_H
#define VKEBM_CELEBA_H

#include <stddef.h>
#include <stdint.h>

#define CELEBA_MAX_ATTRS 64      /* the real file has 40 */
#define CELEBA_NAME_MAX 48       /* attribute names, NUL included */
#define CELEBA_FILE_MAX 64       /* image file names, NUL included */
#define CELEBA_MAX_IMAGES 10000000
#define CELEBA_LABEL_DIM 2       /* one-hot (no, yes) */
#define CELEBA_LABEL_NAMES "no,yes"
#define CELEBA_ATTR_FILE "list_attr_celeba.txt"
#define CELEBA_IMAGE_DIR "img_align_celeba"

typedef struct celeba_attrs {
  int nattr;
  char names[CELEBA_MAX_ATTRS][CELEBA_NAME_MAX];
  int n;                         /* images (rows) */
  char (*files)[CELEBA_FILE_MAX]; /* [n] file names as listed */
  int8_t *values;                /* [n, nattr]: +1 or -1 */
} celeba_attrs;

/* Parses the text of an attribute list (len bytes; name is the file named in messages). 0, or
 * -1 with a one-line reason naming the line ("list_attr_celeba.txt line 7: ..."). */
int celeba_parse_attrs(const char *text, size_t len, const char *name, celeba_attrs *out,
                       char *err, size_t errlen);
/* Reads and parses a file. 0 or -1 with err. */
int celeba_read_attrs(const char *path, celeba_attrs *out, char *err, size_t errlen);
void celeba_attrs_free(celeba_attrs *a);
/* Index of an attribute name (exact match), -1 when absent. */
int celeba_attr_index(const celeba_attrs *a, const char *name);

/* "celeba:DIR" -> DIR (a pointer into spec), NULL when spec does not name CelebA. */
const char *celeba_spec_dir(const char *spec);
/* 1 when name can be an attribute (and so a concept): 1..47 characters of [A-Za-z0-9_]. */
int celeba_name_ok(const char *name);

/* One image file, centre-cropped and resized to R x R (R in 8..256), into chw[3, R, R] as
 * bytes. 0, or -1 with a reason naming the file. */
int celeba_load_image(const char *path, int R, uint8_t *chw, char *err, size_t errlen);
/* The same from the file's n bytes in memory (path names it in messages). */
int celeba_decode_image(const void *data, size_t n, const char *path, int R, uint8_t *chw,
                        char *err, size_t errlen);
/* The crop and resize alone, of an interleaved RGB image rgb[H, W, 3]. */
void celeba_crop_resize(const uint8_t *rgb, int W, int H, int R, uint8_t *chw);

typedef struct celeba_data {
  int n;            /* images */
  int R;
  uint8_t *images;  /* [n, 3, R, R] */
  uint8_t *yes;     /* [n]: 1 when the attribute is +1 */
  int64_t count_yes;
} celeba_data;

/* The data set of DIR for one attribute at R x R: every row of DIR/list_attr_celeba.txt, its
 * image DIR/img_align_celeba/FILE. An unknown attribute is an error listing the valid names.
 * 0, or -1 with err. */
int celeba_load(const char *dir, const char *attribute, int R, celeba_data *out, char *err,
                size_t errlen);
void celeba_data_free(celeba_data *d);

#endif /* VKEBM_CELEBA_H */
