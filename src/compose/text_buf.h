/* text_buf.h: the bounded, snprintf-style text builder behind the expression printer (expr.c)
 * and the composition's explanation (compose.c). Private to src/compose. */
#ifndef VKEBM_COMPOSE_TEXT_BUF_H
#define VKEBM_COMPOSE_TEXT_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Writes into out[len] and counts in n every byte it would have written, so the caller learns
 * the full length even when the text was cut (as snprintf does). */
typedef struct sbuf {
  char *out;
  size_t len, n;
} sbuf;

static inline void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = b->n < b->len ? b->len - b->n : 0;
  int k = vsnprintf(room ? b->out + b->n : NULL, room, fmt, ap);
  va_end(ap);
  if (k > 0) b->n += (size_t)k;
}

#endif
