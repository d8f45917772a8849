/* safetensors.c: the strict safetensors reader and the atomic writer (see safetensors.h).
 *
 * Owns the file-format rules. The reader treats every file as untrusted: each rule it enforces
 * has its own one-line message, names in messages are sanitised (control bytes become '?') so a
 * hostile name cannot break the line, and every size is checked before it is multiplied.
 * Tensors in an st_file are ordered by data offset; their data points into one malloc'd copy of
 * the data section, so float access is aligned (offsets tile from 0 in multiples of 4 bytes).
 * The writer lays tensors out in insertion order, __metadata__ first in the header.
 */
#include "vkebm/safetensors.h"

#include <jansson.h>
#include <pthread.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "vkebm/fileio.h"

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* the reference implementation's limit */
#define ST_MAX_FILE ((size_t)1 << 40)
#define ST_NUMEL_LIMIT ((uint64_t)1 << 60) /* products beyond this are refused before overflow */

static void fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* A printable, bounded copy of an untrusted name for messages. */
static const char *clean(const char *s, char *buf, size_t len) {
  size_t i = 0;
  for (; s[i] && i + 4 < len && i < 64; i++) {
    unsigned char ch = (unsigned char)s[i];
    buf[i] = (ch < 32 || ch == 127) ? '?' : (char)ch;
  }
  if (s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = 0;
  return buf;
}

/* ---- the checksum: CRC-32C (Castagnoli) of the data section, slicing by 8 ----------------- */

#define ST_CHECKSUM_KEY "checksum"
#define ST_CHECKSUM_PREFIX "crc32c:"

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t st_crc32c(uint32_t crc, const void *data, size_t n) {
  const unsigned char *p = data;
  pthread_once(&crc_once, crc_init);
  crc = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
          crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
          crc_table[0][p[7]];
  }
  while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

static const char *const known_dtypes[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
                                           "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3",
                                           "F8_E5M2", NULL};

void st_free(st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
  for (int i = 0; i < f->nmeta; i++) {
    free(f->meta[i].key);
    free(f->meta[i].value);
  }
  free(f->tensors);
  free(f->meta);
  free(f->blob);
  memset(f, 0, sizeof *f);
}

typedef struct span {
  uint64_t begin, end;
  int index;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->index - y->index;
}

static int meta_cmp(const void *a, const void *b) {
  return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

/* A JSON value that must be a non-negative integer. */
static int get_uint(json_t *v, uint64_t *out) {
  if (!json_is_integer(v)) return -1;
  json_int_t i = json_integer_value(v);
  if (i < 0) return -2;
  *out = (uint64_t)i;
  return 0;
}

static int parse_entry(st_tensor *t, span *sp, const char *name, json_t *e, size_t data_size,
                       char *err, size_t errlen) {
  char nb[80];
  const char *cn = clean(name, nb, sizeof nb);
  if (!json_is_object(e)) {
    fail(err, errlen, "tensor '%s': entry is not a JSON object", cn);
    return -1;
  }
  json_t *dtype = json_object_get(e, "dtype");
  json_t *shape = json_object_get(e, "shape");
  json_t *offs = json_object_get(e, "data_offsets");
  if (!dtype || !shape || !offs) {
    fail(err, errlen, "tensor '%s': entry lacks \"%s\"", cn,
         !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    return -1;
  }
  if (!json_is_string(dtype)) {
    fail(err, errlen, "tensor '%s': dtype is not a string", cn);
    return -1;
  }
  const char *dt = json_string_value(dtype);
  if (strcmp(dt, "F32") != 0) {
    char db[80];
    int known = 0;
    for (int i = 0; known_dtypes[i]; i++) known |= !strcmp(dt, known_dtypes[i]);
    if (known)
      fail(err, errlen, "tensor '%s': dtype %s is unsupported (vkebm loads F32 only)", cn, dt);
    else
      fail(err, errlen, "tensor '%s': unknown dtype '%s' (vkebm loads F32 only)", cn,
           clean(dt, db, sizeof db));
    return -1;
  }
  memcpy(t->dtype, "F32", 4);
  if (!json_is_array(shape)) {
    fail(err, errlen, "tensor '%s': shape is not an array", cn);
    return -1;
  }
  size_t nd = json_array_size(shape);
  if (nd > ST_MAX_DIMS) {
    fail(err, errlen, "tensor '%s': %zu dimensions, more than the %d supported", cn, nd,
         ST_MAX_DIMS);
    return -1;
  }
  uint64_t numel = 1;
  int overflow = 0;
  for (size_t d = 0; d < nd; d++) {
    uint64_t dim;
    int rc = get_uint(json_array_get(shape, d), &dim);
    if (rc == -1) {
      fail(err, errlen, "tensor '%s': shape[%zu] is not an integer", cn, d);
      return -1;
    }
    if (rc == -2) {
      fail(err, errlen, "tensor '%s': shape[%zu] is negative", cn, d);
      return -1;
    }
    t->shape[d] = (int64_t)dim;
    if (dim && numel > ST_NUMEL_LIMIT / dim) overflow = 1;
    if (!overflow) numel *= dim;
  }
  t->ndim = (int)nd;
  if (overflow || numel > data_size / 4) {
    fail(err, errlen, "tensor '%s': shape has more elements than the file's %zu data bytes hold",
         cn, data_size);
    return -1;
  }
  t->numel = (size_t)numel;
  if (!json_is_array(offs) || json_array_size(offs) != 2) {
    fail(err, errlen, "tensor '%s': data_offsets is not an array of two integers", cn);
    return -1;
  }
  uint64_t b, en;
  if (get_uint(json_array_get(offs, 0), &b) || get_uint(json_array_get(offs, 1), &en)) {
    fail(err, errlen, "tensor '%s': data_offsets are not non-negative integers", cn);
    return -1;
  }
  if (b > en) {
    fail(err, errlen, "tensor '%s': data_offsets begin %llu > end %llu", cn,
         (unsigned long long)b, (unsigned long long)en);
    return -1;
  }
  if (en > data_size) {
    fail(err, errlen, "tensor '%s': data_offsets end %llu is past the %zu data bytes", cn,
         (unsigned long long)en, data_size);
    return -1;
  }
  if (en - b != numel * 4) {
    fail(err, errlen, "tensor '%s': data_offsets span %llu bytes but shape needs %llu (F32)", cn,
         (unsigned long long)(en - b), (unsigned long long)(numel * 4));
    return -1;
  }
  sp->begin = b;
  sp->end = en;
  return 0;
}

/* The 8-byte length prefix of a file of n bytes: the header length, checked. */
static int header_length(const unsigned char *p, size_t n, uint64_t *hlen, char *err,
                         size_t errlen) {
  if (n < 8) {
    fail(err, errlen, "file is %zu bytes, shorter than the 8-byte header length", n);
    return -1;
  }
  *hlen = 0;
  for (int i = 7; i >= 0; i--) *hlen = (*hlen << 8) | p[i];
  if (*hlen == 0) {
    fail(err, errlen, "header length is 0");
    return -1;
  }
  if (*hlen > ST_MAX_HEADER) {
    fail(err, errlen, "header length %llu exceeds the 100 MB limit", (unsigned long long)*hlen);
    return -1;
  }
  if (*hlen > n - 8) {
    fail(err, errlen, "header length %llu runs past the end of the file (%zu bytes)",
         (unsigned long long)*hlen, n);
    return -1;
  }
  return 0;
}

/* Parses and checks the header p[8 .. 8+hlen) against data_size bytes of data. data NULL: the
 * header alone is checked (everything but the values) and f is left empty. */
static int parse_impl(st_file *f, const unsigned char *p, uint64_t hlen, const unsigned char *data,
                      size_t data_size, int check_finite, char *err, size_t errlen) {
  json_error_t jerr;
  /* jansson checks UTF-8, rejects NUL characters and trailing non-whitespace. */
  json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    char tb[160];
    if (strstr(jerr.text, "duplicate"))
      fail(err, errlen, "header has a duplicate key (%s)", clean(jerr.text, tb, sizeof tb));
    else
      fail(err, errlen, "header is not valid UTF-8 JSON: %s at byte %d", clean(jerr.text, tb, sizeof tb),
           jerr.position);
    return -1;
  }
  if (!json_is_object(root)) {
    fail(err, errlen, "header is not a JSON object");
    json_decref(root);
    return -1;
  }
  size_t nkeys = json_object_size(root);
  json_t *meta = json_object_get(root, "__metadata__");
  size_t nt = nkeys - (meta ? 1 : 0);
  if (nt > (size_t)1 << 20) {
    fail(err, errlen, "header lists %zu tensors, more than the 1048576 allowed", nt);
    json_decref(root);
    return -1;
  }
  f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
  span *spans = calloc(nt ? nt : 1, sizeof *spans);
  st_tensor *tmp = calloc(nt ? nt : 1, sizeof *tmp);
  if (!f->tensors || !spans || !tmp) {
    fail(err, errlen, "out of memory");
    goto bad;
  }
  if (meta) {
    if (!json_is_object(meta)) {
      fail(err, errlen, "__metadata__ is not a JSON object");
      goto bad;
    }
    f->meta = calloc(json_object_size(meta) + 1, sizeof *f->meta);
    if (!f->meta) {
      fail(err, errlen, "out of memory");
      goto bad;
    }
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
      char kb[80];
      if (!json_is_string(v)) {
        fail(err, errlen, "__metadata__ value of '%s' is not a string", clean(k, kb, sizeof kb));
        goto bad;
      }
      st_meta *m = &f->meta[f->nmeta++];
      m->key = strdup(k);
      m->value = strdup(json_string_value(v));
      if (!m->key || !m->value) {
        fail(err, errlen, "out of memory");
        goto bad;
      }
    }
    qsort(f->meta, (size_t)f->nmeta, sizeof *f->meta, meta_cmp);
  }
  {
    const char *k;
    json_t *v;
    int i = 0;
    json_object_foreach(root, k, v) {
      if (!strcmp(k, "__metadata__")) continue;
      tmp[i].name = strdup(k);
      if (!tmp[i].name) {
        fail(err, errlen, "out of memory");
        goto bad;
      }
      if (parse_entry(&tmp[i], &spans[i], k, v, data_size, err, errlen)) goto bad;
      spans[i].index = i;
      i++;
    }
  }
  qsort(spans, nt, sizeof *spans, span_cmp);
  {
    uint64_t pos = 0;
    for (size_t i = 0; i < nt; i++) {
      char nb[80];
      const char *cn = clean(tmp[spans[i].index].name, nb, sizeof nb);
      if (spans[i].begin != pos) {
        if (i == 0)
          fail(err, errlen, "tensor '%s': first data_offsets begin is %llu, not 0", cn,
               (unsigned long long)spans[i].begin);
        else if (spans[i].begin < pos)
          fail(err, errlen, "tensor '%s': data_offsets overlap the previous tensor (begin %llu < %llu)",
               cn, (unsigned long long)spans[i].begin, (unsigned long long)pos);
        else
          fail(err, errlen, "tensor '%s': gap in the data before it (begin %llu, previous end %llu)",
               cn, (unsigned long long)spans[i].begin, (unsigned long long)pos);
        goto bad;
      }
      pos = spans[i].end;
    }
    if (pos != data_size) {
      fail(err, errlen, "tensors end at byte %llu of the data but the data is %zu bytes",
           (unsigned long long)pos, data_size);
      goto bad;
    }
  }
  if (!data) { /* header only: checked, nothing kept */
    for (size_t j = 0; j < nt; j++) free(tmp[j].name);
    free(tmp);
    free(spans);
    json_decref(root);
    st_free(f);
    return 0;
  }
  f->blob = malloc(data_size ? data_size : 1);
  if (!f->blob) {
    fail(err, errlen, "out of memory (%zu data bytes)", data_size);
    goto bad;
  }
  memcpy(f->blob, data, data_size);
  f->blob_size = data_size;
  for (size_t i = 0; i < nt; i++) {
    f->tensors[i] = tmp[spans[i].index];
    f->tensors[i].data = (const float *)((const char *)f->blob + spans[i].begin);
  }
  f->ntensors = (int)nt;
  free(tmp);
  free(spans);
  tmp = NULL;
  spans = NULL;
  json_decref(root);
  const char *sum = st_meta_get(f, ST_CHECKSUM_KEY);
  if (sum) { /* files written before the checksum (or by other tools) have none: still fine */
    char sb[80];
    char *end;
    unsigned long want = 0;
    int ok = !strncmp(sum, ST_CHECKSUM_PREFIX, strlen(ST_CHECKSUM_PREFIX)) &&
             strlen(sum) == strlen(ST_CHECKSUM_PREFIX) + 8;
    if (ok) {
      want = strtoul(sum + strlen(ST_CHECKSUM_PREFIX), &end, 16);
      ok = *end == 0;
    }
    if (!ok) {
      fail(err, errlen, "__metadata__ checksum '%s' is not crc32c:XXXXXXXX", clean(sum, sb, sizeof sb));
      st_free(f);
      return -1;
    }
    uint32_t got = st_crc32c(0, f->blob, f->blob_size);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    got = (uint32_t)want; /* the fuzz build: let mutated data reach the checks behind this one */
#endif
    if (got != (uint32_t)want) {
      fail(err, errlen, "checksum mismatch: the tensor data is damaged (crc32c %08x, recorded %08lx)",
           got, want);
      st_free(f);
      return -1;
    }
  }
  if (check_finite) {
    for (int t = 0; t < f->ntensors; t++) {
      const st_tensor *ten = &f->tensors[t];
      for (size_t i = 0; i < ten->numel; i++) {
        if (!isfinite(ten->data[i])) {
          char nb[80];
          fail(err, errlen, "tensor '%s': element %zu is %s", clean(ten->name, nb, sizeof nb), i,
               isnan(ten->data[i]) ? "NaN" : "infinite");
          st_free(f);
          return -1;
        }
      }
    }
  }
  return 0;
bad: /* tmp is zero-filled: names not yet parsed are NULL */
  if (tmp)
    for (size_t j = 0; j < nt; j++) free(tmp[j].name);
  free(tmp);
  free(spans);
  json_decref(root);
  st_free(f);
  return -1;
}

int st_parse(st_file *f, const void *bytes, size_t n, int check_finite, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  const unsigned char *p = bytes;
  uint64_t hlen;
  if (header_length(p, n, &hlen, err, errlen)) return -1;
  return parse_impl(f, p, hlen, p + 8 + hlen, n - 8 - (size_t)hlen, check_finite, err, errlen);
}

/* Reads exactly n bytes at offset off. 0 or -1. */
static int read_at(int fd, void *buf, size_t n, off_t off) {
  unsigned char *b = buf;
  while (n) {
    ssize_t r = pread(fd, b, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    b += r;
    n -= (size_t)r;
    off += r;
  }
  return 0;
}

int st_read(st_file *f, const char *path, int check_finite, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  long long fsize;
  int fd = io_open_regular(path, &fsize, err, errlen);
  if (fd < 0) return -1;
  char inner[400];
  unsigned char *bytes = NULL;
  int rc = -1;
  if ((unsigned long long)fsize > ST_MAX_FILE) {
    fail(inner, sizeof inner, "file is %lld bytes, more than the %zu-byte limit", fsize,
         (size_t)ST_MAX_FILE);
    goto done;
  }
  /* The length prefix and the header first: a damaged or hostile file is refused before its
   * data (which may be gigabytes, or a sparse hole) is read. */
  size_t n = (size_t)fsize;
  unsigned char prefix[8];
  uint64_t hlen;
  if (n >= 8 && read_at(fd, prefix, 8, 0)) {
    fail(inner, sizeof inner, "read failed: %s", strerror(errno));
    goto done;
  }
  if (header_length(prefix, n, &hlen, inner, sizeof inner)) goto done;
  bytes = malloc(8 + (size_t)hlen);
  if (!bytes) {
    fail(inner, sizeof inner, "out of memory (%zu bytes)", n);
    goto done;
  }
  memcpy(bytes, prefix, 8);
  if (read_at(fd, bytes + 8, (size_t)hlen, 8)) {
    fail(inner, sizeof inner, "read failed");
    goto done;
  }
  if (parse_impl(f, bytes, hlen, NULL, n - 8 - (size_t)hlen, 0, inner, sizeof inner)) goto done;
  unsigned char *whole = realloc(bytes, n);
  if (!whole) {
    fail(inner, sizeof inner, "out of memory (%zu bytes)", n);
    goto done;
  }
  bytes = whole;
  if (read_at(fd, bytes + 8 + hlen, n - 8 - (size_t)hlen, (off_t)(8 + hlen))) {
    fail(inner, sizeof inner, "read failed (file changed while read?)");
    goto done;
  }
  rc = st_parse(f, bytes, n, check_finite, inner, sizeof inner);
done:
  close(fd);
  free(bytes);
  if (rc) fail(err, errlen, "%s: %s", path, inner);
  return rc;
}

const st_tensor *st_find(const st_file *f, const char *name) {
  for (int i = 0; i < f->ntensors; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const char *st_meta_get(const st_file *f, const char *key) {
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
  return NULL;
}

/* ---- writer ---------------------------------------------------------------------------------- */

typedef struct st_wtensor {
  char *name;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  size_t numel;
  float *data;
} st_wtensor;

struct st_writer {
  st_wtensor *t;
  int nt, cap_t;
  st_meta *m;
  int nm, cap_m;
  int failed; /* an add failed (out of memory or a bad argument): save refuses */
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->nt; i++) {
    free(w->t[i].name);
    free(w->t[i].data);
  }
  for (int i = 0; i < w->nm; i++) {
    free(w->m[i].key);
    free(w->m[i].value);
  }
  free(w->t);
  free(w->m);
  free(w);
}

int st_writer_add(st_writer *w, const char *name, const int64_t *shape, int ndim, const float *data) {
  if (!w || !name || !*name || !strcmp(name, "__metadata__") || ndim < 0 || ndim > ST_MAX_DIMS)
    goto bad;
  for (int i = 0; i < w->nt; i++)
    if (!strcmp(w->t[i].name, name)) goto bad;
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0 || (shape[d] && numel > (SIZE_MAX / 8) / (size_t)shape[d])) goto bad;
    numel *= (size_t)shape[d];
  }
  if (w->nt == w->cap_t) {
    int cap = w->cap_t ? w->cap_t * 2 : 16;
    st_wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
    if (!t) goto bad;
    w->t = t;
    w->cap_t = cap;
  }
  st_wtensor *t = &w->t[w->nt];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  t->data = malloc(numel ? numel * sizeof(float) : 1);
  if (!t->name || !t->data) {
    free(t->name);
    free(t->data);
    goto bad;
  }
  if (numel) memcpy(t->data, data, numel * sizeof(float));
  t->ndim = ndim;
  for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
  t->numel = numel;
  w->nt++;
  return 0;
bad:
  if (w) w->failed = 1;
  return -1;
}

int st_writer_meta(st_writer *w, const char *key, const char *value) {
  if (!w || !key || !value) goto bad;
  for (int i = 0; i < w->nm; i++) {
    if (!strcmp(w->m[i].key, key)) {
      char *v = strdup(value);
      if (!v) goto bad;
      free(w->m[i].value);
      w->m[i].value = v;
      return 0;
    }
  }
  if (w->nm == w->cap_m) {
    int cap = w->cap_m ? w->cap_m * 2 : 16;
    st_meta *m = realloc(w->m, (size_t)cap * sizeof *m);
    if (!m) goto bad;
    w->m = m;
    w->cap_m = cap;
  }
  w->m[w->nm].key = strdup(key);
  w->m[w->nm].value = strdup(value);
  if (!w->m[w->nm].key || !w->m[w->nm].value) {
    free(w->m[w->nm].key);
    free(w->m[w->nm].value);
    goto bad;
  }
  w->nm++;
  return 0;
bad:
  if (w) w->failed = 1;
  return -1;
}

int st_writer_save(st_writer *w, const char *path, char *err, size_t errlen) {
  if (w->failed) {
    fail(err, errlen, "%s: not saved: an earlier tensor or metadata entry could not be added", path);
    return -1;
  }
  json_t *root = json_object();
  int ok = root != NULL;
  /* The checksum of the data section, as it will be written (little-endian floats), goes into
   * the metadata (last); any checksum the caller set is replaced. */
  uint32_t crc = 0;
  for (int i = 0; i < w->nt; i++)
    for (size_t k = 0; k < w->t[i].numel; k += 1024) {
      unsigned char le[4096];
      size_t m = w->t[i].numel - k < 1024 ? w->t[i].numel - k : 1024;
      for (size_t j = 0; j < m; j++) {
        uint32_t u;
        memcpy(&u, &w->t[i].data[k + j], 4);
        le[4 * j] = (unsigned char)u, le[4 * j + 1] = (unsigned char)(u >> 8);
        le[4 * j + 2] = (unsigned char)(u >> 16), le[4 * j + 3] = (unsigned char)(u >> 24);
      }
      crc = st_crc32c(crc, le, 4 * m);
    }
  char crc_text[32];
  snprintf(crc_text, sizeof crc_text, ST_CHECKSUM_PREFIX "%08x", crc);
  json_t *meta = ok ? json_object() : NULL;
  ok = meta && !json_object_set_new(root, "__metadata__", meta);
  for (int i = 0; ok && i < w->nm; i++)
    if (strcmp(w->m[i].key, ST_CHECKSUM_KEY))
      ok = !json_object_set_new(meta, w->m[i].key, json_string(w->m[i].value));
  ok = ok && !json_object_set_new(meta, ST_CHECKSUM_KEY, json_string(crc_text));
  uint64_t pos = 0;
  for (int i = 0; ok && i < w->nt; i++) {
    const st_wtensor *t = &w->t[i];
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    ok = e && shape && offs;
    for (int d = 0; ok && d < t->ndim; d++) ok = !json_array_append_new(shape, json_integer(t->shape[d]));
    uint64_t end = pos + (uint64_t)t->numel * 4;
    ok = ok && !json_array_append_new(offs, json_integer((json_int_t)pos)) &&
         !json_array_append_new(offs, json_integer((json_int_t)end));
    ok = ok && !json_object_set_new(e, "dtype", json_string("F32")) &&
         !json_object_set(e, "shape", shape) && !json_object_set(e, "data_offsets", offs);
    json_decref(shape);
    json_decref(offs);
    ok = ok && !json_object_set_new(root, t->name, e);
    if (!ok && e) json_decref(e);
    pos = end;
  }
  /* JSON_PRESERVE_ORDER: header order = insertion order (metadata first, then tensors). */
  char *header = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
  json_decref(root);
  if (!header) {
    fail(err, errlen, "%s: could not build the header (invalid UTF-8 in a name or out of memory)", path);
    return -1;
  }
  size_t hlen = strlen(header);
  size_t padded = (hlen + 7) & ~(size_t)7; /* 8 + header is then a multiple of 8 */
  size_t total = 8 + padded + (size_t)pos;
  unsigned char *buf = malloc(total);
  if (!buf) {
    free(header);
    fail(err, errlen, "%s: out of memory (%zu bytes)", path, total);
    return -1;
  }
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  memcpy(buf + 8, header, hlen);
  memset(buf + 8 + hlen, ' ', padded - hlen);
  free(header);
  unsigned char *d = buf + 8 + padded;
  for (int i = 0; i < w->nt; i++) {
    /* Little-endian floats: the format's byte order. */
    for (size_t k = 0; k < w->t[i].numel; k++) {
      uint32_t u;
      memcpy(&u, &w->t[i].data[k], 4);
      d[0] = (unsigned char)u;
      d[1] = (unsigned char)(u >> 8);
      d[2] = (unsigned char)(u >> 16);
      d[3] = (unsigned char)(u >> 24);
      d += 4;
    }
  }
  int rc = io_write_atomic(path, buf, total, err, errlen);
  free(buf);
  return rc;
}
