/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checks of names: object names from the host, and entry names a server
 * sends back (the target is not trusted).
 */
#ifndef VV_PLUGIN_NAME_H
#define VV_PLUGIN_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* name[0..len) is an object name of the ABI: 1 to
 * VIRTVAULT_PLUGIN_NAME_MAX bytes, relative, no "." or ".." or empty
 * component (so no leading, trailing or doubled '/'), no control bytes,
 * and, when component_max is not 0, no component longer than that.
 */
bool plugin_valid_object_name (const char *name, size_t len,
                               size_t component_max);

/* A directory entry name a server returned: 1..255 bytes, no '/', no
 * control bytes, not "." or "..".
 */
bool plugin_valid_entry_name (const char *s);

#endif
