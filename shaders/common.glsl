/* common.glsl: helpers every kernel includes (after push.h, so `pc` exists).
 * BOFF(i): the float offset of binding i's tensor inside its bound range (see push.h). */
#ifndef VKEBM_COMMON_GLSL
#define VKEBM_COMMON_GLSL

#define BOFF(i) ((pc.boff[uint(i) >> 2u] >> ((uint(i) & 3u) * 8u)) & 0xffu)

/* The 1D work item of a dispatch from vkb_grid_1d: groups of `local` along x, rows along y. */
uint global_index_1d(uint local) {
  return gl_GlobalInvocationID.x + gl_NumWorkGroups.x * local * gl_WorkGroupID.y;
}

#endif
