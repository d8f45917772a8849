/* gif.h: animated GIFs of sampling chains (giflib). One fixed 256-colour palette for every
 * frame (a 6x6x6 RGB cube plus 40 greys; each pixel takes the nearer of its cube colour and its
 * grey, so the neutral floor stays grey), so frames need no per-frame quantisation and the same
 * frames give the same bytes; a NETSCAPE2.0 block makes it loop forever.
 *
 * Frames are encoded as they come (one frame held back, so the last can be shown longer), into
 * an atomic write (fileio.h): memory stays at two frames whatever the length, the path is
 * checked when the writer opens, and the file appears only when finished. */
#ifndef VKEBM_GIF_H
#define VKEBM_GIF_H

#include <stddef.h>
#include <stdint.h>

typedef struct gif_writer gif_writer;

/* Opens the output (refusing a bad path at once). delay_cs: hundredths of a second per frame
 * (the last frame is held 2 s). NULL with err. */
gif_writer *gif_writer_open(const char *path, int delay_cs, char *err, size_t errlen);
/* Adds a frame: interleaved rgb[H*W*3]; every frame must have the first one's size. 0 or -1. */
int gif_writer_add(gif_writer *g, const uint8_t *rgb, int W, int H, char *err, size_t errlen);
/* Writes the last frame and the trailer, renames into place, frees g. 0 or -1 (nothing left). */
int gif_writer_finish(gif_writer *g, char *err, size_t errlen);
/* Drops everything (no file appears). NULL is fine. */
void gif_writer_abort(gif_writer *g);

/* All at once: frames[k] are interleaved rgb[H*W*3]. 0 or -1 with err. */
int gif_write_animation(const char *path, const uint8_t *const *frames, int nframes, int W, int H,
                        int delay_cs, char *err, size_t errlen);

#endif
