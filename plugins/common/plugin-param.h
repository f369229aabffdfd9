/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key=value parameters a plugin's open() gets. */
#ifndef VV_PLUGIN_PARAM_H
#define VV_PLUGIN_PARAM_H

#include <stddef.h>

#include "plugin-err.h"

/* The value of param ("key=value") when its key is key, else NULL. */
const char *plugin_param_value (const char *param, const char *key);

/* The length of param's key in *klen and its value, or NULL (*klen the
 * whole length) when param has no '='.
 */
const char *plugin_param_split (const char *param, size_t *klen);

/* A decimal number from min to max, the value of key; the error names
 * the target type what ("s3 target parameter part_size_mib must ...").
 */
int plugin_param_uint (const char *what, const char *key, const char *value,
                       unsigned long min, unsigned long max,
                       unsigned long *ret, struct plugin_err *e);

#endif
