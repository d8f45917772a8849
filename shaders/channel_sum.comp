#version 450
/* channel_sum.comp: out[r] = scale * sum_p a[r*len + p] * (with_b ? b[r*len + p] : 1)
 *   a, b: [rows, len]   out: [rows]
 * Used for sum_p dy (cond_bias), sum_p dy*x (cond_scale), mean_p x (head).
 * Dispatch: one workgroup of 64 per row, rows split as x + 65535*y (vkb_grid_1d(rows*64, 64)).
 * Invocation t sums p = t, t+64, ... serially; then a fixed shared-memory tree: repeatable. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_CHANNEL_SUM
#include "push.h"
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer Bb { float bb[]; };

shared float partial[64];

void main() {
  uint row = gl_WorkGroupID.x + gl_NumWorkGroups.x * gl_WorkGroupID.y;
  uint t = gl_LocalInvocationID.x;
  float acc = 0.0;
  if (row < pc.rows) {
    uint base = row * pc.len;
    if (pc.with_b != 0u)
      for (uint p = t; p < pc.len; p += 64u) acc += a[BOFF(1) + base + p] * bb[BOFF(2) + base + p];
    else
      for (uint p = t; p < pc.len; p += 64u) acc += a[BOFF(1) + base + p];
  }
  partial[t] = acc;
  barrier();
  for (uint w = 32u; w > 0u; w >>= 1u) {
    if (t < w) partial[t] += partial[t + w];
    barrier();
  }
  if (t == 0u && row < pc.rows) o[BOFF(0) + row] = partial[0] * pc.scale;
}
