/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Rebuilding the catalog from a target: every complete backup a target
 * holds is described by its manifest, so the catalog can be made again
 * from them (docs/storage-format.md, "Rebuilding the catalog from
 * targets").
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine-internal.h"
#include "engine/manifest.h"
#include "target/target.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

#define MANIFEST_NAME "manifest.json"
/* The owner of a backup of an instance the catalog does not know: root,
 * so only the administrators see it until it is assigned
 * (docs/catalog.md, "Owners").
 */
#define ADMINS_UID 0

enum state {
  PENDING,                      /* not decided yet */
  WALKING,                      /* on the path being resolved */
  ACCEPTED,                     /* to be imported */
  KNOWN,                        /* in the catalog already */
  SKIPPED,
};

struct entry {
  char *object;                 /* the manifest's name on the target */
  struct vv_backup_rec *b;      /* NULL when unreadable or invalid */
  enum state state;
  unsigned pos;                 /* chain position, once accepted or known */
};

struct import {
  struct vv_engine *e;
  const char *target;
  struct vv_target *t;
  struct entry *v;
  size_t n, cap;
  size_t listed;                /* objects the target listed */
  size_t kept;                  /* bytes of the records in v */
  struct entry **by_id;         /* readable entries, sorted by backup id */
  size_t n_by_id;
  struct vv_import_result res;
};

void
vv_import_result_clear (struct vv_import_result *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_reported; i++) {
    free (r->skipped[i].object);
    free (r->skipped[i].reason);
  }
  free (r->skipped);
  memset (r, 0, sizeof *r);
}

/* Is name <uuid>/<chain-id>/<backup-id>/manifest.json? */
static bool
is_manifest_path (const char *name)
{
  const char *p1 = strchr (name, '/'), *p2, *p3;
  char id[VV_ID_MAX];
  size_t len;

  if (p1 == NULL || !vv_is_uuid (name, p1 - name)
      || (p2 = strchr (p1 + 1, '/')) == NULL
      || (p3 = strchr (p2 + 1, '/')) == NULL
      || strcmp (p3 + 1, MANIFEST_NAME) != 0)
    return false;
  len = p2 - (p1 + 1);
  if (len >= sizeof id)
    return false;
  memcpy (id, p1 + 1, len);
  id[len] = '\0';
  if (!vv_is_id ("ch", id))
    return false;
  len = p3 - (p2 + 1);
  if (len >= sizeof id)
    return false;
  memcpy (id, p2 + 1, len);
  id[len] = '\0';
  return vv_is_id ("bk", id);
}

/* Records a skipped manifest: every one is counted, the first
 * VV_IMPORT_MAX_REPORTED are kept with their reason.
 */
static int
skip (struct import *im, struct entry *en, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static int
skip (struct import *im, struct entry *en, const char *fmt, ...)
{
  struct vv_import_result *r = &im->res;
  struct vv_import_skip *s;
  va_list ap;
  char *reason;
  int len;

  en->state = SKIPPED;
  r->n_skipped++;
  if (r->n_reported >= VV_IMPORT_MAX_REPORTED)
    return 0;
  if (r->skipped == NULL) {
    r->skipped = calloc (VV_IMPORT_MAX_REPORTED, sizeof *r->skipped);
    if (r->skipped == NULL) {
      vv_error_errno (errno, "importing target '%s'", im->target);
      return -1;
    }
  }
  va_start (ap, fmt);
  len = vasprintf (&reason, fmt, ap);
  va_end (ap);
  if (len < 0) {
    vv_error_errno (ENOMEM, "importing target '%s'", im->target);
    return -1;
  }
  s = &r->skipped[r->n_reported];
  s->reason = reason;
  s->object = vv_strdup (en->object);
  if (s->object == NULL) {
    free (reason);
    s->reason = NULL;
    return -1;
  }
  r->n_reported++;
  return 0;
}

static int
add_entry (struct import *im, const char *name)
{
  if (im->n == im->cap) {
    size_t ncap = im->cap ? im->cap * 2 : 64;
    struct entry *nv = reallocarray (im->v, ncap, sizeof *nv);

    if (nv == NULL) {
      vv_error_errno (errno, "listing target '%s'", im->target);
      return -1;
    }
    im->v = nv;
    im->cap = ncap;
  }
  memset (&im->v[im->n], 0, sizeof im->v[im->n]);
  if ((im->v[im->n].object = vv_strdup (name)) == NULL)
    return -1;
  im->n++;
  return 0;
}

/* The list callback: keeps every name ending in manifest.json (those not
 * at <uuid>/<chain-id>/<backup-id>/ are reported, so a target whose URL
 * is one directory off does not import nothing silently).
 */
static int
collect (void *opaque, const char *name, uint64_t size)
{
  struct import *im = opaque;
  const char *base = strrchr (name, '/');

  (void) size;
  if (++im->listed > VV_IMPORT_MAX_OBJECTS) {
    vv_error_code (VV_ERR_INVALID, "target '%s' holds more than %d objects; "
                   "an import reads at most that many", im->target,
                   VV_IMPORT_MAX_OBJECTS);
    return -1;
  }
  if (strcmp (base ? base + 1 : name, MANIFEST_NAME) != 0)
    return 0;
  if (im->n >= VV_IMPORT_MAX_MANIFESTS) {
    vv_error_code (VV_ERR_INVALID, "target '%s' holds more than %d "
                   "manifests; an import reads at most that many",
                   im->target, VV_IMPORT_MAX_MANIFESTS);
    return -1;
  }
  return add_entry (im, name);
}

static int
cmp_object (const void *a, const void *b)
{
  return strcmp (((const struct entry *) a)->object,
                 ((const struct entry *) b)->object);
}

static size_t
str_bytes (const char *s)
{
  /* With what malloc adds to each block. */
  return s ? strlen (s) + 1 + 16 : 0;
}

/* About what a record takes in memory. */
static size_t
record_bytes (const struct vv_backup_rec *b)
{
  const char *const s[] = {
    b->id, b->domain, b->domain_uuid, b->type, b->status, b->chain_id,
    b->parent_id, b->created_at, b->completed_at, b->target, b->reason,
    b->notes, b->error, b->checkpoint, b->prefix, b->job_id,
    b->checkpoint_xml, b->origin, b->policy,
  };
  size_t n = sizeof *b + b->n_disks * sizeof *b->disks;

  for (size_t i = 0; i < sizeof s / sizeof *s; i++)
    n += str_bytes (s[i]);
  for (size_t i = 0; i < b->n_disks; i++)
    n += str_bytes (b->disks[i].name) + str_bytes (b->disks[i].sha256)
      + str_bytes (b->disks[i].format) + str_bytes (b->disks[i].object)
      + str_bytes (b->disks[i].backing)
      + str_bytes (b->disks[i].blocks_object)
      + str_bytes (b->disks[i].blocks_sha256);
  return n;
}

/* Reads and checks one manifest; a bad one is skipped with the reason.
 * The text is freed before the next is read: an import holds one
 * manifest at a time, and of each the record it became.
 */
static int
read_entry (struct import *im, struct entry *en)
{
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ char *prefix = NULL;
  size_t len;
  struct vv_backup_rec *b;

  if (!is_manifest_path (en->object))
    return skip (im, en, "not at <domain-uuid>/<chain-id>/<backup-id>/"
                 MANIFEST_NAME " (is the target's URL the directory that "
                 "holds the domain UUIDs?)");
  if (vv_target_read_all (im->t, en->object, VV_MANIFEST_MAX, &text,
                          &len) == -1) {
    /* An unreachable target would fail every read: stop at the first. */
    if (vv_get_error_code () == VV_ERR_UNAVAILABLE) {
      vv_error_prefix ("importing target '%s': ", im->target);
      return -1;
    }
    return skip (im, en, "%s", vv_get_error ());
  }
  b = vv_manifest_read (en->object, text, len);
  if (b == NULL)
    return skip (im, en, "%s", vv_get_error ());
  prefix = vv_backup_prefix (b->domain_uuid, b->chain_id, b->id);
  if (prefix == NULL) {
    vv_backup_rec_free (b);
    return -1;
  }
  if (strncmp (en->object, prefix, strlen (prefix)) != 0
      || strcmp (en->object + strlen (prefix), MANIFEST_NAME) != 0) {
    int r = skip (im, en, "the manifest describes backup %s of chain %s of "
                  "domain %s, which belongs at %s" MANIFEST_NAME,
                  b->id, b->chain_id, b->domain_uuid, prefix);
    vv_backup_rec_free (b);
    return r;
  }
  /* Who made it where, in the manifest's words: anyone who can write to
   * the target chooses them, and the catalog keeps neither.
   */
  free (b->owner_name);
  free (b->host_id);
  b->owner_name = b->host_id = NULL;
  im->kept += record_bytes (b);
  if (im->kept > VV_IMPORT_MAX_KEPT) {
    vv_backup_rec_free (b);
    vv_error_code (VV_ERR_INVALID, "the manifests on target '%s' describe "
                   "more than %d MiB of backup records; an import holds "
                   "at most that much", im->target,
                   VV_IMPORT_MAX_KEPT / (1024 * 1024));
    return -1;
  }
  en->b = b;
  return 0;
}

/* Sets the state of a readable entry from what the catalog holds. */
static int
check_catalog (struct import *im, struct entry *en)
{
  struct vv_catalog *c = im->e->catalog;
  const struct vv_backup_rec *b = en->b;
  struct vv_backup_rec *old;
  struct vv_chain_rec *ch;
  int r = 0;

  old = vv_catalog_backup_get (c, b->id, VV_OWNER_ANY);
  if (old) {
    if (strcmp (old->target, im->target) == 0) {
      en->state = KNOWN;
      en->pos = old->chain_pos;
      im->res.known++;
    }
    else
      r = skip (im, en, "backup %s is in the catalog on target '%s'",
                b->id, old->target);
    vv_backup_rec_free (old);
    return r;
  }
  if (vv_get_error_code () != VV_ERR_NOT_FOUND)
    return -1;
  vv_clear_error ();

  ch = vv_catalog_chain_get (c, b->chain_id, VV_OWNER_ANY);
  if (ch) {
    if (strcmp (ch->target, im->target) != 0)
      r = skip (im, en, "its chain %s is in the catalog on target '%s'",
                b->chain_id, ch->target);
    else if (strcmp (ch->domain_uuid, b->domain_uuid) != 0)
      r = skip (im, en, "its chain %s belongs to domain %s in the catalog",
                b->chain_id, ch->domain_uuid);
    else if (b->parent_id == NULL && ch->full_id
             && strcmp (ch->full_id, b->id) != 0)
      r = skip (im, en, "its chain %s already has the full backup %s",
                b->chain_id, ch->full_id);
    vv_chain_rec_free (ch);
    return r;
  }
  if (vv_get_error_code () != VV_ERR_NOT_FOUND)
    return -1;
  vv_clear_error ();
  return 0;
}

static int
cmp_id (const void *a, const void *b)
{
  const struct entry *x = *(struct entry *const *) a;
  const struct entry *y = *(struct entry *const *) b;

  return strcmp (x->b->id, y->b->id);
}

/* The chain, then age: a chain's full comes first among its own. */
static int
cmp_chain (const void *a, const void *b)
{
  const struct entry *x = *(struct entry *const *) a;
  const struct entry *y = *(struct entry *const *) b;
  int r = strcmp (x->b->chain_id, y->b->chain_id);

  if (r == 0)
    r = strcmp (x->b->created_at, y->b->created_at);
  return r ? r : strcmp (x->b->id, y->b->id);
}

static struct entry *
find_id (struct import *im, const char *id)
{
  struct vv_backup_rec key = { .id = (char *) id };
  struct entry ke = { .b = &key }, *kp = &ke, **found;

  found = bsearch (&kp, im->by_id, im->n_by_id, sizeof *im->by_id, cmp_id);
  return found ? *found : NULL;
}

/* What only the set of manifests shows: one backup stored twice, one
 * chain under two domains or with two fulls.  The copies in question are
 * skipped rather than guessed between.
 */
static int
check_set (struct import *im)
{
  _cleanup_free_ struct entry **v = NULL;
  size_t n = im->n_by_id, i, j;

  for (i = 0; i < n; i = j) {
    for (j = i + 1; j < n && cmp_id (&im->by_id[i], &im->by_id[j]) == 0; j++)
      ;
    for (size_t k = i; j - i > 1 && k < j; k++)
      if (im->by_id[k]->state == PENDING
          && skip (im, im->by_id[k], "the target holds backup %s more than "
                   "once (also at %s)", im->by_id[k]->b->id,
                   im->by_id[k == i ? i + 1 : i]->object) == -1)
        return -1;
  }

  if (n == 0)
    return 0;
  v = malloc (n * sizeof *v);
  if (v == NULL) {
    vv_error_errno (errno, "importing target '%s'", im->target);
    return -1;
  }
  memcpy (v, im->by_id, n * sizeof *v);
  qsort (v, n, sizeof *v, cmp_chain);
  for (i = 0; i < n; i = j) {
    const char *uuid = NULL, *full = NULL;
    bool mixed = false;

    for (j = i; j < n && strcmp (v[j]->b->chain_id, v[i]->b->chain_id) == 0;
         j++) {
      /* Another target's copy (skipped above) says nothing of this one. */
      if (v[j]->state == SKIPPED)
        continue;
      if (uuid == NULL)
        uuid = v[j]->b->domain_uuid;
      mixed |= strcmp (v[j]->b->domain_uuid, uuid) != 0;
    }
    for (size_t k = i; k < j; k++) {
      struct entry *en = v[k];
      int r = 0;

      if (en->b->parent_id == NULL && en->state != SKIPPED) {
        if (full && en->state == PENDING)
          r = skip (im, en, "its chain %s has an older full backup, %s",
                    en->b->chain_id, full);
        else if (full == NULL)
          full = en->b->id;
      }
      if (r == 0 && mixed && en->state == PENDING)
        r = skip (im, en, "its chain %s is stored under more than one "
                  "domain UUID", en->b->chain_id);
      if (r == -1)
        return -1;
    }
  }
  return 0;
}

/* Decides an entry whose parent (in the set, or not there) is decided. */
static int
decide (struct import *im, struct entry *en)
{
  const struct vv_backup_rec *b = en->b;
  struct vv_backup_rec *cp;
  struct entry *p;
  int r;

  if (b->parent_id == NULL) {
    en->state = ACCEPTED;
    en->pos = 0;
    return 0;
  }
  p = find_id (im, b->parent_id);
  if (p) {
    if (p->state == WALKING)
      return skip (im, en, "its parents form a loop (through %s)",
                   b->parent_id);
    if (p->state == SKIPPED)
      return skip (im, en, "its parent %s was skipped", b->parent_id);
    if (strcmp (p->b->chain_id, b->chain_id) != 0)
      return skip (im, en, "its parent %s belongs to chain %s, not %s",
                   b->parent_id, p->b->chain_id, b->chain_id);
    if (strcmp (b->created_at, p->b->created_at) < 0)
      return skip (im, en, "it is older than its parent %s", b->parent_id);
    en->state = ACCEPTED;
    en->pos = p->pos + 1;
    return 0;
  }

  cp = vv_catalog_backup_get (im->e->catalog, b->parent_id, VV_OWNER_ANY);
  if (cp == NULL) {
    if (vv_get_error_code () != VV_ERR_NOT_FOUND)
      return -1;
    vv_clear_error ();
    return skip (im, en, "its parent %s is neither in the catalog nor on "
                 "target '%s'", b->parent_id, im->target);
  }
  if (strcmp (cp->target, im->target) != 0)
    r = skip (im, en, "its parent %s is in the catalog on target '%s'",
              b->parent_id, cp->target);
  else if (strcmp (cp->chain_id, b->chain_id) != 0)
    r = skip (im, en, "its parent %s belongs to chain %s, not %s",
              b->parent_id, cp->chain_id, b->chain_id);
  else if (strcmp (cp->status, "completed") != 0)
    r = skip (im, en, "its parent %s is %s in the catalog", b->parent_id,
              cp->status);
  else if (strcmp (b->created_at, cp->created_at) < 0)
    r = skip (im, en, "it is older than its parent %s", b->parent_id);
  else {
    en->state = ACCEPTED;
    en->pos = cp->chain_pos + 1;
    r = 0;
  }
  vv_backup_rec_free (cp);
  return r;
}

/* Parents before children without recursion: walk up from en through
 * the undecided entries of the set, then decide them top down.
 */
static int
resolve (struct import *im, struct entry *en, struct entry **path)
{
  size_t n = 0;

  while (en && en->state == PENDING) {
    en->state = WALKING;
    path[n++] = en;
    if (en->b->parent_id == NULL)
      break;
    en = find_id (im, en->b->parent_id);
  }
  while (n > 0) {
    struct entry *top = path[--n];

    top->state = PENDING;
    if (decide (im, top) == -1)
      return -1;
  }
  return 0;
}

/* Oldest first, a parent before its incrementals even within a second:
 * the order the backups were made in, so the catalog lists them as before.
 */
static int
cmp_insert (const void *a, const void *b)
{
  const struct vv_backup_rec *x = *(struct vv_backup_rec *const *) a;
  const struct vv_backup_rec *y = *(struct vv_backup_rec *const *) b;
  int r = strcmp (x->created_at, y->created_at);

  if (r == 0)
    r = (x->chain_pos > y->chain_pos) - (x->chain_pos < y->chain_pos);
  return r ? r : strcmp (x->id, y->id);
}

/* Whose an imported backup is: the owner the catalog gives its instance,
 * else the administrators' until it is assigned.  Never the owner_uid of
 * the manifest, which anyone who can write to the target chooses.
 */
static int
owner_of (struct import *im, const char *uuid, int64_t *ret)
{
  struct vv_instance_rec *in;

  in = vv_catalog_instance_get (im->e->catalog, uuid);
  if (in == NULL) {
    if (vv_get_error_code () != VV_ERR_NOT_FOUND)
      return -1;
    vv_clear_error ();
    *ret = ADMINS_UID;
    return 0;
  }
  *ret = in->owner_uid;
  vv_instance_rec_free (in);
  return 0;
}

/* Fills what the manifest does not hold and inserts everything accepted. */
static int
insert_accepted (struct import *im)
{
  _cleanup_free_ struct vv_backup_rec **v = NULL;
  size_t n = 0;

  v = calloc (im->n + 1, sizeof *v);
  if (v == NULL) {
    vv_error_errno (errno, "importing target '%s'", im->target);
    return -1;
  }
  for (size_t i = 0; i < im->n; i++) {
    struct vv_backup_rec *b = im->v[i].b;

    if (im->v[i].state != ACCEPTED)
      continue;
    free (b->target);
    if ((b->target = vv_strdup (im->target)) == NULL)
      return -1;
    b->chain_pos = im->v[i].pos;
    if (owner_of (im, b->domain_uuid, &b->owner_uid) == -1)
      return -1;
    /* As the engine records it: an online point's checkpoint tracks its
     * disks (libvirt says which when the next backup asks); an offline
     * point carries the chain's bitmap on exactly the disks it stored as
     * overlays.
     */
    for (size_t d = 0; d < b->n_disks; d++)
      b->disks[d].bitmap = b->offline ? b->disks[d].backing != NULL
        : b->checkpoint != NULL;
    v[n++] = b;
  }
  qsort (v, n, sizeof *v, cmp_insert);
  if (n > 0 && vv_catalog_backup_insert_all (im->e->catalog, v, n) == -1) {
    vv_error_prefix ("importing target '%s': ", im->target);
    return -1;
  }
  im->res.imported = n;
  return 0;
}

static void
import_clear (struct import *im)
{
  for (size_t i = 0; i < im->n; i++) {
    free (im->v[i].object);
    vv_backup_rec_free (im->v[i].b);
  }
  free (im->v);
  free (im->by_id);
  vv_target_close (im->t);
  vv_import_result_clear (&im->res);
}

static int
run_import (struct import *im)
{
  _cleanup_free_ struct entry **path = NULL;

  if ((im->t = vv_engine_open_target (im->e, im->target)) == NULL)
    return -1;
  if (vv_target_list (im->t, "", collect, im) == -1) {
    if (vv_get_error_code () != VV_ERR_INVALID)
      vv_error_prefix ("importing target '%s': ", im->target);
    return -1;
  }
  if (im->n > 0)
    qsort (im->v, im->n, sizeof *im->v, cmp_object);

  im->by_id = calloc (im->n + 1, sizeof *im->by_id);
  path = calloc (im->n + 1, sizeof *path);
  if (im->by_id == NULL || path == NULL) {
    vv_error_errno (errno, "importing target '%s'", im->target);
    return -1;
  }
  for (size_t i = 0; i < im->n; i++) {
    struct entry *en = &im->v[i];

    if (read_entry (im, en) == -1)
      return -1;
    /* A manifest at the wrong path may copy another backup's id: only
     * those in place are found by id.
     */
    if (en->b == NULL || en->state == SKIPPED)
      continue;
    im->by_id[im->n_by_id++] = en;
    if (check_catalog (im, en) == -1)
      return -1;
  }
  qsort (im->by_id, im->n_by_id, sizeof *im->by_id, cmp_id);
  if (check_set (im) == -1)
    return -1;
  for (size_t i = 0; i < im->n_by_id; i++)
    if (resolve (im, im->by_id[i], path) == -1)
      return -1;
  return insert_accepted (im);
}

int
vv_engine_import_target (struct vv_engine *e, const char *target,
                         struct vv_import_result *ret)
{
  struct import im = { .e = e, .target = target };
  int r;

  if (target == NULL) {
    vv_error_code (VV_ERR_INVALID, "target name is missing");
    return -1;
  }
  r = run_import (&im);
  if (r == 0) {
    *ret = im.res;
    memset (&im.res, 0, sizeof im.res);
  }
  import_clear (&im);
  return r;
}
