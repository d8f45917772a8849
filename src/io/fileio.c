/* fileio.c: atomic writes that never replace what is not a regular file, stale temporary files,
 * and non-blocking whole-file reads (see fileio.h). */
#include "vkebm/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_TAG ".tmp."

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

static const char *kind_name(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

enum { OUT_NEW, OUT_REPLACE, OUT_THROUGH, OUT_STDOUT };

/* What writing to path means (see fileio.h). OUT_NEW / OUT_REPLACE set *target (malloc'd: the
 * path, or a symlink's resolved target) and *mode. -1 with err when refused. */
static int classify(const char *path, char **target, int *mode, char *err, size_t errlen) {
  *target = NULL;
  *mode = 0644; /* new files are shared like any output (mkstemp would make them 0600) */
  if (!path || !*path) {
    snprintf(err, errlen, "output path is empty");
    return -1;
  }
  if (!strcmp(path, "-")) return OUT_STDOUT;
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno != ENOENT) {
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
      return -1;
    }
    char *dir = dir_of(path);
    struct stat ds;
    int dir_ok = dir && stat(dir, &ds) == 0 && S_ISDIR(ds.st_mode);
    if (!dir_ok) {
      snprintf(err, errlen, "%s: cannot create it: the folder %s does not exist", path,
               dir ? dir : "?");
      free(dir);
      return -1;
    }
    free(dir);
    *target = strdup(path);
    if (!*target) return snprintf(err, errlen, "%s: out of memory", path), -1;
    return OUT_NEW;
  }
  const char *real = path;
  char *resolved = NULL;
  if (S_ISLNK(st.st_mode)) {
    /* Keep the link: replace (or write through to) what it points at. */
    resolved = realpath(path, NULL);
    if (!resolved || stat(resolved, &st) != 0) {
      snprintf(err, errlen, "%s: a symbolic link to a missing file; not replaced", path);
      free(resolved);
      return -1;
    }
    real = resolved;
  }
  if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
    free(resolved);
    return OUT_THROUGH;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: %s; not replaced", path, kind_name(st.st_mode));
    free(resolved);
    return -1;
  }
  if (!(st.st_mode & 0222)) {
    snprintf(err, errlen, "%s: the file is read-only; not replaced (make it writable or remove it)",
             path);
    free(resolved);
    return -1;
  }
  *mode = (int)(st.st_mode & 07777);
  *target = resolved ? resolved : strdup(real);
  if (!*target) return snprintf(err, errlen, "%s: out of memory", path), -1;
  return OUT_REPLACE;
}

int io_check_output(const char *path, char *err, size_t errlen) {
  char *target;
  int mode;
  int kind = classify(path, &target, &mode, err, errlen);
  if (kind < 0) return -1;
  int rc = 0;
  if (target) {
    char *dir = dir_of(target);
    if (dir && access(dir, W_OK) != 0) {
      snprintf(err, errlen, "%s: cannot write in the folder %s: %s", path, dir, strerror(errno));
      rc = -1;
    }
    free(dir);
  }
  free(target);
  return rc;
}

int io_atomic_begin(io_atomic *a, const char *path, int durable, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->fd = -1;
  a->durable = durable;
  int kind = classify(path, &a->target, &a->mode, err, errlen);
  if (kind < 0) return -1;
  a->shown = strdup(path);
  if (!a->shown) goto oom;
  if (kind == OUT_STDOUT || kind == OUT_THROUGH) {
    a->through = 1;
    a->fd = kind == OUT_STDOUT ? dup(STDOUT_FILENO) : open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (a->fd < 0) {
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
      io_atomic_abort(a);
      return -1;
    }
    return 0;
  }
  size_t tlen = strlen(a->target);
  a->tmp = malloc(tlen + 48);
  if (!a->tmp) goto oom;
  snprintf(a->tmp, tlen + 48, "%s" TMP_TAG "%ld.XXXXXX", a->target, (long)getpid());
  a->fd = mkstemp(a->tmp);
  if (a->fd < 0) {
    snprintf(err, errlen, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(a->tmp);
    a->tmp = NULL;
    io_atomic_abort(a);
    return -1;
  }
  if (fchmod(a->fd, (mode_t)a->mode) != 0) {
    snprintf(err, errlen, "%s: chmod of the temporary file failed: %s", path, strerror(errno));
    io_atomic_abort(a);
    return -1;
  }
  return 0;
oom:
  snprintf(err, errlen, "%s: out of memory", path);
  io_atomic_abort(a);
  return -1;
}

int io_atomic_write(io_atomic *a, const void *data, size_t n, char *err, size_t errlen) {
  const char *p = data;
  while (n) {
    ssize_t w = write(a->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(err, errlen, "%s: write failed: %s", a->shown, w < 0 ? strerror(errno) : "no progress");
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int io_atomic_commit(io_atomic *a, char *err, size_t errlen) {
  int rc = 0;
  if (a->through) {
    if (close(a->fd) != 0) {
      snprintf(err, errlen, "%s: close failed: %s", a->shown, strerror(errno));
      rc = -1;
    }
    a->fd = -1;
    io_atomic_abort(a);
    return rc;
  }
  if (a->durable && fsync(a->fd) != 0) {
    snprintf(err, errlen, "%s: fsync failed: %s", a->shown, strerror(errno));
    goto fail;
  }
  int fd = a->fd;
  a->fd = -1;
  if (close(fd) != 0) {
    snprintf(err, errlen, "%s: close failed: %s", a->shown, strerror(errno));
    goto fail;
  }
  if (rename(a->tmp, a->target) != 0) {
    snprintf(err, errlen, "%s: rename failed: %s", a->shown, strerror(errno));
    goto fail;
  }
  free(a->tmp);
  a->tmp = NULL;
  if (a->durable) {
    /* Make the rename durable; failure here cannot un-write the file, so it is not an error. */
    char *dir = dir_of(a->target);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    free(dir);
  }
  io_atomic_abort(a);
  return 0;
fail:
  io_atomic_abort(a);
  return -1;
}

void io_atomic_abort(io_atomic *a) {
  if (a->fd >= 0) close(a->fd);
  if (a->tmp) unlink(a->tmp);
  free(a->tmp);
  free(a->target);
  free(a->shown);
  memset(a, 0, sizeof *a);
  a->fd = -1;
}

int io_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
  return io_write_atomic_ex(path, data, n, 1, err, errlen);
}

int io_write_atomic_ex(const char *path, const void *data, size_t n, int durable, char *err,
                       size_t errlen) {
  io_atomic a;
  if (io_atomic_begin(&a, path, durable, err, errlen)) return -1;
  if (io_atomic_write(&a, data, n, err, errlen)) {
    io_atomic_abort(&a);
    return -1;
  }
  return io_atomic_commit(&a, err, errlen);
}

/* Removes DIR/NAME.tmp.PID.XXXXXX of dead PIDs, for NAME = base (or any name when base is NULL). */
static int clean_stale(const char *dir, const char *base) {
  size_t tlen = strlen(TMP_TAG);
  DIR *d = opendir(dir);
  int removed = 0;
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *name = e->d_name;
    const char *tag = NULL; /* where ".tmp." starts */
    if (base) {
      size_t blen = strlen(base);
      if (!strncmp(name, base, blen) && !strncmp(name + blen, TMP_TAG, tlen)) tag = name + blen;
    } else {
      for (const char *t = strstr(name, TMP_TAG); t; t = strstr(t + 1, TMP_TAG)) tag = t;
      if (tag == name) tag = NULL;
    }
    if (!tag) continue;
    char *end;
    errno = 0;
    long pid = strtol(tag + tlen, &end, 10);
    /* NAME.tmp.PID.XXXXXX (mkstemp's six characters) */
    if (errno || end == tag + tlen || *end != '.' || strlen(end + 1) != 6 || pid <= 0 || pid > INT_MAX)
      continue;
    if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char full[PATH_MAX];
    if (snprintf(full, sizeof full, "%s/%s", dir, name) >= (int)sizeof full) continue;
    struct stat st;
    if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && unlink(full) == 0) removed++;
  }
  closedir(d);
  return removed;
}

int io_clean_stale_temps(const char *path) {
  if (!path || !*path || !strcmp(path, "-")) return 0;
  char *dir = dir_of(path);
  if (!dir) return 0;
  const char *slash = strrchr(path, '/');
  int removed = clean_stale(dir, slash ? slash + 1 : path);
  free(dir);
  return removed;
}

int io_clean_stale_temps_in(const char *dir) { return dir && *dir ? clean_stale(dir, NULL) : 0; }

/* The resolved directory of path plus its last component (malloc'd), or NULL. */
static char *canonical(const char *path) {
  char *dir = dir_of(path);
  char *rdir = dir ? realpath(dir, NULL) : NULL;
  free(dir);
  if (!rdir) return NULL;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t n = strlen(rdir) + strlen(base) + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s/%s", rdir, base);
  free(rdir);
  return out;
}

int io_same_file(const char *a, const char *b) {
  if (!a || !b) return 0;
  if (!strcmp(a, b)) return 1;
  struct stat sa, sb;
  int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
  if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (ea != eb) return 0;
  char *ca = canonical(a), *cb = canonical(b);
  int same = ca && cb && !strcmp(ca, cb);
  free(ca);
  free(cb);
  return same;
}

int io_open_regular(const char *path, long long *size, char *err, size_t errlen) {
  if (!path || !*path) {
    snprintf(err, errlen, "input path is empty");
    return -1;
  }
  /* O_NONBLOCK: opening a FIFO without a writer (or a device) must not hang; regular files
   * ignore it. fstat then refuses anything but a regular file before a single read. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: %s, not a regular file", path, kind_name(st.st_mode));
    close(fd);
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  *size = (long long)st.st_size;
  return fd;
}

int io_read_file(const char *path, size_t max_bytes, void **data, size_t *n, char *err,
                 size_t errlen) {
  *data = NULL;
  *n = 0;
  long long fsize;
  int fd = io_open_regular(path, &fsize, err, errlen);
  if (fd < 0) return -1;
  if ((unsigned long long)fsize > (unsigned long long)max_bytes) {
    snprintf(err, errlen, "%s: file is %lld bytes, more than the %zu-byte limit", path, fsize,
             max_bytes);
    close(fd);
    return -1;
  }
  size_t size = (size_t)fsize;
  unsigned char *buf = malloc(size + 1);
  if (!buf) {
    snprintf(err, errlen, "%s: out of memory (%zu bytes)", path, size);
    close(fd);
    return -1;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != size) {
    snprintf(err, errlen, "%s: read failed (%zu of %zu bytes)", path, got, size);
    free(buf);
    return -1;
  }
  buf[size] = 0;
  *data = buf;
  *n = size;
  return 0;
}

void io_float_text(char *out, size_t len, float v) {
  /* the fewest characters over every precision that reads back: %.1g of 10 is "1e+01", but
   * %.2g's "10" is shorter (9 significant digits always read back) */
  char t[48];
  size_t best = (size_t)-1;
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(t, sizeof t, "%.*g", digits, v);
    if (strtof(t, NULL) == v && strlen(t) < best) {
      best = strlen(t);
      snprintf(out, len, "%s", t);
    }
  }
}

int io_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}
