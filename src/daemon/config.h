/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtvaultd's configuration: `key = value` lines and # comments
 * (examples/virtvaultd.conf documents every key).  The command line
 * overrides the file; what neither sets gets the built-in default.
 */
#ifndef VV_DAEMON_CONFIG_H
#define VV_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define VV_DEFAULT_CONFIG SYSCONFDIR "/virtvault/virtvaultd.conf"
#define VV_DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/virtvault"
#define VV_DEFAULT_SOCKET "/run/virtvault/virtvaultd.sock"
#define VV_DEFAULT_CONNECT "qemu:///system"
#define VV_DEFAULT_WORKERS 2
#define VV_DEFAULT_TARGET "local"

/* Most admin_uids entries, longest line of the file. */
#define VV_CONFIG_MAX_ADMINS 64
#define VV_CONFIG_LINE_MAX 4096

struct vv_daemon_config {
  char *state_dir;              /* NULL = not set */
  char *socket;
  char *connect;
  unsigned workers;             /* 0 = not set */
  uid_t *admin_uids;
  size_t n_admin_uids;
  bool admin_uids_set;
  char *default_target;
  unsigned max_chain;           /* incrementals per chain; 0 = not set */
  /* Appended with policies. */
  unsigned manual_limit;        /* manual backups per instance */
  bool manual_limit_set;        /* (0 = no limit) */
  unsigned scheduler_max_concurrent;    /* 0 = not set */
  /* Appended with the resource limits. */
  unsigned connections_per_uid;         /* 0 = not set */
  /* Days audit rows, finished jobs and policy runs are kept (0 = for
   * ever), in this order.
   */
  unsigned retention_days[3];
  bool retention_days_set[3];
};

/* Defaults of retention_days[] (keys audit_retention_days,
 * job_retention_days, run_retention_days).
 */
#define VV_CONFIG_RETENTION_DEFAULTS { 365, 90, 90 }
#define VV_CONFIG_RETENTION_MAX 36500

/* Reads path into c (which starts zeroed).  Errors name "path:line". */
int vv_daemon_config_load (struct vv_daemon_config *c, const char *path);
/* Fills what is still unset with the defaults above. */
int vv_daemon_config_defaults (struct vv_daemon_config *c);
void vv_daemon_config_clear (struct vv_daemon_config *c);

/* The keys the file may set, one a line (virtvaultd --print-config-keys). */
void vv_daemon_config_print_keys (FILE *f);
/* Every key as "key = value", the values c holds (after the defaults:
 * the effective configuration, virtvaultd --check-config).
 */
int vv_daemon_config_print (const struct vv_daemon_config *c, FILE *f);

/* Value checkers shared by the file and the command line; what names the
 * source in errors ("--workers", "virtvaultd.conf:3: workers").
 */
int vv_daemon_parse_workers (const char *what, const char *s,
                             unsigned *ret);
int vv_daemon_parse_path (const char *what, const char *s, size_t max,
                          char **ret);
int vv_daemon_parse_admin_uids (const char *what, const char *s,
                                uid_t **ret, size_t *ret_n);

#endif
