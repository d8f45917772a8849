/* conv3x3_tile_body.glsl: the body of the tiled 3x3 convolution (see conv3x3_tile.glsl), included
 * once per load path; the includer defines TILE_FN, LOAD_IN(index) and LOAD_W(index). */
void TILE_FN() {
  uint H = pc.h, W = pc.w;
  uint col_tiles = (W + CONV_PX - 1u) / CONV_PX;
  uint row_tiles = (H + CONV_RT - 1u) / CONV_RT;
  uint idx = gl_GlobalInvocationID.x;
  if (idx >= row_tiles * col_tiles) return;
  uint row0 = (idx / col_tiles) * CONV_RT, col0 = (idx % col_tiles) * CONV_PX;
  uint o0 = gl_WorkGroupID.y * CONV_OT, b = gl_WorkGroupID.z;
  uint nin = IN_CH, nout = OUT_CH;

  /* which window columns / rows are inside the image (zero padding outside) */
  bool colok[CONV_PX + 2u];
  uint colidx[CONV_PX + 2u];
  [[unroll]] for (uint j = 0u; j < CONV_PX + 2u; j++) {
    int c = int(col0) + int(j) - 1;
    colok[j] = c >= 0 && c < int(W);
    colidx[j] = uint(clamp(c, 0, int(W) - 1));
  }

  float acc[CONV_OT][CONV_RT][CONV_PX];
  [[unroll]] for (uint o = 0u; o < CONV_OT; o++)
    [[unroll]] for (uint r = 0u; r < CONV_RT; r++)
      [[unroll]] for (uint p = 0u; p < CONV_PX; p++) acc[o][r][p] = 0.0;

  for (uint i = 0u; i < nin; i++) {
    float wr[CONV_OT][9];
    [[unroll]] for (uint o = 0u; o < CONV_OT; o++) {
      uint oc = min(o0 + o, nout - 1u); /* clamped: channels past OUT_CH are computed, not stored */
      [[unroll]] for (uint k = 0u; k < 9u; k++) wr[o][k] = LOAD_W(BOFF(2) + WEIGHT_INDEX(oc, i, k / 3u, k % 3u));
    }
    uint plane = BOFF(1) + (b * nin + i) * H * W;
    [[unroll]] for (uint j = 0u; j < CONV_RT + 2u; j++) {
      int r = int(row0) + int(j) - 1;
      if (r < 0 || r >= int(H)) continue;
      float xv[CONV_PX + 2u];
      [[unroll]] for (uint q = 0u; q < CONV_PX + 2u; q++)
        xv[q] = colok[q] ? LOAD_IN(plane + uint(r) * W + colidx[q]) : 0.0;
      /* input row j feeds output row rr = j - kh */
      [[unroll]] for (uint kh = 0u; kh < 3u; kh++) {
        if (j < kh || j - kh >= CONV_RT) continue;
        uint rr = j - kh;
        [[unroll]] for (uint o = 0u; o < CONV_OT; o++)
          [[unroll]] for (uint p = 0u; p < CONV_PX; p++)
            acc[o][rr][p] += wr[o][kh * 3u] * xv[p] + wr[o][kh * 3u + 1u] * xv[p + 1u] +
                             wr[o][kh * 3u + 2u] * xv[p + 2u];
      }
    }
  }
  [[unroll]] for (uint o = 0u; o < CONV_OT; o++) {
    if (o0 + o >= nout) break;
    [[unroll]] for (uint r = 0u; r < CONV_RT; r++) {
      if (row0 + r >= H) break;
      uint obase = BOFF(0) + ((b * nout + o0 + o) * H + row0 + r) * W;
      [[unroll]] for (uint p = 0u; p < CONV_PX; p++)
        if (col0 + p < W) outv[obase + col0 + p] = acc[o][r][p];
    }
  }
}
