#version 450
/* langevin_chain_select.comp: per-chain accept
 *   x[b,i] = src[b,i] where mask[b] > 0.5, else unchanged      x, src: [rows, cols]  mask: [rows]
 * Dispatch: vkb_grid_1d(rows * cols, 256). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SAMPLER
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(std430, binding = 2) readonly buffer Mask { float mask[]; };

void main() {
  uint k = global_index_1d(256u);
  if (k >= pc.rows * pc.cols) return;
  uint b = k / pc.cols;
  if (mask[BOFF(2) + b] > 0.5) x[BOFF(0) + k] = src[BOFF(1) + k];
}
