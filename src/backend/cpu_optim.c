/* cpu_optim.c: the optimizer ops in plain C: Adam with the paper's per-element clip.
 *
 * Owns adam_step_cpu (the twin of shaders/adam_step.comp; tests/test_train.c checks it against
 * the closed form, tests/test_vk_train.c against the shader) and the push-constant packing both
 * sides share (so the shader and the twin see the same rounded float constants). The cpu
 * backend's cpu_adam_step (cpu.c) splits a step over its threads with adam_step_cpu_range.
 */
#include <math.h>

#include "backend_impl.h"
#include "push.h"

void adam_push_from_params(const ebm_adam_params *hp, size_t n, void *push) {
  vkebm_pc_adam_step *pc = push;
  const double t = (double)hp->t;
  pc->n = (u32)n;
  pc->clip = hp->clip ? 1u : 0u;
  pc->lr = hp->lr;
  pc->beta1 = hp->beta1;
  pc->beta2 = hp->beta2;
  pc->eps = hp->eps;
  pc->bc1 = (float)(1.0 - pow((double)hp->beta1, t));
  pc->bc2 = (float)(1.0 - pow((double)hp->beta2, t));
  pc->bc2_prev = hp->t > 1 ? (float)(1.0 - pow((double)hp->beta2, t - 1.0)) : 0.0f;
  pc->grad_scale = hp->grad_scale;
}

/* Elements [begin, end) of params, grads, m, v. Same float operations, in the same order, as
 * adam_step.comp. */
static void adam_step_push(float *params, const float *grads, float *m, float *v, size_t begin,
                           size_t end, const vkebm_pc_adam_step *pc) {
  for (size_t i = begin; i < end; i++) {
    float g = grads[i] * pc->grad_scale;
    if (pc->clip) {
      const float vh_prev = pc->bc2_prev > 0.0f ? v[i] / pc->bc2_prev : 0.0f;
      const float bound = 3.0f * sqrtf(vh_prev) + 0.1f;
      g = fminf(fmaxf(g, -bound), bound);
    }
    const float mi = pc->beta1 * m[i] + (1.0f - pc->beta1) * g;
    const float vi = pc->beta2 * v[i] + (1.0f - pc->beta2) * (g * g);
    m[i] = mi;
    v[i] = vi;
    const float mh = mi / pc->bc1;
    const float vh = vi / pc->bc2;
    params[i] = params[i] - pc->lr * mh / (sqrtf(vh) + pc->eps);
  }
}

void adam_step_cpu_range(float *params, const float *grads, float *m, float *v, size_t begin,
                         size_t end, const ebm_adam_params *hp) {
  vkebm_pc_adam_step pc;
  adam_push_from_params(hp, end, &pc);
  adam_step_push(params, grads, m, v, begin, end, &pc);
}

void adam_step_cpu(float *params, const float *grads, float *m, float *v, size_t n,
                   const ebm_adam_params *hp) {
  adam_step_cpu_range(params, grads, m, v, 0, n, hp);
}
