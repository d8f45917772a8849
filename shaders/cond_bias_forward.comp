#version 450
/* cond_bias_forward.comp: y[b,ch,p] = x[b,ch,p] + sum_l c[b,l] * G[l,ch]
 *   x, y: [B, C, HW]   c: [B, L]   G: [L, C]   (y may alias x)
 * Dispatch: vkb_grid_1d(B*C*HW, 256), one element per invocation; the label sum runs over l
 * in order (L is small), so every element of a channel gets the same bias bits. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_COND
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Cl { float c[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.batch * pc.channels * pc.hw) return;
  uint b = i / (pc.channels * pc.hw), ch = (i / pc.hw) % pc.channels;
  float bias = 0.0;
  for (uint l = 0u; l < pc.labels; l++)
    bias += c[BOFF(2) + b * pc.labels + l] * g[BOFF(3) + l * pc.channels + ch];
  y[BOFF(0) + i] = x[BOFF(1) + i] + bias;
}
