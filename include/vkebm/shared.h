/* shared.h: definitions compiled by both C and GLSL (glslc defines VULKAN).
 *
 * Owns: the counter-based random number generator used for Langevin noise, chain
 * initialisation and scene sampling, and the macros that let one push-constant struct
 * definition serve the host and the shader.
 *
 * Rules: 32-bit fields only (u32, i32, f32); every push-constant struct <= 128 bytes (the
 * Vulkan minimum for maxPushConstantsSize, which lavapipe has), checked at compile time in C.
 *
 * Push constants: a shader selects its struct by defining VKEBM_PC_<NAME> before including the
 * header that declares it, and the block instance is called `pc`:
 *
 *     VKEBM_PUSH_BEGIN(conv3x3, CONV3X3)      // C: typedef struct {..} vkebm_pc_conv3x3;
 *       u32 batch; u32 cin; ...               // GLSL: layout(push_constant) uniform ..{..} pc;
 *     VKEBM_PUSH_END(conv3x3, CONV3X3)
 *
 * and wraps each struct in `#if !defined(VULKAN) || defined(VKEBM_PC_CONV3X3)`, since a GLSL
 * stage may declare one push-constant block only.
 */
#ifndef VKEBM_SHARED_H
#define VKEBM_SHARED_H

#ifdef VULKAN
#define u32 uint
#define i32 int
#define f32 float
#define VKEBM_FN
#define VKEBM_F32(x) float(x)
#define VKEBM_SQRT sqrt
#define VKEBM_LOG log
#define VKEBM_COS cos
#else
#include <math.h>
#include <stdint.h>
typedef uint32_t u32;
typedef int32_t i32;
typedef float f32;
#define VKEBM_FN static inline
#define VKEBM_F32(x) ((f32)(x))
#define VKEBM_SQRT sqrtf
#define VKEBM_LOG logf
#define VKEBM_COS cosf
#endif

/* ---- counter-based RNG -------------------------------------------------------------------
 * rng_u32(seed, step, chain, index) is a pure function: no state, so the same counters give the
 * same bits on the CPU and on any GPU, and a run is a function of its seed. The mixer is
 * Chris Wellons' "lowbias32" (an integer hash with very low avalanche bias), chained over the
 * four counters. `stream` values separate independent uses (noise vs. init vs. accept/reject). */
VKEBM_FN u32 vkebm_hash32(u32 x) {
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

VKEBM_FN u32 vkebm_rng_u32(u32 seed, u32 step, u32 chain, u32 index) {
  u32 h = vkebm_hash32(seed ^ 0x9e3779b9u);
  h = vkebm_hash32(h ^ step);
  h = vkebm_hash32(h + chain * 0x85ebca6bu);
  return vkebm_hash32(h ^ (index * 0xc2b2ae35u + 0x27d4eb2fu));
}

/* Uniform in (0, 1): 24 random bits, centred in their bin, never exactly 0 or 1. */
VKEBM_FN f32 vkebm_u32_to_unit(u32 bits) {
  return (VKEBM_F32(bits >> 8u) + 0.5f) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller from two uniforms of the same counters (index*2, index*2+1).
 * The uniforms are bit-identical across C and GLSL; the transcendental functions may differ
 * in the last ulps between libm and the device, so CPU twins compare normals with a tolerance. */
VKEBM_FN f32 vkebm_rng_normal(u32 seed, u32 step, u32 chain, u32 index) {
  f32 u1 = vkebm_u32_to_unit(vkebm_rng_u32(seed, step, chain, index * 2u));
  f32 u2 = vkebm_u32_to_unit(vkebm_rng_u32(seed, step, chain, index * 2u + 1u));
  return VKEBM_SQRT(-2.0f * VKEBM_LOG(u1)) * VKEBM_COS(6.28318530717958647692f * u2);
}

VKEBM_FN f32 vkebm_rng_uniform(u32 seed, u32 step, u32 chain, u32 index) {
  return vkebm_u32_to_unit(vkebm_rng_u32(seed, step, chain, index));
}

/* ---- push-constant structs --------------------------------------------------------------- */
#ifdef VULKAN
#define VKEBM_PUSH_BEGIN(name, NAME) layout(push_constant) uniform vkebm_pc_##name {
#define VKEBM_PUSH_END(name, NAME) } pc;
#else
#define VKEBM_PUSH_BEGIN(name, NAME) typedef struct vkebm_pc_##name {
#define VKEBM_PUSH_END(name, NAME)                                                          \
  } vkebm_pc_##name;                                                                        \
  _Static_assert(sizeof(vkebm_pc_##name) <= 128, "push constants over 128 bytes: " #name); \
  _Static_assert(sizeof(vkebm_pc_##name) % 4 == 0, "push constants: 32-bit fields only");
#endif

#endif /* VKEBM_SHARED_H */
