/* cpu_swish_kernels.h: swish forward and backward on float ranges, written once with GCC vector
 * extensions and included by cpu_ops.c once per instruction set. Include-only.
 *
 * Before including, define SN(name) (the name with an ISA suffix), STARGET (a function
 * attribute or nothing) and SLANES (16, 8). Lanes are independent, so the result for an element
 * does not depend on its position: the scalar tail runs the same arithmetic in lane 0.
 *
 * exp(x): Cephes-style: x = n ln2 + r, |r| <= ln2/2 (n rounded by the 1.5*2^23 trick, ln2 split
 * in two so n ln2 is exact), e^r by a degree-6 polynomial (relative error < 2e-7 there), times
 * 2^n built in the exponent bits. x is clamped to [-87.3, 88.3] so 2^n stays a normal float:
 * below, e^x comes out 1.2e-38 instead of smaller (swish's absolute error there < 1e-36).
 * Vectors pass by pointer: wide vector arguments would change the baseline ABI.
 */
typedef float SN(vf) __attribute__((vector_size(SLANES * 4)));
typedef int32_t SN(vi) __attribute__((vector_size(SLANES * 4)));

STARGET static inline void SN(vexp)(SN(vf) * v) {
  SN(vf) x = *v;
  const SN(vi) below = x < -87.3f, above = x > 88.3f;
  x = (SN(vf))(((SN(vi))x & ~below) | ((SN(vi))(x * 0.0f - 87.3f) & below));
  x = (SN(vf))(((SN(vi))x & ~above) | ((SN(vi))(x * 0.0f + 88.3f) & above));
  const SN(vf) n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  SN(vf) r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  SN(vf) p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const SN(vf) er = p * r * r + r + 1.0f;
  const SN(vi) bits = (__builtin_convertvector(n, SN(vi)) + 127) << 23;
  *v = er * (SN(vf))bits;
}

/* v <- v * sigmoid(v) */
STARGET static inline void SN(vswish)(SN(vf) * v) {
  SN(vf) e = -*v;
  SN(vexp)(&e);
  *v = *v / (1.0f + e);
}

/* g <- g * (s + x s (1 - s)), s = sigmoid(x) */
STARGET static inline void SN(vswish_grad)(SN(vf) * g, const SN(vf) * x) {
  SN(vf) e = -*x;
  SN(vexp)(&e);
  const SN(vf) s = 1.0f / (1.0f + e);
  *g = *g * (s + *x * s * (1.0f - s));
}

STARGET static void SN(swish_forward_range)(float *y, const float *x, size_t n) {
  size_t i = 0;
  for (; i + 2 * SLANES <= n; i += 2 * SLANES) { /* two independent vectors: a long chain */
    SN(vf) v[2];
    memcpy(v, x + i, sizeof v);
    SN(vswish)(&v[0]), SN(vswish)(&v[1]);
    memcpy(y + i, v, sizeof v);
  }
  for (; i + SLANES <= n; i += SLANES) {
    SN(vf) v;
    memcpy(&v, x + i, sizeof v);
    SN(vswish)(&v);
    memcpy(y + i, &v, sizeof v);
  }
  for (; i < n; i++) {
    SN(vf) v = {x[i]};
    SN(vswish)(&v);
    y[i] = v[0];
  }
}

STARGET static void SN(swish_backward_range)(float *dx, const float *dy, const float *x,
                                             size_t n) {
  size_t i = 0;
  for (; i + 2 * SLANES <= n; i += 2 * SLANES) {
    SN(vf) g[2], v[2];
    memcpy(g, dy + i, sizeof g);
    memcpy(v, x + i, sizeof v);
    SN(vswish_grad)(&g[0], &v[0]), SN(vswish_grad)(&g[1], &v[1]);
    memcpy(dx + i, g, sizeof g);
  }
  for (; i + SLANES <= n; i += SLANES) {
    SN(vf) g, v;
    memcpy(&g, dy + i, sizeof g);
    memcpy(&v, x + i, sizeof v);
    SN(vswish_grad)(&g, &v);
    memcpy(dx + i, &g, sizeof g);
  }
  for (; i < n; i++) {
    SN(vf) g = {dy[i]}, v = {x[i]};
    SN(vswish_grad)(&g, &v);
    dx[i] = g[0];
  }
}
