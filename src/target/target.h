/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage targets: the plugin loader and a thin layer over one plugin
 * handle that adds what every caller needs (sha256 and byte counts while
 * writing, whole-object reads, prefix removal, name checks).
 *
 * Plugins are found as virtvault-<scheme>-plugin.so in the directories of
 * $VIRTVAULT_PLUGIN_PATH (colon separated; the ./virtvaultd wrapper sets
 * it to the build tree) and then in the installed plugin directory.
 */
#ifndef VV_TARGET_H
#define VV_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtvault-plugin.h"
#include "util/sha256.h"

/* Longest URL and params string accepted. */
#define VV_TARGET_URL_MAX 2048

/* Loads (once, thread-safe) and returns the plugin serving scheme, or NULL
 * with "no storage plugin for 'sftp://' URLs (looked in ...)".
 */
const struct virtvault_plugin *vv_plugin_for_scheme (const char *scheme);
/* The scheme of url ("file" for file:///srv); -1 if url has none. */
int vv_url_scheme (const char *url, char *ret, size_t len);
/* Whether key (keylen bytes, not NUL-terminated) is one of the plugin's
 * secret_params.
 */
bool vv_plugin_param_is_secret (const struct virtvault_plugin *p,
                                const char *key, size_t keylen);
/* Whether the value of param ("key=value") of a target with this URL must
 * be shown as "***": its plugin says the key is secret, or the plugin
 * cannot be loaded to ask.
 */
bool vv_target_param_is_secret (const char *url, const char *param);
/* Unloads every plugin (daemon shutdown). */
void vv_plugins_unload_all (void);

struct vv_target;

/* name is the catalog's name for the target (for messages); params is a
 * NULL-terminated "key=value" array or NULL.
 */
struct vv_target *vv_target_open (const char *name, const char *url,
                                  const char *const *params);
struct vv_target *vv_target_close (struct vv_target *t);
const char *vv_target_name (const struct vv_target *t);
const char *vv_target_url (const struct vv_target *t);

/* Reachable and writable now?  Uses the plugin's test callback, or a
 * small put/stat/get/remove round trip when it has none.
 */
int vv_target_test (struct vv_target *t);

/* What the target can do (the plugin's capabilities, or the version 1
 * defaults); max_parallel_reads is at least 1.
 */
const struct virtvault_caps *vv_target_caps (const struct vv_target *t);

/* vv_target_test, then a timed round trip of a probe object under
 * ".virtvault-test/": write probe_bytes, list, read back read_bytes from
 * the middle, remove.  The probe is removed whatever happens.
 */
struct vv_target_probe {
  double test_seconds;          /* the plugin's own check (connect) */
  double write_seconds, list_seconds, read_seconds, remove_seconds;
  uint64_t probe_bytes, read_bytes;
};
int vv_target_probe (struct vv_target *t, struct vv_target_probe *res);

struct vv_target_writer;
/* A stream of unknown size. */
struct vv_target_writer *vv_target_put_begin (struct vv_target *t,
                                              const char *name);
/* A stream of exactly size bytes (or VIRTVAULT_SIZE_UNKNOWN): refused at
 * once when the target cannot store that much; writing more, or
 * committing fewer, is an error.
 */
struct vv_target_writer *vv_target_put_begin_sized (struct vv_target *t,
                                                    const char *name,
                                                    uint64_t size);
int vv_target_put_write (struct vv_target_writer *w, const void *buf,
                         size_t count);
/* Feeds every byte written from now on also to blocks (the digests of
 * the object's blocks, target/block-digests.h), on the writer's hashing
 * thread, so they cost the copy no time where a core is free.  Before
 * the first write; the caller keeps blocks and finishes it once the
 * object is committed.
 */
struct vv_block_hasher;
void vv_target_put_digest_blocks (struct vv_target_writer *w,
                                  struct vv_block_hasher *blocks);
/* Publishes; returns the sha256 and byte count of what was written.
 * Frees w whatever the result.
 */
int vv_target_put_commit (struct vv_target_writer *w,
                          char ret_sha256[VV_SHA256_HEX],
                          uint64_t *ret_bytes);
/* Removes the temporary object; frees w.  NULL-safe. */
void vv_target_put_abort (struct vv_target_writer *w);
/* Whole small object in one go (manifests, domain XML). */
int vv_target_put_buffer (struct vv_target *t, const char *name,
                          const void *buf, size_t len,
                          char ret_sha256[VV_SHA256_HEX]);

int64_t vv_target_get (struct vv_target *t, const char *name, void *buf,
                       size_t count, uint64_t offset);
/* Read handles: one open object, many ranged reads.  Plugins without
 * read handles are read through get.  pread returns count bytes, fewer
 * only at the end of the object, or -1.  Up to vv_target_reader_parallel
 * preads may run at once on one reader.
 */
struct vv_target_reader;
struct vv_target_reader *vv_target_reader_open (struct vv_target *t,
                                                const char *name,
                                                uint64_t *ret_size);
int64_t vv_target_reader_pread (struct vv_target_reader *r, void *buf,
                                size_t count, uint64_t offset);
unsigned vv_target_reader_parallel (const struct vv_target_reader *r);
struct vv_target_reader *vv_target_reader_close (struct vv_target_reader *r);

/* Whether the target's objects are local files it can open (the
 * plugin's optional open_local).
 */
bool vv_target_has_local (const struct vv_target *t);
/* A read-only, close-on-exec descriptor of the object; -1 with an error
 * (also when the target has no local files).
 */
int vv_target_open_local (struct vv_target *t, const char *name);
/* Reads a whole object of at most max bytes into a new NUL-terminated
 * buffer.
 */
int vv_target_read_all (struct vv_target *t, const char *name, size_t max,
                        char **ret_buf, size_t *ret_len);
/* 1 exists, 0 missing, -1 error. */
int vv_target_stat (struct vv_target *t, const char *name,
                    uint64_t *ret_size);
/* Fails, naming the target, when the plugin lists a name that is not a
 * valid object name below prefix.
 */
int vv_target_list (struct vv_target *t, const char *prefix,
                    virtvault_list_cb cb, void *opaque);
int vv_target_remove (struct vv_target *t, const char *name);
/* Removes every object under prefix (which must end in '/'), and what
 * interrupted writes left there (the plugin's remove_partial). */
int vv_target_remove_prefix (struct vv_target *t, const char *prefix);

#endif
