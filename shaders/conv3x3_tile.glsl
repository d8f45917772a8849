/* conv3x3_tile.glsl: the register-tiled 3x3 convolution (stride 1, zero padding 1) shared by
 * conv3x3_forward.comp and conv3x3_backward_input.comp, which differ only in which tensor is
 * the "input" and how the weight is indexed:
 *   out[b,o,h,w] = sum_{i<IN_CH, kh, kw} WEIGHT(o, i, kh, kw) * in[b,i,h+kh-1,w+kw-1]
 * The includer defines IN_CH, OUT_CH and WEIGHT_INDEX(o, i, kh, kw), and binds
 *   0: out [B, OUT_CH, H, W] (overwritten)   1: in [B, IN_CH, H, W]   2: weight [Co, Ci, 3, 3]
 * Tiling: each invocation computes CONV_OT output channels x CONV_PX consecutive pixels of one
 * row, so each loaded input value feeds CONV_OT*3 FMAs and each weight CONV_PX FMAs (register
 * reuse is what matters on lavapipe, where every SSBO load is a gather).
 * Dispatch: x = ceil(H * ceil(W/CONV_PX) / 64) groups of 64, y = ceil(OUT_CH/CONV_OT), z = B. */
#extension GL_EXT_control_flow_attributes : require

#define CONV_OT VKEBM_CONV_OT
#define CONV_PX VKEBM_CONV_PX

layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Out { float outv[]; };
layout(std430, binding = 1) readonly buffer In { float inv[]; };
layout(std430, binding = 2) readonly buffer Wt { float wt[]; };

void main() {
  uint H = pc.h, W = pc.w;
  uint groups_per_row = (W + CONV_PX - 1u) / CONV_PX;
  uint idx = gl_GlobalInvocationID.x;
  if (idx >= H * groups_per_row) return;
  uint row = idx / groups_per_row, col0 = (idx % groups_per_row) * CONV_PX;
  uint o0 = gl_WorkGroupID.y * CONV_OT, b = gl_WorkGroupID.z;
  uint nin = IN_CH, nout = OUT_CH;

  float acc[CONV_OT][CONV_PX];
  [[unroll]] for (uint o = 0u; o < CONV_OT; o++)
    [[unroll]] for (uint p = 0u; p < CONV_PX; p++) acc[o][p] = 0.0;

  for (uint i = 0u; i < nin; i++) {
    uint plane = BOFF(1) + (b * nin + i) * H * W;
    [[unroll]] for (uint kh = 0u; kh < 3u; kh++) {
      int r = int(row) + int(kh) - 1;
      if (r < 0 || r >= int(H)) continue;
      float xv[CONV_PX + 2];
      [[unroll]] for (uint j = 0u; j < CONV_PX + 2u; j++) {
        int c = int(col0) + int(j) - 1;
        xv[j] = (c >= 0 && c < int(W)) ? inv[plane + uint(r) * W + uint(c)] : 0.0;
      }
      [[unroll]] for (uint o = 0u; o < CONV_OT; o++) {
        uint oc = min(o0 + o, nout - 1u); /* clamped: rows past OUT_CH are computed, not stored */
        float w0 = wt[BOFF(2) + WEIGHT_INDEX(oc, i, kh, 0u)];
        float w1 = wt[BOFF(2) + WEIGHT_INDEX(oc, i, kh, 1u)];
        float w2 = wt[BOFF(2) + WEIGHT_INDEX(oc, i, kh, 2u)];
        [[unroll]] for (uint p = 0u; p < CONV_PX; p++)
          acc[o][p] += w0 * xv[p] + w1 * xv[p + 1u] + w2 * xv[p + 2u];
      }
    }
  }
  [[unroll]] for (uint o = 0u; o < CONV_OT; o++) {
    if (o0 + o >= nout) break;
    uint obase = BOFF(0) + ((b * nout + o0 + o) * H + row) * W;
    [[unroll]] for (uint p = 0u; p < CONV_PX; p++)
      if (col0 + p < W) outv[obase + col0 + p] = acc[o][p];
  }
}
