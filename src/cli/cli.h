/* cli.h: helpers shared by the subcommands (src/cli/cmd_*.c). The CLI is a thin consumer of the
 * library: parse flags, call the library, print. Exit codes: 0 ok, 1 runtime failure, 2 usage
 * error, 77 no usable Vulkan device, 130 interrupted. */
#ifndef VKEBM_CLI_H
#define VKEBM_CLI_H

#include <stdio.h>

#include "vkebm/backend.h"
#include "vkebm/net.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NO_DEVICE = 77, EXIT_INTERRUPTED = 130 };

#define CMD(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef CMD

/* Prints "vkebm CMD: message" on stderr and returns EXIT_USAGE (for `return cli_usage(...)`). */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "vkebm CMD: message" on stderr and returns EXIT_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For getopt_long's '?' (or ':' when the option string starts with ':') with opterr = 0: one line
 * naming the option getopt refused, unknown or missing its value (and the closest of opts, the
 * command's long options, when one is within two edits or extends it), and EXIT_USAGE. c is what
 * getopt_long returned. Every subcommand reports bad flags through this. */
struct option;
int cli_bad_option(const char *cmd, char **argv, int c, const struct option *opts);
/* After getopt_long: one argument left over is the expression (as --expr EXPR) when *expr is
 * still NULL. Returns 0, or EXIT_USAGE (printed) for more arguments or a second expression. */
int cli_positional_expr(const char *cmd, int argc, char **argv, const char **expr);

/* "auto" | "cpu" | "vulkan" -> kind; -1 when unknown. */
int cli_parse_backend(const char *s);
/* Creates the backend, printing the choice on stderr; on failure prints the reason and returns
 * the exit code to use (EXIT_NO_DEVICE or EXIT_FAIL), else 0. */
int cli_backend_open(const char *cmd, ebm_backend **be, ebm_backend_kind kind, int device_index,
                     int validation, int quiet);
/* Closes the backend; returns EXIT_FAIL if the validation layer reported anything, else rc. */
int cli_backend_close(ebm_backend *be, int rc);

/* Strict number parsing: the whole string must be a number in range. 0 ok, -1 not. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
/* An integer option's value: cli_parse_int, or "vkebm CMD: --NAME: expected LO..HI, got 'ARG'"
 * on stderr and EXIT_USAGE (for `if (cli_opt_int(...)) return EXIT_USAGE;`). */
int cli_opt_int(const char *cmd, const char *name, const char *arg, long lo, long hi, long *out);
int cli_parse_float(const char *s, double lo, double hi, double *out);

/* Seconds on the monotonic clock (for timing; differences only). */
double cli_now_s(void);

/* A bounded, printable copy of untrusted text for a one-line message: control bytes and broken
 * UTF-8 become '?', valid UTF-8 characters are kept whole (never split at the cut), and a
 * string that does not fit ends in "...". */
void cli_printable(char *out, size_t len, const char *s);
/* Progress of a long job on stderr: redrawn in place (at most ~10 Hz) when stderr is a
 * terminal, else one line every few seconds (nohup, pipes, CI), with the rate's ETA. */
typedef struct cli_progress {
  const char *cmd;
  int quiet, tty, drawn;
  double t0, last;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *cmd, int quiet);
/* "vkebm CMD: label: done/total, 12 s, ETA 30 s"; the first and last call always print. */
void cli_progress_update(cli_progress *p, const char *label, long done, long total);
/* Ends a redrawn line (a newline when one is pending). */
void cli_progress_end(cli_progress *p);

/* s as a JSON string ("...", with quotes, backslashes and control characters escaped). */
void cli_json_string(FILE *f, const char *s);

/* mkdir -p dir. 0, or -1 with errno. */
int cli_mkdir_p(const char *dir);

/* The device tensors of one Langevin image-step on a batch of B (demo and bench, cli_energy.c):
 * x images [B, C, R, R], c labels [B, L], e energies [B], de = 1 [B] (what the backward to the
 * input starts from), dx = dE/dx [B, C, R, R]. */
typedef struct cli_energy_io {
  ebm_buffer *x, *dx, *c, *e, *de;
  size_t nx, nc; /* floats in x (and dx), in c */
  int batch;
} cli_energy_io;
/* Allocates them for cfg and batch and sets de to ones. 0 ok, -1 out of memory (nothing held). */
int cli_energy_io_alloc(cli_energy_io *io, ebm_backend *be, const ebm_net_config *cfg, int batch);
void cli_energy_io_free(cli_energy_io *io, ebm_backend *be);
/* e = E(x, c). */
void cli_energy_forward(ebm_net *net, const cli_energy_io *io);
/* dx = dE/dx from the last forward (no parameter gradients). */
void cli_energy_backward(ebm_net *net, const cli_energy_io *io);

#endif
