/* cpu_pool.c: see cpu_pool.h. A generation counter under one mutex: run() bumps it and
 * broadcasts; each worker runs the job once per generation and the last one to finish signals. */
#include "cpu_pool.h"

#include <pthread.h>
#include <stdlib.h>

struct cpu_pool {
  pthread_mutex_t mu;
  pthread_cond_t start, done;
  int threads;          /* T, the caller included */
  int started_workers;  /* workers actually running (cleanup on a failed create) */
  pthread_t *tids;
  unsigned long generation;
  int pending; /* workers still busy with this generation */
  int quit;
  cpu_pool_fn fn;
  void *arg;
};

typedef struct worker_arg {
  cpu_pool *pool;
  int t;
} worker_arg;

static void *worker_main(void *p) {
  worker_arg *wa = p;
  cpu_pool *pool = wa->pool;
  const int t = wa->t;
  free(wa);
  pthread_mutex_lock(&pool->mu);
  unsigned long seen = 0; /* generation at creation: no run can start before create returns */
  for (;;) {
    while (pool->generation == seen && !pool->quit) pthread_cond_wait(&pool->start, &pool->mu);
    if (pool->quit) break;
    seen = pool->generation;
    cpu_pool_fn fn = pool->fn;
    void *arg = pool->arg;
    pthread_mutex_unlock(&pool->mu);
    fn(arg, t, pool->threads);
    pthread_mutex_lock(&pool->mu);
    if (--pool->pending == 0) pthread_cond_signal(&pool->done);
  }
  pthread_mutex_unlock(&pool->mu);
  return NULL;
}

cpu_pool *cpu_pool_create(int threads) {
  if (threads < 1) threads = 1;
  cpu_pool *pool = calloc(1, sizeof *pool);
  if (!pool) return NULL;
  pool->threads = threads;
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->start, NULL);
  pthread_cond_init(&pool->done, NULL);
  pool->tids = calloc((size_t)threads, sizeof *pool->tids);
  if (!pool->tids) {
    cpu_pool_destroy(pool);
    return NULL;
  }
  for (int t = 1; t < threads; t++) {
    worker_arg *wa = malloc(sizeof *wa);
    if (!wa) break;
    wa->pool = pool;
    wa->t = t;
    if (pthread_create(&pool->tids[t], NULL, worker_main, wa) != 0) {
      free(wa);
      break;
    }
    pool->started_workers++;
  }
  if (pool->started_workers != threads - 1) {
    cpu_pool_destroy(pool);
    return NULL;
  }
  return pool;
}

void cpu_pool_destroy(cpu_pool *pool) {
  if (!pool) return;
  pthread_mutex_lock(&pool->mu);
  pool->quit = 1;
  pthread_cond_broadcast(&pool->start);
  pthread_mutex_unlock(&pool->mu);
  for (int t = 1; t <= pool->started_workers; t++) pthread_join(pool->tids[t], NULL);
  pthread_cond_destroy(&pool->start);
  pthread_cond_destroy(&pool->done);
  pthread_mutex_destroy(&pool->mu);
  free(pool->tids);
  free(pool);
}

int cpu_pool_threads(const cpu_pool *pool) { return pool ? pool->threads : 1; }

void cpu_pool_run(cpu_pool *pool, cpu_pool_fn fn, void *arg) {
  if (!pool || pool->threads == 1) {
    fn(arg, 0, 1);
    return;
  }
  pthread_mutex_lock(&pool->mu);
  pool->fn = fn;
  pool->arg = arg;
  pool->pending = pool->threads - 1;
  pool->generation++;
  pthread_cond_broadcast(&pool->start);
  pthread_mutex_unlock(&pool->mu);
  fn(arg, 0, pool->threads);
  pthread_mutex_lock(&pool->mu);
  while (pool->pending > 0) pthread_cond_wait(&pool->done, &pool->mu);
  pthread_mutex_unlock(&pool->mu);
}
