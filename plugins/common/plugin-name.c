/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See plugin-name.h. */
#include <config.h>

#include <string.h>

#include <virtvault-plugin.h>

#include "plugin-name.h"

#define ENTRY_NAME_MAX 255

static bool
control_byte (unsigned char c)
{
  return c < 0x20 || c == 0x7f;
}

bool
plugin_valid_object_name (const char *name, size_t len, size_t component_max)
{
  size_t i, start = 0;

  if (len == 0 || len > VIRTVAULT_PLUGIN_NAME_MAX)
    return false;
  for (i = 0; i <= len; i++) {
    if (i < len && control_byte (name[i]))
      return false;
    if (i == len || name[i] == '/') {
      size_t clen = i - start;

      if (clen == 0 || (clen == 1 && name[start] == '.') ||
          (clen == 2 && name[start] == '.' && name[start + 1] == '.') ||
          (component_max && clen > component_max))
        return false;
      start = i + 1;
    }
  }
  return true;
}

bool
plugin_valid_entry_name (const char *s)
{
  size_t len = strnlen (s, ENTRY_NAME_MAX + 1), i;

  if (len == 0 || len > ENTRY_NAME_MAX || strcmp (s, ".") == 0 ||
      strcmp (s, "..") == 0)
    return false;
  for (i = 0; i < len; i++)
    if (s[i] == '/' || control_byte (s[i]))
      return false;
  return true;
}
