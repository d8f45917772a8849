/* cpu_conv_direct.c: direct 3x3 convolutions for small channel counts (forward, input gradient,
 * weight gradient), register-tiled and vectorised, for the cpu backend.
 *
 * Owns: the padded-plane layout, the weight packing, the per-ISA kernels (cpu_conv_kernels.h
 * compiled for AVX-512, AVX2+FMA and portable vector code, picked once from cpuid), and the
 * rule choosing between this path and im2col + BLAS (cpu_conv_path).
 *
 * Why: at 16-64 channels the im2col GEMMs are thin (K = 9*Ci = 144..576, M = Co = 16..64) and
 * im2col writes and re-reads 9 copies of the input; the measured result was 15-35 % of the FMA
 * peak (docs/bench-notes.md, section 9). A direct convolution reads each input once per tile
 * and keeps a tile of outputs in registers.
 *
 * Layout. Each input channel becomes one plane xp[c][S] holding the whole batch: pixel (b,h,w)
 * at q = b*Ps + h*Wp + w with Wp = W+1 and Ps = (H+1)*Wp, after an origin of Wp+1 zeros.
 * Column W of every row and row H of every image are zero: they are the right/left padding of
 * neighbouring rows and the bottom/top padding of neighbouring images, shared. Output q's tap
 * (kh,kw) then reads xp[q + kh*Wp + kw] (from the origin): a 1-D correlation along q with 9
 * fixed offsets, vectorised along q for any W and batching small images into full vectors
 * (at 32x32, 94 % of the lanes compute real pixels; 16x16 89 %, 8x8 79 %, 4x4 64 %).
 *   forward:      y  = tile over (Co tile, q block), then the real pixels are copied out
 *   input grad:   dx = the same correlation over padded dy with w'[ci][co][k] = w[co][ci][8-k]
 *   weight grad:  dw[co][ci][k] += sum_q dyq[co][q] * xp[ci][q + tap_k], where dyq is padded dy
 *                 read from its first pixel (q = 0 at pixel (0,0,0)): zero at every non-pixel q.
 *
 * Threads (cpu_pool.h): padding splits planes; the forward/input-gradient kernels split the
 * (q block, channel tile) items into contiguous ranges; the weight gradient splits the
 * (channel tile, input channel) items. Every output element is computed by one thread in a
 * fixed order that does not depend on the split: the bits are the same for any thread count
 * (for a fixed ISA; the portable kernel does not fuse multiply-adds, AVX2/AVX-512 do).
 */
#include "cpu_ops.h"
#include "cpu_pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the kernels, once per ISA ------------------------------------------------------------- */

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_X86_CLONES 1
#else
#define CPU_X86_CLONES 0
#endif

#if CPU_X86_CLONES
#define KN(name) name##_avx512
#define KTARGET __attribute__((target("avx512f,fma")))
#define VL 16
/* 32 zmm registers: 8x3 = 24 accumulators + 3 pixel vectors (weights are broadcast from
 * memory); 4x6 for Co <= 4 (the input gradient of the stem: 3 channels). */
#define FWD_CT 8
#define FWD_PV 3
#define FWD_CT_NARROW 4
#define FWD_PV_NARROW 6
#define WG_CT 2
#include "cpu_conv_kernels.h"
#undef KN
#undef KTARGET
#undef VL
#undef FWD_CT
#undef FWD_PV
#undef FWD_CT_NARROW
#undef FWD_PV_NARROW
#undef WG_CT

#define KN(name) name##_avx2
#define KTARGET __attribute__((target("avx2,fma")))
#define VL 8
/* 16 ymm registers: 4x3 = 12 accumulators + 3 pixel vectors + 1 broadcast weight */
#define FWD_CT 4
#define FWD_PV 3
#define FWD_CT_NARROW 4
#define FWD_PV_NARROW 3
#define WG_CT 1
#include "cpu_conv_kernels.h"
#undef KN
#undef KTARGET
#undef VL
#undef FWD_CT
#undef FWD_PV
#undef FWD_CT_NARROW
#undef FWD_PV_NARROW
#undef WG_CT
#endif

/* Portable: 4-lane vectors (SSE2 on x86-64, NEON on arm64, scalar code elsewhere). */
#define KN(name) name##_portable
#define KTARGET
#define VL 4
#define FWD_CT 4
#define FWD_PV 2
#define FWD_CT_NARROW 4
#define FWD_PV_NARROW 2
#define WG_CT 1
#include "cpu_conv_kernels.h"
#undef KN
#undef KTARGET
#undef VL

/* One ISA's kernels and tile sizes. */
typedef void (*fwd_tile_fn)(float *out, size_t ldo, const float *xp, size_t S, const float *wpk,
                            int Ci, int Wp, size_t q0);
typedef void (*wgrad_tile_fn)(float *dw, int ldw, int nc, const float *dyq, const float *xc,
                              size_t S, int Wp, size_t Nq);
typedef struct conv_isa {
  const char *name;
  int vl;
  fwd_tile_fn fwd_wide, fwd_narrow;
  int ct_wide, pv_wide, ct_narrow, pv_narrow;
  wgrad_tile_fn wgrad;
  int wg_ct;
} conv_isa;

static const conv_isa isa_portable = {"portable", 4, fwd_tile_wide_portable, fwd_tile_wide_portable,
                                      4, 2, 4, 2, wgrad_tile_portable, 1};
#if CPU_X86_CLONES
static const conv_isa isa_avx512 = {"avx512", 16, fwd_tile_wide_avx512, fwd_tile_narrow_avx512,
                                    8, 3, 4, 6, wgrad_tile_avx512, 2};
static const conv_isa isa_avx2 = {"avx2", 8, fwd_tile_wide_avx2, fwd_tile_wide_avx2, 4, 3, 4, 3,
                                  wgrad_tile_avx2, 1};
#endif

/* The widest ISA this CPU runs, or the one cpu_conv_set_isa forced. */
static const conv_isa *g_isa;

static const conv_isa *isa_best(void) {
#if CPU_X86_CLONES
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return &isa_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &isa_avx2;
#endif
  return &isa_portable;
}

static const conv_isa *isa(void) {
  if (!g_isa) g_isa = isa_best();
  return g_isa;
}

int cpu_conv_set_isa(const char *name) {
  const conv_isa *best = isa_best();
  if (!name || !*name) {
    g_isa = best;
    return 0;
  }
  if (!strcmp(name, "portable")) {
    g_isa = &isa_portable;
    return 0;
  }
#if CPU_X86_CLONES
  if (!strcmp(name, "avx2") && best != &isa_portable) {
    g_isa = &isa_avx2;
    return 0;
  }
  if (!strcmp(name, "avx512") && best == &isa_avx512) {
    g_isa = &isa_avx512;
    return 0;
  }
#endif
  return -1;
}

const char *cpu_conv_isa_name(void) { return isa()->name; }

/* ---- the choice between direct and im2col + BLAS ---------------------------------------- */

/* VKEBM_CONV=direct|blas forces one path (measurements, tests); otherwise the rule below. */
static int g_force = -1; /* -1 unset, 0 rule, 1 direct, 2 blas */

int cpu_conv_force(const char *path) {
  if (!path || !*path || !strcmp(path, "auto")) g_force = 0;
  else if (!strcmp(path, "direct")) g_force = 1;
  else if (!strcmp(path, "blas")) g_force = 2;
  else return -1;
  return 0;
}

int cpu_conv_use_direct(int dir, int Ci, int Co, int H, int W) {
  if (g_force < 0) {
    g_force = 0;
    const char *env = getenv("VKEBM_CONV");
    if (env) cpu_conv_force(env);
  }
  if (g_force) return g_force == 1;
  /* Measured (docs/bench-notes.md, section 9; B16, 2 threads, GFLOP/s direct vs BLAS):
   *   forward and input gradient: direct wins at every size up to 64 channels (16->16 32x32
   *   124 vs 55; 64->64 32x32 269 vs 142; 8x8 153 vs 136) and at 128 channels from 8x8 up
   *   (200 vs 153), and loses at 128 channels 4x4 (100 vs 135), where 36 % of its lanes pad;
   *   weight gradient (a reduction over every pixel, 2x9 accumulators): direct wins only up
   *   to 16 channels (16->16 32x32 61 vs 52, 8x8 41 vs 34) and loses from 32 (32->32 8x8
   *   48 vs 52, 64->64 32x32 119 vs 132). */
  const int cmax = Ci > Co ? Ci : Co;
  if (dir == CPU_CONV_BACKWARD_WEIGHT) return cmax <= 16;
  return cmax <= 64 || (cmax <= 128 && H * W >= 64);
}

const char *cpu_conv_path_name(int dir, int Ci, int Co, int H, int W) {
  if (!cpu_conv_use_direct(dir, Ci, Co, H, W)) return "im2col+BLAS";
  static char names[3][32];
  const char *isa_name = isa()->name;
  const int i = !strcmp(isa_name, "avx512") ? 0 : !strcmp(isa_name, "avx2") ? 1 : 2;
  snprintf(names[i], sizeof names[i], "direct-%s", isa_name);
  return names[i];
}

/* ---- padding -------------------------------------------------------------------------------- */

/* dst[0..n) = src[0..n), rows of an image (n <= a few hundred): 8-float pieces the compiler
 * turns into single vector moves, instead of a memcpy call per row. */
static inline void copy_row(float *restrict dst, const float *restrict src, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) memcpy(dst + i, src + i, 8 * sizeof(float));
  for (; i < n; i++) dst[i] = src[i];
}

typedef struct conv_geom {
  int B, H, W, Wp;
  size_t Ps, N, S; /* image stride, q range (B*Ps), plane stride */
  size_t origin;   /* Wp + 1: floats before pixel (0,0,0) in a plane */
} conv_geom;

static conv_geom geom(int B, int H, int W, int blk) {
  conv_geom g = {.B = B, .H = H, .W = W, .Wp = W + 1};
  g.Ps = (size_t)(H + 1) * g.Wp;
  g.N = (size_t)B * g.Ps;
  g.origin = (size_t)g.Wp + 1;
  /* reads reach q < round_up(N, blk) plus the largest tap 2*Wp + 2, from the origin */
  const size_t need = (g.N + blk - 1) / blk * blk + 2 * (size_t)g.Wp + 2;
  g.S = (need + 15) / 16 * 16;
  return g;
}

/* plane[c] <- x[b, c0 + c, :, :] for every image b, zeros everywhere else */
static void pad_planes(float *xp, const float *x, const conv_geom *g, int C, int c0, int c1) {
  const size_t HW = (size_t)g->H * g->W;
  for (int c = c0; c < c1; c++) {
    float *pl = xp + (size_t)c * g->S;
    memset(pl, 0, g->origin * sizeof(float));
    float *dst = pl + g->origin;
    for (int b = 0; b < g->B; b++) {
      const float *src = x + ((size_t)b * C + c) * HW;
      for (int h = 0; h < g->H; h++, dst += g->Wp, src += g->W) {
        copy_row(dst, src, g->W);
        dst[g->W] = 0.0f;
      }
      memset(dst, 0, (size_t)g->Wp * sizeof(float)); /* row H */
      dst += g->Wp;
    }
    memset(dst, 0, (g->S - (size_t)(dst - pl)) * sizeof(float));
  }
}

/* ---- jobs ----------------------------------------------------------------------------------- */

typedef struct direct_job {
  const conv_isa *k;
  conv_geom g;
  /* padding: src [B, Cs, H, W] into planes (Cs planes, Cz more zero planes) */
  const float *src;
  int Cs, Cz;
  float *planes;
  /* correlation (forward and input gradient): out[B, Co, H, W] from planes with Ci channels */
  const float *wpk;
  float *out, *yq; /* yq: output planes [Co rounded up to ct][Sy] */
  size_t Sy;
  int Ci, Co, ct, pv, blk;
  fwd_tile_fn tile;
  /* weight gradient */
  const float *dyq_planes, *x_planes;
  float *dw;
} direct_job;

static void pad_part(void *arg, int t, int T) {
  const direct_job *j = arg;
  const int C = j->Cs + j->Cz;
  const int c0 = (int)((long long)C * t / T), c1 = (int)((long long)C * (t + 1) / T);
  const int r1 = c1 < j->Cs ? c1 : j->Cs;
  if (c0 < r1) pad_planes(j->planes, j->src, &j->g, j->Cs, c0, r1);
  for (int c = c0 > j->Cs ? c0 : j->Cs; c < c1; c++)
    memset(j->planes + (size_t)c * j->g.S, 0, j->g.S * sizeof(float));
}

/* Kernel: thread t takes a contiguous range of the (q block, channel tile) items and writes
 * the output planes yq[co][q] (all q, pixels or not). */
static void correlate_part(void *arg, int t, int T) {
  const direct_job *j = arg;
  const size_t nblocks = (j->g.N + j->blk - 1) / j->blk;
  const int ntiles = (j->Co + j->ct - 1) / j->ct;
  const size_t items = nblocks * (size_t)ntiles;
  const size_t i0 = items * t / T, i1 = items * (t + 1) / T;
  for (size_t i = i0; i < i1; i++) {
    const size_t q0 = (i / ntiles) * j->blk;
    const int tile = (int)(i % ntiles);
    j->tile(j->yq + (size_t)tile * j->ct * j->Sy + q0, j->Sy, j->planes, j->g.S,
            j->wpk + (size_t)tile * j->Ci * 9 * j->ct, j->Ci, j->g.Wp, q0);
  }
}

/* out[b, co, h, :] <- yq[co][b*Ps + h*Wp + :] for the real pixels; thread t copies channels
 * [c0, c1). A pass of its own (not a per-tile copy, which stalls on store forwarding). */
static void unpad_part(void *arg, int t, int T) {
  const direct_job *j = arg;
  const conv_geom *g = &j->g;
  const size_t HW = (size_t)g->H * g->W;
  const int c0 = (int)((long long)j->Co * t / T), c1 = (int)((long long)j->Co * (t + 1) / T);
  for (int co = c0; co < c1; co++)
    for (int b = 0; b < g->B; b++) {
      const float *restrict src = j->yq + (size_t)co * j->Sy + (size_t)b * g->Ps;
      float *restrict dst = j->out + ((size_t)b * j->Co + co) * HW;
      for (int h = 0; h < g->H; h++, src += g->Wp, dst += g->W) copy_row(dst, src, g->W);
    }
}

static void wgrad_part(void *arg, int t, int T) {
  const direct_job *j = arg;
  const int wct = j->k->wg_ct, ntiles = (j->Co + wct - 1) / wct;
  const size_t items = (size_t)ntiles * j->Ci;
  const size_t i0 = items * t / T, i1 = items * (t + 1) / T;
  const size_t Nq = (j->g.N + j->k->vl - 1) / j->k->vl * j->k->vl;
  for (size_t i = i0; i < i1; i++) {
    const int ci = (int)(i / ntiles), co0 = (int)(i % ntiles) * wct;
    const int nc = j->Co - co0 < wct ? j->Co - co0 : wct;
    j->k->wgrad(j->dw + ((size_t)co0 * j->Ci + ci) * 9, j->Ci * 9, nc,
                j->dyq_planes + (size_t)co0 * j->g.S + j->g.origin,
                j->x_planes + (size_t)ci * j->g.S, j->g.S, j->g.Wp, Nq);
  }
}

static void run(cpu_pool_fn fn, direct_job *j, double flops) {
  /* one thread below ~1 MFLOP: waking a worker costs more */
  if (flops < 1e6 || cpu_threads() <= 1)
    fn(j, 0, 1);
  else
    cpu_parallel(fn, j);
}

/* wpk[tile][ci][k][ct] = w(co = tile*ct + c, ci, k) for the correlation over Ci input planes,
 * zero past Co. transpose_flip: w is [Ci_out = Co][Co_in = Ci][9] of the forward conv read as
 * w'[co][ci][k] = w[ci][co][8 - k] (the input gradient). */
static void pack_weights(float *wpk, const float *w, int Ci, int Co, int ct, int transpose_flip) {
  const int ntiles = (Co + ct - 1) / ct;
  for (int tile = 0; tile < ntiles; tile++)
    for (int ci = 0; ci < Ci; ci++)
      for (int k = 0; k < 9; k++)
        for (int c = 0; c < ct; c++) {
          const int co = tile * ct + c;
          float v = 0.0f;
          if (co < Co)
            v = transpose_flip ? w[((size_t)ci * Co + co) * 9 + (8 - k)]
                               : w[((size_t)co * Ci + ci) * 9 + k];
          wpk[(((size_t)tile * Ci + ci) * 9 + k) * ct + c] = v;
        }
}

/* out[B, Co, H, W] = correlation of src[B, Ci, H, W] with w (forward) or the input gradient
 * (transpose_flip: src = dy with Ci = the conv's Co, out = dx with Co = the conv's Ci). */
static int correlate(cpu_ctx *ctx, float *out, const float *src, const float *w, int B, int Ci,
                     int Co, int H, int W, int transpose_flip) {
  const conv_isa *k = isa();
  direct_job j = {.k = k, .src = src, .Cs = Ci, .out = out, .Ci = Ci, .Co = Co};
  const int narrow = Co <= k->ct_narrow && k->ct_narrow < k->ct_wide;
  j.ct = narrow ? k->ct_narrow : k->ct_wide;
  j.pv = narrow ? k->pv_narrow : k->pv_wide;
  j.tile = narrow ? k->fwd_narrow : k->fwd_wide;
  j.blk = j.pv * k->vl;
  j.g = geom(B, H, W, j.blk);
  const int ntiles = (Co + j.ct - 1) / j.ct;
  const size_t nwpk = (size_t)ntiles * Ci * 9 * j.ct;
  const size_t nplanes = (size_t)Ci * j.g.S;
  j.Sy = (j.g.N + j.blk - 1) / j.blk * j.blk;
  j.Sy = (j.Sy + 15) / 16 * 16;
  const size_t nyq = (size_t)ntiles * j.ct * j.Sy;
  if (cpu_ctx_reserve(ctx, nplanes + nyq + nwpk)) return -1;
  j.planes = ctx->scratch;
  j.yq = ctx->scratch + nplanes;
  float *wpk = j.yq + nyq;
  pack_weights(wpk, w, Ci, Co, j.ct, transpose_flip);
  j.wpk = wpk;
  const double flops = 2.0 * B * Ci * Co * 9.0 * H * W;
  run(pad_part, &j, flops);
  run(correlate_part, &j, flops);
  run(unpad_part, &j, flops);
  return 0;
}

int conv3x3_direct_forward(cpu_ctx *ctx, float *y, const float *x, const float *w, int B, int Ci,
                           int Co, int H, int W) {
  return correlate(ctx, y, x, w, B, Ci, Co, H, W, 0);
}

int conv3x3_direct_backward_input(cpu_ctx *ctx, float *dx, const float *dy, const float *w, int B,
                                  int Ci, int Co, int H, int W) {
  return correlate(ctx, dx, dy, w, B, Co, Ci, H, W, 1);
}

int conv3x3_direct_backward_weight(cpu_ctx *ctx, float *dw, const float *dy, const float *x,
                                   int B, int Ci, int Co, int H, int W) {
  const conv_isa *k = isa();
  direct_job j = {.k = k, .Ci = Ci, .Co = Co, .dw = dw};
  j.g = geom(B, H, W, k->vl);
  /* dy planes rounded up to whole tiles (zero planes), so a tile's loads stay in the buffer */
  const int Cz = (Co + k->wg_ct - 1) / k->wg_ct * k->wg_ct - Co;
  const size_t ndy = (size_t)(Co + Cz) * j.g.S, nx = (size_t)Ci * j.g.S;
  if (cpu_ctx_reserve(ctx, ndy + nx)) return -1;
  float *dyp = ctx->scratch, *xp = ctx->scratch + ndy;
  const double flops = 2.0 * B * Ci * Co * 9.0 * H * W;
  j.src = dy, j.Cs = Co, j.Cz = Cz, j.planes = dyp;
  run(pad_part, &j, flops);
  j.src = x, j.Cs = Ci, j.Cz = 0, j.planes = xp;
  run(pad_part, &j, flops);
  j.dyq_planes = dyp;
  j.x_planes = xp;
  run(wgrad_part, &j, flops);
  return 0;
}
