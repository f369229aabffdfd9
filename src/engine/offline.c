/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "engine/offline.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"

/* Most of a tool's output we look at. */
#define OUTPUT_MAX (1024 * 1024)
/* Most of its stderr that goes into a message. */
#define STDERR_MAX 400
/* Enough connections for vv_nbd_copy's readers plus the mapping one. */
#define SERVER_CLIENTS "32"
/* How long a server gets to go after SIGTERM, then after SIGKILL. */
#define STOP_WAIT_MS 5000
#define PID_SUFFIX ".nbd.pid"

static const char *
tool (const char *env, const char *dflt)
{
  const char *t = getenv (env);

  return t && *t ? t : dflt;
}

/* Runs argv to its end with stdout and stderr in memory files; the
 * caller closes *ret_out and *ret_err.  Returns the exit status (-1 with
 * an error when it could not run or was killed).
 */
static int
run_tool (char *const *argv, int *ret_out, int *ret_err)
{
  _cleanup_close_ int out = -1, err = -1;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  pid_t pid;
  int r, status;

  out = memfd_create ("vv-out", MFD_CLOEXEC);
  err = memfd_create ("vv-err", MFD_CLOEXEC);
  if (out == -1 || err == -1) {
    vv_error_errno (errno, "memfd_create");
    return -1;
  }
  sigemptyset (&none);
  sigfillset (&all);
  posix_spawn_file_actions_init (&fa);
  posix_spawnattr_init (&attr);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, out, 1);
  posix_spawn_file_actions_adddup2 (&fa, err, 2);
  /* The daemon's other threads may hold descriptors without CLOEXEC;
   * a server that inherits an NBD or HTTP socket would keep it open.
   */
  posix_spawn_file_actions_addclosefrom_np (&fa, 3);
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setsigdefault (&attr, &all);
  posix_spawnattr_setflags (&attr,
                            POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  r = posix_spawnp (&pid, argv[0], &fa, &attr, argv, environ);
  posix_spawnattr_destroy (&attr);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0) {
    vv_error_errno (r, "cannot run %s", argv[0]);
    return -1;
  }
  while (waitpid (pid, &status, 0) == -1) {
    if (errno != EINTR) {
      vv_error_errno (errno, "waiting for %s (pid %d)", argv[0], (int) pid);
      return -1;
    }
  }
  if (!WIFEXITED (status)) {
    vv_error ("%s was killed by signal %d", argv[0],
              WIFSIGNALED (status) ? WTERMSIG (status) : 0);
    return -1;
  }
  *ret_out = TAKE_FD (out);
  *ret_err = TAKE_FD (err);
  return WEXITSTATUS (status);
}

/* The contents of a memory file, NUL-terminated, at most max bytes. */
static char *
read_all (int fd, size_t max, size_t *ret_len)
{
  char *buf = malloc (max + 1);
  ssize_t n;

  if (buf == NULL) {
    vv_error_errno (ENOMEM, "reading a tool's output");
    return NULL;
  }
  n = pread (fd, buf, max, 0);
  if (n < 0) {
    vv_error_errno (errno, "reading a tool's output");
    free (buf);
    return NULL;
  }
  buf[n] = '\0';
  if (ret_len)
    *ret_len = n;
  return buf;
}

/* A tool's stderr as one line: "x; y". */
static void
one_line (int fd, char *out, size_t len)
{
  _cleanup_free_ char *text = read_all (fd, STDERR_MAX, NULL);
  size_t n = 0;

  out[0] = '\0';
  if (text == NULL) {
    vv_clear_error ();
    return;
  }
  for (const char *p = text; *p && n + 3 < len; p++) {
    if (*p == '\n' || *p == '\r') {
      if (n > 0 && out[n - 1] != ' ') {
        out[n++] = ';';
        out[n++] = ' ';
      }
    }
    else
      out[n++] = *p;
  }
  while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == ';'))
    n--;
  out[n] = '\0';
}

int
vv_offline_bitmap_usable (const char *image, const char *format,
                          const char *bitmap, char *why, size_t len)
{
  _cleanup_close_ int out = -1, err = -1;
  _cleanup_free_ char *text = NULL;
  _cleanup_json_ json_object *info = NULL;
  json_object *fs, *data, *bitmaps;
  size_t n;
  int r;
  char *const argv[] = {
    (char *) tool ("QEMU_IMG", "qemu-img"), (char *) "info",
    (char *) "--output=json",
    /* Only a look: the lock is taken by the server that reads. */
    (char *) "-U", (char *) "-f", (char *) format, (char *) image, NULL
  };

  r = run_tool (argv, &out, &err);
  if (r == -1) {
    snprintf (why, len, "%s", vv_get_error ());
    return -1;
  }
  if (r != 0) {
    char msg[STDERR_MAX + 1];
    one_line (err, msg, sizeof msg);
    vv_error ("qemu-img info %s failed: %s", image, msg);
    snprintf (why, len, "%s", vv_get_error ());
    return -1;
  }
  text = read_all (out, OUTPUT_MAX, &n);
  if (text == NULL
      || (info = vv_json_parse ("qemu-img info", text, n)) == NULL) {
    snprintf (why, len, "%s", vv_get_error ());
    return -1;
  }
  if (!json_object_object_get_ex (info, "format-specific", &fs)
      || !json_object_object_get_ex (fs, "data", &data)
      || !json_object_object_get_ex (data, "bitmaps", &bitmaps)
      || !json_object_is_type (bitmaps, json_type_array)) {
    snprintf (why, len, "the image carries no bitmaps");
    return 0;
  }
  for (size_t i = 0; i < json_object_array_length (bitmaps); i++) {
    json_object *b = json_object_array_get_idx (bitmaps, i);
    json_object *name, *flags;

    if (!json_object_object_get_ex (b, "name", &name)
        || strcmp (json_object_get_string (name), bitmap) != 0)
      continue;
    if (json_object_object_get_ex (b, "flags", &flags)
        && json_object_is_type (flags, json_type_array))
      for (size_t k = 0; k < json_object_array_length (flags); k++) {
        const char *f = json_object_get_string
          (json_object_array_get_idx (flags, k));
        if (f && strcmp (f, "in-use") == 0) {
          snprintf (why, len, "bitmap %s is flagged in-use (QEMU stopped "
                    "uncleanly; its changes are unknown)", bitmap);
          return 0;
        }
      }
    return 1;
  }
  snprintf (why, len, "the image carries no bitmap %s", bitmap);
  return 0;
}

int
vv_offline_serve (const char *run_dir, const char *disk,
                  const char *image, const char *format,
                  const char *bitmap, char **ret_socket)
{
  _cleanup_close_ int out = -1, err = -1;
  _cleanup_free_ char *sock = vv_printf ("%s/%s.sock", run_dir, disk);
  _cleanup_free_ char *pidfile = vv_printf ("%s/%s" PID_SUFFIX, run_dir,
                                            disk);
  _cleanup_free_ char *pidopt = NULL;
  char msg[STDERR_MAX + 1];
  int r;

  if (sock == NULL || pidfile == NULL
      || (pidopt = vv_printf ("--pid-file=%s", pidfile)) == NULL)
    return -1;
  if (strlen (sock) >= sizeof ((struct sockaddr_un *) 0)->sun_path) {
    vv_error ("the NBD socket path %s is too long for a UNIX socket; use "
              "a shorter state directory", sock);
    return -1;
  }
  /* A relative name or one with a protocol prefix ("nbd:...") would be
   * interpreted by QEMU.
   */
  if (image[0] != '/') {
    vv_error ("disk %s: image '%s' is not an absolute path", disk, image);
    return -1;
  }
  char *const argv[] = {
    (char *) tool ("QEMU_NBD", "qemu-nbd"),
    (char *) "--read-only", (char *) "--persistent", (char *) "--fork",
    (char *) "--shared=" SERVER_CLIENTS, (char *) "-f", (char *) format,
    (char *) "-x", (char *) disk, (char *) "-k", sock, pidopt,
    (char *) (bitmap ? "-B" : image), (char *) (bitmap ? bitmap : NULL),
    (char *) (bitmap ? image : NULL), NULL
  };

  /* The parent exits once the server listens, or with its error. */
  r = run_tool (argv, &out, &err);
  if (r == -1)
    return -1;
  if (r != 0) {
    one_line (err, msg, sizeof msg);
    vv_error ("cannot serve disk %s (%s) for reading: %s", disk, image,
              msg[0] ? msg : "qemu-nbd failed");
    return -1;
  }
  *ret_socket = TAKE_PTR (sock);
  return 0;
}

/* True while pid is a qemu-nbd serving from run_dir (not a recycled
 * pid, not a zombie).
 */
static bool
is_our_server (pid_t pid, const char *run_dir)
{
  char path[64];
  char buf[4096];
  _cleanup_close_ int fd = -1;
  ssize_t n;
  bool named = false, ours = false;
  size_t dlen = strlen (run_dir);

  snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return false;
  n = read (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return false;               /* a zombie has no command line */
  buf[n] = '\0';
  for (char *p = buf; p < buf + n; p += strlen (p) + 1) {
    const char *base = strrchr (p, '/');
    if (p == buf && strstr (base ? base + 1 : p, "qemu-nbd"))
      named = true;
    if (strncmp (p, run_dir, dlen) == 0 && p[dlen] == '/')
      ours = true;
  }
  return named && ours;
}

static bool
wait_gone (pid_t pid, const char *run_dir, int ms)
{
  struct timespec ts = { 0, 20 * 1000 * 1000 };

  for (int waited = 0; waited < ms; waited += 20) {
    if (!is_our_server (pid, run_dir))
      return true;
    nanosleep (&ts, NULL);
  }
  return !is_our_server (pid, run_dir);
}

void
vv_offline_stop_servers (const char *run_dir)
{
  DIR *d = opendir (run_dir);
  struct dirent *ent;

  if (d == NULL)
    return;
  while ((ent = readdir (d)) != NULL) {
    char buf[32];
    _cleanup_close_ int fd = -1;
    ssize_t n;
    long pid;
    char *end;

    if (!vv_str_has_suffix (ent->d_name, PID_SUFFIX))
      continue;
    fd = openat (dirfd (d), ent->d_name, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || (n = read (fd, buf, sizeof buf - 1)) <= 0)
      continue;
    buf[n] = '\0';
    errno = 0;
    pid = strtol (buf, &end, 10);
    if (errno || pid <= 1 || (*end && *end != '\n'))
      continue;
    if (!is_our_server (pid, run_dir))
      continue;
    kill (pid, SIGTERM);
    if (!wait_gone (pid, run_dir, STOP_WAIT_MS)) {
      kill (pid, SIGKILL);
      wait_gone (pid, run_dir, STOP_WAIT_MS);
    }
  }
  closedir (d);
}
