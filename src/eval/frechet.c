/* frechet.c: the Frechet distance between two sets of feature vectors (include/vkebm/eval.h).
 *
 *   FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))
 * with sample means and covariances (denominator n - 1), as FID computes it. tr((S_a S_b)^(1/2))
 * is the sum of the square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2), a symmetric
 * positive semi-definite matrix, so two symmetric eigendecompositions (cyclic Jacobi, in double
 * precision; the feature dimension is ~64) give it without a general matrix square root.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/eval.h"

/* Eigenvalues (w[n]) and eigenvectors (columns of v[n*n]) of the symmetric a[n*n] (destroyed). */
static void jacobi(double *a, int n, double *w, double *v) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) v[i * n + j] = i == j;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        if (i != j) off += a[i * n + j] * a[i * n + j];
        else diag += a[i * n + j] * a[i * n + j];
      }
    if (off <= 1e-24 * (diag + 1e-300)) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (fabs(apq) < 1e-300) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
        double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; k++) { /* columns p, q */
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) { /* rows p, q */
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  for (int i = 0; i < n; i++) w[i] = a[i * n + i];
}

static void mean_cov(const float *x, int n, int d, double *mu, double *cov) {
  memset(mu, 0, (size_t)d * sizeof *mu);
  memset(cov, 0, (size_t)d * d * sizeof *cov);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < d; k++) mu[k] += x[(size_t)i * d + k];
  for (int k = 0; k < d; k++) mu[k] /= n;
  for (int i = 0; i < n; i++)
    for (int p = 0; p < d; p++) {
      double dp = x[(size_t)i * d + p] - mu[p];
      for (int q = p; q < d; q++) cov[p * d + q] += dp * (x[(size_t)i * d + q] - mu[q]);
    }
  for (int p = 0; p < d; p++)
    for (int q = p; q < d; q++) cov[q * d + p] = cov[p * d + q] /= (n > 1 ? n - 1 : 1);
}

double ebm_frechet_distance(const float *a, int na, const float *b, int nb, int dim) {
  if (na < 2 || nb < 2 || dim < 1) return NAN;
  size_t dd = (size_t)dim * dim;
  double *buf = malloc((6 * dd + 4 * (size_t)dim) * sizeof *buf);
  if (!buf) return NAN;
  double *ca = buf, *cb = ca + dd, *v = cb + dd, *ra = v + dd, *m = ra + dd, *t = m + dd;
  double *mua = t + dd, *mub = mua + dim, *w = mub + dim;
  mean_cov(a, na, dim, mua, ca);
  mean_cov(b, nb, dim, mub, cb);
  double fd = 0, tr = 0;
  for (int k = 0; k < dim; k++) {
    fd += (mua[k] - mub[k]) * (mua[k] - mub[k]);
    tr += ca[k * dim + k] + cb[k * dim + k];
  }
  /* ra = S_a^(1/2) = V diag(sqrt(max(w, 0))) V^T */
  memcpy(m, ca, dd * sizeof *m);
  jacobi(m, dim, w, v);
  for (int p = 0; p < dim; p++)
    for (int q = 0; q < dim; q++) {
      double s = 0;
      for (int k = 0; k < dim; k++) s += v[p * dim + k] * sqrt(w[k] > 0 ? w[k] : 0) * v[q * dim + k];
      ra[p * dim + q] = s;
    }
  /* m = ra S_b ra */
  for (int p = 0; p < dim; p++)
    for (int q = 0; q < dim; q++) {
      double s = 0;
      for (int k = 0; k < dim; k++) s += ra[p * dim + k] * cb[k * dim + q];
      t[p * dim + q] = s;
    }
  for (int p = 0; p < dim; p++)
    for (int q = 0; q < dim; q++) {
      double s = 0;
      for (int k = 0; k < dim; k++) s += t[p * dim + k] * ra[k * dim + q];
      m[p * dim + q] = s;
    }
  for (int p = 0; p < dim; p++) /* symmetrise the rounding */
    for (int q = p + 1; q < dim; q++) m[p * dim + q] = m[q * dim + p] = 0.5 * (m[p * dim + q] + m[q * dim + p]);
  jacobi(m, dim, w, v);
  double root = 0;
  for (int k = 0; k < dim; k++) root += sqrt(w[k] > 0 ? w[k] : 0);
  fd += tr - 2.0 * root;
  free(buf);
  return fd > 0 ? fd : 0;
}
