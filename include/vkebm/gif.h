/* gif.h: animated GIFs of sampling chains (giflib). One fixed 252-colour palette (6x7x6 RGB
 * levels) for every frame, so frames need no per-frame quantisation and the same frames give
 * the same bytes; a NETSCAPE2.0 block makes it loop forever. Written atomically. */
#ifndef VKEBM_GIF_H
#define VKEBM_GIF_H

#include <stddef.h>
#include <stdint.h>

/* frames[k]: interleaved rgb[H*W*3]. delay_cs: hundredths of a second per frame (the last
 * frame is held 2 s). 0 or -1 with err. */
int gif_write_animation(const char *path, const uint8_t *const *frames, int nframes, int W, int H,
                        int delay_cs, char *err, size_t errlen);

#endif
