/* cmd_judge.c: `vkebm judge`: train the judge, measure it, and read images with it.
 *
 *   vkebm judge train [--steps N --batch B --seed S -o models/judge.safetensors ...]
 *   vkebm judge eval  [--model FILE -n N --seed S --json]
 *   vkebm judge calibrate [--model FILE -n N --seed S --quantile Q -o FILE]
 *   vkebm judge [--model FILE] [--json] [--grid] IMAGE.png...
 *
 * A thin consumer of include/vkebm/judge.h. Training draws fresh renders of a scene spec each
 * step (indices step*B .. step*B+B-1 of the seed), with Adam and a warm-up + cosine learning
 * rate; the model is saved every --save-every steps and at the end (and on SIGINT, then exit
 * 130); at the end the faithful check is calibrated for it (eval.h) and recorded in the file.
 * Evaluation renders N scenes from a seed that is not the training seed. Reading accepts
 * single RxR PNGs and grids written by `vkebm sample` (split with their vkebm:nrow,
 * vkebm:padding, vkebm:resolution, vkebm:n text chunks) or, with --grid, any torchvision-style
 * grid of RxR cells with --padding px between them.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vkebm/eval.h"
#include "vkebm/image.h"
#include "vkebm/judge.h"
#include "vkebm/scene.h"

#define CMD_NAME "judge"
#define DEFAULT_MODEL "models/judge.safetensors"
#define DEFAULT_EVAL_SEED 1000003u
#define DEFAULT_CALIBRATION_SEED 2000003u
#define DEFAULT_CALIBRATION_N 1000
#define DEFAULT_QUANTILE 0.995

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm judge [--model FILE] [--json] [--grid [--padding P]] IMAGE.png...\n"
          "       vkebm judge train [options]\n"
          "       vkebm judge eval [--model FILE] [-n N] [--seed S] [--json]\n"
          "       vkebm judge calibrate [--model FILE] [-n N] [--seed S] [--quantile Q] [-o FILE]\n\n"
          "The judge reads a rendered scene's object back: shape, color (with the softmax\n"
          "confidence), position x, y, size, and the probability that the image is a render at\n"
          "all (\"scene\"; below 0.5 it is marked \"not a scene\"). Sample grids from `vkebm\n"
          "sample` are split into their cells using the PNG's vkebm:* text chunks; --grid splits\n"
          "any grid of RxR cells.\n\n"
          "train options:\n"
          "  --steps N          Adam steps (default 3000)\n"
          "  --batch B          images per step (default 32)\n"
          "  --lr LR            peak learning rate (default 0.002; 100 warm-up steps, cosine\n"
          "                     decay to 5%%)\n"
          "  --seed S           initialisation and data seed (default 1)\n"
          "  --data SPEC        scene spec rendered for training (default general)\n"
          "  --config NAME      default32 (R=32, W=16, blocks 1d,2d,2d,2) or tiny (tests)\n"
          "  --negatives F      share of each batch replaced by non-scenes (noise, empty floors,\n"
          "                     haze, blurred blobs, blended renders, ...; judge.h) for the scene\n"
          "                     output (default 0.25)\n"
          "  --calibrate N      at the end, calibrate the faithful check on N fresh renders and\n"
          "                     record it in the file (default %d; 0: none, `vkebm eval` then\n"
          "                     refuses the judge until `vkebm judge calibrate`)\n"
          "  --init FILE        start from this judge's weights (fine-tuning; fresh Adam state;\n"
          "                     its configuration replaces --config)\n"
          "  --save-every K     also save every K steps (default 500)\n"
          "  --log-every K      progress line every K steps (default 50)\n"
          "  -o FILE            output (default " DEFAULT_MODEL ")\n"
          "eval options:\n"
          "  -n N               fresh renders (default 2000)\n"
          "  --seed S           render seed (default %u; must differ from the training seed)\n"
          "  --data SPEC        scene spec (default: the judge's training spec)\n"
          "calibrate options (the thresholds of `vkebm eval`'s faithful check, docs/judge.md):\n"
          "  -n N               fresh general renders, and N/2 of two objects (default %d)\n"
          "  --seed S           render seed (default %u)\n"
          "  --quantile Q       the thresholds are this quantile of the renders' residuals and\n"
          "                     ratios (default %g)\n"
          "  -o FILE            write the calibrated judge there (default: --model, in place)\n"
          "common:\n"
          "  --model FILE       judge file (default " DEFAULT_MODEL ")\n"
          "  --backend B        cpu (default), vulkan or auto\n"
          "  --json             machine-readable output\n"
          "  --quiet            no progress or backend lines on stderr\n",
          DEFAULT_CALIBRATION_N, DEFAULT_EVAL_SEED, DEFAULT_CALIBRATION_N, DEFAULT_CALIBRATION_SEED,
          DEFAULT_QUANTILE);
}

enum {
  OPT_STEPS = 1000, OPT_BATCH, OPT_LR, OPT_SEED, OPT_DATA, OPT_CONFIG, OPT_SAVE_EVERY,
  OPT_LOG_EVERY, OPT_MODEL, OPT_BACKEND, OPT_JSON, OPT_QUIET, OPT_GRID, OPT_PADDING, OPT_HELP,
  OPT_INIT, OPT_NEGATIVES, OPT_CALIBRATE, OPT_QUANTILE
};

typedef struct opts {
  long steps, batch, seed, save_every, log_every, n, padding, calibrate;
  int seed_given, n_given, out_given, json, quiet, grid, backend;
  double lr, negatives, quantile;
  const char *data, *config, *out, *model, *init;
} opts;

static int parse(int argc, char **argv, opts *o) {
  static const struct option longopts[] = {
      {"steps", required_argument, 0, OPT_STEPS},   {"batch", required_argument, 0, OPT_BATCH},
      {"lr", required_argument, 0, OPT_LR},         {"seed", required_argument, 0, OPT_SEED},
      {"data", required_argument, 0, OPT_DATA},     {"config", required_argument, 0, OPT_CONFIG},
      {"save-every", required_argument, 0, OPT_SAVE_EVERY},
      {"log-every", required_argument, 0, OPT_LOG_EVERY},
      {"model", required_argument, 0, OPT_MODEL},   {"backend", required_argument, 0, OPT_BACKEND},
      {"json", no_argument, 0, OPT_JSON},           {"quiet", no_argument, 0, OPT_QUIET},
      {"grid", no_argument, 0, OPT_GRID},           {"padding", required_argument, 0, OPT_PADDING},
      {"init", required_argument, 0, OPT_INIT},     {"help", no_argument, 0, OPT_HELP},
      {"negatives", required_argument, 0, OPT_NEGATIVES},
      {"calibrate", required_argument, 0, OPT_CALIBRATE},
      {"quantile", required_argument, 0, OPT_QUANTILE},
      {0, 0, 0, 0}};
  *o = (opts){.steps = 3000, .batch = 32, .seed = 1, .save_every = 500, .log_every = 50,
              .n = 2000, .padding = 2, .lr = 0.002, .negatives = 0.25, .calibrate = DEFAULT_CALIBRATION_N,
              .quantile = DEFAULT_QUANTILE, .config = "default32", .out = DEFAULT_MODEL,
              .model = DEFAULT_MODEL, .backend = EBM_BACKEND_CPU};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":o:n:h", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_STEPS:
      if (cli_opt_int(CMD_NAME, "steps", optarg, 1, 10000000, &o->steps)) return EXIT_USAGE;
      break;
    case OPT_BATCH:
      if (cli_opt_int(CMD_NAME, "batch", optarg, 1, 4096, &o->batch)) return EXIT_USAGE;
      break;
    case OPT_LR:
      if (cli_parse_float(optarg, 1e-7, 1.0, &o->lr))
        return cli_usage(CMD_NAME, "--lr: expected a number in 1e-7..1, got '%s'", optarg);
      break;
    case OPT_SEED:
      if (cli_opt_int(CMD_NAME, "seed", optarg, 0, 4294967295L, &o->seed)) return EXIT_USAGE;
      o->seed_given = 1;
      break;
    case OPT_DATA: o->data = optarg; break;
    case OPT_CONFIG: o->config = optarg; break;
    case OPT_SAVE_EVERY:
      if (cli_parse_int(optarg, 1, 10000000, &o->save_every))
        return cli_usage(CMD_NAME, "--save-every: expected a positive count, got '%s'", optarg);
      break;
    case OPT_LOG_EVERY:
      if (cli_parse_int(optarg, 1, 10000000, &o->log_every))
        return cli_usage(CMD_NAME, "--log-every: expected a positive count, got '%s'", optarg);
      break;
    case 'n':
      if (cli_parse_int(optarg, 1, 10000000, &o->n))
        return cli_usage(CMD_NAME, "-n: expected 1..10000000, got '%s'", optarg);
      o->n_given = 1;
      break;
    case OPT_CALIBRATE:
      if (cli_parse_int(optarg, 0, 1000000, &o->calibrate) || o->calibrate == 1)
        return cli_usage(CMD_NAME, "--calibrate: expected 0 or 2..1000000, got '%s'", optarg);
      break;
    case OPT_QUANTILE:
      if (cli_parse_float(optarg, 0.5, 1.0, &o->quantile))
        return cli_usage(CMD_NAME, "--quantile: expected 0.5..1, got '%s'", optarg);
      break;
    case OPT_PADDING:
      if (cli_opt_int(CMD_NAME, "padding", optarg, 0, 1024, &o->padding)) return EXIT_USAGE;
      break;
    case 'o': o->out = optarg, o->out_given = 1; break;
    case OPT_INIT: o->init = optarg; break;
    case OPT_NEGATIVES:
      if (cli_parse_float(optarg, 0, 0.9, &o->negatives))
        return cli_usage(CMD_NAME, "--negatives: expected a fraction in 0..0.9, got '%s'", optarg);
      break;
    case OPT_MODEL: o->model = optarg; break;
    case OPT_BACKEND:
      if ((o->backend = cli_parse_backend(optarg)) < 0)
        return cli_usage(CMD_NAME, "--backend: expected auto, cpu or vulkan, got '%s'", optarg);
      break;
    case OPT_JSON: o->json = 1; break;
    case OPT_QUIET: o->quiet = 1; break;
    case OPT_GRID: o->grid = 1; break;
    case 'h':
    case OPT_HELP: usage(stdout); exit(EXIT_OK);
    default: return cli_bad_option(CMD_NAME, argv, c, longopts);
    }
  }
  return 0;
}

/* ---- train -------------------------------------------------------------------------------- */

/* Creates the folders above path (mkdir -p of its dirname), as `vkebm train` does. 0 or -1. */
static int make_parent_dirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf) return 0;
  *slash = 0;
  return cli_mkdir_p(buf);
}

static int judge_train(opts *o) {
  char err[512];
  ebm_judge_config cfg;
  if (ebm_judge_config_preset(&cfg, o->config))
    return cli_usage(CMD_NAME, "--config: expected default32 or tiny, got '%s'", o->config);
  scene_spec spec;
  const char *data = o->data ? o->data : "general";
  if (scene_spec_parse(data, &spec, err, sizeof err))
    return cli_usage(CMD_NAME, "--data: %s", err);
  if (make_parent_dirs(o->out))
    return cli_fail(CMD_NAME, "cannot create the folder for %s: %s", o->out, strerror(errno));
  ebm_backend *be;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)o->backend, -1, 0, o->quiet);
  if (rc) return rc;
  ebm_judge *j = NULL;
  int B = (int)o->batch, R;
  float *img = NULL;
  ebm_judge_target *t = NULL;
  if (o->init ? ebm_judge_load(&j, be, o->init, B, err, sizeof err)
              : ebm_judge_create(&j, be, &cfg, B, (uint64_t)o->seed, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  R = ebm_judge_config_of(j)->resolution;
  img = malloc((size_t)B * 3 * R * R * sizeof *img);
  t = malloc((size_t)B * sizeof *t);
  if (!img || !t) {
    rc = cli_fail(CMD_NAME, "out of memory");
    goto done;
  }
  char canon[256];
  scene_spec_format(&spec, canon, sizeof canon);
  ebm_judge_set_provenance(j, (uint64_t)o->seed, canon);
  ebm_judge_set_faithful_thresholds(j, NULL); /* an --init file's calibration is not this one's */
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  double t0 = now_s(), run_loss = 0, run_sacc = 0, run_cacc = 0, run_pos = 0, run_size = 0,
         run_scene = 0;
  int run_n = 0;
  for (long step = 0; step < o->steps && !g_stop; step++) {
    /* warm-up then cosine from lr to 5% of lr */
    double lr = o->lr;
    long warm = o->steps < 1000 ? o->steps / 10 : 100;
    if (step < warm) lr *= (double)(step + 1) / (double)warm;
    else {
      double q = (double)(step - warm) / (double)(o->steps - warm > 0 ? o->steps - warm : 1);
      lr *= 0.05 + 0.95 * 0.5 * (1.0 + cos(M_PI * q));
    }
    ebm_judge_render_batch(&spec, (uint32_t)o->seed, (uint32_t)(step * B), B, R, img, t, 0);
    ebm_judge_make_negatives(img, t, B, R, (uint32_t)o->seed, (uint32_t)step, (float)o->negatives);
    ebm_judge_loss L;
    if (ebm_judge_train_step(j, img, t, B, (float)lr, &L, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "step %ld: %s", step + 1, err);
      goto done;
    }
    run_loss += L.total;
    run_sacc += L.shape_acc;
    run_cacc += L.colour_acc;
    run_pos += L.position_mse;
    run_size += L.size_mse;
    run_scene += L.scene_acc;
    run_n++;
    long done_steps = step + 1;
    if (done_steps % o->log_every == 0 || done_steps == o->steps) {
      if (!o->quiet)
        fprintf(stderr,
                "step %ld/%ld  loss %.4f  shape acc %.3f  color acc %.3f  pos rmse %.4f  "
                "size rmse %.4f  scene acc %.3f  lr %.2g  %.1f s\n",
                done_steps, o->steps, run_loss / run_n, run_sacc / run_n, run_cacc / run_n,
                sqrt(run_pos / run_n), JUDGE_SIZE_HALF_RANGE * sqrt(run_size / run_n),
                run_scene / run_n, lr, now_s() - t0);
      run_loss = run_sacc = run_cacc = run_pos = run_size = run_scene = 0;
      run_n = 0;
    }
    if (done_steps % o->save_every == 0 && done_steps != o->steps &&
        ebm_judge_save(j, o->out, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
  }
  if (!g_stop && o->calibrate > 0) {
    ebm_faithful_thresholds thr;
    if (!o->quiet)
      fprintf(stderr, "vkebm judge: calibrating the faithful check on %ld renders\n", o->calibrate);
    if (ebm_eval_calibrate(j, DEFAULT_CALIBRATION_SEED, (int)o->calibrate, (float)o->quantile,
                           &thr, NULL, NULL, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "calibration: %s", err);
      goto done;
    }
    ebm_judge_set_faithful_thresholds(j, &thr);
  }
  if (ebm_judge_save(j, o->out, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  if (!o->quiet)
    fprintf(stderr, "vkebm judge: %lld steps in %.1f s, saved %s\n",
            (long long)ebm_judge_step(j), now_s() - t0, o->out);
  if (g_stop) rc = EXIT_INTERRUPTED;
done:
  free(img);
  free(t);
  ebm_judge_destroy(j);
  return cli_backend_close(be, rc);
}

/* ---- calibrate ---------------------------------------------------------------------------- */

static void print_progress(void *ctx, const char *phase, int done, int total) {
  (void)ctx;
  fprintf(stderr, "vkebm judge: %s %d/%d\n", phase, done, total);
}

static int judge_calibrate(opts *o) {
  char err[512];
  ebm_backend *be;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)o->backend, -1, 0, o->quiet);
  if (rc) return rc;
  ebm_judge *j = NULL;
  const char *out = o->out_given ? o->out : o->model;
  if (ebm_judge_load(&j, be, o->model, 64, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  uint32_t seed = o->seed_given ? (uint32_t)o->seed : DEFAULT_CALIBRATION_SEED;
  int n = o->n_given ? (int)o->n : DEFAULT_CALIBRATION_N;
  if (n < 2) {
    rc = cli_usage(CMD_NAME, "-n: calibration needs at least 2 renders");
    goto done;
  }
  ebm_faithful_thresholds thr;
  double t0 = now_s();
  if (ebm_eval_calibrate(j, seed, n, (float)o->quantile, &thr, o->quiet ? NULL : print_progress,
                         NULL, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  ebm_judge_set_faithful_thresholds(j, &thr);
  if (ebm_judge_save(j, out, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  if (o->json)
    printf("{\"model\": \"%s\", \"residual\": [%.6f, %.6f], \"ratio\": [%.6f, %.6f], "
           "\"how\": \"%s\", \"seconds\": %.1f}\n", out, thr.residual[0], thr.residual[1],
           thr.ratio[0], thr.ratio[1], thr.how, now_s() - t0);
  else
    printf("faithful check of %s: residual <= %.4f (one object) / %.4f (two or more), ratio <= "
           "%.4f / %.4f\n  %s (%.1f s)\n", out, thr.residual[0], thr.residual[1], thr.ratio[0],
           thr.ratio[1], thr.how, now_s() - t0);
done:
  ebm_judge_destroy(j);
  return cli_backend_close(be, rc);
}

/* ---- eval --------------------------------------------------------------------------------- */

static int judge_eval(opts *o) {
  char err[512];
  ebm_backend *be;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)o->backend, -1, 0, o->quiet);
  if (rc) return rc;
  ebm_judge *j = NULL;
  if (ebm_judge_load(&j, be, o->model, 64, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  scene_spec spec;
  const char *data = o->data ? o->data : ebm_judge_data_spec(j);
  if (scene_spec_parse(data, &spec, err, sizeof err)) {
    rc = cli_usage(CMD_NAME, "--data: %s", err);
    goto done;
  }
  uint32_t seed = o->seed_given ? (uint32_t)o->seed : DEFAULT_EVAL_SEED;
  if (seed == (uint32_t)ebm_judge_seed(j)) {
    rc = cli_usage(CMD_NAME, "--seed %u is the judge's training seed: pick another", seed);
    goto done;
  }
  ebm_judge_eval ev;
  double t0 = now_s();
  if (ebm_judge_evaluate(j, &spec, seed, (int)o->n, 0, &ev, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  double secs = now_s() - t0;
  if (o->json) {
    printf("{\"model\": \"%s\", \"data\": \"%s\", \"seed\": %u, \"n\": %d, \"shape_acc\": %.5f, "
           "\"colour_acc\": %.5f, \"pos_mae\": %.5f, \"pos_rmse\": %.5f, \"pos_max\": %.5f, "
           "\"pos_within_0.05\": %.5f, \"size_mae\": %.5f, \"size_rmse\": %.5f, "
           "\"size_within_0.03\": %.5f, \"scene_renders\": %.5f, \"scene_negatives\": %.5f, "
           "\"seconds\": %.2f, \"scene_negative_kinds\": {",
           o->model, data, seed, ev.n, ev.shape_acc, ev.colour_acc, ev.pos_mae, ev.pos_rmse,
           ev.pos_max, ev.pos_within_005, ev.size_mae, ev.size_rmse, ev.size_within_003,
           ev.scene_renders, ev.scene_negatives, secs);
    for (int k = 0; k < JUDGE_NEG_KINDS; k++)
      printf("%s\"%s\": %.5f", k ? ", " : "", ebm_judge_negative_name(k),
             ev.scene_negative_kind[k]);
    printf("}}\n");
  } else {
    printf("judge %s on %d fresh renders of '%s' (seed %u, %.1f s)\n", o->model, ev.n, data,
           seed, secs);
    printf("  shape accuracy    %6.2f %%\n", 100 * ev.shape_acc);
    printf("  color accuracy    %6.2f %%\n", 100 * ev.colour_acc);
    printf("  position MAE      %.4f  RMSE %.4f  max %.4f  (per coordinate; %.1f %% within 0.05)\n",
           ev.pos_mae, ev.pos_rmse, ev.pos_max, 100 * ev.pos_within_005);
    printf("  size MAE          %.4f  RMSE %.4f  (%.1f %% within 0.03)\n", ev.size_mae,
           ev.size_rmse, 100 * ev.size_within_003);
    printf("  read as a scene   %6.2f %% of the renders, %.2f %% of the non-scenes (each render\n"
           "                    turned into each kind in turn):\n",
           100 * ev.scene_renders, 100 * ev.scene_negatives);
    for (int k = 0; k < JUDGE_NEG_KINDS; k++)
      printf("    %-22s %6.2f %%\n", ebm_judge_negative_name(k), 100 * ev.scene_negative_kind[k]);
  }
done:
  ebm_judge_destroy(j);
  return cli_backend_close(be, rc);
}

/* ---- read images -------------------------------------------------------------------------- */

static const char *text_get(const img_text *t, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (!strcmp(t[i].key, key)) return t[i].value;
  return NULL;
}

static int text_int(const img_text *t, int n, const char *key, long *out) {
  const char *v = text_get(t, n, key);
  return v && cli_parse_int(v, 0, 1 << 20, out) == 0 ? 0 : -1;
}

/* Splits one PNG into RxR cells (CHW floats, malloc'd into *cells). Returns the cell count or
 * -1 with err. */
static int split_png(const char *path, int R, int force_grid, long padding, float **cells,
                     char *err, size_t errlen) {
  uint8_t *rgb;
  int W, H, ntext;
  img_text *text;
  char why[384];
  if (img_read_png_rgb8(path, &rgb, &W, &H, &text, &ntext, why, sizeof why)) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  long nrow = 0, pad = padding, count = 0;
  /* vkebm:resolution records the analytic size setting, not the models' image size, so the
   * cell size comes from the grid's geometry (torchvision layout, as img_make_grid). */
  int from_chunks = text_int(text, ntext, "vkebm:nrow", &nrow) == 0 &&
                    text_int(text, ntext, "vkebm:padding", &pad) == 0 &&
                    text_int(text, ntext, "vkebm:n", &count) == 0 && nrow > 0 && count > 0;
  long scale = 1;
  if (text_get(text, ntext, "vkebm:scale") &&
      (text_int(text, ntext, "vkebm:scale", &scale) || scale < 1 || scale > 16 ||
       W % scale || H % scale)) {
    snprintf(err, errlen, "%s: its vkebm:scale does not divide %dx%d", path, W, H);
    img_text_free(text, ntext);
    free(rgb);
    return -1;
  }
  img_text_free(text, ntext);
  if (scale > 1) { /* `vkebm sample --scale K`: every K-th pixel is the original grid */
    int w = W / (int)scale, h = H / (int)scale;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        memmove(rgb + ((size_t)y * w + x) * 3, rgb + ((size_t)y * scale * W + x * scale) * 3, 3);
    W = w, H = h;
  }
  int n = 0;
  if (W == R && H == R) {
    n = 1;
    pad = 0;
    nrow = 1;
  } else if (from_chunks) {
    long xmaps = count < nrow ? count : nrow, ymaps = (count + xmaps - 1) / xmaps;
    if (count == 1) pad = 0;
    long cw = (W - pad) / xmaps - pad, chh = (H - pad) / ymaps - pad;
    if (cw < 1 || chh < 1 || xmaps * (cw + pad) + pad != W || ymaps * (chh + pad) + pad != H ||
        cw != chh) {
      snprintf(err, errlen, "%s: %dx%d does not match its vkebm:n/nrow/padding chunks", path, W,
               H);
      free(rgb);
      return -1;
    }
    if (cw != R) {
      snprintf(err, errlen, "%s: cells are %ldx%ld, the judge reads %dx%d", path, cw, cw, R, R);
      free(rgb);
      return -1;
    }
    n = (int)count;
    nrow = xmaps;
  } else if (force_grid) {
    long cols = (W - pad) / (R + pad), rows = (H - pad) / (R + pad);
    if (cols < 1 || rows < 1 || cols * (R + pad) + pad != W || rows * (R + pad) + pad != H) {
      snprintf(err, errlen, "%s: %dx%d is not a grid of %dx%d cells with padding %ld", path, W,
               H, R, R, pad);
      free(rgb);
      return -1;
    }
    n = (int)(cols * rows);
    nrow = cols;
  } else {
    snprintf(err, errlen,
             "%s: %dx%d, the judge reads %dx%d images (a grid needs vkebm:* text chunks from "
             "`vkebm sample`, or --grid)", path, W, H, R, R);
    free(rgb);
    return -1;
  }
  float *out = malloc((size_t)n * 3 * R * R * sizeof *out);
  if (!out) {
    snprintf(err, errlen, "out of memory");
    free(rgb);
    return -1;
  }
  size_t plane = (size_t)R * R;
  for (int k = 0; k < n; k++) {
    long gx = (k % nrow) * (R + pad) + pad, gy = (k / nrow) * (R + pad) + pad;
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++)
        for (int ch = 0; ch < 3; ch++)
          out[(size_t)k * 3 * plane + ch * plane + (size_t)y * R + x] =
              rgb[((size_t)(gy + y) * W + (size_t)(gx + x)) * 3 + ch] / 255.0f;
  }
  free(rgb);
  *cells = out;
  return n;
}

static int judge_images(opts *o, int nfiles, char **files) {
  char err[512];
  if (nfiles < 1) return cli_usage(CMD_NAME, "no images given (see --help)");
  ebm_backend *be;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)o->backend, -1, 0, o->quiet);
  if (rc) return rc;
  ebm_judge *j = NULL;
  if (ebm_judge_load(&j, be, o->model, 64, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  int R = ebm_judge_config_of(j)->resolution;
  if (o->json) printf("[");
  int first_json = 1;
  for (int f = 0; f < nfiles && rc == 0; f++) {
    float *cells = NULL;
    int n = split_png(files[f], R, o->grid, o->padding, &cells, err, sizeof err);
    if (n < 0) {
      rc = cli_fail(CMD_NAME, "%s", err);
      break;
    }
    ebm_judge_reading *r = malloc((size_t)n * sizeof *r);
    if (!r || ebm_judge_read(j, cells, n, r, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", r ? err : "out of memory");
      free(r);
      free(cells);
      break;
    }
    for (int k = 0; k < n; k++) {
      const char *sh = scene_shape_name(r[k].shape), *co = scene_colour_name(r[k].colour);
      float ps = r[k].shape_prob[r[k].shape], pc = r[k].colour_prob[r[k].colour];
      if (o->json) {
        printf("%s\n  {\"file\": \"%s\", \"index\": %d, \"shape\": \"%s\", \"shape_p\": %.4f, "
               "\"colour\": \"%s\", \"colour_p\": %.4f, \"x\": %.4f, \"y\": %.4f, "
               "\"size\": %.4f, \"scene_p\": %.4f}", first_json ? "" : ",", files[f], k, sh, ps,
               co, pc, r[k].x, r[k].y, r[k].size, r[k].scene_prob);
        first_json = 0;
      } else {
        char name[4096];
        if (n > 1) snprintf(name, sizeof name, "%s#%d", files[f], k);
        else snprintf(name, sizeof name, "%s", files[f]);
        printf("%s: shape %-8s (%.2f)  colour %-6s (%.2f)  x %+.3f  y %+.3f  size %.3f  "
               "scene %.2f%s\n", name, sh, ps, co, pc, r[k].x, r[k].y, r[k].size,
               r[k].scene_prob, r[k].scene_prob < 0.5f ? " (not a scene)" : "");
      }
    }
    free(r);
    free(cells);
  }
  if (o->json && rc == 0) printf("\n]\n");
done:
  ebm_judge_destroy(j);
  return cli_backend_close(be, rc);
}

int cmd_judge(int argc, char **argv) {
  const char *sub = argc > 1 ? argv[1] : NULL;
  int mode = 0; /* 0 read images, 1 train, 2 eval, 3 calibrate */
  if (sub && !strcmp(sub, "train")) mode = 1;
  else if (sub && !strcmp(sub, "eval")) mode = 2;
  else if (sub && !strcmp(sub, "calibrate")) mode = 3;
  if (mode) {
    argc--;
    argv++;
  }
  opts o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  if (mode == 1) {
    if (optind < argc) return cli_usage(CMD_NAME, "train takes no files ('%s')", argv[optind]);
    return judge_train(&o);
  }
  if (mode == 3) {
    if (optind < argc) return cli_usage(CMD_NAME, "calibrate takes no files ('%s')", argv[optind]);
    return judge_calibrate(&o);
  }
  if (mode == 2) {
    if (optind < argc) return cli_usage(CMD_NAME, "eval takes no files ('%s')", argv[optind]);
    return judge_eval(&o);
  }
  return judge_images(&o, argc - optind, argv + optind);
}
