/* cli_progress.c: progress lines for long commands, JSON strings and mkdir -p (src/cli/cli.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define LINE_EVERY_S 5.0 /* off a terminal */
#define REDRAW_EVERY_S 0.1

void cli_progress_init(cli_progress *p, const char *cmd, int quiet) {
  memset(p, 0, sizeof *p);
  p->cmd = cmd;
  p->quiet = quiet;
  p->tty = isatty(STDERR_FILENO);
  p->t0 = cli_now_s();
  p->last = -1e30;
}

void cli_progress_update(cli_progress *p, const char *label, long done, long total) {
  if (p->quiet) return;
  double now = cli_now_s(), el = now - p->t0;
  int edge = done <= 0 || done >= total || p->last < -1e29;
  if (!edge && now - p->last < (p->tty ? REDRAW_EVERY_S : LINE_EVERY_S)) return;
  p->last = now;
  char eta[48] = "";
  if (done > 0 && done < total)
    snprintf(eta, sizeof eta, ", ETA %.0f s", el / (double)done * (double)(total - done));
  fprintf(stderr, "%svkebm %s: %s: %ld/%ld, %.0f s%s%s", p->tty ? "\r\033[K" : "", p->cmd, label,
          done, total, el, eta, p->tty ? "" : "\n");
  p->drawn = p->tty;
  fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
  if (p->drawn) fputc('\n', stderr);
  p->drawn = 0;
}

int cli_mkdir_p(const char *dir) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *q = buf + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    *q = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
  struct stat st;
  if (stat(buf, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

void cli_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 32) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}
