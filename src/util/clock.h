/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The wall clock, and a test clock that moves only when told.
 *
 * Production code reads wall time only through vv_clock_now (), so that
 * `virtvaultd --test-clock` can run a week of schedules in seconds.  In
 * test mode the clock stands still until vv_clock_set / vv_clock_advance
 * moves it (it may move backwards too).
 *
 * Waking a sleeper when the clock moves uses a generation counter, so
 * nobody else's mutex is ever taken by the clock:
 *
 *   for (;;) {
 *     uint64_t gen = vv_clock_generation ();
 *     if (stopping) break;
 *     ... run what is due at vv_clock_now (), compute the next deadline ...
 *     vv_clock_sleep_until (deadline, gen);
 *   }
 *
 * A change of the clock (or vv_clock_kick) between reading the generation
 * and sleeping makes the sleep return at once, so no wake-up is lost.
 * Every function here is thread-safe.
 */
#ifndef VV_UTIL_CLOCK_H
#define VV_UTIL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The test clock accepts 1970-01-01 .. 9999-12-31T23:59:59Z. */
#define VV_CLOCK_MAX ((time_t) 253402300799LL)

/* How long a production sleep waits at most before it looks at the wall
 * clock again, so a stepped system clock is noticed within this time.
 */
#define VV_CLOCK_RECHECK_SECONDS 60

time_t vv_clock_now (void);

/* Switches to the test clock, standing at start (clamped to the range
 * above).  Meant for daemon start-up and unit tests; may be called again
 * to restart the test clock.
 */
void vv_clock_enable_test (time_t start);
bool vv_clock_is_test (void);

/* Move the test clock; wake every sleeper.  Fail with VV_ERR_FORBIDDEN
 * when the test clock is not enabled, VV_ERR_INVALID when the result
 * would leave the range.
 */
int vv_clock_set (time_t t);
int vv_clock_advance (int64_t seconds);

/* Changes whenever the clock is set, advanced or kicked. */
uint64_t vv_clock_generation (void);
/* Wakes every sleeper without moving the clock (stop requests, a policy
 * was edited, ...).
 */
void vv_clock_kick (void);

/* Sleeps until vv_clock_now () >= deadline or the generation differs
 * from seen_generation.  Returns true when the deadline has been reached.
 */
bool vv_clock_sleep_until (time_t deadline, uint64_t seen_generation);

#endif
