/* view_state.c: the viewer's key table, the actions it dispatches, the help text generated from
 * the same table, and `--keys` scripts (view.h). Owns view_state; no SDL, no backend: every
 * action is a change to the state struct that the frame loop then acts on (the sampler side
 * sees it through view_runner_control). */
#include "vkebm/view.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STEP_FACTOR 1.25f
#define MAX_STEPS_PER_FRAME 1024

const view_binding view_bindings[] = {
    {'1', '9', VIEW_SELECT_TERM, "1-9", "select term 1-9"},
    {'t', 't', VIEW_TOGGLE_TERM, "T", "selected term: on/off (chains stay warm)"},
    {VIEW_KEY_TAB, VIEW_KEY_TAB, VIEW_SELECT_NEXT, "Tab", "select the next term"},
    {VIEW_KEY_RIGHT, VIEW_KEY_RIGHT, VIEW_SELECT_NEXT, "Right", "select the next term"},
    {VIEW_KEY_LEFT, VIEW_KEY_LEFT, VIEW_SELECT_PREV, "Left", "select the previous term"},
    {'c', 'c', VIEW_CYCLE_NEXT, "C", "selected term: next value (color, shape, ...)"},
    {'x', 'x', VIEW_CYCLE_PREV, "X", "selected term: previous value"},
    {'o', 'o', VIEW_SWITCH_OP, "O", "switch the operator above the term: AND <-> OR"},
    {'n', 'n', VIEW_TOGGLE_NOT, "N", "toggle NOT on the selected term"},
    {'=', '=', VIEW_STEP_UP, "=", "step size x1.25"},
    {'+', '+', VIEW_STEP_UP, "+", "step size x1.25"},
    {VIEW_KEY_KP_PLUS, VIEW_KEY_KP_PLUS, VIEW_STEP_UP, "kp+", "step size x1.25"},
    {'-', '-', VIEW_STEP_DOWN, "-", "step size /1.25"},
    {VIEW_KEY_KP_MINUS, VIEW_KEY_KP_MINUS, VIEW_STEP_DOWN, "kp-", "step size /1.25"},
    {']', ']', VIEW_SPF_UP, "]", "steps per frame x2"},
    {'[', '[', VIEW_SPF_DOWN, "[", "steps per frame /2"},
    {VIEW_KEY_SPACE, VIEW_KEY_SPACE, VIEW_PAUSE, "Space", "pause / resume sampling"},
    {'r', 'r', VIEW_RESTART, "R", "restart every chain from noise"},
    {'s', 's', VIEW_SCREENSHOT, "S", "screenshot PNG (expression, settings in metadata)"},
    {'h', 'h', VIEW_HELP, "H", "this help"},
    {VIEW_KEY_F1, VIEW_KEY_F1, VIEW_HELP, "F1", "this help"},
    {'i', 'i', VIEW_OVERLAY, "I", "hide / show the text overlay"},
    {'e', 'e', VIEW_INFER, "E", "infer chain 1's concepts with the models (status line)"},
    {VIEW_KEY_ESCAPE, VIEW_KEY_ESCAPE, VIEW_QUIT, "Esc", "quit"},
    {'q', 'q', VIEW_QUIT, "Q", "quit"},
};
const int view_num_bindings = (int)(sizeof view_bindings / sizeof *view_bindings);

int view_state_init(view_state *s, const char *expr_src, const ebm_concept_set *set,
                    float step_size, int steps_per_frame, expr_error *err) {
  memset(s, 0, sizeof *s);
  if (view_expr_init(&s->expr, expr_src, err)) return -1;
  s->set = set;
  s->step_size = step_size;
  s->steps_per_frame = steps_per_frame < 1 ? 1 : steps_per_frame;
  s->show_overlay = 1;
  snprintf(s->status, sizeof s->status,
           "H or F1: help; bars: each term's energy, green to the left = lower = better");
  return 0;
}

void view_state_free(view_state *s) { view_expr_free(&s->expr); }

void view_state_action(view_state *s, view_action a, int arg) {
  view_expr *e = &s->expr;
  char *msg = s->status;
  size_t len = sizeof s->status;
  unsigned gen = s->expr_gen;
  switch (a) {
  case VIEW_SELECT_TERM:
    if (arg < e->num_terms) {
      e->selected = arg;
      snprintf(msg, len, "selected term %d (T: on/off, C/X: value, N: NOT, O: operator)", arg + 1);
    } else {
      snprintf(msg, len, "no term %d (the expression has %d)", arg + 1, e->num_terms);
    }
    break;
  case VIEW_TOGGLE_TERM:
    if (e->num_terms > 0 && view_expr_toggle_term(e, e->selected, msg, len)) s->expr_gen++;
    break;
  case VIEW_SELECT_NEXT:
  case VIEW_SELECT_PREV:
    if (e->num_terms > 0) {
      int d = a == VIEW_SELECT_NEXT ? 1 : -1;
      e->selected = ((e->selected + d) % e->num_terms + e->num_terms) % e->num_terms;
      snprintf(msg, len, "selected term %d", e->selected + 1);
    }
    break;
  case VIEW_CYCLE_NEXT:
  case VIEW_CYCLE_PREV: {
    const ebm_concept *c =
        s->set && e->num_terms ? ebm_concept_set_find(s->set, e->terms[e->selected]->concept)
                               : NULL;
    if (view_expr_cycle_value(e, e->selected, c ? ebm_concept_info_of(c) : NULL,
                              a == VIEW_CYCLE_NEXT ? 1 : -1, msg, len))
      s->expr_gen++;
    break;
  }
  case VIEW_SWITCH_OP:
    if (view_expr_switch_op(e, e->selected, msg, len)) s->expr_gen++;
    break;
  case VIEW_TOGGLE_NOT:
    if (view_expr_toggle_not(e, e->selected, msg, len)) s->expr_gen++;
    break;
  case VIEW_STEP_UP:
  case VIEW_STEP_DOWN:
    s->step_size = a == VIEW_STEP_UP ? s->step_size * STEP_FACTOR : s->step_size / STEP_FACTOR;
    if (s->step_size < 1e-12f) s->step_size = 1e-12f;
    if (s->step_size > 1e12f) s->step_size = 1e12f;
    snprintf(msg, len, "step size %.4g", s->step_size);
    break;
  case VIEW_SPF_UP:
  case VIEW_SPF_DOWN:
    s->spf_auto = 0; /* the user decides from now on */
    s->steps_per_frame = a == VIEW_SPF_UP ? s->steps_per_frame * 2 : s->steps_per_frame / 2;
    if (s->steps_per_frame < 1) s->steps_per_frame = 1;
    if (s->steps_per_frame > MAX_STEPS_PER_FRAME) s->steps_per_frame = MAX_STEPS_PER_FRAME;
    snprintf(msg, len, "%d steps per frame", s->steps_per_frame);
    break;
  case VIEW_PAUSE:
    s->paused = !s->paused;
    snprintf(msg, len, "%s", s->paused ? "paused" : "running");
    break;
  case VIEW_RESTART:
    s->restart_count++;
    snprintf(msg, len, "chains restarted from noise");
    break;
  case VIEW_SCREENSHOT:
    s->screenshot_count++;
    break;
  case VIEW_HELP: s->show_help = !s->show_help; break;
  case VIEW_OVERLAY: s->show_overlay = !s->show_overlay; break;
  case VIEW_INFER:
    s->infer_count++;
    snprintf(s->status, sizeof s->status, "inferring chain 1's concepts...");
    break;
  case VIEW_QUIT: s->quit = 1; break;
  }
  /* the chains stay warm across an edit, so they start from the old composition's samples:
   * say how to start afresh */
  size_t used = strlen(msg);
  if (s->expr_gen != gen && used + 24 < len) snprintf(msg + used, len - used, " (R: fresh chains)");
}

int view_state_key(view_state *s, int key) {
  if (key >= 'A' && key <= 'Z') key = key - 'A' + 'a';
  for (int i = 0; i < view_num_bindings; i++) {
    const view_binding *b = &view_bindings[i];
    if (key >= b->key_first && key <= b->key_last) {
      view_state_action(s, b->action, key - b->key_first);
      return 1;
    }
  }
  return 0;
}

/* Bindings with the same action and text share one help line ("Tab Right  select the next
 * term"), in the table's order of first appearance. */
static int same_row(const view_binding *a, const view_binding *b) {
  return a->action == b->action && !strcmp(a->help, b->help);
}

int view_help_line(int i, char *out, size_t len) {
  int row = -1;
  for (int j = 0; j < view_num_bindings; j++) {
    int first = 1;
    for (int k = 0; k < j && first; k++) first = !same_row(&view_bindings[k], &view_bindings[j]);
    if (!first || ++row != i) continue;
    char keys[64] = "";
    for (int k = j; k < view_num_bindings; k++)
      if (same_row(&view_bindings[k], &view_bindings[j])) {
        size_t n = strlen(keys);
        snprintf(keys + n, sizeof keys - n, "%s%s", n ? " " : "", view_bindings[k].keys);
      }
    snprintf(out, len, "%-12s %s", keys, view_bindings[j].help);
    return 1;
  }
  return 0;
}

/* ---- key scripts ------------------------------------------------------------------------ */

static const struct {
  const char *name;
  int key;
} key_names[] = {
    {"space", VIEW_KEY_SPACE}, {"tab", VIEW_KEY_TAB},     {"esc", VIEW_KEY_ESCAPE},
    {"escape", VIEW_KEY_ESCAPE}, {"f1", VIEW_KEY_F1},     {"left", VIEW_KEY_LEFT},
    {"right", VIEW_KEY_RIGHT}, {"up", VIEW_KEY_UP},       {"down", VIEW_KEY_DOWN},
    {"plus", '+'},             {"minus", '-'},
};

int view_key_from_name(const char *name) {
  for (size_t i = 0; i < sizeof key_names / sizeof *key_names; i++)
    if (!strcasecmp(name, key_names[i].name)) return key_names[i].key;
  if (strlen(name) == 1 && isprint((unsigned char)name[0]) && name[0] != ' ')
    return tolower((unsigned char)name[0]);
  return -1;
}

static int cmp_event(const void *a, const void *b) {
  const view_key_event *x = a, *y = b;
  if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
  return 0;
}

int view_keyscript_parse(const char *script, view_key_event **events, int *count, char *err,
                         size_t errlen) {
  *events = NULL;
  *count = 0;
  size_t cap = 0;
  const char *p = script;
  while (*p) {
    while (*p == ' ' || *p == ';' || *p == '\t' || *p == '\n') p++;
    if (!*p) break;
    const char *item = p;
    char *end;
    errno = 0;
    long frame = strtol(p, &end, 10);
    if (end == p || *end != ':' || errno || frame < 0) {
      snprintf(err, errlen, "--keys: expected FRAME:KEY at offset %d ('%.12s')",
               (int)(item - script), item);
      goto fail;
    }
    p = end + 1;
    for (;;) {
      char name[16];
      size_t n = 0;
      /* a key name runs to ',' ' ' ';' or the end; a lone ',' or ';' is itself a key */
      if ((*p == ',' || *p == ';') && (p[1] == 0 || p[1] == ' ' || p[1] == ',')) {
        name[n++] = *p++;
      } else {
        while (*p && *p != ',' && *p != ' ' && *p != ';' && *p != '\t' && n < sizeof name - 1)
          name[n++] = *p++;
      }
      name[n] = 0;
      int key = n ? view_key_from_name(name) : -1;
      if (key < 0) {
        snprintf(err, errlen, "--keys: unknown key '%s' at frame %ld (one character, or space, "
                              "tab, esc, f1, left, right, up, down, plus, minus)", name, frame);
        goto fail;
      }
      if ((size_t)*count == cap) {
        cap = cap ? cap * 2 : 16;
        view_key_event *ne = realloc(*events, cap * sizeof *ne);
        if (!ne) {
          snprintf(err, errlen, "--keys: out of memory");
          goto fail;
        }
        *events = ne;
      }
      (*events)[(*count)++] = (view_key_event){frame, key};
      if (*p != ',') break;
      p++;
    }
  }
  /* insertion sort: stable, so keys of one frame keep their order */
  for (int i = 1; i < *count; i++)
    for (int j = i; j > 0 && cmp_event(&(*events)[j - 1], &(*events)[j]) > 0; j--) {
      view_key_event t = (*events)[j];
      (*events)[j] = (*events)[j - 1];
      (*events)[j - 1] = t;
    }
  return 0;
fail:
  free(*events);
  *events = NULL;
  *count = 0;
  return -1;
}
