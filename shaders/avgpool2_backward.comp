#version 450
/* avgpool2_backward.comp: dx[pl, i, j] = dy[pl, i/2, j/2] / 4   (overwrites dx)
 *   dx: [planes = B*C, h, w]   dy: [planes, h/2, w/2]   (h, w: the input's size, even)
 * Dispatch: vkb_grid_1d(planes * h * w, 256), one input element per invocation. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_AVGPOOL2
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.planes * pc.h * pc.w) return;
  uint plane = i / (pc.h * pc.w), r = i % (pc.h * pc.w);
  uint row = r / pc.w, col = r % pc.w;
  uint oh = pc.h / 2u, ow = pc.w / 2u;
  dx[BOFF(0) + i] = dy[BOFF(1) + plane * oh * ow + (row / 2u) * ow + col / 2u] * 0.25;
}
