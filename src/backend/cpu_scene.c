/* cpu_scene.c: the cpu backend's scene op (see ebm_scene_render in backend.h).
 *
 * Owns: cpu_scene_render, which reads the packed scenes out of the backend's buffer, renders
 * them with the CPU renderer (src/scene/render.c, the shader's twin) on all cores, and writes
 * the images back. On the cpu backend download and upload are plain copies, a few percent of
 * the ray-casting time, and this keeps the op independent of the backend's buffer struct.
 *   images[n, 3, size, size]  scenes[n, VKEBM_SCENE_FLOATS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend_impl.h"
#include "vkebm/scene.h"

void cpu_scene_render(ebm_backend *be, ebm_ref images, ebm_ref scenes, int n, int size) {
  /* n > 0 and size in SCENE_MIN_RENDER_SIZE..SCENE_MAX_RENDER_SIZE: ebm_scene_render checked */
  size_t nscn = (size_t)n * VKEBM_SCENE_FLOATS, nimg = (size_t)n * 3 * (size_t)size * (size_t)size;
  float *packed = malloc(nscn * sizeof *packed), *img = malloc(nimg * sizeof *img);
  if (!packed || !img) {
    fprintf(stderr, "vkebm: ebm_scene_render: out of memory for %d scenes\n", n);
    free(packed);
    free(img);
    return;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (ebm_download(be, packed, scenes, nscn) == 0) {
    scene_render_cpu(img, packed, n, size, NULL, cores > 0 ? (int)cores : 1);
    ebm_upload(be, images, img, nimg);
  }
  free(packed);
  free(img);
}
