/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Named fault points, for crash and error tests only.
 *
 * Code that must survive a crash or an error at a precise moment marks
 * that moment with vv_fault ("inplace-after-rename-%zu", i + 1).  Nothing
 * happens unless vv_fault_enable () was called, which virtvaultd does only
 * when it runs with --test-clock (a test daemon; no production daemon runs
 * so): it reads VV_TEST_FAULT, a comma-separated list of POINT=ACTION, where
 * ACTION is
 *   crash  the process ends at once with _exit (VV_FAULT_EXIT), as a
 *          SIGKILL or power cut would stop it (nothing is cleaned up);
 *   fail   vv_fault returns -1 with errno EIO, and the caller handles it
 *          as the failure of the operation at that point.
 * docs/testing.md lists the points.
 */
#ifndef VV_UTIL_FAULT_H
#define VV_UTIL_FAULT_H

#define VV_FAULT_EXIT 86
/* Longest VV_TEST_FAULT read. */
#define VV_FAULT_SPEC_MAX 4096

/* Reads VV_TEST_FAULT once; before any thread is started. */
void vv_fault_enable (void);
/* 0, or -1 (errno EIO) for a point set to fail; never returns for a point
 * set to crash.
 */
int vv_fault (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
