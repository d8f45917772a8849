/* fileio.h: small file helpers shared by every writer (model files, PNGs, checkpoints).
 *
 * io_write_atomic is the one way this project replaces a file: the bytes go to a temporary file
 * in the target's directory (so rename stays on one filesystem), which is flushed, fsynced and
 * renamed over the target; the directory is then fsynced so the rename itself is durable. On any
 * error the temporary file is removed and the old target is untouched.
 */
#ifndef VKEBM_FILEIO_H
#define VKEBM_FILEIO_H

#include <stddef.h>

/* Writes n bytes to path atomically. 0, or -1 with a one-line reason in err. */
int io_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

/* Same; durable = 0 skips the two fsyncs (about 8 ms per file here, 20x the rest of a small
 * write). The rename still makes the write atomic for readers and against the process dying;
 * only a power loss or kernel crash can then lose (not tear) the newest files. For bulk output
 * that can be regenerated: dataset images, animation frames. */
int io_write_atomic_ex(const char *path, const void *data, size_t n, int durable, char *err,
                       size_t errlen);

/* Reads a whole regular file (at most max_bytes) into a malloc'd buffer (+1 NUL byte, not
 * counted in *n). 0, or -1 with a one-line reason in err. */
int io_read_file(const char *path, size_t max_bytes, void **data, size_t *n, char *err,
                 size_t errlen);

#endif
