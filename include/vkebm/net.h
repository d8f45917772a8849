/* net.h: the conditional energy network E(x | c) (Du, Li, Mordatch 2020, "CubesNet").
 *
 * Knows nothing of Langevin dynamics or of which backend runs: it calls the ops of backend.h in
 * order. Owns one allocation per role (llm.c style): params, grads, spectral-norm state
 * (u, v, sigma, normalised weights), activations, activation gradients. Tensors are offsets
 * into those; the model file has the same flat, named layout.
 *
 * Architecture (docs/recipe.md §1), for resolution R, base width W, blocks k = 0..n-1:
 *   h0 = swish(conv3x3_sn(x; 3 -> W))                                  [B, W, R, R]
 *        (with in_scale > 0, x is first standardised: (x - in_shift) * in_scale)
 *        (with coord_channels, x is [x, X, Y]: 5 -> W, X and Y constant coordinate planes)
 *   block k (cin -> cout = W * mult[k], down[k]):
 *     a   = swish(conv1_sn(h + c·GB1))                                 GB1: [L, cin]
 *     b   = conv2_sn(a + c·GB2) * (c·G2 + CB2)                         GB2: [L, cout], G2: [L, cout], CB2: [cout]
 *     out = swish(avgpool2?(b + bypass(h)))     bypass = conv3x3_sn (cin -> cout) when cin != cout, else h
 *   e  = head(mean_pool(h_n))  (linear C -> 1 with bias, not spectrally normalised); with
 *        head_flatten, e = head(h_n) over all C*H*H features (the same op with HW = 1); with
 *        head_label, the head reads h_n * (c·GH + CBH), a label gain per head input
 * Initialisation: conv weights Kaiming-uniform-like (fan_in), GB1 = GB2 = 0, G2 = 0, CB2 = 1,
 * head w ~ U(-1/sqrt(C), 1/sqrt(C)), bias 0. (docs/recipe.md starts G2 at 1 and CB2 at 0; for a
 * one-hot label both give a scale of exactly 1 at init, but for a continuous label such as a
 * position, c·1 can be 0 and would silence the block: G2 = 0, CB2 = 1 is the same function for
 * one-hot labels and a sane one for raw floats.)
 */
#ifndef VKEBM_NET_H
#define VKEBM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/backend.h"

#define EBM_MAX_BLOCKS 8
#define EBM_MAX_PARAMS 64
#define EBM_MAX_LABEL 64

typedef struct ebm_net_config {
  int resolution;            /* input H = W; a multiple of 2^(number of downsampling blocks) */
  int in_channels;           /* 3 */
  int base_width;            /* stem output channels */
  int num_blocks;            /* <= EBM_MAX_BLOCKS */
  int block_mult[EBM_MAX_BLOCKS]; /* block k outputs base_width * block_mult[k] channels */
  int block_down[EBM_MAX_BLOCKS]; /* 1: 2x2 average pool at the end of block k */
  int label_dim;             /* L: length of the label vector c (>= 1) */
  int spectral_norm;         /* 1: conv weights spectrally normalised (one power iteration) */
  int coord_channels;        /* 1: two constant planes (x from -1 at the left to +1 at the
                                right, y from +1 at the top to -1 at the bottom: CoordConv, as
                                the judge's) are appended to the input inside the network, so
                                the stem reads in_channels + 2 and callers still pass
                                [B, in_channels, R, R] */
  int head_flatten;          /* 0: e = head(mean_pool(h_n)), the paper's; 1: e = a linear map of
                                the whole last feature map [C, H, H] (keeps where things are:
                                a mean pool throws away absolute position) */
  int head_label;            /* 1: the head reads the last features scaled by a label gain,
                                e = head(h_n * (c·GH + CBH)) (GH: [L, F] from 0, CBH: [F] from
                                1, F the head's inputs): E(x | c) then differs between labels
                                by a linear map of the features, as a classifier's logits do,
                                so a label-contrastive term has a direct path (docs/training.md) */
  float in_shift, in_scale;  /* in_scale > 0: the network reads (x - in_shift) * in_scale
                                (standardised pixels: renders are ~94 % flat floor, so raw
                                [0, 1] pixels give features that barely vary between images);
                                0: x as given */
} ebm_net_config;

/* Presets. "paper64": the paper's 64x64 CubesNet (W=64; blocks 1d,2d,2d,2,4d; 2.14 M weights,
 * 1.56 GFLOP/forward). "default32": the shipped 32x32 configuration sized for a 2-core CPU
 * (W=32; 1d,2d,2d,2; 0.24 M weights, 89 MFLOP). "small32": the same at W=16 (61 K weights,
 * 22 MFLOP) for quick training. "tiny": tests (R=8, W=4, 1d,2,2d). 0, or -1 for an unknown name. */
int ebm_net_config_preset(ebm_net_config *cfg, const char *name, int label_dim);
/* Parses "1d,2d,2d,2,4d" into block_mult/block_down; returns 0 or -1. */
int ebm_net_config_parse_blocks(ebm_net_config *cfg, const char *spec);
/* Checks sizes and divisibility; 0 or -1 with a reason. */
int ebm_net_config_validate(const ebm_net_config *cfg, char *err, size_t errlen);
/* Analytic FLOPs (multiply-add = 2) of one forward pass for one image. */
double ebm_net_forward_flops(const ebm_net_config *cfg);
/* Writes e.g. "R=32 W=32 blocks=1d,2d,2d,2 L=2 sn=1". */
void ebm_net_config_describe(const ebm_net_config *cfg, char *out, size_t len);
/* Writes the block spec, e.g. "1d,2d,2d,2" (the inverse of ebm_net_config_parse_blocks). */
void ebm_net_config_blocks_string(const ebm_net_config *cfg, char *out, size_t len);
/* Number of trainable floats (the sum of every parameter's numel, no alignment padding). */
size_t ebm_net_config_num_weights(const ebm_net_config *cfg);
/* The parameter tensors cfg implies (names, shapes, spectral-norm rows) without allocating
 * anything: fills out[0..n) (room for EBM_MAX_PARAMS; NULL to only count) and returns n, or -1
 * for an invalid configuration. act_floats (optional): activation and activation-gradient
 * floats one image needs (what ebm_net_create allocates per unit of max_batch). Lets a loader
 * check a file's tensors, and what the file asks for, before building the network. */
typedef struct ebm_param ebm_param;
int ebm_net_config_params(const ebm_net_config *cfg, ebm_param *out, size_t *act_floats);
/* The network's 3x3 convolutions in parameter order: name (the weight's), channels and the
 * (square) size they run at. Writes at most max, returns how many there are (-1 on a bad
 * config). For `vkebm devices --config`, which prints each one's path on the cpu backend. */
typedef struct ebm_conv_info {
  char name[48];
  int ci, co, size;
} ebm_conv_info;
int ebm_net_config_convs(const ebm_net_config *cfg, ebm_conv_info *out, int max);
/* 1 when two configurations describe the same network (every field equal). */
int ebm_net_config_equal(const ebm_net_config *a, const ebm_net_config *b);

typedef enum ebm_param_kind {
  EBM_PARAM_CONV = 0,  /* [Co, Ci, 3, 3], spectrally normalised when cfg.spectral_norm */
  EBM_PARAM_LABEL = 1, /* [L, C] label-linear maps GB1, GB2, G2 */
  EBM_PARAM_VEC = 2,   /* [C] CB2, head weight */
  EBM_PARAM_SCALAR = 3,/* [1] head bias */
} ebm_param_kind;

struct ebm_param {
  char name[48];       /* safetensors name, e.g. "blocks.1.conv2.weight" */
  ebm_param_kind kind;
  int ndim;
  int shape[4];
  size_t offset;       /* floats into the params (and grads) allocation */
  size_t numel;
  int sn_index;        /* index into the spectral-norm state, -1 when not normalised */
  size_t sn_u_offset;  /* floats into ebm_net_sn_u where this weight's u[sn_rows] starts */
  int sn_rows;         /* length of u (= Co), 0 when not normalised */
};

typedef struct ebm_net ebm_net; /* opaque */

/* Allocates everything for batches up to max_batch. Parameters start initialised from seed. */
int ebm_net_create(ebm_net **out, ebm_backend *be, const ebm_net_config *cfg, int max_batch,
                   uint64_t seed, char *err, size_t errlen);
void ebm_net_destroy(ebm_net *net);

const ebm_net_config *ebm_net_config_of(const ebm_net *net);
ebm_backend *ebm_net_backend(const ebm_net *net);
int ebm_net_max_batch(const ebm_net *net);
int ebm_net_num_params(const ebm_net *net);
const ebm_param *ebm_net_param(const ebm_net *net, int i);
size_t ebm_net_param_count(const ebm_net *net); /* total floats */
ebm_ref ebm_net_params(ebm_net *net);           /* the flat parameter tensor */
ebm_ref ebm_net_grads(ebm_net *net);            /* same layout */
/* Spectral-norm persistent vectors u, concatenated in parameter order ([rows] each). */
ebm_ref ebm_net_sn_u(ebm_net *net);
size_t ebm_net_sn_u_count(const ebm_net *net);
/* Layout note: every tensor (each parameter, each u) starts at a multiple of EBM_ALIGN floats
 * (256 bytes, which satisfies any device's minStorageBufferOffsetAlignment), so the flat
 * tensors contain zero padding between tensors: ebm_net_param_count and ebm_net_sn_u_count
 * include it, the model file does not (it stores tensors by name). Padding stays zero: its
 * gradient is always zero. */
#define EBM_ALIGN 64

/* Host copies in/out of the whole parameter tensor (and u; sn_u may be NULL to leave u as is).
 * set_params also recomputes the normalised weights (ebm_net_refresh(net, 0)). 0 or -1. */
int ebm_net_set_params(ebm_net *net, const float *params, const float *sn_u);
int ebm_net_get_params(ebm_net *net, float *params, float *sn_u);

/* Recompute the normalised weights from the parameters: one power iteration per weight.
 * update_u = 1 advances the persistent vectors (training), 0 keeps them (sampling). Must be
 * called after the parameters change and before forward. ebm_net_create runs 15 iterations
 * with update_u = 1 from a random u (as PyTorch's parametrized spectral_norm does at
 * construction), so sigma starts converged rather than a one-step underestimate, and then one
 * with update_u = 0, so w_sn is the function of (w, u) that a reloaded model computes.
 * After training with update_u = 1, call it once with update_u = 0 before saving to have the
 * saved model's energies match the live network's bit for bit. */
void ebm_net_refresh(ebm_net *net, int update_u);

/* energy[B] = E(x | c).  x: [B, 3, R, R] in [0, 1];  c: [B, L].  B <= max_batch.
 * Keeps the activations for backward, and the refs x and c themselves: backward reads them, so
 * the caller must not change x or c between forward and backward. */
void ebm_net_forward(ebm_net *net, ebm_ref energy, ebm_ref x, ebm_ref c, int B);

/* Forward with B outside 1..max_batch, or backward with a B other than the last forward's,
 * prints one line on stderr and computes nothing. */
/* Backward from dE[B] (usually all ones, or the composition's weights) through the last
 * forward. dx [B,3,R,R] (overwritten) and dc [B,L] (overwritten) are optional (EBM_NOREF);
 * param_grads = 1 accumulates dE/dθ into ebm_net_grads (+=), spectral norm included. */
void ebm_net_backward(ebm_net *net, ebm_ref dE, ebm_ref dx, ebm_ref dc, int param_grads, int B);

void ebm_net_zero_grads(ebm_net *net);

/* The trunk without the energy head, for networks that put their own head on the features
 * (the judge, include/vkebm/judge.h). forward_features runs everything up to the last block's
 * output and returns a ref to it ([B, C, H, H] with C, H from ebm_net_feature_shape; valid until
 * the next forward), or EBM_NOREF when B is out of range. backward_features back-propagates
 * dfeat (same shape; read only) through the trunk exactly as ebm_net_backward does from the
 * head: dx, dc optional, param_grads accumulates into ebm_net_grads (head.* get nothing). */
ebm_ref ebm_net_forward_features(ebm_net *net, ebm_ref x, ebm_ref c, int B);
void ebm_net_backward_features(ebm_net *net, ebm_ref dfeat, ebm_ref dx, ebm_ref dc,
                               int param_grads, int B);
void ebm_net_feature_shape(const ebm_net *net, int *C, int *H);

#endif /* VKEBM_NET_H */
