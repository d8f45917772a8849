/* fuzz_png.c: libFuzzer target for the PNG reader with its text chunks (img_decode_png_rgb8:
 * the chunk-length walk, libpng behind setjmp, Latin-1 to UTF-8), which is what `sample --from`
 * reads its recipe with. Built by -DVKEBM_FUZZ=ON (clang); run by tools/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  uint8_t *rgb = NULL;
  int W = 0, H = 0, ntext = 0;
  img_text *text = NULL;
  char err[512];
  if (img_decode_png_rgb8(data, n, "fuzz.png", &rgb, &W, &H, &text, &ntext, err, sizeof err) != 0) {
    if (rgb || text || !err[0]) abort();
    return 0;
  }
  volatile unsigned sum = 0; /* touch every pixel and every text byte */
  for (size_t i = 0; i < (size_t)W * H * 3; i++) sum += rgb[i];
  for (int i = 0; i < ntext; i++) sum += (unsigned)strlen(text[i].key) + (unsigned)strlen(text[i].value);
  (void)sum;
  free(rgb);
  img_text_free(text, ntext);
  return 0;
}
