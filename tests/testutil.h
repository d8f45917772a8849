/* testutil.h: small helpers shared by the test executables (tests/test_*.c).
 * A test exits 0 on pass, 77 on skip (no Vulkan device), 1 on failure. */
#ifndef VKEBM_TESTUTIL_H
#define VKEBM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vkebm/backend.h"
#include "vkebm/compose.h"
#include "vkebm/eval.h"

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

/* out = the source tree's rel (e.g. "models/judge.safetensors"): CTest sets VKEBM_TEST_DATA to
 * <source>/tests/data (which need not exist), so the root is that minus "/tests/data"; "." when
 * unset. */
void tu_source_path(char *out, size_t len, const char *rel);

/* Deterministic uniform floats in [lo, hi) from a seed (the project's counter-based RNG). */
void tu_fill_uniform(float *x, size_t n, uint32_t seed, float lo, float hi);

/* malloc'd n floats, uniform in [-1, 1) from seed (never NULL: exits 1 when out of memory). */
float *tu_random(size_t n, uint32_t seed);
/* A new buffer of n floats holding x (exits 1 when it cannot be allocated; a failed upload fails
 * the test). */
ebm_buffer *tu_upload_new(ebm_backend *be, const float *x, size_t n);
/* The n floats of b in a malloc'd array (a failed download fails the test). */
float *tu_download_new(ebm_backend *be, ebm_buffer *b, size_t n);

/* Central finite difference of a composition's energy of chain b along element i of the batch
 * x[B * N]: (E_b(x + h e) - E_b(x - h e)) / 2h, evaluated through xb (left holding x). */
double tu_composition_fd(ebm_composition *c, ebm_backend *be, ebm_buffer *xb, const float *x,
                         int B, int N, int b, int i, float h);

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

/* ---- one op on both backends ------------------------------------------------------------------
 * tu_check_op runs fn on the cpu and the vulkan backend from identical random tensors and checks
 * what a shader must get right: outputs (ts[i].output) match the cpu twin within atol/rtol
 * (worst element printed), inputs stay bit-for-bit unchanged, nothing is written outside a
 * tensor, and a second vulkan run from the same inputs gives the same bits.
 * Each tensor sits at float offset 3..66 of its own buffer (chosen from the label: binding
 * remainders below any alignment up to 256 bytes, so push-constant offsets are exercised),
 * between guard floats. Outputs start from random values, so an op that accumulates where it
 * should overwrite (or the reverse) disagrees with the cpu backend. ts[i].n == 0 passes EBM_NOREF
 * for that tensor (an optional output left out). */
#define TU_MAX_TENSORS 10

/* Crafting hostile files: copies the safetensors file src to dst through the project's reader
 * and writer with element `index` of tensor `name` set to value (name NULL: an unchanged copy),
 * and metadata key meta_key set to meta_value (meta_key NULL: none changed; meta_value NULL:
 * the key removed). 0, or -1 with a line on stderr. */
int tu_st_rewrite(const char *src, const char *dst, const char *name, size_t index, float value,
                  const char *meta_key, const char *meta_value);

typedef struct tu_tensor {
  const char *name;
  size_t n;   /* 0: left out (EBM_NOREF) */
  int output; /* compared after the op; else an input that must not change */
  float lo, hi; /* its random values are uniform in [lo, hi) */
  const float *init; /* optional: n values to start from instead (e.g. valid packed scenes) */
} tu_tensor;

/* The op under test: t[i] is the ref of tensor i, s its shape arguments. */
typedef void (*tu_op_fn)(ebm_backend *be, const ebm_ref *t, const int *s);

void tu_check_op(const char *label, ebm_backend *cpu, ebm_backend *vk, tu_op_fn fn,
                 const tu_tensor *ts, int nt, const int *s, double atol, double rtol);

/* TU_CHECK_OP(cpu, vk, label, fn, shape, atol, rtol, tensors...): tu_check_op on a literal list. */
#define TU_CHECK_OP(cpu, vk, label, fn, shape, atol, rtol, ...)                                \
  do {                                                                                         \
    const tu_tensor ts_[] = {__VA_ARGS__};                                                     \
    tu_check_op(label, cpu, vk, fn, ts_, (int)(sizeof ts_ / sizeof ts_[0]), shape, atol, rtol); \
  } while (0)

/* ebm_eval_score of an expression given as text (the parse error, caret and all, in err). */
int tu_eval_score_text(ebm_judge *judge, const char *expr, const float *images, int n,
                       const ebm_eval_scoring *sc, ebm_eval_result *out,
                       const ebm_eval_detail *detail, char *err, size_t errlen);

#endif
