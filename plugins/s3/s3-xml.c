/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* XML bodies of S3 answers, parsed with libxml2 (see s3-xml.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3-xml.h"

/* Deepest element nesting looked at. */
#define MAX_DEPTH 16

static xmlDocPtr
parse (const char *body, size_t len)
{
  if (len == 0 || len > INT32_MAX)
    return NULL;
  /* No NOENT: entities are not substituted; NONET: nothing is fetched. */
  return xmlReadMemory (body, (int) len, "s3.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                        XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
}

static bool
is (xmlNodePtr n, const char *name)
{
  return n->type == XML_ELEMENT_NODE &&
    strcmp ((const char *) n->name, name) == 0;
}

/* The text of child element name of parent, or NULL (caller frees). */
static char *
child_text (xmlNodePtr parent, const char *name)
{
  xmlNodePtr c;

  for (c = parent->children; c; c = c->next)
    if (is (c, name))
      return (char *) xmlNodeGetContent (c);
  return NULL;
}

static void
copy_out (char *out, size_t outsz, const char *s)
{
  if (outsz == 0)
    return;
  snprintf (out, outsz, "%s", s ? s : "");
}

static xmlNodePtr
find (xmlNodePtr n, const char *name, int depth)
{
  for (; n; n = n->next) {
    xmlNodePtr r;

    if (is (n, name))
      return n;
    if (depth < MAX_DEPTH && n->children &&
        (r = find (n->children, name, depth + 1)))
      return r;
  }
  return NULL;
}

int
s3_xml_find_text (const char *body, size_t len, const char *name,
                  char *out, size_t outsz)
{
  xmlDocPtr doc = parse (body, len);
  xmlNodePtr n;
  int ret = -1;

  if (doc == NULL)
    return -1;
  n = find (xmlDocGetRootElement (doc), name, 0);
  if (n) {
    xmlChar *t = xmlNodeGetContent (n);
    copy_out (out, outsz, (const char *) t);
    xmlFree (t);
    ret = 0;
  }
  xmlFreeDoc (doc);
  return ret;
}

static bool
parse_u64 (const char *s, uint64_t *ret)
{
  char *end;
  unsigned long long v;

  if (s == NULL || *s < '0' || *s > '9')
    return false;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || *end)
    return false;
  *ret = v;
  return true;
}

static bool
text_is (xmlNodePtr parent, const char *name, const char *value)
{
  char *t = child_text (parent, name);
  bool r = t && strcmp (t, value) == 0;

  xmlFree (t);
  return r;
}

int
s3_xml_parse_list (const char *body, size_t len, s3_xml_key_cb cb,
                   void *opaque, bool *truncated, char *next_token,
                   size_t tokensz)
{
  xmlDocPtr doc = parse (body, len);
  xmlNodePtr root, n;
  int ret = 0;
  char *t;

  *truncated = false;
  copy_out (next_token, tokensz, "");
  if (doc == NULL)
    return -1;
  root = xmlDocGetRootElement (doc);
  if (root == NULL || !is (root, "ListBucketResult")) {
    xmlFreeDoc (doc);
    return -1;
  }
  *truncated = text_is (root, "IsTruncated", "true");
  t = child_text (root, "NextContinuationToken");
  if (t && strlen (t) >= tokensz)
    ret = -1;                   /* a token we cannot send back whole */
  else
    copy_out (next_token, tokensz, t);
  xmlFree (t);
  for (n = root->children; n && ret == 0; n = n->next) {
    char *key, *size;
    uint64_t sz;

    if (!is (n, "Contents"))
      continue;
    key = child_text (n, "Key");
    size = child_text (n, "Size");
    if (key == NULL || !parse_u64 (size, &sz))
      ret = -1;
    else if (cb (opaque, key, strlen (key), sz) == -1)
      ret = -2;
    xmlFree (key);
    xmlFree (size);
  }
  xmlFreeDoc (doc);
  return ret;
}

int
s3_xml_parse_uploads (const char *body, size_t len, s3_xml_upload_cb cb,
                      void *opaque, bool *truncated, char *next_key,
                      char *next_upload, size_t markersz)
{
  xmlDocPtr doc = parse (body, len);
  xmlNodePtr root, n;
  int ret = 0;
  char *t;

  *truncated = false;
  copy_out (next_key, markersz, "");
  copy_out (next_upload, markersz, "");
  if (doc == NULL)
    return -1;
  root = xmlDocGetRootElement (doc);
  if (root == NULL || !is (root, "ListMultipartUploadsResult")) {
    xmlFreeDoc (doc);
    return -1;
  }
  *truncated = text_is (root, "IsTruncated", "true");
  t = child_text (root, "NextKeyMarker");
  if (t && strlen (t) >= markersz)
    ret = -1;
  copy_out (next_key, markersz, t);
  xmlFree (t);
  t = child_text (root, "NextUploadIdMarker");
  if (t && strlen (t) >= markersz)
    ret = -1;
  copy_out (next_upload, markersz, t);
  xmlFree (t);
  for (n = root->children; n && ret == 0; n = n->next) {
    char *key, *id;

    if (!is (n, "Upload"))
      continue;
    key = child_text (n, "Key");
    id = child_text (n, "UploadId");
    if (key == NULL || id == NULL || *id == '\0')
      ret = -1;
    else if (cb (opaque, key, id) == -1)
      ret = -2;
    xmlFree (key);
    xmlFree (id);
  }
  xmlFreeDoc (doc);
  return ret;
}

int
s3_xml_delete_errors (const char *body, size_t len, char *key, size_t keysz,
                      char *code, size_t codesz)
{
  xmlDocPtr doc = parse (body, len);
  xmlNodePtr root, n;
  int count = 0;

  copy_out (key, keysz, "");
  copy_out (code, codesz, "");
  if (doc == NULL)
    return -1;
  root = xmlDocGetRootElement (doc);
  if (root == NULL || !is (root, "DeleteResult")) {
    xmlFreeDoc (doc);
    return -1;
  }
  for (n = root->children; n; n = n->next) {
    char *k, *c;

    if (!is (n, "Error"))
      continue;
    k = child_text (n, "Key");
    c = child_text (n, "Code");
    if (c == NULL || strcmp (c, "NoSuchKey") != 0) {
      if (count++ == 0) {
        copy_out (key, keysz, k);
        copy_out (code, codesz, c);
      }
    }
    xmlFree (k);
    xmlFree (c);
  }
  xmlFreeDoc (doc);
  return count;
}
