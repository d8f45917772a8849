/* testutil.h: small helpers shared by the test executables (tests/test_*.c).
 * A test exits 0 on pass, 77 on skip (no Vulkan device), 1 on failure. */
#ifndef VKEBM_TESTUTIL_H
#define VKEBM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vkebm/backend.h"

extern int tu_failures;

#define TU_CHECK(cond, ...)                                                                    \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, "\n");                                                                   \
      tu_failures++;                                                                           \
    }                                                                                          \
  } while (0)

/* Exit code for main: 1 if any check failed, else 0. Prints a closing line. */
int tu_finish(const char *test_name);

/* Deterministic uniform floats in [lo, hi) from a seed (the project's counter-based RNG). */
void tu_fill_uniform(float *x, size_t n, uint32_t seed, float lo, float hi);

/* Compares got against want: passes when |got-want| <= atol + rtol*|want| for every element.
 * Prints the worst element (index, values, error) with label either way. Returns 1 on pass. */
int tu_compare(const char *label, const float *got, const float *want, size_t n, double atol,
               double rtol);

/* Backends for tests. tu_cpu_backend() exits 1 on failure. tu_vulkan_backend() exits 77 (skip)
 * when there is no Vulkan device; validation is on when VKEBM_VALIDATION=1 (CTest sets it). */
ebm_backend *tu_cpu_backend(void);
ebm_backend *tu_vulkan_backend(void);
/* Destroys the backend; fails the test when the validation layer reported anything. */
void tu_backend_done(ebm_backend *be);

#endif
