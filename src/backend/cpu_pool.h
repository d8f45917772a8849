/* cpu_pool.h: a fork-join pool of blocking worker threads for the cpu backend.
 *
 * Owns: the worker threads. cpu_pool_run(fn, arg) runs fn(arg, t, T) once on every one of the
 * T threads (the caller is t = 0) and returns when all have finished. Workers sleep on a
 * condition variable between runs instead of spinning: on a machine shared with other
 * processes (CI, lavapipe tests next door), a spinning OpenMP/BLIS team whose partner thread is
 * descheduled stalls for whole scheduler slices (measured 20-40x slower convs at load 10);
 * blocking costs a few microseconds per run instead. Work is split statically by t, so which
 * thread computes what is fixed, and results are bitwise repeatable.
 */
#ifndef VKEBM_CPU_POOL_H
#define VKEBM_CPU_POOL_H

typedef struct cpu_pool cpu_pool;
typedef void (*cpu_pool_fn)(void *arg, int t, int T);

/* A pool of `threads` threads in all (threads - 1 workers). NULL on failure. */
cpu_pool *cpu_pool_create(int threads);
void cpu_pool_destroy(cpu_pool *pool);
int cpu_pool_threads(const cpu_pool *pool);
/* fn(arg, t, T) for t = 0..T-1, concurrently; pool NULL or T = 1 runs fn(arg, 0, 1) inline.
 * Not reentrant: one run at a time (the cpu backend issues ops from one host thread). */
void cpu_pool_run(cpu_pool *pool, cpu_pool_fn fn, void *arg);

#endif
