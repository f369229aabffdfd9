/* The definition of a domain restored as a new one, made from the domain
 * XML stored with the backup: what must differ between two domains that
 * may run side by side (name, UUID, MAC addresses, NVRAM file, disk
 * images) is changed, everything else is kept.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "engine/domain.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_init (void)
{
  xmlInitParser ();
}

static void
cleanup_doc (xmlDocPtr *d)
{
  if (*d)
    xmlFreeDoc (*d);
}
static void
cleanup_ctx (xmlXPathContextPtr *c)
{
  if (*c)
    xmlXPathFreeContext (*c);
}
static void
cleanup_obj (xmlXPathObjectPtr *o)
{
  if (*o)
    xmlXPathFreeObject (*o);
}

/* The nodes an absolute or relative expression selects (may be empty). */
static xmlXPathObjectPtr
select_nodes (xmlXPathContextPtr ctx, xmlNodePtr from, const char *expr)
{
  xmlXPathObjectPtr o;

  ctx->node = from;
  o = xmlXPathEvalExpression ((const xmlChar *) expr, ctx);
  if (o == NULL)
    vv_error ("cannot evaluate '%s' on the stored domain XML", expr);
  return o;
}

static size_t
count (xmlXPathObjectPtr o)
{
  return o && o->type == XPATH_NODESET && o->nodesetval
    ? (size_t) o->nodesetval->nodeNr : 0;
}

/* Unlinks and frees a node with the indentation before it. */
static void
drop (xmlNodePtr n)
{
  xmlNodePtr prev = n->prev;

  if (prev && prev->type == XML_TEXT_NODE && xmlIsBlankNode (prev)) {
    xmlUnlinkNode (prev);
    xmlFreeNode (prev);
  }
  xmlUnlinkNode (n);
  xmlFreeNode (n);
}

/* Drops every node expr selects under from. */
static int
drop_all (xmlXPathContextPtr ctx, xmlNodePtr from, const char *expr)
{
  _cleanup_ (cleanup_obj) xmlXPathObjectPtr o = select_nodes (ctx, from, expr);

  if (o == NULL)
    return -1;
  for (size_t i = 0; i < count (o); i++)
    drop (o->nodesetval->nodeTab[i]);
  return 0;
}

/* Sets the text of the single element expr selects, creating it as a
 * child of parent when absent.
 */
static int
set_text (xmlXPathContextPtr ctx, xmlNodePtr parent, const char *expr,
          const char *elem, const char *text)
{
  _cleanup_ (cleanup_obj) xmlXPathObjectPtr o = select_nodes (ctx, parent,
                                                              expr);
  xmlNodePtr n;

  if (o == NULL)
    return -1;
  if (count (o) > 0) {
    n = o->nodesetval->nodeTab[0];
    xmlNodeSetContent (n, NULL);
    xmlNodeAddContent (n, (const xmlChar *) text);
    return 0;
  }
  n = xmlNewTextChild (parent, NULL, (const xmlChar *) elem,
                       (const xmlChar *) text);
  if (n == NULL) {
    vv_error_errno (ENOMEM, "editing the domain XML");
    return -1;
  }
  return 0;
}

static char *
attr (xmlNodePtr n, const char *name)
{
  xmlChar *v = xmlGetProp (n, (const xmlChar *) name);
  char *s;

  if (v == NULL)
    return NULL;
  s = strdup ((const char *) v);
  xmlFree (v);
  return s;
}

static xmlNodePtr
child (xmlNodePtr n, const char *name)
{
  for (xmlNodePtr c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE &&
        xmlStrcmp (c->name, (const xmlChar *) name) == 0)
      return c;
  return NULL;
}

/* A restored disk: a file, at path, of format; whatever described the
 * old source (a pool volume, a block device, a backing chain) goes.
 */
static int
rewrite_disk (xmlXPathContextPtr ctx, xmlNodePtr disk,
              const struct vv_new_domain_disk *nd)
{
  xmlNodePtr driver, source;

  if (drop_all (ctx, disk, "./source | ./backingStore | ./mirror") == -1)
    return -1;
  if (xmlSetProp (disk, (const xmlChar *) "type",
                  (const xmlChar *) "file") == NULL)
    goto nomem;
  driver = child (disk, "driver");
  if (driver == NULL &&
      (driver = xmlNewChild (disk, NULL, (const xmlChar *) "driver",
                             NULL)) == NULL)
    goto nomem;
  if (xmlSetProp (driver, (const xmlChar *) "name",
                  (const xmlChar *) "qemu") == NULL ||
      xmlSetProp (driver, (const xmlChar *) "type",
                  (const xmlChar *) nd->format) == NULL)
    goto nomem;
  source = xmlNewNode (NULL, (const xmlChar *) "source");
  if (source == NULL)
    goto nomem;
  if (xmlAddNextSibling (driver, source) == NULL) {
    xmlFreeNode (source);
    goto nomem;
  }
  if (xmlSetProp (source, (const xmlChar *) "file",
                  (const xmlChar *) nd->path) == NULL)
    goto nomem;
  return 0;
 nomem:
  vv_error_errno (ENOMEM, "editing the domain XML");
  return -1;
}

static int
append (char **list, const char *s)
{
  char *t = vv_printf ("%s%s%s", *list ? *list : "", *list ? ", " : "", s);

  if (t == NULL)
    return -1;
  free (*list);
  *list = t;
  return 0;
}

int
vv_restore_new_domain_xml (const char *xml, const char *name,
                           const char *uuid,
                           const struct vv_new_domain_disk *disks, size_t n,
                           char **ret_xml, char **ret_notes)
{
  _cleanup_ (cleanup_doc) xmlDocPtr doc = NULL;
  _cleanup_ (cleanup_ctx) xmlXPathContextPtr ctx = NULL;
  _cleanup_ (cleanup_obj) xmlXPathObjectPtr dnodes = NULL;
  _cleanup_free_ char *left_out = NULL, *notes = NULL;
  _cleanup_free_ bool *found = NULL;
  xmlNodePtr root;
  xmlChar *out = NULL;
  size_t len = strlen (xml);
  int outlen = 0;
  bool nvram;

  pthread_once (&xml_once, xml_init);
  if (len > VV_DOMAIN_XML_MAX) {
    vv_error ("the stored domain XML is %zu bytes long; the limit is %d",
              len, VV_DOMAIN_XML_MAX);
    return -1;
  }
  doc = xmlReadMemory (xml, (int) len, "domain.xml", NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR
                       | XML_PARSE_NOWARNING);
  if (doc == NULL) {
    const xmlError *err = xmlGetLastError ();
    vv_error ("cannot parse the stored domain XML: %s",
              err && err->message ? err->message : "malformed document");
    return -1;
  }
  root = xmlDocGetRootElement (doc);
  if (root == NULL || xmlStrcmp (root->name, (const xmlChar *) "domain")) {
    vv_error ("the stored domain XML has no <domain> root element");
    return -1;
  }
  ctx = xmlXPathNewContext (doc);
  found = calloc (n ? n : 1, sizeof *found);
  if (ctx == NULL || found == NULL) {
    vv_error_errno (ENOMEM, "editing the domain XML");
    return -1;
  }

  /* What identifies the domain, and the state a live one had. */
  xmlUnsetProp (root, (const xmlChar *) "id");
  if (set_text (ctx, root, "./name", "name", name) == -1 ||
      set_text (ctx, root, "./uuid", "uuid", uuid) == -1)
    return -1;
  /* Empty <mac/> parents would be refused: drop the element, and libvirt
   * generates a new address.
   */
  if (drop_all (ctx, root, "./devices/interface/mac") == -1)
    return -1;
  /* A UEFI domain's NVRAM file is named after the domain; libvirt makes
   * a new one from the template when <nvram> is absent.
   */
  {
    _cleanup_ (cleanup_obj) xmlXPathObjectPtr o =
      select_nodes (ctx, root, "./os/nvram");
    if (o == NULL)
      return -1;
    nvram = count (o) > 0;
  }
  if (nvram && drop_all (ctx, root, "./os/nvram") == -1)
    return -1;

  dnodes = select_nodes (ctx, root, "./devices/disk");
  if (dnodes == NULL)
    return -1;
  for (size_t i = 0; i < count (dnodes); i++) {
    xmlNodePtr disk = dnodes->nodesetval->nodeTab[i];
    xmlNodePtr target = child (disk, "target");
    _cleanup_free_ char *device = attr (disk, "device");
    _cleanup_free_ char *dev = target ? attr (target, "dev") : NULL;
    size_t k;

    /* Removable media keep their definition (an ISO stays attached). */
    if (device && (strcmp (device, "cdrom") == 0 ||
                   strcmp (device, "floppy") == 0))
      continue;
    for (k = 0; dev && k < n; k++)
      if (strcmp (disks[k].target, dev) == 0)
        break;
    if (dev && k < n) {
      if (found[k]) {
        vv_error ("the stored domain XML has two disks %s", dev);
        return -1;
      }
      found[k] = true;
      if (rewrite_disk (ctx, disk, &disks[k]) == -1)
        return -1;
    }
    else {
      if (append (&left_out, dev ? dev : "(a disk without target)") == -1)
        return -1;
      drop (disk);
    }
  }
  for (size_t k = 0; k < n; k++)
    if (!found[k]) {
      vv_error ("the stored domain XML has no disk %s, but the backup has",
                disks[k].target);
      return -1;
    }

  if (left_out &&
      (notes = vv_printf ("not restored, left out of the new domain: %s",
                          left_out)) == NULL)
    return -1;
  if (nvram && append (&notes, "a new NVRAM file is made from the "
                       "template") == -1)
    return -1;

  xmlDocDumpMemory (doc, &out, &outlen);
  if (out == NULL) {
    vv_error_errno (ENOMEM, "writing the domain XML");
    return -1;
  }
  *ret_xml = strndup ((const char *) out, outlen);
  xmlFree (out);
  if (*ret_xml == NULL) {
    vv_error_errno (ENOMEM, "writing the domain XML");
    return -1;
  }
  *ret_notes = TAKE_PTR (notes);
  return 0;
}
