/* cpu_conv_kernels.h: the register-tiled inner loops of the direct 3x3 convolutions
 * (cpu_conv_direct.c), written once with GCC vector extensions and included once per
 * instruction set. Include-only; not a header with a guard.
 *
 * Before including, define:
 *   KN(name)  the function name with the ISA suffix (name##_avx512, ...)
 *   KTARGET   the function attribute (__attribute__((target("avx512f,fma"))), or nothing)
 *   VL        float lanes per vector (16, 8, 4)
 *   FWD_CT, FWD_PV, FWD_CT_NARROW, FWD_PV_NARROW: the forward tiles (output channels x vectors
 *             of pixels), wide for Co > 4 and narrow for Co <= 4
 *   WG_CT     output channels per weight-gradient tile (WG_CT x 9 accumulators)
 *
 * Layout (cpu_conv_direct.c explains it): an input channel plane is xp[S] with pixel (b,h,w) at
 * q = b*Ps + h*Wp + w, Wp = W+1, Ps = (H+1)*Wp, zero in column W, row H and around; tap (kh,kw)
 * of output q reads xp[q + kh*Wp + kw] from the plane's origin (Wp+1 floats before pixel 0).
 * Vectors run along q, so every tap is one unaligned load, whatever W is.
 */

typedef float KN(vf) __attribute__((vector_size(VL * 4)));
typedef float KN(vfu) __attribute__((vector_size(VL * 4), aligned(4), may_alias));

#define KLOAD(p) (*(const KN(vfu) *)(p))
#define KSTORE(p, v) (*(KN(vfu) *)(p) = (v))

/* out[c*ldo + p*VL + l] = sum_{ci,kh,kw} wpk[ci][kh*3+kw][c] * xp[ci*S + q0 + p*VL + l + kh*Wp + kw]
 * for c < CT, p < PV: one tile of CT output channels x PV vectors of pixels, written into the
 * output planes (same q layout) at out = yq + co0*ldo + q0.
 * The sum runs in (ci, kh, kw) order for every output, so the bits do not depend on the tile. */
#define KN_FWD_TILE(NAME, CT, PV)                                                                    \
  KTARGET static void KN(NAME)(float *out, size_t ldo, const float *xp, size_t S, \
                                                const float *wpk, int Ci, int Wp, size_t q0) {  \
    KN(vf) acc[CT][PV];                                                                        \
    _Pragma("GCC unroll 16") for (int c = 0; c < CT; c++)                                      \
        _Pragma("GCC unroll 16") for (int p = 0; p < PV; p++) acc[c][p] = (KN(vf)){0};         \
    const size_t taps[9] = {0, 1, 2, (size_t)Wp, (size_t)Wp + 1, (size_t)Wp + 2,              \
                            2 * (size_t)Wp, 2 * (size_t)Wp + 1, 2 * (size_t)Wp + 2};           \
    for (int ci = 0; ci < Ci; ci++) {                                                          \
      const float *xc = xp + (size_t)ci * S + q0;                                              \
      const float *wc = wpk + (size_t)ci * 9 * CT;                                             \
      for (int k = 0; k < 9; k++) {                                                            \
        const float *xs = xc + taps[k];                                                        \
        KN(vf) xv[PV];                                                                         \
        _Pragma("GCC unroll 16") for (int p = 0; p < PV; p++) xv[p] = KLOAD(xs + p * VL);      \
        _Pragma("GCC unroll 16") for (int c = 0; c < CT; c++) {                                \
          const float wv = wc[k * CT + c];                                                     \
          _Pragma("GCC unroll 16") for (int p = 0; p < PV; p++) acc[c][p] += wv * xv[p];       \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
    _Pragma("GCC unroll 16") for (int c = 0; c < CT; c++)                                      \
        _Pragma("GCC unroll 16") for (int p = 0; p < PV; p++)                                  \
            KSTORE(out + (size_t)c * ldo + p * VL, acc[c][p]);                                 \
  }

KN_FWD_TILE(fwd_tile_wide, FWD_CT, FWD_PV)
#if FWD_CT != FWD_CT_NARROW || FWD_PV != FWD_PV_NARROW
KN_FWD_TILE(fwd_tile_narrow, FWD_CT_NARROW, FWD_PV_NARROW)
#endif

/* Lane sums in a fixed tree (halves added pairwise), so the result is one fixed function of
 * the lanes. */
KTARGET static inline float KN(hsum)(KN(vf) v) {
  float l[VL];
  memcpy(l, &v, sizeof l);
  for (int n = VL / 2; n >= 1; n /= 2)
    for (int i = 0; i < n; i++) l[i] += l[i + n];
  return l[0];
}

/* dw[c][ci*9 + k] += sum_{q < Nq} dyq[c*S + q] * xc[q + tap_k]   for c < WG_CT (only c < nc
 * are written; the loads of the others read valid zero-padded planes), Nq a multiple of VL.
 * dyq planes are zero wherever q is not a pixel, so only real pixels contribute. Lanes
 * accumulate over q in order, then hsum: a fixed order for every (co, ci, k). */
KTARGET static void KN(wgrad_tile)(float *dw, int ldw, int nc, const float *dyq, const float *xc,
                                   size_t S, int Wp, size_t Nq) {
  KN(vf) acc[WG_CT][9];
  _Pragma("GCC unroll 16") for (int c = 0; c < WG_CT; c++)
      _Pragma("GCC unroll 16") for (int k = 0; k < 9; k++) acc[c][k] = (KN(vf)){0};
  const size_t taps[9] = {0, 1, 2, (size_t)Wp, (size_t)Wp + 1, (size_t)Wp + 2,
                          2 * (size_t)Wp, 2 * (size_t)Wp + 1, 2 * (size_t)Wp + 2};
  for (size_t q = 0; q < Nq; q += VL) {
    KN(vf) d[WG_CT];
    _Pragma("GCC unroll 16") for (int c = 0; c < WG_CT; c++) d[c] = KLOAD(dyq + c * S + q);
    _Pragma("GCC unroll 16") for (int k = 0; k < 9; k++) {
      const KN(vf) xv = KLOAD(xc + q + taps[k]);
      _Pragma("GCC unroll 16") for (int c = 0; c < WG_CT; c++) acc[c][k] += d[c] * xv;
    }
  }
  for (int c = 0; c < nc; c++)
    for (int k = 0; k < 9; k++) dw[(size_t)c * ldw + k] += KN(hsum)(acc[c][k]);
}

#undef KLOAD
#undef KSTORE
#undef KN_FWD_TILE
