/* cmd_data.c: `vkebm data`: labelled scene renders from the built-in generator.
 *
 *   vkebm data --spec SPEC -n N [--seed S] [--size 64] [-o DIR] [--grid FILE.png]
 *
 * Writes DIR/000000.png ... (8-bit RGB, tEXt: spec, seed, index, labels) and DIR/labels.csv (a
 * '#' line with the format version and settings, a header row, then one row per image: index,
 * object count, and per object x, y, size, shape, colour). --grid writes a contact sheet of the
 * first --grid-n images. Image i is scene `first + i` of the spec: a pure function of
 * (spec, seed, index), so any slice can be regenerated alone.
 *
 * --backend cpu (default) renders with the CPU renderer on every core; vulkan renders with
 * shaders/scene_render.comp through the ebm_scene_render op, in batches.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vkebm/fileio.h"
#include "vkebm/image.h"
#include "vkebm/scene.h"

#define DATA_BATCH 256

static void usage(FILE *f) {
  fprintf(f,
          "usage: vkebm data --spec SPEC -n N [--seed S] [--size PX] [-o DIR] [--grid FILE.png]\n"
          "\n"
          "Renders exactly labelled scenes of objects on a floor (no files to download).\n"
          "\n"
          "  --spec SPEC        %s\n"
          "  -n, --count N      number of images (1..10000000)\n"
          "  --seed S           sampling seed (default: picked and printed)\n"
          "  --first I          index of the first scene (default 0): image i is scene I+i\n"
          "  --size PX          image side, 8..256 (default 64)\n"
          "  -o, --out DIR      write DIR/000000.png ... and DIR/labels.csv (DIR empty or new)\n"
          "  --force            write into a non-empty DIR (its labels.csv is removed first)\n"
          "  --grid FILE.png    write a contact sheet of the first --grid-n images\n"
          "  --grid-n K         images on the contact sheet (default min(N, 64))\n"
          "  --nrow K           images per grid row (default 8)\n"
          "  --padding PX       grid padding (default 2)\n"
          "  --no-light-jitter  fixed light color, intensity and direction\n"
          "  --no-camera-jitter fixed camera\n"
          "  --no-color-jitter  exact palette colors (also --no-colour-jitter)\n"
          "  --backend B        cpu (default) | vulkan | auto\n"
          "  --validate         vulkan: enable the validation layer (messages fail the run)\n"
          "  -q, --quiet        no progress on stderr\n"
          "  -h, --help         this text\n",
          scene_spec_usage());
}

static int mkdir_p(const char *dir) {
  char buf[4096];
  if (strlen(dir) >= sizeof buf) return -1;
  strcpy(buf, dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
  struct stat st;
  return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Entries in dir besides . and .. (stale temporary files of dead writers removed first), or -1. */
static int dir_entries(const char *dir) {
  io_clean_stale_temps_in(dir);
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* One CSV row's object columns: ",x,y,size,shape,colour" per object. */
static size_t object_fields(char *out, size_t len, const scene_desc *d) {
  size_t used = 0;
  for (int k = 0; k < d->nobj && used < len; k++)
    used += (size_t)snprintf(out + used, len - used, ",%.9g,%.9g,%.9g,%s,%s", d->obj[k].x,
                             d->obj[k].y, d->obj[k].size, scene_shape_name(d->obj[k].shape),
                             scene_colour_name(d->obj[k].colour));
  return used;
}

/* A growing text buffer for labels.csv. */
typedef struct text_buf {
  char *data;
  size_t len, cap;
  int failed;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = b->failed ? 0 : vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (b->failed || n < 0) {
      b->failed = 1;
      return;
    }
    if (b->data && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
    char *p = realloc(b->data, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->data = p;
    b->cap = cap;
  }
}

typedef struct renderer {
  ebm_backend *be; /* NULL: CPU renderer */
  ebm_buffer *scenes, *images;
  int threads;
} renderer;

static int render_batch(renderer *r, float *images, const float *packed, int n, int size) {
  if (!r->be) {
    scene_render_cpu(images, packed, n, size, NULL, r->threads);
    return 0;
  }
  size_t nscn = (size_t)n * VKEBM_SCENE_FLOATS, nimg = (size_t)n * 3 * (size_t)size * (size_t)size;
  if (ebm_upload(r->be, ebm_ref_of(r->scenes), packed, nscn) != 0) return -1;
  ebm_scene_render(r->be, ebm_ref_of(r->images), ebm_ref_of(r->scenes), n, size);
  return ebm_download(r->be, images, ebm_ref_of(r->images), nimg);
}

int cmd_data(int argc, char **argv) {
  static const struct option opts[] = {
      {"spec", required_argument, 0, 's'},   {"count", required_argument, 0, 'n'},
      {"seed", required_argument, 0, 'S'},   {"first", required_argument, 0, 'f'},
      {"size", required_argument, 0, 'z'},   {"out", required_argument, 0, 'o'},
      {"grid", required_argument, 0, 'g'},   {"grid-n", required_argument, 0, 'G'},
      {"nrow", required_argument, 0, 'r'},   {"padding", required_argument, 0, 'p'},
      {"no-light-jitter", no_argument, 0, 'L'}, {"no-camera-jitter", no_argument, 0, 'C'},
      {"no-colour-jitter", no_argument, 0, 'J'}, {"no-color-jitter", no_argument, 0, 'J'},
      {"backend", required_argument, 0, 'b'}, {"validate", no_argument, 0, 'V'},
      {"force", no_argument, 0, 'F'},
      {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *spec_text = NULL, *out_dir = NULL, *grid_path = NULL;
  long count = -1, seed = -1, first = 0, size = 64, grid_n = -1, nrow = 8, padding = 2;
  int no_light = 0, no_camera = 0, no_colour = 0, quiet = 0, validate = 0, force = 0;
  int backend = EBM_BACKEND_CPU;
  int o;
  opterr = 0;
  optind = 1;
  while ((o = getopt_long(argc, argv, "+n:o:qh", opts, NULL)) != -1) {
    switch (o) {
    case 's': spec_text = optarg; break;
    case 'n':
      if (cli_parse_int(optarg, 1, 10000000, &count)) return cli_usage("data", "-n wants 1..10000000, got '%s'", optarg);
      break;
    case 'S':
      if (cli_parse_int(optarg, 0, 4294967295L, &seed)) return cli_usage("data", "--seed wants 0..4294967295, got '%s'", optarg);
      break;
    case 'f':
      if (cli_parse_int(optarg, 0, 4294967295L, &first)) return cli_usage("data", "--first wants 0..4294967295, got '%s'", optarg);
      break;
    case 'z':
      if (cli_parse_int(optarg, SCENE_MIN_RENDER_SIZE, SCENE_MAX_RENDER_SIZE, &size))
        return cli_usage("data", "--size wants %d..%d, got '%s'", SCENE_MIN_RENDER_SIZE, SCENE_MAX_RENDER_SIZE, optarg);
      break;
    case 'o': out_dir = optarg; break;
    case 'g': grid_path = optarg; break;
    case 'G':
      if (cli_parse_int(optarg, 1, 4096, &grid_n)) return cli_usage("data", "--grid-n wants 1..4096, got '%s'", optarg);
      break;
    case 'r':
      if (cli_parse_int(optarg, 1, 1024, &nrow)) return cli_usage("data", "--nrow wants 1..1024, got '%s'", optarg);
      break;
    case 'p':
      if (cli_parse_int(optarg, 0, 64, &padding)) return cli_usage("data", "--padding wants 0..64, got '%s'", optarg);
      break;
    case 'L': no_light = 1; break;
    case 'C': no_camera = 1; break;
    case 'J': no_colour = 1; break;
    case 'b':
      backend = cli_parse_backend(optarg);
      if (backend < 0) return cli_usage("data", "--backend wants auto, cpu or vulkan, got '%s'", optarg);
      break;
    case 'V': validate = 1; break;
    case 'F': force = 1; break;
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return EXIT_OK;
    default: return cli_bad_option("data", argv, o, opts);
    }
  }
  if (optind < argc) return cli_usage("data", "unexpected argument '%s' (try `vkebm data --help`)", argv[optind]);
  if (!spec_text) return cli_usage("data", "--spec is required; valid specs: %s", scene_spec_usage());
  scene_spec spec;
  char err[1024];
  if (scene_spec_parse(spec_text, &spec, err, sizeof err)) return cli_usage("data", "%s", err);
  if (count < 0) return cli_usage("data", "-n N is required");
  if (!out_dir && !grid_path) return cli_usage("data", "nothing to write: give -o DIR and/or --grid FILE.png");
  if (first + count - 1 > 4294967295L) return cli_usage("data", "--first + N runs past scene index 4294967295");
  if (no_light) spec.light_jitter = 0;
  if (no_camera) spec.camera_jitter = 0;
  if (no_colour) spec.colour_jitter = 0;
  if (seed < 0) {
    seed = (long)((uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16));
    fprintf(stderr, "vkebm data: --seed %ld\n", seed);
  }
  if (grid_n < 0) grid_n = count < 64 ? count : 64;
  if (grid_n > count) grid_n = count;

  if (out_dir && mkdir_p(out_dir) != 0)
    return cli_fail("data", "cannot create output directory '%s': %s", out_dir, strerror(errno));
  if (grid_path && io_check_output(grid_path, err, sizeof err)) return cli_fail("data", "--grid: %s", err);
  if (out_dir) {
    /* A dataset is its images and labels.csv together. Writing over another one would leave, if
     * interrupted, the old labels beside new images (a red cone labelled an orange cylinder):
     * a non-empty folder needs --force, and then its labels.csv goes first, so an interrupted
     * run leaves a folder train refuses (no labels.csv) rather than one that lies. The new
     * labels.csv is written last, atomically, once every image is in place. */
    int entries = dir_entries(out_dir);
    if (entries < 0) return cli_fail("data", "cannot read %s: %s", out_dir, strerror(errno));
    if (entries > 0 && !force)
      return cli_usage("data", "%s is not empty: give an empty or new folder, or --force to write "
                               "over it", out_dir);
    char labels[4200];
    snprintf(labels, sizeof labels, "%s/labels.csv", out_dir);
    if (unlink(labels) != 0 && errno != ENOENT)
      return cli_fail("data", "cannot remove the old %s: %s", labels, strerror(errno));
  }

  renderer r = {0};
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  r.threads = cores > 0 ? (int)cores : 1;
  int batch = count < DATA_BATCH ? (int)count : DATA_BATCH;
  if (backend != EBM_BACKEND_CPU) {
    int rc = cli_backend_open("data", &r.be, (ebm_backend_kind)backend, -1, validate, quiet);
    if (rc) return rc;
    r.scenes = ebm_alloc(r.be, (size_t)batch * VKEBM_SCENE_FLOATS);
    r.images = ebm_alloc(r.be, (size_t)batch * 3 * (size_t)size * (size_t)size);
    if (!r.scenes || !r.images) {
      ebm_free(r.be, r.scenes);
      ebm_free(r.be, r.images);
      return cli_backend_close(r.be, cli_fail("data", "cannot allocate %d scenes on the device", batch));
    }
  }

  char spec_name[64];
  scene_spec_format(&spec, spec_name, sizeof spec_name);
  size_t plane = (size_t)size * (size_t)size;
  float *packed = malloc((size_t)batch * VKEBM_SCENE_FLOATS * sizeof(float));
  float *images = malloc((size_t)batch * 3 * plane * sizeof(float));
  float *grid_images = grid_path ? malloc((size_t)grid_n * 3 * plane * sizeof(float)) : NULL;
  uint8_t *rgb = malloc(3 * plane);
  text_buf csv = {0};
  int rc = EXIT_OK;
  if (!packed || !images || !rgb || (grid_path && !grid_images)) {
    rc = cli_fail("data", "out of memory");
    goto done;
  }
  if (out_dir) {
    tb_printf(&csv, "# vkebm scene labels v1; spec=%s; seed=%ld; first=%ld; size=%ld\nindex,nobj",
              spec_name, seed, first, size);
    for (int k = 0; k < spec.nobj; k++) tb_printf(&csv, ",x%d,y%d,size%d,shape%d,colour%d", k, k, k, k, k);
    tb_printf(&csv, "\n");
  }
  double t0 = cli_now_s(), render_s = 0;
  /* without -o only the contact sheet's images are rendered */
  const long render_n = out_dir ? count : grid_n;
  for (long done_n = 0; done_n < render_n; done_n += batch) {
    int nb = render_n - done_n < batch ? (int)(render_n - done_n) : batch;
    uint32_t base = (uint32_t)(first + done_n);
    scene_sample_packed(&spec, (uint32_t)seed, base, nb, packed);
    double tr = cli_now_s();
    if (render_batch(&r, images, packed, nb, (int)size) != 0) {
      rc = cli_fail("data", "rendering on the %s backend failed", r.be ? ebm_backend_name(r.be) : "cpu");
      goto done;
    }
    render_s += cli_now_s() - tr;
    for (int i = 0; i < nb; i++) {
      long gi = done_n + i;
      if (grid_images && gi < grid_n)
        memcpy(grid_images + (size_t)gi * 3 * plane, images + (size_t)i * 3 * plane, 3 * plane * sizeof(float));
      if (!out_dir) continue;
      scene_desc d;
      scene_sample(&spec, (uint32_t)seed, base + (uint32_t)i, &d);
      char fields[512], seed_s[16], index_s[16], path[4200];
      object_fields(fields, sizeof fields, &d);
      snprintf(seed_s, sizeof seed_s, "%ld", seed);
      snprintf(index_s, sizeof index_s, "%u", base + (uint32_t)i);
      tb_printf(&csv, "%u,%d%s\n", base + (uint32_t)i, d.nobj, fields);
      img_text text[] = {{"Software", "vkebm " VKEBM_VERSION}, {"vkebm.spec", spec_name},
                         {"vkebm.seed", seed_s}, {"vkebm.index", index_s},
                         {"vkebm.labels", fields + 1}};
      if (snprintf(path, sizeof path, "%s/%06u.png", out_dir, base + (uint32_t)i) >= (int)sizeof path) {
        rc = cli_fail("data", "output path too long");
        goto done;
      }
      img_chw_to_rgb8(rgb, images + (size_t)i * 3 * plane, (int)size, (int)size);
      if (img_write_png_rgb8(path, rgb, (int)size, (int)size, text, 5, err, sizeof err) != 0) {
        rc = cli_fail("data", "%s", err);
        goto done;
      }
    }
    if (!quiet && render_n > batch)
      fprintf(stderr, "vkebm data: %ld/%ld\n", done_n + nb, render_n);
  }
  if (out_dir) {
    char path[4200];
    if (csv.failed) {
      rc = cli_fail("data", "out of memory for labels.csv");
      goto done;
    }
    snprintf(path, sizeof path, "%s/labels.csv", out_dir);
    if (io_write_atomic(path, csv.data, csv.len, err, sizeof err) != 0) {
      rc = cli_fail("data", "%s", err);
      goto done;
    }
  }
  if (grid_path) {
    int gw, gh;
    uint8_t *grid = img_make_grid(grid_images, (int)grid_n, (int)size, (int)size, (int)nrow,
                                  (int)padding, 0.0f, &gw, &gh);
    if (!grid) {
      rc = cli_fail("data", "contact sheet too large (%ld images of %ld px)", grid_n, size);
      goto done;
    }
    char seed_s[16];
    snprintf(seed_s, sizeof seed_s, "%ld", seed);
    img_text text[] = {{"Software", "vkebm " VKEBM_VERSION}, {"vkebm.spec", spec_name},
                       {"vkebm.seed", seed_s}};
    int wrc = img_write_png_rgb8(grid_path, grid, gw, gh, text, 3, err, sizeof err);
    free(grid);
    if (wrc != 0) {
      rc = cli_fail("data", "%s", err);
      goto done;
    }
  }
  if (!quiet)
    fprintf(stderr, "vkebm data: %ld %ldx%ld scenes of %s (seed %ld) on %s: %.1f renders/s, %.2f s total\n",
            render_n, size, size, spec_name, seed, r.be ? ebm_backend_name(r.be) : "cpu",
            render_s > 0 ? (double)render_n / render_s : 0.0, cli_now_s() - t0);
done:
  free(packed);
  free(images);
  free(grid_images);
  free(rgb);
  free(csv.data);
  if (r.be) {
    ebm_free(r.be, r.scenes);
    ebm_free(r.be, r.images);
    rc = cli_backend_close(r.be, rc);
  }
  return rc;
}
