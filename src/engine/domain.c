/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "engine/domain.h"
#include "engine/engine.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* libvirt prints every error to stderr unless told otherwise; library
 * code must not print.
 */
static void
silent_error_handler (void *opaque, virErrorPtr err)
{
  (void) opaque;
  (void) err;
}

static void
init_libs (void)
{
  virInitialize ();
  virSetErrorFunc (NULL, silent_error_handler);
  xmlInitParser ();
}

const char *
vv_libvirt_error (void)
{
  const char *m = virGetLastErrorMessage ();

  return m && *m ? m : "unknown error";
}

int
vv_libvirt_error_code (void)
{
  return virGetLastErrorCode ();
}

virConnectPtr
vv_libvirt_open (const char *uri)
{
  virConnectPtr conn;

  pthread_once (&init_once, init_libs);
  conn = virConnectOpen (uri);
  if (conn == NULL) {
    vv_error_code (VV_ERR_UNAVAILABLE,
                   "cannot connect to libvirt at %s: %s; is libvirtd running?",
                   uri, vv_libvirt_error ());
    return NULL;
  }
  return conn;
}

/* A canonical or undashed UUID string. */
static bool
looks_like_uuid (const char *s)
{
  size_t n = 0, len = strlen (s);

  if (len != 36 && len != 32)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (isxdigit ((unsigned char) s[i]))
      n++;
    else if (s[i] != '-' || len == 32)
      return false;
  }
  return n == 32;
}

virDomainPtr
vv_domain_lookup (virConnectPtr conn, const char *uri,
                  const char *name_or_uuid)
{
  virDomainPtr dom = NULL;
  size_t len;

  if (name_or_uuid == NULL || name_or_uuid[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "domain name is missing");
    return NULL;
  }
  len = strlen (name_or_uuid);
  if (len > VV_DOMAIN_NAME_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "domain name is %zu bytes long; the limit is %d",
                   len, VV_DOMAIN_NAME_MAX);
    return NULL;
  }
  for (size_t i = 0; i < len; i++)
    if (iscntrl ((unsigned char) name_or_uuid[i])) {
      vv_error_code (VV_ERR_INVALID,
                     "domain name contains a control character");
      return NULL;
    }

  if (looks_like_uuid (name_or_uuid))
    dom = virDomainLookupByUUIDString (conn, name_or_uuid);
  if (dom == NULL)
    dom = virDomainLookupByName (conn, name_or_uuid);
  if (dom == NULL) {
    int code = virGetLastErrorCode ();

    if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OK)
      vv_error_code (VV_ERR_NOT_FOUND,
                     "no domain %s '%s' on %s (see 'virsh list --all')",
                     looks_like_uuid (name_or_uuid) ? "with UUID" : "named",
                     name_or_uuid, uri);
    else
      vv_error_code (VV_ERR_UNAVAILABLE,
                     "cannot look up domain '%s' on %s: %s",
                     name_or_uuid, uri, vv_libvirt_error ());
    return NULL;
  }
  return dom;
}

/* ---- XML parsing ---- */

static void
cleanup_xml_doc (xmlDocPtr *d)
{
  if (*d)
    xmlFreeDoc (*d);
}
static void
cleanup_xpath_ctx (xmlXPathContextPtr *c)
{
  if (*c)
    xmlXPathFreeContext (*c);
}
static void
cleanup_xpath_obj (xmlXPathObjectPtr *o)
{
  if (*o)
    xmlXPathFreeObject (*o);
}

/* The string value of a relative XPath expression (an attribute or an
 * element's text) as a malloc'd string, or NULL if it selects nothing.
 * *ret_err is set on allocation failure.
 */
static char *
xpath_string (xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr,
              bool *ret_err)
{
  _cleanup_(cleanup_xpath_obj) xmlXPathObjectPtr obj = NULL;
  xmlChar *s;
  char *r;

  ctx->node = node;
  obj = xmlXPathEvalExpression ((const xmlChar *) expr, ctx);
  if (obj == NULL || obj->type != XPATH_NODESET || obj->nodesetval == NULL
      || obj->nodesetval->nodeNr == 0)
    return NULL;
  s = xmlNodeGetContent (obj->nodesetval->nodeTab[0]);
  if (s == NULL)
    return NULL;
  r = strdup ((const char *) s);
  xmlFree (s);
  if (r == NULL) {
    vv_error_errno (ENOMEM, "parsing domain XML");
    *ret_err = true;
  }
  return r;
}

static bool
xpath_exists (xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr)
{
  _cleanup_(cleanup_xpath_obj) xmlXPathObjectPtr obj = NULL;

  ctx->node = node;
  obj = xmlXPathEvalExpression ((const xmlChar *) expr, ctx);
  return obj && obj->type == XPATH_NODESET && obj->nodesetval
    && obj->nodesetval->nodeNr > 0;
}

static void
disk_clear (struct vv_domain_disk *d)
{
  free (d->target);
  free (d->device);
  free (d->type);
  free (d->source);
  free (d->driver_type);
  free (d->alias);
  free (d->bus);
}

struct vv_domain_info *
vv_domain_info_free (struct vv_domain_info *info)
{
  if (info) {
    for (size_t i = 0; i < info->n_disks; i++)
      disk_clear (&info->disks[i]);
    free (info->disks);
    free (info->name);
    free (info->uuid);
    free (info->dac_label);
    free (info);
  }
  return NULL;
}

/* The source of a disk in a form fit for messages; which attribute holds
 * it depends on the disk type.
 */
static char *
disk_source (xmlXPathContextPtr ctx, xmlNodePtr node, const char *type,
             bool *err)
{
  if (strcmp (type, "file") == 0)
    return xpath_string (ctx, node, "./source/@file", err);
  if (strcmp (type, "block") == 0)
    return xpath_string (ctx, node, "./source/@dev", err);
  if (strcmp (type, "dir") == 0)
    return xpath_string (ctx, node, "./source/@dir", err);
  if (strcmp (type, "volume") == 0) {
    _cleanup_free_ char *pool = xpath_string (ctx, node, "./source/@pool", err);
    _cleanup_free_ char *vol = xpath_string (ctx, node, "./source/@volume", err);
    if (*err || vol == NULL)
      return NULL;
    return vv_printf ("%s/%s", pool ? pool : "", vol);
  }
  if (strcmp (type, "network") == 0) {
    _cleanup_free_ char *proto =
      xpath_string (ctx, node, "./source/@protocol", err);
    _cleanup_free_ char *name = xpath_string (ctx, node, "./source/@name", err);
    if (*err || proto == NULL)
      return NULL;
    return vv_printf ("%s:%s", proto, name ? name : "");
  }
  return NULL;
}

static int
parse_disk (xmlXPathContextPtr ctx, xmlNodePtr node, struct vv_domain_disk *d)
{
  bool err = false;
  _cleanup_free_ char *boot = NULL;

  d->type = xpath_string (ctx, node, "./@type", &err);
  d->device = xpath_string (ctx, node, "./@device", &err);
  d->target = xpath_string (ctx, node, "./target/@dev", &err);
  d->bus = xpath_string (ctx, node, "./target/@bus", &err);
  d->driver_type = xpath_string (ctx, node, "./driver/@type", &err);
  d->alias = xpath_string (ctx, node, "./alias/@name", &err);
  boot = xpath_string (ctx, node, "./boot/@order", &err);
  if (err)
    return -1;
  if (d->type == NULL && (d->type = strdup ("file")) == NULL)
    goto nomem;
  if (d->device == NULL && (d->device = strdup ("disk")) == NULL)
    goto nomem;
  d->source = disk_source (ctx, node, d->type, &err);
  if (err)
    return -1;
  d->readonly = xpath_exists (ctx, node, "./readonly");
  d->shareable = xpath_exists (ctx, node, "./shareable");
  if (boot) {
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul (boot, &end, 10);
    if (errno == 0 && *end == '\0' && v > 0 && v <= UINT_MAX)
      d->boot_order = v;
  }
  if (d->target == NULL) {
    vv_error ("domain XML has a disk without <target dev=...>");
    return -1;
  }
  return 0;

 nomem:
  vv_error_errno (ENOMEM, "parsing domain XML");
  return -1;
}

struct vv_domain_info *
vv_domain_info_parse (const char *xml)
{
  _cleanup_(cleanup_xml_doc) xmlDocPtr doc = NULL;
  _cleanup_(cleanup_xpath_ctx) xmlXPathContextPtr ctx = NULL;
  _cleanup_(cleanup_xpath_obj) xmlXPathObjectPtr disks = NULL;
  _cleanup_domain_info_ struct vv_domain_info *info = NULL;
  size_t len = strlen (xml);
  bool err = false;
  int n;

  pthread_once (&init_once, init_libs);
  if (len > VV_DOMAIN_XML_MAX) {
    vv_error ("domain XML is %zu bytes long; the limit is %d",
              len, VV_DOMAIN_XML_MAX);
    return NULL;
  }
  doc = xmlReadMemory (xml, (int) len, "domain.xml", NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR
                       | XML_PARSE_NOWARNING);
  if (doc == NULL) {
    const xmlError *e = xmlGetLastError ();
    vv_error ("cannot parse domain XML: %s",
              e && e->message ? e->message : "malformed document");
    return NULL;
  }
  ctx = xmlXPathNewContext (doc);
  info = calloc (1, sizeof *info);
  if (ctx == NULL || info == NULL) {
    vv_error_errno (ENOMEM, "parsing domain XML");
    return NULL;
  }
  if (!xpath_exists (ctx, NULL, "/domain")) {
    vv_error ("domain XML has no <domain> root element");
    return NULL;
  }
  info->name = xpath_string (ctx, NULL, "/domain/name", &err);
  info->uuid = xpath_string (ctx, NULL, "/domain/uuid", &err);
  info->dac_label =
    xpath_string (ctx, NULL, "/domain/seclabel[@model='dac']/label", &err);
  if (err)
    return NULL;

  ctx->node = NULL;
  disks = xmlXPathEvalExpression ((const xmlChar *) "/domain/devices/disk",
                                  ctx);
  n = disks && disks->nodesetval ? disks->nodesetval->nodeNr : 0;
  if (n > VV_DOMAIN_DISKS_MAX) {
    vv_error ("domain has %d disks; the limit is %d", n, VV_DOMAIN_DISKS_MAX);
    return NULL;
  }
  if (n > 0) {
    info->disks = calloc (n, sizeof *info->disks);
    if (info->disks == NULL) {
      vv_error_errno (ENOMEM, "parsing domain XML");
      return NULL;
    }
  }
  for (int i = 0; i < n; i++) {
    info->n_disks++;
    if (parse_disk (ctx, disks->nodesetval->nodeTab[i],
                    &info->disks[i]) == -1)
      return NULL;
  }
  return TAKE_PTR (info);
}

const struct vv_domain_disk *
vv_domain_info_find_disk (const struct vv_domain_info *info,
                          const char *target)
{
  for (size_t i = 0; i < info->n_disks; i++)
    if (strcmp (info->disks[i].target, target) == 0)
      return &info->disks[i];
  return NULL;
}

const char *
vv_domain_disk_ineligible (const struct vv_domain_disk *d)
{
  if (strcmp (d->device, "disk") != 0)
    return d->device;           /* cdrom, floppy, lun */
  if (d->readonly)
    return "read-only";
  if (d->shareable)
    return "shareable";
  if (strcmp (d->type, "network") == 0)
    return "network disk (not supported yet)";
  if (strcmp (d->type, "volume") == 0)
    return "storage pool volume (not supported yet)";
  if (strcmp (d->type, "file") != 0 && strcmp (d->type, "block") != 0)
    return "unsupported disk type";
  if (d->source == NULL)
    return "no source";
  return NULL;
}

bool
vv_domain_disk_can_checkpoint (const struct vv_domain_disk *d)
{
  return d->driver_type && strcmp (d->driver_type, "qcow2") == 0;
}

/* Thread-safe user and group lookups (the daemon runs jobs in threads). */
static int
lookup_user (const char *name, uid_t *ret_uid, gid_t *ret_gid)
{
  struct passwd pw, *res = NULL;
  char buf[16384];

  if (getpwnam_r (name, &pw, buf, sizeof buf, &res) != 0 || res == NULL)
    return -1;
  *ret_uid = pw.pw_uid;
  if (ret_gid)
    *ret_gid = pw.pw_gid;
  return 0;
}

static int
lookup_group (const char *name, gid_t *ret_gid)
{
  struct group gr, *res = NULL;
  char buf[16384];

  if (getgrnam_r (name, &gr, buf, sizeof buf, &res) != 0 || res == NULL)
    return -1;
  *ret_gid = gr.gr_gid;
  return 0;
}

/* One side of a DAC label: "+64055" is a number, anything else a name. */
static int
parse_dac_id (const char *s, bool group, unsigned *ret)
{
  if (s[0] == '+') {
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul (s + 1, &end, 10);
    if (errno || end == s + 1 || *end != '\0' || v >= UINT_MAX)
      return -1;
    *ret = v;
    return 0;
  }
  if (group) {
    gid_t g;
    if (lookup_group (s, &g) == -1)
      return -1;
    *ret = g;
  }
  else {
    uid_t u;
    if (lookup_user (s, &u, NULL) == -1)
      return -1;
    *ret = u;
  }
  return 0;
}

int
vv_domain_qemu_ids (const struct vv_domain_info *info,
                    uid_t *ret_uid, gid_t *ret_gid)
{
  uid_t u;
  gid_t g;

  if (info->dac_label) {
    _cleanup_free_ char *label = vv_strdup (info->dac_label);
    char *colon;
    unsigned uid, gid;

    if (label == NULL)
      return -1;
    colon = strchr (label, ':');
    if (colon) {
      *colon = '\0';
      if (parse_dac_id (label, false, &uid) == 0
          && parse_dac_id (colon + 1, true, &gid) == 0) {
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
      }
    }
  }
  if (lookup_user ("libvirt-qemu", &u, &g) == 0) {
    *ret_uid = u;
    *ret_gid = g;
    return 0;
  }
  vv_error ("cannot tell which user QEMU runs as for domain '%s' "
            "(DAC label %s, no 'libvirt-qemu' user)",
            info->name ? info->name : "?",
            info->dac_label ? info->dac_label : "absent");
  return -1;
}

struct vv_domain_info *
vv_domain_get_info (virDomainPtr dom, const char *what, unsigned int flags)
{
  char *xml = virDomainGetXMLDesc (dom, flags);
  struct vv_domain_info *info;

  if (xml == NULL) {
    vv_error ("cannot get the XML of %s: %s", what, vv_libvirt_error ());
    return NULL;
  }
  info = vv_domain_info_parse (xml);
  free (xml);
  if (info == NULL)
    vv_error_prefix ("%s: ", what);
  return info;
}
