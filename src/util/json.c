/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "error.h"
#include "json.h"

json_object *
vv_json_parse (const char *what, const char *text, size_t len)
{
  json_tokener *tok;
  json_object *o;
  enum json_tokener_error jerr;
  size_t offset;

  if (len == 0) {
    vv_error_code (VV_ERR_INVALID, "%s is empty; expected a JSON object",
                   what);
    return NULL;
  }
  if (len > INT_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s is too large to parse", what);
    return NULL;
  }
  tok = json_tokener_new ();
  if (tok == NULL) {
    vv_error ("cannot allocate a JSON parser");
    return NULL;
  }
  /* Strict: no single quotes, no trailing commas, nothing a panel's
   * JSON library would not produce either.
   */
  json_tokener_set_flags (tok, JSON_TOKENER_STRICT);
  o = json_tokener_parse_ex (tok, text, (int) len);
  jerr = json_tokener_get_error (tok);
  offset = json_tokener_get_parse_end (tok);
  if (o == NULL || jerr != json_tokener_success || offset != len) {
    if (jerr == json_tokener_success)
      vv_error_code (VV_ERR_INVALID,
                     "%s is not valid JSON: unexpected data at byte %zu",
                     what, offset);
    else if (jerr == json_tokener_continue)
      vv_error_code (VV_ERR_INVALID,
                     "%s is not valid JSON: the document ends early", what);
    else
      vv_error_code (VV_ERR_INVALID, "%s is not valid JSON: %s at byte %zu",
                     what, json_tokener_error_desc (jerr), offset);
    json_object_put (o);
    o = NULL;
  }
  json_tokener_free (tok);
  return o;
}

static int
get_typed (json_object *o, const char *what, const char *key,
           json_type type, const char *type_name, json_object **ret)
{
  json_object *v;

  if (o == NULL || !json_object_object_get_ex (o, key, &v) || v == NULL)
    return 0;
  if (!json_object_is_type (v, type)) {
    vv_error_code (VV_ERR_INVALID, "field '%s' of %s must be %s",
                   key, what, type_name);
    return -1;
  }
  *ret = v;
  return 1;
}

int
vv_json_get_string (json_object *o, const char *what, const char *key,
                    const char **ret)
{
  json_object *v;
  int r = get_typed (o, what, key, json_type_string, "a string", &v);

  if (r == 1) {
    const char *str = json_object_get_string (v);
    /* "\u0000" would cut the string short where C reads it. */
    if (strlen (str) != (size_t) json_object_get_string_len (v)) {
      vv_error_code (VV_ERR_INVALID, "field '%s' of %s contains a NUL "
                     "character", key, what);
      return -1;
    }
    *ret = str;
  }
  return r;
}

int
vv_json_get_bool (json_object *o, const char *what, const char *key,
                  bool *ret)
{
  json_object *v;
  int r = get_typed (o, what, key, json_type_boolean, "true or false", &v);

  if (r == 1)
    *ret = json_object_get_boolean (v);
  return r;
}

int
vv_json_get_uint64 (json_object *o, const char *what, const char *key,
                    uint64_t *ret)
{
  json_object *v;
  int r = get_typed (o, what, key, json_type_int, "a whole number", &v);

  if (r == 1) {
    int64_t i = json_object_get_int64 (v);
    if (i < 0) {
      vv_error_code (VV_ERR_INVALID, "field '%s' of %s must not be negative",
                     key, what);
      return -1;
    }
    /* json-c stores larger numbers as unsigned, or saturates them. */
    if (i == INT64_MAX && json_object_get_uint64 (v) > INT64_MAX) {
      vv_error_code (VV_ERR_INVALID, "field '%s' of %s is too large",
                     key, what);
      return -1;
    }
    *ret = (uint64_t) i;
  }
  return r;
}

int
vv_json_get_array (json_object *o, const char *what, const char *key,
                   json_object **ret)
{
  return get_typed (o, what, key, json_type_array, "an array", ret);
}

int
vv_json_check_keys (json_object *o, const char *what,
                    const char *const *allowed)
{
  if (!json_object_is_type (o, json_type_object)) {
    vv_error_code (VV_ERR_INVALID, "%s must be a JSON object", what);
    return -1;
  }
  json_object_object_foreach (o, key, val) {
    const char *const *a;
    (void) val;
    for (a = allowed; *a; a++)
      if (strcmp (*a, key) == 0)
        break;
    if (*a == NULL) {
      vv_error_code (VV_ERR_INVALID, "%s has an unknown field '%s'",
                     what, key);
      return -1;
    }
  }
  return 0;
}

json_object *
vv_json_string_or_null (const char *s)
{
  return s ? json_object_new_string (s) : NULL;
}
