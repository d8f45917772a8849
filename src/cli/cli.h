/* cli.h: helpers shared by the subcommands (src/cli/cmd_*.c). The CLI is a thin consumer of the
 * library: parse flags, call the library, print. Exit codes: 0 ok, 1 runtime failure, 2 usage
 * error, 77 no usable Vulkan device, 130 interrupted. */
#ifndef VKEBM_CLI_H
#define VKEBM_CLI_H

#include "vkebm/backend.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NO_DEVICE = 77, EXIT_INTERRUPTED = 130 };

#define CMD(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef CMD

/* Prints "vkebm CMD: message" on stderr and returns EXIT_USAGE (for `return cli_usage(...)`). */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "vkebm CMD: message" on stderr and returns EXIT_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
int cli_parse_float(const char *s, double lo, double hi, double *out);

#endif
