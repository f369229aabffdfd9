/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pieces shared by restore and verify: the chain of a backup, fetching
 * an image from its target with its checksum checked, flattening a chain
 * into one image.
 */
#ifndef VV_RESTORE_INTERNAL_H
#define VV_RESTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "engine/engine.h"
#include "qcow2/qcow2.h"
#include "restore/restore.h"
#include "target/target.h"
#include "util/error.h"
#include "util/progress.h"

/* Reads from targets and local files are done in pieces of this size:
 * large enough that per-call overhead (a syscall, an HTTP range request)
 * does not show, small enough to keep a restore's memory flat.
 */
#define VV_RESTORE_BUF_SIZE (4 * 1024 * 1024)
/* vv_restore_fetch hashes one piece while it reads the next. */
#define VV_RESTORE_FETCH_BUF (2 * VV_RESTORE_BUF_SIZE)

/* Longest chain we follow; far beyond what any policy keeps, but stops a
 * parent_id loop in a damaged catalog.
 */
#define VV_RESTORE_CHAIN_MAX 4096

/* A backup and its ancestors through parent_id: v[0] is the backup
 * itself, v[n-1] the full that starts the chain.
 */
struct vv_restore_chain {
  struct vv_backup_rec **v;
  size_t n;
};

/* Loads the chain of top (which it takes over, even on failure).  Every
 * ancestor must be visible to owner_filter, completed and on the same
 * target.
 */
int vv_restore_chain_load (struct vv_engine *e, struct vv_backup_rec *top,
                           int64_t owner_filter,
                           struct vv_restore_chain *ret);
void vv_restore_chain_clear (struct vv_restore_chain *c);

/* Object names come from the catalog (and, after a rebuild, from
 * manifests on a target), and restore turns them into local paths: a
 * relative name without empty, "." or ".." components.
 */
int vv_restore_check_object (const char *backup_id, const char *object);
/* The last component of an object name ("vda.qcow2"), for messages. */
const char *vv_restore_object_base (const char *object);
/* The object a relative backing file name of object refers to (resolved
 * relative to object's directory), or NULL with an error.
 */
char *vv_restore_resolve_backing (const char *object, const char *backing);

/* Where image d of chain position idx leads, given the backing file name
 * its qcow2 header holds (backing_file, NULL if none): the chain is the
 * catalog's, so that name must be exactly the one the catalog recorded
 * (d->backing, "../<parent>/<file>"), which must be an image of the
 * parent backup c->v[idx + 1].  *ret is that image (and *ret_index its
 * position), or NULL for a standalone image.  A mismatch is an error
 * naming both; target names the target in it.
 */
int vv_restore_chain_backing (const struct vv_restore_chain *c, size_t idx,
                              const struct vv_disk_rec *d,
                              const char *target, const char *backing_file,
                              const struct vv_disk_rec **ret,
                              size_t *ret_index);

/* Writes all of buf at offset of fd, a file of a restore named path in
 * errors (vv_restore_write_failed).
 */
int vv_restore_pwrite (int fd, const void *buf, size_t count,
                       uint64_t offset, const char *path);
/* A vv_qcow2_read_fn over a local file: opaque points to its descriptor
 * (an int).  Reads until count bytes or the end of the file.
 */
int64_t vv_restore_pread_fd (void *opaque, void *buf, size_t count,
                             uint64_t offset);

/* A second descriptor of the output out_fd that bypasses the page cache,
 * or -1 where the file system has no O_DIRECT (tmpfs, some FUSE).
 */
int vv_restore_open_direct (int out_fd);
/* Writes all of buf at offset of fd, a descriptor from
 * vv_restore_open_direct.  1 when written, 0 when the file system
 * refused O_DIRECT for it (EINVAL before any byte: write it another
 * way), -1 with errno set on failure (nothing reported).
 */
int vv_restore_pwrite_direct (int fd, const void *buf, size_t len,
                              uint64_t offset);
/* A vv_qcow2_write_fn writing one after the other into a restored file. */
struct vv_restore_out_stream {
  int fd;
  const char *path;
  uint64_t off;
};
int vv_restore_write_stream (void *opaque, const void *buf, size_t count);

/* Reports a failed write of path, a file of a restore; a full file
 * system is named by the directory the user chose (the one holding the
 * staging directory), with what to do.  Returns -1.
 */
int vv_restore_write_failed (int err, const char *path);

/* Opens the target named in the catalog (its URL and params). */
struct vv_target *vv_restore_open_target (struct vv_engine *e,
                                          const char *name);

/* Streams the image d of backup backup_id from t, checking its stored
 * size and sha256 against the record; writes it to fd from offset 0
 * (path names fd in errors) unless fd is -1.  buf is scratch space of
 * VV_RESTORE_FETCH_BUF bytes.  Adds the bytes read to p.
 */
int vv_restore_fetch (struct vv_target *t, const char *backup_id,
                      const struct vv_disk_rec *d, int fd, const char *path,
                      void *buf, struct vv_progress *p);
/* vv_restore_fetch without writing, that also checks every block of the
 * image against want (the parsed sidecar of d), hashing the blocks on
 * the same thread as the sha256.  A block that differs is named.
 */
struct vv_block_digests;
int vv_restore_fetch_check_blocks (struct vv_target *t,
                                   const char *backup_id,
                                   const struct vv_disk_rec *d,
                                   const struct vv_block_digests *want,
                                   void *buf, struct vv_progress *p);

/* Largest stored domain XML read back (libvirt's are a few KiB). */
#define VV_DOMAIN_XML_STORED_MAX (4 * 1024 * 1024)
/* Checks the domain XML read back for backup b (xml, len bytes) against
 * the sha256 the catalog recorded for it; one without a record (made
 * before digests were recorded) passes.
 */
int vv_restore_check_domain_xml (const struct vv_backup_rec *b,
                                 const char *xml, size_t len);

/* ---- pieces shared by the restore modes (restore.c, produce.c) ---- */

/* Disk names become file names; libvirt's target devs are short. */
#define VV_DISK_NAME_MAX 64
/* Longest directory or disk path accepted (PATH_MAX). */
#define VV_RESTORE_DIR_MAX 4096
/* Private directories a restore works in start with this. */
#define VV_RESTORE_STAGING_PREFIX ".virtvault-restore-"

/* The backup to restore: visible to owner_filter, completed, with sane
 * disk names.
 */
struct vv_backup_rec *vv_restore_get_backup (struct vv_engine *e,
                                             const char *backup_id,
                                             int64_t owner_filter);
/* The disks of b named in names (NULL-terminated; NULL means all of
 * them), in the backup's order.  Unknown and repeated names are refused.
 */
int vv_restore_select_disks (const struct vv_backup_rec *b,
                             const char *const *names,
                             const struct vv_disk_rec ***ret,
                             size_t *ret_n);
/* The directory part of path ("/" for "/x"). */
char *vv_restore_parent_of (const char *path);
/* Fails unless the daemon can create a file in dir (root passes
 * permission checks, so this is what finds read-only mounts and NFS root
 * squashing).  what names dir in the message.
 */
int vv_restore_probe_writable (const char *dir, const char *what);
/* "qcow2" (also for NULL) or "raw", else VV_ERR_INVALID. */
int vv_restore_get_format (const char *format, const char **ret);

/* Where the images of a restore come from: the chain, its target, a
 * buffer, the job's progress.
 */
struct vv_restore_src {
  struct vv_restore_chain chain;
  struct vv_target *target;
  void *buf;                    /* VV_RESTORE_FETCH_BUF bytes */
  struct vv_progress *p;
};
/* Loads the chain of top (taken over, even on failure) and opens its
 * target.
 */
int vv_restore_src_open (struct vv_engine *e, struct vv_backup_rec *top,
                         int64_t owner_filter, struct vv_progress *p,
                         struct vv_restore_src *ret);
void vv_restore_src_close (struct vv_restore_src *s);
/* VV_ERR_CANCELLED once the job is cancelled. */
int vv_restore_cancelled (struct vv_restore_src *s);

struct vv_restore_image;

/* One disk to produce: its chain downloaded into staging (or, on a
 * target with local files, read where it is) and made into one
 * standalone file of format.
 */
struct vv_restore_disk {
  const struct vv_disk_rec *d;  /* the disk in chain.v[0] */
  const char *format;           /* "qcow2" or "raw" */
  const char *staging;          /* an existing private directory */
  char *out;                    /* result: staging/<name>.<format>, or the
                                   downloaded image itself; mode 0600,
                                   synced */
  /* Private to produce.c. */
  size_t est_len;               /* images expected along parent_id */
  uint64_t est_bytes;
  uint64_t est_fetched;         /* of est_bytes, downloaded */
  uint64_t flatten_total;       /* added to the progress total for
                                   flattening */
  size_t chain_len;             /* images actually in its backing chain */
  uint64_t chain_bytes;
  char *top;                    /* downloaded top image */
  bool local;                   /* read in place from a local target */
  bool ranged;                  /* read with ranged reads (ranged.c) */
  struct vv_restore_image *imgs;  /* the chain, top first, open */
};
void vv_restore_disk_clear (struct vv_restore_disk *w);

/* An image of a disk's chain, open read-only: downloaded into staging
 * (its sha256 already checked), or, on a target with local files
 * (vv_target_has_local), the stored object itself.
 */
struct vv_restore_image {
  int fd;
  const struct vv_disk_rec *d;
  const char *backup_id;        /* the backup d belongs to */
  /* Set by the hashing threads (local.c). */
  bool cancelled;
  char *error;                  /* why the image is refused */
};
void vv_restore_image_clear (struct vv_restore_image *l);

/* Chains longer than this are refused: every image is open at once. */
#define VV_RESTORE_OPEN_MAX 512

/* flatten.c: writes the guest view of the chain v[0..n) (top first) as
 * one standalone image of format ("qcow2" or "raw") to out_fd, an empty
 * file (out_path names it in errors).  Raw output is sparse.  Each
 * image's file size and header virtual size must be its record's (v[k].d:
 * stored_bytes, virtual_size), so the output is the size the catalog
 * recorded for the top image.  what names the disk in errors; progress
 * is reported as a share of weight bytes; buf is VV_RESTORE_BUF_SIZE
 * bytes of scratch.  Fails with VV_ERR_CANCELLED when p is cancelled.
 */
int vv_restore_flatten (const struct vv_restore_image *v, size_t n,
                        const char *format, int out_fd, const char *out_path,
                        const char *what, uint64_t weight,
                        struct vv_progress *p, void *buf);

/* local.c: opens image d of chain position idx where it is stored into
 * *ret and checks its size and qcow2 structure; *ret_info says what its
 * header holds.  Its sha256 is checked later, by
 * vv_restore_local_flatten.
 */
int vv_restore_local_open (struct vv_restore_src *s, size_t idx,
                           const struct vv_disk_rec *d,
                           struct vv_restore_image *ret,
                           struct vv_qcow2_info *ret_info);
/* Flattens w's chain (w->imgs, w->chain_len of them) to out_fd while
 * other threads hash every image; fails, saying which image is corrupt,
 * unless every sha256 matched the catalog.
 */
int vv_restore_local_flatten (struct vv_restore_src *s,
                              struct vv_restore_disk *w, int out_fd,
                              const char *what);
/* produce.c: creates w->out (staging/<disk>.<format>, 0600, a new file)
 * and *ret_what, the disk named for errors.  Returns its descriptor.
 */
int vv_restore_create_out (struct vv_restore_src *s,
                           struct vv_restore_disk *w, char **ret_what);
/* ranged.c: makes w->out from the point read with ranged reads of only
 * the blocks it needs (point.h), adding its data bytes to the progress
 * total.
 */
int vv_restore_ranged_produce (struct vv_restore_src *s,
                               struct vv_restore_disk *w);
/* Counts every disk in the progress total, then downloads and produces
 * each.  Several disks may share a staging directory.
 */
int vv_restore_produce (struct vv_restore_src *s, struct vv_restore_disk *w,
                        size_t n);

/* restore.c: the restore to a directory, also for as-new.  A DIR it
 * creates gets dir_mode; *ret_created (may be NULL) tells whether it did.
 * On failure nothing it wrote is left.
 */
int vv_restore_dir_run (struct vv_engine *e,
                        const struct vv_restore_request *req,
                        unsigned dir_mode, struct vv_progress *p,
                        bool *ret_created);
/* restore-inplace.c: records durably, in the restore journal directory
 * (<state>/restore/), the staging directory a restore to a directory is
 * about to make (dir_created: the restore made its directory), so that a
 * daemon stopped before removing it removes it at the next start
 * (vv_restore_in_place_recover).  *ret_path is the record.
 */
int vv_restore_staging_record (struct vv_engine *e, const char *backup_id,
                               const char *staging, bool dir_created,
                               char **ret_path);
/* Removes the record (once its staging directory is gone) and frees
 * path; NULL does nothing.
 */
void vv_restore_staging_forget (char *path);
/* Appends a disk and its file to info. */
int vv_restore_info_add_disk (struct vv_restore_info *info,
                              const char *disk, const char *file);

/* restore-inplace.c, restore-newdomain.c: the checks of the mode, and
 * what it will do (ret may be NULL).
 */
int vv_restore_in_place_plan (struct vv_engine *e,
                              const struct vv_restore_request *req,
                              struct vv_restore_info *ret);
int vv_restore_as_new_plan (struct vv_engine *e,
                            const struct vv_restore_request *req,
                            struct vv_restore_info *ret);

/* newdomain-xml.c: the definition of a domain restored as a new one. */
struct vv_new_domain_disk {
  const char *target;           /* "vda" */
  const char *path;             /* the restored image */
  const char *format;           /* its format */
};
/* What the host has, asked while the new definition is made (tests pass
 * their own answers).  opaque is passed to each.
 */
struct vv_new_domain_host {
  /* The host's emulator binary for a domain of virt_type ("kvm",
   * "qemu"), arch and machine (NULL: the default one); NULL with an
   * error if there is none.
   */
  char *(*emulator) (void *opaque, const char *virt_type, const char *arch,
                     const char *machine);
  /* 1 if the libvirt network / Linux bridge exists here, 0 if not, -1
   * with an error.
   */
  int (*network_exists) (void *opaque, const char *name);
  int (*bridge_exists) (void *opaque, const char *name);
  void *opaque;
};
/* A definition built from the safe parts of the stored domain XML (an
 * untrusted input, see docs/restore.md): name and uuid given, each disk
 * of disks a file at its path, other disks left out, cdroms and floppies
 * empty, the host's emulator, no namespaced element, seclabel, hostdev,
 * filesystem or other host resource; interfaces only on networks and
 * bridges that exist (new MACs), character devices as ptys, graphics on
 * 127.0.0.1.  *ret_notes says what was left out, dropped or changed
 * (NULL if nothing).
 */
int vv_restore_new_domain_xml (const char *xml, const char *name,
                               const char *uuid,
                               const struct vv_new_domain_disk *disks,
                               size_t n,
                               const struct vv_new_domain_host *host,
                               char **ret_xml, char **ret_notes);

/* Keeps the current error across cleanup that may overwrite it. */
struct vv_saved_error {
  enum vv_errcode code;
  char *message;
};
void vv_restore_save_error (struct vv_saved_error *s);
void vv_restore_restore_error (struct vv_saved_error *s);

#endif
