/* compose.c: a bound expression's energy and gradient over the backend (compose.h).
 * Owns the per-model groups (stacked inputs, energies, coefficients, input gradients), the
 * coefficients dE/dE_k (constants uploaded once, or the tree evaluated on the device for soft
 * ORs), the per-chain evaluation of the tree on the host, and the explanation text. */
#include "vkebm/compose.h"
#include "vkebm/fileio.h"
#include "vkebm/shared.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_buf.h"

typedef struct group {
  ebm_concept *model;
  int num_terms;
  int *terms;          /* term indices, in the order of the stacked rows */
  float *labels;       /* [num_terms, L] */
  ebm_buffer *xs;      /* [num_terms*B, N] stacked copies of x; NULL when one term */
  ebm_buffer *e;       /* [num_terms*B] */
  ebm_buffer *dE;      /* [num_terms*B] */
  ebm_buffer *dx;      /* [num_terms*B, N] */
  float *host_e, *host_dE;
} group;

/* A node of the tree as the device evaluates it (soft ORs): nodes are numbered breadth first,
 * so a node's children are consecutive and every OR's operands form one [count, B] tensor. */
typedef struct dev_node {
  const expr_node *n;
  int first, count;   /* children: nodes first .. first + count - 1 */
  int term;           /* EXPR_TERM: its index in reading order */
  int need_value;     /* its value is an operand of a soft OR (here or above) */
} dev_node;

struct ebm_composition {
  ebm_backend *be;
  expr_node *tree;     /* our own copy */
  int B, N, C, H, W;
  int num_terms;
  char (*term_text)[96];
  int *term_group;
  int *term_slot;      /* the term's row block in its group's stacked rows */
  int num_groups;
  group groups[32];
  float *term_energy;  /* [num_terms, B]: the last evaluation's, when term_energy_fresh */
  int term_energy_fresh;
  double *E, *coef;    /* [num_terms] scratch */
  int or_mixture;      /* 1: each chain samples one side of every OR (ebm_composition_set_or_mixture) */
  uint32_t or_seed;
  int has_or;
  /* constant coefficients (no soft OR): in the groups' dE since the last upload, for this scale */
  int coef_uploaded;
  double coef_scale;
  /* the tree on the device (soft ORs) */
  int num_nodes;
  dev_node *nodes;
  ebm_buffer *node_value, *node_coef; /* [num_nodes, B] */
};

#define OR_STREAM 0x4f52u

/* How one chain's tree is read: soft ORs (chain < 0 or the composition's default), or each OR's
 * side drawn for this chain. or_k numbers the ORs in reading order. */
typedef struct tree_ctx {
  const ebm_composition *c;
  int chain;
  int or_k;
} tree_ctx;

/* The side of the next OR (of nc children) this chain samples, or -1 for the soft OR. */
static int or_side(tree_ctx *t, int nc) {
  int k = t->or_k++;
  if (!t->c->or_mixture || t->chain < 0) return -1;
  return (int)(vkebm_rng_u32(t->c->or_seed, OR_STREAM, (u32)t->chain, (u32)k) % (u32)nc);
}

static void collect_terms(const expr_node *n, const expr_node **out, int *k) {
  if (n->kind == EXPR_TERM) {
    out[(*k)++] = n;
    return;
  }
  for (int i = 0; i < n->num_children; i++) collect_terms(n->children[i], out, k);
}

/* The widest OR under n (the host evaluation keeps up to 64 operands on the stack). */
static int widest_or(const expr_node *n) {
  int w = n->kind == EXPR_OR ? n->num_children : 0;
  for (int i = 0; i < n->num_children; i++) {
    int c = widest_or(n->children[i]);
    if (c > w) w = c;
  }
  return w;
}

static void term_to_text(const expr_node *t, char *out, size_t len) {
  expr_node copy = *t;
  copy.weight = 1.0f;
  expr_print(&copy, out, len);
}

void ebm_composition_destroy(ebm_composition *c) {
  if (!c) return;
  for (int g = 0; g < c->num_groups; g++) {
    group *gr = &c->groups[g];
    free(gr->terms);
    free(gr->labels);
    ebm_free(c->be, gr->xs);
    ebm_free(c->be, gr->e);
    ebm_free(c->be, gr->dE);
    ebm_free(c->be, gr->dx);
    free(gr->host_e);
    free(gr->host_dE);
  }
  ebm_free(c->be, c->node_value);
  ebm_free(c->be, c->node_coef);
  free(c->nodes);
  expr_free(c->tree);
  free(c->term_text);
  free(c->term_group);
  free(c->term_slot);
  free(c->term_energy);
  free(c->E);
  free(c->coef);
  free(c);
}

static void set_err(expr_error *err, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(expr_error *err, int pos, const char *fmt, ...) {
  if (!err) return;
  err->pos = pos;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
}

static int count_nodes(const expr_node *n) {
  int k = 1;
  for (int i = 0; i < n->num_children; i++) k += count_nodes(n->children[i]);
  return k;
}

/* Numbers c->tree's nodes breadth first (dev_node) and, when it has an OR, allocates the node
 * values and coefficients the device evaluation of a soft OR needs. 0, or -1 out of memory. */
static int plan_device_tree(ebm_composition *c) {
  int n = count_nodes(c->tree), next = 1, T = c->num_terms;
  const expr_node **leaves = calloc((size_t)T, sizeof *leaves);
  c->nodes = calloc((size_t)n, sizeof *c->nodes);
  if (!leaves || !c->nodes) {
    free(leaves);
    return -1;
  }
  int k = 0;
  collect_terms(c->tree, leaves, &k);
  c->num_nodes = n;
  c->nodes[0].n = c->tree;
  for (int i = 0; i < n; i++) {
    dev_node *d = &c->nodes[i];
    d->first = next;
    d->count = d->n->num_children;
    if (d->n->kind == EXPR_OR) c->has_or = 1;
    if (d->n->kind == EXPR_TERM)
      for (int t = 0; t < T; t++)
        if (leaves[t] == d->n) d->term = t;
    for (int j = 0; j < d->count; j++) {
      dev_node *ch = &c->nodes[next++];
      ch->n = d->n->children[j];
      ch->need_value = d->n->kind == EXPR_OR || d->need_value;
    }
  }
  free(leaves);
  if (!c->has_or) return 0;
  c->node_value = ebm_alloc(c->be, (size_t)n * c->B);
  c->node_coef = ebm_alloc(c->be, (size_t)n * c->B);
  return c->node_value && c->node_coef ? 0 : -1;
}

ebm_composition *ebm_composition_create(ebm_backend *be, const expr_node *tree,
                                        const ebm_concept_set *set, int chains, expr_error *err) {
  if (err) {
    err->pos = -1;
    err->msg[0] = 0;
  }
  if (chains < 1) {
    set_err(err, -1, "need at least one chain");
    return NULL;
  }
  if (widest_or(tree) > 64) {
    set_err(err, tree->pos, "an OR of more than 64 operands (nest them in parentheses)");
    return NULL;
  }
  int T = expr_count_terms(tree);
  const expr_node **leaves = calloc((size_t)T, sizeof *leaves);
  ebm_composition *c = calloc(1, sizeof *c);
  if (!leaves || !c) {
    free(leaves);
    free(c);
    set_err(err, -1, "out of memory");
    return NULL;
  }
  c->be = be;
  c->B = chains;
  c->num_terms = T;
  int k = 0;
  collect_terms(tree, leaves, &k);
  c->term_text = calloc((size_t)T, sizeof *c->term_text);
  c->term_group = calloc((size_t)T, sizeof *c->term_group);
  c->term_slot = calloc((size_t)T, sizeof *c->term_slot);
  c->term_energy = calloc((size_t)T * chains, sizeof *c->term_energy);
  c->E = calloc((size_t)T, sizeof *c->E);
  c->coef = calloc((size_t)T, sizeof *c->coef);
  if (!c->term_text || !c->term_group || !c->term_slot || !c->term_energy || !c->E || !c->coef) {
    set_err(err, -1, "out of memory");
    goto fail;
  }
  /* bind each term to a model and a label */
  float label[EBM_CONCEPT_MAX_LABEL];
  for (int t = 0; t < T; t++) {
    const expr_node *leaf = leaves[t];
    term_to_text(leaf, c->term_text[t], sizeof c->term_text[t]);
    ebm_concept *m = ebm_concept_set_find(set, leaf->concept);
    if (!m) {
      char names[512];
      ebm_concept_set_names(set, names, sizeof names);
      set_err(err, leaf->pos, "unknown concept '%s'; the loaded models know: %s", leaf->concept,
              set->count ? names : "(none: no models loaded)");
      goto fail;
    }
    const ebm_concept_info *info = ebm_concept_info_of(m);
    char msg[300];
    if (ebm_concept_label(info, leaf->value_name, leaf->values, leaf->num_values, label, msg,
                          sizeof msg)) {
      set_err(err, leaf->value_pos, "%s", msg);
      goto fail;
    }
    if (t == 0) {
      c->C = info->channels;
      c->H = info->height;
      c->W = info->width;
      c->N = c->C * c->H * c->W;
    } else if (info->channels != c->C || info->height != c->H || info->width != c->W) {
      set_err(err, leaf->pos, "model '%s' scores %dx%dx%d images but an earlier term's scores %dx%dx%d",
              info->name, info->channels, info->height, info->width, c->C, c->H, c->W);
      goto fail;
    }
    int g = 0;
    while (g < c->num_groups && c->groups[g].model != m) g++;
    if (g == c->num_groups) {
      if (g == (int)(sizeof c->groups / sizeof *c->groups)) {
        set_err(err, leaf->pos, "too many distinct models");
        goto fail;
      }
      c->groups[g].model = m;
      c->num_groups++;
    }
    group *gr = &c->groups[g];
    int L = info->label_dim;
    int *nt = realloc(gr->terms, sizeof *nt * (size_t)(gr->num_terms + 1));
    float *nl = nt ? realloc(gr->labels, sizeof *nl * (size_t)(gr->num_terms + 1) * L) : NULL;
    if (nt) gr->terms = nt;
    if (nl) gr->labels = nl;
    if (!nt || !nl) {
      set_err(err, -1, "out of memory");
      goto fail;
    }
    gr->terms[gr->num_terms] = t;
    c->term_slot[t] = gr->num_terms;
    memcpy(gr->labels + (size_t)gr->num_terms * L, label, sizeof(float) * L);
    gr->num_terms++;
    c->term_group[t] = g;
  }
  /* device buffers per group */
  for (int g = 0; g < c->num_groups; g++) {
    group *gr = &c->groups[g];
    size_t rows = (size_t)gr->num_terms * chains;
    const ebm_concept_info *gi = ebm_concept_info_of(gr->model);
    int learned = !strcmp(gi->kind, "learned");
    long need = learned ? (long)gr->num_terms * chains : gr->num_terms;
    if (need > ebm_concept_max_rows(gr->model)) {
      set_err(err, -1, "concept '%s' is used %d times on %d chains; its model was loaded for at "
              "most %d %s", gi->name, gr->num_terms, chains, ebm_concept_max_rows(gr->model),
              learned ? "rows" : "labels");
      goto fail;
    }
    if (gr->num_terms > 1 && !(gr->xs = ebm_alloc(be, rows * c->N))) goto oom;
    if (!(gr->e = ebm_alloc(be, rows)) || !(gr->dE = ebm_alloc(be, rows)) ||
        !(gr->dx = ebm_alloc(be, rows * c->N)))
      goto oom;
    gr->host_e = calloc(rows, sizeof(float));
    gr->host_dE = calloc(rows, sizeof(float));
    if (!gr->host_e || !gr->host_dE) goto oom;
  }
  if (!(c->tree = expr_clone(tree)) || plan_device_tree(c)) goto oom;
  free(leaves);
  return c;
oom:
  set_err(err, -1, "out of memory for %d chains of %d values", chains, c->N);
fail:
  free(leaves);
  ebm_composition_destroy(c);
  return NULL;
}

ebm_backend *ebm_composition_backend(const ebm_composition *c) { return c->be; }
int ebm_composition_chains(const ebm_composition *c) { return c->B; }
int ebm_composition_image_size(const ebm_composition *c) { return c->N; }
void ebm_composition_image_shape(const ebm_composition *c, int *C, int *H, int *W) {
  *C = c->C;
  *H = c->H;
  *W = c->W;
}
int ebm_composition_num_terms(const ebm_composition *c) { return c->num_terms; }
const char *ebm_composition_term_text(const ebm_composition *c, int k) { return c->term_text[k]; }
const ebm_concept *ebm_composition_term_model(const ebm_composition *c, int k) {
  return c->groups[c->term_group[k]].model;
}

/* The groups' energies of the last evaluation into term_energy (a download: waits for the
 * device). 0, or -1. */
static int fetch_term_energies(ebm_composition *c) {
  int B = c->B;
  for (int g = 0; g < c->num_groups; g++) {
    group *gr = &c->groups[g];
    if (ebm_download(c->be, gr->host_e, ebm_ref_of(gr->e), (size_t)gr->num_terms * B)) return -1;
    for (int t = 0; t < gr->num_terms; t++)
      memcpy(c->term_energy + (size_t)gr->terms[t] * B, gr->host_e + (size_t)t * B,
             sizeof(float) * B);
  }
  c->term_energy_fresh = 1;
  return 0;
}

const float *ebm_composition_term_energies(ebm_composition *c) {
  if (!c->term_energy_fresh && fetch_term_energies(c)) return NULL;
  return c->term_energy;
}

/* ---- the tree on the host, per chain -------------------------------------------------------- */

static double node_value(const expr_node *n, const double *E, int *k, tree_ctx *t) {
  double v = 0.0;
  switch (n->kind) {
  case EXPR_TERM: v = E[(*k)++]; break;
  case EXPR_AND:
    for (int i = 0; i < n->num_children; i++) v += node_value(n->children[i], E, k, t);
    break;
  case EXPR_NOT: v = -(double)n->param * node_value(n->children[0], E, k, t); break;
  case EXPR_OR: {
    double T = n->param, m = -INFINITY, vals[64], s = 0.0;
    int nc = n->num_children < 64 ? n->num_children : 64, side = or_side(t, nc);
    for (int i = 0; i < n->num_children; i++) {
      double vi = node_value(n->children[i], E, k, t);
      if (i == side) v = vi;
      if (i < 64) vals[i] = -vi / T;
      if (i < 64 && vals[i] > m) m = vals[i];
    }
    if (side >= 0) break; /* a mixture: this chain's side alone */
    for (int i = 0; i < nc; i++) s += exp(vals[i] - m);
    v = -T * (m + log(s));
  } break;
  }
  return n->weight * v;
}

/* Adds c * d value(n) / d E_k into coef for every term k under n. */
static void node_backprop(const expr_node *n, const double *E, int *k, double c, double *coef,
                          tree_ctx *t) {
  c *= n->weight;
  switch (n->kind) {
  case EXPR_TERM: coef[(*k)++] += c; break;
  case EXPR_AND:
    for (int i = 0; i < n->num_children; i++) node_backprop(n->children[i], E, k, c, coef, t);
    break;
  case EXPR_NOT: node_backprop(n->children[0], E, k, -(double)n->param * c, coef, t); break;
  case EXPR_OR: {
    double T = n->param, m = -INFINITY, vals[64], s = 0.0;
    int nc = n->num_children < 64 ? n->num_children : 64, side = or_side(t, nc);
    int k0 = *k, or0 = t->or_k;
    for (int i = 0; i < nc; i++) {
      vals[i] = -node_value(n->children[i], E, k, t) / T;
      if (vals[i] > m) m = vals[i];
    }
    for (int i = 0; i < nc; i++) s += exp(vals[i] - m);
    *k = k0;
    t->or_k = or0; /* the children's ORs again, in the same order */
    for (int i = 0; i < nc; i++) {
      double w = side >= 0 ? (i == side) : exp(vals[i] - m) / s;
      node_backprop(n->children[i], E, k, c * w, coef, t);
    }
  } break;
  }
}

double ebm_composition_tree_value_chain(const ebm_composition *c, const double *term_energy,
                                        double *coef, int chain) {
  int k = 0;
  tree_ctx t = {c, chain, 0};
  double v = node_value(c->tree, term_energy, &k, &t);
  if (coef) {
    for (int i = 0; i < c->num_terms; i++) coef[i] = 0.0;
    k = 0;
    t.or_k = 0;
    node_backprop(c->tree, term_energy, &k, 1.0, coef, &t);
  }
  return v;
}

void ebm_composition_set_or_mixture(ebm_composition *c, int on, uint32_t seed) {
  if (c->or_mixture != on || (on && c->or_seed != seed)) c->coef_uploaded = 0;
  c->or_mixture = on;
  c->or_seed = seed;
}

/* 1 when some OR is soft: the coefficients then depend on the energies. Without one (AND, NOT,
 * weights, mixture ORs) they are constants of the tree, the chain and the scale. */
static int soft_or(const ebm_composition *c) { return c->has_or && !c->or_mixture; }

/* Term t's B energies and coefficients: its rows of its group's stacked evaluation. */
static ebm_ref term_energy_ref(const ebm_composition *c, int t) {
  return ebm_at(ebm_ref_of(c->groups[c->term_group[t]].e), (size_t)c->term_slot[t] * c->B);
}
static ebm_ref term_coef_ref(const ebm_composition *c, int t) {
  return ebm_at(ebm_ref_of(c->groups[c->term_group[t]].dE), (size_t)c->term_slot[t] * c->B);
}

/* The coefficients of the host's per-chain evaluation into the groups' dE: scale * dE/dE_k. */
static int upload_host_coefficients(ebm_composition *c) {
  for (int g = 0; g < c->num_groups; g++) {
    group *gr = &c->groups[g];
    if (ebm_upload(c->be, ebm_ref_of(gr->dE), gr->host_dE, (size_t)gr->num_terms * c->B))
      return -1;
  }
  return 0;
}

static void set_host_coefficients(ebm_composition *c, int b, double scale) {
  for (int t = 0; t < c->num_terms; t++)
    c->groups[c->term_group[t]].host_dE[(size_t)c->term_slot[t] * c->B + b] =
        (float)(scale * c->coef[t]);
}

/* Without a soft OR the coefficients do not depend on the energies: computed on the host once
 * per scale (the same doubles rounded the same way as the per-step evaluation did) and left in
 * the groups' dE, so a step never waits for the device. 0, or -1. */
static int constant_coefficients(ebm_composition *c, double scale) {
  if (c->coef_uploaded && c->coef_scale == scale) return 0;
  for (int t = 0; t < c->num_terms; t++) c->E[t] = 0.0;
  for (int b = 0; b < c->B; b++) {
    ebm_composition_tree_value_chain(c, c->E, c->coef, b);
    set_host_coefficients(c, b, scale);
  }
  c->coef_uploaded = 0;
  if (upload_host_coefficients(c)) return -1;
  c->coef_uploaded = 1;
  c->coef_scale = scale;
  return 0;
}

/* With a soft OR: the tree on the device, from the groups' energies to their dE (scale times
 * d E / d E_k), in float. Values bottom up where a soft OR needs them (its operands, stacked
 * [count, B]), then coefficients top down, coef(node) = d (scale E) / d value(node):
 *   term  value = w E_k              dE_k = w coef
 *   AND   value = w sum_i child_i    coef(child_i) = w coef
 *   NOT   value = -alpha w child     coef(child) = -alpha w coef
 *   OR    value = w softmin_T(child) coef(child_i) = w coef softmax_i(-child/T)
 * Nothing comes back to the host. */
static void device_coefficients(ebm_composition *c, double scale) {
  ebm_backend *be = c->be;
  size_t B = (size_t)c->B;
  ebm_ref value = ebm_ref_of(c->node_value), coef = ebm_ref_of(c->node_coef);
  for (int i = c->num_nodes - 1; i >= 0; i--) {
    const dev_node *d = &c->nodes[i];
    if (!d->need_value) continue;
    const float w = d->n->weight;
    ebm_ref v = ebm_at(value, i * B), first = ebm_at(value, d->first * B);
    switch (d->n->kind) {
    case EXPR_TERM: ebm_scale(be, v, w, term_energy_ref(c, d->term), B); break;
    case EXPR_AND:
      ebm_scale(be, v, w, first, B);
      for (int j = 1; j < d->count; j++) ebm_axpy(be, v, w, ebm_at(first, j * B), B);
      break;
    case EXPR_NOT: ebm_scale(be, v, -d->n->param * w, first, B); break;
    case EXPR_OR:
      ebm_softmin_forward(be, v, first, d->count, (int)B, d->n->param);
      if (w != 1.0f) ebm_scale(be, v, w, v, B);
      break;
    }
  }
  ebm_fill(be, coef, (float)scale, B);
  for (int i = 0; i < c->num_nodes; i++) {
    const dev_node *d = &c->nodes[i];
    const float w = d->n->weight;
    ebm_ref ci = ebm_at(coef, i * B), first = ebm_at(coef, d->first * B);
    switch (d->n->kind) {
    case EXPR_TERM: ebm_scale(be, term_coef_ref(c, d->term), w, ci, B); break;
    case EXPR_AND:
      for (int j = 0; j < d->count; j++) ebm_scale(be, ebm_at(first, j * B), w, ci, B);
      break;
    case EXPR_NOT: ebm_scale(be, first, -d->n->param * w, ci, B); break;
    case EXPR_OR:
      ebm_softmin_backward(be, first, ci, ebm_at(value, d->first * B), d->count, (int)B,
                           d->n->param, w);
      break;
    }
  }
}

int ebm_composition_eval(ebm_composition *c, ebm_ref x, double *energy, ebm_ref grad,
                         double scale, char *err, size_t errlen) {
  int B = c->B;
  size_t BN = (size_t)B * c->N;
  /* 1. every model once, on all its terms' rows */
  c->term_energy_fresh = 0;
  for (int g = 0; g < c->num_groups; g++) {
    group *gr = &c->groups[g];
    ebm_ref in = x;
    if (gr->num_terms > 1) {
      for (int t = 0; t < gr->num_terms; t++)
        ebm_scale(c->be, ebm_at(ebm_ref_of(gr->xs), t * BN), 1.0f, x, BN);
      in = ebm_ref_of(gr->xs);
    }
    if (ebm_concept_energy(gr->model, ebm_ref_of(gr->e), in, gr->labels, gr->num_terms, B, err,
                           errlen))
      return -1;
  }
  /* 2. the coefficients dE/dE_k into the groups' dE. The energies come to the host only when
   * the caller asks for them: then the tree runs per chain there in double precision (and gives
   * a soft OR's coefficients too, as the download has already waited for the device). */
  int soft = soft_or(c);
  if (energy) {
    if (fetch_term_energies(c)) {
      snprintf(err, errlen, "download of energies failed");
      return -1;
    }
    for (int b = 0; b < B; b++) {
      for (int t = 0; t < c->num_terms; t++) c->E[t] = c->term_energy[(size_t)t * B + b];
      double v = ebm_composition_tree_value_chain(c, c->E, grad.buf && soft ? c->coef : NULL, b);
      energy[b] = scale * v;
      if (!isfinite(v)) {
        snprintf(err, errlen, "the composed energy of chain %d is not finite", b);
        return -1;
      }
      if (grad.buf && soft) set_host_coefficients(c, b, scale);
    }
  }
  if (!grad.buf) return 0;
  if (soft && energy) {
    c->coef_uploaded = 0; /* dE now holds this evaluation's */
    if (upload_host_coefficients(c)) {
      snprintf(err, errlen, "upload of coefficients failed");
      return -1;
    }
  } else if (soft) {
    c->coef_uploaded = 0;
    device_coefficients(c, scale);
  } else if (constant_coefficients(c, scale)) {
    snprintf(err, errlen, "upload of coefficients failed");
    return -1;
  }
  /* 3. each model's backward with its coefficients; the slices summed into grad in fixed order */
  int first = 1;
  for (int g = 0; g < c->num_groups; g++) {
    group *gr = &c->groups[g];
    int direct = first && gr->num_terms == 1;
    if (ebm_concept_grad(gr->model, direct ? grad : ebm_ref_of(gr->dx), ebm_ref_of(gr->dE), err,
                         errlen))
      return -1;
    if (direct) {
      first = 0;
      continue;
    }
    for (int t = 0; t < gr->num_terms; t++) {
      ebm_ref slice = ebm_at(ebm_ref_of(gr->dx), t * BN);
      if (first)
        ebm_scale(c->be, grad, 1.0f, slice, BN);
      else
        ebm_axpy(c->be, grad, 1.0f, slice, BN);
      first = 0;
    }
  }
  return 0;
}

/* ---- explanation --------------------------------------------------------------------------- */

static void put_float(sbuf *b, double v) {
  char t[32];
  io_float_text(t, sizeof t, (float)v);
  put(b, "%s", t);
}

static void explain_node(sbuf *b, const expr_node *n, int depth, int *k,
                         const ebm_composition *c) {
  put(b, "  %*s", depth * 2, "");
  if (n->weight != 1.0f) {
    put_float(b, n->weight);
    put(b, " * ");
  }
  switch (n->kind) {
  case EXPR_TERM: {
    char text[96];
    term_to_text(n, text, sizeof text);
    put(b, "E%d = E(x | %s)", *k + 1, text);
    const ebm_concept_info *info = ebm_concept_info_of(ebm_composition_term_model(c, *k));
    put(b, "    [%s model '%s', %dx%dx%d, %s]", info->kind, info->name, info->channels,
        info->height, info->width, info->hash);
    (*k)++;
    put(b, "\n");
    return;
  }
  case EXPR_AND: put(b, "AND (sum)\n"); break;
  case EXPR_OR:
    put(b, "OR (-T logsumexp(-E_i/T), T = ");
    put_float(b, n->param);
    put(b, ")\n");
    break;
  case EXPR_NOT:
    put(b, "NOT (-alpha E, alpha = ");
    put_float(b, n->param);
    put(b, ")\n");
    break;
  }
  for (int i = 0; i < n->num_children; i++) explain_node(b, n->children[i], depth + 1, k, c);
}

static void formula(sbuf *b, const expr_node *n, int *k, int nested) {
  int w = n->weight != 1.0f;
  if (w) {
    put_float(b, n->weight);
    put(b, "*");
  }
  switch (n->kind) {
  case EXPR_TERM: put(b, "E%d", ++*k); break;
  case EXPR_AND:
    if (nested || w) put(b, "(");
    for (int i = 0; i < n->num_children; i++) {
      if (i) put(b, " + ");
      formula(b, n->children[i], k, 1);
    }
    if (nested || w) put(b, ")");
    break;
  case EXPR_NOT:
    if (nested || w) put(b, "(");
    put(b, "-");
    put_float(b, n->param);
    put(b, "*");
    formula(b, n->children[0], k, 1);
    if (nested || w) put(b, ")");
    break;
  case EXPR_OR:
    if (w) put(b, "(");
    put(b, "-");
    put_float(b, n->param);
    put(b, "*logsumexp(");
    for (int i = 0; i < n->num_children; i++) {
      if (i) put(b, ", ");
      put(b, "-");
      formula(b, n->children[i], k, 1);
      put(b, "/");
      put_float(b, n->param);
    }
    put(b, ")");
    if (w) put(b, ")");
    break;
  }
}

void ebm_composition_explain(const ebm_composition *c, char *out, size_t len) {
  sbuf b = {out, len, 0};
  if (len) out[0] = 0;
  char text[2048];
  expr_print(c->tree, text, sizeof text);
  put(&b, "expression: %s\ntree:\n", text);
  int k = 0;
  explain_node(&b, c->tree, 0, &k, c);
  put(&b, "energy:\n  E(x) = ");
  k = 0;
  formula(&b, c->tree, &k, 0);
  put(&b, "\n  p(x) ~ exp(-E(x))\n");
}
