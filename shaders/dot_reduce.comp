#version 450
/* dot_reduce.comp: out[g] = sum_{i in chunk g} term(i), term = a[i]*b[i] (VKEBM_DOT_AB),
 * a[i]^2 (VKEBM_DOT_AA) or a[i] (VKEBM_DOT_A); chunk g = [g*chunk, min(n, (g+1)*chunk)).
 * sumsq and the spectral-norm gradient's <dw_sn, w_sn> use it: one pass when n <= chunk, else a
 * pass of partial sums and a second pass over them. The chunking depends on n only.
 * Dispatch: one workgroup of 256 per chunk (gx = number of chunks). Invocation t sums the
 * chunk's elements t, t+256, ... serially, then a fixed shared-memory tree: bitwise repeatable. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_DOT
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer Bb { float bb[]; };

shared float partial[256];

void main() {
  uint g = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
  uint begin = g * pc.chunk, end = min(pc.n, begin + pc.chunk);
  float acc = 0.0;
  for (uint i = begin + t; i < end; i += 256u) {
    float v = a[BOFF(1) + i];
    acc += pc.mode == VKEBM_DOT_AB ? v * bb[BOFF(2) + i] : (pc.mode == VKEBM_DOT_AA ? v * v : v);
  }
  partial[t] = acc;
  barrier();
  for (uint w = 128u; w > 0u; w >>= 1u) {
    if (t < w) partial[t] += partial[t + w];
    barrier();
  }
  if (t == 0u) o[BOFF(0) + g] = partial[0];
}
