/* vulkan_ops.c: every op of include/vkebm/backend.h on the vulkan backend, as dispatches of
 * the kernels in vulkan_kernels.def (shaders/<kernel>.comp), (vulkan.c builds the vtable).
 *
 * Each vk_<op> gets its tensors checked (backend.c) with their extents, fills a push struct
 * (shaders/push.h), lists the tensors in binding order and picks the dispatch grid the
 * shader's header comment describes. Reductions go through
 * kernels with fixed summation order (channel_sum, dot_reduce, per-invocation serial loops),
 * so results are bitwise repeatable. Ops whose inputs may alias their outputs order their
 * dispatches so every read of an input precedes the write that could clobber it.
 */
#include <stdint.h>
#include <stdio.h>

#include "push.h"
#include "vulkan_impl.h"

#define RUN(be, kernel, args, push, gx, gy, gz)                                              \
  vkb_run(be, VKB_K_##kernel, args, (int)(sizeof(args) / sizeof(args[0])), &(push),       \
          (uint32_t)sizeof(push), gx, gy, gz)

static void run_1d(ebm_backend *be, vkb_kernel_id k, const vkb_arg *args, int nargs,
                   const void *push, uint32_t push_size, size_t items, uint32_t local) {
  uint32_t gx, gy;
  vkb_grid_1d(items, local, &gx, &gy);
  if (gx) vkb_run(be, k, args, nargs, push, push_size, gx, gy, 1);
}
#define RUN_1D(be, kernel, args, push, items, local)                                         \
  run_1d(be, VKB_K_##kernel, args, (int)(sizeof(args) / sizeof(args[0])), &(push),         \
         (uint32_t)sizeof(push), items, local)

static size_t usz(int v) { return v > 0 ? (size_t)v : 0; }

/* ---- elementwise ---------------------------------------------------------------------------- */

/* Elementwise kernels over n elements, in pieces of at most one binding's range (a multiple
 * of 256, so the pieces are whole workgroups). refs[i] are the kernel's tensors in binding
 * order, all of n elements. */
static void eltwise(ebm_backend *be, vkb_kernel_id k, const ebm_ref *refs, int nrefs, float alpha,
                    size_t n) {
  size_t piece = vkb_max_binding_floats(be) / 256 * 256;
  for (size_t off = 0; off < n; off += piece) {
    size_t len = n - off < piece ? n - off : piece;
    vkb_arg args[3];
    for (int i = 0; i < nrefs; i++) args[i] = VKB_ARG(ebm_at(refs[i], off), len);
    vkebm_pc_eltwise pc = {.n = (uint32_t)len, .alpha = alpha};
    run_1d(be, k, args, nrefs, &pc, sizeof pc, len, 256);
  }
}

void vk_fill(ebm_backend *be, ebm_tensor y, float v, size_t n) {
  size_t piece = vkb_max_binding_floats(be) / 256 * 256;
  for (size_t off = 0; off < n; off += piece) {
    size_t len = n - off < piece ? n - off : piece;
    vkebm_pc_fill pc = {.n = (uint32_t)len, .value = v};
    vkb_arg a[] = {VKB_ARG(ebm_at(y.ref, off), len)};
    RUN_1D(be, fill, a, pc, len, 256);
  }
}

void vk_add(ebm_backend *be, ebm_tensor y, ebm_tensor a, ebm_tensor b, size_t n) {
  eltwise(be, VKB_K_add, (ebm_ref[]){y.ref, a.ref, b.ref}, 3, 0.0f, n);
}

void vk_axpy(ebm_backend *be, ebm_tensor y, float alpha, ebm_tensor x, size_t n) {
  eltwise(be, VKB_K_axpy, (ebm_ref[]){y.ref, x.ref}, 2, alpha, n);
}

void vk_scale(ebm_backend *be, ebm_tensor y, float alpha, ebm_tensor x, size_t n) {
  eltwise(be, VKB_K_scale, (ebm_ref[]){y.ref, x.ref}, 2, alpha, n);
}

void vk_swish_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, size_t n) {
  eltwise(be, VKB_K_swish_forward, (ebm_ref[]){y.ref, x.ref}, 2, 0.0f, n);
}

void vk_swish_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dy, ebm_tensor x, size_t n) {
  eltwise(be, VKB_K_swish_backward, (ebm_ref[]){dx.ref, dy.ref, x.ref}, 3, 0.0f, n);
}

/* ---- pooling -------------------------------------------------------------------------------- */

void vk_avgpool2_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, int B, int C, int H, int W) {
  size_t planes = usz(B) * usz(C), in = planes * usz(H) * usz(W);
  if (!in) return;
  vkebm_pc_avgpool2 pc = {.planes = (uint32_t)planes, .h = (uint32_t)H, .w = (uint32_t)W};
  vkb_arg args[] = {y, x};
  RUN_1D(be, avgpool2_forward, args, pc, in / 4, 256);
}

void vk_avgpool2_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dy, int B, int C, int H,
                          int W) {
  size_t planes = usz(B) * usz(C), in = planes * usz(H) * usz(W);
  if (!in) return;
  vkebm_pc_avgpool2 pc = {.planes = (uint32_t)planes, .h = (uint32_t)H, .w = (uint32_t)W};
  vkb_arg args[] = {dx, dy};
  RUN_1D(be, avgpool2_backward, args, pc, in, 256);
}

/* ---- convolutions --------------------------------------------------------------------------- */

static void conv_tiled(ebm_backend *be, vkb_kernel_id k, ebm_ref out, ebm_ref in, ebm_ref w,
                       int B, int Ci, int Co, int H, int W, int out_ch, int in_ch) {
  size_t hw = usz(H) * usz(W);
  if (!hw || B <= 0 || Ci <= 0 || Co <= 0) return;
  vkebm_pc_conv3x3 pc = {.batch = (uint32_t)B, .cin = (uint32_t)Ci, .cout = (uint32_t)Co,
                         .h = (uint32_t)H, .w = (uint32_t)W};
  vkb_arg args[] = {VKB_ARG(out, usz(B) * usz(out_ch) * hw), VKB_ARG(in, usz(B) * usz(in_ch) * hw),
                    VKB_ARG(w, usz(Co) * usz(Ci) * 9)};
  size_t items = ((usz(H) + VKEBM_CONV_RT - 1) / VKEBM_CONV_RT) *
                 ((usz(W) + VKEBM_CONV_PX - 1) / VKEBM_CONV_PX);
  uint32_t gx = (uint32_t)((items + 63) / 64);
  uint32_t gy = (uint32_t)((usz(out_ch) + VKEBM_CONV_OT - 1) / VKEBM_CONV_OT);
  /* texel fetches for the input and the weights when both fit maxTexelBufferElements */
  pc.texel = vkb_texel_ok(be, args[1].n) && vkb_texel_ok(be, args[2].n);
  vkb_run_texel(be, k, pc.texel ? 0x6u : 0u, args, 3, &pc, sizeof pc, gx, gy, (uint32_t)B);
}

/* Images per dispatch so that every activation binding fits one binding's range; 0 when a
 * single image is too large (reported, the op is skipped and the next sync fails). */
static int conv_batch_piece(ebm_backend *be, const char *op, int B, int Ci, int Co, int H, int W) {
  size_t per_image = usz(Ci > Co ? Ci : Co) * usz(H) * usz(W);
  size_t fit = vkb_max_binding_floats(be) / (per_image ? per_image : 1);
  if (fit == 0 || usz(Co) * usz(Ci) * 9 > vkb_max_binding_floats(be)) {
    fprintf(stderr, "vulkan: %s: one image of %d x %d x %d (or the weights) exceeds the device's "
            "storage-buffer range\n", op, Ci > Co ? Ci : Co, H, W);
    vkb_fail(be);
    return 0;
  }
  return fit < usz(B) ? (int)fit : B;
}

/* conv_tiled over the batch in pieces of conv_batch_piece images (out: [B, out_ch, H, W],
 * in: [B, in_ch, H, W]). */
static void conv_tiled_batched(ebm_backend *be, const char *op, vkb_kernel_id k, ebm_ref out,
                               ebm_ref in, ebm_ref w, int B, int Ci, int Co, int H, int W,
                               int out_ch, int in_ch) {
  int piece = conv_batch_piece(be, op, B, Ci, Co, H, W);
  size_t hw = usz(H) * usz(W);
  for (int b0 = 0; piece > 0 && b0 < B; b0 += piece) {
    int nb = B - b0 < piece ? B - b0 : piece;
    conv_tiled(be, k, ebm_at(out, usz(b0) * usz(out_ch) * hw),
               ebm_at(in, usz(b0) * usz(in_ch) * hw), w, nb, Ci, Co, H, W, out_ch, in_ch);
  }
}

void vk_conv3x3_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, ebm_tensor w, int B, int Ci,
                       int Co, int H, int W) {
  conv_tiled_batched(be, "conv3x3_forward", VKB_K_conv3x3_forward, y.ref, x.ref, w.ref, B, Ci, Co,
                     H, W, Co, Ci);
}

void vk_conv3x3_backward_input(ebm_backend *be, ebm_tensor dx, ebm_tensor dy, ebm_tensor w, int B,
                              int Ci, int Co, int H, int W) {
  conv_tiled_batched(be, "conv3x3_backward_input", VKB_K_conv3x3_backward_input, dx.ref, dy.ref,
                     w.ref, B, Ci, Co, H, W, Ci, Co);
}

/* Partial sums over splits of the B*H rows when one split would leave the device idle (fewer
 * than VKEBM_CONVW_TARGET_INVOCATIONS invocations), then a fixed-order reduction. */
static void conv_weight_grad(ebm_backend *be, ebm_ref dw, ebm_ref dy, ebm_ref x, int B, int Ci,
                             int Co, int H, int W) {
  size_t hw = usz(H) * usz(W);
  if (!hw || B <= 0 || Ci <= 0 || Co <= 0) return;
  size_t items = ((usz(Co) + VKEBM_CONVW_OT - 1) / VKEBM_CONVW_OT) *
                 ((usz(Ci) + VKEBM_CONVW_IT - 1) / VKEBM_CONVW_IT);
  size_t rows = usz(B) * usz(H), nw = usz(Co) * usz(Ci) * 9;
  size_t splits = (VKEBM_CONVW_TARGET_INVOCATIONS + items - 1) / items;
  if (splits > rows) splits = rows;
  if (splits > 1024) splits = 1024;
  size_t per = (rows + splits - 1) / splits;
  splits = (rows + per - 1) / per;
  ebm_ref out = dw;
  if (splits > 1) {
    out = vkb_scratch(be, splits * nw);
    if (!out.buf) return;
  }
  vkebm_pc_conv3x3 pc = {.batch = (uint32_t)B, .cin = (uint32_t)Ci, .cout = (uint32_t)Co,
                         .h = (uint32_t)H, .w = (uint32_t)W, .rows_per_split = (uint32_t)per,
                         .partial = splits > 1};
  vkb_arg args[] = {VKB_ARG(out, splits * nw), VKB_ARG(dy, usz(B) * usz(Co) * hw),
                    VKB_ARG(x, usz(B) * usz(Ci) * hw)};
  RUN(be, conv3x3_backward_weight, args, pc, (uint32_t)((items + 63) / 64), (uint32_t)splits, 1);
  if (splits > 1) {
    vkebm_pc_split_sum ps = {.n = (uint32_t)nw, .splits = (uint32_t)splits};
    vkb_arg rargs[] = {VKB_ARG(dw, nw), VKB_ARG(out, splits * nw)};
    RUN_1D(be, conv3x3_backward_weight_reduce, rargs, ps, nw, 256);
  }
}

/* Batch pieces that fit a binding each add their sums into dw in turn (the piece size depends
 * on the shape and the device's range only, so the result is still repeatable). */
void vk_conv3x3_backward_weight(ebm_backend *be, ebm_tensor dw, ebm_tensor dy, ebm_tensor x, int B,
                               int Ci, int Co, int H, int W) {
  int piece = conv_batch_piece(be, "conv3x3_backward_weight", B, Ci, Co, H, W);
  size_t hw = usz(H) * usz(W);
  for (int b0 = 0; piece > 0 && b0 < B; b0 += piece) {
    int nb = B - b0 < piece ? B - b0 : piece;
    conv_weight_grad(be, dw.ref, ebm_at(dy.ref, usz(b0) * usz(Co) * hw),
                     ebm_at(x.ref, usz(b0) * usz(Ci) * hw),
                     nb, Ci, Co, H, W);
  }
}

/* ---- label conditioning --------------------------------------------------------------------- */

/* out[r] = scale * sum_p a[r,p] (* b[r,p]) for rows of len. */
static void channel_sum(ebm_backend *be, ebm_ref out, ebm_ref a, ebm_ref b, size_t rows,
                        size_t len, float scale) {
  vkebm_pc_channel_sum pc = {.rows = (uint32_t)rows, .len = (uint32_t)len,
                             .with_b = b.buf != NULL, .scale = scale};
  vkb_arg args[] = {VKB_ARG(out, rows), VKB_ARG(a, rows * len), VKB_ARG(b, rows * len)};
  RUN_1D(be, channel_sum, args, pc, rows * 64, 64);
}

static void cond_params(ebm_backend *be, ebm_ref dG, ebm_ref dCB, ebm_ref dc, ebm_ref S, ebm_ref c,
                        ebm_ref G, int B, int C, int L) {
  uint32_t flags = (dG.buf ? VKEBM_COND_DG : 0) | (dCB.buf ? VKEBM_COND_DCB : 0) |
                   (dc.buf ? VKEBM_COND_DC : 0);
  if (!flags) return;
  vkebm_pc_cond pc = {.batch = (uint32_t)B, .channels = (uint32_t)C, .hw = 1,
                      .labels = (uint32_t)L, .flags = flags};
  size_t bc = usz(B) * usz(C), bl = usz(B) * usz(L), lc = usz(L) * usz(C);
  vkb_arg args[] = {VKB_ARG(dG, lc), VKB_ARG(dCB, usz(C)), VKB_ARG(dc, bl), VKB_ARG(S, bc),
                    VKB_ARG(c, bl), VKB_ARG(G, lc)};
  RUN_1D(be, cond_params_backward, args, pc, lc + usz(C) + bl, 64);
}

void vk_cond_bias_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, ebm_tensor c, ebm_tensor G,
                          int B, int C, int HW, int L) {
  if (!y.n) return;
  vkebm_pc_cond pc = {.batch = (uint32_t)B, .channels = (uint32_t)C, .hw = (uint32_t)HW,
                      .labels = (uint32_t)L};
  /* no labels: the bias is zero, and x stands in for the unused c and G bindings */
  vkb_arg args[] = {y, x, L > 0 ? c : VKB_ARG(x.ref, 1), L > 0 ? G : VKB_ARG(x.ref, 1)};
  RUN_1D(be, cond_bias_forward, args, pc, y.n, 256);
}

void vk_cond_bias_backward(ebm_backend *be, ebm_tensor dG, ebm_tensor dc, ebm_tensor dy,
                           ebm_tensor c, ebm_tensor G, int B, int C, int HW, int L) {
  size_t bc = usz(B) * usz(C);
  if (!bc || HW <= 0 || L <= 0 || (!dG.ref.buf && !dc.ref.buf)) return;
  ebm_ref S = vkb_scratch(be, bc);
  if (!S.buf) return;
  channel_sum(be, S, dy.ref, EBM_NOREF, bc, usz(HW), 1.0f);
  cond_params(be, dG.ref, EBM_NOREF, dc.ref, S, c.ref, G.ref, B, C, L);
}

static void cond_scale_apply(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G,
                             ebm_ref CB, int B, int C, int HW, int L) {
  size_t n = usz(B) * usz(C) * usz(HW);
  if (!n) return;
  vkebm_pc_cond pc = {.batch = (uint32_t)B, .channels = (uint32_t)C, .hw = (uint32_t)HW,
                      .labels = (uint32_t)(L > 0 ? L : 0)};
  ebm_ref cc = L > 0 ? c : x, gg = L > 0 ? G : x;
  vkb_arg args[] = {VKB_ARG(y, n), VKB_ARG(x, n), VKB_ARG(cc, L > 0 ? usz(B) * usz(L) : 1),
                    VKB_ARG(gg, L > 0 ? usz(L) * usz(C) : 1), VKB_ARG(CB, usz(C))};
  RUN_1D(be, cond_scale_forward, args, pc, n, 256);
}

void vk_cond_scale_forward(ebm_backend *be, ebm_tensor y, ebm_tensor x, ebm_tensor c, ebm_tensor G,
                           ebm_tensor CB, int B, int C, int HW, int L) {
  cond_scale_apply(be, y.ref, x.ref, c.ref, G.ref, CB.ref, B, C, HW, L);
}

void vk_cond_scale_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dG, ebm_tensor dCB,
                            ebm_tensor dc, ebm_tensor dy, ebm_tensor x, ebm_tensor c, ebm_tensor G,
                            ebm_tensor CB, int B, int C, int HW, int L) {
  size_t bc = usz(B) * usz(C);
  if (!bc || HW <= 0) return;
  if (dG.ref.buf || dCB.ref.buf || dc.ref.buf) {
    /* g[b,ch] = sum_p dy*x first: dx may alias dy or x */
    ebm_ref g = vkb_scratch(be, bc);
    if (!g.buf) return;
    channel_sum(be, g, dy.ref, x.ref, bc, usz(HW), 1.0f);
    if (L > 0)
      cond_params(be, dG.ref, dCB.ref, dc.ref, g, c.ref, G.ref, B, C, L);
    else
      cond_params(be, EBM_NOREF, dCB.ref, EBM_NOREF, g, x.ref, x.ref, B, C, 0);
  }
  cond_scale_apply(be, dx.ref, dy.ref, c.ref, G.ref, CB.ref, B, C, HW, L);
}

/* ---- head ----------------------------------------------------------------------------------- */

void vk_head_forward(ebm_backend *be, ebm_tensor e, ebm_tensor x, ebm_tensor w, ebm_tensor bias,
                     int B, int C, int HW) {
  size_t bc = usz(B) * usz(C);
  if (!B || HW <= 0 || C <= 0) return;
  ebm_ref M = vkb_scratch(be, bc);
  if (!M.buf) return;
  channel_sum(be, M, x.ref, EBM_NOREF, bc, usz(HW), 1.0f / (float)HW);
  vkebm_pc_head pc = {.batch = (uint32_t)B, .channels = (uint32_t)C, .hw = (uint32_t)HW};
  vkb_arg args[] = {e, VKB_ARG(M, bc), w, bias};
  RUN_1D(be, head_forward, args, pc, usz(B), 64);
}

void vk_head_backward(ebm_backend *be, ebm_tensor dx, ebm_tensor dw, ebm_tensor dbias,
                      ebm_tensor de, ebm_tensor x, ebm_tensor w, int B, int C, int HW) {
  size_t bc = usz(B) * usz(C);
  if (!bc || HW <= 0) return;
  vkebm_pc_head pc = {.batch = (uint32_t)B, .channels = (uint32_t)C, .hw = (uint32_t)HW,
                      .flags = (dw.ref.buf ? VKEBM_HEAD_DW : 0) |
                               (dbias.ref.buf ? VKEBM_HEAD_DBIAS : 0)};
  if (pc.flags) { /* before dx: dx may alias x */
    ebm_ref M = EBM_NOREF;
    if (dw.ref.buf) {
      M = vkb_scratch(be, bc);
      if (!M.buf) return;
      channel_sum(be, M, x.ref, EBM_NOREF, bc, usz(HW), 1.0f / (float)HW);
    }
    vkb_arg args[] = {dw, VKB_ARG(dbias.ref, 1), de, VKB_ARG(M, bc)};
    RUN_1D(be, head_backward_params, args, pc, usz(C) + 1, 64);
  }
  vkb_arg args[] = {dx, de, w};
  RUN_1D(be, head_backward, args, pc, bc * usz(HW), 256);
}

/* ---- reductions ----------------------------------------------------------------------------- */

/* out[0] = sum_i term(i) over n elements (mode VKEBM_DOT_*), in a fixed order that depends on n
 * only: chunks of `chunk` elements summed by one workgroup each, then the partial sums (kept in
 * `partials`, which must hold ceil(n/chunk) floats) summed by one more workgroup. */
static void dot_into(ebm_backend *be, ebm_ref out, ebm_ref a, ebm_ref b, size_t n, uint32_t mode,
                     ebm_ref partials) {
  size_t chunk = 4096;
  if (n / chunk > 4096) chunk = (n + 4095) / 4096;
  size_t groups = n ? (n + chunk - 1) / chunk : 1;
  ebm_ref bb = b.buf ? b : a;
  if (groups == 1) {
    vkebm_pc_dot pc = {.n = (uint32_t)n, .mode = mode, .chunk = (uint32_t)chunk};
    vkb_arg args[] = {VKB_ARG(out, 1), VKB_ARG(a, n ? n : 1), VKB_ARG(bb, n ? n : 1)};
    RUN(be, dot_reduce, args, pc, 1, 1, 1);
    return;
  }
  /* first pass in pieces of whole chunks that fit one binding; the chunking is the same */
  size_t piece_groups = vkb_max_binding_floats(be) / chunk;
  if (piece_groups == 0) piece_groups = 1;
  for (size_t g0 = 0; g0 < groups; g0 += piece_groups) {
    size_t ng = groups - g0 < piece_groups ? groups - g0 : piece_groups;
    size_t begin = g0 * chunk, len = n - begin < ng * chunk ? n - begin : ng * chunk;
    vkebm_pc_dot p1 = {.n = (uint32_t)len, .mode = mode, .chunk = (uint32_t)chunk};
    vkb_arg a1[] = {VKB_ARG(ebm_at(partials, g0), ng), VKB_ARG(ebm_at(a, begin), len),
                    VKB_ARG(ebm_at(bb, begin), len)};
    RUN(be, dot_reduce, a1, p1, (uint32_t)ng, 1, 1);
  }
  vkebm_pc_dot p2 = {.n = (uint32_t)groups, .mode = VKEBM_DOT_A, .chunk = (uint32_t)groups};
  vkb_arg a2[] = {VKB_ARG(out, 1), VKB_ARG(partials, groups), VKB_ARG(partials, groups)};
  RUN(be, dot_reduce, a2, p2, 1, 1, 1);
}

void vk_sumsq(ebm_backend *be, ebm_tensor out, ebm_tensor x, size_t n) {
  if (n > UINT32_MAX) return;
  ebm_ref partials = vkb_scratch(be, 4096);
  if (!partials.buf) return;
  dot_into(be, out.ref, x.ref, EBM_NOREF, n, VKEBM_DOT_AA, partials);
}

/* ---- spectral normalisation ----------------------------------------------------------------- */

void vk_spectral_norm_forward(ebm_backend *be, ebm_tensor w_sn, ebm_tensor u, ebm_tensor v,
                              ebm_tensor sigma, ebm_tensor w, int rows, int cols, int update_u) {
  if (!w.n) return;
  ebm_ref s = vkb_scratch(be, usz(rows));
  if (!s.buf) return;
  vkebm_pc_spectral pc = {.rows = (uint32_t)rows, .cols = (uint32_t)cols,
                          .update_u = update_u != 0};
  vkb_arg args[] = {w_sn, u, v, sigma, w, VKB_ARG(s, usz(rows))};
  RUN(be, spectral_norm_forward, args, pc, 1, 1, 1);
}

void vk_spectral_norm_backward(ebm_backend *be, ebm_tensor dw, ebm_tensor dw_sn, ebm_tensor w_sn,
                               ebm_tensor u, ebm_tensor v, ebm_tensor sigma, int rows, int cols) {
  if (!dw.n) return;
  ebm_ref scratch = vkb_scratch(be, 64 + 4096);
  if (!scratch.buf) return;
  ebm_ref d = scratch; /* <dw_sn, w_sn> in scratch[0], partial sums from scratch[64] */
  dot_into(be, d, dw_sn.ref, w_sn.ref, dw.n, VKEBM_DOT_AB, ebm_at(scratch, 64));
  vkebm_pc_spectral pc = {.rows = (uint32_t)rows, .cols = (uint32_t)cols};
  vkb_arg args[] = {dw, dw_sn, u, v, sigma, VKB_ARG(d, 1)};
  RUN_1D(be, spectral_norm_backward, args, pc, dw.n, 256);
}
