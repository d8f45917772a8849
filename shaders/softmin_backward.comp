#version 450
/* softmin_backward.comp: the gradient of softmin_forward, times alpha
 *   de[j,b] = alpha * dv[b] * w[j,b],  w[j,b] = exp(-e[j,b]/t) / sum_i exp(-e[i,b]/t)
 *   de, e: [k, b]  dv: [b]   (de overwritten; w: the soft OR's weights)
 * m = max_i(-e[i,b]/t) is subtracted before exp; the sum over i runs in order.
 * Dispatch: vkb_grid_1d(b, 64), one invocation per chain. CPU twin: softmin_backward_cpu. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SOFTMIN
#include "push.h"
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer DE { float de[]; };
layout(std430, binding = 1) readonly buffer DV { float dv[]; };
layout(std430, binding = 2) readonly buffer E { float e[]; };

void main() {
  uint c = global_index_1d(64u);
  if (c >= pc.b) return;
  float m = uintBitsToFloat(0xff800000u), s = 0.0; /* -inf */
  for (uint j = 0u; j < pc.k; j++) m = max(m, -e[BOFF(2) + j * pc.b + c] / pc.t);
  for (uint j = 0u; j < pc.k; j++) s += exp(-e[BOFF(2) + j * pc.b + c] / pc.t - m);
  float f = pc.alpha * dv[BOFF(1) + c] / s;
  for (uint j = 0u; j < pc.k; j++)
    de[BOFF(0) + j * pc.b + c] = f * exp(-e[BOFF(2) + j * pc.b + c] / pc.t - m);
}
