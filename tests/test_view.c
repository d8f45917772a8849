/* test_view.c: the viewer's library under SDL's dummy video driver (no display needed).
 * Key events pushed through SDL_PushEvent change the expression tree exactly as the bindings
 * say (including refusals that would unground a negation); the engine keeps chains warm across
 * edits and is bit-reproducible; the threaded runner publishes frames without the UI waiting;
 * the overlay and help box draw; a screenshot has the window's size, real content and the
 * expression in its metadata. cpu backend, 16x16 analytic concepts: runs in about a second. */
#include <SDL.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/image.h"
#include "vkebm/model.h"
#include "vkebm/view_sdl.h"

#define RES 16
#define CHAINS 4

static ebm_concept_set set;

static void press(int key) {
  SDL_Event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = SDL_KEYDOWN;
  ev.key.state = SDL_PRESSED;
  ev.key.keysym.sym = key;
  ev.key.keysym.scancode = SDL_GetScancodeFromKey(key);
  TU_CHECK(SDL_PushEvent(&ev) == 1, "SDL_PushEvent: %s", SDL_GetError());
}

/* Presses the keys through SDL's queue and pumps them into the state. */
static void keys(view_state *s, const int *ks, int n) {
  for (int i = 0; i < n; i++) press(ks[i]);
  int got = view_sdl_pump(s);
  TU_CHECK(got >= n, "pumped %d of %d key events", got, n);
}
#define KEYS(s, ...)                                                                           \
  do {                                                                                         \
    int ks_[] = {__VA_ARGS__};                                                                 \
    keys(s, ks_, (int)(sizeof ks_ / sizeof *ks_));                                             \
  } while (0)

/* The active tree equals the parse of want. */
static void expect_expr(const view_state *s, const char *want, const char *what) {
  char got[512];
  view_expr_text(&s->expr, got, sizeof got);
  int empty;
  expr_node *t = view_expr_active(&s->expr, &empty);
  if (!strcmp(want, "(no terms on)")) {
    TU_CHECK(!t && empty, "%s: want no terms, got '%s'", what, got);
    expr_free(t);
    return;
  }
  expr_error err;
  expr_node *w = expr_parse(want, &err);
  TU_CHECK(w && t && expr_equal(t, w), "%s: want '%s', got '%s'", what, want, got);
  expr_free(w);
  expr_free(t);
}

static void test_keys(void) {
  view_state s;
  expr_error err;
  TU_CHECK(view_state_init(&s, "color=red AND shape=cube AND size=0.5", &set, 0.001f, 4, &err) == 0,
           "init: %s", err.msg);
  unsigned gen = s.expr_gen;
  KEYS(&s, '2', 't');
  expect_expr(&s, "color=red AND size=0.5", "2 T turns term 2 off");
  TU_CHECK(s.expr_gen == gen + 1 && s.expr.selected == 1, "gen %u sel %d", s.expr_gen,
           s.expr.selected);
  KEYS(&s, 't');
  expect_expr(&s, "color=red AND shape=cube AND size=0.5", "T again turns it back on");
  KEYS(&s, 'c');
  expect_expr(&s, "color=red AND shape=sphere AND size=0.5", "C: next shape");
  KEYS(&s, 'C', 'c');
  expect_expr(&s, "color=red AND shape=cube AND size=0.5", "C C: wraps around the 3 shapes");
  KEYS(&s, 'x');
  expect_expr(&s, "color=red AND shape=cylinder AND size=0.5", "X: previous shape");
  KEYS(&s, SDLK_LEFT, 'c');
  expect_expr(&s, "color=green AND shape=cylinder AND size=0.5", "Left selects term 1, C: next colour");
  KEYS(&s, SDLK_TAB, SDLK_TAB, 'c');
  /* size: 5 presets over [0.1, 1] at bin centres 0.19, 0.37, 0.55, 0.73, 0.91; 0.5 -> nearest 0.55 -> next 0.73 */
  expect_expr(&s, "color=green AND shape=cylinder AND size=0.73", "Tab Tab selects size, C: next preset");
  KEYS(&s, SDLK_RIGHT, 'n');
  expect_expr(&s, "NOT color=green AND shape=cylinder AND size=0.73", "Right wraps to term 1, N negates it");
  TU_CHECK(view_expr_term_negated(&s.expr, 0), "term 1 negated");
  gen = s.expr_gen;
  KEYS(&s, 'o');
  expect_expr(&s, "NOT color=green AND shape=cylinder AND size=0.73", "O refused: OR would unground the NOT");
  TU_CHECK(s.expr_gen == gen && strstr(s.status, "refused"), "status '%s'", s.status);
  KEYS(&s, '2', 't', '3', 't');
  TU_CHECK(strstr(s.status, "ungrounded") != NULL, "turning off the last positive term is refused: '%s'", s.status);
  expect_expr(&s, "NOT color=green AND size=0.73", "2 went off, 3 refused");
  KEYS(&s, '1', 't', 'n', 'o');
  expect_expr(&s, "size=0.73", "1 off; N un-negates it and O makes its operator OR, while off");
  KEYS(&s, 't', '2', 't');
  expect_expr(&s, "color=green OR shape=cylinder OR size=0.73", "1 and 2 back on, under OR");
  view_state_free(&s);

  /* a fresh state for the operator and the settings keys */
  TU_CHECK(view_state_init(&s, "color=red AND position=(0.3,-0.3)", &set, 0.001f, 4, &err) == 0,
           "init: %s", err.msg);
  KEYS(&s, 'o');
  expect_expr(&s, "color=red OR position=(0.3,-0.3)", "O: AND -> OR");
  KEYS(&s, 'O');
  expect_expr(&s, "color=red AND position=(0.3,-0.3)", "O: OR -> AND");
  KEYS(&s, SDLK_TAB, 'c');
  /* 3x3 presets over [-1,1]^2 at -2/3, 0, 2/3; (0.3,-0.3) is nearest (0,0) = point 4 -> point 5 */
  expect_expr(&s, "color=red AND position=(0.667,0)", "Tab selects position, C: next preset point");
  KEYS(&s, '5');
  TU_CHECK(strstr(s.status, "no term 5") != NULL, "status '%s'", s.status);
  KEYS(&s, '1', 't', '2', 't');
  expect_expr(&s, "(no terms on)", "both off");
  float st = s.step_size;
  KEYS(&s, '+');
  TU_CHECK(fabsf(s.step_size - st * 1.25f) < 1e-9f, "+ scales the step by 1.25: %g", s.step_size);
  KEYS(&s, '-', '-');
  TU_CHECK(fabsf(s.step_size - st / 1.25f) < 1e-9f, "- - : %g", s.step_size);
  KEYS(&s, '=', SDLK_KP_PLUS, SDLK_KP_MINUS);
  TU_CHECK(fabsf(s.step_size - st) < 1e-9f, "= keypad+ keypad-: %g", s.step_size);
  KEYS(&s, ']', ']');
  TU_CHECK(s.steps_per_frame == 16, "] ] : %d", s.steps_per_frame);
  KEYS(&s, '[', '[', '[', '[', '[');
  TU_CHECK(s.steps_per_frame == 1, "[ x5 clamps at 1: %d", s.steps_per_frame);
  KEYS(&s, ' ');
  TU_CHECK(s.paused, "space pauses");
  KEYS(&s, ' ', 'r', 'r', 's');
  TU_CHECK(!s.paused && s.restart_count == 2 && s.screenshot_count == 1, "paused %d restarts %u shots %u",
           s.paused, s.restart_count, s.screenshot_count);
  KEYS(&s, 'h');
  TU_CHECK(s.show_help, "H shows help");
  KEYS(&s, SDLK_F1);
  TU_CHECK(!s.show_help, "F1 hides it");
  KEYS(&s, 'i');
  TU_CHECK(!s.show_overlay, "I hides the overlay");
  KEYS(&s, 'i');
  TU_CHECK(!s.quit, "not quit yet");
  KEYS(&s, SDLK_ESCAPE);
  TU_CHECK(s.quit, "Esc quits");
  s.quit = 0;
  KEYS(&s, 'q');
  TU_CHECK(s.quit, "Q quits");
  SDL_Event quit = {.type = SDL_QUIT};
  s.quit = 0;
  SDL_PushEvent(&quit);
  view_sdl_pump(&s);
  TU_CHECK(s.quit, "window close quits");
  view_state_free(&s);

  /* the help lists every binding, from the same table (equal actions share a line) */
  char help[64][256];
  int n = 0;
  while (n < 64 && view_help_line(n, help[n], sizeof help[n])) n++;
  for (int b = 0; b < view_num_bindings; b++) {
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
      const char *h = strstr(help[i], view_bindings[b].help);
      size_t kl = strlen(view_bindings[b].keys);
      /* the key label must be a whole word before the text */
      for (const char *k = help[i]; h && (k = strstr(k, view_bindings[b].keys)) && k < h; k++)
        if ((k == help[i] || k[-1] == ' ') && k[kl] == ' ') found = 1;
    }
    TU_CHECK(found, "binding %d (%s: %s) is in the help", b, view_bindings[b].keys,
             view_bindings[b].help);
  }
  TU_CHECK(n >= 15 && n < view_num_bindings, "%d help lines for %d bindings", n,
           view_num_bindings);
  TU_CHECK(strstr(help[2], "Tab Right") == help[2], "keys of one action share a line: '%s'", help[2]);
  /* every key of the table dispatches: a key outside it does nothing */
  TU_CHECK(view_state_init(&s, "color=red", &set, 1.0f, 1, &err) == 0, "init");
  TU_CHECK(view_state_key(&s, 'z') == 0 && view_state_key(&s, '0') == 0, "unbound keys");
  for (int b = 0; b < view_num_bindings; b++)
    TU_CHECK(view_state_key(&s, view_bindings[b].key_first) == 1, "binding %d", b);
  view_state_free(&s);
  /* more than 9 terms cannot be keyed */
  TU_CHECK(view_state_init(&s, "color=red AND color=red AND color=red AND color=red AND color=red "
                               "AND color=red AND color=red AND color=red AND color=red AND "
                               "color=red", &set, 1.0f, 1, &err) == -1 && strstr(err.msg, "at most"),
           "10 terms refused: %s", err.msg);
}

static void test_keyscript(void) {
  view_key_event *ev;
  int n;
  char err[256];
  TU_CHECK(view_keyscript_parse("10:2 3:c,space;3:o 0:f1,q,,", &ev, &n, err, sizeof err) == 0,
           "parse: %s", err);
  int want_f[] = {0, 0, 0, 3, 3, 3, 10};
  int want_k[] = {SDLK_F1, 'q', ',', 'c', ' ', 'o', '2'};
  TU_CHECK(n == 7, "%d events", n);
  for (int i = 0; i < n && i < 7; i++)
    TU_CHECK(ev[i].frame == want_f[i] && ev[i].key == want_k[i], "event %d: %ld:%d", i,
             ev[i].frame, ev[i].key);
  free(ev);
  TU_CHECK(view_keyscript_parse("x:2", &ev, &n, err, sizeof err) == -1 && strstr(err, "FRAME"),
           "bad frame: %s", err);
  TU_CHECK(view_keyscript_parse("4:bogus", &ev, &n, err, sizeof err) == -1 && strstr(err, "bogus"),
           "bad key: %s", err);
}

static void test_engine(ebm_backend *be) {
  char err[256];
  view_engine_config cfg = {.chains = CHAINS,
                            .sampler = {.kind = EBM_SAMPLER_LANGEVIN, .clip = 1,
                                        .energy_scale = 1.0f, .seed = 7}};
  view_engine *a = view_engine_create(be, &set, &cfg, err, sizeof err);
  view_engine *b = view_engine_create(be, &set, &cfg, err, sizeof err);
  TU_CHECK(a && b, "engine: %s", err);
  if (!a || !b) return;
  size_t n = (size_t)CHAINS * 3 * RES * RES;
  float *x0 = malloc(n * 4), *x1 = malloc(n * 4), *y = malloc(n * 4), tm[VIEW_MAX_TERMS];
  view_state s;
  expr_error xe;
  view_state_init(&s, "color=red AND shape=sphere", &set, 0.001f, 4, &xe);
  int map[VIEW_MAX_TERMS], na = view_expr_active_map(&s.expr, map), empty;
  expr_node *t = view_expr_active(&s.expr, &empty);
  TU_CHECK(view_engine_set_expr(a, t, map, na, err, sizeof err) == 0, "%s", err);
  TU_CHECK(view_engine_set_expr(b, t, map, na, err, sizeof err) == 0, "%s", err);
  expr_free(t);
  view_engine_step(a, 5, 0.001f, err, sizeof err);
  view_engine_read(a, x0, tm, err, sizeof err);
  TU_CHECK(isfinite(tm[0]) && isfinite(tm[1]) && tm[0] > 0 && tm[1] > 0, "term means %g %g",
           tm[0], tm[1]);
  /* toggle term 2 off: a new composition, the same chains */
  view_state_key(&s, '2');
  view_state_key(&s, 't');
  na = view_expr_active_map(&s.expr, map);
  t = view_expr_active(&s.expr, &empty);
  TU_CHECK(view_engine_set_expr(a, t, map, na, err, sizeof err) == 0, "%s", err);
  expr_free(t);
  view_engine_read(a, x1, tm, err, sizeof err);
  TU_CHECK(memcmp(x0, x1, n * 4) == 0, "toggling keeps the chains where they are");
  view_engine_step(a, 3, 0.001f, err, sizeof err);
  view_engine_read(a, x1, tm, err, sizeof err);
  TU_CHECK(isfinite(tm[0]) && isnan(tm[1]), "term 2 off has no mean: %g %g", tm[0], tm[1]);
  TU_CHECK(memcmp(x0, x1, n * 4) != 0, "steps move the chains");
  /* b did the same steps with the same seed and key sequence: same bits */
  view_engine_step(b, 5, 0.001f, err, sizeof err);
  t = view_expr_active(&s.expr, &empty);
  view_engine_set_expr(b, t, map, na, err, sizeof err);
  expr_free(t);
  view_engine_step(b, 3, 0.001f, err, sizeof err);
  view_engine_read(b, y, NULL, err, sizeof err);
  TU_CHECK(memcmp(x1, y, n * 4) == 0, "reproducible bit for bit");
  TU_CHECK(view_engine_steps_done(b) == 8, "steps %ld", view_engine_steps_done(b));
  /* restart: back to noise */
  view_engine_restart(b, 1, err, sizeof err);
  view_engine_read(b, y, NULL, err, sizeof err);
  TU_CHECK(memcmp(x1, y, n * 4) != 0, "restart re-draws the chains");
  view_state_free(&s);
  free(x0);
  free(x1);
  free(y);
  view_engine_destroy(a);
  view_engine_destroy(b);
  /* a concept of another image size cannot join */
  ebm_concept_set bad = {0};
  ebm_concept_set_add(&bad, ebm_concept_create_builtin(be, "color", 8, 1.0f, 4, err, sizeof err), 1,
                      err, sizeof err);
  ebm_concept_set_add(&bad, ebm_concept_create_builtin(be, "shape", 16, 1.0f, 4, err, sizeof err), 1,
                      err, sizeof err);
  TU_CHECK(!view_engine_create(be, &bad, &cfg, err, sizeof err) && strstr(err, "different"),
           "mixed sizes: %s", err);
  ebm_concept_set_clear(&bad);
}


/* Writes DIR/color.safetensors (red, green, blue) and DIR/shape.safetensors (cube, sphere):
 * tiny 8x8 networks with seeded random weights, enough to drive the learned-model path. */
static int write_models(ebm_backend *be, const char *dir) {
  static const char *const concepts[2] = {"color", "shape"};
  static const char *const names[2][3] = {{"red", "green", "blue"}, {"cube", "sphere", ""}};
  static const int dims[2] = {3, 2};
  char err[256];
  for (int m = 0; m < 2; m++) {
    ebm_net_config cfg;
    ebm_net *net = NULL;
    if (ebm_net_config_preset(&cfg, "tiny", dims[m]) ||
        ebm_net_create(&net, be, &cfg, 4, 11 + (uint64_t)m, err, sizeof err)) {
      fprintf(stderr, "tiny net: %s\n", err);
      return -1;
    }
    ebm_model_info info;
    ebm_model_info_default(&info, &cfg);
    snprintf(info.concept, sizeof info.concept, "%s", concepts[m]);
    info.label_kind = EBM_LABEL_ONEHOT;
    for (int k = 0; k < dims[m]; k++)
      snprintf(info.label_names[k], sizeof info.label_names[k], "%s", names[m][k]);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, concepts[m]);
    int rc = ebm_model_save(path, net, &info, NULL, 0, err, sizeof err);
    ebm_net_destroy(net);
    if (rc) {
      fprintf(stderr, "%s: %s\n", path, err);
      return -1;
    }
  }
  return 0;
}

/* The learned path: values cycle through the model file's label names; the paper sampler moves
 * the chains; per-term means come back. */
static void test_learned(ebm_backend *be) {
  char dir[] = "/tmp/test_view_models_XXXXXX", err[256];
  TU_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  if (write_models(be, dir)) {
    TU_CHECK(0, "writing the tiny models");
    return;
  }
  ebm_concept_set ls = {0};
  const char *files[2] = {"color", "shape"};
  for (int m = 0; m < 2; m++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, files[m]);
    ebm_concept *c = ebm_concept_load_learned(be, path, CHAINS * VIEW_MAX_TERMS, err, sizeof err);
    TU_CHECK(c && ebm_concept_set_add(&ls, c, 1, err, sizeof err) == 0, "%s: %s", path, err);
    unlink(path);
  }
  rmdir(dir);
  if (ls.count != 2) return;
  view_state s;
  expr_error xe;
  TU_CHECK(view_state_init(&s, "color=blue AND shape=sphere", &ls, 100.0f, 2, &xe) == 0, "%s",
           xe.msg);
  view_state_key(&s, 'c');
  expect_expr(&s, "color=red AND shape=sphere", "C wraps blue -> red from the file's label names");
  view_state_key(&s, SDLK_TAB);
  view_state_key(&s, 'c');
  expect_expr(&s, "color=red AND shape=cube", "C: sphere -> cube");
  view_engine_config cfg = {.chains = CHAINS,
                            .sampler = {.kind = EBM_SAMPLER_PAPER, .noise_std = 0.005f, .clip = 1,
                                        .energy_scale = 1.0f, .seed = 2}};
  view_engine *e = view_engine_create(be, &ls, &cfg, err, sizeof err);
  TU_CHECK(e != NULL, "engine: %s", err);
  if (e) {
    int map[VIEW_MAX_TERMS], na = view_expr_active_map(&s.expr, map), empty;
    expr_node *t = view_expr_active(&s.expr, &empty);
    TU_CHECK(view_engine_set_expr(e, t, map, na, err, sizeof err) == 0, "%s", err);
    expr_free(t);
    size_t n = (size_t)CHAINS * 3 * 8 * 8;
    float *a = malloc(n * 4), *b = malloc(n * 4), tm[VIEW_MAX_TERMS];
    view_engine_read(e, a, NULL, err, sizeof err);
    TU_CHECK(view_engine_step(e, 3, 100.0f, err, sizeof err) == 0, "step: %s", err);
    view_engine_read(e, b, tm, err, sizeof err);
    TU_CHECK(memcmp(a, b, n * 4) != 0, "the paper sampler moved the chains");
    TU_CHECK(isfinite(tm[0]) && isfinite(tm[1]), "learned term means %g %g", tm[0], tm[1]);
    free(a);
    free(b);
    view_engine_destroy(e);
  }
  view_state_free(&s);
  ebm_concept_set_clear(&ls);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The threaded runner publishes frames; take() never waits. Then draws and a screenshot. */
static void test_runner_and_render(ebm_backend *be) {
  char err[256];
  view_engine_config cfg = {.chains = CHAINS,
                            .sampler = {.kind = EBM_SAMPLER_LANGEVIN, .clip = 1,
                                        .energy_scale = 1.0f, .seed = 3}};
  view_engine *e = view_engine_create(be, &set, &cfg, err, sizeof err);
  TU_CHECK(e != NULL, "%s", err);
  if (!e) return;
  view_state s;
  expr_error xe;
  view_state_init(&s, "color=blue AND position=(-0.5,0.5)", &set, 0.001f, 4, &xe);
  view_runner *r = view_runner_create(e, 1, err, sizeof err);
  view_frame f = {0};
  int frames = 0;
  double worst_take = 0, t0 = now_s();
  while (frames < 10 && now_s() - t0 < 20.0) {
    TU_CHECK(view_runner_control(r, &s) == 0, "worker thread started");
    double a = now_s();
    frames += view_runner_take(r, &f);
    double d = now_s() - a;
    if (d > worst_take) worst_take = d;
    usleep(1000);
  }
  TU_CHECK(frames == 10 && f.steps >= 36 && f.seq >= 10, "frames %d steps %ld seq %u", frames,
           f.steps, f.seq);
  TU_CHECK(worst_take < 0.05, "take() returned within %.3f s", worst_take);
  printf("runner: 10 frames, slowest take %.6f s\n", worst_take);
  /* paused: the published frame and the one waiting to be published arrive, then nothing */
  s.paused = 1;
  view_runner_control(r, &s);
  for (int i = 0; i < 2; i++) {
    usleep(100 * 1000);
    view_runner_take(r, &f);
  }
  usleep(100 * 1000);
  long steps_paused = f.steps;
  TU_CHECK(view_runner_take(r, &f) == 0, "paused: no new frames");
  s.paused = 0;
  view_runner_control(r, &s);
  for (t0 = now_s(); !view_runner_take(r, &f) && now_s() - t0 < 20.0;) usleep(1000);
  TU_CHECK(f.steps > steps_paused, "resumed: steps %ld after %ld", f.steps, steps_paused);
  view_runner_stop(r);
  TU_CHECK(isfinite(f.term_mean[0]) && isfinite(f.term_mean[1]), "meters %g %g", f.term_mean[0],
           f.term_mean[1]);

  /* draw into the dummy window */
  int B = CHAINS, W, H;
  view_layout_window_size(&s, B, RES, RES, 6, &W, &H);
  SDL_Window *win = SDL_CreateWindow("test", 0, 0, W, H, 0);
  SDL_Renderer *ren = win ? SDL_CreateRenderer(win, -1, SDL_RENDERER_SOFTWARE) : NULL;
  TU_CHECK(ren != NULL, "renderer: %s", SDL_GetError());
  if (!ren) return;
  int rw, rh;
  SDL_GetRendererOutputSize(ren, &rw, &rh);
  TU_CHECK(rw == W && rh == H, "output %dx%d want %dx%d", rw, rh, W, H);
  view_renderer vr;
  view_renderer_init(&vr, ren);
  view_stats st = {.fps = 60, .new_fps = 59, .steps_per_second = 240, .frame = 10};
  uint8_t *plain = malloc((size_t)W * H * 3), *help = malloc((size_t)W * H * 3);
  TU_CHECK(view_render(&vr, W, H, &f, &s, &st) == 0, "render: %s", SDL_GetError());
  SDL_RenderReadPixels(ren, NULL, SDL_PIXELFORMAT_RGB24, plain, W * 3);
  s.show_help = 1;
  TU_CHECK(view_render(&vr, W, H, &f, &s, &st) == 0, "render: %s", SDL_GetError());
  SDL_RenderReadPixels(ren, NULL, SDL_PIXELFORMAT_RGB24, help, W * 3);
  int panel = view_layout_panel_height(&s);
  long text_px = 0, help_diff = 0;
  for (int y = 0; y < panel; y++)
    for (int x = 0; x < W; x++) {
      const uint8_t *p = plain + ((size_t)y * W + x) * 3;
      text_px += p[0] > 100 || p[1] > 100 || p[2] > 100;
    }
  for (int y = panel; y < H; y++)
    for (int x = 0; x < W; x++)
      help_diff += memcmp(plain + ((size_t)y * W + x) * 3, help + ((size_t)y * W + x) * 3, 3) != 0;
  printf("overlay: %ld lit text pixels in the panel, help box changes %ld grid pixels\n", text_px,
         help_diff);
  TU_CHECK(text_px > 2000, "the panel has text: %ld lit pixels", text_px);
  TU_CHECK(help_diff > (long)W * (H - panel) / 4, "help box drawn: %ld pixels", help_diff);
  /* the grid is at integer scale 6: every image pixel is a 6x6 block */
  int gw, gh;
  view_layout_grid_size(B, RES, RES, 2, &gw, &gh);
  int x0 = (W - gw * 6) / 2 + 2 * 6, y0 = panel + ((H - panel) - gh * 6) / 2 + 2 * 6;
  long bad = 0;
  for (int i = 0; i < RES * 6; i++)
    for (int j = 0; j < RES * 6; j++)
      bad += memcmp(plain + ((size_t)(y0 + i) * W + x0 + j) * 3,
                    plain + ((size_t)(y0 + i / 6 * 6) * W + x0 + j / 6 * 6) * 3, 3) != 0;
  TU_CHECK(bad == 0, "nearest integer scaling: %ld pixels differ from their block", bad);

  /* screenshot: the window's size, varied content, the expression in the metadata */
  s.show_help = 0;
  view_render(&vr, W, H, &f, &s, &st);
  char path[] = "/tmp/test_view_XXXXXX.png";
  int fd = mkstemps(path, 4);
  TU_CHECK(fd >= 0, "temp file");
  close(fd);
  TU_CHECK(view_screenshot(ren, W, H, path, &s, "sampler=langevin test", err, sizeof err) == 0,
           "screenshot: %s", err);
  uint8_t *rgb = NULL;
  int pw = 0, ph = 0, nt = 0;
  img_text *tx = NULL;
  TU_CHECK(img_read_png_rgb8(path, &rgb, &pw, &ph, &tx, &nt, err, sizeof err) == 0, "read: %s", err);
  TU_CHECK(pw == W && ph == H, "screenshot %dx%d, window %dx%d", pw, ph, W, H);
  if (rgb) {
    TU_CHECK(memcmp(rgb, plain, (size_t)W * H * 3) == 0, "screenshot = the drawn pixels");
    /* distinct colours: noise + objects + text, not a blank or flat image */
    static uint8_t seen[1 << 15];
    memset(seen, 0, sizeof seen);
    int distinct = 0;
    for (long i = 0; i < (long)W * H; i++) {
      int c = (rgb[i * 3] >> 3) << 10 | (rgb[i * 3 + 1] >> 3) << 5 | rgb[i * 3 + 2] >> 3;
      distinct += !seen[c];
      seen[c] = 1;
    }
    TU_CHECK(distinct > 50, "%d distinct colours", distinct);
    printf("screenshot %dx%d, %d distinct colours\n", pw, ph, distinct);
  }
  int found = 0;
  for (int i = 0; i < nt; i++)
    if (!strcmp(tx[i].key, "vkebm:expr"))
      found = !strcmp(tx[i].value, "color=blue AND position=(-0.5,0.5)");
  TU_CHECK(found, "expression in the metadata");
  img_text_free(tx, nt);
  free(rgb);
  unlink(path);
  free(plain);
  free(help);
  view_renderer_release(&vr);
  SDL_DestroyRenderer(ren);
  SDL_DestroyWindow(win);
  view_frame_free(&f);
  view_state_free(&s);
  view_engine_destroy(e);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-models")) {
    /* for tests/cli/view_headless.sh: learned models to run `vkebm view --models` on */
    ebm_backend *be = tu_cpu_backend();
    int rc = write_models(be, argv[2]);
    ebm_backend_destroy(be);
    return rc ? 1 : 0;
  }
  setenv("SDL_VIDEODRIVER", "dummy", 1);
  if (SDL_Init(SDL_INIT_VIDEO)) {
    fprintf(stderr, "SDL_Init (dummy driver): %s\n", SDL_GetError());
    return 1;
  }
  ebm_backend *be = tu_cpu_backend();
  char err[256];
  const char *names[] = {"color", "position", "size", "shape"};
  for (int i = 0; i < 4; i++) {
    ebm_concept *c = ebm_concept_create_builtin(be, names[i], RES, 100.0f, VIEW_MAX_TERMS, err,
                                                sizeof err);
    TU_CHECK(c && ebm_concept_set_add(&set, c, 1, err, sizeof err) == 0, "%s", err);
  }
  test_keys();
  test_keyscript();
  test_engine(be);
  test_runner_and_render(be);
  test_learned(be);
  ebm_concept_set_clear(&set);
  tu_backend_done(be);
  SDL_Quit();
  return tu_finish("test_view");
}
