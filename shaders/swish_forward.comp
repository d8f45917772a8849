#version 450
/* swish_forward.comp: y[i] = x[i] * sigmoid(x[i])
 * Dispatch: vkb_grid_1d(n, 256): groups of 256 along x, rows of groups along y. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_ELTWISE
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.n) return;
  float v = x[BOFF(1) + i];
  y[BOFF(0) + i] = v / (1.0 + exp(-v));
}
