#version 450
/* spectral_norm_backward.comp: dw[r,k] += (dw_sn[r,k] - d * u[r] * v[k]) / sigma
 *   d = <dw_sn, w_sn> (dot_reduce, in scratch[0])   dw, dw_sn: [rows, cols]   u: [rows]  v: [cols]
 * Dispatch: vkb_grid_1d(rows*cols, 256), one element per invocation. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SPECTRAL
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer DW { float dw[]; };
layout(std430, binding = 1) readonly buffer DWSN { float dwsn[]; };
layout(std430, binding = 2) readonly buffer U { float u[]; };
layout(std430, binding = 3) readonly buffer V { float v[]; };
layout(std430, binding = 4) readonly buffer Sigma { float sigma[]; };
layout(std430, binding = 5) readonly buffer D { float d[]; };

void main() {
  uint i = global_index_1d(256u);
  if (i >= pc.rows * pc.cols) return;
  uint r = i / pc.cols, k = i % pc.cols;
  float g = dwsn[BOFF(1) + i] - d[BOFF(5)] * u[BOFF(2) + r] * v[BOFF(3) + k];
  dw[BOFF(0) + i] += g / sigma[BOFF(4)];
}
