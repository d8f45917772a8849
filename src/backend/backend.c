/* backend.c: the public backend interface, forwarding to the chosen backend's vtable.
 * Owns: backend selection (auto = a hardware Vulkan GPU if present, else cpu). */
#include <stdio.h>
#include <string.h>

#include "backend_impl.h"
#include "vkebm/scene.h"

int ebm_backend_create(ebm_backend **out, const ebm_backend_options *opt, char *err,
                       size_t errlen) {
  ebm_backend_options o = {0};
  if (opt) o = *opt;
  *out = NULL;
  if (o.kind == EBM_BACKEND_AUTO)
    o.kind = ebm_vulkan_hardware_gpu_present() ? EBM_BACKEND_VULKAN : EBM_BACKEND_CPU;
  int rc = o.kind == EBM_BACKEND_VULKAN ? ebm_vulkan_backend_create(out, &o, err, errlen)
                                        : ebm_cpu_backend_create(out, &o, err, errlen);
  if (rc == 0 && o.verbose)
    fprintf(stderr, "vkebm: backend %s on %s (%s)\n", (*out)->vt->name,
            (*out)->vt->device_name(*out), (*out)->vt->describe(*out));
  return rc;
}

void ebm_backend_destroy(ebm_backend *be) {
  if (be) be->vt->destroy(be);
}

ebm_backend_kind ebm_backend_kind_of(const ebm_backend *be) { return be->kind; }
const char *ebm_backend_name(const ebm_backend *be) { return be->vt->name; }
const char *ebm_backend_device_name(const ebm_backend *be) { return be->vt->device_name(be); }
const char *ebm_backend_describe(const ebm_backend *be) { return be->vt->describe(be); }
const char *ebm_backend_conv_path(const ebm_backend *be, int direction, int Ci, int Co, int H,
                                  int W) {
  return be->vt->conv_path ? be->vt->conv_path(be, direction, Ci, Co, H, W) : "shader";
}
uint64_t ebm_backend_validation_errors(const ebm_backend *be) {
  return be->vt->validation_errors(be);
}

ebm_buffer *ebm_alloc(ebm_backend *be, size_t nfloats) { return be->vt->alloc(be, nfloats); }
void ebm_free(ebm_backend *be, ebm_buffer *buf) {
  if (buf) be->vt->free(be, buf);
}
size_t ebm_buffer_size(const ebm_buffer *buf) { return buf->nfloats; }
ebm_ref ebm_ref_of(ebm_buffer *buf) { return (ebm_ref){buf, 0}; }
int ebm_upload(ebm_backend *be, ebm_ref dst, const float *src, size_t n) {
  return be->vt->upload(be, dst, src, n);
}
int ebm_download(ebm_backend *be, float *dst, ebm_ref src, size_t n) {
  return be->vt->download(be, dst, src, n);
}
int ebm_sync(ebm_backend *be) { return be->vt->sync(be); }

void ebm_fill(ebm_backend *be, ebm_ref y, float v, size_t n) { be->vt->fill(be, y, v, n); }
void ebm_add(ebm_backend *be, ebm_ref y, ebm_ref a, ebm_ref b, size_t n) {
  be->vt->add(be, y, a, b, n);
}
void ebm_axpy(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n) {
  be->vt->axpy(be, y, alpha, x, n);
}
void ebm_scale(ebm_backend *be, ebm_ref y, float alpha, ebm_ref x, size_t n) {
  be->vt->scale(be, y, alpha, x, n);
}
void ebm_conv3x3_forward(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref w, int B, int Ci, int Co,
                         int H, int W) {
  be->vt->conv3x3_forward(be, y, x, w, B, Ci, Co, H, W);
}
void ebm_conv3x3_backward_input(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref w, int B, int Ci,
                                int Co, int H, int W) {
  be->vt->conv3x3_backward_input(be, dx, dy, w, B, Ci, Co, H, W);
}
void ebm_conv3x3_backward_weight(ebm_backend *be, ebm_ref dw, ebm_ref dy, ebm_ref x, int B, int Ci,
                                 int Co, int H, int W) {
  be->vt->conv3x3_backward_weight(be, dw, dy, x, B, Ci, Co, H, W);
}
void ebm_swish_forward(ebm_backend *be, ebm_ref y, ebm_ref x, size_t n) {
  be->vt->swish_forward(be, y, x, n);
}
void ebm_swish_backward(ebm_backend *be, ebm_ref dx, ebm_ref dy, ebm_ref x, size_t n) {
  be->vt->swish_backward(be, dx, dy, x, n);
}
void ebm_avgpool2_forward(ebm_backend *be, ebm_ref y, ebm_ref x, int B, int C, int H, int W) {
  be->vt->avgpool2_forward(be, y, x, B, C, H, W);
}
void ebm_avgpool2_backward(ebm_backend *be, ebm_ref dx, ebm_ref dy, int B, int C, int H, int W) {
  be->vt->avgpool2_backward(be, dx, dy, B, C, H, W);
}
void ebm_cond_bias_forward(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G, int B,
                           int C, int HW, int L) {
  be->vt->cond_bias_forward(be, y, x, c, G, B, C, HW, L);
}
void ebm_cond_bias_backward(ebm_backend *be, ebm_ref dG, ebm_ref dc, ebm_ref dy, ebm_ref c,
                            ebm_ref G, int B, int C, int HW, int L) {
  be->vt->cond_bias_backward(be, dG, dc, dy, c, G, B, C, HW, L);
}
void ebm_cond_scale_forward(ebm_backend *be, ebm_ref y, ebm_ref x, ebm_ref c, ebm_ref G, ebm_ref CB,
                            int B, int C, int HW, int L) {
  be->vt->cond_scale_forward(be, y, x, c, G, CB, B, C, HW, L);
}
void ebm_cond_scale_backward(ebm_backend *be, ebm_ref dx, ebm_ref dG, ebm_ref dCB, ebm_ref dc,
                             ebm_ref dy, ebm_ref x, ebm_ref c, ebm_ref G, ebm_ref CB, int B, int C,
                             int HW, int L) {
  be->vt->cond_scale_backward(be, dx, dG, dCB, dc, dy, x, c, G, CB, B, C, HW, L);
}
void ebm_head_forward(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref w, ebm_ref bias, int B, int C,
                      int HW) {
  be->vt->head_forward(be, e, x, w, bias, B, C, HW);
}
void ebm_head_backward(ebm_backend *be, ebm_ref dx, ebm_ref dw, ebm_ref dbias, ebm_ref de,
                       ebm_ref x, ebm_ref w, int B, int C, int HW) {
  be->vt->head_backward(be, dx, dw, dbias, de, x, w, B, C, HW);
}
void ebm_spectral_norm_forward(ebm_backend *be, ebm_ref w_sn, ebm_ref u, ebm_ref v, ebm_ref sigma,
                               ebm_ref w, int rows, int cols, int update_u) {
  be->vt->spectral_norm_forward(be, w_sn, u, v, sigma, w, rows, cols, update_u);
}
void ebm_spectral_norm_backward(ebm_backend *be, ebm_ref dw, ebm_ref dw_sn, ebm_ref w_sn, ebm_ref u,
                                ebm_ref v, ebm_ref sigma, int rows, int cols) {
  be->vt->spectral_norm_backward(be, dw, dw_sn, w_sn, u, v, sigma, rows, cols);
}
void ebm_sumsq(ebm_backend *be, ebm_ref out, ebm_ref x, size_t n) { be->vt->sumsq(be, out, x, n); }

/* ---- scene ops ---- */
void ebm_scene_render(ebm_backend *be, ebm_ref images, ebm_ref scenes, int n, int size) {
  if (n <= 0) return;
  if (size < SCENE_MIN_RENDER_SIZE || size > SCENE_MAX_RENDER_SIZE) {
    fprintf(stderr, "vkebm: ebm_scene_render: size %d outside %d..%d\n", size,
            SCENE_MIN_RENDER_SIZE, SCENE_MAX_RENDER_SIZE);
    return; /* callers check sizes (scene.h); the images are left as they were */
  }
  be->vt->scene_render(be, images, scenes, n, size);
}

/* ---- sampler ops -------------------------------------------------------------------------- */
void ebm_quadratic_energy(ebm_backend *be, ebm_ref e, ebm_ref x, ebm_ref mu, ebm_ref prec, int n,
                          int N, int rows_per_group) {
  be->vt->quadratic_energy(be, e, x, mu, prec, n, N, rows_per_group);
}
void ebm_quadratic_energy_backward(ebm_backend *be, ebm_ref dx, ebm_ref dE, ebm_ref x, ebm_ref mu,
                                   ebm_ref prec, int n, int N, int rows_per_group) {
  be->vt->quadratic_energy_backward(be, dx, dE, x, mu, prec, n, N, rows_per_group);
}
void ebm_langevin_update(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N, uint32_t seed,
                         uint32_t step, float step_size, float noise_std, float clip_lo,
                         float clip_hi) {
  be->vt->langevin_update(be, x, grad, B, N, 0, seed, step, step_size, noise_std, clip_lo, clip_hi);
}
void ebm_langevin_update_at(ebm_backend *be, ebm_ref x, ebm_ref grad, int B, int N,
                            uint32_t chain0, uint32_t seed, uint32_t step, float step_size,
                            float noise_std, float clip_lo, float clip_hi) {
  be->vt->langevin_update(be, x, grad, B, N, chain0, seed, step, step_size, noise_std, clip_lo,
                          clip_hi);
}
void ebm_mala_propose(ebm_backend *be, ebm_ref xp, ebm_ref x, ebm_ref grad, ebm_ref tau, int B,
                      int N, uint32_t seed, uint32_t step) {
  be->vt->mala_propose(be, xp, x, grad, tau, B, N, seed, step);
}
void ebm_mala_log_q(ebm_backend *be, ebm_ref out, ebm_ref to, ebm_ref from, ebm_ref grad_from,
                    ebm_ref tau, int B, int N) {
  be->vt->mala_log_q(be, out, to, from, grad_from, tau, B, N);
}
void ebm_chain_select(ebm_backend *be, ebm_ref x, ebm_ref src, ebm_ref mask, int B, int N) {
  be->vt->chain_select(be, x, src, mask, B, N);
}

/* ---- optimizer ops ------------------------------------------------------------------------ */
void ebm_adam_step(ebm_backend *be, ebm_ref params, ebm_ref grads, ebm_ref m, ebm_ref v, size_t n,
                   const ebm_adam_params *hp) {
  be->vt->adam_step(be, params, grads, m, v, n, hp);
}
