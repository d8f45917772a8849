/* main.c: `vkebm COMMAND [options]`. The table of subcommands is src/cli/commands.def. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>

#include "cli.h"

typedef struct command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
#define CMD(name, summary) {#name, summary, cmd_##name},
#include "commands.def"
#undef CMD
    {0, 0, 0}};

static void print_help(FILE *f) {
  fprintf(f, "usage: vkebm COMMAND [options]\n\n"
             "Compositional visual generation and inference with energy-based models on Vulkan.\n\n"
             "commands:\n");
  for (size_t i = 0; commands[i].name; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n`vkebm COMMAND --help` describes a command's options.\n"
             "Exit codes: 0 ok, 1 failure, 2 usage error, 77 no Vulkan device, 130 interrupted.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    print_help(stdout);
    return EXIT_OK;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
    printf("vkebm %s\n", VKEBM_VERSION);
    return EXIT_OK;
  }
  for (size_t i = 0; commands[i].name; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "vkebm: unknown command '%s' (try `vkebm --help`)\n", argv[1]);
  return EXIT_USAGE;
}

static void vmsg(const char *cmd, const char *fmt, va_list ap) {
  fprintf(stderr, "vkebm %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(cmd, fmt, ap);
  va_end(ap);
  return EXIT_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(cmd, fmt, ap);
  va_end(ap);
  return EXIT_FAIL;
}

/* Edit distance between a and b (both short option names), for suggestions. */
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b), d[64][64];
  if (la > 63 || lb > 63) return 99;
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

int cli_positional_expr(const char *cmd, int argc, char **argv, const char **expr) {
  if (optind >= argc) return 0;
  if (optind + 1 < argc)
    return cli_usage(cmd, "unexpected argument '%s' (quote the expression as one argument)",
                     argv[optind + 1]);
  if (*expr)
    return cli_usage(cmd, "the expression is given twice: --expr '%s' and '%s'", *expr,
                     argv[optind]);
  *expr = argv[optind];
  return 0;
}

int cli_bad_option(const char *cmd, char **argv, int c, const struct option *opts) {
  const char *arg = optind > 0 ? argv[optind - 1] : "?";
  char shortopt[3] = {'-', (char)optopt, 0};
  if (strncmp(arg, "--", 2) && optopt > 0 && optopt < 128) arg = shortopt; /* e.g. -xn: the x */
  if (c == ':') return cli_usage(cmd, "option '%s' needs a value (try `vkebm %s --help`)", arg, cmd);
  /* an unknown long option: the closest known one (a prefix of it, or a small typo) */
  const char *best = NULL;
  if (opts && !strncmp(arg, "--", 2) && arg[2]) {
    char name[64];
    snprintf(name, sizeof name, "%s", arg + 2);
    name[strcspn(name, "=")] = 0;
    int bd = 3;
    for (const struct option *o = opts; o->name; o++) {
      int d = !strncmp(o->name, name, strlen(name)) ? 0 : edit_distance(name, o->name);
      if (d < bd) bd = d, best = o->name;
    }
  }
  if (best)
    return cli_usage(cmd, "option '%s' is unknown or lacks its value; did you mean --%s? (try "
                          "`vkebm %s --help`)", arg, best, cmd);
  return cli_usage(cmd, "option '%s' is unknown or lacks its value (try `vkebm %s --help`)", arg,
                   cmd);
}

int cli_parse_backend(const char *s) {
  if (!strcmp(s, "auto")) return EBM_BACKEND_AUTO;
  if (!strcmp(s, "cpu")) return EBM_BACKEND_CPU;
  if (!strcmp(s, "vulkan")) return EBM_BACKEND_VULKAN;
  return -1;
}

int cli_backend_open(const char *cmd, ebm_backend **be, ebm_backend_kind kind, int device_index,
                     int validation, int quiet) {
  ebm_backend_options o = {.kind = kind, .device_index = device_index, .validation = validation,
                           .verbose = !quiet};
  char err[512];
  int rc = ebm_backend_create(be, &o, err, sizeof err);
  if (rc == EBM_ERR_NO_DEVICE) {
    fprintf(stderr, "vkebm %s: no usable Vulkan device: %s\n", cmd, err);
    return EXIT_NO_DEVICE;
  }
  if (rc != 0) return cli_fail(cmd, "%s", err);
  return 0;
}

int cli_backend_close(ebm_backend *be, int rc) {
  if (!be) return rc;
  unsigned long long n = (unsigned long long)ebm_backend_validation_errors(be);
  ebm_backend_destroy(be);
  if (n) {
    fprintf(stderr, "vkebm: %llu Vulkan validation message(s); failing\n", n);
    return rc ? rc : EXIT_FAIL;
  }
  return rc;
}

int cli_parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int cli_opt_int(const char *cmd, const char *name, const char *arg, long lo, long hi, long *out) {
  if (cli_parse_int(arg, lo, hi, out) == 0) return 0;
  return cli_usage(cmd, "--%s: expected %ld..%ld, got '%s'", name, lo, hi, arg);
}

int cli_parse_float(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

void cli_printable(char *out, size_t len, const char *s) {
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p && len) {
    /* one character: an ASCII byte, or a whole well-formed UTF-8 sequence (never split) */
    size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
    for (size_t k = 1; k < n; k++)
      if ((p[k] & 0xc0) != 0x80) n = 0;
    if (n == 0 || *p < 32 || *p == 127) n = 1;
    if (o + n + 4 > len) { /* room for "..." and the NUL */
      if (o + 4 <= len) memcpy(out + o, "...", 3), o += 3;
      break;
    }
    if (n == 1 && (*p < 32 || *p >= 127)) out[o++] = '?';
    else memcpy(out + o, p, n), o += n;
    p += n;
  }
  if (len) out[o < len ? o : len - 1] = 0;
}
