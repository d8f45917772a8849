/* image.c: PNG read/write with libpng, float<->byte conversion and torchvision-style grids.
 *
 * Owns the image file rules: we write 8-bit RGB with tEXt (or iTXt for non-ASCII values)
 * chunks, a "Software" chunk naming vkebm and its version as the format marker, and no tIME chunk, encoded into memory and then written atomically, so identical
 * inputs give identical bytes. The reader accepts any PNG (palette, gray, alpha, 16-bit,
 * interlaced) and converts it to 8-bit RGB. libpng reports errors by longjmp: every libpng call
 * sits behind a setjmp in the same function, locals that change after it are volatile, and the
 * error text is kept for the caller's one-line message.
 */
#include "vkebm/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/fileio.h"

#define IMG_MAX_SIDE 32768
#define IMG_MAX_FILE ((size_t)256 << 20)

typedef struct png_ctx {
  char msg[200];         /* libpng's error text */
  const unsigned char *in; /* reading: the file's bytes */
  size_t in_size, in_pos;
  unsigned char *out;    /* writing: the encoded bytes */
  size_t out_size, out_cap;
  int out_failed;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
  png_ctx *c = png_get_error_ptr(png);
  snprintf(c->msg, sizeof c->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void read_mem(png_structp png, png_bytep dst, png_size_t n) {
  png_ctx *c = png_get_io_ptr(png);
  if (n > c->in_size - c->in_pos) png_error(png, "file is truncated");
  memcpy(dst, c->in + c->in_pos, n);
  c->in_pos += n;
}

static void write_mem(png_structp png, png_bytep src, png_size_t n) {
  png_ctx *c = png_get_io_ptr(png);
  if (n > c->out_cap - c->out_size) {
    size_t cap = c->out_cap ? c->out_cap : 65536;
    while (cap - c->out_size < n) cap *= 2;
    unsigned char *p = realloc(c->out, cap);
    if (!p) png_error(png, "out of memory");
    c->out = p;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_size, src, n);
  c->out_size += n;
}

static void flush_mem(png_structp png) { (void)png; }

/* PNG keywords: 1-79 printable Latin-1 bytes, no leading, trailing or double spaces. */
static int valid_keyword(const char *k) {
  size_t n = strlen(k);
  if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)k[i];
    if (ch < 32 || (ch > 126 && ch < 161)) return 0;
    if (ch == ' ' && k[i + 1] == ' ') return 0;
  }
  return 1;
}

static int is_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s >= 128) return 0;
  return 1;
}

int img_write_png_rgb8(const char *path, const uint8_t *rgb, int W, int H, const img_text *text,
                       int ntext, char *err, size_t errlen) {
  return img_write_png_rgb8_flags(path, rgb, W, H, text, ntext, 0, err, errlen);
}

int img_write_png_rgb8_flags(const char *path, const uint8_t *rgb, int W, int H,
                             const img_text *text, int ntext, int flags, char *err, size_t errlen) {
  if (W < 1 || H < 1 || W > IMG_MAX_SIDE || H > IMG_MAX_SIDE) {
    snprintf(err, errlen, "%s: image size %dx%d is out of range (1..%d)", path, W, H, IMG_MAX_SIDE);
    return -1;
  }
  for (int i = 0; i < ntext; i++) {
    if (!text[i].key || !text[i].value || !valid_keyword(text[i].key)) {
      snprintf(err, errlen, "%s: text chunk %d has an invalid keyword (1-79 printable Latin-1 characters)",
               path, i);
      return -1;
    }
  }
  png_ctx ctx = {0};
  png_ctx *volatile c = &ctx;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  png_textp volatile chunks = NULL;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(chunks);
    free(c->out);
    snprintf(err, errlen, "%s: PNG encoding failed: %s", path, c->msg);
    return -1;
  }
  png_set_write_fn(png, c, write_mem, flush_mem);
  png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  /* Fixed settings: the encoded bytes depend only on the inputs and the zlib version. */
  png_set_compression_level(png, 6);
  /* Format marker: a Software chunk naming the writer, unless the caller sets its own. */
  int has_software = 0;
  for (int i = 0; i < ntext; i++) has_software |= !strcmp(text[i].key, "Software");
  int nchunks = ntext + !has_software;
  {
    chunks = calloc((size_t)nchunks, sizeof *chunks);
    if (!chunks) png_error(png, "out of memory");
    if (!has_software) {
      chunks[ntext].key = (png_charp) "Software";
      chunks[ntext].text = (png_charp) "vkebm " VKEBM_VERSION;
      chunks[ntext].text_length = strlen(chunks[ntext].text);
      chunks[ntext].compression = PNG_TEXT_COMPRESSION_NONE;
    }
    for (int i = 0; i < ntext; i++) {
      png_textp t = &chunks[i];
      t->key = (png_charp)text[i].key;
      t->text = (png_charp)text[i].value;
      t->text_length = strlen(text[i].value);
      if (is_ascii(text[i].value)) {
        t->compression = PNG_TEXT_COMPRESSION_NONE;
      } else { /* UTF-8 needs iTXt; tEXt is Latin-1 */
        t->compression = PNG_ITXT_COMPRESSION_NONE;
        t->lang = (png_charp) "";
        t->lang_key = (png_charp) "";
      }
    }
    png_set_text(png, info, chunks, nchunks);
  }
  png_write_info(png, info);
  for (int y = 0; y < H; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)W * 3));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  free(chunks);
  int rc = io_write_atomic_ex(path, c->out, c->out_size, !(flags & IMG_WRITE_NO_FSYNC), err, errlen);
  free(c->out);
  return rc;
}

void img_text_free(img_text *text, int ntext) {
  if (!text) return;
  for (int i = 0; i < ntext; i++) {
    free((char *)text[i].key);
    free((char *)text[i].value);
  }
  free(text);
}

static char *latin1_to_utf8(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(2 * n + 1), *o = out;
  if (!out) return NULL;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch < 0x80) {
      *o++ = (char)ch;
    } else {
      *o++ = (char)(0xc0 | (ch >> 6));
      *o++ = (char)(0x80 | (ch & 0x3f));
    }
  }
  *o = 0;
  return out;
}

int img_read_png_rgb8(const char *path, uint8_t **rgb, int *W, int *H, img_text **text, int *ntext,
                      char *err, size_t errlen) {
  *rgb = NULL;
  if (text) *text = NULL;
  if (ntext) *ntext = 0;
  void *bytes;
  size_t n;
  if (io_read_file(path, IMG_MAX_FILE, &bytes, &n, err, errlen)) return -1;
  int rc = img_decode_png_rgb8(bytes, n, path, rgb, W, H, text, ntext, err, errlen);
  free(bytes);
  return rc;
}

int img_decode_png_rgb8(const void *data, size_t n, const char *path, uint8_t **rgb, int *W, int *H,
                        img_text **text, int *ntext, char *err, size_t errlen) {
  *rgb = NULL;
  if (text) *text = NULL;
  if (ntext) *ntext = 0;
  /* libpng reads through a const pointer; the copy keeps this function's contract simple */
  void *bytes = malloc(n ? n : 1);
  if (!bytes) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  memcpy(bytes, data, n);
  if (n < 8 || png_sig_cmp(bytes, 0, 8)) {
    snprintf(err, errlen, "%s: not a PNG file", path);
    free(bytes);
    return -1;
  }
  /* Walk the chunk lengths before libpng sees the file: libpng allocates (and zeroes) a
   * chunk's claimed length before reading it, so one damaged length field would cost gigabytes.
   * After this every chunk lies inside the file. */
  {
    const unsigned char *p = bytes;
    size_t pos = 8;
    int iend = 0;
    while (!iend) {
      if (n - pos < 12) {
        snprintf(err, errlen, "%s: invalid PNG: file is truncated (no IEND chunk)", path);
        free(bytes);
        return -1;
      }
      uint32_t len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 | (uint32_t)p[pos + 2] << 8 | p[pos + 3];
      if (len > 0x7fffffffu || len > n - pos - 12) {
        snprintf(err, errlen, "%s: invalid PNG: chunk at byte %zu claims %u bytes, past the end of the file (truncated or damaged)",
                 path, pos, len);
        free(bytes);
        return -1;
      }
      iend = !memcmp(p + pos + 4, "IEND", 4);
      pos += 12 + (size_t)len;
    }
  }
  png_ctx ctx = {.in = bytes, .in_size = n};
  png_ctx *volatile c = &ctx;
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  img_text *volatile out_text = NULL;
  volatile int nout = 0;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    png_destroy_read_struct(&png, &info, NULL);
    free(bytes);
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    free(bytes);
    free(pixels);
    free(rows);
    img_text_free(out_text, nout);
    snprintf(err, errlen, "%s: invalid PNG: %s", path, c->msg);
    return -1;
  }
  png_set_user_limits(png, IMG_MAX_SIDE, IMG_MAX_SIDE);
  /* A damaged chunk length must not make libpng allocate (and touch) gigabytes. */
  png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20);
  png_set_read_fn(png, c, read_mem);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  /* the fuzz build: mutated chunks must reach the decoder and the text reader, not stop at CRC */
  png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#endif
  png_read_info(png, info);
  png_uint_32 w, h;
  int depth, color, interlace;
  png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
  /* deflate expands at most ~1032:1, so a claimed size the file cannot hold is a lie; refusing
   * it avoids allocating gigabytes for a 100-byte file. */
  double raw = (double)h * (1.0 + ((double)w * png_get_channels(png, info) * depth + 7) / 8);
  if (raw > 1100.0 * (double)n + 65536.0) png_error(png, "image size exceeds what the file's data can hold");
  /* Everything to 8-bit RGB: palette and low-bit gray expand, 16-bit strips, alpha drops. */
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)w * 3) png_error(png, "unexpected row size after conversion");
  pixels = malloc((size_t)w * h * 3);
  rows = malloc(sizeof(png_bytep) * h);
  if (!pixels || !rows) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * 3;
  png_read_image(png, rows);
  png_read_end(png, info); /* text chunks after the image data land in the same info */
  if (text) {
    png_textp chunks;
    int nc = 0;
    png_get_text(png, info, &chunks, &nc);
    if (nc > 0) {
      out_text = calloc((size_t)nc, sizeof *out_text);
      if (!out_text) png_error(png, "out of memory");
      for (int i = 0; i < nc; i++) {
        out_text[i].key = strdup(chunks[i].key);
        const char *v = chunks[i].text ? chunks[i].text : "";
        /* tEXt/zTXt are Latin-1, iTXt is UTF-8: callers always get UTF-8. */
        out_text[i].value = chunks[i].compression <= PNG_TEXT_COMPRESSION_zTXt ? latin1_to_utf8(v) : strdup(v);
        nout = i + 1;
        if (!out_text[i].key || !out_text[i].value) png_error(png, "out of memory");
      }
    }
  }
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  free(bytes);
  *rgb = pixels;
  *W = (int)w;
  *H = (int)h;
  if (text) {
    *text = out_text;
    *ntext = nout;
  }
  return 0;
}

/* torchvision: x.mul(255).add_(0.5).clamp_(0, 255).to(uint8), in float32. NaN maps to 0. */
static uint8_t to_byte(float x) {
  float v = x * 255.0f;
  v = v + 0.5f;
  if (!(v >= 0.0f)) return 0;
  if (v >= 255.0f) return 255;
  return (uint8_t)v;
}

void img_chw_to_rgb8(uint8_t *rgb, const float *chw, int W, int H) {
  size_t plane = (size_t)W * (size_t)H;
  for (size_t i = 0; i < plane; i++)
    for (int ch = 0; ch < 3; ch++) rgb[i * 3 + (size_t)ch] = to_byte(chw[(size_t)ch * plane + i]);
}

void img_rgb8_to_chw(float *chw, const uint8_t *rgb, int W, int H) {
  size_t plane = (size_t)W * (size_t)H;
  for (size_t i = 0; i < plane; i++)
    for (int ch = 0; ch < 3; ch++) chw[(size_t)ch * plane + i] = (float)rgb[i * 3 + (size_t)ch] / 255.0f;
}

/* torchvision.utils.make_grid then save_image's conversion: xmaps = min(nrow, n) columns,
 * ymaps = ceil(n / xmaps) rows, each cell (H + padding) x (W + padding) plus one leading
 * padding; a single image is returned without padding (make_grid squeezes it). */
uint8_t *img_make_grid(const float *images, int n, int W, int H, int nrow, int padding,
                       float pad_value, int *gw, int *gh) {
  if (n < 1 || W < 1 || H < 1 || nrow < 1 || padding < 0) return NULL;
  if (n == 1) padding = 0;
  int xmaps = n < nrow ? n : nrow;
  int ymaps = (n + xmaps - 1) / xmaps;
  int cw = W + padding, chh = H + padding;
  if (n == 1) xmaps = ymaps = 1;
  long long gwl = (long long)cw * xmaps + padding, ghl = (long long)chh * ymaps + padding;
  if (gwl > IMG_MAX_SIDE || ghl > IMG_MAX_SIDE) return NULL;
  int GW = (int)gwl, GH = (int)ghl;
  uint8_t *out = malloc((size_t)GW * (size_t)GH * 3);
  if (!out) return NULL;
  uint8_t pad = to_byte(pad_value);
  memset(out, pad, (size_t)GW * (size_t)GH * 3);
  size_t plane = (size_t)W * (size_t)H;
  for (int k = 0; k < n; k++) {
    int gx = (k % xmaps) * cw + padding, gy = (k / xmaps) * chh + padding;
    const float *img = images + (size_t)k * 3 * plane;
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int ch = 0; ch < 3; ch++)
          out[((size_t)(gy + y) * (size_t)GW + (size_t)(gx + x)) * 3 + (size_t)ch] =
              to_byte(img[(size_t)ch * plane + (size_t)y * (size_t)W + (size_t)x]);
  }
  *gw = GW;
  *gh = GH;
  return out;
}

uint8_t *img_scale_nearest(const uint8_t *rgb, int W, int H, int k) {
  if (k < 1 || W < 1 || H < 1) return NULL;
  size_t W2 = (size_t)W * k, H2 = (size_t)H * k;
  uint8_t *out = malloc(W2 * H2 * 3);
  if (!out) return NULL;
  for (size_t y = 0; y < H2; y++)
    for (size_t x = 0; x < W2; x++)
      memcpy(out + (y * W2 + x) * 3, rgb + ((y / k) * W + x / k) * 3, 3);
  return out;
}
