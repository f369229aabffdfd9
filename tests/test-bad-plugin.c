/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Broken storage plugins the loader must refuse, one per -D variant (see
 * tests/Makefile.am); test-file-plugin loads them.
 */
#include <config.h>

#include <stddef.h>

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
#else
#error "define one of BAD_NOCB, BAD_FUTURE, BAD_MISNAMED, BAD_TINY"
#endif
  return &plugin;
}
