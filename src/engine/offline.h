/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backing up a shut-off domain: its disk images are read directly,
 * through a private read-only qemu-nbd server per disk in the attempt's
 * run directory.  qemu-nbd takes QEMU's image lock, so the domain can not
 * start (and write) while a server reads its image.  A persistent dirty
 * bitmap in the image is exported as the "qemu:dirty-bitmap:NAME" meta
 * context, which vv_nbd_map_dirty reads like a live backup's.
 */
#ifndef VV_ENGINE_OFFLINE_H
#define VV_ENGINE_OFFLINE_H

#include <stddef.h>

/* Said in the notes of every offline backup, for people; the engine
 * knows an offline point by its record's offline flag (catalog schema 4
 * set it from this text on older rows).
 */
#define VV_OFFLINE_NOTE "offline backup (domain shut off)"

/* Whether the image (format "qcow2") carries a usable persistent bitmap
 * of this name: 1 yes, 0 no (why, short, in why[]: "missing", "left
 * in-use by an unclean stop"), -1 error (qemu-img failed; also in why[]).
 */
int vv_offline_bitmap_usable (const char *image, const char *format,
                              const char *bitmap, char *why, size_t len);

/* Starts the server of one disk: export name disk, read-only, on the
 * UNIX socket <run_dir>/<disk>.sock (returned), with the bitmap (may be
 * NULL) exported too.  Its pid is kept in <run_dir>/<disk>.nbd.pid for
 * vv_offline_stop_servers.  Fails with qemu-nbd's own message (the image
 * is locked by a running QEMU, the bitmap is missing or inconsistent).
 */
int vv_offline_serve (const char *run_dir, const char *disk,
                      const char *image, const char *format,
                      const char *bitmap, char **ret_socket);

/* Stops every server started in run_dir (also those of a daemon that
 * crashed) and waits until they are gone.  Best effort; never fails.
 */
void vv_offline_stop_servers (const char *run_dir);

#endif
