/* view_sdl.h: the SDL side of the viewer (src/view/view_sdl.c, in the vkebm_view library):
 * drawing one frame (sample grid + overlay) with any SDL_Renderer, turning SDL events into
 * view_state actions, and screenshots. Include only where SDL2 is linked. */
#ifndef VKEBM_VIEW_SDL_H
#define VKEBM_VIEW_SDL_H

#include <SDL.h>

#include "vkebm/view.h"

typedef struct view_stats {
  double fps;              /* frames drawn per second */
  double new_fps;          /* frames with new samples per second */
  double steps_per_second; /* chain steps per second (per chain: every chain takes each step) */
  long frame;              /* frames drawn so far */
  int headless;            /* rates are not shown (headless frames are reproducible) */
} view_stats;

typedef struct view_renderer {
  SDL_Renderer *r;
  SDL_Texture *grid;
  int grid_w, grid_h;
  uint8_t *grid_rgb;
  int padding;             /* between images, in image pixels */
  int grid_only;           /* draw only the grid, at scale 1 (the window's size is the grid's) */
} view_renderer;

/* Panel height and the smallest window that shows the grid at integer scale `scale`. */
int view_layout_panel_height(const view_state *s);
void view_layout_window_size(const view_state *s, int B, int H, int W, int scale, int *win_w,
                             int *win_h);
/* The grid's size in pixels at scale 1: cols x rows images of W x H with padding. */
void view_layout_grid_size(int B, int H, int W, int padding, int *gw, int *gh);

void view_renderer_init(view_renderer *vr, SDL_Renderer *r);
void view_renderer_release(view_renderer *vr); /* the grid texture and the font cache */
/* Draws the frame into the renderer's w x h target (does not present). 0 or -1 (SDL error). */
int view_render(view_renderer *vr, int w, int h, const view_frame *f, const view_state *s,
                const view_stats *st);

/* Drains SDL's event queue into the state (keys through view_state_key; window close quits).
 * Returns the number of events that call for a redraw (key presses, window exposed/resized). */
int view_sdl_pump(view_state *s);

/* Reads the renderer's w x h pixels and writes an RGB PNG whose text chunks carry the active
 * expression and `settings`. 0 or -1 with err. */
int view_screenshot(SDL_Renderer *r, int w, int h, const char *path, const view_state *s,
                    const char *settings, char *err, size_t errlen);

#endif
