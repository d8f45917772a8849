/* cmd_train.c: `vkebm train`: contrastive-divergence training of one concept model.
 *
 *   vkebm train --concept color --data general --size 32 --steps N -o models/color.safetensors
 *
 * A thin consumer of include/vkebm/train.h: parses flags into an ebm_train_config, runs
 * ebm_trainer_step in a loop, writes metrics.csv, a progress line, checkpoints every K steps
 * and on SIGINT/SIGTERM (then exits 130), and the EMA model at the end. Exit codes: 0 done,
 * 1 runtime failure or divergence (the last good checkpoint is kept), 2 usage, 77 no Vulkan
 * device, 130 interrupted (after saving).
 *
 * Under `mpirun -np N` (docs/distributed.md; src/cli/cli_dist.c) every rank runs this with the
 * same flags and trains its slice of the batch; rank 0 alone prints progress and writes the
 * metrics, checkpoints, preview and model. Every rank calls the checkpoint save (it gathers the
 * replay buffer), and the ranks agree each iteration on whether a signal asked them to stop.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_dist.h"
#include "vkebm/fileio.h"
#include "vkebm/image.h"
#include "vkebm/net.h"
#include "vkebm/scene.h"
#include "vkebm/train.h"

#define CMD_NAME "train"

static volatile sig_atomic_t g_stop_signal;
static void on_signal(int sig) { g_stop_signal = sig; }

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm train --concept C -o OUT.safetensors [options]\n"
          "       vkebm train --resume CKPT -o OUT.safetensors [--steps N]\n\n"
          "Trains the energy model E(x | c) of one concept by contrastive divergence\n"
          "(Langevin negatives from a replay buffer, Adam, EMA weights; docs/training.md).\n"
          "Data parallel: `mpirun -np N vkebm train ...` trains one model on N ranks, one\n"
          "device each; --batch is per rank, rank 0 writes the files (docs/distributed.md).\n\n"
          "recipe (the defaults the flags below change):\n"
          "  --recipe R           practical (default): what trains in hours on a CPU: small32\n"
          "                       with coordinate planes, the flatten head and standardised\n"
          "                       pixels, 20 Langevin steps of 10, noise 0.005, buffer 1000,\n"
          "                       lr 5e-4, --ema 0, flat chain\n"
          "                       starts (docs/training.md); or paper: the paper's code. The\n"
          "                       defaults listed below are the paper's\n"
          "data and model:\n"
          "  --concept C          position | size | shape | color, or joint: one model of\n"
          "                       all four (label x,y,size,shape one-hot,colour one-hot; the\n"
          "                       baseline of docs/experiments.md, it cannot compose); with\n"
          "                       --data celeba:DIR an attribute of the data set (Smiling,\n"
          "                       Male, ...), label no/yes\n"
          "  --data SPEC          scene spec rendered each iteration, default general\n"
          "                       (%s),\n"
          "                       or celeba:DIR: CelebA's DIR/list_attr_celeba.txt and\n"
          "                       DIR/img_align_celeba/ (JPEG or PNG), centre-cropped and\n"
          "                       resized to --size, all in memory\n"
          "  --data-dir DIR       read positives from a `vkebm data` folder instead\n"
          "  --size PX            image size (default: the preset's)\n"
          "  --config PRESET      tiny | small32 | default32 | paper64 (default: small32 for\n"
          "                       the practical recipe, default32 for the paper's)\n"
          "  --width W            override the base width\n"
          "  --blocks SPEC        override the blocks, e.g. 1d,2d,2d,2\n"
          "  --head mean|flatten  energy head: a linear map of the mean-pooled last features\n"
          "                       (default, the paper's) or of the whole last feature map\n"
          "                       (keeps where things are)\n"
          "  --coords             append two coordinate planes (x, y in [-1, 1]) to the\n"
          "                       network's input (CoordConv), so it can tell where it is\n"
          "  --input-norm         the network reads standardised pixels ((x - mean) / std,\n"
          "                       fitted to 256 positives when training starts; recorded;\n"
          "                       the practical recipe's); --no-input-norm: raw [0, 1] pixels\n"
          "  --label-head         scale the head's inputs by a label gain (c·GH + CBH), so\n"
          "                       energies differ between labels as a classifier's logits\n"
          "                       do (pairs with --label-weight)\n"
          "training:\n"
          "  --steps N            total iterations (default 10000)\n"
          "  --batch B            default 16\n"
          "  --lr X               Adam learning rate, default 3e-4 (beta1 0, beta2 0.99)\n"
          "  --no-adam-clip       disable the per-element clip +-(3 sqrt(vhat) + 0.1)\n"
          "  --grad-clip X        clip the global gradient norm to X (default off)\n"
          "  --langevin-steps K   default 60\n"
          "  --step-size X        Langevin gradient step eta, default 100 (--step-lr: old name)\n"
          "  --noise X            Langevin noise sigma, default 0.001\n"
          "  --replay P           chains started from the buffer, default 0.95\n"
          "  --buffer N           replay buffer images, default 10000\n"
          "  --reservoir          reservoir sampling into the buffer (default: ring)\n"
          "  --chain-init I       fresh chains: uniform (noise in [0,1], the paper's; default)\n"
          "                       or data (a per-channel Gaussian fitted to 256 positives,\n"
          "                       recorded in the model so samplers start the same way)\n"
          "                       or flat (flat images, colour from a Gaussian fitted to the\n"
          "                       positives' mean colours: an empty floor to grow objects on)\n"
          "  --alpha X            energy-squared regulariser, default 1\n"
          "  --label-weight W     label-contrastive term: W * cross-entropy of softmax(-E(x+|c)/T)\n"
          "                       over candidate labels (every one-hot label; for position and\n"
          "                       size the true one and --label-negatives drawn outside the\n"
          "                       evaluation tolerance), default 0 (off, the paper's CD)\n"
          "  --label-temp T       its temperature, default 0.01\n"
          "  --label-negatives K  its wrong labels per positive for position/size, default 4\n"
          "  --sample-steps N     sampler steps recorded in the model, which `sample` and\n"
          "                       `eval` default to (default 5 x --langevin-steps)\n"
          "  --ema D              EMA decay of the sampling weights, default 0.99 (0 = off)\n"
          "  --frozen MODEL=LABEL add a frozen model into the sampler (continual learning);\n"
          "                       LABEL: data | a label name | comma-separated numbers\n"
          "  --seed S             default 1\n"
          "  --max-energy X       stop as diverged when |mean E| exceeds X, default 1e4\n"
          "files:\n"
          "  -o, --output FILE    the trained model (EMA weights), written at the end; a new run\n"
          "                       refuses an existing file unless --force\n"
          "  --force              replace an existing -o\n"
          "  --checkpoint FILE    default OUT with .ckpt.safetensors\n"
          "  --checkpoint-every K default 500 (also on SIGINT/SIGTERM, then exit 130)\n"
          "  --resume FILE        continue a checkpoint (its settings win; --steps may extend)\n"
          "  --init MODEL         start from a trained model's weights (same concept; the\n"
          "                       network comes from the file) with fresh Adam moments and\n"
          "                       buffer, on this run's data: fine-tuning, e.g. a joint model\n"
          "                       stage by stage (docs/experiments.md)\n"
          "  --metrics FILE       CSV per step, default OUT with .metrics.csv\n"
          "  --log-every K        progress lines when stderr is not a terminal, default 50\n"
          "  --preview FILE.png   a grid of the current negatives, at every checkpoint\n"
          "  --backend B          auto | cpu | vulkan (default auto)\n"
          "  -q, --quiet          no progress output\n"
          "  -h, --help\n",
          scene_spec_usage());
}

/* OUT minus a ".safetensors" suffix, plus suffix. */
static void derived_path(char *out, size_t len, const char *base, const char *suffix) {
  size_t n = strlen(base);
  const char *ext = ".safetensors";
  size_t el = strlen(ext);
  if (n > el && !strcmp(base + n - el, ext)) n -= el;
  snprintf(out, len, "%.*s%s", (int)n, base, suffix);
}

/* Creates the folders above path (mkdir -p of its dirname). 0 or -1. */
static int make_parent_dirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf) return 0;
  *slash = 0;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Rewrites metrics (atomically) keeping the comment and header lines and the rows of steps up
 * to step; *time_s receives the last kept row's time_s (0 when none). 0 or -1 with err. */
static int continue_metrics(const char *path, int64_t step, double *time_s, char *err,
                            size_t errlen) {
  void *data;
  size_t n;
  if (io_read_file(path, (size_t)1 << 30, &data, &n, err, errlen)) return -1;
  char *text = data, *out = malloc(n + 1);
  size_t used = 0;
  *time_s = 0;
  if (!out) {
    free(data);
    return snprintf(err, errlen, "%.200s: out of memory", path), -1;
  }
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
    long long row_step;
    double t;
    int is_row = sscanf(line, "%lld,%lf", &row_step, &t) == 2;
    if (!is_row || row_step <= step) {
      memcpy(out + used, line, len);
      used += len;
      if (is_row) *time_s = t;
    }
    line += len;
  }
  int rc = n == used ? 0 : io_write_atomic(path, out, used, err, errlen);
  free(out);
  free(data);
  return rc;
}

static void format_duration(char *out, size_t len, double s) {
  if (!isfinite(s) || s < 0) {
    snprintf(out, len, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(out, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) snprintf(out, len, "%ldm%02lds", t / 60, t % 60);
  else snprintf(out, len, "%lds", t);
}

/* Rank 0's outputs before the first step: the folders, stale temporaries of killed writers, and
 * metrics.csv opened (a resumed run continues it from the checkpoint's step: rows after it,
 * steps the interrupted run did after its last checkpoint and which are about to be redone, are
 * dropped, and time_s goes on from the last kept row, so the file reads as one run). 0 or an
 * exit code after printing why. */
static int open_outputs(const char *out, const char *ckpt, const char *metrics, const char *resume,
                        int64_t start, double *time_offset, FILE **mf) {
  char err[1024];
  const char *dirs_for[] = {out, ckpt, metrics};
  for (int i = 0; i < 3; i++)
    if (make_parent_dirs(dirs_for[i]) != 0)
      return cli_fail(CMD_NAME, "cannot create the folder of %s: %s", dirs_for[i], strerror(errno));
  io_clean_stale_temps(out);
  io_clean_stale_temps(ckpt);
  struct stat st;
  int metrics_exists = stat(metrics, &st) == 0 && st.st_size > 0;
  if (resume && metrics_exists &&
      continue_metrics(metrics, start, time_offset, err, sizeof err) != 0)
    return cli_fail(CMD_NAME, "%s", err);
  *mf = fopen(metrics, resume && metrics_exists ? "a" : "w");
  if (!*mf) return cli_fail(CMD_NAME, "cannot write %s: %s", metrics, strerror(errno));
  if (!(resume && metrics_exists))
    fprintf(*mf, "# vkebm train metrics v1\nstep,time_s,loss,e_pos,e_neg,grad_norm,steps_per_s,label_ce,label_acc\n");
  return 0;
}

enum {
  O_CONCEPT = 256, O_DATA, O_DATA_DIR, O_SIZE, O_CONFIG, O_WIDTH, O_BLOCKS, O_HEAD, O_COORDS, O_LABEL_HEAD, O_INPUT_NORM, O_NO_INPUT_NORM, O_FORCE, O_STEPS, O_BATCH,
  O_LR, O_NO_ADAM_CLIP, O_GRAD_CLIP, O_LSTEPS, O_STEP_LR, O_NOISE, O_REPLAY, O_BUFFER,
  O_RESERVOIR, O_ALPHA, O_EMA, O_LABEL_W, O_LABEL_T, O_LABEL_K, O_SAMPLE_STEPS, O_FROZEN, O_SEED, O_CKPT, O_CKPT_EVERY, O_RESUME, O_METRICS,
  O_LOG_EVERY, O_BACKEND, O_MAX_ENERGY, O_PREVIEW, O_CHAIN_INIT, O_RECIPE, O_INIT
};

/* --init: the trained (or fine-tuned) model's parameters and spectral-norm vectors into the
 * fresh trainer's network, and its EMA copy when there is one. */
static int init_from_model(ebm_trainer *tr, ebm_backend *be, const char *path, char *err,
                           size_t errlen) {
  ebm_net *loaded = NULL, *net = ebm_trainer_net(tr), *ema = ebm_trainer_ema_net(tr);
  char why[512];
  if (ebm_model_load(path, be, 1, &loaded, NULL, NULL, 0, why, sizeof why) != 0) {
    snprintf(err, errlen, "--init %s: %s", path, why);
    return -1;
  }
  size_t np = ebm_net_param_count(net), nu = ebm_net_sn_u_count(net);
  float *p = malloc(np * sizeof *p), *u = malloc((nu + 1) * sizeof *u);
  int rc = -1;
  if (!p || !u) snprintf(err, errlen, "--init: out of memory");
  else if (ebm_net_param_count(loaded) != np || ebm_net_sn_u_count(loaded) != nu)
    snprintf(err, errlen, "--init %s: the network differs from this run's", path);
  else if (ebm_net_get_params(loaded, p, u) || ebm_net_set_params(net, p, nu ? u : NULL) ||
           (ema && ebm_net_set_params(ema, p, nu ? u : NULL)))
    snprintf(err, errlen, "--init %s: copying the parameters failed", path);
  else
    rc = 0;
  free(p), free(u);
  ebm_net_destroy(loaded);
  return rc;
}

/* The last iteration's negatives as a grid PNG (atomic), to watch what the sampler makes. */
static int write_preview(ebm_trainer *tr, const char *path, char *err, size_t errlen) {
  const ebm_train_config *c = ebm_trainer_config(tr);
  const int R = c->net.resolution, B = c->batch;
  float *neg = malloc((size_t)B * 3 * R * R * sizeof(float));
  if (!neg) return snprintf(err, errlen, "out of memory for the preview"), -1;
  int gw = 0, gh = 0, rc = -1;
  uint8_t *grid = NULL;
  if (ebm_trainer_negatives(tr, neg) != 0) {
    snprintf(err, errlen, "reading the negatives failed");
  } else if (!(grid = img_make_grid(neg, B, R, R, B < 8 ? B : 8, 2, 0.0f, &gw, &gh))) {
    snprintf(err, errlen, "out of memory for the preview grid");
  } else {
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)ebm_trainer_step_count(tr));
    img_text text[] = {{"vkebm.concept", c->concept}, {"vkebm.step", step}};
    rc = img_write_png_rgb8(path, grid, gw, gh, text, 2, err, errlen);
  }
  free(grid);
  free(neg);
  return rc;
}

static int train_command(int argc, char **argv, const cli_dist *dist) {
  static const struct option opts[] = {
      {"concept", required_argument, 0, O_CONCEPT}, {"data", required_argument, 0, O_DATA},
      {"data-dir", required_argument, 0, O_DATA_DIR}, {"size", required_argument, 0, O_SIZE},
      {"config", required_argument, 0, O_CONFIG}, {"width", required_argument, 0, O_WIDTH},
      {"blocks", required_argument, 0, O_BLOCKS}, {"steps", required_argument, 0, O_STEPS},
      {"head", required_argument, 0, O_HEAD},     {"coords", no_argument, 0, O_COORDS},
      {"label-head", no_argument, 0, O_LABEL_HEAD},
      {"input-norm", no_argument, 0, O_INPUT_NORM},
      {"no-input-norm", no_argument, 0, O_NO_INPUT_NORM},
      {"batch", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
      {"no-adam-clip", no_argument, 0, O_NO_ADAM_CLIP},
      {"grad-clip", required_argument, 0, O_GRAD_CLIP},
      {"langevin-steps", required_argument, 0, O_LSTEPS},
      {"step-size", required_argument, 0, O_STEP_LR}, {"step-lr", required_argument, 0, O_STEP_LR},
      {"noise", required_argument, 0, O_NOISE},
      {"replay", required_argument, 0, O_REPLAY}, {"buffer", required_argument, 0, O_BUFFER},
      {"reservoir", no_argument, 0, O_RESERVOIR}, {"alpha", required_argument, 0, O_ALPHA},
      {"label-weight", required_argument, 0, O_LABEL_W},
      {"label-temp", required_argument, 0, O_LABEL_T},
      {"label-negatives", required_argument, 0, O_LABEL_K},
      {"sample-steps", required_argument, 0, O_SAMPLE_STEPS},
      {"ema", required_argument, 0, O_EMA}, {"frozen", required_argument, 0, O_FROZEN},
      {"seed", required_argument, 0, O_SEED}, {"output", required_argument, 0, 'o'},
      {"checkpoint", required_argument, 0, O_CKPT},
      {"checkpoint-every", required_argument, 0, O_CKPT_EVERY},
      {"resume", required_argument, 0, O_RESUME}, {"metrics", required_argument, 0, O_METRICS},
      {"log-every", required_argument, 0, O_LOG_EVERY},
      {"max-energy", required_argument, 0, O_MAX_ENERGY},
      {"preview", required_argument, 0, O_PREVIEW},
      {"chain-init", required_argument, 0, O_CHAIN_INIT},
      {"recipe", required_argument, 0, O_RECIPE}, {"init", required_argument, 0, O_INIT},
      {"backend", required_argument, 0, O_BACKEND}, {"quiet", no_argument, 0, 'q'},
      {"force", no_argument, 0, O_FORCE},
      {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *concept = NULL, *data = "general", *data_dir = NULL, *preset = NULL, *recipe = "practical";
  const char *preview = NULL, *init = NULL;
  const char *blocks = NULL, *head = NULL, *out = NULL, *ckpt_arg = NULL, *resume = NULL, *metrics_arg = NULL;
  const char *frozen_args[EBM_TRAIN_MAX_FROZEN];
  int force = 0, nfrozen = 0, quiet = 0, no_adam_clip = 0, reservoir = 0, chain_init = -1, coords = 0,
      label_head = 0, input_norm = 0;
  long size = 0, width = 0, steps = 10000, batch = -1, lsteps = -1, buffer = -1, seed = -1;
  long ckpt_every = 500, log_every = 50;
  double max_energy = -1;
  double lr = -1, grad_clip = -1, step_lr = -1, noise = -1, replay = -1, alpha = -1, ema = -1,
         label_w = -1, label_t = -1;
  long label_k = -1, sample_steps = -1;
  int backend = EBM_BACKEND_AUTO, ch;
  optind = 1;
  opterr = 0;
#define INT_OPT(var, lo, hi, name)                                                           \
  if (cli_parse_int(optarg, lo, hi, &var) != 0)                                              \
    return cli_usage(CMD_NAME, "--%s '%s': expected an integer in %ld..%ld", name, optarg,  \
                     (long)(lo), (long)(hi));                                                \
  break;
#define FLT_OPT(var, lo, hi, name)                                                           \
  if (cli_parse_float(optarg, lo, hi, &var) != 0)                                            \
    return cli_usage(CMD_NAME, "--%s '%s': expected a number in [%g, %g]", name, optarg,    \
                     (double)(lo), (double)(hi));                                            \
  break;
  while ((ch = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
    switch (ch) {
    case 'h': usage(stdout); return EXIT_OK;
    case O_CONCEPT: concept = optarg; break;
    case O_DATA: data = optarg; break;
    case O_DATA_DIR: data_dir = optarg; break;
    case O_SIZE: INT_OPT(size, 8, 256, "size")
    case O_CONFIG: preset = optarg; break;
    case O_RECIPE:
      if (strcmp(optarg, "practical") && strcmp(optarg, "paper"))
        return cli_usage(CMD_NAME, "--recipe: expected practical or paper, got '%s'", optarg);
      recipe = optarg;
      break;
    case O_WIDTH: INT_OPT(width, 1, 4096, "width")
    case O_BLOCKS: blocks = optarg; break;
    case O_HEAD:
      if (strcmp(optarg, "mean") && strcmp(optarg, "flatten"))
        return cli_usage(CMD_NAME, "--head: expected mean or flatten, got '%s'", optarg);
      head = optarg;
      break;
    case O_COORDS: coords = 1; break;
    case O_LABEL_HEAD: label_head = 1; break;
    case O_INPUT_NORM: input_norm = 1; break;
    case O_NO_INPUT_NORM: input_norm = -1; break;
    case O_STEPS: INT_OPT(steps, 1, EBM_TRAIN_MAX_STEPS, "steps")
    case O_BATCH: INT_OPT(batch, 1, 4096, "batch")
    case O_LR: FLT_OPT(lr, 1e-12, 1, "lr")
    case O_NO_ADAM_CLIP: no_adam_clip = 1; break;
    case O_GRAD_CLIP: FLT_OPT(grad_clip, 0, 1e12, "grad-clip")
    case O_LSTEPS: INT_OPT(lsteps, 1, 100000, "langevin-steps")
    case O_STEP_LR: FLT_OPT(step_lr, 0, 1e9, "step-size")
    case O_NOISE: FLT_OPT(noise, 0, 1e3, "noise")
    case O_REPLAY: FLT_OPT(replay, 0, 1, "replay")
    case O_BUFFER: INT_OPT(buffer, 1, 10000000, "buffer")
    case O_RESERVOIR: reservoir = 1; break;
    case O_ALPHA: FLT_OPT(alpha, 0, 1e6, "alpha")
    case O_LABEL_W: FLT_OPT(label_w, 0, 1e6, "label-weight")
    case O_LABEL_T: FLT_OPT(label_t, 1e-9, 1e6, "label-temp")
    case O_LABEL_K: INT_OPT(label_k, 1, 63, "label-negatives")
    case O_SAMPLE_STEPS: INT_OPT(sample_steps, 1, 1000000, "sample-steps")
    case O_EMA: FLT_OPT(ema, 0, 0.999999, "ema")
    case O_FROZEN:
      if (nfrozen == EBM_TRAIN_MAX_FROZEN)
        return cli_usage(CMD_NAME, "at most %d --frozen models", EBM_TRAIN_MAX_FROZEN);
      frozen_args[nfrozen++] = optarg;
      break;
    case O_SEED: INT_OPT(seed, 0, 4294967295L, "seed")
    case 'o': out = optarg; break;
    case O_CKPT: ckpt_arg = optarg; break;
    case O_CKPT_EVERY: INT_OPT(ckpt_every, 1, 100000000L, "checkpoint-every")
    case O_RESUME: resume = optarg; break;
    case O_INIT: init = optarg; break;
    case O_METRICS: metrics_arg = optarg; break;
    case O_PREVIEW: preview = optarg; break;
    case O_CHAIN_INIT:
      if (!strcmp(optarg, "uniform")) chain_init = 0;
      else if (!strcmp(optarg, "data")) chain_init = 1;
      else if (!strcmp(optarg, "flat")) chain_init = 2;
      else return cli_usage(CMD_NAME, "--chain-init '%s': expected uniform, data or flat", optarg);
      break;
    case O_MAX_ENERGY: FLT_OPT(max_energy, 1e-30, 1e30, "max-energy")
    case O_LOG_EVERY: INT_OPT(log_every, 1, 100000000L, "log-every")
    case O_BACKEND:
      if ((backend = cli_parse_backend(optarg)) < 0)
        return cli_usage(CMD_NAME, "--backend '%s': expected auto, cpu or vulkan", optarg);
      break;
    case 'q': quiet = 1; break;
    case O_FORCE: force = 1; break;
    default: return cli_bad_option(CMD_NAME, argv, ch, opts);
    }
  }
#undef INT_OPT
#undef FLT_OPT
  if (optind < argc) return cli_usage(CMD_NAME, "unexpected argument '%s'", argv[optind]);
  if (!out) return cli_usage(CMD_NAME, "-o OUT.safetensors is required");
  if (!resume && !concept)
    return cli_usage(CMD_NAME, "--concept is required (position, size, shape, color, joint; or a "
                               "CelebA attribute)");
  struct stat ost;
  if (!resume && !force && stat(out, &ost) == 0 && S_ISREG(ost.st_mode))
    return cli_usage(CMD_NAME, "-o %s exists: a new run would replace that model at its end "
                               "(add --force, or pick another path)", out);

  char err[1024];
  ebm_train_config cfg;
  if (!resume) {
    const int preset_given = preset != NULL;
    if (!preset) preset = strcmp(recipe, "paper") ? "small32" : "default32";
    if (ebm_train_config_default(&cfg, concept, data, preset, (int)size, err, sizeof err) != 0)
      return cli_usage(CMD_NAME, "%s", err);
    ebm_train_config_recipe(&cfg, recipe);
    if (width > 0) cfg.net.base_width = (int)width;
    if (head) cfg.net.head_flatten = !strcmp(head, "flatten");
    if (coords) cfg.net.coord_channels = 1;
    if (label_head) cfg.net.head_label = 1;
    if (input_norm) cfg.input_norm = input_norm > 0;
    if (blocks && ebm_net_config_parse_blocks(&cfg.net, blocks) != 0)
      return cli_usage(CMD_NAME, "--blocks '%s': expected e.g. 1d,2d,2d,2", blocks);
    if (init) { /* the network is the file's (its input normalisation included) */
      const char *arch = preset_given ? "--config" : size ? "--size" : width ? "--width" : blocks ? "--blocks"
                         : head ? "--head" : coords ? "--coords" : label_head ? "--label-head"
                         : input_norm ? "--input-norm" : NULL;
      if (arch) return cli_usage(CMD_NAME, "%s with --init: the network comes from %s", arch, init);
      ebm_model_info ii;
      if (ebm_model_read_info(init, &ii, err, sizeof err) != 0)
        return cli_usage(CMD_NAME, "--init %s: %s", init, err);
      if (strcmp(ii.concept, cfg.concept))
        return cli_usage(CMD_NAME, "--init %s is a %s model; this run trains %s", init, ii.concept,
                         cfg.concept);
      cfg.net = ii.config;
    }
    if (data_dir) {
      if (strlen(data_dir) >= sizeof cfg.data_dir) return cli_usage(CMD_NAME, "--data-dir: path too long");
      snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data_dir);
    }
    if (batch > 0) cfg.batch = (int)batch;
    if (lr > 0) cfg.lr = (float)lr;
    if (no_adam_clip) cfg.adam_clip = 0;
    if (grad_clip >= 0) cfg.grad_clip = (float)grad_clip;
    if (lsteps > 0) cfg.langevin_steps = (int)lsteps;
    if (step_lr >= 0) cfg.step_lr = (float)step_lr;
    if (noise >= 0) cfg.noise = (float)noise;
    if (replay >= 0) cfg.replay = (float)replay;
    if (buffer > 0) cfg.buffer_size = (int)buffer;
    if (reservoir) cfg.reservoir = 1;
    if (chain_init >= 0) cfg.chain_init = chain_init;
    if (alpha >= 0) cfg.alpha = (float)alpha;
    if (label_w >= 0) cfg.label_weight = (float)label_w;
    if (label_t > 0) cfg.label_temp = (float)label_t;
    if (label_k > 0) cfg.label_negatives = (int)label_k;
    if (sample_steps > 0) cfg.sample_steps = (int)sample_steps;
    if (ema >= 0) cfg.ema = (float)ema;
    if (seed >= 0) cfg.seed = (uint32_t)seed;
    if (max_energy > 0) cfg.diverge_energy = (float)max_energy;
    if (ebm_train_config_validate(&cfg, err, sizeof err) != 0) return cli_usage(CMD_NAME, "%s", err);
  } else if (init) {
    return cli_usage(CMD_NAME, "--init is for a new run; --resume continues a checkpoint");
  } else if (concept || data_dir || size || width || blocks || batch > 0 || lr > 0 || lsteps > 0) {
    fprintf(stderr, "vkebm train: --resume: the checkpoint's settings are used; data and model flags are ignored\n");
  }
  ebm_train_frozen frozen[EBM_TRAIN_MAX_FROZEN];
  for (int f = 0; f < nfrozen; f++)
    if (ebm_train_frozen_parse(frozen_args[f], &frozen[f], err, sizeof err) != 0)
      return cli_usage(CMD_NAME, "%s", err);

  char ckpt[4096], metrics[4096];
  if (ckpt_arg) snprintf(ckpt, sizeof ckpt, "%s", ckpt_arg);
  else derived_path(ckpt, sizeof ckpt, out, ".ckpt.safetensors");
  if (metrics_arg) snprintf(metrics, sizeof metrics, "%s", metrics_arg);
  else derived_path(metrics, sizeof metrics, out, ".metrics.csv");

  /* Every file has one role: two flags naming the same file would each destroy the other
   * (the model over the checkpoint, metrics over the model, ...). Resuming from the checkpoint
   * that the run then keeps writing is the one pair that is meant. */
  {
    const char *paths[] = {out, ckpt, metrics, preview, resume};
    const char *flags[] = {"-o", "--checkpoint", "--metrics", "--preview", "--resume"};
    for (int i = 0; i < 5; i++)
      for (int j = i + 1; j < 5; j++)
        if (paths[i] && paths[j] && !(i == 1 && j == 4) && io_same_file(paths[i], paths[j]))
          return cli_usage(CMD_NAME, "%s and %s name the same file (%s): each would destroy the other",
                           flags[i], flags[j], paths[i]);
  }

  /* data parallel: rank 0 writes and talks; the others train their slice quietly */
  const int root = dist->rank == 0;
  ebm_backend *be = NULL;
  int rc = cli_dist_backend_open(dist, CMD_NAME, &be, (ebm_backend_kind)backend, quiet);
  if (!cli_dist_agree(dist, CMD_NAME, rc == 0, NULL)) return cli_backend_close(be, rc ? rc : EXIT_FAIL);
  if (!root) quiet = 1;
  ebm_trainer *tr = NULL;
  FILE *mf = NULL;
  int made = ebm_trainer_create_comm(&tr, be, resume ? NULL : &cfg, resume, frozen, nfrozen,
                                     cli_dist_comm(dist), err, sizeof err) == 0;
  /* --init: every rank reads the model (a failure on any ends every rank) */
  if (made && init && init_from_model(tr, be, init, err, sizeof err) != 0) made = 0;
  if (!cli_dist_agree(dist, CMD_NAME, made, err)) {
    ebm_trainer_destroy(tr);
    return cli_backend_close(be, EXIT_FAIL);
  }
  if (cli_dist_comm(dist)) {
    /* every rank read its own copy of the checkpoint or --init model (or made the network from
     * the seed): they must hold the same weights at the same step */
    ebm_net *net = ebm_trainer_net(tr);
    const size_t np = ebm_net_param_count(net), nu = ebm_net_sn_u_count(net);
    float *w = malloc((np + nu + 2) * sizeof(float));
    int same = 0;
    if (w && ebm_net_get_params(net, w + 2, w + 2 + np) == 0) {
      const int64_t at = ebm_trainer_step_count(tr);
      w[0] = (float)(at & 0xffffff), w[1] = (float)(at >> 24);
      if (ebm_train_comm_same(cli_dist_comm(dist), w, (np + nu + 2) * sizeof(float), &same) != 0)
        same = -1;
    }
    free(w);
    if (same != 1) {
      if (root)
        cli_fail(CMD_NAME, "%s", same < 0 ? "comparing the ranks' starting weights failed"
                                          : "the ranks did not start from the same weights and "
                                            "step: every rank must read the same --resume or "
                                            "--init file (a copy per machine must be identical)");
      ebm_trainer_destroy(tr);
      return cli_backend_close(be, EXIT_FAIL);
    }
  }
  const ebm_train_config *c = ebm_trainer_config(tr);
  int64_t start = ebm_trainer_step_count(tr);
  if (start > steps) { /* every rank resumed the same checkpoint: rank 0 speaks for all */
    ebm_trainer_destroy(tr);
    if (!root) return cli_backend_close(be, EXIT_USAGE);
    return cli_backend_close(be, cli_usage(CMD_NAME, "--steps %ld is below the checkpoint's step %lld "
                                                     "(give --steps %lld or more)",
                                           steps, (long long)start, (long long)start));
  }
  if (!quiet && dist->size > 1)
    fprintf(stderr, "vkebm train: data parallel over %d ranks: batch %d per rank, %d in all\n",
            dist->size, c->batch, c->batch * dist->size);
  if (!quiet) {
    char desc[256];
    ebm_net_config_describe(&c->net, desc, sizeof desc);
    fprintf(stderr,
            "vkebm train: %s on %s, %s, %zu weights, batch %d, %d Langevin steps, %s%lld -> %ld steps\n",
            c->concept, c->data_dir[0] ? c->data_dir : c->data_spec, desc,
            ebm_net_config_num_weights(&c->net), c->batch, c->langevin_steps,
            resume ? "resuming at " : "", (long long)start, steps);
    fprintf(stderr, "vkebm train: checkpoint %s, metrics %s, model %s\n", ckpt, metrics, out);
  }

  double time_offset = 0;
  rc = root ? open_outputs(out, ckpt, metrics, resume, start, &time_offset, &mf) : 0;
  if (!cli_dist_agree(dist, CMD_NAME, rc == 0, NULL)) {
    if (!rc) rc = EXIT_FAIL;
    goto done;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once; the previous checkpoint stays */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  const int tty = isatty(STDERR_FILENO);
  const double t0 = cli_now_s();
  double last_draw = 0, last_line = cli_now_s();
  /* the newest checkpoint on disk, for the divergence message: none yet on a fresh run */
  const char *good_ckpt = resume;
  int64_t last_saved = start;
  int stopped = 0; /* a signal, on any rank: every rank stops after the same step */
  for (int64_t s = start; s < steps && !(stopped = cli_dist_any(dist, g_stop_signal != 0)); s++) {
    ebm_train_stats st_;
    int src = ebm_trainer_step(tr, &st_, err, sizeof err);
    if (src != EBM_TRAIN_OK) {
      if (tty && !quiet) fputc('\n', stderr);
      if (src != EBM_TRAIN_DIVERGED && dist->size > 1) {
        /* this rank alone (its device, or MPI): the others wait for it in a collective */
        cli_fail(CMD_NAME, "rank %d: %s; ending the job", dist->rank, err);
        cli_dist_abort(dist, EXIT_FAIL);
      }
      /* divergence is seen alike by every rank (the energies are summed over them) */
      if (!root)
        rc = EXIT_FAIL;
      else if (src == EBM_TRAIN_DIVERGED && good_ckpt)
        rc = cli_fail(CMD_NAME, "training stopped: %s; the last good checkpoint is %s (step %lld)",
                      err, good_ckpt, (long long)last_saved);
      else if (src == EBM_TRAIN_DIVERGED)
        rc = cli_fail(CMD_NAME, "training stopped: %s; no checkpoint was written (the first was "
                                "due at step %ld)", err, ckpt_every);
      else
        rc = cli_fail(CMD_NAME, "%s", err);
      goto done;
    }
    const double el = cli_now_s() - t0;
    const double rate = (double)(st_.step - start) / (el > 0 ? el : 1e-9);
    if (mf) {
      fprintf(mf, "%lld,%.3f,%.6g,%.6g,%.6g,%.6g,%.4g,%.6g,%.4g\n", (long long)st_.step,
              time_offset + el, st_.loss, st_.e_pos, st_.e_neg, st_.grad_norm, rate, st_.label_ce,
              st_.label_acc);
      fflush(mf);
    }
    int last = st_.step == steps;
    if (!quiet) {
      char eta[32];
      format_duration(eta, sizeof eta, (steps - st_.step) / rate);
      if (tty) {
        double t = cli_now_s();
        if (t - last_draw >= 0.1 || last) {
          fprintf(stderr, "\r\033[Kstep %lld/%ld  %.3g it/s  ETA %s  loss %.4f  E+ %.4f  E- %.4f",
                  (long long)st_.step, steps, rate, eta, st_.loss, st_.e_pos, st_.e_neg);
          last_draw = t;
        }
      } else if (st_.step % log_every == 0 || last || st_.step == start + 1 ||
                 cli_now_s() - last_line >= 30.0) {
        /* off a terminal: every --log-every steps, the first step (the rate shows at once) and
         * at least every 30 s (a slow run is not silent for minutes) */
        last_line = cli_now_s();
        char lab[64] = "";
        if (ebm_trainer_config(tr)->label_weight > 0)
          snprintf(lab, sizeof lab, "  label CE %.3f acc %.2f", st_.label_ce, st_.label_acc);
        fprintf(stderr, "vkebm train: step %lld/%ld  %.3g it/s  ETA %s  loss %.4f  E+ %.4f  E- %.4f  |g| %.3g%s\n",
                (long long)st_.step, steps, rate, eta, st_.loss, st_.e_pos, st_.e_neg, st_.grad_norm,
                lab);
      }
    }
    if (st_.step % ckpt_every == 0 && !last) {
      if (ebm_trainer_save_checkpoint(tr, ckpt, err, sizeof err) != 0) {
        rc = cli_fail(CMD_NAME, "checkpoint: %s", err);
        cli_dist_abort(dist, rc); /* rank 0's write, or one rank's part in gathering the buffer */
        goto done;
      }
      last_saved = st_.step;
      good_ckpt = ckpt;
      if (root && preview && write_preview(tr, preview, err, sizeof err) != 0) {
        rc = cli_fail(CMD_NAME, "preview: %s", err);
        cli_dist_abort(dist, rc);
        goto done;
      }
    }
  }
  if (tty && !quiet) fputc('\n', stderr);
  if (ebm_trainer_save_checkpoint(tr, ckpt, err, sizeof err) != 0) {
    rc = cli_fail(CMD_NAME, "checkpoint: %s", err);
    cli_dist_abort(dist, rc);
    goto done;
  }
  if (root && preview && ebm_trainer_step_count(tr) > start &&
      write_preview(tr, preview, err, sizeof err) != 0) {
    rc = cli_fail(CMD_NAME, "preview: %s", err);
    cli_dist_abort(dist, rc);
    goto done;
  }
  if (stopped) {
    rc = EXIT_INTERRUPTED;
    if (!root) goto done;
    long long at = (long long)ebm_trainer_step_count(tr);
    fprintf(stderr, "vkebm train: %s at step %lld; checkpoint saved to %s (continue with --resume "
                    "%s; a model of it now: vkebm train --resume %s --steps %lld -o MODEL)\n",
            g_stop_signal == SIGINT ? "interrupted" : "terminated", at, ckpt, ckpt, ckpt, at);
    goto done;
  }
  if (root && ebm_trainer_save_model(tr, out, 1, err, sizeof err) != 0) {
    rc = cli_fail(CMD_NAME, "%s", err);
    goto done;
  }
  if (!quiet)
    fprintf(stderr, "vkebm train: wrote %s (%s weights, step %lld)\n", out,
            c->ema > 0 ? "EMA" : "trained", (long long)ebm_trainer_step_count(tr));
done:
  if (mf) fclose(mf);
  ebm_trainer_destroy(tr);
  return cli_backend_close(be, rc);
}

int cmd_train(int argc, char **argv) {
  cli_dist dist;
  int rc = cli_dist_start(&dist, CMD_NAME);
  if (rc) return rc;
  return cli_dist_end(&dist, train_command(argc, argv, &dist));
}
