/* spirv_table.c: lookup in the embedded SPIR-V table (the table itself is generated). */
#include <string.h>

#include "spirv_table.h"

const vkebm_spirv *vkebm_spirv_find(const char *name) {
  for (const vkebm_spirv *s = vkebm_spirv_table; s->name; s++)
    if (!strcmp(s->name, name)) return s;
  return NULL;
}
