/* cmd_demo.c: `vkebm demo`: the whole pipeline in one command, on either backend.
 *
 * Opens a backend, builds the energy network (a model file from the models directory when one
 * matches the configuration, else random initialisation from the seed), starts a batch of
 * chains from uniform noise and runs N steps of the paper sampler (ebm_sampler_step, on the
 * device: the images never come back to the host),
 *     x <- x + noise * N(0, 1);  x <- clip(x - step_size * dE/dx, 0, 1),
 * then reports energies before/after, the gradient norm and the throughput. Noise comes from
 * the project's counter-based RNG, so a run is a function of its seed.
 */
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vkebm/model.h"
#include "vkebm/net.h"
#include "vkebm/sampler.h"
#include "vkebm/shared.h"

#define DEMO_STREAM_INIT 0x44454d49u  /* "DEMI": initial images */
#define DEMO_STREAM_LABEL 0x44454d4cu /* "DEML": labels */
#define DEMO_STREAM_NOISE 0x44454d4eu /* "DEMN": Langevin noise */

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm demo [options]\n\n"
          "Runs Langevin-style sampling steps of the energy network on a batch of noise images\n"
          "and reports energies and throughput. Uses a model from --models-dir whose\n"
          "configuration matches --config, else a randomly initialised network.\n\n"
          "  --backend auto|cpu|vulkan  backend (default auto: a Vulkan GPU if any, else cpu)\n"
          "  --device N                 Vulkan device index (default: choose)\n"
          "  --config PRESET            tiny | small32 | default32 | paper64 (default default32)\n"
          "  --model FILE               use this model file (its own configuration)\n"
          "  --models-dir DIR           where to look for a matching model (default models)\n"
          "  --save FILE                save the network used (e.g. the random one) as a model\n"
          "  --batch N                  chains (default 16)\n"
          "  --steps N                  Langevin steps (default 20)\n"
          "  --step-size X              gradient step (default 100, the paper's eta;\n"
          "                             --step-lr is the old name)\n"
          "  --noise X                  noise standard deviation per step (default 0.005)\n"
          "  --seed S                   seed (default: picked and printed)\n"
          "  --validate                 Vulkan validation layer on; any message fails the run\n"
          "  --quiet                    only the results\n"
          "  -h, --help                 this text\n");
}

/* ebm_sampler_step's gradient: dE/dx of the network at the chains (io->x) into io->dx. */
typedef struct demo_grad_ctx {
  ebm_net *net;
  const cli_energy_io *io;
} demo_grad_ctx;

static int demo_grad(void *user, ebm_ref x, ebm_ref grad, double scale, char *err,
                     size_t errlen) {
  const demo_grad_ctx *c = user;
  (void)x, (void)grad, (void)scale, (void)err, (void)errlen; /* x is io->x, grad io->dx */
  cli_energy_forward(c->net, c->io);
  cli_energy_backward(c->net, c->io);
  return 0;
}

/* Structural match: everything but label_dim (the model decides that). */
static int same_architecture(const ebm_net_config *a, const ebm_net_config *b) {
  ebm_net_config x = *a;
  x.label_dim = b->label_dim;
  return ebm_net_config_equal(&x, b);
}

/* The first (by name) *.safetensors in dir that is a vkebm model of the wanted architecture. */
static int find_model(const char *dir, const ebm_net_config *want, char *path, size_t len) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  char best[512] = "";
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 13 || strcmp(e->d_name + n - 12, ".safetensors")) continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    ebm_model_info info;
    char err[256];
    if (ebm_model_read_info(p, &info, err, sizeof err)) continue;
    if (!same_architecture(want, &info.config)) continue;
    if (!best[0] || strcmp(p, best) < 0) snprintf(best, sizeof best, "%s", p);
  }
  closedir(d);
  if (!best[0]) return -1;
  snprintf(path, len, "%s", best);
  return 0;
}

int cmd_demo(int argc, char **argv) {
  static const struct option opts[] = {
      {"backend", required_argument, 0, 'b'}, {"device", required_argument, 0, 'D'},
      {"config", required_argument, 0, 'c'},  {"model", required_argument, 0, 'm'},
      {"models-dir", required_argument, 0, 'M'}, {"save", required_argument, 0, 'o'}, {"batch", required_argument, 0, 'n'},
      {"steps", required_argument, 0, 's'},   {"step-size", required_argument, 0, 'l'},
      {"step-lr", required_argument, 0, 'l'} /* the old name */,
      {"noise", required_argument, 0, 'z'},   {"seed", required_argument, 0, 'S'},
      {"validate", no_argument, 0, 'V'},      {"quiet", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  int kind = EBM_BACKEND_AUTO, validate = 0, quiet = 0, have_seed = 0;
  long device = -1, batch = 16, steps = 20;
  double step_size = 100, noise = 0.005;
  unsigned long long seed = 0;
  const char *preset = "default32", *model_path = NULL, *models_dir = "models", *save_path = NULL;
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'b':
      if ((kind = cli_parse_backend(optarg)) < 0)
        return cli_usage("demo", "--backend: expected auto, cpu or vulkan, not '%s'", optarg);
      break;
    case 'D':
      if (cli_parse_int(optarg, 0, 1000, &device))
        return cli_usage("demo", "--device: expected an index >= 0, not '%s'", optarg);
      break;
    case 'c': preset = optarg; break;
    case 'm': model_path = optarg; break;
    case 'M': models_dir = optarg; break;
    case 'o': save_path = optarg; break;
    case 'n':
      if (cli_opt_int("demo", "batch", optarg, 1, 4096, &batch)) return EXIT_USAGE;
      break;
    case 's':
      if (cli_opt_int("demo", "steps", optarg, 0, 1000000, &steps)) return EXIT_USAGE;
      break;
    case 'l':
      if (cli_parse_float(optarg, 0, 1e9, &step_size))
        return cli_usage("demo", "--step-size: expected a number >= 0, not '%s'", optarg);
      break;
    case 'z':
      if (cli_parse_float(optarg, 0, 10, &noise))
        return cli_usage("demo", "--noise: expected a number in 0..10, not '%s'", optarg);
      break;
    case 'S': {
      char *end;
      if (!optarg[0] || optarg[0] == '-')
        return cli_usage("demo", "--seed: expected an unsigned integer, not '%s'", optarg);
      seed = strtoull(optarg, &end, 10);
      if (*end) return cli_usage("demo", "--seed: expected an unsigned integer, not '%s'", optarg);
      have_seed = 1;
      break;
    }
    case 'V': validate = 1; break;
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return EXIT_OK;
    default: return cli_bad_option("demo", argv, ch, opts);
    }
  }
  if (optind < argc) return cli_usage("demo", "unexpected argument '%s'", argv[optind]);
  ebm_net_config want;
  if (ebm_net_config_preset(&want, preset, 2))
    return cli_usage("demo", "--config: unknown preset '%s' (tiny, small32, default32, paper64)", preset);
  if (!have_seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = ((unsigned long long)ts.tv_sec * 1000003ull) ^ (unsigned long long)ts.tv_nsec ^
           ((unsigned long long)getpid() << 20);
    seed %= 1000000000ull;
  }

  ebm_backend *be = NULL;
  int rc = cli_backend_open("demo", &be, (ebm_backend_kind)kind, (int)device, validate, quiet);
  if (rc) return rc;

  char found[512], err[512];
  ebm_net *net = NULL;
  ebm_model_info info;
  const char *source = "random";
  if (!model_path && find_model(models_dir, &want, found, sizeof found) == 0) model_path = found;
  if (model_path) {
    if (ebm_model_load(model_path, be, (int)batch, &net, &info, NULL, 0, err, sizeof err)) {
      fprintf(stderr, "vkebm demo: %s\n", err);
      return cli_backend_close(be, EXIT_FAIL);
    }
    source = model_path;
  } else {
    ebm_model_info_default(&info, &want);
    if (ebm_net_create(&net, be, &want, (int)batch, seed, err, sizeof err)) {
      fprintf(stderr, "vkebm demo: %s\n", err);
      return cli_backend_close(be, EXIT_FAIL);
    }
  }
  if (save_path) {
    info.seed = model_path ? info.seed : seed;
    if (ebm_model_save(save_path, net, &info, NULL, 0, err, sizeof err)) {
      ebm_net_destroy(net);
      fprintf(stderr, "vkebm demo: %s\n", err);
      return cli_backend_close(be, EXIT_FAIL);
    }
    if (!quiet) fprintf(stderr, "vkebm demo: saved the network to %s\n", save_path);
  }
  const ebm_net_config *cfg = ebm_net_config_of(net);
  int R = cfg->resolution, L = cfg->label_dim, B = (int)batch;
  size_t nx = (size_t)B * cfg->in_channels * R * R;
  u32 s32 = (u32)seed ^ (u32)(seed >> 32);

  /* Chains start from uniform noise; labels: class b mod L (one-hot) or uniform in range. */
  cli_energy_io io;
  int have_io = cli_energy_io_alloc(&io, be, cfg, B) == 0;
  float *hx = malloc(nx * sizeof *hx);
  float *hc = calloc((size_t)B * L, sizeof *hc), *he = malloc((size_t)B * sizeof *he);
  ebm_buffer *ss = ebm_alloc(be, 1);
  if (!have_io || !hx || !hc || !he || !ss) {
    rc = cli_fail("demo", "out of memory for batch %d", B);
    goto done;
  }
  for (size_t i = 0; i < nx; i++) hx[i] = vkebm_rng_uniform(s32, 0, DEMO_STREAM_INIT, (u32)i);
  for (int b = 0; b < B; b++) {
    for (int l = 0; l < L; l++) {
      if (info.label_kind == EBM_LABEL_ONEHOT)
        hc[b * L + l] = l == b % L ? 1.0f : 0.0f;
      else
        hc[b * L + l] = info.label_min[l] + (info.label_max[l] - info.label_min[l]) *
                                                vkebm_rng_uniform(s32, 0, DEMO_STREAM_LABEL,
                                                                  (u32)(b * L + l));
    }
  }
  if (ebm_upload(be, ebm_ref_of(io.x), hx, nx) || ebm_upload(be, ebm_ref_of(io.c), hc, io.nc)) {
    rc = cli_fail("demo", "upload failed");
    goto done;
  }

  char desc[160];
  ebm_net_config_describe(cfg, desc, sizeof desc);
  double fwd_flops = ebm_net_forward_flops(cfg);
  printf("vkebm demo\n");
  printf("  backend     %s on %s\n", ebm_backend_name(be), ebm_backend_device_name(be));
  printf("  kernels     %s\n", ebm_backend_describe(be));
  if (model_path)
    printf("  model       %s (concept %s, step %lld)\n", source, info.concept, (long long)info.step);
  else
    printf("  model       random initialisation (no matching model in %s/), seed %llu\n",
           models_dir, seed);
  printf("  config      %s: %zu weights, %.1f MFLOP/forward\n", desc,
         ebm_net_config_num_weights(cfg), fwd_flops / 1e6);
  printf("  sampling    batch %d, %ld steps, step size %g, noise %g, seed %llu\n", B, steps, step_size,
         noise, seed);
  fflush(stdout);

  double e_before = 0, e_after = 0, g_first = 0, g_last = 0, t_total = 0;
  ebm_sampler_config sc;
  ebm_sampler_defaults(&sc, EBM_SAMPLER_PAPER);
  sc.noise_std = (float)noise;
  const ebm_chains chains = {be, ebm_ref_of(io.x), ebm_ref_of(io.dx), B, (int)(nx / (size_t)B), 0};
  demo_grad_ctx ctx = {net, &io};
  for (long k = 0; k <= steps; k++) {
    double t0 = cli_now_s();
    if (k == steps) { /* the last forward only measures the final energy */
      cli_energy_forward(net, &io);
      if (ebm_download(be, he, ebm_ref_of(io.e), (size_t)B)) goto backend_failed;
      break;
    }
    char err[256];
    if (ebm_sampler_step(&chains, &sc, (float)step_size, s32 ^ DEMO_STREAM_NOISE, (uint32_t)k,
                         demo_grad, &ctx, err, sizeof err))
      goto backend_failed;
    /* the energies at the noisy point and the gradient the step took: B + 1 floats back */
    ebm_sumsq(be, ebm_ref_of(ss), ebm_ref_of(io.dx), nx);
    float sumsq;
    if (ebm_download(be, he, ebm_ref_of(io.e), (size_t)B) ||
        ebm_download(be, &sumsq, ebm_ref_of(ss), 1))
      goto backend_failed;
    double dt = cli_now_s() - t0;
    t_total += dt;
    double gnorm = sqrt((double)sumsq / B);
    if (k == 0) {
      g_first = gnorm;
      for (int b = 0; b < B; b++) e_before += he[b] / B;
    }
    g_last = gnorm;
    if (!quiet && (k % 10 == 0 || k == steps - 1)) {
      double m = 0;
      for (int b = 0; b < B; b++) m += he[b] / B;
      fprintf(stderr, "  step %ld/%ld  mean E %.6f  |dE/dx| %.4g  %.1f ms\n", k + 1, steps, m, gnorm,
              dt * 1e3);
    }
  }
  for (int b = 0; b < B; b++) e_after += he[b] / B;
  if (steps == 0) e_before = e_after;
  if (!isfinite(e_before) || !isfinite(e_after) || !isfinite(g_first) || !isfinite(g_last)) {
    rc = cli_fail("demo", "the energies or gradients are not finite");
    goto done;
  }
  printf("  energy      mean before %.6f, after %.6f (%+.3g)\n", e_before, e_after,
         e_after - e_before);
  printf("  gradient    |dE/dx| per image: first step %.4g, last step %.4g\n", g_first, g_last);
  if (steps > 0) {
    double per_step = t_total / (double)steps;
    double img_steps = (double)B / per_step;
    printf("  speed       %.2f ms/step, %.1f image-steps/s, %.2f GFLOP/s "
           "(%.1f MFLOP per image-step)\n",
           per_step * 1e3, img_steps, img_steps * 2 * fwd_flops / 1e9, 2 * fwd_flops / 1e6);
  }
  rc = EXIT_OK;
  goto done;
backend_failed:
  rc = cli_fail("demo", "the %s backend failed during sampling", ebm_backend_name(be));
done:
  ebm_free(be, ss);
  if (have_io) cli_energy_io_free(&io, be);
  ebm_net_destroy(net);
  free(hx);
  free(hc);
  free(he);
  return cli_backend_close(be, rc);
}
