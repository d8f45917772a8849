#version 450
/* langevin_update.comp: one Langevin step, chain b = k / cols, element i = k % cols
 *   x[b,i] = clip(x[b,i] - step_size * grad[b,i] + noise_std * normal(seed, step, chain0 + b, i),
 *                 lo, hi)
 *   x, grad: [rows, cols]; grad read only when flags has VKEBM_SAMPLER_HAS_GRAD; clip only when
 *   clip_lo < clip_hi. normal() is shared.h's counter RNG, the same bits as the CPU twin.
 * Dispatch: vkb_grid_1d(rows * cols, 256). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SAMPLER
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer G { float grad[]; };

void main() {
  uint k = global_index_1d(256u);
  if (k >= pc.rows * pc.cols) return;
  uint b = k / pc.cols, i = k - b * pc.cols;
  float v = x[BOFF(0) + k];
  if ((pc.flags & VKEBM_SAMPLER_HAS_GRAD) != 0u) v -= pc.step_size * grad[BOFF(1) + k];
  if (pc.noise_std != 0.0) v += pc.noise_std * vkebm_rng_normal(pc.seed, pc.step, pc.chain0 + b, i);
  if (pc.clip_lo < pc.clip_hi) v = min(max(v, pc.clip_lo), pc.clip_hi);
  x[BOFF(0) + k] = v;
}
