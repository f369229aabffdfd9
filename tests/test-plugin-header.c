/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public plugin header must compile on its own, before anything else
 * (so not even config.h comes first here), and its layout must keep the
 * size and version at the front for good: the loader reads them before
 * it knows which version of the struct it has.
 */
#include <virtvault-plugin.h>

#include <stddef.h>
#include <stdio.h>

_Static_assert (offsetof (struct virtvault_plugin, _struct_size) == 0,
                "_struct_size must be the first field");
_Static_assert (offsetof (struct virtvault_plugin, _api_version) == 8,
                "_api_version must follow _struct_size");
_Static_assert (VIRTVAULT_PLUGIN_API_VERSION >= 1, "API versions start at 1");

/* The registration macro must compile as a plugin would use it. */
static struct virtvault_plugin plugin = {
  .name = "header",
};
VIRTVAULT_REGISTER_PLUGIN (plugin)

int
main (void)
{
  const struct virtvault_plugin *p = virtvault_plugin_init ();

  if (p != &plugin || p->_struct_size != sizeof plugin ||
      p->_api_version != VIRTVAULT_PLUGIN_API_VERSION) {
    fprintf (stderr, "VIRTVAULT_REGISTER_PLUGIN filled in size %llu, "
             "version %d\n", (unsigned long long) p->_struct_size,
             p->_api_version);
    return 1;
  }
  printf ("virtvault-plugin.h compiles alone; struct size %zu, version %d\n",
          sizeof plugin, VIRTVAULT_PLUGIN_API_VERSION);
  return 0;
}
