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
int ebm_judge_max_batch(const ebm_judge *j) { return j->max_batch; }
int64_t ebm_judge_step(const ebm_judge *j) { return j->step; }
uint64_t ebm_judge_seed(const ebm_judge *j) { return j->seed; }
const char *ebm_judge_data_spec(const ebm_judge *j) { return j->data_spec; }
void ebm_judge_set_provenance(ebm_judge *j, uint64_t seed, const char *data_spec) {
  j->seed = seed;
  snprintf(j->data_spec, sizeof j->data_spec, "%s", data_spec);
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

int ebm_judge_make_negatives(float *images, ebm_judge_target *targets, int n, int resolution,
                             uint32_t seed, uint32_t step, float fraction) {
  int R = resolution, replaced = 0;
  size_t plane = (size_t)R * R;
  for (int b = 0; b < n; b++) {
    u32 base = (u32)b * 8u;
    if (vkebm_rng_uniform(seed, step, NEG_STREAM, base) >= fraction) continue;
    float kind = vkebm_rng_uniform(seed, step, NEG_STREAM, base + 1);
    float *img = images + (size_t)b * 3 * plane;
    u32 chain = NEG_STREAM + 1u + (u32)b; /* per-image pixel stream */
    if (kind < 1.0f / 3.0f) {
      for (size_t i = 0; i < 3 * plane; i++) img[i] = vkebm_rng_uniform(seed, step, chain, (u32)i);
    } else if (kind < 2.0f / 3.0f) {
      int block = 2 << (int)(3.0f * vkebm_rng_uniform(seed, step, NEG_STREAM, base + 2)); /* 2,4,8 */
      int nb = (R + block - 1) / block;
      for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < R; y++)
          for (int x = 0; x < R; x++)
            img[ch * plane + (size_t)y * R + x] = vkebm_rng_uniform(
                seed, step, chain, (u32)((ch * nb + y / block) * nb + x / block));
    } else {
      float a = 0.5f + 0.5f * vkebm_rng_uniform(seed, step, NEG_STREAM, base + 3);
      for (size_t i = 0; i < 3 * plane; i++)
        img[i] = (1.0f - a) * img[i] + a * vkebm_rng_uniform(seed, step, chain, (u32)i);
    }
    if (targets) targets[b] = (ebm_judge_target){0, 0, 0, 0, 0, 0};
    replaced++;
  }
  return replaced;
}

int ebm_judge_evaluate(ebm_judge *j, const struct scene_spec *spec, uint32_t seed, int n,
                       int threads, ebm_judge_eval *out, char *err, size_t errlen) {
  int B = j->max_batch, R = j->R;
  float *img = malloc((size_t)B * 3 * R * R * sizeof *img);
  ebm_judge_target *t = malloc((size_t)B * sizeof *t);
  ebm_judge_reading *r = malloc((size_t)B * sizeof *r);
  if (!img || !t || !r) {
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
    /* the same scenes, every one turned into a negative */
    ebm_judge_make_negatives(img, NULL, m, R, seed ^ 0x5eedu, (uint32_t)first, 1.0f);
    if ((rc = ebm_judge_read(j, img, m, r, err, errlen))) break;
    for (int b = 0; b < m; b++) out->scene_negatives += r[b].scene_prob >= 0.5f;
  }
  free(img);
  free(t);
  free(r);
  if (rc) return -1;
  out->n = n;
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
