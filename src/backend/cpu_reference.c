/* cpu_reference.c: see cpu_reference.h. Direct loops, double accumulators, no cleverness. */
#include "cpu_reference.h"

#include <stddef.h>

/* x[b,c,h,w] with zero padding outside the image */
static double at(const float *x, int b, int c, int h, int w, int C, int H, int W) {
  if (h < 0 || h >= H || w < 0 || w >= W) return 0.0;
  return x[(((size_t)b * C + c) * H + h) * W + w];
}

void conv3x3_forward_ref(float *y, const float *x, const float *w, int B, int Ci, int Co, int H,
                         int W) {
  for (int b = 0; b < B; b++)
    for (int co = 0; co < Co; co++)
      for (int h = 0; h < H; h++)
        for (int ww = 0; ww < W; ww++) {
          double acc = 0.0;
          for (int ci = 0; ci < Ci; ci++)
            for (int kh = 0; kh < 3; kh++)
              for (int kw = 0; kw < 3; kw++)
                acc += (double)w[(((size_t)co * Ci + ci) * 3 + kh) * 3 + kw] *
                       at(x, b, ci, h + kh - 1, ww + kw - 1, Ci, H, W);
          y[(((size_t)b * Co + co) * H + h) * W + ww] = (float)acc;
        }
}

void conv3x3_backward_input_ref(float *dx, const float *dy, const float *w, int B, int Ci, int Co,
                                int H, int W) {
  for (int b = 0; b < B; b++)
    for (int ci = 0; ci < Ci; ci++)
      for (int h = 0; h < H; h++)
        for (int ww = 0; ww < W; ww++) {
          double acc = 0.0;
          for (int co = 0; co < Co; co++)
            for (int kh = 0; kh < 3; kh++)
              for (int kw = 0; kw < 3; kw++)
                acc += (double)w[(((size_t)co * Ci + ci) * 3 + kh) * 3 + kw] *
                       at(dy, b, co, h - kh + 1, ww - kw + 1, Co, H, W);
          dx[(((size_t)b * Ci + ci) * H + h) * W + ww] = (float)acc;
        }
}

void conv3x3_backward_weight_ref(float *dw, const float *dy, const float *x, int B, int Ci,
                                 int Co, int H, int W) {
  for (int co = 0; co < Co; co++)
    for (int ci = 0; ci < Ci; ci++)
      for (int kh = 0; kh < 3; kh++)
        for (int kw = 0; kw < 3; kw++) {
          double acc = 0.0;
          for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
              for (int ww = 0; ww < W; ww++)
                acc += (double)dy[(((size_t)b * Co + co) * H + h) * W + ww] *
                       at(x, b, ci, h + kh - 1, ww + kw - 1, Ci, H, W);
          dw[(((size_t)co * Ci + ci) * 3 + kh) * 3 + kw] += (float)acc;
        }
}
