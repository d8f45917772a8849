/* cpu_reference.h: naive direct-loop 3x3 convolutions, the specification the fast im2col+sgemm
 * path of cpu_ops.c (and every Vulkan conv shader) is tested against.
 *
 * Owns: nothing but these three loops. They accumulate in double, one output element at a time,
 * in (ci, kh, kw) or (b, h, w) order, so they are slow, exact to ~1e-7 relative, and obviously
 * right. Shapes as in include/vkebm/backend.h.
 */
#ifndef VKEBM_CPU_REFERENCE_H
#define VKEBM_CPU_REFERENCE_H

/* y[B,Co,H,W] = sum_{ci,kh,kw} w[Co,ci,kh,kw] * x[B,ci,h+kh-1,w+kw-1] */
void conv3x3_forward_ref(float *y, const float *x, const float *w, int B, int Ci, int Co, int H,
                         int W);
/* dx[b,ci,h,w] = sum_{co,kh,kw} w[co,ci,kh,kw] * dy[b,co,h-kh+1,w-kw+1]   (overwrites) */
void conv3x3_backward_input_ref(float *dx, const float *dy, const float *w, int B, int Ci, int Co,
                                int H, int W);
/* dw[Co,Ci,3,3] += sum_{b,h,w} dy[b,co,h,w] * x[b,ci,h+kh-1,w+kw-1] */
void conv3x3_backward_weight_ref(float *dw, const float *dy, const float *x, int B, int Ci,
                                 int Co, int H, int W);

#endif
