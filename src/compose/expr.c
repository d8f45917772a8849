/* expr.c: recursive-descent parser, printer and checks for the concept expression language
 * (grammar in include/vkebm/expr.h). Owns the tree's memory. Every error carries the byte
 * offset it refers to; nothing here aborts on bad input. */
#include "vkebm/expr.h"
#include "vkebm/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_buf.h"

#define EXPR_MAX_DEPTH 64 /* nesting limit: bounded recursion on hostile input */

typedef struct parser {
  const char *s;
  int i;
  int depth;
  expr_error *err;
  int failed;
  char cb[8]; /* shown_char's buffer for the one message */
} parser;

static void fail(parser *p, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser *p, int pos, const char *fmt, ...) {
  if (p->failed) return;
  p->failed = 1;
  if (!p->err) return;
  p->err->pos = pos;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
  va_end(ap);
}

/* Bytes in the UTF-8 character at s (1 for ASCII, a stray byte or a broken sequence). */
static int utf8_len(const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  int n = u[0] < 0x80 ? 1 : (u[0] & 0xe0) == 0xc0 ? 2 : (u[0] & 0xf0) == 0xe0 ? 3 : (u[0] & 0xf8) == 0xf0 ? 4 : 1;
  for (int k = 1; k < n; k++)
    if ((u[k] & 0xc0) != 0x80) return 1;
  return n;
}

/* The character at s for a message: a whole UTF-8 character (never one byte of it), or \xNN for
 * a control or stray byte. */
static const char *shown_char(const char *s, char buf[8]) {
  int n = utf8_len(s);
  unsigned char c = (unsigned char)s[0];
  if (n == 1 && (c < 32 || c >= 127)) snprintf(buf, 8, "\\x%02x", c);
  else memcpy(buf, s, (size_t)n), buf[n] = 0;
  return buf;
}

static void skip_ws(parser *p) {
  while (p->s[p->i] && isspace((unsigned char)p->s[p->i])) p->i++;
}

static int is_name_start(int c) { return isalpha(c) || c == '_'; }
static int is_name_char(int c) { return isalnum(c) || c == '_' || c == '-'; }

/* Case-insensitive keyword at the cursor, followed by a non-name character. */
static int at_keyword(parser *p, const char *kw) {
  size_t n = strlen(kw);
  for (size_t k = 0; k < n; k++)
    if (toupper((unsigned char)p->s[p->i + k]) != kw[k]) return 0;
  return !is_name_char((unsigned char)p->s[p->i + n]);
}

static expr_node *node_new(parser *p, expr_kind kind, int pos) {
  expr_node *n = calloc(1, sizeof *n);
  if (!n) {
    fail(p, pos, "out of memory");
    return NULL;
  }
  n->kind = kind;
  n->pos = pos;
  n->weight = 1.0f;
  n->param = kind == EXPR_NOT ? EXPR_DEFAULT_NOT_ALPHA
             : kind == EXPR_OR ? EXPR_DEFAULT_OR_TEMPERATURE : 0.0f;
  return n;
}

static int add_child(parser *p, expr_node *n, expr_node *c) {
  expr_node **nc = realloc(n->children, sizeof *nc * (size_t)(n->num_children + 1));
  if (!nc) {
    fail(p, c->pos, "out of memory");
    return -1;
  }
  n->children = nc;
  n->children[n->num_children++] = c;
  return 0;
}

void expr_free(expr_node *n) {
  if (!n) return;
  for (int i = 0; i < n->num_children; i++) expr_free(n->children[i]);
  free(n->children);
  free(n);
}

expr_node *expr_clone(const expr_node *n) {
  expr_node *c = malloc(sizeof *c);
  if (!c) return NULL;
  *c = *n;
  c->num_children = 0;
  c->children = n->num_children ? calloc((size_t)n->num_children, sizeof *c->children) : NULL;
  if (n->num_children && !c->children) {
    free(c);
    return NULL;
  }
  for (int i = 0; i < n->num_children; i++) {
    if (!(c->children[i] = expr_clone(n->children[i]))) {
      expr_free(c);
      return NULL;
    }
    c->num_children++;
  }
  return c;
}

/* A finite number (strtod syntax, no hex, no inf/nan). */
static int parse_number(parser *p, float *out) {
  skip_ws(p);
  const char *start = p->s + p->i;
  int c0 = (unsigned char)start[0];
  int c1 = c0 ? (unsigned char)start[1] : 0;
  int ok = isdigit(c0) || ((c0 == '-' || c0 == '+' || c0 == '.') &&
                           (isdigit(c1) || (c1 == '.' && isdigit((unsigned char)start[2]))));
  if (!ok || (c0 == '0' && (c1 == 'x' || c1 == 'X'))) {
    fail(p, p->i, "expected a number");
    return -1;
  }
  char *end;
  errno = 0;
  double v = strtod(start, &end);
  if (end == start || errno == ERANGE || !isfinite(v) || fabs(v) > 3.0e38) {
    fail(p, p->i, "number out of range");
    return -1;
  }
  p->i += (int)(end - start);
  *out = (float)v;
  return 0;
}

static int parse_name(parser *p, char *out, const char *what) {
  skip_ws(p);
  int start = p->i;
  if (!is_name_start((unsigned char)p->s[p->i])) {
    if (!p->s[p->i])
      fail(p, p->i, "expected %s, found the end of the expression", what);
    else
      fail(p, p->i, "expected %s, found '%s'", what, shown_char(p->s + p->i, p->cb));
    return -1;
  }
  while (is_name_char((unsigned char)p->s[p->i])) p->i++;
  int n = p->i - start;
  if (n >= EXPR_MAX_NAME) {
    fail(p, start, "name longer than %d characters", EXPR_MAX_NAME - 1);
    return -1;
  }
  memcpy(out, p->s + start, (size_t)n);
  out[n] = 0;
  return 0;
}

/* "[" number "]" after NOT or OR; returns 1 if present, 0 if absent, -1 on error. */
static int parse_bracket_param(parser *p, float *out, const char *what, float lo_exclusive) {
  skip_ws(p);
  if (p->s[p->i] != '[') return 0;
  p->i++;
  skip_ws(p);
  int at = p->i;
  if (parse_number(p, out)) return -1;
  if (!(*out > lo_exclusive)) {
    fail(p, at, "%s must be > %g", what, lo_exclusive);
    return -1;
  }
  skip_ws(p);
  if (p->s[p->i] != ']') {
    fail(p, p->i, "expected ']' to close the %s", what);
    return -1;
  }
  p->i++;
  return 1;
}

static expr_node *parse_or(parser *p);

static int is_keyword_name(const char *name) {
  static const char *kws[] = {"AND", "OR", "NOT"};
  for (size_t k = 0; k < 3; k++) {
    size_t n = strlen(kws[k]), j = 0;
    for (; j < n && name[j] && toupper((unsigned char)name[j]) == kws[k][j]; j++) {}
    if (j == n && !name[n]) return 1;
  }
  return 0;
}

static expr_node *parse_term(parser *p) {
  skip_ws(p);
  int start = p->i;
  if (at_keyword(p, "AND") || at_keyword(p, "OR")) {
    fail(p, start, "expected a term (like color=red) before this operator");
    return NULL;
  }
  if (p->s[start] == '&' || p->s[start] == '|') {
    fail(p, start, "expected a term (like color=red) before '%c'", p->s[start]);
    return NULL;
  }
  if (p->s[start] == ')') {
    fail(p, start, "expected a term (like color=red), found ')'");
    return NULL;
  }
  expr_node *n = node_new(p, EXPR_TERM, start);
  if (!n) return NULL;
  if (parse_name(p, n->concept, "a term (like color=red)")) goto bad;
  if (is_keyword_name(n->concept)) {
    fail(p, start, "'%s' is an operator; expected a term (like color=red)", n->concept);
    goto bad;
  }
  skip_ws(p);
  if (p->s[p->i] != '=') {
    if (!p->s[p->i])
      fail(p, p->i, "expected '=' and a value after '%s' (like %s=VALUE)", n->concept,
           n->concept);
    else
      fail(p, p->i, "expected '=' after '%s', found '%s'", n->concept, shown_char(p->s + p->i, p->cb));
    goto bad;
  }
  p->i++;
  skip_ws(p);
  n->value_pos = p->i;
  int c = (unsigned char)p->s[p->i];
  if (c == '(') {
    p->i++;
    for (;;) {
      if (n->num_values == EXPR_MAX_VALUES) {
        fail(p, p->i, "more than %d numbers in a value", EXPR_MAX_VALUES);
        goto bad;
      }
      if (parse_number(p, &n->values[n->num_values])) goto bad;
      n->num_values++;
      skip_ws(p);
      if (p->s[p->i] == ',') {
        p->i++;
        continue;
      }
      if (p->s[p->i] == ')') {
        p->i++;
        break;
      }
      fail(p, p->i, "expected ',' or ')' in the value of '%s'", n->concept);
      goto bad;
    }
  } else if (is_name_start(c)) {
    if (parse_name(p, n->value_name, "a value")) goto bad;
    if (is_keyword_name(n->value_name)) {
      fail(p, n->value_pos, "'%s' is an operator; expected a value after '%s='", n->value_name,
           n->concept);
      goto bad;
    }
  } else if (isdigit(c) || c == '-' || c == '+' || c == '.') {
    if (parse_number(p, &n->values[0])) goto bad;
    n->num_values = 1;
  } else {
    if (!c)
      fail(p, p->i, "expected a value after '%s=', found the end of the expression", n->concept);
    else
      fail(p, p->i, "expected a value after '%s=' (a name, a number or (x,y)), found '%s'",
           n->concept, shown_char(p->s + p->i, p->cb));
    goto bad;
  }
  return n;
bad:
  expr_free(n);
  return NULL;
}

static expr_node *parse_unary(parser *p) {
  skip_ws(p);
  int start = p->i;
  /* the term itself is a level: EXPR_MAX_DEPTH parentheses (or NOTs, weights) around it pass */
  if (++p->depth > EXPR_MAX_DEPTH + 1) {
    fail(p, start, "expression nested deeper than %d levels (parentheses, NOT and weights)",
         EXPR_MAX_DEPTH);
    return NULL;
  }
  expr_node *out = NULL;
  int c = (unsigned char)p->s[p->i];
  if (c == '!' || at_keyword(p, "NOT")) {
    p->i += c == '!' ? 1 : 3;
    expr_node *n = node_new(p, EXPR_NOT, start);
    if (!n) goto done;
    int r = parse_bracket_param(p, &n->param, "negation strength", 0.0f);
    if (r < 0) {
      expr_free(n);
      goto done;
    }
    n->param_explicit = r;
    expr_node *a = parse_unary(p);
    if (!a || add_child(p, n, a)) {
      expr_free(a);
      expr_free(n);
      goto done;
    }
    out = n;
  } else if (isdigit(c) || c == '.' || ((c == '-' || c == '+') && !is_name_start((unsigned char)p->s[p->i + 1]))) {
    float w;
    if (parse_number(p, &w)) goto done;
    skip_ws(p);
    if (p->s[p->i] != '*') {
      fail(p, p->i, "expected '*' after the weight %g (like %g*color=red)", w, w);
      goto done;
    }
    if (!(w > 0.0f)) {
      fail(p, start, "a weight must be > 0 (use NOT for a negative contribution)");
      goto done;
    }
    p->i++;
    expr_node *a = parse_unary(p);
    if (!a) goto done;
    a->weight *= w;
    if (!isfinite(a->weight)) {
      fail(p, start, "weight out of range");
      expr_free(a);
      goto done;
    }
    a->pos = start;
    out = a;
  } else if (c == '(') {
    p->i++;
    expr_node *a = parse_or(p);
    if (!a) goto done;
    skip_ws(p);
    if (p->s[p->i] != ')') {
      if (!p->s[p->i])
        fail(p, start, "'(' is never closed");
      else
        fail(p, p->i, "expected ')' or an operator, found '%s'", shown_char(p->s + p->i, p->cb));
      expr_free(a);
      goto done;
    }
    p->i++;
    out = a;
  } else {
    out = parse_term(p);
  }
done:
  p->depth--;
  return out;
}

static expr_node *parse_and(parser *p) {
  expr_node *first = parse_unary(p);
  if (!first) return NULL;
  expr_node *n = NULL;
  for (;;) {
    skip_ws(p);
    int at = p->i;
    if (p->s[p->i] == '&')
      p->i++;
    else if (at_keyword(p, "AND"))
      p->i += 3;
    else
      break;
    if (!n) {
      n = node_new(p, EXPR_AND, first->pos);
      if (!n || add_child(p, n, first)) {
        expr_free(n);
        expr_free(first);
        return NULL;
      }
    }
    skip_ws(p);
    if (!p->s[p->i]) {
      fail(p, at, "AND needs a right-hand side");
      expr_free(n);
      return NULL;
    }
    expr_node *b = parse_unary(p);
    if (!b || add_child(p, n, b)) {
      expr_free(b);
      expr_free(n);
      return NULL;
    }
  }
  return n ? n : first;
}

static expr_node *parse_or(parser *p) {
  expr_node *first = parse_and(p);
  if (!first) return NULL;
  expr_node *n = NULL;
  for (;;) {
    skip_ws(p);
    int at = p->i;
    if (p->s[p->i] == '|')
      p->i++;
    else if (at_keyword(p, "OR"))
      p->i += 2;
    else
      break;
    if (!n) {
      n = node_new(p, EXPR_OR, first->pos);
      if (!n || add_child(p, n, first)) {
        expr_free(n);
        expr_free(first);
        return NULL;
      }
    }
    float t;
    int r = parse_bracket_param(p, &t, "disjunction temperature", 0.0f);
    if (r < 0) {
      expr_free(n);
      return NULL;
    }
    if (r == 1) {
      if (n->param_explicit && n->param != t) {
        fail(p, at, "conflicting temperatures %g and %g in one OR chain (use parentheses)",
             n->param, t);
        expr_free(n);
        return NULL;
      }
      n->param = t;
      n->param_explicit = 1;
    }
    skip_ws(p);
    if (!p->s[p->i]) {
      fail(p, at, "OR needs a right-hand side");
      expr_free(n);
      return NULL;
    }
    expr_node *b = parse_and(p);
    if (!b || add_child(p, n, b)) {
      expr_free(b);
      expr_free(n);
      return NULL;
    }
  }
  return n ? n : first;
}

int expr_grounded(const expr_node *n) {
  switch (n->kind) {
  case EXPR_TERM: return 1;
  case EXPR_NOT: return 0;
  case EXPR_AND:
    for (int i = 0; i < n->num_children; i++)
      if (expr_grounded(n->children[i])) return 1;
    return 0;
  case EXPR_OR:
    for (int i = 0; i < n->num_children; i++)
      if (!expr_grounded(n->children[i])) return 0;
    return 1;
  }
  return 0;
}

/* The first NOT that leaves its enclosing expression ungrounded, for the error's position. */
static const expr_node *first_ungrounded_not(const expr_node *n) {
  if (n->kind == EXPR_NOT) return n;
  for (int i = 0; i < n->num_children; i++)
    if (!expr_grounded(n->children[i])) return first_ungrounded_not(n->children[i]);
  return n;
}

expr_node *expr_parse(const char *src, expr_error *err) {
  parser p = {src ? src : "", 0, 0, err, 0};
  if (err) {
    err->pos = -1;
    err->msg[0] = 0;
  }
  skip_ws(&p);
  if (!p.s[p.i]) {
    fail(&p, 0, "empty expression (try shape=cube AND color=red)");
    return NULL;
  }
  expr_node *n = parse_or(&p);
  if (!n) return NULL;
  skip_ws(&p);
  if (p.s[p.i]) {
    if (p.s[p.i] == ')')
      fail(&p, p.i, "unmatched ')'");
    else
      fail(&p, p.i, "expected AND, OR or the end of the expression, found '%s'", shown_char(p.s + p.i, p.cb));
    expr_free(n);
    return NULL;
  }
  if (!expr_grounded(n)) {
    const expr_node *bad = first_ungrounded_not(n);
    fail(&p, bad->pos,
         "a negation needs a positive term to ground it: exp(+alpha*E) cannot be normalised "
         "and sampling it gives noise; write e.g. shape=cube AND NOT color=red");
    expr_free(n);
    return NULL;
  }
  return n;
}

/* ---- printing ----------------------------------------------------------------------------- */

/* Precedence: OR 1 < AND 2 < unary 3. A child needs parentheses when its precedence is lower
 * than its context's or when it carries a weight and is not a term. */
static int prec_of(const expr_node *n) {
  return n->kind == EXPR_OR ? 1 : n->kind == EXPR_AND ? 2 : 3;
}

/* Shortest %g form that reads back as the same float. */
static void put_float(sbuf *b, float v) {
  char t[32];
  io_float_text(t, sizeof t, v);
  put(b, "%s", t);
}

static void print_node(sbuf *b, const expr_node *n, int ctx_prec) {
  int weighted = n->weight != 1.0f;
  if (weighted) {
    put_float(b, n->weight);
    put(b, "*");
  }
  int paren = prec_of(n) < ctx_prec || (weighted && n->kind != EXPR_TERM && n->kind != EXPR_NOT);
  if (paren) put(b, "(");
  switch (n->kind) {
  case EXPR_TERM:
    put(b, "%s=", n->concept);
    if (n->value_name[0])
      put(b, "%s", n->value_name);
    else if (n->num_values == 1)
      put_float(b, n->values[0]);
    else {
      put(b, "(");
      for (int i = 0; i < n->num_values; i++) {
        if (i) put(b, ",");
        put_float(b, n->values[i]);
      }
      put(b, ")");
    }
    break;
  case EXPR_NOT:
    put(b, "NOT");
    if (n->param_explicit) {
      put(b, "[");
      put_float(b, n->param);
      put(b, "]");
    }
    put(b, " ");
    print_node(b, n->children[0], 3);
    break;
  case EXPR_AND:
  case EXPR_OR:
    for (int i = 0; i < n->num_children; i++) {
      if (i) {
        if (n->kind == EXPR_AND)
          put(b, " AND ");
        else if (n->param_explicit && i == 1) {
          put(b, " OR[");
          put_float(b, n->param);
          put(b, "] ");
        }
        else
          put(b, " OR ");
      }
      /* Same-kind children of an n-ary chain keep their parentheses so the tree survives;
       * an AND inside an OR gets them too, for the reader. */
      print_node(b, n->children[i], 3);
    }
    break;
  }
  if (paren) put(b, ")");
}

int expr_print(const expr_node *n, char *out, size_t len) {
  sbuf b = {out, len, 0};
  if (len) out[0] = 0;
  print_node(&b, n, 0);
  if (len) out[b.n < len ? b.n : len - 1] = 0;
  return (int)b.n;
}

int expr_equal(const expr_node *a, const expr_node *b) {
  if (a->kind != b->kind || a->weight != b->weight || a->num_children != b->num_children)
    return 0;
  if ((a->kind == EXPR_NOT || a->kind == EXPR_OR) && a->param != b->param) return 0;
  if (a->kind == EXPR_TERM) {
    if (strcmp(a->concept, b->concept) || strcmp(a->value_name, b->value_name) ||
        a->num_values != b->num_values)
      return 0;
    for (int i = 0; i < a->num_values; i++)
      if (a->values[i] != b->values[i]) return 0;
  }
  for (int i = 0; i < a->num_children; i++)
    if (!expr_equal(a->children[i], b->children[i])) return 0;
  return 1;
}

int expr_count_terms(const expr_node *n) {
  if (n->kind == EXPR_TERM) return 1;
  int k = 0;
  for (int i = 0; i < n->num_children; i++) k += expr_count_terms(n->children[i]);
  return k;
}

void expr_error_format(const char *src, const expr_error *err, char *out, size_t len) {
  sbuf b = {out, len, 0};
  if (len) out[0] = 0;
  put(&b, "%s", err->msg);
  if (src && err->pos >= 0 && (size_t)err->pos <= strlen(src)) {
    put(&b, "\n  ");
    for (const char *c = src; *c; c++) {
      unsigned char u = (unsigned char)*c;
      put(&b, "%c", (u == '\n' || u == '\t') ? ' ' : (u < 32 || u == 127) ? '?' : *c);
    }
    int col = 0; /* characters, not bytes, before the error: the caret under a UTF-8 text */
    for (int i = 0; i < err->pos; i++) col += ((unsigned char)src[i] & 0xc0) != 0x80;
    put(&b, "\n  %*s^", col, "");
  }
}
