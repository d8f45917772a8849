/* image.h: PNG files and image grids (no Vulkan, no models).
 *
 * Images are float RGB in [0, 1], planar CHW ([3, H, W]) like the network's input; PNGs are
 * 8-bit RGB with rounding. Text chunks (tEXt) carry provenance (expression, seed, settings);
 * nothing time-dependent is written, so the same inputs give the same bytes.
 */
#ifndef VKEBM_IMAGE_H
#define VKEBM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct img_text {
  const char *key;   /* 1-79 Latin-1 characters */
  const char *value;
} img_text;

/* Writes an 8-bit RGB PNG from interleaved rgb[H*W*3] bytes. 0 or -1 with err. Atomic. Adds a
 * "Software" = "vkebm VERSION" chunk (the format marker) unless text has a Software key. */
int img_write_png_rgb8(const char *path, const uint8_t *rgb, int W, int H, const img_text *text,
                       int ntext, char *err, size_t errlen);
/* Same with flags: IMG_WRITE_NO_FSYNC writes atomically but not durably (see io_write_atomic_ex):
 * for many files that can be regenerated (datasets, frames), ~20x faster per small image. */
#define IMG_WRITE_NO_FSYNC 1
int img_write_png_rgb8_flags(const char *path, const uint8_t *rgb, int W, int H,
                             const img_text *text, int ntext, int flags, char *err, size_t errlen);
/* Reads any PNG as 8-bit RGB (alpha dropped, palette/gray expanded). *rgb malloc'd.
 * text/ntext optional: the file's tEXt/zTXt/iTXt chunks, malloc'd (free with img_text_free);
 * values are UTF-8 (Latin-1 tEXt/zTXt values are converted). */
int img_read_png_rgb8(const char *path, uint8_t **rgb, int *W, int *H, img_text **text, int *ntext,
                      char *err, size_t errlen);
/* The same from n bytes in memory (path only names the image in messages). */
int img_decode_png_rgb8(const void *data, size_t n, const char *path, uint8_t **rgb, int *W, int *H,
                        img_text **text, int *ntext, char *err, size_t errlen);
void img_text_free(img_text *text, int ntext);

/* float CHW [3,H,W] in [0,1] -> interleaved bytes (clamped, rounded), and back. */
void img_chw_to_rgb8(uint8_t *rgb, const float *chw, int W, int H);
void img_rgb8_to_chw(float *chw, const uint8_t *rgb, int W, int H);

/* torchvision save_image-style grid of n images [n,3,H,W]: nrow per row, padding px of
 * pad_value between and around. Returns malloc'd rgb bytes and the grid's size. */
uint8_t *img_make_grid(const float *images, int n, int W, int H, int nrow, int padding,
                       float pad_value, int *gw, int *gh);

/* rgb[H*W*3] enlarged k times by pixel repetition (nearest neighbour), malloc'd. */
uint8_t *img_scale_nearest(const uint8_t *rgb, int W, int H, int k);

#endif
