/* cmd_eval.c: `vkebm eval`: how often do samples of a composition satisfy it, by the judge.
 *
 *   vkebm eval --expr EXPR [-n 256] [--models DIR] [--judge FILE] [--json]
 *   vkebm eval --suite [--out FILE.md] [-n 256] ...
 *
 * A thin consumer of include/vkebm/eval.h (which documents how each term is decided and the
 * tolerances). --suite runs a fixed list of expressions, one per row, each with its target
 * strict accuracy, and writes a markdown table (stdout, or --out FILE.md atomically). A row
 * whose concepts have no model in the folder is reported as skipped, not scored.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vkebm/compose.h"
#include "vkebm/eval.h"
#include "vkebm/expr.h"
#include "vkebm/fileio.h"

#define CMD_NAME "eval"

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm eval --expr EXPR [options]\n"
          "       vkebm eval --suite [--out FILE.md] [options]\n\n"
          "Samples the expression with `vkebm sample`'s sampler and defaults, reads every sample\n"
          "with the judge and reports, per conjunct, the share of samples that satisfy it, and the\n"
          "strict accuracy (all at once). shape/color: the judge's argmax; size: within\n"
          "--size-tol; pos: both coordinates within --pos-tol. Two positions (two objects): each\n"
          "is judged on a copy with the other places' image regions replaced by the floor colour.\n"
          "A sample whose reading no rendered scene could give (size or position far out of the\n"
          "trained range: noise, garbage) satisfies nothing; the readable share is reported.\n\n"
          "options:\n"
          "  --expr EXPR        the composition\n"
          "  --suite            the fixed suite (single concepts; 2-, 3-, 4-term conjunctions;\n"
          "                     negation; disjunction; two objects) as a markdown table\n"
          "  --out FILE.md      --suite: write the table there (default: stdout)\n"
          "  -n N               samples per expression (default 256)\n"
          "  --batch B          chains sampled at once (default 64)\n"
          "  --steps K          sampler steps (default 200, as vkebm sample)\n"
          "  --step-size V      sampler step eta (default: the step the models were trained\n"
          "                     with, as vkebm sample)\n"
          "  --noise V          sampler noise sigma (default: the models' training noise)\n"
          "  --seed S           sampling seed (default 1; batch k uses S + k)\n"
          "  --models DIR       concept models (default models/; other files are skipped)\n"
          "  --analytic         use the analytic concepts (the judge reads rendered scenes, so\n"
          "                     expect low scores: they are reported, not faked)\n"
          "  --judge FILE       the judge (default models/judge.safetensors)\n"
          "  --size-tol V       default 0.1\n"
          "  --pos-tol V        default 0.25\n"
          "  --json             one JSON object (--expr) or array (--suite) on stdout\n"
          "  --backend B        cpu (default), vulkan or auto\n"
          "  --quiet            no progress on stderr\n");
}

typedef struct suite_row {
  const char *kind, *expr;
  double target;
  int or_sides; /* 1: each side's share must be within 25..75 % */
} suite_row;

static const suite_row suite[] = {
    {"single concept", "shape=cube", 0.90, 0},
    {"single concept", "color=red", 0.90, 0},
    {"single concept", "size=0.6", 0.90, 0},
    {"single concept", "pos=(0.5,-0.5)", 0.90, 0},
    {"shape AND colour", "shape=sphere AND color=blue", 0.80, 0},
    {"shape AND colour AND position", "shape=cube AND color=red AND pos=(-0.5,0.5)", 0.60, 0},
    {"shape AND colour AND size AND position",
     "shape=cylinder AND color=green AND size=0.6 AND pos=(0.5,-0.5)", 0.50, 0},
    {"negation", "shape=sphere AND NOT color=red", 0.85, 0},
    {"disjunction", "color=red OR color=blue", 0.90, 1},
    {"two objects", "pos=(-0.5,0) AND pos=(0.5,0)", 0.70, 0},
};

/* First concept of tree not in set, or NULL. */
static const char *missing_concept(const expr_node *n, const ebm_concept_set *set) {
  if (n->kind == EXPR_TERM) return ebm_concept_set_find(set, n->concept) ? NULL : n->concept;
  for (int i = 0; i < n->num_children; i++) {
    const char *m = missing_concept(n->children[i], set);
    if (m) return m;
  }
  return NULL;
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void print_json(FILE *f, const ebm_eval_result *r) {
  fprintf(f, "{\"expr\": ");
  json_str(f, r->expr);
  fprintf(f, ", \"n\": %d, \"strict\": %.5f, \"readable\": %.5f, \"masked_positions\": %d, "
             "\"seconds\": %.2f, \"terms\": [", r->n, r->strict, r->readable, r->masked_positions,
          r->seconds);
  for (int i = 0; i < r->nrows; i++) {
    fprintf(f, "%s{\"term\": ", i ? ", " : "");
    json_str(f, r->rows[i].text);
    fprintf(f, ", \"satisfied\": %.5f", r->rows[i].satisfied);
    if (r->rows[i].nsides) {
      fprintf(f, ", \"sides\": [");
      for (int k = 0; k < r->rows[i].nsides; k++) {
        fprintf(f, "%s{\"term\": ", k ? ", " : "");
        json_str(f, r->rows[i].side_text[k]);
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
  printf("  %-52s %9s\n", "term", "satisfied");
  for (int i = 0; i < r->nrows; i++) {
    printf("  %-52s %8.1f%%\n", r->rows[i].text, 100 * r->rows[i].satisfied);
    for (int k = 0; k < r->rows[i].nsides; k++)
      printf("    side %-47s %8.1f%%\n", r->rows[i].side_text[k], 100 * r->rows[i].side_share[k]);
  }
  printf("  %-52s %8.1f%%\n", "strict (all at once)", 100 * r->strict);
  printf("  %-52s %8.1f%%\n", "readable (judged as a plausible scene)", 100 * r->readable);
}

int cmd_eval(int argc, char **argv) {
  enum {
    O_EXPR = 256, O_SUITE, O_OUT, O_BATCH, O_STEPS, O_SEED, O_MODELS, O_ANALYTIC, O_JUDGE,
    O_SIZE_TOL, O_POS_TOL, O_JSON, O_BACKEND, O_QUIET, O_STEP, O_NOISE
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
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  ebm_eval_settings st;
  ebm_eval_settings_default(&st);
  const char *expr = NULL, *out = NULL, *models = "models", *judge_path = "models/judge.safetensors";
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
    case 'n':
      if (cli_parse_int(optarg, 1, 1000000, &l))
        return cli_usage(CMD_NAME, "-n: expected 1..1000000, got '%s'", optarg);
      st.n = (int)l;
      break;
    case O_BATCH:
      if (cli_parse_int(optarg, 1, 4096, &l))
        return cli_usage(CMD_NAME, "--batch: expected 1..4096, got '%s'", optarg);
      st.batch = (int)l;
      break;
    case O_STEPS:
      if (cli_parse_int(optarg, 0, 1000000, &l))
        return cli_usage(CMD_NAME, "--steps: expected 0..1000000, got '%s'", optarg);
      st.sc.steps = (int)l;
      st.sc.adapt_steps = (int)l / 2;
      break;
    case O_STEP:
      if (cli_parse_float(optarg, 1e-30, 1e30, &d))
        return cli_usage(CMD_NAME, "--step-size: expected a positive number, got '%s'", optarg);
      st.sc.step_size = (float)d;
      st.step_given = 1;
      break;
    case O_NOISE:
      if (cli_parse_float(optarg, 0, 1e30, &d))
        return cli_usage(CMD_NAME, "--noise: expected a number >= 0, got '%s'", optarg);
      st.sc.noise_std = (float)d;
      st.noise_given = 1;
      break;
    case O_SEED:
      if (cli_parse_int(optarg, 0, 4294967295L, &l))
        return cli_usage(CMD_NAME, "--seed: expected 0..4294967295, got '%s'", optarg);
      st.seed = (uint32_t)l;
      break;
    case O_MODELS: models = optarg; break;
    case O_ANALYTIC: st.analytic = 1; break;
    case O_JUDGE: judge_path = optarg; break;
    case O_SIZE_TOL:
      if (cli_parse_float(optarg, 0, 10, &d))
        return cli_usage(CMD_NAME, "--size-tol: expected 0..10, got '%s'", optarg);
      st.size_tol = (float)d;
      break;
    case O_POS_TOL:
      if (cli_parse_float(optarg, 0, 10, &d))
        return cli_usage(CMD_NAME, "--pos-tol: expected 0..10, got '%s'", optarg);
      st.pos_tol = (float)d;
      break;
    case O_JSON: json = 1; break;
    case O_BACKEND:
      if ((backend = cli_parse_backend(optarg)) < 0)
        return cli_usage(CMD_NAME, "--backend: expected auto, cpu or vulkan, got '%s'", optarg);
      break;
    case O_QUIET: quiet = 1; break;
    default: return cli_bad_option(CMD_NAME, argv, ch);
    }
  }
  if (optind < argc) return cli_usage(CMD_NAME, "unexpected argument '%s'", argv[optind]);
  if (!expr == !run_suite) return cli_usage(CMD_NAME, "give exactly one of --expr or --suite");
  if (out && !run_suite) return cli_usage(CMD_NAME, "--out is for --suite");
  if (expr) {
    expr_error perr;
    expr_node *t = expr_parse(expr, &perr);
    if (!t) {
      char msg[2048];
      expr_error_format(expr, &perr, msg, sizeof msg);
      return cli_usage(CMD_NAME, "bad expression: %s", msg);
    }
    expr_free(t);
  }

  char err[2048];
  ebm_backend *be;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)backend, -1, 0, quiet);
  if (rc) return rc;
  ebm_concept_set set = {0};
  ebm_judge *judge = NULL;
  char *md = NULL;
  size_t mdlen = 0;
  FILE *mf = NULL;
  if (ebm_judge_load(&judge, be, judge_path, 64, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  int R = ebm_judge_config_of(judge)->resolution;
  /* a learned model evaluates (terms bound to it) x chains rows at once: size it for the most
   * terms any expression here has */
  int most_terms = 1;
  if (expr) {
    expr_error perr;
    expr_node *t = expr_parse(expr, &perr);
    if (t) most_terms = expr_count_terms(t);
    expr_free(t);
  } else {
    for (size_t i = 0; i < sizeof suite / sizeof *suite; i++) {
      expr_error perr;
      expr_node *t = expr_parse(suite[i].expr, &perr);
      if (t && expr_count_terms(t) > most_terms) most_terms = expr_count_terms(t);
      expr_free(t);
    }
  }
  int max_rows = st.batch * most_terms;
  if (!st.analytic) {
    if (ebm_concept_set_load_dir(&set, be, models, max_rows, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    if (set.count == 0) {
      rc = cli_fail(CMD_NAME, "no concept models in %s (train some, or use --analytic)", models);
      goto done;
    }
  } else if (ebm_eval_load_analytic(be, R, max_rows, &set, err, sizeof err)) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }

  if (expr) {
    ebm_eval_result r;
    if (ebm_eval_expr(be, &set, judge, expr, &st, &r, NULL, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    if (json) {
      print_json(stdout, &r);
      printf("\n");
    } else {
      print_table(&r);
    }
    goto done;
  }

  /* the suite */
  mf = open_memstream(&md, &mdlen);
  if (!mf) {
    rc = cli_fail(CMD_NAME, "out of memory");
    goto done;
  }
  char names[512];
  ebm_concept_set_names(&set, names, sizeof names);
  fprintf(mf, "| # | kind | expression | strict | target | met | readable | per term |\n");
  fprintf(mf, "|---|------|------------|-------:|-------:|-----|---------:|----------|\n");
  if (json) printf("[");
  int nrows = (int)(sizeof suite / sizeof *suite), scored = 0, met_all = 0;
  for (int i = 0; i < nrows; i++) {
    const suite_row *row = &suite[i];
    expr_error perr;
    expr_node *t = expr_parse(row->expr, &perr);
    /* copy the name out before the tree it points into is freed */
    char miss_buf[64] = "";
    const char *m = t ? missing_concept(t, &set) : "?";
    if (m) snprintf(miss_buf, sizeof miss_buf, "%s", m);
    expr_free(t);
    const char *miss = m ? miss_buf : NULL;
    if (miss) {
      fprintf(mf, "| %d | %s | `%s` | skipped | %.0f%% | - | - | no `%s` model in %s |\n", i + 1,
              row->kind, row->expr, 100 * row->target, miss, st.analytic ? "analytic" : models);
      if (json)
        printf("%s\n  {\"kind\": \"%s\", \"expr\": \"%s\", \"skipped\": \"no %s model\"}",
               i ? "," : "", row->kind, row->expr, miss);
      continue;
    }
    if (!quiet) fprintf(stderr, "vkebm eval: [%d/%d] %s\n", i + 1, nrows, row->expr);
    ebm_eval_result r;
    if (ebm_eval_expr(be, &set, judge, row->expr, &st, &r, NULL, err, sizeof err)) {
      rc = cli_fail(CMD_NAME, "%s: %s", row->expr, err);
      goto done;
    }
    int met = r.strict >= row->target;
    char detail[1024] = "";
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
      snprintf(detail + used, sizeof detail - used, "; positions judged on masked copies");
    fprintf(mf, "| %d | %s | `%s` | %.1f%% | %.0f%%%s | %s | %.1f%% | %s |\n", i + 1, row->kind,
            r.expr, 100 * r.strict, 100 * row->target, row->or_sides ? ", sides 25-75%" : "",
            met ? "yes" : "no", 100 * r.readable, detail);
    scored++;
    met_all += met;
    if (json) {
      printf("%s\n  {\"kind\": \"%s\", \"target\": %.2f, \"met\": %s, \"result\": ", i ? "," : "",
             row->kind, row->target, met ? "true" : "false");
      print_json(stdout, &r);
      printf("}");
    }
  }
  if (json) printf("\n]\n");
  ebm_sampler_config used;
  ebm_eval_sampler(&st, &set, &used);
  fprintf(mf, "\n%d of %d rows scored, %d met their target. %d samples per row, seed %u, "
              "sampler: %s, %d steps of %g with noise %g; models: %s (%s); size tolerance %.2f, "
              "position tolerance %.2f.\n", scored, nrows, met_all, st.n, st.seed,
          ebm_sampler_name(used.kind), used.steps, used.step_size, used.noise_std,
          st.analytic ? "analytic" : models, names, st.size_tol, st.pos_tol);
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
  free(md);
  ebm_judge_destroy(judge);
  ebm_concept_set_clear(&set);
  return cli_backend_close(be, rc);
}
