/* test_expr_parse.c: the expression language's parser. The examples parse to the trees
 * they mean; printing round trips; every entry of a table of bad inputs gets its own error at
 * its own position; a deterministic random-mutation loop over the examples never crashes (run
 * this test under -DVKEBM_SANITIZE=ON for ASan/UBSan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/expr.h"
#include "vkebm/shared.h"

static const char *examples[] = {
    "shape=cube AND color=red",
    "color=red OR color=blue",
    "shape=sphere AND NOT color=red",
    "pos=(-0.5,0) AND pos=(0.5,0)",
    "(shape=cube AND color=red) OR (shape=sphere AND color=blue)",
    "2*color=red AND size=0.6",
    "shape=cube & !color=red | color=blue",
    "NOT[0.5] color=red AND shape=cube",
    "color=red OR[1] color=blue OR color=green",
    "3*(color=red OR color=blue) AND pos=(0.3,-0.5)",
    "size=.5 AND NOT NOT[2] shape=cube AND shape=cube",
    "((((color=red))))",
    "color = red and not shape = cube",
};

/* Checks the tree of the first examples by hand. */
static void check_shapes(void) {
  expr_error err;
  expr_node *n = expr_parse("shape=cube AND color=red", &err);
  TU_CHECK(n && n->kind == EXPR_AND && n->num_children == 2, "AND of two");
  if (n) {
    TU_CHECK(!strcmp(n->children[0]->concept, "shape") && !strcmp(n->children[0]->value_name, "cube"), "term 0");
    TU_CHECK(!strcmp(n->children[1]->concept, "color") && !strcmp(n->children[1]->value_name, "red"), "term 1");
  }
  expr_free(n);

  n = expr_parse("color=red OR color=blue", &err);
  TU_CHECK(n && n->kind == EXPR_OR && n->num_children == 2 && n->param == EXPR_DEFAULT_OR_TEMPERATURE, "OR");
  expr_free(n);

  n = expr_parse("shape=sphere AND NOT color=red", &err);
  TU_CHECK(n && n->kind == EXPR_AND && n->children[1]->kind == EXPR_NOT &&
               n->children[1]->param == EXPR_DEFAULT_NOT_ALPHA &&
               n->children[1]->children[0]->kind == EXPR_TERM, "AND NOT");
  expr_free(n);

  n = expr_parse("pos=(-0.5,0) AND pos=(0.5,0)", &err);
  TU_CHECK(n && n->kind == EXPR_AND && n->children[0]->num_values == 2 &&
               n->children[0]->values[0] == -0.5f && n->children[1]->values[0] == 0.5f &&
               n->children[1]->values[1] == 0.0f, "two positions");
  expr_free(n);

  n = expr_parse("(shape=cube AND color=red) OR (shape=sphere AND color=blue)", &err);
  TU_CHECK(n && n->kind == EXPR_OR && n->children[0]->kind == EXPR_AND &&
               n->children[1]->kind == EXPR_AND, "OR of ANDs");
  expr_free(n);

  n = expr_parse("2*color=red AND size=0.6", &err);
  TU_CHECK(n && n->kind == EXPR_AND && n->children[0]->weight == 2.0f &&
               n->children[1]->num_values == 1 && n->children[1]->values[0] == 0.6f, "weight");
  expr_free(n);

  /* precedence: NOT > AND > OR */
  n = expr_parse("a=1 OR b=2 AND NOT[0.5] c=3", &err);
  TU_CHECK(n && n->kind == EXPR_OR && n->children[1]->kind == EXPR_AND &&
               n->children[1]->children[1]->kind == EXPR_NOT &&
               n->children[1]->children[1]->param == 0.5f, "precedence");
  expr_free(n);

  n = expr_parse("color=red OR[1] color=blue OR color=green", &err);
  TU_CHECK(n && n->kind == EXPR_OR && n->num_children == 3 && n->param == 1.0f, "n-ary OR[1]");
  expr_free(n);
}

static void check_round_trips(void) {
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
    expr_error err;
    expr_node *a = expr_parse(examples[i], &err);
    TU_CHECK(a, "example %zu '%s' fails: %s", i, examples[i], err.msg);
    if (!a) continue;
    char t1[512], t2[512];
    expr_print(a, t1, sizeof t1);
    expr_node *b = expr_parse(t1, &err);
    TU_CHECK(b, "printed '%s' does not parse: %s", t1, err.msg);
    if (b) {
      TU_CHECK(expr_equal(a, b), "round trip changes the tree: '%s' -> '%s'", examples[i], t1);
      expr_print(b, t2, sizeof t2);
      TU_CHECK(!strcmp(t1, t2), "printing is not idempotent: '%s' vs '%s'", t1, t2);
    }
    printf("  %-60s -> %s\n", examples[i], t1);
    expr_free(a);
    expr_free(b);
  }
}

typedef struct bad_case {
  const char *src;
  int pos;             /* expected error position */
  const char *needle;  /* expected substring of the message */
} bad_case;

static const bad_case bad[] = {
    {"", 0, "empty expression"},
    {"   ", 0, "empty expression"},
    {"color", 5, "expected '='"},
    {"color=", 6, "expected a value"},
    {"color=red AND", 10, "AND needs a right-hand side"},
    {"color=red OR", 10, "OR needs a right-hand side"},
    {"AND color=red", 0, "before this operator"},
    {"color=red AND AND shape=cube", 14, "before this operator"},
    {"(color=red", 0, "never closed"},
    {"color=red)", 9, "unmatched ')'"},
    {"()", 1, "found ')'"},
    {"NOT color=red", 0, "negation needs a positive term"},
    {"!color=red OR shape=cube", 0, "negation needs a positive term"},
    {"NOT (color=red AND shape=cube)", 0, "negation needs a positive term"},
    {"shape=cube OR NOT color=red", 14, "negation needs a positive term"},
    {"0*color=red", 0, "weight must be > 0"},
    {"-2*color=red", 0, "weight must be > 0"},
    {"2 color=red", 2, "expected '*'"},
    {"NOT[0] color=red AND shape=cube", 4, "negation strength must be > 0"},
    {"NOT[-1] color=red AND shape=cube", 4, "negation strength must be > 0"},
    {"NOT[0.5 color=red AND shape=cube", 8, "expected ']'"},
    {"color=red OR[0] color=blue", 13, "temperature must be > 0"},
    {"color=red OR[1] color=blue OR[2] color=green", 27, "conflicting temperatures"},
    {"pos=(0.3,", 9, "expected a number"},
    {"pos=(0.3 0.5)", 9, "expected ',' or ')'"},
    {"pos=(0.3,abc)", 9, "expected a number"},
    {"size=1e99", 5, "out of range"},
    {"color=red shape=cube", 10, "expected AND, OR"},
    {"color=#ff0000", 6, "expected a value"},
    {"=red", 0, "expected a term"},
    {"and=red", 0, "before this operator"},
    {"color=not", 6, "is an operator"},
    {"color=red AND 3", 15, "expected '*'"},
};

static void check_bad_inputs(void) {
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    expr_error err = {0};
    expr_node *n = expr_parse(bad[i].src, &err);
    TU_CHECK(!n, "'%s' should fail", bad[i].src);
    expr_free(n);
    TU_CHECK(strstr(err.msg, bad[i].needle), "'%s': message '%s' lacks '%s'", bad[i].src, err.msg,
             bad[i].needle);
    TU_CHECK(err.pos == bad[i].pos, "'%s': error at %d, expected %d (%s)", bad[i].src, err.pos,
             bad[i].pos, err.msg);
  }
  char buf[512];
  expr_error err;
  const char *src = "color=red AND AND shape=cube";
  expr_free(expr_parse(src, &err));
  expr_error_format(src, &err, buf, sizeof buf);
  printf("  example error:\n%s\n", buf);
  TU_CHECK(strstr(buf, "\n                ^"), "caret under position 14");
}

/* Mutation fuzzing: replace, insert, delete and splice characters of the examples with a fixed
 * RNG; every result must either parse (and then round trip) or fail with a message and a
 * position inside the string. */
static void fuzz(void) {
  static const char alphabet[] = "()[],=*&|!-+.0123456789eE aANDORNOTcolr=pos";
  int parsed = 0, failed = 0;
  const int iters = 60000;
  for (int it = 0; it < iters; it++) {
    char s[256];
    const char *base = examples[vkebm_rng_u32(7, it, 0, 0) % (sizeof examples / sizeof *examples)];
    snprintf(s, sizeof s, "%s", base);
    int edits = 1 + (int)(vkebm_rng_u32(7, it, 0, 1) % 6);
    for (int e = 0; e < edits; e++) {
      size_t len = strlen(s);
      uint32_t r = vkebm_rng_u32(7, it, 1 + e, 0);
      size_t at = len ? vkebm_rng_u32(7, it, 1 + e, 1) % (len + 1) : 0;
      char ch = alphabet[vkebm_rng_u32(7, it, 1 + e, 2) % (sizeof alphabet - 1)];
      switch (r % 4) {
      case 0: if (at < len) s[at] = ch; break;
      case 1: if (len + 1 < sizeof s) { memmove(s + at + 1, s + at, len - at + 1); s[at] = ch; } break;
      case 2: if (at < len) memmove(s + at, s + at + 1, len - at); break;
      case 3: { /* splice a piece of another example */
        const char *o = examples[r / 4 % (sizeof examples / sizeof *examples)];
        size_t ol = strlen(o), k = vkebm_rng_u32(7, it, 1 + e, 3) % (ol + 1);
        if (len + (ol - k) + 1 < sizeof s) { memmove(s + at + (ol - k), s + at, len - at + 1); memcpy(s + at, o + k, ol - k); }
      } break;
      }
    }
    expr_error err;
    expr_node *n = expr_parse(s, &err);
    if (n) {
      parsed++;
      char t[1024];
      expr_print(n, t, sizeof t);
      expr_node *m = expr_parse(t, &err);
      TU_CHECK(m && expr_equal(n, m), "fuzz round trip: '%s' -> '%s'", s, t);
      expr_free(m);
      expr_free(n);
    } else {
      failed++;
      TU_CHECK(err.msg[0] && err.pos >= 0 && (size_t)err.pos <= strlen(s), "fuzz: '%s' bad error (%d '%s')", s, err.pos, err.msg);
    }
  }
  /* deep nesting is refused, not a stack overflow */
  char deep[4096];
  memset(deep, '(', 3000);
  strcpy(deep + 3000, "a=1");
  expr_error err;
  expr_node *n = expr_parse(deep, &err);
  TU_CHECK(!n && strstr(err.msg, "nested deeper"), "deep nesting refused: %s", err.msg);
  /* the limit is what the message says: 64 parentheses pass, 65 do not */
  for (int depth = 64; depth <= 65; depth++) {
    char nest[200];
    memset(nest, '(', (size_t)depth);
    strcpy(nest + depth, "a=1");
    memset(nest + depth + 3, ')', (size_t)depth);
    nest[2 * depth + 3] = 0;
    n = expr_parse(nest, &err);
    TU_CHECK((n != NULL) == (depth == 64), "%d nested parentheses: %s", depth, n ? "parsed" : err.msg);
    if (!n) TU_CHECK(strstr(err.msg, "deeper than 64"), "65 levels: %s", err.msg);
    expr_free(n);
  }
  /* a non-ASCII character is shown whole, never one byte of its UTF-8 */
  n = expr_parse("color=r\xc3\xa9" "d", &err);
  TU_CHECK(!n && strstr(err.msg, "found '\xc3\xa9'"), "non-ASCII: %s", err.msg);
  n = expr_parse("color=red \x01", &err);
  TU_CHECK(!n && strstr(err.msg, "found '\\x01'"), "control byte: %s", err.msg);
  printf("  fuzz: %d mutants, %d parsed (and round-tripped), %d refused with a positioned error\n",
         iters, parsed, failed);
}

int main(void) {
  check_shapes();
  check_round_trips();
  check_bad_inputs();
  fuzz();
  return tu_finish("test_expr_parse");
}
