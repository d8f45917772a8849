#version 450
/* softmin_forward.comp: the soft minimum of k operands per chain (a soft OR's energy)
 *   v[b] = -t log sum_j exp(-e[j,b] / t)        e: [k, b]  v: [b]
 * m = max_j(-e[j,b]/t) is subtracted before exp; the sum over j runs in order.
 * Dispatch: vkb_grid_1d(b, 64), one invocation per chain. CPU twin: softmin_forward_cpu. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SOFTMIN
#include "push.h"
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer V { float v[]; };
layout(std430, binding = 1) readonly buffer E { float e[]; };

void main() {
  uint c = global_index_1d(64u);
  if (c >= pc.b) return;
  float m = uintBitsToFloat(0xff800000u), s = 0.0; /* -inf */
  for (uint j = 0u; j < pc.k; j++) m = max(m, -e[BOFF(1) + j * pc.b + c] / pc.t);
  for (uint j = 0u; j < pc.k; j++) s += exp(-e[BOFF(1) + j * pc.b + c] / pc.t - m);
  v[BOFF(0) + c] = -pc.t * (m + log(s));
}
