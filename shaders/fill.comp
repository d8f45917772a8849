#version 450
/* fill.comp: y[i] = v for i < n.
 * Dispatch: vkb_grid_1d(n, 256): groups of 256 along x, rows of groups along y. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_FILL
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i < pc.n) y[BOFF(0) + i] = pc.value;
}
