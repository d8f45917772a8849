#version 450
/* conv3x3_forward.comp: y[b,co,h,w] = sum_{ci,kh,kw} w[co,ci,kh,kw] * x[b,ci,h+kh-1,w+kw-1]
 *   y: [B, Co, H, W] (overwritten)   x: [B, Ci, H, W]   w: [Co, Ci, 3, 3]
 * Register tiling and dispatch geometry: conv3x3_tile.glsl (OUT_CH = Co, IN_CH = Ci). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_CONV3X3
#include "push.h"
#include "common.glsl"

#define IN_CH pc.cin
#define OUT_CH pc.cout
#define WEIGHT_INDEX(o, i, kh, kw) ((((o) * pc.cin + (i)) * 3u + (kh)) * 3u + (kw))
#include "conv3x3_tile.glsl"
