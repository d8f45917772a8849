#version 450
/* add.comp: y[i] = a[i] + b[i]  (y may alias a or b)
 * Dispatch: vkb_grid_1d(n, 256): groups of 256 along x, rows of groups along y. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_ELTWISE
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.n) return;
  y[BOFF(0) + i] = a[BOFF(1) + i] + b[BOFF(2) + i];
}
