#version 450
/* head_backward_params.comp: the parameter gradients of the head (accumulate):
 *   dw[ch]   += sum_b de[b] * M[b,ch]     (flag VKEBM_HEAD_DW; M = mean_p x, from channel_sum)
 *   dbias[0] += sum_b de[b]               (flag VKEBM_HEAD_DBIAS)
 *   M: [B, C]   de: [B]   dw: [C]
 * Dispatch: vkb_grid_1d(C + 1, 64); invocation ch < C owns dw[ch], invocation C owns dbias;
 * each sums over b in order (repeatable). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_HEAD
#include "push.h"
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer DW { float dw[]; };
layout(std430, binding = 1) buffer DBias { float dbias[]; };
layout(std430, binding = 2) readonly buffer DE { float de[]; };
layout(std430, binding = 3) readonly buffer M { float m[]; };

void main() {
  uint ch = global_index_1d(64u);
  if (ch < pc.channels) {
    if ((pc.flags & VKEBM_HEAD_DW) == 0u) return;
    float acc = 0.0;
    for (uint b = 0u; b < pc.batch; b++) acc += de[BOFF(2) + b] * m[BOFF(3) + b * pc.channels + ch];
    dw[BOFF(0) + ch] += acc;
  } else if (ch == pc.channels && (pc.flags & VKEBM_HEAD_DBIAS) != 0u) {
    float acc = 0.0;
    for (uint b = 0u; b < pc.batch; b++) acc += de[BOFF(2) + b];
    dbias[BOFF(1)] += acc;
  }
}
