#version 450
/* langevin_quadratic_energy_backward.comp: input gradient of the diagonal quadratic energy
 *   dx[r,i] = dE[r] * prec[g,i] * (x[r,i] - mu[g,i]),   g = r / rows_per_group   (overwrites dx)
 *   dx, x: [rows, cols]  dE: [rows]  mu, prec: [groups, cols]
 * Dispatch: vkb_grid_1d(rows * cols, 256). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SAMPLER
#include "push.h"
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer DE { float dE[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer Mu { float mu[]; };
layout(std430, binding = 4) readonly buffer Prec { float prec[]; };

void main() {
  uint k = global_index_1d(256u);
  if (k >= pc.rows * pc.cols) return;
  uint r = k / pc.cols, i = k - r * pc.cols;
  uint gi = (r / pc.rows_per_group) * pc.cols + i;
  dx[BOFF(0) + k] = dE[BOFF(1) + r] * (prec[BOFF(4) + gi] * (x[BOFF(2) + k] - mu[BOFF(3) + gi]));
}
