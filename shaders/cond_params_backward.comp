#version 450
/* cond_params_backward.comp: the parameter and label gradients of cond_bias and cond_scale,
 * from S[b,ch] (cond_bias: sum_p dy; cond_scale: g = sum_p dy*x, made by channel_sum):
 *   dG[l,ch] += sum_b c[b,l] S[b,ch]     (flag VKEBM_COND_DG)
 *   dCB[ch]  += sum_b S[b,ch]            (flag VKEBM_COND_DCB)
 *   dc[b,l]  += sum_ch G[l,ch] S[b,ch]   (flag VKEBM_COND_DC)
 *   S: [B, C]   c: [B, L]   G: [L, C]
 * Dispatch: vkb_grid_1d(L*C + C + B*L, 64): each invocation owns one output element and sums
 * serially in index order, so the result is bitwise repeatable. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_COND
#include "push.h"
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer DG { float dg[]; };
layout(std430, binding = 1) buffer DCB { float dcb[]; };
layout(std430, binding = 2) buffer DC { float dc[]; };
layout(std430, binding = 3) readonly buffer S { float s[]; };
layout(std430, binding = 4) readonly buffer Cl { float c[]; };
layout(std430, binding = 5) readonly buffer G { float g[]; };

void main() {
  uint i = global_index_1d(64u);
  uint B = pc.batch, C = pc.channels, L = pc.labels;
  if (i < L * C) {
    if ((pc.flags & VKEBM_COND_DG) == 0u) return;
    uint l = i / C, ch = i % C;
    float acc = 0.0;
    for (uint b = 0u; b < B; b++) acc += c[BOFF(4) + b * L + l] * s[BOFF(3) + b * C + ch];
    dg[BOFF(0) + i] += acc;
    return;
  }
  i -= L * C;
  if (i < C) {
    if ((pc.flags & VKEBM_COND_DCB) == 0u) return;
    float acc = 0.0;
    for (uint b = 0u; b < B; b++) acc += s[BOFF(3) + b * C + i];
    dcb[BOFF(1) + i] += acc;
    return;
  }
  i -= C;
  if (i < B * L) {
    if ((pc.flags & VKEBM_COND_DC) == 0u) return;
    uint b = i / L, l = i % L;
    float acc = 0.0;
    for (uint ch = 0u; ch < C; ch++) acc += g[BOFF(5) + l * C + ch] * s[BOFF(3) + b * C + ch];
    dc[BOFF(2) + i] += acc;
  }
}
