/* test_cpu_pool.c: the cpu backend's fork-join pool (src/backend/cpu_pool.c): every run calls
 * the function exactly once per thread index with the right thread count, runs return only
 * after every thread finished, and pools of any size start and stop cleanly. */
#include <stdlib.h>

#include "backend/cpu_pool.h"
#include "testutil.h"

enum { MAXT = 5, RUNS = 3000 };

typedef struct counts {
  int calls[MAXT];
  int wrong_T;
  int expect_T;
  volatile int spin; /* some work, so threads overlap */
} counts;

static void count_call(void *arg, int t, int T) {
  counts *c = arg;
  if (T != c->expect_T || t < 0 || t >= T) {
    c->wrong_T++; /* only reached on a bug; the race on it then does not matter */
    return;
  }
  for (int i = 0; i < 200; i++) c->spin = i;
  c->calls[t]++; /* slot t belongs to thread t alone */
}

int main(void) {
  const int sizes[] = {1, 2, 3, MAXT};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    const int T = sizes[s];
    cpu_pool *pool = cpu_pool_create(T);
    TU_CHECK(pool != NULL, "pool of %d threads", T);
    if (!pool) continue;
    TU_CHECK(cpu_pool_threads(pool) == T, "cpu_pool_threads = %d, want %d",
             cpu_pool_threads(pool), T);
    counts c = {.expect_T = T};
    for (int r = 0; r < RUNS; r++) {
      cpu_pool_run(pool, count_call, &c);
      /* run() returned: every thread's call of this run has finished */
      for (int t = 0; t < T; t++)
        if (c.calls[t] != r + 1) {
          TU_CHECK(c.calls[t] == r + 1, "T=%d run %d: thread %d ran %d times", T, r, t,
                   c.calls[t]);
          r = RUNS;
          break;
        }
    }
    TU_CHECK(c.wrong_T == 0, "T=%d: %d calls with a wrong (t, T)", T, c.wrong_T);
    fprintf(stderr, "  pool of %d: %d runs, every thread once per run\n", T, RUNS);
    cpu_pool_destroy(pool);
  }
  /* NULL pool: runs inline as thread 0 of 1 */
  counts c = {.expect_T = 1};
  cpu_pool_run(NULL, count_call, &c);
  TU_CHECK(c.calls[0] == 1 && c.wrong_T == 0, "NULL pool runs fn(arg, 0, 1) inline");
  TU_CHECK(cpu_pool_threads(NULL) == 1, "NULL pool has 1 thread");
  return tu_finish("test_cpu_pool");
}
