/* fuzz_from.c: libFuzzer target for `vkebm sample --from FILE.png --explain`: the whole recipe
 * path of the CLI (PNG text chunks, each setting's parse and limits, the expression, the
 * models it names) in-process, on the cpu backend, from a temporary file. The CLI's main is
 * compiled as vkebm_cli_main. Built by -DVKEBM_FUZZ=ON (clang); run by tools/fuzz.sh (with
 * -close_fd_mask=3: the CLI's messages are not shown, crash reports are). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int vkebm_cli_main(int argc, char **argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_from.%ld.png", (long)getpid());
  FILE *o = fopen(path, "wb");
  if (!o) return 0;
  fwrite(data, 1, n, o);
  fclose(o);
  char *argv[] = {"vkebm", "sample", "--from", path, "--explain", "--backend", "cpu", "--quiet", NULL};
  int rc = vkebm_cli_main(8, argv);
  unlink(path);
  if (rc != 0 && rc != 1 && rc != 2) abort(); /* the exit codes the CLI promises */
  return 0;
}
