/* spirv_table.h: the SPIR-V of every shaders/NAME.comp, embedded at build time (see CMakeLists.txt).
 * Nothing reads shaders from disk at run time, except the developer override VKEBM_SHADER_DIR
 * (a folder of NAME.spv files) that vkx honours when it is set. */
#ifndef VKEBM_SPIRV_TABLE_H
#define VKEBM_SPIRV_TABLE_H
#include <stddef.h>
#include <stdint.h>

typedef struct vkebm_spirv {
  const char *name;     /* file name without .comp */
  const uint32_t *code; /* SPIR-V words */
  size_t size;          /* bytes */
} vkebm_spirv;

extern const vkebm_spirv vkebm_spirv_table[]; /* terminated by a {0,0,0} entry */

const vkebm_spirv *vkebm_spirv_find(const char *name);

#endif
