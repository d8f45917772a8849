/* expr_edit.c: the viewer's editable expression (view.h, view_expr): per-term on/off flags over
 * the parsed tree, and the edits the keys make (toggle a term, toggle NOT on it, switch the
 * operator joining it, cycle its value). Owns the master tree; builds the active tree (the
 * disabled terms dropped) as a fresh expr_node tree that expr_free releases. Every edit that
 * would leave a negation ungrounded (docs/recipe.md §3: NOT alone has no normalisable
 * distribution) is undone and refused with a message. */
#include "vkebm/view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void collect_terms(view_expr *e, expr_node *n) {
  if (n->kind == EXPR_TERM) {
    if (e->num_terms < VIEW_MAX_TERMS) e->terms[e->num_terms] = n;
    e->num_terms++;
    return;
  }
  for (int i = 0; i < n->num_children; i++) collect_terms(e, n->children[i]);
}

int view_expr_init(view_expr *e, const char *src, expr_error *err) {
  memset(e, 0, sizeof *e);
  e->master = expr_parse(src, err);
  if (!e->master) return -1;
  collect_terms(e, e->master);
  if (e->num_terms > VIEW_MAX_TERMS) {
    err->pos = -1;
    snprintf(err->msg, sizeof err->msg, "the viewer takes at most %d terms (keys 1-%d), got %d",
             VIEW_MAX_TERMS, VIEW_MAX_TERMS, e->num_terms);
    expr_free(e->master);
    memset(e, 0, sizeof *e);
    return -1;
  }
  for (int k = 0; k < e->num_terms; k++) e->enabled[k] = 1;
  return 0;
}

void view_expr_free(view_expr *e) {
  expr_free(e->master);
  memset(e, 0, sizeof *e);
}

static int term_index(const view_expr *e, const expr_node *n) {
  for (int k = 0; k < e->num_terms; k++)
    if (e->terms[k] == n) return k;
  return -1;
}

/* Copy of n without the disabled terms; NULL (ok = 1) when nothing is left, NULL with
 * *ok = 0 on allocation failure. */
static expr_node *copy_active(const view_expr *e, const expr_node *n, int *ok) {
  if (n->kind == EXPR_TERM) {
    if (!e->enabled[term_index(e, n)]) return NULL;
    expr_node *c = malloc(sizeof *c);
    if (!c) return *ok = 0, NULL;
    *c = *n;
    c->children = NULL;
    c->num_children = 0;
    return c;
  }
  expr_node *kids[VIEW_MAX_TERMS * 2];
  int nk = 0;
  for (int i = 0; i < n->num_children && *ok; i++) {
    expr_node *c = copy_active(e, n->children[i], ok);
    if (c) kids[nk++] = c;
  }
  if (!*ok) goto fail;
  if (nk == 0) return NULL;
  if (nk == 1 && n->kind != EXPR_NOT) {
    /* AND or OR of one operand is that operand exactly (OR: -T log exp(-E/T) = E) */
    kids[0]->weight *= n->weight;
    return kids[0];
  }
  expr_node *c = malloc(sizeof *c);
  expr_node **arr = malloc(sizeof *arr * (size_t)nk);
  if (!c || !arr) {
    free(c);
    free(arr);
    *ok = 0;
    goto fail;
  }
  *c = *n;
  memcpy(arr, kids, sizeof *arr * (size_t)nk);
  c->children = arr;
  c->num_children = nk;
  return c;
fail:
  for (int i = 0; i < nk; i++) expr_free(kids[i]);
  return NULL;
}

expr_node *view_expr_active(const view_expr *e, int *empty) {
  int ok = 1;
  expr_node *t = copy_active(e, e->master, &ok);
  *empty = ok && !t;
  return t;
}

void view_expr_text(const view_expr *e, char *out, size_t len) {
  int empty;
  expr_node *t = view_expr_active(e, &empty);
  if (!t) {
    snprintf(out, len, "%s", empty ? "(no terms on)" : "(out of memory)");
    return;
  }
  expr_print(t, out, len);
  expr_free(t);
}

int view_expr_active_map(const view_expr *e, int map[VIEW_MAX_TERMS]) {
  int n = 0;
  for (int k = 0; k < e->num_terms; k++)
    if (e->enabled[k]) map[n++] = k;
  return n;
}

/* 1 when the active tree is empty or grounded. */
static int active_ok(const view_expr *e) {
  int empty;
  expr_node *t = view_expr_active(e, &empty);
  if (!t) return empty;
  int g = expr_grounded(t);
  expr_free(t);
  return g;
}

static int check_term(const view_expr *e, int k, char *msg, size_t len) {
  if (k < 0 || k >= e->num_terms) {
    snprintf(msg, len, "no term %d (the expression has %d)", k + 1, e->num_terms);
    return 0;
  }
  return 1;
}

int view_expr_toggle_term(view_expr *e, int k, char *msg, size_t len) {
  if (!check_term(e, k, msg, len)) return 0;
  e->enabled[k] = !e->enabled[k];
  if (!active_ok(e)) {
    e->enabled[k] = !e->enabled[k];
    snprintf(msg, len, "term %d stays %s: a negation would be left ungrounded", k + 1,
             e->enabled[k] ? "on" : "off");
    return 0;
  }
  snprintf(msg, len, "term %d %s", k + 1, e->enabled[k] ? "on" : "off");
  return 1;
}

/* The node holding child (and the slot), NULL when child is the root. */
static expr_node *parent_of(expr_node *n, const expr_node *child, int *slot) {
  for (int i = 0; i < n->num_children; i++) {
    if (n->children[i] == child) {
      *slot = i;
      return n;
    }
    expr_node *p = parent_of(n->children[i], child, slot);
    if (p) return p;
  }
  return NULL;
}

int view_expr_term_negated(const view_expr *e, int k) {
  if (k < 0 || k >= e->num_terms) return 0;
  int slot;
  expr_node *p = parent_of(e->master, e->terms[k], &slot);
  return p && p->kind == EXPR_NOT;
}

/* Wraps term k in a NOT, or unwraps it when its parent is a NOT. 0 on allocation failure. */
static int flip_not(view_expr *e, int k) {
  expr_node *t = e->terms[k];
  int slot;
  expr_node *p = parent_of(e->master, t, &slot);
  if (p && p->kind == EXPR_NOT) {
    int gslot;
    expr_node *g = parent_of(e->master, p, &gslot);
    t->weight *= p->weight;
    if (g) g->children[gslot] = t;
    else e->master = t;
    p->num_children = 0;
    expr_free(p);
    return 1;
  }
  expr_node *n = calloc(1, sizeof *n);
  expr_node **arr = malloc(sizeof *arr);
  if (!n || !arr) {
    free(n);
    free(arr);
    return 0;
  }
  n->kind = EXPR_NOT;
  n->pos = t->pos;
  n->weight = 1.0f;
  n->param = EXPR_DEFAULT_NOT_ALPHA;
  arr[0] = t;
  n->children = arr;
  n->num_children = 1;
  if (p) p->children[slot] = n;
  else e->master = n;
  return 1;
}

int view_expr_toggle_not(view_expr *e, int k, char *msg, size_t len) {
  if (!check_term(e, k, msg, len)) return 0;
  if (!flip_not(e, k)) {
    snprintf(msg, len, "out of memory");
    return 0;
  }
  if (!active_ok(e)) {
    flip_not(e, k); /* unwrapping never allocates */
    snprintf(msg, len, "NOT on term %d refused: the negation would be ungrounded "
                       "(it needs a positive term beside it under AND)", k + 1);
    return 0;
  }
  snprintf(msg, len, "term %d %s", k + 1, view_expr_term_negated(e, k) ? "negated" : "positive");
  return e->enabled[k];
}

int view_expr_switch_op(view_expr *e, int k, char *msg, size_t len) {
  if (!check_term(e, k, msg, len)) return 0;
  const expr_node *n = e->terms[k];
  int slot;
  expr_node *p = parent_of(e->master, n, &slot);
  while (p && p->kind == EXPR_NOT) {
    n = p;
    p = parent_of(e->master, n, &slot);
  }
  if (!p) {
    snprintf(msg, len, "term %d is not joined to anything", k + 1);
    return 0;
  }
  expr_kind old = p->kind;
  float old_param = p->param;
  int old_explicit = p->param_explicit;
  p->kind = old == EXPR_AND ? EXPR_OR : EXPR_AND;
  p->param = p->kind == EXPR_OR ? EXPR_DEFAULT_OR_TEMPERATURE : 0.0f;
  p->param_explicit = 0;
  if (!active_ok(e)) {
    p->kind = old;
    p->param = old_param;
    p->param_explicit = old_explicit;
    snprintf(msg, len, "%s refused: a negation would be ungrounded",
             old == EXPR_AND ? "OR" : "AND");
    return 0;
  }
  snprintf(msg, len, "operator above term %d: %s", k + 1, p->kind == EXPR_AND ? "AND" : "OR");
  /* the active tree changes unless this operator lost all but one operand */
  int active = 0;
  int map[VIEW_MAX_TERMS];
  int na = view_expr_active_map(e, map);
  for (int i = 0; i < na; i++) {
    int s2;
    const expr_node *q = e->terms[map[i]];
    for (expr_node *a = parent_of(e->master, q, &s2); a; a = parent_of(e->master, a, &s2))
      if (a == p) {
        active++;
        break;
      }
  }
  return active >= 2;
}

/* Preset points for a vector label: `per` evenly spaced values per dimension at the centres of
 * `per` equal bins of [min, max] (so the edges, often degenerate, are avoided). */
static int vector_points(const ebm_concept_info *info, int *per) {
  int L = info->label_dim;
  *per = L == 1 ? 5 : 3;
  int total = 1;
  for (int d = 0; d < L && total <= 256; d++) total *= *per;
  return total > 256 ? 256 : total;
}

static float vector_coord(const ebm_concept_info *info, int d, int idx, int per) {
  float lo = info->label_min[d], hi = info->label_max[d];
  return lo + (hi - lo) * (idx + 0.5f) / per;
}

/* Point p's coordinates (mixed radix, dimension 0 fastest; the dimensions past the first 256
 * points stay at the centre). */
static void vector_point(const ebm_concept_info *info, int p, int per, float *out) {
  int span = 1;
  for (int d = 0; d < info->label_dim; d++) {
    int idx = per / 2;
    if (span * per <= 256) {
      idx = p % per;
      p /= per;
      span *= per;
    }
    out[d] = vector_coord(info, d, idx, per);
  }
}

int view_expr_cycle_value(view_expr *e, int k, const ebm_concept_info *info, int dir, char *msg,
                          size_t len) {
  if (!check_term(e, k, msg, len)) return 0;
  if (!info) {
    snprintf(msg, len, "term %d: no concept model to take values from", k + 1);
    return 0;
  }
  expr_node *t = e->terms[k];
  if (info->label_kind == EBM_LABEL_ONEHOT && info->num_label_names > 0) {
    int n = info->num_label_names, cur = -1;
    if (t->value_name[0]) {
      for (int i = 0; i < n; i++)
        if (!strcasecmp(t->value_name, info->label_names[i])) cur = i;
    } else if (t->num_values == 1) {
      cur = (int)t->values[0];
    }
    int next = cur < 0 ? 0 : ((cur + dir) % n + n) % n;
    snprintf(t->value_name, sizeof t->value_name, "%s", info->label_names[next]);
    t->num_values = 0;
  } else if (info->label_kind == EBM_LABEL_VECTOR && info->label_dim >= 1 &&
             info->label_dim <= EXPR_MAX_VALUES) {
    int per, total = vector_points(info, &per);
    /* the preset nearest the current value, then the next one */
    int cur = 0;
    double best = INFINITY;
    float pt[EXPR_MAX_VALUES];
    for (int p = 0; p < total; p++) {
      vector_point(info, p, per, pt);
      double d2 = 0;
      for (int d = 0; d < info->label_dim; d++) {
        double v = d < t->num_values ? t->values[d] : 0.0;
        d2 += (v - pt[d]) * (v - pt[d]);
      }
      if (d2 < best - 1e-9) {
        best = d2;
        cur = p;
      }
    }
    int next = ((cur + dir) % total + total) % total;
    vector_point(info, next, per, pt);
    for (int d = 0; d < info->label_dim; d++) t->values[d] = roundf(pt[d] * 1000.0f) / 1000.0f;
    t->num_values = info->label_dim;
    t->value_name[0] = 0;
  } else {
    snprintf(msg, len, "term %d: concept '%s' has no values to cycle", k + 1, info->name);
    return 0;
  }
  char txt[128];
  view_expr_term_text(e, k, txt, sizeof txt);
  snprintf(msg, len, "term %d: %s", k + 1, txt);
  return e->enabled[k];
}

void view_expr_term_text(const view_expr *e, int k, char *out, size_t len) {
  if (k < 0 || k >= e->num_terms) {
    snprintf(out, len, "?");
    return;
  }
  expr_node t = *e->terms[k];
  t.weight = 1.0f;
  char body[512];
  expr_print(&t, body, sizeof body);
  snprintf(out, len, "%s%s", view_expr_term_negated(e, k) ? "NOT " : "", body);
}
