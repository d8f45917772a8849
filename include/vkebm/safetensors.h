/* safetensors.h: strict reader and atomic writer of the safetensors format (F32 tensors).
 *
 * Layout: u64 little-endian header length N; N bytes of JSON; the data. Each header entry is
 * "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, offsets relative to the
 * data start; "__metadata__" is a string->string map. The reader treats files as untrusted:
 * truncation, a header length past the file, bad JSON, duplicate keys, a non-string metadata
 * value, unknown dtypes, offsets that overlap, leave gaps or do not tile the data exactly,
 * size != prod(shape) * 4, and (on request) NaN/Inf values are each refused with a one-line
 * reason in err. The writer pads the header with spaces to a multiple of 8 and writes a
 * temporary file, fsyncs it and renames it over the target, so a crash never leaves a torn file.
 *
 * Checksum: the writer records __metadata__ "checksum" = "crc32c:XXXXXXXX", the CRC-32C of the
 * data section (the tensor bytes, not the header); the reader verifies it when present (files
 * without one, from older versions or other tools, still load), so a flipped data byte is
 * refused as "checksum mismatch" instead of loading as a wrong weight.
 */
#ifndef VKEBM_SAFETENSORS_H
#define VKEBM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef struct st_tensor {
  char *name;
  char dtype[8];             /* "F32" (the only dtype we load as data; others refused) */
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  size_t numel;
  const float *data;         /* points into the file's data (st_file owns it) */
} st_tensor;

typedef struct st_meta {
  char *key;
  char *value;
} st_meta;

typedef struct st_file {
  st_tensor *tensors;
  int ntensors;
  st_meta *meta;
  int nmeta;
  void *blob;                /* owned bytes */
  size_t blob_size;
} st_file;

/* Reads and validates path. check_finite: refuse NaN/Inf in any tensor. 0 or -1 with err. */
int st_read(st_file *f, const char *path, int check_finite, char *err, size_t errlen);
/* Same from memory (copies the bytes). */
int st_parse(st_file *f, const void *bytes, size_t n, int check_finite, char *err, size_t errlen);
void st_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta_get(const st_file *f, const char *key); /* NULL when absent */

/* CRC-32C (Castagnoli) of n bytes, continuing crc (0 to start). */
uint32_t st_crc32c(uint32_t crc, const void *data, size_t n);

/* Writer: collect tensors (data is copied on add) and metadata, then write atomically. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
int st_writer_add(st_writer *w, const char *name, const int64_t *shape, int ndim, const float *data);
int st_writer_meta(st_writer *w, const char *key, const char *value);
int st_writer_save(st_writer *w, const char *path, char *err, size_t errlen);
void st_writer_free(st_writer *w);

#endif
