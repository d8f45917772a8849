#version 450
/* swish_backward.comp: dx[i] = dy[i] * (s + x*s*(1-s)),  s = sigmoid(x[i])
 * Dispatch: vkb_grid_1d(n, 256): groups of 256 along x, rows of groups along y. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_ELTWISE
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.n) return;
  float v = x[BOFF(2) + i];
  float s = 1.0 / (1.0 + exp(-v));
  dx[BOFF(0) + i] = dy[BOFF(1) + i] * (s + v * s * (1.0 - s));
}
