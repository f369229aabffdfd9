/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "engine/chain-policy.h"
#include "util/error.h"

int
vv_backup_mode_parse (const char *s, enum vv_backup_mode *ret)
{
  if (s == NULL || strcmp (s, "auto") == 0)
    *ret = VV_MODE_AUTO;
  else if (strcmp (s, "full") == 0)
    *ret = VV_MODE_FULL;
  else if (strcmp (s, "incremental") == 0)
    *ret = VV_MODE_INCREMENTAL;
  else {
    vv_error_code (VV_ERR_INVALID, "backup mode '%s' is not one of auto, "
                   "full, incremental", s);
    return -1;
  }
  return 0;
}

static const char *
ordinal_suffix (unsigned n)
{
  if (n % 100 >= 11 && n % 100 <= 13)
    return "th";
  switch (n % 10) {
  case 1: return "st";
  case 2: return "nd";
  case 3: return "rd";
  default: return "th";
  }
}

/* Why no incremental can be taken (NULL if one can), in why[]. */
static const char *
obstacle (const struct vv_chain_facts *f, char *why, size_t len)
{
  if (!f->can_track)
    return "no selected disk can track changes (only qcow2 images carry "
      "dirty bitmaps)";
  if (f->last_id == NULL)
    return "no earlier completed backup of this domain";
  if (f->corrupt_id) {
    snprintf (why, len, "backup %s of chain %s is marked corrupt (%s); an "
              "incremental is never based on a corrupt point",
              f->corrupt_id, f->last_chain ? f->last_chain : "?",
              f->corrupt_why ? f->corrupt_why : "found damaged by a verify");
    return why;
  }
  if (f->last_target && f->target && strcmp (f->last_target, f->target) != 0) {
    snprintf (why, len, "the last backup %s is on target '%s', not '%s'",
              f->last_id, f->last_target, f->target);
    return why;
  }
  if (f->last_checkpoint == NULL) {
    snprintf (why, len, "the last backup %s has no checkpoint to continue "
              "from", f->last_id);
    return why;
  }
  if (f->cp_state == VV_CP_MISSING) {
    snprintf (why, len, "checkpoint %s of the last backup is missing from "
              "libvirt (domain redefined?) and could not be redefined%s%s",
              f->last_checkpoint, f->cp_detail ? ": " : "",
              f->cp_detail ? f->cp_detail : "");
    return why;
  }
  if (f->offline && f->tracked_disks == 0 && f->offline_why) {
    snprintf (why, len, "no selected disk image of the shut-off domain "
              "carries a usable bitmap of checkpoint %s: %s",
              f->last_checkpoint, f->offline_why);
    return why;
  }
  if (f->tracked_disks == 0) {
    snprintf (why, len, "checkpoint %s of the last backup tracks none of "
              "the selected disks", f->last_checkpoint);
    return why;
  }
  if (f->last_pos >= f->max_chain) {
    snprintf (why, len, "chain %s reached max chain %u", f->last_chain,
              f->max_chain);
    return why;
  }
  return NULL;
}

int
vv_chain_decide (const struct vv_chain_facts *f,
                 struct vv_chain_decision *ret)
{
  char why[VV_REASON_MAX - 8];
  const char *o;

  memset (ret, 0, sizeof *ret);
  if (f->mode == VV_MODE_FULL) {
    snprintf (ret->reason, sizeof ret->reason, "full: requested");
    return 0;
  }
  o = obstacle (f, why, sizeof why);
  if (o) {
    if (f->mode == VV_MODE_INCREMENTAL) {
      vv_error_code (VV_ERR_INVALID, "no incremental backup is possible: "
                     "%s; take a full backup (--full) or let virtvault "
                     "choose", o);
      return -1;
    }
    snprintf (ret->reason, sizeof ret->reason, "full: %s", o);
    return 0;
  }
  ret->incremental = true;
  ret->pos = f->last_pos + 1;
  snprintf (ret->reason, sizeof ret->reason,
            "incremental%s: %u%s since full %s (max chain %u)%s%s%s",
            f->offline ? " (offline)" : "",
            ret->pos, ordinal_suffix (ret->pos),
            f->full_id ? f->full_id : "?", f->max_chain,
            f->cp_state == VV_CP_REDEFINED ? "; checkpoint " : "",
            f->cp_state == VV_CP_REDEFINED ? f->last_checkpoint : "",
            f->cp_state == VV_CP_REDEFINED
            ? " was redefined in libvirt from the catalog" : "");
  if (f->offline || f->base_id) {
    size_t n = strlen (ret->reason);
    snprintf (ret->reason + n, sizeof ret->reason - n,
              "; changes since checkpoint %s of %s%s", f->last_checkpoint,
              f->base_id ? f->base_id : f->last_id,
              f->offline ? ", read from the shut-off image"
              : " (the points since were taken offline)");
  }
  return 0;
}
