/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "json-mutator.h"

/* Nodes of one document looked at, at most. */
#define MAX_NODES 1024

struct node {
  json_object *v;
  json_object *parent;          /* NULL for the root */
  const char *key;              /* in an object parent, else NULL */
  size_t index;                 /* in an array parent */
};

struct walk {
  struct node n[MAX_NODES];
  size_t count;
  const char *keys[MAX_NODES];  /* every key seen, for renaming */
  size_t n_keys;
};

static void
collect (struct walk *w, json_object *v, json_object *parent,
         const char *key, size_t index)
{
  if (w->count == MAX_NODES)
    return;
  w->n[w->count++] = (struct node) { v, parent, key, index };
  if (json_object_is_type (v, json_type_object)) {
    json_object_object_foreach (v, k, child) {
      if (w->n_keys < MAX_NODES)
        w->keys[w->n_keys++] = k;
      collect (w, child, v, k, 0);
    }
  }
  else if (json_object_is_type (v, json_type_array)) {
    for (size_t i = 0; i < json_object_array_length (v); i++)
      collect (w, json_object_array_get_idx (v, i), v, NULL, i);
  }
}

/* Values that sit at the edge of what the parsers check. */
static json_object *
tricky (unsigned *seed)
{
  static const char *const strings[] = {
    "", "x", "ab", ".", "..", "../", "/", "//", "../..", "a/../b",
    "../bk-000000000001", "../bk-000000000001/", "%00", "\t", "-",
    "bk-", "ch-", "job-", "bk-000000000001", "qcow2", "raw", "full",
    "incremental", "1970-01-01T00:00:00Z", "2026-13-45T25:61:61Z",
    "00000000-0000-0000-0000-000000000000", "file:///", "mem://",
  };
  char *s;
  json_object *o;
  size_t n;

  switch (rand_r (seed) % 12) {
  case 0: return NULL;          /* JSON null */
  case 1: return json_object_new_boolean (rand_r (seed) & 1);
  case 2: return json_object_new_int64 (0);
  case 3: return json_object_new_int64 (-1);
  case 4: return json_object_new_int64 (INT64_MAX);
  case 5: return json_object_new_uint64 (UINT64_MAX);
  case 6: return json_object_new_double (0.5);
  case 7: return json_object_new_object ();
  case 8: return json_object_new_array ();
  case 9:
    /* Longer than the limits on names (64, 200, 255, 1024 bytes). */
    n = (size_t []) { 64, 65, 200, 201, 255, 256, 1025 }[rand_r (seed) % 7];
    s = malloc (n + 1);
    if (s == NULL)
      return NULL;
    memset (s, 'a', n);
    s[n] = '\0';
    o = json_object_new_string (s);
    free (s);
    return o;
  default:
    return json_object_new_string
      (strings[rand_r (seed) % (sizeof strings / sizeof strings[0])]);
  }
}

static void
replace (struct node *t, json_object *nv)
{
  if (json_object_is_type (t->parent, json_type_object))
    json_object_object_add (t->parent, t->key, nv);
  else
    json_object_array_put_idx (t->parent, t->index, nv);
}

size_t
fuzz_json_mutate (uint8_t *json, size_t len, size_t max, unsigned seed)
{
  static struct walk w;
  json_tokener *tok;
  json_object *root;
  struct node *t;
  const char *out;
  size_t out_len = 0;

  tok = json_tokener_new ();
  if (tok == NULL)
    return 0;
  root = json_tokener_parse_ex (tok, (const char *) json, (int) len);
  if (root == NULL || json_tokener_get_error (tok) != json_tokener_success
      || (size_t) json_tokener_get_parse_end (tok) != len) {
    json_tokener_free (tok);
    json_object_put (root);
    return 0;
  }
  json_tokener_free (tok);

  w.count = w.n_keys = 0;
  collect (&w, root, NULL, NULL, 0);
  t = &w.n[rand_r (&seed) % w.count];

  if (t->parent == NULL)
    ;                           /* the root itself: leave it */
  else {
    switch (rand_r (&seed) % 5) {
    case 0:                     /* a string cut short */
      if (json_object_is_type (t->v, json_type_string)) {
        const char *s = json_object_get_string (t->v);
        size_t n = strlen (s);

        replace (t, json_object_new_string_len (s, n ? rand_r (&seed) % n
                                                : 0));
        break;
      }
      /* fall through */
    case 1: case 2:             /* another value */
      replace (t, tricky (&seed));
      break;
    case 3:                     /* removed */
      if (json_object_is_type (t->parent, json_type_object))
        json_object_object_del (t->parent, t->key);
      else
        json_object_array_del_idx (t->parent, t->index, 1);
      break;
    case 4:                     /* repeated: under another key, or twice */
      if (json_object_is_type (t->parent, json_type_object)) {
        const char *k = w.keys[rand_r (&seed) % w.n_keys];
        json_object_object_add (t->parent, k, json_object_get (t->v));
      }
      else
        json_object_array_add (t->parent, json_object_get (t->v));
      break;
    }
  }

  out = json_object_to_json_string_ext (root, JSON_C_TO_STRING_PLAIN);
  if (out && (out_len = strlen (out)) <= max)
    memcpy (json, out, out_len);
  else
    out_len = 0;
  json_object_put (root);
  return out_len;
}

size_t LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size,
                                unsigned int seed);

size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size,
                         unsigned int seed)
{
  size_t start = fuzz_json_start (data, size), n = 0;

  if ((seed & 1) && start <= size && start <= max_size) {
    n = fuzz_json_mutate (data + start, size - start, max_size - start,
                          seed >> 1);
    if (n)
      n += start;
  }
  return n ? n : LLVMFuzzerMutate (data, size, max_size);
}
