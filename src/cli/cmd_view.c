/* cmd_view.c: `vkebm view --expr EXPR`: live sampling chains in an SDL2 window, with keys that
 * toggle terms, cycle values, switch operators and tune the sampler while the chains keep going.
 * `--headless --frames N -o DIR` runs the same loop without a display and writes PNG frames.
 *
 * A thin consumer of the viewer library (include/vkebm/view.h, view_sdl.h): this file parses
 * flags, loads the concept models, opens the window (or an off-screen surface) and runs the frame
 * loop: events -> state -> runner control -> take the newest frame -> draw -> present. In the
 * window the sampler runs in a worker thread (the UI never waits on it); headless, and with
 * --sync, each frame samples in the loop's own thread, so the frames are reproducible bit for
 * bit from the seed and the key script.
 */
#include "cli.h"

#ifndef VKEBM_HAVE_VIEW
#include <stdio.h>
int cmd_view(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_fail("view", "this vkebm was built without SDL2 (and SDL2_test): no viewer");
}
#else

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vkebm/view_sdl.h"

#define CMD_NAME "view"

typedef struct options {
  const char *expr;
  long chains, resolution, steps_per_frame, frames, scale, seed, device;
  int spf_given;
  double step_size, noise, beta, max_fps;
  int step_size_set, noise_set, sampler, analytic, headless, grid_only, sync, stats, quiet;
  const char *models, *outdir, *keys, *screenshot, *backend;
} options;

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm view [--expr] EXPR [options]\n"
          "       vkebm view --headless --frames N -o DIR --expr EXPR [--keys SCRIPT]\n\n"
          "Shows chains sampling a composition live. Keys toggle terms (1-9), cycle a term's value\n"
          "(C/X), switch AND/OR (O), toggle NOT (N), tune the sampler (+/-, [/]), pause (Space),\n"
          "restart (R), screenshot (S), help (H/F1), quit (Esc/Q). See docs/viewer.md.\n\n"
          "options:\n"
          "  --expr EXPR          the composition (at most 9 terms)\n"
          "  -n, --num N          chains, default 16\n"
          "  --models DIR         learned models (*.safetensors); default: $VKEBM_MODELS, else\n"
          "                       ./models, else the shipped models of the source tree\n"
          "  --analytic           use the analytic concepts (color, position, size, shape)\n"
          "  --resolution R       analytic image size, default 32\n"
          "  --sampler NAME       langevin (default for analytic concepts) or paper (for learned)\n"
          "  --step-size V        langevin: lambda (default 0.001); paper: eta (default 100)\n"
          "  --noise V            paper: sigma, default 0.005\n"
          "  --beta V             energy scale (inverse temperature), default 1\n"
          "  --seed S             random seed, default 1\n"
          "  --steps-per-frame K  chain steps per displayed frame (default: in a window, set for\n"
          "                       about 30 new frames a second until [ or ] is pressed; 4\n"
          "                       headless)\n"
          "  --frames N           stop after N frames (default: run until quit; headless: needed)\n"
          "  --headless           no window: write every frame as DIR/frame_NNNNN.png\n"
          "  -o, --output DIR     headless frames / screenshots (S) directory, default .\n"
          "  --keys SCRIPT        press keys at given frames: \"FRAME:KEY[,KEY] ...\", e.g. \"10:2 20:c\"\n"
          "  --grid-only          headless frames hold only the sample grid (no text)\n"
          "  --screenshot FILE    write the last frame as FILE at exit\n"
          "  --scale S            initial integer scale of the images (default: fit 1024x768)\n"
          "  --max-fps F          cap the window's frame rate (default 60, 0 = uncapped)\n"
          "  --sync               sample in the UI thread (one frame per frame, as headless)\n"
          "  --stats              print frame and step rates at exit (stdout)\n"
          "  --backend B          auto (default), cpu or vulkan; --device I picks a Vulkan device\n"
          "  --quiet              fewer messages\n");
}

/* The learned models of DIR, else the analytic concepts (ebm_concept_set_open). Exit code. */
static int load_models(ebm_backend *be, options *o, ebm_concept_set *set) {
  char err[512];
  if (ebm_concept_set_open(set, be, o->analytic ? NULL : o->models, (int)o->resolution,
                           (int)o->chains * VIEW_MAX_TERMS, err, sizeof err))
    return cli_fail(CMD_NAME, "%s", err);
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void describe(char *out, size_t len, const options *o, const view_engine_config *ec,
                     const view_state *s, const view_frame *f, const ebm_backend *be) {
  snprintf(out, len,
           "sampler=%s step_size=%.9g noise=%.9g beta=%.9g clip=%d seed=%u chains=%d "
           "steps_per_frame=%d steps=%ld models=%s resolution=%ld backend=%s",
           ebm_sampler_name(ec->sampler.kind), s->step_size, ec->sampler.noise_std,
           ec->sampler.energy_scale, ec->sampler.clip, ec->sampler.seed, ec->chains, s->steps_per_frame, f->steps,
           o->analytic ? "analytic" : o->models, o->resolution, ebm_backend_name(be));
}

/* Rates over a sliding window of about a second. */
typedef struct rates {
  double t0, t_start;
  long frames0, new0, steps0;
  long frames, news, steps_start;
  double work_sum, work_max; /* the loop's own time per frame (events, take, draw, present) */
  view_stats st;
} rates;

static void rates_update(rates *r, long steps) {
  double t = now_s();
  if (t - r->t0 >= 1.0) {
    r->st.fps = (r->frames - r->frames0) / (t - r->t0);
    r->st.new_fps = (r->news - r->new0) / (t - r->t0);
    r->st.steps_per_second = (steps - r->steps0) / (t - r->t0);
    r->t0 = t;
    r->frames0 = r->frames;
    r->new0 = r->news;
    r->steps0 = steps;
  }
}

static int write_shot(SDL_Renderer *r, int w, int h, const char *path, const options *o,
                      const view_engine_config *ec, const view_state *s, const view_frame *f,
                      const ebm_backend *be, int quiet) {
  char settings[512], err[512];
  describe(settings, sizeof settings, o, ec, s, f, be);
  if (view_screenshot(r, w, h, path, s, settings, err, sizeof err)) {
    fprintf(stderr, "vkebm view: %s\n", err);
    return -1;
  }
  if (!o->quiet && !quiet) fprintf(stderr, "vkebm view: wrote %s\n", path);
  return 0;
}

/* The frame loop shared by the window and headless modes. Returns an exit code. */
static int run_loop(options *o, ebm_backend *be, view_state *s, view_engine *eng,
                    const view_engine_config *ec, view_key_event *keys, int nkeys) {
  char err[512];
  int B = view_engine_chains(eng), C, H, W;
  view_engine_image_shape(eng, &C, &H, &W);
  int scale = (int)o->scale;
  if (scale <= 0) {
    int gw, gh;
    view_layout_grid_size(B, H, W, 2, &gw, &gh);
    scale = 1;
    while (gw * (scale + 1) <= 1024 && gh * (scale + 1) + view_layout_panel_height(s) <= 768)
      scale++;
  }
  int win_w, win_h;
  view_layout_window_size(s, B, H, W, scale, &win_w, &win_h);
  SDL_Window *win = NULL;
  SDL_Surface *surf = NULL;
  SDL_Renderer *ren = NULL;
  view_renderer vr;
  int rc = EXIT_OK;
  if (o->headless) {
    if (o->grid_only) {
      view_layout_grid_size(B, H, W, 2, &win_w, &win_h);
      win_w *= scale;
      win_h *= scale;
    }
    surf = SDL_CreateRGBSurfaceWithFormat(0, win_w, win_h, 32, SDL_PIXELFORMAT_RGB888);
    ren = surf ? SDL_CreateSoftwareRenderer(surf) : NULL;
  } else {
    if (SDL_InitSubSystem(SDL_INIT_VIDEO)) return cli_fail(CMD_NAME, "SDL: %s", SDL_GetError());
    /* without a display SDL falls back to a driver that draws nowhere: a window nobody sees
     * that exits 0 would look like success (SDL_VIDEODRIVER set by hand still wins) */
    const char *drv = SDL_GetCurrentVideoDriver(), *asked = getenv("SDL_VIDEODRIVER");
    if (drv && (!strcmp(drv, "offscreen") || !strcmp(drv, "dummy")) && !(asked && *asked)) {
      if (!o->quiet)
        fprintf(stderr, "vkebm view: no display (SDL found only its '%s' video driver); use "
                        "--headless -o DIR to write frames\n", drv);
      return EXIT_NO_DEVICE;
    }
    win = SDL_CreateWindow("vkebm view", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, win_w,
                           win_h, SDL_WINDOW_RESIZABLE);
    ren = win ? SDL_CreateRenderer(win, -1, SDL_RENDERER_SOFTWARE) : NULL;
  }
  if (!ren) {
    rc = cli_fail(CMD_NAME, "SDL: %s", SDL_GetError());
    goto out_sdl;
  }
  view_renderer_init(&vr, ren);
  vr.grid_only = o->headless && o->grid_only;

  int threaded = !o->headless && !o->sync;
  view_runner *run = view_runner_create(eng, threaded, err, sizeof err);
  if (!run) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto out_render;
  }
  view_frame frame = {0};
  rates rt = {0};
  rt.t0 = rt.t_start = now_s();
  rt.st.headless = o->headless;
  unsigned shots_done = 0, infer_seen = 0;
  long frames_written = 0;
  int next_key = 0;
  double frame_budget = o->max_fps > 0 ? 1.0 / o->max_fps : 0.0;
  double last_draw = -1.0;
  /* fi counts drawn frames; --frames and the key script count them too */
  for (long fi = 0; o->frames <= 0 || fi < o->frames;) {
    double t_frame = now_s();
    int news = o->headless ? 0 : view_sdl_pump(s);
    while (next_key < nkeys && keys[next_key].frame <= fi) {
      view_state_key(s, keys[next_key++].key);
      news++;
    }
    if (s->quit) break;
    if (view_runner_control(run, s)) {
      rc = cli_fail(CMD_NAME, "could not start the sampling thread");
      break;
    }
    if (!threaded && view_runner_sync(run)) {
      rc = cli_fail(CMD_NAME, "sampling stopped");
      break;
    }
    int got = view_runner_take(run, &frame);
    rt.news += got;
    if (got && s->spf_auto && frame.steps_per_second > 0) {
      /* about 30 new frames a second, whatever the models cost */
      long spf = lround(frame.steps_per_second / 30.0);
      s->steps_per_frame = spf < 1 ? 1 : spf > 1024 ? 1024 : (int)spf;
    }
    if (frame.infer_seq != infer_seen) { /* an E press answered: the status line shows it */
      infer_seen = frame.infer_seq;
      snprintf(s->status, sizeof s->status, "%.159s", frame.infer);
      if (!o->quiet) fprintf(stderr, "vkebm view: %s\n", frame.infer);
    }
    /* draw only when something changed (or to refresh the rates): on a machine with few cores
     * every redraw of unchanged pixels is time taken from the sampler */
    if (!o->headless && !got && !news && last_draw >= 0 && t_frame - last_draw < 0.25 &&
        shots_done == s->screenshot_count) {
      SDL_Delay(1);
      continue;
    }
    last_draw = t_frame;
    if (!threaded && frame.error[0] && !o->quiet)
      fprintf(stderr, "vkebm view: frame %ld: %s\n", fi, frame.error);
    rt.frames++;
    rt.st.frame = fi;
    rates_update(&rt, frame.steps);
    int w = win_w, h = win_h;
    if (win && SDL_GetRendererOutputSize(ren, &w, &h)) w = win_w, h = win_h;
    if (view_render(&vr, w, h, &frame, s, &rt.st)) {
      rc = cli_fail(CMD_NAME, "drawing: %s", SDL_GetError());
      break;
    }
    if (o->headless) {
      char path[4200];
      snprintf(path, sizeof path, "%s/frame_%05ld.png", o->outdir, fi);
      if (write_shot(ren, w, h, path, o, ec, s, &frame, be, 1)) {
        rc = EXIT_FAIL;
        break;
      }
    }
    while (shots_done < s->screenshot_count) {
      char path[4200];
      snprintf(path, sizeof path, "%s/view_%05ld_%u.png", o->outdir, fi, shots_done);
      shots_done++;
      if (write_shot(ren, w, h, path, o, ec, s, &frame, be, 0)) rc = EXIT_FAIL;
      else snprintf(s->status, sizeof s->status, "screenshot %.140s", path);
    }
    if (win) SDL_RenderPresent(ren);
    double work = now_s() - t_frame;
    rt.work_sum += work;
    if (fi > 0 && work > rt.work_max) rt.work_max = work; /* frame 0 pays the window's setup */
    if (win && frame_budget > 0) {
      double left = frame_budget - work;
      if (left > 0.001) SDL_Delay((Uint32)(left * 1000));
    }
    fi++;
    frames_written = fi;
  }
  if (o->headless && rc == EXIT_OK && !o->quiet)
    fprintf(stderr, "vkebm view: wrote %ld frames to %s/frame_*.png\n", frames_written, o->outdir);
  if (o->screenshot && rc == EXIT_OK) {
    /* the last frame must show samples: wait (at exit only) for the first one if none came */
    for (double t0 = now_s(); !frame.images && now_s() - t0 < 30.0;) {
      view_runner_control(run, s);
      if (!threaded) view_runner_sync(run);
      if (!view_runner_take(run, &frame)) SDL_Delay(5);
    }
    int w = win_w, h = win_h;
    if (win && SDL_GetRendererOutputSize(ren, &w, &h)) w = win_w, h = win_h;
    if (view_render(&vr, w, h, &frame, s, &rt.st) ||
        write_shot(ren, w, h, o->screenshot, o, ec, s, &frame, be, 0))
      rc = EXIT_FAIL;
  }
  view_runner_stop(run);
  if (o->stats) {
    double T = now_s() - rt.t_start;
    printf("frames %ld in %.2f s: %.1f frames/s drawn, %.1f frames/s with new samples, "
           "%.1f chain steps/s (%d chains: %.0f image-steps/s), %ld steps, %dx%d images, "
           "backend %s (%s); UI work per frame: mean %.2f ms, worst after the first %.2f ms; sampler %s\n",
           rt.frames, T, rt.frames / T, rt.news / T, frame.steps / T, B, frame.steps * B / T,
           frame.steps, W, H, ebm_backend_name(be), ebm_backend_device_name(be),
           rt.frames ? 1e3 * rt.work_sum / rt.frames : 0.0, 1e3 * rt.work_max,
           threaded ? "in a worker thread" : "in the UI thread");
  }
  view_frame_free(&frame);
out_render:
  view_renderer_release(&vr);
  SDL_DestroyRenderer(ren);
out_sdl:
  if (surf) SDL_FreeSurface(surf);
  if (win) SDL_DestroyWindow(win);
  return rc;
}

int cmd_view(int argc, char **argv) {
  options o = {.chains = 16, .resolution = 32, .steps_per_frame = 4, .seed = 1, .device = -1,
               .beta = 1.0, .max_fps = 60.0, .models = NULL, .outdir = ".", .sampler = -1,
               .backend = "auto"};
  enum {
    O_EXPR = 256, O_MODELS, O_ANALYTIC, O_RES, O_SAMPLER, O_STEP, O_NOISE, O_BETA, O_SEED, O_SPF,
    O_FRAMES, O_HEADLESS, O_KEYS, O_GRID_ONLY, O_SHOT, O_SCALE, O_MAXFPS, O_SYNC, O_STATS,
    O_BACKEND, O_DEVICE, O_QUIET
  };
  static const struct option opts[] = {
      {"expr", required_argument, 0, O_EXPR},      {"num", required_argument, 0, 'n'},
      {"models", required_argument, 0, O_MODELS},  {"analytic", no_argument, 0, O_ANALYTIC},
      {"resolution", required_argument, 0, O_RES}, {"sampler", required_argument, 0, O_SAMPLER},
      {"step-size", required_argument, 0, O_STEP}, {"noise", required_argument, 0, O_NOISE},
      {"beta", required_argument, 0, O_BETA},      {"seed", required_argument, 0, O_SEED},
      {"steps-per-frame", required_argument, 0, O_SPF},
      {"frames", required_argument, 0, O_FRAMES},  {"headless", no_argument, 0, O_HEADLESS},
      {"output", required_argument, 0, 'o'},       {"keys", required_argument, 0, O_KEYS},
      {"grid-only", no_argument, 0, O_GRID_ONLY},  {"screenshot", required_argument, 0, O_SHOT},
      {"scale", required_argument, 0, O_SCALE},    {"max-fps", required_argument, 0, O_MAXFPS},
      {"sync", no_argument, 0, O_SYNC},            {"stats", no_argument, 0, O_STATS},
      {"backend", required_argument, 0, O_BACKEND}, {"device", required_argument, 0, O_DEVICE},
      {"quiet", no_argument, 0, O_QUIET},          {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "n:o:h", opts, NULL)) != -1) {
    switch (ch) {
    case O_EXPR: o.expr = optarg; break;
    case 'n':
      if (cli_parse_int(optarg, 1, 1024, &o.chains))
        return cli_usage(CMD_NAME, "-n: expected 1..1024 chains, got '%s'", optarg);
      break;
    case O_MODELS: o.models = optarg; break;
    case O_ANALYTIC: o.analytic = 1; break;
    case O_RES:
      if (cli_opt_int(CMD_NAME, "resolution", optarg, 4, 512, &o.resolution)) return EXIT_USAGE;
      break;
    case O_SAMPLER:
      o.sampler = ebm_sampler_parse(optarg);
      if (o.sampler != EBM_SAMPLER_PAPER && o.sampler != EBM_SAMPLER_LANGEVIN)
        return cli_usage(CMD_NAME, "--sampler: expected langevin or paper, got '%s'", optarg);
      break;
    case O_STEP:
      if (cli_parse_float(optarg, 1e-30, 1e30, &o.step_size))
        return cli_usage(CMD_NAME, "--step-size: expected a positive number, got '%s'", optarg);
      o.step_size_set = 1;
      break;
    case O_NOISE:
      if (cli_parse_float(optarg, 0, 1e30, &o.noise))
        return cli_usage(CMD_NAME, "--noise: expected a number >= 0, got '%s'", optarg);
      o.noise_set = 1;
      break;
    case O_BETA:
      if (cli_parse_float(optarg, 1e-30, 1e30, &o.beta))
        return cli_usage(CMD_NAME, "--beta: expected a positive number, got '%s'", optarg);
      break;
    case O_SEED:
      if (cli_opt_int(CMD_NAME, "seed", optarg, 0, 4294967295L, &o.seed)) return EXIT_USAGE;
      break;
    case O_SPF:
      if (cli_opt_int(CMD_NAME, "steps-per-frame", optarg, 1, 1024, &o.steps_per_frame))
        return EXIT_USAGE;
      o.spf_given = 1;
      break;
    case O_FRAMES:
      if (cli_parse_int(optarg, 1, 100000000, &o.frames))
        return cli_usage(CMD_NAME, "--frames: expected a positive count, got '%s'", optarg);
      break;
    case O_HEADLESS: o.headless = 1; break;
    case 'o': o.outdir = optarg; break;
    case O_KEYS: o.keys = optarg; break;
    case O_GRID_ONLY: o.grid_only = 1; break;
    case O_SHOT: o.screenshot = optarg; break;
    case O_SCALE:
      if (cli_opt_int(CMD_NAME, "scale", optarg, 1, 64, &o.scale)) return EXIT_USAGE;
      break;
    case O_MAXFPS:
      if (cli_parse_float(optarg, 0, 10000, &o.max_fps))
        return cli_usage(CMD_NAME, "--max-fps: expected 0..10000, got '%s'", optarg);
      break;
    case O_SYNC: o.sync = 1; break;
    case O_STATS: o.stats = 1; break;
    case O_BACKEND: o.backend = optarg; break;
    case O_DEVICE:
      if (cli_parse_int(optarg, 0, 64, &o.device))
        return cli_usage(CMD_NAME, "--device: expected an index 0..64, got '%s'", optarg);
      break;
    case O_QUIET: o.quiet = 1; break;
    case 'h': usage(stdout); return EXIT_OK;
    default: return cli_bad_option(CMD_NAME, argv, ch, opts);
    }
  }
  int prc = cli_positional_expr(CMD_NAME, argc, argv, &o.expr);
  if (prc) return prc;
  char models_dir[4096];
  if (!o.models) o.models = ebm_models_dir_default(models_dir, sizeof models_dir);
  if (!o.expr) return cli_usage(CMD_NAME, "--expr is required (try --help)");
  if (o.headless && o.frames <= 0)
    return cli_usage(CMD_NAME, "--headless needs --frames N (it runs no event loop to quit it)");
  if (o.grid_only && !o.headless) return cli_usage(CMD_NAME, "--grid-only is for --headless");
  int bk = cli_parse_backend(o.backend);
  if (bk < 0) return cli_usage(CMD_NAME, "--backend: expected auto, cpu or vulkan, got '%s'", o.backend);

  view_key_event *keys = NULL;
  int nkeys = 0;
  char err[512];
  if (o.keys && view_keyscript_parse(o.keys, &keys, &nkeys, err, sizeof err))
    return cli_usage(CMD_NAME, "%s", err);
  /* the output directory must exist before minutes of sampling, not after */
  if (o.headless || o.screenshot) {
    struct stat stt;
    if (o.headless && (stat(o.outdir, &stt) || !S_ISDIR(stt.st_mode))) {
      if (mkdir(o.outdir, 0777) && errno != EEXIST) {
        free(keys);
        return cli_fail(CMD_NAME, "%s: %s", o.outdir, strerror(errno));
      }
    }
  }
  /* SDL is started before the backend: the parse errors above cost nothing */
  if (SDL_Init(0)) {
    free(keys);
    return cli_fail(CMD_NAME, "SDL: %s", SDL_GetError());
  }
  ebm_backend *be = NULL;
  int rc = cli_backend_open(CMD_NAME, &be, (ebm_backend_kind)bk, (int)o.device, 0, o.quiet);
  if (rc) {
    free(keys);
    SDL_Quit();
    return rc;
  }
  ebm_concept_set set = {0};
  view_state s;
  int have_state = 0;
  view_engine *eng = NULL;
  rc = load_models(be, &o, &set);
  if (rc) goto out;
  view_engine_config ec = {.chains = (int)o.chains};
  ebm_sampler_config *sc = &ec.sampler;
  ebm_sampler_defaults(sc, o.sampler >= 0 ? (ebm_sampler_kind)o.sampler
                           : o.analytic ? EBM_SAMPLER_LANGEVIN : EBM_SAMPLER_PAPER);
  sc->energy_scale = (float)o.beta;
  sc->seed = (uint32_t)o.seed;
  sc->noise_std = o.noise_set ? (float)o.noise : 0.005f;
  sc->clip = 1; /* the window shows [0,1] images; clipping keeps big steps from running away */
  if (o.step_size_set) sc->step_size = (float)o.step_size;
  /* given, else the learned models' training sampler, else the table (as `vkebm sample`) */
  ebm_sampler_resolve(sc, &set, o.analytic, o.step_size_set, o.noise_set, 1);
  float step = sc->step_size;
  expr_error xe;
  if (view_state_init(&s, o.expr, &set, step, (int)o.steps_per_frame, &xe)) {
    char msg[1024];
    expr_error_format(o.expr, &xe, msg, sizeof msg);
    rc = cli_usage(CMD_NAME, "%s", msg);
    goto out;
  }
  have_state = 1;
  s.spf_auto = !o.headless && !o.spf_given && !o.sync;
  /* bind once up front so a bad concept or value is a clear error before any window opens */
  {
    int empty;
    expr_node *t = view_expr_active(&s.expr, &empty);
    ebm_composition *c = t ? ebm_composition_create(be, t, &set, (int)o.chains, &xe) : NULL;
    if (!c) {
      char msg[1024];
      if (t) expr_error_format(o.expr, &xe, msg, sizeof msg);
      else snprintf(msg, sizeof msg, "out of memory");
      expr_free(t);
      rc = cli_fail(CMD_NAME, "%s", msg);
      goto out;
    }
    ebm_composition_destroy(c);
    expr_free(t);
  }
  eng = view_engine_create(be, &set, &ec, err, sizeof err);
  if (!eng) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto out;
  }
  rc = run_loop(&o, be, &s, eng, &ec, keys, nkeys);
out:
  view_engine_destroy(eng);
  if (have_state) view_state_free(&s);
  ebm_concept_set_clear(&set);
  free(keys);
  rc = cli_backend_close(be, rc);
  SDL_Quit();
  return rc;
}

#endif
