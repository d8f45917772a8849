/* fuzz_checkpoint.c: libFuzzer target for the checkpoint loader (ebm_trainer_create with a
 * resume file: safetensors, model metadata, train.state's fields, the extras' sizes, the replay
 * buffer's packing) on the cpu backend. The fuzz build defines
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which turns the data checksum's refusal off so that
 * mutated tensor values (train.state) reach the checks behind it. Built by -DVKEBM_FUZZ=ON
 * (clang); run by tools/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vkebm/backend.h"
#include "vkebm/train.h"

static ebm_backend *be;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  ebm_backend_options opt = {.kind = EBM_BACKEND_CPU, .threads = 1};
  char err[256];
  if (ebm_backend_create(&be, &opt, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_checkpoint: cpu backend: %s\n", err);
    exit(1);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_checkpoint.%ld", (long)getpid());
  FILE *o = fopen(path, "wb");
  if (!o) return 0;
  fwrite(data, 1, n, o);
  fclose(o);
  ebm_trainer *tr = NULL;
  char err[1024];
  if (ebm_trainer_create(&tr, be, NULL, path, NULL, 0, err, sizeof err) == 0) {
    ebm_train_stats st; /* a loaded checkpoint must survive a step (SIGFPE / SIGSEGV before) */
    (void)ebm_trainer_step(tr, &st, err, sizeof err);
    ebm_trainer_destroy(tr);
  }
  unlink(path);
  return 0;
}
