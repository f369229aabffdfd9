/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See plugin-param.h. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plugin-param.h"

const char *
plugin_param_value (const char *param, const char *key)
{
  size_t k = strlen (key);

  if (strncmp (param, key, k) == 0 && param[k] == '=')
    return param + k + 1;
  return NULL;
}

const char *
plugin_param_split (const char *param, size_t *klen)
{
  const char *eq = strchr (param, '=');

  *klen = eq ? (size_t) (eq - param) : strlen (param);
  return eq ? eq + 1 : NULL;
}

int
plugin_param_uint (const char *what, const char *key, const char *value,
                   unsigned long min, unsigned long max, unsigned long *ret,
                   struct plugin_err *e)
{
  char *end;
  unsigned long n;

  errno = 0;
  n = strtoul (value, &end, 10);
  if (*value < '0' || *value > '9' || *end || errno || n < min || n > max) {
    plugin_err_set (e, EINVAL, "%s target parameter %s must be a number "
                    "from %lu to %lu, not '%.64s'", what, key, min, max,
                    value);
    return -1;
  }
  *ret = n;
  return 0;
}
