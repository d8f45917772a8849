/* testutil.c: see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/safetensors.h"
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

static float *tu_floats(size_t n) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  if (!x) {
    fprintf(stderr, "out of memory (%zu floats)\n", n);
    exit(1);
  }
  return x;
}

float *tu_random(size_t n, uint32_t seed) {
  float *x = tu_floats(n);
  tu_fill_uniform(x, n, seed, -1.0f, 1.0f);
  return x;
}

ebm_buffer *tu_upload_new(ebm_backend *be, const float *x, size_t n) {
  ebm_buffer *b = ebm_alloc(be, n);
  if (!b) {
    fprintf(stderr, "alloc failed (%zu floats)\n", n);
    exit(1);
  }
  TU_CHECK(ebm_upload(be, ebm_ref_of(b), x, n) == 0, "upload");
  return b;
}

float *tu_download_new(ebm_backend *be, ebm_buffer *b, size_t n) {
  float *x = tu_floats(n);
  TU_CHECK(ebm_download(be, x, ebm_ref_of(b), n) == 0, "download");
  return x;
}

double tu_composition_fd(ebm_composition *c, ebm_backend *be, ebm_buffer *xb, const float *x,
                         int B, int N, int b, int i, float h) {
  size_t n = (size_t)B * N;
  float *xs = tu_floats(n);
  double *Ep = malloc((size_t)B * sizeof *Ep), *Em = malloc((size_t)B * sizeof *Em);
  if (!Ep || !Em) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  char err[256];
  memcpy(xs, x, n * sizeof *xs);
  xs[(size_t)b * N + i] += h;
  ebm_upload(be, ebm_ref_of(xb), xs, n);
  ebm_composition_eval(c, ebm_ref_of(xb), Ep, EBM_NOREF, 1.0, err, sizeof err);
  memcpy(xs, x, n * sizeof *xs);
  xs[(size_t)b * N + i] -= h;
  ebm_upload(be, ebm_ref_of(xb), xs, n);
  ebm_composition_eval(c, ebm_ref_of(xb), Em, EBM_NOREF, 1.0, err, sizeof err);
  ebm_upload(be, ebm_ref_of(xb), x, n);
  double fd = (Ep[b] - Em[b]) / (2 * h);
  free(xs);
  free(Ep);
  free(Em);
  return fd;
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

#define GUARD_AFTER 5 /* guard floats after each tensor (tu_check_op) */

/* FNV-1a of the label: the seed of a case, so every case gets its own values and offset. */
static uint32_t label_seed(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

void tu_check_op(const char *label, ebm_backend *cpu, ebm_backend *vk, tu_op_fn fn,
                 const tu_tensor *ts, int nt, const int *s, double atol, double rtol) {
  ebm_buffer *bc[TU_MAX_TENSORS] = {0}, *bv[TU_MAX_TENSORS] = {0};
  ebm_ref rc[TU_MAX_TENSORS], rv[TU_MAX_TENSORS];
  float *init[TU_MAX_TENSORS] = {0}, *gotc[TU_MAX_TENSORS] = {0}, *gotv[TU_MAX_TENSORS] = {0},
        *again[TU_MAX_TENSORS] = {0};
  if (nt < 0 || nt > TU_MAX_TENSORS) {
    TU_CHECK(0, "%s: %d tensors (at most %d)", label, nt, TU_MAX_TENSORS);
    return;
  }
  for (int i = 0; i < TU_MAX_TENSORS; i++) rc[i] = rv[i] = EBM_NOREF;
  uint32_t seed = label_seed(label);
  const size_t lead = 3u + seed % 64u; /* the float offset of every tensor: 3..66 */
  for (int i = 0; i < nt; i++) {
    if (!ts[i].n) continue;
    size_t total = lead + ts[i].n + GUARD_AFTER;
    init[i] = malloc(total * sizeof(float));
    gotc[i] = malloc(total * sizeof(float));
    gotv[i] = malloc(total * sizeof(float));
    again[i] = malloc(total * sizeof(float));
    tu_fill_uniform(init[i], total, seed + 101u * (uint32_t)i, ts[i].lo, ts[i].hi);
    if (ts[i].init) memcpy(init[i] + lead, ts[i].init, ts[i].n * sizeof(float));
    bc[i] = ebm_alloc(cpu, total);
    bv[i] = ebm_alloc(vk, total);
    ebm_upload(cpu, ebm_ref_of(bc[i]), init[i], total);
    ebm_upload(vk, ebm_ref_of(bv[i]), init[i], total);
    rc[i] = ebm_at(ebm_ref_of(bc[i]), lead);
    rv[i] = ebm_at(ebm_ref_of(bv[i]), lead);
  }
  fn(cpu, rc, s);
  fn(vk, rv, s);
  for (int i = 0; i < nt; i++) {
    if (!ts[i].n) continue;
    size_t total = lead + ts[i].n + GUARD_AFTER;
    TU_CHECK(ebm_download(cpu, gotc[i], ebm_ref_of(bc[i]), total) == 0, "cpu download");
    TU_CHECK(ebm_download(vk, gotv[i], ebm_ref_of(bv[i]), total) == 0, "vulkan download");
    char name[160];
    snprintf(name, sizeof name, "%s %s", label, ts[i].name);
    if (ts[i].output)
      tu_compare(name, gotv[i] + lead, gotc[i] + lead, ts[i].n, atol, rtol);
    else
      TU_CHECK(!memcmp(gotv[i] + lead, init[i] + lead, ts[i].n * sizeof(float)),
               "%s: an input changed", name);
    const size_t end = lead + ts[i].n;
    TU_CHECK(!memcmp(gotv[i], init[i], lead * sizeof(float)) &&
                 !memcmp(gotv[i] + end, init[i] + end, GUARD_AFTER * sizeof(float)),
             "%s: write outside the tensor", name);
  }
  /* determinism: the same inputs again give the same bits */
  for (int i = 0; i < nt; i++)
    if (ts[i].n) ebm_upload(vk, ebm_ref_of(bv[i]), init[i], lead + ts[i].n + GUARD_AFTER);
  fn(vk, rv, s);
  for (int i = 0; i < nt; i++) {
    if (!ts[i].n) continue;
    size_t total = lead + ts[i].n + GUARD_AFTER;
    ebm_download(vk, again[i], ebm_ref_of(bv[i]), total);
    TU_CHECK(!memcmp(again[i], gotv[i], total * sizeof(float)), "%s %s: not bitwise repeatable",
             label, ts[i].name);
  }
  for (int i = 0; i < nt; i++) {
    ebm_free(cpu, bc[i]);
    ebm_free(vk, bv[i]);
    free(init[i]);
    free(gotc[i]);
    free(gotv[i]);
    free(again[i]);
  }
}

int tu_st_rewrite(const char *src, const char *dst, const char *name, size_t index, float value,
                  const char *meta_key, const char *meta_value) {
  st_file f;
  char err[512];
  if (st_read(&f, src, 0, err, sizeof err)) {
    fprintf(stderr, "tu_st_rewrite: %s\n", err);
    return -1;
  }
  st_writer *w = st_writer_new();
  int rc = w ? 0 : -1, changed = name == NULL;
  for (int i = 0; rc == 0 && i < f.nmeta; i++) {
    if (meta_key && !strcmp(f.meta[i].key, meta_key)) continue;
    rc = st_writer_meta(w, f.meta[i].key, f.meta[i].value);
  }
  if (rc == 0 && meta_key && meta_value) rc = st_writer_meta(w, meta_key, meta_value);
  for (int i = 0; rc == 0 && i < f.ntensors; i++) {
    const st_tensor *t = &f.tensors[i];
    float *copy = malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (!copy) {
      rc = -1;
      break;
    }
    memcpy(copy, t->data, t->numel * sizeof(float));
    if (name && !strcmp(t->name, name) && index < t->numel) {
      copy[index] = value;
      changed = 1;
    }
    rc = st_writer_add(w, t->name, t->shape, t->ndim, copy);
    free(copy);
  }
  if (rc == 0 && !changed) {
    fprintf(stderr, "tu_st_rewrite: %s has no element %zu of '%s'\n", src, index, name);
    rc = -1;
  }
  if (rc == 0 && st_writer_save(w, dst, err, sizeof err)) {
    fprintf(stderr, "tu_st_rewrite: %s\n", err);
    rc = -1;
  }
  st_writer_free(w);
  st_free(&f);
  return rc;
}

void tu_source_path(char *out, size_t len, const char *rel) {
  const char *data = getenv("VKEBM_TEST_DATA");
  char root[4096];
  snprintf(root, sizeof root, "%s", data ? data : ".");
  size_t rl = strlen(root);
  if (rl >= 11 && !strcmp(root + rl - 11, "/tests/data")) root[rl - 11] = 0;
  snprintf(out, len, "%s/%s", root, rel);
}

int tu_eval_score_text(ebm_judge *judge, const char *expr, const float *images, int n,
                       const ebm_eval_scoring *sc, ebm_eval_result *out,
                       const ebm_eval_detail *detail, char *err, size_t errlen) {
  expr_error perr;
  expr_node *t = expr_parse(expr, &perr);
  if (!t) {
    expr_error_format(expr, &perr, err, errlen);
    return -1;
  }
  int rc = ebm_eval_score(judge, t, images, n, sc, out, detail, err, errlen);
  expr_free(t);
  return rc;
}
