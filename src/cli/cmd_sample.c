/* cmd_sample.c: `vkebm sample --expr EXPR`: sample images from a composition of concept models.
 *
 * Parses the expression, binds it to the learned models of --models DIR (every *.safetensors
 * there) or, when the directory holds none or --analytic is given, to the analytic concepts,
 * runs the chosen sampler, and writes a torchvision-style grid PNG whose text chunks hold every
 * setting needed to reproduce it (`--from FILE.png` does, pixel for pixel; no timestamps, so
 * the same command writes the same bytes). Optional per-step PNG frames and a looping GIF.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vkebm/compose.h"
#include "vkebm/concept.h"
#include "vkebm/expr.h"
#include "vkebm/fileio.h"
#include "vkebm/gif.h"
#include "vkebm/image.h"
#include "vkebm/sampler.h"

#define CMD_NAME "sample"

typedef struct settings {
  char expr[4096];
  long n, steps;
  uint32_t seed;
  int seed_given;
  ebm_sampler_config sc;
  int step_given, noise_given, clip_given, steps_given;
  long nrow, padding, scale;
  char models[2048];
  int analytic;        /* use the analytic concepts */
  long resolution;     /* analytic image size */
  char init[2048];     /* start every chain from this PNG (editing) */
  char hashes[2048];   /* from --from: the model hashes the file recorded */
  char backend[16];    /* from --from: the backend it ran on */
} settings;

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm sample [--expr] EXPR [options]\n"
          "       vkebm sample --from FILE.png [-o OUT.png]\n\n"
          "Samples images from a logical composition of concept energy models.\n"
          "EXPR terms are concept=value (shape=cube, color=red, size=0.6, pos=(0.3,-0.5)),\n"
          "combined with AND/&, OR/|, NOT/!, parentheses and weights (2*color=red);\n"
          "NOT[alpha] sets the negation strength, OR[T] the disjunction temperature.\n\n"
          "options:\n"
          "  --expr EXPR          the composition (see docs/composition.md)\n"
          "  -n, --num N          chains (images), default 16\n"
          "  --steps K            sampler steps (default: what the models record, else 200)\n"
          "  --seed S             random seed (default: picked, printed and recorded)\n"
          "  -o, --output FILE    grid PNG, default grid.png\n"
          "  --models DIR         learned models (*.safetensors); default: $VKEBM_MODELS, else\n"
          "                       ./models, else the shipped models of the source tree\n"
          "  --analytic           use the analytic concepts (color, position, size, shape)\n"
          "  --resolution R       analytic image size, default 32\n"
          "  --sampler NAME       paper (default), langevin or mala\n"
          "  --step-size V        paper: eta; langevin: lambda; mala: initial tau\n"
          "  --noise V            paper: sigma (default 0.005)\n"
          "  --clip / --no-clip   clip to [0,1] after each step (paper: on; others: off)\n"
          "  --beta V             energy scale (inverse temperature), default 1\n"
          "  --divide-steps       divide the step size by the number of terms\n"
          "  --target-accept V    mala: target acceptance, default 0.57\n"
          "  --adapt-steps K      mala: adapt the step during the first K steps (default steps/2)\n"
          "  --init FILE.png      start every chain from this image (editing) instead of noise\n"
          "  --frames DIR         write DIR/step_NNNN.png after every --every steps\n"
          "  --gif FILE           write the chains as a looping animated GIF\n"
          "  --every K            frame interval for --frames/--gif (default: steps/50, >= 1)\n"
          "  --nrow N, --padding P  grid layout like torchvision (8, 2)\n"
          "  --scale K            enlarge the grid (and frames, GIF) K times, nearest neighbour\n"
          "                       (1..16, default 1; recorded, so --from and `vkebm judge` read it)\n"
          "  --explain            print the parsed tree and its energy; sample nothing\n"
          "  --from FILE.png      repeat the sampling recorded in a PNG written by this command\n"
          "  --device I           the Vulkan device's index (`vkebm devices`; default: the best)\n"
          "  --backend B          auto (default: a hardware GPU if there is one, else cpu, as\n"
          "                       view and train), cpu or vulkan; the PNG records it and --from\n"
          "                       reproduces on it\n"
          "  --save-each DIR      also one PNG per sample (DIR/sample_NNN.png) and the raw\n"
          "                       float samples as DIR/samples.npy ([n, 3, H, W], float32)\n"
          "  --json               print the samples' energies on stdout (composed and per term,\n"
          "                       per chain) as one JSON object\n"
          "  --quiet              no progress\n");
}

/* ---- PNG metadata: every setting as one text chunk ---------------------------------------- */

/* The recorded settings: every key vkebm writes (vkebm:settings is a description, and
 * vkebm:init and vkebm:model_hashes are optional). Limits are the flags' own, so a file cannot
 * ask for what the command line refuses. */
static const char *const from_keys[] = {
    "vkebm:expr", "vkebm:sampler", "vkebm:models", "vkebm:n", "vkebm:steps", "vkebm:seed",
    "vkebm:step_size", "vkebm:noise", "vkebm:clip", "vkebm:beta", "vkebm:divide_steps",
    "vkebm:target_accept", "vkebm:adapt_steps", "vkebm:nrow", "vkebm:padding",
    "vkebm:resolution", /* the 16 required ones end here */
    "vkebm:init", "vkebm:backend", "vkebm:model_hashes", "vkebm:settings", "vkebm:scale", NULL};
#define FROM_REQUIRED 16

/* Copies v into dst[cap]; -1 when it does not fit (a truncated recipe is another recipe). */
static int copy_whole(char *dst, size_t cap, const char *v) {
  if (strlen(v) >= cap) return -1;
  memcpy(dst, v, strlen(v) + 1);
  return 0;
}

static int load_from_png(const char *path, settings *s, char *err, size_t errlen) {
  uint8_t *rgb = NULL;
  int W, H, ntext = 0;
  img_text *text = NULL;
  if (img_read_png_rgb8(path, &rgb, &W, &H, &text, &ntext, err, errlen)) return -1;
  free(rgb);
  int seen[sizeof from_keys / sizeof *from_keys] = {0};
  int rc = 0;
  const char *why = "";
  for (int i = 0; i < ntext && rc == 0; i++) {
    const char *k = text[i].key, *v = text[i].value;
    if (strncmp(k, "vkebm:", 6)) continue; /* Software and other tools' chunks */
    int key = -1;
    for (int j = 0; from_keys[j] && key < 0; j++)
      if (!strcmp(k, from_keys[j])) key = j;
    if (key < 0) {
      snprintf(err, errlen, "%s: unknown setting %.40s (written by another vkebm version?)", path, k);
      rc = -1;
      break;
    }
    if (seen[key]++) {
      snprintf(err, errlen, "%s: %s appears twice: which one was the recipe?", path, k);
      rc = -1;
      break;
    }
    long l;
    double d;
#define GET_INT(key, lo, hi, dst)                                                       \
  else if (!strcmp(k, key)) {                                                           \
    if (cli_parse_int(v, lo, hi, &l)) rc = -1, why = "expected " #lo ".." #hi;          \
    else dst = l;                                                                       \
  }
#define GET_FLT(key, lo, hi, dst)                                                       \
  else if (!strcmp(k, key)) {                                                           \
    if (cli_parse_float(v, lo, hi, &d)) rc = -1, why = "expected " #lo ".." #hi;        \
    else dst = (float)d;                                                                \
  }
    if (!strcmp(k, "vkebm:expr")) {
      if (copy_whole(s->expr, sizeof s->expr, v)) rc = -1, why = "longer than 4095 bytes";
    } else if (!strcmp(k, "vkebm:sampler")) {
      int kind = ebm_sampler_parse(v);
      if (kind < 0) rc = -1, why = "expected paper, langevin or mala";
      else s->sc.kind = (ebm_sampler_kind)kind;
    } else if (!strcmp(k, "vkebm:models")) {
      if (!strcmp(v, "analytic")) s->analytic = 1;
      else if (copy_whole(s->models, sizeof s->models, v)) rc = -1, why = "path too long";
    } else if (!strcmp(k, "vkebm:init")) {
      if (copy_whole(s->init, sizeof s->init, v)) rc = -1, why = "path too long";
    } else if (!strcmp(k, "vkebm:backend")) {
      if (copy_whole(s->backend, sizeof s->backend, v) || cli_parse_backend(v) < 0)
        rc = -1, why = "expected auto, cpu or vulkan";
    } else if (!strcmp(k, "vkebm:model_hashes")) {
      if (copy_whole(s->hashes, sizeof s->hashes, v)) rc = -1, why = "too long";
    } else if (!strcmp(k, "vkebm:settings")) {
      /* a description of the others, for people */
    }
    GET_INT("vkebm:n", 1, 4096, s->n)
    GET_INT("vkebm:steps", 0, 1000000, s->steps)
    GET_INT("vkebm:seed", 0, 4294967295L, s->seed)
    GET_FLT("vkebm:step_size", 1e-30, 1e30, s->sc.step_size)
    GET_FLT("vkebm:noise", 0, 1e30, s->sc.noise_std)
    GET_INT("vkebm:clip", 0, 1, s->sc.clip)
    GET_FLT("vkebm:beta", 1e-30, 1e30, s->sc.energy_scale)
    GET_INT("vkebm:divide_steps", 0, 1, s->sc.divide_by_terms)
    GET_FLT("vkebm:target_accept", 0.01, 0.99, s->sc.target_accept)
    GET_INT("vkebm:adapt_steps", 0, 1000000, s->sc.adapt_steps)
    GET_INT("vkebm:nrow", 1, 4096, s->nrow)
    GET_INT("vkebm:padding", 0, 1024, s->padding)
    GET_INT("vkebm:scale", 1, 16, s->scale)
    GET_INT("vkebm:resolution", 4, 512, s->resolution)
#undef GET_INT
#undef GET_FLT
    if (rc) {
      char shown[64];
      cli_printable(shown, sizeof shown, v);
      snprintf(err, errlen, "%s: bad value '%s' for %s (%s)", path, shown, k, why);
    }
  }
  img_text_free(text, ntext);
  if (rc) return -1;
  for (int j = 0; j < FROM_REQUIRED; j++)
    if (!seen[j]) {
      snprintf(err, errlen, "%s: not written by `vkebm sample` (%s is missing)", path, from_keys[j]);
      return -1;
    }
  s->seed_given = s->step_given = s->noise_given = s->clip_given = s->steps_given = 1;
  s->sc.steps = (int)s->steps;
  s->sc.seed = s->seed;
  return 0;
}

/* ---- models -------------------------------------------------------------------------------- */

/* Fills set from settings: the learned models of s->models, or the analytic concepts
 * (ebm_concept_set_open). Returns an exit code (0 ok). */
static int load_models(ebm_backend *be, settings *s, ebm_concept_set *set, int rows, int quiet) {
  char err[512];
  if (ebm_concept_set_open(set, be, s->analytic ? NULL : s->models, (int)s->resolution, rows, err,
                           sizeof err))
    return cli_fail(CMD_NAME, "%s", err);
  return 0;
}

/* ---- output -------------------------------------------------------------------------------- */

/* The torchvision-style grid of images[B, 3, H, W], enlarged s->scale times. malloc'd. */
static uint8_t *make_grid(const settings *s, const float *images, int B, int W, int H, int *gw,
                          int *gh) {
  uint8_t *grid = img_make_grid(images, B, W, H, (int)s->nrow, (int)s->padding, 0.0f, gw, gh);
  if (!grid || s->scale <= 1) return grid;
  uint8_t *big = img_scale_nearest(grid, *gw, *gh, (int)s->scale);
  free(grid);
  *gw *= (int)s->scale;
  *gh *= (int)s->scale;
  return big;
}

/* DIR/sample_NNN.png for every sample and DIR/samples.npy with the floats. */
static int write_each(const char *dir, const float *x, int B, int H, int W, char *err,
                      size_t errlen) {
  if (cli_mkdir_p(dir)) return snprintf(err, errlen, "cannot create %.200s: %s", dir, strerror(errno)), -1;
  size_t per = (size_t)3 * H * W;
  uint8_t *rgb = malloc(per);
  if (!rgb) return snprintf(err, errlen, "out of memory"), -1;
  char path[4200];
  for (int b = 0; b < B; b++) {
    img_chw_to_rgb8(rgb, x + (size_t)b * per, W, H);
    snprintf(path, sizeof path, "%.4000s/sample_%03d.png", dir, b);
    if (img_write_png_rgb8_flags(path, rgb, W, H, NULL, 0, IMG_WRITE_NO_FSYNC, err, errlen)) {
      free(rgb);
      return -1;
    }
  }
  free(rgb);
  /* .npy version 1.0: magic, header length, a Python dict padded to 64 bytes, the data */
  char header[128];
  int hl = snprintf(header, sizeof header,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 3, %d, %d), }", B, H, W);
  int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
  size_t n = (size_t)B * per, len = (size_t)total + pad + n * 4;
  uint8_t *buf = malloc(len);
  if (!buf) return snprintf(err, errlen, "out of memory"), -1;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  uint16_t hlen = (uint16_t)(hl + pad + 1);
  buf[8] = (uint8_t)(hlen & 0xff), buf[9] = (uint8_t)(hlen >> 8);
  memcpy(buf + 10, header, (size_t)hl);
  memset(buf + 10 + hl, ' ', (size_t)pad);
  buf[10 + hl + pad] = '\n';
  memcpy(buf + total + pad, x, n * 4); /* little-endian floats on every supported host */
  snprintf(path, sizeof path, "%.4000s/samples.npy", dir);
  int rc = io_write_atomic(path, buf, len, err, errlen);
  free(buf);
  return rc;
}

/* One JSON object: the expression, seed, output and every chain's composed and per-term
 * energies (those of the final step). */
static void print_energies(ebm_composition *comp, const settings *s, const char *out, int B) {
  const float *te = ebm_composition_term_energies(comp); /* fresh: ebm_sample's last evaluation */
  if (!te) return;
  int T = ebm_composition_num_terms(comp);
  printf("{\"expr\": ");
  cli_json_string(stdout, s->expr);
  printf(", \"seed\": %u, \"n\": %d, \"output\": ", s->seed, B);
  cli_json_string(stdout, out);
  printf(", \"energy\": [");
  double E[64];
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T && t < 64; t++) E[t] = te[(size_t)t * B + b];
    printf("%s%.9g", b ? ", " : "", ebm_composition_tree_value_chain(comp, E, NULL, b));
  }
  printf("], \"terms\": {");
  for (int t = 0; t < T; t++) {
    printf("%s", t ? ", " : "");
    cli_json_string(stdout, ebm_composition_term_text(comp, t));
    printf(": [");
    for (int b = 0; b < B; b++) printf("%s%.9g", b ? ", " : "", te[(size_t)t * B + b]);
    printf("]");
  }
  printf("}}\n");
}

typedef struct frame_sink {
  ebm_backend *be;
  const settings *s;
  int B, C, H, W, every, steps;
  const char *frames_dir;
  float *host;
  gif_writer *gif;     /* frames are encoded as they come: memory stays at two frames */
  cli_progress progress; /* steps on stderr (quiet: silent) */
  int failed;
  char why[512];       /* what failed */
} frame_sink;

static int on_step(int step, ebm_ref x, void *user) {
  frame_sink *f = user;
  int last = step == f->steps - 1;
  cli_progress_update(&f->progress, "sampling, step", step + 1, f->steps);
  if (last) cli_progress_end(&f->progress);
  if (!f->frames_dir && !f->gif) return 0;
  if ((step + 1) % f->every && !last) return 0;
  if (ebm_download(f->be, f->host, x, (size_t)f->B * f->C * f->H * f->W)) {
    snprintf(f->why, sizeof f->why, "download failed");
    f->failed = 1;
    return 1;
  }
  int gw, gh;
  uint8_t *grid = make_grid(f->s, f->host, f->B, f->W, f->H, &gw, &gh);
  if (!grid) {
    snprintf(f->why, sizeof f->why, "out of memory for a frame");
    f->failed = 1;
    return 1;
  }
  if (f->frames_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/step_%04d.png", f->frames_dir, step + 1);
    if (img_write_png_rgb8(path, grid, gw, gh, NULL, 0, f->why, sizeof f->why)) {
      f->failed = 1;
      free(grid);
      return 1;
    }
  }
  if (f->gif && gif_writer_add(f->gif, grid, gw, gh, f->why, sizeof f->why)) {
    f->failed = 1;
    free(grid);
    return 1;
  }
  free(grid);
  return 0;
}

/* The largest factor any term's energy is multiplied by: weights times NOT strengths along the
 * path from the root (OR's temperature is left out: it scales a log-sum-exp, not a term). */
static double largest_scale(const expr_node *n, double acc) {
  acc *= fabs((double)n->weight);
  if (n->kind == EXPR_NOT) acc *= fabs((double)n->param);
  double m = n->kind == EXPR_TERM ? acc : 0;
  for (int i = 0; i < n->num_children; i++) {
    double c = largest_scale(n->children[i], acc);
    if (c > m) m = c;
  }
  return m;
}


int cmd_sample(int argc, char **argv) {
  settings s;
  memset(&s, 0, sizeof s);
  ebm_sampler_defaults(&s.sc, EBM_SAMPLER_PAPER);
  s.n = 16;
  s.steps = 200;
  s.nrow = 8;
  s.padding = 2;
  s.scale = 1;
  s.resolution = 32;
  ebm_models_dir_default(s.models, sizeof s.models);
  const char *out = "grid.png", *frames_dir = NULL, *gif_path = NULL, *from = NULL,
             *save_each = NULL;
  int json = 0;
  int explain = 0, quiet = 0, sampling_opts = 0, backend = EBM_BACKEND_AUTO, backend_given = 0, device = -1;
  int resolution_given = 0;
  long every = 0;

  enum {
    O_EXPR = 256, O_STEPS, O_SEED, O_MODELS, O_ANALYTIC, O_RES, O_SAMPLER, O_STEP, O_NOISE,
    O_CLIP, O_NOCLIP, O_BETA, O_DIVIDE, O_TARGET, O_ADAPT, O_INIT, O_FRAMES, O_GIF, O_EVERY,
    O_NROW, O_PAD, O_SCALE, O_JSON, O_SAVE_EACH, O_EXPLAIN, O_FROM, O_BACKEND, O_DEVICE, O_QUIET
  };
  static const struct option opts[] = {
      {"expr", required_argument, 0, O_EXPR},       {"num", required_argument, 0, 'n'},
      {"steps", required_argument, 0, O_STEPS},     {"seed", required_argument, 0, O_SEED},
      {"output", required_argument, 0, 'o'},        {"models", required_argument, 0, O_MODELS},
      {"analytic", no_argument, 0, O_ANALYTIC},     {"resolution", required_argument, 0, O_RES},
      {"sampler", required_argument, 0, O_SAMPLER}, {"step-size", required_argument, 0, O_STEP},
      {"noise", required_argument, 0, O_NOISE},     {"clip", no_argument, 0, O_CLIP},
      {"no-clip", no_argument, 0, O_NOCLIP},        {"beta", required_argument, 0, O_BETA},
      {"divide-steps", no_argument, 0, O_DIVIDE},   {"target-accept", required_argument, 0, O_TARGET},
      {"adapt-steps", required_argument, 0, O_ADAPT}, {"init", required_argument, 0, O_INIT},
      {"frames", required_argument, 0, O_FRAMES},   {"gif", required_argument, 0, O_GIF},
      {"every", required_argument, 0, O_EVERY},     {"nrow", required_argument, 0, O_NROW},
      {"padding", required_argument, 0, O_PAD},     {"scale", required_argument, 0, O_SCALE},     {"explain", no_argument, 0, O_EXPLAIN},
      {"from", required_argument, 0, O_FROM},       {"backend", required_argument, 0, O_BACKEND},
      {"device", required_argument, 0, O_DEVICE},
      {"quiet", no_argument, 0, O_QUIET},           {"help", no_argument, 0, 'h'},
      {"json", no_argument, 0, O_JSON},             {"save-each", required_argument, 0, O_SAVE_EACH},
      {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int ch;
  long l;
  double d;
  /* sampler-specific options are applied after the sampler is known */
  const char *step_arg = NULL, *noise_arg = NULL, *target_arg = NULL, *adapt_arg = NULL;
  int clip_opt = -1;
  while ((ch = getopt_long(argc, argv, "n:o:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'h': usage(stdout); return EXIT_OK;
    case O_EXPR:
      if (strlen(optarg) >= sizeof s.expr) return cli_usage(CMD_NAME, "--expr: too long");
      snprintf(s.expr, sizeof s.expr, "%s", optarg);
      sampling_opts++;
      break;
    case 'n':
      if (cli_parse_int(optarg, 1, 4096, &l)) return cli_usage(CMD_NAME, "-n: expected 1..4096, got '%s'", optarg);
      s.n = l;
      sampling_opts++;
      break;
    case O_STEPS:
      if (cli_opt_int(CMD_NAME, "steps", optarg, 0, 1000000, &l)) return EXIT_USAGE;
      s.steps = l;
      s.steps_given = 1;
      sampling_opts++;
      break;
    case O_SEED:
      if (cli_opt_int(CMD_NAME, "seed", optarg, 0, 4294967295L, &l)) return EXIT_USAGE;
      s.seed = (uint32_t)l;
      s.seed_given = 1;
      sampling_opts++;
      break;
    case 'o': out = optarg; break;
    case O_MODELS:
      snprintf(s.models, sizeof s.models, "%s", optarg);
      sampling_opts++;
      break;
    case O_ANALYTIC: s.analytic = 1; sampling_opts++; break;
    case O_RES:
      if (cli_opt_int(CMD_NAME, "resolution", optarg, 4, 512, &l)) return EXIT_USAGE;
      s.resolution = l;
      resolution_given = 1;
      sampling_opts++;
      break;
    case O_SAMPLER: {
      int k = ebm_sampler_parse(optarg);
      if (k < 0) return cli_usage(CMD_NAME, "--sampler: expected paper, langevin or mala, got '%s'", optarg);
      ebm_sampler_defaults(&s.sc, (ebm_sampler_kind)k);
      sampling_opts++;
    } break;
    case O_STEP: step_arg = optarg; sampling_opts++; break;
    case O_NOISE: noise_arg = optarg; sampling_opts++; break;
    case O_CLIP: clip_opt = 1; sampling_opts++; break;
    case O_NOCLIP: clip_opt = 0; sampling_opts++; break;
    case O_BETA:
      if (cli_parse_float(optarg, 1e-30, 1e30, &d) || !(d > 0)) return cli_usage(CMD_NAME, "--beta: expected a positive number, got '%s'", optarg);
      s.sc.energy_scale = (float)d;
      sampling_opts++;
      break;
    case O_DIVIDE: s.sc.divide_by_terms = 1; sampling_opts++; break;
    case O_TARGET: target_arg = optarg; sampling_opts++; break;
    case O_ADAPT: adapt_arg = optarg; sampling_opts++; break;
    case O_INIT: snprintf(s.init, sizeof s.init, "%s", optarg); sampling_opts++; break;
    case O_FRAMES: frames_dir = optarg; break;
    case O_GIF: gif_path = optarg; break;
    case O_EVERY:
      if (cli_parse_int(optarg, 1, 1000000, &every)) return cli_usage(CMD_NAME, "--every: expected a positive count, got '%s'", optarg);
      break;
    case O_NROW:
      if (cli_opt_int(CMD_NAME, "nrow", optarg, 1, 4096, &l)) return EXIT_USAGE;
      s.nrow = l;
      sampling_opts++;
      break;
    case O_SCALE:
      if (cli_opt_int(CMD_NAME, "scale", optarg, 1, 16, &l)) return EXIT_USAGE;
      s.scale = l;
      sampling_opts++;
      break;
    case O_PAD:
      if (cli_opt_int(CMD_NAME, "padding", optarg, 0, 1024, &l)) return EXIT_USAGE;
      s.padding = l;
      sampling_opts++;
      break;
    case O_EXPLAIN: explain = 1; break;
    case O_FROM: from = optarg; break;
    case O_BACKEND:
      backend = cli_parse_backend(optarg);
      backend_given = 1;
      if (backend < 0) return cli_usage(CMD_NAME, "--backend: expected auto, cpu or vulkan, got '%s'", optarg);
      break;
    case O_DEVICE:
      if (cli_parse_int(optarg, 0, 64, &l))
        return cli_usage(CMD_NAME, "--device: expected an index 0..64, got '%s'", optarg);
      device = (int)l;
      break;
    case O_QUIET: quiet = 1; break;
    case O_JSON: json = 1; break;
    case O_SAVE_EACH: save_each = optarg; break;
    default: return cli_bad_option(CMD_NAME, argv, ch, opts);
    }
  }
  {
    const char *e = s.expr[0] ? s.expr : NULL;
    if ((ch = cli_positional_expr(CMD_NAME, argc, argv, &e))) return ch;
    if (e && e != s.expr) {
      if (strlen(e) >= sizeof s.expr) return cli_usage(CMD_NAME, "the expression is too long");
      snprintf(s.expr, sizeof s.expr, "%s", e);
      sampling_opts++;
    }
  }

  char err[1024];
  if (from) {
    if (sampling_opts)
      return cli_usage(CMD_NAME, "--from repeats a recorded run: give only -o, --frames, --gif, "
                                 "--every, --backend, --quiet with it");
    if (load_from_png(from, &s, err, sizeof err)) return cli_fail(CMD_NAME, "%s", err);
    /* bits are reproducible on the device that made them: use its backend unless told */
    if (!backend_given && s.backend[0] && cli_parse_backend(s.backend) > 0)
      backend = cli_parse_backend(s.backend);
  } else {
    if (!s.expr[0]) return cli_usage(CMD_NAME, "an expression is required: EXPR or --expr EXPR (or --from FILE.png; try --help)");
    /* sampler-specific values, checked against the chosen sampler */
    if (step_arg) {
      if (cli_parse_float(step_arg, 1e-30, 1e30, &d)) return cli_usage(CMD_NAME, "--step-size: expected a positive number, got '%s'", step_arg);
      s.sc.step_size = (float)d;
      s.step_given = 1;
    }
    if (noise_arg) {
      if (s.sc.kind != EBM_SAMPLER_PAPER) return cli_usage(CMD_NAME, "--noise applies to the paper sampler only (langevin and mala tie the noise to the step)");
      if (cli_parse_float(noise_arg, 0, 1e30, &d)) return cli_usage(CMD_NAME, "--noise: expected a number >= 0, got '%s'", noise_arg);
      s.sc.noise_std = (float)d;
      s.noise_given = 1;
    }
    if (target_arg) {
      if (s.sc.kind != EBM_SAMPLER_MALA) return cli_usage(CMD_NAME, "--target-accept applies to --sampler mala only");
      if (cli_parse_float(target_arg, 0.01, 0.99, &d)) return cli_usage(CMD_NAME, "--target-accept: expected 0.01..0.99, got '%s'", target_arg);
      s.sc.target_accept = (float)d;
    }
    if (adapt_arg) {
      if (s.sc.kind != EBM_SAMPLER_MALA) return cli_usage(CMD_NAME, "--adapt-steps applies to --sampler mala only");
      if (cli_parse_int(adapt_arg, 0, 1000000, &l)) return cli_usage(CMD_NAME, "--adapt-steps: expected a count, got '%s'", adapt_arg);
      s.sc.adapt_steps = (int)l;
    }
    if (clip_opt >= 0) {
      s.sc.clip = clip_opt;
      s.clip_given = 1;
    }
    s.sc.steps = (int)s.steps;
    if (s.sc.adapt_steps < 0) s.sc.adapt_steps = s.sc.steps / 2;
  }

  /* the expression first: a malformed one exits 2 and writes nothing */
  expr_error perr;
  expr_node *tree = expr_parse(s.expr, &perr);
  if (!tree) {
    char msg[2048];
    expr_error_format(s.expr, &perr, msg, sizeof msg);
    return cli_usage(CMD_NAME, "bad expression: %s", msg);
  }
  /* the outputs next: a path that cannot be written fails now, not after the sampling */
  if (!explain) {
    const char *outs[2] = {out, gif_path};
    for (int i = 0; i < 2; i++) {
      if (!outs[i]) continue;
      if (io_check_output(outs[i], err, sizeof err)) {
        expr_free(tree);
        return cli_fail(CMD_NAME, "%s%s", i ? "--gif: " : "", err);
      }
      io_clean_stale_temps(outs[i]);
    }
  }

  ebm_backend *be = NULL;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)backend, device, 0, 1);
  if (rc) {
    expr_free(tree);
    return rc;
  }
  ebm_concept_set set = {0};
  ebm_composition *comp = NULL;
  float *x = NULL;
  ebm_buffer *xb = NULL;
  frame_sink sink = {0};
  uint8_t *grid = NULL;
  int B = (int)s.n;
  rc = load_models(be, &s, &set, B * expr_count_terms(tree), quiet);
  if (rc) goto done;
  comp = ebm_composition_create(be, tree, &set, B, &perr);
  if (!comp) {
    char msg[2048];
    expr_error_format(s.expr, &perr, msg, sizeof msg);
    rc = cli_usage(CMD_NAME, "%s", msg);
    goto done;
  }
  if (resolution_given && !s.analytic) {
    int c0, h0, w0;
    ebm_composition_image_shape(comp, &c0, &h0, &w0);
    rc = cli_usage(CMD_NAME, "--resolution applies to the analytic concepts; the learned models in "
                             "%s take %dx%d images", s.models, w0, h0);
    goto done;
  }
  /* the step, noise and steps: given, else the learned models' own, else the table */
  ebm_sampler_resolve(&s.sc, &set, s.analytic, s.step_given, s.noise_given, s.steps_given);
  s.steps = s.sc.steps;

  /* model hashes, checked against a recorded run */
  char hashes[2048] = "";
  {
    size_t hn = 0;
    for (int i = 0; i < set.count; i++) {
      const ebm_concept_info *info = ebm_concept_info_of(set.items[i]);
      hn += (size_t)snprintf(hashes + hn, hn < sizeof hashes ? sizeof hashes - hn : 0, "%s%s:%s",
                             i ? "," : "", info->name, info->hash);
    }
    if (from && s.hashes[0] && strcmp(s.hashes, hashes)) {
      rc = cli_fail(CMD_NAME, "%s was made with other models (%s); these are %s", from, s.hashes,
                    hashes);
      goto done;
    }
  }

  if (explain) {
    char text[16384];
    ebm_composition_explain(comp, text, sizeof text);
    char desc[512];
    ebm_sampler_describe(&s.sc, desc, sizeof desc);
    printf("%ssampler: %s\n", text, desc);
    rc = EXIT_OK;
    goto done;
  }

  if (!s.seed_given) {
    uint32_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed) seed = (uint32_t)getpid();
    if (fd >= 0) close(fd);
    s.seed = seed;
    s.seed_given = 1;
    if (!quiet) fprintf(stderr, "vkebm sample: seed %u (recorded in the PNG)\n", s.seed);
  }
  s.sc.seed = s.seed;

  int C, H, W;
  ebm_composition_image_shape(comp, &C, &H, &W);
  size_t N = (size_t)C * H * W;
  x = malloc(sizeof(float) * B * N);
  xb = ebm_alloc(be, B * N);
  if (!x || !xb) {
    rc = cli_fail(CMD_NAME, "out of memory for %d images", B);
    goto done;
  }
  if (s.init[0]) {
    uint8_t *rgb = NULL;
    int iw, ih;
    if (img_read_png_rgb8(s.init, &rgb, &iw, &ih, NULL, NULL, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "--init: %s", err);
      goto done;
    }
    if (iw != W || ih != H || C != 3) {
      free(rgb);
      rc = cli_usage(CMD_NAME, "--init: %s is %dx%d; the models take %dx%d", s.init, iw, ih, W, H);
      goto done;
    }
    img_rgb8_to_chw(x, rgb, W, H);
    free(rgb);
    for (int b = 1; b < B; b++) memcpy(x + b * N, x, sizeof(float) * N);
  } else {
    ebm_sampler_init_for_set(&set, x, B, (int)N, s.seed); /* analytic sets record no start */
  }
  if (ebm_upload(be, ebm_ref_of(xb), x, B * N)) {
    rc = cli_fail(CMD_NAME, "upload failed");
    goto done;
  }
  if (frames_dir && mkdir(frames_dir, 0777) && errno != EEXIST) {
    rc = cli_fail(CMD_NAME, "--frames: cannot create %s: %s", frames_dir, strerror(errno));
    goto done;
  }
  sink = (frame_sink){.be = be, .s = &s, .B = B, .C = C, .H = H, .W = W, .steps = s.sc.steps,
                      .frames_dir = frames_dir, .host = x};
  sink.every = every ? (int)every : (s.sc.steps / 50 > 1 ? s.sc.steps / 50 : 1);
  cli_progress_init(&sink.progress, CMD_NAME, quiet);
  if (gif_path && !(sink.gif = gif_writer_open(gif_path, 8, err, sizeof err))) {
    rc = cli_fail(CMD_NAME, "--gif: %s", err);
    goto done;
  }
  {
    double scale = largest_scale(tree, 1.0) * s.sc.energy_scale;
    if (scale > 1e6)
      fprintf(stderr, "vkebm sample: warning: a term's energy is scaled by %.3g: float energies and "
                      "gradients overflow long before 3e38\n", scale);
  }
  ebm_sampler_stats st;

  if (!quiet) {
    char desc[512];
    ebm_sampler_describe(&s.sc, desc, sizeof desc);
    fprintf(stderr, "vkebm sample: %d chains of %dx%dx%d, %s, seed %u, backend %s\n", B, C, H, W,
            desc, s.seed, ebm_backend_name(be));
  }
  if (ebm_sample(comp, ebm_ref_of(xb), &s.sc, on_step, &sink, &st, err, sizeof err) ||
      sink.failed) {
    rc = cli_fail(CMD_NAME, "sampling failed: %s", sink.failed ? sink.why : err);
    goto done;
  }
  if (ebm_download(be, x, ebm_ref_of(xb), B * N)) {
    rc = cli_fail(CMD_NAME, "download failed");
    goto done;
  }
  /* A weight like 3e38 overflows float: the chains then followed an infinite or NaN energy,
   * and a grid of them would pass for samples of the composition. */
  if (!isfinite(st.mean_energy) || fabs(st.mean_energy) > FLT_MAX) {
    rc = cli_fail(CMD_NAME, "the energy overflowed (mean %.3g, beyond float's range: is a weight "
                            "too large?); nothing written", st.mean_energy);
    goto done;
  }
  if (!quiet) {
    const float *te = ebm_composition_term_energies(comp);
    fprintf(stderr, "vkebm sample: mean energy %.6g", st.mean_energy);
    for (int t = 0; te && t < ebm_composition_num_terms(comp); t++) {
      double m = 0;
      for (int b = 0; b < B; b++) m += te[t * B + b];
      fprintf(stderr, "; %s %.6g", ebm_composition_term_text(comp, t), m / B);
    }
    if (s.sc.kind == EBM_SAMPLER_MALA)
      fprintf(stderr, "; acceptance %.3f (%ld proposals), mean step %.3g", st.accept_rate,
              st.proposed, st.mean_tau);
    fprintf(stderr, "\n");
  }

  /* the grid with its provenance */
  int gw, gh;
  grid = make_grid(&s, x, B, W, H, &gw, &gh);
  if (!grid) {
    rc = cli_fail(CMD_NAME, "out of memory for the grid");
    goto done;
  }
  {
    char canon[4096], v_n[32], v_steps[32], v_seed[32], v_step[32], v_noise[32], v_clip[8],
        v_beta[32], v_div[8], v_target[32], v_adapt[32], v_nrow[32], v_pad[32], v_scale[32], v_res[32],
        desc[512];
    expr_print(tree, canon, sizeof canon);
    snprintf(v_n, sizeof v_n, "%d", B);
    snprintf(v_steps, sizeof v_steps, "%d", s.sc.steps);
    snprintf(v_seed, sizeof v_seed, "%u", s.seed);
    io_float_text(v_step, sizeof v_step, s.sc.step_size);
    io_float_text(v_noise, sizeof v_noise, s.sc.noise_std);
    snprintf(v_clip, sizeof v_clip, "%d", s.sc.clip);
    io_float_text(v_beta, sizeof v_beta, s.sc.energy_scale);
    snprintf(v_div, sizeof v_div, "%d", s.sc.divide_by_terms);
    io_float_text(v_target, sizeof v_target, s.sc.target_accept);
    snprintf(v_adapt, sizeof v_adapt, "%d", s.sc.adapt_steps);
    snprintf(v_nrow, sizeof v_nrow, "%ld", s.nrow);
    snprintf(v_pad, sizeof v_pad, "%ld", s.padding);
    snprintf(v_scale, sizeof v_scale, "%ld", s.scale);
    snprintf(v_res, sizeof v_res, "%ld", s.resolution);
    ebm_sampler_describe(&s.sc, desc, sizeof desc);
    img_text text[] = {
        {"vkebm:expr", canon},           {"vkebm:n", v_n},
        {"vkebm:steps", v_steps},        {"vkebm:seed", v_seed},
        {"vkebm:sampler", ebm_sampler_name(s.sc.kind)},
        {"vkebm:step_size", v_step},     {"vkebm:noise", v_noise},
        {"vkebm:clip", v_clip},          {"vkebm:beta", v_beta},
        {"vkebm:divide_steps", v_div},   {"vkebm:target_accept", v_target},
        {"vkebm:adapt_steps", v_adapt},  {"vkebm:nrow", v_nrow},
        {"vkebm:padding", v_pad},        {"vkebm:models", s.analytic ? "analytic" : s.models},
        {"vkebm:resolution", v_res},     {"vkebm:model_hashes", hashes},
        {"vkebm:settings", desc},        {"vkebm:backend", ebm_backend_name(be)},
        {"vkebm:init", s.init},          {"vkebm:scale", v_scale},
    };
    /* the optional ones go last: init when given, scale when not 1 (files stay as they were) */
    int ntext = (int)(sizeof text / sizeof *text) - 2;
    if (s.init[0]) text[ntext++] = (img_text){"vkebm:init", s.init};
    if (s.scale > 1) text[ntext++] = (img_text){"vkebm:scale", v_scale};
    if (img_write_png_rgb8(out, grid, gw, gh, text, ntext, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
  }
  if (sink.gif) {
    gif_writer *g = sink.gif;
    sink.gif = NULL;
    if (gif_writer_finish(g, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
  }
  if (save_each && write_each(save_each, x, B, H, W, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "--save-each: %s", err);
    goto done;
  }
  if (json) print_energies(comp, &s, out, B);
  if (!quiet) fprintf(stderr, "vkebm sample: wrote %s (%dx%d)%s%s\n", out, gw, gh,
                      save_each ? " and the samples one by one into " : "",
                      save_each ? save_each : "");
  rc = EXIT_OK;
done:
  free(grid);
  gif_writer_abort(sink.gif);
  free(x);
  if (be) ebm_free(be, xb);
  ebm_composition_destroy(comp);
  ebm_concept_set_clear(&set);
  expr_free(tree);
  return cli_backend_close(be, rc);
}
