/* Pieces shared by restore and verify: the chain of a backup, fetching
 * an image from its target with its checksum checked, and qemu-img.
 */
#ifndef VV_RESTORE_INTERNAL_H
#define VV_RESTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "engine/engine.h"
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

/* The disk record of v[from..] whose object is name; NULL if none. */
const struct vv_disk_rec *
vv_restore_chain_find (const struct vv_restore_chain *c, size_t from,
                       const char *object, size_t *ret_index);

/* Object names come from the catalog (and, after a rebuild, from
 * manifests on a target), and restore turns them into local paths: a
 * relative name without empty, "." or ".." components.
 */
int vv_restore_check_object (const char *backup_id, const char *object);
/* The last component of an object name ("vda.qcow2"), for messages. */
const char *vv_restore_object_base (const char *object);
/* The object a backing file name stored in object's qcow2 header refers
 * to (resolved relative to object's directory), or NULL with an error.
 */
char *vv_restore_resolve_backing (const char *object, const char *backing);

/* Opens the target named in the catalog (its URL and params). */
struct vv_target *vv_restore_open_target (struct vv_engine *e,
                                          const char *name);

/* Streams the image d of backup backup_id from t, checking its stored
 * size and sha256 against the record; writes it to fd (path names fd in
 * errors) unless fd is -1.  buf is scratch space of
 * VV_RESTORE_FETCH_BUF bytes.  Adds the bytes read to p.
 */
int vv_restore_fetch (struct vv_target *t, const char *backup_id,
                      const struct vv_disk_rec *d, int fd, const char *path,
                      void *buf, struct vv_progress *p);

/* qemu-img convert -O format src dst.  what names the image in errors.
 * Progress is reported as a share of weight bytes.  Kills qemu-img and
 * fails with VV_ERR_CANCELLED when p is cancelled.
 */
int vv_restore_convert (const char *what, const char *src, const char *dst,
                        const char *format, uint64_t weight,
                        struct vv_progress *p);

/* Keeps the current error across cleanup that may overwrite it. */
struct vv_saved_error {
  enum vv_errcode code;
  char *message;
};
void vv_restore_save_error (struct vv_saved_error *s);
void vv_restore_restore_error (struct vv_saved_error *s);

#endif
