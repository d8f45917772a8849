/* push.h: the push-constant struct of every kernel, shared by C and GLSL (see shared.h).
 * An internal contract between src/backend and the shaders beside it, not public API: C code
 * reaches it through the private include path (CMakeLists.txt, VKEBM_PRIVATE_INCLUDES). A shader defines VKEBM_PC_<NAME> before including this file and reads its block as `pc`.
 *
 * Every struct starts with VKEBM_PUSH_BINDING_OFFSETS: the vulkan backend binds each tensor
 * from the nearest offset below it that meets minStorageBufferOffsetAlignment and writes the
 * remainder (in floats, < 64 since the alignment is at most 256 bytes) of binding i into byte i
 * of boff; shaders index binding i at BOFF(i) + element (shaders/common.glsl). So tensors may
 * sit at any float offset inside one allocation. vulkan.c checks at compile time that every
 * kernel's struct starts with it. */
#ifndef VKEBM_PUSH_H
#define VKEBM_PUSH_H

#include "vkebm/shared.h"

#define VKEBM_PUSH_BINDING_OFFSETS u32 boff[2];

#if !defined(VULKAN) || defined(VKEBM_PC_FILL)
VKEBM_PUSH_BEGIN(fill, FILL)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 n;
  f32 value;
VKEBM_PUSH_END(fill, FILL)
#endif

/* add, axpy, scale, swish_forward, swish_backward: n elements, alpha where used. */
#if !defined(VULKAN) || defined(VKEBM_PC_ELTWISE)
VKEBM_PUSH_BEGIN(eltwise, ELTWISE)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 n;
  f32 alpha;
VKEBM_PUSH_END(eltwise, ELTWISE)
#endif

/* avgpool2_forward/backward: planes = B*C; h, w = the INPUT's size (even). */
#if !defined(VULKAN) || defined(VKEBM_PC_AVGPOOL2)
VKEBM_PUSH_BEGIN(avgpool2, AVGPOOL2)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 planes;
  u32 h;
  u32 w;
VKEBM_PUSH_END(avgpool2, AVGPOOL2)
#endif

/* conv3x3_forward / backward_input / backward_weight. Register tiles (shaders/conv3x3_tile.glsl,
 * shaders/conv3x3_backward_weight.comp); the host computes the dispatch grid from them. */
#define VKEBM_CONV_OT 4u  /* output channels per invocation (forward, backward_input) */
#define VKEBM_CONV_RT 4u  /* rows per invocation */
#define VKEBM_CONV_PX 8u  /* consecutive pixels of a row per invocation */
#define VKEBM_CONVW_OT 4u /* backward_weight: output channels per invocation */
#define VKEBM_CONVW_IT 4u /* backward_weight: input channels per invocation */
/* backward_weight splits the (b, h) rows into this many invocations' worth of parallel work
 * at least (partial sums, then conv3x3_backward_weight_reduce), for GPUs' sake */
#define VKEBM_CONVW_TARGET_INVOCATIONS 8192u
#if !defined(VULKAN) || defined(VKEBM_PC_CONV3X3)
VKEBM_PUSH_BEGIN(conv3x3, CONV3X3)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 batch;
  u32 cin;
  u32 cout;
  u32 h;
  u32 w;
  u32 rows_per_split; /* backward_weight: (b, h) rows per split (gl_WorkGroupID.y) */
  u32 partial;        /* backward_weight: 0 = dw += sums; 1 = out[split] = sums (partials) */
  u32 texel;          /* 1: read the inputs through texel buffers (bindings 8, 9) */
VKEBM_PUSH_END(conv3x3, CONV3X3)
#endif

/* conv3x3_backward_weight_reduce: dw[k] += sum_{s < splits} partial[s*n + k]. */
#if !defined(VULKAN) || defined(VKEBM_PC_SPLIT_SUM)
VKEBM_PUSH_BEGIN(split_sum, SPLIT_SUM)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 n;
  u32 splits;
VKEBM_PUSH_END(split_sum, SPLIT_SUM)
#endif

/* cond_bias_forward, cond_scale_forward, cond_scale_backward, cond_params_backward.
 * flags (cond_params_backward): bit 0 write dG, bit 1 write dCB, bit 2 write dc. */
#define VKEBM_COND_DG 1u
#define VKEBM_COND_DCB 2u
#define VKEBM_COND_DC 4u
#if !defined(VULKAN) || defined(VKEBM_PC_COND)
VKEBM_PUSH_BEGIN(cond, COND)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 batch;
  u32 channels;
  u32 hw;
  u32 labels;
  u32 flags;
VKEBM_PUSH_END(cond, COND)
#endif

/* channel_sum: out[r] = scale * sum_p a[r,p] (* b[r,p] when with_b), rows of len elements. */
#if !defined(VULKAN) || defined(VKEBM_PC_CHANNEL_SUM)
VKEBM_PUSH_BEGIN(channel_sum, CHANNEL_SUM)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 rows;
  u32 len;
  u32 with_b;
  f32 scale;
VKEBM_PUSH_END(channel_sum, CHANNEL_SUM)
#endif

/* head_forward / head_backward / head_backward_params. flags: bit 0 dw, bit 1 dbias. */
#define VKEBM_HEAD_DW 1u
#define VKEBM_HEAD_DBIAS 2u
#if !defined(VULKAN) || defined(VKEBM_PC_HEAD)
VKEBM_PUSH_BEGIN(head, HEAD)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 batch;
  u32 channels;
  u32 hw;
  u32 flags;
VKEBM_PUSH_END(head, HEAD)
#endif

/* spectral_norm_forward / spectral_norm_backward. */
#if !defined(VULKAN) || defined(VKEBM_PC_SPECTRAL)
VKEBM_PUSH_BEGIN(spectral, SPECTRAL)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 rows;
  u32 cols;
  u32 update_u;
VKEBM_PUSH_END(spectral, SPECTRAL)
#endif

/* dot_reduce: out[g] = sum over chunk g of term(i), term = a*b, a*a or a by mode;
 * chunk elements per workgroup, n elements in all. */
#define VKEBM_DOT_AB 0u
#define VKEBM_DOT_AA 1u
#define VKEBM_DOT_A 2u
#if !defined(VULKAN) || defined(VKEBM_PC_DOT)
VKEBM_PUSH_BEGIN(dot, DOT)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 n;
  u32 mode;
  u32 chunk;
VKEBM_PUSH_END(dot, DOT)
#endif

/* ---- scene ops --------------------------------------------------------------------------- */
/* scene_render (shaders/scene_render.comp): n images of size x size from n packed scenes. */
#if !defined(VULKAN) || defined(VKEBM_PC_SCENE_RENDER)
VKEBM_PUSH_BEGIN(scene_render, SCENE_RENDER)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 n;
  u32 size;
VKEBM_PUSH_END(scene_render, SCENE_RENDER)
#endif

/* ---- optimizer ops ----------------------------------------------------------------------- */
/* adam_step (shaders/adam_step.comp): n parameters; bias corrections bc1 = 1 - beta1^t and
 * bc2 = 1 - beta2^t (and bc2_prev = 1 - beta2^(t-1), 0 at t = 1) computed on the host in
 * double; clip != 0 enables the per-element clip; grad_scale multiplies every gradient first
 * (the global gradient-norm clip). */
#if !defined(VULKAN) || defined(VKEBM_PC_ADAM_STEP)
VKEBM_PUSH_BEGIN(adam_step, ADAM_STEP)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 n;
  u32 clip;
  f32 lr;
  f32 beta1;
  f32 beta2;
  f32 eps;
  f32 bc1;
  f32 bc2;
  f32 bc2_prev;
  f32 grad_scale;
VKEBM_PUSH_END(adam_step, ADAM_STEP)
#endif

/* ---- sampler ops (shaders/langevin_*.comp, src/backend/vulkan_sampler.c) ----------------------
 * One struct for all of them. rows x cols: chains (or stacked rows) by values per row;
 * rows_per_group: rows sharing a target/precision row (quadratic energy); flags bit 0: grad
 * present (langevin_update); clip when clip_lo < clip_hi. */
#define VKEBM_SAMPLER_HAS_GRAD 1u
#if !defined(VULKAN) || defined(VKEBM_PC_SAMPLER)
VKEBM_PUSH_BEGIN(sampler, SAMPLER)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 rows;
  u32 cols;
  u32 rows_per_group;
  u32 seed;
  u32 step;
  u32 flags;
  f32 step_size;
  f32 noise_std;
  f32 clip_lo;
  f32 clip_hi;
  u32 chain0;   /* langevin_update: the first row's chain index in the noise counter */
VKEBM_PUSH_END(sampler, SAMPLER)
#endif

/* softmin_forward / softmin_backward (shaders/softmin_*.comp): k operands of b chains each,
 * temperature t, and the backward's constant factor alpha. */
#if !defined(VULKAN) || defined(VKEBM_PC_SOFTMIN)
VKEBM_PUSH_BEGIN(softmin, SOFTMIN)
  VKEBM_PUSH_BINDING_OFFSETS
  u32 k;
  u32 b;
  f32 t;
  f32 alpha;
VKEBM_PUSH_END(softmin, SOFTMIN)
#endif

#endif
