/* conv3x3_tile.glsl: the register-tiled 3x3 convolution (stride 1, zero padding 1) shared by
 * conv3x3_forward.comp and conv3x3_backward_input.comp, which differ only in which tensor is
 * the "input" and how the weight is indexed:
 *   out[b,o,h,w] = sum_{i<IN_CH, kh, kw} WEIGHT(o, i, kh, kw) * in[b,i,h+kh-1,w+kw-1]
 * The includer defines IN_CH, OUT_CH and WEIGHT_INDEX(o, i, kh, kw), and binds
 *   0: out [B, OUT_CH, H, W] (overwritten)   1: in [B, IN_CH, H, W]   2: weight [Co, Ci, 3, 3]
 * Tiling: each invocation computes a CONV_OT (output channels) x CONV_RT (rows) x CONV_PX
 * (columns) block. Per input channel it loads the CONV_OT*9 weights once and the
 * (CONV_RT+2) x (CONV_PX+2) input window once, then does CONV_OT*CONV_RT*CONV_PX*9 FMAs from
 * registers: register reuse is what matters on lavapipe, where every SSBO load is a gather,
 * and it cuts memory traffic on GPUs. Columns and rows past the edge read as zero (padding).
 * Loads go through texel buffers when pc.texel != 0 (the host checks maxTexelBufferElements),
 * else through the storage buffers: one body (conv3x3_tile_body.glsl) compiled for both.
 * Dispatch: x = ceil(ceil(H/CONV_RT) * ceil(W/CONV_PX) / 64) groups of 64,
 *           y = ceil(OUT_CH / CONV_OT), z = B. */
#extension GL_EXT_control_flow_attributes : require

#define CONV_OT VKEBM_CONV_OT
#define CONV_RT VKEBM_CONV_RT
#define CONV_PX VKEBM_CONV_PX

layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Out { float outv[]; };
layout(std430, binding = 1) readonly buffer In { float inv[]; };
layout(std430, binding = 2) readonly buffer Wt { float wt[]; };
/* the same two tensors as R32F texel buffers (bound when pc.texel != 0): texel fetches are
 * 3-5x faster than SSBO loads on lavapipe */
layout(binding = 8) uniform samplerBuffer in_tex;
layout(binding = 9) uniform samplerBuffer wt_tex;

#define TILE_FN conv_tile_ssbo
#define LOAD_IN(i) inv[i]
#define LOAD_W(i) wt[i]
#include "conv3x3_tile_body.glsl"
#undef TILE_FN
#undef LOAD_IN
#undef LOAD_W
#define TILE_FN conv_tile_texel
#define LOAD_IN(i) texelFetch(in_tex, int(i)).r
#define LOAD_W(i) texelFetch(wt_tex, int(i)).r
#include "conv3x3_tile_body.glsl"

void main() {
  if (pc.texel != 0u)
    conv_tile_texel();
  else
    conv_tile_ssbo();
}
