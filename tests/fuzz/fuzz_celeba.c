/* fuzz_celeba.c: libFuzzer target for the CelebA loader's readers of user files: the first byte
 * picks the attribute-list parser ('a': the rest is list_attr_celeba.txt) or the image decoder
 * (else: the next byte sets R in 8..71, the rest is a JPEG or PNG file: libjpeg behind setjmp,
 * DCT scaling, the crop and the area resize). Built by -DVKEBM_FUZZ=ON (clang); run by
 * tools/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/celeba.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  char err[512] = "";
  if (n < 2) return 0;
  if (data[0] == 'a') {
    celeba_attrs a;
    if (celeba_parse_attrs((const char *)data + 1, n - 1, "fuzz.txt", &a, err, sizeof err) != 0) {
      if (a.files || a.values || !err[0]) abort();
      return 0;
    }
    volatile int sum = 0; /* touch every row */
    for (int i = 0; i < a.n; i++) sum += a.files[i][0] + a.values[(size_t)i * a.nattr + a.nattr - 1];
    (void)sum;
    celeba_attrs_free(&a);
    return 0;
  }
  const int R = 8 + data[1] % 64;
  uint8_t *chw = malloc((size_t)3 * R * R);
  if (!chw) return 0;
  if (celeba_decode_image(data + 2, n - 2, "fuzz.jpg", R, chw, err, sizeof err) != 0 && !err[0]) abort();
  free(chw);
  return 0;
}
