/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The definition of a domain restored as a new one.
 *
 * The domain XML stored with a backup is untrusted: anyone who can write
 * to the target can change it, and its digest in a manifest too.  So the
 * new definition is built from scratch out of an allow-list of parts that
 * cannot touch the host (memory, CPUs, firmware choice, features, clock,
 * controllers, ...), with the restored images as the only disks, the
 * host's own emulator, interfaces only on networks and bridges that exist
 * here, character devices as ptys and graphics on 127.0.0.1.  Everything
 * else is dropped and named in the notes.  Nothing here talks to libvirt:
 * what the host has comes through struct vv_new_domain_host.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "engine/domain.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

/* The notes stay readable whatever the stored XML holds. */
#define NOTES_MAX 4096
#define DROPPED_KINDS_MAX 64
/* Longest element name and noted value quoted in the notes. */
#define NOTE_NAME_MAX 64
/* Longest network or bridge name looked up. */
#define NET_NAME_MAX 255

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
cleanup_xmlfree (xmlChar **p)
{
  if (*p)
    xmlFree (*p);
}
#define _cleanup_xml_ _cleanup_ (cleanup_xmlfree)

/* ---- the allow-list ---- */

/* An element that may be copied: the attributes kept, whether its text
 * is, the children that may follow it (each by its own entry), and if
 * set the only values its "type" attribute may have.
 */
struct xspec {
  const char *name;
  const char *const *attrs;
  bool text;
  const struct xspec *children;
  const char *const *types;
};

#define A(...) ((const char *const []) { __VA_ARGS__, NULL })
/* The end of a list of elements. */
#define END { NULL, NULL, false, NULL, NULL }
#define C(...) ((const struct xspec []) { __VA_ARGS__, END })
#define EMPTY(n, ...) { n, A (__VA_ARGS__), false, NULL, NULL }
#define TEXT(n, ...) { n, A (__VA_ARGS__), true, NULL, NULL }
/* Without attributes. */
#define BARE(n) { n, NULL, false, NULL, NULL }
#define BARE_TEXT(n) { n, NULL, true, NULL, NULL }
#define STATE(n) EMPTY (n, "state")

#define ADDRESS                                                         \
  EMPTY ("address", "type", "domain", "bus", "slot", "function",        \
         "multifunction", "controller", "target", "unit", "port", "reg", \
         "cssid", "ssid", "devno", "iobase", "irq")
#define BOOT EMPTY ("boot", "order")

static const struct xspec hyperv_children[] = {
  STATE ("relaxed"), STATE ("vapic"), EMPTY ("spinlocks", "state", "retries"),
  STATE ("vpindex"), STATE ("runtime"), STATE ("synic"),
  { "stimer", A ("state"), false, C (STATE ("direct")), NULL },
  STATE ("reset"), EMPTY ("vendor_id", "state", "value"),
  STATE ("frequencies"), STATE ("reenlightenment"),
  { "tlbflush", A ("state"), false, C (STATE ("direct"), STATE ("extended")),
    NULL },
  STATE ("ipi"), STATE ("evmcs"), STATE ("avic"), STATE ("emsr_bitmap"),
  STATE ("xmm_input"), END,
};

static const struct xspec features_children[] = {
  BARE ("acpi"), EMPTY ("apic", "eoi"), BARE ("pae"),
  STATE ("hap"), BARE ("viridian"), BARE ("privnet"),
  { "hyperv", A ("mode"), false, hyperv_children, NULL },
  { "kvm", NULL, false,
    C (STATE ("hidden"), STATE ("hint-dedicated"), STATE ("poll-control"),
       STATE ("pv-ipi"), EMPTY ("dirty-ring", "state", "size")), NULL },
  STATE ("pvspinlock"), STATE ("pmu"), STATE ("vmport"),
  EMPTY ("gic", "version"),
  { "smm", A ("state"), false, C (TEXT ("tseg", "unit")), NULL },
  EMPTY ("ioapic", "driver"), STATE ("vmcoreinfo"), STATE ("htm"),
  EMPTY ("async-teardown", "enabled"), END,
};

static const struct xspec cpu_children[] = {
  TEXT ("model", "fallback", "vendor_id"), BARE_TEXT ("vendor"),
  EMPTY ("topology", "sockets", "dies", "clusters", "cores", "threads"),
  EMPTY ("feature", "policy", "name"), EMPTY ("cache", "level", "mode"),
  { "numa", NULL, false,
    C (EMPTY ("cell", "id", "cpus", "memory", "unit")), NULL },
  END,
};

static const struct xspec clock_children[] = {
  { "timer", A ("name", "present", "tickpolicy", "track", "frequency",
                "mode"), false,
    C (EMPTY ("catchup", "threshold", "slew", "limit")), NULL },
  END,
};

/* What <os> keeps besides <loader> and <nvram> (see copy_os). */
static const struct xspec os_children[] = {
  TEXT ("type", "arch", "machine"), EMPTY ("boot", "dev"),
  EMPTY ("bootmenu", "enable", "timeout"),
  EMPTY ("bios", "useserial", "rebootTimeout"),
  { "firmware", NULL, false, C (EMPTY ("feature", "enabled", "name")),
    NULL },
  END,
};

/* The children of <domain> copied as they are.  <name>, <uuid>, <os>
 * and <devices> are made by vv_restore_new_domain_xml itself.
 */
static const struct xspec domain_children[] = {
  BARE_TEXT ("title"), BARE_TEXT ("description"),
  TEXT ("memory", "unit"), TEXT ("currentMemory", "unit"),
  TEXT ("vcpu", "current"), BARE_TEXT ("iothreads"),
  { "features", NULL, false, features_children, NULL },
  { "cpu", A ("mode", "match", "check", "migratable"), false, cpu_children,
    NULL },
  { "clock", A ("offset", "adjustment", "basis", "timezone"), false,
    clock_children, NULL },
  BARE_TEXT ("on_poweroff"), BARE_TEXT ("on_reboot"), BARE_TEXT ("on_crash"),
  { "pm", NULL, false,
    C (EMPTY ("suspend-to-mem", "enabled"),
       EMPTY ("suspend-to-disk", "enabled")), NULL },
  END,
};

/* The devices copied as they are (disks, interfaces, character devices,
 * graphics, RNGs and TPMs have functions of their own).
 */
static const struct xspec device_children[] = {
  { "controller", A ("type", "index", "model", "ports", "vectors"), false,
    C (ADDRESS, EMPTY ("model", "name"),
       EMPTY ("target", "chassisNr", "chassis", "port", "busNr", "index",
              "hotplug"),
       EMPTY ("driver", "queues", "cmd_per_lun", "max_sectors", "ioeventfd",
              "iothread")), NULL },
  { "video", NULL, false,
    C (ADDRESS, EMPTY ("model", "type", "vram", "ram", "vram64", "vgamem",
                       "heads", "primary")), NULL },
  { "input", A ("type", "bus"), false, C (ADDRESS),
    A ("mouse", "tablet", "keyboard") },
  { "memballoon", A ("model", "autodeflate", "freePageReporting"), false,
    C (ADDRESS, EMPTY ("stats", "period")), NULL },
  { "watchdog", A ("model", "action"), false, C (ADDRESS), NULL },
  { "sound", A ("model"), false, C (ADDRESS, EMPTY ("codec", "type")),
    NULL },
  { "panic", A ("model"), false, C (ADDRESS), NULL },
  { "hub", A ("type"), false, C (ADDRESS), A ("usb") },
  { "iommu", A ("model"), false,
    C (ADDRESS, EMPTY ("driver", "intremap", "caching_mode", "eim", "iotlb",
                       "aw_bits")), NULL },
  END,
};

/* Kept in a restored disk besides its driver and source. */
static const struct xspec disk_children[] = {
  EMPTY ("target", "dev", "bus"), BOOT, ADDRESS, BARE_TEXT ("serial"),
  EMPTY ("blockio", "logical_block_size", "physical_block_size"),
  END,
};
/* What a disk's copy never takes from the stored one: made anew, or
 * libvirt's.
 */
static const char *const disk_made[] = {
  "driver", "source", "backingStore", "alias", NULL
};
/* ... and in an emptied cdrom or floppy drive. */
static const struct xspec drive_children[] = {
  EMPTY ("target", "dev", "bus", "tray"), BOOT, ADDRESS,
  BARE ("readonly"), END,
};

static const struct xspec interface_children[] = {
  EMPTY ("model", "type"), ADDRESS, BOOT, EMPTY ("link", "state"),
  EMPTY ("mtu", "size"), EMPTY ("driver", "name", "queues"), END,
};

static const struct xspec chardev_children[] = {
  { "target", A ("type", "port"), false, C (EMPTY ("model", "name")), NULL },
  ADDRESS, END,
};
static const struct xspec channel_children[] = {
  EMPTY ("target", "type", "name"), ADDRESS, END,
};

static const struct xspec rng_children[] = {
  EMPTY ("rate", "period", "bytes"), ADDRESS, END,
};

/* ---- what was dropped or changed ---- */

struct notes {
  struct {
    char *what;
    unsigned n;
  } dropped[DROPPED_KINDS_MAX];
  size_t n_dropped;
  unsigned more;                /* dropped kinds beyond the table */
  char *changed;                /* "; "-separated sentences */
  bool truncated;
};

static void
notes_clear (struct notes *nt)
{
  for (size_t i = 0; i < nt->n_dropped; i++)
    free (nt->dropped[i].what);
  free (nt->changed);
}

static int
nomem (void)
{
  vv_error_errno (ENOMEM, "making the new domain's XML");
  return -1;
}

/* Counts one more dropped element described by what ("<hostdev>"). */
static int
note_dropped (struct notes *nt, const char *what)
{
  for (size_t i = 0; i < nt->n_dropped; i++)
    if (strcmp (nt->dropped[i].what, what) == 0) {
      nt->dropped[i].n++;
      return 0;
    }
  if (nt->n_dropped == DROPPED_KINDS_MAX) {
    nt->more++;
    return 0;
  }
  if ((nt->dropped[nt->n_dropped].what = strdup (what)) == NULL)
    return nomem ();
  nt->dropped[nt->n_dropped++].n = 1;
  return 0;
}

static int __attribute__ ((format (printf, 2, 3)))
note_changed (struct notes *nt, const char *fmt, ...)
{
  _cleanup_free_ char *s = NULL;
  char *t;
  va_list ap;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (r == -1)
    return nomem ();
  if ((nt->changed ? strlen (nt->changed) : 0) + strlen (s) > NOTES_MAX) {
    nt->truncated = true;
    return 0;
  }
  t = vv_printf ("%s%s%s", nt->changed ? nt->changed : "",
                 nt->changed ? "; " : "", s);
  if (t == NULL)
    return -1;
  free (nt->changed);
  nt->changed = t;
  return 0;
}

/* "<name>", "<qemu:commandline>", or "<parent>/<name>". */
static char *
elem_label (const char *parent, xmlNodePtr n)
{
  const char *prefix = n->ns && n->ns->prefix ? (const char *) n->ns->prefix
    : NULL;

  return vv_printf ("%s%s<%.*s%s%.*s>", parent ? parent : "",
                    parent ? "/" : "", NOTE_NAME_MAX, prefix ? prefix : "",
                    prefix ? ":" : "", NOTE_NAME_MAX,
                    (const char *) n->name);
}

static int
drop_elem (struct notes *nt, const char *parent, xmlNodePtr n)
{
  _cleanup_free_ char *label = elem_label (parent, n);

  return label ? note_dropped (nt, label) : -1;
}

/* ---- reading the stored XML ---- */

static bool
is_elem (xmlNodePtr n, const char *name)
{
  return n->type == XML_ELEMENT_NODE && n->ns == NULL &&
    xmlStrcmp (n->name, (const xmlChar *) name) == 0;
}

static xmlNodePtr
child (xmlNodePtr n, const char *name)
{
  for (xmlNodePtr c = n->children; c; c = c->next)
    if (is_elem (c, name))
      return c;
  return NULL;
}

/* The attribute as a string owned by the document's caller (xmlFree), or
 * NULL.
 */
static xmlChar *
prop (xmlNodePtr n, const char *name)
{
  return n ? xmlGetNoNsProp (n, (const xmlChar *) name) : NULL;
}

static bool
prop_is (xmlNodePtr n, const char *name, const char *value)
{
  _cleanup_xml_ xmlChar *v = prop (n, name);

  return v && strcmp ((const char *) v, value) == 0;
}

static const struct xspec *
find_spec (const struct xspec *list, xmlNodePtr n)
{
  if (n->ns != NULL)
    return NULL;
  for (; list && list->name; list++)
    if (xmlStrcmp (n->name, (const xmlChar *) list->name) == 0)
      return list;
  return NULL;
}

static bool
in_list (const char *const *list, const char *s)
{
  for (; list && *list; list++)
    if (strcmp (*list, s) == 0)
      return true;
  return false;
}

/* ---- writing the new XML ---- */

static xmlNodePtr
new_child (xmlNodePtr parent, const char *name, const char *text)
{
  xmlNodePtr n = xmlNewChild (parent, NULL, (const xmlChar *) name, NULL);

  if (n && text)
    xmlNodeAddContent (n, (const xmlChar *) text);
  if (n == NULL)
    nomem ();
  return n;
}

static int
set_prop (xmlNodePtr n, const char *name, const char *value)
{
  return xmlSetProp (n, (const xmlChar *) name,
                     (const xmlChar *) value) ? 0 : nomem ();
}

/* Copies src into parent as spec allows: the attributes listed, its
 * text, the children listed (recursively); every child element not
 * listed is noted as dropped, label naming src.  Returns the copy;
 * parent when spec->types refuses src (noted, not an error); NULL on
 * error.
 */
static xmlNodePtr
copy_elem (xmlNodePtr parent, xmlNodePtr src, const struct xspec *spec,
           const char *label, struct notes *nt);

/* Copies the children of src that children lists into dst and notes
 * the others as dropped, except those named in skip (made by the caller,
 * or replaced without a word, such as <mac>).
 */
static int
copy_children (xmlNodePtr dst, xmlNodePtr src,
               const struct xspec *children, const char *const *skip,
               const char *label, struct notes *nt)
{
  for (xmlNodePtr c = src->children; c; c = c->next) {
    const struct xspec *cs;

    if (c->type != XML_ELEMENT_NODE ||
        (c->ns == NULL && in_list (skip, (const char *) c->name)))
      continue;
    cs = find_spec (children, c);
    if (cs == NULL) {
      if (drop_elem (nt, label, c) == -1)
        return -1;
      continue;
    }
    if (copy_elem (dst, c, cs, label, nt) == NULL)
      return -1;
  }
  return 0;
}

static xmlNodePtr
copy_elem (xmlNodePtr parent, xmlNodePtr src, const struct xspec *spec,
           const char *label, struct notes *nt)
{
  _cleanup_free_ char *mylabel = NULL;
  xmlNodePtr n;

  if (spec->types) {
    _cleanup_xml_ xmlChar *type = prop (src, "type");
    if (type == NULL || !in_list (spec->types, (const char *) type)) {
      _cleanup_free_ char *what = vv_printf ("<%s type='%.*s'>", spec->name,
                                             NOTE_NAME_MAX,
                                             type ? (const char *) type
                                             : "");
      if (what == NULL || note_dropped (nt, what) == -1)
        return NULL;
      return parent;            /* dropped, not an error */
    }
  }
  n = xmlNewChild (parent, NULL, (const xmlChar *) spec->name, NULL);
  if (n == NULL) {
    nomem ();
    return NULL;
  }
  for (const char *const *a = spec->attrs; a && *a; a++) {
    _cleanup_xml_ xmlChar *v = prop (src, *a);
    if (v && xmlSetProp (n, (const xmlChar *) *a, v) == NULL) {
      nomem ();
      return NULL;
    }
  }
  if (spec->text) {
    _cleanup_xml_ xmlChar *t = xmlNodeGetContent (src);
    if (t)
      xmlNodeAddContent (n, t);
    return n;
  }
  /* Children not listed (all of them when none is) are noted. */
  mylabel = label ? vv_printf ("%s/<%s>", label, spec->name)
    : vv_printf ("<%s>", spec->name);
  if (mylabel == NULL ||
      copy_children (n, src, spec->children, NULL, mylabel, nt) == -1)
    return NULL;
  return n;
}

/* ---- the parts made here ---- */

struct build {
  const struct vv_new_domain_disk *disks;
  size_t n;
  bool *found;
  const struct vv_new_domain_host *host;
  char *virt_type;
  char *arch;
  char *machine;
  char *left_out;               /* disks not restored */
  struct notes nt;
};

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

/* <os>: no kernel, initrd, loader or NVRAM path from the stored XML.  A
 * UEFI domain gets firmware='efi', so libvirt picks the host's firmware
 * and makes a new NVRAM file from the host's template.
 */
static int
copy_os (struct build *bd, xmlNodePtr dom, xmlNodePtr src)
{
  xmlNodePtr os, type = child (src, "type"), loader = child (src, "loader");
  _cleanup_xml_ xmlChar *fw = prop (src, "firmware");
  _cleanup_xml_ xmlChar *lpath = loader ? xmlNodeGetContent (loader) : NULL;
  _cleanup_xml_ xmlChar *ostype = type ? xmlNodeGetContent (type) : NULL;
  bool efi = (fw && strcmp ((const char *) fw, "efi") == 0) ||
    prop_is (loader, "type", "pflash") || child (src, "nvram") != NULL;

  if (ostype == NULL || strcmp ((const char *) ostype, "hvm") != 0) {
    vv_error ("the stored domain XML has the OS type '%s'; a domain "
              "restored as new must be 'hvm'",
              ostype ? (const char *) ostype : "(none)");
    return -1;
  }
  if ((bd->arch = (char *) prop (type, "arch")) == NULL) {
    vv_error ("the stored domain XML names no architecture (<os><type "
              "arch=...>)");
    return -1;
  }
  bd->machine = (char *) prop (type, "machine");

  if ((os = new_child (dom, "os", NULL)) == NULL)
    return -1;
  if (efi && set_prop (os, "firmware", "efi") == -1)
    return -1;
  if (fw && !efi && strcmp ((const char *) fw, "bios") == 0 &&
      set_prop (os, "firmware", "bios") == -1)
    return -1;
  if (copy_children (os, src, os_children, A ("loader", "nvram"), "<os>",
                     &bd->nt) == -1)
    return -1;
  if (loader && efi) {
    if (prop_is (loader, "secure", "yes")) {
      xmlNodePtr l = new_child (os, "loader", NULL);
      if (l == NULL || set_prop (l, "secure", "yes") == -1)
        return -1;
    }
    if (lpath && lpath[0] &&
        note_changed (&bd->nt, "firmware %s -> the host's UEFI firmware",
                      (const char *) lpath) == -1)
      return -1;
  }
  else if (loader &&
           note_changed (&bd->nt, "firmware %s dropped: the host's default "
                         "BIOS", lpath && lpath[0] ? (const char *) lpath
                         : "(no path)") == -1)
    return -1;
  if (efi && note_changed (&bd->nt, "a new NVRAM file is made from the "
                           "host's template") == -1)
    return -1;
  return 0;
}

/* <disk type='file' device=device><driver name='qemu' type=format/>. */
static xmlNodePtr
new_disk (xmlNodePtr devs, const char *device, const char *format,
          xmlNodePtr *ret_driver)
{
  xmlNodePtr disk = new_child (devs, "disk", NULL), driver;

  if (disk == NULL || set_prop (disk, "type", "file") == -1 ||
      set_prop (disk, "device", device) == -1 ||
      (driver = new_child (disk, "driver", NULL)) == NULL ||
      set_prop (driver, "name", "qemu") == -1 ||
      set_prop (driver, "type", format) == -1)
    return NULL;
  *ret_driver = driver;
  return disk;
}

/* A restored disk: a file at its restored path, of its format. */
static int
make_disk (struct build *bd, xmlNodePtr devs, xmlNodePtr src,
           const struct vv_new_domain_disk *nd)
{
  xmlNodePtr disk, driver, sdriver = child (src, "driver");
  _cleanup_free_ char *label = vv_printf ("disk %s", nd->target);

  if (label == NULL ||
      (disk = new_disk (devs, "disk", nd->format, &driver)) == NULL)
    return -1;
  for (const char *const *a = A ("cache", "io", "discard", "detect_zeroes");
       *a; a++) {
    _cleanup_xml_ xmlChar *v = prop (sdriver, *a);
    if (v && set_prop (driver, *a, (const char *) v) == -1)
      return -1;
  }
  {
    xmlNodePtr source = new_child (disk, "source", NULL);
    if (source == NULL || set_prop (source, "file", nd->path) == -1)
      return -1;
  }
  return copy_children (disk, src, disk_children, disk_made, label,
                        &bd->nt);
}

/* A cdrom or floppy drive stays, empty: its medium is a host path. */
static int
make_drive (struct build *bd, xmlNodePtr devs, xmlNodePtr src,
            const char *device, const char *dev)
{
  xmlNodePtr disk, driver, source = child (src, "source");
  _cleanup_free_ char *label = vv_printf ("%s %s", device, dev ? dev : "?");

  if (label == NULL ||
      (disk = new_disk (devs, device, "raw", &driver)) == NULL)
    return -1;
  if (source) {
    _cleanup_xml_ xmlChar *f = prop (source, "file");
    _cleanup_xml_ xmlChar *d = prop (source, "dev");
    const xmlChar *what = f ? f : d;
    if (note_changed (&bd->nt, "%s: medium %s left out (empty drive)", label,
                      what ? (const char *) what : "(not a file)") == -1)
      return -1;
  }
  return copy_children (disk, src, drive_children, disk_made, label,
                        &bd->nt);
}

static int
copy_disk (struct build *bd, xmlNodePtr devs, xmlNodePtr src)
{
  xmlNodePtr target = child (src, "target");
  _cleanup_xml_ xmlChar *device = prop (src, "device");
  _cleanup_xml_ xmlChar *dev = prop (target, "dev");
  size_t k;

  if (device && (xmlStrcmp (device, (const xmlChar *) "cdrom") == 0 ||
                 xmlStrcmp (device, (const xmlChar *) "floppy") == 0))
    return make_drive (bd, devs, src, (const char *) device,
                       (const char *) dev);
  for (k = 0; dev && k < bd->n; k++)
    if (strcmp (bd->disks[k].target, (const char *) dev) == 0)
      break;
  if (dev == NULL || k == bd->n)
    return append (&bd->left_out, dev ? (const char *) dev
                   : "(a disk without target)");
  if (bd->found[k]) {
    vv_error ("the stored domain XML has two disks %s", (const char *) dev);
    return -1;
  }
  bd->found[k] = true;
  return make_disk (bd, devs, src, &bd->disks[k]);
}

/* libvirt network and Linux bridge names: no path separators. */
static bool
plain_name (const char *s)
{
  size_t len = strlen (s);

  return len > 0 && len <= NET_NAME_MAX && strchr (s, '/') == NULL &&
    strcmp (s, ".") != 0 && strcmp (s, "..") != 0;
}

/* Interfaces on a network or bridge that exists here, or user-mode
 * networking (QEMU's own NAT, no host device); new MAC addresses.
 */
static int
copy_interface (struct build *bd, xmlNodePtr devs, xmlNodePtr src)
{
  _cleanup_xml_ xmlChar *type = prop (src, "type");
  xmlNodePtr source = child (src, "source"), n, ns;
  const char *t = type ? (const char *) type : "";
  _cleanup_xml_ xmlChar *name = NULL;
  const char *attr = NULL;
  int r;

  if (strcmp (t, "network") == 0)
    attr = "network";
  else if (strcmp (t, "bridge") == 0)
    attr = "bridge";
  else if (strcmp (t, "user") != 0)
    return note_changed (&bd->nt, "interface of type '%s' dropped", t);

  if (attr) {
    name = prop (source, attr);
    if (name == NULL || !plain_name ((const char *) name))
      return note_changed (&bd->nt, "interface on %s '%s' dropped: not a "
                           "valid name", attr,
                           name ? (const char *) name : "");
    r = strcmp (attr, "network") == 0
      ? bd->host->network_exists (bd->host->opaque, (const char *) name)
      : bd->host->bridge_exists (bd->host->opaque, (const char *) name);
    if (r == -1)
      return -1;
    if (r == 0)
      return note_changed (&bd->nt, "interface on %s '%s' dropped: no such "
                           "%s here", attr, (const char *) name, attr);
  }
  if ((n = new_child (devs, "interface", NULL)) == NULL ||
      set_prop (n, "type", t) == -1)
    return -1;
  if (attr && ((ns = new_child (n, "source", NULL)) == NULL ||
               set_prop (ns, attr, (const char *) name) == -1))
    return -1;
  if (copy_children (n, src, interface_children,
                     A ("source", "mac", "alias"), "<interface>",
                     &bd->nt) == -1)
    return -1;
  return 0;
}

/* What a character device was connected to, for the notes. */
static char *
chardev_source (xmlNodePtr src, const char *type)
{
  xmlNodePtr s = child (src, "source");
  _cleanup_xml_ xmlChar *path = prop (s, "path");
  _cleanup_xml_ xmlChar *host = prop (s, "host");
  _cleanup_xml_ xmlChar *service = prop (s, "service");

  if (path)
    return vv_printf ("%s %s", type, (const char *) path);
  if (host || service)
    return vv_printf ("%s %s:%s", type, host ? (const char *) host : "",
                      service ? (const char *) service : "");
  return vv_strdup (type);
}

/* Serial ports, consoles, parallel ports: a pty, whatever they were.
 * Channels to the guest agent and other virtio channels: a UNIX socket
 * whose path libvirt chooses in its own directory (no path from the
 * stored XML), or else a pty.  Guest forwarding channels go.
 */
static int
copy_chardev (struct build *bd, xmlNodePtr devs, xmlNodePtr src)
{
  const char *kind = (const char *) src->name;
  bool channel = strcmp (kind, "channel") == 0;
  _cleanup_xml_ xmlChar *type = prop (src, "type");
  const char *t = type ? (const char *) type : "pty";
  xmlNodePtr target = child (src, "target"), n;
  _cleanup_free_ char *label = vv_printf ("<%s>", kind);
  const char *new_type = "pty";

  if (label == NULL)
    return -1;
  if (channel) {
    _cleanup_xml_ xmlChar *ttype = prop (target, "type");
    if (ttype == NULL || strcmp ((const char *) ttype, "virtio") != 0)
      return note_changed (&bd->nt, "channel with target '%s' dropped",
                           ttype ? (const char *) ttype : "");
    if (strcmp (t, "unix") == 0)
      new_type = "unix";
  }
  if (strcmp (t, new_type) != 0 || child (src, "source") != NULL) {
    _cleanup_free_ char *was = chardev_source (src, t);
    if (was == NULL ||
        note_changed (&bd->nt, "%s %s -> %s%s", kind, was, new_type,
                      strcmp (new_type, "unix") == 0
                      ? " (a socket libvirt places)" : "") == -1)
      return -1;
  }
  if ((n = new_child (devs, kind, NULL)) == NULL ||
      set_prop (n, "type", new_type) == -1)
    return -1;
  if (copy_children (n, src, channel ? channel_children : chardev_children,
                     A ("source", "alias"), label, &bd->nt) == -1)
    return -1;
  return 0;
}

/* VNC and SPICE only on 127.0.0.1, with a port chosen by libvirt; no
 * password, socket or other setting from the stored XML.
 */
static int
copy_graphics (struct build *bd, xmlNodePtr devs, xmlNodePtr src)
{
  _cleanup_xml_ xmlChar *type = prop (src, "type");
  xmlNodePtr n, l;

  if (type == NULL || (strcmp ((const char *) type, "vnc") != 0 &&
                       strcmp ((const char *) type, "spice") != 0))
    return note_changed (&bd->nt, "graphics of type '%s' dropped",
                         type ? (const char *) type : "");
  if ((n = new_child (devs, "graphics", NULL)) == NULL ||
      set_prop (n, "type", (const char *) type) == -1 ||
      set_prop (n, "autoport", "yes") == -1 ||
      (l = new_child (n, "listen", NULL)) == NULL ||
      set_prop (l, "type", "address") == -1 ||
      set_prop (l, "address", "127.0.0.1") == -1)
    return -1;
  return note_changed (&bd->nt, "graphics %s: listens on 127.0.0.1, port "
                       "chosen by libvirt, no other setting kept",
                       (const char *) type);
}

/* A random number generator reads /dev/urandom or QEMU's own. */
static int
copy_rng (struct build *bd, xmlNodePtr devs, xmlNodePtr src)
{
  xmlNodePtr backend = child (src, "backend"), n, b;
  _cleanup_xml_ xmlChar *model = prop (src, "model");
  _cleanup_xml_ xmlChar *bmodel = prop (backend, "model");
  _cleanup_xml_ xmlChar *path = backend ? xmlNodeGetContent (backend) : NULL;
  bool random;

  if (bmodel == NULL ||
      (strcmp ((const char *) bmodel, "random") != 0 &&
       strcmp ((const char *) bmodel, "builtin") != 0))
    return note_changed (&bd->nt, "rng with backend '%s' dropped",
                         bmodel ? (const char *) bmodel : "");
  random = strcmp ((const char *) bmodel, "random") == 0;
  if ((n = new_child (devs, "rng", NULL)) == NULL ||
      set_prop (n, "model", model ? (const char *) model : "virtio") == -1 ||
      (b = new_child (n, "backend", random ? "/dev/urandom" : NULL)) == NULL ||
      set_prop (b, "model", (const char *) bmodel) == -1)
    return -1;
  if (random && path && path[0] &&
      strcmp ((const char *) path, "/dev/urandom") != 0 &&
      note_changed (&bd->nt, "rng %s -> /dev/urandom",
                    (const char *) path) == -1)
    return -1;
  if (copy_children (n, src, rng_children, A ("backend", "alias"), "<rng>",
                     &bd->nt) == -1)
    return -1;
  return 0;
}

/* An emulated TPM keeps its state in libvirt's own directory, under the
 * new UUID; a passed-through host TPM goes.
 */
static int
copy_tpm (struct build *bd, xmlNodePtr devs, xmlNodePtr src)
{
  xmlNodePtr backend = child (src, "backend"), n, b;
  _cleanup_xml_ xmlChar *model = prop (src, "model");
  _cleanup_xml_ xmlChar *btype = prop (backend, "type");
  _cleanup_xml_ xmlChar *version = prop (backend, "version");

  if (btype == NULL || strcmp ((const char *) btype, "emulator") != 0)
    return note_changed (&bd->nt, "tpm with backend '%s' dropped",
                         btype ? (const char *) btype : "");
  if ((n = new_child (devs, "tpm", NULL)) == NULL ||
      (model && set_prop (n, "model", (const char *) model) == -1) ||
      (b = new_child (n, "backend", NULL)) == NULL ||
      set_prop (b, "type", "emulator") == -1 ||
      (version && set_prop (b, "version", (const char *) version) == -1))
    return -1;
  return 0;
}

static int
copy_devices (struct build *bd, xmlNodePtr dom, xmlNodePtr src)
{
  xmlNodePtr devs = new_child (dom, "devices", NULL);
  xmlNodePtr emu = src ? child (src, "emulator") : NULL;
  _cleanup_xml_ xmlChar *old = emu ? xmlNodeGetContent (emu) : NULL;
  _cleanup_free_ char *path = NULL;

  if (devs == NULL)
    return -1;
  path = bd->host->emulator (bd->host->opaque, bd->virt_type, bd->arch,
                             bd->machine);
  if (path == NULL)
    return -1;
  if (new_child (devs, "emulator", path) == NULL)
    return -1;
  if (old && strcmp ((const char *) old, path) != 0 &&
      note_changed (&bd->nt, "emulator %s -> %s", (const char *) old,
                    path) == -1)
    return -1;

  for (xmlNodePtr c = src ? src->children : NULL; c; c = c->next) {
    const struct xspec *cs;
    int r;

    if (c->type != XML_ELEMENT_NODE || is_elem (c, "emulator"))
      continue;
    if (is_elem (c, "disk"))
      r = copy_disk (bd, devs, c);
    else if (is_elem (c, "interface"))
      r = copy_interface (bd, devs, c);
    else if (is_elem (c, "serial") || is_elem (c, "console") ||
             is_elem (c, "parallel") || is_elem (c, "channel"))
      r = copy_chardev (bd, devs, c);
    else if (is_elem (c, "graphics"))
      r = copy_graphics (bd, devs, c);
    else if (is_elem (c, "rng"))
      r = copy_rng (bd, devs, c);
    else if (is_elem (c, "tpm"))
      r = copy_tpm (bd, devs, c);
    else if ((cs = find_spec (device_children, c)) != NULL)
      r = copy_elem (devs, c, cs, NULL, &bd->nt) ? 0 : -1;
    else
      r = drop_elem (&bd->nt, NULL, c);
    if (r == -1)
      return -1;
  }
  return 0;
}

/* "not restored, left out of the new domain: vdc; dropped: <hostdev> x2,
 * ...; serial file /tmp/x -> pty; ...", or NULL when nothing is worth
 * saying.
 */
static char *
format_notes (struct build *bd)
{
  _cleanup_free_ char *dropped = NULL;
  char *s = NULL, *t;

  for (size_t i = 0; i < bd->nt.n_dropped; i++) {
    _cleanup_free_ char *one =
      bd->nt.dropped[i].n > 1
      ? vv_printf ("%s x%u", bd->nt.dropped[i].what, bd->nt.dropped[i].n)
      : vv_strdup (bd->nt.dropped[i].what);
    if (one == NULL || append (&dropped, one) == -1)
      return NULL;
  }
  if (bd->nt.more) {
    _cleanup_free_ char *one = vv_printf ("%u more", bd->nt.more);
    if (one == NULL || append (&dropped, one) == -1)
      return NULL;
  }
  if (bd->left_out &&
      (s = vv_printf ("not restored, left out of the new domain: %s",
                      bd->left_out)) == NULL)
    return NULL;
  if (dropped) {
    t = vv_printf ("%s%sdropped: %s", s ? s : "", s ? "; " : "", dropped);
    free (s);
    if ((s = t) == NULL)
      return NULL;
  }
  if (bd->nt.changed) {
    t = vv_printf ("%s%s%s%s", s ? s : "", s ? "; " : "", bd->nt.changed,
                   bd->nt.truncated ? "; ..." : "");
    free (s);
    if ((s = t) == NULL)
      return NULL;
  }
  if (s == NULL)
    s = vv_strdup ("");         /* distinguishes "nothing" from ENOMEM */
  return s;
}

static void
build_clear (struct build *bd)
{
  free (bd->found);
  xmlFree (bd->virt_type);
  xmlFree (bd->arch);
  xmlFree (bd->machine);
  free (bd->left_out);
  notes_clear (&bd->nt);
}

int
vv_restore_new_domain_xml (const char *xml, const char *name,
                           const char *uuid,
                           const struct vv_new_domain_disk *disks, size_t n,
                           const struct vv_new_domain_host *host,
                           char **ret_xml, char **ret_notes)
{
  _cleanup_ (cleanup_doc) xmlDocPtr doc = NULL;
  _cleanup_ (cleanup_doc) xmlDocPtr out = NULL;
  _cleanup_free_ char *notes = NULL;
  struct build bd = { .disks = disks, .n = n, .host = host };
  xmlNodePtr root, dom, os = NULL, devices = NULL;
  xmlChar *text = NULL;
  size_t len = strlen (xml);
  int textlen = 0, ret = -1;

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
  /* libvirt never writes a DOCTYPE; its entities could only make the
   * text grow (xmlNodeGetContent expands them) or point elsewhere.
   */
  if (doc->intSubset || doc->extSubset) {
    vv_error ("the stored domain XML has a DOCTYPE, which libvirt never "
              "writes; it is not used");
    return -1;
  }
  root = xmlDocGetRootElement (doc);
  if (root == NULL || !is_elem (root, "domain")) {
    vv_error ("the stored domain XML has no <domain> root element");
    return -1;
  }
  bd.virt_type = (char *) prop (root, "type");
  if (bd.virt_type == NULL ||
      (strcmp (bd.virt_type, "kvm") != 0 &&
       strcmp (bd.virt_type, "qemu") != 0)) {
    vv_error ("the stored domain XML is of type '%s'; only 'kvm' and "
              "'qemu' domains can be restored as new",
              bd.virt_type ? bd.virt_type : "(none)");
    goto out;
  }
  if ((bd.found = calloc (n ? n : 1, sizeof *bd.found)) == NULL ||
      (out = xmlNewDoc ((const xmlChar *) "1.0")) == NULL ||
      (dom = xmlNewNode (NULL, (const xmlChar *) "domain")) == NULL) {
    nomem ();
    goto out;
  }
  xmlDocSetRootElement (out, dom);
  if (set_prop (dom, "type", bd.virt_type) == -1 ||
      new_child (dom, "name", name) == NULL ||
      new_child (dom, "uuid", uuid) == NULL)
    goto out;

  for (xmlNodePtr c = root->children; c; c = c->next) {
    const struct xspec *cs;

    if (c->type != XML_ELEMENT_NODE || is_elem (c, "name") ||
        is_elem (c, "uuid"))
      continue;
    if (is_elem (c, "os") || is_elem (c, "devices")) {
      xmlNodePtr *slot = is_elem (c, "os") ? &os : &devices;
      if (*slot) {
        vv_error ("the stored domain XML has two <%s> elements",
                  (const char *) c->name);
        goto out;
      }
      *slot = c;
      /* Made after the rest: <devices> needs what <os> says. */
      continue;
    }
    if ((cs = find_spec (domain_children, c)) != NULL) {
      if (copy_elem (dom, c, cs, NULL, &bd.nt) == NULL)
        goto out;
    }
    else if (drop_elem (&bd.nt, NULL, c) == -1)
      goto out;
  }
  if (os == NULL) {
    vv_error ("the stored domain XML has no <os> element");
    goto out;
  }
  if (copy_os (&bd, dom, os) == -1 || copy_devices (&bd, dom, devices) == -1)
    goto out;
  for (size_t k = 0; k < n; k++)
    if (!bd.found[k]) {
      vv_error ("the stored domain XML has no disk %s, but the backup has",
                disks[k].target);
      goto out;
    }

  if ((notes = format_notes (&bd)) == NULL)
    goto out;
  xmlDocDumpFormatMemory (out, &text, &textlen, 1);
  if (text == NULL) {
    nomem ();
    goto out;
  }
  *ret_xml = strndup ((const char *) text, textlen);
  xmlFree (text);
  if (*ret_xml == NULL) {
    nomem ();
    goto out;
  }
  if (notes[0] == '\0') {
    free (notes);
    notes = NULL;
  }
  *ret_notes = TAKE_PTR (notes);
  ret = 0;
 out:
  build_clear (&bd);
  return ret;
}
