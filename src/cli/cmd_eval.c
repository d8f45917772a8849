/* cmd_eval.c: `vkebm eval`: how often do samples of a composition satisfy it, verified.
 *
 *   vkebm eval --expr EXPR [-n 256] [--models DIR] [--judge FILE] [--save DIR] [--json]
 *   vkebm eval --suite [--out FILE.md] [--save DIR] [-n 256] ...
 *
 * A thin consumer of include/vkebm/eval.h (which documents the faithful check, how each term is
 * decided and the tolerances). --suite runs a fixed list: every value of each concept family
 * (a sweep row reports the mean and the worst value), then compositions, each with its target
 * strict accuracy, and writes a markdown table (stdout, or --out FILE.md atomically) plus a
 * per-value table. A row whose concepts have no model in the folder is reported as skipped.
 * --save DIR writes, per evaluated expression, the samples and their re-renders as grids with a
 * mark per tile and a CSV row per sample.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vkebm/compose.h"
#include "vkebm/eval.h"
#include "vkebm/expr.h"
#include "vkebm/fileio.h"
#include "vkebm/image.h"
#include "vkebm/scene.h"

#define CMD_NAME "eval"
#define GRID_NROW 16
#define GRID_PAD 4 /* a 2-px mark ring around each tile, 2 px of black between rings */

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm eval [--expr] EXPR [options]\n"
          "       vkebm eval --suite [--out FILE.md] [options]\n\n"
          "Samples the expression with `vkebm sample`'s sampler and defaults, reads every sample\n"
          "with the judge, and verifies each reading by re-rendering the scene it describes: a\n"
          "sample is faithful when the judge reads it as a render and its best re-render explains\n"
          "it (residual within the judge's calibrated thresholds). Only faithful samples satisfy\n"
          "terms. Reports, per conjunct, the share of samples that satisfy it, the strict accuracy\n"
          "(all at once), the faithful share, what the judge's readings alone would score, and a\n"
          "Frechet distance of the judge's features against fresh renders of the expression (with\n"
          "the same distance between two sets of fresh renders, its floor). shape/color: the\n"
          "judge's argmax; size: within --size-tol; pos: both coordinates within --pos-tol. Two\n"
          "positions (two objects): each place is read on a masked copy and the re-render must\n"
          "hold an object at each.\n\n"
          "options:\n"
          "  --expr EXPR        the composition\n"
          "  --suite            the fixed suite: every color, shape, size and place (mean and\n"
          "                     worst value per family), then 2-, 3-, 4-term conjunctions,\n"
          "                     negation, disjunction and two objects, as a markdown table\n"
          "  --out FILE.md      --suite: write the table there (default: stdout)\n"
          "  --save DIR         write what was scored: DIR/samples.png and DIR/rerenders.png (a\n"
          "                     ring per tile: green strict, yellow faithful but wrong, red not\n"
          "                     faithful) and DIR/samples.csv; --suite: one folder per expression\n"
          "  -n N               samples per expression (default 256; a sweep row: per value)\n"
          "  --batch B          chains sampled at once (default 64)\n"
          "  --steps K          sampler steps (default: what the models record, else 200, as\n"
          "                     vkebm sample)\n"
          "  --step-size V      sampler step eta (default: the step the models were trained\n"
          "                     with, as vkebm sample)\n"
          "  --noise V          sampler noise sigma (default: the models' training noise)\n"
          "  --seed S           sampling seed (default 1; batch k uses S + k)\n"
          "  --models DIR       concept models (default: $VKEBM_MODELS, ./models, or the shipped\n"
          "                     models of the source tree; other files are skipped)\n"
          "  --analytic         use the analytic concepts (the judge reads rendered scenes, so\n"
          "                     expect low scores: they are reported, not faked)\n"
          "  --judge FILE       the judge (default: judge.safetensors of that default folder;\n"
          "                     it must carry a calibration, `vkebm judge calibrate`)\n"
          "  --size-tol V       default 0.1\n"
          "  --pos-tol V        default 0.25\n"
          "  --no-frechet       skip the Frechet distances\n"
          "  --or-mixture       sample each OR as a mixture (every chain draws a side) instead\n"
          "                     of the paper's soft -T logsumexp\n"
          "  --score EXPR       score the samples of --expr against EXPR instead (and render\n"
          "                     the Frechet references for it): a joint model's\n"
          "                     joint=(x,y,size,shape..,colour..) samples against the\n"
          "                     composition its label stands for\n"
          "  --json             one JSON object (--expr) or array (--suite) on stdout\n"
          "  --backend B        cpu (default), vulkan or auto\n"
          "  --quiet            no progress on stderr\n");
}

/* ---- the suite ---------------------------------------------------------------------------- */

static const char *const colour_values[] = {"red",    "green", "blue",   "yellow", "purple",
                                            "cyan",   "orange", "white", NULL};
static const char *const shape_values[] = {"cube", "sphere", "cylinder", "cone", NULL};
static const char *const size_values[] = {"0.3", "0.4", "0.5", "0.6", "0.7", NULL};
static const char *const pos_values[] = {"(-0.6,-0.6)", "(0,-0.6)", "(0.6,-0.6)",
                                         "(-0.6,0)",    "(0,0)",    "(0.6,0)",
                                         "(-0.6,0.6)",  "(0,0.6)",  "(0.6,0.6)", NULL};

typedef struct suite_row {
  const char *kind, *expr;           /* a sweep: expr is "concept=" and values follow */
  const char *const *values;         /* NULL: one expression */
  double target, worst_target;       /* strict (a sweep: mean, and its worst value) */
  int or_sides;                      /* 1: each side's share must be within 25..75 % */
} suite_row;

static const suite_row suite[] = {
    {"colour, every value", "color=", colour_values, 0.90, 0.75, 0},
    {"shape, every value", "shape=", shape_values, 0.90, 0.75, 0},
    {"size, every value", "size=", size_values, 0.90, 0.75, 0},
    {"position, 3x3 places", "pos=", pos_values, 0.90, 0.75, 0},
    {"shape AND colour", "shape=sphere AND color=blue", NULL, 0.80, 0, 0},
    {"shape AND colour AND position", "shape=cube AND color=red AND pos=(-0.5,0.5)", NULL, 0.60,
     0, 0},
    {"shape AND colour AND size AND position",
     "shape=cylinder AND color=green AND size=0.6 AND pos=(0.5,-0.5)", NULL, 0.50, 0, 0},
    {"negation", "shape=sphere AND NOT color=red", NULL, 0.85, 0, 0},
    {"disjunction", "color=red OR color=blue", NULL, 0.90, 0, 1},
    {"two objects", "pos=(-0.5,0) AND pos=(0.5,0)", NULL, 0.70, 0, 0},
};
#define SUITE_ROWS ((int)(sizeof suite / sizeof *suite))

static int row_count(const suite_row *r) {
  int n = 0;
  if (!r->values) return 1;
  while (r->values[n]) n++;
  return n;
}

static void row_expr(const suite_row *r, int v, char *buf, size_t len) {
  if (r->values) snprintf(buf, len, "%s%s", r->expr, r->values[v]);
  else snprintf(buf, len, "%s", r->expr);
}

/* First concept of tree not in set, or NULL. */
static const char *missing_concept(const expr_node *n, const ebm_concept_set *set) {
  if (n->kind == EXPR_TERM) return ebm_concept_set_find(set, n->concept) ? NULL : n->concept;
  for (int i = 0; i < n->num_children; i++) {
    const char *m = missing_concept(n->children[i], set);
    if (m) return m;
  }
  return NULL;
}

/* ---- output ------------------------------------------------------------------------------- */

static void json_num(FILE *f, double v) {
  if (isfinite(v)) fprintf(f, "%.5f", v);
  else fprintf(f, "null");
}

static void print_json(FILE *f, const ebm_eval_result *r) {
  fprintf(f, "{\"expr\": ");
  cli_json_string(f, r->expr);
  if (strcmp(r->sampled, r->expr)) {
    fprintf(f, ", \"sampled\": ");
    cli_json_string(f, r->sampled);
  }
  fprintf(f, ", \"n\": %d, \"strict\": %.5f, \"faithful\": %.5f, \"scene\": %.5f, "
             "\"read_strict\": %.5f, \"residual_median\": %.5f, \"frechet\": ",
          r->n, r->strict, r->faithful, r->scene, r->read_strict, r->residual_median);
  json_num(f, r->frechet);
  fprintf(f, ", \"frechet_floor\": ");
  json_num(f, r->frechet_floor);
  fprintf(f, ", \"masked_positions\": %d, \"objects\": %d, \"seconds\": %.2f, \"terms\": [",
          r->masked_positions, r->objects, r->seconds);
  for (int i = 0; i < r->nrows; i++) {
    fprintf(f, "%s{\"term\": ", i ? ", " : "");
    cli_json_string(f, r->rows[i].text);
    fprintf(f, ", \"satisfied\": %.5f, \"unverified\": %.5f", r->rows[i].satisfied,
            r->rows[i].read_satisfied);
    if (r->rows[i].nsides) {
      fprintf(f, ", \"sides\": [");
      for (int k = 0; k < r->rows[i].nsides; k++) {
        fprintf(f, "%s{\"term\": ", k ? ", " : "");
        cli_json_string(f, r->rows[i].side_text[k]);
        fprintf(f, ", \"share\": %.5f}", r->rows[i].side_share[k]);
      }
      fprintf(f, "]");
    }
    fprintf(f, "}");
  }
  fprintf(f, "]}");
}

static void print_table(const ebm_eval_result *r) {
  printf("%s  (%d samples, %.1f s%s)\n", r->expr, r->n, r->seconds,
         r->masked_positions ? "; positions judged on masked copies" : "");
  if (strcmp(r->sampled, r->expr)) printf("  sampled: %s\n", r->sampled);
  printf("  %-56s %9s %11s\n", "term (faithful samples only)", "satisfied", "unverified");
  for (int i = 0; i < r->nrows; i++) {
    printf("  %-56s %8.1f%% %10.1f%%\n", r->rows[i].text, 100 * r->rows[i].satisfied,
           100 * r->rows[i].read_satisfied);
    for (int k = 0; k < r->rows[i].nsides; k++)
      printf("    side %-51s %8.1f%%\n", r->rows[i].side_text[k], 100 * r->rows[i].side_share[k]);
  }
  printf("  %-56s %8.1f%%\n", "strict (faithful, all at once)", 100 * r->strict);
  printf("  %-56s %8.1f%%\n", "faithful (re-render explains the sample)", 100 * r->faithful);
  printf("  %-56s %8.1f%%\n", "judge's readings alone (unverified)", 100 * r->read_strict);
  printf("  %-56s %9.4f\n", "median residual", r->residual_median);
  if (isfinite(r->frechet))
    printf("  %-56s %9.2f (fresh renders: %.2f)\n", "Frechet distance to fresh renders",
           r->frechet, r->frechet_floor);
}

/* The tile marks: green strict, yellow faithful but wrong, red not faithful. */
static void mark_grid(uint8_t *rgb, int gw, int n, int R, const ebm_eval_sample *v) {
  for (int i = 0; i < n; i++) {
    int col = i % GRID_NROW, row = i / GRID_NROW;
    int x0 = GRID_PAD + col * (R + GRID_PAD), y0 = GRID_PAD + row * (R + GRID_PAD);
    uint8_t c[3] = {220, 40, 40};
    if (v[i].strict) c[0] = 40, c[1] = 200, c[2] = 60;
    else if (v[i].faithful) c[0] = 230, c[1] = 200, c[2] = 30;
    for (int y = y0 - 2; y < y0 + R + 2; y++)
      for (int x = x0 - 2; x < x0 + R + 2; x++) {
        if (x >= x0 && x < x0 + R && y >= y0 && y < y0 + R) continue;
        memcpy(rgb + ((size_t)y * gw + x) * 3, c, 3);
      }
  }
}

static int write_grid(const char *path, const float *images, int n, int R,
                      const ebm_eval_sample *v, const char *expr, char *err, size_t errlen) {
  int gw, gh;
  uint8_t *rgb = img_make_grid(images, n, R, R, GRID_NROW, GRID_PAD, 0.0f, &gw, &gh);
  if (!rgb) {
    snprintf(err, errlen, "out of memory for the grid");
    return -1;
  }
  mark_grid(rgb, gw, n, R, v);
  img_text text[] = {{"vkebm:expr", expr}};
  int rc = img_write_png_rgb8(path, rgb, gw, gh, text, 1, err, errlen);
  free(rgb);
  return rc;
}

static void object_text(char *buf, size_t len, const ebm_faithful_object *o) {
  snprintf(buf, len, "%s %s (%.3f %.3f) %.3f", scene_shape_name(o->shape) ? scene_shape_name(o->shape) : "?",
           scene_colour_name(o->colour) ? scene_colour_name(o->colour) : "?", o->x, o->y, o->size);
}

/* DIR/samples.png, DIR/rerenders.png, DIR/samples.csv. */
static int save_detail(const char *dir, const ebm_eval_result *r, const ebm_eval_detail *d, int R,
                       char *err, size_t errlen) {
  if (cli_mkdir_p(dir)) {
    snprintf(err, errlen, "cannot create %.200s: %s", dir, strerror(errno));
    return -1;
  }
  char path[4200];
  snprintf(path, sizeof path, "%.4000s/samples.png", dir);
  if (write_grid(path, d->images, r->n, R, d->samples, r->expr, err, errlen)) return -1;
  snprintf(path, sizeof path, "%.4000s/rerenders.png", dir);
  if (write_grid(path, d->rerenders, r->n, R, d->samples, r->expr, err, errlen)) return -1;
  char *csv = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&csv, &len);
  if (!f) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  fprintf(f, "index,faithful,strict,scene_prob,residual,ratio,judged_shape,judged_color,judged_x,"
             "judged_y,judged_size,rerender");
  for (int k = 0; k < r->nrows; k++) fprintf(f, ",\"%s\"", r->rows[k].text);
  fputc('\n', f);
  for (int i = 0; i < r->n; i++) {
    const ebm_eval_sample *v = &d->samples[i];
    const ebm_judge_reading *w = &v->whole;
    fprintf(f, "%d,%d,%d,%.4f,%.5f,%.4f,%s,%s,%.4f,%.4f,%.4f,", i, v->faithful, v->strict,
            v->scene_prob, v->fit.residual, v->fit.ratio, scene_shape_name(w->shape),
            scene_colour_name(w->colour), w->x, w->y, w->size);
    for (int k = 0; k < v->fit.nobj; k++) {
      char o[128];
      object_text(o, sizeof o, &v->fit.obj[k]);
      fprintf(f, "%s%s", k ? " | " : "", o);
    }
    for (int k = 0; k < r->nrows; k++) fprintf(f, ",%d", k < 32 ? (int)((v->rows >> k) & 1) : 0);
    fputc('\n', f);
  }
  fclose(f);
  snprintf(path, sizeof path, "%.4000s/samples.csv", dir);
  int rc = io_write_atomic(path, csv, len, err, errlen);
  free(csv);
  return rc;
}

/* ---- running ------------------------------------------------------------------------------ */

typedef struct runner {
  ebm_backend *be;
  ebm_concept_set *set;
  ebm_judge *judge;
  ebm_eval_settings st;
  const char *save;
  int R;
  cli_progress prog;
  char label[256];
  ebm_eval_detail detail;
} runner;

static void on_progress(void *ctx, const char *phase, int done, int total) {
  runner *r = ctx;
  char label[400];
  snprintf(label, sizeof label, "%s: %s", r->label, phase);
  cli_progress_update(&r->prog, label, done, total);
}

/* Evaluates one expression, parsed once by the caller (saved into save/sub when --save). */
static int run_one(runner *run, const char *expr, const expr_node *tree, const char *sub,
                   ebm_eval_result *res, char *err, size_t errlen) {
  snprintf(run->label, sizeof run->label, "%s", expr);
  cli_progress_init(&run->prog, CMD_NAME, run->prog.quiet); /* elapsed and ETA per expression */
  expr_error bind = {.pos = -1};
  int rc = ebm_eval_expr(run->be, run->set, run->judge, tree, &run->st, res,
                         run->save ? &run->detail : NULL, &bind, err, errlen);
  if (rc && bind.pos >= 0) expr_error_format(expr, &bind, err, errlen); /* a caret under it */
  cli_progress_end(&run->prog);
  if (rc || !run->save) return rc;
  char dir[4200];
  if (sub) snprintf(dir, sizeof dir, "%.3800s/%.300s", run->save, sub);
  else snprintf(dir, sizeof dir, "%.4000s", run->save);
  return save_detail(dir, res, &run->detail, run->R, err, errlen);
}

/* A folder name for an expression: its characters, others as '_'. */
static void slug(char *out, size_t len, int index, const char *expr) {
  int at = snprintf(out, len, "%02d-", index);
  for (const char *p = expr; *p && at + 1 < (int)len; p++) {
    char c = *p;
    out[at++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ? c : '_';
  }
  out[at] = 0;
}

static void fd_text(char *buf, size_t len, const ebm_eval_result *r) {
  if (isfinite(r->frechet)) snprintf(buf, len, "%.1f (%.1f)", r->frechet, r->frechet_floor);
  else snprintf(buf, len, "-");
}

int cmd_eval(int argc, char **argv) {
  enum {
    O_EXPR = 256, O_SUITE, O_OUT, O_BATCH, O_STEPS, O_SEED, O_MODELS, O_ANALYTIC, O_JUDGE,
    O_SIZE_TOL, O_POS_TOL, O_JSON, O_BACKEND, O_QUIET, O_STEP, O_NOISE, O_SAVE, O_NO_FRECHET,
    O_OR_MIXTURE, O_SCORE
  };
  static const struct option opts[] = {
      {"expr", required_argument, 0, O_EXPR},     {"suite", no_argument, 0, O_SUITE},
      {"out", required_argument, 0, O_OUT},       {"batch", required_argument, 0, O_BATCH},
      {"steps", required_argument, 0, O_STEPS},   {"seed", required_argument, 0, O_SEED},
      {"models", required_argument, 0, O_MODELS}, {"analytic", no_argument, 0, O_ANALYTIC},
      {"judge", required_argument, 0, O_JUDGE},   {"size-tol", required_argument, 0, O_SIZE_TOL},
      {"pos-tol", required_argument, 0, O_POS_TOL}, {"json", no_argument, 0, O_JSON},
      {"backend", required_argument, 0, O_BACKEND}, {"quiet", no_argument, 0, O_QUIET},
      {"step-size", required_argument, 0, O_STEP}, {"noise", required_argument, 0, O_NOISE},
      {"save", required_argument, 0, O_SAVE},     {"no-frechet", no_argument, 0, O_NO_FRECHET},
      {"or-mixture", no_argument, 0, O_OR_MIXTURE}, {"score", required_argument, 0, O_SCORE},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  runner run;
  memset(&run, 0, sizeof run);
  ebm_eval_settings *st = &run.st;
  ebm_eval_settings_default(st);
  float size_tol = EBM_EVAL_DEFAULT_SIZE_TOL, pos_tol = EBM_EVAL_DEFAULT_POS_TOL;
  char models_dir[4096], judge_default[4200];
  const char *expr = NULL, *out = NULL, *judge_path = NULL;
  const char *models = ebm_models_dir_default(models_dir, sizeof models_dir);
  snprintf(judge_default, sizeof judge_default, "%s/judge.safetensors", models_dir);
  int run_suite = 0, json = 0, quiet = 0, backend = EBM_BACKEND_CPU;
  long l;
  double d;
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'h': usage(stdout); return EXIT_OK;
    case O_EXPR: expr = optarg; break;
    case O_SUITE: run_suite = 1; break;
    case O_OUT: out = optarg; break;
    case O_SAVE: run.save = optarg; break;
    case O_NO_FRECHET: st->frechet = 0; break;
    case O_OR_MIXTURE: st->or_mixture = 1; break;
    case O_SCORE: st->score_expr = optarg; break;
    case 'n':
      if (cli_parse_int(optarg, 1, 1000000, &l))
        return cli_usage(CMD_NAME, "-n: expected 1..1000000, got '%s'", optarg);
      st->n = (int)l;
      break;
    case O_BATCH:
      if (cli_opt_int(CMD_NAME, "batch", optarg, 1, 4096, &l)) return EXIT_USAGE;
      st->batch = (int)l;
      break;
    case O_STEPS:
      if (cli_opt_int(CMD_NAME, "steps", optarg, 0, 1000000, &l)) return EXIT_USAGE;
      st->sc.steps = (int)l;
      st->sc.adapt_steps = (int)l / 2;
      st->steps_given = 1;
      break;
    case O_STEP:
      if (cli_parse_float(optarg, 1e-30, 1e30, &d))
        return cli_usage(CMD_NAME, "--step-size: expected a positive number, got '%s'", optarg);
      st->sc.step_size = (float)d;
      st->step_given = 1;
      break;
    case O_NOISE:
      if (cli_parse_float(optarg, 0, 1e30, &d))
        return cli_usage(CMD_NAME, "--noise: expected a number >= 0, got '%s'", optarg);
      st->sc.noise_std = (float)d;
      st->noise_given = 1;
      break;
    case O_SEED:
      if (cli_opt_int(CMD_NAME, "seed", optarg, 0, 4294967295L, &l)) return EXIT_USAGE;
      st->seed = (uint32_t)l;
      break;
    case O_MODELS: models = optarg; break;
    case O_ANALYTIC: st->analytic = 1; break;
    case O_JUDGE: judge_path = optarg; break;
    case O_SIZE_TOL:
      if (cli_parse_float(optarg, 0, 10, &d))
        return cli_usage(CMD_NAME, "--size-tol: expected 0..10, got '%s'", optarg);
      size_tol = (float)d;
      break;
    case O_POS_TOL:
      if (cli_parse_float(optarg, 0, 10, &d))
        return cli_usage(CMD_NAME, "--pos-tol: expected 0..10, got '%s'", optarg);
      pos_tol = (float)d;
      break;
    case O_JSON: json = 1; break;
    case O_BACKEND:
      if ((backend = cli_parse_backend(optarg)) < 0)
        return cli_usage(CMD_NAME, "--backend: expected auto, cpu or vulkan, got '%s'", optarg);
      break;
    case O_QUIET: quiet = 1; break;
    default: return cli_bad_option(CMD_NAME, argv, ch, opts);
    }
  }
  int prc = cli_positional_expr(CMD_NAME, argc, argv, &expr);
  if (prc) return prc;
  if (!judge_path) judge_path = judge_default;
  if (!expr == !run_suite) return cli_usage(CMD_NAME, "give exactly one of --expr or --suite");
  if (out && !run_suite) return cli_usage(CMD_NAME, "--out is for --suite");
  if (st->score_expr && run_suite) return cli_usage(CMD_NAME, "--score is for --expr");
  if (st->score_expr) { /* checked here for a usage error; eval parses it once more */
    expr_error perr;
    expr_node *t = expr_parse(st->score_expr, &perr);
    if (!t) {
      char msg[2048];
      expr_error_format(st->score_expr, &perr, msg, sizeof msg);
      return cli_usage(CMD_NAME, "bad --score expression: %s", msg);
    }
    expr_free(t);
  }
  expr_node *tree = NULL; /* --expr, parsed once */
  if (expr) {
    expr_error perr;
    if (!(tree = expr_parse(expr, &perr))) {
      char msg[2048];
      expr_error_format(expr, &perr, msg, sizeof msg);
      return cli_usage(CMD_NAME, "bad expression: %s", msg);
    }
  }
  if (run.save && cli_mkdir_p(run.save)) {
    expr_free(tree);
    return cli_fail(CMD_NAME, "--save: cannot create %s: %s", run.save, strerror(errno));
  }

  char err[2048];
  int rc = cli_backend_open(CMD_NAME, &run.be, (ebm_backend_kind)backend, -1, 0, quiet);
  if (rc) {
    expr_free(tree);
    return rc;
  }
  ebm_concept_set set = {0};
  run.set = &set;
  char *md = NULL, *pv = NULL;
  size_t mdlen = 0, pvlen = 0;
  FILE *mf = NULL, *pf = NULL;
  if (ebm_judge_load(&run.judge, run.be, judge_path, 64, err, sizeof err) ||
      ebm_eval_scoring_for(run.judge, &st->scoring, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s: %s", judge_path, err);
    goto done;
  }
  st->scoring.size_tol = size_tol;
  st->scoring.pos_tol = pos_tol;
  run.R = ebm_judge_config_of(run.judge)->resolution;
  cli_progress_init(&run.prog, CMD_NAME, quiet);
  st->progress = on_progress;
  st->progress_ctx = &run;
  if (run.save) {
    size_t per = (size_t)3 * run.R * run.R;
    run.detail.samples = calloc((size_t)st->n, sizeof *run.detail.samples);
    run.detail.images = malloc((size_t)st->n * per * sizeof(float));
    run.detail.rerenders = malloc((size_t)st->n * per * sizeof(float));
    if (!run.detail.samples || !run.detail.images || !run.detail.rerenders) {
      rc = cli_fail(CMD_NAME, "out of memory for --save of %d samples", st->n);
      goto done;
    }
  }
  /* a learned model evaluates (terms bound to it) x chains rows at once: size it for the most
   * terms any expression here has */
  int most_terms = tree ? expr_count_terms(tree) : 1;
  for (int i = 0; !tree && i < SUITE_ROWS; i++) {
    char text[256];
    row_expr(&suite[i], 0, text, sizeof text);
    expr_error perr;
    expr_node *t = expr_parse(text, &perr);
    if (t && expr_count_terms(t) > most_terms) most_terms = expr_count_terms(t);
    expr_free(t);
  }
  int max_rows = st->batch * most_terms;
  if (ebm_concept_set_open(&set, run.be, st->analytic ? NULL : models, run.R, max_rows, err,
                           sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }

  if (expr) {
    ebm_eval_result r;
    if (run_one(&run, expr, tree, NULL, &r, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    if (json) {
      print_json(stdout, &r);
      printf("\n");
    } else {
      print_table(&r);
    }
    if (run.save && !quiet) fprintf(stderr, "vkebm eval: wrote %s/samples.{png,csv}\n", run.save);
    goto done;
  }

  /* the suite */
  mf = open_memstream(&md, &mdlen);
  pf = open_memstream(&pv, &pvlen);
  if (!mf || !pf) {
    rc = cli_fail(CMD_NAME, "out of memory");
    goto done;
  }
  char names[512];
  ebm_concept_set_names(&set, names, sizeof names);
  fprintf(mf, "| # | kind | expression | strict | target | met | faithful | unverified | "
              "Frechet (floor) | per term |\n");
  fprintf(mf, "|---|------|------------|-------:|-------:|-----|---------:|-----------:|"
              "----------------:|----------|\n");
  fprintf(pf, "| family | value | strict | faithful | unverified | Frechet (floor) |\n");
  fprintf(pf, "|--------|-------|-------:|---------:|-----------:|----------------:|\n");
  if (json) printf("[");
  int scored = 0, met_all = 0, total_evals = 0, done_evals = 0, saved = 0, first_json = 1;
  for (int i = 0; i < SUITE_ROWS; i++) total_evals += row_count(&suite[i]);
  for (int i = 0; i < SUITE_ROWS; i++) {
    const suite_row *row = &suite[i];
    char text[256];
    row_expr(row, 0, text, sizeof text);
    expr_error perr;
    expr_node *t = expr_parse(text, &perr); /* the first value's tree, evaluated below */
    /* copy the name out before the tree it points into is freed */
    char miss_buf[64] = "";
    const char *m = t ? missing_concept(t, &set) : "?";
    if (m) snprintf(miss_buf, sizeof miss_buf, "%s", m);
    int nv = row_count(row);
    if (m) {
      expr_free(t);
      fprintf(mf, "| %d | %s | `%s%s` | skipped | %.0f%% | - | - | - | - | no `%s` model in %s |\n",
              i + 1, row->kind, row->expr, row->values ? "*" : "", 100 * row->target, miss_buf,
              st->analytic ? "analytic" : models);
      if (json)
        printf("%s\n  {\"kind\": \"%s\", \"expr\": \"%s\", \"skipped\": \"no %s model\"}",
               first_json ? "" : ",", row->kind, row->expr, miss_buf);
      first_json = 0;
      done_evals += nv;
      continue;
    }
    double sum_strict = 0, sum_faith = 0, sum_read = 0, sum_fd = 0, sum_floor = 0, worst = 2.0;
    char worst_text[256] = "", detail[1536] = "";
    ebm_eval_result r;
    int met = 1;
    for (int v = 0; v < nv; v++) {
      row_expr(row, v, text, sizeof text);
      if (!quiet)
        fprintf(stderr, "vkebm eval: [%d/%d] %s\n", ++done_evals, total_evals, text);
      char sub[300];
      slug(sub, sizeof sub, ++saved, text);
      expr_node *tv = v == 0 ? t : expr_parse(text, &perr);
      int failed = !tv || run_one(&run, text, tv, sub, &r, err, sizeof err);
      if (!tv) snprintf(err, sizeof err, "%s", perr.msg);
      if (tv != t) expr_free(tv);
      if (failed) {
        expr_free(t);
        rc = cli_fail(CMD_NAME, "%s: %s", text, err);
        goto done;
      }
      sum_strict += r.strict;
      sum_faith += r.faithful;
      sum_read += r.read_strict;
      sum_fd += r.frechet;
      sum_floor += r.frechet_floor;
      if (r.strict < worst) {
        worst = r.strict;
        snprintf(worst_text, sizeof worst_text, "%.250s", r.expr);
      }
      char fd[64];
      fd_text(fd, sizeof fd, &r);
      if (row->values)
        fprintf(pf, "| %s | `%s` | %.1f%% | %.1f%% | %.1f%% | %s |\n", row->kind, r.expr,
                100 * r.strict, 100 * r.faithful, 100 * r.read_strict, fd);
      if (json) {
        printf("%s\n  {\"kind\": \"%s\", \"result\": ", first_json ? "" : ",", row->kind);
        print_json(stdout, &r);
        printf("}");
        first_json = 0;
      }
    }
    expr_free(t);
    double strict = sum_strict / nv, faithful = sum_faith / nv, unverified = sum_read / nv;
    char fd[64] = "-";
    if (row->values) {
      met = strict >= row->target && worst >= row->worst_target;
      if (isfinite(sum_fd)) snprintf(fd, sizeof fd, "%.1f (%.1f)", sum_fd / nv, sum_floor / nv);
      snprintf(detail, sizeof detail, "mean of %d values%s; worst `%s` %.1f%%", nv,
               isfinite(sum_fd) ? " (Frechet too)" : "", worst_text, 100 * worst);
    } else {
      met = strict >= row->target;
      fd_text(fd, sizeof fd, &r);
      size_t used = 0;
      for (int k = 0; k < r.nrows; k++) {
        used += (size_t)snprintf(detail + used, used < sizeof detail ? sizeof detail - used : 0,
                                 "%s`%s` %.1f%%", k ? "; " : "", r.rows[k].text,
                                 100 * r.rows[k].satisfied);
        for (int q = 0; q < r.rows[k].nsides; q++) {
          double share = r.rows[k].side_share[q];
          if (row->or_sides && (share < 0.25 || share > 0.75)) met = 0;
          used += (size_t)snprintf(detail + used, used < sizeof detail ? sizeof detail - used : 0,
                                   " (side `%s` %.1f%%)", r.rows[k].side_text[q], 100 * share);
        }
      }
      if (r.masked_positions && used < sizeof detail)
        snprintf(detail + used, sizeof detail - used, "; places read on masked copies");
    }
    char target[64];
    if (row->values)
      snprintf(target, sizeof target, "%.0f%%, worst %.0f%%", 100 * row->target,
               100 * row->worst_target);
    else
      snprintf(target, sizeof target, "%.0f%%%s", 100 * row->target,
               row->or_sides ? ", sides 25-75%" : "");
    fprintf(mf, "| %d | %s | `%s%s` | %.1f%% | %s | %s | %.1f%% | %.1f%% | %s | %s |\n", i + 1,
            row->kind, row->values ? row->expr : r.expr, row->values ? "*" : "", 100 * strict,
            target, met ? "yes" : "no", 100 * faithful, 100 * unverified, fd, detail);
    scored++;
    met_all += met;
  }
  if (json) printf("\n]\n");
  ebm_sampler_config used;
  ebm_eval_sampler(st, &set, &used);
  fprintf(mf, "\n%d of %d rows scored, %d met their target. %d samples per expression (a sweep "
              "row: per value), seed %u, sampler: %s, %d steps of %g with noise %g%s; models: "
              "%s (%s); size tolerance %.2f, position tolerance %.2f. Faithful: the judge reads a "
              "render and its re-render explains the sample (residual <= %.4f / %.4f for one / "
              "two objects, ratio <= %.3f / %.3f; %s). Unverified: what the judge's readings "
              "alone score.\n",
          scored, SUITE_ROWS, met_all, st->n, st->seed, ebm_sampler_name(used.kind), used.steps,
          used.step_size, used.noise_std, st->or_mixture ? ", ORs as mixtures" : "", st->analytic ? "analytic" : models, names,
          st->scoring.size_tol, st->scoring.pos_tol, st->scoring.thr.residual[0],
          st->scoring.thr.residual[1], st->scoring.thr.ratio[0], st->scoring.thr.ratio[1],
          st->scoring.thr.how);
  fclose(pf);
  pf = NULL;
  fprintf(mf, "\nPer value:\n\n%s", pv);
  fclose(mf);
  mf = NULL;
  if (out) {
    if (io_write_atomic(out, md, mdlen, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    if (!quiet) fprintf(stderr, "vkebm eval: wrote %s\n", out);
  } else if (!json) {
    fwrite(md, 1, mdlen, stdout);
  }
done:
  if (mf) fclose(mf);
  if (pf) fclose(pf);
  free(md);
  free(pv);
  free(run.detail.samples);
  free(run.detail.images);
  free(run.detail.rerenders);
  ebm_judge_destroy(run.judge);
  ebm_concept_set_clear(&set);
  expr_free(tree);
  return cli_backend_close(run.be, rc);
}
