/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "engine/domain.h"
#include "engine/engine-internal.h"
#include "engine/offline.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"

/* Most key=value parameters a target record may carry. */
#define TARGET_PARAMS_MAX 64
/* How long libvirt gets to wind a job down after abort. */
#define ABORT_WAIT_MS 30000

/* Keeps the caller's error across best-effort cleanup calls. */
struct saved_error {
  enum vv_errcode code;
  char *message;
};

static void
save_error (struct saved_error *s)
{
  s->code = vv_get_error_code ();
  s->message = strdup (vv_get_error ());
}

static void
restore_error (struct saved_error *s)
{
  if (s->code == VV_ERR_NONE)
    vv_clear_error ();
  else
    vv_error_code (s->code, "%s", s->message ? s->message : "");
  free (s->message);
  s->message = NULL;
}

struct vv_target *
vv_engine_open_target (struct vv_engine *e, const char *name)
{
  struct vv_target_rec *rec;
  struct vv_target *t = NULL;
  _cleanup_json_ json_object *params = NULL;
  const char *pv[TARGET_PARAMS_MAX + 1] = { NULL };

  rec = vv_catalog_target_get (e->catalog, name);
  if (rec == NULL)
    return NULL;
  if (rec->params && rec->params[0]) {
    size_t n;

    params = vv_json_parse ("the parameters of target", rec->params,
                            strlen (rec->params));
    if (params == NULL)
      goto out;
    if (!json_object_is_type (params, json_type_array)
        || (n = json_object_array_length (params)) > TARGET_PARAMS_MAX) {
      vv_error ("the parameters of target '%s' are not an array of at most "
                "%d strings", name, TARGET_PARAMS_MAX);
      goto out;
    }
    for (size_t i = 0; i < n; i++) {
      json_object *v = json_object_array_get_idx (params, i);
      if (!json_object_is_type (v, json_type_string)) {
        vv_error ("parameter %zu of target '%s' is not a string", i, name);
        goto out;
      }
      pv[i] = json_object_get_string (v);
    }
  }
  t = vv_target_open (rec->name, rec->url, pv);
 out:
  vv_target_rec_free (rec);
  return t;
}

char *
vv_engine_run_dir (struct vv_engine *e, const char *backup_id)
{
  if (!vv_is_id ("bk", backup_id)) {
    vv_error ("'%s' is not a backup id", backup_id);
    return NULL;
  }
  return vv_printf ("%s/run/%s", e->state_dir, backup_id);
}

/* 1 if libvirt runs a job on the domain, 0 if not, -1 if it could not
 * tell.
 */
static int
job_state (virDomainPtr dom)
{
  virDomainJobInfo info;

  if (virDomainGetJobInfo (dom, &info) == -1)
    return -1;
  return info.type != VIR_DOMAIN_JOB_NONE;
}

int
vv_engine_abort_job (virDomainPtr dom, const char *what)
{
  struct timespec ts = { 0, 50 * 1000 * 1000 };
  int state = job_state (dom);

  if (state == 0)
    return 0;
  if (virDomainAbortJob (dom) == -1 && job_state (dom) == 1) {
    vv_error ("cannot abort the libvirt job of %s: %s",
              what, vv_libvirt_error ());
    return -1;
  }
  /* libvirt finishes the job asynchronously once QEMU's block jobs end;
   * the checkpoint can only be deleted after that.
   */
  for (int waited = 0; (state = job_state (dom)) != 0; waited += 50) {
    if (waited >= ABORT_WAIT_MS) {
      if (state == -1)
        vv_error ("cannot tell whether the libvirt job of %s ended: %s",
                  what, vv_libvirt_error ());
      else
        vv_error ("the libvirt job of %s is still active %d s after abort",
                  what, ABORT_WAIT_MS / 1000);
      return -1;
    }
    nanosleep (&ts, NULL);
  }
  return 0;
}

bool
vv_engine_backup_job_in (virDomainPtr dom, const char *run_dir)
{
  _cleanup_free_ char *xml = NULL;
  _cleanup_free_ char *needle = NULL;

  if (job_state (dom) == 0)
    return false;
  xml = virDomainBackupGetXMLDesc (dom, 0);
  needle = vv_printf ("%s/", run_dir);
  return xml && needle && strstr (xml, needle) != NULL;
}

int
vv_engine_delete_checkpoint (virDomainPtr dom, const char *name,
                             bool any_fallback)
{
  virDomainCheckpointPtr cp;
  int r;

  if (!vv_str_has_prefix (name, VV_CHECKPOINT_PREFIX)) {
    vv_error ("refusing to delete checkpoint '%s': not made by virtvault",
              name);
    return -1;
  }
  cp = virDomainCheckpointLookupByName (dom, name, 0);
  if (cp == NULL) {
    /* A transient domain that went away took its checkpoints along. */
    if (virGetLastErrorCode () == VIR_ERR_NO_DOMAIN_CHECKPOINT
        || virGetLastErrorCode () == VIR_ERR_NO_DOMAIN)
      return 0;
    vv_error ("cannot look up checkpoint '%s': %s", name, vv_libvirt_error ());
    return -1;
  }
  r = virDomainCheckpointDelete (cp, 0);
  if (r == -1) {
    int code = virGetLastErrorCode ();
    _cleanup_free_ char *msg = vv_strdup (vv_libvirt_error ());

    if (code == VIR_ERR_NO_DOMAIN_CHECKPOINT)
      r = 0;
    /* A checkpoint whose bitmap was lost (QEMU killed) can only go by
     * its metadata.  Not so for a shut-off domain (libvirt 9 can not
     * delete its checkpoints at all): dropping the metadata would leave
     * the bitmap in the image for good.  The next backup prunes it.
     */
    else if ((any_fallback || (msg && strstr (msg, "not found")))
             && virDomainIsActive (dom) == 1) {
      r = virDomainCheckpointDelete (cp,
                                     VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY);
      if (r == -1)
        vv_error ("cannot delete checkpoint '%s': %s", name,
                  vv_libvirt_error ());
    }
    else
      vv_error ("cannot delete checkpoint '%s': %s", name,
                msg ? msg : "unknown error");
  }
  virDomainCheckpointFree (cp);
  return r;
}

void
vv_engine_prune_checkpoints (struct vv_engine *e, virDomainPtr dom,
                             const char *domain_uuid, const char *keep)
{
  struct vv_backup_rec **v = NULL;
  virDomainCheckpointPtr *cps = NULL;
  size_t n = 0;
  int ncps;
  struct saved_error se;

  save_error (&se);
  if (vv_catalog_backup_list_with_checkpoint (e->catalog, domain_uuid,
                                              &v, &n) == 0) {
    for (size_t i = 0; i < n; i++) {
      if (v[i]->checkpoint == NULL
          || (keep && strcmp (v[i]->checkpoint, keep) == 0)
          || !vv_str_has_prefix (v[i]->checkpoint, VV_CHECKPOINT_PREFIX))
        continue;
      if (vv_engine_delete_checkpoint (dom, v[i]->checkpoint, false) == 0)
        vv_catalog_backup_set_checkpoint (e->catalog, v[i]->id, NULL);
    }
    vv_backup_recs_free (v, n);
  }

  /* Ours that the catalog no longer tracks: left while the domain was
   * shut off, by a deleted backup, or by a lost catalog.  Oldest first,
   * so none has a parent to merge into.
   */
  ncps = virDomainListAllCheckpoints (dom, &cps,
                                      VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
  for (int i = 0; i < ncps; i++) {
    const char *name = virDomainCheckpointGetName (cps[i]);

    if (name && vv_str_has_prefix (name, VV_CHECKPOINT_PREFIX)
        && !(keep && strcmp (name, keep) == 0))
      vv_engine_delete_checkpoint (dom, name, false);
    virDomainCheckpointFree (cps[i]);
  }
  free (cps);
  restore_error (&se);
}

/* Appends one sentence to what is left of a cleanup. */
static void
left_add (char **left, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static void
left_add (char **left, const char *fmt, ...)
{
  _cleanup_free_ char *more = NULL;
  char *both;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&more, fmt, ap) == -1)
    more = NULL;
  va_end (ap);
  both = vv_printf ("%s%s%s", *left ? *left : "", *left ? "; " : "",
                    more ? more : "(out of memory)");
  if (both) {
    free (*left);
    *left = both;
  }
}

int
vv_engine_cleanup_attempt (struct vv_engine *e, virDomainPtr dom,
                           bool domain_gone,
                           const struct vv_attempt *a, bool job_is_ours,
                           struct vv_target *t, const char *status,
                           const char *message)
{
  struct saved_error se;
  _cleanup_free_ char *run_dir = NULL;
  _cleanup_free_ char *left = NULL;
  struct vv_target *opened = NULL;
  bool checkpoint_gone;
  int active = -1;
  int ret = 0;

  save_error (&se);
  if (dom) {
    active = virDomainIsActive (dom);
    /* A transient domain that stopped during the backup. */
    if (active == -1 && virGetLastErrorCode () == VIR_ERR_NO_DOMAIN) {
      dom = NULL;
      domain_gone = true;
    }
  }
  /* libvirt refuses to undefine a domain with checkpoints unless their
   * metadata goes with it, so a domain that is gone has none left.
   */
  checkpoint_gone = a->checkpoint == NULL || (dom == NULL && domain_gone);
  run_dir = vv_engine_run_dir (e, a->backup_id);

  if (dom == NULL && !domain_gone)
    left_add (&left, "libvirt was unreachable: the domain's backup job and "
              "checkpoint could not be checked");
  if (dom && active == 1) {
    if ((job_is_ours || (run_dir && vv_engine_backup_job_in (dom, run_dir)))
        && vv_engine_abort_job (dom, a->domain) == -1)
      left_add (&left, "%s", vv_get_error ());
  }
  if (a->checkpoint && dom) {
    if (vv_engine_delete_checkpoint (dom, a->checkpoint, true) == 0)
      checkpoint_gone = true;
    else
      left_add (&left, "checkpoint '%s' could not be deleted: %s",
                a->checkpoint, vv_get_error ());
  }

  if (t == NULL && a->target)
    t = opened = vv_engine_open_target (e, a->target);
  if (a->prefix && a->prefix[0]) {
    if (t == NULL)
      left_add (&left, "the objects under %s could not be removed: %s",
                a->prefix, vv_get_error ());
    else if (vv_target_remove_prefix (t, a->prefix) == -1)
      left_add (&left, "the objects under %s could not be removed: %s",
                a->prefix, vv_get_error ());
  }
  vv_target_close (opened);

  /* An offline attempt's servers, also those of a crashed daemon. */
  if (run_dir) {
    vv_offline_stop_servers (run_dir);
    vv_remove_tree (run_dir);
  }

  if (status && vv_catalog_backup_set_status (e->catalog, a->backup_id,
                                              status, message) == -1)
    ret = -1;
  else if (checkpoint_gone && a->checkpoint
           && vv_catalog_backup_set_checkpoint (e->catalog, a->backup_id,
                                                NULL) == -1)
    ret = -1;
  else if (vv_catalog_backup_set_cleanup (e->catalog, a->backup_id,
                                          left) == -1)
    ret = -1;
  else if (left)
    ret = 1;
  restore_error (&se);
  return ret;
}

int
vv_engine_abort_orphan (struct vv_engine *e, virDomainPtr dom,
                        const char *name)
{
  _cleanup_free_ char *xml = NULL, *needle = NULL, *cp = NULL;
  _cleanup_free_ char *run_dir = NULL;
  struct vv_backup_rec *b;
  char id[VV_ID_MAX];
  const char *at;
  size_t len;

  if (job_state (dom) != 1)
    return 0;
  xml = virDomainBackupGetXMLDesc (dom, 0);
  needle = vv_printf ("%s/run/", e->state_dir);
  if (xml == NULL || needle == NULL || (at = strstr (xml, needle)) == NULL)
    return 0;
  /* The run directory names the backup: <state>/run/bk-<hex>/... */
  at += strlen (needle);
  len = strcspn (at, "/'\"<");
  if (len == 0 || len >= sizeof id)
    return 0;
  memcpy (id, at, len);
  id[len] = '\0';
  if (!vv_is_id ("bk", id))
    return 0;
  b = vv_catalog_backup_get (e->catalog, id, VV_OWNER_ANY);
  if (b && (strcmp (b->status, "pending") == 0
            || strcmp (b->status, "running") == 0)) {
    vv_backup_rec_free (b);
    return 0;                   /* a backup of this daemon */
  }
  vv_backup_rec_free (b);
  vv_clear_error ();
  /* Left by a daemon that stopped: nothing will ever end it. */
  if (vv_engine_abort_job (dom, name) == -1)
    return -1;
  cp = vv_printf (VV_CHECKPOINT_PREFIX "%s", id);
  if (cp && vv_engine_delete_checkpoint (dom, cp, true) == -1)
    return -1;
  run_dir = vv_engine_run_dir (e, id);
  if (run_dir)
    vv_remove_tree (run_dir);
  return 1;
}
