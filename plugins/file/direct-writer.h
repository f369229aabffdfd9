/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing a new file sequentially with O_DIRECT, on a thread of its own.
 *
 * Each O_DIRECT write waits for the disk.  Done by the caller, the copy
 * from the guest stopped for every 4 MiB written (1.69x nbdcopy against
 * 1.38x through the page cache, docs/benchmarks.md).  Here the caller
 * fills one aligned buffer while the thread writes the others, so
 * reading and writing overlap again and the page cache is left alone.
 */
#ifndef VV_FILE_DIRECT_WRITER_H
#define VV_FILE_DIRECT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#define DIRECT_BUF (4 * 1024 * 1024)
#define DIRECT_ALIGN 4096

struct direct_writer;

/* Turns O_DIRECT on for fd, an empty file open for writing, and starts
 * the thread.  NULL (errno set) when the file system refuses O_DIRECT
 * (tmpfs) or memory or a thread is lacking: write it buffered then.
 */
struct direct_writer *direct_writer_start (int fd);
/* Appends count bytes.  -1 with errno when an earlier write failed. */
int direct_writer_write (struct direct_writer *w, const void *buf,
                         size_t count);
/* Writes what is left (the unaligned end through the page cache) and
 * waits for every write; -1 with errno if any failed.  The caller
 * fsyncs.
 */
int direct_writer_finish (struct direct_writer *w);
/* Bytes handed over so far. */
uint64_t direct_writer_bytes (const struct direct_writer *w);
/* Stops the thread (dropping writes not done yet) and frees w.  NULL
 * does nothing.
 */
void direct_writer_free (struct direct_writer *w);

#endif
