#version 450
/* langevin_quadratic_energy.comp: diagonal quadratic energy of stacked rows (analytic concepts)
 *   e[r] = 0.5 * sum_i prec[g,i] * (x[r,i] - mu[g,i])^2,   g = r / rows_per_group
 *   e: [rows]  x: [rows, cols]  mu, prec: [groups, cols]
 * Dispatch: one workgroup of 256 per row (langevin_rows.glsl), gx * gy >= rows. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SAMPLER
#include "push.h"
#include "common.glsl"
#include "langevin_rows.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer E { float e[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Mu { float mu[]; };
layout(std430, binding = 3) readonly buffer Prec { float prec[]; };

void main() {
  uint r = row_of_workgroup(), t = gl_LocalInvocationID.x;
  if (r >= pc.rows) return; /* uniform over the workgroup */
  uint xrow = BOFF(1) + r * pc.cols;
  uint grow = (r / pc.rows_per_group) * pc.cols;
  float acc = 0.0;
  for (uint i = t; i < pc.cols; i += 256u) {
    float d = x[xrow + i] - mu[BOFF(2) + grow + i];
    acc += prec[BOFF(3) + grow + i] * d * d;
  }
  row_partial[t] = acc;
  row_tree_sum(t);
  if (t == 0u) e[BOFF(0) + r] = 0.5 * row_partial[0];
}
