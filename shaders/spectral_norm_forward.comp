#version 450
/* spectral_norm_forward.comp: one power iteration and the normalised weight, W = w as [rows, cols]:
 *   t = W^T u;  v = t / (||t|| + 1e-12);  s = W v;  u' = s / (||s|| + 1e-12);  sigma = u'^T s
 *   w_sn = w / sigma;  writes v[cols], sigma[1], w_sn[rows*cols]; u := u' when update_u.
 *   scratch: [rows] holds s.
 * Dispatch: ONE workgroup of 256 (the matrices are small: rows = Co, cols = Ci*9).
 * Invocation t owns columns k = t, t+256, ... and rows r = t, t+256, ...; each sum over a
 * matrix dimension runs serially in index order, norms go through a fixed shared-memory tree,
 * so the result is bitwise repeatable. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SPECTRAL
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer WSN { float wsn[]; };
layout(std430, binding = 1) coherent buffer U { float u[]; };
layout(std430, binding = 2) coherent buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer Sigma { float sigma[]; };
layout(std430, binding = 4) readonly buffer W { float w[]; };
layout(std430, binding = 5) buffer S { float s[]; };

shared float partial[256];

float tree_sum(float x) {
  uint t = gl_LocalInvocationID.x;
  partial[t] = x;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1u) {
    if (t < h) partial[t] += partial[t + h];
    barrier();
  }
  float r = partial[0];
  barrier(); /* partial is reused by the next call */
  return r;
}

void main() {
  uint t = gl_LocalInvocationID.x;
  uint R = pc.rows, K = pc.cols;
  /* t = W^T u (unnormalised, kept in v) */
  float ss = 0.0;
  for (uint k = t; k < K; k += 256u) {
    float acc = 0.0;
    for (uint r = 0u; r < R; r++) acc += w[BOFF(4) + r * K + k] * u[BOFF(1) + r];
    v[BOFF(2) + k] = acc;
    ss += acc * acc;
  }
  float vnorm = sqrt(tree_sum(ss)) + 1e-12;
  for (uint k = t; k < K; k += 256u) v[BOFF(2) + k] = v[BOFF(2) + k] / vnorm;
  memoryBarrierBuffer();
  barrier();
  /* s = W v */
  ss = 0.0;
  for (uint r = t; r < R; r += 256u) {
    float acc = 0.0;
    for (uint k = 0u; k < K; k++) acc += w[BOFF(4) + r * K + k] * v[BOFF(2) + k];
    s[BOFF(5) + r] = acc;
    ss += acc * acc;
  }
  float unorm = sqrt(tree_sum(ss)) + 1e-12;
  float us = 0.0;
  for (uint r = t; r < R; r += 256u) {
    float un = s[BOFF(5) + r] / unorm;
    us += un * s[BOFF(5) + r];
  }
  float sig = tree_sum(us); /* every invocation has finished reading u (barriers above) */
  if (pc.update_u != 0u)
    for (uint r = t; r < R; r += 256u) u[BOFF(1) + r] = s[BOFF(5) + r] / unorm;
  for (uint i = t; i < R * K; i += 256u) wsn[BOFF(0) + i] = w[BOFF(4) + i] / sig;
  if (t == 0u) sigma[BOFF(3)] = sig;
}
