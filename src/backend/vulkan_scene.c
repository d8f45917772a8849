/* vulkan_scene.c: the vulkan backend's scene op: ebm_scene_render as dispatches of
 * shaders/scene_render.comp (kernel scene_render in vulkan_kernels.def).
 *   images[n, 3, size, size]  scenes[n, VKEBM_SCENE_FLOATS]
 * Batches are split so one dispatch stays within 65535 groups along z (the spec minimum of
 * maxComputeWorkGroupCount) and its image range within 128 MiB (maxStorageBufferRange).
 * The CPU twin is scene_render_cpu (src/scene/render.c); tests/test_vk_scene.c compares them.
 */

#include "push.h"
#include "vkebm/scene.h"
#include "vulkan_impl.h"

void vk_scene_render(ebm_backend *be, ebm_tensor images, ebm_tensor scenes, int n, int size) {
  /* size in SCENE_MIN_RENDER_SIZE..SCENE_MAX_RENDER_SIZE when n > 0: backend.c checked */
  const size_t per_image = 3 * (size_t)size * (size_t)size;
  const size_t range_floats = (size_t)30 << 20; /* 120 MiB: room for the binding's alignment */
  size_t chunk = range_floats / per_image;
  if (chunk > 65535) chunk = 65535;
  uint32_t groups = (uint32_t)(size + 7) / 8;
  for (size_t first = 0; first < (size_t)n; first += chunk) {
    size_t nb = (size_t)n - first < chunk ? (size_t)n - first : chunk;
    vkebm_pc_scene_render pc = {.n = (uint32_t)nb, .size = (uint32_t)size};
    vkb_arg args[] = {VKB_ARG(ebm_at(images.ref, first * per_image), nb * per_image),
                      VKB_ARG(ebm_at(scenes.ref, first * VKEBM_SCENE_FLOATS), nb * VKEBM_SCENE_FLOATS)};
    vkb_run(be, VKB_K_scene_render, args, 2, &pc, sizeof pc, groups, groups, (uint32_t)nb);
  }
}
