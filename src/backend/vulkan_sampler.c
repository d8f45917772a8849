/* vulkan_sampler.c: the sampler ops of include/vkebm/backend.h on the vulkan backend, as
 * dispatches of the shaders/langevin_*.comp kernels (CPU twins: cpu_sampler.c). Each function
 * fills the shared sampler push struct, lists its tensors in binding order and picks the grid
 * its shader's header describes. Reductions (energies, log q) run one workgroup per row with a
 * fixed tree, so results are bitwise repeatable on one device. */
#include <stdint.h>

#include "vkebm/push.h"
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

void vkb_quadratic_energy(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref mu, ebm_ref prec, int n,
                          int N, int rows_per_group) {
  if (!dims_fit(n, N) || rows_per_group <= 0) return;
  size_t groups = (size_t)(n + rows_per_group - 1) / rows_per_group;
  vkebm_pc_sampler pc = {.rows = (uint32_t)n, .cols = (uint32_t)N,
                         .rows_per_group = (uint32_t)rows_per_group};
  vkb_arg a[] = {VKB_ARG(e, (size_t)n), VKB_ARG(x, (size_t)n * N), VKB_ARG(mu, groups * N),
                 VKB_ARG(prec, groups * N)};
  run_rows(be, VKB_K_langevin_quadratic_energy, a, NARGS(a), &pc);
}

void vkb_quadratic_energy_backward(ebm_backend *be, ebm_ref dx, ebm_ref dE, ebm_ref x, ebm_ref mu,
                                   ebm_ref prec, int n, int N, int rows_per_group) {
  if (!dims_fit(n, N) || rows_per_group <= 0) return;
  size_t groups = (size_t)(n + rows_per_group - 1) / rows_per_group;
  vkebm_pc_sampler pc = {.rows = (uint32_t)n, .cols = (uint32_t)N,
                         .rows_per_group = (uint32_t)rows_per_group};
  vkb_arg a[] = {VKB_ARG(dx, (size_t)n * N), VKB_ARG(dE, (size_t)n), VKB_ARG(x, (size_t)n * N),
                 VKB_ARG(mu, groups * N), VKB_ARG(prec, groups * N)};
  run_items(be, VKB_K_langevin_quadratic_energy_backward, a, NARGS(a), &pc);
}

void vkb_langevin_update(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N, uint32_t chain0,
                         uint32_t seed,
                         uint32_t step, float step_size, float noise_std, float clip_lo,
                         float clip_hi) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N, .seed = seed, .step = step,
                         .flags = grad.buf ? VKEBM_SAMPLER_HAS_GRAD : 0u,
                         .step_size = step_size, .noise_std = noise_std, .clip_lo = clip_lo,
                         .clip_hi = clip_hi, .chain0 = chain0};
  vkb_arg a[] = {VKB_ARG(x, (size_t)B * N), VKB_ARG(grad, (size_t)B * N)};
  run_items(be, VKB_K_langevin_update, a, NARGS(a), &pc);
}

void vkb_mala_propose(ebm_backend *be, ebm_ref xp, ebm_ref x, ebm_ref grad, ebm_ref tau, int B,
                      int N, uint32_t seed, uint32_t step) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N, .seed = seed, .step = step};
  vkb_arg a[] = {VKB_ARG(xp, (size_t)B * N), VKB_ARG(x, (size_t)B * N),
                 VKB_ARG(grad, (size_t)B * N), VKB_ARG(tau, (size_t)B)};
  run_items(be, VKB_K_langevin_mala_propose, a, NARGS(a), &pc);
}

void vkb_mala_log_q(ebm_backend *be, ebm_ref out, ebm_ref to, ebm_ref from, ebm_ref grad_from,
                    ebm_ref tau, int B, int N) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N};
  vkb_arg a[] = {VKB_ARG(out, (size_t)B), VKB_ARG(to, (size_t)B * N),
                 VKB_ARG(from, (size_t)B * N), VKB_ARG(grad_from, (size_t)B * N),
                 VKB_ARG(tau, (size_t)B)};
  run_rows(be, VKB_K_langevin_mala_log_q, a, NARGS(a), &pc);
}

void vkb_chain_select(ebm_backend *be, ebm_ref x, ebm_ref src, ebm_ref mask, int B, int N) {
  if (!dims_fit(B, N)) return;
  vkebm_pc_sampler pc = {.rows = (uint32_t)B, .cols = (uint32_t)N};
  vkb_arg a[] = {VKB_ARG(x, (size_t)B * N), VKB_ARG(src, (size_t)B * N),
                 VKB_ARG(mask, (size_t)B)};
  run_items(be, VKB_K_langevin_chain_select, a, NARGS(a), &pc);
}
