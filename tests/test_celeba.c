/* test_celeba.c: the CelebA loader (include/vkebm/celeba.h) on a fixture in CelebA's exact file
 * formats, made here (no download is possible): list_attr_celeba.txt (line 1 the count, line 2
 * the 40 attribute names with the trailing space, rows "000001.jpg -1  1 ..." with values
 * right-aligned in two columns) and img_align_celeba/ with 178x218 JPEGs (colour and
 * grey) and PNGs.
 *   - the attribute list reads back exactly (names, file names, every value; CRLF too), and 21
 *     malformed variants are refused, each naming its line;
 *   - images: a PNG is cropped to its centre square and area-resized exactly (2x2 blocks ->
 *     their colours; the rows outside the square never leak in); JPEGs agree with the PNG of the
 *     same picture within JPEG's error, also through the 1/8 DCT-scaled decode; grey JPEGs come
 *     back as RGB; a file that is neither is refused;
 *   - celeba_load: the attribute column and the images byte for byte, the same with 1 and 3
 *     threads; an unknown attribute lists the valid ones; a missing image names its line;
 *   - training: `--data celeba:DIR --concept Smiling` runs a few steps (also with the label
 *     term over no/yes), writes a one-hot no/yes model, and refuses --frozen MODEL=data.
 * Run with --write-fixture DIR to write the fixture for tests/cli/celeba.sh.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "testutil.h"
#include "vkebm/celeba.h"
#include "vkebm/image.h"
#include "vkebm/model.h"
#include "vkebm/train.h"

static const char *ATTRS[40] = {
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young"};
#define NIMG 6
static const char *FILES[NIMG] = {"000001.jpg", "000002.jpg", "000003.png",
                                  "000004.jpg", "000005.png", "000006.jpg"};
enum { SMILING = 31, MALE = 20 };

/* Value of attribute k for image i: a fixed pattern with both values in every column. */
static int attr_value(int i, int k) { return ((i * 7 + k * 3 + (k * k) % 5) % 3) ? -1 : 1; }

/* The picture of image i (W x H, interleaved RGB): a 20-row pure-green band above and below the
 * centre square (outside CelebA's crop), the square split into four coloured quadrants that
 * differ per image. */
static void picture(int i, int W, int H, uint8_t *rgb) {
  static const uint8_t q[4][3] = {{200, 40, 40}, {40, 60, 190}, {225, 220, 210}, {30, 30, 30}};
  int S = W < H ? W : H, x0 = (W - S) / 2, y0 = (H - S) / 2;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      uint8_t *p = rgb + ((size_t)y * W + x) * 3;
      if (y < y0 || y >= y0 + S || x < x0 || x >= x0 + S) {
        p[0] = 0, p[1] = 255, p[2] = 0;
        continue;
      }
      int k = ((y - y0) >= S / 2) * 2 + ((x - x0) >= S / 2);
      k = (k + i) % 4;
      memcpy(p, q[k], 3);
    }
}

static int write_jpeg(const char *path, const uint8_t *rgb, int W, int H, int grey) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = (JDIMENSION)W;
  c.image_height = (JDIMENSION)H;
  c.input_components = grey ? 1 : 3;
  c.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 95, TRUE);
  jpeg_start_compress(&c, TRUE);
  uint8_t *row = malloc((size_t)W * 3);
  while (c.next_scanline < c.image_height) {
    const uint8_t *src = rgb + (size_t)c.next_scanline * W * 3;
    if (grey)
      for (int x = 0; x < W; x++) row[x] = (uint8_t)((src[3 * x] + src[3 * x + 1] + src[3 * x + 2]) / 3);
    else
      memcpy(row, src, (size_t)W * 3);
    JSAMPROW r = row;
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(row);
  return fclose(f);
}

/* The attribute list's text in the published layout. */
static char *attr_text(const char *eol) {
  size_t cap = 65536, n = 0;
  char *t = malloc(cap);
  n += (size_t)snprintf(t + n, cap - n, "%d%s", NIMG, eol);
  for (int k = 0; k < 40; k++) n += (size_t)snprintf(t + n, cap - n, "%s ", ATTRS[k]);
  n += (size_t)snprintf(t + n, cap - n, "%s", eol);
  for (int i = 0; i < NIMG; i++) {
    n += (size_t)snprintf(t + n, cap - n, "%s", FILES[i]);
    for (int k = 0; k < 40; k++) n += (size_t)snprintf(t + n, cap - n, " %2d", attr_value(i, k));
    n += (size_t)snprintf(t + n, cap - n, "%s", eol);
  }
  return t;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* The fixture: 178x218 images, 000002 a grey JPEG, 000003 and 000005 PNGs. */
static int write_fixture(const char *dir) {
  char path[1200], sub[1024];
  snprintf(sub, sizeof sub, "%s/%s", dir, CELEBA_IMAGE_DIR);
  if ((mkdir(dir, 0755) && errno != EEXIST) || (mkdir(sub, 0755) && errno != EEXIST)) return -1;
  const int W = 178, H = 218;
  uint8_t *rgb = malloc((size_t)W * H * 3);
  char err[256];
  for (int i = 0; i < NIMG; i++) {
    picture(i, W, H, rgb);
    snprintf(path, sizeof path, "%s/%s", sub, FILES[i]);
    int rc = strstr(FILES[i], ".png") ? img_write_png_rgb8(path, rgb, W, H, NULL, 0, err, sizeof err)
                                      : write_jpeg(path, rgb, W, H, i == 1);
    if (rc) {
      free(rgb);
      return -1;
    }
  }
  free(rgb);
  char *t = attr_text("\n");
  snprintf(path, sizeof path, "%s/%s", dir, CELEBA_ATTR_FILE);
  int rc = write_text(path, t);
  free(t);
  return rc;
}

/* ---- the attribute list -------------------------------------------------------------------- */

static void test_attrs(void) {
  for (int crlf = 0; crlf < 2; crlf++) {
    char *t = attr_text(crlf ? "\r\n" : "\n");
    celeba_attrs a;
    char err[512] = "";
    int rc = celeba_parse_attrs(t, strlen(t), "list_attr_celeba.txt", &a, err, sizeof err);
    TU_CHECK(rc == 0, "the fixture's list (crlf %d): %s", crlf, err);
    if (!rc) {
      TU_CHECK(a.nattr == 40 && a.n == NIMG, "%d attributes, %d rows", a.nattr, a.n);
      for (int k = 0; k < 40 && k < a.nattr; k++) TU_CHECK(!strcmp(a.names[k], ATTRS[k]), "name %d: %s", k, a.names[k]);
      int bad = 0;
      for (int i = 0; i < NIMG && i < a.n; i++) {
        TU_CHECK(!strcmp(a.files[i], FILES[i]), "file %d: %s", i, a.files[i]);
        for (int k = 0; k < 40; k++) bad += a.values[i * 40 + k] != attr_value(i, k);
      }
      TU_CHECK(bad == 0, "%d values differ", bad);
      TU_CHECK(celeba_attr_index(&a, "Smiling") == SMILING && celeba_attr_index(&a, "smiling") == -1,
               "attribute lookup");
      celeba_attrs_free(&a);
    }
    free(t);
  }
  /* trailing blank lines are fine */
  const char *ok = "1\nSmiling Male \n000001.jpg  1 -1\n\n\n";
  celeba_attrs a;
  char err[512] = "";
  TU_CHECK(celeba_parse_attrs(ok, strlen(ok), "x", &a, err, sizeof err) == 0, "trailing blank lines: %s", err);
  celeba_attrs_free(&a);

  static const struct {
    const char *text, *want; /* want: the start of the line part of the message */
  } bad[] = {
      {"", "x: empty file"},
      {"2\n", "x: no attribute names"},
      {"abc\nSmiling\n", "x line 1:"},
      {"0\nSmiling\n", "x line 1:"},
      {"2 3\nSmiling\n", "x line 1:"},
      {"-4\nSmiling\n", "x line 1:"},
      {"1\n\n000001.jpg 1\n", "x line 2:"},
      {"1\nSmiling Smiling\n000001.jpg 1 1\n", "x line 2:"},
      {"1\nSmi-ling\n000001.jpg 1\n", "x line 2:"},
      {"2\nSmiling Male\n000001.jpg 1 -1\n", "x line 1: announces 2 images, the file has 1 rows"},
      {"1\nSmiling Male\n000001.jpg 1 -1\n000002.jpg 1 1\n", "x line 4:"},
      {"2\nSmiling Male\n000001.jpg 1 -1\n000002.jpg 1\n", "x line 4: 1 values for 2"},
      {"1\nSmiling Male\n000001.jpg 1 -1 1\n", "x line 3: more than 2"},
      {"2\nSmiling Male\n000001.jpg 1 -1\n000002.jpg 0 1\n", "x line 4: value 1 (Smiling) is '0'"},
      {"1\nSmiling Male\n000001.jpg 1 +1\n", "x line 3: value 2 (Male)"},
      {"1\nSmiling Male\n000001.jpg 1 1.0\n", "x line 3:"},
      {"1\nSmiling\n../000001.jpg 1\n", "x line 3: expected an image file name"},
      {"1\nSmiling\nimg/000001.jpg 1\n", "x line 3: expected an image file name"},
      {"3\nSmiling\n000001.jpg 1\n000002.jpg 1\n000001.jpg -1\n", "x line 5: 000001.jpg is listed again (first on line 3)"},
      {"2\nSmiling\n000001.jpg 1\n\n000002.jpg 1\n", "x line 4: an empty line"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char e[512] = "";
    celeba_attrs b;
    int rc = celeba_parse_attrs(bad[i].text, strlen(bad[i].text), "x", &b, e, sizeof e);
    TU_CHECK(rc != 0 && !strncmp(e, bad[i].want, strlen(bad[i].want)) && !strchr(e, '\n'),
             "malformed list %zu: rc %d, message '%s', want '%s...'", i, rc, e, bad[i].want);
    TU_CHECK(b.files == NULL && b.values == NULL && b.n == 0, "malformed list %zu left memory", i);
  }
  const char nul[] = "1\nSmiling\n000001.jpg \0 1\n";
  char e[512] = "";
  TU_CHECK(celeba_parse_attrs(nul, sizeof nul - 1, "x", &a, e, sizeof e) != 0 && strstr(e, "line 3: a NUL"),
           "NUL byte: %s", e);
}

/* ---- images -------------------------------------------------------------------------------- */

static int max_diff(const uint8_t *a, const uint8_t *b, size_t n) {
  int m = 0;
  for (size_t i = 0; i < n; i++) {
    int d = abs((int)a[i] - (int)b[i]);
    if (d > m) m = d;
  }
  return m;
}

static void test_images(const char *dir) {
  /* exact: a 64x80 PNG whose centre 64x64 square is made of 2x2 blocks -> at 32, the blocks */
  const int W = 64, H = 80, R = 32;
  uint8_t *rgb = malloc((size_t)W * H * 3), chw[3 * 64 * 64], got[3 * 64 * 64];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int c = 0; c < 3; c++) {
        int by = (y - 8) / 2, bx = x / 2;
        rgb[((size_t)y * W + x) * 3 + c] =
            y < 8 || y >= 72 ? (c == 1 ? 255 : 0) : (uint8_t)((by * 37 + bx * 11 + c * 91) % 251);
      }
  char path[1024], err[512] = "";
  snprintf(path, sizeof path, "%s/blocks.png", dir);
  TU_CHECK(img_write_png_rgb8(path, rgb, W, H, NULL, 0, err, sizeof err) == 0, "write: %s", err);
  TU_CHECK(celeba_load_image(path, R, got, err, sizeof err) == 0, "blocks.png: %s", err);
  int wrong = 0;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) wrong += got[c * R * R + y * R + x] != (uint8_t)((y * 37 + x * 11 + c * 91) % 251);
  TU_CHECK(wrong == 0, "2x2 blocks: %d values differ", wrong);
  free(rgb);

  /* the fixture's PNG: quadrants exact at the corners (the green band stays out) */
  snprintf(path, sizeof path, "%s/%s/000003.png", dir, CELEBA_IMAGE_DIR);
  TU_CHECK(celeba_load_image(path, R, chw, err, sizeof err) == 0, "000003.png: %s", err);
  uint8_t pic[178 * 218 * 3];
  picture(2, 178, 218, pic);
  const uint8_t *tl = pic + ((size_t)20 * 178 + 0) * 3, *br = pic + ((size_t)197 * 178 + 177) * 3;
  for (int c = 0; c < 3; c++) {
    TU_CHECK(chw[c * R * R] == tl[c], "top-left channel %d: %d, want %d", c, chw[c * R * R], tl[c]);
    TU_CHECK(chw[c * R * R + R * R - 1] == br[c], "bottom-right channel %d: %d, want %d", c,
             chw[c * R * R + R * R - 1], br[c]);
  }
  /* every output pixel is a mix of the quadrant colours: green never exceeds red and blue by
   * more than the quadrants' own margin (the band is 0,255,0) */
  int leak = 0;
  for (int p = 0; p < R * R; p++) leak += chw[R * R + p] > chw[p] + 25 && chw[R * R + p] > chw[2 * R * R + p] + 25;
  TU_CHECK(leak == 0, "%d pixels show the green band outside the crop", leak);

  /* JPEGs against the PNG of the same picture: the colour JPEG of image 0 re-encoded as PNG */
  for (int Rj = 16; Rj <= 64; Rj *= 2) {
    uint8_t ref[3 * 64 * 64], jp[3 * 64 * 64];
    picture(0, 178, 218, pic);
    snprintf(path, sizeof path, "%s/ref0.png", dir);
    img_write_png_rgb8(path, pic, 178, 218, NULL, 0, err, sizeof err);
    TU_CHECK(celeba_load_image(path, Rj, ref, err, sizeof err) == 0, "ref0.png: %s", err);
    snprintf(path, sizeof path, "%s/%s/000001.jpg", dir, CELEBA_IMAGE_DIR);
    TU_CHECK(celeba_load_image(path, Rj, jp, err, sizeof err) == 0, "000001.jpg: %s", err);
    /* interior pixels (not on a quadrant edge, where JPEG rings and the scaled decode blurs) */
    int worst = 0;
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < Rj; y++)
        for (int x = 0; x < Rj; x++) {
          if (abs(2 * y + 1 - Rj) <= 4 || abs(2 * x + 1 - Rj) <= 4 || y == 0 || x == 0 ||
              y == Rj - 1 || x == Rj - 1)
            continue;
          int d = abs((int)jp[c * Rj * Rj + y * Rj + x] - (int)ref[c * Rj * Rj + y * Rj + x]);
          if (d > worst) worst = d;
        }
    fprintf(stderr, "JPEG vs PNG at %d: worst interior difference %d\n", Rj, worst);
    TU_CHECK(worst <= 8, "JPEG vs PNG at %d: worst interior difference %d", Rj, worst);
  }
  /* a grey JPEG comes back as RGB with equal channels */
  snprintf(path, sizeof path, "%s/%s/000002.jpg", dir, CELEBA_IMAGE_DIR);
  TU_CHECK(celeba_load_image(path, R, chw, err, sizeof err) == 0, "000002.jpg: %s", err);
  TU_CHECK(max_diff(chw, chw + R * R, (size_t)R * R) == 0 && max_diff(chw, chw + 2 * R * R, (size_t)R * R) == 0,
           "grey JPEG: channels differ");
  /* neither format; missing; truncated JPEG */
  snprintf(path, sizeof path, "%s/text.jpg", dir);
  write_text(path, "not an image\n");
  TU_CHECK(celeba_load_image(path, R, chw, err, sizeof err) != 0 && strstr(err, "neither a JPEG nor a PNG"),
           "text file: %s", err);
  snprintf(path, sizeof path, "%s/none.jpg", dir);
  TU_CHECK(celeba_load_image(path, R, chw, err, sizeof err) != 0 && strstr(err, "none.jpg"), "missing: %s", err);
  snprintf(path, sizeof path, "%s/short.jpg", dir);
  FILE *f = fopen(path, "wb");
  fwrite("\xff\xd8\xff\xe0\x00\x10JFIF", 1, 10, f);
  fclose(f);
  TU_CHECK(celeba_load_image(path, R, chw, err, sizeof err) != 0 && strstr(err, "not a readable JPEG"),
           "truncated JPEG: %s", err);
}

/* ---- the data set -------------------------------------------------------------------------- */

static void test_load(const char *dir) {
  const int R = 32;
  celeba_data d[2];
  char err[2048] = "";
  const char *threads[2] = {"1", "3"};
  for (int t = 0; t < 2; t++) {
    setenv("VKEBM_THREADS", threads[t], 1);
    TU_CHECK(celeba_load(dir, "Smiling", R, &d[t], err, sizeof err) == 0, "celeba_load: %s", err);
  }
  unsetenv("VKEBM_THREADS");
  if (d[0].n == NIMG && d[1].n == NIMG) {
    int64_t yes = 0;
    for (int i = 0; i < NIMG; i++) {
      TU_CHECK(d[0].yes[i] == (attr_value(i, SMILING) > 0), "image %d: Smiling %d", i, d[0].yes[i]);
      yes += attr_value(i, SMILING) > 0;
      uint8_t one[3 * 32 * 32];
      char path[1024];
      snprintf(path, sizeof path, "%s/%s/%s", dir, CELEBA_IMAGE_DIR, FILES[i]);
      TU_CHECK(celeba_load_image(path, R, one, err, sizeof err) == 0, "%s: %s", FILES[i], err);
      TU_CHECK(!memcmp(one, d[0].images + (size_t)i * 3 * R * R, sizeof one), "image %d differs", i);
    }
    TU_CHECK(d[0].count_yes == yes && yes > 0 && yes < NIMG, "count_yes %lld of %d", (long long)d[0].count_yes, NIMG);
    TU_CHECK(!memcmp(d[0].images, d[1].images, (size_t)NIMG * 3 * R * R) && !memcmp(d[0].yes, d[1].yes, NIMG),
             "1 and 3 threads differ");
  }
  celeba_data_free(&d[0]);
  celeba_data_free(&d[1]);
  celeba_data x;
  TU_CHECK(celeba_load(dir, "Smilng", R, &x, err, sizeof err) != 0 && strstr(err, "no attribute 'Smilng'") &&
               strstr(err, "Smiling") && strstr(err, "Young)"),
           "unknown attribute: %s", err);
  /* a listed image that is missing: the message names it and its line */
  char path[1024], moved[1024];
  snprintf(path, sizeof path, "%s/%s/000004.jpg", dir, CELEBA_IMAGE_DIR);
  snprintf(moved, sizeof moved, "%s/000004.jpg.away", dir);
  TU_CHECK(rename(path, moved) == 0, "rename");
  TU_CHECK(celeba_load(dir, "Male", R, &x, err, sizeof err) != 0 && strstr(err, "000004.jpg") &&
               strstr(err, "line 6 of"), "missing image: %s", err);
  TU_CHECK(rename(moved, path) == 0, "rename back");
}

/* ---- training ------------------------------------------------------------------------------ */

static void test_train(const char *dir) {
  ebm_backend *be = tu_cpu_backend();
  char spec[1100], err[1024] = "", model[1100];
  snprintf(spec, sizeof spec, "celeba:%s", dir);
  for (int label_term = 0; label_term < 2; label_term++) {
    ebm_train_config cfg;
    TU_CHECK(ebm_train_config_default(&cfg, "Smiling", spec, "tiny", 0, err, sizeof err) == 0, "config: %s", err);
    ebm_train_config_recipe(&cfg, "practical");
    cfg.batch = 4, cfg.buffer_size = 8, cfg.langevin_steps = 2;
    cfg.label_weight = label_term ? 1.0f : 0.0f;
    TU_CHECK(ebm_train_config_validate(&cfg, err, sizeof err) == 0, "validate: %s", err);
    ebm_trainer *tr = NULL;
    if (ebm_trainer_create(&tr, be, &cfg, NULL, NULL, 0, err, sizeof err) != 0) {
      TU_CHECK(0, "trainer: %s", err);
      continue;
    }
    ebm_train_stats st = {0};
    for (int s = 0; s < 3; s++) TU_CHECK(ebm_trainer_step(tr, &st, err, sizeof err) == EBM_TRAIN_OK, "step: %s", err);
    TU_CHECK(isfinite(st.loss) && st.step == 3, "loss %g step %lld", st.loss, (long long)st.step);
    if (label_term) TU_CHECK(st.label_ce > 0.3 && st.label_ce < 1.1, "label CE over (no, yes) %g", st.label_ce);
    snprintf(model, sizeof model, "%s/smiling%d.safetensors", dir, label_term);
    TU_CHECK(ebm_trainer_save_model(tr, model, 0, err, sizeof err) == 0, "save: %s", err);
    ebm_trainer_destroy(tr);
    ebm_model_info info;
    TU_CHECK(ebm_model_read_info(model, &info, err, sizeof err) == 0, "read: %s", err);
    TU_CHECK(!strcmp(info.concept, "Smiling") && info.label_kind == EBM_LABEL_ONEHOT &&
                 info.config.label_dim == 2 && !strcmp(info.label_names[0], "no") &&
                 !strcmp(info.label_names[1], "yes") && !strncmp(info.data_spec, "celeba:", 7),
             "model metadata: %s %d %s", info.concept, info.config.label_dim, info.data_spec);
  }
  /* frozen models take a given label on CelebA (=yes); =data needs scene labels, which CelebA
   * rows do not carry: a scene model frozen with =data is refused */
  ebm_train_config cfg, scfg;
  ebm_train_config_default(&cfg, "Male", spec, "tiny", 0, err, sizeof err);
  ebm_train_config_default(&scfg, "color", "general", "tiny", 0, err, sizeof err);
  scfg.batch = 2, scfg.buffer_size = 4, scfg.langevin_steps = 1;
  char scene_model[1100], arg[1200];
  snprintf(scene_model, sizeof scene_model, "%s/color.safetensors", dir);
  ebm_trainer *tr = NULL;
  ebm_train_stats st;
  TU_CHECK(ebm_trainer_create(&tr, be, &scfg, NULL, NULL, 0, err, sizeof err) == 0 &&
               ebm_trainer_step(tr, &st, err, sizeof err) == EBM_TRAIN_OK &&
               ebm_trainer_save_model(tr, scene_model, 0, err, sizeof err) == 0, "scene model: %s", err);
  ebm_trainer_destroy(tr);
  tr = NULL;
  ebm_train_frozen fz;
  snprintf(arg, sizeof arg, "%s=data", scene_model);
  TU_CHECK(ebm_train_frozen_parse(arg, &fz, err, sizeof err) == 0, "frozen parse: %s", err);
  TU_CHECK(ebm_trainer_create(&tr, be, &cfg, NULL, &fz, 1, err, sizeof err) != 0 && strstr(err, "=yes"),
           "--frozen MODEL=data on CelebA: %s", err);
  ebm_trainer_destroy(tr);
  tr = NULL;
  snprintf(arg, sizeof arg, "%s=yes", model);
  TU_CHECK(ebm_train_frozen_parse(arg, &fz, err, sizeof err) == 0, "frozen =yes: %s", err);
  TU_CHECK(ebm_trainer_create(&tr, be, &cfg, NULL, &fz, 1, err, sizeof err) == 0 &&
               ebm_trainer_step(tr, &st, err, sizeof err) == EBM_TRAIN_OK, "frozen =yes: %s", err);
  ebm_trainer_destroy(tr);
  /* bad names and specs */
  TU_CHECK(ebm_train_config_default(&cfg, "Smi ling", spec, "tiny", 0, err, sizeof err) != 0, "space in a name");
  TU_CHECK(ebm_train_config_default(&cfg, "Smiling", "general", "tiny", 0, err, sizeof err) != 0 &&
               strstr(err, "celeba:DIR"), "an attribute without celeba data: %s", err);
  ebm_train_config_default(&cfg, "Smiling", "celeba:", "tiny", 0, err, sizeof err);
  TU_CHECK(ebm_train_config_validate(&cfg, err, sizeof err) != 0, "celeba: without a folder");
  tu_backend_done(be);
}

static void remove_tree(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-fixture")) {
    if (write_fixture(argv[2])) {
      fprintf(stderr, "test_celeba: cannot write the fixture into %s\n", argv[2]);
      return 1;
    }
    return 0;
  }
  char dir[] = "/tmp/vkebm_celeba_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  TU_CHECK(write_fixture(dir) == 0, "writing the fixture");
  test_attrs();
  test_images(dir);
  test_load(dir);
  test_train(dir);
  remove_tree(dir);
  return tu_finish("test_celeba");
}
