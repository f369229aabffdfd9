/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sftp plugin loaded directly (dlopen) against a real sshd started
 * with tests/sftp-server.sh: the version 2 callbacks the host does not
 * call yet.  capabilities; put_begin2 refusing more or fewer bytes than
 * announced (nothing published); EEXIST at begin and at commit when two
 * puts race for a name; a read handle with pipelined preads across the
 * end; get; list hiding temporary files and invalid names;
 * remove_partial; remove of a missing name; a stopped server giving a
 * transient error class.
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <virtvault-plugin.h>

#include "plugin-check.h"

static int
count_cb (void *opaque, const char *name, uint64_t size)
{
  int *n = opaque;
  (void) size;
  if (strchr (name, '\n') || strstr (name, ".tmp-"))
    (*n) += 1000;
  (*n)++;
  return 0;
}

static int
no_cancel (void)
{
  return 0;
}

int
main (void)
{
  const char *src = getenv ("abs_top_srcdir"), *build = getenv ("abs_top_builddir");
  char dir[] = "/tmp/vv-sftp-plugin-XXXXXX", cmd[4096], path[4096];
  char url[4096], p_id[4200], p_kh[4200];
  const struct virtvault_plugin *(*init) (void);
  const struct virtvault_plugin *p;
  struct virtvault_host host = {
    ._struct_size = sizeof host, .api_version = 2,
    .host_version = "test-sftp-plugin", .error = virtvault_error,
    .cancelled = no_cancel,
  };
  struct virtvault_caps caps = { ._struct_size = sizeof caps };
  static char data[300000], back[300000];
  void *lib, *h, *s, *s2, *rd;
  uint64_t size;
  int port = 0, n;
  FILE *f;

  if (!src || !build) {
    fprintf (stderr, "FAIL: abs_top_srcdir and abs_top_builddir must be set\n");
    return 1;
  }
  snprintf (path, sizeof path,
            "%s/plugins/sftp/.libs/virtvault-sftp-plugin.so", build);
  lib = dlopen (path, RTLD_NOW);
  if (lib == NULL || (init = dlsym (lib, "virtvault_plugin_init")) == NULL) {
    fprintf (stderr, "FAIL: cannot load %s: %s\n", path, dlerror ());
    return 1;
  }
  p = init ();
  CHECK (p->_api_version == 2 && p->put_begin2 && p->read_open && p->pread);
  CHECK (p->load_host (&host, 0) == 0);

  if (mkdtemp (dir) == NULL)
    return 1;
  snprintf (cmd, sizeof cmd, "%s/tests/sftp-server.sh start %s/srv >/dev/null",
            src, dir);
  if (system (cmd) != 0) {
    fprintf (stderr, "FAIL: cannot start sshd (%s)\n", cmd);
    return 1;
  }
  snprintf (path, sizeof path, "%s/srv/port", dir);
  f = fopen (path, "r");
  if (f == NULL || fscanf (f, "%d", &port) != 1)
    return 1;
  fclose (f);
  snprintf (path, sizeof path, "%s/export", dir);
  mkdir (path, 0700);
  snprintf (url, sizeof url, "sftp://root@127.0.0.1:%d%s/export", port, dir);
  snprintf (p_id, sizeof p_id, "identity=%s/srv/client_key", dir);
  snprintf (p_kh, sizeof p_kh, "known_hosts=%s/srv/known_hosts", dir);
  const char *params[] = { p_id, p_kh, "timeout=5", NULL };

  h = p->open (url, params);
  CHECK (h != NULL);
  if (h == NULL)
    goto out;

  CHECK (p->capabilities (h, &caps, 0) == 0);
  CHECK (caps.flags == (VIRTVAULT_CAP_ATOMIC_PUBLISH |
                        VIRTVAULT_CAP_DURABLE_COMMIT |
                        VIRTVAULT_CAP_CONSISTENT_LIST));
  CHECK (caps.max_parallel_reads == 1 && caps.io_size > 0);
  CHECK (p->capabilities (h, &caps, 1) == -1 && last_errno == EINVAL);

  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (char) (i * 31 + (i >> 11));

  /* Fewer bytes than announced: not published. */
  s = p->put_begin2 (h, "a/short", 100, 0);
  CHECK (s != NULL);
  CHECK (p->put_write (s, data, 50) == 0);
  CHECK (p->put_commit (s) == -1 && last_errno == EINVAL);
  CHECK (p->stat (h, "a/short", &size) == 0);
  /* More than announced. */
  s = p->put_begin2 (h, "a/long", 100, 0);
  CHECK (p->put_write (s, data, 101) == -1 && last_errno == EINVAL);
  p->put_abort (s);
  CHECK (p->stat (h, "a/long", &size) == 0);

  /* A good put, in uneven pieces; then EEXIST at begin. */
  s = p->put_begin2 (h, "a/b/obj", sizeof data, 0);
  CHECK (s != NULL);
  CHECK (p->put_write (s, data, 1000) == 0);
  CHECK (p->put_write (s, data + 1000, sizeof data - 1000) == 0);
  CHECK (p->put_commit (s) == 0);
  CHECK (p->stat (h, "a/b/obj", &size) == 1 && size == sizeof data);
  CHECK (p->put_begin2 (h, "a/b/obj", 10, 0) == NULL && last_errno == EEXIST);

  /* Two puts racing for one name: the second commit is refused. */
  s = p->put_begin2 (h, "race", 3, 0);
  s2 = p->put_begin (h, "race");
  CHECK (s && s2);
  CHECK (p->put_write (s, "one", 3) == 0 && p->put_write (s2, "two", 3) == 0);
  CHECK (p->put_commit (s) == 0);
  CHECK (p->put_commit (s2) == -1 && last_errno == EEXIST);
  CHECK (p->get (h, "race", back, 10, 0) == 3 && memcmp (back, "one", 3) == 0);

  /* Read handle: pipelined ranges, across the end, past the end. */
  rd = p->read_open (h, "a/b/obj", &size, 0);
  CHECK (rd != NULL && size == sizeof data);
  CHECK (p->pread (rd, back, sizeof back, 0, 0) == (int64_t) sizeof back);
  CHECK (memcmp (back, data, sizeof data) == 0);
  CHECK (p->pread (rd, back, 5000, 123457, 0) == 5000);
  CHECK (memcmp (back, data + 123457, 5000) == 0);
  CHECK (p->pread (rd, back, 100000, sizeof data - 10, 0) == 10);
  CHECK (memcmp (back, data + sizeof data - 10, 10) == 0);
  CHECK (p->pread (rd, back, 10, sizeof data + 5, 0) == 0);
  p->read_close (rd);
  CHECK (p->read_open (h, "nothing", &size, 0) == NULL && last_errno == ENOENT);
  CHECK (p->get (h, "a/b/obj", back, 777, 1) == 777 &&
         memcmp (back, data + 1, 777) == 0);

  /* A temporary file left by a crash and a name with a newline. */
  snprintf (path, sizeof path, "%s/export/a/b/.obj2.tmp-0123abcd", dir);
  f = fopen (path, "w");
  CHECK (f != NULL);
  if (f)
    fclose (f);
  snprintf (path, sizeof path, "%s/export/a/bad\nname", dir);
  f = fopen (path, "w");
  if (f)
    fclose (f);
  n = 0;
  CHECK (p->list (h, "", count_cb, &n) == 0 && n == 2);
  n = 0;
  CHECK (p->list (h, "a/", count_cb, &n) == 0 && n == 1);
  CHECK (p->remove_partial (h, "a/") == 0);
  snprintf (path, sizeof path, "%s/export/a/b/.obj2.tmp-0123abcd", dir);
  CHECK (access (path, F_OK) == -1);
  CHECK (p->remove (h, "a/b/obj") == 0);
  CHECK (p->remove (h, "a/b/obj") == 0);
  CHECK (p->stat (h, "a/b/obj", &size) == 0);
  CHECK (p->stat (h, "../x", &size) == -1 && last_errno == EINVAL);
  CHECK (p->test (h) == 0);

  /* The server goes away: a transient error class, after retries. */
  snprintf (cmd, sizeof cmd, "%s/tests/sftp-server.sh stop %s/srv", src, dir);
  CHECK (system (cmd) == 0);
  CHECK (p->stat (h, "race", &size) == -1 &&
         (last_errno == ECONNREFUSED || last_errno == ECONNRESET));
  p->close (h);

 out:
  snprintf (cmd, sizeof cmd, "%s/tests/sftp-server.sh stop %s/srv; rm -rf %s",
            src, dir, dir);
  if (system (cmd) != 0)
    failures++;
  if (p->unload)
    p->unload ();
  dlclose (lib);
  if (failures)
    fprintf (stderr, "%d failures\n", failures);
  return failures ? 1 : 0;
}
