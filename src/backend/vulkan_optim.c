/* vulkan_optim.c: the vulkan backend's optimizer ops: ebm_adam_step as one dispatch of
 * shaders/adam_step.comp (kernel adam_step in vulkan_kernels.def). The push constants are
 * packed by adam_push_from_params (cpu_optim.c), the same function the CPU twin uses.
 */
#include "push.h"
#include "vulkan_impl.h"

void vk_adam_step(ebm_backend *be, ebm_tensor params, ebm_tensor grads, ebm_tensor m, ebm_tensor v,
                  size_t n, const ebm_adam_params *hp) {
  if (!n) return; /* n < 2^32: backend.c checked */
  vkebm_pc_adam_step pc;
  adam_push_from_params(hp, n, &pc);
  vkb_arg args[] = {params, grads, m, v};
  uint32_t gx, gy;
  vkb_grid_1d(n, 256, &gx, &gy);
  vkb_run(be, VKB_K_adam_step, args, 4, &pc, sizeof pc, gx, gy, 1);
}
