#version 450
/* fill.comp: y[i] = v for i < n.  Dispatch: ceil(n / 256) x 1 x 1 workgroups of 256. */
#extension GL_GOOGLE_include_directive : require
#define VKEBM_PC_FILL
#include "vkebm/push.h"

layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_NumWorkGroups.x * 256u * gl_GlobalInvocationID.y;
  if (i < pc.n) y[i] = pc.value;
}
