/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Finds, checks and caches storage plugins (include/virtvault-plugin.h).
 *
 * A plugin is loaded at most once per process and stays loaded until
 * vv_plugins_unload_all: handles opened from it hold pointers into it.
 */
#include <config.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/strutil.h"
#include "target/target.h"

#ifndef PLUGINDIR
#error "PLUGINDIR must be defined by the build (src/Makefile.am)"
#endif

#define SCHEME_MAX 32

/* Every version-1 plugin has at least the fields up to remove. */
#define V1_STRUCT_SIZE                                                  \
  (offsetof (struct virtvault_plugin, remove)                           \
   + sizeof ((struct virtvault_plugin *) 0)->remove)

/* More secret parameter keys than any plugin has keys is a bug. */
#define SECRET_PARAMS_MAX 32
#define SECRET_KEY_MAX 64

/* Longest VIRTVAULT_PLUGIN_PATH we look at; it is set by admins and the
 * wrappers, so this only stops nonsense.
 */
#define PLUGIN_PATH_MAX 8192

struct loaded_plugin {
  struct loaded_plugin *next;
  char scheme[SCHEME_MAX + 1];
  void *dl;
  /* Our own copy, zero-filled past what the plugin's struct holds. */
  struct virtvault_plugin plugin;
};

/* The host services (virtvault-plugin.h) every plugin gets at load. */
static void host_log (enum virtvault_log_level level, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static void
host_log (enum virtvault_log_level level, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vv_vlog (level <= VIRTVAULT_LOG_DEBUG ? VV_LOG_DEBUG
           : level == VIRTVAULT_LOG_INFO ? VV_LOG_INFO : VV_LOG_WARNING,
           fmt, ap);
  va_end (ap);
}

static int
host_cancelled (void)
{
  return vv_progress_current_cancelled ();
}

/* A job token is the job's progress, which outlives every stream and
 * read handle of the job.
 */
static void *
host_current_job (void)
{
  return vv_progress_current ();
}

static int
host_job_cancelled (void *job)
{
  return vv_progress_cancelled (job);
}

static const struct virtvault_host host_services = {
  ._struct_size = sizeof (struct virtvault_host),
  .api_version = VIRTVAULT_PLUGIN_API_VERSION,
  .host_version = PACKAGE_NAME " " PACKAGE_VERSION,
  .log = host_log,
  .error = virtvault_error,
  .cancelled = host_cancelled,
  .current_job = host_current_job,
  .job_cancelled = host_job_cancelled,
};

static pthread_mutex_t plugins_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loaded_plugin *plugins;

static bool
valid_scheme (const char *s)
{
  size_t i;

  for (i = 0; s[i]; i++) {
    char c = s[i];
    if (i >= SCHEME_MAX ||
        !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '+' || c == '.' || c == '-'))
      return false;
  }
  return i > 0;
}

int
vv_url_scheme (const char *url, char *ret, size_t len)
{
  const char *sep = url ? strstr (url, "://") : NULL;
  size_t n = sep ? (size_t) (sep - url) : 0;
  char scheme[SCHEME_MAX + 1];

  if (sep == NULL || n == 0 || n > SCHEME_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "'%.100s' is not a target URL like file:///srv/backup",
                   url ? url : "(null)");
    return -1;
  }
  memcpy (scheme, url, n);
  scheme[n] = '\0';
  if (!valid_scheme (scheme)) {
    vv_error_code (VV_ERR_INVALID,
                   "'%s' is not a valid URL scheme (lower-case letters, "
                   "digits, '+', '.' and '-')", scheme);
    return -1;
  }
  if (n + 1 > len) {
    vv_error_code (VV_ERR_INVALID, "URL scheme '%s' is too long", scheme);
    return -1;
  }
  memcpy (ret, scheme, n + 1);
  return 0;
}

/* The directories searched, in order, as a NULL-terminated array. */
static char **
search_dirs (void)
{
  const char *env = getenv ("VIRTVAULT_PLUGIN_PATH");
  _cleanup_strv_ char **dirs = NULL;
  _cleanup_free_ char *copy = NULL;
  size_t n = 0, max;
  char *p, *save = NULL;

  if (env && strlen (env) > PLUGIN_PATH_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "VIRTVAULT_PLUGIN_PATH is longer than %d bytes",
                   PLUGIN_PATH_MAX);
    return NULL;
  }
  copy = vv_strdup (env ? env : "");
  if (copy == NULL)
    return NULL;
  /* At most one entry per ':' plus PLUGINDIR plus the terminator. */
  max = 3;
  for (p = copy; *p; p++)
    max += *p == ':';
  dirs = calloc (max, sizeof *dirs);
  if (dirs == NULL) {
    vv_error_errno (errno, "allocating the plugin search path");
    return NULL;
  }
  for (p = strtok_r (copy, ":", &save); p; p = strtok_r (NULL, ":", &save))
    if ((dirs[n++] = vv_strdup (p)) == NULL)
      return NULL;
  if ((dirs[n++] = vv_strdup (PLUGINDIR)) == NULL)
    return NULL;
  return TAKE_PTR (dirs);
}

#define REQUIRED(f) { #f, offsetof (struct virtvault_plugin, f) }
static const struct {
  const char *name;
  size_t offset;
} required_callbacks[] = {
  REQUIRED (open), REQUIRED (put_begin), REQUIRED (put_write),
  REQUIRED (put_commit), REQUIRED (put_abort), REQUIRED (get),
  REQUIRED (stat), REQUIRED (list), REQUIRED (remove),
};

static bool
callback_present (const struct virtvault_plugin *p, size_t offset)
{
  void (*fn) (void);

  memcpy (&fn, (const char *) p + offset, sizeof fn);
  return fn != NULL;
}

/* Checks what the plugin's init returned and fills our copy. */
static int
check_plugin (const char *path, const char *scheme,
              const struct virtvault_plugin *theirs,
              struct virtvault_plugin *ours)
{
  size_t i, size;

  if (theirs == NULL) {
    vv_error ("storage plugin %s: virtvault_plugin_init returned NULL", path);
    return -1;
  }
  if (theirs->_api_version > VIRTVAULT_PLUGIN_API_VERSION) {
    vv_error ("storage plugin %s needs plugin API version %d but this "
              "virtvault provides version %d; upgrade virtvault or use a "
              "plugin built for this version",
              path, theirs->_api_version, VIRTVAULT_PLUGIN_API_VERSION);
    return -1;
  }
  if (theirs->_api_version < 1 || theirs->_struct_size < V1_STRUCT_SIZE) {
    vv_error ("storage plugin %s is damaged or was not built with "
              "VIRTVAULT_REGISTER_PLUGIN (API version %d, struct size "
              "%llu)", path, theirs->_api_version,
              (unsigned long long) theirs->_struct_size);
    return -1;
  }
  /* Older plugins have a shorter struct: what they lack stays NULL. */
  size = theirs->_struct_size < sizeof *ours
    ? (size_t) theirs->_struct_size : sizeof *ours;
  memset (ours, 0, sizeof *ours);
  memcpy (ours, theirs, size);

  if (ours->name == NULL) {
    vv_error ("storage plugin %s has no name; it must be '%s'", path, scheme);
    return -1;
  }
  if (strcmp (ours->name, scheme) != 0) {
    vv_error ("storage plugin %s calls itself '%.40s', not '%s'; rename the "
              "file or fix the plugin's name", path, ours->name, scheme);
    return -1;
  }
  /* The host masks these keys' values everywhere: a list it cannot
   * read to the end would leave secrets shown.
   */
  if (ours->secret_params) {
    for (i = 0; ours->secret_params[i]; i++)
      if (i >= SECRET_PARAMS_MAX ||
          strnlen (ours->secret_params[i], SECRET_KEY_MAX + 1) >
          SECRET_KEY_MAX || ours->secret_params[i][0] == '\0') {
        vv_error ("storage plugin %s declares more than %d secret "
                  "parameters or an empty or overlong key", path,
                  SECRET_PARAMS_MAX);
        return -1;
      }
  }
  if ((ours->read_open != NULL) != (ours->pread != NULL) ||
      (ours->read_open != NULL) != (ours->read_close != NULL)) {
    vv_error ("storage plugin %s must have all or none of read_open, pread "
              "and read_close", path);
    return -1;
  }
  for (i = 0; i < sizeof required_callbacks / sizeof required_callbacks[0];
       i++)
    if (!callback_present (ours, required_callbacks[i].offset)) {
      vv_error ("storage plugin %s lacks the required callback '%s'",
                path, required_callbacks[i].name);
      return -1;
    }
  return 0;
}

/* Loads the plugin at path.  Called with plugins_lock held. */
static struct loaded_plugin *
load_plugin (const char *path, const char *scheme)
{
  const struct virtvault_plugin *(*init) (void);
  _cleanup_free_ struct loaded_plugin *lp = NULL;
  void *dl;

  dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    vv_error ("cannot load storage plugin %s: %s", path, dlerror ());
    return NULL;
  }
  *(void **) &init = dlsym (dl, "virtvault_plugin_init");
  if (init == NULL) {
    vv_error ("%s is not a virtvault storage plugin: it does not export "
              "virtvault_plugin_init", path);
    dlclose (dl);
    return NULL;
  }
  lp = calloc (1, sizeof *lp);
  if (lp == NULL) {
    vv_error_errno (errno, "loading storage plugin %s", path);
    dlclose (dl);
    return NULL;
  }
  if (check_plugin (path, scheme, init (), &lp->plugin) == -1) {
    dlclose (dl);
    return NULL;
  }
  if (lp->plugin.load_host || lp->plugin.load) {
    vv_clear_error ();
    if ((lp->plugin.load_host
         ? lp->plugin.load_host (&host_services, 0)
         : lp->plugin.load ()) == -1) {
      if (vv_get_error ()[0] == '\0')
        vv_error ("storage plugin %s failed to initialise", path);
      else
        vv_error_prefix ("storage plugin %s: ", path);
      dlclose (dl);
      return NULL;
    }
  }
  lp->dl = dl;
  strcpy (lp->scheme, scheme);
  return TAKE_PTR (lp);
}

const struct virtvault_plugin *
vv_plugin_for_scheme (const char *scheme)
{
  _cleanup_strv_ char **dirs = NULL;
  _cleanup_free_ char *looked = NULL;
  struct loaded_plugin *lp;
  size_t i;

  if (scheme == NULL || !valid_scheme (scheme)) {
    vv_error_code (VV_ERR_INVALID,
                   "'%.40s' is not a valid URL scheme (1 to %d lower-case "
                   "letters, digits, '+', '.' and '-')",
                   scheme ? scheme : "(null)", SCHEME_MAX);
    return NULL;
  }

  VV_LOCK_GUARD (&plugins_lock);
  for (lp = plugins; lp; lp = lp->next)
    if (strcmp (lp->scheme, scheme) == 0)
      return &lp->plugin;

  dirs = search_dirs ();
  if (dirs == NULL)
    return NULL;
  for (i = 0; dirs[i]; i++) {
    _cleanup_free_ char *path = NULL;
    struct stat st;

    path = vv_printf ("%s/virtvault-%s-plugin.so", dirs[i], scheme);
    if (path == NULL)
      return NULL;
    /* The first file found is the plugin: a broken one is reported, not
     * silently passed over for one further down the path.
     */
    if (stat (path, &st) == -1)
      continue;
    lp = load_plugin (path, scheme);
    if (lp == NULL)
      return NULL;
    lp->next = plugins;
    plugins = lp;
    return &lp->plugin;
  }

  for (i = 0; dirs[i]; i++) {
    char *s = vv_printf ("%s%s%s", looked ? looked : "", looked ? ", " : "",
                         dirs[i]);
    if (s == NULL)
      return NULL;
    free (looked);
    looked = s;
  }
  vv_error_code (VV_ERR_INVALID,
                 "no storage plugin for '%s://' URLs (looked for "
                 "virtvault-%s-plugin.so in %s)", scheme, scheme, looked);
  return NULL;
}

bool
vv_plugin_param_is_secret (const struct virtvault_plugin *p, const char *key,
                           size_t keylen)
{
  if (p == NULL || p->secret_params == NULL)
    return false;
  for (size_t i = 0; p->secret_params[i]; i++)
    if (strlen (p->secret_params[i]) == keylen &&
        memcmp (p->secret_params[i], key, keylen) == 0)
      return true;
  return false;
}

void
vv_plugins_unload_all (void)
{
  VV_LOCK_GUARD (&plugins_lock);
  while (plugins) {
    struct loaded_plugin *lp = plugins;

    plugins = lp->next;
    if (lp->plugin.unload)
      lp->plugin.unload ();
    dlclose (lp->dl);
    free (lp);
  }
}
