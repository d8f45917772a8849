/* judge.c: the judge of include/vkebm/judge.h: trunk + composed scalar heads, the supervised
 * loss, Adam, labelled batches, evaluation and the "vkebm-judge" model file.
 *
 * Device memory beyond the trunk (net.c owns that): one buffer per role, like net.c:
 *   head     [K*C weights | K biases], aligned
 *   hgrad    the same layout
 *   adam     m and v of the trunk's params and of the head
 *   io       input x [B, 5, R, R], zero label [B, 1], outputs [K, B], dL/doutputs [K, B],
 *            dfeat [B, C, Hf, Hf] and one head-backward scratch of the same size
 */
#include "vkebm/judge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/safetensors.h"
#include "vkebm/scene.h"
#include "vkebm/shared.h"

#define INIT_STREAM_JUDGE_HEAD 0x4a484544u /* "JHED" */

struct ebm_judge {
  ebm_backend *be;
  ebm_judge_config cfg;
  ebm_net *net;
  int max_batch, C, Hf, R;
  size_t head_count, head_b_off; /* floats: K*C + K; bias offset */
  ebm_buffer *head, *hgrad, *adam, *io;
  size_t adam_net_m, adam_net_v, adam_head_m, adam_head_v;
  size_t io_x, io_c, io_out, io_dout, io_dfeat, io_scratch;
  float *host_x, *host_out, *host_dout; /* staging */
  ebm_ref feat;                          /* the last forward's trunk features */
  int64_t step;   /* training steps the weights have seen (saved) */
  int has_faithful;                      /* thresholds of the faithful check, when recorded */
  ebm_faithful_thresholds faithful;
  int64_t adam_t; /* Adam steps since this judge was created or loaded (moments start at 0) */
  uint64_t seed;
  char data_spec[256];
};

static size_t al(size_t n) { return (n + EBM_ALIGN - 1) / EBM_ALIGN * EBM_ALIGN; }

int ebm_judge_config_preset(ebm_judge_config *cfg, const char *name) {
  memset(cfg, 0, sizeof *cfg);
  if (!strcmp(name, "default32")) {
    cfg->resolution = 32;
    cfg->base_width = 16;
    snprintf(cfg->blocks, sizeof cfg->blocks, "1d,2d,2d,2");
  } else if (!strcmp(name, "tiny")) {
    cfg->resolution = 8;
    cfg->base_width = 4;
    snprintf(cfg->blocks, sizeof cfg->blocks, "1d,2d");
  } else {
    return -1;
  }
  return 0;
}

int ebm_judge_net_config(const ebm_judge_config *cfg, ebm_net_config *net, char *err,
                         size_t errlen) {
  memset(net, 0, sizeof *net);
  net->resolution = cfg->resolution;
  net->in_channels = JUDGE_IN_CHANNELS;
  net->base_width = cfg->base_width;
  net->label_dim = 1;
  net->spectral_norm = 0;
  if (ebm_net_config_parse_blocks(net, cfg->blocks)) {
    snprintf(err, errlen, "bad block spec '%s' (expected e.g. 1d,2d,2d)", cfg->blocks);
    return -1;
  }
  if (cfg->resolution < SCENE_MIN_RENDER_SIZE || cfg->resolution > SCENE_MAX_RENDER_SIZE) {
    snprintf(err, errlen, "resolution %d out of range %d..%d", cfg->resolution,
             SCENE_MIN_RENDER_SIZE, SCENE_MAX_RENDER_SIZE);
    return -1;
  }
  return ebm_net_config_validate(net, err, errlen);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int ebm_judge_create(ebm_judge **out, ebm_backend *be, const ebm_judge_config *cfg, int max_batch,
                     uint64_t seed, char *err, size_t errlen) {
  *out = NULL;
  ebm_net_config nc;
  if (ebm_judge_net_config(cfg, &nc, err, errlen)) return -1;
  ebm_judge *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(err, errlen, "out of host memory");
    return -1;
  }
  j->be = be;
  j->cfg = *cfg;
  j->max_batch = max_batch;
  j->R = cfg->resolution;
  j->seed = seed;
  snprintf(j->data_spec, sizeof j->data_spec, "general");
  if (ebm_net_create(&j->net, be, &nc, max_batch, seed, err, errlen)) {
    free(j);
    return -1;
  }
  ebm_net_feature_shape(j->net, &j->C, &j->Hf);
  size_t K = JUDGE_OUTPUTS, C = (size_t)j->C, B = (size_t)max_batch;
  j->head_b_off = al(K * C);
  j->head_count = j->head_b_off + al(K);
  size_t np = ebm_net_param_count(j->net);
  j->adam_net_m = 0;
  j->adam_net_v = al(np);
  j->adam_head_m = 2 * al(np);
  j->adam_head_v = j->adam_head_m + j->head_count;
  size_t adam_floats = j->adam_head_v + j->head_count;
  size_t xsz = B * JUDGE_IN_CHANNELS * j->R * j->R, fsz = B * C * j->Hf * j->Hf;
  j->io_x = 0;
  j->io_c = al(xsz);
  j->io_out = j->io_c + al(B);
  j->io_dout = j->io_out + al(K * B);
  j->io_dfeat = j->io_dout + al(K * B);
  j->io_scratch = j->io_dfeat + al(fsz);
  size_t io_floats = j->io_scratch + al(fsz);
  j->head = ebm_alloc(be, j->head_count);
  j->hgrad = ebm_alloc(be, j->head_count);
  j->adam = ebm_alloc(be, adam_floats);
  j->io = ebm_alloc(be, io_floats);
  j->host_x = malloc(xsz * sizeof(float));
  j->host_out = malloc(K * B * sizeof(float));
  j->host_dout = malloc(K * B * sizeof(float));
  float *h = calloc(j->head_count, sizeof *h);
  if (!j->head || !j->hgrad || !j->adam || !j->io || !j->host_x || !j->host_out ||
      !j->host_dout || !h) {
    free(h);
    snprintf(err, errlen, "cannot allocate the judge for batch %d", max_batch);
    ebm_judge_destroy(j);
    return -1;
  }
  /* Head weights U(-1/sqrt(C), 1/sqrt(C)), biases 0 (as net.h's energy head). */
  u32 s = (u32)seed ^ (u32)(seed >> 32);
  float bound = 1.0f / sqrtf((float)C);
  for (size_t i = 0; i < K * C; i++)
    h[i] = bound * (2.0f * vkebm_rng_uniform(s, 0, INIT_STREAM_JUDGE_HEAD, (u32)i) - 1.0f);
  /* The coordinate planes are constant: fill them once in the staging image. */
  int R = j->R;
  for (size_t b = 0; b < B; b++)
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float *img = j->host_x + b * JUDGE_IN_CHANNELS * R * R;
        img[3 * R * R + y * R + x] = 2.0f * ((float)x + 0.5f) / (float)R - 1.0f;
        img[4 * R * R + y * R + x] = 1.0f - 2.0f * ((float)y + 0.5f) / (float)R;
      }
  int rc = ebm_upload(be, ebm_ref_of(j->head), h, j->head_count);
  free(h);
  if (rc || ebm_sync(be)) {
    snprintf(err, errlen, "cannot upload the judge's head");
    ebm_judge_destroy(j);
    return -1;
  }
  *out = j;
  return 0;
}

void ebm_judge_destroy(ebm_judge *j) {
  if (!j) return;
  ebm_free(j->be, j->io);
  ebm_free(j->be, j->adam);
  ebm_free(j->be, j->hgrad);
  ebm_free(j->be, j->head);
  ebm_net_destroy(j->net);
  free(j->host_x);
  free(j->host_out);
  free(j->host_dout);
  free(j);
}

const ebm_judge_config *ebm_judge_config_of(const ebm_judge *j) { return &j->cfg; }
int64_t ebm_judge_step(const ebm_judge *j) { return j->step; }
uint64_t ebm_judge_seed(const ebm_judge *j) { return j->seed; }
const char *ebm_judge_data_spec(const ebm_judge *j) { return j->data_spec; }
void ebm_judge_set_provenance(ebm_judge *j, uint64_t seed, const char *data_spec) {
  j->seed = seed;
  snprintf(j->data_spec, sizeof j->data_spec, "%s", data_spec);
}
int ebm_judge_faithful_thresholds(const ebm_judge *j, ebm_faithful_thresholds *out) {
  if (!j->has_faithful) return -1;
  *out = j->faithful;
  return 0;
}
void ebm_judge_set_faithful_thresholds(ebm_judge *j, const ebm_faithful_thresholds *t) {
  j->has_faithful = t != NULL;
  if (t) j->faithful = *t;
}
ebm_net *ebm_judge_net(ebm_judge *j) { return j->net; }
ebm_ref ebm_judge_head_params(ebm_judge *j, size_t *head_count) {
  if (head_count) *head_count = j->head_count;
  return ebm_ref_of(j->head);
}
ebm_ref ebm_judge_head_grads(ebm_judge *j) { return ebm_ref_of(j->hgrad); }

static ebm_ref io(ebm_judge *j, size_t off) { return ebm_at(ebm_ref_of(j->io), off); }

/* ---- forward / backward ------------------------------------------------------------------- */

/* Uploads images into the RGB planes of x and runs trunk + heads: outputs [K, n] on device. */
static int forward_device(ebm_judge *j, const float *images, int n, char *err, size_t errlen) {
  if (n < 1 || n > j->max_batch) {
    snprintf(err, errlen, "judge batch %d outside 1..%d", n, j->max_batch);
    return -1;
  }
  size_t plane = (size_t)j->R * j->R;
  for (int b = 0; b < n; b++)
    memcpy(j->host_x + (size_t)b * JUDGE_IN_CHANNELS * plane, images + (size_t)b * 3 * plane,
           3 * plane * sizeof(float));
  if (ebm_upload(j->be, io(j, j->io_x), j->host_x, (size_t)n * JUDGE_IN_CHANNELS * plane)) {
    snprintf(err, errlen, "cannot upload the images");
    return -1;
  }
  ebm_fill(j->be, io(j, j->io_c), 0.0f, (size_t)n);
  ebm_ref feat = j->feat = ebm_net_forward_features(j->net, io(j, j->io_x), io(j, j->io_c), n);
  if (!feat.buf) {
    snprintf(err, errlen, "judge forward failed");
    return -1;
  }
  ebm_ref hw = ebm_ref_of(j->head), hb = ebm_at(hw, j->head_b_off);
  for (int k = 0; k < JUDGE_OUTPUTS; k++)
    ebm_head_forward(j->be, io(j, j->io_out + (size_t)k * n), feat,
                     ebm_at(hw, (size_t)k * j->C), ebm_at(hb, (size_t)k), n, j->C, j->Hf * j->Hf);
  return 0;
}

int ebm_judge_feature_dim(const ebm_judge *j) { return j->C; }

int ebm_judge_features(ebm_judge *j, const float *images, int n, float *features, char *err,
                       size_t errlen) {
  if (errlen) err[0] = 0;
  size_t per = (size_t)3 * j->R * j->R, HW = (size_t)j->Hf * j->Hf;
  float *f = malloc((size_t)j->max_batch * j->C * HW * sizeof *f);
  if (!f) {
    snprintf(err, errlen, "out of host memory");
    return -1;
  }
  for (int first = 0; first < n; first += j->max_batch) {
    int m = n - first < j->max_batch ? n - first : j->max_batch;
    if (forward_device(j, images + (size_t)first * per, m, err, errlen) ||
        ebm_download(j->be, f, j->feat, (size_t)m * j->C * HW)) {
      if (!err[0]) snprintf(err, errlen, "backend failed during the judge's forward pass");
      free(f);
      return -1;
    }
    for (int b = 0; b < m; b++)
      for (int c = 0; c < j->C; c++) {
        double s = 0;
        for (size_t p = 0; p < HW; p++) s += f[((size_t)b * j->C + c) * HW + p];
        features[(size_t)(first + b) * j->C + c] = (float)(s / (double)HW);
      }
  }
  free(f);
  return 0;
}

int ebm_judge_forward(ebm_judge *j, const float *images, int n, float *outputs, char *err,
                      size_t errlen) {
  if (forward_device(j, images, n, err, errlen)) return -1;
  if (ebm_download(j->be, j->host_out, io(j, j->io_out), (size_t)JUDGE_OUTPUTS * n)) {
    snprintf(err, errlen, "backend failed during the judge's forward pass");
    return -1;
  }
  for (int b = 0; b < n; b++)
    for (int k = 0; k < JUDGE_OUTPUTS; k++)
      outputs[(size_t)b * JUDGE_OUTPUTS + k] = j->host_out[(size_t)k * n + b];
  return 0;
}

/* Softmax of n logits in double precision into p; returns log-sum-exp. */
static double softmax(const float *z, int n, double *p) {
  double m = z[0];
  for (int i = 1; i < n; i++)
    if (z[i] > m) m = z[i];
  double s = 0;
  for (int i = 0; i < n; i++) s += (p[i] = exp((double)z[i] - m));
  for (int i = 0; i < n; i++) p[i] /= s;
  return m + log(s);
}

static int argmax(const float *z, int n) {
  int a = 0;
  for (int i = 1; i < n; i++)
    if (z[i] > z[a]) a = i;
  return a;
}

void ebm_judge_decode(const float *o, ebm_judge_reading *r) {
  double p[JUDGE_NCOLOURS];
  softmax(o + JUDGE_OUT_SHAPE, JUDGE_NSHAPES, p);
  for (int i = 0; i < JUDGE_NSHAPES; i++) r->shape_prob[i] = (float)p[i];
  softmax(o + JUDGE_OUT_COLOUR, JUDGE_NCOLOURS, p);
  for (int i = 0; i < JUDGE_NCOLOURS; i++) r->colour_prob[i] = (float)p[i];
  r->shape = argmax(o + JUDGE_OUT_SHAPE, JUDGE_NSHAPES);
  r->colour = argmax(o + JUDGE_OUT_COLOUR, JUDGE_NCOLOURS);
  r->x = o[JUDGE_OUT_X];
  r->y = o[JUDGE_OUT_Y];
  r->size = JUDGE_SIZE_MID + JUDGE_SIZE_HALF_RANGE * o[JUDGE_OUT_SIZE];
  r->scene_prob = (float)(1.0 / (1.0 + exp(-(double)o[JUDGE_OUT_SCENE])));
}

int ebm_judge_read(ebm_judge *j, const float *images, int n, ebm_judge_reading *out, char *err,
                   size_t errlen) {
  float *o = malloc((size_t)j->max_batch * JUDGE_OUTPUTS * sizeof *o);
  if (!o) {
    snprintf(err, errlen, "out of host memory");
    return -1;
  }
  size_t per = (size_t)3 * j->R * j->R;
  for (int first = 0; first < n; first += j->max_batch) {
    int m = n - first < j->max_batch ? n - first : j->max_batch;
    if (ebm_judge_forward(j, images + (size_t)first * per, m, o, err, errlen)) {
      free(o);
      return -1;
    }
    for (int b = 0; b < m; b++) ebm_judge_decode(o + (size_t)b * JUDGE_OUTPUTS, &out[first + b]);
  }
  free(o);
  return 0;
}

int ebm_judge_loss_grad(ebm_judge *j, const float *images, const ebm_judge_target *t, int n,
                        ebm_judge_loss *loss, char *err, size_t errlen) {
  if (forward_device(j, images, n, err, errlen)) return -1;
  if (ebm_download(j->be, j->host_out, io(j, j->io_out), (size_t)JUDGE_OUTPUTS * n)) {
    snprintf(err, errlen, "backend failed during the judge's forward pass");
    return -1;
  }
  ebm_judge_loss L = {0};
  const float *o = j->host_out;
  float *d = j->host_dout;
  double inv = 1.0 / n, p[JUDGE_NCOLOURS];
  float z[JUDGE_NCOLOURS];
  int renders = 0;
  for (int b = 0; b < n; b++) renders += t[b].scene != 0;
  double inv_r = renders ? 1.0 / renders : 0.0;
  for (int b = 0; b < n; b++) {
    /* scene: BCE with logit s, dL/ds = (sigmoid(s) - label) / n */
    size_t at_s = (size_t)JUDGE_OUT_SCENE * n + b;
    double sl = o[at_s], label = t[b].scene ? 1.0 : 0.0;
    double sp = 1.0 / (1.0 + exp(-sl));
    /* log(1 + e^-|s|) + max(s, 0) - label s: stable for large |s| */
    L.scene_bce += inv * (log1p(exp(-fabs(sl))) + (sl > 0 ? sl : 0) - label * sl);
    L.scene_acc += inv * ((sp >= 0.5) == (label > 0.5));
    d[at_s] = (float)(inv * (sp - label));
    if (!t[b].scene) {
      for (int k = 0; k < JUDGE_OUT_SCENE; k++) d[(size_t)k * n + b] = 0.0f;
      continue;
    }
    if (t[b].shape < 0 || t[b].shape >= JUDGE_NSHAPES || t[b].colour < 0 ||
        t[b].colour >= JUDGE_NCOLOURS) {
      snprintf(err, errlen, "target %d: shape %d or colour %d out of range", b, t[b].shape,
               t[b].colour);
      return -1;
    }
    /* cross-entropy: dL/dz_i = (p_i - [i == target]) / n */
    for (int i = 0; i < JUDGE_NSHAPES; i++) z[i] = o[(size_t)(JUDGE_OUT_SHAPE + i) * n + b];
    L.shape_ce += inv * (softmax(z, JUDGE_NSHAPES, p) - z[t[b].shape]);
    L.shape_acc += inv_r * (argmax(z, JUDGE_NSHAPES) == t[b].shape);
    for (int i = 0; i < JUDGE_NSHAPES; i++)
      d[(size_t)(JUDGE_OUT_SHAPE + i) * n + b] = (float)(inv * (p[i] - (i == t[b].shape)));
    for (int i = 0; i < JUDGE_NCOLOURS; i++) z[i] = o[(size_t)(JUDGE_OUT_COLOUR + i) * n + b];
    L.colour_ce += inv * (softmax(z, JUDGE_NCOLOURS, p) - z[t[b].colour]);
    L.colour_acc += inv_r * (argmax(z, JUDGE_NCOLOURS) == t[b].colour);
    for (int i = 0; i < JUDGE_NCOLOURS; i++)
      d[(size_t)(JUDGE_OUT_COLOUR + i) * n + b] = (float)(inv * (p[i] - (i == t[b].colour)));
    /* regressions: L = w (pred - target)^2, dL/dpred = 2 w (pred - target) / n */
    double target[3] = {t[b].x, t[b].y, (t[b].size - JUDGE_SIZE_MID) / JUDGE_SIZE_HALF_RANGE};
    for (int r = 0; r < 3; r++) {
      size_t at = (size_t)(JUDGE_OUT_X + r) * n + b;
      double e = (double)o[at] - target[r];
      if (r < 2) L.position_mse += inv * e * e * 0.5; /* mean over the two coordinates */
      else L.size_mse += inv * e * e;
      d[at] = (float)(2.0 * JUDGE_REG_WEIGHT * e * inv);
    }
  }
  L.total = L.shape_ce + L.colour_ce + JUDGE_REG_WEIGHT * (2.0 * L.position_mse + L.size_mse) +
            L.scene_bce;
  if (!isfinite(L.total)) {
    snprintf(err, errlen, "the judge's loss is not finite (training diverged)");
    return -1;
  }
  if (loss) *loss = L;

  ebm_backend *be = j->be;
  ebm_net_zero_grads(j->net);
  ebm_fill(be, ebm_ref_of(j->hgrad), 0.0f, j->head_count);
  if (ebm_upload(be, io(j, j->io_dout), d, (size_t)JUDGE_OUTPUTS * n)) {
    snprintf(err, errlen, "cannot upload the loss gradient");
    return -1;
  }
  ebm_ref feat = j->feat;
  int C = j->C, HW = j->Hf * j->Hf;
  size_t fsz = (size_t)n * C * HW;
  ebm_ref hw = ebm_ref_of(j->head), gw = ebm_ref_of(j->hgrad);
  ebm_ref dfeat = io(j, j->io_dfeat), scratch = io(j, j->io_scratch);
  /* Each head's backward overwrites its input gradient: the first writes dfeat, the others a
   * scratch that is added in, in head order (a fixed-order sum). */
  for (int k = 0; k < JUDGE_OUTPUTS; k++) {
    ebm_head_backward(be, k ? scratch : dfeat, ebm_at(gw, (size_t)k * C),
                      ebm_at(gw, j->head_b_off + (size_t)k), io(j, j->io_dout + (size_t)k * n),
                      feat, ebm_at(hw, (size_t)k * C), n, C, HW);
    if (k) ebm_add(be, dfeat, dfeat, scratch, fsz);
  }
  ebm_net_backward_features(j->net, dfeat, EBM_NOREF, EBM_NOREF, 1, n);
  if (ebm_sync(be)) {
    snprintf(err, errlen, "backend failed during the judge's backward pass");
    return -1;
  }
  return 0;
}

int ebm_judge_train_step(ebm_judge *j, const float *images, const ebm_judge_target *t, int n,
                         float lr, ebm_judge_loss *loss, char *err, size_t errlen) {
  if (ebm_judge_loss_grad(j, images, t, n, loss, err, errlen)) return -1;
  ebm_adam_params hp = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                        .t = j->adam_t + 1, .clip = 0, .grad_scale = 1.0f};
  ebm_ref a = ebm_ref_of(j->adam);
  ebm_adam_step(j->be, ebm_net_params(j->net), ebm_net_grads(j->net), ebm_at(a, j->adam_net_m),
                ebm_at(a, j->adam_net_v), ebm_net_param_count(j->net), &hp);
  ebm_adam_step(j->be, ebm_ref_of(j->head), ebm_ref_of(j->hgrad), ebm_at(a, j->adam_head_m),
                ebm_at(a, j->adam_head_v), j->head_count, &hp);
  if (ebm_sync(j->be)) {
    snprintf(err, errlen, "backend failed during the judge's Adam step");
    return -1;
  }
  j->step++;
  j->adam_t++;
  return 0;
}

/* ---- data --------------------------------------------------------------------------------- */

void ebm_judge_render_batch(const struct scene_spec *spec, uint32_t seed, uint32_t first, int n,
                            int resolution, float *images, ebm_judge_target *targets,
                            int threads) {
  float *packed = malloc((size_t)n * VKEBM_SCENE_FLOATS * sizeof *packed);
  if (!packed) {
    memset(images, 0, (size_t)n * 3 * resolution * resolution * sizeof *images);
    return;
  }
  scene_sample_packed(spec, seed, first, n, packed);
  scene_render_cpu(images, packed, n, resolution, NULL, threads);
  free(packed);
  if (!targets) return;
  for (int b = 0; b < n; b++) {
    scene_desc d;
    scene_sample(spec, seed, first + (uint32_t)b, &d);
    targets[b] = (ebm_judge_target){d.obj[0].shape, d.obj[0].colour, d.obj[0].x, d.obj[0].y,
                                    d.obj[0].size, 1};
  }
}

#define NEG_STREAM 0x4e454741u /* "NEGA" */

const char *ebm_judge_negative_name(int kind) {
  static const char *const names[JUDGE_NEG_KINDS] = {
      "uniform noise", "blocky noise",   "render + noise", "empty floor",
      "colour haze",   "blurred blob",   "two blended",    "object cut by noise"};
  return kind >= 0 && kind < JUDGE_NEG_KINDS ? names[kind] : NULL;
}

/* An empty floor (a general-spec environment, no object) into img[3, R, R]. */
static void render_empty_floor(float *img, int R, uint32_t seed, uint32_t index) {
  scene_spec spec;
  char err[128];
  scene_spec_parse("general", &spec, err, sizeof err);
  scene_desc d;
  scene_sample(&spec, seed ^ 0xf1004u, index, &d);
  d.nobj = 0;
  float packed[VKEBM_SCENE_FLOATS];
  scene_pack(&d, packed);
  scene_render_cpu(img, packed, 1, R, NULL, 0);
}

/* Separable Gaussian blur of each plane of img[3, R, R] with standard deviation sigma (px),
 * clamped at the borders; tmp holds R*R floats. */
static void blur_planes(float *img, int R, float sigma, float *tmp) {
  float w[25];
  int rad = (int)ceilf(2.5f * sigma);
  if (rad > 12) rad = 12;
  float sum = 0;
  for (int k = -rad; k <= rad; k++) sum += w[k + rad] = expf(-0.5f * k * k / (sigma * sigma));
  for (int k = 0; k <= 2 * rad; k++) w[k] /= sum;
  for (int ch = 0; ch < 3; ch++) {
    float *p = img + (size_t)ch * R * R;
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float a = 0;
        for (int k = -rad; k <= rad; k++) {
          int xx = x + k < 0 ? 0 : x + k >= R ? R - 1 : x + k;
          a += w[k + rad] * p[y * R + xx];
        }
        tmp[y * R + x] = a;
      }
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float a = 0;
        for (int k = -rad; k <= rad; k++) {
          int yy = y + k < 0 ? 0 : y + k >= R ? R - 1 : y + k;
          a += w[k + rad] * tmp[yy * R + x];
        }
        p[y * R + x] = a;
      }
  }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

void ebm_judge_make_negative(float *img, const float *other, int R, int kind, uint32_t seed,
                             uint32_t step, uint32_t b, float *scratch) {
  size_t plane = (size_t)R * R;
  u32 base = NEG_STREAM + 0x100u + (u32)b * 16u; /* per-image parameter draws */
  u32 chain = NEG_STREAM + 1u + (u32)b;          /* per-image pixel stream */
#define DRAW(k) vkebm_rng_uniform(seed, step, base, (u32)(k))
  switch (kind) {
  case JUDGE_NEG_UNIFORM:
    for (size_t i = 0; i < 3 * plane; i++) img[i] = vkebm_rng_uniform(seed, step, chain, (u32)i);
    break;
  case JUDGE_NEG_BLOCKY: {
    int block = 2 << (int)(3.0f * DRAW(0)); /* 2, 4, 8 */
    int nb = (R + block - 1) / block;
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < R; y++)
        for (int x = 0; x < R; x++)
          img[ch * plane + (size_t)y * R + x] = vkebm_rng_uniform(
              seed, step, chain, (u32)((ch * nb + y / block) * nb + x / block));
    break;
  }
  case JUDGE_NEG_NOISED: {
    float a = 0.5f + 0.5f * DRAW(0);
    for (size_t i = 0; i < 3 * plane; i++)
      img[i] = (1.0f - a) * img[i] + a * vkebm_rng_uniform(seed, step, chain, (u32)i);
    break;
  }
  case JUDGE_NEG_EMPTY: { /* an empty floor with Gaussian noise of 0 .. 0.2 */
    static const float sigmas[5] = {0.0f, 0.02f, 0.05f, 0.1f, 0.2f};
    float s = sigmas[(int)(5.0f * DRAW(0)) % 5];
    render_empty_floor(img, R, seed, step * 4096u + b);
    for (size_t i = 0; i < 3 * plane; i++)
      img[i] = clamp01(img[i] + s * vkebm_rng_normal(seed, step, chain, (u32)i));
    break;
  }
  case JUDGE_NEG_HAZE: { /* an empty floor tinted toward a palette colour by a smooth bump */
    render_empty_floor(img, R, seed, step * 4096u + b);
    float rgb[3];
    scene_palette_rgb((int)(DRAW(0) * SCENE_NCOLOURS) % SCENE_NCOLOURS, rgb);
    float amax = 0.15f + 0.45f * DRAW(1), rad = R * (0.08f + 0.5f * DRAW(2));
    float cx = R * DRAW(3), cy = R * DRAW(4), s = 0.03f * DRAW(5);
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
        float a = amax * expf(-(dx * dx + dy * dy) / (2.0f * rad * rad));
        for (int ch = 0; ch < 3; ch++) {
          size_t at = ch * plane + (size_t)y * R + x;
          img[at] = clamp01((1.0f - a) * img[at] + a * rgb[ch] +
                            s * vkebm_rng_normal(seed, step, chain, (u32)at));
        }
      }
    break;
  }
  case JUDGE_NEG_BLURRED: { /* the render as a blob without edges */
    blur_planes(img, R, R / 32.0f * (1.5f + 1.5f * DRAW(0)), scratch);
    float s = 0.03f * DRAW(1);
    for (size_t i = 0; i < 3 * plane; i++)
      img[i] = clamp01(img[i] + s * vkebm_rng_normal(seed, step, chain, (u32)i));
    break;
  }
  case JUDGE_NEG_BLENDED: { /* two renders superimposed: ghosts */
    float a = 0.35f + 0.3f * DRAW(0);
    for (size_t i = 0; i < 3 * plane; i++) img[i] = (1.0f - a) * img[i] + a * other[i];
    break;
  }
  case JUDGE_NEG_CUT: { /* part of the object (where the image leaves the floor) is noise */
    float med[3];
    for (int ch = 0; ch < 3; ch++) {
      memcpy(scratch, img + ch * plane, plane * sizeof *scratch);
      qsort(scratch, plane, sizeof *scratch, cmp_float);
      med[ch] = scratch[plane / 2];
    }
    int x0 = R, y0 = R, x1 = -1, y1 = -1;
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        float dev = 0;
        for (int ch = 0; ch < 3; ch++)
          dev = fmaxf(dev, fabsf(img[ch * plane + (size_t)y * R + x] - med[ch]));
        if (dev > 0.08f) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
      }
    if (x1 < 0) x0 = y0 = R / 4, x1 = y1 = 3 * R / 4; /* nothing found: the middle */
    int part = (int)(5.0f * DRAW(0)) % 5;        /* whole box, or one half of it */
    int mx = (x0 + x1 + 1) / 2, my = (y0 + y1 + 1) / 2;
    if (part == 1) x1 = mx; else if (part == 2) x0 = mx;
    else if (part == 3) y1 = my; else if (part == 4) y0 = my;
    float a = 0.6f + 0.4f * DRAW(1);
    for (int ch = 0; ch < 3; ch++)
      for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
          size_t at = ch * plane + (size_t)y * R + x;
          img[at] = (1.0f - a) * img[at] + a * vkebm_rng_uniform(seed, step, chain, (u32)at);
        }
    break;
  }
  default: break;
  }
#undef DRAW
}

int ebm_judge_make_negatives(float *images, ebm_judge_target *targets, int n, int resolution,
                             uint32_t seed, uint32_t step, float fraction) {
  int R = resolution, replaced = 0;
  size_t per = (size_t)3 * R * R;
  /* the blended kind mixes in the next image as it was before any replacement */
  float *orig = malloc((size_t)n * per * sizeof *orig), *scratch = malloc(per * sizeof *scratch);
  if (!orig || !scratch) {
    free(orig);
    free(scratch);
    return -1;
  }
  memcpy(orig, images, (size_t)n * per * sizeof *orig);
  for (int b = 0; b < n; b++) {
    u32 base = (u32)b * 8u;
    if (vkebm_rng_uniform(seed, step, NEG_STREAM, base) >= fraction) continue;
    int kind = (int)(JUDGE_NEG_KINDS * vkebm_rng_uniform(seed, step, NEG_STREAM, base + 1));
    if (kind >= JUDGE_NEG_KINDS) kind = JUDGE_NEG_KINDS - 1;
    ebm_judge_make_negative(images + (size_t)b * per, orig + (size_t)((b + 1) % n) * per, R,
                            kind, seed, step, (uint32_t)b, scratch);
    if (targets) targets[b] = (ebm_judge_target){0, 0, 0, 0, 0, 0};
    replaced++;
  }
  free(orig);
  free(scratch);
  return replaced;
}

int ebm_judge_evaluate(ebm_judge *j, const struct scene_spec *spec, uint32_t seed, int n,
                       int threads, ebm_judge_eval *out, char *err, size_t errlen) {
  int B = j->max_batch, R = j->R;
  size_t per = (size_t)3 * R * R;
  float *img = malloc((size_t)B * per * sizeof *img);
  float *orig = malloc((size_t)B * per * sizeof *orig), *scratch = malloc(per * sizeof *scratch);
  ebm_judge_target *t = malloc((size_t)B * sizeof *t);
  ebm_judge_reading *r = malloc((size_t)B * sizeof *r);
  if (!img || !orig || !scratch || !t || !r) {
    free(orig);
    free(scratch);
    free(img);
    free(t);
    free(r);
    snprintf(err, errlen, "out of host memory");
    return -1;
  }
  memset(out, 0, sizeof *out);
  double se_pos = 0, se_size = 0;
  int rc = 0;
  for (int first = 0; first < n && rc == 0; first += B) {
    int m = n - first < B ? n - first : B;
    ebm_judge_render_batch(spec, seed, (uint32_t)first, m, R, img, t, threads);
    if ((rc = ebm_judge_read(j, img, m, r, err, errlen))) break;
    for (int b = 0; b < m; b++) {
      double ex = fabs(r[b].x - t[b].x), ey = fabs(r[b].y - t[b].y);
      double es = fabs(r[b].size - t[b].size);
      out->shape_acc += r[b].shape == t[b].shape;
      out->colour_acc += r[b].colour == t[b].colour;
      out->pos_mae += ex + ey;
      se_pos += ex * ex + ey * ey;
      if (ex > out->pos_max) out->pos_max = ex;
      if (ey > out->pos_max) out->pos_max = ey;
      out->size_mae += es;
      se_size += es * es;
      out->pos_within_005 += ex <= 0.05 && ey <= 0.05;
      out->size_within_003 += es <= 0.03;
      out->scene_renders += r[b].scene_prob >= 0.5f;
    }
    /* the same scenes turned into each kind of negative in turn */
    memcpy(orig, img, (size_t)m * per * sizeof *img);
    for (int k = 0; k < JUDGE_NEG_KINDS && rc == 0; k++) {
      for (int b = 0; b < m; b++) {
        float *im = img + (size_t)b * per;
        memcpy(im, orig + (size_t)b * per, per * sizeof *im);
        ebm_judge_make_negative(im, orig + (size_t)((b + 1) % m) * per, R, k, seed ^ 0x5eedu,
                                (uint32_t)first, (uint32_t)b, scratch);
      }
      if ((rc = ebm_judge_read(j, img, m, r, err, errlen))) break;
      for (int b = 0; b < m; b++) out->scene_negative_kind[k] += r[b].scene_prob >= 0.5f;
    }
  }
  free(img);
  free(orig);
  free(scratch);
  free(t);
  free(r);
  if (rc) return -1;
  out->n = n;
  for (int k = 0; k < JUDGE_NEG_KINDS; k++) {
    out->scene_negatives += out->scene_negative_kind[k] / JUDGE_NEG_KINDS;
    out->scene_negative_kind[k] /= n;
  }
  out->shape_acc /= n;
  out->colour_acc /= n;
  out->pos_mae /= 2.0 * n;
  out->pos_rmse = sqrt(se_pos / (2.0 * n));
  out->size_mae /= n;
  out->size_rmse = sqrt(se_size / n);
  out->pos_within_005 /= n;
  out->size_within_003 /= n;
  out->scene_renders /= n;
  out->scene_negatives /= n;
  return 0;
}

/* ---- model file --------------------------------------------------------------------------- */

static int is_energy_head(const char *name) {
  return !strcmp(name, "head.weight") || !strcmp(name, "head.bias");
}

int ebm_judge_save(ebm_judge *j, const char *path, char *err, size_t errlen) {
  size_t np = ebm_net_param_count(j->net);
  float *p = malloc(np * sizeof *p), *h = malloc(j->head_count * sizeof *h);
  st_writer *w = st_writer_new();
  int rc = -1;
  if (!p || !h || !w) {
    snprintf(err, errlen, "out of host memory");
    goto done;
  }
  if (ebm_net_get_params(j->net, p, NULL) ||
      ebm_download(j->be, h, ebm_ref_of(j->head), j->head_count)) {
    snprintf(err, errlen, "cannot download the judge's parameters");
    goto done;
  }
  for (int i = 0; i < ebm_net_num_params(j->net); i++) {
    const ebm_param *q = ebm_net_param(j->net, i);
    if (is_energy_head(q->name)) continue;
    int64_t shape[4];
    for (int d = 0; d < q->ndim; d++) shape[d] = q->shape[d];
    if (st_writer_add(w, q->name, shape, q->ndim, p + q->offset)) goto oom;
  }
  int64_t ws[2] = {JUDGE_OUTPUTS, j->C}, bs[1] = {JUDGE_OUTPUTS};
  if (st_writer_add(w, "judge.head.weight", ws, 2, h) ||
      st_writer_add(w, "judge.head.bias", bs, 1, h + j->head_b_off))
    goto oom;
  char v[64], step[32], seed[32];
  snprintf(v, sizeof v, "%d", j->cfg.resolution);
  snprintf(step, sizeof step, "%lld", (long long)j->step);
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)j->seed);
  char bw[16], ic[16];
  snprintf(bw, sizeof bw, "%d", j->cfg.base_width);
  snprintf(ic, sizeof ic, "%d", JUDGE_IN_CHANNELS);
  if (st_writer_meta(w, "format", EBM_JUDGE_FORMAT) ||
      st_writer_meta(w, "format_version", EBM_JUDGE_FORMAT_VERSION) ||
      st_writer_meta(w, "resolution", v) || st_writer_meta(w, "base_width", bw) ||
      st_writer_meta(w, "blocks", j->cfg.blocks) || st_writer_meta(w, "in_channels", ic) ||
      st_writer_meta(w, "outputs",
                     "shape:cube,sphere,cylinder,cone;colour:red,green,blue,yellow,purple,cyan,"
                     "orange,white;x;y;size;scene") ||
      st_writer_meta(w, "size_range", "0.3,0.7") || st_writer_meta(w, "step", step) ||
      st_writer_meta(w, "seed", seed) || st_writer_meta(w, "data_spec", j->data_spec))
    goto oom;
  if (j->has_faithful) {
    char res[64], rat[64];
    snprintf(res, sizeof res, "%.9g,%.9g", j->faithful.residual[0], j->faithful.residual[1]);
    snprintf(rat, sizeof rat, "%.9g,%.9g", j->faithful.ratio[0], j->faithful.ratio[1]);
    if (st_writer_meta(w, "faithful_residual", res) || st_writer_meta(w, "faithful_ratio", rat) ||
        st_writer_meta(w, "faithful_calibration", j->faithful.how))
      goto oom;
  }
  rc = st_writer_save(w, path, err, errlen);
  goto done;
oom:
  snprintf(err, errlen, "out of host memory while building %s", path);
done:
  st_writer_free(w);
  free(p);
  free(h);
  return rc;
}

static int meta_int(const st_file *f, const char *key, long lo, long hi, long *out, char *err,
                    size_t errlen) {
  const char *s = st_meta_get(f, key);
  char *end;
  if (!s) {
    snprintf(err, errlen, "metadata '%s' is missing", key);
    return -1;
  }
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) {
    snprintf(err, errlen, "metadata %s = '%s' is not an integer in %ld..%ld", key, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

/* "a,b": two positive finite floats. */
static int meta_pair(const st_file *f, const char *key, float out[2], char *err, size_t errlen) {
  const char *s = st_meta_get(f, key);
  char *end;
  if (!s) {
    snprintf(err, errlen, "metadata '%s' is missing", key);
    return -1;
  }
  out[0] = strtof(s, &end);
  if (end != s && *end == ',') {
    const char *b = end + 1;
    out[1] = strtof(b, &end);
    if (end != b && !*end && isfinite(out[0]) && isfinite(out[1]) && out[0] > 0 && out[1] > 0)
      return 0;
  }
  snprintf(err, errlen, "metadata %s = '%s' is not two positive numbers 'a,b'", key, s);
  return -1;
}

static int check_tensor(const st_file *f, const char *name, int ndim, const int64_t *shape,
                        const st_tensor **out, char *err, size_t errlen) {
  const st_tensor *t = st_find(f, name);
  if (!t) {
    snprintf(err, errlen, "tensor '%s' is missing", name);
    return -1;
  }
  int ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (!ok) {
    snprintf(err, errlen, "tensor '%s' has the wrong shape", name);
    return -1;
  }
  *out = t;
  return 0;
}

int ebm_judge_load(ebm_judge **out, ebm_backend *be, const char *path, int max_batch, char *err,
                   size_t errlen) {
  *out = NULL;
  st_file f;
  char why[384];
  if (st_read(&f, path, 1, why, sizeof why)) {
    /* the reader's messages name the file already */
    if (strstr(why, path)) snprintf(err, errlen, "%s", why);
    else snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  ebm_judge *j = NULL;
  float *p = NULL, *h = NULL;
  int rc = -1;
  const char *fmt = st_meta_get(&f, "format"), *ver = st_meta_get(&f, "format_version");
  if (!fmt || strcmp(fmt, EBM_JUDGE_FORMAT)) {
    snprintf(why, sizeof why, "not a judge file (format '%s', expected '%s')",
             fmt ? fmt : "(none)", EBM_JUDGE_FORMAT);
    goto fail;
  }
  if (!ver || strcmp(ver, EBM_JUDGE_FORMAT_VERSION)) {
    snprintf(why, sizeof why, "judge format version '%s' is not supported (expected %s)",
             ver ? ver : "(none)", EBM_JUDGE_FORMAT_VERSION);
    goto fail;
  }
  ebm_judge_config cfg = {0};
  long v, ic, step = 0;
  if (meta_int(&f, "resolution", 1, 4096, &v, why, sizeof why)) goto fail;
  cfg.resolution = (int)v;
  if (meta_int(&f, "base_width", 1, 4096, &v, why, sizeof why)) goto fail;
  cfg.base_width = (int)v;
  if (meta_int(&f, "in_channels", 1, 64, &ic, why, sizeof why)) goto fail;
  if (ic != JUDGE_IN_CHANNELS) {
    snprintf(why, sizeof why, "in_channels %ld, expected %d", ic, JUDGE_IN_CHANNELS);
    goto fail;
  }
  const char *blocks = st_meta_get(&f, "blocks");
  if (!blocks || strlen(blocks) >= sizeof cfg.blocks) {
    snprintf(why, sizeof why, "metadata 'blocks' is missing or too long");
    goto fail;
  }
  snprintf(cfg.blocks, sizeof cfg.blocks, "%s", blocks);
  if (st_meta_get(&f, "step") && meta_int(&f, "step", 0, 0x7fffffffL, &step, why, sizeof why))
    goto fail;
  const char *seed = st_meta_get(&f, "seed"), *spec = st_meta_get(&f, "data_spec");
  if (ebm_judge_create(&j, be, &cfg, max_batch, seed ? strtoull(seed, NULL, 10) : 0, why,
                       sizeof why))
    goto fail;
  j->step = step;
  if (spec) snprintf(j->data_spec, sizeof j->data_spec, "%s", spec);
  if (st_meta_get(&f, "faithful_residual") || st_meta_get(&f, "faithful_ratio")) {
    if (meta_pair(&f, "faithful_residual", j->faithful.residual, why, sizeof why) ||
        meta_pair(&f, "faithful_ratio", j->faithful.ratio, why, sizeof why))
      goto fail;
    const char *how = st_meta_get(&f, "faithful_calibration");
    snprintf(j->faithful.how, sizeof j->faithful.how, "%s", how ? how : "(not recorded)");
    j->has_faithful = 1;
  }
  size_t np = ebm_net_param_count(j->net);
  p = calloc(np, sizeof *p);
  h = calloc(j->head_count, sizeof *h);
  if (!p || !h || ebm_net_get_params(j->net, p, NULL)) {
    snprintf(why, sizeof why, "out of memory or backend failure");
    goto fail;
  }
  int expected = 2;
  for (int i = 0; i < ebm_net_num_params(j->net); i++) {
    const ebm_param *q = ebm_net_param(j->net, i);
    if (is_energy_head(q->name)) continue;
    int64_t shape[4];
    for (int d = 0; d < q->ndim; d++) shape[d] = q->shape[d];
    const st_tensor *t;
    if (check_tensor(&f, q->name, q->ndim, shape, &t, why, sizeof why)) goto fail;
    memcpy(p + q->offset, t->data, q->numel * sizeof(float));
    expected++;
  }
  const st_tensor *tw, *tb;
  int64_t ws[2] = {JUDGE_OUTPUTS, j->C}, bs[1] = {JUDGE_OUTPUTS};
  if (check_tensor(&f, "judge.head.weight", 2, ws, &tw, why, sizeof why) ||
      check_tensor(&f, "judge.head.bias", 1, bs, &tb, why, sizeof why))
    goto fail;
  if (f.ntensors != expected) {
    for (int i = 0; i < f.ntensors; i++) {
      const char *n = f.tensors[i].name;
      int known = !strcmp(n, "judge.head.weight") || !strcmp(n, "judge.head.bias");
      for (int k = 0; !known && k < ebm_net_num_params(j->net); k++)
        known = !is_energy_head(n) && !strcmp(n, ebm_net_param(j->net, k)->name);
      if (!known) {
        snprintf(why, sizeof why, "unexpected tensor '%s'", n);
        goto fail;
      }
    }
  }
  memcpy(h, tw->data, (size_t)JUDGE_OUTPUTS * j->C * sizeof(float));
  memcpy(h + j->head_b_off, tb->data, JUDGE_OUTPUTS * sizeof(float));
  if (ebm_net_set_params(j->net, p, NULL) ||
      ebm_upload(be, ebm_ref_of(j->head), h, j->head_count) || ebm_sync(be)) {
    snprintf(why, sizeof why, "cannot upload the parameters");
    goto fail;
  }
  rc = 0;
  *out = j;
  j = NULL;
fail:
  if (rc) snprintf(err, errlen, "%s: %s", path, why);
  ebm_judge_destroy(j);
  free(p);
  free(h);
  st_free(&f);
  return rc;
}
