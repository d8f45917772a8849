/* cmd_bench.c: `vkebm bench`: Langevin throughput of the energy network per backend,
 * configuration and batch size.
 *
 * One Langevin image-step is a forward pass and a backward pass to the input (no parameter
 * gradients), which is what every sampler step costs. Its FLOPs are counted analytically:
 * 2 * forward MACs + 2 * backward-to-input MACs, and a 3x3 conv's backward-to-input costs the
 * same MACs as its forward, so FLOPs per image-step = 2 * ebm_net_forward_flops (convolutions
 * and the head only; elementwise ops, under 1% of the total, are not counted).
 * Method: warm-up steps, then `iters` timed runs of k steps each (k chosen from the warm-up so
 * a run lasts >= 50 ms; fewer runs, at least 3, when that would take over ~10 s), each ending
 * in a device sync; the median run is reported.
 * --json prints one object per line in the format the PyTorch reference script prints, so
 * scripts/compare can join them.
 *
 * --train measures contrastive-divergence iterations per second instead (src/train: render the
 * positives, chains from the replay buffer, K Langevin steps, the parameter pass, Adam) for a
 * recipe, the shipped one by default (tools/train_models.sh: K = 20, step 10, noise 0.005,
 * buffer 1000, lr 5e-4, no EMA, flat chain init), and splits an iteration's time with
 * ebm_trainer_set_profile. The median of --iters runs of --train-steps iterations each.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vkebm/net.h"
#include "vkebm/train.h"
#include "vkebm/shared.h"

#define MAX_LIST 16

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm bench [options]\n\n"
          "Measures Langevin image-steps per second (forward + backward to the input) of the\n"
          "energy network for each backend, configuration and batch size.\n\n"
          "  --backend all|cpu|vulkan  backends to measure (default all: cpu, and vulkan when a\n"
          "                            device exists)\n"
          "  --device N                Vulkan device index (default: choose)\n"
          "  --configs LIST            presets, comma-separated (default default32,paper64)\n"
          "  --batches LIST            batch sizes (default 1,16,64 on cpu, 1,4 on vulkan)\n"
          "  --iters N                 timed runs, the median is reported (default 5)\n"
          "  --warmup N                untimed steps first (default 2)\n"
          "  --json                    one JSON object per line instead of a table\n"
          "  --train                   CD training iterations/s and their time split instead\n"
          "                            (the shipped recipe unless changed below)\n"
          "  --langevin-steps K        --train: Langevin steps per iteration (default 20)\n"
          "  --train-steps N           --train: iterations per timed run (default 10)\n"
          "  --validate                Vulkan validation layer on; any message fails the run\n"
          "  --quiet                   no progress on stderr\n"
          "  -h, --help                this text\n");
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Splits "a,b,c" into at most MAX_LIST pieces (pointers into a copy). */
static int split(char *s, char **out) {
  int n = 0;
  for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
    if (n >= MAX_LIST) return -1;
    out[n++] = tok;
  }
  return n;
}

typedef struct bench_result {
  double ms_per_step, image_steps_per_s, flops_per_image_step, gflops;
} bench_result;

/* One backend, one configuration, one batch. 0 ok, else an exit code. */
static int bench_one(ebm_backend *be, const ebm_net_config *cfg, int B, int iters, int warmup,
                     bench_result *res) {
  char err[512];
  ebm_net *net = NULL;
  if (ebm_net_create(&net, be, cfg, B, 1, err, sizeof err)) {
    fprintf(stderr, "vkebm bench: %s\n", err);
    return EXIT_FAIL;
  }
  cli_energy_io io;
  float *hx = NULL, *hc = NULL, *he = malloc((size_t)B * sizeof *he);
  double *runs = calloc((size_t)iters, sizeof *runs);
  int rc = EXIT_FAIL, have_io = cli_energy_io_alloc(&io, be, cfg, B) == 0;
  if (have_io) {
    hx = malloc(io.nx * sizeof *hx);
    hc = malloc(io.nc * sizeof *hc);
  }
  if (!have_io || !hx || !hc || !he || !runs) {
    fprintf(stderr, "vkebm bench: out of memory at batch %d\n", B);
    goto done;
  }
  for (size_t i = 0; i < io.nx; i++) hx[i] = vkebm_rng_uniform(1, 0, 0, (u32)i);
  for (size_t i = 0; i < io.nc; i++) hc[i] = 2.0f * vkebm_rng_uniform(1, 0, 1, (u32)i) - 1.0f;
  if (ebm_upload(be, ebm_ref_of(io.x), hx, io.nx) || ebm_upload(be, ebm_ref_of(io.c), hc, io.nc))
    goto failed;

  /* warm-up, also sizing the runs */
  double t0 = cli_now_s();
  for (int k = 0; k < warmup; k++) {
    cli_energy_forward(net, &io);
    cli_energy_backward(net, &io);
    if (ebm_sync(be)) goto failed;
  }
  double per = warmup ? (cli_now_s() - t0) / warmup : 0;
  int steps_per_run = per > 0 ? (int)ceil(0.05 / per) : 1;
  if (steps_per_run < 1) steps_per_run = 1;
  if (steps_per_run > 1000) steps_per_run = 1000;
  /* Slow cases (paper64 at large batches, or a loaded machine) get fewer runs, never under 3,
   * so a measurement stays near 10 s. */
  if (per > 0 && iters > 3 && per * steps_per_run * iters > 10.0) {
    int fit = (int)(10.0 / (per * steps_per_run));
    iters = fit < 3 ? 3 : fit;
  }
  for (int r = 0; r < iters; r++) {
    t0 = cli_now_s();
    for (int k = 0; k < steps_per_run; k++) {
      cli_energy_forward(net, &io);
      cli_energy_backward(net, &io);
    }
    if (ebm_download(be, he, ebm_ref_of(io.e), (size_t)B)) goto failed;
    runs[r] = (cli_now_s() - t0) / steps_per_run;
  }
  for (int b = 0; b < B; b++)
    if (!isfinite(he[b])) {
      fprintf(stderr, "vkebm bench: non-finite energy at batch %d\n", B);
      goto done;
    }
  qsort(runs, (size_t)iters, sizeof *runs, cmp_double);
  double med = iters % 2 ? runs[iters / 2] : 0.5 * (runs[iters / 2 - 1] + runs[iters / 2]);
  res->ms_per_step = med * 1e3;
  res->image_steps_per_s = B / med;
  res->flops_per_image_step = 2.0 * ebm_net_forward_flops(cfg);
  res->gflops = res->image_steps_per_s * res->flops_per_image_step / 1e9;
  rc = 0;
  goto done;
failed:
  fprintf(stderr, "vkebm bench: the %s backend failed\n", ebm_backend_name(be));
done:
  free(runs);
  if (have_io) cli_energy_io_free(&io, be);
  free(hx);
  free(hc);
  free(he);
  ebm_net_destroy(net);
  return rc;
}

typedef struct train_result {
  double it_per_s, ms_per_it;
  ebm_train_profile split; /* per iteration, in seconds */
} train_result;

/* CD iterations per second for one config and batch on one backend: the shipped recipe with K
 * Langevin steps; warm-up iterations, then `iters` runs of `steps` iterations, median run; the
 * split is the profile of every timed iteration, per iteration. 0 ok, else an exit code. */
static int bench_train_one(ebm_backend *be, const char *preset, int B, int K, int steps,
                           int iters, int warmup, train_result *res) {
  char err[512];
  ebm_train_config tc;
  if (ebm_train_config_default(&tc, "shape", "general", preset, 0, err, sizeof err)) {
    fprintf(stderr, "vkebm bench: %s\n", err);
    return EXIT_FAIL;
  }
  tc.batch = B;
  tc.langevin_steps = K;
  tc.step_lr = 10.0f;
  tc.noise = 0.005f;
  tc.buffer_size = 1000;
  tc.lr = 5e-4f;
  tc.ema = 0.0f;
  tc.chain_init = 2; /* flat */
  tc.seed = 1;
  ebm_trainer *tr = NULL;
  if (ebm_train_config_validate(&tc, err, sizeof err) ||
      ebm_trainer_create(&tr, be, &tc, NULL, NULL, 0, err, sizeof err)) {
    fprintf(stderr, "vkebm bench: %s\n", err);
    return EXIT_FAIL;
  }
  int rc = EXIT_FAIL;
  double *runs = calloc((size_t)iters, sizeof *runs);
  ebm_train_profile prof = {0};
  if (!runs) goto done;
  for (int k = 0; k < warmup; k++)
    if (ebm_trainer_step(tr, NULL, err, sizeof err) != EBM_TRAIN_OK) goto failed;
  ebm_trainer_set_profile(tr, &prof);
  for (int r = 0; r < iters; r++) {
    double t0 = cli_now_s();
    for (int k = 0; k < steps; k++)
      if (ebm_trainer_step(tr, NULL, err, sizeof err) != EBM_TRAIN_OK) goto failed;
    runs[r] = (cli_now_s() - t0) / steps;
  }
  ebm_trainer_set_profile(tr, NULL);
  qsort(runs, (size_t)iters, sizeof *runs, cmp_double);
  double med = iters % 2 ? runs[iters / 2] : 0.5 * (runs[iters / 2 - 1] + runs[iters / 2]);
  res->ms_per_it = med * 1e3;
  res->it_per_s = 1.0 / med;
  const double n = prof.iters ? (double)prof.iters : 1.0;
  res->split = prof;
  res->split.data_s /= n, res->split.buffer_s /= n, res->split.langevin_s /= n;
  res->split.param_s /= n, res->split.optim_s /= n;
  rc = 0;
  goto done;
failed:
  fprintf(stderr, "vkebm bench: training step failed: %s\n", err);
done:
  free(runs);
  ebm_trainer_destroy(tr);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  static const struct option opts[] = {
      {"backend", required_argument, 0, 'b'}, {"device", required_argument, 0, 'D'},
      {"configs", required_argument, 0, 'c'}, {"batches", required_argument, 0, 'n'},
      {"iters", required_argument, 0, 'i'},   {"warmup", required_argument, 0, 'w'},
      {"json", no_argument, 0, 'j'},          {"validate", no_argument, 0, 'V'},
      {"train", no_argument, 0, 't'},         {"langevin-steps", required_argument, 0, 'K'},
      {"train-steps", required_argument, 0, 'S'},
      {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *which = "all";
  char configs_buf[256] = "default32,paper64", batches_buf[256] = "";
  long device = -1, iters = 5, warmup = 2;
  int json = 0, validate = 0, quiet = 0, train = 0;
  long lsteps = 20, train_steps = 10;
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'b':
      if (strcmp(optarg, "all") && strcmp(optarg, "cpu") && strcmp(optarg, "vulkan"))
        return cli_usage("bench", "--backend: expected all, cpu or vulkan, not '%s'", optarg);
      which = optarg;
      break;
    case 'D':
      if (cli_parse_int(optarg, 0, 1000, &device))
        return cli_usage("bench", "--device: expected an index >= 0, not '%s'", optarg);
      break;
    case 'c': snprintf(configs_buf, sizeof configs_buf, "%s", optarg); break;
    case 'n': snprintf(batches_buf, sizeof batches_buf, "%s", optarg); break;
    case 'i':
      if (cli_opt_int("bench", "iters", optarg, 1, 1000, &iters)) return EXIT_USAGE;
      break;
    case 'w':
      if (cli_opt_int("bench", "warmup", optarg, 0, 1000, &warmup)) return EXIT_USAGE;
      break;
    case 'j': json = 1; break;
    case 't': train = 1; break;
    case 'K':
      if (cli_opt_int("bench", "langevin-steps", optarg, 0, 10000, &lsteps)) return EXIT_USAGE;
      break;
    case 'S':
      if (cli_opt_int("bench", "train-steps", optarg, 1, 100000, &train_steps)) return EXIT_USAGE;
      break;
    case 'V': validate = 1; break;
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return EXIT_OK;
    default: return cli_bad_option("bench", argv, ch, opts);
    }
  }
  if (optind < argc) return cli_usage("bench", "unexpected argument '%s'", argv[optind]);

  char *configs[MAX_LIST];
  int nconfigs = split(configs_buf, configs);
  if (nconfigs <= 0) return cli_usage("bench", "--configs: expected a comma-separated list");
  ebm_net_config cfgs[MAX_LIST];
  for (int i = 0; i < nconfigs; i++)
    if (ebm_net_config_preset(&cfgs[i], configs[i], 2))
      return cli_usage("bench", "--configs: unknown preset '%s' (tiny, small32, default32, paper64)",
                       configs[i]);
  long user_batches[MAX_LIST];
  int nuser = 0;
  if (batches_buf[0]) {
    char *items[MAX_LIST];
    nuser = split(batches_buf, items);
    if (nuser <= 0) return cli_usage("bench", "--batches: expected a comma-separated list");
    for (int i = 0; i < nuser; i++)
      if (cli_parse_int(items[i], 1, 4096, &user_batches[i]))
        return cli_usage("bench", "--batches: '%s' is not a batch size in 1..4096", items[i]);
  }

  ebm_backend_kind kinds[2];
  int nkinds = 0;
  if (strcmp(which, "vulkan")) kinds[nkinds++] = EBM_BACKEND_CPU;
  if (strcmp(which, "cpu")) kinds[nkinds++] = EBM_BACKEND_VULKAN;

  int rc = EXIT_OK, measured = 0;
  if (!json && train)
    printf("%-7s %-10s %5s %3s %9s %8s   %s\n", "backend", "config", "batch", "K", "ms/iter",
           "it/s", "split ms: langevin param optim data buffer");
  else if (!json)
    printf("%-7s %-10s %5s %10s %14s %16s %9s\n", "backend", "config", "batch", "ms/step",
           "image-steps/s", "MFLOP/img-step", "GFLOP/s");
  for (int ki = 0; ki < nkinds && rc == EXIT_OK; ki++) {
    ebm_backend *be = NULL;
    ebm_backend_options o = {.kind = kinds[ki], .device_index = (int)device,
                             .validation = validate, .verbose = 0};
    char err[512];
    int crc = ebm_backend_create(&be, &o, err, sizeof err);
    if (crc == EBM_ERR_NO_DEVICE && !strcmp(which, "all")) {
      if (!quiet) fprintf(stderr, "vkebm bench: vulkan skipped: %s\n", err);
      continue;
    }
    if (crc == EBM_ERR_NO_DEVICE) {
      fprintf(stderr, "vkebm bench: no usable Vulkan device: %s\n", err);
      return EXIT_NO_DEVICE;
    }
    if (crc) return cli_fail("bench", "%s", err);
    if (!quiet)
      fprintf(stderr, "vkebm bench: %s on %s (%s)\n", ebm_backend_name(be),
              ebm_backend_device_name(be), ebm_backend_describe(be));
    if (train) {
      const long *batches = nuser ? user_batches : (const long[]){16};
      const int nbatches = nuser ? nuser : 1;
      for (int ci = 0; ci < nconfigs && rc == EXIT_OK; ci++)
        for (int bi = 0; bi < nbatches && rc == EXIT_OK; bi++) {
          train_result res;
          const int B = (int)batches[bi];
          if (bench_train_one(be, configs[ci], B, (int)lsteps, (int)train_steps, (int)iters,
                              (int)warmup, &res)) {
            rc = EXIT_FAIL;
            break;
          }
          measured++;
          const ebm_train_profile *p = &res.split;
          if (json) {
            printf("{\"impl\":\"vkebm\",\"kind\":\"train\",\"backend\":\"%s\",\"config\":\"%s\","
                   "\"batch\":%d,\"langevin_steps\":%ld,\"it_per_s\":%.6g,\"ms_per_it\":%.6g,"
                   "\"split_ms\":{\"langevin\":%.4g,\"param\":%.4g,\"optim\":%.4g,"
                   "\"data\":%.4g,\"buffer\":%.4g},\"device\":",
                   ebm_backend_name(be), configs[ci], B, lsteps, res.it_per_s, res.ms_per_it,
                   p->langevin_s * 1e3, p->param_s * 1e3, p->optim_s * 1e3, p->data_s * 1e3,
                   p->buffer_s * 1e3);
            cli_json_string(stdout, ebm_backend_device_name(be));
            printf("}\n");
          } else {
            printf("%-7s %-10s %5d %3ld %9.2f %8.2f   %.2f %.2f %.2f %.2f %.2f\n",
                   ebm_backend_name(be), configs[ci], B, lsteps, res.ms_per_it, res.it_per_s,
                   p->langevin_s * 1e3, p->param_s * 1e3, p->optim_s * 1e3, p->data_s * 1e3,
                   p->buffer_s * 1e3);
          }
          fflush(stdout);
        }
      rc = cli_backend_close(be, rc);
      continue;
    }
    long defaults_cpu[] = {1, 16, 64}, defaults_vk[] = {1, 4};
    const long *batches = nuser ? user_batches : kinds[ki] == EBM_BACKEND_CPU ? defaults_cpu : defaults_vk;
    int nbatches = nuser ? nuser : kinds[ki] == EBM_BACKEND_CPU ? 3 : 2;
    for (int ci = 0; ci < nconfigs && rc == EXIT_OK; ci++) {
      for (int bi = 0; bi < nbatches && rc == EXIT_OK; bi++) {
        bench_result res;
        int B = (int)batches[bi];
        if (bench_one(be, &cfgs[ci], B, (int)iters, (int)warmup, &res)) {
          rc = EXIT_FAIL;
          break;
        }
        measured++;
        if (json) {
          printf("{\"impl\":\"vkebm\",\"backend\":\"%s\",\"config\":\"%s\",\"resolution\":%d,"
                 "\"batch\":%d,\"image_steps_per_s\":%.6g,\"ms_per_step\":%.6g,"
                 "\"flops_per_image_step\":%.0f,\"gflops\":%.6g,\"device\":",
                 ebm_backend_name(be), configs[ci], cfgs[ci].resolution, B,
                 res.image_steps_per_s, res.ms_per_step, res.flops_per_image_step, res.gflops);
          cli_json_string(stdout, ebm_backend_device_name(be));
          printf("}\n");
        } else {
          printf("%-7s %-10s %5d %10.2f %14.1f %16.1f %9.2f\n", ebm_backend_name(be), configs[ci],
                 B, res.ms_per_step, res.image_steps_per_s, res.flops_per_image_step / 1e6,
                 res.gflops);
        }
        fflush(stdout);
      }
    }
    rc = cli_backend_close(be, rc);
  }
  if (rc == EXIT_OK && !measured) return cli_fail("bench", "nothing was measured");
  return rc;
}
