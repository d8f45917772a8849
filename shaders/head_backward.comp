#version 450
/* head_backward.comp: dx[b,ch,p] = de[b] * w[ch] / HW   (overwrites dx)
 *   dx: [B, C, HW]   de: [B]   w: [C]
 * Dispatch: vkb_grid_1d(B*C*HW, 256), one element per invocation. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_HEAD
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer DE { float de[]; };
layout(std430, binding = 2) readonly buffer W { float w[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.batch * pc.channels * pc.hw) return;
  uint b = i / (pc.channels * pc.hw), ch = (i / pc.hw) % pc.channels;
  dx[BOFF(0) + i] = de[BOFF(1) + b] * w[BOFF(2) + ch] / float(pc.hw);
}
