#version 450
/* conv3x3_backward_weight.comp: the weight gradient (accumulates):
 *   dw[co,ci,kh,kw] += sum_{b,h,w} dy[b,co,h,w] * x[b,ci,h+kh-1,w+kw-1]
 *   dw: [Co, Ci, 3, 3]   dy: [B, Co, H, W]   x: [B, Ci, H, W]
 * Each invocation owns a WG_OT x WG_IT block of (co, ci) pairs, i.e. WG_OT*WG_IT*9 sums held in
 * registers, and walks its (b, h) rows in order. Along w it slides a 3-wide window of x per
 * (ci, kh): per pixel WG_OT dy loads and 3*WG_IT x loads feed WG_OT*WG_IT*9 FMAs.
 * The B*H rows are cut into splits of rows_per_split (gl_WorkGroupID.y = split):
 *   partial == 0 (one split): dw += sums;
 *   partial == 1: out[split * Co*Ci*9 + k] = sums, then conv3x3_backward_weight_reduce adds the
 *   splits in order. No atomics anywhere: the result is bitwise repeatable, and the split count
 *   depends on the shape only.
 * Dispatch: x = ceil(ceil(Co/WG_OT) * ceil(Ci/WG_IT) / 64) groups of 64, y = splits;
 *   item = cob * ceil(Ci/WG_IT) + cib. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#define VKEBM_PC_CONV3X3
#include "push.h"
#include "common.glsl"

#define WG_OT VKEBM_CONVW_OT
#define WG_IT VKEBM_CONVW_IT

layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer DW { float dw[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };

void main() {
  uint Ci = pc.cin, Co = pc.cout, H = pc.h, W = pc.w, HW = pc.h * pc.w;
  uint ciblocks = (Ci + WG_IT - 1u) / WG_IT;
  uint item = gl_GlobalInvocationID.x;
  if (item >= ciblocks * ((Co + WG_OT - 1u) / WG_OT)) return;
  uint co0 = (item / ciblocks) * WG_OT, ci0 = (item % ciblocks) * WG_IT;
  uint split = gl_WorkGroupID.y;
  uint row_begin = split * pc.rows_per_split;
  uint row_end = min(pc.batch * H, row_begin + pc.rows_per_split);
  uint coc[WG_OT], cic[WG_IT];
  [[unroll]] for (uint o = 0u; o < WG_OT; o++) coc[o] = min(co0 + o, Co - 1u);
  [[unroll]] for (uint i = 0u; i < WG_IT; i++) cic[i] = min(ci0 + i, Ci - 1u);

  float acc[WG_OT][WG_IT][9];
  [[unroll]] for (uint o = 0u; o < WG_OT; o++)
    [[unroll]] for (uint i = 0u; i < WG_IT; i++)
      [[unroll]] for (uint k = 0u; k < 9u; k++) acc[o][i][k] = 0.0;

  for (uint bh = row_begin; bh < row_end; bh++) {
    uint b = bh / H, h = bh % H;
    /* window columns w-1, w, w+1 of input rows h-1, h, h+1 for each ci of the block */
    float xl[WG_IT][3], xc[WG_IT][3], xr[WG_IT][3];
    uint rowbase[WG_IT][3];
    float rowmask[3]; /* 0 for the padding rows: loads stay unconditional (clamped address) */
    [[unroll]] for (uint kh = 0u; kh < 3u; kh++) {
      int r = int(h) + int(kh) - 1;
      rowmask[kh] = (r >= 0 && r < int(H)) ? 1.0 : 0.0;
      [[unroll]] for (uint i = 0u; i < WG_IT; i++) {
        rowbase[i][kh] = BOFF(2) + (b * Ci + cic[i]) * HW + uint(clamp(r, 0, int(H) - 1)) * W;
        xl[i][kh] = 0.0;
        xc[i][kh] = x[rowbase[i][kh]] * rowmask[kh];
      }
    }
    uint dybase = BOFF(1) + b * Co * HW + h * W;
    for (uint w = 0u; w < W; w++) {
      uint wr = min(w + 1u, W - 1u);
      float right = w + 1u < W ? 1.0 : 0.0;
      [[unroll]] for (uint i = 0u; i < WG_IT; i++)
        [[unroll]] for (uint kh = 0u; kh < 3u; kh++)
          xr[i][kh] = x[rowbase[i][kh] + wr] * (rowmask[kh] * right);
      [[unroll]] for (uint o = 0u; o < WG_OT; o++) {
        float d = dy[dybase + coc[o] * HW + w];
        [[unroll]] for (uint i = 0u; i < WG_IT; i++)
          [[unroll]] for (uint kh = 0u; kh < 3u; kh++) {
            acc[o][i][kh * 3u + 0u] += d * xl[i][kh];
            acc[o][i][kh * 3u + 1u] += d * xc[i][kh];
            acc[o][i][kh * 3u + 2u] += d * xr[i][kh];
          }
      }
      [[unroll]] for (uint i = 0u; i < WG_IT; i++)
        [[unroll]] for (uint kh = 0u; kh < 3u; kh++) {
          xl[i][kh] = xc[i][kh];
          xc[i][kh] = xr[i][kh];
        }
    }
  }
  uint nw = Co * Ci * 9u;
  [[unroll]] for (uint o = 0u; o < WG_OT; o++)
    [[unroll]] for (uint i = 0u; i < WG_IT; i++) {
      if (co0 + o >= Co || ci0 + i >= Ci) continue;
      uint base = ((co0 + o) * Ci + ci0 + i) * 9u;
      if (pc.partial != 0u) {
        base += BOFF(0) + split * nw;
        [[unroll]] for (uint k = 0u; k < 9u; k++) dw[base + k] = acc[o][i][k];
      } else {
        base += BOFF(0);
        [[unroll]] for (uint k = 0u; k < 9u; k++) dw[base + k] += acc[o][i][k];
      }
    }
}
