/* vulkan_sampler.c: the sampler and composition ops of include/vkebm/ops.def on the vulkan
 * backend, as dispatches of the shaders/langevin_*.comp and softmin_*.comp kernels (CPU twins:
 * cpu_sampler.c). Each function fills its push struct, lists its tensors in binding order and
 * picks the grid its shader's header describes. Reductions (energies, log q) run one workgroup per row with a
 * fixed tree, so results are bitwise repeatable on one device. */
#include <stdint.h>

#include "push.h"
#include "vulkan_impl.h"

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int dims_fit(long rows, long cols) {
  return rows > 0 && cols > 0 && (uint64_t)rows * (uint64_t)cols <= UINT32_MAX;
}

/* elementwise kernels over rows * cols items */
static void run_items(ebm_backend *be, vkb_kernel_id k, const vkb_arg *args, int nargs,
                      const vkebm_pc_sampler *pc) {
  uint32_t gx, gy;
  vkb_grid_1d((size_t)pc->rows * pc->cols, 256, &gx, &gy);
  if (gx) vkb_run(be, k, args, nargs, pc, (uint32_t)sizeof *pc, gx, gy, 1);
}

/* per-row reductions: one workgroup per row, a 2D grid when rows > 65535 */
static void run_rows(ebm_backend *be, vkb_kernel_id k, const vkb_arg *args, int nargs,
                     const vkebm_pc_sampler *pc) {
  uint32_t gx = pc->rows <= 65535u ? pc->rows : 65535u;
  uint32_t gy = (pc->rows + gx - 1) / gx;
  vkb_run(be, k, args, nargs, pc, (uint32_t)sizeof *pc, gx, gy, 1);
}

void vk_quadratic_energy(ebm_backend *be, ebm_tensor e, ebm_tensor x, ebm_tensor mu,
                         ebm_tensor prec, int n, int N, int rows_per_group) {
  if (!dims_fit(n, N) || rows_per_group <= 0) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)n, .cols = (uint32_t)N,
                         .rows_per_group = (uint32_t)rows_per_group};
  vkb_arg a[] = {e, x, mu, prec};
  run_rows(be, VKB_K_langevin_quadratic_energy, a, NARGS(a), &pc);
}

void vk_quadratic_energy_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dE, ebm_tensor x,
                                  ebm_tensor mu, ebm_tensor prec, int n, int N,
                                  int rows_per_group) {
  if (!dims_fit(n, N) || rows_per_group <= 0) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)n, .cols = (uint32_t)N,
                         .rows_per_group = (uint32_t)rows_per_group};
  vkb_arg a[] = {dx, dE, x, mu, prec};
  run_items(be, VKB_K_langevin_quadratic_energy_backward, a, NARGS(a), &pc);
}

void vk_langevin_update_at(ebm_backend *be, ebm_tensor x, ebm_tensor grad, int B, int N,
                           uint32_t chain0, uint32_t seed, uint32_t step, float step_size,
                           float noise_std, float clip_lo, float clip_hi) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N, .seed = seed, .step = step,
                         .flags = grad.ref.buf ? VKEBM_SAMPLER_HAS_GRAD : 0u,
                         .step_size = step_size, .noise_std = noise_std, .clip_lo = clip_lo,
                         .clip_hi = clip_hi, .chain0 = chain0};
  vkb_arg a[] = {x, grad};
  run_items(be, VKB_K_langevin_update, a, NARGS(a), &pc);
}

void vk_langevin_update(ebm_backend *be, ebm_tensor x, ebm_tensor grad, int B, int N,
                        uint32_t seed, uint32_t step, float step_size, float noise_std,
                        float clip_lo, float clip_hi) {
  vk_langevin_update_at(be, x, grad, B, N, 0, seed, step, step_size, noise_std, clip_lo, clip_hi);
}

void vk_mala_propose(ebm_backend *be, ebm_tensor xp, ebm_tensor x, ebm_tensor grad,
                     ebm_tensor tau, int B, int N, uint32_t seed, uint32_t step) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N, .seed = seed, .step = step};
  vkb_arg a[] = {xp, x, grad, tau};
  run_items(be, VKB_K_langevin_mala_propose, a, NARGS(a), &pc);
}

void vk_mala_log_q(ebm_backend *be, ebm_tensor out, ebm_tensor to, ebm_tensor from,
                   ebm_tensor grad_from, ebm_tensor tau, int B, int N) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N};
  vkb_arg a[] = {out, to, from, grad_from, tau};
  run_rows(be, VKB_K_langevin_mala_log_q, a, NARGS(a), &pc);
}

void vk_chain_select(ebm_backend *be, ebm_tensor x, ebm_tensor src, ebm_tensor mask, int B, int N) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N};
  vkb_arg a[] = {x, src, mask};
  run_items(be, VKB_K_langevin_chain_select, a, NARGS(a), &pc);
}

/* composition ops: one invocation per chain (shaders/softmin_*.comp) */
void vk_softmin_forward(ebm_backend *be, ebm_tensor v, ebm_tensor e, int K, int B, float T) {
  vkebm_pc_softmin pc = {.k = (uint32_t)K, .b = (uint32_t)B, .t = T};
  vkb_arg a[] = {v, e};
  uint32_t gx, gy;
  vkb_grid_1d((size_t)B, 64, &gx, &gy);
  if (gx) vkb_run(be, VKB_K_softmin_forward, a, NARGS(a), &pc, (uint32_t)sizeof pc, gx, gy, 1);
}

void vk_softmin_backward(ebm_backend *be, ebm_tensor de, ebm_tensor dv, ebm_tensor e, int K,
                         int B, float T, float alpha) {
  vkebm_pc_softmin pc = {.k = (uint32_t)K, .b = (uint32_t)B, .t = T, .alpha = alpha};
  vkb_arg a[] = {de, dv, e};
  uint32_t gx, gy;
  vkb_grid_1d((size_t)B, 64, &gx, &gy);
  if (gx) vkb_run(be, VKB_K_softmin_backward, a, NARGS(a), &pc, (uint32_t)sizeof pc, gx, gy, 1);
}
