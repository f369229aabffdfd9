#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "jobs/jobs.h"
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

static const char *const retention_keys[3] = VV_CONFIG_RETENTION_KEYS;

/* A decimal number from lo to hi into *ret; *ret_set (if given) = true. */
static int
parse_number (const char *what, const char *value, unsigned long lo,
              unsigned long hi, unsigned *ret, bool *ret_set)
{
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul (value, &end, 10);
  if (!isdigit ((unsigned char) value[0]) || *end != '\0' || errno
      || v < lo || v > hi) {
    vv_error_code (VV_ERR_INVALID, "%s: '%s' is not a number from %lu to "
                   "%lu", what, value, lo, hi);
    return -1;
  }
  *ret = (unsigned) v;
  if (ret_set)
    *ret_set = true;
  return 0;
}

static int
set_key (struct vv_daemon_config *c, const char *what, const char *key,
         const char *value)
{
  if (strcmp (key, "state_dir") == 0)
    return set_path (&c->state_dir, what, value, PATH_MAX - 256);
  if (strcmp (key, "socket") == 0)
    return set_path (&c->socket, what, value, 107);
  if (strcmp (key, "connect") == 0) {
    if (strlen (value) > CONNECT_MAX) {
      vv_error_code (VV_ERR_INVALID, "%s: the URI is longer than %d bytes",
                     what, CONNECT_MAX);
      return -1;
    }
    free (c->connect);
    c->connect = vv_strdup (value);
    return c->connect ? 0 : -1;
  }
  if (strcmp (key, "workers") == 0)
    return vv_daemon_parse_workers (what, value, &c->workers);
  if (strcmp (key, "admin_uids") == 0) {
    free (c->admin_uids);
    c->admin_uids = NULL;
    c->admin_uids_set = true;
    return vv_daemon_parse_admin_uids (what, value, &c->admin_uids,
                                       &c->n_admin_uids);
  }
  if (strcmp (key, "max_chain") == 0) {
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul (value, &end, 10);
    if (!isdigit ((unsigned char) value[0]) || *end != '\0' || errno
        || v < 1 || v > 1000) {
      vv_error_code (VV_ERR_INVALID, "%s: '%s' is not a number of "
                     "incremental backups per chain from 1 to 1000", what,
                     value);
      return -1;
    }
    c->max_chain = (unsigned) v;
    return 0;
  }
  if (strcmp (key, "manual_limit") == 0)
    return parse_number (what, value, 0, 10000, &c->manual_limit,
                         &c->manual_limit_set);
  if (strcmp (key, "scheduler_max_concurrent") == 0)
    return parse_number (what, value, 1, 64, &c->scheduler_max_concurrent,
                         NULL);
  if (strcmp (key, "connections_per_uid") == 0)
    return parse_number (what, value, 1,
                         VV_API_CONNECTIONS - VV_API_ADMIN_RESERVE,
                         &c->connections_per_uid, NULL);
  for (size_t i = 0; i < 3; i++)
    if (strcmp (key, retention_keys[i]) == 0)
      return parse_number (what, value, 0, VV_CONFIG_RETENTION_MAX,
                           &c->retention_days[i], &c->retention_days_set[i]);
  if (strcmp (key, "default_target") == 0) {
    if (vv_check_name ("target name", value, 64) == -1) {
      vv_error_prefix ("%s: ", what);
      return -1;
    }
    free (c->default_target);
    c->default_target = vv_strdup (value);
    return c->default_target ? 0 : -1;
  }
  vv_error_code (VV_ERR_INVALID,
                 "%s: unknown key; the keys are state_dir, socket, connect, "
                 "workers, admin_uids, default_target, max_chain, "
                 "manual_limit, scheduler_max_concurrent, "
                 "connections_per_uid, audit_retention_days, "
                 "job_retention_days and run_retention_days", what);
  return -1;
}

int
vv_daemon_config_load (struct vv_daemon_config *c, const char *path)
{
  _cleanup_fclose_ FILE *f = fopen (path, "re");
  char line[VV_CONFIG_LINE_MAX + 2];
  char seen[16][32];
  size_t n_seen = 0;
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
    for (size_t i = 0; i < n_seen; i++)
      if (strcmp (seen[i], key) == 0) {
        vv_error_code (VV_ERR_INVALID, "%s: set twice", what);
        return -1;
      }
    if (set_key (c, what, key, value) == -1)
      return -1;
    if (n_seen < sizeof seen / sizeof seen[0])
      snprintf (seen[n_seen++], sizeof seen[0], "%s", key);
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
  if (!c->manual_limit_set)
    c->manual_limit = 4;
  if (c->scheduler_max_concurrent == 0)
    c->scheduler_max_concurrent = 2;
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
