/* view_engine.c: the viewer's chains on the backend and the runner that drives them (view.h).
 *
 * Owns the chain buffer x[B, N] and gradient g[B, N] on the device, the current composition
 * (rebuilt from the active tree on every edit while x stays put: toggling keeps the chains
 * warm), the step counter that feeds the noise RNG (so a run is a function of its seed and its
 * key sequence), and the runner's double buffer.
 *
 * Step rules (sampler.h), one step at a time so the step size can change between frames:
 *   paper     x += sigma xi;  x -= eta grad(beta E)(x);  clip to [0,1]
 *   langevin  x += -(lambda/2) grad(beta E)(x) + sqrt(lambda) xi   (clip when asked)
 *
 * The runner: in threaded mode a worker thread owns the engine. Per frame it reads the control
 * (settings, the active tree when it changed), samples steps_per_frame steps, reads the images
 * back and publishes them into `ready` (one mutex-guarded copy). It waits only when the UI has
 * not taken the previous frame yet, so it runs at most one frame ahead; the UI's take() copies
 * under the mutex and never waits for sampling.
 */
#include "vkebm/view.h"
#include "vkebm/infer.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct view_engine {
  ebm_backend *be;
  const ebm_concept_set *set;
  view_engine_config cfg;
  int B, C, H, W, N;
  ebm_buffer *x, *g;
  float *host;                    /* [B, N] staging for init */
  ebm_composition *comp;          /* NULL: nothing to sample */
  int map[VIEW_MAX_TERMS], num_active;
  float term_mean[VIEW_MAX_TERMS];
  long steps;                     /* steps since the start: the noise counter */
};

view_engine *view_engine_create(ebm_backend *be, const ebm_concept_set *set,
                                const view_engine_config *cfg, char *err, size_t errlen) {
  if (!set || set->count < 1) {
    snprintf(err, errlen, "no concept models");
    return NULL;
  }
  if (cfg->chains < 1 || cfg->chains > 4096) {
    snprintf(err, errlen, "chains must be 1..4096, got %d", cfg->chains);
    return NULL;
  }
  if (cfg->sampler.kind != EBM_SAMPLER_PAPER && cfg->sampler.kind != EBM_SAMPLER_LANGEVIN) {
    snprintf(err, errlen, "the viewer steps with the paper or langevin sampler, not %s",
             ebm_sampler_name(cfg->sampler.kind));
    return NULL;
  }
  const ebm_concept_info *i0 = ebm_concept_info_of(set->items[0]);
  for (int i = 1; i < set->count; i++) {
    const ebm_concept_info *ii = ebm_concept_info_of(set->items[i]);
    if (ii->channels != i0->channels || ii->height != i0->height || ii->width != i0->width) {
      snprintf(err, errlen, "concepts '%s' (%dx%dx%d) and '%s' (%dx%dx%d) score different image "
               "sizes", i0->name, i0->channels, i0->height, i0->width, ii->name, ii->channels,
               ii->height, ii->width);
      return NULL;
    }
  }
  if (i0->channels != 3) {
    snprintf(err, errlen, "the viewer shows RGB images; '%s' has %d channels", i0->name,
             i0->channels);
    return NULL;
  }
  view_engine *e = calloc(1, sizeof *e);
  if (!e) goto oom;
  e->be = be;
  e->set = set;
  e->cfg = *cfg;
  e->B = cfg->chains;
  e->C = i0->channels;
  e->H = i0->height;
  e->W = i0->width;
  e->N = e->C * e->H * e->W;
  size_t BN = (size_t)e->B * e->N;
  e->x = ebm_alloc(be, BN);
  e->g = ebm_alloc(be, BN);
  e->host = malloc(BN * sizeof *e->host);
  if (!e->x || !e->g || !e->host) goto oom;
  for (int k = 0; k < VIEW_MAX_TERMS; k++) e->term_mean[k] = NAN;
  if (view_engine_restart(e, 0, err, errlen)) {
    view_engine_destroy(e);
    return NULL;
  }
  return e;
oom:
  view_engine_destroy(e);
  snprintf(err, errlen, "out of memory for %d chains", cfg->chains);
  return NULL;
}

void view_engine_destroy(view_engine *e) {
  if (!e) return;
  ebm_composition_destroy(e->comp);
  ebm_free(e->be, e->x);
  ebm_free(e->be, e->g);
  free(e->host);
  free(e);
}

void view_engine_image_shape(const view_engine *e, int *C, int *H, int *W) {
  *C = e->C;
  *H = e->H;
  *W = e->W;
}

int view_engine_chains(const view_engine *e) { return e->B; }
long view_engine_steps_done(const view_engine *e) { return e->steps; }

int view_engine_set_expr(view_engine *e, const expr_node *active, const int *map, int num_active,
                         char *err, size_t errlen) {
  ebm_composition *c = NULL;
  if (active) {
    expr_error xe;
    c = ebm_composition_create(e->be, active, e->set, e->B, &xe);
    if (!c) {
      snprintf(err, errlen, "%s", xe.msg);
      return -1;
    }
  }
  ebm_composition_destroy(e->comp);
  e->comp = c;
  e->num_active = active ? num_active : 0;
  for (int k = 0; k < e->num_active; k++) e->map[k] = map[k];
  for (int k = 0; k < VIEW_MAX_TERMS; k++) e->term_mean[k] = NAN;
  return 0;
}

int view_engine_restart(view_engine *e, unsigned restart, char *err, size_t errlen) {
  /* a different init stream per restart; the noise counter keeps counting */
  /* chains start where the models were trained to start them (else uniform noise) */
  ebm_sampler_init_for_set(e->set, e->host, e->B, e->N, e->cfg.sampler.seed + 0x9E3779B9u * restart);
  if (ebm_upload(e->be, ebm_ref_of(e->x), e->host, (size_t)e->B * e->N)) {
    snprintf(err, errlen, "upload of the chains failed");
    return -1;
  }
  return 0;
}

int view_engine_step(view_engine *e, int steps, float step_size, char *err, size_t errlen) {
  if (!e->comp) return 0;
  ebm_ref x = ebm_ref_of(e->x), g = ebm_ref_of(e->g);
  for (int k = 0; k < steps; k++) {
    /* the noise counter keeps counting across restarts and edits */
    if (ebm_sampler_step_composition(e->comp, x, g, &e->cfg.sampler, step_size,
                                     (uint32_t)e->steps, err, errlen))
      return -1;
    e->steps++;
    if (k == steps - 1) {
      /* the per-term energies (unscaled) of this step's evaluation: [terms, B] */
      const float *te = ebm_composition_term_energies(e->comp);
      if (!te) {
        snprintf(err, errlen, "download of the term energies failed");
        return -1;
      }
      for (int t = 0; t < e->num_active; t++) {
        double s = 0;
        for (int b = 0; b < e->B; b++) s += te[(size_t)t * e->B + b];
        e->term_mean[e->map[t]] = (float)(s / e->B);
      }
    }
  }
  return 0;
}

int view_engine_read(view_engine *e, float *images, float *term_mean, char *err, size_t errlen) {
  if (ebm_download(e->be, images, ebm_ref_of(e->x), (size_t)e->B * e->N)) {
    snprintf(err, errlen, "reading the chains back failed");
    return -1;
  }
  if (term_mean) memcpy(term_mean, e->term_mean, sizeof e->term_mean);
  return 0;
}

/* ---- the runner ------------------------------------------------------------------------- */

typedef struct control {
  expr_node *active;          /* owned copy; NULL: no terms on */
  int map[VIEW_MAX_TERMS], num_active;
  unsigned expr_gen;
  int have_expr;
  float step_size;
  int steps_per_frame, paused;
  unsigned restart_count;
  unsigned infer_count;
} control;

struct view_runner {
  view_engine *eng;
  int threaded;
  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  control ctl;                /* written by the UI, read by the sampler (under mu) */
  unsigned applied_expr_gen, applied_restart, applied_infer;
  ebm_infer_calibration *cal; /* label baselines, measured at the first E press */
  int applied_any;
  view_frame work;            /* the sampler's frame being made (sampler side only) */
  view_frame ready;           /* published (under mu) */
  int ready_fresh;            /* published and not yet taken */
  unsigned taken_seq;
  double rate_t0;
  long rate_steps0;
  double rate;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int frame_alloc(view_frame *f, const view_engine *e) {
  f->B = e->B;
  f->C = e->C;
  f->H = e->H;
  f->W = e->W;
  f->images = calloc((size_t)e->B * e->N, sizeof *f->images);
  for (int k = 0; k < VIEW_MAX_TERMS; k++) f->term_mean[k] = NAN;
  return f->images ? 0 : -1;
}

void view_frame_free(view_frame *f) {
  free(f->images);
  memset(f, 0, sizeof *f);
}

/* Copies everything but the image pointer, then the images. */
static int frame_copy(view_frame *dst, const view_frame *src) {
  size_t n = (size_t)src->B * src->C * src->H * src->W;
  if (!dst->images || (size_t)dst->B * dst->C * dst->H * dst->W != n) {
    free(dst->images);
    dst->images = malloc(n * sizeof *dst->images);
    if (!dst->images) return -1;
  }
  float *keep = dst->images;
  *dst = *src;
  dst->images = keep;
  memcpy(dst->images, src->images, n * sizeof *dst->images);
  return 0;
}

/* One frame on the sampler side: apply the control, sample, read back, publish. Returns 1 to
 * keep going, 2 when there was nothing to do (paused, or no term on: nothing published), 0 when
 * stopped. */
/* What inference reads from chain 1 (w->images[0]), as one status line in w->infer. */
static void infer_chain(view_runner *r, view_frame *w) {
  view_engine *e = r->eng;
  char err[256] = "";
  if (!r->cal) {
    r->cal = calloc(1, sizeof *r->cal);
    if (!r->cal || ebm_infer_calibrate(e->set, e->H, 32, 7000001u, r->cal, err, sizeof err)) {
      snprintf(w->infer, sizeof w->infer, "inference: %s", err[0] ? err : "out of memory");
      free(r->cal);
      r->cal = NULL;
      return;
    }
  }
  ebm_infer_options o;
  ebm_infer_defaults(&o);
  o.calibration = r->cal;
  size_t at = (size_t)snprintf(w->infer, sizeof w->infer, "chain 1:");
  for (int i = 0; i < e->set->count && at < sizeof w->infer; i++) {
    ebm_concept *c = e->set->items[i];
    const ebm_concept_info *in = ebm_concept_info_of(c);
    ebm_infer_value v;
    if (ebm_infer_concept(c, w->images, 1, &o, &v, err, sizeof err)) {
      at += (size_t)snprintf(w->infer + at, sizeof w->infer - at, " %s: %s", in->name, err);
      continue;
    }
    if (v.onehot)
      at += (size_t)snprintf(w->infer + at, sizeof w->infer - at, " %s=%s (%.2f)", in->name,
                             in->label_names[v.index], v.confidence);
    else if (v.label_dim == 2)
      at += (size_t)snprintf(w->infer + at, sizeof w->infer - at, " %s=(%.2f,%.2f)", in->name,
                             v.value[0], v.value[1]);
    else
      at += (size_t)snprintf(w->infer + at, sizeof w->infer - at, " %s=%.2f", in->name,
                             v.value[0]);
  }
}

static int produce(view_runner *r) {
  view_engine *e = r->eng;
  view_frame *w = &r->work;
  control c;
  expr_node *take_tree = NULL;
  int new_expr = 0;
  pthread_mutex_lock(&r->mu);
  if (r->stop) {
    pthread_mutex_unlock(&r->mu);
    return 0;
  }
  c = r->ctl;
  if (c.have_expr && (!r->applied_any || c.expr_gen != r->applied_expr_gen)) {
    take_tree = r->ctl.active; /* the sampler takes ownership; the UI sets a fresh copy next */
    r->ctl.active = NULL;
    new_expr = 1;
  }
  pthread_mutex_unlock(&r->mu);

  w->error[0] = 0;
  if (new_expr) {
    if (view_engine_set_expr(e, take_tree, c.map, c.num_active, w->error, sizeof w->error)) {
      /* keep sampling the previous composition; the status line shows why */
    }
    expr_free(take_tree);
    r->applied_expr_gen = c.expr_gen;
    r->applied_any = 1;
  }
  int restarted = c.restart_count != r->applied_restart;
  if (restarted) {
    view_engine_restart(e, c.restart_count, w->error, sizeof w->error);
    r->applied_restart = c.restart_count;
  }
  int stepping = !c.paused && e->comp;
  if (stepping) view_engine_step(e, c.steps_per_frame, c.step_size, w->error, sizeof w->error);
  int infer = c.infer_count != r->applied_infer;
  if (!stepping && !restarted && !new_expr && !infer && r->ready.seq > 0) return 2; /* nothing new */
  char rerr[256] = "";
  if (view_engine_read(e, w->images, w->term_mean, rerr, sizeof rerr))
    snprintf(w->error, sizeof w->error, "%s", rerr);
  if (infer) { /* on this thread: the models and the backend are the sampler's */
    infer_chain(r, w);
    r->applied_infer = c.infer_count;
    w->infer_seq++;
  }
  w->steps = view_engine_steps_done(e);
  double t = now_s();
  if (t - r->rate_t0 >= 0.5) {
    r->rate = (w->steps - r->rate_steps0) / (t - r->rate_t0);
    r->rate_t0 = t;
    r->rate_steps0 = w->steps;
  }
  w->steps_per_second = r->rate;

  pthread_mutex_lock(&r->mu);
  /* double buffer: wait until the UI took the previous frame, so sampling runs one frame ahead */
  while (r->threaded && r->ready_fresh && !r->stop) pthread_cond_wait(&r->cv, &r->mu);
  int keep = !r->stop;
  if (keep) {
    w->seq = r->ready.seq + 1;
    frame_copy(&r->ready, w);
    r->ready_fresh = 1;
  }
  pthread_mutex_unlock(&r->mu);
  return keep;
}

static void *worker(void *arg) {
  view_runner *r = arg;
  int rc;
  while ((rc = produce(r)) != 0)
    if (rc == 2) nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL); /* idle: don't spin */
  return NULL;
}

view_runner *view_runner_create(view_engine *eng, int threaded, char *err, size_t errlen) {
  view_runner *r = calloc(1, sizeof *r);
  if (!r) goto oom;
  r->eng = eng;
  r->threaded = threaded;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->ctl.steps_per_frame = 1;
  r->ctl.step_size = 0.0f;
  r->ctl.paused = 1; /* until the first control */
  r->rate_t0 = now_s();
  if (frame_alloc(&r->work, eng) || frame_alloc(&r->ready, eng)) goto oom;
  return r;
oom:
  if (r) {
    view_frame_free(&r->work);
    view_frame_free(&r->ready);
    free(r);
  }
  snprintf(err, errlen, "out of memory");
  return NULL;
}

void view_runner_stop(view_runner *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (r->thread_started) pthread_join(r->thread, NULL);
  expr_free(r->ctl.active);
  free(r->cal);
  view_frame_free(&r->work);
  view_frame_free(&r->ready);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}

int view_runner_control(view_runner *r, const view_state *s) {
  expr_node *tree = NULL;
  int map[VIEW_MAX_TERMS], na = 0, fresh = 0;
  pthread_mutex_lock(&r->mu);
  int need = !r->ctl.have_expr || r->ctl.expr_gen != s->expr_gen;
  pthread_mutex_unlock(&r->mu);
  if (need) {
    /* built outside the lock: the sampler never waits on the UI's allocations */
    int empty;
    tree = view_expr_active(&s->expr, &empty);
    na = view_expr_active_map(&s->expr, map);
    fresh = tree || empty;
  }
  pthread_mutex_lock(&r->mu);
  if (fresh) {
    expr_free(r->ctl.active);
    r->ctl.active = tree;
    memcpy(r->ctl.map, map, sizeof map);
    r->ctl.num_active = na;
    r->ctl.expr_gen = s->expr_gen;
    r->ctl.have_expr = 1;
  }
  r->ctl.step_size = s->step_size;
  r->ctl.steps_per_frame = s->steps_per_frame;
  r->ctl.paused = s->paused;
  r->ctl.restart_count = s->restart_count;
  r->ctl.infer_count = s->infer_count;
  pthread_mutex_unlock(&r->mu);
  if (r->threaded && !r->thread_started && r->ctl.have_expr) {
    if (pthread_create(&r->thread, NULL, worker, r) != 0) return -1;
    r->thread_started = 1;
  }
  return 0;
}

int view_runner_take(view_runner *r, view_frame *f) {
  int got = 0;
  pthread_mutex_lock(&r->mu);
  if (r->ready.seq != r->taken_seq && r->ready_fresh) {
    got = frame_copy(f, &r->ready) == 0;
    r->taken_seq = r->ready.seq;
    r->ready_fresh = 0;
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
  return got;
}

int view_runner_sync(view_runner *r) {
  if (r->threaded) return -1;
  return produce(r) ? 0 : -1;
}
