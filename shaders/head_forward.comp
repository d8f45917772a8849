#version 450
/* head_forward.comp: e[b] = sum_ch w[ch] * M[b,ch] + bias[0]
 *   M: [B, C] = mean_p x[b,ch,p] (channel_sum with scale 1/HW)   w: [C]   e: [B]
 * Dispatch: vkb_grid_1d(B, 64), one invocation per batch element, serial over ch. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_HEAD
#include "push.h"
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer E { float e[]; };
layout(std430, binding = 1) readonly buffer M { float m[]; };
layout(std430, binding = 2) readonly buffer W { float w[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

void main() {
  uint b = global_index_1d(64u);
  if (b >= pc.batch) return;
  float acc = 0.0;
  for (uint ch = 0u; ch < pc.channels; ch++) acc += w[BOFF(2) + ch] * m[BOFF(1) + b * pc.channels + ch];
  e[BOFF(0) + b] = acc + bias[BOFF(3)];
}
