/* render.c: the CPU scene renderer, twin of shaders/scene_render.comp.
 *
 * Owns: the loop over images, rows and pixels (and its split across threads). The per-pixel
 * work is scn_shade_pixel from scene_shade.h, the same code the shader runs.
 *   images[n, 3, size, size] (CHW, [0, 1]),  packed[n, VKEBM_SCENE_FLOATS],  ids[n, size, size]
 * Each pixel is written by exactly one thread and depends only on its scene, so the result does
 * not depend on the thread count.
 */
#include <pthread.h>
#include <stdlib.h>

#include "vkebm/scene.h"

typedef struct render_job {
  float *images;
  const float *packed;
  uint8_t *ids;
  int size;
  size_t first_row, end_row; /* rows counted over the whole batch: image * size + y */
} render_job;

static void render_rows(const render_job *j) {
  const size_t size = (size_t)j->size, plane = size * size;
  for (size_t row = j->first_row; row < j->end_row; row++) {
    size_t img = row / size, y = row % size;
    const float *scn = j->packed + img * VKEBM_SCENE_FLOATS;
    float *out = j->images + img * 3 * plane;
    for (size_t x = 0; x < size; x++) {
      scn_v3 c = scn_shade_pixel(scn, (u32)x, (u32)y, (u32)size);
      out[y * size + x] = c.x;
      out[plane + y * size + x] = c.y;
      out[2 * plane + y * size + x] = c.z;
      if (j->ids) {
        i32 id = scn_pixel_id(scn, (u32)x, (u32)y, (u32)size);
        j->ids[img * plane + y * size + x] = id >= 0 ? (uint8_t)id : 255;
      }
    }
  }
}

static void *render_thread(void *arg) {
  render_rows(arg);
  return NULL;
}

void scene_render_cpu(float *images, const float *packed, int n, int size, uint8_t *ids,
                      int threads) {
  size_t rows = (size_t)n * (size_t)size;
  if (threads < 1) threads = 1;
  if (threads > 64) threads = 64;
  if ((size_t)threads > rows) threads = rows ? (int)rows : 1;
  render_job jobs[64];
  pthread_t tid[64];
  int started[64] = {0};
  for (int t = 0; t < threads; t++) {
    jobs[t] = (render_job){images, packed, ids, size, rows * (size_t)t / (size_t)threads,
                           rows * (size_t)(t + 1) / (size_t)threads};
    /* thread 0 is this one; a thread that cannot start is rendered here instead */
    if (t > 0 && pthread_create(&tid[t], NULL, render_thread, &jobs[t]) == 0) started[t] = 1;
  }
  render_rows(&jobs[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t]) pthread_join(tid[t], NULL);
    else render_rows(&jobs[t]);
  }
}
