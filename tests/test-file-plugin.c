/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The target layer and the file plugin, through src/target/target.h:
 * loading (and refusing broken plugins), put/commit/abort, get ranges,
 * stat, list, remove, name checks, symlinks, test() failures, a full
 * file system, and several threads sharing directories.
 *
 * Root bypasses permission bits, so the read-only and "disk full" cases
 * mount small tmpfs file systems (falling back to chattr +i for read-only).
 * A component the test needs and cannot have (the broken and mem test
 * plugins, a read-only directory, a tmpfs) is a failure, never a skip.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/sha256.h"
#include "util/strutil.h"
#include "target/target.h"

static int failures;
static char tmpdir[] = "/tmp/vv-file-plugin-XXXXXX";
static char mounts[4][256];
static size_t n_mounts;
static char immutable_dir[256];

#define CHECK(cond) check ((cond), #cond, __LINE__)

static void
check (bool ok, const char *what, int line)
{
  if (!ok) {
    fprintf (stderr, "FAIL line %d: %s\n  last error: %s\n", line, what,
             vv_get_error ());
    failures++;
  }
}

/* The last error contains needle. */
static void
check_error (const char *needle, int line)
{
  if (strstr (vv_get_error (), needle) == NULL) {
    fprintf (stderr, "FAIL line %d: error does not contain \"%s\":\n  %s\n",
             line, needle, vv_get_error ());
    failures++;
  }
}
#define CHECK_ERROR(needle) check_error ((needle), __LINE__)

/* A component a check needs is missing: that check fails. */
static void __attribute__ ((format (printf, 2, 3)))
missing (int line, const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "FAIL line %d: missing component: ", line);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  failures++;
}
#define MISSING(...) missing (__LINE__, __VA_ARGS__)

static void
cleanup (void)
{
  char cmd[512];
  size_t i;

  if (immutable_dir[0]) {
    int fd = open (immutable_dir, O_RDONLY | O_DIRECTORY);
    int flags = 0;
    if (fd >= 0 && ioctl (fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags &= ~FS_IMMUTABLE_FL;
      ioctl (fd, FS_IOC_SETFLAGS, &flags);
    }
    if (fd >= 0)
      close (fd);
  }
  for (i = 0; i < n_mounts; i++)
    umount2 (mounts[i], MNT_DETACH);
  snprintf (cmd, sizeof cmd, "chmod -R u+rwx %s 2>/dev/null; rm -rf %s",
            tmpdir, tmpdir);
  if (system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", tmpdir);
}

static char *
path_in_tmp (const char *fmt, ...)
{
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  int n;
  va_list ap;

  n = snprintf (p, 512, "%s/", tmpdir);
  va_start (ap, fmt);
  vsnprintf (p + n, 512 - n, fmt, ap);
  va_end (ap);
  return p;
}

static struct vv_target *
open_dir (const char *dir, const char *const *params)
{
  char url[600];

  snprintf (url, sizeof url, "file://%s", dir);
  return vv_target_open ("test", url, params);
}

/* Number of entries (recursively) below dir, temporary files included. */
static int
count_entries (const char *dir)
{
  char cmd[600];
  FILE *fp;
  int n = -1;

  snprintf (cmd, sizeof cmd, "find %s -mindepth 1 | wc -l", dir);
  fp = popen (cmd, "r");
  if (fp == NULL || fscanf (fp, "%d", &n) != 1)
    n = -1;
  if (fp)
    pclose (fp);
  return n;
}

/* ---- list into a comma-separated string ---- */
struct listing {
  char s[4096];
  int stop_after;
  int n;
};

static int
list_cb (void *opaque, const char *name, uint64_t size)
{
  struct listing *l = opaque;
  size_t len = strlen (l->s);

  snprintf (l->s + len, sizeof l->s - len, "%s%s:%llu", len ? "," : "", name,
            (unsigned long long) size);
  l->n++;
  if (l->stop_after && l->n >= l->stop_after) {
    vv_error ("stopped by the callback");
    return -1;
  }
  return 0;
}

static const char *
list (struct vv_target *t, const char *prefix)
{
  static struct listing l;

  memset (&l, 0, sizeof l);
  if (vv_target_list (t, prefix, list_cb, &l) == -1)
    return "(error)";
  return l.s;
}

static int
put (struct vv_target *t, const char *name, const char *data)
{
  return vv_target_put_buffer (t, name, data, strlen (data), NULL);
}

/* ---- the tests ---- */

/* ---- entries planted on the target by someone else (issue 8) ----
 * Kept as one block of its own functions.
 */

/* Opens (IN_OPEN) of path seen by the inotify instance in since it was
 * made, or -1.
 */
static int
count_opens (int in)
{
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  int opens = 0;
  ssize_t n;

  while ((n = read (in, buf, sizeof buf)) > 0)
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *) p;
      if (ev->mask & IN_OPEN)
        opens++;
      p += sizeof *ev + ev->len;
    }
  return n == -1 && errno != EAGAIN ? -1 : opens;
}

/* A FIFO under an object name is never opened (a device node there, as
 * a FIFO, would run its driver's open: a watchdog armed, a tty made the
 * daemon's controlling terminal), and get and open_local say what it is.
 */
static void
test_planted_fifo (struct vv_target *t)
{
  const char *obj = "planted/c1/b1/vda.qcow2";
  const char *path = path_in_tmp ("root/planted/c1/b1/vda.qcow2");
  uint64_t size;
  char buf[4];
  int in, fd;

  CHECK (put (t, "planted/c1/b1/manifest.json", "{}") == 0);
  CHECK (mkfifo (path, 0600) == 0);
  in = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  CHECK (in >= 0);
  CHECK (inotify_add_watch (in, path, IN_OPEN) >= 0);

  CHECK (vv_target_stat (t, obj, &size) == -1);
  CHECK_ERROR ("is a FIFO, not an object");
  CHECK (vv_target_get (t, obj, buf, sizeof buf, 0) == -1);
  CHECK_ERROR ("planted/c1/b1/vda.qcow2 in target directory ");
  CHECK_ERROR ("is a FIFO, not an object");
  fd = vv_target_open_local (t, obj);
  CHECK (fd == -1);
  CHECK_ERROR ("is a FIFO, not an object");
  if (fd >= 0)
    close (fd);
  /* The FIFO itself was never opened. */
  CHECK (count_opens (in) == 0);
  close (in);

  CHECK (unlink (path) == 0);
  CHECK (vv_target_remove_prefix (t, "planted/") == 0);
}

/* open_local (the restore's fast path) follows no link: not an object
 * that is one, not a backup or chain directory that is one.
 */
static void
test_open_local_links (struct vv_target *t)
{
  const char *outside = path_in_tmp ("outside2");
  int fd;

  CHECK (mkdir (outside, 0700) == 0);
  CHECK (mkdir (path_in_tmp ("outside2/b1"), 0700) == 0);
  CHECK (close (creat (path_in_tmp ("outside2/b1/vda.qcow2"), 0600)) == 0);
  CHECK (put (t, "plantedl/c1/b0/vda.qcow2", "image") == 0);
  CHECK (symlink (path_in_tmp ("outside2/b1/vda.qcow2"),
                  path_in_tmp ("root/plantedl/c1/b0/vdb.qcow2")) == 0);
  CHECK (symlink (path_in_tmp ("outside2/b1"),
                  path_in_tmp ("root/plantedl/c1/b1")) == 0);
  CHECK (symlink (outside, path_in_tmp ("root/plantedl/c2")) == 0);

  fd = vv_target_open_local (t, "plantedl/c1/b0/vda.qcow2");
  CHECK (fd >= 0);
  if (fd >= 0) {
    char buf[8] = "";
    CHECK (pread (fd, buf, sizeof buf, 0) == 5 && memcmp (buf, "image", 5) == 0);
    close (fd);
  }
  CHECK (vv_target_open_local (t, "plantedl/c1/b0/vdb.qcow2") == -1);
  CHECK_ERROR ("plantedl/c1/b0/vdb.qcow2 is a symbolic link");
  CHECK (vv_target_open_local (t, "plantedl/c1/b1/vda.qcow2") == -1);
  CHECK_ERROR ("plantedl/c1/b1 is a symbolic link");
  CHECK (vv_target_open_local (t, "plantedl/c2/b1/vda.qcow2") == -1);
  CHECK_ERROR ("plantedl/c2 is a symbolic link");
  /* Removing the prefix removes the links, never what they point to. */
  CHECK (vv_target_remove_prefix (t, "plantedl/") == 0);
  CHECK (count_entries (outside) == 2);
  CHECK (unlink (path_in_tmp ("root/plantedl/c1/b0/vdb.qcow2")) == 0);
  CHECK (unlink (path_in_tmp ("root/plantedl/c1/b1")) == 0);
  CHECK (unlink (path_in_tmp ("root/plantedl/c2")) == 0);
  CHECK (rmdir (path_in_tmp ("root/plantedl/c1/b0")) == 0);
  CHECK (rmdir (path_in_tmp ("root/plantedl/c1")) == 0);
  CHECK (rmdir (path_in_tmp ("root/plantedl")) == 0);
}


static void
test_loader (void)
{
  const struct virtvault_plugin *p;
  char scheme[40];

  p = vv_plugin_for_scheme ("file");
  CHECK (p != NULL && strcmp (p->name, "file") == 0);
  CHECK (p != NULL && p->config_help && strstr (p->config_help, "fsync"));
  CHECK (vv_plugin_for_scheme ("file") == p);        /* cached */

  CHECK (vv_plugin_for_scheme ("gopher") == NULL);
  CHECK_ERROR ("no storage plugin for 'gopher://' URLs (looked for "
               "virtvault-gopher-plugin.so in ");
  CHECK_ERROR (", " PLUGINDIR ")");
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  CHECK (vv_plugin_for_scheme ("../file") == NULL);
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  CHECK (vv_plugin_for_scheme ("") == NULL);
  CHECK (vv_plugin_for_scheme ("abcdefghijklmnopqrstuvwxyz0123456") == NULL);

  CHECK (vv_url_scheme ("file:///srv", scheme, sizeof scheme) == 0 &&
         strcmp (scheme, "file") == 0);
  CHECK (vv_url_scheme ("s3+http://b/x", scheme, sizeof scheme) == 0 &&
         strcmp (scheme, "s3+http") == 0);
  CHECK (vv_url_scheme ("/srv/backup", scheme, sizeof scheme) == -1);
  CHECK (vv_url_scheme ("FILE:///srv", scheme, sizeof scheme) == -1);
  CHECK (vv_url_scheme ("://x", scheme, sizeof scheme) == -1);
  CHECK (vv_url_scheme ("file:///srv", scheme, 4) == -1);

  /* The broken plugins of tests/Makefile.am. */
  if (access (".libs/virtvault-nocb-plugin.so", F_OK) != 0) {
    MISSING ("the broken test plugins (.libs/virtvault-nocb-plugin.so ...) "
             "are not built: run it through 'make check'");
    return;
  }
  CHECK (vv_plugin_for_scheme ("nocb") == NULL);
  CHECK_ERROR ("virtvault-nocb-plugin.so lacks the required callback 'get'");
  CHECK (vv_plugin_for_scheme ("future") == NULL);
  CHECK_ERROR ("virtvault-future-plugin.so needs plugin API version 3 but "
               "this virtvault provides version 2");
  CHECK (vv_plugin_for_scheme ("misnamed") == NULL);
  CHECK_ERROR ("calls itself 'other', not 'misnamed'");
  CHECK (vv_plugin_for_scheme ("tiny") == NULL);
  CHECK_ERROR ("virtvault-tiny-plugin.so is damaged");
  CHECK (vv_plugin_for_scheme ("halfread") == NULL);
  CHECK_ERROR ("must have all or none of read_open, pread and read_close");
}

/* A version 2 plugin gets the host services, its capabilities are used,
 * put_begin2 gets the size, errno classifies its errors and its secret
 * parameters are known to the host.
 */
static void
test_v2_plugin (void)
{
  const struct virtvault_plugin *p;
  struct vv_target *t;
  struct vv_progress prog = { 0 };

  p = vv_plugin_for_scheme ("v2");
  CHECK (p != NULL);
  if (p == NULL)
    return;
  CHECK (p->_api_version == 2);
  t = vv_target_open ("v", "v2://x", NULL);
  CHECK (t != NULL);
  if (t == NULL)
    return;
  CHECK (vv_target_caps (t)->flags == VIRTVAULT_CAP_CONSISTENT_LIST);
  /* No read handles: one read at a time through get, whatever it says. */
  CHECK (vv_target_caps (t)->max_parallel_reads == 1);
  /* Over the plugin's limit: refused before the plugin is asked. */
  CHECK (vv_target_put_begin_sized (t, "a/b", 1001) == NULL);
  CHECK_ERROR ("a/b would be 1001 bytes but target 'v' stores objects of "
               "at most 1000 bytes");
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  CHECK (vv_target_put_begin_sized (t, "a/b", 999) == NULL);
  CHECK_ERROR ("v2 plugin: a/b of 999 bytes exists");
  CHECK (vv_get_error_plugin_errno () == EEXIST);
  CHECK (vv_target_put_buffer (t, "a/c", "hello", 5, NULL) == -1);
  CHECK_ERROR ("v2 plugin: a/c of 5 bytes exists");
  /* Host services: version, and the job's cancel flag for this thread. */
  CHECK (vv_target_test (t) == -1);
  CHECK_ERROR ("v2 plugin: host " PACKAGE_NAME " " PACKAGE_VERSION
               ", not cancelled (own thread: job_cancelled 0), timing out on "
               "purpose");
  CHECK (vv_get_error_plugin_errno () == ETIMEDOUT);
  atomic_store (&prog.cancel, true);
  vv_progress_set_current (&prog);
  CHECK (vv_target_test (t) == -1);
  /* cancelled () speaks for the calling thread only; the job's token
   * reaches the plugin's own threads.
   */
  CHECK_ERROR ("v2 plugin: the job was cancelled (on the plugin's own "
               "thread: cancelled 0, job_cancelled 1)");
  CHECK (vv_get_error_plugin_errno () == ECANCELED);
  vv_progress_set_current (NULL);
  /* A listing from the target never steers what is removed. */
  CHECK (vv_target_remove_prefix (t, "dots/") == -1);
  CHECK_ERROR ("invalid listed object name 'dots/../../etc/passwd'");
  CHECK (vv_target_remove_prefix (t, "outside/") == -1);
  CHECK_ERROR ("target 'v' listed elsewhere/x when asked for the objects "
               "below outside/");
  CHECK (vv_target_remove_prefix (t, "fine/") == -1);
  CHECK_ERROR ("v2 plugin: remove_many of 1 names from fine/x");
  /* Secrets: the plugin's keys, and every key of an unloadable plugin. */
  CHECK (vv_target_param_is_secret ("v2://x", "password=hunter2"));
  CHECK (vv_target_param_is_secret ("v2://x", "token="));
  CHECK (!vv_target_param_is_secret ("v2://x", "user=bob"));
  CHECK (!vv_target_param_is_secret ("v2://x", "passwords=x"));
  CHECK (vv_target_param_is_secret ("nosuch://x", "user=bob"));
  CHECK (!vv_target_param_is_secret ("file:///srv", "fsync=true"));
  vv_target_close (t);
  /* The mem plugin is built against the frozen ABI 1 header. */
  p = vv_plugin_for_scheme ("mem");
  CHECK (p != NULL && p->_api_version == 1 && p->read_open == NULL &&
         p->_struct_size < sizeof *p);
}

/* The open temporary file of object base in this process: its fd's
 * flags from /proc/self/fdinfo, or -1.
 */
static long
temp_file_flags (const char *base)
{
  char link[64], target[PATH_MAX], info[64], line[256];
  long flags = -1;

  for (int fd = 3; fd < 1024 && flags == -1; fd++) {
    ssize_t n;
    FILE *f;

    snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink (link, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    if (strstr (target, base) == NULL)
      continue;
    snprintf (info, sizeof info, "/proc/self/fdinfo/%d", fd);
    if ((f = fopen (info, "r")) == NULL)
      continue;
    while (fgets (line, sizeof line, f))
      if (strncmp (line, "flags:", 6) == 0)
        flags = strtol (line + 6, NULL, 8);
    fclose (f);
  }
  return flags;
}

/* Data is written with O_DIRECT from the plugin's aligned buffer, the
 * unaligned end through the page cache: the object must come back exactly,
 * whatever the sizes of the writes.
 */
static void
test_file_direct (const char *root)
{
  const char *params[] = { "direct=true", NULL };
  _cleanup_free_ char *url = vv_printf ("file://%s", root);
  struct vv_target *t = url ? vv_target_open ("d", url, params) : NULL;
  const size_t size = 2 * 4 * 1024 * 1024 + 4096 + 13;
  unsigned char *data = malloc (size), *back = malloc (size);
  struct vv_target_writer *w;
  struct vv_target_reader *r;
  size_t off = 0, step = 1;
  uint64_t got;

  CHECK (t != NULL && data != NULL && back != NULL);
  if (t == NULL || data == NULL || back == NULL)
    goto out;
  for (size_t i = 0; i < size; i++)
    data[i] = (unsigned char) (i * 7 + (i >> 12));
  w = vv_target_put_begin_sized (t, "v2/direct", size);
  CHECK (w != NULL);
  if (w == NULL)
    goto out;
  /* Odd write sizes, from 1 byte to a few MiB. */
  while (off < size) {
    size_t n = size - off < step ? size - off : step;
    CHECK (vv_target_put_write (w, data + off, n) == 0);
    off += n;
    step = step * 3 + 1;
  }
  CHECK ((temp_file_flags ("/v2/.direct") & O_DIRECT) != 0);
  CHECK (vv_target_put_commit (w, NULL, NULL) == 0);
  /* O_DIRECT is the default; direct=false writes through the cache. */
  {
    const char *buffered[] = { "direct=false", NULL };
    struct vv_target *td = vv_target_open ("dd", url, NULL);
    struct vv_target *tb = vv_target_open ("db", url, buffered);
    struct vv_target_writer *wd, *wb, *ws, *wu;

    wd = td ? vv_target_put_begin_sized (td, "v2/dflt", size) : NULL;
    wb = tb ? vv_target_put_begin_sized (tb, "v2/buf", size) : NULL;
    ws = td ? vv_target_put_begin_sized (td, "v2/small", 4096) : NULL;
    wu = td ? vv_target_put_begin (td, "v2/unsized") : NULL;

    long fd_flags = temp_file_flags ("/v2/.dflt");
    long fb_flags = temp_file_flags ("/v2/.buf");
    long fs_flags = temp_file_flags ("/v2/.small");
    long fu_flags = temp_file_flags ("/v2/.unsized");

    CHECK (wd != NULL && wb != NULL && ws != NULL && wu != NULL);
    CHECK (fd_flags != -1 && fb_flags != -1 && fs_flags != -1
           && fu_flags != -1);
    CHECK ((fd_flags & O_DIRECT) != 0);
    CHECK ((fb_flags & O_DIRECT) == 0);
    /* Small objects and streams of unknown size: the page cache. */
    CHECK ((fs_flags & O_DIRECT) == 0);
    CHECK ((fu_flags & O_DIRECT) == 0);
    vv_target_put_abort (wd);
    vv_target_put_abort (wb);
    vv_target_put_abort (ws);
    vv_target_put_abort (wu);
    vv_target_close (td);
    vv_target_close (tb);
  }
  r = vv_target_reader_open (t, "v2/direct", &got);
  CHECK (r != NULL && got == size);
  CHECK (r && vv_target_reader_pread (r, back, size, 0) == (int64_t) size &&
         memcmp (back, data, size) == 0);
  vv_target_reader_close (r);
  CHECK (vv_target_remove (t, "v2/direct") == 0);
 out:
  vv_target_close (t);
  free (data);
  free (back);
}

/* Version 2 of the file plugin: sized puts, read handles, errno classes. */
static void
test_file_v2 (struct vv_target *t, const char *root)
{
  struct vv_target_writer *w;
  struct vv_target_reader *r;
  char buf[16], path[PATH_MAX];
  uint64_t size;

  CHECK ((vv_target_caps (t)->flags & (VIRTVAULT_CAP_ATOMIC_PUBLISH |
                                       VIRTVAULT_CAP_LOCAL_FILES)) ==
         (VIRTVAULT_CAP_ATOMIC_PUBLISH | VIRTVAULT_CAP_LOCAL_FILES));
  CHECK (vv_target_caps (t)->max_parallel_reads == 4);
  /* Fewer bytes than announced: nothing is published. */
  w = vv_target_put_begin_sized (t, "v2/short", 10);
  CHECK (w != NULL && vv_target_put_write (w, "12345", 5) == 0);
  CHECK (w && vv_target_put_commit (w, NULL, NULL) == -1);
  CHECK_ERROR ("5 bytes were written of the 10 announced");
  CHECK (vv_target_stat (t, "v2/short", &size) == 0);
  /* More than announced: the write fails, commit publishes nothing. */
  w = vv_target_put_begin_sized (t, "v2/long", 3);
  CHECK (w != NULL && vv_target_put_write (w, "12345", 5) == -1);
  CHECK_ERROR ("writing more than the 3 bytes announced");
  CHECK (w && vv_target_put_commit (w, NULL, NULL) == -1);
  CHECK (vv_target_stat (t, "v2/long", &size) == 0);
  /* Far more than the disk holds: refused at put_begin, as "full". */
  CHECK (vv_target_put_begin_sized (t, "v2/huge", UINT64_C (1) << 60) ==
         NULL);
  CHECK (vv_get_error_code () == VV_ERR_UNAVAILABLE);
  CHECK (vv_target_stat (t, "v2/huge", &size) == 0);
  CHECK (strstr (list (t, "v2/"), "tmp") == NULL);
  snprintf (path, sizeof path, "%s/v2", root);
  /* Exactly the size: published, read back through a read handle. */
  w = vv_target_put_begin_sized (t, "v2/ok", 11);
  CHECK (w != NULL && vv_target_put_write (w, "hello world", 11) == 0);
  CHECK (w && vv_target_put_commit (w, NULL, NULL) == 0);
  r = vv_target_reader_open (t, "v2/ok", &size);
  CHECK (r != NULL && size == 11);
  CHECK (r && vv_target_reader_parallel (r) == 4);
  CHECK (r && vv_target_reader_pread (r, buf, 5, 6) == 5 &&
         memcmp (buf, "world", 5) == 0);
  CHECK (r && vv_target_reader_pread (r, buf, 16, 8) == 3 &&
         memcmp (buf, "rld", 3) == 0);
  vv_target_reader_close (r);
  CHECK (vv_target_reader_open (t, "v2/missing", &size) == NULL);
  CHECK (vv_get_error_plugin_errno () == ENOENT);
  /* Publishing over an existing name: class EEXIST. */
  CHECK (vv_target_put_buffer (t, "v2/ok", "x", 1, NULL) == -1);
  CHECK (vv_get_error_plugin_errno () == EEXIST);
  CHECK (vv_target_remove_prefix (t, "v2/") == 0);
}

static void
test_open (void)
{
  const char *unknown[] = { "fsync=true", "colour=blue", NULL };
  const char *twice[] = { "fsync=true", "fsync=false", NULL };
  const char *badmode[] = { "dir_mode=0644", NULL };
  const char *noeq[] = { "fsync", NULL };
  char longurl[VV_TARGET_URL_MAX + 16];
  struct vv_target *t;

  t = vv_target_open ("t", "file://server/srv", NULL);
  CHECK (t == NULL);
  CHECK_ERROR ("names host 'server'");
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  t = vv_target_open ("t", "file://localhost/srv/b", NULL);
  CHECK (t != NULL && strcmp (vv_target_url (t), "file://localhost/srv/b") == 0);
  CHECK (t != NULL && strcmp (vv_target_name (t), "t") == 0);
  vv_target_close (t);
  CHECK (vv_target_open ("t", "file:///srv/a%20b", NULL) == NULL);
  CHECK_ERROR ("without URL escapes");
  CHECK (vv_target_open ("t", "file:///srv", unknown) == NULL);
  CHECK_ERROR ("target 't': unknown file target parameter 'colour'; "
               "accepted: fsync=true|false, dir_mode=OCTAL, direct=true|false");
  CHECK (vv_target_open ("t", "file:///srv", twice) == NULL);
  CHECK_ERROR ("'fsync' is given twice");
  CHECK (vv_target_open ("t", "file:///srv", badmode) == NULL);
  CHECK_ERROR ("dir_mode must be an octal mode");
  CHECK (vv_target_open ("t", "file:///srv", noeq) == NULL);
  CHECK_ERROR ("bad parameter 1 of target 't' (its value is not shown)");
  CHECK (vv_target_open ("t", "gopher://host/x", NULL) == NULL);
  CHECK_ERROR ("target 't': no storage plugin for 'gopher://' URLs");
  CHECK (vv_target_open ("bad name", "file:///srv", NULL) == NULL);
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  memset (longurl, 'a', sizeof longurl);
  memcpy (longurl, "file:///", 8);
  longurl[sizeof longurl - 1] = '\0';
  CHECK (vv_target_open ("t", longurl, NULL) == NULL);
  CHECK_ERROR ("longer than 2048 bytes");
}

static void
test_put_get (struct vv_target *t, const char *root)
{
  static char data[300001];
  char sha[VV_SHA256_HEX] = "", expect[VV_SHA256_HEX];
  struct vv_target_writer *w, *w2;
  struct vv_sha256 *h;
  uint64_t bytes = 0, size = 0;
  char buf[64];
  size_t i;

  /* The NIST vector: sha256("abc"). */
  CHECK (vv_target_put_buffer (t, "vec/abc", "abc", 3, sha) == 0);
  CHECK (strcmp (sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb41"
                 "0ff61f20015ad") == 0);

  for (i = 0; i < sizeof data; i++)
    data[i] = (char) (i * 7 + i / 251);
  w = vv_target_put_begin (t, "u1/c1/b1/vda.qcow2");
  CHECK (w != NULL);
  if (w == NULL)
    return;
  /* Odd-sized writes, and an empty one. */
  CHECK (vv_target_put_write (w, data, 1) == 0);
  CHECK (vv_target_put_write (w, data + 1, 0) == 0);
  CHECK (vv_target_put_write (w, data + 1, 65537) == 0);
  CHECK (vv_target_put_write (w, data + 65538, sizeof data - 65538) == 0);
  /* Not visible until committed. */
  CHECK (strcmp (list (t, ""), "vec/abc:3") == 0);
  CHECK (vv_target_stat (t, "u1/c1/b1/vda.qcow2", &size) == 0);
  CHECK (vv_target_put_commit (w, sha, &bytes) == 0);
  h = vv_sha256_new ();
  vv_sha256_update (h, data, sizeof data);
  vv_sha256_final (h, expect);
  vv_sha256_free (h);
  CHECK (strcmp (sha, expect) == 0);
  CHECK (bytes == sizeof data);

  CHECK (vv_target_stat (t, "u1/c1/b1/vda.qcow2", &size) == 1);
  CHECK (size == sizeof data);
  CHECK (vv_target_stat (t, "u1/c1/b1/vdb.qcow2", &size) == 0);
  CHECK (vv_target_stat (t, "u1/c1", &size) == 0);      /* a directory */
  CHECK (vv_target_stat (t, "vec/abc/x", &size) == 0);  /* under a file */

  /* Ranges: start, middle, across the end, at the end, past the end. */
  CHECK (vv_target_get (t, "u1/c1/b1/vda.qcow2", buf, 10, 0) == 10 &&
         memcmp (buf, data, 10) == 0);
  CHECK (vv_target_get (t, "u1/c1/b1/vda.qcow2", buf, 64, 123457) == 64 &&
         memcmp (buf, data + 123457, 64) == 0);
  CHECK (vv_target_get (t, "u1/c1/b1/vda.qcow2", buf, 64, sizeof data - 5)
         == 5 && memcmp (buf, data + sizeof data - 5, 5) == 0);
  CHECK (vv_target_get (t, "u1/c1/b1/vda.qcow2", buf, 64, sizeof data) == 0);
  CHECK (vv_target_get (t, "u1/c1/b1/vda.qcow2", buf, 64, 1ULL << 40) == 0);
  CHECK (vv_target_get (t, "u1/c1/b1/missing", buf, 64, 0) == -1);
  CHECK_ERROR ("u1/c1/b1/missing does not exist in target directory");

  /* Publishing over an existing name fails early ... */
  CHECK (vv_target_put_begin (t, "vec/abc") == NULL);
  CHECK_ERROR ("vec/abc already exists in target directory");
  /* ... and at commit, when the other writer got there first. */
  w = vv_target_put_begin (t, "race/obj");
  w2 = vv_target_put_begin (t, "race/obj");
  CHECK (w && w2);
  if (w && w2) {
    CHECK (vv_target_put_write (w, "first", 5) == 0);
    CHECK (vv_target_put_write (w2, "second", 6) == 0);
    CHECK (vv_target_put_commit (w, NULL, NULL) == 0);
    bytes = 42;
    CHECK (vv_target_put_commit (w2, sha, &bytes) == -1);
    CHECK_ERROR ("race/obj already exists in target directory");
    CHECK (bytes == 42);                     /* untouched on failure */
    CHECK (vv_target_get (t, "race/obj", buf, sizeof buf, 0) == 5 &&
           memcmp (buf, "first", 5) == 0);
  }
  CHECK (count_entries (path_in_tmp ("root/race")) == 1);

  /* Abort leaves nothing, not even the directories it made. */
  w = vv_target_put_begin (t, "ab/cd/ef");
  CHECK (w != NULL);
  CHECK (vv_target_put_write (w, data, 1000) == 0);
  CHECK (count_entries (path_in_tmp ("root/ab")) == 2);    /* cd, temp */
  vv_target_put_abort (w);
  CHECK (access (path_in_tmp ("root/ab"), F_OK) == -1);
  vv_target_put_abort (NULL);

  /* A put interrupted by a crash leaves a temporary file that list does
   * not show; removing the prefix removes it too (remove_partial).
   */
  {
    int fd;

    CHECK (mkdir (path_in_tmp ("root/crash"), 0750) == 0);
    CHECK (mkdir (path_in_tmp ("root/crash/bk"), 0750) == 0);
    fd = open (path_in_tmp ("root/crash/bk/.vda.qcow2.part-x1y2z3"),
               O_WRONLY | O_CREAT | O_EXCL, 0640);
    CHECK (fd >= 0);
    CHECK (write (fd, "partial", 7) == 7);
    close (fd);
    w = vv_target_put_begin (t, "crash/bk/manifest.json");
    CHECK (w != NULL);
    CHECK (vv_target_put_write (w, "{}", 2) == 0);
    CHECK (vv_target_put_commit (w, NULL, NULL) == 0);
    CHECK (vv_target_remove_prefix (t, "crash/") == 0);
    CHECK (access (path_in_tmp ("root/crash"), F_OK) == -1);
  }

  /* Whole reads with a limit. */
  {
    char *all = NULL;
    size_t len = 0;

    CHECK (vv_target_read_all (t, "vec/abc", 3, &all, &len) == 0);
    CHECK (all && len == 3 && strcmp (all, "abc") == 0);
    free (all);
    all = NULL;
    CHECK (vv_target_read_all (t, "vec/abc", 2, &all, &len) == -1);
    CHECK_ERROR ("larger than the 2 bytes allowed");
    CHECK (all == NULL);
    CHECK (vv_target_read_all (t, "vec/none", 100, &all, &len) == -1);
    CHECK (vv_get_error_code () == VV_ERR_NOT_FOUND);
    CHECK (vv_target_read_all (t, "u1/c1/b1/vda.qcow2", sizeof data, &all,
                               &len) == 0);
    CHECK (all && len == sizeof data && memcmp (all, data, len) == 0);
    free (all);
  }
  (void) root;
}

static void
test_names (struct vv_target *t, const char *root)
{
  static const char *const bad[] = {
    "", "/abs", "../x", "a/../b", "a/..", "./a", "a/./b", ".", "..",
    "a//b", "a/", "a\\b", "a\x01" "b", "a\tb", "a\x7f", "caf\xc3\xa9",
  };
  char longname[VIRTVAULT_PLUGIN_NAME_MAX + 2];
  uint64_t size;
  char buf[4];
  size_t i;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    vv_clear_error ();
    if (vv_target_put_begin (t, bad[i]) != NULL ||
        vv_get_error_code () != VV_ERR_INVALID ||
        vv_target_stat (t, bad[i], &size) != -1 ||
        vv_target_get (t, bad[i], buf, 4, 0) != -1 ||
        vv_target_remove (t, bad[i]) != -1) {
      fprintf (stderr, "FAIL: bad name \"%s\" was accepted\n", bad[i]);
      failures++;
    }
  }
  CHECK (vv_target_put_begin (t, "../escape") == NULL);
  CHECK_ERROR ("invalid object name '../escape' for target 'test'");
  CHECK (access (path_in_tmp ("escape"), F_OK) == -1);
  CHECK (vv_target_put_begin (t, NULL) == NULL);
  CHECK (vv_target_list (t, "a", list_cb, NULL) == -1);      /* no '/' */
  CHECK (vv_target_list (t, "/", list_cb, NULL) == -1);
  CHECK (vv_target_list (t, "../", list_cb, NULL) == -1);
  CHECK (vv_target_remove_prefix (t, "") == -1);
  CHECK_ERROR ("refusing to remove everything");

  memset (longname, 'n', sizeof longname);
  longname[VIRTVAULT_PLUGIN_NAME_MAX + 1] = '\0';
  CHECK (vv_target_put_begin (t, longname) == NULL);
  CHECK_ERROR ("longer than 1024 bytes");
  /* 1024 bytes is allowed by the host; the file system refuses a
   * 1024-byte component, and the plugin says so.
   */
  longname[VIRTVAULT_PLUGIN_NAME_MAX] = '\0';
  CHECK (vv_target_put_begin (t, longname) == NULL);
  CHECK_ERROR ("its last component is longer than");
  for (i = 200; i < VIRTVAULT_PLUGIN_NAME_MAX; i += 200)
    longname[i] = '/';
  CHECK (put (t, longname, "deep") == 0);
  CHECK (vv_target_stat (t, longname, &size) == 1 && size == 4);
  CHECK (vv_target_remove (t, longname) == 0);
  CHECK (access (path_in_tmp ("root/%.200s", longname), F_OK) == -1);
  (void) root;
}

static void
test_list_remove (struct vv_target *t, const char *root)
{
  struct listing l = { .stop_after = 2 };
  const char *s;
  int fd;

  CHECK (put (t, "d1/c1/b1/vda.qcow2", "12345") == 0);
  CHECK (put (t, "d1/c1/b1/manifest.json", "{}") == 0);
  CHECK (put (t, "d1/c1/b2/vda.qcow2", "1") == 0);
  CHECK (put (t, "d2/c9/b9/vda.qcow2", "") == 0);
  CHECK (put (t, "d1x", "x") == 0);
  /* Probes of test() and stray temporary files are not objects. */
  CHECK (mkdir (path_in_tmp ("root/.virtvault-test"), 0700) == 0);
  CHECK (close (creat (path_in_tmp ("root/.virtvault-test/p"), 0600)) == 0);
  fd = creat (path_in_tmp ("root/d1/c1/b1/.vdb.qcow2.part-a1b2c3"), 0600);
  CHECK (fd >= 0 && close (fd) == 0);
  CHECK (symlink ("/etc", path_in_tmp ("root/d1/link")) == 0);
  CHECK (symlink ("/etc/passwd", path_in_tmp ("root/d1/passwd")) == 0);
  CHECK (mkfifo (path_in_tmp ("root/d1/fifo"), 0600) == 0);

  s = list (t, "d1/");
  CHECK (strcmp (s, "d1/c1/b1/manifest.json:2,d1/c1/b1/vda.qcow2:5,"
                 "d1/c1/b2/vda.qcow2:1") == 0);
  if (strcmp (s, "d1/c1/b1/manifest.json:2,d1/c1/b1/vda.qcow2:5,"
              "d1/c1/b2/vda.qcow2:1") != 0)
    fprintf (stderr, "  got %s\n", s);
  CHECK (strcmp (list (t, "d1/c1/b2/"), "d1/c1/b2/vda.qcow2:1") == 0);
  CHECK (strcmp (list (t, "nothing/here/"), "") == 0);
  CHECK (strcmp (list (t, "d1x/"), "") == 0);           /* a file */
  CHECK (strcmp (list (t, ".virtvault-test/"), ".virtvault-test/p:0") == 0);
  s = list (t, "");
  CHECK (strstr (s, "d2/c9/b9/vda.qcow2:0") && strstr (s, "d1x:1") &&
         strstr (s, "vec/abc:3") && !strstr (s, "virtvault-test") &&
         !strstr (s, ".part-") && !strstr (s, "link") &&
         !strstr (s, "passwd") && !strstr (s, "fifo"));
  CHECK (vv_target_list (t, "", list_cb, &l) == -1);
  CHECK_ERROR ("stopped by the callback");
  CHECK (l.n == 2);

  /* A fifo is not an object and must not hang a reader. */
  {
    uint64_t size;
    char buf[4];

    CHECK (vv_target_stat (t, "d1/fifo", &size) == -1);
    CHECK (vv_target_get (t, "d1/fifo", buf, 4, 0) == -1);
  }

  CHECK (vv_target_remove_prefix (t, "d1/c1/") == 0);
  CHECK (strcmp (list (t, "d1/"), "") == 0);
  /* Empty directories went with the objects; d1 still holds the links. */
  CHECK (access (path_in_tmp ("root/d1/c1/b2"), F_OK) == -1);
  /* ... and so did the stray temp file of an interrupted put. */
  CHECK (access (path_in_tmp ("root/d1/c1"), F_OK) == -1);
  CHECK (vv_target_remove (t, "d2/c9/b9/vda.qcow2") == 0);
  CHECK (access (path_in_tmp ("root/d2"), F_OK) == -1);
  CHECK (access (root, F_OK) == 0);
  CHECK (vv_target_remove (t, "d2/c9/b9/vda.qcow2") == 0);     /* again */
  CHECK (vv_target_remove (t, "no/such/object") == 0);
  CHECK (vv_target_remove (t, "d1x/under/a/file") == 0);
  CHECK (vv_target_remove (t, "d1") == -1);
  CHECK_ERROR ("is a directory, not an object");
}

static void
test_symlinks (struct vv_target *t, const char *root)
{
  const char *outside = path_in_tmp ("outside");
  uint64_t size;
  char buf[16];

  CHECK (mkdir (outside, 0700) == 0);
  CHECK (close (creat (path_in_tmp ("outside/secret"), 0600)) == 0);
  CHECK (symlink (outside, path_in_tmp ("root/evil")) == 0);
  CHECK (symlink (path_in_tmp ("outside/secret"),
                  path_in_tmp ("root/secret")) == 0);

  CHECK (vv_target_put_begin (t, "evil/x") == NULL);
  CHECK_ERROR ("evil is a symbolic link; the file target does not follow");
  CHECK (vv_target_put_begin (t, "evil/deeper/x") == NULL);
  CHECK (vv_target_stat (t, "evil/secret", &size) == -1);
  CHECK (vv_target_get (t, "evil/secret", buf, sizeof buf, 0) == -1);
  CHECK (vv_target_get (t, "secret", buf, sizeof buf, 0) == -1);
  CHECK_ERROR ("secret is a symbolic link");
  CHECK (vv_target_remove (t, "evil/secret") == -1);
  CHECK (access (path_in_tmp ("outside/secret"), F_OK) == 0);
  CHECK (strcmp (list (t, "evil/"), "(error)") == 0);
  CHECK (strstr (list (t, ""), "secret") == NULL);
  CHECK (count_entries (outside) == 1);
  CHECK (unlink (path_in_tmp ("root/evil")) == 0);
  CHECK (unlink (path_in_tmp ("root/secret")) == 0);
  (void) root;
}

static void
test_params (const char *root)
{
  const char *params[] = { "fsync=false", "dir_mode=0700", NULL };
  struct vv_target *t = open_dir (root, params);
  struct stat st;

  CHECK (t != NULL);
  if (t == NULL)
    return;
  CHECK (put (t, "mode/x", "x") == 0);
  CHECK (stat (path_in_tmp ("root/mode"), &st) == 0 &&
         (st.st_mode & 0777) == 0700);
  CHECK (stat (path_in_tmp ("root/mode/x"), &st) == 0 &&
         (st.st_mode & 0777) == 0640);
  CHECK (vv_target_remove (t, "mode/x") == 0);
  vv_target_close (t);
}

/* Makes dir unwritable even for root; returns a note if it could not. */
static const char *
make_read_only (const char *dir)
{
  int fd, flags;

  if (geteuid () != 0)
    return chmod (dir, 0555) == 0 ? NULL : "chmod failed";
  if (mount ("tmpfs", dir, "tmpfs", MS_RDONLY, "size=64k") == 0) {
    snprintf (mounts[n_mounts++], sizeof mounts[0], "%s", dir);
    return NULL;
  }
  fd = open (dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0 && ioctl (fd, FS_IOC_GETFLAGS, &flags) == 0) {
    flags |= FS_IMMUTABLE_FL;
    if (ioctl (fd, FS_IOC_SETFLAGS, &flags) == 0) {
      snprintf (immutable_dir, sizeof immutable_dir, "%s", dir);
      close (fd);
      return NULL;
    }
  }
  if (fd >= 0)
    close (fd);
  return "neither a read-only tmpfs mount nor chattr +i works here";
}

static void
test_test (struct vv_target *t)
{
  struct vv_target *t2;
  const char *why;

  int before = count_entries (path_in_tmp ("root"));

  CHECK (vv_target_test (t) == 0);
  CHECK (count_entries (path_in_tmp ("root")) == before);  /* no probe left */

  t2 = open_dir (path_in_tmp ("missing"), NULL);
  CHECK (t2 != NULL);                  /* open does not look */
  CHECK (vv_target_test (t2) == -1);
  CHECK_ERROR ("target 'test': target directory ");
  CHECK_ERROR ("/missing does not exist; create it or fix the URL");
  CHECK (vv_get_error_code () == VV_ERR_UNAVAILABLE);
  CHECK (vv_target_stat (t2, "x", &(uint64_t) { 0 }) == -1);
  CHECK_ERROR ("does not exist");
  CHECK (strcmp (list (t2, ""), "(error)") == 0);
  CHECK (vv_target_put_begin (t2, "x") == NULL);
  CHECK (access (path_in_tmp ("missing"), F_OK) == -1);      /* not made */
  vv_target_close (t2);

  CHECK (close (creat (path_in_tmp ("plainfile"), 0600)) == 0);
  t2 = open_dir (path_in_tmp ("plainfile"), NULL);
  CHECK (vv_target_test (t2) == -1);
  CHECK_ERROR ("/plainfile is not a directory");
  vv_target_close (t2);

  CHECK (mkdir (path_in_tmp ("ro"), 0755) == 0);
  why = make_read_only (path_in_tmp ("ro"));
  if (why)
    MISSING ("cannot make a read-only directory: %s", why);
  else {
    t2 = open_dir (path_in_tmp ("ro"), NULL);
    CHECK (vv_target_test (t2) == -1);
    CHECK_ERROR ("/ro is not writable: ");
    CHECK (vv_target_put_begin (t2, "a/b") == NULL);
    printf ("read-only target: %s\n", vv_get_error ());
    vv_target_close (t2);
  }
}

static void
test_enospc (void)
{
  const char *dir = path_in_tmp ("full");
  static char chunk[65536];
  struct vv_target_writer *w;
  struct vv_target *t;
  int i, r = 0;

  CHECK (mkdir (dir, 0755) == 0);
  if (mount ("tmpfs", dir, "tmpfs", 0, "size=256k") == -1) {
    MISSING ("cannot mount a tmpfs for the disk-full check (%s): run "
             "the test as root", strerror (errno));
    return;
  }
  snprintf (mounts[n_mounts++], sizeof mounts[0], "%s", dir);
  t = open_dir (dir, NULL);
  CHECK (t != NULL && vv_target_test (t) == 0);
  w = t ? vv_target_put_begin (t, "big/disk.qcow2") : NULL;
  CHECK (w != NULL);
  if (w == NULL)
    return;
  /* (A stream of unknown size is written through the page cache; an
   * image's O_DIRECT writes fail at begin, where its space is reserved.)
   */
  for (i = 0; i < 64 && r == 0; i++)
    r = vv_target_put_write (w, chunk, sizeof chunk);
  CHECK (r == -1);
  CHECK_ERROR ("no space left on target directory ");
  CHECK_ERROR ("/full while writing big/disk.qcow2: No space left on device");
  CHECK (vv_get_error_code () == VV_ERR_UNAVAILABLE);
  printf ("full target: %s\n", vv_get_error ());
  /* Commit after a failed write refuses and keeps the first message. */
  CHECK (vv_target_put_commit (w, NULL, NULL) == -1);
  CHECK_ERROR ("No space left on device");
  CHECK (count_entries (dir) == 0);
  vv_target_close (t);
}

/* The example plugin of docs/plugins.md has no test callback, so the
 * target layer's own round trip runs.
 */
static void
test_mem_plugin (void)
{
  const char *params[] = { "size=1", NULL };
  struct vv_target *t;
  char name[32], buf[8];
  int i;

  if (access (".libs/virtvault-mem-plugin.so", F_OK) != 0) {
    MISSING ("the mem test plugin (.libs/virtvault-mem-plugin.so) is not "
             "built: run it through 'make check'");
    return;
  }
  CHECK (vv_target_open ("m", "mem:///x", NULL) == NULL);
  CHECK_ERROR ("target 'm': mem targets have no host or path");
  CHECK (vv_target_open ("m", "mem://", params) == NULL);
  CHECK_ERROR ("unknown mem target parameter 'size=1'");
  t = vv_target_open ("m", "mem://", NULL);
  CHECK (t != NULL);
  if (t == NULL)
    return;
  CHECK (vv_target_test (t) == 0);
  CHECK (strcmp (list (t, ""), "") == 0);                 /* probe removed */
  CHECK (put (t, "a/b", "hello") == 0);
  CHECK (vv_target_get (t, "a/b", buf, sizeof buf, 3) == 2 &&
         memcmp (buf, "lo", 2) == 0);
  CHECK (put (t, "a/b", "again") == -1);
  CHECK_ERROR ("a/b already exists in memory");
  /* Fill it up: the round trip then fails and says why. */
  for (i = 1; i < 64; i++) {
    snprintf (name, sizeof name, "fill/%d", i);
    CHECK (put (t, name, "x") == 0);
  }
  CHECK (vv_target_test (t) == -1);
  CHECK_ERROR ("target 'm': no room for .virtvault-test/probe-");
  CHECK (vv_get_error_code () == VV_ERR_UNAVAILABLE);
  CHECK (vv_target_remove_prefix (t, "fill/") == 0);
  CHECK (strcmp (list (t, ""), "a/b:5") == 0);
  vv_target_close (t);
}

/* Several threads, each with its own handle, writing and removing
 * objects in shared directories, so that one thread's cleanup of an
 * empty directory races another's creation of a file in it.
 */
#define THREADS 4
#ifndef PER_THREAD
#define PER_THREAD 40
#endif

static char root_path[512];

static void *
worker (void *arg)
{
  const char *root = root_path;
  long id = (long) arg;
  struct vv_target *t = open_dir (root, NULL);
  long errors = 0;
  int i;

  if (t == NULL)
    return (void *) 1L;
  for (i = 0; i < PER_THREAD; i++) {
    char name[64], data[32];
    char *back = NULL;

    snprintf (name, sizeof name, "shared/dir/t%ld-%d", id, i);
    snprintf (data, sizeof data, "%ld:%d", id, i);
    if (put (t, name, data) == -1 ||
        vv_target_read_all (t, name, 100, &back, NULL) == -1 ||
        strcmp (back, data) != 0 || vv_target_remove (t, name) == -1) {
      fprintf (stderr, "thread %ld, %s: %s\n", id, name, vv_get_error ());
      errors++;
    }
    free (back);
  }
  vv_target_close (t);
  return (void *) errors;
}

static void
test_threads (void)
{
  pthread_t th[THREADS];
  long i;

  for (i = 0; i < THREADS; i++)
    CHECK (pthread_create (&th[i], NULL, worker, (void *) i) == 0);
  for (i = 0; i < THREADS; i++) {
    void *r;
    CHECK (pthread_join (th[i], &r) == 0 && r == NULL);
  }
  CHECK (access (path_in_tmp ("root/shared"), F_OK) == -1);
}

int
main (void)
{
  struct vv_target *t;
  const char *root;
  const char *abs_top = getenv ("abs_top_builddir");

  umask (022);
  if (mkdtemp (tmpdir) == NULL) {
    perror ("mkdtemp");
    return 1;
  }
  atexit (cleanup);
  /* Let the loader also find the broken plugins built next to us. */
  if (abs_top) {
    const char *old = getenv ("VIRTVAULT_PLUGIN_PATH");
    char *p = vv_printf ("%s%s%s/tests/.libs", old ? old : "",
                         old ? ":" : "", abs_top);
    setenv ("VIRTVAULT_PLUGIN_PATH", p, 1);
    free (p);
    CHECK (chdir (abs_top) == 0 && chdir ("tests") == 0);
  }

  test_loader ();
  test_open ();

  /* path_in_tmp's buffers are reused: keep the root in its own. */
  snprintf (root_path, sizeof root_path, "%s", path_in_tmp ("root"));
  root = root_path;
  CHECK (mkdir (root, 0755) == 0);
  t = open_dir (root, NULL);
  CHECK (t != NULL);
  if (t == NULL) {
    fprintf (stderr, "cannot go on: %s\n", vv_get_error ());
    return 1;
  }
  test_put_get (t, root);
  test_file_v2 (t, root);
  test_file_direct (root);
  test_test (t);
  test_names (t, root);
  test_list_remove (t, root);
  test_symlinks (t, root);
  test_planted_fifo (t);
  test_open_local_links (t);
  test_params (root);
  test_enospc ();
  test_mem_plugin ();
  test_v2_plugin ();
  test_threads ();
  vv_target_close (t);
  vv_plugins_unload_all ();

  if (failures) {
    fprintf (stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf ("all file plugin checks passed\n");
  return 0;
}
