/* testutil.c: see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

#include "vkebm/shared.h"

int tu_failures = 0;

int tu_finish(const char *test_name) {
  if (tu_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", test_name, tu_failures);
    return 1;
  }
  printf("%s: all checks passed\n", test_name);
  return 0;
}

void tu_fill_uniform(float *x, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * vkebm_rng_uniform(seed, 0, 0, (uint32_t)i);
}

int tu_compare(const char *label, const float *got, const float *want, size_t n, double atol,
               double rtol) {
  size_t worst = 0;
  double worst_excess = -INFINITY, worst_err = 0;
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]);
    double tol = atol + rtol * fabs((double)want[i]);
    if (!(err <= tol)) ok = 0; /* catches NaN */
    double excess = isnan(err) ? INFINITY : err - tol;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
      worst_err = err;
    }
  }
  if (n)
    fprintf(stderr, "  %-40s n=%zu worst [%zu] got %.9g want %.9g err %.3g %s\n", label, n, worst,
            got[worst], want[worst], worst_err, ok ? "ok" : "FAIL");
  if (!ok) tu_failures++;
  return ok;
}

ebm_backend *tu_cpu_backend(void) {
  ebm_backend_options o = {.kind = EBM_BACKEND_CPU};
  ebm_backend *be = NULL;
  char err[256];
  if (ebm_backend_create(&be, &o, err, sizeof err) != 0) {
    fprintf(stderr, "cpu backend: %s\n", err);
    exit(1);
  }
  return be;
}

ebm_backend *tu_vulkan_backend(void) {
  const char *v = getenv("VKEBM_VALIDATION");
  ebm_backend_options o = {.kind = EBM_BACKEND_VULKAN, .device_index = -1,
                           .validation = v && v[0] == '1', .verbose = 1};
  ebm_backend *be = NULL;
  char err[256];
  int rc = ebm_backend_create(&be, &o, err, sizeof err);
  if (rc == EBM_ERR_NO_DEVICE) {
    fprintf(stderr, "skip: %s\n", err);
    exit(77);
  }
  if (rc != 0) {
    fprintf(stderr, "vulkan backend: %s\n", err);
    exit(1);
  }
  return be;
}

void tu_backend_done(ebm_backend *be) {
  uint64_t n = ebm_backend_validation_errors(be);
  TU_CHECK(n == 0, "%llu validation message(s)", (unsigned long long)n);
  ebm_backend_destroy(be);
}
