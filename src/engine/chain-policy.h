/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whether a backup is a full or an incremental one, and why: a pure
 * function of what is known about the domain's last backup, so the rules
 * are tested by a table (tests/test-chain-policy.c).
 */
#ifndef VV_ENGINE_CHAIN_POLICY_H
#define VV_ENGINE_CHAIN_POLICY_H

#include <stdbool.h>
#include <stddef.h>

enum vv_backup_mode {
  VV_MODE_AUTO = 0,             /* incremental when possible, else full */
  VV_MODE_FULL,
  VV_MODE_INCREMENTAL,          /* incremental or an error */
};

/* "auto", "full", "incremental"; NULL is auto. */
int vv_backup_mode_parse (const char *s, enum vv_backup_mode *ret);

/* Incrementals per chain when nobody says otherwise, and the most. */
#define VV_MAX_CHAIN_DEFAULT 6
#define VV_MAX_CHAIN_LIMIT 1000

/* The state in libvirt of the checkpoint of the last backup. */
enum vv_cp_state {
  VV_CP_PRESENT = 0,
  VV_CP_REDEFINED,              /* libvirt had lost it; redefined from the
                                 * XML in the catalog */
  VV_CP_MISSING,                /* gone and could not be redefined */
};

struct vv_chain_facts {
  enum vv_backup_mode mode;
  unsigned max_chain;           /* incrementals per chain */
  const char *target;           /* of the new backup */
  bool can_track;               /* a selected disk can carry a bitmap */
  /* The domain's newest completed backup; last_id NULL when none. */
  const char *last_id;
  const char *last_chain;
  const char *last_target;
  unsigned last_pos;            /* its position in its chain */
  const char *full_id;          /* the full of its chain */
  const char *last_checkpoint;  /* NULL when it has none (any more) */
  enum vv_cp_state cp_state;
  const char *cp_detail;        /* for VV_CP_MISSING: what failed */
  size_t tracked_disks;         /* selected disks its checkpoint tracks */
  /* Appended with offline backups. */
  bool offline;                 /* the domain is shut off: its images are
                                 * read, with the checkpoint's bitmaps */
  const char *base_id;          /* the backup last_checkpoint belongs to,
                                 * when older than last_id (the points
                                 * since were offline and made none);
                                 * NULL: last_id's own */
  const char *offline_why;      /* offline, tracked_disks 0: why no image
                                 * carries a usable bitmap */
  /* Appended with scheduled verify. */
  const char *corrupt_id;       /* a backup of the chain up to last_id
                                 * marked corrupt (the oldest), or NULL */
  const char *corrupt_why;      /* why it is */
};

#define VV_REASON_MAX 512

struct vv_chain_decision {
  bool incremental;
  unsigned pos;                 /* position of the new backup */
  char reason[VV_REASON_MAX];   /* "incremental: ...", "incremental
                                 * (offline): ..." or "full: ..." */
};

/* Decides.  With VV_MODE_INCREMENTAL and no usable chain, fails with
 * VV_ERR_INVALID saying why (the words of the full reason).
 */
int vv_chain_decide (const struct vv_chain_facts *f,
                     struct vv_chain_decision *ret);

#endif
