#version 450
/* adam_step.comp: one Adam step with the paper's per-element clip (CPU twin: adam_step_cpu in
 * src/backend/cpu_optim.c, same float operations in the same order):
 *   g = grad_scale * grads[i];  when clip: g = clamp(g, -(3 sqrt(v[i]/bc2_prev) + 0.1), +...)
 *   m = beta1 m + (1-beta1) g;  v = beta2 v + (1-beta2) g^2
 *   p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
 * Bindings: 0 params, 1 grads (read), 2 m, 3 v; all [n].
 * Dispatch: vkb_grid_1d(n, 256): groups of 256 along x, rows of groups along y. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_ADAM_STEP
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer P { float params[]; };
layout(std430, binding = 1) readonly buffer G { float grads[]; };
layout(std430, binding = 2) buffer M { float m[]; };
layout(std430, binding = 3) buffer V { float v[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.n) return;
  float g = grads[BOFF(1) + i] * pc.grad_scale;
  float vold = v[BOFF(3) + i];
  if (pc.clip != 0u) {
    float vh_prev = pc.bc2_prev > 0.0 ? vold / pc.bc2_prev : 0.0;
    float bound = 3.0 * sqrt(vh_prev) + 0.1;
    g = min(max(g, -bound), bound);
  }
  precise float mi = pc.beta1 * m[BOFF(2) + i] + (1.0 - pc.beta1) * g;
  precise float vi = pc.beta2 * vold + (1.0 - pc.beta2) * (g * g);
  m[BOFF(2) + i] = mi;
  v[BOFF(3) + i] = vi;
  float mh = mi / pc.bc1;
  float vh = vi / pc.bc2;
  precise float p = params[BOFF(0) + i] - pc.lr * mh / (sqrt(vh) + pc.eps);
  params[BOFF(0) + i] = p;
}
