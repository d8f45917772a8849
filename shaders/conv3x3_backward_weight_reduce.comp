#version 450
/* conv3x3_backward_weight_reduce.comp: dw[k] += sum_{s < splits} partial[s*n + k], s in order
 * (the second pass of a split conv3x3_backward_weight; bitwise repeatable).
 *   dw: [n = Co*Ci*9]   partial: [splits, n]
 * Dispatch: vkb_grid_1d(n, 256), one weight per invocation. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SPLIT_SUM
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer DW { float dw[]; };
layout(std430, binding = 1) readonly buffer P { float part[]; };

void main() {
  uint k = global_index_1d(256u);
  if (k >= pc.n) return;
  float acc = 0.0;
  for (uint s = 0u; s < pc.splits; s++) acc += part[BOFF(1) + s * pc.n + k];
  dw[BOFF(0) + k] += acc;
}
