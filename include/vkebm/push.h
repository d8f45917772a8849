/* push.h: the push-constant struct of every kernel, shared by C and GLSL (see shared.h).
 * A shader defines VKEBM_PC_<NAME> before including this file and reads its block as `pc`. */
#ifndef VKEBM_PUSH_H
#define VKEBM_PUSH_H

#include "vkebm/shared.h"

#if !defined(VULKAN) || defined(VKEBM_PC_FILL)
VKEBM_PUSH_BEGIN(fill, FILL)
  u32 n;
  f32 value;
VKEBM_PUSH_END(fill, FILL)
#endif

#endif
