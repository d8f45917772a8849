/* gif.c: animated GIF writer for sampling chains (gif.h): fixed 6x7x6 palette, NETSCAPE2.0
 * loop, written to a temporary file and renamed into place. */
#include "vkebm/gif.h"

#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* levels: red 6, green 7 (the eye is most sensitive to it), blue 6 */
#define GIF_LEVELS_R 6
#define GIF_LEVELS_G 7
#define GIF_LEVELS_B 6

static int level(int v, int levels) { return (v * (levels - 1) + 127) / 255; }

static GifByteType palette_index(const uint8_t *rgb) {
  return (GifByteType)(level(rgb[0], GIF_LEVELS_R) * GIF_LEVELS_G * GIF_LEVELS_B +
                       level(rgb[1], GIF_LEVELS_G) * GIF_LEVELS_B + level(rgb[2], GIF_LEVELS_B));
}

int gif_write_animation(const char *path, const uint8_t *const *frames, int nframes, int W, int H,
                        int delay_cs, char *err, size_t errlen) {
  if (nframes < 1 || W < 1 || H < 1 || W > 65535 || H > 65535) {
    snprintf(err, errlen, "%s: nothing to write or frame too large", path);
    return -1;
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  GifColorType colors[256];
  memset(colors, 0, sizeof colors);
  for (int r = 0; r < GIF_LEVELS_R; r++)
    for (int g = 0; g < GIF_LEVELS_G; g++)
      for (int b = 0; b < GIF_LEVELS_B; b++) {
        GifColorType *c = &colors[(r * GIF_LEVELS_G + g) * GIF_LEVELS_B + b];
        c->Red = (GifByteType)(r * 255 / (GIF_LEVELS_R - 1));
        c->Green = (GifByteType)(g * 255 / (GIF_LEVELS_G - 1));
        c->Blue = (GifByteType)(b * 255 / (GIF_LEVELS_B - 1));
      }
  int gerr = 0;
  ColorMapObject *map = GifMakeMapObject(256, colors);
  GifFileType *gif = map ? EGifOpenFileName(tmp, false, &gerr) : NULL;
  GifByteType *line = malloc((size_t)W);
  int ok = gif && line;
  if (ok) {
    EGifSetGifVersion(gif, true);
    ok = EGifPutScreenDesc(gif, W, H, 8, 0, map) == GIF_OK;
  }
  if (ok) { /* loop forever */
    static const GifByteType netscape[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
    static const GifByteType loop[] = {1, 0, 0};
    ok = EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
         EGifPutExtensionBlock(gif, sizeof netscape, netscape) == GIF_OK &&
         EGifPutExtensionBlock(gif, sizeof loop, loop) == GIF_OK &&
         EGifPutExtensionTrailer(gif) == GIF_OK;
  }
  for (int k = 0; ok && k < nframes; k++) {
    GraphicsControlBlock gcb = {0};
    gcb.DisposalMode = DISPOSE_DO_NOT;
    gcb.DelayTime = k == nframes - 1 ? 200 : delay_cs;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    size_t n = EGifGCBToExtension(&gcb, ext);
    ok = EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, (int)n, ext) == GIF_OK &&
         EGifPutImageDesc(gif, 0, 0, W, H, false, NULL) == GIF_OK;
    for (int y = 0; ok && y < H; y++) {
      const uint8_t *row = frames[k] + (size_t)y * W * 3;
      for (int x = 0; x < W; x++) line[x] = palette_index(row + 3 * x);
      ok = EGifPutLine(gif, line, W) == GIF_OK;
    }
  }
  if (gif) {
    int cerr = 0;
    if (!ok) gerr = gif->Error;
    if (EGifCloseFile(gif, &cerr) != GIF_OK && ok) {
      ok = 0;
      gerr = cerr;
    }
  }
  free(line);
  GifFreeMapObject(map);
  if (!ok) {
    snprintf(err, errlen, "%s: cannot write GIF (%s)", path,
             GifErrorString(gerr) ? GifErrorString(gerr) : "unknown error");
    unlink(tmp);
    return -1;
  }
  mode_t mask = umask(0); /* giflib creates the file 0600; give it the usual 0666 & ~umask */
  umask(mask);
  if (chmod(tmp, 0666 & ~mask) || rename(tmp, path)) {
    snprintf(err, errlen, "%s: cannot rename the finished GIF into place", path);
    unlink(tmp);
    return -1;
  }
  return 0;
}
