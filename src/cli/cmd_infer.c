/* cmd_infer.c: `vkebm infer`: read concepts and objects out of images with the energy models.
 *
 *   vkebm infer IMAGE.png... [--models DIR] [--objects K|auto] [--json] [--mark OUT.png]
 *   vkebm infer --data DIR [-n N] [--objects K|auto] [--judge FILE] [--json] [--mark OUT.png]
 *
 * A thin consumer of include/vkebm/infer.h. IMAGE mode prints, per image, every concept model's
 * inferred value and confidence (or, with --objects, each object found with its concepts).
 * --data reads a `vkebm data` folder (labels.csv + PNGs), infers every scene and scores it
 * against the labels: accuracy (shape, colour), mean absolute error (position per coordinate,
 * size), and for scenes of several objects the share whose objects are all found within the
 * position tolerance (an assignment of found to true objects, not their order); the supervised
 * judge (judge.h), run through the same greedy masking, is the baseline in the same table.
 * --mark writes the images enlarged 8x with a cross on every inferred place (and, with --data,
 * a ring on every true one), as a torchvision-style grid.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vkebm/image.h"
#include "vkebm/infer.h"
#include "vkebm/judge.h"
#include "vkebm/scene.h"

#define CMD_NAME "infer"
#define MARK_SCALE 8
#define MARK_MAX 64 /* images in a --mark grid */
#define POS_TOL 0.25f
#define CALIBRATE_SEED 7000001 /* no training run, eval default or test uses it */ /* per coordinate, as eval.h's position terms */

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm infer IMAGE.png... [options]\n"
          "       vkebm infer --data DIR [options]\n"
          "\n"
          "Reads concepts out of images with the energy models (compositional inference): each\n"
          "one-hot concept's label of lowest energy with softmax(-(E - min)/(T spread)) as its\n"
          "confidence, each vector concept (position, size) by gradient descent on the label from\n"
          "a grid of starts. docs/inference.md has the method and the measured accuracy.\n"
          "\n"
          "  --models DIR         concept models (*.safetensors); default: $VKEBM_MODELS, else\n"
          "                       ./models, else the shipped models of the source tree\n"
          "  --objects K|auto     find K objects (1..5) by greedy masked position inference, or\n"
          "                       as many as lower the energy (auto); then each one's concepts\n"
          "  --data DIR           score a `vkebm data --size 32` folder against its labels.csv,\n"
          "                       with the judge as the baseline (--objects defaults to the\n"
          "                       scenes' object count)\n"
          "  -n N                 --data: the first N scenes only\n"
          "  --judge FILE         the baseline judge (default models/judge.safetensors); --no-judge\n"
          "  --calibrate N        label baselines from N renders of the general spec (64; 0: raw\n"
          "                       energies): labels are ranked by (E - mean) / spread\n"
          "  --calibrate-seed S   their seed (%d)\n"
          "  --temperature T      softmax temperature of the standardised energies (0.5)\n"
          "  --grid G             vector concepts: G starts per axis (5)\n"
          "  --steps S            gradient steps on the label from each start (20)\n"
          "  --mark OUT.png       the images x8 with the inferred places marked (crosses; --data:\n"
          "                       rings on the true places), at most %d\n"
          "  --json               JSON on stdout\n"
          "  --backend B          auto | cpu | vulkan (default auto)\n"
          "  -q, --quiet          no progress on stderr\n"
          "  -h, --help           this text\n",
          CALIBRATE_SEED, MARK_MAX);
}

typedef struct opts {
  const char *models, *data, *judge, *mark;
  int objects; /* -1: none asked, 0: auto, K */
  long limit;
  int json, quiet, backend, no_judge;
  long calibrate, calibrate_seed;
  ebm_infer_options inf;
} opts;

/* ---- images ----------------------------------------------------------------------------------- */

/* Reads an RxR PNG into chw[3, R, R]. 0 or -1 with a one-line err. */
static int read_image(const char *path, int R, float *chw, char *err, size_t errlen) {
  uint8_t *rgb;
  int W, H;
  char why[512];
  if (img_read_png_rgb8(path, &rgb, &W, &H, NULL, NULL, why, sizeof why)) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  if (W != R || H != R) {
    snprintf(err, errlen, "%s: %dx%d, the models read %dx%d images (vkebm data --size %d)", path,
             W, H, R, R, R);
    free(rgb);
    return -1;
  }
  img_rgb8_to_chw(chw, rgb, W, H);
  free(rgb);
  return 0;
}

/* ---- marks ------------------------------------------------------------------------------------ */

static void put(float *img, int S, int x, int y, const float rgb[3]) {
  if (x < 0 || y < 0 || x >= S || y >= S) return;
  for (int c = 0; c < 3; c++) img[(size_t)c * S * S + (size_t)y * S + x] = rgb[c];
}

/* A cross (found) or a ring (true) at place (x, y) on the enlarged image big[3, S, S]. */
static void draw_mark(float *big, int R, float x, float y, int ring) {
  int S = R * MARK_SCALE;
  float px[2];
  ebm_infer_place_pixel(x, y, R, px);
  int cx = (int)lroundf(px[0] * MARK_SCALE), cy = (int)lroundf(px[1] * MARK_SCALE);
  static const float white[3] = {1, 1, 1}, black[3] = {0, 0, 0}, green[3] = {0.1f, 1, 0.2f};
  if (ring) {
    for (int a = 0; a < 96; a++) {
      float t = 6.2831853f * a / 96.0f;
      for (int rr = 13; rr <= 14; rr++)
        put(big, S, cx + (int)lroundf(rr * cosf(t)), cy + (int)lroundf(rr * sinf(t)), green);
    }
    return;
  }
  for (int d = -9; d <= 9; d++)
    for (int w = -1; w <= 1; w++) {
      const float *col = w ? black : white;
      put(big, S, cx + d, cy + w, col);
      put(big, S, cx + w, cy + d, col);
    }
  for (int d = -9; d <= 9; d++) {
    put(big, S, cx + d, cy, white);
    put(big, S, cx, cy + d, white);
  }
}

typedef struct marks {
  float *big; /* [n, 3, S, S] */
  int n, R;
} marks;

static int marks_add(marks *m, const float *img, int R) {
  if (m->n >= MARK_MAX) return -1;
  int S = R * MARK_SCALE;
  size_t per = (size_t)3 * S * S;
  float *nb = realloc(m->big, (m->n + 1) * per * sizeof *nb);
  if (!nb) return -1;
  m->big = nb;
  m->R = R;
  float *o = nb + m->n * per;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++)
        o[(size_t)c * S * S + (size_t)y * S + x] =
            img[(size_t)c * R * R + (size_t)(y / MARK_SCALE) * R + x / MARK_SCALE];
  return m->n++;
}

static int marks_write(const marks *m, const char *path, char *err, size_t errlen) {
  int S = m->R * MARK_SCALE, gw, gh;
  uint8_t *grid = img_make_grid(m->big, m->n, S, S, 8, 2, 0.0f, &gw, &gh);
  if (!grid) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  img_text text[] = {{"vkebm:what", "infer: crosses = inferred places, rings = true places"}};
  int rc = img_write_png_rgb8(path, grid, gw, gh, text, 1, err, errlen);
  free(grid);
  return rc;
}

/* ---- printing --------------------------------------------------------------------------------- */

static void print_value_text(const ebm_concept_info *ci, const ebm_infer_value *v) {
  if (v->onehot)
    printf("  %-9s %-9s p %.2f  E %+.4f\n", ci->name, ci->label_names[v->index], v->confidence,
           v->energy);
  else if (v->label_dim == 2)
    printf("  %-9s (%+.3f, %+.3f)  conf %.2f  E %+.4f\n", ci->name, v->value[0], v->value[1],
           v->confidence, v->energy);
  else
    printf("  %-9s %.3f  conf %.2f  E %+.4f\n", ci->name, v->value[0], v->confidence, v->energy);
}

static void print_value_json(const ebm_concept_info *ci, const ebm_infer_value *v) {
  printf("\"%s\": {", ci->name);
  if (v->onehot) {
    printf("\"value\": \"%s\", \"index\": %d, \"confidence\": %.4f, \"energy\": %.6g, \"labels\": {",
           ci->label_names[v->index], v->index, v->confidence, v->energy);
    for (int i = 0; i < v->label_dim; i++)
      printf("%s\"%s\": {\"energy\": %.6g, \"p\": %.4f}", i ? ", " : "", ci->label_names[i],
             v->energies[i], v->prob[i]);
    printf("}}");
  } else {
    printf("\"value\": [");
    for (int i = 0; i < v->label_dim; i++) printf("%s%.4f", i ? ", " : "", v->value[i]);
    printf("], \"confidence\": %.4f, \"energy\": %.6g}", v->confidence, v->energy);
  }
}

static const char *label_name(const ebm_concept_set *set, const char *concept, int i) {
  ebm_concept *c = ebm_concept_set_find(set, concept);
  if (!c || i < 0) return "-";
  return ebm_concept_info_of(c)->label_names[i];
}

static void print_scene(const ebm_concept_set *set, const ebm_infer_scene *sc, int json) {
  for (int k = 0; k < sc->nobj; k++) {
    const ebm_infer_object *o = &sc->obj[k];
    if (json)
      printf("%s{\"x\": %.4f, \"y\": %.4f, \"energy\": %.6g, \"drop\": %.6g, \"shape\": \"%s\", "
             "\"shape_p\": %.4f, \"color\": \"%s\", \"color_p\": %.4f, \"size\": %.4f}",
             k ? ", " : "", o->x, o->y, o->energy, o->drop, label_name(set, "shape", o->shape),
             o->shape_p, label_name(set, "color", o->colour), o->colour_p, o->size);
    else
      printf("  object %d  (%+.3f, %+.3f)  drop %+.4f  %s (%.2f) %s (%.2f)  size %.3f\n", k + 1,
             o->x, o->y, o->drop, label_name(set, "color", o->colour), o->colour_p,
             label_name(set, "shape", o->shape), o->shape_p, o->size);
  }
}

/* ---- IMAGE mode ------------------------------------------------------------------------------- */

static int infer_images(opts *o, ebm_concept_set *set, int R, int nfiles, char **files) {
  char err[4608];
  size_t per = (size_t)3 * R * R;
  float *img = malloc((size_t)nfiles * per * sizeof *img);
  if (!img) return cli_fail(CMD_NAME, "out of memory");
  for (int f = 0; f < nfiles; f++)
    if (read_image(files[f], R, img + f * per, err, sizeof err)) {
      free(img);
      return cli_fail(CMD_NAME, "%s", err);
    }
  int rc = EXIT_OK;
  marks mk = {0};
  if (o->objects >= 0) {
    ebm_infer_scene *sc = malloc((size_t)nfiles * sizeof *sc);
    if (!sc || ebm_infer_scenes(set, img, nfiles, R, o->objects, &o->inf, sc, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", sc ? err : "out of memory");
    } else {
      if (o->json) printf("[");
      for (int f = 0; f < nfiles; f++) {
        if (o->json) {
          printf("%s\n  {\"file\": \"%s\", \"empty_energy\": %.6g, \"objects\": [", f ? "," : "",
                 files[f], sc[f].empty_energy);
          print_scene(set, &sc[f], 1);
          printf("]}");
        } else {
          printf("%s: %d object%s%s\n", files[f], sc[f].nobj, sc[f].nobj > 1 ? "s" : "",
                 o->objects == 0 ? " (auto)" : "");
          print_scene(set, &sc[f], 0);
        }
        if (o->mark) {
          int at = marks_add(&mk, img + f * per, R);
          for (int k = 0; at >= 0 && k < sc[f].nobj; k++)
            draw_mark(mk.big + (size_t)at * 3 * R * R * MARK_SCALE * MARK_SCALE, R, sc[f].obj[k].x,
                      sc[f].obj[k].y, 0);
        }
      }
      if (o->json) printf("\n]\n");
    }
    free(sc);
  } else {
    ebm_infer_value *v = malloc((size_t)set->count * nfiles * sizeof *v);
    if (!v) rc = cli_fail(CMD_NAME, "out of memory");
    for (int m = 0; m < set->count && rc == EXIT_OK; m++)
      if (ebm_infer_concept(set->items[m], img, nfiles, &o->inf, v + (size_t)m * nfiles, err,
                            sizeof err))
        rc = cli_fail(CMD_NAME, "%s", err);
    if (rc == EXIT_OK) {
      if (o->json) printf("[");
      for (int f = 0; f < nfiles; f++) {
        if (o->json) printf("%s\n  {\"file\": \"%s\"", f ? "," : "", files[f]);
        else printf("%s:\n", files[f]);
        float px = 0, py = 0;
        int have_pos = 0;
        for (int m = 0; m < set->count; m++) {
          const ebm_concept_info *ci = ebm_concept_info_of(set->items[m]);
          const ebm_infer_value *val = &v[(size_t)m * nfiles + f];
          if (o->json) {
            printf(", ");
            print_value_json(ci, val);
          } else {
            print_value_text(ci, val);
          }
          if (!strcmp(ci->name, "position") && val->label_dim == 2)
            px = val->value[0], py = val->value[1], have_pos = 1;
        }
        if (o->json) printf("}");
        if (o->mark) {
          int at = marks_add(&mk, img + f * per, R);
          if (at >= 0 && have_pos)
            draw_mark(mk.big + (size_t)at * 3 * R * R * MARK_SCALE * MARK_SCALE, R, px, py, 0);
        }
      }
      if (o->json) printf("\n]\n");
    }
    free(v);
  }
  if (rc == EXIT_OK && o->mark && mk.n > 0 && marks_write(&mk, o->mark, err, sizeof err))
    rc = cli_fail(CMD_NAME, "%s", err);
  free(mk.big);
  free(img);
  return rc;
}

/* ---- --data ------------------------------------------------------------------------------------ */

typedef struct truth {
  int nobj;
  scene_object obj[SCENE_MAX_OBJECTS];
  unsigned index;
} truth;

/* Reads DIR/labels.csv (the format of cmd_data.c). Returns the row count or -1 with err. */
static int read_labels(const char *dir, long limit, truth **out, int *size, char *err,
                       size_t errlen) {
  char path[4200];
  snprintf(path, sizeof path, "%s/labels.csv", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s (a folder written by `vkebm data -o DIR`)", path,
             strerror(errno));
    return -1;
  }
  char line[2048];
  int n = 0, cap = 0;
  truth *t = NULL;
  *size = 0;
  if (!fgets(line, sizeof line, f) || strncmp(line, "# vkebm scene labels v1", 23)) {
    snprintf(err, errlen, "%s: not a vkebm labels file (no '# vkebm scene labels v1' line)", path);
    goto fail;
  }
  const char *sz = strstr(line, "size=");
  if (sz) *size = atoi(sz + 5);
  if (!fgets(line, sizeof line, f) || strncmp(line, "index,nobj", 10)) {
    snprintf(err, errlen, "%s: no 'index,nobj,...' header", path);
    goto fail;
  }
  int lineno = 2;
  while (fgets(line, sizeof line, f) && (limit <= 0 || n < limit)) {
    lineno++;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      truth *nt = realloc(t, (size_t)cap * sizeof *nt);
      if (!nt) {
        snprintf(err, errlen, "out of memory");
        goto fail;
      }
      t = nt;
    }
    truth *r = &t[n];
    memset(r, 0, sizeof *r);
    char *save = NULL, *tok = strtok_r(line, ",\n", &save);
    int ok = tok != NULL;
    if (ok) r->index = (unsigned)strtoul(tok, NULL, 10);
    tok = strtok_r(NULL, ",\n", &save);
    ok = ok && tok && (r->nobj = atoi(tok)) >= 1 && r->nobj <= SCENE_MAX_OBJECTS;
    for (int k = 0; ok && k < r->nobj; k++) {
      char *fld[5];
      for (int i = 0; i < 5; i++) ok = ok && (fld[i] = strtok_r(NULL, ",\n", &save)) != NULL;
      if (!ok) break;
      r->obj[k].x = strtof(fld[0], NULL);
      r->obj[k].y = strtof(fld[1], NULL);
      r->obj[k].size = strtof(fld[2], NULL);
      r->obj[k].shape = scene_shape_from_name(fld[3]);
      r->obj[k].colour = scene_colour_from_name(fld[4]);
      ok = r->obj[k].shape >= 0 && r->obj[k].colour >= 0;
    }
    if (!ok) {
      snprintf(err, errlen, "%s:%d: not a labels row", path, lineno);
      goto fail;
    }
    n++;
  }
  fclose(f);
  if (!n) {
    free(t);
    snprintf(err, errlen, "%s: no scenes", path);
    return -1;
  }
  *out = t;
  return n;
fail:
  fclose(f);
  free(t);
  return -1;
}

/* One reader's scores over the scenes. */
typedef struct score {
  long objects, shape_ok, colour_ok;   /* over the true objects matched (or all, single) */
  double pos_err, size_err;            /* sums of absolute errors (position: per coordinate) */
  long pos_n, size_n;
  long scenes, all_found, count_ok;    /* multi: every object found within POS_TOL */
} score;

/* Best assignment of found to true objects (K <= 5: every permutation): the one with the
 * smallest largest per-coordinate distance; returns that distance and fills perm. */
static float match(const truth *t, const ebm_infer_scene *s, int *perm) {
  int K = t->nobj < s->nobj ? t->nobj : s->nobj, idx[SCENE_MAX_OBJECTS];
  int N = s->nobj;
  float best = 1e30f;
  /* permutations of N found objects, first K assigned to the true 0..K-1 */
  for (int i = 0; i < N; i++) idx[i] = i;
  for (;;) {
    float worst = 0.0f;
    for (int k = 0; k < K; k++) {
      const scene_object *a = &t->obj[k];
      const ebm_infer_object *b = &s->obj[idx[k]];
      float d = fmaxf(fabsf(a->x - b->x), fabsf(a->y - b->y));
      if (d > worst) worst = d;
    }
    if (worst < best) {
      best = worst;
      memcpy(perm, idx, sizeof(int) * (size_t)N);
    }
    /* next permutation (lexicographic) */
    int i = N - 2;
    while (i >= 0 && idx[i] >= idx[i + 1]) i--;
    if (i < 0) break;
    int j = N - 1;
    while (idx[j] <= idx[i]) j--;
    int tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
    for (int a = i + 1, b = N - 1; a < b; a++, b--) tmp = idx[a], idx[a] = idx[b], idx[b] = tmp;
  }
  return best;
}

static void score_scene(score *sc, const truth *t, const ebm_infer_scene *s) {
  int perm[SCENE_MAX_OBJECTS];
  float worst = match(t, s, perm);
  int K = t->nobj < s->nobj ? t->nobj : s->nobj;
  sc->scenes++;
  if (s->nobj == t->nobj) sc->count_ok++;
  if (s->nobj == t->nobj && worst <= POS_TOL) sc->all_found++;
  for (int k = 0; k < K; k++) {
    const scene_object *a = &t->obj[k];
    const ebm_infer_object *b = &s->obj[perm[k]];
    sc->objects++;
    sc->shape_ok += b->shape == a->shape;
    sc->colour_ok += b->colour == a->colour;
    sc->pos_err += fabsf(a->x - b->x) + fabsf(a->y - b->y);
    sc->pos_n += 2;
    if (b->size >= 0.0f) {
      sc->size_err += fabsf(a->size - b->size);
      sc->size_n++;
    }
  }
}

/* The judge through the same greedy masking: object k = the judge's reading of the image with
 * objects 1..k-1 boxed out; its shape, colour and size read on a copy showing only it. */
static int judge_scenes(ebm_judge *j, const float *images, int n, int R, int K,
                        const ebm_infer_options *o, ebm_infer_scene *out, char *err,
                        size_t errlen) {
  size_t per = (size_t)3 * R * R;
  float *work = malloc((size_t)n * per * sizeof *work), *copies = malloc((size_t)n * K * per * sizeof *copies);
  ebm_judge_reading *r = malloc((size_t)n * K * sizeof *r);
  float (*fill)[3] = malloc((size_t)n * sizeof *fill);
  int rc = -1;
  if (!work || !copies || !r || !fill) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  memcpy(work, images, (size_t)n * per * sizeof *work);
  memset(out, 0, (size_t)n * sizeof *out);
  for (int b = 0; b < n; b++) ebm_infer_median(images + b * per, R, fill[b]);
  for (int k = 0; k < K; k++) {
    if (ebm_judge_read(j, work, n, r, err, errlen)) goto done;
    for (int b = 0; b < n; b++) {
      out[b].nobj = K;
      out[b].obj[k].x = r[b].x;
      out[b].obj[k].y = r[b].y;
      ebm_infer_mask_box(work + b * per, R, r[b].x, r[b].y, o->mask_size, fill[b]);
    }
  }
  for (int b = 0; b < n; b++) {
    float places[EBM_INFER_MAX_OBJECTS][2];
    for (int k = 0; k < K; k++) places[k][0] = out[b].obj[k].x, places[k][1] = out[b].obj[k].y;
    for (int k = 0; k < K; k++) {
      float *dst = copies + ((size_t)b * K + k) * per;
      if (K == 1) memcpy(dst, images + b * per, per * sizeof *dst);
      else ebm_infer_mask_others(images + b * per, R, (const float(*)[2])places, K, k, fill[b], dst);
    }
  }
  if (ebm_judge_read(j, copies, n * K, r, err, errlen)) goto done;
  for (int b = 0; b < n; b++)
    for (int k = 0; k < K; k++) {
      const ebm_judge_reading *q = &r[(size_t)b * K + k];
      ebm_infer_object *ob = &out[b].obj[k];
      ob->shape = q->shape;
      ob->colour = q->colour;
      ob->shape_p = q->shape_prob[q->shape];
      ob->colour_p = q->colour_prob[q->colour];
      ob->size = q->size;
      if (K == 1) ob->x = q->x, ob->y = q->y;
    }
  rc = 0;
done:
  free(work);
  free(copies);
  free(r);
  free(fill);
  return rc;
}

static void print_score_text(const char *who, const score *s, int multi) {
  printf("| %-16s | %6ld | %6.1f%% | %6.1f%% | %8.4f | %8.4f |", who, s->objects,
         s->objects ? 100.0 * s->colour_ok / s->objects : 0.0,
         s->objects ? 100.0 * s->shape_ok / s->objects : 0.0,
         s->pos_n ? s->pos_err / s->pos_n : 0.0, s->size_n ? s->size_err / s->size_n : 0.0);
  if (multi)
    printf(" %6.1f%% | %6.1f%% |", s->scenes ? 100.0 * s->all_found / s->scenes : 0.0,
           s->scenes ? 100.0 * s->count_ok / s->scenes : 0.0);
  printf("\n");
}

static void print_score_json(const char *who, const score *s) {
  printf("\"%s\": {\"objects\": %ld, \"colour_acc\": %.4f, \"shape_acc\": %.4f, "
         "\"position_mae\": %.5f, \"size_mae\": %.5f, \"scenes\": %ld, \"all_found\": %.4f, "
         "\"count_right\": %.4f}",
         who, s->objects, s->objects ? (double)s->colour_ok / s->objects : 0.0,
         s->objects ? (double)s->shape_ok / s->objects : 0.0,
         s->pos_n ? s->pos_err / s->pos_n : 0.0, s->size_n ? s->size_err / s->size_n : 0.0,
         s->scenes, s->scenes ? (double)s->all_found / s->scenes : 0.0,
         s->scenes ? (double)s->count_ok / s->scenes : 0.0);
}

static int infer_data(opts *o, ebm_concept_set *set, ebm_backend *be, int R) {
  char err[4608];
  truth *t = NULL;
  int size = 0;
  int n = read_labels(o->data, o->limit, &t, &size, err, sizeof err);
  if (n < 0) return cli_fail(CMD_NAME, "%s", err);
  if (size && size != R) {
    free(t);
    return cli_fail(CMD_NAME, "%s: scenes of %dx%d, the models read %dx%d (vkebm data --size %d)",
                    o->data, size, size, R, R, R);
  }
  int maxobj = 1;
  for (int i = 0; i < n; i++)
    if (t[i].nobj > maxobj) maxobj = t[i].nobj;
  size_t per = (size_t)3 * R * R;
  float *img = malloc((size_t)n * per * sizeof *img);
  ebm_infer_scene *es = malloc((size_t)n * sizeof *es), *js = malloc((size_t)n * sizeof *js);
  int rc = EXIT_OK;
  ebm_judge *judge = NULL;
  score se = {0}, sj = {0};
  marks mk = {0};
  if (!img || !es || !js) {
    rc = cli_fail(CMD_NAME, "out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%06u.png", o->data, t[i].index);
    if (read_image(path, R, img + i * per, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
  }
  if (!o->no_judge && ebm_judge_load(&judge, be, o->judge, 64, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s (--no-judge runs without the baseline)", err);
    goto done;
  }
  /* groups of scenes with the same object count: K from the labels unless --objects says */
  double t0 = cli_now_s();
  cli_progress prog;
  cli_progress_init(&prog, CMD_NAME, o->quiet);
  for (int i0 = 0; i0 < n;) {
    int i1 = i0 + 1;
    while (i1 < n && t[i1].nobj == t[i0].nobj && i1 - i0 < 16) i1++;
    int K = o->objects >= 0 ? o->objects : t[i0].nobj;
    if (ebm_infer_scenes(set, img + i0 * per, i1 - i0, R, K, &o->inf, es + i0, err,
                         sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    if (judge && judge_scenes(judge, img + i0 * per, i1 - i0, R, K ? K : t[i0].nobj, &o->inf,
                              js + i0, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    i0 = i1;
    cli_progress_update(&prog, "scenes", i0, n);
  }
  cli_progress_end(&prog);
  double secs = cli_now_s() - t0;
  for (int i = 0; i < n; i++) {
    score_scene(&se, &t[i], &es[i]);
    if (judge) score_scene(&sj, &t[i], &js[i]);
    if (o->mark) {
      int at = marks_add(&mk, img + i * per, R);
      if (at < 0) continue;
      float *big = mk.big + (size_t)at * 3 * R * R * MARK_SCALE * MARK_SCALE;
      for (int k = 0; k < t[i].nobj; k++) draw_mark(big, R, t[i].obj[k].x, t[i].obj[k].y, 1);
      for (int k = 0; k < es[i].nobj; k++) draw_mark(big, R, es[i].obj[k].x, es[i].obj[k].y, 0);
    }
  }
  int multi = maxobj > 1 || o->objects > 1 || o->objects == 0;
  if (o->json) {
    printf("{\"data\": \"%s\", \"scenes\": %d, \"max_objects\": %d, \"objects\": \"%s\", "
           "\"temperature\": %g, \"grid\": %d, \"steps\": %d, \"position_tolerance\": %g, "
           "\"seconds\": %.2f, ",
           o->data, n, maxobj, o->objects < 0 ? "labels" : o->objects ? "fixed" : "auto",
           o->inf.temperature, o->inf.grid, o->inf.steps, POS_TOL, secs);
    print_score_json("ebm", &se);
    if (judge) {
      printf(", ");
      print_score_json("judge", &sj);
    }
    printf("}\n");
  } else {
    printf("%d scenes of %s (up to %d objects), %.1f s; objects: %s; position error per "
           "coordinate, found: every object within %.2f per coordinate\n\n",
           n, o->data, maxobj, secs,
           o->objects < 0 ? "the labels' count" : o->objects ? "fixed" : "auto", POS_TOL);
    printf("| reader           | objects| color   | shape   | pos MAE  | size MAE |%s\n",
           multi ? " found   | count   |" : "");
    printf("|------------------|-------:|--------:|--------:|---------:|---------:|%s\n",
           multi ? "--------:|--------:|" : "");
    print_score_text("energy models", &se, multi);
    if (judge) print_score_text("judge (baseline)", &sj, multi);
  }
  if (o->mark && mk.n > 0 && marks_write(&mk, o->mark, err, sizeof err))
    rc = cli_fail(CMD_NAME, "%s", err);
done:
  ebm_judge_destroy(judge);
  free(mk.big);
  free(img);
  free(es);
  free(js);
  free(t);
  return rc;
}

/* ---- main ------------------------------------------------------------------------------------- */

int cmd_infer(int argc, char **argv) {
  enum { O_MODELS = 256, O_OBJECTS, O_DATA, O_JUDGE, O_NO_JUDGE, O_TEMP, O_GRID, O_STEPS, O_MARK,
         O_JSON, O_BACKEND, O_CALIBRATE, O_CALIBRATE_SEED };
  static const struct option lo[] = {
      {"models", required_argument, 0, O_MODELS}, {"objects", required_argument, 0, O_OBJECTS},
      {"data", required_argument, 0, O_DATA},     {"judge", required_argument, 0, O_JUDGE},
      {"no-judge", no_argument, 0, O_NO_JUDGE},   {"temperature", required_argument, 0, O_TEMP},
      {"grid", required_argument, 0, O_GRID},     {"steps", required_argument, 0, O_STEPS},
      {"mark", required_argument, 0, O_MARK},     {"json", no_argument, 0, O_JSON},
      {"backend", required_argument, 0, O_BACKEND}, {"quiet", no_argument, 0, 'q'},
      {"calibrate", required_argument, 0, O_CALIBRATE},
      {"calibrate-seed", required_argument, 0, O_CALIBRATE_SEED},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  char models_dir[4096], judge_default[4200];
  ebm_models_dir_default(models_dir, sizeof models_dir);
  snprintf(judge_default, sizeof judge_default, "%s/judge.safetensors", models_dir);
  opts o = {.models = models_dir, .judge = judge_default, .objects = -1,
            .calibrate = 64, .calibrate_seed = CALIBRATE_SEED};
  ebm_infer_defaults(&o.inf);
  long v;
  double d;
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, ":n:qh", lo, NULL)) != -1) {
    switch (ch) {
    case 'h': usage(stdout); return EXIT_OK;
    case 'q': o.quiet = 1; break;
    case 'n':
      if (cli_parse_int(optarg, 1, 1000000, &o.limit))
        return cli_usage(CMD_NAME, "-n: '%s' is not a count in 1..1000000", optarg);
      break;
    case O_MODELS: o.models = optarg; break;
    case O_DATA: o.data = optarg; break;
    case O_JUDGE: o.judge = optarg; break;
    case O_NO_JUDGE: o.no_judge = 1; break;
    case O_MARK: o.mark = optarg; break;
    case O_JSON: o.json = 1; break;
    case O_OBJECTS:
      if (!strcmp(optarg, "auto")) o.objects = 0;
      else if (cli_parse_int(optarg, 1, EBM_INFER_MAX_OBJECTS, &v))
        return cli_usage(CMD_NAME, "--objects: '%s' is not 1..%d or auto", optarg,
                         EBM_INFER_MAX_OBJECTS);
      else o.objects = (int)v;
      break;
    case O_TEMP:
      if (cli_parse_float(optarg, 1e-6, 1e6, &d) || !(d > 0))
        return cli_usage(CMD_NAME, "--temperature: '%s' is not a number > 0", optarg);
      o.inf.temperature = (float)d;
      break;
    case O_GRID:
      if (cli_parse_int(optarg, 1, 8, &v))
        return cli_usage(CMD_NAME, "--grid: '%s' is not 1..8", optarg);
      o.inf.grid = (int)v;
      break;
    case O_STEPS:
      if (cli_parse_int(optarg, 0, 1000, &v))
        return cli_usage(CMD_NAME, "--steps: '%s' is not 0..1000", optarg);
      o.inf.steps = (int)v;
      break;
    case O_CALIBRATE:
      if (cli_parse_int(optarg, 0, 4096, &o.calibrate) || o.calibrate == 1)
        return cli_usage(CMD_NAME, "--calibrate: '%s' is not 0 or 2..4096", optarg);
      break;
    case O_CALIBRATE_SEED:
      if (cli_parse_int(optarg, 0, 4294967295L, &o.calibrate_seed))
        return cli_usage(CMD_NAME, "--calibrate-seed: '%s' is not 0..2^32-1", optarg);
      break;
    case O_BACKEND:
      if ((o.backend = cli_parse_backend(optarg)) < 0)
        return cli_usage(CMD_NAME, "--backend: '%s' is not auto, cpu or vulkan", optarg);
      break;
    default: return cli_bad_option(CMD_NAME, argv, ch, lo);
    }
  }
  int nfiles = argc - optind;
  if (o.data && nfiles) return cli_usage(CMD_NAME, "--data reads a folder: no IMAGE arguments");
  if (!o.data && nfiles < 1) return cli_usage(CMD_NAME, "no images given (see --help)");
  if (!o.data && o.limit) return cli_usage(CMD_NAME, "-n goes with --data");
  ebm_backend *be;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)o.backend, -1, 0, o.quiet);
  if (rc) return rc;
  ebm_concept_set set = {0};
  ebm_infer_calibration *cal = NULL;
  char err[4608];
  /* rows per evaluation: 64 images x starts or labels per pass */
  if (ebm_concept_set_load_dir(&set, be, o.models, 64 * 8, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  if (!set.count) {
    rc = cli_fail(CMD_NAME, "no concept models in %s (--models DIR)", o.models);
    goto done;
  }
  int R = ebm_concept_info_of(set.items[0])->height;
  for (int m = 1; m < set.count; m++)
    if (ebm_concept_info_of(set.items[m])->height != R) {
      rc = cli_fail(CMD_NAME, "the models in %s read different image sizes", o.models);
      goto done;
    }
  if ((o.objects >= 0 || o.data) && !ebm_concept_set_find(&set, "position")) {
    rc = cli_fail(CMD_NAME, "--objects and --data need a position model in %s", o.models);
    goto done;
  }
  cal = calloc(1, sizeof *cal);
  if (!cal) {
    rc = cli_fail(CMD_NAME, "out of memory");
    goto done;
  }
  if (o.calibrate && ebm_infer_calibrate(&set, R, (int)o.calibrate, (unsigned)o.calibrate_seed,
                                         cal, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "calibration: %s", err);
    goto done;
  }
  o.inf.calibration = cal;
  rc = o.data ? infer_data(&o, &set, be, R) : infer_images(&o, &set, R, nfiles, argv + optind);
done:
  ebm_concept_set_clear(&set);
  free(cal);
  return cli_backend_close(be, rc);
}
