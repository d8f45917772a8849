/* test_safetensors.c: the safetensors reader refuses every malformed case with its own message,
 * the writer round-trips bit for bit with deterministic bytes, and a failed write leaves the old
 * file untouched and no temporary file behind. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vkebm/fileio.h"
#include "vkebm/safetensors.h"

/* A file image: u64 header length (or an override), the header text, then data bytes. */
static unsigned char *make(const char *header, const void *data, size_t ndata, size_t *n) {
  size_t h = strlen(header);
  *n = 8 + h + ndata;
  unsigned char *b = malloc(*n);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(b + 8, header, h);
  if (ndata) memcpy(b + 8 + h, data, ndata);
  return b;
}

static void expect_reject(const char *label, const unsigned char *b, size_t n, int check_finite,
                          const char *fragment) {
  st_file f;
  char err[512] = "";
  int rc = st_parse(&f, b, n, check_finite, err, sizeof err);
  TU_CHECK(rc == -1, "%s: accepted", label);
  TU_CHECK(strstr(err, fragment) != NULL, "%s: message '%s' lacks '%s'", label, err, fragment);
  TU_CHECK(strchr(err, '\n') == NULL, "%s: message has a newline", label);
  printf("  %-28s -> %s\n", label, err);
  if (rc == 0) st_free(&f);
}

static void reject_header(const char *label, const char *header, size_t ndata, const char *fragment) {
  float data[64] = {0};
  size_t n;
  unsigned char *b = make(header, data, ndata, &n);
  expect_reject(label, b, n, 1, fragment);
  free(b);
}

static void test_malformed(void) {
  size_t n;
  unsigned char *b;
  expect_reject("short file", (const unsigned char *)"abc", 3, 1, "shorter than the 8-byte");
  unsigned char zero[16] = {0};
  expect_reject("header length 0", zero, 16, 1, "header length is 0");
  unsigned char big[16] = {0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0, '{', '}'}; /* 256 MiB */
  expect_reject("header length > 100 MB", big, 16, 1, "100 MB");
  unsigned char past[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
  expect_reject("header past end", past, 12, 1, "past the end");
  unsigned char huge[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}', ' ', ' '};
  expect_reject("header length 2^64-1", huge, 12, 1, "100 MB");

  reject_header("not JSON", "{\"a\": ", 0, "not valid UTF-8 JSON");
  reject_header("invalid UTF-8", "{\"__metadata__\":{\"k\":\"\xff\xfe\"}}", 0, "not valid UTF-8 JSON");
  reject_header("trailing garbage", "{} x", 0, "not valid UTF-8 JSON");
  reject_header("not an object", "[1, 2]", 0, "not a JSON object");
  reject_header("duplicate keys",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                4, "duplicate");
  reject_header("duplicate metadata keys", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate");
  reject_header("NUL in a name", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "not valid UTF-8 JSON");
  reject_header("metadata not a map", "{\"__metadata__\": 3}", 0, "__metadata__ is not a JSON object");
  reject_header("metadata number value", "{\"__metadata__\": {\"step\": 3}}", 0, "is not a string");
  reject_header("entry not an object", "{\"a\": 3}", 0, "entry is not a JSON object");
  reject_header("missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "lacks \"dtype\"");
  reject_header("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "lacks \"shape\"");
  reject_header("missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                "lacks \"data_offsets\"");
  reject_header("dtype not a string", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "dtype is not a string");
  reject_header("shape not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4,
                "shape is not an array");
  reject_header("shape with a float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}",
                4, "is not an integer");
  reject_header("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                "negative");
  reject_header("absurd dims",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                "\"data_offsets\":[0,4]}}",
                4, "more elements than");
  reject_header("too many dims",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                "dimensions");
  reject_header("F16 unsupported", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                "dtype F16 is unsupported");
  reject_header("unknown dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "unknown dtype 'Q4'");
  reject_header("offsets wrong length", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                "array of two integers");
  reject_header("offsets wrong type", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}",
                4, "non-negative integers");
  reject_header("offsets negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                "non-negative integers");
  reject_header("begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
                "begin 4 > end 0");
  reject_header("end past data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4,
                "past the 4 data bytes");
  reject_header("size != prod(shape)*4", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
                8, "shape needs 8");
  reject_header("first begin != 0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                "not 0");
  reject_header("overlap",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, "overlap");
  reject_header("gap",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                12, "gap");
  reject_header("last end != data size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                8, "data is 8 bytes");
  reject_header("name with a newline", "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                8, "'a?b'");

  /* NaN / Inf: refused only when asked. */
  float bad[2] = {1.0f, NAN};
  b = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", bad, 8, &n);
  expect_reject("NaN with check_finite", b, n, 1, "element 1 is NaN");
  st_file f;
  char err[256];
  TU_CHECK(st_parse(&f, b, n, 0, err, sizeof err) == 0, "NaN without check_finite refused: %s", err);
  if (!tu_failures) {
    TU_CHECK(isnan(f.tensors[0].data[1]), "NaN not kept");
    st_free(&f);
  }
  free(b);
  bad[1] = -INFINITY;
  b = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", bad, 8, &n);
  expect_reject("Inf with check_finite", b, n, 1, "infinite");
  free(b);

  /* Valid edge cases the reader must accept: empty header object, padding spaces, a scalar,
   * a zero-size tensor sharing an offset, extra keys in an entry (other writers add them). */
  const char *ok_headers[] = {
      "{}", "{\"__metadata__\":{}}       ",
      "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
      "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
      "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8],\"extra\":1}}"};
  size_t ok_data[] = {0, 0, 8};
  for (int i = 0; i < 3; i++) {
    float d[2] = {3.0f, 4.0f};
    b = make(ok_headers[i], d, ok_data[i], &n);
    TU_CHECK(st_parse(&f, b, n, 1, err, sizeof err) == 0, "valid header %d refused: %s", i, err);
    if (i == 2 && f.ntensors == 3) {
      const st_tensor *s = st_find(&f, "s"), *t = st_find(&f, "t"), *z = st_find(&f, "z");
      TU_CHECK(s && s->ndim == 0 && s->numel == 1 && s->data[0] == 3.0f, "scalar wrong");
      TU_CHECK(t && t->data[0] == 4.0f, "t wrong");
      TU_CHECK(z && z->numel == 0 && z->ndim == 2, "zero-size wrong");
    }
    st_free(&f);
    free(b);
  }
}

static int count_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  int count = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) count++;
  if (d) closedir(d);
  return count;
}

static int read_bytes(const char *path, unsigned char **b, size_t *n) {
  char err[256];
  return io_read_file(path, (size_t)1 << 30, (void **)b, n, err, sizeof err);
}

static void test_round_trip(const char *dir) {
  char path[512], path2[512];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  snprintf(path2, sizeof path2, "%s/model2.safetensors", dir);
  float w[2 * 3 * 3 * 3], v[5], s = -0.125f;
  tu_fill_uniform(w, 54, 7, -2.0f, 2.0f);
  tu_fill_uniform(v, 5, 8, -1.0f, 1.0f);
  w[3] = -0.0f;
  w[4] = 1e-42f; /* denormal survives */
  int64_t wshape[4] = {2, 3, 3, 3}, vshape[1] = {5}, zshape[2] = {0, 4};
  for (int rep = 0; rep < 2; rep++) {
    st_writer *wr = st_writer_new();
    TU_CHECK(st_writer_add(wr, "stem.weight", wshape, 4, w) == 0, "add");
    TU_CHECK(st_writer_add(wr, "head.bias", NULL, 0, &s) == 0, "add scalar");
    TU_CHECK(st_writer_add(wr, "empty", zshape, 2, NULL) == 0, "add empty");
    TU_CHECK(st_writer_add(wr, "blocks.0.cb2", vshape, 1, v) == 0, "add");
    TU_CHECK(st_writer_add(wr, "stem.weight", vshape, 1, v) == -1, "duplicate name accepted");
    TU_CHECK(st_writer_meta(wr, "format", "vkebm-model") == 0, "meta");
    TU_CHECK(st_writer_meta(wr, "config", "R=32 \"quoted\" ünïcode") == 0, "meta");
    TU_CHECK(st_writer_meta(wr, "format", "vkebm-model-v1") == 0, "meta replace");
    char err[512];
    /* The duplicate add marked the writer failed: save must refuse rather than drop it silently. */
    TU_CHECK(st_writer_save(wr, rep ? path2 : path, err, sizeof err) == -1, "save after failed add");
    st_writer_free(wr);
    wr = st_writer_new();
    st_writer_add(wr, "stem.weight", wshape, 4, w);
    st_writer_add(wr, "head.bias", NULL, 0, &s);
    st_writer_add(wr, "empty", zshape, 2, NULL);
    st_writer_add(wr, "blocks.0.cb2", vshape, 1, v);
    st_writer_meta(wr, "format", "vkebm-model-v1");
    st_writer_meta(wr, "config", "R=32 \"quoted\" ünïcode");
    TU_CHECK(st_writer_save(wr, rep ? path2 : path, err, sizeof err) == 0, "save: %s", err);
    st_writer_free(wr);
  }
  unsigned char *b1, *b2;
  size_t n1, n2;
  TU_CHECK(read_bytes(path, &b1, &n1) == 0 && read_bytes(path2, &b2, &n2) == 0, "read back bytes");
  TU_CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0, "same input gave different bytes");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b1[i];
  TU_CHECK((8 + hlen) % 8 == 0, "header not padded: %llu", (unsigned long long)hlen);
  TU_CHECK(b1[8 + hlen - 1] == ' ' || b1[8 + hlen - 1] == '}', "header ends oddly");
  TU_CHECK(memcmp(b1 + 8, "{\"__metadata__\"", 15) == 0, "metadata not first");
  TU_CHECK(n1 == 8 + hlen + (54 + 1 + 0 + 5) * 4, "file size %zu", n1);
  /* Insertion order in the data: stem.weight at 0, head.bias at 216, blocks.0.cb2 at 220. */
  float first;
  memcpy(&first, b1 + 8 + hlen, 4);
  TU_CHECK(first == w[0], "first tensor is not the first added");
  free(b1);
  free(b2);

  st_file f;
  char err[512];
  TU_CHECK(st_read(&f, path, 1, err, sizeof err) == 0, "read: %s", err);
  TU_CHECK(f.ntensors == 4 && f.nmeta == 3, "counts %d %d", f.ntensors, f.nmeta); /* + checksum */
  const st_tensor *tw = st_find(&f, "stem.weight"), *ts = st_find(&f, "head.bias"),
                  *tv = st_find(&f, "blocks.0.cb2"), *tz = st_find(&f, "empty");
  TU_CHECK(tw && ts && tv && tz, "tensor missing");
  if (tw && ts && tv && tz) {
    TU_CHECK(tw->ndim == 4 && tw->shape[0] == 2 && tw->shape[3] == 3 && tw->numel == 54, "shape");
    TU_CHECK(memcmp(tw->data, w, sizeof w) == 0, "stem.weight bits differ");
    TU_CHECK(ts->ndim == 0 && ts->numel == 1 && ts->data[0] == s, "scalar");
    TU_CHECK(memcmp(tv->data, v, sizeof v) == 0, "cb2 bits differ");
    TU_CHECK(tz->numel == 0 && tz->ndim == 2 && tz->shape[1] == 4, "empty");
    TU_CHECK(((uintptr_t)tw->data % 4) == 0 && ((uintptr_t)ts->data % 4) == 0 &&
                 ((uintptr_t)tv->data % 4) == 0, "unaligned data");
    TU_CHECK(!strcmp(tw->dtype, "F32"), "dtype");
  }
  TU_CHECK(st_meta_get(&f, "format") && !strcmp(st_meta_get(&f, "format"), "vkebm-model-v1"), "meta");
  TU_CHECK(st_meta_get(&f, "config") && !strcmp(st_meta_get(&f, "config"), "R=32 \"quoted\" ünïcode"),
           "meta unicode");
  TU_CHECK(st_meta_get(&f, "nope") == NULL, "absent meta");
  TU_CHECK(f.nmeta == 3 && !strcmp(f.meta[0].key, "checksum") && !strcmp(f.meta[1].key, "config"),
           "meta not sorted");
  st_free(&f);

  /* Missing files and directories: one line each. */
  TU_CHECK(st_read(&f, "/nonexistent/x.safetensors", 0, err, sizeof err) == -1 &&
               strstr(err, "No such file"), "missing file: %s", err);
  TU_CHECK(st_read(&f, dir, 0, err, sizeof err) == -1 && strstr(err, "not a regular file"),
           "directory: %s", err);
}

static void test_atomic(const char *dir) {
  char path[512], sub[512], err[512];
  snprintf(path, sizeof path, "%s/old.safetensors", dir);
  snprintf(sub, sizeof sub, "%s/adir", dir);
  float small[4] = {1, 2, 3, 4};
  int64_t shape4[1] = {4};
  st_writer *w = st_writer_new();
  st_writer_add(w, "x", shape4, 1, small);
  TU_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "save old: %s", err);
  unsigned char *old;
  size_t nold;
  read_bytes(path, &old, &nold);

  /* Target is a directory: refused, directory intact. */
  mkdir(sub, 0755);
  TU_CHECK(st_writer_save(w, sub, err, sizeof err) == -1, "saved over a directory");
  printf("  directory target -> %s\n", err);
  struct stat st;
  TU_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "directory damaged");
  /* Parent missing. */
  char nodir[600];
  snprintf(nodir, sizeof nodir, "%s/missing/x.safetensors", dir);
  TU_CHECK(st_writer_save(w, nodir, err, sizeof err) == -1, "saved into a missing directory");
  printf("  missing directory -> %s\n", err);
  st_writer_free(w);

  /* A write that fails half way (file size limit, works even as root): the old file is
   * unchanged and the temporary file is gone. */
  size_t big_n = 1 << 16;
  float *big = calloc(big_n, sizeof *big);
  int64_t bshape[1] = {(int64_t)big_n};
  w = st_writer_new();
  st_writer_add(w, "x", bshape, 1, big);
  struct rlimit saved, lim;
  getrlimit(RLIMIT_FSIZE, &saved);
  lim = saved;
  lim.rlim_cur = 4096;
  signal(SIGXFSZ, SIG_IGN);
  TU_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
  int rc = st_writer_save(w, path, err, sizeof err);
  setrlimit(RLIMIT_FSIZE, &saved);
  TU_CHECK(rc == -1, "write past the size limit succeeded");
  printf("  failed write -> %s\n", err);
  unsigned char *now;
  size_t nnow;
  TU_CHECK(read_bytes(path, &now, &nnow) == 0 && nnow == nold && memcmp(now, old, nold) == 0,
           "old file changed by a failed write");
  TU_CHECK(count_temp_files(dir) == 0, "temporary file left behind");
  /* And with the limit lifted the same write replaces it. */
  TU_CHECK(st_writer_save(w, path, err, sizeof err) == 0, "save big: %s", err);
  st_file f;
  TU_CHECK(st_read(&f, path, 1, err, sizeof err) == 0 && f.tensors[0].numel == big_n, "big read: %s", err);
  st_free(&f);
  TU_CHECK(count_temp_files(dir) == 0, "temporary file left behind");
  st_writer_free(w);
  free(big);
  free(old);
  free(now);
}

/* The fixed sample tests/st_interop.py checks with numpy: a[i] = (i - 11.5) / 4 for shape
 * [2, 3, 4], s = [-2.5], w[i] = i * i for shape [3, 5]; added in that (unsorted) order. */
static int write_sample(const char *path) {
  float a[24], s = -2.5f, w[15];
  for (int i = 0; i < 24; i++) a[i] = ((float)i - 11.5f) / 4.0f;
  for (int i = 0; i < 15; i++) w[i] = (float)(i * i);
  int64_t ashape[3] = {2, 3, 4}, sshape[1] = {1}, wshape[2] = {3, 5};
  st_writer *wr = st_writer_new();
  st_writer_add(wr, "a", ashape, 3, a);
  st_writer_add(wr, "s", sshape, 1, &s);
  st_writer_add(wr, "w", wshape, 2, w);
  st_writer_meta(wr, "format", "vkebm-interop-sample");
  st_writer_meta(wr, "note", "written by test_safetensors --write-sample");
  char err[512];
  int rc = st_writer_save(wr, path, err, sizeof err);
  st_writer_free(wr);
  if (rc) fprintf(stderr, "%s\n", err);
  return rc ? 1 : 0;
}

/* Mutation smoke test: random byte flips, truncations and header-length edits of a valid file
 * must each parse or fail with a one-line message (run under ASan to catch memory errors). */
/* The checksum: the CRC-32C check value; every single flipped data byte of a written file is
 * refused naming the file; a file without a checksum still loads; a malformed one is refused. */
static void test_checksum(const char *dir) {
  TU_CHECK(st_crc32c(0, "123456789", 9) == 0xe3069283u, "crc32c check value %08x",
           st_crc32c(0, "123456789", 9));
  TU_CHECK(st_crc32c(st_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u, "crc32c in pieces");
  char path[512], bad[512], err[512];
  snprintf(path, sizeof path, "%s/sum.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/flipped.safetensors", dir);
  float w[37];
  tu_fill_uniform(w, 37, 11, -1, 1);
  int64_t shape[1] = {37};
  st_writer *wr = st_writer_new();
  st_writer_add(wr, "w", shape, 1, w);
  st_writer_meta(wr, "checksum", "crc32c:00000000"); /* replaced by the writer's own */
  TU_CHECK(st_writer_save(wr, path, err, sizeof err) == 0, "save: %s", err);
  st_writer_free(wr);
  st_file f;
  TU_CHECK(st_read(&f, path, 1, err, sizeof err) == 0, "read: %s", err);
  const char *sum = st_meta_get(&f, "checksum");
  TU_CHECK(sum && !strncmp(sum, "crc32c:", 7) && strcmp(sum, "crc32c:00000000"), "checksum %s",
           sum ? sum : "(none)");
  size_t data_start = 0;
  unsigned char *b;
  size_t n;
  TU_CHECK(read_bytes(path, &b, &n) == 0, "read bytes");
  for (int i = 7; i >= 0; i--) data_start = data_start << 8 | b[i];
  data_start += 8;
  int refused = 0;
  for (size_t at = data_start; at < n; at++) {
    b[at] ^= 0x10;
    FILE *o = fopen(bad, "wb");
    fwrite(b, 1, n, o);
    fclose(o);
    b[at] ^= 0x10;
    st_file g;
    err[0] = 0;
    if (st_read(&g, bad, 0, err, sizeof err) == 0) st_free(&g);
    else if (strstr(err, "checksum mismatch") && strstr(err, "flipped.safetensors")) refused++;
  }
  TU_CHECK(refused == (int)(n - data_start), "%d of %zu flipped data bytes refused: %s", refused,
           n - data_start, err);
  printf("  checksum: %s; each of the %zu data bytes flipped: refused (%s)\n", sum ? sum : "-",
         n - data_start, err);
  st_free(&f);
  free(b);
  /* no checksum (older files, other tools): loads; a malformed one: refused */
  float one = 1.0f;
  size_t m;
  unsigned char *plain = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &one, 4, &m);
  TU_CHECK(st_parse(&f, plain, m, 1, err, sizeof err) == 0, "a file without a checksum: %s", err);
  st_free(&f);
  free(plain);
  plain = make("{\"__metadata__\":{\"checksum\":\"md5:12\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}", &one, 4, &m);
  TU_CHECK(st_parse(&f, plain, m, 1, err, sizeof err) != 0 && strstr(err, "not crc32c"),
           "a malformed checksum: %s", err);
  free(plain);
}

static void test_mutations(void) {
  float w[12];
  tu_fill_uniform(w, 12, 3, -1, 1);
  char header[400];
  snprintf(header, sizeof header,
           "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,4],"
           "\"data_offsets\":[0,32]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]}}");
  size_t n;
  unsigned char *good = make(header, w, 48, &n);
  unsigned char *b = malloc(n);
  float r[4];
  int accepted = 0, refused = 0;
  for (uint32_t trial = 0; trial < 3000; trial++) {
    memcpy(b, good, n);
    tu_fill_uniform(r, 4, 1000 + trial, 0, 1);
    size_t len = n;
    int kind = (int)(r[0] * 4);
    size_t at = (size_t)(r[1] * (float)n) % n;
    if (kind == 0) b[at] ^= (unsigned char)(1u << (int)(r[2] * 8));       /* bit flip */
    else if (kind == 1) b[at] = (unsigned char)(r[2] * 256);              /* byte set */
    else if (kind == 2) len = at;                                         /* truncation */
    else b[(size_t)(r[2] * 8) % 8] = (unsigned char)(r[3] * 256);         /* header length */
    st_file f;
    char err[512] = "";
    if (st_parse(&f, b, len, 1, err, sizeof err) == 0) {
      accepted++;
      st_free(&f);
    } else {
      refused++;
      TU_CHECK(err[0] && !strchr(err, '\n'), "trial %u: empty or multi-line message '%s'", trial, err);
    }
  }
  printf("  mutations: %d accepted (e.g. flips inside data or padding), %d refused\n", accepted, refused);
  TU_CHECK(refused > 1000, "only %d of 3000 mutations refused", refused);
  free(b);
  free(good);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-sample")) return write_sample(argv[2]);
  char dir[] = "/tmp/vkebm_test_st_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_malformed();
  test_mutations();
  test_round_trip(dir);
  test_atomic(dir);
  test_checksum(dir);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return tu_finish("test_safetensors");
}
