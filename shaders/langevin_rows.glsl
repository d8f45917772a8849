/* langevin_rows.glsl: shared by the per-row reduction kernels of the sampler
 * (langevin_quadratic_energy, langevin_mala_log_q): one workgroup of 256 per row; row index from
 * a 2D grid of workgroups (x up to 65535). Invocation t sums the row's elements t, t+256, ...
 * serially, then a fixed shared-memory tree: bitwise repeatable on one device. */
#ifndef VKEBM_LANGEVIN_ROWS_GLSL
#define VKEBM_LANGEVIN_ROWS_GLSL

shared float row_partial[256];

uint row_of_workgroup() { return gl_WorkGroupID.x + gl_NumWorkGroups.x * gl_WorkGroupID.y; }

/* Tree-sums row_partial[0..255] (every invocation must call it); the total is in row_partial[0]. */
void row_tree_sum(uint t) {
  barrier();
  for (uint w = 128u; w > 0u; w >>= 1u) {
    if (t < w) row_partial[t] += row_partial[t + w];
    barrier();
  }
}

#endif
