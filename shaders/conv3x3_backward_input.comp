#version 450
/* conv3x3_backward_input.comp: the transposed convolution (overwrites dx):
 *   dx[b,ci,h,w] = sum_{co,kh,kw} w[co,ci,2-kh,2-kw] * dy[b,co,h+kh-1,w+kw-1]
 *   dx: [B, Ci, H, W]   dy: [B, Co, H, W]   w: [Co, Ci, 3, 3]
 * It is conv3x3_tile.glsl with OUT_CH = Ci, IN_CH = Co and the kernel flipped (same geometry). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_CONV3X3
#include "push.h"
#include "common.glsl"

#define IN_CH pc.cout
#define OUT_CH pc.cin
#define WEIGHT_INDEX(o, i, kh, kw) ((((i) * pc.cin + (o)) * 3u + (2u - (kh))) * 3u + (2u - (kw)))
#include "conv3x3_tile.glsl"
