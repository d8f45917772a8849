/* view_sdl.c: the viewer's drawing, events and screenshots through SDL2 (view_sdl.h).
 *
 * Owns the frame's layout: a text panel on top (the active expression, rates, the last action's
 * message, one row per term with its on/off state, selection and a mean-energy meter) and the
 * sample grid below it, scaled by the largest integer that fits (nearest filtering, crisp
 * pixels), centred; the help box (one line per row of view_bindings[]) drawn over the grid.
 * Text is SDL2_test's 8x8 font (SDLTest_DrawString), whose glyph textures are cached per process,
 * so view_renderer_release drops them when a renderer goes away.
 */
#include "vkebm/view_sdl.h"

#include <SDL_test_font.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/image.h"

/* The key codes of view.h are SDL's. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(VIEW_KEY_TAB, SDLK_TAB) && SAME(VIEW_KEY_ESCAPE, SDLK_ESCAPE) &&
                   SAME(VIEW_KEY_SPACE, SDLK_SPACE) && SAME(VIEW_KEY_F1, SDLK_F1) &&
                   SAME(VIEW_KEY_RIGHT, SDLK_RIGHT) && SAME(VIEW_KEY_LEFT, SDLK_LEFT) &&
                   SAME(VIEW_KEY_UP, SDLK_UP) && SAME(VIEW_KEY_DOWN, SDLK_DOWN) &&
                   SAME(VIEW_KEY_KP_MINUS, SDLK_KP_MINUS) && SAME(VIEW_KEY_KP_PLUS, SDLK_KP_PLUS),
               "view.h key codes must equal SDL_Keycode values");

#define LINE 10     /* FONT_LINE_HEIGHT */
#define MARGIN 6
#define CHAR_W 8
#define METER_W 120
#define PANEL_FIXED_LINES 4 /* expression (2 lines), rates, status */
#define GRID_PAD_VALUE 0.15f

static int panel_lines(const view_state *s) { return PANEL_FIXED_LINES + s->expr.num_terms; }

int view_layout_panel_height(const view_state *s) {
  return s->show_overlay ? panel_lines(s) * LINE + 2 * MARGIN : 0;
}

static int grid_cols(int B) {
  int c = (int)ceil(sqrt((double)B));
  return c < 1 ? 1 : c;
}

void view_layout_grid_size(int B, int H, int W, int padding, int *gw, int *gh) {
  int cols = grid_cols(B), rows = (B + cols - 1) / cols;
  *gw = cols * (W + padding) + padding;
  *gh = rows * (H + padding) + padding;
}

void view_layout_window_size(const view_state *s, int B, int H, int W, int scale, int *win_w,
                             int *win_h) {
  int gw, gh;
  view_layout_grid_size(B, H, W, 2, &gw, &gh);
  *win_w = gw * scale < 560 ? 560 : gw * scale; /* room for a 70-character panel line */
  *win_h = view_layout_panel_height(s) + gh * scale;
}

void view_renderer_init(view_renderer *vr, SDL_Renderer *r) {
  memset(vr, 0, sizeof *vr);
  vr->r = r;
  vr->padding = 2;
}

void view_renderer_release(view_renderer *vr) {
  if (vr->grid) SDL_DestroyTexture(vr->grid);
  free(vr->grid_rgb);
  vr->grid = NULL;
  vr->grid_rgb = NULL;
  SDLTest_CleanupTextDrawing();
}

static void color(SDL_Renderer *r, int R, int G, int B, int A) {
  SDL_SetRenderDrawColor(r, (Uint8)R, (Uint8)G, (Uint8)B, (Uint8)A);
}

/* Text clipped to max_chars characters. */
static void text(SDL_Renderer *r, int x, int y, const char *s, int max_chars) {
  char buf[512];
  if (max_chars < 0) max_chars = 0;
  if (max_chars > (int)sizeof buf - 1) max_chars = (int)sizeof buf - 1;
  size_t n = strlen(s) < (size_t)max_chars ? strlen(s) : (size_t)max_chars;
  memcpy(buf, s, n);
  buf[n] = 0;
  SDLTest_DrawString(r, x, y, buf);
}

/* Uploads the grid of the frame's images into vr->grid (recreated when the size changes). */
static int upload_grid(view_renderer *vr, const view_frame *f) {
  int gw, gh;
  uint8_t *rgb = img_make_grid(f->images, f->B, f->W, f->H, grid_cols(f->B), vr->padding,
                               GRID_PAD_VALUE, &gw, &gh);
  if (!rgb) return SDL_SetError("out of memory for the grid");
  if (!vr->grid || vr->grid_w != gw || vr->grid_h != gh) {
    if (vr->grid) SDL_DestroyTexture(vr->grid);
    vr->grid = SDL_CreateTexture(vr->r, SDL_PIXELFORMAT_RGB24, SDL_TEXTUREACCESS_STREAMING, gw, gh);
    if (!vr->grid) {
      free(rgb);
      return -1;
    }
    SDL_SetTextureScaleMode(vr->grid, SDL_ScaleModeNearest);
    vr->grid_w = gw;
    vr->grid_h = gh;
  }
  int rc = SDL_UpdateTexture(vr->grid, NULL, rgb, gw * 3);
  free(rgb);
  return rc;
}

static void draw_panel(view_renderer *vr, int w, const view_frame *f, const view_state *s,
                       const view_stats *st) {
  SDL_Renderer *r = vr->r;
  int cols = (w - 2 * MARGIN) / CHAR_W, y = MARGIN;
  char line[1024], expr[900];
  view_expr_text(&s->expr, expr, sizeof expr);
  /* the expression on up to two lines */
  color(r, 255, 255, 255, 255);
  /* break the line at the last space that fits */
  int brk = (int)strlen(expr);
  if (brk > cols) {
    brk = cols;
    for (int i = cols; i > cols / 2; i--)
      if (expr[i] == ' ') {
        brk = i;
        break;
      }
  }
  snprintf(line, sizeof line, "%.*s", brk, expr);
  text(r, MARGIN, y, line, cols);
  if (expr[brk]) text(r, MARGIN, y + LINE, expr + brk + (expr[brk] == ' '), cols);
  y += 2 * LINE;
  color(r, 170, 220, 255, 255);
  if (st->headless)
    snprintf(line, sizeof line, "frame %ld  steps %ld  step size %.4g  %d steps/frame%s", st->frame,
             f->steps, s->step_size, s->steps_per_frame, s->paused ? "  PAUSED" : "");
  else
    snprintf(line, sizeof line, "%.1f fps  %.1f new/s  %.0f steps/s  size %.4g  %d/frame%s%s",
             st->fps, st->new_fps, st->steps_per_second, s->step_size, s->steps_per_frame,
             s->spf_auto ? " auto" : "", s->paused ? "  PAUSED" : "");
  text(r, MARGIN, y, line, cols);
  y += LINE;
  color(r, 255, 200, 120, 255);
  text(r, MARGIN, y, f->error[0] ? f->error : s->status, cols);
  y += LINE;
  /* per-term rows: meters relative to the largest |mean energy| of the terms that are on */
  float emax = 0.0f;
  for (int k = 0; k < s->expr.num_terms; k++)
    if (isfinite(f->term_mean[k]) && fabsf(f->term_mean[k]) > emax) emax = fabsf(f->term_mean[k]);
  for (int k = 0; k < s->expr.num_terms; k++, y += LINE) {
    char term[256], energy[32];
    view_expr_term_text(&s->expr, k, term, sizeof term);
    int on = s->expr.enabled[k];
    float e = f->term_mean[k];
    if (on && isfinite(e)) snprintf(energy, sizeof energy, "E %10.4g", e);
    else snprintf(energy, sizeof energy, "E %10s", on ? "..." : "off");
    int sel = k == s->expr.selected;
    snprintf(line, sizeof line, "%c%d %-3s %-28.28s %s", sel ? '>' : ' ', k + 1, on ? "on" : "off",
             term, energy);
    if (!on) color(r, 130, 130, 130, 255);
    else if (sel) color(r, 255, 255, 90, 255);
    else color(r, 235, 235, 235, 255);
    text(r, MARGIN, y, line, cols);
    int mx = MARGIN + (int)strlen(line) * CHAR_W + CHAR_W;
    if (mx + METER_W <= w - MARGIN) {
      color(r, 70, 70, 70, 255);
      SDL_RenderDrawRect(r, &(SDL_Rect){mx, y, METER_W, 8});
      /* centred: a term better satisfied (a lower energy; for a NOT term, a higher one) grows
       * green to the left, a worse one red to the right, relative to the largest |E| of the
       * terms that are on */
      int mid = mx + METER_W / 2;
      SDL_RenderDrawLine(r, mid, y, mid, y + 7);
      if (on && isfinite(e) && emax > 0.0f) {
        float good = view_expr_term_negated(&s->expr, k) ? e : -e;
        int fill = (int)lroundf((METER_W / 2 - 1) * fabsf(e) / emax);
        if (good > 0) color(r, 90, 200, 120, 255);
        else color(r, 220, 90, 90, 255);
        SDL_RenderFillRect(r, &(SDL_Rect){good > 0 ? mid - fill : mid + 1, y + 1, fill, 6});
      }
    }
  }
}

static void draw_help(SDL_Renderer *r, int x0, int y0, int w, int h) {
  char line[160];
  int n = view_num_bindings, width = 0;
  for (int i = 0; view_help_line(i, line, sizeof line); i++)
    if ((int)strlen(line) > width) width = (int)strlen(line);
  int bw = (width + 2) * CHAR_W, bh = (n + 3) * LINE;
  if (bw > w) bw = w;
  int bx = x0 + (w - bw) / 2, by = y0 + (h - bh) / 2;
  if (by < 0) by = 0;
  SDL_SetRenderDrawBlendMode(r, SDL_BLENDMODE_BLEND);
  color(r, 0, 0, 0, 215);
  SDL_RenderFillRect(r, &(SDL_Rect){bx, by, bw, bh});
  SDL_SetRenderDrawBlendMode(r, SDL_BLENDMODE_NONE);
  color(r, 255, 255, 90, 255);
  SDL_RenderDrawRect(r, &(SDL_Rect){bx, by, bw, bh});
  text(r, bx + CHAR_W, by + LINE / 2, "keys (H or F1 closes)", bw / CHAR_W - 2);
  color(r, 255, 255, 255, 255);
  for (int i = 0; view_help_line(i, line, sizeof line); i++)
    text(r, bx + CHAR_W, by + LINE / 2 + (i + 2) * LINE, line, bw / CHAR_W - 2);
}

int view_render(view_renderer *vr, int w, int h, const view_frame *f, const view_state *s,
                const view_stats *st) {
  SDL_Renderer *r = vr->r;
  color(r, 24, 24, 28, 255);
  if (SDL_RenderClear(r)) return -1;
  if (f->images && upload_grid(vr, f)) return -1;
  int panel = vr->grid_only ? 0 : view_layout_panel_height(s);
  int avail_w = w, avail_h = h - panel;
  if (vr->grid && avail_h > 0) {
    int scale = avail_w / vr->grid_w < avail_h / vr->grid_h ? avail_w / vr->grid_w
                                                            : avail_h / vr->grid_h;
    if (scale < 1) scale = 1;
    SDL_Rect dst = {(avail_w - vr->grid_w * scale) / 2, panel + (avail_h - vr->grid_h * scale) / 2,
                    vr->grid_w * scale, vr->grid_h * scale};
    if (SDL_RenderCopy(r, vr->grid, NULL, &dst)) return -1;
  }
  if (vr->grid_only) return 0;
  if (panel > 0) draw_panel(vr, w, f, s, st);
  if (s->show_help) draw_help(r, 0, panel, w, h - panel);
  return 0;
}

int view_sdl_pump(view_state *s) {
  SDL_Event ev;
  int keys = 0;
  while (SDL_PollEvent(&ev)) {
    if (ev.type == SDL_QUIT) s->quit = 1;
    else if (ev.type == SDL_KEYDOWN) {
      view_state_key(s, ev.key.keysym.sym);
      keys++;
    } else if (ev.type == SDL_WINDOWEVENT) {
      keys += ev.window.event == SDL_WINDOWEVENT_EXPOSED ||
              ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED;
    }
  }
  return keys;
}

int view_screenshot(SDL_Renderer *r, int w, int h, const char *path, const view_state *s,
                    const char *settings, char *err, size_t errlen) {
  uint8_t *rgb = malloc((size_t)w * h * 3);
  if (!rgb) {
    snprintf(err, errlen, "screenshot: out of memory");
    return -1;
  }
  if (SDL_RenderReadPixels(r, &(SDL_Rect){0, 0, w, h}, SDL_PIXELFORMAT_RGB24, rgb, w * 3)) {
    snprintf(err, errlen, "screenshot: %s", SDL_GetError());
    free(rgb);
    return -1;
  }
  char expr[1024];
  view_expr_text(&s->expr, expr, sizeof expr);
  img_text t[2] = {{"vkebm:expr", expr}, {"vkebm:settings", settings}};
  int rc = img_write_png_rgb8(path, rgb, w, h, t, 2, err, errlen);
  free(rgb);
  return rc;
}
