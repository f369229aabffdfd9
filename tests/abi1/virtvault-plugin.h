/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtvault storage plugin ABI, version 1, kept as it was released so
 * the suite builds one plugin (test-mem-plugin.c) against it and checks
 * that plugins built for version 1 keep loading.  Never edit it.
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
 *    was built against.  Fields are only ever appended; the loader copies
 *    at most the size it knows and treats missing trailing fields as NULL,
 *    so plugins built against an older header keep loading.
 *  - Optional callbacks may be NULL.  The loader checks the required ones
 *    at load time and names the one that is missing.
 *
 * Threading: one handle is used by one thread at a time; different
 * handles (from separate open calls) may be used concurrently.
 *
 * Errors: a callback that fails calls virtvault_error() once with a
 * message naming the object ("cannot create /srv/b/x.qcow2: No space left
 * on device") and returns -1 (or NULL).  The host prints or returns it.
 *
 * Names: objects are named by relative paths with '/' separators, such as
 * "6f1c.../ch-1a2b.../bk-3c4d.../vda.qcow2".  Names never start with '/',
 * never contain "." or ".." components and are at most 1024 bytes.
 */

#ifndef VIRTVAULT_PLUGIN_H
#define VIRTVAULT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIRTVAULT_PLUGIN_API_VERSION 1

/* Longest object name the host ever passes to a plugin. */
#define VIRTVAULT_PLUGIN_NAME_MAX 1024

/* Called once per listed object; return 0 to continue, -1 to stop
 * (the list call then returns -1).
 */
typedef int (*virtvault_list_cb) (void *opaque, const char *name,
                                  uint64_t size);

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
    (plugin)._api_version = VIRTVAULT_PLUGIN_API_VERSION;               \
    return &(plugin);                                                   \
  }

#ifdef __cplusplus
}
#endif

#endif /* VIRTVAULT_PLUGIN_H */
