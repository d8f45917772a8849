/* fileio.h: small file helpers shared by every writer (model files, PNGs, GIFs, checkpoints).
 *
 * io_write_atomic is the one way this project writes an output. What it does depends on what
 * is at the path now (checked with lstat, never by opening it):
 *   nothing, or a regular file: the bytes go to a temporary file in the target's directory
 *     (PATH.tmp.PID.XXXXXX, so rename stays on one filesystem), which is flushed, fsynced and
 *     renamed over the target; the directory is then fsynced so the rename itself is durable.
 *     A replaced file keeps its permission bits; a file without any write permission is
 *     refused (like cp), not replaced.
 *   a symbolic link: the link is kept and its target is replaced as above (a dangling link,
 *     or one to anything but a regular file, is refused).
 *   "-": the bytes go to standard output.
 *   a character device (/dev/null, a terminal) or a FIFO: the bytes are written through to it,
 *     as `cat > PATH` would; the device or FIFO itself is never replaced.
 *   a directory, block device or socket: refused.
 * On any error the temporary file is removed and the old target is untouched.
 */
#ifndef VKEBM_FILEIO_H
#define VKEBM_FILEIO_H

#include <stddef.h>

/* Writes n bytes to path as described above. 0, or -1 with a one-line reason in err. */
int io_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

/* Same; durable = 0 skips the two fsyncs (about 8 ms per file here, 20x the rest of a small
 * write). The rename still makes the write atomic for readers and against the process dying;
 * only a power loss or kernel crash can then lose (not tear) the newest files. For bulk output
 * that can be regenerated: dataset images, animation frames. */
int io_write_atomic_ex(const char *path, const void *data, size_t n, int durable, char *err,
                       size_t errlen);

/* The same write in pieces, for outputs produced incrementally (GIF animations): begin decides
 * what the path is and opens the temporary file (or the device, FIFO or stdout) at once, so a
 * bad path is reported before any work; write appends; commit renames into place; abort
 * removes the temporary file. After a failed write, only abort is valid. */
typedef struct io_atomic {
  char *target;  /* the path replaced (a symlink's resolved target), or NULL for write-through */
  char *tmp;     /* the temporary file, NULL for write-through */
  char *shown;   /* the path as the user gave it, for messages */
  int fd;
  int mode;      /* permission bits for the new file */
  int through;   /* 1: fd is the device, FIFO or stdout itself */
  int durable;
} io_atomic;
int io_atomic_begin(io_atomic *a, const char *path, int durable, char *err, size_t errlen);
int io_atomic_write(io_atomic *a, const void *data, size_t n, char *err, size_t errlen);
int io_atomic_commit(io_atomic *a, char *err, size_t errlen);
void io_atomic_abort(io_atomic *a);

/* Checks, without creating anything, that io_write_atomic(path) would be allowed: the path is
 * not empty, what is there is a kind it writes, and the directory exists. Called before long
 * work so that a bad output path fails in a second, not after an hour. 0 or -1 with err. */
int io_check_output(const char *path, char *err, size_t errlen);

/* Removes PATH.tmp.PID.* files next to path whose writer (PID) is no longer running: what a
 * SIGKILL during an atomic write leaves behind. Returns the number removed. Best effort. */
int io_clean_stale_temps(const char *path);
/* The same for every NAME.tmp.PID.* in the folder dir (a dataset folder after a SIGKILL). */
int io_clean_stale_temps_in(const char *dir);

/* 1 when a and b name the same file: the same inode when both exist, else the same directory
 * (resolved) and name. For refusing two outputs (or an input and an output) that would destroy
 * each other. */
int io_same_file(const char *a, const char *b);

/* Reads a whole regular file (at most max_bytes) into a malloc'd buffer (+1 NUL byte, not
 * counted in *n). The file is opened non-blocking and checked with fstat before any read, so a
 * FIFO or a device is refused at once instead of hanging. 0, or -1 with a one-line reason. */
int io_read_file(const char *path, size_t max_bytes, void **data, size_t *n, char *err,
                 size_t errlen);

/* The same check alone: opens path non-blocking (O_RDONLY), refuses anything but a regular
 * file, and returns the open descriptor (blocking mode restored) and its size, or -1 with err. */
int io_open_regular(const char *path, long long *size, char *err, size_t errlen);

/* The shortest %g text (fewest characters, over every precision) that reads back as the same
 * float, into out: recorded settings and printed expressions reproduce exactly. */
void io_float_text(char *out, size_t len, float v);
/* Formats a one-line error into err (when err and errlen) and returns -1: the `return
 * io_fail(err, errlen, "...", ...)` of every reader and writer. */
int io_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
