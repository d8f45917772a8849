/* cmd_inspect.c: `vkebm inspect FILE [--json]`: what is inside a model file.
 *
 * Prints the __metadata__ map (sorted by key), one row per tensor (name, dtype, shape, numel and
 * min/max/mean over its finite values, with a count of NaN/Inf when there are any), and the
 * totals; for a vkebm model file also the network it describes and its FLOPs per forward pass and
 * per Langevin image-step; for a PNG, its size and text chunks (the provenance vkebm writes
 * there). The file goes through the strict reader, so a malformed file gets its one-line reason
 * and exit 1. --json prints the same as one JSON document.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vkebm/fileio.h"
#include "vkebm/image.h"
#include "vkebm/model.h"
#include "vkebm/net.h"
#include "vkebm/safetensors.h"

/* For vkebm model files: the metadata read as a model (or why it cannot be), the network it
 * describes and its cost. ok = 0 with why set when the file claims to be a model but is not. */
typedef struct model_view {
  int is_model, ok;
  ebm_model_info info;
  char describe[160], why[400];
  double forward_flops;
  size_t parameters; /* network weights: every tensor but sn_u.* (power-iteration state) and extra.* */
} model_view;

static void view_model(const char *path, const st_file *f, model_view *m) {
  memset(m, 0, sizeof *m);
  const char *fmt = st_meta_get(f, "format");
  if (!fmt || strcmp(fmt, EBM_MODEL_FORMAT)) return;
  m->is_model = 1;
  if (ebm_model_check(path, &m->info, m->why, sizeof m->why)) return; /* loadable, not only readable */
  m->ok = 1;
  ebm_net_config_describe(&m->info.config, m->describe, sizeof m->describe);
  m->forward_flops = ebm_net_forward_flops(&m->info.config);
  for (int i = 0; i < f->ntensors; i++)
    if (strncmp(f->tensors[i].name, "sn_u.", 5) && strncmp(f->tensors[i].name, "extra.", 6))
      m->parameters += f->tensors[i].numel;
}

typedef struct tensor_stats {
  double min, max, mean;
  size_t finite, nonfinite;
} tensor_stats;

static tensor_stats stats_of(const st_tensor *t) {
  tensor_stats s = {INFINITY, -INFINITY, 0, 0, 0};
  double sum = 0;
  for (size_t i = 0; i < t->numel; i++) {
    double v = t->data[i];
    if (!isfinite(v)) {
      s.nonfinite++;
      continue;
    }
    s.finite++;
    sum += v;
    if (v < s.min) s.min = v;
    if (v > s.max) s.max = v;
  }
  if (s.finite) s.mean = sum / (double)s.finite;
  return s;
}

static void shape_str(const st_tensor *t, char *out, size_t len) {
  size_t used = (size_t)snprintf(out, len, "[");
  for (int d = 0; d < t->ndim && used < len; d++)
    used += (size_t)snprintf(out + used, len - used, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  if (used < len) snprintf(out + used, len - used, "]");
}

/* Metadata and names come from the file: control bytes would break the table. */
static void print_clean(const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '\n') fputs("\\n", stdout);
    else if (ch < 32 || ch == 127) putchar('?');
    else putchar(ch);
  }
}

static void usage(FILE *f) {
  fprintf(f, "usage: vkebm inspect FILE [--json]\n\n"
             "Shows a model file's metadata and tensors (name, dtype, shape, numel, min/max/mean)\n"
             "after checking it with the strict safetensors reader. For a PNG, shows its size and\n"
             "text chunks (what vkebm records there: expression, seed, settings).\n\n"
             "  --json     print one JSON document instead of a table\n"
             "  -h, --help this text\n");
}

static int print_json(const char *path, const st_file *f, long long file_bytes, const model_view *m) {
  json_t *root = json_object(), *meta = json_object(), *tensors = json_array();
  json_object_set_new(root, "file", json_string(path));
  json_object_set_new(root, "file_bytes", json_integer(file_bytes));
  if (m->is_model && m->ok) {
    json_t *jm = json_object();
    json_object_set_new(jm, "config", json_string(m->describe));
    json_object_set_new(jm, "concept", json_string(m->info.concept));
    json_object_set_new(jm, "label_kind", json_string(m->info.label_kind == EBM_LABEL_ONEHOT ? "onehot" : "vector"));
    json_object_set_new(jm, "parameters", json_integer((json_int_t)m->parameters));
    json_object_set_new(jm, "forward_flops", json_integer((json_int_t)llround(m->forward_flops)));
    /* Langevin image-step = forward + backward to the input (tools/bench_torch.py). */
    json_object_set_new(jm, "flops_per_image_step", json_integer((json_int_t)llround(2 * m->forward_flops)));
    json_object_set_new(root, "model", jm);
  } else if (m->is_model) {
    json_object_set_new(root, "model_error", json_string(m->why));
  }
  for (int i = 0; i < f->nmeta; i++) json_object_set_new(meta, f->meta[i].key, json_string(f->meta[i].value));
  json_object_set_new(root, "metadata", meta);
  size_t total = 0;
  for (int i = 0; i < f->ntensors; i++) {
    const st_tensor *t = &f->tensors[i];
    tensor_stats s = stats_of(t);
    json_t *e = json_object(), *shape = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
    json_object_set_new(e, "name", json_string(t->name));
    json_object_set_new(e, "dtype", json_string(t->dtype));
    json_object_set_new(e, "shape", shape);
    json_object_set_new(e, "numel", json_integer((json_int_t)t->numel));
    json_object_set_new(e, "min", s.finite ? json_real(s.min) : json_null());
    json_object_set_new(e, "max", s.finite ? json_real(s.max) : json_null());
    json_object_set_new(e, "mean", s.finite ? json_real(s.mean) : json_null());
    json_object_set_new(e, "nonfinite", json_integer((json_int_t)s.nonfinite));
    json_array_append_new(tensors, e);
    total += t->numel;
  }
  json_object_set_new(root, "tensors", tensors);
  json_object_set_new(root, "total_values", json_integer((json_int_t)total));
  json_object_set_new(root, "total_bytes", json_integer((json_int_t)(total * 4)));
  int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(root);
  putchar('\n');
  return rc ? EXIT_FAIL : EXIT_OK;
}

static void print_table(const char *path, const st_file *f, long long file_bytes, const model_view *m) {
  printf("file: %s (%lld bytes)\n", path, file_bytes);
  if (m->is_model && m->ok) {
    printf("model: %s, concept ", m->describe);
    print_clean(m->info.concept);
    printf(" (%s labels), %zu parameters, %.4g MFLOP per forward pass, %.4g MFLOP per Langevin image-step\n",
           m->info.label_kind == EBM_LABEL_ONEHOT ? "one-hot" : "vector", m->parameters,
           m->forward_flops / 1e6, 2 * m->forward_flops / 1e6);
  }
  printf("metadata (%d):\n", f->nmeta);
  for (int i = 0; i < f->nmeta; i++) {
    printf("  ");
    print_clean(f->meta[i].key);
    printf(" = ");
    print_clean(f->meta[i].value);
    putchar('\n');
  }
  int wname = 4;
  for (int i = 0; i < f->ntensors; i++) {
    int len = (int)strlen(f->tensors[i].name);
    if (len > wname) wname = len < 60 ? len : 60;
  }
  printf("tensors (%d):\n", f->ntensors);
  printf("  %-*s  %-5s  %-18s  %10s  %12s  %12s  %12s\n", wname, "name", "dtype", "shape", "numel",
         "min", "max", "mean");
  size_t total = 0;
  for (int i = 0; i < f->ntensors; i++) {
    const st_tensor *t = &f->tensors[i];
    tensor_stats s = stats_of(t);
    char shape[160];
    shape_str(t, shape, sizeof shape);
    printf("  ");
    print_clean(t->name);
    printf("%*s  %-5s  %-18s  %10zu", wname - (int)strlen(t->name) > 0 ? wname - (int)strlen(t->name) : 0,
           "", t->dtype, shape, t->numel);
    if (s.finite)
      printf("  %12.5g  %12.5g  %12.5g", s.min, s.max, s.mean);
    else
      printf("  %12s  %12s  %12s", "-", "-", "-");
    if (s.nonfinite) printf("  (%zu NaN/Inf)", s.nonfinite);
    putchar('\n');
    total += t->numel;
  }
  printf("total: %zu values in %d tensors, %zu bytes of tensor data\n", total, f->ntensors, total * 4);
}

/* PNGs: size and text chunks, which is where vkebm records how an image was made. */
static int inspect_png(const char *path, int json, long long file_bytes) {
  uint8_t *rgb;
  int W, H, ntext = 0;
  img_text *text = NULL;
  char err[512];
  if (img_read_png_rgb8(path, &rgb, &W, &H, &text, &ntext, err, sizeof err))
    return cli_fail("inspect", "%s", err);
  free(rgb);
  int rc = EXIT_OK;
  if (json) {
    json_t *root = json_object(), *jt = json_object();
    json_object_set_new(root, "file", json_string(path));
    json_object_set_new(root, "file_bytes", json_integer(file_bytes));
    json_object_set_new(root, "width", json_integer(W));
    json_object_set_new(root, "height", json_integer(H));
    /* tEXt is Latin-1; a value jansson refuses as UTF-8 is shown as null rather than lost. */
    for (int i = 0; i < ntext; i++) {
      json_t *v = json_string(text[i].value);
      json_object_set_new(jt, text[i].key, v ? v : json_null());
    }
    json_object_set_new(root, "text", jt);
    rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ? EXIT_FAIL : EXIT_OK;
    putchar('\n');
    json_decref(root);
  } else {
    printf("file: %s (%lld bytes)\nimage: %dx%d PNG\ntext (%d):\n", path, file_bytes, W, H, ntext);
    for (int i = 0; i < ntext; i++) {
      printf("  ");
      print_clean(text[i].key);
      printf(" = ");
      print_clean(text[i].value);
      putchar('\n');
    }
  }
  img_text_free(text, ntext);
  if (fflush(stdout) != 0) rc = EXIT_FAIL;
  return rc;
}

static int is_png(const char *path) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  long long size;
  char err[16];
  int fd = io_open_regular(path, &size, err, sizeof err); /* a FIFO must not hang here */
  if (fd < 0) return 0;
  ssize_t n = read(fd, head, 8);
  close(fd);
  return n == 8 && !memcmp(head, sig, 8);
}

int cmd_inspect(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int json = 0;
  optind = 0; /* glibc: full reset, argv[0] is the subcommand */
  opterr = 0;
  int o;
  while ((o = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
    switch (o) {
    case 'j': json = 1; break;
    case 'h': usage(stdout); return EXIT_OK;
    default: return cli_bad_option("inspect", argv, o, opts);
    }
  }
  if (argc - optind != 1)
    return cli_usage("inspect", "expected exactly one FILE (try `vkebm inspect --help`)");
  const char *path = argv[optind];
  struct stat st;
  long long file_bytes = stat(path, &st) == 0 ? (long long)st.st_size : -1;
  if (is_png(path)) return inspect_png(path, json, file_bytes);
  st_file f;
  char err[512];
  if (st_read(&f, path, 0, err, sizeof err)) return cli_fail("inspect", "%s", err);
  model_view m;
  view_model(path, &f, &m);
  /* A file marked as a model that the model reader refuses is still shown (that is what
   * inspect is for), with the reason on stderr. */
  if (m.is_model && !m.ok) fprintf(stderr, "vkebm inspect: warning: not a loadable model: %s\n", m.why);
  int rc = EXIT_OK;
  if (json) rc = print_json(path, &f, file_bytes, &m);
  else print_table(path, &f, file_bytes, &m);
  st_free(&f);
  if (fflush(stdout) != 0) rc = EXIT_FAIL;
  return rc;
}
