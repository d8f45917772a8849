#version 450
/* scene_render.comp: renders packed scenes (include/vkebm/scene_shade.h) into CHW images.
 *   images[n, 3, size, size] (binding 0)  <-  scenes[n, VKEBM_SCENE_FLOATS] (binding 1)
 * Each invocation shades one pixel with scn_shade_pixel: four rotated-grid sub-sample rays,
 * each traced against the floor and every object, Lambert + hemispheric ambient, shadow ray
 * toward the light. The CPU twin is scene_render_cpu (src/scene/render.c), the same code.
 * Dispatch: local 8 x 8 pixels; groups (ceil(size/8), ceil(size/8), n). */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_SCENE_RENDER
#include "push.h"
#include "common.glsl"

layout(local_size_x = 8, local_size_y = 8) in;
layout(std430, binding = 0) writeonly buffer Images { float images[]; };
layout(std430, binding = 1) readonly buffer Scenes { float scenes[]; };

uint scn_base; /* first float of this invocation's scene: read by SCN(i) in scene_shade.h */
#include "vkebm/scene_shade.h"

void main() {
  uint x = gl_GlobalInvocationID.x, y = gl_GlobalInvocationID.y, img = gl_GlobalInvocationID.z;
  if (x >= pc.size || y >= pc.size || img >= pc.n) return;
  scn_base = BOFF(1) + img * VKEBM_SCENE_FLOATS;
  vec3 c = scn_shade_pixel(x, y, pc.size);
  uint plane = pc.size * pc.size;
  uint o = BOFF(0) + img * 3u * plane + y * pc.size + x;
  images[o] = c.x;
  images[o + plane] = c.y;
  images[o + 2u * plane] = c.z;
}
