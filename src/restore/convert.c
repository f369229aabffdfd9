#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"

extern char **environ;

/* How much of qemu-img's stderr ends up in an error message. */
#define STDERR_MAX 1536
/* How often a running conversion looks at the cancel flag. */
#define POLL_MS 200

struct progress_parser {
  char line[64];
  size_t len;
  uint64_t weight;
  uint64_t reported;
  struct vv_progress *p;
};

/* qemu-img -p writes "    (12.34/100%)\r" to stdout. */
static void
progress_line (struct progress_parser *pp)
{
  char *open, *end;
  double pct;
  uint64_t now;

  pp->line[pp->len] = '\0';
  pp->len = 0;
  open = strchr (pp->line, '(');
  if (open == NULL)
    return;
  pct = strtod (open + 1, &end);
  if (end == open + 1 || strncmp (end, "/100%", 5) != 0 ||
      !(pct >= 0 && pct <= 100))
    return;
  now = (uint64_t) (pct / 100 * pp->weight);
  if (now > pp->reported) {
    vv_progress_add (pp->p, now - pp->reported);
    pp->reported = now;
  }
}

static void
progress_feed (struct progress_parser *pp, const char *buf, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (buf[i] == '\r' || buf[i] == '\n')
      progress_line (pp);
    else if (pp->len < sizeof pp->line - 1)
      pp->line[pp->len++] = buf[i];
  }
}

/* stderr as one line: "qemu-img: x; qemu-img: y". */
static void
tidy_stderr (const char *in, char *out, size_t len)
{
  size_t n = 0;

  for (; *in && n + 3 < len; in++) {
    if (*in == '\n' || *in == '\r') {
      if (n > 0 && out[n - 1] != ' ') {
        out[n++] = ';';
        out[n++] = ' ';
      }
    }
    else
      out[n++] = *in;
  }
  while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == ';'))
    n--;
  out[n] = '\0';
}

static int
spawn (const char *qemu_img, char *const *argv, int out_fd, int err_fd,
       pid_t *ret_pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  int r;

  sigemptyset (&none);
  sigfillset (&all);
  posix_spawn_file_actions_init (&fa);
  posix_spawnattr_init (&attr);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2 (&fa, err_fd, 2);
  /* The daemon's other threads may hold descriptors without CLOEXEC. */
  posix_spawn_file_actions_addclosefrom_np (&fa, 3);
  /* Worker threads may block signals; qemu-img gets a clean slate. */
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setsigdefault (&attr, &all);
  posix_spawnattr_setflags (&attr,
                            POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  r = posix_spawnp (ret_pid, qemu_img, &fa, &attr, argv, environ);
  posix_spawnattr_destroy (&attr);
  posix_spawn_file_actions_destroy (&fa);
  return r;
}

static int
reap (pid_t pid, int *ret_status)
{
  while (waitpid (pid, ret_status, 0) == -1) {
    if (errno != EINTR) {
      vv_error_errno (errno, "waiting for qemu-img (pid %d)", (int) pid);
      return -1;
    }
  }
  return 0;
}

int
vv_restore_convert (const char *what, const char *src, const char *dst,
                    const char *format, uint64_t weight,
                    struct vv_progress *p)
{
  const char *qemu_img = getenv ("QEMU_IMG");
  _cleanup_close_ int out_r = -1, err_r = -1;
  int out_w = -1, err_w = -1;
  int fds[2];
  struct progress_parser pp = { .weight = weight, .p = p };
  char errbuf[STDERR_MAX + 1];
  size_t errlen = 0;
  bool cancelled = false;
  pid_t pid;
  int r, status;

  if (qemu_img == NULL || qemu_img[0] == '\0')
    qemu_img = "qemu-img";
  char *const argv[] = {
    (char *) qemu_img, (char *) "convert", (char *) "-p",
    (char *) "-f", (char *) "qcow2", (char *) "-O", (char *) format,
    /* Out-of-order writes let the coroutines run at full speed; the
     * output is not read until qemu-img has exited.
     */
    (char *) "-W", (char *) "-m", (char *) "4",
    (char *) src, (char *) dst, NULL
  };

  if (pipe2 (fds, O_CLOEXEC) == -1) {
    vv_error_errno (errno, "pipe");
    return -1;
  }
  out_r = fds[0];
  out_w = fds[1];
  if (pipe2 (fds, O_CLOEXEC) == -1) {
    vv_error_errno (errno, "pipe");
    close (out_w);
    return -1;
  }
  err_r = fds[0];
  err_w = fds[1];

  r = spawn (qemu_img, argv, out_w, err_w, &pid);
  close (out_w);
  close (err_w);
  if (r != 0) {
    if (r == ENOENT)
      vv_error ("cannot run %s: not found; restoring %s as %s needs "
                "qemu-img (install qemu-utils, or set $QEMU_IMG)",
                qemu_img, what, format);
    else
      vv_error_errno (r, "cannot run %s to convert %s", qemu_img, what);
    return -1;
  }

  while (out_r >= 0 || err_r >= 0) {
    struct pollfd pfd[2] = {
      { .fd = out_r, .events = POLLIN },
      { .fd = err_r, .events = POLLIN },
    };
    char buf[4096];

    if (vv_progress_cancelled (p)) {
      kill (pid, SIGKILL);
      cancelled = true;
      break;
    }
    if (poll (pfd, 2, POLL_MS) == -1) {
      if (errno == EINTR)
        continue;
      vv_error_errno (errno, "poll");
      kill (pid, SIGKILL);
      reap (pid, &status);
      return -1;
    }
    for (int i = 0; i < 2; i++) {
      int *fd = i == 0 ? &out_r : &err_r;
      ssize_t n;

      if (*fd < 0 || pfd[i].revents == 0)
        continue;
      n = read (*fd, buf, sizeof buf);
      if (n == -1 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0) {
        close (*fd);
        *fd = -1;
        continue;
      }
      if (i == 0)
        progress_feed (&pp, buf, n);
      else {
        size_t keep = STDERR_MAX - errlen;
        if (keep > (size_t) n)
          keep = n;
        memcpy (errbuf + errlen, buf, keep);
        errlen += keep;
      }
    }
  }
  errbuf[errlen] = '\0';

  if (reap (pid, &status) == -1)
    return -1;
  if (cancelled) {
    vv_error_code (VV_ERR_CANCELLED, "cancelled while converting %s to %s",
                   what, format);
    return -1;
  }
  if (WIFSIGNALED (status)) {
    vv_error ("qemu-img was killed by signal %d while converting %s to %s",
              WTERMSIG (status), what, format);
    return -1;
  }
  if (WEXITSTATUS (status) != 0) {
    char msg[2 * STDERR_MAX];
    tidy_stderr (errbuf, msg, sizeof msg);
    vv_error ("converting %s to %s with qemu-img failed (exit status %d): %s",
              what, format, WEXITSTATUS (status),
              msg[0] ? msg : "no message");
    return -1;
  }
  if (pp.reported < weight)
    vv_progress_add (p, weight - pp.reported);
  return 0;
}
