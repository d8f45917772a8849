#version 450
/* langevin_mala_propose.comp: MALA proposal with a step per chain
 *   xp[b,i] = x[b,i] - tau[b] * grad[b,i] + sqrt(2 tau[b]) * normal(seed, step, b, i)
 *   xp, x, grad: [rows, cols]  tau: [rows]
 * Dispatch: vkb_grid_1d(rows * cols, 256). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SAMPLER
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer XP { float xp[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer G { float grad[]; };
layout(std430, binding = 3) readonly buffer Tau { float tau[]; };

void main() {
  uint k = global_index_1d(256u);
  if (k >= pc.rows * pc.cols) return;
  uint b = k / pc.cols, i = k - b * pc.cols;
  float t = tau[BOFF(3) + b];
  xp[BOFF(0) + k] = x[BOFF(1) + k] - t * grad[BOFF(2) + k] +
                    sqrt(2.0 * t) * vkebm_rng_normal(pc.seed, pc.step, b, i);
}
