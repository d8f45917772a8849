/* model.c: model files (include/vkebm/model.h): a network's parameters, its spectral-norm
 * vectors, optional extra tensors and its metadata, as safetensors.
 *
 * Owns the metadata schema (keys, their parsing and validation) and the rule that a file must
 * hold exactly the tensors the configuration implies: anything missing, misshaped or
 * unexpected is refused by name. Tensor data and the file format itself are the safetensors
 * module's.
 */
#include "vkebm/model.h"
#include "vkebm/fileio.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkebm/safetensors.h"

#define EXTRA_PREFIX "extra."
#define SN_U_PREFIX "sn_u."


/* ---- label space ------------------------------------------------------------------------- */

void ebm_model_info_default(ebm_model_info *info, const ebm_net_config *cfg) {
  memset(info, 0, sizeof *info);
  info->config = *cfg;
  snprintf(info->concept, sizeof info->concept, "unnamed");
  info->label_kind = EBM_LABEL_VECTOR;
  for (int k = 0; k < cfg->label_dim && k < EBM_MAX_LABEL; k++) {
    snprintf(info->label_names[k], EBM_LABEL_NAME_MAX, "c%d", k);
    info->label_min[k] = -1.0f;
    info->label_max[k] = 1.0f;
  }
}

static int name_ok(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s == ',' || (unsigned char)*s < 33 || (unsigned char)*s > 126) return 0;
  return 1;
}

int ebm_model_info_validate(const ebm_model_info *info, char *err, size_t errlen) {
  int L = info->config.label_dim;
  if (L < 1 || L > EBM_MAX_LABEL) return io_fail(err, errlen, "label_dim %d out of range", L);
  if (!info->concept[0] || !name_ok(info->concept))
    return io_fail(err, errlen, "concept name '%s' is empty or has spaces/commas", info->concept);
  if (info->label_kind != EBM_LABEL_ONEHOT && info->label_kind != EBM_LABEL_VECTOR)
    return io_fail(err, errlen, "unknown label kind %d", (int)info->label_kind);
  for (int k = 0; k < L; k++) {
    if (!name_ok(info->label_names[k]))
      return io_fail(err, errlen, "label name %d ('%s') is empty or has spaces/commas", k,
                  info->label_names[k]);
    for (int j = 0; j < k; j++)
      if (!strcmp(info->label_names[j], info->label_names[k]))
        return io_fail(err, errlen, "label name '%s' appears twice", info->label_names[k]);
    if (info->label_kind == EBM_LABEL_VECTOR &&
        !(isfinite(info->label_min[k]) && isfinite(info->label_max[k]) &&
          info->label_min[k] < info->label_max[k]))
      return io_fail(err, errlen, "label '%s': range [%g, %g] is not a finite interval",
                  info->label_names[k], info->label_min[k], info->label_max[k]);
  }
  return 0;
}

int ebm_model_label_index(const ebm_model_info *info, const char *name) {
  for (int k = 0; k < info->config.label_dim && k < EBM_MAX_LABEL; k++)
    if (!strcmp(info->label_names[k], name)) return k;
  return -1;
}

/* ---- metadata parsing -------------------------------------------------------------------- */

static const char *need(const st_file *f, const char *key, char *err, size_t errlen) {
  const char *v = st_meta_get(f, key);
  if (!v) io_fail(err, errlen, "model metadata lacks '%s'", key);
  return v;
}

static int meta_int(const st_file *f, const char *key, long lo, long hi, int *out, char *err,
                    size_t errlen) {
  const char *v = need(f, key, err, errlen);
  if (!v) return -1;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi)
    return io_fail(err, errlen, "model metadata '%s' = '%.40s' is not an integer in %ld..%ld", key, v,
                lo, hi);
  *out = (int)x;
  return 0;
}

/* Splits a comma-separated list into exactly n fields of at most cap-1 characters. */
static int split_list(const char *s, int n, char (*fields)[EBM_LABEL_NAME_MAX], const char *key,
                      char *err, size_t errlen) {
  int count = 0;
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (count >= n)
      return io_fail(err, errlen, "model metadata '%s' has more than %d entries", key, n);
    if (len == 0 || len >= EBM_LABEL_NAME_MAX)
      return io_fail(err, errlen, "model metadata '%s': entry %d is empty or longer than %d", key,
                  count, EBM_LABEL_NAME_MAX - 1);
    memcpy(fields[count], p, len);
    fields[count][len] = 0;
    count++;
    if (!comma) break;
    p = comma + 1;
  }
  if (count != n)
    return io_fail(err, errlen, "model metadata '%s' has %d entries, label_dim is %d", key, count, n);
  return 0;
}

static int parse_floats(const char *s, int n, float *out, const char *key, char *err,
                        size_t errlen) {
  char fields[EBM_MAX_LABEL][EBM_LABEL_NAME_MAX];
  if (split_list(s, n, fields, key, err, errlen)) return -1;
  for (int k = 0; k < n; k++) {
    char *end;
    errno = 0;
    double v = strtod(fields[k], &end);
    if (errno || end == fields[k] || *end || !isfinite(v))
      return io_fail(err, errlen, "model metadata '%s': '%s' is not a finite number", key, fields[k]);
    out[k] = (float)v;
  }
  return 0;
}

static int parse_info(const st_file *f, ebm_model_info *info, char *err, size_t errlen) {
  memset(info, 0, sizeof *info);
  const char *fmt = st_meta_get(f, "format");
  if (!fmt) return io_fail(err, errlen, "not a vkebm model file: no 'format' in the metadata");
  if (strcmp(fmt, EBM_MODEL_FORMAT))
    return io_fail(err, errlen, "not a vkebm model file: format is '%.40s', expected '%s'", fmt,
                EBM_MODEL_FORMAT);
  const char *ver = need(f, "format_version", err, errlen);
  if (!ver) return -1;
  if (strcmp(ver, EBM_MODEL_FORMAT_VERSION))
    return io_fail(err, errlen, "model format version '%.20s' is not supported (this build reads %s)",
                ver, EBM_MODEL_FORMAT_VERSION);

  ebm_net_config *cfg = &info->config;
  if (meta_int(f, "resolution", 1, 1024, &cfg->resolution, err, errlen) ||
      meta_int(f, "in_channels", 1, 64, &cfg->in_channels, err, errlen) ||
      meta_int(f, "base_width", 1, 1024, &cfg->base_width, err, errlen) ||
      meta_int(f, "label_dim", 1, EBM_MAX_LABEL, &cfg->label_dim, err, errlen) ||
      meta_int(f, "spectral_norm", 0, 1, &cfg->spectral_norm, err, errlen))
    return -1;
  const char *head = st_meta_get(f, "head"); /* absent in files older than the option: mean */
  if (head && strcmp(head, "mean") && strcmp(head, "flatten"))
    return io_fail(err, errlen, "model metadata 'head' = '%.20s' (expected mean or flatten)", head);
  cfg->head_flatten = head && !strcmp(head, "flatten");
  const char *coords = st_meta_get(f, "coord_channels"); /* absent: none */
  if (coords && strcmp(coords, "0") && strcmp(coords, "1"))
    return io_fail(err, errlen, "model metadata 'coord_channels' = '%.20s' (expected 0 or 1)", coords);
  cfg->coord_channels = coords && !strcmp(coords, "1");
  const char *hl = st_meta_get(f, "head_label"); /* absent: none */
  if (hl && strcmp(hl, "0") && strcmp(hl, "1"))
    return io_fail(err, errlen, "model metadata 'head_label' = '%.20s' (expected 0 or 1)", hl);
  cfg->head_label = hl && !strcmp(hl, "1");
  const char *ish = st_meta_get(f, "input_shift"), *isc = st_meta_get(f, "input_scale");
  if (!ish != !isc)
    return io_fail(err, errlen, "model metadata: input_shift and input_scale go together, one is missing");
  if (isc) { /* absent: the network reads x as given */
    if (parse_floats(ish, 1, &cfg->in_shift, "input_shift", err, errlen) ||
        parse_floats(isc, 1, &cfg->in_scale, "input_scale", err, errlen))
      return -1;
    if (!(cfg->in_scale > 0.0f && cfg->in_scale <= 1000.0f) || fabsf(cfg->in_shift) > 1000.0f)
      return io_fail(err, errlen, "model metadata: input_scale %g / input_shift %g out of range",
                  (double)cfg->in_scale, (double)cfg->in_shift);
  }
  const char *blocks = need(f, "blocks", err, errlen);
  if (!blocks) return -1;
  if (ebm_net_config_parse_blocks(cfg, blocks))
    return io_fail(err, errlen, "model metadata 'blocks' = '%.40s' is not a block list like 1d,2d,2",
                blocks);
  char why[200];
  if (ebm_net_config_validate(cfg, why, sizeof why))
    return io_fail(err, errlen, "model configuration is invalid: %s", why);

  const char *concept = need(f, "concept", err, errlen);
  if (!concept) return -1;
  if (strlen(concept) >= sizeof info->concept)
    return io_fail(err, errlen, "model metadata 'concept' is longer than %zu characters",
                sizeof info->concept - 1);
  strcpy(info->concept, concept);
  const char *kind = need(f, "label_kind", err, errlen);
  if (!kind) return -1;
  if (!strcmp(kind, "onehot"))
    info->label_kind = EBM_LABEL_ONEHOT;
  else if (!strcmp(kind, "vector"))
    info->label_kind = EBM_LABEL_VECTOR;
  else
    return io_fail(err, errlen, "model metadata 'label_kind' = '%.20s' (expected onehot or vector)",
                kind);
  const char *names = need(f, "label_names", err, errlen);
  if (!names || split_list(names, cfg->label_dim, info->label_names, "label_names", err, errlen))
    return -1;
  if (info->label_kind == EBM_LABEL_VECTOR) {
    const char *lo = need(f, "label_min", err, errlen), *hi = lo ? need(f, "label_max", err, errlen) : NULL;
    if (!lo || !hi || parse_floats(lo, cfg->label_dim, info->label_min, "label_min", err, errlen) ||
        parse_floats(hi, cfg->label_dim, info->label_max, "label_max", err, errlen))
      return -1;
  }
  const char *step = need(f, "step", err, errlen), *seed = step ? need(f, "seed", err, errlen) : NULL;
  if (!step || !seed) return -1;
  char *end;
  errno = 0;
  long long st = strtoll(step, &end, 10);
  if (errno || end == step || *end || st < 0)
    return io_fail(err, errlen, "model metadata 'step' = '%.30s' is not a non-negative integer", step);
  info->step = st;
  errno = 0;
  unsigned long long sd = strtoull(seed, &end, 10);
  if (errno || end == seed || *end || seed[0] == '-')
    return io_fail(err, errlen, "model metadata 'seed' = '%.30s' is not an unsigned integer", seed);
  info->seed = sd;
  const char *spec = st_meta_get(f, "data_spec");
  if (spec) snprintf(info->data_spec, sizeof info->data_spec, "%s", spec);
  static const char *lkeys[2] = {"langevin_step_lr", "langevin_noise"};
  float *lvals[2] = {&info->langevin_step_lr, &info->langevin_noise};
  for (int i = 0; i < 2; i++) {
    const char *v = st_meta_get(f, lkeys[i]);
    if (!v) continue;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0.0) || d > 1e30)
      return io_fail(err, errlen, "model metadata '%s' = '%.30s' is not a non-negative number",
                  lkeys[i], v);
    *lvals[i] = (float)d;
  }
  const char *ss = st_meta_get(f, "sample_steps");
  if (ss) {
    errno = 0;
    long v = strtol(ss, &end, 10);
    if (errno || end == ss || *end || v < 1 || v > 1000000)
      return io_fail(err, errlen, "model metadata 'sample_steps' = '%.30s' is not a count in "
                               "1..1000000", ss);
    info->sample_steps = (int)v;
  }
  const char *im = st_meta_get(f, "chain_init_mean"), *is = st_meta_get(f, "chain_init_std");
  if (im || is) {
    const int C = cfg->in_channels;
    if (!im || !is || C > EBM_MODEL_MAX_INIT)
      return io_fail(err, errlen, "model metadata: chain_init_mean and chain_init_std go together, "
                               "for at most %d channels", EBM_MODEL_MAX_INIT);
    if (parse_floats(im, C, info->init_mean, "chain_init_mean", err, errlen) ||
        parse_floats(is, C, info->init_std, "chain_init_std", err, errlen))
      return -1;
    for (int c = 0; c < C; c++)
      if (!(info->init_mean[c] >= 0.0f && info->init_mean[c] <= 1.0f) ||
          !(info->init_std[c] >= 0.0f && info->init_std[c] <= 1.0f))
        return io_fail(err, errlen, "model metadata: chain_init_mean/std outside [0, 1]");
    info->init_channels = C;
    const char *kind = st_meta_get(f, "chain_init");
    if (kind && strcmp(kind, "flat") && strcmp(kind, "pixel"))
      return io_fail(err, errlen, "model metadata 'chain_init' = '%.20s' (expected flat or pixel)", kind);
    info->init_flat = kind && !strcmp(kind, "flat");
  }
  return ebm_model_info_validate(info, err, errlen);
}

int ebm_model_read_info(const char *path, ebm_model_info *info, char *err, size_t errlen) {
  st_file f;
  char why[300];
  if (st_read(&f, path, 0, why, sizeof why)) return io_fail(err, errlen, "%s", why); /* st_read names the file */
  int rc = parse_info(&f, info, why, sizeof why);
  st_free(&f);
  if (rc) return io_fail(err, errlen, "%s: %s", path, why);
  return 0;
}

int ebm_model_file_foreign(const char *path, char *format, size_t len) {
  st_file f;
  char why[300];
  if (st_read(&f, path, 0, why, sizeof why)) return 0;
  const char *fmt = st_meta_get(&f, "format");
  int foreign = fmt && strcmp(fmt, EBM_MODEL_FORMAT) != 0;
  if (foreign && format && len) snprintf(format, len, "%s", fmt);
  st_free(&f);
  return foreign;
}

/* ---- save -------------------------------------------------------------------------------- */

static int extra_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 40) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '.' || *s == '-'))
      return 0;
  return 1;
}

int ebm_model_save(const char *path, ebm_net *net, const ebm_model_info *info,
                   const ebm_model_extra *extras, int nextras, char *err, size_t errlen) {
  ebm_model_info meta = *info;
  meta.config = *ebm_net_config_of(net);
  char why[300];
  if (ebm_model_info_validate(&meta, why, sizeof why))
    return io_fail(err, errlen, "%s: %s", path, why);
  for (int i = 0; i < nextras; i++)
    if (!extra_name_ok(extras[i].name) || !extras[i].data || !extras[i].numel)
      return io_fail(err, errlen, "%s: extra tensor name '%.60s' is invalid or empty", path,
                  extras[i].name);

  size_t np = ebm_net_param_count(net), nu = ebm_net_sn_u_count(net);
  float *host = malloc(np * sizeof *host), *host_u = malloc((nu ? nu : 1) * sizeof *host_u);
  st_writer *w = st_writer_new();
  int rc = -1;
  if (!host || !host_u || !w) {
    io_fail(err, errlen, "%s: out of memory", path);
    goto done;
  }
  if (ebm_net_get_params(net, host, nu ? host_u : NULL)) {
    io_fail(err, errlen, "%s: cannot read the parameters back from the device", path);
    goto done;
  }
  int nparams = ebm_net_num_params(net);
  for (int i = 0; i < nparams; i++) {
    const ebm_param *p = ebm_net_param(net, i);
    int64_t shape[4];
    for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
    if (st_writer_add(w, p->name, shape, p->ndim, host + p->offset)) goto oom;
  }
  for (int i = 0; i < nparams; i++) {
    const ebm_param *p = ebm_net_param(net, i);
    if (p->sn_index < 0) continue;
    char name[64];
    snprintf(name, sizeof name, SN_U_PREFIX "%s", p->name);
    int64_t shape[1] = {p->sn_rows};
    if (st_writer_add(w, name, shape, 1, host_u + p->sn_u_offset)) goto oom;
  }
  for (int i = 0; i < nextras; i++) {
    char name[64];
    snprintf(name, sizeof name, EXTRA_PREFIX "%s", extras[i].name);
    int64_t shape[1] = {(int64_t)extras[i].numel};
    if (st_writer_add(w, name, shape, 1, extras[i].data)) goto oom;
  }

  const ebm_net_config *cfg = &meta.config;
  char buf[EBM_MAX_LABEL * (EBM_LABEL_NAME_MAX + 1) + 16], num[32];
  int L = cfg->label_dim;
#define META(k, v)                                \
  do {                                            \
    if (st_writer_meta(w, (k), (v))) goto oom;    \
  } while (0)
#define META_INT(k, v)                            \
  do {                                            \
    snprintf(num, sizeof num, "%lld", (long long)(v)); \
    META(k, num);                                 \
  } while (0)
  META("format", EBM_MODEL_FORMAT);
  META("format_version", EBM_MODEL_FORMAT_VERSION);
  META_INT("resolution", cfg->resolution);
  META_INT("in_channels", cfg->in_channels);
  META_INT("base_width", cfg->base_width);
  ebm_net_config_blocks_string(cfg, buf, sizeof buf);
  META("blocks", buf);
  META_INT("label_dim", L);
  META_INT("spectral_norm", cfg->spectral_norm);
  if (cfg->head_flatten) META("head", "flatten");
  if (cfg->coord_channels) META("coord_channels", "1");
  if (cfg->head_label) META("head_label", "1");
  if (cfg->in_scale > 0) {
    io_float_text(num, sizeof num, cfg->in_shift);
    META("input_shift", num);
    io_float_text(num, sizeof num, cfg->in_scale);
    META("input_scale", num);
  }
  META("concept", meta.concept);
  META("label_kind", meta.label_kind == EBM_LABEL_ONEHOT ? "onehot" : "vector");
  buf[0] = 0;
  for (int k = 0; k < L; k++) {
    if (k) strcat(buf, ",");
    strcat(buf, meta.label_names[k]);
  }
  META("label_names", buf);
  if (meta.label_kind == EBM_LABEL_VECTOR) {
    for (int which = 0; which < 2; which++) {
      buf[0] = 0;
      for (int k = 0; k < L; k++) {
        snprintf(num, sizeof num, "%s%.9g", k ? "," : "",
                 which ? meta.label_max[k] : meta.label_min[k]);
        strcat(buf, num);
      }
      META(which ? "label_max" : "label_min", buf);
    }
  }
  META_INT("step", meta.step);
  snprintf(num, sizeof num, "%" PRIu64, meta.seed);
  META("seed", num);
  META("data_spec", meta.data_spec);
  if (meta.langevin_step_lr > 0.0f) {
    const float lv[2] = {meta.langevin_step_lr, meta.langevin_noise};
    for (int i = 0; i < 2; i++) { /* the shortest text that reads back as the same float */
      io_float_text(num, sizeof num, lv[i]);
      META(i ? "langevin_noise" : "langevin_step_lr", num);
    }
  }
  if (meta.sample_steps > 0) META_INT("sample_steps", meta.sample_steps);
  if (meta.init_channels > 0 && meta.init_channels == cfg->in_channels &&
      meta.init_channels <= EBM_MODEL_MAX_INIT) {
    for (int which = 0; which < 2; which++) {
      buf[0] = 0;
      for (int k = 0; k < meta.init_channels; k++) {
        snprintf(num, sizeof num, "%s%.6g", k ? "," : "",
                 which ? meta.init_std[k] : meta.init_mean[k]);
        strcat(buf, num);
      }
      META(which ? "chain_init_std" : "chain_init_mean", buf);
    }
    META("chain_init", meta.init_flat ? "flat" : "pixel");
  }
#undef META
#undef META_INT
  if (st_writer_save(w, path, why, sizeof why)) {
    io_fail(err, errlen, "%s", why);
    goto done;
  }
  rc = 0;
  goto done;
oom:
  io_fail(err, errlen, "%s: out of memory while collecting tensors", path);
done:
  st_writer_free(w);
  free(host);
  free(host_u);
  return rc;
}

/* ---- load -------------------------------------------------------------------------------- */

static int shape_matches(const st_tensor *t, const int *shape, int ndim) {
  if (t->ndim != ndim) return 0;
  for (int d = 0; d < ndim; d++)
    if (t->shape[d] != shape[d]) return 0;
  return 1;
}

static void shape_str(char *out, size_t len, const int64_t *s64, const int *s32, int ndim) {
  size_t used = 0;
  out[0] = 0;
  used += (size_t)snprintf(out, len, "[");
  for (int d = 0; d < ndim && used < len; d++)
    used += (size_t)snprintf(out + used, len - used, "%s%lld", d ? "," : "",
                             s64 ? (long long)s64[d] : (long long)s32[d]);
  if (used < len) snprintf(out + used, len - used, "]");
}

static void clean_name(char *out, size_t len, const char *name) {
  size_t k = 0;
  for (; name[k] && k < len - 1; k++)
    out[k] = ((unsigned char)name[k] < 32 || name[k] == 127) ? '?' : name[k];
  out[k] = 0;
}

/* What a file may ask for: far above every preset (paper64: 2.2 M weights, 6.4 M activation
 * floats per image), far below what would exhaust a machine before anything is checked. */
#define MODEL_MAX_WEIGHTS ((size_t)1 << 26)
#define MODEL_MAX_ACT_PER_IMAGE ((size_t)1 << 26)

/* The file's tensors against the architecture cfg, before any network is built: the
 * configuration within the caps, every parameter and sn_u vector present with its exact shape,
 * nothing else but extra.*. A header that declares a huge network without its tensors is
 * refused here, costing nothing. 0 or -1 with a reason naming the tensor. */
static int check_tensors(const st_file *f, const ebm_net_config *cfg, char *err, size_t errlen) {
  ebm_param params[EBM_MAX_PARAMS];
  size_t act = 0;
  int np = ebm_net_config_params(cfg, params, &act);
  if (np < 0) return io_fail(err, errlen, "the configuration needs more than %d tensors", EBM_MAX_PARAMS);
  size_t weights = 0;
  for (int i = 0; i < np; i++) weights += params[i].numel;
  if (weights > MODEL_MAX_WEIGHTS)
    return io_fail(err, errlen, "the configuration has %zu weights, more than the %zu a model may have",
                weights, MODEL_MAX_WEIGHTS);
  if (act > MODEL_MAX_ACT_PER_IMAGE)
    return io_fail(err, errlen, "the configuration needs %zu activation floats per image, more than "
                             "the %zu a model may ask for", act, MODEL_MAX_ACT_PER_IMAGE);
  for (int i = 0; i < np; i++) {
    const ebm_param *p = &params[i];
    for (int pass = 0; pass < 2; pass++) {
      char name[64], got[96], want[96];
      int usize[1] = {p->sn_rows};
      if (pass == 1 && p->sn_index < 0) continue;
      snprintf(name, sizeof name, "%s%.47s", pass ? SN_U_PREFIX : "", p->name);
      const int *shape = pass == 0 ? p->shape : usize;
      int ndim = pass == 0 ? p->ndim : 1;
      const st_tensor *t = st_find(f, name);
      if (!t) return io_fail(err, errlen, "missing tensor '%s'", name);
      if (!shape_matches(t, shape, ndim)) {
        shape_str(got, sizeof got, t->shape, NULL, t->ndim);
        shape_str(want, sizeof want, NULL, shape, ndim);
        return io_fail(err, errlen, "tensor '%s' has shape %s, expected %s", name, got, want);
      }
    }
  }
  /* Nothing unexpected: extras live in their own namespace and may be ignored by a reader that
   * does not want them (the sampler loading a training checkpoint); anything else is refused. */
  for (int i = 0; i < f->ntensors; i++) {
    const char *name = f->tensors[i].name;
    if (!strncmp(name, EXTRA_PREFIX, strlen(EXTRA_PREFIX))) continue;
    int known = 0;
    for (int j = 0; j < np && !known; j++) {
      const ebm_param *p = &params[j];
      if (!strcmp(name, p->name)) known = 1;
      if (p->sn_index >= 0 && !strncmp(name, SN_U_PREFIX, strlen(SN_U_PREFIX)) &&
          !strcmp(name + strlen(SN_U_PREFIX), p->name))
        known = 1;
    }
    if (!known) {
      char clean[80];
      clean_name(clean, sizeof clean, name);
      return io_fail(err, errlen, "unexpected tensor '%s' (not part of a %s network)", clean,
                  cfg->spectral_norm ? "spectrally normalised" : "plain");
    }
  }
  return 0;
}

int ebm_model_check(const char *path, ebm_model_info *info, char *err, size_t errlen) {
  st_file f;
  char why[300];
  if (st_read(&f, path, 1, why, sizeof why)) return io_fail(err, errlen, "%s", why);
  int rc = parse_info(&f, info, why, sizeof why) || check_tensors(&f, &info->config, why, sizeof why);
  st_free(&f);
  return rc ? io_fail(err, errlen, "%s: %s", path, why) : 0;
}

int ebm_model_load(const char *path, ebm_backend *be, int max_batch, ebm_net **out,
                   ebm_model_info *info_out, ebm_model_extra *extras, int nextras, char *err,
                   size_t errlen) {
  *out = NULL;
  st_file f;
  char why[300];
  if (st_read(&f, path, 1, why, sizeof why)) return io_fail(err, errlen, "%s", why); /* st_read names the file */
  ebm_model_info info;
  ebm_net *net = NULL;
  float *host = NULL, *host_u = NULL;
  int rc = -1;
  if (parse_info(&f, &info, why, sizeof why)) {
    io_fail(err, errlen, "%s: %s", path, why);
    goto done;
  }
  if (check_tensors(&f, &info.config, why, sizeof why)) {
    io_fail(err, errlen, "%s: %s", path, why);
    goto done;
  }
  if (ebm_net_create(&net, be, &info.config, max_batch, info.seed, why, sizeof why)) {
    io_fail(err, errlen, "%s: %s", path, why);
    goto done;
  }
  size_t np = ebm_net_param_count(net), nu = ebm_net_sn_u_count(net);
  host = calloc(np, sizeof *host);
  host_u = calloc(nu ? nu : 1, sizeof *host_u);
  if (!host || !host_u) {
    io_fail(err, errlen, "%s: out of memory", path);
    goto done;
  }
  /* check_tensors found every one with its shape: copy them into the flat layout */
  for (int i = 0; i < ebm_net_num_params(net); i++) {
    const ebm_param *p = ebm_net_param(net, i);
    const st_tensor *t = st_find(&f, p->name);
    memcpy(host + p->offset, t->data, t->numel * sizeof(float));
    if (p->sn_index >= 0) {
      char name[64];
      snprintf(name, sizeof name, SN_U_PREFIX "%s", p->name);
      t = st_find(&f, name);
      memcpy(host_u + p->sn_u_offset, t->data, t->numel * sizeof(float));
    }
  }
  for (int i = 0; i < nextras; i++) {
    char name[64];
    snprintf(name, sizeof name, EXTRA_PREFIX "%s", extras[i].name);
    const st_tensor *t = st_find(&f, name);
    extras[i].found = 0;
    if (!t) {
      if (extras[i].required) {
        io_fail(err, errlen, "%s: missing tensor '%s'", path, name);
        goto done;
      }
      continue;
    }
    if (!extras[i].data && t->ndim == 1) { /* a size query: report it, copy nothing */
      extras[i].numel = (size_t)t->shape[0];
      extras[i].found = 1;
      continue;
    }
    if (t->ndim != 1 || (size_t)t->shape[0] != extras[i].numel) {
      char got[96];
      shape_str(got, sizeof got, t->shape, NULL, t->ndim);
      io_fail(err, errlen, "%s: tensor '%s' has shape %s, expected [%zu]", path, name, got,
           extras[i].numel);
      goto done;
    }
    memcpy(extras[i].data, t->data, extras[i].numel * sizeof(float));
    extras[i].found = 1;
  }
  if (ebm_net_set_params(net, host, nu ? host_u : NULL) || ebm_sync(be)) {
    io_fail(err, errlen, "%s: cannot upload the parameters", path);
    goto done;
  }
  if (info_out) *info_out = info;
  *out = net;
  net = NULL;
  rc = 0;
done:
  ebm_net_destroy(net);
  free(host);
  free(host_u);
  st_free(&f);
  return rc;
}
