/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the engine needs to know about a live libvirt domain: its disks
 * (parsed from the live XML with libxml2 XPath), whether each can be
 * backed up, and the DAC identity its QEMU process runs as.  Also the
 * libvirt connection and domain lookup helpers with user-facing errors.
 */
#ifndef VV_ENGINE_DOMAIN_H
#define VV_ENGINE_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <libvirt/libvirt.h>

/* Largest domain XML we parse. */
#define VV_DOMAIN_XML_MAX (16 * 1024 * 1024)
/* Most disks we look at in one domain (the XML can list more; we refuse). */
#define VV_DOMAIN_DISKS_MAX 256

struct vv_domain_disk {
  char *target;                 /* <target dev>, "vda" */
  char *device;                 /* disk | cdrom | floppy | lun */
  char *type;                   /* <disk type>: file | block | volume | network | dir */
  char *source;                 /* file/dev path, "pool/volume", protocol:name; NULL if none */
  char *driver_type;            /* <driver type>, "qcow2", "raw"; may be NULL */
  char *alias;                  /* <alias name>, "virtio-disk0"; may be NULL */
  char *bus;                    /* <target bus>; may be NULL */
  bool readonly;
  bool shareable;
  unsigned boot_order;          /* <boot order>, 0 if none */
};

struct vv_domain_info {
  char *name;
  char *uuid;
  size_t n_disks;
  struct vv_domain_disk *disks;
  /* <seclabel model='dac'><label>, "+64055:+64055"; NULL if absent. */
  char *dac_label;
};

/* Parses a domain XML document (live or inactive). */
struct vv_domain_info *vv_domain_info_parse (const char *xml);
struct vv_domain_info *vv_domain_info_free (struct vv_domain_info *info);

/* The disk with this target dev, or NULL. */
const struct vv_domain_disk *
vv_domain_info_find_disk (const struct vv_domain_info *info,
                          const char *target);

/* NULL if the disk can be backed up, else why not ("cdrom", "shareable",
 * "network disk (not supported yet)"), short enough for a note.
 */
const char *vv_domain_disk_ineligible (const struct vv_domain_disk *d);

/* True if the disk can carry a checkpoint bitmap (qcow2 images only). */
bool vv_domain_disk_can_checkpoint (const struct vv_domain_disk *d);

/* The uid:gid the domain's QEMU runs as: from the DAC seclabel, else the
 * "libvirt-qemu" user.  -1 with an error when neither is known.
 */
int vv_domain_qemu_ids (const struct vv_domain_info *info,
                        uid_t *ret_uid, gid_t *ret_gid);

/* Opens a connection (libvirt's own error printing is silenced once for
 * the process).  VV_ERR_UNAVAILABLE when libvirtd can not be reached.
 */
virConnectPtr vv_libvirt_open (const char *uri);
/* libvirt's last error message of this thread, or "unknown error". */
const char *vv_libvirt_error (void);
/* libvirt's last error code of this thread (VIR_ERR_OK if none). */
int vv_libvirt_error_code (void);

/* Looks a domain up by UUID or name.  VV_ERR_NOT_FOUND "no domain named
 * 'x' on qemu:///system (see 'virsh list --all')".
 */
virDomainPtr vv_domain_lookup (virConnectPtr conn, const char *uri,
                               const char *name_or_uuid);

/* The live XML of a domain, parsed; what names it in errors. */
struct vv_domain_info *vv_domain_get_info (virDomainPtr dom,
                                           const char *what,
                                           unsigned int flags);

/* Cleanup helpers. */
static inline void
vv_cleanup_vir_conn (virConnectPtr *c)
{
  if (*c)
    virConnectClose (*c);
}
#define _cleanup_vir_conn_ __attribute__ ((cleanup (vv_cleanup_vir_conn)))
static inline void
vv_cleanup_vir_domain (virDomainPtr *d)
{
  if (*d)
    virDomainFree (*d);
}
#define _cleanup_vir_domain_ __attribute__ ((cleanup (vv_cleanup_vir_domain)))
static inline void
vv_cleanup_domain_info (struct vv_domain_info **i)
{
  vv_domain_info_free (*i);
}
#define _cleanup_domain_info_ \
  __attribute__ ((cleanup (vv_cleanup_domain_info)))

#endif
