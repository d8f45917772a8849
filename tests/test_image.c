/* test_image.c: PNG write/read round trips pixels and text chunks, the same input gives the same
 * bytes, any PNG colour type reads as 8-bit RGB, broken files are refused with a message, the
 * float<->byte conversion matches torchvision's, and grids have make_grid's geometry. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <png.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/fileio.h"
#include "vkebm/gif.h"
#include "vkebm/image.h"

#include <gif_lib.h>

static char dir[] = "/tmp/vkebm_test_img_XXXXXX";

static const char *in_dir(const char *name) {
  static char buf[4][512];
  static int slot;
  slot = (slot + 1) % 4;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
  return buf[slot];
}

static int read_bytes(const char *path, unsigned char **b, size_t *n) {
  char err[256];
  return io_read_file(path, (size_t)1 << 30, (void **)b, n, err, sizeof err);
}

static int write_bytes(const char *path, const void *b, size_t n) {
  char err[256];
  return io_write_atomic(path, b, n, err, sizeof err);
}

static void test_round_trip(void) {
  const int W = 13, H = 7;
  uint8_t rgb[13 * 7 * 3];
  for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)((i * 37 + 11) % 256);
  img_text text[] = {{"expression", "cube(red) & !sphere"}, {"seed", "42"},
                     {"Comment", "naïve — utf-8"}};
  char err[512];
  const char *p1 = in_dir("a.png"), *p2 = in_dir("b.png");
  TU_CHECK(img_write_png_rgb8(p1, rgb, W, H, text, 3, err, sizeof err) == 0, "write: %s", err);
  TU_CHECK(img_write_png_rgb8(p2, rgb, W, H, text, 3, err, sizeof err) == 0, "write: %s", err);
  unsigned char *b1, *b2;
  size_t n1, n2;
  TU_CHECK(read_bytes(p1, &b1, &n1) == 0 && read_bytes(p2, &b2, &n2) == 0, "read bytes");
  TU_CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0, "same input, different bytes");
  /* The non-durable write gives the same file. */
  const char *p3 = in_dir("nofsync.png");
  TU_CHECK(img_write_png_rgb8_flags(p3, rgb, W, H, text, 3, IMG_WRITE_NO_FSYNC, err, sizeof err) == 0,
           "write without fsync: %s", err);
  unsigned char *b3;
  size_t n3;
  TU_CHECK(read_bytes(p3, &b3, &n3) == 0 && n3 == n1 && memcmp(b1, b3, n1) == 0, "no-fsync bytes differ");
  free(b3);
  TU_CHECK(memmem(b1, n1, "tIME", 4) == NULL, "time chunk written");
  TU_CHECK(memmem(b1, n1, "tEXtexpression", 14) != NULL, "tEXt chunk missing");
  TU_CHECK(memmem(b1, n1, "iTXtComment", 11) != NULL, "non-ASCII value not in iTXt");

  uint8_t *back;
  int bw, bh, nt;
  img_text *bt;
  TU_CHECK(img_read_png_rgb8(p1, &back, &bw, &bh, &bt, &nt, err, sizeof err) == 0, "read: %s", err);
  if (back) {
    TU_CHECK(bw == W && bh == H, "size %dx%d", bw, bh);
    TU_CHECK(memcmp(back, rgb, sizeof rgb) == 0, "pixels differ");
    TU_CHECK(nt == 4 && !strcmp(bt[3].key, "Software") && !strncmp(bt[3].value, "vkebm ", 6),
             "ntext %d (want the 3 given + Software)", nt);
    for (int i = 0; i < 3 && i < nt; i++)
      TU_CHECK(!strcmp(bt[i].key, text[i].key) && !strcmp(bt[i].value, text[i].value),
               "text %d: %s=%s", i, bt[i].key, bt[i].value);
    free(back);
    img_text_free(bt, nt);
  }
  /* Text is optional on read. */
  TU_CHECK(img_read_png_rgb8(p1, &back, &bw, &bh, NULL, NULL, err, sizeof err) == 0, "read: %s", err);
  free(back);
  /* Invalid keywords are refused before anything is written. */
  img_text badkey[] = {{"", "x"}};
  TU_CHECK(img_write_png_rgb8(in_dir("c.png"), rgb, W, H, badkey, 1, err, sizeof err) == -1,
           "empty keyword accepted");
  TU_CHECK(img_write_png_rgb8(in_dir("c.png"), rgb, 0, H, NULL, 0, err, sizeof err) == -1, "W=0 accepted");

  /* Broken files: truncated at several points, a flipped IDAT byte, not a PNG at all. */
  size_t cuts[] = {4, 20, 40, n1 / 2, n1 - 5};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    write_bytes(in_dir("trunc.png"), b1, cuts[i]);
    uint8_t *px = NULL;
    int rc = img_read_png_rgb8(in_dir("trunc.png"), &px, &bw, &bh, NULL, NULL, err, sizeof err);
    TU_CHECK(rc == -1 && px == NULL, "truncated at %zu accepted", cuts[i]);
    TU_CHECK(strchr(err, '\n') == NULL && strlen(err) > 0, "message");
    printf("  truncated at %zu -> %s\n", cuts[i], err);
  }
  unsigned char *idat = memmem(b1, n1, "IDAT", 4);
  if (idat) {
    idat[8] ^= 0x55;
    write_bytes(in_dir("crc.png"), b1, n1);
    uint8_t *px = NULL;
    TU_CHECK(img_read_png_rgb8(in_dir("crc.png"), &px, &bw, &bh, NULL, NULL, err, sizeof err) == -1,
             "corrupt IDAT accepted");
    printf("  corrupt IDAT -> %s\n", err);
  }
  write_bytes(in_dir("not.png"), "GIF89a this is not a png file", 29);
  TU_CHECK(img_read_png_rgb8(in_dir("not.png"), &back, &bw, &bh, NULL, NULL, err, sizeof err) == -1 &&
               strstr(err, "not a PNG"), "non-PNG: %s", err);
  TU_CHECK(img_read_png_rgb8(in_dir("missing.png"), &back, &bw, &bh, NULL, NULL, err, sizeof err) == -1 &&
               strstr(err, "No such file"), "missing: %s", err);
  free(b1);
  free(b2);
}

/* A Latin-1 tEXt chunk (as other programs write them) reads back as UTF-8. */
static void test_latin1_text(void) {
  uint8_t rgb[2 * 2 * 3] = {0};
  char err[512];
  const char *path = in_dir("l1.png");
  TU_CHECK(img_write_png_rgb8(path, rgb, 2, 2, NULL, 0, err, sizeof err) == 0, "write: %s", err);
  unsigned char *b;
  size_t n;
  if (read_bytes(path, &b, &n)) return;
  /* Insert after IHDR (8-byte signature + 25-byte IHDR chunk): tEXt "note" = "caf\xe9". */
  static const unsigned char body[] = {'t', 'E', 'X', 't', 'n', 'o', 't', 'e', 0, 'c', 'a', 'f', 0xe9};
  unsigned char chunk[4 + sizeof body + 4] = {0, 0, 0, sizeof body - 4};
  memcpy(chunk + 4, body, sizeof body);
  uLong crc = crc32(0L, body, sizeof body);
  for (int i = 0; i < 4; i++) chunk[4 + sizeof body + i] = (unsigned char)(crc >> (24 - 8 * i));
  unsigned char *out = malloc(n + sizeof chunk);
  memcpy(out, b, 33);
  memcpy(out + 33, chunk, sizeof chunk);
  memcpy(out + 33 + sizeof chunk, b + 33, n - 33);
  write_bytes(path, out, n + sizeof chunk);
  uint8_t *px = NULL;
  img_text *t = NULL;
  int w, h, nt = 0;
  TU_CHECK(img_read_png_rgb8(path, &px, &w, &h, &t, &nt, err, sizeof err) == 0, "read: %s", err);
  int found = 0;
  for (int i = 0; i < nt; i++)
    if (!strcmp(t[i].key, "note")) found = !strcmp(t[i].value, "caf\xc3\xa9");
  TU_CHECK(found, "Latin-1 tEXt value not converted to UTF-8");
  free(px);
  img_text_free(t, nt);
  free(out);
  free(b);
}

/* Other colour types, written with libpng's simplified API, all read as 8-bit RGB. */
static void test_color_types(void) {
  const int W = 5, H = 3;
  char err[512];
  struct {
    png_uint_32 format;
    const char *name;
  } cases[] = {{PNG_FORMAT_GRAY, "gray"}, {PNG_FORMAT_GA, "gray+alpha"}, {PNG_FORMAT_RGBA, "rgba"},
               {PNG_FORMAT_LINEAR_RGB, "rgb16"}, {PNG_FORMAT_RGB_COLORMAP, "palette"}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = W;
    im.height = H;
    im.format = cases[c].format;
    size_t comps = PNG_IMAGE_SAMPLE_CHANNELS(im.format);
    size_t bytes = PNG_IMAGE_SIZE(im);
    unsigned char *buf = calloc(1, bytes);
    uint8_t want[5 * 3 * 3];
    uint8_t cmap[4 * 3] = {10, 20, 30, 200, 100, 50, 0, 255, 128, 7, 7, 7};
    for (int i = 0; i < W * H; i++) {
      uint8_t v = (uint8_t)(i * 17), r = v, g = (uint8_t)(255 - v), bl = (uint8_t)(v / 2);
      if (cases[c].format == PNG_FORMAT_RGB_COLORMAP) {
        buf[i] = (unsigned char)(i % 4);
        memcpy(want + i * 3, cmap + (i % 4) * 3, 3);
      } else if (cases[c].format == PNG_FORMAT_LINEAR_RGB) {
        /* Linear 16-bit is stored as-is (gAMA 1.0): v*257 strips back to v. */
        uint16_t *s = (uint16_t *)buf;
        s[i * 3] = (uint16_t)(r * 257);
        s[i * 3 + 1] = (uint16_t)(g * 257);
        s[i * 3 + 2] = (uint16_t)(bl * 257);
        want[i * 3] = r, want[i * 3 + 1] = g, want[i * 3 + 2] = bl;
      } else if (comps <= 2) {
        buf[i * comps] = v;
        if (comps == 2) buf[i * comps + 1] = (uint8_t)(i * 5); /* alpha is dropped, not blended */
        want[i * 3] = want[i * 3 + 1] = want[i * 3 + 2] = v;
      } else {
        buf[i * 4] = r, buf[i * 4 + 1] = g, buf[i * 4 + 2] = bl, buf[i * 4 + 3] = (uint8_t)(i * 3);
        want[i * 3] = r, want[i * 3 + 1] = g, want[i * 3 + 2] = bl;
      }
    }
    if (cases[c].format == PNG_FORMAT_RGB_COLORMAP) im.colormap_entries = 4;
    const char *path = in_dir("ct.png");
    int ok = png_image_write_to_file(&im, path, 0, buf, 0,
                                     cases[c].format == PNG_FORMAT_RGB_COLORMAP ? cmap : NULL);
    TU_CHECK(ok, "%s: libpng could not write the test file: %s", cases[c].name, im.message);
    uint8_t *px = NULL;
    int bw, bh;
    TU_CHECK(img_read_png_rgb8(path, &px, &bw, &bh, NULL, NULL, err, sizeof err) == 0, "%s: %s",
             cases[c].name, err);
    if (px) {
      TU_CHECK(bw == W && bh == H && memcmp(px, want, sizeof want) == 0, "%s: pixels differ (%d %d %d)",
               cases[c].name, px[3], px[4], px[5]);
      free(px);
    }
    free(buf);
  }
}

static void test_conversion(void) {
  /* torchvision: uint8(clamp(x*255 + 0.5, 0, 255)) in float32. */
  float xs[] = {0.0f, 1.0f, 0.5f, -1.0f, 2.0f, 1.0f / 255, 0.2f, 0.998f, 0.001f, 0.002f, NAN, INFINITY, -INFINITY};
  uint8_t want[] = {0, 255, 128, 0, 255, 1, 51, 254, 0, 1, 0, 255, 0};
  for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
    float chw[3] = {xs[i], xs[i], xs[i]};
    uint8_t got[3];
    img_chw_to_rgb8(got, chw, 1, 1);
    TU_CHECK(got[0] == want[i] && got[1] == want[i], "x=%g -> %d, want %d", xs[i], got[0], want[i]);
  }
  /* Every byte survives bytes -> float -> bytes; the planar/interleaved order is right. */
  uint8_t rgb[256 * 3], back[256 * 3];
  float chw[256 * 3];
  for (int i = 0; i < 256 * 3; i++) rgb[i] = (uint8_t)((i * 7) % 256);
  img_rgb8_to_chw(chw, rgb, 16, 16);
  TU_CHECK(chw[1] == rgb[3] / 255.0f && chw[256] == rgb[1] / 255.0f, "layout");
  img_chw_to_rgb8(back, chw, 16, 16);
  TU_CHECK(memcmp(rgb, back, sizeof rgb) == 0, "bytes -> float -> bytes changed a value");
}

static void test_grid(void) {
  /* 5 images of 4x2, nrow 3, padding 2: 3 columns, 2 rows, 20x10; the sixth cell is padding. */
  const int n = 5, W = 4, H = 2, nrow = 3, pad = 2;
  float img[5 * 3 * 2 * 4];
  for (int k = 0; k < n; k++)
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < W * H; i++) img[((k * 3) + c) * W * H + i] = (float)(10 * k + c + 1) / 255.0f;
  int gw = 0, gh = 0;
  uint8_t *g = img_make_grid(img, n, W, H, nrow, pad, 0.5f, &gw, &gh);
  TU_CHECK(g && gw == 3 * (W + pad) + pad && gh == 2 * (H + pad) + pad, "grid %dx%d", gw, gh);
  if (g) {
    int bad = 0;
    for (int y = 0; y < gh; y++)
      for (int x = 0; x < gw; x++) {
        int col = (x - pad) / (W + pad), row = (y - pad) / (H + pad);
        int ix = (x - pad) % (W + pad), iy = (y - pad) % (H + pad);
        int k = row * nrow + col;
        int inside = x >= pad && y >= pad && ix < W && iy < H && k < n;
        for (int c = 0; c < 3; c++) {
          int want = inside ? 10 * k + c + 1 : 128;
          if (g[(y * gw + x) * 3 + c] != want) bad++;
        }
      }
    TU_CHECK(bad == 0, "%d grid bytes wrong", bad);
    free(g);
  }
  /* Fewer images than nrow: one row of n. One image: make_grid returns it unpadded. */
  g = img_make_grid(img, 2, W, H, 8, pad, 0.0f, &gw, &gh);
  TU_CHECK(g && gw == 2 * (W + pad) + pad && gh == H + 2 * pad, "2 images: %dx%d", gw, gh);
  free(g);
  g = img_make_grid(img, 1, W, H, 8, pad, 0.0f, &gw, &gh);
  TU_CHECK(g && gw == W && gh == H && g[0] == 1, "1 image: %dx%d", gw, gh);
  free(g);
  /* padding 0, exact multiple. */
  g = img_make_grid(img, 4, W, H, 2, 0, 0.0f, &gw, &gh);
  TU_CHECK(g && gw == 2 * W && gh == 2 * H && g[(H * gw + W) * 3] == 31, "2x2 grid: %dx%d", gw, gh);
  free(g);
  TU_CHECK(img_make_grid(img, 0, W, H, 8, 2, 0, &gw, &gh) == NULL, "n=0 accepted");
  TU_CHECK(img_make_grid(img, 3, W, H, 0, 2, 0, &gw, &gh) == NULL, "nrow=0 accepted");
}

/* Mutation smoke test: flipped bytes and truncations of a valid PNG must each decode or fail
 * with a one-line message (run under ASan to catch memory errors). */
static void test_mutations(void) {
  uint8_t rgb[9 * 6 * 3];
  for (int i = 0; i < (int)sizeof rgb; i++) rgb[i] = (uint8_t)(i * 13);
  img_text text[] = {{"seed", "7"}};
  char err[512];
  const char *path = in_dir("m.png");
  if (img_write_png_rgb8(path, rgb, 9, 6, text, 1, err, sizeof err)) {
    TU_CHECK(0, "write: %s", err);
    return;
  }
  unsigned char *good;
  size_t n;
  read_bytes(path, &good, &n);
  unsigned char *b = malloc(n);
  int accepted = 0, refused = 0;
  for (uint32_t trial = 0; trial < 400; trial++) {
    float r[3];
    tu_fill_uniform(r, 3, 500 + trial, 0, 1);
    memcpy(b, good, n);
    size_t len = n, at = (size_t)(r[1] * (float)n) % n;
    if (r[0] < 0.7f) b[at] = (unsigned char)(r[2] * 256);
    else len = at;
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    uint8_t *px = NULL;
    img_text *t = NULL;
    int w, h, nt;
    if (img_read_png_rgb8(path, &px, &w, &h, &t, &nt, err, sizeof err) == 0) {
      accepted++;
      free(px);
      img_text_free(t, nt);
    } else {
      refused++;
      TU_CHECK(err[0] && !strchr(err, '\n') && !px, "trial %u: message '%s'", trial, err);
    }
  }
  printf("  mutations: %d decoded (ancillary damage is tolerated), %d refused\n", accepted, refused);
  TU_CHECK(refused > 100, "only %d of 400 mutations refused", refused);
  free(b);
  free(good);
}

/* Grids for tests/cli/torchvision_grid.sh to compare with torchvision's save_image. Pixel value
 * v(k, c, i) = ((k*97 + c*31 + i*7) % 301) / 200 - 0.2 in float32 (out of range on purpose). */
static int write_grids(const char *out_dir) {
  static const struct { const char *name; int n, W, H, nrow, padding; float pad_value; } grids[] = {
      {"grid_a.png", 5, 6, 4, 3, 2, 0.3f}, {"grid_b.png", 1, 5, 3, 8, 2, 0.0f},
      {"grid_c.png", 7, 3, 5, 8, 1, 1.0f}, {"grid_d.png", 9, 4, 4, 2, 0, 0.5f}};
  for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
    int n = grids[g].n, W = grids[g].W, H = grids[g].H;
    float *img = malloc(sizeof(float) * (size_t)(n * 3 * W * H));
    for (int k = 0; k < n; k++)
      for (int c = 0; c < 3; c++)
        for (int i = 0; i < W * H; i++)
          img[(k * 3 + c) * W * H + i] = (float)((k * 97 + c * 31 + i * 7) % 301) / 200.0f - 0.2f;
    int gw, gh;
    uint8_t *rgb = img_make_grid(img, n, W, H, grids[g].nrow, grids[g].padding, grids[g].pad_value, &gw, &gh);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, grids[g].name);
    img_text text[] = {{"expression", "red AND (cube OR sphere)"}, {"seed", "42"}};
    int rc = rgb ? img_write_png_rgb8(path, rgb, gw, gh, text, 2, err, sizeof err) : -1;
    free(rgb);
    free(img);
    if (rc) {
      fprintf(stderr, "%s: %s\n", path, rgb ? err : "grid failed");
      return 1;
    }
  }
  return 0;
}

/* The GIF palette keeps the scenes' neutral floor grey and near its value (the old 6x7x6 cube
 * turned mid-grey purple), and saturated colours near their hue; decoded with giflib. */
static void test_gif_palette(void) {
  enum { W = 8, H = 4 };
  uint8_t rgb[W * H * 3];
  for (int i = 0; i < W * H; i++) { /* greys 0.40 .. 0.60 (the floors), then colours */
    int v = 102 + (i % 16) * 3;
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)v;
    if (i >= 16) rgb[3 * i + 1] = (uint8_t)(v - 2), rgb[3 * i + 2] = (uint8_t)(v - 4); /* tinted */
  }
  const uint8_t red[3] = {230, 31, 26}, blue[3] = {38, 77, 242};
  memcpy(rgb + 3 * (W * H - 2), red, 3);
  memcpy(rgb + 3 * (W * H - 1), blue, 3);
  char path[600], err[256];
  snprintf(path, sizeof path, "%s/p.gif", dir);
  gif_writer *g = gif_writer_open(path, 8, err, sizeof err);
  TU_CHECK(g && gif_writer_add(g, rgb, W, H, err, sizeof err) == 0 &&
               gif_writer_finish(g, err, sizeof err) == 0, "gif: %s", err);
  int gerr = 0;
  GifFileType *f = DGifOpenFileName(path, &gerr);
  TU_CHECK(f && DGifSlurp(f) == GIF_OK && f->ImageCount == 1, "decode the GIF");
  if (!f || f->ImageCount != 1) return;
  const ColorMapObject *map = f->SColorMap;
  int worst_grey = 0, coloured_floor = 0;
  for (int i = 0; i < W * H; i++) {
    const GifColorType *c = &map->Colors[f->SavedImages[0].RasterBits[i]];
    const uint8_t *p = rgb + 3 * i;
    int d = abs(c->Red - p[0]) + abs(c->Green - p[1]) + abs(c->Blue - p[2]);
    if (i < W * H - 2) {
      if (d > worst_grey) worst_grey = d;
      coloured_floor += !(c->Red == c->Green && c->Green == c->Blue);
    } else {
      TU_CHECK(d < 120 && c->Red + c->Green + c->Blue > 0, "colour %d off by %d", i, d);
    }
  }
  printf("gif palette: greys within %d levels (sum over channels), %d floor pixels coloured\n",
         worst_grey, coloured_floor);
  TU_CHECK(coloured_floor == 0, "%d grey floor pixels took a colour", coloured_floor);
  TU_CHECK(worst_grey <= 12, "a grey moved by %d levels", worst_grey);
  DGifCloseFile(f, &gerr);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-grids")) return write_grids(argv[2]);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_color_types();
  test_latin1_text();
  test_conversion();
  test_grid();
  test_mutations();
  test_gif_palette();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tu_finish("test_image");
}
