/* cmd_devices.c: `vkebm devices`: every Vulkan device with the limits that matter for compute,
 * which one `auto`/`--backend vulkan` would choose, the cpu backend's description and its
 * convolution path (direct or im2col + BLAS) for every layer of a preset, and whether MPI
 * (data-parallel training, docs/distributed.md) is built in.
 * Exit 0, or 77 when there is no Vulkan loader or device (the cpu backend is still listed). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vkebm/net.h"
#include "vkebm/train_comm.h"

static void usage(FILE *f) {
  fprintf(f, "usage: vkebm devices [--config PRESET] [--help]\n\n"
             "Lists the Vulkan devices (index, name, type, API version, subgroup size, workgroup,\n"
             "shared memory, push constants, storage-buffer range, device-local memory), marks the\n"
             "one the vulkan backend picks by default (`*`; env VKEBM_DEVICE overrides), and\n"
             "describes the cpu backend with its convolution path for every layer of PRESET\n"
             "(default small32; tiny, small32, default32, paper64), and whether MPI support\n"
             "(`mpirun -np N vkebm train`) is built in. Exit 77 when no Vulkan device exists.\n");
}

/* The cpu backend's convolution path per layer of a preset (forward / input gradient /
 * weight gradient); the vulkan backend runs its shaders for every layer. */
static void print_conv_paths(const ebm_backend *be, const ebm_net_config *cfg, const char *preset) {
  ebm_conv_info convs[EBM_MAX_PARAMS];
  int n = ebm_net_config_convs(cfg, convs, EBM_MAX_PARAMS);
  if (n > EBM_MAX_PARAMS) n = EBM_MAX_PARAMS;
  printf("cpu conv path per layer of %s (forward / input gradient / weight gradient):\n", preset);
  for (int i = 0; i < n; i++) {
    const ebm_conv_info *k = &convs[i];
    printf("  %-24s %4d -> %-4d %3dx%-3d %s / %s / %s\n", k->name, k->ci, k->co, k->size,
           k->size, ebm_backend_conv_path(be, EBM_CONV_FORWARD, k->ci, k->co, k->size, k->size),
           ebm_backend_conv_path(be, EBM_CONV_BACKWARD_INPUT, k->ci, k->co, k->size, k->size),
           ebm_backend_conv_path(be, EBM_CONV_BACKWARD_WEIGHT, k->ci, k->co, k->size, k->size));
  }
}

int cmd_devices(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *preset = "small32";
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return EXIT_OK;
    }
    if (c == 'c') {
      preset = optarg;
      continue;
    }
    return cli_bad_option("devices", argv, c, opts);
  }
  ebm_net_config cfg;
  if (ebm_net_config_preset(&cfg, preset, 2))
    return cli_usage("devices", "--config: unknown preset '%s' (tiny, small32, default32, paper64)",
                     preset);
  if (optind < argc) return cli_usage("devices", "unexpected argument '%s'", argv[optind]);

  ebm_vulkan_device infos[16];
  int n = ebm_vulkan_devices(infos, 16), chosen = -1;
  for (int i = 0; i < n; i++)
    if (infos[i].chosen) chosen = i;
  if (n < 0)
    printf("vulkan: no Vulkan loader or driver could create an instance\n");
  else if (n == 0)
    printf("vulkan: the loader found no devices\n");
  else
    printf("vulkan devices (* = used by the vulkan backend):\n");
  for (int i = 0; i < n; i++) {
    const ebm_vulkan_device *d = &infos[i];
    printf("%c %d: %s\n", i == chosen ? '*' : ' ', i, d->name);
    printf("     type %s, Vulkan %u.%u.%u, driver %s%s%s\n", d->type, d->api_major, d->api_minor,
           d->api_patch, d->driver_name[0] ? d->driver_name : "?",
           d->driver_info[0] ? " " : "", d->driver_info);
    printf("     subgroup %u, workgroup <= %u invocations (%u x %u x %u), shared memory %u KiB, "
           "push constants %u B\n", d->subgroup_size, d->max_workgroup_invocations,
           d->max_workgroup_size[0], d->max_workgroup_size[1], d->max_workgroup_size[2],
           d->max_shared_memory / 1024, d->max_push_constants);
    printf("     storage-buffer range %llu MiB, offset alignment %u B, device-local memory %.1f GiB%s\n",
           (unsigned long long)(d->max_storage_buffer_range >> 20), d->min_storage_offset_alignment,
           (double)d->device_local_bytes / (1024.0 * 1024.0 * 1024.0),
           d->has_compute_queue ? "" : ", NO compute queue");
  }
  const char *auto_choice = "cpu";
  if (chosen >= 0 && infos[chosen].hardware) auto_choice = "vulkan";
  printf("--backend auto uses: %s (vulkan only on a hardware GPU)\n", auto_choice);

  ebm_backend_options o = {.kind = EBM_BACKEND_CPU};
  ebm_backend *cpu = NULL;
  char err[512];
  if (ebm_backend_create(&cpu, &o, err, sizeof err) == 0) {
    printf("cpu: %s: %s\n", ebm_backend_device_name(cpu), ebm_backend_describe(cpu));
    print_conv_paths(cpu, &cfg, preset);
    ebm_backend_destroy(cpu);
  } else {
    printf("cpu: unavailable: %s\n", err);
  }
  if (ebm_mpi_built())
    printf("mpi: built in (%s): `mpirun -np N vkebm train` trains data-parallel, one device per "
           "rank\n", ebm_mpi_version());
  else
    printf("mpi: %s: `vkebm train` runs as one process\n", ebm_mpi_version());
  if (chosen < 0) {
    fprintf(stderr, "vkebm devices: no usable Vulkan device%s\n",
            n < 0 ? " (no Vulkan loader or driver)" : "");
    return EXIT_NO_DEVICE;
  }
  return EXIT_OK;
}
