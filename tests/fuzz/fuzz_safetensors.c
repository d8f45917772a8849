/* fuzz_safetensors.c: libFuzzer target for the safetensors reader (st_parse: header length, JSON
 * header, entries, tiling, checksum, finite values) and, when a file parses as a vkebm model,
 * the model metadata and tensor checks (ebm_model_check, through a temporary file). Built by
 * -DVKEBM_FUZZ=ON (clang); run by tools/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkebm/model.h"
#include "vkebm/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  st_file f;
  char err[512];
  if (st_parse(&f, data, n, 1, err, sizeof err) != 0) {
    if (!memchr(err, '\n', strlen(err)) && err[0]) return 0; /* one line, as promised */
    abort();
  }
  for (int i = 0; i < f.ntensors; i++) /* every tensor lies inside the data */
    if (f.tensors[i].numel && (const char *)f.tensors[i].data + 4 * f.tensors[i].numel >
                                  (const char *)f.blob + f.blob_size)
      abort();
  const char *fmt = st_meta_get(&f, "format");
  int model = fmt && !strcmp(fmt, EBM_MODEL_FORMAT);
  st_free(&f);
  if (model) { /* the model checks read a file: one per process, rewritten each time */
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_safetensors.%ld", (long)getpid());
    FILE *o = fopen(path, "wb");
    if (!o) return 0;
    fwrite(data, 1, n, o);
    fclose(o);
    ebm_model_info info;
    (void)ebm_model_check(path, &info, err, sizeof err);
    unlink(path);
  }
  return 0;
}
