/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Broken storage plugins the loader must refuse, one per -D variant (see
 * tests/Makefile.am), and one good version 2 plugin (GOOD_V2) showing what
 * the host hands over; test-file-plugin loads them.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include <virtvault-plugin.h>

static void *
bad_open (const char *url, const char *const *params)
{
  static int handle;
  return &handle;
}

static void *
bad_put_begin (void *handle, const char *name)
{
  return handle;
}

static int
bad_put_write (void *stream, const void *buf, size_t count)
{
  return 0;
}

static int
bad_put_commit (void *stream)
{
  return 0;
}

static void
bad_put_abort (void *stream)
{
}

static int64_t
bad_get (void *handle, const char *name, void *buf, size_t count,
         uint64_t offset)
{
  return 0;
}

static int
bad_stat (void *handle, const char *name, uint64_t *ret_size)
{
  return 0;
}

static int
bad_list (void *handle, const char *prefix, virtvault_list_cb cb,
          void *opaque)
{
  return 0;
}

static int
bad_remove (void *handle, const char *name)
{
  return 0;
}

#if defined GOOD_V2
static const struct virtvault_host *host;

static int
v2_load_host (const struct virtvault_host *h, uint32_t flags)
{
  if (flags != 0 || h->_struct_size < sizeof *h ||
      h->api_version != VIRTVAULT_PLUGIN_API_VERSION) {
    errno = EINVAL;
    virtvault_error ("v2 plugin: unexpected host services");
    return -1;
  }
  host = h;
  return 0;
}

/* What a thread the plugin starts itself learns of the job: the job's
 * token is taken on the host's thread.
 */
struct asker {
  void *job;
  int cancelled, job_cancelled;
};

static void *
ask_thread (void *opaque)
{
  struct asker *a = opaque;

  a->cancelled = host->cancelled ();
  a->job_cancelled = host->job_cancelled (a->job);
  return NULL;
}

/* Says through the host what it saw: the test checks the message. */
static int
v2_test (void *handle)
{
  struct asker a = { host->current_job (), -1, -1 };
  pthread_t th;

  host->log (VIRTVAULT_LOG_INFO, "v2 plugin test on %s", host->host_version);
  if (pthread_create (&th, NULL, ask_thread, &a) == 0)
    pthread_join (th, NULL);
  if (host->cancelled ()) {
    errno = ECANCELED;
    host->error ("v2 plugin: the job was cancelled (on the plugin's own "
                 "thread: cancelled %d, job_cancelled %d)", a.cancelled,
                 a.job_cancelled);
    return -1;
  }
  errno = ETIMEDOUT;
  host->error ("v2 plugin: host %s, not cancelled (own thread: "
               "job_cancelled %d), timing out on purpose",
               host->host_version, a.job_cancelled);
  return -1;
}

static int
v2_capabilities (void *handle, struct virtvault_caps *caps, uint32_t flags)
{
  caps->flags = VIRTVAULT_CAP_CONSISTENT_LIST;
  caps->max_object_size = 1000;
  caps->max_parallel_reads = 3;
  return 0;
}

/* Refuses every object, naming the size it was given. */
static void *
v2_put_begin2 (void *handle, const char *name, uint64_t size, uint32_t flags)
{
  errno = EEXIST;
  virtvault_error ("v2 plugin: %s of %llu bytes exists", name,
                   (unsigned long long) size);
  return NULL;
}

static const char *const v2_secrets[] = { "password", "token", NULL };

/* A hostile listing: names outside the prefix or not valid at all. */
static int
v2_list (void *handle, const char *prefix, virtvault_list_cb cb,
         void *opaque)
{
  if (strcmp (prefix, "dots/") == 0)
    return cb (opaque, "dots/../../etc/passwd", 1);
  if (strcmp (prefix, "outside/") == 0)
    return cb (opaque, "elsewhere/x", 1);
  return cb (opaque, "fine/x", 1);
}

static int
v2_remove_many (void *handle, const char *const *names, size_t n,
                uint32_t flags)
{
  errno = 0;
  virtvault_error ("v2 plugin: remove_many of %zu names from %s", n,
                   names[0]);
  return -1;
}
#endif

#if defined BAD_HALFREAD
static void *
bad_read_open (void *handle, const char *name, uint64_t *ret_size,
               uint32_t flags)
{
  return handle;
}
#endif

static struct virtvault_plugin plugin = {
  .version = "0",
  .open = bad_open,
  .put_begin = bad_put_begin,
  .put_write = bad_put_write,
  .put_commit = bad_put_commit,
  .put_abort = bad_put_abort,
  .get = bad_get,
  .stat = bad_stat,
  .list = bad_list,
  .remove = bad_remove,
};

/* Written out instead of VIRTVAULT_REGISTER_PLUGIN so each variant can
 * spoil the struct after the usual fields are set.
 */
__attribute__ ((visibility ("default")))
const struct virtvault_plugin *virtvault_plugin_init (void);

const struct virtvault_plugin *
virtvault_plugin_init (void)
{
  plugin._struct_size = sizeof plugin;
  plugin._api_version = VIRTVAULT_PLUGIN_API_VERSION;
#if defined BAD_NOCB
  plugin.name = "nocb";
  plugin.get = NULL;
#elif defined BAD_FUTURE
  plugin.name = "future";
  plugin._api_version = VIRTVAULT_PLUGIN_API_VERSION + 1;
#elif defined BAD_MISNAMED
  plugin.name = "other";
#elif defined BAD_TINY
  plugin.name = "tiny";
  plugin._struct_size = 16;
#elif defined BAD_HALFREAD
  plugin.name = "halfread";
  plugin.read_open = bad_read_open;
#elif defined GOOD_V2
  plugin.name = "v2";
  plugin.load_host = v2_load_host;
  plugin.test = v2_test;
  plugin.capabilities = v2_capabilities;
  plugin.put_begin2 = v2_put_begin2;
  plugin.secret_params = v2_secrets;
  plugin.list = v2_list;
  plugin.remove_many = v2_remove_many;
#else
#error "define one of BAD_NOCB, BAD_FUTURE, BAD_MISNAMED, BAD_TINY, BAD_HALFREAD, GOOD_V2"
#endif
  return &plugin;
}
