/* view.h: the live viewer's library (src/view, built as the small static library vkebm_view,
 * the only library code that links SDL2; libvkebm stays SDL-free).
 *
 * Owns four layers, each testable without a window:
 *   view_expr    an editable expression: the parsed tree plus per-term on/off flags, with edits
 *                (toggle a term, cycle its value from its concept's labels, switch the operator
 *                joining it, toggle NOT on it) that keep the tree grounded; the "active tree"
 *                (the disabled terms dropped) is what gets sampled.
 *   view_state   the key table and the actions it dispatches: every binding is one row of
 *                view_bindings[], which both the key handler and the help overlay read.
 *   view_engine  the chains on the backend: a composition rebuilt when the active tree changes
 *                (the chains stay where they are), Langevin steps, read-back of the images and
 *                each term's mean energy. view_runner drives it either in a worker thread that
 *                publishes finished frames (the window: the UI never waits on sampling) or
 *                synchronously, one frame per call (headless: reproducible bit for bit).
 *   view_render  one frame (the sample grid at an integer scale, nearest filtering, and the
 *                overlay: expression, rates, per-term energy meters, help) drawn with an
 *                SDL_Renderer; the CLI uses a software renderer on the window's surface or on an
 *                off-screen surface, so screenshots and headless frames are the same pixels.
 */
#ifndef VKEBM_VIEW_H
#define VKEBM_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"
#include "vkebm/concept.h"
#include "vkebm/expr.h"
#include "vkebm/sampler.h"

#define VIEW_MAX_TERMS 9 /* number keys 1..9 */

/* ---- the editable expression ---------------------------------------------------------------- */

typedef struct view_expr {
  expr_node *master;                   /* the whole tree, NOT wrappers edited in place */
  int num_terms;
  expr_node *terms[VIEW_MAX_TERMS];    /* the leaves of master in reading order */
  int enabled[VIEW_MAX_TERMS];
  int selected;                        /* index into terms */
} view_expr;

/* Parses src (at most VIEW_MAX_TERMS terms). 0 or -1 with err filled. */
int view_expr_init(view_expr *e, const char *src, expr_error *err);
void view_expr_free(view_expr *e);
/* A fresh tree of the enabled terms (an operator left with one operand collapses to it, with
 * none it disappears). NULL with *empty = 1 when no term is enabled, NULL with *empty = 0 when
 * out of memory. */
expr_node *view_expr_active(const view_expr *e, int *empty);
/* The active tree's canonical text, or "(no terms on)". */
void view_expr_text(const view_expr *e, char *out, size_t len);
/* Active-term index -> master term index; returns the number of active terms. */
int view_expr_active_map(const view_expr *e, int map[VIEW_MAX_TERMS]);

/* Edits. Each returns 1 when the active tree changed, 0 when the edit was refused (with the
 * reason in msg: it would leave a negation ungrounded, there is no such term, ...). */
int view_expr_toggle_term(view_expr *e, int k, char *msg, size_t len);
int view_expr_toggle_not(view_expr *e, int k, char *msg, size_t len);
/* Switches the operator directly above term k (skipping a NOT) between AND and OR. */
int view_expr_switch_op(view_expr *e, int k, char *msg, size_t len);
/* Next (dir = +1) or previous (-1) value of term k: the concept's next class name for one-hot
 * concepts; for vector labels the next point of a preset grid over [label_min, label_max]. */
int view_expr_cycle_value(view_expr *e, int k, const ebm_concept_info *info, int dir, char *msg,
                          size_t len);
/* The term's text ("color=red"), negated terms with a leading "NOT ". */
void view_expr_term_text(const view_expr *e, int k, char *out, size_t len);
int view_expr_term_negated(const view_expr *e, int k);

/* ---- keys, actions, state ------------------------------------------------------------------- */

/* Key codes are SDL_Keycode values (printable keys are their ASCII character), so this layer
 * needs no SDL header; view_sdl.c checks the equalities at compile time. */
enum {
  VIEW_KEY_TAB = 9,
  VIEW_KEY_ESCAPE = 27,
  VIEW_KEY_SPACE = ' ',
  VIEW_KEY_F1 = 0x4000003A,
  VIEW_KEY_RIGHT = 0x4000004F,
  VIEW_KEY_LEFT = 0x40000050,
  VIEW_KEY_DOWN = 0x40000051,
  VIEW_KEY_UP = 0x40000052,
  VIEW_KEY_KP_MINUS = 0x40000056,
  VIEW_KEY_KP_PLUS = 0x40000057,
};

typedef enum view_action {
  VIEW_SELECT_TERM = 0, /* arg: term index */
  VIEW_TOGGLE_TERM,     /* the selected term on/off */
  VIEW_SELECT_NEXT,
  VIEW_SELECT_PREV,
  VIEW_CYCLE_NEXT,
  VIEW_CYCLE_PREV,
  VIEW_SWITCH_OP,
  VIEW_TOGGLE_NOT,
  VIEW_STEP_UP,
  VIEW_STEP_DOWN,
  VIEW_SPF_UP,
  VIEW_SPF_DOWN,
  VIEW_PAUSE,
  VIEW_RESTART,
  VIEW_SCREENSHOT,
  VIEW_HELP,
  VIEW_OVERLAY,
  VIEW_INFER,
  VIEW_QUIT,
} view_action;

typedef struct view_binding {
  int key_first, key_last;  /* a range: the action's arg is key - key_first */
  view_action action;
  const char *keys;         /* as the help shows it */
  const char *help;
} view_binding;

extern const view_binding view_bindings[];
extern const int view_num_bindings;

typedef struct view_state {
  view_expr expr;
  const ebm_concept_set *set;  /* for cycling values */
  float step_size;
  int steps_per_frame;
  int spf_auto;                /* 1: the window sets steps_per_frame for ~30 new frames/s
                                  (until [ or ] is pressed); off in headless runs */
  int paused, show_help, show_overlay, quit;
  unsigned expr_gen;           /* bumped whenever the active tree changes */
  unsigned restart_count;      /* bumped by R */
  unsigned screenshot_count;   /* bumped by S; the frame loop writes one per bump */
  unsigned infer_count;        /* bumped by E: the sampler side reads chain 1's concepts */
  char status[160];            /* the last action's message */
} view_state;

int view_state_init(view_state *s, const char *expr_src, const ebm_concept_set *set,
                    float step_size, int steps_per_frame, expr_error *err);
void view_state_free(view_state *s);
/* Runs the binding of key (modifiers ignored). Returns 1 when a binding matched. */
int view_state_key(view_state *s, int key);
/* Runs one action directly. */
void view_state_action(view_state *s, view_action a, int arg);
/* The help lines ("KEYS  what it does"), one per binding: line i into out, 0 past the end. */
int view_help_line(int i, char *out, size_t len);

/* ---- key scripts (`--keys`) ----------------------------------------------------------------
 * "FRAME:KEY[,KEY...] ..." separated by spaces or ';': the keys are pressed just before that
 * frame is sampled. KEY is one character or a name: space, tab, esc, f1, left, right, up, down,
 * plus, minus. Example: "10:2 20:c,o 30:n". */
typedef struct view_key_event {
  long frame;
  int key;
} view_key_event;

/* Parses script; *events malloc'd, sorted by frame (stable). 0 or -1 with a message. */
int view_keyscript_parse(const char *script, view_key_event **events, int *count, char *err,
                         size_t errlen);
/* The key code for a name ("space", "q", "f1", ...), -1 when unknown. */
int view_key_from_name(const char *name);

/* ---- the sampling engine -------------------------------------------------------------------- */

typedef struct view_engine view_engine;

typedef struct view_engine_config {
  int chains;
  /* kind paper or langevin (one ebm_sampler_step at a time; MALA is not offered), noise_std,
   * clip, energy_scale, seed; step_size and steps are not read: view_engine_step takes the
   * step size the keys set, and the viewer runs until closed */
  ebm_sampler_config sampler;
} view_engine_config;

/* All the set's concepts must score images of one shape. */
view_engine *view_engine_create(ebm_backend *be, const ebm_concept_set *set,
                                const view_engine_config *cfg, char *err, size_t errlen);
void view_engine_destroy(view_engine *e);
void view_engine_image_shape(const view_engine *e, int *C, int *H, int *W);
int view_engine_chains(const view_engine *e);
/* Binds a new active tree (NULL: nothing to sample; steps then do nothing); the chains keep
 * their state. map[k] gives the master index of active term k. 0 or -1 with err (the previous
 * composition stays). */
int view_engine_set_expr(view_engine *e, const expr_node *active, const int *map, int num_active,
                         char *err, size_t errlen);
/* Chains back to uniform noise, seeded from (seed, restart). */
int view_engine_restart(view_engine *e, unsigned restart, char *err, size_t errlen);
/* steps Langevin steps at this step size. 0 or -1 with err. */
int view_engine_step(view_engine *e, int steps, float step_size, char *err, size_t errlen);
long view_engine_steps_done(const view_engine *e);
/* Reads the chains back: images[B, C, H, W] host floats; term_mean[VIEW_MAX_TERMS] indexed by
 * master term (NAN for terms that are off or not yet evaluated): each term's mean energy over
 * the chains at the last step. */
int view_engine_read(view_engine *e, float *images, float *term_mean, char *err, size_t errlen);

/* ---- the runner: the engine behind a double buffer ---------------------------------------- */

typedef struct view_frame {
  float *images;                      /* [B, C, H, W] */
  int B, C, H, W;
  float term_mean[VIEW_MAX_TERMS];
  long steps;                         /* chain steps done so far */
  unsigned seq;                       /* frames published so far */
  double steps_per_second;            /* measured by the sampler side */
  char error[256];                    /* the last sampling/binding error, empty when none */
  char infer[192];                    /* what inference read from chain 1 at the last E press
                                         (infer.h: every concept's value and confidence) */
  unsigned infer_seq;                 /* E presses answered so far */
} view_frame;

typedef struct view_runner view_runner;

/* threaded = 1: a worker thread owns the engine from now until view_runner_stop; it samples
 * steps_per_frame steps, publishes the frame, and samples the next one while the UI shows it
 * (it never runs more than one frame ahead of the UI). threaded = 0: view_runner_sync does one
 * frame in the caller's thread. */
view_runner *view_runner_create(view_engine *eng, int threaded, char *err, size_t errlen);
/* Stops the worker (if any) and frees the runner (not the engine). */
void view_runner_stop(view_runner *r);
/* Hands the state's settings to the sampler side (copies the active tree when expr_gen moved);
 * the first call starts the worker thread. 0, or -1 when the thread could not start. */
int view_runner_control(view_runner *r, const view_state *s);
/* Copies the newest published frame into *f when there is one the caller has not seen; returns
 * 1 then, else 0. Never waits for sampling. f->images is (re)allocated as needed. */
int view_runner_take(view_runner *r, view_frame *f);
/* Synchronous mode: samples and publishes one frame now. */
int view_runner_sync(view_runner *r);
void view_frame_free(view_frame *f);

#endif
