/* fileio.c: atomic whole-file writes and bounded whole-file reads (see fileio.h). */
#include "vkebm/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Directory part of path ("." when none), for the temporary file and the directory fsync. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  size_t len = (size_t)(slash - path);
  char *d = malloc(len + 1);
  if (!d) return NULL;
  memcpy(d, path, len);
  d[len] = 0;
  return d;
}

int io_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
  return io_write_atomic_ex(path, data, n, 1, err, errlen);
}

int io_write_atomic_ex(const char *path, const void *data, size_t n, int durable, char *err,
                       size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: is a directory", path);
    return -1;
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(tmp);
    return -1;
  }
  /* mkstemp creates 0600; model files and images are meant to be shared like any output. */
  if (fchmod(fd, 0644) != 0) {
    snprintf(err, errlen, "%s: chmod of temporary file failed: %s", path, strerror(errno));
    close(fd);
    goto fail;
  }
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    snprintf(err, errlen, "%s: fdopen failed: %s", path, strerror(errno));
    close(fd);
    goto fail;
  }
  if ((n && fwrite(data, 1, n, f) != n) || fflush(f) != 0) {
    snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
    fclose(f);
    goto fail;
  }
  if (durable && fsync(fileno(f)) != 0) {
    snprintf(err, errlen, "%s: fsync failed: %s", path, strerror(errno));
    fclose(f);
    goto fail;
  }
  if (fclose(f) != 0) {
    snprintf(err, errlen, "%s: close failed: %s", path, strerror(errno));
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    snprintf(err, errlen, "%s: rename failed: %s", path, strerror(errno));
    goto fail;
  }
  free(tmp);
  if (!durable) return 0;
  /* Make the rename durable; failure here cannot un-write the file, so it is not an error. */
  char *dir = dir_of(path);
  if (dir) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    free(dir);
  }
  return 0;
fail:
  unlink(tmp);
  free(tmp);
  return -1;
}

int io_read_file(const char *path, size_t max_bytes, void **data, size_t *n, char *err,
                 size_t errlen) {
  *data = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: not a regular file", path);
    fclose(f);
    return -1;
  }
  if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
    snprintf(err, errlen, "%s: file is %lld bytes, more than the %zu-byte limit", path,
             (long long)st.st_size, max_bytes);
    fclose(f);
    return -1;
  }
  size_t size = (size_t)st.st_size;
  unsigned char *buf = malloc(size + 1);
  if (!buf) {
    snprintf(err, errlen, "%s: out of memory (%zu bytes)", path, size);
    fclose(f);
    return -1;
  }
  size_t got = fread(buf, 1, size, f);
  int read_error = ferror(f);
  fclose(f);
  if (read_error || got != size) {
    snprintf(err, errlen, "%s: read failed (%zu of %zu bytes)", path, got, size);
    free(buf);
    return -1;
  }
  buf[size] = 0;
  *data = buf;
  *n = size;
  return 0;
}
