#version 450
/* langevin_mala_log_q.comp: log MALA proposal density (up to a constant), per chain
 *   out[b] = -sum_i (to[b,i] - from[b,i] + tau[b] * grad_from[b,i])^2 / (4 tau[b])
 *   out, tau: [rows]  to, from, grad_from: [rows, cols]
 * Dispatch: one workgroup of 256 per chain (langevin_rows.glsl), gx * gy >= rows. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SAMPLER
#include "push.h"
#include "common.glsl"
#include "langevin_rows.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(std430, binding = 1) readonly buffer To { float to_[]; };
layout(std430, binding = 2) readonly buffer From { float from_[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };
layout(std430, binding = 4) readonly buffer Tau { float tau[]; };

void main() {
  uint b = row_of_workgroup(), t = gl_LocalInvocationID.x;
  if (b >= pc.rows) return; /* uniform over the workgroup */
  float tb = tau[BOFF(4) + b];
  uint row = b * pc.cols;
  float acc = 0.0;
  for (uint i = t; i < pc.cols; i += 256u) {
    float d = to_[BOFF(1) + row + i] - from_[BOFF(2) + row + i] + tb * g[BOFF(3) + row + i];
    acc += d * d;
  }
  row_partial[t] = acc;
  row_tree_sum(t);
  if (t == 0u) o[BOFF(0) + b] = -row_partial[0] / (4.0 * tb);
}
