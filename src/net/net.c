/* net.c: the conditional energy network E(x | c) of include/vkebm/net.h.
 *
 * Owns the network's memory plan and its forward and backward passes. Memory is one backend
 * allocation per role, llm.c style:
 *   params   every parameter, in the order below, each at a multiple of EBM_ALIGN floats
 *   grads    the same layout (dE/dθ accumulates here)
 *   sn_u     the persistent power-iteration vectors u, one per normalised conv
 *   sn       per normalised conv: v [cols], sigma [1], w_sn [rows*cols]
 *   acts     every activation backward needs, sized for max_batch
 *   dacts    activation gradients: two ping-pong slots for the gradient flowing between blocks,
 *            five scratch slots reused inside a block, and one dw_sn scratch for the largest conv
 * and every tensor is an offset into those. Parameter order (names are the model file's):
 *   stem.weight; per block K: blocks.K.conv1.weight, blocks.K.conv2.weight,
 *   [blocks.K.bypass.weight], blocks.K.gb1, blocks.K.gb2, blocks.K.g2, blocks.K.cb2;
 *   head.weight, head.bias.
 * Forward calls the backend ops in order; backward calls their backward twins in reverse.
 */
#include "vkebm/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/shared.h"

/* RNG streams (the `chain` counter) used by initialisation, so init draws never collide with
 * the samplers' streams (which use chain = the chain index). */
#define INIT_STREAM_PARAMS 0x494e4954u /* "INIT" */
#define INIT_STREAM_SN_U 0x534e5555u   /* "SNUU" */
#define SN_WARMUP_ITERS 15

typedef struct conv_layer {
  int param;           /* index of the raw weight in params[] */
  int ci, co;
  ebm_ref w_sn;        /* normalised weight (the raw weight itself when sn is off) */
  ebm_ref u, v, sigma; /* spectral-norm state (unused when sn is off) */
} conv_layer;

typedef struct block_state {
  int cin, cout, H, Ho, down, has_bypass;
  conv_layer conv1, conv2, bypass;
  int gb1, gb2, g2, cb2; /* parameter indices */
  /* activation offsets in acts, each [max_batch, C, H, H] (q and out at Ho) */
  size_t t1, p1, a, t2, p2, b, byp, r, q, out;
} block_state;

struct ebm_net {
  ebm_backend *be;
  ebm_net_config cfg;
  int max_batch;

  int nparams;
  ebm_param params[EBM_MAX_PARAMS];
  size_t param_floats, u_floats, sn_floats, act_floats, dact_floats;
  ebm_buffer *params_buf, *grads_buf, *u_buf, *sn_buf, *act_buf, *dact_buf;

  conv_layer stem;
  block_state blocks[EBM_MAX_BLOCKS];
  int head_w, head_b;
  int head_g, head_cb; /* head_label: GH [L, F], CBH [F] (else -1) */
  int nconv;
  conv_layer *convs[EBM_MAX_PARAMS]; /* every conv, in parameter order */

  size_t stem_pre, stem_out;   /* acts offsets */
  size_t xin;                  /* acts offset: [max_batch, in + 2, R, R] with coord_channels */
  size_t head_in;              /* acts offset: the head's scaled input (head_label) */
  size_t ones;                 /* acts offset: in_channels * R * R ones (in_scale > 0) */
  size_t slot_floats;          /* one dacts slot: max_batch * the largest per-image tensor */
  size_t ping[2], scratch[5];  /* dacts offsets */
  size_t dw_sn_scratch;        /* dacts offset, largest conv weight */

  ebm_ref last_x, last_c;
  int last_B;
};

static size_t align_up(size_t n) { return (n + EBM_ALIGN - 1) / EBM_ALIGN * EBM_ALIGN; }

/* ---- configuration ----------------------------------------------------------------------- */

int ebm_net_config_parse_blocks(ebm_net_config *cfg, const char *spec) {
  int n = 0;
  const char *s = spec;
  if (!s || !*s) return -1;
  for (;;) {
    if (n >= EBM_MAX_BLOCKS) return -1;
    if (*s < '1' || *s > '9') return -1;
    long mult = 0;
    while (*s >= '0' && *s <= '9') {
      mult = mult * 10 + (*s - '0');
      if (mult > 64) return -1;
      s++;
    }
    int down = 0;
    if (*s == 'd') {
      down = 1;
      s++;
    }
    cfg->block_mult[n] = (int)mult;
    cfg->block_down[n] = down;
    n++;
    if (*s == 0) break;
    if (*s != ',') return -1;
    s++;
  }
  cfg->num_blocks = n;
  for (int k = n; k < EBM_MAX_BLOCKS; k++) cfg->block_mult[k] = cfg->block_down[k] = 0;
  return 0;
}

void ebm_net_config_blocks_string(const ebm_net_config *cfg, char *out, size_t len) {
  size_t used = 0;
  if (!len) return;
  out[0] = 0;
  for (int k = 0; k < cfg->num_blocks && k < EBM_MAX_BLOCKS; k++) {
    int w = snprintf(out + used, len - used, "%s%d%s", k ? "," : "", cfg->block_mult[k],
                     cfg->block_down[k] ? "d" : "");
    if (w < 0 || (size_t)w >= len - used) return;
    used += (size_t)w;
  }
}

int ebm_net_config_preset(ebm_net_config *cfg, const char *name, int label_dim) {
  memset(cfg, 0, sizeof *cfg);
  cfg->in_channels = 3;
  cfg->label_dim = label_dim;
  cfg->spectral_norm = 1;
  const char *blocks;
  if (!strcmp(name, "paper64")) {
    /* The paper's CubesNet: 64 -> 4x4x256, ~2.14 M weights, ~1.56 GFLOP per forward pass. */
    cfg->resolution = 64;
    cfg->base_width = 64;
    blocks = "1d,2d,2d,2,4d";
  } else if (!strcmp(name, "default32")) {
    /* 32x32 with the paper's block pattern minus its last block and half its width:
     * ~0.24 M weights, ~89 MFLOP per forward pass (a Langevin step costs twice that), so a
     * 2-core CPU runs a few hundred image-steps per second. */
    cfg->resolution = 32;
    cfg->base_width = 32;
    blocks = "1d,2d,2d,2";
  } else if (!strcmp(name, "small32")) {
    /* default32 at half the width: ~61 K weights, ~22 MFLOP per forward pass, for quick
     * training runs on a laptop-class CPU. */
    cfg->resolution = 32;
    cfg->base_width = 16;
    blocks = "1d,2d,2d,2";
  } else if (!strcmp(name, "tiny")) {
    /* Tests: every block kind (identity and conv bypass, with and without pooling). */
    cfg->resolution = 8;
    cfg->base_width = 4;
    blocks = "1d,2,2d";
  } else {
    return -1;
  }
  return ebm_net_config_parse_blocks(cfg, blocks);
}

int ebm_net_config_validate(const ebm_net_config *cfg, char *err, size_t errlen) {
#define BAD(...)                          \
  do {                                    \
    if (err) snprintf(err, errlen, __VA_ARGS__); \
    return -1;                            \
  } while (0)
  if (cfg->resolution < 1 || cfg->resolution > 1024)
    BAD("resolution %d out of range 1..1024", cfg->resolution);
  if (!(cfg->in_scale >= 0 && cfg->in_scale <= 1000) || !(fabsf(cfg->in_shift) <= 1000))
    BAD("input scale %g / shift %g out of range", (double)cfg->in_scale, (double)cfg->in_shift);
  if (cfg->in_channels < 1 || cfg->in_channels > 64)
    BAD("in_channels %d out of range 1..64", cfg->in_channels);
  if (cfg->base_width < 1 || cfg->base_width > 1024)
    BAD("base_width %d out of range 1..1024", cfg->base_width);
  if (cfg->num_blocks < 1 || cfg->num_blocks > EBM_MAX_BLOCKS)
    BAD("num_blocks %d out of range 1..%d", cfg->num_blocks, EBM_MAX_BLOCKS);
  if (cfg->label_dim < 1 || cfg->label_dim > EBM_MAX_LABEL)
    BAD("label_dim %d out of range 1..%d", cfg->label_dim, EBM_MAX_LABEL);
  if (cfg->spectral_norm != 0 && cfg->spectral_norm != 1)
    BAD("spectral_norm must be 0 or 1, not %d", cfg->spectral_norm);
  int H = cfg->resolution;
  for (int k = 0; k < cfg->num_blocks; k++) {
    if (cfg->block_mult[k] < 1 || cfg->block_mult[k] > 64)
      BAD("block %d: width multiplier %d out of range 1..64", k, cfg->block_mult[k]);
    if (cfg->block_down[k] != 0 && cfg->block_down[k] != 1)
      BAD("block %d: down must be 0 or 1", k);
    if ((long)cfg->base_width * cfg->block_mult[k] > 4096)
      BAD("block %d: %d channels is more than 4096", k, cfg->base_width * cfg->block_mult[k]);
    if (cfg->block_down[k]) {
      if (H % 2)
        BAD("resolution %d is not divisible by 2 at downsampling block %d", cfg->resolution, k);
      H /= 2;
    }
  }
  /* One image's largest activation must stay well inside 32-bit indexing and a 128 MiB
   * storage-buffer binding at batch 1. */
  int C = cfg->base_width;
  H = cfg->resolution;
  for (int k = 0; k < cfg->num_blocks; k++) {
    int co = cfg->base_width * cfg->block_mult[k];
    if (co > C) C = co;
  }
  if ((double)C * H * H > 8.0 * 1024 * 1024)
    BAD("activations of %d channels at %dx%d are too large", C, H, H);
  return 0;
#undef BAD
}

int ebm_net_config_equal(const ebm_net_config *a, const ebm_net_config *b) {
  if (a->resolution != b->resolution || a->in_channels != b->in_channels ||
      a->base_width != b->base_width || a->num_blocks != b->num_blocks ||
      a->label_dim != b->label_dim || a->spectral_norm != b->spectral_norm ||
      a->head_flatten != b->head_flatten || a->coord_channels != b->coord_channels ||
      a->head_label != b->head_label || a->in_shift != b->in_shift || a->in_scale != b->in_scale)
    return 0;
  for (int k = 0; k < a->num_blocks && k < EBM_MAX_BLOCKS; k++)
    if (a->block_mult[k] != b->block_mult[k] || a->block_down[k] != b->block_down[k]) return 0;
  return 1;
}

void ebm_net_config_describe(const ebm_net_config *cfg, char *out, size_t len) {
  char blocks[64];
  ebm_net_config_blocks_string(cfg, blocks, sizeof blocks);
  char norm[64] = "";
  if (cfg->in_scale > 0)
    snprintf(norm, sizeof norm, " in=(x-%.3g)*%.3g", (double)cfg->in_shift, (double)cfg->in_scale);
  snprintf(out, len, "R=%d W=%d blocks=%s L=%d sn=%d%s%s%s%s", cfg->resolution, cfg->base_width,
           blocks, cfg->label_dim, cfg->spectral_norm, cfg->coord_channels ? " coords" : "",
           cfg->head_flatten ? " head=flatten" : "", cfg->head_label ? " head-label" : "", norm);
}

/* FLOPs counted: the multiply-adds of every convolution and of the head's linear layer
 * (2 FLOPs each). Elementwise work (swish, the label bias/scale, pooling, the mean pool) is
 * under 1% of the total for every preset and is not counted, as in the usual conv-net tallies. */
double ebm_net_forward_flops(const ebm_net_config *cfg) {
  double macs = 0;
  double H = cfg->resolution;
  int cin = cfg->base_width;
  macs += (double)(cfg->in_channels + 2 * cfg->coord_channels) * cin * 9 * H * H;
  for (int k = 0; k < cfg->num_blocks; k++) {
    int cout = cfg->base_width * cfg->block_mult[k];
    macs += (double)cin * cout * 9 * H * H;  /* conv1 */
    macs += (double)cout * cout * 9 * H * H; /* conv2 */
    if (cin != cout) macs += (double)cin * cout * 9 * H * H; /* bypass */
    if (cfg->block_down[k]) H /= 2;
    cin = cout;
  }
  macs += cfg->head_flatten ? cin * H * H : cin; /* head */
  return 2.0 * macs;
}

/* ---- the memory plan --------------------------------------------------------------------- */

static int add_param(ebm_net *net, const char *name, ebm_param_kind kind, int ndim, const int *shape) {
  if (net->nparams >= EBM_MAX_PARAMS) return -1;
  ebm_param *p = &net->params[net->nparams];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->kind = kind;
  p->ndim = ndim;
  p->numel = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = shape[i];
    p->numel *= (size_t)shape[i];
  }
  p->offset = net->param_floats;
  net->param_floats += align_up(p->numel);
  p->sn_index = -1;
  return net->nparams++;
}

static int add_conv(ebm_net *net, conv_layer *layer, const char *name, int ci, int co) {
  int shape[4] = {co, ci, 3, 3};
  int i = add_param(net, name, EBM_PARAM_CONV, 4, shape);
  if (i < 0) return -1;
  layer->param = i;
  layer->ci = ci;
  layer->co = co;
  net->convs[net->nconv] = layer;
  if (net->cfg.spectral_norm) {
    ebm_param *p = &net->params[i];
    p->sn_index = net->nconv;
    p->sn_rows = co;
    p->sn_u_offset = net->u_floats;
    net->u_floats += align_up((size_t)co);
  }
  net->nconv++;
  return 0;
}

static int add_label_params(ebm_net *net, block_state *blk, int k) {
  char name[48];
  int L = net->cfg.label_dim;
  int s1[2] = {L, blk->cin}, s2[2] = {L, blk->cout}, s3[1] = {blk->cout};
  snprintf(name, sizeof name, "blocks.%d.gb1", k);
  if ((blk->gb1 = add_param(net, name, EBM_PARAM_LABEL, 2, s1)) < 0) return -1;
  snprintf(name, sizeof name, "blocks.%d.gb2", k);
  if ((blk->gb2 = add_param(net, name, EBM_PARAM_LABEL, 2, s2)) < 0) return -1;
  snprintf(name, sizeof name, "blocks.%d.g2", k);
  if ((blk->g2 = add_param(net, name, EBM_PARAM_LABEL, 2, s2)) < 0) return -1;
  snprintf(name, sizeof name, "blocks.%d.cb2", k);
  if ((blk->cb2 = add_param(net, name, EBM_PARAM_VEC, 1, s3)) < 0) return -1;
  return 0;
}

/* Lays out params, sn state, activations and activation gradients (no allocation). */
static int plan(ebm_net *net) {
  const ebm_net_config *cfg = &net->cfg;
  size_t B = (size_t)net->max_batch;
  int R = cfg->resolution, W = cfg->base_width;
  const int Ci = cfg->in_channels + 2 * cfg->coord_channels; /* what the stem reads */
  size_t largest = (size_t)Ci * R * R; /* per image, floats */
  char name[48];

  if (add_conv(net, &net->stem, "stem.weight", Ci, W)) return -1;
  if (cfg->in_scale > 0) {
    net->ones = net->act_floats;
    net->act_floats += align_up((size_t)cfg->in_channels * R * R);
  }
  if (cfg->coord_channels || cfg->in_scale > 0) { /* the stem's input, built in forward */
    net->xin = net->act_floats;
    net->act_floats += align_up(B * Ci * R * R);
  }
  net->stem_pre = net->act_floats;
  net->act_floats += align_up(B * W * R * R);
  net->stem_out = net->act_floats;
  net->act_floats += align_up(B * W * R * R);
  if ((size_t)W * R * R > largest) largest = (size_t)W * R * R;

  int cin = W, H = R;
  for (int k = 0; k < cfg->num_blocks; k++) {
    block_state *blk = &net->blocks[k];
    blk->cin = cin;
    blk->cout = W * cfg->block_mult[k];
    blk->H = H;
    blk->down = cfg->block_down[k];
    blk->Ho = blk->down ? H / 2 : H;
    blk->has_bypass = blk->cin != blk->cout;
    snprintf(name, sizeof name, "blocks.%d.conv1.weight", k);
    if (add_conv(net, &blk->conv1, name, blk->cin, blk->cout)) return -1;
    snprintf(name, sizeof name, "blocks.%d.conv2.weight", k);
    if (add_conv(net, &blk->conv2, name, blk->cout, blk->cout)) return -1;
    if (blk->has_bypass) {
      snprintf(name, sizeof name, "blocks.%d.bypass.weight", k);
      if (add_conv(net, &blk->bypass, name, blk->cin, blk->cout)) return -1;
    }
    if (add_label_params(net, blk, k)) return -1;

    size_t in_sz = (size_t)blk->cin * H * H, out_sz = (size_t)blk->cout * H * H;
    size_t pooled = (size_t)blk->cout * blk->Ho * blk->Ho;
    size_t *slots[] = {&blk->t1, &blk->p1, &blk->a, &blk->t2, &blk->p2, &blk->b, &blk->byp, &blk->r};
    size_t sizes[] = {in_sz, out_sz, out_sz, out_sz, out_sz, out_sz, blk->has_bypass ? out_sz : 0, out_sz};
    for (int i = 0; i < 8; i++) {
      *slots[i] = net->act_floats;
      net->act_floats += align_up(B * sizes[i]);
    }
    if (blk->down) {
      blk->q = net->act_floats;
      net->act_floats += align_up(B * pooled);
    } else {
      blk->q = blk->r;
    }
    blk->out = net->act_floats;
    net->act_floats += align_up(B * pooled);
    if (in_sz > largest) largest = in_sz;
    if (out_sz > largest) largest = out_sz;
    cin = blk->cout;
    H = blk->Ho;
  }
  int sh[1] = {net->cfg.head_flatten ? cin * H * H : cin}, one[1] = {1};
  if ((net->head_w = add_param(net, "head.weight", EBM_PARAM_VEC, 1, sh)) < 0) return -1;
  if ((net->head_b = add_param(net, "head.bias", EBM_PARAM_SCALAR, 1, one)) < 0) return -1;
  net->head_g = net->head_cb = -1;
  if (cfg->head_label) {
    int shg[2] = {cfg->label_dim, sh[0]};
    if ((net->head_g = add_param(net, "head.label_gain", EBM_PARAM_LABEL, 2, shg)) < 0) return -1;
    if ((net->head_cb = add_param(net, "head.label_base", EBM_PARAM_VEC, 1, sh)) < 0) return -1;
    net->head_in = net->act_floats;
    net->act_floats += align_up(B * (size_t)cin * H * H);
  }

  /* sn state: v, sigma, w_sn per conv */
  size_t largest_w = 0;
  for (int i = 0; i < net->nconv; i++) {
    size_t rows = (size_t)net->convs[i]->co, cols = (size_t)net->convs[i]->ci * 9;
    if (rows * cols > largest_w) largest_w = rows * cols;
    if (!cfg->spectral_norm) continue;
    net->sn_floats += align_up(cols) + align_up(1) + align_up(rows * cols);
  }

  net->slot_floats = align_up(B * largest);
  for (int i = 0; i < 2; i++) net->ping[i] = (size_t)i * net->slot_floats;
  for (int i = 0; i < 5; i++) net->scratch[i] = (size_t)(2 + i) * net->slot_floats;
  net->dw_sn_scratch = 7 * net->slot_floats;
  net->dact_floats = 7 * net->slot_floats + (cfg->spectral_norm ? align_up(largest_w) : 0);
  return 0;
}

size_t ebm_net_config_num_weights(const ebm_net_config *cfg) {
  ebm_net *net = calloc(1, sizeof *net);
  if (!net) return 0;
  net->cfg = *cfg;
  net->max_batch = 1;
  size_t n = 0;
  if (plan(net) == 0)
    for (int i = 0; i < net->nparams; i++) n += net->params[i].numel;
  free(net);
  return n;
}

int ebm_net_config_params(const ebm_net_config *cfg, ebm_param *out, size_t *act_floats) {
  if (ebm_net_config_validate(cfg, NULL, 0)) return -1;
  ebm_net *net = calloc(1, sizeof *net);
  if (!net) return -1;
  net->cfg = *cfg;
  net->max_batch = 1;
  int n = plan(net) == 0 ? net->nparams : -1;
  if (n > 0 && out) memcpy(out, net->params, (size_t)n * sizeof *out);
  if (act_floats) *act_floats = net->act_floats + net->dact_floats;
  free(net);
  return n;
}

int ebm_net_config_convs(const ebm_net_config *cfg, ebm_conv_info *out, int max) {
  ebm_net *net = calloc(1, sizeof *net);
  if (!net) return -1;
  net->cfg = *cfg;
  net->max_batch = 1;
  int n = -1;
  if (plan(net) == 0) {
    n = net->nconv;
    for (int i = 0; i < n && i < max; i++) {
      const conv_layer *c = net->convs[i];
      snprintf(out[i].name, sizeof out[i].name, "%s", net->params[c->param].name);
      out[i].ci = c->ci;
      out[i].co = c->co;
      out[i].size = cfg->resolution; /* the stem; blocks below */
      for (int k = 0; k < cfg->num_blocks; k++) {
        const block_state *b = &net->blocks[k];
        if (c == &b->conv1 || c == &b->conv2 || c == &b->bypass) out[i].size = b->H;
      }
    }
  }
  free(net);
  return n;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static ebm_ref pref(ebm_net *net, int i) {
  return ebm_at(ebm_ref_of(net->params_buf), net->params[i].offset);
}
static ebm_ref gref(ebm_net *net, int i) {
  return ebm_at(ebm_ref_of(net->grads_buf), net->params[i].offset);
}
static ebm_ref aref(ebm_net *net, size_t off) { return ebm_at(ebm_ref_of(net->act_buf), off); }
static ebm_ref dref(ebm_net *net, size_t off) { return ebm_at(ebm_ref_of(net->dact_buf), off); }

/* Host-side initialisation from the seed (see net.h for the distributions). */
static void init_params(ebm_net *net, float *host, float *host_u, uint64_t seed) {
  u32 s = (u32)seed ^ (u32)(seed >> 32);
  for (int i = 0; i < net->nparams; i++) {
    const ebm_param *p = &net->params[i];
    float *w = host + p->offset;
    if (p->kind == EBM_PARAM_CONV) {
      /* Kaiming-uniform for swish/ReLU-like units: U(-sqrt(6/fan_in), +sqrt(6/fan_in)). */
      float bound = sqrtf(6.0f / (float)(p->shape[1] * 9));
      for (size_t j = 0; j < p->numel; j++)
        w[j] = bound * (2.0f * vkebm_rng_uniform(s, (u32)i, INIT_STREAM_PARAMS, (u32)j) - 1.0f);
      if (p->sn_index >= 0) {
        float *u = host_u + p->sn_u_offset;
        double norm = 0;
        for (int r = 0; r < p->sn_rows; r++) {
          u[r] = vkebm_rng_normal(s, (u32)i, INIT_STREAM_SN_U, (u32)r);
          norm += (double)u[r] * u[r];
        }
        norm = sqrt(norm) + 1e-12;
        for (int r = 0; r < p->sn_rows; r++) u[r] = (float)(u[r] / norm);
      }
    } else if (i == net->head_w) {
      float bound = 1.0f / sqrtf((float)p->shape[0]);
      for (size_t j = 0; j < p->numel; j++)
        w[j] = bound * (2.0f * vkebm_rng_uniform(s, (u32)i, INIT_STREAM_PARAMS, (u32)j) - 1.0f);
    } else if (strstr(p->name, ".cb2") || i == net->head_cb) {
      for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
    } else {
      /* gb1, gb2, g2 and the head bias start at zero. */
      for (size_t j = 0; j < p->numel; j++) w[j] = 0.0f;
    }
  }
}

/* The constant planes of every image slot of xin: X = 2 (x + 0.5) / R - 1 (left to right),
 * Y = 1 - 2 (y + 0.5) / R (top to bottom), after the in_channels image planes. */
static int fill_coordinates(ebm_net *net) {
  const ebm_net_config *cfg = &net->cfg;
  int R = cfg->resolution, Ci = cfg->in_channels + 2;
  size_t plane = (size_t)R * R;
  float *xy = malloc(2 * plane * sizeof *xy);
  if (!xy) return -1;
  for (int y = 0; y < R; y++)
    for (int x = 0; x < R; x++) {
      xy[(size_t)y * R + x] = 2.0f * ((float)x + 0.5f) / (float)R - 1.0f;
      xy[plane + (size_t)y * R + x] = 1.0f - 2.0f * ((float)y + 0.5f) / (float)R;
    }
  int rc = 0;
  for (int b = 0; b < net->max_batch && rc == 0; b++)
    rc = ebm_upload(net->be, aref(net, net->xin + ((size_t)b * Ci + cfg->in_channels) * plane), xy,
                    2 * plane);
  free(xy);
  return rc;
}

int ebm_net_create(ebm_net **out, ebm_backend *be, const ebm_net_config *cfg, int max_batch,
                   uint64_t seed, char *err, size_t errlen) {
  *out = NULL;
  if (ebm_net_config_validate(cfg, err, errlen)) return -1;
  if (max_batch < 1 || max_batch > 65536) {
    snprintf(err, errlen, "max_batch %d out of range 1..65536", max_batch);
    return -1;
  }
  ebm_net *net = calloc(1, sizeof *net);
  if (!net) {
    snprintf(err, errlen, "out of host memory");
    return -1;
  }
  net->be = be;
  net->cfg = *cfg;
  net->max_batch = max_batch;
  if (plan(net)) {
    snprintf(err, errlen, "configuration needs more than %d parameter tensors", EBM_MAX_PARAMS);
    free(net);
    return -1;
  }
  /* Buffers of zero floats are not allowed; sn-free nets still get a 1-float u/sn buffer. */
  struct {
    ebm_buffer **buf;
    size_t n;
    const char *role;
  } roles[] = {{&net->params_buf, net->param_floats, "parameters"},
               {&net->grads_buf, net->param_floats, "gradients"},
               {&net->u_buf, net->u_floats ? net->u_floats : 1, "spectral-norm vectors"},
               {&net->sn_buf, net->sn_floats ? net->sn_floats : 1, "spectral-norm state"},
               {&net->act_buf, net->act_floats, "activations"},
               {&net->dact_buf, net->dact_floats, "activation gradients"}};
  for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
    *roles[i].buf = ebm_alloc(be, roles[i].n);
    if (!*roles[i].buf) {
      snprintf(err, errlen, "cannot allocate %s (%.1f MiB) for max_batch %d", roles[i].role,
               roles[i].n * 4.0 / (1 << 20), max_batch);
      ebm_net_destroy(net);
      return -1;
    }
  }
  /* Wire the convs' refs: w_sn and sn state, or the raw weight when sn is off. */
  size_t sn_off = 0;
  for (int i = 0; i < net->nconv; i++) {
    conv_layer *c = net->convs[i];
    const ebm_param *p = &net->params[c->param];
    if (!cfg->spectral_norm) {
      c->w_sn = pref(net, c->param);
      continue;
    }
    size_t rows = (size_t)c->co, cols = (size_t)c->ci * 9;
    c->u = ebm_at(ebm_ref_of(net->u_buf), p->sn_u_offset);
    c->v = ebm_at(ebm_ref_of(net->sn_buf), sn_off);
    sn_off += align_up(cols);
    c->sigma = ebm_at(ebm_ref_of(net->sn_buf), sn_off);
    sn_off += align_up(1);
    c->w_sn = ebm_at(ebm_ref_of(net->sn_buf), sn_off);
    sn_off += align_up(rows * cols);
  }

  float *host = calloc(net->param_floats, sizeof *host);
  float *host_u = calloc(net->u_floats ? net->u_floats : 1, sizeof *host_u);
  if (!host || !host_u) {
    free(host);
    free(host_u);
    snprintf(err, errlen, "out of host memory");
    ebm_net_destroy(net);
    return -1;
  }
  init_params(net, host, host_u, seed);
  int rc = ebm_upload(be, ebm_ref_of(net->params_buf), host, net->param_floats);
  if (rc == 0 && net->u_floats) rc = ebm_upload(be, ebm_ref_of(net->u_buf), host_u, net->u_floats);
  free(host);
  free(host_u);
  if (rc == 0 && cfg->coord_channels) rc = fill_coordinates(net);
  if (rc == 0 && cfg->in_scale > 0)
    ebm_fill(be, aref(net, net->ones), 1.0f, (size_t)cfg->in_channels * cfg->resolution * cfg->resolution);
  if (rc) {
    snprintf(err, errlen, "cannot upload the initial parameters");
    ebm_net_destroy(net);
    return -1;
  }
  /* Converge u, then make w_sn a function of (w, u) as stored, so a saved and reloaded net
   * (which computes w_sn from the saved u with update_u = 0) gives the same energies. */
  for (int it = 0; it < SN_WARMUP_ITERS; it++) ebm_net_refresh(net, 1);
  ebm_net_refresh(net, 0);
  ebm_net_zero_grads(net);
  if (ebm_sync(be)) {
    snprintf(err, errlen, "backend failed while initialising the network");
    ebm_net_destroy(net);
    return -1;
  }
  *out = net;
  return 0;
}

void ebm_net_destroy(ebm_net *net) {
  if (!net) return;
  ebm_free(net->be, net->dact_buf);
  ebm_free(net->be, net->act_buf);
  ebm_free(net->be, net->sn_buf);
  ebm_free(net->be, net->u_buf);
  ebm_free(net->be, net->grads_buf);
  ebm_free(net->be, net->params_buf);
  free(net);
}

const ebm_net_config *ebm_net_config_of(const ebm_net *net) { return &net->cfg; }
ebm_backend *ebm_net_backend(const ebm_net *net) { return net->be; }
int ebm_net_max_batch(const ebm_net *net) { return net->max_batch; }
int ebm_net_num_params(const ebm_net *net) { return net->nparams; }
const ebm_param *ebm_net_param(const ebm_net *net, int i) {
  return i >= 0 && i < net->nparams ? &net->params[i] : NULL;
}
size_t ebm_net_param_count(const ebm_net *net) { return net->param_floats; }
ebm_ref ebm_net_params(ebm_net *net) { return ebm_ref_of(net->params_buf); }
ebm_ref ebm_net_grads(ebm_net *net) { return ebm_ref_of(net->grads_buf); }
ebm_ref ebm_net_sn_u(ebm_net *net) { return ebm_ref_of(net->u_buf); }
size_t ebm_net_sn_u_count(const ebm_net *net) { return net->u_floats; }

int ebm_net_set_params(ebm_net *net, const float *params, const float *sn_u) {
  if (ebm_upload(net->be, ebm_ref_of(net->params_buf), params, net->param_floats)) return -1;
  if (sn_u && net->u_floats && ebm_upload(net->be, ebm_ref_of(net->u_buf), sn_u, net->u_floats))
    return -1;
  ebm_net_refresh(net, 0);
  return 0;
}

int ebm_net_get_params(ebm_net *net, float *params, float *sn_u) {
  if (params && ebm_download(net->be, params, ebm_ref_of(net->params_buf), net->param_floats))
    return -1;
  if (sn_u && net->u_floats && ebm_download(net->be, sn_u, ebm_ref_of(net->u_buf), net->u_floats))
    return -1;
  return 0;
}

void ebm_net_refresh(ebm_net *net, int update_u) {
  if (!net->cfg.spectral_norm) return;
  for (int i = 0; i < net->nconv; i++) {
    conv_layer *c = net->convs[i];
    ebm_spectral_norm_forward(net->be, c->w_sn, c->u, c->v, c->sigma, pref(net, c->param), c->co,
                              c->ci * 9, update_u);
  }
}

void ebm_net_zero_grads(ebm_net *net) {
  ebm_fill(net->be, ebm_ref_of(net->grads_buf), 0.0f, net->param_floats);
}

/* ---- forward ----------------------------------------------------------------------------- */

void ebm_net_forward(ebm_net *net, ebm_ref energy, ebm_ref x, ebm_ref c, int B) {
  ebm_ref h = ebm_net_forward_features(net, x, c, B);
  if (!h.buf) return;
  const block_state *last = &net->blocks[net->cfg.num_blocks - 1];
  int C = last->cout, HW = last->Ho * last->Ho;
  if (net->cfg.head_flatten) C *= HW, HW = 1; /* a linear map of every feature */
  if (net->cfg.head_label) { /* h * (c·GH + CBH): a label gain per head input */
    ebm_cond_scale_forward(net->be, aref(net, net->head_in), h, c, pref(net, net->head_g),
                           pref(net, net->head_cb), B, C, HW, net->cfg.label_dim);
    h = aref(net, net->head_in);
  }
  ebm_head_forward(net->be, energy, h, pref(net, net->head_w), pref(net, net->head_b), B, C, HW);
}

void ebm_net_feature_shape(const ebm_net *net, int *C, int *H) {
  const block_state *last = &net->blocks[net->cfg.num_blocks - 1];
  if (C) *C = last->cout;
  if (H) *H = last->Ho;
}

ebm_ref ebm_net_forward_features(ebm_net *net, ebm_ref x, ebm_ref c, int B) {
  ebm_backend *be = net->be;
  const ebm_net_config *cfg = &net->cfg;
  int R = cfg->resolution, W = cfg->base_width, L = cfg->label_dim;
  if (B < 1 || B > net->max_batch) {
    /* The slots are sized for max_batch: a larger batch would overwrite its neighbours. */
    fprintf(stderr, "vkebm: ebm_net_forward: batch %d outside 1..%d; nothing computed\n", B,
            net->max_batch);
    net->last_B = 0;
    return EBM_NOREF;
  }
  net->last_x = x;
  net->last_c = c;
  net->last_B = B;

  /* with coordinate planes, the stem reads [x, X, Y]: x goes into the first planes of each
   * image's slot (the coordinates were written once, at creation) */
  const int Ci = cfg->in_channels + 2 * cfg->coord_channels;
  if (cfg->coord_channels || cfg->in_scale > 0) {
    size_t n = (size_t)cfg->in_channels * R * R, slot = (size_t)Ci * R * R;
    const float a = cfg->in_scale > 0 ? cfg->in_scale : 1.0f;
    if (cfg->coord_channels) {
      for (int b = 0; b < B; b++)
        ebm_scale(be, aref(net, net->xin + b * slot), a, ebm_at(x, b * n), n);
    } else {
      ebm_scale(be, aref(net, net->xin), a, x, (size_t)B * n);
    }
    if (cfg->in_scale > 0) /* (x - shift) * a = a x - a shift: the image planes += -a shift */
      for (int b = 0; b < B; b++)
        ebm_axpy(be, aref(net, net->xin + b * slot), -a * cfg->in_shift, aref(net, net->ones), n);
    x = net->last_x = aref(net, net->xin);
  }
  /* h0 = swish(conv_sn(x)) */
  ebm_conv3x3_forward(be, aref(net, net->stem_pre), x, net->stem.w_sn, B, Ci, W, R, R);
  ebm_swish_forward(be, aref(net, net->stem_out), aref(net, net->stem_pre), (size_t)B * W * R * R);
  ebm_ref h = aref(net, net->stem_out);

  for (int k = 0; k < cfg->num_blocks; k++) {
    block_state *blk = &net->blocks[k];
    int H = blk->H, HW = H * H, ci = blk->cin, co = blk->cout;
    size_t n_out = (size_t)B * co * HW;
    /* a = swish(conv1(h + c·GB1)) */
    ebm_cond_bias_forward(be, aref(net, blk->t1), h, c, pref(net, blk->gb1), B, ci, HW, L);
    ebm_conv3x3_forward(be, aref(net, blk->p1), aref(net, blk->t1), blk->conv1.w_sn, B, ci, co, H, H);
    ebm_swish_forward(be, aref(net, blk->a), aref(net, blk->p1), n_out);
    /* b = conv2(a + c·GB2) * (c·G2 + CB2) */
    ebm_cond_bias_forward(be, aref(net, blk->t2), aref(net, blk->a), c, pref(net, blk->gb2), B, co,
                          HW, L);
    ebm_conv3x3_forward(be, aref(net, blk->p2), aref(net, blk->t2), blk->conv2.w_sn, B, co, co, H, H);
    ebm_cond_scale_forward(be, aref(net, blk->b), aref(net, blk->p2), c, pref(net, blk->g2),
                           pref(net, blk->cb2), B, co, HW, L);
    /* r = b + bypass(h) */
    if (blk->has_bypass) {
      ebm_conv3x3_forward(be, aref(net, blk->byp), h, blk->bypass.w_sn, B, ci, co, H, H);
      ebm_add(be, aref(net, blk->r), aref(net, blk->b), aref(net, blk->byp), n_out);
    } else {
      ebm_add(be, aref(net, blk->r), aref(net, blk->b), h, n_out);
    }
    /* out = swish(avgpool2?(r)) */
    if (blk->down) ebm_avgpool2_forward(be, aref(net, blk->q), aref(net, blk->r), B, co, H, H);
    ebm_swish_forward(be, aref(net, blk->out), aref(net, blk->q),
                      (size_t)B * co * blk->Ho * blk->Ho);
    h = aref(net, blk->out);
  }
  return h;
}

/* ---- backward ---------------------------------------------------------------------------- */

/* dθ for one conv given its output gradient dy and its input x: through the spectral norm
 * (dw_sn into a scratch, then dw += (dw_sn - <dw_sn, w_sn> u v^T) / sigma) or straight in. */
static void conv_weight_grad(ebm_net *net, const conv_layer *layer, ebm_ref dy, ebm_ref x, int B,
                             int H) {
  ebm_backend *be = net->be;
  if (!net->cfg.spectral_norm) {
    ebm_conv3x3_backward_weight(be, gref(net, layer->param), dy, x, B, layer->ci, layer->co, H, H);
    return;
  }
  int rows = layer->co, cols = layer->ci * 9;
  ebm_ref scratch = dref(net, net->dw_sn_scratch);
  ebm_fill(be, scratch, 0.0f, (size_t)rows * cols);
  ebm_conv3x3_backward_weight(be, scratch, dy, x, B, layer->ci, layer->co, H, H);
  ebm_spectral_norm_backward(be, gref(net, layer->param), scratch, layer->w_sn, layer->u, layer->v,
                             layer->sigma, rows, cols);
}

static void trunk_backward(ebm_net *net, ebm_ref g, ebm_ref dx, ebm_ref dc, int pg, int B,
                           int zero_dc);

void ebm_net_backward(ebm_net *net, ebm_ref dE, ebm_ref dx, ebm_ref dc, int param_grads, int B) {
  ebm_backend *be = net->be;
  const ebm_net_config *cfg = &net->cfg;
  int pg = param_grads != 0;
  if (B < 1 || B != net->last_B) {
    fprintf(stderr, "vkebm: ebm_net_backward: batch %d does not match the last forward's %d; "
                    "nothing computed\n", B, net->last_B);
    return;
  }
  const block_state *last = &net->blocks[cfg->num_blocks - 1];
  ebm_ref g = dref(net, net->ping[0]); /* dE/d(block output), flowing backwards */
  int C = last->cout, HW = last->Ho * last->Ho;
  if (cfg->head_flatten) C *= HW, HW = 1;
  if (dc.buf) ebm_fill(be, dc, 0.0f, (size_t)B * cfg->label_dim); /* accumulated from here on */
  if (!cfg->head_label) {
    ebm_head_backward(be, g, pg ? gref(net, net->head_w) : EBM_NOREF,
                      pg ? gref(net, net->head_b) : EBM_NOREF, dE, aref(net, last->out),
                      pref(net, net->head_w), B, C, HW);
  } else { /* dE/d(head input) into a scratch slot, then through the label gain into g */
    ebm_ref s = dref(net, net->scratch[0]);
    ebm_head_backward(be, s, pg ? gref(net, net->head_w) : EBM_NOREF,
                      pg ? gref(net, net->head_b) : EBM_NOREF, dE, aref(net, net->head_in),
                      pref(net, net->head_w), B, C, HW);
    ebm_cond_scale_backward(be, g, pg ? gref(net, net->head_g) : EBM_NOREF,
                            pg ? gref(net, net->head_cb) : EBM_NOREF, dc, s, aref(net, last->out),
                            net->last_c, pref(net, net->head_g), pref(net, net->head_cb), B, C,
                            HW, cfg->label_dim);
  }
  trunk_backward(net, g, dx, dc, pg, B, 0);
}

void ebm_net_backward_features(ebm_net *net, ebm_ref dfeat, ebm_ref dx, ebm_ref dc,
                               int param_grads, int B) {
  if (B < 1 || B != net->last_B) {
    fprintf(stderr, "vkebm: ebm_net_backward_features: batch %d does not match the last "
                    "forward's %d; nothing computed\n", B, net->last_B);
    return;
  }
  const block_state *last = &net->blocks[net->cfg.num_blocks - 1];
  ebm_ref g = dref(net, net->ping[0]);
  /* The trunk reads its incoming gradient from the ping slot (and ping-pongs through it). */
  ebm_scale(net->be, g, 1.0f, dfeat, (size_t)B * last->cout * last->Ho * last->Ho);
  trunk_backward(net, g, dx, dc, param_grads != 0, B, 1);
}

/* Backward through the blocks and the stem from g = dE/d(last block output), which lives in
 * the ping[0] slot. dc (optional) is accumulated (zeroed first when zero_dc). */
static void trunk_backward(ebm_net *net, ebm_ref g, ebm_ref dx, ebm_ref dc, int pg, int B,
                           int zero_dc) {
  ebm_backend *be = net->be;
  const ebm_net_config *cfg = &net->cfg;
  int R = cfg->resolution, W = cfg->base_width, L = cfg->label_dim;
  ebm_ref c = net->last_c;
  int want_dc = dc.buf != NULL;
  if (want_dc && zero_dc) ebm_fill(be, dc, 0.0f, (size_t)B * L);
  int ping = 0;

  ebm_ref S[5];
  for (int i = 0; i < 5; i++) S[i] = dref(net, net->scratch[i]);
  for (int k = cfg->num_blocks - 1; k >= 0; k--) {
    const block_state *blk = &net->blocks[k];
    int H = blk->H, HW = H * H, ci = blk->cin, co = blk->cout;
    size_t n_out = (size_t)B * co * HW;
    ebm_ref h = k ? aref(net, net->blocks[k - 1].out) : aref(net, net->stem_out);
    /* out = swish(q): dq -> S0;  q = avgpool(r): dr -> S1 (or dr = dq) */
    ebm_swish_backward(be, S[0], g, aref(net, blk->q), (size_t)B * co * blk->Ho * blk->Ho);
    ebm_ref dr = S[0];
    if (blk->down) {
      ebm_avgpool2_backward(be, S[1], S[0], B, co, H, H);
      dr = S[1];
    }
    /* r = b + bypass(h): the bypass's input gradient -> S2 */
    if (blk->has_bypass) {
      ebm_conv3x3_backward_input(be, S[2], dr, blk->bypass.w_sn, B, ci, co, H, H);
      if (pg) conv_weight_grad(net, &blk->bypass, dr, h, B, H);
    }
    /* b = p2 * (c·G2 + CB2): dp2 -> S3 */
    ebm_cond_scale_backward(be, S[3], pg ? gref(net, blk->g2) : EBM_NOREF,
                            pg ? gref(net, blk->cb2) : EBM_NOREF, dc, dr, aref(net, blk->p2), c,
                            pref(net, blk->g2), pref(net, blk->cb2), B, co, HW, L);
    /* p2 = conv2(t2): dt2 -> S4;  t2 = a + c·GB2: da = dt2 */
    ebm_conv3x3_backward_input(be, S[4], S[3], blk->conv2.w_sn, B, co, co, H, H);
    if (pg) conv_weight_grad(net, &blk->conv2, S[3], aref(net, blk->t2), B, H);
    if (pg || want_dc)
      ebm_cond_bias_backward(be, pg ? gref(net, blk->gb2) : EBM_NOREF, dc, S[4], c,
                             pref(net, blk->gb2), B, co, HW, L);
    /* a = swish(p1): dp1 -> S3;  p1 = conv1(t1): dt1 -> S4;  t1 = h + c·GB1: dh_main = dt1 */
    ebm_swish_backward(be, S[3], S[4], aref(net, blk->p1), n_out);
    ebm_conv3x3_backward_input(be, S[4], S[3], blk->conv1.w_sn, B, ci, co, H, H);
    if (pg) conv_weight_grad(net, &blk->conv1, S[3], aref(net, blk->t1), B, H);
    if (pg || want_dc)
      ebm_cond_bias_backward(be, pg ? gref(net, blk->gb1) : EBM_NOREF, dc, S[4], c,
                             pref(net, blk->gb1), B, ci, HW, L);
    /* dh = dh_main + dh_bypass */
    ping ^= 1;
    g = dref(net, net->ping[ping]);
    ebm_add(be, g, S[4], blk->has_bypass ? S[2] : dr, (size_t)B * ci * HW);
  }
  /* h0 = swish(conv_sn(x)) */
  ebm_swish_backward(be, S[0], g, aref(net, net->stem_pre), (size_t)B * W * R * R);
  const int Ci = cfg->in_channels + 2 * cfg->coord_channels;
  if (dx.buf && !cfg->coord_channels && !(cfg->in_scale > 0))
    ebm_conv3x3_backward_input(be, dx, S[0], net->stem.w_sn, B, Ci, W, R, R);
  if (dx.buf && (cfg->coord_channels || cfg->in_scale > 0)) {
    /* the image planes of d[x', X, Y], times the input scale (S1 is free here) */
    const float a = cfg->in_scale > 0 ? cfg->in_scale : 1.0f;
    ebm_conv3x3_backward_input(be, S[1], S[0], net->stem.w_sn, B, Ci, W, R, R);
    size_t n = (size_t)cfg->in_channels * R * R, slot = (size_t)Ci * R * R;
    if (cfg->coord_channels)
      for (int b = 0; b < B; b++) ebm_scale(be, ebm_at(dx, b * n), a, ebm_at(S[1], b * slot), n);
    else
      ebm_scale(be, dx, a, S[1], (size_t)B * n);
  }
  if (pg) conv_weight_grad(net, &net->stem, S[0], net->last_x, B, R);
}
