/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>

#include "cleanup.h"
#include "clock.h"
#include "error.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Sleeps are timed on CLOCK_MONOTONIC: a stepped wall clock must not
 * stretch them.  A condition variable with that clock can not be
 * initialised statically.
 */
static pthread_cond_t changed;
static pthread_once_t changed_once = PTHREAD_ONCE_INIT;

static bool test_mode;
static time_t test_now;
static uint64_t generation;

static void
init_changed (void)
{
  pthread_condattr_t attr;

  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&changed, &attr);
  pthread_condattr_destroy (&attr);
}

/* With lock held. */
static time_t
now_locked (void)
{
  return test_mode ? test_now : time (NULL);
}

/* With lock held. */
static void
notify_locked (void)
{
  pthread_once (&changed_once, init_changed);
  generation++;
  pthread_cond_broadcast (&changed);
}

time_t
vv_clock_now (void)
{
  VV_LOCK_GUARD (&lock);
  return now_locked ();
}

void
vv_clock_enable_test (time_t start)
{
  VV_LOCK_GUARD (&lock);
  if (start < 0)
    start = 0;
  if (start > VV_CLOCK_MAX)
    start = VV_CLOCK_MAX;
  test_mode = true;
  test_now = start;
  notify_locked ();
}

bool
vv_clock_is_test (void)
{
  VV_LOCK_GUARD (&lock);
  return test_mode;
}

/* With lock held. */
static int
set_locked (time_t t, const char *what)
{
  if (!test_mode) {
    vv_error_code (VV_ERR_FORBIDDEN,
                   "the clock can only be %s when virtvaultd runs with "
                   "--test-clock", what);
    return -1;
  }
  if (t < 0 || t > VV_CLOCK_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "the test clock must stay between 1970-01-01 and "
                   "9999-12-31");
    return -1;
  }
  test_now = t;
  notify_locked ();
  return 0;
}

int
vv_clock_set (time_t t)
{
  VV_LOCK_GUARD (&lock);
  return set_locked (t, "set");
}

int
vv_clock_advance (int64_t seconds)
{
  VV_LOCK_GUARD (&lock);
  /* Both are within the range, so the sum can not overflow. */
  if (seconds > (int64_t) VV_CLOCK_MAX || seconds < -(int64_t) VV_CLOCK_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "can not advance the test clock by %" PRIi64 " seconds",
                   seconds);
    return -1;
  }
  return set_locked ((time_t) (test_now + seconds), "advanced");
}

uint64_t
vv_clock_generation (void)
{
  VV_LOCK_GUARD (&lock);
  return generation;
}

void
vv_clock_kick (void)
{
  VV_LOCK_GUARD (&lock);
  notify_locked ();
}

bool
vv_clock_sleep_until (time_t deadline, uint64_t seen_generation)
{
  VV_LOCK_GUARD (&lock);

  pthread_once (&changed_once, init_changed);
  for (;;) {
    time_t now = now_locked ();
    struct timespec ts;
    time_t wait;

    if (now >= deadline)
      return true;
    if (generation != seen_generation)
      return false;

    if (test_mode)
      /* Only a change can bring the deadline closer. */
      pthread_cond_wait (&changed, &lock);
    else {
      wait = deadline - now;
      if (wait > VV_CLOCK_RECHECK_SECONDS)
        wait = VV_CLOCK_RECHECK_SECONDS;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      ts.tv_sec += wait;
      pthread_cond_timedwait (&changed, &lock, &ts);
    }
  }
}
