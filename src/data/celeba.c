/* celeba.c: the CelebA attribute list and images as training data (include/vkebm/celeba.h).
 *
 * Owns the strict parser of list_attr_celeba.txt (every error names its line), the JPEG decoder
 * (libjpeg, with DCT scaling when the target is small) and the PNG path (image.h), the centre
 * crop with the area resize, and loading a whole data set for one attribute on a few threads
 * (each image lands in its own slot, so the result does not depend on the thread count).
 */
#include "vkebm/celeba.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

#include "vkebm/fileio.h"
#include "vkebm/image.h"

#define CELEBA_MAX_FILE_BYTES ((size_t)1 << 30) /* the attribute list; the real one is 26 MB */
#define CELEBA_MAX_IMAGE_BYTES ((size_t)64 << 20)
#define CELEBA_MAX_PIXELS ((size_t)1 << 26)


const char *celeba_spec_dir(const char *spec) {
  return spec && !strncmp(spec, "celeba:", 7) ? spec + 7 : NULL;
}

int celeba_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n < 1 || n >= CELEBA_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)name[i]) && name[i] != '_') return 0;
  return 1;
}

static int file_name_ok(const char *s, size_t n) {
  if (n < 1 || n >= CELEBA_FILE_MAX || s[0] == '.') return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return 0;
  return 1;
}

void celeba_attrs_free(celeba_attrs *a) {
  if (!a) return;
  free(a->files);
  free(a->values);
  memset(a, 0, sizeof *a);
}

int celeba_attr_index(const celeba_attrs *a, const char *name) {
  for (int i = 0; i < a->nattr; i++)
    if (!strcmp(a->names[i], name)) return i;
  return -1;
}

/* ---- the attribute list ------------------------------------------------------------------- */

typedef struct tok {
  const char *s;
  size_t n;
} tok;

/* The next white-space separated token of [*p, end); 0 at the end. */
static int next_tok(const char **p, const char *end, tok *t) {
  const char *q = *p;
  while (q < end && (*q == ' ' || *q == '\t')) q++;
  if (q == end) {
    *p = q;
    return 0;
  }
  t->s = q;
  while (q < end && *q != ' ' && *q != '\t') q++;
  t->n = (size_t)(q - t->s);
  *p = q;
  return 1;
}

static const celeba_attrs *g_sort_attrs; /* for the duplicate check's qsort */
static int cmp_row(const void *a, const void *b) {
  int i = *(const int *)a, j = *(const int *)b;
  int c = strcmp(g_sort_attrs->files[i], g_sort_attrs->files[j]);
  return c ? c : (i > j) - (i < j);
}

int celeba_parse_attrs(const char *text, size_t len, const char *name, celeba_attrs *out,
                       char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *p = text, *end = text + len;
  long line = 0, announced = -1, blank_at = 0;
  size_t cap = 0;
  int rc = -1;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
    line++;
    if (le > p && le[-1] == '\r') le--;
    if (memchr(p, 0, (size_t)(le - p))) {
      io_fail(err, errlen, "%s line %ld: a NUL byte (not a text file)", name, line);
      goto out;
    }
    const char *q = p;
    tok t;
    int any = next_tok(&q, le, &t);
    q = p;
    if (line == 1) { /* the number of images */
      char num[24];
      tok extra;
      if (!any || t.n >= sizeof num) {
        io_fail(err, errlen, "%s line 1: expected the number of images", name);
        goto out;
      }
      next_tok(&q, le, &t);
      memcpy(num, t.s, t.n);
      num[t.n] = 0;
      char *e;
      errno = 0;
      long v = strtol(num, &e, 10);
      if (*e || errno || v < 1 || v > CELEBA_MAX_IMAGES || next_tok(&q, le, &extra)) {
        io_fail(err, errlen, "%s line 1: expected the number of images (1..%d), got '%.*s'", name,
             CELEBA_MAX_IMAGES, (int)(le - p > 40 ? 40 : le - p), p);
        goto out;
      }
      announced = v;
    } else if (line == 2) { /* the attribute names */
      while (next_tok(&q, le, &t)) {
        if (out->nattr == CELEBA_MAX_ATTRS) {
          io_fail(err, errlen, "%s line 2: more than %d attribute names", name, CELEBA_MAX_ATTRS);
          goto out;
        }
        char *dst = out->names[out->nattr];
        if (t.n >= CELEBA_NAME_MAX) {
          io_fail(err, errlen, "%s line 2: attribute name '%.40s...' is longer than %d characters",
               name, t.s, CELEBA_NAME_MAX - 1);
          goto out;
        }
        memcpy(dst, t.s, t.n);
        dst[t.n] = 0;
        if (!celeba_name_ok(dst)) {
          io_fail(err, errlen, "%s line 2: attribute name '%s' has characters other than letters, "
                            "digits and _", name, dst);
          goto out;
        }
        for (int k = 0; k < out->nattr; k++)
          if (!strcmp(out->names[k], dst)) {
            io_fail(err, errlen, "%s line 2: attribute '%s' is named twice", name, dst);
            goto out;
          }
        out->nattr++;
      }
      if (!out->nattr) {
        io_fail(err, errlen, "%s line 2: expected the attribute names", name);
        goto out;
      }
    } else if (!any) { /* blank: only at the end */
      if (!blank_at) blank_at = line;
    } else {
      if (blank_at) {
        io_fail(err, errlen, "%s line %ld: an empty line before more rows", name, blank_at);
        goto out;
      }
      if (out->n == announced) {
        io_fail(err, errlen, "%s line %ld: more rows than the %ld images line 1 announces", name,
             line, announced);
        goto out;
      }
      if ((size_t)out->n == cap) {
        size_t nc = cap ? 2 * cap : 1024;
        if (nc > (size_t)announced) nc = (size_t)announced;
        void *f = realloc(out->files, nc * sizeof *out->files);
        if (f) out->files = f;
        void *v = f ? realloc(out->values, nc * (size_t)out->nattr) : NULL;
        if (!f || !v) {
          io_fail(err, errlen, "%s: out of memory at line %ld", name, line);
          goto out;
        }
        out->values = v;
        cap = nc;
      }
      next_tok(&q, le, &t);
      if (!file_name_ok(t.s, t.n)) {
        io_fail(err, errlen, "%s line %ld: expected an image file name first, got '%.*s'", name,
             line, (int)(t.n > 40 ? 40 : t.n), t.s);
        goto out;
      }
      memcpy(out->files[out->n], t.s, t.n);
      out->files[out->n][t.n] = 0;
      int8_t *row = out->values + (size_t)out->n * out->nattr;
      int k = 0;
      while (next_tok(&q, le, &t)) {
        if (k == out->nattr) {
          io_fail(err, errlen, "%s line %ld: more than %d values (one per attribute of line 2)",
               name, line, out->nattr);
          goto out;
        }
        if (t.n == 1 && t.s[0] == '1') row[k] = 1;
        else if (t.n == 2 && t.s[0] == '-' && t.s[1] == '1') row[k] = -1;
        else {
          io_fail(err, errlen, "%s line %ld: value %d (%s) is '%.*s', expected 1 or -1", name, line,
               k + 1, out->names[k], (int)(t.n > 20 ? 20 : t.n), t.s);
          goto out;
        }
        k++;
      }
      if (k != out->nattr) {
        io_fail(err, errlen, "%s line %ld: %d values for %d attributes", name, line, k, out->nattr);
        goto out;
      }
      out->n++;
    }
    p = next;
  }
  if (line < 2) {
    io_fail(err, errlen, "%s: %s", name, line ? "no attribute names (line 2)" : "empty file");
    goto out;
  }
  if (out->n != announced) {
    io_fail(err, errlen, "%s line 1: announces %ld images, the file has %d rows", name, announced,
         out->n);
    goto out;
  }
  /* every file once: sorted by name, neighbours differ; the message names both rows */
  int *order = malloc((size_t)out->n * sizeof *order);
  if (!order) {
    io_fail(err, errlen, "%s: out of memory", name);
    goto out;
  }
  for (int i = 0; i < out->n; i++) order[i] = i;
  g_sort_attrs = out;
  qsort(order, (size_t)out->n, sizeof *order, cmp_row);
  g_sort_attrs = NULL;
  for (int i = 1; i < out->n; i++)
    if (!strcmp(out->files[order[i]], out->files[order[i - 1]])) {
      io_fail(err, errlen, "%s line %d: %s is listed again (first on line %d)", name, order[i] + 3,
           out->files[order[i]], order[i - 1] + 3);
      free(order);
      goto out;
    }
  free(order);
  rc = 0;
out:
  if (rc) celeba_attrs_free(out);
  return rc;
}

int celeba_read_attrs(const char *path, celeba_attrs *out, char *err, size_t errlen) {
  void *data = NULL;
  size_t n = 0;
  char why[512];
  memset(out, 0, sizeof *out);
  if (io_read_file(path, CELEBA_MAX_FILE_BYTES, &data, &n, why, sizeof why) != 0)
    return io_fail(err, errlen, "%s", why);
  int rc = celeba_parse_attrs(data, n, path, out, err, errlen);
  free(data);
  return rc;
}

/* ---- images -------------------------------------------------------------------------------- */

/* Area resampling of the square [fx0, fx0 + side) x [fy0, fy0 + side) of rgb[H, W, 3] (in
 * pixels, fractional: a DCT-scaled JPEG's pixel k covers full-size pixels [k d, k d + d), so a
 * crop in full-size pixels lands at fractions of scaled ones) to chw[3, R, R]: each output pixel
 * is the coverage-weighted mean of the source pixels under it (separable: rows, then columns).
 * Source pixels past the edge repeat the edge. */
static void resample(const uint8_t *rgb, int W, int H, double fx0, double fy0, double side, int R,
                     uint8_t *chw) {
  const double step = side / R;
  const int ky0 = (int)fy0, ky1 = (int)(fy0 + side - 1e-9) + 1; /* source rows used */
  const int rows = ky1 - ky0;
  double *tmp = malloc(sizeof(double) * (size_t)rows * R * 3);
  if (!tmp) { /* only tiny allocations reach here; never leave garbage */
    memset(chw, 0, (size_t)3 * R * R);
    return;
  }
  for (int r = 0; r < rows; r++) { /* horizontal: source rows x R columns */
    const int y = ky0 + r < H ? ky0 + r : H - 1;
    for (int o = 0; o < R; o++) {
      const double a = fx0 + o * step, b = fx0 + (o + 1) * step;
      double acc[3] = {0, 0, 0};
      for (int k = (int)a; k < b; k++) {
        const double w = (k + 1 < b ? k + 1 : b) - (k > a ? k : a);
        const uint8_t *px = rgb + ((size_t)y * W + (k < W ? k : W - 1)) * 3;
        for (int c = 0; c < 3; c++) acc[c] += w * px[c];
      }
      for (int c = 0; c < 3; c++) tmp[((size_t)r * R + o) * 3 + c] = acc[c] / step;
    }
  }
  for (int o = 0; o < R; o++) /* vertical */
    for (int x = 0; x < R; x++) {
      const double a = fy0 + o * step, b = fy0 + (o + 1) * step;
      double acc[3] = {0, 0, 0};
      for (int k = (int)a; k < b; k++) {
        const double w = (k + 1 < b ? k + 1 : b) - (k > a ? k : a);
        /* (o + 1) * step can round past fy0 + side: the row past the last one repeats it */
        const int r = k - ky0 < rows ? k - ky0 : rows - 1;
        for (int c = 0; c < 3; c++) acc[c] += w * tmp[((size_t)r * R + x) * 3 + c];
      }
      for (int c = 0; c < 3; c++) {
        const double v = acc[c] / step + 0.5;
        chw[(size_t)c * R * R + (size_t)o * R + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  free(tmp);
}

void celeba_crop_resize(const uint8_t *rgb, int W, int H, int R, uint8_t *chw) {
  const int S = W < H ? W : H;
  resample(rgb, W, H, (W - S) / 2, (H - S) / 2, S, R, chw);
}

typedef struct jpeg_fail {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_exit(j_common_ptr c) {
  jpeg_fail *f = (jpeg_fail *)c->err;
  c->err->format_message(c, f->msg);
  longjmp(f->jb, 1);
}
static void jpeg_quiet(j_common_ptr c) { (void)c; } /* warnings: not printed */

/* A JPEG at the smallest DCT scale (1/1 .. 1/8) whose centre square keeps >= 2R pixels a side
 * (a scaled pixel averages a d x d block: at >= 2 per output pixel the crop edge blurs by under
 * half an output pixel). */
static int decode_jpeg(const uint8_t *data, size_t n, const char *path, int R, uint8_t **rgb,
                       int *W, int *H, int *full_w, int *full_h, int *scale, char *err,
                       size_t errlen) {
  struct jpeg_decompress_struct ci;
  jpeg_fail jf;
  uint8_t *volatile buf = NULL;
  memset(&ci, 0, sizeof ci);
  ci.err = jpeg_std_error(&jf.pub);
  jf.pub.error_exit = jpeg_exit;
  jf.pub.output_message = jpeg_quiet;
  if (setjmp(jf.jb)) {
    jpeg_destroy_decompress(&ci);
    free(buf);
    return io_fail(err, errlen, "%s: not a readable JPEG (%s)", path, jf.msg);
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, data, (unsigned long)n);
  jpeg_read_header(&ci, TRUE);
  if ((size_t)ci.image_width * ci.image_height > CELEBA_MAX_PIXELS) {
    jpeg_destroy_decompress(&ci);
    return io_fail(err, errlen, "%s: %ux%u is more than %zu pixels", path, ci.image_width,
                ci.image_height, CELEBA_MAX_PIXELS);
  }
  const unsigned side = ci.image_width < ci.image_height ? ci.image_width : ci.image_height;
  unsigned denom = 8;
  while (denom > 1 && (side + denom - 1) / denom < 2 * (unsigned)R) denom /= 2;
  ci.scale_num = 1;
  ci.scale_denom = denom;
  ci.out_color_space = JCS_RGB;
  jpeg_start_decompress(&ci);
  if (ci.output_components != 3) {
    jpeg_destroy_decompress(&ci);
    return io_fail(err, errlen, "%s: %d colour components after conversion to RGB", path,
                ci.output_components);
  }
  const size_t stride = (size_t)ci.output_width * 3;
  buf = malloc(stride * ci.output_height);
  if (!buf) {
    jpeg_destroy_decompress(&ci);
    return io_fail(err, errlen, "%s: out of memory", path);
  }
  while (ci.output_scanline < ci.output_height) {
    JSAMPROW row = buf + stride * ci.output_scanline;
    jpeg_read_scanlines(&ci, &row, 1);
  }
  jpeg_finish_decompress(&ci);
  *W = (int)ci.output_width;
  *H = (int)ci.output_height;
  *full_w = (int)ci.image_width;
  *full_h = (int)ci.image_height;
  *scale = (int)denom;
  jpeg_destroy_decompress(&ci);
  *rgb = buf;
  return 0;
}

int celeba_load_image(const char *path, int R, uint8_t *chw, char *err, size_t errlen) {
  if (R < 8 || R > 256) return io_fail(err, errlen, "image size %d outside 8..256", R);
  void *data = NULL;
  size_t n = 0;
  char why[512];
  if (io_read_file(path, CELEBA_MAX_IMAGE_BYTES, &data, &n, why, sizeof why) != 0)
    return io_fail(err, errlen, "%s", why);
  int rc = celeba_decode_image(data, n, path, R, chw, err, errlen);
  free(data);
  return rc;
}

int celeba_decode_image(const void *data, size_t n, const char *path, int R, uint8_t *chw,
                        char *err, size_t errlen) {
  if (R < 8 || R > 256) return io_fail(err, errlen, "image size %d outside 8..256", R);
  const uint8_t *b = data;
  uint8_t *rgb = NULL;
  int W = 0, H = 0, FW = 0, FH = 0, d = 1, rc;
  if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
    rc = decode_jpeg(b, n, path, R, &rgb, &W, &H, &FW, &FH, &d, err, errlen);
  } else if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
    rc = img_decode_png_rgb8(b, n, path, &rgb, &W, &H, NULL, NULL, err, errlen);
    FW = W, FH = H;
  } else {
    rc = io_fail(err, errlen, "%s: neither a JPEG nor a PNG file", path);
  }
  if (rc) return -1;
  /* the centre square in full-size pixels, mapped onto the (possibly 1/d-scaled) decode */
  const int S = FW < FH ? FW : FH;
  resample(rgb, W, H, (double)((FW - S) / 2) / d, (double)((FH - S) / 2) / d, (double)S / d, R, chw);
  free(rgb);
  return 0;
}

/* ---- the data set ------------------------------------------------------------------------- */

typedef struct load_job {
  const char *dir;
  const celeba_attrs *attrs;
  celeba_data *out;
  int next;                 /* the next row to take */
  int failed_row;           /* the lowest failing row (n: none) */
  char err[768];
  pthread_mutex_t lock;
} load_job;

static void *load_worker(void *arg) {
  load_job *job = arg;
  const int R = job->out->R;
  char path[4096], err[768];
  for (;;) {
    pthread_mutex_lock(&job->lock);
    int i = job->next < job->failed_row ? job->next++ : job->attrs->n;
    pthread_mutex_unlock(&job->lock);
    if (i >= job->attrs->n) return NULL;
    snprintf(path, sizeof path, "%s/%s/%s", job->dir, CELEBA_IMAGE_DIR, job->attrs->files[i]);
    if (celeba_load_image(path, R, job->out->images + (size_t)i * 3 * R * R, err, sizeof err)) {
      pthread_mutex_lock(&job->lock);
      if (i < job->failed_row) {
        job->failed_row = i;
        snprintf(job->err, sizeof job->err, "%s", err);
      }
      pthread_mutex_unlock(&job->lock);
    }
  }
}

void celeba_data_free(celeba_data *d) {
  if (!d) return;
  free(d->images);
  free(d->yes);
  memset(d, 0, sizeof *d);
}

int celeba_load(const char *dir, const char *attribute, int R, celeba_data *out, char *err,
                size_t errlen) {
  memset(out, 0, sizeof *out);
  if (R < 8 || R > 256) return io_fail(err, errlen, "image size %d outside 8..256", R);
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, CELEBA_ATTR_FILE);
  celeba_attrs a;
  if (celeba_read_attrs(path, &a, err, errlen)) return -1;
  const int k = celeba_attr_index(&a, attribute);
  if (k < 0) {
    int m = snprintf(err, errlen, "%s has no attribute '%s' (it has", path, attribute);
    for (int i = 0; i < a.nattr && m > 0 && (size_t)m < errlen; i++)
      m += snprintf(err + m, errlen - (size_t)m, "%s %s", i ? "," : "", a.names[i]);
    if (m > 0 && (size_t)m < errlen) snprintf(err + m, errlen - (size_t)m, ")");
    celeba_attrs_free(&a);
    return -1;
  }
  const size_t per = (size_t)3 * R * R;
  out->n = a.n;
  out->R = R;
  out->images = malloc(per * (size_t)a.n);
  out->yes = malloc((size_t)a.n);
  if (!out->images || !out->yes) {
    celeba_data_free(out);
    io_fail(err, errlen, "out of memory for %d images at %dx%d (%.2f GB)", a.n, R, R,
         (double)per * a.n / 1e9);
    celeba_attrs_free(&a);
    return -1;
  }
  for (int i = 0; i < a.n; i++) {
    out->yes[i] = a.values[(size_t)i * a.nattr + k] > 0;
    out->count_yes += out->yes[i];
  }
  load_job job = {.dir = dir, .attrs = &a, .out = out, .failed_row = a.n};
  pthread_mutex_init(&job.lock, NULL);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const char *env = getenv("VKEBM_THREADS");
  int nt = env && atoi(env) > 0 ? atoi(env) : cores > 0 ? (int)cores : 1;
  if (nt > 16) nt = 16;
  if (nt > a.n) nt = a.n;
  pthread_t th[16];
  int started = 0;
  for (int t = 1; t < nt; t++)
    if (!pthread_create(&th[t], NULL, load_worker, &job)) started = t;
    else break;
  load_worker(&job);
  for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
  pthread_mutex_destroy(&job.lock);
  int rc = 0;
  if (job.failed_row < a.n) {
    io_fail(err, errlen, "%s (listed on line %d of %s)", job.err, job.failed_row + 3, path);
    celeba_data_free(out);
    rc = -1;
  }
  celeba_attrs_free(&a);
  return rc;
}
