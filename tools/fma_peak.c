/* fma_peak.c: the machine's single-precision FMA peak, the denominator of the "share of the
 * FMA peak" figures in docs/bench-notes.md. Not a test.
 *
 * Each thread runs 12 independent chains of 16-lane (AVX-512), 8-lane (AVX2) FMAs, enough to
 * cover the FMA latency (4 cycles) times the FMA ports (2); 2 FLOPs per lane per FMA.
 * Usage: fma_peak [threads] [seconds]   (defaults: all cores, 1). Prints GFLOP/s per ISA.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define CHAINS 12
/* 12 named accumulators (an array of vectors can stay in memory at -O2) */
#define DEFINE_LOOP(NAME, TARGET, LANES)                                                        \
  __attribute__((target(TARGET), noinline)) static float NAME(long iters) {                   \
    typedef float v __attribute__((vector_size(LANES * 4)));                                   \
    const v a = (v){0} + 0.999999f, b = (v){0} + 1e-7f;                                        \
    v c0 = a, c1 = a + 1, c2 = a + 2, c3 = a + 3, c4 = a + 4, c5 = a + 5, c6 = a + 6,          \
      c7 = a + 7, c8 = a + 8, c9 = a + 9, c10 = a + 10, c11 = a + 11;                          \
    for (long i = 0; i < iters; i++) {                                                         \
      c0 = c0 * a + b, c1 = c1 * a + b, c2 = c2 * a + b, c3 = c3 * a + b;                      \
      c4 = c4 * a + b, c5 = c5 * a + b, c6 = c6 * a + b, c7 = c7 * a + b;                      \
      c8 = c8 * a + b, c9 = c9 * a + b, c10 = c10 * a + b, c11 = c11 * a + b;                  \
      __asm__("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));               \
      __asm__("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));             \
    }                                                                                          \
    const v s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)); \
    return s[0];                                                                               \
  }
DEFINE_LOOP(loop_avx512, "avx512f,fma", 16)
DEFINE_LOOP(loop_avx2, "avx2,fma", 8)

typedef struct job {
  int isa;
  long iters;
  float sink;
} job;

static void *worker(void *p) {
  job *j = p;
  j->sink = j->isa == 512 ? loop_avx512(j->iters) : loop_avx2(j->iters);
  return NULL;
}

static double run(int isa, int threads, long iters) {
  pthread_t th[64];
  job jobs[64];
  double t0 = now();
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){isa, iters, 0};
    pthread_create(&th[t], NULL, worker, &jobs[t]);
  }
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  const double dt = now() - t0, lanes = isa == 512 ? 16 : 8;
  return 2.0 * lanes * CHAINS * (double)iters * threads / dt * 1e-9;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  double seconds = argc > 2 ? atof(argv[2]) : 1.0;
  if (threads < 1 || threads > 64) threads = 1;
  __builtin_cpu_init();
  for (int isa = 512; isa >= 256; isa -= 256) {
    if (isa == 512 && !__builtin_cpu_supports("avx512f")) continue;
    if (isa == 256 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) continue;
    long iters = 1000000;
    double g = run(isa, threads, iters), t = 2.0 * (isa / 32) * CHAINS * (double)iters * threads / g * 1e-9;
    iters = (long)(iters * seconds / (t > 1e-6 ? t : 1e-6));
    double best = 0;
    for (int r = 0; r < 5; r++) {
      g = run(isa, threads, iters);
      if (g > best) best = g;
    }
    printf("%s FMA peak, %d threads, 12 chains: %.1f GFLOP/s (best of 5)\n",
           isa == 512 ? "AVX-512" : "AVX2", threads, best);
  }
  return 0;
}
