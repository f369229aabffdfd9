/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restore as a new domain: the disks are restored to a directory (as
 * restore.c does) and a domain is defined on them from the domain XML
 * stored with the backup, with a new name, UUID and MAC addresses.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "engine/domain.h"
#include "restore/restore.h"
#include "restore/restore-internal.h"
#include "target/target.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/strutil.h"

/* Where the disks of a new domain go unless told: libvirt's default
 * storage pool directory, one subdirectory per domain.
 */
#define DEFAULT_IMAGES_DIR "/var/lib/libvirt/images"
/* The new domain's directory: QEMU (another user) must be able to reach
 * the images in it; nobody needs to list it.
 */
#define NEW_DIR_MODE 0711

struct an_plan {
  struct vv_restore_request dreq;   /* the restore to a directory */
  struct vv_restore_info dir_info;  /* what it writes */
  virConnectPtr conn;
  char *dir;
  char uuid[VIR_UUID_STRING_BUFLEN];
  char *xml;                        /* the new definition */
  char *notes;
};

static void
plan_clear (struct an_plan *pl)
{
  vv_restore_info_clear (&pl->dir_info);
  if (pl->conn)
    virConnectClose (pl->conn);
  free (pl->dir);
  free (pl->xml);
  free (pl->notes);
  memset (pl, 0, sizeof *pl);
}

static void
cleanup_backup (struct vv_backup_rec **b)
{
  vv_backup_rec_free (*b);
}

static bool
valid_uuid (const char *s)
{
  if (strlen (s) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit ((unsigned char) s[i]))
      return false;
  }
  return true;
}

/* A random (version 4) UUID. */
static int
new_uuid (char ret[VIR_UUID_STRING_BUFLEN])
{
  unsigned char u[16];

  if (getrandom (u, sizeof u, 0) != (ssize_t) sizeof u) {
    vv_error_errno (errno, "getrandom");
    return -1;
  }
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  snprintf (ret, VIR_UUID_STRING_BUFLEN,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x",
            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
            u[10], u[11], u[12], u[13], u[14], u[15]);
  return 0;
}

static int
check_name_free (struct an_plan *pl, const char *uri, const char *name,
                 const char *uuid)
{
  virDomainPtr dom = virDomainLookupByName (pl->conn, name);

  if (dom == NULL && vv_libvirt_error_code () != VIR_ERR_NO_DOMAIN) {
    vv_error_code (VV_ERR_UNAVAILABLE, "cannot look up domain '%s' on %s: "
                   "%s", name, uri, vv_libvirt_error ());
    return -1;
  }
  if (dom) {
    virDomainFree (dom);
    vv_error_code (VV_ERR_BUSY, "a domain named '%s' exists already on %s; "
                   "choose another name for the restored domain", name, uri);
    return -1;
  }
  dom = virDomainLookupByUUIDString (pl->conn, uuid);
  if (dom) {
    virDomainFree (dom);
    vv_error_code (VV_ERR_BUSY, "a domain with UUID %s exists already on "
                   "%s", uuid, uri);
    return -1;
  }
  return 0;
}

/* ---- what the host has, for vv_restore_new_domain_xml ---- */

/* The emulator libvirt uses by default for the domain, from its domain
 * capabilities.
 */
static char *
host_emulator (void *opaque, const char *virt_type, const char *arch,
               const char *machine)
{
  struct an_plan *pl = opaque;
  _cleanup_free_ char *caps = NULL;
  xmlDocPtr doc;
  xmlNodePtr root;
  char *path = NULL;

  caps = virConnectGetDomainCapabilities (pl->conn, NULL, arch, machine,
                                          virt_type, 0);
  if (caps == NULL) {
    vv_error_code (VV_ERR_INVALID, "this host has no emulator for a '%s' "
                   "domain of architecture '%s'%s%s%s: %s", virt_type, arch,
                   machine ? " and machine '" : "", machine ? machine : "",
                   machine ? "'" : "", vv_libvirt_error ());
    return NULL;
  }
  doc = xmlReadMemory (caps, (int) strlen (caps), "domcapabilities.xml",
                       NULL, XML_PARSE_NONET | XML_PARSE_NOERROR
                       | XML_PARSE_NOWARNING);
  root = doc ? xmlDocGetRootElement (doc) : NULL;
  for (xmlNodePtr c = root ? root->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE &&
        xmlStrcmp (c->name, (const xmlChar *) "path") == 0) {
      xmlChar *t = xmlNodeGetContent (c);
      if (t && t[0] == '/')
        path = vv_strdup ((const char *) t);
      xmlFree (t);
      break;
    }
  if (doc)
    xmlFreeDoc (doc);
  if (path == NULL)
    vv_error ("the domain capabilities of libvirt name no emulator for a "
              "'%s' domain of architecture '%s'", virt_type, arch);
  return path;
}

static int
host_network_exists (void *opaque, const char *name)
{
  struct an_plan *pl = opaque;
  virNetworkPtr net = virNetworkLookupByName (pl->conn, name);

  if (net) {
    virNetworkFree (net);
    return 1;
  }
  if (vv_libvirt_error_code () == VIR_ERR_NO_NETWORK)
    return 0;
  vv_error ("cannot look up network '%s': %s", name, vv_libvirt_error ());
  return -1;
}

/* A Linux bridge (not any interface): /sys/class/net/NAME/bridge. */
static int
host_bridge_exists (void *opaque, const char *name)
{
  _cleanup_free_ char *path = vv_printf ("/sys/class/net/%s/bridge", name);
  struct stat st;

  (void) opaque;
  if (path == NULL)
    return -1;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode) ? 1 : 0;
}

/* The domain XML stored with the backup, checked against the digest the
 * catalog recorded for it.  *ret_unchecked is set when the catalog has
 * none (a backup made before digests were recorded).
 */
static char *
read_stored_xml (struct vv_engine *e, const struct vv_backup_rec *b,
                 bool *ret_unchecked)
{
  _cleanup_free_ char *object = NULL;
  struct vv_target *t;
  char *xml = NULL;
  size_t len;
  int r;

  if (b->prefix == NULL || b->prefix[0] == '\0') {
    vv_error ("backup %s has no object prefix in the catalog", b->id);
    return NULL;
  }
  if ((object = vv_printf ("%sdomain.xml", b->prefix)) == NULL ||
      vv_restore_check_object (b->id, object) == -1)
    return NULL;
  if ((t = vv_restore_open_target (e, b->target)) == NULL) {
    vv_error_prefix ("reading the domain XML of backup %s: ", b->id);
    return NULL;
  }
  r = vv_target_read_all (t, object, VV_DOMAIN_XML_STORED_MAX, &xml, &len);
  if (r == -1)
    vv_error_prefix ("reading the domain XML of backup %s from target "
                     "'%s': ", b->id, vv_target_name (t));
  vv_target_close (t);
  if (r == -1)
    return NULL;
  if (strlen (xml) != len) {
    vv_error ("the domain XML of backup %s on target '%s' contains a NUL "
              "byte", b->id, b->target);
    free (xml);
    return NULL;
  }
  if (vv_restore_check_domain_xml (b, xml, len) == -1) {
    free (xml);
    return NULL;
  }
  *ret_unchecked = b->domain_xml_sha256 == NULL;
  return xml;
}

static int
plan_load (struct vv_engine *e, const struct vv_restore_request *req,
           struct an_plan *pl)
{
  _cleanup_ (cleanup_backup) struct vv_backup_rec *b = NULL;
  _cleanup_free_ const struct vv_disk_rec **sel = NULL;
  _cleanup_free_ struct vv_new_domain_disk *nd = NULL;
  _cleanup_free_ char *stored = NULL, *notes = NULL;
  struct vv_new_domain_host host = {
    host_emulator, host_network_exists, host_bridge_exists, pl
  };
  const char *fmt;
  bool unchecked = false;
  size_t n;

  if (req->new_name == NULL || req->new_name[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "the name of the new domain is missing");
    return -1;
  }
  if (vv_check_name ("the new domain's name", req->new_name,
                     VV_DOMAIN_NAME_MAX) == -1)
    return -1;
  if (req->new_uuid && !valid_uuid (req->new_uuid)) {
    vv_error_code (VV_ERR_INVALID, "'%.64s' is not a UUID "
                   "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", req->new_uuid);
    return -1;
  }
  if (req->new_uuid)
    snprintf (pl->uuid, sizeof pl->uuid, "%s", req->new_uuid);
  else if (new_uuid (pl->uuid) == -1)
    return -1;
  if ((b = vv_restore_get_backup (e, req->backup_id,
                                  req->owner_filter)) == NULL ||
      vv_restore_select_disks (b, req->disks, &sel, &n) == -1 ||
      vv_restore_get_format (req->format, &fmt) == -1)
    return -1;

  /* A clash of names is the likelier mistake: said before any about
   * the directory.
   */
  if ((pl->conn = vv_libvirt_open (e->libvirt_uri)) == NULL ||
      check_name_free (pl, e->libvirt_uri, req->new_name, pl->uuid) == -1)
    return -1;

  pl->dir = req->dir ? vv_strdup (req->dir)
    : vv_printf (DEFAULT_IMAGES_DIR "/%s", req->new_name);
  if (pl->dir == NULL)
    return -1;
  pl->dreq = (struct vv_restore_request) {
    .backup_id = b->id, .dir = pl->dir, .format = fmt,
    .owner_filter = req->owner_filter, .mode = VV_RESTORE_TO_DIR,
    .disks = req->disks,
  };
  if (vv_restore_plan (e, &pl->dreq, &pl->dir_info) == -1)
    return -1;
  /* dreq must not point into b, which goes at the end of this call. */
  pl->dreq.backup_id = req->backup_id;

  if ((stored = read_stored_xml (e, b, &unchecked)) == NULL)
    return -1;
  if ((nd = calloc (n ? n : 1, sizeof *nd)) == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", b->id);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    nd[i].target = sel[i]->name;
    nd[i].path = pl->dir_info.files[i];
    nd[i].format = fmt;
  }
  if (vv_restore_new_domain_xml (stored, req->new_name, pl->uuid, nd, n,
                                 &host, &pl->xml, &notes) == -1) {
    vv_error_prefix ("backup %s: ", b->id);
    return -1;
  }
  if (unchecked)
    pl->notes = vv_printf ("%s%sthe catalog has no sha256 of this backup's "
                           "domain XML (made before one was recorded): it "
                           "was used unchecked, from the safe parts only",
                           notes ? notes : "", notes ? "; " : "");
  else
    pl->notes = TAKE_PTR (notes);
  if (unchecked && pl->notes == NULL)
    return -1;
  return 0;
}

int
vv_restore_as_new_plan (struct vv_engine *e,
                        const struct vv_restore_request *req,
                        struct vv_restore_info *ret)
{
  struct an_plan pl = { 0 };
  int r = -1;

  if (plan_load (e, req, &pl) == -1)
    goto out;
  if (ret) {
    struct vv_restore_info info = pl.dir_info;

    memset (&pl.dir_info, 0, sizeof pl.dir_info);
    free (info.domain);
    free (info.domain_uuid);
    info.domain = vv_strdup (req->new_name);
    info.domain_uuid = vv_strdup (pl.uuid);
    info.notes = TAKE_PTR (pl.notes);
    if (info.domain == NULL || info.domain_uuid == NULL) {
      vv_restore_info_clear (&info);
      goto out;
    }
    *ret = info;
  }
  r = 0;
 out:
  plan_clear (&pl);
  return r;
}

/* Removes what the restore to the directory wrote. */
static void
undo_dir (struct an_plan *pl, bool created)
{
  for (size_t i = 0; pl->dir_info.files && pl->dir_info.files[i]; i++)
    unlink (pl->dir_info.files[i]);
  if (created)
    rmdir (pl->dir_info.dir);
}

int
vv_restore_as_new (struct vv_engine *e, const struct vv_restore_request *req,
                   struct vv_progress *p)
{
  struct an_plan pl = { 0 };
  virDomainPtr dom = NULL;
  bool created = false;
  int ret = -1;

  if (req == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return -1;
  }
  if (plan_load (e, req, &pl) == -1)
    goto out;
  if (vv_restore_dir_run (e, &pl.dreq, NEW_DIR_MODE, p, &created) == -1)
    goto out;
  if (vv_progress_cancelled (p)) {
    vv_error_code (VV_ERR_CANCELLED, "restore of backup %s as '%s' was "
                   "cancelled", req->backup_id, req->new_name);
    undo_dir (&pl, created);
    goto out;
  }
  dom = virDomainDefineXMLFlags (pl.conn, pl.xml, VIR_DOMAIN_DEFINE_VALIDATE);
  if (dom == NULL) {
    vv_error ("cannot define domain '%s' from the domain XML of backup %s: "
              "%s", req->new_name, req->backup_id, vv_libvirt_error ());
    undo_dir (&pl, created);
    goto out;
  }
  /* A domain that will not start is still the operator's to fix. */
  if (req->start && virDomainCreate (dom) == -1) {
    vv_error ("domain '%s' was defined with the disks restored in %s, but "
              "could not be started: %s; fix its definition and start it "
              "with 'virsh start %s'", req->new_name, pl.dir_info.dir,
              vv_libvirt_error (), req->new_name);
    goto out;
  }
  ret = 0;
 out:
  if (dom)
    virDomainFree (dom);
  plan_clear (&pl);
  return ret;
}
