#version 450
/* cond_scale_forward.comp: y[b,ch,p] = x[b,ch,p] * s[b,ch],  s[b,ch] = sum_l c[b,l] G[l,ch] + CB[ch]
 *   x, y: [B, C, HW]   c: [B, L]   G: [L, C]   CB: [C]   (y may alias x)
 * Also the input gradient of cond_scale: dx = dy * s is this kernel with x := dy.
 * Dispatch: vkb_grid_1d(B*C*HW, 256), one element per invocation. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_COND
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Cl { float c[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };
layout(std430, binding = 4) readonly buffer CBias { float cb[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.batch * pc.channels * pc.hw) return;
  uint b = i / (pc.channels * pc.hw), ch = (i / pc.hw) % pc.channels;
  float s = 0.0;
  for (uint l = 0u; l < pc.labels; l++)
    s += c[BOFF(2) + b * pc.labels + l] * g[BOFF(3) + l * pc.channels + ch];
  s += cb[BOFF(4) + ch];
  y[BOFF(0) + i] = x[BOFF(1) + i] * s;
}
