/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtvault storage plugin ABI, version 2.
 *
 * A storage plugin moves bytes to and from one kind of storage target
 * (a directory, NFS, S3, SFTP ...) and lists names.  It knows nothing
 * of virtual machines, chains or the catalog.
 *
 * A plugin is a shared object exporting one function,
 * virtvault_plugin_init, which returns a pointer to a statically
 * allocated struct virtvault_plugin.  Use VIRTVAULT_REGISTER_PLUGIN.
 *
 * Compatibility rules (the model is nbdkit's plugin ABI):
 *  - The struct starts with its own size and the API version the plugin
 *    needs.  Fields are only ever appended; the loader copies at most the
 *    size it knows and treats missing trailing fields as NULL, so plugins
 *    built against an older header keep loading.
 *  - A plugin needing a newer API than the host provides is refused with
 *    a message naming both versions.  By default the version needed is
 *    the one of the header the plugin is built with; a plugin that uses
 *    only older callbacks may define VIRTVAULT_PLUGIN_NEEDS_API to that
 *    older version before including this header.
 *  - Optional callbacks may be NULL.  The loader checks the required ones
 *    at load time and names the one that is missing.
 *  - Callbacks added in version 2 or later take a flags argument.  No
 *    flags are defined yet unless a callback says so: the host passes 0
 *    and a plugin fails (EINVAL) on a flag it does not know.
 *
 * Threading: one handle is used by one thread at a time, except read
 * handles (below); different handles (from separate open calls) may be
 * used concurrently.
 *
 * Errors: a callback that fails calls virtvault_error() (or the host's
 * error service) once with a message naming the object ("cannot create
 * /srv/b/x.qcow2: No space left on device") and returns -1 (or NULL).
 * errno at the time of that call is the error's class:
 *    EACCES, EPERM              permission or authentication refused
 *    ENOENT                     the object, bucket or path does not exist
 *    EEXIST                     publishing over an existing name
 *    EAGAIN, ETIMEDOUT, ECONNRESET, ECONNREFUSED, EHOSTUNREACH
 *                               transient: it may work if tried later
 *    ENOSPC, EDQUOT             the target is full
 *    EFBIG                      the object is larger than the target stores
 *    EROFS                      the target is read-only
 *    EINVAL                     bad URL, parameter or flag
 *    anything else              a plain failure
 * A plugin retries idempotent requests itself (a GET, a list page, an
 * upload part still in its own buffer), with exponential back-off and a
 * bounded number of tries, before it reports a transient error.  The
 * host never replays a put stream.
 *
 * Names: objects are named by relative paths with '/' separators, such as
 * "6f1c.../ch-1a2b.../bk-3c4d.../vda.qcow2".  Names never start with '/',
 * never contain "." or ".." components and are at most 1024 bytes.
 *
 * Secrets: parameters named in secret_params are never shown by the API
 * or the CLI (their value prints as "***"), never logged and never put
 * in a process's argv.  Plugins read credentials from files readable
 * only by root (credentials_file=, identity=) rather than taking them
 * as parameter values.
 */

#ifndef VIRTVAULT_PLUGIN_H
#define VIRTVAULT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIRTVAULT_PLUGIN_API_VERSION 2

#ifndef VIRTVAULT_PLUGIN_NEEDS_API
#define VIRTVAULT_PLUGIN_NEEDS_API VIRTVAULT_PLUGIN_API_VERSION
#endif

/* Longest object name the host ever passes to a plugin. */
#define VIRTVAULT_PLUGIN_NAME_MAX 1024

/* Called once per listed object; return 0 to continue, -1 to stop
 * (the list call then returns -1).
 */
typedef int (*virtvault_list_cb) (void *opaque, const char *name,
                                  uint64_t size);

/* Services the host hands to a plugin when it loads it (load_host), so a
 * plugin never needs a new imported symbol to use them.  Fields are only
 * ever appended; check _struct_size before using a field added after the
 * version you need.
 */
enum virtvault_log_level {
  VIRTVAULT_LOG_DEBUG = 0,
  VIRTVAULT_LOG_INFO = 1,
  VIRTVAULT_LOG_WARNING = 2,
};

struct virtvault_host {
  uint64_t _struct_size;
  /* VIRTVAULT_PLUGIN_API_VERSION of the host. */
  int api_version;
  /* The host program and its version, e.g. "virtvaultd 0.3". */
  const char *host_version;
  /* A line for the daemon's log (never a secret).  printf-style. */
  void (*log) (enum virtvault_log_level level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
  /* Same as virtvault_error. */
  void (*error) (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2)));
  /* 1 if the job the calling thread works for was cancelled, else 0.  A
   * plugin waiting (back-off, a slow server) checks it and gives up with
   * errno ECANCELED.
   */
  int (*cancelled) (void);

  /* Appended to version 2 (check _struct_size): cancellation on the
   * threads a plugin starts itself, where cancelled() always says 0.
   * current_job returns a token for the job the calling thread works for
   * (NULL outside a job); capture it on the host's thread (put_begin,
   * put_begin2, read_open ...) and keep it with the stream or read
   * handle.  job_cancelled (token) answers 1 if that job was cancelled,
   * from any thread, while that stream or read handle is open: the host
   * closes every stream and read handle of a job before the job ends.
   * job_cancelled (NULL) is 0.
   */
  void *(*current_job) (void);
  int (*job_cancelled) (void *job);
};

/* What a target can do, filled by the capabilities callback.  The host
 * zero-fills it and sets _struct_size; a plugin fills the fields it
 * knows.  A zero means "no" or "no preference".
 */
#define VIRTVAULT_CAP_ATOMIC_PUBLISH   (1u << 0) /* put_commit never replaces */
#define VIRTVAULT_CAP_DURABLE_COMMIT   (1u << 1) /* committed = on stable storage */
#define VIRTVAULT_CAP_CONSISTENT_LIST  (1u << 2) /* list shows every commit at once */
#define VIRTVAULT_CAP_LOCAL_FILES      (1u << 3) /* open_local works */

struct virtvault_caps {
  uint64_t _struct_size;
  uint64_t flags;               /* VIRTVAULT_CAP_* */
  /* Best size of one read or write request in bytes, e.g. the S3 part
   * size or the NFS rsize; reads of this size and larger go fastest.
   */
  uint32_t io_size;
  /* Offsets and lengths that are multiples of this are fastest (O_DIRECT
   * block size); 1 or 0 for any.
   */
  uint32_t io_align;
  /* How many pread calls may be in flight on one read handle at once
   * (from different threads); 0 or 1 means one at a time.
   */
  uint32_t max_parallel_reads;
  /* Largest object put_begin2 accepts; 0 for no limit. */
  uint64_t max_object_size;
};

/* put_begin2's size when the writer cannot know it in advance. */
#define VIRTVAULT_SIZE_UNKNOWN UINT64_MAX

struct virtvault_plugin {
  /* Set by VIRTVAULT_REGISTER_PLUGIN; do not set these yourself. */
  uint64_t _struct_size;
  int _api_version;

  /* The URL scheme this plugin serves, e.g. "file" for file:///srv/b. */
  const char *name;
  const char *version;
  /* One line saying what the plugin stores to. */
  const char *description;
  /* The key=value parameters open() accepts, one "key=...  what" per line. */
  const char *config_help;

  /* Optional: called once after the plugin is loaded / before unload. */
  int (*load) (void);
  void (*unload) (void);

  /* Required.  Parse and validate the target: url is the whole URL
   * (scheme included), params a NULL-terminated array of "key=value"
   * strings (may be empty).  Unknown keys are an error.  Returns a handle
   * or NULL.  Does not need to contact the storage; test() does that.
   */
  void *(*open) (const char *url, const char *const *params);
  /* Optional: frees the handle (NULL if there is nothing to free). */
  void (*close) (void *handle);

  /* Optional: check that the target is reachable and writable right now,
   * and say why not (e.g. "directory /srv/b is not writable: Permission
   * denied").  0 on success.
   */
  int (*test) (void *handle);

  /* Required.  Store a stream under a temporary name that list() does not
   * show; put_commit makes it durable (fsync or equivalent) and publishes
   * it atomically under its final name, replacing nothing (publishing over
   * an existing name is an error).  put_abort removes the temporary
   * object.  Both commit and abort free the stream, whatever the result.
   */
  void *(*put_begin) (void *handle, const char *name);
  int (*put_write) (void *stream, const void *buf, size_t count);
  int (*put_commit) (void *stream);
  void (*put_abort) (void *stream);

  /* Required.  Read up to count bytes at offset of a published object.
   * Returns the bytes read (less than count only at the end), or -1.
   */
  int64_t (*get) (void *handle, const char *name,
                  void *buf, size_t count, uint64_t offset);

  /* Required.  1 if the object exists (size in *ret_size), 0 if it does
   * not, -1 on error.
   */
  int (*stat) (void *handle, const char *name, uint64_t *ret_size);

  /* Required.  Call cb for every published object whose name starts with
   * prefix (a directory-like prefix ending in '/', or "" for everything).
   */
  int (*list) (void *handle, const char *prefix,
               virtvault_list_cb cb, void *opaque);

  /* Required.  Delete a published object.  Deleting an object that does
   * not exist succeeds, so cleanup can be repeated safely.
   */
  int (*remove) (void *handle, const char *name);

  /* Optional.  Delete what puts interrupted before commit or abort (a
   * killed daemon) left below prefix: temporary files, unfinished
   * multipart uploads.  Published objects are not touched.  Called when
   * recovering from a crash and when a backup's objects are removed.
   */
  int (*remove_partial) (void *handle, const char *prefix);

  /* Fields are appended below this line only. */

  /* Optional, for targets whose objects are files on this machine (a
   * directory, an NFS mount).  Opens the published object name read-only
   * and returns its file descriptor (O_CLOEXEC; the host closes it), or
   * -1 with an error (also when the object does not exist).  The
   * descriptor must refer to the object itself, reached without
   * following symbolic links below the target's root: the host reads it
   * with pread and copy_file_range, instead of copying every image
   * through get() first.  Added in virtvault
   * 0.2; plugins built before it leave it NULL and restores stream
   * through get().
   */
  int (*open_local) (void *handle, const char *name);

  /* Version 2. */

  /* Optional: replaces load when set.  host stays valid until unload. */
  int (*load_host) (const struct virtvault_host *host, uint32_t flags);

  /* Optional: the parameter keys whose values are secret, NULL-terminated
   * (e.g. { "secret_key", NULL }).  See "Secrets" above.
   */
  const char *const *secret_params;

  /* Optional: what the target can do (see struct virtvault_caps).  Without
   * it the host assumes atomic publish and durable commit (the version 1
   * contract), one read at a time and no size limit.
   */
  int (*capabilities) (void *handle, struct virtvault_caps *caps,
                       uint32_t flags);

  /* Optional: put_begin with the size the stream will have, or
   * VIRTVAULT_SIZE_UNKNOWN.  A plugin uses it to size its requests (S3
   * parts) and refuses at once an object larger than the target accepts,
   * before the host reads anything to write.  When size is known, writing
   * more or committing fewer bytes is an error.  Used instead of put_begin
   * when set; put_write, put_commit and put_abort are the same.
   */
  void *(*put_begin2) (void *handle, const char *name, uint64_t size,
                       uint32_t flags);

  /* Optional, together: read handles.  read_open opens a published object
   * once and returns its size; pread reads count bytes at offset (fewer
   * only at the end of the object) and returns the count or -1; up to
   * max_parallel_reads calls of pread may run at once on one read handle.
   * read_close frees it.  Without them the host reads through get.
   */
  void *(*read_open) (void *handle, const char *name, uint64_t *ret_size,
                      uint32_t flags);
  int64_t (*pread) (void *read_handle, void *buf, size_t count,
                    uint64_t offset, uint32_t flags);
  void (*read_close) (void *read_handle);

  /* Optional: delete several published objects in one request (S3
   * DeleteObjects); names that do not exist are not an error.  Without it
   * the host calls remove once per name.
   */
  int (*remove_many) (void *handle, const char *const *names, size_t n,
                      uint32_t flags);
};

/* Provided by the host program (virtvaultd, the tests).  Records the
 * error of the current thread; printf-style.  errno at the time of the
 * call classifies it: ENOSPC or EDQUOT means "target full" (the API's
 * "unavailable"), anything else a plain failure.
 */
extern void virtvault_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

#define VIRTVAULT_REGISTER_PLUGIN(plugin)                                \
  __attribute__ ((visibility ("default")))                              \
  const struct virtvault_plugin *virtvault_plugin_init (void);          \
  const struct virtvault_plugin *                                       \
  virtvault_plugin_init (void)                                          \
  {                                                                     \
    (plugin)._struct_size = sizeof (plugin);                            \
    (plugin)._api_version = VIRTVAULT_PLUGIN_NEEDS_API;               \
    return &(plugin);                                                   \
  }

#ifdef __cplusplus
}
#endif

#endif /* VIRTVAULT_PLUGIN_H */
