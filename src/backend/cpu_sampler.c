/* cpu_sampler.c: CPU twins of the sampler and composition ops (ops.def, "sampler ops",
 * "composition"), in plain C on host arrays. They are the reference the shaders/langevin_*.comp
 * and shaders/softmin_*.comp kernels are tested against, and the
 * cpu backend's vtable entries call them on its buffers. Reductions run in index order, so the
 * results are bitwise repeatable. */
#include <math.h>

#include "backend_impl.h"
#include "vkebm/shared.h"

/* e[n] = 0.5 sum_i prec[g,i] (x[r,i] - mu[g,i])^2,  x: [n,N], mu/prec: [G,N], g = r / R */
void quadratic_energy_cpu(float *e, const float *x, const float *mu, const float *prec, int n,
                              int N, int rows_per_group) {
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * N;
    const float *m = mu + (size_t)(r / rows_per_group) * N;
    const float *p = prec + (size_t)(r / rows_per_group) * N;
    float acc = 0.0f;
    for (int i = 0; i < N; i++) {
      float d = xr[i] - m[i];
      acc += p[i] * d * d;
    }
    e[r] = 0.5f * acc;
  }
}

/* dx[r,i] = dE[r] prec[g,i] (x[r,i] - mu[g,i]),  dx: [n,N] overwritten, dE: [n] */
void quadratic_energy_backward_cpu(float *dx, const float *dE, const float *x,
                                       const float *mu, const float *prec, int n, int N,
                                       int rows_per_group) {
  for (int r = 0; r < n; r++) {
    const float *m = mu + (size_t)(r / rows_per_group) * N;
    const float *p = prec + (size_t)(r / rows_per_group) * N;
    for (int i = 0; i < N; i++) {
      size_t k = (size_t)r * N + i;
      dx[k] = dE[r] * (p[i] * (x[k] - m[i]));
    }
  }
}

/* x[b,i] = clip(x - step_size grad + noise_std normal(seed, step, chain0 + b, i)),
 * x, grad: [B,N] */
void langevin_update_at_cpu(float *x, const float *grad, int B, int N, uint32_t chain0,
                            uint32_t seed, uint32_t step, float step_size, float noise_std,
                            float clip_lo, float clip_hi) {
  for (int b = 0; b < B; b++)
    for (int i = 0; i < N; i++) {
      size_t k = (size_t)b * N + i;
      float v = x[k];
      if (grad) v -= step_size * grad[k];
      if (noise_std != 0.0f)
        v += noise_std * vkebm_rng_normal(seed, step, chain0 + (u32)b, (u32)i);
      if (clip_lo < clip_hi) v = fminf(fmaxf(v, clip_lo), clip_hi);
      x[k] = v;
    }
}

/* x[b,i] = clip(x - step_size grad + noise_std normal(seed, step, b, i)),  x, grad: [B,N] */
void langevin_update_cpu(float *x, const float *grad, int B, int N, uint32_t seed,
                         uint32_t step, float step_size, float noise_std, float clip_lo,
                         float clip_hi) {
  langevin_update_at_cpu(x, grad, B, N, 0, seed, step, step_size, noise_std, clip_lo, clip_hi);
}

/* xp[b,i] = x - tau[b] grad + sqrt(2 tau[b]) normal(seed, step, b, i),  tau: [B] */
void mala_propose_cpu(float *xp, const float *x, const float *grad, const float *tau, int B,
                          int N, uint32_t seed, uint32_t step) {
  for (int b = 0; b < B; b++) {
    float t = tau[b], s = sqrtf(2.0f * t);
    for (int i = 0; i < N; i++) {
      size_t k = (size_t)b * N + i;
      xp[k] = x[k] - t * grad[k] + s * vkebm_rng_normal(seed, step, (u32)b, (u32)i);
    }
  }
}

/* out[b] = -sum_i (to - from + tau[b] grad_from)^2 / (4 tau[b]),  sum in index order */
void mala_log_q_cpu(float *out, const float *to, const float *from, const float *grad_from,
                        const float *tau, int B, int N) {
  for (int b = 0; b < B; b++) {
    float t = tau[b], acc = 0.0f;
    for (int i = 0; i < N; i++) {
      size_t k = (size_t)b * N + i;
      float d = to[k] - from[k] + t * grad_from[k];
      acc += d * d;
    }
    out[b] = -acc / (4.0f * t);
  }
}

/* x[b,:] = src[b,:] where mask[b] > 0.5 */
void chain_select_cpu(float *x, const float *src, const float *mask, int B, int N) {
  for (int b = 0; b < B; b++)
    if (mask[b] > 0.5f)
      for (int i = 0; i < N; i++) x[(size_t)b * N + i] = src[(size_t)b * N + i];
}

/* v[b] = -T log sum_k exp(-e[k,b]/T),  e: [K,B]; the largest -e/T subtracted first, k in order */
void softmin_forward_cpu(float *v, const float *e, int K, int B, float T) {
  for (int b = 0; b < B; b++) {
    float m = -INFINITY, s = 0.0f;
    for (int k = 0; k < K; k++) m = fmaxf(m, -e[(size_t)k * B + b] / T);
    for (int k = 0; k < K; k++) s += expf(-e[(size_t)k * B + b] / T - m);
    v[b] = -T * (m + logf(s));
  }
}

/* de[k,b] = alpha dv[b] softmax_k(-e[:,b]/T),  de, e: [K,B]  dv: [B] */
void softmin_backward_cpu(float *de, const float *dv, const float *e, int K, int B, float T,
                          float alpha) {
  for (int b = 0; b < B; b++) {
    float m = -INFINITY, s = 0.0f;
    for (int k = 0; k < K; k++) m = fmaxf(m, -e[(size_t)k * B + b] / T);
    for (int k = 0; k < K; k++) s += expf(-e[(size_t)k * B + b] / T - m);
    const float c = alpha * dv[b] / s;
    for (int k = 0; k < K; k++) {
      const size_t i = (size_t)k * B + b;
      de[i] = c * expf(-e[i] / T - m);
    }
  }
}
