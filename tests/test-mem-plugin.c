/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A complete, minimal storage plugin: objects live in this process's
 * memory (mem://).  docs/plugins.md walks through it; test-file-plugin
 * loads it to exercise the loader and the generic target test on a plugin
 * without a test callback.  It is built by make check only.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <virtvault-plugin.h>

/* tests/abi1/virtvault-plugin.h, see tests/Makefile.am. */
_Static_assert (VIRTVAULT_PLUGIN_API_VERSION == 1,
                "the mem plugin must be built against the ABI 1 header");

/* Limits on everything a caller controls, even here. */
#define MEM_MAX_OBJECTS 64
#define MEM_MAX_SIZE (1024 * 1024)

struct object {
  char *name;                   /* NULL: a free slot */
  char *data;
  size_t size;
};

/* One store per process, shared by every handle: hence the lock. */
static struct object store[MEM_MAX_OBJECTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Called with lock held. */
static struct object *
find (const char *name)
{
  for (size_t i = 0; i < MEM_MAX_OBJECTS; i++)
    if (store[i].name && strcmp (store[i].name, name) == 0)
      return &store[i];
  return NULL;
}

static void
mem_unload (void)
{
  for (size_t i = 0; i < MEM_MAX_OBJECTS; i++) {
    free (store[i].name);
    free (store[i].data);
    store[i].name = store[i].data = NULL;
  }
}

static void *
mem_open (const char *url, const char *const *params)
{
  static int handle;            /* nothing per target: any non-NULL will do */

  if (strcmp (url, "mem://") != 0) {
    virtvault_error ("mem targets have no host or path: use mem://, not %s",
                     url);
    return NULL;
  }
  if (params[0]) {
    virtvault_error ("unknown mem target parameter '%s'; it accepts none",
                     params[0]);
    return NULL;
  }
  return &handle;
}

/* ---- put: a stream collects the data, commit moves it to the store */

struct stream {
  char *name;
  char *data;
  size_t size;
};

static void *
mem_put_begin (void *handle, const char *name)
{
  struct stream *s = calloc (1, sizeof *s);

  if (s == NULL || (s->name = strdup (name)) == NULL) {
    virtvault_error ("cannot write %s in memory: %s", name, strerror (errno));
    free (s);
    return NULL;
  }
  return s;
}

static int
mem_put_write (void *stream, const void *buf, size_t count)
{
  struct stream *s = stream;
  char *d;

  if (count > MEM_MAX_SIZE - s->size) {
    errno = ENOSPC;             /* tells the host "storage full" */
    virtvault_error ("%s is too big for a mem target (%d bytes at most)",
                     s->name, MEM_MAX_SIZE);
    return -1;
  }
  d = realloc (s->data, s->size + count);
  if (d == NULL) {
    virtvault_error ("cannot write %s in memory: %s", s->name,
                     strerror (errno));
    return -1;
  }
  memcpy (d + s->size, buf, count);
  s->data = d;
  s->size += count;
  return 0;
}

static void
mem_put_abort (void *stream)
{
  struct stream *s = stream;

  free (s->name);
  free (s->data);
  free (s);
}

static int
mem_put_commit (void *stream)
{
  struct stream *s = stream;
  struct object *slot = NULL;
  int r = -1;

  pthread_mutex_lock (&lock);
  if (find (s->name))
    virtvault_error ("%s already exists in memory; objects are never "
                     "replaced", s->name);
  else {
    for (size_t i = 0; i < MEM_MAX_OBJECTS && !slot; i++)
      if (store[i].name == NULL)
        slot = &store[i];
    if (slot == NULL)
      virtvault_error ("no room for %s: a mem target holds %d objects",
                       s->name, MEM_MAX_OBJECTS);
    else {
      /* The store takes the stream's buffers. */
      slot->name = s->name;
      slot->data = s->data;
      slot->size = s->size;
      s->name = s->data = NULL;
      r = 0;
    }
  }
  pthread_mutex_unlock (&lock);
  mem_put_abort (s);            /* commit frees the stream, whatever happens */
  return r;
}

/* ---- reading, listing, removing */

static int64_t
mem_get (void *handle, const char *name, void *buf, size_t count,
         uint64_t offset)
{
  struct object *o;
  int64_t n = -1;

  pthread_mutex_lock (&lock);
  o = find (name);
  if (o == NULL)
    virtvault_error ("%s does not exist in memory", name);
  else {
    /* Short only at the end of the object. */
    size_t avail = offset < o->size ? o->size - offset : 0;
    n = count < avail ? count : avail;
    if (n > 0)
      memcpy (buf, o->data + offset, n);
  }
  pthread_mutex_unlock (&lock);
  return n;
}

static int
mem_stat (void *handle, const char *name, uint64_t *ret_size)
{
  struct object *o;

  pthread_mutex_lock (&lock);
  o = find (name);
  if (o)
    *ret_size = o->size;
  pthread_mutex_unlock (&lock);
  return o != NULL;
}

static int
mem_list (void *handle, const char *prefix, virtvault_list_cb cb,
          void *opaque)
{
  struct object copy[MEM_MAX_OBJECTS];
  size_t n = 0;
  int r = 0;

  /* Call back without the lock held: the callback may call us again.
   * The names are copied so a concurrent remove can not free them.
   */
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < MEM_MAX_OBJECTS; i++)
    if (store[i].name && strncmp (store[i].name, prefix,
                                  strlen (prefix)) == 0) {
      copy[n].name = strdup (store[i].name);
      copy[n].size = store[i].size;
      if (copy[n].name)
        n++;
    }
  pthread_mutex_unlock (&lock);
  for (size_t i = 0; i < n; i++) {
    if (r == 0 && cb (opaque, copy[i].name, copy[i].size) == -1)
      r = -1;                   /* the callback reported its error */
    free (copy[i].name);
  }
  return r;
}

static int
mem_remove (void *handle, const char *name)
{
  struct object *o;

  pthread_mutex_lock (&lock);
  o = find (name);
  if (o) {                      /* a missing object is not an error */
    free (o->name);
    free (o->data);
    o->name = o->data = NULL;
  }
  pthread_mutex_unlock (&lock);
  return 0;
}

static struct virtvault_plugin plugin = {
  .name = "mem",
  .version = "1.0",
  .description = "objects in the memory of the process (tests only)",
  .config_help = "",
  .unload = mem_unload,
  .open = mem_open,
  /* No close: the handle is static.  No test: the host falls back to a
   * put/stat/get/remove round trip.
   */
  .put_begin = mem_put_begin,
  .put_write = mem_put_write,
  .put_commit = mem_put_commit,
  .put_abort = mem_put_abort,
  .get = mem_get,
  .stat = mem_stat,
  .list = mem_list,
  .remove = mem_remove,
};

VIRTVAULT_REGISTER_PLUGIN (plugin)
