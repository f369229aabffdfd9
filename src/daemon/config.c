/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/chain-policy.h"
#include "api/api.h"
#include "jobs/jobs.h"
#include "scheduler/retention.h"
#include "scheduler/scheduler.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "daemon/config.h"

#define CONNECT_MAX 1024

int
vv_daemon_parse_workers (const char *what, const char *s, unsigned *ret)
{
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul (s, &end, 10);
  if (!isdigit ((unsigned char) s[0]) || *end != '\0' || errno
      || v < 1 || v > VV_JOBS_MAX_WORKERS) {
    vv_error_code (VV_ERR_INVALID, "%s: '%s' is not a number of workers "
                   "from 1 to %d", what, s, VV_JOBS_MAX_WORKERS);
    return -1;
  }
  *ret = (unsigned) v;
  return 0;
}

/* Absolute paths stay; relative ones are taken from the current
 * directory, since the daemon later changes to /.
 */
int
vv_daemon_parse_path (const char *what, const char *s, size_t max,
                      char **ret)
{
  char *p;

  if (s[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "%s: the path is empty", what);
    return -1;
  }
  if (s[0] == '/')
    p = vv_strdup (s);
  else {
    _cleanup_free_ char *cwd = getcwd (NULL, 0);
    if (cwd == NULL) {
      vv_error_errno (errno, "%s: cannot resolve '%s'", what, s);
      return -1;
    }
    p = vv_printf ("%s/%s", strcmp (cwd, "/") ? cwd : "", s);
  }
  if (p == NULL)
    return -1;
  /* No trailing slashes: the path is joined with names later. */
  for (size_t n = strlen (p); n > 1 && p[n - 1] == '/'; n--)
    p[n - 1] = '\0';
  if (strlen (p) > max) {
    vv_error_code (VV_ERR_INVALID, "%s: '%s' is longer than %zu bytes", what,
                   p, max);
    free (p);
    return -1;
  }
  *ret = p;
  return 0;
}

static int
parse_uid (const char *what, const char *s, uid_t *ret)
{
  char *end;
  unsigned long v;

  if (isdigit ((unsigned char) s[0])) {
    errno = 0;
    v = strtoul (s, &end, 10);
    if (*end != '\0' || errno || v >= (unsigned long) (uid_t) -1) {
      vv_error_code (VV_ERR_INVALID, "%s: '%s' is not a uid", what, s);
      return -1;
    }
    *ret = (uid_t) v;
    return 0;
  }
  struct passwd pw, *res = NULL;
  char buf[4096];
  if (getpwnam_r (s, &pw, buf, sizeof buf, &res) != 0 || res == NULL) {
    vv_error_code (VV_ERR_INVALID, "%s: no user named '%s'; give a user "
                   "name or a numeric uid", what, s);
    return -1;
  }
  *ret = pw.pw_uid;
  return 0;
}

int
vv_daemon_parse_admin_uids (const char *what, const char *s, uid_t **ret,
                            size_t *ret_n)
{
  _cleanup_free_ uid_t *v = calloc (VV_CONFIG_MAX_ADMINS, sizeof *v);
  _cleanup_free_ char *copy = vv_strdup (s);
  size_t n = 0;
  char *save = NULL;

  if (v == NULL || copy == NULL) {
    vv_error_errno (ENOMEM, "%s", what);
    return -1;
  }
  for (char *tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save)) {
    while (isspace ((unsigned char) *tok))
      tok++;
    for (size_t l = strlen (tok); l && isspace ((unsigned char) tok[l - 1]);
         l--)
      tok[l - 1] = '\0';
    if (*tok == '\0')
      continue;
    if (n == VV_CONFIG_MAX_ADMINS) {
      vv_error_code (VV_ERR_INVALID, "%s: more than %d admin uids", what,
                     VV_CONFIG_MAX_ADMINS);
      return -1;
    }
    if (parse_uid (what, tok, &v[n]) == -1)
      return -1;
    n++;
  }
  *ret = TAKE_PTR (v);
  *ret_n = n;
  return 0;
}

static char *
trim (char *s)
{
  size_t l;

  while (isspace ((unsigned char) *s))
    s++;
  l = strlen (s);
  while (l && isspace ((unsigned char) s[l - 1]))
    s[--l] = '\0';
  return s;
}

static int
set_path (char **field, const char *what, const char *value, size_t max)
{
  if (value[0] != '/') {
    vv_error_code (VV_ERR_INVALID, "%s: '%s' must be an absolute path", what,
                   value);
    return -1;
  }
  free (*field);
  *field = NULL;
  return vv_daemon_parse_path (what, value, max, field);
}

/* A whole number from lo to hi; "what" says what the number counts in
 * the message ("a number of workers from 1 to 64").
 */
static int
parse_uint (const char *what, const char *value, unsigned long lo,
            unsigned long hi, const char *counts, unsigned *ret)
{
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul (value, &end, 10);
  if (!isdigit ((unsigned char) value[0]) || *end != '\0' || errno
      || v < lo || v > hi) {
    vv_error_code (VV_ERR_INVALID, "%s: '%s' is not a %s from %lu to %lu",
                   what, value, counts, lo, hi);
    return -1;
  }
  *ret = (unsigned) v;
  return 0;
}

static int
set_string (char **field, const char *v)
{
  free (*field);
  *field = vv_strdup (v);
  return *field ? 0 : -1;
}

static int
set_state_dir (struct vv_daemon_config *c, const char *what, const char *v)
{
  return set_path (&c->state_dir, what, v, PATH_MAX - 256);
}

static int
set_socket (struct vv_daemon_config *c, const char *what, const char *v)
{
  return set_path (&c->socket, what, v, 107);
}

static int
set_connect (struct vv_daemon_config *c, const char *what, const char *v)
{
  if (strlen (v) > CONNECT_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s: the URI is longer than %d bytes",
                   what, CONNECT_MAX);
    return -1;
  }
  return set_string (&c->connect, v);
}

static int
set_workers (struct vv_daemon_config *c, const char *what, const char *v)
{
  return vv_daemon_parse_workers (what, v, &c->workers);
}

static int
set_admin_uids (struct vv_daemon_config *c, const char *what, const char *v)
{
  free (c->admin_uids);
  c->admin_uids = NULL;
  c->n_admin_uids = 0;
  c->admin_uids_set = true;
  return vv_daemon_parse_admin_uids (what, v, &c->admin_uids,
                                     &c->n_admin_uids);
}

static int
set_default_target (struct vv_daemon_config *c, const char *what,
                    const char *v)
{
  if (vv_check_name ("target name", v, 64) == -1) {
    vv_error_prefix ("%s: ", what);
    return -1;
  }
  return set_string (&c->default_target, v);
}

static int
set_max_chain (struct vv_daemon_config *c, const char *what, const char *v)
{
  return parse_uint (what, v, 1, VV_MAX_CHAIN_LIMIT,
                     "number of incremental backups per chain",
                     &c->max_chain);
}

static int
set_manual_limit (struct vv_daemon_config *c, const char *what,
                  const char *v)
{
  if (parse_uint (what, v, 0, 10000, "number", &c->manual_limit) == -1)
    return -1;
  c->manual_limit_set = true;
  return 0;
}

static int
set_scheduler_max_concurrent (struct vv_daemon_config *c, const char *what,
                              const char *v)
{
  return parse_uint (what, v, 1, 64, "number",
                     &c->scheduler_max_concurrent);
}

static int
set_connections_per_uid (struct vv_daemon_config *c, const char *what,
                         const char *v)
{
  return parse_uint (what, v, 1, VV_API_CONNECTIONS - VV_API_ADMIN_RESERVE,
                     "number of connections", &c->connections_per_uid);
}

/* The ages after which audit rows, finished jobs and finished policy runs
 * are pruned (retention_days[i]).
 */
static int
set_retention (struct vv_daemon_config *c, const char *what, const char *v,
               size_t i)
{
  if (parse_uint (what, v, 0, VV_CONFIG_RETENTION_MAX, "number of days",
                  &c->retention_days[i]) == -1)
    return -1;
  c->retention_days_set[i] = true;
  return 0;
}

#define RETENTION_KEY(field, i)                                         \
  static int set_##field (struct vv_daemon_config *c, const char *what, \
                          const char *v)                                \
  { return set_retention (c, what, v, i); }                            \
  static char *show_##field (const struct vv_daemon_config *c)          \
  { return vv_printf ("%u", c->retention_days[i]); }
RETENTION_KEY (audit_retention_days, 0)
RETENTION_KEY (job_retention_days, 1)
RETENTION_KEY (run_retention_days, 2)

static char *
show_admin_uids (const struct vv_daemon_config *c)
{
  char *s = vv_strdup ("");

  for (size_t i = 0; s && i < c->n_admin_uids; i++) {
    char *t = vv_printf ("%s%s%u", s, i ? ", " : "",
                         (unsigned) c->admin_uids[i]);
    free (s);
    s = t;
  }
  return s;
}

#define SHOW_STRING(field)                                              \
  static char *show_##field (const struct vv_daemon_config *c)          \
  { return vv_strdup (c->field ? c->field : ""); }
#define SHOW_UNSIGNED(field)                                            \
  static char *show_##field (const struct vv_daemon_config *c)          \
  { return vv_printf ("%u", c->field); }
SHOW_STRING (state_dir)
SHOW_STRING (socket)
SHOW_STRING (connect)
SHOW_UNSIGNED (workers)
SHOW_STRING (default_target)
SHOW_UNSIGNED (max_chain)
SHOW_UNSIGNED (manual_limit)
SHOW_UNSIGNED (scheduler_max_concurrent)
SHOW_UNSIGNED (connections_per_uid)

/* Every key of the file: the parser, the unknown-key message,
 * --print-config-keys and --check-config all read this table, so a key
 * cannot be accepted without being listed and shown.
 */
#define KEY(name) { #name, set_##name, show_##name }
static const struct config_key {
  const char *name;
  int (*set) (struct vv_daemon_config *c, const char *what,
              const char *value);
  char *(*show) (const struct vv_daemon_config *c);     /* effective value */
} config_keys[] = {
  KEY (state_dir),
  KEY (socket),
  KEY (connect),
  KEY (workers),
  KEY (admin_uids),
  KEY (default_target),
  KEY (max_chain),
  KEY (manual_limit),
  KEY (scheduler_max_concurrent),
  KEY (connections_per_uid),
  KEY (audit_retention_days),
  KEY (job_retention_days),
  KEY (run_retention_days),
};
#define N_KEYS (sizeof config_keys / sizeof config_keys[0])

static const struct config_key *
find_key (const char *what, const char *key)
{
  _cleanup_free_ char *all = vv_strdup ("");

  for (size_t i = 0; i < N_KEYS; i++)
    if (strcmp (config_keys[i].name, key) == 0)
      return &config_keys[i];
  for (size_t i = 0; all && i < N_KEYS; i++) {
    char *t = vv_printf ("%s%s%s", all, i ? ", " : "", config_keys[i].name);
    free (all);
    all = t;
  }
  vv_error_code (VV_ERR_INVALID, "%s: unknown key; the keys are %s", what,
                 all ? all : "(out of memory)");
  return NULL;
}

void
vv_daemon_config_print_keys (FILE *f)
{
  for (size_t i = 0; i < N_KEYS; i++)
    fprintf (f, "%s\n", config_keys[i].name);
}

int
vv_daemon_config_print (const struct vv_daemon_config *c, FILE *f)
{
  for (size_t i = 0; i < N_KEYS; i++) {
    _cleanup_free_ char *v = config_keys[i].show (c);
    if (v == NULL)
      return -1;
    fprintf (f, "%s = %s\n", config_keys[i].name, v);
  }
  return 0;
}

int
vv_daemon_config_load (struct vv_daemon_config *c, const char *path)
{
  _cleanup_fclose_ FILE *f = fopen (path, "re");
  char line[VV_CONFIG_LINE_MAX + 2];
  bool seen[N_KEYS] = { false };
  unsigned lineno = 0;

  if (f == NULL) {
    vv_error_errno (errno, "cannot read config file %s", path);
    return -1;
  }
  while (fgets (line, sizeof line, f)) {
    char what[PATH_MAX + 128];
    char *eq, *key, *value;

    lineno++;
    if (strlen (line) > VV_CONFIG_LINE_MAX) {
      vv_error_code (VV_ERR_INVALID, "%s:%u: line longer than %d bytes",
                     path, lineno, VV_CONFIG_LINE_MAX);
      return -1;
    }
    key = trim (line);
    if (*key == '\0' || *key == '#')
      continue;
    eq = strchr (key, '=');
    if (eq == NULL) {
      vv_error_code (VV_ERR_INVALID,
                     "%s:%u: expected 'key = value', got '%s'", path, lineno,
                     key);
      return -1;
    }
    *eq = '\0';
    key = trim (key);
    value = trim (eq + 1);
    snprintf (what, sizeof what, "%s:%u: %s", path, lineno, key);
    if (*value == '\0') {
      vv_error_code (VV_ERR_INVALID, "%s: the value is empty", what);
      return -1;
    }
    const struct config_key *k = find_key (what, key);
    if (k == NULL)
      return -1;
    if (seen[k - config_keys]) {
      vv_error_code (VV_ERR_INVALID, "%s: set twice", what);
      return -1;
    }
    if (k->set (c, what, value) == -1)
      return -1;
    seen[k - config_keys] = true;
  }
  if (ferror (f)) {
    vv_error_errno (errno, "cannot read config file %s", path);
    return -1;
  }
  return 0;
}

int
vv_daemon_config_defaults (struct vv_daemon_config *c)
{
  if (c->state_dir == NULL
      && (c->state_dir = vv_strdup (VV_DEFAULT_STATE_DIR)) == NULL)
    return -1;
  if (c->socket == NULL
      && (c->socket = vv_strdup (VV_DEFAULT_SOCKET)) == NULL)
    return -1;
  if (c->connect == NULL
      && (c->connect = vv_strdup (VV_DEFAULT_CONNECT)) == NULL)
    return -1;
  if (c->workers == 0)
    c->workers = VV_DEFAULT_WORKERS;
  if (c->max_chain == 0)
    c->max_chain = VV_MAX_CHAIN_DEFAULT;
  if (!c->manual_limit_set)
    c->manual_limit = VV_MANUAL_LIMIT_DEFAULT;
  if (c->scheduler_max_concurrent == 0)
    c->scheduler_max_concurrent = VV_SCHEDULER_DEFAULT_CONCURRENT;
  if (c->connections_per_uid == 0)
    c->connections_per_uid = VV_API_DEFAULT_CONNECTIONS_PER_UID;
  for (size_t i = 0; i < 3; i++) {
    static const unsigned defaults[3] = VV_CONFIG_RETENTION_DEFAULTS;
    if (!c->retention_days_set[i])
      c->retention_days[i] = defaults[i];
  }
  if (c->default_target == NULL
      && (c->default_target = vv_strdup (VV_DEFAULT_TARGET)) == NULL)
    return -1;
  return 0;
}

void
vv_daemon_config_clear (struct vv_daemon_config *c)
{
  free (c->state_dir);
  free (c->socket);
  free (c->connect);
  free (c->admin_uids);
  free (c->default_target);
  memset (c, 0, sizeof *c);
}
