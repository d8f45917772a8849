/* gif.c: animated GIF writer for sampling chains (gif.h): a fixed palette (a 6x6x6 cube and 40
 * greys), NETSCAPE2.0 loop, encoded frame by frame into an atomic write (fileio.h). */
#include "vkebm/gif.h"

#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/fileio.h"

/* The palette: a 6x6x6 colour cube (indices 0..215) and a ramp of 40 greys (216..255). Each
 * pixel takes the nearer of its cube colour and its grey: the scenes' neutral floor and shadows
 * stay grey (a cube alone has 6 greys, and an uneven cube puts mid-grey between purple and
 * green, which flickered from frame to frame). */
#define GIF_CUBE 6
#define GIF_GREYS 40

struct gif_writer {
  io_atomic out;
  GifFileType *gif;   /* created at the first frame (its size makes the screen descriptor) */
  int W, H, delay_cs;
  uint8_t *held;      /* the newest frame, written when the next one comes (or at finish) */
  GifByteType *line;
  int nheld, write_failed;
  char write_err[256];
};

static int level(int v, int levels) { return (v * (levels - 1) + 127) / 255; }

static GifByteType palette_index(const uint8_t *rgb) {
  int lr = level(rgb[0], GIF_CUBE), lg = level(rgb[1], GIF_CUBE), lb = level(rgb[2], GIF_CUBE);
  int cr = lr * 255 / (GIF_CUBE - 1), cg = lg * 255 / (GIF_CUBE - 1), cb = lb * 255 / (GIF_CUBE - 1);
  int mean = (rgb[0] + rgb[1] + rgb[2] + 1) / 3, lv = level(mean, GIF_GREYS);
  int gv = lv * 255 / (GIF_GREYS - 1);
  int dc = (rgb[0] - cr) * (rgb[0] - cr) + (rgb[1] - cg) * (rgb[1] - cg) + (rgb[2] - cb) * (rgb[2] - cb);
  int dg = (rgb[0] - gv) * (rgb[0] - gv) + (rgb[1] - gv) * (rgb[1] - gv) + (rgb[2] - gv) * (rgb[2] - gv);
  if (dg <= dc) return (GifByteType)(GIF_CUBE * GIF_CUBE * GIF_CUBE + lv);
  return (GifByteType)((lr * GIF_CUBE + lg) * GIF_CUBE + lb);
}

/* giflib's output function: straight into the atomic write. */
static int put_bytes(GifFileType *gif, const GifByteType *data, int n) {
  gif_writer *g = gif->UserData;
  if (g->write_failed) return 0;
  if (io_atomic_write(&g->out, data, (size_t)n, g->write_err, sizeof g->write_err)) {
    g->write_failed = 1;
    return 0;
  }
  return n;
}

gif_writer *gif_writer_open(const char *path, int delay_cs, char *err, size_t errlen) {
  gif_writer *g = calloc(1, sizeof *g);
  if (!g) {
    snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  if (io_atomic_begin(&g->out, path, 1, err, errlen)) {
    free(g);
    return NULL;
  }
  g->delay_cs = delay_cs;
  return g;
}

static int fail_gif(gif_writer *g, int gerr, char *err, size_t errlen) {
  if (g->write_failed)
    snprintf(err, errlen, "%s", g->write_err);
  else
    snprintf(err, errlen, "%s: cannot write GIF (%s)", g->out.shown,
             GifErrorString(gerr) ? GifErrorString(gerr) : "unknown error");
  return -1;
}

static int start(gif_writer *g, int W, int H, char *err, size_t errlen) {
  GifColorType colors[256];
  memset(colors, 0, sizeof colors);
  for (int r = 0; r < GIF_CUBE; r++)
    for (int gr = 0; gr < GIF_CUBE; gr++)
      for (int b = 0; b < GIF_CUBE; b++) {
        GifColorType *c = &colors[(r * GIF_CUBE + gr) * GIF_CUBE + b];
        c->Red = (GifByteType)(r * 255 / (GIF_CUBE - 1));
        c->Green = (GifByteType)(gr * 255 / (GIF_CUBE - 1));
        c->Blue = (GifByteType)(b * 255 / (GIF_CUBE - 1));
      }
  for (int k = 0; k < GIF_GREYS; k++) {
    GifColorType *c = &colors[GIF_CUBE * GIF_CUBE * GIF_CUBE + k];
    c->Red = c->Green = c->Blue = (GifByteType)(k * 255 / (GIF_GREYS - 1));
  }
  int gerr = 0;
  g->W = W;
  g->H = H;
  g->held = malloc((size_t)W * H * 3);
  g->line = malloc((size_t)W);
  if (!g->held || !g->line) return snprintf(err, errlen, "%s: out of memory", g->out.shown), -1;
  ColorMapObject *map = GifMakeMapObject(256, colors);
  if (!map) return snprintf(err, errlen, "%s: out of memory", g->out.shown), -1;
  g->gif = EGifOpen(g, put_bytes, &gerr);
  int ok = g->gif != NULL;
  if (ok) {
    EGifSetGifVersion(g->gif, true);
    ok = EGifPutScreenDesc(g->gif, W, H, 8, 0, map) == GIF_OK;
  }
  if (ok) { /* loop forever */
    static const GifByteType netscape[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
    static const GifByteType loop[] = {1, 0, 0};
    ok = EGifPutExtensionLeader(g->gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
         EGifPutExtensionBlock(g->gif, sizeof netscape, netscape) == GIF_OK &&
         EGifPutExtensionBlock(g->gif, sizeof loop, loop) == GIF_OK &&
         EGifPutExtensionTrailer(g->gif) == GIF_OK;
  }
  GifFreeMapObject(map);
  if (!ok) return fail_gif(g, g->gif ? g->gif->Error : gerr, err, errlen);
  return 0;
}

/* Encodes the held frame with the given delay. */
static int emit_held(gif_writer *g, int delay_cs, char *err, size_t errlen) {
  GraphicsControlBlock gcb = {0};
  gcb.DisposalMode = DISPOSE_DO_NOT;
  gcb.DelayTime = delay_cs;
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType ext[4];
  size_t n = EGifGCBToExtension(&gcb, ext);
  int ok = EGifPutExtension(g->gif, GRAPHICS_EXT_FUNC_CODE, (int)n, ext) == GIF_OK &&
           EGifPutImageDesc(g->gif, 0, 0, g->W, g->H, false, NULL) == GIF_OK;
  for (int y = 0; ok && y < g->H; y++) {
    const uint8_t *row = g->held + (size_t)y * g->W * 3;
    for (int x = 0; x < g->W; x++) g->line[x] = palette_index(row + 3 * x);
    ok = EGifPutLine(g->gif, g->line, g->W) == GIF_OK;
  }
  g->nheld = 0;
  return ok ? 0 : fail_gif(g, g->gif->Error, err, errlen);
}

int gif_writer_add(gif_writer *g, const uint8_t *rgb, int W, int H, char *err, size_t errlen) {
  if (W < 1 || H < 1 || W > 65535 || H > 65535)
    return snprintf(err, errlen, "%s: frame size %dx%d is out of range", g->out.shown, W, H), -1;
  if (!g->gif && start(g, W, H, err, errlen)) return -1;
  if (W != g->W || H != g->H)
    return snprintf(err, errlen, "%s: frame of %dx%d in a %dx%d animation", g->out.shown, W, H,
                    g->W, g->H), -1;
  if (g->nheld && emit_held(g, g->delay_cs, err, errlen)) return -1;
  memcpy(g->held, rgb, (size_t)W * H * 3);
  g->nheld = 1;
  return 0;
}

static void release(gif_writer *g) {
  if (g->gif) {
    int cerr;
    g->write_failed = 1; /* nothing more reaches the file */
    EGifCloseFile(g->gif, &cerr);
  }
  free(g->held);
  free(g->line);
  free(g);
}

int gif_writer_finish(gif_writer *g, char *err, size_t errlen) {
  if (!g->gif || !g->nheld) {
    snprintf(err, errlen, "%s: no frames to write", g->out.shown);
    gif_writer_abort(g);
    return -1;
  }
  if (emit_held(g, 200, err, errlen)) {
    gif_writer_abort(g);
    return -1;
  }
  int cerr = 0;
  int ok = EGifCloseFile(g->gif, &cerr) == GIF_OK; /* writes the trailer, frees the encoder */
  g->gif = NULL;
  if (!ok || g->write_failed) {
    fail_gif(g, cerr, err, errlen);
    gif_writer_abort(g);
    return -1;
  }
  int rc = io_atomic_commit(&g->out, err, errlen);
  release(g);
  return rc;
}

void gif_writer_abort(gif_writer *g) {
  if (!g) return;
  io_atomic_abort(&g->out);
  release(g);
}

int gif_write_animation(const char *path, const uint8_t *const *frames, int nframes, int W, int H,
                        int delay_cs, char *err, size_t errlen) {
  if (nframes < 1) {
    snprintf(err, errlen, "%s: nothing to write", path);
    return -1;
  }
  gif_writer *g = gif_writer_open(path, delay_cs, err, errlen);
  if (!g) return -1;
  for (int k = 0; k < nframes; k++)
    if (gif_writer_add(g, frames[k], W, H, err, errlen)) {
      gif_writer_abort(g);
      return -1;
    }
  return gif_writer_finish(g, err, errlen);
}
