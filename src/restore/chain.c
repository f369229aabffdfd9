/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtvault-plugin.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

void
vv_restore_chain_clear (struct vv_restore_chain *c)
{
  vv_backup_recs_free (c->v, c->n);
  c->v = NULL;
  c->n = 0;
}

int
vv_restore_chain_load (struct vv_engine *e, struct vv_backup_rec *top,
                       int64_t owner_filter, struct vv_restore_chain *ret)
{
  struct vv_restore_chain c = { NULL, 0 };
  struct vv_backup_rec *b = top;

  while (b) {
    struct vv_backup_rec **v;
    const char *child = c.n ? c.v[c.n - 1]->id : NULL;

    if (c.n == VV_RESTORE_CHAIN_MAX) {
      vv_error ("the chain of backup %s is longer than %d backups (a loop "
                "in the catalog?); it can not be restored",
                top->id, VV_RESTORE_CHAIN_MAX);
      goto fail;
    }
    for (size_t i = 0; i < c.n; i++)
      if (strcmp (c.v[i]->id, b->id) == 0) {
        vv_error ("backup %s is its own ancestor in the catalog; its chain "
                  "can not be restored", b->id);
        goto fail;
      }
    if (child && strcmp (b->status, "completed") != 0) {
      vv_error_code (VV_ERR_INVALID,
                     "backup %s depends on backup %s, which is %s; it can "
                     "not be restored", child, b->id, b->status);
      goto fail;
    }
    if (child && strcmp (b->target, top->target) != 0) {
      vv_error ("backup %s is on target '%s' but its parent %s is on "
                "target '%s'; a chain must live on one target",
                child, top->target, b->id, b->target);
      goto fail;
    }
    v = realloc (c.v, (c.n + 1) * sizeof *v);
    if (v == NULL) {
      vv_error_errno (ENOMEM, "loading the chain of backup %s", top->id);
      goto fail;
    }
    c.v = v;
    c.v[c.n++] = b;

    if (b->parent_id == NULL)
      break;
    b = vv_catalog_backup_get (e->catalog, b->parent_id, owner_filter);
    if (b == NULL) {
      vv_error_prefix ("backup %s depends on a missing parent: ",
                       c.v[c.n - 1]->id);
      goto fail;
    }
  }
  *ret = c;
  return 0;

 fail:
  if (b && (c.n == 0 || c.v[c.n - 1] != b))
    vv_backup_rec_free (b);
  vv_restore_chain_clear (&c);
  return -1;
}

int
vv_restore_check_object (const char *backup_id, const char *object)
{
  const char *s = object;
  size_t len;

  if (object == NULL || object[0] == '\0') {
    vv_error ("backup %s has a disk image without an object name in the "
              "catalog", backup_id);
    return -1;
  }
  len = strlen (object);
  if (len > VIRTVAULT_PLUGIN_NAME_MAX) {
    vv_error ("backup %s has an object name of %zu bytes; the limit is %d",
              backup_id, len, VIRTVAULT_PLUGIN_NAME_MAX);
    return -1;
  }
  for (;;) {
    const char *slash = strchr (s, '/');
    size_t n = slash ? (size_t) (slash - s) : strlen (s);

    if (n == 0 || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.')) {
      vv_error ("backup %s has an unsafe object name '%s' in the catalog "
                "(empty, '.' or '..' component)", backup_id, object);
      return -1;
    }
    if (slash == NULL)
      return 0;
    s = slash + 1;
  }
}

const char *
vv_restore_object_base (const char *object)
{
  const char *slash = strrchr (object, '/');
  return slash ? slash + 1 : object;
}

char *
vv_restore_resolve_backing (const char *object, const char *backing)
{
  _cleanup_free_ char *out = NULL;
  const char *s = backing;
  size_t len;

  if (backing[0] == '/') {
    vv_error ("%s names the absolute backing file '%s'; images on a target "
              "only ever name their parent by a relative path",
              object, backing);
    return NULL;
  }
  /* Start from the object's directory, then apply each component. */
  len = vv_restore_object_base (object) - object;
  out = malloc (len + strlen (backing) + 1);
  if (out == NULL) {
    vv_error_errno (ENOMEM, "resolving the backing file of %s", object);
    return NULL;
  }
  memcpy (out, object, len);
  out[len] = '\0';          /* empty, or ends in '/' */

  for (;;) {
    const char *slash = strchr (s, '/');
    size_t n = slash ? (size_t) (slash - s) : strlen (s);

    if (n == 0 || (n == 1 && s[0] == '.'))
      ;
    else if (n == 2 && s[0] == '.' && s[1] == '.') {
      if (len == 0) {
        vv_error ("%s names the backing file '%s', which lies outside the "
                  "target", object, backing);
        return NULL;
      }
      /* Drop the last directory: out[len-1] is its trailing '/'. */
      len--;
      while (len > 0 && out[len - 1] != '/')
        len--;
      out[len] = '\0';
    }
    else {
      memcpy (out + len, s, n);
      len += n;
      if (slash)
        out[len++] = '/';
      out[len] = '\0';
    }
    if (slash == NULL)
      break;
    s = slash + 1;
  }
  if (len == 0 || out[len - 1] == '/') {
    vv_error ("%s names the backing file '%s', which is not a file name",
              object, backing);
    return NULL;
  }
  return TAKE_PTR (out);
}

int
vv_restore_chain_backing (const struct vv_restore_chain *c, size_t idx,
                          const struct vv_disk_rec *d, const char *target,
                          const char *backing_file,
                          const struct vv_disk_rec **ret, size_t *ret_index)
{
  const char *bid = c->v[idx]->id, *base = vv_restore_object_base (d->object);
  _cleanup_free_ char *next = NULL;
  const struct vv_backup_rec *parent;

  *ret = NULL;
  if (backing_file == NULL && d->backing == NULL)
    return 0;
  if (backing_file == NULL) {
    vv_error ("%s of backup %s on target '%s' names no backing file, but "
              "the catalog records '%s'; it was altered on the target",
              base, bid, target, d->backing);
    return -1;
  }
  if (d->backing == NULL) {
    vv_error ("%s of backup %s on target '%s' names the backing file '%s', "
              "but the catalog records none (a standalone image); it was "
              "altered on the target", base, bid, target, backing_file);
    return -1;
  }
  if (strcmp (backing_file, d->backing) != 0) {
    vv_error ("%s of backup %s on target '%s' names the backing file '%s'; "
              "the catalog says '%s'; it was altered on the target",
              base, bid, target, backing_file, d->backing);
    return -1;
  }
  /* The chain is the catalog's: the backing file is the parent's image. */
  next = vv_restore_resolve_backing (d->object, d->backing);
  if (next == NULL) {
    vv_error_prefix ("backup %s on target '%s': ", bid, target);
    return -1;
  }
  parent = idx + 1 < c->n ? c->v[idx + 1] : NULL;
  for (size_t j = 0; parent && j < parent->n_disks; j++)
    if (parent->disks[j].object
        && strcmp (parent->disks[j].object, next) == 0) {
      *ret = &parent->disks[j];
      *ret_index = idx + 1;
      return 0;
    }
  if (parent == NULL)
    vv_error ("%s of backup %s has the backing file '%s' in the catalog, "
              "but the backup has no parent", base, bid, d->backing);
  else
    vv_error ("%s of backup %s has the backing file '%s' (%s) in the "
              "catalog, which is not an image of its parent backup %s",
              base, bid, d->backing, next, parent->id);
  return -1;
}

void
vv_restore_save_error (struct vv_saved_error *s)
{
  s->code = vv_get_error_code ();
  s->message = strdup (vv_get_error ());
}

void
vv_restore_restore_error (struct vv_saved_error *s)
{
  if (s->message)
    vv_error_code (s->code == VV_ERR_NONE ? VV_ERR_FAILED : s->code,
                   "%s", s->message);
  free (s->message);
  s->message = NULL;
}
