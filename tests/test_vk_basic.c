/* test_vk_basic.c: the vulkan backend's plumbing: buffer round trips (aligned and odd float
 * offsets, a buffer past 128 MiB bound by explicit ranges), fill at odd offsets, ordering of
 * recorded work against uploads, submit-early when one command buffer holds more dispatches
 * than the descriptor pool, bitwise determinism of a reduction, and zero validation messages
 * (the layer is on under CTest). Skips (77) without a Vulkan device. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void round_trip(ebm_backend *be) {
  const size_t n = 1000;
  ebm_buffer *buf = ebm_alloc(be, n + 64);
  TU_CHECK(buf != NULL, "alloc");
  if (!buf) return;
  TU_CHECK(ebm_buffer_size(buf) == n + 64, "size %zu", ebm_buffer_size(buf));
  float *zero = malloc((n + 64) * sizeof *zero), *src = malloc(n * sizeof *src),
        *got = malloc(n * sizeof *got);
  /* fresh buffers are zero-filled */
  TU_CHECK(ebm_download(be, zero, ebm_ref_of(buf), n + 64) == 0, "download");
  int nonzero = 0;
  for (size_t i = 0; i < n + 64; i++) nonzero += zero[i] != 0.0f;
  TU_CHECK(nonzero == 0, "%d nonzero floats in a fresh buffer", nonzero);
  tu_fill_uniform(src, n, 11, -3, 3);
  for (size_t off = 0; off < 8; off++) {
    ebm_ref r = ebm_at(ebm_ref_of(buf), off * 7);
    TU_CHECK(ebm_upload(be, r, src, n) == 0, "upload at %zu", off * 7);
    memset(got, 0, n * sizeof *got);
    TU_CHECK(ebm_download(be, got, r, n) == 0, "download at %zu", off * 7);
    TU_CHECK(!memcmp(got, src, n * sizeof *got), "round trip at offset %zu differs", off * 7);
  }
  /* out of range transfers fail cleanly */
  TU_CHECK(ebm_upload(be, ebm_at(ebm_ref_of(buf), 100), src, n) != 0, "out-of-range upload accepted");
  free(zero);
  free(src);
  free(got);
  ebm_free(be, buf);
}

static void fill_offsets(ebm_backend *be) {
  const size_t n = 777;
  ebm_buffer *buf = ebm_alloc(be, 4 * n);
  float *got = malloc(4 * n * sizeof *got);
  ebm_fill(be, ebm_ref_of(buf), -1.0f, 4 * n);
  /* odd offsets: the shader sees the remainder below the binding alignment in push constants */
  ebm_fill(be, ebm_at(ebm_ref_of(buf), 3), 2.5f, n);
  ebm_fill(be, ebm_at(ebm_ref_of(buf), 3 + n + 1), 7.0f, 5);
  TU_CHECK(ebm_download(be, got, ebm_ref_of(buf), 4 * n) == 0, "download");
  int bad = 0;
  for (size_t i = 0; i < 4 * n; i++) {
    float want = -1.0f;
    if (i >= 3 && i < 3 + n) want = 2.5f;
    if (i >= 4 + n && i < 9 + n) want = 7.0f;
    if (got[i] != want) bad++;
  }
  TU_CHECK(bad == 0, "%d wrong floats after fills at odd offsets", bad);
  free(got);
  ebm_free(be, buf);
}

/* A buffer over 128 MiB: bindings use explicit ranges, so tensors past the first 128 MiB work. */
static void large_offsets(ebm_backend *be) {
  const size_t n = (size_t)40 << 20; /* 160 MiB of floats */
  ebm_buffer *buf = ebm_alloc(be, n);
  TU_CHECK(buf != NULL, "alloc 160 MiB");
  if (!buf) return;
  size_t off = n - 1000 - 3;
  float src[1000], got[1000], out[1];
  tu_fill_uniform(src, 1000, 5, -1, 1);
  TU_CHECK(ebm_upload(be, ebm_at(ebm_ref_of(buf), off), src, 1000) == 0, "upload");
  ebm_scale(be, ebm_at(ebm_ref_of(buf), off), 2.0f, ebm_at(ebm_ref_of(buf), off), 1000);
  ebm_sumsq(be, ebm_at(ebm_ref_of(buf), 1), ebm_at(ebm_ref_of(buf), off), 1000);
  TU_CHECK(ebm_download(be, got, ebm_at(ebm_ref_of(buf), off), 1000) == 0, "download");
  TU_CHECK(ebm_download(be, out, ebm_at(ebm_ref_of(buf), 1), 1) == 0, "download");
  int bad = 0;
  double ss = 0;
  for (int i = 0; i < 1000; i++) {
    bad += got[i] != 2.0f * src[i];
    ss += (double)got[i] * got[i];
  }
  TU_CHECK(bad == 0, "%d wrong floats at offset %zu", bad, off);
  tu_compare("sumsq at a 160 MiB offset", out, (float[]){(float)ss}, 1, 1e-4, 1e-5);
  ebm_free(be, buf);
}

/* Recorded work is ordered against uploads and downloads; more dispatches than one descriptor
 * pool holds are recorded (the pool fills, vkx submits early and continues). */
static void ordering(ebm_backend *be) {
  const size_t n = 300;
  ebm_buffer *buf = ebm_alloc(be, n);
  float x[300], got[300];
  for (size_t i = 0; i < n; i++) x[i] = (float)i;
  ebm_buffer *ones = ebm_alloc(be, n);
  ebm_upload(be, ebm_ref_of(buf), x, n);
  ebm_fill(be, ebm_ref_of(ones), 1.0f, n);
  for (int k = 0; k < 2500; k++) ebm_axpy(be, ebm_ref_of(buf), 1.0f, ebm_ref_of(ones), n);
  TU_CHECK(ebm_download(be, got, ebm_ref_of(buf), n) == 0, "download");
  int wrong = 0;
  for (size_t i = 0; i < n; i++) wrong += got[i] != (float)i + 2500.0f;
  TU_CHECK(wrong == 0, "%d wrong floats after 2501 dependent dispatches", wrong);
  ebm_free(be, ones);
  for (int k = 0; k < 2100; k++) ebm_fill(be, ebm_at(ebm_ref_of(buf), (size_t)k % n), (float)k, 1);
  TU_CHECK(ebm_download(be, got, ebm_ref_of(buf), n) == 0, "download");
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    /* the last k with k % n == i */
    size_t last = i + n * ((2099 - i) / n);
    bad += got[i] != (float)last;
  }
  TU_CHECK(bad == 0, "%d wrong floats after 4601 recorded dispatches", bad);
  /* an upload after recorded work waits for it and then overwrites */
  ebm_fill(be, ebm_ref_of(buf), 9.0f, n);
  ebm_upload(be, ebm_ref_of(buf), x, 10);
  TU_CHECK(ebm_download(be, got, ebm_ref_of(buf), n) == 0, "download");
  TU_CHECK(got[5] == 5.0f && got[10] == 9.0f, "upload ordering: got %g, %g", got[5], got[10]);
  ebm_free(be, buf);
}

static void determinism(ebm_backend *be) {
  const size_t n = 3 * 4096 * 5 + 17; /* several chunks: the two-pass reduction */
  float *x = malloc(n * sizeof *x);
  tu_fill_uniform(x, n, 77, -2, 2);
  ebm_buffer *buf = ebm_alloc(be, n + 8);
  ebm_upload(be, ebm_at(ebm_ref_of(buf), 5), x, n);
  float a[1], b[1];
  ebm_sumsq(be, ebm_ref_of(buf), ebm_at(ebm_ref_of(buf), 5), n);
  ebm_download(be, a, ebm_ref_of(buf), 1);
  ebm_sumsq(be, ebm_ref_of(buf), ebm_at(ebm_ref_of(buf), 5), n);
  ebm_download(be, b, ebm_ref_of(buf), 1);
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
  TU_CHECK(!memcmp(a, b, sizeof a), "sumsq differs run to run: %.9g vs %.9g", a[0], b[0]);
  tu_compare("sumsq two-pass vs double", a, (float[]){(float)ss}, 1, 1e-3, 1e-5);
  free(x);
  ebm_free(be, buf);
}

/* An op whose single image exceeds a binding's range fails cleanly: the next sync reports it,
 * and the backend keeps working afterwards. */
static void too_large(void) {
  setenv("VKEBM_MAX_BINDING_FLOATS", "4096", 1);
  ebm_backend *be = tu_vulkan_backend();
  unsetenv("VKEBM_MAX_BINDING_FLOATS");
  ebm_buffer *x = ebm_alloc(be, 2 * 64 * 64), *y = ebm_alloc(be, 2 * 64 * 64),
             *w = ebm_alloc(be, 2 * 2 * 9);
  ebm_conv3x3_forward(be, ebm_ref_of(y), ebm_ref_of(x), ebm_ref_of(w), 1, 2, 2, 64, 64);
  TU_CHECK(ebm_sync(be) != 0, "a conv over a too-large image did not report failure");
  ebm_fill(be, ebm_ref_of(y), 1.0f, 10);
  float got[10];
  TU_CHECK(ebm_download(be, got, ebm_ref_of(y), 10) == 0 && got[9] == 1.0f,
           "the backend does not recover after a failed op");
  ebm_free(be, x);
  ebm_free(be, y);
  ebm_free(be, w);
  tu_backend_done(be);
}

int main(void) {
  ebm_backend *be = tu_vulkan_backend();
  TU_CHECK(ebm_backend_kind_of(be) == EBM_BACKEND_VULKAN, "kind");
  fprintf(stderr, "  describe: %s\n", ebm_backend_describe(be));
  round_trip(be);
  fill_offsets(be);
  large_offsets(be);
  ordering(be);
  determinism(be);
  TU_CHECK(ebm_sync(be) == 0, "sync");
  tu_backend_done(be);
  too_large();
  /* the discrete-GPU memory path: device-local buffers, zero fill by transfer, staging copies
   * (a 20 MiB transfer crosses the 16 MiB staging buffer) */
  setenv("VKEBM_FORCE_STAGING", "1", 1);
  be = tu_vulkan_backend();
  TU_CHECK(strstr(ebm_backend_describe(be), "staged") != NULL, "staging not in use: %s",
           ebm_backend_describe(be));
  round_trip(be);
  fill_offsets(be);
  large_offsets(be);
  ordering(be);
  determinism(be);
  {
    const size_t n = 5u << 20;
    float *src = malloc(n * sizeof *src), *got = malloc(n * sizeof *got);
    tu_fill_uniform(src, n, 99, -1, 1);
    ebm_buffer *buf = ebm_alloc(be, n + 1);
    TU_CHECK(ebm_upload(be, ebm_at(ebm_ref_of(buf), 1), src, n) == 0, "staged upload");
    TU_CHECK(ebm_download(be, got, ebm_at(ebm_ref_of(buf), 1), n) == 0, "staged download");
    TU_CHECK(!memcmp(src, got, n * sizeof *got), "20 MiB staged round trip differs");
    ebm_free(be, buf);
    free(src);
    free(got);
  }
  tu_backend_done(be);
  return tu_finish("test_vk_basic");
}
