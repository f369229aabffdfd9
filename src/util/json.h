/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* json-c helpers: cleanup, and typed getters that report which field of
 * what was wrong ("field 'disks' of the backup request must be an array").
 */
#ifndef VV_UTIL_JSON_H
#define VV_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "cleanup.h"

static inline void
vv_cleanup_json (json_object **o)
{
  if (*o)
    json_object_put (*o);
}
#define _cleanup_json_ _cleanup_ (vv_cleanup_json)

/* Parse a whole document; reports "<what> is not valid JSON: <reason> at
 * byte N" and returns NULL.
 */
json_object *vv_json_parse (const char *what, const char *text, size_t len);

/* Optional fields: absent or null -> 0 and *ret untouched. 1 when present
 * and of the right type; -1 (with a clear error) when of the wrong type.
 */
int vv_json_get_string (json_object *o, const char *what, const char *key,
                        const char **ret);
int vv_json_get_bool (json_object *o, const char *what, const char *key,
                      bool *ret);
int vv_json_get_uint64 (json_object *o, const char *what, const char *key,
                        uint64_t *ret);
int vv_json_get_array (json_object *o, const char *what, const char *key,
                       json_object **ret);
/* Fails with an error naming the first key of o that is not in allowed
 * (NULL-terminated), so typos in requests do not pass silently.
 */
int vv_json_check_keys (json_object *o, const char *what,
                        const char *const *allowed);

/* json_object_new_string that maps NULL to JSON null. */
json_object *vv_json_string_or_null (const char *s);

#endif
