/* expr.h: the concept expression language (docs/recipe.md §3), parsed into a tree.
 *
 * Owns: the grammar, the tree, its canonical printing (print(parse(s)) parses to the same tree),
 * the grounding rule for negation, and error reporting with a position in the source string.
 * Knows nothing of models: binding terms to concept models happens in compose.h.
 *
 * Grammar (keywords case-insensitive; whitespace free):
 *   expr    := or
 *   or      := and { ("OR" | "|") ["[" T "]"] and }        T: disjunction temperature
 *   and     := unary { ("AND" | "&") unary }
 *   unary   := ("NOT" | "!") ["[" alpha "]"] unary          alpha: negation strength
 *            | number "*" unary                              weight (> 0)
 *            | primary
 *   primary := "(" expr ")" | term
 *   term    := name "=" value
 *   value   := number | name | "(" number { "," number } ")"
 * Energies: AND sums its children; OR is -T logsumexp(-E_i / T); NOT[a] e is -a E(e); a weight
 * w multiplies its operand's energy. A chain `a OR b OR c` is one n-ary OR with one temperature.
 */
#ifndef VKEBM_EXPR_H
#define VKEBM_EXPR_H

#include <stddef.h>

#define EXPR_DEFAULT_NOT_ALPHA 0.001f  /* the paper's released code */
#define EXPR_DEFAULT_OR_TEMPERATURE 0.01f
#define EXPR_MAX_VALUES 64
#define EXPR_MAX_NAME 48

typedef enum expr_kind { EXPR_TERM = 0, EXPR_AND, EXPR_OR, EXPR_NOT } expr_kind;

typedef struct expr_node {
  expr_kind kind;
  int pos;              /* byte offset in the source where this node starts */
  float weight;         /* multiplies this node's energy; 1 unless written `w*` */
  float param;          /* NOT: alpha; OR: temperature; unused otherwise */
  int param_explicit;   /* 1 when written in brackets (printed back only then) */
  /* EXPR_TERM */
  char concept[EXPR_MAX_NAME];
  char value_name[EXPR_MAX_NAME]; /* `color=red`: "red"; empty for numeric values */
  int num_values;                  /* numeric value: `size=0.6` -> 1, `pos=(0.3,-0.5)` -> 2 */
  float values[EXPR_MAX_VALUES];
  int value_pos;                   /* offset of the value, for binding errors */
  /* operators */
  int num_children;
  struct expr_node **children;
} expr_node;

typedef struct expr_error {
  int pos;        /* byte offset the message refers to, -1 when none */
  char msg[320];
} expr_error;

/* Parses src. Returns the tree (free with expr_free) or NULL with *err filled. Also enforces
 * that negations are grounded (see expr_grounded). */
expr_node *expr_parse(const char *src, expr_error *err);
void expr_free(expr_node *n);
/* A deep copy (positions included); NULL when out of memory. */
expr_node *expr_clone(const expr_node *n);

/* 1 when the expression's distribution can be normalised: a term is grounded; NOT never is;
 * AND is when any child is; OR is when every child is (each mode must be). */
int expr_grounded(const expr_node *n);

/* Canonical text (always parseable, round trips). Returns the length it needed (like snprintf). */
int expr_print(const expr_node *n, char *out, size_t len);

/* Structural equality (kinds, weights, params, values; positions ignored). */
int expr_equal(const expr_node *a, const expr_node *b);

/* Formats "message\n  EXPR\n  ^" into out (the caret under err->pos). */
void expr_error_format(const char *src, const expr_error *err, char *out, size_t len);

/* Number of leaves (terms). */
int expr_count_terms(const expr_node *n);

#endif
