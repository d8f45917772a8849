#version 450
/* avgpool2_forward.comp: y[pl, i, j] = (x[pl,2i,2j] + x[pl,2i,2j+1] + x[pl,2i+1,2j] + x[pl,2i+1,2j+1]) / 4
 *   x: [planes = B*C, h, w]   y: [planes, h/2, w/2]   (h, w even)
 * Dispatch: vkb_grid_1d(planes * h/2 * w/2, 256), one output element per invocation. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_AVGPOOL2
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

void main() {
  uint i = global_index_1d(256u);
  uint oh = pc.h / 2u, ow = pc.w / 2u;
  if (i >= pc.planes * oh * ow) return;
  uint plane = i / (oh * ow), r = i % (oh * ow);
  uint row = r / ow, col = r % ow;
  uint base = BOFF(1) + plane * pc.h * pc.w + 2u * row * pc.w + 2u * col;
  float s = (x[base] + x[base + 1u]) + (x[base + pc.w] + x[base + pc.w + 1u]);
  y[BOFF(0) + i] = s * 0.25;
}
